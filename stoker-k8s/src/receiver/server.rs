//! The webhook receiver's HTTP server (plain HTTP: TLS is the Ingress's job, as in
//! stoker-operator v0.5.1). Every replica serves it, leader or not: it only writes annotations
//! on GatewaySyncs, and the leader's controller, which watches them, reconciles on the change.
//!
//! | request | answer |
//! |---|---|
//! | `POST /webhook/{namespace}/{name}` (v0.5.1's) | sets `stoker.io/requested-ref`, `-at`, `-by` from the payload's ref ([`super::payload`]) |
//! | `POST /webhook/push` (a Git host's push event) | every GatewaySync of the repository whose ref the push moved, and whose profiles map a path it touched, resolves at once ([`super::push`]) |
//! | `GET /healthz` | `ok` |
//!
//! Before anything else, a client over its rate ([`RateLimit`]) gets 429 with `Retry-After`,
//! and a body over [`BODY_LIMIT`] 413. Who may ask is decided by [`super::auth`], with the
//! operator's secrets or, failing those, with the secret of the GatewaySync asked about
//! (`spec.webhook.secretRef`); an unauthorized request gets the same 401 whether that
//! GatewaySync exists or not. Every answer counts in
//! `stoker_webhook_receiver_requests_total{source, status_code}`.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::runtime::events::{Event, EventType, Reporter};
use kube::{Resource, ResourceExt};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::auth::Secrets;
use super::limits::{RateLimit, RateLimiter, ReplayCache};
use super::payload::requested_ref;
use super::push::{self, Delivery, PushEvent};
use crate::accept::next_connection;
use crate::annotations::{
    PUSH_COMMIT, PUSH_RECEIVED_AT, REQUESTED_AT, REQUESTED_BY, REQUESTED_REF, is_object_name,
};
use crate::crd::GatewaySync;
use crate::error::{Error, Result};
use crate::events::reasons::WEBHOOK_RECEIVED;
use crate::metrics::OperatorMetrics;

/// The receiver's port unless told otherwise (v0.5.1's).
pub const DEFAULT_PORT: u16 = 9444;
/// The largest body read (v0.5.1's limit); a larger one is answered 413.
pub const BODY_LIMIT: usize = 1 << 20;
/// The Git hosts' push endpoint.
pub const PUSH_PATH: &str = "/webhook/push";
/// v0.5.1's endpoint, per GatewaySync.
pub const REF_PATH: &str = "/webhook/{namespace}/{name}";
/// How long a client has to send its request headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// The metric's `source` when the caller is not known (yet).
const UNKNOWN: &str = "unknown";

/// What the receiver needs.
#[derive(Debug, Clone)]
pub struct ReceiverConfig {
    /// Where to listen (`0.0.0.0:9444` in a pod).
    pub listen: SocketAddr,
    /// The operator's own secrets (`--webhook-hmac-secret`, `--webhook-bearer-token`); none:
    /// every request is let in unless the GatewaySync has its own secret.
    pub secrets: Secrets,
    /// The namespaces the operator manages (empty: all); GatewaySyncs elsewhere do not exist
    /// for the receiver.
    pub namespaces: Vec<String>,
    /// Only GatewaySyncs with these labels (the controller's `--label-selector`) are looked
    /// at by `/webhook/push`.
    pub label_selector: Option<String>,
    /// Requests per client address.
    pub rate_limit: RateLimit,
    /// Take the client's address from the last `X-Forwarded-For` entry (the one the nearest
    /// proxy, the Ingress controller, appended) instead of the connection's: behind an
    /// Ingress every connection comes from the Ingress controller.
    pub trust_forwarded_for: bool,
    /// The longest a request may take, reading its body included (then 503).
    pub request_timeout: Duration,
    /// How long a push's delivery id is remembered (a redelivery within it is not acted on).
    pub replay_window: Duration,
    /// How many delivery ids are remembered at most.
    pub replay_capacity: usize,
}

