//! A chat benchmark in a few lines: the library entry point for CI harnesses and other programs.
//!
//! [`ChatExperiment::builder`] takes what `oai-bench` takes on its command line — the server, the
//! model, the prompts, the load shape (bursts, a closed loop, an open loop) and its limits — and
//! builds the same [`ChatConfig`] through the same checks ([`plan::LoadFlags::plan`],
//! [`plan::check_requests`]), so a setting the command line refuses is refused here too, with the
//! same message. [`ChatExperiment::run`] then does what the binary does: the check before the run
//! ([`preflight::check`], recorded in the metadata), then [`ChatBenchmark::run`], and hands back
//! the typed [`ChatDocument`] — written to [`ChatExperimentBuilder::results_file`] after every
//! level when one is given, atomically, as the binary writes it.
//!
//! Nothing here prints, and nothing starts a server: point the builder at a running one, or at a
//! simulator started in-process (`tokenomics_sim::start_local`, from the `tokenomics-sim`
//! crate). Progress goes to an [`Observer`] ([`ChatExperiment::run_with`]) when one is wanted.
//!
//! # Examples
//!
//! A closed loop of two requests in flight against the in-process simulator, twenty measured
//! requests, streamed so that latencies are measured too:
//!
//! ```
//! use tokenomics_bench::ChatExperiment;
//!
//! # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // A simulated server on a free loopback port: 20 ms to the first token, 2 ms per token.
//! let config = tokenomics_sim::SimConfig::preset("instant")?.with_fixed_schedule(0.020, 0.002);
//! let (server, sim) =
//!     tokenomics_sim::Simulator::start(config, ([127, 0, 0, 1], 0).into()).await?;
//!
//! let doc = ChatExperiment::builder(server.api_base(), sim.served_model())
//!     .closed_loop([2])
//!     .num_requests(20)
//!     .max_tokens(16)
//!     .stream(true)
//!     .build()?
//!     .run()
//!     .await?;
//!
//! // One level, keyed by its concurrency, with every request answered.
//! let level = &doc.results["2"];
//! assert_eq!(level.requests.as_ref().map(|r| r.failed), Some(0));
//! let ttft = &level.latency.as_ref().expect("a streamed level has latencies").ttft;
//! assert!(ttft.p50 >= 0.020, "TTFT p50 {} s", ttft.p50);
//! assert!(level.throughput.batch_tokens_per_second.mean > 0.0);
//! server.shutdown().await;
//! # Ok(())
//! # }
//! ```

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{json, Map, Value};
use tokenomics_client::{Client, ClientConfig, Endpoint};
use tokenomics_datasets::{Prompt, PromptSource};
use tokenomics_stats::ChatDocument;

use crate::plan::{self, LoadFlags};
use crate::preflight::{self, Probe};
use crate::{ChatBenchmark, ChatConfig, Error, Observer, Quiet, Result, Shutdown};

/// A chat benchmark ready to run: its configuration, the client that sends its requests and the
/// prompts they carry. Made by [`ChatExperiment::builder`].
pub struct ChatExperiment {
    config: ChatConfig,
    client: Client,
    prompts: PromptSource,
    preflight: bool,
    shutdown: Option<Shutdown>,
}

/// Collects the settings of a [`ChatExperiment`]; every setting has the command line's default.
///
/// Load shape: [`bursts`](Self::bursts) (the default: batch sizes 1, 2, 4 and 8, three runs
/// each), [`closed_loop`](Self::closed_loop) or [`open_loop`](Self::open_loop); for anything
/// else the command line can ask for (ramps, gamma arrivals, sweeps, SLO searches), set the flags
/// whole with [`load`](Self::load). Nothing is checked until [`build`](Self::build).
#[derive(Debug, Clone)]
pub struct ChatExperimentBuilder {
    api_base: String,
    model: String,
    load: LoadFlags,
    prompts: Option<PromptSource>,
    dataset_key: Option<String>,
    max_tokens: u64,
    stream: bool,
    temperature: f64,
    seed: u64,
    warmup_runs: u64,
    endpoint: Endpoint,
    timeout: Duration,
    api_key: Option<String>,
    results_file: Option<PathBuf>,
    requests_file: Option<PathBuf>,
    description: String,
    extra_body: Map<String, Value>,
    preflight: bool,
}

