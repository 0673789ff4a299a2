import RagEmbedKernels

/// Floats in memory owned by one object (weights and scratch), aligned for vector loads.
final class FloatBuffer: @unchecked Sendable {
    // @unchecked: weights are written only during init; scratch buffers are used under a lock.
    let pointer: UnsafeMutablePointer<Float>
    let count: Int

    init(count: Int) {
        self.count = count
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1) * 4, alignment: 64)
        pointer = raw.initializeMemory(as: Float.self, repeating: 0, count: max(count, 1))
    }

    convenience init(_ values: [Float]) {
        self.init(count: values.count)
        values.withUnsafeBufferPointer { pointer.update(from: $0.baseAddress!, count: values.count) }
    }

    deinit { UnsafeMutableRawPointer(pointer).deallocate() }
}

/// A BERT encoder's weights and its forward pass: embeddings, self-attention and feed-forward layers,
/// then pooling. Matrix products go through `cblas_sgemm`; the element-wise steps through ``Kernels``.
///
/// Sequences of a batch are packed one after the other with no padding: every product except the
/// attention treats tokens independently, and attention runs per sequence and head on that sequence's
/// rows only, so no work is spent on pad tokens and no mask is needed.
public final class BertModel: Sendable {
    public let configuration: BertConfiguration

    let wordEmbeddings: FloatBuffer
    let positionEmbeddings: FloatBuffer
    let tokenTypeEmbedding: FloatBuffer  // row 0 only
    let embeddingNorm: (gamma: FloatBuffer, beta: FloatBuffer)
    let layers: [Layer]

    struct Layer: Sendable {
        /// Query, key and value projections stacked (3H × H); the query rows are pre-scaled by 1/√d.
        var qkvWeight: FloatBuffer
        var qkvBias: FloatBuffer
        var attentionOutWeight: FloatBuffer
        var attentionOutBias: FloatBuffer
        var attentionNorm: (gamma: FloatBuffer, beta: FloatBuffer)
        var intermediateWeight: FloatBuffer
        var intermediateBias: FloatBuffer
        var outputWeight: FloatBuffer
        var outputBias: FloatBuffer
        var outputNorm: (gamma: FloatBuffer, beta: FloatBuffer)
    }

    /// Loads the weights for `configuration` from `weights` (HuggingFace names, with or without the
    /// `bert.` prefix; F32, F16, BF16 or F64).
    public init(configuration: BertConfiguration, weights: SafeTensors) throws {
        self.configuration = configuration
        let h = configuration.hiddenSize
        let inner = configuration.intermediateSize
        let prefix = weights.tensors["embeddings.word_embeddings.weight"] != nil ? ""
            : weights.tensors["bert.embeddings.word_embeddings.weight"] != nil ? "bert." : nil
        guard let prefix else {
            throw EmbedError(.malformedFile, path: weights.path, "no tensor embeddings.word_embeddings.weight (nor bert.embeddings.word_embeddings.weight)")
        }
        func tensor(_ name: String, _ shape: [Int]) throws -> [Float] {
            try weights.floats(prefix + name, shape: shape)
        }
        func norm(_ name: String) throws -> (gamma: FloatBuffer, beta: FloatBuffer) {
            // Old TensorFlow conversions name the LayerNorm parameters gamma and beta.
            let gamma = weights.tensors[prefix + name + ".weight"] != nil ? ".weight" : ".gamma"
            let beta = weights.tensors[prefix + name + ".bias"] != nil ? ".bias" : ".beta"
            return (FloatBuffer(try tensor(name + gamma, [h])), FloatBuffer(try tensor(name + beta, [h])))
        }
        wordEmbeddings = FloatBuffer(try tensor("embeddings.word_embeddings.weight", [configuration.vocabularySize, h]))
        positionEmbeddings = FloatBuffer(try tensor("embeddings.position_embeddings.weight", [configuration.maxPositions, h]))
        tokenTypeEmbedding = FloatBuffer(Array(try tensor("embeddings.token_type_embeddings.weight",
                                                          [configuration.typeVocabularySize, h])[0..<h]))
        embeddingNorm = try norm("embeddings.LayerNorm")

        let queryScale = 1 / Float(h / configuration.headCount).squareRoot()
        var layers: [Layer] = []
        for index in 0..<configuration.layerCount {
            let p = "encoder.layer.\(index)."
            var qkv = try tensor(p + "attention.self.query.weight", [h, h]).map { $0 * queryScale }
            qkv += try tensor(p + "attention.self.key.weight", [h, h])
            qkv += try tensor(p + "attention.self.value.weight", [h, h])
            var qkvBias = try tensor(p + "attention.self.query.bias", [h]).map { $0 * queryScale }
            qkvBias += try tensor(p + "attention.self.key.bias", [h])
            qkvBias += try tensor(p + "attention.self.value.bias", [h])
            layers.append(Layer(
                qkvWeight: FloatBuffer(qkv), qkvBias: FloatBuffer(qkvBias),
                attentionOutWeight: FloatBuffer(try tensor(p + "attention.output.dense.weight", [h, h])),
                attentionOutBias: FloatBuffer(try tensor(p + "attention.output.dense.bias", [h])),
                attentionNorm: try norm(p + "attention.output.LayerNorm"),
                intermediateWeight: FloatBuffer(try tensor(p + "intermediate.dense.weight", [inner, h])),
                intermediateBias: FloatBuffer(try tensor(p + "intermediate.dense.bias", [inner])),
                outputWeight: FloatBuffer(try tensor(p + "output.dense.weight", [h, inner])),
                outputBias: FloatBuffer(try tensor(p + "output.dense.bias", [h])),
                outputNorm: try norm(p + "output.LayerNorm")))
        }
        self.layers = layers
    }

