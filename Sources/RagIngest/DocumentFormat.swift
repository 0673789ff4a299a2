/// The markup language of a documentation file, which decides how it is split into chunks.
public enum DocumentFormat: String, Sendable {
    case markdown
    case restructuredText
    case plainText

    /// The format implied by a file name (or path), case-insensitively:
    /// `.md` and `.markdown` are Markdown; `.rst` and `.rst.txt` (Sphinx `_sources`) are reStructuredText;
    /// any other `.txt` is plain text; everything else is `nil`.
    public static func detect(fileName: String) -> DocumentFormat? {
        let name = fileName.lowercased()
        if name.hasSuffix(".rst.txt") || name.hasSuffix(".rst") { return .restructuredText }
        if name.hasSuffix(".md") || name.hasSuffix(".markdown") { return .markdown }
        if name.hasSuffix(".txt") { return .plainText }
        return nil
    }
}
