/// Turns text into BM25 index/query terms. The same analysis runs at index and query time.
///
/// Tokenisation (on UTF-8 bytes):
/// - Letters and digits of any script form words; text is lower-cased (full Unicode) and
///   Latin-1/Latin Extended-A letters lose their accents (`café` → `cafe`, `ß` → `ss`);
///   combining accents (U+0300–U+036F), soft hyphens and zero-width joiners inside a word are
///   dropped. Full-width ASCII is read as ASCII. `’` is read as `'`.
/// - Each CJK ideograph (and each Hiragana character) is a token of its own.
/// - An apostrophe between two letters stays in the word (`don't`, `user's`).
/// - A compound is words joined by connectors — a run of `_`, or a single `.`, `-`, `:`,
///   or `::` — followed by a letter or digit. Leading and trailing punctuation never belongs
///   to a token. Words are also split at case changes (`camelCase` → camel, case;
///   `HTTPServer` → http, server; `base64Encode` → base64, encode; `URLs`, `IPv4` stay
///   whole), which makes them compounds too. A compound yields its whole lower-cased text
///   first (not stemmed, not stop-word filtered), then its parts in order; a part between
///   `.`/`-`/`:` that is itself compound is also given whole before its own parts
///   (`fs.inotify.max_user_watches` → the whole, fs, inotifi, max_user_watches, max, user,
///   watch).
/// - Single words and compound parts drop English ``StopWords``; words of letters only are
///   stemmed with ``Porter2`` (words with digits or non-ASCII letters are not).
/// - Terms longer than ``maxTermBytes`` bytes are dropped, not truncated: an over-long
///   compound still yields its parts; an over-long word (or a compound part) yields nothing.
public struct Analyzer: Sendable {
    /// Bumped whenever the terms produced for a text change (stored in the index; a mismatch forces a rebuild).
    public static let version: Int = 1
    /// Longest term, in UTF-8 bytes; longer ones are dropped.
    public static let maxTermBytes = 64
    /// A word splits at case changes only if that gives at most this many parts (guards against
    /// base64 and similar noise).
    static let maxCaseParts = 8

    public init() {}

    /// Index/query terms of `text`, in order of occurrence (duplicates kept, so callers can count term frequency).
    public func terms(_ text: String) -> [String] {
        var sink = TermListSink()
        sink.terms.reserveCapacity(text.utf8.count / 8)
        run(text, &sink)
        return sink.terms
    }

    /// Surface tokens with their UTF-8 byte ranges in `text`, and the terms each yields; used to highlight matches.
    /// Tokens that yield no terms (stop words, over-long words) are left out.
    public func tokens(_ text: String) -> [AnalyzedToken] {
        var sink = TokenListSink()
        run(text, &sink)
        return sink.tokens
    }

    private func run<S: AnalyzerTermSink>(_ text: String, _ sink: inout S) {
        var text = text
        text.withUTF8 { buf in
            var scanner = TextScanner(buf)
            scanner.scan(&sink)
        }
    }
}

/// A surface token of ``Analyzer/tokens(_:)``.
public struct AnalyzedToken: Sendable, Equatable {
    /// Byte range of the token in the UTF-8 of the analyzed text.
    public var utf8Range: Range<Int>
    /// The terms the token yields, as ``Analyzer/terms(_:)`` would produce them.
    public var terms: [String]

    public init(utf8Range: Range<Int>, terms: [String]) {
        self.utf8Range = utf8Range
        self.terms = terms
    }
}

// MARK: - Sinks

protocol AnalyzerTermSink {
    mutating func add(_ term: String)
    mutating func endToken(_ range: Range<Int>)
}

private struct TermListSink: AnalyzerTermSink {
    var terms: [String] = []
    @inline(__always) mutating func add(_ term: String) { terms.append(term) }
    @inline(__always) mutating func endToken(_ range: Range<Int>) {}
}

private struct TokenListSink: AnalyzerTermSink {
    var tokens: [AnalyzedToken] = []
    var current: [String] = []
    mutating func add(_ term: String) { current.append(term) }
    mutating func endToken(_ range: Range<Int>) {
        guard !current.isEmpty else { return }
        tokens.append(AnalyzedToken(utf8Range: range, terms: current))
        current = []
    }
}

// MARK: - Character classes

