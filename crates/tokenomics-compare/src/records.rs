//! Per-request records: what the significance tests resample.
//!
//! `oai-bench --requests_file` writes one JSON line per request (its level, run, status, token
//! counts and timestamps, see the book's chapter on the results file); some other tools keep
//! per-request values too (vLLM's `--save-detailed` arrays, AIPerf's `profile_export.jsonl`).
//! Either way they become [`RequestRecord`]s, grouped by level in [`Records`], from which
//! [`LevelSamples`] derives the per-request values of each metric with this project's definitions:
//! TTFT and E2EL as recorded, TPOT = (E2EL − TTFT) / (tokens − 1), and the inter-token latencies of
//! each request (every gap between its tokens, when its token times are known).

use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde::Deserialize;

use crate::{Error, Result};

/// One request, times in seconds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RequestRecord {
    /// The key of the level it belongs to (as in the results document).
    pub level: String,
    /// The run of the level it belongs to (`--num_runs`), as numbered in the file; 0 when the
    /// file does not say. The tests compare runs when each side has two or more.
    pub run: u64,
    /// Whether it succeeded; only successful requests are tested.
    pub ok: bool,
    /// Send → first token.
    pub ttft_s: Option<f64>,
    /// Send → end of the response.
    pub e2el_s: Option<f64>,
    /// Output tokens as the server's `usage` counted them.
    pub completion_tokens: Option<u64>,
    /// Content events (one per SSE chunk that carried text).
    pub content_events: Option<u64>,
    /// First token, seconds on any clock shared with `last_token_s`.
    pub first_token_s: Option<f64>,
    /// Last token, seconds on the clock of `first_token_s`.
    pub last_token_s: Option<f64>,
    /// When each content event arrived (seconds on any clock), `--token_times`.
    pub token_s: Option<Vec<f64>>,
    /// Gaps between tokens as another tool recorded them (seconds), when it kept them but not
    /// the arrival times.
    pub gaps_s: Option<Vec<f64>>,
}

impl RequestRecord {
    /// Output tokens: the server's count, else the content events.
    pub fn tokens(&self) -> Option<u64> {
        self.completion_tokens.or(self.content_events)
    }

    /// Time per output token after the first, seconds (`None` for fewer than two tokens).
    pub fn tpot_s(&self) -> Option<f64> {
        let n = self.tokens()?;
        (n > 1).then_some(())?;
        Some((self.e2el_s? - self.ttft_s?) / (n - 1) as f64)
    }

    /// The request's inter-token latencies, seconds: from its token times as `oai-bench` deals
    /// them (see [`token_gaps`]), else as another tool recorded them; `None` without either.
    pub fn itl_s(&self) -> Option<Vec<f64>> {
        if let Some(times) = &self.token_s {
            let tokens = self.tokens().unwrap_or(times.len() as u64);
            return Some(token_gaps(times, tokens));
        }
        self.gaps_s.clone()
    }

    /// Last token − first token and the token gaps in it: the parts of the stream's mean time
    /// per token, Σ span / Σ gaps over requests (the mean of every inter-token latency).
    pub fn token_span(&self) -> Option<(f64, f64)> {
        let n = self.tokens()?;
        if n < 2 {
            return None;
        }
        let (first, last) = match &self.token_s {
            Some(t) if t.len() >= 2 => (t[0], t[t.len() - 1]),
            _ => match (&self.gaps_s, self.first_token_s, self.last_token_s) {
                (_, Some(f), Some(l)) => (f, l),
                (Some(g), _, _) if !g.is_empty() => (0.0, g.iter().sum()),
                _ => return None,
            },
        };
        Some((last - first, (n - 1) as f64))
    }

    /// Completion tokens / E2EL: the request's tokens per second.
    pub fn tokens_per_second(&self) -> Option<f64> {
        let e = self.e2el_s?;
        (e > 0.0).then(|| self.completion_tokens.map(|n| n as f64 / e))?
    }
}

/// Inter-token latencies from the arrival times of E content events carrying N tokens in all,
/// as `oai-bench` computes them: with one token per event the E − 1 gaps; when the server merged
/// tokens (N > E) the N − 1 token gaps are dealt to the E − 1 event gaps as evenly as whole
/// numbers allow, and an event gap that carried k tokens counts as k gaps of 1/k of its length.
///
/// A count of tokens more than [`MAX_TOKENS_PER_EVENT`] times the events is taken as that many:
/// the count comes from a file, and must not decide an allocation on its own.
pub fn token_gaps(times_s: &[f64], tokens: u64) -> Vec<f64> {
    let gaps = times_s.len().saturating_sub(1);
    if gaps == 0 {
        return Vec::new();
    }
    let most = gaps.saturating_mul(MAX_TOKENS_PER_EVENT);
    let token_gaps = usize::try_from(tokens.saturating_sub(1))
        .unwrap_or(usize::MAX)
        .clamp(gaps, most);
    let mut out = Vec::with_capacity(token_gaps);
    for (i, w) in times_s.windows(2).enumerate() {
        let k = (i + 1) * token_gaps / gaps - i * token_gaps / gaps;
        out.extend(std::iter::repeat_n((w[1] - w[0]) / k as f64, k));
    }
    out
}

