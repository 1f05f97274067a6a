import Testing
@testable import BraidCLI

@Test func helpListsEverySubcommand() {
    let help = BraidCommand.helpMessage()
    for sub in ["generate", "train", "eval", "predict", "export", "serve", "bench", "demo"] {
        #expect(help.contains(sub), "help should list \(sub)")
    }
}

@Test func negativeSamplingReadsSurfaceEqualsRate() throws {
    let parsed = try #require(NegativeSampling(argument: "home_feed=0.25"))
    #expect(parsed.surface == "home_feed" && parsed.rate == 0.25)
    for bad in ["home_feed", "=0.5", "home_feed=0", "home_feed=1.5", "home_feed=half", ""] {
        #expect(NegativeSampling(argument: bad) == nil, "'\(bad)' should be refused")
    }
    #expect(NegativeSampling.rates([parsed, NegativeSampling(argument: "search=0.5")!]) == ["home_feed": 0.25, "search": 0.5])
    let train = ["--config", "m.json", "--train", "t.csv", "--valid", "v.csv", "--out", "run"]
    #expect(throws: (any Error).self) { try TrainCommand.parse(train + ["--negative-sampling", "home_feed=2"]) }
    #expect(throws: (any Error).self) { try TrainCommand.parse(train + ["--lr-schedule", "linear"]) }
    let command = try TrainCommand.parse(train + ["--negative-sampling", "home_feed=0.5", "--lr-schedule", "cosine"])
    #expect(command.negativeSampling.map(\.surface) == ["home_feed"] && command.lrSchedule == .cosine)
}
