//! A raw hyper 1.x client for OpenAI-compatible inference servers, built to *measure*.
//!
//! The design follows one rule: **a timestamp is taken when bytes arrive, before anything is
//! parsed.** Each body frame read from the socket is stamped with the monotonic [`Clock`] the
//! moment hyper hands it over; the SSE framer ([`SseFramer`]) then splits it into events, and every
//! event completed by that frame carries that frame's stamp. JSON is decoded only afterwards, and
//! only as far as the metrics need (is there content? usage? an error? a finish reason?).
//!
//! A [`Client`] holds what all requests share (base URL, API key, TLS set-up, timeouts). It hands
//! out [`Connection`]s: one HTTP/1.1 keep-alive connection each, opened lazily, reused for every
//! request sent through it and reopened transparently when the server closed it between requests.
//! A benchmark gives each concurrent worker its own `Connection`, so there is no pool lock shared
//! between requests and no hidden cap on concurrency: N workers are N connections.
//! For `https://` a client trusts the bundled Mozilla roots, the system's store and any CAs added
//! through [`TlsOptions`], which also carries a client certificate for mutual TLS (or, named
//! plainly, `insecure`: no certificate check).
//!
//! Every request yields a [`RequestRecord`]: a [`RequestTiming`] (nanoseconds on the client's
//! monotonic clock) plus token counts and, for a failed request, a typed [`Error`] whose
//! [`Error::kind`] names the failure for counting.
//!
//! # Examples
//!
//! A request body is built once, before any timing starts, and sent as the same bytes every
//! time. No server is needed to see it:
//!
//! ```
//! use tokenomics_client::{ChatRequest, Endpoint, Message};
//!
//! let req = ChatRequest {
//!     endpoint: Endpoint::Chat,
//!     model: "my-model".into(),
//!     messages: vec![Message::new("user", "Say hi.")],
//!     max_tokens: 16,
//!     temperature: 0.0,
//!     stream: true,
//!     extra: serde_json::Map::new(),
//! };
//! assert_eq!(Endpoint::Chat.path(), "/chat/completions");
//! let body: serde_json::Value = serde_json::from_slice(&req.body())?;
//! assert_eq!(
//!     body,
//!     serde_json::json!({
//!         "model": "my-model",
//!         "messages": [{"role": "user", "content": "Say hi."}],
//!         "max_tokens": 16,
//!         "temperature": 0.0,
//!         "stream": true,
//!         // Asked for so that a streaming server reports exact token counts.
//!         "stream_options": {"include_usage": true}
//!     })
//! );
//! # Ok::<(), serde_json::Error>(())
//! ```
//!
//! Timestamps are nanoseconds since one [`Clock`]'s origin, so records of one run compare:
//!
//! ```
//! use tokenomics_client::{Clock, RequestTiming};
//!
//! let clock = Clock::start();
//! let t = RequestTiming {
//!     send_ns: 1_000_000,
//!     first_token_ns: Some(251_000_000),
//!     end_ns: Some(1_001_000_000),
//!     ..RequestTiming::default()
//! };
//! assert_eq!(t.ttft_s(), Some(0.25));
//! assert_eq!(t.e2e_s(), Some(1.0));
//! assert!(clock.now_ns() <= clock.now_ns());
//! ```

#![warn(missing_docs)]

mod chunk_scan;
mod client;
mod conn;
mod error;
mod request;
mod response;
mod rxstamp;
pub mod sse;
mod tls;

pub use client::{Balance, Client, ClientConfig};
pub use conn::Connection;
pub use error::{Error, Result};
pub use request::{ChatRequest, EmbeddingsRequest, Endpoint, Message};
pub use response::{EmbeddingsRecord, RequestRecord, RequestTiming, TokenSource};
pub use sse::{SseEvent, SseFramer};
pub use tls::{read_certificates, read_private_key, TlsOptions, TlsRoots};

use std::time::Instant;

/// The monotonic clock every timestamp of a run is read from: nanoseconds since an origin.
///
/// `Clock` is `Copy`; all requests of one benchmark share one origin so their timestamps compare.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    origin: Instant,
    /// The wall-clock time of the origin, to report absolute times.
    wall_origin: std::time::SystemTime,
}

impl Clock {
    /// A clock whose origin is now.
    pub fn start() -> Self {
        Self {
            origin: Instant::now(),
            wall_origin: std::time::SystemTime::now(),
        }
    }

    /// Seconds since the Unix epoch at `ns` on this clock (wall-clock; for reports only, never
    /// for measuring intervals).
    pub fn unix_seconds(&self, ns: u64) -> f64 {
        let origin = self
            .wall_origin
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        origin + ns as f64 / 1e9
    }

    /// Nanoseconds since the origin (monotonic; never goes back).
    #[inline]
    pub fn now_ns(&self) -> u64 {
        self.origin.elapsed().as_nanos() as u64
    }

    /// The origin as an [`Instant`].
    pub fn origin(&self) -> Instant {
        self.origin
    }

    /// The instant `ns` nanoseconds after the origin.
    pub fn instant_at(&self, ns: u64) -> Instant {
        self.origin + std::time::Duration::from_nanos(ns)
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::start()
    }
}
