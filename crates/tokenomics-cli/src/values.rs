//! Checked value parsers for numeric flags (`#[arg(value_parser = values::positive_seconds)]`).
//!
//! Every number typed on a command line is refused here, with its range, unless it is finite and
//! inside bounds that keep all later arithmetic safe: a duration of at most a year converts to a
//! [`Duration`] without overflow and can be added to an `Instant`; a rate of at most a million
//! requests per second over at most a year still schedules in `u64` nanoseconds. Integer counts
//! use clap's own `value_parser!(u64).range(…)` with the bounds below.

use std::time::Duration;

/// The longest duration a flag takes: a year, in seconds.
pub const MAX_SECONDS: f64 = 365.0 * 24.0 * 3600.0;
/// The highest request rate a flag takes, requests per second.
pub const MAX_RATE: f64 = 1e6;
/// The largest time scale of the simulator (model seconds per real second).
pub const MAX_TIME_SCALE: f64 = 1e6;
/// The largest batch size, concurrency or number of requests in flight.
pub const MAX_CONCURRENCY: u64 = 1_000_000;
/// The most measured requests per level.
pub const MAX_REQUESTS: u64 = 100_000_000;
/// The most tokens a request may ask for.
pub const MAX_TOKENS: u64 = 100_000_000;
/// The most runs per level (and warm-up requests).
pub const MAX_RUNS: u64 = 1_000_000;

/// A value a flag refuses: the message says what was expected.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct BadValue(String);

fn number(s: &str, expected: &str) -> Result<f64, BadValue> {
    let t = s.trim();
    let bad = || BadValue(format!("expected {expected}"));
    if t.is_empty() {
        return Err(bad());
    }
    t.parse::<f64>()
        .ok()
        .filter(|x| x.is_finite())
        .ok_or_else(bad)
}

fn in_range(s: &str, min: f64, min_inclusive: bool, max: f64, what: &str) -> Result<f64, BadValue> {
    let expected = if min_inclusive {
        format!("{what} from {min} to {max}")
    } else {
        format!("{what} above {min} and at most {max}")
    };
    let x = number(s, &expected)?;
    let above = if min_inclusive { x >= min } else { x > min };
    if above && x <= max {
        Ok(x)
    } else {
        Err(BadValue(format!("expected {expected}")))
    }
}

/// Seconds above 0 and at most [`MAX_SECONDS`], as a [`Duration`].
pub fn positive_seconds(s: &str) -> Result<Duration, BadValue> {
    let x = in_range(s, 0.0, false, MAX_SECONDS, "a number of seconds")?;
    Duration::try_from_secs_f64(x).map_err(|e| BadValue(e.to_string()))
}

/// Seconds from 0 to [`MAX_SECONDS`], as a [`Duration`].
pub fn seconds(s: &str) -> Result<Duration, BadValue> {
    let x = in_range(s, 0.0, true, MAX_SECONDS, "a number of seconds")?;
    Duration::try_from_secs_f64(x).map_err(|e| BadValue(e.to_string()))
}

/// Milliseconds from 0 to [`MAX_SECONDS`] × 1000, as a [`Duration`].
pub fn milliseconds(s: &str) -> Result<Duration, BadValue> {
    let x = in_range(s, 0.0, true, MAX_SECONDS * 1e3, "a number of milliseconds")?;
    Duration::try_from_secs_f64(x / 1e3).map_err(|e| BadValue(e.to_string()))
}

/// Requests per second above 0 and at most [`MAX_RATE`].
pub fn rate(s: &str) -> Result<f64, BadValue> {
    in_range(s, 0.0, false, MAX_RATE, "a number of requests per second")
}

/// A time scale above 0 and at most [`MAX_TIME_SCALE`].
pub fn time_scale(s: &str) -> Result<f64, BadValue> {
    in_range(s, 0.0, false, MAX_TIME_SCALE, "a time scale")
}

/// A number above 0 and at most 1e9.
pub fn positive_number(s: &str) -> Result<f64, BadValue> {
    in_range(s, 0.0, false, 1e9, "a number")
}

/// A confidence level from 0.5 to 0.999 (the share of repeated runs whose interval would hold
/// the true value).
pub fn confidence(s: &str) -> Result<f64, BadValue> {
    in_range(s, 0.5, true, 0.999, "a confidence level")
}

/// A sampling temperature from 0 to 2.
pub fn temperature(s: &str) -> Result<f64, BadValue> {
    in_range(s, 0.0, true, 2.0, "a temperature")
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOSTILE: [&str; 7] = ["0", "-1", "nan", "inf", "1e300", "18446744073709551616", ""];

    #[test]
    fn hostile_numbers_are_refused() {
        for s in HOSTILE {
            assert!(positive_seconds(s).is_err(), "{s}");
            assert!(rate(s).is_err(), "{s}");
            assert!(time_scale(s).is_err(), "{s}");
            assert!(positive_number(s).is_err(), "{s}");
        }
        // Zero is a valid length of time where the flag allows none (a warm-up, a delay).
        assert_eq!(seconds("0").unwrap(), Duration::ZERO);
        assert_eq!(milliseconds("0").unwrap(), Duration::ZERO);
        for s in ["-1", "nan", "-inf", "1e300", ""] {
            assert!(seconds(s).is_err() && milliseconds(s).is_err(), "{s}");
            assert!(temperature(s).is_err(), "{s}");
        }
    }

    #[test]
    fn good_values_convert_exactly() {
        assert_eq!(
            positive_seconds("2.5").unwrap(),
            Duration::from_millis(2500)
        );
        assert_eq!(positive_seconds(" 600 ").unwrap(), Duration::from_secs(600));
        assert_eq!(milliseconds("50").unwrap(), Duration::from_millis(50));
        assert_eq!(rate("20.5").unwrap(), 20.5);
        let year = positive_seconds(&MAX_SECONDS.to_string()).unwrap();
        // The longest duration still leaves room on any Instant.
        assert!(std::time::Instant::now().checked_add(year).is_some());
        let msg = rate("-5").unwrap_err().to_string();
        assert_eq!(
            msg,
            "expected a number of requests per second above 0 and at most 1000000"
        );
    }
}
