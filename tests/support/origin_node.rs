//! Nodes on an S3 origin (`store = "s3"`) for the tests of many nodes (`tests/s3_origin.rs`,
//! `tests/s3_crash.rs`): each a child process on its own config file and data dir, its origin
//! a real [`Garage`] (credentials in the environment, as in production), its registry a real
//! [`Etcd`] when one is given.
//!
//! A node's stderr is appended to `node.log` beside its data dir (across restarts, each start
//! marked), so a failing test can name the log; `ORIGIN_NODE_LOG` sets its `log_level`
//! (default `warn`; `info` when diagnosing; not `UPGATE_…`, which the node would read as a
//! config key).

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::callback_app::CallbackApp;
use super::etcd::Etcd;
use super::garage::Garage;
use super::{exchange, register_form, test_config, ChildNode, Wire};

/// A node as a child process on its own config file, its files on the origin `garage`.
pub struct OriginNode {
    pub node: Option<ChildNode>,
    pub config: PathBuf,
    pub data_dir: PathBuf,
    pub env: Vec<(String, String)>,
    /// Where the node's stderr goes.
    pub log: PathBuf,
    starts: usize,
}

/// What the nodes of a test share.
pub struct Setup<'a> {
    pub garage: &'a Garage,
    /// `registry = "etcd"` on this cluster; the local registry when `None`.
    pub etcd: Option<&'a Etcd>,
    pub app: &'a CallbackApp,
    /// `origin_write`: "before_callback" or "background".
    pub mode: &'a str,
    pub overwrite: bool,
}

impl OriginNode {
    pub fn start(name: &str, s: &Setup) -> OriginNode {
        OriginNode::start_with(name, s, "")
    }

    /// [`OriginNode::start`] with more config lines (keys the base config does not set).
    pub fn start_with(name: &str, s: &Setup, extra_toml: &str) -> OriginNode {
        // The config and the log beside the data dir, in one test dir (swept when stale).
        let root = test_config().data_dir;
        let dir = root.join("data");
        std::fs::create_dir_all(&dir).unwrap();
        let config = root.join("node.toml");
        let registry = match s.etcd {
            Some(etcd) => format!(
                "registry = \"etcd\"\netcd_endpoints = {}\netcd_prefix = \"/upgate-s3-test/\"\n",
                etcd.endpoints_toml()
            ),
            None => String::new(),
        };
        let log_level = std::env::var("ORIGIN_NODE_LOG").unwrap_or_else(|_| "warn".to_string());
        std::fs::write(
            &config,
            format!(
                r#"listen = "127.0.0.1:0"
data_dir = "{}"
threads = 1
fsync = false
node_id = "{name}"
overwrite = {}
origin_write = "{}"
public_url = "http://uploads.example"
callback_allow = ["{}"]
callback_timeout_ms = 2000
log_level = "{log_level}"
{registry}{}{extra_toml}
"#,
                dir.display(),
                s.overwrite,
                s.mode,
                s.app.addr,
                s.garage.config_toml(),
            ),
        )
        .unwrap();
        let mut node = OriginNode {
            node: None,
            config,
            log: root.join("node.log"),
            data_dir: dir,
            env: s.garage.env(),
            starts: 0,
        };
        node.restart();
        node
    }

    pub fn addr(&self) -> SocketAddr {
        self.node.as_ref().expect("running").addr
    }

    pub fn kill_9(&mut self) {
        if let Some(node) = self.node.take() {
            node.kill_9();
        }
    }

    /// Starts the node (again) on its config and data dir; it listens when this returns.
    pub fn restart(&mut self) {
        assert!(self.node.is_none());
        self.starts += 1;
        self.node = Some(spawn_logged(
            &self.config,
            &self.env,
            &self.log,
            self.starts,
        ));
    }

    /// Whether this node's own disk has the file (its cache).
    pub fn has_local(&self, key: &str) -> bool {
        self.data_dir.join("files").join(key).exists()
    }

    /// The last `lines` lines of the node's log (every start of it).
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for OriginNode {
    fn drop(&mut self) {
        self.kill_9();
    }
}

/// `upgate serve --config CONFIG` with `env`, its stderr appended to `log` after a line that
/// marks start number `start`; returns once it printed its address.
fn spawn_logged(config: &Path, env: &[(String, String)], log: &Path, start: usize) -> ChildNode {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    writeln!(file, "--- start {start} ---").unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_upgate"))
        .arg("serve")
        .arg("--config")
        .arg(config)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(std::process::Stdio::piped())
        .stderr(file)
        .spawn()
        .expect("node starts");
    let mut out = child.stdout.take().unwrap();
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while out.read(&mut byte).unwrap_or(0) == 1 && byte[0] != b'\n' {
        line.push(byte[0]);
    }
    let line = String::from_utf8_lossy(&line).into_owned();
    let addr = line
        .rsplit("http://")
        .next()
        .and_then(|a| a.trim().parse().ok())
        .unwrap_or_else(|| {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "no address in {line:?}; log {}:\n{}",
                log.display(),
                std::fs::read_to_string(log).unwrap_or_default()
            )
        });
    ChildNode { child, addr }
}

/// `n` seeded bytes.
pub fn body(n: usize, seed: u8) -> Vec<u8> {
    super::seeded::Rng::new(seed as u64).bytes(n)
}

pub fn get(addr: SocketAddr, path: &str, extra: &str) -> Wire {
    exchange(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: n\r\n{extra}\r\n").as_bytes(),
    )
    .0
}

pub fn delete(addr: SocketAddr, path: &str, secret: &str) -> Wire {
    exchange(
        addr,
        format!("DELETE {path} HTTP/1.1\r\nHost: n\r\nAuthorization: Bearer {secret}\r\n\r\n")
            .as_bytes(),
    )
    .0
}

/// Registers `appid` with the app's `/pre` and `/post`; returns the application's secret.
pub fn register(addr: SocketAddr, appid: &str, app: &CallbackApp) -> String {
    let w = register_form(addr, appid, &app.url("/pre"), &app.url("/post"));
    assert_eq!(w.status, 200, "{}", String::from_utf8_lossy(&w.body));
    w.json()["secret"].as_str().unwrap().to_string()
}

/// Polls `f` until it is true or `within` passes: how long it took.
pub fn eventually(within: Duration, mut f: impl FnMut() -> bool) -> Option<Duration> {
    let started = Instant::now();
    loop {
        if f() {
            return Some(started.elapsed());
        }
        if started.elapsed() > within {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
