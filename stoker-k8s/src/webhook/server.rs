//! The HTTPS server the API server calls: `/mutate-v1-pod` and `/validate-gatewaysync` (the
//! answers are [`crate::admission`]'s), plus `/healthz` for anyone checking the port.
//!
//! When the operator cannot look up what an answer needs (the API server does not answer the
//! GatewaySync list), it answers HTTP 500: the API server then applies the configuration's
//! `failurePolicy` — `Ignore` admits the pod unchanged, `Fail` refuses it — which is the
//! choice the cluster's administrator made, not ours to override.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::api::{Api, ListParams};
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview};
use serde::de::DeserializeOwned;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use crate::accept::next_connection;
use crate::crd::GatewaySync;
use crate::injector::InjectorConfig;
use crate::metrics::OperatorMetrics;
use crate::{admission, annotations};

/// The mutating webhook's path.
pub const MUTATE_PATH: &str = "/mutate-v1-pod";
/// The validating webhook's path.
pub const VALIDATE_PATH: &str = "/validate-gatewaysync";
/// The largest AdmissionReview accepted: an object is at most ~1.5 MiB in etcd, and an update
/// review carries the old object too.
const BODY_LIMIT: usize = 8 * 1024 * 1024;
/// How long a client has to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// What the handlers need.
pub(crate) struct Handlers {
    pub client: kube::Client,
    pub injector: InjectorConfig,
    /// The namespaces the operator manages; empty: all.
    pub namespaces: Vec<String>,
    pub metrics: OperatorMetrics,
}

impl Handlers {
    fn manages(&self, namespace: &str) -> bool {
        self.namespaces.is_empty() || self.namespaces.iter().any(|n| n == namespace)
    }
}

/// The routes.
pub(crate) fn router(handlers: Arc<Handlers>) -> Router {
    Router::new()
        .route(MUTATE_PATH, post(mutate))
        .route(VALIDATE_PATH, post(validate))
        .route("/healthz", get(|| async { "ok\n" }))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(handlers)
}

/// An answer the API server can read, or a plain HTTP error for it to apply its failure
/// policy to.
enum Answer {
    Review(Box<AdmissionResponse>),
    Failed(StatusCode, String),
}

impl IntoResponse for Answer {
    fn into_response(self) -> Response {
        match self {
            Answer::Review(response) => axum::Json(response.into_review()).into_response(),
            Answer::Failed(status, message) => (status, format!("{message}\n")).into_response(),
        }
    }
}

/// Reads an AdmissionReview; a body that is not one is a 400 the API server logs.
fn parse<T>(body: &[u8]) -> Result<AdmissionRequest<T>, Answer>
where
    T: kube::Resource + DeserializeOwned,
{
    let review: AdmissionReview<T> = serde_json::from_slice(body).map_err(|error| {
        Answer::Failed(
            StatusCode::BAD_REQUEST,
            format!("not an AdmissionReview: {error}"),
        )
    })?;
    review.try_into().map_err(|error| {
        Answer::Failed(
            StatusCode::BAD_REQUEST,
            format!("an AdmissionReview without a request: {error}"),
        )
    })
}

async fn mutate(State(handlers): State<Arc<Handlers>>, body: Bytes) -> Answer {
    let started = Instant::now();
    let request = match parse::<Pod>(&body) {
        Ok(request) => request,
        Err(answer) => return answer,
    };
    let namespace = request.namespace.clone().unwrap_or_default();
    let (answer, result) = mutation(&handlers, &request, &namespace).await;
    handlers
        .metrics
        .injection(&namespace, result, started.elapsed());
    answer
}

async fn mutation(
    handlers: &Handlers,
    request: &AdmissionRequest<Pod>,
    namespace: &str,
) -> (Answer, &'static str) {
    let pod_name = pod_name(request);
    let asks = request
        .object
        .as_ref()
        .is_some_and(annotations::asks_for_injection);
    if !asks {
        return (
            Answer::Review(Box::new(AdmissionResponse::from(request))),
            "skipped",
        );
    }
    if !handlers.manages(namespace) {
        tracing::info!(%namespace, pod = %pod_name, "pod asks for the agent in a namespace this operator does not manage; admitted unchanged");
        return (
            Answer::Review(Box::new(AdmissionResponse::from(request))),
            "skipped",
        );
    }
    let response = match decide(handlers, request, namespace).await {
        Ok(response) => response,
        Err(error) => {
            let message = format!(
                "listing GatewaySyncs in namespace {namespace:?}: {}",
                stoker_core::error::chain(&error)
            );
            tracing::warn!(%namespace, pod = %pod_name, error = %message, "cannot answer a pod admission; the webhook's failurePolicy decides");
            return (
                Answer::Failed(StatusCode::INTERNAL_SERVER_ERROR, message),
                "error",
            );
        }
    };
    let result = if !response.allowed {
        tracing::info!(%namespace, pod = %pod_name, reason = %response.result.message, "pod denied");
        "denied"
    } else if response.patch.is_some() {
        tracing::info!(%namespace, pod = %pod_name, "agent injected");
        "injected"
    } else {
        "skipped"
    };
    (Answer::Review(Box::new(response)), result)
}

