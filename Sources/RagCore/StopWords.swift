/// Stop words dropped by ``Analyzer``.
public enum StopWords {
    /// English stop words: the Snowball English list (snowballstem.org) without the words that
    /// carry meaning in technical text — negations and order/position words such as `not`, `no`,
    /// `before`, `after`, `up`, `down`, `out`, `off`, `over`, `under`, `all`, `any`, `only`, `more`.
    /// Lower case, with ASCII apostrophes (the analyzer folds `’` to `'`).
    public static let english: Set<String> = Set(englishList)

    static let englishList: [String] = [
        "i", "me", "my", "myself", "we", "our", "ours", "ourselves", "you", "your", "yours",
        "yourself", "yourselves", "he", "him", "his", "himself", "she", "her", "hers", "herself",
        "it", "its", "itself", "they", "them", "their", "theirs", "themselves", "what", "which",
        "who", "whom", "this", "that", "these", "those", "am", "is", "are", "was", "were", "be",
        "been", "being", "have", "has", "had", "having", "do", "does", "did", "doing", "would",
        "should", "could", "ought", "i'm", "you're", "he's", "she's", "it's", "we're", "they're",
        "i've", "you've", "we've", "they've", "i'd", "you'd", "he'd", "she'd", "we'd", "they'd",
        "i'll", "you'll", "he'll", "she'll", "we'll", "they'll", "isn't", "aren't", "wasn't",
        "weren't", "hasn't", "haven't", "hadn't", "doesn't", "don't", "didn't", "won't",
        "wouldn't", "shan't", "shouldn't", "can't", "cannot", "couldn't", "mustn't", "let's",
        "that's", "who's", "what's", "here's", "there's", "when's", "where's", "why's", "how's",
        "a", "an", "the", "and", "but", "if", "or", "because", "as", "while", "of", "at", "by",
        "for", "with", "about", "into", "to", "from", "in", "on", "then", "here", "there", "when",
        "where", "why", "how", "nor", "own", "so", "than", "too", "very", "such", "some", "each",
    ]

    /// Membership test on lower-case UTF-8 bytes without building a `String`.
    @inline(__always)
    static func contains(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        let n = bytes.count
        guard n >= 1, n <= ByteTable.maxLength else { return false }
        let (lo, hi) = ByteTable.pack(bytes)
        return table.contains(length: n, first: bytes[0], lo: lo, hi: hi)
    }

    private static let table = ByteTable(englishList)

    /// Stop words bucketed by (length, first byte), each packed into two integers.
    struct ByteTable: Sendable {
        static let maxLength = 16
        private var buckets: [[PackedWord]]

        struct PackedWord: Sendable {
            var lo: UInt64
            var hi: UInt64
        }

        init(_ words: [String]) {
            buckets = Array(repeating: [], count: (ByteTable.maxLength + 1) * 32)
            for w in words {
                let bytes = Array(w.utf8)
                precondition(bytes.count <= ByteTable.maxLength)
                bytes.withUnsafeBufferPointer { p in
                    let (lo, hi) = ByteTable.pack(p)
                    buckets[ByteTable.bucket(bytes.count, bytes[0])].append(PackedWord(lo: lo, hi: hi))
                }
            }
        }

        @inline(__always) static func bucket(_ length: Int, _ first: UInt8) -> Int {
            length &* 32 &+ Int(first & 31)
        }

        @inline(__always) static func pack(_ p: UnsafeBufferPointer<UInt8>) -> (UInt64, UInt64) {
            var lo: UInt64 = 0
            var hi: UInt64 = 0
            for i in 0..<p.count {
                if i < 8 {
                    lo |= UInt64(p[i]) << (UInt64(i) &* 8)
                } else {
                    hi |= UInt64(p[i]) << (UInt64(i &- 8) &* 8)
                }
            }
            return (lo, hi)
        }

        @inline(__always) func contains(length: Int, first: UInt8, lo: UInt64, hi: UInt64) -> Bool {
            for w in buckets[ByteTable.bucket(length, first)] where w.lo == lo && w.hi == hi { return true }
            return false
        }
    }
}
