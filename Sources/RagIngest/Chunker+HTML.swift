/// HTML: the visible text of a page, laid out in lines that remember their source lines, then packed like Markdown.
///
/// `HTMLExtractor` is a tolerant, single-pass tokenizer (no DOM): it never fails, and its work is linear in the input
/// (implied end tags look at most 16 open elements; end tags of elements that are not open are ignored in O(1)).
/// What it leaves out: comments, `<head>` (but `<title>`), `<script>`, `<style>`, `<noscript>`, `<template>`,
/// `<svg>`, form controls, `<nav>`, `<header>`, `<footer>`, elements with `role` navigation, search, banner or
/// contentinfo, `aria-hidden="true"` or `hidden`, and the navigation boilerplate of Sphinx (`sphinxsidebar`,
/// `related`, `footer`, `headerlink` "¶", `#sidebarbutton`, Read the Docs' `wy-nav-side`, `rst-footer-buttons`),
/// DocBook (`navheader`, `navfooter`, `toc`) and Node.js (`#column2`, `#toc`, `a.mark` "#", `a.srclink` "[src]").
/// A heading inside a note, tip, warning, caution or important box is the box's label: a block, not a section.
///
/// Layout: whitespace collapses outside `<pre>`; a source line break inside a paragraph stays a line break (so
/// chunks cite precise lines); block elements end a block; `<h1>`–`<h6>` become headings; a list (`ul`, `ol`,
/// `dl`), a `<table>` (one line per row, cells joined by ` | `) and a `<pre>` (lines verbatim) each stay one block.
struct HTMLExtractor {
    let buf: UnsafeBufferPointer<UInt8>
    private let n: Int
    private var pos = 0
    private(set) var layout = HTMLLayout()

    // Source lines.
    private var lineStarts: [Int] = []
    private var lineCursor = 0

    // Open elements.
    private struct OpenElement {
        var name: String
        var dropped: Bool
        /// Opened outside any dropped element and not dropped itself: its layout effects apply.
        var visible: Bool
        /// A dropped block-level element outside any other: a block boundary where it was.
        var droppedBlock: Bool
        var kind: HTMLTagKind
        /// A note, tip or warning box (DocBook `div.note`, …): headings inside it are its label, not sections.
        var admonition = false
    }
    private var stack: [OpenElement] = []
    private var admonitionDepth = 0
    private var openCounts: [String: Int] = [:]
    private var skipDepth = 0
    private var preDepth = 0
    private enum Container { case list, table }
    private var containers: [Container] = []
    /// The next byte is a newline right after `<pre>`, which HTML drops.
    private var dropNewlineAt = -1
    private var svgDepth = 0

    // The line being built (its bytes are at the end of `layout.text`).
    private var lineHasText = false
    private var lineFirst = 0
    private var lineLast = 0
    private var pendingSpace = false
    /// Cells started since the last text of the row (each is a ` | ` before the next text; empty ones keep their place).
    private var pendingCells = 0
    private var cellsInRow = 0
    /// A paragraph ended inside a list item: a blank line goes before the next text of the same item.
    private var pendingBlank = false
    private var itemHasText = false
    /// First layout line of the open block, or -1.
    private var blockStart = -1
    private var lastTextLine = -1
    private var lastLineBlank = true
    /// The heading being read: its level.
    private var headingLevel = 0

    init(_ buf: UnsafeBufferPointer<UInt8>) {
        self.buf = buf
        n = buf.count
        // Line starts, counted as ChunkSourceText counts them (`\n`, `\r\n`, `\r`; a BOM is not part of line 1).
        let bom = n >= 3 && buf[0] == 0xEF && buf[1] == 0xBB && buf[2] == 0xBF
        var i = bom ? 3 : 0
        lineStarts.reserveCapacity(n / 40 + 1)
        lineStarts.append(i)
        while i < n {
            let b = buf[i]
            i += 1
            if b == 0x0A {
                lineStarts.append(i)
            } else if b == 0x0D {
                if i < n, buf[i] == 0x0A { i += 1 }
                lineStarts.append(i)
            }
        }
        layout.text.reserveCapacity(n / 2)
    }

