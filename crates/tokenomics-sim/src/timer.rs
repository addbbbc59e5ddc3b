//! Timers precise to tens of microseconds.
//!
//! Tokio's timer wheel has a resolution of one millisecond, and a deadline is rounded up to the
//! next tick: a token due 10.2 ms after the previous one would leave at 11 ms. A simulator whose
//! truth must be known cannot afford that, so deadlines here are kept by one thread that sleeps on
//! a condition variable until the earliest one (the kernel wakes it within tens of microseconds)
//! and then completes every due waiter.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::Instant;

use tokio::sync::oneshot;

struct Entry {
    at: Instant,
    seq: u64,
    done: oneshot::Sender<()>,
}

impl PartialEq for Entry {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Entry {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(o.at, o.seq))
    }
}

#[derive(Default)]
struct Wheel {
    heap: BinaryHeap<Reverse<Entry>>,
    seq: u64,
}

struct TimerThread {
    wheel: Mutex<Wheel>,
    wake: Condvar,
}

fn timer() -> &'static TimerThread {
    static TIMER: OnceLock<&'static TimerThread> = OnceLock::new();
    TIMER.get_or_init(|| {
        let t: &'static TimerThread = Box::leak(Box::new(TimerThread {
            wheel: Mutex::new(Wheel::default()),
            wake: Condvar::new(),
        }));
        let _ = std::thread::Builder::new()
            .name("sim-timer".into())
            .spawn(move || run(t));
        t
    })
}

fn run(t: &'static TimerThread) {
    let Ok(mut wheel) = t.wheel.lock() else {
        return;
    };
    loop {
        let now = Instant::now();
        while wheel.heap.peek().is_some_and(|Reverse(e)| e.at <= now) {
            if let Some(Reverse(e)) = wheel.heap.pop() {
                let _ = e.done.send(());
            }
        }
        wheel = match wheel.heap.peek() {
            Some(Reverse(e)) => {
                let wait = e.at.saturating_duration_since(now);
                match t.wake.wait_timeout(wheel, wait) {
                    Ok((w, _)) => w,
                    Err(_) => return,
                }
            }
            None => match t.wake.wait(wheel) {
                Ok(w) => w,
                Err(_) => return,
            },
        };
    }
}

/// Completes at `at` (within tens of microseconds), or at once if `at` has passed.
pub async fn sleep_until(at: Instant) {
    if at <= Instant::now() {
        return;
    }
    let (done, rx) = oneshot::channel();
    let t = timer();
    if let Ok(mut w) = t.wheel.lock() {
        w.seq += 1;
        let seq = w.seq;
        let earliest = w.heap.peek().is_none_or(|Reverse(e)| at < e.at);
        w.heap.push(Reverse(Entry { at, seq, done }));
        if earliest {
            t.wake.notify_one();
        }
    } else {
        return;
    }
    let _ = rx.await;
}

/// Blocks the calling thread until `at`, precisely: sleep until shortly before, then spin.
pub fn sleep_until_precise(at: Instant) {
    const SPIN: std::time::Duration = std::time::Duration::from_micros(100);
    let now = Instant::now();
    if at > now + SPIN {
        std::thread::sleep(at - now - SPIN);
    }
    while Instant::now() < at {
        std::hint::spin_loop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn wakes_close_to_the_deadline() {
        let mut late = Vec::new();
        for i in 0..21u64 {
            let at = Instant::now() + Duration::from_micros(2_300 + i * 170);
            sleep_until(at).await;
            late.push(Instant::now() - at);
        }
        late.sort();
        // Tokio's own timer is late by up to 1 ms, 0.5 ms on average over these deadlines; the
        // median here (robust to a noisy machine) must beat that.
        assert!(
            late[10] < Duration::from_micros(450),
            "median lateness {:?}",
            late[10]
        );
    }
}
