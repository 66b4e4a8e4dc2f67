//! The console's TLS: rustls with the ring provider, and the certificate
//! it presents. The operator supplies one (`[console] cert` and `key`,
//! PEM), or uses the self-signed one `dxmesh init` makes for the node
//! (ECDSA P-256, for `localhost`, `127.0.0.1` and the address given),
//! which browsers and clients then trust by its fingerprint or as their
//! own root.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Why the console's TLS cannot be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A certificate or key file cannot be read or written, or is not PEM.
    #[error("{path}: {message}", path = .path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The certificate and key do not make a TLS configuration.
    #[error("the console certificate: {0}")]
    Config(String),
}

/// How long a self-signed console certificate is valid, in years from
/// the day it is made (the operator guide says how to renew it).
pub const SELF_SIGNED_YEARS: u16 = 2;

/// Makes a self-signed certificate for `names` (host names or IP
/// addresses), valid from today for [`SELF_SIGNED_YEARS`], and writes it
/// and its key (mode 0600) as PEM.
pub fn make_self_signed(cert: &Path, key: &Path, names: &[String]) -> Result<(), TlsError> {
    let config = |e: rcgen::Error| TlsError::Config(e.to_string());
    let mut params = rcgen::CertificateParams::new(names.to_vec()).map_err(config)?;
    let today = crate::base::clock::now().date();
    let (y, m, d) = (i32::from(today.year()), today.month(), today.day().min(28));
    params.not_before = rcgen::date_time_ymd(y, m, d);
    params.not_after = rcgen::date_time_ymd(y + i32::from(SELF_SIGNED_YEARS), m, d);
    let key_pair = rcgen::KeyPair::generate().map_err(config)?;
    let made = params.self_signed(&key_pair).map_err(config)?;
    for (path, text, mode) in [
        (cert, made.pem(), 0o644),
        (key, key_pair.serialize_pem(), 0o600),
    ] {
        let err = |e: std::io::Error| TlsError::File {
            path: path.to_path_buf(),
            message: e.to_string(),
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(err)?;
        }
        crate::base::fsutil::write_atomic(path, text.as_bytes(), mode).map_err(err)?;
    }
    Ok(())
}

/// The server configuration from a PEM certificate chain and key.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let file_err = |path: &Path, e: &dyn std::fmt::Display| TlsError::File {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| file_err(cert, &e))?
        .collect::<Result<_, _>>()
        .map_err(|e| file_err(cert, &e))?;
    if chain.is_empty() {
        return Err(file_err(cert, &"no certificate in the file"));
    }
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| file_err(key, &e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key_der)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_made_certificate_serves_and_a_broken_one_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = (dir.path().join("c/cert.pem"), dir.path().join("c/key.pem"));
        make_self_signed(&cert, &key, &["localhost".into(), "127.0.0.1".into()]).unwrap();
        server_config(&cert, &key).unwrap();
        std::fs::write(&cert, "not pem").unwrap();
        let e = server_config(&cert, &key).unwrap_err();
        assert!(e.to_string().contains("cert.pem"), "{e}");
    }
}
