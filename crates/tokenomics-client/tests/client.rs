//! The client against scripted loopback servers: models, TLS set-up, timeouts, large events.

use std::time::Duration;

use tokenomics_client::{ChatRequest, Client, ClientConfig, Clock, Endpoint, Message};
use tokenomics_testkit::{Fault, Script, ScriptedServer};

fn chat(stream: bool, max_tokens: u64) -> bytes::Bytes {
    ChatRequest {
        endpoint: Endpoint::Chat,
        model: "test-model".into(),
        messages: vec![Message::new("user", "hello")],
        max_tokens,
        temperature: 0.0,
        stream,
        extra: Default::default(),
    }
    .body()
}

#[tokio::test]
async fn lists_models() {
    let server = ScriptedServer::uniform(Script::default()).await;
    let client = Client::new(ClientConfig::new(server.api_base())).unwrap();
    assert_eq!(
        client.models().await.unwrap(),
        vec!["test-model".to_string()]
    );
}

#[tokio::test]
async fn https_goes_through_tls() {
    // A plain HTTP server behind an https:// URL: the TLS handshake must fail, and say so.
    let server = ScriptedServer::uniform(Script::default()).await;
    let https = server.api_base().replace("http://", "https://");
    let client = Client::new(ClientConfig::new(https)).unwrap();
    let mut conn = client.connection();
    let r = conn
        .completion(Endpoint::Chat, false, chat(false, 2), &Clock::start())
        .await;
    let e = r.error.unwrap();
    assert_eq!(e.kind(), "connect");
    assert!(e.to_string().contains("TLS handshake failed"), "{e}");
    assert_eq!(server.requests(), 0);
}

#[tokio::test]
async fn one_connection_serves_many_requests() {
    let server = ScriptedServer::uniform(Script {
        ttft: Duration::from_millis(1),
        itl: Duration::ZERO,
        ..Script::default()
    })
    .await;
    let client = Client::new(ClientConfig::new(server.api_base())).unwrap();
    let mut conn = client.connection();
    conn.connect().await.unwrap();
    let clock = Clock::start();
    for stream in [true, false, true] {
        let r = conn
            .completion(Endpoint::Chat, stream, chat(stream, 3), &clock)
            .await;
        assert!(r.is_ok(), "{:?}", r.error);
        assert_eq!(
            r.timing.connect_ns, 0,
            "the kept-alive connection was reused"
        );
        assert_eq!(r.completion_tokens, Some(3));
    }
}

#[tokio::test]
async fn timeouts_name_their_stage() {
    let server = ScriptedServer::start(|i, _| Script {
        fault: if i == 0 {
            Fault::DelayHeaders(Duration::from_millis(600))
        } else {
            Fault::StallAfter(2, Duration::from_millis(600))
        },
        ttft: Duration::from_millis(1),
        itl: Duration::from_millis(1),
        ..Script::default()
    })
    .await;
    let mut cfg = ClientConfig::new(server.api_base());
    cfg.timeout = Duration::from_millis(300);
    cfg.idle_timeout = Some(Duration::from_millis(150));
    let client = Client::new(cfg).unwrap();
    let clock = Clock::start();
    let r = client
        .connection()
        .completion(Endpoint::Chat, true, chat(true, 5), &clock)
        .await;
    let e = r.error.unwrap();
    assert_eq!(e.kind(), "timeout");
    assert!(
        e.to_string().contains("waiting for response headers"),
        "{e}"
    );
    let r = client
        .connection()
        .completion(Endpoint::Chat, true, chat(true, 5), &clock)
        .await;
    let e = r.error.unwrap();
    assert!(e.to_string().contains("stream idle"), "{e}");
    assert_eq!(
        r.timing.token_events_ns.len(),
        2,
        "what arrived before the stall is kept"
    );
}

