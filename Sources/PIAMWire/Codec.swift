import NIOCore
import PIAMEngine

// MARK: - Field readers

/// A field-level parse failure inside a payload (always answered with BAD_REQUEST).
struct FieldError: Error {
    var message: String
}

extension ByteBuffer {
    mutating func readU8(_ what: @autoclosure () -> String) throws(FieldError) -> UInt8 {
        guard let v = readInteger(as: UInt8.self) else { throw FieldError(message: "truncated \(what())") }
        return v
    }

    mutating func readU32(_ what: @autoclosure () -> String) throws(FieldError) -> UInt32 {
        guard let v = readInteger(as: UInt32.self) else { throw FieldError(message: "truncated \(what())") }
        return v
    }

    /// `str`: u16 byte length, then UTF-8 bytes (validated).
    mutating func readStr(_ what: @autoclosure () -> String) throws(FieldError) -> String {
        guard let n = readInteger(as: UInt16.self) else { throw FieldError(message: "truncated \(what()) (length)") }
        return try readUTF8(Int(n), what())
    }

    /// `text`: u32 byte length, then UTF-8 bytes (validated).
    mutating func readText(_ what: @autoclosure () -> String) throws(FieldError) -> String {
        guard let n = readInteger(as: UInt32.self) else { throw FieldError(message: "truncated \(what()) (length)") }
        return try readUTF8(Int(n), what())
    }

    private mutating func readUTF8(_ n: Int, _ what: @autoclosure () -> String) throws(FieldError) -> String {
        guard n <= readableBytes else {
            throw FieldError(message: "\(what()): length \(n) exceeds the \(readableBytes) bytes left in the payload")
        }
        if n == 0 { return "" }
        let s: String? = readableBytesView.withContiguousStorageIfAvailable { raw in
            String(validating: UnsafeBufferPointer(rebasing: raw[0..<n]), as: UTF8.self)
        } ?? String(validating: readableBytesView.prefix(n), as: UTF8.self)
        guard let s else { throw FieldError(message: "\(what()) is not valid UTF-8") }
        moveReaderIndex(forwardBy: n)
        return s
    }

    /// `props`: u8 count, then count × (str key, str value).
    /// `what` is built only for an error message: a CHECK_BATCH decodes hundreds of bodies per
    /// frame, and building the label eagerly cost more than the decision itself.
    mutating func readProps(_ what: @autoclosure () -> String) throws(FieldError) -> [(key: String, value: String)] {
        let n = Int(try readU8("\(what()) count"))
        if n == 0 { return [] }
        guard n * 4 <= readableBytes else {
            throw FieldError(message: "\(what()): count \(n) is larger than the payload")
        }
        var out: [(key: String, value: String)] = []
        out.reserveCapacity(n)
        for i in 0..<n {
            let k = try readStr("\(what())[\(i)].key")
            let v = try readStr("\(what())[\(i)].value")
            out.append((k, v))
        }
        return out
    }

    /// `list`: u32 count, then count × str.
    mutating func readList(_ what: String) throws(FieldError) -> [String] {
        let n = Int(try readU32("\(what) count"))
        guard n <= readableBytes / 2 else {
            throw FieldError(message: "\(what): count \(n) is larger than the payload")
        }
        var out: [String] = []
        out.reserveCapacity(n)
        for i in 0..<n { out.append(try readStr("\(what)[\(i)]")) }
        return out
    }

    mutating func readDecision(_ what: String) throws(FieldError) -> Decision {
        let d = try readU8("\(what) decision")
        let r = try readU8("\(what) reason")
        guard d <= 1 else { throw FieldError(message: "\(what): decision byte \(d) is neither 0 nor 1") }
        guard let reason = Reason(rawValue: r) else { throw FieldError(message: "\(what): unknown reason code \(r)") }
        guard (d == 1) == (reason == .allowed) else {
            throw FieldError(message: "\(what): decision \(d) contradicts reason \(reason.name)")
        }
        return Decision(allowed: d == 1, reason: reason)
    }

    /// `what` (the item's path, for error messages) is built only when a field fails.
    mutating func readCheckBody(_ what: @autoclosure () -> String) throws(FieldError) -> CheckRequest {
        let subject = try readStr("\(what())subject")
        let action = try readStr("\(what())action")
        let type = try readStr("\(what())resource_type")
        let id = try readStr("\(what())resource_id")
        let props = try readProps("\(what())resource_properties")
        return CheckRequest(subject: subject, action: action, resource: ResourceRef(type: type, id: id, properties: props))
    }
}

// MARK: - Field writers

