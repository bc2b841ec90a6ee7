//! `upgate upload --resumable` as a subprocess against a real node and a real callback app:
//! a file in several tus appends arrives byte-identical, and a connection cut mid-append (by a
//! TCP proxy between client and node) is resumed from the node's offset.

mod support;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::callback_app::{CallbackApp, Received};
use support::*;
use upgate::config::Config;

const BIN: &str = env!("CARGO_BIN_EXE_upgate");
const CHUNK: u64 = 256 << 10;

struct World {
    node: upgate::node::Node,
    app: CallbackApp,
    dir: PathBuf,
}

impl World {
    fn new() -> World {
        let config = Config {
            fsync: true,
            ..test_config()
        };
        let dir = config.data_dir.with_extension("files");
        std::fs::create_dir_all(&dir).unwrap();
        let app = CallbackApp::accepting();
        let node = start(config);
        let r = register_form(
            node.local_addr(),
            "app1",
            &app.url("/pre"),
            &app.url("/post"),
        );
        assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
        World { node, app, dir }
    }

    /// A file of `len` seeded bytes (no two chunks alike, so a misplaced append shows).
    fn file(&self, name: &str, len: usize) -> (PathBuf, Vec<u8>) {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15 ^ len as u64;
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let p = self.dir.join(name);
        std::fs::write(&p, &bytes).unwrap();
        (p, bytes)
    }

    /// The appends the node asked the app about: (offset, length) of every pre-callback after
    /// the creation's.
    fn appends(&self) -> Vec<(u64, u64)> {
        self.app
            .on("/pre")
            .iter()
            .map(Received::json)
            .filter_map(|p| Some((p["offset"].as_u64()?, p["length"].as_u64()?)))
            .collect()
    }
}

/// Runs `upgate ARGS…`, killed past 60 s.
fn upgate(args: &[&str]) -> (Output, Duration) {
    let started = Instant::now();
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("upgate runs");
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    (child.wait_with_output().unwrap(), started.elapsed())
}

fn download(addr: SocketAddr, path: &str) -> Wire {
    exchange(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: n\r\n\r\n").as_bytes(),
    )
    .0
}

