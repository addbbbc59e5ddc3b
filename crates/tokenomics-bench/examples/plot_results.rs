//! Drawing a result document from Rust with `tokenomics-plot`.
//!
//! ```text
//! cargo run --release -p tokenomics-bench --example plot_results -- [--results FILE] [--out FIGURE.png|.svg]
//! ```
//!
//! With `--results` it draws that result file (`oai-bench`'s, or the original scripts'). Without,
//! it first measures one: bursts of 1, 2 and 4 streamed requests against the simulator started
//! in-process, the document kept in memory. The figure — throughput against batch size, and
//! with streamed levels the TTFT and inter-token latency column — goes to `--out` (default
//! `plot_results.png` in the system's temporary directory), PNG or SVG by its extension.

use std::path::PathBuf;
use std::process::ExitCode;

use tokenomics_bench::ChatExperiment;
use tokenomics_plot::{figure_for, render, Input};
use tokenomics_sim::{SimConfig, Simulator};
use tokenomics_stats::AnyDocument;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    match plot().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("plot_results: {e}");
            ExitCode::from(2)
        }
    }
}

async fn plot() -> Result<(), Box<dyn std::error::Error>> {
    let mut results: Option<PathBuf> = None;
    let mut out = std::env::temp_dir().join("plot_results.png");
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--results" => results = Some(PathBuf::from(value)),
            "--out" => out = PathBuf::from(value),
            _ => return Err(format!("unknown argument {flag}").into()),
        }
    }

    let input = match results {
        Some(path) => Input {
            label: path.display().to_string(),
            document: tokenomics_plot::load(&path)?,
            path,
        },
        None => {
            let config = SimConfig::preset("instant")?.with_fixed_schedule(0.030, 0.004);
            let (server, sim) = Simulator::start(config, ([127, 0, 0, 1], 0).into()).await?;
            let doc = ChatExperiment::builder(server.api_base(), sim.served_model())
                .bursts([1, 2, 4])
                .num_runs(2)
                .warmup_runs(1)
                .max_tokens(24)
                .stream(true)
                .description("plot_results example, simulated")
                .build()?
                .run()
                .await?;
            server.shutdown().await;
            Input {
                label: "simulated".into(),
                document: AnyDocument::Chat(doc),
                path: PathBuf::from("(in memory)"),
            }
        }
    };

    let plotted = figure_for(&[input], None)?;
    for warning in &plotted.warnings {
        eprintln!("plot_results: warning: {warning}");
    }
    render(&plotted.figure, &out)?;
    let (width, height) = plotted.figure.size();
    println!(
        "{} panels, {width}×{height} px, written to {}",
        plotted.figure.panels.len(),
        out.display()
    );
    Ok(())
}