    /// The 0-based source line of byte `offset`; offsets must not decrease between calls.
    @inline(__always)
    private mutating func sourceLine(_ offset: Int) -> Int {
        while lineCursor + 1 < lineStarts.count, lineStarts[lineCursor + 1] <= offset { lineCursor += 1 }
        return lineCursor
    }

    mutating func run() {
        if n >= 3, buf[0] == 0xEF, buf[1] == 0xBB, buf[2] == 0xBF { pos = 3 }
        while pos < n {
            if buf[pos] == 0x3C {  // <
                markup()
            } else {
                var end = pos
                while end < n, buf[end] != 0x3C { end += 1 }
                text(pos, end)
                pos = end
            }
        }
        finishHeading()
        closeBlock()
    }

    // MARK: Tokenizer

    /// At a `<`: a comment, CDATA, doctype or processing instruction, an end tag, a start tag, or a literal `<`.
    private mutating func markup() {
        let next = pos + 1
        guard next < n else { text(pos, n); pos = n; return }
        let c = buf[next]
        if c == 0x21 {  // !
            if startsWith("<!--", at: pos) {
                pos = commentEnd(from: pos + 4)
            } else if startsWith("<![CDATA[", at: pos) {
                let start = pos + 9
                let close = find("]]>", from: start) ?? n
                if skipDepth == 0 { literalText(start, close) }
                pos = min(n, close + 3)
            } else {
                pos = afterByte(0x3E, from: next)
            }
        } else if c == 0x3F {  // ?
            pos = afterByte(0x3E, from: next)
        } else if c == 0x2F {  // /
            if next + 1 < n, isASCIILetter(buf[next + 1]) {
                let (name, nameEnd) = tagName(from: next + 1)
                guard let tag = scanAttributes(from: nameEnd) else { pos = n; return }
                pos = tag.end
                endTag(name)
            } else if next + 1 < n, buf[next + 1] == 0x3E {
                pos = next + 2
            } else if next + 1 >= n {
                text(pos, n)
                pos = n
            } else {
                pos = afterByte(0x3E, from: next)
            }
        } else if isASCIILetter(c) {
            let (name, nameEnd) = tagName(from: next)
            guard let tag = scanAttributes(from: nameEnd) else { pos = n; return }
            pos = tag.end
            startTag(name, tag)
        } else {
            text(pos, next)
            pos = next
        }
    }

    private struct Tag {
        /// Just past the `>`.
        var end: Int
        var selfClosing = false
        var classes: Range<Int>?
        var id: Range<Int>?
        var role: Range<Int>?
        var ariaHidden: Range<Int>?
        var hidden = false
    }

    /// A lower-cased tag name (at most 64 bytes kept) and where it ends.
    private func tagName(from start: Int) -> (String, Int) {
        var i = start
        while i < n {
            let b = buf[i]
            if b == 0x3E || b == 0x2F || isHTMLSpace(b) { break }
            i += 1
        }
        var bytes = [UInt8]()
        bytes.reserveCapacity(min(i - start, 64))
        for k in start..<min(i, start + 64) {
            let b = buf[k]
            bytes.append(asciiLower(b))
        }
        return (String(decoding: bytes, as: UTF8.self), i)
    }

    /// Attributes up to the closing `>` (quoted values may hold `>` and line breaks); nil at the end of the input.
    private func scanAttributes(from start: Int) -> Tag? {
        var tag = Tag(end: start)
        var i = start
        while true {
            var slash = false
            while i < n, isHTMLSpace(buf[i]) || buf[i] == 0x2F {
                slash = buf[i] == 0x2F
                i += 1
            }
            guard i < n else { return nil }
            if buf[i] == 0x3E {
                tag.end = i + 1
                tag.selfClosing = slash
                return tag
            }
            let nameStart = i
            i += 1  // a name may start with `=`
            while i < n {
                let b = buf[i]
                if isHTMLSpace(b) || b == 0x2F || b == 0x3E || b == 0x3D { break }
                i += 1
            }
            let nameRange = nameStart..<i
            while i < n, isHTMLSpace(buf[i]) { i += 1 }
            var value: Range<Int>?
            if i < n, buf[i] == 0x3D {
                i += 1
                while i < n, isHTMLSpace(buf[i]) { i += 1 }
                guard i < n else { return nil }
                let quote = buf[i]
                if quote == 0x22 || quote == 0x27 {
                    var close = i + 1
                    while close < n, buf[close] != quote { close += 1 }
                    guard close < n else { return nil }
                    value = (i + 1)..<close
                    i = close + 1
                } else {
                    let valueStart = i
                    while i < n, !isHTMLSpace(buf[i]), buf[i] != 0x3E { i += 1 }
                    value = valueStart..<i
                }
            }
            switch nameRange.count {
            case 2 where equalsLower(nameRange, "id"): tag.id = value
            case 4 where equalsLower(nameRange, "role"): tag.role = value
            case 5 where equalsLower(nameRange, "class"): tag.classes = value
            case 6 where equalsLower(nameRange, "hidden"): tag.hidden = true
            case 11 where equalsLower(nameRange, "aria-hidden"): tag.ariaHidden = value
            default: break
            }
        }
    }

