import Testing
@testable import RagIngest

/// Shorthand for an expected chunk.
private func C(_ text: String, _ lines: ClosedRange<Int>, _ headings: [String] = []) -> ChunkDraft {
    ChunkDraft(text: text, lines: lines, headings: headings)
}

/// One row of the chunking table.
struct ChunkCase: Sendable, CustomTestStringConvertible {
    var name: String
    var format: DocumentFormat
    var input: String
    var configuration = ChunkingConfiguration()
    var expected: [ChunkDraft]
    var testDescription: String { name }
}

/// Small sizes that make packing visible; every word below is one token.
private let small = ChunkingConfiguration(targetTokens: 20, maxTokens: 30, overlapTokens: 0)

private let chunkCases: [ChunkCase] = [
    ChunkCase(name: "ATX headings: trail, level pops, closing #s and {#anchor}", format: .markdown, input: """
        # A {#top}
        a text
        ## B ##
        b text
        ### C
        c text
        ## D
        d text
        # E
        """, expected: [
            C("# A {#top}\na text", 1...2, ["A"]),
            C("## B ##\nb text", 3...4, ["A", "B"]),
            C("### C\nc text", 5...6, ["A", "B", "C"]),
            C("## D\nd text", 7...8, ["A", "D"]),
            C("# E", 9...9, ["E"]),
        ]),
    ChunkCase(name: "setext headings; --- after a blank line is a thematic break", format: .markdown, input: """
        Title
        =====

        Intro.

        ---

        Part
        ----
        Body.
        """, expected: [
            C("Title\n\nIntro.", 1...4, ["Title"]),
            C("Part\n\nBody.", 8...10, ["Title", "Part"]),
        ]),
    ChunkCase(name: "preamble before the first heading has no trail", format: .markdown, input: """
        Preamble.

        ## Only h2
        """, expected: [
            C("Preamble.", 1...1),
            C("## Only h2", 3...3, ["Only h2"]),
        ]),
    ChunkCase(name: "heading-looking lines inside fences (nested longer fence, info string)", format: .markdown, input: """
        # Top

        ~~~~markdown
        # inside
        ~~~
        ## still inside
        ~~~~

        ```swift title="x"
        ## not a heading
        ```
        After.
        """, expected: [
            C("""
            # Top

            ~~~~markdown
            # inside
            ~~~
            ## still inside
            ~~~~

            ```swift title="x"
            ## not a heading
            ```
            After.
            """, 1...12, ["Top"]),
        ]),
    ChunkCase(name: "fenced code kept whole when it fits in maxTokens", format: .markdown, input: """
        alpha beta gamma delta epsilon.

        ```text
        aa bb cc dd ee

        ff gg hh ii jj
        kk ll mm nn oo
        ```

        omega.
        """, configuration: small, expected: [
            C("alpha beta gamma delta epsilon.", 1...1),
            C("```text\naa bb cc dd ee\n\nff gg hh ii jj\nkk ll mm nn oo\n```", 3...8),
            C("omega.", 10...10),
        ]),
    ChunkCase(name: "code block over maxTokens splits at blank lines, then lines", format: .markdown, input: """
        ```text
        aa bb cc dd ee
        ff gg hh ii jj

        kk ll mm nn oo
        pp qq rr ss tt
        ```
        """, configuration: ChunkingConfiguration(targetTokens: 10, maxTokens: 12, overlapTokens: 0), expected: [
            C("```text\naa bb cc dd ee", 1...2),
            C("ff gg hh ii jj\n\nkk ll mm nn oo", 3...5),
            C("pp qq rr ss tt\n```", 6...7),
        ]),
    ChunkCase(name: "table kept whole (leading pipes and pipe-less)", format: .markdown, input: """
        intro words here now.

        | aa | bb |
        |----|----|
        | cc | dd |

        ee | ff
        --|--
        gg | hh
        """, configuration: small, expected: [
            C("intro words here now.", 1...1),
            C("| aa | bb |\n|----|----|\n| cc | dd |", 3...5),
            C("ee | ff\n--|--\ngg | hh", 7...9),
        ]),
    ChunkCase(name: "list with continuation, nested item and fenced code kept whole", format: .markdown, input: """
        Steps follow here.
        - aa bb
          cc dd
          - ee

          ```sh
        # shell comment at column zero
          ```
        + ff
        After.
        """, configuration: small, expected: [
            C("Steps follow here.", 1...1),
            C("- aa bb\n  cc dd\n  - ee\n\n  ```sh\n# shell comment at column zero\n  ```\n+ ff\nAfter.", 2...10),
        ]),
    ChunkCase(name: "paragraph lines packed to target with whole-line overlap", format: .markdown, input: """
        # H

        aa ab ac ad ae
        ba bb bc bd be
        ca cb cc cd ce
        da db dc dd de
        ea eb ec ed ee
        fa fb fc fd fe
        ga gb gc gd ge
        ha hb hc hd he
        """, configuration: ChunkingConfiguration(targetTokens: 20, maxTokens: 30, overlapTokens: 8), expected: [
            C("# H\n\naa ab ac ad ae\nba bb bc bd be\nca cb cc cd ce", 1...5, ["H"]),
            C("ca cb cc cd ce\nda db dc dd de\nea eb ec ed ee\nfa fb fc fd fe", 5...8, ["H"]),
            C("fa fb fc fd fe\nga gb gc gd ge\nha hb hc hd he", 8...10, ["H"]),
        ]),
    ChunkCase(name: "separate paragraphs packed, no overlap across sections", format: .markdown, input: """
        # One
        aa bb cc dd ee ff gg.

        hh ii jj kk ll mm nn.

        oo pp qq rr ss tt uu.
        # Two
        vv ww.
        """, configuration: ChunkingConfiguration(targetTokens: 20, maxTokens: 30, overlapTokens: 8), expected: [
            C("# One\naa bb cc dd ee ff gg.\n\nhh ii jj kk ll mm nn.", 1...4, ["One"]),
            C("hh ii jj kk ll mm nn.\n\noo pp qq rr ss tt uu.", 4...6, ["One"]),
            C("# Two\nvv ww.", 7...8, ["Two"]),
        ]),
    ChunkCase(name: "one long line split at sentences, overlap is the last sentence", format: .markdown, input:
        "Aa ab ac ad. Ba bb bc bd. Ca cb cc cd. Da db dc dd. Ea eb ec ed. Fa fb fc fd. Ga gb gc gd. Ha hb hc hd.",
        configuration: ChunkingConfiguration(targetTokens: 20, maxTokens: 30, overlapTokens: 8), expected: [
            C("Aa ab ac ad. Ba bb bc bd. Ca cb cc cd. Da db dc dd.", 1...1),
            C("Da db dc dd. Ea eb ec ed. Fa fb fc fd. Ga gb gc gd. Ha hb hc hd.", 1...1),
        ]),
    ChunkCase(name: "front matter removed, line numbers stay true", format: .markdown, input: """
        ---
        title: My Doc
        tags: [x, "y z"]
        ---
        # Heading

        Body.
        """, expected: [
            C("# Heading\n\nBody.", 5...7, ["Heading"]),
        ]),
    ChunkCase(name: "CRLF and lone CR count as one line break each", format: .markdown, input:
        "# A\r\n\r\nText one.\r\n\r\n# B\rMore.\r\n", expected: [
            C("# A\n\nText one.", 1...3, ["A"]),
            C("# B\nMore.", 5...6, ["B"]),
        ]),
    ChunkCase(name: "reST: overline title, levels by first appearance, literal block, directives", format: .restructuredText,
              input: """
        .. _top:

        =========
         Project
        =========

        Intro text.

        Usage
        =====

        Run it like this::

            $ tool --flag
            # not a title

        More.

        Details
        -------

        .. note::

           Be careful.

           Really.

        .. toctree::
           :maxdepth: 2

           a
           b

        .. A comment
           spanning lines.

        Sub
        ~~~

        Deep text.

        Other
        =====

        .. code-block:: python

           print("x")
        """, expected: [
            C("Project\n\nIntro text.", 4...7, ["Project"]),
            C("Usage\n\nRun it like this::\n\n    $ tool --flag\n    # not a title\n\nMore.", 9...17,
              ["Project", "Usage"]),
            C("Details\n\n.. note::\n\n   Be careful.\n\n   Really.", 19...26, ["Project", "Usage", "Details"]),
            C("Sub\n\nDeep text.", 37...40, ["Project", "Usage", "Details", "Sub"]),
            C("Other\n\n.. code-block:: python\n\n   print(\"x\")", 42...47, ["Project", "Other"]),
        ]),
    ChunkCase(name: "reST: list items merged into one block, short underline is text", format: .restructuredText,
              input: """
        Title
        -----

        - one

        - two
          more
        * three

        Example
        ::

            code
        """, configuration: small, expected: [
            C("Title\n\n- one\n\n- two\n  more\n* three\n\nExample\n::\n\n    code", 1...13, ["Title"]),
        ]),
    ChunkCase(name: "plain text: blank-line paragraphs packed, no headings", format: .plainText, input: """
        aa bb cc dd ee ff gg hh.
        ii jj.

        # kk ll mm nn oo pp

        qq rr ss.
        """, configuration: small, expected: [
            C("aa bb cc dd ee ff gg hh.\nii jj.\n\n# kk ll mm nn oo pp", 1...4),
            C("qq rr ss.", 6...6),
        ]),
    ChunkCase(name: "heading-only sections still produce chunks", format: .markdown, input: """
        # A
        ## B

        ## C
        text
        """, expected: [
            C("# A", 1...1, ["A"]),
            C("## B", 2...2, ["A", "B"]),
            C("## C\ntext", 4...5, ["A", "C"]),
        ]),
    ChunkCase(name: "empty and blank input give no chunks", format: .markdown, input: "\n  \n\t\n", expected: []),
    ChunkCase(name: "only front matter gives no chunks", format: .markdown, input: "---\ntitle: T\n---\n", expected: []),
]

