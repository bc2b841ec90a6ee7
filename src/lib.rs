//! upgate: an HTTP/1.1 upload edge node on io_uring, implementing the upload method of patent
//! CN103547339A. This crate is the node; the protocol is the crate `upgate-http` (here
//! [`http`]), the contract's callback types and signatures `upgate-contract`, and the client,
//! demo application and load generator `upgate-tools` (not part of this library).
//!
//! ## Layout
//!
//! | layer | module | does |
//! |---|---|---|
//! | composition root | [`node`], [`app`] | opens the parts, reconciles the outbox, starts the server and the outbox sender |
//! | routes | [`routes`] | path and method → handler: the only place handlers meet the driver |
//! | handlers | [`upload`], [`download`], [`register`], [`health`] | what a request means |
//! | upload phases | `upload::phases`, composed by [`upload::flow`] | the patent's steps, shared by every upload protocol |
//! | errors | [`error`] | one trait ([`error::Fault`]), one funnel ([`error::respond`]), every status in `error/status.rs` |
//! | driver | [`server`] | tokio-uring runtimes, the [`server::Transport`] seam, timers, body ingest; knows only [`server::Handler`] |
//! | storage | [`storage`] | the [`storage::ObjectStore`] seam: local files, in memory |
//! | registry | [`registry`] | registered apps and the outbox journal (sled) |
//! | callbacks | [`callback`], [`notify`] | the blocking pool (crossbeam + ureq), URL policy, the outbox sender |
//! | protocol (sans-IO) | [`http`] (`upgate-http`) | bytes in, events and bytes-to-write out |
//! | configuration, operations | [`config`], [`metrics`], [`logging`], [`cli`] | keys and defaults, `/metrics`, logs, `serve` and `config` |
//!
//! Dependencies point down this table: the driver imports no handler and the protocol crate
//! no runtime (`make layering`).
//!
//! ## The patent's steps
//!
//! | step | patent | where |
//! |---|---|---|
//! | an application registers its callbacks | 301–302 | [`register::handler`], stored by [`registry`] |
//! | the client sends the head with `Expect: 100-continue` | 201 / 303 | read by [`server`], parsed by [`http`] |
//! | receive conditions on the head | 202 / 304 | `upload::phases::receive_conditions`, [`upload::condition`] |
//! | first file info → pre-upload callback | 203 / 305 | `upload::phases::pre_callback`, on [`callback::CallbackPool`] |
//! | `100 Continue` only after the app accepts | 204 / 306 | [`server::Exchange::accept_body`] |
//! | body → storage | 204–205 / 306–307 | `upload::phases::open_sink`, `receive_body` ([`storage`]) |
//! | second file info → post-upload callback | 205 / 307 | `upload::phases::commit`, `post_callback`, retried by [`notify`] |
//! | completion response | 206 / 308 | [`upload::reply::created`] |
//! | download of the stored file | — | [`download`] |

pub mod app;
pub mod callback;
#[cfg(any(test, feature = "check"))]
pub mod checks;
pub mod cli;
pub mod clock;
pub mod config;
pub mod cors;
pub mod download;
pub mod error;
pub mod health;
/// The protocol crate, under the name the node has always used for it.
pub use upgate_http as http;
pub mod logging;
pub mod manage;
pub mod metrics;
pub mod node;
pub mod notify;
pub mod origin;
pub mod quota;
pub mod register;
pub mod registry;
pub mod routes;
pub mod server;
pub mod storage;
pub mod upload;
