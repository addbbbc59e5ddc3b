//! The crate's one error type, and the line between the user's input and everything else.
//!
//! A program decides its exit code from [`Error::is_bad_input`], never from message text: a key,
//! a spec, a file, a dataset, a split, a column or a tokenizer the user named that does not
//! exist or cannot be used is bad input; a Hub that cannot be reached, a download that fails
//! half-way or a disk that will not read is not.

use std::path::PathBuf;

/// A Cargo feature of this crate that a build may leave out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feature {
    /// `hub`: Hugging Face Hub datasets and tokenizers (`aime`, `hf:OWNER/NAME`,
    /// `--tokenizer OWNER/NAME`).
    Hub,
    /// `parquet`: Parquet data files of Hub datasets.
    Parquet,
    /// `tokenizer`: local `tokenizer.json` files (the `tokenizers` crate).
    Tokenizer,
}

impl Feature {
    /// The feature's name in `Cargo.toml`.
    pub fn name(self) -> &'static str {
        match self {
            Feature::Hub => "hub",
            Feature::Parquet => "parquet",
            Feature::Tokenizer => "tokenizer",
        }
    }

    /// What a build without the feature lacks, in words.
    pub fn support(self) -> &'static str {
        match self {
            Feature::Hub => "Hugging Face Hub support",
            Feature::Parquet => "Parquet support",
            Feature::Tokenizer => "local tokenizer support",
        }
    }
}

/// Errors of this crate. Every message is one line that names what failed (the key, the file,
/// the dataset or the model) and, where there is one, what to do instead.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A `--dataset_key` that names no kind of dataset (or an `hf:` key without `OWNER/NAME`).
    #[error("unknown dataset key {0:?}: use synthetic, file:PATH, aime or hf:OWNER/NAME")]
    UnknownKey(String),
    /// A Hub key given to [`crate::PromptSource::from_key`], which reads only offline keys.
    #[error("dataset {0} is on the Hugging Face Hub: load it with PromptSource::open")]
    HubKey(String),
    /// Something this build was compiled without: `this build has no Hugging Face Hub support
    /// (feature `hub`)`.
    #[error("this build has no {} (feature `{}`)", .0.support(), .0.name())]
    Unsupported(Feature),
    /// A token-length spec (`--input_tokens`) that does not parse: not `N`, `uniform:LO,HI` or
    /// `normal:MEAN,STD`, or numbers out of range. The message quotes the spec.
    #[error("{0}")]
    LengthSpec(String),
    /// A `tokenizer.json` that cannot be loaded: missing, unreadable or not a tokenizer.
    #[error("cannot load tokenizer {}: {message}", .path.display())]
    TokenizerFile {
        /// The file as given.
        path: PathBuf,
        /// What the `tokenizers` crate said.
        message: String,
    },
    /// A tokenizer (local, or a counter given by the caller) that cannot make exact lengths: it
    /// failed on a text, gives a word no token, has no one-token word, or does not count words
    /// independently.
    #[error("{0}")]
    Tokenizer(String),
    /// The Hub answered, and what was asked for is not there or not for this token: no such
    /// dataset, model or file, no data files for the split, access refused.
    #[error("{subject}: {message}")]
    HubNotFound {
        /// `dataset OWNER/NAME` or `model OWNER/NAME`.
        subject: String,
        /// What is missing or refused, and what to check.
        message: String,
    },
    /// The Hub cannot be reached (no connection, a timeout, a server error) or may not be used
    /// (`HF_HUB_OFFLINE`), and the cache does not hold what was asked for. The message says
    /// what to do without the Hub.
    #[error("{0}")]
    HubUnreachable(Box<HubUnreachable>),
    /// Any other trouble on the way to the Hub or in its cache: the client cannot be set up, a
    /// download fails part-way, the Hub answers an error that says nothing about the request.
    #[error("{subject}: {message}")]
    HubFailed {
        /// `dataset OWNER/NAME` or `model OWNER/NAME`.
        subject: String,
        /// What failed, with its causes.
        message: String,
    },
    /// A Hub dataset's split has no usable prompt column: the named column is missing, none is
    /// named and none is found by name, or a cell is neither text nor chat messages.
    #[error("dataset {dataset}: {message}")]
    DatasetColumn {
        /// `OWNER/NAME, split "train"`.
        dataset: String,
        /// What is wrong with the column, naming the columns there are.
        message: String,
    },
    /// A file that cannot be read: a `file:PATH` dataset, or a data file given to
    /// [`crate::hub::read_records`] (a Hub file in the cache that cannot be read is
    /// [`Error::HubFailed`]).
    #[error("cannot read dataset file {}: {source}", .path.display())]
    Read {
        /// The file as given.
        path: PathBuf,
        /// Why it cannot be read.
        source: std::io::Error,
    },
    /// A line of a `file:PATH` dataset or of a JSON Lines data file that is not what the format
    /// needs.
    #[error("dataset file {}, line {line}: {message}", .path.display())]
    Format {
        /// The file as given.
        path: PathBuf,
        /// From 1.
        line: usize,
        /// What the line lacks.
        message: String,
    },
    /// A data file that is not in the format its name says (CSV, JSON, Parquet).
    #[error("dataset file {}: {message}", .path.display())]
    Malformed {
        /// The file as given.
        path: PathBuf,
        /// What is wrong, and where (a record or row number) when known.
        message: String,
    },
    /// A trace option that makes no sense (a time scale, a window, a format name), or a window
    /// with no request in it.
    #[error("{0}")]
    Trace(String),
    /// A dataset that holds no prompts at all: an empty file or split (named in the message).
    #[error("dataset {0} holds no prompts")]
    Empty(String),
}

