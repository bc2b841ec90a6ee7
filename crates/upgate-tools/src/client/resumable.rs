//! `upgate upload --resumable`: one file as a tus 1.0 upload that survives broken connections.
//! The file goes in appends of [`ResumableOptions::chunk_size`] bytes, each streamed from the
//! file (`sendfile(2)` over TCP); after a dropped connection, a timeout, a 5xx, 423, 429 or an
//! append's 409 (the node holds another offset, or is still closing the broken append) the
//! client waits (exponential backoff), asks the node for the offset it holds (`HEAD`) and goes
//! on from there. Any other 4xx ends the upload: retrying cannot change the node's mind.
//!
//! Only bytes the node acknowledged count: after a retry the progress bar goes back to the
//! node's offset, and an offset the node reports lower than one it acknowledged (a crash of a
//! node running with `fsync = false`) is taken as it is and the bytes sent again.

use std::path::Path;
use std::time::Duration;

use upgate_http::Metadata;
use url::Url;

use super::error::ClientError;
use super::progress::Progress;
use super::target::Target;
use super::transport;
use super::tus::{Created, Span, Tus};
use super::upload::{open_regular, Completion, UploadOptions};

/// How a resumable upload is cut and retried.
#[derive(Debug, Clone)]
pub struct ResumableOptions {
    /// Bytes per `PATCH` (the last one may be shorter).
    pub chunk_size: u64,
    /// Failed requests in a row before the upload is given up; any acknowledged progress
    /// starts the count again, so a long upload over a flaky network is not bounded by it.
    pub retries: u32,
    /// The first wait; each further failure in a row doubles it, up to `max_delay`.
    pub first_delay: Duration,
    pub max_delay: Duration,
}

impl Default for ResumableOptions {
    /// 32 MiB appends (each append pays a fixed round trip beyond its bytes, and the node keeps
    /// the bytes of a broken one, so a large chunk costs little on failure), 10 retries, 250 ms
    /// doubling up to 4 s (about 25 s of waiting in all).
    fn default() -> Self {
        ResumableOptions {
            chunk_size: 32 << 20,
            retries: 10,
            first_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(4),
        }
    }
}

impl ResumableOptions {
    /// The wait before retry number `n` (1-based).
    pub fn delay(&self, n: u32) -> Duration {
        let doubled = self
            .first_delay
            .saturating_mul(1u32 << n.saturating_sub(1).min(16));
        doubled.min(self.max_delay)
    }
}

/// Which request failed: a 409 means another thing at creation (the path is taken) than on
/// an append (the offset differs).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Request {
    Create,
    Head,
    Append,
}

/// What to do after a failed request.
enum Next {
    /// Wait, then learn the offset again (or create again when there is no upload yet).
    Retry,
    /// Give up.
    Fail,
}

fn next_after(e: &ClientError, request: Request) -> Next {
    match e {
        ClientError::Connect { .. }
        | ClientError::Network { .. }
        | ClientError::Protocol(_)
        | ClientError::NoContinue { .. }
        | ClientError::NoFinalResponse { .. } => Next::Retry,
        ClientError::Refused(r) => match r.status {
            409 if request == Request::Append => Next::Retry,
            423 | 429 | 500..=599 => Next::Retry,
            _ => Next::Fail,
        },
        // A certificate the client does not trust stays untrusted; a handshake cut short may
        // go through next time.
        ClientError::Tls { failure, .. } if failure.is_transient() => Next::Retry,
        ClientError::Tls { .. } | ClientError::Usage(_) | ClientError::File { .. } => Next::Fail,
    }
}

/// Where the file goes, from the URL: the stored path (below the appid segment) and its name,
/// decoded, for `Upload-Metadata`; and the file's download path on the node.
struct Destination {
    rel: String,
    filename: String,
    download: String,
}