extension ByteBuffer {
    /// Writes a `str`; text longer than 65,535 bytes is cut at a character boundary (only
    /// messages for people can be that long: ids are bounded far below it).
    mutating func writeStr(_ s: String) {
        var s = s
        if s.utf8.count > Int(UInt16.max) {
            var cut = s.utf8.index(s.utf8.startIndex, offsetBy: Int(UInt16.max))
            while cut > s.startIndex && !s.indices.contains(cut) { cut = s.utf8.index(before: cut) }
            s = String(s[..<cut])
        }
        writeInteger(UInt16(s.utf8.count))
        writeString(s)
    }

    mutating func writeText(_ s: String) {
        writeInteger(UInt32(s.utf8.count))
        writeString(s)
    }

    mutating func writeProps(_ r: ResourceRef) {
        var n: UInt8 = 0
        if r.org != nil { n += 1 }
        if r.owner != nil { n += 1 }
        writeInteger(n)
        if let org = r.org { writeStr("org"); writeStr(org) }
        if let owner = r.owner { writeStr("owner"); writeStr(owner) }
    }

    mutating func writeList(_ items: [String]) {
        writeInteger(UInt32(items.count))
        for i in items { writeStr(i) }
    }

    mutating func writeDecision(_ d: Decision) {
        writeInteger(UInt8(d.allowed ? 1 : 0))
        writeInteger(d.reason.rawValue)
    }

    mutating func writeCheckBody(_ c: CheckRequest) {
        writeStr(c.subject)
        writeStr(c.action)
        writeStr(c.resource.type)
        writeStr(c.resource.id)
        writeProps(c.resource)
    }

    /// Writes a u32 length placeholder and returns its index, for ``finishFrame(at:)``.
    mutating func beginFrame() -> Int {
        let at = writerIndex
        writeInteger(UInt32(0))
        return at
    }

    /// Begins a response frame: the length placeholder, then the header (version, opcode,
    /// status, request id, revision). Returns the placeholder's index for ``finishFrame(at:)``.
    mutating func beginResponseFrame(opcodeByte: UInt8, status: Status, requestID: UInt32, revision: UInt64) -> Int {
        let start = beginFrame()
        writeMultipleIntegers(piamWireVersion, opcodeByte, status.rawValue, requestID, revision)
        return start
    }

    /// Fills in the length placeholder written by ``beginFrame()``.
    mutating func finishFrame(at start: Int) {
        setInteger(UInt32(writerIndex - start - 4), at: start)
    }
}

// MARK: - Requests

extension Request {
    /// Checks that every `str` field fits its u16 length (the client refuses to send what the
    /// protocol cannot carry rather than cutting it).
    public func validateForWire() throws(PIAMError) {
        func ok(_ s: String, _ what: String) throws(PIAMError) {
            if s.utf8.count > Int(UInt16.max) {
                throw PIAMError(.invalidInput, "\(what) is \(s.utf8.count) bytes; the protocol carries at most 65535")
            }
        }
        func ok(_ c: CheckRequest) throws(PIAMError) {
            try ok(c.subject, "subject"); try ok(c.action, "action")
            try ok(c.resource.type, "resource type"); try ok(c.resource.id, "resource id")
            try ok(c.resource.org ?? "", "org property"); try ok(c.resource.owner ?? "", "owner property")
        }
        switch body {
        case .check(let c), .explain(let c): try ok(c)
        case .checkBatch(_, let cs): for c in cs { try ok(c) }
        case .listResources(let s, let a, let t, let c, _):
            try ok(s, "subject"); try ok(a, "action"); try ok(t, "resource type"); try ok(c, "cursor")
        case .listSubjects(let a, let r, let c, _):
            try ok(a, "action"); try ok(CheckRequest(subject: "", action: "", resource: r)); try ok(c, "cursor")
        case .listActions(let s, let r):
            try ok(s, "subject"); try ok(CheckRequest(subject: "", action: "", resource: r))
        case .canAssign(let a, let t, let r, let s):
            try ok(a, "actor"); try ok(t, "target user"); try ok(r, "role"); try ok(s, "scope")
        case .status, .ping: break
        }
    }

