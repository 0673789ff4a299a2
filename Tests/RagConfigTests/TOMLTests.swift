import RagConfig
import Testing

@Suite("TOML parser")
struct TOMLTests {
    // MARK: Valid documents

    /// Documents and the description of the parsed root table (keys in definition order).
    static let valid: [(toml: String, expected: String)] = [
        ("", "{}"),
        ("a = 1", "{a = 1}"),
        ("# only a comment\n\n", "{}"),
        ("a = \"x\" # trailing comment\n", #"{a = "x"}"#),
        ("\t a\t=\t1 \t\n", "{a = 1}"),
        ("a = 1\r\nb = 2\r\n", "{a = 1, b = 2}"),
        // Keys: bare, quoted, literal, dotted (with spaces around dots).
        (#""quoted key" = 1"# + "\n'lit.eral' = 2\nbare-key_1 = 3\n1234 = 4", "{quoted key = 1, lit.eral = 2, bare-key_1 = 3, 1234 = 4}"),
        ("a.b.c = 1\na . d = 2\n\"x\".'y' = 3", "{a = {b = {c = 1}, d = 2}, x = {y = 3}}"),
        (#""" = 1"#, "{ = 1}"),
        // Integers.
        ("a = +99\nb = -17\nc = 0\nd = 1_000\ne = -0", "{a = 99, b = -17, c = 0, d = 1000, e = 0}"),
        ("a = 0xDEAD_beef\nb = 0o755\nc = 0b1101\nd = 0x00ff", "{a = 3735928559, b = 493, c = 13, d = 255}"),
        ("max = 9223372036854775807\nmin = -9223372036854775808", "{max = 9223372036854775807, min = -9223372036854775808}"),
        // Floats.
        ("a = 3.14\nb = -0.01\nc = 5e+22\nd = 1E6\ne = -2e-2\nf = 224_617.445_991\ng = 0.0\nh = 1e0_1\ni = +1.5\nj = -0.0",
         "{a = 3.14, b = -0.01, c = 5e+22, d = 1000000.0, e = -0.02, f = 224617.445991, g = 0.0, h = 10.0, i = 1.5, j = -0.0}"),
        ("a = inf\nb = -inf\nc = +inf", "{a = inf, b = -inf, c = inf}"),
        // Booleans.
        ("t = true\nf = false", "{t = true, f = false}"),
        // Arrays.
        ("a = [1, 2, 3]\nb = [ \"x\", 'y', ]\ne = []", #"{a = [1, 2, 3], b = ["x", "y"], e = []}"#),
        ("a = [\n  1, # one\n\n  2, # two\n  # nothing\n]", "{a = [1, 2]}"),
        ("a = [[1, 2], [\"a\"], [], 1.5, true, {x = 1}]", #"{a = [[1, 2], ["a"], [], 1.5, true, {x = 1}]}"#),
        // Inline tables.
        ("p = { x = 1, y.z = 2, y.w = \"s\" }\nq = {}", #"{p = {x = 1, y = {z = 2, w = "s"}}, q = {}}"#),
        ("p = { list = [\n 1,\n 2\n] }", "{p = {list = [1, 2]}}"),
        // Tables.
        ("top = 0\n[a]\nx = 1\n[b.c]\ny = 2\n[b]\nz = 3", "{top = 0, a = {x = 1}, b = {c = {y = 2}, z = 3}}"),
        ("[ a . \"b c\" ]\nx = 1", "{a = {b c = {x = 1}}}"),
        ("[a]\n[a.b]\n[a.c]", "{a = {b = {}, c = {}}}"),
        ("[fruit]\napple.color = \"red\"\napple.taste.sweet = true\n[fruit.apple.texture]\nsmooth = true",
         #"{fruit = {apple = {color = "red", taste = {sweet = true}, texture = {smooth = true}}}}"#),
        // Arrays of tables.
        ("[[s]]\np = 1\n[[s]]\np = 2\n[s.sub]\nq = 3", "{s = [{p = 1}, {p = 2, sub = {q = 3}}]}"),
        ("[[a]]\n[[a.b]]\nx = 1\n[[a.b]]\nx = 2\n[[a]]", "{a = [{b = [{x = 1}, {x = 2}]}, {}]}"),
        ("[[x.y]]\nn = 1", "{x = {y = [{n = 1}]}}"),
    ]

    @Test(arguments: valid)
    func parsesValidDocument(toml: String, expected: String) throws {
        #expect(try TOML.parse(toml).description == expected)
    }

    @Test func nanAndTypes() throws {
        let t = try TOML.parse("a = nan\nb = -nan\nc = 1\nd = 1.0\ne = 'x'\nf = true\ng = []\nh = {}")
        #expect(t["a"]?.floatValue?.isNaN == true)
        #expect(t["b"]?.floatValue?.isNaN == true)
        #expect(t["c"]?.integerValue == 1)
        #expect(t["c"]?.floatValue == nil)
        #expect(t["d"]?.floatValue == 1.0)
        #expect(t.keys == ["a", "b", "c", "d", "e", "f", "g", "h"])
        let names = t.entries.dropFirst(2).map(\.value.typeName)
        #expect(names == ["an integer", "a float", "a string", "a boolean", "an array", "a table"])
    }

    // MARK: Strings

    static let strings: [(toml: String, expected: String)] = [
        (#"s = "plain""#, "plain"),
        (#"s = "tab\there""#, "tab\there"),
        (#"s = "\b\t\n\f\r\"\\""#, "\u{08}\t\n\u{0C}\r\"\\"),
        (#"s = "\u00E9\U0001F600""#, "é😀"),
        ("s = \"raw é and \t tab\"", "raw é and \t tab"),
        (#"s = 'C:\path\n'"#, #"C:\path\n"#),
        (#"s = '<\i\c*\s*>'"#, #"<\i\c*\s*>"#),
        ("s = \"\"\"\nline1\nline2\"\"\"", "line1\nline2"),
        ("s = \"\"\"\r\nline1\r\nline2\r\n\"\"\"", "line1\nline2\n"),
        ("s = \"\"\"\nThe quick \\\n   brown \\\n\n  fox.\"\"\"", "The quick brown fox."),
        ("s = \"\"\"trailing \\   \n  spaces\"\"\"", "trailing spaces"),
        ("s = \"\"\"a \\\"\"\" b\"\"\"", "a \"\"\" b"),
        ("s = \"\"\"x\"\"\"\"", "x\""),
        ("s = \"\"\"\"\"x\"\"\"\"\"", "\"\"x\"\""),
        ("s = \"\"\"\"\"\"\"", "\""),
        ("s = \"\"\"one \"two\" \"\"three\"\" \"\"\"", "one \"two\" \"\"three\"\" "),
        ("s = '''\nraw \\n\n  kept'''", "raw \\n\n  kept"),
        ("s = '''That's ''quoted'''''", "That's ''quoted''"),
        ("s = ''''''", ""),
        ("s = \"\"", ""),
    ]

    @Test(arguments: strings)
    func parsesString(toml: String, expected: String) throws {
        #expect(try TOML.parse(toml)["s"]?.stringValue == expected)
    }

    // MARK: Lines

    @Test func valuesRememberTheirLine() throws {
        let doc = """
            # header comment
            a = 1
            s = \"\"\"
            two
            lines\"\"\"
            arr = [
              10,

              20,
            ]
            [tbl]
            x.y = true
            [[arr2]]
            n = 1
            [[arr2]]
            n = 2
            inline = { k = 1 }
            """
        let t = try TOML.parse(doc)
        #expect(t["a"]?.line == 2)
        #expect(t["s"]?.line == 3)
        #expect(t["arr"]?.line == 6)
        #expect(t["arr"]?.arrayValue?.map(\.line) == [7, 9])
        #expect(t["tbl"]?.line == 11)
        #expect(t["tbl"]?.tableValue?["x"]?.tableValue?["y"]?.line == 12)
        let arr2 = try #require(t["arr2"]?.arrayValue)
        #expect(t["arr2"]?.line == 13)
        #expect(arr2.map(\.line) == [13, 15])
        #expect(arr2.map { $0.tableValue?["n"]?.line } == [14, 16])
        #expect(arr2[1].tableValue?["inline"]?.line == 17)
        #expect(arr2[1].tableValue?["inline"]?.tableValue?["k"]?.line == 17)
    }

    @Test func implicitTableTakesLineOfItsOwnHeader() throws {
        let t = try TOML.parse("[a.b]\nx = 1\n\n[a]\ny = 2")
        #expect(t["a"]?.line == 4)
        #expect(t["a"]?.tableValue?["b"]?.line == 1)
    }

    // MARK: Invalid documents

    struct Invalid: Sendable, CustomTestStringConvertible {
        var toml: String
        var line: Int
        var message: String
        var testDescription: String { message }
        init(_ toml: String, _ line: Int, _ message: String) {
            self.toml = toml
            self.line = line
            self.message = message
        }
    }

    static let invalid: [Invalid] = [
        // Duplicates and redefinitions.
        Invalid("a = 1\na = 2", 2, "duplicate key 'a' (first defined at line 1)"),
        Invalid("a.b = 1\na.b = 2", 2, "duplicate key 'a.b'"),
        Invalid("[a]\nx = 1\n[a]", 3, "table 'a' is already defined (line 1)"),
        Invalid("[a]\nb = 1\n[a.b]", 3, "key 'a.b' is already an integer"),
        Invalid("a.b = 1\n[a]", 2, "table 'a' is already defined"),
        Invalid("[a]\nb.c = 1\n[a.b]", 3, "table 'a.b' is already defined"),
        Invalid("a = 1\n[a]", 2, "key 'a' is already an integer"),
        Invalid("[[a]]\n[a]", 2, "already defined as an array of tables"),
        Invalid("[a]\n[[a]]", 2, "it is already a table"),
        Invalid("a = []\n[[a]]", 2, "key 'a' is already an array"),
        Invalid("a = {x = 1}\na.y = 2", 2, "key 'a' is already a table"),
        Invalid("a = {x = 1}\n[a.b]", 2, "key 'a' is already a table"),
        Invalid("a = {x = 1}\n[a]", 2, "key 'a' is already a table"),
        Invalid("[a.b.c]\n[a]\nb.c.d = 1", 3, "dotted key 'a.b.c.d' cannot add to table 'a.b' defined at line 1"),
        Invalid("[x]\na = 1\n[x.y]\nz = 1\n[x]", 5, "table 'x' is already defined (line 1)"),
        Invalid("[[a]]\nb = 1\nb = 2", 3, "duplicate key 'a.b' (first defined at line 2)"),
        Invalid("p = {x = 1, x = 2}", 1, "duplicate key 'x'"),
        Invalid("x = 1\n\n\n[[a]]\n[[a.x]]\n[a.x]", 6, "already defined as an array of tables"),
        // Unsupported.
        Invalid("\nd = 1979-05-27", 2, "dates and times are not supported"),
        Invalid("t = 07:32:00", 1, "dates and times are not supported"),
        Invalid("x = 1\ndt = 1979-05-27T07:32:00Z", 2, "dates and times are not supported"),
        // Strings.
        Invalid("a = 1\ns = \"unterminated\nb = 2", 2, "unterminated string"),
        Invalid("s = 'unterminated", 1, "unterminated string"),
        Invalid("s = \"\"\"\nabc\n", 1, "unterminated multi-line string"),
        Invalid(#"a = "\q""#, 1, "invalid escape sequence '\\q'"),
        Invalid(#"a = "\uD800""#, 1, "not a Unicode scalar value"),
        Invalid(#"a = "\u12""#, 1, "needs 4 hex digits"),
        Invalid("a = \"x\u{01}\"", 1, "control character U+0001"),
        Invalid("a = 'x\u{7F}'", 1, "control character U+007F"),
        Invalid("# bad \u{01} comment", 1, "control character U+0001 in comment"),
        Invalid("s = \"\"\"\"\"\"\"\"\"", 1, "too many quotes"),
        Invalid("\"\"\"a\"\"\" = 1", 1, "multi-line strings cannot be keys"),
        // Numbers.
        Invalid("a = 01", 1, "leading zeros are not allowed"),
        Invalid("a = 01.5", 1, "leading zeros are not allowed"),
        Invalid("a = 1__0", 1, "invalid number"),
        Invalid("a = 1_", 1, "invalid number"),
        Invalid("a = 0x", 1, "invalid integer"),
        Invalid("a = 0o8", 1, "invalid integer"),
        Invalid("a = 0X10", 1, "invalid number"),
        Invalid("a = +0x10", 1, "a sign is not allowed"),
        Invalid("a = 9223372036854775808", 1, "does not fit in 64 bits"),
        Invalid("a = -9223372036854775809", 1, "does not fit in 64 bits"),
        Invalid("a = 0x8000000000000000", 1, "does not fit in 64 bits"),
        Invalid("a = 1.", 1, "invalid float"),
        Invalid("a = 1.e5", 1, "invalid float"),
        Invalid("a = 1e", 1, "invalid float"),
        Invalid("a = 1.5.2", 1, "invalid float"),
        Invalid("a = .5", 1, "expected a value, found '.'"),
        Invalid("a = infinity", 1, "expected a value, found 'infinity'"),
        // Structure.
        Invalid("a = [1, 2", 1, "unterminated array"),
        Invalid("a = [1 2]", 1, "expected ',' or ']' in array"),
        Invalid("a = [,]", 1, "expected a value, found ','"),
        Invalid("a = {x = 1,}", 1, "trailing comma is not allowed"),
        Invalid("a = {x = 1\n}", 1, "inline tables must be on one line"),
        Invalid("a = {\nx = 1}", 1, "inline tables must be on one line"),
        Invalid("a = hello", 1, "expected a value, found 'hello' (strings need quotes)"),
        Invalid("a = true1", 1, "expected a value, found 'true1'"),
        Invalid("a = 1 b = 2", 1, "expected the end of the line after a value, found 'b'"),
        Invalid("x = 1\n= 1", 2, "expected a key, found '='"),
        Invalid("a", 1, "expected '=' after key 'a'"),
        Invalid("a =", 1, "expected a value, found the end of the file"),
        Invalid("a = \n", 1, "expected a value, found the end of the line"),
        Invalid("[a", 1, "expected ']' to close the table header"),
        Invalid("[[a]", 1, "expected ']]' to close the table array header"),
        Invalid("[a] x = 1", 1, "expected the end of the line after a table header"),
        Invalid("[]", 1, "expected a key, found ']'"),
        Invalid("a = 1\rb = 2", 1, "carriage return not followed by line feed"),
    ]

    @Test(arguments: invalid)
    func rejectsInvalidDocument(_ c: Invalid) {
        do {
            let table = try TOML.parse(c.toml)
            Issue.record("expected an error, parsed \(table)")
        } catch let error as TOMLError {
            #expect(error.line == c.line)
            #expect(error.message.contains(c.message), "\(error)")
        } catch {
            Issue.record("unexpected error \(error)")
        }
    }

    @Test func errorsCarryColumns() throws {
        let error = try #require(throws: TOMLError.self) { try TOML.parse("ok = 1\nkey  = hello") }
        #expect(error.line == 2)
        #expect(error.column == 8)
        #expect(error.description == "line 2, column 8: expected a value, found 'hello' (strings need quotes)")
    }

    @Test func byteOrderMarkIsSkipped() throws {
        #expect(try TOML.parse("\u{FEFF}a = 1")["a"]?.integerValue == 1)
    }

    @Test func equalityIgnoresLinesAndOrder() throws {
        #expect(try TOML.parse("a = 1\nb = 2") == (try TOML.parse("\n\nb = 2\na = 1")))
        #expect(try TOML.parse("a = 1") != (try TOML.parse("a = 2")))
    }
}
