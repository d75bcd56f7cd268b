// The binary protocol's input path, as piamd runs it: the frame decoder splits a byte stream
// into frames (the same frames however the stream is chunked, none longer than the limit, an
// oversized header ends the stream), and each payload is parsed twice — by the CHECK /
// CHECK_BATCH fast path and by the general path (`Request.decode`, the engine,
// `Response.encodeFrame`). Whatever the fast path answers must be the general path's answer
// byte for byte, and it must answer every well-formed ASCII check the general path answers OK.
// A request that decodes re-encodes to one that decodes to itself.
import FuzzCommon
import NIOCore
import NIOEmbedded
import PIAMEngine
import PIAMWire

enum Wire {
    nonisolated(unsafe) static var scratch: [CheckBytes] = []

    /// The frames a byte stream holds, by the protocol's definition (the reference).
    static func referenceFrames(_ data: [UInt8], max: Int) -> [InboundFrame] {
        var out: [InboundFrame] = []
        var i = 0
        while data.count - i >= 4 {
            let n = Int(data[i]) << 24 | Int(data[i + 1]) << 16 | Int(data[i + 2]) << 8 | Int(data[i + 3])
            if n > max { out.append(.tooLarge(declared: UInt32(n))); break }
            guard data.count - i - 4 >= n else { break }
            out.append(.payload(ByteBuffer(bytes: data[(i + 4)..<(i + 4 + n)])))
            i += 4 + n
        }
        return out
    }

    /// What `FrameDecoder` passes on when the stream arrives in chunks of `chunk` bytes.
    static func decoded(_ data: [UInt8], chunk: Int, max: Int) -> [InboundFrame] {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(FrameDecoder(maxFrameBytes: max)))
        var i = 0
        while i < data.count {
            let end = Swift.min(data.count, i + chunk)
            try! channel.writeInbound(ByteBuffer(bytes: data[i..<end]))
            i = end
        }
        var out: [InboundFrame] = []
        while let f = try! channel.readInbound(as: InboundFrame.self) { out.append(f) }
        _ = try? channel.finish()
        return out
    }

    /// The general path's OK answer, or nil where it answers otherwise (an error, a wait, another opcode).
    static func general(_ payload: ByteBuffer) -> (request: Request, answer: [UInt8])? {
        guard case .success(let r) = Request.decode(payload: payload), r.minRevision <= FuzzCommon.revision else { return nil }
        let body: Response.Body
        switch r.body {
        case .check(let c): body = .decision(FuzzCommon.graph.check(c, now: FuzzCommon.now))
        case .checkBatch(let s, let items): body = .decisions(FuzzCommon.graph.checkBatch(items, semantic: s, now: FuzzCommon.now))
        default: return nil
        }
        var out = ByteBuffer()
        Response(opcode: r.opcode, requestID: r.requestID, revision: FuzzCommon.revision, body: body).encodeFrame(into: &out)
        return (r, Array(out.readableBytesView))
    }

    static func isASCII(_ c: CheckRequest) -> Bool {
        [c.subject, c.action, c.resource.type, c.resource.id, c.resource.org ?? "", c.resource.owner ?? ""]
            .allSatisfy { $0.utf8.allSatisfy { $0 < 0x80 } }
    }

    static func payload(_ payload: ByteBuffer) {
        // Decode → encode → decode is stable.
        let first = Request.decode(payload: payload)
        if case .success(let r) = first {
            var frame = ByteBuffer()
            r.encodeFrame(into: &frame)
            frame.moveReaderIndex(forwardBy: 4)
            guard case .success(let again) = Request.decode(payload: frame) else {
                FuzzCommon.require(false, "a decoded request re-encodes to one that does not decode: \(r)")
                return
            }
            FuzzCommon.require(again == r, "decode(encode(\(r))) = \(again)")
        } else if case .failure(let e) = first {
            FuzzCommon.require(!e.message.isEmpty, "an error without a message")
        }
        // The fast path agrees with the general one.
        var out = ByteBuffer()
        out.writeString("prefix")
        let fast = FastCheck.answer(payload: payload, revision: FuzzCommon.revision, into: &out, scratch: &scratch) {
            FuzzCommon.graph.check(utf8: $0, now: FuzzCommon.now)
        }
        FuzzCommon.require(out.readString(length: 6) == "prefix", "the fast path overwrote the output")
        let general = general(payload)
        if fast != nil {
            FuzzCommon.require(general != nil && Array(out.readableBytesView) == general!.answer,
                               "the fast path answered what the general path answers differently")
        } else {
            FuzzCommon.require(out.readableBytes == 0, "the fast path declined, yet wrote")
            if let g = general {
                let ascii: Bool
                switch g.request.body {
                case .check(let c): ascii = isASCII(c)
                case .checkBatch(_, let cs): ascii = cs.allSatisfy(isASCII)
                default: ascii = false
                }
                FuzzCommon.require(!ascii, "the fast path declined a well-formed ASCII request: \(g.request)")
            }
        }
        // Every general answer decodes as a response.
        if let g = general {
            var b = ByteBuffer(bytes: g.answer)
            b.moveReaderIndex(forwardBy: 4)
            FuzzCommon.require((try? Response.decode(payload: b)) != nil, "the general answer does not decode")
        }
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzWire(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    var input = FuzzInput(start, count)
    let p = input.byte()
    // Reads of `chunk` bytes, at most 16 of them (a read per byte of a 4 KiB input would make
    // an execution cost milliseconds, under AddressSanitizer, instead of microseconds).
    let chunk = max(Int(p & 0x3F) + 1, (input.bytes.count + 15) / 16)
    let max = p & 0x40 != 0 ? 64 : 1 << 20
    let data = input.rest
    let expected = Wire.referenceFrames(data, max: max)
    let whole = Wire.decoded(data, chunk: Swift.max(1, data.count), max: max)
    FuzzCommon.require(whole == expected, "FrameDecoder (one read) differs from the protocol's framing")
    let chunked = Wire.decoded(data, chunk: chunk, max: max)
    FuzzCommon.require(chunked == expected, "FrameDecoder (reads of \(chunk) bytes) differs from the protocol's framing")
    for f in expected {
        if case .payload(let b) = f { Wire.payload(b) }
    }
    // The payload alone, as if it were one whole frame.
    Wire.payload(ByteBuffer(bytes: data))
    return 0
}
