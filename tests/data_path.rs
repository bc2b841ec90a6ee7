//! The data path over real loopback sockets, a real node and real files: which way body bytes
//! travel (registered buffers, splice, the connection's buffer — read off the
//! `upgate_body_bytes_total{path}` counters), that what is stored is exactly what was sent,
//! the `checksum = "sha256"` rules, and the preallocation of the temporary file.
//!
//! The counters are process-global, so every test holds [`serial`] while it runs.

mod support;

use std::io::Write;
use std::net::TcpStream;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use base64::Engine as _;
use sha2::{Digest as _, Sha256};
use support::callback_app::CallbackApp;
use support::*;
use upgate::config::{Checksum, Config, ExpectPolicy};
use upgate::metrics::{BodyPath, METRICS};

fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

struct Rig {
    node: upgate::node::Node,
    app: CallbackApp,
    data_dir: PathBuf,
}

impl Rig {
    fn new(tweak: impl FnOnce(&mut Config)) -> Rig {
        let app = CallbackApp::accepting();
        let mut config = Config {
            callback_allow: vec![app.addr.to_string()],
            fsync: false,
            expect: ExpectPolicy::Optional,
            ..test_config()
        };
        tweak(&mut config);
        let data_dir = config.data_dir.clone();
        Rig {
            node: start(config),
            app,
            data_dir,
        }
    }

    fn stored(&self, rel: &str) -> PathBuf {
        self.data_dir.join("files/app1").join(rel)
    }

    fn tmp_files(&self) -> Vec<PathBuf> {
        std::fs::read_dir(self.data_dir.join("tmp"))
            .map(|rd| rd.flatten().map(|e| e.path()).collect())
            .unwrap_or_default()
    }
}

/// Default node: `zero_copy = true`, `checksum = "none"`.
fn splice_rig() -> &'static Rig {
    static RIG: OnceLock<Rig> = OnceLock::new();
    RIG.get_or_init(|| Rig::new(|_| {}))
}

fn buffered_rig() -> &'static Rig {
    static RIG: OnceLock<Rig> = OnceLock::new();
    RIG.get_or_init(|| Rig::new(|c| c.zero_copy = false))
}

fn checksum_rig() -> &'static Rig {
    static RIG: OnceLock<Rig> = OnceLock::new();
    RIG.get_or_init(|| Rig::new(|c| c.checksum = Checksum::Sha256))
}

/// Body bytes per path so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Paths {
    splice: u64,
    fixed: u64,
    buffered: u64,
}

fn paths() -> Paths {
    let get = |p: BodyPath| METRICS.body_bytes[p as usize].get();
    Paths {
        splice: get(BodyPath::Splice),
        fixed: get(BodyPath::Fixed),
        buffered: get(BodyPath::Buffered),
    }
}

impl std::ops::Sub for Paths {
    type Output = Paths;
    fn sub(self, o: Paths) -> Paths {
        Paths {
            splice: self.splice - o.splice,
            fixed: self.fixed - o.fixed,
            buffered: self.buffered - o.buffered,
        }
    }
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| ((i * 131 + i / 7) as u8).wrapping_add(seed))
        .collect()
}

/// `body` as chunks of the given sizes (cycled), one with an extension, and a trailer.
fn chunked(body: &[u8], sizes: &[usize]) -> Vec<u8> {
    let mut wire = Vec::new();
    let (mut at, mut i) = (0, 0);
    while at < body.len() {
        let n = sizes[i % sizes.len()].min(body.len() - at);
        let ext = if i == 1 { ";note=\"odd\"" } else { "" };
        wire.extend_from_slice(format!("{n:x}{ext}\r\n").as_bytes());
        wire.extend_from_slice(&body[at..at + n]);
        wire.extend_from_slice(b"\r\n");
        at += n;
        i += 1;
    }
    wire.extend_from_slice(b"0\r\nx-trailer: yes\r\n\r\n");
    wire
}

