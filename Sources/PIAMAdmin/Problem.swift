import Foundation
import HTTPTypes
import Hummingbird
import PIAMEngine
import PIAMStore

/// An error answered as RFC 9457 `application/problem+json`, carrying PIAM's reason code.
///
/// Every error the API answers is one: `{"type", "title", "status", "detail", "code"}` plus
/// optional members (the operation's audit `revision`, the `errors` of a bulk run). `code` is
/// the engine's reason name for a refusal (`out_of_scope`, `last_admin`, …) or a `PIAMError`
/// code (`invalid_input`, `conflict`, …) or one of the service's own (`unauthenticated`,
/// `precondition_failed`, `idempotency_conflict`, …).
public struct Problem: Error, HTTPResponseError, Sendable {
    public var status: HTTPResponse.Status
    /// PIAM's reason code.
    public var code: String
    /// One line for people.
    public var detail: String
    /// More members for the body, as a JSON object's text.
    public var extra: Data?
    /// Extra response headers (`WWW-Authenticate` on a 401).
    public var headers: HTTPFields = [:]

    public init(_ status: HTTPResponse.Status, _ code: String, _ detail: String, extra: [String: Any] = [:]) {
        self.status = status
        self.code = code
        self.detail = detail
        self.extra = extra.isEmpty ? nil : JSONBody.data(extra)
    }

    /// The problem's body.
    public var body: [String: Any] {
        var o: [String: Any] = ["type": "urn:piam:problem:\(code)", "title": status.reasonPhrase, "status": status.code,
                                "detail": detail, "code": code]
        if let extra, let more = try? JSONSerialization.jsonObject(with: extra) as? [String: Any] {
            for (k, v) in more { o[k] = v }
        }
        return o
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var r = JSONBody.response(body, status: status, contentType: "application/problem+json")
        for field in headers { r.headers.append(field) }
        return r
    }

    /// 401: no credential, or one that does not hold.
    static func unauthenticated(_ detail: String) -> Problem {
        var p = Problem(.unauthorized, "unauthenticated", detail)
        p.headers[.wwwAuthenticate] = "Bearer realm=\"piam-admin\""
        return p
    }

    /// 404 for an id the caller may not see or that does not exist: the two look the same.
    static func notFound(_ what: String) -> Problem {
        Problem(.notFound, PIAMError.Code.notFound.rawValue, "no such \(what)")
    }

    /// The problem for a store or engine error.
    static func from(_ error: PIAMError) -> Problem {
        let status: HTTPResponse.Status
        switch error.code {
        case .invalidInput, .badCursor: status = .badRequest
        case .notFound: status = .notFound
        case .conflict, .invalidGraph: status = .conflict
        case AdminWriter.preconditionFailed: status = .preconditionFailed
        case PIAMError.Code(AliasDecision.reasonCode): status = .forbidden
        case PIAMError.Code(Reason.outsideCeiling.name): status = .unprocessableContent
        default: status = .internalServerError
        }
        return Problem(status, error.code.rawValue, error.message)
    }
}

/// JSON bodies with Foundation's serializer: the operations' JSON forms are dictionaries.
enum JSONBody {
    static func data(_ object: Any) -> Data {
        (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
    }

    static func response(_ object: Any, status: HTTPResponse.Status = .ok, contentType: String = "application/json",
                         headers extra: HTTPFields = [:]) -> Response {
        let d = data(object)
        var headers: HTTPFields = [.contentType: contentType]
        for field in extra { headers.append(field) }
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: d)))
    }

    /// Reads a request body as one JSON object (at most `limit` bytes).
    static func object(_ request: Request, limit: Int) async throws -> [String: Any] {
        let value = try await any(request, limit: limit)
        guard let o = value as? [String: Any] else { throw Problem(.badRequest, "invalid_input", "the body must be a JSON object") }
        return o
    }

    /// Reads a request body as JSON (an empty body is `{}`).
    static func any(_ request: Request, limit: Int) async throws -> Any {
        var req = request
        let buffer: ByteBuffer
        do {
            buffer = try await req.collectBody(upTo: limit)
        } catch {
            throw Problem(.contentTooLarge, "too_large", "the body exceeds \(limit) bytes")
        }
        if buffer.readableBytes == 0 { return [String: Any]() }
        if let type = request.headers[.contentType], !type.lowercased().hasPrefix("application/json") {
            throw Problem(.unsupportedMediaType, "unsupported_media_type", "send application/json, not \(type)")
        }
        do {
            return try JSONSerialization.jsonObject(with: Data(buffer: buffer), options: [])
        } catch {
            throw Problem(.badRequest, "invalid_input", "the body is not JSON")
        }
    }
}