impl ChatExperiment {
    /// Starts describing a benchmark of `model` served at `api_base` (an OpenAI-compatible base
    /// URL such as `http://127.0.0.1:8000/v1`).
    pub fn builder(api_base: impl Into<String>, model: impl Into<String>) -> ChatExperimentBuilder {
        let defaults = ChatConfig::default();
        ChatExperimentBuilder {
            api_base: api_base.into(),
            model: model.into(),
            load: LoadFlags::default(),
            prompts: None,
            dataset_key: None,
            max_tokens: defaults.max_tokens,
            stream: defaults.stream,
            temperature: defaults.temperature,
            seed: defaults.seed,
            warmup_runs: defaults.warmup_runs,
            endpoint: defaults.endpoint,
            timeout: Duration::from_secs(600),
            api_key: None,
            results_file: None,
            requests_file: None,
            description: String::new(),
            extra_body: Map::new(),
            preflight: true,
        }
    }

    /// The configuration the benchmark will run, as `oai-bench` would have built it.
    pub fn config(&self) -> &ChatConfig {
        &self.config
    }

    /// The configuration, for a setting the builder does not offer (goodput objectives, a cost
    /// basis, a timeline interval, …). What is changed here is not checked again.
    pub fn config_mut(&mut self) -> &mut ChatConfig {
        &mut self.config
    }

    /// Stops the run when `shutdown` says so ([`Shutdown::on_signals`] for Ctrl-C): the levels
    /// measured so far are kept, the one in progress is marked incomplete.
    pub fn with_shutdown(mut self, shutdown: Shutdown) -> Self {
        self.shutdown = Some(shutdown);
        self
    }

    /// Runs the benchmark quietly and returns its result document. Must be called inside a
    /// multi-threaded tokio runtime (open loops schedule from a thread of their own).
    pub async fn run(self) -> Result<ChatDocument> {
        self.run_with(&mut Quiet).await
    }

    /// Runs the benchmark, reporting progress to `observer`, and returns its result document.
    ///
    /// First the check before the run (unless turned off with
    /// [`ChatExperimentBuilder::preflight`]): the server answers, serves the model and accepts
    /// one request of this benchmark's kind, or the run stops with [`Error::Preflight`] before
    /// any load is sent. A request that fails during the run never stops it: it is counted in
    /// its level's `requests` block, by kind.
    pub async fn run_with(mut self, observer: &mut dyn Observer) -> Result<ChatDocument> {
        if let Some(workers) = crate::client_load::runtime_workers() {
            // Recorded as the binary records its worker threads.
            self.config.n_cores = workers as u64;
        }
        if self.preflight {
            let probe = Probe::Completion {
                endpoint: self.config.endpoint,
                stream: self.config.stream,
                temperature: self.config.temperature,
                extra_body: self.config.extra_body.clone(),
            };
            self.config.preflight =
                Some(preflight::check(&self.client, &self.config.model, &probe).await?);
        }
        let mut bench = ChatBenchmark::new(self.config, self.client, self.prompts);
        if let Some(shutdown) = self.shutdown {
            bench.set_shutdown(shutdown);
        }
        bench.run(observer).await
    }
}

impl ChatExperimentBuilder {
    /// Bursts: for each batch size B, `num_runs` runs (default 3) that each send B requests at
    /// once and wait for all of them.
    pub fn bursts(mut self, batch_sizes: impl IntoIterator<Item = u64>) -> Self {
        self.load.batch_sizes = Some(batch_sizes.into_iter().collect());
        self
    }

    /// Closed loops: one level per concurrency C, keeping C requests in flight (a request
    /// starts the moment one ends). Stops after [`num_requests`](Self::num_requests) and/or
    /// [`duration`](Self::duration) (default: 10 requests per slot, at least 20).
    pub fn closed_loop(mut self, concurrencies: impl IntoIterator<Item = u64>) -> Self {
        self.load.max_concurrency = Some(concurrencies.into_iter().collect());
        self
    }

    /// Open loops: one level per rate, requests per second, sent on a Poisson schedule fixed by
    /// the seed whatever the server does. Limits as for [`closed_loop`](Self::closed_loop).
    pub fn open_loop(mut self, rates: impl IntoIterator<Item = f64>) -> Self {
        self.load.request_rate = Some(rates.into_iter().collect());
        self
    }

    /// Every load flag at once, as the command line gives them (ramps, arrival processes, a cap
    /// on an open loop's requests in flight, sweeps, SLO searches, snapshots). Replaces what
    /// [`bursts`](Self::bursts), [`closed_loop`](Self::closed_loop),
    /// [`open_loop`](Self::open_loop) and the limits set before.
    pub fn load(mut self, flags: LoadFlags) -> Self {
        self.load = flags;
        self
    }

    /// A sustained level stops after this many measured requests (`--num_requests`).
    pub fn num_requests(mut self, n: u64) -> Self {
        self.load.num_requests = Some(n);
        self
    }

    /// A sustained level sends no request after this much measured time (`--duration`).
    pub fn duration(mut self, duration: Duration) -> Self {
        self.load.duration = Some(duration);
        self
    }

