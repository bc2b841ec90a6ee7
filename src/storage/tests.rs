//! One set of behaviour tests for every [`ObjectStore`]: the local store (a directory under the
//! temp dir) and its in-memory twin must agree on everything the flow, downloads and the outbox
//! rely on.

use std::path::PathBuf;

use bytes::Bytes;

use super::*;

fn key(rel: &str) -> Target {
    Target {
        appid: "app1".into(),
        rel: rel.into(),
    }
}

const REPLACE: CommitOptions = CommitOptions {
    fsync: true,
    replace: true,
    content_type: None,
};
const KEEP: CommitOptions = CommitOptions {
    fsync: false,
    replace: false,
    content_type: None,
};

/// A throwaway data dir, removed when dropped.
struct Dir(PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `test` against a local store and an in-memory one, each on a tokio-uring runtime.
fn both<F, Fut>(test: F)
where
    F: Fn(Store) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let dir = Dir(std::env::temp_dir().join(format!(
        "upgate-store-unit-{}-{}",
        std::process::id(),
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    )));
    let local = Store::Local(LocalStore::open(&dir.0).unwrap());
    tokio_uring::start(test(local));
    tokio_uring::start(test(Store::Memory(MemoryStore::new())));
}

async fn read_all(store: &Store, k: &Target) -> Option<Vec<u8>> {
    let object = store.open(k).await.unwrap()?;
    let bytes = match object.body {
        ObjectBody::Bytes(b) => b.to_vec(),
        ObjectBody::File(f) | ObjectBody::Growing(f, _) => {
            let buf = Vec::with_capacity(object.meta.size as usize);
            let (res, buf) = f.read_at(buf, 0).await;
            res.unwrap();
            ObjectBody::File(f).close().await;
            buf
        }
    };
    assert_eq!(bytes.len() as u64, object.meta.size);
    Some(bytes)
}

#[test]
fn nothing_is_visible_before_the_commit_and_all_of_it_after() {
    both(|store| async move {
        let mut up = store.begin("u1", None).await.unwrap();
        up.append_at(0, Bytes::from_static(b"hel")).await.unwrap();
        up.append_at(3, Bytes::from_static(b"lo")).await.unwrap();
        assert_eq!(up.written(), 5);
        assert_eq!(store.head(&key("d/a.txt")).await.unwrap(), None);
        let version = up.version().clone();
        let meta = up.commit(&key("d/a.txt"), REPLACE).await.unwrap();
        assert_eq!((meta.size, &meta.version), (5, &version));
        let head = store.head(&key("d/a.txt")).await.unwrap().unwrap();
        assert_eq!(
            (head.size, &head.version),
            (5, &version),
            "the commit keeps the version"
        );
        assert_eq!(store.head_blocking(&key("d/a.txt")).unwrap(), Some(head));
        assert_eq!(read_all(&store, &key("d/a.txt")).await.unwrap(), b"hello");
    });
}

#[test]
fn appends_are_in_order() {
    both(|store| async move {
        let mut up = store.begin("u2", None).await.unwrap();
        up.append_at(0, Bytes::from_static(b"ab")).await.unwrap();
        let err = up.append_at(5, Bytes::from_static(b"x")).await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
        assert_eq!(up.written(), 2, "a refused append writes nothing");
        up.abort().await;
    });
}

#[test]
fn an_aborted_upload_leaves_nothing_and_cannot_be_resumed() {
    both(|store| async move {
        let mut up = store.begin_partial("u3").await.unwrap();
        up.append_at(0, Bytes::from_static(b"abcd")).await.unwrap();
        up.abort().await;
        assert!(store.resume("u3", 0).await.unwrap().is_none());
        assert_eq!(store.head(&key("x")).await.unwrap(), None);
        assert!(store.list("app1").await.unwrap().is_empty());
    });
}

