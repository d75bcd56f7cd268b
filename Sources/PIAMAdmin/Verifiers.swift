import Foundation
import HTTPTypes
import Hummingbird
import PIAMEngine
import PIAMStore

/// API tokens (`piam_…`, made by `piamctl token create`): checked against their hashes in the
/// database; each use is audited under the token's user with the credential `token:NAME#ID`.
struct APITokenVerifier: BearerVerifier {
    let service: AdminService

    func verify(bearer token: String) async -> CredentialCheck? {
        guard token.hasPrefix("piam_") else { return nil }
        let now = AdminAPI.now()
        let check = try? await service.read { store, _ in try store.authenticateToken(token, now: now) }
        switch check {
        case .valid(let info): return .identity(info.user, credential: info.credential)
        case .expired(let info): return .rejected("API token \(info.name)#\(info.id) expired")
        case .revoked(let info): return .rejected("API token \(info.name)#\(info.id) was revoked")
        case .unknown: return .rejected("unknown API token")
        case nil: return .rejected("the API token could not be checked")
        }
    }
}

/// Bearer JWTs from the business's identity provider (``JWTAuthenticator``): the configured
/// claim names the PIAM user (by id or alias).
struct JWTVerifier: BearerVerifier {
    let authenticator: JWTAuthenticator

    func verify(bearer token: String) async -> CredentialCheck? {
        switch await authenticator.authenticate(bearer: token) {
        case .user(let id): return .identity(id, credential: "jwt")
        case .rejected(let code, let message): return .rejected("JWT refused (\(code)): \(message)")
        }
    }
}

extension AdminAPI {
    /// `POST /admin/v1/invitations/accept` `{"token": SECRET, "identity": IDP_SUBJECT}`: the
    /// invitee activates its user and binds its IdP identity as an alias. The invitation secret
    /// is the credential; when the request also carries an authenticated identity (a JWT or the
    /// proxy's header naming no user yet), that identity is the one bound and `identity` may be
    /// left out (if given, it must be the same).
    func acceptInvitation(_ request: Request, _ context: AdminRequestContext) async throws -> Response {
        let body = try await JSONBody.object(request, limit: settings.maxBodyBytes)
        for k in body.keys.sorted() where k != "token" && k != "identity" {
            throw Problem(.badRequest, "invalid_input", "unknown field \"\(k)\" (takes: token, identity)")
        }
        guard let secret = body["token"] as? String, !secret.isEmpty else {
            throw Problem(.badRequest, "invalid_input", "token: the invitation's secret is required")
        }
        var identity = body["identity"] as? String
        if body["identity"] != nil, identity == nil { throw Problem(.badRequest, "invalid_input", "identity: must be a string") }
        if let authenticated = context.unmappedIdentity {
            if let identity, identity != authenticated {
                throw Problem(.badRequest, "invalid_input", "identity: the request is authenticated as \(authenticated), not \(identity)")
            }
            identity = authenticated
        }
        guard let identity, !identity.isEmpty else {
            throw Problem(.unprocessableContent, "identity_required",
                          "identity: the IdP identity to bind (or authenticate the request as it)")
        }
        switch try await accept(secret: secret, identity: identity) {
        case .success(let r):
            return JSONBody.response(Self.resultJSON(r), headers: Self.revisionHeaders(r.revision))
        case .failure(let e) where e.code.rawValue.hasPrefix("invitation_"):
            // Unknown, used, revoked or expired: the secret no longer opens anything.
            throw Problem(e.code.rawValue == "invitation_invalid" ? .notFound : .gone, e.code.rawValue, e.message)
        case .failure(let e) where e.code.rawValue == AliasDecision.reasonCode:
            // The identity lies outside the invitee's partner's namespaces: the rule refuses it.
            throw Problem(.forbidden, e.code.rawValue, e.message)
        case .failure(let e):
            throw Problem.from(e)
        }
    }

    /// Accepts an invitation, binding `identity` (the API's and the consoles' one path).
    func accept(secret: String, identity: String) async throws -> Result<AdminResult, PIAMError> {
        try await service.write { w in
            do {
                let r = try w.store.acceptInvitation(secret: secret, identity: identity)
                try w.catchUp()
                return .success(r)
            } catch let e as PIAMError {
                return .failure(e)
            }
        }
    }
}