    /// Past the comment whose body starts at `start` (`-->`, `--!>`; `<!-->` and `<!--->` are empty comments).
    private func commentEnd(from start: Int) -> Int {
        if start < n, buf[start] == 0x3E { return start + 1 }
        if start + 1 < n, buf[start] == 0x2D, buf[start + 1] == 0x3E { return start + 2 }
        var i = start
        while i + 2 < n {
            if buf[i] == 0x2D, buf[i + 1] == 0x2D {
                if buf[i + 2] == 0x3E { return i + 3 }
                if buf[i + 2] == 0x21, i + 3 < n, buf[i + 3] == 0x3E { return i + 4 }
            }
            i += 1
        }
        return n
    }

    /// Whether `literal` (ASCII letters in it matched case-insensitively) starts at `start`.
    private func startsWith(_ literal: StaticString, at start: Int) -> Bool {
        let count = literal.utf8CodeUnitCount
        guard start + count <= n else { return false }
        let p = literal.utf8Start
        for k in 0..<count where asciiLower(buf[start + k]) != asciiLower(p[k]) { return false }
        return true
    }

    /// The first occurrence of `literal` (exactly) at or after `start`.
    private func find(_ literal: StaticString, from start: Int) -> Int? {
        let count = literal.utf8CodeUnitCount
        let p = literal.utf8Start
        var i = start
        outer: while i + count <= n {
            for k in 0..<count where buf[i + k] != p[k] {
                i += 1
                continue outer
            }
            return i
        }
        return nil
    }

    private func afterByte(_ byte: UInt8, from start: Int) -> Int {
        var i = start
        while i < n, buf[i] != byte { i += 1 }
        return min(n, i + 1)
    }

    private func equalsLower(_ range: Range<Int>, _ literal: StaticString) -> Bool {
        let p = literal.utf8Start
        guard range.count == literal.utf8CodeUnitCount else { return false }
        for (k, i) in range.enumerated() where asciiLower(buf[i]) != p[k] { return false }
        return true
    }

    /// Whether a space-separated attribute value holds one of `tokens` (ASCII case-insensitively).
    private func hasToken(_ range: Range<Int>?, _ tokens: [StaticString]) -> Bool {
        guard let range else { return false }
        var i = range.lowerBound
        while i < range.upperBound {
            while i < range.upperBound, isHTMLSpace(buf[i]) { i += 1 }
            let start = i
            while i < range.upperBound, !isHTMLSpace(buf[i]) { i += 1 }
            if start < i, tokens.contains(where: { equalsLower(start..<i, $0) }) { return true }
        }
        return false
    }

    // MARK: Elements

