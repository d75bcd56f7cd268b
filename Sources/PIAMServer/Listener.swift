import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import PIAMEngine

/// Where a ``Listener`` listens.
enum ListenAddress: Sendable, Hashable {
    /// A Unix socket piamd creates at `path` with this mode, owner and group.
    case unix(path: String, mode: UInt32, owner: String?, group: String?)
    /// A loopback TCP port.
    case tcp(host: String, port: Int)
    /// A listening socket systemd passed.
    case adopted(fd: CInt)
}

/// Why a connection was refused at accept.
enum Refusal: Sendable, Hashable {
    /// `limits.max_connections` connections are open.
    case full(max: Int)
    /// The peer's uid has `limits.max_connections_per_uid` open.
    case perUID(uid: UInt32, max: Int)
    /// The peer is not on the allowlist.
    case peer
}

/// A listener's connection slots: open connections in all and by peer uid, checked at accept
/// (never on the query path). The daemon's own connections (its watchdog probe) are counted but
/// never refused, so the probe does not depend on a free slot.
final class ConnectionSlots: Sendable {
    private struct Counts {
        var total = 0
        var byUID: [UInt32: Int] = [:]
    }
    private let counts = NIOLockedValueBox(Counts())
    let maxConnections: Int
    /// 0: no limit per uid.
    let maxPerUID: Int

    init(maxConnections: Int, maxPerUID: Int) {
        self.maxConnections = maxConnections
        self.maxPerUID = maxPerUID
    }

    /// Takes a slot for a peer (`uid` nil where the transport has no credentials: TCP), or says
    /// why not.
    func acquire(uid: UInt32?, exempt: Bool) -> Refusal? {
        counts.withLockedValue { c in
            if !exempt {
                if c.total >= maxConnections { return .full(max: maxConnections) }
                if let uid, maxPerUID > 0, c.byUID[uid, default: 0] >= maxPerUID { return .perUID(uid: uid, max: maxPerUID) }
            }
            c.total += 1
            if let uid { c.byUID[uid, default: 0] += 1 }
            return nil
        }
    }

    func release(uid: UInt32?) {
        counts.withLockedValue { c in
            c.total -= 1
            if let uid {
                let n = c.byUID[uid, default: 1] - 1
                c.byUID[uid] = n > 0 ? n : nil
            }
        }
    }

    /// Open connections (tests, STATUS).
    var open: Int { counts.withLockedValue { $0.total } }
}

/// The transport both faces share — the binary socket (``SocketServer``) and the HTTP face
/// (``HTTPServer``): binding (a Unix socket born private, an adopted one, a loopback port), the
/// accept policy (connection slots in all and per peer uid, the allowlist, the daemon's own
/// probe always let in), the refusal answers and their rate-limited log lines, the first
/// handler of every pipeline (``ConnectionGuard``: deadlines and backpressure), and the drain at
/// shutdown. A face brings only its protocol handlers.
final class Listener: Sendable {
    /// What differs between the faces.
    struct Face: Sendable {
        /// `socket` or `http` (log metadata).
        var name: String
        /// Whether `socket.allowed_uids`/`allowed_gids` apply.
        var usesAllowlist: Bool
        /// Adds the face's handlers after the guard (on the channel's event loop).
        var initialize: @Sendable (any Channel, ConnectionGuard) throws -> Void
        /// The bytes a refused connection is answered with before it is closed (nil: none).
        var refusal: @Sendable (Refusal, ByteBufferAllocator) -> ByteBuffer?
        /// What a connection whose message timed out is told before it is closed.
        var timeoutAnswer: TimeoutAnswer
        /// Adds to the face's connection gauge.
        var count: @Sendable (Int) -> Void
    }

    let config: DaemonConfig
    let face: Face
    let logger: Logger
    let log: RateLimitedLog
    let slots: ConnectionSlots
    private let group: any EventLoopGroup
    /// Admitted connections, for the drain.
    private let channels = NIOLockedValueBox<[ObjectIdentifier: any Channel]>([:])

    init(config: DaemonConfig, face: Face, logger: Logger, group: any EventLoopGroup) {
        self.config = config
        self.face = face
        self.logger = logger
        self.log = RateLimitedLog(logger: logger)
        self.slots = ConnectionSlots(maxConnections: config.maxConnections, maxPerUID: config.maxConnectionsPerUID)
        self.group = group
    }

