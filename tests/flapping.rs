//! The application server flapping under a load of uploads: it refuses connections, slams them,
//! hangs past the callback timeout, answers garbage, answers slowly, vetoes, answers OK — in
//! turn, several times over — while client threads upload concurrently.
//!
//! Every client gets a contract status (201, 403, 502, 504, or 503 with `Retry-After`) within a
//! bound derived from the configuration; every 201's post-callback is delivered once the app is
//! back, with the same `webhook-id` and body on every attempt; no post-callback names an upload
//! that was not stored.

mod support;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::callback_app::{FlappingApp, Mode};
use support::*;
use upgate::config::Config;
use upgate::registry::OutboxJournal;

const CALLBACK_TIMEOUT: Duration = Duration::from_millis(400);
const HANG: Duration = Duration::from_millis(1000);
const SLOW: Duration = Duration::from_millis(150);
const CLIENTS: usize = 6;
const CYCLES: usize = 7;
/// Short against an upload, so a pre-callback and its post-callback often meet different modes.
const PHASE: Duration = Duration::from_millis(450);
const CYCLE: [Mode; 7] = [
    Mode::Ok,
    Mode::Down,
    Mode::Hanging,
    Mode::Garbage,
    Mode::Slow,
    Mode::Slam,
    Mode::Veto,
];

/// The longest an upload may take to get its final answer: the flow bounds each callback wait
/// by `2 × callback_timeout + 1 s` (queue wait included), there are two (pre and post), plus the
/// body, the commit and scheduling on a loaded machine.
fn answer_bound() -> Duration {
    let callback = CALLBACK_TIMEOUT * 2 + Duration::from_secs(1);
    let body_and_commit = Duration::from_secs(2);
    let margin = Duration::from_secs(2);
    callback * 2 + body_and_commit + margin
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

#[derive(Debug)]
struct Done {
    path: String,
    status: Option<u16>,
    retry_after: bool,
    took: Duration,
    body: Option<serde_json::Value>,
}

fn upload(addr: SocketAddr, path: &str, body: &[u8], chunked: bool) -> Done {
    let started = Instant::now();
    let done = |status: Option<u16>, retry_after, body| Done {
        path: path.to_string(),
        status,
        retry_after,
        took: started.elapsed(),
        body,
    };
    let Ok(mut s) = TcpStream::connect(addr) else {
        return done(None, false, None);
    };
    // Past the bound the test fails anyway; this only keeps a hang from blocking it.
    s.set_read_timeout(Some(answer_bound() + Duration::from_secs(5)))
        .unwrap();
    let framing = if chunked {
        "Transfer-Encoding: chunked\r\n".to_string()
    } else {
        format!("Content-Length: {}\r\n", body.len())
    };
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: n\r\nExpect: 100-continue\r\nappid: app1\r\n{framing}\r\n"
    );
    if s.write_all(head.as_bytes()).is_err() {
        return done(None, false, None);
    }
    let mut buf = Vec::new();
    let Some(mut wire) = read_response(&mut s, &mut buf) else {
        return done(None, false, None);
    };
    if wire.status == 100 {
        let sent = if chunked {
            let mut framed = format!("{:x}\r\n", body.len()).into_bytes();
            framed.extend_from_slice(body);
            framed.extend_from_slice(b"\r\n0\r\n\r\n");
            if body.is_empty() {
                framed = b"0\r\n\r\n".to_vec();
            }
            s.write_all(&framed)
        } else {
            s.write_all(body)
        };
        if sent.is_err() {
            return done(None, false, None);
        }
        match read_response(&mut s, &mut buf) {
            Some(w) => wire = w,
            None => return done(None, false, None),
        }
    }
    let json = serde_json::from_slice(&wire.body).ok();
    done(
        Some(wire.status),
        wire.header("Retry-After").is_some(),
        json,
    )
}