    private mutating func startTag(_ name: String, _ tag: Tag) {
        var kind = HTMLTagKind.of(name)
        // DocBook labels a note `<div class="note"><h3 class="title">Note</h3>`: a block, or it would head the rest of
        // the page.
        if kind == .heading, admonitionDepth > 0 { kind = .block }
        if openCounts["head", default: 0] > 0, !kind.belongsInHead, name != "head" { popThrough("head") }
        switch kind {
        case .block, .list, .table, .pre, .heading:
            if stack.last?.name == "p" { pop() }
        case .item:
            closeOpen(name == "li" ? ["li"] : ["dt", "dd"], stoppingAt: ["ul", "ol", "dl", "menu", "dir", "table"])
        case .row:
            closeOpen(["tr"], stoppingAt: ["table", "thead", "tbody", "tfoot"])
        case .cell:
            closeOpen(["td", "th"], stoppingAt: ["tr", "table"])
        default:
            if name == "a", openCounts["a", default: 0] > 0 { closeOpen(["a"], stoppingAt: []) }
        }
        let dropped = kind == .dropped || isBoilerplate(name, tag)
        let visible = skipDepth == 0 && !dropped
        // What is left out still separates the text around it, unless it is inline (`a.headerlink`, a hidden span).
        let droppedBlock = skipDepth == 0 && dropped && (kind.isBlockLevel || HTMLTagKind.droppedBlocks.contains(name))

        if kind.isRawText {
            // Raw text: no markup inside, up to the matching end tag (a self-closed one, as XHTML writes it, is empty).
            guard !tag.selfClosing else { return }
            let (contentEnd, resume) = rawTextEnd(name)
            if name == "title" {
                if layout.title == nil, svgDepth == 0 { layout.title = collapsedText(pos, contentEnd, limit: 512) }
            } else if name == "xmp", visible {
                openEffects(.pre)
                literalText(pos, contentEnd)
                closeEffects(.pre)
            }
            pos = resume
            return
        }
        if kind == .void || tag.selfClosing {
            if visible { openEffects(kind); closeEffects(kind) }
            if droppedBlock { blockBoundary() }
            return
        }
        if droppedBlock { blockBoundary() }
        let admonition = hasToken(tag.classes, ["note", "tip", "warning", "caution", "important", "admonition"])
        stack.append(OpenElement(name: name, dropped: dropped, visible: visible, droppedBlock: droppedBlock, kind: kind, admonition: admonition))
        openCounts[name, default: 0] += 1
        if admonition { admonitionDepth += 1 }
        if dropped { skipDepth += 1 }
        if name == "svg" { svgDepth += 1 }
        if visible {
            openEffects(kind)
            if kind == .heading, let level = name.utf8.last.map({ Int($0) - 0x30 }) {
                headingLevel = level
            }
        }
    }

    private mutating func endTag(_ name: String) {
        if headingLevel > 0, HTMLTagKind.of(name) == .heading { finishHeading() }
        guard openCounts[name, default: 0] > 0 else {
            // `</p>` and `</br>` without a start tag act as `<p></p>` and `<br>`, as in browsers.
            if skipDepth == 0, name == "p" || name == "br" {
                let kind = HTMLTagKind.of(name)
                openEffects(kind)
                closeEffects(kind)
            }
            return
        }
        popThrough(name)
    }

    private mutating func pop() {
        guard let element = stack.popLast() else { return }
        openCounts[element.name, default: 1] -= 1
        if element.admonition { admonitionDepth -= 1 }
        if element.dropped { skipDepth -= 1 }
        if element.name == "svg" { svgDepth -= 1 }
        if element.visible { closeEffects(element.kind) }
        if element.droppedBlock { blockBoundary() }
    }

    /// Pops open elements up to and including the innermost `name` (which must be open).
    private mutating func popThrough(_ name: String) {
        while let last = stack.last {
            pop()
            if last.name == name { return }
        }
    }

    /// Implied end tags: pops through the innermost of `names` if it is among the 16 innermost open elements and
    /// no element of `stoppingAt` is open inside it.
    private mutating func closeOpen(_ names: [String], stoppingAt: [String]) {
        var index = stack.count - 1
        while index >= 0, index >= stack.count - 16 {
            let name = stack[index].name
            if names.contains(name) {
                while stack.count > index { pop() }
                return
            }
            if stoppingAt.contains(name) { return }
            index -= 1
        }
    }

    /// Navigation and other page furniture.
    private func isBoilerplate(_ name: String, _ tag: Tag) -> Bool {
        if tag.hidden { return true }
        if let hidden = tag.ariaHidden, equalsLower(hidden, "true") { return true }
        if hasToken(tag.role, ["navigation", "search", "banner", "contentinfo"]) { return true }
        if hasToken(tag.classes, ["sphinxsidebar", "related", "footer", "headerlink", "navigation", "navheader",
                                  "navfooter", "toc", "wy-nav-side", "rst-footer-buttons"]) { return true }
        if name == "a", hasToken(tag.classes, ["mark", "srclink"]) { return true }
        if hasToken(tag.id, ["sidebarbutton", "column2", "toc"]) { return true }
        return false
    }

