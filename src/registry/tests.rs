use crate::error::Fault;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::*;

/// A throwaway data dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "upgate-registry-unit-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        TempDir(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn reg(appid: &str) -> Registration {
    Registration {
        appid: appid.to_string(),
        callback_url_pre: Change::Set("http://app.example.com/pre".into()),
        callback_url_post: Change::Set("http://app.example.com/post".into()),
        ..Registration::default()
    }
}

fn entry(id: &str, next_at: u64) -> OutboxEntry {
    OutboxEntry {
        event_id: id.to_string(),
        appid: "app1".into(),
        url: "http://app.example.com/post".into(),
        body: format!(r#"{{"upload_id":"{id}","success":"true"}}"#).into_bytes(),
        attempts: 0,
        next_attempt_at_ms: next_at,
        created_at_ms: next_at,
        last_error: None,
        guarded: false,
        file: None,
    }
}

fn staged(id: &str, next_at: u64) -> OutboxEntry {
    OutboxEntry {
        file: Some(OutboxFile {
            rel: format!("dir/{id}.bin"),
            size: 42,
            ino: 4242,
            placed: false,
        }),
        ..entry(id, next_at)
    }
}

fn ids(entries: &[OutboxEntry]) -> Vec<&str> {
    entries.iter().map(|e| e.event_id.as_str()).collect()
}

const NOW: u64 = 1_700_000_000;

#[test]
fn valid_appid_accepts_exactly_the_contract_alphabet() {
    for ok in ["a", "app1", "APP_1-x", &"x".repeat(64)] {
        assert!(valid_appid(ok), "{ok:?}");
    }
    for bad in [
        "",
        "app 1",
        "app/1",
        "app.1",
        "äpp",
        "app%31",
        &"x".repeat(65),
    ] {
        assert!(!valid_appid(bad), "{bad:?}");
    }
}

#[test]
fn new_secret_is_whsec_and_32_random_bytes() {
    use base64::Engine as _;
    let a = new_secret();
    let b = new_secret();
    assert_ne!(a, b);
    let key = a.strip_prefix("whsec_").expect("whsec_ prefix");
    let raw = base64::engine::general_purpose::STANDARD
        .decode(key)
        .unwrap();
    assert_eq!(raw.len(), 32);
}

#[test]
fn register_survives_reopen() {
    let dir = TempDir::new();
    let first = {
        let r = Registry::open(dir.path()).unwrap();
        let out = r.register(&reg("app1"), NOW).unwrap();
        assert!(out.created);
        assert_eq!(out.new_secret.as_deref(), Some(out.record.secret.as_str()));
        out.record
    };
    let r = Registry::open(dir.path()).unwrap();
    let again = r.get("app1").unwrap().expect("record kept across reopen");
    assert_eq!(again, first);
    assert_eq!(
        again.callback_url_pre.as_deref(),
        Some("http://app.example.com/pre")
    );
    assert_eq!(again.created_at, NOW);
    assert_eq!(r.appids().unwrap(), vec!["app1".to_string()]);
}

#[test]
fn a_held_registry_is_locked_until_released() {
    let dir = TempDir::new();
    let first = Registry::open(dir.path()).unwrap();
    let started = std::time::Instant::now();
    let e = Registry::open(dir.path()).unwrap_err();
    assert!(matches!(e, RegistryError::Locked(_)), "{e:?}");
    assert!(started.elapsed() >= LOCK_WAIT);
    assert!(e.to_string().contains("in use"), "{e}");
    // Released in the background after the drop: the next open waits for it.
    drop(first);
    Registry::open(dir.path()).unwrap();
}

#[test]
fn update_keeps_secret_and_absent_fields_clears_empty_ones() {
    let dir = TempDir::new();
    let r = Registry::open(dir.path()).unwrap();
    let created = r.register(&reg("app1"), NOW).unwrap();
    let update = Registration {
        appid: "app1".into(),
        callback_url_pre: Change::Clear,
        callback_hosts: Change::Set(vec!["cb.example.com".into()]),
        max_body_bytes: Change::Set(1000),
        ..Registration::default()
    };
    let out = r.register(&update, NOW + 5).unwrap();
    assert!(!out.created);
    assert_eq!(out.new_secret, None);
    let rec = r.get("app1").unwrap().unwrap();
    assert_eq!(rec.secret, created.record.secret);
    assert_eq!(rec.callback_url_pre, None);
    assert_eq!(
        rec.callback_url_post.as_deref(),
        Some("http://app.example.com/post")
    );
    assert_eq!(rec.callback_hosts, vec!["cb.example.com".to_string()]);
    assert_eq!(rec.max_body_bytes, Some(1000));
    assert_eq!((rec.created_at, rec.updated_at), (NOW, NOW + 5));
}

#[test]
fn rotation_keeps_previous_secret_for_the_grace_period() {
    let dir = TempDir::new();
    let r = Registry::open(dir.path()).unwrap();
    let old = r.register(&reg("app1"), NOW).unwrap().record.secret;
    assert_eq!(
        r.secrets_for_signing("app1", NOW).unwrap(),
        vec![old.clone()]
    );

    let rotate = Registration {
        appid: "app1".into(),
        rotate_secret: true,
        ..Registration::default()
    };
    let out = r.register(&rotate, NOW + 10).unwrap();
    let new = out.new_secret.expect("rotation shows the new secret");
    assert_ne!(new, old);
    assert_eq!(out.record.previous_secret.as_deref(), Some(old.as_str()));
    assert_eq!(
        out.record.previous_secret_expires,
        Some(NOW + 10 + ROTATION_GRACE_SECS)
    );

    let during = NOW + 10 + ROTATION_GRACE_SECS - 1;
    assert_eq!(
        r.secrets_for_signing("app1", during).unwrap(),
        vec![new.clone(), old.clone()]
    );
    let after = NOW + 10 + ROTATION_GRACE_SECS;
    assert_eq!(
        r.secrets_for_signing("app1", after).unwrap(),
        vec![new.clone()]
    );

    // A later update without rotation drops an expired previous secret from the record.
    let later = r.register(&reg("app1"), after).unwrap().record;
    assert_eq!(
        (later.previous_secret, later.previous_secret_expires),
        (None, None)
    );
    assert_eq!(later.secret, new);
    assert!(r.secrets_for_signing("nobody", NOW).unwrap().is_empty());
}

#[test]
fn delete_removes_and_reports_unknown() {
    let dir = TempDir::new();
    let r = Registry::open(dir.path()).unwrap();
    r.register(&reg("app1"), NOW).unwrap();
    assert_eq!(
        r.delete("app1").unwrap().map(|rec| rec.appid),
        Some("app1".into())
    );
    assert_eq!(r.get("app1").unwrap(), None);
    assert_eq!(r.delete("app1").unwrap(), None);
    drop(r);
    assert_eq!(
        Registry::open(dir.path()).unwrap().get("app1").unwrap(),
        None
    );
}

#[test]
fn bad_appid_is_a_typed_error() {
    let dir = TempDir::new();
    let r = Registry::open(dir.path()).unwrap();
    let e = r.register(&reg("bad id"), NOW).unwrap_err();
    assert!(matches!(e, RegistryError::BadAppid));
    assert_eq!((e.status(), e.code()), (400, "bad_appid"));
    assert!(matches!(r.get("../x"), Err(RegistryError::BadAppid)));
    let unknown = RegistryError::UnknownAppid;
    assert_eq!((unknown.status(), unknown.code()), (404, "unknown_appid"));
}

#[test]
fn update_never_creates() {
    let dir = TempDir::new();
    let r = Registry::open(dir.path()).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let e = rt.block_on(r.update_async(&reg("ghost"), NOW)).unwrap_err();
    assert!(matches!(e, RegistryError::UnknownAppid));
    assert_eq!(r.get("ghost").unwrap(), None);
    let created = rt.block_on(r.register_async(&reg("ghost"), NOW)).unwrap();
    assert!(created.created);
    let updated = rt.block_on(r.update_async(&reg("ghost"), NOW + 1)).unwrap();
    assert!(!updated.created && updated.new_secret.is_none());
}

#[test]
fn concurrent_registrations_of_one_app_issue_one_secret() {
    let dir = TempDir::new();
    let r = Registry::open(dir.path()).unwrap();
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let r = r.clone();
            std::thread::spawn(move || r.register(&reg("app1"), NOW).unwrap())
        })
        .collect();
    let outs: Vec<Registered> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let created: Vec<_> = outs.iter().filter(|o| o.created).collect();
    assert_eq!(created.len(), 1, "exactly one registration creates the app");
    let stored = r.get("app1").unwrap().unwrap();
    assert_eq!(
        created[0].new_secret.as_deref(),
        Some(stored.secret.as_str())
    );
    assert!(outs
        .iter()
        .filter(|o| !o.created)
        .all(|o| o.new_secret.is_none()));
}

