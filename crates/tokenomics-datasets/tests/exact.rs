//! Token-exact synthetic prompts with a real (small, trained here) byte-level BPE tokenizer.
#![cfg(feature = "tokenizer")]

use tokenizers::models::bpe::{BpeTrainerBuilder, BPE};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::{
    AddedToken, DecoderWrapper, NormalizerWrapper, PostProcessorWrapper, PreTokenizerWrapper,
    TokenizerBuilder, TokenizerImpl,
};
use tokenomics_datasets::exact::{self, TokenLength};
use tokenomics_datasets::text::VOCABULARY;
use tokenomics_datasets::{Error, Prompt};

/// Trains a byte-level BPE (GPT-2 style: words carry their leading space) of 400 tokens on the
/// vocabulary, so most words are one token and some are two or three, and writes tokenizer.json.
fn small_tokenizer(dir: &std::path::Path) -> std::path::PathBuf {
    let mut trainer = BpeTrainerBuilder::new()
        .vocab_size(400)
        .min_frequency(1)
        .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
        .special_tokens(vec![AddedToken::from("<s>", true)])
        .build();
    let mut tok: TokenizerImpl<
        BPE,
        NormalizerWrapper,
        PreTokenizerWrapper,
        PostProcessorWrapper,
        DecoderWrapper,
    > = TokenizerBuilder::new()
        .with_model(BPE::default())
        .with_pre_tokenizer(Some(PreTokenizerWrapper::ByteLevel(ByteLevel::default())))
        .with_decoder(Some(DecoderWrapper::ByteLevel(ByteLevel::default())))
        .build()
        .unwrap();
    // Common words often, rare ones once: frequent words merge into single tokens.
    let corpus: Vec<String> = VOCABULARY
        .iter()
        .enumerate()
        .map(|(i, w)| vec![*w; if i % 3 == 0 { 1 } else { 20 }].join(" "))
        .collect();
    tok.train(&mut trainer, corpus.iter()).unwrap();
    let path = dir.join("tokenizer.json");
    tok.save(&path, false).unwrap();
    path
}

#[test]
fn prompts_of_32_256_and_1000_tokens_are_exact() {
    let dir = tempfile::tempdir().unwrap();
    let path = small_tokenizer(dir.path());
    // An independent count: the file loaded on its own.
    let check = tokenizers::Tokenizer::from_file(&path).unwrap();
    let count = |t: &str| check.encode(t, false).unwrap().len() as u64;
    // The tokenizer is not trivial: some words take more than one token.
    assert!(VOCABULARY.iter().any(|w| count(&format!(" {w}")) > 1));
    for n in [32u64, 256, 1000] {
        let counter = exact::local_counter(&path).unwrap();
        let prompts =
            exact::with_tokenizer(TokenLength::Fixed(n), counter, path.display().to_string())
                .unwrap();
        assert_eq!(prompts.token_count_source(), "tokenizer");
        let drawn = prompts.draw(20, 7);
        let mut firsts = std::collections::HashSet::new();
        for p in &drawn {
            let Prompt::Messages(m) = p else {
                panic!("a user message")
            };
            assert_eq!(m.len(), 1);
            assert_eq!(count(&m[0].content), n, "{n}: {}", &m[0].content[..60]);
            let ids = check.encode(m[0].content.as_str(), false).unwrap();
            firsts.insert(ids.get_ids()[..2].to_vec());
        }
        // No two prompts share their first tokens.
        assert_eq!(firsts.len(), 20);
    }
    // Spread lengths are exact too, each its own.
    let counter = exact::local_counter(&path).unwrap();
    let spread = exact::with_tokenizer(TokenLength::Uniform(10, 500), counter, "t".into()).unwrap();
    for (text, n) in spread.draw_with_lengths(50, 3).unwrap() {
        assert_eq!(count(&text), n);
    }
    let d = spread.describe();
    assert_eq!(d["source"]["token_count_source"], "tokenizer");
    assert_eq!(d["source"]["input_tokens"]["distribution"], "uniform");
}

#[test]
fn a_missing_or_broken_tokenizer_file_is_a_clear_error_and_bad_input() {
    let e = exact::local_counter(std::path::Path::new("/nonexistent/tokenizer.json"))
        .err()
        .unwrap();
    assert!(matches!(e, Error::TokenizerFile { .. }), "{e}");
    assert!(e.is_bad_input());
    assert!(e.to_string().contains("/nonexistent/tokenizer.json"), "{e}");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokenizer.json");
    std::fs::write(&path, "{\"not\": \"a tokenizer\"}").unwrap();
    let e = exact::local_counter(&path).err().unwrap();
    assert!(
        matches!(e, Error::TokenizerFile { .. }) && e.is_bad_input(),
        "{e}"
    );
}
