//! One upload, in the client's order of the patent (steps 201, 204, 205, 206 seen from the
//! client): send the head with `Expect: 100-continue`; wait for `100 Continue`; on a final status
//! instead, stop without sending the body; with no answer at all within the timeout, fail rather
//! than send the body blindly; stream the file (`sendfile(2)` over TCP, read + write over TLS);
//! read the completion.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::error::{ClientError, Refusal};
use super::progress::Progress;
use super::sendfile::SendError;
use super::target::Target;
use super::transport::{self, Conn};
use super::trust::Trust;
use super::wire::{ReadError, ResponseHead, ResponseReader};

/// How long to wait for an early final response once the node stopped reading the body.
const EARLY_ANSWER_WAIT: Duration = Duration::from_secs(2);

/// What to upload where, and how long to wait for each phase.
#[derive(Debug, Clone)]
pub struct UploadOptions {
    /// `http://host[:port]/{appid}/{path}`, or `https://…`.
    pub url: String,
    /// For an `https://` URL: a PEM file of the CAs to trust instead of the system's store.
    pub cacert: Option<PathBuf>,
    /// The `appid` header; default: the URL's first path segment.
    pub appid: Option<String>,
    /// The `callback_url_pre` header (the node must allow its host).
    pub callback_pre: Option<String>,
    /// The `callback_url_post` header.
    pub callback_post: Option<String>,
    /// A `Content-Type` header; default: none (the node infers it from the extension).
    pub content_type: Option<String>,
    /// `PUT` instead of `POST`.
    pub put: bool,
    /// Send `Expect: 100-continue` and wait for `100 Continue` before the body (default true).
    pub expect_continue: bool,
    /// The longest wait for `100 Continue` (or any response head) after the request head.
    pub timeout_100: Duration,
    /// The longest wait for the final response after the body.
    pub response_timeout: Duration,
    pub connect_timeout: Duration,
    /// The longest time the socket may refuse to take more body bytes.
    pub stall_timeout: Duration,
}

impl UploadOptions {
    /// The defaults: POST, `Expect: 100-continue`, 10 s for the 100, 120 s for the final
    /// response, 10 s to connect, 30 s of write stall.
    pub fn new(url: impl Into<String>) -> Self {
        UploadOptions {
            url: url.into(),
            cacert: None,
            appid: None,
            callback_pre: None,
            callback_post: None,
            content_type: None,
            put: false,
            expect_continue: true,
            timeout_100: Duration::from_secs(10),
            response_timeout: Duration::from_secs(120),
            connect_timeout: Duration::from_secs(10),
            stall_timeout: Duration::from_secs(30),
        }
    }
}

/// A stored file: the node's 2xx answer.
#[derive(Debug, Clone)]
pub struct Completion {
    pub status: u16,
    /// The body as received: the contract's completion JSON.
    pub body: String,
    /// The body parsed (`Null` when it is not JSON).
    pub json: serde_json::Value,
}

impl Completion {
    /// The download URL the node reported.
    pub fn url(&self) -> Option<&str> {
        self.json.get("url").and_then(|v| v.as_str())
    }
}