#[test]
fn record_debug_redacts_secrets() {
    let rec = AppRecord::create(&reg("app1"), NOW, "whsec_topsecret".into());
    let shown = format!("{rec:?}");
    assert!(!shown.contains("topsecret"), "{shown}");
    assert!(shown.contains("app1"));
}

#[test]
fn outbox_enqueue_survives_reopen() {
    let dir = TempDir::new();
    let e = entry("evt-1", 5_000);
    {
        let r = Registry::open(dir.path()).unwrap();
        r.outbox().enqueue(&e).unwrap();
    }
    let r = Registry::open(dir.path()).unwrap();
    assert_eq!(r.outbox().len(), 1);
    assert_eq!(r.outbox().get("evt-1").unwrap(), Some(e.clone()));
    assert_eq!(r.outbox().due(5_000, 10).unwrap(), vec![e]);
}

#[test]
fn outbox_due_is_ordered_by_next_attempt_and_bounded() {
    let dir = TempDir::new();
    let r = Registry::open(dir.path()).unwrap();
    let ob = r.outbox();
    ob.enqueue(&entry("c", 300)).unwrap();
    ob.enqueue(&entry("a", 100)).unwrap();
    ob.enqueue(&entry("b", 200)).unwrap();
    ob.enqueue(&entry("later", 10_000)).unwrap();
    assert!(ob.due(99, 10).unwrap().is_empty());
    assert_eq!(ids(&ob.due(200, 10).unwrap()), ["a", "b"]);
    assert_eq!(ids(&ob.due(1_000, 2).unwrap()), ["a", "b"]);
    assert_eq!(
        ids(&ob.due(u64::MAX, 10).unwrap()),
        ["a", "b", "c", "later"]
    );
    assert_eq!(ob.oldest_created_ms().unwrap(), Some(100));
}