/// Writes `bytes` in pieces of the given sizes (cycled), pausing now and then so the node
/// sees several reads.
fn write_in_pieces(s: &mut TcpStream, bytes: &[u8], pieces: &[usize]) {
    let (mut at, mut i) = (0, 0);
    while at < bytes.len() {
        let n = pieces[i % pieces.len()].min(bytes.len() - at);
        s.write_all(&bytes[at..at + n]).unwrap();
        s.flush().unwrap();
        if i % 3 == 2 {
            std::thread::sleep(Duration::from_millis(3));
        }
        at += n;
        i += 1;
    }
}

/// The head of an upload to `/app1/{rel}` with `Expect: 100-continue`, pre- and
/// post-callbacks, and `framing` (`Content-Length: N` or `Transfer-Encoding: chunked`).
fn head(rig: &Rig, rel: &str, framing: &str, extra: &str) -> Vec<u8> {
    format!(
        "PUT /app1/{rel} HTTP/1.1\r\nHost: n\r\nExpect: 100-continue\r\nappid: app1\r\n\
         callback_url_pre: {}\r\ncallback_url_post: {}\r\n{framing}{extra}\r\n",
        rig.app.url("/pre"),
        rig.app.url("/post"),
    )
    .into_bytes()
}

/// Sends the head, waits for `100 Continue`, sends `wire` in pieces, returns the answer.
fn upload(rig: &Rig, head: &[u8], wire: &[u8], pieces: &[usize]) -> Wire {
    let mut s = connect(rig.node.local_addr());
    let mut buf = Vec::new();
    s.write_all(head).unwrap();
    let first = read_response(&mut s, &mut buf).expect("an answer to the head");
    if first.status != 100 {
        return first;
    }
    write_in_pieces(&mut s, wire, pieces);
    read_response(&mut s, &mut buf).expect("a final answer")
}

fn assert_stored(rig: &Rig, rel: &str, body: &[u8]) {
    let got = std::fs::read(rig.stored(rel)).expect("stored file");
    assert_eq!(got.len(), body.len(), "{rel}: size");
    assert!(got == body, "{rel}: stored bytes differ from those sent");
    assert!(rig.tmp_files().is_empty(), "{:?}", rig.tmp_files());
}

