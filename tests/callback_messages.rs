//! What a failing callback tells whom, on a real node (a child process, its log captured) with
//! real applications on 127.0.0.1: the uploading client's JSON names no callback URL, host or
//! port (it cannot act on them, and they are the app's internals), while the operator's log has
//! a WARN line naming the callback, the cause and the upload id. A failing post-callback is
//! logged too.

mod support;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::callback_app::{Answer, CallbackApp};
use support::*;

const ADMIN: &str = "adm1n-t0ken";

/// `upgate serve` on a config file, its log (stderr) into a file.
struct LoggedNode {
    child: Child,
    addr: SocketAddr,
    log: std::path::PathBuf,
}

impl LoggedNode {
    fn start(data: &std::path::Path) -> LoggedNode {
        let config = data.with_extension("toml");
        std::fs::write(
            &config,
            format!(
                "listen = \"127.0.0.1:0\"\ndata_dir = \"{}\"\nthreads = 1\nadmin_token = \"{ADMIN}\"\n\
                 callback_timeout_ms = 500\noutbox_retry_max_ms = 60000\nlog_level = \"warn\"\n",
                data.display()
            ),
        )
        .unwrap();
        let log = data.with_extension("log");
        let mut child = Command::new(env!("CARGO_BIN_EXE_upgate"))
            .args(["serve", "--config"])
            .arg(&config)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("node starts");
        let mut out = child.stdout.take().unwrap();
        let mut line = Vec::new();
        let mut byte = [0u8; 1];
        while out.read(&mut byte).unwrap_or(0) == 1 && byte[0] != b'\n' {
            line.push(byte[0]);
        }
        let line = String::from_utf8(line).unwrap();
        let addr = line
            .rsplit("http://")
            .next()
            .and_then(|a| a.trim().parse().ok())
            .unwrap_or_else(|| panic!("no address in {line:?}"));
        LoggedNode { child, addr, log }
    }

    /// The log's lines that contain every one of `words`, waiting up to 5 s for one.
    fn lines_with(&self, words: &[&str]) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let text = std::fs::read_to_string(&self.log).unwrap_or_default();
            let found: Vec<String> = text
                .lines()
                .filter(|l| words.iter().all(|w| l.contains(w)))
                .map(str::to_owned)
                .collect();
            if !found.is_empty() || Instant::now() > deadline {
                return found;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl LoggedNode {
    /// After a passing test: the node stopped, its data, config and log removed.
    fn clean_up(self, data: &std::path::Path) {
        let log = self.log.clone();
        drop(self);
        let _ = std::fs::remove_dir_all(data);
        let _ = std::fs::remove_file(data.with_extension("toml"));
        let _ = std::fs::remove_file(log);
    }
}

impl Drop for LoggedNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn register(addr: SocketAddr, appid: &str, pre: &str, post: &str) {
    let body = serde_json::json!({
        "appid": appid, "callback_url_pre": pre, "callback_url_post": post,
    })
    .to_string();
    let (w, _) = exchange(
        addr,
        format!(
            "POST /upload/register HTTP/1.1\r\nHost: n\r\nAuthorization: Bearer {ADMIN}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    );
    assert_eq!(w.status, 200, "{}", String::from_utf8_lossy(&w.body));
}

fn upload(addr: SocketAddr, appid: &str) -> Wire {
    let mut s = connect(addr);
    let body = b"hello";
    let head = format!(
        "PUT /{appid}/f.txt HTTP/1.1\r\nHost: n\r\nExpect: 100-continue\r\nappid: {appid}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    let mut buf = Vec::new();
    let first = read_response(&mut s, &mut buf).expect("an answer to the head");
    if first.status != 100 {
        return first;
    }
    s.write_all(body).unwrap();
    read_response(&mut s, &mut buf).expect("a final answer")
}

#[test]
fn a_failing_pre_callback_tells_the_client_no_address_and_the_operator_everything() {
    let app = CallbackApp::start(0, |r| match r.path.as_str() {
        "/fails" => Answer::json(500, "boom"),
        "/slow" => Answer::ok().after(Duration::from_millis(1500)),
        _ => Answer::ok(),
    });
    let data = test_config().data_dir;
    let node = LoggedNode::start(&data);
    let port = app.addr.port().to_string();
    let cases = [
        (
            "closed",
            "http://127.0.0.1:9/pre".to_string(),
            502,
            "callback_failed",
            "Connection",
        ),
        ("fails", app.url("/fails"), 502, "callback_failed", "500"),
        ("slow", app.url("/slow"), 504, "callback_timeout", "in time"),
    ];
    for (appid, pre, status, code, cause) in &cases {
        register(node.addr, appid, pre, &app.url("/post"));
        let w = upload(node.addr, appid);
        let body = String::from_utf8_lossy(&w.body).into_owned();
        assert_eq!(
            (w.status, w.error_code().as_str()),
            (*status, *code),
            "{appid}: {body}"
        );
        let message = w.json()["message"].as_str().unwrap().to_owned();
        assert!(message.contains("pre-upload check"), "{appid}: {message}");
        for leak in [
            "http",
            "127.0.0.1",
            ":9",
            port.as_str(),
            "/pre",
            "/fails",
            "/slow",
            "os error",
        ] {
            assert!(
                !body.contains(leak),
                "{appid}: the client sees {leak:?}: {body}"
            );
        }
        // The operator's WARN line: which callback, why, which upload.
        let lines = node.lines_with(&["WARN", "request failed", &format!("appid=\"{appid}\"")]);
        assert_eq!(lines.len(), 1, "{appid}: {lines:?}");
        let line = &lines[0];
        assert!(line.contains("pre-upload callback"), "{line}");
        assert!(line.contains(cause), "{line}");
        assert!(line.contains("upload_id="), "{line}");
    }
    node.clean_up(&data);
}

#[test]
fn a_failing_post_callback_is_logged_with_its_event_app_and_cause() {
    let app = CallbackApp::accepting();
    let data = test_config().data_dir;
    let node = LoggedNode::start(&data);
    register(
        node.addr,
        "postfail",
        &app.url("/pre"),
        "http://127.0.0.1:9/post",
    );
    let w = upload(node.addr, "postfail");
    assert_eq!(w.status, 201, "{}", String::from_utf8_lossy(&w.body));
    assert_eq!(w.json()["callback"], "pending");
    let upload_id = w.json()["upload_id"].as_str().unwrap().to_owned();
    let lines = node.lines_with(&["WARN", "post-callback not delivered", &upload_id]);
    assert!(
        !lines.is_empty(),
        "no WARN line for the failed post-callback"
    );
    let line = &lines[0];
    for want in [
        format!("evt_{upload_id}"),
        "postfail".into(),
        "callback=\"post\"".into(),
        "connection failed".into(),
    ] {
        assert!(line.contains(&want), "{want:?} missing: {line}");
    }
    node.clean_up(&data);
}
