//! What survives: a full disk, and `kill -9` between commit and post-callback delivery.

mod support;

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use support::callback_app::{Answer, CallbackApp};
use support::*;
use upgate::config::Config;

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

/// A tmpfs of `size` mounted for the test; unmounted on drop.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let dir = test_config().data_dir;
        std::fs::create_dir_all(&dir).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .status()
            .expect("mount runs");
        assert!(
            ok.success(),
            "this test needs to mount a tmpfs (run as root)"
        );
        Tmpfs(dir)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
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
