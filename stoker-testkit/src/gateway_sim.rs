//! A simulator of the Ignition gateway REST endpoints Stoker calls, with switches for failures.
//!
//! It serves, below `http[s]://127.0.0.1:PORT`:
//!
//! | endpoint | answer |
//! |---|---|
//! | `POST /data/api/v1/scan/projects` | `200 {}` |
//! | `POST /data/api/v1/scan/config` | `200 {}` |
//! | `GET /data/api/v1/designers` | `200 {"items": [...], "metadata": {...}}`: the sessions opened through the admin API |
//! | `GET /data/api/v1/gateway-info` | `200 {"name", "ignitionVersion", "edition", ...}` |
//!
//! When an API key is configured, each of these needs it in the `X-Ignition-API-Token` header
//! (as Ignition 8.3 does); without it, or with a wrong one, the answer is `401`. Every request
//! to them — and to any other non-admin path, which gets `404` — is recorded as a [`Call`]
//! (method, path, arrival time, whether a key was sent and was right, the status answered).
//!
//! Failures, per endpoint ([`Fault`]): a status code (e.g. `500` on a scan, `503` on
//! `gateway-info` while "commissioning"), a delay, for the next N requests or until cleared.
//! Faults apply before the key check, as a starting gateway answers 503 to everyone.
//! Availability ([`Mode`]): `up`; `hang` (connections are accepted, requests are never
//! answered); `refuse` (the port is closed: connection refused), optionally for a while.
//!
//! Admin endpoints (no key, never recorded, answered even in `hang` mode):
//!
//! - `GET /_sim/calls`: the [`Call`]s as JSON; `DELETE /_sim/calls` forgets them.
//! - `GET /_sim/designers`; `POST /_sim/designers` with `{"user": "alice", "project": "demo"}`
//!   opens a session and returns it (with its `id`); `DELETE /_sim/designers/{id}` closes one,
//!   `DELETE /_sim/designers` all.
//! - `GET /_sim/faults`; `PUT /_sim/faults/{endpoint}` with a [`Fault`] (`{"status": 500,
//!   "delay_ms": 0, "times": 2}`; `times` null or absent: until cleared); `DELETE
//!   /_sim/faults/{endpoint}`; `DELETE /_sim/faults` clears all. `{endpoint}` is
//!   `scan-projects`, `scan-config`, `designers` or `gateway-info` ([`Endpoint::name`]).
//! - `GET /_sim/mode`; `PUT /_sim/mode` with `{"mode": "refuse", "for_ms": 2000}` (`for_ms`
//!   optional: until changed; in `refuse` mode the admin API is unreachable too, so over HTTP
//!   give a `for_ms`).
//!
//! [`GatewaySim`] runs it in this process on its own thread (for tests); the
//! `stoker-gateway-sim` binary runs it standalone (for `hack/` scripts and the README demo).
//! [`TestCerts`] makes a throw-away CA and a server certificate for `127.0.0.1` with the
//! `openssl` CLI, for HTTPS mode.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::{Path as UrlPath, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::{Error, Result};

/// The header Ignition 8.3 reads the API key from.
pub const API_TOKEN_HEADER: &str = "X-Ignition-API-Token";

/// One of the simulated gateway endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Endpoint {
    /// `POST /data/api/v1/scan/projects`.
    ScanProjects,
    /// `POST /data/api/v1/scan/config`.
    ScanConfig,
    /// `GET /data/api/v1/designers`.
    Designers,
    /// `GET /data/api/v1/gateway-info`.
    GatewayInfo,
}

impl Endpoint {
    /// Every endpoint.
    pub const ALL: [Endpoint; 4] = [
        Endpoint::ScanProjects,
        Endpoint::ScanConfig,
        Endpoint::Designers,
        Endpoint::GatewayInfo,
    ];

