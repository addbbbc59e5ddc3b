//! Connections opened from chosen local addresses (`ClientConfig::local_addrs`), against loopback
//! servers on 127.0.0.1 (Linux's loopback answers for all of 127.0.0.0/8, so 127.0.0.2 and
//! 127.0.0.3 are addresses of this host).

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokenomics_client::{ChatRequest, Client, ClientConfig, Clock, Endpoint, Message};
use tokenomics_testkit::{Script, ScriptedServer};

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

/// A listener on 127.0.0.1 that accepts connections, keeps them open and records each one's
/// peer address in the order they were accepted. Returns its base URL and the record.
async fn recording_listener() -> (String, Arc<Mutex<Vec<SocketAddr>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let peers = Arc::new(Mutex::new(Vec::new()));
    let seen = peers.clone();
    tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, peer)) = listener.accept().await {
            seen.lock().unwrap().push(peer);
            open.push(socket);
        }
    });
    (format!("http://{addr}/v1"), peers)
}

async fn wait_for(peers: &Mutex<Vec<SocketAddr>>, n: usize) -> Vec<SocketAddr> {
    for _ in 0..500 {
        if peers.lock().unwrap().len() >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    peers.lock().unwrap().clone()
}

#[tokio::test]
async fn connections_alternate_over_the_source_addresses() {
    let (api_base, peers) = recording_listener().await;
    let mut cfg = ClientConfig::new(api_base);
    cfg.local_addrs = vec![ip("127.0.0.2"), ip("127.0.0.3")];
    let client = Client::new(cfg).unwrap();
    let mut conns = Vec::new();
    for _ in 0..8 {
        let mut conn = client.connection();
        conn.connect().await.unwrap();
        conns.push(conn);
    }
    let peers = wait_for(&peers, 8).await;
    let sources: Vec<String> = peers.iter().map(|p| p.ip().to_string()).collect();
    assert_eq!(
        sources,
        [
            "127.0.0.2",
            "127.0.0.3",
            "127.0.0.2",
            "127.0.0.3",
            "127.0.0.2",
            "127.0.0.3",
            "127.0.0.2",
            "127.0.0.3"
        ],
        "connected one after another, so accepted in the same order"
    );
    // The ports were the kernel's choice, and all different from one address.
    let mut ports: Vec<u16> = peers.iter().map(SocketAddr::port).collect();
    ports.sort_unstable();
    ports.dedup();
    assert!(peers.iter().all(|p| p.port() != 0));
    assert!(ports.len() >= 4);
}

#[tokio::test]
async fn without_source_addresses_the_kernel_chooses() {
    let (api_base, peers) = recording_listener().await;
    let client = Client::new(ClientConfig::new(api_base)).unwrap();
    let mut conn = client.connection();
    conn.connect().await.unwrap();
    let peers = wait_for(&peers, 1).await;
    assert_eq!(peers[0].ip(), ip("127.0.0.1"));
}

#[tokio::test]
async fn requests_stream_from_a_source_address() {
    let server = ScriptedServer::uniform(Script {
        ttft: Duration::from_millis(1),
        itl: Duration::ZERO,
        ..Script::default()
    })
    .await;
    let mut cfg = ClientConfig::new(server.api_base());
    cfg.local_addrs = vec![ip("127.0.0.4")];
    let client = Client::new(cfg).unwrap();
    let body = ChatRequest {
        endpoint: Endpoint::Chat,
        model: "test-model".into(),
        messages: vec![Message::new("user", "hello")],
        max_tokens: 3,
        temperature: 0.0,
        stream: true,
        extra: Default::default(),
    }
    .body();
    let r = client
        .connection()
        .completion(Endpoint::Chat, true, body, &Clock::start())
        .await;
    assert!(r.is_ok(), "{:?}", r.error);
    assert_eq!(r.completion_tokens, Some(3));
}

#[tokio::test]
async fn an_address_not_on_this_host_is_named() {
    let (api_base, peers) = recording_listener().await;
    let mut cfg = ClientConfig::new(api_base);
    // TEST-NET-1 (RFC 5737): never assigned to a host.
    cfg.local_addrs = vec![ip("192.0.2.1")];
    let client = Client::new(cfg).unwrap();
    let e = client.connection().connect().await.unwrap_err();
    assert_eq!(e.kind(), "connect");
    let text = e.to_string();
    assert!(text.contains("source address 192.0.2.1"), "{text}");
    assert!(text.contains("bind"), "{text}");
    assert!(peers.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_source_address_of_the_other_family_is_refused_clearly() {
    let (api_base, peers) = recording_listener().await;
    let mut cfg = ClientConfig::new(api_base);
    cfg.local_addrs = vec![ip("::1")];
    let client = Client::new(cfg).unwrap();
    let e = client.connection().connect().await.unwrap_err();
    assert_eq!(e.kind(), "connect");
    let text = e.to_string();
    assert!(
        text.contains("source address ::1 is IPv6") && text.contains("only IPv4"),
        "{text}"
    );
    assert!(peers.lock().unwrap().is_empty());
}
