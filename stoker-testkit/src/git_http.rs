//! Smart HTTP in front of git's own `git http-backend`, with an optional token and fault
//! injection.
//!
//! Every request other than `/_admin/...` is a *Git request*: it is counted, may be hit by an
//! injected fault, must carry the token when one is set, and is then handed to
//! `git http-backend` as a CGI request (request body streamed to its stdin, its response
//! streamed back).
//!
//! Admin endpoints (no token needed, never counted):
//!
//! - `POST /_admin/faults` with `{"fail_next": N, "status": 503, "delay_ms": 0, "repo": null}`:
//!   the next `N` Git requests (only those for repository `repo`, e.g. `"x.git"`, when given)
//!   wait `delay_ms`, then get `status`. `status` defaults to 503; `0` means "after the delay,
//!   serve the request normally" (a slow server). With `status: 0` and `stall_after_bytes: B`,
//!   the answer starts at once and its body stops for `delay_ms` once `B` bytes are sent (a
//!   connection that stalls mid-transfer); smaller answers are not affected. `GET` returns the
//!   faults still pending.
//! - `GET /_admin/requests`: [`RequestStats`] as JSON. `DELETE` resets the counters.
//!
//! Authentication when a token is set: HTTP Basic where the password equals the token (any user
//! name), or `Authorization: Bearer TOKEN`. With a [`PasswordCheck`] instead
//! ([`GitHttpServer::start_with_password_check`]): HTTP Basic whose user name and password it
//! accepts (the GitHub API double's issued tokens, [`crate::github_api`]). Anything else gets
//! `401` with `WWW-Authenticate: Basic realm="stoker-test"`.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use base64::Engine as _;
use futures::StreamExt as _;
use http_body_util::BodyExt as _;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::process::Command;
use tokio_util::io::ReaderStream;

use crate::{Error, Result};

/// The realm in `WWW-Authenticate`.
pub const REALM: &str = "stoker-test";

/// Faults to inject into the next Git requests (the body of `POST /_admin/faults`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// How many of the next Git requests are affected.
    pub fail_next: u32,
    /// The status they get; `0` serves them normally after the delay.
    pub status: u16,
    /// How long each affected request waits before its answer.
    pub delay_ms: u64,
    /// Only requests for this repository (first path segment, e.g. `x.git`) are affected.
    pub repo: Option<String>,
    /// With `status` 0: instead of waiting before the answer, its body stops for `delay_ms`
    /// once this many bytes are sent.
    pub stall_after_bytes: Option<u64>,
}

impl Default for Faults {
    fn default() -> Self {
        Self {
            fail_next: 0,
            status: 503,
            delay_ms: 0,
            repo: None,
            stall_after_bytes: None,
        }
    }
}

impl Faults {
    /// The next `n` Git requests get `status`.
    pub fn fail(n: u32, status: u16) -> Self {
        Self {
            fail_next: n,
            status,
            ..Self::default()
        }
    }

    /// The next `n` Git requests are served normally, each `delay` late.
    pub fn slow(n: u32, delay: Duration) -> Self {
        Self {
            fail_next: n,
            status: 0,
            delay_ms: u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
            repo: None,
            stall_after_bytes: None,
        }
    }

    /// The bodies of the next `n` Git requests stop for `delay` once `after_bytes` bytes are
    /// sent (answers shorter than that are served normally).
    pub fn stall_body(n: u32, after_bytes: u64, delay: Duration) -> Self {
        Self {
            stall_after_bytes: Some(after_bytes),
            ..Self::slow(n, delay)
        }
    }

    /// Restricts the faults to requests for repository `name` (e.g. `x.git`).
    pub fn for_repo(mut self, name: impl Into<String>) -> Self {
        self.repo = Some(name.into());
        self
    }
}

/// Counters of Git requests (the answer of `GET /_admin/requests`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestStats {
    /// Every Git request received, whatever its outcome.
    pub total: u64,
    /// Those answered 401 (no or wrong token).
    pub unauthorized: u64,
    /// Those answered with an injected fault status.
    pub faulted: u64,
    /// `total` per repository (first path segment).
    pub by_repo: BTreeMap<String, u64>,
}

impl RequestStats {
    /// Git requests for repository `name` (e.g. `x.git`).
    pub fn for_repo(&self, name: &str) -> u64 {
        self.by_repo.get(name).copied().unwrap_or(0)
    }
}