    /// Appends this request as one frame (u32 length + payload) to `buffer`.
    public func encodeFrame(into buffer: inout ByteBuffer) {
        let start = buffer.beginFrame()
        buffer.writeInteger(piamWireVersion)
        buffer.writeInteger(opcode.rawValue)
        buffer.writeInteger(flags)
        buffer.writeInteger(requestID)
        buffer.writeInteger(minRevision)
        switch body {
        case .check(let c), .explain(let c):
            buffer.writeCheckBody(c)
        case .checkBatch(let semantic, let cs):
            buffer.writeInteger(semantic.rawValue)
            buffer.writeInteger(UInt32(cs.count))
            for c in cs { buffer.writeCheckBody(c) }
        case .listResources(let subject, let action, let type, let cursor, let limit):
            buffer.writeStr(subject); buffer.writeStr(action); buffer.writeStr(type)
            buffer.writeStr(cursor); buffer.writeInteger(limit)
        case .listSubjects(let action, let r, let cursor, let limit):
            buffer.writeStr(action); buffer.writeStr(r.type); buffer.writeStr(r.id); buffer.writeProps(r)
            buffer.writeStr(cursor); buffer.writeInteger(limit)
        case .listActions(let subject, let r):
            buffer.writeStr(subject); buffer.writeStr(r.type); buffer.writeStr(r.id); buffer.writeProps(r)
        case .canAssign(let actor, let target, let role, let scope):
            buffer.writeStr(actor); buffer.writeStr(target); buffer.writeStr(role); buffer.writeStr(scope)
        case .status, .ping:
            break
        }
        buffer.finishFrame(at: start)
    }

    /// Decodes one request payload (the bytes after the frame's length), or says what to answer.
    ///
    /// Order of the checks: an empty payload or a version other than 1; then a header shorter
    /// than 16 bytes; then an unknown opcode; then the body, which must be consumed exactly.
    public static func decode(payload: ByteBuffer) -> Result<Request, WireDecodeError> {
        var p = payload
        let opcodeByte = p.getInteger(at: p.readerIndex + 1, as: UInt8.self) ?? 0
        let requestID = p.getInteger(at: p.readerIndex + 4, as: UInt32.self) ?? 0
        func fail(_ status: Status, _ message: String) -> Result<Request, WireDecodeError> {
            .failure(WireDecodeError(status: status, opcodeByte: opcodeByte, requestID: requestID, message: message))
        }
        guard let version = p.readInteger(as: UInt8.self) else { return fail(.badRequest, "empty payload") }
        guard version == piamWireVersion else {
            return fail(.unsupportedVersion, "protocol version \(version) is not supported; this server speaks version \(piamWireVersion)")
        }
        guard p.readableBytes >= requestHeaderBytes - 1 else {
            return fail(.badRequest, "truncated header: \(p.readableBytes + 1) of \(requestHeaderBytes) bytes")
        }
        p.moveReaderIndex(forwardBy: 1)
        let flags = p.readInteger(as: UInt16.self)!
        p.moveReaderIndex(forwardBy: 4)
        let minRevision = p.readInteger(as: UInt64.self)!
        guard let opcode = Opcode(rawValue: opcodeByte) else {
            return fail(.unknownOpcode, "unknown opcode 0x\(String(opcodeByte, radix: 16))")
        }
        do throws(FieldError) {
            let body = try decodeBody(opcode, &p)
            guard p.readableBytes == 0 else {
                return fail(.badRequest, "\(p.readableBytes) trailing bytes after the \(opcode) body")
            }
            return .success(Request(requestID: requestID, minRevision: minRevision, flags: flags, body: body))
        } catch {
            return fail(.badRequest, "\(opcode): \(error.message)")
        }
    }

    private static func decodeBody(_ opcode: Opcode, _ p: inout ByteBuffer) throws(FieldError) -> Body {
        switch opcode {
        case .check:
            return .check(try p.readCheckBody(""))
        case .explain:
            return .explain(try p.readCheckBody(""))
        case .checkBatch:
            let s = try p.readU8("semantic")
            guard let semantic = BatchSemantic(rawValue: s) else {
                throw FieldError(message: "unknown batch semantic \(s) (0 execute_all, 1 deny_on_first_deny, 2 permit_on_first_permit)")
            }
            let n = Int(try p.readU32("count"))
            // A CHECK body is at least 9 bytes: four empty strs and an empty props.
            guard n <= p.readableBytes / 9 else { throw FieldError(message: "count \(n) is larger than the payload") }
            var items: [CheckRequest] = []
            items.reserveCapacity(n)
            for i in 0..<n { items.append(try p.readCheckBody("items[\(i)].")) }
            return .checkBatch(semantic, items)
        case .listResources:
            let subject = try p.readStr("subject")
            let action = try p.readStr("action")
            let type = try p.readStr("resource_type")
            let cursor = try p.readStr("cursor")
            let limit = try p.readU32("limit")
            return .listResources(subject: subject, action: action, type: type, cursor: cursor, limit: limit)
        case .listSubjects:
            let action = try p.readStr("action")
            let type = try p.readStr("resource_type")
            let id = try p.readStr("resource_id")
            let props = try p.readProps("resource_properties")
            let cursor = try p.readStr("cursor")
            let limit = try p.readU32("limit")
            return .listSubjects(action: action, resource: ResourceRef(type: type, id: id, properties: props), cursor: cursor, limit: limit)
        case .listActions:
            let subject = try p.readStr("subject")
            let type = try p.readStr("resource_type")
            let id = try p.readStr("resource_id")
            let props = try p.readProps("resource_properties")
            return .listActions(subject: subject, resource: ResourceRef(type: type, id: id, properties: props))
        case .canAssign:
            let actor = try p.readStr("actor")
            let target = try p.readStr("target_user")
            let role = try p.readStr("role")
            let scope = try p.readStr("scope")
            return .canAssign(actor: actor, target: target, role: role, scope: scope)
        case .status:
            return .status
        case .ping:
            return .ping
        }
    }
}

