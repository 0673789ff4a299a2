import Foundation
import RagTestSupport
import Testing

/// ragctl against a real daemon: readable output, documented exit codes, clear errors.
@Suite(.serialized, .timeLimit(.minutes(3)))
struct RagctlTests {
    @Test func searchStatusGetAndExitCodes() throws {
        try withTemporaryDirectory { (dir: String) throws in
            let docs = dir + "/docs"
            try writeFile(docs + "/install.md", "# Install\n\n## Keys\n\nImport the signing keys with gpg.\n")
            let daemon = try DaemonProcess.start(sources: [docs], in: dir)
            try daemon.waitUntilIndexed()
            let env = ["RAGD_SOCKET": daemon.socketPath]
            let ctl = DaemonProcess.ragctl

            let search = try runProgram(ctl, ["search", "signing keys", "-k", "3"], environment: env)
            #expect(search.status == 0, "\(search.stderr)")
            #expect(search.stdout.contains("\(docs)/install.md:3-5"))
            #expect(search.stdout.contains("Install > Keys"))
            #expect(search.stdout.contains("**signing**"), "matched terms are marked")

            let filtered = try runProgram(ctl, ["search", "signing", "--mode", "bm25", "--tag", "nothing-has-this", "--modified-after", "2000-01-01", "--fail-empty"], environment: env)
            #expect(filtered.status == 1, "tag filter applied: \(filtered.stdout)")
            let json = try runProgram(ctl, ["search", "signing", "--json", "--socket", daemon.socketPath])
            #expect(json.status == 0)
            #expect(json.stdout.hasPrefix("{\"id\":1,\"ok\":true"))

            let status = try runProgram(ctl, ["status"], environment: env)
            #expect(status.status == 0)
            #expect(status.stdout.contains("state:    ready"))
            #expect(status.stdout.contains("files:    1"))

            let get = try runProgram(ctl, ["get", docs + "/install.md:3-5"], environment: env)
            #expect(get.stdout == "## Keys\n\nImport the signing keys with gpg.\n")

            #expect(try runProgram(ctl, ["search", "zebra", "--mode", "bm25", "--fail-empty"], environment: env).status == 1)
            #expect(try runProgram(ctl, ["search"], environment: env).status == 2)
            #expect(try runProgram(ctl, ["search", "x", "-k", "0"], environment: env).status == 2)
            let bad = try runProgram(ctl, ["get", docs + "/install.md:90-95"], environment: env)
            #expect(bad.status == 4)
            #expect(bad.stderr.contains("invalid_argument"))
            let missing = try runProgram(ctl, ["get", "/etc/passwd"], environment: env)
            #expect(missing.status == 4)
            daemon.stop()

            let unreachable = try runProgram(ctl, ["status"], environment: env)
            #expect(unreachable.status == 3)
            #expect(unreachable.stderr.contains("Is ragd running?"))
            #expect(!unreachable.stderr.contains("Fatal error"))
        }
    }

    @Test func helpDocumentsEveryCommand() throws {
        let help = try runProgram(DaemonProcess.ragctl, ["--help"])
        #expect(help.status == 0)
        for command in ["search", "status", "get", "ping"] { #expect(help.stdout.contains(command)) }
        #expect(help.stdout.contains("Exit codes"))
        let daemonHelp = try runProgram(DaemonProcess.binary, ["--help"])
        for flag in ["--source", "--state-dir", "--socket", "--config"] { #expect(daemonHelp.stdout.contains(flag)) }
    }
}
