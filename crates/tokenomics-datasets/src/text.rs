//! Seeded text: the word generator behind synthetic chat prompts and embedding inputs.
//!
//! The vocabulary is about a hundred common English words plus a few sentence openers, as in the
//! original embedding script. Everything is drawn from a `ChaCha8` generator seeded by the caller,
//! so the same seed gives the same texts on every machine and version.

use rand::{seq::SliceRandom, Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::Prompt;

/// Common English words texts are made of.
pub const VOCABULARY: &[&str] = &[
    "the", "be", "to", "of", "and", "a", "in", "that", "have", "it", "for", "not", "on", "with",
    "he", "as", "you", "do", "at", "this", "but", "his", "by", "from", "they", "we", "say", "her",
    "she", "or", "an", "will", "my", "one", "all", "would", "there", "their", "what", "so", "up",
    "out", "if", "about", "who", "get", "which", "go", "me", "when", "make", "can", "like", "time",
    "no", "just", "him", "know", "take", "people", "into", "year", "your", "good", "some", "could",
    "them", "see", "other", "than", "then", "now", "look", "only", "come", "its", "over", "think",
    "also", "back", "after", "use", "two", "how", "our", "work", "first", "well", "way", "even",
    "new", "want", "because", "any", "these", "give", "day", "most", "us", "system", "data",
    "model", "number", "value", "problem", "answer",
];

/// Sentence openers.
pub const OPENERS: &[&str] = &[
    "In this case,",
    "For example,",
    "However,",
    "As a result,",
    "In addition,",
    "On the other hand,",
    "Therefore,",
    "Meanwhile,",
];

/// Lengths of generated texts, as the embedding benchmark's `--sequence_lengths` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextLength {
    /// 5–15 words.
    Short,
    /// An opener plus 15–40 words.
    Medium,
    /// 4–8 sentences, each an opener plus 15–40 words.
    Long,
    /// One of the three above, drawn per text.
    Mixed,
    /// Exactly this many words (split into sentences of 10–25 words).
    Words(usize),
}

/// The longest text of an exact word count, in words.
pub const MAX_WORDS: usize = 1_000_000;

impl TextLength {
    /// Parses `short`, `medium`, `long`, `mixed` or a word count from 1 to [`MAX_WORDS`].
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim() {
            "short" => Some(Self::Short),
            "medium" => Some(Self::Medium),
            "long" => Some(Self::Long),
            "mixed" => Some(Self::Mixed),
            n => n
                .parse()
                .ok()
                .filter(|&n| n > 0 && n <= MAX_WORDS)
                .map(Self::Words),
        }
    }

    /// The name used in configuration keys (`batch_8_seq_{label}`).
    pub fn label(&self) -> String {
        match self {
            Self::Short => "short".into(),
            Self::Medium => "medium".into(),
            Self::Long => "long".into(),
            Self::Mixed => "mixed".into(),
            Self::Words(n) => n.to_string(),
        }
    }
}

impl std::str::FromStr for TextLength {
    type Err = crate::Error;

    /// [`TextLength::parse`], with a message saying what is allowed.
    fn from_str(s: &str) -> crate::Result<Self> {
        Self::parse(s).ok_or_else(|| {
            crate::Error::LengthSpec(format!(
                "{s:?} is not a text length: short, medium, long, mixed or a word count from 1 to {MAX_WORDS}"
            ))
        })
    }
}

/// A seeded text generator.
pub struct TextGenerator {
    rng: ChaCha8Rng,
}

impl TextGenerator {
    /// A generator seeded with `seed`: the same seed gives the same texts on every machine.
    pub fn new(seed: u64) -> Self {
        Self {
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    fn word(&mut self) -> &'static str {
        VOCABULARY.choose(&mut self.rng).copied().unwrap_or("the")
    }

    fn opener(&mut self) -> &'static str {
        OPENERS.choose(&mut self.rng).copied().unwrap_or("However,")
    }

    /// A sentence of `n` vocabulary words, capitalised, ending with a full stop.
    fn sentence(&mut self, opener: bool, n: usize, out: &mut String) {
        if !out.is_empty() {
            out.push(' ');
        }
        let start = out.len();
        if opener {
            out.push_str(self.opener());
            out.push(' ');
        }
        for i in 0..n {
            if i > 0 {
                out.push(' ');
            }
            out.push_str(self.word());
        }
        if let Some(first) = out[start..].chars().next() {
            let upper = first.to_ascii_uppercase();
            out.replace_range(start..start + first.len_utf8(), &upper.to_string());
        }
        out.push('.');
    }

