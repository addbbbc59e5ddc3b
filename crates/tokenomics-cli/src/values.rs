//! Checked value parsers for numeric flags (`#[arg(value_parser = values::positive_seconds)]`).
//!
//! Every number typed on a command line is refused here, with its range, unless it is finite and
//! inside bounds that keep all later arithmetic safe: a duration of at most a year converts to a
//! [`Duration`] without overflow and can be added to an `Instant`; a rate of at most a million
//! requests per second over at most a year still schedules in `u64` nanoseconds. Integer counts
//! use clap's own `value_parser!(u64).range(…)` with the bounds below. Lists of source addresses
//! (`--source_ips`) are parsed here too, with a bound on how many a range may expand to.
//!
//! Each parser takes the text of one value (surrounding spaces allowed) and returns the value in
//! the unit its name says — seconds or milliseconds become a [`Duration`], rates stay requests per
//! second — or a [`BadValue`] whose message is one line, `expected WHAT from MIN to MAX` (or
//! `above MIN and at most MAX`), which clap prints after the flag and the value. NaN, infinities,
//! empty text and anything out of range are refused; nothing is clamped or rounded to fit.
//!
//! ```
//! use std::time::Duration;
//! use tokenomics_cli::values;
//!
//! assert_eq!(values::seconds("0").unwrap(), Duration::ZERO);
//! assert!(values::positive_seconds("0").is_err(), "a timeout of no time is refused");
//! assert_eq!(
//!     values::positive_seconds("nan").unwrap_err().to_string(),
//!     "expected a number of seconds above 0 and at most 31536000"
//! );
//! assert_eq!(values::milliseconds("1.5").unwrap(), Duration::from_micros(1500));
//! ```

use std::net::{IpAddr, Ipv4Addr};
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

/// The most source addresses `--source_ips` takes in all (ranges expanded): a /16.
pub const MAX_SOURCE_IPS: u64 = 65_536;

/// A value a flag refuses: the message, one line, says what was expected (and, for
/// `--source_ips`, an example).
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

/// Seconds above 0 and at most [`MAX_SECONDS`] (a year), fractions allowed, as a [`Duration`]:
/// for timeouts and waits that cannot be zero (`--timeout`, `--wait_ready`).
pub fn positive_seconds(s: &str) -> Result<Duration, BadValue> {
    let x = in_range(s, 0.0, false, MAX_SECONDS, "a number of seconds")?;
    Duration::try_from_secs_f64(x).map_err(|e| BadValue(e.to_string()))
}

/// Seconds from 0 to [`MAX_SECONDS`] (a year), fractions allowed, as a [`Duration`]: for
/// lengths of time that may be none (a warm-up, a gap between runs).
pub fn seconds(s: &str) -> Result<Duration, BadValue> {
    let x = in_range(s, 0.0, true, MAX_SECONDS, "a number of seconds")?;
    Duration::try_from_secs_f64(x).map_err(|e| BadValue(e.to_string()))
}

/// Milliseconds (not seconds) from 0 to [`MAX_SECONDS`] × 1000, fractions allowed, as a
/// [`Duration`]: `50` is 50 ms.
pub fn milliseconds(s: &str) -> Result<Duration, BadValue> {
    let x = in_range(s, 0.0, true, MAX_SECONDS * 1e3, "a number of milliseconds")?;
    Duration::try_from_secs_f64(x / 1e3).map_err(|e| BadValue(e.to_string()))
}

/// Requests per second above 0 and at most [`MAX_RATE`], as given (`20.5` stays 20.5).
pub fn rate(s: &str) -> Result<f64, BadValue> {
    in_range(s, 0.0, false, MAX_RATE, "a number of requests per second")
}

/// A time scale above 0 and at most [`MAX_TIME_SCALE`]: model seconds per real second (`2`
/// runs the simulation twice as fast as real time, `0.5` half as fast).
pub fn time_scale(s: &str) -> Result<f64, BadValue> {
    in_range(s, 0.0, false, MAX_TIME_SCALE, "a time scale")
}

/// A number above 0 and at most 1e9, of no particular unit (the flag's help says which).
pub fn positive_number(s: &str) -> Result<f64, BadValue> {
    in_range(s, 0.0, false, 1e9, "a number")
}

/// A confidence level from 0.5 to 0.999 (the share of repeated runs whose interval would hold
/// the true value).
pub fn confidence(s: &str) -> Result<f64, BadValue> {
    in_range(s, 0.5, true, 0.999, "a confidence level")
}

/// A price in dollars per GPU-hour: above 0 and at most 10,000.
pub fn gpu_hour_cost(s: &str) -> Result<f64, BadValue> {
    in_range(s, 0.0, false, 10_000.0, "dollars per GPU-hour")
}

