// libFuzzer target: the BM25 analyzer (`terms` and `tokens`).
import RagCore

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzAnalyzer(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let text = fuzzText(data, size)
    let analyzer = Analyzer()
    let terms = analyzer.terms(text)
    for term in terms {
        invariant(!term.isEmpty && term.utf8.count <= Analyzer.maxTermBytes, "term '\(term)' of \(term.utf8.count) bytes")
        invariant(!term.utf8.contains { $0 >= 0x41 && $0 <= 0x5A }, "term '\(term)' is not lower-cased")
    }
    let tokens = analyzer.tokens(text)
    var end = 0
    for token in tokens {
        let range = token.utf8Range
        invariant(range.lowerBound >= end && range.lowerBound < range.upperBound && range.upperBound <= text.utf8.count,
                  "token range \(range) after \(end) in \(text.utf8.count) bytes")
        end = range.upperBound
    }
    invariant(tokens.flatMap(\.terms) == terms, "tokens(_:) and terms(_:) disagree")
    return 0
}
