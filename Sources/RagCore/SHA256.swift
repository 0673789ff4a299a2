/// SHA-256 as specified in FIPS 180-4, section 6.2.
///
/// Incremental: feed bytes with ``update(_:)`` as often as needed, then call ``finalize()`` once.
/// Contiguous collections (`[UInt8]`, `ArraySlice`, `UnsafeBufferPointer`, `String.UTF8View` of a
/// native string, …) are hashed straight from their storage without copying.
public struct SHA256: Sendable {
    /// The eight working hash words H0…H7.
    private struct State {
        var h0: UInt32 = 0x6a09_e667
        var h1: UInt32 = 0xbb67_ae85
        var h2: UInt32 = 0x3c6e_f372
        var h3: UInt32 = 0xa54f_f53a
        var h4: UInt32 = 0x510e_527f
        var h5: UInt32 = 0x9b05_688c
        var h6: UInt32 = 0x1f83_d9ab
        var h7: UInt32 = 0x5be0_cd19
    }

    private var state = State()
    /// Bytes of an incomplete block (fewer than 64).
    private var pending: [UInt8] = []
    /// Total message length in bytes.
    private var length: UInt64 = 0

    /// A fresh hasher.
    public init() {
        pending.reserveCapacity(64)
    }

    /// Adds `bytes` to the message.
    public mutating func update<C: Collection>(_ bytes: C) where C.Element == UInt8 {
        let done: Void? = bytes.withContiguousStorageIfAvailable { buffer in
            self.update(raw: UnsafeRawBufferPointer(buffer))
        }
        if done != nil { return }
        // Slow path for non-contiguous collections: copy through a bounded staging buffer.
        var staging: [UInt8] = []
        staging.reserveCapacity(4096)
        for byte in bytes {
            staging.append(byte)
            if staging.count == 4096 {
                staging.withUnsafeBytes { update(raw: $0) }
                staging.removeAll(keepingCapacity: true)
            }
        }
        if !staging.isEmpty {
            staging.withUnsafeBytes { update(raw: $0) }
        }
    }

    /// Adds the bytes in `raw` to the message.
    public mutating func update(raw: UnsafeRawBufferPointer) {
        guard var base = raw.baseAddress, raw.count > 0 else { return }
        var remaining = raw.count
        length &+= UInt64(remaining)
        if !pending.isEmpty {
            let take = min(64 - pending.count, remaining)
            pending.append(contentsOf: UnsafeRawBufferPointer(start: base, count: take))
            base += take
            remaining -= take
            if pending.count < 64 { return }
            pending.withUnsafeBytes { SHA256.compress(&state, blocks: $0.baseAddress!, count: 1) }
            pending.removeAll(keepingCapacity: true)
        }
        let whole = remaining / 64
        if whole > 0 {
            SHA256.compress(&state, blocks: base, count: whole)
            base += whole * 64
            remaining -= whole * 64
        }
        if remaining > 0 {
            pending.append(contentsOf: UnsafeRawBufferPointer(start: base, count: remaining))
        }
    }

    /// Pads the message and returns its digest. The hasher must not be used afterwards
    /// except through a fresh ``init()``.
    public mutating func finalize() -> ContentHash {
        let bitLength = length &* 8
        var tail = pending
        tail.append(0x80)
        while tail.count % 64 != 56 { tail.append(0) }
        for shift in stride(from: 56, through: 0, by: -8) {
            tail.append(UInt8(truncatingIfNeeded: bitLength >> UInt64(shift)))
        }
        tail.withUnsafeBytes { SHA256.compress(&state, blocks: $0.baseAddress!, count: $0.count / 64) }
        pending.removeAll(keepingCapacity: false)
        var out: [UInt8] = []
        out.reserveCapacity(32)
        for word in [state.h0, state.h1, state.h2, state.h3, state.h4, state.h5, state.h6, state.h7] {
            out.append(UInt8(truncatingIfNeeded: word >> 24))
            out.append(UInt8(truncatingIfNeeded: word >> 16))
            out.append(UInt8(truncatingIfNeeded: word >> 8))
            out.append(UInt8(truncatingIfNeeded: word))
        }
        return ContentHash(bytes: out)
    }

    /// One-shot digest of `bytes`.
    public static func hash<C: Collection>(_ bytes: C) -> ContentHash where C.Element == UInt8 {
        var hasher = SHA256()
        hasher.update(bytes)
        return hasher.finalize()
    }