    /// The URL path.
    pub fn path(self) -> &'static str {
        match self {
            Endpoint::ScanProjects => "/data/api/v1/scan/projects",
            Endpoint::ScanConfig => "/data/api/v1/scan/config",
            Endpoint::Designers => "/data/api/v1/designers",
            Endpoint::GatewayInfo => "/data/api/v1/gateway-info",
        }
    }

    /// The HTTP method it answers.
    pub fn method(self) -> &'static str {
        match self {
            Endpoint::ScanProjects | Endpoint::ScanConfig => "POST",
            Endpoint::Designers | Endpoint::GatewayInfo => "GET",
        }
    }

    /// The name used by the admin API: `scan-projects`, `scan-config`, `designers`,
    /// `gateway-info`.
    pub fn name(self) -> &'static str {
        match self {
            Endpoint::ScanProjects => "scan-projects",
            Endpoint::ScanConfig => "scan-config",
            Endpoint::Designers => "designers",
            Endpoint::GatewayInfo => "gateway-info",
        }
    }

    /// The endpoint of a name ([`Endpoint::name`]).
    pub fn from_name(name: &str) -> Option<Endpoint> {
        Endpoint::ALL.into_iter().find(|e| e.name() == name)
    }

    /// The endpoint at a path, whatever the method.
    pub fn from_path(path: &str) -> Option<Endpoint> {
        Endpoint::ALL.into_iter().find(|e| e.path() == path)
    }
}

/// One request received on a non-admin path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Call {
    /// `GET`, `POST`, …
    pub method: String,
    /// The URL path (no query).
    pub path: String,
    /// Arrival time, milliseconds since the Unix epoch.
    pub at_unix_ms: u64,
    /// Whether an API key header was sent.
    pub key_sent: bool,
    /// Whether the key was the right one (or none is required).
    pub authorized: bool,
    /// The status answered; `None` while unanswered (or never answered, in `hang` mode).
    pub status: Option<u16>,
}

impl Call {
    /// The endpoint called, when the path and method are one of the four.
    pub fn endpoint(&self) -> Option<Endpoint> {
        Endpoint::from_path(&self.path).filter(|e| e.method() == self.method)
    }
}

/// A failure injected into an endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Fault {
    /// The status to answer; `0` answers normally (after the delay).
    pub status: u16,
    /// How long to wait before answering.
    pub delay_ms: u64,
    /// How many more requests it applies to; `None`: until cleared.
    pub times: Option<u32>,
}

impl Default for Fault {
    fn default() -> Self {
        Fault {
            status: 503,
            delay_ms: 0,
            times: None,
        }
    }
}

impl Fault {
    /// Answer `status` until cleared.
    pub fn status(status: u16) -> Self {
        Fault {
            status,
            ..Fault::default()
        }
    }

    /// Answer normally, `delay` late, until cleared.
    pub fn delay(delay: Duration) -> Self {
        Fault {
            status: 0,
            delay_ms: u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
            times: None,
        }
    }

    /// Only for the next `n` requests.
    pub fn times(mut self, n: u32) -> Self {
        self.times = Some(n);
        self
    }
}

/// Whether the simulated gateway answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Answering.
    Up,
    /// Accepting connections, answering nothing on the gateway endpoints (the admin API still
    /// answers).
    Hang,
    /// Not listening: connections are refused.
    Refuse,
}

/// The body of `PUT /_sim/mode` (and the answer of `GET`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModeRequest {
    /// The mode.
    pub mode: Mode,
    /// Return to `up` after this many milliseconds; absent: stay until changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub for_ms: Option<u64>,
}

/// An open Designer session, as `GET /data/api/v1/designers` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DesignerSession {
    /// The session id (assigned by the simulator).
    pub id: String,
    /// Who is logged in.
    pub user: String,
    /// The project open in it.
    pub project: String,
    /// The Designer's address.
    pub address: String,
}

/// The body of `POST /_sim/designers`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct OpenDesigner {
    user: String,
    #[serde(default)]
    project: String,
}

#[derive(Debug, Clone, Copy)]
struct ModeState {
    mode: Mode,
    until: Option<Instant>,
}

/// How a simulator is set up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimConfig {
    /// Where to listen (a loopback address; port 0 picks a free one).
    pub listen: SocketAddr,
    /// The API key required; `None`: no key needed.
    pub api_key: Option<String>,
    /// Serve HTTPS with this certificate chain and key (PEM files).
    pub tls: Option<(PathBuf, PathBuf)>,
    /// The gateway's name in `gateway-info`.
    pub name: String,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            listen: crate::process::loopback(0),
            api_key: None,
            tls: None,
            name: "stoker-sim".to_owned(),
        }
    }
}

impl SimConfig {
    /// Plain HTTP on a free loopback port, no key required.
    pub fn new() -> Self {
        SimConfig::default()
    }

    /// Requires this API key.
    pub fn with_api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(key.into());
        self
    }

    /// Serves HTTPS with this certificate chain and private key (PEM).
    pub fn with_tls(mut self, cert_file: impl Into<PathBuf>, key_file: impl Into<PathBuf>) -> Self {
        self.tls = Some((cert_file.into(), key_file.into()));
        self
    }

    /// Listens here.
    pub fn with_listen(mut self, listen: SocketAddr) -> Self {
        self.listen = listen;
        self
    }
}

