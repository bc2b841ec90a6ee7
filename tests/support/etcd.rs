//! A real etcd member for tests (Debian's `etcd-server`, which `make test-deps` installs): on
//! two free loopback ports, in a temporary directory, started and stopped by PID. `stop` and
//! `start` again keep its data and ports (an outage and a recovery).

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Etcd {
    pub client_port: u16,
    peer_port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The etcd binary: on PATH, or where Debian puts it.
fn binary() -> String {
    for candidate in ["etcd", "/usr/bin/etcd", "/usr/sbin/etcd"] {
        if Command::new(candidate)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
        {
            return candidate.to_owned();
        }
    }
    panic!("etcd is not installed: `make test-deps` installs etcd-server (.ci/packages)");
}

impl Etcd {
    /// A fresh one-member cluster, healthy when this returns.
    pub fn start() -> Etcd {
        let dir = std::env::temp_dir().join(format!(
            "upgate-etcd-{}-{}",
            std::process::id(),
            free_port()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut etcd = Etcd {
            client_port: free_port(),
            peer_port: free_port(),
            dir,
            child: None,
        };
        etcd.resume();
        etcd
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.client_port)
    }

    /// Starts the member again on its data and ports; healthy when this returns.
    pub fn resume(&mut self) {
        assert!(self.child.is_none(), "etcd is already running");
        let client = self.url();
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let log = std::fs::File::create(self.dir.join("etcd.log")).unwrap();
        let child = Command::new(binary())
            .args(["--name", "n1", "--data-dir"])
            .arg(self.dir.join("data"))
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
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("etcd starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let healthy = ureq::get(&format!("{client}/health"))
                .timeout(Duration::from_millis(500))
                .call()
                .ok()
                .and_then(|r| r.into_string().ok())
                .is_some_and(|body| body.contains("true"));
            if healthy {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "etcd did not become healthy: {}",
                std::fs::read_to_string(self.dir.join("etcd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills the member (SIGKILL, by PID) and reaps it.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The store's current revision.
    pub fn revision(&self) -> i64 {
        let answer: serde_json::Value = ureq::post(&format!("{}/v3/kv/range", self.url()))
            .send_json(serde_json::json!({"key": "AA=="}))
            .unwrap()
            .into_json()
            .unwrap();
        answer["header"]["revision"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap()
    }

    /// Compacts the history up to the current revision (a watch from before it is refused).
    pub fn compact(&self) {
        let revision = self.revision();
        ureq::post(&format!("{}/v3/kv/compaction", self.url()))
            .send_json(serde_json::json!({"revision": revision.to_string(), "physical": true}))
            .unwrap();
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
