import NIOCore
import PIAMEngine

/// The allocation-free path for the two hot opcodes, CHECK and CHECK_BATCH: the ids are looked
/// up straight from the request's bytes (`CheckBytes`) and the answer is written straight into
/// the output buffer — no `String`, no ``Request``, no ``Response`` per check.
///
/// The fast path only ever answers what the general path (``Request/decode(payload:)``, then
/// the engine, then ``Response/encodeFrame(into:)``) would answer with the same bytes. Anything
/// it is not sure of — another opcode, a `min_revision` ahead of the graph, any malformed or
/// non-ASCII field — it declines, having written nothing, and the caller takes the general
/// path, which validates UTF-8 and words every error. So the two cannot disagree on an error,
/// and a test decides every request both ways and compares the bytes.
public enum FastCheck {
    /// What the fast path answered.
    public struct Answered: Sendable {
        public var opcode: Opcode
        /// Checks decided (1 for CHECK; for CHECK_BATCH, up to the short-circuit).
        public var decisions: Int
    }

    /// Decides `payload` (a frame's bytes after its length) when it is a well-formed CHECK or
    /// CHECK_BATCH whose ids are ASCII and whose `min_revision` is at most `revision`, appending
    /// the OK response frame (stamped with `revision`) to `out`. Returns `nil`, having written
    /// nothing, for anything else.
    ///
    /// - Parameters:
    ///   - payload: a frame's bytes after its u32 length.
    ///   - revision: the revision of the graph `decide` answers from; a request whose
    ///     `min_revision` is above it is declined (the general path makes it wait).
    ///   - out: where the response frame is appended.
    ///   - scratch: reused between calls to hold a batch's items while the whole frame is
    ///     checked before any item is decided (a malformed last item makes the whole frame a
    ///     BAD_REQUEST). Its pointers are dead after the call.
    ///   - decide: the decision for one check; called in request order, and not past the item
    ///     that ends a short-circuit batch.
    public static func answer(
        payload: ByteBuffer, revision: UInt64, into out: inout ByteBuffer, scratch: inout [CheckBytes],
        decide: (CheckBytes) -> Decision
    ) -> Answered? {
        payload.withUnsafeReadableBytes { raw -> Answered? in
            guard raw.count >= requestHeaderBytes, raw[0] == piamWireVersion else { return nil }
            let opcode = raw[1]
            guard opcode == Opcode.check.rawValue || opcode == Opcode.checkBatch.rawValue else { return nil }
            let requestID = UInt32(bigEndian: raw.loadUnaligned(fromByteOffset: 4, as: UInt32.self))
            let minRevision = UInt64(bigEndian: raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
            guard minRevision <= revision else { return nil }
            var r = Reader(raw: raw, at: requestHeaderBytes)
            if opcode == Opcode.check.rawValue {
                guard let c = r.check(), r.atEnd else { return nil }
                let d = decide(c)
                let start = out.beginResponseFrame(opcodeByte: opcode, status: .ok, requestID: requestID, revision: revision)
                out.writeDecision(d)
                out.finishFrame(at: start)
                return Answered(opcode: .check, decisions: 1)
            }
            guard let s = r.u8(), let semantic = BatchSemantic(rawValue: s), let n32 = r.u32() else { return nil }
            let n = Int(n32)
            // The general path's bound: a CHECK body is at least 9 bytes.
            guard n <= r.remaining / 9 else { return nil }
            scratch.removeAll(keepingCapacity: true)
            scratch.reserveCapacity(n)
            for _ in 0..<n {
                guard let c = r.check() else { return nil }
                scratch.append(c)
            }
            guard r.atEnd else { return nil }
            let start = out.beginResponseFrame(opcodeByte: opcode, status: .ok, requestID: requestID, revision: revision)
            let countAt = out.writerIndex
            out.writeInteger(UInt32(0))
            var decided = 0
            for c in scratch {
                let d = decide(c)
                out.writeDecision(d)
                decided += 1
                if semantic.stops(after: d) { break }
            }
            out.setInteger(UInt32(decided), at: countAt)
            out.finishFrame(at: start)
            return Answered(opcode: .checkBatch, decisions: decided)
        }
    }

    /// Reads PROTOCOL's `str`, `props` and CHECK body from borrowed bytes; every method returns
    /// `nil` where the general decoder would throw, or where a field is not ASCII (the general
    /// decoder then validates it).
    private struct Reader {
        let raw: UnsafeRawBufferPointer
        var at: Int

        init(raw: UnsafeRawBufferPointer, at: Int) {
            self.raw = raw
            self.at = at
        }

        var remaining: Int { raw.count - at }
        var atEnd: Bool { at == raw.count }

        @inline(__always)
        mutating func u8() -> UInt8? {
            guard at < raw.count else { return nil }
            defer { at += 1 }
            return raw[at]
        }

        @inline(__always)
        mutating func u32() -> UInt32? {
            guard remaining >= 4 else { return nil }
            defer { at += 4 }
            return UInt32(bigEndian: raw.loadUnaligned(fromByteOffset: at, as: UInt32.self))
        }

        /// A `str` whose bytes are all ASCII (so valid UTF-8).
        @inline(__always)
        mutating func str() -> UnsafeRawBufferPointer? {
            guard remaining >= 2 else { return nil }
            let n = Int(UInt16(bigEndian: raw.loadUnaligned(fromByteOffset: at, as: UInt16.self)))
            guard n <= remaining - 2 else { return nil }
            let s = UnsafeRawBufferPointer(rebasing: raw[(at + 2)..<(at + 2 + n)])
            guard Self.isASCII(s) else { return nil }
            at += 2 + n
            return s
        }

        @inline(__always)
        static func isASCII(_ s: UnsafeRawBufferPointer) -> Bool {
            guard let base = s.baseAddress else { return true }
            var bits: UInt64 = 0
            var i = 0
            while i + 8 <= s.count {
                bits |= base.loadUnaligned(fromByteOffset: i, as: UInt64.self)
                i += 8
            }
            while i < s.count {
                bits |= UInt64(base.load(fromByteOffset: i, as: UInt8.self))
                i += 1
            }
            return bits & 0x8080_8080_8080_8080 == 0
        }

        /// A CHECK body: subject, action, resource type and id, props. Of the props only `org`
        /// and `owner` count, the last of each winning (as `ResourceRef.init(type:id:properties:)`).
        @inline(__always)
        mutating func check() -> CheckBytes? {
            guard let subject = str(), let action = str(), let type = str(), let id = str(), let n = u8() else { return nil }
            var c = CheckBytes(subject: subject, action: action, resourceType: type, resourceID: id)
            if n > 0 {
                guard Int(n) * 4 <= remaining else { return nil }
                for _ in 0..<n {
                    guard let k = str(), let v = str() else { return nil }
                    if Self.equals(k, "org") { c.org = v } else if Self.equals(k, "owner") { c.owner = v }
                }
            }
            return c
        }

        @inline(__always)
        static func equals(_ b: UnsafeRawBufferPointer, _ s: StaticString) -> Bool {
            b.count == s.utf8CodeUnitCount && b.elementsEqual(UnsafeRawBufferPointer(start: s.utf8Start, count: s.utf8CodeUnitCount))
        }
    }
}
