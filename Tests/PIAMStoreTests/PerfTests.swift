import Foundation
import PIAMEngine
import Testing
@testable import PIAMStore

/// A large-graph timing run, off by default: `PIAM_STORE_PERF_USERS=1000000 swift test -c release --filter PerfTests`.
@Suite struct PerfTests {
    static let users = Int(ProcessInfo.processInfo.environment["PIAM_STORE_PERF_USERS"] ?? "") ?? 0

    @Test(.enabled(if: users > 0)) func importLoadExportLargeGraph() throws {
        let dir = TempDir()
        let nUsers = Self.users
        let nOrgs = max(10, nUsers / 100)
        let jsonPath = dir.path("big.json")
        var t0 = Date()
        do {
            FileManager.default.createFile(atPath: jsonPath, contents: nil)
            let h = FileHandle(forWritingAtPath: jsonPath)!
            var buf = ""
            func flush(_ force: Bool = false) {
                if force || buf.utf8.count > 1 << 20 { h.write(Data(buf.utf8)); buf = "" }
            }
            buf += "{\"roles\": [{\"id\": \"agent\", \"permissions\": [\"claim:read\", \"claim:submit:owner\"]}],\n\"orgs\": ["
            for o in 0..<nOrgs {
                let parent = o < 100 ? "partners" : "p\(o % 100)"
                buf += (o > 0 ? ",\n" : "") + "{\"id\": \"p\(o)\", \"parent\": \"\(parent)\", \"name\": \"Partner \(o)\"}"
            }
            buf += "],\n\"entitlements\": [" + (0..<100).map { "{\"org\": \"p\($0)\", \"role\": \"agent\"}" }.joined(separator: ",") + "],\n\"users\": ["
            for u in 0..<nUsers {
                buf += (u > 0 ? ",\n" : "") + "{\"id\": \"user-\(u)\", \"org\": \"p\(u % nOrgs)\", \"name\": \"User \(u)\", \"email\": \"u\(u)@example.com\", \"aliases\": [\"idp|\(u)\"], \"valid_until\": \"2030-01-01T00:00:00Z\"}"
                flush()
            }
            buf += "],\n\"assignments\": ["
            let roles = ["agent", "partner-user", "partner-admin"]
            for u in 0..<nUsers {
                for (k, r) in roles.enumerated() {
                    buf += (u > 0 || k > 0 ? ",\n" : "") + "{\"user\": \"user-\(u)\", \"role\": \"\(r)\"}"
                }
                flush()
            }
            buf += "]}\n"
            flush(true)
            try h.close()
        }
        print("perf: generated \(nUsers) users / \(nUsers * 3) assignments in \(Date().timeIntervalSince(t0)) s")
        let store = try freshStore(dir)
        t0 = Date()
        let doc = try ImportDocument.read(path: jsonPath)
        print("perf: decoded JSON in \(Date().timeIntervalSince(t0)) s")
        t0 = Date()
        let result = try store.importDocument(doc)
        print("perf: imported in \(Date().timeIntervalSince(t0)) s, revision \(result.revision)")
        #expect(result["assignments"].inserted == nUsers * 3)
        t0 = Date()
        let again = try store.importDocument(doc)
        print("perf: re-imported (no change) in \(Date().timeIntervalSince(t0)) s")
        #expect(!again.changed)
        t0 = Date()
        let loaded = try store.loadGraph()
        print("perf: loaded graph in \(Date().timeIntervalSince(t0)) s: \(loaded.graph.counts)")
        #expect(loaded.graph.counts.assignments == nUsers * 3)
        t0 = Date()
        try store.export(toFile: dir.path("out.json"))
        print("perf: exported in \(Date().timeIntervalSince(t0)) s")
    }
}

extension PerfTests {
    static let initPath = ProcessInfo.processInfo.environment["PIAM_STORE_INIT_PATH"] ?? ""

    /// Creates an initialized database at `PIAM_STORE_INIT_PATH` (for poking at it with sqlite3).
    @Test(.enabled(if: !initPath.isEmpty)) func initializeAtPath() throws {
        _ = try Store.initialize(path: Self.initPath)
    }
}
