//! Every route's error cases, walked over one node (in-memory parts, see `support::pair`):
//! each error response has the contract's JSON shape (`success` "false", an `error` code, a
//! `message`), `application/json`, the status the contract gives it, and the faults that are
//! not the client's answer 5xx. They all come from one funnel, `upgate::error::respond`.

mod support;

use std::sync::Arc;
use std::time::Duration;

use support::pair::*;
use upgate::callback::Outcome;
use upgate::config::Config;
use upgate::registry::Registry;
use upgate::storage::MemoryStore;

/// One request and the error it must get.
struct Case {
    name: &'static str,
    request: &'static str,
    status: u16,
    code: &'static str,
    /// A field the response must carry (`Allow`, `Content-Range`, `Retry-After` …).
    header: Option<&'static str>,
}

const fn case(name: &'static str, request: &'static str, status: u16, code: &'static str) -> Case {
    Case {
        name,
        request,
        status,
        code,
        header: None,
    }
}

/// Sends `request` on a fresh connection and returns the one response.
fn ask(app: &Arc<upgate::app::App>, request: &'static str) -> Wire {
    let mut got = None;
    converse(app, |peer| {
        let got = &mut got;
        async move {
            peer.send(request);
            *got = Some(next_response(&peer, &mut 0).await);
        }
    });
    got.unwrap()
}

fn assert_contract_error(name: &str, wire: &Wire, status: u16, code: &str) {
    assert_eq!(
        wire.status,
        status,
        "{name}: {}",
        String::from_utf8_lossy(&wire.body)
    );
    assert!(
        wire.head.contains("\r\nContent-Type: application/json\r\n"),
        "{name}: {}",
        wire.head
    );
    let v = wire.json();
    let obj = v
        .as_object()
        .unwrap_or_else(|| panic!("{name}: not an object"));
    let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(keys, ["error", "message", "success"], "{name}");
    assert_eq!(v["success"], "false", "{name}");
    assert_eq!(v["error"], code, "{name}");
    assert!(!v["message"].as_str().unwrap().is_empty(), "{name}");
}

