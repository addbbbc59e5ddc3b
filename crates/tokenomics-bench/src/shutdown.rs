//! Stopping a benchmark early, without losing what it measured.
//!
//! A [`Shutdown`] is shared by everything that sends requests. The first request to stop
//! ([`Shutdown::stop`], e.g. on Ctrl-C or SIGTERM) ends the sending: no new run or level starts,
//! and requests in flight get a grace period to finish. A second request ([`Shutdown::stop_now`])
//! cancels them at once. Cancelled requests are counted as failures of kind `interrupted`, the
//! level in progress is aggregated from what completed and marked incomplete, and the file is
//! written.

use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;

const RUNNING: u8 = 0;
const STOPPING: u8 = 1;
const STOP_NOW: u8 = 2;

/// How long requests in flight may finish after the first stop request.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(3);

/// A cloneable stop switch with a grace period.
#[derive(Clone)]
pub struct Shutdown {
    state: watch::Sender<u8>,
    grace: Duration,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new(DEFAULT_GRACE)
    }
}

impl Shutdown {
    /// A switch not yet thrown; after [`Shutdown::stop`], requests in flight get `grace` to
    /// finish before they are abandoned.
    pub fn new(grace: Duration) -> Self {
        Self {
            state: watch::Sender::new(RUNNING),
            grace,
        }
    }

    /// Stop sending; requests in flight get the grace period, after which they are abandoned
    /// (one timer for all of them, so a request in flight carries no timer of its own).
    pub fn stop(&self) {
        let first = self.state.send_if_modified(|s| {
            let was = *s;
            *s = (*s).max(STOPPING);
            was != *s
        });
        if !first {
            return;
        }
        let (me, grace) = (self.clone(), self.grace);
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn(async move {
                    tokio::time::sleep(grace).await;
                    me.stop_now();
                });
            }
            Err(_) => {
                std::thread::spawn(move || {
                    std::thread::sleep(grace);
                    me.stop_now();
                });
            }
        }
    }

    /// Cancel requests in flight at once.
    pub fn stop_now(&self) {
        self.state.send_replace(STOP_NOW);
    }

    /// A stop was requested (no new request should start).
    pub fn is_stopping(&self) -> bool {
        *self.state.borrow() >= STOPPING
    }

    /// Completes when a stop is requested (at once if one was).
    pub async fn stopping(&self) {
        let mut rx = self.state.subscribe();
        let _ = rx.wait_for(|s| *s >= STOPPING).await;
    }

    /// Completes when requests in flight must be abandoned: at a second stop request, or when
    /// the grace period after the first one is over. Small on purpose: one of these waits beside
    /// every request in flight.
    async fn abandon(&self) {
        let mut rx = self.state.subscribe();
        let _ = rx.wait_for(|s| *s >= STOP_NOW).await;
    }

    /// Runs `fut` unless the benchmark is abandoned first (`None`).
    ///
    /// `fut` is moved to the heap once: a future passed by value into an `async fn` is kept
    /// twice in its state (as the argument and as the polled value), which for a request in
    /// flight doubled the few KiB its state takes.
    pub fn run<F: Future>(&self, fut: F) -> impl Future<Output = Option<F::Output>> {
        let fut = Box::pin(fut);
        let me = self.clone();
        async move {
            tokio::select! {
                biased;
                out = fut => Some(out),
                _ = me.abandon() => None,
            }
        }
    }

    /// Installs handlers: the first Ctrl-C or SIGTERM calls [`Shutdown::stop`] (and runs
    /// `on_first`), the second [`Shutdown::stop_now`]. Call from within a runtime.
    pub fn on_signals(&self, on_first: impl Fn() + Send + 'static) {
        let me = self.clone();
        tokio::spawn(async move {
            #[cfg(unix)]
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
            for n in 0.. {
                #[cfg(unix)]
                let term_recv = async {
                    match term.as_mut() {
                        Some(t) => {
                            t.recv().await;
                        }
                        None => std::future::pending::<()>().await,
                    }
                };
                #[cfg(not(unix))]
                let term_recv = std::future::pending::<()>();
                tokio::select! {
                    r = tokio::signal::ctrl_c() => if r.is_err() { return },
                    _ = term_recv => {}
                }
                if n == 0 {
                    me.stop();
                    on_first();
                } else {
                    me.stop_now();
                    return;
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn grace_then_cancel() {
        let s = Shutdown::new(Duration::from_secs(3));
        assert!(!s.is_stopping());
        let slow = s.clone();
        let task =
            tokio::spawn(
                async move { slow.run(tokio::time::sleep(Duration::from_secs(10))).await },
            );
        tokio::time::sleep(Duration::from_secs(1)).await;
        s.stop();
        assert!(s.is_stopping());
        let start = tokio::time::Instant::now();
        assert_eq!(
            task.await.unwrap(),
            None,
            "abandoned after the grace period"
        );
        assert_eq!(start.elapsed(), Duration::from_secs(3));
        // Work that ends within the grace period completes.
        let quick = s.clone();
        assert_eq!(quick.run(async { 7 }).await, Some(7));
    }

    #[tokio::test(start_paused = true)]
    async fn a_second_stop_cancels_at_once() {
        let s = Shutdown::new(Duration::from_secs(30));
        let slow = s.clone();
        let task =
            tokio::spawn(
                async move { slow.run(tokio::time::sleep(Duration::from_secs(100))).await },
            );
        tokio::time::sleep(Duration::from_secs(1)).await;
        s.stop();
        tokio::time::sleep(Duration::from_secs(1)).await;
        s.stop_now();
        let start = tokio::time::Instant::now();
        assert_eq!(task.await.unwrap(), None);
        assert!(start.elapsed() < Duration::from_millis(10));
    }
}