/// Decides whether an HTTP Basic user name and password (in that order) may use the server.
pub type PasswordCheck = Arc<dyn Fn(&str, &str) -> bool + Send + Sync>;

/// Who may send Git requests.
enum Access {
    /// Anyone.
    Open,
    /// Who sends this token (Basic password with any user name, or Bearer).
    Token(String),
    /// Who sends a Basic user name and password the check accepts.
    Check(PasswordCheck),
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Access::Open => "Open",
            Access::Token(_) => "Token(***)",
            Access::Check(_) => "Check(..)",
        })
    }
}

/// The shared state of one server: what it serves, its token, pending faults, counters.
/// Cheap to clone.
#[derive(Debug, Clone)]
pub struct GitHttpState {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    root: PathBuf,
    access: Access,
    faults: Mutex<Faults>,
    stats: Mutex<RequestStats>,
}

/// Locks, ignoring poisoning: the data stays consistent (plain counters) even if a holder panicked.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl GitHttpState {
    /// Serves the bare repositories below `root`; requires `token` when given.
    pub fn new(root: impl Into<PathBuf>, token: Option<&str>) -> Self {
        let access = match token {
            Some(token) => Access::Token(token.to_owned()),
            None => Access::Open,
        };
        Self::with_access(root.into(), access)
    }

    /// Serves the bare repositories below `root` to HTTP Basic credentials `check` accepts.
    pub fn with_password_check(root: impl Into<PathBuf>, check: PasswordCheck) -> Self {
        Self::with_access(root.into(), Access::Check(check))
    }

    fn with_access(root: PathBuf, access: Access) -> Self {
        Self {
            inner: Arc::new(Inner {
                root,
                access,
                faults: Mutex::new(Faults::default()),
                stats: Mutex::new(RequestStats::default()),
            }),
        }
    }

    /// The project root.
    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    /// Replaces the pending faults.
    pub fn set_faults(&self, faults: Faults) {
        *lock(&self.inner.faults) = faults;
    }

    /// The faults still pending.
    pub fn faults(&self) -> Faults {
        lock(&self.inner.faults).clone()
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> RequestStats {
        lock(&self.inner.stats).clone()
    }

    /// Resets the counters.
    pub fn reset_stats(&self) {
        *lock(&self.inner.stats) = RequestStats::default();
    }

    /// Takes one pending fault for a request to `repo`, if any.
    fn take_fault(&self, repo: &str) -> Option<Faults> {
        let mut faults = lock(&self.inner.faults);
        if faults.fail_next == 0 || faults.repo.as_deref().is_some_and(|r| r != repo) {
            return None;
        }
        faults.fail_next -= 1;
        Some(faults.clone())
    }

    fn count(&self, repo: &str) {
        let mut stats = lock(&self.inner.stats);
        stats.total += 1;
        *stats.by_repo.entry(repo.to_owned()).or_insert(0) += 1;
    }

    /// `Ok(Some(user))` when authenticated, `Ok(None)` when no token is needed, `Err` otherwise.
    fn authorize(&self, headers: &HeaderMap) -> Result<Option<String>, ()> {
        if let Access::Open = self.inner.access {
            return Ok(None);
        }
        let value = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or(())?;
        let (scheme, rest) = value.split_once(' ').ok_or(())?;
        let rest = rest.trim();
        if scheme.eq_ignore_ascii_case("bearer")
            && let Access::Token(token) = &self.inner.access
            && rest == token
        {
            return Ok(Some("bearer".to_owned()));
        }
        if !scheme.eq_ignore_ascii_case("basic") {
            return Err(());
        }
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest)
            .map_err(|_| ())?;
        let decoded = String::from_utf8(decoded).map_err(|_| ())?;
        let (user, password) = decoded.split_once(':').ok_or(())?;
        let accepted = match &self.inner.access {
            Access::Token(token) => password == token,
            Access::Check(check) => check(user, password),
            Access::Open => true,
        };
        if accepted {
            return Ok(Some(if user.is_empty() { "git" } else { user }.to_owned()));
        }
        Err(())
    }
}

/// The path prefix of a moved repository: `GET /_moved/<path>` answers `301 Moved Permanently`
/// to `/<path>` (query kept), as a hosting service answers for a renamed repository;
/// `GET /_moved/http://HOST/<path>` (or `https://`) to that absolute URL.
pub const MOVED_PREFIX: &str = "/_moved";

