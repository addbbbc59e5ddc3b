//! The live progress display: requests done, in flight, failed, output tokens/s so far and time
//! elapsed in the current level. On a terminal, one line redrawn in place (indicatif); otherwise a
//! plain line every ten seconds, so logs stay readable.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use tokenomics_client::Clock;

use crate::sustained::Progress;

/// How often a plain (not a terminal) progress line is printed.
pub const PLAIN_EVERY: Duration = Duration::from_secs(10);

/// A running progress display. Text printed while it runs must go through [`Live::print`], so
/// it does not tear the line being redrawn.
pub struct Live {
    bar: Option<ProgressBar>,
    task: tokio::task::JoinHandle<()>,
}

/// The progress line: `12.3 s · 340 done · 64 in flight · 2 failed · 12,345 output tokens/s`.
pub fn line(p: &Progress, clock: &Clock) -> String {
    let start = p.level_start_ns.load(Ordering::Relaxed);
    let elapsed = clock.now_ns().saturating_sub(start) as f64 / 1e9;
    let done = p.done.load(Ordering::Relaxed);
    let failed = p.failed.load(Ordering::Relaxed);
    let tokens = p.tokens.load(Ordering::Relaxed) as f64;
    let rate = if elapsed > 0.0 { tokens / elapsed } else { 0.0 };
    let mut s = format!(
        "{elapsed:.1} s · {done} done · {} in flight · {rate:.0} output tokens/s",
        p.in_flight()
    );
    if failed > 0 {
        s.push_str(&format!(" · {failed} failed"));
    }
    s
}

impl Live {
    /// Starts the display (call within a runtime). `terminal`: draw in place; otherwise print a
    /// plain line every [`PLAIN_EVERY`] while requests are in flight.
    pub fn start(progress: Arc<Progress>, clock: Clock, terminal: bool) -> Self {
        if terminal {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("  {spinner} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            let b = bar.clone();
            let task = tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_millis(200));
                loop {
                    tick.tick().await;
                    if progress.sent.load(Ordering::Relaxed) > 0 {
                        b.set_message(line(&progress, &clock));
                        b.tick();
                    }
                }
            });
            Self {
                bar: Some(bar),
                task,
            }
        } else {
            let task = tokio::spawn(async move {
                let mut tick = tokio::time::interval(PLAIN_EVERY);
                tick.tick().await;
                loop {
                    tick.tick().await;
                    // A level that has just begun has nothing to tell yet.
                    let started = progress.level_start_ns.load(Ordering::Relaxed);
                    let running = clock.now_ns().saturating_sub(started);
                    if progress.in_flight() > 0 && running >= 1_000_000_000 {
                        crate::console::say(&format!("  progress: {}", line(&progress, &clock)));
                    }
                }
            });
            Self { bar: None, task }
        }
    }

    /// Prints `text` (which ends with a newline or not) above the progress line.
    pub fn print(&self, text: &str) {
        let text = text.strip_suffix('\n').unwrap_or(text);
        match &self.bar {
            Some(bar) => bar.suspend(|| crate::console::say(text)),
            None => crate::console::say(text),
        }
    }

    /// Removes the display.
    pub fn finish(self) {
        self.task.abort();
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}
