import Foundation
import Testing
@testable import RagEmbed

/// Builds safetensors files byte by byte.
struct SafeTensorsBuilder {
    var entries: [(name: String, dtype: String, shape: [Int], bytes: [UInt8])] = []
    var metadata: [String: String]? = nil

    mutating func add(_ name: String, _ dtype: String, _ shape: [Int], _ bytes: [UInt8]) {
        entries.append((name, dtype, shape, bytes))
    }

    /// The header JSON with offsets computed from the entries (or `header` verbatim) and the data.
    func build(header override: String? = nil, extraData: [UInt8] = []) -> [UInt8] {
        var fields: [String] = []
        if let metadata {
            let items = metadata.map { "\"\($0.key)\":\"\($0.value)\"" }.joined(separator: ",")
            fields.append("\"__metadata__\":{\(items)}")
        }
        var offset = 0
        var data: [UInt8] = []
        for e in entries {
            fields.append("\"\(e.name)\":{\"dtype\":\"\(e.dtype)\",\"shape\":\(e.shape),\"data_offsets\":[\(offset),\(offset + e.bytes.count)]}")
            offset += e.bytes.count
            data += e.bytes
        }
        var header = Array((override ?? "{" + fields.joined(separator: ",") + "}").utf8)
        while header.count % 8 != 0 { header.append(0x20) }
        var file = withUnsafeBytes(of: UInt64(header.count).littleEndian, Array.init)
        file += header
        file += data
        file += extraData
        return file
    }
}

func floatBytes(_ values: [Float]) -> [UInt8] {
    values.flatMap { withUnsafeBytes(of: $0.bitPattern.littleEndian, Array.init) }
}

func halfBytes(_ bits: [UInt16]) -> [UInt8] {
    bits.flatMap { withUnsafeBytes(of: $0.littleEndian, Array.init) }
}

struct SafeTensorsTests {
    @Test func readsF32F16BF16AndSkipsOtherTypes() throws {
        var b = SafeTensorsBuilder()
        b.metadata = ["format": "pt"]
        b.add("ids", "I64", [1, 2], Array(repeating: 0, count: 16))
        b.add("f32", "F32", [2, 2], floatBytes([1, -2, 3.5, 0]))
        // 1.0, -2.5, 65504 (largest half), 2^-24 (smallest subnormal), +inf
        b.add("f16", "F16", [5], halfBytes([0x3C00, 0xC100, 0x7BFF, 0x0001, 0x7C00]))
        b.add("bf16", "BF16", [2], halfBytes([0x3F80, 0xC020]))  // 1.0, -2.5
        b.add("empty", "F32", [0, 4], [])
        let st = try SafeTensors(bytes: b.build())
        #expect(st.metadata == ["format": "pt"])
        #expect(st.tensors["f32"]?.shape == [2, 2])
        #expect(try st.floats("f32", shape: [2, 2]) == [1, -2, 3.5, 0])
        #expect(try st.floats("f16") == [1, -2.5, 65504, 0x1p-24, .infinity])
        #expect(try st.floats("bf16") == [1, -2.5])
        #expect(try st.floats("empty") == [])
        #expect(throws: EmbedError.self) { try st.floats("f32", shape: [4]) }
        #expect(throws: EmbedError.self) { try st.floats("ids") }
        #expect(throws: EmbedError.self) { try st.floats("missing") }
    }

    @Test func halfPrecisionConversionIsExact() {
        for bits in stride(from: 0, through: 0xFFFF, by: 1) where (bits & 0x7C00) != 0x7C00 {
            let half = UInt16(bits)
            #expect(SafeTensors.halfToFloat(half) == Float(Float16(bitPattern: half)))
        }
        #expect(SafeTensors.halfToFloat(0x7E00).isNaN)
        #expect(SafeTensors.halfToFloat(0xFC00) == -.infinity)
    }

