//! tus appends under `kill -9`: the real binary (`fsync = true`) takes seeded tus uploads from a
//! few raw-socket clients, is killed at seeded moments during their appends, restarted on the
//! same data dir, and the clients ask `HEAD` for the offset and resume from it. The callback app
//! runs in this process, so it outlives every kill.
//!
//! - `UPGATE_SOAK_SEED` (decimal or `0x…`): sizes, bytes, chunk sizes and kill delays (default
//!   [`DEFAULT_SEED`]); printed so a failing run can be replayed.
//! - `UPGATE_SOAK_KILLS`: kills (default 30; `make soak` sets 300).
//! - `UPGATE_SOAK_SECS`: bound of the whole loop (default 80 s).
//!
//! Checked: after each restart, with the clients parked, every unfinished upload's `HEAD`
//! offset is at least the highest offset a `204` acknowledged and at most its length, and the
//! partial body's bytes `[0, offset)` are the source's (no offset ahead of its bytes); every
//! `HEAD` a client makes obeys the same lower bound; at the end every upload a client finished
//! is visible and byte-identical (0 bytes lost), and has exactly one post-callback event
//! (`webhook-id`), delivered, with its size.

mod support;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use support::callback_app::{Answer, CallbackApp};
use support::seeded::{env_u64, Rng};
use support::ChildNode as Node;
use support::*;

const DEFAULT_SEED: u64 = 0x0075_c4a5_4b11_2025;
const PUBLIC: &str = "http://upgate.test";
const CLIENTS: usize = 3;
const MAX_SIZE: u64 = 2 << 20;
const MAX_CHUNK: u64 = 256 << 10;
/// Longest wait for the post-callbacks owed at the end.
const DELIVERY_WAIT: Duration = Duration::from_secs(20);
/// Longest time one upload may take, kills and restarts included.
const UPLOAD_BOUND: Duration = Duration::from_secs(60);
/// Longest wait for the clients to park after a kill.
const PARK_WAIT: Duration = Duration::from_secs(20);

/// Upload `index`: its size, bytes and append sizes, from (seed, index) alone.
#[derive(Clone, Copy)]
struct Plan {
    seed: u64,
    index: u64,
}

impl Plan {
    fn rng(&self, salt: u64) -> Rng {
        Rng::new(self.seed ^ self.index.wrapping_mul(0xd6e8_feb8_6659_fd93) ^ salt)
    }

    fn size(&self) -> u64 {
        let mut r = self.rng(1);
        match r.below(10) {
            0 => r.below(100),
            _ => r.below(MAX_SIZE + 1),
        }
    }

    fn rel(&self) -> String {
        format!("t{:02}/u{:06}.bin", self.index % 5, self.index)
    }

    fn bytes(&self) -> Vec<u8> {
        let size = self.size() as usize;
        let mut r = self.rng(2);
        let mut out = Vec::with_capacity(size + 8);
        while out.len() < size {
            out.extend_from_slice(&r.next().to_le_bytes());
        }
        out.truncate(size);
        out
    }

    /// The size of the append that starts at `offset` (seeded by it: a resumed upload cuts its
    /// rest differently).
    fn chunk_at(&self, offset: u64) -> u64 {
        1 + self.rng(offset ^ 3).below(MAX_CHUNK)
    }
}

/// An upload as its client knows it.
#[derive(Clone, Debug)]
struct Known {
    /// `/upload/tus/app1/{id}`.
    path: String,
    size: u64,
    /// The highest offset a `204` (or the creation) acknowledged.
    acked: u64,
    /// The client saw every byte acknowledged (or found the file stored after a lost answer).
    finished: bool,
}

