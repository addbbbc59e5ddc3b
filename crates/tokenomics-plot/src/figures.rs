//! What a figure shows, independent of how it is drawn: panels, series and points, built from
//! result documents.

use tokenomics_stats::{AnyDocument, ChatDocument, Distribution, EmbedDocument, Stat};

use crate::{compact, Error, Input, Result};

/// A whole figure: a title and panels laid out row by row in `columns` columns.
#[derive(Debug, Clone)]
pub struct Figure {
    pub title: String,
    pub columns: usize,
    pub panels: Vec<Panel>,
    /// Pixel size of one panel.
    pub panel_size: (u32, u32),
}

impl Figure {
    /// Pixel size of the whole image (panels plus the title band).
    pub fn size(&self) -> (u32, u32) {
        let rows = self.panels.len().div_ceil(self.columns.max(1)) as u32;
        (
            self.panel_size.0 * self.columns as u32,
            self.panel_size.1 * rows + TITLE_HEIGHT,
        )
    }
}

pub(crate) const TITLE_HEIGHT: u32 = 100;

/// How batch sizes are placed along the x axis.
#[derive(Debug, Clone, PartialEq)]
pub enum XAxis {
    /// Evenly spaced categories, in this order.
    Categories(Vec<u64>),
    /// A log2 axis with ticks at these batch sizes.
    Log2(Vec<u64>),
}

impl XAxis {
    pub fn ticks(&self) -> &[u64] {
        match self {
            XAxis::Categories(v) | XAxis::Log2(v) => v,
        }
    }

