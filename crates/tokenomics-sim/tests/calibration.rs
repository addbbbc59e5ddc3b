//! The presets agree with public measurements of real GPUs: every row of
//! `calibration/rows.json`, replayed in virtual time against the preset it names, is where the
//! data says it is — fitted and checked figures within ±15%, unmet ones (each with its reason)
//! outside. A change to the engine or a preset that moves a figure across the band fails here.

use std::collections::BTreeSet;

use tokenomics_sim::calibration::{self, compare, compare_all, rows, Format, Load, Status};
use tokenomics_sim::preset::{self, Behaviour};

#[test]
fn every_row_agrees_with_its_status() {
    let all = compare_all().unwrap();
    let wrong: Vec<_> = all.iter().filter(|c| !c.consistent()).cloned().collect();
    assert!(
        wrong.is_empty(),
        "figures that disagree with calibration/rows.json (a fitted or checked figure outside ±15%, or an unmet one inside):\n{}\nthe whole table:\n{}",
        calibration::render(&wrong, Format::Text),
        calibration::render(&all, Format::Text)
    );
    // Every row calibrates something: at least one of its figures is fitted or checked. The
    // unmet ones carry a reason.
    for row in rows().unwrap() {
        assert!(
            all.iter()
                .any(|c| c.row == row.id && c.status != Status::Unmet),
            "{} has no figure within the band",
            row.id
        );
    }
    assert!(all
        .iter()
        .filter(|c| c.status == Status::Unmet)
        .all(|c| c.reason.as_deref().is_some_and(|r| r.len() > 20)));
}

#[test]
fn a_drifted_engine_is_caught() {
    // The same rows against engines whose step overhead is 0.7 ms with no per-sequence part
    // (the presets before the calibration): the light-decode rows fall out of the band, so the
    // test above would fail on such a change.
    let mut drifted = 0;
    for row in rows().unwrap() {
        let mut spec = preset::engine(&row.preset).unwrap();
        spec.step_overhead_s = 0.7e-3;
        spec.seq_overhead_s = 0.0;
        drifted += compare(&row, &spec)
            .unwrap()
            .iter()
            .filter(|c| !c.consistent())
            .count();
    }
    assert!(drifted >= 3, "{drifted} figures noticed the drift");
}

#[test]
fn the_tensor_parallel_fit_is_what_meets_the_saturated_tp4_row() {
    // sglang-vllm060-h100x4-offline is fitted with the per-sequence cost of tensor parallelism
    // (the TP presets' per-sequence overhead is above the single-GPU one): with the single-GPU
    // value the row leaves the band (1.28), so the fit is not a no-op that a later change could
    // drop unnoticed.
    let row = rows()
        .unwrap()
        .into_iter()
        .find(|r| r.id == "sglang-vllm060-h100x4-offline")
        .unwrap();
    let fitted = preset::engine(&row.preset).unwrap();
    let one_gpu = preset::engine("h100-llama-3.1-8b").unwrap();
    assert!(fitted.seq_overhead_s > one_gpu.seq_overhead_s);
    assert!(compare(&row, &fitted)
        .unwrap()
        .iter()
        .all(|c| c.consistent()));
    let without = preset::EngineSpec {
        seq_overhead_s: one_gpu.seq_overhead_s,
        ..fitted
    };
    for c in compare(&row, &without).unwrap() {
        assert!(c.ratio() > 1.0 + calibration::BAND, "{c:?}");
    }
}

#[test]
fn the_rows_cover_sources_gpus_and_loads() {
    let rows = rows().unwrap();
    // Independent publishers: the source's name up to its first comma.
    let sources: BTreeSet<&str> = rows
        .iter()
        .map(|r| r.source.split(',').next().unwrap_or_default())
        .collect();
    assert!(sources.len() >= 3, "{sources:?}");
    let gpus: BTreeSet<&str> = rows.iter().map(|r| r.gpu.as_str()).collect();
    assert!(gpus.len() >= 3, "{gpus:?}");
    let has = |f: fn(&Load) -> bool| rows.iter().any(|r| f(&r.workload.load));
    // Light decode (a small batch), an open loop, and saturation (thousands at once).
    assert!(has(
        |l| matches!(l, Load::Batch { requests } if *requests <= 8)
    ));
    assert!(has(|l| matches!(l, Load::OpenLoop { .. })));
    assert!(has(
        |l| matches!(l, Load::Batch { requests } if *requests >= 1000)
    ));
    for r in &rows {
        assert!(r.url.starts_with("https://"), "{}", r.id);
        assert!(
            !r.notes.is_empty() && !r.engine_version.is_empty(),
            "{}",
            r.id
        );
    }
}

#[test]
fn every_calibrated_preset_states_its_fit_in_describe() {
    let rows = rows().unwrap();
    for p in preset::presets() {
        let Behaviour::Engine(spec) = p.behaviour else {
            continue;
        };
        let text = spec.describe();
        let mine: Vec<_> = rows.iter().filter(|r| r.preset == p.name).collect();
        if mine.is_empty() {
            assert!(text.contains("no public row names this preset"), "{text}");
            continue;
        }
        assert!(text.contains("fitted on:"), "{text}");
        assert!(text.contains("checked only against:"), "{text}");
        for row in mine {
            assert!(text.contains(&row.id), "{} missing from\n{text}", row.id);
            assert!(text.contains(&row.url), "{text}");
        }
    }
    // The H200 presets share every constant with the H100 ones: their rows check, never fit.
    for name in ["h200-llama-3.1-8b", "h200x4-llama-3.1-70b"] {
        let text = preset::engine(name).unwrap().describe();
        assert!(text.contains("fitted on: none"), "{text}");
    }
}
