//! Invariants checked by the fuzz targets outside the protocol layer (the protocol's own are in
//! [`crate::http::check`]): the upload path check, the registration body parser, the
//! callback URL policy, the reading of an application's answer and etcd's watch messages all
//! take bytes from the network. Each `check_*` panics when an
//! invariant breaks; `fuzz/fuzz_targets/*` call them on arbitrary bytes and
//! `tests/fuzz_corpus.rs` replays the checked-in seeds through them.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Component, Path};

use crate::callback::{is_restricted, CallbackPolicy};
use crate::register::form::{parse_form, MAX_FIELDS};
use crate::register::request::{self, BodyKind};
use crate::registry::Change;
use crate::storage::path::{self, MAX_PATH_BYTES};

/// `storage::path::parse` on arbitrary bytes: never panics, and an accepted path
/// - is at most 1024 bytes and starts with `/{appid}/`, its appid is `first_segment`;
/// - has a relative part that stays below the app's directory when joined to it: every
///   component is a plain name (no `..`, `.`, root, empty), with no `\`, NUL or control byte;
/// - re-encoded with `encode_rel` (the download URL) parses back to the same target.
pub fn check_path(data: &[u8]) {
    let Ok(target) = path::parse(data) else {
        return;
    };
    assert!(data.len() <= MAX_PATH_BYTES);
    // (Callers pass the path without its query; `first_segment` also stops at a `?`.)
    if !data.contains(&b'?') {
        assert_eq!(path::first_segment(data), target.appid.as_bytes());
    }
    assert!(
        crate::registry::valid_appid(&target.appid),
        "path accepted with appid {:?}",
        target.appid
    );
    assert!(!target.rel.is_empty());
    for segment in target.rel.split('/') {
        assert!(!segment.is_empty() && segment != "." && segment != "..");
        assert!(segment.len() <= 255);
    }
    assert!(!target
        .rel
        .bytes()
        .any(|b| b == b'\\' || b < 0x20 || b == 0x7f));
    assert!(Path::new(&target.rel)
        .components()
        .all(|c| matches!(c, Component::Normal(_))));
    assert!(!target.filename().is_empty());

    let again = format!("/{}/{}", target.appid, path::encode_rel(&target.rel));
    if again.len() <= MAX_PATH_BYTES {
        assert_eq!(
            path::parse(again.as_bytes()),
            Ok(target),
            "download URL path does not parse back"
        );
    }
}

