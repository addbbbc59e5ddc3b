//! The flags that say which server to measure, and the `--simulate` start-up.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokenomics_client::{Client, Clock, Error as ClientError, TlsOptions};
use tokenomics_stats::{CostBasis, Simulated};
use tokio::time::Instant;

use crate::{values, Failure};

/// The flags that say which server to measure and how to talk to it, shared by `oai-bench` and
/// `embed-bench` (flattened into each one's arguments with `#[command(flatten)]`).
///
/// Each field's doc comment is also its `--help` text; the book lists them with the binary's
/// other flags (`docs/src/benchmark.md`, `docs/src/embed-bench.md`). Durations are given in
/// seconds and checked by [`values::positive_seconds`] (above 0, at most a year). The struct
/// holds the checked values; [`ServerArgs::connect`] turns them into a [`Target`].
#[derive(Debug, Clone, clap::Args)]
pub struct ServerArgs {
    /// Base URL of the OpenAI-compatible API; routes are appended to it. Several, comma-separated: replicas of the same model without a load balancer, requests spread over them by --balance and every statistic also reported per endpoint.
    #[arg(
        long = "api_base",
        visible_alias = "api-base",
        default_value = "http://localhost:8000/v1"
    )]
    pub api_base: String,
    /// With several --api_base URLs, which one a request goes to: round_robin (each in turn) or least_loaded (the one with the fewest requests in flight).
    #[arg(long, default_value = "round_robin", value_parser = values::balance)]
    pub balance: tokenomics_client::Balance,
    /// Per-request timeout in seconds, from send to the last byte (at most a year).
    #[arg(long, default_value = "600", value_parser = values::positive_seconds)]
    pub timeout: Duration,
    /// Fail a request whose response goes silent for this many seconds (a stalled stream) [default: no limit].
    #[arg(long = "idle_timeout", visible_alias = "idle-timeout", value_parser = values::positive_seconds)]
    pub idle_timeout: Option<Duration>,
    /// API key sent as "Authorization: Bearer"; read from OPENAI_API_KEY when not given.
    #[arg(
        long = "api_key",
        visible_alias = "api-key",
        env = "OPENAI_API_KEY",
        hide_env_values = true
    )]
    pub api_key: Option<String>,
    /// Benchmark a built-in simulated server instead (a preset such as h100-llama-3.1-8b; see `oai-sim --list`).
    #[arg(long)]
    pub simulate: Option<String>,
    /// With --simulate: model seconds per real second (2 runs the simulation twice as fast).
    #[arg(
        long = "sim_time_scale",
        visible_alias = "sim-time-scale",
        default_value = "1",
        value_parser = values::time_scale
    )]
    pub sim_time_scale: f64,
    /// Skip the check before the run (the server answers, lists the model, accepts a one-token request).
    #[arg(long = "no_preflight", visible_alias = "no-preflight")]
    pub no_preflight: bool,
    /// Local addresses to open connections from, in turn: a list or IPv4 ranges, e.g. 127.0.0.2-127.0.0.9 (each address has its own ephemeral ports, so more connections fit) [default: the kernel's choice].
    #[arg(
        long = "source_ips",
        visible_alias = "source-ips",
        value_parser = values::source_ips
    )]
    pub source_ips: Option<values::SourceIps>,
    /// Also trust the CA certificates in this PEM file (one or more), besides the bundled roots and the system's store; SSL_CERT_FILE, when set, is trusted as well (both are added).
    #[arg(long = "ca_cert", visible_alias = "ca-cert", value_name = "PATH")]
    pub ca_cert: Option<PathBuf>,
    /// Client certificate (PEM, the client's own certificate first) for a server that requires mutual TLS; needs --client_key.
    #[arg(
        long = "client_cert",
        visible_alias = "client-cert",
        value_name = "PATH",
        requires = "client_key"
    )]
    pub client_cert: Option<PathBuf>,
    /// The client certificate's private key (PEM, not encrypted); needs --client_cert.
    #[arg(
        long = "client_key",
        visible_alias = "client-key",
        value_name = "PATH",
        requires = "client_cert"
    )]
    pub client_key: Option<PathBuf>,
    /// Accept any server certificate (self-signed, expired, another name): encrypted but not authenticated; a warning is printed and the results record it.
    #[arg(long)]
    pub insecure: bool,
    /// Before the check, wait up to this many seconds for the server to answer: GET /health at its origin or {api_base}/models, every 0.25 s [default: no waiting].
    #[arg(
        long = "wait_ready",
        visible_alias = "wait-ready",
        value_name = "SECONDS",
        value_parser = values::positive_seconds
    )]
    pub wait_ready: Option<Duration>,
}

