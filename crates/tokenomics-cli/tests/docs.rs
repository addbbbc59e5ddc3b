//! `--generate`: the completion scripts and the man page are generated from the flags a binary
//! parses with (every flag, under the name passed in), and a wrong request is refused in one line
//! with exit code 2 before the binary's own flags are parsed.

use std::ffi::OsString;
use std::process::ExitCode;

use clap::CommandFactory;
use tokenomics_cli::docs::{self, Generate};

/// A binary's flags, in the project's two spellings (underscore, with a kebab-case alias), a
/// required one among them so that a run without it would be refused.
#[derive(Debug, clap::Parser)]
#[command(name = "package-name", version, about = "Measures a demo server")]
struct Demo {
    /// The model to ask.
    #[arg(long)]
    model: String,
    /// Requests per second.
    #[arg(long = "request_rate", visible_alias = "request-rate")]
    request_rate: Option<f64>,
    /// Stream the responses.
    #[arg(long)]
    stream: bool,
}

fn render(kind: Generate) -> String {
    let mut out = Vec::new();
    docs::render(kind, Demo::command(), "demo-bench", &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

fn args(list: &[&str]) -> Vec<OsString> {
    list.iter().map(OsString::from).collect()
}

#[test]
fn the_man_page_lists_every_flag_under_the_binary_name() {
    let man = render(Generate::Man);
    assert!(man.contains(".TH demo-bench 1"), "{man}");
    assert!(
        man.ends_with(concat!("v", env!("CARGO_PKG_VERSION"), "\n")),
        "{man}"
    );
    assert!(
        man.contains("demo\\-bench \\- Measures a demo server"),
        "{man}"
    );
    for flag in ["model", "request_rate", "stream", "help", "version"] {
        assert!(
            man.contains(&format!("\\fB\\-\\-{flag}\\fR")),
            "--{flag}: {man}"
        );
    }
    assert!(man.contains("Requests per second"), "{man}");
    assert!(
        !man.contains("package"),
        "the name passed in, not clap's: {man}"
    );
}

#[test]
fn each_shell_completes_every_flag_of_the_binary_name() {
    let bash = render(Generate::CompletionsBash);
    assert!(bash.contains("complete -F _demo__bench"), "{bash}");
    assert!(bash.contains("-o default demo-bench\n"), "{bash}");
    let zsh = render(Generate::CompletionsZsh);
    assert!(zsh.starts_with("#compdef demo-bench\n"), "{zsh}");
    let fish = render(Generate::CompletionsFish);
    assert!(fish.contains("complete -c demo-bench -l model"), "{fish}");
    assert!(fish.contains("-l request_rate -l request-rate"), "{fish}");
    for (shell, text) in [("bash", &bash), ("zsh", &zsh)] {
        for flag in ["--model", "--request_rate", "--request-rate", "--stream"] {
            assert!(text.contains(flag), "{shell} lacks {flag}: {text}");
        }
    }
    assert!(!bash.contains("package") && !zsh.contains("package") && !fish.contains("package"));
}

#[test]
fn a_wrong_generate_request_is_a_usage_error() {
    for list in [
        &["demo-bench", "--generate", "bogus"][..],
        &["demo-bench", "--generate"],
        &["demo-bench", "--generate=", "man"],
        &["demo-bench", "--generate", "man", "--model", "m"],
    ] {
        let got = tokenomics_cli::parse_from::<Demo>("demo-bench", args(list));
        assert_eq!(
            got.err(),
            Some(ExitCode::from(tokenomics_cli::exit::USAGE)),
            "{list:?}"
        );
    }
}

#[test]
fn generate_is_only_read_as_the_first_argument() {
    // Anywhere else it is no flag of the binary: clap refuses it as it would any other.
    let got = tokenomics_cli::parse_from::<Demo>(
        "demo-bench",
        args(&["demo-bench", "--model", "m", "--generate", "man"]),
    );
    assert_eq!(got.err(), Some(ExitCode::from(tokenomics_cli::exit::USAGE)));
    // And a run without it parses as before.
    let demo = tokenomics_cli::parse_from::<Demo>(
        "demo-bench",
        args(&["demo-bench", "--model", "m", "--request-rate", "2"]),
    )
    .unwrap();
    assert_eq!((demo.model.as_str(), demo.request_rate), ("m", Some(2.0)));
}
