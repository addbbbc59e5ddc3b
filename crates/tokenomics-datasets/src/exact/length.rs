//! The length spec of token-exact prompts (`--input_tokens`): a fixed count, a uniform range or
//! a normal distribution, and the seeded draw of one length.

use rand::Rng;
use serde_json::{json, Value};

use crate::{Error, Result};

/// The longest prompt a spec may ask for, in tokens (2^24, above every model's context): a
/// prompt is built in memory, so the bound keeps a typo from becoming an allocation that never
/// ends.
pub const MAX_TOKENS: u64 = 1 << 24;

/// How many tokens each prompt has. Every length a parsed spec yields is in
/// `1..=`[`MAX_TOKENS`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TokenLength {
    /// Exactly this many tokens.
    Fixed(u64),
    /// Uniform over `lo..=hi`.
    Uniform(u64, u64),
    /// Normal, rounded, clamped to `max(1, mean − 3·std) ..= mean + 3·std`.
    Normal {
        /// In tokens, at least 1.
        mean: f64,
        /// In tokens, finite and not negative.
        std: f64,
    },
}

impl TokenLength {
    /// Parses `N`, `uniform:LO,HI` or `normal:MEAN,STD` (the `--input_tokens` spec): N, LO and HI
    /// whole numbers with `1 ≤ LO ≤ HI`, MEAN at least 1, STD finite and not negative, and no
    /// length over [`MAX_TOKENS`] (for a normal spec: MEAN + 3·STD). Anything else is
    /// [`Error::LengthSpec`], quoting the spec.
    pub fn parse(s: &str) -> Result<Self> {
        let s = s.trim();
        let spec_err = |problem: &str| Error::LengthSpec(format!("{s:?}: {problem}"));
        let too_long = || spec_err(&format!("at most {MAX_TOKENS} tokens"));
        let two = |rest: &str| -> Result<(f64, f64)> {
            let (a, b) = rest
                .split_once(',')
                .ok_or_else(|| spec_err("expected two numbers separated by a comma"))?;
            let num = |x: &str| {
                x.trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite() && *v >= 0.0)
                    .ok_or_else(|| spec_err(&format!("{x:?} is not a number")))
            };
            Ok((num(a)?, num(b)?))
        };
        if let Some(rest) = s.strip_prefix("uniform:") {
            let (lo, hi) = two(rest)?;
            if lo < 1.0 || hi < lo || lo.fract() != 0.0 || hi.fract() != 0.0 {
                return Err(spec_err("need whole numbers 1 ≤ LO ≤ HI"));
            }
            if hi > MAX_TOKENS as f64 {
                return Err(too_long());
            }
            // Whole numbers within MAX_TOKENS: the conversions are exact.
            return Ok(Self::Uniform(lo as u64, hi as u64));
        }
        if let Some(rest) = s.strip_prefix("normal:") {
            let (mean, std) = two(rest)?;
            if mean < 1.0 {
                return Err(spec_err("the mean must be at least 1"));
            }
            if mean + 3.0 * std > MAX_TOKENS as f64 {
                return Err(too_long());
            }
            return Ok(Self::Normal { mean, std });
        }
        match s.parse::<u64>() {
            Ok(n) if n > MAX_TOKENS => Err(too_long()),
            Ok(n) if n > 0 => Ok(Self::Fixed(n)),
            _ => Err(Error::LengthSpec(format!(
                "{s:?} is not a token count (N, uniform:LO,HI or normal:MEAN,STD)"
            ))),
        }
    }

    /// One length, drawn with `rng` (a fixed length draws nothing). At least 1, and within the
    /// spec's bounds.
    pub fn sample(&self, rng: &mut impl Rng) -> u64 {
        match *self {
            Self::Fixed(n) => n,
            Self::Uniform(lo, hi) => rng.gen_range(lo..=hi),
            Self::Normal { mean, std } => {
                // Box–Muller, so the draw depends only on the seed.
                let (u1, u2): (f64, f64) = (rng.gen_range(f64::EPSILON..1.0), rng.gen());
                let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
                let lo = (mean - 3.0 * std).max(1.0);
                let hi = mean + 3.0 * std;
                (mean + std * z).clamp(lo, hi).round().max(1.0) as u64
            }
        }
    }

    /// The mean length, tokens: N, (LO + HI) / 2, or MEAN (the clamp at three standard
    /// deviations is symmetric except near 1 token, where it raises the mean a little).
    pub fn mean(&self) -> f64 {
        match *self {
            Self::Fixed(n) => n as f64,
            Self::Uniform(lo, hi) => (lo as f64 + hi as f64) / 2.0,
            Self::Normal { mean, .. } => mean,
        }
    }

    /// What the result metadata records: `{"distribution": "fixed", "tokens"}`,
    /// `{"distribution": "uniform", "min", "max"}` or `{"distribution": "normal", "mean", "std",
    /// "min", "max"}`.
    pub fn describe(&self) -> Value {
        match *self {
            Self::Fixed(n) => json!({"distribution": "fixed", "tokens": n}),
            Self::Uniform(lo, hi) => json!({"distribution": "uniform", "min": lo, "max": hi}),
            Self::Normal { mean, std } => {
                json!({"distribution": "normal", "mean": mean, "std": std,
                "min": (mean - 3.0 * std).max(1.0).round(), "max": (mean + 3.0 * std).round()})
            }
        }
    }
}

