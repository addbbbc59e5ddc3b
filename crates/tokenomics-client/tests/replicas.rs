//! A client over several replicas: where each request goes, connections kept alive to each,
//! and the least-loaded choice under unequal servers.

use std::time::Duration;

use tokenomics_client::{Balance, ChatRequest, Client, ClientConfig, Clock, Endpoint, Message};
use tokenomics_testkit::{Script, ScriptedServer};

fn chat() -> bytes::Bytes {
    ChatRequest {
        endpoint: Endpoint::Chat,
        model: "test-model".into(),
        messages: vec![Message::new("user", "hello")],
        max_tokens: 3,
        temperature: 0.0,
        stream: true,
        extra: Default::default(),
    }
    .body()
}

fn fast() -> Script {
    Script {
        ttft: Duration::from_millis(1),
        itl: Duration::ZERO,
        ..Script::default()
    }
}

fn client(servers: &[&ScriptedServer], balance: Balance) -> Client {
    let mut cfg = ClientConfig::new(servers[0].api_base());
    cfg.replicas = servers[1..].iter().map(|s| s.api_base()).collect();
    cfg.balance = balance;
    Client::new(cfg).unwrap()
}

#[tokio::test]
async fn round_robin_takes_each_replica_in_turn_on_one_connection_handle() {
    let (a, b, c) = (
        ScriptedServer::uniform(fast()).await,
        ScriptedServer::uniform(fast()).await,
        ScriptedServer::uniform(fast()).await,
    );
    let client = client(&[&a, &b, &c], Balance::RoundRobin);
    assert_eq!(
        client.api_bases(),
        vec![a.api_base(), b.api_base(), c.api_base()]
    );
    let mut conn = client.connection();
    conn.connect().await.unwrap();
    let clock = Clock::start();
    let mut replicas = Vec::new();
    for _ in 0..9 {
        let r = conn.completion(Endpoint::Chat, true, chat(), &clock).await;
        assert!(r.is_ok(), "{:?}", r.error);
        assert_eq!(r.completion_tokens, Some(3));
        // Kept alive: no connection was opened inside a request.
        assert_eq!(r.timing.connect_ns, 0, "request {}", replicas.len());
        replicas.push(r.replica);
    }
    assert_eq!(replicas, [0, 1, 2, 0, 1, 2, 0, 1, 2]);
    assert_eq!((a.requests(), b.requests(), c.requests()), (3, 3, 3));
    assert_eq!(client.in_flight(), vec![0, 0, 0]);
}

#[tokio::test]
async fn least_loaded_sends_fewer_requests_to_a_slower_replica() {
    // Replica 0 takes 10 times longer per request; 8 workers keep requests going for a while.
    let slow = ScriptedServer::uniform(Script {
        ttft: Duration::from_millis(100),
        itl: Duration::ZERO,
        ..Script::default()
    })
    .await;
    let quick = ScriptedServer::uniform(Script {
        ttft: Duration::from_millis(10),
        itl: Duration::ZERO,
        ..Script::default()
    })
    .await;
    let client = client(&[&slow, &quick], Balance::LeastLoaded);
    let clock = Clock::start();
    let mut workers = Vec::new();
    for _ in 0..8 {
        let (client, clock) = (client.clone(), clock);
        workers.push(tokio::spawn(async move {
            let mut conn = client.connection();
            let mut n = [0u64; 2];
            for _ in 0..12 {
                let r = conn.completion(Endpoint::Chat, true, chat(), &clock).await;
                assert!(r.is_ok(), "{:?}", r.error);
                n[r.replica] += 1;
            }
            n
        }));
    }
    let mut n = [0u64; 2];
    for w in workers {
        let got = w.await.unwrap();
        n[0] += got[0];
        n[1] += got[1];
    }
    assert_eq!(n[0] + n[1], 96);
    assert_eq!((slow.requests(), quick.requests()), (n[0], n[1]));
    // Equal in flight means requests in proportion to speed: about 1 in 11 to the slow one
    // (round robin would give it half). A wide margin: timings on a shared machine vary.
    assert!(n[0] < 96 / 4, "slow replica got {} of 96", n[0]);
    assert_eq!(client.in_flight(), vec![0, 0]);
}

#[tokio::test]
async fn a_bad_replica_url_is_refused_with_the_client() {
    let mut cfg = ClientConfig::new("http://127.0.0.1:1/v1");
    cfg.replicas = vec!["ftp://example/v1".into()];
    let e = Client::new(cfg).unwrap_err();
    assert!(e.to_string().contains("ftp://example/v1"), "{e}");
}

#[tokio::test]
async fn a_replica_alone_is_a_client_of_its_own() {
    let (a, b) = (
        ScriptedServer::uniform(fast()).await,
        ScriptedServer::uniform(fast()).await,
    );
    let client = client(&[&a, &b], Balance::RoundRobin);
    let second = client.replica(1).unwrap().unwrap();
    assert_eq!(second.api_bases(), vec![b.api_base()]);
    assert_eq!(
        second.models().await.unwrap(),
        vec!["test-model".to_string()]
    );
    assert_eq!((a.requests(), b.requests()), (0, 0));
    assert!(client.replica(2).is_none());
    assert_eq!(
        "least_loaded".parse::<Balance>().unwrap(),
        Balance::LeastLoaded
    );
    assert!("random".parse::<Balance>().is_err());
}
