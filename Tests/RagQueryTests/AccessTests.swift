import Foundation
import RagCore
import RagQuery
import RagStore
import RagTestSupport
import Testing

@Suite(.timeLimit(.minutes(2)))
struct AccessViewTests {
    let alice = Client(pid: 10, uid: 1000, gid: 1000, groups: [27])
    let bob = Client(pid: 11, uid: 1001, gid: 1001)

    @Test func allowListsAdmitUsersAndGroupMembers() {
        let policy = AccessPolicy(sources: [SourceAccess(root: "/open"), SourceAccess(root: "/alice", users: [1000]),
                                            SourceAccess(root: "/sudo", groups: [27]), SourceAccess(root: "/nobody", users: [])],
                                  trustedUIDs: [0])
        #expect(policy.view(for: alice).hiddenRoots == ["/nobody"])
        #expect(policy.view(for: bob).hiddenRoots == ["/alice", "/sudo", "/nobody"])
        #expect(policy.view(for: Client(pid: 1, uid: 1002, gid: 27)).hiddenRoots == ["/alice", "/nobody"], "the primary group counts")
        #expect(policy.view(for: Client(pid: 1, uid: 0, gid: 0)).hiddenRoots.isEmpty, "root is trusted")
        let view = policy.view(for: bob)
        #expect(!view.admits(path: "/alice/notes.md"))
        #expect(!view.admits(path: "/sudo"))
        #expect(view.admits(path: "/alicex/notes.md"), "a root matches whole path components")
        #expect(view.admits(path: "/open/a.md"))
        #expect(view.withheldFiles == 2)
        #expect(!view.showsSource("/alice") && view.showsSource("/open"))
    }

    @Test(arguments: [
        // mode, owner, group, client uid, expected read
        (0o600, 1000, 1000, 1000, true), (0o600, 1000, 1000, 1001, false), (0o640, 1000, 27, 1001, false),
        (0o640, 1001, 27, 1000, true), (0o604, 1001, 27, 1000, false), (0o604, 1001, 5, 1000, true),
        (0o066, 1000, 1000, 1000, false),
    ] as [(UInt32, UInt32, UInt32, UInt32, Bool)])
    func ownerGroupOtherClasses(mode: UInt32, owner: UInt32, group: UInt32, uid: UInt32, expected: Bool) {
        let client = uid == 1000 ? alice : bob
        #expect(AccessView.grants(mode: mode, owner: owner, group: group, client: client, bit: 4) == expected)
    }

    @Test func everyRetrieverSkipsHiddenFilesBeforeTheCut() throws {
        try withTemporaryDirectory { (dir: String) throws in
            let embedder = FakeEmbedder()
            let store = try Store(directory: dir + "/index", configuration: .init(mapSize: 64 << 20))
            try store.configureModel(id: embedder.modelID, dimensions: embedder.dimensions)
            let analyzer = Analyzer()
            func file(_ path: String, _ text: String) -> IndexChange {
                .upsert(PreparedFile(path: path, size: 1, mtimeNanos: 1, contentHash: SHA256.hash(Array(path.utf8)), title: nil, tags: [],
                                     chunks: [PreparedChunk(text: text, lines: 1...1, headings: [], analyzer: analyzer)]))
            }
            // The secret file is the best match for every retriever.
            try store.apply([file("/secret/a.md", "apple apple apple"), file("/open/b.md", "apple pie"), file("/open/c.md", "apple tart crumble")])
            let ids = store.chunksWithoutEmbedding(limit: 100)
            let inputs = try store.embeddingInputs(ids)
            try store.storeEmbeddings(zip(inputs, try embedder.embed(inputs.map(\.text))).map { (id: $0.id, hash: $0.hash, vector: $1) })
            let searcher = Searcher(store: store, embedder: embedder)
            let policy = AccessPolicy(sources: [SourceAccess(root: "/secret", users: [1000]), SourceAccess(root: "/open")], trustedUIDs: [0])
            let filter = { ChunkFilter(access: policy.view(for: bob)) }
            #expect(try searcher.searchBM25("apple", k: 1, filter: filter()).map(\.path) == ["/open/b.md"])
            #expect(try searcher.searchDense("apple apple apple", k: 1, filter: filter()).map(\.path).first?.hasPrefix("/open/") == true)
            #expect(try searcher.searchHybrid("apple", k: 2, filter: filter(), fusion: .weighted(denseWeight: 0.5)).map(\.path).allSatisfy { $0.hasPrefix("/open/") })
            #expect(try searcher.searchBM25("apple", k: 1, filter: ChunkFilter(access: policy.view(for: alice))).map(\.path) == ["/secret/a.md"])
        }
    }
}
