import PIAMStore

/// The administration service (`piam-admind`): a live graph kept current from the change
/// journal, writes that cost O(change), and the authenticated HTTP API.
public enum AdminDaemon {
    /// The service's version, as `piam-admind --version` prints it.
    public static let version = "0.1.0"
}
