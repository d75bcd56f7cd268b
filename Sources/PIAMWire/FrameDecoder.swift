import NIOCore

/// What ``FrameDecoder`` passes on: a frame's payload, or the news that the peer announced a
/// frame longer than the limit.
public enum InboundFrame: Sendable, Hashable {
    /// The bytes after a frame's u32 length.
    case payload(ByteBuffer)
    /// A frame header announced `declared` bytes, more than the limit. Nothing after it is
    /// decoded: the stream cannot be resynchronised, so the connection must be closed.
    case tooLarge(declared: UInt32)
}

/// Splits a byte stream into PIAM frames (`u32 length`, then the payload), rejecting an
/// oversized frame at its header — before any of its payload is buffered.
///
/// NIOExtras' `LengthFieldBasedFrameDecoder` has no maximum frame length, so this small decoder
/// is PIAM's own. Memory per connection stays below one frame plus one socket read.
public struct FrameDecoder: ByteToMessageDecoder, Sendable {
    public typealias InboundOut = InboundFrame

    /// The largest payload accepted.
    public let maxFrameBytes: Int
    private var rejected = false

    public init(maxFrameBytes: Int) {
        precondition(maxFrameBytes > 0 && maxFrameBytes <= Int(UInt32.max))
        self.maxFrameBytes = maxFrameBytes
    }

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        if rejected {
            // After an oversized header the rest of the stream is noise: drop it unbuffered.
            buffer.moveReaderIndex(to: buffer.writerIndex)
            return .needMoreData
        }
        guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self) else { return .needMoreData }
        if Int(length) > maxFrameBytes {
            rejected = true
            buffer.moveReaderIndex(to: buffer.writerIndex)
            context.fireChannelRead(wrapInboundOut(.tooLarge(declared: length)))
            return .needMoreData
        }
        guard buffer.readableBytes >= 4 + Int(length) else { return .needMoreData }
        buffer.moveReaderIndex(forwardBy: 4)
        let payload = buffer.readSlice(length: Int(length))!
        context.fireChannelRead(wrapInboundOut(.payload(payload)))
        return .continue
    }

    public mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        while try decode(context: context, buffer: &buffer) == .continue {}
        // A partial frame at EOF is dropped: the peer is gone and there is no one to answer.
        buffer.moveReaderIndex(to: buffer.writerIndex)
        return .needMoreData
    }
}
