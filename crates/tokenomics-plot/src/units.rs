//! Numbers as a reader wants them: each in the unit that suits its magnitude (`7.47 ms`, not
//! `0.00747` seconds; `1.2 s`, not `1.2k ms`), a duration's spread to two significant digits
//! with its mean to the same place (`7.47 ± 0.26 ms`), a rate's spread to the precision of the
//! rate (`3729 ± 122`), and no `± 0` for a single value. Every duration a figure writes (a
//! note, an axis's unit) goes through [`Unit::for_seconds`], [`time`] or [`time_mean_std`].

/// What a panel's values measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quantity {
    /// A duration, in seconds in the result files.
    Time,
    /// A rate (tokens/s, embeddings/s), written compactly (`3.7k`).
    Rate,
}

/// The unit a panel's axis is drawn in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Durations in seconds.
    Seconds,
    /// Durations in milliseconds.
    Milliseconds,
    /// Durations in microseconds.
    Microseconds,
    /// Rates: the axis label names them (`output tokens/s, whole batch`).
    PerSecond,
    /// Counts (requests in flight): the axis label names them.
    Count,
    /// A share, from 0 to 1 in the files, drawn in percent.
    Percent,
}

impl Unit {
    /// The unit for durations whose largest is `max_seconds`: the largest unit in which it is
    /// at least 1 (milliseconds when it is zero).
    pub fn for_seconds(max_seconds: f64) -> Unit {
        if max_seconds >= 1.0 || max_seconds.is_nan() {
            Unit::Seconds
        } else if max_seconds >= 1e-3 || max_seconds <= 0.0 {
            // Nothing to scale (no values): milliseconds, the usual unit of latencies.
            Unit::Milliseconds
        } else {
            Unit::Microseconds
        }
    }

    /// The symbol written after values and in axis labels (`None` for rates).
    pub fn symbol(self) -> Option<&'static str> {
        match self {
            Unit::Seconds => Some("s"),
            Unit::Milliseconds => Some("ms"),
            Unit::Microseconds => Some("µs"),
            Unit::Percent => Some("%"),
            Unit::PerSecond | Unit::Count => None,
        }
    }

    /// Values in this unit per value in the files' unit (seconds, or per second).
    pub fn per_base(self) -> f64 {
        match self {
            Unit::Seconds | Unit::PerSecond | Unit::Count => 1.0,
            Unit::Percent => 100.0,
            Unit::Milliseconds => 1e3,
            Unit::Microseconds => 1e6,
        }
    }
}

/// Decimals that give three significant digits for `x` (none at 100 and above).
fn decimals(x: f64) -> usize {
    let a = x.abs();
    if a >= 100.0 || a == 0.0 || !a.is_finite() {
        0
    } else {
        (2.0 - a.log10().floor()).clamp(0.0, 9.0) as usize
    }
}

fn trim(s: String) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// `x` to `d` decimals, trailing zeros dropped.
fn fixed(x: f64, d: usize) -> String {
    trim(format!("{x:.d$}"))
}

/// A spread to the precision of its value (`d` decimals, kept: `20.4 ± 1.0`), or to one
/// significant digit where that would round it to zero (`160 ± 0.3`, not `160 ± 0`).
fn spread(std: f64, d: usize) -> String {
    let at_d = format!("{std:.d$}");
    if at_d.trim_start_matches(['0', '.']).is_empty() {
        let one = (-std.abs().log10().floor()).clamp(0.0, 12.0) as usize;
        format!("{std:.one$}")
    } else {
        at_d
    }
}

/// `x` rounded to three significant digits (so that 0.9996 s is written `1 s`, not `1000 ms`).
fn round3(x: f64) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    let k = 10f64.powf(x.abs().log10().floor() - 2.0);
    (x / k).round() * k
}

/// A duration in seconds, three significant digits in the unit that suits it: `7.47 ms`,
/// `1.23 s`, `412 µs`.
pub fn time(seconds: f64) -> String {
    if !seconds.is_finite() {
        return "n/a".into();
    }
    let unit = Unit::for_seconds(round3(seconds.abs()));
    let v = seconds * unit.per_base();
    format!(
        "{} {}",
        fixed(v, decimals(round3(v))),
        unit.symbol().unwrap_or_default()
    )
}

/// Mean ± std of a duration, as a measurement is written: both in the unit that suits the mean,
/// the spread to two significant digits and the mean to the same decimal place (`6.67 ± 0.16 ms`,
/// `566.3 ± 1.3 ms`, `570 ± 120 ms`). A spread that is zero or missing (a single value) is left
/// out: `7.47 ms`.
pub fn time_mean_std(mean: f64, std: f64) -> String {
    if !mean.is_finite() {
        return "n/a".into();
    }
    if !(std.is_finite() && std > 0.0) {
        return time(mean);
    }
    let unit = Unit::for_seconds(round3(mean.abs()));
    let (m, s) = (mean * unit.per_base(), std * unit.per_base());
    format!(
        "{} {}",
        measurement(m, s),
        unit.symbol().unwrap_or_default()
    )
}

