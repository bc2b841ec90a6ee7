//! One application's registration, and the pure rules that create, update and rotate it.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::config::ExpectPolicy;

/// How long a rotated-out secret still signs callbacks (seconds), so an application can roll its
/// verifier without missing a callback.
pub const ROTATION_GRACE_SECS: u64 = 24 * 60 * 60;

/// A registered application, stored as JSON in the `apps` tree under its appid.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct AppRecord {
    pub appid: String,
    pub callback_url_pre: Option<String>,
    pub callback_url_post: Option<String>,
    /// Hosts (`host` or `host:port`) the app's clients may name in callback headers.
    #[serde(default)]
    pub callback_hosts: Vec<String>,
    /// The app's own upload limit (the node's `max_body_bytes` still applies).
    pub max_body_bytes: Option<u64>,
    /// Request header names (lower case; a trailing `*` is a prefix) copied into the
    /// pre-callback's `request.headers`; `None` is the default, `authorization`.
    #[serde(default)]
    pub forward_headers: Option<Vec<String>>,
    /// Browser origins (`https://app.example.com`) allowed to upload and download; `*` allows
    /// downloads from any origin (never uploads).
    #[serde(default)]
    pub cors_origins: Vec<String>,
    /// This app's expect policy for raw uploads; `None` follows the node's `expect`.
    #[serde(default)]
    pub expect: Option<ExpectPolicy>,
    /// Script-capable content types this app's downloads may serve inline.
    #[serde(default)]
    pub inline_types: Vec<String>,
    /// Whether downloads need a signed URL.
    #[serde(default)]
    pub downloads: Downloads,
    /// Most bytes this app may have stored (committed and in flight).
    #[serde(default)]
    pub quota_bytes: Option<u64>,
    /// Most uploads in flight for this app on this node.
    #[serde(default)]
    pub max_concurrent_uploads: Option<u32>,
    /// Most new uploads per second for this app on this node (token bucket, burst 2 × rate).
    #[serde(default)]
    pub rate_per_s: Option<f64>,
    /// Standard Webhooks secret, `whsec_<base64 key>`.
    pub secret: String,
    /// The secret before the last rotation, still used to sign until `previous_secret_expires`.
    pub previous_secret: Option<String>,
    /// Unix seconds.
    pub previous_secret_expires: Option<u64>,
    /// Unix seconds.
    pub created_at: u64,
    /// Unix seconds.
    pub updated_at: u64,
}

/// Secrets never reach logs through `{:?}`.
impl fmt::Debug for AppRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppRecord")
            .field("appid", &self.appid)
            .field("callback_url_pre", &self.callback_url_pre)
            .field("callback_url_post", &self.callback_url_post)
            .field("callback_hosts", &self.callback_hosts)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("forward_headers", &self.forward_headers)
            .field("cors_origins", &self.cors_origins)
            .field("expect", &self.expect)
            .field("inline_types", &self.inline_types)
            .field("downloads", &self.downloads)
            .field("quota_bytes", &self.quota_bytes)
            .field("max_concurrent_uploads", &self.max_concurrent_uploads)
            .field("rate_per_s", &self.rate_per_s)
            .field("secret", &"<redacted>")
            .field(
                "previous_secret",
                &self.previous_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("previous_secret_expires", &self.previous_secret_expires)
            .field("created_at", &self.created_at)
            .field("updated_at", &self.updated_at)
            .finish()
    }
}

/// Who may download an app's files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Downloads {
    /// Anyone with the URL.
    #[default]
    Public,
    /// Only holders of a URL signed with the app's key, before it expires.
    Signed,
}

/// What a registration request does to one field.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Change<T> {
    /// The field was not sent: keep the stored value (or none, for a new app).
    #[default]
    Keep,
    /// The field was sent empty (or `null`): remove the stored value.
    Clear,
    /// The field was sent with a value.
    Set(T),
}

impl<T: Clone> Change<T> {
    fn apply_opt(&self, current: Option<T>) -> Option<T> {
        match self {
            Change::Keep => current,
            Change::Clear => None,
            Change::Set(v) => Some(v.clone()),
        }
    }
}

/// A validated registration request (`POST /upload/register`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Registration {
    pub appid: String,
    pub callback_url_pre: Change<String>,
    pub callback_url_post: Change<String>,
    pub callback_hosts: Change<Vec<String>>,
    pub max_body_bytes: Change<u64>,
    pub forward_headers: Change<Vec<String>>,
    pub cors_origins: Change<Vec<String>>,
    pub expect: Change<ExpectPolicy>,
    pub inline_types: Change<Vec<String>>,
    pub downloads: Change<Downloads>,
    pub quota_bytes: Change<u64>,
    pub max_concurrent_uploads: Change<u32>,
    pub rate_per_s: Change<f64>,
    /// Issue a new secret; the old one keeps signing for [`ROTATION_GRACE_SECS`].
    pub rotate_secret: bool,
}

