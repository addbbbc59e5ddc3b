//! The client: what all requests to one server share — its base URL, API key, TLS set-up and
//! limits — and the connections it hands out.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http::header::HeaderValue;

use crate::conn::Connection;
use crate::tls::{TlsOptions, TlsRoots};
use crate::{Clock, Error, Result};

/// What all requests of a client share.
#[derive(Clone)]
pub struct ClientConfig {
    /// Base URL such as `http://localhost:8000/v1`; routes are appended to it.
    pub api_base: String,
    /// Base URLs of further replicas serving the same model (without a load balancer in
    /// front): each chat, completion or embeddings request goes to one of `api_base` and these,
    /// chosen by `balance`, and its record says which ([`crate::RequestRecord::replica`]). Empty:
    /// one server.
    pub replicas: Vec<String>,
    /// How requests are spread over several replicas (unused with one).
    pub balance: Balance,
    /// Sent as `Authorization: Bearer …` when set.
    pub api_key: Option<String>,
    /// Limit on a whole request, from send to the last byte.
    pub timeout: Duration,
    /// Limit on opening a connection (DNS, TCP, TLS).
    pub connect_timeout: Duration,
    /// Limit on the silence between two pieces of a response body (a stalled stream).
    pub idle_timeout: Option<Duration>,
    /// Bound on one SSE line or event, and on a non-streamed body.
    pub max_event_bytes: usize,
    /// Local addresses new connections are opened from, taken in turn (round-robin over all
    /// connections of the client); empty: the kernel chooses, as for any socket. Each source
    /// address has its own ephemeral ports towards the server, so N addresses hold N times the
    /// connections one does. Only the addresses of the server's family are usable.
    pub local_addrs: Vec<IpAddr>,
    /// For `https://` bases: CAs trusted besides the bundled and system roots, a client
    /// certificate, or no certificate check at all (see [`TlsOptions`]).
    pub tls: TlsOptions,
}

impl std::fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientConfig")
            .field("api_base", &self.api_base)
            .field("replicas", &self.replicas)
            .field("balance", &self.balance)
            // Never printed: a debug log must not leak the key.
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("idle_timeout", &self.idle_timeout)
            .field("max_event_bytes", &self.max_event_bytes)
            .field("local_addrs", &self.local_addrs)
            .field("tls", &self.tls)
            .finish()
    }
}

impl ClientConfig {
    /// Settings for `api_base` with the defaults: no API key, 600 s request timeout, 10 s
    /// connect timeout, no idle timeout, a 64 MiB event bound, kernel-chosen source addresses and
    /// the default TLS trust.
    pub fn new(api_base: impl Into<String>) -> Self {
        Self {
            api_base: api_base.into(),
            replicas: Vec::new(),
            balance: Balance::RoundRobin,
            api_key: None,
            timeout: Duration::from_secs(600),
            connect_timeout: Duration::from_secs(10),
            idle_timeout: None,
            max_event_bytes: crate::sse::DEFAULT_MAX_EVENT_BYTES,
            local_addrs: Vec::new(),
            tls: TlsOptions::default(),
        }
    }
}

/// How a client with several replicas ([`ClientConfig::replicas`]) picks one for a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Balance {
    /// Each in turn, whatever their load: every replica gets the same number of requests.
    #[default]
    RoundRobin,
    /// The one with the fewest requests of this client in flight (ties in turn): a slower
    /// replica gets fewer requests, as behind a least-connections load balancer.
    LeastLoaded,
}

impl Balance {
    /// The name used by flags and result files: `round_robin`, `least_loaded`.
    pub fn name(self) -> &'static str {
        match self {
            Balance::RoundRobin => "round_robin",
            Balance::LeastLoaded => "least_loaded",
        }
    }
}

impl std::str::FromStr for Balance {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "round_robin" | "round-robin" => Ok(Balance::RoundRobin),
            "least_loaded" | "least-loaded" => Ok(Balance::LeastLoaded),
            other => Err(Error::Config(format!(
                "unknown balance {other:?}; use round_robin or least_loaded"
            ))),
        }
    }
}

#[derive(Debug)]
pub(crate) struct Target {
    pub(crate) https: bool,
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) authority: HeaderValue,
    /// The base URL's path without a trailing slash, e.g. `/v1`.
    pub(crate) prefix: String,
}