/// The shared state of one simulator: key, calls, Designer sessions, faults, mode. Cheap to
/// clone.
#[derive(Debug, Clone)]
pub struct SimState {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    api_key: Option<String>,
    name: String,
    calls: Mutex<Vec<Call>>,
    designers: Mutex<BTreeMap<u64, DesignerSession>>,
    next_designer: Mutex<u64>,
    faults: Mutex<BTreeMap<Endpoint, Fault>>,
    mode: watch::Sender<ModeState>,
}

/// Locks, ignoring poisoning: the data stays consistent (plain values) even if a holder
/// panicked.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

impl SimState {
    /// A state requiring `api_key` when given.
    pub fn new(api_key: Option<&str>, name: &str) -> Self {
        let (mode, _) = watch::channel(ModeState {
            mode: Mode::Up,
            until: None,
        });
        SimState {
            inner: Arc::new(Inner {
                api_key: api_key.map(str::to_owned),
                name: name.to_owned(),
                calls: Mutex::new(Vec::new()),
                designers: Mutex::new(BTreeMap::new()),
                next_designer: Mutex::new(1),
                faults: Mutex::new(BTreeMap::new()),
                mode,
            }),
        }
    }

    /// Every call recorded so far, in arrival order.
    pub fn calls(&self) -> Vec<Call> {
        lock(&self.inner.calls).clone()
    }

