//! Typed request errors. [`Error::kind`] is the short name a benchmark counts failures by.

/// What went wrong with one request (or with setting up the client).
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// The base URL or another setting is unusable.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// DNS, TCP or TLS set-up failed.
    #[error("cannot connect to {addr}: {message}")]
    Connect {
        /// The server's `host:port`.
        addr: String,
        /// What failed, as the resolver, socket or TLS layer said it.
        message: String,
    },
    /// The request did not complete within its timeout.
    #[error("timed out after {seconds:.1} s ({stage})")]
    Timeout {
        /// The limit that ran out, seconds (the whole-request, connect or idle limit).
        seconds: f64,
        /// What the request was doing: `connect`, `waiting for response headers`, `reading the
        /// response` or `stream idle`.
        stage: &'static str,
    },
    /// The server answered with a non-success status.
    #[error("HTTP {status}: {body}")]
    Status {
        /// The HTTP status code.
        status: u16,
        /// The error body's message (its JSON `error.message`, `message` or `detail` when it has
        /// one, else its text), cut to 300 bytes, read from the start of the body only.
        body: String,
        /// The `Retry-After` header, in seconds, when the server sent one (e.g. with a 429).
        retry_after: Option<f64>,
    },
    /// The connection broke while sending or receiving.
    #[error("connection error: {0}")]
    Io(String),
    /// The response body could not be understood (not JSON, missing fields, bad SSE).
    #[error("bad response: {0}")]
    BadResponse(String),
    /// The stream was malformed or ended early.
    #[error("bad stream: {0}")]
    BadStream(String),
    /// The server reported an error inside a 200 stream (`event: error` or `{"error": …}`).
    #[error("server error event: {0}")]
    ServerEvent(String),
    /// The caller abandoned the request before it completed (e.g. the user pressed Ctrl-C).
    #[error("interrupted before the response was complete")]
    Interrupted,
    /// The caller aborted the request on purpose after a set delay (a benchmark exercising the
    /// server's abort path), closing its connection.
    #[error("aborted by the client on purpose")]
    Aborted,
}

impl Error {
    /// A short stable name for counting failures by kind.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Config(_) => "config",
            Error::Connect { .. } => "connect",
            Error::Timeout { .. } => "timeout",
            Error::Status { .. } => "http_status",
            Error::Io(_) => "io",
            Error::BadResponse(_) => "bad_response",
            Error::BadStream(_) => "bad_stream",
            Error::ServerEvent(_) => "server_error_event",
            Error::Interrupted => "interrupted",
            Error::Aborted => "aborted",
        }
    }
}

/// `Result` with this crate's [`Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;
