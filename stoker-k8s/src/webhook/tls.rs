//! The serving certificate as rustls sees it, replaceable while the server runs: every new TLS
//! handshake takes the certificate loaded last, so a rotation needs no restart and cuts no
//! connection.

use std::sync::{Arc, RwLock};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::error::{Error, Result};

/// The certificate the server presents; cheap to clone (clones share it).
#[derive(Clone, Default)]
pub struct ServingCertificate {
    current: Arc<RwLock<Option<Loaded>>>,
}

#[derive(Clone)]
struct Loaded {
    key: Arc<CertifiedKey>,
    /// The PEM it was loaded from, to tell whether a reload changes anything.
    cert_pem: String,
}

impl std::fmt::Debug for ServingCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServingCertificate")
            .field("loaded", &self.is_loaded())
            .finish()
    }
}

impl ServingCertificate {
    /// True once a certificate has been loaded.
    pub fn is_loaded(&self) -> bool {
        self.read().is_some()
    }

    /// The PEM of the certificate served now.
    pub fn current_pem(&self) -> Option<String> {
        self.read().map(|loaded| loaded.cert_pem)
    }

    /// Serves `cert_pem` (the certificate, then any intermediates) with `key_pem` from the next
    /// handshake on. Returns false when it is the certificate served already. A pair rustls
    /// refuses (unparsable, or a key that does not match) leaves the current one in place.
    pub fn load(&self, cert_pem: &str, key_pem: &str) -> Result<bool> {
        if self.current_pem().as_deref() == Some(cert_pem) {
            return Ok(false);
        }
        let key = certified_key(cert_pem, key_pem)?;
        let loaded = Loaded {
            key: Arc::new(key),
            cert_pem: cert_pem.to_owned(),
        };
        match self.current.write() {
            Ok(mut guard) => *guard = Some(loaded),
            Err(poisoned) => *poisoned.into_inner() = Some(loaded),
        }
        Ok(true)
    }

    fn read(&self) -> Option<Loaded> {
        match self.current.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// A rustls server configuration (HTTP/1.1 and HTTP/2) presenting this certificate.
    pub fn server_config(&self) -> Result<rustls::ServerConfig> {
        let mut config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|source| Error::Tls {
                what: "protocol versions".to_owned(),
                source,
            })?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(self.clone()));
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(config)
    }
}

impl ResolvesServerCert for ServingCertificate {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.read().map(|loaded| loaded.key)
    }
}

/// The process-wide provider when one is installed, else aws-lc-rs (the one kube uses).
fn provider() -> Arc<CryptoProvider> {
    CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
}

fn certified_key(cert_pem: &str, key_pem: &str) -> Result<CertifiedKey> {
    let tls = |what: &str| {
        let what = what.to_owned();
        move |source| Error::Tls { what, source }
    };
    let chain = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|error| Error::Certificate {
            message: format!("the serving certificate is not PEM: {error}"),
        })?;
    if chain.is_empty() {
        return Err(Error::Certificate {
            message: "the serving certificate file holds no certificate".to_owned(),
        });
    }
    let key =
        PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|error| Error::Certificate {
            message: format!("the serving key is not a PEM private key: {error}"),
        })?;
    CertifiedKey::from_der(chain, key, &provider()).map_err(tls("the serving certificate and key"))
}
