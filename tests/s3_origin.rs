//! `store = "s3"` end to end (contract "Many nodes"): real upgate nodes (child processes, each
//! with its own data dir), a real Garage as the S3 origin, a real etcd for the registry and the
//! change announcements, a real application server, all on loopback.
//!
//! What a user of several nodes would notice: an upload at one node downloads byte-identical
//! from every other (a cache miss streams from the origin, ranges included); a delete or an
//! overwrite at one node is not served stale by another; with `origin_write =
//! "before_callback"` an origin that is down refuses the upload (503 `origin_unavailable`)
//! with nothing visible and no post-callback; with `background` the upload is `201` and its
//! copy reaches the origin once it is back, even across a `kill -9` of the node; a node killed
//! after its `201` loses nothing, since the others serve the file from the origin.

mod support;

use std::time::Duration;

use support::callback_app::CallbackApp;
use support::etcd::Etcd;
use support::garage::Garage;
use support::origin_node::*;
use support::*;

#[test]
fn three_nodes_one_origin_any_node_serves_any_file_and_changes_reach_every_node() {
    let etcd = Etcd::start();
    let garage = Garage::start();
    let app = CallbackApp::accepting();
    let setup = Setup {
        garage: &garage,
        etcd: Some(&etcd),
        app: &app,
        mode: "before_callback",
        overwrite: true,
    };
    let a = OriginNode::start("node-a", &setup);
    let b = OriginNode::start("node-b", &setup);
    let c = OriginNode::start("node-c", &setup);

    // A registration at A serves uploads at B and C within 1 s.
    let secret = register(a.addr(), "shop", &app);
    for n in [&b, &c] {
        let took = eventually(Duration::from_secs(1), || {
            upload_expecting(n.addr(), "shop", "probe.txt", b"probe").status == 201
        });
        assert!(took.is_some(), "registration at A not served within 1 s");
    }

    // An upload at B: the origin holds it when the 201 comes, and the post-callback names the
    // load balancer's URL, whichever node took it.
    let small = body(3 << 20, 7);
    let w = upload_expecting(b.addr(), "shop", "media/clip.bin", &small);
    assert_eq!(w.status, 201, "{}", String::from_utf8_lossy(&w.body));
    assert_eq!(
        garage.get("shop/media/clip.bin").as_deref(),
        Some(&small[..])
    );
    let posts = app.wait_for("/post", 3, Duration::from_secs(5));
    let note = posts
        .iter()
        .map(|p| p.json())
        .find(|j| j["path"] == "media/clip.bin")
        .expect("post-callback of the upload");
    assert_eq!(note["url"], "http://uploads.example/shop/media/clip.bin");
    assert_eq!(note["node_id"], "node-b");

    // From C (a cache miss: the origin) and from B (its own disk), byte-identical.
    assert!(!c.has_local("shop/media/clip.bin"));
    let from_c = get(c.addr(), "/shop/media/clip.bin", "");
    assert_eq!(from_c.status, 200);
    assert!(from_c.body == small, "C served other bytes");
    assert!(
        c.has_local("shop/media/clip.bin"),
        "the miss filled C's cache"
    );
    let from_b = get(b.addr(), "/shop/media/clip.bin", "");
    assert!(from_b.status == 200 && from_b.body == small);

    // A large file (multipart to the origin), and a range request that misses at A.
    let large = body(20 << 20, 9);
    let w = upload_expecting(c.addr(), "shop", "big.bin", &large);
    assert_eq!(w.status, 201, "{}", String::from_utf8_lossy(&w.body));
    let part = get(
        a.addr(),
        "/shop/big.bin",
        "Range: bytes=9000000-9000999\r\n",
    );
    assert_eq!(part.status, 206);
    assert!(part.body == large[9_000_000..9_001_000]);

    // Concurrent misses of one file at A: every download gets the whole file.
    let downloads: Vec<_> = (0..4)
        .map(|_| {
            let addr = a.addr();
            std::thread::spawn(move || get(addr, "/shop/media/clip.bin", ""))
        })
        .collect();
    for d in downloads {
        let w = d.join().unwrap();
        assert!(
            w.status == 200 && w.body == small,
            "a concurrent miss failed"
        );
    }
    // One origin GET per file at A, however many downloads missed it: big.bin's and
    // clip.bin's (counted when each fetch ends; the range was answered before big.bin's did).
    let filled = || {
        let metrics = String::from_utf8(get(a.addr(), "/metrics", "").body).unwrap();
        metrics
            .lines()
            .find_map(|l| l.strip_prefix("upgate_origin_fetches_total{result=\"filled\"} "))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap()
    };
    eventually(Duration::from_secs(10), || filled() >= 2);
    assert_eq!(filled(), 2, "origin GETs at A for two files");

    // An overwrite at A is not served stale by B or C (both hold a cached copy).
    let newer = body(4096, 11);
    let w = upload_expecting(a.addr(), "shop", "media/clip.bin", &newer);
    assert_eq!(w.status, 201);
    for n in [&b, &c] {
        let took = eventually(Duration::from_secs(2), || {
            get(n.addr(), "/shop/media/clip.bin", "").body == newer
        });
        assert!(
            took.is_some(),
            "an overwrite at A still served stale elsewhere"
        );
    }

    // A delete at A: gone from the origin, and C (which cached it) stops serving it.
    let w = delete(a.addr(), "/shop/media/clip.bin", &secret);
    assert_eq!(w.status, 204, "{}", String::from_utf8_lossy(&w.body));
    assert_eq!(garage.get("shop/media/clip.bin"), None);
    let took = eventually(Duration::from_secs(2), || {
        get(c.addr(), "/shop/media/clip.bin", "").status == 404
    });
    assert!(took.is_some(), "C still serves a file deleted at A");
    assert!(!c.has_local("shop/media/clip.bin"));
}