impl ReceiverConfig {
    /// Defaults for everything but where to listen and the secrets: 20 requests/s per client
    /// with bursts of 40, 30 s per request, delivery ids remembered for 24 h (at most 10,000).
    pub fn new(listen: SocketAddr, secrets: Secrets) -> Self {
        ReceiverConfig {
            listen,
            secrets,
            namespaces: Vec::new(),
            label_selector: None,
            rate_limit: RateLimit::default(),
            trust_forwarded_for: false,
            request_timeout: Duration::from_secs(30),
            replay_window: Duration::from_secs(24 * 3600),
            replay_capacity: 10_000,
        }
    }
}

/// The running receiver.
#[derive(Debug, Clone)]
pub struct Receiver {
    address: SocketAddr,
}

impl Receiver {
    /// The bound address (useful with port 0).
    pub fn address(&self) -> SocketAddr {
        self.address
    }
}

/// Binds `config.listen` and serves until `shutdown` turns true. Fails only when the port
/// cannot be bound.
pub async fn start(
    client: kube::Client,
    config: ReceiverConfig,
    metrics: OperatorMetrics,
    shutdown: watch::Receiver<bool>,
) -> Result<Receiver> {
    let serve_error = |source| Error::Serve {
        address: config.listen.to_string(),
        source,
    };
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(serve_error)?;
    let address = listener.local_addr().map_err(serve_error)?;
    let router = router(Arc::new(Handlers::new(client, config, metrics)));
    tokio::spawn(serve(listener, router, shutdown));
    tracing::info!(%address, paths = ?[REF_PATH, PUSH_PATH], "webhook receiver listening (HTTP)");
    Ok(Receiver { address })
}

/// What the handlers share.
struct Handlers {
    client: kube::Client,
    config: ReceiverConfig,
    metrics: OperatorMetrics,
    reporter: Reporter,
    limiter: Mutex<RateLimiter>,
    replays: Mutex<ReplayCache>,
}

