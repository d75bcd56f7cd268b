/// An immutable-after-build hash table from id strings to small integers, laid out for the
/// check path: open addressing with linear probing, the key and its value in one slot, so a
/// lookup usually costs one cache miss (a `Dictionary` keeps keys and values in separate
/// regions: two or three).
///
/// The hash reads the id eight bytes at a time and is seeded per table with a random value, so
/// ids chosen by a partner admin cannot be crafted to collide on every machine.
///
/// Like ``ChunkedArray``, probes read the chunks through a directory of base addresses, with no
/// reference counting; a chunk's base is re-taken whenever the chunk changes.
struct IDTable: @unchecked Sendable {
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
    /// `bases[c]` is the address of `chunks[c]`'s slots.
    private var bases: [UnsafePointer<Slot>]
    private(set) var count = 0
    private var mask: Int
    private var shift: Int
    private let seed: UInt64
    /// ``SmallStringForm/flags``, kept here so a probe reads no global.
    private let smallFlags: UInt64? = SmallStringForm.flags

    static let maxChunkShift = 12

    /// The table grows past this load (3/4): linear probing stays short while the slots of a
    /// million ids take 2^21 × 24 bytes.
    @inline(__always) static func needsGrowth(count: Int, slots: Int) -> Bool { count * 4 > slots * 3 }

    init(capacity: Int = 8) {
        var rng = SystemRandomNumberGenerator()
        self.init(slots: IDTable.size(for: capacity), seed: rng.next())
    }

    private init(slots n: Int, seed: UInt64) {
        precondition(MemoryLayout<Slot>.offset(of: \Slot.key) == IDTable.keyOffset)
        shift = min(n.trailingZeroBitCount, IDTable.maxChunkShift)
        let empty = [Slot](repeating: Slot(key: "", value: -1, tag: 0), count: 1 << shift)
        chunks = [[Slot]](repeating: empty, count: n >> shift)
        // Repeated chunks share one buffer until written (each write re-takes its base).
        bases = chunks.map(chunkBase)
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

    /// The value for `key`, if present (see ``View/find(_:)``).
    @inline(__always)
    func find<K: IDKey>(_ key: K) -> Int32? {
        bases.withUnsafeBufferPointer { dir in
            View(dir: dir.baseAddress!, mask: mask, shift: shift, seed: seed, smallFlags: smallFlags).find(key)
        }
    }

    /// A borrowed view of this table, valid while the table lives unchanged (as every table of
    /// a built graph does): plain values, so probing through one costs no reference counting,
    /// whereas copying an `IDTable` out of an array retains its two arrays.
    var view: View {
        View(dir: chunkBase(bases), mask: mask, shift: shift, seed: seed, smallFlags: smallFlags)
    }

    struct View: @unchecked Sendable {
        /// The chunks' base addresses.
        let dir: UnsafePointer<UnsafePointer<Slot>>
        let mask: Int
        let shift: Int
        let seed: UInt64
        let smallFlags: UInt64?

        /// The value for `key`, if present.
        ///
        /// The probe reads slots in place (no copy of the stored `String`, so no retain/release)
        /// and compares keys only when the hash tags agree: a key that is (or, as bytes, would
        /// be) a small string by its two raw words (see ``SmallStringForm``), any other by its bytes.
        @inline(__always)
        func find<K: IDKey>(_ key: K) -> Int32? {
            let h = key.idHash(seed: seed, smallFlags: smallFlags)
            let tag = UInt32(truncatingIfNeeded: h >> 32)
            let chunkMask = (1 &<< shift) - 1
            let small = key.smallForm(flags: smallFlags)
            var i = Int(truncatingIfNeeded: h) & mask
            while true {
                let base = dir[i &>> shift]
                var j = i & chunkMask
                // Probe to the end of this chunk, then on into the next one.
                repeat {
                    let v = base[j].value
                    if v < 0 { return nil }
                    if base[j].tag == tag {
                        let stored = UnsafeRawPointer(base + j).load(fromByteOffset: IDTable.keyOffset, as: RawKey.self)
                        if let small {
                            // Equal small strings have equal words; a small string equals no other.
                            if stored.a == small.a && stored.b == small.b { return v }
                            if SmallStringForm.isSmall(stored) { j += 1; continue }
                        }
                        if key.matches(base + j) { return v }
                    }
                    j += 1
                } while j <= chunkMask
                i = ((i | chunkMask) &+ 1) & mask
            }
        }
    }

    /// The two machine words of a `String` value.
    struct RawKey {
        var a: UInt64
        var b: UInt64
    }

    /// Where a slot's key lies: first (checked when a table is made; a stored constant, so a
    /// probe reads no lazily initialised global).
    static var keyOffset: Int { 0 }

    @inline(__always)
    subscript(key: String) -> Int32? { find(key) }

    /// The value for an id given as UTF-8 bytes (equal to the lookup of the same id as a
    /// `String`: both hash the same bytes).
    @inline(__always)
    subscript(utf8 key: UnsafeRawBufferPointer) -> Int32? { find(key) }

    private subscript(slot i: Int) -> Slot {
        get { chunks[i &>> shift][i & ((1 << shift) - 1)] }
        set {
            let c = i &>> shift
            chunks[c][i & ((1 << shift) - 1)] = newValue
            bases[c] = chunkBase(chunks[c])
        }
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
        if let h = key.utf8.withContiguousStorageIfAvailable({ hashBytes(UnsafeRawBufferPointer($0), seed: seed) }) { return h }
        var k = key  // a bridged or lazily-decoded string: make it contiguous once
        return k.withUTF8 { hashBytes(UnsafeRawBufferPointer($0), seed: seed) }
    }

    @inline(__always)
    static func hashBytes(_ b: UnsafeRawBufferPointer, seed: UInt64) -> UInt64 {
        let m: UInt64 = 0x9E37_79B9_7F4A_7C15
        var h = seed ^ (UInt64(b.count) &* m)
        var i = 0
        let n = b.count
        guard let base = b.baseAddress else { return mix(h) }
        while i + 8 <= n {
            let w = (base + i).loadUnaligned(as: UInt64.self)
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
                let lo = UInt64(p.loadUnaligned(as: UInt32.self))
                let hi = UInt64((p + r - 4).loadUnaligned(as: UInt32.self))
                w = lo | hi << 32
            } else {
                func byte(_ k: Int) -> UInt64 { UInt64(p.load(fromByteOffset: k, as: UInt8.self)) }
                w = byte(0) << 16 | byte(r >> 1) << 8 | byte(r - 1)
            }
            w ^= UInt64(r) << 56
            h = (h ^ w) &* m
            h ^= h >> 32
        }
        return mix(h)
    }

