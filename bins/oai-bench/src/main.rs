//! `oai-bench`: the chat benchmark. Parses flags, calls `tokenomics-bench`, prints.

mod args;

use std::io::IsTerminal;
use std::process::ExitCode;

use serde_json::Map;
use tokenomics_bench::console::{self, ChatConsole, Outcome};
use tokenomics_bench::conversation::Conversations;
use tokenomics_bench::live::Live;
use tokenomics_bench::plan::{self, LoadPlan, TraceSpan};
use tokenomics_bench::preflight::Probe;
use tokenomics_bench::prompts::{Note, PromptFlags, TokenizeTarget};
use tokenomics_bench::report::table::{self, Csv, Exporter, Markdown};
use tokenomics_bench::server_metrics::{ScrapeConfig, ServerMetrics, Started};
use tokenomics_bench::shard::Shard;
use tokenomics_bench::trace::TraceReplay;
use tokenomics_bench::{sustained, ChatBenchmark, ChatConfig, Shutdown};
use tokenomics_cli::{self as cli, exit, Failure};
use tokenomics_datasets::exact::{TokenLength, TraceTexts};
use tokenomics_datasets::hub::HubConfig;
use tokenomics_datasets::trace::{Trace, TraceOptions};
use tokenomics_datasets::PromptSource;
use tokenomics_stats::PrefixWorkload;

use args::{Args, ProgressArg};

const NAME: &str = "oai-bench";

/// Tokens per hash id of the published Mooncake traces (`--trace_block_tokens`).
const DEFAULT_TRACE_BLOCK_TOKENS: u64 = 512;

/// vLLM's default KV-cache block size, tokens (`--prefix_block_tokens`).
const DEFAULT_PREFIX_BLOCK_TOKENS: u64 = 16;

