import Foundation
import JWTKit
import PIAMEngine
import Testing
@testable import PIAMAdmin

/// A payload with any claims, signed by jwt-kit for the tests.
struct TestClaims: JWTPayload {
    var claims: [String: ClaimValue]

    init(_ claims: [String: ClaimValue]) { self.claims = claims }
    init(from decoder: any Decoder) throws { claims = try Claims(from: decoder).values }
    func encode(to encoder: any Encoder) throws { try Claims(values: claims).encode(to: encoder) }
    func verify(using algorithm: some JWTAlgorithm) async throws {}
}

/// Keys, a JWKS file and signers for the tests: an ES256 key `ec1`, an RS256 key `rsa1`, and
/// an ES256 key `rogue` the JWKS does not hold.
struct JWTFixture {
    let dir: URL
    let jwksPath: String
    let signers: JWTKeyCollection
    let now = Date(timeIntervalSince1970: 1_800_000_000)
    static let issuer = "https://idp.example/", audience = "piam-admin"

    init() async throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("piam-jwt-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let ec = ES256PrivateKey()
        let rsa = try Self.rsaKey()
        let (n, e) = try rsa.publicKey.getKeyPrimitives()
        let ecParams = try #require(ec.publicKey.parameters)
        let jwks = JWKS(keys: [
            .ecdsa(.es256, identifier: "ec1", x: ecParams.x, y: ecParams.y, curve: .p256),
            .rsa(.rs256, identifier: "rsa1", modulus: Self.base64URL(n), exponent: Self.base64URL(e)),
        ])
        jwksPath = dir.appendingPathComponent("jwks.json").path
        try JSONEncoder().encode(jwks).write(to: URL(fileURLWithPath: jwksPath))
        signers = JWTKeyCollection()
        await signers.add(ecdsa: ec, kid: "ec1")
        await signers.add(rsa: rsa, digestAlgorithm: .sha256, kid: "rsa1")
        await signers.add(ecdsa: ES256PrivateKey(), kid: "rogue")
    }