/// The axum router: admin endpoints, [`MOVED_PREFIX`] redirects, and every other path bridged
/// to `git http-backend`.
/// Serve it with connect info (`into_make_service_with_connect_info::<SocketAddr>()`) to pass
/// `REMOTE_ADDR`.
pub fn router(state: GitHttpState) -> Router {
    Router::new()
        .route("/_admin/faults", post(post_faults).get(get_faults))
        .route(
            "/_admin/requests",
            get(get_requests).delete(delete_requests),
        )
        .route("/_moved/{*path}", any(moved))
        .fallback(git_request)
        .with_state(state)
}

/// Serves [`router`] on `listener` until `shutdown` completes (then finishes in-flight
/// requests).
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: GitHttpState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        router(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

async fn post_faults(State(state): State<GitHttpState>, body: axum::body::Bytes) -> Response {
    match serde_json::from_slice::<Faults>(&body) {
        Ok(faults) => {
            state.set_faults(faults.clone());
            axum::Json(faults).into_response()
        }
        Err(e) => (StatusCode::BAD_REQUEST, format!("bad faults JSON: {e}\n")).into_response(),
    }
}

async fn get_faults(State(state): State<GitHttpState>) -> axum::Json<Faults> {
    axum::Json(state.faults())
}

async fn get_requests(State(state): State<GitHttpState>) -> axum::Json<RequestStats> {
    axum::Json(state.stats())
}

async fn delete_requests(State(state): State<GitHttpState>) -> StatusCode {
    state.reset_stats();
    StatusCode::NO_CONTENT
}

async fn moved(State(state): State<GitHttpState>, request: Request) -> Response {
    state.count(MOVED_PREFIX.trim_start_matches('/'));
    let target = request
        .uri()
        .path_and_query()
        .map(|path| path.as_str())
        .unwrap_or_default()
        .strip_prefix(MOVED_PREFIX)
        .unwrap_or_default()
        .to_owned();
    let target = match target.strip_prefix('/') {
        Some(absolute) if absolute.starts_with("http://") || absolute.starts_with("https://") => {
            absolute.to_owned()
        }
        _ => target,
    };
    (StatusCode::MOVED_PERMANENTLY, [(header::LOCATION, target)]).into_response()
}

async fn git_request(State(state): State<GitHttpState>, request: Request) -> Response {
    let path = request.uri().path().to_owned();
    let repo = path
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or_default()
        .to_owned();
    state.count(&repo);

    let mut stall = None;
    if let Some(fault) = state.take_fault(&repo) {
        let delay = Duration::from_millis(fault.delay_ms);
        match fault.stall_after_bytes {
            Some(after) if fault.status == 0 => stall = Some((after, delay)),
            _ if fault.delay_ms > 0 => tokio::time::sleep(delay).await,
            _ => {}
        }
        if fault.status != 0 {
            lock(&state.inner.stats).faulted += 1;
            let status =
                StatusCode::from_u16(fault.status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            return (
                status,
                format!("stoker-git-http: injected fault {status}\n"),
            )
                .into_response();
        }
    }

    let user = match state.authorize(request.headers()) {
        Ok(user) => user,
        Err(()) => {
            lock(&state.inner.stats).unauthorized += 1;
            return (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, format!("Basic realm=\"{REALM}\""))],
                "authentication required\n",
            )
                .into_response();
        }
    };

    match cgi(&state, request, user, stall).await {
        Ok(response) => response,
        Err(e) => {
            tracing::warn!(error = %e, %path, "git http-backend failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("stoker-git-http: {e}\n"),
            )
                .into_response()
        }
    }
}

