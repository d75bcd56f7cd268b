import Synchronization

/// How the graph has been kept current since start: journal applies and full reloads, for the
/// STATUS document (`reloads`). Written by the loader's thread, read by STATUS requests.
public final class ReloadCounters: Sendable {
    /// Journal applies published (each one or more whole transactions).
    public let applies = Atomic<Int>(0)
    /// Full loads published, the startup load included.
    public let fullReloads = Atomic<Int>(0)
    /// SIGHUPs handled to the end, whether the reload they asked for succeeded or not. Counted
    /// after `READY=1` is sent, so a reload helper (`piamctl reload`) that waits for this
    /// number to move exits only once systemd has been told the reload is over.
    public let sighups = Atomic<Int>(0)
    /// Microseconds the last apply took: journal read, engine apply, publish.
    public let lastApplyMicros = Atomic<Int>(0)
    /// Microseconds the engine's `applying` took in the last apply.
    public let lastEngineApplyMicros = Atomic<Int>(0)
    /// Distinct keys and journal rows of the last apply.
    public let lastApplyKeys = Atomic<Int>(0)
    public let lastApplyRows = Atomic<Int>(0)
    /// The largest apply so far, in microseconds.
    public let maxApplyMicros = Atomic<Int>(0)

    public init() {}

    /// Records one published apply.
    public func recordApply(micros: Int, engineMicros: Int, keys: Int, rows: Int) {
        applies.add(1, ordering: .relaxed)
        lastApplyMicros.store(micros, ordering: .relaxed)
        lastEngineApplyMicros.store(engineMicros, ordering: .relaxed)
        lastApplyKeys.store(keys, ordering: .relaxed)
        lastApplyRows.store(rows, ordering: .relaxed)
        var seen = maxApplyMicros.load(ordering: .relaxed)
        while micros > seen {
            let (exchanged, now) = maxApplyMicros.compareExchange(expected: seen, desired: micros, ordering: .relaxed)
            if exchanged { break }
            seen = now
        }
    }

    /// Records one published full load.
    public func recordFullReload() { fullReloads.add(1, ordering: .relaxed) }

    /// Records one SIGHUP handled to the end.
    public func recordSighup() { sighups.add(1, ordering: .releasing) }
}