/// The request head for a body of `size` bytes.
pub(crate) fn request_head(
    target: &Target,
    opts: &UploadOptions,
    size: u64,
) -> Result<String, ClientError> {
    let mut fields: Vec<(&str, &str)> = vec![("Host", &target.authority)];
    fields.push(("User-Agent", concat!("upgate/", env!("CARGO_PKG_VERSION"))));
    if opts.expect_continue {
        fields.push(("Expect", "100-continue"));
    }
    fields.push(("appid", &target.appid));
    if let Some(u) = &opts.callback_pre {
        fields.push(("callback_url_pre", u));
    }
    if let Some(u) = &opts.callback_post {
        fields.push(("callback_url_post", u));
    }
    if let Some(t) = &opts.content_type {
        fields.push(("Content-Type", t));
    }
    let size = size.to_string();
    fields.push(("Content-Length", &size));
    fields.push(("Connection", "close"));
    let method = if opts.put { "PUT" } else { "POST" };
    let mut head = format!("{method} {} HTTP/1.1\r\n", target.request_target);
    for (name, value) in fields {
        if value.bytes().any(|b| b < 0x20 && b != b'\t' || b == 0x7f) {
            return Err(ClientError::Usage(format!(
                "the {name} value {value:?} holds control characters"
            )));
        }
        head.push_str(name);
        head.push_str(": ");
        head.push_str(value);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    Ok(head)
}

/// Uploads `path` as `opts` says, reporting phases to `progress`.
pub fn upload(
    path: &Path,
    opts: &UploadOptions,
    progress: &mut dyn Progress,
) -> Result<Completion, ClientError> {
    let result = run(path, opts, progress);
    progress.finish();
    result
}

fn run(
    path: &Path,
    opts: &UploadOptions,
    progress: &mut dyn Progress,
) -> Result<Completion, ClientError> {
    let target = Target::parse(&opts.url, opts.appid.as_deref())?;
    let trust = transport::trust_for(&target, opts.cacert.as_deref())?;
    let (file, size) = open_regular(path, "Content-Length")?;
    let head = request_head(&target, opts, size)?;

    // 201: connect and send the head only.
    let conn = send_head(&target, trust.as_ref(), opts, &head)?;
    let mut reader = ResponseReader::new(conn);

    // 204: wait for the node's decision. No answer at all → fail; never send the body blindly.
    if opts.expect_continue {
        progress.waiting(size);
        let deadline = Instant::now() + opts.timeout_100;
        loop {
            let head = reader.head(deadline).map_err(|e| match e {
                ReadError::Timeout => ClientError::NoContinue {
                    waited: opts.timeout_100,
                },
                other => read_failure(other, "waiting for 100 Continue"),
            })?;
            if head.status == 100 {
                break;
            }
            if head.is_interim() {
                continue;
            }
            // A final status instead of 100: the body stays unsent.
            let deadline = Instant::now() + opts.response_timeout;
            return finish(&mut reader, &head, deadline, false, opts);
        }
    }

    // 205: the body, file → socket (inside the kernel over TCP, encrypted over TLS).
    progress.sending(size);
    let sent = reader
        .conn()
        .send_file_range(&file, 0, size, &mut |n| progress.advance(n));
    if let Err(e) = sent {
        return Err(match e {
            SendError::File(source) => ClientError::File {
                path: path.to_path_buf(),
                source,
            },
            SendError::Socket(source) => {
                // The node may have answered and stopped reading (a 413 on a too-long chunked
                // body, a storage error): report its answer rather than the broken pipe.
                if let Some(answer) = early_answer(&mut reader, opts) {
                    return answer;
                }
                let source = if source.kind() == io::ErrorKind::WouldBlock {
                    io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!(
                            "the node took no body bytes for {} ms",
                            opts.stall_timeout.as_millis()
                        ),
                    )
                } else {
                    source
                };
                ClientError::Network {
                    during: "sending the body",
                    source,
                }
            }
        });
    }

    // 206: the completion response.
    progress.sent();
    let deadline = Instant::now() + opts.response_timeout;
    loop {
        let head = reader.head(deadline).map_err(|e| match e {
            ReadError::Timeout => ClientError::NoFinalResponse {
                waited: opts.response_timeout,
            },
            other => read_failure(other, "waiting for the final response"),
        })?;
        if !head.is_interim() {
            return finish(&mut reader, &head, deadline, true, opts);
        }
    }
}

/// Opens the file to send and reads its size: a regular file only (the size goes in `field`).
pub(crate) fn open_regular(path: &Path, field: &str) -> Result<(File, u64), ClientError> {
    let file_error = |source: io::Error| ClientError::File {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(file_error)?;
    let meta = file.metadata().map_err(file_error)?;
    if !meta.is_file() {
        return Err(file_error(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("not a regular file (its size must be known for {field})"),
        )));
    }
    Ok((file, meta.len()))
}