    /// Tokens per block of the feed-forward layers (the intermediate buffer holds this many rows).
    static let feedForwardRows = 512

    /// Scratch memory for forward passes, grown on demand and reused; one per calling thread. It may
    /// serve models of different sizes: each buffer is checked against what the pass needs.
    public final class Workspace: @unchecked Sendable {  // used by one thread at a time (pooled by BertEmbedder)
        var hidden = FloatBuffer(count: 0)  // T × H
        var residual = FloatBuffer(count: 0)  // T × H
        var context = FloatBuffer(count: 0)  // T × H
        var qkv = FloatBuffer(count: 0)  // T × 3H
        var intermediate = FloatBuffer(count: 0)  // min(T, feedForwardRows) × I
        var scores = FloatBuffer(count: 0)  // L × padded L
        var inverseSums = FloatBuffer(count: 0)  // L

        public init() {}

        /// Tokens a pass may have without growing this workspace, for a model of hidden size `h`.
        public func capacityTokens(hidden h: Int) -> Int { h > 0 ? hidden.count / h : 0 }

        /// Makes room for a pass of `tokens` tokens; buffers grow by half again when they must, but never beyond what
        /// `maxTokens` tokens need, so a workspace stays within that bound.
        func reserve(tokens: Int, longest: Int, hidden h: Int, intermediate inner: Int, maxTokens: Int = .max) {
            let roomy = max(tokens, maxTokens)
            func ensure(_ buffer: inout FloatBuffer, _ count: Int, perToken: Int) {
                if buffer.count < count {
                    let cap = roomy > Int.max / max(perToken, 1) ? Int.max : roomy * perToken
                    buffer = FloatBuffer(count: max(count, min(buffer.count * 3 / 2, cap)))
                }
            }
            ensure(&hidden, tokens * h, perToken: h)
            ensure(&residual, tokens * h, perToken: h)
            ensure(&context, tokens * h, perToken: h)
            ensure(&qkv, tokens * 3 * h, perToken: 3 * h)
            if intermediate.count < min(tokens, BertModel.feedForwardRows) * inner {
                intermediate = FloatBuffer(count: min(max(tokens, maxTokens), BertModel.feedForwardRows) * inner)
            }
            // One sequence's attention scores: at most maxPositions × padded maxPositions.
            if scores.count < longest * Kernels.paddedStride(longest) { scores = FloatBuffer(count: longest * Kernels.paddedStride(longest)) }
            if inverseSums.count < longest { inverseSums = FloatBuffer(count: longest) }
        }
    }

