import CSQLite
import PIAMEngine

/// A connection to one SQLite database file.
///
/// Not thread-safe: use one `Database` per thread or task. Every SQLite error becomes a
/// `PIAMError` with code `PIAMError/Code/database` and SQLite's own message (so a trigger's
/// `RAISE` text reaches the caller unchanged).
public final class Database {
    let handle: OpaquePointer
    /// The file this connection was opened on.
    public let path: String
    /// Whether the connection was opened read-only.
    public let readOnly: Bool

    /// Opens (and, when `create` is true, creates) the database at `path`.
    ///
    /// Sets `foreign_keys=ON`, `busy_timeout=5000`, and for writable connections
    /// `journal_mode=WAL`, `synchronous=NORMAL` and `temp_store=MEMORY`.
    public init(path: String, readOnly: Bool = false, create: Bool = false) throws(PIAMError) {
        var db: OpaquePointer?
        var flags = SQLITE_OPEN_NOMUTEX
        if readOnly {
            flags |= SQLITE_OPEN_READONLY
        } else {
            flags |= SQLITE_OPEN_READWRITE
            if create { flags |= SQLITE_OPEN_CREATE }
        }
        let rc = sqlite3_open_v2(path, &db, flags, nil)
        guard rc == SQLITE_OK, let db else {
            let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
            if let db { sqlite3_close_v2(db) }
            throw PIAMError(.database, "\(path): \(message)")
        }
        self.handle = db
        self.path = path
        self.readOnly = readOnly
        sqlite3_extended_result_codes(db, 1)
        try execute("PRAGMA foreign_keys=ON; PRAGMA busy_timeout=5000;")
        if !readOnly {
            // temp_store=MEMORY: every row statement that fires triggers opens a statement
            // journal; on disk that is a pwrite of each touched page per row.
            try execute("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA temp_store=MEMORY;")
            // Keep piam.db-wal and piam.db-shm after the last connection closes: the daemon opens
            // the database read-only from a read-only directory (systemd BindReadOnlyPaths=) and
            // cannot create them itself; with both present it reads with a read-only WAL index.
            var persist: Int32 = 1
            sqlite3_file_control(db, "main", SQLITE_FCNTL_PERSIST_WAL, &persist)
        }
    }

    deinit {
        for s in cache.values { sqlite3_finalize(s) }
        sqlite3_close_v2(handle)
    }

    /// Statements compiled once for the connection's life (see ``cached(_:)``). Raw pointers, so
    /// the cache does not keep its own statements' wrappers (and through them this connection)
    /// alive.
    private var cache: [String: OpaquePointer] = [:]

    /// A compiled statement kept for the connection's life, reset and unbound: for the statements
    /// a long-lived connection runs again and again (the daemon's journal follower), where
    /// compiling each time would cost more than running. The returned wrapper resets the
    /// statement when it goes away, so it never holds a read snapshot open.
    public func cached(_ sql: String) throws(PIAMError) -> Statement {
        if let s = cache[sql] {
            sqlite3_reset(s)
            sqlite3_clear_bindings(s)
            return Statement(s, database: self, owned: false)
        }
        var stmt: OpaquePointer?
        let rc = sqlite3_prepare_v3(handle, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &stmt, nil)
        guard rc == SQLITE_OK, let stmt else { throw error(rc) }
        cache[sql] = stmt
        return Statement(stmt, database: self, owned: false)
    }

    /// SQLite's message for the last error on this connection.
    var errorMessage: String { String(cString: sqlite3_errmsg(handle)) }

    func error(_ rc: Int32) -> PIAMError {
        PIAMError(.database, errorMessage)
    }

    /// Runs one or more SQL statements that return no rows of interest.
    public func execute(_ sql: String) throws(PIAMError) {
        var err: UnsafeMutablePointer<CChar>?
        let rc = sqlite3_exec(handle, sql, nil, nil, &err)
        if rc != SQLITE_OK {
            let message = err.map { String(cString: $0) } ?? errorMessage
            sqlite3_free(err)
            throw PIAMError(.database, message)
        }
    }

