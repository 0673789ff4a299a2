/// A piece of a chunk: a whole line, or part of one long line.
struct ChunkSegment {
    var line: Int
    var start: Int
    var end: Int
    var tokens: Int
    var block: Int
    var isHeading: Bool

    /// Bytes counted against the chunk byte cap (content plus one separator).
    var bytes: Int { end - start + 1 }
}

/// Packs a stream of sections and blocks into chunks (see `Chunker` for the rules).
///
/// Parsers call `startSection(trail:)` at every heading, then `addBlock` for the heading line(s) and for each body
/// block (a line range that should stay together when it fits).
struct ChunkPacker {
    let source: ChunkSourceText
    let target: Int
    let maximum: Int
    let overlap: Int
    /// Byte cap per chunk (`maximum × 64`), so that zero-token bytes (white space, control characters) cannot
    /// make a chunk huge.
    let maxBytes: Int

    private var chunks: [ChunkDraft] = []
    private var trail: [String] = []
    private var current: [ChunkSegment] = []
    private var currentTokens = 0
    private var currentBytes = 0
    /// Segments that are not overlap (heading or content).
    private var ownSegments = 0
    /// Segments that are neither heading nor overlap.
    private var contentSegments = 0
    private var blockID = 0
    private var scratch: [UInt8] = []

    init(source: ChunkSourceText, configuration: ChunkingConfiguration) {
        self.source = source
        maximum = max(1, configuration.maxTokens)
        target = min(max(1, configuration.targetTokens), maximum)
        overlap = max(0, min(configuration.overlapTokens, target / 2))
        maxBytes = max(1024, maximum * 64)
    }

    /// Ends the current section and starts one with the given heading trail.
    mutating func startSection(trail: [String]) {
        flush(carryOverlap: false)
        self.trail = trail
    }

    /// Emits the last chunk and returns all chunks.
    mutating func finish() -> [ChunkDraft] {
        flush(carryOverlap: false)
        return chunks
    }

    /// Adds lines `first...last` (blank lines inside are skipped) as one block.
    mutating func addBlock(first: Int, last: Int, heading: Bool = false) {
        guard first <= last else { return }
        blockID += 1
        var tokens = 0
        for line in first...last { tokens += source.tokens[line] }
        if tokens == 0 { return }
        let bytes = source.ends[last] - source.starts[first] + 1
        if tokens <= maximum, bytes <= maxBytes {
            if fits(tokens, bytes) {
                appendLines(first, last, heading: heading)
                return
            }
            if contentSegments > 0 {
                flush(carryOverlap: true)
            }
            if !withinCap(tokens, bytes) { dropOverlap() }
            if withinCap(tokens, bytes) {
                appendLines(first, last, heading: heading)
                return
            }
            // Only a heading precedes: split the block so that its start stays with the heading.
        }
        splitBlock(first, last, heading: heading)
    }

    // MARK: Packing

    /// Whether a unit can join the current chunk: up to `target` tokens, or up to `maximum` when the chunk holds
    /// only a heading and/or overlap so far; never past the byte cap.
    private func fits(_ tokens: Int, _ bytes: Int) -> Bool {
        guard currentBytes + bytes <= maxBytes else { return false }
        return currentTokens + tokens <= target || (contentSegments == 0 && currentTokens + tokens <= maximum)
    }

    private func withinCap(_ tokens: Int, _ bytes: Int) -> Bool {
        currentTokens + tokens <= maximum && currentBytes + bytes <= maxBytes
    }

    /// Makes room for a unit within the caps: flushes and drops overlap as needed.
    private mutating func makeRoom(_ tokens: Int, _ bytes: Int) {
        if fits(tokens, bytes) { return }
        if contentSegments > 0 { flush(carryOverlap: true) }
        if !withinCap(tokens, bytes) { dropOverlap() }
        if !withinCap(tokens, bytes) { flush(carryOverlap: false) }  // a heading alone
    }

    private mutating func dropOverlap() {
        guard ownSegments == 0 else { return }
        current.removeAll(keepingCapacity: true)
        currentTokens = 0
        currentBytes = 0
    }

