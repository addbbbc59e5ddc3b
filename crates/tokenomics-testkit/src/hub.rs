//! A mock Hugging Face Hub on loopback, answering the two routes a dataset download uses, the way
//! the Hub does: `GET /api/datasets/{owner}/{name}/revision/{rev}` (the file list and commit) and
//! `GET /datasets/{owner}/{name}/resolve/{rev}/{path}` (the file, with `Range` requests answered
//! 206 and the `ETag`, `X-Repo-Commit` and `Content-Range` headers the download client checks).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use serde_json::json;
use tokenomics_sim::http::{
    error_response, json_response, Handler, HandlerFuture, Server, SimBody,
};

/// Files of one dataset revision.
#[derive(Default, Clone)]
struct Revision {
    commit: String,
    files: Vec<(String, Bytes)>,
}

#[derive(Default)]
struct State {
    /// (repo, revision) → files.
    repos: Mutex<HashMap<(String, String), Revision>>,
    requests: AtomicU64,
    /// Bearer token every request must carry, when set.
    token: Mutex<Option<String>>,
}

struct Hub(Arc<State>);

/// A running mock Hub (stops when dropped).
pub struct MockHub {
    endpoint: String,
    state: Arc<State>,
    _server: Server,
}

impl MockHub {
    /// Serves on a free loopback port (call within a runtime).
    pub async fn start() -> Self {
        let state = Arc::new(State::default());
        let addr: SocketAddr = "127.0.0.1:0".parse().expect("loopback address");
        let server = Server::bind(addr, Arc::new(Hub(state.clone())))
            .await
            .expect("bind a loopback port");
        let endpoint = server.api_base().trim_end_matches("/v1").to_string();
        Self {
            endpoint,
            state,
            _server: server,
        }
    }

    /// The Hub's base URL, for `HF_ENDPOINT`.
    pub fn endpoint(&self) -> String {
        self.endpoint.clone()
    }

    /// Publishes `files` as revision `revision` of dataset `repo` (`owner/name`) at `commit`.
    pub fn publish(&self, repo: &str, revision: &str, commit: &str, files: Vec<(&str, Vec<u8>)>) {
        if let Ok(mut r) = self.state.repos.lock() {
            r.insert(
                (repo.to_string(), revision.to_string()),
                Revision {
                    commit: commit.to_string(),
                    files: files
                        .into_iter()
                        .map(|(n, b)| (n.to_string(), Bytes::from(b)))
                        .collect(),
                },
            );
        }
    }

    /// Every request must carry `Authorization: Bearer {token}` (a gated dataset).
    pub fn require_token(&self, token: &str) {
        if let Ok(mut t) = self.state.token.lock() {
            *t = Some(token.to_string());
        }
    }

    /// Requests answered so far.
    pub fn requests(&self) -> u64 {
        self.state.requests.load(Ordering::SeqCst)
    }
}

fn decode(s: &str) -> String {
    s.replace("%2F", "/").replace("%2f", "/")
}

impl Handler for Hub {
    fn handle(self: Arc<Self>, req: Request<Incoming>) -> HandlerFuture {
        Box::pin(async move {
            let state = &self.0;
            state.requests.fetch_add(1, Ordering::SeqCst);
            let token = state.token.lock().ok().and_then(|t| t.clone());
            if let Some(t) = token {
                let auth = req
                    .headers()
                    .get(http::header::AUTHORIZATION)
                    .and_then(|v| v.to_str().ok());
                if auth != Some(format!("Bearer {t}").as_str()) {
                    return error_response(StatusCode::UNAUTHORIZED, "gated dataset");
                }
            }
            let path = req.uri().path().to_string();
            let repos = state.repos.lock().map(|r| r.clone()).unwrap_or_default();
            // /api/datasets/{owner}/{name}/revision/{rev}
            if let Some(rest) = path.strip_prefix("/api/datasets/") {
                let parts: Vec<&str> = rest.splitn(4, '/').collect();
                if let [owner, name, "revision", rev] = parts.as_slice() {
                    let key = (format!("{owner}/{name}"), decode(rev));
                    return match repos.get(&key) {
                        Some(r) => json_response(
                            StatusCode::OK,
                            &json!({
                                "id": key.0,
                                "sha": r.commit,
                                "siblings": r.files.iter().map(|(n, _)| json!({"rfilename": n})).collect::<Vec<_>>(),
                            }),
                        ),
                        None => error_response(StatusCode::NOT_FOUND, "Repository not found"),
                    };
                }
            }
            // /datasets/{owner}/{name}/resolve/{rev}/{path}
            if let Some(rest) = path.strip_prefix("/datasets/") {
                let parts: Vec<&str> = rest.splitn(5, '/').collect();
                if let [owner, name, "resolve", rev, file] = parts.as_slice() {
                    let key = (format!("{owner}/{name}"), decode(rev));
                    let Some(r) = repos.get(&key) else {
                        return error_response(StatusCode::NOT_FOUND, "Repository not found");
                    };
                    let Some((_, body)) = r.files.iter().find(|(n, _)| n == file) else {
                        return error_response(StatusCode::NOT_FOUND, "Entry not found");
                    };
                    let len = body.len();
                    let (start, end) = req
                        .headers()
                        .get(http::header::RANGE)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.strip_prefix("bytes="))
                        .and_then(|v| v.split_once('-'))
                        .and_then(|(a, b)| {
                            Some((a.parse::<usize>().ok()?, b.parse::<usize>().ok()?))
                        })
                        .map_or((0, len.saturating_sub(1)), |(a, b)| {
                            (a, b.min(len.saturating_sub(1)))
                        });
                    let slice = if len == 0 {
                        Bytes::new()
                    } else {
                        body.slice(start..=end)
                    };
                    let mut resp = Response::new(SimBody::full(slice));
                    *resp.status_mut() = StatusCode::PARTIAL_CONTENT;
                    let h = resp.headers_mut();
                    let etag = format!(
                        "\"{:016x}\"",
                        tokenomics_sim::wire::text_hash(&format!("{}{file}", r.commit))
                    );
                    for (name, value) in [
                        ("etag", etag),
                        ("x-repo-commit", r.commit.clone()),
                        ("content-range", format!("bytes {start}-{end}/{len}")),
                    ] {
                        if let Ok(v) = http::HeaderValue::from_str(&value) {
                            h.insert(name, v);
                        }
                    }
                    return resp;
                }
            }
            error_response(StatusCode::NOT_FOUND, "no such route")
        })
    }
}