impl Target {
    /// A `connect` error for this server.
    pub(crate) fn connect_error(&self, message: String) -> Error {
        Error::Connect {
            addr: format!("{}:{}", self.host, self.port),
            message,
        }
    }

    fn parse(api_base: &str) -> Result<Self> {
        let bad = |why: &str| Error::Config(format!("api_base {api_base:?} {why}"));
        let uri: http::Uri = api_base
            .parse()
            .map_err(|_| bad("is not a URL (expected e.g. http://localhost:8000/v1)"))?;
        let https = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            Some(other) => return Err(bad(&format!("has scheme {other:?}; use http or https"))),
            None => return Err(bad("has no scheme; use http:// or https://")),
        };
        let host = uri
            .host()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| bad("has no host"))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let authority = uri
            .authority()
            .map(|a| a.as_str())
            .unwrap_or(&host)
            .rsplit('@')
            .next()
            .unwrap_or(&host)
            .to_string();
        let authority = HeaderValue::from_str(&authority).map_err(|_| bad("has a bad host"))?;
        Ok(Self {
            https,
            host,
            port,
            authority,
            prefix: uri.path().trim_end_matches('/').to_string(),
        })
    }
}

/// One server of a client: where it is, and how many of the client's requests it has in flight.
#[derive(Debug)]
pub(crate) struct Replica {
    pub(crate) target: Target,
    pub(crate) in_flight: AtomicU64,
}

pub(crate) struct Inner {
    /// `config.api_base` first, then `config.replicas`.
    pub(crate) replicas: Vec<Replica>,
    /// Requests routed so far (round robin, and the order ties are broken in).
    pub(crate) routed: AtomicUsize,
    pub(crate) auth: Option<HeaderValue>,
    pub(crate) tls: Option<tokio_rustls::TlsConnector>,
    /// The trust anchors of `tls`, by source.
    pub(crate) tls_roots: Option<TlsRoots>,
    pub(crate) config: ClientConfig,
    /// How many connections have taken a source address from `config.local_addrs`.
    pub(crate) sources_taken: AtomicUsize,
}

impl Inner {
    /// The replica for the next request, by `config.balance` (always 0 with one).
    pub(crate) fn pick(&self) -> usize {
        let n = self.replicas.len();
        if n < 2 {
            return 0;
        }
        // Relaxed: only the spread matters; the counter wraps.
        let turn = self.routed.fetch_add(1, Ordering::Relaxed);
        match self.config.balance {
            Balance::RoundRobin => turn % n,
            Balance::LeastLoaded => (0..n)
                .map(|k| (turn + k) % n)
                .min_by_key(|&i| self.replicas[i].in_flight.load(Ordering::Relaxed))
                .unwrap_or(0),
        }
    }

    /// The source address for the next new connection: the next of `config.local_addrs` in
    /// turn, or `None` (the kernel chooses) when there are none.
    pub(crate) fn next_source(&self) -> Option<IpAddr> {
        let addrs = &self.config.local_addrs;
        if addrs.is_empty() {
            return None;
        }
        // Relaxed: only the spread matters, not an order between threads; the counter wraps.
        let i = self.sources_taken.fetch_add(1, Ordering::Relaxed);
        addrs.get(i % addrs.len()).copied()
    }
}

