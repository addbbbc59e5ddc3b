//! TLS as deployments have it, against a loopback TLS server whose CA is made in the test: a
//! private CA is trusted once added and refused (as a `connect` error naming the certificate
//! problem) without it; `insecure` accepts any certificate but still checks the handshake's
//! signature; a server that requires a client certificate accepts ours and refuses a client
//! without one; and every broken file is refused with a message naming it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls::RootCertStore;
use tokenomics_client::{
    read_certificates, read_private_key, Client, ClientConfig, Error, TlsOptions,
};
use tokenomics_testkit::{Script, ScriptedServer};
use tokio::net::{TcpListener, TcpStream};

/// A certificate authority made for one test.
struct Ca {
    cert: CertificateDer<'static>,
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl Ca {
    fn new(name: &str) -> Self {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let cert = params.self_signed(&key).unwrap();
        Self {
            cert: cert.der().clone(),
            pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A certificate for `names` signed by this CA, for a server or (`client`) a client.
    fn issue(&self, names: &[&str], client: bool) -> Leaf {
        let key = KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names).unwrap();
        params.extended_key_usages = vec![if client {
            ExtendedKeyUsagePurpose::ClientAuth
        } else {
            ExtendedKeyUsagePurpose::ServerAuth
        }];
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Leaf {
            cert: cert.der().clone(),
            cert_pem: cert.pem(),
            key_der: key.serialize_der(),
            key_pem: key.serialize_pem(),
        }
    }
}

struct Leaf {
    cert: CertificateDer<'static>,
    cert_pem: String,
    key_der: Vec<u8>,
    key_pem: String,
}

impl Leaf {
    fn key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone()))
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A server config presenting `leaf`; with `client_ca`, it requires a client certificate
/// signed by that CA.
fn server_config(leaf: &Leaf, client_ca: Option<&Ca>) -> Arc<rustls::ServerConfig> {
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap();
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            roots.add(ca.cert.clone()).unwrap();
            let verifier = WebPkiClientVerifier::builder_with_provider(roots.into(), provider())
                .build()
                .unwrap();
            builder.with_client_cert_verifier(verifier)
        }
    };
    let cfg = builder
        .with_single_cert(vec![leaf.cert.clone()], leaf.key())
        .unwrap();
    Arc::new(cfg)
}

/// A TLS-terminating proxy on a free loopback port in front of `backend` (plain HTTP).
async fn tls_proxy(backend: &str, config: Arc<rustls::ServerConfig>) -> SocketAddr {
    let backend: SocketAddr = backend
        .trim_start_matches("http://")
        .trim_end_matches("/v1")
        .parse()
        .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let Ok(mut up) = TcpStream::connect(backend).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut up).await;
            });
        }
    });
    addr
}

/// A scripted server behind a TLS proxy presenting `config`'s certificate.
async fn https_server(config: Arc<rustls::ServerConfig>) -> (ScriptedServer, String) {
    let server = ScriptedServer::uniform(Script::default()).await;
    let addr = tls_proxy(&server.api_base(), config).await;
    (server, format!("https://127.0.0.1:{}/v1", addr.port()))
}

fn client(api_base: &str, tls: TlsOptions) -> Client {
    let mut cfg = ClientConfig::new(api_base);
    cfg.tls = tls;
    Client::new(cfg).unwrap()
}

