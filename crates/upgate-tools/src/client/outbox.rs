//! The app's undelivered notifications on a node, over HTTP (contract "Files, downloads and
//! notifications for the app"): list them, retry one now, drop one. Every call carries
//! `Authorization: Bearer <the app's whsec_ secret or the admin token>`.

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use super::agent::{agent, from_ureq, node_url, read_body};
use super::error::ClientError;

/// One notification as the node lists it (times in unix seconds).
#[derive(Debug, Clone, Deserialize)]
pub struct Notification {
    pub event_id: String,
    pub upload_id: Option<String>,
    /// Where the next attempt goes; `None` while the app names no post-callback.
    pub url: Option<String>,
    pub attempts: u32,
    pub last_error: Option<String>,
    /// `None` for a dead notification.
    pub next_attempt: Option<u64>,
    pub created: u64,
}

/// `GET /upload/outbox/{appid}`.
#[derive(Debug, Clone, Deserialize)]
pub struct Listing {
    pub pending: Vec<Notification>,
    pub dead: Vec<Notification>,
    /// The answer as received, for `--json`.
    #[serde(skip)]
    pub body: String,
}

/// Where and as whom to ask.
#[derive(Debug, Clone)]
pub struct Manage<'a> {
    /// `http://host:port` or `https://…` (any path is ignored).
    pub server: &'a str,
    /// For an `https://` node: a PEM file of the CAs to trust instead of the system's store.
    pub cacert: Option<&'a Path>,
    pub appid: &'a str,
    /// The app's secret or the node's admin token.
    pub token: &'a str,
    pub timeout: Duration,
}

impl Manage<'_> {
    /// The app's pending and dead notifications.
    pub fn list(&self) -> Result<Listing, ClientError> {
        let body = self.call("GET", &[])?;
        let mut listing: Listing = serde_json::from_str(&body)
            .map_err(|e| ClientError::Protocol(format!("outbox listing: {e}")))?;
        listing.body = body;
        Ok(listing)
    }

    /// Asks for an attempt of `event_id` now (a dead one is pending again).
    pub fn retry(&self, event_id: &str) -> Result<(), ClientError> {
        self.call("POST", &[event_id, "retry"]).map(drop)
    }

    /// Drops `event_id` for good.
    pub fn drop(&self, event_id: &str) -> Result<(), ClientError> {
        self.call("DELETE", &[event_id]).map(drop)
    }

    /// `method` on `/upload/outbox/{appid}[/segments…]`; the body of a 2xx answer.
    fn call(&self, method: &str, segments: &[&str]) -> Result<String, ClientError> {
        let mut url = node_url(self.server, "server URL")?;
        url.set_query(None);
        url.path_segments_mut()
            .map_err(|_| ClientError::Usage(format!("bad server URL {:?}", self.server)))?
            .clear()
            .extend(["upload", "outbox", self.appid])
            .extend(segments);
        let agent = agent(&url, self.timeout, self.cacert)?;
        let target = url.authority().to_string();
        let answer = agent
            .request(method, url.as_str())
            .set("Authorization", &format!("Bearer {}", self.token))
            .call();
        match answer {
            Ok(resp) => read_body(resp).map_err(|source| ClientError::Network {
                during: "reading the node's answer",
                source,
            }),
            Err(e) => Err(from_ureq(e, target, "asking the node")),
        }
    }
}
