/// CommonMark-ish block structure: ATX/setext headings, fenced and indented code, tables, lists, paragraphs.
struct MarkdownParser {
    let source: ChunkSourceText
    var packer: ChunkPacker
    /// The first level-1 heading.
    private(set) var title: String?
    private var trail: [(level: Int, text: String)] = []
    private var paragraphStart = -1
    private var paragraphEnd = -1

    init(source: ChunkSourceText, packer: ChunkPacker) {
        self.source = source
        self.packer = packer
    }

    private var buf: UnsafeBufferPointer<UInt8> { source.buf }

    mutating func run(from start: Int) {
        let n = source.count
        var i = start
        while i < n {
            if source.isBlank(i) {
                closeParagraph()
                i += 1
                continue
            }
            let (columns, p) = source.indent(i, tabWidth: 4)
            let end = source.ends[i]
            if columns >= 4 {
                if paragraphStart >= 0 {  // lazy continuation
                    paragraphEnd = i
                    i += 1
                    continue
                }
                var last = i
                var j = i + 1
                while j < n {
                    if source.isBlank(j) { j += 1; continue }
                    if source.indent(j, tabWidth: 4).columns < 4 { break }
                    last = j
                    j += 1
                }
                packer.addBlock(first: i, last: last)
                i = last + 1
                continue
            }
            let b = buf[p]
            if b == 0x60 || b == 0x7E, let fence = fenceOpening(p, end, columns: columns) {  // ` ~
                closeParagraph()
                let close = fenceClose(after: i, fence)
                packer.addBlock(first: i, last: close)
                i = close + 1
                continue
            }
            if b == 0x23, let level = atxLevel(p, end) {  // #
                closeParagraph()
                let text = cleanHeading(p + level, end)
                heading(level: level, text: text, first: i, last: i)
                i += 1
                continue
            }
            if paragraphStart >= 0, b == 0x3D || b == 0x2D, isSetextUnderline(p, end) {  // = -
                var parts: [String] = []
                var length = 0
                for line in paragraphStart...paragraphEnd where length < 512 {
                    let part = source.string(source.trimmed(source.starts[line]..<source.ends[line]))
                    length += part.utf8.count + 1
                    parts.append(part)
                }
                let first = paragraphStart
                let last = paragraphEnd
                paragraphStart = -1
                heading(level: b == 0x3D ? 1 : 2, text: String(parts.joined(separator: " ").prefix(512)),
                        first: first, last: last)
                i += 1
                continue
            }
            if b == 0x2D || b == 0x2A || b == 0x5F, isThematicBreak(p, end) {  // - * _
                closeParagraph()
                i += 1
                continue
            }
            if b == 0x7C {  // |
                closeParagraph()
                var last = i
                while last + 1 < n {
                    let (c, q) = source.indent(last + 1, tabWidth: 4)
                    guard c <= 3, q < source.ends[last + 1], buf[q] == 0x7C else { break }
                    last += 1
                }
                packer.addBlock(first: i, last: last)
                i = last + 1
                continue
            }
            if i + 1 < n, isDelimiterRow(i + 1), contains(0x7C, i) {
                closeParagraph()
                var last = i + 1
                while last + 1 < n, !source.isBlank(last + 1), contains(0x7C, last + 1) { last += 1 }
                packer.addBlock(first: i, last: last)
                i = last + 1
                continue
            }
            if let marker = listMarker(p, end), paragraphStart < 0 || marker.canInterrupt {
                closeParagraph()
                let last = listEnd(from: i, markerColumns: columns)
                packer.addBlock(first: i, last: last)
                i = last + 1
                continue
            }
            if paragraphStart < 0 { paragraphStart = i }
            paragraphEnd = i
            i += 1
        }
        closeParagraph()
    }

    private mutating func closeParagraph() {
        guard paragraphStart >= 0 else { return }
        packer.addBlock(first: paragraphStart, last: paragraphEnd)
        paragraphStart = -1
    }

    private mutating func heading(level: Int, text: String, first: Int, last: Int) {
        while let top = trail.last, top.level >= level { trail.removeLast() }
        trail.append((level, text))
        if level == 1, title == nil { title = text }
        packer.startSection(trail: trail.map(\.text))
        packer.addBlock(first: first, last: last, heading: true)
    }

    // MARK: Line recognisers

    /// The level of an ATX heading starting at `p` (`#`…`######` then a space, tab or end of line).
    private func atxLevel(_ p: Int, _ end: Int) -> Int? {
        var i = p
        while i < end, buf[i] == 0x23 { i += 1 }
        let level = i - p
        guard level >= 1, level <= 6 else { return nil }
        if i < end, buf[i] != 0x20, buf[i] != 0x09 { return nil }
        return level
    }

    /// Heading text without the optional closing `#`s and a trailing `{#anchor}` / `{.class}` attribute block.
    private func cleanHeading(_ start: Int, _ end: Int) -> String {
        var range = source.trimmed(start..<end)
        if range.count > 1, buf[range.upperBound - 1] == 0x7D {  // }
            var q = range.upperBound - 2
            while q >= range.lowerBound, buf[q] != 0x7B, buf[q] != 0x7D { q -= 1 }  // {
            if q > range.lowerBound, buf[q] == 0x7B, q + 1 < range.upperBound,
               buf[q + 1] == 0x23 || buf[q + 1] == 0x2E || buf[q + 1] == 0x3A {  // # . :
                range = source.trimmed(range.lowerBound..<q)
            }
        }
        var k = range.upperBound
        while k > range.lowerBound, buf[k - 1] == 0x23 { k -= 1 }
        if k < range.upperBound, k == range.lowerBound || buf[k - 1] == 0x20 || buf[k - 1] == 0x09 {
            range = source.trimmed(range.lowerBound..<k)
        }
        return source.string(range)
    }