    /// Exactly `n` words, in sentences of 10–25 words.
    pub fn words(&mut self, n: usize) -> String {
        let mut out = String::with_capacity(n * 6);
        let mut left = n;
        while left > 0 {
            let k = self.rng.gen_range(10..=25).min(left);
            self.sentence(false, k, &mut out);
            left -= k;
        }
        out
    }

    /// A text of the given length category.
    pub fn text(&mut self, length: TextLength) -> String {
        match length {
            TextLength::Short => {
                let n = self.rng.gen_range(5..=15);
                let mut out = String::new();
                self.sentence(false, n, &mut out);
                out
            }
            TextLength::Medium => {
                let n = self.rng.gen_range(15..=40);
                let mut out = String::new();
                self.sentence(true, n, &mut out);
                out
            }
            TextLength::Long => {
                let sentences = self.rng.gen_range(4..=8);
                let mut out = String::new();
                for _ in 0..sentences {
                    let n = self.rng.gen_range(15..=40);
                    self.sentence(true, n, &mut out);
                }
                out
            }
            TextLength::Mixed => {
                let pick = [TextLength::Short, TextLength::Medium, TextLength::Long]
                    [self.rng.gen_range(0..3)];
                self.text(pick)
            }
            TextLength::Words(n) => self.words(n),
        }
    }

    /// The generator's random source, for draws that must follow the same seeded sequence.
    pub fn rng(&mut self) -> &mut ChaCha8Rng {
        &mut self.rng
    }
}

/// Generated chat prompts: a problem statement of `min_words..=max_words` words, opening with a
/// problem number and words drawn per prompt, so prompts of one run share no prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntheticPrompts {
    /// The fewest words of a problem statement (default 40).
    pub min_words: usize,
    /// The most words of a problem statement, at least `min_words` (default 400).
    pub max_words: usize,
}

impl Default for SyntheticPrompts {
    fn default() -> Self {
        Self {
            min_words: 40,
            max_words: 400,
        }
    }
}

impl SyntheticPrompts {
    /// `n` prompts for the run seeded with `seed`, each a [`Prompt::Text`] opening with
    /// `Problem {id}.` and different words; the same seed gives the same prompts.
    pub fn draw(&self, n: usize, seed: u64) -> Vec<Prompt> {
        let mut g = TextGenerator::new(seed);
        (0..n)
            .map(|_| {
                let words = g.rng().gen_range(self.min_words..=self.max_words);
                let id: u32 = g.rng().gen_range(100_000..1_000_000);
                let body = g.words(words);
                Prompt::Text(format!(
                    "Problem {id}. {body} What is the value of the final answer? Explain each step."
                ))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count_words(s: &str) -> usize {
        s.split_whitespace().count()
    }

    #[test]
    fn exact_word_counts() {
        let mut g = TextGenerator::new(1);
        for n in [1, 10, 25, 50, 200, 1000] {
            assert_eq!(count_words(&g.words(n)), n);
            assert_eq!(count_words(&g.text(TextLength::Words(n))), n);
        }
    }

    #[test]
    fn categories_have_their_lengths() {
        let mut g = TextGenerator::new(2);
        for _ in 0..200 {
            let short = count_words(&g.text(TextLength::Short));
            assert!((5..=15).contains(&short));
            let medium = g.text(TextLength::Medium);
            assert!(OPENERS.iter().any(|o| medium.starts_with(o)), "{medium}");
            // openers are one to four words
            assert!((16..=44).contains(&count_words(&medium)));
            let long = g.text(TextLength::Long);
            let sentences = long.matches('.').count();
            assert!((4..=8).contains(&sentences), "{long}");
        }
    }

    #[test]
    fn seeded() {
        assert_eq!(
            TextGenerator::new(5).words(50),
            TextGenerator::new(5).words(50)
        );
        assert_ne!(
            TextGenerator::new(5).words(50),
            TextGenerator::new(6).words(50)
        );
        let p = SyntheticPrompts::default().draw(32, 9);
        let mut openings: Vec<String> = p
            .iter()
            .map(|p| match p {
                Prompt::Text(t) => t.split_whitespace().take(3).collect::<Vec<_>>().join(" "),
                _ => unreachable!(),
            })
            .collect();
        openings.sort();
        openings.dedup();
        assert_eq!(openings.len(), 32, "no two prompts share an opening");
    }

    #[test]
    fn parse_lengths() {
        assert_eq!(TextLength::parse("short"), Some(TextLength::Short));
        assert_eq!(TextLength::parse("200"), Some(TextLength::Words(200)));
        assert_eq!(TextLength::parse("0"), None);
        assert_eq!(TextLength::parse("huge"), None);
        assert_eq!(TextLength::Words(200).label(), "200");
    }
}
