//! What the load tests share: a chat configuration for a scripted server, and running it.

use std::time::Duration;

use tokenomics_bench::load::{Limits, Shape};
use tokenomics_bench::{ChatBenchmark, ChatConfig, Quiet};
use tokenomics_client::{Client, ClientConfig};
use tokenomics_datasets::PromptSource;
use tokenomics_stats::ChatDocument;

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