fn destination(url: &str, appid: &str) -> Result<Destination, ClientError> {
    let bad = |why: &str| ClientError::Usage(format!("bad URL {url:?}: {why}"));
    let parsed = Url::parse(url).map_err(|e| bad(&e.to_string()))?;
    let segments: Vec<&str> = parsed
        .path_segments()
        .map(|s| s.skip(1).collect())
        .unwrap_or_default();
    if segments.iter().any(|s| s.is_empty()) || segments.is_empty() {
        return Err(bad("a resumable upload needs /APPID/PATH/NAME"));
    }
    let decoded: Vec<String> = segments
        .iter()
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8()
                .map(|c| c.into_owned())
                .map_err(|_| bad("the path is not UTF-8"))
        })
        .collect::<Result<_, _>>()?;
    Ok(Destination {
        rel: decoded.join("/"),
        filename: decoded.last().cloned().unwrap_or_default(),
        download: format!("/{appid}/{}", segments.join("/")),
    })
}

/// Uploads `path` through tus to the node of `opts.url`, reporting to `progress`.
pub fn upload_resumable(
    path: &Path,
    opts: &UploadOptions,
    resumable: &ResumableOptions,
    progress: &mut dyn Progress,
) -> Result<Completion, ClientError> {
    let result = run(path, opts, resumable, progress);
    progress.finish();
    result
}

fn run(
    path: &Path,
    opts: &UploadOptions,
    resumable: &ResumableOptions,
    progress: &mut dyn Progress,
) -> Result<Completion, ClientError> {
    if resumable.chunk_size == 0 {
        return Err(ClientError::Usage("--chunk-size must be at least 1".into()));
    }
    let target = Target::parse(&opts.url, opts.appid.as_deref())?;
    let trust = transport::trust_for(&target, opts.cacert.as_deref())?;
    let dest = destination(&opts.url, &target.appid)?;
    let (file, size) = open_regular(path, "Upload-Length")?;
    let metadata = metadata(&dest, opts.content_type.as_deref())?;
    let tus = Tus {
        target: &target,
        trust: trust.as_ref(),
        opts,
    };

    let mut upload: Option<String> = None;
    // The node's offset, when known; `None` after a failure until `HEAD` says.
    let mut offset: Option<u64> = None;
    let mut acknowledged = 0u64;
    let mut failures = 0u32;
    progress.waiting(size);
    loop {
        let (request, expected, step) = match (&upload, offset) {
            (None, _) => (Request::Create, None, tus.create(size, &metadata)),
            (Some(u), None) => (
                Request::Head,
                None,
                tus.offset(u).map(|o| Created::at(u, o)),
            ),
            (Some(u), Some(at)) if at >= size => return Ok(completion(&tus, u, &dest, size)),
            (Some(u), Some(at)) => {
                let span = Span {
                    file: &file,
                    path,
                    start: at,
                    len: resumable.chunk_size.min(size - at),
                };
                let end = at + span.len;
                let sent = tus.append(u, span, &mut |n| progress.advance(n));
                (Request::Append, Some(end), sent.map(|o| Created::at(u, o)))
            }
        };
        let e = match step {
            Ok(c) => {
                let at = c.offset.unwrap_or(0);
                if at > size {
                    return Err(ClientError::Protocol(format!(
                        "the node holds {at} bytes of a {size}-byte file"
                    )));
                }
                if upload.is_none() {
                    progress.sending(size);
                    failures = 0;
                }
                if expected != Some(at) {
                    progress.resumed(at);
                }
                if at > acknowledged {
                    failures = 0;
                }
                acknowledged = acknowledged.max(at);
                upload = Some(c.path);
                offset = Some(at);
                continue;
            }
            Err(e) => e,
        };
        match next_after(&e, request) {
            Next::Fail => {
                // A lost answer to the last append: the upload completed and its record went.
                if let (Some(_), ClientError::Refused(r)) = (&upload, &e) {
                    if matches!(r.status, 404 | 410)
                        && tus.stored_size(&dest.download).ok().flatten() == Some(size)
                    {
                        let u = upload.as_deref().unwrap_or_default();
                        return Ok(completion(&tus, u, &dest, size));
                    }
                }
                return Err(e);
            }
            Next::Retry if failures >= resumable.retries => return Err(e),
            Next::Retry => {
                failures += 1;
                let delay = resumable.delay(failures);
                progress.retrying(&e.to_string(), delay);
                std::thread::sleep(delay);
            }
        }
        offset = None;
    }
}

