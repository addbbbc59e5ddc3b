//! Token-exact prompts that share prefixes (`--shared_prefix_tokens P --prefix_groups G`).
//!
//! Each of G groups has one prefix of exactly P tokens, built once per benchmark from its seed
//! like any exact prompt, each opening with its own words so that no two groups share a token
//! block. Prompt i of a draw belongs to group i mod G (so a draw of n prompts uses every group
//! n / G times, give or take one) and is its group's prefix, a space, then a suffix of its own
//! built to the `--input_tokens` length with every word costed after a space, as it is read
//! there. Because tokenizers split on spaces before they split words, the prefix is tokenized
//! the same in every prompt: a server sees the same P leading tokens of the user's text
//! (behind whatever its chat template puts first) in every prompt of a group.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};

use super::{check_count, ExactPrompts, Lengths, Position};
use crate::text::VOCABULARY;
use crate::{Error, Prompt, Result, Turn};

/// The most prefix groups (each opens with a distinct pair of words, and a prefix is held in
/// memory per group).
pub const MAX_PREFIX_GROUPS: u64 = 10_000;

/// Exact prompts, each one of `groups` shared prefixes followed by a suffix of its own.
#[derive(Clone)]
pub struct SharedPrefixes {
    /// Tokens of every prefix (exact when the suffixes' lengths are).
    pub prefix_tokens: u64,
    /// The prefix of each group, in group order.
    prefixes: Vec<String>,
    /// The suffixes: their length spec and how their lengths are counted.
    pub suffixes: ExactPrompts,
}

impl std::fmt::Debug for SharedPrefixes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedPrefixes")
            .field("prefix_tokens", &self.prefix_tokens)
            .field("groups", &self.prefixes.len())
            .field("suffixes", &self.suffixes)
            .finish()
    }
}

