//! A capacity for the fixed schedule: at most N requests served at once, the others waiting first
//! come, first served (tokio's semaphore queues its waiters in order).
//!
//! A request's schedule starts when it gets a slot. So that a late wake-up of the task that frees
//! a slot never pushes the schedule back, a slot freed by a request that ran to its end is handed
//! on at the instant that request's last token was *due*, not when its task got round to letting
//! go: a request that waited starts exactly when its predecessor was due to end, and with output
//! length L the service time is S = ttft + (L − 1)·itl to the nanosecond, so N slots serve N/S
//! requests per second. A slot freed early (the client went away) is handed on at that moment.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::Error;

/// The most slots a server may have (far above any useful number, far below the semaphore's
/// limit).
pub const MAX_SLOTS: u64 = 1 << 20;

/// The slots of one server.
pub(crate) struct Slots {
    permits: Arc<Semaphore>,
    /// For every free slot, the instant from which it is free: when the request that last held
    /// it was due to end (or left). One entry per available permit: an entry is pushed before
    /// its permit is returned.
    /// A min-heap, so that taking the earliest costs O(log n) however many slots there are.
    free_since: Mutex<BinaryHeap<Reverse<Instant>>>,
    size: u64,
    waiting: AtomicU64,
}

impl Slots {
    /// `size` slots (1..=[`MAX_SLOTS`]), free since `origin`.
    pub fn new(size: u64, origin: Instant) -> Result<Self, Error> {
        if !(1..=MAX_SLOTS).contains(&size) {
            return Err(Error::Invalid(format!(
                "max_running must be between 1 and {MAX_SLOTS}, got {size}"
            )));
        }
        Ok(Self {
            permits: Arc::new(Semaphore::new(size as usize)),
            free_since: Mutex::new((0..size).map(|_| Reverse(origin)).collect()),
            size,
            waiting: AtomicU64::new(0),
        })
    }

    /// Waits (first come, first served) for a slot. The slot's schedule starts now, or, when
    /// the request had to wait, at the instant the slot became free.
    pub async fn acquire(self: &Arc<Self>) -> Result<Slot, Error> {
        let asked = Instant::now();
        let permit = {
            let _waiting = Waiting::new(&self.waiting);
            self.permits
                .clone()
                .acquire_owned()
                .await
                .map_err(|_| Error::Request("the server is shutting down".into()))?
        };
        // The earliest-freed slot: with several free, it starts the request no later.
        let free = self
            .free_since
            .lock()
            .ok()
            .and_then(|mut f| f.pop().map(|Reverse(t)| t));
        Ok(Slot {
            slots: self.clone(),
            start: free.map_or(asked, |t| t.max(asked)),
            due_end: None,
            _permit: permit,
        })
    }

    /// Slots held.
    pub fn running(&self) -> u64 {
        self.size
            .saturating_sub(self.permits.available_permits() as u64)
    }

    /// Requests waiting for a slot.
    pub fn waiting(&self) -> u64 {
        self.waiting.load(Ordering::Relaxed)
    }
}

/// Counts a waiter for as long as it waits, however its wait ends (a client that leaves drops
/// the future).
struct Waiting<'a>(&'a AtomicU64);
impl<'a> Waiting<'a> {
    fn new(n: &'a AtomicU64) -> Self {
        n.fetch_add(1, Ordering::Relaxed);
        Self(n)
    }
}
impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A held slot; dropping it frees the slot.
pub(crate) struct Slot {
    slots: Arc<Slots>,
    /// When this request's schedule starts.
    pub start: Instant,
    /// When its last token is due; None: free the slot whenever it is dropped.
    due_end: Option<Instant>,
    // Dropped after `Drop::drop` has recorded when the slot is free.
    _permit: OwnedSemaphorePermit,
}

impl Slot {
    /// The instant the request's last token is due: a slot dropped after it is free from then.
    pub fn ends_at(&mut self, at: Option<Instant>) {
        self.due_end = at;
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let now = Instant::now();
        let free = self.due_end.map_or(now, |d| d.min(now));
        if let Ok(mut f) = self.slots.free_since.lock() {
            f.push(Reverse(free));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn waiters_start_when_their_predecessor_was_due_to_end() {
        let origin = Instant::now();
        let slots = Arc::new(Slots::new(1, origin).unwrap());
        let mut first = slots.acquire().await.unwrap();
        assert!(first.start >= origin);
        let due = first.start + Duration::from_millis(30);
        first.ends_at(Some(due));
        let waiter = {
            let slots = slots.clone();
            tokio::spawn(async move { slots.acquire().await.unwrap().start })
        };
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert_eq!((slots.running(), slots.waiting()), (1, 1));
        // Freed late (40 ms, not 30): the next schedule still starts at the due instant.
        tokio::time::sleep(Duration::from_millis(35)).await;
        drop(first);
        assert_eq!(waiter.await.unwrap(), due);
        assert_eq!((slots.running(), slots.waiting()), (0, 0));
        // A slot dropped early (no due end set) is free from that moment.
        let before = Instant::now();
        drop(slots.acquire().await.unwrap());
        assert!(slots.acquire().await.unwrap().start >= before);
    }

    #[tokio::test]
    async fn a_waiter_that_leaves_gives_up_its_place() {
        let slots = Arc::new(Slots::new(1, Instant::now()).unwrap());
        let held = slots.acquire().await.unwrap();
        let gone = {
            let slots = slots.clone();
            tokio::spawn(async move { slots.acquire().await.map(|_| ()) })
        };
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert_eq!(slots.waiting(), 1);
        gone.abort();
        let _ = gone.await;
        assert_eq!(slots.waiting(), 0);
        drop(held);
        // The slot is not lost to the waiter that left.
        let again = tokio::time::timeout(Duration::from_secs(5), slots.acquire()).await;
        assert!(again.is_ok());
    }

    #[test]
    fn sizes_are_bounded() {
        assert!(Slots::new(0, Instant::now()).is_err());
        assert!(Slots::new(MAX_SLOTS + 1, Instant::now()).is_err());
    }
}