/// Parses a spec as [`TokenLength::parse`] does, so `clap::value_parser!(TokenLength)` reads
/// `--input_tokens` directly.
impl std::str::FromStr for TokenLength {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn lengths_parse_and_sample() {
        assert_eq!(TokenLength::parse("256").unwrap(), TokenLength::Fixed(256));
        assert_eq!(
            "uniform:10,20".parse::<TokenLength>().unwrap(),
            TokenLength::Uniform(10, 20)
        );
        assert_eq!(
            TokenLength::parse(" normal:100,10 ").unwrap(),
            TokenLength::Normal {
                mean: 100.0,
                std: 10.0
            }
        );
        assert_eq!(
            TokenLength::parse(&MAX_TOKENS.to_string()).unwrap(),
            TokenLength::Fixed(MAX_TOKENS)
        );
        for bad in [
            "0",
            "-1",
            "x",
            "",
            "nan",
            "inf",
            "1e300",
            "18446744073709551615",
            "18446744073709551616",
            "16777217",
            "uniform:5",
            "uniform:9,3",
            "uniform:0,3",
            "uniform:1.5,3",
            "uniform:1,1e300",
            "uniform:1,inf",
            "normal:0,1",
            "normal:a,b",
            "normal:100,-1",
            "normal:100,nan",
            "normal:100,1e300",
        ] {
            let e = bad.parse::<TokenLength>().unwrap_err();
            assert!(
                matches!(e, Error::LengthSpec(_)) && e.is_bad_input(),
                "{bad}"
            );
            assert!(e.to_string().contains(&format!("{bad:?}")), "{bad}: {e}");
        }
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let n = TokenLength::Normal {
            mean: 100.0,
            std: 20.0,
        };
        let draws: Vec<u64> = (0..2000).map(|_| n.sample(&mut rng)).collect();
        assert!(draws.iter().all(|&d| (40..=160).contains(&d)));
        let mean = draws.iter().sum::<u64>() as f64 / draws.len() as f64;
        assert!((mean - 100.0).abs() < 2.0, "{mean}");
        let u = TokenLength::Uniform(3, 5);
        assert!((0..100).all(|_| (3..=5).contains(&u.sample(&mut rng))));
    }

    /// `clap::value_parser!(TokenLength)` parses `--input_tokens` and reports a bad spec with the
    /// flag's name and this crate's message.
    #[test]
    fn clap_parses_the_flag() {
        let command = || {
            clap::Command::new("t").arg(
                clap::Arg::new("input_tokens")
                    .long("input_tokens")
                    .value_parser(clap::value_parser!(TokenLength)),
            )
        };
        let m = command()
            .try_get_matches_from(["t", "--input_tokens", "uniform:10,20"])
            .unwrap();
        assert_eq!(
            m.get_one::<TokenLength>("input_tokens"),
            Some(&TokenLength::Uniform(10, 20))
        );
        let e = command()
            .try_get_matches_from(["t", "--input_tokens", "0"])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("--input_tokens") && e.contains("is not a token count"),
            "{e}"
        );
    }
}