/// Percent-decodes a URL path (CGI's `PATH_INFO` is decoded); invalid escapes stay as they are.
fn percent_decode(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(b) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Runs one CGI request through `git http-backend`.
/// `stall`: the body stops for the duration once that many bytes are sent.
#[allow(clippy::too_many_lines)] // one CGI exchange, request to response, in the order it happens
async fn cgi(
    state: &GitHttpState,
    request: Request,
    user: Option<String>,
    stall: Option<(u64, Duration)>,
) -> Result<Response> {
    let (parts, body) = request.into_parts();
    let header = |name: &HeaderName| parts.headers.get(name).and_then(|v| v.to_str().ok());
    let remote = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip().to_string())
        .unwrap_or_else(|| "127.0.0.1".to_owned());

    let mut cmd = Command::new("git");
    cmd.arg("http-backend")
        .env_clear()
        .env(
            "PATH",
            std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into()),
        )
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_PROJECT_ROOT", state.root())
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("GATEWAY_INTERFACE", "CGI/1.1")
        .env("SERVER_PROTOCOL", "HTTP/1.1")
        .env("SERVER_SOFTWARE", "stoker-git-http")
        .env("REQUEST_METHOD", parts.method.as_str())
        .env("PATH_INFO", percent_decode(parts.uri.path()))
        .env("QUERY_STRING", parts.uri.query().unwrap_or(""))
        .env("REMOTE_ADDR", remote)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(home) = std::env::var_os("HOME") {
        cmd.env("HOME", home);
    }
    if let Some(v) = header(&header::CONTENT_TYPE) {
        cmd.env("CONTENT_TYPE", v);
    }
    if let Some(v) = header(&header::CONTENT_LENGTH) {
        cmd.env("CONTENT_LENGTH", v);
    }
    if let Some(v) = header(&header::CONTENT_ENCODING) {
        // http-backend inflates gzip request bodies itself.
        cmd.env("HTTP_CONTENT_ENCODING", v);
    }
    if let Some(v) = parts
        .headers
        .get("git-protocol")
        .and_then(|v| v.to_str().ok())
    {
        // Protocol v2: http-backend reads HTTP_GIT_PROTOCOL; upload-pack reads GIT_PROTOCOL.
        cmd.env("GIT_PROTOCOL", v).env("HTTP_GIT_PROTOCOL", v);
    }
    if let Some(user) = &user {
        cmd.env("REMOTE_USER", user);
    }

    let mut child = cmd
        .spawn()
        .map_err(|e| Error::io("spawn git http-backend", e))?;
    let (Some(mut stdin), Some(stdout), Some(mut stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return Err(Error::Invalid(
            "git http-backend without stdio pipes".into(),
        ));
    };

    // Request body → stdin, concurrently with reading the response (no deadlock on big pushes).
    tokio::spawn(async move {
        let mut body = body;
        while let Some(frame) = body.frame().await {
            let Ok(frame) = frame else { break };
            if let Ok(data) = frame.into_data()
                && stdin.write_all(&data).await.is_err()
            {
                // http-backend stopped reading (e.g. it answered with an error): fine.
                break;
            }
        }
        let _ = stdin.shutdown().await;
    });
    tokio::spawn(async move {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text).await;
        if !text.trim().is_empty() {
            tracing::debug!(stderr = %text.trim(), "git http-backend");
        }
        // Reap the process once its output is done.
        let _ = child.wait().await;
    });

    let mut out = BufReader::new(stdout);
    let mut status = StatusCode::OK;
    let mut headers = HeaderMap::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = out
            .read_until(b'\n', &mut line)
            .await
            .map_err(|e| Error::io("read git http-backend headers", e))?;
        if n == 0 {
            if headers.is_empty() {
                return Err(Error::Invalid("git http-backend printed nothing".into()));
            }
            break;
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end_matches(['\r', '\n']);
        if text.is_empty() {
            break;
        }
        let Some((name, value)) = text.split_once(':') else {
            return Err(Error::Invalid(format!("bad CGI header line {text:?}")));
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("status") {
            let code = value.split_whitespace().next().unwrap_or("500");
            status = code
                .parse::<u16>()
                .ok()
                .and_then(|c| StatusCode::from_u16(c).ok())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            continue;
        }
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.trim().as_bytes()),
            HeaderValue::from_str(value),
        ) {
            headers.append(name, value);
        }
    }

    let chunks = ReaderStream::new(out);
    let body = match stall {
        None => Body::from_stream(chunks),
        Some((after, delay)) => {
            let mut sent = 0u64;
            Body::from_stream(chunks.then(move |chunk| {
                let before = sent;
                sent += chunk.as_ref().map_or(0, |bytes| bytes.len() as u64);
                let pause = before < after && sent >= after;
                async move {
                    if pause {
                        tokio::time::sleep(delay).await;
                    }
                    chunk
                }
            }))
        }
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    Ok(response)
}

/// A server running in this process on its own thread and Tokio runtime, on `127.0.0.1:PORT`.
///
/// Having its own runtime means it works from plain `#[test]`s and from inside async tests
/// alike, and keeps serving while the test blocks on a `git` child process. Dropping the handle
/// (or [`GitHttpServer::shutdown`]) stops it at once.
#[derive(Debug)]
pub struct GitHttpServer {
    state: GitHttpState,
    served: crate::axum_thread::Served,
}

