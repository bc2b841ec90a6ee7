//! HTTPS on `tls_listen` (contract "TLS") with real clients: curl (`--cacert`, TLS 1.2 and 1.3),
//! `openssl s_client` (ALPN) and Python's `ssl` module, against a real node and a real
//! application server on loopback, with certificates made by the `openssl` command. The same
//! flow as plain HTTP (Expect, pre-callback veto, Range, keep-alive, pipelining); bad bytes on
//! the TLS port close cleanly within their bounds; SIGHUP reloads the certificate without
//! dropping an open connection, and a bad file keeps the old one.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use support::callback_app::{Answer, CallbackApp};
use support::tls::make_cert;
use support::*;
use upgate::config::Config;

fn tls_config(app: &CallbackApp, cert: &Path, key: &Path) -> Config {
    Config {
        tls_listen: Some("127.0.0.1:0".parse().unwrap()),
        tls_cert: Some(cert.to_owned()),
        tls_key: Some(key.to_owned()),
        callback_allow: vec![app.addr.to_string()],
        header_timeout_ms: 1000,
        ..test_config()
    }
}

/// A node with a fresh certificate and an HTTPS listener; the certificate's file (the CA to
/// trust).
fn tls_node(app: &CallbackApp) -> (upgate::node::Node, PathBuf) {
    let dir = test_config().data_dir.with_extension("certs");
    let (cert, key) = make_cert(&dir, "node");
    (start(tls_config(app, &cert, &key)), cert)
}

/// One line a child printed (read byte by byte: the rest stays in the pipe).
fn read_line(r: &mut impl Read) -> String {
    let mut line = String::new();
    let mut byte = [0u8; 1];
    while !line.ends_with('\n') {
        assert_eq!(
            r.read(&mut byte).unwrap(),
            1,
            "the child printed {line:?}, then ended"
        );
        line.push(byte[0] as char);
    }
    line
}

