//! The registration API end to end: a real node on loopback whose handler routes
//! `/upload/register…` to `upgate::register::handler::handle`, driven by curl and raw sockets.

mod support;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use support::*;
use upgate::config::Config;
use upgate::http::Response;
use upgate::registry::Registry;
use upgate::server::{self, Exchange, Handler, ServerHandle};

const ADMIN: &str = "admin-token-for-tests";
const PRE: &str = "http://app1.example.com/callback_url_pre";
const POST: &str = "http://app1.example.com/callback_url_post";

/// Routes the registration API to the handler under test; everything else is 404.
struct TestRouter {
    registry: Registry,
}

impl Handler for TestRouter {
    async fn handle(&self, ex: &mut Exchange<'_>) -> Response {
        if ex.head().path_only().starts_with(b"/upload/register") {
            upgate::register::handler::handle(ex, &self.registry).await
        } else {
            upgate::error::respond(ex.access(), &upgate::error::RouteError::NotFound)
        }
    }
}

struct Node {
    handle: ServerHandle,
    registry: Registry,
    addr: SocketAddr,
    data_dir: PathBuf,
}

impl Node {
    fn start(config: Config) -> Node {
        let data_dir = config.data_dir.clone();
        let registry = open_registry(&data_dir);
        let reg = registry.clone();
        let handle = server::start(config, move || TestRouter {
            registry: reg.clone(),
        })
        .expect("node starts");
        Node {
            addr: handle.local_addr(),
            handle,
            registry,
            data_dir,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Stops the node and closes its registry.
    fn stop(self) {
        self.handle.shutdown();
        drop(self.registry);
    }

    /// Stops the node and removes its data dir.
    fn finish(self) {
        let dir = self.data_dir.clone();
        self.stop();
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// Opens the registry (`Registry::open` waits out the lock of a node that just stopped).
fn open_registry(dir: &Path) -> Registry {
    Registry::open(dir).unwrap_or_else(|e| panic!("registry does not open: {e}"))
}

fn admin_config() -> Config {
    Config {
        admin_token: Some(ADMIN.to_string()),
        ..test_config()
    }
}

/// Runs curl and parses the final response (`-i`; interim 1xx responses are skipped).
fn curl(args: &[&str]) -> Wire {
    let out = Command::new("curl")
        .args(["-s", "-i", "--noproxy", "*", "--max-time", "10"])
        .args(args)
        .output()
        .expect("curl runs");
    assert!(
        out.status.success(),
        "curl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut rest = &out.stdout[..];
    loop {
        let end = find(rest, b"\r\n\r\n").expect("a response head");
        let head = String::from_utf8_lossy(&rest[..end]).to_string();
        let mut lines = head.split("\r\n");
        let status: u16 = lines
            .next()
            .unwrap()
            .split(' ')
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        let body = &rest[end + 4..];
        if (100..200).contains(&status) {
            rest = body;
            continue;
        }
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
            .collect();
        return Wire {
            status,
            headers,
            body: body.to_vec(),
        };
    }
}

/// A form POST with curl (curl sends `application/x-www-form-urlencoded` for `-d`).
fn curl_form(url: &str, form: &str, extra: &[&str]) -> Wire {
    let mut args = vec!["-X", "POST", "-d", form];
    args.extend_from_slice(extra);
    args.push(url);
    curl(&args)
}

fn bearer(token: &str) -> String {
    format!("Authorization: Bearer {token}")
}

/// One request on a raw socket.
fn raw(addr: SocketAddr, method: &str, path: &str, headers: &[&str], body: &[u8]) -> Wire {
    let mut req =
        format!("{method} {path} HTTP/1.1\r\nHost: upload.example.com\r\nConnection: close\r\n");
    for h in headers {
        req.push_str(h);
        req.push_str("\r\n");
    }
    if !body.is_empty() || method == "POST" {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(body);
    exchange(addr, &bytes).0
}

fn register_app(node: &Node, appid: &str, token: Option<&str>) -> String {
    let auth = token.map(bearer);
    let extra: Vec<&str> = auth.iter().flat_map(|a| ["-H", a.as_str()]).collect();
    let w = curl_form(
        &node.url("/upload/register"),
        &format!("appid={appid}&callback_url_pre={PRE}&callback_url_post={POST}"),
        &extra,
    );
    assert_eq!(w.status, 200, "{}", String::from_utf8_lossy(&w.body));
    w.json()["secret"]
        .as_str()
        .expect("a new app gets a secret")
        .to_string()
}

/// Registers `appid` with the admin token, rotates its secret with the first one and returns
/// (old secret, new secret).
fn register_and_rotate(node: &Node, appid: &str) -> (String, String) {
    let old = register_app(node, appid, Some(ADMIN));
    let w = curl_form(
        &node.url(&format!("/upload/register/{appid}")),
        "rotate_secret=true",
        &["-H", &bearer(&old)],
    );
    assert_eq!(w.status, 200, "{}", String::from_utf8_lossy(&w.body));
    let new = w.json()["secret"]
        .as_str()
        .expect("rotation shows the new secret")
        .to_string();
    (old, new)
}

fn assert_error(w: &Wire, status: u16, code: &str) {
    assert_eq!(
        (w.status, w.error_code().as_str()),
        (status, code),
        "{}",
        String::from_utf8_lossy(&w.body)
    );
    assert_eq!(w.json()["success"], "false");
}

#[test]
fn form_registration_shows_the_secret_once() {
    let node = Node::start(test_config());
    let w = curl_form(
        &node.url("/upload/register"),
        &format!("appid=app1&callback_url_pre={PRE}&callback_url_post={POST}"),
        &[],
    );
    assert_eq!(w.status, 200);
    assert_eq!(w.header("content-type"), Some("application/json"));
    let answer = w.json();
    assert_eq!(answer["appid"], "app1");
    assert_eq!(answer["success"], "true");
    let secret = answer["secret"].as_str().unwrap();
    use base64::Engine as _;
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret.strip_prefix("whsec_").expect("whsec_ prefix"))
        .unwrap();
    assert_eq!(key.len(), 32);
    assert_eq!(node.registry.get("app1").unwrap().unwrap().secret, secret);

    // Registering again updates the record and does not show the secret.
    let again = curl_form(
        &node.url("/upload/register"),
        "appid=app1&callback_hosts=cb.example.com",
        &[],
    );
    assert_eq!(again.status, 200);
    assert_eq!(
        again.json(),
        serde_json::json!({"appid": "app1", "success": "true"})
    );
    let rec = node.registry.get("app1").unwrap().unwrap();
    assert_eq!(
        rec.secret, secret,
        "the secret is kept without rotate_secret"
    );
    assert_eq!(
        rec.callback_url_pre.as_deref(),
        Some(PRE),
        "absent fields are kept"
    );
    assert_eq!(rec.callback_hosts, ["cb.example.com"]);
    node.finish();
}

#[test]
fn json_registration_and_get_without_secrets() {
    let node = Node::start(test_config());
    let body = format!(
        r#"{{"appid":"app-json","callback_url_pre":"{PRE}","callback_url_post":"{POST}",
            "callback_hosts":["CB.example.com","cb2.example.com:8443"],"max_body_bytes":1048576}}"#
    );
    let w = raw(
        node.addr,
        "POST",
        "/upload/register",
        &["Content-Type: application/json"],
        body.as_bytes(),
    );
    assert_eq!(w.status, 200, "{}", String::from_utf8_lossy(&w.body));
    assert!(w.json()["secret"].as_str().unwrap().starts_with("whsec_"));

    let got = curl(&[&node.url("/upload/register/app-json")]);
    assert_eq!(got.status, 200);
    let text = String::from_utf8_lossy(&got.body).to_string();
    assert!(
        !text.contains("whsec_") && !text.contains("secret"),
        "{text}"
    );
    let v = got.json();
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        [
            "appid",
            "callback_hosts",
            "callback_url_post",
            "callback_url_pre",
            "cors_origins",
            "created_at",
            "downloads",
            "expect",
            "forward_headers",
            "inline_types",
            "max_body_bytes",
            "max_concurrent_uploads",
            "quota_bytes",
            "rate_per_s",
            "updated_at"
        ]
    );
    assert_eq!(v["appid"], "app-json");
    assert_eq!(v["callback_url_pre"], PRE);
    assert_eq!(v["callback_url_post"], POST);
    assert_eq!(
        v["callback_hosts"],
        serde_json::json!(["cb.example.com", "cb2.example.com:8443"])
    );
    assert_eq!(v["max_body_bytes"], 1048576);
    let created = v["created_at"].as_u64().unwrap();
    assert!(created.abs_diff(upgate::clock::unix_secs()) < 60);
    assert_eq!(v["updated_at"], created);

    // HEAD gives the same status without a body; an unknown app is 404.
    let mut s = connect(node.addr);
    s.write_all(b"HEAD /upload/register/app-json HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut head = Vec::new();
    s.read_to_end(&mut head).unwrap();
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    assert!(head.ends_with("\r\n\r\n"), "HEAD has no body: {head}");
    assert_error(
        &curl(&[&node.url("/upload/register/nobody")]),
        404,
        "unknown_appid",
    );
    node.finish();
}

#[test]
fn delete_removes_the_record() {
    let node = Node::start(test_config());
    register_app(&node, "app1", None);
    let w = curl(&["-X", "DELETE", &node.url("/upload/register/app1")]);
    assert_eq!(w.status, 200);
    assert_eq!(
        w.json(),
        serde_json::json!({"appid": "app1", "success": "true"})
    );
    assert_error(
        &curl(&[&node.url("/upload/register/app1")]),
        404,
        "unknown_appid",
    );
    assert_error(
        &curl(&["-X", "DELETE", &node.url("/upload/register/app1")]),
        404,
        "unknown_appid",
    );
    assert_eq!(node.registry.get("app1").unwrap(), None);
    node.finish();
}

#[test]
fn admin_token_is_required_when_configured() {
    let node = Node::start(admin_config());
    let url = node.url("/upload/register");
    let form = format!("appid=app1&callback_url_pre={PRE}");
    for extra in [
        vec![],
        vec!["-H", "Authorization: Bearer wrong-token"],
        vec!["-H", "Authorization: Basic YWRtaW46eA=="],
    ] {
        let w = curl_form(&url, &form, &extra);
        assert_error(&w, 401, "unauthorized");
        assert_eq!(w.header("www-authenticate"), Some("Bearer"));
    }
    assert_error(
        &curl(&[&node.url("/upload/register/app1")]),
        401,
        "unauthorized",
    );
    assert_eq!(
        node.registry.get("app1").unwrap(),
        None,
        "nothing was stored"
    );

    let auth = bearer(ADMIN);
    let w = curl_form(&url, &form, &["-H", &auth]);
    assert_eq!(w.status, 200);
    assert!(w.json()["secret"].is_string());
    let got = curl(&["-H", &auth, &node.url("/upload/register/app1")]);
    assert_eq!(
        (got.status, got.json()["callback_url_pre"].as_str()),
        (200, Some(PRE))
    );
    node.finish();
}

#[test]
fn unauthorized_registration_is_refused_before_continue() {
    let node = Node::start(admin_config());
    let mut s = connect(node.addr);
    s.write_all(
        b"POST /upload/register HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\
          Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 10\r\n\r\n",
    )
    .unwrap();
    let mut buf = Vec::new();
    let w = read_response(&mut s, &mut buf).expect("a response");
    assert_error(&w, 401, "unauthorized");
    assert_eq!(
        w.header("connection"),
        Some("close"),
        "the unread body closes the connection"
    );
    assert!(find(&buf, b"100 Continue").is_none());
    node.finish();
}

#[test]
fn oversized_bodies_are_refused() {
    let node = Node::start(test_config());
    // Declared too large: refused from the head, without a 100 Continue.
    let mut s = connect(node.addr);
    s.write_all(
        b"POST /upload/register HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\
          Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 70000\r\n\r\n",
    )
    .unwrap();
    let mut buf = Vec::new();
    let w = read_response(&mut s, &mut buf).expect("a response");
    assert_error(&w, 413, "body_too_large");

    // Chunked: refused once the body passes 64 KiB.
    let chunk = format!("appid=app1&x={}", "a".repeat(40_000));
    let mut req = b"POST /upload/register HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\
          Content-Type: application/x-www-form-urlencoded\r\n\r\n"
        .to_vec();
    for _ in 0..2 {
        req.extend_from_slice(format!("{:x}\r\n{chunk}\r\n", chunk.len()).as_bytes());
    }
    req.extend_from_slice(b"0\r\n\r\n");
    let (w, _) = exchange(node.addr, &req);
    assert_error(&w, 413, "body_too_large");
    assert_eq!(node.registry.get("app1").unwrap(), None);
    node.finish();
}

#[test]
fn app_secret_manages_only_its_own_record() {
    let node = Node::start(admin_config());
    let admin = bearer(ADMIN);
    let s1 = register_app(&node, "app1", Some(ADMIN));
    let s2 = register_app(&node, "app2", Some(ADMIN));
    let auth1 = bearer(&s1);

    // Its own record: by path, or by an appid header on the plain endpoint.
    let w = curl_form(
        &node.url("/upload/register/app1"),
        "callback_url_post=http://new.example.com/post",
        &["-H", &auth1],
    );
    assert_eq!(w.status, 200, "{}", String::from_utf8_lossy(&w.body));
    assert_eq!(
        w.json(),
        serde_json::json!({"appid": "app1", "success": "true"})
    );
    let w = curl_form(
        &node.url("/upload/register"),
        "appid=app1&callback_hosts=cb.example.com",
        &["-H", &auth1, "-H", "appid: app1"],
    );
    assert_eq!(w.status, 200, "{}", String::from_utf8_lossy(&w.body));
    let got = curl(&["-H", &auth1, &node.url("/upload/register/app1")]);
    assert_eq!(got.status, 200);
    assert_eq!(
        got.json()["callback_url_post"],
        "http://new.example.com/post"
    );
    assert_eq!(
        got.json()["callback_hosts"],
        serde_json::json!(["cb.example.com"])
    );

    // Never another app's.
    assert_error(
        &curl(&["-H", &auth1, &node.url("/upload/register/app2")]),
        401,
        "unauthorized",
    );
    assert_error(
        &curl_form(
            &node.url("/upload/register/app2"),
            "callback_url_pre=http://evil.example.com/",
            &["-H", &auth1],
        ),
        401,
        "unauthorized",
    );
    assert_error(
        &curl_form(
            &node.url("/upload/register"),
            "appid=app2&callback_url_pre=http://evil.example.com/",
            &["-H", &auth1],
        ),
        401,
        "unauthorized",
    );
    assert_error(
        &curl_form(
            &node.url("/upload/register"),
            "appid=app2",
            &["-H", &auth1, "-H", "appid: app1"],
        ),
        400,
        "bad_appid",
    );
    assert_error(
        &curl(&[
            "-X",
            "DELETE",
            "-H",
            &auth1,
            &node.url("/upload/register/app2"),
        ]),
        401,
        "unauthorized",
    );
    assert_eq!(
        node.registry
            .get("app2")
            .unwrap()
            .unwrap()
            .callback_url_pre
            .as_deref(),
        Some(PRE)
    );

    // Operator-only changes.
    assert_error(
        &curl_form(
            &node.url("/upload/register/app1"),
            "max_body_bytes=5",
            &["-H", &auth1],
        ),
        403,
        "forbidden",
    );
    assert_error(
        &curl_form(
            &node.url("/upload/register/app1"),
            "callback_url_pre=http://127.0.0.1:9/pre",
            &["-H", &auth1],
        ),
        403,
        "callback_not_allowed",
    );
    assert_error(
        &curl_form(
            &node.url("/upload/register/app1"),
            "callback_hosts=10.0.0.7",
            &["-H", &auth1],
        ),
        403,
        "callback_not_allowed",
    );
    let w = curl_form(
        &node.url("/upload/register/app1"),
        "max_body_bytes=5",
        &["-H", &admin],
    );
    assert_eq!(w.status, 200);

    // An app may delete itself; its secret then opens nothing.
    let w = curl(&[
        "-X",
        "DELETE",
        "-H",
        &auth1,
        &node.url("/upload/register/app1"),
    ]);
    assert_eq!(w.status, 200);
    assert_error(
        &curl(&["-H", &auth1, &node.url("/upload/register/app1")]),
        401,
        "unauthorized",
    );
    assert_error(
        &curl(&["-H", &admin, &node.url("/upload/register/app1")]),
        404,
        "unknown_appid",
    );
    let w = curl(&["-H", &bearer(&s2), &node.url("/upload/register/app2")]);
    assert_eq!(w.status, 200);
    node.finish();
}

#[test]
fn rotation_issues_a_new_secret_and_signs_with_both() {
    let node = Node::start(admin_config());
    let (old, new) = register_and_rotate(&node, "app1");
    assert_ne!(new, old);
    assert_eq!(
        node.registry
            .secrets_for_signing("app1", upgate::clock::unix_secs())
            .unwrap(),
        vec![new.clone(), old.clone()]
    );
    let rec = node.registry.get("app1").unwrap().unwrap();
    let expires = rec.previous_secret_expires.unwrap();
    assert!(
        expires.abs_diff(upgate::clock::unix_secs() + 86_400) < 60,
        "{expires}"
    );

    // Only the current secret manages the record.
    assert_error(
        &curl(&["-H", &bearer(&old), &node.url("/upload/register/app1")]),
        401,
        "unauthorized",
    );
    assert_eq!(
        curl(&["-H", &bearer(&new), &node.url("/upload/register/app1")]).status,
        200
    );

    // The admin can rotate too (JSON boolean).
    let w = raw(
        node.addr,
        "POST",
        "/upload/register",
        &["Content-Type: application/json", &bearer(ADMIN)],
        br#"{"appid":"app1","rotate_secret":true}"#,
    );
    let newer = w.json()["secret"].as_str().unwrap().to_string();
    assert_eq!(
        node.registry
            .secrets_for_signing("app1", upgate::clock::unix_secs())
            .unwrap(),
        vec![newer, new]
    );
    node.finish();
}

#[test]
fn validation_errors_have_contract_codes() {
    let node = Node::start(test_config());
    let url = node.url("/upload/register");
    let cases: &[(&str, u16, &str)] = &[
        (
            "appid=bad+id&callback_url_pre=http://a.example.com/",
            400,
            "bad_appid",
        ),
        ("callback_url_pre=http://a.example.com/", 400, "bad_appid"),
        (
            "appid=app1&callback_url_pre=ftp://a.example.com/pre",
            400,
            "bad_callback_url",
        ),
        (
            "appid=app1&callback_url_post=not-a-url",
            400,
            "bad_callback_url",
        ),
        ("appid=app1&max_body_bytes=abc", 400, "bad_field"),
        ("appid=app1&colour=blue", 400, "bad_field"),
        ("appid=app1&rotate_secret=perhaps", 400, "bad_field"),
        ("appid=app1&callback_url_pre=%zz", 400, "bad_form"),
    ];
    for (form, status, code) in cases {
        assert_error(&curl_form(&url, form, &[]), *status, code);
    }
    let long = format!("appid={}", "x".repeat(65));
    assert_error(&curl_form(&url, &long, &[]), 400, "bad_appid");
    assert_error(
        &curl_form(&url, "appid=app1", &["-H", "Content-Type: text/plain"]),
        415,
        "unsupported_media_type",
    );
    assert_error(
        &raw(node.addr, "POST", "/upload/register", &[], b"appid=app1"),
        415,
        "unsupported_media_type",
    );
    assert_error(
        &curl_form(&url, "{not json", &["-H", "Content-Type: application/json"]),
        400,
        "bad_json",
    );
    assert_error(
        &curl(&[&node.url("/upload/register/bad.id")]),
        400,
        "bad_appid",
    );
    assert_error(
        &curl_form(&node.url("/upload/register/app1"), "appid=app2", &[]),
        400,
        "bad_appid",
    );
    let put = curl(&["-X", "PUT", &url]);
    assert_error(&put, 405, "method_not_allowed");
    assert_eq!(put.header("allow"), Some("POST"));
    assert_error(&curl(&[&node.url("/upload/registerx")]), 404, "not_found");
    assert_error(
        &curl(&[&node.url("/upload/register/app1/extra")]),
        404,
        "not_found",
    );
    assert!(
        node.registry.appids().unwrap().is_empty(),
        "nothing was stored"
    );
    node.finish();
}

#[test]
fn registrations_survive_a_restart() {
    let config = admin_config();
    let node = Node::start(config.clone());
    let secret = register_app(&node, "app1", Some(ADMIN));
    node.stop();

    let node = Node::start(config);
    let got = curl(&["-H", &bearer(ADMIN), &node.url("/upload/register/app1")]);
    assert_eq!(got.status, 200);
    let v: Value = got.json();
    assert_eq!(
        (
            v["callback_url_pre"].as_str(),
            v["callback_url_post"].as_str()
        ),
        (Some(PRE), Some(POST))
    );
    // The secret survived too: the app can still manage its record.
    assert_eq!(
        curl(&["-H", &bearer(&secret), &node.url("/upload/register/app1")]).status,
        200
    );
    node.finish();
}

/// This machine's first non-loopback IPv4 address, if it has one.
fn non_loopback_ip() -> Option<std::net::IpAddr> {
    let out = Command::new("hostname").arg("-I").output().ok()?;
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter_map(|a| a.parse::<std::net::IpAddr>().ok())
        .find(|ip| ip.is_ipv4() && !ip.is_loopback())
}

#[test]
fn non_loopback_peer_without_admin_token_is_forbidden() {
    let Some(ip) = non_loopback_ip() else {
        eprintln!("skipped: no non-loopback address on this machine");
        return;
    };
    let node = Node::start(Config {
        listen: "0.0.0.0:0".parse().unwrap(),
        ..test_config()
    });
    let port = node.addr.port();
    let local = format!("http://127.0.0.1:{port}/upload/register");
    let remote = format!("http://{ip}:{port}/upload/register");

    let w = curl_form(&remote, "appid=app1", &[]);
    assert_error(&w, 403, "forbidden");
    assert_error(&curl(&[&format!("{remote}/app1")]), 403, "forbidden");

    // Loopback is the operator; the app's own secret works from anywhere.
    let w = curl_form(&local, &format!("appid=app1&callback_url_pre={PRE}"), &[]);
    assert_eq!(w.status, 200);
    let secret = w.json()["secret"].as_str().unwrap().to_string();
    let got = curl(&["-H", &bearer(&secret), &format!("{remote}/app1")]);
    assert_eq!(
        (got.status, got.json()["appid"].as_str()),
        (200, Some("app1"))
    );
    assert_error(
        &curl(&[
            "-H",
            "Authorization: Bearer nope",
            &format!("{remote}/app1"),
        ]),
        401,
        "unauthorized",
    );
    node.finish();
}

#[test]
fn wrong_or_missing_tokens_of_any_length_are_401() {
    let node = Node::start(admin_config());
    let url = node.url("/upload/register");
    let form = format!("appid=app1&callback_url_pre={PRE}");
    let prefix = &ADMIN[..ADMIN.len() - 1];
    let longer = format!("{ADMIN}x");
    let other_case = ADMIN.to_uppercase();
    for auth in [
        None,
        Some("Authorization: Bearer".to_string()),
        Some("Authorization: Bearer ".to_string()),
        Some(bearer("a")),
        Some(bearer(prefix)),
        Some(bearer(&longer)),
        Some(bearer(&other_case)),
        Some(format!("Authorization: Token {ADMIN}")),
        Some(ADMIN.to_string().replace("admin", "Authorization: admin")),
    ] {
        let headers: Vec<&str> = ["Content-Type: application/x-www-form-urlencoded"]
            .into_iter()
            .chain(auth.as_deref())
            .collect();
        let w = raw(
            node.addr,
            "POST",
            "/upload/register",
            &headers,
            form.as_bytes(),
        );
        assert_error(&w, 401, "unauthorized");
        assert_eq!(w.header("www-authenticate"), Some("Bearer"), "{auth:?}");
    }
    // JSON too, and two Authorization fields even if one is right.
    let w = raw(
        node.addr,
        "POST",
        "/upload/register",
        &["Content-Type: application/json", &bearer("nope")],
        br#"{"appid":"app1"}"#,
    );
    assert_error(&w, 401, "unauthorized");
    let w = raw(
        node.addr,
        "POST",
        "/upload/register",
        &[
            "Content-Type: application/x-www-form-urlencoded",
            &bearer(ADMIN),
            &bearer("nope"),
        ],
        form.as_bytes(),
    );
    assert_error(&w, 401, "unauthorized");
    assert_eq!(node.registry.get("app1").unwrap(), None, "nothing stored");
    // The scheme is case-insensitive; the token is not.
    let w = curl_form(
        &url,
        &form,
        &["-H", &format!("Authorization: bearer {ADMIN}")],
    );
    assert_eq!(w.status, 200, "{}", String::from_utf8_lossy(&w.body));
    node.finish();
}

#[test]
fn an_app_secret_cannot_create_rotate_or_read_other_apps() {
    let node = Node::start(admin_config());
    let s1 = register_app(&node, "app1", Some(ADMIN));
    let _s2 = register_app(&node, "app2", Some(ADMIN));
    let before = node.registry.get("app2").unwrap().unwrap();
    let auth1 = bearer(&s1);
    // A new appid: an app secret cannot create records.
    assert_error(
        &curl_form(
            &node.url("/upload/register"),
            &format!("appid=app3&callback_url_pre={PRE}"),
            &["-H", &auth1, "-H", "appid: app3"],
        ),
        401,
        "unauthorized",
    );
    assert_error(
        &curl_form(
            &node.url("/upload/register/app3"),
            &format!("callback_url_pre={PRE}"),
            &["-H", &auth1],
        ),
        401,
        "unauthorized",
    );
    // Another app's record: not by path, nor by header, nor a rotation.
    for (path, extra) in [
        ("/upload/register/app2", None),
        ("/upload/register", Some("appid: app2")),
    ] {
        let mut args = vec!["-H", auth1.as_str()];
        if let Some(h) = extra {
            args.extend(["-H", h]);
        }
        let form = if extra.is_some() {
            "appid=app2&rotate_secret=true"
        } else {
            "rotate_secret=true"
        };
        assert_error(
            &curl_form(&node.url(path), form, &args),
            401,
            "unauthorized",
        );
    }
    assert_eq!(node.registry.get("app3").unwrap(), None);
    let after = node.registry.get("app2").unwrap().unwrap();
    assert_eq!(after.secret, before.secret, "app2's secret unchanged");
    assert_eq!(after.previous_secret, None);
    assert_eq!(after.callback_url_pre, before.callback_url_pre);
    node.finish();
}

#[test]
fn after_rotation_the_old_secret_manages_nothing_but_still_signs() {
    let node = Node::start(admin_config());
    let (old, new) = register_and_rotate(&node, "app1");
    let record = node.registry.get("app1").unwrap().unwrap();
    let old_auth = bearer(&old);
    let url = node.url("/upload/register/app1");

    // Management: the old secret opens nothing, by any route.
    for (method, form) in [
        (
            "POST",
            Some("callback_url_post=http://evil.example.com/post"),
        ),
        ("POST", Some("rotate_secret=true")),
        ("GET", None),
        ("DELETE", None),
    ] {
        let w = match form {
            Some(form) => curl_form(&url, form, &["-H", &old_auth]),
            None => curl(&["-X", method, "-H", &old_auth, &url]),
        };
        assert_error(&w, 401, "unauthorized");
    }
    assert_error(
        &curl_form(
            &node.url("/upload/register"),
            "appid=app1&callback_hosts=evil.example.com",
            &["-H", &old_auth, "-H", "appid: app1"],
        ),
        401,
        "unauthorized",
    );
    assert_eq!(
        node.registry.get("app1").unwrap().unwrap(),
        record,
        "the old secret changed the record"
    );

    // Signing: both, the new one first, until the overlap ends.
    assert_eq!(
        node.registry
            .secrets_for_signing("app1", upgate::clock::unix_secs())
            .unwrap(),
        vec![new.clone(), old.clone()]
    );
    assert_eq!(
        node.registry
            .secrets_for_signing("app1", upgate::clock::unix_secs() + 86_400 + 120)
            .unwrap(),
        vec![new.clone()],
        "the old secret still signs after the overlap"
    );
    // The new secret manages the record.
    let w = curl_form(
        &url,
        "callback_url_post=http://new.example.com/post",
        &["-H", &bearer(&new)],
    );
    assert_eq!(w.status, 200, "{}", String::from_utf8_lossy(&w.body));
    node.finish();
}

#[test]
fn the_demo_app_verifies_signatures_and_refuses_tampered_callbacks() {
    use upgate::callback::sign;
    use upgate_tools::demo::{DemoApp, DemoConfig};

    let (old, new, stranger) = (sign::new_secret(), sign::new_secret(), sign::new_secret());
    // The app knows only the secret from before a rotation.
    let mut cfg = DemoConfig::new("127.0.0.1:0".parse().unwrap(), "demo");
    cfg.secrets = vec![old.clone()];
    let app = DemoApp::start(cfg).expect("demo app starts");
    let addr = app.local_addr();
    let body = r#"{"appid":"demo","filename":"a.txt","path":"a.txt","size":3,"content_type":"text/plain","upload_id":"u1","client_ip":"127.0.0.1"}"#;
    let ts = upgate::clock::unix_secs();
    let post = |id: &str, ts: u64, signature: &str, body: &str| {
        let head = format!(
            "POST /pre HTTP/1.1\r\nHost: app\r\nContent-Type: application/json\r\n\
             webhook-id: {id}\r\nwebhook-timestamp: {ts}\r\nwebhook-signature: {signature}\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        exchange(addr, head.as_bytes()).0
    };
    let good = sign::sign(&old, "pre_u1", ts, body.as_bytes());
    assert_eq!(post("pre_u1", ts, &good, body).status, 200);
    // During a rotation the node sends both signatures: the old secret still verifies.
    let both = sign::signature_header(&[new.clone(), old.clone()], "pre_u1", ts, body.as_bytes());
    let w = post("pre_u1", ts, &both, body);
    assert_eq!(
        (w.status, w.json()["success"].as_str()),
        (200, Some("true"))
    );

    let tampered_body = body.replace(r#""size":3"#, r#""size":4"#);
    let refused: Vec<(&str, String, u64, String)> = vec![
        ("tampered body", good.clone(), ts, tampered_body),
        ("other id", good.clone(), ts, body.to_string()),
        ("other timestamp", good.clone(), ts + 1, body.to_string()),
        (
            "unknown secret",
            sign::sign(&stranger, "pre_u1", ts, body.as_bytes()),
            ts,
            body.to_string(),
        ),
        (
            "only the new secret",
            sign::sign(&new, "pre_u1", ts, body.as_bytes()),
            ts,
            body.to_string(),
        ),
        (
            "stale",
            sign::sign(&old, "pre_u1", ts - 3600, body.as_bytes()),
            ts - 3600,
            body.to_string(),
        ),
        (
            "other version",
            good.replacen("v1,", "v2,", 1),
            ts,
            body.to_string(),
        ),
        (
            "truncated",
            good[..good.len() - 4].to_string(),
            ts,
            body.to_string(),
        ),
        ("empty", String::new(), ts, body.to_string()),
    ];
    for (what, signature, ts, body) in refused {
        let id = if what == "other id" {
            "pre_u2"
        } else {
            "pre_u1"
        };
        let w = post(id, ts, &signature, &body);
        assert_eq!(
            w.status,
            401,
            "{what}: {}",
            String::from_utf8_lossy(&w.body)
        );
        assert_eq!(w.json()["success"], "false", "{what}");
    }
    // Unsigned.
    let head = format!(
        "POST /pre HTTP/1.1\r\nHost: app\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    assert_eq!(exchange(addr, head.as_bytes()).0.status, 401);
    app.shutdown();
}
