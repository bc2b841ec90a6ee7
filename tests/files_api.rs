//! The app's file management end to end (contract "Files, downloads and notifications for the
//! app"): a real node (sled registry, files on disk, outbox sender) and a real callback app on
//! 127.0.0.1; listings, deletions and their `deleted` post-callback, a delete racing an upload,
//! app deletion, signed download URLs, and the `upgate files` / `upgate sign-url` commands.

mod support;

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use support::callback_app::CallbackApp;
use support::*;
use upgate::config::Config;

const ADMIN: &str = "admin-token-for-files";
const BIN: &str = env!("CARGO_BIN_EXE_upgate");

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn node() -> (upgate::node::Node, CallbackApp) {
    let app = CallbackApp::accepting();
    let node = start(Config {
        callback_allow: vec![app.addr.to_string()],
        admin_token: Some(ADMIN.into()),
        overwrite: true,
        ..test_config()
    });
    (node, app)
}

/// Registers `appid` with the app's pre and post callbacks (and `extra` form fields); its secret.
fn register(addr: SocketAddr, app: &CallbackApp, appid: &str, extra: &str) -> String {
    let form = format!(
        "appid={appid}&callback_url_pre={}&callback_url_post={}{extra}",
        app.url("/pre"),
        app.url("/post")
    );
    let (w, _) = exchange(
        addr,
        format!(
            "POST /upload/register HTTP/1.1\r\nHost: n\r\nAuthorization: Bearer {ADMIN}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
            form.len()
        )
        .as_bytes(),
    );
    assert_eq!(w.status, 200, "{:?}", String::from_utf8_lossy(&w.body));
    w.json()["secret"].as_str().unwrap().to_string()
}

/// Sends an upload's head and waits for `100 Continue`; the body follows with [`finish`].
fn begin_upload(addr: SocketAddr, path: &str, len: usize) -> (TcpStream, Vec<u8>) {
    let mut s = connect(addr);
    let appid = path.split('/').nth(1).unwrap();
    let head = format!(
        "PUT {path} HTTP/1.1\r\nHost: n\r\nExpect: 100-continue\r\nappid: {appid}\r\nContent-Length: {len}\r\n\r\n"
    );
    s.write_all(head.as_bytes()).unwrap();
    let mut buf = Vec::new();
    let w = read_response(&mut s, &mut buf).expect("an answer to the upload's head");
    assert_eq!(
        w.status,
        100,
        "{path}: {:?}",
        String::from_utf8_lossy(&w.body)
    );
    (s, buf)
}

fn finish(mut s: TcpStream, mut buf: Vec<u8>, body: &[u8]) -> Wire {
    s.write_all(body).unwrap();
    read_response(&mut s, &mut buf).expect("an answer to the upload")
}

fn upload(addr: SocketAddr, path: &str, body: &[u8]) {
    let (s, buf) = begin_upload(addr, path, body.len());
    assert_eq!(finish(s, buf, body).status, 201, "{path}");
}

fn request(addr: SocketAddr, method: &str, path: &str, token: Option<&str>) -> Wire {
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    exchange(
        addr,
        format!("{method} {path} HTTP/1.1\r\nHost: n\r\n{auth}\r\n").as_bytes(),
    )
    .0
}

