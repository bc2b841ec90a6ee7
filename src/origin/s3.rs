//! The S3 calls the origin makes, through `rust-s3` in its synchronous mode (blocking HTTP on
//! the calling thread, no async runtime): only ever called from the origin's own threads, never
//! from an io_uring ring. Path-style requests, so any S3-compatible store (Garage, MinIO, Ceph)
//! works without DNS names per bucket.
//!
//! Why `rust-s3` and not `object_store`: `object_store` needs a tokio runtime of its own beside
//! the rings' tokio-uring ones; `rust-s3`'s sync mode is plain blocking calls, which is what
//! the origin's worker threads want, exactly like the callback workers' `ureq`.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use std::time::Duration;

use s3::creds::Credentials;
use s3::{Bucket, Region};

/// One request (one part of a multipart upload, or a whole GET) takes at most this long.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Files below this size go in one PUT; larger ones in 8 MiB parts (`rust-s3`'s part size),
/// read from the file one part at a time: never more than one part in memory.
const SINGLE_PUT: u64 = s3::bucket::CHUNK_SIZE as u64;

/// The object metadata naming the upload that wrote an object (`x-amz-meta-upload-id`): a
/// node that finds, after a crash, an object it put but never committed deletes it only if
/// no later upload replaced it.
const UPLOAD_ID: &str = "upload-id";

/// Why an origin call failed.
#[derive(Debug)]
pub enum S3Error {
    /// The origin could not be reached or answered 5xx: worth retrying later.
    Unavailable(String),
    /// The origin refused the request (4xx other than 404): a configuration fault
    /// (credentials, bucket), also retried, but named for the operator.
    Refused(u16, String),
    /// The local file could not be read or written.
    Local(io::Error),
}

impl std::fmt::Display for S3Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            S3Error::Unavailable(why) => write!(f, "origin unreachable: {why}"),
            S3Error::Refused(code, why) => write!(f, "origin refused the request: {code} {why}"),
            S3Error::Local(e) => write!(f, "local file: {e}"),
        }
    }
}

/// What the origin knows of an object.
#[derive(Debug, Clone)]
pub struct Head {
    pub size: u64,
    pub content_type: Option<String>,
    /// The upload that wrote the object (`x-amz-meta-upload-id`), when upgate wrote it.
    pub upload_id: Option<String>,
}

/// Where the origin is and who we are to it.
#[derive(Debug, Clone)]
pub struct S3Settings {
    pub endpoint: String,
    pub bucket: String,
    pub region: String,
    pub access_key: String,
    pub secret_key: String,
}

/// A bucket on the origin.
pub struct S3 {
    bucket: Box<Bucket>,
}

fn failed(e: s3::error::S3Error) -> S3Error {
    match e {
        s3::error::S3Error::Io(e) => S3Error::Local(e),
        s3::error::S3Error::HttpFailWithBody(code, body) if (400..500).contains(&code) => {
            S3Error::Refused(code, body)
        }
        other => S3Error::Unavailable(other.to_string()),
    }
}

/// A status the origin answered: 2xx is success, 5xx unavailable, else refused.
fn status(code: u16, body: &[u8]) -> Result<(), S3Error> {
    let text = || String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned();
    match code {
        200..=299 => Ok(()),
        500.. => Err(S3Error::Unavailable(format!("{code} {}", text()))),
        _ => Err(S3Error::Refused(code, text())),
    }
}

impl S3 {
    pub fn new(s: &S3Settings) -> Result<S3, String> {
        let region = Region::Custom {
            region: s.region.clone(),
            endpoint: s.endpoint.trim_end_matches('/').to_owned(),
        };
        let creds = Credentials::new(Some(&s.access_key), Some(&s.secret_key), None, None, None)
            .map_err(|e| format!("credentials: {e}"))?;
        let bucket = Bucket::new(&s.bucket, region, creds)
            .map_err(|e| format!("bucket {}: {e}", s.bucket))?
            .with_path_style()
            .with_request_timeout(REQUEST_TIMEOUT)
            .map_err(|e| format!("bucket {}: {e}", s.bucket))?;
        Ok(S3 { bucket })
    }

