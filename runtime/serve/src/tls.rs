//! TLS on the `[app.http]` listener (`tls_cert`, `tls_key`, `tls_client_ca`): rustls on the
//! ring provider, HTTP/2 and HTTP/1.1 offered by ALPN.
//!
//! The files are read when the server binds, and a certificate and key that do not parse or
//! do not belong together are a load error naming the key. [`Tls::reload`] reads them
//! again and swaps the configuration new handshakes use; connections already open keep
//! the session they made (nothing is dropped). A reload that fails leaves the running
//! configuration as it was.

use std::path::Path;
use std::sync::{Arc, RwLock};

use membrane_core::error::{Error, Result};
use membrane_core::spec::TlsSpec;
use rustls::RootCertStore;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ServerConfig, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use tokio_rustls::TlsAcceptor;

/// The listener's TLS: its files and the configuration new handshakes use.
pub(crate) struct Tls {
    spec: TlsSpec,
    config: RwLock<Arc<ServerConfig>>,
}

impl Tls {
    /// Reads the certificate, key and client CAs of `spec`.
    pub(crate) fn load(spec: &TlsSpec) -> Result<Tls> {
        Ok(Tls {
            config: RwLock::new(Arc::new(config(spec)?)),
            spec: spec.clone(),
        })
    }

    /// An acceptor with the current configuration.
    pub(crate) fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(
            self.config
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        )
    }

    /// Reads the files again; new handshakes use them from now on. On an error the running
    /// configuration stays.
    pub(crate) fn reload(&self) -> Result<()> {
        let fresh = Arc::new(config(&self.spec)?);
        *self.config.write().unwrap_or_else(|p| p.into_inner()) = fresh;
        Ok(())
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A problem with one of the TLS files, at its manifest key.
fn bad(key: &str, path: &Path, what: impl std::fmt::Display) -> Error {
    Error::manifest(format!("app.http.{key} ({}): {what}", path.display()))
        .with_key(format!("app.http.{key}"))
}

/// The server configuration of `spec`'s files.
fn config(spec: &TlsSpec) -> Result<ServerConfig> {
    let provider = provider();
    let chain = CertificateDer::pem_file_iter(&spec.cert)
        .and_then(|certs| certs.collect::<std::result::Result<Vec<_>, _>>())
        .map_err(|e| {
            bad(
                "tls_cert",
                &spec.cert,
                format!("cannot read a PEM certificate chain: {e}"),
            )
        })?;
    if chain.is_empty() {
        return Err(bad(
            "tls_cert",
            &spec.cert,
            "no certificate in the file (expected PEM blocks `-----BEGIN CERTIFICATE-----`)",
        ));
    }
    let key = PrivateKeyDer::from_pem_file(&spec.key).map_err(|e| {
        bad(
            "tls_key",
            &spec.key,
            format!("cannot read a PEM private key (PKCS#8, PKCS#1 or SEC1): {e}"),
        )
    })?;
    let signing = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| bad("tls_key", &spec.key, format!("the key cannot sign: {e}")))?;
    let certified = CertifiedKey::new(chain, signing);
    certified.keys_match().map_err(|e| {
        bad(
            "tls_key",
            &spec.key,
            format!(
                "the key does not belong to the certificate in {} ({e}); give the key the certificate was issued for",
                spec.cert.display()
            ),
        )
    })?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::manifest(format!("TLS cannot be set up: {e}")))?;
    let builder = match &spec.client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            let cas = CertificateDer::pem_file_iter(ca)
                .and_then(|certs| certs.collect::<std::result::Result<Vec<_>, _>>())
                .map_err(|e| {
                    bad(
                        "tls_client_ca",
                        ca,
                        format!("cannot read PEM certificates: {e}"),
                    )
                })?;
            let (added, _) = roots.add_parsable_certificates(cas);
            if added == 0 {
                return Err(bad(
                    "tls_client_ca",
                    ca,
                    "no CA certificate in the file could be used",
                ));
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| bad("tls_client_ca", ca, e))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_cert_resolver(Arc::new(Single(Arc::new(certified))));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// Always the one certificate.
#[derive(Debug)]
struct Single(Arc<CertifiedKey>);

impl rustls::server::ResolvesServerCert for Single {
    fn resolve(&self, _: rustls::server::ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}
