import RagCore
import Synchronization

/// A deterministic stand-in for a sentence encoder in unit tests: each analyzed term adds 1 to a bucket chosen
/// by its hash, and the vector is L2-normalised, so texts sharing terms are close. Counts the texts it embedded.
public final class FakeEmbedder: Embedder {
    public let dimensions: Int
    public let modelID: String
    private let calls = Mutex<[String]>([])

    public init(dimensions: Int = 64, modelID: String = "fake-bow-64") {
        self.dimensions = dimensions
        self.modelID = modelID
    }

    /// Every text embedded so far, in order.
    public var embeddedTexts: [String] { calls.withLock { $0 } }

    public func embed(_ texts: [String]) throws -> [[Float]] {
        calls.withLock { $0.append(contentsOf: texts) }
        let analyzer = Analyzer()
        return texts.map { text in
            var vector = [Float](repeating: 0, count: dimensions)
            for term in analyzer.terms(text) {
                var hash: UInt64 = 1469598103934665603
                for byte in term.utf8 { hash = (hash ^ UInt64(byte)) &* 1099511628211 }
                vector[Int(hash % UInt64(dimensions))] += 1
            }
            let norm = vector.reduce(0) { $0 + $1 * $1 }.squareRoot()
            if norm == 0 { vector[0] = 1; return vector }
            return vector.map { $0 / norm }
        }
    }
}
