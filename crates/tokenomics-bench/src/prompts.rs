//! Preparing the prompts of a chat benchmark from the prompt flags.
//!
//! Either a dataset (`--dataset_key`: synthetic text, a file, a Hugging Face Hub dataset), or
//! synthetic prompts of an exact token length (`--input_tokens`), whose lengths are counted by the
//! first of these that works: the tokenizer the user names (`--tokenizer`: a `tokenizer.json` or a
//! Hub model id), the server's tokenize endpoint, or an estimate — which is labelled as one in
//! the results and pointed out in a [`Note`].

use std::path::Path;

use tokenomics_datasets::exact::{self, ExactPrompts, TokenLength};
use tokenomics_datasets::hub::HubConfig;
use tokenomics_datasets::PromptSource;
use tokenomics_stats::TemplateTokens;

use crate::tokenize;
use crate::{Error, Result};

/// The prompt flags as given.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PromptFlags {
    /// `--dataset_key` [default: `aime`; `synthetic` against the simulator or with
    /// `--input_tokens`].
    pub dataset_key: Option<String>,
    /// `--dataset_split`: the split of a Hub dataset to read (default `train`).
    pub dataset_split: Option<String>,
    /// `--dataset_column`: the column of a Hub dataset holding the prompts (default: one found
    /// by name).
    pub dataset_column: Option<String>,
    /// `--input_tokens`: synthetic prompts of an exact length.
    pub input_tokens: Option<TokenLength>,
    /// `--tokenizer`: a `tokenizer.json` or a Hub model id, to count `--input_tokens` with.
    pub tokenizer: Option<String>,
    /// `--shared_prefix_tokens`: every prompt opens with a shared prefix of this many tokens.
    pub shared_prefix_tokens: Option<u64>,
    /// `--prefix_groups`: how many distinct prefixes there are.
    pub prefix_groups: Option<u64>,
    /// The benchmark's seed: the shared prefixes are built from it (the same in every level).
    pub seed: u64,
}

/// Where the server is, for its tokenize endpoint.
#[derive(Debug, Clone)]
pub struct TokenizeTarget {
    /// The server's base URL (`…/v1`); the tokenize route is looked for beside it.
    pub api_base: String,
    /// The API key sent with the tokenize requests, when the server wants one.
    pub api_key: Option<String>,
    /// The model whose tokenizer counts.
    pub model: String,
    /// TLS as the benchmark's client has it.
    pub tls: tokenomics_client::TlsOptions,
}

/// Something to tell the user about the prompts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    /// What was done (printed on stdout).
    Info(String),
    /// What fell short of what was asked (printed on stderr).
    Warning(String),
}

/// The prompts of a benchmark, ready to draw, and what to tell the user about them.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// Where each run draws its prompts from.
    pub source: PromptSource,
    /// The dataset key recorded in the metadata.
    pub dataset_key: String,
    /// What to tell the user about the prompts, in order.
    pub notes: Vec<Note>,
}

impl PromptFlags {
    /// Checks what needs no network: flags that do not go together, the form of the dataset key
    /// (and a dataset file), a tokenizer path that does not exist.
    pub fn check(&self) -> Result<()> {
        if self.tokenizer.is_some() && self.input_tokens.is_none() {
            return Err(Error::Invalid(
                "--tokenizer counts the tokens of --input_tokens prompts: give --input_tokens too"
                    .into(),
            ));
        }
        if self.input_tokens.is_some()
            && self
                .dataset_key
                .as_deref()
                .is_some_and(|k| k != "synthetic")
        {
            return Err(Error::Invalid(
                "--input_tokens makes synthetic prompts: it cannot be used with another --dataset_key"
                    .into(),
            ));
        }
        match (self.shared_prefix_tokens, self.prefix_groups) {
            (Some(_), None) | (None, Some(_)) => {
                return Err(Error::Invalid(
                    "--shared_prefix_tokens and --prefix_groups go together: give both".into(),
                ))
            }
            (Some(_), Some(_)) if self.input_tokens.is_none() => {
                return Err(Error::Invalid(
                    "--shared_prefix_tokens needs --input_tokens: the length of each prompt's own suffix after its group's prefix".into(),
                ))
            }
            (Some(p), Some(g)) if p == 0 || g == 0 => {
                return Err(Error::Invalid(
                    "--shared_prefix_tokens and --prefix_groups must be at least 1".into(),
                ))
            }
            _ => {}
        }
        if let Some(key) = &self.dataset_key {
            PromptSource::check_key(key)?;
        }
        if let Some(t) = &self.tokenizer {
            if !Path::new(t).exists() && (t.split('/').count() != 2 || t.ends_with(".json")) {
                return Err(Error::Invalid(format!(
                    "--tokenizer {t}: no such file, and not a Hub model id (OWNER/NAME)"
                )));
            }
        }
        Ok(())
    }

