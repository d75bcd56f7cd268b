import Logging
import NIOCore
import NIOEmbedded
import PIAMEngine
@testable import PIAMServer
import PIAMWire
import Testing

/// A tiny graph: host ⊃ partners ⊃ acme; acme-admin (partner-admin at acme), alice (claims-agent).
func tinyGraph() throws -> AccessGraph {
    var d = GraphData()
    d.orgs = [
        OrgRecord(id: "host", parent: nil, kind: .host, status: .active),
        OrgRecord(id: "partners", parent: "host", kind: .host, status: .active),
        OrgRecord(id: "acme", parent: "partners", kind: .partner, status: .active),
    ]
    d.roles = [
        RoleRecord(id: "partner-admin", permissions: try ["user:view", "user:assign_role", "claim:read"].map { try Permission(parsing: $0) }),
        RoleRecord(id: "claims-agent", permissions: [try Permission(parsing: "claim:read")]),
    ]
    d.entitlements = [EntitlementRecord(org: "acme", role: "partner-admin"), EntitlementRecord(org: "acme", role: "claims-agent")]
    d.users = [
        UserRecord(id: "acme-admin", org: "acme", status: .active),
        UserRecord(id: "alice", org: "acme", status: .active),
    ]
    d.resources = [ResourceRecord(type: "claim", id: "CLM-1", org: "acme", owner: "alice")]
    d.assignments = [
        AssignmentRecord(user: "acme-admin", role: "partner-admin", scope: "acme"),
        AssignmentRecord(user: "alice", role: "claims-agent", scope: "acme"),
    ]
    return try GraphBuilder.build(d)
}

/// The daemon's connection pipeline on an EmbeddedChannel.
struct Harness {
    let channel: EmbeddedChannel
    let state: GraphState
    let loop: EmbeddedEventLoop

    let connectionGuard: ConnectionGuard
    let log: RateLimitedLog

    init(maxFrameBytes: Int = 4096, revision: Int64 = 10, timeoutMS: Int64 = 500, maxWaiting: Int = 128,
         idleTimeoutMS: Int64 = 300_000, frameTimeoutMS: Int64 = 10_000) throws {
        loop = EmbeddedEventLoop()
        channel = EmbeddedChannel(loop: loop)
        state = GraphState {}
        state.publish(Snapshot(graph: try tinyGraph(), revision: revision, loadSeconds: 0, cause: "test"))
        var config = DaemonConfig()
        config.maxFrameBytes = maxFrameBytes
        log = RateLimitedLog(logger: Logger(label: "test"))
        connectionGuard = ConnectionGuard(idleTimeout: .milliseconds(idleTimeoutMS), frameTimeout: .milliseconds(frameTimeoutMS),
                                          face: "socket", log: log, timeoutAnswer: { _ in nil })
        try channel.pipeline.syncOperations.addHandler(connectionGuard)
        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(FrameDecoder(maxFrameBytes: maxFrameBytes)))
        try channel.pipeline.syncOperations.addHandler(ConnectionHandler(
            evaluator: QueryEvaluator(config: config, state: state), state: state,
            consistencyTimeout: .milliseconds(timeoutMS), maxWaiting: maxWaiting, connectionGuard: connectionGuard,
            logger: Logger(label: "test")))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
    }

    func send(_ requests: [Request]) throws {
        try channel.writeInbound(frames(requests))
    }

    func sendRaw(_ bytes: [UInt8]) throws {
        var b = ByteBuffer()
        b.writeInteger(UInt32(bytes.count))
        b.writeBytes(bytes)
        try channel.writeInbound(b)
    }

    /// Every complete response written so far.
    func responses() throws -> [Response] {
        var all = ByteBuffer()
        while var b = try channel.readOutbound(as: ByteBuffer.self) { all.writeBuffer(&b) }
        var out: [Response] = []
        while let n = all.getInteger(at: all.readerIndex, as: UInt32.self), all.readableBytes >= 4 + Int(n) {
            all.moveReaderIndex(forwardBy: 4)
            out.append(try Response.decode(payload: all.readSlice(length: Int(n))!))
        }
        #expect(all.readableBytes == 0, "a partial frame was written")
        return out
    }
}

let pingHeader: [UInt8] = [1, 0x09, 0, 0, 0, 0, 0, 77, 0, 0, 0, 0, 0, 0, 0, 0]

