import Testing
@testable import BraidCLI

@Test func helpListsEverySubcommand() {
    let help = BraidCommand.helpMessage()
    for sub in ["generate", "train", "eval", "predict", "export", "serve", "bench", "demo"] {
        #expect(help.contains(sub), "help should list \(sub)")
    }
}
