//! The demo application's routes, served by the shared [`AppServer`](crate::appserver::AppServer)
//! through a [`Handler`]:
//!
//! | route | does |
//! |---|---|
//! | `POST /pre` | verifies the signature, then accepts or vetoes the first file info by [`Rules`](super::Rules) |
//! | `POST /post` | verifies the signature, records the second file info (once per upload id) |
//! | `GET /` | the page: a form that uploads from the browser straight to the node, and the uploads |
//! | `GET /rows` | the uploads table's rows (the page refreshes its list with them) |
//! | `GET /token[?name=N]` | a form target with a fresh signed upload token (see [`Browser`](super::Browser)) |
//! | `GET /s3/params?filename=N` | the same, where Uppy's AwsS3 plugin (`companionEndpoint`) asks |
//! | `GET /uploads.json` | `{"appid":…,"uploads":[…]}` |
//!
//! A callback whose signature is missing, wrong or outside the timestamp window gets `401` and a
//! log line; so does every callback while the application has no secret. `GET /token` and
//! `GET /uploads.json` carry `Access-Control-Allow-Origin` for a page from one of the
//! [`Browser::origins`](super::Browser::origins), so that a page served elsewhere can use them.

use std::sync::Arc;

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde_json::json;
use upgate_contract::sign::{verify, DEFAULT_TOLERANCE_SECS};
use upgate_contract::{FirstInfo, SecondInfo};
use upgate_http::Method;

use super::browser::{FormTarget, TargetError};
use super::page;
use super::state::State;
use crate::appserver::{Handler, Reply, Request};

/// Largest callback body read.
pub const MAX_CALLBACK_BODY: usize = 64 * 1024;

/// The demo application's routes; the state is shared by every connection thread.
pub struct DemoHandler {
    state: Arc<State>,
}

impl DemoHandler {
    pub fn new(state: Arc<State>) -> Self {
        DemoHandler { state }
    }
}

impl Handler for DemoHandler {
    fn handle(&self, req: &Request) -> Reply {
        match (req.path(), req.method()) {
            ("/pre", Method::Post) => self.pre(req),
            ("/post", Method::Post) => self.post(req),
            ("/", Method::Get | Method::Head) => {
                let verifying = !self.state.secrets().is_empty();
                let form = self.target(None);
                let body = page::html(&self.state.appid, &self.state.uploads(), verifying, &form);
                with_body("text/html; charset=utf-8", body)
            }
            ("/rows", Method::Get | Method::Head) => with_body(
                "text/html; charset=utf-8",
                page::rows(&self.state.uploads()),
            ),
            ("/token", Method::Get | Method::Head) => self.cors(req, self.token(req, "name")),
            // Uppy's AwsS3 plugin with `companionEndpoint` = this app asks here for the
            // `{url, fields}` of an S3-style POST, which is what a form target is.
            ("/s3/params", Method::Get | Method::Head) => {
                self.cors(req, self.token(req, "filename"))
            }
            ("/uploads.json", Method::Get | Method::Head) => {
                let body = page::uploads_json(&self.state.appid, &self.state.uploads());
                self.cors(req, with_body("application/json", body))
            }
            ("/healthz", Method::Get | Method::Head) => Reply::json(200, r#"{"status":"ok"}"#),
            ("/pre" | "/post", _) => not_allowed("POST"),
            ("/" | "/rows" | "/token" | "/s3/params" | "/uploads.json" | "/healthz", _) => {
                not_allowed("GET, HEAD")
            }
            _ => Reply::error(404, "not_found", "no such route"),
        }
    }
}

impl DemoHandler {
    /// The pre-upload callback: accept or veto, with a reason.
    fn pre(&self, req: &Request) -> Reply {
        let info: FirstInfo = match self.verified(req, "pre") {
            Ok(info) => info,
            Err(reply) => return reply,
        };
        match self.state.rules.decide(&self.state.appid, &info) {
            Ok(()) => {
                tracing::info!(upload_id = %info.upload_id, path = %info.path, size = ?info.size,
                    "pre-upload callback: accepted");
                match self.state.rules.max_size {
                    // The node enforces it on bodies of unknown size too (chunked, forms).
                    Some(max) => answer(json!({"success": "true", "max_bytes": max})),
                    None => answer(json!({"success": "true"})),
                }
            }
            Err(reason) => {
                tracing::info!(upload_id = %info.upload_id, path = %info.path, %reason,
                    "pre-upload callback: vetoed");
                answer(json!({"success": "false", "reason": reason}))
            }
        }
    }