@Suite("Connection handler (EmbeddedChannel)")
struct ConnectionHandlerTests {
    @Test("every opcode is answered with its body and the graph's revision")
    func everyOpcode() throws {
        let h = try Harness()
        try h.send(everyRequest.map { var r = $0; r.minRevision = 0; return r })
        let rs = try h.responses()
        #expect(rs.count == everyRequest.count)
        for (req, resp) in zip(everyRequest, rs) {
            #expect(resp.requestID == req.requestID)
            #expect(resp.opcodeByte == req.opcode.rawValue)
            #expect(resp.revision == 10)
        }
        #expect(rs[0].body == .decision(.allow))  // alice reads CLM-1 (org acme, owner alice)
        #expect(rs[1].body == .decisions([.allow, .deny(.unknownSubject)]))  // stops at the first deny
        #expect(rs[2].body == .decisions([]))
        #expect(rs[4].status == .badRequest)  // a cursor the engine never produced
        #expect(rs[5].body == .page(items: ["acme-admin", "alice"], nextCursor: ""))
        #expect(rs[7].body == .decision(.deny(.unknownSubject)))
        if case .status(let json) = rs[8].body { #expect(json.contains("\"revision\":10")) } else { Issue.record("no status") }
        #expect(rs[9].body == .empty)
    }

    @Test("each malformed input is answered and the connection stays usable")
    func malformedKeepsConnection() throws {
        let h = try Harness()
        let header: [UInt8] = [1, 0x01, 0, 0, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0]
        let cases: [([UInt8], Status)] = [
            ([], .badRequest),                                            // empty payload
            ([1, 1, 0], .badRequest),                                     // short header
            (header + [0, 5, 0x61], .badRequest),                         // truncated field
            (header + [0, 2, 0xC3, 0x28, 0, 0, 0, 0, 0, 0, 0, 0, 0], .badRequest),  // bad UTF-8
            ([1, 0x02, 0, 0, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF], .badRequest),  // count > payload
            (pingHeader + [1, 2, 3], .badRequest),                        // trailing bytes
            ([9] + pingHeader.dropFirst(), .unsupportedVersion),          // unknown version
            ([1, 0x55] + pingHeader.dropFirst(2), .unknownOpcode),        // unknown opcode
        ]
        for (bytes, status) in cases {
            try h.sendRaw(bytes)
            try h.sendRaw(pingHeader)
            let rs = try h.responses()
            #expect(rs.count == 2, "\(bytes)")
            #expect(rs.first?.status == status, "\(bytes)")
            if case .message(let m) = rs.first?.body { #expect(!m.isEmpty) }
            #expect(rs.last?.status == .ok && rs.last?.requestID == 77, "the next request is answered")
            #expect(h.channel.isActive)
        }
    }

    @Test("an oversized frame gets FRAME_TOO_LARGE (request id 0), then the connection closes")
    func oversizeCloses() throws {
        let h = try Harness(maxFrameBytes: 64)
        try h.sendRaw(pingHeader)
        var b = ByteBuffer()
        b.writeInteger(UInt32(65))
        try h.channel.writeInbound(b)
        let rs = try h.responses()
        #expect(rs.map(\.status) == [.ok, .frameTooLarge])
        #expect(rs.last?.requestID == 0)
        #expect(!h.channel.isActive)
    }

    @Test("a min_revision ahead of the graph waits; later answers queue behind it, in order")
    func minRevisionOrder() throws {
        let h = try Harness(revision: 10, timeoutMS: 500)
        var waiting = Request(requestID: 1, minRevision: 11, body: .ping)
        try h.send([waiting, Request(requestID: 2, body: .ping)])
        #expect(try h.responses().isEmpty, "nothing may overtake the waiting request")
        h.state.publish(Snapshot(graph: try tinyGraph(), revision: 11, loadSeconds: 0, cause: "test"))
        h.loop.run()
        let rs = try h.responses()
        #expect(rs.map(\.requestID) == [1, 2])
        #expect(rs.map(\.revision) == [11, 11])
        // Not reached in time: STALE after the timeout, still in order.
        waiting.requestID = 3
        waiting.minRevision = 50
        try h.send([waiting, Request(requestID: 4, body: .ping)])
        h.loop.advanceTime(by: .milliseconds(499))
        #expect(try h.responses().isEmpty)
        h.loop.advanceTime(by: .milliseconds(1))
        let stale = try h.responses()
        #expect(stale.map(\.requestID) == [3, 4])
        #expect(stale.map(\.status) == [.stale, .ok])
        #expect(stale.first?.revision == 11)
    }

    @Test("during shutdown, requests already read are answered and new ones get SHUTTING_DOWN")
    func shutdown() throws {
        let h = try Harness()
        try h.send([Request(requestID: 1, minRevision: 11, body: .ping)])
        h.channel.pipeline.fireUserInboundEventTriggered(ServerShutdownEvent())
        try h.send([Request(requestID: 2, body: .ping)])
        h.state.publish(Snapshot(graph: try tinyGraph(), revision: 11, loadSeconds: 0, cause: "test"))
        h.loop.run()
        let rs = try h.responses()
        #expect(rs.map(\.requestID) == [1, 2])
        #expect(rs.map(\.status) == [.ok, .shuttingDown])
        h.loop.advanceTime(by: .milliseconds(100))
        #expect(!h.channel.isActive)
    }

    @Test("list limits: 0 is the default page, larger limits are capped at limits.max_list")
    func listLimits() throws {
        let state = GraphState {}
        let snap = Snapshot(graph: try tinyGraph(), revision: 1, loadSeconds: 0, cause: "test")
        var c = DaemonConfig()
        c.maxList = 1
        let e = QueryEvaluator(config: c, state: state)
        let r = e.answer(Request(body: .listSubjects(action: "read", resource: ResourceRef(type: "claim", id: "CLM-1"), cursor: "", limit: 500)), on: snap)
        guard case .page(let items, let next) = r.body else { Issue.record("no page"); return }
        #expect(items == ["acme-admin"])
        #expect(!next.isEmpty)
        let r2 = e.answer(Request(body: .listSubjects(action: "read", resource: ResourceRef(type: "claim", id: "CLM-1"), cursor: next, limit: 0)), on: snap)
        #expect(r2.body == .page(items: ["alice"], nextCursor: ""))
    }
}
