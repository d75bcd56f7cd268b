import Foundation
import JWTKit
import PIAMEngine
import PIAMStore
import Synchronization

/// How bearer JWTs are verified: the identity provider's public keys (a JWKS file), the
/// issuer and audience PIAM expects, and which claim names the PIAM user.
public struct JWTSettings: Sendable, Hashable {
    /// A JSON Web Key Set file (`{"keys": [...]}`) holding the identity provider's public
    /// keys, each with a `kid`. RSA (RS256/384/512, PS256/384/512), EC (ES256/384/512) and
    /// Ed25519 keys are understood.
    public var jwksPath: String
    /// The required `iss` claim, compared exactly.
    public var issuer: String
    /// The audience PIAM must be named in: `aud` is this string, or an array containing it.
    public var audience: String
    /// The claim whose string value names the PIAM user (an id or alias): `sub` by default;
    /// `email`, `preferred_username` or a custom claim where the IdP's subject is not what
    /// PIAM knows.
    public var userClaim: String
    /// Clock skew tolerated for `exp` and `nbf`, in seconds.
    public var leewaySeconds: Int

    public init(jwksPath: String, issuer: String, audience: String, userClaim: String = "sub", leewaySeconds: Int = 60) {
        self.jwksPath = jwksPath
        self.issuer = issuer
        self.audience = audience
        self.userClaim = userClaim
        self.leewaySeconds = leewaySeconds
    }
}

/// The outcome of verifying one bearer JWT.
public enum JWTOutcome: Sendable, Hashable {
    /// The token is valid: the user claim's value, a PIAM user id or alias (the engine
    /// decides later whether that user exists and is active).
    case user(String)
    /// The token is refused. `code` is one of ``JWTAuthenticator/RejectionCode``'s values;
    /// `message` is one line for logs (never the token itself).
    case rejected(code: String, message: String)
}

/// Verifies bearer JWTs against a JWKS file (jwt-kit's `JWTKeyCollection`).
///
/// A token is accepted when all of: it is a compact JWS of three base64url parts; its
/// algorithm is an asymmetric one (`none` and the HMAC algorithms are refused: a JWKS holds
/// public keys); its `kid` names a key of the set (a token without `kid` is tried against
/// every key); the signature verifies; `iss` equals ``JWTSettings/issuer``; `aud` is or
/// contains ``JWTSettings/audience``; `exp` is present and not past (with the leeway); `nbf`,
/// when present, is not in the future (with the leeway); and the user claim is a non-empty
/// string.
///
/// `Sendable`: the key collection is an actor, and ``reload()`` swaps it under a mutex, so
/// requests verify concurrently with a reload and each sees the old or the new set whole.
public final class JWTAuthenticator: Sendable {
    /// The reason codes of ``JWTOutcome/rejected(code:message:)``.
    public enum RejectionCode {
        /// Not a JWT: not three base64url parts, a header or payload that is not a JSON
        /// object, or no `exp` claim.
        public static let malformed = "malformed"
        /// `alg` is missing, `none`, an HMAC algorithm, or one the key cannot verify.
        public static let unsupportedAlgorithm = "unsupported_algorithm"
        /// The `kid` names no key of the JWKS.
        public static let unknownKey = "unknown_key"
        /// The signature does not verify.
        public static let badSignature = "bad_signature"
        /// `iss` is missing or another issuer.
        public static let wrongIssuer = "wrong_issuer"
        /// `aud` is missing or does not name the configured audience.
        public static let wrongAudience = "wrong_audience"
        /// `exp` (plus the leeway) is past.
        public static let expired = "expired"
        /// `nbf` (minus the leeway) is still ahead.
        public static let notYetValid = "not_yet_valid"
        /// The user claim is absent.
        public static let missingUserClaim = "missing_user_claim"
        /// The user claim is not a non-empty string.
        public static let invalidUserClaim = "invalid_user_claim"
    }

    /// The settings this authenticator was made with.
    public let settings: JWTSettings

    private struct KeySet: Sendable {
        let keys: JWTKeyCollection
        let kids: Set<String>
    }

    private let state: Mutex<KeySet>

    /// Loads the JWKS file named by `settings.jwksPath`.
    ///
    /// - Throws: `PIAMError` `io` when the file cannot be read, `invalid_input` when it is not
    ///   a JWKS jwt-kit can use (not JSON, no keys, a key without `kid`, a bad key); the
    ///   message names the file.
    public init(settings: JWTSettings) async throws {
        self.settings = settings
        state = Mutex(try await Self.load(settings.jwksPath))
    }

