import PIAMEngine
import PIAMStore

#if canImport(Glibc)
import Glibc
#endif

/// One event loop's usage since the last flush: per (user, type, action) allowed and denied
/// counts with the first and last allowed time, and per allowing holding its uses and last use —
/// in the deciding graph's slot numbers (``DecisionFacts``), named later by the flusher.
///
/// Lives on one event loop thread, which alone records into it (through the thread-local
/// ``current``), with no lock, atomic or allocation per decision once the tables have grown; the
/// flusher takes it with ``take()`` in a task run on that loop. The tables are open-addressing
/// hash tables over plain memory. A decision costs one probe: a feature's entry also carries the
/// holding that allowed its latest allowed decisions and how many of them in a row (almost
/// always one holding allows a person a feature); only when another holding takes over is that
/// run moved to the holdings table, its last use being the feature's last allowed time then.
///
/// Memory is bounded: at most `maxKeys` distinct keys (features plus holdings moved out) per
/// flush interval; a decision whose key would exceed it is not recorded and counted in
/// ``dropped`` (`piam_usage_dropped_total`). A feature slot is 32 bytes and a holding slot 16;
/// the tables double and stay ≤ 75 % full, so a feature key costs 43–86 bytes (1M keys: 64 MB).
public final class LoopUsage {
    /// 32 bytes: two to a cache line. Times are milliseconds after the interval's `base`
    /// (a table lives one flush interval; 2³² ms is 49 days).
    @usableFromInline
    struct Feature {
        @usableFromInline var key: UInt64
        @usableFromInline var allowed: UInt32
        @usableFromInline var denied: UInt32
        @usableFromInline var firstAllowed: UInt32
        @usableFromInline var lastAllowed: UInt32
        /// The holding slot + 1 (0: none) that allowed the latest allowed decisions, and how
        /// many of them it allowed in a row (the run not yet in the holdings table).
        @usableFromInline var holding: UInt32
        @usableFromInline var holdingUses: UInt32
    }
    @usableFromInline
    struct Holding {
        @usableFromInline var key: UInt64
        @usableFromInline var uses: UInt32
        /// Milliseconds after the table's base.
        @usableFromInline var lastUsed: UInt32
    }

    /// A table of the interval, with the graph whose slots it counts.
    struct Taken: @unchecked Sendable {
        // @unchecked: the tables' memory moves with the value; the loop that filled them
        // no longer refers to it (``LoopUsage/take()`` hands it over whole).
        var graph: AccessGraph?
        var features: Table<Feature>
        var holdings: Table<Holding>
        /// The time the tables' times count from.
        var base: Timestamp
        /// Decision-log records decided on `graph` (``DecisionLogBuffer``), and the loop's index.
        var log: [UInt8] = []
        var loop = 0
    }

    /// Whether decisions are tallied (`usage.path` set).
    @usableFromInline let tallies: Bool
    /// The decision log's records (`decision_log.path` set).
    @exclusivity(unchecked) private var log: DecisionLogBuffer?
    /// Whether ``log`` is set (read on the query path without touching the buffer).
    let logging: Bool
    @exclusivity(unchecked) private var logDropped = 0

    let maxKeys: Int
    // @exclusivity(unchecked): the loop's thread alone touches these (see the type's comment);
    // the run-time exclusivity check of a class's stored property costs more than the tally.
    // @usableFromInline: ``record(_:allowed:graph:now:)`` is inlined where it is called, in
    // piamd's query path and in the benchmark that times it (piam-scale usage) alike.
    @exclusivity(unchecked) @usableFromInline private(set) var graph: AccessGraph?
    @exclusivity(unchecked) @usableFromInline var features: Table<Feature>
    @exclusivity(unchecked) private var holdings: Table<Holding>
    /// The time this interval's times count from: the first decision's after a take or a new graph.
    @exclusivity(unchecked) @usableFromInline var base: Timestamp = 0
    /// Intervals' tables of graphs replaced while this interval ran (a new graph renumbers slots).
    @exclusivity(unchecked) private var retired: [Taken] = []
    @exclusivity(unchecked) private var keys = 0
    /// Decisions not recorded this interval because the table was full.
    @exclusivity(unchecked) public private(set) var dropped = 0

    /// - Parameter maxKeys: distinct keys tallied per flush interval (``DaemonConfig/usageMaxKeys``).
    public convenience init(maxKeys: Int) {
        self.init(maxKeys: maxKeys, tallies: true, log: nil)
    }

    init(maxKeys: Int, tallies: Bool, log: DecisionLogBuffer?) {
        self.tallies = tallies
        self.log = log
        logging = log != nil
        self.maxKeys = max(16, maxKeys)
        features = Table(capacity: 1024)
        holdings = Table(capacity: 256)
    }

