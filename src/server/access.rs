//! The access log: one structured line per response, target `upgate::access`, emitted by the
//! driver after the response is written. Handlers add what only they know (the route, the
//! appid, the upload id, how long each step of the flow took) through
//! [`Exchange::access`](super::Exchange::access).
//!
//! Never logged: header values (so no `Authorization`), query strings, callback URLs, secrets,
//! signatures, bodies.

use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::error::blame::Blame;
use crate::metrics::Route;

/// The target of access-log events (`log_level = "info,upgate::access=off"` silences them).
pub const TARGET: &str = "upgate::access";

/// What a handler reports about one request.
#[derive(Debug, Clone)]
pub struct AccessLog {
    pub route: Route,
    pub appid: Option<String>,
    pub upload_id: Option<String>,
    pub timings: Timings,
    /// Whose fault the error response was, and its code (set by `crate::error::respond`).
    pub blame: Option<Blame>,
    pub error: Option<&'static str>,
}

impl Default for AccessLog {
    fn default() -> Self {
        AccessLog {
            route: Route::None,
            appid: None,
            upload_id: None,
            timings: Timings::default(),
            blame: None,
            error: None,
        }
    }
}

/// How long each step of the upload flow took; `None` for a step not reached.
#[derive(Debug, Clone, Copy, Default)]
pub struct Timings {
    pub pre_callback: Option<Duration>,
    pub body: Option<Duration>,
    pub commit: Option<Duration>,
    pub post_callback: Option<Duration>,
}

/// A timed step of the flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    PreCallback,
    Body,
    Commit,
    PostCallback,
}

impl Timings {
    /// Awaits `step`, recording how long it took whatever it returns.
    pub async fn timed<T>(&mut self, step: Step, fut: impl Future<Output = T>) -> T {
        let started = Instant::now();
        let out = fut.await;
        let took = Some(started.elapsed());
        match step {
            Step::PreCallback => self.pre_callback = took,
            Step::Body => self.body = took,
            Step::Commit => self.commit = took,
            Step::PostCallback => self.post_callback = took,
        }
        out
    }
}

/// What the driver knows about one request.
pub(super) struct Line<'a> {
    pub peer: SocketAddr,
    /// `None` when no head was parsed (protocol error, head timeout).
    pub method: Option<&'a str>,
    pub path: Option<&'a [u8]>,
    pub status: u16,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub took: Duration,
    /// The response could not be written in full.
    pub write_failed: bool,
}

fn ms(d: Option<Duration>) -> Option<f64> {
    d.map(|d| (d.as_micros() as f64) / 1000.0)
}

/// Emits the access-log event of one request.
pub(super) fn emit(line: &Line<'_>, log: &AccessLog) {
    let path = line.path.map(String::from_utf8_lossy);
    let t = &log.timings;
    tracing::info!(
        target: TARGET,
        node = crate::logging::node_id(),
        peer = %line.peer,
        method = line.method,
        path = path.as_deref(),
        route = log.route.as_str(),
        appid = log.appid.as_deref(),
        status = line.status,
        bytes_in = line.bytes_in,
        bytes_out = line.bytes_out,
        duration_ms = ms(Some(line.took)),
        pre_callback_ms = ms(t.pre_callback),
        body_ms = ms(t.body),
        commit_ms = ms(t.commit),
        post_callback_ms = ms(t.post_callback),
        upload_id = log.upload_id.as_deref(),
        error = log.error,
        blame = log.blame.map(Blame::as_str),
        write_failed = line.write_failed.then_some(true),
        "request"
    );
}
