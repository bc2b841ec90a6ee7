//! The completion JSON and the single map from flow errors to status codes.

use serde_json::json;

use crate::callback::Veto;
use crate::http::Response;
use crate::server::BodyError;

use super::condition::Refusal;
use super::model::{Notified, Stored, UploadRequest};

/// Why an upload did not complete. Each variant answers one status.
#[derive(Debug)]
pub enum FlowError {
    /// A receive condition failed (400/404/403/413/417).
    Refused(Refusal),
    /// The target exists and `overwrite = false` (409).
    Exists,
    /// The callback queue is full (503 + Retry-After).
    Busy,
    /// The pre-callback vetoed or failed (403/504/502).
    Veto(Veto),
    /// The body could not be read (its protocol status, 408 on a stall).
    Body(BodyError),
    /// A chunked body grew past the limit (413).
    TooLarge(u64),
    /// No space left for the body (507).
    DiskFull,
    /// The file could not be written or placed (500).
    Storage(String),
    /// The notification could not be recorded in the outbox; nothing was stored (503).
    Unrecorded(String),
    Internal(String),
}

impl From<Refusal> for FlowError {
    fn from(r: Refusal) -> Self {
        FlowError::Refused(r)
    }
}

/// The error response for `e`.
pub fn fail(e: FlowError) -> Response {
    match e {
        FlowError::Refused(r) => Response::error(r.status, r.code, &r.message),
        FlowError::Exists => Response::error(409, "exists", "a file already exists at this path"),
        FlowError::Busy => Response::error(
            503,
            "callback_queue_full",
            "the callback queue is full; retry later",
        )
        .header("Retry-After", "1"),
        FlowError::Veto(v) => Response::error(v.status(), v.code(), &v.to_string()),
        FlowError::Body(b) => b.response(),
        FlowError::TooLarge(limit) => Response::error(
            413,
            "too_large",
            &format!("the body is larger than the limit of {limit} bytes"),
        ),
        FlowError::DiskFull => Response::error(
            507,
            "insufficient_storage",
            "no space left to store the body",
        ),
        FlowError::Storage(detail) => {
            tracing::error!(%detail, "storage failure");
            Response::error(500, "storage_failed", "the file could not be stored")
        }
        FlowError::Unrecorded(detail) => {
            tracing::error!(%detail, "outbox failure");
            Response::error(
                503,
                "outbox_unavailable",
                "the upload could not be recorded for its notification; nothing was stored; retry later",
            )
            .header("Retry-After", "5")
        }
        FlowError::Internal(detail) => {
            tracing::error!(%detail, "internal failure");
            Response::error(500, "internal", "internal error")
        }
    }
}

/// `201 Created` with the contract's completion JSON.
pub fn created(req: &UploadRequest, stored: &Stored, notified: Notified) -> Response {
    let (callback, app) = match notified {
        Notified::Delivered(answer) => ("delivered", answer),
        Notified::Pending => ("pending", serde_json::Value::Null),
        Notified::NoCallback => ("none", serde_json::Value::Null),
    };
    let mut body = json!({
        "success": "true",
        "filename": req.target.filename(),
        "path": req.target.rel,
        "size": stored.size,
        "url": stored.url,
        "upload_id": req.upload_id,
        "callback": callback,
        "app": app,
    });
    if let Some(sha256) = &stored.sha256 {
        body["sha256"] = json!(sha256);
    }
    Response::json(201, body.to_string()).header("Location", stored.url.clone())
}
