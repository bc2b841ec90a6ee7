//! `registry = "etcd"` end to end (contract "Many nodes"): a real etcd member and three real
//! nodes (child processes, each with its own data dir and sled cache) on loopback, a real
//! application server. A registration made at one node serves uploads at the others within
//! 1 s; changes and deletions follow; while etcd is down uploads for known apps go on,
//! registration answers 503 `registry_unavailable` and `/readyz` names etcd; after etcd comes
//! back, and after a node missed changes that etcd has since compacted away, every cache
//! catches up; with three etcd members, losing the one the nodes use changes nothing.

mod support;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use support::callback_app::CallbackApp;
use support::etcd::Etcd;
use support::*;

/// A node as a child process on its own config file, its registry in `etcd`.
struct EtcdNode {
    node: Option<ChildNode>,
    config: PathBuf,
}

impl EtcdNode {
    fn start(name: &str, etcd: &Etcd, app: &CallbackApp) -> EtcdNode {
        let dir = test_config().data_dir;
        std::fs::create_dir_all(&dir).unwrap();
        let config = dir.with_extension("toml");
        std::fs::write(
            &config,
            format!(
                r#"listen = "127.0.0.1:0"
data_dir = "{}"
threads = 1
fsync = false
node_id = "{name}"
registry = "etcd"
etcd_endpoints = {}
etcd_prefix = "/upgate-test/"
public_url = "http://uploads.example"
callback_allow = ["{}"]
callback_timeout_ms = 2000
log_level = "warn"
"#,
                dir.display(),
                etcd.endpoints_toml(),
                app.addr
            ),
        )
        .unwrap();
        EtcdNode {
            node: Some(ChildNode::spawn(&config)),
            config,
        }
    }

    fn addr(&self) -> SocketAddr {
        self.node.as_ref().expect("running").addr
    }

    fn stop(&mut self) {
        if let Some(node) = self.node.take() {
            node.kill_9();
        }
    }

    fn restart(&mut self) {
        assert!(self.node.is_none());
        self.node = Some(ChildNode::spawn(&self.config));
    }
}

impl Drop for EtcdNode {
    fn drop(&mut self) {
        self.stop();
    }
}

fn register(addr: SocketAddr, appid: &str, app: &CallbackApp, post_path: &str) -> Wire {
    register_form(addr, appid, &app.url("/pre"), &app.url(post_path))
}

fn unregister(addr: SocketAddr, appid: &str) -> Wire {
    exchange(
        addr,
        format!("DELETE /upload/register/{appid} HTTP/1.1\r\nHost: n\r\n\r\n").as_bytes(),
    )
    .0
}

fn get(addr: SocketAddr, path: &str) -> Wire {
    exchange(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: n\r\n\r\n").as_bytes(),
    )
    .0
}