impl Created {
    fn at(path: &str, offset: u64) -> Created {
        Created {
            path: path.to_owned(),
            offset: Some(offset),
        }
    }
}

/// `filename`, `path` and (with `--content-type`) `filetype`.
fn metadata(dest: &Destination, content_type: Option<&str>) -> Result<String, ClientError> {
    let mut m = Metadata::default();
    let mut add = |k: &str, v: &str| {
        m.insert(k, v.as_bytes())
            .map_err(|e| ClientError::Usage(format!("Upload-Metadata {k}: {}", e.code())))
    };
    add("filename", &dest.filename)?;
    add("path", &dest.rel)?;
    if let Some(t) = content_type {
        add("filetype", t)?;
    }
    Ok(m.format())
}

/// What `upgate upload --resumable` prints: tus's last answer is a `204` without a body, so
/// the client says what it knows.
fn completion(tus: &Tus<'_>, upload: &str, dest: &Destination, size: u64) -> Completion {
    let json = serde_json::json!({
        "success": "true",
        "protocol": "tus",
        "path": dest.rel,
        "size": size,
        "upload": format!("{}{upload}", tus.target.origin()),
        "url": format!("{}{}", tus.target.origin(), dest.download),
    });
    Completion {
        status: 204,
        body: json.to_string(),
        json,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::Refusal;

    #[test]
    fn the_url_names_the_stored_path_decoded_and_the_download_path() {
        let d = destination("http://n:1/app1/photos/a%20b.jpg?x=1", "app1").unwrap();
        assert_eq!(d.rel, "photos/a b.jpg");
        assert_eq!(d.filename, "a b.jpg");
        assert_eq!(d.download, "/app1/photos/a%20b.jpg");
        let d = destination("http://n:1/app1/a.bin", "other").unwrap();
        assert_eq!(d.download, "/other/a.bin");
        assert!(destination("http://n:1/app1/", "app1").is_err());
        assert!(destination("http://n:1/app1", "app1").is_err());
    }

    #[test]
    fn metadata_carries_filename_path_and_type() {
        let d = destination("http://n/app1/d/a.txt", "app1").unwrap();
        let m = metadata(&d, Some("text/plain")).unwrap();
        let parsed = Metadata::parse(m.as_bytes()).unwrap();
        assert_eq!(parsed.get("filename"), Some(&b"a.txt"[..]));
        assert_eq!(parsed.get("path"), Some(&b"d/a.txt"[..]));
        assert_eq!(parsed.get("filetype"), Some(&b"text/plain"[..]));
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let r = ResumableOptions::default();
        let ms: Vec<u128> = (1..=7).map(|n| r.delay(n).as_millis()).collect();
        assert_eq!(ms, [250, 500, 1000, 2000, 4000, 4000, 4000]);
        assert_eq!(r.delay(u32::MAX), r.max_delay);
    }

    #[test]
    fn breaks_and_busy_nodes_are_retried_refusals_are_final() {
        let refused = |status| ClientError::Refused(Refusal::from_answer(status, b"{}", true));
        let net = ClientError::Network {
            during: "x",
            source: std::io::ErrorKind::ConnectionReset.into(),
        };
        assert!(matches!(next_after(&net, Request::Append), Next::Retry));
        for s in [500, 503, 507, 423, 429] {
            assert!(matches!(
                next_after(&refused(s), Request::Append),
                Next::Retry
            ));
        }
        assert!(matches!(
            next_after(&refused(409), Request::Append),
            Next::Retry
        ));
        for s in [400, 403, 404, 410, 413, 415, 460] {
            assert!(matches!(
                next_after(&refused(s), Request::Append),
                Next::Fail
            ));
        }
        // At creation a 409 is a taken path, not an offset.
        assert!(matches!(
            next_after(&refused(409), Request::Create),
            Next::Fail
        ));
    }
}
