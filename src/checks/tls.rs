//! TLS for health checks: rustls with ring, the bundled Mozilla roots plus an optional CA
//! file, and a verifier that *records* a verification failure instead of aborting the
//! handshake, so an expired certificate still tells us its expiry date and issuer (the
//! reason these checks exist: Let's Encrypt renewal fails silently). The check then
//! reports the failure and sends no request over the unverified connection.

use std::sync::{Arc, Mutex, OnceLock};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};

/// What the peer's certificate says, read from the leaf.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    pub not_after: i64,
    pub issuer: String,
}

/// ring explicitly, rather than a process-wide default provider, so the checks work the
/// same from the console, the CLI and tests whatever else installed (or did not).
fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}

fn mozilla_roots() -> RootCertStore {
    static ROOTS: OnceLock<RootCertStore> = OnceLock::new();
    ROOTS
        .get_or_init(|| RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        })
        .clone()
}

/// The verifier of one connection: the real WebPKI verdict, kept for the check to read.
#[derive(Debug)]
pub struct Recording {
    inner: Arc<WebPkiServerVerifier>,
    pub error: Mutex<Option<String>>,
}

impl ServerCertVerifier for Recording {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Err(e) = self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) && let Ok(mut slot) = self.error.lock()
        {
            *slot = Some(describe(&e));
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

fn describe(e: &rustls::Error) -> String {
    use rustls::CertificateError as C;
    match e {
        rustls::Error::InvalidCertificate(C::Expired | C::ExpiredContext { .. }) => {
            "certificate expired".into()
        }
        rustls::Error::InvalidCertificate(C::NotValidYet | C::NotValidYetContext { .. }) => {
            "certificate not valid yet".into()
        }
        rustls::Error::InvalidCertificate(C::UnknownIssuer) => {
            "certificate issuer unknown (not a trusted CA)".into()
        }
        rustls::Error::InvalidCertificate(
            C::NotValidForName | C::NotValidForNameContext { .. },
        ) => "certificate not valid for this name".into(),
        other => format!("certificate rejected: {other}"),
    }
}

/// A client config whose verifier records instead of refusing; `ca_file` adds CAs.
pub fn client(ca_file: Option<&str>) -> Result<(rustls::ClientConfig, Arc<Recording>), String> {
    let mut roots = mozilla_roots();
    if let Some(path) = ca_file {
        let certs =
            CertificateDer::pem_file_iter(path).map_err(|e| format!("ca_file {path}: {e}"))?;
        for cert in certs {
            let cert = cert.map_err(|e| format!("ca_file {path}: {e}"))?;
            roots
                .add(cert)
                .map_err(|e| format!("ca_file {path}: {e}"))?;
        }
    }
    let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
        .build()
        .map_err(|e| format!("TLS verifier: {e}"))?;
    let recording = Arc::new(Recording {
        inner,
        error: Mutex::new(None),
    });
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS config: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(recording.clone())
        .with_no_client_auth();
    Ok((config, recording))
}

/// Expiry and issuer of a DER certificate; the issuer as its CN, else its O, else the
/// whole distinguished name.
pub fn cert_info(der: &[u8]) -> Option<CertInfo> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let issuer = cert.issuer();
    let name = issuer
        .iter_common_name()
        .next()
        .or_else(|| issuer.iter_organization().next())
        .and_then(|a| a.as_str().ok())
        .map(str::to_string)
        .unwrap_or_else(|| issuer.to_string());
    Some(CertInfo {
        not_after: cert.validity().not_after.timestamp(),
        issuer: name,
    })
}
