//! tus interop with real clients from the package registries (issue 14, acceptance 1): tuspy
//! (PyPI), tus-js-client (npm) under node, and Uppy's Tus plugin (npm) in headless Chromium on
//! another origin. The clients are installed by `make test-deps` (scripts/interop-deps.sh) into
//! target/interop and never written here; the scripts that drive them are in tests/interop.
//! Each test runs one client as a child process (bounded in time) against a node and a
//! callback app in this process, then checks what the node stored (byte-identical, fetched
//! with GET), one pre-callback at creation plus one per PATCH the client sent, with the
//! offsets and lengths of its chunks, and exactly one post-callback.

mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::callback_app::{Answer, CallbackApp, Received};
use support::*;
use upgate::config::Config;
use upgate_tools::appserver::{AppServer, Options, Reply};

/// The registered app every test uploads to.
const APPID: &str = "interop";

/// Where `make test-deps` puts the clients (the same variable moves both).
fn interop_dir() -> PathBuf {
    std::env::var_os("UPGATE_INTEROP_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/interop"))
}

/// `rel` under the client cache; a missing client fails the test (never a silent pass).
fn installed(rel: &str, what: &str) -> PathBuf {
    let p = interop_dir().join(rel);
    assert!(
        p.exists(),
        "{what} is not installed ({} is missing): run `make test-deps` (scripts/interop-deps.sh)",
        p.display()
    );
    p
}

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/interop")
        .join(name)
}

/// A node, a callback app that accepts everything, `APPID` registered with it (and with
/// `cors_origin`, for the browser), and a scratch directory for the client's files.
struct World {
    node: upgate::node::Node,
    app: CallbackApp,
    dir: PathBuf,
}

