import NIOCore
import NIOEmbedded
import NIOTestUtils
import PIAMEngine
import PIAMWire
import Testing

let sampleCheck = CheckRequest(subject: "alice", action: "read",
                               resource: ResourceRef(type: "claim", id: "CLM-1", org: "acme", owner: "alice"))
let plainCheck = CheckRequest(subject: "idp|bob", action: "submit", resource: ResourceRef(type: "claim", id: "CLM-2"))

/// One request of every opcode, with non-trivial fields.
let everyRequest: [Request] = [
    Request(requestID: 1, minRevision: 7, body: .check(sampleCheck)),
    Request(requestID: 2, body: .checkBatch(.denyOnFirstDeny, [sampleCheck, plainCheck])),
    Request(requestID: 3, body: .checkBatch(.executeAll, [])),
    Request(requestID: 4, body: .explain(plainCheck)),
    Request(requestID: 5, body: .listResources(subject: "alice", action: "read", type: "claim", cursor: "c1abcd", limit: 50)),
    Request(requestID: 6, body: .listSubjects(action: "read", resource: sampleCheck.resource, cursor: "", limit: 0)),
    Request(requestID: 7, body: .listActions(subject: "alice", resource: plainCheck.resource)),
    Request(requestID: 8, body: .canAssign(actor: "admin", target: "alice", role: "claims-agent", scope: "")),
    Request(requestID: 9, body: .status),
    Request(requestID: UInt32.max, minRevision: UInt64.max, body: .ping),
    Request(requestID: 10, body: .check(CheckRequest(subject: "ünïcødé ✓", action: "a", resource: ResourceRef(type: "t", id: "😀")))),
]

/// One response of every body shape.
let everyResponse: [Response] = [
    Response(opcode: .check, requestID: 1, revision: 42, body: .decision(.allow)),
    Response(opcode: .canAssign, requestID: 2, revision: 42, body: .decision(.deny(.escalation))),
    Response(opcode: .checkBatch, requestID: 3, revision: 42, body: .decisions([.allow, .deny(.outOfScope), .deny(.unknownSubject)])),
    Response(opcode: .explain, requestID: 4, revision: 42, body: .explanation(.deny(.notOwner), trace: "{\"steps\":[]}")),
    Response(opcode: .listResources, requestID: 5, revision: 42, body: .page(items: ["a", "b"], nextCursor: "c1ff")),
    Response(opcode: .listSubjects, requestID: 6, revision: 42, body: .page(items: [], nextCursor: "")),
    Response(opcode: .listActions, requestID: 7, revision: 42, body: .actions(["read", "submit"])),
    Response(opcode: .status, requestID: 8, revision: 42, body: .status("{\"revision\":42}")),
    Response(opcode: .ping, requestID: 9, revision: UInt64.max, body: .empty),
    .error(.stale, opcodeByte: 1, requestID: 10, revision: 3, message: "not yet"),
    .error(.unknownOpcode, opcodeByte: 0xEE, requestID: 11, revision: 3, message: "unknown opcode 0xee"),
]

func frames(_ requests: [Request]) -> ByteBuffer {
    var b = ByteBuffer()
    for r in requests { r.encodeFrame(into: &b) }
    return b
}

/// Strips the u32 length of a single encoded frame.
func payload(of r: Request) -> ByteBuffer {
    var b = frames([r])
    let n = b.readInteger(as: UInt32.self)!
    #expect(Int(n) == b.readableBytes)
    return b
}

@Suite("Wire codec")
struct CodecTests {
    @Test("every request opcode round-trips", arguments: everyRequest)
    func requestRoundTrip(_ r: Request) throws {
        let decoded = try Request.decode(payload: payload(of: r)).get()
        #expect(decoded == r)
    }

    @Test("every response shape round-trips", arguments: everyResponse)
    func responseRoundTrip(_ r: Response) throws {
        var b = ByteBuffer()
        r.encodeFrame(into: &b)
        let n = b.readInteger(as: UInt32.self)!
        #expect(Int(n) == b.readableBytes)
        #expect(try Response.decode(payload: b) == r)
    }

    @Test("opcode byte values are PROTOCOL.md's")
    func opcodeNumbers() {
        #expect(Opcode.allCases.map(\.rawValue) == Array(1...9))
        #expect(Status.allCases.map(\.rawValue) == Array(0...8))
        #expect(Reason.allCases.map(\.rawValue) == Array(0...15))
    }

