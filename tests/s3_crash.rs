//! A crash loop across nodes on an S3 origin (`store = "s3"`), in both origin modes: two real
//! nodes (child processes) share a real etcd (the registry) and a real Garage (the origin);
//! each round starts a few concurrent uploads at one of them and `kill -9`s it at a seeded
//! moment, then starts it again on the same data dir. The callback app and the stores run
//! in this process or beside it, so they outlive every kill.
//!
//! - `UPGATE_SOAK_SEED` (decimal or `0x…`): which node, how many uploads, their sizes, bytes
//!   and pacing, and the kill moments (default [`DEFAULT_SEED`]); printed so a failing run can
//!   be replayed.
//! - `UPGATE_SOAK_KILLS`: kills per origin mode (default [`DEFAULT_KILLS`]).
//! - `ORIGIN_NODE_LOG`: the nodes' `log_level` (default `warn`); their logs are kept
//!   beside their data dirs and named by a failure.
//!
//! Checked (0 bytes lost, nothing claimed that did not happen):
//! - `before_callback`: every upload answered `201` is at the origin, byte-identical, as soon
//!   as its answer came (checked after every round, the node that took it dead);
//!   `background`: it gets there (the queues of both nodes drain within [`SETTLE_WAIT`]);
//! - every `201` names its path and size, and every `201`'d upload downloads byte-identical
//!   from both nodes, after a last `kill -9` and restart of both;
//! - no object at the origin and no file a node serves differs from what its client sent
//!   (an upload cut by a kill leaves all of it or nothing);
//! - every `201`'d upload's post-callback is delivered (the outbox retries across restarts),
//!   with the upload's id and size, and every post-callback names a file the origin holds;
//! - no temporary file survives a node's startup;
//! - no file stays at the origin (so served by every node) that no post-callback names: with
//!   `before_callback`, a kill between the origin's put and the local commit leaves such an
//!   object, and the restarted node deletes it (its intent, `src/origin/queue.rs`).

mod support;

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use support::callback_app::CallbackApp;
use support::etcd::Etcd;
use support::garage::Garage;
use support::origin_node::{eventually, get, register, OriginNode, Setup};
use support::seeded::{env_u64, Rng};
use support::*;

const DEFAULT_SEED: u64 = 0x0053_3c4a_5400_2025;
const DEFAULT_KILLS: u64 = 12;
const APPID: &str = "shop";
const MIN_SIZE: u64 = 1 << 10;
const MAX_SIZE: u64 = 6 << 20;
/// Concurrent uploads per round: 1 to this many.
const MAX_UPLOADS: u64 = 3;
/// The kill comes this long (at most) after the round's uploads start.
const MAX_KILL_MS: u64 = 400;
/// Longest wait for the background copies to reach the origin, and for the post-callbacks.
const SETTLE_WAIT: Duration = Duration::from_secs(30);
/// The outbox retries a post-callback that a kill interrupted within a second.
const EXTRA_TOML: &str = "outbox_retry_max_ms = 1000\n";

/// Upload `index`: its path, size, bytes and pacing, from (seed, index) alone.
#[derive(Clone, Copy, Debug)]
struct Plan {
    seed: u64,
    index: u64,
}

impl Plan {
    fn rng(&self, salt: u64) -> Rng {
        Rng::new(self.seed ^ self.index.wrapping_mul(0xd6e8_feb8_6659_fd93) ^ salt)
    }

    /// Half small (up to 256 KiB), a quarter up to 2 MiB, a quarter up to [`MAX_SIZE`]: a
    /// debug build puts ~7 MiB/s to the origin, so with kills within [`MAX_KILL_MS`] the large
    /// ones are mostly killed during their put and the small ones mostly answered.
    fn size(&self) -> usize {
        let mut r = self.rng(1);
        let (low, high) = match r.below(4) {
            0 | 1 => (MIN_SIZE, 256 << 10),
            2 => (256 << 10, 2 << 20),
            _ => (2 << 20, MAX_SIZE),
        };
        (low + r.below(high - low + 1)) as usize
    }

    fn rel(&self) -> String {
        format!("c{}/u{:04}.bin", self.index % 3, self.index)
    }

    fn key(&self) -> String {
        format!("{APPID}/{}", self.rel())
    }

    fn bytes(&self) -> Vec<u8> {
        self.rng(2).bytes(self.size())
    }

    /// Where the body is cut into writes, and the pause after each: 2 to 6 writes, 5 to
    /// 30 ms apart, so that with the origin's put an upload lasts a few hundred milliseconds
    /// and some end before the kill, some during it.
    fn pacing(&self) -> (usize, Duration) {
        let mut r = self.rng(3);
        (
            2 + r.below(5) as usize,
            Duration::from_millis(5 + r.below(26)),
        )
    }

