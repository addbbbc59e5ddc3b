//! Hub datasets and tokenizers against a mock Hub on loopback that serves files the way the Hub
//! does, and against a closed loopback port (a Hub that cannot be reached). Nothing here reaches
//! the internet.
#![cfg(feature = "hub")]

use std::sync::Arc;

use tokenomics_datasets::hub::{model_tokenizer, HubConfig};
use tokenomics_datasets::{Error, Prompt, PromptSource};
use tokenomics_testkit::MockHub;

const AIME_REPO: &str = "gneubig/aime-1983-2024";

/// An AIME-shaped CSV: the real file's columns, quoting, commas and newlines inside questions.
fn aime_csv() -> Vec<u8> {
    let mut s = String::from("ID,Year,Problem Number,Question,Answer,Part\n");
    for i in 1..=5 {
        s.push_str(&format!(
            "1983-I-{i},1983,{i},\"Problem {i}: find x, given that\nx = {i} \"\"squared\"\".\",{},\n",
            i * i
        ));
    }
    s.into_bytes()
}

/// A Parquet file with a `Question` text column and a `Year` number column (snappy, as the Hub
/// writes its conversions).
fn parquet_file(questions: &[&str]) -> Vec<u8> {
    use parquet::basic::Compression;
    use parquet::data_type::{ByteArray, ByteArrayType, Int32Type};
    use parquet::file::properties::WriterProperties;
    use parquet::file::writer::SerializedFileWriter;
    use parquet::schema::parser::parse_message_type;
    let schema = Arc::new(
        parse_message_type(
            "message schema { REQUIRED INT32 Year; REQUIRED BYTE_ARRAY Question (UTF8); }",
        )
        .unwrap(),
    );
    let props = Arc::new(
        WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .build(),
    );
    let mut buf = Vec::new();
    let mut writer = SerializedFileWriter::new(&mut buf, schema, props).unwrap();
    let mut rg = writer.next_row_group().unwrap();
    let mut col = rg.next_column().unwrap().unwrap();
    let years: Vec<i32> = (0..questions.len() as i32).map(|i| 2000 + i).collect();
    col.typed::<Int32Type>()
        .write_batch(&years, None, None)
        .unwrap();
    col.close().unwrap();
    let mut col = rg.next_column().unwrap().unwrap();
    let values: Vec<ByteArray> = questions.iter().map(|q| ByteArray::from(*q)).collect();
    col.typed::<ByteArrayType>()
        .write_batch(&values, None, None)
        .unwrap();
    col.close().unwrap();
    rg.close().unwrap();
    writer.close().unwrap();
    buf
}

fn config(hub: &MockHub, cache: &std::path::Path) -> HubConfig {
    HubConfig {
        endpoint: hub.endpoint(),
        cache_dir: cache.join("hub"),
        token: None,
        offline: false,
    }
}

