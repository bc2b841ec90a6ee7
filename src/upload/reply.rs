//! The completion JSON, and what can go wrong in the flow ([`FlowError`]; its statuses are
//! in `crate::error::status`, with every other error's).

use std::{fmt, io};

use serde_json::json;

use crate::callback::{PoolError, Veto};
use crate::http::Response;
use crate::registry::{OutboxError, RegistryError};
use crate::server::{BodyError, Exchange, Timings};

use super::condition::Refusal;
use super::model::{Notified, Stored, UploadRequest};

/// Why an upload did not complete. Each variant answers one status (`crate::error::status`).
#[derive(Debug)]
pub enum FlowError {
    /// A receive condition failed (400/404/403/413/417).
    Refused(Refusal),
    /// The target exists and `overwrite = false` (409).
    Exists,
    /// The callback queue is full, or the pool is down (503 + Retry-After).
    Busy(PoolError),
    /// The pre-callback vetoed or failed (403/504/502).
    Veto(Veto),
    /// The body could not be read (its protocol status, 408 on a stall).
    Body(BodyError),
    /// A chunked body grew past the limit (413).
    TooLarge(u64),
    /// A form that is no valid `multipart/form-data` upload (400 `bad_multipart`).
    BadForm(String),
    /// No space left for the body (507).
    DiskFull(io::Error),
    /// The file could not be written or placed (500).
    Storage(io::Error),
    /// The notification could not be recorded in the outbox; nothing was stored (503).
    Unrecorded(OutboxError),
    /// The registry could not be read (500).
    Registry(RegistryError),
    /// `origin_write = "before_callback"` and the origin could not take the file; nothing was
    /// stored (503 `origin_unavailable`).
    Origin(crate::origin::OriginError),
    /// A bug or a vanished worker (500).
    Internal(String),
    /// A resumable upload's request that its protocol refuses (its own statuses).
    Resumable(super::resumable::ResumableError),
}

impl From<super::resumable::ResumableError> for FlowError {
    fn from(e: super::resumable::ResumableError) -> Self {
        FlowError::Resumable(e)
    }
}

impl From<Refusal> for FlowError {
    fn from(r: Refusal) -> Self {
        FlowError::Refused(r)
    }
}

impl fmt::Display for FlowError {
    /// The operator's text (the client's is `Fault::message`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FlowError::Refused(r) => write!(f, "refused: {r}"),
            FlowError::Exists => f.write_str("a file already exists at this path"),
            FlowError::Busy(p) => write!(f, "{p}"),
            FlowError::Veto(_) => f.write_str("pre-upload callback"),
            FlowError::Body(_) => f.write_str("request body"),
            FlowError::TooLarge(limit) => write!(f, "body over the limit of {limit} bytes"),
            FlowError::BadForm(why) => write!(f, "bad multipart form: {why}"),
            FlowError::DiskFull(_) => f.write_str("no space left for the body"),
            FlowError::Storage(_) => f.write_str("storage failure"),
            FlowError::Unrecorded(_) => f.write_str("outbox write failed; upload dropped"),
            FlowError::Origin(e) => write!(f, "origin write failed; upload dropped: {e}"),
            FlowError::Registry(_) => f.write_str("registry lookup failed"),
            FlowError::Internal(detail) => write!(f, "internal failure: {detail}"),
            FlowError::Resumable(e) => write!(f, "resumable upload: {e}"),
        }
    }
}

impl std::error::Error for FlowError {}

/// `201 Created` with the contract's completion JSON.
/// The end of every upload protocol's flow: its step timings into the access log, then the
/// answer: `ok`'s for a result, the error model's one status for an error
/// ([`crate::error::respond`]).
pub fn finish<T>(
    ex: &mut Exchange<'_>,
    timings: Timings,
    result: Result<T, FlowError>,
    ok: impl FnOnce(T) -> Response,
) -> Response {
    ex.access().timings = timings;
    match result {
        Ok(done) => ok(done),
        Err(e) => crate::error::respond(ex.access(), &e),
    }
}

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
    if let Some(metadata) = &req.metadata {
        body["metadata"] = metadata.clone();
    }
    Response::json(201, body.to_string()).header("Location", stored.url.clone())
}
