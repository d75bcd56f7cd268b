/// An immutable-after-build hash table from id strings to small integers, laid out for the
/// check path: open addressing with linear probing, the key and its value in one slot, so a
/// lookup usually costs one cache miss (a `Dictionary` keeps keys and values in separate
/// regions: two or three).
///
/// The hash reads the id eight bytes at a time and is seeded per table with a random value, so
/// ids chosen by a partner admin cannot be crafted to collide on every machine.
struct IDTable: Sendable {
    struct Slot: Sendable {
        var key: String
        /// -1 marks an empty slot.
        var value: Int32
        /// High bits of the key's hash: a probe compares strings only when the tags agree
        /// (comparing two unequal strings is the stdlib's slow path).
        var tag: UInt32
    }

    /// The slots in chunks of at most 4,096 (see ``ChunkedArray``): an insert or removal in a
    /// table shared with an older graph copies one chunk, not the table.
    private(set) var chunks: [[Slot]]
    private(set) var count = 0
    private var mask: Int
    private var shift: Int
    private let seed: UInt64

    static let maxChunkShift = 12

    /// The table grows past this load (3/4): linear probing stays short while the slots of a
    /// million ids take 2^21 × 24 bytes.
    @inline(__always) static func needsGrowth(count: Int, slots: Int) -> Bool { count * 4 > slots * 3 }

    init(capacity: Int = 8) {
        var rng = SystemRandomNumberGenerator()
        self.init(slots: IDTable.size(for: capacity), seed: rng.next())
    }

    private init(slots n: Int, seed: UInt64) {
        shift = min(n.trailingZeroBitCount, IDTable.maxChunkShift)
        let empty = [Slot](repeating: Slot(key: "", value: -1, tag: 0), count: 1 << shift)
        chunks = [[Slot]](repeating: empty, count: n >> shift)
        mask = n - 1
        self.seed = seed
    }

    private static func size(for capacity: Int) -> Int {
        var n = 8
        while IDTable.needsGrowth(count: capacity, slots: n) { n <<= 1 }
        return n
    }

    var slotCount: Int { mask + 1 }

    /// Every occupied slot's key and value.
    var entries: [(key: String, value: Int32)] {
        var out: [(key: String, value: Int32)] = []
        out.reserveCapacity(count)
        for c in chunks { for s in c where s.value >= 0 { out.append((s.key, s.value)) } }
        return out
    }

    /// The value for `key`, if present.
    ///
    /// The probe reads slots in place (no copy of the stored `String`, so no retain/release) and
    /// first compares the key's two raw words: equal raw words mean equal strings (the same
    /// small string, or the same storage). Only when they differ, with equal hash tags, does it
    /// fall back to `==`, which also catches one string stored small and one natively.
    @inline(__always)
    func find(_ key: String) -> Int32? {
        let h = IDTable.hash(key, seed: seed)
        let tag = UInt32(truncatingIfNeeded: h >> 32)
        let raw = unsafeBitCast(key, to: RawKey.self)
        let shift = self.shift
        var i = Int(truncatingIfNeeded: h) & mask
        while true {
            let c = i &>> shift
            let r = chunks[c].withUnsafeBufferPointer { buf -> Int64 in
                var j = i & (buf.count - 1)
                while j < buf.count {
                    let v = buf[j].value
                    if v < 0 { return -1 }
                    if buf[j].tag == tag {
                        let stored = UnsafeRawPointer(buf.baseAddress! + j).load(fromByteOffset: IDTable.keyOffset, as: RawKey.self)
                        if stored.a == raw.a && stored.b == raw.b { return Int64(v) }
                        if buf[j].key == key { return Int64(v) }
                    }
                    j += 1
                }
                return -2  // the probe runs on into the next chunk
            }
            if r >= 0 { return Int32(r) }
            if r == -1 { return nil }
            i = ((c + 1) &<< shift) & mask
        }
    }

    /// The two machine words of a `String` value.
    struct RawKey {
        var a: UInt64
        var b: UInt64
    }

    static let keyOffset = MemoryLayout<Slot>.offset(of: \Slot.key)!

    @inline(__always)
    subscript(key: String) -> Int32? { find(key) }

    private subscript(slot i: Int) -> Slot {
        get { chunks[i &>> shift][i & ((1 << shift) - 1)] }
        set { chunks[i &>> shift][i & ((1 << shift) - 1)] = newValue }
    }

