// A TOML 1.0 parser for configuration files.
//
// Supported: comments; bare, quoted and dotted keys; basic and literal strings (single- and
// multi-line, all escapes); integers (decimal, 0x, 0o, 0b, underscores); floats (incl. inf/nan);
// booleans; arrays (multi-line, trailing comma, mixed types); inline tables; `[table]` and
// `[[array.of.tables]]`. Duplicate keys and redefined tables are errors, as the spec requires.
// Not supported: offset/local dates and times, which are rejected with a clear error.

/// A parsed TOML value together with the 1-based line where it was defined: the line of its
/// key for values in tables, the line of the header for `[table]` / `[[table]]`, the line of
/// the element itself for array elements.
public struct TOMLValue: Sendable, Equatable, CustomStringConvertible {
    /// The value proper.
    public enum Kind: Sendable, Equatable {
        case string(String)
        case integer(Int64)
        case float(Double)
        case boolean(Bool)
        case array([TOMLValue])
        case table(TOMLTable)
    }

    public var kind: Kind
    /// 1-based source line (see the type's documentation).
    public var line: Int

    public init(_ kind: Kind, line: Int) {
        self.kind = kind
        self.line = line
    }

    /// Equality compares contents only, not source lines.
    public static func == (lhs: TOMLValue, rhs: TOMLValue) -> Bool { lhs.kind == rhs.kind }

    /// "a string", "an integer", "a float", "a boolean", "an array" or "a table" (for messages).
    public var typeName: String {
        switch kind {
        case .string: "a string"
        case .integer: "an integer"
        case .float: "a float"
        case .boolean: "a boolean"
        case .array: "an array"
        case .table: "a table"
        }
    }

    public var stringValue: String? { if case .string(let v) = kind { v } else { nil } }
    public var integerValue: Int64? { if case .integer(let v) = kind { v } else { nil } }
    /// The value of a float; `nil` for integers too (no silent conversion).
    public var floatValue: Double? { if case .float(let v) = kind { v } else { nil } }
    public var boolValue: Bool? { if case .boolean(let v) = kind { v } else { nil } }
    public var arrayValue: [TOMLValue]? { if case .array(let v) = kind { v } else { nil } }
    public var tableValue: TOMLTable? { if case .table(let v) = kind { v } else { nil } }

    public var description: String {
        switch kind {
        case .string(let s): "\"\(s)\""
        case .integer(let i): "\(i)"
        case .float(let d): "\(d)"
        case .boolean(let b): "\(b)"
        case .array(let a): "[" + a.map(\.description).joined(separator: ", ") + "]"
        case .table(let t): t.description
        }
    }
}

/// A TOML table: keys in definition order, each with a ``TOMLValue``.
public struct TOMLTable: Sendable, Equatable, CustomStringConvertible {
    /// Keys in the order they were first defined.
    public private(set) var keys: [String] = []
    private var storage: [String: TOMLValue] = [:]

    public init() {}

    /// The value for `key`, if defined.
    public subscript(key: String) -> TOMLValue? { storage[key] }

    public var count: Int { keys.count }
    public var isEmpty: Bool { keys.isEmpty }

    /// `(key, value)` pairs in definition order.
    public var entries: [(key: String, value: TOMLValue)] { keys.map { ($0, storage[$0]!) } }

    /// Sets `value` for `key`, keeping the key's original position if it already exists.
    public mutating func set(_ key: String, _ value: TOMLValue) {
        if storage.updateValue(value, forKey: key) == nil { keys.append(key) }
    }

    /// Equality ignores key order and source lines.
    public static func == (lhs: TOMLTable, rhs: TOMLTable) -> Bool { lhs.storage == rhs.storage }

    public var description: String {
        "{" + entries.map { "\($0.key) = \($0.value)" }.joined(separator: ", ") + "}"
    }
}

/// A syntax or structure error in a TOML document, with its 1-based line and column.
public struct TOMLError: Error, Sendable, Equatable, CustomStringConvertible {
    public var line: Int
    /// 1-based column, counted in UTF-8 bytes.
    public var column: Int
    public var message: String

