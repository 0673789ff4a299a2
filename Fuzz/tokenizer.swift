// libFuzzer target: the BERT WordPiece tokenizer over a real vocabulary
// ($FUZZ_VOCAB, else $RAGD_MODEL/vocab.txt, else models/all-MiniLM-L6-v2/vocab.txt).
#if canImport(Glibc)
import Glibc
#endif
import RagEmbed

private func vocabularyPath() -> String {
    if let path = getenv("FUZZ_VOCAB") { return String(cString: path) }
    if let model = getenv("RAGD_MODEL") { return String(cString: model) + "/vocab.txt" }
    return "models/all-MiniLM-L6-v2/vocab.txt"
}

/// Built once per process: the uncased default, and a cased one with a short window.
private let tokenizers: [BertTokenizer] = {
    let path = vocabularyPath()
    do {
        return [
            try BertTokenizer(vocabularyFile: path),
            try BertTokenizer(vocabularyFile: path, configuration: .init(lowercase: false, maxLength: 12)),
        ]
    } catch {
        printError("cannot load the vocabulary \(path): \(error)")
        exit(2)
    }
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTokenizer(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let text = fuzzText(data, size)
    for tokenizer in tokenizers {
        let size = tokenizer.vocabularySize
        let pieces = tokenizer.pieces(text)
        invariant(pieces.allSatisfy { $0 >= 0 && Int($0) < size }, "id outside the vocabulary of \(size)")
        let encoded = tokenizer.encode(text)
        let maxLength = tokenizer.configuration.maxLength
        invariant(encoded.count >= 2 && encoded.count <= maxLength, "\(encoded.count) ids, window \(maxLength)")
        invariant(encoded.first == tokenizer.classID && encoded.last == tokenizer.separatorID, "missing [CLS] or [SEP]")
        invariant(Array(encoded.dropFirst().dropLast()) == Array(pieces.prefix(maxLength - 2)),
                  "encode(_:) is not the start of pieces(_:)")
        invariant(tokenizer.tokenCount(text) == pieces.count + 2, "tokenCount(_:) disagrees with pieces(_:)")
    }
    return 0
}
