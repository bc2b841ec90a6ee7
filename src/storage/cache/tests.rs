//! The open-file cache: its bounds, eviction, generations and expiry as a pure structure, then
//! the local store's use of it on one thread (hits share the open, a commit or delete makes
//! the next open miss, a file replaced behind the store's back is seen after the TTL).

use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::{Limits, OpenCache};
use crate::storage::{
    CommitOptions, LocalStore, ObjectBody, ObjectStore, Store, Target, UploadHandle,
};

fn p(name: &str) -> PathBuf {
    PathBuf::from(format!("/files/app/{name}"))
}

/// A stand-in for an open descriptor: a clone of the test's counter, so the counter tells how
/// many are alive.
fn fd(counter: &Rc<()>) -> Rc<()> {
    counter.clone()
}

/// Open "descriptors" left: the counter's references minus the test's own.
fn open_fds(counter: &Rc<()>) -> usize {
    Rc::strong_count(counter) - 1
}

const LATER: Duration = Duration::from_secs(60);

#[test]
fn the_entry_bound_holds_and_evicted_values_are_dropped() {
    let now = Instant::now();
    let fds = Rc::new(());
    let mut c = OpenCache::new(Limits {
        entries: 4,
        bytes: 1 << 20,
    });
    for i in 0..10 {
        assert!(c.insert(p(&format!("{i}")), 0, now + LATER, fd(&fds), 0));
        assert!(c.len() <= 4);
    }
    assert_eq!(c.len(), 4);
    assert_eq!(
        open_fds(&fds),
        4,
        "the six evicted values were dropped (closed)"
    );
    drop(c);
    assert_eq!(open_fds(&fds), 0);
}

#[test]
fn the_byte_bound_holds_and_a_value_larger_than_it_is_not_cached() {
    let now = Instant::now();
    let mut c = OpenCache::new(Limits {
        entries: 100,
        bytes: 10_000,
    });
    for i in 0..10 {
        assert!(c.insert(p(&format!("{i}")), 0, now + LATER, (), 3_000));
        assert!(c.bytes() <= 10_000, "{} bytes", c.bytes());
    }
    assert_eq!((c.len(), c.bytes()), (3, 9_000));
    assert!(!c.insert(p("huge"), 0, now + LATER, (), 10_001));
    assert_eq!(c.len(), 3, "refusing a huge value evicts nothing");
    assert!(c.get(&p("huge"), 0, now).is_none());
    // Replacing an entry counts its bytes once.
    assert!(c.insert(p("9"), 0, now + LATER, (), 1_000));
    assert_eq!((c.len(), c.bytes()), (3, 7_000));
}

#[test]
fn eviction_spares_entries_hit_since_the_hand_last_passed() {
    let now = Instant::now();
    let mut c = OpenCache::new(Limits {
        entries: 3,
        bytes: 1 << 20,
    });
    for name in ["a", "b", "c"] {
        c.insert(p(name), 0, now + LATER, name, 0);
    }
    // The first insert past the bound clears every mark on its first turn of the hand and
    // evicts the oldest on the second.
    c.insert(p("d"), 0, now + LATER, "d", 0);
    assert!(c.get(&p("a"), 0, now).is_none());
    // `b` is hit now; `c` is not: the next eviction takes `c`.
    assert_eq!(c.get(&p("b"), 0, now), Some("b"));
    c.insert(p("e"), 0, now + LATER, "e", 0);
    assert!(c.get(&p("c"), 0, now).is_none(), "the unused entry went");
    assert_eq!(c.get(&p("b"), 0, now), Some("b"), "the used one stayed");
    assert_eq!(c.get(&p("d"), 0, now), Some("d"));
    assert_eq!(c.get(&p("e"), 0, now), Some("e"));
}

#[test]
fn a_lookup_at_another_generation_misses_and_drops_the_entry() {
    let now = Instant::now();
    let fds = Rc::new(());
    let mut c = OpenCache::new(Limits {
        entries: 8,
        bytes: 1024,
    });
    c.insert(p("x"), 7, now + LATER, fd(&fds), 10);
    assert!(c.get(&p("x"), 7, now).is_some());
    // The path's generation moved (a commit or delete somewhere): the entry is stale.
    assert!(c.get(&p("x"), 8, now).is_none());
    assert_eq!((c.len(), c.bytes(), open_fds(&fds)), (0, 0, 0));
    // Even a later lookup at the old generation cannot find it again.
    assert!(c.get(&p("x"), 7, now).is_none());
}

#[test]
fn an_entry_expires_at_its_deadline() {
    let now = Instant::now();
    let mut c = OpenCache::new(Limits {
        entries: 8,
        bytes: 1024,
    });
    c.insert(p("t"), 0, now + Duration::from_secs(1), "t", 0);
    assert_eq!(
        c.get(&p("t"), 0, now + Duration::from_millis(999)),
        Some("t")
    );
    assert!(c.get(&p("t"), 0, now + Duration::from_secs(1)).is_none());
    assert!(c.is_empty());
}

#[test]
fn a_sweep_drops_expired_and_invalidated_entries_only() {
    let now = Instant::now();
    let fds = Rc::new(());
    let mut c = OpenCache::new(Limits {
        entries: 8,
        bytes: 1024,
    });
    c.insert(p("old"), 0, now + Duration::from_secs(1), fd(&fds), 0);
    c.insert(p("bumped"), 0, now + LATER, fd(&fds), 0);
    c.insert(p("fresh"), 0, now + LATER, fd(&fds), 0);
    let generation_of = |k: &Path| u64::from(k == p("bumped"));
    let dropped = c.sweep(now + Duration::from_secs(2), generation_of);
    assert_eq!((dropped, c.len(), open_fds(&fds)), (2, 1, 1));
    assert!(c.get(&p("fresh"), 0, now).is_some());
    // Freed slots are reused, and the bound still holds.
    for i in 0..20 {
        c.insert(p(&format!("{i}")), 0, now + LATER, fd(&fds), 0);
    }
    assert_eq!((c.len(), open_fds(&fds)), (8, 8));
}