#[test]
fn a_resumable_upload_resumes_at_its_acknowledged_length() {
    both(|store| async move {
        let mut up = store.begin_partial("u4").await.unwrap();
        up.append_at(0, Bytes::from_static(b"first "))
            .await
            .unwrap();
        up.sync().await.unwrap();
        drop(up);
        // An append that was never acknowledged: its bytes are overwritten by the next one.
        let mut lost = store.resume("u4", 6).await.unwrap().expect("resumable");
        lost.append_at(6, Bytes::from_static(b"XXXXXXXXXXXXXXX"))
            .await
            .unwrap();
        drop(lost);
        let mut again = store.resume("u4", 6).await.unwrap().expect("resumable");
        assert_eq!(again.written(), 6);
        again
            .append_at(6, Bytes::from_static(b"second"))
            .await
            .unwrap();
        again.commit(&key("r.txt"), KEEP).await.unwrap();
        assert_eq!(
            read_all(&store, &key("r.txt")).await.unwrap(),
            b"first second"
        );
        assert!(store.resume("nobody", 0).await.unwrap().is_none());
    });
}

#[test]
fn an_appends_reservation_moves_no_offset_and_the_commit_gives_back_what_it_did_not_fill() {
    both(|store| async move {
        let mut up = store.begin_partial("u6").await.unwrap();
        up.append_at(0, Bytes::from_static(b"abc")).await.unwrap();
        drop(up);
        // An append reserves 1 MiB, writes 5 bytes and breaks: its reservation is no byte of
        // the upload, so it resumes where the bytes end, not where the reservation does.
        let mut broken = store.resume("u6", 3).await.unwrap().expect("resumable");
        broken.reserve(1 << 20).await.unwrap();
        assert_eq!(broken.written(), 3);
        broken
            .append_at(3, Bytes::from_static(b"defgh"))
            .await
            .unwrap();
        drop(broken);
        let mut last = store.resume("u6", 8).await.unwrap().expect("resumable");
        assert_eq!(last.written(), 8);
        last.reserve(1 << 20).await.unwrap();
        last.append_at(8, Bytes::from_static(b"ij")).await.unwrap();
        last.commit(&key("res.bin"), KEEP).await.unwrap();
        assert_eq!(
            read_all(&store, &key("res.bin")).await.unwrap(),
            b"abcdefghij"
        );
        if let Store::Local(local) = &store {
            use std::os::unix::fs::MetadataExt;
            let m = std::fs::metadata(local.final_path(&key("res.bin"))).unwrap();
            assert_eq!(m.len(), 10);
            assert!(
                m.blocks() * 512 < 64 << 10,
                "the unfilled reservation is given back: {} blocks",
                m.blocks()
            );
        }
    });
}

#[test]
fn a_reservation_beyond_the_room_left_fails_as_a_full_disk() {
    tokio_uring::start(async {
        let store = Store::Memory(MemoryStore::with_capacity(8));
        let mut up = store.begin_partial("u7").await.unwrap();
        up.append_at(0, Bytes::from_static(b"abc")).await.unwrap();
        let err = up.reserve(6).await.unwrap_err();
        assert!(is_disk_full(&err), "{err}");
        up.reserve(5).await.unwrap();
        assert_eq!(up.written(), 3);
    });
}

#[test]
fn a_partial_body_shorter_than_its_acknowledgement_or_discarded_does_not_resume() {
    both(|store| async move {
        let mut up = store.begin_partial("u5").await.unwrap();
        up.append_at(0, Bytes::from_static(b"abc")).await.unwrap();
        drop(up);
        let err = store.resume("u5", 4).await.err().expect("bytes lost");
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
        assert!(store.discard("u5").await.unwrap());
        assert!(!store.discard("u5").await.unwrap());
        assert!(store.resume("u5", 0).await.unwrap().is_none());
    });
}