/// What [`Error::HubUnreachable`] says: what was asked for, why the Hub was not asked, where the
/// cache is, and what to do instead.
#[derive(Debug, Clone)]
pub struct HubUnreachable {
    /// `dataset OWNER/NAME` or `model OWNER/NAME`.
    pub subject: String,
    /// What the cache lacks: `split "train"`, `tokenizer.json`, a file's name.
    pub missing: String,
    /// The Hub's base URL.
    pub endpoint: String,
    /// `HF_HUB_OFFLINE` was set: the Hub was not asked at all.
    pub offline: bool,
    /// Why the Hub could not be reached, with its causes (empty when `offline`).
    pub reason: String,
    /// The cache's `hub` folder.
    pub cache: PathBuf,
    /// The way to go on without the Hub, for the user.
    pub instead: &'static str,
}

impl std::fmt::Display for HubUnreachable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: ", self.subject)?;
        if self.offline {
            write!(f, "the Hub may not be used (HF_HUB_OFFLINE is set)")?;
        } else {
            write!(
                f,
                "the Hub at {} cannot be reached ({})",
                self.endpoint, self.reason
            )?;
        }
        write!(
            f,
            " and {} is not in the cache at {}; {}",
            self.missing,
            self.cache.display(),
            self.instead
        )
    }
}

impl Error {
    /// Whether the error is the user's input: a key, a spec, a file, a dataset, a split, a column
    /// or a tokenizer that does not exist or cannot be used, or something this build lacks (a
    /// program exits 2, as for a bad flag). False for a Hub that cannot be reached and the cache
    /// does not stand in for, and for trouble on the way (downloads, I/O): the same command may
    /// work later (a program exits 1).
    pub fn is_bad_input(&self) -> bool {
        use std::io::ErrorKind;
        match self {
            Error::UnknownKey(_)
            | Error::HubKey(_)
            | Error::Unsupported(_)
            | Error::LengthSpec(_)
            | Error::TokenizerFile { .. }
            | Error::Tokenizer(_)
            | Error::HubNotFound { .. }
            | Error::DatasetColumn { .. }
            | Error::Format { .. }
            | Error::Malformed { .. }
            | Error::Trace(_)
            | Error::Empty(_) => true,
            // A path that names nothing, or nothing readable as text, is the user's typing; a
            // disk that fails is not.
            Error::Read { source, .. } => matches!(
                source.kind(),
                ErrorKind::NotFound
                    | ErrorKind::PermissionDenied
                    | ErrorKind::IsADirectory
                    | ErrorKind::NotADirectory
                    | ErrorKind::InvalidData
            ),
            Error::HubUnreachable(_) | Error::HubFailed { .. } => false,
        }
    }
}

/// The crate's result: [`Error`] unless told otherwise.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_and_classes() {
        let e = Error::Unsupported(Feature::Hub);
        assert_eq!(
            e.to_string(),
            "this build has no Hugging Face Hub support (feature `hub`)"
        );
        assert!(e.is_bad_input());
        let mut unreachable = HubUnreachable {
            subject: "dataset a/b".into(),
            missing: "split \"train\"".into(),
            endpoint: "http://127.0.0.1:9".into(),
            offline: false,
            reason: "connection refused".into(),
            cache: PathBuf::from("/c/hub"),
            instead: "use --dataset_key synthetic",
        };
        let e = Error::HubUnreachable(Box::new(unreachable.clone()));
        assert_eq!(
            e.to_string(),
            "dataset a/b: the Hub at http://127.0.0.1:9 cannot be reached (connection refused) \
             and split \"train\" is not in the cache at /c/hub; use --dataset_key synthetic"
        );
        assert!(!e.is_bad_input());
        unreachable.offline = true;
        assert_eq!(
            unreachable.to_string(),
            "dataset a/b: the Hub may not be used (HF_HUB_OFFLINE is set) and split \"train\" is \
             not in the cache at /c/hub; use --dataset_key synthetic"
        );
        let missing = Error::Read {
            path: "/x".into(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        };
        assert!(missing.is_bad_input());
        let disk = Error::Read {
            path: "/x".into(),
            source: std::io::Error::other("bad sector"),
        };
        assert!(!disk.is_bad_input());
    }
}
