/// Sizes, in estimated WordPiece tokens (see `Chunker.estimateTokens`), used when packing chunks.
public struct ChunkingConfiguration: Sendable, Equatable {
    /// Paragraphs are packed into one chunk up to this many tokens.
    public var targetTokens: Int
    /// Hard cap per chunk; larger blocks are split at blank lines, then lines, then sentences/words.
    public var maxTokens: Int
    /// When a section needs several chunks, each next chunk repeats about this many tokens
    /// (trailing whole lines, or trailing sentences of a long line) of the previous one.
    public var overlapTokens: Int

    public init(targetTokens: Int = 200, maxTokens: Int = 256, overlapTokens: Int = 32) {
        self.targetTokens = targetTokens
        self.maxTokens = maxTokens
        self.overlapTokens = overlapTokens
    }
}

/// One chunk of a document, with the lines it cites.
public struct ChunkDraft: Sendable, Equatable {
    /// The chunk's text: the original lines joined with `\n` (runs of blank lines between blocks become one; reST
    /// title adornments, comments and targets are left out; a very long line may be cut at a sentence or word
    /// boundary). For HTML, the visible text laid out in lines (see `HTMLExtractor`).
    public var text: String
    /// 1-based, inclusive line numbers in the original file (front matter counted), first to last non-blank line;
    /// for HTML, the source lines the chunk's text came from.
    public var lines: ClosedRange<Int>
    /// Heading trail of the section the chunk belongs to, outermost first.
    public var headings: [String]

    public init(text: String, lines: ClosedRange<Int>, headings: [String]) {
        self.text = text
        self.lines = lines
        self.headings = headings
    }
}

/// A document split into chunks, plus its metadata.
public struct ParsedDocument: Sendable, Equatable {
    /// Front-matter title, else the first top-level heading (Markdown `#`/`===`, reST document title); for HTML,
    /// `<title>` (see `HTMLLayout.chunks`).
    public var title: String?
    /// Front-matter tags.
    public var tags: [String]
    /// The chunks, in document order.
    public var chunks: [ChunkDraft]

    public init(title: String?, tags: [String], chunks: [ChunkDraft]) {
        self.title = title
        self.tags = tags
        self.chunks = chunks
    }
}

/// Structure-aware splitting of Markdown, reStructuredText, plain text and HTML (its visible text, see
/// `HTMLExtractor`) into cited chunks.
///
/// Sections (by heading) are never mixed in one chunk; each section's first chunk starts with its heading line.
/// Within a section, blocks (paragraphs, fenced/literal code, tables, lists, directives) are packed up to
/// `targetTokens`; a block is kept whole when it fits in `maxTokens`, else split at blank lines, lines, and for a
/// single over-long line at sentence/word boundaries. Chunks are also capped at `maxTokens × 64` bytes, so white
/// space cannot inflate them. Work is linear in the input size.
public struct Chunker: Sendable {
    public var configuration: ChunkingConfiguration

    public init(configuration: ChunkingConfiguration = .init()) {
        self.configuration = configuration
    }

    /// Splits `text` into chunks according to `format`.
    public func parse(_ text: String, format: DocumentFormat) -> ParsedDocument {
        var text = text
        return text.withUTF8 { parse(bytes: $0, format: format) }
    }

    /// Byte-level entry point: `buf` must be valid UTF-8.
    func parse(bytes buf: UnsafeBufferPointer<UInt8>, format: DocumentFormat) -> ParsedDocument {
        let source = ChunkSourceText(buf)
        var frontMatter: FrontMatter?
        var bodyStart = 0
        if format == .markdown, let parsed = FrontMatter.parse(bytes: buf) {
            frontMatter = parsed
            bodyStart = min(parsed.lineCount, source.count)
        }
        let packer = ChunkPacker(source: source, configuration: configuration)
        let title: String?
        let chunks: [ChunkDraft]
        switch format {
        case .markdown:
            var parser = MarkdownParser(source: source, packer: packer)
            parser.run(from: bodyStart)
            title = parser.title
            chunks = parser.packer.finish()
        case .restructuredText:
            var parser = ReSTParser(source: source, packer: packer)
            parser.run()
            title = parser.title
            chunks = parser.packer.finish()
        case .html:
            var extractor = HTMLExtractor(buf)
            extractor.run()
            (title, chunks) = extractor.layout.chunks(configuration: configuration)
        case .plainText:
            var packer = packer
            var line = 0
            while line < source.count {
                if source.isBlank(line) { line += 1; continue }
                var last = line
                while last + 1 < source.count, !source.isBlank(last + 1) { last += 1 }
                packer.addBlock(first: line, last: last)
                line = last + 1
            }
            title = nil
            chunks = packer.finish()
        }
        return ParsedDocument(title: frontMatter?.title ?? title, tags: frontMatter?.tags ?? [], chunks: chunks)
    }

