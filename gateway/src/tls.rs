//! TLS for the API (rustls): a certificate chain and key from PEM files, and optionally the CA
//! whose client certificates are required (mutual TLS for township integrations).

use rustls::pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use std::path::Path;
use std::sync::Arc;

/// The API's TLS settings as read from the config's files.
#[derive(Clone)]
pub struct ApiTls {
    /// The server configuration built from them.
    pub server: Arc<ServerConfig>,
    /// Whether clients must show a certificate of `tls_client_ca`.
    pub mutual: bool,
    /// The server's own certificate (the `gateway outbox` commands pin it).
    pub leaf: CertificateDer<'static>,
}

impl std::fmt::Debug for ApiTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiTls")
            .field("mutual", &self.mutual)
            .finish()
    }
}

fn read(path: &Path, what: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{what}: cannot read `{}`: {e}", path.display()))
}

/// Builds the server configuration; each error names the file and the problem.
pub fn load(cert: &Path, key: &Path, client_ca: Option<&Path>) -> Result<ApiTls, String> {
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(&read(cert, "tls_cert")?)
            .collect::<Result<_, _>>()
            .map_err(|e| format!("tls_cert `{}`: not PEM certificates: {e}", cert.display()))?;
    if chain.is_empty() {
        return Err(format!(
            "tls_cert `{}` holds no certificate",
            cert.display()
        ));
    }
    let key_der = PrivateKeyDer::from_pem_slice(&read(key, "tls_key")?)
        .map_err(|e| format!("tls_key `{}`: no PEM private key: {e}", key.display()))?;
    let builder = ServerConfig::builder();
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for c in CertificateDer::pem_slice_iter(&read(ca, "tls_client_ca")?) {
                let c = c.map_err(|e| format!("tls_client_ca `{}`: {e}", ca.display()))?;
                roots
                    .add(c)
                    .map_err(|e| format!("tls_client_ca `{}`: {e}", ca.display()))?;
            }
            let verifier = WebPkiClientVerifier::builder(Arc::new(roots))
                .build()
                .map_err(|e| format!("tls_client_ca `{}`: {e}", ca.display()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let leaf = chain[0].clone();
    let mut server = builder
        .with_single_cert(chain, key_der)
        .map_err(|e| format!("tls_cert / tls_key do not make a certificate and its key: {e}"))?;
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(ApiTls {
        server: Arc::new(server),
        mutual: client_ca.is_some(),
        leaf,
    })
}

/// A client for the gateway's own API (the `gateway outbox` commands): it trusts exactly the
/// certificate in `tls_cert` — whatever name or CA it has, on whatever address it listens.
pub fn pinned_client(tls: &ApiTls) -> reqwest::Client {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let pinned = Pinned {
        leaf: tls.leaf.clone(),
        algorithms: provider.signature_verification_algorithms,
    };
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("default versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(pinned))
        .with_no_client_auth();
    reqwest::Client::builder()
        .use_preconfigured_tls(config)
        .build()
        .expect("HTTP client")
}

/// Accepts exactly one certificate, with a valid handshake signature.
#[derive(Debug)]
struct Pinned {
    leaf: CertificateDer<'static>,
    algorithms: rustls::crypto::WebPkiSupportedAlgorithms,
}

impl rustls::client::danger::ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _name: &rustls::pki_types::ServerName<'_>,
        _ocsp: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.leaf.as_ref() {
            Ok(rustls::client::danger::ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(
                "not the certificate of this gateway's tls_cert".into(),
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