fn trusting(ca: &Ca) -> TlsOptions {
    let mut tls = TlsOptions::default();
    assert_eq!(tls.add_roots(std::slice::from_ref(&ca.cert)).unwrap(), 1);
    tls
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_ca_is_trusted_once_added_and_refused_without() {
    let ca = Ca::new("Tokenomics test CA");
    let leaf = ca.issue(&["127.0.0.1", "localhost"], false);
    let (_server, api_base) = https_server(server_config(&leaf, None)).await;

    let trusted = client(&api_base, trusting(&ca));
    assert_eq!(trusted.models().await.unwrap(), ["test-model"]);
    let roots = trusted.tls_roots().unwrap();
    assert_eq!(roots.added, 1);
    assert!(roots.bundled > 100, "{roots:?}");

    // The CA read from a PEM file, as --ca_cert gives it (a bundle: another CA first).
    let dir = tempfile::tempdir().unwrap();
    let other = Ca::new("Another CA");
    let bundle = write(dir.path(), "ca.pem", &format!("{}{}", other.pem, ca.pem));
    let mut tls = TlsOptions::default();
    assert_eq!(
        tls.add_roots(&read_certificates(&bundle).unwrap()).unwrap(),
        2
    );
    assert!(client(&api_base, tls).models().await.is_ok());

    let e = client(&api_base, TlsOptions::default())
        .models()
        .await
        .unwrap_err();
    assert_eq!(e.kind(), "connect", "{e}");
    let text = e.to_string();
    assert!(
        text.contains("invalid peer certificate: UnknownIssuer"),
        "{text}"
    );
    assert!(
        text.contains("not signed by a CA this client trusts"),
        "{text}"
    );
    assert!(text.contains("from the system's store, 0 added)"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_self_signed_server_certificate_can_be_its_own_ca() {
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let leaf = Leaf {
        cert: cert.der().clone(),
        cert_pem: cert.pem(),
        key_der: key.serialize_der(),
        key_pem: key.serialize_pem(),
    };
    let (_server, api_base) = https_server(server_config(&leaf, None)).await;
    let mut tls = TlsOptions::default();
    tls.add_roots(std::slice::from_ref(&leaf.cert)).unwrap();
    assert!(client(&api_base, tls).models().await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insecure_accepts_any_certificate_but_checks_the_handshake_signature() {
    let ca = Ca::new("Unknown CA");
    // Issued for another name, by a CA nobody trusts.
    let leaf = ca.issue(&["elsewhere.example"], false);
    let (_server, api_base) = https_server(server_config(&leaf, None)).await;
    let mut insecure = TlsOptions::default();
    insecure.insecure = true;
    assert!(client(&api_base, insecure.clone()).models().await.is_ok());
    let e = client(&api_base, trusting(&ca)).models().await.unwrap_err();
    assert!(e.to_string().contains("not valid for name"), "{e}");

    // A server showing a certificate whose key it does not hold: its handshake signature is
    // made with another key, and even `insecure` refuses it.
    let impostor = ca.issue(&["127.0.0.1"], false);
    let signing_key = provider()
        .key_provider
        .load_private_key(impostor.key())
        .unwrap();
    let stolen = CertifiedKey::new(vec![leaf.cert.clone()], signing_key);
    let cfg = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(SingleCertAndKey::from(stolen)));
    let (_server, api_base) = https_server(Arc::new(cfg)).await;
    let e = client(&api_base, insecure).models().await.unwrap_err();
    assert_eq!(e.kind(), "connect", "{e}");
    assert!(e.to_string().contains("BadSignature"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_requires_a_client_certificate_accepts_ours_only() {
    let server_ca = Ca::new("Server CA");
    let client_ca = Ca::new("Client CA");
    let leaf = server_ca.issue(&["127.0.0.1"], false);
    let (_server, api_base) = https_server(server_config(&leaf, Some(&client_ca))).await;

    let dir = tempfile::tempdir().unwrap();
    let ours = client_ca.issue(&["tokenomics-client"], true);
    let cert = write(dir.path(), "client.pem", &ours.cert_pem);
    let key = write(dir.path(), "client.key", &ours.key_pem);
    let mut tls = trusting(&server_ca);
    tls.set_client_identity(
        read_certificates(&cert).unwrap(),
        read_private_key(&key).unwrap(),
    )
    .unwrap();
    assert!(tls.has_client_identity());
    assert_eq!(
        client(&api_base, tls).models().await.unwrap(),
        ["test-model"]
    );

    // Without a client certificate, and with one from a CA the server does not trust.
    let e = client(&api_base, trusting(&server_ca))
        .models()
        .await
        .unwrap_err();
    assert_eq!(e.kind(), "connect", "{e}");
    assert!(
        e.to_string().contains(
            "received fatal alert: CertificateRequired (the server requires a client certificate)"
        ),
        "{e}"
    );
    let stranger = server_ca.issue(&["tokenomics-client"], true);
    let mut tls = trusting(&server_ca);
    tls.set_client_identity(vec![stranger.cert.clone()], stranger.key())
        .unwrap();
    let e = client(&api_base, tls).models().await.unwrap_err();
    assert_eq!(e.kind(), "connect", "{e}");
    assert!(e.to_string().contains("received fatal alert"), "{e}");
}

#[test]
fn broken_files_are_refused_naming_the_file_and_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("CA");
    let leaf = ca.issue(&["127.0.0.1"], true);
    let message = |e: Error| match e {
        Error::Config(m) => m,
        other => panic!("not a configuration error: {other}"),
    };

    let missing = dir.path().join("missing.pem");
    let m = message(read_certificates(&missing).unwrap_err());
    assert!(
        m.starts_with(&format!("{}: cannot read it: ", missing.display())),
        "{m}"
    );

    let der = dir.path().join("ca.der");
    std::fs::write(&der, ca.cert.as_ref()).unwrap();
    let m = message(read_certificates(&der).unwrap_err());
    assert!(m.contains("ca.der: not a PEM file"), "{m}");

    let key = write(dir.path(), "key.pem", &leaf.key_pem);
    let m = message(read_certificates(&key).unwrap_err());
    assert!(
        m.contains("key.pem: no certificate in it (it holds PRIVATE KEY;"),
        "{m}"
    );

    let cert = write(dir.path(), "cert.pem", &leaf.cert_pem);
    let m = message(read_private_key(&cert).unwrap_err());
    assert!(
        m.contains("cert.pem: no private key in it (it holds CERTIFICATE;"),
        "{m}"
    );

    let broken = write(
        dir.path(),
        "broken.pem",
        "-----BEGIN CERTIFICATE-----\nnot base64 at all!\n",
    );
    let m = message(read_certificates(&broken).unwrap_err());
    assert!(m.contains("broken.pem: not valid PEM: "), "{m}");

    let encrypted = write(
        dir.path(),
        "enc.key",
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMAA=\n-----END ENCRYPTED PRIVATE KEY-----\n",
    );
    let m = message(read_private_key(&encrypted).unwrap_err());
    assert!(m.contains("enc.key: the private key is encrypted"), "{m}");

    // A key that is not the certificate's.
    let other = ca.issue(&["127.0.0.1"], true);
    let mut tls = TlsOptions::default();
    let m = message(
        tls.set_client_identity(vec![leaf.cert.clone()], other.key())
            .unwrap_err(),
    );
    assert_eq!(m, "the private key does not match the client certificate");
    assert!(!tls.has_client_identity());

    // A certificate that is not a certificate at all cannot be a CA; nothing is added.
    let junk = CertificateDer::from(vec![0x30, 0x03, 0x02, 0x01, 0x01]);
    let m = message(tls.add_roots(&[ca.cert.clone(), junk]).unwrap_err());
    assert!(
        m.starts_with("certificate 2 of 2 cannot be used as a CA: "),
        "{m}"
    );
    assert_eq!(tls.added_roots(), 0);
}