@Suite struct ChunkerTests {
    @Test(arguments: chunkCases)
    func chunking(_ row: ChunkCase) {
        let document = Chunker(configuration: row.configuration).parse(row.input, format: row.format)
        #expect(document.chunks == row.expected)
        for chunk in document.chunks {
            #expect(!chunk.text.isEmpty)
            #expect(Chunker.estimateTokens(chunk.text[...]) <= row.configuration.maxTokens)
        }
    }

    @Test func titlesAndTags() {
        let chunker = Chunker()
        let flow = chunker.parse("---\ntitle: My Doc\ntags: [x, \"y z\"]\n---\n# Heading\n", format: .markdown)
        #expect(flow.title == "My Doc")
        #expect(flow.tags == ["x", "y z"])
        let block = chunker.parse("---\ntitle: 'It''s'\ntags:\n  - one\n  - two\n---\nText.\n", format: .markdown)
        #expect(block.title == "It's")
        #expect(block.tags == ["one", "two"])
        #expect(block.chunks == [C("Text.", 7...7)])
        let onlyFrontMatter = chunker.parse("---\ntitle: T\ntags: a, b\n---\n", format: .markdown)
        #expect(onlyFrontMatter.title == "T")
        #expect(onlyFrontMatter.tags == ["a", "b"])
        #expect(onlyFrontMatter.chunks.isEmpty)
        #expect(chunker.parse("Intro\n\n## Two\n# One\n", format: .markdown).title == "One")
        #expect(chunker.parse("One\n===\n", format: .markdown).title == "One")
        #expect(chunker.parse("## Two\n", format: .markdown).title == nil)
        #expect(chunker.parse("Doc\n###\n\nSub\n===\n", format: .restructuredText).title == "Doc")
        #expect(chunker.parse("# x\n", format: .plainText).title == nil)
        // Front matter belongs to Markdown only.
        #expect(chunker.parse("---\ntitle: T\n---\n", format: .plainText).chunks.count == 1)
    }

