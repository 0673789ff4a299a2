import RagCore
import Testing

@Suite struct AnalyzerTests {
    let analyzer = Analyzer()

    @Test(arguments: [
        // Identifiers: the whole first, then stemmed, stop-word-filtered parts.
        ("max_user_watches", ["max_user_watches", "max", "user", "watch"]),
        ("sd_notify()", ["sd_notify", "sd", "notifi"]),
        ("CamelCase", ["camelcase", "camel", "case"]),
        ("camelCase", ["camelcase", "camel", "case"]),
        ("HTTPServer", ["httpserver", "http", "server"]),
        ("XMLHttpRequest", ["xmlhttprequest", "xml", "http", "request"]),
        ("base64Encode", ["base64encode", "base64", "encod"]),
        ("URLs IPv4", ["url", "ipv4"]),
        ("os.path.join", ["os.path.join", "os", "path", "join"]),
        ("a.b.c", ["a.b.c", "b", "c"]),
        ("foo-bar", ["foo-bar", "foo", "bar"]),
        ("--max-depth", ["max-depth", "max", "depth"]),
        ("std::vector", ["std::vector", "std", "vector"]),
        ("__init__", ["init"]),
        ("x86_64", ["x86_64", "x86", "64"]),
        ("3.11", ["3.11", "3", "11"]),
        ("to-do", ["to-do"]),
        ("fs.inotify.max_user_watches", [
            "fs.inotify.max_user_watches", "fs", "inotifi", "max_user_watches", "max", "user", "watch",
        ]),
        ("foo-bar_baz", ["foo-bar_baz", "foo", "bar_baz", "bar", "baz"]),
    ])
    func identifiers(text: String, expected: [String]) {
        #expect(analyzer.terms(text) == expected)
    }

    @Test(arguments: [
        ("end of sentence.", ["end", "sentenc"]),
        ("Hello, world!", ["hello", "world"]),
        ("(see \"quoted\" text)", ["see", "quot", "text"]),
        ("'single' `code` [link] {brace} <tag>", ["singl", "code", "link", "brace", "tag"]),
        ("wait...done", ["wait", "done"]),
        ("version 2. Next", ["version", "2", "next"]),
        ("path/to/file.txt", ["path", "file.txt", "file", "txt"]),
        ("user@example.com", ["user", "example.com", "exampl", "com"]),
    ])
    func punctuation(text: String, expected: [String]) {
        #expect(analyzer.terms(text) == expected)
    }

    @Test(arguments: [
        ("RUNNING Running running", ["run", "run", "run"]),
        ("Café NAÏVE Ångström façade", ["cafe", "naiv", "angstrom", "facad"]),
        ("cafe\u{301}", ["cafe"]),
        ("Straße", ["strass"]),
        ("ΑΘΗΝΑ Привет", ["αθηνα", "привет"]),
        ("ＡＢＣ１２３", ["abc123"]),
    ])
    func caseFoldingAndAccents(text: String, expected: [String]) {
        #expect(analyzer.terms(text) == expected)
    }

    @Test(arguments: [
        ("The quick brown fox", ["quick", "brown", "fox"]),
        ("it’s what they're doing", [String]()),
        ("user's guide; don’t panic", ["user", "guid", "panic"]),
        ("not before after", ["not", "befor", "after"]),
    ])
    func stopWords(text: String, expected: [String]) {
        #expect(analyzer.terms(text) == expected)
    }

    @Test(arguments: [
        ("port 8080, version 2", ["port", "8080", "version", "2"]),
        ("1,000 items", ["1", "000", "item"]),
        ("192.168.0.1", ["192.168.0.1", "192", "168", "0", "1"]),
        ("1st 2nd", ["1st", "2nd"]),
    ])
    func numbers(text: String, expected: [String]) {
        #expect(analyzer.terms(text) == expected)
    }

    @Test(arguments: [
        ("日本語", ["日", "本", "語"]),
        ("中文abc", ["中", "文", "abc"]),
        ("ひらがな テキスト", ["ひ", "ら", "が", "な", "テキスト"]),
        ("한국어 텍스트", ["한국어", "텍스트"]),
    ])
    func cjk(text: String, expected: [String]) {
        #expect(analyzer.terms(text) == expected)
    }

    @Test(arguments: ["", "   ", " \n\t\r ", "... --- !!!", "the a an"])
    func noTerms(text: String) {
        #expect(analyzer.terms(text).isEmpty)
        #expect(analyzer.tokens(text).isEmpty)
    }

    @Test func longTokensAreDropped() {
        let long = String(repeating: "b", count: 65)
        #expect(analyzer.terms(long).isEmpty)
        #expect(analyzer.terms("ok \(long) ok") == ["ok", "ok"])
        // An over-long compound keeps its short parts.
        #expect(analyzer.terms("prefix_\(long)") == ["prefix"])
        let compound = "very_long_identifier_name_that_goes_on_and_on_past_sixty_four_bytes"
        #expect(compound.utf8.count > 64)
        let terms = analyzer.terms(compound)
        #expect(!terms.contains(compound))
        #expect(terms.prefix(3) == ["long", "identifi", "name"])
        // Exactly 64 bytes is kept.
        let max = String(repeating: "7", count: 64)
        #expect(analyzer.terms(max) == [max])
    }

    @Test(arguments: ["max_user_watches", "user watches", "sd_notify", "notify", "MAX_USER_WATCHES", "sd_notify()"])
    func queriesMatchDocuments(query: String) {
        let document = Set(analyzer.terms("Raise fs.inotify.max_user_watches, then call sd_notify() when ready."))
        let terms = analyzer.terms(query)
        #expect(!terms.isEmpty)
        #expect(terms.allSatisfy { document.contains($0) }, "\(terms) not all in \(document)")
    }

    @Test func duplicatesAreKept() {
        #expect(analyzer.terms("cache caches cached") == ["cach", "cach", "cach"])
    }

    @Test func tokensCarryByteRanges() {
        let text = "  Hello, wörld! The sd_notify() 漢字"
        let tokens = analyzer.tokens(text)
        #expect(tokens == [
            AnalyzedToken(utf8Range: 2..<7, terms: ["hello"]),
            AnalyzedToken(utf8Range: 9..<15, terms: ["world"]),
            AnalyzedToken(utf8Range: 21..<30, terms: ["sd_notify", "sd", "notifi"]),
            AnalyzedToken(utf8Range: 33..<36, terms: ["漢"]),
            AnalyzedToken(utf8Range: 36..<39, terms: ["字"]),
        ])
        let bytes = Array(text.utf8)
        let surfaces = tokens.map { String(decoding: bytes[$0.utf8Range], as: UTF8.self) }
        #expect(surfaces == ["Hello", "wörld", "sd_notify", "漢", "字"])
        #expect(tokens.flatMap(\.terms) == analyzer.terms(text))
    }

    @Test func combiningAccentIsInsideTokenRange() {
        let text = "cafe\u{301}."
        #expect(analyzer.tokens(text) == [AnalyzedToken(utf8Range: 0..<6, terms: ["cafe"])])
    }

    @Test func stopWordListIsLowerCase() {
        #expect(StopWords.english.count > 120)
        #expect(StopWords.english.allSatisfy { $0 == $0.lowercased() })
        #expect(StopWords.english.contains("the"))
        #expect(!StopWords.english.contains("not"))
    }
}
