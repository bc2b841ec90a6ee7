//! Certificates for HTTPS tests, made by the `openssl` command (as `tests/tls.rs` does): a
//! private CA and node certificates it signs, or a self-signed one as `openssl req -x509`
//! makes it by default. An IP address is named only when it is given (`IP:127.0.0.1`).

use std::path::{Path, PathBuf};
use std::process::Command;

/// A certificate and its private key, as PEM files.
pub struct Pem {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// `openssl req -x509` with a fresh P-256 key, valid two days, plus `args`.
fn req_x509(dir: &Path, name: &str, args: &[&str]) -> Pem {
    std::fs::create_dir_all(dir).unwrap();
    let pem = Pem {
        cert: dir.join(format!("{name}.cert.pem")),
        key: dir.join(format!("{name}.key.pem")),
    };
    let out = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .args(["ec_paramgen_curve:P-256", "-nodes", "-days", "2"])
        .args(["-subj", &format!("/CN={name}")])
        .args(args)
        .arg("-keyout")
        .arg(&pem.key)
        .arg("-out")
        .arg(&pem.cert)
        .output()
        .expect("openssl runs (make test-deps installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    pem
}

/// A CA (self-signed, `CA:TRUE`): its certificate is what a client passes as `--cacert`.
pub fn ca(dir: &Path, name: &str) -> Pem {
    req_x509(dir, name, &[])
}

/// A node certificate for `names` (`IP:127.0.0.1,DNS:localhost`), signed by `ca`.
pub fn leaf(dir: &Path, name: &str, ca: &Pem, names: &str) -> Pem {
    let (ca_cert, ca_key) = (ca.cert.to_str().unwrap(), ca.key.to_str().unwrap());
    req_x509(
        dir,
        name,
        &[
            "-CA",
            ca_cert,
            "-CAkey",
            ca_key,
            "-addext",
            &format!("subjectAltName={names}"),
            "-addext",
            "basicConstraints=critical,CA:FALSE",
        ],
    )
}

/// A self-signed certificate for `names`, `CA:TRUE` as openssl makes it by default: curl
/// accepts it as a node's certificate, rustls does not.
pub fn self_signed(dir: &Path, name: &str, names: &str) -> Pem {
    req_x509(dir, name, &["-addext", &format!("subjectAltName={names}")])
}

/// A self-signed certificate for `names` marked `CA:FALSE`: trusted as itself (curl's
/// `--cacert`, OpenSSL's `-CAfile`, a rustls root store), and an end entity, which webpki
/// requires of a server's certificate.
pub fn self_signed_leaf(dir: &Path, name: &str, names: &str) -> Pem {
    let san = format!("subjectAltName={names}");
    let leaf = [
        "-addext",
        &san,
        "-addext",
        "basicConstraints=critical,CA:FALSE",
    ];
    req_x509(dir, name, &leaf)
}
