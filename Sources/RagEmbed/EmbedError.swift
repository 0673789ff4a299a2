/// Errors of the sentence encoder: a missing or malformed model file, a model this code cannot run.
public struct EmbedError: Error, Sendable, CustomStringConvertible {
    /// What went wrong, stable across releases.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Wrapped: String { case missingFile, malformedFile, unsupportedModel, io }
        private let wrapped: Wrapped
        /// A file the model folder must contain is absent.
        public static var missingFile: Self { Self(wrapped: .missingFile) }
        /// A file exists but its contents are not what they should be (truncated, bad JSON, bad shapes).
        public static var malformedFile: Self { Self(wrapped: .malformedFile) }
        /// The files are well-formed but describe a model this encoder does not run.
        public static var unsupportedModel: Self { Self(wrapped: .unsupportedModel) }
        /// Reading or mapping a file failed.
        public static var io: Self { Self(wrapped: .io) }
        public var description: String { wrapped.rawValue }
    }

    public var code: Code
    /// The file concerned, when there is one.
    public var path: String?
    public var message: String
    public var cause: (any Error & Sendable)?

    public init(_ code: Code, path: String? = nil, _ message: String, cause: (any Error & Sendable)? = nil) {
        self.code = code
        self.path = path
        self.message = message
        self.cause = cause
    }

    public var description: String {
        (path.map { "\($0): " } ?? "") + message + (cause.map { " (\($0))" } ?? "")
    }
}
