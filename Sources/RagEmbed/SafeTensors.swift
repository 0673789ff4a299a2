import Glibc

/// A read-only view of a `.safetensors` file: an 8-byte little-endian header length, a JSON header
/// naming each tensor's dtype, shape and byte range, then the tensors' bytes (little-endian, packed).
///
/// The file is memory-mapped. Every header field is validated on open (offsets inside the file, sizes
/// matching shapes, ranges contiguous as the format requires), so a truncated or malformed file is an
/// ``EmbedError`` with code `malformedFile`, never a trap.
public final class SafeTensors: @unchecked Sendable {
    // @unchecked: the mapping is read-only and never changes after init.

    /// Element types of the format.
    public enum DType: String, Sendable, CaseIterable {
        case f64 = "F64", f32 = "F32", f16 = "F16", bf16 = "BF16"
        case i64 = "I64", i32 = "I32", i16 = "I16", i8 = "I8"
        case u64 = "U64", u32 = "U32", u16 = "U16", u8 = "U8", bool = "BOOL"
        case f8e4m3 = "F8_E4M3", f8e5m2 = "F8_E5M2"

        /// Bytes per element.
        public var size: Int {
            switch self {
            case .f64, .i64, .u64: 8
            case .f32, .i32, .u32: 4
            case .f16, .bf16, .i16, .u16: 2
            case .i8, .u8, .bool, .f8e4m3, .f8e5m2: 1
            }
        }
    }

    /// One tensor's entry in the header.
    public struct Tensor: Sendable, Equatable {
        public var name: String
        public var dtype: DType
        public var shape: [Int]
        /// Byte range relative to the start of the data section.
        public var range: Range<Int>
        /// Number of elements (the product of the shape; 1 for a scalar).
        public var count: Int { shape.reduce(1, *) }
    }

    /// The largest header accepted (the format's own limit is 100 MB).
    public static let maximumHeaderBytes = 100_000_000

    /// Where the tensors came from, for error messages.
    public let path: String
    /// Tensors by name.
    public let tensors: [String: Tensor]
    /// The optional `__metadata__` string map.
    public let metadata: [String: String]
    /// Length of the JSON header in bytes.
    public let headerLength: Int

    private let base: UnsafeRawPointer
    private let byteCount: Int
    /// True when `base` is a mapping to unmap, false when it is an allocation to free.
    private let mapped: Bool