    /// How long after the round's start the upload begins.
    fn delay(&self) -> Duration {
        Duration::from_millis(self.rng(4).below(60))
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
#[derive(Debug)]
struct Outcome {
    plan: Plan,
    round: usize,
    node: &'static str,
    /// The final answer, or why none came (the node died).
    answer: Result<Wire, String>,
}

impl Outcome {
    fn created(&self) -> Option<&Wire> {
        self.answer.as_ref().ok().filter(|w| w.status == 201)
    }

    /// The upload, for messages.
    fn name(&self, seed: u64) -> String {
        format!(
            "seed {seed:#x}: upload {} ({} bytes, round {}, node {})",
            self.plan.rel(),
            self.plan.size(),
            self.round,
            self.node
        )
    }
}

/// One upload with `Expect: 100-continue` on its own connection, the body in paced writes;
/// `Err` says why no final answer came.
fn send(addr: SocketAddr, plan: Plan) -> Result<Wire, String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        .map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(20))).unwrap();
    let body = plan.bytes();
    let head = format!(
        "PUT /{APPID}/{} HTTP/1.1\r\nHost: n\r\nExpect: 100-continue\r\nappid: {APPID}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        plan.rel(),
        body.len()
    );
    s.write_all(head.as_bytes())
        .map_err(|e| format!("writing the head: {e}"))?;
    let mut buf = Vec::new();
    let first = read_response(&mut s, &mut buf)
        .ok_or_else(|| format!("no answer to the head: {}", last_read_end()))?;
    if first.status != 100 {
        return Ok(first);
    }
    let (writes, pause) = plan.pacing();
    let step = body.len().div_ceil(writes);
    for (i, chunk) in body.chunks(step).enumerate() {
        s.write_all(chunk)
            .map_err(|e| format!("writing the body at {}: {e}", i * step))?;
        std::thread::sleep(pause);
    }
    read_response(&mut s, &mut buf).ok_or_else(|| format!("no final answer: {}", last_read_end()))
}

/// Whatever files are under `dir` (recursively).
fn files_under(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p.display().to_string());
        }
    }
    out
}

#[test]
fn kill_9_across_nodes_before_callback_loses_nothing_and_notifies_only_what_the_origin_holds() {
    crash_loop("before_callback");
}

#[test]
fn kill_9_across_nodes_background_loses_nothing_and_every_copy_reaches_the_origin() {
    crash_loop("background");
}

