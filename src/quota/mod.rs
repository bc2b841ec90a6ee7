//! Per-app quotas, decided on the request head before the pre-callback and before any
//! `100 Continue` (contract "Quotas"): stored bytes (`quota_bytes`: committed plus in flight),
//! concurrent uploads (`max_concurrent_uploads`) and new uploads per second (`rate_per_s`, a
//! token bucket with a burst of twice the rate).
//!
//! | file | holds |
//! |---|---|
//! | `bucket.rs` | the token bucket (pure, the clock passed in) |
//! | `ledger.rs` | [`Quotas`]: every app's usage, [`Hold`] (one upload's reservation) |
//! | `scan.rs` | the stored bytes per app, recomputed from the store at startup |
//!
//! Accounting: an admitted upload *reserves* its declared size (0 when unknown) and one
//! in-flight slot; its [`Hold`] gives both back when the upload ends in any way but a commit
//! (veto, abort, disconnect, error: the hold is dropped). A commit turns the reservation into
//! stored bytes, and checks once more, under the same lock, that a body of unknown size still
//! fits (403 `quota_exceeded`, nothing kept): concurrent uploads can never take an app past
//! `quota_bytes`. Stored bytes are recomputed from the files at every start (not persisted),
//! so a crash cannot leave the count wrong; deletions and overwrites subtract as they happen.

mod bucket;
mod ledger;
mod scan;

pub use bucket::Bucket;
pub use ledger::{Ask, Denied, Hold, Limits, Quotas, Usage};
pub use scan::stored_bytes_by_app;