    public init(line: Int, column: Int, message: String) {
        self.line = line
        self.column = column
        self.message = message
    }

    public var description: String { "line \(line), column \(column): \(message)" }
}

/// Entry point of the TOML parser.
public enum TOML {
    /// Parses a whole document into its root table; throws ``TOMLError``.
    public static func parse(_ text: String) throws -> TOMLTable {
        var parser = TOMLParser(Array(text.utf8))
        let root = try parser.parseDocument()
        return root.build()
    }
}

// MARK: - Builder (mutable tree used while parsing)

/// A table under construction; tracks how it came to exist to enforce the redefinition rules.
private final class TableBuilder {
    enum Origin {
        case root
        /// Created as a parent of a `[x.y]` header; may later be defined by its own header once.
        case implicit
        /// Defined by a `[header]` or `[[header]]`.
        case header
        /// Created by a dotted key (`a.b = 1`); extendable only by more dotted keys.
        case dotted
        /// An inline table being parsed.
        case inline
    }

    enum Entry {
        case value(TOMLValue)
        case table(TableBuilder)
        case tableArray(TableArrayBuilder)
    }

    var origin: Origin
    var line: Int
    /// Full dotted key path, for messages (relative to the inline table for inline tables).
    let path: [String]
    var order: [String] = []
    var entries: [String: Entry] = [:]

    init(origin: Origin, line: Int, path: [String]) {
        self.origin = origin
        self.line = line
        self.path = path
    }

    func add(_ key: String, _ entry: Entry) {
        order.append(key)
        entries[key] = entry
    }

    func build() -> TOMLTable {
        var table = TOMLTable()
        for key in order {
            switch entries[key]! {
            case .value(let v):
                table.set(key, v)
            case .table(let t):
                table.set(key, TOMLValue(.table(t.build()), line: t.line))
            case .tableArray(let a):
                let elements = a.tables.map { TOMLValue(.table($0.build()), line: $0.line) }
                table.set(key, TOMLValue(.array(elements), line: a.line))
            }
        }
        return table
    }
}

private final class TableArrayBuilder {
    var tables: [TableBuilder]
    var line: Int

    init(first: TableBuilder, line: Int) {
        self.tables = [first]
        self.line = line
    }
}

// MARK: - Parser

private struct TOMLParser {
    let b: [UInt8]
    var i = 0
    var line = 1
    var lineStart = 0

