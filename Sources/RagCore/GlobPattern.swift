/// A malformed glob pattern.
public struct GlobError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The pattern as written.
    public var pattern: String
    /// What is wrong with it, e.g. "unclosed '['".
    public var message: String

    public init(pattern: String, message: String) {
        self.pattern = pattern
        self.message = message
    }

    public var description: String { "invalid glob pattern '\(pattern)': \(message)" }
}

/// A path glob in the style of `.gitignore`, matched against `/`-separated relative paths.
///
/// - `*` matches any run of characters within one path component (including none);
/// - `**` as a whole component matches any number of components; `**/` may match none,
///   so `**/*.md` matches `a.md` and `x/y/a.md`; a trailing `/**` matches everything below
///   (at least one component); `**` inside a component (`a**b`) acts like `*`;
/// - `?` matches exactly one character (a Unicode scalar), never `/`;
/// - `[abc]`, `[a-z]`, `[!a]` (also `[^a]`) match one character from / not from a class;
///   `]` first in a class is literal; `\` escapes inside classes too;
/// - `\` makes the next character literal.
///
/// A pattern without `/` matches the file *name* at any depth (`*.md` matches `docs/a.md`).
/// A pattern with `/` is anchored to the source root (`docs/*.md` matches `docs/a.md` only);
/// a leading `/` just forces anchoring. A trailing `/` matches everything under a folder of
/// that name (`build/` matches `build/x` and `a/build/y`).
///
/// Matching is case-sensitive and works on UTF-8 bytes without allocating.
public struct GlobPattern: Sendable, Hashable, CustomStringConvertible {
    /// The pattern as written.
    public let pattern: String
    private let segments: [Segment]

    /// Compiles `pattern`; throws ``GlobError`` if it is malformed.
    public init(_ pattern: String) throws {
        self.pattern = pattern
        self.segments = try GlobCompiler.compile(pattern)
    }

    /// Whether `relativePath` (components separated by `/`, no leading `/`) matches.
    public func matches(_ relativePath: String) -> Bool {
        var path = relativePath
        return path.withUTF8 { bytes in
            guard !bytes.isEmpty else { return false }
            var ranges: [Range<Int>] = []
            var start = 0
            for i in 0..<bytes.count where bytes[i] == UInt8(ascii: "/") {
                ranges.append(start..<i)
                start = i + 1
            }
            ranges.append(start..<bytes.count)
            return matchSegments(bytes, ranges)
        }
    }

    public var description: String { pattern }

    public static func == (lhs: GlobPattern, rhs: GlobPattern) -> Bool { lhs.pattern == rhs.pattern }
    public func hash(into hasher: inout Hasher) { hasher.combine(pattern) }

    // MARK: Matching

    /// Wildcard matching over components, `**` playing the role of `*`.
    private func matchSegments(_ path: UnsafeBufferPointer<UInt8>, _ components: [Range<Int>]) -> Bool {
        var si = 0, ci = 0
        var starSegment = -1, starComponent = 0
        while ci < components.count {
            if si < segments.count {
                switch segments[si] {
                case .globstar:
                    starSegment = si
                    starComponent = ci
                    si += 1
                    continue
                case .tokens(let tokens):
                    if GlobPattern.matchComponent(path, components[ci], tokens) {
                        si += 1
                        ci += 1
                        continue
                    }
                }
            }
            guard starSegment >= 0 else { return false }
            si = starSegment + 1
            starComponent += 1
            ci = starComponent
        }
        while si < segments.count, case .globstar = segments[si] { si += 1 }
        return si == segments.count
    }

    /// Wildcard matching of one component; `*` backtracks scalar by scalar.
    private static func matchComponent(_ s: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, _ tokens: [Token]) -> Bool {
        var ti = 0, si = range.lowerBound
        let end = range.upperBound
        var starToken = -1, starPosition = 0
        while si < end {
            if ti < tokens.count {
                switch tokens[ti] {
                case .star:
                    starToken = ti
                    starPosition = si
                    ti += 1
                    continue
                case .byte(let b):
                    if s[si] == b {
                        ti += 1
                        si += 1
                        continue
                    }
                case .any:
                    si = nextScalar(s, si, end)
                    ti += 1
                    continue
                case .set(let set):
                    let (scalar, next) = decodeScalar(s, si, end)
                    if set.contains(scalar) {
                        si = next
                        ti += 1
                        continue
                    }
                }
            }
            guard starToken >= 0 else { return false }
            ti = starToken + 1
            starPosition = nextScalar(s, starPosition, end)
            si = starPosition
        }
        while ti < tokens.count, case .star = tokens[ti] { ti += 1 }
        return ti == tokens.count
    }

    @inline(__always)
    private static func nextScalar(_ s: UnsafeBufferPointer<UInt8>, _ i: Int, _ end: Int) -> Int {
        var j = i + 1
        while j < end, s[j] & 0xC0 == 0x80 { j += 1 }
        return j
    }

