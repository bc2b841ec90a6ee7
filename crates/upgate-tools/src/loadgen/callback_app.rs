//! A fast application server for benchmarks, on the shared [`AppServer`]: HTTP/1.1 keep-alive
//! on blocking sockets, one thread per connection from a cached pool (threads are reused across
//! connections, so a node that opens a connection per callback does not pay a thread spawn each
//! time).
//!
//! | request | answer |
//! |---|---|
//! | `POST /pre`, `POST /post` | `200 {"success":"true"}` (the node's pre- and post-callbacks) |
//! | `POST /pre/valid/{N}` | `200 {"success":"true","valid_for_s":N}`: a pre-callback answer that lets a resumable upload's appends skip the call for N seconds |
//! | `GET`/`POST /auth` (and `/auth/…`) | `200`, empty (nginx `auth_request`) |
//! | `POST /nginx-post` with `{"file":…}` | `201 {"success":"true","size":<the file's size>}`: nginx's post notification; the size comes from `stat` of the body file nginx stored, so the client's size check verifies that nginx kept the whole body |
//! | `POST /nginx-post` with `{"file":…,"form":"1"}` | the same for a stored `multipart/form-data` body (the load generator's form mode): the size is the file part's, found from the file's first and last bytes (its part headers and the closing delimiter), so the check verifies that nginx kept the whole form |
//! | anything else | `404` |

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use upgate_http::Method;

use crate::appserver::{AppServer, Options, Reply, Request};

/// How many requests of each kind the app answered.
#[derive(Debug, Default)]
pub struct Counters {
    pub pre: AtomicU64,
    pub post: AtomicU64,
    pub auth: AtomicU64,
    pub nginx_post: AtomicU64,
    pub other: AtomicU64,
}

/// A running callback app; stops accepting when dropped.
pub struct CallbackApp {
    pub counters: Arc<Counters>,
    server: AppServer,
}

/// The largest request body read (a callback's JSON, or nginx's notice).
const MAX_BODY: usize = 1 << 20;