/// The most tokens one content event is taken to carry (a server merges a few into one chunk
/// now and then; speculative decoding emits several per step).
pub const MAX_TOKENS_PER_EVENT: usize = 256;

/// The per-request records of a document, by level key.
#[derive(Debug, Clone, Default)]
pub struct Records {
    /// Where they came from (for messages).
    pub source: PathBuf,
    /// Each level's records in the order they were read, levels in order of first appearance.
    pub by_level: IndexMap<String, Vec<RequestRecord>>,
}

/// One line of `oai-bench --requests_file`: the fields the tests use (the others are ignored).
#[derive(Deserialize)]
struct Line {
    level: String,
    #[serde(default)]
    run: u64,
    status: String,
    #[serde(default)]
    ttft_s: Option<f64>,
    #[serde(default)]
    e2el_s: Option<f64>,
    #[serde(default)]
    completion_tokens: Option<u64>,
    #[serde(default)]
    content_events: Option<u64>,
    #[serde(default)]
    first_token_s: Option<f64>,
    #[serde(default)]
    last_token_s: Option<f64>,
    #[serde(default)]
    token_s: Option<Vec<f64>>,
}

impl Records {
    /// Groups records by level, keeping their order.
    pub fn new(source: PathBuf, records: impl IntoIterator<Item = RequestRecord>) -> Self {
        let mut by_level: IndexMap<String, Vec<RequestRecord>> = IndexMap::new();
        for r in records {
            by_level.entry(r.level.clone()).or_default().push(r);
        }
        Self { source, by_level }
    }

    /// Reads an `oai-bench --requests_file` (JSON Lines). A line that is not such a record is
    /// refused with its number and what was expected.
    pub fn read_jsonl(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut records = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            if raw.trim().is_empty() {
                continue;
            }
            let line: Line = serde_json::from_str(raw).map_err(|e| Error::Records {
                path: path.to_path_buf(),
                message: format!(
                    "line {}: {e}; expected oai-bench --requests_file lines (level, run, status, ttft_s, e2el_s, completion_tokens, …)",
                    i + 1
                ),
            })?;
            let ok = match line.status.as_str() {
                "ok" => true,
                "failed" => false,
                other => {
                    return Err(Error::Records {
                        path: path.to_path_buf(),
                        message: format!(
                            "line {}: status {other:?}; expected \"ok\" or \"failed\"",
                            i + 1
                        ),
                    })
                }
            };
            records.push(RequestRecord {
                level: line.level,
                run: line.run,
                ok,
                ttft_s: line.ttft_s,
                e2el_s: line.e2el_s,
                completion_tokens: line.completion_tokens,
                content_events: line.content_events,
                first_token_s: line.first_token_s,
                last_token_s: line.last_token_s,
                token_s: line.token_s,
                gaps_s: None,
            });
        }
        if records.is_empty() {
            return Err(Error::Records {
                path: path.to_path_buf(),
                message: "no request records in it".into(),
            });
        }
        Ok(Self::new(path.to_path_buf(), records))
    }

    /// The successful requests of a level.
    pub fn successes(&self, level: &str) -> Vec<&RequestRecord> {
        self.by_level
            .get(level)
            .map(|v| v.iter().filter(|r| r.ok).collect())
            .unwrap_or_default()
    }
}

/// The per-request values of one level's metrics, grouped so that the values of one request
/// stay together (a request's inter-token latencies are not independent of each other, so a
/// resample draws whole requests).
#[derive(Debug, Clone, Default)]
pub struct LevelSamples {
    /// Each request's TTFT, seconds.
    pub ttft: Clusters,
    /// Each request's TPOT, seconds (requests of two tokens or more).
    pub tpot: Clusters,
    /// Each request's E2EL, seconds.
    pub e2el: Clusters,
    /// Every inter-token latency, by request (empty when token times were not recorded).
    pub itl: Clusters,
    /// Per request: (last token − first token, token gaps), for the ITL mean.
    pub itl_spans: Vec<(f64, f64)>,
    /// Per request: completion tokens / E2EL.
    pub request_tokens_per_second: Clusters,
}

