//! The whole upload flow without sockets or disk (see `support::pair`): accept, veto, an app
//! that never answers, a stalled body, a full store, and a crash between the commit and the
//! notification. Each test asserts the bytes the client reads, what the store holds, and which
//! callbacks the application saw.

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::pair::*;
use upgate::callback::Outcome;
use upgate::config::Config;
use upgate::registry::{OutboxJournal, Registry};
use upgate::storage::MemoryStore;

const HEAD_5: &str =
    "PUT /app1/docs/a.txt HTTP/1.1\r\nHost: n\r\nappid: app1\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n";

#[test]
fn accepted_upload_sends_100_only_after_the_app_accepts_and_notifies_once_stored() {
    let (registry, store, app_server) = parts();
    let app = node(
        config(),
        &registry,
        &store,
        app_server.answerer(Arc::new(|_| ok())),
    );
    let server = app_server.clone();
    converse(&app, |peer| async move {
        peer.send(HEAD_5);
        let mut seen = 0;
        let interim = next_response(&peer, &mut seen).await;
        assert_eq!(interim.status, 100);
        // The pre-callback came first, and carried the first file info.
        assert_eq!(server.paths(), ["pre"]);
        let first = &server.calls()[0].body;
        assert_eq!(
            (first["path"].as_str(), first["size"].as_u64()),
            (Some("docs/a.txt"), Some(5))
        );
        peer.send("hello");
        let done = next_response(&peer, &mut seen).await;
        assert_eq!(done.status, 201, "{}", String::from_utf8_lossy(&done.body));
        assert_eq!(done.json()["callback"], "delivered");
        assert_eq!(done.json()["size"], 5);
    });
    assert_eq!(
        store.get(&key("docs/a.txt")).as_deref(),
        Some(&b"hello"[..])
    );
    assert_eq!(store.open_uploads(), 0);
    let calls = app_server.calls();
    assert_eq!(app_server.paths(), ["pre", "post"]);
    assert_eq!(calls[1].body["size"], 5);
    assert!(calls[1].webhook_id.starts_with("evt_"));
    assert_eq!(
        registry.outbox().len(),
        0,
        "a delivered notification leaves the outbox"
    );
}

#[test]
fn vetoed_upload_gets_403_without_100_and_stores_nothing() {
    let (registry, store, app_server) = parts();
    let script = Arc::new(|_: &str| Outcome::Answered {
        status: 200,
        body: br#"{"success":"false","reason":"no uploads today"}"#.to_vec(),
    });
    let app = node(config(), &registry, &store, app_server.answerer(script));
    converse(&app, |peer| async move {
        peer.send(HEAD_5);
        let mut seen = 0;
        let wire = next_response(&peer, &mut seen).await;
        assert_eq!(wire.status, 403);
        assert_eq!(wire.json()["error"], "vetoed");
        assert_eq!(wire.json()["message"], "no uploads today");
        assert!(wire.head.contains("Connection: close"));
        assert!(!String::from_utf8_lossy(&peer.received()).contains("100 Continue"));
    });
    assert!(store.is_empty());
    assert_eq!(store.open_uploads(), 0);
    assert_eq!(
        app_server.paths(),
        ["pre"],
        "no post-callback for a vetoed upload"
    );
    assert_eq!(registry.outbox().len(), 0);
}

#[test]
fn an_app_that_never_answers_gets_504_within_the_bound() {
    let (registry, store, app_server) = parts();
    let config = Config {
        callback_timeout_ms: 100,
        ..config()
    };
    // The worker hangs far past the call timeout: the flow's own bound
    // (2 × callback_timeout + 1 s) must answer the client anyway.
    let script = Arc::new(|_: &str| {
        std::thread::sleep(Duration::from_secs(4));
        ok()
    });
    let app = node(config, &registry, &store, app_server.answerer(script));
    converse(&app, |peer| async move {
        let started = Instant::now();
        peer.send(HEAD_5);
        let wire = next_response(&peer, &mut 0).await;
        assert_eq!(
            (wire.status, wire.json()["error"].as_str()),
            (504, Some("callback_timeout"))
        );
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
    });
    assert!(store.is_empty());
    assert_eq!(store.open_uploads(), 0);
}

#[test]
fn a_stalled_body_gets_408_and_leaves_nothing() {
    let (registry, store, app_server) = parts();
    let app = node(
        config(),
        &registry,
        &store,
        app_server.answerer(Arc::new(|_| ok())),
    );
    converse(&app, |peer| async move {
        // Two bytes of five, then nothing: body_idle_timeout_ms is 300.
        let wire = send_after_continue(&peer, HEAD_5, "he").await;
        assert_eq!(
            (wire.status, wire.json()["error"].as_str()),
            (408, Some("body_timeout"))
        );
    });
    assert!(store.is_empty());
    assert_eq!(store.open_uploads(), 0, "the partial body is dropped");
    assert_eq!(app_server.paths(), ["pre"]);
}

