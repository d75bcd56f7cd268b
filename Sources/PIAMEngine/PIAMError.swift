/// The error every PIAM library throws: a stable, machine-readable ``Code`` and a one-line
/// message for people.
///
/// Codes are an extensible set of static values (the swift-service-lifecycle / swift-nio-ssh
/// pattern), so new codes can be added without breaking callers that switch over the ones they
/// know.
public struct PIAMError: Error, Sendable, Hashable, CustomStringConvertible {
    /// A stable error code.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        /// The code's stable spelling, e.g. `invalid_input`.
        public let rawValue: String

        public init(_ rawValue: String) { self.rawValue = rawValue }

        public var description: String { rawValue }

        /// Input that is malformed or violates the contract (bad permission, bad id, bad JSON).
        public static let invalidInput = Code("invalid_input")
        /// A named entity does not exist.
        public static let notFound = Code("not_found")
        /// The graph would become invalid (cycle, second root, host org below a partner org, …).
        public static let invalidGraph = Code("invalid_graph")
        /// A paging cursor that this engine did not produce.
        public static let badCursor = Code("bad_cursor")
        /// SQLite reported an error.
        public static let database = Code("database")
        /// The database schema is missing, too new or otherwise not usable.
        public static let schema = Code("schema")
        /// A file could not be read or written.
        public static let io = Code("io")
        /// The operation conflicts with existing state (e.g. the entity already exists).
        public static let conflict = Code("conflict")
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}