/// The share of the GPUs' time charged to input tokens: from 0 to 0.99 (a fraction, not a
/// percentage; the rest is charged to output tokens).
pub fn cost_share(s: &str) -> Result<f64, BadValue> {
    in_range(s, 0.0, true, 0.99, "a share of the time")
}

/// A share above 0 and at most 1, a fraction not a percentage (an attainment, a tolerance).
pub fn share(s: &str) -> Result<f64, BadValue> {
    in_range(s, 0.0, false, 1.0, "a share")
}

/// A share from 0 to 1, a fraction not a percentage (an error rate, where none is allowed).
pub fn share_or_zero(s: &str) -> Result<f64, BadValue> {
    in_range(s, 0.0, true, 1.0, "a share")
}

/// A sampling temperature from 0 to 2.
pub fn temperature(s: &str) -> Result<f64, BadValue> {
    in_range(s, 0.0, true, 2.0, "a temperature")
}

/// `--balance`: `round_robin` or `least_loaded`, spelled so; anything else is refused naming
/// both.
pub fn balance(s: &str) -> Result<tokenomics_client::Balance, BadValue> {
    s.parse().map_err(|_| {
        BadValue(format!(
            "{s:?} is not a balance; use round_robin or least_loaded"
        ))
    })
}

/// The local addresses connections are opened from (`--source_ips`), in the order given, ranges
/// expanded: each a single host's address, none twice, all of one family, at most
/// [`MAX_SOURCE_IPS`], when [`source_ips`] made it from a command line. Whether each address
/// belongs to this host is found at the first connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceIps(
    /// The addresses, in the order connections take them in turn; never empty from
    /// [`source_ips`].
    pub Vec<IpAddr>,
);