    @Test(arguments: [
        ("# C#", "C#"), ("## Foo ## {#foo}", "Foo"), ("### Keys {.unnumbered}", "Keys"), ("#   Spaced   #", "Spaced"),
        ("# Hash#tag", "Hash#tag"), ("# {#only-anchor}", "{#only-anchor}"),
    ])
    func atxHeadingText(_ line: String, _ text: String) {
        #expect(Chunker().parse(line + "\n", format: .markdown).chunks.first?.headings == [text])
    }

    @Test(arguments: ["#hashtag", "####### seven", "    # indented code", "\\# escaped"])
    func notAHeading(_ line: String) {
        #expect(Chunker().parse(line + "\n", format: .markdown).chunks.first?.headings == [])
    }

    @Test func byteOrderMarkIsNotText() {
        let document = Chunker().parse("\u{FEFF}---\ntitle: T\n---\n# Head\nBody.\n", format: .markdown)
        #expect(document.title == "T")
        #expect(document.chunks == [C("# Head\nBody.", 4...5, ["Head"])])
    }

    @Test(arguments: [
        ("guide.md", DocumentFormat.markdown), ("README.MARKDOWN", .markdown), ("a/b/intro.rst", .restructuredText),
        ("_sources/library/os.rst.txt", .restructuredText), ("INDEX.RST.TXT", .restructuredText),
        ("notes.txt", .plainText), ("Notes.TXT", .plainText),
    ])
    func formatDetection(_ name: String, _ format: DocumentFormat) {
        #expect(DocumentFormat.detect(fileName: name) == format)
    }

