import Foundation
import Logging
import MCP
import RagProtocol

/// The SDK's `StdioTransport`, except that when standard input ends, the message stream ends only after every
/// request read so far has been answered (or cancelled). So `ragctl mcp < requests` prints all its replies, and a
/// client that closes our stdin after its last request still gets the answer.
actor DrainingStdioTransport: Transport {
    nonisolated let logger: Logger
    private let stdio: StdioTransport
    /// Ids (serialised JSON) of requests read and not yet answered.
    private var unanswered: Set<String> = []
    private var drained: CheckedContinuation<Void, Never>?
    private var output: AsyncThrowingStream<Data, any Error>.Continuation?

    init(logger: Logger) {
        self.logger = logger
        stdio = StdioTransport(logger: logger)
    }

    func connect() async throws { try await stdio.connect() }

    func disconnect() async {
        await stdio.disconnect()
        output?.finish()
    }

    func send(_ data: Data) async throws {
        defer { noteAnswers(in: data) }
        try await stdio.send(data)
    }

    func receive() -> AsyncThrowingStream<Data, any Error> {
        let (stream, continuation) = AsyncThrowingStream.makeStream(of: Data.self, throwing: (any Error).self)
        output = continuation
        let input = stdio
        Task { await self.forward(from: input, to: continuation) }
        return stream
    }

    private func forward(from input: StdioTransport, to continuation: AsyncThrowingStream<Data, any Error>.Continuation) async {
        do {
            for try await message in await input.receive() {
                noteRequests(in: message)
                continuation.yield(message)
            }
        } catch {
            logger.error("reading standard input failed", metadata: ["error": "\(error)"])
        }
        while !unanswered.isEmpty {
            logger.debug("end of input; waiting for \(unanswered.count) replies")
            await withCheckedContinuation { drained = $0 }
        }
        continuation.finish()
    }

    /// The JSON-RPC messages of `data`: one object, or the members of a batch.
    private func messages(_ data: Data) -> [JSONValue] {
        guard let value = try? JSONParser.parse(data) else { return [] }
        return value.arrayValue ?? [value]
    }

    private func noteRequests(in data: Data) {
        for message in messages(data) {
            // The SDK answers string and integer ids; others get an error with an id of its own, never awaited.
            if message["method"] != nil, let id = message["id"], id.stringValue != nil || id.isInteger {
                unanswered.insert(id.serialized())
            } else if message["method"]?.stringValue == "notifications/cancelled", let id = message["params"]?["requestId"] {
                unanswered.remove(id.serialized())
            }
        }
        resumeIfDrained()
    }

    private func noteAnswers(in data: Data) {
        for message in messages(data) where message["method"] == nil {
            if let id = message["id"] { unanswered.remove(id.serialized()) }
        }
        resumeIfDrained()
    }

    private func resumeIfDrained() {
        if unanswered.isEmpty, let waiting = drained {
            drained = nil
            waiting.resume()
        }
    }
}

private extension JSONValue {
    var isInteger: Bool { if case .int = self { return true } else { return false } }
}