    /// The end of a raw-text element's content and where parsing resumes (past its end tag, or the input's end).
    private func rawTextEnd(_ name: String) -> (Int, Int) {
        let nameBytes = Array(name.utf8)
        var i = pos
        while i + 1 < n {
            if buf[i] == 0x3C, buf[i + 1] == 0x2F, i + 2 + nameBytes.count <= n {
                var match = true
                for k in 0..<nameBytes.count where asciiLower(buf[i + 2 + k]) != nameBytes[k] { match = false; break }
                let after = i + 2 + nameBytes.count
                if match, after == n || isHTMLSpace(buf[after]) || buf[after] == 0x3E || buf[after] == 0x2F {
                    return (i, afterByte(0x3E, from: after))
                }
            }
            i += 1
        }
        return (n, n)
    }

    // MARK: Layout effects

    private mutating func openEffects(_ kind: HTMLTagKind) {
        switch kind {
        case .block: blockBoundary()
        case .heading:
            finishHeading()
            closeBlock()
        case .list, .table:
            blockBoundary()
            containers.append(kind == .list ? .list : .table)
            if kind == .table { cellsInRow = 0 }
        case .pre:
            blockBoundary()
            preDepth += 1
            dropNewlineAt = pos
        case .item: itemBoundary()
        case .row: rowBoundary()
        case .cell:
            if cellsInRow > 0 { pendingCells += 1 }
            cellsInRow += 1
        case .br: lineBreak()
        default: break
        }
    }

    private mutating func closeEffects(_ kind: HTMLTagKind) {
        switch kind {
        case .block: blockBoundary()
        case .heading: finishHeading()
        case .list, .table:
            if !containers.isEmpty { containers.removeLast() }
            blockBoundary()
        case .pre:
            if lineHasText { endLine() }
            preDepth = max(0, preDepth - 1)
            blockBoundary()
        case .item: itemBoundary()
        case .row: rowBoundary()
        case .cell: if lineHasText { pendingSpace = true }
        default: break
        }
    }

    /// A block element starts or ends: a new block at the top level, a new paragraph inside a list item, a space
    /// inside a table cell.
    private mutating func blockBoundary() {
        finishHeading()
        switch containers.last {
        case nil:
            closeBlock()
        case .list:
            endLine()
            if itemHasText { pendingBlank = true }
        case .table:
            if lineHasText { pendingSpace = true }
        }
    }

    /// `li`, `dt`, `dd`: a new line (a space inside a table cell).
    private mutating func itemBoundary() {
        finishHeading()
        if containers.last == .table {
            if lineHasText { pendingSpace = true }
            return
        }
        endLine()
        pendingBlank = false
        itemHasText = false
    }

    private mutating func rowBoundary() {
        finishHeading()
        endLine()
        pendingBlank = false
        pendingCells = 0
        cellsInRow = 0
    }

    private mutating func lineBreak() {
        if headingLevel > 0 || (containers.last == .table && preDepth == 0) {
            if lineHasText { pendingSpace = true }
        } else {
            endLine()
        }
    }

    // MARK: Text

    /// Text between tags (entities decoded) at `buf[start..<end]`.
    /// Text inside `<head>` is dropped (unlike browsers, which end the head there: stray template text in a head,
    /// as some generators leave, stays out).
    private mutating func text(_ start: Int, _ end: Int) {
        guard skipDepth == 0 else { return }
        var i = start
        while i < end {
            let b = buf[i]
            if b == 0x26, let (scalar, length) = HTMLEntities.decode(buf, at: i, end: end) {  // &
                putScalar(scalar, at: i)
                i += length
                continue
            }
            putByte(b, at: i, next: i + 1 < end ? buf[i + 1] : 0)
            i += 1
        }
    }

