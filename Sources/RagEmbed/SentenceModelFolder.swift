/// The settings of a sentence-transformers folder holding a BERT encoder: `config.json`,
/// `modules.json`, the pooling module's `config.json`, `sentence_bert_config.json`,
/// `tokenizer_config.json` and `vocab.txt` (the weights, `model.safetensors`, are read by ``BertModel``).
public struct SentenceModelFolder: Sendable {
    /// How token vectors become one sentence vector (sentence-transformers' `Pooling` module).
    public enum Pooling: String, Sendable {
        /// Average over the real tokens (`pooling_mode_mean_tokens`).
        case mean
        /// The `[CLS]` token's vector (`pooling_mode_cls_token`).
        case cls
        /// Element-wise maximum over the real tokens (`pooling_mode_max_tokens`).
        case max
        /// Sum over the real tokens divided by √count (`pooling_mode_mean_sqrt_len_tokens`).
        case meanSqrtLength = "mean_sqrt_len"
    }

    /// The folder, as given.
    public var path: String
    public var model: BertConfiguration
    public var pooling: Pooling
    /// Whether `modules.json` ends with a `Normalize` module (unit-length vectors).
    public var normalize: Bool
    /// Tokens per text, `[CLS]` and `[SEP]` included: `max_seq_length`, capped by the position table.
    public var maxSequenceLength: Int
    /// sentence-transformers' own `do_lower_case` (lower-cases the text before the tokenizer).
    public var lowercaseInput: Bool
    public var tokenizer: BertTokenizer.Configuration

