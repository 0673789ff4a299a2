import Glibc
import Logging
import RagConfig
import RagCore
import RagEmbed

/// The embedding model ragd loaded, or why it has none (BM25 keeps serving either way).
struct LoadedModel {
    var embedder: (any Embedder)?
    var reason: String?
}

/// Where ragd looks for a model folder when none is configured, in order.
func defaultModelFolders() -> [String] {
    var candidates: [String] = []
    if let env = getenv("RAGD_MODEL"), env.pointee != 0 { candidates.append(String(cString: env)) }
    // Next to a build in a checkout: <repo>/.build/<triple>/release/ragd → <repo>/models/…
    var buffer = [CChar](repeating: 0, count: 4096)
    let length = readlink("/proc/self/exe", &buffer, buffer.count - 1)
    if length > 0 {
        var folder = String(decoding: buffer[0..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        for _ in 0..<5 {
            guard let slash = folder.lastIndex(of: "/"), slash != folder.startIndex else { break }
            folder = String(folder[..<slash])
            candidates.append(folder + "/models/all-MiniLM-L6-v2")
        }
    }
    candidates += ["/usr/local/share/ragd/models/all-MiniLM-L6-v2", "/usr/share/ragd/models/all-MiniLM-L6-v2",
                   "/var/lib/ragd/models/all-MiniLM-L6-v2"]
    return candidates
}

/// Loads the configured sentence-transformers folder (or the first default one that exists). A missing or
/// malformed folder is logged as an error and leaves ragd serving BM25 only.
func loadEmbedder(_ settings: ModelSettings, logger: Logger) -> LoadedModel {
    guard settings.enabled else {
        return LoadedModel(embedder: nil, reason: "dense retrieval is disabled in the configuration ([model] enabled = false)")
    }
    let folder: String
    if let configured = settings.path {
        folder = configured
    } else if let found = defaultModelFolders().first(where: { access($0 + "/model.safetensors", R_OK) == 0 }) {
        folder = found
    } else {
        let reason = "no embedding model found (run `make model`, or set [model] path or $RAGD_MODEL to a sentence-transformers folder)"
        logger.error("dense retrieval is unavailable; serving BM25 only", metadata: ["reason": "\(reason)"])
        return LoadedModel(embedder: nil, reason: reason)
    }
    do {
        // One OpenBLAS thread per product: the embedder and query threads then run side by side on the two
        // cores, and a query never waits for an ingest batch.
        let embedder = try BertEmbedder(modelFolder: folder, configuration: .init(batchSize: 32, blasThreads: 1))
        logger.notice("embedding model loaded", metadata: ["model": "\(embedder.modelID)", "model.path": "\(folder)",
                                                           "dimensions": "\(embedder.dimensions)", "blas": "\(BLAS.status)"])
        return LoadedModel(embedder: embedder, reason: nil)
    } catch {
        let reason = "the model folder \(folder) cannot be loaded: \(error)"
        logger.error("dense retrieval is unavailable; serving BM25 only", metadata: ["reason": "\(reason)"])
        return LoadedModel(embedder: nil, reason: reason)
    }
}