/// `m ± s` with `s` to two significant digits and `m` to the same decimal place; for a spread of
/// a hundred or more both are rounded to its second digit (`570 ± 120`).
fn measurement(m: f64, s: f64) -> String {
    // The power of ten of the spread's second significant digit, after rounding to two (so that
    // 0.0999 is written 0.10, not 0.100).
    let place = |s: f64| s.abs().log10().floor() as i32 - 1;
    let mut p = place(s);
    let rounded = (s / 10f64.powi(p)).round() * 10f64.powi(p);
    if rounded > 0.0 {
        p = place(rounded);
    }
    let p = p.clamp(-9, 12);
    if p >= 0 {
        let k = 10f64.powi(p);
        let at = |x: f64| format!("{:.0}", (x / k).round() * k);
        format!("{} ± {}", at(m), at(s))
    } else {
        let d = (-p) as usize;
        format!("{m:.d$} ± {s:.d$}")
    }
}

/// The scale a rate is written in: plain below ten thousand (`3729`), else thousands (`27.3k`),
/// millions, billions.
fn rate_scale(x: f64) -> (f64, &'static str) {
    let a = round3(x.abs());
    if a < 1e4 {
        (1.0, "")
    } else if a < 1e7 {
        (1e3, "k")
    } else if a < 1e10 {
        (1e6, "M")
    } else {
        (1e9, "G")
    }
}

/// A rate, three significant digits (more below ten thousand): `126`, `2290`, `27.3k`.
pub fn rate(x: f64) -> String {
    if !x.is_finite() {
        return "n/a".into();
    }
    let (k, suffix) = rate_scale(x);
    let v = x / k;
    format!("{}{suffix}", fixed(v, decimals(round3(v))))
}

/// Mean ± std of a rate, both in the scale that suits the mean and to the same decimals:
/// `3729 ± 122`, `27.3k ± 5.3k`, `160 ± 0.3`. A spread that is zero or missing is left out.
pub fn rate_mean_std(mean: f64, std: f64) -> String {
    if !mean.is_finite() {
        return "n/a".into();
    }
    if !(std.is_finite() && std > 0.0) {
        return rate(mean);
    }
    let (k, suffix) = rate_scale(mean);
    let (m, s) = (mean / k, std / k);
    let d = decimals(round3(m));
    format!("{m:.d$}{suffix} ± {}{suffix}", spread(s, d))
}

/// Compact numbers for labels: `3.7k`, `159`, `15.9`, `1.59`, `0.0123`, `1.2M`.
pub fn compact(x: f64) -> String {
    if !x.is_finite() {
        return "n/a".into();
    }
    let a = x.abs();
    if a >= 1e9 {
        format!("{}G", fixed(x / 1e9, 1))
    } else if a >= 1e6 {
        format!("{}M", fixed(x / 1e6, 1))
    } else if a >= 1e4 {
        format!("{}k", fixed(x / 1e3, 0))
    } else if a >= 1e3 {
        format!("{}k", fixed(x / 1e3, 1))
    } else {
        fixed(x, decimals(x))
    }
}

/// Dollars, as a price is read: whole dollars plain (`$2`), cents from ten cents up
/// (`$0.50`, `$1.39`, `$12.35`), three significant digits below (`$0.0556`, `$0.005`); no
/// decimals from a hundred dollars (`$125`).
pub fn usd(x: f64) -> String {
    if !x.is_finite() {
        return "n/a".into();
    }
    let a = x.abs();
    let body = if a >= 100.0 || (a >= 1.0 && (a - a.round()).abs() < 5e-3) {
        format!("{a:.0}")
    } else if a >= 0.1 - 5e-4 {
        format!("{a:.2}")
    } else if a == 0.0 {
        "0".into()
    } else {
        fixed(a, decimals(round3(a)))
    };
    let sign = if x < 0.0 { "-" } else { "" };
    format!("{sign}${body}")
}