impl GitHttpServer {
    /// Serves the bare repositories below `root` on a free loopback port; Git requests need
    /// `token` when given.
    pub fn start(root: impl Into<PathBuf>, token: Option<&str>) -> Result<Self> {
        Self::start_on(crate::process::loopback(0), root, token)
    }

    /// Like [`GitHttpServer::start`] on a given address (port 0 picks a free one).
    pub fn start_on(
        bind: SocketAddr,
        root: impl Into<PathBuf>,
        token: Option<&str>,
    ) -> Result<Self> {
        let listener =
            std::net::TcpListener::bind(bind).map_err(|e| Error::io(format!("bind {bind}"), e))?;
        Self::serve_state(listener, GitHttpState::new(root, token))
    }

    /// Like [`GitHttpServer::start`], Git requests needing HTTP Basic credentials that `check`
    /// accepts.
    pub fn start_with_password_check(
        root: impl Into<PathBuf>,
        check: PasswordCheck,
    ) -> Result<Self> {
        let bind = crate::process::loopback(0);
        let listener =
            std::net::TcpListener::bind(bind).map_err(|e| Error::io(format!("bind {bind}"), e))?;
        Self::serve_state(listener, GitHttpState::with_password_check(root, check))
    }

    /// Serves `state` on `listener` from a thread of its own.
    fn serve_state(listener: std::net::TcpListener, state: GitHttpState) -> Result<Self> {
        let shared = state.clone();
        let served =
            crate::axum_thread::serve_with("stoker-git-http", listener, move |listener| {
                serve(listener, shared, std::future::pending())
            })?;
        Ok(Self { state, served })
    }

    /// `http://127.0.0.1:PORT` (no trailing slash); a repository is at `{url}/{name}`.
    pub fn url(&self) -> String {
        format!("http://{}", self.served.addr)
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.served.addr
    }

    /// The server's state (faults, counters).
    pub fn state(&self) -> &GitHttpState {
        &self.state
    }

    /// Replaces the pending faults (same as `POST /_admin/faults`).
    pub fn set_faults(&self, faults: Faults) {
        self.state.set_faults(faults);
    }

    /// How many Git requests arrived (same as `total` of `GET /_admin/requests`).
    pub fn request_count(&self) -> u64 {
        self.state.stats().total
    }

    /// All counters.
    pub fn stats(&self) -> RequestStats {
        self.state.stats()
    }

    /// Stops the server and waits for its thread.
    pub fn shutdown(mut self) {
        self.served.stop();
    }
}

/// Talks to the admin endpoints of a server over HTTP — also one started by another process
/// (`hack/git-servers.sh start`, the `stoker-git-http` binary).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpAdmin {
    addr: SocketAddr,
}

