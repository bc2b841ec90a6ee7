//! A real Garage (an S3-compatible object store; a separate program, never linked in) for the
//! S3 store tests: one node on free loopback ports, in a temporary directory, started and
//! stopped by PID, with the bucket "upgate" and the key "ci" allowed on it. `stop` then `resume`
//! keep the data and ports (an outage of the origin and its recovery). `make test-deps`
//! installs the binary (scripts/garage-deps.sh).
//!
//! Requests from the tests go through `curl --aws-sigv4`, path-style, so this module needs no
//! S3 client of its own and checks the store independently of the code under test.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The test key. Fixed so that a failing test's log can be replayed by hand with curl; Garage
/// wants "GK" and 24 hex digits for the id, 64 hex digits for the secret.
const KEY_ID: &str = "GK75706761746500000000c100";
const SECRET: &str = "7570676174652d63692d736563726574000000000000000000000000000000c1";
const KEY_NAME: &str = "ci";
const BUCKET: &str = "upgate";
/// Garage checks the region in each signature against `s3_region`.
const REGION: &str = "garage";
/// Between the nodes of a cluster; this node has no peers, so a fixed value is enough.
const RPC_SECRET: &str = "7570676174652d7270632d736563726574000000000000000000000000000001";
/// How long the server may take to answer after it is spawned (~0.5 s in practice).
const READY_WITHIN: Duration = Duration::from_secs(20);

pub struct Garage {
    binary: PathBuf,
    dir: PathBuf,
    rpc_port: u16,
    s3_port: u16,
    child: Option<Child>,
}

/// The garage binary: on PATH, in ~/.cargo/bin, or in target/tools/bin (where
/// scripts/garage-deps.sh installs it when it is nowhere else).
fn binary() -> PathBuf {
    let mut candidates = vec![PathBuf::from("garage")];
    if let Some(home) = std::env::var_os("HOME") {
        candidates.push(Path::new(&home).join(".cargo/bin/garage"));
    }
    candidates.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("target/tools/bin/garage"));
    for candidate in candidates {
        if Command::new(&candidate)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
        {
            return candidate;
        }
    }
    panic!(
        "garage is not installed (not on PATH, in ~/.cargo/bin or in target/tools/bin): \
         `make test-deps` installs it (scripts/garage-deps.sh)"
    );
}