// ── the local store through its cache, on one thread ────────────────────────────────────────

/// A data dir removed when dropped.
struct Dir(PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn dir(name: &str) -> Dir {
    Dir(std::env::temp_dir().join(format!("upgate-cache-{name}-{}", std::process::id())))
}

fn key(rel: &str) -> Target {
    Target {
        appid: "app1".into(),
        rel: rel.into(),
    }
}

const REPLACE: CommitOptions = CommitOptions {
    fsync: false,
    replace: true,
    content_type: None,
};

async fn put(store: &Store, id: &str, rel: &str, body: Vec<u8>) {
    let mut up = store.begin(id, None).await.unwrap();
    up.append_at(0, Bytes::from(body)).await.unwrap();
    up.commit(&key(rel), REPLACE).await.unwrap();
}

/// The opened object's bytes, and its body: two bodies alive at once are the same open when
/// [`same`] says so.
async fn open(store: &Store, rel: &str) -> Option<(Vec<u8>, ObjectBody)> {
    let object = store.open(&key(rel)).await.unwrap()?;
    let bytes = match &object.body {
        ObjectBody::Bytes(b) => b.to_vec(),
        ObjectBody::File(f) | ObjectBody::Growing(f, _) => {
            let buf = Vec::with_capacity(object.meta.size as usize);
            let (res, buf) = f.read_at(buf, 0).await;
            res.unwrap();
            buf
        }
    };
    assert_eq!(bytes.len() as u64, object.meta.size);
    Some((bytes, object.body))
}

/// Whether two bodies share one open: the small body's buffer, or the open file.
fn same(a: &ObjectBody, b: &ObjectBody) -> bool {
    match (a, b) {
        (ObjectBody::Bytes(a), ObjectBody::Bytes(b)) => a.as_ptr() == b.as_ptr(),
        (ObjectBody::File(a), ObjectBody::File(b)) => Rc::ptr_eq(a, b),
        _ => false,
    }
}

#[test]
fn repeated_opens_share_one_open_until_a_commit_or_delete() {
    let d = dir("share");
    let store = Store::Local(LocalStore::open(&d.0).unwrap());
    tokio_uring::start(async {
        let big: Vec<u8> = (0..100_000u32).map(|i| i as u8).collect();
        for (rel, body) in [("small.txt", b"small".to_vec()), ("big.bin", big.clone())] {
            put(&store, &format!("{rel}-1"), rel, body.clone()).await;
            let (bytes, first) = open(&store, rel).await.unwrap();
            assert_eq!(bytes, body);
            let (bytes, again) = open(&store, rel).await.unwrap();
            assert_eq!(bytes, body);
            assert!(same(&first, &again), "{rel}: a hit");
            // An overwrite with other bytes and another length: the next open misses.
            let mut other = body.clone();
            other.extend_from_slice(b"+more");
            other[0] ^= 0xff;
            put(&store, &format!("{rel}-2"), rel, other.clone()).await;
            let (bytes, after) = open(&store, rel).await.unwrap();
            assert_eq!(bytes, other, "{rel}: the new version");
            assert!(!same(&after, &first));
            assert_eq!(matches!(after, ObjectBody::Bytes(_)), rel == "small.txt");
            assert!(store.delete(&key(rel)).await.unwrap());
            assert!(open(&store, rel).await.is_none(), "{rel}: deleted");
        }
        assert_eq!(super::thread_len(), 0, "nothing stale is left cached");
    });
}

#[test]
fn a_file_replaced_behind_the_store_is_served_new_after_the_ttl() {
    let d = dir("ttl");
    let ttl = Duration::from_millis(200);
    let store = Store::Local(LocalStore::open(&d.0).unwrap().with_cache_ttl(ttl));
    tokio_uring::start(async {
        put(&store, "t1", "t.txt", b"old".to_vec()).await;
        assert_eq!(open(&store, "t.txt").await.unwrap().0, b"old");
        // Not through the store: no generation moves.
        let file = d.0.join("files/app1/t.txt");
        std::fs::write(d.0.join("swap"), b"new bytes").unwrap();
        std::fs::rename(d.0.join("swap"), &file).unwrap();
        assert_eq!(
            open(&store, "t.txt").await.unwrap().0,
            b"old",
            "within the TTL the cached open is served"
        );
        tokio::time::sleep(ttl + Duration::from_millis(50)).await;
        assert_eq!(open(&store, "t.txt").await.unwrap().0, b"new bytes");
    });
}

#[test]
fn a_zero_ttl_caches_nothing() {
    let d = dir("off");
    let store = Store::Local(
        LocalStore::open(&d.0)
            .unwrap()
            .with_cache_ttl(Duration::ZERO),
    );
    tokio_uring::start(async {
        put(&store, "o1", "o.txt", b"abc".to_vec()).await;
        let (_, first) = open(&store, "o.txt").await.unwrap();
        let (bytes, again) = open(&store, "o.txt").await.unwrap();
        assert_eq!(bytes, b"abc");
        assert!(!same(&first, &again), "each open reads the file");
        assert_eq!(super::thread_len(), 0);
    });
}