/// The outcome of a registration.
#[derive(Debug, Clone, PartialEq)]
pub struct Registered {
    pub record: AppRecord,
    /// The app did not exist before.
    pub created: bool,
    /// The secret, when it was created or rotated by this call (shown to the caller once).
    pub new_secret: Option<String>,
}

impl AppRecord {
    /// A new record for `reg` with `secret`.
    pub fn create(reg: &Registration, now: u64, secret: String) -> AppRecord {
        AppRecord {
            appid: reg.appid.clone(),
            callback_url_pre: reg.callback_url_pre.apply_opt(None),
            callback_url_post: reg.callback_url_post.apply_opt(None),
            callback_hosts: reg.callback_hosts.apply_opt(None).unwrap_or_default(),
            max_body_bytes: reg.max_body_bytes.apply_opt(None),
            forward_headers: reg.forward_headers.apply_opt(None),
            cors_origins: reg.cors_origins.apply_opt(None).unwrap_or_default(),
            expect: reg.expect.apply_opt(None),
            inline_types: reg.inline_types.apply_opt(None).unwrap_or_default(),
            downloads: reg.downloads.apply_opt(None).unwrap_or_default(),
            quota_bytes: reg.quota_bytes.apply_opt(None),
            max_concurrent_uploads: reg.max_concurrent_uploads.apply_opt(None),
            rate_per_s: reg.rate_per_s.apply_opt(None),
            secret,
            previous_secret: None,
            previous_secret_expires: None,
            created_at: now,
            updated_at: now,
        }
    }

    /// This record updated by `reg`. `fresh_secret` is called only when a rotation is asked;
    /// the current secret then becomes the previous one (replacing any older previous secret).
    pub fn updated(
        &self,
        reg: &Registration,
        now: u64,
        fresh_secret: impl FnOnce() -> String,
    ) -> AppRecord {
        let mut next = self.clone();
        next.callback_url_pre = reg.callback_url_pre.apply_opt(next.callback_url_pre);
        next.callback_url_post = reg.callback_url_post.apply_opt(next.callback_url_post);
        next.callback_hosts = match &reg.callback_hosts {
            Change::Keep => next.callback_hosts,
            Change::Clear => Vec::new(),
            Change::Set(hosts) => hosts.clone(),
        };
        next.max_body_bytes = reg.max_body_bytes.apply_opt(next.max_body_bytes);
        next.forward_headers = reg.forward_headers.apply_opt(next.forward_headers);
        next.cors_origins = reg
            .cors_origins
            .apply_opt(Some(next.cors_origins))
            .unwrap_or_default();
        next.expect = reg.expect.apply_opt(next.expect);
        next.inline_types = reg
            .inline_types
            .apply_opt(Some(next.inline_types))
            .unwrap_or_default();
        next.downloads = reg
            .downloads
            .apply_opt(Some(next.downloads))
            .unwrap_or_default();
        next.quota_bytes = reg.quota_bytes.apply_opt(next.quota_bytes);
        next.max_concurrent_uploads = reg
            .max_concurrent_uploads
            .apply_opt(next.max_concurrent_uploads);
        next.rate_per_s = reg.rate_per_s.apply_opt(next.rate_per_s);
        if reg.rotate_secret {
            let old = std::mem::replace(&mut next.secret, fresh_secret());
            next.previous_secret = Some(old);
            next.previous_secret_expires = Some(now.saturating_add(ROTATION_GRACE_SECS));
        } else if !next.previous_valid(now) {
            next.previous_secret = None;
            next.previous_secret_expires = None;
        }
        next.updated_at = now;
        next
    }

    /// Whether the app names any callback: a URL of its own, or hosts its clients may name.
    pub fn has_callbacks(&self) -> bool {
        self.callback_url_pre.is_some()
            || self.callback_url_post.is_some()
            || !self.callback_hosts.is_empty()
    }

    /// The header names forwarded to the pre-callback (the default when none were registered).
    pub fn forwarded_headers(&self) -> &[String] {
        static DEFAULT: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
        self.forward_headers
            .as_deref()
            .unwrap_or_else(|| DEFAULT.get_or_init(|| vec!["authorization".to_owned()]))
    }

    fn previous_valid(&self, now: u64) -> bool {
        self.previous_secret.is_some() && self.previous_secret_expires.is_some_and(|t| now < t)
    }

    /// The keys callbacks are signed with at `now` (unix seconds): the current secret, then the
    /// previous one while its grace period lasts.
    pub fn secrets_for_signing(&self, now: u64) -> Vec<String> {
        let mut out = vec![self.secret.clone()];
        if self.previous_valid(now) {
            if let Some(prev) = &self.previous_secret {
                out.push(prev.clone());
            }
        }
        out
    }
}

/// A new Standard Webhooks secret: `whsec_` and the base64 of 32 random bytes.
pub fn new_secret() -> String {
    use base64::Engine as _;
    let mut key = [0u8; 32];
    getrandom::getrandom(&mut key).expect("the OS random source is available");
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(key)
    )
}

/// appid syntax: 1-64 of `[A-Za-z0-9_-]`.
pub fn valid_appid(appid: &str) -> bool {
    (1..=64).contains(&appid.len())
        && appid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}
