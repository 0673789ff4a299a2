import Foundation
import RagCore
import Testing

@Suite struct Porter2Tests {
    /// `word<TAB>stem` pairs from the reference Snowball implementation (see the fixture's header).
    static func vocabulary() throws -> [(String, String)] {
        let url = try #require(Bundle.module.url(forResource: "Fixtures/porter2-voc", withExtension: "txt"))
        let text = try String(contentsOf: url, encoding: .utf8)
        var pairs: [(String, String)] = []
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            let fields = line.split(separator: "\t")
            try #require(fields.count == 2, "bad fixture line: \(line)")
            pairs.append((String(fields[0]), String(fields[1])))
        }
        return pairs
    }

    @Test func matchesReferenceVocabulary() throws {
        let pairs = try Self.vocabulary()
        #expect(pairs.count > 4000)
        let mismatches = pairs.compactMap { word, stem -> String? in
            let got = Porter2.stem(word)
            return got == stem ? nil : "\(word): expected \(stem), got \(got)"
        }
        #expect(mismatches.isEmpty, "\(mismatches.count) mismatches, first: \(mismatches.prefix(20))")
    }

    @Test(arguments: [
        ("generously", "generous"), ("communism", "communism"), ("arsenal", "arsenal"),
        ("skies", "sky"), ("dying", "die"), ("lying", "lie"), ("news", "news"), ("atlas", "atlas"),
        ("succeed", "succeed"), ("proceed", "proceed"), ("canning", "canning"), ("herring", "herring"),
        ("consigned", "consign"), ("knightly", "knight"), ("caresses", "caress"), ("ponies", "poni"),
        ("ties", "tie"), ("agreed", "agre"), ("hopping", "hop"), ("hoping", "hope"),
        ("notify", "notifi"), ("watches", "watch"), ("dog's", "dog"), ("'tis", "tis"),
    ])
    func classicWords(word: String, stem: String) {
        #expect(Porter2.stem(word) == stem)
    }

    @Test(arguments: ["", "a", "is", "Running", "x86", "café", "naïve"])
    func leavesShortOrNonLowerASCIIWordsAlone(word: String) {
        #expect(Porter2.stem(word) == word)
    }
}