    /// Runs the compression function over `count` consecutive 64-byte blocks at `blocks`.
    private static func compress(_ state: inout State, blocks: UnsafeRawPointer, count: Int) {
        var s0 = state.h0, s1 = state.h1, s2 = state.h2, s3 = state.h3
        var s4 = state.h4, s5 = state.h5, s6 = state.h6, s7 = state.h7
        withUnsafeTemporaryAllocation(of: UInt32.self, capacity: 64) { w in
            SHA256.roundConstants.withUnsafeBufferPointer { k in
                var block = blocks
                for _ in 0..<count {
                    for t in 0..<16 {
                        w[t] = UInt32(bigEndian: block.loadUnaligned(fromByteOffset: t &* 4, as: UInt32.self))
                    }
                    for t in 16..<64 {
                        let x = w[t &- 15], y = w[t &- 2]
                        let sigma0 = x.rotr(7) ^ x.rotr(18) ^ (x >> 3)
                        let sigma1 = y.rotr(17) ^ y.rotr(19) ^ (y >> 10)
                        w[t] = sigma1 &+ w[t &- 7] &+ sigma0 &+ w[t &- 16]
                    }
                    var a = s0, b = s1, c = s2, d = s3, e = s4, f = s5, g = s6, h = s7
                    for t in 0..<64 {
                        let bigSigma1 = e.rotr(6) ^ e.rotr(11) ^ e.rotr(25)
                        let choose = (e & f) ^ (~e & g)
                        let t1 = h &+ bigSigma1 &+ choose &+ k[t] &+ w[t]
                        let bigSigma0 = a.rotr(2) ^ a.rotr(13) ^ a.rotr(22)
                        let majority = (a & b) ^ (a & c) ^ (b & c)
                        let t2 = bigSigma0 &+ majority
                        h = g; g = f; f = e
                        e = d &+ t1
                        d = c; c = b; b = a
                        a = t1 &+ t2
                    }
                    s0 &+= a; s1 &+= b; s2 &+= c; s3 &+= d
                    s4 &+= e; s5 &+= f; s6 &+= g; s7 &+= h
                    block += 64
                }
            }
        }
        state = State(h0: s0, h1: s1, h2: s2, h3: s3, h4: s4, h5: s5, h6: s6, h7: s7)
    }

    /// The 64 round constants K (FIPS 180-4, 4.2.2).
    private static let roundConstants: [UInt32] = [
        0x428a_2f98, 0x7137_4491, 0xb5c0_fbcf, 0xe9b5_dba5, 0x3956_c25b, 0x59f1_11f1, 0x923f_82a4, 0xab1c_5ed5,
        0xd807_aa98, 0x1283_5b01, 0x2431_85be, 0x550c_7dc3, 0x72be_5d74, 0x80de_b1fe, 0x9bdc_06a7, 0xc19b_f174,
        0xe49b_69c1, 0xefbe_4786, 0x0fc1_9dc6, 0x240c_a1cc, 0x2de9_2c6f, 0x4a74_84aa, 0x5cb0_a9dc, 0x76f9_88da,
        0x983e_5152, 0xa831_c66d, 0xb003_27c8, 0xbf59_7fc7, 0xc6e0_0bf3, 0xd5a7_9147, 0x06ca_6351, 0x1429_2967,
        0x27b7_0a85, 0x2e1b_2138, 0x4d2c_6dfc, 0x5338_0d13, 0x650a_7354, 0x766a_0abb, 0x81c2_c92e, 0x9272_2c85,
        0xa2bf_e8a1, 0xa81a_664b, 0xc24b_8b70, 0xc76c_51a3, 0xd192_e819, 0xd699_0624, 0xf40e_3585, 0x106a_a070,
        0x19a4_c116, 0x1e37_6c08, 0x2748_774c, 0x34b0_bcb5, 0x391c_0cb3, 0x4ed8_aa4a, 0x5b9c_ca4f, 0x682e_6ff3,
        0x748f_82ee, 0x78a5_636f, 0x84c8_7814, 0x8cc7_0208, 0x90be_fffa, 0xa450_6ceb, 0xbef9_a3f7, 0xc671_78f2,
    ]
}

extension UInt32 {
    /// Rotate right by `n` (0 < n < 32).
    @inline(__always)
    fileprivate func rotr(_ n: UInt32) -> UInt32 {
        (self >> n) | (self << (32 &- n))
    }
}

/// A 32-byte SHA-256 digest identifying file or chunk content.
public struct ContentHash: Hashable, Sendable, CustomStringConvertible {
    /// The 32 digest bytes.
    public var bytes: [UInt8]

    /// Wraps 32 digest bytes.
    public init(bytes: [UInt8]) {
        precondition(bytes.count == 32, "ContentHash needs exactly 32 bytes, got \(bytes.count)")
        self.bytes = bytes
    }

    /// Parses 64 hexadecimal digits (either case); `nil` for anything else.
    public init?(hex: String) {
        var out: [UInt8] = []
        out.reserveCapacity(32)
        var high: UInt8? = nil
        for char in hex.utf8 {
            let nibble: UInt8
            switch char {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): nibble = char &- UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): nibble = char &- UInt8(ascii: "a") &+ 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): nibble = char &- UInt8(ascii: "A") &+ 10
            default: return nil
            }
            if let h = high {
                guard out.count < 32 else { return nil }
                out.append(h << 4 | nibble)
                high = nil
            } else {
                high = nibble
            }
        }
        guard high == nil, out.count == 32 else { return nil }
        self.bytes = out
    }

    /// Lower-case hexadecimal, 64 characters.
    public var hex: String {
        let digits: [UInt8] = Array("0123456789abcdef".utf8)
        return String(unsafeUninitializedCapacity: bytes.count * 2) { buffer in
            var i = 0
            for byte in bytes {
                buffer[i] = digits[Int(byte >> 4)]
                buffer[i + 1] = digits[Int(byte & 0x0f)]
                i += 2
            }
            return i
        }
    }

    /// The first 8 bytes read as a big-endian integer (a compact key / bucket id).
    public var prefix64: UInt64 {
        var value: UInt64 = 0
        for byte in bytes.prefix(8) { value = value << 8 | UInt64(byte) }
        return value
    }

    /// Same as ``hex``.
    public var description: String { hex }
}