    /// The calls to one endpoint.
    pub fn calls_to(&self, endpoint: Endpoint) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| c.endpoint() == Some(endpoint))
            .collect()
    }

    /// Forgets the recorded calls.
    pub fn clear_calls(&self) {
        lock(&self.inner.calls).clear();
    }

    /// Opens a Designer session; returns it (with its new id).
    pub fn open_designer(&self, user: &str, project: &str) -> DesignerSession {
        let id = {
            let mut next = lock(&self.inner.next_designer);
            let id = *next;
            *next += 1;
            id
        };
        let session = DesignerSession {
            id: format!("designer-{id}"),
            user: user.to_owned(),
            project: project.to_owned(),
            address: "127.0.0.1".to_owned(),
        };
        lock(&self.inner.designers).insert(id, session.clone());
        session
    }

    /// Closes the session with this id; false if there was none.
    pub fn close_designer(&self, id: &str) -> bool {
        let mut designers = lock(&self.inner.designers);
        let key = designers
            .iter()
            .find(|(_, s)| s.id == id)
            .map(|(key, _)| *key);
        key.and_then(|key| designers.remove(&key)).is_some()
    }

    /// Closes every session.
    pub fn close_all_designers(&self) {
        lock(&self.inner.designers).clear();
    }

    /// The open sessions, oldest first.
    pub fn designers(&self) -> Vec<DesignerSession> {
        lock(&self.inner.designers).values().cloned().collect()
    }

    /// Injects a fault into an endpoint (replacing the one there).
    pub fn set_fault(&self, endpoint: Endpoint, fault: Fault) {
        lock(&self.inner.faults).insert(endpoint, fault);
    }

    /// Removes the fault of an endpoint.
    pub fn clear_fault(&self, endpoint: Endpoint) {
        lock(&self.inner.faults).remove(&endpoint);
    }

    /// Removes every fault.
    pub fn clear_faults(&self) {
        lock(&self.inner.faults).clear();
    }

    /// The faults still pending.
    pub fn faults(&self) -> BTreeMap<Endpoint, Fault> {
        lock(&self.inner.faults).clone()
    }

    /// Sets the availability, for `duration` (then back to [`Mode::Up`]) or until changed.
    pub fn set_mode(&self, mode: Mode, duration: Option<Duration>) {
        self.inner.mode.send_replace(ModeState {
            mode,
            until: duration.map(|d| Instant::now() + d),
        });
    }

    /// The current availability.
    pub fn mode(&self) -> Mode {
        self.inner.mode.borrow().mode
    }

    /// Takes one use of the fault of `endpoint`, if any.
    fn take_fault(&self, endpoint: Endpoint) -> Option<Fault> {
        let mut faults = lock(&self.inner.faults);
        let fault = faults.get(&endpoint)?.clone();
        match fault.times {
            None => Some(fault),
            Some(0) => {
                faults.remove(&endpoint);
                None
            }
            Some(1) => {
                faults.remove(&endpoint);
                Some(fault)
            }
            Some(n) => {
                if let Some(pending) = faults.get_mut(&endpoint) {
                    pending.times = Some(n - 1);
                }
                Some(fault)
            }
        }
    }

    /// `(key_sent, authorized)`.
    fn check_key(&self, headers: &HeaderMap) -> (bool, bool) {
        let sent = headers.get(API_TOKEN_HEADER).and_then(|v| v.to_str().ok());
        let authorized = match &self.inner.api_key {
            None => true,
            Some(key) => sent == Some(key.as_str()),
        };
        (sent.is_some(), authorized)
    }

    fn record(&self, call: Call) -> usize {
        let mut calls = lock(&self.inner.calls);
        calls.push(call);
        calls.len() - 1
    }

    fn answered(&self, index: usize, status: StatusCode) {
        if let Some(call) = lock(&self.inner.calls).get_mut(index) {
            call.status = Some(status.as_u16());
        }
    }

    /// Waits while the mode is `hang` (returning to `up` when its time is over).
    async fn wait_while_hanging(&self) {
        let mut rx = self.inner.mode.subscribe();
        loop {
            let state = *rx.borrow_and_update();
            if state.mode != Mode::Hang {
                return;
            }
            match state.until {
                Some(until) => {
                    tokio::select! {
                        _ = tokio::time::sleep_until(until) => {
                            self.expire(until);
                        }
                        changed = rx.changed() => if changed.is_err() { return },
                    }
                }
                None => {
                    if rx.changed().await.is_err() {
                        return;
                    }
                }
            }
        }
    }

    /// Back to `up` if the mode set to end at `until` is still in force.
    fn expire(&self, until: Instant) {
        self.inner.mode.send_if_modified(|state| {
            if state.until == Some(until) {
                *state = ModeState {
                    mode: Mode::Up,
                    until: None,
                };
                true
            } else {
                false
            }
        });
    }

    fn gateway_info(&self) -> serde_json::Value {
        serde_json::json!({
            "name": self.inner.name,
            "ignitionVersion": "8.3.3 (stoker-gateway-sim)",
            "edition": "standard",
            "deploymentMode": "",
            "hostname": "localhost",
            "redundancyRole": "Independent",
            "timeZone": "UTC",
            "timeZoneId": "UTC",
            "license": {"mode": "Trial"},
        })
    }

    fn designers_json(&self) -> serde_json::Value {
        let items: Vec<serde_json::Value> = self
            .designers()
            .into_iter()
            .map(|s| {
                serde_json::json!({
                    "id": s.id,
                    "user": s.user,
                    "project": s.project,
                    "address": s.address,
                    "timezone": "UTC",
                    "uptime": 60000,
                    "lastcomm": 100,
                    "timeout": 60000,
                })
            })
            .collect();
        let total = items.len();
        serde_json::json!({"items": items, "metadata": {"total": total, "matching": total}})
    }
}

/// The axum router: the gateway endpoints and the admin API.
pub fn router(state: SimState) -> Router {
    Router::new()
        .route("/_sim/calls", get(admin_calls).delete(admin_clear_calls))
        .route(
            "/_sim/designers",
            get(admin_designers)
                .post(admin_open_designer)
                .delete(admin_close_all_designers),
        )
        .route("/_sim/designers/{id}", delete(admin_close_designer))
        .route("/_sim/faults", get(admin_faults).delete(admin_clear_faults))
        .route(
            "/_sim/faults/{endpoint}",
            axum::routing::put(admin_set_fault).delete(admin_clear_fault),
        )
        .route("/_sim/mode", get(admin_mode).put(admin_set_mode))
        .fallback(gateway_request)
        .with_state(state)
}

async fn gateway_request(State(state): State<SimState>, request: Request) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let (key_sent, authorized) = state.check_key(request.headers());
    let index = state.record(Call {
        method: method.to_string(),
        path: path.clone(),
        at_unix_ms: unix_ms(),
        key_sent,
        authorized,
        status: None,
    });
    state.wait_while_hanging().await;
    let response = answer(&state, &method, &path, authorized).await;
    state.answered(index, response.status());
    response
}