    /// The dataset key in effect: the one given, else `synthetic` for a simulated run or
    /// token-exact prompts, else the original's `aime`.
    pub fn dataset_key(&self, simulated: bool) -> String {
        self.dataset_key.clone().unwrap_or_else(|| {
            if simulated || self.input_tokens.is_some() {
                "synthetic".into()
            } else {
                "aime".into()
            }
        })
    }

    /// Loads the dataset or builds the token-exact prompts.
    pub async fn prepare(
        &self,
        server: &TokenizeTarget,
        simulated: bool,
        hub: &HubConfig,
    ) -> Result<Prepared> {
        self.check()?;
        let dataset_key = self.dataset_key(simulated);
        let mut notes = Vec::new();
        let source = match self.input_tokens {
            Some(length) => {
                let exact = self.exact(length, server, hub, &mut notes).await?;
                match self.shared_prefix_tokens.zip(self.prefix_groups) {
                    Some((tokens, groups)) => {
                        notes.push(Note::Info(format!(
                            "Shared prefixes: {groups} groups of {tokens} tokens, each prompt its group's prefix and a suffix of its own"
                        )));
                        PromptSource::SharedPrefixes(exact::SharedPrefixes::new(
                            exact, tokens, groups, self.seed,
                        )?)
                    }
                    None => PromptSource::Exact(exact),
                }
            }
            None => {
                let (source, note) = PromptSource::open(
                    &dataset_key,
                    self.dataset_split.as_deref(),
                    self.dataset_column.as_deref(),
                    hub,
                )
                .await?;
                notes.extend(note.map(Note::Warning));
                if let PromptSource::Rows { rows, .. } = &source {
                    let commit = source.describe()["source"]["commit"]
                        .as_str()
                        .map(|c| format!(" (commit {})", &c[..c.len().min(12)]))
                        .unwrap_or_default();
                    notes.push(Note::Info(format!(
                        "Dataset {dataset_key}: {} prompts{commit}",
                        rows.len()
                    )));
                }
                source
            }
        };
        Ok(Prepared {
            source,
            dataset_key,
            notes,
        })
    }

    /// The tokens the server puts around a prompt's text (its chat template for `chat`, special
    /// tokens for completions), from its tokenize endpoint: a shared prefix's blocks start after
    /// them. An error when the endpoint is absent or does not show them.
    pub async fn template_tokens(server: &TokenizeTarget, chat: bool) -> Result<TemplateTokens> {
        let endpoint = tokenize::Endpoint::find(
            &server.api_base,
            server.api_key.clone(),
            &server.model,
            &server.tls,
        )
        .await?;
        endpoint.template_tokens(chat).await
    }

    /// Token-exact prompts: lengths counted with `--tokenizer` (a file, or a Hub model's
    /// tokenizer.json), else the server's tokenize endpoint, else estimated (and labelled so).
    async fn exact(
        &self,
        length: TokenLength,
        server: &TokenizeTarget,
        hub: &HubConfig,
        notes: &mut Vec<Note>,
    ) -> Result<ExactPrompts> {
        if let Some(t) = &self.tokenizer {
            let path = Path::new(t);
            let (path, detail) = if path.exists() {
                (path.to_path_buf(), path.display().to_string())
            } else if t.split('/').count() == 2 && !t.ends_with(".json") {
                let p = tokenomics_datasets::hub::model_tokenizer(t, hub).await?;
                (p, format!("hf:{t}"))
            } else {
                return Err(Error::Invalid(format!(
                    "--tokenizer {t}: no such file, and not a Hub model id (OWNER/NAME)"
                )));
            };
            let counter = exact::local_counter(&path)?;
            let prompts = exact::with_tokenizer(length, counter, detail)?;
            notes.push(Note::Info(format!(
                "Prompt lengths: exact, counted with the tokenizer {t}"
            )));
            return Ok(prompts);
        }
        let endpoint = tokenize::Endpoint::find(
            &server.api_base,
            server.api_key.clone(),
            &server.model,
            &server.tls,
        )
        .await;
        let counted = match endpoint {
            Ok(ep) => tokenize::endpoint_prompts(&ep, length)
                .await
                .map(|p| (p, ep.url)),
            Err(e) => Err(e),
        };
        match counted {
            Ok((prompts, url)) => {
                notes.push(Note::Info(format!(
                    "Prompt lengths: exact, counted by the server's tokenizer at {url}"
                )));
                return Ok(prompts);
            }
            Err(e) => notes.push(Note::Warning(e.to_string())),
        }
        notes.push(Note::Warning(format!(
            "prompt lengths are estimated ({} tokens per word); give --tokenizer for exact ones",
            exact::TOKENS_PER_WORD
        )));
        Ok(ExactPrompts {
            length,
            lengths: exact::Lengths::Estimate,
        })
    }
}
