//! The demo application's routes, served by upgate's own io_uring engine through a custom
//! [`Handler`]:
//!
//! | route | does |
//! |---|---|
//! | `POST /pre` | verifies the signature, then accepts or vetoes the first file info by [`Rules`](super::Rules) |
//! | `POST /post` | verifies the signature, records the second file info (once per upload id) |
//! | `GET /` | the uploads as an HTML page that reloads itself |
//! | `GET /uploads.json` | `{"appid":…,"uploads":[…]}` |
//!
//! A callback whose signature is missing, wrong or outside the timestamp window gets `401` and a
//! log line; so does every callback while the application has no secret.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use serde::de::DeserializeOwned;
use serde_json::json;

use super::page;
use super::state::State;
use crate::callback::{sign::DEFAULT_TOLERANCE_SECS, verify, FirstInfo, SecondInfo};
use crate::http::{Method, Response, ResponseBody};
use crate::server::{Exchange, Handler};

/// Largest callback body read.
pub const MAX_CALLBACK_BODY: usize = 64 * 1024;

/// One handler per io_uring thread; the state is shared.
pub struct DemoHandler {
    state: Arc<State>,
}

impl DemoHandler {
    pub fn new(state: Arc<State>) -> Self {
        DemoHandler { state }
    }
}

impl Handler for DemoHandler {
    async fn handle(&self, ex: &mut Exchange<'_>) -> Response {
        let method = ex.head().method();
        match (ex.head().path_only(), method) {
            (b"/pre", Method::Post) => self.pre(ex).await,
            (b"/post", Method::Post) => self.post(ex).await,
            (b"/", Method::Get | Method::Head) => {
                let verifying = !self.state.secrets().is_empty();
                let body = page::html(&self.state.appid, &self.state.uploads(), verifying);
                with_body(200, "text/html; charset=utf-8", body)
            }
            (b"/uploads.json", Method::Get | Method::Head) => {
                let body = page::uploads_json(&self.state.appid, &self.state.uploads());
                with_body(200, "application/json", body)
            }
            (b"/healthz", Method::Get | Method::Head) => {
                Response::json(200, &br#"{"status":"ok"}"#[..])
            }
            (b"/pre" | b"/post", _) => not_allowed("POST"),
            (b"/" | b"/uploads.json" | b"/healthz", _) => not_allowed("GET, HEAD"),
            _ => error(404, "not_found", "no such route"),
        }
    }
}

impl DemoHandler {
    /// The pre-upload callback: accept or veto, with a reason.
    async fn pre(&self, ex: &mut Exchange<'_>) -> Response {
        let info: FirstInfo = match self.verified(ex, "pre").await {
            Ok(info) => info,
            Err(resp) => return resp,
        };
        match self.state.rules.decide(&self.state.appid, &info) {
            Ok(()) => {
                tracing::info!(upload_id = %info.upload_id, path = %info.path, size = ?info.size,
                    "pre-upload callback: accepted");
                answer(json!({"success": "true"}))
            }
            Err(reason) => {
                tracing::info!(upload_id = %info.upload_id, path = %info.path, %reason,
                    "pre-upload callback: vetoed");
                answer(json!({"success": "false", "reason": reason}))
            }
        }
    }

    /// The post-upload callback: record the stored file (once) and acknowledge.
    async fn post(&self, ex: &mut Exchange<'_>) -> Response {
        let webhook_id = header(ex, "webhook-id").unwrap_or_default();
        let info: SecondInfo = match self.verified(ex, "post").await {
            Ok(info) => info,
            Err(resp) => return resp,
        };
        let (upload_id, url) = (info.upload_id.clone(), info.url.clone());
        if self.state.record(info, webhook_id) {
            tracing::info!(%upload_id, %url, "post-upload callback: recorded");
        } else {
            tracing::info!(%upload_id, "post-upload callback: repeated delivery, already recorded");
        }
        answer(json!({"success": "true"}))
    }

    /// Reads the body, checks its signature and parses it; the `Err` is the response to give.
    async fn verified<T: DeserializeOwned>(
        &self,
        ex: &mut Exchange<'_>,
        which: &str,
    ) -> Result<T, Response> {
        let body = read_body(ex).await?;
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
            header(ex, "webhook-id"),
            header(ex, "webhook-timestamp"),
            header(ex, "webhook-signature"),
        );
        let (Some(id), Some(ts), Some(sig)) = (id, ts, sig) else {
            tracing::warn!(callback = which, peer = %ex.peer(), "callback refused: unsigned \
                (webhook-id, webhook-timestamp and webhook-signature are required)");
            return Err(unauthorized("missing webhook signature headers"));
        };
        if let Err(e) = verify(
            &secrets,
            &id,
            &ts,
            &sig,
            &body,
            crate::clock::unix_secs(),
            DEFAULT_TOLERANCE_SECS,
        ) {
            tracing::warn!(callback = which, peer = %ex.peer(), webhook_id = %id, error = %e,
                "callback refused: bad signature");
            return Err(unauthorized(&format!("signature check failed: {e}")));
        }
        serde_json::from_slice(&body).map_err(|e| {
            tracing::warn!(callback = which, error = %e, "callback refused: body is not the contract's JSON");
            Response::json(
                400,
                json!({"success": "false", "reason": format!("bad callback body: {e}")})
                    .to_string(),
            )
        })
    }
}

/// The whole request body, at most [`MAX_CALLBACK_BODY`] bytes.
async fn read_body(ex: &mut Exchange<'_>) -> Result<Bytes, Response> {
    let too_large = || {
        Response::json(
            413,
            json!({"success": "false", "reason": "callback body too large"}).to_string(),
        )
    };
    if ex
        .head()
        .info()
        .content_length()
        .is_some_and(|n| n > MAX_CALLBACK_BODY as u64)
    {
        return Err(too_large());
    }
    ex.accept_body().await.map_err(|e| body_error(&e))?;
    let mut body = BytesMut::new();
    while let Some(chunk) = ex.next_chunk().await.map_err(|e| body_error(&e))? {
        if body.len() + chunk.len() > MAX_CALLBACK_BODY {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

fn header(ex: &Exchange<'_>, name: &str) -> Option<String> {
    ex.head()
        .value(name)
        .and_then(|v| std::str::from_utf8(v).ok())
        .map(|v| v.trim().to_string())
}

fn answer(v: serde_json::Value) -> Response {
    Response::json(200, v.to_string())
}

fn unauthorized(reason: &str) -> Response {
    Response::json(
        401,
        json!({"success": "false", "reason": reason}).to_string(),
    )
}

fn with_body(status: u16, content_type: &str, body: String) -> Response {
    Response {
        status,
        headers: vec![
            ("Content-Type", content_type.to_string()),
            ("Cache-Control", "no-store".to_string()),
        ],
        body: ResponseBody::Full(Bytes::from(body)),
    }
}

fn not_allowed(allow: &'static str) -> Response {
    error(405, "method_not_allowed", "method not allowed here").header("Allow", allow)
}

/// The contract's error body, as the node writes it.
fn error(status: u16, code: &str, message: &str) -> Response {
    Response::json(status, crate::error::error_body(code, message))
}

fn body_error(e: &crate::server::BodyError) -> Response {
    crate::error::render(e)
}
