// Invariants of `Chunker.parse`, shared by the Markdown, reST and HTML targets.
import RagIngest

/// The default sizes, and tiny ones so that short inputs reach the splitting and overlap code.
let chunkConfigurations = [
    ChunkingConfiguration(),
    ChunkingConfiguration(targetTokens: 6, maxTokens: 10, overlapTokens: 3),
]

func checkChunks(_ text: String, format: DocumentFormat) {
    let lines = lineCount(text)
    let frontMatter = format == .markdown ? FrontMatter.parse(text) : nil
    for configuration in chunkConfigurations {
        let document = Chunker(configuration: configuration).parse(text, format: format)
        var previousFirst = 0
        for chunk in document.chunks {
            let range = chunk.lines
            invariant(range.lowerBound >= 1 && range.upperBound <= lines,
                      "chunk lines \(range) outside 1...\(lines)")
            invariant(range.lowerBound >= previousFirst, "chunk at \(range) starts before line \(previousFirst)")
            previousFirst = range.lowerBound
            if let frontMatter {
                invariant(range.lowerBound > frontMatter.lineCount, "chunk at \(range) inside the front matter")
            }
            invariant(!chunk.text.isEmpty, "empty chunk at \(range)")
            invariant(!chunk.text.utf8.contains(0x0D), "carriage return in a chunk at \(range)")
            let tokens = Chunker.estimateTokens(Substring(chunk.text))
            invariant(tokens >= 1 && tokens <= configuration.maxTokens,
                      "chunk at \(range) has \(tokens) tokens, limit \(configuration.maxTokens)")
        }
        if let frontMatter {
            invariant(document.tags == frontMatter.tags, "tags differ from the front matter's")
            if let title = frontMatter.title { invariant(document.title == title, "title differs from the front matter's") }
        }
    }
}
