import Foundation
import HTTPTypes
import Hummingbird
import PIAMEngine
import PIAMStore

/// An error of the SCIM endpoint in RFC 7644's format (§3.12):
/// `{"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], "status": "400",
/// "scimType": "invalidValue", "detail": …}` as `application/scim+json`, with PIAM's reason
/// code (`outside_namespace`, `escalation`, `unauthenticated`, …) in the `X-PIAM-Error-Code`
/// header: the error schema has no member for it, and strict clients refuse unknown members.
public struct SCIMError: Error, HTTPResponseError, Sendable {
    /// The HTTP status (also the body's `status`, as a string).
    public var status: HTTPResponse.Status
    /// RFC 7644's `scimType` (`invalidFilter`, `uniqueness`, `invalidValue`, …), when one fits.
    public var scimType: String?
    /// One line for people.
    public var detail: String
    /// PIAM's reason code.
    public var code: String
    var headers: HTTPFields = [:]

    /// An error; `code` defaults to the snake_case `scimType`, else `http_STATUS`.
    public init(_ status: HTTPResponse.Status, scimType: String? = nil, code: String? = nil, _ detail: String) {
        self.status = status
        self.scimType = scimType
        self.detail = detail
        self.code = code ?? scimType.map(Self.snake) ?? "http_\(status.code)"
    }

    static func snake(_ s: String) -> String {
        var out = ""
        for c in s { if c.isUppercase { out += "_" + c.lowercased() } else { out.append(c) } }
        return out
    }

    /// The error object (RFC 7644 §3.12).
    public var body: [String: Any] {
        var o: [String: Any] = ["schemas": [SCIMSchemas.error], "status": String(status.code), "detail": detail]
        if let scimType { o["scimType"] = scimType }
        return o
    }

    /// The answer: the error object as `application/scim+json`, the code in `X-PIAM-Error-Code`.
    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var r = SCIMResponse.json(body, status: status)
        for f in headers { r.headers.append(f) }
        r.headers[Self.codeHeader] = code
        return r
    }

    /// The header carrying PIAM's reason code.
    static let codeHeader = HTTPField.Name("X-PIAM-Error-Code")!

    static func invalidFilter(_ d: String) -> SCIMError { SCIMError(.badRequest, scimType: "invalidFilter", d) }
    static func invalidSyntax(_ d: String) -> SCIMError { SCIMError(.badRequest, scimType: "invalidSyntax", d) }
    static func invalidPath(_ d: String) -> SCIMError { SCIMError(.badRequest, scimType: "invalidPath", d) }
    static func invalidValue(_ d: String, code: String? = nil) -> SCIMError { SCIMError(.badRequest, scimType: "invalidValue", code: code, d) }
    static func notFound(_ what: String) -> SCIMError { SCIMError(.notFound, code: "not_found", "no such \(what)") }
    static func unauthenticated(_ d: String) -> SCIMError {
        var e = SCIMError(.unauthorized, code: "unauthenticated", d)
        e.headers[.wwwAuthenticate] = "Bearer realm=\"piam-scim\""
        return e
    }

    /// The SCIM error for a store or engine error.
    static func from(_ e: PIAMError) -> SCIMError {
        switch e.code {
        case .notFound: return SCIMError(.notFound, code: e.code.rawValue, e.message)
        case .conflict: return SCIMError(.conflict, scimType: "uniqueness", code: e.code.rawValue, e.message)
        case .invalidInput: return SCIMError(.badRequest, scimType: "invalidValue", code: e.code.rawValue, e.message)
        case AdminWriter.preconditionFailed: return SCIMError(.preconditionFailed, code: e.code.rawValue, e.message)
        case PIAMError.Code(AliasDecision.reasonCode), PIAMError.Code(Reason.outsideCeiling.name):
            return SCIMError(.badRequest, scimType: "invalidValue", code: e.code.rawValue, e.message)
        default: return SCIMError(.internalServerError, code: e.code.rawValue, e.message)
        }
    }
}

/// SCIM responses: `application/scim+json`.
enum SCIMResponse {
    static let contentType = "application/scim+json"

    static func json(_ object: Any, status: HTTPResponse.Status = .ok, headers extra: HTTPFields = [:]) -> Response {
        JSONBody.response(object, status: status, contentType: contentType, headers: extra)
    }

    /// A body already serialized.
    static func raw(_ data: Data, status: HTTPResponse.Status = .ok, headers extra: HTTPFields = [:]) -> Response {
        var headers: HTTPFields = [.contentType: contentType]
        for field in extra { headers.append(field) }
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}