/// Class of one input character.
private enum CharClass: Equatable {
    case upper, lower, digit
    /// A letter without case (most scripts other than Latin, Greek, Cyrillic, Armenian).
    case uncased
    /// A combining mark: continues a word, never starts one.
    case mark
    /// Dropped inside a word (combining accents, soft hyphen, zero-width (non-)joiners).
    case ignorable
    /// A token of its own (CJK ideographs, Hiragana).
    case single
    case apostrophe
    /// `_`, `.`, `-` or `:` (the byte is kept in the unit).
    case connector(UInt8)
    case separator

    var isLetter: Bool {
        switch self {
        case .upper, .lower, .uncased: return true
        default: return false
        }
    }

    var isWordChar: Bool {
        switch self {
        case .upper, .lower, .uncased, .digit: return true
        default: return false
        }
    }
}

/// Kind of a unit of the token being built (one per appended character or connector run).
private enum UnitKind: UInt8 {
    case upper, lower, digit, uncased, apostrophe
    /// A run of underscores.
    case underscore
    /// `.`, `-`, `:` or `::`.
    case connector
}

private struct Part {
    var range: Range<Int>
    /// A compound group, emitted whole (not stemmed), rather than a word.
    var isGroup: Bool
}

private struct Unit {
    /// Offset of the unit's bytes in `TextScanner.whole`.
    var start: Int32
    var kind: UnitKind
}

// MARK: - TextScanner

private struct TextScanner {
    let buf: UnsafeBufferPointer<UInt8>
    /// Folded bytes of the current token.
    var whole: [UInt8] = []
    var units: [Unit] = []
    var active = false
    var srcStart = 0
    var srcEnd = 0
    /// Scratch: pieces of the current token (ranges in `whole`), see `splitParts`.
    var parts: [Part] = []
    var stemBuffer: [UInt8] = []

    init(_ buf: UnsafeBufferPointer<UInt8>) {
        self.buf = buf
        whole.reserveCapacity(128)
        units.reserveCapacity(128)
        parts.reserveCapacity(16)
        stemBuffer.reserveCapacity(64)
    }

    // MARK: Decoding

    /// Decodes the scalar at byte offset `i` (the input is valid UTF-8), returning it and its length.
    @inline(__always) func decode(_ i: Int) -> (UInt32, Int) {
        let b0 = UInt32(buf[i])
        if b0 < 0x80 { return (b0, 1) }
        if b0 < 0xE0 {
            return (((b0 & 0x1F) << 6) | (UInt32(buf[i + 1]) & 0x3F), 2)
        }
        if b0 < 0xF0 {
            return (((b0 & 0x0F) << 12) | ((UInt32(buf[i + 1]) & 0x3F) << 6) | (UInt32(buf[i + 2]) & 0x3F), 3)
        }
        return (
            ((b0 & 0x07) << 18) | ((UInt32(buf[i + 1]) & 0x3F) << 12) | ((UInt32(buf[i + 2]) & 0x3F) << 6)
                | (UInt32(buf[i + 3]) & 0x3F), 4
        )
    }

    @inline(__always) static func asciiClass(_ c: UInt32) -> CharClass {
        switch c {
        case 0x61...0x7A: return .lower
        case 0x41...0x5A: return .upper
        case 0x30...0x39: return .digit
        case 0x5F, 0x2E, 0x2D, 0x3A: return .connector(UInt8(c))
        case 0x27: return .apostrophe
        default: return .separator
        }
    }

    /// Class of a non-ASCII scalar (after full-width folding).
    static func unicodeClass(_ v: UInt32) -> CharClass {
        switch v {
        case 0x2019, 0x02BC: return .apostrophe
        case 0x2010, 0x2011: return .connector(0x2D)
        case 0x0300...0x036F, 0x00AD, 0x200B...0x200D, 0x2060, 0xFE00...0xFE0F, 0xFEFF: return .ignorable
        case 0x3040...0x309F: return .single
        default: break
        }
        guard let scalar = Unicode.Scalar(v) else { return .separator }
        let p = scalar.properties
        if p.isIdeographic { return .single }
        switch p.generalCategory {
        case .uppercaseLetter, .titlecaseLetter: return .upper
        case .lowercaseLetter: return .lower
        case .otherLetter, .modifierLetter: return .uncased
        case .decimalNumber, .letterNumber, .otherNumber: return .digit
        case .nonspacingMark, .spacingMark, .enclosingMark: return .mark
        default: return .separator
        }
    }

