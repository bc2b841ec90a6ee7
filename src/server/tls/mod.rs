//! TLS on the io_uring driver (`tls_listen`). The HTTP engine above sees plaintext exactly as
//! on a plain connection: the same routes, limits, flow and timeouts.
//!
//! | file | what |
//! |---|---|
//! | this one | the settings: certificate and key, read at start and again on SIGHUP ([`TlsConfig`]) |
//! | [`session`] | one session without I/O: the handshake in rustls, then the record layer |
//! | [`records`] | records opened and sealed in place with the negotiated keys |
//! | [`stream`] | the session on a tokio-uring socket, as the driver's transport |
//!
//! The copies per body byte are counted in `docs/architecture.md`, "TLS".

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;

pub mod records;
pub mod session;
mod stream;

pub use stream::TlsStream;

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

    pub(super) fn current(&self) -> Arc<ServerConfig> {
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
    // After the handshake the keys go to our record layer (`records`), as they would to
    // kernel TLS.
    config.enable_secret_extraction = true;
    Ok(Arc::new(config))
}

/// The `reason` label of a handshake that rustls refused.
pub(super) fn failure_of(e: &rustls::Error) -> crate::metrics::TlsFailure {
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