    init(_ bytes: [UInt8]) {
        self.b = bytes
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) {  // UTF-8 byte order mark
            i = 3
            lineStart = 3
        }
    }

    // MARK: Low level

    var atEnd: Bool { i >= b.count }
    var peek: UInt8? { i < b.count ? b[i] : nil }
    func peek(_ offset: Int) -> UInt8? { i + offset < b.count ? b[i + offset] : nil }

    func error(_ message: String, at position: Int? = nil) -> TOMLError {
        TOMLError(line: line, column: (position ?? i) - lineStart + 1, message: message)
    }

    mutating func skipSpaces() {
        while let c = peek, c == .space || c == .tab { i += 1 }
    }

    /// Consumes LF or CRLF; returns false if not at a newline. A lone CR is an error.
    mutating func consumeNewline() throws -> Bool {
        guard let c = peek else { return false }
        if c == .lf {
            i += 1
        } else if c == .cr {
            guard peek(1) == .lf else { throw error("carriage return not followed by line feed") }
            i += 2
        } else {
            return false
        }
        line += 1
        lineStart = i
        return true
    }

    /// Skips a `#` comment up to (not including) the end of the line.
    mutating func skipComment() throws {
        guard peek == .hash else { return }
        while let c = peek, c != .lf, c != .cr {
            if isForbiddenControl(c) { throw error("control character \(hexByte(c)) in comment") }
            i += 1
        }
    }

    /// Skips whitespace, comments and newlines (inside arrays).
    mutating func skipBlank() throws {
        while true {
            skipSpaces()
            try skipComment()
            if try !consumeNewline() { return }
        }
    }

    /// After an expression: optional spaces and comment, then a newline or the end.
    mutating func expectEndOfLine(after what: String) throws {
        skipSpaces()
        try skipComment()
        if atEnd { return }
        if try !consumeNewline() {
            throw error("expected the end of the line after \(what), found \(describe(b[i]))")
        }
    }

    // MARK: Document

    mutating func parseDocument() throws -> TableBuilder {
        let root = TableBuilder(origin: .root, line: 1, path: [])
        var current = root
        while true {
            skipSpaces()
            guard let c = peek else { break }
            if c == .hash {
                try skipComment()
                try expectEndOfLine(after: "a comment")
            } else if c == .lf || c == .cr {
                _ = try consumeNewline()
            } else if c == .openBracket {
                current = try parseHeader(root: root)
            } else {
                try parseKeyValue(into: current)
                try expectEndOfLine(after: "a value")
            }
        }
        return root
    }

    mutating func parseKeyValue(into table: TableBuilder) throws {
        let keyLine = line
        let keyStart = i
        let keys = try parseKey()
        skipSpaces()
        guard peek == .equals else {
            if atEnd || peek == .lf || peek == .cr {
                throw error("expected '=' after key '\(keys.joined(separator: "."))'")
            }
            throw error("expected '=' after key '\(keys.joined(separator: "."))', found \(describe(b[i]))")
        }
        i += 1
        skipSpaces()
        let value = try parseValue(line: keyLine)
        try insert(keys, value, into: table, line: keyLine, position: keyStart)
    }

    /// Stores `value` under the dotted key path `keys`, relative to `table`.
    func insert(_ keys: [String], _ value: TOMLValue, into table: TableBuilder, line keyLine: Int, position: Int) throws {
        var t = table
        let fullKey = (table.path + keys).joined(separator: ".")
        for (n, key) in keys.enumerated() {
            let path = (table.path + keys[...n]).joined(separator: ".")
            let existing = t.entries[key]
            if n == keys.count - 1 {
                if let existing {
                    throw TOMLError(
                        line: keyLine, column: position - lineStart + 1,
                        message: "duplicate key '\(path)' (first defined at line \(Self.line(of: existing)))")
                }
                t.add(key, .value(value))
                return
            }
            switch existing {
            case nil:
                let child = TableBuilder(origin: .dotted, line: keyLine, path: t.path + [key])
                t.add(key, .table(child))
                t = child
            case .table(let child) where child.origin == .dotted:
                t = child
            case .table(let child):
                throw TOMLError(
                    line: keyLine, column: position - lineStart + 1,
                    message: "dotted key '\(fullKey)' cannot add to table '\(path)' defined at line \(child.line)")
            case .value(let v):
                throw TOMLError(
                    line: keyLine, column: position - lineStart + 1,
                    message: "key '\(path)' is already \(v.typeName) (defined at line \(v.line)), not a table")
            case .tableArray(let a):
                throw TOMLError(
                    line: keyLine, column: position - lineStart + 1,
                    message: "key '\(path)' is already an array of tables (defined at line \(a.line))")
            }
        }
    }

    static func line(of entry: TableBuilder.Entry) -> Int {
        switch entry {
        case .value(let v): v.line
        case .table(let t): t.line
        case .tableArray(let a): a.line
        }
    }

    /// Parses `[a.b]` or `[[a.b]]` and returns the table that following keys go into.
    mutating func parseHeader(root: TableBuilder) throws -> TableBuilder {
        let headerStart = i
        let isArray = peek(1) == .openBracket
        i += isArray ? 2 : 1
        skipSpaces()
        let keys = try parseKey()
        skipSpaces()
        if isArray {
            guard peek == .closeBracket, peek(1) == .closeBracket else { throw error("expected ']]' to close the table array header") }
            i += 2
        } else {
            guard peek == .closeBracket else { throw error("expected ']' to close the table header") }
            i += 1
        }
        let headerLine = line
        func fail(_ message: String) -> TOMLError {
            TOMLError(line: headerLine, column: headerStart - lineStart + 1, message: message)
        }

        var t = root
        for (n, key) in keys.dropLast().enumerated() {
            let path = keys[...n].joined(separator: ".")
            switch t.entries[key] {
            case nil:
                let child = TableBuilder(origin: .implicit, line: headerLine, path: Array(keys[...n]))
                t.add(key, .table(child))
                t = child
            case .table(let child):
                t = child
            case .tableArray(let a):
                t = a.tables[a.tables.count - 1]
            case .value(let v):
                throw fail("key '\(path)' is already \(v.typeName) (defined at line \(v.line)), not a table")
            }
        }
        let key = keys[keys.count - 1]
        let path = keys.joined(separator: ".")
        let table = TableBuilder(origin: .header, line: headerLine, path: keys)
        switch t.entries[key] {
        case nil:
            if isArray {
                t.add(key, .tableArray(TableArrayBuilder(first: table, line: headerLine)))
            } else {
                t.add(key, .table(table))
            }
            try expectEndOfLine(after: "a table header")
            return table
        case .table(let existing):
            if !isArray, existing.origin == .implicit {
                existing.origin = .header
                existing.line = headerLine
                try expectEndOfLine(after: "a table header")
                return existing
            }
            if isArray { throw fail("cannot define '\(path)' as an array of tables: it is already a table (line \(existing.line))") }
            throw fail("table '\(path)' is already defined (line \(existing.line))")
        case .tableArray(let a):
            guard isArray else { throw fail("table '\(path)' is already defined as an array of tables (line \(a.line))") }
            a.tables.append(table)
            try expectEndOfLine(after: "a table header")
            return table
        case .value(let v):
            throw fail("key '\(path)' is already \(v.typeName) (defined at line \(v.line))")
        }
    }

    // MARK: Keys

    mutating func parseKey() throws -> [String] {
        var keys = [try parseSimpleKey()]
        while true {
            let save = i
            skipSpaces()
            guard peek == .dot else {
                i = save
                return keys
            }
            i += 1
            skipSpaces()
            keys.append(try parseSimpleKey())
        }
    }

    mutating func parseSimpleKey() throws -> String {
        guard let c = peek else { throw error("expected a key, found the end of the file") }
        if c == .quote {
            if peek(1) == .quote, peek(2) == .quote { throw error("multi-line strings cannot be keys") }
            return try parseBasicString()
        }
        if c == .apostrophe {
            if peek(1) == .apostrophe, peek(2) == .apostrophe { throw error("multi-line strings cannot be keys") }
            return try parseLiteralString()
        }
        let start = i
        while let c = peek, isBareKeyByte(c) { i += 1 }
        guard i > start else { throw error("expected a key, found \(describe(c))") }
        return String(decoding: b[start..<i], as: UTF8.self)
    }

    // MARK: Values

    mutating func parseValue(line valueLine: Int) throws -> TOMLValue {
        guard let c = peek else { throw error("expected a value, found the end of the file") }
        switch c {
        case .quote:
            if peek(1) == .quote, peek(2) == .quote {
                return TOMLValue(.string(try parseMultiLineString(quote: .quote)), line: valueLine)
            }
            return TOMLValue(.string(try parseBasicString()), line: valueLine)
        case .apostrophe:
            if peek(1) == .apostrophe, peek(2) == .apostrophe {
                return TOMLValue(.string(try parseMultiLineString(quote: .apostrophe)), line: valueLine)
            }
            return TOMLValue(.string(try parseLiteralString()), line: valueLine)
        case .openBracket:
            return try parseArray(line: valueLine)
        case .openBrace:
            return try parseInlineTable(line: valueLine)
        case UInt8(ascii: "t"), UInt8(ascii: "f"):
            if matchWord("true") { return TOMLValue(.boolean(true), line: valueLine) }
            if matchWord("false") { return TOMLValue(.boolean(false), line: valueLine) }
            throw error("expected a value, found \(describeWord()) (strings need quotes)")
        case UInt8(ascii: "0")...UInt8(ascii: "9"), .plus, .minus, UInt8(ascii: "i"), UInt8(ascii: "n"):
            return TOMLValue(try parseNumber(), line: valueLine)
        default:
            if isBareKeyByte(c) { throw error("expected a value, found \(describeWord()) (strings need quotes)") }
            throw error("expected a value, found \(describe(c))")
        }
    }

    /// Consumes `word` if it is next and followed by a delimiter.
    mutating func matchWord(_ word: StaticString) -> Bool {
        let n = word.utf8CodeUnitCount
        guard i + n <= b.count else { return false }
        for k in 0..<n where b[i + k] != word.utf8Start[k] { return false }
        if let next = peek(n), isBareKeyByte(next) { return false }
        i += n
        return true
    }

    func describeWord() -> String {
        var j = i
        while j < b.count, isBareKeyByte(b[j]), j - i < 40 { j += 1 }
        return "'" + String(decoding: b[i..<max(j, i + 1)], as: UTF8.self) + "'"
    }

    mutating func parseArray(line valueLine: Int) throws -> TOMLValue {
        i += 1
        var elements: [TOMLValue] = []
        while true {
            try skipBlank()
            guard let c = peek else { throw error("unterminated array (missing ']')") }
            if c == .closeBracket {
                i += 1
                return TOMLValue(.array(elements), line: valueLine)
            }
            elements.append(try parseValue(line: line))
            try skipBlank()
            guard let d = peek else { throw error("unterminated array (missing ']')") }
            if d == .comma {
                i += 1
            } else if d == .closeBracket {
                i += 1
                return TOMLValue(.array(elements), line: valueLine)
            } else {
                throw error("expected ',' or ']' in array, found \(describe(d))")
            }
        }
    }

    mutating func parseInlineTable(line valueLine: Int) throws -> TOMLValue {
        i += 1
        let table = TableBuilder(origin: .inline, line: valueLine, path: [])
        skipSpaces()
        if peek == .closeBrace {
            i += 1
            return TOMLValue(.table(table.build()), line: valueLine)
        }
        while true {
            skipSpaces()
            guard let c = peek else { throw error("unterminated inline table (missing '}')") }
            if c == .lf || c == .cr { throw error("inline tables must be on one line") }
            if c == .closeBrace { throw error("trailing comma is not allowed in an inline table") }
            let keyStart = i
            let keyLine = line
            let keys = try parseKey()
            skipSpaces()
            guard peek == .equals else { throw error("expected '=' after key '\(keys.joined(separator: "."))' in inline table") }
            i += 1
            skipSpaces()
            let value = try parseValue(line: line)
            try insert(keys, value, into: table, line: keyLine, position: keyStart)
            skipSpaces()
            guard let d = peek else { throw error("unterminated inline table (missing '}')") }
            if d == .comma {
                i += 1
            } else if d == .closeBrace {
                i += 1
                return TOMLValue(.table(table.build()), line: valueLine)
            } else if d == .lf || d == .cr {
                throw error("inline tables must be on one line")
            } else {
                throw error("expected ',' or '}' in inline table, found \(describe(d))")
            }
        }
    }

    // MARK: Strings

    mutating func parseBasicString() throws -> String {
        let open = i
        i += 1
        var out: [UInt8] = []
        while true {
            guard let c = peek else { throw error("unterminated string", at: open) }
            switch c {
            case .quote:
                i += 1
                return String(decoding: out, as: UTF8.self)
            case .backslash:
                try parseEscape(into: &out)
            case .lf, .cr:
                throw error("unterminated string (basic strings cannot span lines; use \"\"\")", at: open)
            default:
                if isForbiddenControl(c) { throw error("control character \(hexByte(c)) must be escaped in a string") }
                out.append(c)
                i += 1
            }
        }
    }

    mutating func parseLiteralString() throws -> String {
        let open = i
        i += 1
        let start = i
        while true {
            guard let c = peek else { throw error("unterminated string", at: open) }
            if c == .apostrophe {
                let s = String(decoding: b[start..<i], as: UTF8.self)
                i += 1
                return s
            }
            if c == .lf || c == .cr { throw error("unterminated string (literal strings cannot span lines; use ''')", at: open) }
            if isForbiddenControl(c) { throw error("control character \(hexByte(c)) is not allowed in a literal string") }
            i += 1
        }
    }

    /// `"""…"""` (with escapes) or `'''…'''` (without).
    mutating func parseMultiLineString(quote: UInt8) throws -> String {
        let openLine = line, openColumn = i - lineStart + 1
        i += 3
        _ = try consumeNewline()  // a newline right after the delimiter is trimmed
        var out: [UInt8] = []
        while true {
            guard let c = peek else {
                throw TOMLError(line: openLine, column: openColumn, message: "unterminated multi-line string")
            }
            if c == quote {
                var n = 0
                while peek(n) == quote { n += 1 }
                if n >= 3 {
                    guard n <= 5 else { throw error("too many quotes at the end of a multi-line string") }
                    out.append(contentsOf: repeatElement(quote, count: n - 3))
                    i += n
                    return String(decoding: out, as: UTF8.self)
                }
                out.append(contentsOf: repeatElement(quote, count: n))
                i += n
            } else if c == .lf || c == .cr {
                _ = try consumeNewline()
                out.append(.lf)
            } else if c == .backslash, quote == .quote {
                // Line-ending backslash: trims the newline and following whitespace.
                var j = i + 1
                while j < b.count, b[j] == .space || b[j] == .tab { j += 1 }
                if j < b.count, b[j] == .lf || b[j] == .cr {
                    i = j
                    while true {
                        skipSpaces()
                        if try !consumeNewline() { break }
                    }
                } else {
                    try parseEscape(into: &out)
                }
            } else {
                if isForbiddenControl(c) { throw error("control character \(hexByte(c)) is not allowed in a string") }
                out.append(c)
                i += 1
            }
        }
    }

    mutating func parseEscape(into out: inout [UInt8]) throws {
        let start = i
        guard let e = peek(1) else { throw error("unterminated escape sequence") }
        i += 2
        switch e {
        case UInt8(ascii: "b"): out.append(0x08)
        case UInt8(ascii: "t"): out.append(.tab)
        case UInt8(ascii: "n"): out.append(.lf)
        case UInt8(ascii: "f"): out.append(0x0C)
        case UInt8(ascii: "r"): out.append(.cr)
        case .quote: out.append(.quote)
        case .backslash: out.append(.backslash)
        case UInt8(ascii: "u"), UInt8(ascii: "U"):
            let digits = e == UInt8(ascii: "u") ? 4 : 8
            var value: UInt32 = 0
            for _ in 0..<digits {
                guard let d = peek, let v = hexValue(d) else {
                    throw error("escape '\\\(Character(Unicode.Scalar(e)))' needs \(digits) hex digits", at: start)
                }
                value = value << 4 | UInt32(v)
                i += 1
            }
            guard let scalar = Unicode.Scalar(value) else {
                throw error("escape '\\\(Character(Unicode.Scalar(e)))' is not a Unicode scalar value", at: start)
            }
            out.append(contentsOf: String(Character(scalar)).utf8)
        default:
            if e < 0x80, !isForbiddenControl(e), e != .lf, e != .cr {
                throw error("invalid escape sequence '\\\(Character(Unicode.Scalar(e)))'", at: start)
            }
            throw error("invalid escape sequence", at: start)
        }
    }

    // MARK: Numbers

    mutating func parseNumber() throws -> TOMLValue.Kind {
        let start = i
        while let c = peek, isNumberTokenByte(c) { i += 1 }
        let token = b[start..<i]
        let text = String(decoding: token, as: UTF8.self)
        func fail(_ message: String) -> TOMLError { error(message, at: start) }

        if looksLikeDateOrTime(token) {
            throw fail("dates and times are not supported (found '\(text)'); use a string")
        }
        var body = token[...]
        var negative = false
        var signed = false
        if let s = body.first, s == .plus || s == .minus {
            negative = s == .minus
            signed = true
            body = body.dropFirst()
        }
        if body.elementsEqual("inf".utf8) { return .float(negative ? -.infinity : .infinity) }
        if body.elementsEqual("nan".utf8) { return .float(.nan) }
        guard !body.isEmpty else { throw fail("invalid number '\(text)'") }

        if let first = body.first, !isDecimalDigit(first) {
            if signed { throw fail("invalid number '\(text)'") }
            throw fail("expected a value, found '\(text)' (strings need quotes)")
        }

        var radix: Int64? = nil
        if body.count >= 2, body.first == UInt8(ascii: "0") {
            switch body[body.startIndex + 1] {
            case UInt8(ascii: "x"): radix = 16
            case UInt8(ascii: "o"): radix = 8
            case UInt8(ascii: "b"): radix = 2
            default: break
            }
        }
        if let radix {
            if signed { throw fail("a sign is not allowed on a prefixed integer ('\(text)')") }
            let digits = body.dropFirst(2)
            guard validDigitGroups(digits, { hexValue($0).map { Int64($0) < radix } ?? false }) else {
                throw fail("invalid integer '\(text)'")
            }
            var value: Int64 = 0
            for d in digits where d != .underscore {
                let (m, o1) = value.multipliedReportingOverflow(by: radix)
                let (a, o2) = m.addingReportingOverflow(Int64(hexValue(d)!))
                if o1 || o2 { throw fail("integer '\(text)' does not fit in 64 bits") }
                value = a
            }
            return .integer(value)
        }

        let isFloat = body.contains(.dot) || body.contains(UInt8(ascii: "e")) || body.contains(UInt8(ascii: "E"))
        if !isFloat {
            guard validDigitGroups(body, isDecimalDigit) else { throw fail("invalid number '\(text)'") }
            if body.count > 1, body.first == UInt8(ascii: "0") { throw fail("leading zeros are not allowed ('\(text)')") }
            var value: Int64 = 0
            for d in body where d != .underscore {
                let digit = Int64(d &- UInt8(ascii: "0"))
                let (m, o1) = value.multipliedReportingOverflow(by: 10)
                let (a, o2) = negative ? m.subtractingReportingOverflow(digit) : m.addingReportingOverflow(digit)
                if o1 || o2 { throw fail("integer '\(text)' does not fit in 64 bits") }
                value = a
            }
            return .integer(value)
        }

        // Float: int [ '.' frac ] [ (e|E) [+-] exp ], at least one of frac / exp.
        var rest = body[...]
        let intEnd = rest.firstIndex { $0 == .dot || $0 == UInt8(ascii: "e") || $0 == UInt8(ascii: "E") }!
        let intPart = rest[..<intEnd]
        guard validDigitGroups(intPart, isDecimalDigit) else { throw fail("invalid float '\(text)'") }
        if intPart.count > 1, intPart.first == UInt8(ascii: "0") { throw fail("leading zeros are not allowed ('\(text)')") }
        rest = rest[intEnd...]
        if rest.first == .dot {
            rest = rest.dropFirst()
            let fracEnd = rest.firstIndex { $0 == UInt8(ascii: "e") || $0 == UInt8(ascii: "E") } ?? rest.endIndex
            guard validDigitGroups(rest[..<fracEnd], isDecimalDigit) else { throw fail("invalid float '\(text)'") }
            rest = rest[fracEnd...]
        }
        if let e = rest.first, e == UInt8(ascii: "e") || e == UInt8(ascii: "E") {
            rest = rest.dropFirst()
            if let s = rest.first, s == .plus || s == .minus { rest = rest.dropFirst() }
            guard validDigitGroups(rest, isDecimalDigit) else { throw fail("invalid float '\(text)'") }
        } else if !rest.isEmpty {
            throw fail("invalid float '\(text)'")
        }
        let cleaned = String(decoding: token.filter { $0 != .underscore }, as: UTF8.self)
        guard let value = Double(cleaned) else { throw fail("invalid float '\(text)'") }
        return .float(value)
    }

    /// Digits (per `isDigit`) in groups separated by single underscores; non-empty.
    func validDigitGroups(_ s: ArraySlice<UInt8>, _ isDigit: (UInt8) -> Bool) -> Bool {
        guard let first = s.first, let last = s.last, isDigit(first), isDigit(last) else { return false }
        var previousUnderscore = false
        for c in s {
            if c == .underscore {
                if previousUnderscore { return false }
                previousUnderscore = true
            } else {
                guard isDigit(c) else { return false }
                previousUnderscore = false
            }
        }
        return true
    }

    /// `1979-05-27…` or `07:32:00…`.
    func looksLikeDateOrTime(_ t: ArraySlice<UInt8>) -> Bool {
        let a = Array(t.prefix(5))
        if a.count == 5, a[0...3].allSatisfy(isDecimalDigit), a[4] == .minus { return true }
        if a.count >= 3, a[0...1].allSatisfy(isDecimalDigit), a[2] == .colon { return true }
        return false
    }
}

