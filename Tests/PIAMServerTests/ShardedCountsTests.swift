import Dispatch
@testable import PIAMServer
import Testing

/// The query path's counters: each thread adds into its own shard; the sums are exact.
@Suite("sharded counters (the metrics the query path adds to)")
struct ShardedCountsTests {
    @Test("8 threads adding at once: every figure's sum exact, neighbours untouched")
    func concurrentSumsAreExact() {
        let counts = ShardedCounts(count: 13)
        DispatchQueue.concurrentPerform(iterations: 8) { t in
            let shard = ShardedCounts.currentShard
            #expect(shard >= 0 && shard < ShardedCounts.shards)
            #expect(ShardedCounts.currentShard == shard, "a thread keeps its shard")
            for i in 0..<50_000 { counts.add(3, 1, shard: shard); counts.add(12, t, shard: shard); if i % 2 == 0 { counts.add(0, 2, shard: shard) } }
        }
        #expect(counts.total(3) == 400_000)
        #expect(counts.total(12) == 50_000 * (0..<8).reduce(0, +))
        #expect(counts.total(0) == 8 * 25_000 * 2)
        #expect((1..<12).filter { $0 != 3 }.allSatisfy { counts.total($0) == 0 })
    }
}