impl LevelSamples {
    /// The values of these records, which should be one level's successful ones
    /// ([`Records::successes`]). A request adds to each metric it has a value for; a TTFT, TPOT
    /// or E2EL that is not finite is left out.
    pub fn of(records: &[&RequestRecord]) -> Self {
        let mut s = LevelSamples::default();
        for r in records {
            if let Some(v) = r.ttft_s.filter(|v| v.is_finite()) {
                s.ttft.push(&[v]);
            }
            if let Some(v) = r.e2el_s.filter(|v| v.is_finite()) {
                s.e2el.push(&[v]);
            }
            if let Some(v) = r.tpot_s().filter(|v| v.is_finite()) {
                s.tpot.push(&[v]);
            }
            if let Some(g) = r.itl_s() {
                if !g.is_empty() {
                    s.itl.push(&g);
                }
            }
            if let Some(span) = r.token_span() {
                s.itl_spans.push(span);
            }
            if let Some(v) = r.tokens_per_second() {
                s.request_tokens_per_second.push(&[v]);
            }
        }
        s
    }
}

/// Values grouped by request, flattened: cluster `i` is `values[starts[i]..starts[i + 1]]`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Clusters {
    /// Every value, cluster after cluster.
    pub values: Vec<f64>,
    starts: Vec<usize>,
}

impl Clusters {
    /// Appends a cluster: one request's values.
    pub fn push(&mut self, cluster: &[f64]) {
        self.starts.push(self.values.len());
        self.values.extend_from_slice(cluster);
    }

    /// One value per cluster.
    pub fn singles(values: impl IntoIterator<Item = f64>) -> Self {
        let values: Vec<f64> = values.into_iter().collect();
        Self {
            starts: (0..values.len()).collect(),
            values,
        }
    }

    /// Number of clusters (requests).
    pub fn clusters(&self) -> usize {
        self.starts.len()
    }

    /// Number of values.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether there are no values (there may still be clusters, all empty).
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The values of cluster `i`. Panics unless `i` is below [`Clusters::clusters`].
    pub fn cluster(&self, i: usize) -> &[f64] {
        let end = self.starts.get(i + 1).copied().unwrap_or(self.values.len());
        &self.values[self.starts[i]..end]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn gaps_are_dealt_as_oai_bench_deals_them() {
        // 3 events carrying 6 tokens: 5 token gaps dealt 2 + 3 over gaps of 20 and 30 ms.
        let g = token_gaps(&[0.0, 0.020, 0.050], 6);
        assert_eq!(g.len(), 5);
        assert!(close(g.iter().sum::<f64>(), 0.050));
        assert!(g.iter().all(|x| close(*x, 0.010)));
        assert!(token_gaps(&[1.0], 4).is_empty());
        // Fewer tokens than events never loses a gap; an absurd count is bounded.
        assert_eq!(token_gaps(&[0.0, 0.1, 0.2], 1).len(), 2);
        assert_eq!(
            token_gaps(&[0.0, 0.1], u64::MAX).len(),
            MAX_TOKENS_PER_EVENT
        );
    }

    #[test]
    fn a_records_derived_figures_follow_the_readme() {
        let r = RequestRecord {
            level: "8".into(),
            ok: true,
            ttft_s: Some(0.050),
            e2el_s: Some(0.081),
            completion_tokens: Some(4),
            token_s: Some(vec![0.150, 0.160, 0.175, 0.180]),
            ..RequestRecord::default()
        };
        assert!(close(r.tpot_s().unwrap(), 0.031 / 3.0));
        let itl = r.itl_s().unwrap();
        assert_eq!(itl.len(), 3);
        assert!(close(itl[1], 0.015));
        let (span, gaps) = r.token_span().unwrap();
        assert!(close(span, 0.030) && close(gaps, 3.0));
        assert!(close(r.tokens_per_second().unwrap(), 4.0 / 0.081));
        let one = RequestRecord {
            completion_tokens: Some(1),
            ..r.clone()
        };
        assert_eq!(one.tpot_s(), None);
    }

    #[test]
    fn a_line_that_is_not_a_record_is_refused_with_its_number() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.jsonl");
        std::fs::write(
            &p,
            "{\"level\":\"1\",\"run\":0,\"status\":\"ok\",\"ttft_s\":0.1,\"e2el_s\":0.2}\n{\"run\":0}\n",
        )
        .unwrap();
        let e = Records::read_jsonl(&p).unwrap_err().to_string();
        assert!(e.contains("line 2") && e.contains("level"), "{e}");
        std::fs::write(&p, "{\"level\":\"1\",\"status\":\"maybe\"}\n").unwrap();
        let e = Records::read_jsonl(&p).unwrap_err().to_string();
        assert!(e.contains("\"maybe\""), "{e}");
    }

    #[test]
    fn clusters_keep_a_requests_values_together() {
        let mut c = Clusters::default();
        c.push(&[1.0, 2.0]);
        c.push(&[3.0]);
        assert_eq!((c.clusters(), c.len()), (2, 3));
        assert_eq!(c.cluster(0), &[1.0, 2.0]);
        assert_eq!(c.cluster(1), &[3.0]);
        assert_eq!(Clusters::singles([4.0, 5.0]).cluster(1), &[5.0]);
    }
}
