//! Engines' metric names mapped to the roles every engine shares.
//!
//! Each role lists the names that carry it, engine by engine, in order of preference (where one
//! engine has two names for a role across versions, the newer first). A scrape's value for a
//! role is that of the first name the scrape has, summed over its label sets (an engine per data
//! parallel rank, a model per label) — averaged for a share such as the KV cache usage.

use super::text::Sample;

/// What one role's value is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only grows (until a restart): a level's figure is its increase.
    Counter,
    /// A count now: summed over label sets; a level's figure is its mean and max.
    Gauge,
    /// A share now (0–1): averaged over label sets.
    Share,
}

/// A role and the names that carry it.
#[derive(Debug, Clone, Copy)]
pub struct Role {
    /// The role's name in the documents and the series file (`running`, `kv_usage`, …).
    pub name: &'static str,
    /// Whether its value only grows, counts now, or is a share now.
    pub kind: Kind,
    /// The engines' metric names that carry it, most preferred first; a name may require one
    /// label's value (`name{label="value"}`).
    pub names: &'static [&'static str],
}

/// Requests the engine is running now (a gauge).
pub const RUNNING: usize = 0;
/// Requests waiting in the engine's queue now (a gauge).
pub const WAITING: usize = 1;
/// The share (0–1) of the KV cache in use now.
pub const KV_USAGE: usize = 2;
/// Requests preempted so far (a counter).
pub const PREEMPTIONS: usize = 3;
/// Prompt tokens processed so far (a counter).
pub const PROMPT_TOKENS: usize = 4;
/// Output tokens generated so far (a counter).
pub const GENERATION_TOKENS: usize = 5;
/// Prompt tokens looked up in the prefix cache so far (a counter).
pub const PREFIX_QUERIES: usize = 6;
/// Of those, tokens found in the prefix cache (a counter).
pub const PREFIX_HITS: usize = 7;
/// Draft tokens proposed by speculative decoding so far (a counter).
pub const SPEC_DRAFT_TOKENS: usize = 8;
/// Of those, draft tokens the target model accepted (a counter).
pub const SPEC_ACCEPTED_TOKENS: usize = 9;
/// Requests the engine aborted, their client having gone away (a counter).
pub const ABORTED: usize = 10;

/// Every role, indexed by the constants above.
pub const ROLES: [Role; 11] = [
    Role {
        name: "running",
        kind: Kind::Gauge,
        names: &[
            "vllm:num_requests_running",
            "sglang:num_running_reqs",
            "tgi_batch_current_size",
            "llamacpp:requests_processing",
        ],
    },
    Role {
        name: "waiting",
        kind: Kind::Gauge,
        names: &[
            "vllm:num_requests_waiting",
            "sglang:num_queue_reqs",
            "tgi_queue_size",
            "llamacpp:requests_deferred",
        ],
    },
    Role {
        name: "kv_usage",
        kind: Kind::Share,
        names: &[
            "vllm:kv_cache_usage_perc",
            "vllm:gpu_cache_usage_perc",
            "sglang:token_usage",
            "llamacpp:kv_cache_usage_ratio",
        ],
    },
    Role {
        name: "preemptions",
        kind: Kind::Counter,
        names: &["vllm:num_preemptions_total"],
    },
    Role {
        name: "prompt_tokens",
        kind: Kind::Counter,
        names: &[
            "vllm:prompt_tokens_total",
            "sglang:prompt_tokens_total",
            // TGI counts a request's tokens in a histogram when it ends.
            "tgi_request_input_length_sum",
            "llamacpp:prompt_tokens_total",
        ],
    },
    Role {
        name: "generation_tokens",
        kind: Kind::Counter,
        names: &[
            "vllm:generation_tokens_total",
            "sglang:generation_tokens_total",
            "tgi_request_generated_tokens_sum",
            "llamacpp:tokens_predicted_total",
        ],
    },
    Role {
        name: "prefix_queries",
        kind: Kind::Counter,
        names: &[
            "vllm:prefix_cache_queries_total",
            "vllm:gpu_prefix_cache_queries_total",
        ],
    },
    Role {
        name: "prefix_hits",
        kind: Kind::Counter,
        names: &[
            "vllm:prefix_cache_hits_total",
            "vllm:gpu_prefix_cache_hits_total",
        ],
    },
    Role {
        name: "spec_draft_tokens",
        kind: Kind::Counter,
        names: &["vllm:spec_decode_num_draft_tokens_total"],
    },
    Role {
        name: "spec_accepted_tokens",
        kind: Kind::Counter,
        names: &["vllm:spec_decode_num_accepted_tokens_total"],
    },
    Role {
        name: "aborted",
        kind: Kind::Counter,
        names: &[r#"vllm:request_success_total{finished_reason="abort"}"#],
    },
];

/// One scrape's value for every role (`None`: the scrape has none of the role's names).
pub type Values = [Option<f64>; ROLES.len()];

/// The engine a metric name belongs to, by its prefix.
pub fn engine(name: &str) -> Option<&'static str> {
    [
        ("vllm:", "vllm"),
        ("sglang:", "sglang"),
        ("tgi_", "tgi"),
        ("llamacpp:", "llamacpp"),
    ]
    .into_iter()
    .find(|(prefix, _)| name.starts_with(prefix))
    .map(|(_, engine)| engine)
}