    /// Reads the JWKS file again and, when it is valid, uses its keys from now on (key
    /// rotation). When it is not, the keys in use stay and the error is thrown (as for
    /// ``init(settings:)``).
    public func reload() async throws {
        let fresh = try await Self.load(settings.jwksPath)
        state.withLock { $0 = fresh }
    }

    /// The key ids currently loaded, sorted.
    public var keyIDs: [String] { state.withLock { $0.kids.sorted() } }

    private static func load(_ path: String) async throws -> KeySet {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw PIAMError(.io, "JWKS file \(path): cannot read it (\((error as NSError).localizedDescription))")
        }
        let jwks: JWKS
        do {
            jwks = try JSONDecoder().decode(JWKS.self, from: data)
        } catch {
            throw PIAMError(.invalidInput, "JWKS file \(path): not a JSON Web Key Set ({\"keys\": [...]}): \(Self.describe(error))")
        }
        guard !jwks.keys.isEmpty else { throw PIAMError(.invalidInput, "JWKS file \(path): the key set is empty") }
        var kids = Set<String>()
        for (i, key) in jwks.keys.enumerated() {
            guard let kid = key.keyIdentifier?.string, !kid.isEmpty else {
                throw PIAMError(.invalidInput, "JWKS file \(path): keys[\(i)] has no kid")
            }
            guard kids.insert(kid).inserted else { throw PIAMError(.invalidInput, "JWKS file \(path): kid \"\(kid)\" appears twice") }
        }
        let collection = JWTKeyCollection()
        do {
            try await collection.add(jwks: jwks)
        } catch {
            throw PIAMError(.invalidInput, "JWKS file \(path): \(Self.describe(error))")
        }
        return KeySet(keys: collection, kids: kids)
    }

    /// Verifies `token` (the text after `Bearer `) at the current time.
    public func authenticate(bearer token: String) async -> JWTOutcome {
        await authenticate(bearer: token, now: Date())
    }

    /// Verifies `token` as of `now` (for tests and replays).
    public func authenticate(bearer token: String, now: Date) async -> JWTOutcome {
        func reject(_ code: String, _ message: String) -> JWTOutcome { .rejected(code: code, message: message) }
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, token.utf8.count <= 16_384,
              let headerData = Self.base64URLDecode(parts[0]),
              let header = (try? JSONSerialization.jsonObject(with: headerData)) as? [String: Any]
        else {
            return reject(RejectionCode.malformed, "not a compact JWT (three base64url parts with a JSON header)")
        }
        guard let alg = header["alg"] as? String else { return reject(RejectionCode.unsupportedAlgorithm, "the header has no alg") }
        guard alg != "none", !alg.hasPrefix("HS"), JWK.Algorithm(rawValue: alg) != nil else {
            return reject(RejectionCode.unsupportedAlgorithm, "algorithm \"\(alg)\" is not accepted (a JWKS holds public keys)")
        }
        let kid = header["kid"] as? String
        let set = state.withLock { $0 }
        if let kid, !set.kids.contains(kid) {
            return reject(RejectionCode.unknownKey, "key \"\(kid)\" is not in the JWKS")
        }
        let claims: Claims
        do {
            claims = try await set.keys.verify(token, as: Claims.self, iteratingKeys: kid == nil)
        } catch let error as JWTError {
            switch error.errorType {
            case .signatureVerificationFailed: return reject(RejectionCode.badSignature, "the signature does not verify")
            case .unknownKID, .noKeyProvided, .missingKIDHeader: return reject(RejectionCode.unknownKey, "no key of the JWKS verifies it")
            case .generic, .unsupportedAlgorithm, .invalidJWK, .signingAlgorithmFailure:
                return reject(RejectionCode.unsupportedAlgorithm, "algorithm \"\(alg)\" does not fit key \"\(kid ?? "-")\"")
            default: return reject(RejectionCode.malformed, "cannot be read: \(error.errorType)")
            }
        } catch let error as DecodingError {
            // The signature verified, but the payload is no JSON object.
            return reject(RejectionCode.malformed, "the payload is not a JSON object: \(Self.describe(error))")
        } catch {
            // The key refused the signature's form (a wrong length, an invalid encoding).
            return reject(RejectionCode.badSignature, "the signature cannot be verified: \(Self.describe(error))")
        }
        let seconds = now.timeIntervalSince1970
        let leeway = Double(settings.leewaySeconds)
        guard case .number(let exp)? = claims.values["exp"] else {
            return reject(RejectionCode.malformed, "the token has no numeric exp claim (only expiring tokens are accepted)")
        }
        if seconds > exp + leeway {
            return reject(RejectionCode.expired, "expired at \(Self.time(exp))")
        }
        if let nbfValue = claims.values["nbf"] {
            guard case .number(let nbf) = nbfValue else { return reject(RejectionCode.malformed, "nbf is not a number") }
            if seconds + leeway < nbf {
                return reject(RejectionCode.notYetValid, "not valid before \(Self.time(nbf))")
            }
        }
        guard case .string(let iss)? = claims.values["iss"], iss == settings.issuer else {
            return reject(RejectionCode.wrongIssuer, "issuer \(claims.values["iss"].map { "\($0)" } ?? "(none)") is not \"\(settings.issuer)\"")
        }
        let audiences: [String]
        switch claims.values["aud"] {
        case .string(let a)?: audiences = [a]
        case .array(let list)?: audiences = list.compactMap { if case .string(let s) = $0 { s } else { nil } }
        default: audiences = []
        }
        guard audiences.contains(settings.audience) else {
            return reject(RejectionCode.wrongAudience, "audience \(audiences.isEmpty ? "(none)" : audiences.joined(separator: ", ")) does not include \"\(settings.audience)\"")
        }
        switch claims.values[settings.userClaim] {
        case nil:
            return reject(RejectionCode.missingUserClaim, "the token has no \(settings.userClaim) claim")
        case .string(let user)? where !user.isEmpty:
            return .user(user)
        default:
            return reject(RejectionCode.invalidUserClaim, "claim \(settings.userClaim) is not a non-empty string")
        }
    }

    /// Decodes one unpadded base64url part (`nil` when it is not one).
    static func base64URLDecode(_ part: Substring) -> Data? {
        guard !part.isEmpty, !part.contains("=") else { return nil }
        var s = part.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while s.utf8.count % 4 != 0 { s.append("=") }
        return Data(base64Encoded: s)
    }

    /// A NumericDate (seconds since the epoch) for messages.
    static func time(_ seconds: Double) -> String {
        guard seconds.isFinite, abs(seconds) < 1e11 else { return "\(seconds)" }
        return RFC3339.format(Timestamp(seconds * 1000))
    }

    static func describe(_ error: any Error) -> String {
        if let e = error as? PIAMError { return e.message }
        if let e = error as? DecodingError {
            switch e {
            case .dataCorrupted(let c), .keyNotFound(_, let c), .typeMismatch(_, let c), .valueNotFound(_, let c):
                let path = c.codingPath.map(\.stringValue).joined(separator: ".")
                return (path.isEmpty ? "" : "\(path): ") + c.debugDescription
            @unknown default: return "\(e)"
            }
        }
        if let e = error as? JWTError { return e.reason ?? "\(e.errorType)" }
        return "\(error)"
    }
}

