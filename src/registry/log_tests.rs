//! The outbox log's own promises, beyond the behaviour every journal shares
//! (`behaviour_tests.rs`): one group commit serves many uploads, a failed append refuses all of
//! its batch and keeps none of it, a torn tail is cut, compaction keeps exactly the live
//! entries, one process at a time, and entries an older version kept in sled move into the log.

use std::time::Duration;

use super::tests::{staged, TempDir};
use super::*;

fn open(dir: &TempDir, durability: Durability) -> LogOutbox {
    LogOutbox::open(&outbox_log_path(dir.path()), durability, LOCK_WAIT).unwrap()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
}

/// Starts `n` durable enqueues while the group commit is held, waits until all `n` records sit
/// in the one batch being filled, releases it, and returns each enqueue's result.
fn enqueue_together(log: &LogOutbox, n: usize, before_release: impl FnOnce()) -> Vec<bool> {
    let hold = log.hold_commits();
    let local = tokio::task::LocalSet::new();
    runtime().block_on(local.run_until(async {
        let tasks: Vec<_> = (0..n)
            .map(|i| {
                let log = log.clone();
                tokio::task::spawn_local(async move {
                    log.enqueue_async(&staged(&format!("evt-{i:03}"), 5))
                        .await
                        .is_ok()
                })
            })
            .collect();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while log.batched() < n as u64 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "records never batched"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        before_release();
        drop(hold);
        let mut ok = Vec::new();
        for t in tasks {
            ok.push(t.await.unwrap());
        }
        ok
    }))
}

#[test]
fn one_group_commit_serves_sixty_four_uploads() {
    let dir = TempDir::new();
    for durability in [Durability::Synced, Durability::Written] {
        let log = open(&dir, durability);
        for e in log.entries() {
            log.remove(&e.unwrap().event_id).unwrap();
        }
        log.flush().unwrap();
        let before = log.stats();
        let ok = enqueue_together(&log, 64, || {});
        assert!(ok.iter().all(|&ok| ok), "every enqueue committed");
        let after = log.stats();
        assert_eq!(
            (
                after.commits - before.commits,
                after.records - before.records
            ),
            (1, 64),
            "{durability:?}: one append carried all 64 records"
        );
        drop(log);
        assert_eq!(open(&dir, durability).len(), 64, "all 64 survive a reopen");
    }
}

#[test]
fn a_failed_append_refuses_every_upload_of_its_batch_and_keeps_none() {
    let dir = TempDir::new();
    let log = open(&dir, Durability::Synced);
    log.enqueue(&staged("earlier", 5)).unwrap();
    let ok = enqueue_together(&log, 16, || log.fail_commits(1, libc::ENOSPC));
    assert_eq!(ok, vec![false; 16], "every upload of the batch is refused");
    assert_eq!(log.len(), 1, "none of the refused entries stays queued");
    let err = log.enqueue(&staged("later", 5));
    assert!(err.is_ok(), "the next batch commits again: {err:?}");
    drop(log);
    let log = open(&dir, Durability::Synced);
    let mut ids: Vec<String> = log.entries().map(|e| e.unwrap().event_id).collect();
    ids.sort();
    assert_eq!(ids, ["earlier", "later"]);
}

#[test]
fn the_error_of_a_failed_append_names_its_cause() {
    let dir = TempDir::new();
    let log = open(&dir, Durability::Synced);
    log.fail_commits(1, libc::EIO);
    let err = log.enqueue(&staged("evt", 5)).unwrap_err();
    let text = format!("{err}");
    assert!(text.contains("outbox log append failed"), "{text}");
    assert!(matches!(err, OutboxError::Unavailable(_)));
}

#[test]
fn a_torn_tail_is_cut_back_and_the_whole_records_kept() {
    let dir = TempDir::new();
    {
        let log = open(&dir, Durability::Synced);
        for i in 0..3 {
            log.enqueue(&staged(&format!("evt-{i}"), 5)).unwrap();
        }
    }
    let path = outbox_log_path(dir.path());
    let whole = std::fs::metadata(&path).unwrap().len();
    // A crash mid-append: a header promising more than was written.
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.extend_from_slice(&[200, 0, 0, 0, 1, 2, 3, 4, b'{', b'"']);
    std::fs::write(&path, &bytes).unwrap();

    let log = open(&dir, Durability::Synced);
    assert_eq!(log.len(), 3);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), whole, "tail cut");
    log.enqueue(&staged("evt-3", 5)).unwrap();
    drop(log);
    assert_eq!(open(&dir, Durability::Synced).len(), 4);
}

#[test]
fn compaction_keeps_exactly_the_live_entries() {
    let dir = TempDir::new();
    let path = outbox_log_path(dir.path());
    let log = open(&dir, Durability::Written);
    log.compact_from(16 << 10);
    for i in 0..200 {
        log.enqueue(&staged(&format!("evt-{i:03}"), i)).unwrap();
        log.placed(&format!("evt-{i:03}"), 1000 + i).unwrap();
        if i >= 10 {
            log.delivered(&format!("evt-{i:03}")).unwrap();
        }
    }
    log.flush().unwrap();
    let len = std::fs::metadata(&path).unwrap().len();
    assert!(len < 16 << 10, "the log was compacted: {len} bytes");
    let live: Vec<OutboxEntry> = log.entries().map(Result::unwrap).collect();
    assert_eq!(live.len(), 10);
    drop(log);
    let again: Vec<OutboxEntry> = open(&dir, Durability::Written)
        .entries()
        .map(Result::unwrap)
        .collect();
    assert_eq!(again, live, "the compacted log replays to the same queue");
    assert!(again.iter().all(|e| e.file.as_ref().unwrap().placed));
}

#[test]
fn one_process_at_a_time_holds_the_log() {
    let dir = TempDir::new();
    let path = outbox_log_path(dir.path());
    let first = open(&dir, Durability::Synced);
    let second = LogOutbox::open(&path, Durability::Synced, Duration::ZERO);
    assert!(second.is_err(), "a second holder is refused");
    drop(first);
    LogOutbox::open(&path, Durability::Synced, Duration::ZERO).expect("free once dropped");
}

#[test]
fn entries_an_older_version_kept_in_sled_move_into_the_log() {
    let dir = TempDir::new();
    {
        let db = SledDb::open(&dir.path().join("registry")).unwrap();
        let old = SledOutbox::open(&db).unwrap();
        old.enqueue(&staged("evt-a", 5)).unwrap();
        old.enqueue(&staged("evt-b", 6)).unwrap();
    }
    {
        let r = Registry::open(dir.path()).unwrap();
        assert_eq!(r.outbox().get("evt-a").unwrap(), Some(staged("evt-a", 5)));
        assert_eq!(r.outbox().len(), 2);
    }
    let db = SledDb::open(&dir.path().join("registry")).unwrap();
    assert!(
        SledOutbox::open(&db).unwrap().is_empty(),
        "sled's copy cleared"
    );
    drop(db);
    let r = Registry::open(dir.path()).unwrap();
    assert_eq!(r.outbox().len(), 2, "moved once, kept in the log");
}