    @Test(arguments: ["image.png", "Makefile", "md", "file.rst.bak", "x.mdx"])
    func unknownFormats(_ name: String) {
        #expect(DocumentFormat.detect(fileName: name) == nil)
    }

    @Test(arguments: [
        ("", 0), ("   \n\t", 0), ("The quick brown fox.", 5), ("documentation", 2), ("getAttrString", 3),
        ("x86_64", 4), ("foo_bar()", 5), ("日本語", 3), ("café au lait", 3), ("a — b", 3),
    ])
    func tokenEstimate(_ text: String, _ expected: Int) {
        #expect(Chunker.estimateTokens(text[...]) == expected)
    }

    @Test func estimateIsAdditiveOverLines() {
        let text = "Return a new reference to the object's attribute named attr_name.\nIt is PyObject_GetAttr(o)."
        let lines = text.split(separator: "\n")
        #expect(Chunker.estimateTokens(text[...]) == lines.map { Chunker.estimateTokens($0) }.reduce(0, +))
    }

    @Test func hugeLineOfWordsIsSplitAtWords() {
        let line = Array(repeating: "lorem", count: 20_000).joined(separator: " ")
        let chunks = Chunker().parse("# T\n" + line + "\n", format: .markdown).chunks
        let piece = Array(repeating: "lorem", count: 200).joined(separator: " ")
        #expect(chunks.count == 100)
        #expect(chunks.first == C("# T\n" + piece, 1...2, ["T"]))
        #expect(chunks.dropFirst().allSatisfy { $0 == C(piece, 2...2, ["T"]) })
    }

    @Test func hugeLineWithoutSpacesIsCutAnywhere() {
        let line = String(repeating: "x", count: 100_000)
        let chunks = Chunker().parse(line, format: .plainText).chunks
        #expect(chunks.count == 72)  // 100 000 / 7 bytes per token / 200 tokens per piece, rounded up
        #expect(chunks.map(\.text).joined() == line)
        #expect(chunks.allSatisfy { $0.lines == 1...1 && Chunker.estimateTokens($0.text[...]) <= 256 })
    }

    @Test func hugeSentencesKeepSentenceOverlap() {
        let sentence = "Alpha beta gamma delta epsilon zeta eta theta iota kappa."
        let line = Array(repeating: sentence, count: 2_000).joined(separator: " ")
        let chunks = Chunker().parse(line, format: .plainText).chunks
        // Pieces of 18 sentences (198 tokens); each next chunk repeats the last 2 sentences (22 tokens).
        let piece = Array(repeating: sentence, count: 18).joined(separator: " ")
        #expect(chunks.count == 112)
        #expect(chunks.first == C(piece, 1...1))
        #expect(chunks.dropFirst().dropLast().allSatisfy { $0 == C(sentence + " " + sentence + " " + piece, 1...1) })
    }