/// A node with `config` and `app1` registered (its app accepting everything) over a store
/// with `bytes` of room.
fn node_with_room(
    config: Config,
    bytes: u64,
) -> (Registry, MemoryStore, AppServer, Arc<upgate::app::App>) {
    let (registry, app_server) = (Registry::in_memory(), AppServer::new());
    register_app1(&registry);
    let store = MemoryStore::with_capacity(bytes);
    let app = node(
        config,
        &registry,
        &store,
        app_server.answerer(Arc::new(|_| ok())),
    );
    (registry, store, app_server, app)
}

#[test]
fn a_full_store_answers_507_before_100_continue_or_midway_and_keeps_nothing() {
    // Declared size over the room: refused before the client sends a byte.
    let (registry, store, app_server, app) = node_with_room(config(), 4);
    converse(&app, |peer| async move {
        peer.send(HEAD_5);
        let wire = next_response(&peer, &mut 0).await;
        assert_eq!(
            (wire.status, wire.json()["error"].as_str()),
            (507, Some("insufficient_storage"))
        );
        assert!(!String::from_utf8_lossy(&peer.received()).contains("100 Continue"));
    });
    // A chunked body (no declared size) that outgrows the room midway.
    let chunked =
        "PUT /app1/docs/b.txt HTTP/1.1\r\nHost: n\r\nappid: app1\r\nExpect: 100-continue\r\n\
                   Transfer-Encoding: chunked\r\n\r\n";
    converse(&app, |peer| async move {
        let wire = send_after_continue(&peer, chunked, "3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n").await;
        assert_eq!(
            (wire.status, wire.json()["error"].as_str()),
            (507, Some("insufficient_storage"))
        );
    });
    assert!(store.is_empty());
    assert_eq!(store.open_uploads(), 0);
    assert_eq!(
        app_server.paths(),
        ["pre", "pre"],
        "no post-callback without a stored file"
    );
    assert_eq!(registry.outbox().len(), 0);
}

