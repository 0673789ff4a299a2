import RagCore
import Testing

@Suite("GlobPattern")
struct GlobPatternTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var pattern: String
        var path: String
        var matches: Bool
        var testDescription: String { "\(pattern) \(matches ? "~" : "!~") \(path)" }
        init(_ pattern: String, _ path: String, _ matches: Bool) {
            self.pattern = pattern
            self.path = path
            self.matches = matches
        }
    }

    static let cases: [Case] = [
        // No slash: matches the file name at any depth.
        Case("*.md", "a.md", true),
        Case("*.md", "docs/a.md", true),
        Case("*.md", "docs/deep/er/a.md", true),
        Case("*.md", "a.markdown", false),
        Case("*.md", "a.md/x.txt", false),
        Case("README", "README", true),
        Case("README", "x/README", true),
        Case("README", "README.md", false),
        Case("*", "anything/at/all", true),
        Case("*", ".hidden", true),
        // `**/` may match nothing.
        Case("**/*.md", "a.md", true),
        Case("**/*.md", "x/y/z/a.md", true),
        Case("**/*.rst.txt", "x/a.rst.txt", true),
        Case("**/*.rst.txt", "x/a.txt", false),
        // Anchored patterns.
        Case("docs/*.md", "docs/a.md", true),
        Case("docs/*.md", "docs/sub/a.md", false),
        Case("docs/*.md", "x/docs/a.md", false),
        Case("/a.md", "a.md", true),
        Case("/a.md", "x/a.md", false),
        Case("docs/**/*.md", "docs/a.md", true),
        Case("docs/**/*.md", "docs/x/y/a.md", true),
        Case("docs/**/*.md", "other/a.md", false),
        Case("a/**/b", "a/b", true),
        Case("a/**/b", "a/x/y/b", true),
        Case("a/**/b", "a/x/y/c", false),
        Case("**/**/x", "x", true),
        // Trailing `**` and trailing slash: everything below.
        Case("build/**", "build/x", true),
        Case("build/**", "build/x/y.o", true),
        Case("build/**", "build", false),
        Case("build/**", "src/build/x", false),
        Case("build/", "build/x", true),
        Case("build/", "src/build/x/y", true),
        Case("build/", "build", false),
        Case("**", "a", true),
        Case("**", "a/b/c", true),
        // Folder paths given with a trailing `/` (how a scanner asks about directories).
        Case("build/", "build/", true),
        Case("build/", "src/build/", true),
        Case("**/node_modules/**", "a/node_modules/", true),
        Case("*.md", "docs/", false),
        // `*` stays within a component; `**` inside a component acts like `*`.
        Case("a*b", "ab", true),
        Case("a*b", "axxb", true),
        Case("a*b/c", "ax/yb/c", false),
        Case("x/a**b", "x/aqqb", true),
        Case("x/a**b", "x/a/b", false),
        Case("*a*a*a", "aaaa", true),
        Case("*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaac", false),
        // `?` is one character, never `/`, and one Unicode scalar.
        Case("?.md", "a.md", true),
        Case("?.md", "ab.md", false),
        Case("?.md", "é.md", true),
        Case("??.md", "é.md", false),
        Case("a?b", "a/b", false),
        Case("*é*", "caféteria", true),
        // Classes.
        Case("[abc].txt", "b.txt", true),
        Case("[abc].txt", "d.txt", false),
        Case("[a-c]x", "bx", true),
        Case("[a-c]x", "dx", false),
        Case("[!a-c]x", "dx", true),
        Case("[!a-c]x", "ax", false),
        Case("[^a]x", "bx", true),
        Case("[]]x", "]x", true),
        Case("[a-]x", "-x", true),
        Case("[à-ú]", "é", true),
        Case("[!à-ú]", "é", false),
        Case("[0-9][0-9].txt", "42.txt", true),
        // Escapes.
        Case("\\*.md", "*.md", true),
        Case("\\*.md", "a.md", false),
        Case("a\\?", "a?", true),
        Case("a\\?", "ab", false),
        Case("[\\]]", "]", true),
        // Case-sensitive.
        Case("*.MD", "a.md", false),
    ]

    @Test(arguments: cases)
    func matching(_ c: Case) throws {
        let glob = try GlobPattern(c.pattern)
        #expect(glob.matches(c.path) == c.matches)
    }

    static let malformed: [(pattern: String, message: String)] = [
        ("[abc", "unclosed '['"),
        ("a/[b", "unclosed '['"),
        ("[!", "unclosed '['"),
        ("[]", "unclosed '['"),
        ("[a/b]", "unclosed '['"),
        ("abc\\", "trailing '\\' escapes nothing"),
        ("", "empty pattern"),
        ("a//b", "empty path component ('//')"),
        ("[z-a]", "reversed range 'z-a' in character class"),
    ]

    @Test(arguments: malformed)
    func malformedPatternsThrow(pattern: String, message: String) {
        #expect(throws: GlobError(pattern: pattern, message: message)) { try GlobPattern(pattern) }
    }

    @Test func errorDescriptionNamesPattern() {
        let error = GlobError(pattern: "[x", message: "unclosed '['")
        #expect(error.description == "invalid glob pattern '[x': unclosed '['")
    }

    @Test func equalityAndDescription() throws {
        let a = try GlobPattern("**/*.md")
        #expect(a == (try GlobPattern("**/*.md")))
        #expect(a != (try GlobPattern("*.md")))
        #expect(a.description == "**/*.md")
        #expect(Set([a, try GlobPattern("**/*.md")]).count == 1)
    }

    @Test func emptyPathNeverMatches() throws {
        #expect(!(try GlobPattern("*")).matches(""))
    }
}