    /// Cheap estimate of the WordPiece (BERT) tokens in `text`; additive over whitespace-separated pieces.
    ///
    /// The rule, counted in "atoms" that each stand for one token:
    /// - every ASCII punctuation or symbol character is one token (BERT splits them all), as is each CJK/kana/
    ///   Hangul character, each Unicode punctuation/symbol (U+2010–U+2BFF, Latin-1 signs) and each emoji;
    /// - a word (a run of letters, digits and other non-ASCII characters) is cut into pieces at lowercase→uppercase
    ///   and letter↔digit changes (camelCase, `utf8`), and each piece costs one token per started 7 bytes.
    /// - whitespace and control characters cost nothing.
    /// English prose comes out near words × 1.1 plus punctuation, identifiers a little higher.
    public static func estimateTokens(_ text: Substring) -> Int {
        if let count = text.utf8.withContiguousStorageIfAvailable({ countTokenAtoms($0, 0, $0.count) }) {
            return count
        }
        var copy = String(text)
        return copy.withUTF8 { countTokenAtoms($0, 0, $0.count) }
    }
}

// MARK: - Lines

/// The lines of a UTF-8 buffer (`\n`, `\r\n` and `\r` each end one line) with each line's token estimate.
struct ChunkSourceText {
    let buf: UnsafeBufferPointer<UInt8>
    /// Byte offset where each line starts.
    private(set) var starts: [Int] = []
    /// Byte offset where each line's content ends (terminator excluded).
    private(set) var ends: [Int] = []
    /// Estimated tokens per line; zero means blank.
    private(set) var tokens: [Int] = []

    init(_ buf: UnsafeBufferPointer<UInt8>) {
        self.buf = buf
        let n = buf.count
        starts.reserveCapacity(n / 32 + 1)
        ends.reserveCapacity(n / 32 + 1)
        // A byte order mark is not part of the first line.
        let bom = n >= 3 && buf[0] == 0xEF && buf[1] == 0xBB && buf[2] == 0xBF
        var i = bom ? 3 : 0
        var start = i
        while i < n {
            let b = buf[i]
            if b == 0x0A {
                starts.append(start)
                ends.append(i)
                i += 1
                start = i
            } else if b == 0x0D {
                starts.append(start)
                ends.append(i)
                i += 1
                if i < n, buf[i] == 0x0A { i += 1 }
                start = i
            } else {
                i += 1
            }
        }
        if start < n {
            starts.append(start)
            ends.append(n)
        }
        tokens.reserveCapacity(starts.count)
        for line in starts.indices {
            tokens.append(countTokenAtoms(buf, starts[line], ends[line]))
        }
    }

    var count: Int { starts.count }

    /// A line with no token-bearing character (empty, whitespace or control characters only).
    @inline(__always)
    func isBlank(_ line: Int) -> Bool { tokens[line] == 0 }

    /// Indentation width in columns (tabs advance to the next multiple of `tabWidth`) and the first non-indent byte.
    func indent(_ line: Int, tabWidth: Int) -> (columns: Int, position: Int) {
        var columns = 0
        var i = starts[line]
        let end = ends[line]
        while i < end {
            let b = buf[i]
            if b == 0x20 {
                columns += 1
            } else if b == 0x09 {
                columns += tabWidth - columns % tabWidth
            } else {
                break
            }
            i += 1
        }
        return (columns, i)
    }

    /// `range` with ASCII spaces and tabs removed from both ends.
    func trimmed(_ range: Range<Int>) -> Range<Int> {
        var a = range.lowerBound
        var b = range.upperBound
        while a < b, buf[a] == 0x20 || buf[a] == 0x09 { a += 1 }
        while b > a, buf[b - 1] == 0x20 || buf[b - 1] == 0x09 { b -= 1 }
        return a..<b
    }

    /// The bytes in `range` as a String, cut (at a scalar boundary) to at most `limit` bytes.
    func string(_ range: Range<Int>, limit: Int = 512) -> String {
        var end = range.upperBound
        if end - range.lowerBound > limit {
            end = range.lowerBound + limit
            while end > range.lowerBound, buf[end] & 0xC0 == 0x80 { end -= 1 }
        }
        return String(decoding: UnsafeBufferPointer(rebasing: buf[range.lowerBound..<end]), as: UTF8.self)
    }

    /// Number of Unicode scalars in `range`.
    func scalarCount(_ range: Range<Int>) -> Int {
        var count = 0
        for i in range where buf[i] & 0xC0 != 0x80 { count += 1 }
        return count
    }
}

// MARK: - Token atoms

/// Character classes of the token estimator.
enum TokenAtomKind {
    static let space: UInt8 = 0
    static let punct: UInt8 = 1
    static let lower: UInt8 = 2
    static let upper: UInt8 = 3
    static let digit: UInt8 = 4
    static let other: UInt8 = 5
}

