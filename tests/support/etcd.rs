//! A real etcd cluster for tests (Debian's `etcd-server`, which `make test-deps` installs): one
//! member or several, each on two free loopback ports, in a temporary directory, started and
//! stopped by PID. `stop` then `resume` keep the data and ports (an outage and a recovery).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Member {
    name: String,
    client_port: u16,
    peer_port: u16,
    child: Option<Child>,
}

pub struct Etcd {
    members: Vec<Member>,
    dir: PathBuf,
    /// `--initial-cluster`: every member's name and peer URL.
    initial: String,
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

fn url(port: u16) -> String {
    format!("http://127.0.0.1:{port}")
}

impl Etcd {
    /// A fresh one-member cluster, healthy when this returns.
    pub fn start() -> Etcd {
        Etcd::cluster(1)
    }

    /// A fresh cluster of `n` members, every one healthy when this returns.
    pub fn cluster(n: usize) -> Etcd {
        let dir = std::env::temp_dir().join(format!(
            "upgate-etcd-{}-{}",
            std::process::id(),
            super::service_port()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let members: Vec<Member> = (1..=n)
            .map(|i| Member {
                name: format!("n{i}"),
                client_port: super::service_port(),
                peer_port: super::service_port(),
                child: None,
            })
            .collect();
        let initial = members
            .iter()
            .map(|m| format!("{}={}", m.name, url(m.peer_port)))
            .collect::<Vec<_>>()
            .join(",");
        let mut etcd = Etcd {
            members,
            dir,
            initial,
        };
        etcd.resume();
        etcd
    }

    /// The first member's client URL.
    pub fn url(&self) -> String {
        url(self.members[0].client_port)
    }

    /// Every member's client URL, as a TOML array.
    pub fn endpoints_toml(&self) -> String {
        let urls: Vec<String> = self
            .members
            .iter()
            .map(|m| format!("\"{}\"", url(m.client_port)))
            .collect();
        format!("[{}]", urls.join(", "))
    }

    /// Starts every stopped member again on its data and ports; healthy when this returns.
    pub fn resume(&mut self) {
        let binary = binary();
        for m in self.members.iter_mut().filter(|m| m.child.is_none()) {
            let client = url(m.client_port);
            let peer = url(m.peer_port);
            let log = std::fs::File::create(self.dir.join(format!("{}.log", m.name))).unwrap();
            let child = Command::new(&binary)
                .args(["--name", &m.name, "--data-dir"])
                .arg(self.dir.join(&m.name))
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
                .args(["--initial-cluster", &self.initial])
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("etcd starts");
            m.child = Some(child);
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        for m in &self.members {
            loop {
                let healthy = ureq::get(&format!("{}/health", url(m.client_port)))
                    .timeout(Duration::from_millis(500))
                    .call()
                    .ok()
                    .and_then(|r| r.into_string().ok())
                    .is_some_and(|body| body.contains("true"));
                if healthy {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "etcd {} did not become healthy: {}",
                    m.name,
                    std::fs::read_to_string(self.dir.join(format!("{}.log", m.name)))
                        .unwrap_or_default()
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    /// Kills member `i` (SIGKILL, by PID) and reaps it.
    pub fn stop_member(&mut self, i: usize) {
        if let Some(mut child) = self.members[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills every member.
    pub fn stop(&mut self) {
        for i in 0..self.members.len() {
            self.stop_member(i);
        }
    }

    /// The store's current revision (asked of the first member that answers).
    pub fn revision(&self) -> i64 {
        for m in self.members.iter().filter(|m| m.child.is_some()) {
            let answer = ureq::post(&format!("{}/v3/kv/range", url(m.client_port)))
                .send_json(serde_json::json!({"key": "AA=="}));
            if let Ok(answer) = answer {
                let v: serde_json::Value = answer.into_json().unwrap();
                return v["header"]["revision"].as_str().unwrap().parse().unwrap();
            }
        }
        panic!("no etcd member answers");
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