    /// White space and control characters carry no tokens, so a byte cap (maxTokens × 64) bounds chunks too.
    @Test(arguments: [DocumentFormat.markdown, .restructuredText, .plainText])
    func whiteSpaceCannotInflateChunks(_ format: DocumentFormat) {
        let padded = "a" + String(repeating: " ", count: 1_000_000) + "b\n"
        let lines = String(repeating: "word" + String(repeating: " ", count: 3000) + "x\n", count: 200)
        let configuration = ChunkingConfiguration(overlapTokens: 0)
        for text in [padded, lines, lines + "\n" + padded] {
            let chunks = Chunker(configuration: configuration).parse(text, format: format).chunks
            #expect(chunks.allSatisfy { $0.text.utf8.count <= 256 * 64 })
            let words = chunks.flatMap { $0.text.split(whereSeparator: \.isWhitespace) }
            #expect(words == text.split(whereSeparator: \.isWhitespace))
        }
    }

    /// Without overlap, plain text chunks hold every word of the input exactly once, in order.
    @Test func plainTextKeepsEveryWordOnce() {
        let text = mixedDocument()
        let configuration = ChunkingConfiguration(targetTokens: 40, maxTokens: 60, overlapTokens: 0)
        let chunks = Chunker(configuration: configuration).parse(text, format: .plainText).chunks
        let words = chunks.flatMap { $0.text.split(whereSeparator: \.isWhitespace) }
        #expect(words == text.split(whereSeparator: \.isWhitespace))
    }

    /// A 5 MB document with a known number of sections chunks completely (speed is measured separately).
    @Test func fiveMegabytes() {
        let body = Array(repeating: "Lorem ipsum dolor sit amet, consectetur adipiscing elit.", count: 4)
            .joined(separator: " ")
        var text = ""
        text.reserveCapacity(5_300_000)
        var sections = 0
        while text.utf8.count < 5_000_000 {
            sections += 1
            text += "## Section \(sections)\n\n\(body)\n\n```\ncode \(sections)\n```\n\n"
        }
        let chunks = Chunker().parse(text, format: .markdown).chunks
        #expect(chunks.count == sections)
        #expect(chunks.last?.headings == ["Section \(sections)"])
        #expect(chunks.last?.lines == (sections * 8 - 7)...(sections * 8 - 1))
    }

    /// Invariants over a messy mixed document with small limits.
    @Test(arguments: [DocumentFormat.markdown, .restructuredText, .plainText])
    func invariants(_ format: DocumentFormat) {
        let text = mixedDocument()
        let configuration = ChunkingConfiguration(targetTokens: 40, maxTokens: 60, overlapTokens: 10)
        let chunks = Chunker(configuration: configuration).parse(text, format: format).chunks
        let lineCount = text.split(separator: "\n", omittingEmptySubsequences: false).count
        #expect(!chunks.isEmpty)
        var previousStart = 0
        for chunk in chunks {
            #expect(!chunk.text.isEmpty)
            #expect(!chunk.text.hasPrefix("\n") && !chunk.text.hasSuffix("\n"))
            #expect(Chunker.estimateTokens(chunk.text[...]) <= 60)
            #expect(chunk.lines.lowerBound >= 1 && chunk.lines.upperBound <= lineCount)
            #expect(chunk.lines.lowerBound >= previousStart)
            previousStart = chunk.lines.lowerBound
        }
    }
}

/// Headings, code, lists, tables, long and short paragraphs, in varying sizes.
private func mixedDocument() -> String {
    var text = ""
    for i in 0..<300 {
        switch i % 7 {
        case 0: text += "# Heading \(i)\n\n"
        case 1: text += "Title \(i)\n--------------\n\n"
        case 2: text += "```\n" + String(repeating: "let value\(i) = compute(x, y)\n", count: i % 40) + "```\n\n"
        case 3: text += "- item \(i)\n  continued text here\n- another\n\n"
        case 4: text += String(repeating: "Word soup sentence number \(i). ", count: i) + "\n\n"
        case 5: text += "| a | b |\n|---|---|\n" + String(repeating: "| \(i) | y |\n", count: i % 60) + "\n"
        default: text += "Just a short paragraph \(i).\n\n"
        }
    }
    return text
}