    /// Full-width ASCII (U+FF01–U+FF5E) read as ASCII.
    @inline(__always) static func narrow(_ v: UInt32) -> UInt32 {
        (v >= 0xFF01 && v <= 0xFF5E) ? v - 0xFEE0 : v
    }

    @inline(__always) func classify(_ i: Int) -> (CharClass, UInt32, Int) {
        let b = buf[i]
        if b < 0x80 { return (TextScanner.asciiClass(UInt32(b)), UInt32(b), 1) }
        let (raw, len) = decode(i)
        let v = TextScanner.narrow(raw)
        if v < 0x80 { return (TextScanner.asciiClass(v), v, len) }
        return (TextScanner.unicodeClass(v), v, len)
    }

    // MARK: Scanning

    mutating func scan<S: AnalyzerTermSink>(_ sink: inout S) {
        var i = 0
        let n = buf.count
        while i < n {
            let (cls, v, len) = classify(i)
            switch cls {
            case .upper, .lower, .digit, .uncased:
                if !active {
                    if len == 1, cls != .digit, let end = plainWordEnd(from: i) {
                        emitPlainWord(i, end, &sink)
                        i = end
                        continue
                    }
                    begin(at: i)
                }
                appendChar(v, cls)
                i += len
                srcEnd = i
            case .mark:
                if active {
                    // Belongs to the preceding unit.
                    appendScalarBytes(v)
                    srcEnd = i + len
                }
                i += len
            case .ignorable:
                i += len
                if active { srcEnd = i }
            case .single:
                finish(&sink)
                whole.removeAll(keepingCapacity: true)
                appendScalarBytes(v)
                srcStart = i
                i += len
                srcEnd = i
                sink.add(String(decoding: whole, as: UTF8.self))
                sink.endToken(srcStart..<srcEnd)
                whole.removeAll(keepingCapacity: true)
            case .apostrophe:
                if active, let last = units.last, last.kind != .digit,
                    i + len < n, classify(i + len).0.isLetter
                {
                    units.append(Unit(start: Int32(whole.count), kind: .apostrophe))
                    whole.append(0x27)
                } else {
                    finish(&sink)
                }
                i += len
            case .connector(let c):
                if active, let next = joinedConnectorEnd(at: i, first: c, firstLength: len) {
                    units.append(Unit(start: Int32(whole.count), kind: c == 0x5F ? .underscore : .connector))
                    if c == 0x5F {
                        // Keep the underscore run as written (it is ASCII).
                        var j = i
                        while j < next {
                            whole.append(0x5F)
                            j += classify(j).2
                        }
                    } else if c == 0x3A, next - i > len {
                        whole.append(0x3A)
                        whole.append(0x3A)
                    } else {
                        whole.append(c)
                    }
                    i = next
                } else {
                    finish(&sink)
                    i += len
                }
            case .separator:
                finish(&sink)
                i += len
            }
        }
        finish(&sink)
    }

    /// Fast path: if an ASCII letter at `i` starts a word of ASCII letters — all lower case after
    /// the first — that a separator (or the end) ends, the offset of its end.
    @inline(__always) func plainWordEnd(from i: Int) -> Int? {
        let n = buf.count
        var j = i + 1
        while j < n, buf[j] &- 0x61 < 26 { j += 1 }
        guard j < n else { return j }
        let b = buf[j]
        guard b < 0x80, case .separator = TextScanner.asciiClass(UInt32(b)) else { return nil }
        return j
    }

    mutating func emitPlainWord<S: AnalyzerTermSink>(_ i: Int, _ end: Int, _ sink: inout S) {
        whole.removeAll(keepingCapacity: true)
        whole.append(contentsOf: UnsafeBufferPointer(rebasing: buf[i..<end]))
        whole[0] |= 0x20
        whole.withUnsafeBufferPointer { w in emitWord(w, 0..<w.count, &sink) }
        sink.endToken(i..<end)
    }

    /// If the connector run starting at `i` joins two words, the offset just after the run.
    func joinedConnectorEnd(at i: Int, first c: UInt8, firstLength: Int) -> Int? {
        var j = i + firstLength
        let n = buf.count
        if c == 0x5F {
            while j < n {
                let (cls, _, len) = classify(j)
                guard case .connector(0x5F) = cls else { break }
                j += len
            }
        } else if c == 0x3A, j < n {
            let (cls, _, len) = classify(j)
            if case .connector(0x3A) = cls { j += len }
        }
        guard j < n, classify(j).0.isWordChar else { return nil }
        return j
    }

