//! Connections: DNS, TCP (with `TCP_NODELAY`), optional TLS (rustls), HTTP/1.1 keep-alive, and the
//! one place that turns a response into a timing record.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HOST};
use http::{Method, Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::{timeout_at, Instant};

use crate::client::{ClientConfig, Inner, Target};
use crate::request::Endpoint;
use crate::response::{
    decode_completion, decode_embeddings, error_body_message, EmbeddingsRecord, RequestRecord,
    RequestTiming, StreamState,
};
use crate::rxstamp::{RxStamp, StampedTcp};
use crate::sse::SseFramer;
use crate::{Clock, Error, Result};

/// Bytes read from a connection at a time; also the largest response head hyper accepts with a
/// buffer of exact size, so not less than 8 KiB (a proxy may add kilobytes of headers).
const READ_BUFFER_BYTES: usize = 8 * 1024;

/// A byte stream a connection runs over: TCP, or TLS over TCP.
trait Transport: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Sync + Unpin {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Sync + Unpin> Transport for T {}

type HyperConn = hyper::client::conn::http1::Connection<TokioIo<Box<dyn Transport>>, Full<Bytes>>;

/// An open HTTP/1.1 connection: the handle requests are sent through, and the connection's I/O
/// state machine, which is polled in the requesting task itself (see [`drive`]).
struct Open {
    sender: SendRequest<Full<Bytes>>,
    conn: HyperConn,
    /// The kernel's arrival time of the newest bytes read on this connection.
    rx: Arc<RxStamp>,
    /// Whether the connection future has completed, and how.
    end: ConnEnd,
}

/// A request in flight at a replica: counted from routing until dropped (the request ended, or
/// its future was dropped midway).
struct InFlight {
    inner: Arc<Inner>,
    replica: usize,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.inner.replicas[self.replica]
            .in_flight
            .fetch_sub(1, Ordering::Relaxed);
    }
}

/// Whether a connection's I/O future has completed (closed by either side, or failed), and the
/// TLS failure it ended with, if that is why: a server that refuses the client's certificate
/// says so only after the client's side of a TLS 1.3 handshake is done, so the refusal reaches
/// the client as the connection's end, not as a handshake error.
#[derive(Default)]
struct ConnEnd {
    finished: bool,
    tls_failure: Option<String>,
}

/// A request's time limit: one timer for the whole request (not one per body frame), moved
/// earlier per frame only when an idle limit is set.
/// `at + d`, or about 30 years after `at` when that overflows the clock (as tokio's own timers
/// do): a limit too long to represent is no limit, never a panic.
fn after(at: Instant, d: Duration) -> Instant {
    const FAR: Duration = Duration::from_secs(86_400 * 365 * 30);
    at.checked_add(d)
        .or_else(|| at.checked_add(FAR))
        .unwrap_or(at)
}

struct Deadline {
    sleep: Pin<Box<tokio::time::Sleep>>,
    total: Instant,
    idle: Option<Duration>,
    /// When the caller asked for the request to be aborted ([`Connection::abort_next_after`]).
    abort: Option<Instant>,
}

impl Deadline {
    fn new(total: Instant, idle: Option<Duration>) -> Self {
        let mut d = Self {
            sleep: Box::pin(tokio::time::sleep_until(total)),
            total,
            idle,
            abort: None,
        };
        d.arm();
        d
    }

    /// Re-arms the idle limit after progress (no-op without one).
    fn arm(&mut self) {
        if let Some(idle) = self.idle {
            let at = after(Instant::now(), idle).min(self.total);
            self.sleep.as_mut().reset(at);
        }
    }

    fn error(&self, cfg: &ClientConfig, stage: &'static str) -> Error {
        if self.abort.is_some_and(|a| Instant::now() >= a) {
            return Error::Aborted;
        }
        match self.idle {
            Some(idle) if self.sleep.deadline() < self.total => Error::Timeout {
                seconds: idle.as_secs_f64(),
                stage: "stream idle",
            },
            _ => Error::Timeout {
                seconds: cfg.timeout.as_secs_f64(),
                stage,
            },
        }
    }
}

/// Polls `fut` to completion while driving the connection's I/O in the same task, or gives up when
/// `sleep` fires (`None`). Driving the connection here, rather than in a spawned task, saves a
/// cross-task wake-up for every piece of a response.
async fn drive<F: Future>(
    conn: &mut HyperConn,
    end: &mut ConnEnd,
    sleep: Option<&mut Pin<Box<tokio::time::Sleep>>>,
    fut: F,
) -> Option<F::Output> {
    let mut fut = std::pin::pin!(fut);
    let mut sleep = sleep;
    std::future::poll_fn(|cx| {
        if !end.finished {
            if let Poll::Ready(result) = Pin::new(&mut *conn).poll(cx) {
                end.finished = true;
                if let Err(e) = result {
                    end.tls_failure = crate::tls::failure_in(&e);
                }
            }
        }
        if let Poll::Ready(out) = fut.as_mut().poll(cx) {
            return Poll::Ready(Some(out));
        }
        if let Some(s) = sleep.as_mut() {
            if s.as_mut().poll(cx).is_ready() {
                return Poll::Ready(None);
            }
        }
        Poll::Pending
    })
    .await
}

/// Opens a TCP connection to `addr`, from the local address `source` when one is given (its port
/// chosen by the kernel). The error names the source address, so a mistyped one
/// (one not on this host: "Cannot assign requested address") is recognisable.
async fn tcp_connect(
    source: Option<IpAddr>,
    addr: SocketAddr,
) -> std::result::Result<TcpStream, String> {
    let Some(ip) = source else {
        return TcpStream::connect(addr).await.map_err(|e| e.to_string());
    };
    let failed = |step: &str, e: std::io::Error| format!("from source address {ip}: {step}{e}");
    let socket = match ip {
        IpAddr::V4(_) => TcpSocket::new_v4(),
        IpAddr::V6(_) => TcpSocket::new_v6(),
    }
    .map_err(|e| failed("cannot open a socket: ", e))?;
    bind_address_no_port(&socket);
    socket
        .bind(SocketAddr::new(ip, 0))
        .map_err(|e| failed("cannot bind to it: ", e))?;
    socket.connect(addr).await.map_err(|e| failed("", e))
}

/// Asks Linux to choose the source port at `connect`, not at `bind` (`IP_BIND_ADDRESS_NO_PORT`).
///
/// Why: `bind(ip, 0)` must pick a port before the destination is known, so it reserves that port
/// on the address for every destination — ports bound this way are not shared between 4-tuples,
/// and the bind-time search over the address's ports slows as they fill. Deferred to `connect`,
/// the kernel picks a port unique only for (source, destination), exactly as for a socket that
/// was never bound: each source address then holds the whole ephemeral range towards each server
/// address. `SO_REUSEADDR` is not set: it would let two sockets share a port before connect and
/// fail there instead. Best effort: elsewhere, or on a kernel without it (before 4.2), the port is
/// chosen at bind and everything still works, with the limits above.
fn bind_address_no_port(socket: &TcpSocket) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let on: libc::c_int = 1;
        // SAFETY: the descriptor is a socket this function borrows; the option value is a c_int
        // that outlives the call, and its size is passed with it.
        unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::IPPROTO_IP,
                libc::IP_BIND_ADDRESS_NO_PORT,
                (&on as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = socket;
}

/// One HTTP/1.1 keep-alive connection, reused by every request sent through it, reopened when
/// the server closed it. Not shared: each concurrent worker owns one.
pub struct Connection {
    inner: Arc<Inner>,
    /// The connection to replica `at` (the only one, with one server).
    open: Option<Open>,
    at: usize,
    /// With several replicas: kept-alive connections to the others, by replica (empty with one).
    parked: Vec<Option<Open>>,
    /// Abort the next request this long after its send ([`Connection::abort_next_after`]).
    abort_next: Option<Duration>,
    /// Keep every answer's text in its record ([`Connection::capture_answers`]).
    capture: bool,
}

impl Connection {
    pub(crate) fn new(inner: Arc<Inner>) -> Self {
        let parked = match inner.replicas.len() {
            1 => Vec::new(),
            n => (0..n).map(|_| None).collect(),
        };
        Self {
            inner,
            open: None,
            at: 0,
            parked,
            abort_next: None,
            capture: false,
        }
    }

    /// The server this connection talks to now.
    fn target(&self) -> &Target {
        &self.inner.replicas[self.at].target
    }

    /// Makes replica `i`'s connection the current one, parking the current one (several
    /// replicas only).
    fn switch_to(&mut self, i: usize) {
        if i != self.at {
            self.parked[self.at] = self.open.take();
            self.open = self.parked[i].take();
            self.at = i;
        }
    }

    /// With several replicas: chooses the one for the next request ([`crate::Balance`]), makes
    /// its connection the current one (keeping the others' open), and counts the request in
    /// flight there until the returned guard is dropped. Nothing at all with one server: the
    /// request path of a single-server client pays no shared counter.
    fn route(&mut self) -> Option<InFlight> {
        if self.parked.is_empty() {
            return None;
        }
        let i = self.inner.pick();
        self.switch_to(i);
        self.inner.replicas[i]
            .in_flight
            .fetch_add(1, Ordering::Relaxed);
        Some(InFlight {
            inner: self.inner.clone(),
            replica: i,
        })
    }

    /// Aborts the next request sent on this connection `after` its send if it has not finished
    /// by then: the connection is closed (the server sees the client go) and the request's record
    /// ends with [`Error::Aborted`], keeping what arrived before (its content events count the
    /// tokens received). Applies to one request; the connection reconnects for the next.
    pub fn abort_next_after(&mut self, after: Option<Duration>) {
        self.abort_next = after;
    }

    /// Keeps the text of every answer received on this connection in its record
    /// ([`RequestRecord::answer`]): the content events' text, or a whole response's message,
    /// decoded after each frame's arrival stamp is taken. Off by default (a benchmark that does
    /// not need the text does not pay for it).
    pub fn capture_answers(&mut self, on: bool) {
        self.capture = on;
    }

    /// Opens the connection now if it is not open, so that set-up is not inside a timed request
    /// (with several replicas, one to each).
    pub async fn connect(&mut self) -> Result<()> {
        let current = self.at;
        for i in (0..self.parked.len()).filter(|&i| i != current) {
            self.switch_to(i);
            let opened = self.connect_current().await;
            self.switch_to(current);
            opened?;
        }
        self.connect_current().await
    }

    async fn connect_current(&mut self) -> Result<()> {
        if self.is_open() {
            return Ok(());
        }
        let deadline = after(Instant::now(), self.inner.config.connect_timeout);
        self.open = Some(self.open_new(deadline).await?);
        Ok(())
    }

    /// When the bytes just handed over by the connection arrived, on `clock`: the kernel's receive
    /// stamp of the newest bytes read (see [`crate::rxstamp`]), or now when there is none.
    fn arrival_ns(&self, clock: &Clock) -> u64 {
        self.open
            .as_ref()
            .and_then(|o| o.rx.arrival(|| clock.now_ns()))
            .unwrap_or_else(|| clock.now_ns())
    }

    /// Closes the connection (the next request opens a new one). Call this after abandoning a
    /// request midway, so its half-read response is never mistaken for the next one's.
    pub fn reset(&mut self) {
        self.open = None;
    }

    fn is_open(&self) -> bool {
        self.open
            .as_ref()
            .is_some_and(|o| !o.end.finished && !o.sender.is_closed())
    }

    async fn open_new(&self, deadline: Instant) -> Result<Open> {
        let t = self.target();
        let connect_err = |message: String| t.connect_error(message);
        let seconds = self.inner.config.connect_timeout.as_secs_f64();
        let timed_out = |_| Error::Timeout {
            seconds,
            stage: "connect",
        };
        let mut addrs: Vec<SocketAddr> =
            timeout_at(deadline, tokio::net::lookup_host((t.host.as_str(), t.port)))
                .await
                .map_err(timed_out)?
                .map_err(|e| connect_err(format!("name resolution failed: {e}")))?
                .collect();
        let mut last_err = connect_err("the name resolved to no address".into());
        // A connection from a source address can only go to a server address of its family.
        let source = self.inner.next_source();
        if let Some(ip) = source {
            let resolved = addrs.len();
            addrs.retain(|a| a.is_ipv4() == ip.is_ipv4());
            if addrs.is_empty() && resolved > 0 {
                let (ours, theirs) = if ip.is_ipv4() {
                    ("IPv4", "IPv6")
                } else {
                    ("IPv6", "IPv4")
                };
                return Err(connect_err(format!(
                    "the source address {ip} is {ours} but {} has only {theirs} addresses; give source addresses of the server's family",
                    t.host
                )));
            }
        }
        let mut stream = None;
        for addr in addrs {
            match timeout_at(deadline, tcp_connect(source, addr)).await {
                Ok(Ok(s)) => {
                    stream = Some(s);
                    break;
                }
                Ok(Err(message)) => last_err = connect_err(message),
                Err(e) => return Err(timed_out(e)),
            }
        }
        let stream = stream.ok_or(last_err)?;
        stream
            .set_nodelay(true)
            .map_err(|e| connect_err(format!("cannot set TCP_NODELAY: {e}")))?;
        let rx = Arc::new(RxStamp::default());
        let stream = StampedTcp::new(stream, rx.clone());
        let io: Box<dyn Transport> = match self.inner.tls.as_ref().filter(|_| t.https) {
            None => Box::new(stream),
            Some(tls) => {
                let name = rustls::pki_types::ServerName::try_from(t.host.clone())
                    .map_err(|e| connect_err(format!("bad TLS server name: {e}")))?;
                let tls_stream = timeout_at(deadline, tls.connect(name, stream))
                    .await
                    .map_err(timed_out)?
                    .map_err(|e| {
                        connect_err(crate::tls::handshake_failure(&e, self.inner.tls_roots))
                    })?;
                Box::new(tls_stream)
            }
        };
        // A fixed 8 KiB read buffer: hyper's adaptive one starts at 8 KiB and grows towards
        // 400 KiB per connection when a fast server fills it, which at 10,000 streams is
        // gigabytes. 8 KiB holds a few dozen token chunks, more than a stream has waiting unless
        // the client is the bottleneck; a read then also spans fewer tokens, which share its one
        // kernel stamp. Bodies still arrive whole: long SSE lines are assembled by the framer,
        // not in this buffer. It is not smaller because it also bounds the response head: with
        // 4 KiB (tried: −4 KiB per stream) a head of 4–8 KiB, which a proxy's headers can make,
        // is refused as too large.
        let (sender, conn) = hyper::client::conn::http1::Builder::new()
            .read_buf_exact_size(Some(READ_BUFFER_BYTES))
            .handshake(TokioIo::new(io))
            .await
            .map_err(|e| connect_err(format!("HTTP handshake failed: {e}")))?;
        Ok(Open {
            sender,
            conn,
            rx,
            end: ConnEnd::default(),
        })
    }

    fn request(&self, method: Method, route: &str, body: Bytes, sse: bool) -> Request<Full<Bytes>> {
        let t = self.target();
        let mut builder = Request::builder()
            .method(method)
            .uri(format!("{}{}", t.prefix, route))
            .header(HOST, t.authority.clone())
            .header(
                ACCEPT,
                if sse {
                    "text/event-stream"
                } else {
                    "application/json"
                },
            );
        if !body.is_empty() {
            builder = builder.header(CONTENT_TYPE, "application/json");
        }
        if let Some(auth) = &self.inner.auth {
            builder = builder.header(AUTHORIZATION, auth.clone());
        }
        // Every part was validated when the client was built, so this cannot fail.
        builder
            .body(Full::new(body))
            .unwrap_or_else(|_| Request::new(Full::new(Bytes::new())))
    }

    /// Sends `req` and waits for the response head. Stamps `timing.send_ns`, `connect_ns` and
    /// `headers_ns`. A connection the server closed between requests is reopened and the request
    /// sent again (only when it was never written), so keep-alive closes are not failures.
    async fn exchange(
        &mut self,
        mut req: Request<Full<Bytes>>,
        clock: &Clock,
        timing: &mut RequestTiming,
    ) -> Result<(Response<Incoming>, Deadline)> {
        // An Arc clone, so the settings stay readable while `self.open` is replaced.
        let inner = self.inner.clone();
        let cfg = &inner.config;
        // Whatever happens to this request (a failed connect, a retry), the abort was its own.
        let abort_after = self.abort_next.take();
        for attempt in 0..2 {
            if !self.is_open() {
                let t0 = clock.now_ns();
                // A request that fails to connect was still attempted at t0.
                timing.send_ns = t0;
                let deadline = after(Instant::now(), cfg.connect_timeout);
                self.open = Some(self.open_new(deadline).await?);
                timing.connect_ns += clock.now_ns() - t0;
            }
            let Some(Open {
                sender, conn, end, ..
            }) = self.open.as_mut()
            else {
                continue;
            };
            // An idle connection the server closed is noticed here, before anything is sent.
            let ready = drive(
                conn,
                end,
                None,
                std::future::poll_fn(|cx| sender.poll_ready(cx)),
            )
            .await;
            if !matches!(ready, Some(Ok(()))) {
                // A TLS refusal (no or a wrong client certificate) would only repeat.
                let tls_failure = match &ready {
                    Some(Err(e)) => crate::tls::failure_in(e),
                    _ => None,
                }
                .or_else(|| end.tls_failure.take());
                self.open = None;
                if let Some(message) = tls_failure {
                    return Err(inner.replicas[self.at].target.connect_error(message));
                }
                continue;
            }
            timing.send_ns = clock.now_ns();
            let sent_at = Instant::from_std(clock.instant_at(timing.send_ns));
            let total = after(sent_at, cfg.timeout);
            let abort = abort_after.map(|d| after(sent_at, d));
            let mut deadline = Deadline::new(abort.map_or(total, |a| a.min(total)), None);
            deadline.abort = abort;
            let sent = drive(
                conn,
                end,
                Some(&mut deadline.sleep),
                sender.try_send_request(req),
            )
            .await;
            match sent {
                None => {
                    self.open = None;
                    return Err(deadline.error(cfg, "waiting for response headers"));
                }
                Some(Ok(resp)) => {
                    timing.headers_ns = Some(self.arrival_ns(clock).max(timing.send_ns));
                    // The same timer now also watches for a body that goes silent.
                    deadline.idle = cfg.idle_timeout;
                    deadline.arm();
                    return Ok((resp, deadline));
                }
                Some(Err(mut e)) => {
                    self.open = None;
                    if let Some(message) = crate::tls::failure_in(e.error()) {
                        return Err(inner.replicas[self.at].target.connect_error(message));
                    }
                    match e.take_message() {
                        Some(unsent) if attempt == 0 => req = unsent,
                        _ => return Err(Error::Io(e.into_error().to_string())),
                    }
                }
            }
        }
        Err(Error::Io(
            "the server closed the connection twice before the request was sent".into(),
        ))
    }

    /// Reads the next body frame's data under the request's deadline (and idle limit).
    async fn next_data(
        &mut self,
        body: &mut Incoming,
        deadline: &mut Deadline,
    ) -> Result<Option<Bytes>> {
        loop {
            let Some(open) = self.open.as_mut() else {
                return Err(Error::Io("connection lost".into()));
            };
            let frame = drive(
                &mut open.conn,
                &mut open.end,
                Some(&mut deadline.sleep),
                body.frame(),
            )
            .await;
            let frame = match frame {
                None => {
                    self.open = None;
                    return Err(deadline.error(&self.inner.config, "reading the response"));
                }
                Some(None) => return Ok(None),
                Some(Some(Err(e))) => {
                    self.open = None;
                    return Err(Error::Io(format!("response body broken: {e}")));
                }
                Some(Some(Ok(frame))) => frame,
            };
            deadline.arm();
            if let Ok(data) = frame.into_data() {
                return Ok(Some(data));
            }
        }
    }

    /// Reads the start of an error body, for the message.
    async fn error_body(&mut self, resp: Response<Incoming>, mut deadline: Deadline) -> Error {
        let status = resp.status().as_u16();
        // Seconds only; an HTTP-date is rare from inference servers and is ignored.
        let retry_after = resp
            .headers()
            .get(http::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s >= 0.0);
        let mut body = resp.into_body();
        let mut text = Vec::new();
        while text.len() < 512 {
            match self.next_data(&mut body, &mut deadline).await {
                Ok(Some(d)) => text.extend_from_slice(&d),
                _ => break,
            }
        }
        // The rest of the body is not read; the connection cannot be reused.
        self.open = None;
        Error::Status {
            status,
            body: error_body_message(&String::from_utf8_lossy(&text)),
            retry_after,
        }
    }

    /// Reads a whole body, stamping the first byte, bounded by `max_event_bytes`.
    async fn read_body(
        &mut self,
        mut body: Incoming,
        mut deadline: Deadline,
        clock: &Clock,
        timing: &mut RequestTiming,
    ) -> Result<Vec<u8>> {
        let mut buf = Vec::new();
        while let Some(data) = self.next_data(&mut body, &mut deadline).await? {
            if timing.first_byte_ns.is_none() {
                let after = timing.headers_ns.unwrap_or(timing.send_ns);
                timing.first_byte_ns = Some(self.arrival_ns(clock).max(after));
            }
            if buf.len() + data.len() > self.inner.config.max_event_bytes {
                self.open = None;
                return Err(Error::BadResponse(format!(
                    "response body exceeds {} bytes",
                    self.inner.config.max_event_bytes
                )));
            }
            buf.extend_from_slice(&data);
        }
        let after = timing
            .first_byte_ns
            .or(timing.headers_ns)
            .unwrap_or(timing.send_ns);
        timing.end_ns = Some(self.arrival_ns(clock).max(after));
        Ok(buf)
    }

    /// Sends a chat or text completion whose JSON `body` was built beforehand (see
    /// [`crate::ChatRequest::body`]); `stream` must match the body's `stream` field. Never fails:
    /// a failure is recorded in the returned record with the timings gathered up to it.
    pub async fn completion(
        &mut self,
        endpoint: Endpoint,
        stream: bool,
        body: Bytes,
        clock: &Clock,
    ) -> RequestRecord {
        let _in_flight = self.route();
        let mut record = RequestRecord {
            replica: self.at,
            answer: self.capture.then(String::new),
            ..RequestRecord::default()
        };
        let req = self.request(Method::POST, endpoint.path(), body, stream);
        let result = self.completion_inner(req, stream, clock, &mut record).await;
        if let Err(e) = result {
            record.error = Some(e);
        }
        if record.timing.end_ns.is_none() {
            record.timing.end_ns = Some(clock.now_ns());
        }
        record
    }

    async fn completion_inner(
        &mut self,
        req: Request<Full<Bytes>>,
        stream: bool,
        clock: &Clock,
        record: &mut RequestRecord,
    ) -> Result<()> {
        let (resp, mut deadline) = self.exchange(req, clock, &mut record.timing).await?;
        if !resp.status().is_success() {
            return Err(self.error_body(resp, deadline).await);
        }
        let mut body = resp.into_body();
        if !stream {
            let bytes = self
                .read_body(body, deadline, clock, &mut record.timing)
                .await?;
            decode_completion(&bytes, record);
            return Ok(());
        }
        let mut framer = SseFramer::new(self.inner.config.max_event_bytes);
        let mut state = StreamState::new(std::mem::take(record));
        let mut last_t = state
            .record
            .timing
            .headers_ns
            .unwrap_or(state.record.timing.send_ns);
        let mut over = false;
        loop {
            let data = match self.next_data(&mut body, &mut deadline).await {
                Ok(Some(data)) => data,
                Ok(None) => break,
                // A deadline after [DONE], while draining: the response was whole.
                Err(_) if over => {
                    self.open = None;
                    break;
                }
                Err(e) => {
                    *record = state.record;
                    return Err(e);
                }
            };
            // The stamp is taken here, before any parsing: when the kernel received the bytes
            // that completed this frame (or, without a kernel stamp, now). Never before the
            // previous frame's: converting one kernel stamp twice may differ by a few ns.
            let t = self.arrival_ns(clock).max(last_t);
            last_t = t;
            let timing = &mut state.record.timing;
            if timing.first_byte_ns.is_none() {
                timing.first_byte_ns = Some(t);
            }
            if over {
                continue; // drain what follows [DONE] so the connection can be reused
            }
            let fed = framer.feed(&data, |event| state.on_event(event, t));
            if let Err(e) = fed {
                state.record.error = Some(Error::BadStream(e.to_string()));
                self.open = None;
                break;
            }
            if state.done || state.record.error.is_some() {
                over = true;
                if state.record.error.is_some() {
                    // The server may keep the stream open after an error; do not wait for it.
                    self.open = None;
                    break;
                }
            }
        }
        state.record.timing.end_ns = Some(self.arrival_ns(clock).max(last_t));
        *record = state.finish();
        Ok(())
    }

    /// Sends an embeddings request. Never fails: a failure is recorded in the returned record.
    pub async fn embeddings(&mut self, body: Bytes, clock: &Clock) -> EmbeddingsRecord {
        let _in_flight = self.route();
        let mut record = EmbeddingsRecord {
            replica: self.at,
            ..EmbeddingsRecord::default()
        };
        let req = self.request(Method::POST, "/embeddings", body, false);
        let result = async {
            let (resp, deadline) = self.exchange(req, clock, &mut record.timing).await?;
            if !resp.status().is_success() {
                return Err(self.error_body(resp, deadline).await);
            }
            let bytes = self
                .read_body(resp.into_body(), deadline, clock, &mut record.timing)
                .await?;
            decode_embeddings(&bytes, &mut record);
            Ok(())
        }
        .await;
        if let Err(e) = result {
            record.error = Some(e);
        }
        if record.timing.end_ns.is_none() {
            record.timing.end_ns = Some(clock.now_ns());
        }
        record
    }

    /// `GET {api_base}{route}`, returning the body of a successful response.
    pub async fn get(&mut self, route: &str, clock: &Clock) -> Result<Vec<u8>> {
        self.send_json(Method::GET, route, Bytes::new(), clock)
            .await
    }

    /// `POST {api_base}{route}` with a JSON body, returning the body of a successful response.
    pub async fn post(&mut self, route: &str, body: Bytes, clock: &Clock) -> Result<Vec<u8>> {
        self.send_json(Method::POST, route, body, clock).await
    }

    async fn send_json(
        &mut self,
        method: Method,
        route: &str,
        body: Bytes,
        clock: &Clock,
    ) -> Result<Vec<u8>> {
        let mut timing = RequestTiming::default();
        let req = self.request(method, route, body, false);
        let (resp, deadline) = self.exchange(req, clock, &mut timing).await?;
        if !resp.status().is_success() {
            return Err(self.error_body(resp, deadline).await);
        }
        self.read_body(resp.into_body(), deadline, clock, &mut timing)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn the_source_port_is_left_to_connect() {
        let socket = TcpSocket::new_v4().unwrap();
        bind_address_no_port(&socket);
        socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
        // Bound to the address only: no port is taken until connect picks one for the 4-tuple.
        assert_eq!(socket.local_addr().unwrap().port(), 0);
        let plain = TcpSocket::new_v4().unwrap();
        plain.bind("127.0.0.2:0".parse().unwrap()).unwrap();
        assert_ne!(plain.local_addr().unwrap().port(), 0);
    }

    #[tokio::test]
    async fn a_failed_bind_names_the_source_address() {
        let to: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let e = tcp_connect(Some("192.0.2.1".parse().unwrap()), to)
            .await
            .unwrap_err();
        assert!(
            e.starts_with("from source address 192.0.2.1: cannot bind to it: "),
            "{e}"
        );
    }
}
