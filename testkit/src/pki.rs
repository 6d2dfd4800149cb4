//! A certificate authority made at test time, and a server certificate it signs for `localhost` and
//! `127.0.0.1`: wss tests need no file and no network.

use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A test CA and a server configuration whose certificate it signed.
pub struct TestPki {
    /// The CA certificate (DER), to trust on the client.
    pub ca_der: Vec<u8>,
    /// The CA certificate (PEM).
    pub ca_pem: String,
    /// The server side of TLS.
    pub server: Arc<rustls::ServerConfig>,
}

/// Error making the test PKI (rcgen or rustls).
pub type PkiError = Box<dyn std::error::Error + Send + Sync>;

impl TestPki {
    /// Generates a CA named `name` and a server certificate signed by it.
    pub fn generate(name: &str) -> Result<Self, PkiError> {
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(DnType::CommonName, name);
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate()?)?;

        let leaf_params = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])?;
        let leaf_key = KeyPair::generate()?;
        let leaf = leaf_params.signed_by(&leaf_key, &ca)?;

        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
        let chain: Vec<CertificateDer<'static>> = vec![leaf.der().clone(), ca.der().clone()];
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let server = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(chain, key)?;
        Ok(Self { ca_der: ca.der().to_vec(), ca_pem: ca.pem(), server: Arc::new(server) })
    }
}
