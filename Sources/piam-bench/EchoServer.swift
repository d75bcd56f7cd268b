import NIOCore
import NIOPosix
import PIAMWire

/// The transport's limit: a server on the same kind of socket (a Unix stream socket served by
/// SwiftNIO, one event loop per core), with the same framing and the same read/flush pattern as
/// piamd's connection handler, that answers every frame with the frame itself — no decoding of
/// the body, no graph, no engine.
///
/// The request header (version, opcode, flags, request id, min revision) has the layout of a
/// response header (version, opcode, status, request id, revision), so the echoed frame reads
/// as an OK response to the same request id.
enum EchoServer {
    /// Binds `path` and serves until the process ends.
    static func run(path: String, threads: Int, maxFrameBytes: Int) async throws -> Never {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: threads > 0 ? threads : System.coreCount)
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 512)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(FrameDecoder(maxFrameBytes: maxFrameBytes)))
                    try channel.pipeline.syncOperations.addHandler(EchoHandler())
                }
            }
            .bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true).get()
        print("echo server listening on \(path)")
        try await channel.closeFuture.get()
        fatalError("the echo server's socket closed")
    }
}

/// Answers each frame with itself; one flush per read burst (as piamd does).
final class EchoHandler: ChannelInboundHandler {
    typealias InboundIn = InboundFrame
    typealias OutboundOut = ByteBuffer
    private var out: ByteBuffer?

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .payload(var payload) = unwrapInboundIn(data) else {
            context.close(promise: nil)
            return
        }
        if out == nil { out = context.channel.allocator.buffer(capacity: 256) }
        out!.writeInteger(UInt32(payload.readableBytes))
        out!.writeBuffer(&payload)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if let buffer = out, buffer.readableBytes > 0 {
            out = nil
            context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

@available(*, unavailable)
extension EchoHandler: Sendable {}
