import Glibc
import RagTestSupport
import Testing
@testable import RagIngest

@Suite struct SourceScannerTests {
    /// Names of every length up to NAME_MAX come back whole. Regression: the scanner copied all 256 bytes of
    /// `d_name`, reading past the end of readdir's buffer for short final records (found by AddressSanitizer).
    @Test func namesOfEveryLength() throws {
        try withTemporaryDirectory { (dir: String) throws in
            var expected: Set<String> = []
            for length in 4...255 {
                let name = String(repeating: length % 2 == 0 ? "n" : "é", count: (length - 3) / (length % 2 == 0 ? 1 : 2)) + ".md"
                try writeFile(dir + "/" + name, "# \(length)\n")
                expected.insert(dir + "/" + name)
            }
            let result = SourceScanner.scan(SourceSpec(root: dir))
            #expect(result.problems.isEmpty)
            #expect(Set(result.files.map(\.path)) == expected)

            guard let handle = opendir(dir) else { Issue.record("opendir failed"); return }
            defer { closedir(handle) }
            var listed: Set<String> = []
            while let entry = readdir(handle) { listed.insert(String(decoding: directoryEntryBytes(entry), as: UTF8.self)) }
            #expect(listed == Set(expected.map { String($0.dropFirst(dir.count + 1)) }).union([".", ".."]))
        }
    }
}
