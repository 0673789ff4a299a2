import Testing
@testable import RagIngest

/// Shorthand for an expected chunk.
private func C(_ text: String, _ lines: ClosedRange<Int>, _ headings: [String] = []) -> ChunkDraft {
    ChunkDraft(text: text, lines: lines, headings: headings)
}

/// One row of the HTML table: input, expected title and chunks (text, source lines, heading trail).
struct HTMLCase: Sendable, CustomTestStringConvertible {
    var name: String
    var input: String
    var configuration = ChunkingConfiguration()
    var title: String?
    var expected: [ChunkDraft]
    var testDescription: String { name }
}

/// Small sizes that make packing visible; every word below is one token.
private let small = ChunkingConfiguration(targetTokens: 20, maxTokens: 30, overlapTokens: 0)

private let htmlCases: [HTMLCase] = [
    HTMLCase(name: "headings form the trail; a paragraph keeps its source line breaks; title without the site name", input: """
        <html><head><title>Guide &mdash; Example docs</title></head>
        <body>
        <h1>Guide</h1>
        <p>Intro text
           spans   two lines.</p>
        <h2>Install</h2>
        <p>Run it.</p>
        <h3>Keys</h3><p>Import keys.</p>
        <h2>Use</h2>
        <p>Go.</p>
        </body></html>
        """, title: "Guide", expected: [
            C("Guide\n\nIntro text\nspans two lines.", 3...5, ["Guide"]),
            C("Install\n\nRun it.", 6...7, ["Guide", "Install"]),
            C("Keys\n\nImport keys.", 8...8, ["Guide", "Install", "Keys"]),
            C("Use\n\nGo.", 9...10, ["Guide", "Use"]),
        ]),
    HTMLCase(name: "no h1: the title is the trail's root, not repeated by an equal h2 (DocBook)", input: """
        <?xml version="1.0" encoding="UTF-8" standalone="no"?>
        <!DOCTYPE html><html xmlns="http://www.w3.org/1999/xhtml"><head><title>SELECT</title></head><body>
        <div class="navheader"><table><tr><th>SELECT</th></tr><tr><td><a href="a.html">Prev</a></td></tr></table><hr /></div>
        <div class="refnamediv"><h2><span class="refentrytitle">SELECT</span></h2><p>SELECT — retrieve rows</p></div>
        <div class="refsynopsisdiv"><h2>Synopsis</h2><pre class="synopsis">
        SELECT <em class="replaceable"><code>expression</code></em>
            [ FROM <em>from_item</em> ]
        </pre></div>
        <div class="toc"><p><strong>Table of Contents</strong></p><dl class="toc"><dt>7.1. Overview</dt></dl></div>
        <div class="navfooter"><hr /><table><tr><td><a href="b.html">Next</a></td></tr></table></div></body></html>
        """, title: "SELECT", expected: [
            C("SELECT\n\nSELECT — retrieve rows", 4...4, ["SELECT"]),
            C("Synopsis\n\nSELECT expression\n    [ FROM from_item ]", 5...7, ["SELECT", "Synopsis"]),
        ]),
    HTMLCase(name: "no h1 and a title of its own: the root above the h2s (Node.js style title)", input: """
        <title>File system | Node.js v18 Documentation</title>
        <div id="column2"><ul><li><a href="fs.html">File system</a></li></ul></div>
        <header><h1>Node.js v18 documentation</h1></header>
        <details id="toc" open><summary>Table of contents</summary><ul><li>x</li></ul></details>
        <div id="apicontent">
        <h2>Streams<span><a class="mark" href="#s" id="s">#</a></span><a aria-hidden="true" class="legacy"></a></h2>
        <p>Readable.</p>
        </div>
        """, title: "File system | Node.js v18 Documentation", expected: [
            C("Streams\n\nReadable.", 6...7, ["File system | Node.js v18 Documentation", "Streams"]),
        ]),
    HTMLCase(name: "a DocBook note's title labels the note; the section's heading goes on after it", input: """
        <html><head><title>9.26. Info</title></head><body>
        <div class="sect1"><h2 class="title">9.26. Info</h2>
        <p>Functions.</p>
        <div class="note"><h3 class="title">Note</h3><p>Be careful.</p></div>
        <p>More functions.</p>
        <div class="sect2"><h3 class="title">9.26.1. Access</h3><p>Privileges.</p></div>
        </div></body></html>
        """, title: "9.26. Info", expected: [
            C("9.26. Info\n\nFunctions.\n\nNote\n\nBe careful.\n\nMore functions.", 2...5, ["9.26. Info"]),
            C("9.26.1. Access\n\nPrivileges.", 6...6, ["9.26. Info", "9.26.1. Access"]),
        ]),
    HTMLCase(name: "Node.js: the [src] link is not part of the heading", input: """
        <title>Stream | Node.js v18 Documentation</title>
        <div id="apicontent">
        <h2>Stream<span><a class="mark" href="#stream" id="stream">#</a></span><a class="srclink" href="https://x/stream.js">[src]</a></h2>
        <p>Streams.</p>
        </div>
        """, title: "Stream", expected: [
            C("Stream\n\nStreams.", 3...4, ["Stream"]),
        ]),
    HTMLCase(name: "Sphinx and generic boilerplate are dropped", input: """
        <div class="related" role="navigation"><h3>Navigation</h3><ul><li>index</li></ul></div>
        <script>var x = "<p>not text</p>";</script><style>p { color: red }</style>
        <!-- a comment <p>hidden</p> -->
        <header><h1>Site name</h1></header><nav><a href="/">Home</a></nav>
        <div role="search"><form><input type="text" name="q"/></form></div>
        <section id="s">
        <h1>Real<a class="headerlink" href="#s" title="Permalink to this heading">¶</a></h1>
        <p>Body<span aria-hidden="true"> hidden</span> text<span hidden>gone</span>.</p>
        <noscript>Enable JS</noscript><template><p>tmpl</p></template><svg><title>icon</title><text>svg</text></svg>
        <button>Copy</button><select><option>a</option></select><textarea>typed</textarea>
        </section>
        <div class="sphinxsidebar" role="navigation"><h3>Table of Contents</h3></div>
        <div id="sidebarbutton">«</div>
        <div class="footer">&copy; Copyright</div>
        <footer>Built with Sphinx</footer><div role="contentinfo">(c)</div>
        """, title: "Real", expected: [
            C("Real\n\nBody text.", 7...8, ["Real"]),
        ]),
    HTMLCase(name: "dropped block elements still separate the text around them", input: """
        <p>one<div class="toc">toc</div>two<nav>n</nav>three</p>
        """, expected: [
            C("one\n\ntwo\n\nthree", 1...1),
        ]),
    HTMLCase(name: "entities: named, decimal, hex, legacy without semicolon, invalid, Windows-1252", input: """
        <p>&lt;tag&gt; &amp; &quot;q&quot; &#39;s &#x41;&#66; &copy; &mdash; &nbsp;x &unknown; &amp &ampx &#0; &#x110000; &#150; &hellip;&rarr;&Omega;&eacute;</p>
        """, expected: [
            C("<tag> & \"q\" 's AB © — x &unknown; & &ampx \u{FFFD} \u{FFFD} – …→Ωé", 1...1),
        ]),
    HTMLCase(name: "pre: verbatim lines, entities decoded, first newline dropped, blank lines kept", input: """
        <p>Run:</p>
        <pre>
          make   &amp;&amp;
        <b>install</b>

          done
        </pre>
        <p>After.</p>
        """, expected: [
            C("Run:\n\n  make   &&\ninstall\n\n  done\n\nAfter.", 1...8),
        ]),
    HTMLCase(name: "a pre is kept whole in one chunk when it fits", input: """
        <h1>T</h1>
        <p>one two three four five six seven eight nine ten eleven twelve</p>
        <pre>
        a b c d e f
        g h i j k l
        </pre>
        """, configuration: small, title: "T", expected: [
            C("T\n\none two three four five six seven eight nine ten eleven twelve", 1...2, ["T"]),
            C("a b c d e f\ng h i j k l", 4...5, ["T"]),
        ]),
    HTMLCase(name: "tables: one line per row, cells joined by | (empty ones keep their place), kept whole when they fit", input: """
        <p>one two three four five six seven eight nine ten eleven twelve</p>
        <table class="docutils">
        <thead><tr><th><p>Name</p></th><th>Size</th></tr></thead>
        <tbody><tr><td><p>int</p></td><td>4
        bytes</td></tr>
        <tr><td>x</td><td></td><td>y</td></tr><tr><td></td><td>z</td><td></td></tr></tbody>
        </table>
        <p>After.</p>
        """, configuration: small, expected: [
            C("one two three four five six seven eight nine ten eleven twelve", 1...1),
            C("Name | Size\nint | 4 bytes\nx | | y\n| z\n\nAfter.", 3...8),
        ]),
    HTMLCase(name: "lists: an item per line, paragraphs of one item separated, nested lists", input: """
        <ul class="simple">
        <li><p>one</p></li>
        <li><p>two</p><p>more of two</p>
        <ul><li>nested</li></ul></li>
        </ul>
        <dl><dt>term</dt><dd><p>definition</p></dd></dl>
        """, expected: [
            C("one\ntwo\n\nmore of two\nnested\n\nterm\ndefinition", 2...6),
        ]),
    HTMLCase(name: "br and headings spread over lines", input: """
        <h2>A long
            heading</h2>
        <p>line one<br>line two<BR/>three</p>
        """, expected: [
            C("A long heading\n\nline one\nline two\nthree", 1...3, ["A long heading"]),
        ]),
    HTMLCase(name: "malformed: uppercase tags, unquoted attributes, unclosed p and li, < in text, CDATA", input: """
        <P CLASS=intro>First para
        <P>Second with a < b and 3<4 and a <= b
        <UL><LI>one<LI>two</UL>
        <![CDATA[x < y && z]]>
        <DIV class=footer>gone</DIV>
        <p>end
        """, expected: [
            C("First para\n\nSecond with a < b and 3<4 and a <= b\n\none\ntwo\n\nx < y && z\n\nend", 1...6),
        ]),
    HTMLCase(name: "malformed: an unclosed comment, a tag cut by the end of input", input: """
        <p>kept</p>
        <!-- never closed <p>lost</p>
        """, expected: [
            C("kept", 1...1),
        ]),
    HTMLCase(name: "malformed: a tag cut by the end of input, quoted > in attributes", input: """
        <p title="a > b">kept</p><p>also <a href="x
        """, expected: [
            C("kept\n\nalso", 1...1),
        ]),
    HTMLCase(name: "head without end tag ends at body content; text in head is dropped", input: """
        <html><head><title>T</title>__TEMPLATE_TEXT__
        <meta charset="utf-8">
        <p>Visible.</p>
        """, title: "T", expected: [
            C("Visible.", 3...3, ["T"]),
        ]),
    HTMLCase(name: "CRLF line ends count as one", input: "<h1>A</h1>\r\n<p>x\r\ny</p>\r\n<pre>1\r\n2</pre>\r\n",
             title: "A", expected: [
                C("A\n\nx\ny\n\n1\n2", 1...5, ["A"]),
             ]),
]