    /// Reads and checks every settings file of the folder at `path`.
    public init(path: String) throws {
        self.path = path
        func file(_ name: String) -> String { ModelFile.join(path, name) }

        model = try BertConfiguration(path: file("config.json"))

        // modules.json: Transformer at the root, then Pooling, optionally Normalize; nothing else.
        let modulesPath = file("modules.json")
        guard let modules = try ModelJSON.read(modulesPath).array else {
            throw EmbedError(.malformedFile, path: modulesPath, "expected a JSON array of modules")
        }
        var poolingPath: String?
        var normalize = false
        var sawTransformer = false
        for module in modules {
            guard let type = module["type"]?.string else {
                throw EmbedError(.malformedFile, path: modulesPath, "a module has no \"type\"")
            }
            let kind = type.split(separator: ".").last.map(String.init) ?? type
            let modulePath = module["path"]?.string ?? ""
            switch kind {
            case "Transformer":
                guard modulePath.isEmpty || modulePath == "." || modulePath == "0_Transformer" else {
                    throw EmbedError(.unsupportedModel, path: modulesPath, "the Transformer module must be the folder itself, not \(modulePath)")
                }
                sawTransformer = true
            case "Pooling":
                poolingPath = modulePath
            case "Normalize":
                normalize = true
            default:
                throw EmbedError(.unsupportedModel, path: modulesPath, "module \(type) is not supported (only Transformer, Pooling, Normalize)")
            }
        }
        guard sawTransformer else { throw EmbedError(.unsupportedModel, path: modulesPath, "no Transformer module") }
        guard let poolingPath else { throw EmbedError(.unsupportedModel, path: modulesPath, "no Pooling module") }
        self.normalize = normalize

        let poolingFile = file(ModelFile.join(poolingPath, "config.json"))
        let poolingJSON = try ModelJSON.read(poolingFile)
        guard poolingJSON.object != nil else { throw EmbedError(.malformedFile, path: poolingFile, "expected a JSON object") }
        var modes: [Pooling] = []
        for (key, mode) in [("pooling_mode_mean_tokens", Pooling.mean), ("pooling_mode_cls_token", .cls),
                            ("pooling_mode_max_tokens", .max), ("pooling_mode_mean_sqrt_len_tokens", .meanSqrtLength)] {
            if poolingJSON[key]?.bool == true { modes.append(mode) }
        }
        for key in ["pooling_mode_weightedmean_tokens", "pooling_mode_lasttoken"] where poolingJSON[key]?.bool == true {
            throw EmbedError(.unsupportedModel, path: poolingFile, "\(key) is not supported")
        }
        if let mode = poolingJSON["pooling_mode"]?.string, modes.isEmpty {
            switch mode {
            case "mean": modes = [.mean]
            case "cls": modes = [.cls]
            case "max": modes = [.max]
            case "mean_sqrt_len_tokens": modes = [.meanSqrtLength]
            default: throw EmbedError(.unsupportedModel, path: poolingFile, "pooling_mode \(mode) is not supported")
            }
        }
        guard modes.count == 1 else {
            throw EmbedError(.unsupportedModel, path: poolingFile,
                             modes.isEmpty ? "no pooling mode is enabled" : "several pooling modes at once (concatenated vectors) are not supported")
        }
        pooling = modes[0]
        if let dimension = poolingJSON["word_embedding_dimension"]?.int, dimension != model.hiddenSize {
            throw EmbedError(.malformedFile, path: poolingFile, "word_embedding_dimension \(dimension) differs from hidden_size \(model.hiddenSize)")
        }

        // sentence_bert_config.json is optional: without it the whole position table is usable.
        let sbertFile = file("sentence_bert_config.json")
        var maxLength = model.maxPositions
        var lowercaseInput = false
        if ModelFile.exists(sbertFile) {
            let sbert = try ModelJSON.read(sbertFile)
            if let value = sbert["max_seq_length"], value != .null {
                guard let n = value.int, n >= 2 else {
                    throw EmbedError(.malformedFile, path: sbertFile, "max_seq_length must be an integer of at least 2")
                }
                maxLength = min(n, model.maxPositions)
            }
            lowercaseInput = sbert["do_lower_case"]?.bool ?? false
        }
        self.maxSequenceLength = maxLength
        self.lowercaseInput = lowercaseInput

        // tokenizer_config.json is optional too; BERT's defaults apply without it.
        var tokenizer = BertTokenizer.Configuration(maxLength: maxLength)
        let tokenizerFile = file("tokenizer_config.json")
        if ModelFile.exists(tokenizerFile) {
            let config = try ModelJSON.read(tokenizerFile)
            guard config.object != nil else { throw EmbedError(.malformedFile, path: tokenizerFile, "expected a JSON object") }
            if let cls = config["tokenizer_class"]?.string, !cls.hasPrefix("Bert") {
                throw EmbedError(.unsupportedModel, path: tokenizerFile, "tokenizer_class \(cls) is not a BERT WordPiece tokenizer")
            }
            tokenizer.lowercase = config["do_lower_case"]?.bool ?? true
            tokenizer.stripAccents = config["strip_accents"]?.bool
            tokenizer.tokenizeChineseCharacters = config["tokenize_chinese_chars"]?.bool ?? true
            if config["do_basic_tokenize"]?.bool == false {
                throw EmbedError(.unsupportedModel, path: tokenizerFile, "do_basic_tokenize = false is not supported")
            }
            func token(_ key: String) -> String? {
                // Either a string or an AddedToken object {"content": …}.
                config[key]?.string ?? config[key]?["content"]?.string
            }
            if let t = token("unk_token") { tokenizer.unknownToken = t }
            if let t = token("cls_token") { tokenizer.classToken = t }
            if let t = token("sep_token") { tokenizer.separatorToken = t }
            if let t = token("pad_token") { tokenizer.padToken = t }
            if let t = token("mask_token") { tokenizer.maskToken = t }
        }
        self.tokenizer = tokenizer
    }

    /// The folder's tokenizer (reads `vocab.txt`).
    public func makeTokenizer() throws -> BertTokenizer {
        let tokenizer = try BertTokenizer(vocabularyFile: ModelFile.join(path, "vocab.txt"), configuration: tokenizer)
        guard tokenizer.vocabularySize <= model.vocabularySize else {
            throw EmbedError(.malformedFile, path: ModelFile.join(path, "vocab.txt"),
                             "\(tokenizer.vocabularySize) tokens but config.json has vocab_size \(model.vocabularySize)")
        }
        return tokenizer
    }
}

