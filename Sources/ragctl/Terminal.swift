import Glibc

/// What stdout is: a terminal that takes colours and cursor movement, or a pipe or file that gets plain text.
enum Terminal {
    /// stdout is a terminal.
    static let isTTY = isatty(1) == 1
    /// Redrawing in place works: a terminal that is not `TERM=dumb`.
    static let interactive = isTTY && environment("TERM") != "dumb"
    /// Colours and bold: an interactive terminal, and `NO_COLOR` unset or empty (https://no-color.org).
    static let color = interactive && (environment("NO_COLOR") ?? "").isEmpty

    static func environment(_ name: String) -> String? {
        getenv(name).map { String(cString: $0) }
    }

    /// Columns of the terminal (80 when unknown).
    static var width: Int {
        var size = winsize()
        guard ioctl(1, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0 else { return 80 }
        return Int(size.ws_col)
    }

    /// Writes `text` to stdout at once (no buffering between redraws).
    static func write(_ text: String) {
        var text = text
        text.withUTF8 { bytes in
            var offset = 0
            while offset < bytes.count {
                let n = Glibc.write(1, bytes.baseAddress! + offset, bytes.count - offset)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { return }
                offset += n
            }
        }
    }
}

enum Style: String { case bold = "1", dim = "2", red = "31", green = "32", yellow = "33", cyan = "36", match = "1;33" }

/// `text` in `style` when colours are on, else as is.
func style(_ text: String, _ style: Style) -> String {
    Terminal.color ? "\u{1B}[\(style.rawValue)m\(text)\u{1B}[0m" : text
}

/// `text` cut to `width` visible characters (escape sequences do not count), with `…` when cut.
func fit(_ text: String, width: Int) -> String {
    var out = ""
    var visible = 0
    var inEscape = false
    var cut = false
    for character in text {
        if inEscape {
            out.append(character)
            if character.isLetter { inEscape = false }
            continue
        }
        if character == "\u{1B}" {
            inEscape = true
            out.append(character)
            continue
        }
        if visible == width - 1 && !cut {
            // Keep one column for the ellipsis if more visible text follows.
            cut = true
            out.append("…")
            visible += 1
            continue
        }
        if cut { continue }
        out.append(character)
        visible += 1
    }
    guard cut else { return text }
    return Terminal.color ? out + "\u{1B}[0m" : out
}

/// A block of lines redrawn in place on an interactive terminal (each `show` replaces the previous block);
/// elsewhere each `show` just prints its lines.
final class LiveBlock {
    private var shown = 0

    func show(_ lines: [String]) {
        guard Terminal.interactive else {
            for line in lines { Terminal.write(line + "\n") }
            return
        }
        let width = Terminal.width
        var text = shown > 0 ? "\u{1B}[\(shown)A\r\u{1B}[J" : ""
        for line in lines { text += fit(line, width: width) + "\n" }
        Terminal.write(text)
        shown = lines.count
    }
}

/// `[########----------------]`, `done` of `total`, 24 cells wide.
func progressBar(done: Int, total: Int, width: Int = 24) -> String {
    let fraction = total > 0 ? min(1, max(0, Double(done) / Double(total))) : 0
    let filled = Int((fraction * Double(width)).rounded(.down))
    let bar = String(repeating: "#", count: filled)
    return "[" + (filled > 0 ? style(bar, .green) : "") + String(repeating: "-", count: width - filled) + "]"
}

/// `12s`, `4m05s`, `2h10m`.
func formatDuration(_ seconds: Double) -> String {
    guard seconds.isFinite, seconds >= 0 else { return "?" }
    let s = Int(seconds.rounded(.up))
    if s < 60 { return "\(s)s" }
    if s < 3600 { return "\(s / 60)m" + (s % 60 < 10 ? "0" : "") + "\(s % 60)s" }
    let minutes = (s % 3600) / 60
    return "\(s / 3600)h" + (minutes < 10 ? "0" : "") + "\(minutes)m"
}

/// `0.4`, `24.0`, `1250`: one decimal below 100.
func formatRate(_ rate: Double) -> String {
    rate >= 100 ? "\(Int(rate.rounded()))" : "\((rate * 10).rounded() / 10)"
}

/// Rate and time left of a count advancing at `rate` per second: `24.0 files/s, ETA 16s` (empty without a rate).
func rateAndETA(done: Int, total: Int, rate: Double?, unit: String) -> String {
    guard let rate, rate > 0 else { return "" }
    return "\(formatRate(rate)) \(unit)/s, ETA \(formatDuration(Double(max(0, total - done)) / rate))"
}

/// Ends the process on Ctrl-C with status 0, or 130 with `failing` (after a newline on a terminal, so the shell
/// prompt starts on a fresh line).
func exitOnInterrupt(failing: Bool) {
    // A parent may have left SIGINT blocked (the mask is inherited): Ctrl-C must still end the watch.
    var interrupt = sigset_t()
    sigemptyset(&interrupt)
    sigaddset(&interrupt, SIGINT)
    sigprocmask(SIG_UNBLOCK, &interrupt, nil)
    if failing {
        signal(SIGINT) { _ in
            if Terminal.interactive { _ = Glibc.write(1, "\n", 1) }
            _exit(130)
        }
    } else {
        signal(SIGINT) { _ in
            if Terminal.interactive { _ = Glibc.write(1, "\n", 1) }
            _exit(0)
        }
    }
}