/// Every role's value in a scrape, and the engine of the first role found.
pub fn values(samples: &[Sample]) -> (Values, Option<&'static str>) {
    let mut out: Values = [None; ROLES.len()];
    let mut found = None;
    for (slot, role) in out.iter_mut().zip(&ROLES) {
        for full in role.names {
            // A name may require one label's value: `name{label="value"}`.
            let (name, label) = match full.split_once('{') {
                Some((name, rest)) => (
                    name,
                    rest.trim_end_matches('}')
                        .split_once('=')
                        .map(|(k, v)| (k, v.trim_matches('"'))),
                ),
                None => (*full, None),
            };
            let wanted = |s: &&Sample| {
                s.name == name
                    && label.is_none_or(|(k, v)| s.labels.iter().any(|(lk, lv)| lk == k && lv == v))
            };
            let mut n = 0u32;
            let mut sum = 0.0;
            for s in samples.iter().filter(wanted) {
                n += 1;
                sum += s.value;
            }
            if n > 0 {
                *slot = Some(match role.kind {
                    Kind::Share => sum / f64::from(n),
                    Kind::Counter | Kind::Gauge => sum,
                });
                found = found.or_else(|| engine(name));
                break;
            }
        }
    }
    (out, found)
}

#[cfg(test)]
mod tests {
    use super::super::text::parse;
    use super::*;

    #[test]
    fn each_engine_names_its_roles() {
        let cases = [
            (
                "vllm:num_requests_running{engine=\"0\"} 3\nvllm:num_requests_running{engine=\"1\"} 2\n\
                 vllm:kv_cache_usage_perc{engine=\"0\"} 0.2\nvllm:kv_cache_usage_perc{engine=\"1\"} 0.4\n\
                 vllm:gpu_cache_usage_perc 0.9\nvllm:generation_tokens_total 100\n",
                "vllm",
                [Some(5.0), None, Some((0.2 + 0.4) / 2.0), None, None, Some(100.0)],
            ),
            (
                "sglang:num_running_reqs 4\nsglang:num_queue_reqs 1\nsglang:token_usage 0.5\n\
                 sglang:prompt_tokens_total 10\nsglang:generation_tokens_total 20\n",
                "sglang",
                [Some(4.0), Some(1.0), Some(0.5), None, Some(10.0), Some(20.0)],
            ),
            (
                "tgi_batch_current_size 2\ntgi_queue_size 0\ntgi_request_generated_tokens_sum 64\n",
                "tgi",
                [Some(2.0), Some(0.0), None, None, None, Some(64.0)],
            ),
            (
                "llamacpp:requests_processing 1\nllamacpp:requests_deferred 3\n\
                 llamacpp:kv_cache_usage_ratio 0.25\nllamacpp:tokens_predicted_total 7\n\
                 llamacpp:prompt_tokens_total 9\n",
                "llamacpp",
                [Some(1.0), Some(3.0), Some(0.25), None, Some(9.0), Some(7.0)],
            ),
        ];
        for (body, engine, expected) in cases {
            let (v, found) = values(&parse(body).samples);
            assert_eq!(found, Some(engine));
            assert_eq!(&v[..6], &expected[..], "{engine}");
        }
        let (v, _) = values(
            &parse(
                "vllm:request_success_total{finished_reason=\"stop\",model_name=\"m\"} 7\n\
                 vllm:request_success_total{finished_reason=\"abort\",model_name=\"m\"} 2\n\
                 vllm:request_success_total{finished_reason=\"abort\",model_name=\"n\"} 1\n",
            )
            .samples,
        );
        assert_eq!(v[ABORTED], Some(3.0));
        let (v, found) = values(&parse("process_cpu_seconds_total 1\n").samples);
        assert_eq!((v, found), ([None; ROLES.len()], None));
    }

    #[test]
    fn role_indices_match_their_names() {
        let named = [
            (RUNNING, "running"),
            (WAITING, "waiting"),
            (KV_USAGE, "kv_usage"),
            (PREEMPTIONS, "preemptions"),
            (PROMPT_TOKENS, "prompt_tokens"),
            (GENERATION_TOKENS, "generation_tokens"),
            (PREFIX_QUERIES, "prefix_queries"),
            (PREFIX_HITS, "prefix_hits"),
            (SPEC_DRAFT_TOKENS, "spec_draft_tokens"),
            (SPEC_ACCEPTED_TOKENS, "spec_accepted_tokens"),
            (ABORTED, "aborted"),
        ];
        for (i, name) in named {
            assert_eq!(ROLES[i].name, name);
        }
    }
}
