import Foundation
import RagEmbed
import Testing

/// Paths and JSON of the committed fixtures (see Fixtures/make_fixtures.py).
enum Fixtures {
    static var folder: String {
        Bundle.module.resourceURL!.appendingPathComponent("Fixtures").path
    }

    /// The tiny random BERT folder.
    static var tinyModel: String { folder + "/tiny-bert" }

    /// The real all-MiniLM-L6-v2 folder: `$RAGD_MODEL_DIR`, else models/all-MiniLM-L6-v2 in the repository
    /// (`make test` fetches it).
    static var miniLM: String {
        if let dir = ProcessInfo.processInfo.environment["RAGD_MODEL_DIR"], !dir.isEmpty { return dir }
        let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return repository.appendingPathComponent("models/all-MiniLM-L6-v2").path
    }

    static var miniLMPresent: Bool {
        FileManager.default.fileExists(atPath: miniLM + "/model.safetensors")
    }

    static func decode<T: Decodable>(_ type: T.Type, _ name: String) -> T {
        let data = try! Data(contentsOf: URL(fileURLWithPath: folder + "/" + name))
        return try! JSONDecoder().decode(T.self, from: data)
    }

    struct TokenizerCase: Decodable, Sendable, CustomTestStringConvertible {
        var text: String
        var tiny: [Int32]
        var tiny_cased: [Int32]
        var minilm: [Int32]?
        var testDescription: String { String(text.debugDescription.prefix(60)) }
    }

    struct TinyReference: Decodable, Sendable {
        var text: String
        var ids: [Int32]
        var mean_norm: [Float]
        var cls: [Float]
        var max: [Float]
        var mean_norm_tanh: [Float]
    }

    struct MiniLMReference: Decodable, Sendable {
        var text: String
        var ids: [Int32]
        var embedding: [Float]
    }

    /// A string and its MiniLM ids from HuggingFace `tokenizers` (`ids` truncated at 256, `n` untruncated).
    struct MiniLMTokens: Decodable, Sendable {
        var t: String
        var ids: [Int32]
        var n: Int
    }

    struct MiniLMCases: Decodable, Sendable {
        var count: Int
        var cases: [MiniLMTokens]
    }

    static let tokenizerCases = decode([TokenizerCase].self, "tokenizer_cases.json")
    /// minilm_tokens.json: over 1,000 varied strings (Fixtures/corpus.py).
    static let miniLMTokens = decode(MiniLMCases.self, "minilm_tokens.json")
    /// minilm_encoder_reference.json: the texts of the encoder reference, with ids.
    static let miniLMEncoderTexts = decode(MiniLMCases.self, "minilm_encoder_reference.json")

    /// minilm_encoder_reference.f32: numpy float64 embeddings of ``miniLMEncoderTexts`` stored as float32
    /// little-endian, `dimensions` per text.
    static func miniLMEncoderVectors(dimensions: Int) -> [[Float]] {
        let data = try! Data(contentsOf: URL(fileURLWithPath: folder + "/minilm_encoder_reference.f32"))
        let floats: [Float] = data.withUnsafeBytes { raw in
            (0..<(raw.count / 4)).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self))) }
        }
        precondition(floats.count % dimensions == 0, "minilm_encoder_reference.f32 is not a whole number of vectors")
        return stride(from: 0, to: floats.count, by: dimensions).map { Array(floats[$0..<($0 + dimensions)]) }
    }
    static let tinyReference = decode([TinyReference].self, "tiny_reference.json")
    static let miniLMReference = decode([MiniLMReference].self, "minilm_reference.json")

    /// A copy of the tiny model folder in a fresh temporary directory, for tests that alter files.
    static func withTinyCopy<R>(_ body: (String) throws -> R) throws -> R {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ragembed-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let copy = dir.appendingPathComponent("tiny-bert")
        try FileManager.default.copyItem(atPath: tinyModel, toPath: copy.path)
        return try body(copy.path)
    }

    static func write(_ text: String, to path: String) throws {
        try text.write(toFile: path, atomically: true, encoding: .utf8)
    }
}

func cosine(_ a: [Float], _ b: [Float]) -> Double {
    var dot = 0.0, na = 0.0, nb = 0.0
    for (x, y) in zip(a, b) {
        dot += Double(x) * Double(y)
        na += Double(x) * Double(x)
        nb += Double(y) * Double(y)
    }
    return dot / max((na * nb).squareRoot(), 1e-30)
}

func maxAbsDifference(_ a: [Float], _ b: [Float]) -> Float {
    zip(a, b).map { abs($0 - $1) }.max() ?? 0
}