/// How often `--wait_ready` asks the server.
const READY_EVERY: Duration = Duration::from_millis(250);
/// The longest one `--wait_ready` probe may take before the next is sent: a connection the
/// server will never answer (a listener replaced by a restart) must not use up the whole wait.
const READY_PROBE_LIMIT: Duration = Duration::from_secs(5);

/// The server a benchmark talks to, resolved from [`ServerArgs`] by [`ServerArgs::connect`].
///
/// With `--simulate`, the `Target` owns the simulated server running in this process: it serves
/// for as long as the `Target` lives and stops accepting when it is dropped, so keep the `Target`
/// until the run is over.
pub struct Target {
    /// The base URL requests go to, routes appended (`http://127.0.0.1:PORT/v1` with
    /// `--simulate`); several comma-separated when `--api_base` named replicas.
    pub api_base: String,
    /// The model id to send (with `--simulate`, the one the simulator serves).
    pub model: String,
    /// The client built from the flags (base URLs, balance, TLS, API key, `--timeout`,
    /// `--idle_timeout`, `--source_ips`), ready to hand out connections.
    pub client: tokenomics_client::Client,
    /// With `--simulate`: the preset and time scale, for the metadata.
    pub simulated: Option<Simulated>,
    /// A description naming the preset, for runs against the simulator.
    pub simulated_description: Option<String>,
    /// `--insecure` against an `https://` server: its certificate was not checked. For the
    /// metadata (false for `http://`, where there is no certificate to check).
    pub insecure: bool,
    /// With `--simulate`: the preset's list price (per real hour: the price per GPU-hour times
    /// the time scale, so that costs per token come out in model time), for runs given no
    /// `--gpu_hour_cost`. `None` for presets without a price.
    pub preset_cost: Option<CostBasis>,
    /// Keeps the in-process simulator alive.
    _simulator: Option<tokenomics_sim::Server>,
}

impl ServerArgs {
    /// Sockets a run at `concurrency` opens: one per request and endpoint (a connection keeps
    /// one to each `--api_base`), twice `concurrency` when the simulator runs in this process
    /// (its end of each connection too). Saturates at `u64::MAX` instead of overflowing; for
    /// [`crate::ensure_open_files`].
    pub fn sockets(&self, concurrency: u64) -> u64 {
        let each = match self.simulate {
            Some(_) => 2,
            // A connection keeps one socket open to each endpoint.
            None => self.api_bases().len() as u64,
        };
        concurrency.saturating_mul(each)
    }

    /// The base URLs of `--api_base`, in the order given, each trimmed (empty items skipped; no
    /// other check: [`ServerArgs::connect`] refuses an empty list or a URL given twice).
    pub fn api_bases(&self) -> Vec<&str> {
        self.api_base
            .split(',')
            .map(str::trim)
            .filter(|b| !b.is_empty())
            .collect()
    }

    /// The TLS settings of the flags and of `ssl_cert_file` (the `SSL_CERT_FILE` environment
    /// variable, read only for `https://` bases). Every file is read here, so a missing or broken
    /// one is refused before any request: a [`Failure::usage`] naming the flag (or variable) and
    /// the file.
    pub fn tls_options(
        &self,
        https: bool,
        ssl_cert_file: Option<&OsStr>,
    ) -> Result<TlsOptions, Failure> {
        let mut tls = TlsOptions::default();
        let ssl_cert_file = ssl_cert_file.filter(|p| https && !p.is_empty());
        let cas = [
            ("--ca_cert", self.ca_cert.as_deref()),
            ("SSL_CERT_FILE", ssl_cert_file.map(Path::new)),
        ];
        for (source, path) in cas {
            let Some(path) = path else { continue };
            let certs = tokenomics_client::read_certificates(path)
                .map_err(|e| Failure::usage(format!("{source} {}", config_message(e))))?;
            tls.add_roots(&certs).map_err(|e| {
                Failure::usage(format!(
                    "{source} {}: {}",
                    path.display(),
                    config_message(e)
                ))
            })?;
        }
        match (&self.client_cert, &self.client_key) {
            (Some(cert), Some(key)) => {
                let chain = tokenomics_client::read_certificates(cert)
                    .map_err(|e| Failure::usage(format!("--client_cert {}", config_message(e))))?;
                let key_der = tokenomics_client::read_private_key(key)
                    .map_err(|e| Failure::usage(format!("--client_key {}", config_message(e))))?;
                tls.set_client_identity(chain, key_der).map_err(|e| {
                    Failure::usage(format!(
                        "--client_key {}: {} ({})",
                        key.display(),
                        config_message(e),
                        cert.display()
                    ))
                })?;
            }
            (None, None) => {}
            (Some(_), None) => return Err(Failure::usage("--client_cert needs --client_key")),
            (None, Some(_)) => return Err(Failure::usage("--client_key needs --client_cert")),
        }
        tls.insecure = self.insecure;
        Ok(tls)
    }

