//! TLS for `https://` bases: which server certificates are trusted, and which client certificate
//! is shown to a server that asks for one (mutual TLS).
//!
//! A server certificate is trusted when it chains to one of: the Mozilla roots bundled with the
//! binary (webpki-roots), the system's store (read once per process with rustls-native-certs;
//! where it cannot be read, or holds certificates rustls cannot use, those are skipped and counted
//! in [`TlsRoots::system_skipped`]), and the CAs a user adds ([`TlsOptions::add_roots`]).
//! [`TlsOptions::insecure`] accepts any certificate instead, while still checking that the
//! server holds the key of the certificate it presented.
//!
//! Files are read when the options are built, not when a connection opens, so a missing or
//! broken file is refused before any request, with a message naming it.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{PemObject, SectionKind};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, TrustAnchor, UnixTime};
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::{Error, Result};

/// What a client trusts and shows in TLS handshakes beyond its defaults (the bundled roots and
/// the system's store). Cheap to clone: certificates are shared, never re-read.
#[derive(Clone)]
pub struct TlsOptions {
    /// CAs trusted in addition to the default roots.
    added: RootCertStore,
    /// The certificate chain and key shown to a server that asks for a client certificate.
    identity: Option<Arc<CertifiedKey>>,
    /// Accept any server certificate (self-signed, expired, issued for another name, by an
    /// unknown CA). The handshake's signatures are still verified, so the server must hold the
    /// key of the certificate it shows, but nothing says whose key that is: the connection is
    /// encrypted, not authenticated.
    pub insecure: bool,
}

impl Default for TlsOptions {
    fn default() -> Self {
        Self {
            added: RootCertStore::empty(),
            identity: None,
            insecure: false,
        }
    }
}

impl std::fmt::Debug for TlsOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsOptions")
            .field("added_roots", &self.added.len())
            .field("client_certificate", &self.identity.is_some())
            .field("insecure", &self.insecure)
            .finish()
    }
}

impl TlsOptions {
    /// Trusts the CA certificates `certs` (e.g. from [`read_certificates`]) in addition to the
    /// default roots. Returns how many were added; fails, adding none, when one cannot be a trust
    /// anchor (the message counts from 1 in the order given).
    pub fn add_roots(&mut self, certs: &[CertificateDer<'static>]) -> Result<usize> {
        let mut store = RootCertStore::empty();
        for (i, cert) in certs.iter().enumerate() {
            store.add(cert.clone()).map_err(|e| {
                Error::Config(format!(
                    "certificate {} of {} cannot be used as a CA: {e}",
                    i + 1,
                    certs.len()
                ))
            })?;
        }
        self.added.roots.extend(store.roots);
        Ok(certs.len())
    }

    /// Shows the certificate `chain` (the client's own certificate first) with `key` to servers
    /// that ask for a client certificate. Fails when the chain is empty, the key is of a kind
    /// rustls cannot sign with, or it is not the key of the first certificate.
    pub fn set_client_identity(
        &mut self,
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Result<()> {
        if chain.is_empty() {
            return Err(Error::Config("no client certificate given".into()));
        }
        let provider = provider();
        let certified = CertifiedKey::from_der(chain, key, &provider).map_err(|e| match e {
            rustls::Error::InconsistentKeys(_) => {
                Error::Config("the private key does not match the client certificate".into())
            }
            e => Error::Config(format!("the private key cannot be used: {e}")),
        })?;
        self.identity = Some(Arc::new(certified));
        Ok(())
    }

    /// How many CA certificates were added to the default roots.
    pub fn added_roots(&self) -> usize {
        self.added.len()
    }

    /// Whether a client certificate is set.
    pub fn has_client_identity(&self) -> bool {
        self.identity.is_some()
    }
}

/// How many trust anchors a client's TLS set-up holds, by where they came from (for a debug
/// note: a server certificate that is refused although "the system trusts it" is explained by a
/// `system` of 0). All zero with [`TlsOptions::insecure`], which trusts no anchor.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TlsRoots {
    /// The Mozilla roots bundled with the binary.
    pub bundled: usize,
    /// Read from the system's store (or from `SSL_CERT_FILE` / `SSL_CERT_DIR` when set, which
    /// take the place of the system's store, as they do for OpenSSL).
    pub system: usize,
    /// Certificates of the system's store that could not be read or used (skipped).
    pub system_skipped: usize,
    /// Added with [`TlsOptions::add_roots`].
    pub added: usize,
}

/// Reads the certificates of a PEM file (every `CERTIFICATE` block, in order). The error names
/// the file and says what is wrong: it cannot be read, it is not PEM, or it holds no certificate.
pub fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let sections = read_pem(path)?;
    let certs: Vec<CertificateDer<'static>> = sections
        .iter()
        .filter(|(kind, _)| *kind == SectionKind::Certificate)
        .map(|(_, der)| CertificateDer::from(der.clone()))
        .collect();
    if certs.is_empty() {
        return Err(bad_file(
            path,
            &format!(
                "no certificate in it (it holds {}; expected \"-----BEGIN CERTIFICATE-----\")",
                holds(&sections)
            ),
        ));
    }
    Ok(certs)
}