fn main() -> ExitCode {
    let mut args: Args = match cli::parse(NAME) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let mut load = args.load();
    // The prediction's workload: the prompts' mean length when --input_tokens gives it (else
    // 1,000 tokens), and every request generating --max_tokens; in the simulator's time when it
    // is the one measured.
    let input = match args.input_tokens {
        Some(TokenLength::Fixed(n)) => n,
        Some(TokenLength::Uniform(lo, hi)) => lo / 2 + hi / 2,
        Some(TokenLength::Normal { mean, .. }) => mean.round() as u64,
        None => 1000,
    };
    let scale = if args.server.simulate.is_some() {
        args.server.sim_time_scale
    } else {
        1.0
    };
    if let (true, Some(preset)) = (args.sweep, &args.server.simulate) {
        // Theory beside the measurement: what the simulated preset's roofline predicts.
        load.experiment.predicted_saturation =
            cli::predicted_rate(preset, input, args.max_tokens, scale).ok();
    }
    if let Some(name) = &args.sweep_from_sim {
        match cli::predicted_rate(name, input, args.max_tokens, scale) {
            Ok(rate) => {
                // The start keeps to the keys' six decimals.
                load.experiment.predicted_start = Some(((rate * 1e3).round() / 1e3).max(1e-3));
            }
            Err(f) => return cli::fail_with(NAME, f),
        }
    }
    if args.prefix_block_tokens.is_some()
        && args.shared_prefix_tokens.is_none()
        && args.trace.is_none()
        && args.sessions.is_none()
        && args.session_rate.is_none()
    {
        return cli::fail(
            NAME,
            "--prefix_block_tokens is the cache block of an expected hit rate: give --shared_prefix_tokens, --trace or conversations (--sessions, --session_rate)",
            exit::USAGE,
        );
    }
    // A trace is read before the plan: its requests and span make the level.
    let trace = match args.trace.as_deref().map(|path| read_trace(&args, path)) {
        Some(Ok(t)) => Some(t),
        Some(Err(f)) => return cli::fail_with(NAME, f),
        None => None,
    };
    if let Some(t) = &trace {
        load.trace = Some(TraceSpan {
            requests: t.requests.len() as u64,
            seconds: t.span_seconds(),
        });
    }
    let conversation = match args.conversation() {
        Ok(c) => c,
        Err(e) => return cli::fail(NAME, e, exit::USAGE),
    };
    let checked = load.plan().and_then(|plan| {
        args.prompts().check()?;
        plan::check_requests(args.model.as_deref(), args.goodput.as_ref(), args.stream)?;
        plan::check_experiment(plan.adaptive.as_ref(), args.goodput.is_some(), args.stream)?;
        plan::check_records(args.token_times, args.requests_file.is_some(), args.stream)?;
        plan::check_aborts(args.cancel_rate.is_some(), load.sustained())?;
        plan::check_probes(args.probe_rate.is_some(), load.sustained())?;
        let shard = Shard::resolve(args.shard, args.results_dir.is_some(), |k| {
            std::env::var(k).ok()
        })?;
        ChatConfig {
            levels: plan.levels.clone(),
            limits: plan.limits,
            adaptive: plan.adaptive.clone(),
            shard,
            start_at: args.start_at,
            conversation,
            stages: args.stages.clone(),
            snapshot_every: plan.snapshot_every,
            aborts: args.cancel_rate.zip(args.cancel_after),
            probe_rate: args.probe_rate,
            ..ChatConfig::default()
        }
        .check_timetable()?;
        Ok((plan, shard))
    });
    let (plan, shard) = match checked {
        Ok(p) => p,
        Err(e) => return cli::fail(NAME, e, exit::USAGE),
    };
    if let (Some(dir), Some(shard)) = (&args.results_dir, shard) {
        // A shard's results and records (token times too, when streaming: the merge rebuilds
        // inter-token latencies from them) go to the results directory.
        if let Err(e) = std::fs::create_dir_all(dir) {
            return cli::fail(
                NAME,
                format!("--results_dir {}: {e}", dir.display()),
                exit::USAGE,
            );
        }
        let (results, records) = shard.paths(dir);
        args.results_file = results;
        args.requests_file = Some(records);
        args.token_times = args.stream;
    }
    for (flag, path) in args.outputs() {
        if let Err(e) = tokenomics_stats::check_writable(path) {
            return cli::fail(NAME, format!("{flag}: {e}"), exit::USAGE);
        }
    }
    // One socket per request in flight. An uncapped open loop has no known bound: it asks for a
    // generous limit and goes on with what it gets.
    let in_flight = plan.levels.iter().map(|s| s.max_in_flight());
    let uncapped = in_flight.clone().any(|m| m.is_none());
    let most = in_flight.map(|m| m.unwrap_or(65_536)).max().unwrap_or(1);
    if let Err(e) = cli::ensure_open_files(args.server.sockets(most).saturating_add(64)) {
        if !uncapped {
            return cli::fail_with(NAME, e.into());
        }
    }
    let workers = args.n_cores.map_or_else(cli::default_workers, usize::from);
    let runtime = match cli::runtime(workers, Some(sustained::keep_time)) {
        Ok(rt) => rt,
        Err(e) => return cli::fail_with(NAME, e.into()),
    };
    let results_file = args.results_file.clone();
    match cli::block_on_worker(
        &runtime,
        run(args, plan, shard, workers, trace, conversation),
    ) {
        Ok((outcome, interrupted)) => cli::finish(
            NAME,
            &results_file,
            outcome.succeeded,
            outcome.failed,
            interrupted,
        ),
        Err(f) => cli::fail_with(NAME, f),
    }
}

/// A library error as the exit code it calls for.
fn failure(e: tokenomics_bench::Error) -> Failure {
    Failure::classify(e.is_bad_input(), e)
}

/// Reads `--trace` with its options; a file that cannot be replayed is refused (bad input: exit
/// 2), rows it skipped are named in a warning.
fn read_trace(args: &Args, path: &std::path::Path) -> Result<Trace, Failure> {
    for (flag, given) in [
        ("--input_tokens", args.input_tokens.is_some()),
        ("--dataset_key", args.dataset_key.is_some()),
        (
            "--shared_prefix_tokens",
            args.shared_prefix_tokens.is_some(),
        ),
        ("--ignore_eos", args.ignore_eos),
    ] {
        if given {
            return Err(Failure::usage(format!(
                "--trace sets every prompt's length and output (ignore_eos, min_tokens): leave out {flag}"
            )));
        }
    }
    let options = trace_options(args);
    let trace = tokenomics_datasets::trace::load(path, &options)
        .map_err(|e| Failure::classify(e.is_bad_input(), e))?;
    if let Some(note) = trace.skipped_note() {
        eprintln!("{NAME}: warning: {note}");
    }
    cli::out!(
        "Trace {}: {} {} requests over {:.1} s{}",
        path.display(),
        trace.requests.len(),
        trace.format.name(),
        trace.span_seconds(),
        if options.time_scale == 1.0 {
            String::new()
        } else {
            format!(" (time scale {})", options.time_scale)
        }
    );
    Ok(trace)
}