@Suite struct HTMLChunkerTests {
    @Test(arguments: htmlCases)
    func chunks(_ c: HTMLCase) {
        let document = Chunker(configuration: c.configuration).parse(c.input, format: .html)
        #expect(document.chunks == c.expected)
        #expect(document.title == c.title)
        #expect(document.tags == [])
    }

    @Test(arguments: [
        ("page.html", DocumentFormat.html), ("INDEX.HTM", .html), ("guide.md.gz", .markdown), ("notes.TXT.GZ", .plainText),
        ("_sources/os.rst.txt.gz", .restructuredText), ("api/fs.html.gz", .html), ("a.rst.gz", .restructuredText),
    ])
    func formatDetection(_ name: String, _ format: DocumentFormat) {
        #expect(DocumentFormat.detect(fileName: name) == format)
    }

    @Test(arguments: ["archive.tar.gz", "x.gz", "page.xhtml", "fs.json.gz", "html"])
    func notDocuments(_ name: String) {
        #expect(DocumentFormat.detect(fileName: name) == nil)
    }

    @Test func compressedNames() {
        #expect(DocumentFormat.isCompressed(fileName: "a.md.GZ"))
        #expect(!DocumentFormat.isCompressed(fileName: "a.md"))
    }

    /// The title is shortened only when it starts with the first heading followed by a site-name separator.
    @Test(arguments: [
        ("<title>json — JSON encoder — Python 3.11 documentation</title><h1>json — JSON encoder</h1>", "json — JSON encoder"),
        ("<title>Install | Site</title><h2>Install</h2>", "Install"),
        ("<title>Installation guide</title><h1>Install</h1>", "Installation guide"),
        ("<title>  Spaced\n &amp; decoded  </title><p>x</p>", "Spaced & decoded"),
        ("<h1>Only a heading</h1>", "Only a heading"),
        ("<title></title><h2>Not a title</h2>", nil),
    ] as [(String, String?)])
    func title(_ input: String, _ title: String?) {
        #expect(Chunker().parse(input, format: .html).title == title)
    }

