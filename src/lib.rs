//! upgate: an HTTP/1.1 upload edge node on io_uring, implementing the upload method of patent
//! CN103547339A.
//!
//! | layer | module | does |
//! |---|---|---|
//! | protocol (sans-IO) | [`http`] | bytes in, events and bytes-to-write out |
//! | driver | [`server`] | tokio-uring runtimes, sockets, timers, one task per connection |
//! | handlers | [`server::route`] | what a request means: health, uploads, downloads |
//! | configuration | [`config`] | the contract's keys, defaults; file < `UPGATE_*` environment < flags |
//! | operations | [`metrics`], [`health`], [`logging`], [`server::access`] | `/metrics`, `/healthz`, `/readyz`, log setup, the access log |
//!
//! The other two parties (the reference client and application server) and the load generator
//! live in the `upgate-tools` crate; the callback wire types and signing in `upgate-contract`.

pub mod app;
pub mod callback;
#[cfg(any(test, feature = "check"))]
pub mod checks;
pub mod cli;
pub mod clock;
pub mod config;
pub mod download;
pub mod error;
pub mod health;
/// The protocol crate, under the name the node has always used for it.
pub use upgate_http as http;
pub mod logging;
pub mod metrics;
pub mod node;
pub mod notify;
pub mod register;
pub mod registry;
pub mod routes;
pub mod server;
pub mod storage;
pub mod upload;
