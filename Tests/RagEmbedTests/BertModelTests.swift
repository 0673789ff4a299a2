import Foundation
import Testing
import RagCore
import RagEmbed

/// The tiny random BERT against the numpy reference (Fixtures/tiny_reference.json).
struct BertModelTests {
    static let embedder = try! BertEmbedder(modelFolder: Fixtures.tinyModel)

    @Test func tokenIDsMatchReference() {
        for r in Fixtures.tinyReference {
            #expect(Self.embedder.tokenIDs(r.text) == r.ids, "\(r.text)")
        }
    }

    @Test func meanPooledNormalisedVectorsMatchReference() throws {
        let texts = Fixtures.tinyReference.map(\.text)
        let vectors = try Self.embedder.embed(texts)
        #expect(vectors.count == texts.count)
        for (v, r) in zip(vectors, Fixtures.tinyReference) {
            #expect(v.count == 32)
            #expect(maxAbsDifference(v, r.mean_norm) < 2e-5, "\(r.text)")
            #expect(cosine(v, r.mean_norm) > 0.99999)
        }
    }

    @Test func batchingDoesNotChangeVectors() throws {
        // 64 texts of up to 24 tokens: two batches of 32, each over 512 tokens (two feed-forward blocks).
        let texts = (0..<64).map { i in
            Fixtures.tinyReference[i % Fixtures.tinyReference.count].text + String(repeating: " hello world", count: i % 11)
        }
        let together = try Self.embedder.embed(texts)
        for (text, vector) in zip(texts, together) {
            let alone = try Self.embedder.embed([text])[0]
            #expect(maxAbsDifference(alone, vector) < 1e-6)
        }
        #expect(try Self.embedder.embed([]) == [])
    }

    @Test func identity() {
        let e = Self.embedder
        #expect(e.dimensions == 32)
        #expect(e.maxSequenceLength == 24)
        let hash = SHA256.hash(try! Data(contentsOf: URL(fileURLWithPath: Fixtures.tinyModel + "/model.safetensors")))
        #expect(e.weightsHash == hash)
        #expect(e.modelID == "tiny-bert@\(hash.hex.prefix(12));mean;norm;24")
        #expect(e.tokenCount("hello world") == 2 + e.tokenizer.pieces("hello world").count)
    }

    /// Rewrites the tiny folder's pooling config and modules list, then compares with the reference.
    func embedder(pooling key: String, normalize: Bool, activation: String = "gelu") throws -> BertEmbedder {
        try Fixtures.withTinyCopy { folder in
            try Fixtures.write("{\"word_embedding_dimension\": 32, \"\(key)\": true}", to: folder + "/1_Pooling/config.json")
            let normalizeModule = normalize ? ", {\"idx\": 2, \"name\": \"2\", \"path\": \"2_Normalize\", \"type\": \"sentence_transformers.models.Normalize\"}" : ""
            try Fixtures.write("""
                [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
                 {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}\(normalizeModule)]
                """, to: folder + "/modules.json")
            var config = try String(contentsOfFile: folder + "/config.json", encoding: .utf8)
            config = config.replacingOccurrences(of: "\"hidden_act\": \"gelu\"", with: "\"hidden_act\": \"\(activation)\"")
            try Fixtures.write(config, to: folder + "/config.json")
            return try BertEmbedder(modelFolder: folder)
        }
    }

    @Test func clsPooling() throws {
        let e = try embedder(pooling: "pooling_mode_cls_token", normalize: false)
        #expect(e.modelID.contains(";cls;norm;24"))
        let raw = e.encode(Fixtures.tinyReference.map(\.text))
        for (v, r) in zip(raw, Fixtures.tinyReference) {
            #expect(maxAbsDifference(v, r.cls) < 5e-5, "\(r.text)")
        }
        // embed() still returns unit vectors, as Embedder promises.
        for v in try e.embed(["x", "hello world"]) {
            #expect(abs(v.reduce(0) { $0 + $1 * $1 } - 1) < 1e-5)
        }
    }