impl CallbackApp {
    /// Binds `addr` (port 0 for any) and starts serving.
    pub fn start(addr: SocketAddr) -> io::Result<CallbackApp> {
        let counters = Arc::new(Counters::default());
        let options = Options {
            max_body: MAX_BODY,
            idle_timeout: None,
            name: "cbapp",
        };
        let server = {
            let counters = counters.clone();
            AppServer::start(addr, options, move |req: &Request| respond(req, &counters))?
        };
        Ok(CallbackApp { counters, server })
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// Blocks for as long as the app runs (until the process ends).
    pub fn wait(self) {
        self.server.wait();
    }
}

const SUCCESS: &str = r#"{"success":"true"}"#;

fn respond(req: &Request, counters: &Counters) -> Reply {
    let path = req.path();
    match (req.method(), path) {
        (Method::Post, "/pre") => {
            counters.pre.fetch_add(1, Ordering::Relaxed);
            Reply::json(200, SUCCESS)
        }
        (Method::Post, p) if p.starts_with("/pre/valid/") => {
            counters.pre.fetch_add(1, Ordering::Relaxed);
            match p["/pre/valid/".len()..].parse::<u64>() {
                Ok(n) => Reply::json(200, format!(r#"{{"success":"true","valid_for_s":{n}}}"#)),
                Err(_) => Reply::json(404, r#"{"success":"false","error":"not_found"}"#),
            }
        }
        (Method::Post, "/post") => {
            counters.post.fetch_add(1, Ordering::Relaxed);
            Reply::json(200, SUCCESS)
        }
        (Method::Get | Method::Post | Method::Head, p)
            if p == "/auth" || p.starts_with("/auth/") =>
        {
            counters.auth.fetch_add(1, Ordering::Relaxed);
            Reply::json(200, "")
        }
        (Method::Post, "/nginx-post") => {
            counters.nginx_post.fetch_add(1, Ordering::Relaxed);
            nginx_post(req.body.as_deref().unwrap_or_default())
        }
        _ => {
            counters.other.fetch_add(1, Ordering::Relaxed);
            Reply::json(404, r#"{"success":"false","error":"not_found"}"#)
        }
    }
}

/// nginx's post notification: `{"file": "<request_body_file>", …}`; answers with the file's size.
fn nginx_post(body: &[u8]) -> Reply {
    #[derive(serde::Deserialize)]
    struct Notice {
        file: String,
        #[serde(default)]
        form: String,
    }
    let Ok(notice) = serde_json::from_slice::<Notice>(body) else {
        return Reply::json(400, r#"{"success":"false","error":"bad_json"}"#);
    };
    let size = match std::fs::metadata(&notice.file) {
        Ok(m) if m.is_file() && notice.form.is_empty() => Some(m.len()),
        Ok(m) if m.is_file() => form_file_size(&notice.file, m.len()),
        _ => None,
    };
    match size {
        Some(size) => Reply::json(201, format!(r#"{{"success":"true","size":{size}}}"#)),
        None => Reply::json(500, r#"{"success":"false","error":"no_body_file"}"#),
    }
}

/// The size of the last part of a stored form (the load generator's: its file part is last):
/// from the end of that part's headers to the closing delimiter `\r\n--BOUNDARY--\r\n`.
fn form_file_size(path: &str, len: u64) -> Option<u64> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path).ok()?;
    let mut head = vec![0; 4096.min(len as usize)];
    f.read_exact(&mut head).ok()?;
    let part = memchr::memmem::find(&head, b"name=\"file\"")?;
    let start = part + memchr::memmem::find(&head[part..], b"\r\n\r\n")? + 4;
    let tail_len = 256.min(len);
    f.seek(SeekFrom::Start(len - tail_len)).ok()?;
    let mut tail = vec![0; tail_len as usize];
    f.read_exact(&mut tail).ok()?;
    let end = len - tail_len + memchr::memmem::rfind(&tail, b"\r\n--")? as u64;
    end.checked_sub(start as u64)
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::time::Duration;

    use super::*;

    fn call(addr: SocketAddr, raw: &str) -> String {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(raw.as_bytes()).unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    #[test]
    fn answers_callbacks_on_one_connection() {
        let app = CallbackApp::start("127.0.0.1:0".parse().unwrap()).unwrap();
        let out = call(
            app.addr(),
            "POST /pre HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}\
             POST /post HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}\
             GET /auth HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        );
        assert_eq!(out.matches("HTTP/1.1 200 OK").count(), 3, "{out}");
        assert_eq!(out.matches(SUCCESS).count(), 2, "{out}");
        assert_eq!(app.counters.pre.load(Ordering::Relaxed), 1);
        assert_eq!(app.counters.post.load(Ordering::Relaxed), 1);
        assert_eq!(app.counters.auth.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn nginx_post_reports_the_stored_size() {
        let app = CallbackApp::start("127.0.0.1:0".parse().unwrap()).unwrap();
        let file = std::env::temp_dir().join(format!("cbapp-test-{}", std::process::id()));
        std::fs::write(&file, vec![0u8; 1234]).unwrap();
        let body = format!(r#"{{"file":"{}"}}"#, file.display());
        let out = call(
            app.addr(),
            &format!(
                "POST /nginx-post HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            ),
        );
        std::fs::remove_file(&file).unwrap();
        assert!(out.starts_with("HTTP/1.1 201 Created"), "{out}");
        assert!(out.ends_with(r#"{"success":"true","size":1234}"#), "{out}");
    }

    #[test]
    fn nginx_post_of_a_form_reports_its_file_part() {
        let file = std::env::temp_dir().join(format!("cbapp-form-{}", std::process::id()));
        let form = b"--XY\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\na/b.bin\r\n\
                     --XY\r\nContent-Disposition: form-data; name=\"file\"; filename=\"b.bin\"\r\n\r\n\
                     0123456789\r\n--XY--\r\n";
        std::fs::write(&file, form).unwrap();
        let size = form_file_size(file.to_str().unwrap(), form.len() as u64);
        std::fs::remove_file(&file).unwrap();
        assert_eq!(size, Some(10));
    }
}
