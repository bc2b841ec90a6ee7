//! Signed download URLs: how an app registered with `downloads = "signed"` lets someone fetch
//! one of its files until a deadline, like an S3 presigned GET.
//!
//! ```text
//! /{appid}/{path}?expires=<unix s>&signature=<base64url(HMAC-SHA256(app key, "GET\n" path "\n" expires))>
//! ```
//!
//! - The key is the app's, the decoded `whsec_` secret that signs callbacks and upload tokens
//!   ([`crate::sign`]); during a rotation the node accepts a signature by the previous secret too.
//! - The path signed is the request path **as it travels**: percent-encoded exactly as the
//!   client sends it, without the query (`/app1/a%20b.txt`, not `/app1/a b.txt`). The node
//!   compares it with the bytes of its request line, so nothing is decoded or re-encoded on
//!   either side; a signer must encode the path the way its HTTP client will send it (the tools
//!   normalise the URL first, as `url::Url` does).
//! - The method in the signed string is always `GET`: a `HEAD` of the same URL is allowed too.
//! - `expires` is unix seconds, valid up to and including that second; the signature is
//!   base64url without padding (padded is accepted when verifying).
//!
//! Pure functions: the node ([`verify_path`]) and `upgate sign-url` ([`sign_url`]) share them.

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, URL_SAFE_NO_PAD};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::sign::key_bytes;

/// The query parameter carrying the deadline.
pub const EXPIRES: &str = "expires";
/// The query parameter carrying the signature.
pub const SIGNATURE: &str = "signature";

/// base64url that reads padded and unpadded input alike.
const URL_SAFE_ANY_PAD: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// What the HMAC covers: `GET\n{path}\n{expires}`.
pub fn string_to_sign(path: &str, expires: u64) -> String {
    format!("GET\n{path}\n{expires}")
}

fn mac(secret: &str, path: &[u8], expires: u64) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(&key_bytes(secret)).expect("HMAC takes any key");
    mac.update(b"GET\n");
    mac.update(path);
    mac.update(b"\n");
    mac.update(expires.to_string().as_bytes());
    mac.finalize().into_bytes().into()
}

/// The signature of `path` (percent-encoded, without the query) until `expires`.
pub fn sign_path(secret: &str, path: &str, expires: u64) -> String {
    URL_SAFE_NO_PAD.encode(mac(secret, path.as_bytes(), expires))
}

/// Why a URL could not be signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignUrlError {
    /// Not `scheme://authority/path…`, or a path without `/{appid}/{file}`.
    NotAFileUrl,
    /// The URL already carries `expires` or `signature`.
    AlreadySigned,
}

impl std::fmt::Display for SignUrlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SignUrlError::NotAFileUrl => "the URL must be http(s)://host[:port]/{appid}/{path}",
            SignUrlError::AlreadySigned => "the URL already has expires= or signature=",
        })
    }
}

impl std::error::Error for SignUrlError {}

/// `url` (`http://host/app1/a.txt[?other=1]`, its path already percent-encoded as it will be
/// sent) with `expires` and `signature` appended to its query.
pub fn sign_url(secret: &str, url: &str, expires: u64) -> Result<String, SignUrlError> {
    let (base, fragment) = match url.split_once('#') {
        Some((b, f)) => (b, Some(f)),
        None => (url, None),
    };
    let after_scheme = base
        .split_once("://")
        .map(|(_, rest)| rest)
        .ok_or(SignUrlError::NotAFileUrl)?;
    let path_at = after_scheme.find('/').ok_or(SignUrlError::NotAFileUrl)?;
    let path_and_query = &after_scheme[path_at..];
    let (path, query) = match path_and_query.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path_and_query, None),
    };
    let file = path.trim_start_matches('/');
    if !file.contains('/') || file.ends_with('/') {
        return Err(SignUrlError::NotAFileUrl);
    }
    let taken = |q: &str| {
        q.split('&').any(|kv| {
            let k = kv.split('=').next().unwrap_or("");
            k == EXPIRES || k == SIGNATURE
        })
    };
    if query.is_some_and(taken) {
        return Err(SignUrlError::AlreadySigned);
    }
    let signature = sign_path(secret, path, expires);
    let sep = match query {
        Some("") => "",
        Some(_) => "&",
        None => "?",
    };
    let mut out = format!("{base}{sep}{EXPIRES}={expires}&{SIGNATURE}={signature}");
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(f);
    }
    Ok(out)
}

/// Why a signed download was refused; its `Display` is what the client is told (the node
/// answers 403 `bad_signature` with it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlSigError {
    /// No `expires` or no `signature` in the query.
    Missing,
    /// `expires` is not a number of seconds, or `signature` not base64url of 32 bytes.
    Malformed,
    /// Past `expires`.
    Expired,
    /// Signed by none of the app's secrets, or for another path or deadline.
    Mismatch,
}

impl std::fmt::Display for UrlSigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            UrlSigError::Missing => "this app's downloads need a signed URL (expires, signature)",
            UrlSigError::Malformed => "the URL's expires or signature is malformed",
            UrlSigError::Expired => "the signed URL has expired",
            UrlSigError::Mismatch => "the URL's signature does not match",
        })
    }
}

impl std::error::Error for UrlSigError {}