fn curl(args: &[&str]) -> (u16, Vec<u8>, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "20", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .expect("curl runs");
    let mut body = out.stdout;
    let at = body.iter().rposition(|&b| b == b'\n').unwrap_or(0);
    let code = String::from_utf8_lossy(&body[at + 1..])
        .trim()
        .parse()
        .unwrap_or(0);
    body.truncate(at);
    (
        code,
        body,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn register(addr: SocketAddr, appid: &str, app: &CallbackApp) {
    let w = register_form(addr, appid, &app.url("/pre"), &app.url("/post"));
    assert_eq!(w.status, 200, "{}", String::from_utf8_lossy(&w.body));
}

#[test]
fn curl_uploads_with_expect_downloads_ranges_over_tls_1_2_and_1_3() {
    let dir = test_config().data_dir.with_extension("certs");
    let (cert, key) = make_cert(&dir, "node");
    let app = CallbackApp::start(0, |r| {
        if r.path == "/pre" && r.json()["path"] == "vetoed.bin" {
            Answer::json(200, r#"{"success":"false","reason":"not this one"}"#)
        } else {
            Answer::ok()
        }
    });
    let node = start(tls_config(&app, &cert, &key));
    register(node.local_addr(), "app1", &app);
    let base = format!("https://{}", node.tls_addr().expect("a TLS listener"));
    let cacert = cert.to_str().unwrap();
    let body: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let file = dir.join("body.bin");
    std::fs::write(&file, &body).unwrap();

    for (version, flag) in [("1.3", "--tlsv1.3"), ("1.2", "--tls-max")] {
        let mut args = vec![
            "--cacert",
            cacert,
            "-H",
            "appid: app1",
            "-H",
            "Expect: 100-continue",
        ];
        if version == "1.2" {
            args.extend(["--tls-max", "1.2"]);
        } else {
            args.push(flag);
        }
        let url = format!("{base}/app1/tls-{version}.bin");
        let mut up = args.clone();
        up.extend(["-T", file.to_str().unwrap(), &url]);
        let (code, answer, err) = curl(&up);
        assert_eq!(
            code,
            201,
            "TLS {version}: {err} {}",
            String::from_utf8_lossy(&answer)
        );
        let (code, back, _) = curl(&["--cacert", cacert, &url]);
        assert_eq!(code, 200);
        assert!(back == body, "TLS {version}: the download differs");
        let (code, range, _) = curl(&["--cacert", cacert, "-r", "1000-1999", &url]);
        assert_eq!(code, 206);
        assert_eq!(range, &body[1000..2000]);
    }
    // The app's veto answers 403 over TLS too; nothing is stored.
    let url = format!("{base}/app1/vetoed.bin");
    let (code, answer, _) = curl(&[
        "--cacert",
        cacert,
        "-H",
        "appid: app1",
        "-H",
        "Expect: 100-continue",
        "-T",
        file.to_str().unwrap(),
        &url,
    ]);
    assert_eq!(code, 403, "{}", String::from_utf8_lossy(&answer));
    assert_eq!(curl(&["--cacert", cacert, &url]).0, 404);
    // Keep-alive: two requests, one TLS connection.
    let out = Command::new("curl")
        .args([
            "-sS",
            "--cacert",
            cacert,
            "-o",
            "/dev/null",
            "-o",
            "/dev/null",
        ])
        .args(["-w", "%{num_connects} "])
        .arg(format!("{base}/healthz"))
        .arg(format!("{base}/app1/tls-1.3.bin"))
        .output()
        .unwrap();
    let connects = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(
        connects.trim(),
        "1 0",
        "the second request reused the connection"
    );
}

#[test]
fn openssl_agrees_on_http_1_1_and_python_ssl_pipelines() {
    let app = CallbackApp::accepting();
    let (node, cert) = tls_node(&app);
    let tls = node.tls_addr().unwrap();

    let out = Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &tls.to_string(),
            "-alpn",
            "h2,http/1.1",
        ])
        .arg("-CAfile")
        .arg(&cert)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("openssl s_client runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("ALPN protocol: http/1.1"), "{text}");
    assert!(text.contains("Verify return code: 0 (ok)"), "{text}");

    // Python's ssl module: two pipelined requests in one write, both answered in order.
    let script = format!(
        r#"
import socket, ssl
ctx = ssl.create_default_context(cafile={cert:?})
with socket.create_connection(("127.0.0.1", {port}), timeout=10) as raw:
    with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\nGET /nothing/here HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        print(s.version())
        print(data.count(b"HTTP/1.1 200"), data.count(b"HTTP/1.1 404"), data.index(b"200") < data.index(b"404"))
"#,
        cert = cert.to_str().unwrap(),
        port = tls.port()
    );
    let out = Command::new("python3")
        .arg("-c")
        .arg(&script)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(text.lines().collect::<Vec<_>>(), ["TLSv1.3", "1 1 True"]);
}

/// Whether the node closes `s` within `within` (reads end, or the connection is reset).
fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    s.set_read_timeout(Some(within)).unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) if started.elapsed() <= within + Duration::from_millis(200) => {
                return true
            }
            Ok(0) | Err(_) => return false,
            Ok(_) => {}
        }
    }
}

#[test]
fn bad_bytes_on_the_tls_port_close_cleanly_and_the_node_stays_up() {
    let app = CallbackApp::accepting();
    let (node, cert) = tls_node(&app);
    let tls = node.tls_addr().unwrap();

    // Plain HTTP on the TLS port: a TLS alert, then the close.
    let mut s = TcpStream::connect(tls).unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n")
        .unwrap();
    let mut first = [0u8; 1];
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    assert_eq!(s.read(&mut first).unwrap(), 1);
    assert_eq!(first[0], 0x15, "an alert record");
    assert!(closed_within(&mut s, Duration::from_secs(2)));

    // A stalled handshake: nothing sent; closed by the head timeout (1 s here).
    let mut s = TcpStream::connect(tls).unwrap();
    assert!(
        closed_within(&mut s, Duration::from_secs(3)),
        "a silent client was kept"
    );

    // A truncated record: a ClientHello header announcing more than is sent, then silence.
    let mut s = TcpStream::connect(tls).unwrap();
    s.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc])
        .unwrap();
    assert!(closed_within(&mut s, Duration::from_secs(3)));

    // A ClientHello with no cipher the node shares (static RSA key exchange, which rustls
    // never offers): the node's handshake_failure alert, then the close.
    let out = Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &tls.to_string(),
            "-tls1_2",
            "-cipher",
            "AES128-SHA256",
        ])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("alert handshake failure"), "{text}");

    // The node still serves, on both ports.
    let w = exchange(
        node.local_addr(),
        b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n",
    )
    .0;
    assert_eq!(w.status, 200);
    let cacert = cert.to_str().unwrap();
    let (code, _, _) = curl(&["--cacert", cacert, &format!("https://{tls}/healthz")]);
    assert_eq!(code, 200);

    // /metrics counts each outcome (other tests of this binary add to the same counters).
    let metrics = String::from_utf8(
        exchange(
            node.local_addr(),
            b"GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n",
        )
        .0
        .body,
    )
    .unwrap();
    let count = |series: &str| -> u64 {
        metrics
            .lines()
            .find(|l| l.starts_with(series))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {series} in /metrics"))
    };
    for reason in ["bad_record", "no_common_parameters", "incomplete"] {
        let series = format!("upgate_tls_handshake_failures_total{{reason=\"{reason}\"}}");
        assert!(count(&series) >= 1, "{series}");
    }
    assert!(count("upgate_tls_handshakes_total{version=\"1.3\"}") >= 1);
}

