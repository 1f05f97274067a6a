import ArgumentParser

/// `--negative-sampling SURFACE=RATE`: keep RATE of SURFACE's all-negative training rows
/// (`TrainingOptions.negativeKeepRate`). Parsing checks the syntax only; the range of RATE,
/// (0, 1], is `TrainRun.checkNegativeKeepRate`'s to check.
struct NegativeSampling: ExpressibleByArgument {
    var surface: String
    var rate: Double

    init?(argument: String) {
        let parts = argument.split(separator: "=", maxSplits: 1).map(String.init)
        guard parts.count == 2, !parts[0].isEmpty, let rate = Double(parts[1]) else { return nil }
        surface = parts[0]
        self.rate = rate
    }

    /// Surface -> keep rate; a surface given twice keeps its last rate.
    static func rates(_ list: [NegativeSampling]) -> [String: Double] {
        Dictionary(list.map { ($0.surface, $0.rate) }, uniquingKeysWith: { $1 })
    }
}
