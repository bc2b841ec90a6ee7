//! The reference client over HTTPS (issue "TLS termination", item 5): `upgate upload`,
//! `upload --resumable`, `register`, `outbox` and `files` as subprocesses (and the demo app's
//! self-registration in process) against a node's `tls_listen` on 127.0.0.1, with a private CA
//! made by `openssl` and passed as `--cacert`.
//! What is checked: the stored bytes, the app's veto, and that a certificate the client must
//! not trust (unknown CA, another name, a CA posing as the node) or the wrong kind of port
//! fails with a message that says what to do, before any byte of the request is sent. Every
//! child process runs under a deadline.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use support::callback_app::{Answer, CallbackApp};
use support::certs::{self, Pem};
use support::*;
use upgate::config::Config;
use upgate::node::Node;
use upgate_tools::client::exit;
use upgate_tools::demo::{DemoApp, DemoConfig};

const BIN: &str = env!("CARGO_BIN_EXE_upgate");

/// A node serving `cert` on `tls_listen`, and an app registered with it as `app1` that
/// vetoes any upload to `vetoed.bin`.
struct Https {
    node: Node,
    app: CallbackApp,
    dir: PathBuf,
}

impl Https {
    fn start(dir: &Path, cert: &Pem) -> Https {
        let app = CallbackApp::start(0, |r| {
            if r.path == "/pre" && r.json()["path"] == "vetoed.bin" {
                Answer::json(200, r#"{"success":"false","reason":"not this one"}"#)
            } else {
                Answer::ok()
            }
        });
        let node = start(Config {
            tls_listen: Some("127.0.0.1:0".parse().unwrap()),
            tls_cert: Some(cert.cert.clone()),
            tls_key: Some(cert.key.clone()),
            callback_allow: vec![app.addr.to_string()],
            header_timeout_ms: 2000,
            ..test_config()
        });
        let w = register_form(
            node.local_addr(),
            "app1",
            &app.url("/pre"),
            &app.url("/post"),
        );
        assert_eq!(w.status, 200, "{}", String::from_utf8_lossy(&w.body));
        Https {
            node,
            app,
            dir: dir.to_owned(),
        }
    }

    /// `https://127.0.0.1:<tls port><path>`.
    fn url(&self, path: &str) -> String {
        format!(
            "https://{}{path}",
            self.node.tls_addr().expect("a TLS port")
        )
    }

    fn file(&self, name: &str, content: &[u8]) -> PathBuf {
        let p = self.dir.join(name);
        std::fs::write(&p, content).unwrap();
        p
    }

    /// A stored file's status and bytes, fetched over plain HTTP.
    fn stored(&self, path: &str) -> Wire {
        exchange(
            self.node.local_addr(),
            format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .0
    }
}

/// A fresh directory for one test's certificates and files.
fn test_dir(name: &str) -> PathBuf {
    let dir = test_config().data_dir.with_extension(name);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The usual setup: a CA, a node certificate for 127.0.0.1 signed by it, the node.
fn trusted(name: &str) -> (Https, Pem) {
    let dir = test_dir(name);
    let ca = certs::ca(&dir, "test-ca");
    let leaf = certs::leaf(&dir, "node", &ca, "IP:127.0.0.1,DNS:localhost");
    (Https::start(&dir, &leaf), ca)
}

/// Runs `upgate ARGS…` with `env` added (and the system CA variables cleared unless set
/// there), and kills it if it runs past 30 s.
fn upgate(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env_remove("SSL_CERT_FILE")
        .env_remove("SSL_CERT_DIR")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("upgate runs");
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("upgate {args:?} ran past 30 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().unwrap()
}

fn code(out: &Output) -> i32 {
    out.status.code().expect("exited, not killed")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout_json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {:?} / stderr {:?}",
            String::from_utf8_lossy(&out.stdout),
            stderr(out)
        )
    })
}

/// `upgate upload FILE URL --cacert CA EXTRA…`.
fn upload_with_ca(file: &str, url: &str, ca: &str, extra: &[&str]) -> Output {
    let mut args = vec!["upload", file, url, "--cacert", ca];
    args.extend_from_slice(extra);
    upgate(&args, &[])
}

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn an_https_upload_stores_byte_identical_bytes() {
    let (sys, ca) = trusted("https-upload");
    let content = pattern((5 << 20) + 4321);
    let file = sys.file("big.bin", &content);
    let out = upload_with_ca(
        path_str(&file),
        &sys.url("/app1/tls/big.bin"),
        path_str(&ca.cert),
        &[],
    );
    assert_eq!(code(&out), 0, "stderr: {}", stderr(&out));
    let done = stdout_json(&out);
    assert_eq!(done["success"], "true");
    assert_eq!(done["size"], content.len());
    let got = sys.stored("/app1/tls/big.bin");
    assert_eq!(got.status, 200);
    assert!(got.body == content, "the stored bytes differ");
    // The app heard of it once, before and after.
    assert_eq!(sys.app.on("/pre").len(), 1);
    assert_eq!(sys.app.on("/post").len(), 1);
    sys.node.shutdown();
}

#[test]
fn a_veto_over_https_gets_the_apps_refusal_and_nothing_is_stored() {
    let (sys, ca) = trusted("https-veto");
    let file = sys.file("vetoed.bin", &pattern(300_000));
    let out = upload_with_ca(
        path_str(&file),
        &sys.url("/app1/vetoed.bin"),
        path_str(&ca.cert),
        &[],
    );
    assert_eq!(code(&out), i32::from(exit::VETOED), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("vetoed by the application") && err.contains("not this one"),
        "{err}"
    );
    assert!(err.contains("the body was not sent"), "{err}");
    assert_eq!(stdout_json(&out)["error"], "vetoed");
    assert_eq!(sys.stored("/app1/vetoed.bin").status, 404);
    assert!(sys.app.on("/post").is_empty());
    sys.node.shutdown();
}

#[test]
fn a_resumable_upload_over_https_completes() {
    let (sys, ca) = trusted("https-tus");
    let content = pattern((3 << 20) + 12345);
    let file = sys.file("resumed.bin", &content);
    let out = upload_with_ca(
        path_str(&file),
        &sys.url("/app1/tus/resumed.bin"),
        path_str(&ca.cert),
        &["--resumable", "--chunk-size", "1M"],
    );
    assert_eq!(code(&out), 0, "stderr: {}", stderr(&out));
    let done = stdout_json(&out);
    assert_eq!(done["protocol"], "tus");
    assert_eq!(done["size"], content.len());
    assert_eq!(done["url"], sys.url("/app1/tus/resumed.bin"));
    let got = sys.stored("/app1/tus/resumed.bin");
    assert_eq!(got.status, 200);
    assert!(got.body == content, "the stored bytes differ");
    sys.node.shutdown();
}

#[test]
fn an_untrusted_certificate_fails_clearly_and_nothing_is_sent() {
    let (sys, _ca) = trusted("https-untrusted");
    let other = certs::ca(&sys.dir, "other-ca");
    let file = sys.file("a.bin", &pattern(100_000));
    let url = sys.url("/app1/a.bin");

    // No --cacert: the system's store, here pointed at another CA (SSL_CERT_FILE).
    let out = upgate(
        &["upload", path_str(&file), &url],
        &[("SSL_CERT_FILE", path_str(&other.cert))],
    );
    assert_eq!(code(&out), i32::from(exit::NETWORK), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("not issued by a CA in the system's trust store")
            && err.contains("UnknownIssuer")
            && err.contains("--cacert FILE"),
        "{err}"
    );
    assert!(out.stdout.is_empty());

    // --cacert with another CA: the message names that file.
    let out = upload_with_ca(path_str(&file), &url, path_str(&other.cert), &[]);
    assert_eq!(code(&out), i32::from(exit::NETWORK), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "not issued by a CA in --cacert {}",
            path_str(&other.cert)
        )),
        "{err}"
    );

    // The same for --resumable: refused at once, not retried.
    let started = Instant::now();
    let out = upload_with_ca(
        path_str(&file),
        &url,
        path_str(&other.cert),
        &["--resumable"],
    );
    assert_eq!(code(&out), i32::from(exit::NETWORK), "{}", stderr(&out));
    assert!(stderr(&out).contains("UnknownIssuer"), "{}", stderr(&out));
    assert!(!stderr(&out).contains("retrying"), "{}", stderr(&out));
    assert!(started.elapsed() < Duration::from_secs(10));

    // Nothing reached the app or the disk.
    assert!(sys.app.received().is_empty());
    assert_eq!(sys.stored("/app1/a.bin").status, 404);

    // A --cacert that holds no certificate is a usage error.
    let out = upgate(
        &["upload", path_str(&file), &url, "--cacert", path_str(&file)],
        &[],
    );
    assert_eq!(code(&out), i32::from(exit::USAGE), "{}", stderr(&out));
    assert!(stderr(&out).contains("holds no PEM certificate"));
    sys.node.shutdown();
}

