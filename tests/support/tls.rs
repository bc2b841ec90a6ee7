//! TLS for tests: a self-signed certificate made by `openssl`, and a rustls client connection
//! over a blocking `TcpStream` that behaves towards the raw-socket helpers like the socket itself
//! (see [`TlsStream`]).

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore};

use super::Stream;

/// A self-signed ECDSA P-256 certificate for `127.0.0.1` and `localhost`, made by `openssl`,
/// as `dir/<name>.cert.pem` and `dir/<name>.key.pem`. It says `CA:FALSE`: trusted as itself
/// (curl's `--cacert`, OpenSSL's `-CAfile`, rustls' root store), it is an end entity, and
/// webpki refuses a CA certificate (`openssl req -x509`'s default) as a server's
/// (`CaUsedAsEndEntity`).
pub fn make_cert(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let pem = super::certs::self_signed_leaf(dir, name, "DNS:localhost,IP:127.0.0.1");
    (pem.cert, pem.key)
}

/// A rustls client (ring, TLS 1.2 and 1.3, ALPN `http/1.1` as browsers and curl offer it) that
/// trusts only the certificates in the PEM file `ca`. It resumes sessions (rustls' default
/// cache), and its key exchange is P-256 alone: ring's P-256 is assembly, its X25519 is C that
/// the dev profile builds without optimisation, and a battery of a few hundred handshakes runs
/// 2.6 s instead of 7 s. (curl and Python in `tests/tls.rs` keep X25519 covered.)
pub fn client_config(ca: &Path) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).expect("the CA file opens") {
        roots.add(cert.expect("a PEM certificate")).unwrap();
    }
    // ring, as the node has it (src/server/tls.rs): no post-quantum key exchange yet.
    #[allow(deprecated)]
    let mut provider = rustls::crypto::ring::default_provider();
    provider.kx_groups = vec![rustls::crypto::ring::kx_group::SECP256R1];
    let provider = Arc::new(provider);
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

/// A TLS client connection on a blocking socket, with the socket's semantics as far as a test
/// can see them:
/// - a read never sends: bytes a blocked write left unsent stay queued, as in a kernel send
///   buffer, instead of blocking the read behind them (rustls' `Stream` flushes them first,
///   which would hide an answer the node sent while no longer reading);
/// - the socket's timeouts apply unchanged (a read times out with the socket's `WouldBlock` or
///   `TimedOut`);
/// - the end of the stream is `Ok(0)` after the server's `close_notify`; a TCP end without it
///   is `UnexpectedEof`, a reset stays `ConnectionReset`, a TLS error (an alert, a bad record)
///   is `InvalidData`.
pub struct TlsStream {
    conn: ClientConnection,
    tcp: TcpStream,
}

impl TlsStream {
    /// Completes the handshake on `tcp` (within the socket's timeouts) for the server name
    /// `addr.ip()`.
    pub fn handshake(
        mut tcp: TcpStream,
        addr: SocketAddr,
        config: Arc<ClientConfig>,
    ) -> io::Result<TlsStream> {
        let mut conn =
            ClientConnection::new(config, ServerName::from(addr.ip())).map_err(io::Error::other)?;
        while conn.is_handshaking() {
            conn.complete_io(&mut tcp)?;
        }
        while conn.wants_write() {
            conn.write_tls(&mut tcp)?;
        }
        Ok(TlsStream { conn, tcp })
    }
}

impl Read for TlsStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.conn.reader().read(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                done => return done,
            }
            // No plaintext yet: more records from the socket. At its end rustls records the
            // EOF, and the reader above answers `Ok(0)` or `UnexpectedEof` next time round.
            self.conn.read_tls(&mut self.tcp)?;
            if let Err(e) = self.conn.process_new_packets() {
                let _ = self.conn.write_tls(&mut self.tcp); // our alert, best effort
                return Err(io::Error::new(io::ErrorKind::InvalidData, e));
            }
        }
    }
}

impl Write for TlsStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.conn.writer().write(buf)?;
        self.flush()?;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        while self.conn.wants_write() {
            self.conn.write_tls(&mut self.tcp)?;
        }
        self.tcp.flush()
    }
}

impl Stream for TlsStream {
    fn tcp(&self) -> &TcpStream {
        &self.tcp
    }
}
