//! Per-app quotas end to end (contract "Quotas"): a real node, a real sled registry, real
//! files, a real application server on 127.0.0.1, raw-socket clients. Quotas are decided on the
//! head, before the pre-callback and any `100 Continue`; reservations come back when an upload
//! is vetoed or aborted; the stored bytes are recomputed from the files at every start.

mod support;

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

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

/// Registers `appid` (JSON) with the app's callbacks and `extra` fields.
fn register(addr: SocketAddr, appid: &str, app: &CallbackApp, extra: &str) -> String {
    let body = format!(
        r#"{{"appid":"{appid}","callback_url_pre":"{}","callback_url_post":"{}"{extra}}}"#,
        app.url("/pre"),
        app.url("/post")
    );
    let (w, _) = exchange(
        addr,
        format!(
            "POST /upload/register HTTP/1.1\r\nHost: n\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    );
    assert_eq!(w.status, 200, "{}", String::from_utf8_lossy(&w.body));
    w.json()["secret"].as_str().unwrap_or_default().to_owned()
}

/// A chunked upload (size unknown on the head), sent whole without waiting for 100.
fn upload_chunked(addr: SocketAddr, appid: &str, path: &str, body: &[u8]) -> Wire {
    let mut s = connect(addr);
    let mut buf = Vec::new();
    let mut req = format!(
        "PUT /{appid}/{path} HTTP/1.1\r\nHost: n\r\nExpect: 100-continue\r\nappid: {appid}\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    .into_bytes();
    s.write_all(&req).unwrap();
    let first = read_response(&mut s, &mut buf).expect("an answer to the head");
    if first.status != 100 {
        return first;
    }
    req.clear();
    req.extend_from_slice(format!("{:x}\r\n", body.len()).as_bytes());
    req.extend_from_slice(body);
    req.extend_from_slice(b"\r\n0\r\n\r\n");
    s.write_all(&req).unwrap();
    read_response(&mut s, &mut buf).expect("a final answer")
}

fn bytes_on_disk(dir: &Path) -> u64 {
    let mut total = 0;
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            total += if p.is_dir() {
                bytes_on_disk(&p)
            } else {
                std::fs::metadata(&p).map_or(0, |m| m.len())
            };
        }
    }
    total
}

fn metric(addr: SocketAddr, line_start: &str) -> Option<u64> {
    let (w, _) = exchange(addr, b"GET /metrics HTTP/1.1\r\nHost: n\r\n\r\n");
    String::from_utf8_lossy(&w.body)
        .lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[test]
fn concurrent_uploads_at_the_limit_never_exceed_it_on_disk() {
    let app = CallbackApp::start(0, |_| Answer::ok().after(Duration::from_millis(20)));
    let config = node_config(&app);
    let data_dir = config.data_dir.clone();
    let node = start(config);
    let addr = node.local_addr();
    // Room for 10 files of 1000 bytes; 24 clients race for it, half of them chunked (their
    // size is unknown until the body ends, so the commit decides).
    register(addr, "q1", &app, r#","quota_bytes":10000"#);
    let results: Vec<Wire> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..24)
            .map(|i| {
                s.spawn(move || {
                    let body = vec![b'x'; 1000];
                    match i % 2 {
                        0 => upload_expecting(addr, "q1", &format!("f{i}"), &body),
                        _ => upload_chunked(addr, "q1", &format!("f{i}"), &body),
                    }
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let stored = results.iter().filter(|w| w.status == 201).count();
    for w in results.iter().filter(|w| w.status != 201) {
        assert!(
            matches!(w.status, 403 | 413),
            "a refusal is the quota's: {} {}",
            w.status,
            String::from_utf8_lossy(&w.body)
        );
        if w.status == 403 {
            assert_eq!(w.error_code(), "quota_exceeded");
        }
    }
    let on_disk = bytes_on_disk(&data_dir.join("files/q1"));
    assert!(
        on_disk <= 10_000,
        "{on_disk} bytes stored over a quota of 10000"
    );
    assert_eq!(on_disk, stored as u64 * 1000);
    assert!(stored >= 1, "some uploads fit");
    // Nothing is left reserved once every upload ended.
    assert_eq!(
        metric(addr, "upgate_app_reserved_bytes{appid=\"q1\"}"),
        Some(0)
    );
    assert_eq!(
        metric(addr, "upgate_app_stored_bytes{appid=\"q1\"}"),
        Some(on_disk)
    );
    node.shutdown();
}

#[test]
fn over_the_quota_is_refused_on_the_head_before_the_pre_callback() {
    let app = CallbackApp::accepting();
    let node = start(node_config(&app));
    let addr = node.local_addr();
    register(addr, "q2", &app, r#","quota_bytes":"1K""#);
    let w = upload_expecting(addr, "q2", "big", &[b'x'; 1025]);
    assert_eq!(w.status, 403);
    assert_eq!(w.error_code(), "quota_exceeded");
    assert!(app.on("/pre").is_empty(), "the app was not asked");
    assert_eq!(
        upload_expecting(addr, "q2", "fits", &[b'x'; 1024]).status,
        201
    );
    // Full now: even one more byte is refused.
    assert_eq!(
        upload_expecting(addr, "q2", "more", b"x").error_code(),
        "quota_exceeded"
    );
    node.shutdown();
}

#[test]
fn a_vetoed_or_aborted_upload_gives_its_reservation_back() {
    let app = CallbackApp::start(0, |r| {
        if r.json()["path"].as_str().unwrap_or("").starts_with("veto") {
            Answer::json(200, r#"{"success":"false","reason":"no"}"#)
        } else {
            Answer::ok()
        }
    });
    let node = start(node_config(&app));
    let addr = node.local_addr();
    register(addr, "q3", &app, r#","quota_bytes":1000"#);
    assert_eq!(
        upload_expecting(addr, "q3", "veto-1", &[b'x'; 1000]).status,
        403
    );

    // Aborted: the client sends part of its body and goes away.
    let mut s = connect(addr);
    let mut buf = Vec::new();
    s.write_all(b"PUT /q3/gone HTTP/1.1\r\nHost: n\r\nExpect: 100-continue\r\nappid: q3\r\nContent-Length: 1000\r\n\r\n")
        .unwrap();
    assert_eq!(read_response(&mut s, &mut buf).unwrap().status, 100);
    s.write_all(&[b'x'; 10]).unwrap();
    drop(s);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while metric(addr, "upgate_app_reserved_bytes{appid=\"q3\"}") != Some(0) {
        assert!(
            std::time::Instant::now() < deadline,
            "reservation never released"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // The whole quota is free again.
    assert_eq!(
        upload_expecting(addr, "q3", "whole", &[b'x'; 1000]).status,
        201
    );
    node.shutdown();
}

#[test]
fn a_restart_keeps_the_accounting_right() {
    let app = CallbackApp::accepting();
    let config = node_config(&app);
    let node = start(config.clone());
    register(node.local_addr(), "q4", &app, r#","quota_bytes":1000"#);
    assert_eq!(
        upload_expecting(node.local_addr(), "q4", "a/b/one", &[b'x'; 600]).status,
        201
    );
    node.shutdown();

    let node = start(config);
    let addr = node.local_addr();
    assert_eq!(
        metric(addr, "upgate_app_stored_bytes{appid=\"q4\"}"),
        Some(600)
    );
    assert_eq!(
        upload_expecting(addr, "q4", "two", &[b'x'; 600]).error_code(),
        "quota_exceeded"
    );
    assert_eq!(
        upload_expecting(addr, "q4", "two", &[b'x'; 400]).status,
        201
    );
    node.shutdown();
}

#[test]
fn concurrency_and_rate_limits_answer_429_with_retry_after() {
    let app = CallbackApp::accepting();
    let node = start(node_config(&app));
    let addr = node.local_addr();
    register(addr, "q5", &app, r#","max_concurrent_uploads":2"#);
    // Two uploads in flight (accepted, body not sent yet).
    let mut held = Vec::new();
    for i in 0..2 {
        let mut s = connect(addr);
        let mut buf = Vec::new();
        s.write_all(format!("PUT /q5/held{i} HTTP/1.1\r\nHost: n\r\nExpect: 100-continue\r\nappid: q5\r\nContent-Length: 5\r\n\r\n").as_bytes())
            .unwrap();
        assert_eq!(read_response(&mut s, &mut buf).unwrap().status, 100);
        held.push((s, buf));
    }
    let pre_before = app.on("/pre").len();
    let w = upload_expecting(addr, "q5", "third", b"hello");
    assert_eq!(w.status, 429);
    assert_eq!(w.error_code(), "rate_limited");
    assert_eq!(w.header("retry-after"), Some("1"));
    assert_eq!(
        app.on("/pre").len(),
        pre_before,
        "refused before the pre-callback"
    );
    // One ends: a slot is free again.
    let (mut s, mut buf) = held.pop().unwrap();
    s.write_all(b"hello").unwrap();
    assert_eq!(read_response(&mut s, &mut buf).unwrap().status, 201);
    assert_eq!(upload_expecting(addr, "q5", "third", b"hello").status, 201);
    drop(held);

    register(addr, "q6", &app, r#","rate_per_s":0.5"#);
    // A burst of one (twice the rate, at least one), then one every two seconds.
    assert_eq!(upload_expecting(addr, "q6", "r1", b"x").status, 201);
    let w = upload_expecting(addr, "q6", "r2", b"x");
    assert_eq!((w.status, w.error_code().as_str()), (429, "rate_limited"));
    let after: u64 = w.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=2).contains(&after), "Retry-After {after}");
    assert!(metric(addr, "upgate_quota_refusals_total{quota=\"rate\"}").unwrap() >= 1);
    node.shutdown();
}

#[test]
fn resumable_uploads_count_against_the_quota() {
    let app = CallbackApp::accepting();
    let node = start(node_config(&app));
    let addr = node.local_addr();
    register(addr, "q7", &app, r#","quota_bytes":100"#);
    let create = |len: u64| {
        exchange(
            addr,
            format!("POST /upload/tus/q7/ HTTP/1.1\r\nHost: n\r\nTus-Resumable: 1.0.0\r\nUpload-Length: {len}\r\nUpload-Metadata: filename Zg==\r\nContent-Length: 0\r\n\r\n").as_bytes(),
        )
        .0
    };
    let w = create(101);
    assert_eq!((w.status, w.error_code().as_str()), (403, "quota_exceeded"));
    assert_eq!(create(100).status, 201);
    node.shutdown();
}

#[test]
fn deleting_files_or_the_app_frees_the_quota() {
    let app = CallbackApp::accepting();
    let node = start(node_config(&app));
    let addr = node.local_addr();
    let secret = register(addr, "q8", &app, r#","quota_bytes":1000"#);
    assert_eq!(upload_expecting(addr, "q8", "a", &[b'x'; 1000]).status, 201);
    assert_eq!(
        upload_expecting(addr, "q8", "b", b"x").error_code(),
        "quota_exceeded"
    );
    let (w, _) = exchange(
        addr,
        format!("DELETE /q8/a HTTP/1.1\r\nHost: n\r\nAuthorization: Bearer {secret}\r\n\r\n")
            .as_bytes(),
    );
    assert_eq!(w.status, 204);
    assert_eq!(upload_expecting(addr, "q8", "b", &[b'x'; 1000]).status, 201);
    // The app deleted and registered again starts from nothing stored.
    let (w, _) = exchange(
        addr,
        b"DELETE /upload/register/q8 HTTP/1.1\r\nHost: n\r\n\r\n",
    );
    assert_eq!(w.status, 200);
    register(addr, "q8", &app, r#","quota_bytes":1000"#);
    assert_eq!(
        metric(addr, "upgate_app_stored_bytes{appid=\"q8\"}"),
        Some(0)
    );
    assert_eq!(upload_expecting(addr, "q8", "c", &[b'x'; 1000]).status, 201);
    node.shutdown();
}
