//! `tokenomics-calibrate`: the simulator's presets against public measurements of real GPUs.
//!
//! Replays every row of the calibration set (`crates/tokenomics-sim/calibration/rows.json`) in
//! virtual time against the preset it names — the engine's own scheduler, run as a discrete-event
//! simulation, so the whole set takes well under a second — and prints each reported figure
//! beside its simulated value, the ratio, and whether it is within ±15%. Exits 1 when a figure
//! disagrees with its status in the data (a fitted or checked figure outside the band, or an
//! unmet one inside it), 2 when the data or a flag is wrong.

use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use serde_json::json;
use tokenomics_cli as cli;
use tokenomics_sim::calibration::{self, Comparison, Format};
use tokenomics_sim::{preset, Error};

const NAME: &str = "tokenomics-calibrate";

/// Replay public GPU measurements against the simulator's presets and print measured vs simulated.
#[derive(Debug, Parser)]
#[command(name = "tokenomics-calibrate", version)]
struct Args {
    /// Output: an aligned table, a Markdown table, or JSON (one object per figure).
    #[arg(long, value_enum, default_value_t = Output::Text)]
    format: Output,
    /// Only the rows of these presets (comma-separated).
    #[arg(long, value_delimiter = ',')]
    preset: Vec<String>,
    /// Only these rows (comma-separated ids).
    #[arg(long, value_delimiter = ',')]
    row: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Output {
    Text,
    Markdown,
    Json,
}

/// The comparisons the flags select, or the error that stops the run (bad data, or a flag that
/// names no row or no engine preset).
fn run(args: &Args) -> Result<Vec<Comparison>, Error> {
    let rows = calibration::rows()?;
    for id in &args.row {
        if !rows.iter().any(|r| &r.id == id) {
            let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
            return Err(Error::Invalid(format!(
                "no row {id:?}; rows: {}",
                ids.join(", ")
            )));
        }
    }
    for name in &args.preset {
        if preset::preset(name).is_none() {
            return Err(Error::UnknownPreset(name.clone(), preset::preset_names()));
        }
        if preset::engine(name).is_none() {
            return Err(Error::Invalid(format!(
                "preset {name:?} has no engine, so no row names it"
            )));
        }
    }
    let mut out = Vec::new();
    for row in rows {
        if (!args.row.is_empty() && !args.row.contains(&row.id))
            || (!args.preset.is_empty() && !args.preset.contains(&row.preset))
        {
            continue;
        }
        let spec = preset::engine(&row.preset)
            .ok_or_else(|| Error::UnknownPreset(row.preset.clone(), preset::preset_names()))?;
        out.extend(calibration::compare(&row, &spec)?);
    }
    Ok(out)
}

fn main() -> ExitCode {
    // One-line errors (exit 2) and `--generate` (completions, man page), as every binary.
    let args: Args = match cli::parse(NAME) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let comparisons = match run(&args) {
        Ok(c) => c,
        Err(e) => return cli::fail(NAME, e, cli::exit::USAGE),
    };
    match args.format {
        Output::Text => print!("{}", calibration::render(&comparisons, Format::Text)),
        Output::Markdown => print!("{}", calibration::render(&comparisons, Format::Markdown)),
        Output::Json => {
            let figures: Vec<_> = comparisons
                .iter()
                .map(|c| {
                    json!({
                        "row": c.row,
                        "preset": c.preset,
                        "gpu": c.gpu,
                        "metric": c.metric,
                        "measured": c.measured,
                        "simulated": c.simulated,
                        "ratio": c.ratio(),
                        "within_band": c.within_band(),
                        "status": c.status,
                        "reason": c.reason,
                    })
                })
                .collect();
            match serde_json::to_string_pretty(&json!({
                "band": calibration::BAND,
                "figures": figures,
            })) {
                Ok(text) => println!("{text}"),
                Err(e) => return cli::fail(NAME, e, cli::exit::USAGE),
            }
        }
    }
    let wrong: Vec<&Comparison> = comparisons.iter().filter(|c| !c.consistent()).collect();
    let met = comparisons
        .iter()
        .filter(|c| c.status != calibration::Status::Unmet)
        .count();
    eprintln!(
        "{} figures from {} rows: {met} fitted or checked, all within ±{:.0}% unless listed below; {} unmet with a reason",
        comparisons.len(),
        {
            let mut ids: Vec<&str> = comparisons.iter().map(|c| c.row.as_str()).collect();
            ids.dedup();
            ids.len()
        },
        calibration::BAND * 100.0,
        comparisons.len() - met
    );
    if wrong.is_empty() {
        ExitCode::SUCCESS
    } else {
        for c in wrong {
            eprintln!(
                "tokenomics-calibrate: {} {} is {} but simulated/measured = {:.3}",
                c.row,
                c.metric.label(),
                c.status.label(),
                c.ratio()
            );
        }
        ExitCode::from(1)
    }
}