#[test]
fn a_file_in_several_appends_is_stored_byte_identical_with_one_pre_callback_each() {
    let w = World::new();
    let (path, bytes) = w.file("several.bin", (4 * CHUNK + 12_345) as usize);
    let url = format!("http://{}/app1/r/several.bin", w.node.local_addr());
    let (out, took) = upgate(&[
        "upload",
        "--resumable",
        "--chunk-size",
        "256K",
        "-q",
        path.to_str().unwrap(),
        &url,
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{:?} after {took:?}: {stdout} {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let done: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(done["size"], bytes.len());
    assert_eq!(done["path"], "r/several.bin");
    let got = download(w.node.local_addr(), "/app1/r/several.bin");
    assert_eq!(got.status, 200);
    assert!(got.body == bytes, "the stored file differs");
    let want: Vec<(u64, u64)> = (0..5)
        .map(|i| (i * CHUNK, CHUNK.min(bytes.len() as u64 - i * CHUNK)))
        .collect();
    assert_eq!(w.appends(), want, "one PATCH per chunk, in order");
    let post = w.app.wait_for("/post", 1, Duration::from_secs(10));
    assert_eq!(post[0].json()["size"], bytes.len());
    assert_eq!(post[0].json()["path"], "r/several.bin");
}

#[test]
fn an_unknown_app_is_a_final_error_with_the_nodes_code_and_no_retry() {
    let w = World::new();
    let (path, _) = w.file("nobody.bin", 10);
    // No such app: a 4xx the client must not retry.
    let url = format!("http://{}/app9/nobody.bin", w.node.local_addr());
    let (out, took) = upgate(&["upload", "--resumable", path.to_str().unwrap(), &url]);
    assert_eq!(out.status.code(), Some(4), "{:?}", out);
    assert!(took < Duration::from_secs(5), "retried a 4xx: {took:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("unknown_appid"), "{stdout}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("retrying"), "{stderr}");
}

/// A TCP proxy that cuts the connection carrying byte `cut_at` of the client's stream (counted
/// over every connection), once; everything else passes.
struct CutProxy {
    addr: SocketAddr,
    cuts: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl CutProxy {
    fn start(to: SocketAddr, cut_at: u64) -> CutProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        listener.set_nonblocking(true).unwrap();
        let (cuts, stop) = (
            Arc::new(AtomicU64::new(0)),
            Arc::new(AtomicBool::new(false)),
        );
        let sent = Arc::new(AtomicU64::new(0));
        let (c, s) = (cuts.clone(), stop.clone());
        std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                let Ok((client, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                client.set_nonblocking(false).unwrap();
                let node = TcpStream::connect(to).unwrap();
                let (c2, n2) = (client.try_clone().unwrap(), node.try_clone().unwrap());
                std::thread::spawn(move || pump(n2, c2, None));
                let cut = Some((sent.clone(), cut_at, c.clone()));
                std::thread::spawn(move || pump(client, node, cut));
            }
        });
        CutProxy { addr, cuts, stop }
    }
}

impl Drop for CutProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

type Cut = (Arc<AtomicU64>, u64, Arc<AtomicU64>);

/// Copies `from` → `to` until either ends; with `cut`, stops both sides at its byte, once.
fn pump(mut from: TcpStream, mut to: TcpStream, cut: Option<Cut>) {
    let mut buf = [0u8; 16 << 10];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let mut n_out = n;
        let mut cutting = false;
        if let Some((sent, at, cuts)) = &cut {
            let before = sent.fetch_add(n as u64, Ordering::SeqCst);
            if cuts.load(Ordering::SeqCst) == 0 && before + n as u64 > *at {
                n_out = at.saturating_sub(before) as usize;
                cutting = cuts.fetch_add(1, Ordering::SeqCst) == 0;
            }
        }
        if to.write_all(&buf[..n_out]).is_err() {
            break;
        }
        if cutting {
            break;
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}

#[test]
fn a_connection_cut_mid_append_is_resumed_from_the_nodes_offset() {
    let w = World::new();
    let (path, bytes) = w.file("cut.bin", (3 * CHUNK + 999) as usize);
    // Halfway through the second append's body.
    let proxy = CutProxy::start(w.node.local_addr(), CHUNK + CHUNK / 2);
    let url = format!("http://{}/app1/r/cut.bin", proxy.addr);
    let (out, took) = upgate(&[
        "upload",
        "--resumable",
        "--chunk-size",
        "256K",
        path.to_str().unwrap(),
        &url,
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{:?} after {took:?}: {} {stderr}",
        out.status,
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(proxy.cuts.load(Ordering::SeqCst), 1, "the proxy cut once");
    assert!(
        stderr.contains("retrying"),
        "the retry is reported: {stderr}"
    );
    let got = download(w.node.local_addr(), "/app1/r/cut.bin");
    assert_eq!(got.status, 200);
    assert!(got.body == bytes, "the stored file differs");
    // The node saw the cut chunk [CHUNK, 2 CHUNK) in more than one PATCH, the later ones
    // starting where the first one's kept bytes ended, never again at 0.
    let appends = w.appends();
    let in_cut = appends
        .iter()
        .filter(|(o, l)| *o < 2 * CHUNK && o + l > CHUNK)
        .count();
    assert!(in_cut > 1, "PATCHes over the cut chunk: {appends:?}");
    assert_eq!(
        appends.iter().filter(|(o, _)| *o == 0).count(),
        1,
        "{appends:?}"
    );
    let post = w.app.wait_for("/post", 1, Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(w.app.on("/post").len(), 1);
    assert_eq!(post[0].json()["size"], bytes.len());
}
