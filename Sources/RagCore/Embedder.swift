/// Turns texts into dense vectors. Implementations must be safe to call from one thread at a time at least;
/// ragd calls an embedder from a single dedicated thread.
public protocol Embedder: Sendable {
    /// Identifies the model and every setting that changes its vectors (for example
    /// `sentence-transformers/all-MiniLM-L6-v2@53aa5117;mean;norm;256`). Vectors from different ids never mix.
    var modelID: String { get }
    /// Length of every vector.
    var dimensions: Int { get }
    /// One L2-normalised vector per text, in order. Texts longer than the model's window are truncated.
    func embed(_ texts: [String]) throws -> [[Float]]
}
