import ArgumentParser
import Glibc
import RagCore
import RagProtocol

@main
struct RagCtl: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ragctl",
        abstract: "Query and inspect a running ragd over its Unix socket.",
        discussion: """
            Output is for people on a terminal (colours unless NO_COLOR is set, progress redrawn in place) and plain \
            text otherwise; --json (and search --jsonl) print the daemon's replies for programs.

            Environment:
              RAGD_SOCKET  the socket when --socket is not given
              NO_COLOR     if set and not empty: no colours (matches marked **so**)

            Exit status:
              0  success
              1  no results (search --fail-empty)
              2  usage error: unknown command or option, bad value
              3  ragd unreachable: not running, wrong socket, no permission
              4  ragd answered with an error (the message names it)
            """,
        version: "0.1.0",
        subcommands: [Search.self, Status.self, Sources.self, Get.self, Reindex.self, Ping.self, Metrics.self, Backup.self,
                      MCPServe.self])

    /// Like ArgumentParser's `main()`, but usage errors exit with 2 (as documented) instead of 64.
    static func main() {
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            let code = exitCode(for: error)
            if code == .validationFailure {
                printError(fullMessage(for: error))
                Glibc.exit(Exit.usage)
            }
            exit(withError: error)
        }
    }
}

struct ConnectionOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Path of ragd's socket (default: $RAGD_SOCKET, else /run/ragd/ragd.sock).", valueName: "path"),
            completion: .file())
    var socket: String?

    func connect() throws -> Client {
        try Client(path: Client.socketPath(socket))
    }
}

/// Runs `body`, turning client errors into a message on stderr and the documented exit code.
func withClientErrors(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let error as ClientError {
        printError(error.description)
        throw ExitCode(error.exitCode)
    }
}

func printError(_ message: String) {
    var line = "ragctl: \(message)\n"
    line.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
}

struct Search: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Search the index and print the best chunks with their citations.",
        discussion: """
            Each hit shows path:first-last, the heading trail, the score and a snippet with the query's terms marked \
            (bold yellow on a terminal, **like this** in pipes or with NO_COLOR). --json prints the daemon's reply, \
            --jsonl one hit per line.
            """)

    @Argument(help: "The query text.")
    var query: String

    @Option(name: [.customShort("k"), .long], help: "Number of hits (1 to the daemon's max_k).")
    var k: Int = 10

    @Option(name: .long, help: "Retrieval mode: bm25, dense or hybrid (BM25 and dense fused).", completion: .list(SearchMode.allCases.map(\.rawValue)))
    var mode: String = "hybrid"

    @Option(name: .long, help: ArgumentHelp("Only files under this absolute folder (repeatable).", valueName: "path"), completion: .directory)
    var pathPrefix: [String] = []

    @Option(name: .long, help: ArgumentHelp("Only files with this extension, e.g. md or rst (repeatable; x.md.gz counts as md).", valueName: "ext"))
    var ext: [String] = []

    @Option(name: .long, help: ArgumentHelp("Only files whose front matter has this tag (repeatable).", valueName: "tag"))
    var tag: [String] = []

    @Option(name: .long, help: ArgumentHelp("Only files modified after this date (2026-11-27, 2026-11-27T10:00:00Z) or epoch seconds.", valueName: "time"))
    var modifiedAfter: String?

    @Flag(name: .long, help: "Print the daemon's JSON reply as is.")
    var json = false

    @Flag(name: .long, help: "Print one JSON object per hit, one per line.")
    var jsonl = false

    @Flag(name: .long, help: "Print the full text of each hit instead of a snippet.")
    var full = false

    @Flag(name: .long, help: "Exit with status 1 when nothing matches.")
    var failEmpty = false

    @OptionGroup var connection: ConnectionOptions

    func validate() throws {
        guard k >= 1 else { throw ValidationError("-k must be at least 1") }
        guard !(json && jsonl) else { throw ValidationError("give --json or --jsonl, not both") }
        guard SearchMode(rawValue: mode) != nil else { throw ValidationError("--mode must be bm25, dense or hybrid") }
        for prefix in pathPrefix where !prefix.hasPrefix("/") {
            throw ValidationError("--path-prefix must be an absolute path: \(prefix)")
        }
    }

    func run() throws {
        var empty = false
        try withClientErrors {
            let client = try connection.connect()
            var filter: [(String, JSONValue)] = []
            if !pathPrefix.isEmpty { filter.append(("path_prefix", .array(pathPrefix.map { .string($0) }))) }
            if !ext.isEmpty { filter.append(("ext", .array(ext.map { .string($0) }))) }
            if !tag.isEmpty { filter.append(("tags", .array(tag.map { .string($0) }))) }
            if let modifiedAfter {
                filter.append(("modified_after", Double(modifiedAfter).map { .double($0) } ?? .string(modifiedAfter)))
            }
            var fields: [(String, JSONValue)] = [("query", .string(query)), ("k", .int(Int64(k))), ("mode", .string(mode))]
            if !filter.isEmpty { fields.append(("filter", .object(filter))) }
            let reply = try client.call("search", fields)
            let results = reply["results"]?.arrayValue ?? []
            empty = results.isEmpty
            if json {
                print(reply.serialized())
                return
            }
            if jsonl {
                for hit in results { print(hit.serialized()) }
                return
            }
            if results.isEmpty {
                print("no results for \"\(query)\"")
                return
            }
            let queryTerms = Set(Analyzer().terms(query))
            for (n, hit) in results.enumerated() {
                let path = hit["path"]?.stringValue ?? "?"
                let lines = hit["lines"]?.arrayValue?.compactMap(\.intValue) ?? []
                let where_ = lines.count == 2 ? "\(path):\(lines[0])-\(lines[1])" : path
                let score = hit["score"]?.doubleValue ?? 0
                let heading = hit["heading"]?.stringValue ?? ""
                let text = hit["text"]?.stringValue ?? ""
                print("\(n + 1). \(style(where_, .bold))  \(style(String(format3(score)), .dim))")
                if !heading.isEmpty { print("   \(style(heading, .cyan))") }
                let body = full ? text : snippet(text, terms: queryTerms)
                for line in highlight(body, terms: queryTerms).split(separator: "\n", omittingEmptySubsequences: false) {
                    print("   \(line)")
                }
                print("")
            }
            if let took = reply["took_ms"]?.doubleValue {
                print(style("\(results.count) hit\(results.count == 1 ? "" : "s") in \(format3(took)) ms", .dim))
            }
        }
        if empty && failEmpty { throw ExitCode(Exit.noResults) }
    }
}