/// Waits until nothing listens at `endpoint` any more: a dropped mock Hub stops its accept loop
/// from another task, so a request sent at once could still be served.
async fn refuses_connections(endpoint: &str) {
    let addr = endpoint.trim_start_matches("http://").to_string();
    for _ in 0..500 {
        if tokio::net::TcpStream::connect(&addr).await.is_err() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("the mock Hub at {endpoint} still accepts connections after 5 s");
}

fn texts(p: &PromptSource, n: usize, seed: u64) -> Vec<String> {
    p.draw(n, seed)
        .into_iter()
        .map(|p| match p {
            Prompt::Text(t) => t,
            Prompt::Messages(_) => panic!("text expected"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aime_loads_shuffles_repeats_caches_and_works_offline() {
    let hub = MockHub::start().await;
    hub.publish(
        AIME_REPO,
        "main",
        "c0ffee0000000000000000000000000000000001",
        vec![
            ("README.md", b"# AIME".to_vec()),
            ("AIME_Dataset_1983_2024.csv", aime_csv()),
        ],
    );
    let cache = tempfile::tempdir().unwrap();
    let cfg = config(&hub, cache.path());
    let (aime, note) = PromptSource::open("aime", None, None, &cfg).await.unwrap();
    assert!(note.is_none());
    let d = aime.describe();
    assert_eq!(d["rows"], 5);
    assert_eq!(d["source"]["kind"], "hub");
    assert_eq!(d["source"]["repo"], AIME_REPO);
    assert_eq!(d["source"]["split"], "train");
    assert_eq!(d["source"]["column"], "Question");
    assert_eq!(
        d["source"]["commit"],
        "c0ffee0000000000000000000000000000000001"
    );
    assert_eq!(d["source"]["files"][0], "AIME_Dataset_1983_2024.csv");
    // Every row, quoted commas and newlines intact.
    let mut all = texts(&aime, 5, 1);
    all.sort();
    assert_eq!(all[0], "Problem 1: find x, given that\nx = 1 \"squared\".");
    assert_eq!(all.len(), 5);
    // A seeded shuffle: the same seed gives the same order, another seed another one; a batch
    // larger than the dataset repeats the shuffled order.
    assert_eq!(texts(&aime, 5, 42), texts(&aime, 5, 42));
    assert_ne!(texts(&aime, 5, 42), texts(&aime, 5, 43));
    let twelve = texts(&aime, 12, 42);
    assert_eq!(twelve[..5], twelve[5..10]);
    assert_eq!(twelve[..2], twelve[10..12]);
    // The standard cache layout, so Python's huggingface_hub finds the same files.
    let folder = cache.path().join("hub/datasets--gneubig--aime-1983-2024");
    assert!(folder.join("refs/main").exists());
    assert!(folder
        .join("snapshots/c0ffee0000000000000000000000000000000001/AIME_Dataset_1983_2024.csv")
        .exists());

    // A second run lists the files again but downloads nothing.
    let before = hub.requests();
    PromptSource::open("aime", None, None, &cfg).await.unwrap();
    assert_eq!(hub.requests(), before + 1);
    // Offline: not one request.
    let offline = HubConfig {
        offline: true,
        ..cfg.clone()
    };
    let before = hub.requests();
    let (cached, note) = PromptSource::open("aime", None, None, &offline)
        .await
        .unwrap();
    assert_eq!(hub.requests(), before);
    assert!(note.is_none());
    assert_eq!(texts(&cached, 5, 42), texts(&aime, 5, 42));
    // The Hub gone: the cache stands in, and says so.
    let endpoint = hub.endpoint();
    drop(hub);
    refuses_connections(&endpoint).await;
    let (cached, note) = PromptSource::open("aime", None, None, &cfg).await.unwrap();
    assert!(note.unwrap().contains("cannot be reached"));
    assert_eq!(cached.describe()["rows"], 5);
    // Offline with an empty cache: a clear error.
    let empty = tempfile::tempdir().unwrap();
    let err = PromptSource::open(
        "aime",
        None,
        None,
        &HubConfig {
            endpoint,
            cache_dir: empty.path().join("hub"),
            token: None,
            offline: true,
        },
    )
    .await
    .err()
    .unwrap();
    assert!(
        matches!(err, Error::HubUnreachable(_)) && !err.is_bad_input(),
        "{err}"
    );
    let err = err.to_string();
    assert!(
        err.contains(AIME_REPO) && err.contains("HF_HUB_OFFLINE"),
        "{err}"
    );
}

#[cfg(feature = "parquet")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parquet_splits_columns_and_the_parquet_conversion() {
    let hub = MockHub::start().await;
    hub.publish(
        "someone/math",
        "main",
        "1111111111111111111111111111111111111111",
        vec![
            ("README.md", b"x".to_vec()),
            (
                "data/train-00000-of-00001.parquet",
                parquet_file(&["t1", "t2", "t3"]),
            ),
            (
                "data/test-00000-of-00001.parquet",
                parquet_file(&["q1", "q2"]),
            ),
        ],
    );
    let cache = tempfile::tempdir().unwrap();
    let cfg = config(&hub, cache.path());
    let (test, _) = PromptSource::open("hf:someone/math", Some("test"), Some("Question"), &cfg)
        .await
        .unwrap();
    let mut rows = texts(&test, 2, 0);
    rows.sort();
    assert_eq!(rows, ["q1", "q2"]);
    assert_eq!(test.describe()["source"]["format"], "parquet");
    // The column is found by name when not given.
    let (train, _) = PromptSource::open("hf:someone/math", None, None, &cfg)
        .await
        .unwrap();
    assert_eq!(train.describe()["rows"], 3);
    assert_eq!(train.describe()["source"]["column"], "Question");

    // A dataset in a format nobody reads, but converted to Parquet by the Hub.
    hub.publish(
        "someone/odd",
        "main",
        "2222222222222222222222222222222222222222",
        vec![("README.md", b"x".to_vec()), ("data.xml", b"<x/>".to_vec())],
    );
    hub.publish(
        "someone/odd",
        "refs/convert/parquet",
        "3333333333333333333333333333333333333333",
        vec![("default/train/0000.parquet", parquet_file(&["c1"]))],
    );
    let (odd, _) = PromptSource::open("hf:someone/odd", None, None, &cfg)
        .await
        .unwrap();
    assert_eq!(texts(&odd, 1, 0), ["c1"]);
    assert_eq!(odd.describe()["source"]["revision"], "refs/convert/parquet");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_name_the_dataset_and_the_column() {
    let hub = MockHub::start().await;
    hub.publish(
        AIME_REPO,
        "main",
        "4444444444444444444444444444444444444444",
        vec![("AIME_Dataset_1983_2024.csv", aime_csv())],
    );
    let cache = tempfile::tempdir().unwrap();
    let cfg = config(&hub, cache.path());
    // Every one of these is the user's input: the Hub answered.
    let err = |r: Result<(PromptSource, Option<String>), Error>| {
        let e = r.expect_err("an error");
        assert!(e.is_bad_input(), "{e:?}");
        e.to_string()
    };
    let e = err(PromptSource::open("hf:nobody/nothing", None, None, &cfg).await);
    assert!(
        e.contains("nobody/nothing") && e.contains("not found"),
        "{e}"
    );
    let e = err(PromptSource::open("aime", None, Some("Nope"), &cfg).await);
    assert!(
        e.contains(AIME_REPO) && e.contains("\"Nope\"") && e.contains("Question"),
        "{e}"
    );
    let e = err(PromptSource::open("aime", Some("validation"), None, &cfg).await);
    assert!(e.contains("validation"), "{e}");
    let e = err(PromptSource::open("hf:no-slash", None, None, &cfg).await);
    assert!(e.contains("unknown dataset key"), "{e}");
    // A gated dataset: refused without a token, read with one.
    hub.require_token("hf_secret");
    let e = err(PromptSource::open("hf:gneubig/aime-1983-2024", None, None, &cfg).await);
    assert!(e.contains("HF_TOKEN"), "{e}");
    let with_token = HubConfig {
        token: Some("hf_secret".into()),
        ..cfg.clone()
    };
    let (ok, _) = PromptSource::open("aime", None, None, &with_token)
        .await
        .unwrap();
    assert_eq!(ok.describe()["rows"], 5);
}

/// A Hub base URL on a loopback port that nothing listens on.
fn closed_endpoint() -> String {
    tokenomics_testkit::refused_api_base()
        .trim_end_matches("/v1")
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_hub_is_not_bad_input_for_datasets_and_tokenizers_alike() {
    let empty = tempfile::tempdir().unwrap();
    let closed = HubConfig {
        endpoint: closed_endpoint(),
        cache_dir: empty.path().join("hub"),
        token: None,
        offline: false,
    };
    let offline = HubConfig {
        offline: true,
        ..closed.clone()
    };
    for cfg in [&closed, &offline] {
        let why = if cfg.offline {
            "HF_HUB_OFFLINE is set".to_string()
        } else {
            format!("the Hub at {} cannot be reached", cfg.endpoint)
        };
        for key in ["aime", "hf:someone/math"] {
            let e = PromptSource::open(key, None, None, cfg)
                .await
                .err()
                .unwrap();
            assert!(matches!(e, Error::HubUnreachable(_)), "{key}: {e:?}");
            assert!(!e.is_bad_input(), "{key}: {e}");
            let m = e.to_string();
            assert!(m.contains(&why), "{m}");
            assert!(
                m.contains("not in the cache")
                    && m.contains(&empty.path().join("hub").display().to_string()),
                "{m}"
            );
            assert!(
                m.contains("use --dataset_key synthetic (or file:PATH) to run without the Hub"),
                "{m}"
            );
        }
        let e = model_tokenizer("someone/model", cfg).await.unwrap_err();
        assert!(matches!(e, Error::HubUnreachable(_)), "{e:?}");
        assert!(!e.is_bad_input(), "{e}");
        let m = e.to_string();
        assert!(
            m.contains("model someone/model") && m.contains(&why) && m.contains("tokenizer.json"),
            "{m}"
        );
        assert!(
            m.contains(
                "give --tokenizer PATH/TO/tokenizer.json, or leave --tokenizer out to count with \
                 the server's tokenize endpoint"
            ),
            "{m}"
        );
        assert_eq!(m.lines().count(), 1, "one line: {m}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_the_hub_does_not_have_is_bad_input_for_datasets_and_tokenizers_alike() {
    let hub = MockHub::start().await;
    hub.publish(
        "someone/math",
        "main",
        "6666666666666666666666666666666666666666",
        vec![(
            "data/train.jsonl",
            b"{\"Year\": 2000, \"Question\": \"t1\"}\n".to_vec(),
        )],
    );
    let cache = tempfile::tempdir().unwrap();
    let cfg = config(&hub, cache.path());
    let e = PromptSource::open("hf:nobody/nothing", None, None, &cfg)
        .await
        .err()
        .unwrap();
    assert!(
        matches!(e, Error::HubNotFound { .. }) && e.is_bad_input(),
        "{e:?}"
    );
    let e = PromptSource::open("hf:someone/math", Some("test"), None, &cfg)
        .await
        .err()
        .unwrap();
    assert!(
        matches!(e, Error::HubNotFound { .. }) && e.is_bad_input(),
        "{e:?}"
    );
    assert!(e.to_string().contains("split \"test\""), "{e}");
    let e = PromptSource::open("hf:someone/math", None, Some("Year"), &cfg)
        .await
        .err()
        .unwrap();
    assert!(
        matches!(e, Error::DatasetColumn { .. }) && e.is_bad_input(),
        "{e:?}"
    );
    // The mock Hub has no models: a tokenizer it does not have.
    let e = model_tokenizer("nobody/model", &cfg).await.unwrap_err();
    assert!(
        matches!(e, Error::HubNotFound { .. }) && e.is_bad_input(),
        "{e:?}"
    );
    let m = e.to_string();
    assert!(
        m.contains("model nobody/model") && m.contains("no tokenizer.json"),
        "{m}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cached_tokenizer_is_found_without_the_hub() {
    let home = tempfile::tempdir().unwrap();
    // The standard cache layout, as huggingface_hub leaves it.
    let commit = "7777777777777777777777777777777777777777";
    let folder = home.path().join("hub/models--someone--model");
    std::fs::create_dir_all(folder.join("refs")).unwrap();
    std::fs::write(folder.join("refs/main"), commit).unwrap();
    let snapshot = folder.join("snapshots").join(commit);
    std::fs::create_dir_all(&snapshot).unwrap();
    std::fs::write(snapshot.join("tokenizer.json"), "{}").unwrap();
    for offline in [true, false] {
        let cfg = HubConfig {
            endpoint: closed_endpoint(),
            cache_dir: home.path().join("hub"),
            token: None,
            offline,
        };
        let path = model_tokenizer("someone/model", &cfg).await.unwrap();
        assert_eq!(path, snapshot.join("tokenizer.json"));
    }
}

/// A build with the Hub but without Parquet reads another format of a split when there is one,
/// and says what it lacks when there is none.
#[cfg(not(feature = "parquet"))]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_parquet_feature_parquet_splits_are_a_clear_error() {
    let hub = MockHub::start().await;
    hub.publish(
        "someone/math",
        "main",
        "8888888888888888888888888888888888888888",
        vec![
            ("data/train-00000-of-00001.parquet", parquet_file(&["t1"])),
            ("data/train.csv", b"Question\nc1\n".to_vec()),
            ("data/test-00000-of-00001.parquet", parquet_file(&["q1"])),
        ],
    );
    let cache = tempfile::tempdir().unwrap();
    let cfg = config(&hub, cache.path());
    let (train, _) = PromptSource::open("hf:someone/math", None, None, &cfg)
        .await
        .unwrap();
    assert_eq!(texts(&train, 1, 0), ["c1"]);
    let e = PromptSource::open("hf:someone/math", Some("test"), None, &cfg)
        .await
        .err()
        .unwrap();
    assert!(
        matches!(e, Error::Unsupported(tokenomics_datasets::Feature::Parquet)),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        "this build has no Parquet support (feature `parquet`)"
    );
}