    @Test func maxPooling() throws {
        let e = try embedder(pooling: "pooling_mode_max_tokens", normalize: false)
        for (v, r) in zip(e.encode(Fixtures.tinyReference.map(\.text)), Fixtures.tinyReference) {
            #expect(maxAbsDifference(v, r.max) < 5e-5, "\(r.text)")
        }
    }

    @Test func tanhGELU() throws {
        let e = try embedder(pooling: "pooling_mode_mean_tokens", normalize: true, activation: "gelu_new")
        for (v, r) in zip(try e.embed(Fixtures.tinyReference.map(\.text)), Fixtures.tinyReference) {
            #expect(maxAbsDifference(v, r.mean_norm_tanh) < 2e-5, "\(r.text)")
        }
    }

    // MARK: Bad folders

    func loadError(_ change: (String) throws -> Void) throws -> EmbedError? {
        try Fixtures.withTinyCopy { folder in
            try change(folder)
            do {
                _ = try BertEmbedder(modelFolder: folder)
                return nil
            } catch let error as EmbedError {
                return error
            }
        }
    }

    @Test func missingFolder() {
        #expect(throws: EmbedError.self) { try BertEmbedder(modelFolder: "/nonexistent/model") }
    }

    @Test(arguments: ["config.json", "modules.json", "vocab.txt", "model.safetensors", "1_Pooling/config.json"])
    func missingFileIsNamed(_ name: String) throws {
        let error = try #require(try loadError { try FileManager.default.removeItem(atPath: $0 + "/" + name) })
        #expect(error.code == .missingFile)
        #expect(error.path?.hasSuffix("/" + name) == true, "\(error)")
    }

    @Test func malformedConfig() throws {
        let error = try #require(try loadError { try Fixtures.write("{\"hidden_size\": 32,", to: $0 + "/config.json") })
        #expect(error.code == .malformedFile)
        #expect(error.path?.hasSuffix("config.json") == true)
        let missingKey = try #require(try loadError { try Fixtures.write("{\"hidden_size\": 32}", to: $0 + "/config.json") })
        #expect(missingKey.description.contains("missing vocab_size"))
    }

    @Test func shapeMismatchBetweenConfigAndWeights() throws {
        let error = try #require(try loadError { folder in
            var config = try String(contentsOfFile: folder + "/config.json", encoding: .utf8)
            config = config.replacingOccurrences(of: "\"intermediate_size\": 64", with: "\"intermediate_size\": 48")
            try Fixtures.write(config, to: folder + "/config.json")
        })
        #expect(error.code == .malformedFile)
        #expect(error.description.contains("intermediate.dense.weight has shape [64, 32], expected [48, 32]"), "\(error)")
    }

    @Test func truncatedWeights() throws {
        let error = try #require(try loadError { folder in
            let path = folder + "/model.safetensors"
            let data = try Data(contentsOf: URL(fileURLWithPath: path))
            try data.prefix(data.count - 100).write(to: URL(fileURLWithPath: path))
        })
        #expect(error.code == .malformedFile)
        #expect(error.path?.hasSuffix("model.safetensors") == true)
    }

    @Test func unsupportedModules() throws {
        let error = try #require(try loadError { folder in
            try Fixtures.write("""
                [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
                 {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
                 {"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"}]
                """, to: folder + "/modules.json")
        })
        #expect(error.code == .unsupportedModel)
        #expect(error.description.contains("Dense"))
    }

    @Test func maxSequenceLengthIsCappedByPositions() throws {
        let e = try Fixtures.withTinyCopy { folder in
            try Fixtures.write("{\"max_seq_length\": 4096}", to: folder + "/sentence_bert_config.json")
            return try BertEmbedder(modelFolder: folder)
        }
        #expect(e.maxSequenceLength == 32)
        let long = String(repeating: "hello world ", count: 50)
        #expect(e.tokenIDs(long).count == 32)
        #expect(try e.embed([long])[0].count == 32)
    }
}