/// Reads the first private key of a PEM file (PKCS#8 `PRIVATE KEY`, `RSA PRIVATE KEY` or
/// `EC PRIVATE KEY`). The error names the file and says what is wrong.
pub fn read_private_key(path: &Path) -> Result<PrivateKeyDer<'static>> {
    let text = read_file(path)?;
    // An encrypted key is a block rustls does not know: say so rather than "no key".
    if memchr::memmem::find(&text, b"-----BEGIN ENCRYPTED PRIVATE KEY-----").is_some() {
        return Err(bad_file(
            path,
            "the private key is encrypted; decrypt it first (openssl pkey -in KEY -out PLAIN)",
        ));
    }
    let sections = pem_sections(path, &text)?;
    sections
        .iter()
        .find_map(|(kind, der)| PrivateKeyDer::from_pem(*kind, der.clone()))
        .ok_or_else(|| {
            bad_file(
                path,
                &format!(
                    "no private key in it (it holds {}; expected \"-----BEGIN PRIVATE KEY-----\")",
                    holds(&sections)
                ),
            )
        })
}

fn bad_file(path: &Path, problem: &str) -> Error {
    Error::Config(format!("{}: {problem}", path.display()))
}

fn read_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| bad_file(path, &format!("cannot read it: {e}")))
}

fn read_pem(path: &Path) -> Result<Vec<(SectionKind, Vec<u8>)>> {
    let text = read_file(path)?;
    pem_sections(path, &text)
}

/// The PEM blocks of `text` that rustls knows. A file without any `-----BEGIN` line is "not
/// PEM" (a DER file, say); a broken block is named by the parser's message.
fn pem_sections(path: &Path, text: &[u8]) -> Result<Vec<(SectionKind, Vec<u8>)>> {
    if memchr::memmem::find(text, b"-----BEGIN ").is_none() {
        return Err(bad_file(
            path,
            "not a PEM file (no \"-----BEGIN …-----\" line; a DER file converts with `openssl x509 -inform der`)",
        ));
    }
    <(SectionKind, Vec<u8>)>::pem_slice_iter(text)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| bad_file(path, &format!("not valid PEM: {e}")))
}

