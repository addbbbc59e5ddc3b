//! What every Tokenomics binary shares on the command line.
//!
//! The binaries (`oai-bench`, `embed-bench`, `plot-throughput`, `oai-sim`, …) parse their flags
//! with clap and hand the work to a library; this crate is the small layer between the two, as
//! ripgrep's `grep-cli` is for ripgrep. A binary flattens the shared [`ServerArgs`] into its own
//! flags and parses them with [`parse`], whose mistakes are one line on stderr and exit 2. Every numeric flag goes through a checked parser in [`values`], so a number
//! is finite and inside a stated range (seconds or milliseconds, as the parser's name says) before
//! it becomes a [`Duration`](std::time::Duration) or a count. [`ServerArgs::connect`] resolves the
//! flags into a [`Target`]; with `--simulate PRESET` it first starts the simulated server inside
//! this process, on a loopback port, so the experiment crates only ever see a base URL and never
//! start a server themselves. Output goes through [`out!`], which drops a failed write to stdout
//! (`| head`) instead of panicking, so the results file is still written. Whatever stops a program
//! is a [`Failure`]: one line of message and an [exit code](exit) decided where the error arose,
//! from a typed error, never by matching message text; [`fail_with`] prints it as
//! `NAME: error: MESSAGE` and [`finish`] turns a run's request counts into the exit code.
//!
//! The crate holds:
//!
//! * the [exit codes](exit), the same for every binary, and [`Failure`], [`fail`], [`fail_with`]
//!   and [`finish`], which end a program with one of them;
//! * [`parse`], which turns any clap mistake into one line on stderr (keeping clap's "did you
//!   mean" tip) and exit code 2, and lets negative numbers reach the value parsers so that
//!   `--request_rate -5` is refused as a value, with its range;
//! * [`values`], the checked value parsers for numeric flags: every number a user types is
//!   finite, inside a stated range and converted without overflow before it becomes a
//!   [`std::time::Duration`] or a count;
//! * [`ServerArgs`], the flags that say which server to measure, and its `--simulate` start-up,
//!   so that the experiment crates never start a server themselves;
//! * [`docs`], the shell completions and man page each binary writes on `--generate KIND`,
//!   generated from the clap command it parses with;
//! * [`ensure_open_files`] and [`runtime`], the process set-up a load generator needs.
//!
//! # Examples
//!
//! A value is checked in the flag's own unit, and a refusal becomes exit code 2 with one line of
//! message:
//!
//! ```
//! use std::time::Duration;
//! use tokenomics_cli::{exit, values, Failure};
//!
//! // `--timeout 2.5` is seconds, `oai-sim --ttft_ms 50` milliseconds: both end as a Duration.
//! assert_eq!(values::positive_seconds("2.5")?, Duration::from_millis(2500));
//! assert_eq!(values::milliseconds("50")?, Duration::from_millis(50));
//!
//! // A negative rate is refused with its range, in one line.
//! let refused = values::rate("-5").unwrap_err();
//! assert_eq!(
//!     refused.to_string(),
//!     "expected a number of requests per second above 0 and at most 1000000"
//! );
//!
//! // The user's input was wrong: exit 2. Anything else would be exit 1.
//! let failure = Failure::classify(true, format!("--request_rate -5: {refused}"));
//! assert_eq!(failure.code, exit::USAGE);
//! let failure = Failure::classify(false, "cannot write results.json: disk full");
//! assert_eq!(failure.code, exit::ERROR);
//! # Ok::<(), values::BadValue>(())
//! ```
//!
//! A binary's flags with the shared server flags flattened in; `--simulate` starts the simulated
//! server in this process (on a loopback port: no network, no other process) and the [`Target`]
//! talks to it like any other server:
//!
//! ```
//! use std::process::ExitCode;
//! use tokenomics_cli::{exit, parse_from, ServerArgs};
//!
//! #[derive(clap::Parser)]
//! struct Args {
//!     #[arg(long)]
//!     model: Option<String>,
//!     #[command(flatten)]
//!     server: ServerArgs,
//! }
//!
//! // A refused value is one line on stderr and exit 2, returned for `main` to return.
//! let refused = parse_from::<Args>("demo", ["demo", "--timeout", "-1"].map(Into::into));
//! assert_eq!(refused.err(), Some(ExitCode::from(exit::USAGE)));
//!
//! let argv = ["demo", "--simulate", "h100-llama-3.1-8b", "--sim_time_scale", "100"];
//! let args = parse_from::<Args>("demo", argv.map(Into::into)).expect("valid flags");
//! let runtime = tokenomics_cli::runtime(1, None)?;
//! runtime.block_on(async {
//!     let target = args
//!         .server
//!         .connect(args.model.as_deref(), 7, "a doc example")
//!         .await
//!         .map_err(|failure| failure.message)?;
//!     assert!(target.api_base.starts_with("http://127.0.0.1:"));
//!     assert_eq!(target.simulated.as_ref().unwrap().time_scale, 100.0);
//!     assert_eq!(
//!         target.description(""),
//!         "Simulated: oai-sim preset h100-llama-3.1-8b, a doc example"
//!     );
//!     // The simulator answers like a server: it lists the model it serves.
//!     let clock = tokenomics_client::Clock::start();
//!     let models = target.client.connection().get("/models", &clock).await?;
//!     assert!(String::from_utf8_lossy(&models).contains(&target.model));
//!     Ok::<(), Box<dyn std::error::Error>>(())
//! })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![warn(missing_docs)]