/// An axis tick: as many decimals as the tick step needs (`0.2`, `50`), thousands as `k` when the
/// step is a thousand or more.
pub fn tick(value: f64, step: f64) -> String {
    if step >= 1000.0 {
        return compact(value);
    }
    let d = if step > 0.0 && step < 1.0 {
        (-step.log10().floor()).clamp(0.0, 12.0) as usize
            + usize::from((step / 10f64.powf(step.log10().floor())).fract() > 1e-9)
    } else {
        0
    };
    fixed(value, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_numbers() {
        assert_eq!(compact(3729.295223546461), "3.7k");
        assert_eq!(compact(12345.0), "12k");
        assert_eq!(compact(159.1587), "159");
        assert_eq!(compact(15.94), "15.9");
        assert_eq!(compact(5.344), "5.34");
        assert_eq!(compact(2.0), "2");
        assert_eq!(compact(0.01234), "0.0123");
        assert_eq!(compact(0.000412), "0.000412");
        assert_eq!(compact(0.5), "0.5");
        assert_eq!(compact(0.0), "0");
        assert_eq!(compact(1_250_000.0), "1.2M");
        assert_eq!(compact(f64::NAN), "n/a");
    }

    #[test]
    fn durations_in_the_unit_that_suits_them() {
        // The issues' examples.
        assert_eq!(time_mean_std(0.00747, 0.000263), "7.47 ± 0.26 ms");
        assert_eq!(time_mean_std(0.00667, 0.000163), "6.67 ± 0.16 ms");
        assert_eq!(time(1.2), "1.2 s");
        assert_eq!(time(1.234), "1.23 s");
        assert_eq!(time(0.0068136), "6.81 ms");
        assert_eq!(time(0.511), "511 ms");
        assert_eq!(time(0.000412), "412 µs");
        assert_eq!(time(0.9996), "1 s");
        // The spread to two significant digits, the mean to the same place.
        assert_eq!(time_mean_std(0.99971, 0.0031), "0.9997 ± 0.0031 s");
        assert_eq!(time_mean_std(0.566, 0.00128), "566.0 ± 1.3 ms");
        assert_eq!(time_mean_std(0.5663, 0.123), "570 ± 120 ms");
        assert_eq!(time_mean_std(0.1604, 0.000302), "160.40 ± 0.30 ms");
        assert_eq!(time_mean_std(0.0204, 0.00102), "20.4 ± 1.0 ms");
        assert_eq!(time_mean_std(0.02, 0.0031), "20.0 ± 3.1 ms");
        assert_eq!(time_mean_std(0.02, 0.0000999), "20.00 ± 0.10 ms");
        assert_eq!(time_mean_std(2.5, 0.8), "2.50 ± 0.80 s");
        assert_eq!(time_mean_std(0.000412, 0.0000123), "412 ± 12 µs");
        assert_eq!(time_mean_std(-0.5, 0.05), "-500 ± 50 ms");
        // No "± 0" for a single value.
        assert_eq!(time_mean_std(0.02, 0.0), "20 ms");
        assert_eq!(time_mean_std(0.02, f64::NAN), "20 ms");
    }

    #[test]
    fn rates_with_their_spread_at_one_scale() {
        assert_eq!(rate_mean_std(160.4, 0.0), "160");
        assert_eq!(rate_mean_std(3729.3, 122.4), "3729 ± 122");
        assert_eq!(rate_mean_std(160.4, 0.302), "160 ± 0.3");
        assert_eq!(rate_mean_std(15.94, 1.23), "15.9 ± 1.2");
        assert_eq!(rate_mean_std(27345.0, 5300.0), "27.3k ± 5.3k");
        assert_eq!(rate_mean_std(22400.0, 156.0), "22.4k ± 0.2k");
        assert_eq!(rate_mean_std(334_000.0, 8200.0), "334k ± 8k");
        assert_eq!(rate(2290.0), "2290");
        assert_eq!(rate(38_000.0), "38k");
        assert_eq!(rate(9999.7), "10k");
    }

    #[test]
    fn units_by_magnitude() {
        assert_eq!(Unit::for_seconds(1.5), Unit::Seconds);
        assert_eq!(Unit::for_seconds(0.999), Unit::Milliseconds);
        assert_eq!(Unit::for_seconds(0.0009), Unit::Microseconds);
        assert_eq!(Unit::for_seconds(f64::NAN), Unit::Seconds);
        assert_eq!(Unit::for_seconds(0.0), Unit::Milliseconds);
    }

    #[test]
    fn dollars() {
        assert_eq!(usd(2.0), "$2");
        assert_eq!(usd(0.5), "$0.50");
        assert_eq!(usd(0.5556), "$0.56");
        assert_eq!(usd(1.3889), "$1.39");
        assert_eq!(usd(12.345), "$12.35");
        assert_eq!(usd(0.05), "$0.05");
        assert_eq!(usd(0.0556), "$0.0556");
        assert_eq!(usd(0.005), "$0.005");
        assert_eq!(usd(125.4), "$125");
        assert_eq!(usd(0.0), "$0");
        assert_eq!(usd(f64::NAN), "n/a");
    }

    #[test]
    fn ticks() {
        assert_eq!(tick(0.4, 0.2), "0.4");
        assert_eq!(tick(0.25, 0.05), "0.25");
        assert_eq!(tick(150.0, 50.0), "150");
        assert_eq!(tick(2500.0, 500.0), "2500");
        assert_eq!(tick(10000.0, 2000.0), "10k");
        assert_eq!(tick(0.0, 0.2), "0");
        assert_eq!(tick(0.025, 0.025), "0.025");
    }
}
