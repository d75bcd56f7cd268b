import HTTPTypes
import Hummingbird
import PIAMEngine

/// Who a request acts for, and how that was established.
public struct Principal: Sendable, Hashable {
    /// The PIAM user id.
    public var user: String
    /// How it was authenticated, as the audit log records it: `header`, `jwt`, `token:NAME#ID`.
    public var credential: String
}

/// What a credential verifier concluded.
public enum CredentialCheck: Sendable, Hashable {
    /// The credential holds and names this identity (a PIAM user id or alias, or an IdP subject
    /// that names no user yet — an invitee's).
    case identity(String, credential: String)
    /// The credential is the verifier's kind but does not hold: why, for the 401's detail.
    case rejected(String)
}

/// Checks a bearer credential of one kind. Returns `nil` when the token is not of its kind.
public protocol BearerVerifier: Sendable {
    func verify(bearer token: String) async -> CredentialCheck?
}

/// The request context of the administration API: the principal the authentication middleware
/// established, if any.
public struct AdminRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The authenticated PIAM user.
    public var principal: Principal?
    /// An authenticated identity that names no PIAM user (an invitee accepting its invitation).
    public var unmappedIdentity: String?
    /// Why the request's credential was rejected, when it was.
    public var rejection: String?
    /// The console's session of this request (console routes only).
    var consoleSession: ConsoleSession?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
    }

    /// Bodies are read by the handlers with their own limit.
    public var maxUploadSize: Int { 16 * 1024 * 1024 }

    /// The principal, or a 401.
    func requirePrincipal() throws -> Principal {
        if let principal { return principal }
        if let rejection { throw Problem.unauthenticated(rejection) }
        if let unmappedIdentity { throw Problem.unauthenticated("\(unmappedIdentity) is not a PIAM user") }
        throw Problem.unauthenticated("authenticate: Authorization: Bearer (an API token or a JWT), or through the proxy")
    }
}

/// Establishes the principal of every request, in this order: `Authorization: Bearer` (an API
/// token `piam_…`, else a JWT when configured), then the trusted header when this listener
/// trusts it. A credential that is present but does not hold is a 401, never a fall-through to
/// a weaker one. Identities are mapped to PIAM users (by id or alias) on the current graph.
struct AuthenticationMiddleware: RouterMiddleware {
    typealias Context = AdminRequestContext
    let service: AdminService
    let verifiers: [any BearerVerifier]
    /// The header the proxy sets, when this listener trusts it.
    let trustedHeader: HTTPField.Name?

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        // The SCIM endpoints authenticate their own tokens (``SCIMAPI``), and only those.
        if request.uri.path.hasPrefix("/scim/") { return try await next(request, context) }
        var context = context
        var found: CredentialCheck?
        if let auth = request.headers[.authorization] {
            let parts = auth.split(separator: " ", maxSplits: 1)
            guard parts.count == 2, parts[0].lowercased() == "bearer", !parts[1].isEmpty else {
                throw Problem.unauthenticated("Authorization must be Bearer <token>")
            }
            let token = String(parts[1]).trimmingCharacters(in: .whitespaces)
            for v in verifiers {
                if let c = await v.verify(bearer: token) { found = c; break }
            }
            if found == nil { found = .rejected("the bearer token is neither a PIAM API token nor an accepted JWT") }
        } else if let name = trustedHeader, let value = request.headers[name], !value.isEmpty {
            found = .identity(value, credential: "header")
        }
        switch found {
        case .identity(let id, let credential):
            if let user = service.graph.graph.userID(for: id) {
                context.principal = Principal(user: user, credential: credential)
                context.logger[metadataKey: "piam.actor"] = .string(user)
            } else {
                context.unmappedIdentity = id
            }
        case .rejected(let why):
            context.rejection = why
        case nil:
            break
        }
        return try await next(request, context)
    }
}