    /// Compiles one SQL statement.
    public func prepare(_ sql: String) throws(PIAMError) -> Statement {
        var stmt: OpaquePointer?
        let rc = sqlite3_prepare_v3(handle, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &stmt, nil)
        guard rc == SQLITE_OK, let stmt else { throw error(rc) }
        return Statement(stmt, database: self)
    }

    /// The first column of the first row of `sql`, as an integer (`nil` when there is no row or it is NULL).
    public func scalarInt(_ sql: String, _ args: String?...) throws(PIAMError) -> Int64? {
        let s = try prepare(sql)
        for (i, a) in args.enumerated() { s.bind(Int32(i + 1), a) }
        guard try s.step() else { return nil }
        return s.optionalInt64(0)
    }

    /// The first column of the first row of `sql`, as text.
    public func scalarText(_ sql: String, _ args: String?...) throws(PIAMError) -> String? {
        let s = try prepare(sql)
        for (i, a) in args.enumerated() { s.bind(Int32(i + 1), a) }
        guard try s.step() else { return nil }
        return s.optionalText(0)
    }

    /// Rows changed by the most recent INSERT, UPDATE or DELETE (not counting trigger and FK action changes).
    public var changes: Int { Int(sqlite3_changes(handle)) }

    /// The rowid of the most recent successful INSERT into a rowid table.
    public var lastInsertRowID: Int64 { sqlite3_last_insert_rowid(handle) }

    /// Whether a transaction is open.
    public var inTransaction: Bool { sqlite3_get_autocommit(handle) == 0 }

    /// Runs `body` in a transaction: commits when it returns, rolls back when it throws.
    ///
    /// - Parameters:
    ///   - immediate: `BEGIN IMMEDIATE` (take the write lock at once; use for writes, so two
    ///     writers never deadlock upgrading a read lock) instead of a deferred `BEGIN`.
    ///   - body: the work; its error rolls the transaction back and is rethrown.
    public func withTransaction<T>(immediate: Bool = false, _ body: () throws(PIAMError) -> T) throws(PIAMError) -> T {
        try execute(immediate ? "BEGIN IMMEDIATE" : "BEGIN")
        let result: T
        do {
            result = try body()
        } catch {
            try? execute("ROLLBACK")
            throw error
        }
        do {
            try execute("COMMIT")
        } catch {
            try? execute("ROLLBACK")
            throw error
        }
        return result
    }
}

@available(*, unavailable)
extension Database: Sendable {}

/// A compiled SQL statement. Parameters and columns are numbered as in SQLite: parameters from 1,
/// columns from 0.
public final class Statement {
    let stmt: OpaquePointer
    let database: Database

    /// Whether this wrapper finalizes the statement; a cached one is only reset.
    let owned: Bool

    init(_ stmt: OpaquePointer, database: Database, owned: Bool = true) {
        self.owned = owned
        self.stmt = stmt
        self.database = database
    }

    deinit {
        if owned { sqlite3_finalize(stmt) } else { sqlite3_reset(stmt) }
    }

    // MARK: Binding

    /// Binds text, or NULL for `nil`.
    public func bind(_ index: Int32, _ value: String?) {
        guard var value else { sqlite3_bind_null(stmt, index); return }
        value.withUTF8 { buf in
            if let base = buf.baseAddress, buf.count > 0 {
                base.withMemoryRebound(to: CChar.self, capacity: buf.count) {
                    _ = piam_sqlite3_bind_text_transient(stmt, index, $0, Int32(buf.count))
                }
            } else {
                _ = piam_sqlite3_bind_text_transient(stmt, index, "", 0)
            }
        }
    }

    /// Binds an integer, or NULL for `nil`.
    public func bind(_ index: Int32, _ value: Int64?) {
        if let value { sqlite3_bind_int64(stmt, index, value) } else { sqlite3_bind_null(stmt, index) }
    }

