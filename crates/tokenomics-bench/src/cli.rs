//! What every Tokenomics binary shares on the command line: exit codes, and argument parsing that
//! reports a mistake in one line.

use std::process::ExitCode;

/// Exit codes, the same for every binary (and documented in the README).
pub mod exit {
    /// Everything succeeded.
    pub const SUCCESS: u8 = 0;
    /// An error stopped the program (results written so far are kept).
    pub const ERROR: u8 = 1;
    /// Bad usage: a flag or value was refused before any request was sent.
    pub const USAGE: u8 = 2;
    /// The benchmark finished, but some requests failed.
    pub const SOME_FAILED: u8 = 3;
    /// The benchmark finished, and every request failed.
    pub const ALL_FAILED: u8 = 4;
    /// Interrupted (Ctrl-C or SIGTERM); partial results were written.
    pub const INTERRUPTED: u8 = 130;
}

/// Parses the command line. A later occurrence of a flag overrides an earlier one (as argparse
/// does). `--help` and `--version` print and exit 0; a mistake prints one line naming the binary
/// and exits [`exit::USAGE`].
pub fn parse<T: clap::Parser>(name: &str) -> Result<T, ExitCode> {
    let cmd = T::command().args_override_self(true);
    match cmd.try_get_matches() {
        Ok(m) => T::from_arg_matches(&m).map_err(|e| usage_error(name, &e)),
        Err(e) => Err(usage_error(name, &e)),
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
            // clap's message, without its usage block and tips, on one line.
            let text = e.to_string();
            let message: Vec<&str> = text
                .lines()
                .take_while(|l| !l.starts_with("Usage:") && !l.trim_start().starts_with("tip:"))
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect();
            let message = message.join(" ");
            let message = message.strip_prefix("error: ").unwrap_or(&message);
            eprintln!("{name}: error: {message} (see --help)");
            ExitCode::from(exit::USAGE)
        }
    }
}

/// Prints `{name}: error: {message}` and returns `code`.
pub fn fail(name: &str, message: impl std::fmt::Display, code: u8) -> ExitCode {
    eprintln!("{name}: error: {message}");
    ExitCode::from(code)
}

/// Makes sure this process may keep `needed` files open (sockets included), raising the soft
/// limit — and the hard one, where the OS allows — when it is lower. Returns the limit in force,
/// or a one-line explanation of what to do when the OS refuses.
#[cfg(unix)]
#[allow(clippy::unnecessary_cast)] // rlim_t is u64 here, but not on every Unix
pub fn ensure_open_files(needed: u64) -> Result<u64, String> {
    // SAFETY: getrlimit/setrlimit only read and write the struct passed to them.
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err("cannot read the open-files limit".into());
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
        Err(format!(
            "this run needs about {needed} open files (one socket per concurrent request) but the system allows {got}; raise the limit (e.g. `ulimit -n {needed}`) or use smaller batch sizes"
        ))
    }
}

/// On systems without rlimits there is nothing to raise.
#[cfg(not(unix))]
pub fn ensure_open_files(needed: u64) -> Result<u64, String> {
    Ok(needed)
}