/// A client for one OpenAI-compatible server. Cheap to clone.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field(
                "targets",
                &self
                    .inner
                    .replicas
                    .iter()
                    .map(|r| &r.target)
                    .collect::<Vec<_>>(),
            )
            .field("config", &self.inner.config)
            .field("tls_roots", &self.inner.tls_roots)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Checks the configuration (URL, API key) and prepares TLS for `https://` bases (the first
    /// https client of a process reads the system's certificate store).
    pub fn new(config: ClientConfig) -> Result<Self> {
        crate::rxstamp::keep_enabled();
        let targets = std::iter::once(&config.api_base)
            .chain(&config.replicas)
            .map(|base| Target::parse(base))
            .collect::<Result<Vec<_>>>()?;
        let auth =
            match config.api_key.as_deref().filter(|k| !k.is_empty()) {
                Some(key) => Some(HeaderValue::from_str(&format!("Bearer {key}")).map_err(
                    |_| Error::Config("the API key has characters not allowed in a header".into()),
                )?),
                None => None,
            };
        let (tls, tls_roots) = match targets.iter().any(|t| t.https) {
            true => {
                let (connector, roots) = crate::tls::connector(&config.tls)?;
                (Some(connector), Some(roots))
            }
            false => (None, None),
        };
        Ok(Self {
            inner: Arc::new(Inner {
                replicas: targets
                    .into_iter()
                    .map(|target| Replica {
                        target,
                        in_flight: AtomicU64::new(0),
                    })
                    .collect(),
                routed: AtomicUsize::new(0),
                auth,
                tls,
                tls_roots,
                config,
                sources_taken: AtomicUsize::new(0),
            }),
        })
    }

    /// The settings the client was built with.
    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    /// The base URLs requests are spread over: `api_base`, then the replicas.
    pub fn api_bases(&self) -> Vec<&str> {
        std::iter::once(self.inner.config.api_base.as_str())
            .chain(self.inner.config.replicas.iter().map(String::as_str))
            .collect()
    }

    /// A client for replica `index` alone ([`Client::api_bases`]), with the same settings: for
    /// what concerns one server (its model list, its readiness, its metrics). `None` when there
    /// is no such replica.
    pub fn replica(&self, index: usize) -> Option<Result<Client>> {
        let base = self.api_bases().get(index)?.to_string();
        let mut config = self.inner.config.clone();
        config.api_base = base;
        config.replicas.clear();
        Some(Client::new(config))
    }

    /// Requests of this client in flight at each replica now (in the order of
    /// [`Client::api_bases`]); counted only with several replicas (always 0 with one).
    pub fn in_flight(&self) -> Vec<u64> {
        self.inner
            .replicas
            .iter()
            .map(|r| r.in_flight.load(Ordering::Relaxed))
            .collect()
    }

    /// For an `https://` base, how many trust anchors the TLS set-up holds, by source (`None`
    /// for `http://`).
    pub fn tls_roots(&self) -> Option<TlsRoots> {
        self.inner.tls_roots
    }

    /// A new connection handle (nothing is opened until it is used or [`Connection::connect`]ed).
    pub fn connection(&self) -> Connection {
        Connection::new(self.inner.clone())
    }

    /// `GET {api_base}/models`: the ids of the models the server offers.
    pub async fn models(&self) -> Result<Vec<String>> {
        #[derive(serde::Deserialize)]
        struct Models {
            data: Vec<Model>,
        }
        #[derive(serde::Deserialize)]
        struct Model {
            id: String,
        }
        let clock = Clock::start();
        let mut conn = self.connection();
        let body = conn.get("/models", &clock).await?;
        let models: Models = serde_json::from_slice(&body)
            .map_err(|e| Error::BadResponse(format!("/models did not return a model list: {e}")))?;
        Ok(models.data.into_iter().map(|m| m.id).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_api_key_is_never_printed() {
        let mut cfg = ClientConfig::new("http://localhost:8000/v1");
        cfg.api_key = Some("sk-secret".into());
        let client = Client::new(cfg).unwrap();
        assert!(!format!("{client:?}").contains("sk-secret"));
    }

    #[test]
    fn source_addresses_are_taken_in_turn() {
        let mut cfg = ClientConfig::new("http://localhost:8000/v1");
        let client = Client::new(cfg.clone()).unwrap();
        assert_eq!(client.inner.next_source(), None);
        let (a, b): (IpAddr, IpAddr) = ([127, 0, 0, 2].into(), [127, 0, 0, 3].into());
        cfg.local_addrs = vec![a, b];
        let client = Client::new(cfg).unwrap();
        let taken: Vec<_> = (0..5).map(|_| client.inner.next_source()).collect();
        assert_eq!(taken, [Some(a), Some(b), Some(a), Some(b), Some(a)]);
        assert!(format!("{client:?}").contains("127.0.0.3"));
    }

    #[test]
    fn targets() {
        let t = Target::parse("http://localhost:8000/v1/").unwrap();
        assert_eq!(
            (t.https, t.host.as_str(), t.port, t.prefix.as_str()),
            (false, "localhost", 8000, "/v1")
        );
        assert_eq!(t.authority, "localhost:8000");
        let t = Target::parse("https://api.example.com/v1").unwrap();
        assert_eq!((t.https, t.port), (true, 443));
        let t = Target::parse("http://[::1]:9/v1").unwrap();
        assert_eq!(t.host, "::1");
        for bad in ["localhost:8000/v1", "ftp://x/v1", "http://", "not a url"] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
    }
}