    private mutating func appendLines(_ first: Int, _ last: Int, heading: Bool) {
        for line in first...last where source.tokens[line] > 0 {
            // Heading lines lose their indentation (reST inset titles); other lines stay as they are.
            let range = heading ? source.trimmed(source.starts[line]..<source.ends[line])
                : source.starts[line]..<source.ends[line]
            append(ChunkSegment(line: line, start: range.lowerBound, end: range.upperBound,
                           tokens: source.tokens[line], block: blockID, isHeading: heading))
        }
    }

    private mutating func append(_ segment: ChunkSegment) {
        current.append(segment)
        currentTokens += segment.tokens
        currentBytes += segment.bytes
        ownSegments += 1
        if !segment.isHeading { contentSegments += 1 }
    }

    /// Splits an over-large block into units: runs of lines between blank lines, else single lines,
    /// else pieces of a line.
    private mutating func splitBlock(_ first: Int, _ last: Int, heading: Bool) {
        var runStart = -1
        var runTokens = 0
        var line = first
        while line <= last + 1 {
            if line > last || source.isBlank(line) {
                if runStart >= 0 {
                    addRun(runStart, line - 1, tokens: runTokens, heading: heading)
                    runStart = -1
                    runTokens = 0
                }
            } else {
                if runStart < 0 { runStart = line }
                runTokens += source.tokens[line]
            }
            line += 1
        }
    }

    private mutating func addRun(_ first: Int, _ last: Int, tokens: Int, heading: Bool) {
        let bytes = source.ends[last] - source.starts[first] + 1
        if tokens <= maximum, bytes <= maxBytes {
            makeRoom(tokens, bytes)
            appendLines(first, last, heading: heading)
            return
        }
        for line in first...last {
            let lineTokens = source.tokens[line]
            let lineBytes = source.ends[line] - source.starts[line] + 1
            if lineTokens <= maximum, lineBytes <= maxBytes {
                makeRoom(lineTokens, lineBytes)
                appendLines(line, line, heading: heading)
            } else {
                splitLine(line, heading: heading)
            }
        }
    }

    /// Cuts one over-long line into pieces of at most `target` tokens (and half the byte cap), preferring sentence
    /// ends (when they leave the piece at least half full), then word boundaries, then any atom boundary.
    /// White space at a cut is dropped.
    private mutating func splitLine(_ line: Int, heading: Bool) {
        let buf = source.buf
        let limit = target
        let byteLimit = maxBytes / 2
        var cursor = TokenAtomCursor(buf, source.starts[line], source.ends[line])
        var pieceStart = -1
        var count = 0
        // Candidate cuts: piece end, next piece start, tokens before the cut.
        var wordCut: (end: Int, next: Int, count: Int)?
        var sentenceCut: (end: Int, next: Int, count: Int)?
        while let (start, gap) = cursor.next() {
            if pieceStart < 0 {
                pieceStart = start
            } else if gap >= 0 {
                wordCut = (gap, start, count)
                if isSentenceEnd(before: gap, lineStart: source.starts[line]) { sentenceCut = wordCut }
            }
            let tooLong = start - pieceStart >= byteLimit
            if count + 1 > limit || tooLong {
                let cut: (end: Int, next: Int, count: Int)
                if !tooLong, let s = sentenceCut, s.count * 2 >= limit {
                    cut = s
                } else if let w = wordCut {
                    cut = w
                } else {
                    cut = (start, start, count)
                }
                emitPiece(line, pieceStart, cut.end, tokens: cut.count, heading: heading)
                pieceStart = cut.next
                count -= cut.count
                wordCut = nil
                sentenceCut = nil
            }
            count += 1
        }
        if pieceStart >= 0, count > 0 {
            var end = source.ends[line]
            while end > pieceStart, buf[end - 1] <= 0x20 || buf[end - 1] == 0x7F { end -= 1 }
            emitPiece(line, pieceStart, end, tokens: count, heading: heading)
        }
    }