impl SharedPrefixes {
    /// `groups` prefixes of `prefix_tokens` tokens each, seeded with `seed`, before suffixes
    /// drawn from `suffixes`. [`Error::LengthSpec`] when a count is 0 or out of bounds; with a
    /// checking tokenizer every prefix is counted again ([`Error::Tokenizer`] on a mismatch).
    pub fn new(suffixes: ExactPrompts, prefix_tokens: u64, groups: u64, seed: u64) -> Result<Self> {
        if prefix_tokens == 0 || prefix_tokens > super::MAX_TOKENS {
            return Err(Error::LengthSpec(format!(
                "a shared prefix of {prefix_tokens} tokens: give 1 to {}",
                super::MAX_TOKENS
            )));
        }
        if groups == 0 || groups > MAX_PREFIX_GROUPS {
            return Err(Error::LengthSpec(format!(
                "{groups} prefix groups: give 1 to {MAX_PREFIX_GROUPS}"
            )));
        }
        let v = VOCABULARY.len();
        // Away from the suffixes' openings (which start at the seed's word): a prefix's first
        // words are its group's.
        let offset = (seed.rotate_left(17) % v as u64) as usize;
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x005e_ed0f_0a7e_f1c5);
        let prefixes = (0..groups as usize)
            .map(|g| {
                let opening = [(offset + g) % v, (offset + g / v + 1) % v];
                let text = suffixes.text(prefix_tokens, &opening, &mut rng, Position::Alone)?;
                if let Lengths::Exact {
                    check: Some(count), ..
                } = &suffixes.lengths
                {
                    check_count(count, &text, prefix_tokens)?;
                }
                Ok(text)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            prefix_tokens,
            prefixes,
            suffixes,
        })
    }

    /// How many groups there are.
    pub fn groups(&self) -> u64 {
        self.prefixes.len() as u64
    }

    /// The prefix of group `g` (`None` past the last group).
    pub fn prefix(&self, g: usize) -> Option<&str> {
        self.prefixes.get(g).map(String::as_str)
    }

    /// The group of prompt `i` of a draw: i mod G.
    pub fn group_of(&self, i: usize) -> usize {
        i % self.prefixes.len().max(1)
    }

    /// `n` prompts for the run seeded with `seed`, with their target lengths (prefix and suffix
    /// together); prompt i is [`SharedPrefixes::group_of`]`(i)`'s prefix, a space and a suffix
    /// whose opening follows i, as [`ExactPrompts::draw_with_lengths`] makes them. With a
    /// checking tokenizer every whole prompt is counted again.
    pub fn draw_with_lengths(&self, n: usize, seed: u64) -> Result<Vec<(String, u64)>> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let v = VOCABULARY.len();
        let offset = (seed % v as u64) as usize;
        (0..n)
            .map(|i| {
                let suffix_tokens = self.suffixes.length.sample(&mut rng);
                let opening = [(offset + i) % v, (offset + i / v + 1) % v];
                let suffix =
                    self.suffixes
                        .text(suffix_tokens, &opening, &mut rng, Position::After)?;
                let prefix = &self.prefixes[self.group_of(i)];
                let text = format!("{prefix} {suffix}");
                let target = self.prefix_tokens + suffix_tokens;
                if let Lengths::Exact {
                    check: Some(count), ..
                } = &self.suffixes.lengths
                {
                    check_count(count, &text, target)?;
                }
                Ok((text, target))
            })
            .collect()
    }

    /// `n` prompts (see [`SharedPrefixes::draw_with_lengths`]), each a single user message, so
    /// that the prefix is the first thing after the chat template's opening. A failure to build
    /// one was found when the source was set up; should it happen here, the prompts are empty.
    pub fn draw(&self, n: usize, seed: u64) -> Vec<Prompt> {
        self.draw_with_lengths(n, seed)
            .unwrap_or_default()
            .into_iter()
            .map(|(t, _)| {
                Prompt::Messages(vec![Turn {
                    role: "user".into(),
                    content: t,
                }])
            })
            .collect()
    }

    /// What the result metadata records: the suffixes' description
    /// ([`ExactPrompts::describe`]) with `source.shared_prefix: {"tokens", "groups",
    /// "assignment"}`.
    pub fn describe(&self) -> Value {
        let mut d = self.suffixes.describe();
        d["source"]["shared_prefix"] = json!({
            "tokens": self.prefix_tokens,
            "groups": self.groups(),
            "assignment": "prompt i of a draw: group i mod groups",
        });
        d
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::super::{pieces, TokenLength, WordCosts};
    use super::*;

    fn exact(length: TokenLength) -> ExactPrompts {
        ExactPrompts {
            length,
            lengths: Lengths::Exact {
                costs: WordCosts::measure(pieces).unwrap(),
                check: Some(Arc::new(pieces)),
                source: "tokenizer",
                detail: "test".into(),
            },
        }
    }

    #[test]
    fn prefixes_are_exact_shared_within_a_group_and_distinct_across_groups() {
        let p = SharedPrefixes::new(exact(TokenLength::Uniform(1, 40)), 97, 4, 42).unwrap();
        assert_eq!(p.groups(), 4);
        let prefixes: Vec<&str> = (0..4).map(|g| p.prefix(g).unwrap()).collect();
        for prefix in &prefixes {
            assert_eq!(pieces(prefix).unwrap(), 97);
        }
        // Distinct from their first word: no token block is shared across groups.
        let firsts: std::collections::HashSet<&str> = prefixes
            .iter()
            .map(|t| t.split(' ').next().unwrap())
            .collect();
        assert_eq!(firsts.len(), 4);
        let drawn = p.draw_with_lengths(40, 7).unwrap();
        let mut suffixes = std::collections::HashSet::new();
        for (i, (text, n)) in drawn.iter().enumerate() {
            assert_eq!(pieces(text).unwrap() as u64, *n, "prompt {i}");
            let prefix = prefixes[i % 4];
            let suffix = text
                .strip_prefix(prefix)
                .and_then(|s| s.strip_prefix(' '))
                .unwrap_or_else(|| panic!("prompt {i} does not open with group {}", i % 4));
            // The prefix keeps its P tokens inside the prompt: the suffix brings the rest.
            assert_eq!(pieces(suffix).unwrap() as u64, n - 97);
            assert!((1..=40).contains(&(n - 97)));
            suffixes.insert(suffix.to_string());
        }
        assert_eq!(suffixes.len(), 40, "every suffix is the prompt's own");
        // Prefixes belong to the benchmark, suffixes to the draw.
        let again = p.draw_with_lengths(40, 8).unwrap();
        assert!(again[0].0.starts_with(prefixes[0]) && again[0] != drawn[0]);
        let other = SharedPrefixes::new(exact(TokenLength::Fixed(5)), 97, 4, 43).unwrap();
        assert_ne!(other.prefix(0), p.prefix(0));
        let Prompt::Messages(m) = &p.draw(1, 7)[0] else {
            unreachable!()
        };
        assert_eq!((m.len(), m[0].content.as_str()), (1, drawn[0].0.as_str()));
        assert_eq!(p.describe()["source"]["shared_prefix"]["groups"], 4);
    }

    #[test]
    fn bad_counts_are_refused() {
        for (tokens, groups) in [(0, 4), (16, 0), (16, MAX_PREFIX_GROUPS + 1)] {
            let e =
                SharedPrefixes::new(exact(TokenLength::Fixed(5)), tokens, groups, 1).unwrap_err();
            assert!(e.is_bad_input(), "{e}");
        }
        // A tokenizer that merges words across spaces cannot make a token-exact prefix.
        let mut merging = exact(TokenLength::Fixed(5));
        if let Lengths::Exact { check, .. } = &mut merging.lengths {
            *check = Some(Arc::new(|t: &str| {
                Ok(pieces(t)? + usize::from(t.len() > 30))
            }));
        }
        let e = SharedPrefixes::new(merging, 64, 2, 1).unwrap_err();
        assert!(e.to_string().contains("independently"), "{e}");
    }
}
