import Foundation
import RagCore
@testable import RagQuery
import RagStore
import RagTestSupport
import Testing

/// MaxScore pruning must return exactly the exhaustive top-k (ids, scores, order), with and without filters.
struct MaxScoreTests {
    static let words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet", "kilo", "lima",
                        "mike", "november", "oscar", "papa", "quebec", "romeo", "sierra", "tango", "uniform", "victor", "whiskey",
                        "xray", "yankee", "zulu"]

    /// A word of letters only, unique to `n`.
    static func solo(_ n: Int) -> String {
        "zz" + String(UnicodeScalar(UInt8(97 + n / 26 % 26))) + String(UnicodeScalar(UInt8(97 + n % 26))) + "q"
    }

    /// A Zipf-like word: early words are far more common, so some terms are in most chunks and others in few.
    static func word(_ rng: inout SeededGenerator) -> String {
        let r = Double.random(in: 0..<1, using: &rng)
        return words[min(words.count - 1, Int(pow(r, 2.5) * Double(words.count)))]
    }

    static func corpus(_ rng: inout SeededGenerator, files: Int, analyzer: Analyzer, generation: Int = 0) -> [IndexChange] {
        (0..<files).map { f in
            let chunks = (0..<Int.random(in: 1...8, using: &rng)).map { c in
                var text = (0..<Int.random(in: 1...60, using: &rng)).map { _ in word(&rng) }.joined(separator: " ")
                // Terms of a single posting (LMDB stores those without a duplicates page).
                if Int.random(in: 0..<4, using: &rng) == 0 { text += " " + solo(f * 8 + c) }
                return PreparedChunk(text: text, lines: (c + 1)...(c + 1), headings: [], analyzer: analyzer)
            }
            let path = "/r\(f % 3)/f\(f).\(f % 2 == 0 ? "md" : "txt")"
            return .upsert(PreparedFile(path: path, size: 1, mtimeNanos: Int64(f), contentHash: SHA256.hash(Array("\(path) \(generation)".utf8)),
                                        title: nil, tags: [], chunks: chunks))
        }
    }

    static func compare(_ searcher: Searcher, _ rng: inout SeededGenerator, queries: Int) throws {
        let filters: [ChunkFilter] = [
            ChunkFilter(), ChunkFilter(extensions: ["md"]), ChunkFilter(pathPrefixes: ["/r1"]), ChunkFilter(modifiedAfterNanos: 40),
            ChunkFilter(access: AccessView(client: .daemon, hiddenRoots: ["/r0", "/r2"], permissionRoots: [])),
        ]
        for _ in 0..<queries {
            var query = (0..<Int.random(in: 1...7, using: &rng)).map { _ in word(&rng) }.joined(separator: " ")
            if Bool.random(using: &rng) { query += " " + MaxScoreTests.solo(Int.random(in: 0..<640, using: &rng)) }
            let k = [1, 2, 5, 10, 50].randomElement(using: &rng)!
            let filter = filters.randomElement(using: &rng)!
            let pruned = try searcher.bm25Ranking(query, k: k, filter: filter, pruned: true)
            let exhaustive = try searcher.bm25Ranking(query, k: k, filter: filter, pruned: false)
            #expect(pruned.map(\.0) == exhaustive.map(\.0), "\(query) k=\(k) \(filter)")
            #expect(pruned.map(\.1) == exhaustive.map(\.1), "\(query) k=\(k) \(filter)")
        }
    }

    @Test(arguments: [1, 2, 3])
    func prunedEqualsExhaustive(seed: UInt64) throws {
        try withTemporaryDirectory { dir in
            var rng = SeededGenerator(seed: seed)
            let analyzer = Analyzer()
            let store = try Store(directory: dir + "/index", configuration: .init(mapSize: 64 << 20))
            try store.apply(MaxScoreTests.corpus(&rng, files: 80, analyzer: analyzer))
            let searcher = Searcher(store: store)
            try MaxScoreTests.compare(searcher, &rng, queries: 150)
            // Rewrites and deletions leave some bounds too high (still valid).
            var changes = MaxScoreTests.corpus(&rng, files: 40, analyzer: analyzer, generation: 1)
            changes += (40..<60).map { f in IndexChange.delete(path: "/r\(f % 3)/f\(f).\(f % 2 == 0 ? "md" : "txt")") }
            try store.apply(changes)
            try MaxScoreTests.compare(searcher, &rng, queries: 150)
        }
    }

    /// Thousands of chunks: posting lists of several pages, touched sets large enough for the threshold estimate
    /// before phase 2, and both ways phase 2 reads a term (seeking candidates, reading the list).
    @Test func prunedEqualsExhaustiveAtScale() throws {
        try withTemporaryDirectory { dir in
            var rng = SeededGenerator(seed: 21)
            let analyzer = Analyzer()
            let store = try Store(directory: dir + "/index", configuration: .init(mapSize: 256 << 20))
            try store.apply(MaxScoreTests.corpus(&rng, files: 700, analyzer: analyzer))
            #expect(try store.withSnapshot { try $0.documentFrequency("alpha") } > 2_000)
            try MaxScoreTests.compare(Searcher(store: store), &rng, queries: 120)
        }
    }

    /// A filter's per-file verdicts are kept between queries, and not past a change to the files.
    @Test func keptFilterVerdictsFollowChanges() throws {
        try withTemporaryDirectory { dir in
            let analyzer = Analyzer()
            let store = try Store(directory: dir + "/index", configuration: .init(mapSize: 64 << 20))
            func file(_ name: String, mtime: Int64, text: String) -> IndexChange {
                .upsert(PreparedFile(path: "/d/\(name).md", size: 1, mtimeNanos: mtime, contentHash: SHA256.hash(Array("\(name) \(text)".utf8)),
                                     title: nil, tags: [], chunks: [PreparedChunk(text: text, lines: 1...1, headings: [], analyzer: analyzer)]))
            }
            try store.apply([file("old", mtime: 10, text: "lantern harbour"), file("new", mtime: 100, text: "lantern quay")])
            let searcher = Searcher(store: store)
            let recent = ChunkFilter(modifiedAfterNanos: 50)
            func paths() throws -> [String] { try searcher.searchBM25("lantern", k: 10, filter: recent).map(\.path).sorted() }
            #expect(try paths() == ["/d/new.md"])
            #expect(try paths() == ["/d/new.md"])  // from the kept verdicts
            try store.apply([file("old", mtime: 200, text: "lantern harbour again")])  // same file id, now recent
            #expect(try paths() == ["/d/new.md", "/d/old.md"])
            try store.apply([file("new", mtime: 20, text: "lantern quay")])  // and this one no longer
            #expect(try paths() == ["/d/old.md"])
        }
    }

    @Test func schemaTwoIndexGetsItsBounds() throws {
        try withTemporaryDirectory { dir in
            var rng = SeededGenerator(seed: 9)
            let analyzer = Analyzer()
            do {
                let store = try Store(directory: dir + "/index", configuration: .init(mapSize: 64 << 20))
                try store.apply(MaxScoreTests.corpus(&rng, files: 60, analyzer: analyzer))
            }
            try Store.overwriteMetaForTesting(directory: dir + "/index", key: "schema", value: 2)
            try Store.dropTableForTesting(directory: dir + "/index", table: "term_bounds")
            let store = try Store(directory: dir + "/index", configuration: .init(mapSize: 64 << 20))
            let bound = try store.withSnapshot { try $0.termBound("alpha") }
            #expect(bound != nil)
            try MaxScoreTests.compare(Searcher(store: store), &rng, queries: 100)
        }
    }

    /// Two indexes of the same files, one with a history of rewrites and deletions (so other term bounds and chunk
    /// ids), score every chunk alike to the last bit, and a query's word order changes nothing.
    @Test func scoresDoNotDependOnHistory() throws {
        try withTemporaryDirectory { dir in
            let analyzer = Analyzer()
            var rng = SeededGenerator(seed: 5)
            let final = MaxScoreTests.corpus(&rng, files: 60, analyzer: analyzer)
            // An earlier state of the same paths: long chunks with high frequencies raise the stored bounds.
            let earlier = MaxScoreTests.corpus(&rng, files: 90, analyzer: analyzer, generation: 1).map { change -> IndexChange in
                guard case .upsert(let file) = change else { return change }
                let chunks = file.chunks.map { PreparedChunk(text: String(repeating: $0.text + " ", count: 4), lines: $0.lines, headings: [],
                                                             analyzer: analyzer) }
                return .upsert(PreparedFile(path: file.path, size: 1, mtimeNanos: 0, contentHash: file.contentHash, title: nil, tags: [],
                                            chunks: chunks))
            }
            let fresh = try Store(directory: dir + "/fresh", configuration: .init(mapSize: 64 << 20))
            try fresh.apply(final)
            let churned = try Store(directory: dir + "/churned", configuration: .init(mapSize: 64 << 20))
            try churned.apply(earlier)
            try churned.apply(final + (60..<90).map { f in IndexChange.delete(path: "/r\(f % 3)/f\(f).\(f % 2 == 0 ? "md" : "txt")") })
            func scores(_ store: Store, _ query: String) throws -> [String: Double] {
                let hits = try Searcher(store: store).searchBM25(query, k: 10_000, includeText: false)
                return Dictionary(uniqueKeysWithValues: hits.map { ("\($0.path):\($0.lines)", $0.score) })
            }
            for _ in 0..<60 {
                let words = (0..<Int.random(in: 2...7, using: &rng)).map { _ in MaxScoreTests.word(&rng) }
                let query = words.joined(separator: " ")
                let expected = try scores(fresh, query)
                #expect(!expected.isEmpty)
                #expect(try scores(churned, query) == expected, "\(query)")
                #expect(try scores(fresh, words.reversed().joined(separator: " ")) == expected, "\(query) reversed")
            }
        }
    }

    @Test func boundFrontier() {
        var bound = TermBound()
        bound.add(tf: 1, length: 50)
        bound.add(tf: 1, length: 10)  // dominates (1, 50)
        bound.add(tf: 3, length: 80)
        bound.add(tf: 2, length: 90)  // dominated by (3, 80)
        #expect(bound.points.map(\.tf) == [1, 3])
        #expect(bound.points.map(\.length) == [10, 80])
        for tf in 1...40 { bound.add(tf: UInt16(tf), length: UInt32(1000 - tf)) }
        #expect(bound.points.count <= 8)
        // The bound still covers every posting added.
        let m = bound.maximum(constant: 0.54, lengthFactor: 0.01)
        for (tf, length) in [(1, 10), (3, 80)] + (1...40).map({ ($0, 1000 - $0) }) {
            #expect(Float(tf) / (Float(tf) + 0.54 + 0.01 * Float(length)) <= m)
        }
    }
}
