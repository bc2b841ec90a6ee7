//! TLS on the io_uring driver (`tls_listen`): a rustls server session over a tokio-uring TCP
//! stream. The connection's bytes go socket → owned buffer (an io_uring `READ`) → rustls
//! (decrypted) → the connection's buffer, and back the same way: the HTTP engine above sees
//! plaintext exactly as on a plain connection (the same routes, limits, flow and timeouts; the
//! handshake happens inside the first read, so it counts against `header_timeout_ms`). The
//! stream has no descriptor whose bytes are the connection's ([`super::Transport::raw_fd`] is
//! `None`), so bodies never splice here: every body byte passes through user space once,
//! decrypted. The certificate and key are read at start and again on SIGHUP ([`TlsConfig`]).

use std::cell::{Cell, RefCell};
use std::io::{self, BufRead, Write};
use std::net::Shutdown;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use bytes::BytesMut;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ServerConfig, ServerConnection};
use tokio_uring::net::TcpStream;

/// TLS bytes read from the socket at once: a little more than one whole record.
const TLS_READ: usize = 17 * 1024;

/// The node's TLS settings: the current rustls configuration, replaced whole on reload (a
/// connection keeps the one it started with).
pub struct TlsConfig {
    cert: PathBuf,
    key: PathBuf,
    current: RwLock<Arc<ServerConfig>>,
}

impl TlsConfig {
    /// Reads `cert` (PEM, the chain, leaf first) and `key` (PEM, PKCS#8, PKCS#1 or SEC1).
    pub fn load(cert: &Path, key: &Path) -> Result<TlsConfig, String> {
        let config = server_config(cert, key)?;
        Ok(TlsConfig {
            cert: cert.to_owned(),
            key: key.to_owned(),
            current: RwLock::new(config),
        })
    }

    /// Reads the files again. On any error the old certificate stays and the error is returned
    /// (the caller logs it); new connections use the new one, open ones keep theirs.
    pub fn reload(&self) -> Result<(), String> {
        let fresh = server_config(&self.cert, &self.key)?;
        *self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = fresh;
        Ok(())
    }

    fn current(&self) -> Arc<ServerConfig> {
        self.current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

/// TLS 1.2 and 1.3 with rustls' ring provider, ALPN `http/1.1`, one certificate.
fn server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, String> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| format!("tls_cert {}: {e}", cert.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("tls_cert {}: {e}", cert.display()))?;
    if chain.is_empty() {
        return Err(format!("tls_cert {}: no certificate in it", cert.display()));
    }
    let key =
        PrivateKeyDer::from_pem_file(key).map_err(|e| format!("tls_key {}: {e}", key.display()))?;
    config_of(chain, key)
}

/// [`server_config`] from PEM text (the fuzz target's fixed certificate).
pub fn config_from_pem(cert: &[u8], key: &[u8]) -> Result<Arc<ServerConfig>, String> {
    let chain = CertificateDer::pem_slice_iter(cert)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("certificate: {e}"))?;
    let key = PrivateKeyDer::from_pem_slice(key).map_err(|e| format!("key: {e}"))?;
    config_of(chain, key)
}