async fn answer(state: &SimState, method: &Method, path: &str, authorized: bool) -> Response {
    let Some(endpoint) = Endpoint::from_path(path) else {
        return (StatusCode::NOT_FOUND, "not found\n").into_response();
    };
    if let Some(fault) = state.take_fault(endpoint) {
        if fault.delay_ms > 0 {
            tokio::time::sleep(Duration::from_millis(fault.delay_ms)).await;
        }
        if fault.status != 0 {
            let status =
                StatusCode::from_u16(fault.status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            return (
                status,
                format!("stoker-gateway-sim: injected fault {status}\n"),
            )
                .into_response();
        }
    }
    if method.as_str() != endpoint.method() {
        return (
            StatusCode::METHOD_NOT_ALLOWED,
            [(header::ALLOW, endpoint.method())],
            "method not allowed\n",
        )
            .into_response();
    }
    if !authorized {
        // What Ignition's web server answers: an HTML error page.
        return (
            StatusCode::UNAUTHORIZED,
            [(header::CONTENT_TYPE, "text/html;charset=iso-8859-1")],
            "<html><head><title>Error 401 Unauthorized</title></head>\
             <body><h2>HTTP ERROR 401 Unauthorized</h2></body></html>\n",
        )
            .into_response();
    }
    let body = match endpoint {
        Endpoint::ScanProjects | Endpoint::ScanConfig => serde_json::json!({}),
        Endpoint::Designers => state.designers_json(),
        Endpoint::GatewayInfo => state.gateway_info(),
    };
    axum::Json(body).into_response()
}

async fn admin_calls(State(state): State<SimState>) -> axum::Json<Vec<Call>> {
    axum::Json(state.calls())
}

async fn admin_clear_calls(State(state): State<SimState>) -> StatusCode {
    state.clear_calls();
    StatusCode::NO_CONTENT
}

async fn admin_designers(State(state): State<SimState>) -> axum::Json<Vec<DesignerSession>> {
    axum::Json(state.designers())
}

async fn admin_open_designer(State(state): State<SimState>, body: axum::body::Bytes) -> Response {
    match serde_json::from_slice::<OpenDesigner>(&body) {
        Ok(open) => (
            StatusCode::CREATED,
            axum::Json(state.open_designer(&open.user, &open.project)),
        )
            .into_response(),
        Err(e) => bad_request(format!("bad designer JSON: {e}")),
    }
}

async fn admin_close_designer(
    State(state): State<SimState>,
    UrlPath(id): UrlPath<String>,
) -> StatusCode {
    if state.close_designer(&id) {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::NOT_FOUND
    }
}

async fn admin_close_all_designers(State(state): State<SimState>) -> StatusCode {
    state.close_all_designers();
    StatusCode::NO_CONTENT
}

async fn admin_faults(State(state): State<SimState>) -> axum::Json<BTreeMap<Endpoint, Fault>> {
    axum::Json(state.faults())
}

async fn admin_set_fault(
    State(state): State<SimState>,
    UrlPath(name): UrlPath<String>,
    body: axum::body::Bytes,
) -> Response {
    let Some(endpoint) = Endpoint::from_name(&name) else {
        return unknown_endpoint(&name);
    };
    let text = if body.is_empty() {
        &b"{}"[..]
    } else {
        &body[..]
    };
    match serde_json::from_slice::<Fault>(text) {
        Ok(fault) => {
            state.set_fault(endpoint, fault.clone());
            axum::Json(fault).into_response()
        }
        Err(e) => bad_request(format!("bad fault JSON: {e}")),
    }
}

async fn admin_clear_fault(
    State(state): State<SimState>,
    UrlPath(name): UrlPath<String>,
) -> Response {
    let Some(endpoint) = Endpoint::from_name(&name) else {
        return unknown_endpoint(&name);
    };
    state.clear_fault(endpoint);
    StatusCode::NO_CONTENT.into_response()
}

async fn admin_clear_faults(State(state): State<SimState>) -> StatusCode {
    state.clear_faults();
    StatusCode::NO_CONTENT
}

async fn admin_mode(State(state): State<SimState>) -> axum::Json<ModeRequest> {
    let current = *state.inner.mode.borrow();
    axum::Json(ModeRequest {
        mode: current.mode,
        for_ms: current.until.map(|until| {
            u64::try_from(until.saturating_duration_since(Instant::now()).as_millis())
                .unwrap_or(u64::MAX)
        }),
    })
}

async fn admin_set_mode(State(state): State<SimState>, body: axum::body::Bytes) -> Response {
    match serde_json::from_slice::<ModeRequest>(&body) {
        Ok(request) => {
            state.set_mode(request.mode, request.for_ms.map(Duration::from_millis));
            axum::Json(request).into_response()
        }
        Err(e) => bad_request(format!("bad mode JSON: {e}")),
    }
}

fn bad_request(message: String) -> Response {
    (StatusCode::BAD_REQUEST, format!("{message}\n")).into_response()
}

fn unknown_endpoint(name: &str) -> Response {
    let names: Vec<&str> = Endpoint::ALL.iter().map(|e| e.name()).collect();
    (
        StatusCode::NOT_FOUND,
        format!("unknown endpoint {name:?}: one of {}\n", names.join(", ")),
    )
        .into_response()
}

/// A TLS acceptor from PEM files.
fn tls_acceptor(cert_file: &Path, key_file: &Path) -> Result<tokio_rustls::TlsAcceptor> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(cert_file)
        .and_then(|certs| certs.collect::<std::result::Result<Vec<_>, _>>())
        .map_err(|e| Error::Invalid(format!("certificates in {}: {e}", cert_file.display())))?;
    let key = PrivateKeyDer::from_pem_file(key_file)
        .map_err(|e| Error::Invalid(format!("private key in {}: {e}", key_file.display())))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Invalid(format!("TLS versions: {e}")))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| Error::Invalid(format!("TLS certificate and key: {e}")))?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// A listener handing out TLS streams; handshakes run in their own tasks so a slow or plain
