//! The patent's upload flow end to end: real node, real sled registry, real files, a real
//! application server on 127.0.0.1, and curl or raw sockets as the client.

mod support;

use std::io::Write;
use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use support::callback_app::{Answer, CallbackApp};
use support::*;
use upgate::config::Config;

fn node_config(app: &CallbackApp) -> Config {
    Config {
        callback_allow: vec![app.addr.to_string()],
        callback_timeout_ms: 2000,
        ..test_config()
    }
}

fn sha(data: &[u8]) -> String {
    format!("{:x}", Sha256::digest(data))
}

/// Uploads with Expect: 100-continue on `s`: head, wait for 100, body, final answer.
fn upload_on(
    s: &mut std::net::TcpStream,
    buf: &mut Vec<u8>,
    path: &str,
    appid: &str,
    extra: &str,
    body: &[u8],
) -> Wire {
    let head = format!(
        "PUT {path} HTTP/1.1\r\nHost: node\r\nExpect: 100-continue\r\nappid: {appid}\r\n{extra}Content-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    let first = read_response(s, buf).expect("an answer to the head");
    if first.status != 100 {
        return first;
    }
    s.write_all(body).unwrap();
    read_response(s, buf).expect("a final answer")
}

fn upload(addr: SocketAddr, path: &str, appid: &str, extra: &str, body: &[u8]) -> Wire {
    let mut s = connect(addr);
    upload_on(&mut s, &mut Vec::new(), path, appid, extra, body)
}

fn callbacks(app: &CallbackApp) -> String {
    format!(
        "callback_url_pre: {}\r\ncallback_url_post: {}\r\n",
        app.url("/pre"),
        app.url("/post")
    )
}

fn download(addr: SocketAddr, path: &str) -> Wire {
    exchange(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: node\r\n\r\n").as_bytes(),
    )
    .0
}

fn files_under(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(files_under(&p));
            } else {
                out.push(p.display().to_string());
            }
        }
    }
    out
}