#[test]
fn outbox_reschedule_moves_an_entry_and_delivered_removes_it() {
    let dir = TempDir::new();
    let r = Registry::open(dir.path()).unwrap();
    let ob = r.outbox();
    ob.enqueue(&entry("a", 100)).unwrap();
    ob.enqueue(&entry("b", 200)).unwrap();

    assert!(ob
        .reschedule("a", 1, 500, Some("502 from app".into()))
        .unwrap());
    assert_eq!(ids(&ob.due(300, 10).unwrap()), ["b"]);
    let moved = ob.get("a").unwrap().unwrap();
    assert_eq!((moved.attempts, moved.next_attempt_at_ms), (1, 500));
    assert_eq!(moved.last_error.as_deref(), Some("502 from app"));
    assert_eq!(
        moved.body,
        entry("a", 100).body,
        "the body is sent unchanged on every retry"
    );
    assert_eq!(ids(&ob.due(500, 10).unwrap()), ["b", "a"]);

    assert!(ob.delivered("b").unwrap());
    assert!(!ob.delivered("b").unwrap());
    assert!(!ob.reschedule("b", 2, 900, None).unwrap());
    assert_eq!(ids(&ob.due(u64::MAX, 10).unwrap()), ["a"]);
    assert_eq!(ob.len(), 1);
    drop(r);

    let r = Registry::open(dir.path()).unwrap();
    assert_eq!(ids(&r.outbox().due(u64::MAX, 10).unwrap()), ["a"]);
    assert!(r.outbox().delivered("a").unwrap());
    assert!(r.outbox().is_empty());
    assert_eq!(r.outbox().oldest_created_ms().unwrap(), None);
}