/// Locks a mutex; a panic elsewhere while holding it leaves a counter table that is still
/// usable.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Handlers {
    fn new(client: kube::Client, config: ReceiverConfig, metrics: OperatorMetrics) -> Self {
        let limiter = RateLimiter::new(config.rate_limit, 10_000);
        let replays = ReplayCache::new(config.replay_window, config.replay_capacity);
        Handlers {
            client,
            metrics,
            reporter: Reporter {
                controller: crate::controller::FIELD_MANAGER.to_owned(),
                instance: std::env::var("POD_NAME").ok(),
            },
            limiter: Mutex::new(limiter),
            replays: Mutex::new(replays),
            config,
        }
    }

    fn manages(&self, namespace: &str) -> bool {
        let namespaces = &self.config.namespaces;
        namespaces.is_empty() || namespaces.iter().any(|n| n == namespace)
    }

    /// The client's address: the connection's, or the last `X-Forwarded-For` entry when
    /// trusted.
    fn client_ip(&self, peer: SocketAddr, headers: &HeaderMap) -> IpAddr {
        if !self.config.trust_forwarded_for {
            return peer.ip();
        }
        headers
            .get_all("x-forwarded-for")
            .iter()
            .next_back()
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.rsplit(',').next())
            .and_then(|last| last.trim().parse().ok())
            .unwrap_or(peer.ip())
    }

    /// 429 when the client is over its rate.
    fn admit(&self, peer: SocketAddr, headers: &HeaderMap) -> Option<Answer> {
        let ip = self.client_ip(peer, headers);
        let wait = lock(&self.limiter).check(&ip, Instant::now()).err()?;
        tracing::debug!(client = %ip, "webhook receiver: rate limit exceeded");
        let mut answer = Answer::json(
            UNKNOWN,
            StatusCode::TOO_MANY_REQUESTS,
            json!({"error": "rate limit exceeded"}),
        );
        answer.retry_after = Some(wait.as_secs_f64().ceil().max(1.0) as u64);
        Some(answer)
    }

    /// The GatewaySync `namespace/name`, read from the API server; `None` when it does not
    /// exist for the receiver (also outside the managed namespaces).
    async fn get(&self, namespace: &str, name: &str) -> Result<Option<GatewaySync>, Answer> {
        if !self.manages(namespace) || !is_object_name(namespace) || !is_object_name(name) {
            return Ok(None);
        }
        let api: Api<GatewaySync> = Api::namespaced(self.client.clone(), namespace);
        api.get_opt(name).await.map_err(|error| {
            tracing::warn!(%namespace, %name, %error, "webhook receiver: reading the GatewaySync");
            Answer::internal(UNKNOWN)
        })
    }

    /// Every GatewaySync the operator manages, from the API server's watch cache
    /// (`resourceVersion=0`): a push must not cost a read from etcd per request.
    async fn list(&self) -> Result<Vec<GatewaySync>, Answer> {
        let mut params = ListParams::default().match_any();
        if let Some(selector) = &self.config.label_selector {
            params = params.labels(selector);
        }
        let apis: Vec<Api<GatewaySync>> = if self.config.namespaces.is_empty() {
            vec![Api::all(self.client.clone())]
        } else {
            let client = &self.client;
            let namespaces = self.config.namespaces.iter();
            namespaces
                .map(|ns| Api::namespaced(client.clone(), ns))
                .collect()
        };
        let mut all = Vec::new();
        for api in apis {
            let list = api.list(&params).await.map_err(|error| {
                tracing::warn!(%error, "webhook receiver: listing GatewaySyncs");
                Answer::internal(UNKNOWN)
            })?;
            all.extend(list.items);
        }
        Ok(all)
    }

    /// The verdict of `gs`'s own secret on a request the operator's secrets did not let in.
    async fn own_verdict(&self, gs: &GatewaySync, headers: &HeaderMap, body: &[u8]) -> Verdict {
        match self.own_secret(gs).await {
            OwnSecret::None => Verdict::NoSecret,
            OwnSecret::Unreadable => Verdict::Refused,
            OwnSecret::Value(value) => {
                let secrets = Secrets {
                    hmac: vec![value.clone()],
                    tokens: vec![value],
                };
                if secrets.authorize(headers, body) {
                    Verdict::Passed
                } else {
                    Verdict::Refused
                }
            }
        }
    }

    /// The value of `spec.webhook.secretRef`.
    async fn own_secret(&self, gs: &GatewaySync) -> OwnSecret {
        let Some(reference) = gs.spec.webhook.as_ref().and_then(|w| w.secret_ref.as_ref()) else {
            return OwnSecret::None;
        };
        let namespace = gs.namespace().unwrap_or_default();
        let name = gs.name_any();
        if !is_object_name(&reference.name) {
            return OwnSecret::Unreadable;
        }
        let api: Api<Secret> = Api::namespaced(self.client.clone(), &namespace);
        let secret = match api.get_opt(&reference.name).await {
            Ok(secret) => secret,
            Err(error) => {
                tracing::warn!(%namespace, %name, secret = %reference.name, %error, "webhook receiver: reading spec.webhook.secretRef");
                return OwnSecret::Unreadable;
            }
        };
        let value = secret
            .and_then(|s| s.data)
            .and_then(|mut data| data.remove(&reference.key))
            .map(|bytes| bytes.0)
            .filter(|value| !value.is_empty());
        match value {
            Some(value) => OwnSecret::Value(value),
            None => {
                tracing::warn!(%namespace, %name, secret = %reference.name, key = %reference.key, "webhook receiver: spec.webhook.secretRef names no such Secret or key (or it is empty); requests relying on it are refused");
                OwnSecret::Unreadable
            }
        }
    }

    /// Merge-patches `annotations` onto `gs` and publishes a Normal `WebhookReceived` Event
    /// saying `note`.
    async fn annotate(
        &self,
        gs: &GatewaySync,
        annotations: BTreeMap<&str, String>,
        note: String,
    ) -> Result<(), kube::Error> {
        let namespace = gs.namespace().unwrap_or_default();
        let api: Api<GatewaySync> = Api::namespaced(self.client.clone(), &namespace);
        let patch = json!({"metadata": {"annotations": annotations}});
        let params = PatchParams {
            field_manager: Some(crate::controller::FIELD_MANAGER.to_owned()),
            ..PatchParams::default()
        };
        api.patch(&gs.name_any(), &params, &Patch::Merge(&patch))
            .await?;
        let event = Event {
            type_: EventType::Normal,
            reason: WEBHOOK_RECEIVED.to_owned(),
            note: Some(note),
            action: "ReceiveWebhook".to_owned(),
            secondary: None,
        };
        let regarding = gs.object_ref(&());
        if let Err(error) =
            crate::events::publish(&self.client, &self.reporter, &event, &regarding).await
        {
            tracing::warn!(%namespace, name = %gs.name_any(), %error, "webhook receiver: could not publish the WebhookReceived Event");
        }
        Ok(())
    }

    /// Records the answer in the metric and turns it into a response.
    fn finish(&self, answer: Answer) -> Response {
        self.metrics
            .receiver_request(&answer.source, answer.status.as_u16());
        answer.into_response()
    }
}

