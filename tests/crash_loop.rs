//! A seeded crash-consistency loop: the real binary under a load of uploads, `kill -9` at seeded
//! random moments, restarted on the same data dir, and checked after every restart.
//!
//! - `UPGATE_SOAK_SEED` (decimal or `0x…`): the seed of sizes, bytes, framings and kill delays
//!   (default [`DEFAULT_SEED`]); printed so a failing run can be replayed.
//! - `UPGATE_SOAK_KILLS`: kills (default 30).
//! - `UPGATE_SOAK_SECS`: bound of the whole loop (default 80 s); the loop stops early at it.
//!
//! After each restart: no temporary file survived startup; the registration is intact; every
//! visible file is complete and byte-identical to what its client sent (files new since the last
//! restart in full, a seeded sample of older ones, everything once more at the end); every upload
//! answered `201` is visible; no post-callback ever named a file that is not visible; and, before
//! the next kill (bounded wait), every visible file's post-callback has been delivered, exactly as
//! recorded (same body on every attempt, de-duplicated by `webhook-id`).

mod support;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::callback_app::{Answer, CallbackApp};
use support::seeded::{env_u64, Rng};
use support::ChildNode as Node;
use support::*;

const DEFAULT_SEED: u64 = 0x00c0_ffee_5eed_2024;
const PUBLIC: &str = "http://upgate.test";
const CLIENTS: usize = 3;
const MAX_SIZE: u64 = 320 << 10;
/// Older files fully re-read after each restart (besides every new one).
const SAMPLE_OLD: usize = 24;
/// Longest wait for post-callbacks of visible files.
const DELIVERY_WAIT: Duration = Duration::from_secs(15);

/// What upload `index` sends: its size and framing, derived from (seed, index) alone.
#[derive(Clone, Copy)]
struct Plan {
    index: u64,
    size: u64,
    chunked: bool,
}

impl Plan {
    fn of(seed: u64, index: u64) -> Plan {
        let mut r = Rng::new(seed ^ index.wrapping_mul(0xd6e8_feb8_6659_fd93));
        let size = match r.below(8) {
            0 => 0,
            1 => r.below(64),
            _ => r.below(MAX_SIZE + 1),
        };
        Plan {
            index,
            size,
            chunked: r.below(3) == 0,
        }
    }

    fn rel(&self) -> String {
        format!("d{:02}/u{:06}.bin", self.index % 7, self.index)
    }

    /// The body: a keystream of (seed, index), 8 bytes per step.
    fn bytes(&self, seed: u64) -> Vec<u8> {
        let mut r = Rng::new(seed.rotate_left(17) ^ self.index ^ 0xb0d1);
        let mut out = Vec::with_capacity(self.size as usize + 8);
        while (out.len() as u64) < self.size {
            out.extend_from_slice(&r.next().to_le_bytes());
        }
        out.truncate(self.size as usize);
        out
    }
}

fn index_of(rel: &str) -> Option<u64> {
    rel.rsplit('/')
        .next()?
        .strip_prefix('u')?
        .strip_suffix(".bin")?
        .parse()
        .ok()
}

/// How one upload ended, as its client saw it.
#[derive(Debug, Clone)]
struct Outcome {
    plan_index: u64,
    /// Final status, `None` when the connection died first (the node was killed).
    status: Option<u16>,
}

fn dial(addr: SocketAddr) -> std::io::Result<TcpStream> {
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.set_write_timeout(Some(Duration::from_secs(10)))?;
    s.set_nodelay(true)?;
    Ok(s)
}

/// One upload on its own connection; `None` when no final answer came.
fn send(addr: SocketAddr, seed: u64, plan: &Plan) -> Option<Wire> {
    let mut s = dial(addr).ok()?;
    let framing = if plan.chunked {
        "Transfer-Encoding: chunked\r\n".to_string()
    } else {
        format!("Content-Length: {}\r\n", plan.size)
    };
    let head = format!(
        "PUT /app1/{} HTTP/1.1\r\nHost: n\r\nExpect: 100-continue\r\nappid: app1\r\n{framing}Connection: close\r\n\r\n",
        plan.rel()
    );
    s.write_all(head.as_bytes()).ok()?;
    let mut buf = Vec::new();
    let first = read_response(&mut s, &mut buf)?;
    if first.status != 100 {
        return Some(first);
    }
    let body = plan.bytes(seed);
    if plan.chunked {
        let mut r = Rng::new(seed ^ plan.index ^ 0xc4);
        let mut at = 0;
        while at < body.len() {
            let n = (1 + r.below(64 << 10) as usize).min(body.len() - at);
            s.write_all(format!("{n:x}\r\n").as_bytes()).ok()?;
            s.write_all(&body[at..at + n]).ok()?;
            s.write_all(b"\r\n").ok()?;
            at += n;
        }
        s.write_all(b"0\r\n\r\n").ok()?;
    } else {
        s.write_all(&body).ok()?;
    }
    read_response(&mut s, &mut buf)
}

