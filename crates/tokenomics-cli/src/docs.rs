//! Shell completions and man pages, generated from the clap [`Command`] a binary parses with, so
//! they cannot drift from its flags.
//!
//! Every binary that parses through [`crate::parse`] answers `NAME --generate KIND` (KIND one of
//! [`Generate`]'s values) by writing that file to stdout and exiting 0. The flag is read from the
//! raw arguments before the binary's own flags are parsed, so it needs no field in any binary's
//! arguments and does not appear in `--help` (whose flags the book documents one by one under
//! `docs/src/`: `benchmark.md` for `oai-bench`, `embed-bench.md`, `plots.md`, `simulator.md`, …).

use std::ffi::OsString;
use std::io::Write;
use std::process::ExitCode;

use clap::{Command, Parser, ValueEnum};

use crate::exit;

/// The flag, which must come first: `NAME --generate KIND` (or `--generate=KIND`).
const FLAG: &str = "--generate";

/// What `--generate` writes (each variant's doc comment is also its `--generate` help; the value
/// names are `completions-bash`, `completions-zsh`, `completions-fish` and `man`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Generate {
    /// A bash completion script (source it, or put it in
    /// `~/.local/share/bash-completion/completions/NAME`).
    #[value(name = "completions-bash")]
    CompletionsBash,
    /// A zsh completion function (put it in a directory of `$fpath` as `_NAME`).
    #[value(name = "completions-zsh")]
    CompletionsZsh,
    /// A fish completion script (put it in `~/.config/fish/completions/NAME.fish`).
    #[value(name = "completions-fish")]
    CompletionsFish,
    /// A man page in roff, section 1 (put it in a directory of `MANPATH` as `man1/NAME.1`).
    Man,
}

/// Writes the `kind` file for `cmd`, naming the program `name` throughout (the man page's title
/// and synopsis, the command each completion script completes), whatever the binary file is
/// called. The file is made in memory and written with one `write_all`, so the only error is
/// `out`'s.
///
/// ```
/// use clap::CommandFactory;
/// use tokenomics_cli::docs::{render, Generate};
///
/// #[derive(clap::Parser)]
/// #[command(version = "1.0")]
/// struct Args {
///     /// Requests per second.
///     #[arg(long)]
///     rate: Option<f64>,
/// }
///
/// let mut page = Vec::new();
/// render(Generate::Man, Args::command(), "demo", &mut page).unwrap();
/// let page = String::from_utf8(page).unwrap();
/// assert!(page.contains(".TH demo 1") && page.contains("\\-\\-rate") && page.ends_with('\n'));
/// ```
pub fn render(
    kind: Generate,
    cmd: Command,
    name: &str,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let mut cmd = cmd.display_name(name).bin_name(name);
    let mut text = Vec::new();
    match kind {
        Generate::CompletionsBash => {
            clap_complete::generate(clap_complete::Shell::Bash, &mut cmd, name, &mut text)
        }
        Generate::CompletionsZsh => {
            clap_complete::generate(clap_complete::Shell::Zsh, &mut cmd, name, &mut text)
        }
        Generate::CompletionsFish => {
            clap_complete::generate(clap_complete::Shell::Fish, &mut cmd, name, &mut text)
        }
        Generate::Man => {
            // The footer names the program too (clap_mangen takes the package's name there).
            let source = match cmd.get_version() {
                Some(version) => format!("{name} {version}"),
                None => name.to_string(),
            };
            clap_mangen::Man::new(cmd)
                .source(source)
                .render(&mut text)?;
            // A text file ends with a newline (clap_mangen stops at the last word).
            if !text.ends_with(b"\n") {
                text.push(b'\n');
            }
        }
    }
    out.write_all(&text)
}

/// The flag on its own, so that clap checks the value against [`Generate`] (naming the possible
/// values when it is wrong) and refuses anything beside it.
#[derive(Debug, clap::Parser)]
#[command(disable_help_flag = true, disable_version_flag = true)]
struct GenerateArgs {
    #[arg(long, value_enum, value_name = "KIND")]
    generate: Generate,
}

/// Whether `args` (the first being the program name) ask for a generated file rather than a run.
pub(crate) fn requested(args: &[OsString]) -> bool {
    args.get(1)
        .and_then(|a| a.to_str())
        .is_some_and(|a| a == FLAG || a.starts_with("--generate="))
}

/// Answers `NAME --generate KIND`: writes the file to stdout and returns success, or prints one
/// line on stderr and returns [`exit::USAGE`] (an unknown or missing KIND, or another argument
/// beside it) or [`exit::ERROR`] (stdout could not be written).
pub(crate) fn run(name: &str, cmd: Command, args: Vec<OsString>) -> ExitCode {
    let kind = match GenerateArgs::try_parse_from(args) {
        Ok(a) => a.generate,
        Err(e) => {
            let mut message = crate::one_line(&e.to_string());
            if e.kind() == clap::error::ErrorKind::UnknownArgument {
                message.push_str(" (--generate KIND takes no other argument)");
            }
            return crate::fail(name, message, exit::USAGE);
        }
    };
    let mut stdout = std::io::stdout().lock();
    let written = render(kind, cmd, name, &mut stdout).and_then(|()| stdout.flush());
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => crate::fail(
            name,
            format!("cannot write the generated file: {e}"),
            exit::ERROR,
        ),
    }
}
