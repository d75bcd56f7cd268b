/// An array stored as fixed-size chunks, each its own copy-on-write buffer: a copy of the array
/// shares every chunk, and changing one element afterwards copies one chunk (4,096 elements)
/// and the chunk directory, not the whole array.
///
/// This is what lets ``AccessGraph/applying(_:)`` produce a new graph that shares all but a few
/// chunks with the old one: the cost of a change tracks its size, not the graph's, and the old
/// graph stays intact for the queries still reading it.
struct ChunkedArray<Element: Sendable>: Sendable, RandomAccessCollection {
    @usableFromInline static var shift: Int { 12 }
    @usableFromInline static var chunkSize: Int { 1 << shift }
    @usableFromInline static var chunkMask: Int { chunkSize - 1 }

    @usableFromInline var chunks: [[Element]] = []
    @usableFromInline private(set) var count = 0

    init() {}

    init<S: Sequence>(_ elements: S) where S.Element == Element {
        var chunk: [Element] = []
        chunk.reserveCapacity(Self.chunkSize)
        for e in elements {
            chunk.append(e)
            if chunk.count == Self.chunkSize {
                chunks.append(chunk)
                count += chunk.count
                chunk = []
                chunk.reserveCapacity(Self.chunkSize)
            }
        }
        if !chunk.isEmpty {
            count += chunk.count
            chunks.append(chunk)
        }
    }

    var startIndex: Int { 0 }
    var endIndex: Int { count }

    @inline(__always)
    subscript(i: Int) -> Element {
        get { chunks[i &>> Self.shift][i & Self.chunkMask] }
        set { chunks[i &>> Self.shift][i & Self.chunkMask] = newValue }
    }

    mutating func append(_ e: Element) {
        if count & Self.chunkMask == 0 {
            var c: [Element] = []
            c.reserveCapacity(Self.chunkSize)
            chunks.append(c)
        }
        chunks[chunks.count - 1].append(e)
        count += 1
    }

    mutating func removeLast() {
        precondition(count > 0)
        chunks[chunks.count - 1].removeLast()
        if chunks[chunks.count - 1].isEmpty { chunks.removeLast() }
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