#[test]
fn without_replace_the_first_commit_wins_and_with_it_the_version_changes() {
    both(|store| async move {
        let mut a = store.begin("a", None).await.unwrap();
        a.append_at(0, Bytes::from_static(b"A")).await.unwrap();
        let mut b = store.begin("b", None).await.unwrap();
        b.append_at(0, Bytes::from_static(b"BB")).await.unwrap();
        let first = a.commit(&key("same"), KEEP).await.unwrap();
        assert!(matches!(
            b.commit(&key("same"), KEEP).await,
            Err(CommitError::Exists)
        ));
        assert_eq!(read_all(&store, &key("same")).await.unwrap(), b"A");
        let mut c = store.begin("c", None).await.unwrap();
        c.append_at(0, Bytes::from_static(b"CCC")).await.unwrap();
        let replaced = c.commit(&key("same"), REPLACE).await.unwrap();
        assert_ne!(
            replaced.version, first.version,
            "a replaced object has a new version"
        );
        assert_eq!(read_all(&store, &key("same")).await.unwrap(), b"CCC");
    });
}

#[test]
fn list_and_delete_see_only_committed_objects_of_the_app() {
    both(|store| async move {
        for (id, rel) in [("l1", "b/2.txt"), ("l2", "a.txt")] {
            let mut up = store.begin(id, None).await.unwrap();
            up.append_at(0, Bytes::from_static(b"x")).await.unwrap();
            up.commit(&key(rel), KEEP).await.unwrap();
        }
        let mut other = store.begin("l3", None).await.unwrap();
        other.append_at(0, Bytes::from_static(b"y")).await.unwrap();
        let other_key = Target {
            appid: "app2".into(),
            rel: "c.txt".into(),
        };
        other.commit(&other_key, KEEP).await.unwrap();
        let _open = store.begin("l4", None).await.unwrap();
        let listed: Vec<String> = store
            .list("app1")
            .await
            .unwrap()
            .into_iter()
            .map(|(rel, _)| rel)
            .collect();
        assert_eq!(listed, ["a.txt", "b/2.txt"]);
        // Opened (and so cached) before the delete, gone after it.
        assert_eq!(read_all(&store, &key("a.txt")).await.unwrap(), b"x");
        assert!(store.delete(&key("a.txt")).await.unwrap());
        assert!(!store.delete(&key("a.txt")).await.unwrap());
        assert_eq!(store.head(&key("a.txt")).await.unwrap(), None);
        assert!(store.open(&key("a.txt")).await.unwrap().is_none());
        assert!(store.ready().await.is_ok());
    });
}

/// Commits `body` at `rel` declaring `content_type`, replacing what was there.
async fn commit_typed(store: &Store, id: &str, rel: &str, body: &'static [u8], ct: Option<&str>) {
    let mut up = store.begin(id, None).await.unwrap();
    up.append_at(0, Bytes::from_static(body)).await.unwrap();
    let opts = CommitOptions {
        content_type: ct.map(str::to_owned),
        ..REPLACE
    };
    let meta = up.commit(&key(rel), opts).await.unwrap();
    assert_eq!(meta.content_type.as_deref(), ct.and_then(mime::declared));
}

/// The content type every way of reading the object's metadata sees.
async fn stored_types(store: &Store, rel: &str) -> [Option<String>; 4] {
    let k = key(rel);
    let opened = store.open(&k).await.unwrap().unwrap();
    let listed = store.list("app1").await.unwrap();
    let listed = listed.into_iter().find(|(r, _)| r == rel).unwrap().1;
    [
        store.head(&k).await.unwrap().unwrap().content_type,
        store.head_blocking(&k).unwrap().unwrap().content_type,
        opened.meta.content_type,
        listed.content_type,
    ]
}

#[test]
fn the_content_type_is_stored_with_the_object_and_replaced_with_it() {
    both(|store| async move {
        let cases: [(Option<&str>, Option<&str>); 5] = [
            (Some("image/png"), Some("image/png")),
            (
                Some(" text/html; charset=utf-8"),
                Some("text/html; charset=utf-8"),
            ),
            // No type replaces a type: nothing of the old object's is left.
            (None, None),
            (Some("image/gif"), Some("image/gif")),
            // A value that is no media type is not stored.
            (Some("text/html\r\nSet-Cookie: a=b"), None),
        ];
        for (i, (declared, stored)) in cases.into_iter().enumerate() {
            commit_typed(&store, &format!("t{i}"), "t.bin", b"body", declared).await;
            let want = stored.map(str::to_owned);
            assert_eq!(
                stored_types(&store, "t.bin").await,
                [want.clone(), want.clone(), want.clone(), want],
                "declared {declared:?}"
            );
        }
    });
}

