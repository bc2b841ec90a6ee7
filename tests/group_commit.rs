//! The outbox's group commit, seen from clients over real sockets: 64 uploads committing at
//! the same moment share one append (and one `fdatasync`), and when that append fails on a
//! really full disk, every upload of the group is answered 503 `outbox_unavailable` with
//! nothing visible and no post-callback made; the next upload, with space back, succeeds.

mod support;

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::callback_app::CallbackApp;
use support::*;
use upgate::config::Config;
use upgate::node::Node;
use upgate::registry::{LogOutbox, Outbox, OutboxJournal};

const UPLOADS: usize = 64;

fn upload(addr: SocketAddr, path: &str, body: &[u8]) -> Wire {
    let mut s = connect(addr);
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let head = format!(
        "PUT {path} HTTP/1.1\r\nHost: n\r\nExpect: 100-continue\r\nappid: app1\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    let mut buf = Vec::new();
    let first = read_response(&mut s, &mut buf).expect("an answer to the head");
    if first.status != 100 {
        return first;
    }
    s.write_all(body).unwrap();
    read_response(&mut s, &mut buf).expect("final answer")
}

fn log_of(node: &Node) -> LogOutbox {
    match node.app.registry.outbox() {
        Outbox::Log(log) => log.clone(),
        Outbox::Memory(_) => panic!("the node's outbox is its log"),
    }
}

/// Node with `app1` registered (pre and post on `app`), `fsync = true`.
fn node_in(data_dir: PathBuf, app: &CallbackApp) -> Node {
    let node = support::start(Config {
        data_dir,
        fsync: true,
        callback_allow: vec![app.addr.to_string()],
        ..test_config()
    });
    let reg = register_form(
        node.local_addr(),
        "app1",
        &app.url("/pre"),
        &app.url("/post"),
    );
    assert_eq!(reg.status, 200);
    node
}

/// Sends [`UPLOADS`] uploads at once while the group commit is held, waits until every one
/// has put its record into the batch being filled, runs `before_release`, releases the commit
/// and returns every answer.
fn uploads_in_one_group(node: &Node, prefix: &str, before_release: impl FnOnce()) -> Vec<Wire> {
    let log = log_of(node);
    let hold = log.hold_commits();
    let addr = node.local_addr();
    let clients: Vec<_> = (0..UPLOADS)
        .map(|i| {
            let path = format!("/app1/{prefix}/{i}.bin");
            std::thread::spawn(move || upload(addr, &path, &[i as u8; 1024]))
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(20);
    while log.batched() < UPLOADS as u64 {
        assert!(
            Instant::now() < deadline,
            "only {} of {UPLOADS} uploads reached the commit",
            log.batched()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    before_release();
    drop(hold);
    clients.into_iter().map(|c| c.join().unwrap()).collect()
}

fn files_under(dir: &Path) -> usize {
    fn walk(dir: &Path, n: &mut usize) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            if e.file_type().unwrap().is_dir() {
                walk(&e.path(), n);
            } else {
                *n += 1;
            }
        }
    }
    let mut n = 0;
    walk(dir, &mut n);
    n
}

#[test]
fn sixty_four_concurrent_uploads_share_one_group_commit() {
    let app = Arc::new(CallbackApp::accepting());
    let node = node_in(test_config().data_dir, &app);
    let log = log_of(&node);
    let before = log.stats();

    let answers = uploads_in_one_group(&node, "group", || {});
    let statuses: Vec<u16> = answers.iter().map(|w| w.status).collect();
    assert_eq!(statuses, vec![201; UPLOADS]);

    // The first commit after the release carried all 64 uploads' records at once (one
    // append, one fdatasync); what came after (placed marks, delivered removals) went in
    // later batches.
    let after = log.stats();
    assert!(
        after.largest >= UPLOADS as u64,
        "one commit carried all {UPLOADS}: {before:?} -> {after:?}"
    );
    assert!(
        after.commits - before.commits < after.records - before.records,
        "{before:?} -> {after:?}"
    );
    app.wait_for("/post", UPLOADS, Duration::from_secs(10));
    let metrics = String::from_utf8(
        exchange(
            node.local_addr(),
            b"GET /metrics HTTP/1.1\r\nHost: n\r\nConnection: close\r\n\r\n",
        )
        .0
        .body,
    )
    .unwrap();
    assert!(
        metrics.contains("upgate_outbox_commits_total "),
        "{metrics}"
    );
    assert!(
        metrics.contains("upgate_outbox_records_total "),
        "{metrics}"
    );
    node.shutdown();
}

#[test]
fn a_failed_group_commit_answers_503_to_every_upload_of_the_group_and_leaves_nothing() {
    let app = Arc::new(CallbackApp::accepting());
    let data_dir = test_config().data_dir;
    // The outbox log on a disk of its own, 1 MiB, which the test fills up.
    let disk = Tmpfs::mount_at(data_dir.join("outbox"), "1m");
    let node = node_in(data_dir.clone(), &app);
    let filler = disk.0.join("filler");

    let answers = uploads_in_one_group(&node, "refused", || {
        // Leave no room for the batch: fill the disk until it says so.
        let mut f = std::fs::File::create(&filler).unwrap();
        while f.write_all(&[0u8; 4096]).is_ok() {}
    });
    for w in &answers {
        assert_eq!(
            (w.status, w.error_code().as_str()),
            (503, "outbox_unavailable"),
            "{:?}",
            String::from_utf8_lossy(&w.body)
        );
        assert!(w.header("retry-after").is_some());
    }
    assert_eq!(files_under(&data_dir.join("files")), 0, "nothing visible");
    assert_eq!(
        files_under(&data_dir.join("tmp")),
        0,
        "no temporary file left"
    );
    assert!(
        app.on("/post").is_empty(),
        "no post-callback for a refused upload"
    );
    assert_eq!(log_of(&node).len(), 0, "no refused upload stays queued");

    // Space is back: the next upload is recorded, stored and notified.
    std::fs::remove_file(&filler).unwrap();
    let wire = upload(node.local_addr(), "/app1/after.bin", b"space again");
    assert_eq!(wire.status, 201);
    assert_eq!(app.wait_for("/post", 1, Duration::from_secs(10)).len(), 1);
    node.shutdown();
    drop(disk);
}
