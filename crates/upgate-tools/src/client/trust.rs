//! Which certificate authorities an `https://` node must prove itself to: the PEM file of
//! `--cacert`, or else the system's trust store. One rustls `ClientConfig` per command, shared
//! by its connections (a resumable upload makes many), so TLS sessions can be resumed.
//!
//! `--cacert` replaces the system's store rather than adding to it, as curl's flag does: a
//! node behind a private CA is then trusted through that CA alone.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};

use super::error::ClientError;
use super::tls_error::TrustSource;

/// The client side of TLS for one command: a config (TLS 1.3 and 1.2, ALPN `http/1.1`) and
/// where its roots came from.
#[derive(Clone)]
pub struct Trust {
    pub(crate) config: Arc<ClientConfig>,
    pub(crate) source: TrustSource,
}

impl fmt::Debug for Trust {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Trust")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl Trust {
    /// The CAs of `cacert` (a PEM file of one or more certificates), or the system's.
    pub fn load(cacert: Option<&Path>) -> Result<Trust, ClientError> {
        let (roots, source) = match cacert {
            Some(path) => (ca_file(path)?, TrustSource::CaFile(path.to_owned())),
            None => (system()?, TrustSource::System),
        };
        // ring, as the node uses: no aws-lc-rs to build; no post-quantum key exchange yet.
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| ClientError::Usage(format!("TLS versions: {e}")))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Trust {
            config: Arc::new(config),
            source,
        })
    }
}

impl Trust {
    /// The same CAs, with every handshake a full one (no session resumed): what a benchmark of
    /// new connections measures.
    pub fn without_resumption(&self) -> Trust {
        let mut config = (*self.config).clone();
        config.resumption = rustls::client::Resumption::disabled();
        Trust {
            config: Arc::new(config),
            source: self.source.clone(),
        }
    }
}

/// Every certificate of a PEM file; a file that holds none is a usage error, not an empty
/// store that would refuse every node with a puzzling "unknown issuer".
fn ca_file(path: &Path) -> Result<RootCertStore, ClientError> {
    let bad = |why: String| ClientError::Usage(format!("--cacert {}: {why}", path.display()));
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| bad(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(e.to_string()))?;
    if certs.is_empty() {
        return Err(bad(
            "holds no PEM certificate (-----BEGIN CERTIFICATE-----)".into(),
        ));
    }
    let mut roots = RootCertStore::empty();
    for (i, cert) in certs.into_iter().enumerate() {
        roots
            .add(cert)
            .map_err(|e| bad(format!("certificate {} is not usable: {e}", i + 1)))?;
    }
    Ok(roots)
}

/// The system's CAs. Unreadable entries are skipped (a store often holds a few); an empty
/// result is an error that says how to go on.
fn system() -> Result<RootCertStore, ClientError> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        let why = match found.errors.first() {
            Some(e) => format!(" ({e})"),
            None => String::new(),
        };
        return Err(ClientError::Usage(format!(
            "no CA certificate found in the system's trust store{why}; pass the node's CA with \
             --cacert FILE"
        )));
    }
    Ok(roots)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn temp(name: &str, content: &str) -> PathBuf {
        let p = std::env::temp_dir().join(format!("upgate-trust-{}-{name}", std::process::id()));
        std::fs::write(&p, content).unwrap();
        p
    }

    #[test]
    fn a_cacert_without_certificates_or_missing_is_a_usage_error() {
        let empty = temp("empty.pem", "not a certificate\n");
        for path in [empty.as_path(), Path::new("/nonexistent/ca.pem")] {
            let e = Trust::load(Some(path)).unwrap_err();
            assert!(matches!(e, ClientError::Usage(_)), "{e:?}");
            assert!(e.to_string().contains("--cacert"), "{e}");
        }
        let _ = std::fs::remove_file(empty);
    }

    #[test]
    fn a_garbled_certificate_is_refused_by_number() {
        let garbled = temp(
            "garbled.pem",
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        );
        let e = Trust::load(Some(&garbled)).unwrap_err();
        assert!(e.to_string().contains("certificate 1"), "{e}");
        let _ = std::fs::remove_file(garbled);
    }
}
