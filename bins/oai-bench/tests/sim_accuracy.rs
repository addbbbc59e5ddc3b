//! The simulator as an oracle: `oai-bench`'s streaming client at concurrency 256 against
//! `oai-sim`, request by request against the simulator's truth log. Alone in its test binary so
//! no other test competes for the CPU while it measures.

use serde_json::{json, Map};
use tokenomics_bench::{ChatBenchmark, ChatConfig, Observer};
use tokenomics_client::{Client, ClientConfig, Endpoint, RequestRecord};
use tokenomics_datasets::{run_seed, Prompt, PromptSource};
use tokenomics_sim::{wire, SimConfig};
use tokenomics_stats::Summary;

#[derive(Default)]
struct Records(Vec<RequestRecord>);
impl Observer for Records {
    fn request_done(&mut self, _: &str, _: usize, record: &RequestRecord) {
        self.0.push(record.clone());
    }
}

// One client worker and one server worker: on a two-core machine, client and server each get a
// core, as they would on two machines. (Three busy threads on two cores would measure the
// operating system's time slices, not the client.)
#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn streaming_at_concurrency_256_matches_the_truth_log() {
    let mut sim_cfg = SimConfig::preset("h100-llama-3.1-8b").unwrap();
    sim_cfg.trace = true;
    let tokenomics_testkit::SimThread { api_base, sim, .. } =
        tokenomics_testkit::start_sim_thread(sim_cfg);
    let mut extra_body = Map::new();
    extra_body.insert("ignore_eos".into(), json!(true));
    let config = ChatConfig {
        model: "llama-3.1-8b".into(),
        dataset_key: "synthetic".into(),
        api_base: api_base.clone(),
        batch_sizes: vec![256],
        num_runs: 1,
        warmup_runs: 0,
        max_tokens: 24,
        temperature: 0.5,
        seed: 7,
        n_cores: 1,
        description: String::new(),
        endpoint: Endpoint::Chat,
        stream: true,
        results_file: None,
        requests_file: None,
        timeout_seconds: 60.0,
        extra_body,
        simulated: None,
        ..ChatConfig::default()
    };
    let client = Client::new(ClientConfig::new(&api_base)).unwrap();
    let mut bench =
        ChatBenchmark::new(config, client, PromptSource::from_key("synthetic").unwrap());
    let clock = bench.clock();
    let mut records = Records::default();
    let doc = bench.run(&mut records).await.unwrap();
    assert_eq!(doc.results["256"].requests.as_ref().unwrap().succeeded, 256);
    assert_eq!(sim.peak_in_flight(), 256);

    // Server-side times are nanoseconds since the simulator started; move them to the client's
    // clock (both are the process's monotonic clock).
    let (started, origin) = (sim.started(), clock.origin());
    let offset = if started >= origin {
        (started - origin).as_nanos() as i64
    } else {
        -((origin - started).as_nanos() as i64)
    };
    let truth = sim.trace();
    let prompts = PromptSource::from_key("synthetic")
        .unwrap()
        .draw(256, run_seed(7, 256, 0));
    let (mut ttft_err, mut itl_err, mut stamp_err) = (Vec::new(), Vec::new(), Vec::new());
    for (record, prompt) in records.0.iter().zip(&prompts) {
        let Prompt::Text(text) = prompt else {
            unreachable!()
        };
        let t = truth
            .iter()
            .find(|t| t.prompt_hash == wire::text_hash(text))
            .expect("the simulator saw this prompt");
        assert_eq!(t.token_ns.len(), 24, "ignore_eos forces max_tokens");
        assert_eq!(record.timing.token_events_ns.len(), 24);
        assert_eq!(record.completion_tokens, Some(24));
        let server_first = t.token_ns[0] as i64 + offset;
        let true_ttft = (server_first - record.timing.send_ns as i64) as f64 / 1e6;
        ttft_err.push((record.timing.ttft_s().unwrap() * 1e3 - true_ttft).abs());
        let server_itl = (t.token_ns[23] - t.token_ns[0]) as f64 / 23.0 / 1e6;
        let ev = &record.timing.token_events_ns;
        let client_itl = (ev[23] - ev[0]) as f64 / 23.0 / 1e6;
        itl_err.push((client_itl - server_itl).abs());
        for (c, s) in ev.iter().zip(&t.token_ns) {
            stamp_err.push((*c as i64 - (*s as i64 + offset)) as f64 / 1e6);
        }
    }
    let (ttft, itl, stamp) = (
        Summary::new(ttft_err),
        Summary::new(itl_err),
        Summary::new(stamp_err),
    );
    eprintln!(
        "per-request |error| p99: ttft {:.3} ms, itl {:.3} ms; per-event stamp delay p50 {:.3} ms, p99 {:.3} ms",
        ttft.percentile(99.0), itl.percentile(99.0), stamp.percentile(50.0), stamp.percentile(99.0)
    );
    assert!(
        stamp.min() >= 0.0,
        "no token is stamped before the server sent it: {} ms",
        stamp.min()
    );
    assert!(
        itl.percentile(99.0) < 1.0,
        "p99 per-request ITL error {} ms",
        itl.percentile(99.0)
    );
    // The same 1 ms for TTFT. Bytes are stamped with the kernel's arrival time (SO_TIMESTAMPNS),
    // so a wave of ~200 first tokens written at the end of a prefill step is stamped as it
    // arrived, not as the one client worker gets round to each socket (which put the p99 at
    // 1.2–2.4 ms when bytes were stamped on reading).
    assert!(
        ttft.percentile(99.0) < 1.0,
        "p99 per-request TTFT error {} ms",
        ttft.percentile(99.0)
    );
}