    /// Where batch size `b` sits on the axis.
    pub fn position(&self, b: u64) -> Option<f64> {
        match self {
            XAxis::Categories(v) => v.iter().position(|&x| x == b).map(|i| i as f64),
            XAxis::Log2(_) => (b > 0).then(|| (b as f64).log2()),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Panel {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub x: XAxis,
    pub series: Vec<Series>,
}

#[derive(Debug, Clone)]
pub struct Series {
    pub label: String,
    pub points: Vec<Point>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub batch: u64,
    pub y: f64,
    /// The shaded band at this point (low, high).
    pub band: Option<(f64, f64)>,
    /// The annotation written next to the point.
    pub note: Option<String>,
}

fn mean_std_point(batch: u64, s: &Stat) -> Option<Point> {
    s.mean.is_finite().then(|| {
        let std = if s.std.is_finite() { s.std } else { 0.0 };
        Point {
            batch,
            y: s.mean,
            band: Some(((s.mean - std).max(0.0), s.mean + std)),
            note: Some(format!("{} ± {}", compact(s.mean), compact(std))),
        }
    })
}

/// p50 in milliseconds with a p90–p99 band.
fn latency_point(batch: u64, d: &Distribution) -> Option<Point> {
    d.p50.is_finite().then(|| Point {
        batch,
        y: d.p50 * 1e3,
        band: (d.p90.is_finite() && d.p99.is_finite()).then_some((d.p90 * 1e3, d.p99 * 1e3)),
        note: Some(format!("{} ms", compact(d.p50 * 1e3))),
    })
}

/// Batch sizes of a chat document's levels, in order (keys that are not batch sizes are skipped).
fn chat_levels(doc: &ChatDocument) -> Vec<(u64, &tokenomics_stats::ChatLevel)> {
    doc.results
        .iter()
        .filter_map(|(k, v)| k.parse::<u64>().ok().map(|b| (b, v)))
        .collect()
}

fn sorted_union(sets: impl IntoIterator<Item = u64>) -> Vec<u64> {
    let mut v: Vec<u64> = sets.into_iter().collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// The chat figure: batch and request tokens/s stacked; TTFT and ITL beside them when any input
/// has a `latency` block.
pub fn chat_figure(inputs: &[(String, &ChatDocument)], title: &str) -> Figure {
    let batches = sorted_union(
        inputs
            .iter()
            .flat_map(|(_, d)| chat_levels(d).into_iter().map(|(b, _)| b)),
    );
    let x = XAxis::Categories(batches);
    // The levels are batch sizes, concurrencies or request rates, by the run's mode (all inputs
    // of one figure are expected to share it; the first decides the label).
    let mode = inputs
        .first()
        .and_then(|(_, d)| d.metadata.extra.get("mode"))
        .and_then(|m| m.as_str());
    let x_label = match mode {
        Some("closed_loop") => "concurrency (requests kept in flight)",
        Some("open_loop") => "request rate (requests/s)",
        _ => "batch size (concurrent requests)",
    }
    .to_string();
    let panel =
        |title: &str,
         y_label: &str,
         f: &dyn Fn(u64, &tokenomics_stats::ChatLevel) -> Option<Point>| Panel {
            title: title.into(),
            x_label: x_label.clone(),
            y_label: y_label.into(),
            x: x.clone(),
            series: inputs
                .iter()
                .map(|(label, doc)| Series {
                    label: label.clone(),
                    points: chat_levels(doc)
                        .into_iter()
                        .filter_map(|(b, l)| f(b, l))
                        .collect(),
                })
                .collect(),
        };
    let (tps_title, tps_label) = match mode {
        Some("closed_loop") | Some("open_loop") => (
            "Throughput (whole run, mean ± std over runs)",
            "output tokens/s, whole run",
        ),
        _ => (
            "Batch throughput (mean ± std over runs)",
            "output tokens/s, whole batch",
        ),
    };
    let batch_tps = panel(tps_title, tps_label, &|b, l| {
        mean_std_point(b, &l.throughput.batch_tokens_per_second)
    });
    let request_tps = panel(
        "Per-request throughput (mean ± std over requests)",
        "output tokens/s per request",
        &|b, l| mean_std_point(b, &l.throughput.request_tokens_per_second),
    );
    let streamed = inputs
        .iter()
        .any(|(_, d)| d.results.values().any(|l| l.latency.is_some()));
    let panels = if streamed {
        let ttft = panel(
            "Time to first token (p50, band p90–p99)",
            "TTFT (ms)",
            &|b, l| {
                l.latency
                    .as_ref()
                    .and_then(|lat| latency_point(b, &lat.ttft))
            },
        );
        let itl = panel(
            "Inter-token latency (p50, band p90–p99)",
            "ITL (ms)",
            &|b, l| {
                l.latency
                    .as_ref()
                    .and_then(|lat| latency_point(b, &lat.itl))
            },
        );
        vec![batch_tps, ttft, request_tps, itl]
    } else {
        vec![batch_tps, request_tps]
    };
    Figure {
        title: title.to_string(),
        columns: if streamed { 2 } else { 1 },
        panels,
        panel_size: (1800, 1000),
    }
}

/// `batch_{B}_seq_{L}` → (B, L).
fn embed_key(key: &str) -> Option<(u64, &str)> {
    let rest = key.strip_prefix("batch_")?;
    let (b, l) = rest.split_once("_seq_")?;
    Some((b.parse().ok()?, l))
}

/// The embedding figure: a 2×2 grid, one line per sequence length (per input), batch size on a
/// log2 axis.
pub fn embed_figure(inputs: &[(String, &EmbedDocument)], title: &str) -> Figure {
    let batches = sorted_union(inputs.iter().flat_map(|(_, d)| {
        d.results
            .keys()
            .filter_map(|k| embed_key(k).map(|(b, _)| b))
    }));
    let x = XAxis::Log2(batches);
    // Series: every (input, sequence length) in order of first appearance.
    let mut series_keys: Vec<(usize, String)> = Vec::new();
    for (i, (_, d)) in inputs.iter().enumerate() {
        for k in d.results.keys() {
            if let Some((_, l)) = embed_key(k) {
                if !series_keys.iter().any(|(j, m)| *j == i && m == l) {
                    series_keys.push((i, l.to_string()));
                }
            }
        }
    }
    let several = inputs.len() > 1;
    let x_label = "batch size (concurrent requests, log2 scale)".to_string();
    let has_latency = inputs
        .iter()
        .any(|(_, d)| d.results.values().any(|l| l.latency.is_some()));
    let panel =
        |title: &str,
         y_label: &str,
         f: &dyn Fn(u64, &tokenomics_stats::EmbedLevel) -> Option<Point>| Panel {
            title: title.into(),
            x_label: x_label.clone(),
            y_label: y_label.into(),
            x: x.clone(),
            series: series_keys
                .iter()
                .map(|(i, l)| {
                    let (label, doc) = &inputs[*i];
                    let name = if l.chars().all(|c| c.is_ascii_digit()) {
                        format!("{l} words")
                    } else {
                        l.clone()
                    };
                    Series {
                        label: if several {
                            format!("{label} · {name}")
                        } else {
                            name
                        },
                        points: doc
                            .results
                            .iter()
                            .filter_map(|(k, v)| {
                                embed_key(k)
                                    .filter(|(_, m)| m == l)
                                    .and_then(|(b, _)| f(b, v))
                            })
                            .collect(),
                    }
                })
                .collect(),
        };
    let mut panels = vec![
        panel(
            "Batch embedding throughput",
            "embeddings/s, whole batch",
            &|b, l| mean_std_point(b, &l.throughput.batch_embeddings_per_second),
        ),
        panel(
            "Batch token throughput",
            "tokens/s, whole batch",
            &|b, l| mean_std_point(b, &l.throughput.batch_tokens_per_second),
        ),
        panel(
            "Batch time (first send → last response)",
            "seconds",
            &|b, l| mean_std_point(b, &l.timings.batch_total_seconds),
        ),
    ];
    panels.push(if has_latency {
        panel(
            "Request latency (p50, band p90–p99)",
            "latency (ms)",
            &|b, l| l.latency.as_ref().and_then(|d| latency_point(b, d)),
        )
    } else {
        panel(
            "Slowest request (mean ± std over runs)",
            "seconds",
            &|b, l| mean_std_point(b, &l.timings.slowest_seconds),
        )
    });
    Figure {
        title: title.to_string(),
        columns: 2,
        panels,
        panel_size: (1800, 1000),
    }
}

/// The figure for a set of loaded inputs, all of one kind.
pub(crate) fn figure_for(inputs: &[Input], title: Option<&str>) -> Result<Figure> {
    let title = match (title, inputs) {
        (Some(t), _) => t.to_string(),
        (None, [one]) => one.label.clone(),
        (None, many) => format!("Comparison of {} result files", many.len()),
    };
    match inputs.first().map(|i| &i.document) {
        Some(AnyDocument::Chat(_)) => {
            let mut docs = Vec::new();
            for i in inputs {
                match &i.document {
                    AnyDocument::Chat(d) => docs.push((i.label.clone(), d)),
                    AnyDocument::Embed(_) => return Err(Error::Mixed(i.path.clone())),
                }
            }
            Ok(chat_figure(&docs, &title))
        }
        Some(AnyDocument::Embed(_)) => {
            let mut docs = Vec::new();
            for i in inputs {
                match &i.document {
                    AnyDocument::Embed(d) => docs.push((i.label.clone(), d)),
                    AnyDocument::Chat(_) => return Err(Error::Mixed(i.path.clone())),
                }
            }
            Ok(embed_figure(&docs, &title))
        }
        None => Err(Error::Empty(std::path::PathBuf::from("(no input)"))),
    }
}
