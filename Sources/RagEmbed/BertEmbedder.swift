import Glibc
import RagCore
import Synchronization

/// A sentence-transformers BERT model (such as all-MiniLM-L6-v2) run in-process: ragd's ``Embedder``.
///
/// `init(modelFolder:)` reads the whole folder (settings, vocabulary, weights, then a SHA-256 of the
/// weights for ``modelID``: about 0.4 s and 120 MB for MiniLM-L6) and fails with an ``EmbedError``
/// naming the file when something is missing or malformed. Every call blocks while it runs (one forward
/// pass at a time per process; the products use OpenBLAS's threads, see ``BLAS``), so call it from one
/// dedicated thread, never from the cooperative pool.
public final class BertEmbedder: Embedder {
    /// Loading options.
    public struct Configuration: Sendable {
        /// Texts per forward pass in ``embed(_:)``.
        public var batchSize: Int
        /// Threads per matrix product, set for the whole process; nil leaves OpenBLAS's own setting
        /// (`OPENBLAS_NUM_THREADS`, else one per core). Measured on 2 cores with MiniLM-L6: 2 threads
        /// embed about 60 chunks of 200 tokens per second and a short query in 3.3 ms, 1 thread about
        /// 39 chunks per second and 5 ms but leaves the other core to queries and indexing.
        public var blasThreads: Int?
        /// The model name in ``modelID``; nil uses the folder's name.
        public var name: String?

        /// Most tokens in one forward pass (a single longer text still runs alone). It bounds each scratch workspace,
        /// about 9.4 KB per token for MiniLM (41 MB at 4096), which without it grew to the largest batch ever seen
        /// (32 texts of 256 tokens: about 120 MB) at unpredictable moments: the soak's steps of RSS.
        public var maxTokensPerPass: Int

        public init(batchSize: Int = 32, maxTokensPerPass: Int = 4096, blasThreads: Int? = nil, name: String? = nil) {
            self.batchSize = batchSize
            self.maxTokensPerPass = maxTokensPerPass
            self.blasThreads = blasThreads
            self.name = name
        }
    }

    /// `NAME@HASH;POOLING;norm;MAXLEN`, e.g. `all-MiniLM-L6-v2@53aa51172d14;mean;norm;256`, where HASH is
    /// the first 12 hex digits of the weights file's SHA-256.
    public let modelID: String
    /// Length of every vector (the hidden size, 384 for MiniLM-L6).
    public let dimensions: Int
    /// Tokens embedded per text, `[CLS]` and `[SEP]` included; the rest of a longer text is ignored.
    public let maxSequenceLength: Int
    /// SHA-256 of `model.safetensors`.
    public let weightsHash: ContentHash
    public let folder: SentenceModelFolder
    public let tokenizer: BertTokenizer
    public let model: BertModel
    private let batchSize: Int
    private let maxTokensPerPass: Int
    /// Idle scratch workspaces, one per thread that ever encoded at the same time as others.
    private let workspace: Mutex<[BertModel.Workspace]>