pub mod docs;
mod server;
pub mod values;

/// `println!` for a command-line tool whose output may be piped into something that stops
/// reading (`| head`): a write that fails is dropped instead of panicking, so the program goes
/// on and its results file is still written.
///
/// It takes `println!`'s arguments and writes them and a newline to stdout; it never panics and
/// never returns an error. Errors and warnings go to stderr with `eprintln!` (see [`fail`]), not here.
///
/// ```
/// let succeeded = 3;
/// tokenomics_cli::out!("{succeeded} requests succeeded");
/// ```
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

use std::process::ExitCode;

/// The rate at which the simulator preset `name` saturates for requests of `input_tokens` in and
/// `output_tokens` out, in requests per real second at `time_scale` (model seconds per real
/// second; for `--sweep_from_sim`).
///
/// The rate returned is finite and above 0. Everything else is a [`Failure::usage`]
/// ([`exit::USAGE`]), one line: an unknown preset (the message lists the presets), token counts
/// the preset refuses, or a preset without a capacity limit and so no saturation point (both
/// named as `--sweep_from_sim NAME: …`).
///
/// ```
/// let at_1 = tokenomics_cli::predicted_rate("h100-llama-3.1-8b", 1000, 100, 1.0).unwrap();
/// let at_10 = tokenomics_cli::predicted_rate("h100-llama-3.1-8b", 1000, 100, 10.0).unwrap();
/// assert!(at_1 > 0.0 && at_10 > at_1, "a faster clock serves more per real second");
/// let unknown = tokenomics_cli::predicted_rate("no-such-preset", 1000, 100, 1.0).unwrap_err();
/// assert_eq!(unknown.code, tokenomics_cli::exit::USAGE);
/// ```
pub fn predicted_rate(
    name: &str,
    input_tokens: u64,
    output_tokens: u64,
    time_scale: f64,
) -> Result<f64, Failure> {
    let config = tokenomics_sim::SimConfig::preset(name)
        .map_err(Failure::usage)?
        .with_time_scale(time_scale);
    let p = config
        .predict(input_tokens, output_tokens)
        .map_err(|e| Failure::usage(format!("--sweep_from_sim {name}: {e}")))?;
    p.saturation
        .map(|s| s.requests_per_s)
        .filter(|r| r.is_finite() && *r > 0.0)
        .ok_or_else(|| {
            Failure::usage(format!(
                "--sweep_from_sim {name}: the preset has no saturation point to predict (no capacity limit)"
            ))
        })
}

pub use server::{ServerArgs, Target};

/// Exit codes, the same for every binary: one meaning per code, whichever binary returns it
/// (the table of codes and which binaries use each is in the book, `docs/src/load-shapes.md`,
/// "Exit codes"; each binary's `--help` lists the codes it uses).
///
/// They are `u8`, as [`ExitCode::from`] takes them; [`Failure`] carries one.
pub mod exit {
    /// 0: everything succeeded (every request, or a figure drawn, or a server stopped).
    pub const SUCCESS: u8 = 0;
    /// 1: an error stopped the program (a server that cannot be reached, a file that cannot be
    /// written); results written so far are kept.
    pub const ERROR: u8 = 1;
    /// 2: bad usage: a flag or value was refused (or the preflight found a wrong model or base
    /// URL) before any request was measured.
    pub const USAGE: u8 = 2;
    /// 3: the benchmark finished, but some requests failed (they are counted in the results).
    pub const SOME_FAILED: u8 = 3;
    /// 4: the benchmark finished, and every request failed.
    pub const ALL_FAILED: u8 = 4;
    /// 130 (128 + SIGINT, as shells report it): interrupted by Ctrl-C or SIGTERM; what was
    /// measured so far is in the results file, marked incomplete.
    pub const INTERRUPTED: u8 = 130;
}

