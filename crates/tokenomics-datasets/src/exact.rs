//! Synthetic prompts whose length is exact in the model's tokenizer (`--input_tokens`).
//!
//! A prompt is words of [`VOCABULARY`] joined by single spaces. Tokenizers split text into words
//! before they split words into tokens (a pre-tokenizer), so a prompt's token count is the sum of
//! its words' counts: the first word's count as it stands, every later word's count with its
//! leading space. Those costs are measured once per benchmark — with the model's tokenizer
//! (`--tokenizer`, the `tokenizers` crate) or the server's tokenize endpoint — and a prompt is
//! then built word by word to exactly N tokens, finishing with one-token words. With a local
//! tokenizer every prompt is also encoded and checked. Without either, lengths are an estimate
//! (1.3 tokens per word), and the metadata says so.
//!
//! Prompts of one run differ in their first two words (chosen from the prompt's index and the
//! run's seed), so a server's prefix cache cannot serve one from another.

use std::sync::Arc;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};

use crate::text::VOCABULARY;
use crate::Prompt;

/// How many tokens each prompt has.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TokenLength {
    Fixed(u64),
    /// Uniform over `lo..=hi`.
    Uniform(u64, u64),
    /// Normal, rounded, clamped to `max(1, mean − 3·std) ..= mean + 3·std`.
    Normal {
        mean: f64,
        std: f64,
    },
}

impl TokenLength {
    /// Parses `N`, `uniform:LO,HI` or `normal:MEAN,STD`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let two = |rest: &str| -> Result<(f64, f64), String> {
            let (a, b) = rest
                .split_once(',')
                .ok_or_else(|| format!("{s:?}: expected two numbers separated by a comma"))?;
            let num = |x: &str| {
                x.trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite() && *v >= 0.0)
                    .ok_or_else(|| format!("{s:?}: {x:?} is not a number"))
            };
            Ok((num(a)?, num(b)?))
        };
        if let Some(rest) = s.strip_prefix("uniform:") {
            let (lo, hi) = two(rest)?;
            if lo < 1.0 || hi < lo || lo.fract() != 0.0 || hi.fract() != 0.0 {
                return Err(format!("{s:?}: need whole numbers 1 ≤ LO ≤ HI"));
            }
            return Ok(Self::Uniform(lo as u64, hi as u64));
        }
        if let Some(rest) = s.strip_prefix("normal:") {
            let (mean, std) = two(rest)?;
            if mean < 1.0 {
                return Err(format!("{s:?}: the mean must be at least 1"));
            }
            return Ok(Self::Normal { mean, std });
        }
        s.parse::<u64>()
            .ok()
            .filter(|&n| n > 0)
            .map(Self::Fixed)
            .ok_or_else(|| {
                format!("{s:?} is not a token count (N, uniform:LO,HI or normal:MEAN,STD)")
            })
    }

    /// One length.
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

/// The token count of every vocabulary word: as the first word, and after a space.
#[derive(Debug, Clone, PartialEq)]
pub struct WordCosts {
    first: Vec<u32>,
    rest: Vec<u32>,
}

impl WordCosts {
    /// The texts whose token counts [`WordCosts::from_counts`] needs, in order: every word alone,
    /// then every word after a space.
    pub fn texts() -> Vec<String> {
        VOCABULARY
            .iter()
            .map(|w| w.to_string())
            .chain(VOCABULARY.iter().map(|w| format!(" {w}")))
            .collect()
    }

    /// From the counts of [`WordCosts::texts`], in that order.
    pub fn from_counts(counts: &[usize]) -> Result<Self, String> {
        let v = VOCABULARY.len();
        if counts.len() != 2 * v {
            return Err(format!("expected {} counts, got {}", 2 * v, counts.len()));
        }
        let costs = Self {
            first: counts[..v].iter().map(|&c| c as u32).collect(),
            rest: counts[v..].iter().map(|&c| c as u32).collect(),
        };
        if costs.first.contains(&0) || costs.rest.contains(&0) {
            return Err("the tokenizer gives some words no token at all".into());
        }
        if !costs.rest.contains(&1) {
            return Err("no vocabulary word is a single token after a space".into());
        }
        Ok(costs)
    }

    /// Measures every word with `count`.
    pub fn measure(mut count: impl FnMut(&str) -> Result<usize, String>) -> Result<Self, String> {
        let counts = Self::texts()
            .iter()
            .map(|t| count(t))
            .collect::<Result<Vec<_>, _>>()?;
        Self::from_counts(&counts)
    }
}

/// Counts a text's tokens exactly (a local tokenizer).
pub type Counter = Arc<dyn Fn(&str) -> Result<usize, String> + Send + Sync>;