    /// The post-upload callback: record the stored file (once) and acknowledge.
    fn post(&self, req: &Request) -> Reply {
        let webhook_id = req.header("webhook-id").unwrap_or_default().to_string();
        let info: SecondInfo = match self.verified(req, "post") {
            Ok(info) => info,
            Err(reply) => return reply,
        };
        let (upload_id, url) = (info.upload_id.clone(), info.url.clone());
        if self.state.record(info, webhook_id) {
            tracing::info!(%upload_id, %url, "post-upload callback: recorded");
        } else {
            tracing::info!(%upload_id, "post-upload callback: repeated delivery, already recorded");
        }
        answer(json!({"success": "true"}))
    }

    /// A form target with a fresh token, signed with the newest secret.
    fn target(&self, name: Option<&str>) -> Result<FormTarget, TargetError> {
        let secret = self.state.secrets().pop();
        let max = self.state.rules.max_size;
        let now = super::unix_secs();
        self.state
            .browser()
            .target(&self.state.appid, secret.as_deref(), name, max, now)
    }

    /// `GET /token[?name=N]`: `{"method":"POST","url":…,"fields":{"key":…,"token":…},"expires":…}`;
    /// the file name is the query parameter `param`.
    fn token(&self, req: &Request, param: &str) -> Reply {
        let query = req.target().split_once('?').map_or("", |(_, q)| q);
        let name = url::form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == param)
            .map(|(_, v)| v.into_owned());
        match self.target(name.as_deref()) {
            Ok(target) => with_body(
                "application/json",
                serde_json::to_string(&target).unwrap_or_default(),
            ),
            Err(e) => {
                let (status, code) = e.status_code();
                Reply::error(status, code, &e.to_string()).header("Cache-Control", "no-store")
            }
        }
    }

    /// Lets a page from one of the app's origins read `reply`.
    fn cors(&self, req: &Request, reply: Reply) -> Reply {
        match req.header("origin") {
            Some(origin) if self.state.browser().allows_origin(origin) => reply
                .header("Access-Control-Allow-Origin", origin)
                .header("Vary", "Origin"),
            Some(_) => reply.header("Vary", "Origin"),
            None => reply,
        }
    }

    /// Checks the body's signature and parses it; the `Err` is the reply to give.
    fn verified<T: DeserializeOwned>(&self, req: &Request, which: &str) -> Result<T, Reply> {
        let body = callback_body(req)?;
        let secrets = self.state.secrets();
        if secrets.is_empty() {
            tracing::warn!(
                callback = which,
                "callback refused: no secret to verify it with \
                (start with --register-with NODE, or give --secret)"
            );
            return Err(unauthorized(
                "the application has no secret to verify callbacks",
            ));
        }
        let (id, ts, sig) = (
            req.header("webhook-id"),
            req.header("webhook-timestamp"),
            req.header("webhook-signature"),
        );
        let (Some(id), Some(ts), Some(sig)) = (id, ts, sig) else {
            tracing::warn!(callback = which, peer = %req.peer, "callback refused: unsigned \
                (webhook-id, webhook-timestamp and webhook-signature are required)");
            return Err(unauthorized("missing webhook signature headers"));
        };
        if let Err(e) = verify(
            &secrets,
            id,
            ts,
            sig,
            body,
            super::unix_secs(),
            DEFAULT_TOLERANCE_SECS,
        ) {
            tracing::warn!(callback = which, peer = %req.peer, webhook_id = %id, error = %e,
                "callback refused: bad signature");
            return Err(unauthorized(&format!("signature check failed: {e}")));
        }
        serde_json::from_slice(body).map_err(|e| {
            tracing::warn!(callback = which, error = %e, "callback refused: body is not the contract's JSON");
            Reply::json(
                400,
                json!({"success": "false", "reason": format!("bad callback body: {e}")})
                    .to_string(),
            )
        })
    }
}

/// The whole request body, which the app server reads up to [`MAX_CALLBACK_BODY`] bytes.
fn callback_body(req: &Request) -> Result<&Bytes, Reply> {
    req.body.as_ref().ok_or_else(|| {
        Reply::json(
            413,
            json!({"success": "false", "reason": "callback body too large"}).to_string(),
        )
    })
}

fn answer(v: serde_json::Value) -> Reply {
    Reply::json(200, v.to_string())
}

fn unauthorized(reason: &str) -> Reply {
    Reply::json(
        401,
        json!({"success": "false", "reason": reason}).to_string(),
    )
}

fn with_body(content_type: &str, body: String) -> Reply {
    Reply::with_body(200, content_type, body).header("Cache-Control", "no-store")
}

fn not_allowed(allow: &'static str) -> Reply {
    Reply::error(405, "method_not_allowed", "method not allowed here").header("Allow", allow)
}
