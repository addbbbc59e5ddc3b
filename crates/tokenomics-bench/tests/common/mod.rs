//! What the load tests share: a chat configuration for a scripted server, running it, and
//! reading the document's `extra` blocks.

use std::time::Duration;

use serde_json::Value;
use tokenomics_bench::load::{Limits, Shape};
use tokenomics_bench::{ChatBenchmark, ChatConfig, Quiet};
use tokenomics_client::{Client, ClientConfig};
use tokenomics_datasets::PromptSource;
use tokenomics_stats::{ChatDocument, Distribution};

pub fn config(api_base: &str, levels: Vec<Shape>, limits: Limits, stream: bool) -> ChatConfig {
    ChatConfig {
        model: "test-model".into(),
        dataset_key: "synthetic".into(),
        api_base: api_base.into(),
        num_runs: 1,
        warmup_runs: 0,
        max_tokens: 10,
        stream,
        levels,
        limits,
        ..ChatConfig::default()
    }
}

pub async fn run(cfg: ChatConfig) -> ChatDocument {
    let mut c = ClientConfig::new(&cfg.api_base);
    c.timeout = Duration::from_secs(30);
    let client = Client::new(c).unwrap();
    let mut bench = ChatBenchmark::new(cfg, client, PromptSource::from_key("synthetic").unwrap());
    bench.run(&mut Quiet).await.unwrap()
}

pub fn at<'a>(v: &'a serde_json::Map<String, Value>, path: &str) -> &'a Value {
    let mut parts = path.split('/');
    let mut cur = &v[parts.next().unwrap()];
    for p in parts {
        cur = &cur[p];
    }
    cur
}

pub fn dist(v: &Value) -> Distribution {
    serde_json::from_value(v.clone()).unwrap()
}