    /// Whether `n` bytes at `a` and `b` are equal (eight at a time; ids are short).
    @inline(__always)
    static func bytesEqual(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer, _ n: Int) -> Bool {
        var i = 0
        while i + 8 <= n {
            if a.loadUnaligned(fromByteOffset: i, as: UInt64.self) != b.loadUnaligned(fromByteOffset: i, as: UInt64.self) { return false }
            i += 8
        }
        while i < n {
            if a.load(fromByteOffset: i, as: UInt8.self) != b.load(fromByteOffset: i, as: UInt8.self) { return false }
            i += 1
        }
        return true
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

/// A key an ``IDTable`` can be probed with: an id as a `String`, or its UTF-8 bytes borrowed
/// from a request buffer (the wire's fast path, which then builds no `String` at all). Both hash
/// the same bytes, so a table answers both alike.
protocol IDKey {
    /// The hash of the key's UTF-8 bytes (`smallFlags`: the table's ``SmallStringForm/flags``).
    func idHash(seed: UInt64, smallFlags: UInt64?) -> UInt64
    /// The key's two words as a small `String` (see ``SmallStringForm``), or `nil` when it is
    /// not one (longer than 15 bytes, non-ASCII bytes, or an unconfirmed layout: `flags` nil).
    func smallForm(flags: UInt64?) -> IDTable.RawKey?
    /// Whether the key's bytes equal the string stored in `slot`.
    func matches(_ slot: UnsafePointer<IDTable.Slot>) -> Bool
}

extension String: IDKey {
    @inline(__always)
    func idHash(seed: UInt64, smallFlags: UInt64?) -> UInt64 {
        // A small string's bytes are its two raw words: hash them from a stack copy, without
        // the standard library's generic contiguous-storage path.
        let raw = unsafeBitCast(self, to: IDTable.RawKey.self)
        guard smallFlags != nil, SmallStringForm.isSmall(raw) else { return IDTable.hash(self, seed: seed) }
        var words = (UInt64(littleEndian: raw.a), UInt64(littleEndian: raw.b & 0x00FF_FFFF_FFFF_FFFF))
        let n = Int(truncatingIfNeeded: (raw.b >> 56) & 0x0F)
        return withUnsafeBytes(of: &words) { IDTable.hashBytes(UnsafeRawBufferPointer(rebasing: $0[0..<n]), seed: seed) }
    }

    @inline(__always)
    func smallForm(flags: UInt64?) -> IDTable.RawKey? {
        let raw = unsafeBitCast(self, to: IDTable.RawKey.self)
        return flags != nil && SmallStringForm.isSmall(raw) ? raw : nil
    }

    /// Equal raw words mean equal strings (the same storage); otherwise `==`, which also
    /// catches one string stored small and one natively.
    @inline(__always)
    func matches(_ slot: UnsafePointer<IDTable.Slot>) -> Bool {
        let raw = unsafeBitCast(self, to: IDTable.RawKey.self)
        let stored = UnsafeRawPointer(slot).load(fromByteOffset: IDTable.keyOffset, as: IDTable.RawKey.self)
        if stored.a == raw.a && stored.b == raw.b { return true }
        return slot.pointee.key == self
    }
}

extension UnsafeRawBufferPointer: IDKey {
    @inline(__always)
    func idHash(seed: UInt64, smallFlags: UInt64?) -> UInt64 { IDTable.hashBytes(self, seed: seed) }

    @inline(__always)
    func smallForm(flags: UInt64?) -> IDTable.RawKey? {
        guard let flags else { return nil }
        return SmallStringForm.raw(of: self, flags: flags)
    }

    @inline(__always)
    func matches(_ slot: UnsafePointer<IDTable.Slot>) -> Bool {
        let n = count
        return slot.pointee.key.utf8.withContiguousStorageIfAvailable { bytes in
            bytes.count == n && (n == 0 || IDTable.bytesEqual(UnsafeRawPointer(bytes.baseAddress!), baseAddress!, n))
        } ?? (String(decoding: self, as: UTF8.self) == slot.pointee.key)
    }
}

/// The two machine words a small ASCII `String` (at most 15 UTF-8 bytes, stored inline) has on
/// this platform, built from bytes without making the `String`.
///
/// The layout is the standard library's, which is not ABI-guaranteed on Linux, so it is learnt
/// at start-up from strings the standard library builds, and checked on every length 0…15: if
/// any disagrees, ``raw(of:)`` returns `nil` and lookups compare bytes instead (slower, the same
/// answers).
enum SmallStringForm {
    /// The top byte of an ASCII small string's second word, less its length (`nil`: the layout
    /// is not the expected one).
    static let flags: UInt64? = learn()
    /// A bit of the second word's top byte set in every small string and clear in a native one.
    static let smallBit: UInt64 = 0x20 << 56

    private static func learn() -> UInt64? {
        let probe = unsafeBitCast(String(decoding: [UInt8(ascii: "a")], as: UTF8.self), to: IDTable.RawKey.self)
        let flags = (probe.b >> 56) & 0xF0
        guard flags << 56 & smallBit != 0 else { return nil }
        for n in 0...15 {
            let bytes = (0..<n).map { UInt8(truncatingIfNeeded: 0x30 + $0 * 5 % 70) }
            let made = bytes.withUnsafeBytes { raw(of: $0, flags: flags << 56) }
            guard let made else { return nil }
            let real = unsafeBitCast(String(decoding: bytes, as: UTF8.self), to: IDTable.RawKey.self)
            guard made.a == real.a, made.b == real.b else { return nil }
        }
        let native = unsafeBitCast(String(repeating: "x", count: 40), to: IDTable.RawKey.self)
        guard !isSmall(native, bit: smallBit) else { return nil }
        // Hashing a small string from its raw words (`String.idHash`) must equal hashing its
        // bytes, non-ASCII ones included.
        for text in ["", "a", "zoë", "ünïcödé-ïd", "exactly-15-byte", "é", "sixteen-bytes-id"] {
            let bytes = Array(text.utf8)
            let fromBytes = bytes.withUnsafeBytes { IDTable.hashBytes($0, seed: 7) }
            guard text.idHash(seed: 7, smallFlags: flags << 56) == fromBytes else { return nil }
        }
        return flags << 56
    }

    @inline(__always)
    static func isSmall(_ k: IDTable.RawKey, bit: UInt64 = smallBit) -> Bool { k.b & bit != 0 }

    /// The raw words of the small string of `b`, when `b` is at most 15 ASCII bytes (`flags`:
    /// the confirmed ``flags``).
    @inline(__always)
    static func raw(of b: UnsafeRawBufferPointer, flags: UInt64) -> IDTable.RawKey? {
        let n = b.count
        guard n <= 15 else { return nil }
        guard let p = b.baseAddress else { return n == 0 ? IDTable.RawKey(a: 0, b: flags) : nil }
        // Little-endian words of the bytes, zero-padded, by overlapping loads inside the buffer.
        func load8(_ k: Int) -> UInt64 { UInt64(littleEndian: p.loadUnaligned(fromByteOffset: k, as: UInt64.self)) }
        func load4(_ k: Int) -> UInt64 { UInt64(UInt32(littleEndian: p.loadUnaligned(fromByteOffset: k, as: UInt32.self))) }
        func byte(_ k: Int) -> UInt64 { UInt64(p.load(fromByteOffset: k, as: UInt8.self)) }
        let a: UInt64, hi: UInt64
        if n >= 8 {
            a = load8(0)
            hi = n == 8 ? 0 : load8(n - 8) >> UInt64((16 - n) * 8)
        } else {
            hi = 0
            if n >= 4 {
                a = load4(0) | load4(n - 4) << UInt64((n - 4) * 8)
            } else if n > 0 {
                a = byte(0) | byte(n >> 1) << UInt64((n >> 1) * 8) | byte(n - 1) << UInt64((n - 1) * 8)
            } else {
                a = 0
            }
        }
        guard (a | hi) & 0x8080_8080_8080_8080 == 0 else { return nil }
        return IDTable.RawKey(a: a, b: hi | flags | UInt64(b.count) << 56)
    }
}