    /// A sustained level first runs this long at its load, unmeasured (`--warmup_seconds`).
    pub fn warmup(mut self, warmup: Duration) -> Self {
        self.load.warmup = Some(warmup);
        self
    }

    /// Measured runs per level (`--num_runs`; default 3 for bursts, 1 for sustained levels).
    pub fn num_runs(mut self, n: u64) -> Self {
        self.load.num_runs = Some(n);
        self
    }

    /// Unmeasured burst runs before each burst level (`--warmup_runs`, default 3).
    pub fn warmup_runs(mut self, n: u64) -> Self {
        self.warmup_runs = n;
        self
    }

    /// The most output tokens each request asks for (`--max_tokens`, default 100).
    pub fn max_tokens(mut self, n: u64) -> Self {
        self.max_tokens = n;
        self
    }

    /// Streamed responses (`--stream`): only they show time to first token and inter-token
    /// latency, so only a streamed level has a `latency` block.
    pub fn stream(mut self, on: bool) -> Self {
        self.stream = on;
        self
    }

    /// The sampling temperature sent (`--temperature`, default 0.5).
    pub fn temperature(mut self, t: f64) -> Self {
        self.temperature = t;
        self
    }

    /// The seed of the prompt draws and the arrival schedules (`--seed`, default 42).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// `/chat/completions` (the default) or `/completions`.
    pub fn endpoint(mut self, endpoint: Endpoint) -> Self {
        self.endpoint = endpoint;
        self
    }

    /// Where the prompts come from (default: `synthetic`, generated problem statements). See
    /// [`PromptSource::from_key`] for files and [`PromptSource::open`] for Hub datasets.
    pub fn prompts(mut self, prompts: PromptSource) -> Self {
        self.prompts = Some(prompts);
        self
    }

    /// These texts as the prompts, each sent as the user message; every run draws a seeded
    /// shuffle of them (repeated when a run needs more). Recorded as the dataset `inline`.
    pub fn prompt_texts<S: Into<String>>(mut self, texts: impl IntoIterator<Item = S>) -> Self {
        let rows: Vec<Prompt> = texts.into_iter().map(|t| Prompt::Text(t.into())).collect();
        self.prompts = Some(PromptSource::Rows {
            key: "inline".into(),
            source: json!({"kind": "inline", "rows": rows.len()}),
            rows,
        });
        self
    }

    /// The name the metadata gives the prompts (`dataset_key`; default: the source's key, or
    /// `synthetic` for generated prompts).
    pub fn dataset_key(mut self, key: impl Into<String>) -> Self {
        self.dataset_key = Some(key.into());
        self
    }