fn trace_options(args: &Args) -> TraceOptions {
    TraceOptions {
        format: args.trace_format,
        time_scale: args.trace_time_scale,
        window: args.trace_window,
        max_context: args.trace_max_context,
    }
}

async fn run(
    args: Args,
    plan: LoadPlan,
    shard: Option<Shard>,
    workers: usize,
    trace: Option<Trace>,
    conversation: Option<Conversations>,
) -> Result<(Outcome, bool), Failure> {
    let target = args
        .server
        .connect(args.model.as_deref(), args.seed, "chat")
        .await?;
    let mut extra_body = Map::new();
    if args.ignore_eos {
        // Forces every output to max_tokens (vLLM and SGLang honour both).
        extra_body.insert("ignore_eos".into(), true.into());
        extra_body.insert("min_tokens".into(), args.max_tokens.into());
    }
    let probe = Probe::Completion {
        endpoint: args.endpoint.into(),
        stream: args.stream,
        temperature: args.temperature,
        extra_body: extra_body.clone(),
    };
    let preflight = console::preflight(
        args.server.no_preflight,
        &target.client,
        &target.model,
        &probe,
    )
    .await
    .map_err(failure)?;
    let server = TokenizeTarget {
        // With several endpoints, the first one's tokenizer (they serve the same model).
        api_base: target.client.config().api_base.clone(),
        api_key: args.server.api_key.clone(),
        model: target.model.clone(),
        tls: target.client.config().tls.clone(),
    };
    let mut prompt_flags = args.prompts();
    if trace.is_some() {
        // A trace's prompts are token-exact: the word costs of --input_tokens are measured.
        prompt_flags.input_tokens = Some(TokenLength::Fixed(1));
    }
    let prompts = prompt_flags
        .prepare(&server, target.simulated.is_some(), &HubConfig::from_env())
        .await
        .map_err(failure)?;
    if let Some(c) = &conversation {
        c.check(&prompts.source).map_err(failure)?;
    }
    for note in &prompts.notes {
        match note {
            Note::Info(m) => cli::out!("{m}"),
            Note::Warning(m) => eprintln!("{NAME}: warning: {m}"),
        }
    }
    let shared_prefix = match (
        args.shared_prefix_tokens,
        args.prefix_groups,
        args.input_tokens,
    ) {
        (Some(prefix_tokens), Some(groups), Some(suffix)) => {
            let chat = matches!(args.endpoint, args::EndpointArg::Chat);
            // The chat template's opening is shared too: a prefix's blocks start after it.
            let template = match PromptFlags::template_tokens(&server, chat).await {
                Ok(t) => {
                    cli::out!(
                        "Prompt template: {} tokens before the text, {} after (the server's tokenize endpoint)",
                        t.before,
                        t.after
                    );
                    Some(t)
                }
                Err(e) => {
                    eprintln!("{NAME}: warning: the tokens around a prompt are not known ({e}): the expected prefix-cache hit rate counts none");
                    None
                }
            };
            Some(PrefixWorkload {
                prefix_tokens,
                groups,
                block_tokens: args
                    .prefix_block_tokens
                    .unwrap_or(DEFAULT_PREFIX_BLOCK_TOKENS),
                template,
                suffix_mean_tokens: suffix.mean(),
            })
        }
        _ => None,
    };
    let trace = match (trace, &prompts.source) {
        (Some(trace), PromptSource::Exact(exact)) => {
            let chat = matches!(args.endpoint, args::EndpointArg::Chat);
            let template = match PromptFlags::template_tokens(&server, chat).await {
                Ok(t) => Some(t),
                Err(e) => {
                    eprintln!("{NAME}: warning: the tokens around a prompt are not known ({e}): the expected prefix-cache hit rate counts none");
                    None
                }
            };
            let replay = TraceReplay {
                cache_block_tokens: args
                    .prefix_block_tokens
                    .unwrap_or(DEFAULT_PREFIX_BLOCK_TOKENS),
                template,
                options: trace_options(&args),
                texts: TraceTexts {
                    exact: exact.clone(),
                    block_tokens: args
                        .trace_block_tokens
                        .unwrap_or(DEFAULT_TRACE_BLOCK_TOKENS),
                    seed: args.seed,
                },
                trace,
            };
            replay.check().map_err(failure)?;
            Some(std::sync::Arc::new(replay))
        }
        _ => None,
    };
    let config = ChatConfig {
        model: target.model.clone(),
        dataset_key: prompts.dataset_key.clone(),
        api_base: target.api_base.clone(),
        batch_sizes: Vec::new(),
        num_runs: plan.num_runs,
        // A trace is replayed as it is: nothing before it.
        warmup_runs: if trace.is_some() { 0 } else { args.warmup_runs },
        max_tokens: args.max_tokens,
        temperature: args.temperature,
        seed: args.seed,
        n_cores: workers as u64,
        description: target.description(&args.description),
        endpoint: args.endpoint.into(),
        stream: args.stream,
        results_file: Some(args.results_file.clone()),
        requests_file: args.requests_file.clone(),
        token_times: args.token_times,
        snapshot_every: plan.snapshot_every,
        exact_limit: tokenomics_bench::metrics::samples::EXACT_LIMIT,
        confidence: Some(args.confidence),
        timeout_seconds: args.server.timeout.as_secs_f64(),
        extra_body,
        simulated: target.simulated.clone(),
        preflight,
        levels: plan.levels,
        limits: plan.limits,
        // An SLO search counts the requests that meet every threshold (its attainment, and the
        // goodput at its answer).
        goodput: args
            .goodput
            .or_else(|| plan.adaptive.as_ref().and_then(|a| a.per_request_slo())),
        adaptive: plan.adaptive,
        insecure_tls: target.insecure,
        timeline_interval: Some(args.timeline_interval).filter(|d| !d.is_zero()),
        aborts: args.cancel_rate.zip(args.cancel_after),
        probe_rate: args.probe_rate,
        shared_prefix,
        trace,
        conversation,
        stages: args.stages.clone(),
        shard,
        start_at: args.start_at,
        run_gap: args.run_gap,
        // A simulated run without a price is priced at its preset's list price.
        cost: args
            .gpu_hour_cost
            .map(|usd| tokenomics_stats::CostBasis {
                usd_per_gpu_hour: usd,
                gpus: args.gpus,
                input_cost_share: args.input_cost_share,
            })
            .or(target.preset_cost),
    };
    cli::out!("{}", console::chat_banner(&config));
    let shutdown = Shutdown::default();
    shutdown.on_signals(|| {
        eprintln!("\n{NAME}: interrupted: no new requests; waiting up to 3 s for those in flight (interrupt again to stop now)")
    });
    let mut bench = ChatBenchmark::new(config, target.client.clone(), prompts.source);
    bench.set_shutdown(shutdown);
    let scrape = ScrapeConfig {
        source: args.server_metrics.clone(),
        interval: args.scrape_interval,
        series_file: args.server_metrics_file.clone(),
    };
    match ServerMetrics::start(&scrape, &target.client, bench.clock())
        .await
        .map_err(failure)?
    {
        Started::Scraping(m) => bench.set_server_metrics(m),
        Started::Absent(note) => cli::out!("Note: {note}"),
        Started::Off => {}
    }
    let live = (args.progress == ProgressArg::Auto).then(|| {
        Live::start(
            bench.progress(),
            bench.clock(),
            std::io::stdout().is_terminal(),
        )
    });
    let mut console = ChatConsole::new(live);
    let doc = bench.run(&mut console).await;
    console.finish_live();
    let doc = doc.map_err(failure)?;
    let rows = table::rows(&doc);
    if !rows.is_empty() {
        cli::out!(
            "\nSummary (latencies in ms; tok/s: output tokens per second; – where not measured)"
        );
        cli::out!("{}", table::console(&rows).trim_end_matches('\n'));
    }
    if let Some(text) = tokenomics_bench::adaptive::summary(&doc) {
        cli::out!("\n{text}");
    }
    let formats: [(&Option<_>, &dyn Exporter); 2] =
        [(&args.csv_file, &Csv), (&args.markdown_file, &Markdown)];
    for (path, format) in formats {
        if let Some(path) = path {
            table::write(path, format, &rows).map_err(failure)?;
            cli::out!("Table saved to {}", path.display());
        }
    }
    Ok((console.outcome, bench.interrupted()))
}