#[test]
fn every_route_error_has_the_contract_shape_and_status() {
    let (registry, store, app_server) = parts();
    let script = Arc::new(|_: &str| ok());
    let config = Config {
        max_body_bytes: 1000,
        header_timeout_ms: 300,
        ..config()
    };
    let app = node(config, &registry, &store, app_server.answerer(script));
    // A stored file, for the download and overwrite cases.
    let put = "PUT /app1/have.txt HTTP/1.1\r\nHost: n\r\nappid: app1\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\nhello";
    converse(&app, |peer| async move {
        peer.send(put);
        let mut seen = 0;
        assert_eq!(next_response(&peer, &mut seen).await.status, 100);
        assert_eq!(next_response(&peer, &mut seen).await.status, 201);
    });

    let cases = [
        // The driver, before any route.
        case("request-line", "GARBAGE\r\n\r\n", 400, "bad_request_line"),
        case("two lengths", "PUT /app1/a HTTP/1.1\r\nHost: n\r\nappid: app1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400, "conflicting_content_length"),
        case("version", "GET / HTTP/2.0\r\nHost: n\r\n\r\n", 505, "version_not_supported"),
        // Routing.
        case("no route", "GET /nope HTTP/1.1\r\nHost: n\r\n\r\n", 404, "not_found"),
        Case { header: Some("Allow: GET, HEAD, POST, PUT, DELETE"), ..case("file method", "PATCH /app1/a.txt HTTP/1.1\r\nHost: n\r\nContent-Length: 0\r\n\r\n", 405, "method_not_allowed") },
        // Management: a delete without credentials.
        Case { header: Some("WWW-Authenticate: Bearer"), ..case("delete unauthenticated", "DELETE /app1/a.txt HTTP/1.1\r\nHost: n\r\n\r\n", 401, "unauthorized") },
        Case { header: Some("Allow: GET, HEAD"), ..case("health method", "POST /healthz HTTP/1.1\r\nHost: n\r\nContent-Length: 0\r\n\r\n", 405, "method_not_allowed") },
        case("expectation", "PUT /app1/a.txt HTTP/1.1\r\nHost: n\r\nappid: app1\r\nExpect: telepathy\r\nContent-Length: 1\r\n\r\n", 417, "expectation_failed"),
        // Uploads: the receive conditions.
        case("no expect", "PUT /app1/a.txt HTTP/1.1\r\nHost: n\r\nappid: app1\r\nContent-Length: 5\r\n\r\nhello", 400, "expect_required"),
        case("unknown app", "PUT /nobody/a.txt HTTP/1.1\r\nHost: n\r\nappid: nobody\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n", 404, "unknown_appid"),
        case("bad appid", "PUT /a%2Fb/a.txt HTTP/1.1\r\nHost: n\r\nappid: a%2Fb\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n", 400, "bad_appid"),
        case("traversal", "PUT /app1/x/%2e%2e/y HTTP/1.1\r\nHost: n\r\nappid: app1\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n", 400, "bad_path"),
        case("too large", "PUT /app1/big.bin HTTP/1.1\r\nHost: n\r\nappid: app1\r\nExpect: 100-continue\r\nContent-Length: 5000\r\n\r\n", 413, "too_large"),
        case("exists", "PUT /app1/have.txt HTTP/1.1\r\nHost: n\r\nappid: app1\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n", 409, "exists"),
        // Downloads.
        case("no file", "GET /app1/missing.txt HTTP/1.1\r\nHost: n\r\n\r\n", 404, "not_found"),
        Case { header: Some("Content-Range: bytes */5"), ..case("range", "GET /app1/have.txt HTTP/1.1\r\nHost: n\r\nRange: bytes=100-200\r\n\r\n", 416, "range_not_satisfiable") },
        case("download path", "GET /app1/x/%2e%2e/y HTTP/1.1\r\nHost: n\r\n\r\n", 400, "bad_path"),
        // Registration (the peer is not on loopback and no admin token is configured).
        case("register appid", "GET /upload/register/bad!id HTTP/1.1\r\nHost: n\r\n\r\n", 400, "bad_appid"),
        Case { header: Some("Allow: POST"), ..case("register method", "GET /upload/register HTTP/1.1\r\nHost: n\r\n\r\n", 405, "method_not_allowed") },
        case("register route", "GET /upload/register/a/b HTTP/1.1\r\nHost: n\r\n\r\n", 404, "not_found"),
        case("register auth", "POST /upload/register HTTP/1.1\r\nHost: n\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}", 403, "forbidden"),
    ];
    for c in &cases {
        let wire = ask(&app, c.request);
        assert_contract_error(c.name, &wire, c.status, c.code);
        if let Some(h) = c.header {
            assert!(
                wire.head.contains(h),
                "{}: no {h} in\n{}",
                c.name,
                wire.head
            );
        }
    }

    // A head that never ends: the driver's own timeout.
    let wire = ask(&app, "GET /healthz HTTP/1.1\r\nHost:");
    assert_contract_error("head timeout", &wire, 408, "header_timeout");
    // A body cut short by the client's close: `100 Continue` (the app accepted), then the
    // final answer for the incomplete body.
    let mut got = None;
    converse(&app, |peer| {
        let got = &mut got;
        async move {
            peer.send("PUT /app1/short.txt HTTP/1.1\r\nHost: n\r\nappid: app1\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
            let mut seen = 0;
            assert_eq!(next_response(&peer, &mut seen).await.status, 100);
            peer.send("he");
            peer.close();
            *got = Some(next_response(&peer, &mut seen).await);
        }
    });
    assert_contract_error("cut short", &got.unwrap(), 400, "incomplete_body");
}

#[test]
fn faults_that_are_not_the_clients_answer_5xx_with_the_contract_shape() {
    let registry = Registry::in_memory();
    register_app1(&registry);
    // The application fails or never answers: 502 / 504, blamed on the app.
    for (outcome, status, code) in [
        (
            Outcome::Answered {
                status: 500,
                body: vec![],
            },
            502,
            "callback_failed",
        ),
        (
            Outcome::ConnectFailed("refused".into()),
            502,
            "callback_failed",
        ),
        (Outcome::TimedOut, 504, "callback_timeout"),
    ] {
        let store = MemoryStore::new();
        let answer = outcome.clone();
        let app = node(
            config(),
            &registry,
            &store,
            AppServer::new().answerer(Arc::new(move |_| answer.clone())),
        );
        let wire = ask(&app, "PUT /app1/a.txt HTTP/1.1\r\nHost: n\r\nappid: app1\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n");
        assert_contract_error(code, &wire, status, code);
    }
    // The store fails mid-body: 500 `storage_failed`, nothing kept, the cause only in the log.
    let store = MemoryStore::new();
    store.fail_appends(libc::EIO);
    let app = node(
        config(),
        &registry,
        &store,
        AppServer::new().answerer(Arc::new(|_| ok())),
    );
    let mut got = None;
    converse(&app, |peer| {
        let got = &mut got;
        async move {
            let head = "PUT /app1/a.txt HTTP/1.1\r\nHost: n\r\nappid: app1\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n";
            *got = Some(send_after_continue(&peer, head, "hello").await);
        }
    });
    let wire = got.unwrap();
    assert_contract_error("storage", &wire, 500, "storage_failed");
    assert!(
        !String::from_utf8_lossy(&wire.body).contains("os error"),
        "no cause for the client"
    );
    assert!(store.is_empty());
    assert_eq!(store.open_uploads(), 0);
    // The callback queue is full: 503 with Retry-After, the node's own limit.
    let store = MemoryStore::new();
    let release = Arc::new(std::sync::Mutex::new(()));
    let held = release.lock().unwrap();
    let gate = release.clone();
    let pool = upgate::callback::CallbackPool::with_answerer(
        1,
        1,
        Duration::from_millis(500),
        AppServer::new().answerer(Arc::new(move |_| {
            let _wait = gate.lock();
            ok()
        })),
    )
    .unwrap();
    let app = upgate::app::App::new(
        config(),
        registry.clone(),
        upgate::storage::Store::Memory(store),
        pool,
    )
    .unwrap();
    // One job in the worker, one in the queue: the third is refused at once.
    let busy =
        upgate::callback::Job::registered("http://app.invalid/pre", vec![], "w1".into(), vec![]);
    let _in_worker = app.pool.submit(busy.clone()).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    let _queued = app.pool.submit(busy).unwrap();
    let wire = ask(&app, "PUT /app1/a.txt HTTP/1.1\r\nHost: n\r\nappid: app1\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n");
    assert_contract_error("queue full", &wire, 503, "callback_queue_full");
    assert!(wire.head.contains("Retry-After: 1"), "{}", wire.head);
    drop(held);
}