@inline(__always)
func tokenAtomKind(ascii b: UInt8) -> UInt8 {
    if b >= 0x61 && b <= 0x7A { return TokenAtomKind.lower }
    if b >= 0x41 && b <= 0x5A { return TokenAtomKind.upper }
    if b >= 0x30 && b <= 0x39 { return TokenAtomKind.digit }
    if b <= 0x20 || b == 0x7F { return TokenAtomKind.space }
    return TokenAtomKind.punct
}

/// Class of a non-ASCII scalar: white space, a one-token character (punctuation, symbols, CJK, emoji), or a
/// word character.
@inline(__always)
func tokenAtomKind(scalar v: UInt32) -> UInt8 {
    switch v {
    case 0xA0, 0x1680, 0x2000...0x200B, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000, 0xFEFF:
        return TokenAtomKind.space
    case 0xA1...0xBF, 0xD7, 0xF7, 0x2010...0x2BFF, 0x2E80...0x9FFF, 0xAC00...0xD7AF, 0xF900...0xFAFF,
         0xFE30...0xFFFF, 0x1F000...:
        return TokenAtomKind.punct
    default:
        return TokenAtomKind.other
    }
}

@inline(__always)
func isTokenAtomBreak(_ previous: UInt8, _ kind: UInt8) -> Bool {
    switch (previous, kind) {
    case (TokenAtomKind.lower, TokenAtomKind.upper),
         (TokenAtomKind.lower, TokenAtomKind.digit), (TokenAtomKind.upper, TokenAtomKind.digit),
         (TokenAtomKind.digit, TokenAtomKind.lower), (TokenAtomKind.digit, TokenAtomKind.upper):
        return true
    default:
        return false
    }
}

/// Walks the token atoms of a byte range. Cutting text at any atom start keeps estimates additive.
struct TokenAtomCursor {
    let buf: UnsafeBufferPointer<UInt8>
    var position: Int
    let end: Int
    private var inWord = false
    private var atomBytes = 0
    private var previousKind: UInt8 = 0

    init(_ buf: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int) {
        self.buf = buf
        self.position = start
        self.end = end
    }

    /// The next atom's first byte, and where the white space just before it started (or -1 if none).
    @inline(__always)
    mutating func next() -> (start: Int, gap: Int)? {
        var gap = -1
        while position < end {
            let b = buf[position]
            if b < 0x80 {
                let kind = tokenAtomKind(ascii: b)
                if kind == TokenAtomKind.space {
                    if gap < 0 { gap = position }
                    inWord = false
                    position += 1
                    continue
                }
                let start = position
                position += 1
                if kind == TokenAtomKind.punct {
                    inWord = false
                    return (start, gap)
                }
                if inWord && atomBytes < 7 && !isTokenAtomBreak(previousKind, kind) {
                    atomBytes += 1
                    previousKind = kind
                    continue
                }
                inWord = true
                atomBytes = 1
                previousKind = kind
                return (start, gap)
            }
            // Non-ASCII: decode one scalar (a malformed byte counts as one U+FFFD).
            var length = 1
            var value: UInt32 = 0xFFFD
            if b >= 0xF0, b < 0xF8, position + 3 < end {
                length = 4
                value = (UInt32(b & 0x07) << 18) | (UInt32(buf[position + 1] & 0x3F) << 12)
                    | (UInt32(buf[position + 2] & 0x3F) << 6) | UInt32(buf[position + 3] & 0x3F)
            } else if b >= 0xE0, b < 0xF0, position + 2 < end {
                length = 3
                value = (UInt32(b & 0x0F) << 12) | (UInt32(buf[position + 1] & 0x3F) << 6)
                    | UInt32(buf[position + 2] & 0x3F)
            } else if b >= 0xC0, b < 0xE0, position + 1 < end {
                length = 2
                value = (UInt32(b & 0x1F) << 6) | UInt32(buf[position + 1] & 0x3F)
            }
            let kind = tokenAtomKind(scalar: value)
            let start = position
            position += length
            if kind == TokenAtomKind.space {
                if gap < 0 { gap = start }
                inWord = false
                continue
            }
            if kind == TokenAtomKind.punct {
                inWord = false
                return (start, gap)
            }
            if inWord && atomBytes < 7 {
                atomBytes += length
                previousKind = TokenAtomKind.other
                continue
            }
            inWord = true
            atomBytes = length
            previousKind = TokenAtomKind.other
            return (start, gap)
        }
        return nil
    }
}

/// Token estimate of `buf[start..<end]`.
func countTokenAtoms(_ buf: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int) -> Int {
    var cursor = TokenAtomCursor(buf, start, end)
    var count = 0
    while cursor.next() != nil { count += 1 }
    return count
}