/// Errors of this crate's process set-up ([`ensure_open_files`], [`runtime`]). Each displays as
/// one line; `Failure::from` gives [`Error::OpenFiles`] exit code 2 (the user can choose smaller
/// levels) and the others exit code 1.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The system will not let this process open as many files (sockets) as the run needs; the
    /// message says how to raise the limit.
    #[error("this run needs about {needed} open files (one socket per concurrent request) but the system allows {allowed}; raise the limit (e.g. `ulimit -n {needed}`) or use smaller levels")]
    OpenFiles {
        /// The open files the run needs (sockets included).
        needed: u64,
        /// The most this process may open: the soft limit after trying to raise it.
        allowed: u64,
    },
    /// The open-files limit could not be read (`getrlimit` failed).
    #[error("cannot read the open-files limit")]
    Rlimit,
    /// The async runtime could not be started (the operating system's error).
    #[error("cannot start the runtime: {0}")]
    Runtime(std::io::Error),
}

/// Parses the command line. A later occurrence of a flag overrides an earlier one (as argparse
/// does), and a value may start with `-` when it is a number (so that a negative number is
/// refused by the flag's value parser, with its range, rather than read as an unknown flag).
///
/// `Ok` holds the parsed flags. `Err` holds the exit code for `main` to return, after this
/// function has printed what there was to print: `--help` and `--version` print and give
/// success (0); a mistake prints one line on stderr, `NAME: error: WHAT (see --help)` with clap's
/// "a similar argument exists" tip kept, and gives [`exit::USAGE`] (as does a missing
/// subcommand, after printing the help). `NAME --generate KIND` writes a shell completion script
/// or the man page generated from the same flags (see [`docs`]) and gives success without
/// running. Nothing here calls `std::process::exit`.
pub fn parse<T: clap::Parser>(name: &str) -> Result<T, ExitCode> {
    parse_from(name, std::env::args_os())
}

/// [`parse`] over given arguments (the first is the program name), with the same guarantees;
/// `name` is the program's name in error lines. For tests, and for binaries that adjust their
/// arguments first.
pub fn parse_from<T: clap::Parser>(
    name: &str,
    args: impl IntoIterator<Item = std::ffi::OsString>,
) -> Result<T, ExitCode> {
    let args: Vec<std::ffi::OsString> = args.into_iter().collect();
    let cmd = command::<T>();
    if docs::requested(&args) {
        return Err(docs::run(name, cmd, args));
    }
    match cmd.try_get_matches_from(args) {
        Ok(m) => T::from_arg_matches(&m).map_err(|e| usage_error(name, &e)),
        Err(e) => Err(usage_error(name, &e)),
    }
}

/// The command `T` parses with, as [`parse`] configures it; the completions and the man page are
/// generated from this same value.
fn command<T: clap::Parser>() -> clap::Command {
    T::command()
        .args_override_self(true)
        .mut_args(negative_numbers)
}

/// Lets a flag that takes a value take a negative number (`--seed -1`), so that the value parser,
/// not clap, refuses it in the flag's own words. Only such flags: clap (in debug builds) asserts
/// that a switch never allows one.
fn negative_numbers(a: clap::Arg) -> clap::Arg {
    if a.get_action().takes_values() {
        a.allow_negative_numbers(true)
    } else {
        a
    }
}

fn usage_error(name: &str, e: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                ExitCode::from(exit::USAGE)
            } else {
                ExitCode::SUCCESS
            }
        }
        _ => {
            eprintln!("{name}: error: {} (see --help)", one_line(&e.to_string()));
            ExitCode::from(exit::USAGE)
        }
    }
}

/// clap's message on one line: the error and its tips (such as "a similar argument exists:
/// '--batch_sizes'"), without the usage block.
fn one_line(text: &str) -> String {
    let mut parts: Vec<String> = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with("Usage:") || line.starts_with("For more information") {
            break;
        }
        if line.is_empty() {
            continue;
        }
        match line.strip_prefix("tip: ") {
            Some(tip) => parts.push(format!("({tip})")),
            None => parts.push(line.strip_prefix("error: ").unwrap_or(line).to_string()),
        }
    }
    parts.join(" ")
}

