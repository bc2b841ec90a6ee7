//! What survives: a full disk, and `kill -9` between commit and post-callback delivery.

mod support;

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use support::callback_app::{Answer, CallbackApp};
use support::*;
use upgate::config::Config;
use upgate::registry::OutboxJournal;

fn upload(addr: SocketAddr, path: &str, extra: &str, body: &[u8]) -> Wire {
    let mut s = connect(addr);
    let head = format!(
        "PUT {path} HTTP/1.1\r\nHost: n\r\nExpect: 100-continue\r\nappid: app1\r\n{extra}Content-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    let mut buf = Vec::new();
    let first = read_response(&mut s, &mut buf).unwrap();
    if first.status != 100 {
        return first;
    }
    let _ = s.write_all(body);
    read_response(&mut s, &mut buf).expect("final answer")
}

fn entries(dir: &Path) -> usize {
    std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

#[test]
fn full_disk_answers_507_leaves_nothing_and_recovers() {
    let fs = Tmpfs::mount("6m");
    let app = CallbackApp::accepting();
    let node = start(Config {
        data_dir: fs.0.clone(),
        callback_allow: vec![app.addr.to_string()],
        ..test_config()
    });
    let cb = format!(
        "callback_url_pre: {}\r\ncallback_url_post: {}\r\n",
        app.url("/pre"),
        app.url("/post")
    );
    let wire = upload(
        node.local_addr(),
        "/app1/huge.bin",
        &cb,
        &vec![7u8; 8 << 20],
    );
    assert_eq!(
        (wire.status, wire.error_code().as_str()),
        (507, "insufficient_storage")
    );
    assert_eq!(entries(&fs.0.join("files")), 0, "partial file visible");
    assert_eq!(entries(&fs.0.join("tmp")), 0, "temporary file left behind");
    assert!(
        app.on("/post").is_empty(),
        "success callback for a file that was not stored"
    );
    // Space came back with the removed temporary file.
    let wire = upload(node.local_addr(), "/app1/small.bin", &cb, b"fits");
    assert_eq!(wire.status, 201);
    node.shutdown();
}

#[test]
fn registry_and_outbox_survive_kill_9_and_the_notification_is_delivered_after_restart() {
    let gate = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let app = {
        let gate = gate.clone();
        CallbackApp::start(0, move |r| {
            if r.path == "/post" && gate.load(std::sync::atomic::Ordering::Relaxed) {
                Answer::json(500, "down")
            } else {
                Answer::ok()
            }
        })
    };
    let dir = test_config().data_dir;
    std::fs::create_dir_all(&dir).unwrap();
    let config_file = dir.join("node.toml");
    std::fs::write(
        &config_file,
        format!(
            "listen = \"127.0.0.1:0\"\ndata_dir = \"{}\"\ncallback_timeout_ms = 1000\n",
            dir.join("data").display()
        ),
    )
    .unwrap();
    let (mut node, addr) = spawn_node(&["--config".as_ref(), config_file.as_os_str()]);
    let reg = register_form(addr, "app1", &app.url("/pre"), &app.url("/post"));

    assert_eq!(reg.status, 200);
    let wire = upload(addr, "/app1/durable.bin", "", b"committed bytes");
    assert_eq!(wire.status, 201);
    assert_eq!(wire.json()["callback"], "pending");
    let upload_id = wire.json()["upload_id"].as_str().unwrap().to_string();
    let first = app.on("/post");
    assert_eq!(first.len(), 1);

    node.kill().unwrap();
    node.wait().unwrap();
    gate.store(false, std::sync::atomic::Ordering::Relaxed);
    let (mut node, addr) = spawn_node(&["--config".as_ref(), config_file.as_os_str()]);
    let delivered = app.wait_for("/post", 2, Duration::from_secs(20));
    assert!(
        delivered.len() >= 2,
        "notification not delivered after restart"
    );
    let last = delivered.last().unwrap();
    assert_eq!(last.body, first[0].body, "delivered exactly as recorded");
    assert_eq!(last.header("webhook-id"), first[0].header("webhook-id"));
    assert_eq!(last.json()["upload_id"], upload_id.as_str());
    let (rec, _) = exchange(
        addr,
        b"GET /upload/register/app1 HTTP/1.1\r\nHost: n\r\n\r\n",
    );
    assert_eq!(rec.status, 200, "registry lost its record");
    assert_eq!(rec.json()["callback_url_post"], app.url("/post"));
    let (file, _) = exchange(addr, b"GET /app1/durable.bin HTTP/1.1\r\nHost: n\r\n\r\n");
    assert_eq!(file.body, b"committed bytes");
    node.kill().unwrap();
    node.wait().unwrap();
}

/// An outbox entry as `upload::flow::commit` records it, for `rel` under `files/app1/`.
fn staged_entry(
    event_id: &str,
    url: &str,
    rel: &str,
    size: u64,
    ino: u64,
) -> upgate::registry::OutboxEntry {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    upgate::registry::OutboxEntry {
        event_id: event_id.into(),
        appid: "app1".into(),
        url: url.into(),
        body: format!(r#"{{"appid":"app1","path":"{rel}","size":{size},"upload_id":"{event_id}","success":"true"}}"#)
            .into_bytes(),
        attempts: 0,
        // Far ahead: only the startup reconciliation can make it due soon.
        next_attempt_at_ms: now + 3_600_000,
        created_at_ms: now,
        last_error: None,
        guarded: false,
        file: Some(upgate::registry::OutboxFile {
            rel: rel.into(),
            size,
            version: upgate::storage::Version(ino.to_string()),
            placed: false,
        }),
    }
}

fn inode(path: &Path) -> u64 {
    std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(path).unwrap())
}

/// The states a `kill -9` can leave between recording a notification and its rename, built
/// with a real sled database and real files, then a real start.
#[test]
fn at_startup_an_outbox_entry_without_its_file_is_dropped_and_one_with_it_is_sent_at_once() {
    let app = CallbackApp::accepting();
    let post = app.url("/post");
    let config = test_config();
    let data = config.data_dir.clone();
    let files = data.join("files/app1");
    let tmp = data.join("tmp");
    std::fs::create_dir_all(&files).unwrap();
    std::fs::create_dir_all(&tmp).unwrap();
    // Killed after the record, before the rename: the body is still a temporary file.
    std::fs::write(tmp.join("cut.part"), b"never renamed").unwrap();
    let cut = staged_entry(
        "evt_cut",
        &post,
        "cut.bin",
        13,
        inode(&tmp.join("cut.part")),
    );
    // Killed after the rename, before the first attempt.
    std::fs::write(files.join("renamed.bin"), b"renamed bytes").unwrap();
    let renamed = staged_entry(
        "evt_renamed",
        &post,
        "renamed.bin",
        13,
        inode(&files.join("renamed.bin")),
    );
    // Killed after the record, while another upload of the same path won the rename.
    std::fs::write(files.join("taken.bin"), b"the winner's").unwrap();
    let lost = staged_entry(
        "evt_lost",
        &post,
        "taken.bin",
        12,
        inode(&files.join("taken.bin")) + 1,
    );
    {
        let registry = upgate::registry::Registry::open(&data).unwrap();
        // The entries name a registered URL: each attempt goes to the app's current one.
        let reg = upgate::registry::Registration {
            appid: "app1".into(),
            callback_url_post: upgate::registry::Change::Set(post.clone()),
            ..Default::default()
        };
        registry.register(&reg, 0).unwrap();
        for e in [&cut, &renamed, &lost] {
            registry.outbox().enqueue(e).unwrap();
        }
    }

    let node = start(config);
    let got = app.wait_for("/post", 1, Duration::from_secs(5));
    assert_eq!(
        got.len(),
        1,
        "the renamed upload's notification is sent at once"
    );
    assert_eq!(got[0].header("webhook-id"), Some("evt_renamed"));
    assert_eq!(got[0].body, renamed.body, "sent exactly as recorded");
    std::thread::sleep(Duration::from_millis(1500));
    let ids: Vec<_> = app
        .on("/post")
        .iter()
        .map(|r| r.header("webhook-id").unwrap_or("").to_string())
        .collect();
    assert!(
        ids.iter().all(|id| id == "evt_renamed"),
        "a notification for a file that is not there: {ids:?}"
    );
    assert_eq!(entries(&tmp), 0, "the temporary file survived startup");
    assert!(
        !files.join("cut.bin").exists(),
        "a cut upload was completed"
    );
    assert_eq!(
        std::fs::read(files.join("taken.bin")).unwrap(),
        b"the winner's"
    );
    node.shutdown();

    let registry = upgate::registry::Registry::open(&data).unwrap();
    assert!(
        registry.outbox().is_empty(),
        "dropped and delivered entries are gone for good"
    );
    drop(registry);
    let _ = std::fs::remove_dir_all(&data);
}

/// With its outbox log on a full filesystem the node cannot record notifications: an upload then
/// gets 503 `outbox_unavailable` with `Retry-After`, and leaves no file and no notification.
#[test]
fn an_upload_whose_notification_cannot_be_recorded_gets_503_and_leaves_nothing() {
    let app = CallbackApp::accepting();
    let config = Config {
        callback_allow: vec![app.addr.to_string()],
        ..test_config()
    };
    let data = config.data_dir.clone();
    std::fs::create_dir_all(data.join("outbox")).unwrap();
    let outbox_fs = Tmpfs::mount_at(data.join("outbox"), "4m");
    let node = start(config);
    let cb = format!(
        "callback_url_pre: {}\r\ncallback_url_post: {}\r\n",
        app.url("/pre"),
        app.url("/post")
    );
    let wire = upload(node.local_addr(), "/app1/before.bin", &cb, b"recorded");
    assert_eq!(wire.status, 201);
    let posts_before = app.on("/post").len();

    // Fill the outbox log's filesystem.
    {
        let mut filler = std::fs::File::create(outbox_fs.0.join("filler")).unwrap();
        let block = vec![0u8; 64 << 10];
        while filler.write_all(&block).is_ok() {}
        let small = [0u8; 512];
        while filler.write_all(&small).is_ok() {}
        let _ = filler.sync_all();
    }
    let mut refused = false;
    for i in 0..40 {
        let path = format!("/app1/after-{i}.bin");
        let wire = upload(node.local_addr(), &path, &cb, &vec![b'x'; 3000]);
        let file = data.join("files").join(&path[1..]);
        match wire.status {
            201 => assert!(file.exists()),
            503 => {
                assert_eq!(wire.error_code(), "outbox_unavailable");
                assert_eq!(wire.header("Retry-After"), Some("5"));
                assert!(!file.exists(), "an unrecorded upload is visible");
                refused = true;
                break;
            }
            other => panic!("unexpected status {other}: {:?}", wire.json()),
        }
    }
    assert!(refused, "the full outbox disk never refused an upload");
    assert_eq!(entries(&data.join("tmp")), 0, "temporary file left behind");
    std::thread::sleep(Duration::from_millis(500));
    let posts: Vec<String> = app
        .on("/post")
        .iter()
        .map(|r| r.json()["path"].as_str().unwrap_or("").to_string())
        .collect();
    for p in &posts[posts_before..] {
        assert!(
            data.join("files/app1").join(p).exists(),
            "a notification for a file that is not there: {p}"
        );
    }
    node.shutdown();
    drop(outbox_fs);
    let _ = std::fs::remove_dir_all(&data);
}

/// The sender checks the file before every attempt: a pending notification whose file was
/// removed meanwhile is dropped, never sent.
#[test]
fn a_pending_notification_whose_file_is_gone_is_dropped_not_sent() {
    let down = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let app = {
        let down = down.clone();
        CallbackApp::start(0, move |r| {
            if r.path == "/post" && down.load(std::sync::atomic::Ordering::Relaxed) {
                Answer::json(503, "down")
            } else {
                Answer::ok()
            }
        })
    };
    let config = Config {
        callback_allow: vec![app.addr.to_string()],
        callback_timeout_ms: 500,
        outbox_retry_max_ms: 300,
        ..test_config()
    };
    let data = config.data_dir.clone();
    let node = start(config);
    let cb = format!(
        "callback_url_pre: {}\r\ncallback_url_post: {}\r\n",
        app.url("/pre"),
        app.url("/post")
    );
    let kept = upload(node.local_addr(), "/app1/kept.bin", &cb, b"kept");
    let removed = upload(node.local_addr(), "/app1/removed.bin", &cb, b"removed");
    assert_eq!((kept.status, removed.status), (201, 201));
    assert_eq!(removed.json()["callback"], "pending");
    assert_eq!(node.app.registry.outbox().len(), 2);
    std::fs::remove_file(data.join("files/app1/removed.bin")).unwrap();
    let removed_at = std::time::Instant::now();
    down.store(false, std::sync::atomic::Ordering::Relaxed);

    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !node.app.registry.outbox().is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(node.app.registry.outbox().is_empty(), "entries left");
    let after: Vec<String> = app
        .on("/post")
        .iter()
        .filter(|r| r.at > removed_at)
        .map(|r| r.json()["path"].as_str().unwrap_or("").to_string())
        .collect();
    assert!(
        after.iter().all(|p| p == "kept.bin"),
        "a notification for a removed file: {after:?}"
    );
    assert!(
        after.iter().any(|p| p == "kept.bin"),
        "kept.bin never delivered"
    );
    node.shutdown();
    let _ = std::fs::remove_dir_all(&data);
}
