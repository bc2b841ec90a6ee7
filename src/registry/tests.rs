use crate::error::Fault;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::*;

/// A throwaway data dir, removed on drop.
pub(super) struct TempDir(PathBuf);

impl TempDir {
    pub(super) fn new() -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "upgate-registry-unit-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        TempDir(dir)
    }

    pub(super) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub(super) fn reg(appid: &str) -> Registration {
    Registration {
        appid: appid.to_string(),
        callback_url_pre: Change::Set("http://app.example.com/pre".into()),
        callback_url_post: Change::Set("http://app.example.com/post".into()),
        ..Registration::default()
    }
}

pub(super) fn entry(id: &str, next_at: u64) -> OutboxEntry {
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

pub(super) fn staged(id: &str, next_at: u64) -> OutboxEntry {
    OutboxEntry {
        file: Some(OutboxFile {
            rel: format!("dir/{id}.bin"),
            size: 42,
            version: crate::storage::Version("4242".into()),
            placed: false,
        }),
        ..entry(id, next_at)
    }
}

pub(super) fn ids(entries: &[OutboxEntry]) -> Vec<&str> {
    entries.iter().map(|e| e.event_id.as_str()).collect()
}

pub(super) const NOW: u64 = 1_700_000_000;

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
fn record_debug_redacts_secrets() {
    let rec = AppRecord::create(&reg("app1"), NOW, "whsec_topsecret".into());
    let shown = format!("{rec:?}");
    assert!(!shown.contains("topsecret"), "{shown}");
    assert!(shown.contains("app1"));
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

/// The facade over sled ([`Registry::open`]) and over the twins ([`Registry::in_memory`]).
fn both_registries(dir: &TempDir) -> [Registry; 2] {
    [Registry::open(dir.path()).unwrap(), Registry::in_memory()]
}

#[test]
fn bad_appid_is_a_typed_error() {
    let dir = TempDir::new();
    for r in both_registries(&dir) {
        let e = r.register(&reg("bad id"), NOW).unwrap_err();
        assert!(matches!(e, RegistryError::BadAppid));
        assert_eq!((e.status(), e.code()), (400, "bad_appid"));
        assert!(matches!(r.get("../x"), Err(RegistryError::BadAppid)));
        let unknown = RegistryError::UnknownAppid;
        assert_eq!((unknown.status(), unknown.code()), (404, "unknown_appid"));
        let e = RegistryError::from(r.outbox().enqueue(&entry("", 1)).unwrap_err());
        assert!(matches!(e, RegistryError::BadEventId));
        assert_eq!((e.status(), e.code()), (400, "bad_event_id"));
    }
}

#[test]
fn a_storage_failure_keeps_its_cause_and_is_the_storage_s_fault() {
    let cause = || Box::new(std::io::Error::other("disk on fire"));
    for e in [
        RegistryError::from(AppStoreError::Unavailable(cause())),
        RegistryError::from(OutboxError::Unavailable(cause())),
    ] {
        assert_eq!((e.status(), e.code()), (500, "registry_error"));
        assert_eq!(e.blame(), crate::error::Blame::Storage);
        let source = std::error::Error::source(&e).expect("the cause is kept");
        assert!(
            source.downcast_ref::<std::io::Error>().is_some(),
            "{source}"
        );
        assert!(e.to_string().contains("disk on fire"), "{e}");
    }
}

#[test]
fn the_facade_reaches_the_app_store_and_the_outbox() {
    let dir = TempDir::new();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    for r in both_registries(&dir) {
        let mut changes = r.subscribe();
        let e = rt.block_on(r.update_async(&reg("app1"), NOW)).unwrap_err();
        assert!(matches!(e, RegistryError::UnknownAppid));
        let out = rt.block_on(r.register_async(&reg("app1"), NOW)).unwrap();
        assert_eq!(r.get("app1").unwrap().as_ref(), Some(&out.record));
        assert_eq!(r.apps().get("app1").unwrap().as_ref(), Some(&out.record));
        assert_eq!(r.appids().unwrap(), ["app1"]);
        assert_eq!(
            r.secrets_for_signing("app1", NOW).unwrap(),
            vec![out.record.secret.clone()]
        );
        rt.block_on(r.outbox().enqueue_async(&entry("evt-1", 5)))
            .unwrap();
        rt.block_on(r.flush_async()).unwrap();
        r.flush().unwrap();
        assert_eq!(ids(&r.outbox().due(5, 10).unwrap()), ["evt-1"]);
        let removed = rt.block_on(r.delete_async("app1")).unwrap();
        assert_eq!(removed, Some(out.record.clone()));
        assert_eq!(r.delete("app1").unwrap(), None);
        let seen: Vec<_> = std::iter::from_fn(|| changes.try_recv()).collect();
        assert_eq!(
            seen,
            [
                AppChange {
                    appid: "app1".into(),
                    record: Some(out.record)
                },
                AppChange {
                    appid: "app1".into(),
                    record: None
                },
            ]
        );
    }
}

#[test]
fn registry_open_keeps_apps_and_outbox_across_reopen() {
    let dir = TempDir::new();
    let secret = {
        let r = Registry::open(dir.path()).unwrap();
        r.outbox().enqueue(&staged("evt-1", 5)).unwrap();
        r.register(&reg("app1"), NOW).unwrap().record.secret
    };
    assert!(dir.path().join("registry").is_dir());
    assert!(outbox_log_path(dir.path()).is_file());
    let r = Registry::open(dir.path()).unwrap();
    assert_eq!(r.get("app1").unwrap().unwrap().secret, secret);
    assert_eq!(r.outbox().get("evt-1").unwrap(), Some(staged("evt-1", 5)));
}

#[test]
fn a_due_index_out_of_step_is_rebuilt_at_open() {
    let dir = TempDir::new();
    let path = dir.path().join("registry");
    {
        let db = SledDb::open(&path).unwrap();
        let entries = db.db().open_tree("outbox").unwrap();
        let e = entry("evt-1", 7);
        entries
            .insert("evt-1", serde_json::to_vec(&e).unwrap())
            .unwrap();
        db.flush().unwrap();
    }
    let db = SledDb::open(&path).unwrap();
    let ob = SledOutbox::open(&db).unwrap();
    assert_eq!(ob.len(), 1);
    assert_eq!(ob.due(7, 10).unwrap(), [entry("evt-1", 7)]);
}

#[test]
fn a_subscription_ends_with_its_store() {
    let apps = MemoryApps::new();
    let mut changes = apps.subscribe();
    apps.register(&reg("app1"), NOW).unwrap();
    drop(apps);
    assert!(changes.blocking_recv().is_some());
    assert_eq!(changes.blocking_recv(), None);

    let dir = TempDir::new();
    let db = SledDb::open(&dir.path().join("registry")).unwrap();
    let apps = SledApps::open(&db).unwrap();
    let mut changes = apps.subscribe();
    drop((apps, db));
    assert_eq!(changes.blocking_recv(), None);
}