    /// One pooled vector per sequence of token ids (each non-empty, at most `maxPositions` long, ids
    /// within the vocabulary), L2-normalised when `normalize` is set. Blocks the calling thread for the
    /// whole pass (about 16-26 ms per 200-token sequence for MiniLM-L6 on this project's machines).
    public func encode(_ sequences: [[Int32]], pooling: SentenceModelFolder.Pooling, normalize: Bool,
                       workspace: Workspace, maxTokens: Int = .max) -> [[Float]] {
        guard !sequences.isEmpty else { return [] }
        let h = configuration.hiddenSize
        let total = sequences.reduce(0) { $0 + $1.count }
        let longest = sequences.map(\.count).max() ?? 0
        precondition(sequences.allSatisfy { !$0.isEmpty } && longest <= configuration.maxPositions,
                     "sequences must be non-empty and fit the position table")
        workspace.reserve(tokens: total, longest: longest, hidden: h, intermediate: configuration.intermediateSize,
                          maxTokens: maxTokens)
        embed(sequences, into: workspace.hidden.pointer)
        BLAS.withExclusiveAccess {
            for layer in layers {
                run(layer, sequences: sequences, total: total, workspace: workspace)
            }
        }
        var out: [[Float]] = []
        out.reserveCapacity(sequences.count)
        var row = 0
        for sequence in sequences {
            out.append(pool(workspace.hidden.pointer + row * h, count: sequence.count, pooling: pooling, normalize: normalize))
            row += sequence.count
        }
        return out
    }

    /// Word + position + token-type-0 embeddings, then LayerNorm.
    private func embed(_ sequences: [[Int32]], into x: UnsafeMutablePointer<Float>) {
        let h = configuration.hiddenSize
        let vocabulary = configuration.vocabularySize
        var row = 0
        for sequence in sequences {
            for (position, id) in sequence.enumerated() {
                precondition(id >= 0 && Int(id) < vocabulary, "token id out of range")
                let out = x + row * h
                let word = wordEmbeddings.pointer + Int(id) * h
                let pos = positionEmbeddings.pointer + position * h
                let type = tokenTypeEmbedding.pointer
                for i in 0..<h { out[i] = word[i] + pos[i] + type[i] }
                row += 1
            }
        }
        Kernels.layerNorm(x, into: x, rows: row, width: h, gamma: embeddingNorm.gamma.pointer,
                          beta: embeddingNorm.beta.pointer, epsilon: configuration.layerNormEpsilon)
    }