    /// Binds an integer.
    public func bind(_ index: Int32, _ value: Int) { sqlite3_bind_int64(stmt, index, Int64(value)) }

    /// Binds a boolean as 0 or 1.
    public func bind(_ index: Int32, _ value: Bool) { sqlite3_bind_int64(stmt, index, value ? 1 : 0) }

    /// Binds NULL.
    public func bindNull(_ index: Int32) { sqlite3_bind_null(stmt, index) }

    /// Binds a blob, or NULL for `nil`.
    public func bind(_ index: Int32, blob: [UInt8]?) {
        guard let blob else { sqlite3_bind_null(stmt, index); return }
        blob.withUnsafeBytes { buf in
            _ = piam_sqlite3_bind_blob_transient(stmt, index, buf.baseAddress ?? UnsafeRawPointer(bitPattern: 1)!, Int32(buf.count))
        }
    }

    // MARK: Stepping

    /// Advances to the next row: `true` when a row is available, `false` when done.
    @discardableResult
    public func step() throws(PIAMError) -> Bool {
        let rc = sqlite3_step(stmt)
        if rc == SQLITE_ROW { return true }
        if rc == SQLITE_DONE { return false }
        let e = PIAMError(.database, database.errorMessage)
        sqlite3_reset(stmt)
        throw e
    }

    /// Steps through every row, mapping each with `row` (which reads the current row's columns).
    public func rows<T>(_ row: (Statement) -> T) throws(PIAMError) -> [T] {
        var out: [T] = []
        while try step() { out.append(row(self)) }
        return out
    }

    /// Runs the statement to completion, then resets it (bindings are kept until rebound).
    public func run() throws(PIAMError) {
        defer { sqlite3_reset(stmt) }
        while try step() {}
    }

    /// Resets the statement so it can run again, and clears its bindings.
    public func reset() {
        sqlite3_reset(stmt)
        sqlite3_clear_bindings(stmt)
    }

    // MARK: Columns

    /// Whether column `i` of the current row is NULL.
    public func isNull(_ i: Int32) -> Bool { sqlite3_column_type(stmt, i) == SQLITE_NULL }

    /// Column `i` as text (`""` for NULL).
    public func text(_ i: Int32) -> String {
        guard let p = sqlite3_column_text(stmt, i) else { return "" }
        let n = Int(sqlite3_column_bytes(stmt, i))
        return String(decoding: UnsafeBufferPointer(start: p, count: n), as: UTF8.self)
    }

    /// Column `i` as text, `nil` for NULL.
    public func optionalText(_ i: Int32) -> String? {
        if sqlite3_column_type(stmt, i) == SQLITE_NULL { return nil }
        return text(i)
    }

    /// Column `i`'s raw UTF-8 bytes, valid until the next step/reset (no copy).
    public func withTextBytes<R>(_ i: Int32, _ body: (UnsafeBufferPointer<UInt8>) throws(PIAMError) -> R) throws(PIAMError) -> R {
        let p = sqlite3_column_text(stmt, i)
        let n = Int(sqlite3_column_bytes(stmt, i))
        return try body(UnsafeBufferPointer(start: p, count: p == nil ? 0 : n))
    }

    /// Column `i` as an integer (0 for NULL).
    public func int64(_ i: Int32) -> Int64 { sqlite3_column_int64(stmt, i) }

    /// Column `i` as an integer, `nil` for NULL.
    public func optionalInt64(_ i: Int32) -> Int64? {
        sqlite3_column_type(stmt, i) == SQLITE_NULL ? nil : sqlite3_column_int64(stmt, i)
    }

    /// Column `i` as a blob (`[]` for NULL).
    public func blob(_ i: Int32) -> [UInt8] {
        guard let p = sqlite3_column_blob(stmt, i) else { return [] }
        let n = Int(sqlite3_column_bytes(stmt, i))
        return Array(UnsafeRawBufferPointer(start: p, count: n))
    }
}

@available(*, unavailable)
extension Statement: Sendable {}