/// Any JWT payload, as its top-level claims: the authenticator checks them itself, with its
/// settings (jwt-kit only verifies the signature).
struct Claims: JWTPayload {
    var values: [String: ClaimValue]

    struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    init(values: [String: ClaimValue]) { self.values = values }

    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: Key.self)
        var values: [String: ClaimValue] = [:]
        for k in c.allKeys { values[k.stringValue] = try c.decode(ClaimValue.self, forKey: k) }
        self.values = values
    }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: Key.self)
        for (k, v) in values { try c.encode(v, forKey: Key(stringValue: k)) }
    }

    func verify(using algorithm: some JWTAlgorithm) async throws {}
}

/// One JSON value of a claim.
enum ClaimValue: Codable, Sendable, Hashable, CustomStringConvertible {
    case string(String)
    case number(Double)
    case bool(Bool)
    case array([ClaimValue])
    case object([String: ClaimValue])
    case null

    init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let n = try? c.decode(Double.self) { self = .number(n) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else if let a = try? c.decode([ClaimValue].self) { self = .array(a) }
        else { self = .object(try c.decode([String: ClaimValue].self)) }
    }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .string(let s): try c.encode(s)
        case .number(let n): try c.encode(n)
        case .bool(let b): try c.encode(b)
        case .array(let a): try c.encode(a)
        case .object(let o): try c.encode(o)
        case .null: try c.encodeNil()
        }
    }

    var description: String {
        switch self {
        case .string(let s): "\"\(s)\""
        case .number(let n): "\(n)"
        case .bool(let b): "\(b)"
        case .array(let a): "[\(a.map(\.description).joined(separator: ", "))]"
        case .object: "{…}"
        case .null: "null"
        }
    }
}