#[test]
fn sighup_reloads_the_certificate_and_an_open_connection_survives() {
    let dir = test_config().data_dir;
    std::fs::create_dir_all(&dir).unwrap();
    let certs = dir.join("certs");
    let (cert_a, key_a) = make_cert(&certs, "first");
    let (cert_b, key_b) = make_cert(&certs, "second");
    let (cert, key) = (certs.join("live.cert.pem"), certs.join("live.key.pem"));
    std::fs::copy(&cert_a, &cert).unwrap();
    std::fs::copy(&key_a, &key).unwrap();
    let config = dir.join("node.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\ntls_listen = \"127.0.0.1:0\"\ntls_cert = {:?}\ntls_key = {:?}\ndata_dir = {:?}\nthreads = 1\nlog_level = \"warn\"\n",
            cert, key, dir.join("data")
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_upgate"))
        .args(["serve", "--config"])
        .arg(&config)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let _plain = read_line(&mut out);
    let secure = read_line(&mut out);
    let tls = secure.rsplit("https://").next().unwrap().trim().to_owned();

    // A connection that stays open across the reload (Python, keep-alive), then the reload.
    let script = format!(
        r#"
import socket, ssl, sys
ctx = ssl.create_default_context(cafile={a:?})
host, port = {tls:?}.split(":")
s = ctx.wrap_socket(socket.create_connection((host, int(port)), timeout=10), server_hostname="127.0.0.1")
def get():
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n")
    data = b""
    while b"ok" not in data:
        data += s.recv(4096)
    return data.split(b"\r\n")[0].decode()
print(get(), flush=True)
sys.stdin.readline()
print(get(), flush=True)
"#,
        a = cert_a.to_str().unwrap(),
    );
    let mut open = Command::new("python3")
        .arg("-c")
        .arg(&script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut open_out = open.stdout.take().unwrap();
    let line = read_line(&mut open_out);
    assert_eq!(line.trim(), "HTTP/1.1 200 OK");

    let ca = |c: &Path| {
        curl(&[
            "--cacert",
            c.to_str().unwrap(),
            &format!("https://{tls}/healthz"),
        ])
        .0
    };
    assert_eq!(ca(&cert_a), 200);
    assert_eq!(ca(&cert_b), 0, "the second certificate is not served yet");

    // A bad file first: the old certificate stays.
    std::fs::write(&cert, "not a certificate").unwrap();
    let hup = |pid: u32| unsafe { libc::kill(pid as i32, libc::SIGHUP) };
    hup(child.id());
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(ca(&cert_a), 200, "a bad file kept the old certificate");

    // The new pair, and SIGHUP: new connections see the new certificate.
    std::fs::copy(&cert_b, &cert).unwrap();
    std::fs::copy(&key_b, &key).unwrap();
    hup(child.id());
    let started = Instant::now();
    while ca(&cert_b) != 200 {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the reload never happened"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(ca(&cert_a), 0, "the old certificate is no longer served");

    // The connection opened before the reloads still answers.
    open.stdin.take().unwrap().write_all(b"\n").unwrap();
    let mut rest = String::new();
    open_out.read_to_string(&mut rest).unwrap();
    assert_eq!(rest.trim(), "HTTP/1.1 200 OK");
    assert!(open.wait().unwrap().success());
    child.kill().unwrap();
    child.wait().unwrap();
}

// ---------------------------------------------------------------------------------------------
// The record layer after the handshake (`server::tls::records`): records opened in place, body
// bytes through registered buffers.

/// A rustls client on a loopback socket to `addr`, trusting `cert`, with its session and
/// socket in reach (to update keys, or to forge a record); reads time out.
fn rustls_client(
    addr: SocketAddr,
    cert: &Path,
) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    let name = rustls::pki_types::ServerName::from(addr.ip());
    let conn = rustls::ClientConnection::new(support::tls::client_config(cert), name).unwrap();
    let sock = TcpStream::connect(addr).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    rustls::StreamOwned::new(conn, sock)
}

/// Reads from `s` until `buf` holds `marker`; the bytes up to and with it, removed.
fn read_until(s: &mut impl Read, buf: &mut Vec<u8>, marker: &[u8]) -> Vec<u8> {
    let mut chunk = [0u8; 16 * 1024];
    loop {
        if let Some(at) = find(buf, marker) {
            return buf.drain(..at + marker.len()).collect();
        }
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => panic!(
                "ended before {:?}: {:?}",
                String::from_utf8_lossy(marker),
                String::from_utf8_lossy(buf)
            ),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// One whole response from `s` (its head, then `Content-Length` bytes of body): the head
/// and the body.
fn read_answer(s: &mut impl Read, buf: &mut Vec<u8>) -> (String, Vec<u8>) {
    let head = String::from_utf8(read_until(s, buf, b"\r\n\r\n")).unwrap();
    let len: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse().unwrap())
        })
        .unwrap_or(0);
    let mut chunk = [0u8; 4096];
    while buf.len() < len {
        let n = s.read(&mut chunk).unwrap();
        assert!(n > 0, "ended inside a body");
        buf.extend_from_slice(&chunk[..n]);
    }
    (head, buf.drain(..len).collect())
}

fn body_bytes(addr: SocketAddr, path: &str) -> u64 {
    let (w, _) = exchange(addr, b"GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n");
    let text = String::from_utf8_lossy(&w.body).into_owned();
    let needle = format!("upgate_body_bytes_total{{path=\"{path}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(needle.as_str()))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// Every suite rustls offers here, TLS 1.3 and 1.2, carries bodies both ways byte-identical:
/// `Content-Length` uploads through the registered buffers (records opened in place), chunked
/// ones through the connection's buffer, downloads sealed from the file's bytes.
#[test]
fn every_suite_carries_uploads_and_downloads_through_the_record_layer() {
    let app = CallbackApp::accepting();
    let (node, cert) = tls_node(&app);
    let (plain, tls) = (node.local_addr(), node.tls_addr().unwrap());
    register(plain, "suites", &app);
    let dir = test_config().data_dir.with_extension("suites");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("body.bin");
    std::fs::write(&file, pattern(3_000_001)).unwrap();
    let (file, cacert) = (file.to_str().unwrap(), cert.to_str().unwrap());
    let fixed_before = body_bytes(plain, "fixed");
    let suites: [(&str, &str); 6] = [
        ("--tls13-ciphers", "TLS_AES_128_GCM_SHA256"),
        ("--tls13-ciphers", "TLS_AES_256_GCM_SHA384"),
        ("--tls13-ciphers", "TLS_CHACHA20_POLY1305_SHA256"),
        ("--ciphers", "ECDHE-ECDSA-AES128-GCM-SHA256"),
        ("--ciphers", "ECDHE-ECDSA-AES256-GCM-SHA384"),
        ("--ciphers", "ECDHE-ECDSA-CHACHA20-POLY1305"),
    ];
    for (flag, suite) in suites {
        let max = if flag == "--ciphers" { "1.2" } else { "1.3" };
        for (name, framing) in [
            ("cl", "X-Framing: length"),
            ("chunked", "Transfer-Encoding: chunked"),
        ] {
            let url = format!("https://{tls}/suites/{suite}-{name}.bin");
            let (code, answer, err) = curl(&[
                "--cacert",
                cacert,
                "--tls-max",
                max,
                flag,
                suite,
                "-H",
                "appid: suites",
                "-H",
                framing,
                "-T",
                file,
                &url,
            ]);
            assert_eq!(
                code,
                201,
                "{suite} {name}: {err} {}",
                String::from_utf8_lossy(&answer)
            );
            let (code, back, err) =
                curl(&["--cacert", cacert, "--tls-max", max, flag, suite, &url]);
            assert_eq!(code, 200, "{suite} {name}: {err}");
            assert!(
                back == pattern(3_000_001),
                "{suite} {name}: the download differs"
            );
        }
    }
    // The six Content-Length bodies went through the registered buffers.
    assert!(body_bytes(plain, "fixed") - fixed_before >= 6 * 3_000_001);
    node.shutdown();
}

/// A client that updates its keys in the middle of a body (asking for ours too) and
/// pipelines a request right behind the body: the file is whole, both requests answered in
/// order on the same connection, and the client reads our answers under our new keys.
#[test]
fn a_key_update_mid_body_and_a_pipelined_request_behind_it() {
    let app = CallbackApp::accepting();
    let (node, cert) = tls_node(&app);
    let (plain, tls) = (node.local_addr(), node.tls_addr().unwrap());
    register(plain, "ku", &app);
    let body = pattern(2_500_000);
    let mut s = rustls_client(tls, &cert);
    let head = format!(
        "PUT /ku/updated.bin HTTP/1.1\r\nHost: a\r\nappid: ku\r\nExpect: 100-continue\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    let mut buf = Vec::new();
    let interim = read_until(&mut s, &mut buf, b"\r\n\r\n");
    assert!(
        interim.starts_with(b"HTTP/1.1 100"),
        "{}",
        String::from_utf8_lossy(&interim)
    );
    s.write_all(&body[..1_000_000]).unwrap();
    s.conn.refresh_traffic_keys().unwrap();
    let mut rest = body[1_000_000..].to_vec();
    rest.extend_from_slice(b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n");
    s.write_all(&rest).unwrap();
    s.flush().unwrap();
    let (first, _) = read_answer(&mut s, &mut buf);
    assert!(first.starts_with("HTTP/1.1 201"), "{first}");
    let (second, _) = read_answer(&mut s, &mut buf);
    assert!(second.starts_with("HTTP/1.1 200"), "{second}");
    let (w, _) = exchange(plain, b"GET /ku/updated.bin HTTP/1.1\r\nHost: a\r\n\r\n");
    assert!(w.body == body, "the stored file differs");
    node.shutdown();
}

/// Bad records in the middle of a body: a forged one (a flipped bit), and `close_notify`
/// before the body's end. The node answers the forgery with a `bad_record_mac` alert and
/// closes, and a body cut by `close_notify` with 400; neither leaves a file, and the node
/// serves the next connection.
#[test]
fn a_forged_record_or_close_notify_mid_body_keeps_nothing() {
    let app = CallbackApp::accepting();
    let (node, cert) = tls_node(&app);
    let (plain, tls) = (node.local_addr(), node.tls_addr().unwrap());
    register(plain, "bad", &app);
    let head = |name: &str| {
        format!(
            "PUT /bad/{name}.bin HTTP/1.1\r\nHost: a\r\nappid: bad\r\nExpect: 100-continue\r\nContent-Length: 1000000\r\n\r\n"
        )
    };

    // A forged record: sealed by the client's session, one bit flipped on the wire.
    let mut s = rustls_client(tls, &cert);
    s.write_all(head("forged").as_bytes()).unwrap();
    let mut buf = Vec::new();
    read_until(&mut s, &mut buf, b"\r\n\r\n");
    s.write_all(&pattern(300_000)).unwrap();
    s.conn.writer().write_all(&pattern(1000)).unwrap();
    let mut sealed = Vec::new();
    s.conn.write_tls(&mut sealed).unwrap();
    let at = sealed.len() - 20;
    sealed[at] ^= 0x40;
    s.sock.write_all(&sealed).unwrap();
    let mut alert = Vec::new();
    let mut end = [0u8; 4096];
    loop {
        match s.sock.read(&mut end) {
            Ok(0) | Err(_) => break,
            Ok(n) => alert.extend_from_slice(&end[..n]),
        }
    }
    s.conn.read_tls(&mut &alert[..]).unwrap();
    let verdict = s.conn.process_new_packets();
    assert!(
        matches!(
            verdict,
            Err(rustls::Error::AlertReceived(
                rustls::AlertDescription::BadRecordMac
            ))
        ),
        "{verdict:?}"
    );

    // close_notify before the body's end.
    let mut s = rustls_client(tls, &cert);
    s.write_all(head("cut").as_bytes()).unwrap();
    let mut buf = Vec::new();
    read_until(&mut s, &mut buf, b"\r\n\r\n");
    s.write_all(&pattern(200_000)).unwrap();
    s.conn.send_close_notify();
    s.flush().unwrap();
    let (answer, _) = read_answer(&mut s, &mut buf);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");

    for name in ["forged", "cut"] {
        let (w, _) = exchange(
            plain,
            format!("GET /bad/{name}.bin HTTP/1.1\r\nHost: a\r\n\r\n").as_bytes(),
        );
        assert_eq!(w.status, 404, "{name}: something was kept");
    }
    let (code, _, _) = curl(&[
        "--cacert",
        cert.to_str().unwrap(),
        &format!("https://{tls}/healthz"),
    ]);
    assert_eq!(code, 200);
    node.shutdown();
}
