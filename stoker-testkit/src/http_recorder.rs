//! An HTTP endpoint on loopback that records every request it receives (method, path,
//! headers, body) and answers what the test scripts: a status (with `Retry-After` if asked),
//! or nothing at all (the request hangs until the server is dropped). Stands in for Slack,
//! Teams, PagerDuty or any webhook receiver.
//!
//! Tests wait for requests with a bounded wait on a channel ([`RecordingServer::wait_for`]),
//! never by sleeping.
//!
//! ```no_run
//! # async fn demo() {
//! use stoker_testkit::http_recorder::{RecordingServer, Reply};
//! let server = RecordingServer::start().expect("start");
//! server.script([Reply::status(500), Reply::status(200)]); // then the default, 200
//! // … point a notifier at server.url() …
//! let requests = server.wait_for(2, std::time::Duration::from_secs(10)).await;
//! assert_eq!(requests.len(), 2);
//! # }
//! ```

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

use crate::Result;

/// One request as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// `POST`, `GET`, …
    pub method: String,
    /// The path and query (`/hook?x=1`).
    pub path: String,
    /// Headers, names lower-case (the last value of a repeated header).
    pub headers: BTreeMap<String, String>,
    /// The body.
    pub body: Vec<u8>,
}

impl Recorded {
    /// The body as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }
}

/// How the server answers one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// This status, with `Retry-After: <seconds>` when given, and a short text body.
    Status {
        /// The status code.
        code: u16,
        /// The `Retry-After` header's seconds.
        retry_after: Option<u64>,
    },
    /// No answer: the request is held until the server is dropped.
    Hang,
}

impl Reply {
    /// This status, without `Retry-After`.
    pub fn status(code: u16) -> Reply {
        Reply::Status {
            code,
            retry_after: None,
        }
    }
}

struct Shared {
    requests: Mutex<Vec<Recorded>>,
    script: Mutex<VecDeque<Reply>>,
    default: Mutex<Reply>,
    count: tokio::sync::watch::Sender<usize>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The recording server, serving from a thread of its own until dropped.
pub struct RecordingServer {
    shared: Arc<Shared>,
    served: crate::axum_thread::Served,
}

impl std::fmt::Debug for RecordingServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordingServer")
            .field("addr", &self.served.addr)
            .finish_non_exhaustive()
    }
}

impl RecordingServer {
    /// Starts a server that answers 200 until told otherwise.
    pub fn start() -> Result<Self> {
        let (count, _) = tokio::sync::watch::channel(0);
        let shared = Arc::new(Shared {
            requests: Mutex::new(Vec::new()),
            script: Mutex::new(VecDeque::new()),
            default: Mutex::new(Reply::status(200)),
            count,
        });
        let served = crate::axum_thread::serve(
            "stoker-recorder",
            Router::new().fallback(record).with_state(shared.clone()),
        )?;
        Ok(RecordingServer { shared, served })
    }

    /// `http://127.0.0.1:PORT/hook/<secret-looking path>`: any path is served.
    pub fn url(&self) -> String {
        format!("http://{}/hook/T000/B000/s3cr3t-path", self.served.addr)
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.served.addr)
    }

    /// The next requests get these replies, in order; later ones the default.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        lock(&self.shared.script).extend(replies);
    }

    /// What requests get once the script is used up (200 at first).
    pub fn set_default(&self, reply: Reply) {
        *lock(&self.shared.default) = reply;
    }

    /// Every request received so far, oldest first (hanging ones included).
    pub fn requests(&self) -> Vec<Recorded> {
        lock(&self.shared.requests).clone()
    }

    /// Waits until at least `n` requests were received, at most `timeout`; returns them all
    /// (fewer than `n` when the wait timed out).
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Recorded> {
        let mut count = self.shared.count.subscribe();
        let _ = tokio::time::timeout(timeout, count.wait_for(|seen| *seen >= n)).await;
        self.requests()
    }
}

async fn record(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let headers = headers
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect();
    let recorded = Recorded {
        method: method.to_string(),
        path: uri
            .path_and_query()
            .map_or_else(|| uri.path().to_owned(), |pq| pq.as_str().to_owned()),
        headers,
        body: body.to_vec(),
    };
    let total = {
        let mut requests = lock(&shared.requests);
        requests.push(recorded);
        requests.len()
    };
    shared.count.send_replace(total);
    let reply = lock(&shared.script)
        .pop_front()
        .unwrap_or_else(|| lock(&shared.default).clone());
    match reply {
        Reply::Hang => std::future::pending().await,
        Reply::Status { code, retry_after } => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut response = (status, format!("recorded; answered {code}")).into_response();
            if let Some(seconds) = retry_after
                && let Ok(value) = seconds.to_string().parse()
            {
                response.headers_mut().insert("retry-after", value);
            }
            response
        }
    }
}