    /// Writes the file at `from` as `key`, naming `upload_id` in its metadata: one PUT for a
    /// small file, a multipart upload streamed from the file for a large one (aborted at the
    /// origin if a part fails).
    pub fn put_file(
        &self,
        key: &str,
        from: &Path,
        content_type: &str,
        upload_id: &str,
    ) -> Result<(), S3Error> {
        let mut headers = http::HeaderMap::new();
        let value = http::HeaderValue::from_str(upload_id)
            .map_err(|e| S3Error::Local(std::io::Error::other(e)))?;
        headers.insert(http::HeaderName::from_static("x-amz-meta-upload-id"), value);
        let bucket = self.bucket.with_extra_headers(headers).map_err(failed)?;
        let mut file = File::open(from).map_err(S3Error::Local)?;
        let size = file.metadata().map_err(S3Error::Local)?.len();
        if size < SINGLE_PUT {
            let mut body = Vec::with_capacity(size as usize);
            file.read_to_end(&mut body).map_err(S3Error::Local)?;
            let r = bucket
                .put_object_with_content_type(key, &body, content_type)
                .map_err(failed)?;
            return status(r.status_code(), r.as_slice());
        }
        // Our own parts, not rust-s3's stream upload: the size is known, so no empty last part
        // is ever sent for a file of an exact multiple of the part size (Garage refuses one).
        let started = bucket
            .initiate_multipart_upload(key, content_type)
            .map_err(failed)?;
        let (path, upload) = (started.key, started.upload_id);
        let sent = (|| {
            let mut parts = Vec::new();
            let mut chunk = vec![0u8; SINGLE_PUT as usize];
            let mut left = size;
            while left > 0 {
                let n = left.min(SINGLE_PUT) as usize;
                file.read_exact(&mut chunk[..n]).map_err(S3Error::Local)?;
                let number = parts.len() as u32 + 1;
                let part = bucket
                    .put_multipart_chunk(&chunk[..n], &path, number, &upload, content_type)
                    .map_err(failed)?;
                parts.push(part);
                left -= n as u64;
            }
            bucket
                .complete_multipart_upload(&path, &upload, parts)
                .map_err(failed)
                .and_then(|r| status(r.status_code(), r.as_slice()))
        })();
        if sent.is_err() {
            let _ = bucket.abort_upload(&path, &upload);
        }
        sent
    }

    /// What the origin holds at `key`; `None` when nothing.
    pub fn head(&self, key: &str) -> Result<Option<Head>, S3Error> {
        let (head, code) = self.bucket.head_object(key).map_err(failed)?;
        if code == 404 {
            return Ok(None);
        }
        status(code, b"")?;
        Ok(Some(Head {
            size: head.content_length.unwrap_or(0).max(0) as u64,
            content_type: head.content_type,
            upload_id: head.metadata.and_then(|mut m| m.remove(UPLOAD_ID)),
        }))
    }

    /// Streams the object at `key` into `to`; false when the origin has none.
    pub fn get_to(
        &self,
        key: &str,
        to: &mut (impl std::io::Write + Send),
    ) -> Result<bool, S3Error> {
        let code = self.bucket.get_object_to_writer(key, to).map_err(failed)?;
        if code == 404 {
            return Ok(false);
        }
        status(code, b"")?;
        Ok(true)
    }

    /// Deletes `key` (deleting what is not there is no error, as in S3).
    pub fn delete(&self, key: &str) -> Result<(), S3Error> {
        let r = self.bucket.delete_object(key).map_err(failed)?;
        match r.status_code() {
            404 => Ok(()),
            code => status(code, r.as_slice()),
        }
    }

    /// Deletes every object under `prefix`: how many.
    pub fn delete_prefix(&self, prefix: &str) -> Result<usize, S3Error> {
        let pages = self.bucket.list(prefix.to_owned(), None).map_err(failed)?;
        let mut n = 0;
        for object in pages.iter().flat_map(|p| p.contents.iter()) {
            self.delete(&object.key)?;
            n += 1;
        }
        Ok(n)
    }
}