    deinit {
        features.free()
        holdings.free()
        for t in retired { t.free() }
    }

    /// Records one decision decided on `graph` (its facts from ``AccessGraph/check(utf8:now:facts:)``).
    @inlinable @inline(__always)
    public func record(_ f: DecisionFacts, allowed: Bool, graph g: AccessGraph, now: Timestamp) {
        if g !== graph { switchGraph(g, now: now) }
        if f.subject < 0 || !tallies { return }
        let fk = UInt64(UInt32(bitPattern: f.subject)) << 32
            | UInt64(UInt16(truncatingIfNeeded: f.type)) << 16 | UInt64(UInt16(truncatingIfNeeded: f.action)) | (1 << 63)
        // The hit is inline (a multiply, a probe, a compare); a miss inserts out of line.
        guard let e = features.find(fk) ?? insertFeature(fk) else { return }
        if allowed {
            // Before the base (the clock stepped back): the base.
            let t = UInt32(clamping: max(0, now &- base))
            if e.pointee.allowed == 0 { e.pointee.firstAllowed = t }
            e.pointee.allowed &+= 1
            let h = UInt32(bitPattern: f.holding &+ 1)
            if h != e.pointee.holding { switchHolding(e, to: h) }
            e.pointee.holdingUses &+= 1
            e.pointee.lastAllowed = t
        } else {
            e.pointee.denied &+= 1
        }
    }

    @usableFromInline @inline(never)
    func insertFeature(_ key: UInt64) -> UnsafeMutablePointer<Feature>? {
        guard admit() else { return nil }
        return features.insert(key)
    }

    /// Another holding allows the feature: the previous one's run goes to the holdings table
    /// (its last use: the feature's last allowed decision so far, which it allowed).
    @usableFromInline @inline(never)
    func switchHolding(_ e: UnsafeMutablePointer<Feature>, to h: UInt32) {
        let old = e.pointee.holding, uses = e.pointee.holdingUses
        e.pointee.holding = h
        e.pointee.holdingUses = 0
        guard old != 0, uses > 0 else { return }
        let hk = UInt64(old &- 1) | (1 << 63)
        guard let x = holdings.find(hk) ?? (admit() ? holdings.insert(hk) : nil) else { return }
        x.pointee.uses &+= uses
        x.pointee.lastUsed = max(x.pointee.lastUsed, e.pointee.lastAllowed)
    }

    /// Whether one more key fits this interval (else the decision is dropped and counted).
    private func admit() -> Bool {
        guard keys < maxKeys else {
            dropped &+= 1
            return false
        }
        keys &+= 1
        return true
    }

    /// Adds decision `d` to the decision log when the policy selects it (call after
    /// ``record(_:allowed:graph:now:)``, which settled the graph).
    @inline(__always)
    func log(_ d: Decision, _ f: DecisionFacts, revision: Int64, now: Timestamp, _ c: CheckBytes) {
        guard log!.wants(d) else { return }
        log!.append(d, holding: f.holding, revision: revision, now: now, c.subject, c.action, c.resourceType, c.resourceID)
    }

    /// ``log(_:_:revision:now:_:)`` for a decoded request.
    func log(_ d: Decision, _ f: DecisionFacts, revision: Int64, now: Timestamp, _ c: CheckRequest) {
        guard log!.wants(d) else { return }
        let fields = [c.subject, c.action, c.resource.type, c.resource.id].map { Array($0.utf8) }
        fields[0].withUnsafeBytes { s in fields[1].withUnsafeBytes { a in fields[2].withUnsafeBytes { t in fields[3].withUnsafeBytes { i in
            log!.append(d, holding: f.holding, revision: revision, now: now, s, a, t, i)
        } } } }
    }

    /// The first decision of an interval, or one on a new graph: the tables so far (if any) are
    /// retired with their graph, and times count from `now`.
    @usableFromInline
    func switchGraph(_ g: AccessGraph, now: Timestamp) {
        if graph != nil && (features.count > 0 || holdings.count > 0 || !(log?.bytes.isEmpty ?? true)) {
            retired.append(Taken(graph: graph, features: features, holdings: holdings, base: base, log: takeLog(), loop: log?.loop ?? 0))
            features = Table(fitting: features.count)
            holdings = Table(fitting: holdings.count)
        }
        graph = g
        base = now
    }

    private func takeLog() -> [UInt8] {
        guard log != nil else { return [] }
        let (records, dropped) = log!.take()
        logDropped += dropped
        return records
    }

    /// Bytes the tables hold now (this interval's and those of replaced graphs).
    public var memoryBytes: Int {
        func bytes(_ f: Table<Feature>, _ h: Table<Holding>) -> Int {
            f.capacity * MemoryLayout<Feature>.stride + h.capacity * MemoryLayout<Holding>.stride
        }
        return bytes(features, holdings) + retired.reduce(0) { $0 + bytes($1.features, $1.holdings) }
    }

