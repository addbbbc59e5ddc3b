//! The Prometheus text exposition format (0.0.4, and the sample lines OpenMetrics shares with
//! it): `name{label="value",…} value [timestamp]`, `#` comments (`HELP`, `TYPE`, `EOF`), label
//! values with `\\`, `\"` and `\n` escaped. Exemplars (` # {…} …` after a value) are ignored.

/// One sample of a scrape.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The metric name (`vllm:num_requests_running`, `…_bucket`, `…_total`).
    pub name: String,
    /// The labels in the order written, values unescaped.
    pub labels: Vec<(String, String)>,
    /// The value as written (`NaN`, `+Inf` and `-Inf` included); any timestamp is dropped.
    pub value: f64,
}

impl Sample {
    /// `name{label="value",…}` with values escaped as the format writes them; the name alone
    /// without labels. Unique within a well-formed scrape.
    pub fn series(&self) -> String {
        if self.labels.is_empty() {
            return self.name.clone();
        }
        let labels: Vec<String> = self
            .labels
            .iter()
            .map(|(k, v)| {
                let v = v
                    .replace('\\', "\\\\")
                    .replace('"', "\\\"")
                    .replace('\n', "\\n");
                format!("{k}=\"{v}\"")
            })
            .collect();
        format!("{}{{{}}}", self.name, labels.join(","))
    }
}

/// What a scrape's body held.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Exposition {
    /// Every sample line, in the order written.
    pub samples: Vec<Sample>,
    /// Lines that were neither a comment nor a sample (1-based line numbers, the first few).
    pub bad_lines: Vec<usize>,
    /// How many lines were bad in all.
    pub bad_count: usize,
}

/// The most bad line numbers kept.
const BAD_LINES_KEPT: usize = 8;

/// Parses a scrape's body. A line that is not a sample is skipped and counted (one odd line must
/// not lose the rest); a body with no sample at all is not Prometheus text.
pub fn parse(body: &str) -> Exposition {
    let mut out = Exposition::default();
    for (i, line) in body.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match sample(line) {
            Some(s) => out.samples.push(s),
            None => {
                out.bad_count += 1;
                if out.bad_lines.len() < BAD_LINES_KEPT {
                    out.bad_lines.push(i + 1);
                }
            }
        }
    }
    out
}

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':'
}

fn is_name_char(c: char) -> bool {
    is_name_start(c) || c.is_ascii_digit()
}

/// One sample line (already trimmed, not a comment).
fn sample(line: &str) -> Option<Sample> {
    let name_end = line.find(|c: char| !is_name_char(c)).unwrap_or(line.len());
    let name = &line[..name_end];
    if !name.starts_with(is_name_start) {
        return None;
    }
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(after) = rest.strip_prefix('{') {
        let (parsed, tail) = label_set(after)?;
        labels = parsed;
        rest = tail;
    }
    // The value, then an optional timestamp and an optional exemplar; both are ignored.
    let mut fields = rest.split_whitespace();
    let value = number(fields.next()?)?;
    match fields.next() {
        None => {}
        Some("#") => {}
        Some(ts) => {
            ts.parse::<i64>().ok().or_else(|| {
                // OpenMetrics timestamps are seconds with a fraction.
                ts.parse::<f64>().ok().filter(|t| t.is_finite()).map(|_| 0)
            })?;
            if !matches!(fields.next(), None | Some("#")) {
                return None;
            }
        }
    }
    Some(Sample {
        name: name.to_string(),
        labels,
        value,
    })
}

/// `label="value",…}` (after the opening brace): the labels and the text after the brace.
fn label_set(mut s: &str) -> Option<(Vec<(String, String)>, &str)> {
    let mut labels = Vec::new();
    loop {
        s = s.trim_start();
        if let Some(rest) = s.strip_prefix('}') {
            return Some((labels, rest));
        }
        let end = s.find(|c: char| !is_name_char(c)).unwrap_or(s.len());
        let key = &s[..end];
        if key.is_empty() || key.starts_with(|c: char| c.is_ascii_digit()) {
            return None;
        }
        s = s[end..].trim_start().strip_prefix('=')?.trim_start();
        s = s.strip_prefix('"')?;
        let mut value = String::new();
        let mut chars = s.char_indices();
        let close = loop {
            let (i, c) = chars.next()?;
            match c {
                '"' => break i,
                '\\' => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    '\\' => value.push('\\'),
                    '"' => value.push('"'),
                    // An unknown escape is kept as written.
                    other => {
                        value.push('\\');
                        value.push(other);
                    }
                },
                c => value.push(c),
            }
        };
        labels.push((key.to_string(), value));
        s = s[close + 1..].trim_start();
        if let Some(rest) = s.strip_prefix(',') {
            s = rest;
        } else if !s.starts_with('}') {
            return None;
        }
    }
}

/// A sample value: a float, `NaN`, `+Inf`, `-Inf`.
fn number(s: &str) -> Option<f64> {
    match s {
        "NaN" => Some(f64::NAN),
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        _ => s.parse::<f64>().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_comments_labels_and_escapes() {
        let body = "# HELP vllm:num_requests_running Number of requests.\n\
                    # TYPE vllm:num_requests_running gauge\n\
                    vllm:num_requests_running{model_name=\"m\"} 3.0\n\
                    \n\
                    plain_total 12 1700000000000\n\
                    odd{a=\"x\\\"y\\\\z\\nw\" , b=\"{},=\",} -Inf\n\
                    h_bucket{le=\"+Inf\"} 7 # {trace_id=\"abc\"} 0.5 1.0\n\
                    nan_gauge NaN\n\
                    # EOF\n";
        let e = parse(body);
        assert_eq!(e.bad_count, 0, "{e:?}");
        assert_eq!(e.samples.len(), 5);
        assert_eq!(e.samples[0].name, "vllm:num_requests_running");
        assert_eq!(e.samples[0].labels, [("model_name".into(), "m".into())]);
        assert_eq!(e.samples[0].value, 3.0);
        assert_eq!(e.samples[1].series(), "plain_total");
        assert_eq!(e.samples[1].value, 12.0);
        let odd = &e.samples[2];
        assert_eq!(odd.labels[0].1, "x\"y\\z\nw");
        assert_eq!(odd.labels[1], ("b".into(), "{},=".into()));
        assert_eq!(odd.value, f64::NEG_INFINITY);
        // Escaped again as written: the series name reads back to the same labels.
        let again = parse(&format!("{} 1", odd.series()));
        assert_eq!(again.samples[0].labels, odd.labels);
        assert_eq!(e.samples[3].value, 7.0);
        assert!(e.samples[4].value.is_nan());
    }

    #[test]
    fn lines_that_are_not_samples_are_counted_not_fatal() {
        let e = parse("<html>\nok 1\nname{unterminated=\"x} 2\nname{a=\"1\"} \n9starts_with_digit 1\nx 1 2 3\n");
        assert_eq!(e.samples.len(), 1);
        assert_eq!(e.bad_count, 5);
        assert_eq!(e.bad_lines, [1, 3, 4, 5, 6]);
        assert!(parse("<!doctype html><p>Not found</p>").samples.is_empty());
    }
}
