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

    static let tokenizerCases = decode([TokenizerCase].self, "tokenizer_cases.json")
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
