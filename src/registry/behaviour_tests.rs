//! The behaviour every [`AppStore`] and [`OutboxJournal`] shares, written once (generic over a
//! [`Backend`]) and run against the sled stores, the production pair (sled apps, the outbox
//! log) and the in-memory twins by [`behaviour_tests!`]. "Reopen" is a new handle on the same
//! data: from disk for sled and the log, the same maps for the twins.

use std::collections::{BTreeMap, HashMap};

use proptest::prelude::*;

use super::tests::{entry, ids, reg, staged, TempDir, NOW};
use super::*;

/// One app store and one outbox journal, opened together.
#[derive(Clone)]
pub(super) struct Stores<A, O> {
    pub apps: A,
    pub outbox: O,
}

/// A kind of store under test.
pub(super) trait Backend {
    type Apps: AppStore + Clone + Send + 'static;
    type Outbox: OutboxJournal;
    /// Empty stores.
    fn new() -> Self;
    /// The stores, opened for the first time or again (once the previous handles are dropped).
    fn open(&self) -> Stores<Self::Apps, Self::Outbox>;
}

/// The sled stores, in one database in a throwaway directory.
pub(super) struct SledBackend(TempDir);

impl Backend for SledBackend {
    type Apps = SledApps;
    type Outbox = SledOutbox;

    fn new() -> Self {
        SledBackend(TempDir::new())
    }

    fn open(&self) -> Stores<SledApps, SledOutbox> {
        let db = SledDb::open(&self.0.path().join("registry")).unwrap();
        Stores {
            apps: SledApps::open(&db).unwrap(),
            outbox: SledOutbox::open(&db).unwrap(),
        }
    }
}

/// The production stores: the apps in sled, the outbox in its log, in a throwaway directory.
pub(super) struct DiskBackend(TempDir);

impl Backend for DiskBackend {
    type Apps = SledApps;
    type Outbox = LogOutbox;

    fn new() -> Self {
        DiskBackend(TempDir::new())
    }

    fn open(&self) -> Stores<SledApps, LogOutbox> {
        let db = SledDb::open(&self.0.path().join("registry")).unwrap();
        Stores {
            apps: SledApps::open(&db).unwrap(),
            outbox: LogOutbox::open(
                &outbox_log_path(self.0.path()),
                Durability::Synced,
                LOCK_WAIT,
            )
            .unwrap(),
        }
    }
}

/// The in-memory twins.
pub(super) struct MemoryBackend(Stores<MemoryApps, MemoryOutbox>);

impl Backend for MemoryBackend {
    type Apps = MemoryApps;
    type Outbox = MemoryOutbox;

    fn new() -> Self {
        MemoryBackend(Stores {
            apps: MemoryApps::new(),
            outbox: MemoryOutbox::new(),
        })
    }

    fn open(&self) -> Stores<MemoryApps, MemoryOutbox> {
        self.0.clone()
    }
}

/// The apps in etcd (a real member, [`etcd_url`]) under a prefix of their own, with a fresh
/// sled cache at every open: "reopen" is a node that starts with no cache and must find every
/// app in etcd. The outbox is the in-memory twin (the outbox is never in etcd).
pub(super) struct EtcdBackend {
    prefix: String,
    outbox: MemoryOutbox,
    caches: std::sync::Mutex<Vec<TempDir>>,
}

impl Backend for EtcdBackend {
    type Apps = EtcdApps;
    type Outbox = MemoryOutbox;

    fn new() -> Self {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        EtcdBackend {
            prefix: format!(
                "/unit-{}-{}/",
                std::process::id(),
                NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            ),
            outbox: MemoryOutbox::new(),
            caches: Default::default(),
        }
    }

    fn open(&self) -> Stores<EtcdApps, MemoryOutbox> {
        let dir = TempDir::new();
        let db = SledDb::open(&dir.path().join("registry")).unwrap();
        let settings = EtcdSettings {
            endpoints: vec![etcd_url().to_owned()],
            prefix: self.prefix.clone(),
        };
        let apps = EtcdApps::open(SledApps::open(&db).unwrap(), &settings).unwrap();
        self.caches.lock().unwrap().push(dir);
        Stores {
            apps,
            outbox: self.outbox.clone(),
        }
    }
}