/// The injector's answer for `request`, from the namespace's GatewaySyncs.
///
/// They are read first from the API server's watch cache (`resourceVersion=0`): a consistent
/// read goes to etcd, which on a busy control plane costs tens of milliseconds on every pod
/// creation. The cache may lag a GatewaySync written a moment ago, so a refusal (no such
/// GatewaySync, paused, unknown profile) is decided again on a consistent read: only an
/// answer the cache cannot have got wrong is taken from it.
async fn decide(
    handlers: &Handlers,
    request: &AdmissionRequest<Pod>,
    namespace: &str,
) -> Result<AdmissionResponse, kube::Error> {
    let api: Api<GatewaySync> = Api::namespaced(handlers.client.clone(), namespace);
    let cached = api.list(&ListParams::default().match_any()).await?;
    let response = admission::mutate_pod(request, &cached.items, &handlers.injector);
    if response.allowed {
        return Ok(response);
    }
    let current = api.list(&ListParams::default()).await?;
    Ok(admission::mutate_pod(
        request,
        &current.items,
        &handlers.injector,
    ))
}

/// The pod's name for logs: pods of a ReplicaSet have only a `generateName` at admission.
fn pod_name(request: &AdmissionRequest<Pod>) -> String {
    let meta = request.object.as_ref().map(|pod| &pod.metadata);
    meta.and_then(|m| m.name.clone())
        .or_else(|| meta.and_then(|m| m.generate_name.as_ref().map(|g| format!("{g}*"))))
        .unwrap_or_else(|| request.name.clone())
}

async fn validate(State(handlers): State<Arc<Handlers>>, body: Bytes) -> Answer {
    let started = Instant::now();
    let (answer, namespace, result) = validation(&handlers, &body).await;
    handlers
        .metrics
        .validation(&namespace, result, started.elapsed());
    answer
}

async fn validation(handlers: &Handlers, body: &[u8]) -> (Answer, String, &'static str) {
    let request = match parse::<GatewaySync>(body) {
        Ok(request) => request,
        // A spec that does not even read as a GatewaySync: refuse it with the reason, which
        // names the field (the CRD's schema catches most of these first).
        Err(answer) => return (unreadable(body).unwrap_or(answer), String::new(), "denied"),
    };
    let namespace = request.namespace.clone().unwrap_or_default();
    let Some(gateway_sync) = request.object.as_ref() else {
        let response = AdmissionResponse::from(&request);
        return (Answer::Review(Box::new(response)), namespace, "allowed");
    };
    let secrets: Api<Secret> = Api::namespaced(handlers.client.clone(), &namespace);
    let inventory = match crate::controller::referenced_secret_inventory(
        &gateway_sync.spec,
        &secrets,
    )
    .await
    {
        Ok(inventory) => inventory,
        Err(error) => {
            let message = stoker_core::error::chain(&error);
            tracing::warn!(%namespace, error = %message, "cannot answer a GatewaySync admission; the webhook's failurePolicy decides");
            let answer = Answer::Failed(StatusCode::INTERNAL_SERVER_ERROR, message);
            return (answer, namespace, "error");
        }
    };
    let response = admission::validate_gateway_sync(&request, &inventory);
    let result = if response.allowed {
        "allowed"
    } else {
        "denied"
    };
    if !response.allowed {
        tracing::info!(%namespace, name = %request.name, reason = %response.result.message, "GatewaySync denied");
    }
    (Answer::Review(Box::new(response)), namespace, result)
}

/// A denial for a review whose object is not a readable GatewaySync, when the review itself
/// (its uid) can be read.
fn unreadable(body: &[u8]) -> Option<Answer> {
    let review: AdmissionReview<kube::core::DynamicObject> = serde_json::from_slice(body).ok()?;
    let request: AdmissionRequest<kube::core::DynamicObject> = review.try_into().ok()?;
    let object = request.object.as_ref()?;
    let error = serde_json::to_value(object)
        .and_then(serde_json::from_value::<GatewaySync>)
        .err()?;
    let response =
        AdmissionResponse::from(&request).deny(format!("not a valid GatewaySync: {error}"));
    Some(Answer::Review(Box::new(response)))
}

/// Accepts TLS connections on `listener` and serves `router` on them until `shutdown` turns
/// true; then answers the requests in flight and returns.
pub(crate) async fn serve(
    listener: TcpListener,
    tls: rustls::ServerConfig,
    router: Router,
    mut shutdown: watch::Receiver<bool>,
) {
    let acceptor = TlsAcceptor::from(Arc::new(tls));
    let graceful = GracefulShutdown::new();
    while let Some((tcp, peer)) = next_connection(&listener, &mut shutdown, "webhook server").await
    {
        // Answers are small and wanted at once: without this, Nagle's algorithm holds the
        // last bytes of an answer until the API server acknowledges the first ones, which it
        // may delay by up to 40 ms.
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!(%peer, %error, "webhook server: setting TCP_NODELAY");
        }
        let acceptor = acceptor.clone();
        let service = TowerToHyperService::new(router.clone());
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(stream)) => stream,
                Ok(Err(error)) => return handshake_failed(peer, &error.to_string()),
                Err(_) => return handshake_failed(peer, "timed out"),
            };
            let builder = Builder::new(TokioExecutor::new());
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            if let Err(error) = watcher.watch(connection.into_owned()).await {
                tracing::debug!(%peer, %error, "webhook connection ended with an error");
            }
        });
    }
    graceful.shutdown().await;
}

fn handshake_failed(peer: SocketAddr, error: &str) {
    // The API server retries; a client that does not trust our CA yet shows up here.
    tracing::debug!(%peer, %error, "webhook TLS handshake failed");
}
