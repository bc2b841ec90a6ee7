//! The app's view of its undelivered notifications, as an app and an operator see it: a real
//! node (the outbox log on disk, sled for the apps), a real application server on 127.0.0.1,
//! and raw HTTP. `GET /upload/outbox/{appid}` lists, `POST …/{event_id}/retry` sends now,
//! `DELETE …/{event_id}` drops; a notification undelivered for `notify_max_age_s` waits on the
//! dead list (across restarts) until retried; `upgate outbox list|retry|drop` does the same
//! from the command line.

mod support;

use std::io::Write;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::callback_app::{Answer, CallbackApp};
use support::*;
use upgate::config::Config;

const ADMIN: &str = "adm1n-t0ken";
/// Nothing listens here: connections are refused at once.
const CLOSED: &str = "http://127.0.0.1:9/post";
const BIN: &str = env!("CARGO_BIN_EXE_upgate");

/// An app whose `/post` answers 503 while `down` is set (and 200 otherwise); `/pre` accepts.
fn app_with_switch() -> (CallbackApp, Arc<AtomicBool>) {
    let down = Arc::new(AtomicBool::new(true));
    let flag = down.clone();
    let app = CallbackApp::start(0, move |r| {
        if r.path == "/post" && flag.load(Ordering::Relaxed) {
            Answer::json(503, r#"{"success":"false"}"#)
        } else {
            Answer::ok()
        }
    });
    (app, down)
}

fn config(app: &CallbackApp) -> Config {
    Config {
        admin_token: Some(ADMIN.into()),
        callback_allow: vec![app.addr.to_string(), "127.0.0.1:9".into()],
        callback_timeout_ms: 1000,
        outbox_retry_max_ms: 300,
        ..test_config()
    }
}

/// Registers (or re-registers) `appid` with the admin token; its secret when one was issued.
fn register(addr: SocketAddr, appid: &str, pre: &str, post: &str) -> Option<String> {
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
    w.json()["secret"].as_str().map(str::to_owned)
}

/// Uploads `body` to `/{appid}/{path}` with `Expect: 100-continue`.
fn upload(addr: SocketAddr, appid: &str, path: &str, body: &[u8]) -> Wire {
    let mut s = connect(addr);
    let head = format!(
        "PUT /{appid}/{path} HTTP/1.1\r\nHost: n\r\nExpect: 100-continue\r\nappid: {appid}\r\nContent-Length: {}\r\n\r\n",
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

/// `method path` with `Authorization: Bearer token` (none when `token` is `None`).
fn call(addr: SocketAddr, method: &str, path: &str, token: Option<&str>) -> Wire {
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    exchange(
        addr,
        format!("{method} {path} HTTP/1.1\r\nHost: n\r\n{auth}Content-Length: 0\r\n\r\n")
            .as_bytes(),
    )
    .0
}

fn list(addr: SocketAddr, appid: &str, token: &str) -> serde_json::Value {
    let w = call(addr, "GET", &format!("/upload/outbox/{appid}"), Some(token));
    assert_eq!(w.status, 200, "{}", String::from_utf8_lossy(&w.body));
    w.json()
}

/// Polls the listing until `ok` holds (up to `within`); the last listing.
fn list_until(
    addr: SocketAddr,
    appid: &str,
    token: &str,
    within: Duration,
    ok: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + within;
    loop {
        let v = list(addr, appid, token);
        if ok(&v) || Instant::now() > deadline {
            return v;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn event_of(upload: &Wire) -> String {
    format!("evt_{}", upload.json()["upload_id"].as_str().unwrap())
}

#[test]
fn a_stuck_notification_is_listed_and_a_reregistration_redirects_it() {
    let app = CallbackApp::accepting();
    let node = start(config(&app));
    let addr = node.local_addr();
    let secret = register(addr, "app1", &app.url("/pre"), CLOSED).expect("a new secret");
    let other = register(addr, "app2", &app.url("/pre"), &app.url("/post")).unwrap();

    let up = upload(addr, "app1", "stuck.txt", b"stuck");
    assert_eq!(up.status, 201, "{}", String::from_utf8_lossy(&up.body));
    assert_eq!(up.json()["callback"], "pending");
    let event = event_of(&up);
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();

    // Listed with what an operator needs: where it goes, how often it failed and why.
    let v = list_until(addr, "app1", &secret, Duration::from_secs(10), |v| {
        v["pending"][0]["attempts"].as_u64() >= Some(2)
    });
    let p = &v["pending"][0];
    assert_eq!(p["event_id"], event.as_str(), "{v}");
    assert_eq!(p["upload_id"], up.json()["upload_id"], "{v}");
    assert_eq!(p["url"], CLOSED, "{v}");
    assert!(p["attempts"].as_u64().unwrap() >= 2, "{v}");
    let error = p["last_error"].as_str().unwrap();
    assert!(error.contains("connection failed"), "{v}");
    let created = p["created"].as_u64().unwrap();
    assert!(created.abs_diff(started) <= 2, "{v}");
    assert!(p["next_attempt"].as_u64().unwrap() >= created, "{v}");
    assert_eq!(v["dead"], serde_json::json!([]), "{v}");

    // Only the app's secret or the admin token; 401 otherwise, and an app sees only its own.
    let path = "/upload/outbox/app1";
    for token in [None, Some("whsec_wrong"), Some(other.as_str()), Some("")] {
        let w = call(addr, "GET", path, token);
        assert_eq!(
            w.status,
            401,
            "{token:?}: {}",
            String::from_utf8_lossy(&w.body)
        );
        assert_eq!(w.error_code(), "unauthorized");
    }
    let retry_path = format!("/upload/outbox/app1/{event}/retry");
    assert_eq!(call(addr, "POST", &retry_path, Some(&other)).status, 401);
    let theirs = format!("/upload/outbox/app2/{event}/retry");
    assert_eq!(call(addr, "POST", &theirs, Some(&other)).status, 404);
    assert_eq!(list(addr, "app2", &other)["pending"], serde_json::json!([]));
    assert_eq!(
        list(addr, "app1", ADMIN)["pending"][0]["event_id"],
        event.as_str()
    );

    // The right URL registered: the pending notification goes there, same webhook-id.
    assert!(register(addr, "app1", &app.url("/pre"), &app.url("/post")).is_none());
    let got = app.wait_for("/post", 1, Duration::from_secs(10));
    assert_eq!(got.len(), 1, "not redirected");
    assert_eq!(got[0].header("webhook-id"), Some(event.as_str()));
    assert_eq!(got[0].json()["path"], "stuck.txt");
    let v = list_until(addr, "app1", &secret, Duration::from_secs(5), |v| {
        v["pending"] == serde_json::json!([])
    });
    assert_eq!(v["pending"], serde_json::json!([]), "{v}");
    node.shutdown();
}

#[test]
fn retry_sends_now_and_drop_removes_for_good() {
    let (app, down) = app_with_switch();
    let node = start(Config {
        outbox_retry_max_ms: 60_000,
        ..config(&app)
    });
    let addr = node.local_addr();
    let secret = register(addr, "app1", &app.url("/pre"), &app.url("/post")).unwrap();

    let up = upload(addr, "app1", "later.txt", b"later");
    assert_eq!(up.json()["callback"], "pending");
    let event = event_of(&up);
    // Three failures: the next attempt is about 4 s away.
    let v = list_until(addr, "app1", &secret, Duration::from_secs(10), |v| {
        v["pending"][0]["attempts"].as_u64() >= Some(3)
    });
    assert_eq!(v["pending"][0]["attempts"], 3, "{v}");
    let next = v["pending"][0]["next_attempt"].as_u64().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(next >= now + 2, "next attempt {next}, now {now}: {v}");

    down.store(false, Ordering::Relaxed);
    let asked = Instant::now();
    let w = call(
        addr,
        "POST",
        &format!("/upload/outbox/app1/{event}/retry"),
        Some(&secret),
    );
    assert_eq!(w.status, 202, "{}", String::from_utf8_lossy(&w.body));
    let got = app.wait_for("/post", 4, Duration::from_secs(2));
    assert_eq!(got.len(), 4, "the retry did not come at once");
    assert!(got[3].at.duration_since(asked) < Duration::from_millis(1500));
    assert_eq!(got[3].header("webhook-id"), Some(event.as_str()));
    let v = list_until(addr, "app1", &secret, Duration::from_secs(5), |v| {
        v["pending"] == serde_json::json!([])
    });
    assert_eq!(v["pending"], serde_json::json!([]), "{v}");
    // Delivered: nothing left to retry.
    let w = call(
        addr,
        "POST",
        &format!("/upload/outbox/app1/{event}/retry"),
        Some(&secret),
    );
    assert_eq!((w.status, w.error_code().as_str()), (404, "not_found"));

    // Dropped: 204, gone from the list, never sent, and a second drop finds nothing.
    down.store(true, Ordering::Relaxed);
    let up = upload(addr, "app1", "dropped.txt", b"dropped");
    let event = event_of(&up);
    list_until(addr, "app1", &secret, Duration::from_secs(5), |v| {
        v["pending"][0]["attempts"].as_u64() >= Some(1)
    });
    let path = format!("/upload/outbox/app1/{event}");
    assert_eq!(call(addr, "DELETE", &path, None).status, 401);
    assert_eq!(call(addr, "DELETE", &path, Some(ADMIN)).status, 204);
    assert_eq!(
        list(addr, "app1", &secret)["pending"],
        serde_json::json!([])
    );
    assert_eq!(call(addr, "DELETE", &path, Some(&secret)).status, 404);
    let sent_before = app.on("/post").len();
    down.store(false, Ordering::Relaxed);
    std::thread::sleep(Duration::from_millis(1500));
    let after: Vec<_> = app.on("/post")[sent_before..]
        .iter()
        .filter(|r| r.header("webhook-id") == Some(event.as_str()))
        .cloned()
        .collect();
    assert!(after.is_empty(), "a dropped notification was sent");
    // Wrong methods and shapes.
    assert_eq!(
        call(addr, "PUT", "/upload/outbox/app1", Some(ADMIN)).status,
        405
    );
    assert_eq!(call(addr, "GET", &path, Some(ADMIN)).status, 405);
    assert_eq!(
        call(addr, "GET", "/upload/outbox/app1/a/b/c", Some(ADMIN)).status,
        404
    );
    node.shutdown();
}

/// A node as a child process on a config file (its metrics are its own), with its log.
struct Child {
    node: ChildNode,
}

fn config_file(dir: &std::path::Path, app: &CallbackApp, max_age_s: u64) -> std::path::PathBuf {
    let file = dir.with_extension("toml");
    std::fs::write(
        &file,
        format!(
            "listen = \"127.0.0.1:0\"\ndata_dir = \"{}\"\nthreads = 1\nadmin_token = \"{ADMIN}\"\n\
             callback_allow = [\"{}\"]\ncallback_timeout_ms = 1000\noutbox_retry_max_ms = 300\n\
             notify_max_age_s = {max_age_s}\nlog_level = \"warn\"\n",
            dir.display(),
            app.addr
        ),
    )
    .unwrap();
    file
}

impl Child {
    fn start(config: &std::path::Path) -> Child {
        Child {
            node: ChildNode::spawn(config),
        }
    }

    fn addr(&self) -> SocketAddr {
        self.node.addr
    }

    /// The value of a metric line `name` (exact series name, labels included).
    fn metric(&self, name: &str) -> Option<f64> {
        let w = call(self.addr(), "GET", "/metrics", None);
        String::from_utf8_lossy(&w.body)
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
    }

    fn metric_until(&self, name: &str, want: f64, within: Duration) -> Option<f64> {
        let deadline = Instant::now() + within;
        loop {
            let v = self.metric(name);
            if v == Some(want) || Instant::now() > deadline {
                return v;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

#[test]
fn an_expired_notification_waits_on_the_dead_list_across_restarts_until_retried() {
    let (app, down) = app_with_switch();
    let data = test_config().data_dir;
    // One file for every life of the node, the max age changed between them.
    let file = config_file(&data, &app, 2);
    let node = Child::start(&file);
    let addr = node.addr();
    let secret = register(addr, "app1", &app.url("/pre"), &app.url("/post")).unwrap();
    let up = upload(addr, "app1", "old.txt", b"old");
    assert_eq!(up.json()["callback"], "pending");
    let old = event_of(&up);

    let v = list_until(addr, "app1", &secret, Duration::from_secs(10), |v| {
        v["dead"].as_array().is_some_and(|d| d.len() == 1)
    });
    let dead = &v["dead"][0];
    assert_eq!(dead["event_id"], old.as_str(), "{v}");
    assert!(dead["next_attempt"].is_null(), "{v}");
    assert!(dead["last_error"].as_str().unwrap().contains("503"), "{v}");
    assert_eq!(v["pending"], serde_json::json!([]), "{v}");
    let attempts = dead["attempts"].as_u64().unwrap();
    assert_eq!(
        node.metric_until("upgate_outbox_dead", 1.0, Duration::from_secs(3)),
        Some(1.0)
    );
    assert_eq!(node.metric("upgate_outbox_dead_total"), Some(1.0));
    // Not retried by itself.
    let sent = app.on("/post").len();
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!(
        app.on("/post").len(),
        sent,
        "a dead notification was retried"
    );
    node.node.kill_9();

    // Restarted with a long max age: still dead, still not sent; a new failure is pending.
    config_file(&data, &app, 3600);
    let node = Child::start(&file);
    let addr = node.addr();
    let v = list(addr, "app1", &secret);
    assert_eq!(v["dead"][0]["event_id"], old.as_str(), "{v}");
    assert_eq!(v["dead"][0]["attempts"], attempts, "{v}");
    let up = upload(addr, "app1", "new.txt", b"new");
    assert_eq!(up.json()["callback"], "pending");
    let new = event_of(&up);
    node.node.kill_9();

    let node = Child::start(&file);
    let addr = node.addr();
    let v = list(addr, "app1", &secret);
    assert_eq!(v["dead"][0]["event_id"], old.as_str(), "{v}");
    assert_eq!(v["pending"][0]["event_id"], new.as_str(), "{v}");
    assert_eq!(
        node.metric_until("upgate_outbox_dead", 1.0, Duration::from_secs(3)),
        Some(1.0)
    );

    // The app is back: the pending one arrives by itself, the dead one only when retried.
    let before = app.on("/post").len();
    down.store(false, Ordering::Relaxed);
    let since = |id: &str| -> Vec<support::callback_app::Received> {
        app.on("/post")[before..]
            .iter()
            .filter(|r| r.header("webhook-id") == Some(id))
            .cloned()
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while since(&new).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        since(&new).len(),
        1,
        "the pending notification was not delivered"
    );
    std::thread::sleep(Duration::from_millis(800));
    assert!(
        since(&old).is_empty(),
        "a dead notification was sent unasked"
    );
    let w = call(
        addr,
        "POST",
        &format!("/upload/outbox/app1/{old}/retry"),
        Some(&secret),
    );
    assert_eq!(w.status, 202);
    let deadline = Instant::now() + Duration::from_secs(5);
    while since(&old).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let got = since(&old);
    assert_eq!(
        got.len(),
        1,
        "the retried dead notification was not delivered"
    );
    assert_eq!(got[0].json()["path"], "old.txt");
    let v = list_until(addr, "app1", &secret, Duration::from_secs(5), |v| {
        v["dead"] == serde_json::json!([]) && v["pending"] == serde_json::json!([])
    });
    assert_eq!(v["dead"], serde_json::json!([]), "{v}");
    assert_eq!(
        node.metric_until("upgate_outbox_dead", 0.0, Duration::from_secs(3)),
        Some(0.0)
    );
    assert_eq!(
        node.metric("upgate_outbox_api_total{action=\"retry\"}"),
        Some(1.0)
    );
    node.node.kill_9();
    let _ = std::fs::remove_dir_all(&data);
    let _ = std::fs::remove_file(&file);
}

fn cli(args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("upgate runs")
}

#[test]
fn the_cli_lists_retries_and_drops() {
    let (app, down) = app_with_switch();
    let node = start(Config {
        outbox_retry_max_ms: 60_000,
        ..config(&app)
    });
    let addr = node.local_addr();
    let server = format!("http://{addr}");
    let secret = register(addr, "app1", &app.url("/pre"), &app.url("/post")).unwrap();
    let a = event_of(&upload(addr, "app1", "a.txt", b"a"));
    let b = event_of(&upload(addr, "app1", "b.txt", b"b"));
    list_until(addr, "app1", &secret, Duration::from_secs(5), |v| {
        v["pending"]
            .as_array()
            .is_some_and(|p| p.len() == 2 && p.iter().all(|e| e["attempts"].as_u64() >= Some(1)))
    });
    let base = ["--server", &server, "--appid", "app1", "--token", &secret];

    let out = cli(&[&["outbox", "list"][..], &base].concat());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    for header in [
        "EVENT ID",
        "UPLOAD ID",
        "STATE",
        "ATTEMPTS",
        "LAST ERROR",
        "NEXT ATTEMPT",
    ] {
        assert!(lines[0].contains(header), "{table}");
    }
    for id in [&a, &b] {
        let row = lines
            .iter()
            .find(|l| l.starts_with(id.as_str()))
            .expect(&table);
        assert!(row.contains("pending") && row.contains("503"), "{table}");
    }

    let out = cli(&[&["outbox", "list"][..], &base, &["--json"]].concat());
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["pending"].as_array().unwrap().len(), 2, "{v}");

    down.store(false, Ordering::Relaxed);
    let out = cli(&[&["outbox", "retry"][..], &base, &[&a]].concat());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = app.wait_for("/post", 3, Duration::from_secs(3));
    assert!(
        got.iter()
            .any(|r| r.header("webhook-id") == Some(a.as_str())),
        "retry did not send"
    );
    down.store(true, Ordering::Relaxed);
    let out = cli(&[&["outbox", "drop"][..], &base, &[&b]].concat());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = cli(&[&["outbox", "drop"][..], &base, &[&b]].concat());
    assert_eq!(out.status.code(), Some(4), "a second drop: 404");
    assert!(String::from_utf8_lossy(&out.stdout).contains("not_found"));
    let out = cli(&[
        "outbox", "list", "--server", &server, "--appid", "app1", "--token", "nope",
    ]);
    assert_eq!(out.status.code(), Some(4), "401");
    let out = cli(&[&["outbox", "list"][..], &base].concat());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "no undelivered notifications\n"
    );
    node.shutdown();
}
