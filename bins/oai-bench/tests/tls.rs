//! `oai-bench` against an `https://` server whose CA is made in the test (a TLS-terminating proxy
//! on loopback in front of the scripted server): the run succeeds with `--ca_cert` or
//! `SSL_CERT_FILE`, ends in one line naming the certificate problem without either, succeeds with
//! `--insecure` (and says so), shows a client certificate to a server that requires one, and
//! refuses a broken file in one line with exit code 2 before any request.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Output;
use std::sync::Arc;
use tokenomics_testkit::cli::one_request;

const BIN: &str = env!("CARGO_BIN_EXE_oai-bench");

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::RootCertStore;
use tokenomics_testkit::{Script, ScriptedServer};
use tokio::net::{TcpListener, TcpStream};

struct Ca {
    cert: CertificateDer<'static>,
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

/// A certificate and its key, DER and PEM.
struct Leaf {
    cert: CertificateDer<'static>,
    cert_pem: String,
    key: Vec<u8>,
    key_pem: String,
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

    fn issue(&self, name: &str, purpose: ExtendedKeyUsagePurpose) -> Leaf {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec![name.to_string()]).unwrap();
        params.extended_key_usages = vec![purpose];
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Leaf {
            cert: cert.der().clone(),
            cert_pem: cert.pem(),
            key: key.serialize_der(),
            key_pem: key.serialize_pem(),
        }
    }
}

/// A TLS proxy on a free loopback port in front of `server`, presenting `leaf`; with
/// `client_ca`, it requires a client certificate signed by that CA. Returns its `https://` base.
async fn https_proxy(server: &ScriptedServer, leaf: &Leaf, client_ca: Option<&Ca>) -> String {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap();
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            roots.add(ca.cert.clone()).unwrap();
            builder.with_client_cert_verifier(
                WebPkiClientVerifier::builder_with_provider(roots.into(), provider)
                    .build()
                    .unwrap(),
            )
        }
    };
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf.key.clone()));
    let config = builder
        .with_single_cert(vec![leaf.cert.clone()], key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let backend: SocketAddr = server
        .api_base()
        .trim_start_matches("http://")
        .trim_end_matches("/v1")
        .parse()
        .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
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
    format!("https://127.0.0.1:{port}/v1")
}

/// Runs oai-bench (a burst of 1 streamed request, no warm-up) with `extra` flags and, when
/// given, `SSL_CERT_FILE`.
fn oai_bench(api_base: &str, out: &Path, extra: &[&str], ssl_cert_file: Option<&Path>) -> Output {
    let mut cmd = one_request(BIN.as_ref(), api_base, "test-model", out);
    cmd.arg("--stream")
        .args(extra)
        .env_remove("OPENAI_API_KEY")
        .env_remove("SSL_CERT_FILE")
        .env_remove("SSL_CERT_DIR");
    if let Some(path) = ssl_cert_file {
        cmd.env("SSL_CERT_FILE", path);
    }
    tokio::task::block_in_place(|| cmd.output().unwrap())
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn succeeded(o: &Output) {
    assert_eq!(
        o.status.code(),
        Some(0),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&o.stdout),
        stderr(o)
    );
}