    /// Every chunk's lines point at the source lines its words come from.
    @Test func linesPointAtTheSource() {
        var html = "<html><body>\n<h1>Doc</h1>\n"
        for n in 0..<200 {
            html += "<p>para\(n) alpha beta\ngamma delta\(n)</p>\n"
            if n % 50 == 0 { html += "<h2>Part \(n)</h2>\n<pre>\ncode\(n) x\n  y\n</pre>\n" }
        }
        html += "</body></html>\n"
        let source = html.split(separator: "\n", omittingEmptySubsequences: false)
        let chunks = Chunker(configuration: ChunkingConfiguration(targetTokens: 40, maxTokens: 60, overlapTokens: 8))
            .parse(html, format: .html).chunks
        #expect(chunks.count > 10)
        var previous = 1
        for chunk in chunks {
            #expect(chunk.lines.lowerBound >= previous)
            previous = chunk.lines.lowerBound
            let cited = source[(chunk.lines.lowerBound - 1)..<chunk.lines.upperBound].joined(separator: "\n")
            for word in chunk.text.split(whereSeparator: { $0 == " " || $0 == "\n" }) {
                #expect(cited.contains(word), "\(word) not in lines \(chunk.lines)")
            }
            let firstWord = chunk.text.split(whereSeparator: { $0 == " " || $0 == "\n" }).first.map(String.init) ?? ""
            #expect(source[chunk.lines.lowerBound - 1].contains(firstWord), "first line of \(chunk.lines)")
        }
    }