    /// CDATA and `<xmp>`: bytes as they are.
    private mutating func literalText(_ start: Int, _ end: Int) {
        guard start < end else { return }
        for i in start..<end { putByte(buf[i], at: i, next: i + 1 < end ? buf[i + 1] : 0) }
    }

    private var inPre: Bool { preDepth > 0 && headingLevel == 0 }

    /// One source byte of text.
    @inline(__always)
    private mutating func putByte(_ b: UInt8, at offset: Int, next: UInt8) {
        if inPre {
            if offset == dropNewlineAt, b == 0x0A || b == 0x0D {
                if b == 0x0D, next == 0x0A { dropNewlineAt = offset + 1 }
                return
            }
            if b == 0x0A {
                if offset > 0, buf[offset - 1] == 0x0D { return }  // the second byte of `\r\n`
                preNewline(at: offset)
            } else if b == 0x0D {
                preNewline(at: offset)
            } else {
                visible(b, at: offset)
            }
        } else if isHTMLSpace(b) {
            whitespace(newline: b == 0x0A || b == 0x0D)
        } else {
            visible(b, at: offset)
        }
    }

    /// A decoded character reference.
    private mutating func putScalar(_ value: UInt32, at offset: Int) {
        var scalar = value
        // White space and no-break space are spaces; other control characters are not text.
        if scalar == 0x09 && inPre {
            visible(0x09, at: offset)
            return
        }
        if scalar < 0x20 || scalar == 0x7F || scalar == 0xA0 || (scalar >= 0x80 && scalar < 0xA0) {
            if inPre { visible(0x20, at: offset) } else { whitespace(newline: false) }
            return
        }
        if Unicode.Scalar(scalar) == nil { scalar = 0xFFFD }
        for byte in UTF8.encode(Unicode.Scalar(scalar)!)! { visible(byte, at: offset) }
    }

    private mutating func whitespace(newline: Bool) {
        guard lineHasText else { return }
        if newline, headingLevel == 0, containers.last != .table {
            endLine()
        } else {
            pendingSpace = true
        }
    }

    /// Appends a byte of text (in `<pre>`, any byte; elsewhere, not white space) to the line.
    @inline(__always)
    private mutating func visible(_ b: UInt8, at offset: Int) {
        dropNewlineAt = -1
        if pendingBlank {
            pendingBlank = false
            if lineHasText { endLine() }
            if blockStart >= 0 { blankLine() }
        }
        let line = sourceLine(offset)
        if lineHasText {
            if pendingCells > 0 {
                for _ in 0..<pendingCells { layout.text.append(contentsOf: [0x20, 0x7C]) }
                layout.text.append(0x20)
            } else if pendingSpace {
                layout.text.append(0x20)
            }
        } else {
            lineHasText = true
            lineFirst = line
            for _ in 0..<pendingCells { layout.text.append(contentsOf: [0x7C, 0x20]) }  // empty leading cells
        }
        pendingCells = 0
        pendingSpace = false
        lineLast = line
        itemHasText = true
        layout.text.append(b)
    }

    private mutating func preNewline(at offset: Int) {
        dropNewlineAt = -1
        if lineHasText {
            endLine()
        } else if blockStart >= 0 {
            pendingBlank = false
            let line = sourceLine(offset)
            appendLine(first: line, last: line, blank: true)
        }
    }

    // MARK: Lines and blocks

    private mutating func appendLine(first: Int, last: Int, blank: Bool) {
        layout.text.append(0x0A)
        layout.firstLine.append(first)
        layout.lastLine.append(last)
        lastLineBlank = blank
    }

    /// Ends the line being built, if it has text.
    private mutating func endLine() {
        pendingSpace = false
        pendingCells = 0
        guard lineHasText else { return }
        lineHasText = false
        appendLine(first: lineFirst, last: lineLast, blank: false)
        let index = layout.firstLine.count - 1
        if blockStart < 0, headingLevel == 0 { blockStart = index }
        lastTextLine = index
    }

    /// An empty line after the last one (none at the start or after another empty line).
    private mutating func blankLine() {
        guard !lastLineBlank, let last = layout.lastLine.last else { return }
        appendLine(first: last, last: last, blank: true)
    }

