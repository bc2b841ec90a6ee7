//! Browser uploads, the application's side: where the page's form posts (the node's
//! `POST /upload/form/{appid}`), the signed upload tokens the app hands its page
//! (`upgate_contract::token`), and which other origins' pages may ask for them.
//!
//! The page never sees the app's secret: it asks `GET /token` for a form target,
//! `{"method":"POST","url":…,"fields":{"key":…,"token":…},"expires":…}`, the shape S3-style
//! uploaders (Uppy's AwsS3 plugin in POST mode) consume, and posts `fields` in that order, then
//! the file last.

use serde::Serialize;
use upgate_contract::token::{sign_upload, UploadPolicy};

/// How long a token the app hands out stays valid.
pub const TOKEN_TTL_SECS: u64 = 600;

/// Where browser uploads are stored, under the appid.
pub const KEY_PREFIX: &str = "uploads/";

/// Longest file name `GET /token?name=` takes.
const MAX_NAME_BYTES: usize = 255;

/// What the app needs to let browsers upload straight to the node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Browser {
    /// The node as browsers reach it (`http://host:port`); `None`: no browser uploads.
    pub node_url: Option<String>,
    /// Origins (`http://host:port`) whose pages may call `GET /token` and `GET /uploads.json`
    /// across origins: the app's own and those given with `--cors-origin`. The app registers
    /// the same list as its `cors_origins` with the node.
    pub origins: Vec<String>,
}

/// A form upload's target, as the page (or any uploader) consumes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FormTarget {
    pub method: &'static str,
    /// `{node}/upload/form/{appid}`.
    pub url: String,
    /// The form's text fields, in the order they must be sent (before the file).
    pub fields: Fields,
    /// When the token expires (unix seconds).
    pub expires: u64,
}

/// The text fields of a form upload, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Fields {
    /// The stored path: `uploads/<name>`, or `uploads/${filename}` (the node puts the file
    /// part's name in).
    pub key: String,
    pub token: String,
}

/// Why no form target can be given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetError {
    /// The app knows no node URL (`--node-url` or `--register-with`).
    NoNode,
    /// The app has no secret to sign with (it did not register and got no `--secret`).
    NoSecret,
    /// `name` cannot be a file name in the stored path.
    BadName(&'static str),
}

impl TargetError {
    /// The reply's status and error code.
    pub fn status_code(&self) -> (u16, &'static str) {
        match self {
            TargetError::NoNode => (503, "no_node"),
            TargetError::NoSecret => (503, "no_secret"),
            TargetError::BadName(_) => (400, "bad_name"),
        }
    }
}

impl std::fmt::Display for TargetError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TargetError::NoNode => f.write_str(
                "the app knows no node URL for browsers (start it with --node-url or --register-with)",
            ),
            TargetError::NoSecret => f.write_str(
                "the app has no secret to sign upload tokens with (start it with --register-with or --secret)",
            ),
            TargetError::BadName(why) => write!(f, "bad file name: {why}"),
        }
    }
}

impl Browser {
    /// `{node}/upload/form/{appid}`, when the node is known.
    pub fn form_url(&self, appid: &str) -> Option<String> {
        let node = self.node_url.as_deref()?.trim_end_matches('/');
        Some(format!("{node}/upload/form/{appid}"))
    }

    /// A form target for `appid`, its token signed with `secret` and valid from `now` for
    /// [`TOKEN_TTL_SECS`]. With a `name`, the token allows exactly `uploads/<name>`; without,
    /// any path under `uploads/` and the key is `uploads/${filename}`. `max_bytes` goes into
    /// the token (the node then enforces it, also on bodies of unknown size).
    pub fn target(
        &self,
        appid: &str,
        secret: Option<&str>,
        name: Option<&str>,
        max_bytes: Option<u64>,
        now: u64,
    ) -> Result<FormTarget, TargetError> {
        let url = self.form_url(appid).ok_or(TargetError::NoNode)?;
        let secret = secret.ok_or(TargetError::NoSecret)?;
        let mut policy = UploadPolicy {
            appid: appid.to_string(),
            key: None,
            key_prefix: None,
            expires: now + TOKEN_TTL_SECS,
            max_bytes,
            content_types: None,
        };
        let key = match name {
            Some(name) => {
                check_name(name)?;
                let key = format!("{KEY_PREFIX}{name}");
                policy.key = Some(key.clone());
                key
            }
            None => {
                policy.key_prefix = Some(KEY_PREFIX.to_string());
                format!("{KEY_PREFIX}${{filename}}")
            }
        };
        Ok(FormTarget {
            method: "POST",
            url,
            fields: Fields {
                key,
                token: sign_upload(secret, &policy),
            },
            expires: policy.expires,
        })
    }