    static let validHeader = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}"

    /// Malformed inputs and a phrase the error message must contain.
    static let malformed: [(String, [UInt8], String)] = {
        func file(_ header: String, data: Int = 8, declared: UInt64? = nil) -> [UInt8] {
            let h = Array(header.utf8)
            return withUnsafeBytes(of: (declared ?? UInt64(h.count)).littleEndian, Array.init) + h + Array(repeating: 0, count: data)
        }
        return [
            ("empty file", [], "shorter than the 8-byte header length"),
            ("short file", [1, 0, 0], "shorter than the 8-byte header length"),
            ("header past end", file(validHeader, data: 0, declared: 500), "runs past the end"),
            ("huge header length", file(validHeader, declared: UInt64.max), "exceeds"),
            ("header not JSON", file("{\"a\": nope}"), "not valid JSON"),
            ("header not object", file("[1, 2, 3]  "), "does not start with '{'"),
            ("trailing garbage", file(validHeader + "x"), "not valid JSON"),
            ("unknown dtype", file("{\"a\":{\"dtype\":\"F128\",\"shape\":[2],\"data_offsets\":[0,8]}}"), "unknown dtype"),
            ("negative dimension", file("{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}"), "non-negative integer"),
            ("fractional dimension", file("{\"a\":{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,8]}}"), "non-negative integer"),
            ("boolean dimension", file("{\"a\":{\"dtype\":\"F32\",\"shape\":[true],\"data_offsets\":[0,8]}}"), "non-negative integer"),
            ("overflowing shape", file("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,8]}}"), "overflows"),
            ("missing offsets", file("{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}"), "data_offsets"),
            ("reversed offsets", file("{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,0]}}"), "out of order"),
            ("truncated data", file(validHeader, data: 4), "past the 4 data bytes"),
            ("size mismatch", file("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}"), "8 bytes for shape [3]"),
            ("overlap", file("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}"), "overlaps"),
            ("gap", file("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}"), "gap before tensor a"),
            ("trailing bytes", file(validHeader, data: 12), "cover 8 of 12"),
            ("metadata not strings", file("{\"__metadata__\":{\"n\":1},\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}"), "not a string"),
            ("entry not object", file("{\"a\":[1]}", data: 0), "not an object"),
            ("deep nesting", file("{\"a\":" + String(repeating: "[", count: 100) + String(repeating: "]", count: 100) + "}", data: 0), "nesting"),
            ("lone surrogate", file("{\"a\":\"\\ud800\"}", data: 0), "not valid JSON"),
            ("invalid UTF-8", [8, 0, 0, 0, 0, 0, 0, 0] + Array("{\"".utf8) + [0xFF, 0xFE] + Array("\":1}".utf8), "not valid JSON"),
        ]
    }()

    @Test(arguments: malformed.indices)
    func malformedInputIsAnError(_ index: Int) {
        let (name, bytes, phrase) = Self.malformed[index]
        do {
            _ = try SafeTensors(bytes: bytes, name: name)
            Issue.record("\(name): accepted")
        } catch let error as EmbedError {
            #expect(error.code == .malformedFile, "\(name)")
            #expect(error.description.contains(phrase), "\(name): \(error)")
            #expect(error.path == name)
        } catch {
            Issue.record("\(name): unexpected \(error)")
        }
    }

    @Test func validFileRoundTrips() throws {
        var b = SafeTensorsBuilder()
        b.add("a", "F32", [2], floatBytes([0.5, 0.25]))
        #expect(try SafeTensors(bytes: b.build()).floats("a") == [0.5, 0.25])
    }

    @Test func everyTruncationOfTheTinyModelIsRejected() throws {
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: Fixtures.tinyModel + "/model.safetensors")))
        #expect(try SafeTensors(bytes: bytes).tensors.count > 10)
        for length in [0, 7, 8, 100, bytes.count / 2, bytes.count - 1] {
            #expect(throws: EmbedError.self) { try SafeTensors(bytes: Array(bytes[0..<length])) }
        }
    }

    @Test func missingFileIsNamed() {
        do {
            _ = try SafeTensors(contentsOf: "/nonexistent/model.safetensors")
            Issue.record("opened a missing file")
        } catch let error as EmbedError {
            #expect(error.code == .missingFile)
            #expect(error.path == "/nonexistent/model.safetensors")
        } catch {
            Issue.record("unexpected \(error)")
        }
    }

    @Test func mapsFileFromDisk() throws {
        let st = try SafeTensors(contentsOf: Fixtures.tinyModel + "/model.safetensors")
        #expect(st.tensors["bert.embeddings.position_ids"]?.dtype == .i64)
        #expect(st.tensors["bert.embeddings.word_embeddings.weight"]?.shape.last == 32)
    }
}
