//! Whose fault an error is: the one label every error response carries, in the metrics and
//! the access log.

/// Whose fault an error is: the `blame` label of `upgate_errors_total` and the access log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blame {
    /// The request itself: bad bytes, bad path, too large, too slow. A 4xx.
    Client,
    /// The application: its callback vetoed, failed, timed out or is not allowed.
    App,
    /// The node's storage: a full disk, a failed write, the registry or outbox.
    Storage,
    /// The node itself: a bug or an exhausted resource. Always a 5xx, never the client's.
    Internal,
}

impl Blame {
    pub const ALL: [Blame; 4] = [Blame::Client, Blame::App, Blame::Storage, Blame::Internal];
    pub const COUNT: usize = Blame::ALL.len();

    pub fn as_str(self) -> &'static str {
        match self {
            Blame::Client => "client",
            Blame::App => "app",
            Blame::Storage => "storage",
            Blame::Internal => "internal",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}
