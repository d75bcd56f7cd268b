import ArgumentParser
import PIAMAdmin

@main
struct PiamAdmind: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "piam-admind", version: AdminDaemon.version)
    func run() throws {}
}