/// One etcd member for this test process (Debian's `etcd-server`, which `make test-deps`
/// installs), on free loopback ports. It is started from a thread that lives as long as the
/// process, with `PR_SET_PDEATHSIG`, so it dies with the process; data dirs of earlier
/// processes that are gone are removed first.
fn etcd_url() -> &'static str {
    static URL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    URL.get_or_init(|| {
        use std::os::unix::process::CommandExt;
        let tmp = std::env::temp_dir();
        for entry in std::fs::read_dir(&tmp).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(pid) = name.strip_prefix("upgate-etcd-unit-") {
                if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
                    let _ = std::fs::remove_dir_all(entry.path());
                }
            }
        }
        let port = || {
            std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port()
        };
        let (client, peer) = (
            format!("http://127.0.0.1:{}", port()),
            format!("http://127.0.0.1:{}", port()),
        );
        let dir = tmp.join(format!("upgate-etcd-unit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut cmd = std::process::Command::new("etcd");
        cmd.args(["--name", "n1", "--data-dir"])
            .arg(&dir)
            .args([
                "--listen-client-urls",
                &client,
                "--advertise-client-urls",
                &client,
            ])
            .args([
                "--listen-peer-urls",
                &peer,
                "--initial-advertise-peer-urls",
                &peer,
            ])
            .args(["--initial-cluster", &format!("n1={peer}")])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        // SAFETY: prctl only, between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let child = cmd
                .spawn()
                .expect("etcd runs (`make test-deps` installs etcd-server)");
            tx.send(()).unwrap();
            let _held = child;
            loop {
                std::thread::park();
            }
        });
        rx.recv().unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while ureq::get(&format!("{client}/health"))
            .call()
            .ok()
            .and_then(|r| r.into_string().ok())
            .is_none_or(|b| !b.contains("true"))
        {
            assert!(std::time::Instant::now() < deadline, "etcd did not start");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        client
    })
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
}

fn drain(changes: &mut AppChanges) -> Vec<AppChange> {
    std::iter::from_fn(|| changes.try_recv()).collect()
}

fn register_survives_reopen<B: Backend>() {
    let b = B::new();
    let first = {
        let r = b.open().apps;
        let out = r.register(&reg("app1"), NOW).unwrap();
        assert!(out.created);
        assert_eq!(out.new_secret.as_deref(), Some(out.record.secret.as_str()));
        out.record
    };
    let r = b.open().apps;
    let again = r.get("app1").unwrap().expect("record kept across reopen");
    assert_eq!(again, first);
    assert_eq!(
        again.callback_url_pre.as_deref(),
        Some("http://app.example.com/pre")
    );
    assert_eq!(again.created_at, NOW);
    assert_eq!(r.appids().unwrap(), vec!["app1".to_string()]);
}