impl HttpAdmin {
    /// For the server at `url` (`http://127.0.0.1:PORT`, a path after it is ignored).
    pub fn new(url: &str) -> Result<Self> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| Error::Invalid(format!("not an http:// URL: {url}")))?;
        let host = rest.split('/').next().unwrap_or_default();
        let addr = host
            .parse()
            .map_err(|_| Error::Invalid(format!("not http://IP:PORT: {url}")))?;
        Ok(Self { addr })
    }

    /// `POST /_admin/faults`.
    pub fn set_faults(&self, faults: &Faults) -> Result<()> {
        let body = serde_json::to_string(faults).map_err(|e| Error::Invalid(e.to_string()))?;
        self.call("POST", "/_admin/faults", &body)?;
        Ok(())
    }

    /// `GET /_admin/requests`.
    pub fn stats(&self) -> Result<RequestStats> {
        let body = self.call("GET", "/_admin/requests", "")?;
        serde_json::from_str(&body)
            .map_err(|e| Error::Invalid(format!("bad /_admin/requests answer: {e}")))
    }

    /// `total` of `GET /_admin/requests`.
    pub fn request_count(&self) -> Result<u64> {
        Ok(self.stats()?.total)
    }

    /// `DELETE /_admin/requests`.
    pub fn reset_stats(&self) -> Result<()> {
        self.call("DELETE", "/_admin/requests", "")?;
        Ok(())
    }

    /// One HTTP/1.1 request with `Connection: close`; returns the body of a 2xx answer.
    fn call(&self, method: &str, path: &str, body: &str) -> Result<String> {
        use std::io::{Read as _, Write as _};
        let what = format!("{method} http://{}{path}", self.addr);
        let mut stream = std::net::TcpStream::connect_timeout(&self.addr, Duration::from_secs(5))
            .map_err(|e| Error::io(&what, e))?;
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(|e| Error::io(&what, e))?;
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.addr,
            body.len()
        )
        .map_err(|e| Error::io(&what, e))?;
        let mut answer = String::new();
        stream
            .read_to_string(&mut answer)
            .map_err(|e| Error::io(&what, e))?;
        let (head, body) = answer
            .split_once("\r\n\r\n")
            .ok_or_else(|| Error::Invalid(format!("{what}: bad answer {answer:?}")))?;
        let status = head.split_whitespace().nth(1).unwrap_or_default();
        if !status.starts_with('2') {
            return Err(Error::Invalid(format!("{what}: {head}: {body}")));
        }
        Ok(body.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(value).expect("header"),
        );
        h
    }

    fn basic(user_pass: &str) -> HeaderMap {
        auth(&format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(user_pass)
        ))
    }

    #[test]
    fn token_checks() {
        let open = GitHttpState::new("/r", None);
        assert_eq!(open.authorize(&HeaderMap::new()), Ok(None));
        let s = GitHttpState::new("/r", Some("tok"));
        assert_eq!(s.authorize(&HeaderMap::new()), Err(()));
        assert_eq!(s.authorize(&basic("alice:tok")), Ok(Some("alice".into())));
        assert_eq!(s.authorize(&basic(":tok")), Ok(Some("git".into())));
        assert_eq!(s.authorize(&basic("alice:nope")), Err(()));
        assert_eq!(s.authorize(&basic("tok")), Err(()));
        assert_eq!(s.authorize(&auth("Bearer tok")), Ok(Some("bearer".into())));
        assert_eq!(s.authorize(&auth("bearer tok")), Ok(Some("bearer".into())));
        assert_eq!(s.authorize(&auth("Bearer nope")), Err(()));
        assert_eq!(s.authorize(&auth("Basic !!!")), Err(()));
    }

    #[test]
    fn a_password_check_decides_basic_credentials_only() {
        let check: PasswordCheck =
            Arc::new(|user, password| user == "x-access-token" && password == "ghs_ok");
        let s = GitHttpState::with_password_check("/r", check);
        assert_eq!(s.authorize(&HeaderMap::new()), Err(()));
        assert_eq!(
            s.authorize(&basic("x-access-token:ghs_ok")),
            Ok(Some("x-access-token".into()))
        );
        assert_eq!(s.authorize(&basic("alice:ghs_ok")), Err(()));
        assert_eq!(s.authorize(&basic("x-access-token:ghs_old")), Err(()));
        assert_eq!(s.authorize(&auth("Bearer ghs_ok")), Err(()));
    }

    #[test]
    fn faults_are_used_up_and_scoped() {
        let s = GitHttpState::new("/r", None);
        assert_eq!(s.take_fault("a.git"), None);
        s.set_faults(Faults::fail(2, 500).for_repo("a.git"));
        assert_eq!(s.take_fault("b.git"), None);
        assert_eq!(s.take_fault("a.git").map(|f| f.status), Some(500));
        assert_eq!(s.take_fault("a.git").map(|f| f.status), Some(500));
        assert_eq!(s.take_fault("a.git"), None);
        assert_eq!(s.faults().fail_next, 0);
    }

    #[test]
    fn faults_json_defaults_to_503() {
        let f: Faults = serde_json::from_str(r#"{"fail_next": 2}"#).expect("json");
        assert_eq!(f, Faults::fail(2, 503));
        let f: Faults =
            serde_json::from_str(r#"{"fail_next": 1, "status": 0, "delay_ms": 5}"#).expect("json");
        assert_eq!(f, Faults::slow(1, Duration::from_millis(5)));
        assert!(serde_json::from_str::<Faults>(r#"{"fail": 1}"#).is_err());
    }

    #[test]
    fn path_info_is_percent_decoded() {
        assert_eq!(percent_decode("/a%20b.git/info/refs"), "/a b.git/info/refs");
        assert_eq!(percent_decode("/bad%zz%4"), "/bad%zz%4");
        assert_eq!(percent_decode("/x%41"), "/xA");
    }
}