func format3(_ value: Double) -> String {
    let scaled = (value * 1000).rounded() / 1000
    return "\(scaled)"
}

/// About 300 characters of `text` around its first matching token, whitespace collapsed.
func snippet(_ text: String, terms: Set<String>, width: Int = 300) -> String {
    let tokens = Analyzer().tokens(text)
    let utf8 = Array(text.utf8)
    let firstMatch = tokens.first { !terms.isDisjoint(with: $0.terms) }?.utf8Range.lowerBound ?? 0
    var start = max(0, firstMatch - width / 3)
    while start > 0 && start < utf8.count && (utf8[start] & 0xC0) == 0x80 { start -= 1 }
    // Begin at a word boundary.
    if start > 0 { while start < firstMatch && utf8[start] != 0x20 && utf8[start] != 0x0A { start += 1 } }
    var end = min(utf8.count, start + width)
    while end < utf8.count && (utf8[end] & 0xC0) == 0x80 { end += 1 }
    var piece = String(decoding: utf8[start..<end], as: UTF8.self)
    piece = piece.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" || $0 == "\r" }).joined(separator: " ")
    return (start > 0 ? "… " : "") + piece + (end < utf8.count ? " …" : "")
}

/// Marks tokens whose terms are among `terms`: bold yellow when colours are on, `**like this**` otherwise.
func highlight(_ text: String, terms: Set<String>) -> String {
    let utf8 = Array(text.utf8)
    var out: [UInt8] = []
    var cursor = 0
    for token in Analyzer().tokens(text) where !terms.isDisjoint(with: token.terms) {
        guard token.utf8Range.lowerBound >= cursor, token.utf8Range.upperBound <= utf8.count else { continue }
        out.append(contentsOf: utf8[cursor..<token.utf8Range.lowerBound])
        let word = String(decoding: utf8[token.utf8Range], as: UTF8.self)
        out.append(contentsOf: (Terminal.color ? style(word, .match) : "**\(word)**").utf8)
        cursor = token.utf8Range.upperBound
    }
    out.append(contentsOf: utf8[cursor...])
    return String(decoding: out, as: UTF8.self)
}

struct Get: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print an indexed file, a line range of it, or a chunk.",
        discussion: "PATH:LINES takes a range (12-40) or one line (12). The path must be an indexed file.")

    @Argument(help: ArgumentHelp("An indexed file, optionally with :FIRST-LAST.", valueName: "path[:lines]"), completion: .file())
    var target: String?

    @Option(name: .long, help: "A chunk id, as printed by search --json.")
    var chunk: Int?

    @Flag(name: .long, help: "Print the daemon's JSON reply as is.")
    var json = false

    @OptionGroup var connection: ConnectionOptions

    func validate() throws {
        if (target == nil) == (chunk == nil) { throw ValidationError("give either PATH[:LINES] or --chunk ID") }
    }

    /// Splits `PATH:12-40` / `PATH:12`; a colon not followed by a range stays part of the path.
    static func parseTarget(_ target: String) -> (String, [Int]?) {
        guard let colon = target.lastIndex(of: ":") else { return (target, nil) }
        let spec = target[target.index(after: colon)...]
        let parts = spec.split(separator: "-", omittingEmptySubsequences: false)
        let numbers = parts.compactMap { Int($0) }
        guard !spec.isEmpty, numbers.count == parts.count, (1...2).contains(numbers.count) else { return (target, nil) }
        return (String(target[..<colon]), numbers.count == 1 ? [numbers[0], numbers[0]] : numbers)
    }

    func run() throws {
        try withClientErrors {
            let client = try connection.connect()
            var fields: [(String, JSONValue)] = []
            if let chunk {
                fields.append(("chunk", .int(Int64(chunk))))
            } else if let target {
                var (path, lines) = Get.parseTarget(target)
                if !path.hasPrefix("/"), let cwd = getcwd(nil, 0) {
                    path = String(cString: cwd) + "/" + path
                    free(cwd)
                }
                fields.append(("path", .string(path)))
                if let lines { fields.append(("lines", .array(lines.map { .int(Int64($0)) }))) }
            }
            let reply = try client.call("get", fields)
            if json {
                print(reply.serialized())
            } else {
                print(reply["text"]?.stringValue ?? "")
            }
        }
    }
}

struct Ping: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Check that ragd answers.")

    @OptionGroup var connection: ConnectionOptions

    func run() throws {
        try withClientErrors {
            _ = try connection.connect().call("ping")
            print("ragd is answering")
        }
    }
}
