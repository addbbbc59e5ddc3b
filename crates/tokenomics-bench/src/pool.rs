//! Keep-alive connections shared by the runs of a benchmark, and the burst: N requests released
//! at once, one per connection.

use std::future::Future;
use std::sync::Arc;

use tokenomics_client::{Client, Clock, Connection};

/// Opens (or checks) `conns` all at once and returns them in order, so connection set-up is never
/// inside a timed request. A failure here is not reported: it surfaces again, counted, when a
/// request is sent on the connection.
pub async fn open_all(
    client: &Client,
    conns: impl IntoIterator<Item = Connection>,
) -> Vec<Connection> {
    let opening: Vec<_> = conns
        .into_iter()
        .map(|mut c| {
            tokio::spawn(async move {
                let _ = c.connect().await;
                c
            })
        })
        .collect();
    let mut ready = Vec::with_capacity(opening.len());
    for handle in opening {
        ready.push(handle.await.unwrap_or_else(|_| client.connection()));
    }
    ready
}

/// How long before a timetabled start a closed loop opens its connections.
const OPEN_BEFORE_START_NS: u64 = 2_000_000_000;

/// A closed loop's `n` connections, opened before its clock starts (as the burst's are), and on
/// a timetable (`start_ns` on `clock`) shortly before the start rather than long before it: a
/// server closes idle keep-alive connections after a few seconds (uvicorn: 5 s), and every
/// worker would then reconnect at the start. Returns at the start (at once without a timetable).
pub(crate) async fn open_on_time(
    client: &Client,
    clock: Clock,
    start_ns: Option<u64>,
    n: usize,
) -> Vec<Connection> {
    if let Some(start) = start_ns {
        let open_at = start.saturating_sub(OPEN_BEFORE_START_NS);
        tokio::time::sleep_until(clock.instant_at(open_at).into()).await;
    }
    let conns = open_all(client, (0..n).map(|_| client.connection())).await;
    if let Some(start) = start_ns {
        tokio::time::sleep_until(clock.instant_at(start).into()).await;
    }
    conns
}

/// Connections kept alive across runs and levels; a burst of N uses the first N.
pub struct ConnectionPool {
    client: Client,
    connections: Vec<Connection>,
}

impl ConnectionPool {
    /// An empty pool; connections are opened from `client` as they are first asked for.
    pub fn new(client: Client) -> Self {
        Self {
            client,
            connections: Vec::new(),
        }
    }

    /// The client the connections come from.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The first connection (opened lazily), for single requests such as warm-ups.
    pub fn first(&mut self) -> &mut Connection {
        if self.connections.is_empty() {
            self.connections.push(self.client.connection());
        }
        &mut self.connections[0]
    }

    /// Runs `op` once per item, all at once, each on its own connection, and returns the outputs
    /// in item order. Connections are opened (or checked) before the burst is released, so
    /// connection set-up is not inside any timed request. `failed` turns a task that could not
    /// complete into an output.
    pub async fn burst<T, R, F, Fut>(
        &mut self,
        items: Vec<T>,
        op: F,
        failed: impl Fn(String) -> R,
    ) -> Vec<R>
    where
        T: Send + 'static,
        R: Send + 'static,
        F: Fn(Connection, T) -> Fut + Clone + Send + 'static,
        Fut: Future<Output = (Connection, R)> + Send + 'static,
    {
        let n = items.len();
        while self.connections.len() < n {
            self.connections.push(self.client.connection());
        }
        let taken: Vec<Connection> = self.connections.drain(..n).collect();
        let ready = open_all(&self.client, taken).await;
        let gate = Arc::new(tokio::sync::Barrier::new(n + 1));
        let handles: Vec<_> = ready
            .into_iter()
            .zip(items)
            .map(|(conn, item)| {
                let (gate, op) = (gate.clone(), op.clone());
                tokio::spawn(async move {
                    gate.wait().await;
                    op(conn, item).await
                })
            })
            .collect();
        gate.wait().await;
        let mut outputs = Vec::with_capacity(n);
        let mut returned = Vec::with_capacity(n + self.connections.len());
        for handle in handles {
            match handle.await {
                Ok((conn, out)) => {
                    returned.push(conn);
                    outputs.push(out);
                }
                Err(e) => {
                    returned.push(self.client.connection());
                    outputs.push(failed(format!("request task failed: {e}")));
                }
            }
        }
        returned.append(&mut self.connections);
        self.connections = returned;
        outputs
    }
}