#[test]
fn outbox_enqueue_of_a_known_id_replaces_it() {
    let dir = TempDir::new();
    let r = Registry::open(dir.path()).unwrap();
    let ob = r.outbox();
    ob.enqueue(&entry("a", 100)).unwrap();
    ob.enqueue(&entry("a", 700)).unwrap();
    assert_eq!(ob.len(), 1);
    assert!(ob.due(699, 10).unwrap().is_empty());
    assert_eq!(ids(&ob.due(700, 10).unwrap()), ["a"]);
    assert!(matches!(
        ob.enqueue(&entry("", 1)),
        Err(OutboxError::BadEventId)
    ));
}

#[test]
fn outbox_async_enqueue_flushes_and_a_lazy_removal_is_kept_by_a_clean_close() {
    let dir = TempDir::new();
    {
        let r = Registry::open(dir.path()).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(r.outbox().enqueue_async(&entry("x", 1)))
            .unwrap();
        rt.block_on(r.outbox().enqueue_async(&entry("y", 2)))
            .unwrap();
        assert!(r.outbox().delivered_lazily("x").unwrap());
    }
    let r = Registry::open(dir.path()).unwrap();
    assert_eq!(ids(&r.outbox().due(10, 10).unwrap()), ["y"]);
}

#[test]
fn outbox_file_survives_reopen_and_placed_marks_it_and_moves_the_entry() {
    let dir = TempDir::new();
    {
        let r = Registry::open(dir.path()).unwrap();
        r.outbox().enqueue(&staged("s", 100)).unwrap();
        r.outbox().enqueue(&entry("plain", 150)).unwrap();
    }
    let r = Registry::open(dir.path()).unwrap();
    let ob = r.outbox();
    assert_eq!(ob.get("s").unwrap(), Some(staged("s", 100)));
    assert!(ob.placed("s", 900).unwrap());
    let placed = ob.get("s").unwrap().unwrap();
    assert_eq!(placed.next_attempt_at_ms, 900);
    assert_eq!(
        placed.file,
        Some(OutboxFile {
            placed: true,
            ..staged("s", 100).file.unwrap()
        })
    );
    assert_eq!(placed.body, staged("s", 100).body, "the body never changes");
    assert_eq!(ids(&ob.due(899, 10).unwrap()), ["plain"]);
    assert_eq!(ids(&ob.due(900, 10).unwrap()), ["plain", "s"]);
    // An entry without a file only moves.
    assert!(ob.placed("plain", 1_000).unwrap());
    assert_eq!(ob.get("plain").unwrap().unwrap().file, None);
    assert!(!ob.placed("gone", 1).unwrap());
}

#[test]
fn outbox_discard_removes_without_a_trace_and_entries_lists_everything() {
    let dir = TempDir::new();
    let r = Registry::open(dir.path()).unwrap();
    let ob = r.outbox();
    for (id, at) in [("b", 2), ("a", 1), ("c", 3)] {
        ob.enqueue(&staged(id, at)).unwrap();
    }
    let all: Vec<OutboxEntry> = ob.entries().collect::<Result<_, _>>().unwrap();
    assert_eq!(ids(&all), ["a", "b", "c"]);
    assert!(ob.discard("b").unwrap());
    assert!(!ob.discard("b").unwrap());
    assert_eq!(ids(&ob.due(u64::MAX, 10).unwrap()), ["a", "c"]);
    assert_eq!(ob.len(), 2);
    ob.flush().unwrap();
    drop(r);
    let r = Registry::open(dir.path()).unwrap();
    assert_eq!(ids(&r.outbox().due(u64::MAX, 10).unwrap()), ["a", "c"]);
}

#[test]
fn an_entry_recorded_before_files_were_tracked_still_decodes() {
    let old = r#"{"event_id":"evt_1","appid":"app1","url":"http://a/post","body":"e30=","attempts":2,"next_attempt_at_ms":5,"created_at_ms":1,"last_error":null,"guarded":false}"#;
    let e: OutboxEntry = serde_json::from_str(old).unwrap();
    assert_eq!((e.file, e.body), (None, b"{}".to_vec()));
}