// MARK: - Responses

extension Response {
    /// Appends this response as one frame (u32 length + payload) to `buffer`.
    public func encodeFrame(into buffer: inout ByteBuffer) {
        let start = buffer.beginResponseFrame(opcodeByte: opcodeByte, status: status, requestID: requestID, revision: revision)
        switch body {
        case .decision(let d):
            buffer.writeDecision(d)
        case .decisions(let ds):
            buffer.writeInteger(UInt32(ds.count))
            for d in ds { buffer.writeDecision(d) }
        case .explanation(let d, let trace):
            buffer.writeDecision(d)
            buffer.writeText(trace)
        case .page(let items, let next):
            buffer.writeList(items)
            buffer.writeStr(next)
        case .actions(let items):
            buffer.writeList(items)
        case .status(let json):
            buffer.writeText(json)
        case .empty:
            break
        case .message(let m):
            buffer.writeStr(m)
        }
        buffer.finishFrame(at: start)
    }

    /// Decodes one response payload (client side). The body's shape follows the opcode; an
    /// error status carries a message.
    public static func decode(payload: ByteBuffer) throws(PIAMError) -> Response {
        var p = payload
        guard p.readableBytes >= responseHeaderBytes else {
            throw PIAMError(.protocolViolation, "truncated response header (\(p.readableBytes) bytes)")
        }
        let version = p.readInteger(as: UInt8.self)!
        guard version == piamWireVersion else {
            throw PIAMError(.protocolViolation, "response in protocol version \(version); expected \(piamWireVersion)")
        }
        let opcodeByte = p.readInteger(as: UInt8.self)!
        let rawStatus = p.readInteger(as: UInt16.self)!
        let requestID = p.readInteger(as: UInt32.self)!
        let revision = p.readInteger(as: UInt64.self)!
        guard let status = Status(rawValue: rawStatus) else {
            throw PIAMError(.protocolViolation, "unknown response status \(rawStatus)")
        }
        do throws(FieldError) {
            let body: Body
            if status != .ok {
                body = .message(p.readableBytes > 0 ? try p.readStr("message") : "")
            } else {
                guard let opcode = Opcode(rawValue: opcodeByte) else {
                    throw FieldError(message: "OK response for unknown opcode 0x\(String(opcodeByte, radix: 16))")
                }
                switch opcode {
                case .check, .canAssign:
                    body = .decision(try p.readDecision("response"))
                case .checkBatch:
                    let n = Int(try p.readU32("count"))
                    guard n <= p.readableBytes / 2 else { throw FieldError(message: "count \(n) is larger than the payload") }
                    var ds: [Decision] = []
                    ds.reserveCapacity(n)
                    for i in 0..<n { ds.append(try p.readDecision("items[\(i)]")) }
                    body = .decisions(ds)
                case .explain:
                    let d = try p.readDecision("response")
                    body = .explanation(d, trace: try p.readText("trace"))
                case .listResources, .listSubjects:
                    let items = try p.readList("ids")
                    body = .page(items: items, nextCursor: try p.readStr("next_cursor"))
                case .listActions:
                    body = .actions(try p.readList("actions"))
                case .status:
                    body = .status(try p.readText("status"))
                case .ping:
                    body = .empty
                }
            }
            guard p.readableBytes == 0 else { throw FieldError(message: "\(p.readableBytes) trailing bytes") }
            return Response(opcodeByte: opcodeByte, status: status, requestID: requestID, revision: revision, body: body)
        } catch {
            throw PIAMError(.protocolViolation, "malformed response: \(error.message)")
        }
    }
}