    /// Maps and validates the file at `path`.
    public init(contentsOf path: String) throws {
        self.path = path
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            let err = errno
            throw EmbedError(err == ENOENT ? .missingFile : .io, path: path,
                             "cannot open: \(String(cString: strerror(err)))")
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            throw EmbedError(.io, path: path, "cannot stat: \(String(cString: strerror(errno)))")
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            throw EmbedError(.malformedFile, path: path, "not a regular file")
        }
        let size = Int(info.st_size)
        guard size >= 8 else {
            throw EmbedError(.malformedFile, path: path, "file is \(size) bytes, shorter than the 8-byte header length")
        }
        guard let mapped = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), mapped != MAP_FAILED else {
            throw EmbedError(.io, path: path, "cannot map: \(String(cString: strerror(errno)))")
        }
        self.base = UnsafeRawPointer(mapped)
        self.byteCount = size
        self.mapped = true
        do {
            (tensors, metadata, headerLength) = try Self.parse(UnsafeRawBufferPointer(start: base, count: size), path: path)
        } catch {
            munmap(mapped, size)
            throw error
        }
    }

    /// Validates `bytes` as a safetensors file held in memory (`name` appears in error messages).
    public init(bytes: [UInt8], name: String = "<memory>") throws {
        self.path = name
        let copy = UnsafeMutableRawPointer.allocate(byteCount: max(bytes.count, 1), alignment: 16)
        bytes.withUnsafeBytes { copy.copyMemory(from: $0.baseAddress ?? UnsafeRawPointer(copy), byteCount: bytes.count) }
        self.base = UnsafeRawPointer(copy)
        self.byteCount = bytes.count
        self.mapped = false
        do {
            (tensors, metadata, headerLength) = try Self.parse(UnsafeRawBufferPointer(start: base, count: bytes.count), path: name)
        } catch {
            copy.deallocate()
            throw error
        }
    }

    deinit {
        if mapped {
            munmap(UnsafeMutableRawPointer(mutating: base), byteCount)
        } else {
            UnsafeMutableRawPointer(mutating: base).deallocate()
        }
    }

    private var dataStart: Int { 8 + headerLength }

    /// Size of the whole file in bytes.
    public var fileSize: Int { byteCount }

    /// The whole file's bytes (header included), valid while `self` lives.
    public func withFileBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try withExtendedLifetime(self) { try body(UnsafeRawBufferPointer(start: base, count: byteCount)) }
    }

    /// The raw little-endian bytes of `tensor`, valid while `self` lives.
    public func withBytes<R>(of tensor: Tensor, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try withExtendedLifetime(self) {
            try body(UnsafeRawBufferPointer(start: base + dataStart + tensor.range.lowerBound, count: tensor.range.count))
        }
    }

    /// The tensor `name` converted to `Float` (from F32, F16, BF16 or F64), checking its shape when
    /// `shape` is given.
    public func floats(_ name: String, shape expected: [Int]? = nil) throws -> [Float] {
        guard let tensor = tensors[name] else {
            throw EmbedError(.malformedFile, path: path, "no tensor named \(name)")
        }
        if let expected, expected != tensor.shape {
            throw EmbedError(.malformedFile, path: path, "tensor \(name) has shape \(tensor.shape), expected \(expected)")
        }
        let count = tensor.count
        return try withBytes(of: tensor) { raw in
            switch tensor.dtype {
            case .f32:
                return [Float](unsafeUninitializedCapacity: count) { out, initialized in
                    #if _endian(little)
                    if count > 0 { memcpy(out.baseAddress!, raw.baseAddress!, count * 4) }
                    #else
                    for i in 0..<count {
                        out[i] = Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self)))
                    }
                    #endif
                    initialized = count
                }
            case .f16:
                return (0..<count).map { i in
                    Float(Self.halfToFloat(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self))))
                }
            case .bf16:
                return (0..<count).map { i in
                    Float(bitPattern: UInt32(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self))) << 16)
                }
            case .f64:
                return (0..<count).map { i in
                    Float(Double(bitPattern: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self))))
                }
            default:
                throw EmbedError(.unsupportedModel, path: path,
                                 "tensor \(name) has dtype \(tensor.dtype.rawValue); only F32, F16, BF16 and F64 convert to floats")
            }
        }
    }

    /// IEEE 754 binary16 to binary32, exactly (normal, subnormal, infinite and NaN values).
    static func halfToFloat(_ h: UInt16) -> Float {
        let sign = UInt32(h & 0x8000) << 16
        let exponent = Int((h >> 10) & 0x1F)
        let mantissa = UInt32(h & 0x3FF)
        if exponent == 0x1F {
            return Float(bitPattern: sign | 0x7F80_0000 | (mantissa << 13))
        }
        if exponent == 0 {
            // Zero or subnormal: mantissa · 2^-24.
            let magnitude = Float(mantissa) * 0x1p-24
            return sign == 0 ? magnitude : -magnitude
        }
        return Float(bitPattern: sign | UInt32(exponent - 15 + 127) << 23 | (mantissa << 13))
    }

    // MARK: Header

    private static func parse(_ file: UnsafeRawBufferPointer, path: String) throws
        -> (tensors: [String: Tensor], metadata: [String: String], headerLength: Int)
    {
        func malformed(_ message: String) -> EmbedError { EmbedError(.malformedFile, path: path, message) }
        guard file.count >= 8 else { throw malformed("file is \(file.count) bytes, shorter than the 8-byte header length") }
        let declared = UInt64(littleEndian: file.loadUnaligned(as: UInt64.self))
        guard declared <= UInt64(maximumHeaderBytes) else {
            throw malformed("header length \(declared) exceeds the \(maximumHeaderBytes)-byte limit")
        }
        let headerLength = Int(declared)
        guard headerLength >= 2 else { throw malformed("header length \(headerLength) is too small for a JSON object") }
        guard 8 + headerLength <= file.count else {
            throw malformed("header length \(headerLength) runs past the end of the \(file.count)-byte file (truncated?)")
        }
        let headerBytes = UnsafeRawBufferPointer(rebasing: file[8..<(8 + headerLength)])
        guard headerBytes.first == UInt8(ascii: "{") else { throw malformed("header does not start with '{'") }
        let json: ModelJSON
        do {
            json = try ModelJSON.parse(headerBytes)
        } catch {
            throw malformed("header is not valid JSON: \(error)")
        }
        guard case .object(let object) = json else { throw malformed("header is not a JSON object") }

        let dataSize = file.count - 8 - headerLength
        var tensors: [String: Tensor] = [:]
        var metadata: [String: String] = [:]
        for (name, value) in object {
            if name == "__metadata__" {
                guard let map = value.object else { throw malformed("__metadata__ is not an object") }
                for (key, item) in map {
                    guard let text = item.string else { throw malformed("__metadata__.\(key) is not a string") }
                    metadata[key] = text
                }
                continue
            }
            guard value.object != nil else { throw malformed("tensor \(name): entry is not an object") }
            guard let dtypeName = value["dtype"]?.string else { throw malformed("tensor \(name): missing dtype") }
            guard let dtype = DType(rawValue: dtypeName) else { throw malformed("tensor \(name): unknown dtype \(dtypeName)") }
            guard let shapeValues = value["shape"]?.array else { throw malformed("tensor \(name): missing shape") }
            var shape: [Int] = []
            var count = 1
            for dimension in shapeValues {
                guard case .int(let d) = dimension, d >= 0 else {
                    throw malformed("tensor \(name): a shape dimension is not a non-negative integer")
                }
                let (product, overflow) = count.multipliedReportingOverflow(by: d)
                guard !overflow else { throw malformed("tensor \(name): shape \(shape + [d]) overflows") }
                shape.append(d)
                count = product
            }
            guard let offsets = value["data_offsets"]?.array, offsets.count == 2,
                  case .int(let begin) = offsets[0], case .int(let end) = offsets[1] else {
                throw malformed("tensor \(name): data_offsets is not a pair of integers")
            }
            guard 0 <= begin, begin <= end else { throw malformed("tensor \(name): data_offsets [\(begin), \(end)] are out of order") }
            guard end <= dataSize else {
                throw malformed("tensor \(name): data_offsets end \(end) is past the \(dataSize) data bytes (truncated file?)")
            }
            let (bytes, overflow) = count.multipliedReportingOverflow(by: dtype.size)
            guard !overflow, bytes == end - begin else {
                throw malformed("tensor \(name): \(end - begin) bytes for shape \(shape) of \(dtype.rawValue)")
            }
            tensors[name] = Tensor(name: name, dtype: dtype, shape: shape, range: begin..<end)
        }
        // The format requires the ranges to tile the data section: no overlap, no hole.
        var next = 0
        for tensor in tensors.values.sorted(by: { ($0.range.lowerBound, $0.range.upperBound) < ($1.range.lowerBound, $1.range.upperBound) }) {
            guard tensor.range.lowerBound == next else {
                throw malformed(tensor.range.lowerBound < next
                    ? "tensor \(tensor.name) overlaps the previous tensor"
                    : "gap before tensor \(tensor.name) at data offset \(next)")
            }
            next = tensor.range.upperBound
        }
        guard next == dataSize else {
            throw malformed("tensors cover \(next) of \(dataSize) data bytes")
        }
        return (tensors, metadata, headerLength)
    }
}