/// What the clients and the kill loop share.
struct Shared {
    seed: u64,
    addr: RwLock<SocketAddr>,
    /// Set after a kill until the node is back and checked; clients park while it is set.
    paused: AtomicBool,
    parked: AtomicUsize,
    stop: AtomicBool,
    next: AtomicU64,
    uploads: Mutex<BTreeMap<u64, Known>>,
    violations: Mutex<Vec<String>>,
    /// Appends answered 204.
    appends: AtomicU64,
    /// Completions learnt from the stored file because the last answer was lost.
    lost_answers: AtomicU64,
    /// Resumptions: a `HEAD` after a failed request.
    resumed: AtomicU64,
}

impl Shared {
    fn addr(&self) -> SocketAddr {
        *self.addr.read().unwrap()
    }

    fn violation(&self, v: String) {
        eprintln!("VIOLATION: {v}");
        self.violations.lock().unwrap().push(v);
    }

    /// Waits while the kill loop holds the clients.
    fn park_if_paused(&self) {
        if !self.paused.load(Ordering::SeqCst) {
            return;
        }
        self.parked.fetch_add(1, Ordering::SeqCst);
        while self.paused.load(Ordering::SeqCst) && !self.stop.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(2));
        }
        self.parked.fetch_sub(1, Ordering::SeqCst);
    }
}

/// One request on a fresh connection; `None` when the connection failed (the node is down).
fn call(addr: SocketAddr, head: &str, body: &[u8]) -> Option<Wire> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    s.set_write_timeout(Some(Duration::from_secs(10))).ok()?;
    s.write_all(head.as_bytes()).ok()?;
    s.write_all(body).ok()?;
    let mut buf = Vec::new();
    read_response_to(&mut s, &mut buf, head.starts_with("HEAD "))
}

fn tus_head(addr: SocketAddr, path: &str) -> Option<Wire> {
    call(
        addr,
        &format!(
            "HEAD {path} HTTP/1.1\r\nHost: n\r\nTus-Resumable: 1.0.0\r\nConnection: close\r\n\r\n"
        ),
        b"",
    )
}

fn stored(addr: SocketAddr, rel: &str) -> Option<Vec<u8>> {
    let w = call(
        addr,
        &format!("GET /app1/{rel} HTTP/1.1\r\nHost: n\r\nConnection: close\r\n\r\n"),
        b"",
    )?;
    (w.status == 200).then_some(w.body)
}