/// An error that ends a program, with the exit code it calls for, decided where it arose (from
/// a typed error, never by reading the message). [`fail_with`] prints it.
///
/// ```
/// use tokenomics_cli::{exit, Failure};
///
/// let f = Failure::usage("--model is required");
/// assert_eq!((f.code, f.message.as_str()), (exit::USAGE, "--model is required"));
/// ```
#[derive(Debug)]
pub struct Failure {
    /// The exit code, one of [`exit`]'s: [`exit::USAGE`] or [`exit::ERROR`] from this type's
    /// constructors.
    pub code: u8,
    /// What went wrong, in one line and without the `NAME: error:` prefix (printing adds it).
    pub message: String,
}

impl Failure {
    /// Bad input: [`exit::USAGE`].
    pub fn usage(message: impl std::fmt::Display) -> Self {
        Self {
            code: exit::USAGE,
            message: message.to_string(),
        }
    }
    /// Anything else that stops the program: [`exit::ERROR`].
    pub fn error(message: impl std::fmt::Display) -> Self {
        Self {
            code: exit::ERROR,
            message: message.to_string(),
        }
    }
    /// [`Failure::usage`] when the error is the user's input (a library's typed error says so),
    /// else [`Failure::error`].
    pub fn classify(bad_input: bool, message: impl std::fmt::Display) -> Self {
        if bad_input {
            Self::usage(message)
        } else {
            Self::error(message)
        }
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        match e {
            Error::OpenFiles { .. } => Failure::usage(e),
            Error::Rlimit | Error::Runtime(_) => Failure::error(e),
        }
    }
}

/// Prints `{name}: error: {message}` as one line on stderr and returns `code` as an
/// [`ExitCode`] for `main` to return (nothing here exits the process). The message is printed as
/// given: it is the caller's to keep it on one line, as this crate's own messages are.
pub fn fail(name: &str, message: impl std::fmt::Display, code: u8) -> ExitCode {
    eprintln!("{name}: error: {message}");
    ExitCode::from(code)
}

/// Prints a [`Failure`] as [`fail`] does and returns its exit code.
pub fn fail_with(name: &str, failure: Failure) -> ExitCode {
    fail(name, failure.message, failure.code)
}

/// Makes sure this process may keep `needed` files open (sockets included), raising the soft
/// limit — and the hard one, where the OS allows — when it is lower. Returns the limit in force,
/// at least `needed`; [`Error::OpenFiles`] (a usage error: smaller levels need fewer) when even
/// the hard limit is lower, [`Error::Rlimit`] when the limit cannot be read.
#[cfg(unix)]
#[allow(clippy::unnecessary_cast)] // rlim_t is u64 here, but not on every Unix
pub fn ensure_open_files(needed: u64) -> Result<u64, Error> {
    // SAFETY: getrlimit/setrlimit only read and write the struct passed to them.
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(Error::Rlimit);
    }
    let current = lim.rlim_cur as u64;
    if current >= needed {
        return Ok(current);
    }
    let mut want = libc::rlimit {
        rlim_cur: needed as libc::rlim_t,
        rlim_max: lim.rlim_max.max(needed as libc::rlim_t),
    };
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &want) } == 0 {
        return Ok(needed);
    }
    // Not allowed to raise the hard limit: go as high as it is.
    want.rlim_cur = lim.rlim_max;
    want.rlim_max = lim.rlim_max;
    let got = if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &want) } == 0 {
        lim.rlim_max as u64
    } else {
        current
    };
    if got >= needed {
        Ok(got)
    } else {
        Err(Error::OpenFiles {
            needed,
            allowed: got,
        })
    }
}

/// On systems without rlimits there is nothing to raise: returns `needed`.
#[cfg(not(unix))]
pub fn ensure_open_files(needed: u64) -> Result<u64, Error> {
    Ok(needed)
}

/// Half the CPUs (at least one): the default number of client worker threads, leaving the rest
/// to the kernel's network stack (and, with `--simulate`, to the simulator).
pub fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1))
}