#[test]
fn a_flapping_app_never_hangs_a_client_and_every_201_is_notified_exactly_as_recorded() {
    let started = Instant::now();
    let app = FlappingApp::start(HANG, SLOW);
    let config = Config {
        callback_timeout_ms: CALLBACK_TIMEOUT.as_millis() as u64,
        callback_workers: 3,
        callback_queue: 2,
        outbox_retry_max_ms: 500,
        body_idle_timeout_ms: 5000,
        ..test_config()
    };
    let data = config.data_dir.clone();
    let node = start(config);
    let addr = node.local_addr();
    assert_eq!(
        register_form(addr, "app1", &app.url("/pre"), &app.url("/post")).status,
        200
    );

    let stop = Arc::new(AtomicBool::new(false));
    let next = Arc::new(AtomicU64::new(0));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let (stop, next) = (stop.clone(), next.clone());
            std::thread::spawn(move || {
                let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (c as u64 + 1));
                let mut done = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let size = (rng.next() % (64 << 10)) as usize;
                    let body: Vec<u8> = (0..size).map(|k| (k as u64 ^ i) as u8).collect();
                    let d = upload(addr, &format!("/app1/f/{i}.bin"), &body, i % 3 == 0);
                    match d.status {
                        Some(201) => {}
                        Some(503) => std::thread::sleep(Duration::from_millis(50)),
                        _ => std::thread::sleep(Duration::from_millis(10)),
                    }
                    done.push(d);
                }
                done
            })
        })
        .collect();

    for _ in 0..CYCLES {
        for mode in CYCLE {
            app.set(mode);
            std::thread::sleep(PHASE);
        }
    }
    app.set(Mode::Ok);
    stop.store(true, Ordering::Relaxed);
    let done: Vec<Done> = clients
        .into_iter()
        .flat_map(|c| c.join().expect("client thread"))
        .collect();

    // Every client got a contract status, in time.
    let bound = answer_bound();
    let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
    for d in &done {
        let status = d
            .status
            .unwrap_or_else(|| panic!("{}: no answer after {:?}", d.path, d.took));
        assert!(
            d.took <= bound,
            "{}: answered {status} after {:?}, past the bound {bound:?}",
            d.path,
            d.took
        );
        match status {
            201 | 403 | 502 | 504 => {}
            503 => assert!(d.retry_after, "{}: 503 without Retry-After", d.path),
            other => panic!("{}: status {other} is not a contract answer here", d.path),
        }
        *statuses.entry(status).or_default() += 1;
    }

    // Every 201's notification is delivered once the app is back, as recorded.
    let created: HashMap<String, &serde_json::Value> = done
        .iter()
        .filter(|d| d.status == Some(201))
        .map(|d| {
            let json = d.body.as_ref().expect("201 has a JSON body");
            (json["upload_id"].as_str().unwrap().to_string(), json)
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(20);
    let delivered = loop {
        let delivered: HashSet<String> = app
            .log()
            .iter()
            .filter(|f| f.request.path == "/post" && f.answered_2xx)
            .filter_map(|f| f.request.json()["upload_id"].as_str().map(String::from))
            .collect();
        let all = created.keys().all(|id| delivered.contains(id));
        if (all && node.app.registry.outbox().is_empty()) || Instant::now() > deadline {
            break delivered;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let missing: Vec<&String> = created
        .keys()
        .filter(|id| !delivered.contains(*id))
        .collect();
    assert!(
        missing.is_empty(),
        "201 uploads never notified: {missing:?}"
    );
    assert!(
        node.app.registry.outbox().is_empty(),
        "undelivered notifications remain"
    );

    let log = app.log();
    let mut first_body: HashMap<String, Vec<u8>> = HashMap::new();
    let mut attempts = 0;
    for f in log.iter().filter(|f| f.request.path == "/post") {
        attempts += 1;
        let json = f.request.json();
        let id = json["upload_id"].as_str().unwrap().to_string();
        let webhook_id = f.request.header("webhook-id").unwrap_or_default();
        assert_eq!(
            webhook_id,
            format!("evt_{id}"),
            "webhook-id is the event id"
        );
        let body = first_body
            .entry(id.clone())
            .or_insert_with(|| f.request.body.clone());
        assert_eq!(body, &f.request.body, "{id}: a retry changed the body");
        match created.get(&id) {
            Some(answer) => {
                for key in ["path", "size", "url", "upload_id", "filename"] {
                    assert_eq!(json[key], answer[key], "{id}: {key}");
                }
            }
            None => {
                let rel = json["path"].as_str().unwrap_or_default();
                panic!(
                    "post-callback for {id} ({rel}), which did not get 201 (visible: {})",
                    data.join("files/app1").join(rel).exists()
                );
            }
        }
    }
    // Nothing is visible without its 201 either.
    let stored: usize = std::fs::read_dir(data.join("files/app1/f"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(stored, created.len(), "files stored without a 201");

    let pending = created
        .values()
        .filter(|json| json["callback"] == "pending")
        .count();
    let retried = {
        let mut n: HashMap<&str, usize> = HashMap::new();
        for f in log.iter().filter(|f| f.request.path == "/post") {
            *n.entry(f.request.header("webhook-id").unwrap_or_default())
                .or_default() += 1;
        }
        n.values().filter(|&&c| c > 1).count()
    };
    let modes_seen: BTreeMap<String, usize> = log.iter().fold(BTreeMap::new(), |mut m, f| {
        *m.entry(format!("{:?}", f.mode)).or_default() += 1;
        m
    });
    println!(
        "flapping summary: uploads={} statuses={statuses:?} created={} pending_at_201={pending} \
         notifications_delivered={} post_attempts={attempts} retried={retried} callbacks_by_mode={modes_seen:?} bound={bound:?} \
         slowest_answer={:?} runtime={:.1}s",
        done.len(),
        created.len(),
        delivered.len(),
        done.iter().map(|d| d.took).max().unwrap_or_default(),
        started.elapsed().as_secs_f64()
    );
    for expected in [201, 403, 502, 504] {
        assert!(
            statuses.contains_key(&expected),
            "the flapping never produced a {expected}: {statuses:?}"
        );
    }
    assert!(
        pending > 0,
        "no 201 was answered before its post-callback was delivered: the outbox was not exercised"
    );
    node.shutdown();
    let _ = std::fs::remove_dir_all(&data);
}