#[test]
fn fig2_flow_with_callbacks_in_headers_and_curl() {
    let app = CallbackApp::accepting();
    let config = node_config(&app);
    let data_dir = config.data_dir.clone();
    let node = start(config);
    let addr = node.local_addr();
    let file = data_dir.join("upload-src.bin");
    let body: Vec<u8> = (0..1_500_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&file, &body).unwrap();

    let out = Command::new("curl")
        .args(["-s", "--max-time", "20", "-T"])
        .arg(&file)
        .args(["-H", "Expect: 100-continue", "-H", "appid: app1"])
        .args(["-H", &format!("callback_url_pre: {}", app.url("/pre"))])
        .args(["-H", &format!("callback_url_post: {}", app.url("/post"))])
        .arg(format!("http://{addr}/app1/path/filename.ext"))
        .args(["-w", "\n%{http_code}"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let (json, code) = text.rsplit_once('\n').unwrap();
    assert_eq!(code, "201", "{text}");
    let done: serde_json::Value = serde_json::from_str(json).unwrap();
    let url = format!("http://{addr}/app1/path/filename.ext");
    assert_eq!(done["success"], "true");
    assert_eq!(done["filename"], "filename.ext");
    assert_eq!(done["path"], "path/filename.ext");
    assert_eq!(done["size"], body.len());
    assert_eq!(done["url"], url);
    assert_eq!(done["callback"], "delivered");
    assert_eq!(done["app"], serde_json::json!({"success":"true"}));
    let upload_id = done["upload_id"].as_str().unwrap().to_string();

    let pre = app.on("/pre");
    let post = app.on("/post");
    assert_eq!((pre.len(), post.len()), (1, 1));
    let first = pre[0].json();
    assert_eq!(first["appid"], "app1");
    assert_eq!(first["filename"], "filename.ext");
    assert_eq!(first["path"], "path/filename.ext");
    assert_eq!(first["size"], body.len());
    assert_eq!(first["content_type"], "application/octet-stream");
    assert_eq!(first["upload_id"], upload_id.as_str());
    assert_eq!(first["client_ip"], "127.0.0.1");
    let second = post[0].json();
    assert_eq!(second["success"], "true");
    assert_eq!(second["url"], url);
    assert_eq!(second["size"], body.len());
    assert_eq!(second["upload_id"], upload_id.as_str());
    assert!(pre[0].at < post[0].at);
    assert!(post[0].header("webhook-id").is_some());

    let got = download(addr, "/app1/path/filename.ext");
    assert_eq!(got.status, 200);
    assert_eq!(sha(&got.body), sha(&body));
    assert_eq!(
        got.header("content-length"),
        Some(body.len().to_string().as_str())
    );
    node.shutdown();
}

#[test]
fn fig3_flow_with_registered_callbacks_signed_with_the_app_secret() {
    let app = CallbackApp::accepting();
    let node = start(test_config());
    let addr = node.local_addr();
    let form = format!(
        "appid=app3&callback_url_pre={}&callback_url_post={}",
        app.url("/pre"),
        app.url("/post")
    );
    let out = Command::new("curl")
        .args(["-s", "--max-time", "10", "-d", &form])
        .arg(format!("http://{addr}/upload/register"))
        .output()
        .unwrap();
    let reg: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(reg["success"], "true");
    let secret = reg["secret"].as_str().unwrap().to_string();

    // The client names no callbacks: the node takes them from the registry (patent Fig. 3).
    let body = b"hello, registered world".to_vec();
    let file = std::env::temp_dir().join(format!("upgate-fig3-{}.txt", std::process::id()));
    std::fs::write(&file, &body).unwrap();
    let out = Command::new("curl")
        .args(["-s", "--max-time", "20", "-T"])
        .arg(&file)
        .args(["-H", "Expect: 100-continue", "-H", "appid: app3"])
        .arg(format!("http://{addr}/app3/docs/a.txt"))
        .args(["-w", "\n%{http_code}"])
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&file);
    let text = String::from_utf8_lossy(&out.stdout);
    let (json, code) = text.rsplit_once('\n').unwrap();
    assert_eq!(code, "201", "{text}");
    let done: serde_json::Value = serde_json::from_str(json).unwrap();
    assert_eq!(done["callback"], "delivered");
    assert_eq!(done["size"], body.len());
    for r in [&app.on("/pre")[0], &app.on("/post")[0]] {
        let id = r.header("webhook-id").unwrap();
        let ts = r.header("webhook-timestamp").unwrap();
        let sig = r.header("webhook-signature").unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        upgate::callback::verify(
            std::slice::from_ref(&secret),
            id,
            ts,
            sig,
            &r.body,
            now,
            300,
        )
        .expect("signature verifies with the registered secret");
    }
    assert_eq!(
        app.on("/pre")[0].json()["content_type"],
        "text/plain; charset=utf-8"
    );
    assert_eq!(download(addr, "/app3/docs/a.txt").body, body);
    node.shutdown();
}

#[test]
fn continue_waits_for_a_slow_pre_callback_and_early_body_bytes_stay_unread() {
    let app = CallbackApp::start(0, |r| {
        if r.path == "/pre" {
            Answer::ok().after(Duration::from_millis(500))
        } else {
            Answer::ok()
        }
    });
    let node = start(node_config(&app));
    let addr = node.local_addr();
    let mut s = connect(addr);
    let body = vec![b'x'; 2048];
    let head = format!(
        "PUT /app1/slow.bin HTTP/1.1\r\nHost: n\r\nExpect: 100-continue\r\nappid: app1\r\n{}Content-Length: 2048\r\n\r\n",
        callbacks(&app)
    );
    let sent = Instant::now();
    s.write_all(head.as_bytes()).unwrap();
    let mut buf = Vec::new();
    let interim = read_response(&mut s, &mut buf).unwrap();
    let waited = sent.elapsed();
    assert_eq!(interim.status, 100);
    assert!(
        waited >= Duration::from_millis(500),
        "100 Continue after {waited:?}"
    );
    s.write_all(&body).unwrap();
    assert_eq!(read_response(&mut s, &mut buf).unwrap().status, 201);
    node.shutdown();
}

#[test]
fn veto_after_early_body_still_answers_403_and_stores_nothing() {
    let app = CallbackApp::start(0, |_| {
        Answer::json(200, r#"{"success":"false","reason":"not today"}"#)
            .after(Duration::from_millis(300))
    });
    let config = node_config(&app);
    let data_dir = config.data_dir.clone();
    let node = start(config);
    let mut s = connect(node.local_addr());
    let head = format!(
        "PUT /app1/early.bin HTTP/1.1\r\nHost: n\r\nExpect: 100-continue\r\nappid: app1\r\n{}Content-Length: 200000\r\n\r\n",
        callbacks(&app)
    );
    s.write_all(head.as_bytes()).unwrap();
    // Like curl after its 1 s wait: the body follows at once.
    s.write_all(&vec![b'y'; 200_000]).unwrap();
    let wire = read_response(&mut s, &mut Vec::new()).unwrap();
    assert_eq!(wire.status, 403);
    assert_eq!(wire.error_code(), "vetoed");
    assert!(wire.json()["message"]
        .as_str()
        .unwrap()
        .contains("not today"));
    assert_eq!(wire.header("connection"), Some("close"));
    assert!(files_under(&data_dir.join("files")).is_empty());
    assert!(files_under(&data_dir.join("tmp")).is_empty());
    assert!(app.on("/post").is_empty());
    node.shutdown();
}

/// Runs one upload against an app answering the pre-callback with `answer`; returns the
/// node's final answer and whether a 100 came first.
fn upload_with_pre(answer: Answer, config_tweak: impl FnOnce(&mut Config)) -> (Wire, bool, Config) {
    let app = CallbackApp::start(0, move |r| {
        if r.path == "/pre" {
            answer.clone()
        } else {
            Answer::ok()
        }
    });
    let mut config = node_config(&app);
    config_tweak(&mut config);
    let node = start(config.clone());
    let mut s = connect(node.local_addr());
    let head = format!(
        "PUT /app1/f.bin HTTP/1.1\r\nHost: n\r\nExpect: 100-continue\r\nappid: app1\r\n{}Content-Length: 5\r\n\r\n",
        callbacks(&app)
    );
    s.write_all(head.as_bytes()).unwrap();
    let mut buf = Vec::new();
    let mut wire = read_response(&mut s, &mut buf).unwrap();
    let continued = wire.status == 100;
    if continued {
        s.write_all(b"hello").unwrap();
        wire = read_response(&mut s, &mut buf).unwrap();
    }
    assert!(app.on("/post").is_empty() || continued);
    node.shutdown();
    (wire, continued, config)
}

#[test]
fn pre_callback_failures_map_to_the_contract_statuses() {
    let cases: Vec<(&str, Answer, u16, &str)> = vec![
        (
            "json false",
            Answer::json(200, r#"{"success":"false","reason":"quota"}"#),
            403,
            "vetoed",
        ),
        (
            "boolean false",
            Answer::json(200, r#"{"success":false}"#),
            403,
            "vetoed",
        ),
        (
            "4xx",
            Answer::json(404, r#"{"reason":"who?"}"#),
            403,
            "vetoed",
        ),
        ("5xx", Answer::json(500, "oops"), 502, "callback_failed"),
        (
            "garbage 2xx",
            Answer::json(200, "<html>"),
            502,
            "callback_failed",
        ),
        (
            "too slow",
            Answer::ok().after(Duration::from_millis(1500)),
            504,
            "callback_timeout",
        ),
    ];
    for (name, answer, status, code) in cases {
        let (wire, continued, config) = upload_with_pre(answer, |c| c.callback_timeout_ms = 500);
        assert_eq!(
            (wire.status, wire.error_code().as_str()),
            (status, code),
            "{name}"
        );
        assert!(
            !continued,
            "{name}: 100 Continue before a failed pre-callback"
        );
        assert_eq!(wire.header("connection"), Some("close"), "{name}");
        assert!(
            files_under(&config.data_dir.join("files")).is_empty(),
            "{name}"
        );
    }
    let (wire, ..) = upload_with_pre(
        Answer::json(403, r#"{"success":"false","reason":"quota"}"#),
        |_| {},
    );
    assert!(wire.json()["message"].as_str().unwrap().contains("quota"));
}

#[test]
fn app_down_is_502() {
    let app = CallbackApp::accepting();
    let config = node_config(&app);
    let node = start(config);
    let url = app.url("/pre");
    drop(app);
    std::thread::sleep(Duration::from_millis(100));
    let extra = format!("callback_url_pre: {url}\r\n");
    let wire = upload(node.local_addr(), "/app1/x.bin", "app1", &extra, b"abc");
    assert_eq!(
        (wire.status, wire.error_code().as_str()),
        (502, "callback_failed")
    );
    node.shutdown();
}

#[test]
fn full_callback_queue_answers_503_with_retry_after() {
    let app = CallbackApp::start(0, |_| Answer::ok().after(Duration::from_millis(1500)));
    let config = Config {
        callback_workers: 1,
        callback_queue: 1,
        callback_timeout_ms: 3000,
        ..node_config(&app)
    };
    let node = start(config);
    let addr = node.local_addr();
    let extra = callbacks(&app);
    // One upload occupies the worker, a second one the queue slot, in that order.
    let hold = |i: usize| {
        let extra = extra.clone();
        std::thread::spawn(move || {
            upload(addr, &format!("/app1/h{i}.bin"), "app1", &extra, b"z").status
        })
    };
    let wait = |what: &str, done: &dyn Fn() -> bool| {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !done() {
            assert!(Instant::now() < deadline, "{what}");
            std::thread::sleep(Duration::from_millis(5));
        }
    };
    let first = hold(0);
    wait("the first pre-callback never reached the app", &|| {
        app.on("/pre").len() == 1
    });
    let second = hold(1);
    wait("the second pre-callback never queued", &|| {
        node.app.pool.queue_depth() == 1
    });
    let holders = [first, second];
    let wire = upload(addr, "/app1/third.bin", "app1", &extra, b"z");
    assert_eq!(
        (wire.status, wire.error_code().as_str()),
        (503, "callback_queue_full")
    );
    assert_eq!(wire.header("retry-after"), Some("1"));
    let held: Vec<u16> = holders.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(held, vec![201, 201]);
    node.shutdown();
}

#[test]
fn client_that_disconnects_mid_body_leaves_nothing_and_no_post_callback() {
    let app = CallbackApp::accepting();
    let config = Config {
        body_idle_timeout_ms: 1000,
        ..node_config(&app)
    };
    let data_dir = config.data_dir.clone();
    let node = start(config);
    for close_how in ["drop", "shutdown"] {
        let mut s = connect(node.local_addr());
        let head = format!(
            "PUT /app1/cut-{close_how}.bin HTTP/1.1\r\nHost: n\r\nExpect: 100-continue\r\nappid: app1\r\n{}Content-Length: 100000\r\n\r\n",
            callbacks(&app)
        );
        s.write_all(head.as_bytes()).unwrap();
        assert_eq!(read_response(&mut s, &mut Vec::new()).unwrap().status, 100);
        s.write_all(&[1u8; 30_000]).unwrap();
        std::thread::sleep(Duration::from_millis(200));
        if close_how == "shutdown" {
            // A body shorter than Content-Length, then the client's FIN.
            s.shutdown(std::net::Shutdown::Write).unwrap();
            let _ = read_response(&mut s, &mut Vec::new());
        }
        drop(s);
    }
    std::thread::sleep(Duration::from_millis(500));
    assert!(files_under(&data_dir.join("files")).is_empty());
    assert!(
        files_under(&data_dir.join("tmp")).is_empty(),
        "temporary file left behind"
    );
    assert!(
        app.on("/post").is_empty(),
        "post-callback for a body that never arrived"
    );
    assert_eq!(app.on("/pre").len(), 2);
    node.shutdown();
}

#[test]
fn stalled_body_times_out_and_leaves_nothing() {
    let app = CallbackApp::accepting();
    let config = Config {
        body_idle_timeout_ms: 500,
        ..node_config(&app)
    };
    let data_dir = config.data_dir.clone();
    let node = start(config);
    let mut s = connect(node.local_addr());
    let head = format!(
        "PUT /app1/stall.bin HTTP/1.1\r\nHost: n\r\nExpect: 100-continue\r\nappid: app1\r\n{}Content-Length: 100\r\n\r\n",
        callbacks(&app)
    );
    s.write_all(head.as_bytes()).unwrap();
    let mut buf = Vec::new();
    assert_eq!(read_response(&mut s, &mut buf).unwrap().status, 100);
    s.write_all(b"only a little").unwrap();
    let wire = read_response(&mut s, &mut buf).unwrap();
    assert_eq!(
        (wire.status, wire.error_code().as_str()),
        (408, "body_timeout")
    );
    assert!(files_under(&data_dir.join("files")).is_empty());
    assert!(files_under(&data_dir.join("tmp")).is_empty());
    assert!(app.on("/post").is_empty());
    node.shutdown();
}

#[test]
fn receive_conditions_are_checked_in_the_contracts_order() {
    let app = CallbackApp::accepting();
    let config = Config {
        max_body_bytes: 1000,
        ..node_config(&app)
    };
    let node = start(config);
    let addr = node.local_addr();
    let cb = callbacks(&app);
    let cases: Vec<(&str, String, u16, &str)> = vec![
        ("no expect", format!("PUT /app1/a HTTP/1.1\r\nHost: n\r\nappid: app1\r\n{cb}Content-Length: 1\r\n\r\n"), 400, "expect_required"),
        ("other expect", format!("PUT /app1/a HTTP/1.1\r\nHost: n\r\nExpect: 200-ok\r\nappid: app1\r\n{cb}Content-Length: 1\r\n\r\n"), 417, "expectation_failed"),
        ("no appid", format!("PUT /app1/a HTTP/1.1\r\nHost: n\r\nExpect: 100-continue\r\n{cb}Content-Length: 1\r\n\r\n"), 400, "bad_appid"),
        ("two appids", format!("PUT /app1/a HTTP/1.1\r\nHost: n\r\nExpect: 100-continue\r\nappid: app1\r\nappid: app1\r\n{cb}Content-Length: 1\r\n\r\n"), 400, "bad_appid"),
        ("appid differs", format!("PUT /app1/a HTTP/1.1\r\nHost: n\r\nExpect: 100-continue\r\nappid: app2\r\n{cb}Content-Length: 1\r\n\r\n"), 400, "bad_appid"),
        ("dot dot", format!("PUT /app1/../x HTTP/1.1\r\nHost: n\r\nExpect: 100-continue\r\nappid: app1\r\n{cb}Content-Length: 1\r\n\r\n"), 400, "bad_path"),
        ("encoded dots", format!("PUT /app1/%2e%2e/x HTTP/1.1\r\nHost: n\r\nExpect: 100-continue\r\nappid: app1\r\n{cb}Content-Length: 1\r\n\r\n"), 400, "bad_path"),
        ("unknown app", "PUT /ghost/a HTTP/1.1\r\nHost: n\r\nExpect: 100-continue\r\nappid: ghost\r\nContent-Length: 1\r\n\r\n".to_string(), 404, "unknown_appid"),
        ("callback to 127.0.0.2", format!("PUT /app1/a HTTP/1.1\r\nHost: n\r\nExpect: 100-continue\r\nappid: app1\r\ncallback_url_pre: http://127.0.0.2:{}/pre\r\nContent-Length: 1\r\n\r\n", app.addr.port()), 404, "unknown_appid"),
        ("too large", format!("PUT /app1/a HTTP/1.1\r\nHost: n\r\nExpect: 100-continue\r\nappid: app1\r\n{cb}Content-Length: 1001\r\n\r\n"), 413, "too_large"),
    ];
    for (name, req, status, code) in cases {
        let (wire, mut s) = exchange(addr, req.as_bytes());
        assert_eq!(
            (wire.status, wire.error_code().as_str()),
            (status, code),
            "{name}"
        );
        assert_eq!(wire.header("connection"), Some("close"), "{name}");
        assert!(closed_by_server(&mut s, Duration::from_secs(3)), "{name}");
    }
    assert!(
        app.on("/pre").is_empty(),
        "a refused request reached the pre-callback"
    );
    node.shutdown();
}

#[test]
fn registered_app_with_a_disallowed_client_callback_gets_403() {
    let app = CallbackApp::accepting();
    let node = start(test_config());
    let addr = node.local_addr();
    let wire = register_form(addr, "app4", &app.url("/pre"), &app.url("/post"));

    assert_eq!(wire.status, 200);
    let extra = format!(
        "callback_url_pre: http://127.0.0.2:{}/pre\r\n",
        app.addr.port()
    );
    let wire = upload(addr, "/app4/a.bin", "app4", &extra, b"x");
    assert_eq!(
        (wire.status, wire.error_code().as_str()),
        (403, "callback_not_allowed")
    );
    assert!(app.received().is_empty());
    node.shutdown();
}

#[test]
fn existing_target_is_409_unless_overwrite() {
    let app = CallbackApp::accepting();
    let node = start(node_config(&app));
    let cb = callbacks(&app);
    assert_eq!(
        upload(node.local_addr(), "/app1/same.txt", "app1", &cb, b"one").status,
        201
    );
    let wire = upload(node.local_addr(), "/app1/same.txt", "app1", &cb, b"two");
    assert_eq!((wire.status, wire.error_code().as_str()), (409, "exists"));
    assert_eq!(
        app.on("/pre").len(),
        1,
        "a 409 is decided before the pre-callback"
    );
    assert_eq!(download(node.local_addr(), "/app1/same.txt").body, b"one");
    node.shutdown();

    let app = CallbackApp::accepting();
    let node = start(Config {
        overwrite: true,
        ..node_config(&app)
    });
    let cb = callbacks(&app);
    assert_eq!(
        upload(node.local_addr(), "/app1/same.txt", "app1", &cb, b"one").status,
        201
    );
    assert_eq!(
        upload(node.local_addr(), "/app1/same.txt", "app1", &cb, b"second").status,
        201
    );
    assert_eq!(
        download(node.local_addr(), "/app1/same.txt").body,
        b"second"
    );
    node.shutdown();
}

#[test]
fn concurrent_uploads_of_one_path_never_interleave() {
    let app = CallbackApp::accepting();
    let node = start(Config {
        overwrite: true,
        ..node_config(&app)
    });
    let addr = node.local_addr();
    let cb = callbacks(&app);
    let bodies: Vec<Vec<u8>> = (0..4u8).map(|i| vec![b'a' + i; 300_000]).collect();
    let handles: Vec<_> = bodies
        .iter()
        .cloned()
        .map(|b| {
            let cb = cb.clone();
            std::thread::spawn(move || upload(addr, "/app1/race.bin", "app1", &cb, &b).status)
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap(), 201);
    }
    let got = download(addr, "/app1/race.bin").body;
    assert!(
        bodies.contains(&got),
        "stored file is not any one whole upload"
    );
    node.shutdown();
}

#[test]
fn expect_optional_still_decides_before_reading_the_body() {
    let app = CallbackApp::start(0, |r| {
        if r.path == "/pre" {
            Answer::json(200, r#"{"success":"false","reason":"no"}"#)
        } else {
            Answer::ok()
        }
    });
    let node = start(Config {
        expect: upgate::config::ExpectPolicy::Optional,
        ..node_config(&app)
    });
    let head = format!(
        "PUT /app1/b.bin HTTP/1.1\r\nHost: n\r\nappid: app1\r\n{}Content-Length: 3\r\n\r\nabc",
        callbacks(&app)
    );
    let (wire, _) = exchange(node.local_addr(), head.as_bytes());
    assert_eq!(wire.status, 403);
    let app2 = CallbackApp::accepting();
    let head = format!(
        "PUT /app1/b.bin HTTP/1.1\r\nHost: n\r\nappid: app1\r\n{}Content-Length: 3\r\n\r\nabc",
        callbacks(&app2)
    );
    let node2 = start(Config {
        expect: upgate::config::ExpectPolicy::Optional,
        ..node_config(&app2)
    });
    let (wire, _) = exchange(node2.local_addr(), head.as_bytes());
    assert_eq!(
        wire.status, 201,
        "no 100 is sent to a client that did not ask, the body is read"
    );
    assert_eq!(download(node2.local_addr(), "/app1/b.bin").body, b"abc");
    node.shutdown();
    node2.shutdown();
}

#[test]
fn chunked_upload_is_stored_with_null_size_in_the_first_info() {
    let app = CallbackApp::accepting();
    let node = start(node_config(&app));
    let mut s = connect(node.local_addr());
    let head = format!(
        "POST /app1/c.txt HTTP/1.1\r\nHost: n\r\nExpect: 100-continue\r\nappid: app1\r\n{}Transfer-Encoding: chunked\r\n\r\n",
        callbacks(&app)
    );
    s.write_all(head.as_bytes()).unwrap();
    let mut buf = Vec::new();
    assert_eq!(read_response(&mut s, &mut buf).unwrap().status, 100);
    s.write_all(b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
        .unwrap();
    let wire = read_response(&mut s, &mut buf).unwrap();
    assert_eq!(wire.status, 201);
    assert_eq!(wire.json()["size"], 11);
    assert!(app.on("/pre")[0].json()["size"].is_null());
    assert_eq!(app.on("/post")[0].json()["size"], 11);
    assert_eq!(
        download(node.local_addr(), "/app1/c.txt").body,
        b"hello world"
    );
    node.shutdown();
}

#[test]
fn post_callback_down_answers_pending_then_delivers_the_recorded_notification() {
    let app = CallbackApp::accepting();
    let port = app.addr.port();
    let pre_url = app.url("/pre");
    let post_url = app.url("/post");
    // The app answers pre-callbacks, then goes away before the post-callback.
    let config = node_config(&app);
    let node = start(config.clone());
    let extra = format!("callback_url_pre: {pre_url}\r\ncallback_url_post: {post_url}\r\n");
    let gate = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    drop(app);
    let pre_only = {
        let gate = gate.clone();
        CallbackApp::start(port, move |r| {
            if r.path == "/post" && gate.load(std::sync::atomic::Ordering::Relaxed) {
                Answer::json(503, "down")
            } else {
                Answer::json(200, r#"{"success":"true","stored_as":"x"}"#)
            }
        })
    };
    let wire = upload(
        node.local_addr(),
        "/app1/later.bin",
        "app1",
        &extra,
        b"payload",
    );
    assert_eq!(wire.status, 201);
    assert_eq!(wire.json()["callback"], "pending");
    assert!(wire.json()["app"].is_null());
    let first = pre_only.on("/post");
    assert_eq!(first.len(), 1);
    gate.store(false, std::sync::atomic::Ordering::Relaxed);
    let got = pre_only.wait_for("/post", 2, Duration::from_secs(15));
    assert!(got.len() >= 2, "the notification was not retried");
    assert_eq!(
        got[1].body, first[0].body,
        "retry carries the recorded body"
    );
    assert_eq!(got[1].header("webhook-id"), first[0].header("webhook-id"));
    assert_eq!(got[1].json()["upload_id"], wire.json()["upload_id"]);
    node.shutdown();
}

#[test]
fn downloads_carry_type_etag_last_modified_and_answer_304() {
    let app = CallbackApp::accepting();
    let node = start(node_config(&app));
    let addr = node.local_addr();
    assert_eq!(
        upload(
            addr,
            "/app1/pic/p.png",
            "app1",
            &callbacks(&app),
            b"\x89PNG..."
        )
        .status,
        201
    );
    let got = download(addr, "/app1/pic/p.png");
    assert_eq!(got.status, 200);
    assert_eq!(got.header("content-type"), Some("image/png"));
    let etag = got.header("etag").unwrap().to_string();
    assert!(got.header("last-modified").is_some());
    // HEAD: the GET's fields, no body bytes, and the connection stays usable.
    let mut s = connect(addr);
    s.write_all(b"HEAD /app1/pic/p.png HTTP/1.1\r\nHost: n\r\n\r\nGET /healthz HTTP/1.1\r\nHost: n\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut raw = Vec::new();
    std::io::Read::read_to_end(&mut s, &mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw);
    let (head, rest) = text.split_once("\r\n\r\n").unwrap();
    assert!(
        head.starts_with("HTTP/1.1 200 OK") && head.contains("Content-Length: 7"),
        "{head}"
    );
    assert!(
        rest.starts_with("HTTP/1.1 200 OK"),
        "HEAD answer carried a body: {rest:?}"
    );
    let (nm, _) = exchange(
        addr,
        format!("GET /app1/pic/p.png HTTP/1.1\r\nHost: n\r\nIf-None-Match: {etag}\r\n\r\n")
            .as_bytes(),
    );
    assert_eq!(nm.status, 304);
    let lm = got.header("last-modified").unwrap();
    let (ims, _) = exchange(
        addr,
        format!("GET /app1/pic/p.png HTTP/1.1\r\nHost: n\r\nIf-Modified-Since: {lm}\r\n\r\n")
            .as_bytes(),
    );
    assert_eq!(ims.status, 304);
    assert_eq!(download(addr, "/app1/pic/missing.png").status, 404);
    node.shutdown();
}

#[test]
fn a_thousand_small_uploads_over_16_keep_alive_connections() {
    let app = CallbackApp::accepting();
    let node = start(Config {
        fsync: false,
        ..node_config(&app)
    });
    let addr = node.local_addr();
    let cb = callbacks(&app);
    let workers: Vec<_> = (0..16)
        .map(|w| {
            let cb = cb.clone();
            std::thread::spawn(move || {
                let mut s = connect(addr);
                let mut buf = Vec::new();
                let n = if w < 8 { 63 } else { 62 };
                let mut ok = 0;
                for i in 0..n {
                    let body = vec![(w * 16 + i) as u8; 1024];
                    let wire = upload_on(
                        &mut s,
                        &mut buf,
                        &format!("/app1/many/{w}-{i}.bin"),
                        "app1",
                        &cb,
                        &body,
                    );
                    assert_eq!(wire.status, 201, "{}", String::from_utf8_lossy(&wire.body));
                    assert_eq!(wire.header("connection"), None, "connection not kept alive");
                    ok += 1;
                }
                ok
            })
        })
        .collect();
    let total: usize = workers.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(total, 1000);
    assert_eq!(app.on("/pre").len(), 1000);
    assert_eq!(app.on("/post").len(), 1000);
    let ids: std::collections::HashSet<String> = app
        .on("/post")
        .iter()
        .map(|r| r.json()["upload_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 1000);
    node.shutdown();
}

/// Regression: an appid outside `[A-Za-z0-9_-]` in the path made the registry lookup fail and
/// answered 500 `internal`; it is the client's fault: 400 `bad_appid`, body unread.
#[test]
fn invalid_appid_in_the_path_is_400_bad_appid_not_500() {
    let node = start(test_config());
    for (path, header) in [
        ("/bad!id/a.txt", "bad!id"),
        ("/bad!id/a.txt", "app1"),
        ("/%ff/a.txt", "app1"),
    ] {
        let (wire, _) = exchange(
            node.local_addr(),
            format!(
                "PUT {path} HTTP/1.1\r\nHost: n\r\nExpect: 100-continue\r\nappid: {header}\r\nContent-Length: 5\r\n\r\n"
            )
            .as_bytes(),
        );
        assert_eq!(
            (wire.status, wire.error_code().as_str()),
            (400, "bad_appid"),
            "{path} {header}"
        );
    }
    node.shutdown();
}
