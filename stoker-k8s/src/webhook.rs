//! The operator's admission webhooks over HTTPS: the server the API server calls when a pod or
//! a GatewaySync is created, and the certificate it presents.
//!
//! [`start`] binds the port, starts the certificate keeper and the server, and returns at once
//! with a [`Webhook`] handle; [`Webhook::is_serving`] turns true once a certificate is loaded
//! (the operator's readiness waits for it, so a Service never routes the API server to a
//! replica that cannot complete a TLS handshake).
//!
//! Every replica serves admission, leader or not: admission must not wait for a leader
//! election. See [`CertificateSource`] for where the certificate comes from, and
//! docs/kubernetes.md for the operator's flags and the chart's values.
//!
//! ```no_run
//! # async fn demo(client: kube::Client) -> stoker_k8s::Result<()> {
//! use stoker_k8s::webhook::{self, CertificateSource, SelfSigned, WebhookConfig};
//! let (_stop, shutdown) = tokio::sync::watch::channel(false);
//! let mut setup = SelfSigned {
//!     namespace: "stoker-system".into(),
//!     secret: "stoker-webhook-tls".into(),
//!     names: SelfSigned::service_names("stoker-webhook-service", "stoker-system"),
//!     mutating_configuration: Some("stoker-pod-injection".into()),
//!     validating_configuration: Some("stoker-gatewaysync-validation".into()),
//!     lifetimes: Default::default(),
//! };
//! let config = WebhookConfig::new("0.0.0.0:9443".parse().unwrap(), CertificateSource::SelfSigned(setup));
//! let webhook = webhook::start(client, config, Default::default(), shutdown).await?;
//! println!("admission on {}", webhook.address());
//! # Ok(()) }
//! ```

mod certs;
mod keeper;
mod server;
mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

pub use certs::{CA_CERT_KEY, CA_KEY_KEY, Lifetimes, TLS_CERT_KEY, TLS_KEY_KEY};
pub use keeper::{CertificateSource, STAGED_AT_ANNOTATION, SelfSigned};
pub use server::{MUTATE_PATH, VALIDATE_PATH};

use crate::error::{Error, Result};
use crate::injector::InjectorConfig;
use crate::metrics::OperatorMetrics;

/// What the admission server needs.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// Where to listen (`0.0.0.0:9443` in a pod).
    pub listen: SocketAddr,
    /// Where the serving certificate comes from.
    pub certificates: CertificateSource,
    /// How the injector builds the agent.
    pub injector: InjectorConfig,
    /// The namespaces the operator manages (empty: all); a pod elsewhere is admitted unchanged.
    pub namespaces: Vec<String>,
    /// How often the certificate source is looked at again (default 30 s); renewals due sooner
    /// are acted on when due.
    pub poll: Duration,
}

impl WebhookConfig {
    /// Defaults for everything but where to listen and where the certificate comes from.
    pub fn new(listen: SocketAddr, certificates: CertificateSource) -> Self {
        WebhookConfig {
            listen,
            certificates,
            injector: InjectorConfig::default(),
            namespaces: Vec::new(),
            poll: Duration::from_secs(30),
        }
    }
}

/// The running admission server.
#[derive(Debug, Clone)]
pub struct Webhook {
    address: SocketAddr,
    serving: tls::ServingCertificate,
}

impl Webhook {
    /// The bound address (useful with port 0).
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// True once a certificate is loaded and handshakes can succeed.
    pub fn is_serving(&self) -> bool {
        self.serving.is_loaded()
    }

    /// The PEM of the certificate served now.
    pub fn serving_certificate(&self) -> Option<String> {
        self.serving.current_pem()
    }

    /// Waits until [`Webhook::is_serving`] (checking every 100 ms).
    pub async fn serving(&self) {
        while !self.is_serving() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Binds `config.listen`, then runs the certificate keeper and the server until `shutdown`
/// turns true. Fails only when the port cannot be bound; certificate problems are retried (and
/// logged) in the background, and [`Webhook::is_serving`] stays false until one is loaded.
pub async fn start(
    client: kube::Client,
    config: WebhookConfig,
    metrics: OperatorMetrics,
    shutdown: watch::Receiver<bool>,
) -> Result<Webhook> {
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| Error::Serve {
            address: config.listen.to_string(),
            source,
        })?;
    let address = listener.local_addr().map_err(|source| Error::Serve {
        address: config.listen.to_string(),
        source,
    })?;
    let serving = tls::ServingCertificate::default();
    let tls_config = serving.server_config()?;
    tokio::spawn(keeper::keep(
        client.clone(),
        config.certificates.clone(),
        serving.clone(),
        config.poll,
        shutdown.clone(),
    ));
    let handlers = Arc::new(server::Handlers {
        client,
        injector: config.injector,
        namespaces: config.namespaces,
        metrics,
    });
    tokio::spawn(server::serve(
        listener,
        tls_config,
        server::router(handlers),
        shutdown,
    ));
    tracing::info!(%address, paths = ?[MUTATE_PATH, VALIDATE_PATH], "admission webhooks listening (HTTPS)");
    Ok(Webhook { address, serving })
}
