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

/// An error that ends a program, with the exit code it calls for, decided where it arose.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
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

/// The flags that say which server to measure and how to talk to it, shared by `oai-bench` and
/// `embed-bench` (flattened into each one's arguments).
#[derive(Debug, Clone, clap::Args)]
pub struct ServerArgs {
    /// Base URL of the OpenAI-compatible API; routes are appended to it.
    #[arg(
        long = "api_base",
        visible_alias = "api-base",
        default_value = "http://localhost:8000/v1"
    )]
    pub api_base: String,
    /// Per-request timeout in seconds, from send to the last byte.
    #[arg(long, default_value_t = 600.0)]
    pub timeout: f64,
    /// Fail a request whose response goes silent for this many seconds (a stalled stream) [default: no limit].
    #[arg(long = "idle_timeout", visible_alias = "idle-timeout")]
    pub idle_timeout: Option<f64>,
    /// API key sent as "Authorization: Bearer"; read from OPENAI_API_KEY when not given.
    #[arg(
        long = "api_key",
        visible_alias = "api-key",
        env = "OPENAI_API_KEY",
        hide_env_values = true
    )]
    pub api_key: Option<String>,
    /// Benchmark a built-in simulated server instead (a preset such as h100-llama-3.1-8b; see `oai-sim --list`).
    #[arg(long)]
    pub simulate: Option<String>,
    /// With --simulate: model seconds per real second (2 runs the simulation twice as fast).
    #[arg(
        long = "sim_time_scale",
        visible_alias = "sim-time-scale",
        default_value_t = 1.0
    )]
    pub sim_time_scale: f64,
}

/// The server a benchmark talks to, resolved from [`ServerArgs`].
pub struct Target {
    pub api_base: String,
    /// The model id to send (with `--simulate`, the one the simulator serves).
    pub model: String,
    pub client: tokenomics_client::Client,
    /// Metadata to record (`simulated` with `--simulate`).
    pub metadata: serde_json::Map<String, serde_json::Value>,
    /// A description naming the preset, for runs against the simulator.
    pub simulated_description: Option<String>,
    /// Keeps the in-process simulator alive.
    _simulator: Option<tokenomics_sim::Server>,
}

impl ServerArgs {
    /// Checks the values that need no server; a one-line message when one is refused.
    pub fn validate(&self) -> Result<(), String> {
        let positive = |x: f64| x.is_finite() && x > 0.0;
        if let Some(idle) = self.idle_timeout.filter(|i| !positive(*i)) {
            return Err(format!(
                "--idle_timeout {idle} must be a positive number of seconds"
            ));
        }
        if !positive(self.timeout) {
            return Err(format!(
                "--timeout {} must be a positive number of seconds",
                self.timeout
            ));
        }
        if !positive(self.sim_time_scale) {
            return Err(format!(
                "--sim_time_scale {} must be a positive number",
                self.sim_time_scale
            ));
        }
        Ok(())
    }

    /// Sockets a run at `concurrency` opens: one per request, twice that when the simulator
    /// runs in this process.
    pub fn sockets(&self, concurrency: u64) -> u64 {
        concurrency * if self.simulate.is_some() { 2 } else { 1 }
    }

    /// Starts the simulator when asked (`--simulate`), and builds the client. `model` is the
    /// user's `--model`; `seed` seeds the simulator's output lengths; `what` names the workload
    /// in the default description.
    pub async fn connect(
        &self,
        model: Option<&str>,
        seed: u64,
        what: &str,
    ) -> Result<Target, Failure> {
        let mut metadata = serde_json::Map::new();
        let (api_base, model, simulator, simulated_description) = match (&self.simulate, model) {
            (Some(preset), model) => {
                let (server, served) =
                    tokenomics_sim::start_local(preset, model, self.sim_time_scale, seed)
                        .await
                        .map_err(|e| match e {
                            // The preset or a setting was refused: bad input.
                            tokenomics_sim::Error::UnknownPreset(..)
                            | tokenomics_sim::Error::Invalid(_) => Failure::usage(e),
                            tokenomics_sim::Error::Bind { .. } => Failure::error(e),
                        })?;
                let api_base = server.api_base();
                metadata.insert(
                    "simulated".into(),
                    serde_json::json!({"preset": preset, "time_scale": self.sim_time_scale}),
                );
                println!("Simulated server: preset {preset}, model {served:?}, at {api_base}");
                let description = format!("Simulated: oai-sim preset {preset}, {what}");
                (api_base, served, Some(server), Some(description))
            }
            (None, Some(model)) => (self.api_base.clone(), model.to_string(), None, None),
            (None, None) => return Err(Failure::usage("--model is required")),
        };
        let mut cfg = tokenomics_client::ClientConfig::new(&api_base);
        cfg.api_key = self.api_key.clone();
        cfg.timeout = std::time::Duration::from_secs_f64(self.timeout);
        cfg.idle_timeout = self.idle_timeout.map(std::time::Duration::from_secs_f64);
        // The client refuses only its configuration (URL, key): bad input.
        let client = tokenomics_client::Client::new(cfg).map_err(Failure::usage)?;
        Ok(Target {
            api_base,
            model,
            client,
            metadata,
            simulated_description,
            _simulator: simulator,
        })
    }
}

/// The end of a benchmark run: prints where the results are and why the exit code is what it is
/// ([`exit::INTERRUPTED`], [`exit::ALL_FAILED`], [`exit::SOME_FAILED`] or success).
pub fn finish(
    name: &str,
    results_file: &std::path::Path,
    succeeded: u64,
    failed: u64,
    interrupted: bool,
) -> ExitCode {
    println!("\nResults saved to {}", results_file.display());
    if interrupted {
        eprintln!("{name}: interrupted; the results measured so far are saved, marked incomplete");
        ExitCode::from(exit::INTERRUPTED)
    } else if succeeded == 0 && failed > 0 {
        eprintln!("{name}: every request failed; see the errors above");
        ExitCode::from(exit::ALL_FAILED)
    } else if failed > 0 {
        eprintln!("{name}: {failed} of {} requests failed", succeeded + failed);
        ExitCode::from(exit::SOME_FAILED)
    } else {
        ExitCode::SUCCESS
    }
}