    @inline(__always) mutating func begin(at i: Int) {
        active = true
        srcStart = i
        whole.removeAll(keepingCapacity: true)
        units.removeAll(keepingCapacity: true)
    }

    @inline(__always) mutating func appendChar(_ v: UInt32, _ cls: CharClass) {
        let kind: UnitKind
        switch cls {
        case .upper: kind = .upper
        case .lower: kind = .lower
        case .digit: kind = .digit
        default: kind = .uncased
        }
        units.append(Unit(start: Int32(whole.count), kind: kind))
        if v < 0x80 {
            whole.append(cls == .upper ? UInt8(v) | 0x20 : UInt8(v))
            return
        }
        if v >= 0xC0, v <= 0x17F {
            let code = Fold.latin[Int(v - 0xC0)]
            if code != 0 {
                switch code {
                case 1: whole.append(0x61); whole.append(0x65)  // ae
                case 2: whole.append(0x74); whole.append(0x68)  // th
                case 3: whole.append(0x73); whole.append(0x73)  // ss
                case 4: whole.append(0x69); whole.append(0x6A)  // ij
                case 5: whole.append(0x6F); whole.append(0x65)  // oe
                default: whole.append(code)
                }
                return
            }
        }
        if cls == .upper, let scalar = Unicode.Scalar(v), scalar.properties.changesWhenLowercased {
            whole.append(contentsOf: scalar.properties.lowercaseMapping.utf8)
            return
        }
        appendScalarBytes(v)
    }

    @inline(__always) mutating func appendScalarBytes(_ v: UInt32) {
        if v < 0x80 {
            whole.append(UInt8(v))
        } else if v < 0x800 {
            whole.append(UInt8(0xC0 | (v >> 6)))
            whole.append(UInt8(0x80 | (v & 0x3F)))
        } else if v < 0x10000 {
            whole.append(UInt8(0xE0 | (v >> 12)))
            whole.append(UInt8(0x80 | ((v >> 6) & 0x3F)))
            whole.append(UInt8(0x80 | (v & 0x3F)))
        } else {
            whole.append(UInt8(0xF0 | (v >> 18)))
            whole.append(UInt8(0x80 | ((v >> 12) & 0x3F)))
            whole.append(UInt8(0x80 | ((v >> 6) & 0x3F)))
            whole.append(UInt8(0x80 | (v & 0x3F)))
        }
    }

    // MARK: Emitting

    /// Ends the current token, if any, and emits its terms.
    mutating func finish<S: AnalyzerTermSink>(_ sink: inout S) {
        guard active else { return }
        active = false
        splitParts()
        let total = whole.count
        whole.withUnsafeBufferPointer { w in
            if parts.count == 1, !parts[0].isGroup, parts[0].range == 0..<total {
                emitWord(w, 0..<total, &sink)
                return
            }
            if total <= Analyzer.maxTermBytes {
                sink.add(String(decoding: w, as: UTF8.self))
            }
            for p in parts where p.range.count != total {
                if p.isGroup {
                    sink.add(String(decoding: UnsafeBufferPointer(rebasing: w[p.range]), as: UTF8.self))
                } else {
                    emitWord(w, p.range, &sink)
                }
            }
        }
        sink.endToken(srcStart..<srcEnd)
    }

    /// Fills `parts` with the pieces of the current token. Groups lie between `.`, `-`, `:`
    /// connectors; a group that is itself compound (`max_user_watches` in
    /// `fs.inotify.max_user_watches`) is listed whole, then its words: the segments between
    /// underscores, split at case changes. Over-long segments are left out.
    mutating func splitParts() {
        parts.removeAll(keepingCapacity: true)
        let unitCount = units.count
        var g = 0
        while g < unitCount {
            var h = g
            while h < unitCount, units[h].kind != .connector { h += 1 }
            // Group units[g..<h].
            let groupStart = Int(units[g].start)
            let groupEnd = h < unitCount ? Int(units[h].start) : whole.count
            let groupIndex = parts.count
            var underscores = false
            var a = g
            while a < h {
                var b = a
                while b < h, units[b].kind != .underscore { b += 1 }
                // Segment units[a..<b].
                let segEnd = b < h ? Int(units[b].start) : groupEnd
                if segEnd - Int(units[a].start) <= Analyzer.maxTermBytes {
                    splitCase(a, b, segEnd)
                }
                if b < h { underscores = true }
                a = b + 1
            }
            if underscores || parts.count - groupIndex > 1, groupEnd - groupStart <= Analyzer.maxTermBytes {
                parts.insert(Part(range: groupStart..<groupEnd, isGroup: true), at: groupIndex)
            }
            g = h + 1
        }
    }

