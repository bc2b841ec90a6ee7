//! Operating upgate: configuration layers and errors, `/metrics` (checked by promtool),
//! `/healthz` and `/readyz`, JSON access logs, SIGTERM drain with an upload in flight, SIGHUP
//! reload, and the documentation kept in step with `Config`. Nodes run as subprocesses of the
//! real binary wherever the behaviour is the process's (signals, stderr, environment).

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::callback_app::{Answer, CallbackApp};
use support::*;
use upgate::config::Config;

// ── helpers ─────────────────────────────────────────────────────────────────────────────────

fn bin() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_upgate"));
    // Hermetic: no UPGATE_* variable of the test's own environment leaks in.
    for (k, _) in std::env::vars() {
        if k.starts_with("UPGATE_") {
            cmd.env_remove(k);
        }
    }
    cmd
}

fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = bin();
    cmd.args(args).envs(env.iter().copied());
    cmd.output().expect("upgate runs")
}

fn scratch() -> PathBuf {
    let dir = test_config().data_dir;
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// A node running as a subprocess, with its stderr collected line by line.
struct Proc {
    child: Child,
    addr: SocketAddr,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl Proc {
    fn spawn(args: &[&str], env: &[(&str, &str)]) -> Proc {
        let mut child = bin()
            .arg("serve")
            .args(args)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("node starts");
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let err = child.stderr.take().unwrap();
        let lines = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                lines.lock().unwrap().push(line);
            }
        });
        let mut out = child.stdout.take().unwrap();
        let mut line = Vec::new();
        let mut byte = [0u8; 1];
        while out.read(&mut byte).unwrap_or(0) == 1 && byte[0] != b'\n' {
            line.push(byte[0]);
        }
        let line = String::from_utf8(line).unwrap();
        let Some(addr) = line.rsplit("http://").next().and_then(|a| a.parse().ok()) else {
            let _ = child.kill();
            std::thread::sleep(Duration::from_millis(100));
            panic!(
                "no address in {line:?}; stderr: {:?}",
                stderr.lock().unwrap()
            );
        };
        Proc {
            child,
            addr,
            stderr,
        }
    }

    fn signal(&self, sig: i32) {
        assert_eq!(unsafe { libc::kill(self.child.id() as i32, sig) }, 0);
    }

    fn lines(&self) -> Vec<String> {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits until a stderr line contains `needle`.
    fn wait_log(&self, needle: &str, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if self.lines().iter().any(|l| l.contains(needle)) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                // Let the reader thread take the last lines.
                std::thread::sleep(Duration::from_millis(50));
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Sends an upload head with `Expect: 100-continue`; returns the first answer.
fn send_head(s: &mut TcpStream, buf: &mut Vec<u8>, path: &str, extra: &str, len: usize) -> Wire {
    let appid = path.split('/').nth(1).unwrap();
    let head = format!(
        "PUT {path} HTTP/1.1\r\nHost: node\r\nExpect: 100-continue\r\nappid: {appid}\r\n{extra}Content-Length: {len}\r\n\r\n"
    );
    s.write_all(head.as_bytes()).unwrap();
    read_response(s, buf).expect("an answer to the head")
}

fn upload(addr: SocketAddr, path: &str, extra: &str, body: &[u8]) -> Wire {
    let mut s = connect(addr);
    let mut buf = Vec::new();
    let first = send_head(&mut s, &mut buf, path, extra, body.len());
    if first.status != 100 {
        return first;
    }
    s.write_all(body).unwrap();
    read_response(&mut s, &mut buf).expect("a final answer")
}

fn callbacks(app: &CallbackApp) -> String {
    format!(
        "callback_url_pre: {}\r\ncallback_url_post: {}\r\n",
        app.url("/pre"),
        app.url("/post")
    )
}

fn get(addr: SocketAddr, path: &str) -> Wire {
    exchange(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: n\r\n\r\n").as_bytes(),
    )
    .0
}

/// The value of one sample of a Prometheus exposition (`name{labels}` exactly as rendered).
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no series {series}"))
        .parse()
        .unwrap()
}

fn promtool_check(text: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool must be installed (Debian package `prometheus`, see .ci/packages)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

// ── configuration ───────────────────────────────────────────────────────────────────────────

#[test]
fn config_print_shows_file_then_env_then_flag_precedence() {
    let dir = scratch();
    let file = write(
        &dir,
        "p.toml",
        "listen = \"127.0.0.1:1111\"\nlinger_ms = 1\nthreads = 1\n",
    );
    let out = run(
        &["config", "print", "--config", file.to_str().unwrap()],
        &[
            ("UPGATE_LISTEN", "127.0.0.1:2222"),
            ("UPGATE_LINGER_MS", "2"),
        ],
    );
    let flagged = run(
        &[
            "config",
            "print",
            "--config",
            file.to_str().unwrap(),
            "--listen",
            "127.0.0.1:3333",
        ],
        &[
            ("UPGATE_LISTEN", "127.0.0.1:2222"),
            ("UPGATE_LINGER_MS", "2"),
        ],
    );
    assert!(out.status.success() && flagged.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let flagged = String::from_utf8(flagged.stdout).unwrap();
    let fname = file.display();
    assert!(
        text.contains(&format!("threads = 1  # {fname}:3")),
        "{text}"
    );
    assert!(
        text.contains("linger_ms = 2  # environment variable UPGATE_LINGER_MS"),
        "{text}"
    );
    assert!(
        text.contains("listen = \"127.0.0.1:2222\"  # environment variable UPGATE_LISTEN"),
        "{text}"
    );
    assert!(
        flagged.contains("listen = \"127.0.0.1:3333\"  # --listen"),
        "{flagged}"
    );
    assert!(flagged.contains("linger_ms = 2  #"), "{flagged}");
    assert!(
        text.contains("fsync = true\n"),
        "defaults carry no origin: {text}"
    );
}

#[test]
fn serve_applies_file_then_env_then_flag() {
    let dir = scratch();
    let (a, b, c) = (
        dir.join("from-file"),
        dir.join("from-env"),
        dir.join("from-flag"),
    );
    let file = write(
        &dir,
        "s.toml",
        &format!(
            "listen = \"127.0.0.1:9\"\ndata_dir = \"{}\"\nexpect = \"optional\"\n",
            a.display()
        ),
    );
    let mut node = Proc::spawn(
        &[
            "--config",
            file.to_str().unwrap(),
            "--data-dir",
            c.to_str().unwrap(),
        ],
        &[
            ("UPGATE_LISTEN", "127.0.0.1:0"),
            ("UPGATE_DATA_DIR", b.to_str().unwrap()),
        ],
    );
    assert_ne!(node.addr.port(), 9, "the environment beats the file");
    assert_eq!(get(node.addr, "/healthz").status, 200);
    assert!(
        c.join("registry").exists(),
        "the flag beats the environment"
    );
    assert!(!a.exists() && !b.exists());
    // The file's own value stays where nothing overrides it: no Expect needed.
    let wire = exchange(
        node.addr,
        b"PUT /app1/x HTTP/1.1\r\nHost: n\r\nappid: app1\r\nContent-Length: 1\r\n\r\n",
    )
    .0;
    assert_eq!(
        wire.error_code(),
        "unknown_appid",
        "expect = optional applies"
    );
    node.signal(libc::SIGTERM);
    assert_eq!(
        node.wait_exit(Duration::from_secs(5)).unwrap().code(),
        Some(0)
    );
}

#[test]
fn config_check_accepts_the_example_and_names_key_and_line_of_every_bad_file() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/upgate.example.toml");
    let out = run(&["config", "check", example], &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).ends_with(": ok\n"));

    let dir = scratch();
    let cases = [
        (
            "# a comment\nfsync = true\nfsink = false\n",
            ":3: fsink: unknown key (did you mean `fsync`?)",
        ),
        (
            "listen = \"127.0.0.1:0\"\nthreads = \"many\"\n",
            ":2: threads: invalid type: string \"many\", expected usize",
        ),
        (
            "expect = \"sometimes\"\n",
            ":1: expect: unknown variant `sometimes`, expected `require` or `optional`",
        ),
        (
            "\n\ncallback_workers = 0\n",
            ":3: callback_workers: must be greater than 0",
        ),
        (
            "log_format = \"xml\"\n",
            ":1: log_format: unknown variant `xml`, expected `pretty` or `json`",
        ),
        (
            "callback_allow = [\n  \"ok.example\",\n  \"http://not a host/\",\n]\n",
            ":1: callback_allow: ",
        ),
        ("listen = [\n", ":"),
    ];
    for (i, (text, want)) in cases.iter().enumerate() {
        let file = write(&dir, &format!("bad{i}.toml"), text);
        let out = run(&["config", "check", file.to_str().unwrap()], &[]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{text:?}: {err}");
        assert!(
            err.contains(&format!("{}{want}", file.display())),
            "{text:?}: want {want:?} in {err}"
        );
    }
    // `serve` refuses the same file with the same message.
    let file = dir.join("bad0.toml");
    let out = run(&["serve", "--config", file.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains(":3: fsink: unknown key"));
}

#[test]
fn bad_environment_values_name_the_variable() {
    let dir = scratch();
    let data = dir.to_str().unwrap();
    for (var, value, want) in [
        (
            "UPGATE_THREADS",
            "lots",
            "environment variable UPGATE_THREADS: threads: invalid type",
        ),
        (
            "UPGATE_CALLBACK_QUEUE",
            "0",
            "environment variable UPGATE_CALLBACK_QUEUE: callback_queue: must be greater than 0",
        ),
        (
            "UPGATE_LISTEN",
            "localhost",
            "environment variable UPGATE_LISTEN: listen: \"localhost\": expected host:port",
        ),
        (
            "UPGATE_FSYNC",
            "maybe",
            "environment variable UPGATE_FSYNC: fsync: invalid type",
        ),
        (
            "UPGATE_LOG_LEVEL",
            "info,[",
            "environment variable UPGATE_LOG_LEVEL: log_level: ",
        ),
    ] {
        let out = run(&["serve", "--data-dir", data], &[(var, value)]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{var}: {err}");
        assert!(err.contains(want), "{var}: want {want:?} in {err}");
    }
    // A variable that names no key is a warning, not an error.
    let out = run(&["config", "print"], &[("UPGATE_LISTNE", "127.0.0.1:1")]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains(
        "UPGATE_LISTNE names no configuration key; ignored (did you mean UPGATE_LISTEN?)"
    ));
}

#[test]
fn bad_flags_are_errors_naming_the_flag() {
    for (args, want) in [
        (&["--listen", "nonsense"][..], "--listen"),
        (&["--expect", "sometimes"][..], "--expect"),
        (&["--set", "nosuch=1"][..], "--set nosuch: unknown key"),
        (
            &["--set", "fsync=maybe"][..],
            "--set fsync: fsync: invalid type",
        ),
        (
            &["--set", "threads"][..],
            "--set threads: expected KEY=VALUE",
        ),
        (
            &["--public-url", "ftp://x"][..],
            "--public-url: public_url: must start with http:// or https://",
        ),
    ] {
        let mut all = vec!["serve"];
        all.extend_from_slice(args);
        let out = run(&all, &[]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: want {want:?} in {err}");
    }
}

#[test]
fn config_print_masks_secrets_and_is_itself_a_valid_file() {
    let out = run(
        &[
            "config",
            "print",
            "--set",
            "callback_allow=a.example,b.example",
        ],
        &[("UPGATE_ADMIN_TOKEN", "s3cr3t-token-value")],
    );
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(!text.contains("s3cr3t"), "{text}");
    assert!(
        text.contains("admin_token = \"********\"  # environment variable UPGATE_ADMIN_TOKEN"),
        "{text}"
    );
    assert!(
        text.contains("callback_allow = [\"a.example\", \"b.example\"]  # --set callback_allow"),
        "{text}"
    );
    assert!(text.contains("# public_url: unset"), "{text}");
    for key in Config::keys() {
        assert!(
            text.contains(&format!("{key} ")) || text.contains(&format!("# {key}:")),
            "{key} missing: {text}"
        );
    }
    let file = write(&scratch(), "printed.toml", &text);
    let check = run(&["config", "check", file.to_str().unwrap()], &[]);
    assert_eq!(check.status.code(), Some(0), "{text}");
}

// ── metrics and probes ──────────────────────────────────────────────────────────────────────

#[test]
fn metrics_pass_promtool_and_counters_move_with_an_upload() {
    let app = CallbackApp::accepting();
    let node = start(Config {
        callback_allow: vec![app.addr.to_string()],
        ..test_config()
    });
    let addr = node.local_addr();
    let before = get(addr, "/metrics");
    assert_eq!(before.status, 200);
    assert_eq!(
        before.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let before = String::from_utf8(before.body).unwrap();
    promtool_check(&before);

    let body = vec![7u8; 300_000];
    let wire = upload(addr, "/app1/m/one.bin", &callbacks(&app), &body);
    assert_eq!(wire.status, 201, "{}", String::from_utf8_lossy(&wire.body));
    // A refused upload counts as a 4xx.
    assert_eq!(upload(addr, "/app1/m/two.bin", "", b"x").status, 404);

    // A response is counted once written, which may be just after the client read it: scrape
    // until both uploads show (other tests of this binary share the process-global counters,
    // hence "at least").
    let upload_2xx = r#"upgate_requests_total{route="upload",code="2xx"}"#;
    let upload_4xx = r#"upgate_requests_total{route="upload",code="4xx"}"#;
    let deadline = Instant::now() + Duration::from_secs(3);
    let after = loop {
        let text = String::from_utf8(get(addr, "/metrics").body).unwrap();
        let counted = sample(&text, upload_2xx) > sample(&before, upload_2xx)
            && sample(&text, upload_4xx) > sample(&before, upload_4xx);
        if counted || Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    promtool_check(&after);
    let moved = |series: &str| sample(&after, series) - sample(&before, series);
    assert!(moved(r#"upgate_requests_total{route="upload",code="2xx"}"#) >= 1.0);
    assert!(moved(r#"upgate_requests_total{route="upload",code="4xx"}"#) >= 1.0);
    assert!(moved(r#"upgate_requests_total{route="metrics",code="2xx"}"#) >= 1.0);
    assert!(moved("upgate_upload_size_bytes_count") >= 1.0);
    // The 300 KB upload lands between the 256 KiB and 1 MiB bounds (buckets are cumulative,
    // so uploads of other tests in this process cancel out of the difference).
    assert!(
        moved(r#"upgate_upload_size_bytes_bucket{le="1048576"}"#)
            - moved(r#"upgate_upload_size_bytes_bucket{le="262144"}"#)
            >= 1.0
    );
    assert!(moved("upgate_upload_size_bytes_sum") >= 300_000.0);
    // With `zero_copy` (the default) the bytes after the head are spliced; the rest buffered.
    let spliced = moved(r#"upgate_body_bytes_total{path="splice"}"#);
    let buffered = moved(r#"upgate_body_bytes_total{path="buffered"}"#);
    assert!(
        spliced > 0.0 && spliced + buffered >= 300_000.0,
        "{spliced} + {buffered}"
    );
    assert!(moved("upgate_received_bytes_total") >= 300_000.0);
    assert!(moved("upgate_sent_bytes_total") > 0.0);
    assert!(moved("upgate_connections_accepted_total") >= 3.0);
    assert!(moved(r#"upgate_callback_duration_seconds_count{callback="pre",outcome="ok"}"#) >= 1.0);
    assert!(
        moved(r#"upgate_callback_duration_seconds_count{callback="post",outcome="ok"}"#) >= 1.0
    );
    assert_eq!(
        sample(&after, "upgate_callback_queue_capacity"),
        4096.0,
        "sampled from the pool"
    );
    assert!(sample(&after, "upgate_callback_workers_alive") >= 32.0);
    assert!(
        sample(&after, "upgate_open_connections") >= 1.0,
        "the scrape's own"
    );
    node.shutdown();
}

#[test]
fn outbox_gauges_and_retries_show_an_undelivered_notification() {
    // Its own process: the outbox gauges are process-global and sampled from one outbox.
    let app = CallbackApp::start(0, |r| {
        if r.path == "/post" {
            Answer::json(500, "{}")
        } else {
            Answer::ok()
        }
    });
    let dir = scratch();
    let allow = format!("callback_allow={}", app.addr);
    let node = Proc::spawn(
        &[
            "--data-dir",
            dir.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--set",
            &allow,
        ],
        &[],
    );
    let wire = upload(node.addr, "/app1/o/late.txt", &callbacks(&app), b"later");
    assert_eq!(wire.status, 201);
    assert_eq!(wire.json()["callback"], "pending");
    let deadline = Instant::now() + Duration::from_secs(6);
    let text = loop {
        let text = String::from_utf8(get(node.addr, "/metrics").body).unwrap();
        let retried = r#"upgate_callback_duration_seconds_count{callback="retry",outcome="error"}"#;
        if (sample(&text, "upgate_outbox_backlog") >= 1.0 && sample(&text, retried) >= 1.0)
            || Instant::now() > deadline
        {
            break text;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    promtool_check(&text);
    assert_eq!(sample(&text, "upgate_outbox_backlog"), 1.0, "{text}");
    assert!(sample(&text, "upgate_outbox_oldest_age_seconds") > 0.0);
    assert_eq!(
        sample(
            &text,
            r#"upgate_callback_duration_seconds_count{callback="post",outcome="error"}"#
        ),
        1.0
    );
    assert!(
        sample(
            &text,
            r#"upgate_callback_duration_seconds_count{callback="retry",outcome="error"}"#
        ) >= 1.0,
        "the outbox retried: {text}"
    );
    assert!(app.on("/post").len() >= 2);
}

#[test]
fn timeouts_are_counted_by_kind() {
    let node = start(Config {
        header_timeout_ms: 300,
        keepalive_timeout_ms: 300,
        ..test_config()
    });
    let addr = node.local_addr();
    let text = |addr| String::from_utf8(get(addr, "/metrics").body).unwrap();
    let before = text(addr);
    let mut slow = connect(addr);
    slow.write_all(b"GET /healthz HTTP/1.1\r\n").unwrap();
    let (_, mut idle) = exchange(addr, b"GET /healthz HTTP/1.1\r\nHost: n\r\n\r\n");
    assert!(closed_by_server(&mut slow, Duration::from_secs(3)));
    assert!(closed_by_server(&mut idle, Duration::from_secs(3)));
    let after = text(addr);
    let moved = |s: &str| sample(&after, s) - sample(&before, s);
    assert!(moved(r#"upgate_timeouts_total{kind="header"}"#) >= 1.0);
    assert!(moved(r#"upgate_timeouts_total{kind="keepalive"}"#) >= 1.0);
    assert!(
        moved(r#"upgate_requests_total{route="none",code="4xx"}"#) >= 1.0,
        "the 408"
    );
    node.shutdown();
}

#[test]
fn readyz_reports_each_check_and_fails_when_the_data_dir_is_gone() {
    let config = test_config();
    let data = config.data_dir.clone();
    let node = start(config);
    let addr = node.local_addr();
    let live = get(addr, "/healthz");
    assert_eq!(
        (live.status, live.json()["status"].as_str()),
        (200, Some("ok"))
    );
    let ready = get(addr, "/readyz");
    assert_eq!(ready.status, 200);
    let json = ready.json();
    assert_eq!(json["status"], "ready");
    for check in ["registry", "data_dir", "callback_pool", "draining"] {
        assert_eq!(json["checks"][check], "ok", "{json}");
    }
    assert!(
        std::fs::read_dir(data.join("tmp"))
            .unwrap()
            .next()
            .is_none(),
        "the probe file is removed"
    );
    std::fs::remove_dir_all(data.join("tmp")).unwrap();
    let not = get(addr, "/readyz");
    assert_eq!(not.status, 503);
    assert_eq!(not.header("retry-after"), Some("1"));
    let json = not.json();
    assert_eq!(json["error"], "not_ready");
    assert!(
        json["checks"]["data_dir"]
            .as_str()
            .unwrap()
            .starts_with("failed: "),
        "{json}"
    );
    assert_eq!(json["checks"]["registry"], "ok");
    assert!(
        json["message"].as_str().unwrap().starts_with("data_dir: "),
        "{json}"
    );
    // Liveness does not depend on the disk.
    assert_eq!(get(addr, "/healthz").status, 200);
    std::fs::create_dir_all(data.join("tmp")).unwrap();
    assert_eq!(get(addr, "/readyz").status, 200, "ready again once fixed");
    node.shutdown();
}

// ── logs ────────────────────────────────────────────────────────────────────────────────────

#[test]
fn access_log_is_one_json_line_per_request_with_timings_and_no_secrets() {
    let app = CallbackApp::accepting();
    let dir = scratch();
    let mut node = Proc::spawn(
        &[
            "--data-dir",
            dir.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ],
        &[
            ("UPGATE_LOG_FORMAT", "json"),
            ("UPGATE_ADMIN_TOKEN", "ADMINTOKEN-do-not-log"),
        ],
    );
    let addr = node.addr;
    // Registration: the bearer token and the issued secret must not reach the log.
    let form = format!(
        "appid=logapp&callback_url_pre={}&callback_url_post={}",
        app.url("/pre?key=QUERYSECRET"),
        app.url("/post")
    );
    let (reg, _) = exchange(
        addr,
        format!(
            "POST /upload/register HTTP/1.1\r\nHost: n\r\nAuthorization: Bearer ADMINTOKEN-do-not-log\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
            form.len()
        )
        .as_bytes(),
    );
    assert_eq!(reg.status, 200, "{}", String::from_utf8_lossy(&reg.body));
    let secret = reg.json()["secret"].as_str().unwrap().to_string();

    let body = vec![1u8; 100_000];
    let done = upload(addr, "/logapp/dir/f.bin?sig=URLSECRET", "", &body);
    assert_eq!(done.status, 201, "{}", String::from_utf8_lossy(&done.body));
    let upload_id = done.json()["upload_id"].as_str().unwrap().to_string();
    assert_eq!(get(addr, "/nope").status, 404);

    node.signal(libc::SIGTERM);
    assert_eq!(
        node.wait_exit(Duration::from_secs(5)).unwrap().code(),
        Some(0)
    );
    let lines = node.lines();
    let events: Vec<serde_json::Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let access: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e["target"] == "upgate::access")
        .collect();
    assert_eq!(access.len(), 3, "one line per request: {lines:#?}");

    let up = access
        .iter()
        .find(|e| e["route"] == "upload")
        .expect("the upload's line");
    assert_eq!(up["message"], "request");
    assert_eq!(up["level"], "INFO");
    assert!(up["timestamp"].as_str().unwrap().ends_with('Z'), "{up}");
    assert!(
        up["peer"].as_str().unwrap().starts_with("127.0.0.1:"),
        "{up}"
    );
    assert_eq!(up["method"], "PUT");
    assert_eq!(up["path"], "/logapp/dir/f.bin", "no query string");
    assert_eq!(up["appid"], "logapp");
    assert_eq!(up["status"], 201);
    assert_eq!(up["upload_id"], upload_id.as_str());
    assert_eq!(up["bytes_in"], 100_000);
    assert!(up["bytes_out"].as_u64().unwrap() > 100, "{up}");
    for field in [
        "duration_ms",
        "pre_callback_ms",
        "body_ms",
        "commit_ms",
        "post_callback_ms",
    ] {
        assert!(up[field].as_f64().is_some(), "{field} in {up}");
    }
    let reg_line = access.iter().find(|e| e["route"] == "register").unwrap();
    assert_eq!(
        (reg_line["status"].as_u64(), reg_line["method"].as_str()),
        (Some(200), Some("POST"))
    );
    assert!(
        reg_line.get("pre_callback_ms").is_none(),
        "only steps that ran"
    );
    let other = access.iter().find(|e| e["route"] == "other").unwrap();
    assert_eq!(other["status"], 404);

    let all = lines.join("\n");
    for secret in [
        "ADMINTOKEN",
        "QUERYSECRET",
        "URLSECRET",
        &secret,
        "whsec_",
        "Bearer",
    ] {
        assert!(
            !all.contains(secret),
            "{secret} leaked into the log:\n{all}"
        );
    }
}

// ── lifecycle ───────────────────────────────────────────────────────────────────────────────

#[test]
fn sigterm_during_an_upload_lets_it_finish_then_exits_0() {
    let app = CallbackApp::accepting();
    let dir = scratch();
    let allow = format!("callback_allow={}", app.addr);
    let mut node = Proc::spawn(
        &[
            "--data-dir",
            dir.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--set",
            &allow,
        ],
        &[],
    );
    let body: Vec<u8> = (0..2_000_000u32).map(|i| (i % 251) as u8).collect();
    let mut s = connect(node.addr);
    let mut buf = Vec::new();
    let first = send_head(
        &mut s,
        &mut buf,
        "/app1/drain/big.bin",
        &callbacks(&app),
        body.len(),
    );
    assert_eq!(first.status, 100);
    s.write_all(&body[..700_000]).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    node.signal(libc::SIGTERM);
    assert!(node.wait_log("draining", Duration::from_secs(3)));
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        node.child.try_wait().unwrap().is_none(),
        "the node waits for the upload in flight"
    );
    assert!(
        TcpStream::connect(node.addr).is_err(),
        "no new connections while draining"
    );
    s.write_all(&body[700_000..]).unwrap();
    let done = read_response(&mut s, &mut buf).expect("the upload's answer");
    assert_eq!(done.status, 201, "{}", String::from_utf8_lossy(&done.body));
    assert_eq!(done.header("connection"), Some("close"));
    assert_eq!(done.json()["callback"], "delivered");
    let status = node
        .wait_exit(Duration::from_secs(10))
        .expect("exits after the drain");
    assert_eq!(status.code(), Some(0));
    let stored = std::fs::read(dir.join("files/app1/drain/big.bin")).unwrap();
    assert!(stored == body, "the stored file is the whole body");
    assert_eq!(app.on("/post").len(), 1);
    assert!(std::fs::read_dir(dir.join("tmp")).unwrap().next().is_none());
}

#[test]
fn sighup_reloads_callback_allow_and_log_level_without_dropping_connections() {
    let app = CallbackApp::accepting();
    let dir = scratch();
    let file = dir.join("hup.toml");
    let v1 = format!(
        "listen = \"127.0.0.1:0\"\ndata_dir = \"{}\"\ncallback_allow = []\nlog_level = \"info\"\n",
        dir.join("data").display()
    );
    std::fs::write(&file, &v1).unwrap();
    let node = Proc::spawn(&["--config", file.to_str().unwrap()], &[]);
    let addr = node.addr;

    let mut kept = connect(addr);
    let mut kept_buf = Vec::new();
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: n\r\n\r\n")
        .unwrap();
    assert_eq!(read_response(&mut kept, &mut kept_buf).unwrap().status, 200);

    // A registered app (loopback may register without a token) whose client carries its own
    // callback URLs: allowed only by `callback_allow`.
    let reg = register_form(
        addr,
        "hupapp",
        &app.url("/registered-pre"),
        &app.url("/registered-post"),
    );

    assert_eq!(reg.status, 200, "{}", String::from_utf8_lossy(&reg.body));
    let refused = upload(addr, "/hupapp/a.txt", &callbacks(&app), b"hello");
    assert_eq!(refused.status, 403);
    assert_eq!(refused.error_code(), "callback_not_allowed");
    assert!(
        node.wait_log("/hupapp/a.txt", Duration::from_secs(2)),
        "access log on at first"
    );

    // A broken file changes nothing.
    std::fs::write(&file, "callback_allow = [\n").unwrap();
    node.signal(libc::SIGHUP);
    assert!(node.wait_log("reload failed", Duration::from_secs(3)));

    let v2 = v1
        .replace(
            "callback_allow = []",
            &format!("callback_allow = [\"{}\"]", app.addr),
        )
        .replace(
            "log_level = \"info\"",
            "log_level = \"info,upgate::access=off\"",
        )
        .replace("listen = \"127.0.0.1:0\"", "listen = \"127.0.0.1:1\"");
    std::fs::write(&file, v2).unwrap();
    node.signal(libc::SIGHUP);
    assert!(node.wait_log("reloaded callback_allow", Duration::from_secs(3)));
    assert!(node.wait_log("reloaded log_level", Duration::from_secs(3)));
    assert!(
        node.wait_log("takes effect after a restart", Duration::from_secs(3)),
        "a change that needs a restart is reported: {:?}",
        node.lines()
    );

    let accepted = upload(addr, "/hupapp/a.txt", &callbacks(&app), b"hello");
    assert_eq!(
        accepted.status,
        201,
        "{}",
        String::from_utf8_lossy(&accepted.body)
    );
    assert_eq!(
        app.on("/pre").len(),
        1,
        "the client-carried callback was used"
    );
    assert!(app.on("/registered-pre").is_empty());
    // The connection opened before the reloads still serves requests.
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: n\r\n\r\n")
        .unwrap();
    let again = read_response(&mut kept, &mut kept_buf).expect("kept-alive connection still open");
    assert_eq!(again.status, 200);
    std::thread::sleep(Duration::from_millis(200));
    let lines = node.lines();
    assert!(
        !lines
            .iter()
            .any(|l| l.contains("upgate::access") && l.contains("status=201")),
        "access log silenced by the reloaded log_level: {lines:#?}"
    );
    node.signal(libc::SIGTERM);
}

// ── documentation ───────────────────────────────────────────────────────────────────────────

fn read_doc(rel: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(rel))
        .unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// The default of `key` as TOML writes it (`None` for an unset optional key).
fn default_toml(key: &str) -> Option<String> {
    let table = toml::Value::try_from(Config::default()).unwrap();
    table.get(key).map(|v| v.to_string())
}

#[test]
fn operations_doc_lists_every_key_with_its_env_var_and_default() {
    let doc = read_doc("docs/operations.md");
    for key in Config::keys() {
        let row = doc
            .lines()
            .find(|l| l.starts_with(&format!("| `{key}` |")))
            .unwrap_or_else(|| panic!("docs/operations.md has no table row for `{key}`"));
        let var = Config::env_var(&key);
        assert!(
            row.contains(&format!("`{var}`")),
            "row of {key} lacks {var}: {row}"
        );
        match default_toml(&key) {
            Some(default) => assert!(
                row.contains(&format!("`{default}`")),
                "row of {key} does not show the default `{default}`: {row}"
            ),
            None => assert!(
                row.contains("unset"),
                "row of {key} should say unset: {row}"
            ),
        }
    }
}

#[test]
fn example_file_shows_every_key_with_its_default() {
    let example = read_doc("upgate.example.toml");
    // Uncommenting every `# key = value` line gives a valid file of defaults (optional keys
    // show an example value).
    let uncommented: String = example
        .lines()
        .map(|l| match l.strip_prefix("# ") {
            Some(rest)
                if rest
                    .split_once(" = ")
                    .is_some_and(|(k, _)| Config::keys().contains(&k.to_string())) =>
            {
                rest
            }
            _ => l,
        })
        .map(|l| format!("{l}\n"))
        .collect();
    let config = Config::from_toml(&uncommented, "upgate.example.toml (uncommented)")
        .unwrap_or_else(|e| panic!("{e}"));
    let (got, want) = (
        serde_json::to_value(&config).unwrap(),
        serde_json::to_value(Config::default()).unwrap(),
    );
    for key in Config::keys() {
        assert!(
            uncommented
                .lines()
                .any(|l| l.starts_with(&format!("{key} = "))),
            "upgate.example.toml does not show `{key}`"
        );
        if !want[&key].is_null() {
            assert_eq!(
                got[&key], want[&key],
                "upgate.example.toml shows a non-default {key}"
            );
        }
    }
    assert_eq!(
        Config::from_toml(&example, "upgate.example.toml").unwrap(),
        Config::default(),
        "as shipped, the example changes nothing"
    );
}

#[test]
fn operations_doc_lists_every_metric() {
    let doc = read_doc("docs/operations.md");
    let text = upgate::metrics::render();
    for line in text.lines().filter(|l| l.starts_with("# TYPE ")) {
        let name = line.split(' ').nth(2).unwrap();
        assert!(
            doc.contains(&format!("`{name}`")),
            "docs/operations.md does not document the metric {name}"
        );
    }
}

#[test]
fn systemd_unit_is_hardened() {
    let unit = read_doc("docs/upgate.service");
    for directive in [
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ReadWritePaths=",
        "PrivateTmp=yes",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "KillSignal=SIGTERM",
    ] {
        assert!(
            unit.contains(directive),
            "docs/upgate.service lacks {directive}"
        );
    }
}