    /// Garbage never crashes and yields chunks within the caps, with lines inside the input.
    @Test func garbage() {
        let pieces = ["<", ">", "</", "<!--", "-->", "<![CDATA[", "]]>", "&", "&#", "&#x", ";", "\"", "'", "=", " ", "\n",
                      "\r", "<p", "<pre>", "</pre>", "<table>", "<td>", "<li>", "<h1>", "</h2>", "<script>", "</script",
                      "<title>", "<div class=toc>", "a", "é", "\u{0}", "<a href='", "/>", "<br/>", "&amp", "&#1114112;"]
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<200 {
            var text = ""
            for _ in 0..<Int.random(in: 0..<300, using: &generator) { text += pieces.randomElement(using: &generator)! }
            let lines = text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r" || $0 == "\r\n" }).count
            for configuration in [ChunkingConfiguration(), ChunkingConfiguration(targetTokens: 6, maxTokens: 10, overlapTokens: 3)] {
                for chunk in Chunker(configuration: configuration).parse(text, format: .html).chunks {
                    #expect(chunk.lines.lowerBound >= 1 && chunk.lines.upperBound <= max(lines, 1), "\(text.debugDescription)")
                    #expect(!chunk.text.isEmpty && !chunk.text.utf8.contains(0x0D))
                    #expect(Chunker.estimateTokens(chunk.text[...]) <= configuration.maxTokens)
                }
            }
        }
    }
}
