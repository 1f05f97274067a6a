import ArgumentParser
import Foundation
import Synthetic

/// `braid generate --out DIR [--rows N] [--seed S]` (SPEC 6): synthetic multi-surface
/// data with ground-truth probabilities, and a model.json for it.
struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Write synthetic multi-surface ad-engagement data with known ground truth.",
        discussion: """
            Writes DIR/train.csv, DIR/valid.csv, DIR/test.csv (70/15/15% of the rows, with \
            p_click and p_save columns holding the true probabilities), DIR/model.json (a \
            SPEC 2.8 config sized for the data) and DIR/README.txt (the generative process \
            and the measured base rates and oracle AUCs, also printed to stderr).

            Three surfaces share users, ads and user interests: home_feed (60% of rows, \
            tasks click and save), search (25%, click; query_tokens and query_ad_sim) and \
            related_pins (15%, click and save; context_pin_cat). Part of the true click \
            probability depends on the user's recent actions (seq_items, seq_actions). \
            Same seed and options, same bytes.

            Example: braid generate --out data && braid train --config data/model.json \
            --train data/train.csv --valid data/valid.csv --out run
            """)

    @Option(name: .long, help: ArgumentHelp("Output directory (created if missing).", valueName: "dir"))
    var out: String

    @Option(name: .long, help: ArgumentHelp("Total rows over train, valid and test.", valueName: "n"))
    var rows: Int = SyntheticConfiguration().rows

    @Option(name: .long, help: ArgumentHelp("Seed of every random draw (xoshiro256**).", valueName: "s"))
    var seed: UInt64 = 0

    @Option(name: .long, help: ArgumentHelp("Number of users (default: rows / 20, at least 50).", valueName: "n"))
    var users: Int?

    @Option(name: .long, help: ArgumentHelp("Number of ads (default: rows / 40, at least 100); advertisers are ads / 10.",
                                            valueName: "n"))
    var ads: Int?

    @Option(name: .long, help: ArgumentHelp("Probability that a label cell is left empty.", valueName: "p"))
    var missingLabelRate: Double = 0.01

    @Flag(name: .long, help: "Print nothing but errors.")
    var quiet = false

    func validate() throws {
        do {
            try makeConfiguration().validate()
        } catch let error as SyntheticError {
            throw ValidationError(error.description)
        }
    }

    private func makeConfiguration() -> SyntheticConfiguration {
        SyntheticConfiguration(rows: rows, seed: seed, users: users, ads: ads, missingLabelRate: missingLabelRate)
    }

    func run() throws {
        let generator = try SyntheticGenerator(configuration: makeConfiguration())
        let quiet = quiet
        let report = try generator.write(to: out) { written, total in
            if !quiet { FileHandle.standardError.write(Data("generate: \(written)/\(total) rows\n".utf8)) }
        }
        if !quiet {
            FileHandle.standardError.write(Data("""
                wrote \(out)/{train,valid,test}.csv, model.json, README.txt
                \(report.timing)
                \(report.summary)\n
                """.utf8))
        }
    }
}