    private mutating func emitPiece(_ line: Int, _ start: Int, _ end: Int, tokens: Int, heading: Bool) {
        makeRoom(tokens, end - start + 1)
        append(ChunkSegment(line: line, start: start, end: end, tokens: tokens, block: blockID, isHeading: heading))
    }

    /// True when the text before the white space at `gap` ends a sentence (`.`, `!`, `?`, maybe closed by a quote
    /// or bracket).
    private func isSentenceEnd(before gap: Int, lineStart: Int) -> Bool {
        let buf = source.buf
        var i = gap - 1
        guard i >= lineStart else { return false }
        var b = buf[i]
        if b == 0x22 || b == 0x27 || b == 0x29 || b == 0x5D || b == 0x2A || b == 0x60 {  // " ' ) ] * `
            i -= 1
            guard i >= lineStart else { return false }
            b = buf[i]
        }
        return b == 0x2E || b == 0x21 || b == 0x3F  // . ! ?
    }

    // MARK: Emitting

    /// Emits the current chunk, if it has anything besides overlap; then starts the next one with overlap from it
    /// (`carryOverlap`) or empty.
    private mutating func flush(carryOverlap: Bool) {
        defer {
            ownSegments = 0
            contentSegments = 0
        }
        guard ownSegments > 0, let first = current.first, let last = current.last else {
            current.removeAll(keepingCapacity: true)
            currentTokens = 0
            currentBytes = 0
            return
        }
        chunks.append(ChunkDraft(text: text(of: current), lines: (first.line + 1)...(last.line + 1), headings: trail))
        let carried = carryOverlap ? overlapSegments(budget: min(overlap, currentTokens / 2)) : []
        current.removeAll(keepingCapacity: true)
        current.append(contentsOf: carried)
        currentTokens = carried.reduce(0) { $0 + $1.tokens }
        currentBytes = carried.reduce(0) { $0 + $1.bytes }
    }

    /// Trailing whole segments of `current` worth at most `budget` tokens; if none fits, the trailing sentences of
    /// the last segment.
    private func overlapSegments(budget: Int) -> [ChunkSegment] {
        guard budget > 0 else { return [] }
        var index = current.count
        var total = 0
        while index > 0 {
            let segment = current[index - 1]
            if segment.isHeading || total + segment.tokens > budget { break }
            total += segment.tokens
            index -= 1
        }
        if index < current.count { return Array(current[index...]) }
        guard let last = current.last, !last.isHeading else { return [] }
        // Sentence starts inside the last segment, with the tokens before each.
        var cursor = TokenAtomCursor(source.buf, last.start, last.end)
        var count = 0
        var starts: [(position: Int, before: Int)] = []
        while let (start, gap) = cursor.next() {
            if count > 0, gap >= 0, isSentenceEnd(before: gap, lineStart: last.start) {
                starts.append((start, count))
            }
            count += 1
        }
        for candidate in starts where count - candidate.before <= budget {
            var tail = last
            tail.start = candidate.position
            tail.tokens = count - candidate.before
            return [tail]
        }
        return []
    }

    /// The chunk text: segments joined as in the source (same line: the original white space between them, or one
    /// space if that is long; same block: the original line breaks, at most three; different blocks: one line
    /// break, or a blank line if any line lies between).
    private mutating func text(of segments: [ChunkSegment]) -> String {
        let buf = source.buf
        scratch.removeAll(keepingCapacity: true)
        var previous: ChunkSegment?
        for segment in segments {
            if let p = previous {
                if segment.line == p.line {
                    if segment.start - p.end > 16 {
                        scratch.append(0x20)
                    } else if p.end < segment.start {
                        scratch.append(contentsOf: UnsafeBufferPointer(rebasing: buf[p.end..<segment.start]))
                    }
                } else if segment.block == p.block {
                    for _ in 0..<min(segment.line - p.line, 3) { scratch.append(0x0A) }
                } else {
                    scratch.append(0x0A)
                    if segment.line > p.line + 1 { scratch.append(0x0A) }
                }
            }
            scratch.append(contentsOf: UnsafeBufferPointer(rebasing: buf[segment.start..<segment.end]))
            previous = segment
        }
        return String(decoding: scratch, as: UTF8.self)
    }
}