#[test]
fn origin_down_before_callback_refuses_with_nothing_visible_and_no_callback() {
    let mut garage = Garage::start();
    let app = CallbackApp::accepting();
    let setup = Setup {
        garage: &garage,
        etcd: None,
        app: &app,
        mode: "before_callback",
        overwrite: false,
    };
    let node = OriginNode::start("solo", &setup);
    register(node.addr(), "shop", &app);
    garage.stop();

    let w = upload_expecting(node.addr(), "shop", "a.bin", &body(50_000, 1));
    assert_eq!(w.status, 503, "{}", String::from_utf8_lossy(&w.body));
    assert_eq!(w.error_code(), "origin_unavailable");
    assert!(w.header("retry-after").is_some());
    assert!(!node.has_local("shop/a.bin"), "a refused upload is visible");
    let ready = get(node.addr(), "/readyz", "");
    assert_eq!(ready.status, 503);
    assert!(String::from_utf8_lossy(&ready.body).contains("origin"));
    // The download cannot ask the origin either: 503, not a 404 that would be a lie.
    let d = get(node.addr(), "/shop/a.bin", "");
    assert_eq!(d.status, 503);
    assert_eq!(d.error_code(), "origin_unavailable");
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        app.on("/post").is_empty(),
        "a post-callback for an upload that failed"
    );

    // Back: the same upload goes through, the origin holds it.
    garage.resume();
    let data = body(50_000, 2);
    let w = upload_expecting(node.addr(), "shop", "a.bin", &data);
    assert_eq!(w.status, 201, "{}", String::from_utf8_lossy(&w.body));
    assert_eq!(garage.get("shop/a.bin").as_deref(), Some(&data[..]));
    assert_eq!(get(node.addr(), "/readyz", "").status, 200);
    // overwrite = false holds at the origin too.
    let w = upload_expecting(node.addr(), "shop", "a.bin", b"again");
    assert_eq!(w.status, 409);
}

#[test]
fn origin_down_background_answers_201_and_the_copy_arrives_after_it_returns_even_across_kill_9() {
    let mut garage = Garage::start();
    let app = CallbackApp::accepting();
    let setup = Setup {
        garage: &garage,
        etcd: None,
        app: &app,
        mode: "background",
        overwrite: false,
    };
    let mut node = OriginNode::start("solo", &setup);
    register(node.addr(), "shop", &app);
    garage.stop();

    let files: Vec<(String, Vec<u8>)> = (0..5u8)
        .map(|i| {
            (
                format!("f{i}.bin"),
                body(10_000 + i as usize * 3_000_000, i),
            )
        })
        .collect();
    for (name, data) in &files {
        let w = upload_expecting(node.addr(), "shop", name, data);
        assert_eq!(w.status, 201, "{}", String::from_utf8_lossy(&w.body));
        // Served from the node at once.
        assert!(get(node.addr(), &format!("/shop/{name}"), "").body == *data);
    }
    // The node dies with every copy still queued, and starts again.
    node.kill_9();
    node.restart();
    garage.resume();
    for (name, data) in &files {
        let key = format!("shop/{name}");
        let took = eventually(Duration::from_secs(20), || {
            garage.get(&key).as_deref() == Some(&data[..])
        });
        assert!(took.is_some(), "{key} never reached the origin");
    }
    let queue = node.data_dir.join("origin/queue");
    assert!(
        eventually(Duration::from_secs(5), || std::fs::read_dir(&queue)
            .unwrap()
            .next()
            .is_none())
        .is_some(),
        "copies left in the queue"
    );
}

#[test]
fn kill_9_of_the_node_that_took_an_upload_loses_nothing_the_others_serve_it() {
    let etcd = Etcd::start();
    let garage = Garage::start();
    let app = CallbackApp::accepting();
    let setup = Setup {
        garage: &garage,
        etcd: Some(&etcd),
        app: &app,
        mode: "before_callback",
        overwrite: false,
    };
    let mut b = OriginNode::start("node-b", &setup);
    let c = OriginNode::start("node-c", &setup);
    register(b.addr(), "shop", &app);
    // An exact multiple of the 8 MiB part size: no empty last part (Garage refuses one).
    let data = body(16 << 20, 3);
    let w = upload_expecting(b.addr(), "shop", "x/kept.bin", &data);
    assert_eq!(w.status, 201, "{}", String::from_utf8_lossy(&w.body));
    b.kill_9();
    let w = get(c.addr(), "/shop/x/kept.bin", "");
    assert_eq!(w.status, 200);
    assert!(w.body == data, "C served other bytes after B died");
}
