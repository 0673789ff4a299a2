/// Metadata from a leading YAML front matter block (`---` … `---`), as used by static site generators.
public struct FrontMatter: Sendable, Equatable {
    /// The `title:` value, if any.
    public var title: String?
    /// The `tags:` values, in order.
    public var tags: [String]
    /// Lines consumed, including both fence lines; the document body starts on line `lineCount + 1`.
    public var lineCount: Int

    public init(title: String? = nil, tags: [String] = [], lineCount: Int) {
        self.title = title
        self.tags = tags
        self.lineCount = lineCount
    }

    /// Parses a leading YAML front matter block: a first line `---`, then lines up to a closing `---` or `...`.
    ///
    /// Only a small, forgiving subset of YAML is understood: top-level `key: value` pairs with plain or quoted
    /// scalars (`title` may also be a `|`/`>` block), and `tags` as a flow list `[a, b]`, a block list of
    /// `- a` lines, or a single string (split at commas). Other keys and nested content are ignored.
    /// Returns `nil` when the text does not start with a fence or the block is never closed.
    public static func parse(_ text: String) -> FrontMatter? {
        var text = text
        return text.withUTF8 { parse(bytes: $0) }
    }

    /// Byte-level entry point shared with the chunker.
    static func parse(bytes buf: UnsafeBufferPointer<UInt8>) -> FrontMatter? {
        var pos = 0
        if buf.count >= 3, buf[0] == 0xEF, buf[1] == 0xBB, buf[2] == 0xBF { pos = 3 }
        guard let first = nextLine(buf, &pos), isFence(buf, first, 0x2D) else { return nil }
        var body: [String] = []
        var count = 1
        while let line = nextLine(buf, &pos) {
            count += 1
            if isFence(buf, line, 0x2D) || isFence(buf, line, 0x2E) {
                return interpret(body, lineCount: count)
            }
            body.append(String(decoding: UnsafeBufferPointer(rebasing: buf[line]), as: UTF8.self))
        }
        return nil
    }

    /// The next line's content range (terminator excluded), advancing past `\n`, `\r\n` or `\r`.
    private static func nextLine(_ buf: UnsafeBufferPointer<UInt8>, _ pos: inout Int) -> Range<Int>? {
        let start = pos
        guard start < buf.count else { return nil }
        var i = start
        while i < buf.count, buf[i] != 0x0A, buf[i] != 0x0D { i += 1 }
        let end = i
        if i < buf.count {
            i += (buf[i] == 0x0D && i + 1 < buf.count && buf[i + 1] == 0x0A) ? 2 : 1
        }
        pos = i
        return start..<end
    }

    /// A line made of exactly three `char`s, optionally followed by spaces or tabs.
    private static func isFence(_ buf: UnsafeBufferPointer<UInt8>, _ line: Range<Int>, _ char: UInt8) -> Bool {
        guard line.count >= 3, buf[line.lowerBound] == char, buf[line.lowerBound + 1] == char,
              buf[line.lowerBound + 2] == char else { return false }
        for i in (line.lowerBound + 3)..<line.upperBound where buf[i] != 0x20 && buf[i] != 0x09 { return false }
        return true
    }

    private enum Mode {
        case none
        case titleBlock([String])
        case tagsBlock
        case flowTags(String)
    }