/// Checks a download of `path` (percent-encoded, as received, without the query) carrying the
/// query values `expires` and `signature`, at `now` (unix seconds), against `secrets` (the
/// app's current and, during a rotation, previous secret). The MAC is compared in constant time
/// before the deadline is looked at, so an altered URL says "does not match", not "expired".
pub fn verify_path(
    secrets: &[String],
    path: &[u8],
    expires: Option<&str>,
    signature: Option<&str>,
    now: u64,
) -> Result<(), UrlSigError> {
    let (Some(expires), Some(signature)) = (expires, signature) else {
        return Err(UrlSigError::Missing);
    };
    let expires: u64 = match expires.as_bytes() {
        [b'0'..=b'9', ..] if expires.len() <= 20 => {
            expires.parse().map_err(|_| UrlSigError::Malformed)?
        }
        _ => return Err(UrlSigError::Malformed),
    };
    if signature.len() > 64 {
        return Err(UrlSigError::Malformed);
    }
    let given = URL_SAFE_ANY_PAD
        .decode(signature)
        .map_err(|_| UrlSigError::Malformed)?;
    if given.len() != 32 {
        return Err(UrlSigError::Malformed);
    }
    let matched = secrets
        .iter()
        .any(|s| bool::from(mac(s, path, expires).ct_eq(&given)));
    if !matched {
        return Err(UrlSigError::Mismatch);
    }
    if now > expires {
        return Err(UrlSigError::Expired);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const OTHER: &str = "whsec_C2FzZGZhc2RmYXNkZmFzZGZhc2RmYXNkZg==";

    /// The query value of `name` in a signed URL.
    fn param<'a>(url: &'a str, name: &str) -> Option<&'a str> {
        let q = url.split_once('?')?.1;
        q.split('&')
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
    }

    #[test]
    fn the_signature_is_base64url_hmac_of_the_documented_string() {
        let expected = {
            let mut m = Hmac::<Sha256>::new_from_slice(&key_bytes(SECRET)).unwrap();
            m.update(string_to_sign("/app1/a%20b.txt", 1_700_000_000).as_bytes());
            URL_SAFE_NO_PAD.encode(m.finalize().into_bytes())
        };
        assert_eq!(
            sign_path(SECRET, "/app1/a%20b.txt", 1_700_000_000),
            expected
        );
        assert_eq!(expected.len(), 43, "32 bytes, unpadded");
        assert!(!expected.contains(['+', '/', '=']));
    }

    #[test]
    fn a_signed_url_verifies_until_it_expires_and_only_for_its_path() {
        let url = sign_url(SECRET, "http://n:8080/app1/dir/a%20b.txt", 100).unwrap();
        assert!(url.starts_with("http://n:8080/app1/dir/a%20b.txt?expires=100&signature="));
        let (e, s) = (param(&url, EXPIRES), param(&url, SIGNATURE));
        let path = b"/app1/dir/a%20b.txt";
        let secrets = [SECRET.to_string()];
        assert_eq!(verify_path(&secrets, path, e, s, 99), Ok(()));
        assert_eq!(verify_path(&secrets, path, e, s, 100), Ok(()), "inclusive");
        assert_eq!(
            verify_path(&secrets, path, e, s, 101),
            Err(UrlSigError::Expired)
        );
        // The decoded form is another path: signed as it travels.
        assert_eq!(
            verify_path(&secrets, b"/app1/dir/a b.txt", e, s, 99),
            Err(UrlSigError::Mismatch)
        );
        assert_eq!(
            verify_path(&secrets, path, Some("101"), s, 99),
            Err(UrlSigError::Mismatch),
            "a later deadline is not the signed one"
        );
        assert_eq!(
            verify_path(&[OTHER.to_string()], path, e, s, 99),
            Err(UrlSigError::Mismatch)
        );
        // During a rotation either secret's signature passes.
        let both = [OTHER.to_string(), SECRET.to_string()];
        assert_eq!(verify_path(&both, path, e, s, 99), Ok(()));
    }

    #[test]
    fn missing_and_malformed_parameters() {
        let s = SECRET.to_string();
        let sig = sign_path(SECRET, "/a/b", 5);
        let v = |e: Option<&str>, g: Option<&str>| {
            verify_path(std::slice::from_ref(&s), b"/a/b", e, g, 0)
        };
        assert_eq!(v(None, Some(&sig)), Err(UrlSigError::Missing));
        assert_eq!(v(Some("5"), None), Err(UrlSigError::Missing));
        assert_eq!(v(Some("-5"), Some(&sig)), Err(UrlSigError::Malformed));
        assert_eq!(v(Some("5x"), Some(&sig)), Err(UrlSigError::Malformed));
        assert_eq!(v(Some("5"), Some("!!")), Err(UrlSigError::Malformed));
        assert_eq!(v(Some("5"), Some("AAAA")), Err(UrlSigError::Malformed));
        assert_eq!(v(Some("5"), Some(&format!("{sig}="))), Ok(()), "padded");
    }

    #[test]
    fn urls_keep_their_query_and_fragment_and_are_not_signed_twice() {
        let url = sign_url(SECRET, "https://h/app1/x.txt?v=2#top", 7).unwrap();
        assert!(url.starts_with("https://h/app1/x.txt?v=2&expires=7&signature="));
        assert!(url.ends_with("#top"));
        assert_eq!(sign_url(SECRET, &url, 8), Err(SignUrlError::AlreadySigned));
        for bad in ["app1/x.txt", "http://h", "http://h/app1", "http://h/app1/"] {
            assert_eq!(
                sign_url(SECRET, bad, 7),
                Err(SignUrlError::NotAFileUrl),
                "{bad}"
            );
        }
    }
}