/// Connects (TCP, then TLS for an `https://` target), with the stall timeout on writes, and
/// sends `head` alone.
pub(crate) fn send_head(
    target: &Target,
    trust: Option<&Trust>,
    opts: &UploadOptions,
    head: &str,
) -> Result<Conn, ClientError> {
    let mut conn = transport::connect(target, trust, opts.connect_timeout, opts.stall_timeout)?;
    conn.write_all(head.as_bytes())
        .and_then(|()| conn.flush())
        .map_err(|source| ClientError::Network {
            during: "sending the request head",
            source,
        })?;
    Ok(conn)
}

/// A final response that arrived while the body was being refused.
fn early_answer(
    reader: &mut ResponseReader,
    opts: &UploadOptions,
) -> Option<Result<Completion, ClientError>> {
    let deadline = Instant::now() + EARLY_ANSWER_WAIT;
    loop {
        let head = reader.head(deadline).ok()?;
        if !head.is_interim() {
            return Some(finish(reader, &head, deadline, true, opts));
        }
    }
}

/// Reads the body of a final response and turns it into the result.
fn finish(
    reader: &mut ResponseReader,
    head: &ResponseHead,
    deadline: Instant,
    body_sent: bool,
    opts: &UploadOptions,
) -> Result<Completion, ClientError> {
    let body = reader.body(head, deadline).map_err(|e| match e {
        ReadError::Timeout => ClientError::NoFinalResponse {
            waited: opts.response_timeout,
        },
        other => read_failure(other, "reading the response body"),
    })?;
    if (200..300).contains(&head.status) {
        let text = String::from_utf8_lossy(&body).into_owned();
        let json = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
        Ok(Completion {
            status: head.status,
            body: text,
            json,
        })
    } else {
        Err(ClientError::Refused(Refusal::from_answer(
            head.status,
            &body,
            body_sent,
        )))
    }
}

pub(crate) fn read_failure(e: ReadError, during: &'static str) -> ClientError {
    match e {
        ReadError::Closed => ClientError::Network {
            during,
            source: io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the node closed the connection without a complete answer",
            ),
        },
        ReadError::Io(source) => ClientError::Network { during, source },
        ReadError::Malformed(m) => ClientError::Protocol(m),
        // Callers map their own timeouts first.
        ReadError::Timeout => ClientError::Network {
            during,
            source: io::ErrorKind::TimedOut.into(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_head_carries_expect_appid_callbacks_and_length() {
        let t = Target::parse("http://[::1]:9/app1/a.txt", None).unwrap();
        let mut o = UploadOptions::new("unused");
        o.callback_pre = Some("http://app/pre".into());
        o.callback_post = Some("http://app/post".into());
        let head = request_head(&t, &o, 42).unwrap();
        assert!(head.starts_with("POST /app1/a.txt HTTP/1.1\r\nHost: [::1]:9\r\n"));
        for field in [
            "Expect: 100-continue\r\n",
            "appid: app1\r\n",
            "callback_url_pre: http://app/pre\r\n",
            "callback_url_post: http://app/post\r\n",
            "Content-Length: 42\r\n",
        ] {
            assert!(head.contains(field), "{field} in {head}");
        }
        assert!(head.ends_with("\r\n\r\n"));
        o.expect_continue = false;
        o.put = true;
        let head = request_head(&t, &o, 0).unwrap();
        assert!(head.starts_with("PUT "));
        assert!(!head.contains("Expect"));
    }

    #[test]
    fn header_injection_is_refused() {
        let t = Target::parse("http://h/app1/a", None).unwrap();
        let mut o = UploadOptions::new("unused");
        o.callback_pre = Some("http://x/\r\nEvil: 1".into());
        assert!(matches!(
            request_head(&t, &o, 1),
            Err(ClientError::Usage(_))
        ));
    }
}
