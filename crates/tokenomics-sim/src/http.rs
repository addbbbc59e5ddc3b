//! The HTTP side of a simulated server: an accept loop on a loopback listener, one hyper HTTP/1.1
//! connection task per socket, and a response body fed from a channel so a handler can emit SSE
//! events on its own schedule. Shared by `oai-sim` and the test servers of the other crates.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};

/// A response body: either complete bytes, or pieces sent through a channel. Sending an `Err`
/// aborts the connection mid-body (the client sees a body cut short).
pub enum SimBody {
    /// The whole body at once (`None` once it was taken by the connection).
    Full(Option<Bytes>),
    /// Frames as they are sent through the channel, the body ending when the sender is dropped;
    /// with [`FrameStamps`], the moment each frame is taken by the connection is recorded.
    Channel(
        mpsc::Receiver<Result<Bytes, std::io::Error>>,
        Option<FrameStamps>,
    ),
}

/// When each data frame of a body was taken by the connection to be written: the moment closest
/// to the socket that a handler can observe (queuing a frame is earlier, by as long as the
/// server's other tasks keep the connection task waiting).
#[derive(Clone)]
pub struct FrameStamps {
    origin: std::time::Instant,
    times: Arc<std::sync::Mutex<Vec<u64>>>,
    body_dropped: Arc<tokio::sync::Notify>,
}

impl FrameStamps {
    /// Stamps in nanoseconds since `origin`.
    pub fn new(origin: std::time::Instant) -> Self {
        Self {
            origin,
            times: Arc::default(),
            body_dropped: Arc::default(),
        }
    }

    /// Completes once the body is gone: every frame it will ever take has been stamped. (Drop the
    /// body's sender first, or the body never ends.)
    pub async fn body_done(&self) {
        self.body_dropped.notified().await;
    }

    fn stamp(&self) {
        let t = self.origin.elapsed().as_nanos() as u64;
        if let Ok(mut v) = self.times.lock() {
            v.push(t);
        }
    }

    /// The stamps so far, one per data frame, in order.
    pub fn times(&self) -> Vec<u64> {
        self.times.lock().map(|v| v.clone()).unwrap_or_default()
    }
}

impl SimBody {
    /// A complete body of `bytes`.
    pub fn full(bytes: impl Into<Bytes>) -> Self {
        SimBody::Full(Some(bytes.into()))
    }

    /// A streaming body and the sender that feeds it (bounded; the handler waits when the client
    /// reads slowly, as a real server's socket buffer makes it).
    pub fn channel(capacity: usize) -> (mpsc::Sender<Result<Bytes, std::io::Error>>, Self) {
        let (tx, rx) = mpsc::channel(capacity);
        (tx, SimBody::Channel(rx, None))
    }
}

impl Drop for SimBody {
    fn drop(&mut self) {
        if let SimBody::Channel(_, Some(stamps)) = self {
            stamps.body_dropped.notify_one();
        }
    }
}

impl Body for SimBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match self.get_mut() {
            SimBody::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            SimBody::Channel(rx, stamps) => {
                let polled = rx.poll_recv(cx);
                if let (Poll::Ready(Some(Ok(_))), Some(s)) = (&polled, stamps.as_ref()) {
                    s.stamp();
                }
                polled.map(|o| o.map(|r| r.map(Frame::data)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, SimBody::Full(None))
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            SimBody::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            SimBody::Full(None) => SizeHint::with_exact(0),
            SimBody::Channel(..) => SizeHint::default(),
        }
    }
}

/// What a [`Handler`] returns: the response, once it is ready (its body may still be streaming).
pub type HandlerFuture = Pin<Box<dyn Future<Output = Response<SimBody>> + Send>>;

/// Answers requests. Implemented by the simulator and by test servers.
pub trait Handler: Send + Sync + 'static {
    /// The response to `req`. Called on the server's runtime, once per request.
    fn handle(self: Arc<Self>, req: Request<Incoming>) -> HandlerFuture;
}

/// A JSON response with the given status.
pub fn json_response(status: StatusCode, value: &serde_json::Value) -> Response<SimBody> {
    let mut resp = Response::new(SimBody::full(serde_json::to_vec(value).unwrap_or_default()));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    resp
}

/// An error body in the shape vLLM 0.33.0 answers errors with (`ErrorResponse`:
/// `{"error": {"message", "type", "param", "code"}}`), `type` the status's reason phrase as its
/// handler for HTTP exceptions writes it, no `param`.
pub fn error_response(status: StatusCode, message: &str) -> Response<SimBody> {
    json_response(
        status,
        &serde_json::json!({"error": {
            "message": message,
            "type": status.canonical_reason().unwrap_or("Error"),
            "param": null,
            "code": status.as_u16(),
        }}),
    )
}

/// A refused request, with the status, type and parameter vLLM gives it.
pub fn request_error(e: &crate::wire::RequestError) -> Response<SimBody> {
    json_response(
        StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST),
        &e.body(),
    )
}

/// FastAPI's 404 for a path with no route: `{"detail": "Not Found"}`.
pub fn not_found() -> Response<SimBody> {
    json_response(
        StatusCode::NOT_FOUND,
        &serde_json::json!({"detail": "Not Found"}),
    )
}

/// An SSE response whose events come through the returned sender; with `stamps`, every event's
/// hand-over to the connection is stamped.
pub fn sse_response(
    capacity: usize,
    stamps: Option<FrameStamps>,
) -> (
    mpsc::Sender<Result<Bytes, std::io::Error>>,
    Response<SimBody>,
) {
    let (tx, rx) = mpsc::channel(capacity);
    let mut resp = Response::new(SimBody::Channel(rx, stamps));
    let h = resp.headers_mut();
    h.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/event-stream"),
    );
    h.insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-cache"),
    );
    (tx, resp)
}

/// Reads a request body (bounded at 64 MiB).
pub async fn read_body(req: Request<Incoming>) -> Result<Bytes, crate::Error> {
    use http_body_util::BodyExt;
    let limited = http_body_util::Limited::new(req.into_body(), 64 << 20);
    limited
        .collect()
        .await
        .map(|c| c.to_bytes())
        .map_err(|e| crate::Error::Request(format!("cannot read request body: {e}")))
}

/// A running server; dropping it (or calling [`Server::shutdown`]) stops accepting.
pub struct Server {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Server {
    /// Serves `handler` on `addr` (use port 0 for a free port) in a task of the current runtime.
    pub async fn bind<H: Handler>(addr: SocketAddr, handler: Arc<H>) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let (stop, mut stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            loop {
                let (socket, _) = tokio::select! {
                    _ = &mut stopped => break,
                    accepted = listener.accept() => match accepted {
                        Ok(s) => s,
                        // Out of descriptors or a reset during accept: keep serving.
                        Err(_) => { tokio::time::sleep(std::time::Duration::from_millis(5)).await; continue }
                    },
                };
                let _ = socket.set_nodelay(true);
                let handler = handler.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let h = handler.clone();
                        async move { Ok::<_, Infallible>(h.handle(req).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(socket), service)
                        .await;
                });
            }
        });
        Ok(Self {
            addr,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// The address the server listens on (with the port the system chose for port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT/v1`.
    pub fn api_base(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Stops accepting connections and waits for the accept loop to end.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