/// What PEM blocks a file holds, for a message: "PRIVATE KEY", "CERTIFICATE and PRIVATE KEY".
fn holds(sections: &[(SectionKind, Vec<u8>)]) -> String {
    let mut kinds: Vec<&'static str> = Vec::new();
    for (kind, _) in sections {
        let name = match kind {
            SectionKind::Certificate => "CERTIFICATE",
            SectionKind::PublicKey => "PUBLIC KEY",
            SectionKind::RsaPrivateKey => "RSA PRIVATE KEY",
            SectionKind::PrivateKey => "PRIVATE KEY",
            SectionKind::EcPrivateKey => "EC PRIVATE KEY",
            SectionKind::Crl => "X509 CRL",
            SectionKind::Csr => "CERTIFICATE REQUEST",
            _ => "another kind of block",
        };
        if !kinds.contains(&name) {
            kinds.push(name);
        }
    }
    match kinds.as_slice() {
        [] => "no block rustls knows".to_string(),
        [one] => one.to_string(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The system's trust anchors, read once per process (the store does not change during a run,
/// and reading it parses a few hundred kilobytes).
struct SystemRoots {
    anchors: Vec<TrustAnchor<'static>>,
    skipped: usize,
}

fn system_roots() -> &'static SystemRoots {
    static ROOTS: OnceLock<SystemRoots> = OnceLock::new();
    ROOTS.get_or_init(|| {
        // Failures are not errors: a machine without a system store still has the bundled roots.
        let found = rustls_native_certs::load_native_certs();
        let mut store = RootCertStore::empty();
        let (_, unusable) = store.add_parsable_certificates(found.certs);
        SystemRoots {
            anchors: store.roots,
            skipped: unusable + found.errors.len(),
        }
    })
}

/// The connector for `options`, and the count of its trust anchors by source.
pub(crate) fn connector(options: &TlsOptions) -> Result<(tokio_rustls::TlsConnector, TlsRoots)> {
    let provider = provider();
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Config(format!("TLS set-up failed: {e}")))?;
    let (builder, roots) = if options.insecure {
        let verifier = Arc::new(AcceptAnyCertificate(provider));
        let builder = builder
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        (builder, TlsRoots::default())
    } else {
        let mut store = RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        let system = system_roots();
        store.roots.extend(system.anchors.iter().cloned());
        store.roots.extend(options.added.roots.iter().cloned());
        let roots = TlsRoots {
            bundled: webpki_roots::TLS_SERVER_ROOTS.len(),
            system: system.anchors.len(),
            system_skipped: system.skipped,
            added: options.added.len(),
        };
        (builder.with_root_certificates(store), roots)
    };
    let mut config = match &options.identity {
        Some(identity) => {
            builder.with_client_cert_resolver(Arc::new(SingleCertAndKey::from(identity.clone())))
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok((tokio_rustls::TlsConnector::from(Arc::new(config)), roots))
}

/// `--insecure`: any certificate is accepted, but the handshake's signatures are verified with
/// the provider's algorithms, so the peer must hold the key of the certificate it presented.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A TLS handshake failure as the `connect` error's message: rustls's own words ("invalid peer
/// certificate: UnknownIssuer"), with what they mean when the certificate was refused; for an
/// unknown issuer, also which CAs were trusted (`roots`), since "the system trusts it" is the
/// usual surprise.
pub(crate) fn handshake_failure(e: &std::io::Error, roots: Option<TlsRoots>) -> String {
    let cause = rustls_error(e);
    let mut hint = cause.map_or("", hint).to_string();
    if let (
        Some(rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer)),
        Some(r),
    ) = (cause, roots)
    {
        hint = format!(
            " (the server's certificate is not signed by a CA this client trusts: {} bundled, {} from the system's store, {} added)",
            r.bundled, r.system, r.added
        );
    }
    format!("TLS handshake failed: {e}{hint}")
}

/// The TLS failure among `e`'s causes, as a `connect` error's message; `None` when TLS is not
/// what failed. For a connection that ended after its handshake: the server refused the client's
/// certificate (or the lack of one).
pub(crate) fn failure_in(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut cause = Some(e);
    while let Some(err) = cause {
        if let Some(tls) = rustls_error(err) {
            return Some(format!(
                "TLS failed after the handshake: {tls}{}",
                hint(tls)
            ));
        }
        cause = err.source();
    }
    None
}

/// The rustls error `e` is, or that an I/O error wraps (`io::Error::source` skips the wrapped
/// error itself, so it is looked at here).
fn rustls_error<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    e.downcast_ref::<rustls::Error>().or_else(|| {
        e.downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    })
}

/// What a rustls error means for the user, when that is not plain from its words.
fn hint(e: &rustls::Error) -> &'static str {
    use rustls::{AlertDescription as A, CertificateError as C, Error as E};
    match e {
        E::InvalidCertificate(C::UnknownIssuer) => {
            " (the server's certificate is not signed by a CA this client trusts)"
        }
        E::InvalidCertificate(C::Expired | C::ExpiredContext { .. }) => {
            " (the server's certificate has expired)"
        }
        E::AlertReceived(A::CertificateRequired) => " (the server requires a client certificate)",
        E::AlertReceived(A::UnknownCA | A::BadCertificate) => {
            " (the server refused the client certificate)"
        }
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_a_file_holds_is_named() {
        let key = (SectionKind::PrivateKey, Vec::new());
        let cert = (SectionKind::Certificate, Vec::new());
        assert_eq!(holds(&[]), "no block rustls knows");
        assert_eq!(holds(std::slice::from_ref(&key)), "PRIVATE KEY");
        assert_eq!(
            holds(&[cert.clone(), key.clone(), cert]),
            "CERTIFICATE and PRIVATE KEY"
        );
    }

    #[test]
    fn the_options_never_print_a_key() {
        let o = TlsOptions {
            insecure: true,
            ..TlsOptions::default()
        };
        assert_eq!(
            format!("{o:?}"),
            "TlsOptions { added_roots: 0, client_certificate: false, insecure: true }"
        );
    }
}