    /// Distinct keys tallied this interval.
    public var keyCount: Int { keys }

    /// Forgets everything recorded (what a flush does, without writing it).
    public func discard() {
        for t in take().tables { t.free() }
    }

    /// Everything recorded since the last take, and the drops; the tables start again empty at
    /// the size this interval's keys needed (a busy interval's tables do not stay large, and
    /// sparse, through quiet ones: a probe of a sparse table misses the caches).
    func take() -> (tables: [Taken], dropped: Int, logDropped: Int) {
        var out = retired
        retired = []
        let records = takeLog()
        if features.count > 0 || holdings.count > 0 || !records.isEmpty {
            out.append(Taken(graph: graph, features: features, holdings: holdings, base: base, log: records, loop: log?.loop ?? 0))
            features = Table(fitting: features.count)
            holdings = Table(fitting: holdings.count)
        }
        graph = nil
        keys = 0
        defer {
            dropped = 0
            logDropped = 0
        }
        return (out, dropped, logDropped)
    }

    // MARK: The recorder of the current thread

    /// The tally of the calling thread (an event loop's), or nil when usage is not recorded
    /// there: one `pthread_getspecific` on the query path.
    @inline(__always)
    static var current: LoopUsage? {
        guard let p = pthread_getspecific(threadKey) else { return nil }
        return Unmanaged<LoopUsage>.fromOpaque(p).takeUnretainedValue()
    }

    /// Makes `usage` the calling thread's tally for the rest of its life (retained by the thread).
    static func install(_ usage: LoopUsage) {
        if let old = pthread_getspecific(threadKey) { Unmanaged<LoopUsage>.fromOpaque(old).release() }
        pthread_setspecific(threadKey, Unmanaged.passRetained(usage).toOpaque())
    }

    /// Stops recording on the calling thread.
    static func uninstall() {
        if let old = pthread_getspecific(threadKey) { Unmanaged<LoopUsage>.fromOpaque(old).release() }
        pthread_setspecific(threadKey, nil)
    }

    private static let threadKey: pthread_key_t = {
        var k = pthread_key_t()
        pthread_key_create(&k, nil)
        return k
    }()
}

@available(*, unavailable)
extension LoopUsage: Sendable {}

@usableFromInline
protocol TableEntry {
    var key: UInt64 { get set }
    static var empty: Self { get }
}

extension LoopUsage.Feature: TableEntry {
    @usableFromInline static var empty: Self { Self(key: 0, allowed: 0, denied: 0, firstAllowed: 0, lastAllowed: 0, holding: 0, holdingUses: 0) }
}

extension LoopUsage.Holding: TableEntry {
    @usableFromInline static var empty: Self { Self(key: 0, uses: 0, lastUsed: 0) }
}

/// An open-addressing hash table (linear probing, key 0 = empty) over memory it owns, kept at
/// most 75 % full. A value type whose copies share the memory: it has exactly one owner at a
/// time (the loop's tally, then the flusher), which frees it with ``free()``.
@usableFromInline
struct Table<E: TableEntry> {
    @usableFromInline private(set) var slots: UnsafeMutablePointer<E>
    @usableFromInline private(set) var capacity: Int
    private(set) var count = 0

    init(capacity: Int) {
        var c = 16
        while c < capacity { c <<= 1 }
        self.capacity = c
        slots = .allocate(capacity: c)
        slots.initialize(repeating: .empty, count: c)
    }

    /// A table sized for `count` keys at most 75 % full (at least 256 slots).
    init(fitting count: Int) {
        self.init(capacity: max(256, count * 4 / 3 + 1))
    }

    @inlinable @inline(__always)
    func home(_ key: UInt64) -> Int { Int(truncatingIfNeeded: (key &* 0x9E37_79B9_7F4A_7C15) >> 32) & (capacity &- 1) }

    @inlinable @inline(__always)
    func find(_ key: UInt64) -> UnsafeMutablePointer<E>? {
        var i = home(key)
        while true {
            let k = slots[i].key
            if k == key { return slots + i }
            if k == 0 { return nil }
            i = (i &+ 1) & (capacity &- 1)
        }
    }

    /// Inserts `key` (absent) and returns its entry.
    @usableFromInline
    mutating func insert(_ key: UInt64) -> UnsafeMutablePointer<E> {
        if (count + 1) * 4 > capacity * 3 { grow() }
        var i = home(key)
        while slots[i].key != 0 { i = (i + 1) & (capacity - 1) }
        slots[i].key = key
        count += 1
        return slots + i
    }