    private static func interpret(_ lines: [String], lineCount: Int) -> FrontMatter {
        var result = FrontMatter(lineCount: lineCount)
        var mode = Mode.none
        for line in lines {
            let trimmed = trim(Substring(line))
            switch mode {
            case .none:
                break
            case .flowTags(let accumulated):
                let joined = accumulated + " " + trimmed
                if trimmed.contains("]") {
                    result.tags = flowList(Substring(joined))
                    mode = .none
                } else {
                    mode = .flowTags(joined)
                }
                continue
            case .titleBlock(var parts):
                if trimmed.isEmpty || line.first == " " || line.first == "\t" {
                    if !trimmed.isEmpty { parts.append(String(trimmed)) }
                    mode = .titleBlock(parts)
                    continue
                }
                let joined = parts.joined(separator: " ")
                result.title = joined.isEmpty ? nil : joined
                mode = .none
            case .tagsBlock:
                if trimmed.hasPrefix("- ") || trimmed == "-" {
                    let item = scalar(trimmed.dropFirst())
                    if !item.isEmpty { result.tags.append(item) }
                    continue
                }
                if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
                mode = .none
            }
            if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
            if line.first == " " || line.first == "\t" { continue }  // nested content of another key
            guard let (key, value) = keyValue(trimmed) else { continue }
            switch key.lowercased() {
            case "title":
                if ["|", ">", "|-", ">-", "|+", ">+", ""].contains(value) {
                    mode = .titleBlock([])
                } else {
                    let title = scalar(value)
                    result.title = title.isEmpty ? nil : title
                }
            case "tags":
                if value.hasPrefix("[") {
                    if value.contains("]") {
                        result.tags = flowList(value)
                    } else {
                        mode = .flowTags(String(value))
                    }
                } else if value.isEmpty {
                    result.tags = []
                    mode = .tagsBlock
                } else {
                    result.tags = scalar(value).split(separator: ",").map { String(trim($0)) }.filter { !$0.isEmpty }
                }
            default:
                break
            }
        }
        if case .titleBlock(let parts) = mode, !parts.isEmpty {
            result.title = parts.joined(separator: " ")
        }
        return result
    }

    /// Splits `key: value` at the first colon followed by a space or the end of the line.
    private static func keyValue(_ line: Substring) -> (Substring, Substring)? {
        var index = line.startIndex
        while index < line.endIndex {
            if line[index] == ":" {
                let next = line.index(after: index)
                if next == line.endIndex || line[next] == " " || line[next] == "\t" {
                    let key = trim(line[..<index])
                    guard !key.isEmpty else { return nil }
                    return (unquotedKey(key), trim(line[next...]))
                }
            }
            index = line.index(after: index)
        }
        return nil
    }

    private static func unquotedKey(_ key: Substring) -> Substring {
        if key.count >= 2, let f = key.first, f == key.last, f == "\"" || f == "'" {
            return key.dropFirst().dropLast()
        }
        return key
    }

    /// The items of a flow list `[a, "b", 'c']`.
    private static func flowList(_ value: Substring) -> [String] {
        guard let open = value.firstIndex(of: "[") else { return [] }
        let close = value.lastIndex(of: "]") ?? value.endIndex
        let inner = value[value.index(after: open)..<max(close, value.index(after: open))]
        var items: [String] = []
        var quote: Character?
        var start = inner.startIndex
        var index = inner.startIndex
        while index < inner.endIndex {
            let c = inner[index]
            if let q = quote {
                if c == q { quote = nil }
            } else if c == "\"" || c == "'" {
                quote = c
            } else if c == "," {
                let item = scalar(trim(inner[start..<index]))
                if !item.isEmpty { items.append(item) }
                start = inner.index(after: index)
            }
            index = inner.index(after: index)
        }
        let item = scalar(trim(inner[start...]))
        if !item.isEmpty { items.append(item) }
        return items
    }

    /// A plain, single-quoted or double-quoted YAML scalar.
    private static func scalar(_ raw: Substring) -> String {
        let value = trim(raw)
        guard let first = value.first else { return "" }
        if first == "\"" {
            var out = ""
            var escaped = false
            for c in value.dropFirst() {
                if escaped {
                    switch c {
                    case "n": out.append("\n")
                    case "t": out.append("\t")
                    default: out.append(c)
                    }
                    escaped = false
                } else if c == "\\" {
                    escaped = true
                } else if c == "\"" {
                    break
                } else {
                    out.append(c)
                }
            }
            return out
        }
        if first == "'" {
            var out = ""
            var rest = value.dropFirst()
            while let c = rest.first {
                rest = rest.dropFirst()
                if c == "'" {
                    if rest.first == "'" {
                        out.append("'")
                        rest = rest.dropFirst()
                    } else {
                        break
                    }
                } else {
                    out.append(c)
                }
            }
            return out
        }
        // Plain scalar: a ` #` starts a comment.
        var index = value.startIndex
        while index < value.endIndex {
            let next = value.index(after: index)
            if value[index] == " " || value[index] == "\t", next < value.endIndex, value[next] == "#" {
                return String(trim(value[..<index]))
            }
            index = next
        }
        return String(value)
    }

    private static func trim(_ s: Substring) -> Substring {
        var s = s
        while let c = s.first, c == " " || c == "\t" { s = s.dropFirst() }
        while let c = s.last, c == " " || c == "\t" { s = s.dropLast() }
        return s
    }
}
