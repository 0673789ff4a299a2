import RagCore
import RagStore
import RagTestSupport
import Testing

/// `PostingCursor.seek` lands on the first posting at or after its target, whether it steps page by page or
/// descends to a far page, over lists of many pages.
struct PostingCursorTests {
    @Test func seekMatchesTheList() throws {
        try withTemporaryDirectory { dir in
            let analyzer = Analyzer()
            let store = try Store(directory: dir + "/index", configuration: .init(mapSize: 256 << 20))
            // 30,000 chunks: "common" in four of five (about 35 pages of postings), "rare" in one in 97.
            var changes: [IndexChange] = []
            for f in 0..<300 {
                let chunks = (0..<100).map { c -> PreparedChunk in
                    let n = f * 100 + c
                    var words = ["filler\(n % 7)"]
                    if n % 5 != 0 { words += Array(repeating: "common", count: 1 + n % 3) }
                    if n % 97 == 0 { words.append("rare") }
                    return PreparedChunk(text: words.joined(separator: " "), lines: (c + 1)...(c + 1), headings: [], analyzer: analyzer)
                }
                changes.append(.upsert(PreparedFile(path: "/d/f\(f).md", size: 1, mtimeNanos: 0, contentHash: SHA256.hash(Array("f\(f)".utf8)),
                                                    title: nil, tags: [], chunks: chunks)))
            }
            try store.apply(changes)
            var rng = SeededGenerator(seed: 11)
            try store.withSnapshot { snapshot in
                for term in ["common", "rare"] {
                    var list: [(UInt32, UInt16)] = []
                    _ = try snapshot.postings(term) { page in
                        for o in stride(from: 0, to: page.count, by: Store.postingSize) { list.append(Store.posting(page, at: o)) }
                    }
                    #expect(list.count == (term == "common" ? 24_000 : 310))
                    let top = list.last!.0
                    // Short and long strides, so that both ways of moving are taken; past the end as well.
                    for maxStride in [3, 400, 9_000] {
                        let cursor = try snapshot.postingCursor(term)
                        defer { cursor.close() }
                        var target: UInt32 = 0
                        while true {
                            target += UInt32.random(in: 1...UInt32(maxStride), using: &rng)
                            try cursor.seek(target)
                            let expected = list.first { $0.0 >= target }
                            #expect(cursor.chunkID == expected?.0 ?? .max, "\(term) target \(target)")
                            if let expected { #expect(cursor.tf == expected.1) }
                            if target > top { break }
                        }
                    }
                }
            }
        }
    }
}
