//! TLS for health checks and webhooks: rustls with ring, the bundled Mozilla roots plus an
//! optional CA file, and a verifier that refuses what WebPKI refuses but carries the peer
//! certificate's expiry and issuer inside its error ([`Rejected`]), so an expired
//! certificate still tells us its expiry date and issuer (the reason these checks exist:
//! Let's Encrypt renewal fails silently). No request is ever sent over a connection that
//! failed verification. The same config serves reqwest (direct checks, webhooks) and
//! tokio-rustls (checks through an SSH channel).

use std::error::Error as StdError;
use std::sync::{Arc, OnceLock};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, OtherError, RootCertStore, SignatureScheme};

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

/// Why the peer's certificate was refused, with what it says: the error inside a refused
/// handshake's error (found again by [`rejection`]).
#[derive(Debug)]
pub struct Rejected {
    pub reason: String,
    pub cert: Option<CertInfo>,
}

impl std::fmt::Display for Rejected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.reason)
    }
}

impl StdError for Rejected {}

/// The refusal inside a failed handshake's error, however deeply reqwest, hyper or
/// tokio-rustls wrapped it.
pub fn rejection<'a>(err: &'a (dyn StdError + 'static)) -> Option<&'a Rejected> {
    super::error_chain(err).find_map(|e| match e.downcast_ref::<rustls::Error>() {
        Some(rustls::Error::InvalidCertificate(CertificateError::Other(other))) => {
            other.0.downcast_ref::<Rejected>()
        }
        _ => None,
    })
}

tokio::task_local! {
    /// The last certificate that passed verification in a task run by [`watching_peer`].
    static PEER: std::cell::RefCell<Option<CertInfo>>;
}

/// Runs `request`, and returns the last peer certificate verified while it ran: for an
/// https request through a proxy, whose response carries no `TlsInfo` (reqwest 0.13 leaves
/// it out of CONNECT tunnels, reqwest#2589). It works because the request connects in its
/// own task: with no idle pool, hyper-util's client connects inline, not in a spawned task.
pub async fn watching_peer<F: Future>(request: F) -> (F::Output, Option<CertInfo>) {
    let watched = async {
        let out = request.await;
        (out, PEER.with(|p| p.borrow_mut().take()))
    };
    PEER.scope(std::cell::RefCell::new(None), watched).await
}

/// WebPKI's verdict, refusing as it does, with the certificate's expiry and issuer kept
/// in the refusal (and, for [`watching_peer`], an accepted one's).
#[derive(Debug)]
struct Verifier {
    inner: Arc<WebPkiServerVerifier>,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verified = self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        );
        if verified.is_ok() {
            let _ = PEER.try_with(|p| *p.borrow_mut() = cert_info(end_entity));
        }
        verified.map_err(|e| {
            let rejected = Rejected {
                reason: describe(&e),
                cert: cert_info(end_entity),
            };
            rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(
                rejected,
            ))))
        })
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

/// A client config trusting the Mozilla roots and `ca_file`'s CAs, whose refusals carry
/// the certificate ([`Rejected`]). No ALPN: HTTP/1.1.
pub fn client(ca_file: Option<&str>) -> Result<rustls::ClientConfig, String> {
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
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS config: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Verifier { inner }))
        .with_no_client_auth();
    Ok(config)
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