    private static func decodeScalar(_ s: UnsafeBufferPointer<UInt8>, _ i: Int, _ end: Int) -> (UInt32, Int) {
        let lead = s[i]
        if lead < 0x80 { return (UInt32(lead), i + 1) }
        let next = nextScalar(s, i, end)
        var value: UInt32
        switch next - i {
        case 2: value = UInt32(lead & 0x1F)
        case 3: value = UInt32(lead & 0x0F)
        default: value = UInt32(lead & 0x07)
        }
        for j in (i + 1)..<next { value = value << 6 | UInt32(s[j] & 0x3F) }
        return (value, next)
    }
}

// MARK: - Compiled form

extension GlobPattern {
    fileprivate enum Segment: Sendable {
        case globstar
        case tokens([Token])
    }

    fileprivate enum Token: Sendable {
        case byte(UInt8)
        case any
        case star
        case set(CharacterSet)
    }

    fileprivate struct CharacterSet: Sendable {
        var ranges: [ClosedRange<UInt32>]
        var negated: Bool

        func contains(_ scalar: UInt32) -> Bool {
            var found = false
            for range in ranges where range.contains(scalar) {
                found = true
                break
            }
            return found != negated
        }
    }
}

/// Turns pattern text into segments.
private enum GlobCompiler {
    typealias Segment = GlobPattern.Segment
    typealias Token = GlobPattern.Token

    static func compile(_ pattern: String) throws -> [Segment] {
        func fail(_ message: String) -> GlobError { GlobError(pattern: pattern, message: message) }
        let scalars = Array(pattern.unicodeScalars)
        guard !scalars.isEmpty else { throw fail("empty pattern") }

        // Split into components on unescaped `/` (a `/` inside `[...]` is rejected below).
        var components: [[Unicode.Scalar]] = [[]]
        var i = 0
        while i < scalars.count {
            let c = scalars[i]
            if c == "\\" {
                guard i + 1 < scalars.count else { throw fail("trailing '\\' escapes nothing") }
                components[components.count - 1].append(c)
                components[components.count - 1].append(scalars[i + 1])
                i += 2
                continue
            }
            if c == "/" {
                components.append([])
            } else {
                components[components.count - 1].append(c)
            }
            i += 1
        }

        var anchored = false
        var directoryOnly = false
        if components.count > 1, components.first!.isEmpty {
            anchored = true
            components.removeFirst()
        }
        if components.count > 1, components.last!.isEmpty {
            directoryOnly = true
            components.removeLast()
        }
        if components.count > 1 { anchored = true }
        if components.contains(where: \.isEmpty) {
            throw fail(components.count == 1 ? "pattern has no name" : "empty path component ('//')")
        }

        var segments: [Segment] = []
        if !anchored { segments.append(.globstar) }
        for component in components {
            if component.count == 2, component[0] == "*", component[1] == "*" {
                if case .globstar = segments.last { continue }
                segments.append(.globstar)
            } else {
                segments.append(.tokens(try compileComponent(component, fail)))
            }
        }
        func endsWithGlobstar() -> Bool {
            if case .globstar = segments.last { return true }
            return false
        }
        if directoryOnly, !endsWithGlobstar() { segments.append(.globstar) }
        // A trailing `**` means "something below": at least one more component.
        if endsWithGlobstar() { segments.insert(.tokens([.star]), at: segments.count - 1) }
        return segments
    }

    private static func compileComponent(_ s: [Unicode.Scalar], _ fail: (String) -> GlobError) throws -> [Token] {
        var tokens: [Token] = []
        func appendLiteral(_ scalar: Unicode.Scalar) {
            for byte in String(Character(scalar)).utf8 { tokens.append(.byte(byte)) }
        }
        var i = 0
        while i < s.count {
            let c = s[i]
            switch c {
            case "\\":
                appendLiteral(s[i + 1])  // the splitter guarantees a following scalar
                i += 2
            case "*":
                if case .star = tokens.last {} else { tokens.append(.star) }
                i += 1
            case "?":
                tokens.append(.any)
                i += 1
            case "[":
                var j = i + 1
                var negated = false
                if j < s.count, s[j] == "!" || s[j] == "^" {
                    negated = true
                    j += 1
                }
                var ranges: [ClosedRange<UInt32>] = []
                var first = true
                var closed = false
                while j < s.count {
                    var c = s[j]
                    if c == "]" && !first {
                        closed = true
                        j += 1
                        break
                    }
                    first = false
                    if c == "\\" {
                        guard j + 1 < s.count else { break }
                        j += 1
                        c = s[j]
                    }
                    j += 1
                    var upper = c
                    if j + 1 < s.count, s[j] == "-", s[j + 1] != "]" {
                        var u = s[j + 1]
                        j += 2
                        if u == "\\" {
                            guard j < s.count else { break }
                            u = s[j]
                            j += 1
                        }
                        guard c.value <= u.value else {
                            throw fail("reversed range '\(c)-\(u)' in character class")
                        }
                        upper = u
                    }
                    ranges.append(c.value...upper.value)
                }
                guard closed else { throw fail("unclosed '['") }
                tokens.append(.set(GlobPattern.CharacterSet(ranges: ranges, negated: negated)))
                i = j
            default:
                appendLiteral(c)
                i += 1
            }
        }
        return tokens
    }
}