/// `s` with every byte outside the unreserved set and '/' percent-encoded, as an S3 object key
/// appears in a path-style URL.
fn encode_key(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Garage {
    /// A fresh single-node Garage with bucket "upgate" and key "ci" allowed on it; S3 API ready
    /// when this returns.
    pub fn start() -> Garage {
        let dir = std::env::temp_dir().join(format!(
            "upgate-garage-{}-{}",
            std::process::id(),
            super::service_port()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let rpc_port = super::service_port();
        let s3_port = super::service_port();
        // No [admin] section: Garage does not need it and then opens no admin port.
        let config = format!(
            "metadata_dir = \"{meta}\"\n\
             data_dir = \"{data}\"\n\
             db_engine = \"lmdb\"\n\
             replication_factor = 1\n\
             rpc_bind_addr = \"127.0.0.1:{rpc_port}\"\n\
             rpc_public_addr = \"127.0.0.1:{rpc_port}\"\n\
             rpc_secret = \"{RPC_SECRET}\"\n\
             \n\
             [s3_api]\n\
             s3_region = \"{REGION}\"\n\
             api_bind_addr = \"127.0.0.1:{s3_port}\"\n\
             root_domain = \".s3.garage.localhost\"\n",
            meta = dir.join("meta").display(),
            data = dir.join("data").display(),
        );
        std::fs::write(dir.join("garage.toml"), config).unwrap();
        let mut garage = Garage {
            binary: binary(),
            dir,
            rpc_port,
            s3_port,
            child: None,
        };
        garage.spawn();

        // The CLI talks to the server over RPC: `status` succeeds once the server is up.
        let deadline = Instant::now() + READY_WITHIN;
        while !garage.cli_status(&["status"]).status.success() {
            garage.check_alive(deadline, "did not answer `garage status`");
            std::thread::sleep(Duration::from_millis(20));
        }
        // A new node holds no data until the layout gives it a role.
        let node = garage.cli(&["node", "id", "-q"]);
        let node_id = node.trim().split('@').next().unwrap().to_owned();
        garage.cli(&["layout", "assign", "-z", "dc1", "-c", "1G", &node_id]);
        garage.cli(&["layout", "apply", "--version", "1"]);
        garage.cli(&["key", "import", "--yes", "-n", KEY_NAME, KEY_ID, SECRET]);
        garage.cli(&["bucket", "create", BUCKET]);
        garage.cli(&[
            "bucket", "allow", "--read", "--write", "--owner", BUCKET, "--key", KEY_NAME,
        ]);
        garage.wait_s3();
        garage
    }

    /// The S3 API's base URL, for path-style requests.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.s3_port)
    }

    pub fn bucket(&self) -> &str {
        BUCKET
    }

    pub fn region(&self) -> &str {
        REGION
    }

    pub fn key_id(&self) -> &str {
        KEY_ID
    }

    pub fn secret(&self) -> &str {
        SECRET
    }

    /// TOML lines for an upgate config pointing at this store. No credentials: upgate takes
    /// those from the environment (`env`), as it would in production.
    pub fn config_toml(&self) -> String {
        format!(
            "store = \"s3\"\ns3_endpoint = \"{}\"\ns3_bucket = \"{BUCKET}\"\ns3_region = \"{REGION}\"\n",
            self.endpoint()
        )
    }

    /// The environment variables an upgate process needs to sign its requests.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID".to_owned(), KEY_ID.to_owned()),
            ("AWS_SECRET_ACCESS_KEY".to_owned(), SECRET.to_owned()),
        ]
    }

    /// Stops the server process (SIGKILL by PID, then reaped), keeping the data dir and ports:
    /// an outage. Nothing listens on the S3 port until `resume`.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same data and ports; the S3 API answers when this
    /// returns. Does nothing to a running server.
    pub fn resume(&mut self) {
        if self.child.is_none() {
            self.spawn();
        }
        // Right after a kill, the old process's RPC socket may still hold its port for a
        // moment, and Garage then exits at startup (a panic binding it): start it again.
        for _ in 0..20 {
            std::thread::sleep(Duration::from_millis(100));
            let exited = self
                .child
                .as_mut()
                .is_some_and(|c| c.try_wait().ok().flatten().is_some());
            if !exited {
                break;
            }
            self.child = None;
            self.spawn();
        }
        self.wait_s3();
    }

    /// The bytes of the object at `key` (e.g. "app1/dir/a.txt"), fetched with `curl
    /// --aws-sigv4` independently of upgate's S3 client; None when there is no such object.
    pub fn get(&self, key: &str) -> Option<Vec<u8>> {
        let url = format!("{}/{BUCKET}/{}", self.endpoint(), encode_key(key));
        // The status code goes to stderr ("%{stderr}", curl >= 7.63), the body to stdout.
        let out = self
            .curl()
            .args(["--max-time", "30", "-w", "%{stderr}%{http_code}", &url])
            .output()
            .expect("curl runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        match stderr.trim().rsplit('\n').next().unwrap_or("") {
            "200" => Some(out.stdout),
            "404" => None,
            _ => panic!(
                "GET {url}: {stderr} {}; garage log: {}",
                String::from_utf8_lossy(&out.stdout),
                self.log_path().display()
            ),
        }
    }

    /// Where the server's output goes (kept across `stop` and `resume`).
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("garage.log")
    }

    fn config_path(&self) -> PathBuf {
        self.dir.join("garage.toml")
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .unwrap();
        let child = Command::new(&self.binary)
            .arg("-c")
            .arg(self.config_path())
            .arg("server")
            .env("RUST_LOG", "garage=warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("garage starts");
        self.child = Some(child);
    }

    /// Panics with the log if the server has exited or `deadline` has passed.
    fn check_alive(&mut self, deadline: Instant, what: &str) {
        let exited = self
            .child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten());
        if exited.is_some() || Instant::now() >= deadline {
            panic!(
                "garage (rpc port {}, s3 port {}) {what}{}; log {}:\n{}",
                self.rpc_port,
                self.s3_port,
                exited
                    .map(|s| format!(" (exited: {s})"))
                    .unwrap_or_default(),
                self.log_path().display(),
                std::fs::read_to_string(self.log_path()).unwrap_or_default()
            );
        }
    }

    /// Polls until a signed HEAD of the bucket answers 200: the server is listening, the
    /// layout is in force and the key is allowed.
    fn wait_s3(&mut self) {
        let url = format!("{}/{BUCKET}", self.endpoint());
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            let code = self
                .curl()
                .args([
                    "--max-time",
                    "2",
                    "-o",
                    "/dev/null",
                    "-I",
                    "-w",
                    "%{http_code}",
                ])
                .arg(&url)
                .output()
                .expect("curl runs")
                .stdout;
            if code == b"200" {
                return;
            }
            self.check_alive(
                deadline,
                "did not answer a signed HEAD of the bucket with 200",
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// curl signing as the test key. curl 7.88 does not send X-Amz-Content-Sha256 by itself
    /// and Garage refuses requests without it.
    fn curl(&self) -> Command {
        let mut curl = Command::new("curl");
        curl.args(["-sS", "--aws-sigv4"])
            .arg(format!("aws:amz:{REGION}:s3"))
            .arg("--user")
            .arg(format!("{KEY_ID}:{SECRET}"))
            .args(["-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD"]);
        curl
    }

    fn cli_status(&self, args: &[&str]) -> Output {
        Command::new(&self.binary)
            .arg("-c")
            .arg(self.config_path())
            .args(args)
            .env("RUST_LOG", "garage=warn")
            .stdin(Stdio::null())
            .output()
            .expect("garage CLI runs")
    }

    /// Runs a `garage` CLI command against this server; panics when it fails.
    fn cli(&self, args: &[&str]) -> String {
        let out = self.cli_status(args);
        assert!(
            out.status.success(),
            "garage {}: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }
}

impl Drop for Garage {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
