import Testing
@testable import RagIngest

struct FrontMatterCase: Sendable, CustomTestStringConvertible {
    var name: String
    var input: String
    var expected: FrontMatter?
    var testDescription: String { name }
}

private let frontMatterCases: [FrontMatterCase] = [
    FrontMatterCase(name: "flow list and plain title", input: "---\ntitle: Getting started\ntags: [swift, linux]\n---\nBody\n",
                    expected: FrontMatter(title: "Getting started", tags: ["swift", "linux"], lineCount: 4)),
    FrontMatterCase(name: "block list, quoted values, other keys ignored", input: """
        ---
        layout: post
        title: "Install: \\"quick\\" guide"
        date: 2024-01-01
        tags:
          - 'debian'
          - "apt keys"
        author:
          name: X
        ---
        """, expected: FrontMatter(title: "Install: \"quick\" guide", tags: ["debian", "apt keys"], lineCount: 10)),
    FrontMatterCase(name: "unindented block list and ... terminator", input: "---\ntags:\n- a\n- b\n...\ntext",
                    expected: FrontMatter(title: nil, tags: ["a", "b"], lineCount: 5)),
    FrontMatterCase(name: "single string and comma list", input: "---\ntags: one, two ,three\ntitle: It's # comment\n---\n",
                    expected: FrontMatter(title: "It's", tags: ["one", "two", "three"], lineCount: 4)),
    FrontMatterCase(name: "multi-line flow list", input: "---\ntags: [a,\n  \"b, c\",\n  d]\n---\n",
                    expected: FrontMatter(title: nil, tags: ["a", "b, c", "d"], lineCount: 5)),
    FrontMatterCase(name: "folded title", input: "---\ntitle: >\n  A long\n  title\ntags: x\n---\n",
                    expected: FrontMatter(title: "A long title", tags: ["x"], lineCount: 6)),
    FrontMatterCase(name: "CRLF and trailing spaces on fences", input: "--- \r\ntitle: T\r\n---\t\r\n# H\r\n",
                    expected: FrontMatter(title: "T", tags: [], lineCount: 3)),
    FrontMatterCase(name: "empty block", input: "---\n---\n", expected: FrontMatter(title: nil, tags: [], lineCount: 2)),
    FrontMatterCase(name: "unterminated", input: "---\ntitle: T\n\nText\n", expected: nil),
    FrontMatterCase(name: "not at the start", input: "\n---\ntitle: T\n---\n", expected: nil),
    FrontMatterCase(name: "four dashes is not a fence", input: "----\ntitle: T\n----\n", expected: nil),
    FrontMatterCase(name: "no front matter", input: "# Title\n", expected: nil),
]

@Suite struct FrontMatterTests {
    @Test(arguments: frontMatterCases)
    func parsing(_ row: FrontMatterCase) {
        #expect(FrontMatter.parse(row.input) == row.expected)
    }
}
