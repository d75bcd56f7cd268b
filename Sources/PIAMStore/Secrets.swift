import Foundation
import PIAMEngine

/// The secrets the store hands out (API tokens, invitations) and the digest it keeps of them.
///
/// A secret is a prefix plus 32 random bytes from the system's generator, base64url without
/// padding; the database keeps only its SHA-256 (lowercase hex), so a copy of the database
/// (a backup, a Litestream replica) lets nobody authenticate.
enum Secrets {
    /// The prefix of API tokens.
    static let tokenPrefix = "piam_"
    /// The prefix of invitation secrets (distinct, so neither is mistaken for the other).
    static let invitationPrefix = "piam_inv_"
    /// Random bytes per secret.
    static let randomBytes = 32

    /// A new secret: `prefix` + base64url(32 random bytes).
    static func make(prefix: String) -> String {
        var rng = SystemRandomNumberGenerator()
        var bytes: [UInt8] = []
        bytes.reserveCapacity(randomBytes)
        while bytes.count < randomBytes {
            let word = rng.next()
            for i in 0..<8 where bytes.count < randomBytes { bytes.append(UInt8(truncatingIfNeeded: word >> (UInt64(i) * 8))) }
        }
        return prefix + base64URL(bytes)
    }

    /// SHA-256 of the secret's UTF-8 bytes, as 64 lowercase hex digits.
    static func hash(_ secret: String) -> String { SHA256.hex(Array(secret.utf8)) }

    /// Base64url (RFC 4648 §5) without padding.
    static func base64URL(_ bytes: [UInt8]) -> String {
        var s = Data(bytes).base64EncodedString()
        s = s.replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
        while s.hasSuffix("=") { s.removeLast() }
        return s
    }
}

extension PIAMError.Code {
    /// An invitation secret that matches no open invitation: unknown, revoked, or its user is
    /// no longer `invited`.
    public static let invitationInvalid = PIAMError.Code("invitation_invalid")
    /// An invitation past its expiry (or whose user's access has ended).
    public static let invitationExpired = PIAMError.Code("invitation_expired")
    /// An invitation already accepted (an invitation is single-use).
    public static let invitationUsed = PIAMError.Code("invitation_used")
}
