import Crypto
import Foundation

/// SHA-256, for the digest an audited import records of its file (and, through ``Secrets``,
/// the digests the database keeps instead of API tokens and invitation secrets): swift-crypto's.
enum SHA256 {
    /// The digest of `data` as 64 lowercase hex digits.
    static func hex(_ data: Data) -> String {
        hex(Crypto.SHA256.hash(data: data))
    }

    /// The digest of `bytes` as 64 lowercase hex digits.
    static func hex(_ bytes: [UInt8]) -> String {
        hex(Crypto.SHA256.hash(data: bytes))
    }

    private static func hex(_ digest: Crypto.SHA256.Digest) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(64)
        for b in digest {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