/// A multi-threaded tokio runtime with `workers` worker threads (at least one), I/O and timers
/// enabled; `on_thread_start` runs on each of them (the benchmarks use it to ask the kernel for
/// timely wake-ups). [`Error::Runtime`] when the operating system refuses the threads.
pub fn runtime(
    workers: usize,
    on_thread_start: Option<fn()>,
) -> Result<tokio::runtime::Runtime, Error> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.worker_threads(workers.max(1)).enable_all();
    if let Some(f) = on_thread_start {
        builder.on_thread_start(f);
    }
    builder.build().map_err(Error::Runtime)
}

/// Runs `work` to completion as a task on `runtime`'s worker threads and returns its output.
///
/// `Runtime::block_on` would poll `work` on the calling thread instead, beside the workers:
/// every request that finishes then wakes that thread to hand it its record (a futex wake and two
/// context switches per request: 4% of the client's CPU samples in a closed loop of short
/// requests). As a task, the loop that collects records runs on the workers that finish the
/// requests. A panic in `work` is resumed on the calling thread.
pub fn block_on_worker<F>(runtime: &tokio::runtime::Runtime, work: F) -> F::Output
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    match runtime.block_on(runtime.spawn(work)) {
        Ok(out) => out,
        Err(e) => match e.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            // The runtime is only shut down after this returns: a task is not cancelled here.
            Err(e) => panic!("the benchmark task ended without finishing: {e}"),
        },
    }
}

/// The end of a benchmark run: prints where the results are and why the exit code is what it is,
/// and returns that code. In order of precedence: `interrupted` gives [`exit::INTERRUPTED`] (a
/// line on stderr); no request succeeded and at least one failed gives [`exit::ALL_FAILED`];
/// some failed gives [`exit::SOME_FAILED`] (each with a line on stdout, beside the errors by
/// kind); otherwise success, also when no request was sent. `succeeded` and `failed` count
/// measured requests.
pub fn finish(
    name: &str,
    results_file: &std::path::Path,
    succeeded: u64,
    failed: u64,
    interrupted: bool,
) -> ExitCode {
    out!("\nResults saved to {}", results_file.display());
    if interrupted {
        eprintln!("{name}: interrupted; the results measured so far are saved, marked incomplete");
        ExitCode::from(exit::INTERRUPTED)
    } else if succeeded == 0 && failed > 0 {
        // On stdout, where the errors by kind it points to were printed.
        out!("{name}: every request failed; see the errors above");
        ExitCode::from(exit::ALL_FAILED)
    } else if failed > 0 {
        out!("{name}: {failed} of {} requests failed", succeeded + failed);
        ExitCode::from(exit::SOME_FAILED)
    } else {
        ExitCode::SUCCESS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clap_errors_keep_their_tips_on_one_line() {
        let text = "error: unexpected argument '--batch_size' found\n\n  tip: a similar argument exists: '--batch_sizes'\n\nUsage: oai-bench --batch_sizes <B>\n\nFor more information, try '--help'.\n";
        assert_eq!(
            one_line(text),
            "unexpected argument '--batch_size' found (a similar argument exists: '--batch_sizes')"
        );
        let text = "error: the following required arguments were not provided:\n  --model <MODEL>\n\nUsage: x\n";
        assert_eq!(
            one_line(text),
            "the following required arguments were not provided: --model <MODEL>"
        );
    }

    #[derive(clap::Parser, Debug)]
    struct Demo {
        #[arg(long, value_parser = values::positive_number)]
        rate: Option<f64>,
        #[arg(long)]
        name: Option<String>,
        /// A switch: in a debug build, clap asserts that no switch allows negative numbers.
        #[arg(long)]
        verbose: bool,
    }

    #[test]
    fn negative_numbers_reach_the_value_parser() {
        let args = ["demo", "--rate", "-5"].map(std::ffi::OsString::from);
        let cmd = <Demo as clap::CommandFactory>::command().mut_args(negative_numbers);
        let err = cmd.try_get_matches_from(args).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation);
        assert!(err.to_string().contains("-5"), "{err}");
        // A value that is not a number still cannot be a flag.
        let args = ["demo", "--name", "--rate"].map(std::ffi::OsString::from);
        let cmd = <Demo as clap::CommandFactory>::command().mut_args(negative_numbers);
        assert!(cmd.try_get_matches_from(args).is_err());
        let ok: Demo = parse_from(
            "demo",
            ["demo", "--rate", "2.5", "--rate", "3", "--verbose"].map(std::ffi::OsString::from),
        )
        .unwrap();
        assert_eq!(ok.rate, Some(3.0), "the last occurrence wins");
        assert!(ok.verbose);
    }
}
