/// reStructuredText block structure: section titles (underline, or overline and underline, of one punctuation
/// character, at least as long as the title or — as docutils allows — at least 4 long; levels by order of first
/// appearance of each style), explicit markup (directives kept with their bodies; comments, targets and a
/// few Sphinx housekeeping directives dropped), paragraphs with their indented continuation (literal blocks after
/// `::`, definitions, list item bodies), and runs of list items.
struct ReSTParser {
    let source: ChunkSourceText
    var packer: ChunkPacker
    /// The document title: the first section title.
    private(set) var title: String?
    private var styles: [UInt16] = []
    private var trail: [(level: Int, text: String)] = []
    private var pending: (first: Int, last: Int, isList: Bool)?

    /// Directives whose whole block is left out of chunks.
    static let droppedDirectives: Set<String> = [
        "toctree", "highlight", "highlightlang", "sectionauthor", "moduleauthor", "codeauthor",
        "tabularcolumns", "default-role", "default-domain",
    ]

    init(source: ChunkSourceText, packer: ChunkPacker) {
        self.source = source
        self.packer = packer
    }

    private var buf: UnsafeBufferPointer<UInt8> { source.buf }

    mutating func run() {
        let n = source.count
        var i = 0
        while i < n {
            if source.isBlank(i) {
                i += 1
                continue
            }
            let (columns, p) = source.indent(i, tabWidth: 8)
            let end = source.ends[i]
            if columns == 0 {
                if let over = adornment(i) {
                    if i + 2 < n, !source.isBlank(i + 1), adornment(i + 1) == nil,
                       let under = adornment(i + 2), under.char == over.char {
                        let range = source.trimmed(source.starts[i + 1]..<source.ends[i + 1])
                        if over.length >= 4 || over.length >= source.scalarCount(range) {
                            heading(style: over.char, overline: true, text: source.string(range), line: i + 1)
                            i += 3
                            continue
                        }
                    }
                    if over.length >= 4 {  // a transition
                        flushPending()
                        i += 1
                        continue
                    }
                } else if i + 1 < n, let under = adornment(i + 1) {
                    let range = source.trimmed(p..<end)
                    if under.length >= 4 || under.length >= source.scalarCount(range) {
                        heading(style: under.char, overline: false, text: source.string(range), line: i)
                        i += 2
                        continue
                    }
                }
                if buf[p] == 0x2E, let keep = explicitMarkup(p, end) {  // .
                    let last = explicitEnd(i)
                    if keep {
                        emit(i, last, isList: false)
                    } else {
                        flushPending()
                    }
                    i = last + 1
                    continue
                }
            }
            let last = blockEnd(i, base: columns)
            emit(i, last, isList: isListItem(p, end))
            i = last + 1
        }
        flushPending()
    }

    private mutating func heading(style: UInt8, overline: Bool, text: String, line: Int) {
        flushPending()
        let key = UInt16(style) << 1 | (overline ? 1 : 0)
        let level: Int
        if let index = styles.firstIndex(of: key) {
            level = index + 1
        } else {
            styles.append(key)
            level = styles.count
        }
        while let top = trail.last, top.level >= level { trail.removeLast() }
        trail.append((level, text))
        if title == nil { title = text }
        packer.startSection(trail: trail.map(\.text))
        packer.addBlock(first: line, last: line, heading: true)
    }

    /// Adds a block; consecutive list items (blank lines between) become one block.
    private mutating func emit(_ first: Int, _ last: Int, isList: Bool) {
        if var previous = pending, previous.isList, isList {
            previous.last = last
            pending = previous
            return
        }
        flushPending()
        pending = (first, last, isList)
    }

    private mutating func flushPending() {
        guard let block = pending else { return }
        packer.addBlock(first: block.first, last: block.last)
        pending = nil
    }

    // MARK: Line recognisers

    /// A line of two or more of one punctuation character, starting in column 0.
    private func adornment(_ line: Int) -> (char: UInt8, length: Int)? {
        let start = source.starts[line]
        var end = source.ends[line]
        while end > start, buf[end - 1] == 0x20 || buf[end - 1] == 0x09 { end -= 1 }
        guard end - start >= 2 else { return nil }
        let char = buf[start]
        switch char {
        case 0x3D, 0x2D, 0x60, 0x3A, 0x27, 0x22, 0x7E, 0x5E, 0x5F, 0x2A, 0x2B, 0x23, 0x3C, 0x3E:
            break  // = - ` : ' " ~ ^ _ * + # < >
        default:
            return nil
        }
        for i in start..<end where buf[i] != char { return nil }
        return (char, end - start)
    }