#[test]
fn a_full_memory_store_refuses_the_declared_size_and_an_append_past_its_room() {
    tokio_uring::start(async {
        let store = MemoryStore::with_capacity(4);
        let e = store.begin("big", Some(5)).await.err().unwrap();
        assert!(is_disk_full(&e));
        let mut up = store.begin("grows", None).await.unwrap();
        up.append_at(0, Bytes::from_static(b"abc")).await.unwrap();
        let e = up
            .append_at(3, Bytes::from_static(b"de"))
            .await
            .unwrap_err();
        assert!(is_disk_full(&e));
        up.abort().await;
        assert_eq!(store.open_uploads(), 0);
        // The room comes back with the abort.
        let mut up = store.begin("fits", Some(4)).await.unwrap();
        up.append_at(0, Bytes::from_static(b"abcd")).await.unwrap();
        up.commit(&key("f"), KEEP).await.unwrap();
    });
}

#[test]
fn versions_recorded_as_inode_numbers_still_load() {
    #[derive(serde::Deserialize)]
    struct Old {
        #[serde(alias = "ino")]
        version: Version,
    }
    let old: Old = serde_json::from_str(r#"{"ino": 1234}"#).unwrap();
    assert_eq!(old.version, Version("1234".into()));
    let new: Old = serde_json::from_str(r#"{"version": "m7"}"#).unwrap();
    assert_eq!(new.version, Version("m7".into()));
}

#[test]
fn a_directory_occupies_its_key_in_the_local_store() {
    let dir = Dir(std::env::temp_dir().join(format!("upgate-store-dir-{}", std::process::id())));
    let store = Store::Local(LocalStore::open(&dir.0).unwrap());
    tokio_uring::start(async {
        let mut up = store.begin("d1", None).await.unwrap();
        up.append_at(0, Bytes::from_static(b"x")).await.unwrap();
        up.commit(&key("docs/a.txt"), KEEP).await.unwrap();
        assert!(
            store.head(&key("docs")).await.unwrap().is_some(),
            "docs/ is taken"
        );
        assert!(
            store.open(&key("docs")).await.unwrap().is_none(),
            "but not a file to serve"
        );
        assert!(
            store.head_blocking(&key("docs")).unwrap().is_none(),
            "nor one to notify"
        );
    });
}

#[test]
fn concatenated_partial_bodies_commit_as_one_file_and_a_missing_part_is_none() {
    both(|store| async move {
        for (id, body) in [("p1", &b"left "[..]), ("p2", b""), ("p3", b"right")] {
            let mut up = store.begin_partial(id).await.unwrap();
            up.append_at(0, Bytes::from_static(body)).await.unwrap();
            drop(up);
        }
        let parts = ["p1", "p2", "p3"].map(String::from);
        let up = store
            .concat_partials("whole", &parts)
            .await
            .unwrap()
            .expect("every part is there");
        assert_eq!(up.written(), 10);
        up.commit(&key("c.txt"), KEEP).await.unwrap();
        assert_eq!(
            read_all(&store, &key("c.txt")).await.unwrap(),
            b"left right"
        );
        // The parts stay until discarded.
        assert!(store.resume("p1", 5).await.unwrap().is_some());
        let missing = ["p1", "nobody"].map(String::from);
        assert!(store
            .concat_partials("w2", &missing)
            .await
            .unwrap()
            .is_none());
        // Nothing of the failed concatenation is left to resume.
        assert!(store.resume("w2", 0).await.unwrap().is_none());
    });
}

/// Pages of `limit` over the app's objects under `prefix`, following `more` with the last path.
async fn pages(store: &Store, prefix: &str, limit: usize) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let q = ListQuery {
            prefix: prefix.into(),
            after: after.clone(),
            limit,
        };
        let page = store.list_page("app1", &q).await.unwrap();
        let paths: Vec<String> = page.objects.iter().map(|(p, _)| p.clone()).collect();
        after = paths.last().cloned();
        out.push(paths);
        if !page.more {
            return out;
        }
    }
}