    private struct Fence {
        var char: UInt8
        var length: Int
        var columns: Int
    }

    /// A code fence opening at `p`: three or more backticks (info string without backticks) or tildes.
    private func fenceOpening(_ p: Int, _ end: Int, columns: Int) -> Fence? {
        let char = buf[p]
        var i = p
        while i < end, buf[i] == char { i += 1 }
        guard i - p >= 3 else { return nil }
        if char == 0x60 {
            for k in i..<end where buf[k] == 0x60 { return nil }
        }
        return Fence(char: char, length: i - p, columns: columns)
    }

    /// The line closing `fence` opened on line `open`, or the last non-blank line of the file when unclosed.
    private func fenceClose(after open: Int, _ fence: Fence) -> Int {
        let n = source.count
        var j = open + 1
        while j < n {
            let (columns, q) = source.indent(j, tabWidth: 4)
            let end = source.ends[j]
            if columns <= max(3, fence.columns + 3), q < end, buf[q] == fence.char {
                var k = q
                while k < end, buf[k] == fence.char { k += 1 }
                if k - q >= fence.length, source.trimmed(k..<end).isEmpty { return j }
            }
            j += 1
        }
        var last = n - 1
        while last > open, source.isBlank(last) { last -= 1 }
        return last
    }

    private func isSetextUnderline(_ p: Int, _ end: Int) -> Bool {
        let char = buf[p]
        var i = p
        while i < end, buf[i] == char { i += 1 }
        return source.trimmed(i..<end).isEmpty
    }

    /// Three or more `-`, `*` or `_` (the same one), optionally separated by spaces or tabs.
    private func isThematicBreak(_ p: Int, _ end: Int) -> Bool {
        let char = buf[p]
        var count = 0
        for i in p..<end {
            let b = buf[i]
            if b == char {
                count += 1
            } else if b != 0x20, b != 0x09 {
                return false
            }
        }
        return count >= 3
    }

    /// A table delimiter row such as `| --- | :-: |` or `---|---`.
    private func isDelimiterRow(_ line: Int) -> Bool {
        let range = source.trimmed(source.starts[line]..<source.ends[line])
        guard !range.isEmpty else { return false }
        var pipe = false
        var dash = false
        for i in range {
            switch buf[i] {
            case 0x7C: pipe = true
            case 0x2D: dash = true
            case 0x3A, 0x20, 0x09: break
            default: return false
            }
        }
        return pipe && dash
    }

    private func contains(_ byte: UInt8, _ line: Int) -> Bool {
        for i in source.starts[line]..<source.ends[line] where buf[i] == byte { return true }
        return false
    }

    /// A bullet (`-`, `*`, `+`) or ordered (`1.`, `1)`) list item marker at `p`.
    private func listMarker(_ p: Int, _ end: Int) -> (canInterrupt: Bool, ordered: Bool)? {
        let b = buf[p]
        var i = p
        var ordered = false
        var startsAtOne = false
        if b == 0x2D || b == 0x2A || b == 0x2B {
            i += 1
        } else {
            while i < end, i - p < 9, buf[i] >= 0x30, buf[i] <= 0x39 { i += 1 }
            guard i > p, i < end, buf[i] == 0x2E || buf[i] == 0x29 else { return nil }
            ordered = true
            startsAtOne = i - p == 1 && buf[p] == 0x31
            i += 1
        }
        guard i == end || buf[i] == 0x20 || buf[i] == 0x09 else { return nil }
        let empty = source.trimmed(i..<end).isEmpty
        return (!empty && (!ordered || startsAtOne), ordered)
    }

    /// The last line of the list starting on `first`: following items, lines indented as continuation (also after
    /// blank lines), lazy continuation lines, and fenced code inside items.
    private func listEnd(from first: Int, markerColumns: Int) -> Int {
        let n = source.count
        var last = first
        var j = first + 1
        while j < n {
            if source.isBlank(j) { j += 1; continue }
            let (columns, q) = source.indent(j, tabWidth: 4)
            let end = source.ends[j]
            let afterBlank = j > last + 1
            let b = buf[q]
            var include = false
            if columns >= markerColumns + 2 {
                include = true
            } else if columns <= 3 {
                let isBreak = (b == 0x2D || b == 0x2A || b == 0x5F) && isThematicBreak(q, end)
                if !isBreak, listMarker(q, end) != nil {
                    include = true
                } else if !afterBlank, !isBreak, !startsBlock(q, end, columns: columns) {
                    include = true
                }
            }
            if !include { break }
            if b == 0x60 || b == 0x7E, let fence = fenceOpening(q, end, columns: columns) {
                last = fenceClose(after: j, fence)
                j = last + 1
                continue
            }
            last = j
            j += 1
        }
        return last
    }

    /// Lines that interrupt a lazy continuation: headings, fences, tables.
    private func startsBlock(_ q: Int, _ end: Int, columns: Int) -> Bool {
        let b = buf[q]
        if b == 0x23, atxLevel(q, end) != nil { return true }
        if b == 0x60 || b == 0x7E, fenceOpening(q, end, columns: columns) != nil { return true }
        if b == 0x7C { return true }
        return false
    }
}
