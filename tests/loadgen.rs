//! The load generator against a real node in this process, with the built-in callback app:
//! every request is verified (status, completion JSON `size`, download length) and counted.

mod support;

use std::sync::atomic::Ordering;
use std::time::Duration;

use upgate::config::Config;
use upgate_tools::loadgen::callback_app::CallbackApp;
use upgate_tools::loadgen::{self, BenchConfig, Callbacks, Mode, Stop};

fn node_and_app() -> (upgate::node::Node, CallbackApp) {
    let app = CallbackApp::start("127.0.0.1:0".parse().unwrap()).expect("callback app");
    let node = support::start(Config {
        callback_allow: vec![app.addr().to_string()],
        fsync: false,
        ..support::test_config()
    });
    (node, app)
}

fn bench_config(node: &upgate::node::Node) -> BenchConfig {
    let mut cfg = BenchConfig::new(node.local_addr());
    cfg.timeout = Duration::from_secs(20);
    cfg
}

#[test]
fn uploads_then_downloads_with_carried_callbacks_count_exactly() {
    let (node, app) = node_and_app();

    let mut cfg = bench_config(&node);
    cfg.connections = 4;
    cfg.stop = Stop::Requests(200);
    cfg.size = 1024;
    cfg.callbacks = Callbacks::carried(app.addr());
    cfg.watch_pids = vec![std::process::id()];
    cfg.label = "test-upload".into();
    let up = loadgen::run(&cfg).expect("upload run");
    assert_eq!(up.error_kinds, Default::default(), "{up}");
    assert_eq!((up.ok, up.errors, up.bytes), (200, 0, 200 * 1024));
    assert_eq!(up.mode, "upload");
    assert!(up.latency.p50 <= up.latency.p99 && up.latency.p99 <= up.latency.max);
    assert!(up.usage.as_ref().is_some_and(|u| u.rss_peak_kib > 0));
    // One pre- and one post-callback per upload, nothing else.
    assert_eq!(app.counters.pre.load(Ordering::Relaxed), 200);
    assert_eq!(app.counters.post.load(Ordering::Relaxed), 200);
    assert_eq!(app.counters.other.load(Ordering::Relaxed), 0);
    // Every upload stored one distinct file of the right size.
    let dir = node
        .app
        .config
        .data_dir
        .join("files/bench")
        .join(&cfg.path_prefix);
    let mut stored = 0;
    for c in 0..4 {
        for entry in std::fs::read_dir(dir.join(format!("c{c}"))).expect("per-connection dir") {
            assert_eq!(entry.unwrap().metadata().unwrap().len(), 1024);
            stored += 1;
        }
    }
    assert_eq!(stored, 200);
    let json = up.to_json();
    assert_eq!(json["ok"], 200);
    assert_eq!(json["errors"], 0);
    assert_eq!(json["label"], "test-upload");

    // Downloads: 5 files uploaded first (5 more callbacks each), then 50 verified GETs.
    let mut cfg = bench_config(&node);
    cfg.mode = Mode::Download;
    cfg.connections = 4;
    cfg.files = 5;
    cfg.size = 4096;
    cfg.stop = Stop::Requests(50);
    cfg.callbacks = Callbacks::carried(app.addr());
    let down = loadgen::run(&cfg).expect("download run");
    assert_eq!(down.error_kinds, Default::default(), "{down}");
    assert_eq!((down.ok, down.errors, down.bytes), (50, 0, 50 * 4096));
    assert_eq!(app.counters.pre.load(Ordering::Relaxed), 205);

    node.shutdown();
}

#[test]
fn registered_callbacks_and_refusals_are_counted_by_kind() {
    let (node, app) = node_and_app();

    let mut cfg = bench_config(&node);
    cfg.appid = "regbench".into();
    cfg.connections = 2;
    cfg.stop = Stop::Requests(20);
    cfg.callbacks = Callbacks::registered(app.addr());
    let r = loadgen::run(&cfg).expect("registered run");
    assert_eq!((r.ok, r.errors), (20, 0), "{r}");
    assert_eq!(app.counters.pre.load(Ordering::Relaxed), 20);

    // An unknown appid without callbacks: the node refuses before the body (404, no 100).
    let mut cfg = bench_config(&node);
    cfg.appid = "nobody".into();
    cfg.connections = 2;
    cfg.stop = Stop::Requests(10);
    let r = loadgen::run(&cfg).expect("refused run");
    assert_eq!(r.ok, 0);
    assert_eq!(r.errors, 10);
    assert_eq!(r.error_kinds.get("refused_404"), Some(&10), "{r}");

    // Downloads of files that do not exist: 404 each.
    let mut cfg = bench_config(&node);
    cfg.mode = Mode::Download;
    cfg.setup = false;
    cfg.connections = 1;
    cfg.files = 2;
    cfg.stop = Stop::Requests(3);
    let r = loadgen::run(&cfg).expect("missing files run");
    assert_eq!(r.error_kinds.get("status_404"), Some(&3), "{r}");

    node.shutdown();
}

#[test]
fn form_mode_stores_exactly_the_file_parts_beside_raw_uploads() {
    let (node, app) = node_and_app();
    let files = |cfg: &BenchConfig| {
        let dir = node.app.config.data_dir.join("files/formbench");
        let mut sizes = Vec::new();
        for c in 0..cfg.connections {
            let dir = dir.join(&cfg.path_prefix).join(format!("c{c}"));
            for entry in std::fs::read_dir(dir).expect("per-connection dir") {
                let bytes = std::fs::read(entry.unwrap().path()).unwrap();
                // The body pattern, not a byte of the form's envelope.
                let pattern =
                    loadgen::client::pattern(loadgen::PATTERN_BYTES.min(cfg.size as usize));
                let sent = pattern.iter().cycle().take(bytes.len());
                assert!(bytes.iter().eq(sent), "envelope stored");
                sizes.push(bytes.len() as u64);
            }
        }
        sizes
    };

    // Small forms (the head and body in one write) and multi-buffer ones (with Expect, through
    // the registered buffers), with the registered app's callbacks.
    for (size, requests, expect) in [(1024, 40, false), (3 << 20, 4, true)] {
        let mut cfg = bench_config(&node);
        cfg.appid = "formbench".into();
        cfg.mode = Mode::Form;
        cfg.connections = 2;
        cfg.size = size;
        cfg.expect = expect;
        cfg.stop = Stop::Requests(requests);
        cfg.callbacks = Callbacks::registered(app.addr());
        let r = loadgen::run(&cfg).expect("form run");
        assert_eq!((r.ok, r.errors, r.mode), (requests, 0, "form"), "{r}");
        assert_eq!(
            r.bytes,
            requests * size,
            "payload bytes count only the file parts"
        );
        let sizes = files(&cfg);
        assert_eq!(sizes.len() as u64, requests);
        assert!(sizes.iter().all(|&s| s == size), "{sizes:?}");
    }
    assert_eq!(app.counters.pre.load(Ordering::Relaxed), 44);
    assert_eq!(app.counters.post.load(Ordering::Relaxed), 44);
    node.shutdown();
}