    /// Resolves the flags into the [`Target`] a run talks to. `model` is the user's `--model`;
    /// `seed` seeds the simulator's output lengths; `what` names the workload in the default
    /// description ([`Target::description`]). Must be called inside a tokio runtime.
    ///
    /// * Certificate files (`--ca_cert`, `--client_cert`, `--client_key`, `SSL_CERT_FILE`) are
    ///   read first, so a broken one is refused before anything starts.
    /// * With `--simulate PRESET`, the simulated server is started here, in this process, on a
    ///   free loopback port (`127.0.0.1`, plain http), at `--sim_time_scale`; one line on stdout
    ///   names the preset, the model and the URL. The experiment then talks to it over HTTP like
    ///   to any server and never starts a server itself. `--model` is optional (the preset's
    ///   model is served when it is absent), `--api_base` is ignored, and the [`Target`] records
    ///   the preset and its list price (per real hour at the time scale). It is ready at once,
    ///   so `--wait_ready` does not wait.
    /// * Otherwise `--model` is required and `--api_base` must name at least one URL, none twice.
    ///   With `--wait_ready SECONDS`, each endpoint is polled (`GET /health` at its origin, then
    ///   `{api_base}/models`, every 0.25 s, each probe cut at 5 s) until it answers, all within
    ///   the one limit, counted on the monotonic clock from the start of the wait.
    ///
    /// Errors are a [`Failure`] with one line of message: [`crate::exit::USAGE`] for the user's
    /// input (a missing `--model`, an unknown preset or a setting the simulator refuses, a URL or
    /// key the client refuses, a certificate file that cannot be used), [`crate::exit::ERROR`] for the rest (the simulator
    /// cannot start, a server still not ready when `--wait_ready` runs out, naming the URL and
    /// the last error). With `--insecure` against `https://`, a warning line goes to stderr.
    pub async fn connect(
        &self,
        model: Option<&str>,
        seed: u64,
        what: &str,
    ) -> Result<Target, Failure> {
        // Files first: a broken one is refused before anything starts. The simulator is http.
        let bases = self.api_bases();
        let https = self.simulate.is_none() && bases.iter().any(|b| is_https(b));
        let tls = self.tls_options(https, std::env::var_os("SSL_CERT_FILE").as_deref())?;
        let insecure = tls.insecure && https;
        // A simulated run is priced at its preset's list price unless a price is given.
        let mut preset_cost = None;
        let (api_base, model, simulator, simulated) = match (&self.simulate, model) {
            (Some(preset), model) => {
                let (server, served) =
                    tokenomics_sim::start_local(preset, model, self.sim_time_scale, seed)
                        .await
                        .map_err(|e| match e {
                            // The preset or a setting was refused: bad input.
                            tokenomics_sim::Error::UnknownPreset(..)
                            | tokenomics_sim::Error::Invalid(_) => Failure::usage(e),
                            _ => Failure::error(e),
                        })?;
                let api_base = server.api_base();
                crate::out!("Simulated server: preset {preset}, model {served:?}, at {api_base}");
                let list_price =
                    tokenomics_sim::preset::preset(preset).and_then(|p| p.cost_basis());
                let simulated = Simulated {
                    preset: preset.clone(),
                    time_scale: self.sim_time_scale,
                    price: list_price.map(|c| {
                        format!(
                            "{} × {} GPU{} at ${:.2} per GPU-hour ({}){}",
                            preset,
                            c.gpus,
                            if c.gpus == 1 { "" } else { "s" },
                            c.usd_per_gpu_hour,
                            c.source,
                            if self.sim_time_scale == 1.0 {
                                String::new()
                            } else {
                                format!(
                                    "; metadata.cost is per real hour, {} model hours at time scale {}, so that costs per token come out in model time",
                                    self.sim_time_scale, self.sim_time_scale
                                )
                            }
                        )
                    }),
                };
                preset_cost = list_price.map(|c| CostBasis {
                    usd_per_gpu_hour: c.usd_per_gpu_hour * self.sim_time_scale,
                    gpus: c.gpus,
                    input_cost_share: None,
                });
                (api_base, served, Some(server), Some(simulated))
            }
            (None, Some(model)) => {
                if bases.is_empty() {
                    return Err(Failure::usage("--api_base is empty"));
                }
                let mut seen = std::collections::HashSet::new();
                if let Some(twice) = bases.iter().find(|b| !seen.insert(b.trim_end_matches('/'))) {
                    return Err(Failure::usage(format!(
                        "--api_base names {twice} twice; give each endpoint once"
                    )));
                }
                (bases.join(","), model.to_string(), None, None)
            }
            (None, None) => return Err(Failure::usage("--model is required")),
        };
        if insecure {
            eprintln!(
                "{}: warning: --insecure: the server's certificate is not checked, so the connection is encrypted but not authenticated; the results record this",
                program_name()
            );
        }
        let mut cfg = match api_base.split_once(',') {
            Some((first, more)) => {
                let mut cfg = tokenomics_client::ClientConfig::new(first);
                cfg.replicas = more.split(',').map(str::to_string).collect();
                cfg
            }
            None => tokenomics_client::ClientConfig::new(&api_base),
        };
        cfg.balance = self.balance;
        cfg.tls = tls;
        cfg.api_key = self.api_key.clone();
        cfg.timeout = self.timeout;
        cfg.idle_timeout = self.idle_timeout;
        // An address not on this host is found at the first connection (the preflight's), whose
        // error names it.
        cfg.local_addrs = self
            .source_ips
            .as_ref()
            .map(|s| s.0.clone())
            .unwrap_or_default();
        // The client refuses only its configuration (URL, key): bad input.
        let client = tokenomics_client::Client::new(cfg).map_err(Failure::usage)?;
        // The in-process simulator is ready once started.
        if let (Some(limit), None) = (self.wait_ready, &self.simulate) {
            // Each endpoint within the same limit, from the start.
            let started = Instant::now();
            let all = client.api_bases().len();
            for i in 0..all {
                let one = match client.replica(i) {
                    Some(one) if all > 1 => one.map_err(Failure::usage)?,
                    _ => client.clone(),
                };
                if let Some(waited) = wait_ready(&one, limit, started + limit).await? {
                    crate::out!(
                        "server{} ready after {:.1} s",
                        if all > 1 {
                            format!(" at {}", one.config().api_base)
                        } else {
                            String::new()
                        },
                        waited.as_secs_f64()
                    );
                }
            }
        }
        Ok(Target {
            api_base,
            model,
            client,
            simulated_description: simulated
                .as_ref()
                .map(|s| format!("Simulated: oai-sim preset {}, {what}", s.preset)),
            simulated,
            insecure,
            preset_cost,
            _simulator: simulator,
        })
    }
}