/// Where the lengths come from.
#[derive(Clone)]
pub enum Lengths {
    /// Word costs measured by a tokenizer; with `check`, every prompt is counted again.
    Exact {
        costs: WordCosts,
        check: Option<Counter>,
        /// `tokenizer` or `tokenize_endpoint`, and what it was (a path, a model id, a URL).
        source: &'static str,
        detail: String,
    },
    /// No tokenizer: 1.3 tokens per word.
    Estimate,
}

/// Synthetic prompts of a given token length.
#[derive(Clone)]
pub struct ExactPrompts {
    pub length: TokenLength,
    pub lengths: Lengths,
}

impl std::fmt::Debug for ExactPrompts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExactPrompts")
            .field("length", &self.length)
            .field("source", &self.token_count_source())
            .finish()
    }
}

/// Tokens per word assumed when no tokenizer is at hand (the original's rule).
pub const TOKENS_PER_WORD: f64 = 1.3;

impl ExactPrompts {
    pub fn token_count_source(&self) -> &'static str {
        match &self.lengths {
            Lengths::Exact { source, .. } => source,
            Lengths::Estimate => "estimate",
        }
    }

    /// `n` prompts for the run seeded with `seed`, with their target lengths.
    pub fn draw_with_lengths(&self, n: usize, seed: u64) -> Result<Vec<(String, u64)>, String> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let v = VOCABULARY.len();
        let offset = (seed % v as u64) as usize;
        (0..n)
            .map(|i| {
                let target = self.length.sample(&mut rng);
                // The first two words follow the prompt's index: no two prompts of a run share
                // their opening (up to the vocabulary size squared).
                let opening = [(offset + i) % v, (offset + i / v + 1) % v];
                let text = match &self.lengths {
                    Lengths::Estimate => {
                        let words = ((target as f64 / TOKENS_PER_WORD).round() as usize).max(1);
                        let mut idx: Vec<usize> = opening.to_vec();
                        while idx.len() < words {
                            idx.push(rng.gen_range(0..v));
                        }
                        idx.truncate(words);
                        join(&idx)
                    }
                    Lengths::Exact { costs, check, .. } => {
                        let text = build(costs, target, &opening, &mut rng)?;
                        if let Some(count) = check {
                            let got = count(&text)?;
                            if got as u64 != target {
                                return Err(format!(
                                    "the tokenizer counts {got} tokens in a prompt built to {target}: it does not tokenize words independently, so lengths cannot be made exact with it"
                                ));
                            }
                        }
                        text
                    }
                };
                Ok((text, target))
            })
            .collect()
    }

    /// `n` prompts (see [`ExactPrompts::draw_with_lengths`]); a failure to build one (a
    /// tokenizer that does not count words independently) was found when the source was set up,
    /// so it falls back to the estimate here rather than failing a run half-way.
    pub fn draw(&self, n: usize, seed: u64) -> Vec<Prompt> {
        match self.draw_with_lengths(n, seed) {
            // A user message alone: no system message, so that with `--endpoint completions` the
            // prompt is exactly the counted text.
            Ok(v) => v
                .into_iter()
                .map(|(t, _)| {
                    Prompt::Messages(vec![crate::Turn {
                        role: "user".into(),
                        content: t,
                    }])
                })
                .collect(),
            Err(_) => ExactPrompts {
                length: self.length,
                lengths: Lengths::Estimate,
            }
            .draw(n, seed),
        }
    }

    pub fn describe(&self) -> Value {
        let mut source = json!({
            "kind": "synthetic",
            "input_tokens": self.length.describe(),
            "token_count_source": self.token_count_source(),
            "counts": "the user message's text, sent alone (no system message); a chat server adds its chat template",
        });
        match &self.lengths {
            Lengths::Exact { detail, .. } => source["tokenizer"] = json!(detail),
            Lengths::Estimate => {
                source["estimate"] = json!(format!("{TOKENS_PER_WORD} tokens per word"))
            }
        }
        json!({"name": "synthetic", "source": source, "rows": Value::Null})
    }
}

fn join(idx: &[usize]) -> String {
    let words: Vec<&str> = idx.iter().map(|&i| VOCABULARY[i]).collect();
    words.join(" ")
}

