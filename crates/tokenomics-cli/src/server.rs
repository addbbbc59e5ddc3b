//! The flags that say which server to measure, and the `--simulate` start-up.

use std::time::Duration;

use tokenomics_stats::Simulated;

use crate::{values, Failure};

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
    /// Per-request timeout in seconds, from send to the last byte (at most a year).
    #[arg(long, default_value = "600", value_parser = values::positive_seconds)]
    pub timeout: Duration,
    /// Fail a request whose response goes silent for this many seconds (a stalled stream) [default: no limit].
    #[arg(long = "idle_timeout", visible_alias = "idle-timeout", value_parser = values::positive_seconds)]
    pub idle_timeout: Option<Duration>,
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
        default_value = "1",
        value_parser = values::time_scale
    )]
    pub sim_time_scale: f64,
    /// Skip the check before the run (the server answers, lists the model, accepts a one-token request).
    #[arg(long = "no_preflight", visible_alias = "no-preflight")]
    pub no_preflight: bool,
    /// Local addresses to open connections from, in turn: a list or IPv4 ranges, e.g. 127.0.0.2-127.0.0.9 (each address has its own ephemeral ports, so more connections fit) [default: the kernel's choice].
    #[arg(
        long = "source_ips",
        visible_alias = "source-ips",
        value_parser = values::source_ips
    )]
    pub source_ips: Option<values::SourceIps>,
}

/// The server a benchmark talks to, resolved from [`ServerArgs`].
pub struct Target {
    pub api_base: String,
    /// The model id to send (with `--simulate`, the one the simulator serves).
    pub model: String,
    pub client: tokenomics_client::Client,
    /// With `--simulate`: the preset and time scale, for the metadata.
    pub simulated: Option<Simulated>,
    /// A description naming the preset, for runs against the simulator.
    pub simulated_description: Option<String>,
    /// Keeps the in-process simulator alive.
    _simulator: Option<tokenomics_sim::Server>,
}

impl ServerArgs {
    /// Sockets a run at `concurrency` opens: one per request, twice that when the simulator
    /// runs in this process.
    pub fn sockets(&self, concurrency: u64) -> u64 {
        concurrency.saturating_mul(if self.simulate.is_some() { 2 } else { 1 })
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
        let (api_base, model, simulator, simulated) = match (&self.simulate, model) {
            (Some(preset), model) => {
                let (server, served) =
                    tokenomics_sim::start_local(preset, model, self.sim_time_scale, seed)
                        .await
                        .map_err(|e| match e {
                            // The preset or a setting was refused: bad input.
                            tokenomics_sim::Error::UnknownPreset(..)
                            | tokenomics_sim::Error::Invalid(_) => Failure::usage(e),
                            _ => Failure::error(e),
                        })?;
                let api_base = server.api_base();
                crate::out!("Simulated server: preset {preset}, model {served:?}, at {api_base}");
                let simulated = Simulated {
                    preset: preset.clone(),
                    time_scale: self.sim_time_scale,
                };
                (api_base, served, Some(server), Some(simulated))
            }
            (None, Some(model)) => (self.api_base.clone(), model.to_string(), None, None),
            (None, None) => return Err(Failure::usage("--model is required")),
        };
        let mut cfg = tokenomics_client::ClientConfig::new(&api_base);
        cfg.api_key = self.api_key.clone();
        cfg.timeout = self.timeout;
        cfg.idle_timeout = self.idle_timeout;
        // An address not on this host is found at the first connection (the preflight's), whose
        // error names it.
        cfg.local_addrs = self
            .source_ips
            .as_ref()
            .map(|s| s.0.clone())
            .unwrap_or_default();
        // The client refuses only its configuration (URL, key): bad input.
        let client = tokenomics_client::Client::new(cfg).map_err(Failure::usage)?;
        Ok(Target {
            api_base,
            model,
            client,
            simulated_description: simulated
                .as_ref()
                .map(|s| format!("Simulated: oai-sim preset {}, {what}", s.preset)),
            simulated,
            _simulator: simulator,
        })
    }
}

impl Target {
    /// The description to record: the user's, or (when empty and the run is simulated) one
    /// naming the preset.
    pub fn description(&self, given: &str) -> String {
        match (&self.simulated_description, given.is_empty()) {
            (Some(d), true) => d.clone(),
            _ => given.to_string(),
        }
    }
}