impl World {
    fn new(cors_origin: Option<&str>) -> World {
        let app = CallbackApp::start(0, |_| Answer::ok());
        let config = test_config();
        let dir = config.data_dir.with_extension("client");
        std::fs::create_dir_all(&dir).unwrap();
        let node = start(Config {
            fsync: false,
            ..config
        });
        let mut reg = serde_json::json!({
            "appid": APPID,
            "callback_url_pre": app.url("/pre"),
            "callback_url_post": app.url("/post"),
        });
        if let Some(origin) = cors_origin {
            reg["cors_origins"] = serde_json::json!([origin]);
        }
        let body = reg.to_string();
        let (r, _) = exchange(
            node.local_addr(),
            format!(
                "POST /upload/register HTTP/1.1\r\nHost: n\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        );
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        World { node, app, dir }
    }

    fn addr(&self) -> SocketAddr {
        self.node.local_addr()
    }

    fn endpoint(&self) -> String {
        format!("http://{}/upload/tus/{APPID}/", self.addr())
    }

    /// A file of `size` bytes from a seeded generator, in the scratch directory.
    fn source(&self, name: &str, size: usize) -> (PathBuf, Vec<u8>) {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15 ^ size as u64;
        let data: Vec<u8> = (0..size)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect();
        let path = self.dir.join(name);
        std::fs::write(&path, &data).unwrap();
        (path, data)
    }

    /// What a finished upload must have left: `name` stored as `data` (GET from the node),
    /// one pre-callback at creation then one per append with the offsets and lengths of
    /// `chunk`-byte pieces (`patches` of them, as many as the client says it sent), and exactly
    /// one post-callback.
    fn check_upload(&self, name: &str, data: &[u8], chunk: usize, patches: u64) {
        self.check_upload_as("tus", name, data, chunk, patches)
    }

    /// [`World::check_upload`] for a client speaking `protocol` (`tus` or `resumable`).
    fn check_upload_as(&self, protocol: &str, name: &str, data: &[u8], chunk: usize, patches: u64) {
        self.check_stored(name, data);

        let appends: Vec<(u64, u64)> = (0..data.len())
            .step_by(chunk)
            .map(|o| (o as u64, chunk.min(data.len() - o) as u64))
            .collect();
        assert_eq!(patches, appends.len() as u64, "PATCHes the client sent");
        let pre: Vec<serde_json::Value> = self.app.on("/pre").iter().map(Received::json).collect();
        assert!(pre.iter().all(|p| p["request"]["protocol"] == protocol));
        assert!(pre.iter().all(|p| p["size"] == data.len()));
        let seen: Vec<(Option<u64>, Option<u64>)> = pre
            .iter()
            .map(|p| (p["offset"].as_u64(), p["length"].as_u64()))
            .collect();
        let want: Vec<(Option<u64>, Option<u64>)> = std::iter::once((Some(0), None))
            .chain(appends.iter().map(|&(o, l)| (Some(o), Some(l))))
            .collect();
        assert_eq!(seen, want, "pre-callbacks: creation, then one per append");
        self.check_one_post_callback(data.len());
    }

    /// `/{APPID}/{name}` downloads as exactly `data`.
    fn check_stored(&self, name: &str, data: &[u8]) {
        let got = exchange(
            self.addr(),
            format!("GET /{APPID}/{name} HTTP/1.1\r\nHost: n\r\n\r\n").as_bytes(),
        )
        .0;
        assert_eq!(got.status, 200, "GET /{APPID}/{name}");
        assert!(
            got.body == data,
            "/{APPID}/{name}: {} bytes stored, not the source's {} bytes",
            got.body.len(),
            data.len()
        );
    }

    /// Exactly one post-callback came (none more within 300 ms of it), for `size` bytes.
    fn check_one_post_callback(&self, size: usize) {
        let post = self.app.wait_for("/post", 1, Duration::from_secs(10));
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(self.app.on("/post").len(), 1, "exactly one post-callback");
        assert_eq!(post[0].json()["size"], size);
    }
}

impl Drop for World {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs `cmd` in its own process group with its output in `dir` and returns its stdout; fails
/// the test when it exits non-zero or outlives `limit` (then the whole group is killed: a
/// browser leaves helpers behind).
fn run(mut cmd: Command, dir: &Path, label: &str, limit: Duration) -> String {
    use std::os::unix::process::CommandExt;
    let (out, err) = (
        dir.join(format!("{label}.out")),
        dir.join(format!("{label}.err")),
    );
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("{label} does not start ({e}): run `make test-deps`"));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > limit {
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    // The group outlives its leader when a browser leaves helpers: end them all.
    unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
    let _ = child.wait();
    let stdout = std::fs::read_to_string(&out).unwrap_or_default();
    let stderr = std::fs::read_to_string(&err).unwrap_or_default();
    let tail = |s: &str| {
        s.chars()
            .rev()
            .take(3000)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<String>()
    };
    match status {
        None => panic!(
            "{label}: still running after {limit:?}\nstdout: {}\nstderr: {}",
            tail(&stdout),
            tail(&stderr)
        ),
        Some(s) if !s.success() => panic!(
            "{label}: {s}\nstdout: {}\nstderr: {}",
            tail(&stdout),
            tail(&stderr)
        ),
        Some(_) => {
            eprintln!("{label}: {:.1} s", started.elapsed().as_secs_f64());
            stdout
        }
    }
}

/// The last line of a client's output, as JSON.
fn last_json(stdout: &str) -> serde_json::Value {
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'));
    serde_json::from_str(line.unwrap_or("")).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

#[test]
fn tuspy_uploads_in_chunks_stops_and_a_new_uploader_resumes_from_its_url_storage() {
    let python = installed("venv/bin/python", "tuspy (PyPI)");
    let w = World::new(None);
    let (chunk, stop_after) = (256 * 1024, 5);
    let (file, data) = w.source("tuspy.bin", 3 * 1024 * 1024 + 12_345);
    let db = w.dir.join("tuspy-urls.json");
    let tuspy = |mode: &str| {
        let mut cmd = Command::new(&python);
        cmd.arg(script("tuspy_resume.py"))
            .arg(mode)
            .arg(w.endpoint())
            .arg(&file)
            .arg(&db)
            .arg(chunk.to_string());
        cmd
    };

    // The first uploader creates the upload and stops after a few chunks.
    let mut first = tuspy("start");
    first.arg(stop_after.to_string());
    let first = last_json(&run(first, &w.dir, "tuspy-start", Duration::from_secs(120)));
    assert_eq!(first["patches"], stop_after);
    assert_eq!(first["offset"], stop_after * chunk);
    let url = first["url"].as_str().unwrap().to_owned();
    assert!(url.contains(&format!("/upload/tus/{APPID}/")), "{url}");
    let get = format!("GET /{APPID}/tuspy.bin HTTP/1.1\r\nHost: n\r\n\r\n");
    assert_eq!(
        exchange(w.addr(), get.as_bytes()).0.status,
        404,
        "visible before complete"
    );

    // A new uploader in a new process finds the upload in the URL storage and ends it.
    let second = last_json(&run(
        tuspy("resume"),
        &w.dir,
        "tuspy-resume",
        Duration::from_secs(120),
    ));
    assert_eq!(second["url"], url.as_str(), "the stored URL was not used");
    assert_eq!(second["started_at"], stop_after * chunk, "not resumed");
    assert_eq!(second["offset"], data.len());
    let patches = first["patches"].as_u64().unwrap() + second["patches"].as_u64().unwrap();
    w.check_upload("tuspy.bin", &data, chunk, patches);
}

#[test]
fn tus_js_client_under_node_uploads_in_chunks() {
    let w = World::new(None);
    let chunk = 256 * 1024;
    let (file, data) = w.source("tus-js.bin", 2 * 1024 * 1024 + 777);
    let out = tus_js(&w, &w.endpoint(), &file, chunk, &[], "tus-js-client");
    assert_eq!(out["version"], "4.3.1");
    assert_eq!(out["requests"]["POST"], 1, "{out}");
    w.check_upload(
        "tus-js.bin",
        &data,
        chunk,
        out["requests"]["PATCH"].as_u64().unwrap_or(0),
    );
}

#[test]
fn tus_js_client_parallel_uploads_are_joined_by_concatenation() {
    // `parallelUploads: 3`: three `Upload-Concat: partial` uploads sent side by side on their
    // own connections, then a `final;` creation naming them, which carries the metadata.
    let w = World::new(None);
    let chunk = 256 * 1024;
    let (file, data) = w.source("tus-js-parallel.bin", 2 * 1024 * 1024 + 4321);
    let args = ["tus-v1", "3"];
    let out = tus_js(
        &w,
        &w.endpoint(),
        &file,
        chunk,
        &args,
        "tus-js-client (parallel)",
    );
    assert_eq!(
        out["requests"]["POST"], 4,
        "3 partial creations and the final: {out}"
    );
    let patches = out["requests"]["PATCH"].as_u64().unwrap_or(0);

    w.check_stored("tus-js-parallel.bin", &data);

    // The app was asked before each creation and each append: the parts' pre-callbacks name
    // their upload, and their appends cover each part once, in order; the final's names the
    // file with its whole size.
    let pre: Vec<serde_json::Value> = w.app.on("/pre").iter().map(Received::json).collect();
    assert_eq!(
        pre.len() as u64,
        4 + patches,
        "one pre-callback per request"
    );
    assert!(pre.iter().all(|p| p["request"]["protocol"] == "tus"));
    let finals: Vec<&serde_json::Value> = pre
        .iter()
        .filter(|p| p["path"] == "tus-js-parallel.bin")
        .collect();
    assert_eq!(finals.len(), 1, "one pre-callback for the final upload");
    assert_eq!(finals[0]["size"], data.len());
    let mut parts: std::collections::BTreeMap<String, Vec<(u64, u64)>> = Default::default();
    for p in pre.iter().filter(|p| p["path"] != "tus-js-parallel.bin") {
        if let (Some(o), Some(l)) = (p["offset"].as_u64(), p["length"].as_u64()) {
            let id = p["path"].as_str().unwrap_or_default().to_owned();
            parts.entry(id).or_default().push((o, l));
        }
    }
    assert_eq!(parts.len(), 3, "three partial uploads: {parts:?}");
    let mut total = 0;
    for appends in parts.values() {
        let mut at = 0;
        for &(o, l) in appends {
            assert_eq!(o, at, "a part's appends follow each other: {appends:?}");
            at += l;
        }
        total += at;
    }
    assert_eq!(total, data.len() as u64, "the parts cover the file once");

    w.check_one_post_callback(data.len());
}

#[test]
fn tus_js_client_speaking_the_ietf_draft_uploads_to_a_file_address() {
    // `protocol: 'ietf-draft-05'`: interop version 6, `Upload-Complete`, appends of
    // `application/partial-upload`, the upload created by a POST to the file's own address.
    tus_js_client_ietf("ietf-draft-05", "tus-js-ietf.bin", 1024 * 1024 + 99);
}

#[test]
fn tus_js_client_speaking_the_older_ietf_draft_uploads_to_a_file_address() {
    // `protocol: 'ietf-draft-03'`: interop version 5, appends with no `Content-Type`.
    tus_js_client_ietf("ietf-draft-03", "tus-js-ietf3.bin", 768 * 1024 + 5);
}

/// One upload of `size` bytes by tus-js-client speaking `protocol` (an IETF draft) to the
/// address `/{APPID}/{name}`, checked like the tus uploads.
fn tus_js_client_ietf(protocol: &str, name: &str, size: usize) {
    let w = World::new(None);
    let chunk = 256 * 1024;
    let (file, data) = w.source(name, size);
    let endpoint = format!("http://{}/{APPID}/{name}", w.addr());
    let label = format!("tus-js-client ({protocol})");
    let out = tus_js(&w, &endpoint, &file, chunk, &[protocol], &label);
    assert_eq!(out["requests"]["POST"], 1, "{out}");
    assert!(
        out["url"]
            .as_str()
            .unwrap_or("")
            .contains("/upload/resumable/"),
        "{out}"
    );
    w.check_upload_as(
        "resumable",
        name,
        &data,
        chunk,
        out["requests"]["PATCH"].as_u64().unwrap_or(0),
    );
}

/// Runs `tests/interop/tus_js_upload.mjs` (tus-js-client under node) for one upload of `file`
/// to `endpoint` in `chunk`-byte appends, `args` after them (protocol, parallel parts); its
/// JSON line.
fn tus_js(
    w: &World,
    endpoint: &str,
    file: &Path,
    chunk: usize,
    args: &[&str],
    label: &str,
) -> serde_json::Value {
    let modules = installed("node_modules/tus-js-client", "tus-js-client (npm)");
    let mut cmd = Command::new("node");
    cmd.env("NODE_MODULES", modules.parent().unwrap())
        .arg(script("tus_js_upload.mjs"))
        .arg(endpoint)
        .arg(file)
        .arg(chunk.to_string())
        .args(args);
    last_json(&run(cmd, &w.dir, label, Duration::from_secs(120)))
}

/// The browser: `chromium` or `chromium-browser` on PATH, or `$CHROMIUM`.
fn chromium() -> PathBuf {
    if let Some(c) = std::env::var_os("CHROMIUM") {
        return c.into();
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .flat_map(|d| [d.join("chromium"), d.join("chromium-browser")])
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("chromium is not installed: run `make test-deps` (.ci/packages)"))
}

#[test]
fn uppy_tus_in_headless_chromium_uploads_from_another_origin() {
    let bundle = installed("uppy-tus.js", "@uppy/core + @uppy/tus (npm, bundled)");
    let chromium = chromium();
    let chunk = 256 * 1024;
    // The page's origin: a static server on another loopback port than the node's.
    let (name, size) = ("uppy.bin", 1536 * 1024 + 3);
    let files: Vec<(String, &'static str, Vec<u8>)> = vec![
        (
            "/uppy_page.html".into(),
            "text/html; charset=utf-8",
            std::fs::read(script("uppy_page.html")).unwrap(),
        ),
        (
            "/uppy-tus.js".into(),
            "text/javascript",
            std::fs::read(&bundle).unwrap(),
        ),
    ];
    let site = static_site(files);
    let origin = format!("http://{}", site.0.local_addr());
    let w = World::new(Some(&origin));
    let (file, data) = w.source(name, size);
    site.1.lock().unwrap().push((
        format!("/{name}"),
        "application/octet-stream",
        std::fs::read(file).unwrap(),
    ));

    let page = format!(
        "{origin}/uppy_page.html?endpoint={}&file={name}&chunk={chunk}",
        w.endpoint()
    );
    let mut cmd = Command::new(chromium);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--virtual-time-budget=60000",
        "--dump-dom",
    ])
    .arg(format!(
        "--user-data-dir={}",
        w.dir.join("chromium").display()
    ))
    .arg(&page);
    let dom = run(cmd, &w.dir, "chromium", Duration::from_secs(150));
    let json = dom
        .split("<pre id=\"result\">")
        .nth(1)
        .and_then(|s| s.split("</pre>").next())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| panic!("the page did not finish: {dom}"));
    // The DOM escapes text: undo it for the JSON the page wrote.
    let json = json
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&");
    let out: serde_json::Value =
        serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}"));
    assert_eq!(out["ok"], true, "{out}");
    assert_eq!(out["origin"], origin.as_str());
    assert_eq!(out["size"], size);
    assert_eq!(out["requests"]["POST"], 1, "{out}");
    w.check_upload(
        name,
        &data,
        chunk,
        out["requests"]["PATCH"].as_u64().unwrap_or(0),
    );
}

type Files = std::sync::Arc<std::sync::Mutex<Vec<(String, &'static str, Vec<u8>)>>>;

/// A static server on 127.0.0.1 (any port) serving `files` (path, type, bytes) to GET; more
/// can be added through the returned list.
fn static_site(files: Vec<(String, &'static str, Vec<u8>)>) -> (AppServer, Files) {
    let files: Files = std::sync::Arc::new(std::sync::Mutex::new(files));
    let served = files.clone();
    let server = AppServer::start(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        Options {
            idle_timeout: Some(Duration::from_secs(10)),
            name: "interop-site",
            ..Options::default()
        },
        move |req: &upgate_tools::appserver::Request| {
            let files = served.lock().unwrap();
            match files.iter().find(|(p, _, _)| p == req.path()) {
                Some((_, ctype, body)) => Reply::with_body(200, ctype, body.clone()),
                None => Reply::empty(404),
            }
        },
    )
    .expect("the page's server binds");
    (server, files)
}