    /// Ends the open block and separates it from what follows.
    private mutating func closeBlock() {
        endLine()
        pendingBlank = false
        if blockStart >= 0 {
            layout.events.append(.block(first: blockStart, last: max(blockStart, lastTextLine)))
            blockStart = -1
        }
        blankLine()
    }

    /// Ends the heading being read, if any (an empty heading is no heading).
    private mutating func finishHeading() {
        guard headingLevel > 0 else { return }
        let level = headingLevel
        var start = layout.text.count
        while start > 0, layout.text[start - 1] != 0x0A { start -= 1 }
        let hasText = lineHasText
        let textRange = start..<layout.text.count
        var title = ""
        if hasText {
            var end = min(textRange.upperBound, start + 512)
            while end > start, end < textRange.upperBound, layout.text[end] & 0xC0 == 0x80 { end -= 1 }
            title = String(decoding: layout.text[start..<end], as: UTF8.self)
        }
        endLine()
        headingLevel = 0
        guard hasText else { return }
        layout.events.append(.heading(level: level, text: title, line: layout.firstLine.count - 1))
        blankLine()
    }

    /// Text of `<title>`: entities decoded, white space collapsed, at most `limit` bytes (cut at a scalar boundary).
    private func collapsedText(_ start: Int, _ end: Int, limit: Int) -> String? {
        var bytes: [UInt8] = []
        var space = false
        var i = start
        while i < end, bytes.count < limit + 4 {
            let b = buf[i]
            var encoded: [UInt8] = []
            if b == 0x26, let (scalar, length) = HTMLEntities.decode(buf, at: i, end: end) {
                i += length
                let isSpace = scalar < 0x21 || scalar == 0x7F || scalar == 0xA0 || (scalar >= 0x80 && scalar < 0xA0)
                if !isSpace { encoded = Array(UTF8.encode(Unicode.Scalar(scalar) ?? "\u{FFFD}")!) }
            } else {
                i += 1
                if b >= 0x21 && b != 0x7F { encoded = [b] }  // raw bytes, multi-byte sequences included
            }
            if encoded.isEmpty {
                space = !bytes.isEmpty
                continue
            }
            if space { bytes.append(0x20) }
            space = false
            bytes.append(contentsOf: encoded)
        }
        if bytes.count > limit {
            var cut = limit
            while cut > 0, bytes[cut] & 0xC0 == 0x80 { cut -= 1 }
            bytes.removeSubrange(cut...)
        }
        return bytes.isEmpty ? nil : String(decoding: bytes, as: UTF8.self)
    }
}

/// The extracted text and its structure.
struct HTMLLayout {
    /// Lines ended by `\n`; an empty line separates blocks (and paragraphs of a list item).
    var text: [UInt8] = []
    /// First and last source line (0-based) of each line of `text`.
    var firstLine: [Int] = []
    var lastLine: [Int] = []
    var events: [HTMLLayoutEvent] = []
    /// The text of the first `<title>` (not one inside `<svg>`).
    var title: String?

    /// Separators between a page's own title and a site name in `<title>` ("json — … — Python 3.11 documentation").
    static let titleSeparators = [" — ", " – ", " - ", " | ", " · ", " :: "]

    /// Packs the layout into chunks whose line ranges point into the HTML source.
    ///
    /// Title: `<title>`, shortened to the first heading when it starts with it followed by a site-name separator;
    /// without `<title>`, the first `<h1>`. When the page has no `<h1>`, the title is the root of every heading
    /// trail (a heading repeating it directly below the root is not repeated).
    func chunks(configuration: ChunkingConfiguration) -> (title: String?, chunks: [ChunkDraft]) {
        var firstHeading: String?
        var firstH1: String?
        for case .heading(let level, let text, _) in events {
            if firstHeading == nil { firstHeading = text }
            if level == 1 { firstH1 = text; break }
        }
        var title = self.title
        if let full = title, let heading = firstHeading,
           full == heading || Self.titleSeparators.contains(where: { full.hasPrefix(heading + $0) }) {
            title = heading
        }
        if title == nil { title = firstH1 }
        let root = firstH1 == nil ? title : nil

        let drafts: [ChunkDraft] = text.withUnsafeBufferPointer { out in
            let source = ChunkSourceText(out)
            var packer = ChunkPacker(source: source, configuration: configuration)
            var trail: [(level: Int, text: String)] = root.map { [(0, $0)] } ?? []
            if !trail.isEmpty { packer.startSection(trail: trail.map(\.text)) }
            for event in events {
                switch event {
                case .heading(let level, let text, let line):
                    while let top = trail.last, top.level >= level { trail.removeLast() }
                    if !(trail.count == 1 && trail[0].level == 0 && trail[0].text == text) {
                        trail.append((level, text))
                    }
                    packer.startSection(trail: trail.map(\.text))
                    packer.addBlock(first: line, last: line, heading: true)
                case .block(let first, let last):
                    packer.addBlock(first: first, last: last)
                }
            }
            return packer.finish()
        }
        let chunks = drafts.map { draft in
            let first = firstLine[draft.lines.lowerBound - 1]
            let last = max(first, lastLine[draft.lines.upperBound - 1])
            return ChunkDraft(text: draft.text, lines: (first + 1)...(last + 1), headings: draft.headings)
        }
        return (title, chunks)
    }
}

