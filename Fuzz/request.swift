// libFuzzer target: one request line through `RequestDecoder.decode`, and its reply.
import RagProtocol

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRequest(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let line = data.map { UnsafeBufferPointer(start: $0, count: size) } ?? UnsafeBufferPointer(start: nil, count: 0)
    let limits = RequestLimits()
    let decoded = RequestDecoder.decode(line: line, limits: limits)
    let parsed = try? JSONParser.parse(line)

    if let parsed {
        // Serialising and parsing again gives the same value, on one line.
        let text = parsed.serialized()
        guard let again = try? JSONParser.parse(text) else {
            invariant(false, "serialised value does not parse: \(text)")
            return 0
        }
        invariant(again == parsed, "value does not round-trip: \(text)")
        invariant(!text.utf8.contains(0x0A) && !text.utf8.contains(0x0D), "serialised value spans lines")
    }
    switch decoded.result {
    case .success(let request):
        guard let parsed, case .object = parsed else {
            invariant(false, "decoder accepted a line that is not a JSON object")
            return 0
        }
        switch decoded.id {
        case .null, .array, .object: invariant(false, "accepted id \(decoded.id)")
        default: break
        }
        switch request {
        case .search(let search):
            invariant((1...limits.maxK).contains(search.k), "k \(search.k) out of range")
            invariant(search.query.utf8.count <= limits.maxQueryBytes, "query over the byte limit")
            if let weight = search.fusion.denseWeight { invariant(weight >= 0 && weight <= 1, "dense_weight \(weight)") }
            invariant(search.filter.pathPrefixes.allSatisfy { $0.hasPrefix("/") }, "relative path prefix")
            if let after = search.filter.modifiedAfter { invariant(after.isFinite, "modified_after \(after)") }
        case .get(let get):
            if case .file(let path, let lines) = get.target {
                invariant(path.hasPrefix("/"), "relative get path")
                if let lines { invariant(lines.lowerBound >= 1, "lines start at \(lines.lowerBound)") }
            }
        case .sync(let timeout, _):
            invariant(timeout >= 0 && timeout <= 600, "sync timeout \(timeout)")
        case .files(let prefix):
            invariant(prefix.map { $0.hasPrefix("/") } ?? true, "relative files prefix")
        case .reindex(let path):
            invariant(path.map { $0.hasPrefix("/") } ?? true, "relative reindex path")
        case .backup(let destination):
            invariant(destination.hasPrefix("/") && !destination.split(separator: "/").contains { $0 == "." || $0 == ".." },
                      "backup destination \(destination)")
        case .status, .ping, .sources, .metrics:
            break
        }
    case .failure(let error):
        if parsed == nil { invariant(error.code == .badRequest, "malformed JSON answered as \(error.code)") }
        invariant(error.code != .internal, "internal error for \(error.message)")
    }
    // The reply echoes the id: it must be one line of valid JSON whose id reads back the same.
    let reply: JSONValue
    switch decoded.result {
    case .success: reply = Reply.success(id: decoded.id, [])
    case .failure(let error): reply = Reply.failure(id: decoded.id, error)
    }
    let text = reply.serialized()
    invariant(!text.utf8.contains(0x0A) && !text.utf8.contains(0x0D), "reply spans lines: \(text)")
    guard let back = try? JSONParser.parse(text) else {
        invariant(false, "reply is not JSON: \(text)")
        return 0
    }
    invariant(back["id"] == decoded.id, "id does not round-trip: \(text)")
    if decoded.id != .null { invariant(decoded.id == parsed?["id"], "the reply's id is not the request's") }
    return 0
}