#[test]
fn the_wrong_name_or_the_wrong_kind_of_port_is_explained() {
    let dir = test_dir("https-names");
    let ca = certs::ca(&dir, "test-ca");
    // A certificate for a name, not for the address the URL uses.
    let named = certs::leaf(&dir, "named", &ca, "DNS:uploads.example.com");
    let sys = Https::start(&dir, &named);
    let file = sys.file("a.bin", b"hello");
    let cacert = path_str(&ca.cert);
    let out = upload_with_ca(path_str(&file), &sys.url("/app1/a.bin"), cacert, &[]);
    assert_eq!(code(&out), i32::from(exit::NETWORK), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("not valid for \"127.0.0.1\""),
        "{}",
        stderr(&out)
    );

    // https:// to the plain port, and http:// to the TLS port.
    let plain = format!("https://{}/app1/a.bin", sys.node.local_addr());
    let out = upgate(
        &["upload", path_str(&file), &plain, "--cacert", cacert],
        &[],
    );
    assert_eq!(code(&out), i32::from(exit::NETWORK), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("did not answer with TLS") && stderr(&out).contains("http://"),
        "{}",
        stderr(&out)
    );
    let tls_as_http = format!("http://{}/app1/a.bin", sys.node.tls_addr().unwrap());
    let out = upgate(&["upload", path_str(&file), &tls_as_http], &[]);
    assert_eq!(code(&out), i32::from(exit::NETWORK), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("use an https:// URL"),
        "{}",
        stderr(&out)
    );
    assert_eq!(sys.stored("/app1/a.bin").status, 404);
    sys.node.shutdown();

    // openssl's default self-signed certificate (CA:TRUE), trusted as its own CA: refused by
    // rustls, with the way out named.
    let selfish = certs::self_signed(&dir, "selfish", "IP:127.0.0.1");
    let sys = Https::start(&dir, &selfish);
    let out = upload_with_ca(
        path_str(&file),
        &sys.url("/app1/a.bin"),
        path_str(&selfish.cert),
        &[],
    );
    assert_eq!(code(&out), i32::from(exit::NETWORK), "{}", stderr(&out));
    assert!(stderr(&out).contains("CA:FALSE"), "{}", stderr(&out));
    sys.node.shutdown();
}