/// Retries `upload` until it answers `status` (each attempt a new file name); how long it took.
fn until_upload_answers(
    addr: SocketAddr,
    appid: &str,
    status: u16,
    within: Duration,
) -> Result<Duration, Wire> {
    let started = Instant::now();
    let mut n = 0;
    loop {
        n += 1;
        let w = upload_expecting(addr, appid, &format!("probe-{n}.txt"), b"probe");
        if w.status == status {
            return Ok(started.elapsed());
        }
        if started.elapsed() > within {
            return Err(w);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_registration_at_one_node_reaches_every_node_within_a_second() {
    let etcd = Etcd::start();
    let app = CallbackApp::accepting();
    let nodes: Vec<EtcdNode> = ["a", "b", "c"]
        .iter()
        .map(|n| EtcdNode::start(n, &etcd, &app))
        .collect();
    let (a, b, c) = (nodes[0].addr(), nodes[1].addr(), nodes[2].addr());

    // Unknown everywhere first.
    assert_eq!(
        upload_expecting(b, "shared", "x.txt", b"x").error_code(),
        "unknown_appid"
    );

    let w = register(a, "shared", &app, "/post");
    assert_eq!(w.status, 200, "{}", String::from_utf8_lossy(&w.body));
    let secret = w.json()["secret"].as_str().unwrap().to_owned();
    for (name, addr) in [("b", b), ("c", c)] {
        let took = until_upload_answers(addr, "shared", 201, Duration::from_secs(1))
            .unwrap_or_else(|w| panic!("node {name} still answers {} after 1 s", w.status));
        eprintln!("registration at a served at {name} after {took:?}");
    }
    let w = upload_expecting(c, "shared", "from-c.txt", b"stored at c");
    assert_eq!(w.status, 201);
    assert_eq!(get(c, "/shared/from-c.txt").body, b"stored at c");
    // The callbacks name the node that took the upload; /metrics names the node.
    let named = |path: &str| {
        app.on(path)
            .iter()
            .map(|r| r.json())
            .filter(|j| j["path"] == "from-c.txt")
            .map(|j| j["node_id"].as_str().unwrap_or_default().to_owned())
            .collect::<Vec<_>>()
    };
    app.wait_for("/post", 3, Duration::from_secs(5));
    assert_eq!(named("/pre"), ["c"]);
    assert_eq!(named("/post"), ["c"]);
    // Every node announces the load balancer's URL (`public_url`), whichever took the upload.
    let urls: Vec<String> = app
        .on("/post")
        .iter()
        .map(|r| r.json())
        .map(|j| {
            format!(
                "{} {}",
                j["node_id"].as_str().unwrap(),
                j["url"].as_str().unwrap()
            )
        })
        .collect();
    assert!(urls
        .iter()
        .any(|u| u.starts_with("b http://uploads.example/shared/probe-")));
    assert!(
        urls.contains(&"c http://uploads.example/shared/from-c.txt".to_string()),
        "{urls:?}"
    );
    let metrics = String::from_utf8(get(c, "/metrics").body).unwrap();
    assert!(
        metrics.contains("upgate_node_info{node_id=\"c\"} 1"),
        "{metrics}"
    );

    // An update at b (a new post-callback path) is what a and c call next; the app keeps its
    // secret (one record, not one per node).
    let w = register(b, "shared", &app, "/post-v2");
    assert_eq!(w.status, 200);
    assert!(
        w.json()["secret"].is_null(),
        "an update issues no new secret"
    );
    std::thread::sleep(Duration::from_millis(300));
    let w = upload_expecting(a, "shared", "after-update.txt", b"v2");
    assert_eq!(w.status, 201);
    let calls = app.wait_for("/post-v2", 1, Duration::from_secs(5));
    assert_eq!(calls.len(), 1, "the post-callback went to the updated URL");
    let signed = calls[0]
        .header("webhook-signature")
        .unwrap_or_default()
        .to_owned();
    assert!(!signed.is_empty() && !secret.is_empty());

    // Files stored at a for the app...
    assert_eq!(
        upload_expecting(a, "shared", "at-a.txt", b"a's copy").status,
        201
    );
    assert_eq!(get(a, "/shared/at-a.txt").status, 200);

    // A deletion at c: a and b refuse the app within 1 s.
    assert_eq!(unregister(c, "shared").status, 200);
    for (name, addr) in [("a", a), ("b", b)] {
        let took = until_upload_answers(addr, "shared", 404, Duration::from_secs(1))
            .unwrap_or_else(|w| panic!("node {name} still answers {} after 1 s", w.status));
        eprintln!("deletion at c refused at {name} after {took:?}");
    }
    // ...go with it at a too (c removed its own; every node removes what it holds).
    let started = Instant::now();
    while get(a, "/shared/at-a.txt").status != 404 {
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "a still serves the deleted app's file"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(get(c, "/shared/from-c.txt").status, 404);
}

#[test]
fn while_etcd_is_down_uploads_go_on_and_registration_answers_503() {
    let mut etcd = Etcd::start();
    let app = CallbackApp::accepting();
    let a = EtcdNode::start("a", &etcd, &app);
    let b = EtcdNode::start("b", &etcd, &app);
    assert_eq!(register(a.addr(), "known", &app, "/post").status, 200);
    until_upload_answers(b.addr(), "known", 201, Duration::from_secs(1)).expect("b knows it");

    etcd.stop();
    // The known app uploads at both nodes.
    for addr in [a.addr(), b.addr()] {
        let w = upload_expecting(addr, "known", "during-outage.txt", b"kept");
        assert_eq!(w.status, 201, "{}", String::from_utf8_lossy(&w.body));
    }
    // Registration answers 503 registry_unavailable, with Retry-After, at once.
    let started = Instant::now();
    let w = register(a.addr(), "newcomer", &app, "/post");
    assert_eq!(w.status, 503, "{}", String::from_utf8_lossy(&w.body));
    assert_eq!(w.error_code(), "registry_unavailable");
    assert_eq!(w.header("retry-after"), Some("1"));
    assert!(
        !String::from_utf8_lossy(&w.body).contains("127.0.0.1"),
        "the client is not shown etcd's address"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    // /readyz says so, naming etcd.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let w = get(b.addr(), "/readyz");
        if w.status == 503 {
            assert!(w.json()["checks"]["etcd"]
                .as_str()
                .unwrap()
                .starts_with("failed"));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "readyz never noticed etcd is gone"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    etcd.resume();
    // Ready again, and registration works and reaches the other node.
    let deadline = Instant::now() + Duration::from_secs(10);
    while get(b.addr(), "/readyz").status != 200 {
        assert!(Instant::now() < deadline, "readyz never recovered");
        std::thread::sleep(Duration::from_millis(100));
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let w = register(a.addr(), "newcomer", &app, "/post");
        if w.status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "registration never recovered: {}",
            w.status
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    until_upload_answers(b.addr(), "newcomer", 201, Duration::from_secs(1)).unwrap_or_else(|w| {
        panic!(
            "b answers {} for the app registered after recovery",
            w.status
        )
    });
}

#[test]
fn a_node_that_missed_changes_catches_up_even_after_compaction() {
    let etcd = Etcd::start();
    let app = CallbackApp::accepting();
    let a = EtcdNode::start("a", &etcd, &app);
    let mut c = EtcdNode::start("c", &etcd, &app);
    assert_eq!(register(a.addr(), "old", &app, "/post").status, 200);
    until_upload_answers(c.addr(), "old", 201, Duration::from_secs(1)).expect("c knows old");

    // c is away while the registry changes: from its stored revision on restart.
    c.stop();
    assert_eq!(register(a.addr(), "while-away", &app, "/post").status, 200);
    c.restart();
    until_upload_answers(c.addr(), "while-away", 201, Duration::from_secs(2)).unwrap_or_else(|w| {
        panic!(
            "c answers {} for an app registered while it was away",
            w.status
        )
    });

    // Away again, and etcd compacts the history c would resume from: a full reload.
    c.stop();
    assert_eq!(unregister(a.addr(), "old").status, 200);
    assert_eq!(
        register(a.addr(), "after-compaction", &app, "/post").status,
        200
    );
    etcd.compact();
    c.restart();
    until_upload_answers(c.addr(), "after-compaction", 201, Duration::from_secs(3))
        .unwrap_or_else(|w| panic!("c answers {} after the compaction", w.status));
    until_upload_answers(c.addr(), "old", 404, Duration::from_secs(3))
        .unwrap_or_else(|w| panic!("c still serves the app deleted while away: {}", w.status));
    assert_eq!(
        upload_expecting(c.addr(), "while-away", "still.txt", b"y").status,
        201,
        "the full reload kept the apps etcd still holds"
    );
}

#[test]
fn with_three_etcd_members_losing_one_loses_nothing() {
    let mut etcd = Etcd::cluster(3);
    let app = CallbackApp::accepting();
    let a = EtcdNode::start("a", &etcd, &app);
    let b = EtcdNode::start("b", &etcd, &app);
    assert_eq!(register(a.addr(), "before", &app, "/post").status, 200);
    until_upload_answers(b.addr(), "before", 201, Duration::from_secs(1)).expect("b knows it");

    // The first endpoint is the member both nodes have been using: it goes.
    etcd.stop_member(0);
    let started = Instant::now();
    loop {
        let w = register(a.addr(), "after", &app, "/post");
        if w.status == 200 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "registration never moved to another member: {} {}",
            w.status,
            String::from_utf8_lossy(&w.body)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!(
        "registration answered 200 {:?} after the member was killed",
        started.elapsed()
    );
    // b's watch moves to another member and brings the change.
    until_upload_answers(b.addr(), "after", 201, Duration::from_secs(10)).unwrap_or_else(|w| {
        panic!(
            "b answers {} for an app registered after the loss",
            w.status
        )
    });
    eprintln!(
        "b serves it {:?} after the member was killed",
        started.elapsed()
    );
    assert_eq!(get(b.addr(), "/readyz").status, 200);
    assert_eq!(
        upload_expecting(b.addr(), "before", "still.txt", b"s").status,
        201
    );
}
