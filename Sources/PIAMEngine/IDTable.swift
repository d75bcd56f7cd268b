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

    private(set) var slots: [Slot]
    private(set) var count = 0
    private var mask: Int
    private let seed: UInt64

    /// The table grows past this load (3/4): linear probing stays short while the slots of a
    /// million ids take 2^21 × 24 bytes.
    @inline(__always) static func needsGrowth(count: Int, slots: Int) -> Bool { count * 4 > slots * 3 }

    init(capacity: Int = 8) {
        var n = 8
        while IDTable.needsGrowth(count: capacity, slots: n) { n <<= 1 }
        slots = [Slot](repeating: Slot(key: "", value: -1, tag: 0), count: n)
        mask = n - 1
        var rng = SystemRandomNumberGenerator()
        seed = rng.next()
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
        let mask = self.mask
        return slots.withUnsafeBufferPointer { buf -> Int32? in
            var i = Int(truncatingIfNeeded: h) & mask
            while true {
                let v = buf[i].value
                if v < 0 { return nil }
                if buf[i].tag == tag {
                    let stored = UnsafeRawPointer(buf.baseAddress! + i).load(fromByteOffset: IDTable.keyOffset, as: RawKey.self)
                    if stored.a == raw.a && stored.b == raw.b { return v }
                    if buf[i].key == key { return v }
                }
                i = (i &+ 1) & mask
            }
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

    /// Inserts or replaces; returns the previous value.
    @discardableResult
    mutating func insert(_ key: String, _ value: Int32) -> Int32? {
        precondition(value >= 0)
        if IDTable.needsGrowth(count: count + 1, slots: slots.count) { grow() }
        let h = IDTable.hash(key, seed: seed)
        let tag = UInt32(truncatingIfNeeded: h >> 32)
        var i = Int(truncatingIfNeeded: h) & mask
        while true {
            if slots[i].value < 0 {
                slots[i] = Slot(key: key, value: value, tag: tag)
                count += 1
                return nil
            }
            if slots[i].tag == tag && slots[i].key == key {
                let old = slots[i].value
                slots[i].value = value
                return old
            }
            i = (i &+ 1) & mask
        }
    }

    mutating func reserve(_ n: Int) {
        guard IDTable.needsGrowth(count: n, slots: slots.count) else { return }
        var size = slots.count
        while IDTable.needsGrowth(count: n, slots: size) { size <<= 1 }
        rehash(into: size)
    }

    private mutating func grow() { rehash(into: slots.count * 2) }

    private mutating func rehash(into size: Int) {
        let old = slots
        slots = [Slot](repeating: Slot(key: "", value: -1, tag: 0), count: size)
        mask = slots.count - 1
        count = 0
        for s in old where s.value >= 0 { insert(s.key, s.value) }
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