#[test]
fn register_outbox_files_and_the_demo_app_speak_https_too() {
    let (sys, ca) = trusted("https-control");
    let cacert = path_str(&ca.cert);
    let server = sys.url("");
    let out = upgate(
        &[
            "register",
            "--server",
            &server,
            "--cacert",
            cacert,
            "--appid",
            "viatls",
            "--pre",
            &sys.app.url("/pre"),
            "--post",
            &sys.app.url("/post"),
        ],
        &[],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let json = stdout_json(&out);
    assert_eq!(json["appid"], "viatls");
    let secret = json["secret"]
        .as_str()
        .expect("a new app's secret")
        .to_owned();

    // An upload for it, then the management commands see it.
    let file = sys.file("c.bin", &pattern(70_000));
    let out = upload_with_ca(path_str(&file), &sys.url("/viatls/c.bin"), cacert, &[]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let app = ["--server", &server, "--cacert", cacert];
    let who = ["--appid", "viatls", "--token", &secret];
    let out = upgate(
        &[&["files", "list"][..], &app, &who, &["--json"]].concat(),
        &[],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed["path"], "c.bin");
    let out = upgate(
        &[&["outbox", "list"][..], &app, &who, &["--json"]].concat(),
        &[],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout_json(&out)["pending"].is_array());

    // The demo app registers itself over https (`demo-app --register-with URL --cacert FILE`).
    let mut cfg = DemoConfig::new("127.0.0.1:0".parse().unwrap(), "demotls");
    cfg.register_with = Some(server.clone());
    cfg.cacert = Some(ca.cert.clone());
    let demo = DemoApp::start(cfg).expect("the demo app registers over https");
    assert!(demo.registered());
    demo.shutdown();

    // The same refusal as uploads, for a CA it must not trust.
    let other = certs::ca(&sys.dir, "other-ca");
    let out = upgate(
        &[
            "register",
            "--server",
            &server,
            "--cacert",
            path_str(&other.cert),
            "--appid",
            "nope",
            "--pre",
            &sys.app.url("/pre"),
            "--post",
            &sys.app.url("/post"),
        ],
        &[],
    );
    assert_eq!(code(&out), i32::from(exit::NETWORK), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("not issued by a CA in --cacert"),
        "{}",
        stderr(&out)
    );
    sys.node.shutdown();
}