enum HTMLLayoutEvent {
    /// A heading (its text at most 512 bytes) on layout line `line` (0-based).
    case heading(level: Int, text: String, line: Int)
    /// Layout lines `first...last` (0-based) to keep together where size allows.
    case block(first: Int, last: Int)
}

/// What an element does to the layout.
enum HTMLTagKind: Equatable {
    case inline, block, heading, list, item, table, row, cell, pre, br, void, dropped
    /// `<title>`, `<script>`, `<style>`…: raw text up to the matching end tag.
    case rawText

    static let kinds: [String: HTMLTagKind] = {
        var kinds: [String: HTMLTagKind] = [:]
        for name in ["p", "div", "section", "article", "main", "aside", "blockquote", "address", "figure", "figcaption",
                     "details", "summary", "fieldset", "legend", "center", "hgroup", "body", "html", "caption", "form",
                     "dialog", "search", "hr", "frameset"] { kinds[name] = .block }
        for name in ["h1", "h2", "h3", "h4", "h5", "h6"] { kinds[name] = .heading }
        for name in ["ul", "ol", "dl", "menu", "dir"] { kinds[name] = .list }
        for name in ["li", "dt", "dd"] { kinds[name] = .item }
        kinds["table"] = .table
        kinds["tr"] = .row
        for name in ["td", "th"] { kinds[name] = .cell }
        for name in ["pre", "listing"] { kinds[name] = .pre }
        kinds["br"] = .br
        for name in ["area", "base", "col", "embed", "img", "input", "link", "meta", "param", "source", "track", "wbr",
                     "keygen", "basefont", "bgsound", "frame"] { kinds[name] = .void }
        for name in ["head", "noscript", "template", "nav", "header", "footer", "svg", "button", "select", "datalist",
                     "object", "canvas", "audio", "video"] { kinds[name] = .dropped }
        for name in ["title", "script", "style", "textarea", "iframe", "noembed", "noframes", "xmp"] { kinds[name] = .rawText }
        return kinds
    }()

    static func of(_ name: String) -> HTMLTagKind { kinds[name] ?? .inline }

    var isRawText: Bool { self == .rawText }

    /// Block-level: a boundary between blocks or lines.
    var isBlockLevel: Bool {
        switch self {
        case .block, .heading, .list, .item, .table, .row, .pre: return true
        default: return false
        }
    }

    /// Dropped elements that are block-level (the others, such as `<svg>` or `<button>`, are inline).
    static let droppedBlocks: Set<String> = ["head", "noscript", "template", "nav", "header", "footer"]

    /// Elements that may appear in `<head>` without ending it.
    var belongsInHead: Bool { self == .rawText || self == .void || self == .dropped }
}

@inline(__always)
func isHTMLSpace(_ b: UInt8) -> Bool { b == 0x20 || b == 0x0A || b == 0x09 || b == 0x0D || b == 0x0C }

@inline(__always)
func isASCIILetter(_ b: UInt8) -> Bool { b | 0x20 >= 0x61 && b | 0x20 <= 0x7A }

@inline(__always)
func asciiLower(_ b: UInt8) -> UInt8 { b >= 0x41 && b <= 0x5A ? b | 0x20 : b }