    /// Binds `address`; returns the listening channel.
    func bind(_ address: ListenAddress) async throws -> any Channel {
        let high = config.maxOutputBytes
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 512)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.writeBufferWaterMark, value: .init(low: max(1, high / 2), high: high))
            .childChannelInitializer { [self] channel in self.initialize(channel) }
        switch address {
        case .adopted(let fd):
            return try await bootstrap.withBoundSocket(fd).get()
        case .tcp(let host, let port):
            do {
                return try await bootstrap.bind(host: host, port: port).get()
            } catch {
                throw PIAMError(.io, "cannot listen on \(host):\(port): \(error)")
            }
        case .unix(let path, let mode, let owner, let group):
            return try await Self.bindUnix(bootstrap, path: path, mode: mode, owner: owner, group: group)
        }
    }

    /// Creates the socket at `path` never reachable with a wider mode than `mode`: it is bound in
    /// a fresh directory beside `path` that only the daemon can enter (0700 whatever the umask),
    /// given its mode, owner and group there, and then renamed into place — one atomic step.
    /// (`chmod` after `bind` leaves a window in which the socket has the umask's mode; `fchmod`
    /// on a socket does not reach its file on Linux.)
    static func bindUnix(_ bootstrap: ServerBootstrap, path: String, mode: UInt32, owner: String?, group: String?) async throws -> any Channel {
        try refuseIfServed(path)
        let dir = (path as NSString).deletingLastPathComponent
        if !dir.isEmpty && !FileManager.default.fileExists(atPath: dir) {
            throw PIAMError(.io, "socket directory \(dir) does not exist (systemd's RuntimeDirectory= creates it)")
        }
        var st = stat()
        if lstat(path, &st) == 0 && (st.st_mode & S_IFMT) != S_IFSOCK {
            throw PIAMError(.conflict, "\(path) exists and is not a socket")
        }
        var template = Array(((dir.isEmpty ? "." : dir) + "/.piamd-XXXXXX").utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw PIAMError(.io, "cannot create a private directory beside \(path): \(String(cString: strerror(errno)))")
        }
        let privateDir = String(cString: made)
        let staging = privateDir + "/s"
        defer { rmdir(privateDir) }
        guard staging.utf8.count < 108 else {
            throw PIAMError(.invalidInput, "socket path \(path) is too long for a Unix socket (its staging path \(staging) is)")
        }
        let channel: any Channel
        do {
            channel = try await bootstrap.bind(unixDomainSocketPath: staging).get()
        } catch {
            throw PIAMError(.io, "cannot listen on \(path): \(error)")
        }
        do {
            try applyOwnership(staging, mode: mode, owner: owner, group: group)
            guard rename(staging, path) == 0 else {
                throw PIAMError(.io, "rename \(staging) → \(path): \(String(cString: strerror(errno)))")
            }
        } catch {
            unlink(staging)
            try? await channel.close()
            throw error
        }
        return channel
    }

    /// Refuses to take over a socket another process is serving.
    static func refuseIfServed(_ path: String) throws {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return }
        defer { close(fd) }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else {
            throw PIAMError(.invalidInput, "socket path \(path) is too long for a Unix socket")
        }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            for (i, b) in bytes.enumerated() { raw[i] = b }
        }
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        if rc == 0 { throw PIAMError(.conflict, "another process is already serving \(path)") }
    }

    /// A socket file's mode, owner and group (`socket.*`, `http.socket_*`).
    static func applyOwnership(_ path: String, mode: UInt32, owner: String?, group: String?) throws {
        guard chmod(path, mode_t(mode)) == 0 else {
            throw PIAMError(.io, "chmod \(String(mode, radix: 8)) \(path): \(String(cString: strerror(errno)))")
        }
        var uid = uid_t.max, gid = gid_t.max
        if let owner {
            if let n = UInt32(owner) { uid = n } else if let pw = getpwnam(owner) { uid = pw.pointee.pw_uid } else {
                throw PIAMError(.invalidInput, "\(path): socket owner: no such user \"\(owner)\"")
            }
        }
        if let group {
            if let n = UInt32(group) { gid = n } else if let gr = getgrnam(group) { gid = gr.pointee.gr_gid } else {
                throw PIAMError(.invalidInput, "\(path): socket group: no such group \"\(group)\"")
            }
        }
        if uid != uid_t.max || gid != gid_t.max {
            guard chown(path, uid, gid) == 0 else {
                throw PIAMError(.io, "chown \(path): \(String(cString: strerror(errno)))")
            }
        }
    }

    // MARK: Accepting

    /// The peer's credentials on a Unix socket (nil on TCP, or when they cannot be read).
    private func peer(_ channel: any Channel) -> EventLoopFuture<PeerCredentials?> {
        guard channel.localAddress?.protocol == .unix, let provider = channel as? any SocketOptionProvider else {
            return channel.eventLoop.makeSucceededFuture(nil)
        }
        let future: EventLoopFuture<PeerCredentials> = provider.unsafeGetSocketOption(
            level: SocketOptionLevel(SOL_SOCKET), name: SocketOptionName(SO_PEERCRED))
        return future.map { Optional($0) }.recover { [log] error in
            log.record(.peerCredentials, metadata: ["error": "\(error)"])
            return nil
        }
    }

    /// Admits or refuses one accepted connection, and builds its pipeline.
    private func initialize(_ channel: any Channel) -> EventLoopFuture<Void> {
        peer(channel).flatMapThrowing { [self] peer in
            let sync = channel.pipeline.syncOperations
            let isSelf = peer?.pid == getpid()
            if face.usesAllowlist && !isSelf && !peerAllowed(peer) {
                log.record(.refusedPeer, metadata: [
                    "peer_pid": "\(peer?.pid ?? 0)", "peer_uid": "\(peer.map { String($0.uid) } ?? "?")",
                    "peer_gid": "\(peer.map { String($0.gid) } ?? "?")",
                ])
                try sync.addHandler(RejectHandler(nil))
                return
            }
            if let refusal = slots.acquire(uid: peer?.uid, exempt: isSelf) {
                switch refusal {
                case .full(let max):
                    log.record(.refusedFull, metadata: ["face": "\(face.name)", "max_connections": "\(max)"])
                case .perUID(let uid, let max):
                    log.record(.refusedPerUID, metadata: ["face": "\(face.name)", "peer_uid": "\(uid)", "max_connections_per_uid": "\(max)"])
                case .peer:
                    break
                }
                try sync.addHandler(RejectHandler(face.refusal(refusal, channel.allocator)))
                return
            }
            face.count(1)
            let id = ObjectIdentifier(channel)
            channels.withLockedValue { $0[id] = channel }
            channel.closeFuture.whenComplete { [slots, face, channels] _ in
                slots.release(uid: peer?.uid)
                face.count(-1)
                channels.withLockedValue { _ = $0.removeValue(forKey: id) }
            }
            let connectionGuard = ConnectionGuard(
                idleTimeout: .milliseconds(Int64(config.idleTimeoutMS)), frameTimeout: .milliseconds(Int64(config.frameTimeoutMS)),
                face: face.name, log: log, timeoutAnswer: face.timeoutAnswer)
            try sync.addHandler(connectionGuard)
            try face.initialize(channel, connectionGuard)
        }
    }

    /// No allowlist, or the peer's uid or primary gid is on it.
    private func peerAllowed(_ peer: PeerCredentials?) -> Bool {
        let uids = config.allowedUIDs, gids = config.allowedGIDs
        guard !uids.isEmpty || !gids.isEmpty else { return true }
        guard let peer else { return false }
        return uids.contains(peer.uid) || gids.contains(peer.gid)
    }

    // MARK: Serving and draining

    /// Reports the rate-limited log's counts (each kind at most once an interval; looked at every
    /// second) until `body` returns.
    func withLogFlush<T: Sendable>(_ body: () async throws -> T) async rethrows -> T {
        let interval = TimeAmount.seconds(1)
        let task = group.next().scheduleRepeatedTask(initialDelay: interval, delay: interval) { [log] _ in log.flush() }
        defer { task.cancel() }
        return try await body()
    }

    /// Tells every admitted connection to finish, then waits (bounded) for them to close.
    func drain(consistencyTimeoutMS: Int) async {
        let open = channels.withLockedValue { Array($0.values) }
        for c in open { c.pipeline.fireUserInboundEventTriggered(ServerShutdownEvent()) }
        let deadline = ContinuousClock.now + .milliseconds(consistencyTimeoutMS + 2000)
        for c in open {
            let remaining = deadline - ContinuousClock.now
            if remaining <= .zero { c.close(promise: nil); continue }
            let closed = c.closeFuture
            let timer = c.eventLoop.scheduleTask(in: .nanoseconds(Int64(remaining / .nanoseconds(1)))) { c.close(promise: nil) }
            try? await closed.get()
            timer.cancel()
        }
    }
}

/// Answers a connection the server will not serve with fixed bytes (or none), then closes it.
final class RejectHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    private let answer: ByteBuffer?

    init(_ answer: ByteBuffer?) { self.answer = answer }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { respond(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        respond(context)
    }

    private var responded = false

    private func respond(_ context: ChannelHandlerContext) {
        guard !responded else { return }
        responded = true
        if let answer {
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(answer)).whenComplete { _ in channel.close(promise: nil) }
        } else {
            context.close(promise: nil)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}
    func errorCaught(context: ChannelHandlerContext, error: any Error) { context.close(promise: nil) }
}

@available(*, unavailable)
extension RejectHandler: Sendable {}