/// A GatewaySync's own secret.
enum OwnSecret {
    /// It names none.
    None,
    /// It names one that cannot be read (missing, no such key, empty, API error).
    Unreadable,
    /// Its value.
    Value(Vec<u8>),
}

/// What a GatewaySync's own secret says of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// It has none.
    NoSecret,
    /// The request proves it knows it.
    Passed,
    /// It does not (or the secret cannot be read).
    Refused,
}

/// An answer and the `source` it counts under.
struct Answer {
    source: String,
    status: StatusCode,
    body: AnswerBody,
    retry_after: Option<u64>,
}

enum AnswerBody {
    Json(Value),
    Text(&'static str),
}

impl Answer {
    fn json(source: &str, status: StatusCode, body: Value) -> Answer {
        Answer {
            source: source.to_owned(),
            status,
            body: AnswerBody::Json(body),
            retry_after: None,
        }
    }

    /// v0.5.1's plain-text answers (`unauthorized`, `not found`).
    fn text(source: &str, status: StatusCode, text: &'static str) -> Answer {
        Answer {
            source: source.to_owned(),
            status,
            body: AnswerBody::Text(text),
            retry_after: None,
        }
    }

    /// The one answer to a request that may not ask, whatever exists.
    fn unauthorized() -> Answer {
        Answer::text(UNKNOWN, StatusCode::UNAUTHORIZED, "unauthorized\n")
    }

