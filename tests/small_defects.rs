//! One regression test per smaller defect a new user tripped over (issue "The application's
//! control plane", "Smaller things, each a defect"): a real node on loopback, real sockets, the
//! built binary for the command line.

mod support;

use std::io::Write;
use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use support::callback_app::CallbackApp;
use support::*;
use upgate::config::Config;

fn node_config(app: &CallbackApp) -> Config {
    Config {
        callback_allow: vec![app.addr.to_string()],
        ..test_config()
    }
}

fn register(addr: SocketAddr, appid: &str, app: &CallbackApp) {
    assert_eq!(
        register_form(addr, appid, &app.url("/pre"), &app.url("/post")).status,
        200
    );
}

#[test]
fn a_partial_put_is_refused_not_stored_as_a_whole_file() {
    let app = CallbackApp::accepting();
    let node = start(node_config(&app));
    let addr = node.local_addr();
    register(addr, "d1", &app);
    let (w, _) = exchange(
        addr,
        b"PUT /d1/a.txt HTTP/1.1\r\nHost: n\r\nExpect: 100-continue\r\nappid: d1\r\nContent-Range: bytes 0-4/10\r\nContent-Length: 5\r\n\r\n",
    );
    assert_eq!(w.status, 400);
    assert_eq!(w.error_code(), "partial_put_unsupported");
    assert!(app.on("/pre").is_empty(), "refused on the head");
    let (w, _) = exchange(addr, b"GET /d1/a.txt HTTP/1.1\r\nHost: n\r\n\r\n");
    assert_eq!(w.status, 404, "nothing stored");
    node.shutdown();
}

#[test]
fn a_get_with_a_small_body_keeps_its_connection() {
    let app = CallbackApp::accepting();
    let node = start(node_config(&app));
    let addr = node.local_addr();
    let mut s = connect(addr);
    let mut buf = Vec::new();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: n\r\nContent-Length: 5\r\n\r\nhello")
        .unwrap();
    let w = read_response(&mut s, &mut buf).unwrap();
    assert_eq!(w.status, 200);
    assert_ne!(
        w.header("connection").map(str::to_ascii_lowercase),
        Some("close".into())
    );
    // The same connection serves the next request.
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: n\r\n\r\n")
        .unwrap();
    assert_eq!(read_response(&mut s, &mut buf).unwrap().status, 200);
    // A big body is not read: that connection closes (lingering).
    let mut s = connect(addr);
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: n\r\nContent-Length: 10000000\r\n\r\n")
        .unwrap();
    let w = read_response(&mut s, &mut Vec::new()).unwrap();
    assert_eq!(w.header("connection"), Some("close"));
    node.shutdown();
}

#[test]
fn registrations_without_callbacks_and_reserved_appids_are_refused() {
    let node = start(test_config());
    let addr = node.local_addr();
    let form = |body: &str| {
        exchange(
            addr,
            format!(
                "POST /upload/register HTTP/1.1\r\nHost: n\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        )
        .0
    };
    let w = form("appid=nocb");
    assert_eq!(
        (w.status, w.error_code().as_str()),
        (400, "missing_callbacks")
    );
    for reserved in ["upload", "metrics", "healthz", "readyz"] {
        let w = form(&format!(
            "appid={reserved}&callback_url_post=http://app.example.com/post"
        ));
        assert_eq!(
            (w.status, w.error_code().as_str()),
            (400, "bad_appid"),
            "{reserved}"
        );
    }
    node.shutdown();
}

#[test]
fn client_ip_comes_from_forwarded_headers_of_trusted_proxies_only() {
    let app = CallbackApp::accepting();
    let upload = |config: Config, fields: &str| {
        let node = start(config);
        let addr = node.local_addr();
        register(addr, "d4", &app);
        let before = app.on("/pre").len();
        let (w, _) = exchange(
            addr,
            format!("PUT /d4/f{before} HTTP/1.1\r\nHost: n\r\nappid: d4\r\nExpect: 100-continue\r\n{fields}Content-Length: 0\r\n\r\n").as_bytes(),
        );
        assert!(matches!(w.status, 100 | 201), "{}", w.status);
        let pre = app.wait_for("/pre", before + 1, Duration::from_secs(5));
        node.shutdown();
        pre[before].json()["client_ip"].as_str().unwrap().to_owned()
    };
    let trusting = Config {
        trusted_proxies: vec!["127.0.0.0/8".into()],
        ..node_config(&app)
    };
    assert_eq!(
        upload(
            trusting.clone(),
            "X-Forwarded-For: 1.1.1.1, 203.0.113.5\r\n"
        ),
        "203.0.113.5"
    );
    assert_eq!(
        upload(trusting, "Forwarded: for=\"[2001:db8::7]:443\"\r\n"),
        "2001:db8::7"
    );
    // Not a trusted proxy: the claim is ignored.
    assert_eq!(
        upload(node_config(&app), "X-Forwarded-For: 203.0.113.5\r\n"),
        "127.0.0.1"
    );
}

fn upgate(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_upgate"))
        .args(args)
        .output()
        .expect("upgate runs")
}

fn config_file(text: &str) -> std::path::PathBuf {
    let dir = test_config().data_dir;
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("node.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn listen_takes_a_host_name_and_sizes_take_suffixes() {
    let path = config_file("listen = \"localhost:8080\"\nmax_body_bytes = \"10G\"\n");
    let out = upgate(&["config", "check", path.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = upgate(&["config", "print", "--config", path.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("listen = \"127.0.0.1:8080\""), "{text}");
    assert!(
        text.contains(&format!("max_body_bytes = {}", 10u64 << 30)),
        "{text}"
    );
    // The flag too.
    let out = upgate(&["config", "print", "--listen", "localhost:9090"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("127.0.0.1:9090"));
}

#[test]
fn config_check_reports_every_problem_at_once() {
    let path = config_file(
        "threads = \"many\"\nlisten = \"nowhere\"\ncallback_timeout_ms = 0\nmax_head_bytes = 10\nfsynk = true\n",
    );
    let out = upgate(&["config", "check", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    for needle in [
        ":1: threads:",
        ":2: listen:",
        ":3: callback_timeout_ms:",
        ":4: max_head_bytes:",
        ":5: fsynk: unknown key (did you mean `fsync`?)",
        "5 problems",
    ] {
        assert!(err.contains(needle), "{needle} missing from:\n{err}");
    }
}

#[test]
fn serve_help_shows_the_defaults() {
    let out = upgate(&["serve", "--help"]);
    let help = String::from_utf8_lossy(&out.stdout);
    for default in ["127.0.0.1:8080", "./data", "require"] {
        assert!(help.contains(default), "{default} missing from:\n{help}");
    }
}

#[test]
fn make_demo_uses_the_release_build_that_make_run_built() {
    let out = Command::new("make")
        .args(["-n", "demo"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("make runs");
    let plan = String::from_utf8_lossy(&out.stdout);
    assert!(plan.contains("PROFILE=release"), "{plan}");
}