    /// Loads the sentence-transformers folder at `modelFolder`.
    public init(modelFolder: String, configuration: Configuration = Configuration()) throws {
        var info = stat()
        guard stat(modelFolder, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR else {
            throw EmbedError(.missingFile, path: modelFolder, "model folder does not exist (scripts/fetch-model.sh fetches all-MiniLM-L6-v2)")
        }
        folder = try SentenceModelFolder(path: modelFolder)
        tokenizer = try folder.makeTokenizer()
        let weights = try SafeTensors(contentsOf: ModelFile.join(modelFolder, "model.safetensors"))
        model = try BertModel(configuration: folder.model, weights: weights)
        weightsHash = weights.withFileBytes { bytes in
            var hasher = SHA256()
            hasher.update(raw: bytes)
            return hasher.finalize()
        }
        if let threads = configuration.blasThreads { BLAS.setThreads(threads) }
        dimensions = folder.model.hiddenSize
        maxSequenceLength = folder.maxSequenceLength
        batchSize = max(1, configuration.batchSize)
        maxTokensPerPass = max(1, configuration.maxTokensPerPass)
        let name = configuration.name ?? Self.lastComponent(modelFolder)
        modelID = "\(name)@\(weightsHash.hex.prefix(12));\(folder.pooling.rawValue);norm;\(folder.maxSequenceLength)"
        workspace = Mutex([BertModel.Workspace()])
    }

    /// One unit-length vector per text, in order (normalised even if the folder has no `Normalize`
    /// module, as ``Embedder`` promises). Texts are tokenized, sorted by length and run in batches of
    /// `batchSize`; each is truncated to ``maxSequenceLength`` tokens.
    public func embed(_ texts: [String]) throws -> [[Float]] {
        encode(texts, normalize: true)
    }

    /// The vectors exactly as the folder describes them: pooled, and normalised only if `modules.json`
    /// lists a `Normalize` module.
    public func encode(_ texts: [String]) -> [[Float]] {
        encode(texts, normalize: folder.normalize)
    }

    /// How many tokens `text` has, `[CLS]` and `[SEP]` included, before truncation to
    /// ``maxSequenceLength``.
    public func tokenCount(_ text: String) -> Int {
        tokenizer.tokenCount(prepare(text))
    }

    /// The token ids the model sees for `text` (truncated).
    public func tokenIDs(_ text: String) -> [Int32] {
        tokenizer.encode(prepare(text))
    }

    private func prepare(_ text: String) -> String {
        folder.lowercaseInput ? text.lowercased() : text
    }

    private func encode(_ texts: [String], normalize: Bool) -> [[Float]] {
        let sequences = texts.map(tokenIDs)
        // Similar lengths together: batches then hold texts of about the same cost.
        let order = sequences.indices.sorted { sequences[$0].count < sequences[$1].count }
        var vectors = [[Float]](repeating: [], count: texts.count)
        var start = 0
        while start < order.count {
            // Up to `batchSize` texts and `maxTokensPerPass` tokens (at least one text).
            var end = start, tokens = 0
            while end < order.count && end - start < batchSize
                    && (end == start || tokens + sequences[order[end]].count <= maxTokensPerPass) {
                tokens += sequences[order[end]].count
                end += 1
            }
            let batch = Array(order[start..<end])
            let scratch = takeWorkspace(tokens: tokens)
            let pooled = model.encode(batch.map { sequences[$0] }, pooling: folder.pooling, normalize: normalize,
                                      workspace: scratch, maxTokens: maxTokensPerPass)
            workspace.withLock { $0.append(scratch) }
            for (index, vector) in zip(batch, pooled) { vectors[index] = vector }
            start = end
        }
        return vectors
    }

    /// The idle workspace that best fits a pass of `tokens` tokens (the smallest that holds it, else the largest), or
    /// a new one when other threads hold them all. Short query passes then leave the large workspaces to batches, so
    /// only as many grow large as threads embed batches at once.
    private func takeWorkspace(tokens: Int) -> BertModel.Workspace {
        workspace.withLock { idle in
            guard !idle.isEmpty else { return BertModel.Workspace() }
            let fits = idle.indices.filter { idle[$0].capacityTokens(hidden: dimensions) >= tokens }
            let pick = fits.min { idle[$0].capacityTokens(hidden: dimensions) < idle[$1].capacityTokens(hidden: dimensions) }
                ?? idle.indices.max { idle[$0].capacityTokens(hidden: dimensions) < idle[$1].capacityTokens(hidden: dimensions) }!
            return idle.remove(at: pick)
        }
    }

    private static func lastComponent(_ path: String) -> String {
        let trimmed = path.split(separator: "/", omittingEmptySubsequences: true)
        return trimmed.last.map(String.init) ?? path
    }
}