    fn internal(source: &str) -> Answer {
        let body = json!({"error": "internal error"});
        Answer::json(source, StatusCode::INTERNAL_SERVER_ERROR, body)
    }
}

impl IntoResponse for Answer {
    fn into_response(self) -> Response {
        let mut response = match self.body {
            AnswerBody::Json(value) => (self.status, axum::Json(value)).into_response(),
            AnswerBody::Text(text) => (self.status, text).into_response(),
        };
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// The connection's peer address, given to each request.
#[derive(Debug, Clone, Copy)]
struct Peer(SocketAddr);

/// The routes.
fn router(handlers: Arc<Handlers>) -> Router {
    Router::new()
        .route(PUSH_PATH, post(push_handler))
        .route(REF_PATH, post(ref_handler))
        .route("/healthz", get(|| async { "ok\n" }))
        .with_state(handlers)
}

/// Reads at most [`BODY_LIMIT`] bytes; 413 beyond.
async fn read_body(body: Body) -> Result<Bytes, Answer> {
    match Limited::new(body, BODY_LIMIT).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.downcast_ref::<LengthLimitError>().is_some() => Err(Answer::json(
            UNKNOWN,
            StatusCode::PAYLOAD_TOO_LARGE,
            json!({"error": "payload larger than 1 MiB"}),
        )),
        Err(error) => {
            tracing::debug!(%error, "webhook receiver: reading the body");
            Err(Answer::json(
                UNKNOWN,
                StatusCode::BAD_REQUEST,
                json!({"error": "failed to read body"}),
            ))
        }
    }
}

/// Runs `work` under the rate limit and the request timeout, and records its answer.
async fn guarded(
    handlers: &Handlers,
    peer: Peer,
    headers: &HeaderMap,
    work: impl std::future::Future<Output = Answer>,
) -> Response {
    if let Some(answer) = handlers.admit(peer.0, headers) {
        return handlers.finish(answer);
    }
    let answer = match tokio::time::timeout(handlers.config.request_timeout, work).await {
        Ok(answer) => answer,
        Err(_) => {
            tracing::warn!(peer = %peer.0, "webhook receiver: request timed out");
            let body = json!({"error": "request timed out"});
            Answer::json(UNKNOWN, StatusCode::SERVICE_UNAVAILABLE, body)
        }
    };
    handlers.finish(answer)
}

async fn ref_handler(
    State(handlers): State<Arc<Handlers>>,
    Extension(peer): Extension<Peer>,
    Path((namespace, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let work = requested(&handlers, &namespace, &name, &headers, body);
    guarded(&handlers, peer, &headers, work).await
}

async fn push_handler(
    State(handlers): State<Arc<Handlers>>,
    Extension(peer): Extension<Peer>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let work = pushed(&handlers, &headers, body);
    guarded(&handlers, peer, &headers, work).await
}

/// `POST /webhook/{namespace}/{name}`, as v0.5.1 answers it.
async fn requested(
    handlers: &Handlers,
    namespace: &str,
    name: &str,
    headers: &HeaderMap,
    body: Body,
) -> Answer {
    let body = match read_body(body).await {
        Ok(body) => body,
        Err(answer) => return answer,
    };
    let found = match authorize_one(handlers, namespace, name, headers, &body).await {
        Ok(found) => found,
        Err(answer) => return answer,
    };
    let Some(requested) = requested_ref(&body) else {
        let body = json!({"error": "no ref found in payload"});
        return Answer::json(UNKNOWN, StatusCode::BAD_REQUEST, body);
    };
    let source = requested.source.as_str();
    let gs = match found {
        Some(found) => found,
        None => match handlers.get(namespace, name).await {
            Ok(gs) => gs,
            Err(answer) => return answer,
        },
    };
    let Some(gs) = gs else {
        tracing::info!(%namespace, %name, source, "webhook for a GatewaySync that does not exist");
        return Answer::text(source, StatusCode::NOT_FOUND, "not found\n");
    };
    set_requested_ref(handlers, &gs, &requested.reference, source).await
}

/// Who may ask about `namespace/name`: the operator's secrets first (then nothing is looked
/// up yet: `Ok(None)`), else the GatewaySync's own (`Ok(Some(what was read))`). 401 when
/// neither lets the request in, the same whether the GatewaySync exists or not.
async fn authorize_one(
    handlers: &Handlers,
    namespace: &str,
    name: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Option<Option<GatewaySync>>, Answer> {
    let global = &handlers.config.secrets;
    if !global.is_empty() && global.authorize(headers, body) {
        return Ok(None);
    }
    let gs = handlers.get(namespace, name).await?;
    let verdict = match &gs {
        Some(gs) => handlers.own_verdict(gs, headers, body).await,
        None => Verdict::NoSecret,
    };
    let open = global.is_empty();
    match verdict {
        Verdict::Passed => Ok(Some(gs)),
        Verdict::NoSecret if open => Ok(Some(gs)),
        Verdict::NoSecret | Verdict::Refused => {
            tracing::info!(%namespace, %name, "webhook receiver: unauthorized request");
            Err(Answer::unauthorized())
        }
    }
}

async fn set_requested_ref(
    handlers: &Handlers,
    gs: &GatewaySync,
    reference: &str,
    source: &str,
) -> Answer {
    let (namespace, name) = (gs.namespace().unwrap_or_default(), gs.name_any());
    if gs.annotations().get(REQUESTED_REF).map(String::as_str) == Some(reference) {
        let body = json!({"accepted": true, "ref": reference, "message": "ref already set"});
        return Answer::json(source, StatusCode::ACCEPTED, body);
    }
    let annotations = BTreeMap::from([
        (REQUESTED_REF, reference.to_owned()),
        (REQUESTED_AT, format!("{:.0}", Timestamp::now())),
        (REQUESTED_BY, source.to_owned()),
    ]);
    let note = format!("Webhook from {source}, ref {reference:?}");
    if let Err(error) = handlers.annotate(gs, annotations, note).await {
        tracing::warn!(%namespace, %name, %error, "webhook receiver: annotating the GatewaySync");
        return Answer::internal(source);
    }
    tracing::info!(%namespace, %name, %reference, source, "webhook accepted: ref requested");
    let body = json!({"accepted": true, "ref": reference});
    Answer::json(source, StatusCode::ACCEPTED, body)
}

/// `POST /webhook/push`.
async fn pushed(handlers: &Handlers, headers: &HeaderMap, body: Body) -> Answer {
    let body = match read_body(body).await {
        Ok(body) => body,
        Err(answer) => return answer,
    };
    let global = &handlers.config.secrets;
    let global_ok = !global.is_empty() && global.authorize(headers, &body);
    let event = match push::parse(headers, &body) {
        Ok(Delivery::Push(event)) => event,
        // Pings and other events: nothing is looked up or changed, whoever sends them (a
        // host's ping on a hook with a per-GatewaySync secret must not fail).
        Ok(Delivery::Other { host, event }) => {
            tracing::debug!(host = host.as_str(), %event, "webhook receiver: event ignored");
            let body = json!({"accepted": true, "ignored": event});
            return Answer::json(host.as_str(), StatusCode::ACCEPTED, body);
        }
        Err(error) if global_ok || global.is_empty() => {
            let source = match &error {
                Error::PushPayload { sender, .. } => *sender,
                _ => UNKNOWN,
            };
            tracing::info!(error = %error, "webhook receiver: unreadable push");
            let body = json!({"error": error.to_string()});
            return Answer::json(source, StatusCode::BAD_REQUEST, body);
        }
        // Without the operator's secret nothing says who may know why.
        Err(_) => return Answer::unauthorized(),
    };
    let source = event.host.as_str();
    let matching = match handlers.list().await {
        Ok(all) => moved_by(&event, all),
        Err(mut answer) => {
            answer.source = source.to_owned();
            return answer;
        }
    };
    let authorized = match authorize_push(handlers, matching, global_ok, headers, &body).await {
        Some(authorized) => authorized,
        None => return Answer::unauthorized(),
    };
    if let Some(id) = &event.delivery
        && !lock(&handlers.replays).first_time(id, Instant::now())
    {
        tracing::info!(delivery = %id, source, "webhook receiver: delivery already received");
        let body = json!({"accepted": false, "message": "delivery already received"});
        return Answer::json(source, StatusCode::OK, body);
    }
    trigger(handlers, &event, authorized).await
}

/// The GatewaySyncs of the pushed repository whose ref (the requested one while it is set,
/// else `spec.git.ref`) the push moved, with the commit it moved to.
fn moved_by(event: &PushEvent, all: Vec<GatewaySync>) -> Vec<(GatewaySync, String)> {
    all.into_iter()
        .filter(|gs| event.is_for(&gs.spec.git.repo))
        .filter_map(|gs| {
            let reference = crate::refs::ref_to_resolve(
                &gs.spec.git.reference,
                gs.metadata.annotations.as_ref(),
            )
            .reference;
            let commit = event.moved(&reference)?.commit.clone()?;
            Some((gs, commit))
        })
        .collect()
}

/// Those of `matching` the request may trigger: all when the operator's secret let it in;
/// else those whose own secret it proves, and (when the operator has no secret) those with
/// none. `None` (401) when that leaves none and a secret was asked for, matching or not.
async fn authorize_push(
    handlers: &Handlers,
    matching: Vec<(GatewaySync, String)>,
    global_ok: bool,
    headers: &HeaderMap,
    body: &[u8],
) -> Option<Vec<(GatewaySync, String)>> {
    if global_ok {
        return Some(matching);
    }
    let open = handlers.config.secrets.is_empty();
    let mut demanded = !open;
    let mut authorized = Vec::new();
    for (gs, commit) in matching {
        match handlers.own_verdict(&gs, headers, body).await {
            Verdict::Passed => authorized.push((gs, commit)),
            Verdict::NoSecret if open => authorized.push((gs, commit)),
            Verdict::NoSecret => {}
            Verdict::Refused => demanded = true,
        }
    }
    if authorized.is_empty() && demanded {
        tracing::info!("webhook receiver: unauthorized push");
        return None;
    }
    Some(authorized)
}

/// Annotates each of `authorized` whose profiles map a path the push touched (the leader's
/// controller then resolves it at once); the others are skipped.
async fn trigger(
    handlers: &Handlers,
    event: &PushEvent,
    authorized: Vec<(GatewaySync, String)>,
) -> Answer {
    let source = event.host.as_str();
    let (mut triggered, mut skipped, mut failed) = (0u32, 0u32, 0u32);
    for (gs, commit) in authorized {
        let (namespace, name) = (gs.namespace().unwrap_or_default(), gs.name_any());
        let profiles = gs.spec.sync.profiles.values();
        let sources = profiles.flat_map(|p| p.mappings.iter().map(|m| m.source.as_str()));
        if !event.touches(sources) {
            tracing::debug!(%namespace, %name, source, "push touched no mapped path; not resolving");
            skipped += 1;
            continue;
        }
        let reference = event
            .refs
            .iter()
            .find(|u| u.commit.as_deref() == Some(commit.as_str()))
            .map_or("", |u| u.name.as_str());
        let short: String = commit.chars().take(7).collect();
        let annotations = BTreeMap::from([
            (PUSH_RECEIVED_AT, format!("{:.6}", Timestamp::now())),
            (PUSH_COMMIT, commit.clone()),
        ]);
        let note = format!("Push to {reference} ({short}) from {source}");
        match handlers.annotate(&gs, annotations, note).await {
            Ok(()) => {
                tracing::info!(%namespace, %name, source, commit = %short, "push received: resolving now");
                triggered += 1;
            }
            Err(error) => {
                tracing::warn!(%namespace, %name, %error, "webhook receiver: annotating the GatewaySync");
                failed += 1;
            }
        }
    }
    if failed > 0 {
        // Let the host's retry through: it must not be taken for a replay.
        if let Some(id) = &event.delivery {
            lock(&handlers.replays).forget(id);
        }
        return Answer::internal(source);
    }
    let body = json!({"accepted": true, "triggered": triggered, "skipped": skipped});
    Answer::json(source, StatusCode::ACCEPTED, body)
}

/// Accepts connections on `listener` and serves `router` until `shutdown` turns true; then
/// answers the requests in flight and returns.
async fn serve(listener: TcpListener, router: Router, mut shutdown: watch::Receiver<bool>) {
    let graceful = GracefulShutdown::new();
    while let Some((tcp, peer)) =
        next_connection(&listener, &mut shutdown, "webhook receiver").await
    {
        let _ = tcp.set_nodelay(true);
        let service = TowerToHyperService::new(router.clone().layer(Extension(Peer(peer))));
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let mut builder = Builder::new(TokioExecutor::new());
            builder
                .http1()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT);
            let connection = builder.serve_connection(TokioIo::new(tcp), service);
            if let Err(error) = watcher.watch(connection.into_owned()).await {
                tracing::debug!(%peer, %error, "webhook receiver connection ended with an error");
            }
        });
    }
    graceful.shutdown().await;
}
