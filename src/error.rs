//! The one error model: every error a route can answer with implements [`Fault`] (a status, a
//! JSON `error` code, the client's message, and whose fault it is), and [`respond`] is the one
//! funnel that turns any of them into the response, the metric and the operator's log line.
//!
//! The statuses themselves are chosen in one file, [`status`]: one `impl Fault`
//! per error type, so "which status does this answer?" is answered in one place.
//!
//! Two audiences, two texts: the client gets [`Fault::message`] (what it can act on; never an
//! internal address, path or callback URL); the operator's log gets the `Display` text and
//! every `source()` below it (the cause, with the `io::Error` kept as it came).

pub mod blame;
pub mod status;

pub use blame::Blame;

use std::fmt::{self, Write as _};

use crate::http::Response;
use crate::server::AccessLog;

/// An error that answers a request.
pub trait Fault: fmt::Display + fmt::Debug {
    /// The final status.
    fn status(&self) -> u16;
    /// The contract's JSON `error` code.
    fn code(&self) -> &'static str;
    /// Whose fault it is.
    fn blame(&self) -> Blame;
    /// What the client is told. The default is the `Display` text, which suits client faults
    /// (it describes the client's own request); other faults override it so that internal
    /// details stay in the operator's log.
    fn message(&self) -> String {
        self.to_string()
    }
    /// Extra response fields (`Retry-After`, `Allow`, `WWW-Authenticate`).
    fn headers(&self) -> Vec<(&'static str, String)> {
        Vec::new()
    }
    /// The underlying cause, for the operator's log.
    fn cause(&self) -> Option<&(dyn std::error::Error + 'static)> {
        None
    }
}

/// The error response for `e`: the contract's JSON body, its headers; counted by blame, and
/// logged for the operator when the node or the app is at fault (client faults are in the
/// access log only). Every error response of every route comes from here.
pub fn respond(log: &mut AccessLog, e: &dyn Fault) -> Response {
    let blame = e.blame();
    debug_assert!(
        blame != Blame::Internal || e.status() >= 500,
        "an internal fault must never answer {}: {e:?}",
        e.status()
    );
    crate::metrics::error_blamed(blame);
    log.blame = Some(blame);
    log.error = Some(e.code());
    if blame != Blame::Client {
        let cause = chain(e);
        // An app's failure is the app's to fix (WARN); the node's own and its storage's are
        // the operator's (ERROR). The level of a tracing event is fixed per call site.
        macro_rules! failed {
            ($level:ident) => {
                tracing::$level!(
                    status = e.status(),
                    error = e.code(),
                    blame = blame.as_str(),
                    appid = log.appid.as_deref(),
                    upload_id = log.upload_id.as_deref(),
                    %cause,
                    "request failed"
                )
            };
        }
        match blame {
            Blame::App => failed!(warn),
            _ => failed!(error),
        }
    }
    render(e)
}

/// The response for `e`, without counting or logging it (connections that never had a
/// request use this through [`respond`] too; this is the rendering half alone).
pub fn render(e: &dyn Fault) -> Response {
    let mut resp = Response::json(e.status(), error_body(e.code(), &e.message()));
    for (name, value) in e.headers() {
        resp = resp.header(name, value);
    }
    resp
}

/// The operator's text: the error and each cause below it.
pub fn chain(e: &dyn Fault) -> String {
    let mut out = e.to_string();
    let mut next = e.cause();
    while let Some(c) = next {
        let _ = write!(out, ": {c}");
        next = c.source();
    }
    out
}

/// The contract's error body: `{"success":"false","error":…,"message":…}`.
pub fn error_body(code: &str, message: &str) -> String {
    let mut body = String::with_capacity(64 + code.len() + message.len());
    body.push_str("{\"success\":\"false\",\"error\":");
    push_json_string(&mut body, code);
    body.push_str(",\"message\":");
    push_json_string(&mut body, message);
    body.push('}');
    body
}

/// Appends `s` as a JSON string literal.
pub fn push_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Errors of the routes themselves and of the connection, before any handler runs.
#[derive(Debug, Clone)]
pub enum RouteError {
    /// No route for the path (404).
    NotFound,
    /// No file at a file address (404).
    NoSuchFile,
    /// The route exists but not for this method (405, with `Allow`).
    MethodNotAllowed {
        allow: &'static str,
        hint: &'static str,
    },
    /// An `Expect` other than `100-continue` (417).
    ExpectationFailed,
    /// The request head did not arrive within `header_timeout_ms` (408).
    HeaderTimeout,
    /// Over `max_connections` (503, `Retry-After: 1`).
    TooManyConnections,
    /// A browser origin the app did not list in `cors_origins` (403 `origin_not_allowed`).
    OriginNotAllowed,
}

impl fmt::Display for RouteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RouteError::NotFound => f.write_str("no such route"),
            RouteError::NoSuchFile => f.write_str("no such file"),
            RouteError::MethodNotAllowed { hint, .. } => f.write_str(hint),
            RouteError::ExpectationFailed => f.write_str("only Expect: 100-continue is supported"),
            RouteError::HeaderTimeout => f.write_str("the request head did not arrive in time"),
            RouteError::TooManyConnections => f.write_str("the node is at its connection limit"),
            RouteError::OriginNotAllowed => f.write_str(
                "this origin may not upload to or download from this app (its cors_origins)",
            ),
        }
    }
}

impl std::error::Error for RouteError {}

#[cfg(test)]
mod tests;
