import RagCore

/// A source file as the index knows it.
public struct FileRecord: Sendable, Equatable {
    public var path: String
    public var size: UInt64
    /// Modification time in nanoseconds since the epoch.
    public var mtimeNanos: Int64
    public var contentHash: ContentHash
    public var title: String?
    public var tags: [String]
    /// Chunk ids in document order.
    public var chunkIDs: [UInt32]

    public init(path: String, size: UInt64, mtimeNanos: Int64, contentHash: ContentHash, title: String?, tags: [String], chunkIDs: [UInt32]) {
        self.path = path
        self.size = size
        self.mtimeNanos = mtimeNanos
        self.contentHash = contentHash
        self.title = title
        self.tags = tags
        self.chunkIDs = chunkIDs
    }
}

/// A stored chunk: the unit of retrieval and citation.
public struct ChunkRecord: Sendable, Equatable {
    public var fileID: UInt32
    /// 1-based, inclusive line range in the file.
    public var lines: ClosedRange<Int>
    /// Heading trail, outermost first.
    public var headings: [String]
    /// SHA-256 of the heading trail and the text: equal hashes mean equal indexed content.
    public var contentHash: ContentHash
    /// Number of analyzed terms (the BM25 document length).
    public var length: UInt32
    public var text: String
}

/// Big-endian integer keys make byte order match numeric order.
@inline(__always) func beKey(_ value: UInt32) -> [UInt8] {
    [UInt8(value >> 24), UInt8(value >> 16 & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF)]
}

@inline(__always) func readBE32(_ bytes: UnsafeRawBufferPointer, at offset: Int = 0) -> UInt32 {
    UInt32(bytes[offset]) << 24 | UInt32(bytes[offset + 1]) << 16 | UInt32(bytes[offset + 2]) << 8 | UInt32(bytes[offset + 3])
}

/// Appends varints and length-prefixed fields.
struct ByteWriter {
    var bytes: [UInt8] = []

    mutating func varint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            bytes.append(UInt8(v & 0x7F) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }
    mutating func int(_ value: Int) { varint(UInt64(bitPattern: Int64(value))) }
    mutating func signed(_ value: Int64) { varint(UInt64(bitPattern: (value << 1) ^ (value >> 63))) }
    mutating func string(_ value: String) {
        varint(UInt64(value.utf8.count))
        bytes.append(contentsOf: value.utf8)
    }
    mutating func raw(_ value: [UInt8]) {
        varint(UInt64(value.count))
        bytes.append(contentsOf: value)
    }
}

/// Reads what `ByteWriter` wrote; throws on truncated or malformed data instead of trapping.
struct ByteReader {
    let bytes: UnsafeRawBufferPointer
    var offset = 0

    struct Malformed: Error {}

    init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    mutating func varint() throws -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard offset < bytes.count, shift < 64 else { throw Malformed() }
            let b = bytes[offset]
            offset += 1
            result |= UInt64(b & 0x7F) << shift
            if b < 0x80 { return result }
            shift += 7
        }
    }
    mutating func int() throws -> Int { Int(Int64(bitPattern: try varint())) }
    mutating func signed() throws -> Int64 {
        let v = try varint()
        return Int64(bitPattern: v >> 1) ^ -Int64(bitPattern: v & 1)
    }
    mutating func raw() throws -> [UInt8] {
        let count = Int(try varint())
        guard count >= 0, offset + count <= bytes.count else { throw Malformed() }
        defer { offset += count }
        return Array(bytes[offset..<offset + count])
    }
    mutating func string() throws -> String {
        let count = Int(try varint())
        guard count >= 0, offset + count <= bytes.count else { throw Malformed() }
        defer { offset += count }
        return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + count]), as: UTF8.self)
    }
}

extension FileRecord {
    func encoded() -> [UInt8] {
        var w = ByteWriter()
        w.varint(1)  // record version
        w.string(path)
        w.varint(size)
        w.signed(mtimeNanos)
        w.raw(contentHash.bytes)
        w.varint(title == nil ? 0 : 1)
        if let title { w.string(title) }
        w.int(tags.count)
        for tag in tags { w.string(tag) }
        w.int(chunkIDs.count)
        for id in chunkIDs { w.varint(UInt64(id)) }
        return w.bytes
    }

    static func decode(_ bytes: UnsafeRawBufferPointer) throws -> FileRecord {
        var r = ByteReader(bytes)
        guard try r.varint() == 1 else { throw ByteReader.Malformed() }
        let path = try r.string()
        let size = try r.varint()
        let mtime = try r.signed()
        let hash = ContentHash(bytes: try r.raw())
        let title = try r.varint() == 1 ? try r.string() : nil
        let tagCount = try r.int()
        guard tagCount >= 0 && tagCount < 1 << 20 else { throw ByteReader.Malformed() }
        var tags: [String] = []
        for _ in 0..<tagCount { tags.append(try r.string()) }
        let chunkCount = try r.int()
        guard chunkCount >= 0 && chunkCount < 1 << 26 else { throw ByteReader.Malformed() }
        var ids: [UInt32] = []
        ids.reserveCapacity(chunkCount)
        for _ in 0..<chunkCount { ids.append(UInt32(truncatingIfNeeded: try r.varint())) }
        return FileRecord(path: path, size: size, mtimeNanos: mtime, contentHash: hash, title: title, tags: tags, chunkIDs: ids)
    }
}

extension ChunkRecord {
    func encoded() -> [UInt8] {
        var w = ByteWriter()
        w.varint(1)
        w.varint(UInt64(fileID))
        w.int(lines.lowerBound)
        w.int(lines.upperBound)
        w.int(headings.count)
        for h in headings { w.string(h) }
        w.raw(contentHash.bytes)
        w.varint(UInt64(length))
        w.string(text)
        return w.bytes
    }

    static func decode(_ bytes: UnsafeRawBufferPointer) throws -> ChunkRecord {
        var r = ByteReader(bytes)
        guard try r.varint() == 1 else { throw ByteReader.Malformed() }
        let fileID = UInt32(truncatingIfNeeded: try r.varint())
        let first = try r.int()
        let last = try r.int()
        guard first <= last else { throw ByteReader.Malformed() }
        let headingCount = try r.int()
        guard headingCount >= 0 && headingCount < 1 << 16 else { throw ByteReader.Malformed() }
        var headings: [String] = []
        for _ in 0..<headingCount { headings.append(try r.string()) }
        let hash = ContentHash(bytes: try r.raw())
        let length = UInt32(truncatingIfNeeded: try r.varint())
        let text = try r.string()
        return ChunkRecord(fileID: fileID, lines: first...last, headings: headings, contentHash: hash, length: length, text: text)
    }
}