fn paths(w: &Wire) -> Vec<String> {
    w.json()["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn listing_pages_by_path_with_prefix_after_limit_and_next() {
    let (node, app) = node();
    let addr = node.local_addr();
    let secret = register(addr, &app, "app1", "");
    let other = register(addr, &app, "app2", "");
    for p in ["b.txt", "a/2.txt", "a/1.txt", "c/d/e.bin", "a-z.txt"] {
        upload(addr, &format!("/app1/{p}"), p.as_bytes());
    }
    upload(addr, "/app2/x.txt", b"x");

    let all = request(addr, "GET", "/upload/files/app1", Some(&secret));
    assert_eq!(all.status, 200);
    assert_eq!(
        paths(&all),
        ["a-z.txt", "a/1.txt", "a/2.txt", "b.txt", "c/d/e.bin"]
    );
    assert!(all.json()["next"].is_null());
    // The same size, type and validators a download answers with.
    let first = &all.json()["files"][1];
    let got = request(addr, "GET", "/app1/a/1.txt", None);
    assert_eq!(first["size"], 7);
    assert_eq!(first["content_type"].as_str(), got.header("content-type"));
    assert_eq!(first["etag"].as_str(), got.header("etag"));
    assert_eq!(first["modified"].as_str(), got.header("last-modified"));

    // Pages of two, each `next` passed as `after`.
    let mut seen = Vec::new();
    let mut after = String::new();
    loop {
        let w = request(
            addr,
            "GET",
            &format!("/upload/files/app1?limit=2&after={after}"),
            Some(ADMIN),
        );
        assert_eq!(w.status, 200, "the admin token lists too");
        seen.extend(paths(&w));
        match w.json()["next"].as_str() {
            Some(n) => after = n.to_string(),
            None => break,
        }
    }
    assert_eq!(seen, paths(&all));
    let w = request(addr, "GET", "/upload/files/app1?prefix=a/", Some(&secret));
    assert_eq!(paths(&w), ["a/1.txt", "a/2.txt"]);

    for token in [None, Some("whsec_wrong"), Some(other.as_str())] {
        let w = request(addr, "GET", "/upload/files/app1", token);
        assert_eq!((w.status, w.error_code().as_str()), (401, "unauthorized"));
    }
    let w = request(addr, "GET", "/upload/files/app1?limit=1001", Some(&secret));
    assert_eq!((w.status, w.error_code().as_str()), (400, "bad_query"));
    node.shutdown();
}

#[test]
fn delete_answers_204_the_file_is_gone_and_the_app_hears_deleted() {
    let (node, app) = node();
    let addr = node.local_addr();
    let secret = register(addr, &app, "app1", "");
    upload(addr, "/app1/docs/a%20b.txt", b"hello");
    // Served (and so in an open-file cache) before the delete.
    for _ in 0..4 {
        assert_eq!(
            request(addr, "GET", "/app1/docs/a%20b.txt", None).status,
            200
        );
    }
    let posts_before = app.on("/post").len();

    let w = request(addr, "DELETE", "/app1/docs/a%20b.txt", None);
    assert_eq!(w.status, 401);
    let w = request(addr, "DELETE", "/app1/docs/a%20b.txt", Some(&secret));
    assert_eq!(w.status, 204);
    for _ in 0..4 {
        let w = request(addr, "GET", "/app1/docs/a%20b.txt", None);
        assert_eq!((w.status, w.error_code().as_str()), (404, "not_found"));
    }
    let listed = request(addr, "GET", "/upload/files/app1", Some(&secret));
    assert!(paths(&listed).is_empty());
    let w = request(addr, "DELETE", "/app1/docs/a%20b.txt", Some(&secret));
    assert_eq!((w.status, w.error_code().as_str()), (404, "not_found"));

    let posts = app.wait_for("/post", posts_before + 1, Duration::from_secs(10));
    let deleted: Vec<_> = posts
        .iter()
        .filter(|r| r.json()["event"] == "deleted")
        .collect();
    assert_eq!(deleted.len(), 1, "{posts:?}");
    let d = deleted[0];
    let body = d.json();
    assert_eq!(body["path"], "docs/a b.txt");
    assert_eq!(body["size"], 5);
    assert!(body["url"]
        .as_str()
        .unwrap()
        .ends_with("/app1/docs/a%20b.txt"));
    let (id, ts, sig) = (
        d.header("webhook-id").unwrap(),
        d.header("webhook-timestamp").unwrap(),
        d.header("webhook-signature").unwrap(),
    );
    upgate_contract::sign::verify(&[secret], id, ts, sig, &d.body, now(), 300)
        .expect("the deleted notification is signed with the app's secret");
    let metrics = String::from_utf8(request(addr, "GET", "/metrics", None).body).unwrap();
    // Counted (other tests of this process delete too: at least this one).
    let deleted: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("upgate_files_deleted_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{metrics}"));
    assert!(deleted >= 1);
    node.shutdown();
}

#[test]
fn a_delete_racing_an_upload_of_the_same_path_leaves_the_new_file() {
    let (node, app) = node();
    let addr = node.local_addr();
    let secret = register(addr, &app, "app1", "");
    upload(addr, "/app1/race.txt", b"old");
    // The new body is being received (its temporary file exists) when the delete comes.
    let (s, buf) = begin_upload(addr, "/app1/race.txt", 3);
    let w = request(addr, "DELETE", "/app1/race.txt", Some(&secret));
    assert_eq!(w.status, 204);
    assert_eq!(request(addr, "GET", "/app1/race.txt", None).status, 404);
    // The delete did not touch the upload in flight: its commit makes the new file visible.
    assert_eq!(finish(s, buf, b"new").status, 201);
    let w = request(addr, "GET", "/app1/race.txt", None);
    assert_eq!((w.status, w.body.as_slice()), (200, &b"new"[..]));
    node.shutdown();
}

#[test]
fn deleting_the_app_makes_its_files_404_at_once() {
    let (node, app) = node();
    let addr = node.local_addr();
    let secret = register(addr, &app, "app1", "");
    register(addr, &app, "app2", "");
    upload(addr, "/app1/a/b.txt", b"1");
    upload(addr, "/app2/a/b.txt", b"2");
    assert_eq!(request(addr, "GET", "/app1/a/b.txt", None).status, 200);
    let w = request(addr, "DELETE", "/upload/register/app1", Some(&secret));
    assert_eq!(w.status, 200);
    for _ in 0..4 {
        assert_eq!(request(addr, "GET", "/app1/a/b.txt", None).status, 404);
    }
    assert_eq!(request(addr, "GET", "/app2/a/b.txt", None).status, 200);
    node.shutdown();
}

/// The query value of `name` in `url`.
fn param<'a>(url: &'a str, name: &str) -> &'a str {
    url.split_once('?')
        .unwrap()
        .1
        .split('&')
        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
        .unwrap()
}