    /// A 2048-bit RSA key from openssl (jwt-kit reads PEM; swift-crypto's RSA generation is in
    /// a module this target does not depend on).
    static func rsaKey() throws -> Insecure.RSA.PrivateKey {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        p.arguments = ["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        try p.run()
        let pem = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return try Insecure.RSA.PrivateKey(pem: String(decoding: pem, as: UTF8.self))
    }

    static func base64URL(_ d: Data) -> String {
        d.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    var settings: JWTSettings { JWTSettings(jwksPath: jwksPath, issuer: Self.issuer, audience: Self.audience) }

    /// The claims of a good token for `sub`, valid around `now`.
    func claims(_ sub: String = "okta|ann") -> [String: ClaimValue] {
        let t = now.timeIntervalSince1970
        return ["sub": .string(sub), "iss": .string(Self.issuer), "aud": .string(Self.audience),
                "exp": .number(t + 300), "iat": .number(t), "nbf": .number(t - 10)]
    }

    func sign(_ claims: [String: ClaimValue], kid: String = "ec1") async throws -> String {
        try await signers.sign(TestClaims(claims), kid: JWKIdentifier(string: kid))
    }
}

@Suite struct JWTAuthenticatorTests {
    func rejected(_ o: JWTOutcome) -> String? {
        if case .rejected(let code, _) = o { return code }
        return nil
    }

    @Test func validTokensOfBothKeyTypesNameTheUser() async throws {
        let f = try await JWTFixture()
        let auth = try await JWTAuthenticator(settings: f.settings)
        #expect(auth.keyIDs == ["ec1", "rsa1"])
        #expect(await auth.authenticate(bearer: try await f.sign(f.claims(), kid: "ec1"), now: f.now) == .user("okta|ann"))
        #expect(await auth.authenticate(bearer: try await f.sign(f.claims("bob"), kid: "rsa1"), now: f.now) == .user("bob"))
        // aud as an array naming PIAM among others.
        var multi = f.claims()
        multi["aud"] = .array([.string("portal"), .string(JWTFixture.audience)])
        #expect(await auth.authenticate(bearer: try await f.sign(multi), now: f.now) == .user("okta|ann"))
        // Another user claim.
        var email = f.claims()
        email["email"] = .string("ann@acme.example")
        var s = f.settings
        s.userClaim = "email"
        let byEmail = try await JWTAuthenticator(settings: s)
        #expect(await byEmail.authenticate(bearer: try await f.sign(email), now: f.now) == .user("ann@acme.example"))
        // With the real clock: a token made for now.
        var live = f.claims()
        let t = Date().timeIntervalSince1970
        live["exp"] = .number(t + 300); live["nbf"] = .number(t - 10)
        #expect(await auth.authenticate(bearer: try await f.sign(live)) == .user("okta|ann"))
    }

    @Test func everyRejectionHasItsCode() async throws {
        let f = try await JWTFixture()
        let auth = try await JWTAuthenticator(settings: f.settings)
        let t = f.now.timeIntervalSince1970
        func with(_ change: (inout [String: ClaimValue]) -> Void) -> [String: ClaimValue] {
            var c = f.claims()
            change(&c)
            return c
        }
        // Signature: another key under a known kid; a kid the JWKS lacks; a tampered payload.
        let rogue = try await f.sign(f.claims(), kid: "rogue")
        #expect(rejected(await auth.authenticate(bearer: rogue, now: f.now)) == "unknown_key")
        let rogueParts = rogue.split(separator: ".")
        let good = try await f.sign(f.claims(), kid: "ec1")
        let goodParts = good.split(separator: ".")
        let forged = [goodParts[0], rogueParts[1], rogueParts[2]].joined(separator: ".")
        #expect(rejected(await auth.authenticate(bearer: forged, now: f.now)) == "bad_signature")
        let tamperedPayload = JWTFixture.base64URL(try JSONEncoder().encode(Claims(values: f.claims("nina.hq"))))
        let tampered = [goodParts[0], Substring(tamperedPayload), goodParts[2]].joined(separator: ".")
        #expect(rejected(await auth.authenticate(bearer: tampered, now: f.now)) == "bad_signature")
        let rsaForged = try await f.sign(f.claims(), kid: "rsa1").split(separator: ".")
        let swapped = [rsaForged[0], rsaForged[1], goodParts[2]].joined(separator: ".")
        #expect(rejected(await auth.authenticate(bearer: swapped, now: f.now)) == "bad_signature")
        // No kid: tried against every key; a rogue signature is still refused.
        let noKidHeader = JWTFixture.base64URL(Data(#"{"alg":"ES256","typ":"JWT"}"#.utf8))
        let noKid = [Substring(noKidHeader), rogueParts[1], rogueParts[2]].joined(separator: ".")
        #expect(rejected(await auth.authenticate(bearer: noKid, now: f.now)) == "bad_signature")
        // Algorithms: none and HMAC are never accepted.
        let none = JWTFixture.base64URL(Data(#"{"alg":"none","kid":"ec1"}"#.utf8)) + "." + goodParts[1] + "."
        #expect(rejected(await auth.authenticate(bearer: none, now: f.now)) == "unsupported_algorithm")
        let hs = JWTFixture.base64URL(Data(#"{"alg":"HS256","kid":"ec1"}"#.utf8)) + "." + goodParts[1] + "." + goodParts[2]
        #expect(rejected(await auth.authenticate(bearer: hs, now: f.now)) == "unsupported_algorithm")
        // Malformed.
        for bad in ["", "abc", "a.b", "a.b.c.d", "!!!.e30.xx", goodParts[0] + "." + goodParts[1]] {
            #expect(rejected(await auth.authenticate(bearer: bad, now: f.now)) == "malformed", "\(bad)")
        }
        // Issuer and audience.
        #expect(rejected(await auth.authenticate(bearer: try await f.sign(with { $0["iss"] = .string("https://evil.example/") }), now: f.now)) == "wrong_issuer")
        #expect(rejected(await auth.authenticate(bearer: try await f.sign(with { $0["iss"] = nil }), now: f.now)) == "wrong_issuer")
        #expect(rejected(await auth.authenticate(bearer: try await f.sign(with { $0["aud"] = .string("portal") }), now: f.now)) == "wrong_audience")
        #expect(rejected(await auth.authenticate(bearer: try await f.sign(with { $0["aud"] = .array([.string("portal")]) }), now: f.now)) == "wrong_audience")
        #expect(rejected(await auth.authenticate(bearer: try await f.sign(with { $0["aud"] = nil }), now: f.now)) == "wrong_audience")
        // Time, with the 60 s leeway.
        let expiredToken = try await f.sign(with { $0["exp"] = .number(t - 61) })
        #expect(rejected(await auth.authenticate(bearer: expiredToken, now: f.now)) == "expired")
        #expect(await auth.authenticate(bearer: try await f.sign(with { $0["exp"] = .number(t - 59) }), now: f.now) == .user("okta|ann"))
        #expect(rejected(await auth.authenticate(bearer: try await f.sign(with { $0["exp"] = nil }), now: f.now)) == "malformed")
        #expect(rejected(await auth.authenticate(bearer: try await f.sign(with { $0["nbf"] = .number(t + 61) }), now: f.now)) == "not_yet_valid")
        #expect(await auth.authenticate(bearer: try await f.sign(with { $0["nbf"] = .number(t + 59) }), now: f.now) == .user("okta|ann"))
        // The user claim.
        #expect(rejected(await auth.authenticate(bearer: try await f.sign(with { $0["sub"] = nil }), now: f.now)) == "missing_user_claim")
        #expect(rejected(await auth.authenticate(bearer: try await f.sign(with { $0["sub"] = .number(42) }), now: f.now)) == "invalid_user_claim")
        #expect(rejected(await auth.authenticate(bearer: try await f.sign(with { $0["sub"] = .string("") }), now: f.now)) == "invalid_user_claim")
        // Messages are one line and never repeat the token.
        if case .rejected(_, let message) = await auth.authenticate(bearer: expiredToken, now: f.now) {
            #expect(!message.contains("\n") && !message.contains(expiredToken) && message.hasPrefix("expired at 2027-"))
        }
    }

    @Test func aBadJWKSFileIsNamedAndReloadSwapsKeys() async throws {
        let f = try await JWTFixture()
        func message(_ settings: JWTSettings) async -> String? {
            do { _ = try await JWTAuthenticator(settings: settings); return nil } catch let e as PIAMError { return e.message } catch { return "\(error)" }
        }
        var s = f.settings
        s.jwksPath = f.dir.appendingPathComponent("missing.json").path
        #expect(await message(s)?.hasPrefix("JWKS file \(s.jwksPath): cannot read it") == true)
        for (name, text, expected) in [
            ("notjson.json", "hello", "not a JSON Web Key Set"),
            ("empty.json", #"{"keys": []}"#, "the key set is empty"),
            ("nokid.json", #"{"keys": [{"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"}]}"#, "keys[0] has no kid"),
        ] {
            s.jwksPath = f.dir.appendingPathComponent(name).path
            try text.write(toFile: s.jwksPath, atomically: true, encoding: .utf8)
            let m = await message(s)
            #expect(m?.hasPrefix("JWKS file \(s.jwksPath): ") == true && m?.contains(expected) == true, "\(m ?? "-")")
        }

        // Reload: rotate to a set holding only the RSA key, then a broken file keeps the keys.
        let auth = try await JWTAuthenticator(settings: f.settings)
        let ecToken = try await f.sign(f.claims(), kid: "ec1")
        let rsaToken = try await f.sign(f.claims(), kid: "rsa1")
        let original = try Data(contentsOf: URL(fileURLWithPath: f.jwksPath))
        var jwks = try JSONDecoder().decode(JWKS.self, from: original)
        jwks.keys.removeAll { $0.keyIdentifier?.string == "ec1" }
        try JSONEncoder().encode(jwks).write(to: URL(fileURLWithPath: f.jwksPath))
        try await auth.reload()
        #expect(auth.keyIDs == ["rsa1"])
        #expect(rejected(await auth.authenticate(bearer: ecToken, now: f.now)) == "unknown_key")
        #expect(await auth.authenticate(bearer: rsaToken, now: f.now) == .user("okta|ann"))
        try "{".write(toFile: f.jwksPath, atomically: true, encoding: .utf8)
        await #expect(throws: PIAMError.self) { try await auth.reload() }
        #expect(auth.keyIDs == ["rsa1"])
        #expect(await auth.authenticate(bearer: rsaToken, now: f.now) == .user("okta|ann"))
    }
}