#[test]
fn backoff_within_a_cap_never_exceeds_it() {
    let cap = Duration::from_millis(700);
    for attempts in 0..20 {
        let d = backoff_jittered_within(attempts, "evt-1", cap);
        assert!(d <= cap && d >= cap - cap / 10, "{attempts}: {d:?}");
    }
    assert_eq!(
        backoff_jittered_within(3, "evt-1", BACKOFF_CAP),
        backoff_jittered(3, "evt-1")
    );
}

#[test]
fn backoff_doubles_from_one_second_up_to_ten_minutes() {
    let secs: Vec<u64> = (0..=12).map(|a| backoff(a).as_secs()).collect();
    assert_eq!(secs, [1, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 600, 600]);
    assert_eq!(backoff(u32::MAX), BACKOFF_CAP);
}

#[test]
fn jittered_backoff_is_deterministic_and_within_ten_percent_below() {
    for attempts in 0..20 {
        for id in ["evt-1", "evt-2", "x"] {
            let base = backoff(attempts);
            let j = backoff_jittered(attempts, id);
            assert_eq!(j, backoff_jittered(attempts, id));
            assert!(
                j <= base && j >= base - base / 10,
                "{attempts} {id}: {j:?} vs {base:?}"
            );
        }
    }
    let spread: std::collections::HashSet<Duration> = (0..50)
        .map(|i| backoff_jittered(8, &format!("evt-{i}")))
        .collect();
    assert!(
        spread.len() > 10,
        "different events retry at different times"
    );
}

mod model {
    //! The sled registry and outbox against in-memory models, under random operation sequences,
    //! including a reopen of the database at the end.

    use std::collections::{BTreeMap, HashMap};

    use proptest::prelude::*;

    use super::*;

    #[derive(Debug, Clone)]
    enum AppOp {
        Register {
            app: usize,
            pre: Option<Option<u8>>,
            rotate: bool,
        },
        Delete {
            app: usize,
        },
    }

    fn app_op() -> impl Strategy<Value = AppOp> {
        prop_oneof![
            3 => (0..3usize, prop::option::of(prop::option::of(any::<u8>())), any::<bool>())
                .prop_map(|(app, pre, rotate)| AppOp::Register { app, pre, rotate }),
            1 => (0..3usize).prop_map(|app| AppOp::Delete { app }),
        ]
    }

    #[derive(Debug, Clone, PartialEq)]
    struct ModelApp {
        pre: Option<String>,
        secret: String,
        previous: Option<String>,
    }

    #[derive(Debug, Clone)]
    enum BoxOp {
        Enqueue { id: usize, at: u64 },
        Reschedule { id: usize, at: u64 },
        Delivered { id: usize },
        Due { now: u64, limit: usize },
    }

    fn box_op() -> impl Strategy<Value = BoxOp> {
        prop_oneof![
            (0..6usize, 0..1000u64).prop_map(|(id, at)| BoxOp::Enqueue { id, at }),
            (0..6usize, 0..1000u64).prop_map(|(id, at)| BoxOp::Reschedule { id, at }),
            (0..6usize).prop_map(|id| BoxOp::Delivered { id }),
            (0..1100u64, 0..8usize).prop_map(|(now, limit)| BoxOp::Due { now, limit }),
        ]
    }

