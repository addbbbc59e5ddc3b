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
//!
//! Local `tokenizer.json` files need the `tokenizer` feature; without it [`local_counter`]
//! answers [`Error::Unsupported`] and everything else here works (the tokenize endpoint, the
//! estimate).

mod blocks;
mod length;
mod prefix;

use std::sync::Arc;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};

pub use blocks::TraceTexts;
pub use length::{TokenLength, MAX_TOKENS};
pub use prefix::{SharedPrefixes, MAX_PREFIX_GROUPS};

use crate::text::VOCABULARY;
use crate::{Error, Prompt, Result};

/// The token count of every vocabulary word: as the first word, and after a space. Every count is
/// at least 1 and some word is one token after a space, so any length can be built.
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

    /// From the counts of [`WordCosts::texts`], in that order. [`Error::Tokenizer`] when the
    /// number of counts is not that of the texts, a word counts no token (or more than
    /// `u32::MAX`), or no word is a single token after a space (prompts could not be finished
    /// to the exact length).
    pub fn from_counts(counts: &[usize]) -> Result<Self> {
        let v = VOCABULARY.len();
        if counts.len() != 2 * v {
            return Err(Error::Tokenizer(format!(
                "expected {} counts, got {}",
                2 * v,
                counts.len()
            )));
        }
        let costs = |c: &[usize]| -> Result<Vec<u32>> {
            c.iter()
                .map(|&n| match u32::try_from(n) {
                    Ok(0) => Err(Error::Tokenizer(
                        "the tokenizer gives some words no token at all".into(),
                    )),
                    Ok(n) => Ok(n),
                    Err(_) => Err(Error::Tokenizer(format!(
                        "the tokenizer counts {n} tokens in one word"
                    ))),
                })
                .collect()
        };
        let costs = Self {
            first: costs(&counts[..v])?,
            rest: costs(&counts[v..])?,
        };
        if !costs.rest.contains(&1) {
            return Err(Error::Tokenizer(
                "no vocabulary word is a single token after a space".into(),
            ));
        }
        Ok(costs)
    }

    /// Measures every word with `count` (its errors are returned as they are), then as
    /// [`WordCosts::from_counts`].
    pub fn measure(mut count: impl FnMut(&str) -> Result<usize>) -> Result<Self> {
        let counts = Self::texts()
            .iter()
            .map(|t| count(t))
            .collect::<Result<Vec<_>>>()?;
        Self::from_counts(&counts)
    }
}

/// Counts a text's tokens exactly, special tokens left out (a local tokenizer: see
/// [`local_counter`]).
pub type Counter = Arc<dyn Fn(&str) -> Result<usize> + Send + Sync>;

/// Where the lengths come from.
#[derive(Clone)]
pub enum Lengths {
    /// Word costs measured by a tokenizer; with `check`, every prompt is counted again.
    Exact {
        /// The measured costs.
        costs: WordCosts,
        /// A counter every drawn prompt is checked with (a local tokenizer), if any.
        check: Option<Counter>,
        /// `tokenizer` or `tokenize_endpoint`.
        source: &'static str,
        /// What it was: a path, `hf:OWNER/NAME`, a URL.
        detail: String,
    },
    /// No tokenizer: [`TOKENS_PER_WORD`] tokens per word.
    Estimate,
}