#[test]
fn a_chunked_body_is_stored_through_registered_buffers() {
    let _g = serial();
    let rig = splice_rig();
    let body = pattern(300_001, 1);
    let wire = chunked(&body, &[1, 7, 4093, 65_537, 100_003, 13]);
    let before = paths();
    let answer = upload(
        rig,
        &head(rig, "dp/chunked.bin", "Transfer-Encoding: chunked\r\n", ""),
        &wire,
        &[5, 3000, 70_001, 1, 65_536, 9_999],
    );
    assert_eq!(
        answer.status,
        201,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    assert_eq!(answer.json()["size"], body.len() as u64);
    assert_stored(rig, "dp/chunked.bin", &body);
    let moved = paths() - before;
    assert_eq!(
        moved,
        Paths {
            splice: 0,
            fixed: body.len() as u64,
            buffered: 0
        },
        "every body byte went socket → registered buffer → file"
    );
}

#[test]
fn bytes_after_a_chunked_body_reach_the_next_request() {
    let _g = serial();
    let rig = splice_rig();
    let body = pattern(70_000, 2);
    let mut wire = chunked(&body, &[33_333, 5]);
    // The body and a pipelined GET arrive in one write: the node reads past the body's end
    // into its registered buffer and must hand the GET back to the connection.
    wire.extend_from_slice(b"GET /app1/dp/pipelined.bin HTTP/1.1\r\nHost: n\r\n\r\n");
    let mut s = connect(rig.node.local_addr());
    let mut buf = Vec::new();
    s.write_all(&head(
        rig,
        "dp/pipelined.bin",
        "Transfer-Encoding: chunked\r\n",
        "",
    ))
    .unwrap();
    assert_eq!(read_response(&mut s, &mut buf).unwrap().status, 100);
    s.write_all(&wire).unwrap();
    let put = read_response(&mut s, &mut buf).expect("the upload's answer");
    assert_eq!(put.status, 201, "{}", String::from_utf8_lossy(&put.body));
    let get = read_response(&mut s, &mut buf).expect("the pipelined GET's answer");
    assert_eq!(get.status, 200);
    assert!(get.body == body, "the download differs from the upload");
}

#[test]
fn without_zero_copy_a_content_length_body_takes_registered_buffers() {
    let _g = serial();
    let rig = buffered_rig();
    let body = pattern((1 << 20) + 12_345, 3);
    let before = paths();
    let cl = format!("Content-Length: {}\r\n", body.len());
    let answer = upload(
        rig,
        &head(rig, "dp/nozc.bin", &cl, ""),
        &body,
        &[65_536, 17, 200_000, 4096],
    );
    assert_eq!(
        answer.status,
        201,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    assert_stored(rig, "dp/nozc.bin", &body);
    assert_eq!(
        paths() - before,
        Paths {
            splice: 0,
            fixed: body.len() as u64,
            buffered: 0
        }
    );

    // Body bytes that come with the head are written from the connection's buffer; the rest
    // still takes registered buffers, never a splice.
    let before = paths();
    let mut s = connect(rig.node.local_addr());
    let mut first = format!(
        "PUT /app1/dp/with-head.bin HTTP/1.1\r\nHost: n\r\nappid: app1\r\ncallback_url_pre: {}\r\n\
         Content-Length: {}\r\n\r\n",
        rig.app.url("/pre"),
        body.len()
    )
    .into_bytes();
    first.extend_from_slice(&body[..3000]);
    s.write_all(&first).unwrap();
    write_in_pieces(&mut s, &body[3000..], &[100_000]);
    let answer = read_response(&mut s, &mut Vec::new()).unwrap();
    assert_eq!(
        answer.status,
        201,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    assert_stored(rig, "dp/with-head.bin", &body);
    let moved = paths() - before;
    assert_eq!(moved.splice, 0);
    assert_eq!(moved.fixed + moved.buffered, body.len() as u64, "{moved:?}");
    assert!(moved.fixed > 0, "{moved:?}");
}

#[test]
fn with_zero_copy_a_content_length_body_is_spliced_not_buffered() {
    let _g = serial();
    let rig = splice_rig();
    let body = pattern(500_000, 4);
    let before = paths();
    let cl = format!("Content-Length: {}\r\n", body.len());
    let answer = upload(rig, &head(rig, "dp/zc.bin", &cl, ""), &body, &[65_536]);
    assert_eq!(answer.status, 201);
    assert_stored(rig, "dp/zc.bin", &body);
    assert_eq!(
        paths() - before,
        Paths {
            splice: body.len() as u64,
            fixed: 0,
            buffered: 0
        }
    );
}

#[test]
fn more_concurrent_chunked_bodies_than_registered_buffers_all_complete() {
    let _g = serial();
    // One runtime thread: its 16 buffers serve every connection.
    static RIG: OnceLock<Rig> = OnceLock::new();
    let rig = RIG.get_or_init(|| Rig::new(|c| c.threads = 1));
    let before = paths();
    let total: u64 = std::thread::scope(|sc| {
        let handles: Vec<_> = (0..24)
            .map(|i| {
                sc.spawn(move || {
                    let body = pattern(150_000 + i * 977, i as u8);
                    let rel = format!("dp/many/{i}.bin");
                    let wire = chunked(&body, &[8191, 40_000, 3]);
                    let h = head(rig, &rel, "Transfer-Encoding: chunked\r\n", "");
                    let answer = upload(rig, &h, &wire, &[20_000, 1, 45_000]);
                    assert_eq!(
                        answer.status,
                        201,
                        "{}",
                        String::from_utf8_lossy(&answer.body)
                    );
                    assert!(std::fs::read(rig.stored(&rel)).unwrap() == body, "{rel}");
                    body.len() as u64
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    let moved = paths() - before;
    assert_eq!((moved.fixed, moved.splice), (total, 0));
}

#[test]
fn a_stalled_chunked_body_times_out_and_leaves_nothing() {
    let _g = serial();
    static RIG: OnceLock<Rig> = OnceLock::new();
    let rig = RIG.get_or_init(|| Rig::new(|c| c.body_idle_timeout_ms = 300));
    let mut s = connect(rig.node.local_addr());
    let mut buf = Vec::new();
    let h = head(rig, "dp/stalled.bin", "Transfer-Encoding: chunked\r\n", "");
    s.write_all(&h).unwrap();
    assert_eq!(read_response(&mut s, &mut buf).unwrap().status, 100);
    s.write_all(b"10000\r\n").unwrap();
    s.write_all(&pattern(5000, 5)).unwrap();
    let answer = read_response(&mut s, &mut buf).expect("an answer after the stall");
    assert_eq!(
        (answer.status, answer.error_code().as_str()),
        (408, "body_timeout")
    );
    assert!(!rig.stored("dp/stalled.bin").exists());
    std::thread::sleep(Duration::from_millis(100));
    assert!(rig.tmp_files().is_empty(), "{:?}", rig.tmp_files());
}

fn sha256(body: &[u8]) -> (String, String) {
    let d = Sha256::digest(body);
    let hex: String = d.iter().map(|b| format!("{b:02x}")).collect();
    (hex, base64::engine::general_purpose::STANDARD.encode(d))
}

#[test]
fn matching_digests_are_accepted_and_reported() {
    let _g = serial();
    let rig = checksum_rig();
    let body = pattern(400_000, 6);
    let (hex, b64) = sha256(&body);
    let cl = format!("Content-Length: {}\r\n", body.len());
    let forms = [
        (
            "content-digest",
            format!("Content-Digest: sha-256=:{b64}:\r\n"),
        ),
        ("digest", format!("Digest: SHA-256={b64}\r\n")),
        ("x-checksum", format!("x-checksum-sha256: {hex}\r\n")),
        ("none", String::new()),
    ];
    for (name, header) in &forms {
        let rel = format!("dp/sum/{name}.bin");
        let before = paths();
        let posts = rig.app.on("/post").len();
        let answer = upload(rig, &head(rig, &rel, &cl, header), &body, &[65_536, 999]);
        assert_eq!(
            answer.status,
            201,
            "{name}: {}",
            String::from_utf8_lossy(&answer.body)
        );
        assert_eq!(answer.json()["sha256"], hex.as_str(), "{name}");
        assert_stored(rig, &rel, &body);
        // The node must see every byte: registered buffers even though zero_copy = true.
        assert_eq!(
            paths() - before,
            Paths {
                splice: 0,
                fixed: body.len() as u64,
                buffered: 0
            },
            "{name}"
        );
        let post = rig.app.wait_for("/post", posts + 1, Duration::from_secs(5));
        let info = post.last().expect("a post-callback").json();
        assert_eq!(info["path"], rel.as_str());
        assert_eq!(info["sha256"], hex.as_str(), "{name}");
    }

    // A chunked body is digested the same way.
    let wire = chunked(&body, &[70_000, 1]);
    let te = "Transfer-Encoding: chunked\r\n";
    let h = head(rig, "dp/sum/chunked.bin", te, &forms[0].1);
    let answer = upload(rig, &h, &wire, &[30_000]);
    assert_eq!(
        answer.status,
        201,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    assert_eq!(answer.json()["sha256"], hex.as_str());
}

#[test]
fn a_mismatched_digest_keeps_nothing_and_notifies_nobody() {
    let _g = serial();
    let rig = checksum_rig();
    let body = pattern(200_000, 7);
    let (_, b64) = sha256(&pattern(200_000, 8));
    let cl = format!("Content-Length: {}\r\n", body.len());
    let posts = rig.app.on("/post").len();
    for (i, header) in [
        format!("Content-Digest: sha-256=:{b64}:\r\n"),
        format!("x-checksum-sha256: {}\r\n", "0".repeat(64)),
    ]
    .iter()
    .enumerate()
    {
        let rel = format!("dp/bad/{i}.bin");
        let answer = upload(rig, &head(rig, &rel, &cl, header), &body, &[50_000]);
        assert_eq!(
            (answer.status, answer.error_code().as_str()),
            (400, "digest_mismatch"),
            "{}",
            String::from_utf8_lossy(&answer.body)
        );
        assert!(!rig.stored(&rel).exists(), "{rel} is visible");
        assert!(rig.tmp_files().is_empty(), "{:?}", rig.tmp_files());
    }
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        rig.app.on("/post").len(),
        posts,
        "no post-callback for a mismatch"
    );
}

#[test]
fn a_malformed_digest_is_refused_before_100_continue() {
    let _g = serial();
    let rig = checksum_rig();
    let pres = rig.app.on("/pre").len();
    for header in [
        "Content-Digest: sha-256=:AAAA:\r\n",
        "Content-Digest: sha-256=abc\r\n",
        "Digest: SHA-256\r\n",
        "x-checksum-sha256: xyz\r\n",
    ] {
        let mut s = connect(rig.node.local_addr());
        s.write_all(&head(
            rig,
            "dp/malformed.bin",
            "Content-Length: 10\r\n",
            header,
        ))
        .unwrap();
        let answer = read_response(&mut s, &mut Vec::new()).expect("an answer");
        assert_eq!(
            (answer.status, answer.error_code().as_str()),
            (400, "bad_digest"),
            "{header:?}: no 100 Continue, a final 400"
        );
    }
    assert_eq!(rig.app.on("/pre").len(), pres, "the app is not asked");
    assert!(!rig.stored("dp/malformed.bin").exists());
}

/// Allocated bytes of `path` (st_blocks counts 512-byte units, preallocated ones included).
fn allocated(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap().blocks() * 512
}

#[test]
fn the_temporary_file_is_preallocated_and_the_stored_one_is_exact() {
    let _g = serial();
    let rig = splice_rig();
    let len = (3 << 20) + 4321;
    let body = pattern(len, 9);
    let mut s = connect(rig.node.local_addr());
    let mut buf = Vec::new();
    let cl = format!("Content-Length: {len}\r\n");
    s.write_all(&head(rig, "dp/prealloc.bin", &cl, "")).unwrap();
    assert_eq!(read_response(&mut s, &mut buf).unwrap().status, 100);
    // Before any body byte: the temporary file already holds the declared size, allocated.
    let tmp = rig.tmp_files();
    assert_eq!(tmp.len(), 1, "{tmp:?}");
    assert_eq!(std::fs::metadata(&tmp[0]).unwrap().len(), len as u64);
    assert!(
        allocated(&tmp[0]) >= len as u64,
        "{} blocks",
        allocated(&tmp[0])
    );
    write_in_pieces(&mut s, &body, &[1 << 20]);
    let answer = read_response(&mut s, &mut buf).unwrap();
    assert_eq!(answer.status, 201);
    let stored = rig.stored("dp/prealloc.bin");
    assert_eq!(std::fs::metadata(&stored).unwrap().len(), len as u64);
    assert!(allocated(&stored) >= len as u64);
    assert_stored(rig, "dp/prealloc.bin", &body);

    // A body that ends short fails as before: nothing visible, no temporary file.
    let mut s = connect(rig.node.local_addr());
    s.write_all(&head(rig, "dp/short.bin", &cl, "")).unwrap();
    assert_eq!(read_response(&mut s, &mut Vec::new()).unwrap().status, 100);
    s.write_all(&body[..len / 2]).unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let _ = read_response(&mut s, &mut Vec::new());
    std::thread::sleep(Duration::from_millis(100));
    assert!(!rig.stored("dp/short.bin").exists());
    assert!(rig.tmp_files().is_empty(), "{:?}", rig.tmp_files());
}
