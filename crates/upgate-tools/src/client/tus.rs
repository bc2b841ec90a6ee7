//! The tus 1.0 requests of a resumable upload (creation, `HEAD`, `PATCH`), each on its own
//! connection: a request that breaks leaves no half-read answer behind for the next one, and
//! the retry policy (`resumable.rs`) never has to ask whether a connection is still usable.

use std::fs::File;
use std::io;
use std::path::Path;
use std::time::{Duration, Instant};

use upgate_http::{parse_upload_offset, OFFSET_OCTET_STREAM, TUS_RESUMABLE};

use super::error::{ClientError, Refusal};
use super::sendfile::SendError;
use super::target::Target;
use super::transport::Conn;
use super::trust::Trust;
use super::upload::{read_failure, send_head, UploadOptions};
use super::wire::{ReadError, ResponseHead, ResponseReader};

/// How long to wait for an answer once the node stopped reading an append's body.
const EARLY_ANSWER_WAIT: Duration = Duration::from_secs(2);

/// The tus prefix of the node's routes.
pub(crate) const PREFIX: &str = "/upload/tus/";

/// Bytes of the file that go as a request's body.
pub(crate) struct Span<'f> {
    pub file: &'f File,
    pub path: &'f Path,
    pub start: u64,
    pub len: u64,
}

/// Speaks tus to one node.
pub(crate) struct Tus<'a> {
    pub target: &'a Target,
    /// `Some` for an `https://` node: the CAs its certificate must chain to.
    pub trust: Option<&'a Trust>,
    pub opts: &'a UploadOptions,
}

/// What a creation answered.
pub(crate) struct Created {
    /// The upload's path on the node we spoke to (from `Location`).
    pub path: String,
    /// `Upload-Offset`, when the creation carried or completed bytes (an empty file).
    pub offset: Option<u64>,
}

impl Tus<'_> {
    /// `POST /upload/tus/{appid}/` with `Upload-Length` and `Upload-Metadata`.
    pub fn create(&self, length: u64, metadata: &str) -> Result<Created, ClientError> {
        let path = format!("{PREFIX}{}/", self.target.appid);
        let fields = [
            ("Upload-Length", length.to_string()),
            ("Upload-Metadata", metadata.to_owned()),
        ];
        let (head, body) = self.request("POST", &path, &fields, None, &mut |_| {})?;
        expect(&head, &body, 201, false)?;
        let location = head
            .header("location")
            .ok_or_else(|| ClientError::Protocol("a 201 creation without Location".into()))?;
        let offset = head.header("upload-offset").map(offset_of).transpose()?;
        Ok(Created {
            path: location_path(location)?,
            offset,
        })
    }

    /// `HEAD` of the upload: the offset the node holds.
    pub fn offset(&self, upload: &str) -> Result<u64, ClientError> {
        let (head, body) = self.request("HEAD", upload, &[], None, &mut |_| {})?;
        expect(&head, &body, 200, false)?;
        offset_of(head.header("upload-offset").unwrap_or(""))
    }

    /// `PATCH` of `span` at `span.start`: the offset the node acknowledged.
    pub fn append(
        &self,
        upload: &str,
        span: Span<'_>,
        advance: &mut dyn FnMut(u64),
    ) -> Result<u64, ClientError> {
        let fields = [
            ("Content-Type", OFFSET_OCTET_STREAM.to_owned()),
            ("Upload-Offset", span.start.to_string()),
        ];
        let (head, body) = self.request("PATCH", upload, &fields, Some(span), advance)?;
        expect(&head, &body, 204, true)?;
        offset_of(head.header("upload-offset").unwrap_or(""))
    }

    /// The size of the stored file at `path` (a `HEAD` of its download URL), `None` when it is
    /// not there: how a client whose last answer was lost learns that its upload completed.
    pub fn stored_size(&self, path: &str) -> Result<Option<u64>, ClientError> {
        let (head, _) = self.request("HEAD", path, &[], None, &mut |_| {})?;
        if head.status != 200 {
            return Ok(None);
        }
        Ok(head
            .header("content-length")
            .and_then(|v| v.trim().parse().ok()))
    }

    /// One request on a fresh connection; the final answer's head and body (none for `HEAD`).
    fn request(
        &self,
        method: &str,
        path: &str,
        fields: &[(&str, String)],
        body: Option<Span<'_>>,
        advance: &mut dyn FnMut(u64),
    ) -> Result<(ResponseHead, Vec<u8>), ClientError> {
        let opts = self.opts;
        let expect_continue = opts.expect_continue && body.as_ref().is_some_and(|b| b.len > 0);
        let head = request_head(self.target, method, path, fields, &body, expect_continue)?;
        let conn = send_head(self.target, self.trust, opts, &head)?;
        let mut reader = ResponseReader::new(conn);
        let mut body_sent = false;
        if let Some(span) = body {
            if expect_continue {
                let deadline = Instant::now() + opts.timeout_100;
                let first =
                    next_head(&mut reader, deadline, "waiting for 100 Continue").map_err(|e| {
                        match e {
                            ClientError::NoFinalResponse { .. } => ClientError::NoContinue {
                                waited: opts.timeout_100,
                            },
                            other => other,
                        }
                    })?;
                if first.status != 100 {
                    // A final status instead of 100: the body stays unsent.
                    let body = read_body(&mut reader, &first, deadline, opts)?;
                    return Ok((first, body));
                }
            }
            body_sent = true;
            if let Err(e) = send_body(reader.conn(), &span, advance) {
                return match early_answer(&mut reader, opts) {
                    Some(answer) => answer,
                    None => Err(e),
                };
            }
        }
        let deadline = Instant::now() + opts.response_timeout;
        let during = if body_sent {
            "waiting for the answer to the body"
        } else {
            "waiting for the answer"
        };
        let head = loop {
            let head = next_head(&mut reader, deadline, during)?;
            if !head.is_interim() {
                break head;
            }
        };
        let body = if method == "HEAD" {
            Vec::new()
        } else {
            read_body(&mut reader, &head, deadline, opts)?
        };
        Ok((head, body))
    }
}