/// HTTP client cannot hold up the others. Dropping it closes the port.
struct TlsListener {
    accepted: tokio::sync::mpsc::Receiver<(
        tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
        SocketAddr,
    )>,
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl TlsListener {
    fn new(listener: tokio::net::TcpListener, acceptor: tokio_rustls::TlsAcceptor) -> Self {
        let addr = listener
            .local_addr()
            .unwrap_or_else(|_| crate::process::loopback(0));
        let (tx, accepted) = tokio::sync::mpsc::channel(16);
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, peer)) = listener.accept().await else {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                let acceptor = acceptor.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    let handshake =
                        tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream));
                    if let Ok(Ok(tls)) = handshake.await {
                        let _ = tx.send((tls, peer)).await;
                    }
                });
            }
        });
        TlsListener {
            accepted,
            addr,
            task,
        }
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.accepted.recv().await {
            Some(accepted) => accepted,
            // The accept task ended (never, short of a panic): wait for shutdown.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.addr)
    }
}

/// Resolves once the mode becomes `refuse`.
async fn refusing(mut rx: watch::Receiver<ModeState>) {
    loop {
        if rx.borrow_and_update().mode == Mode::Refuse {
            return;
        }
        if rx.changed().await.is_err() {
            return std::future::pending().await;
        }
    }
}

/// Serves `state` until the process ends: on `listener` first, closing the port while the mode
/// is `refuse` and binding `addr` again after it.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: SimState,
    tls: Option<tokio_rustls::TlsAcceptor>,
) -> Result<()> {
    let addr = listener
        .local_addr()
        .map_err(|e| Error::io("local_addr", e))?;
    let mut listener = Some(listener);
    let mut rx = state.inner.mode.subscribe();
    loop {
        // While refusing: no listener at all.
        loop {
            let current = *rx.borrow_and_update();
            if current.mode != Mode::Refuse {
                break;
            }
            listener = None;
            match current.until {
                Some(until) => tokio::select! {
                    _ = tokio::time::sleep_until(until) => state.expire(until),
                    _ = rx.changed() => {}
                },
                None => {
                    if rx.changed().await.is_err() {
                        return Ok(());
                    }
                }
            }
        }
        let tcp = match listener.take() {
            Some(l) => l,
            None => bind_again(addr).await?,
        };
        let app = router(state.clone());
        let shutdown = refusing(state.inner.mode.subscribe());
        let served = match &tls {
            None => axum::serve(tcp, app).with_graceful_shutdown(shutdown).await,
            Some(acceptor) => {
                axum::serve(TlsListener::new(tcp, acceptor.clone()), app)
                    .with_graceful_shutdown(shutdown)
                    .await
            }
        };
        served.map_err(|e| Error::io(format!("serve {addr}"), e))?;
    }
}

