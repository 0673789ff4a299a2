/// The markup language of a documentation file, which decides how it is split into chunks.
///
/// This is the one place that says which files ragd indexes: a file whose name ends in one of `suffixes` (also
/// followed by `.gz`, as Debian ships documentation), case-insensitively. A source's `include` globs can only narrow
/// that set.
public enum DocumentFormat: String, Sendable, CaseIterable {
    case markdown
    case restructuredText
    case plainText
    case html

    /// File-name endings and their formats, tried in this order (`.rst.txt`, as Sphinx ships its sources, before
    /// `.txt`).
    public static let suffixes: [(suffix: String, format: DocumentFormat)] = [
        (".md", .markdown), (".markdown", .markdown),
        (".rst.txt", .restructuredText), (".rst", .restructuredText),
        (".txt", .plainText),
        (".html", .html), (".htm", .html),
    ]

    /// The ending of a gzip-compressed document (`guide.md.gz`): read decompressed, in the format of the name before it.
    public static let compressedSuffix = ".gz"

    /// The format implied by a file name (or path), case-insensitively, after dropping a `.gz` ending; `nil` when it
    /// is not a document ragd indexes.
    public static func detect(fileName: String) -> DocumentFormat? {
        var name = fileName.lowercased()
        if name.hasSuffix(compressedSuffix) { name.removeLast(compressedSuffix.count) }
        for (suffix, format) in suffixes where name.hasSuffix(suffix) { return format }
        return nil
    }

    /// Whether the file is gzip-compressed (its name ends in `.gz`, any case).
    public static func isCompressed(fileName: String) -> Bool {
        fileName.lowercased().hasSuffix(compressedSuffix)
    }
}
