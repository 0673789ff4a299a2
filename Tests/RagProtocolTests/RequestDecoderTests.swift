import RagProtocol
import Testing

struct JSONTests {
    @Test(arguments: [
        (#"{"a":1,"b":[true,false,null],"c":"x\"y\\z\n","d":-2.5}"#, #"{"a":1,"b":[true,false,null],"c":"x\"y\\z\n","d":-2.5}"#),
        (#" [ ] "#, "[]"),
        (#""\u00e9\ud83d\ude00""#, "\"é😀\""),
        (#"1e3"#, "1000"),
        (#""\u2028""#, #""\u2028""#),
    ])
    func roundTrips(input: String, expected: String) throws {
        #expect(try JSONParser.parse(input).serialized() == expected)
    }

    @Test(arguments: ["", "{", "[1,]", "{\"a\" 1}", "tru", "01", "\"\\x\"", "\"\\ud800\"", "{} x", "\"a\u{01}\"", "1.", "-"])
    func rejectsMalformed(input: String) {
        #expect(throws: JSONParseError.self) { try JSONParser.parse(input) }
    }

    /// Regression (found by Fuzz/request.swift): `71e9998` parsed as infinity, which serialises as `null`.
    @Test(arguments: ["71e9998", "-1e309", "[1e400]"])
    func rejectsNumbersOutOfRange(input: String) {
        let error = #expect(throws: JSONParseError.self) { try JSONParser.parse(input) }
        #expect(error?.message == "number out of range")
        #expect(error?.offset == (input.hasPrefix("[") ? 1 : 0))
    }

    @Test func limitsNesting() {
        let deep = String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000)
        #expect(throws: JSONParseError.self) { try JSONParser.parse(deep) }
        let ok = String(repeating: "[", count: 60) + String(repeating: "]", count: 60)
        #expect(throws: Never.self) { try JSONParser.parse(ok) }
    }

    /// Regression (found by Fuzz/request.swift): with a repeated key, a value was not equal to itself, because
    /// each member was compared with the other object's first member of that key.
    @Test func equalityWithRepeatedKeys() throws {
        let line = #"{"dense_weight":"search","query":"q","dense_weight":0.4,"text":false}"#
        let value = try JSONParser.parse(line)
        #expect(value == value)
        #expect(try JSONParser.parse(value.serialized()) == value)
        #expect(value == .object([("query", "q"), ("dense_weight", "x"), ("text", false), ("dense_weight", 0.4)]))
        #expect(value != .object([("query", "q"), ("dense_weight", 0.4), ("text", false), ("dense_weight", "x")]))
        #expect(JSONValue.object([("a", 1), ("a", 1)]) != .object([("a", 1), ("b", 1)]))
    }

    @Test func rejectsInvalidUTF8() {
        #expect(throws: JSONParseError.self) { try JSONParser.parse([0x22, 0xFF, 0x22]) }
    }
}

struct RequestDecoderTests {
    func decode(_ line: String) -> DecodedRequest { RequestDecoder.decode(line: Array(line.utf8)) }

    @Test func decodesSearch() throws {
        let decoded = decode(#"{"id":7,"op":"search","query":"lmdb cursors","k":5,"mode":"bm25","filter":{"path_prefix":"/docs","ext":[".MD","rst.txt","RST.TXT.GZ","md.gz"]}}"#)
        #expect(decoded.id == 7)
        let request = try decoded.result.get()
        #expect(request == .search(SearchRequest(query: "lmdb cursors", k: 5, mode: .bm25,
                                                 filter: SearchFilter(pathPrefixes: ["/docs"], extensions: ["md", "rst", "rst", "md"]))))
    }

    @Test func defaults() throws {
        let request = try decode(#"{"id":"a","op":"search","query":"x"}"#).result.get()
        #expect(request == .search(SearchRequest(query: "x", k: 10, mode: .hybrid)))
    }

    @Test(arguments: [
        (#"not json"#, "bad_request"),
        (#"[1,2]"#, "bad_request"),
        (#"{"op":"status"}"#, "bad_request"),
        (#"{"id":1}"#, "bad_request"),
        (#"{"id":{"x":1},"op":"status"}"#, "bad_request"),
        (#"{"id":1,"op":5}"#, "invalid_argument"),
        (#"{"id":1,"op":"frobnicate"}"#, "unknown_op"),
        (#"{"id":1,"op":"search"}"#, "invalid_argument"),
        (#"{"id":1,"op":"search","query":3}"#, "invalid_argument"),
        (#"{"id":1,"op":"search","query":"x","k":0}"#, "invalid_argument"),
        (#"{"id":1,"op":"search","query":"x","k":100000}"#, "invalid_argument"),
        (#"{"id":1,"op":"search","query":"x","k":2.5}"#, "invalid_argument"),
        (#"{"id":1,"op":"search","query":"x","k":"10"}"#, "invalid_argument"),
        (#"{"id":1,"op":"search","query":"x","mode":"fuzzy"}"#, "invalid_argument"),
        (#"{"id":1,"op":"search","query":"x","filter":"md"}"#, "invalid_argument"),
        (#"{"id":1,"op":"search","query":"x","filter":{"colour":"red"}}"#, "invalid_argument"),
        (#"{"id":1,"op":"search","query":"x","filter":{"path_prefix":"relative/dir"}}"#, "invalid_argument"),
        (#"{"id":1,"op":"get"}"#, "invalid_argument"),
        (#"{"id":1,"op":"get","path":"relative.md"}"#, "invalid_argument"),
        (#"{"id":1,"op":"get","path":"/a.md","lines":[5,2]}"#, "invalid_argument"),
        (#"{"id":1,"op":"get","chunk":-1}"#, "invalid_argument"),
        // Regression (found by Fuzz/request.swift): an id beyond Double's range became infinity, accepted and
        // echoed back as null.
        (#"{"id":71e9998,"op":"ping"}"#, "bad_request"),
    ])
    func rejects(line: String, code: String) {
        let decoded = decode(line)
        guard case .failure(let error) = decoded.result else {
            Issue.record("accepted \(line)")
            return
        }
        #expect(error.code.rawValue == code, "\(line): \(error)")
        #expect(!error.message.isEmpty)
    }

    @Test func decodesReindex() throws {
        #expect(try decode(#"{"id":1,"op":"reindex"}"#).result.get() == .reindex(path: nil))
        #expect(try decode(#"{"id":1,"op":"reindex","path":null}"#).result.get() == .reindex(path: nil))
        #expect(try decode(#"{"id":1,"op":"reindex","path":"/srv/docs/"}"#).result.get() == .reindex(path: "/srv/docs"))
        #expect(try decode(#"{"id":1,"op":"reindex","path":"/"}"#).result.get() == .reindex(path: "/"))
        for bad in [#"{"id":1,"op":"reindex","path":"docs"}"#, #"{"id":1,"op":"reindex","path":3}"#] {
            guard case .failure(let error) = decode(bad).result else { Issue.record("accepted \(bad)"); continue }
            #expect(error.code == .invalidArgument)
        }
    }

    @Test func echoesIDOfInvalidRequest() {
        #expect(decode(#"{"id":"abc","op":"nope"}"#).id == "abc")
    }

    @Test func queryLimit() {
        let long = String(repeating: "a", count: 9000)
        let decoded = RequestDecoder.decode(line: Array(#"{"id":1,"op":"search","query":"\#(long)"}"#.utf8), limits: RequestLimits(maxK: 10, maxQueryBytes: 8192))
        guard case .failure(let error) = decoded.result else { Issue.record("accepted"); return }
        #expect(error.code == .invalidArgument)
    }

    @Test func replyShapes() {
        #expect(Reply.success(id: 3, [("pong", true)]).serialized() == #"{"id":3,"ok":true,"pong":true}"#)
        #expect(Reply.failure(id: .null, WireError(.badRequest, "no")).serialized() == #"{"id":null,"ok":false,"error":{"code":"bad_request","message":"no"}}"#)
    }

    @Test func tagAndTimeFilters() throws {
        let request = try decode(#"{"id":1,"op":"search","query":"x","filter":{"tags":["Setup","debian"],"modified_after":"2026-11-27T10:00:00Z"}}"#).result.get()
        guard case .search(let search) = request else { Issue.record("not a search"); return }
        #expect(search.filter.tags == ["setup", "debian"])
        #expect(search.filter.modifiedAfter == 1_795_773_600)
        #expect(RequestDecoder.parseTimestamp("1970-01-02") == 86400)
        #expect(RequestDecoder.parseTimestamp("2000-03-01T00:00:00+01:00") == 951_865_200)
        #expect(RequestDecoder.parseTimestamp("2026-13-01") == nil)
        #expect(RequestDecoder.parseTimestamp("yesterday") == nil)
        guard case .failure(let error) = decode(#"{"id":1,"op":"search","query":"x","filter":{"modified_after":"soon"}}"#).result else {
            Issue.record("accepted"); return
        }
        #expect(error.code == .invalidArgument)
    }
}