/// The registration body parsers on arbitrary bytes: `parse_form` never panics, accepts at most
/// `MAX_FIELDS` pairs, and what it accepts, re-encoded, parses to the same pairs; the whole
/// registration parser (`register::request::parse`, form and JSON) never panics, and an accepted
/// registration has a valid appid and callback URLs that are absolute http(s) URLs.
pub fn check_register_form(data: &[u8]) {
    if let Ok(pairs) = parse_form(data) {
        assert!(pairs.len() <= MAX_FIELDS);
        let encoded = pairs
            .iter()
            .map(|(k, v)| format!("{}={}", form_encode(k), form_encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        assert_eq!(
            parse_form(encoded.as_bytes()).as_ref(),
            Ok(&pairs),
            "re-encoded form differs"
        );
    }
    // The first byte picks the body kind and whether the request path named an appid.
    let (kind, head_appid, body) = match data.split_first() {
        Some((&b, rest)) => (
            if b & 1 == 0 {
                BodyKind::Form
            } else {
                BodyKind::Json
            },
            (b & 2 != 0).then_some("app1"),
            rest,
        ),
        None => (BodyKind::Form, None, data),
    };
    if let Ok(reg) = request::parse(kind, body, head_appid) {
        assert!(!reg.appid.is_empty());
        if let Some(h) = head_appid {
            assert_eq!(reg.appid, h);
        }
        for change in [&reg.callback_url_pre, &reg.callback_url_post] {
            let Change::Set(url) = change else { continue };
            let parsed = url::Url::parse(url).expect("accepted callback URL parses");
            assert!(matches!(parsed.scheme(), "http" | "https"), "{url}");
        }
    }
}

/// Percent-encodes every byte but unreserved ones (the inverse of `parse_form`'s decoding).
fn form_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The port the policy fuzz target allows on 127.0.0.1.
const LISTED_PORT: u16 = 8081;

/// `CallbackPolicy::check` on an arbitrary URL (and an arbitrary app `callback_hosts` entry,
/// taken from the bytes before the first NUL): never panics, and an allowed URL
/// - is `http`/`https` without userinfo;
/// - names, after the WHATWG normalisation that ureq dials, `127.0.0.1:8081`, the host
///   `app.example.com` (any port) or what the app's entry names — nothing else, in whatever
///   spelling (decimal, octal, hex, IPv6-mapped), so a restricted address passes only when it
///   is listed itself;
/// - when its host is an IP literal, gets a connection guard that lets that address through.
pub fn check_callback_url(data: &[u8]) {
    let (app_entry, url) = match memchr::memchr(0, data) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (&b""[..], data),
    };
    let (Ok(app_entry), Ok(url)) = (std::str::from_utf8(app_entry), std::str::from_utf8(url))
    else {
        return;
    };
    let policy = CallbackPolicy::new(vec![
        format!("127.0.0.1:{LISTED_PORT}"),
        "app.example.com".to_owned(),
    ]);
    let Ok(checked) = policy.check(url, &[app_entry.to_owned()]) else {
        return;
    };
    let parsed = checked.url();
    assert!(matches!(parsed.scheme(), "http" | "https"));
    assert!(parsed.username().is_empty() && parsed.password().is_none());
    let host = parsed.host_str().expect("allowed URL has a host");
    let port = parsed.port_or_known_default().expect("http(s) has a port");
    // The policy's rule: names compare ignoring one trailing dot (of a name longer than ".").
    let bare = |h: &str| match h.strip_suffix('.') {
        Some(rest) if h.len() > 1 => rest.to_owned(),
        _ => h.to_owned(),
    };
    let same_host = |a: &str, b: &str| bare(a) == bare(b);
    let listed = (host == "127.0.0.1" && port == LISTED_PORT)
        || same_host(host, "app.example.com")
        || entry_names(app_entry)
            .is_some_and(|(h, p)| same_host(host, &h) && p.is_none_or(|p| p == port));
    assert!(
        listed,
        "{url:?} allowed but not listed (app entry {app_entry:?})"
    );
    if let Ok(ip) = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
        .parse::<IpAddr>()
    {
        let addr = std::net::SocketAddr::new(ip, port);
        assert!(
            checked.guard().permits(addr),
            "guard refuses {addr} it allowed"
        );
        if is_restricted(ip) && ip != IpAddr::V4(Ipv4Addr::LOCALHOST) {
            assert!(
                !app_entry.is_empty(),
                "restricted {ip} allowed without an entry"
            );
        }
    }
}

/// The (host, port) an allow entry names, read independently of the policy's own parser: the
/// host as the URL parser spells it (so `2130706433` is `127.0.0.1`), the port when explicit.
fn entry_names(entry: &str) -> Option<(String, Option<u16>)> {
    let entry = entry.trim();
    if entry.is_empty() || entry.contains(['/', '@', '?', '#', '*']) {
        return None;
    }
    if let Ok(v6) = entry.parse::<std::net::Ipv6Addr>() {
        return Some((format!("[{v6}]"), None));
    }
    let url = url::Url::parse(&format!("http://{entry}/")).ok()?;
    let after_host = entry.rsplit(']').next().unwrap_or(entry);
    let port = after_host
        .rsplit_once(':')
        .and_then(|(_, p)| p.parse::<u16>().ok());
    Some((url.host_str()?.to_owned(), port))
}

/// An application's answer to a post-callback made from the ring
/// (`crate::callback::ring::decode_answer`), from arbitrary bytes: the first byte picks where
/// the rest is split in two reads. Never panics; the body kept is at most `MAX_ANSWER_BYTES`;
/// where the bytes are cut never changes the outcome, the status or the body (only whether
/// the connection may be reused, which depends on whether bytes follow the answer in a read).
pub fn check_callback_answer(data: &[u8]) {
    use crate::callback::{ring::decode_answer, MAX_ANSWER_BYTES};
    let Some((&first, bytes)) = data.split_first() else {
        return;
    };
    let split = if bytes.is_empty() {
        0
    } else {
        first as usize % (bytes.len() + 1)
    };
    let whole = decode_answer(bytes, bytes.len());
    let cut = decode_answer(bytes, split);
    if let Ok(Some((_, body, _))) = &whole {
        assert!(body.len() <= MAX_ANSWER_BYTES, "body past the bound");
    }
    match (&whole, &cut) {
        (Ok(Some((s1, b1, _))), Ok(Some((s2, b2, _)))) => {
            assert_eq!((s1, b1), (s2, b2), "the split changed the answer");
        }
        (Err(_), Err(_)) | (Ok(None), Ok(None)) => {}
        _ => panic!("the split changed the outcome: {whole:?} against {cut:?}"),
    }
}

/// One line of an etcd watch stream (`registry::etcd_client::parse_watch_message`), from
/// arbitrary bytes: never panics, and a line that reads as a message re-encodes, the way etcd
/// writes it, to one that reads back the same (keys, values, revisions and event kinds kept).
pub fn check_etcd_watch(data: &[u8]) {
    use crate::registry::etcd_client::{encode_watch_message, parse_watch_message};
    let line = String::from_utf8_lossy(data);
    let Ok(message) = parse_watch_message(&line) else {
        return;
    };
    let again = parse_watch_message(&encode_watch_message(&message))
        .unwrap_or_else(|e| panic!("{message:?} re-encoded does not read: {e}"));
    assert_eq!(again, message, "the message changed through its encoding");
}

/// The fuzz target's certificate and key (self-signed ECDSA P-256, for nothing but this).
const FUZZ_CERT: &str = r"-----BEGIN CERTIFICATE-----
MIIBkzCCATqgAwIBAgIURxT2wgpclOltvmaG95wUFdJyH/IwCgYIKoZIzj0EAwIw
FjEUMBIGA1UEAwwLdXBnYXRlLWZ1enowIBcNMjYxMjA1MjIzNjE2WhgPMjEyNjEx
MTEyMjM2MTZaMBYxFDASBgNVBAMMC3VwZ2F0ZS1mdXp6MFkwEwYHKoZIzj0CAQYI
KoZIzj0DAQcDQgAEcQzUoBzBeGz4Jynu3lGJFcHB6Sb9HX2ov0q5dz3CGOcEGnqx
E6YtB599TXwxLB8C/Q3yDMTe0nSQ7zySE3K+QKNkMGIwHQYDVR0OBBYEFDSorelj
EXDp3B3HFtP+PPzE7NHWMB8GA1UdIwQYMBaAFDSoreljEXDp3B3HFtP+PPzE7NHW
MA8GA1UdEwEB/wQFMAMBAf8wDwYDVR0RBAgwBocEfwAAATAKBggqhkjOPQQDAgNH
ADBEAiB6l77307qBKN2ZNHMeq7hAk/b2vgOxP1tL3HzMX5jR4QIgZbSTOUCktuZo
EQGYky3TkHuyVEQ5LwjtQR6dDKFKcHw=
-----END CERTIFICATE-----
";
const FUZZ_KEY: &str = r"-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgjb+S9RRYz5roPyLA
vN2z/P9la8QzRtoDuOOeLevU4lyhRANCAARxDNSgHMF4bPgnKe7eUYkVwcHpJv0d
fai/Srl3PcIY5wQaerETpi0Hn31NfDEsHwL9DfIMxN7SdJDvPJITcr5A
-----END PRIVATE KEY-----
";

/// Bytes a client sends to `tls_listen` (`server::tls`), from arbitrary bytes: byte 0 picks
/// where the rest is cut in two reads (TCP segments it as it likes), fed to the node's TLS
/// session (`server::tls::session`, rustls' handshake and then the record layer). Never
/// panics; what the session makes of the bytes (refused, still in its handshake, or done)
/// does not depend on the cut; a refused session stays refused; and no plaintext reaches the
/// HTTP engine before the handshake is done.
pub fn check_tls_bytes(data: &[u8]) {
    use crate::server::tls::session::Session;
    use std::sync::OnceLock;
    static CONFIG: OnceLock<std::sync::Arc<rustls::ServerConfig>> = OnceLock::new();
    let config = CONFIG.get_or_init(|| {
        crate::server::tls::config_from_pem(FUZZ_CERT.as_bytes(), FUZZ_KEY.as_bytes())
            .expect("the fuzz certificate loads")
    });
    let Some((&first, bytes)) = data.split_first() else {
        return;
    };
    let cut = first as usize * bytes.len() / 255;
    let outcome = |pieces: &[&[u8]]| {
        let mut session = Session::new(config.clone()).expect("a session");
        let mut refused = None;
        let mut plain = bytes::BytesMut::with_capacity(64 * 1024);
        for piece in pieces {
            if refused.is_some() {
                break;
            }
            session.receive(piece);
            // Processing until nothing changes, as the driver does between reads.
            loop {
                let before = (session.unprocessed().len(), plain.len());
                if let Err(e) = session.process(&mut plain) {
                    refused = Some(e.to_string());
                    break;
                }
                let _ = session.take_outgoing();
                if (session.unprocessed().len(), plain.len()) == before {
                    break;
                }
            }
        }
        if let Some(e) = &refused {
            // Refused for good: asking again changes nothing.
            session.receive(b"\x17\x03\x03\x00\x01x");
            assert!(
                session.process(&mut plain).is_err(),
                "{e}: the session recovered"
            );
        }
        if session.is_handshaking() {
            assert!(plain.is_empty(), "plaintext before the handshake finished");
        }
        (refused, session.is_handshaking())
    };
    let whole = outcome(&[bytes]);
    let split = outcome(&[&bytes[..cut], &bytes[cut..]]);
    assert_eq!(whole, split, "the cut at {cut} changed the outcome");
}

/// The node's side and a peer's side of one connection's record layer after a handshake
/// (`server::tls::records`), with fixed keys: each one's `tx` is the other's `rx`. `suite`
/// picks TLS 1.3 or 1.2 with AES-256-GCM or ChaCha20-Poly1305 (keys rustls lets a caller
/// make are 32 bytes).
pub fn records_pair(
    suite: usize,
) -> (
    crate::server::tls::records::Records,
    crate::server::tls::records::Records,
) {
    use crate::server::tls::records::Records;
    use rustls::crypto::cipher::{AeadKey, Iv};
    use rustls::crypto::ring::cipher_suite as suites;
    use rustls::ConnectionTrafficSecrets;
    let (suite, chacha) = [
        (suites::TLS13_AES_256_GCM_SHA384, false),
        (suites::TLS13_CHACHA20_POLY1305_SHA256, true),
        (suites::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, false),
        (suites::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, true),
    ][suite % 4];
    let secrets = |seed: u8| {
        let key = AeadKey::from([seed; 32]);
        let iv = Iv::new([seed ^ 0x5a; 12]);
        match chacha {
            true => ConnectionTrafficSecrets::Chacha20Poly1305 { key, iv },
            false => ConnectionTrafficSecrets::Aes256Gcm { key, iv },
        }
    };
    let node = Records::new(suite, (0, secrets(1)), (0, secrets(2)), None);
    let peer = Records::new(suite, (0, secrets(2)), (0, secrets(1)), None);
    (node.expect("node keys"), peer.expect("peer keys"))
}

/// TLS records after the handshake (`server::tls::records`), from arbitrary bytes: byte 0
/// picks the suite, byte 1 where the wire is cut in two reads; the rest is a plan of what
/// the peer sends: records it seals (plaintext from the input), raw bytes, a flipped bit in
/// what was sent so far, or `close_notify`. Never panics; the outcome (plaintext delivered,
/// bytes used, refused or not, closed or not) does not depend on the cut; what is delivered
/// is always a prefix of what the peer sealed, and all of it when nothing was damaged.
pub fn check_tls_records(data: &[u8]) {
    let [suite, cut, plan @ ..] = data else {
        return;
    };
    let (_, mut peer) = records_pair(*suite as usize);
    let mut wire = Vec::new();
    let mut sealed = Vec::new();
    let mut damaged = false;
    let mut closed = false;
    let mut rest = plan;
    while let [op, len, tail @ ..] = rest {
        let n = (*len as usize).min(tail.len());
        let (arg, after) = tail.split_at(n);
        rest = after;
        match op % 4 {
            0 if !closed => {
                peer.seal(arg, &mut wire).expect("seal");
                sealed.extend_from_slice(arg);
            }
            1 => {
                wire.extend_from_slice(arg);
                damaged = true;
            }
            2 if !wire.is_empty() => {
                let at = (*len as usize * 131 + arg.len()) % wire.len();
                wire[at] ^= 1 << (op % 8);
                damaged = true;
            }
            3 if !closed => {
                peer.alert(None, &mut wire);
                closed = true;
            }
            _ => {}
        }
    }
    let cut = *cut as usize * wire.len() / 255;
    let outcome = |pieces: &[&[u8]]| {
        let (mut node, _) = records_pair(*suite as usize);
        let mut buf = Vec::new();
        let mut plain = Vec::new();
        let (mut used, mut ended, mut refused) = (0, false, false);
        'pieces: for piece in pieces {
            buf.extend_from_slice(piece);
            loop {
                match node.open(&mut buf, usize::MAX, |b, _| plain.extend_from_slice(b)) {
                    Err(_) => {
                        refused = true;
                        break 'pieces;
                    }
                    Ok(o) => {
                        buf.drain(..o.used);
                        used += o.used;
                        if o.closed {
                            ended = true;
                            break 'pieces;
                        }
                        if o.used == 0 {
                            break;
                        }
                    }
                }
            }
        }
        // How far a refused stream was read depends on where the reads ended; nothing after
        // the refusal is used either way.
        (plain, (!refused).then_some(used), refused, ended)
    };
    let whole = outcome(&[&wire]);
    let split = outcome(&[&wire[..cut], &wire[cut..]]);
    assert_eq!(whole, split, "the cut at {cut} changed the outcome");
    let (plain, used, refused, ended) = whole;
    assert!(sealed.starts_with(&plain), "a byte no record carried");
    if !damaged {
        assert_eq!(plain, sealed);
        assert!(!refused);
        assert_eq!(ended, closed);
        if !closed {
            assert_eq!(used, Some(wire.len()));
        }
    }
}
