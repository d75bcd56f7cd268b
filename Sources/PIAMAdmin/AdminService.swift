import Foundation
import NIOPosix
import PIAMEngine
import PIAMStore
import Synchronization

/// The administration service's state: one writer that keeps the graph (``PIAMStore/AdminWriter``),
/// one reading connection, and the latest committed graph for the API's reads.
///
/// SQLite work never runs on an event loop or in the cooperative pool: writes run on a thread of
/// their own (one at a time; SQLite serialises writers anyway) and reads on another, each
/// holding its connection for the duration. A read never queues behind a write — not even
/// behind a bulk run's long transaction — and API tokens, checked through the reading
/// connection, neither. The graph the reads decide on is published after every commit and
/// catch-up.
public final class AdminService: Sendable {
    private let writer: Mutex<AdminWriter>
    private let reader: Mutex<Store>
    private let published: Mutex<LoadedGraph>
    private let writerPool: NIOThreadPool
    private let readerPool: NIOThreadPool
    /// The database's path.
    public let databasePath: String

    /// Opens the database (two connections: the writer's and a reader's) and loads the graph.
    /// - Throws: `PIAMError` when the database cannot be opened or is not a PIAM database.
    public init(databasePath: String) throws(PIAMError) {
        self.databasePath = databasePath
        let store = try Store(path: databasePath)
        let w = try AdminWriter(store: store)
        published = Mutex(w.current)
        writer = Mutex(w)
        reader = Mutex(try Store(path: databasePath))
        writerPool = NIOThreadPool(numberOfThreads: 1)
        readerPool = NIOThreadPool(numberOfThreads: 1)
        writerPool.start()
        readerPool.start()
    }

    /// Stops the threads (after the servers stopped).
    public func shutdown() async {
        try? await writerPool.shutdownGracefully()
        try? await readerPool.shutdownGracefully()
    }

    /// The latest graph the writer committed or caught up to.
    public var graph: LoadedGraph { published.withLock { $0 } }

    /// Runs `body` with the writer on the writing thread, then publishes its graph.
    public func write<T: Sendable>(_ body: @escaping @Sendable (AdminWriter) throws -> T) async throws -> T {
        try await writerPool.runIfActive { [self] in
            try writer.withLock { (w: inout AdminWriter) throws -> T in
                defer { let g = w.current; published.withLock { $0 = g } }
                return try body(w)
            }
        }
    }

    /// Runs `body` with the reading connection and the published graph on the reading thread.
    public func read<T: Sendable>(_ body: @escaping @Sendable (Store, LoadedGraph) throws -> T) async throws -> T {
        let g = graph
        return try await readerPool.runIfActive { [self] in
            try reader.withLock { (s: inout Store) throws -> T in try body(s, g) }
        }
    }

    /// Follows the journal outside writes (other writers: piamctl, imports): the published graph
    /// moves to the database's revision. Returns whether it moved.
    @discardableResult
    public func catchUp() async throws -> Bool {
        try await write { w in try w.catchUp() }
    }
}
