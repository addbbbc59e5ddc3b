//! Token-exact prompts for a replayed trace ([`crate::trace`]): one text per trace request, of
//! exactly its input length, built so that the trace's prefix sharing reaches the server.
//!
//! A Mooncake request lists one hash id per block of `block_tokens` tokens (512 in the published
//! traces; the last block holds the rest). Block j of id h becomes a text of that block's length
//! built from a seed of (h, its length, whether it opens the prompt) — so equal ids at equal
//! places are equal text, and different ids differ from their first words — and a prompt is its
//! blocks joined by single spaces, every word after the first costed with its leading space, as
//! it is read there. Tokens the blocks do not cover (a request without ids: the Azure and
//! BurstGPT traces) are a text of the request's own, seeded from its line, shared with no one.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::{check_count, ExactPrompts, Lengths, Position};
use crate::text::VOCABULARY;
use crate::trace::TraceRequest;
use crate::Result;

/// Builds the prompts of a trace's requests.
#[derive(Clone, Debug)]
pub struct TraceTexts {
    /// How tokens are counted (the `length` is not used).
    pub exact: ExactPrompts,
    /// Tokens per hash id (Mooncake's 512).
    pub block_tokens: u64,
    /// Seeds every text with the benchmark's seed.
    pub seed: u64,
}

impl TraceTexts {
    /// The prompt of `r`: exactly `r.input_tokens` tokens under the word costs (with a checking
    /// tokenizer, counted again). An error only from a tokenizer that cannot make exact lengths.
    pub fn text(&self, r: &TraceRequest) -> Result<String> {
        let v = VOCABULARY.len() as u64;
        let b = self.block_tokens.max(1);
        let mut parts: Vec<String> = Vec::new();
        let mut covered = 0u64;
        for (j, &h) in r.hash_ids.iter().enumerate() {
            let len = b.min(r.input_tokens - covered);
            if len == 0 {
                break;
            }
            let position = if j == 0 {
                Position::Alone
            } else {
                Position::After
            };
            let seed =
                self.seed ^ h.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (len << 1) ^ j.min(1) as u64;
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let opening = [(h % v) as usize, ((h / v + 1) % v) as usize];
            parts.push(self.exact.text(len, &opening, &mut rng, position)?);
            covered += len;
        }
        if covered < r.input_tokens {
            let line = r.line as u64;
            let mut rng = ChaCha8Rng::seed_from_u64(self.seed ^ 0x7ace_0000_0000 ^ line);
            // Away from the blocks' openings: the request's own words from the first.
            let opening = [
                ((line.wrapping_mul(7919) + self.seed) % v) as usize,
                ((line / v + 3) % v) as usize,
            ];
            let position = if parts.is_empty() {
                Position::Alone
            } else {
                Position::After
            };
            parts.push(
                self.exact
                    .text(r.input_tokens - covered, &opening, &mut rng, position)?,
            );
        }
        let text = parts.join(" ");
        if let Lengths::Exact {
            check: Some(count), ..
        } = &self.exact.lengths
        {
            check_count(count, &text, r.input_tokens)?;
        }
        Ok(text)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::super::{pieces, TokenLength, WordCosts};
    use super::*;

    fn texts() -> TraceTexts {
        TraceTexts {
            exact: ExactPrompts {
                length: TokenLength::Fixed(1),
                lengths: Lengths::Exact {
                    costs: WordCosts::measure(pieces).unwrap(),
                    check: Some(Arc::new(pieces)),
                    source: "tokenizer",
                    detail: "test".into(),
                },
            },
            block_tokens: 64,
            seed: 5,
        }
    }

    fn request(line: usize, input_tokens: u64, hash_ids: &[u64]) -> TraceRequest {
        TraceRequest {
            line,
            at_ns: 0,
            input_tokens,
            output_tokens: 1,
            hash_ids: hash_ids.to_vec(),
        }
    }

    #[test]
    fn equal_block_ids_are_equal_text_and_lengths_are_exact() {
        let t = texts();
        let a = t.text(&request(1, 150, &[10, 11, 12])).unwrap();
        let b = t.text(&request(2, 140, &[10, 11, 13])).unwrap();
        assert_eq!(pieces(&a).unwrap(), 150);
        assert_eq!(pieces(&b).unwrap(), 140);
        // The first two blocks (128 tokens) are the same words; the third differs at once.
        let words = |s: &str| s.split(' ').map(str::to_string).collect::<Vec<_>>();
        let (wa, wb) = (words(&a), words(&b));
        let common = wa.iter().zip(&wb).take_while(|(x, y)| x == y).count();
        let prefix = wa[..common].join(" ");
        assert_eq!(pieces(&prefix).unwrap(), 128, "{prefix}");
        // Another id from the first block on: nothing in common.
        let c = t.text(&request(3, 150, &[20, 11, 12])).unwrap();
        assert_ne!(a.split(' ').next(), c.split(' ').next());
        // The same request twice: the same text.
        assert_eq!(a, t.text(&request(1, 150, &[10, 11, 12])).unwrap());
    }

    #[test]
    fn requests_without_ids_get_texts_of_their_own() {
        let t = texts();
        let a = t.text(&request(4, 90, &[])).unwrap();
        let b = t.text(&request(5, 90, &[])).unwrap();
        assert_eq!((pieces(&a).unwrap(), pieces(&b).unwrap()), (90, 90));
        assert_ne!(a.split(' ').next(), b.split(' ').next());
        // More tokens than the ids cover: the rest is the request's own.
        let c = t.text(&request(6, 100, &[10])).unwrap();
        assert_eq!(pieces(&c).unwrap(), 100);
        let block = t.text(&request(7, 64, &[10])).unwrap();
        assert!(c.starts_with(&format!("{block} ")), "{c}\n{block}");
    }
}
