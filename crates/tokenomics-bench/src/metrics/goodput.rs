//! Goodput: the service-level objectives a request meets or not.

use tokenomics_client::RequestRecord;
use tokenomics_stats::SloMs;

use super::latency::request_latency;
use super::NS;

/// The longest objective, in milliseconds: a year.
const MAX_MS: f64 = 365.0 * 24.0 * 3600.0 * 1e3;

/// Service-level objectives for goodput, in seconds (`--goodput ttft:MS,tpot:MS,e2el:MS`).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Slo {
    /// The longest time to first token a good request may take, seconds (`None`: not judged).
    pub ttft: Option<f64>,
    /// The longest time per output token after the first, seconds (`None`: not judged).
    pub tpot: Option<f64>,
    /// The longest send → end latency, seconds (`None`: not judged).
    pub e2el: Option<f64>,
}

impl std::str::FromStr for Slo {
    type Err = crate::Error;

    /// Parses `ttft:MS,tpot:MS,e2el:MS` (any of them, milliseconds; each above 0 and at most a
    /// year).
    fn from_str(s: &str) -> crate::Result<Self> {
        let bad = |m: String| crate::Error::Invalid(m);
        let mut slo = Slo::default();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, value) = part
                .split_once(':')
                .ok_or_else(|| bad(format!("{part:?} is not NAME:MILLISECONDS (e.g. ttft:500)")))?;
            let ms: f64 = value
                .trim()
                .parse()
                .ok()
                .filter(|v: &f64| v.is_finite() && *v > 0.0 && *v <= MAX_MS)
                .ok_or_else(|| {
                    bad(format!(
                        "{value:?} is not a positive number of milliseconds (at most a year)"
                    ))
                })?;
            let slot = match name.trim() {
                "ttft" => &mut slo.ttft,
                "tpot" => &mut slo.tpot,
                "e2el" => &mut slo.e2el,
                other => {
                    return Err(bad(format!(
                        "unknown objective {other:?} (ttft, tpot or e2el)"
                    )))
                }
            };
            *slot = Some(ms / 1e3);
        }
        if slo == Slo::default() {
            return Err(bad("no objective given (e.g. ttft:500,tpot:50)".into()));
        }
        Ok(slo)
    }
}

impl Slo {
    /// Whether the objectives need streamed responses (TTFT and TPOT do).
    pub fn needs_stream(&self) -> bool {
        self.ttft.is_some() || self.tpot.is_some()
    }

    /// Whether a request met every objective. A failed request never does; a one-token
    /// response has no TPOT and meets that objective.
    pub fn met(&self, r: &RequestRecord) -> bool {
        if !r.is_ok() {
            return false;
        }
        let e2el = match (r.timing.end_ns, self.e2el) {
            (Some(end), Some(limit)) => end.saturating_sub(r.timing.send_ns) as f64 / NS <= limit,
            (None, Some(_)) => false,
            _ => true,
        };
        if !e2el {
            return false;
        }
        if self.ttft.is_none() && self.tpot.is_none() {
            return true;
        }
        let Some(l) = request_latency(r) else {
            return false;
        };
        self.ttft.is_none_or(|t| l.ttft <= t)
            && self.tpot.is_none_or(|t| l.tpot.is_none_or(|p| p <= t))
    }

    /// The objectives in milliseconds, as the documents record them.
    pub fn ms(&self) -> SloMs {
        let ms = |v: Option<f64>| v.map(|s| s * 1e3);
        SloMs {
            ttft: ms(self.ttft),
            tpot: ms(self.tpot),
            e2el: ms(self.e2el),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::testing::streamed;

    #[test]
    fn goodput_counts_requests_meeting_every_objective() {
        let slo = "ttft:50,tpot:10".parse::<Slo>().unwrap();
        assert_eq!(slo.ttft, Some(0.050));
        assert!(slo.needs_stream());
        let fast = streamed(0, &[40, 45, 50], 3, 50);
        let slow_first = streamed(0, &[60, 65, 70], 3, 70);
        let slow_tokens = streamed(0, &[40, 60, 80], 3, 80);
        let one_token = streamed(0, &[30], 1, 30);
        let mut failed = streamed(0, &[10, 11], 2, 11);
        failed.error = Some(tokenomics_client::Error::Interrupted);
        assert!(slo.met(&fast));
        assert!(!slo.met(&slow_first));
        assert!(!slo.met(&slow_tokens));
        assert!(slo.met(&one_token));
        assert!(!slo.met(&failed));
        let e2el = "e2el:60".parse::<Slo>().unwrap();
        assert!(!e2el.needs_stream());
        assert!(e2el.met(&fast) && !e2el.met(&slow_tokens));
        for bad in ["", "ttft", "ttft:0", "ttft:-3", "speed:4", "ttft:x"] {
            assert!(bad.parse::<Slo>().is_err(), "{bad}");
        }
    }
}
