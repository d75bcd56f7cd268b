import NIOConcurrencyHelpers
import NIOCore

/// One listener's open connections: counted from accept to close (against
/// `limits.max_connections`, and for STATUS and `/metrics`), and, once admitted, kept for the
/// graceful drain at shutdown. The socket and HTTP servers share it.
final class OpenConnections: Sendable {
    private let channels = NIOLockedValueBox<[ObjectIdentifier: any Channel]>([:])
    /// Adds its argument to the listener's connection count and returns the new count.
    private let add: @Sendable (Int) -> Int

    init(count add: @escaping @Sendable (Int) -> Int) {
        self.add = add
    }

    /// Counts `channel` as open until it closes; returns how many are open with it.
    func opened(_ channel: any Channel) -> Int {
        let id = ObjectIdentifier(channel)
        channel.closeFuture.whenComplete { [add, channels] _ in
            _ = add(-1)
            channels.withLockedValue { _ = $0.removeValue(forKey: id) }
        }
        return add(1)
    }

    /// Keeps an admitted connection for the drain (until it closes).
    func admit(_ channel: any Channel) {
        channels.withLockedValue { $0[ObjectIdentifier(channel)] = channel }
    }

    /// Tells every admitted connection to finish, then waits (bounded) for them to close.
    func drain(consistencyTimeoutMS: Int) async {
        await SocketServer.drain(channels.withLockedValue { Array($0.values) }, consistencyTimeoutMS: consistencyTimeoutMS)
    }
}