/// A BERT encoder's shape, from HuggingFace `config.json`.
public struct BertConfiguration: Sendable, Equatable {
    /// The feed-forward activation (`hidden_act`).
    public enum Activation: String, Sendable {
        /// Exact GELU, x·Φ(x) (`gelu`).
        case gelu
        /// The tanh approximation of GELU (`gelu_new`, `gelu_pytorch_tanh`, `gelu_fast`).
        case geluTanh = "gelu_new"
        case relu
    }

    public var vocabularySize: Int
    public var hiddenSize: Int
    public var layerCount: Int
    public var headCount: Int
    public var intermediateSize: Int
    /// Rows of the position table, the longest input the model takes.
    public var maxPositions: Int
    public var typeVocabularySize: Int
    public var layerNormEpsilon: Float
    public var activation: Activation

    public init(vocabularySize: Int, hiddenSize: Int, layerCount: Int, headCount: Int, intermediateSize: Int,
                maxPositions: Int, typeVocabularySize: Int = 2, layerNormEpsilon: Float = 1e-12,
                activation: Activation = .gelu) {
        self.vocabularySize = vocabularySize
        self.hiddenSize = hiddenSize
        self.layerCount = layerCount
        self.headCount = headCount
        self.intermediateSize = intermediateSize
        self.maxPositions = maxPositions
        self.typeVocabularySize = typeVocabularySize
        self.layerNormEpsilon = layerNormEpsilon
        self.activation = activation
    }

    /// Reads `config.json` at `path`.
    public init(path: String) throws {
        let json = try ModelJSON.read(path)
        guard json.object != nil else { throw EmbedError(.malformedFile, path: path, "expected a JSON object") }
        func positive(_ key: String) throws -> Int {
            guard let value = json[key] else { throw EmbedError(.malformedFile, path: path, "missing \(key)") }
            guard let n = value.int, n > 0, n <= 1 << 20 else {
                throw EmbedError(.malformedFile, path: path, "\(key) must be a positive integer")
            }
            return n
        }
        if let type = json["model_type"]?.string, type != "bert" {
            throw EmbedError(.unsupportedModel, path: path, "model_type \(type) is not supported (only bert)")
        }
        if let embedding = json["position_embedding_type"]?.string, embedding != "absolute" {
            throw EmbedError(.unsupportedModel, path: path, "position_embedding_type \(embedding) is not supported")
        }
        vocabularySize = try positive("vocab_size")
        hiddenSize = try positive("hidden_size")
        layerCount = try positive("num_hidden_layers")
        headCount = try positive("num_attention_heads")
        intermediateSize = try positive("intermediate_size")
        maxPositions = try positive("max_position_embeddings")
        typeVocabularySize = json["type_vocab_size"] == nil ? 2 : try positive("type_vocab_size")
        guard hiddenSize % headCount == 0 else {
            throw EmbedError(.malformedFile, path: path, "hidden_size \(hiddenSize) is not a multiple of num_attention_heads \(headCount)")
        }
        if let value = json["layer_norm_eps"] {
            guard let eps = value.double, eps > 0, eps < 1 else {
                throw EmbedError(.malformedFile, path: path, "layer_norm_eps must be a small positive number")
            }
            layerNormEpsilon = Float(eps)
        } else {
            layerNormEpsilon = 1e-12
        }
        switch json["hidden_act"]?.string ?? "gelu" {
        case "gelu": activation = .gelu
        case "gelu_new", "gelu_pytorch_tanh", "gelu_fast": activation = .geluTanh
        case "relu": activation = .relu
        case let other: throw EmbedError(.unsupportedModel, path: path, "hidden_act \(other) is not supported")
        }
    }
}
