/// A problem with the configuration file, located as precisely as possible.
///
/// Rendered like a compiler diagnostic:
/// `/etc/ragd/ragd.toml:12: key 'limits.max_k': expected an integer, got a string`
/// or, for syntax errors, `/etc/ragd/ragd.toml:3:9: expected '=' after key 'path'`.
public struct ConfigError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The configuration file (as given to `load` / `parse`).
    public var file: String
    /// 1-based line, when the problem is tied to one.
    public var line: Int?
    /// 1-based column (UTF-8 bytes), for syntax errors.
    public var column: Int?
    /// Dotted key path such as `limits.max_k` or `source[0].include[2]`, when a key is at fault.
    public var key: String?
    /// What is wrong.
    public var message: String

    public init(file: String, line: Int? = nil, column: Int? = nil, key: String? = nil, message: String) {
        self.file = file
        self.line = line
        self.column = column
        self.key = key
        self.message = message
    }

    public var description: String {
        var text = file
        if let line {
            text += ":\(line)"
            if let column { text += ":\(column)" }
        }
        text += ": "
        if let key { text += "key '\(key)': " }
        return text + message
    }
}
