//! Token-exact prompts through a server's tokenize endpoint (the simulator's, on loopback).

use tokenomics_bench::tokenize::{endpoint_prompts, Endpoint};
use tokenomics_datasets::exact::TokenLength;
use tokenomics_datasets::Prompt;
use tokenomics_testkit::{Script, ScriptedServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lengths_are_exact_in_the_servers_tokenizer() {
    let (server, model) = tokenomics_sim::start_local("instant", None, 1.0, 1)
        .await
        .unwrap();
    let ep = Endpoint::find(&server.api_base(), None, &model, &Default::default())
        .await
        .unwrap();
    // vLLM's place for it: beside /v1, not under it.
    assert!(
        ep.url.ends_with("/tokenize") && !ep.url.contains("/v1/"),
        "{}",
        ep.url
    );
    for n in [32u64, 256, 1000] {
        let prompts = endpoint_prompts(&ep, TokenLength::Fixed(n)).await.unwrap();
        assert_eq!(prompts.token_count_source(), "tokenize_endpoint");
        for p in prompts.draw(10, 5) {
            let Prompt::Messages(m) = p else { panic!() };
            // The server's own count, asked again, and its tokenizer run here.
            assert_eq!(ep.count(&m[0].content).await.unwrap() as u64, n);
            assert_eq!(tokenomics_sim::wire::count_tokens(&m[0].content), n);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_without_one_is_named_in_the_error() {
    let server = ScriptedServer::uniform(Script::default()).await;
    let e = Endpoint::find(&server.api_base(), None, "m", &Default::default())
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("/tokenize") && e.contains("/extras/tokenize"),
        "{e}"
    );
}