/// Post-callbacks as the app saw them: every attempt, and which were answered 2xx.
#[derive(Default)]
struct Posts {
    /// webhook-id → attempts received.
    attempts: HashMap<String, u32>,
    /// webhook-id → body of the first attempt (every later attempt must carry the same).
    body: HashMap<String, Vec<u8>>,
    /// webhook-ids answered 2xx.
    delivered: HashSet<String>,
    /// Attempts whose body differed from the first one.
    changed: Vec<String>,
}

/// One post-callback in sixteen is refused on its first attempt (503), so some are retried
/// by the outbox, sometimes across a kill.
fn refuse_first(webhook_id: &str) -> bool {
    webhook_id
        .bytes()
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)))
        % 16
        == 0
}

fn walk(dir: &Path, base: &Path, out: &mut Vec<String>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(&p, base, out);
        } else {
            out.push(p.strip_prefix(base).unwrap().to_string_lossy().into_owned());
        }
    }
}

#[derive(Default)]
struct Tally {
    kills: usize,
    uploads: usize,
    created: usize,
    no_answer: usize,
    other_status: BTreeMap<u16, usize>,
    bytes_verified: u64,
    bytes_lost: u64,
    visible_without_201: usize,
    notifications: usize,
}

struct Checker {
    seed: u64,
    files: PathBuf,
    tmp: PathBuf,
    /// Files already verified in full once.
    seen: HashSet<String>,
    rng: Rng,
}

impl Checker {
    /// Every visible file complete and identical to its plan; returns the visible paths.
    fn verify_files(&mut self, tally: &mut Tally, everything: bool) -> HashSet<String> {
        let mut rels = Vec::new();
        walk(&self.files, &self.files, &mut rels);
        rels.sort();
        let old: Vec<&String> = rels.iter().filter(|r| self.seen.contains(*r)).collect();
        let sample: HashSet<String> = (0..SAMPLE_OLD.min(old.len()))
            .map(|_| old[self.rng.below(old.len() as u64) as usize].clone())
            .collect();
        for rel in &rels {
            if !everything && self.seen.contains(rel) && !sample.contains(rel) {
                continue;
            }
            let index = index_of(rel).unwrap_or_else(|| panic!("unexpected file {rel}"));
            let plan = Plan::of(self.seed, index);
            assert_eq!(rel, &plan.rel(), "file at an unexpected path");
            let got = std::fs::read(self.files.join(rel)).unwrap();
            assert!(
                got.len() as u64 == plan.size && got == plan.bytes(self.seed),
                "visible file {rel} is not what its client sent ({} bytes, want {})",
                got.len(),
                plan.size
            );
            tally.bytes_verified += got.len() as u64;
            self.seen.insert(rel.clone());
        }
        rels.into_iter().collect()
    }

