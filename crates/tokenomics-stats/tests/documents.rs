//! Result files written by the original Python scripts load into the crate's types unchanged,
//! and files written here round-trip without losing fields.

use std::path::PathBuf;
use tokenomics_stats::{read_json, write_json_atomic, AnyDocument, ChatDocument};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

#[test]
fn original_chat_file_loads_unchanged() {
    let doc: ChatDocument = read_json(&fixture("original_chat.json")).unwrap();
    assert_eq!(doc.metadata.model, "distill-llama-8b");
    assert_eq!(doc.metadata.batch_sizes, vec![1, 8, 64]);
    assert_eq!(doc.metadata.n_cores, 8);
    assert!(doc.metadata.extra.is_empty(), "no unknown fields expected");
    let keys: Vec<&str> = doc.results.keys().map(String::as_str).collect();
    assert_eq!(keys, ["1", "8", "64"], "file order is kept");
    let b64 = &doc.results["64"];
    assert_eq!(
        b64.throughput.batch_tokens_per_second.mean,
        3729.295223546461
    );
    assert_eq!(b64.tokens.output_per_request.std, 3030.1517578348125);
    assert_eq!(b64.timings.fastest_seconds.mean, 5.34426054880023);
    assert!(b64.latency.is_none() && b64.requests.is_none());
}

#[test]
fn original_chat_file_round_trips_to_the_same_json() {
    let path = fixture("original_chat.json");
    let original: serde_json::Value = read_json(&path).unwrap();
    let doc: ChatDocument = read_json(&path).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("again.json");
    write_json_atomic(&out, &doc).unwrap();
    let again: serde_json::Value = read_json(&out).unwrap();
    assert_eq!(original, again);
}

#[test]
fn original_embedding_file_loads_and_round_trips() {
    let path = fixture("original_embed.json");
    let doc: tokenomics_stats::EmbedDocument = read_json(&path).unwrap();
    assert_eq!(
        doc.metadata.sequence_lengths,
        vec![serde_json::json!("short"), serde_json::json!(200)]
    );
    assert!(doc.metadata.concurrent_requests);
    let level = &doc.results["batch_64_seq_200"];
    assert_eq!(level.tokens.embeddings_per_batch.max, Some(64.0));
    assert!(level.latency.is_none());
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("again.json");
    write_json_atomic(&out, &doc).unwrap();
    let original: serde_json::Value = read_json(&path).unwrap();
    let again: serde_json::Value = read_json(&out).unwrap();
    assert_eq!(original, again);
}

#[test]
fn documents_are_recognised_by_shape() {
    let v: serde_json::Value = read_json(&fixture("original_chat.json")).unwrap();
    assert!(matches!(
        AnyDocument::from_value(v).unwrap(),
        AnyDocument::Chat(_)
    ));
    let v: serde_json::Value = read_json(&fixture("original_embed.json")).unwrap();
    assert!(matches!(
        AnyDocument::from_value(v).unwrap(),
        AnyDocument::Embed(_)
    ));
}
