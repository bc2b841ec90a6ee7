//! The values the upload flow passes from step to step.

use crate::callback::{Guard, RequestInfo};
use crate::storage::Target;

/// A callback URL with how it may be reached.
#[derive(Debug, Clone)]
pub struct CallbackTarget {
    pub url: url::Url,
    /// `Some` for client-carried URLs: connections resolve through the SSRF guard.
    pub guard: Option<Guard>,
}

/// A request that met every receive condition (step 202/304).
#[derive(Debug, Clone)]
pub struct UploadRequest {
    pub target: Target,
    /// Declared size; `None` for chunked bodies.
    pub size: Option<u64>,
    /// Largest body accepted: the smaller of the app's and the node's limit.
    pub limit: u64,
    pub content_type: String,
    pub upload_id: String,
    pub client_ip: String,
    /// `None` only for an app that registered no pre-callback, uploading with a valid signed
    /// token (contract "Signed upload token").
    pub pre: Option<CallbackTarget>,
    pub post: Option<CallbackTarget>,
    /// Signing secrets of a registered app (current and, during rotation, previous).
    pub secrets: Vec<String>,
    /// Who is uploading: the request object of the first file info.
    pub request: RequestInfo,
    /// The app's `metadata` (its pre-callback answer's, or a form's text fields), echoed in the
    /// post-callback and the 201.
    pub metadata: Option<serde_json::Value>,
    /// A resumable upload's append this request brings (`None` for whole uploads).
    pub append: Option<Append>,
    /// How long the app's pre-callback answer covers later appends of a resumable upload
    /// (its `valid_for_s`).
    pub valid_for_s: Option<u64>,
    /// The app's quotas holding this upload's reservation (given back when the last clone
    /// drops, unless the commit made it stored bytes).
    pub quota: Option<std::sync::Arc<crate::quota::Hold>>,
}

/// Where an append to a resumable upload starts and how much it brings: the first file info's
/// `offset` and `length`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Append {
    pub offset: u64,
    /// The request's declared body size (`None`: chunked).
    pub length: Option<u64>,
}

impl UploadRequest {
    /// The `webhook-id` of this upload's pre-callback.
    pub fn pre_event_id(&self) -> String {
        format!("pre_{}", self.upload_id)
    }

    /// The `webhook-id` of this upload's post-callback: the same on every retry.
    pub fn post_event_id(&self) -> String {
        format!("evt_{}", self.upload_id)
    }
}

impl UploadRequest {
    /// The first file info: what the pre-upload callback is asked about.
    pub fn first_info(&self) -> crate::callback::FirstInfo {
        crate::callback::FirstInfo {
            appid: self.target.appid.clone(),
            filename: self.target.filename().to_owned(),
            path: self.target.rel.clone(),
            size: self.size,
            content_type: self.content_type.clone(),
            upload_id: self.upload_id.clone(),
            client_ip: self.client_ip.clone(),
            request: Some(self.request.clone()),
            offset: self.append.map(|a| a.offset),
            length: self.append.and_then(|a| a.length),
            node_id: None,
        }
    }
}

/// A body that is stored and visible (after step 205/307's rename).
#[derive(Debug, Clone)]
pub struct Stored {
    pub size: u64,
    pub url: String,
    /// Hex SHA-256 of the body (`checksum = "sha256"`).
    pub sha256: Option<String>,
}

/// Whether the post-callback reached the app before the client was answered.
#[derive(Debug, Clone, PartialEq)]
pub enum Notified {
    /// The app answered 2xx; its JSON answer (or null).
    Delivered(serde_json::Value),
    /// Recorded in the outbox; it is retried until the app answers.
    Pending,
    /// Neither the header nor the registry named a post-callback.
    NoCallback,
}