fn update_keeps_secret_and_absent_fields_clears_empty_ones<B: Backend>() {
    let b = B::new();
    let r = b.open().apps;
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

fn rotation_keeps_previous_secret_for_the_grace_period<B: Backend>() {
    let b = B::new();
    let r = b.open().apps;
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

fn delete_removes_and_reports_unknown<B: Backend>() {
    let b = B::new();
    let r = b.open().apps;
    r.register(&reg("app1"), NOW).unwrap();
    assert_eq!(
        r.delete("app1").unwrap().map(|rec| rec.appid),
        Some("app1".into())
    );
    assert_eq!(r.get("app1").unwrap(), None);
    assert_eq!(r.delete("app1").unwrap(), None);
    drop(r);
    assert_eq!(b.open().apps.get("app1").unwrap(), None);
}

fn bad_ids_are_typed_errors<B: Backend>() {
    let b = B::new();
    let s = b.open();
    let e = s.apps.register(&reg("bad id"), NOW).unwrap_err();
    assert!(matches!(e, AppStoreError::BadAppid), "{e:?}");
    assert!(matches!(s.apps.get("../x"), Err(AppStoreError::BadAppid)));
    assert!(matches!(s.apps.delete(""), Err(AppStoreError::BadAppid)));
    assert!(s.apps.appids().unwrap().is_empty());
    assert!(matches!(
        s.outbox.enqueue(&entry("", 1)),
        Err(OutboxError::BadEventId)
    ));
    let long = "x".repeat(MAX_EVENT_ID + 1);
    assert!(matches!(
        s.outbox.enqueue(&entry(&long, 1)),
        Err(OutboxError::BadEventId)
    ));
    s.outbox.enqueue(&entry(&long[1..], 1)).unwrap();
}

fn update_never_creates<B: Backend>() {
    let b = B::new();
    let r = b.open().apps;
    let rt = runtime();
    let e = rt.block_on(r.update_async(&reg("ghost"), NOW)).unwrap_err();
    assert!(matches!(e, AppStoreError::UnknownAppid));
    assert_eq!(r.get("ghost").unwrap(), None);
    let created = rt.block_on(r.register_async(&reg("ghost"), NOW)).unwrap();
    assert!(created.created);
    let updated = rt.block_on(r.update_async(&reg("ghost"), NOW + 1)).unwrap();
    assert!(!updated.created && updated.new_secret.is_none());
    let removed = rt.block_on(r.delete_async("ghost")).unwrap();
    assert_eq!(removed.map(|rec| rec.secret), created.new_secret);
    assert!(matches!(
        rt.block_on(r.update_async(&reg("ghost"), NOW + 2)),
        Err(AppStoreError::UnknownAppid)
    ));
}

fn concurrent_registrations_of_one_app_issue_one_secret<B: Backend>() {
    let b = B::new();
    let r = b.open().apps;
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

fn changes_are_announced_once_each_in_commit_order<B: Backend>() {
    let b = B::new();
    let r = b.open().apps;
    let rt = runtime();
    r.register(&reg("before"), NOW).unwrap();
    let mut changes = r.subscribe();
    let created = r.register(&reg("app1"), NOW).unwrap().record;
    let rotate = Registration {
        appid: "app1".into(),
        rotate_secret: true,
        ..Registration::default()
    };
    let rotated = rt
        .block_on(r.update_async(&rotate, NOW + 1))
        .unwrap()
        .record;
    // Failed writes and deletes of nothing change nothing, and announce nothing.
    assert!(rt.block_on(r.update_async(&reg("ghost"), NOW)).is_err());
    assert!(r.register(&reg("bad id"), NOW).is_err());
    assert_eq!(r.delete("nobody").unwrap(), None);
    r.delete("app1").unwrap();
    rt.block_on(r.delete_async("before")).unwrap();
    let change = |appid: &str, record: Option<AppRecord>| AppChange {
        appid: appid.into(),
        record,
    };
    assert_eq!(
        drain(&mut changes),
        [
            change("app1", Some(created)),
            change("app1", Some(rotated)),
            change("app1", None),
            change("before", None),
        ]
    );
    // Every subscriber gets every change; a dropped one is no obstacle.
    let mut second = r.subscribe();
    drop(r.subscribe());
    r.register(&reg("app2"), NOW).unwrap();
    let app2 = Some(r.get("app2").unwrap().unwrap());
    assert_eq!(drain(&mut changes), [change("app2", app2.clone())]);
    assert_eq!(drain(&mut second), [change("app2", app2)]);
}

fn changes_of_concurrent_writers_follow_the_commit_order<B: Backend>() {
    let b = B::new();
    let r = b.open().apps;
    let mut changes = r.subscribe();
    r.register(&reg("app1"), NOW).unwrap();
    let rotate = Registration {
        appid: "app1".into(),
        rotate_secret: true,
        ..Registration::default()
    };
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let (r, rotate) = (r.clone(), rotate.clone());
            std::thread::spawn(move || {
                for _ in 0..5 {
                    r.register(&rotate, NOW).unwrap();
                }
            })
        })
        .collect();
    handles.into_iter().for_each(|h| h.join().unwrap());
    let seen: Vec<AppRecord> = drain(&mut changes)
        .into_iter()
        .map(|c| c.record.expect("only puts"))
        .collect();
    assert_eq!(seen.len(), 21);
    // Each rotation keeps the secret before it: the changes chain in the order they were made.
    for pair in seen.windows(2) {
        assert_eq!(pair[1].previous_secret.as_ref(), Some(&pair[0].secret));
    }
    assert_eq!(seen.last(), r.get("app1").unwrap().as_ref());
}

fn outbox_enqueue_survives_reopen<B: Backend>() {
    let b = B::new();
    let e = entry("evt-1", 5_000);
    {
        let s = b.open();
        s.outbox.enqueue(&e).unwrap();
    }
    let s = b.open();
    assert_eq!(s.outbox.len(), 1);
    assert_eq!(s.outbox.get("evt-1").unwrap(), Some(e.clone()));
    assert_eq!(s.outbox.due(5_000, 10).unwrap(), vec![e]);
}

fn outbox_due_is_ordered_by_next_attempt_and_bounded<B: Backend>() {
    let b = B::new();
    let s = b.open();
    let ob = &s.outbox;
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
    // Ties in due time come in event id order.
    ob.enqueue(&entry("0-tie", 200)).unwrap();
    assert_eq!(ids(&ob.due(200, 10).unwrap()), ["a", "0-tie", "b"]);
}

fn outbox_reschedule_moves_an_entry_and_delivered_removes_it<B: Backend>() {
    let b = B::new();
    let s = b.open();
    let ob = &s.outbox;
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
    drop(s);

    let s = b.open();
    assert_eq!(ids(&s.outbox.due(u64::MAX, 10).unwrap()), ["a"]);
    assert!(s.outbox.delivered("a").unwrap());
    assert!(s.outbox.is_empty());
    assert_eq!(s.outbox.oldest_created_ms().unwrap(), None);
}

fn outbox_dead_entries_are_never_due_listed_per_app_and_revived<B: Backend>() {
    let b = B::new();
    let s = b.open();
    let ob = &s.outbox;
    ob.enqueue(&entry("a", 100)).unwrap();
    ob.enqueue(&entry("b", 200)).unwrap();
    ob.enqueue(&OutboxEntry {
        appid: "app2".into(),
        ..entry("c", 50)
    })
    .unwrap();
    assert!(ob
        .bury("a", 7, Some("the app answered 503".into()))
        .unwrap());
    assert!(!ob.bury("nope", 1, None).unwrap());
    assert_eq!(ids(&ob.due(u64::MAX - 1, 10).unwrap()), ["c", "b"]);
    let listed = ob.of_app("app1", 10).unwrap();
    assert_eq!(ids(&listed.pending), ["b"]);
    assert_eq!(ids(&listed.dead), ["a"]);
    let dead = &listed.dead[0];
    assert!(dead.is_dead());
    assert_eq!(dead.attempts, 7);
    assert_eq!(dead.last_error.as_deref(), Some("the app answered 503"));
    assert_eq!(ids(&ob.of_app("app2", 10).unwrap().pending), ["c"]);
    assert_eq!(ob.of_app("app1", 0).unwrap(), AppEntries::default());
    drop(s);

    // Dead survives a reopen; a revival makes it due (and pending) again, attempts kept.
    let s = b.open();
    let ob = &s.outbox;
    assert!(ob.get("a").unwrap().unwrap().is_dead());
    assert!(ob.update("a", 300, OutboxEdit::Revived).unwrap());
    ob.flush().unwrap();
    assert_eq!(ids(&ob.due(300, 10).unwrap()), ["c", "b", "a"]);
    let listed = ob.of_app("app1", 1).unwrap();
    assert_eq!(
        ids(&listed.pending),
        ["b"],
        "cut at the limit, earliest due first"
    );
    assert!(listed.dead.is_empty());
    assert_eq!(ob.get("a").unwrap().unwrap().attempts, 7);
}

fn outbox_enqueue_of_a_known_id_replaces_it<B: Backend>() {
    let b = B::new();
    let s = b.open();
    let ob = &s.outbox;
    ob.enqueue(&entry("a", 100)).unwrap();
    ob.enqueue(&entry("a", 700)).unwrap();
    assert_eq!(ob.len(), 1);
    assert!(ob.due(699, 10).unwrap().is_empty());
    assert_eq!(ids(&ob.due(700, 10).unwrap()), ["a"]);
    // Replaced at the same due time, it is still due once.
    ob.enqueue(&staged("a", 700)).unwrap();
    assert_eq!(ob.due(700, 10).unwrap(), [staged("a", 700)]);
    assert!(matches!(
        ob.enqueue(&entry("", 1)),
        Err(OutboxError::BadEventId)
    ));
}

fn outbox_async_enqueue_flushes_and_a_lazy_removal_is_kept_by_a_clean_close<B: Backend>() {
    let b = B::new();
    {
        let s = b.open();
        let rt = runtime();
        rt.block_on(s.outbox.enqueue_async(&entry("x", 1))).unwrap();
        rt.block_on(s.outbox.enqueue_async(&entry("y", 2))).unwrap();
        assert!(s.outbox.delivered_lazily("x").unwrap());
        assert!(!s.outbox.delivered_lazily("x").unwrap());
        rt.block_on(s.outbox.flush_async()).unwrap();
    }
    let s = b.open();
    assert_eq!(ids(&s.outbox.due(10, 10).unwrap()), ["y"]);
}

fn outbox_file_survives_reopen_and_placed_marks_it_and_moves_the_entry<B: Backend>() {
    let b = B::new();
    {
        let s = b.open();
        s.outbox.enqueue(&staged("s", 100)).unwrap();
        s.outbox.enqueue(&entry("plain", 150)).unwrap();
    }
    let s = b.open();
    let ob = &s.outbox;
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

fn outbox_discard_removes_without_a_trace_and_entries_lists_everything<B: Backend>() {
    let b = B::new();
    let s = b.open();
    let ob = &s.outbox;
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
    drop(s);
    let s = b.open();
    assert_eq!(ids(&s.outbox.due(u64::MAX, 10).unwrap()), ["a", "c"]);
}

/// What startup reconciliation does: change or remove each entry while iterating.
fn outbox_entries_visit_each_entry_once_while_the_loop_writes<B: Backend>() {
    let b = B::new();
    let s = b.open();
    let ob = &s.outbox;
    for (id, at) in [("a", 1), ("b", 2), ("c", 3), ("d", 4)] {
        ob.enqueue(&staged(id, at)).unwrap();
    }
    let mut seen = Vec::new();
    for e in ob.entries() {
        let e = e.unwrap();
        match seen.len() % 2 {
            0 => assert!(ob.discard(&e.event_id).unwrap()),
            _ => assert!(ob.placed(&e.event_id, 10).unwrap()),
        }
        seen.push(e.event_id);
    }
    assert_eq!(seen, ["a", "b", "c", "d"]);
    let left = ob.due(u64::MAX, 10).unwrap();
    assert_eq!(ids(&left), ["b", "d"]);
    assert!(left.iter().all(|e| e.file.as_ref().unwrap().placed));
}

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

/// The app store against a map, under random operations, including a reopen at the end.
fn registry_matches_a_map<B: Backend>(ops: &[AppOp]) -> Result<(), TestCaseError> {
    let b = B::new();
    let r = b.open().apps;
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
                let reg = Registration {
                    appid: appid.clone(),
                    callback_url_pre: change.clone(),
                    rotate_secret: *rotate,
                    ..Registration::default()
                };
                let out = r.register(&reg, now).unwrap();
                let entry = model.get(&appid).cloned();
                prop_assert_eq!(out.created, entry.is_none());
                let next = match entry {
                    None => ModelApp {
                        pre: match change {
                            Change::Set(u) => Some(u),
                            _ => None,
                        },
                        secret: out.new_secret.clone().expect("a new app gets a secret"),
                        previous: None,
                    },
                    Some(mut m) => {
                        match change {
                            Change::Keep => {}
                            Change::Clear => m.pre = None,
                            Change::Set(u) => m.pre = Some(u),
                        }
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
    let r = b.open().apps;
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
    Ok(())
}

/// The outbox against a map, under random operations, including a reopen at the end.
fn outbox_matches_a_map<B: Backend>(ops: &[BoxOp]) -> Result<(), TestCaseError> {
    let b = B::new();
    let s = b.open();
    let ob = &s.outbox;
    let mut model: BTreeMap<String, u64> = BTreeMap::new();
    for op in ops {
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
                let got: Vec<String> = ob
                    .due(now, limit)
                    .unwrap()
                    .into_iter()
                    .map(|e| e.event_id)
                    .collect();
                prop_assert_eq!(got, expected_due(&model, now, limit));
            }
        }
        prop_assert_eq!(ob.len(), model.len());
    }
    drop(s);
    let s = b.open();
    let all: Vec<String> = s
        .outbox
        .due(u64::MAX, 100)
        .unwrap()
        .into_iter()
        .map(|e| e.event_id)
        .collect();
    prop_assert_eq!(all, expected_due(&model, u64::MAX, 100));
    Ok(())
}

/// Every behaviour test above, as `#[test]`s against `$backend`, in module `$module`.
macro_rules! behaviour_tests {
    ($module:ident, $backend:ty) => {
        mod $module {
            use proptest::prelude::*;

            use super::*;

            type B = $backend;

            #[test]
            fn register_survives_reopen() {
                super::register_survives_reopen::<B>();
            }

            #[test]
            fn update_keeps_secret_and_absent_fields_clears_empty_ones() {
                super::update_keeps_secret_and_absent_fields_clears_empty_ones::<B>();
            }

            #[test]
            fn rotation_keeps_previous_secret_for_the_grace_period() {
                super::rotation_keeps_previous_secret_for_the_grace_period::<B>();
            }

            #[test]
            fn delete_removes_and_reports_unknown() {
                super::delete_removes_and_reports_unknown::<B>();
            }

            #[test]
            fn bad_ids_are_typed_errors() {
                super::bad_ids_are_typed_errors::<B>();
            }

            #[test]
            fn update_never_creates() {
                super::update_never_creates::<B>();
            }

            #[test]
            fn concurrent_registrations_of_one_app_issue_one_secret() {
                super::concurrent_registrations_of_one_app_issue_one_secret::<B>();
            }

            #[test]
            fn changes_are_announced_once_each_in_commit_order() {
                super::changes_are_announced_once_each_in_commit_order::<B>();
            }

            #[test]
            fn changes_of_concurrent_writers_follow_the_commit_order() {
                super::changes_of_concurrent_writers_follow_the_commit_order::<B>();
            }

            #[test]
            fn outbox_enqueue_survives_reopen() {
                super::outbox_enqueue_survives_reopen::<B>();
            }

            #[test]
            fn outbox_due_is_ordered_by_next_attempt_and_bounded() {
                super::outbox_due_is_ordered_by_next_attempt_and_bounded::<B>();
            }

            #[test]
            fn outbox_dead_entries_are_never_due_listed_per_app_and_revived() {
                super::outbox_dead_entries_are_never_due_listed_per_app_and_revived::<B>();
            }

            #[test]
            fn outbox_reschedule_moves_an_entry_and_delivered_removes_it() {
                super::outbox_reschedule_moves_an_entry_and_delivered_removes_it::<B>();
            }

            #[test]
            fn outbox_enqueue_of_a_known_id_replaces_it() {
                super::outbox_enqueue_of_a_known_id_replaces_it::<B>();
            }

            #[test]
            fn outbox_async_enqueue_flushes_and_a_lazy_removal_is_kept_by_a_clean_close() {
                super::outbox_async_enqueue_flushes_and_a_lazy_removal_is_kept_by_a_clean_close::<B>(
                );
            }

            #[test]
            fn outbox_file_survives_reopen_and_placed_marks_it_and_moves_the_entry() {
                super::outbox_file_survives_reopen_and_placed_marks_it_and_moves_the_entry::<B>();
            }

            #[test]
            fn outbox_discard_removes_without_a_trace_and_entries_lists_everything() {
                super::outbox_discard_removes_without_a_trace_and_entries_lists_everything::<B>();
            }

            #[test]
            fn outbox_entries_visit_each_entry_once_while_the_loop_writes() {
                super::outbox_entries_visit_each_entry_once_while_the_loop_writes::<B>();
            }

            proptest! {
                #![proptest_config(ProptestConfig::with_cases(24))]

                #[test]
                fn registry_matches_a_map(ops in prop::collection::vec(app_op(), 1..24)) {
                    super::registry_matches_a_map::<B>(&ops)?;
                }

                #[test]
                fn outbox_matches_a_map(ops in prop::collection::vec(box_op(), 1..40)) {
                    super::outbox_matches_a_map::<B>(&ops)?;
                }
            }
        }
    };
}

behaviour_tests!(on_sled, SledBackend);
behaviour_tests!(on_disk, DiskBackend);
behaviour_tests!(in_memory, MemoryBackend);
behaviour_tests!(on_etcd, EtcdBackend);