/// Binds `addr` again after a `refuse` period (retrying while the port is still in use).
async fn bind_again(addr: SocketAddr) -> Result<tokio::net::TcpListener> {
    let mut last = None;
    for _ in 0..100 {
        match tokio::net::TcpListener::bind(addr).await {
            Ok(listener) => return Ok(listener),
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Err(Error::io(
        format!("bind {addr} again"),
        last.unwrap_or_else(|| std::io::Error::other("bind failed")),
    ))
}

/// A simulator running in this process on its own thread and Tokio runtime.
///
/// Works from plain `#[test]`s and async tests alike; dropping the handle (or
/// [`GatewaySim::shutdown`]) stops it. Every method of [`SimState`] is available through
/// [`Deref`](std::ops::Deref).
#[derive(Debug)]
pub struct GatewaySim {
    state: SimState,
    https: bool,
    served: crate::axum_thread::Served,
}

impl GatewaySim {
    /// Starts a simulator.
    pub fn start(config: SimConfig) -> Result<Self> {
        if !config.listen.ip().is_loopback() {
            return Err(Error::Invalid(format!(
                "the gateway simulator listens on loopback only, not {}",
                config.listen
            )));
        }
        let acceptor = match &config.tls {
            Some((cert, key)) => Some(tls_acceptor(cert, key)?),
            None => None,
        };
        let listener = std::net::TcpListener::bind(config.listen)
            .map_err(|e| Error::io(format!("bind {}", config.listen), e))?;
        let state = SimState::new(config.api_key.as_deref(), &config.name);
        let shared = state.clone();
        let https = acceptor.is_some();
        let served =
            crate::axum_thread::serve_with("stoker-gateway-sim", listener, move |listener| {
                serve(listener, shared, acceptor)
            })?;
        Ok(GatewaySim {
            state,
            https,
            served,
        })
    }

    /// `http://127.0.0.1:PORT` or `https://127.0.0.1:PORT` (no trailing slash).
    pub fn url(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://{}", self.served.addr)
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.served.addr
    }

    /// The shared state (also reachable through `Deref`).
    pub fn state(&self) -> &SimState {
        &self.state
    }

    /// Sets the availability like [`SimState::set_mode`], then waits (up to 5 s) until the port
    /// is closed (for [`Mode::Refuse`]) or open again (otherwise), so that the next request
    /// sees the new mode.
    pub fn set_mode(&self, mode: Mode, duration: Option<Duration>) -> Result<()> {
        self.state.set_mode(mode, duration);
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let listening = crate::process::is_listening(self.served.addr);
            if listening != (mode == Mode::Refuse) {
                return Ok(());
            }
            if std::time::Instant::now() >= deadline {
                return Err(Error::Invalid(format!(
                    "the simulator at {} did not switch to {mode:?} in time",
                    self.served.addr
                )));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Stops the simulator and waits for its thread.
    pub fn shutdown(mut self) {
        self.served.stop();
    }
}

impl std::ops::Deref for GatewaySim {
    type Target = SimState;

    fn deref(&self) -> &SimState {
        &self.state
    }
}

/// A throw-away CA and a server certificate for `127.0.0.1` (and `localhost`) it signed, or a
/// self-signed server certificate, made with the `openssl` CLI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestCerts {
    /// The CA certificate (PEM): what a client trusts.
    pub ca_file: PathBuf,
    /// The server certificate (PEM).
    pub cert_file: PathBuf,
    /// The server's private key (PEM).
    pub key_file: PathBuf,
}

impl TestCerts {
    /// Writes `ca.pem`, `ca.key`, `server.pem`, `server.key` into `dir` (created), valid for
    /// two days.
    pub fn generate(dir: &Path) -> Result<TestCerts> {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::io(format!("create {}", dir.display()), e))?;
        new_self_signed(dir, "/CN=stoker gateway-sim test CA", &[], "ca")?;
        openssl(
            dir,
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-subj",
                "/CN=127.0.0.1",
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
            ],
        )?;
        let ext = dir.join("server.ext");
        std::fs::write(
            &ext,
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n\
             extendedKeyUsage=serverAuth\n",
        )
        .map_err(|e| Error::io(format!("write {}", ext.display()), e))?;
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                "server.ext",
                "-out",
                "server.pem",
            ],
        )?;
        Ok(TestCerts {
            ca_file: dir.join("ca.pem"),
            cert_file: dir.join("server.pem"),
            key_file: dir.join("server.key"),
        })
    }

    /// Writes a self-signed certificate for `127.0.0.1` (`basicConstraints CA:FALSE`, as a
    /// server certificate must be to be trusted as its own anchor) and its key into `dir`:
    /// `self-signed.pem` is both `ca_file` and `cert_file`.
    pub fn generate_self_signed(dir: &Path) -> Result<TestCerts> {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::io(format!("create {}", dir.display()), e))?;
        new_self_signed(
            dir,
            "/CN=127.0.0.1",
            &[
                "-addext",
                "subjectAltName=IP:127.0.0.1,DNS:localhost",
                "-addext",
                "basicConstraints=critical,CA:FALSE",
                "-addext",
                "extendedKeyUsage=serverAuth",
            ],
            "self-signed",
        )?;
        Ok(TestCerts {
            ca_file: dir.join("self-signed.pem"),
            cert_file: dir.join("self-signed.pem"),
            key_file: dir.join("self-signed.key"),
        })
    }
}