#[test]
fn list_pages_are_in_path_byte_order_and_follow_prefix_and_after() {
    both(|store| async move {
        // `a-b` sorts before `a/x` ('-' < '/'), although the directory `a` sorts before the
        // file `a-b` by name: both stores must give the byte order of whole paths.
        let rels = ["a/x", "a-b", "a/y/z", "b", "a/y0", "ab", "c/d/e"];
        for (i, rel) in rels.iter().enumerate() {
            let mut up = store.begin(&format!("p{i}"), None).await.unwrap();
            up.append_at(0, Bytes::from_static(b"1")).await.unwrap();
            up.commit(&key(rel), KEEP).await.unwrap();
        }
        let mut other = store.begin("other", None).await.unwrap();
        other.append_at(0, Bytes::from_static(b"2")).await.unwrap();
        let k = Target {
            appid: "app10".into(),
            rel: "a/x".into(),
        };
        other.commit(&k, KEEP).await.unwrap();
        let _in_flight = store.begin("in-flight", None).await.unwrap();
        let _partial = store.begin_partial("partial").await.unwrap();

        let mut sorted: Vec<String> = rels.iter().map(|s| s.to_string()).collect();
        sorted.sort();
        assert_eq!(pages(&store, "", 1000).await, vec![sorted.clone()]);
        let by_two = pages(&store, "", 2).await;
        assert_eq!(by_two.len(), 4, "{by_two:?}");
        assert_eq!(by_two.concat(), sorted);
        // An exact fit: the last full page says whether more follow.
        assert_eq!(pages(&store, "", 7).await, vec![sorted.clone()]);
        assert_eq!(
            pages(&store, "a/", 1).await,
            vec![
                vec!["a/x".to_string()],
                vec!["a/y/z".into()],
                vec!["a/y0".into()]
            ]
        );
        assert_eq!(pages(&store, "a/y", 10).await, vec![vec!["a/y/z", "a/y0"]]);
        assert_eq!(pages(&store, "zz", 10).await, vec![Vec::<String>::new()]);
        let q = ListQuery {
            prefix: String::new(),
            after: Some("a/y".into()),
            limit: 3,
        };
        let page = store.list_page("app1", &q).await.unwrap();
        let got: Vec<&str> = page.objects.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!((got, page.more), (vec!["a/y/z", "a/y0", "ab"], true));
        let meta = &page.objects[0].1;
        assert_eq!(meta.size, 1);
        let none = store.list_page("nobody", &q).await.unwrap();
        assert!(none.objects.is_empty() && !none.more);
    });
}

#[test]
fn deleting_an_app_removes_all_its_objects_and_no_others() {
    both(|store| async move {
        for (i, (appid, rel)) in [("app1", "a/b.txt"), ("app1", "c.txt"), ("app2", "a/b.txt")]
            .into_iter()
            .enumerate()
        {
            let mut up = store.begin(&format!("d{i}"), None).await.unwrap();
            up.append_at(0, Bytes::from_static(b"z")).await.unwrap();
            let k = Target {
                appid: appid.into(),
                rel: rel.into(),
            };
            up.commit(&k, KEEP).await.unwrap();
        }
        // Cached on this thread before the deletion.
        assert_eq!(read_all(&store, &key("c.txt")).await.unwrap(), b"z");
        assert!(store.delete_app("app1").await.unwrap());
        assert!(store.open(&key("c.txt")).await.unwrap().is_none());
        assert!(store.open(&key("a/b.txt")).await.unwrap().is_none());
        assert!(store.list("app1").await.unwrap().is_empty());
        assert_eq!(store.list("app2").await.unwrap().len(), 1);
        assert!(!store.delete_app("app1").await.unwrap());
        // The app's paths can be uploaded to again.
        let mut up = store.begin("again", None).await.unwrap();
        up.append_at(0, Bytes::from_static(b"n")).await.unwrap();
        up.commit(&key("a/b.txt"), KEEP).await.unwrap();
        assert_eq!(read_all(&store, &key("a/b.txt")).await.unwrap(), b"n");
    });
}
