/// An array stored as fixed-size chunks, each its own copy-on-write buffer: a copy of the array
/// shares every chunk, and changing one element afterwards copies one chunk (4,096 elements)
/// and the chunk directory, not the whole array.
///
/// This is what lets ``AccessGraph/applying(_:)`` produce a new graph that shares all but a few
/// chunks with the old one: the cost of a change tracks its size, not the graph's, and the old
/// graph stays intact for the queries still reading it.
///
/// Reads go through a directory of the chunks' base addresses, so reading an element costs two
/// loads and no reference counting (reading `chunks[c][j]` retains and releases chunk `c`'s
/// buffer — atomic operations on a cache line that every query thread shares). Each base is
/// re-taken whenever its chunk is changed, which is the only time a chunk's buffer can move; the
/// buffers themselves are kept alive by `chunks`.
struct ChunkedArray<Element: Sendable>: @unchecked Sendable, RandomAccessCollection {
    @usableFromInline static var shift: Int { 12 }
    @usableFromInline static var chunkSize: Int { 1 << shift }
    @usableFromInline static var chunkMask: Int { chunkSize - 1 }

    @usableFromInline private(set) var chunks: [[Element]] = []
    /// `bases[c]` is the address of `chunks[c]`'s elements (immutable while shared, like them).
    @usableFromInline private(set) var bases: [UnsafePointer<Element>] = []
    @usableFromInline private(set) var count = 0

    init() {}

    /// Chunks hold exactly their elements (a per-org list of three users takes three slots,
    /// not a reserved chunk); appends grow the last chunk as an array grows.
    init<S: Sequence>(_ elements: S) where S.Element == Element {
        let all = ContiguousArray(elements)
        count = all.count
        var i = 0
        while i < all.count {
            let j = Swift.min(i + Self.chunkSize, all.count)
            chunks.append(Array(all[i..<j]))
            bases.append(chunkBase(chunks[chunks.count - 1]))
            i = j
        }
    }

    var startIndex: Int { 0 }
    var endIndex: Int { count }

    @inline(__always)
    subscript(i: Int) -> Element {
        get {
            precondition(i >= 0 && i < count, "ChunkedArray index out of range")
            return bases[i &>> Self.shift][i & Self.chunkMask]
        }
        set {
            let c = i &>> Self.shift
            chunks[c][i & Self.chunkMask] = newValue
            bases[c] = chunkBase(chunks[c])
        }
    }

    mutating func append(_ e: Element) {
        if count & Self.chunkMask == 0 {
            chunks.append([])
            bases.append(chunkBase([]))
        }
        let c = chunks.count - 1
        chunks[c].append(e)
        bases[c] = chunkBase(chunks[c])
        count += 1
    }

    mutating func removeLast() {
        precondition(count > 0)
        let c = chunks.count - 1
        chunks[c].removeLast()
        if chunks[c].isEmpty {
            chunks.removeLast()
            bases.removeLast()
        } else {
            bases[c] = chunkBase(chunks[c])
        }
        count -= 1
    }

    /// Removes one element equal to `value` by moving the last element into its place (order
    /// is not kept). Returns whether one was found.
    @discardableResult
    mutating func swapRemove(_ value: Element) -> Bool where Element: Equatable {
        guard let i = firstIndex(of: value) else { return false }
        let last = count - 1
        if i != last { self[i] = self[last] }
        removeLast()
        return true
    }

    func firstIndex(of value: Element) -> Int? where Element: Equatable {
        for (c, chunk) in chunks.enumerated() {
            if let j = chunk.firstIndex(of: value) { return c << Self.shift + j }
        }
        return nil
    }
}

/// The address of a chunk's elements, for a directory of chunk bases (``ChunkedArray``,
/// ``IDTable``). It stays valid while the chunk is alive and unchanged: the holder re-takes it
/// whenever it writes the chunk, the only time its buffer can move. (An empty chunk gets an
/// aligned non-null address that is never read.)
@inline(__always)
func chunkBase<T>(_ chunk: [T]) -> UnsafePointer<T> {
    chunk.withUnsafeBufferPointer { $0.baseAddress ?? UnsafePointer(bitPattern: MemoryLayout<T>.alignment)! }
}

/// Item indices grouped by key (assignments by scope org, by role), each item's position in its
/// list kept beside it, so adding or removing an item costs O(1) however long its list is.
///
/// The per-key lists are kept in groups of 64 keys, each group its own copy-on-write array:
/// the first change to a copy of the graph (``AccessGraph/applying(_:)``) copies the group
/// directory and one group, not one list header per key. With one flat array, a grant or
/// revoke on a 10,000-org graph copied (and, when the old graph went, released) 10,000 list
/// headers — two buffer references each —: about a third of piam-admind's CPU per write.
struct KeyedLists: Sendable {
    private static let groupShift = 6
    private static let groupMask = (1 << groupShift) - 1

    private var groups: [[ChunkedArray<Int32>]] = []
    /// How many keys there are.
    private(set) var keyCount = 0
    /// Per item: its position in its key's list, -1 when it is in none.
    private var position = ChunkedArray<Int32>()

    init() {}

    /// Lists from a key per item (items `0 ..< keys.count`), grouped as the builder groups.
    init(keys: [Int32], count: Int) {
        let lists = GraphBuilder.grouped(keys: keys, buckets: count)
        var pos = [Int32](repeating: -1, count: keys.count)
        for list in lists {
            for (i, item) in list.enumerated() { pos[Int(item)] = Int32(i) }
        }
        position = ChunkedArray(pos)
        var start = 0
        while start < lists.count {
            let end = Swift.min(start + Self.groupMask + 1, lists.count)
            groups.append(Array(lists[start..<end]))
            start = end
        }
        keyCount = lists.count
    }

    @inline(__always) subscript(key: Int) -> ChunkedArray<Int32> {
        groups[key &>> Self.groupShift][key & Self.groupMask]
    }

    mutating func addKey() {
        if keyCount & Self.groupMask == 0 { groups.append([]) }
        groups[groups.count - 1].append(ChunkedArray())
        keyCount += 1
    }

    mutating func add(_ item: Int32, key: Int32) {
        let g = Int(key) &>> Self.groupShift, k = Int(key) & Self.groupMask
        while position.count <= Int(item) { position.append(-1) }
        position[Int(item)] = Int32(groups[g][k].count)
        groups[g][k].append(item)
    }

    mutating func remove(_ item: Int32, key: Int32) {
        let g = Int(key) &>> Self.groupShift, k = Int(key) & Self.groupMask
        let p = Int(position[Int(item)])
        let last = groups[g][k][groups[g][k].count - 1]
        groups[g][k][p] = last
        position[Int(last)] = Int32(p)
        groups[g][k].removeLast()
        position[Int(item)] = -1
    }
}