/// Runs upload `plan` to its end (or until the test stops).
fn run_upload(sh: &Shared, plan: Plan) {
    let (size, bytes) = (plan.size(), plan.bytes());
    let meta = format!(
        "filename {},path {}",
        b64(format!("u{:06}.bin", plan.index).as_bytes()),
        b64(plan.rel().as_bytes())
    );
    let mut path: Option<String> = None;
    // The node's offset, `None` until `HEAD` says after a failure.
    let mut offset: Option<u64> = Some(0);
    // An upload begun is driven to its end, even after the loop stops (no kill then).
    let give_up = Instant::now() + UPLOAD_BOUND;
    loop {
        if Instant::now() > give_up {
            sh.violation(format!("{}: unfinished after {UPLOAD_BOUND:?}", plan.rel()));
            return;
        }
        sh.park_if_paused();
        let addr = sh.addr();
        let Some(up) = path.clone() else {
            let head = format!(
                "POST /upload/tus/app1/ HTTP/1.1\r\nHost: n\r\nTus-Resumable: 1.0.0\r\nUpload-Length: {size}\r\nUpload-Metadata: {meta}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            match call(addr, &head, b"") {
                Some(w) if w.status == 201 => {
                    let loc = w.header("location").unwrap_or_default();
                    let p = loc[loc.find("/upload/tus/").unwrap_or(0)..].to_owned();
                    let done = size == 0;
                    sh.uploads.lock().unwrap().insert(
                        plan.index,
                        Known {
                            path: p.clone(),
                            size,
                            acked: 0,
                            finished: done,
                        },
                    );
                    if done {
                        return;
                    }
                    path = Some(p);
                }
                Some(w) => sh.violation(format!("creation of {}: {}", plan.rel(), w.status)),
                None => std::thread::sleep(Duration::from_millis(10)),
            }
            continue;
        };
        let Some(at) = offset else {
            match tus_head(addr, &up) {
                Some(w) if w.status == 200 => {
                    let h: u64 = w.header("upload-offset").unwrap_or("x").parse().unwrap();
                    let acked = sh.uploads.lock().unwrap()[&plan.index].acked;
                    if h < acked || h > size {
                        sh.violation(format!(
                            "{}: HEAD offset {h}, acked {acked}, size {size}",
                            plan.rel()
                        ));
                    }
                    sh.resumed.fetch_add(1, Ordering::Relaxed);
                    offset = Some(h);
                }
                Some(w) if w.status == 404 => {
                    // Completed, its last answer lost; or the upload is gone (a violation).
                    if stored(addr, &plan.rel()).as_deref() == Some(&bytes[..]) {
                        sh.lost_answers.fetch_add(1, Ordering::Relaxed);
                        finish(sh, plan.index);
                    } else {
                        sh.violation(format!(
                            "{}: upload gone, file not stored whole",
                            plan.rel()
                        ));
                    }
                    return;
                }
                Some(w) => {
                    sh.violation(format!("{}: HEAD answered {}", plan.rel(), w.status));
                    return;
                }
                None => std::thread::sleep(Duration::from_millis(10)),
            }
            continue;
        };
        let len = plan.chunk_at(at).min(size - at);
        let head = format!(
            "PATCH {up} HTTP/1.1\r\nHost: n\r\nTus-Resumable: 1.0.0\r\nContent-Type: application/offset+octet-stream\r\nUpload-Offset: {at}\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n"
        );
        match call(addr, &head, &bytes[at as usize..(at + len) as usize]) {
            Some(w) if w.status == 204 => {
                let o: u64 = w.header("upload-offset").unwrap_or("x").parse().unwrap();
                if o != at + len {
                    sh.violation(format!("{}: 204 at {o}, sent to {}", plan.rel(), at + len));
                }
                sh.appends.fetch_add(1, Ordering::Relaxed);
                let mut ups = sh.uploads.lock().unwrap();
                let k = ups.get_mut(&plan.index).unwrap();
                k.acked = k.acked.max(o);
                if o == size {
                    k.finished = true;
                    return;
                }
                offset = Some(o);
            }
            // The node may still be closing a broken append, or lost its answer: ask.
            Some(w) if w.status == 409 || w.status == 404 => offset = None,
            Some(w) => {
                sh.violation(format!("{}: PATCH answered {}", plan.rel(), w.status));
                return;
            }
            None => {
                offset = None;
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

fn finish(sh: &Shared, index: u64) {
    sh.uploads.lock().unwrap().get_mut(&index).unwrap().finished = true;
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Post-callbacks as the app saw them, by `webhook-id`.
#[derive(Default)]
struct Posts {
    /// webhook-id → (path, size) of its first attempt.
    events: HashMap<String, (String, u64)>,
    delivered: HashSet<String>,
}

/// With the clients parked: every unfinished upload's offset is acknowledged and backed by its
/// bytes in the partial body.
fn check_offsets(sh: &Shared, partial: &Path) -> usize {
    let addr = sh.addr();
    let ups: Vec<(u64, Known)> = sh
        .uploads
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, k)| !k.finished)
        .map(|(i, k)| (*i, k.clone()))
        .collect();
    let mut checked = 0;
    for (index, k) in ups {
        let plan = Plan {
            seed: sh.seed,
            index,
        };
        let w = tus_head(addr, &k.path).expect("the restarted node answers HEAD");
        if w.status == 404 {
            // The last append completed before the kill, its answer lost: stored whole.
            if stored(addr, &plan.rel()).as_deref() != Some(&plan.bytes()[..]) {
                sh.violation(format!(
                    "{}: gone after restart, not stored whole",
                    plan.rel()
                ));
            }
            continue;
        }
        let h: u64 = w.header("upload-offset").unwrap_or("x").parse().unwrap();
        if h < k.acked || h > k.size {
            sh.violation(format!(
                "{}: after restart HEAD offset {h}, acknowledged {}, size {}",
                plan.rel(),
                k.acked,
                k.size
            ));
        }
        let id = k.path.rsplit('/').next().unwrap();
        let on_disk = std::fs::read(partial.join(format!("{id}.part"))).unwrap_or_default();
        let src = plan.bytes();
        if (on_disk.len() as u64) < h || on_disk[..h as usize] != src[..h as usize] {
            sh.violation(format!(
                "{}: offset {h} ahead of its bytes ({} on disk, or they differ)",
                plan.rel(),
                on_disk.len()
            ));
        }
        checked += 1;
    }
    checked
}

/// Kills during tus appends lose no acknowledged byte, never report an offset ahead of its
/// bytes, and notify once per completed upload.
#[test]
fn kill_9_during_tus_appends_loses_no_acknowledged_byte() {
    let seed = env_u64("UPGATE_SOAK_SEED").unwrap_or(DEFAULT_SEED);
    let kills = env_u64("UPGATE_SOAK_KILLS").unwrap_or(30) as usize;
    let bound = Duration::from_secs(env_u64("UPGATE_SOAK_SECS").unwrap_or(80));
    println!("tus crash loop: seed {seed:#x} ({seed}), {kills} kills, bound {bound:?}");
    let started = Instant::now();

    let posts = Arc::new(Mutex::new(Posts::default()));
    let app = {
        let posts = posts.clone();
        CallbackApp::start(0, move |r| {
            if r.path != "/post" {
                return Answer::ok();
            }
            let id = r.header("webhook-id").unwrap_or_default().to_string();
            let json = r.json();
            let mut p = posts.lock().unwrap();
            p.events.entry(id.clone()).or_insert_with(|| {
                (
                    json["path"].as_str().unwrap_or_default().to_owned(),
                    json["size"].as_u64().unwrap_or(u64::MAX),
                )
            });
            p.delivered.insert(id);
            Answer::json(200, r#"{"ok":true}"#)
        })
    };

    let dir = test_config().data_dir;
    let data = dir.join("data");
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("node.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\ndata_dir = \"{}\"\npublic_url = \"{PUBLIC}\"\nfsync = true\n\
             threads = 2\ncallback_timeout_ms = 1000\noutbox_retry_max_ms = 1000\nlog_level = \"warn\"\n",
            data.display()
        ),
    )
    .unwrap();
    let partial: PathBuf = data.join("partial");

    let mut node = Node::spawn(&config);
    let reg = register_form(node.addr, "app1", &app.url("/pre"), &app.url("/post"));
    assert_eq!(reg.status, 200, "registration");

    let sh = Arc::new(Shared {
        seed,
        addr: RwLock::new(node.addr),
        paused: AtomicBool::new(false),
        parked: AtomicUsize::new(0),
        stop: AtomicBool::new(false),
        next: AtomicU64::new(0),
        uploads: Mutex::new(BTreeMap::new()),
        violations: Mutex::new(Vec::new()),
        appends: AtomicU64::new(0),
        lost_answers: AtomicU64::new(0),
        resumed: AtomicU64::new(0),
    });
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let sh = sh.clone();
            std::thread::spawn(move || {
                while !sh.stop.load(Ordering::SeqCst) {
                    sh.park_if_paused();
                    let index = sh.next.fetch_add(1, Ordering::SeqCst);
                    run_upload(&sh, Plan { seed, index });
                }
            })
        })
        .collect();

    let mut kill_rng = Rng::new(seed ^ 0x4b11);
    let (mut done_kills, mut offsets_checked) = (0usize, 0usize);
    while done_kills < kills && started.elapsed() < bound {
        std::thread::sleep(Duration::from_millis(60 + kill_rng.below(600)));
        node.kill_9();
        done_kills += 1;
        sh.paused.store(true, Ordering::SeqCst);
        let park_by = Instant::now() + PARK_WAIT;
        while sh.parked.load(Ordering::SeqCst) < CLIENTS {
            assert!(
                Instant::now() < park_by,
                "clients did not park after kill {done_kills}"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
        node = Node::spawn(&config);
        *sh.addr.write().unwrap() = node.addr;
        offsets_checked += check_offsets(&sh, &partial);
        sh.paused.store(false, Ordering::SeqCst);
    }
    sh.stop.store(true, Ordering::SeqCst);
    for c in clients {
        c.join().expect("client thread");
    }

    // Every finished upload: stored whole, one post-callback event, delivered.
    let finished: Vec<(u64, Known)> = sh
        .uploads
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, k)| k.finished)
        .map(|(i, k)| (*i, k.clone()))
        .collect();
    let mut bytes_lost = 0u64;
    let mut bytes_verified = 0u64;
    for (index, k) in &finished {
        let plan = Plan {
            seed,
            index: *index,
        };
        let got = std::fs::read(data.join("files/app1").join(plan.rel())).unwrap_or_default();
        if got != plan.bytes() {
            bytes_lost += k.size;
            sh.violation(format!("{}: finished but not stored whole", plan.rel()));
        }
        bytes_verified += got.len() as u64;
    }
    let want: HashSet<String> = finished
        .iter()
        .map(|(i, _)| Plan { seed, index: *i }.rel())
        .collect();
    let deadline = Instant::now() + DELIVERY_WAIT;
    loop {
        let p = posts.lock().unwrap();
        let delivered: HashSet<&str> = p
            .delivered
            .iter()
            .filter_map(|id| p.events.get(id).map(|(path, _)| path.as_str()))
            .collect();
        if want.iter().all(|r| delivered.contains(r.as_str())) || Instant::now() > deadline {
            break;
        }
        drop(p);
        std::thread::sleep(Duration::from_millis(25));
    }
    node.kill_9();
    let p = posts.lock().unwrap();
    let mut per_path: HashMap<&str, Vec<u64>> = HashMap::new();
    for (path, size) in p.events.values() {
        per_path.entry(path.as_str()).or_default().push(*size);
    }
    for rel in &want {
        let index: u64 = rel[rel.len() - 10..rel.len() - 4].parse().unwrap();
        let size = Plan { seed, index }.size();
        match per_path.get(rel.as_str()).map(Vec::as_slice) {
            Some([s]) if *s == size => {}
            other => sh.violation(format!(
                "{rel}: post-callback events {other:?}, size {size}"
            )),
        }
    }
    let stray: Vec<&&str> = per_path.keys().filter(|r| !want.contains(**r)).collect();
    if !stray.is_empty() {
        sh.violation(format!(
            "post-callbacks for uploads no client finished: {stray:?}"
        ));
    }

    let violations = sh.violations.lock().unwrap().clone();
    println!(
        "tus crash loop summary: seed={seed:#x} kills={done_kills} uploads_started={} finished={} appends_204={} \
         resumed_after_failure={} lost_last_answers={} offsets_checked_after_restart={offsets_checked} \
         post_events={} bytes_verified={bytes_verified} bytes_lost={bytes_lost} violations={} runtime={:.1}s",
        sh.uploads.lock().unwrap().len(),
        finished.len(),
        sh.appends.load(Ordering::Relaxed),
        sh.resumed.load(Ordering::Relaxed),
        sh.lost_answers.load(Ordering::Relaxed),
        p.events.len(),
        violations.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(violations.is_empty(), "seed {seed:#x}: {violations:#?}");
    assert_eq!(bytes_lost, 0);
    assert!(done_kills >= kills.min(10), "too few kills in the bound");
    assert!(!finished.is_empty(), "no upload ever finished");
    assert!(
        offsets_checked > 0,
        "no kill landed while an upload was unfinished"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