    fn tmp_is_empty(&self) {
        let left: Vec<_> = std::fs::read_dir(&self.tmp)
            .map(|d| d.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert!(
            left.is_empty(),
            "temporary files survived startup: {left:?}"
        );
    }
}

/// Every post-callback names a visible file and carries what the node recorded for it.
fn check_posts(app: &CallbackApp, posts: &Mutex<Posts>, visible: &HashSet<String>, seed: u64) {
    let p = posts.lock().unwrap();
    assert!(
        p.changed.is_empty(),
        "a retry changed its body: {:?}",
        p.changed
    );
    for r in app.on("/post") {
        let json = r.json();
        let rel = json["path"].as_str().unwrap_or_default().to_string();
        assert!(
            visible.contains(&rel),
            "post-callback for a file that is not visible: {rel}"
        );
        let plan = Plan::of(seed, index_of(&rel).unwrap());
        let id = r.header("webhook-id").unwrap_or_default();
        assert_eq!(id, format!("evt_{}", json["upload_id"].as_str().unwrap()));
        assert_eq!(json["size"], plan.size, "{rel}: size");
        assert_eq!(json["success"], "true");
        assert_eq!(json["url"], format!("{PUBLIC}/app1/{rel}"));
    }
}

/// Waits (bounded) until every visible file's post-callback was answered 2xx.
fn wait_delivered(posts: &Mutex<Posts>, visible: &HashSet<String>) -> Result<usize, Vec<String>> {
    let deadline = Instant::now() + DELIVERY_WAIT;
    loop {
        let missing: Vec<String> = {
            let p = posts.lock().unwrap();
            let delivered: HashSet<String> = p
                .delivered
                .iter()
                .filter_map(|id| {
                    let body = p.body.get(id)?;
                    let json: serde_json::Value = serde_json::from_slice(body).ok()?;
                    Some(json["path"].as_str()?.to_string())
                })
                .collect();
            visible
                .iter()
                .filter(|rel| !delivered.contains(*rel))
                .cloned()
                .collect()
        };
        if missing.is_empty() {
            return Ok(visible.len());
        }
        if Instant::now() > deadline {
            return Err(missing);
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// `fsync = true`: what a `201` promises must survive power loss; here it must at least
/// survive the process.
#[test]
fn kill_9_at_random_moments_loses_no_byte_and_no_notification() {
    crash_loop(true);
}

/// `fsync = false`: nothing is synced, yet a `201` still survives `kill -9` (the data is in
/// the kernel before the answer).
#[test]
fn kill_9_without_fsync_loses_no_byte_and_no_notification() {
    crash_loop(false);
}

/// How long the node's outbox group commit pauses between taking a batch and appending it
/// (`UPGATE_FAULT_OUTBOX_DELAY_MS`), so that many kills land inside a group commit.
const COMMIT_DELAY_MS: &str = "3";

fn crash_loop(fsync: bool) {
    let seed = env_u64("UPGATE_SOAK_SEED").unwrap_or(DEFAULT_SEED);
    let kills = env_u64("UPGATE_SOAK_KILLS").unwrap_or(30) as usize;
    let bound = Duration::from_secs(env_u64("UPGATE_SOAK_SECS").unwrap_or(80));
    println!(
        "crash loop (fsync = {fsync}): seed {seed:#x} ({seed}), {kills} kills, bound {bound:?}"
    );
    // Both loops of this binary set the same value; the nodes they spawn inherit it.
    std::env::set_var("UPGATE_FAULT_OUTBOX_DELAY_MS", COMMIT_DELAY_MS);
    let started = Instant::now();

    let posts = Arc::new(Mutex::new(Posts::default()));
    let app = {
        let posts = posts.clone();
        CallbackApp::start(0, move |r| {
            if r.path != "/post" {
                return Answer::ok();
            }
            let id = r.header("webhook-id").unwrap_or_default().to_string();
            let mut p = posts.lock().unwrap();
            let n = {
                let n = p.attempts.entry(id.clone()).or_insert(0);
                *n += 1;
                *n
            };
            let first = p.body.entry(id.clone()).or_insert_with(|| r.body.clone());
            if *first != r.body {
                p.changed.push(id.clone());
            }
            if n == 1 && refuse_first(&id) {
                return Answer::json(503, "busy");
            }
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
            "listen = \"127.0.0.1:0\"\ndata_dir = \"{}\"\npublic_url = \"{PUBLIC}\"\nfsync = {fsync}\n\
             threads = 2\ncallback_timeout_ms = 1000\noutbox_retry_max_ms = 1000\nlog_level = \"warn\"\n",
            data.display()
        ),
    )
    .unwrap();

    let mut node = Node::spawn(&config);
    let reg = register_form(node.addr, "app1", &app.url("/pre"), &app.url("/post"));
    assert_eq!(reg.status, 200, "registration");

    let mut checker = Checker {
        seed,
        files: data.join("files/app1"),
        tmp: data.join("tmp"),
        seen: HashSet::new(),
        rng: Rng::new(seed ^ 0x5a),
    };
    let mut tally = Tally::default();
    let mut kill_rng = Rng::new(seed ^ 0x4b11);
    let next_index = Arc::new(AtomicU64::new(0));
    let mut outcomes: Vec<Outcome> = Vec::new();
    let mut visible: HashSet<String> = HashSet::new();

    while tally.kills < kills && started.elapsed() < bound {
        // Load: a few clients uploading until the kill.
        let stop = Arc::new(AtomicBool::new(false));
        let clients: Vec<_> = (0..CLIENTS)
            .map(|_| {
                let (stop, next, addr) = (stop.clone(), next_index.clone(), node.addr);
                std::thread::spawn(move || {
                    let mut done = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        let plan = Plan::of(seed, next.fetch_add(1, Ordering::Relaxed));
                        let status = send(addr, seed, &plan).map(|w| w.status);
                        done.push(Outcome {
                            plan_index: plan.index,
                            status,
                        });
                        if status.is_none() {
                            // The node is gone (or going): wait for the next one.
                            std::thread::sleep(Duration::from_millis(5));
                        }
                    }
                    done
                })
            })
            .collect();
        let kill_at = Instant::now() + Duration::from_millis(80 + kill_rng.below(1100));
        // Before this kill, the notifications owed since the last restart are delivered.
        if let Err(missing) = wait_delivered(&posts, &visible) {
            panic!(
                "seed {seed:#x}: post-callbacks not delivered within {DELIVERY_WAIT:?} after restart {}: {missing:?}",
                tally.kills
            );
        }
        std::thread::sleep(kill_at.saturating_duration_since(Instant::now()));
        node.kill_9();
        tally.kills += 1;
        stop.store(true, Ordering::Relaxed);
        for c in clients {
            outcomes.extend(c.join().expect("client thread"));
        }

        // Restart on the same data dir, and check before any new upload.
        node = Node::spawn(&config);
        checker.tmp_is_empty();
        let (rec, _) = exchange(
            node.addr,
            b"GET /upload/register/app1 HTTP/1.1\r\nHost: n\r\n\r\n",
        );
        assert_eq!(rec.status, 200, "registration lost");
        assert_eq!(rec.json()["callback_url_post"], app.url("/post"));
        assert_eq!(rec.json()["callback_url_pre"], app.url("/pre"));
        visible = checker.verify_files(&mut tally, false);
        for o in &outcomes {
            if o.status == Some(201) {
                let rel = Plan::of(seed, o.plan_index).rel();
                assert!(
                    visible.contains(&rel),
                    "seed {seed:#x}: upload {rel} got 201 and is gone"
                );
            }
        }
        check_posts(&app, &posts, &visible, seed);
    }

    // The last node: every notification owed is delivered, and everything is verified again.
    let owed = wait_delivered(&posts, &visible).unwrap_or_else(|missing| {
        panic!("seed {seed:#x}: post-callbacks never delivered: {missing:?}")
    });
    node.kill_9();
    let final_visible = checker.verify_files(&mut tally, true);
    assert_eq!(final_visible, visible);
    check_posts(&app, &posts, &final_visible, seed);

    let answered_201: HashSet<u64> = outcomes
        .iter()
        .filter(|o| o.status == Some(201))
        .map(|o| o.plan_index)
        .collect();
    for o in &outcomes {
        tally.uploads += 1;
        match o.status {
            Some(201) => tally.created += 1,
            None => tally.no_answer += 1,
            Some(s) => *tally.other_status.entry(s).or_default() += 1,
        }
        if o.status == Some(201) {
            let plan = Plan::of(seed, o.plan_index);
            match std::fs::read(checker.files.join(plan.rel())) {
                Ok(b) if b == plan.bytes(seed) => {}
                _ => tally.bytes_lost += plan.size,
            }
        }
    }
    tally.visible_without_201 = final_visible
        .iter()
        .filter(|rel| !answered_201.contains(&index_of(rel).unwrap()))
        .count();
    tally.notifications = owed;
    let retried = posts
        .lock()
        .unwrap()
        .attempts
        .values()
        .filter(|&&n| n > 1)
        .count();
    println!(
        "crash loop summary: fsync={fsync} seed={seed:#x} kills={} uploads={} created_201={} no_answer={} other={:?} \
         visible={} visible_without_201={} notifications_delivered={} retried_or_duplicated={} \
         bytes_verified={} bytes_lost={} runtime={:.1}s",
        tally.kills,
        tally.uploads,
        tally.created,
        tally.no_answer,
        tally.other_status,
        final_visible.len(),
        tally.visible_without_201,
        tally.notifications,
        retried,
        tally.bytes_verified,
        tally.bytes_lost,
        started.elapsed().as_secs_f64()
    );
    assert_eq!(tally.bytes_lost, 0, "seed {seed:#x}: bytes lost");
    assert!(
        tally.other_status.is_empty(),
        "seed {seed:#x}: statuses other than 201: {:?}",
        tally.other_status
    );
    assert!(tally.kills >= kills.min(10), "too few kills in the bound");
    assert!(tally.created > 0, "no upload ever completed");
    let _ = std::fs::remove_dir_all(&dir);
}
