import PIAMEngine

/// The protocol version this codec speaks (PROTOCOL.md: `u8 version = 1`).
public let piamWireVersion: UInt8 = 1

/// Bytes of the request header inside a payload: version, opcode, flags, request id, min revision.
public let requestHeaderBytes = 16
/// Bytes of the response header inside a payload: version, opcode, status, request id, revision.
public let responseHeaderBytes = 16

/// The opcodes of wire protocol version 1.
public enum Opcode: UInt8, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    case check = 0x01
    case checkBatch = 0x02
    case explain = 0x03
    case listResources = 0x04
    case listSubjects = 0x05
    case listActions = 0x06
    case canAssign = 0x07
    case status = 0x08
    case ping = 0x09

    /// The PROTOCOL.md spelling, e.g. `CHECK_BATCH`.
    public var description: String {
        switch self {
        case .check: "CHECK"
        case .checkBatch: "CHECK_BATCH"
        case .explain: "EXPLAIN"
        case .listResources: "LIST_RESOURCES"
        case .listSubjects: "LIST_SUBJECTS"
        case .listActions: "LIST_ACTIONS"
        case .canAssign: "CAN_ASSIGN"
        case .status: "STATUS"
        case .ping: "PING"
        }
    }
}

/// A response's status (PROTOCOL.md "Response payload").
public enum Status: UInt16, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    case ok = 0
    case badRequest = 1
    case unsupportedVersion = 2
    case unknownOpcode = 3
    case stale = 4
    case frameTooLarge = 5
    case overloaded = 6
    case internalError = 7
    case shuttingDown = 8

    /// The PROTOCOL.md spelling, e.g. `FRAME_TOO_LARGE`.
    public var description: String {
        switch self {
        case .ok: "OK"
        case .badRequest: "BAD_REQUEST"
        case .unsupportedVersion: "UNSUPPORTED_VERSION"
        case .unknownOpcode: "UNKNOWN_OPCODE"
        case .stale: "STALE"
        case .frameTooLarge: "FRAME_TOO_LARGE"
        case .overloaded: "OVERLOADED"
        case .internalError: "INTERNAL"
        case .shuttingDown: "SHUTTING_DOWN"
        }
    }
}

/// A request: the header fields and the opcode's body.
public struct Request: Sendable, Hashable {
    /// Chosen by the client and echoed in the response.
    public var requestID: UInt32
    /// Answer only from a graph at least this new (0: any revision).
    public var minRevision: UInt64
    /// Reserved; 0.
    public var flags: UInt16
    public var body: Body

    public init(requestID: UInt32 = 0, minRevision: UInt64 = 0, flags: UInt16 = 0, body: Body) {
        self.requestID = requestID
        self.minRevision = minRevision
        self.flags = flags
        self.body = body
    }

    /// The opcode implied by the body.
    public var opcode: Opcode { body.opcode }

    /// One request body per opcode (PROTOCOL.md "Opcodes").
    public enum Body: Sendable, Hashable {
        case check(CheckRequest)
        case checkBatch(BatchSemantic, [CheckRequest])
        case explain(CheckRequest)
        /// `cursor` "" starts at the beginning; `limit` 0 is the server's default page size.
        case listResources(subject: String, action: String, type: String, cursor: String, limit: UInt32)
        case listSubjects(action: String, resource: ResourceRef, cursor: String, limit: UInt32)
        case listActions(subject: String, resource: ResourceRef)
        /// `scope` "" means the target user's org.
        case canAssign(actor: String, target: String, role: String, scope: String)
        case status
        case ping

        public var opcode: Opcode {
            switch self {
            case .check: .check
            case .checkBatch: .checkBatch
            case .explain: .explain
            case .listResources: .listResources
            case .listSubjects: .listSubjects
            case .listActions: .listActions
            case .canAssign: .canAssign
            case .status: .status
            case .ping: .ping
            }
        }
    }
}

/// A response: the header fields and, when `status` is OK, the opcode's body.
public struct Response: Sendable, Hashable {
    /// The request's opcode as a raw byte (a request with an unknown opcode is answered with it).
    public var opcodeByte: UInt8
    public var status: Status
    public var requestID: UInt32
    /// The graph revision the answer was computed on.
    public var revision: UInt64
    public var body: Body

    public init(opcodeByte: UInt8, status: Status = .ok, requestID: UInt32, revision: UInt64, body: Body) {
        self.opcodeByte = opcodeByte
        self.status = status
        self.requestID = requestID
        self.revision = revision
        self.body = body
    }

    public init(opcode: Opcode, requestID: UInt32, revision: UInt64, body: Body) {
        self.init(opcodeByte: opcode.rawValue, status: .ok, requestID: requestID, revision: revision, body: body)
    }

    /// An error response: a status other than OK and one message for people.
    public static func error(_ status: Status, opcodeByte: UInt8, requestID: UInt32, revision: UInt64, message: String) -> Response {
        Response(opcodeByte: opcodeByte, status: status, requestID: requestID, revision: revision, body: .message(message))
    }

    /// The opcode, when it is one this codec knows.
    public var opcode: Opcode? { Opcode(rawValue: opcodeByte) }

    /// The message for people of a response whose status is not OK ("" otherwise).
    public var message: String {
        if case .message(let m) = body { return m }
        return ""
    }

    /// One response body shape per opcode; `message` for every status other than OK.
    public enum Body: Sendable, Hashable {
        /// CHECK and CAN_ASSIGN.
        case decision(Decision)
        /// CHECK_BATCH: one decision per evaluated item (short-circuit semantics stop early).
        case decisions([Decision])
        /// EXPLAIN: the decision and the JSON trace.
        case explanation(Decision, trace: String)
        /// LIST_RESOURCES and LIST_SUBJECTS: ids and the next cursor ("" = no more).
        case page(items: [String], nextCursor: String)
        /// LIST_ACTIONS.
        case actions([String])
        /// STATUS: the JSON status document.
        case status(String)
        /// PING.
        case empty
        /// Any status other than OK.
        case message(String)
    }
}

/// Why a payload could not be decoded, with what the server should answer.
public struct WireDecodeError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The status to answer with: BAD_REQUEST, UNSUPPORTED_VERSION or UNKNOWN_OPCODE.
    public var status: Status
    /// The opcode byte, when the payload was long enough to hold one (else 0).
    public var opcodeByte: UInt8
    /// The request id, when the payload was long enough to hold one (else 0).
    public var requestID: UInt32
    public var message: String

    public init(status: Status, opcodeByte: UInt8, requestID: UInt32, message: String) {
        self.status = status
        self.opcodeByte = opcodeByte
        self.requestID = requestID
        self.message = message
    }

    public var description: String { "\(status): \(message)" }
}

extension PIAMError.Code {
    /// The peer broke the wire protocol (a malformed frame or an unexpected answer).
    public static let protocolViolation = PIAMError.Code("protocol")
    /// The daemon could not reach the requested `min_revision` in time.
    public static let stale = PIAMError.Code("stale")
    /// The daemon refused the connection or request: too many connections, or shutting down.
    public static let unavailable = PIAMError.Code("unavailable")
    /// The daemon failed while answering.
    public static let server = PIAMError.Code("server")
    /// The connection failed or was closed.
    public static let connection = PIAMError.Code("connection")
}
