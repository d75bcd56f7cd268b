import Foundation
import PIAMEngine
@testable import PIAMServer
import Testing

@Suite("database.replica and reload.poll_ms configuration")
struct ReplicaConfigTests: ConfigLoading {
    @Test("database.replica: a JSON boolean or true/false/yes/no/1/0 in the environment; replica_max_age_ms at least 1")
    func replicaKeys() async throws {
        let d = try await load("{}")
        #expect(!d.databaseReplica && d.replicaMaxAgeMS == 30_000)
        let f = try await load(#"{"database": {"replica": true, "replica_max_age_ms": 5000}}"#)
        #expect(f.databaseReplica && f.replicaMaxAgeMS == 5000)
        for (text, expected) in [("true", true), ("yes", true), ("1", true), ("false", false), ("0", false)] {
            #expect(try await load("{}", env: ["PIAMD_DATABASE_REPLICA": text]).databaseReplica == expected, "\(text)")
        }
        #expect(try await load(#"{"database": {"replica": true}}"#, env: ["PIAMD_DATABASE_REPLICA": "false"]).databaseReplica == false)
        #expect(await message(#"{"database": {"replica": "yes"}}"#).contains("database.replica must be true or false"))
        #expect(await message(#"{"database": {"replica": 1}}"#).contains("database.replica must be true or false"))
        #expect(await message("{}", env: ["PIAMD_DATABASE_REPLICA": "sometimes"]).contains("database.replica"))
        #expect(await message(#"{"database": {"replica_max_age_ms": 0}}"#).contains("database.replica_max_age_ms"))
        #expect(await message(#"{"database": {"replica_max_age_ms": true}}"#).contains("must be an integer"))
    }

    @Test("reload.poll_ms 0 (once 'no polling') is verified every 1000 ms")
    func pollZero() async throws {
        #expect(try await load(#"{"reload": {"poll_ms": 0}}"#).reloadVerifyMS == 1000)
        #expect(try await load(#"{"reload": {"poll_ms": 250}}"#).reloadVerifyMS == 250)
    }
}