    private mutating func grow() {
        let old = slots, oldCapacity = capacity
        capacity <<= 1
        slots = .allocate(capacity: capacity)
        slots.initialize(repeating: .empty, count: capacity)
        for j in 0..<oldCapacity where old[j].key != 0 {
            var i = home(old[j].key)
            while slots[i].key != 0 { i = (i + 1) & (capacity - 1) }
            slots[i] = old[j]
        }
        old.deallocate()
    }

    /// Every entry in use.
    func forEach(_ body: (E) -> Void) {
        for i in 0..<capacity where slots[i].key != 0 { body(slots[i]) }
    }

    /// Frees the memory (the table must not be used afterwards).
    func free() { slots.deallocate() }
}

extension LoopUsage.Taken {
    /// Tables decided on one graph (`graph`), merged on their slot numbers and named once per
    /// key: the batch they add to the usage database. Frees the tables.
    ///
    /// Merging on integers first is what keeps a flush cheap: the loops' tables mostly hold the
    /// same keys (a steady mix spread over the loops), and naming a key means reading the graph's
    /// memory at that person's slot, which is rarely in the caches.
    static func name(_ tables: [Self], graph: AccessGraph) -> UsageBatch {
        /// One feature entry with absolute times (`first` .max and `last` .min when none allowed).
        struct Row {
            var key: UInt64
            var allowed: Int
            var denied: Int
            var first: Timestamp
            var last: Timestamp
        }
        var rows: [Row] = []
        rows.reserveCapacity(tables.reduce(0) { $0 + $1.features.count })
        var runs: [Int32: (uses: Int, last: Timestamp)] = [:]
        func addRun(_ slot: Int32, _ uses: Int, _ last: Timestamp) {
            if let x = runs[slot] {
                runs[slot] = (x.uses + uses, max(x.last, last))
            } else {
                runs[slot] = (uses, last)
            }
        }
        for t in tables {
            t.features.forEach { e in
                let last = t.base + Timestamp(e.lastAllowed)
                // The run of the holding the entry still carries.
                if e.holding != 0, e.holdingUses > 0 { addRun(Int32(bitPattern: e.holding &- 1), Int(e.holdingUses), last) }
                rows.append(Row(key: e.key, allowed: Int(e.allowed), denied: Int(e.denied),
                                first: e.allowed > 0 ? t.base + Timestamp(e.firstAllowed) : .max, last: e.allowed > 0 ? last : .min))
            }
            // Runs moved out when another holding took over a feature.
            t.holdings.forEach { e in
                addRun(Int32(bitPattern: UInt32(truncatingIfNeeded: e.key)), Int(e.uses), t.base + Timestamp(e.lastUsed))
            }
            t.free()
        }
        var batch = UsageBatch()
        // In slot order: a person's features together.
        rows.sort { $0.key < $1.key }
        batch.features.reserveCapacity(rows.count)
        var i = 0
        while i < rows.count {
            var r = rows[i]
            i += 1
            while i < rows.count && rows[i].key == r.key {
                r.allowed += rows[i].allowed
                r.denied += rows[i].denied
                r.first = min(r.first, rows[i].first)
                r.last = max(r.last, rows[i].last)
                i += 1
            }
            var f = DecisionFacts()
            f.subject = Int32(truncatingIfNeeded: (r.key >> 32) & 0x7FFF_FFFF)
            f.type = Int32(Int16(bitPattern: UInt16(truncatingIfNeeded: r.key >> 16)))
            f.action = Int32(Int16(bitPattern: UInt16(truncatingIfNeeded: r.key)))
            guard let n = graph.usageNames(f) else { continue }
            batch.features.append(UsageBatch.Feature(user: n.user, partner: n.partner ?? "", type: n.type, action: n.action,
                                                     allowed: r.allowed, denied: r.denied,
                                                     firstAllowed: r.allowed > 0 ? r.first : nil, lastAllowed: r.allowed > 0 ? r.last : nil))
        }
        batch.holdings.reserveCapacity(runs.count)
        for (slot, run) in runs {
            guard let key = graph.holdingKey(slot) else { continue }
            batch.holdings.append(UsageBatch.Holding(holding: key, uses: run.uses, lastUsed: run.last))
        }
        return batch
    }

    /// Frees the tables without naming them.
    func free() {
        features.free()
        holdings.free()
    }
}

/// A feature row's key while batches are merged.
struct FeatureKey: Hashable {
    var user: String
    var type: String
    var action: String
}

extension AccessGraph {
    /// A holding slot (``DecisionFacts/holding``) in names, or nil.
    func holdingKey(_ holding: Int32) -> HoldingKey? {
        switch usageHolding(holding) {
        case .assignment(let user, let role, let scope): .assignment(user: user, role: role, scope: scope)
        case .orgGrant(let org, let role): .orgGrant(org: org, role: role)
        case nil: nil
        }
    }
}
