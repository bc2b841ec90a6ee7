//! One tus 1.0 upload on a keep-alive connection: the creation, then appends of `cfg.chunk`
//! bytes, each answered before the next is sent (as tus clients do). What the load generator's
//! `--mode tus` measures beside a single raw upload of the same size.

use super::client::{Conn, Failure};
use super::BenchConfig;

/// Uploads `cfg.size` pattern bytes to `path` (after the appid); the bytes sent.
pub fn upload(
    conn: &mut Conn,
    cfg: &BenchConfig,
    path: &str,
    pattern: &[u8],
    head: &mut Vec<u8>,
    scratch: &mut Vec<u8>,
) -> Result<u64, Failure> {
    use std::io::Write;
    let mut meta = upgate_http::Metadata::default();
    meta.insert("filename", path.as_bytes())
        .map_err(|_| Failure::BadResponse)?;
    head.clear();
    let _ = write!(
        head,
        "POST /upload/tus/{}/ HTTP/1.1\r\nHost: {}\r\nTus-Resumable: 1.0.0\r\nUpload-Length: {}\r\nUpload-Metadata: {}\r\nContent-Length: 0\r\n\r\n",
        cfg.appid,
        cfg.host,
        cfg.size,
        meta.format()
    );
    let location =
        exchange(conn, head, None, pattern, 201, scratch)?.ok_or(Failure::BadResponse)?;
    let resource = match location.find("/upload/tus/") {
        Some(i) => location[i..].to_owned(),
        None => return Err(Failure::BadResponse),
    };
    let mut offset = 0;
    while offset < cfg.size {
        let len = cfg.chunk.min(cfg.size - offset);
        head.clear();
        let _ = write!(
            head,
            "PATCH {resource} HTTP/1.1\r\nHost: {}\r\nTus-Resumable: 1.0.0\r\nContent-Type: application/offset+octet-stream\r\nUpload-Offset: {offset}\r\nContent-Length: {len}\r\n\r\n",
            cfg.host
        );
        exchange(conn, head, Some(len), pattern, 204, scratch)?;
        offset += len;
    }
    Ok(cfg.size)
}

/// Sends `head` and `body` pattern bytes, reads the answer; its `Location`.
fn exchange(
    conn: &mut Conn,
    head: &[u8],
    body: Option<u64>,
    pattern: &[u8],
    ok: u16,
    scratch: &mut Vec<u8>,
) -> Result<Option<String>, Failure> {
    conn.write_all(head)?;
    if let Some(len) = body {
        conn.write_body(pattern, len)?;
    }
    let answer = conn.read_head()?;
    conn.read_body(&answer, scratch, 1 << 20)?;
    if answer.status != ok {
        conn.closing = true;
        return Err(Failure::Status(answer.status));
    }
    if answer.close {
        conn.closing = true;
    }
    Ok(answer.location)
}