// MARK: - Byte helpers

private func isBareKeyByte(_ c: UInt8) -> Bool {
    switch c {
    case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
        UInt8(ascii: "0")...UInt8(ascii: "9"), .underscore, .minus:
        true
    default:
        false
    }
}

private func isNumberTokenByte(_ c: UInt8) -> Bool {
    isBareKeyByte(c) || c == .plus || c == .dot || c == .colon
}

private func isDecimalDigit(_ c: UInt8) -> Bool { c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") }

private func hexValue(_ c: UInt8) -> UInt8? {
    switch c {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
    case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
    default: nil
    }
}

/// Control characters other than tab (newlines are handled by the callers).
private func isForbiddenControl(_ c: UInt8) -> Bool { (c < 0x20 && c != .tab) || c == 0x7F }

private func hexByte(_ c: UInt8) -> String {
    let digits = Array("0123456789ABCDEF".utf8)
    return "U+00" + String(decoding: [digits[Int(c >> 4)], digits[Int(c & 0xF)]], as: UTF8.self)
}

private func describe(_ c: UInt8) -> String {
    switch c {
    case .lf, .cr: "the end of the line"
    case 0x20..<0x7F: "'\(Character(Unicode.Scalar(c)))'"
    default: c < 0x80 ? hexByte(c) : "a non-ASCII character"
    }
}

extension UInt8 {
    fileprivate static let tab = UInt8(ascii: "\t")
    fileprivate static let lf = UInt8(ascii: "\n")
    fileprivate static let cr = UInt8(ascii: "\r")
    fileprivate static let space = UInt8(ascii: " ")
    fileprivate static let hash = UInt8(ascii: "#")
    fileprivate static let quote = UInt8(ascii: "\"")
    fileprivate static let apostrophe = UInt8(ascii: "'")
    fileprivate static let backslash = UInt8(ascii: "\\")
    fileprivate static let openBracket = UInt8(ascii: "[")
    fileprivate static let closeBracket = UInt8(ascii: "]")
    fileprivate static let openBrace = UInt8(ascii: "{")
    fileprivate static let closeBrace = UInt8(ascii: "}")
    fileprivate static let equals = UInt8(ascii: "=")
    fileprivate static let comma = UInt8(ascii: ",")
    fileprivate static let dot = UInt8(ascii: ".")
    fileprivate static let plus = UInt8(ascii: "+")
    fileprivate static let minus = UInt8(ascii: "-")
    fileprivate static let underscore = UInt8(ascii: "_")
    fileprivate static let colon = UInt8(ascii: ":")
}