/// The request head: tus fields, `Content-Length` for a body, `Connection: close`.
fn request_head(
    target: &Target,
    method: &str,
    path: &str,
    fields: &[(&str, String)],
    body: &Option<Span<'_>>,
    expect_continue: bool,
) -> Result<String, ClientError> {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\n", target.authority);
    head.push_str(concat!(
        "User-Agent: upgate/",
        env!("CARGO_PKG_VERSION"),
        "\r\n"
    ));
    head.push_str(&format!("Tus-Resumable: {TUS_RESUMABLE}\r\n"));
    for (name, value) in fields {
        if value.bytes().any(|b| b < 0x20 && b != b'\t' || b == 0x7f) {
            return Err(ClientError::Usage(format!(
                "the {name} value {value:?} holds control characters"
            )));
        }
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if expect_continue {
        head.push_str("Expect: 100-continue\r\n");
    }
    if method != "HEAD" {
        let len = body.as_ref().map_or(0, |b| b.len);
        head.push_str(&format!("Content-Length: {len}\r\n"));
    }
    head.push_str("Connection: close\r\n\r\n");
    Ok(head)
}

fn send_body(
    conn: &mut Conn,
    span: &Span<'_>,
    advance: &mut dyn FnMut(u64),
) -> Result<(), ClientError> {
    let sent = conn.send_file_range(span.file, span.start, span.len, advance);
    sent.map_err(|e| match e {
        SendError::File(source) => ClientError::File {
            path: span.path.to_path_buf(),
            source,
        },
        SendError::Socket(source) => ClientError::Network {
            during: "sending an append",
            source: if source.kind() == io::ErrorKind::WouldBlock {
                io::Error::new(io::ErrorKind::TimedOut, "the node took no body bytes")
            } else {
                source
            },
        },
    })
}

/// The next response head, by `deadline` (a timeout is [`ClientError::NoFinalResponse`]).
fn next_head(
    reader: &mut ResponseReader,
    deadline: Instant,
    during: &'static str,
) -> Result<ResponseHead, ClientError> {
    let started = Instant::now();
    reader.head(deadline).map_err(|e| match e {
        ReadError::Timeout => ClientError::NoFinalResponse {
            waited: deadline.saturating_duration_since(started),
        },
        other => read_failure(other, during),
    })
}

fn read_body(
    reader: &mut ResponseReader,
    head: &ResponseHead,
    deadline: Instant,
    opts: &UploadOptions,
) -> Result<Vec<u8>, ClientError> {
    reader.body(head, deadline).map_err(|e| match e {
        ReadError::Timeout => ClientError::NoFinalResponse {
            waited: opts.response_timeout,
        },
        other => read_failure(other, "reading the response body"),
    })
}

/// A final answer that arrived while the node refused the rest of the body (a 413, a veto).
fn early_answer(
    reader: &mut ResponseReader,
    opts: &UploadOptions,
) -> Option<Result<(ResponseHead, Vec<u8>), ClientError>> {
    let deadline = Instant::now() + EARLY_ANSWER_WAIT;
    loop {
        let head = reader.head(deadline).ok()?;
        if !head.is_interim() {
            let body = read_body(reader, &head, deadline, opts);
            return Some(body.map(|b| (head, b)));
        }
    }
}

/// `Ok` when `head` is `status`; the node's refusal otherwise.
fn expect(
    head: &ResponseHead,
    body: &[u8],
    status: u16,
    body_sent: bool,
) -> Result<(), ClientError> {
    if head.status == status {
        return Ok(());
    }
    Err(ClientError::Refused(Refusal::from_answer(
        head.status,
        body,
        body_sent,
    )))
}

fn offset_of(value: &str) -> Result<u64, ClientError> {
    parse_upload_offset(value.as_bytes())
        .map_err(|_| ClientError::Protocol(format!("Upload-Offset {value:?}")))
}

/// `Location` as a path on the node we spoke to. The node names its public URL there, but an
/// upload's record lives on the node that took it, so the appends go where the creation went.
fn location_path(location: &str) -> Result<String, ClientError> {
    let path = if location.starts_with('/') {
        location.to_owned()
    } else {
        let url = url::Url::parse(location)
            .map_err(|e| ClientError::Protocol(format!("Location {location:?}: {e}")))?;
        url.path().to_owned()
    };
    if !path.starts_with(PREFIX) {
        return Err(ClientError::Protocol(format!(
            "Location {location:?} is not a tus upload"
        )));
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn location_is_kept_as_a_path_on_this_node() {
        assert_eq!(
            location_path("http://upgate.test/upload/tus/app1/u1").unwrap(),
            "/upload/tus/app1/u1"
        );
        assert_eq!(
            location_path("/upload/tus/app1/u1").unwrap(),
            "/upload/tus/app1/u1"
        );
        assert!(location_path("http://x/elsewhere").is_err());
    }

    #[test]
    fn an_append_head_names_offset_type_length_and_expect() {
        let t = Target::parse("http://127.0.0.1:9/app1/a.bin", None).unwrap();
        let file = File::open("/dev/null").unwrap();
        let span = Some(Span {
            file: &file,
            path: Path::new("/dev/null"),
            start: 10,
            len: 5,
        });
        let fields = [
            ("Content-Type", OFFSET_OCTET_STREAM.to_owned()),
            ("Upload-Offset", "10".to_owned()),
        ];
        let head = request_head(&t, "PATCH", "/upload/tus/app1/u1", &fields, &span, true).unwrap();
        assert!(head.starts_with("PATCH /upload/tus/app1/u1 HTTP/1.1\r\nHost: 127.0.0.1:9\r\n"));
        for field in [
            "Tus-Resumable: 1.0.0\r\n",
            "Content-Type: application/offset+octet-stream\r\n",
            "Upload-Offset: 10\r\n",
            "Expect: 100-continue\r\n",
            "Content-Length: 5\r\n",
        ] {
            assert!(head.contains(field), "{field} in {head}");
        }
        let head = request_head(&t, "HEAD", "/upload/tus/app1/u1", &[], &None, false).unwrap();
        assert!(!head.contains("Content-Length"));
    }
}