    @Test("the frame decoder gives the same frames for every chunking of the input")
    func decoderVerifier() throws {
        let all = frames(everyRequest)
        var expected: [(ByteBuffer, [InboundFrame])] = []
        var single: [InboundFrame] = []
        for r in everyRequest { single.append(.payload(payload(of: r))) }
        expected.append((all, single))
        try ByteToMessageDecoderVerifier.verifyDecoder(inputOutputPairs: expected) {
            FrameDecoder(maxFrameBytes: 4096)
        }
    }

    @Test("an oversized frame is rejected at its header, before its payload arrives")
    func oversizeAtHeader() throws {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(FrameDecoder(maxFrameBytes: 100)))
        var b = ByteBuffer()
        b.writeInteger(UInt32(101))
        try channel.writeInbound(b)
        #expect(try channel.readInbound(as: InboundFrame.self) == .tooLarge(declared: 101))
        // Whatever follows is dropped, never buffered or decoded.
        var more = ByteBuffer()
        more.writeBytes([UInt8](repeating: 0, count: 5000))
        try channel.writeInbound(more)
        #expect(try channel.readInbound(as: InboundFrame.self) == nil)
        _ = try? channel.finish()
    }

    @Test("a frame exactly at the limit is accepted")
    func atLimit() throws {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(FrameDecoder(maxFrameBytes: 8)))
        var b = ByteBuffer()
        b.writeInteger(UInt32(8))
        b.writeBytes([1, 2, 3, 4, 5, 6, 7, 8])
        try channel.writeInbound(b)
        guard case .payload(let p) = try channel.readInbound(as: InboundFrame.self) else {
            Issue.record("no payload")
            return
        }
        #expect(p.readableBytes == 8)
        _ = try? channel.finish()
    }

    @Test("malformed payloads decode to the status PROTOCOL.md names")
    func malformed() throws {
        func decode(_ bytes: [UInt8]) -> WireDecodeError? {
            var b = ByteBuffer()
            b.writeBytes(bytes)
            if case .failure(let e) = Request.decode(payload: b) { return e }
            return nil
        }
        let header: [UInt8] = [1, 0x01, 0, 0, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0]
        // Empty payload, short header.
        #expect(decode([])?.status == .badRequest)
        #expect(decode([1, 9, 0])?.status == .badRequest)
        // Unknown version (before anything else), unknown opcode; both echo the request id.
        let v = decode([2, 0x01, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0])
        #expect(v?.status == .unsupportedVersion && v?.requestID == 5)
        let o = decode([1, 0x7F, 0, 0, 0, 0, 0, 6, 0, 0, 0, 0, 0, 0, 0, 0])
        #expect(o?.status == .unknownOpcode && o?.requestID == 6 && o?.opcodeByte == 0x7F)
        // Truncated field: CHECK with a str length but no bytes.
        let t = decode(header + [0, 5, 0x61])
        #expect(t?.status == .badRequest && t?.requestID == 9)
        #expect(t?.message.contains("subject") == true)
        // Bad UTF-8.
        let u = decode(header + [0, 2, 0xC3, 0x28] + [0, 0, 0, 0, 0, 0, 0, 0, 0])
        #expect(u?.status == .badRequest && u?.message.contains("UTF-8") == true)
        // Count larger than the payload: a batch claiming a billion items.
        var batch: [UInt8] = [1, 0x02, 0, 0, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0]
        batch += [0x3B, 0x9A, 0xCA, 0x00]
        #expect(decode(batch)?.status == .badRequest)
        // Props count larger than the payload.
        #expect(decode(header + [0, 0, 0, 0, 0, 0, 0, 0, 200])?.status == .badRequest)
        // Trailing bytes after a PING.
        var ping = header
        ping[1] = 0x09
        #expect(decode(ping) == nil)
        #expect(decode(ping + [0])?.message.contains("trailing") == true)
        // Unknown batch semantic.
        #expect(decode([1, 0x02, 0, 0, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 0])?.status == .badRequest)
    }

    @Test("the client refuses to send a string the protocol cannot carry")
    func oversizedString() {
        let long = String(repeating: "x", count: 70_000)
        let r = Request(body: .check(CheckRequest(subject: long, action: "a", resource: ResourceRef(type: "t", id: "i"))))
        #expect(throws: PIAMError.self) { try r.validateForWire() }
    }
}

extension Request: CustomTestStringConvertible {
    public var testDescription: String { "\(opcode) #\(requestID)" }
}

extension Response: CustomTestStringConvertible {
    public var testDescription: String { "\(opcode.map(String.init(describing:)) ?? "0x\(opcodeByte)") \(status)" }
}
