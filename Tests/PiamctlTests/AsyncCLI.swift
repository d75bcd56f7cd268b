import Foundation
import Testing

extension CLI {
    /// Runs piamctl like ``run(_:env:stdin:)`` without blocking a thread of the test pool while
    /// it runs: output goes to files, and the process's exit resumes the caller. (A test that
    /// blocks in `waitUntilExit` holds one of the pool's few threads; with the daemon suites
    /// running beside it, their waits starve.)
    func runAsync(_ args: [String], stdin: String? = nil) async throws -> Result {
        let id = UUID().uuidString.prefix(8)
        let outPath = path("out-\(id)"), errPath = path("err-\(id)"), inPath = path("in-\(id)")
        _ = FileManager.default.createFile(atPath: outPath, contents: nil)
        _ = FileManager.default.createFile(atPath: errPath, contents: nil)
        _ = FileManager.default.createFile(atPath: inPath, contents: Data((stdin ?? "").utf8))
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Self.binary)
        p.arguments = args
        var e = ProcessInfo.processInfo.environment
        e.removeValue(forKey: "PIAM_DB")
        p.environment = e
        p.standardInput = FileHandle(forReadingAtPath: inPath)
        p.standardOutput = FileHandle(forWritingAtPath: outPath)
        p.standardError = FileHandle(forWritingAtPath: errPath)
        let status: Int32 = try await withCheckedThrowingContinuation { done in
            p.terminationHandler = { done.resume(returning: $0.terminationStatus) }
            do { try p.run() } catch {
                p.terminationHandler = nil
                done.resume(throwing: error)
            }
        }
        return Result(code: status, out: (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "",
                      err: (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "")
    }

    /// ``runAsync(_:stdin:)`` against this test's database, as ``db(_:_:)``.
    @discardableResult
    func dbAsync(_ command: String, _ args: String...) async throws -> Result {
        try await runAsync([command, "--db", db] + args)
    }

    /// The database's revision (`status --json`).
    func revisionAsync() async throws -> Int {
        (try await dbAsync("status", "--json").object["revision"] as? Int) ?? -1
    }
}