#[test]
fn signed_apps_need_a_valid_unexpired_signature_and_public_apps_do_not() {
    let (node, app) = node();
    let addr = node.local_addr();
    let secret = register(addr, &app, "locked", "&downloads=signed");
    register(addr, &app, "open", "");
    upload(addr, "/locked/a%20b.txt", b"secret bytes");
    upload(addr, "/open/a.txt", b"public");

    let sign = |path: &str, expires: u64| {
        let url = format!("http://{addr}{path}");
        upgate_contract::url_sig::sign_url(&secret, &url, expires).unwrap()
    };
    let url = sign("/locked/a%20b.txt", now() + 600);
    let path_and_query = url.strip_prefix(&format!("http://{addr}")).unwrap();
    let w = request(addr, "GET", path_and_query, None);
    assert_eq!((w.status, w.body.as_slice()), (200, &b"secret bytes"[..]));
    assert_eq!(request(addr, "HEAD", path_and_query, None).status, 200);

    let expired = sign("/locked/a%20b.txt", now() - 1);
    let other_path = sign("/locked/other.txt", now() + 600);
    let wrong = format!(
        "/locked/a%20b.txt?expires={}&signature={}",
        param(path_and_query, "expires"),
        param(&other_path, "signature")
    );
    for target in [
        "/locked/a%20b.txt".to_string(),
        wrong,
        expired
            .strip_prefix(&format!("http://{addr}"))
            .unwrap()
            .into(),
    ] {
        let w = request(addr, "GET", &target, None);
        assert_eq!(
            (w.status, w.error_code().as_str()),
            (403, "bad_signature"),
            "{target}"
        );
    }
    // After a rotation, a URL signed with the previous secret still serves (grace period),
    // and one signed with the new secret too.
    let rotated = register(addr, &app, "locked", "&downloads=signed&rotate_secret=true");
    assert_ne!(rotated, secret);
    assert_eq!(request(addr, "GET", path_and_query, None).status, 200);
    let url = upgate_contract::url_sig::sign_url(
        &rotated,
        &format!("http://{addr}/locked/a%20b.txt"),
        now() + 60,
    )
    .unwrap();
    let target = url.strip_prefix(&format!("http://{addr}")).unwrap();
    assert_eq!(request(addr, "GET", target, None).status, 200);
    // A public app ignores the parameters.
    assert_eq!(request(addr, "GET", "/open/a.txt", None).status, 200);
    let w = request(addr, "GET", "/open/a.txt?expires=1&signature=x", None);
    assert_eq!(w.status, 200);
    node.shutdown();
}

#[test]
fn sign_url_prints_a_url_the_node_serves() {
    let (node, app) = node();
    let addr = node.local_addr();
    let secret = register(addr, &app, "locked", "&downloads=signed");
    upload(addr, "/locked/x.txt", b"x");
    let out = Command::new(BIN)
        .args(["sign-url", "--secret", &secret, "--expires-in", "600"])
        .arg(format!("http://{addr}/locked/x.txt"))
        .stdin(Stdio::null())
        .output()
        .expect("upgate runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let url = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let target = url.strip_prefix(&format!("http://{addr}")).unwrap();
    assert_eq!(request(addr, "GET", target, None).status, 200, "{url}");
    node.shutdown();
}

fn files_cli(addr: SocketAddr, token: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(BIN)
        .arg("files")
        .arg(args[0])
        .args(["--server", &format!("http://{addr}"), "--appid", "app1"])
        .args(["--token", token])
        .args(&args[1..])
        .stdin(Stdio::null())
        .output()
        .expect("upgate runs");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[test]
fn files_list_and_delete_commands() {
    let (node, app) = node();
    let addr = node.local_addr();
    let secret = register(addr, &app, "app1", "");
    for i in 0..5 {
        upload(addr, &format!("/app1/f{i}.txt"), b"abc");
    }
    // Pages of two, followed to the end.
    let (ok, out) = files_cli(addr, &secret, &["list", "--limit", "2", "--json"]);
    assert!(ok, "{out}");
    let listed: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let names: Vec<&str> = listed.iter().map(|f| f["path"].as_str().unwrap()).collect();
    assert_eq!(names, ["f0.txt", "f1.txt", "f2.txt", "f3.txt", "f4.txt"]);
    let (ok, table) = files_cli(addr, &secret, &["list"]);
    assert!(
        ok && table.contains("f4.txt") && table.contains("text/plain"),
        "{table}"
    );

    let (ok, out) = files_cli(addr, &secret, &["delete", "f1.txt"]);
    assert!(ok, "{out}");
    assert_eq!(request(addr, "GET", "/app1/f1.txt", None).status, 404);
    let (ok, out) = files_cli(addr, &secret, &["delete", "f1.txt"]);
    assert!(!ok && out.contains("not_found"), "{out}");
    let (ok, out) = files_cli(addr, "whsec_wrong", &["list"]);
    assert!(!ok && out.contains("unauthorized"), "{out}");
    node.shutdown();
}
