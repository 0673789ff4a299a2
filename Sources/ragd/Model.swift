import Logging
import RagConfig
import RagCore

/// The embedding model ragd loaded, or why it has none (BM25 keeps serving either way).
struct LoadedModel {
    var embedder: (any Embedder)?
    var reason: String?
}

/// Loads the configured sentence-transformers folder. Not built yet: dense retrieval arrives with RagEmbed.
func loadEmbedder(_ settings: ModelSettings, logger: Logger) -> LoadedModel {
    guard settings.enabled else { return LoadedModel(embedder: nil, reason: "dense retrieval is disabled in the configuration ([model] enabled = false)") }
    return LoadedModel(embedder: nil, reason: "this build has no encoder")
}