    /// Appends the case-split words of segment `units[a..<b]` (ending at byte `end`) to `parts`.
    mutating func splitCase(_ a: Int, _ b: Int, _ end: Int) {
        let first = parts.count
        var partStart = Int(units[a].start)
        var k = a + 1
        while k < b {
            let prev = units[k - 1].kind
            let cur = units[k].kind
            var boundary = false
            if cur == .upper {
                if prev == .lower {
                    boundary = true  // camelCase
                } else if prev == .upper || prev == .digit {
                    // HTTPServer, base64Encode: split before an upper followed by at least two
                    // lower (so URLs, IPv4 stay whole).
                    boundary = lowerRun(from: k + 1, to: b) >= 2
                }
            }
            if boundary {
                parts.append(Part(range: partStart..<Int(units[k].start), isGroup: false))
                partStart = Int(units[k].start)
            }
            k += 1
        }
        parts.append(Part(range: partStart..<end, isGroup: false))
        if parts.count - first > Analyzer.maxCaseParts {
            parts.removeSubrange(first...)
            parts.append(Part(range: Int(units[a].start)..<end, isGroup: false))
        }
    }

    /// Number of consecutive lower-case units starting at `k` (before `b`).
    @inline(__always) func lowerRun(from k: Int, to b: Int) -> Int {
        var j = k
        while j < b, units[j].kind == .lower { j += 1 }
        return j - k
    }

    /// Emits one word (a whole single-word token or a compound part): drops stop words and
    /// over-long words, stems words of ASCII letters.
    mutating func emitWord<S: AnalyzerTermSink>(_ w: UnsafeBufferPointer<UInt8>, _ r: Range<Int>, _ sink: inout S) {
        let count = r.count
        guard count > 0, count <= Analyzer.maxTermBytes else { return }
        let word = UnsafeBufferPointer(rebasing: w[r])
        var lettersOnly = true
        for c in word where !((c >= 0x61 && c <= 0x7A) || c == 0x27) {
            lettersOnly = false
            break
        }
        if !lettersOnly {
            sink.add(String(decoding: word, as: UTF8.self))
            return
        }
        if StopWords.contains(word) { return }
        if count <= 2 {
            sink.add(String(decoding: word, as: UTF8.self))
            return
        }
        stemBuffer.removeAll(keepingCapacity: true)
        stemBuffer.append(contentsOf: word)
        Porter2.stem(&stemBuffer)
        sink.add(String(decoding: stemBuffer, as: UTF8.self))
    }
}

// MARK: - Accent folding

private enum Fold {
    /// Lower-case ASCII base letter for U+00C0…U+017F; 0 = not folded, 1 = "ae", 2 = "th",
    /// 3 = "ss", 4 = "ij", 5 = "oe".
    static let latin: [UInt8] = {
        // Two-letter folds are written as the digits 1–5, `*` marks characters left alone.
        let table =
            // U+00C0–U+00FF
            "aaaaaa1ceeeeiiiidnooooo*ouuuuy23"
            + "aaaaaa1ceeeeiiiidnooooo*ouuuuy2y"
            // U+0100–U+017F
            + "aaaaaa" + "cccccccc" + "dddd" + "eeeeeeeeee" + "gggggggg" + "hhhh" + "iiiiiiiiii" + "44"
            + "jj" + "kkk" + "llllllllll" + "nnnnnnnnn" + "oooooo" + "55" + "rrrrrr" + "ssssssss"
            + "tttttt" + "uuuuuuuuuuuu" + "ww" + "yyy" + "zzzzzz" + "s"
        var out: [UInt8] = []
        for c in table.utf8 {
            switch c {
            case UInt8(ascii: "*"): out.append(0)
            case UInt8(ascii: "1")...UInt8(ascii: "5"): out.append(c - UInt8(ascii: "0"))
            default: out.append(c)
            }
        }
        precondition(out.count == 0x180 - 0xC0)
        return out
    }()
}
