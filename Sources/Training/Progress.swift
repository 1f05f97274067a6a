import Foundation

/// A one-line progress display on stderr (rows/s, loss, ETA), redrawn at most
/// every half second; plain lines when stderr is not a terminal.
public final class ProgressLine {
    private let total: Int
    private let label: String
    private let start = Date()
    private var last = Date.distantPast
    private let isTerminal = isatty(2) != 0
    public var enabled: Bool

    public init(label: String, total: Int, enabled: Bool = true) {
        self.label = label
        self.total = total
        self.enabled = enabled
    }

    /// Reports `done` of `total` rows with the running mean loss.
    public func update(done: Int, loss: Double, force: Bool = false) {
        guard enabled else { return }
        let now = Date()
        guard force || now.timeIntervalSince(last) >= (isTerminal ? 0.5 : 10) else { return }
        last = now
        let elapsed = max(now.timeIntervalSince(start), 1e-9)
        let rate = Double(done) / elapsed
        let eta = rate > 0 ? Double(total - done) / rate : 0
        let line = label + String(format: " %d/%d rows  %.0f rows/s  loss %.5f  ETA ", done, total, rate, loss) + formatDuration(eta)
        FileHandle.standardError.write(((isTerminal ? "\r\u{1B}[K" : "") + line + (isTerminal ? "" : "\n")).data(using: .utf8)!)
    }

    /// Ends the line.
    public func finish() {
        if enabled && isTerminal { FileHandle.standardError.write("\n".data(using: .utf8)!) }
    }
}

/// "1h02m", "3m05s", "12s".
public func formatDuration(_ seconds: Double) -> String {
    let s = Int(seconds.rounded())
    if s >= 3600 { return String(format: "%dh%02dm", s / 3600, (s % 3600) / 60) }
    if s >= 60 { return String(format: "%dm%02ds", s / 60, s % 60) }
    return "\(s)s"
}

/// Writes a line to stderr.
public func log(_ message: String) {
    FileHandle.standardError.write((message + "\n").data(using: .utf8)!)
}