/// Synthetic prompts of a given token length.
#[derive(Clone)]
pub struct ExactPrompts {
    /// The length each prompt is built to.
    pub length: TokenLength,
    /// How lengths are counted: exactly, or estimated.
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
    /// What counted the lengths: `tokenizer`, `tokenize_endpoint` or `estimate`.
    pub fn token_count_source(&self) -> &'static str {
        match &self.lengths {
            Lengths::Exact { source, .. } => source,
            Lengths::Estimate => "estimate",
        }
    }

    /// `n` prompts for the run seeded with `seed`, with their target lengths; the same seed gives
    /// the same prompts. With exact lengths every text has its target's token count under the
    /// word costs, and with a `check` counter it is counted again: a mismatch (a tokenizer that
    /// does not count words independently) is [`Error::Tokenizer`], as is a target shorter than
    /// every word.
    pub fn draw_with_lengths(&self, n: usize, seed: u64) -> Result<Vec<(String, u64)>> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let v = VOCABULARY.len();
        let offset = (seed % v as u64) as usize;
        (0..n)
            .map(|i| {
                let target = self.length.sample(&mut rng);
                // The first two words follow the prompt's index: no two prompts of a run share
                // their opening (up to the vocabulary size squared).
                let opening = [(offset + i) % v, (offset + i / v + 1) % v];
                let text = self.text(target, &opening, &mut rng, Position::Alone)?;
                if let Lengths::Exact {
                    check: Some(count), ..
                } = &self.lengths
                {
                    check_count(count, &text, target)?;
                }
                Ok((text, target))
            })
            .collect()
    }

    /// A text of `target` tokens opening with the words `opening`: exact under the measured
    /// costs, else about `target` / [`TOKENS_PER_WORD`] words. After another text
    /// ([`Position::After`]) every word is costed with its leading space, as it will be read.
    fn text(
        &self,
        target: u64,
        opening: &[usize; 2],
        rng: &mut ChaCha8Rng,
        position: Position,
    ) -> Result<String> {
        let v = VOCABULARY.len();
        Ok(match &self.lengths {
            Lengths::Estimate => {
                let words = ((target as f64 / TOKENS_PER_WORD).round() as usize).max(1);
                let mut idx: Vec<usize> = opening.to_vec();
                while idx.len() < words {
                    idx.push(rng.gen_range(0..v));
                }
                idx.truncate(words);
                join(&idx)
            }
            Lengths::Exact { costs, .. } => build(costs, target, opening, rng, position)?,
        })
    }

    /// `n` prompts (see [`ExactPrompts::draw_with_lengths`]), each a single user message. A
    /// failure to build one (a tokenizer that does not count words independently) was found when
    /// the source was set up, so it falls back to the estimate here rather than failing a run
    /// half-way.
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

    /// What the result metadata records: `{"name": "synthetic", "source": {"kind",
    /// "input_tokens", "token_count_source", "counts", and "tokenizer" or "estimate"}, "rows":
    /// null}`.
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

/// Where a built text goes: alone (its first word costed as a text's first word), or after
/// another text and a space (every word costed with its leading space).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Position {
    Alone,
    After,
}

/// Counts `text` with `count` and refuses a count other than `target`: a tokenizer that does not
/// count words independently cannot make exact lengths.
fn check_count(count: &Counter, text: &str, target: u64) -> Result<()> {
    let got = count(text)?;
    if got as u64 != target {
        return Err(Error::Tokenizer(format!(
            "the tokenizer counts {got} tokens in a prompt built to {target}: it does not tokenize words independently, so lengths cannot be made exact with it"
        )));
    }
    Ok(())
}