    fn expected_due(model: &BTreeMap<String, u64>, now: u64, limit: usize) -> Vec<String> {
        let mut due: Vec<(u64, &String)> = model
            .iter()
            .filter(|(_, &at)| at <= now)
            .map(|(id, &at)| (at, id))
            .collect();
        due.sort();
        due.into_iter()
            .take(limit)
            .map(|(_, id)| id.clone())
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        #[test]
        fn registry_matches_a_map(ops in prop::collection::vec(app_op(), 1..24)) {
            let dir = TempDir::new();
            let r = Registry::open(dir.path()).unwrap();
            let mut model: HashMap<String, ModelApp> = HashMap::new();
            for (step, op) in ops.iter().enumerate() {
                let now = NOW + step as u64;
                match op {
                    AppOp::Register { app, pre, rotate } => {
                        let appid = format!("app{app}");
                        let change = match pre {
                            None => Change::Keep,
                            Some(None) => Change::Clear,
                            Some(Some(n)) => Change::Set(format!("http://h{n}.example.com/pre")),
                        };
                        let reg = Registration { appid: appid.clone(), callback_url_pre: change.clone(), rotate_secret: *rotate, ..Registration::default() };
                        let out = r.register(&reg, now).unwrap();
                        let entry = model.get(&appid).cloned();
                        prop_assert_eq!(out.created, entry.is_none());
                        let next = match entry {
                            None => ModelApp {
                                pre: match change { Change::Set(u) => Some(u), _ => None },
                                secret: out.new_secret.clone().expect("a new app gets a secret"),
                                previous: None,
                            },
                            Some(mut m) => {
                                match change { Change::Keep => {}, Change::Clear => m.pre = None, Change::Set(u) => m.pre = Some(u) }
                                if *rotate {
                                    let new = out.new_secret.clone().expect("rotation shows the secret");
                                    prop_assert_ne!(&new, &m.secret);
                                    m.previous = Some(std::mem::replace(&mut m.secret, new));
                                } else {
                                    prop_assert_eq!(&out.new_secret, &None);
                                }
                                m
                            }
                        };
                        model.insert(appid, next);
                    }
                    AppOp::Delete { app } => {
                        let appid = format!("app{app}");
                        let removed = r.delete(&appid).unwrap();
                        prop_assert_eq!(removed.is_some(), model.remove(&appid).is_some());
                    }
                }
                for app in 0..3 {
                    let appid = format!("app{app}");
                    let got = r.get(&appid).unwrap();
                    let want = model.get(&appid);
                    prop_assert_eq!(got.is_some(), want.is_some());
                    if let (Some(got), Some(want)) = (got, want) {
                        prop_assert_eq!(&got.callback_url_pre, &want.pre);
                        prop_assert_eq!(&got.secret, &want.secret);
                        let mut signing = vec![want.secret.clone()];
                        signing.extend(want.previous.clone());
                        prop_assert_eq!(r.secrets_for_signing(&appid, now).unwrap(), signing);
                    }
                }
            }
            drop(r);
            let r = Registry::open(dir.path()).unwrap();
            let mut ids = r.appids().unwrap();
            ids.sort();
            let mut want: Vec<String> = model.keys().cloned().collect();
            want.sort();
            prop_assert_eq!(ids, want);
            for (appid, m) in &model {
                let got = r.get(appid).unwrap().unwrap();
                prop_assert_eq!(&got.secret, &m.secret);
                prop_assert_eq!(&got.callback_url_pre, &m.pre);
            }
        }

        #[test]
        fn outbox_matches_a_map(ops in prop::collection::vec(box_op(), 1..40)) {
            let dir = TempDir::new();
            let r = Registry::open(dir.path()).unwrap();
            let mut model: BTreeMap<String, u64> = BTreeMap::new();
            for op in &ops {
                let ob = r.outbox();
                match *op {
                    BoxOp::Enqueue { id, at } => {
                        let id = format!("evt-{id}");
                        ob.enqueue(&entry(&id, at)).unwrap();
                        model.insert(id, at);
                    }
                    BoxOp::Reschedule { id, at } => {
                        let id = format!("evt-{id}");
                        let known = ob.reschedule(&id, 1, at, None).unwrap();
                        prop_assert_eq!(known, model.contains_key(&id));
                        if known {
                            model.insert(id, at);
                        }
                    }
                    BoxOp::Delivered { id } => {
                        let id = format!("evt-{id}");
                        prop_assert_eq!(ob.delivered(&id).unwrap(), model.remove(&id).is_some());
                    }
                    BoxOp::Due { now, limit } => {
                        let got: Vec<String> = ob.due(now, limit).unwrap().into_iter().map(|e| e.event_id).collect();
                        prop_assert_eq!(got, expected_due(&model, now, limit));
                    }
                }
                prop_assert_eq!(ob.len(), model.len());
            }
            drop(r);
            let r = Registry::open(dir.path()).unwrap();
            let all: Vec<String> = r.outbox().due(u64::MAX, 100).unwrap().into_iter().map(|e| e.event_id).collect();
            prop_assert_eq!(all, expected_due(&model, u64::MAX, 100));
        }
    }
}