    /// Inserts or replaces; returns the previous value.
    @discardableResult
    mutating func insert(_ key: String, _ value: Int32) -> Int32? {
        precondition(value >= 0)
        if IDTable.needsGrowth(count: count + 1, slots: slotCount) { rehash(into: slotCount * 2) }
        let h = IDTable.hash(key, seed: seed)
        let tag = UInt32(truncatingIfNeeded: h >> 32)
        var i = Int(truncatingIfNeeded: h) & mask
        while true {
            let s = self[slot: i]
            if s.value < 0 {
                self[slot: i] = Slot(key: key, value: value, tag: tag)
                count += 1
                return nil
            }
            if s.tag == tag && s.key == key {
                self[slot: i].value = value
                return s.value
            }
            i = (i &+ 1) & mask
        }
    }

    /// Removes `key`; returns its value. Linear probing's backward-shift deletion: later slots
    /// of the same probe run move up, so no tombstones are left to lengthen probes.
    @discardableResult
    mutating func remove(_ key: String) -> Int32? {
        let h = IDTable.hash(key, seed: seed)
        let tag = UInt32(truncatingIfNeeded: h >> 32)
        var i = Int(truncatingIfNeeded: h) & mask
        while true {
            let s = self[slot: i]
            if s.value < 0 { return nil }
            if s.tag == tag && s.key == key { break }
            i = (i &+ 1) & mask
        }
        let old = self[slot: i].value
        var hole = i
        var j = (i &+ 1) & mask
        while true {
            let s = self[slot: j]
            if s.value < 0 { break }
            let home = Int(truncatingIfNeeded: IDTable.hash(s.key, seed: seed)) & mask
            // The entry at j may fill the hole unless its home lies cyclically in (hole, j].
            let between = hole <= j ? (hole < home && home <= j) : (hole < home || home <= j)
            if !between {
                self[slot: hole] = s
                hole = j
            }
            j = (j &+ 1) & mask
        }
        self[slot: hole] = Slot(key: "", value: -1, tag: 0)
        count -= 1
        return old
    }

    mutating func reserve(_ n: Int) {
        guard IDTable.needsGrowth(count: n, slots: slotCount) else { return }
        rehash(into: IDTable.size(for: n))
    }

    private mutating func rehash(into size: Int) {
        let old = chunks
        self = IDTable(slots: size, seed: seed)
        for c in old { for s in c where s.value >= 0 { insert(s.key, s.value) } }
    }

    /// Hashes the id's UTF-8 bytes, borrowed in place (a small string's inline bytes are copied
    /// to the stack; iterating `utf8` instead measured 2.5× the instructions under callgrind).
    @inline(__always)
    static func hash(_ key: String, seed: UInt64) -> UInt64 {
        if let h = key.utf8.withContiguousStorageIfAvailable({ hashBytes($0, seed: seed) }) { return h }
        var k = key  // a bridged or lazily-decoded string: make it contiguous once
        return k.withUTF8 { hashBytes($0, seed: seed) }
    }

    @inline(__always)
    static func hashBytes(_ b: UnsafeBufferPointer<UInt8>, seed: UInt64) -> UInt64 {
        let m: UInt64 = 0x9E37_79B9_7F4A_7C15
        var h = seed ^ (UInt64(b.count) &* m)
        var i = 0
        let n = b.count
        guard let base = b.baseAddress else { return mix(h) }
        while i + 8 <= n {
            let w = UnsafeRawPointer(base + i).loadUnaligned(as: UInt64.self)
            h = (h ^ w) &* m
            h ^= h >> 32
            i += 8
        }
        let r = n - i
        if r > 0 {
            // 1-7 bytes left: overlapping loads that stay inside the buffer (no memcpy call).
            let p = base + i
            var w: UInt64
            if r >= 4 {
                let lo = UInt64(UnsafeRawPointer(p).loadUnaligned(as: UInt32.self))
                let hi = UInt64(UnsafeRawPointer(p + r - 4).loadUnaligned(as: UInt32.self))
                w = lo | hi << 32
            } else {
                w = UInt64(p[0]) << 16 | UInt64(p[r >> 1]) << 8 | UInt64(p[r - 1])
            }
            w ^= UInt64(r) << 56
            h = (h ^ w) &* m
            h ^= h >> 32
        }
        return mix(h)
    }

    @inline(__always)
    static func mix(_ x: UInt64) -> UInt64 {
        var h = x
        h ^= h >> 29
        h &*= 0xBF58_476D_1CE4_E5B9
        h ^= h >> 32
        return h
    }
}
