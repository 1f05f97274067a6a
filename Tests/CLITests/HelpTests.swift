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
    for bad in ["home_feed", "=0.5", "home_feed=half", ""] {
        #expect(NegativeSampling(argument: bad) == nil, "'\(bad)' should be refused")
    }
    #expect(NegativeSampling.rates([parsed, NegativeSampling(argument: "search=0.5")!]) == ["home_feed": 0.25, "search": 0.5])
    let train = ["--config", "m.json", "--train", "t.csv", "--valid", "v.csv", "--out", "run"]
    for rate in ["2", "0", "-0.5", "nan"] {
        #expect { try TrainCommand.parse(train + ["--negative-sampling", "home_feed=" + rate]) } throws: { error in
            TrainCommand.message(for: error).contains("expected a share of rows in (0, 1]")
        }
    }
    #expect(throws: (any Error).self) { try DemoCommand.parse(["--negative-sampling", "home_feed=1.5"]) }
    #expect(throws: (any Error).self) { try TrainCommand.parse(train + ["--lr-schedule", "linear"]) }
    let command = try TrainCommand.parse(train + ["--negative-sampling", "home_feed=0.5", "--lr-schedule", "cosine"])
    #expect(command.schedule.negativeSampling.map(\.surface) == ["home_feed"] && command.schedule.lrSchedule == .cosine)
}

@Test func trainAndDemoStateTheirOwnScheduleAndSamplingDefaults() throws {
    let demo = try DemoCommand.parse([])
    #expect(demo.schedule.lrSchedule == nil && demo.schedule.negativeSampling.isEmpty, "each command applies its own defaults")
    let demoHelp = DemoCommand.helpMessage(columns: 1000), trainHelp = TrainCommand.helpMessage(columns: 1000)
    #expect(demoHelp.contains("--lr-schedule cosine") && demoHelp.contains("--negative-sampling home_feed=0.5"))
    #expect(trainHelp.contains("--lr-schedule constant") && trainHelp.contains("no --negative-sampling"))
}
