//! The reference uploading client (patent claims 12-14): `upgate upload` and `upgate register`
//! as a library, over `http://` or `https://`.
//!
//! ```no_run
//! use upgate_tools::client::{self, UploadOptions};
//!
//! let opts = UploadOptions::new("http://127.0.0.1:8080/app1/photos/a.jpg");
//! match client::upload(std::path::Path::new("a.jpg"), &opts, &mut client::Quiet) {
//!     Ok(done) => println!("stored at {}", done.url().unwrap_or("?")),
//!     Err(e) => eprintln!("upload failed ({}): {e}", e.exit_code()),
//! }
//! ```
//!
//! The client follows the patent's order: the request head goes out with `Expect:
//! 100-continue`, and the body only after `100 Continue`. A final status in its place ends the
//! upload with the node's JSON error and no body byte sent; **no answer at all** within
//! [`UploadOptions::timeout_100`] ends it too ([`ClientError::NoContinue`]), unlike curl, which
//! sends the body after one second anyway. Over TCP the body goes file → socket with
//! `sendfile(2)`; over TLS through one 64 KiB buffer; either way memory stays flat for any file
//! size.
//!
//! | file | holds |
//! |---|---|
//! | `upload.rs` | [`upload`], [`UploadOptions`], [`Completion`] |
//! | `target.rs` | `Target`: scheme, address, `Host` and appid from the URL |
//! | `resumable.rs` | [`upload_resumable`], [`ResumableOptions`]: tus appends, retries with backoff, resumption from `HEAD` |
//! | `tus.rs` | the tus requests (creation, `HEAD`, `PATCH`), one connection each |
//! | `sendfile.rs` | the `sendfile(2)` loop and the read + write copy (its fallback, and TLS's way) |
//! | `transport.rs` | `Conn`: plain TCP or TLS by the URL's scheme, and how a body leaves on each |
//! | `tls.rs` | `TlsStream`: a rustls client session over a blocking socket |
//! | `trust.rs` | [`Trust`]: the CAs an `https://` node must chain to (`--cacert` or the system's) |
//! | `tls_error.rs` | [`TlsFailure`]: a failed handshake told as what to do (`--cacert`, the name, `http://`); [`TrustSource`] |
//! | `agent.rs` | [`agent()`]: the ureq agent of `register`, `outbox` and `files`, TLS through `tls.rs`; their errors |
//! | `wire.rs` | response heads and bodies off a blocking connection, with deadlines |
//! | `progress.rs` | [`Progress`], [`Bar`] (indicatif), [`Quiet`], [`RetryLines`] |
//! | `register.rs` | [`register()`], [`Registration`] |
//! | `outbox.rs` | [`Manage`]: list, retry and drop an app's undelivered notifications |
//! | `error.rs` | [`ClientError`], [`Refusal`], the [`exit`] codes |

mod agent;
mod error;
mod outbox;
mod progress;
mod register;
mod resumable;
mod sendfile;
mod target;
pub(crate) mod tls;
mod tls_error;
pub(crate) mod transport;
pub(crate) mod trust;
mod tus;
mod upload;
mod wire;

pub use agent::{agent, node_url};
pub use error::{exit, ClientError, Refusal};
pub use outbox::{Listing, Manage, Notification};
pub use progress::{Bar, Progress, Quiet, RetryLines};
pub use register::{register, register_with_ca, Registered, Registration};
pub use resumable::{upload_resumable, ResumableOptions};
pub use tls_error::{TlsFailure, TrustSource};
pub use trust::Trust;
pub use upload::{upload, Completion, UploadOptions};