/// The message of a client's configuration error, without the "invalid configuration" prefix
/// (the caller names the flag instead).
fn config_message(e: ClientError) -> String {
    match e {
        ClientError::Config(message) => message,
        other => other.to_string(),
    }
}

/// Whether a base URL's scheme is https (in any case, as URL schemes are).
fn is_https(api_base: &str) -> bool {
    api_base
        .get(..8)
        .is_some_and(|s| s.eq_ignore_ascii_case("https://"))
}

/// The name this program was started as, for a warning line ("oai-bench: warning: …").
fn program_name() -> String {
    std::env::args_os()
        .next()
        .and_then(|a| {
            Path::new(&a)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "tokenomics".into())
}

/// `scheme://authority` of a base URL: where a server's `/health` is (vLLM, SGLang and TGI
/// serve it at the root, not under `/v1`).
fn origin(api_base: &str) -> &str {
    let Some(scheme_end) = api_base.find("://") else {
        return api_base;
    };
    let rest = &api_base[scheme_end + 3..];
    match rest.find('/') {
        Some(i) => &api_base[..scheme_end + 3 + i],
        None => api_base,
    }
}

/// One readiness probe: `GET {origin}/health`, then `GET {api_base}/models`. A `/models` that
/// refuses the API key (401, 403) also means the server is up: the preflight names that problem.
async fn probe_ready(client: &Client, health: Option<&Client>) -> Result<(), ClientError> {
    let clock = Clock::start();
    if let Some(health) = health {
        if health.connection().get("/health", &clock).await.is_ok() {
            return Ok(());
        }
    }
    match client.connection().get("/models", &clock).await {
        Ok(_)
        | Err(ClientError::Status {
            status: 401 | 403, ..
        }) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Polls the server every [`READY_EVERY`] (on a fixed cadence from the start) until it answers
/// or `deadline` (`limit` after the first endpoint's wait began) has passed. `Some(waited)` when it was not ready at once, `None` when it was; a
/// [`Failure::error`] naming the URL and the last error when the time ran out.
async fn wait_ready(
    client: &Client,
    limit: Duration,
    deadline: Instant,
) -> Result<Option<Duration>, Failure> {
    let api_base = client.config().api_base.clone();
    let started = Instant::now();
    let health = {
        let mut cfg = client.config().clone();
        cfg.api_base = origin(&api_base).to_string();
        Client::new(cfg).ok()
    };
    let mut last: Option<String> = None;
    let mut probes: u32 = 0;
    loop {
        let probe_deadline = (Instant::now() + READY_PROBE_LIMIT).min(deadline);
        match tokio::time::timeout_at(probe_deadline, probe_ready(client, health.as_ref())).await {
            Ok(Ok(())) => return Ok((probes > 0).then(|| started.elapsed())),
            Ok(Err(e)) => last = Some(e.to_string()),
            Err(_) if probe_deadline < deadline => {
                last = Some(format!(
                    "no answer within {} s",
                    READY_PROBE_LIMIT.as_secs()
                ))
            }
            Err(_) => {}
        }
        probes = probes.saturating_add(1);
        let next = started + READY_EVERY.saturating_mul(probes);
        if next >= deadline {
            // No time for another probe: the wait still lasts what was asked.
            tokio::time::sleep_until(deadline).await;
            break;
        }
        tokio::time::sleep_until(next).await;
    }
    Err(Failure::error(format!(
        "server at {api_base} not ready after {} s: {}",
        limit.as_secs_f64(),
        last.unwrap_or_else(|| "no answer".into())
    )))
}

impl Target {
    /// The description to record: `given` (the user's `--description`) unless it is empty and
    /// the run is simulated, then `Simulated: oai-sim preset PRESET, WHAT` (`what` as given to
    /// [`ServerArgs::connect`]). An empty `given` stays empty against a real server.
    pub fn description(&self, given: &str) -> String {
        match (&self.simulated_description, given.is_empty()) {
            (Some(d), true) => d.clone(),
            _ => given.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, clap::Parser)]
    struct Demo {
        #[command(flatten)]
        server: ServerArgs,
    }

    fn args(flags: &[&str]) -> Result<ServerArgs, clap::Error> {
        let argv = std::iter::once("demo").chain(flags.iter().copied());
        Demo::try_parse_from(argv).map(|d| d.server)
    }

    fn ca_pem() -> String {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.self_signed(&key).unwrap().pem()
    }

    #[test]
    fn a_client_certificate_needs_its_key_and_the_key_its_certificate() {
        let e = args(&["--client_cert", "c.pem"]).unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::MissingRequiredArgument);
        assert!(e.to_string().contains("--client_key"), "{e}");
        let e = args(&["--client-key", "k.pem"]).unwrap_err();
        assert!(e.to_string().contains("--client_cert"), "{e}");
        let a = args(&[
            "--client_cert",
            "c.pem",
            "--client_key",
            "k.pem",
            "--insecure",
        ])
        .unwrap();
        assert!(a.insecure);
        let a = ServerArgs {
            client_key: None,
            ..a
        };
        let f = a.tls_options(true, None).unwrap_err();
        assert_eq!(
            (f.code, f.message.as_str()),
            (crate::exit::USAGE, "--client_cert needs --client_key")
        );
    }

    #[test]
    fn ca_files_come_from_the_flag_and_ssl_cert_file_and_both_are_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.pem"), dir.path().join("b.pem"));
        std::fs::write(&a, ca_pem()).unwrap();
        std::fs::write(&b, ca_pem()).unwrap();
        let server = args(&["--ca_cert", a.to_str().unwrap()]).unwrap();
        let tls = server.tls_options(true, Some(b.as_os_str())).unwrap();
        assert_eq!(tls.added_roots(), 2);
        assert!(!tls.insecure);
        // SSL_CERT_FILE is read for https bases only; an empty one is no file.
        let tls = server.tls_options(false, Some(b.as_os_str())).unwrap();
        assert_eq!(tls.added_roots(), 1);
        let tls = server.tls_options(true, Some(OsStr::new(""))).unwrap();
        assert_eq!(tls.added_roots(), 1);
    }

    #[test]
    fn bad_files_are_usage_errors_naming_the_flag_and_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let text = dir.path().join("notes.txt");
        std::fs::write(&text, "not a certificate").unwrap();
        let server = args(&["--ca_cert", missing.to_str().unwrap()]).unwrap();
        let f = server.tls_options(false, None).unwrap_err();
        assert_eq!(f.code, crate::exit::USAGE);
        assert!(
            f.message.starts_with(&format!(
                "--ca_cert {}: cannot read it: ",
                missing.display()
            )),
            "{}",
            f.message
        );
        let f = args(&[])
            .unwrap()
            .tls_options(true, Some(text.as_os_str()))
            .unwrap_err();
        assert_eq!(f.code, crate::exit::USAGE);
        assert!(
            f.message
                .starts_with(&format!("SSL_CERT_FILE {}: not a PEM file", text.display())),
            "{}",
            f.message
        );
        assert_eq!(f.message.lines().count(), 1);

        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["client".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let other = rcgen::KeyPair::generate().unwrap();
        let (c, k) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
        std::fs::write(&c, cert.pem()).unwrap();
        std::fs::write(&k, other.serialize_pem()).unwrap();
        let server = args(&[
            "--client_cert",
            c.to_str().unwrap(),
            "--client_key",
            k.to_str().unwrap(),
        ])
        .unwrap();
        let f = server.tls_options(false, None).unwrap_err();
        assert_eq!(f.code, crate::exit::USAGE);
        assert_eq!(
            f.message,
            format!(
                "--client_key {}: the private key does not match the client certificate ({})",
                k.display(),
                c.display()
            )
        );
        std::fs::write(&k, key.serialize_pem()).unwrap();
        assert!(server
            .tls_options(false, None)
            .unwrap()
            .has_client_identity());
        // The certificate given as the key, and the key as the certificate.
        let swapped = args(&[
            "--client_cert",
            k.to_str().unwrap(),
            "--client_key",
            c.to_str().unwrap(),
        ])
        .unwrap();
        let f = swapped.tls_options(false, None).unwrap_err();
        assert!(f.message.starts_with("--client_cert "), "{}", f.message);
        assert!(f.message.contains("no certificate in it"), "{}", f.message);
    }

    #[test]
    fn health_is_asked_at_the_origin() {
        assert!(is_https("HTTPS://x/v1") && !is_https("http://x/v1") && !is_https("https"));
        assert_eq!(origin("http://localhost:8000/v1"), "http://localhost:8000");
        assert_eq!(origin("https://api.example.com"), "https://api.example.com");
        assert_eq!(origin("http://[::1]:9/a/b/"), "http://[::1]:9");
    }

    #[tokio::test]
    async fn a_server_that_never_answers_is_not_ready_in_one_line() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let api_base = format!("http://{}/v1", l.local_addr().unwrap());
        drop(l);
        let client = Client::new(tokenomics_client::ClientConfig::new(&api_base)).unwrap();
        let started = std::time::Instant::now();
        let f = wait_ready(
            &client,
            Duration::from_secs(1),
            Instant::now() + Duration::from_secs(1),
        )
        .await
        .unwrap_err();
        let took = started.elapsed();
        assert!(
            took >= Duration::from_secs(1) && took < Duration::from_secs(3),
            "{took:?}"
        );
        assert_eq!(f.code, crate::exit::ERROR);
        let prefix = format!("server at {api_base} not ready after 1 s: cannot connect to ");
        assert!(f.message.starts_with(&prefix), "{}", f.message);
        assert_eq!(f.message.lines().count(), 1);
    }
}