/// A text of exactly `target` tokens under `costs`: the opening words, random words while they
/// fit, then one-token words.
fn build(
    costs: &WordCosts,
    target: u64,
    opening: &[usize],
    rng: &mut ChaCha8Rng,
) -> Result<String, String> {
    let v = VOCABULARY.len();
    let ones: Vec<usize> = (0..v).filter(|&i| costs.rest[i] == 1).collect();
    let mut idx = Vec::new();
    let mut total = 0u64;
    // The first word must fit alone; pick the cheapest opening word if the target is tiny.
    let first = if u64::from(costs.first[opening[0]]) <= target {
        opening[0]
    } else {
        (0..v)
            .filter(|&i| u64::from(costs.first[i]) <= target)
            .min_by_key(|&i| costs.first[i])
            .ok_or_else(|| format!("no word is short enough for a {target}-token prompt"))?
    };
    idx.push(first);
    total += u64::from(costs.first[first]);
    if total < target && u64::from(costs.rest[opening[1]]) <= target - total {
        idx.push(opening[1]);
        total += u64::from(costs.rest[opening[1]]);
    }
    while total < target {
        let left = target - total;
        let i = rng.gen_range(0..v);
        let w = if u64::from(costs.rest[i]) <= left {
            i
        } else {
            ones[rng.gen_range(0..ones.len())]
        };
        idx.push(w);
        total += u64::from(costs.rest[w]);
    }
    Ok(join(&idx))
}

/// Loads a `tokenizer.json` and returns a counter of tokens (no special tokens added).
pub fn local_counter(path: &std::path::Path) -> Result<Counter, String> {
    let tok = tokenizers::Tokenizer::from_file(path)
        .map_err(|e| format!("cannot load tokenizer {}: {e}", path.display()))?;
    Ok(Arc::new(move |text: &str| {
        tok.encode(text, false)
            .map(|e| e.len())
            .map_err(|e| format!("the tokenizer failed on a prompt: {e}"))
    }))
}

/// Word costs and a checking counter from a local tokenizer.
pub fn with_tokenizer(
    length: TokenLength,
    counter: Counter,
    detail: String,
) -> Result<ExactPrompts, String> {
    let costs = WordCosts::measure(|t| counter(t))?;
    let prompts = ExactPrompts {
        length,
        lengths: Lengths::Exact {
            costs,
            check: Some(counter),
            source: "tokenizer",
            detail,
        },
    };
    // Fail now, not half-way through a run, if the tokenizer is not word-additive.
    prompts.draw_with_lengths(8, 0)?;
    Ok(prompts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_parse_and_sample() {
        assert_eq!(TokenLength::parse("256"), Ok(TokenLength::Fixed(256)));
        assert_eq!(
            TokenLength::parse("uniform:10,20"),
            Ok(TokenLength::Uniform(10, 20))
        );
        assert_eq!(
            TokenLength::parse("normal:100,10"),
            Ok(TokenLength::Normal {
                mean: 100.0,
                std: 10.0
            })
        );
        for bad in [
            "0",
            "x",
            "uniform:5",
            "uniform:9,3",
            "uniform:0,3",
            "normal:0,1",
            "normal:a,b",
        ] {
            assert!(TokenLength::parse(bad).is_err(), "{bad}");
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

    /// A tokenizer that splits on spaces and then into pieces of at most 3 letters (so words cost
    /// 1 or 2 tokens), the space belonging to the following word.
    fn pieces(text: &str) -> Result<usize, String> {
        Ok(text
            .split(' ')
            .filter(|w| !w.is_empty())
            .map(|w| w.len().div_ceil(3))
            .sum())
    }

    #[test]
    fn built_prompts_have_the_exact_length_and_distinct_openings() {
        let costs = WordCosts::measure(pieces).unwrap();
        let p = ExactPrompts {
            length: TokenLength::Uniform(1, 300),
            lengths: Lengths::Exact {
                costs,
                check: Some(Arc::new(pieces)),
                source: "tokenizer",
                detail: "test".into(),
            },
        };
        let drawn = p.draw_with_lengths(200, 9).unwrap();
        for (text, n) in &drawn {
            assert_eq!(pieces(text).unwrap() as u64, *n);
        }
        let openings: std::collections::HashSet<(&str, &str)> = drawn
            .iter()
            .filter(|(_, n)| *n >= 3)
            .map(|(t, _)| {
                let mut w = t.split(' ');
                (w.next().unwrap(), w.next().unwrap())
            })
            .collect();
        assert_eq!(
            openings.len(),
            drawn.iter().filter(|(_, n)| *n >= 3).count()
        );
        // Seeded.
        assert_eq!(p.draw_with_lengths(5, 3), p.draw_with_lengths(5, 3));
        assert_ne!(p.draw_with_lengths(5, 3), p.draw_with_lengths(5, 4));
    }

    #[test]
    fn the_estimate_is_labelled() {
        let p = ExactPrompts {
            length: TokenLength::Fixed(130),
            lengths: Lengths::Estimate,
        };
        let d = p.describe();
        assert_eq!(d["source"]["token_count_source"], "estimate");
        let Prompt::Messages(m) = &p.draw(1, 0)[0] else {
            unreachable!()
        };
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].content.split(' ').count(), 100);
    }
}
