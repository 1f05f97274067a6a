import BraidCLI

BraidCommand.main()