/// Runs `openssl ARGS` in `dir`.
fn openssl(dir: &Path, args: &[&str]) -> Result<()> {
    crate::process::run(Command::new("openssl").args(args).current_dir(dir)).map(|_| ())
}

/// A new RSA key `{name}.key` and a certificate `{name}.pem` it signs itself, for `subject`,
/// valid for two days, with the `extensions` (`-addext …`) given.
fn new_self_signed(dir: &Path, subject: &str, extensions: &[&str], name: &str) -> Result<()> {
    let (key, cert) = (format!("{name}.key"), format!("{name}.pem"));
    let mut args = vec![
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", subject,
    ];
    args.extend_from_slice(extensions);
    args.extend_from_slice(&["-keyout", &key, "-out", &cert]);
    openssl(dir, &args)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_names_round_trip() {
        for endpoint in Endpoint::ALL {
            assert_eq!(Endpoint::from_name(endpoint.name()), Some(endpoint));
            assert_eq!(Endpoint::from_path(endpoint.path()), Some(endpoint));
            let json = serde_json::to_string(&endpoint).expect("json");
            assert_eq!(json, format!("\"{}\"", endpoint.name()));
        }
        assert_eq!(Endpoint::from_name("scan"), None);
    }

    #[test]
    fn faults_are_used_up() {
        let s = SimState::new(None, "t");
        assert_eq!(s.take_fault(Endpoint::ScanProjects), None);
        s.set_fault(Endpoint::ScanProjects, Fault::status(500).times(2));
        assert_eq!(s.take_fault(Endpoint::ScanConfig), None);
        assert_eq!(
            s.take_fault(Endpoint::ScanProjects).map(|f| f.status),
            Some(500)
        );
        assert_eq!(
            s.take_fault(Endpoint::ScanProjects).map(|f| f.status),
            Some(500)
        );
        assert_eq!(s.take_fault(Endpoint::ScanProjects), None);
        s.set_fault(Endpoint::GatewayInfo, Fault::status(503));
        for _ in 0..5 {
            assert!(s.take_fault(Endpoint::GatewayInfo).is_some());
        }
        s.clear_faults();
        assert!(s.faults().is_empty());
    }

    #[test]
    fn fault_json_defaults() {
        let f: Fault = serde_json::from_str("{}").expect("json");
        assert_eq!(f, Fault::status(503));
        let f: Fault =
            serde_json::from_str(r#"{"status": 0, "delay_ms": 5, "times": 1}"#).expect("json");
        assert_eq!(f, Fault::delay(Duration::from_millis(5)).times(1));
        assert!(serde_json::from_str::<Fault>(r#"{"code": 1}"#).is_err());
    }

    #[test]
    fn keys_and_designers() {
        let s = SimState::new(Some("k:secret"), "t");
        let mut headers = HeaderMap::new();
        assert_eq!(s.check_key(&headers), (false, false));
        headers.insert(API_TOKEN_HEADER, "k:wrong".parse().expect("header"));
        assert_eq!(s.check_key(&headers), (true, false));
        headers.insert(API_TOKEN_HEADER, "k:secret".parse().expect("header"));
        assert_eq!(s.check_key(&headers), (true, true));
        assert_eq!(
            SimState::new(None, "t").check_key(&HeaderMap::new()),
            (false, true)
        );

        let a = s.open_designer("alice", "demo");
        let b = s.open_designer("bob", "");
        assert_ne!(a.id, b.id);
        assert_eq!(s.designers(), vec![a.clone(), b.clone()]);
        assert!(s.close_designer(&a.id));
        assert!(!s.close_designer(&a.id));
        assert_eq!(s.designers(), vec![b]);
        let json = s.designers_json();
        assert_eq!(json["items"][0]["user"], "bob");
        assert_eq!(json["metadata"]["total"], 1);
        s.close_all_designers();
        assert!(s.designers().is_empty());
    }
}