    /// The limit on each request, from send to its last byte (`--timeout`, default 600 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sent as `Authorization: Bearer KEY` (`--api_key`).
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(key.into());
        self
    }

    /// Writes the result document here after every level, atomically (`--results_file`).
    pub fn results_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.results_file = Some(path.into());
        self
    }

    /// Writes one JSON line per measured request here (`--requests_file`).
    pub fn requests_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.requests_file = Some(path.into());
        self
    }

    /// Free text recorded in the metadata (`--description`).
    pub fn description(mut self, text: impl Into<String>) -> Self {
        self.description = text.into();
        self
    }

    /// A field sent in every request's body besides the benchmark's own (`ignore_eos`, …).
    pub fn extra_body_field(mut self, name: impl Into<String>, value: Value) -> Self {
        self.extra_body.insert(name.into(), value);
        self
    }

    /// Whether to check the server before the run (default: yes, as `oai-bench` does unless
    /// `--no_preflight`).
    pub fn preflight(mut self, on: bool) -> Self {
        self.preflight = on;
        self
    }

    /// Checks the settings as `oai-bench` checks its flags and builds the experiment. Every
    /// refusal is an [`Error`] for which [`Error::is_bad_input`] holds: a load that does not go
    /// together, a blank model, an output file that cannot be written, a base URL the client
    /// cannot use, no prompts.
    pub fn build(self) -> Result<ChatExperiment> {
        let plan = self.load.plan()?;
        plan::check_requests(Some(&self.model), None, self.stream)?;
        plan::check_experiment(plan.adaptive.as_ref(), false, self.stream)?;
        plan::check_records(false, self.requests_file.is_some(), self.stream)?;
        for path in [&self.results_file, &self.requests_file]
            .into_iter()
            .flatten()
        {
            tokenomics_stats::check_writable(path)
                .map_err(|e| Error::Invalid(format!("cannot write {}: {e}", path.display())))?;
        }
        if !(self.temperature.is_finite() && self.temperature >= 0.0) {
            return Err(Error::Invalid(format!(
                "temperature {} is not a number of 0 or more",
                self.temperature
            )));
        }
        if self.timeout.is_zero() {
            return Err(Error::Invalid("the request timeout must be above 0".into()));
        }
        let prompts = match self.prompts {
            Some(PromptSource::Rows { rows, .. }) if rows.is_empty() => {
                return Err(Error::Invalid("no prompts given".into()))
            }
            Some(p) => p,
            None => PromptSource::from_key("synthetic")?,
        };
        let dataset_key = self.dataset_key.unwrap_or_else(|| match &prompts {
            PromptSource::Rows { key, .. } => key.clone(),
            _ => "synthetic".into(),
        });
        let mut client_config = ClientConfig::new(&self.api_base);
        client_config.timeout = self.timeout;
        client_config.api_key = self.api_key;
        let client = Client::new(client_config)?;
        let config = ChatConfig {
            model: self.model,
            dataset_key,
            api_base: self.api_base,
            batch_sizes: Vec::new(),
            num_runs: plan.num_runs,
            warmup_runs: self.warmup_runs,
            max_tokens: self.max_tokens,
            temperature: self.temperature,
            seed: self.seed,
            description: self.description,
            endpoint: self.endpoint,
            stream: self.stream,
            results_file: self.results_file,
            requests_file: self.requests_file,
            snapshot_every: plan.snapshot_every,
            timeout_seconds: self.timeout.as_secs_f64(),
            extra_body: self.extra_body,
            // An SLO search counts the requests that meet its thresholds, as the binary's does.
            goodput: plan.adaptive.as_ref().and_then(|a| a.per_request_slo()),
            levels: plan.levels,
            limits: plan.limits,
            adaptive: plan.adaptive,
            ..ChatConfig::default()
        };
        Ok(ChatExperiment {
            config,
            client,
            prompts,
            preflight: self.preflight,
            shutdown: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::Shape;

    #[test]
    fn the_load_shapes_become_the_binarys_levels() {
        let bursts = ChatExperiment::builder("http://127.0.0.1:9/v1", "m")
            .build()
            .unwrap();
        let shapes: Vec<Shape> = bursts.config().shapes();
        assert_eq!(
            shapes,
            [1, 2, 4, 8].map(|batch| Shape::Burst { batch }).to_vec()
        );
        assert_eq!(bursts.config().num_runs, 3);

        let closed = ChatExperiment::builder("http://127.0.0.1:9/v1", "m")
            .closed_loop([4, 16])
            .num_requests(50)
            .build()
            .unwrap();
        assert_eq!(
            closed.config().shapes(),
            vec![
                Shape::Closed { concurrency: 4 },
                Shape::Closed { concurrency: 16 }
            ]
        );
        assert_eq!(closed.config().limits.num_requests, Some(50));
        assert_eq!(closed.config().num_runs, 1);

        let open = ChatExperiment::builder("http://127.0.0.1:9/v1", "m")
            .open_loop([2.5])
            .duration(Duration::from_secs(3))
            .build()
            .unwrap();
        match open.config().shapes().as_slice() {
            [Shape::Open(o)] => assert_eq!(o.rate, 2.5),
            other => panic!("{other:?}"),
        }
        assert_eq!(open.config().limits.duration, Some(Duration::from_secs(3)));
    }

    #[test]
    fn what_the_command_line_refuses_is_refused_with_its_message() {
        let refused = |b: ChatExperimentBuilder| match b.build() {
            Err(e) => {
                assert!(e.is_bad_input(), "{e}");
                e.to_string()
            }
            Ok(_) => panic!("accepted"),
        };
        let base = || ChatExperiment::builder("http://127.0.0.1:9/v1", "m");
        assert!(refused(base().bursts([1]).closed_loop([2])).contains("--batch_sizes"));
        assert!(refused(base().bursts([1]).num_requests(5)).contains("--num_requests"));
        assert!(refused(base().closed_loop([2]).num_requests(0)).contains("at least 1"));
        assert!(refused(ChatExperiment::builder("http://127.0.0.1:9/v1", " ")).contains("--model"));
        assert!(refused(base().prompt_texts(Vec::<String>::new())).contains("no prompts"));
        assert!(refused(base().temperature(f64::NAN)).contains("temperature"));
        // The client refuses a base URL it cannot use.
        assert!(!refused(ChatExperiment::builder("ftp://example/v1", "m")).is_empty());
    }

    #[test]
    fn inline_prompts_are_recorded_as_such() {
        let e = ChatExperiment::builder("http://127.0.0.1:9/v1", "m")
            .prompt_texts(["one", "two"])
            .build()
            .unwrap();
        assert_eq!(e.config().dataset_key, "inline");
        let e = ChatExperiment::builder("http://127.0.0.1:9/v1", "m")
            .prompt_texts(["one"])
            .dataset_key("smoke")
            .build()
            .unwrap();
        assert_eq!(e.config().dataset_key, "smoke");
    }
}