/// A text of exactly `target` tokens under `costs`: the opening words, random words while they
/// fit, then one-token words.
fn build(
    costs: &WordCosts,
    target: u64,
    opening: &[usize],
    rng: &mut ChaCha8Rng,
    position: Position,
) -> Result<String> {
    let v = VOCABULARY.len();
    let ones: Vec<usize> = (0..v).filter(|&i| costs.rest[i] == 1).collect();
    let first_costs = match position {
        Position::Alone => &costs.first,
        Position::After => &costs.rest,
    };
    let mut idx = Vec::new();
    let mut total = 0u64;
    // The first word must fit alone; pick the cheapest opening word if the target is tiny.
    let first = if u64::from(first_costs[opening[0]]) <= target {
        opening[0]
    } else {
        (0..v)
            .filter(|&i| u64::from(first_costs[i]) <= target)
            .min_by_key(|&i| first_costs[i])
            .ok_or_else(|| {
                Error::Tokenizer(format!(
                    "no word is short enough for a {target}-token prompt"
                ))
            })?
    };
    idx.push(first);
    total += u64::from(first_costs[first]);
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

/// Loads a `tokenizer.json` and returns a counter of tokens (no special tokens added). A file
/// that is missing or not a tokenizer is [`Error::TokenizerFile`] (naming the path); a build
/// without the `tokenizer` feature answers [`Error::Unsupported`].
pub fn local_counter(path: &std::path::Path) -> Result<Counter> {
    #[cfg(feature = "tokenizer")]
    {
        let tok = tokenizers::Tokenizer::from_file(path).map_err(|e| Error::TokenizerFile {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        Ok(Arc::new(move |text: &str| {
            tok.encode(text, false)
                .map(|e| e.len())
                .map_err(|e| Error::Tokenizer(format!("the tokenizer failed on a prompt: {e}")))
        }))
    }
    #[cfg(not(feature = "tokenizer"))]
    {
        let _ = path;
        Err(Error::Unsupported(crate::Feature::Tokenizer))
    }
}

/// Exact prompts from a local tokenizer: word costs measured with `counter`, and every prompt
/// counted again with it. `detail` says which tokenizer it is (a path, `hf:OWNER/NAME`) in the
/// metadata. A tokenizer that cannot make exact lengths fails here ([`Error::Tokenizer`]), not
/// half-way through a run.
pub fn with_tokenizer(
    length: TokenLength,
    counter: Counter,
    detail: String,
) -> Result<ExactPrompts> {
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

/// A tokenizer for tests: it splits on spaces and then into pieces of at most 3 letters (so
/// words cost 1 or 2 tokens), the space belonging to the following word.
#[cfg(test)]
pub(crate) fn pieces(text: &str) -> Result<usize> {
    Ok(text
        .split(' ')
        .filter(|w| !w.is_empty())
        .map(|w| w.len().div_ceil(3))
        .sum())
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(
            p.draw_with_lengths(5, 3).unwrap(),
            p.draw_with_lengths(5, 3).unwrap()
        );
        assert_ne!(
            p.draw_with_lengths(5, 3).unwrap(),
            p.draw_with_lengths(5, 4).unwrap()
        );
    }

    #[test]
    fn unusable_tokenizers_are_typed_errors() {
        let v = VOCABULARY.len();
        let e = WordCosts::from_counts(&[1; 3]).unwrap_err();
        assert!(matches!(e, Error::Tokenizer(_)) && e.is_bad_input(), "{e}");
        let e = WordCosts::from_counts(&vec![2; 2 * v]).unwrap_err();
        assert!(e.to_string().contains("single token"), "{e}");
        let mut zero = vec![1; 2 * v];
        zero[3] = 0;
        let e = WordCosts::from_counts(&zero).unwrap_err();
        assert!(e.to_string().contains("no token at all"), "{e}");
        // A counter's own error comes back as it is.
        let e = WordCosts::measure(|_| Err(Error::Tokenizer("boom".into()))).unwrap_err();
        assert_eq!(e.to_string(), "boom");
        // A counter that is not word-additive (a token more once a text has three words) is
        // refused up front.
        let merging: Counter =
            Arc::new(|t: &str| Ok(pieces(t)? + usize::from(t.split(' ').count() > 2)));
        let e = with_tokenizer(TokenLength::Fixed(50), merging, "merging".into()).unwrap_err();
        assert!(
            matches!(e, Error::Tokenizer(_)) && e.to_string().contains("independently"),
            "{e}"
        );
    }

    /// Without the `tokenizer` feature, a local tokenizer is a clear run-time error.
    #[cfg(not(feature = "tokenizer"))]
    #[test]
    fn local_tokenizers_need_the_tokenizer_feature() {
        let e = local_counter(std::path::Path::new("tokenizer.json"))
            .err()
            .unwrap();
        assert!(
            matches!(e, Error::Unsupported(crate::Feature::Tokenizer)),
            "{e:?}"
        );
        assert_eq!(
            e.to_string(),
            "this build has no local tokenizer support (feature `tokenizer`)"
        );
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