/// The run ended with `code` and exactly one line on stderr, which is returned.
fn one_line(o: &Output, code: i32) -> String {
    let e = stderr(o);
    assert_eq!(o.status.code(), Some(code), "{e}");
    assert_eq!(e.trim_end().lines().count(), 1, "{e}");
    e
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_ca_is_trusted_from_the_flag_or_the_environment_and_named_when_missing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.json");
    let ca = Ca::new("oai-bench test CA");
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &ca.pem).unwrap();
    let server = ScriptedServer::uniform(Script::default()).await;
    let leaf = ca.issue("127.0.0.1", ExtendedKeyUsagePurpose::ServerAuth);
    let api_base = https_proxy(&server, &leaf, None).await;

    let o = oai_bench(
        &api_base,
        &out,
        &["--ca_cert", ca_file.to_str().unwrap()],
        None,
    );
    succeeded(&o);
    assert!(out.exists());
    assert!(!stderr(&o).contains("--insecure"), "{}", stderr(&o));
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert!(
        doc["metadata"].get("insecure_tls").is_none(),
        "{}",
        doc["metadata"]
    );

    let o = oai_bench(&api_base, &out, &[], Some(&ca_file));
    succeeded(&o);

    // Without the CA: the check before the run ends it, naming the certificate problem.
    let o = oai_bench(&api_base, &out, &[], None);
    let e = one_line(&o, 1);
    assert!(
        e.contains(&format!("cannot reach the server at {api_base}")),
        "{e}"
    );
    assert!(e.contains("invalid peer certificate: UnknownIssuer"), "{e}");
    // Without the check, every request fails as a `connect` error with the same cause.
    let o = oai_bench(&api_base, &out, &["--no_preflight"], None);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let text = doc.to_string();
    assert!(text.contains("\"connect\""), "{text}");
    assert!(text.contains("UnknownIssuer"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insecure_runs_against_an_unknown_ca_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.json");
    let ca = Ca::new("nobody's CA");
    let server = ScriptedServer::uniform(Script::default()).await;
    let leaf = ca.issue("elsewhere.example", ExtendedKeyUsagePurpose::ServerAuth);
    let api_base = https_proxy(&server, &leaf, None).await;
    let o = oai_bench(&api_base, &out, &["--insecure"], None);
    succeeded(&o);
    let e = stderr(&o);
    assert!(
        e.contains("oai-bench: warning: --insecure: the server's certificate is not checked"),
        "{e}"
    );
    // ... and the results say so too.
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(doc["metadata"]["insecure_tls"], true, "{}", doc["metadata"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_requires_a_client_certificate_gets_ours() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.json");
    let (server_ca, client_ca) = (Ca::new("server CA"), Ca::new("client CA"));
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &server_ca.pem).unwrap();
    let server = ScriptedServer::uniform(Script::default()).await;
    let leaf = server_ca.issue("127.0.0.1", ExtendedKeyUsagePurpose::ServerAuth);
    let api_base = https_proxy(&server, &leaf, Some(&client_ca)).await;
    let ours = client_ca.issue("oai-bench", ExtendedKeyUsagePurpose::ClientAuth);
    let (cert, key) = (dir.path().join("client.pem"), dir.path().join("client.key"));
    std::fs::write(&cert, &ours.cert_pem).unwrap();
    std::fs::write(&key, &ours.key_pem).unwrap();
    let ca = ["--ca_cert", ca_file.to_str().unwrap()];

    let mtls = [
        "--client_cert",
        cert.to_str().unwrap(),
        "--client_key",
        key.to_str().unwrap(),
    ];
    let o = oai_bench(&api_base, &out, &[&ca[..], &mtls[..]].concat(), None);
    succeeded(&o);

    let o = oai_bench(&api_base, &out, &ca, None);
    let e = stderr(&o);
    assert_ne!(o.status.code(), Some(0), "{e}");
    assert!(e.contains("CertificateRequired"), "{e}");
}

#[test]
fn broken_files_are_refused_in_one_line_before_any_request() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.json");
    let missing = dir.path().join("missing.pem");
    let notes = dir.path().join("notes.txt");
    std::fs::write(&notes, "hello").unwrap();
    // Nothing listens: had a request been sent, the error would be a connection failure.
    let api_base = tokenomics_testkit::refused_api_base().replace("http:", "https:");

    let run = |extra: &[&str], env: Option<&Path>| {
        let o = oai_bench(&api_base, &out, extra, env);
        one_line(&o, 2)
    };
    let e = run(&["--ca_cert", missing.to_str().unwrap()], None);
    assert!(
        e.starts_with(&format!(
            "oai-bench: error: --ca_cert {}: cannot read it: ",
            missing.display()
        )),
        "{e}"
    );
    let e = run(&[], Some(&notes));
    assert!(
        e.starts_with(&format!(
            "oai-bench: error: SSL_CERT_FILE {}: not a PEM file",
            notes.display()
        )),
        "{e}"
    );
    let e = run(&["--client_cert", notes.to_str().unwrap()], None);
    assert!(e.contains("--client_key"), "{e}");
    let e = run(
        &[
            "--client_cert",
            notes.to_str().unwrap(),
            "--client_key",
            notes.to_str().unwrap(),
        ],
        None,
    );
    assert!(
        e.contains(&format!(
            "--client_cert {}: not a PEM file",
            notes.display()
        )),
        "{e}"
    );
    assert!(!out.exists());
}
