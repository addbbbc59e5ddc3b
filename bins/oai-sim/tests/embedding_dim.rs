//! `--embedding_dim` sets the length of the vectors the simulator's `/v1/embeddings` returns.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};

/// Kills the simulator when the test ends, passed or not.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn vectors_have_the_asked_length() {
    let child = Command::new(env!("CARGO_BIN_EXE_oai-sim"))
        .args(["--preset", "instant", "--port", "0", "--embedding_dim", "3"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("oai-sim starts");
    let mut sim = Killed(child);
    let mut line = String::new();
    BufReader::new(sim.0.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("the start-up line");
    // "oai-sim: preset instant, serving model \"instant\" at http://127.0.0.1:PORT/v1 (…)"
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_else(|| panic!("no address in {line:?}"));
    let body = r#"{"model":"instant","input":["one","two words"]}"#;
    let mut stream = TcpStream::connect(addr).expect("connect");
    write!(
        stream,
        "POST /v1/embeddings HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    let (head, json) = response.split_once("\r\n\r\n").expect("a head and a body");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let v: serde_json::Value = serde_json::from_str(json).expect("a JSON body");
    let lengths: Vec<usize> = v["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|d| d["embedding"].as_array().map_or(0, Vec::len))
        .collect();
    assert_eq!(lengths, vec![3, 3], "{json}");
}