fn config_of(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<ServerConfig>, String> {
    // ring: it builds in a minute with gcc alone; it has no post-quantum key exchange yet
    // (docs/operations.md, "TLS").
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| format!("TLS versions: {e}"))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| format!("tls_cert and tls_key: {e}"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// One TLS connection. Interior mutability because the driver calls through `&Transport`; no
/// borrow is held across an `.await` (one task per connection).
pub struct TlsStream {
    tcp: TcpStream,
    conn: RefCell<ServerConnection>,
    /// The socket reached its end (or the peer sent `close_notify`).
    ended: Cell<bool>,
    /// The buffer socket reads go into, kept between reads.
    scratch: RefCell<Option<Vec<u8>>>,
    /// The handshake's end was counted (`upgate_tls_handshakes_total` or a failure).
    counted: Cell<bool>,
}

impl TlsStream {
    pub fn new(tcp: TcpStream, config: &TlsConfig) -> io::Result<TlsStream> {
        let conn = ServerConnection::new(config.current()).map_err(io::Error::other)?;
        Ok(TlsStream {
            tcp,
            conn: RefCell::new(conn),
            ended: Cell::new(false),
            scratch: RefCell::new(None),
            counted: Cell::new(false),
        })
    }

    pub fn tcp(&self) -> &TcpStream {
        &self.tcp
    }

    /// Sends what rustls holds for the peer: handshake messages, alerts, records.
    async fn flush(&self) -> io::Result<()> {
        loop {
            let out = {
                let mut conn = self.conn.borrow_mut();
                if !conn.wants_write() {
                    return Ok(());
                }
                let mut out = Vec::with_capacity(TLS_READ);
                while conn.wants_write() {
                    conn.write_tls(&mut out)?;
                }
                out
            };
            self.tcp.write_all(out).await.0?;
        }
    }

    /// Gives rustls TLS bytes — those a previous call kept back first, else one socket read —
    /// and lets it process them. It stops feeding once plaintext is waiting (rustls holds a
    /// bounded amount; the caller reads it, the rest is kept for the next call). False at the
    /// socket's end. A record rustls refuses is answered with its alert, then an
    /// `InvalidData` error.
    async fn fill(&self) -> io::Result<bool> {
        let mut buf = self
            .scratch
            .borrow_mut()
            .take()
            .unwrap_or_else(|| Vec::with_capacity(TLS_READ));
        if buf.is_empty() {
            let (res, read) = self.tcp.read(buf).await;
            buf = read;
            let n = res?;
            if n == 0 {
                self.ended.set(true);
                *self.scratch.borrow_mut() = Some(buf);
                return Ok(false);
            }
        }
        let (used, refused) = {
            let mut conn = self.conn.borrow_mut();
            let mut rest = &buf[..];
            let mut refused = None;
            while !rest.is_empty() && refused.is_none() {
                if conn.read_tls(&mut rest)? == 0 {
                    break;
                }
                match conn.process_new_packets() {
                    Err(e) => refused = Some(e),
                    Ok(state) if state.plaintext_bytes_to_read() > 0 => break,
                    Ok(_) => {}
                }
            }
            (buf.len() - rest.len(), refused)
        };
        // What rustls did not take waits in the buffer, at its front, for the next call.
        buf.drain(..used);
        *self.scratch.borrow_mut() = Some(buf);
        if let Some(e) = refused {
            self.count_failure(failure_of(&e));
            let _ = self.flush().await;
            return Err(io::Error::new(io::ErrorKind::InvalidData, e));
        }
        self.count_handshake();
        Ok(true)
    }

    /// Counts a completed handshake once, by its version.
    fn count_handshake(&self) {
        if self.counted.get() {
            return;
        }
        let conn = self.conn.borrow();
        if conn.is_handshaking() {
            return;
        }
        self.counted.set(true);
        match conn.protocol_version() {
            Some(rustls::ProtocolVersion::TLSv1_2) => {
                crate::metrics::tls_handshake(crate::metrics::TlsVersion::V12)
            }
            _ => crate::metrics::tls_handshake(crate::metrics::TlsVersion::V13),
        }
    }

    /// Counts a failed handshake once (errors after it are not handshake failures).
    fn count_failure(&self, reason: crate::metrics::TlsFailure) {
        if !self.counted.get() && self.conn.borrow().is_handshaking() {
            self.counted.set(true);
            crate::metrics::tls_failure(reason);
        }
    }

    /// Plaintext into `buf`'s spare capacity (after its length); 0 at the end of the stream.
    pub async fn read(&self, mut buf: BytesMut) -> (io::Result<usize>, BytesMut) {
        loop {
            // rustls' own plaintext, copied once into the connection's buffer (no zeroing of
            // spare capacity first, as `Read::read` into a slice would need).
            let got = {
                let mut conn = self.conn.borrow_mut();
                let mut reader = conn.reader();
                match reader.fill_buf() {
                    Ok(chunk) => {
                        let n = chunk.len().min((buf.capacity() - buf.len()).max(1));
                        buf.extend_from_slice(&chunk[..n]);
                        reader.consume(n);
                        Ok(n)
                    }
                    Err(e) => Err(e),
                }
            };
            match got {
                Ok(n) => return (Ok(n), buf),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // The socket ended without `close_notify`: the end of the stream all the same
                // (the HTTP layer knows whether a message was cut).
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return (Ok(0), buf),
                Err(e) => return (Err(e), buf),
            }
            if let Err(e) = self.flush().await {
                return (Err(e), buf);
            }
            if self.ended.get() {
                return (Ok(0), buf);
            }
            match self.fill().await {
                Ok(true) => {}
                Ok(false) => return (Ok(0), buf),
                Err(e) => return (Err(e), buf),
            }
        }
    }

    /// Encrypts and sends all of `bytes`.
    pub async fn write_all(&self, bytes: &[u8]) -> io::Result<()> {
        let mut rest = bytes;
        while !rest.is_empty() {
            let n = self.conn.borrow_mut().writer().write(rest)?;
            if n == 0 && !self.conn.borrow().wants_write() {
                // rustls' plaintext buffer is full and nothing can leave (no handshake yet).
                return Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    "TLS session takes no more plaintext before its handshake",
                ));
            }
            rest = &rest[n..];
            // rustls holds at most its buffer limit of plaintext: send, then go on.
            self.flush().await?;
        }
        self.flush().await
    }

    /// Waits until plaintext, the end of the stream or an error can be read.
    pub async fn readable(&self) -> io::Result<()> {
        loop {
            let pending = self
                .conn
                .borrow_mut()
                .process_new_packets()
                .map(|s| s.plaintext_bytes_to_read() > 0 || s.peer_has_closed())
                .unwrap_or(true);
            if pending || self.ended.get() {
                return Ok(());
            }
            self.flush().await?;
            if !self.fill().await? {
                return Ok(());
            }
        }
    }

    /// Sends `close_notify` (best effort, without waiting) and shuts the socket down.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        if matches!(how, Shutdown::Write | Shutdown::Both) {
            let mut conn = self.conn.borrow_mut();
            conn.send_close_notify();
            let mut out = Vec::new();
            while conn.wants_write() {
                if conn.write_tls(&mut out).is_err() {
                    break;
                }
            }
            if !out.is_empty() {
                // SAFETY: a non-blocking send from a live buffer on our own socket.
                unsafe {
                    libc::send(
                        self.tcp.as_raw_fd(),
                        out.as_ptr().cast(),
                        out.len(),
                        libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
                    )
                };
            }
        }
        self.tcp.shutdown(how)
    }
}