#[test]
fn a_crash_between_commit_and_notification_delivers_it_once_after_restart() {
    let (registry, store, app_server) = parts();
    // The first attempt of the post-callback hangs: the node "crashes" while waiting for it.
    let (hung_tx, hung_rx) = crossbeam_channel::bounded::<()>(1);
    let release = Arc::new(Mutex::new(hung_rx));
    let script = Arc::new(move |path: &str| {
        if path == "post" {
            let _ = release
                .lock()
                .unwrap()
                .recv_timeout(Duration::from_secs(10));
            return Outcome::Failed("the node crashed before this answer".into());
        }
        ok()
    });
    let app = node(config(), &registry, &store, app_server.answerer(script));
    let server = app_server.clone();
    tokio_uring::start(async {
        let (task, peer) = serve(&app);
        peer.send(HEAD_5);
        let mut seen = 0;
        assert_eq!(next_response(&peer, &mut seen).await.status, 100);
        peer.send("hello");
        // Committed and being notified: the object is visible and the post-callback is out.
        let deadline = Instant::now() + Duration::from_secs(5);
        while server.paths() != ["pre", "post"] {
            assert!(
                Instant::now() < deadline,
                "no post-callback: {:?}",
                server.paths()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // The crash: the request's task dies where it stands; the client never gets its 201.
        task.abort();
        let _ = task.await;
        assert!(!String::from_utf8_lossy(&peer.received()).contains("201"));
    });
    drop(hung_tx);
    assert_eq!(
        store.get(&key("docs/a.txt")).as_deref(),
        Some(&b"hello"[..])
    );
    assert_eq!(
        registry.outbox().len(),
        1,
        "the notification was recorded before the 201"
    );

    // The restart: the durable parts survive; the app now answers.
    let restarted = AppServer::new();
    let app = node(
        config(),
        &registry,
        &store,
        restarted.answerer(Arc::new(|_| ok())),
    );
    let reconciled = upgate::notify::reconcile(&registry, &app.store).unwrap();
    assert_eq!(
        (reconciled.kept, reconciled.dropped, reconciled.due_now),
        (1, 0, 1)
    );
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sender = upgate::notify::spawn(app.clone(), stop.clone()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !registry.outbox().is_empty() {
        assert!(
            Instant::now() < deadline,
            "never delivered after the restart"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // A few sender ticks more: nothing is sent twice.
    std::thread::sleep(Duration::from_millis(600));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    sender.join().unwrap();
    let calls = restarted.calls();
    assert_eq!(
        restarted.paths(),
        ["post"],
        "delivered exactly once: {calls:?}"
    );
    assert_eq!(
        calls[0].webhook_id,
        app_server.calls()[1].webhook_id,
        "the same event id"
    );
    assert_eq!(
        calls[0].body,
        app_server.calls()[1].body,
        "the exact body recorded"
    );
}

#[test]
fn a_tus_append_larger_than_the_room_left_answers_507_before_100_continue() {
    let (_registry, store, app_server, app) = node_with_room(config(), 4);
    let resource = Arc::new(Mutex::new(String::new()));
    let at = resource.clone();
    converse(&app, |peer| async move {
        let mut seen = 0;
        peer.send(
            "POST /upload/tus/app1/ HTTP/1.1\r\nHost: n\r\nTus-Resumable: 1.0.0\r\n\
             Upload-Length: 10\r\nUpload-Metadata: filename YS50eHQ=\r\nContent-Length: 0\r\n\r\n",
        );
        let created = next_response(&peer, &mut seen).await;
        assert_eq!(
            created.status,
            201,
            "{}",
            String::from_utf8_lossy(&created.body)
        );
        let location = created
            .head
            .lines()
            .find_map(|l| l.strip_prefix("Location: "))
            .expect("a Location")
            .to_owned();
        let path = location[location.find("/upload/tus/").unwrap()..].to_owned();
        // The append's 10 declared bytes do not fit in the 4 left: refused on its head,
        // before the client is told to send them.
        peer.send(format!(
            "PATCH {path} HTTP/1.1\r\nHost: n\r\nTus-Resumable: 1.0.0\r\n\
             Content-Type: application/offset+octet-stream\r\nUpload-Offset: 0\r\n\
             Expect: 100-continue\r\nContent-Length: 10\r\n\r\n"
        ));
        let refused = next_response(&peer, &mut seen).await;
        assert_eq!(
            (refused.status, refused.json()["error"].as_str()),
            (507, Some("insufficient_storage")),
            "{}",
            refused.head
        );
        assert!(!String::from_utf8_lossy(&peer.received()).contains("100 Continue"));
        *at.lock().unwrap() = path;
    });
    let path = resource.lock().unwrap().clone();
    converse(&app, |peer| async move {
        // Nothing of the refused append counts: the upload is still at 0.
        peer.send(format!(
            "HEAD {path} HTTP/1.1\r\nHost: n\r\nTus-Resumable: 1.0.0\r\n\r\n"
        ));
        let head = next_response(&peer, &mut 0).await;
        assert_eq!(head.status, 200, "{}", head.head);
        assert!(head.head.contains("Upload-Offset: 0\r\n"), "{}", head.head);
    });
    assert!(store.is_empty());
    assert_eq!(
        app_server.paths(),
        ["pre", "pre"],
        "asked at the creation and before the append; no post-callback"
    );
}

#[test]
fn a_creation_body_over_the_limit_gets_413_not_507_when_the_disk_holds_the_limit() {
    // The node takes at most 20 bytes per upload and the store holds 25: a deferred-length
    // creation whose body declares 30 reserves no more than the limit, so the client learns
    // what it can act on (too large), not that the disk is full.
    let limited = Config {
        max_body_bytes: 20,
        ..config()
    };
    let (_registry, store, _app_server, app) = node_with_room(limited, 25);
    converse(&app, |peer| async move {
        peer.send(
            "POST /upload/tus/app1/ HTTP/1.1\r\nHost: n\r\nTus-Resumable: 1.0.0\r\n\
             Upload-Defer-Length: 1\r\nUpload-Metadata: filename YS50eHQ=\r\n\
             Content-Type: application/offset+octet-stream\r\nContent-Length: 30\r\n\r\n\
             012345678901234567890123456789",
        );
        let refused = next_response(&peer, &mut 0).await;
        assert_eq!(
            (refused.status, refused.json()["error"].as_str()),
            (413, Some("too_large")),
            "{}",
            refused.head
        );
    });
    assert!(store.is_empty(), "nothing visible");
}

#[test]
fn a_form_whose_file_fits_is_stored_though_its_whole_body_would_not() {
    // The file part's room is reserved up to the form's Content-Length; a store with room for
    // the file but not for the whole form goes on without the reservation.
    let (_registry, store, app_server, app) = node_with_room(config(), 320);
    let data = "x".repeat(300);
    let body = format!(
        "--B\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\ndocs/f.bin\r\n\
         --B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f.bin\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n{data}\r\n--B--\r\n"
    );
    let head = format!(
        "POST /upload/form/app1 HTTP/1.1\r\nHost: n\r\nExpect: 100-continue\r\n\
         Content-Type: multipart/form-data; boundary=B\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    assert!(body.len() > 320);
    converse(&app, |peer| async move {
        peer.send(head);
        let mut seen = 0;
        let interim = next_response(&peer, &mut seen).await;
        assert_eq!(interim.status, 100, "{}", interim.head);
        peer.send(body);
        let done = next_response(&peer, &mut seen).await;
        assert_eq!(done.status, 201, "{}", String::from_utf8_lossy(&done.body));
    });
    assert_eq!(
        store.get(&key("docs/f.bin")).as_deref(),
        Some("x".repeat(300).as_bytes())
    );
    assert_eq!(app_server.paths(), ["pre", "post"]);
}