#[tokio::test]
async fn a_one_mebibyte_sse_line_is_read_and_a_bigger_one_refused() {
    let server = ScriptedServer::uniform(Script {
        fault: Fault::HugeLine(1 << 20),
        ttft: Duration::ZERO,
        itl: Duration::ZERO,
        ..Script::default()
    })
    .await;
    let client = Client::new(ClientConfig::new(server.api_base())).unwrap();
    let r = client
        .connection()
        .completion(Endpoint::Chat, true, chat(true, 3), &Clock::start())
        .await;
    assert!(r.is_ok(), "{:?}", r.error);
    assert_eq!(r.completion_tokens, Some(3));

    let mut cfg = ClientConfig::new(server.api_base());
    cfg.max_event_bytes = 64 << 10;
    let small = Client::new(cfg).unwrap();
    let r = small
        .connection()
        .completion(Endpoint::Chat, true, chat(true, 3), &Clock::start())
        .await;
    let e = r.error.unwrap();
    assert_eq!(e.kind(), "bad_stream");
    assert!(e.to_string().contains("exceeds 65536 bytes"), "{e}");
}

/// A bare HTTP/1.1 server that answers one request per connection and then closes the socket
/// *without* announcing it (no `Connection: close`), as servers do when their keep-alive timeout
/// expires between two requests. Returns its base URL and a counter of connections accepted.
async fn closing_server() -> (String, std::sync::Arc<std::sync::atomic::AtomicU64>) {
    use std::sync::atomic::{AtomicU64, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = std::sync::Arc::new(AtomicU64::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65536];
                let mut seen = Vec::new();
                // Read the head and a Content-Length body.
                loop {
                    let n = socket.read(&mut buf).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    seen.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&seen);
                    if let Some(head_end) = text.find("\r\n\r\n") {
                        let len: usize = text[..head_end]
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse().unwrap_or(0))
                            })
                            .unwrap_or(0);
                        if seen.len() >= head_end + 4 + len {
                            break;
                        }
                    }
                }
                let body = r#"{"choices":[{"message":{"content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":1}}"#;
                let resp = format!("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}", body.len());
                let _ = socket.write_all(resp.as_bytes()).await;
                // Close without saying so.
            });
        }
    });
    (format!("http://{addr}/v1"), accepted)
}

#[tokio::test]
async fn a_silently_closed_keep_alive_connection_is_reopened_not_failed() {
    let (api_base, accepted) = closing_server().await;
    let client = Client::new(ClientConfig::new(api_base)).unwrap();
    let mut conn = client.connection();
    let clock = Clock::start();
    for i in 0..5 {
        let r = conn
            .completion(Endpoint::Chat, false, chat(false, 1), &clock)
            .await;
        assert!(r.is_ok(), "request {i}: {:?}", r.error);
        // Give the server's FIN time to arrive, as between two runs of a benchmark.
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    assert_eq!(
        accepted.load(std::sync::atomic::Ordering::SeqCst),
        5,
        "one new connection per request"
    );
}

/// A proxy in front of a server may add kilobytes of headers (cookies, security policies): a
/// response head of 6 KiB is read, not refused as too large (hyper's limit is the read buffer's
/// size, which is why that buffer is 8 KiB and not less).
#[tokio::test]
async fn a_response_head_of_kilobytes_is_read() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        // The request: its head, then as many body bytes as it announces.
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = s.read(&mut buf).await.unwrap();
            got.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&got).to_ascii_lowercase();
            if let Some(end) = text.find("\r\n\r\n") {
                let length: usize = text
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .map_or(0, |v| v.trim().parse().unwrap());
                if got.len() >= end + 4 + length {
                    break;
                }
            }
            assert!(n > 0, "the request ended early");
        }
        let body = r#"{"id":"r1","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}"#;
        let pad = "p".repeat(6 * 1024);
        let head = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nx-proxy-pad: {pad}\r\ncontent-length: {}\r\n\r\n",
            body.len()
        );
        s.write_all(head.as_bytes()).await.unwrap();
        s.write_all(body.as_bytes()).await.unwrap();
        s.flush().await.unwrap();
    });
    let client = Client::new(ClientConfig::new(format!("http://{addr}/v1"))).unwrap();
    let mut conn = client.connection();
    let r = conn
        .completion(Endpoint::Chat, false, chat(false, 1), &Clock::start())
        .await;
    assert!(r.is_ok(), "{:?}", r.error);
    assert_eq!(r.completion_tokens, Some(1));
}