    /// Whether a page from `origin` may read the app's answers.
    pub fn allows_origin(&self, origin: &str) -> bool {
        self.origins.iter().any(|o| o == origin)
    }
}

/// A name that is one path segment the node will take.
fn check_name(name: &str) -> Result<(), TargetError> {
    if name.is_empty() {
        return Err(TargetError::BadName("empty"));
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(TargetError::BadName("longer than 255 bytes"));
    }
    if name == "." || name == ".." {
        return Err(TargetError::BadName("`.` and `..` are not file names"));
    }
    if name.contains(['/', '\\']) {
        return Err(TargetError::BadName("a file name has no slashes"));
    }
    if name.chars().any(char::is_control) {
        return Err(TargetError::BadName("control characters"));
    }
    Ok(())
}

/// The origin (`scheme://host[:port]`) of a URL such as the app's base URL; `None` when it is
/// not an http(s) URL.
pub fn origin_of(url: &str) -> Option<String> {
    let url = url::Url::parse(url).ok()?;
    matches!(url.scheme(), "http" | "https").then(|| url.origin().ascii_serialization())
}

#[cfg(test)]
mod tests {
    use super::*;
    use upgate_contract::token::{verify_upload, TokenError};

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    fn browser() -> Browser {
        Browser {
            node_url: Some("http://127.0.0.1:8080/".into()),
            origins: vec!["http://127.0.0.1:9000".into()],
        }
    }

    #[test]
    fn a_named_target_allows_exactly_that_key() {
        let t = browser()
            .target("demo", Some(SECRET), Some("a b.png"), Some(10), 100)
            .unwrap();
        assert_eq!(t.url, "http://127.0.0.1:8080/upload/form/demo");
        assert_eq!(t.fields.key, "uploads/a b.png");
        assert_eq!(t.expires, 100 + TOKEN_TTL_SECS);
        let p = verify_upload(&t.fields.token, &[SECRET.into()], 100).unwrap();
        assert_eq!(p.allows("demo", "uploads/a b.png", Some(10), ""), Ok(()));
        assert_eq!(
            p.allows("demo", "uploads/other.png", Some(1), ""),
            Err(TokenError::WrongKey)
        );
        assert_eq!(
            p.allows("demo", "uploads/a b.png", Some(11), ""),
            Err(TokenError::TooLarge { size: 11, max: 10 })
        );
        let json = serde_json::to_value(&t).unwrap();
        let fields: Vec<&String> = json["fields"].as_object().unwrap().keys().collect();
        assert_eq!(
            fields,
            ["key", "token"],
            "fields in the order they are sent"
        );
        assert_eq!(json["method"], "POST");
    }

    #[test]
    fn an_unnamed_target_allows_the_prefix() {
        let t = browser()
            .target("demo", Some(SECRET), None, None, 100)
            .unwrap();
        assert_eq!(t.fields.key, "uploads/${filename}");
        let p = verify_upload(&t.fields.token, &[SECRET.into()], 100).unwrap();
        assert_eq!(p.key_prefix.as_deref(), Some("uploads/"));
        assert_eq!(
            p.allows("demo", "uploads/x.txt", None, "text/plain"),
            Ok(())
        );
        assert_eq!(
            p.allows("demo", "x.txt", None, ""),
            Err(TokenError::WrongKey)
        );
    }

    #[test]
    fn no_target_without_node_secret_or_a_good_name() {
        let b = browser();
        let none = Browser::default();
        assert_eq!(
            none.target("d", Some(SECRET), None, None, 0),
            Err(TargetError::NoNode)
        );
        assert_eq!(
            b.target("d", None, None, None, 0),
            Err(TargetError::NoSecret)
        );
        for bad in ["", ".", "..", "a/b", "a\\b", "a\nb", &"x".repeat(256)] {
            let got = b.target("d", Some(SECRET), Some(bad), None, 0);
            assert!(matches!(got, Err(TargetError::BadName(_))), "{bad:?}");
        }
        assert_eq!(TargetError::NoNode.status_code(), (503, "no_node"));
    }

    #[test]
    fn origins() {
        assert!(browser().allows_origin("http://127.0.0.1:9000"));
        assert!(!browser().allows_origin("http://127.0.0.1:9001"));
        assert_eq!(
            origin_of("http://127.0.0.1:9000/some/path").as_deref(),
            Some("http://127.0.0.1:9000")
        );
        assert_eq!(
            origin_of("https://App.Example.com:443/").as_deref(),
            Some("https://app.example.com")
        );
        assert_eq!(origin_of("ftp://x/"), None);
        assert_eq!(origin_of("not a url"), None);
    }
}