impl Drop for TlsStream {
    /// A connection that ends (closed, timed out) in the middle of its handshake.
    fn drop(&mut self) {
        self.count_failure(crate::metrics::TlsFailure::Incomplete);
    }
}

/// The `reason` label of a handshake that rustls refused.
fn failure_of(e: &rustls::Error) -> crate::metrics::TlsFailure {
    use crate::metrics::TlsFailure;
    use rustls::{Error, PeerIncompatible};
    match e {
        Error::PeerIncompatible(
            PeerIncompatible::NoCipherSuitesInCommon
            | PeerIncompatible::NoKxGroupsInCommon
            | PeerIncompatible::NoSignatureSchemesInCommon
            | PeerIncompatible::SupportedVersionsExtensionRequired
            | PeerIncompatible::Tls12NotOfferedOrEnabled
            | PeerIncompatible::Tls13RequiredForQuic,
        ) => TlsFailure::NoCommonParameters,
        Error::PeerIncompatible(_) => TlsFailure::NoCommonParameters,
        Error::InvalidMessage(_)
        | Error::InappropriateMessage { .. }
        | Error::InappropriateHandshakeMessage { .. }
        | Error::DecryptError
        | Error::PeerMisbehaved(_) => TlsFailure::BadRecord,
        Error::AlertReceived(_) => TlsFailure::PeerAlert,
        _ => TlsFailure::Other,
    }
}

/// Whether this kernel offers kernel TLS (`setsockopt(TCP_ULP, "tls")` on a fresh socket):
/// `Err(why)` when it does not. Nothing uses kTLS yet (the design for a kernel that has it is in
/// `docs/architecture.md`, "TLS"); the node says once at start which case it is in.
pub fn probe_kernel_tls() -> Result<(), String> {
    // SAFETY: a fresh socket, a setsockopt on it with a live buffer, then close.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(io::Error::last_os_error().to_string());
        }
        let name = b"tls";
        let rc = libc::setsockopt(
            fd,
            libc::SOL_TCP,
            libc::TCP_ULP,
            name.as_ptr().cast(),
            name.len() as libc::socklen_t,
        );
        let err = io::Error::last_os_error();
        libc::close(fd);
        match rc {
            0 => Ok(()),
            _ if err.raw_os_error() == Some(libc::ENOENT) => {
                Err("the kernel has no TLS upper-layer protocol (CONFIG_TLS unset or the tls module not loaded)".into())
            }
            _ => Err(err.to_string()),
        }
    }
}