    private func run(_ layer: Layer, sequences: [[Int32]], total t: Int, workspace w: Workspace) {
        let h = configuration.hiddenSize
        let inner = configuration.intermediateSize
        let heads = configuration.headCount
        let d = h / heads
        let eps = configuration.layerNormEpsilon
        let x = w.hidden.pointer, qkv = w.qkv.pointer, context = w.context.pointer
        let residual = w.residual.pointer, intermediate = w.intermediate.pointer, scores = w.scores.pointer
        let activation: Kernels.Activation = switch configuration.activation {
        case .gelu: .gelu
        case .geluTanh: .geluTanh
        case .relu: .relu
        }

        // Q, K, V for all tokens in one product, bias laid down first.
        Kernels.fillRows(qkv, rows: t, width: 3 * h, with: layer.qkvBias.pointer)
        BLAS.gemm(m: t, n: 3 * h, k: h, a: x, lda: h, b: layer.qkvWeight.pointer, ldb: h, transposeB: true,
                  beta: 1, c: qkv, ldc: 3 * h)

        // Attention per sequence and head: softmax(Q·Kᵀ) · V (Q is pre-scaled by 1/√d). The softmax
        // leaves its rows unnormalised; the n × d product is scaled instead of the n × n matrix.
        let sums = w.inverseSums.pointer
        var row = 0
        for sequence in sequences {
            let n = sequence.count
            let stride = Kernels.paddedStride(n)
            for head in 0..<heads {
                let q = qkv + row * 3 * h + head * d
                let out = context + row * h + head * d
                BLAS.gemm(m: n, n: n, k: d, a: q, lda: 3 * h, b: q + h, ldb: 3 * h, transposeB: true,
                          beta: 0, c: scores, ldc: stride)
                Kernels.softmaxNumerators(scores, rows: n, columns: n, stride: stride, inverseSums: sums)
                BLAS.gemm(m: n, n: d, k: n, a: scores, lda: stride, b: q + 2 * h, ldb: 3 * h, transposeB: false,
                          beta: 0, c: out, ldc: h)
                Kernels.scaleRows(out, rows: n, width: d, stride: h, by: sums)
            }
            row += n
        }

        // Attention output: residual + bias + context · Woᵀ, then LayerNorm.
        Kernels.addRows(x, bias: layer.attentionOutBias.pointer, into: residual, rows: t, width: h)
        BLAS.gemm(m: t, n: h, k: h, a: context, lda: h, b: layer.attentionOutWeight.pointer, ldb: h, transposeB: true,
                  beta: 1, c: residual, ldc: h)
        Kernels.layerNorm(residual, into: x, rows: t, width: h, gamma: layer.attentionNorm.gamma.pointer,
                          beta: layer.attentionNorm.beta.pointer, epsilon: eps)

        // Feed-forward: activation(x · W1ᵀ + b1) · W2ᵀ + b2 + residual, then LayerNorm. Rows go through in
        // blocks so the wide intermediate activations stay small and in cache.
        Kernels.addRows(x, bias: layer.outputBias.pointer, into: residual, rows: t, width: h)
        var start = 0
        while start < t {
            let rows = min(Self.feedForwardRows, t - start)
            BLAS.gemm(m: rows, n: inner, k: h, a: x + start * h, lda: h, b: layer.intermediateWeight.pointer, ldb: h,
                      transposeB: true, beta: 0, c: intermediate, ldc: inner)
            Kernels.biasActivation(intermediate, rows: rows, width: inner, bias: layer.intermediateBias.pointer, activation)
            BLAS.gemm(m: rows, n: h, k: inner, a: intermediate, lda: inner, b: layer.outputWeight.pointer, ldb: inner,
                      transposeB: true, beta: 1, c: residual + start * h, ldc: h)
            start += rows
        }
        Kernels.layerNorm(residual, into: x, rows: t, width: h, gamma: layer.outputNorm.gamma.pointer,
                          beta: layer.outputNorm.beta.pointer, epsilon: eps)
    }

    /// Pools `count` token rows of width H starting at `rows`.
    private func pool(_ rows: UnsafePointer<Float>, count: Int, pooling: SentenceModelFolder.Pooling,
                      normalize: Bool) -> [Float] {
        let h = configuration.hiddenSize
        var v = [Float](repeating: 0, count: h)
        switch pooling {
        case .cls:
            for i in 0..<h { v[i] = rows[i] }
        case .max:
            for i in 0..<h { v[i] = rows[i] }
            for r in 1..<max(count, 1) {
                let row = rows + r * h
                for i in 0..<h where row[i] > v[i] { v[i] = row[i] }
            }
        case .mean, .meanSqrtLength:
            var sum = [Double](repeating: 0, count: h)
            for r in 0..<count {
                let row = rows + r * h
                for i in 0..<h { sum[i] += Double(row[i]) }
            }
            let divisor = pooling == .mean ? Double(count) : Double(count).squareRoot()
            for i in 0..<h { v[i] = Float(sum[i] / divisor) }
        }
        if normalize { Self.normalize(&v) }
        return v
    }

    /// Scales `v` to unit length (sentence-transformers' `Normalize`: v / max(‖v‖, 1e-12)).
    static func normalize(_ v: inout [Float]) {
        var squares: Double = 0
        for x in v { squares += Double(x) * Double(x) }
        let scale = 1 / Swift.max(squares.squareRoot(), 1e-12)
        for i in v.indices { v[i] = Float(Double(v[i]) * scale) }
    }
}