fn crash_loop(mode: &'static str) {
    let seed = env_u64("UPGATE_SOAK_SEED").unwrap_or(DEFAULT_SEED);
    let kills = env_u64("UPGATE_SOAK_KILLS").unwrap_or(DEFAULT_KILLS) as usize;
    println!("s3 crash loop ({mode}): seed {seed:#x} ({seed}), {kills} kills");
    let started = Instant::now();

    let etcd = Etcd::start();
    let garage = Garage::start();
    let app = CallbackApp::accepting();
    let setup = Setup {
        garage: &garage,
        etcd: Some(&etcd),
        app: &app,
        mode,
        overwrite: false,
    };
    let names = ["A", "B"];
    let mut nodes = [
        OriginNode::start_with("node-a", &setup, EXTRA_TOML),
        OriginNode::start_with("node-b", &setup, EXTRA_TOML),
    ];
    register(nodes[0].addr(), APPID, &app);
    let path = format!("/upload/register/{APPID}");
    let reached = eventually(Duration::from_secs(5), || {
        get(nodes[1].addr(), &path, "").status == 200
    });
    assert!(reached.is_some(), "the registration at A never reached B");
    let setup_took = started.elapsed();

    let mut violations: Vec<String> = Vec::new();
    let mut outcomes: Vec<Outcome> = Vec::new();
    let mut rng = Rng::new(seed ^ 0x5c4a);
    let mut next_index = 0u64;
    for round in 0..kills {
        let n = rng.below(2) as usize;
        let count = 1 + rng.below(MAX_UPLOADS);
        let kill_after = Duration::from_millis(rng.below(MAX_KILL_MS + 1));
        let addr = nodes[n].addr();
        let clients: Vec<_> = (0..count)
            .map(|_| {
                let plan = Plan {
                    seed,
                    index: next_index,
                };
                next_index += 1;
                std::thread::spawn(move || {
                    std::thread::sleep(plan.delay());
                    (plan, send(addr, plan))
                })
            })
            .collect();
        std::thread::sleep(kill_after);
        nodes[n].kill_9();
        let first = outcomes.len();
        for c in clients {
            let (plan, answer) = c.join().expect("client thread");
            outcomes.push(Outcome {
                plan,
                round,
                node: names[n],
                answer,
            });
        }
        nodes[n].restart();
        let ends: Vec<String> = outcomes[first..]
            .iter()
            .map(|o| match &o.answer {
                Ok(w) => format!("{} {}", o.plan.rel(), w.status),
                Err(why) => format!("{} died ({why})", o.plan.rel()),
            })
            .collect();
        println!(
            "  {mode} round {round}: node {} killed after {kill_after:?}: {}",
            names[n],
            ends.join("; ")
        );
        for o in &outcomes[first..] {
            match &o.answer {
                Ok(w) if w.status == 201 => {
                    let json = w.json();
                    if json["path"] != o.plan.rel() || json["size"] != o.plan.size() as u64 {
                        violations.push(format!("{}: 201 says {json}", o.name(seed)));
                    }
                    // before_callback: the origin held the file when the 201 was sent.
                    if mode == "before_callback"
                        && garage.get(&o.plan.key()).as_deref() != Some(&o.plan.bytes()[..])
                    {
                        violations.push(format!(
                            "{}: answered 201, not at the origin byte-identical after the kill",
                            o.name(seed)
                        ));
                    }
                }
                Ok(w) => violations.push(format!(
                    "{}: answered {} {}",
                    o.name(seed),
                    w.status,
                    String::from_utf8_lossy(&w.body)
                )),
                Err(_) => {}
            }
        }
    }
    let loop_took = started.elapsed() - setup_took;

    // Background: every queued copy reaches the origin. Both modes: every object put before a
    // commit that never happened is found and deleted (the intents are settled), at both nodes.
    for dir in ["origin/queue", "origin/intents"] {
        for (node, name) in nodes.iter().zip(names) {
            let queue = node.data_dir.join(dir);
            let drained = eventually(SETTLE_WAIT, || {
                std::fs::read_dir(&queue).is_ok_and(|mut d| d.next().is_none())
            });
            if drained.is_none() {
                violations.push(format!(
                    "seed {seed:#x}: node {name}'s {dir} not drained within {SETTLE_WAIT:?}: {:?}",
                    files_under(&queue)
                ));
            }
        }
    }

    // Every 201'd upload at the origin, byte-identical; nothing at the origin differs from
    // what its client sent.
    let mut bytes_lost = 0u64;
    let mut at_origin: HashMap<String, bool> = HashMap::new();
    for o in &outcomes {
        let held = garage.get(&o.plan.key());
        let same = held.as_deref() == Some(&o.plan.bytes()[..]);
        if held.is_some() && !same {
            violations.push(format!(
                "{}: the origin holds {} other bytes",
                o.name(seed),
                held.as_ref().map_or(0, Vec::len)
            ));
        }
        if o.created().is_some() && !same {
            bytes_lost += o.plan.size() as u64;
            violations.push(format!(
                "{}: answered 201, not at the origin byte-identical (at the end)",
                o.name(seed)
            ));
        }
        at_origin.insert(o.plan.rel(), same);
    }

    // Every 201'd upload's post-callback, delivered; every post-callback names a file the
    // origin holds, with what its upload was.
    let owed: BTreeMap<String, &Outcome> = outcomes
        .iter()
        .filter(|o| o.created().is_some())
        .map(|o| (o.plan.rel(), o))
        .collect();
    let posted = |app: &CallbackApp| -> HashMap<String, Vec<serde_json::Value>> {
        let mut by_path: HashMap<String, Vec<serde_json::Value>> = HashMap::new();
        for r in app.on("/post") {
            let json = r.json();
            let rel = json["path"].as_str().unwrap_or_default().to_string();
            by_path.entry(rel).or_default().push(json);
        }
        by_path
    };
    let delivery = eventually(SETTLE_WAIT, || {
        let got = posted(&app);
        owed.keys().all(|rel| got.contains_key(rel))
    });
    let posts = posted(&app);
    for (rel, o) in &owed {
        let Some(notes) = posts.get(rel) else {
            violations.push(format!(
                "{}: answered 201, no post-callback within {SETTLE_WAIT:?}",
                o.name(seed)
            ));
            continue;
        };
        let id = o.created().unwrap().json()["upload_id"].clone();
        if !notes.iter().all(|j| j["upload_id"] == id) {
            violations.push(format!(
                "{}: post-callbacks {notes:?}, the 201 said upload_id {id}",
                o.name(seed)
            ));
        }
    }
    let settle_took = started.elapsed() - setup_took - loop_took;

    // A last kill and restart of both: no temporary file survives startup.
    for (node, name) in nodes.iter_mut().zip(names) {
        node.kill_9();
        node.restart();
        let left = files_under(&node.data_dir.join("tmp"));
        if !left.is_empty() {
            violations.push(format!(
                "seed {seed:#x}: temporary files survived node {name}'s startup: {left:?}"
            ));
        }
    }

    // Both nodes serve every 201'd upload byte-identical, and nothing else but what the
    // origin holds.
    let mut bytes_verified = 0u64;
    for o in &outcomes {
        let want = o.plan.bytes();
        for (node, name) in nodes.iter().zip(names) {
            let w = get(node.addr(), &format!("/{APPID}/{}", o.plan.rel()), "");
            match w.status {
                200 if w.body == want => bytes_verified += want.len() as u64,
                200 => violations.push(format!(
                    "{}: node {name} serves {} other bytes",
                    o.name(seed),
                    w.body.len()
                )),
                404 if o.created().is_none() && !at_origin[&o.plan.rel()] => {}
                status => {
                    if o.created().is_some() {
                        bytes_lost += want.len() as u64;
                    }
                    violations.push(format!(
                        "{}: node {name} answers {status} {} (answered {:?}, at the origin: {})",
                        o.name(seed),
                        String::from_utf8_lossy(&w.body),
                        o.answer.as_ref().map(|w| w.status),
                        at_origin[&o.plan.rel()]
                    ))
                }
            }
        }
    }

    // Every post-callback received (late ones too) names a file the origin holds, with what
    // its upload was: no callback claims what did not happen.
    let posts = posted(&app);
    for (rel, notes) in &posts {
        let plan = index_of(rel).map(|index| Plan { seed, index });
        let good = plan.is_some_and(|p| {
            p.rel() == *rel
                && notes
                    .iter()
                    .all(|j| j["size"] == p.size() as u64 && j["success"] == "true")
        });
        if !good {
            violations.push(format!(
                "seed {seed:#x}: post-callbacks for {rel} are not its upload's: {notes:?}"
            ));
        }
        if !at_origin.get(rel).copied().unwrap_or(false) {
            violations.push(format!(
                "seed {seed:#x}: a post-callback names {rel}, which the origin does not hold \
                 (the upload was {})",
                outcomes.iter().find(|o| o.plan.rel() == *rel).map_or(
                    "unknown".to_string(),
                    |o| format!("{:?}", o.answer.as_ref().map(|w| w.status))
                )
            ));
        }
    }
    let created = owed.len();
    let died = outcomes.iter().filter(|o| o.answer.is_err()).count();
    let redelivered: usize = posts.values().map(|n| n.len().saturating_sub(1)).sum();
    // Served by every node (from the origin) though no client was answered 201 and no
    // post-callback was sent: the application never learns of these files.
    let unannounced: Vec<String> = outcomes
        .iter()
        .filter(|o| at_origin[&o.plan.rel()] && !posts.contains_key(&o.plan.rel()))
        .map(|o| o.name(seed))
        .collect();
    for u in &unannounced {
        violations.push(format!(
            "{u}: at the origin, served by both nodes, yet no post-callback names it"
        ));
    }
    // Objects of uncommitted uploads the restarted nodes found and deleted (logged at WARN).
    let orphans_deleted: usize = nodes
        .iter()
        .map(|n| {
            std::fs::read_to_string(&n.log)
                .unwrap_or_default()
                .matches("was never committed")
                .count()
        })
        .sum();
    println!("  orphans deleted at the origin by restarted nodes: {orphans_deleted}");
    println!(
        "s3 crash loop summary: mode={mode} seed={seed:#x} kills={kills} uploads={} created_201={created} \
         died={died} at_origin={} at_origin_unannounced={} post_callbacks={} (paths {}, repeated {redelivered}) delivered_within={:?} \
         bytes_verified={bytes_verified} bytes_lost={bytes_lost} violations={} \
         setup={:.1}s loop={:.1}s settle={:.1}s runtime={:.1}s",
        outcomes.len(),
        at_origin.values().filter(|v| **v).count(),
        unannounced.len(),
        posts.values().map(Vec::len).sum::<usize>(),
        posts.len(),
        delivery,
        violations.len(),
        setup_took.as_secs_f64(),
        loop_took.as_secs_f64(),
        settle_took.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    if !violations.is_empty() {
        for (node, name) in nodes.iter().zip(names) {
            eprintln!(
                "node {name} log {} (last lines):\n{}",
                node.log.display(),
                node.log_tail(40)
            );
        }
    }
    assert!(
        violations.is_empty(),
        "seed {seed:#x} ({mode}): {violations:#?}"
    );
    assert_eq!(bytes_lost, 0, "seed {seed:#x} ({mode}): bytes lost");
    assert!(
        created > 0,
        "seed {seed:#x} ({mode}): no upload was answered 201 (every one killed)"
    );
}