/// A comma-separated list whose items are IP addresses or inclusive IPv4 ranges `A-B`, e.g.
/// `127.0.0.2-127.0.0.9` or `10.0.0.5,10.0.0.6,fd00::5`, parsed into [`SourceIps`].
///
/// Refused, in one line with an example: an empty item, text that is not an address (host
/// names, ports, CIDR prefixes), a range that ends before it starts or is not two IPv4
/// addresses (IPv6 addresses are listed one by one), an address that cannot be a source
/// (unspecified, multicast, broadcast), IPv4 and IPv6 mixed, an address given twice, and more
/// than [`MAX_SOURCE_IPS`] in all (checked before a range is expanded).
///
/// ```
/// use tokenomics_cli::values::source_ips;
///
/// assert_eq!(source_ips("127.0.0.2-127.0.0.4,127.0.0.9").unwrap().0.len(), 4);
/// assert!(source_ips("127.0.0.1,::1").is_err(), "one family only");
/// ```
pub fn source_ips(s: &str) -> Result<SourceIps, BadValue> {
    const EXAMPLE: &str = "e.g. 127.0.0.2-127.0.0.9 or 10.0.0.5,10.0.0.6";
    let bad = |why: String| BadValue(format!("{why} ({EXAMPLE})"));
    let address = |t: &str| {
        t.parse::<IpAddr>().map_err(|_| {
            // The text quoted in the message is cut short: it is a line, not a dump.
            let shown: String = t.chars().take(48).collect();
            let cut = if shown.len() < t.len() { "…" } else { "" };
            bad(format!("{shown:?}{cut} is not an IP address"))
        })
    };
    let mut addrs: Vec<IpAddr> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for item in s.split(',').map(str::trim) {
        if item.is_empty() {
            return Err(bad(
                "expected IP addresses or IPv4 ranges separated by commas, found an empty item"
                    .into(),
            ));
        }
        // An IPv6 address never contains '-', so the first one splits a range.
        let (first, last) = match item.split_once('-') {
            None => {
                let a = address(item)?;
                (a, a)
            }
            Some((a, b)) => match (address(a.trim())?, address(b.trim())?) {
                (IpAddr::V4(a), IpAddr::V4(b)) if a <= b => (IpAddr::V4(a), IpAddr::V4(b)),
                (IpAddr::V4(_), IpAddr::V4(_)) => {
                    return Err(bad(format!("the range {item} ends before it starts")))
                }
                _ => {
                    return Err(bad(format!(
                        "the range {item} is not two IPv4 addresses (IPv6 addresses are listed one by one)"
                    )))
                }
            },
        };
        let count = match (first, last) {
            (IpAddr::V4(a), IpAddr::V4(b)) => u64::from(u32::from(b) - u32::from(a)) + 1,
            _ => 1,
        };
        if addrs.len() as u64 + count > MAX_SOURCE_IPS {
            return Err(bad(format!(
                "at most {MAX_SOURCE_IPS} source addresses in all"
            )));
        }
        let expanded: Box<dyn Iterator<Item = IpAddr>> = match (first, last) {
            (IpAddr::V4(a), IpAddr::V4(b)) => {
                Box::new((u32::from(a)..=u32::from(b)).map(|x| IpAddr::V4(Ipv4Addr::from(x))))
            }
            _ => Box::new(std::iter::once(first)),
        };
        for ip in expanded {
            if ip.is_unspecified() || ip.is_multicast() || ip == IpAddr::V4(Ipv4Addr::BROADCAST) {
                return Err(bad(format!("{ip} cannot be the source of a connection")));
            }
            if addrs.first().is_some_and(|f| f.is_ipv4() != ip.is_ipv4()) {
                return Err(bad(
                    "mixes IPv4 and IPv6 addresses; give addresses of the server's family".into(),
                ));
            }
            if !seen.insert(ip) {
                return Err(bad(format!("{ip} is given twice")));
            }
            addrs.push(ip);
        }
    }
    Ok(SourceIps(addrs))
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

    #[test]
    fn source_ips_take_lists_and_ranges() {
        let ips = |s: &str| -> Vec<String> {
            source_ips(s)
                .unwrap()
                .0
                .iter()
                .map(ToString::to_string)
                .collect()
        };
        assert_eq!(
            ips("127.0.0.2-127.0.0.5"),
            ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"]
        );
        assert_eq!(ips(" 10.0.0.5 , 10.0.0.7 "), ["10.0.0.5", "10.0.0.7"]);
        assert_eq!(ips("10.0.0.1-10.0.0.1,10.0.1.0"), ["10.0.0.1", "10.0.1.0"]);
        // Across an octet boundary.
        assert_eq!(
            ips("10.0.0.254-10.0.1.1"),
            ["10.0.0.254", "10.0.0.255", "10.0.1.0", "10.0.1.1"]
        );
        assert_eq!(ips("::1,fd00::5"), ["::1", "fd00::5"]);
        // A whole /16 is the most.
        assert_eq!(
            source_ips("10.1.0.0-10.1.255.255").unwrap().0.len() as u64,
            MAX_SOURCE_IPS
        );
    }

    #[test]
    fn hostile_source_ips_are_refused_in_one_line() {
        let refused = [
            ("127.0.0.9-127.0.0.2", "ends before it starts"),
            ("300.1.1.1", "is not an IP address"),
            ("127.0.0.1-::1", "not two IPv4 addresses"),
            ("::1-::5", "IPv6 addresses are listed one by one"),
            ("10.0.0.0-10.1.0.0", "at most 65536"),
            ("0.0.0.0-255.255.255.255", "at most 65536"),
            ("10.0.0.0-10.0.255.255,10.1.0.0", "at most 65536"),
            ("127.0.0.1,::1", "mixes IPv4 and IPv6"),
            ("127.0.0.2,127.0.0.2", "given twice"),
            ("127.0.0.1-127.0.0.3,127.0.0.2", "given twice"),
            ("0.0.0.0", "cannot be the source"),
            ("::", "cannot be the source"),
            ("224.0.0.1", "cannot be the source"),
            ("255.255.255.254-255.255.255.255", "cannot be the source"),
            ("", "empty item"),
            ("127.0.0.2,", "empty item"),
            (",", "empty item"),
            ("-", "is not an IP address"),
            ("-1", "is not an IP address"),
            ("127.0.0.1-", "is not an IP address"),
            ("127.0.0.1--127.0.0.2", "is not an IP address"),
            ("127.0.0.1-127.0.0.2-127.0.0.3", "is not an IP address"),
            ("127.0.0.1/24", "is not an IP address"),
            ("localhost", "is not an IP address"),
            ("[::1]", "is not an IP address"),
            ("127.0.0.1:80", "is not an IP address"),
            ("1e300", "is not an IP address"),
            ("18446744073709551616", "is not an IP address"),
        ];
        for (s, why) in refused {
            let msg = source_ips(s).unwrap_err().to_string();
            assert!(msg.contains(why), "{s:?}: {msg}");
            assert_eq!(msg.lines().count(), 1, "{s:?}: {msg}");
        }
        let long = "1".repeat(100_000);
        assert!(source_ips(&long).unwrap_err().to_string().len() < 200);
        assert_eq!(
            source_ips("127.0.0.9-127.0.0.2").unwrap_err().to_string(),
            "the range 127.0.0.9-127.0.0.2 ends before it starts (e.g. 127.0.0.2-127.0.0.9 or 10.0.0.5,10.0.0.6)"
        );
    }
}