    /// For a line starting with `.. `: `true` to keep it (directives, footnotes, citations, substitutions),
    /// `false` to drop it (comments, hyperlink targets, housekeeping directives); `nil` if it is not explicit markup.
    private func explicitMarkup(_ p: Int, _ end: Int) -> Bool? {
        guard end - p >= 2, buf[p] == 0x2E, buf[p + 1] == 0x2E else { return nil }
        if end - p > 2, buf[p + 2] != 0x20, buf[p + 2] != 0x09 { return nil }
        var q = p + 2
        while q < end, buf[q] == 0x20 || buf[q] == 0x09 { q += 1 }
        guard q < end else { return false }
        switch buf[q] {
        case 0x5F: return false  // _ target
        case 0x5B, 0x7C: return true  // [ footnote/citation, | substitution
        default: break
        }
        var k = q
        while k + 1 < end {
            let b = buf[k]
            if b == 0x3A, buf[k + 1] == 0x3A {
                guard k > q, k + 2 == end || buf[k + 2] == 0x20 || buf[k + 2] == 0x09 else { return false }
                let name = source.string(q..<k).lowercased()
                return !Self.droppedDirectives.contains(name)
            }
            let isNameByte = (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A)
                || b == 0x2D || b == 0x5F || b == 0x3A || b == 0x2E || b == 0x2B
            if !isNameByte { return false }
            k += 1
        }
        return false  // a comment
    }

    /// The last line of the explicit markup block starting at `first`: its indented body.
    private func explicitEnd(_ first: Int) -> Int {
        let n = source.count
        if source.trimmed(source.starts[first]..<source.ends[first]).count == 2,
           first + 1 >= n || source.isBlank(first + 1) {
            return first  // an empty comment does not swallow what follows
        }
        var last = first
        var j = first + 1
        while j < n {
            if source.isBlank(j) { j += 1; continue }
            if source.indent(j, tabWidth: 8).columns == 0 { break }
            last = j
            j += 1
        }
        return last
    }

    /// The last line of the block starting at `first`: its non-blank run, then any lines indented deeper than
    /// `base` (after blank lines too).
    private func blockEnd(_ first: Int, base: Int) -> Int {
        let n = source.count
        var last = first
        var j = first + 1
        while j < n, !source.isBlank(j) {
            last = j
            j += 1
        }
        while j < n {
            if source.isBlank(j) { j += 1; continue }
            if source.indent(j, tabWidth: 8).columns <= base { break }
            last = j
            j += 1
        }
        return last
    }

    /// Bullet (`-`, `*`, `+`, `•`), enumerated (`1.`, `#.`, `a)`, `(i)`) or field list (`:name:`) item.
    private func isListItem(_ p: Int, _ end: Int) -> Bool {
        func spaceOrEnd(_ i: Int) -> Bool { i >= end || buf[i] == 0x20 || buf[i] == 0x09 }
        let b = buf[p]
        if b == 0x2D || b == 0x2A || b == 0x2B { return spaceOrEnd(p + 1) }
        if b == 0xE2, p + 2 < end, buf[p + 1] == 0x80, buf[p + 2] == 0xA2 { return spaceOrEnd(p + 3) }  // •
        if b == 0x3A {  // :field:
            var i = p + 1
            while i < end {
                if buf[i] == 0x3A { return i > p + 1 && spaceOrEnd(i + 1) }
                i += 1
            }
            return false
        }
        var i = p
        if b == 0x28 { i += 1 }  // (
        let start = i
        while i < end, i - start < 9, (buf[i] >= 0x30 && buf[i] <= 0x39) || buf[i] == 0x23 { i += 1 }
        if i == start, i < end, (buf[i] >= 0x61 && buf[i] <= 0x7A) || (buf[i] >= 0x41 && buf[i] <= 0x5A) { i += 1 }
        guard i > start, i < end else { return false }
        if b == 0x28 { return buf[i] == 0x29 && spaceOrEnd(i + 1) }
        return (buf[i] == 0x2E || buf[i] == 0x29) && spaceOrEnd(i + 1)
    }
}
