//! The Stoker operator as a library: its command line ([`Args`]) and [`run`], which wires the
//! controller, leader election, the admission webhooks, the probe and metrics server and
//! graceful shutdown from `stoker-k8s` together. `main.rs` parses arguments, starts logging,
//! installs the process's rustls crypto provider (aws-lc-rs; libraries never do) and prints a
//! failure as its cause chain on one line.
#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, ValueEnum};
use stoker_k8s::controller::{self, Context, ControllerConfig};
use stoker_k8s::crd::PullPolicy;
use stoker_k8s::injector::InjectorConfig;
use stoker_k8s::leader::{LeaderElector, Leadership, LeaseTimings};
use stoker_k8s::metrics::OperatorMetrics;
use stoker_k8s::probes::Probes;
use stoker_k8s::receiver::limits::RateLimit;
use stoker_k8s::receiver::{self, ReceiverConfig, Secrets};
use stoker_k8s::webhook::{self, CertificateSource, SelfSigned, Webhook, WebhookConfig};
use tokio::sync::watch;

/// Stoker operator: resolves the Git ref of every `GatewaySync` (without cloning), publishes
/// what the agents need in `stoker-metadata-<name>` ConfigMaps, and aggregates the gateways'
/// sync status into the resource's status, conditions and Events. Its webhook receiver lets
/// releases, promotions and Git pushes trigger a resolve at once instead of at the next poll.
///
/// Examples:
///   # all namespaces, in a cluster (service account credentials)
///   stoker-operator
///   # two namespaces, outside a cluster (current kubeconfig context), no leader election
///   stoker-operator --namespaces plant-a,plant-b --leader-elect=false
#[derive(Debug, Parser)]
#[command(
    name = "stoker-operator",
    version,
    verbatim_doc_comment,
    after_help = "Environment (besides each option's own variable above):
  KUBECONFIG     kubeconfig outside a cluster (default ~/.kube/config; in a pod, the
                 service account is used)
  POD_NAME       this replica's identity in the leader Lease and in Events
                 (default: $HOSTNAME-<pid>)
  POD_NAMESPACE  the leader Lease's namespace when --leader-election-namespace is unset
  RUST_LOG       log filter; overrides --log-level

Signals: SIGTERM or SIGINT stops reconciling (in-flight reconciliations get
--shutdown-grace-seconds), releases the leader Lease and exits 0. Losing the Lease exits 1."
)]
pub struct Args {
    /// Namespaces to watch, comma-separated; empty watches every namespace.
    #[arg(
        long,
        env = "WATCH_NAMESPACES",
        value_delimiter = ',',
        value_name = "NS,..."
    )]
    pub namespaces: Vec<String>,

    /// Only reconcile GatewaySyncs matching this label selector (e.g. `team=plant-a`).
    #[arg(long, env = "LABEL_SELECTOR", value_name = "SELECTOR")]
    pub label_selector: Option<String>,

    /// At most this many GatewaySyncs are reconciled at once.
    #[arg(long, env = "MAX_CONCURRENT_RECONCILES", default_value_t = 8)]
    pub max_concurrent_reconciles: u16,

    /// Elect a leader with a Lease so only one replica reconciles.
    #[arg(long, env = "LEADER_ELECT", default_value_t = true, action = clap::ArgAction::Set)]
    pub leader_elect: bool,

    /// Namespace of the leader-election Lease (default: `POD_NAMESPACE`, else `default`).
    #[arg(long, env = "LEADER_ELECTION_NAMESPACE")]
    pub leader_election_namespace: Option<String>,

    /// Name of the leader-election Lease.
    #[arg(long, env = "LEADER_ELECTION_ID", default_value = "stoker-operator")]
    pub leader_election_id: String,

    /// Address of `/metrics`, `/healthz` and `/readyz`.
    #[arg(long, env = "PROBE_ADDRESS", default_value = "0.0.0.0:8081")]
    pub probe_address: SocketAddr,

    /// Directory for Git scratch data and credential files (kept private, 0700).
    #[arg(long, env = "STATE_DIR", default_value = "/tmp/stoker-operator")]
    pub state_dir: PathBuf,

    /// Extra CA bundle (PEM) for Git servers over HTTPS.
    #[arg(long, env = "GIT_CA_FILE")]
    pub git_ca_file: Option<PathBuf>,

    /// Keep each GatewaySync's RoleBinding `stoker-agent-<cr>`, binding its gateway pods'
    /// service accounts to the ClusterRole `stoker-agent` (the chart's
    /// `rbac.autoBindAgent.enabled`).
    #[arg(long, env = "AUTO_BIND_AGENT", default_value_t = true, action = clap::ArgAction::Set)]
    pub auto_bind_agent: bool,

    /// Port of the HTTPS admission webhooks (`/mutate-v1-pod`, `/validate-gatewaysync`),
    /// served by every replica; 0 turns admission off.
    #[arg(
        long,
        env = "WEBHOOK_PORT",
        default_value_t = 9443,
        help_heading = "Admission webhooks"
    )]
    pub webhook_port: u16,

    /// Serve `tls.crt` and `tls.key` from this directory (a mounted cert-manager Secret),
    /// reloaded when they change. Unset: the operator keeps its own CA in `--webhook-secret`
    /// and sets the webhook configurations' caBundle itself.
    #[arg(
        long,
        env = "WEBHOOK_CERT_DIR",
        value_name = "DIR",
        help_heading = "Admission webhooks"
    )]
    pub webhook_cert_dir: Option<PathBuf>,

    /// The Secret (in the operator's namespace, `POD_NAMESPACE`) holding the self-managed CA
    /// and serving certificate.
    #[arg(
        long,
        env = "WEBHOOK_SECRET",
        default_value = "stoker-webhook-tls",
        help_heading = "Admission webhooks"
    )]
    pub webhook_secret: String,

    /// The webhook Service: the self-managed certificate names `<svc>.<namespace>.svc` and its
    /// shorter forms.
    #[arg(
        long,
        env = "WEBHOOK_SERVICE",
        default_value = "stoker-webhook-service",
        help_heading = "Admission webhooks"
    )]
    pub webhook_service: String,

    /// More names (DNS or IP) for the self-managed certificate, comma-separated: for an API
    /// server that calls the webhook by URL (an operator run outside the cluster).
    #[arg(
        long,
        env = "WEBHOOK_CERT_EXTRA_NAMES",
        value_delimiter = ',',
        value_name = "NAME,...",
        help_heading = "Admission webhooks"
    )]
    pub webhook_cert_extra_names: Vec<String>,

    /// MutatingWebhookConfiguration whose caBundle the operator keeps (self-managed
    /// certificate); empty: none.
    #[arg(
        long,
        env = "MUTATING_WEBHOOK_CONFIGURATION",
        default_value = "stoker-pod-injection",
        help_heading = "Admission webhooks"
    )]
    pub mutating_webhook_configuration: String,

    /// ValidatingWebhookConfiguration whose caBundle the operator keeps; empty: none.
    #[arg(
        long,
        env = "VALIDATING_WEBHOOK_CONFIGURATION",
        default_value = "stoker-gatewaysync-validation",
        help_heading = "Admission webhooks"
    )]
    pub validating_webhook_configuration: String,

    /// The agent image injected when neither the pod (`stoker.io/agent-image`) nor the
    /// GatewaySync (`spec.agent.image`) names one (the chart's `agentImage`).
    #[arg(long, env = "AGENT_IMAGE", default_value = stoker_k8s::injector::DEFAULT_AGENT_IMAGE, help_heading = "Admission webhooks")]
    pub agent_image: String,

    /// The injected agent's pull policy unless `spec.agent.image.pullPolicy` says.
    #[arg(long, env = "AGENT_IMAGE_PULL_POLICY", value_enum, default_value_t = PullPolicyArg::IfNotPresent, help_heading = "Admission webhooks")]
    pub agent_image_pull_policy: PullPolicyArg,

    /// `sizeLimit` of the injected agent's Git cache emptyDir (a quantity, e.g. `2Gi`); unset:
    /// unbounded.
    #[arg(
        long,
        env = "AGENT_CACHE_SIZE_LIMIT",
        value_name = "QUANTITY",
        help_heading = "Admission webhooks"
    )]
    pub agent_cache_size_limit: Option<String>,

    /// Port of the webhook receiver (plain HTTP; put TLS in front with an Ingress), served by
    /// every replica: `POST /webhook/{namespace}/{name}` sets the ref a GatewaySync syncs
    /// (GitHub release, Argo CD, Kargo or `{"ref": …}` payloads), `POST /webhook/push` takes
    /// Git hosts' push events and makes the GatewaySyncs of the pushed repository and ref
    /// resolve at once. 0 turns the receiver off.
    #[arg(
        long,
        env = "WEBHOOK_RECEIVER_PORT",
        default_value_t = stoker_k8s::receiver::server::DEFAULT_PORT,
        help_heading = "Webhook receiver"
    )]
    pub webhook_receiver_port: u16,

    /// HMAC-SHA256 key: a request passes when its body is signed with it (`X-Hub-Signature-256`,
    /// `X-Hub-Signature`, `X-Gitea-Signature`). Prefer the environment variable: a flag's value
    /// shows in the process list. With neither this nor --webhook-bearer-token, any client
    /// reaching the port may ask (unless the GatewaySync has `spec.webhook.secretRef`).
    #[arg(
        long,
        env = "WEBHOOK_HMAC_SECRET",
        hide_env_values = true,
        value_name = "SECRET",
        help_heading = "Webhook receiver"
    )]
    pub webhook_hmac_secret: Option<Redacted>,

    /// Token for callers that cannot sign: `Authorization: Bearer TOKEN`, GitLab's
    /// `X-Gitlab-Token`, or the password of `Authorization: Basic` (Azure DevOps). Either
    /// secret lets a request in.
    #[arg(
        long,
        env = "WEBHOOK_BEARER_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN",
        help_heading = "Webhook receiver"
    )]
    pub webhook_bearer_token: Option<Redacted>,

    /// Requests per second each client address may send on average (0: no limit); beyond,
    /// 429 with `Retry-After`.
    #[arg(
        long,
        env = "WEBHOOK_RECEIVER_RATE_LIMIT",
        default_value_t = 20.0,
        value_name = "PER_SECOND",
        help_heading = "Webhook receiver"
    )]
    pub webhook_receiver_rate_limit: f64,

    /// Requests a client may send at once before the rate applies (0: no limit).
    #[arg(
        long,
        env = "WEBHOOK_RECEIVER_BURST",
        default_value_t = 40,
        help_heading = "Webhook receiver"
    )]
    pub webhook_receiver_burst: u32,

    /// Rate-limit by the last address of `X-Forwarded-For` (the one the Ingress controller
    /// added) instead of the connection's: behind an Ingress every connection comes from it.
    /// Only with the receiver reachable through that proxy alone.
    #[arg(
        long,
        env = "WEBHOOK_RECEIVER_TRUST_FORWARDED_FOR",
        default_value_t = false,
        action = clap::ArgAction::Set,
        help_heading = "Webhook receiver"
    )]
    pub webhook_receiver_trust_forwarded_for: bool,

    /// The longest one request may take, reading its body included, in seconds (then 503).
    #[arg(
        long,
        env = "WEBHOOK_RECEIVER_TIMEOUT_SECONDS",
        default_value_t = 30,
        help_heading = "Webhook receiver"
    )]
    pub webhook_receiver_timeout_seconds: u64,

    /// Longest delay between retries of a failing GatewaySync, in seconds.
    #[arg(long, env = "MAX_BACKOFF_SECONDS", default_value_t = 300)]
    pub max_backoff_seconds: u64,

    /// How long in-flight reconciliations may take to finish on SIGTERM, in seconds.
    #[arg(long, env = "SHUTDOWN_GRACE_SECONDS", default_value_t = 20)]
    pub shutdown_grace_seconds: u64,

    /// Log level filter (e.g. `info`, `stoker_k8s=debug`); `RUST_LOG` wins when set.
    #[arg(long, env = "STOKER_LOG", default_value = "info")]
    pub log_level: String,

    /// Log format on stderr (JSON for log collectors in a cluster).
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Json)]
    pub log_format: LogFormat,
}

/// A secret from the command line or the environment; `Debug` does not show it.
#[derive(Clone)]
pub struct Redacted(String);

impl Redacted {
    /// The secret's bytes; `None` when empty (an unset chart value renders as "").
    pub fn bytes(&self) -> Option<Vec<u8>> {
        (!self.0.is_empty()).then(|| self.0.as_bytes().to_vec())
    }
}

impl std::fmt::Debug for Redacted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

impl std::str::FromStr for Redacted {
    type Err = std::convert::Infallible;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        Ok(Redacted(value.to_owned()))
    }
}

/// Image pull policies, as Kubernetes spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PullPolicyArg {
    /// Pull on every start.
    #[value(name = "Always")]
    Always,
    /// Pull when the node does not have the image.
    #[value(name = "IfNotPresent")]
    IfNotPresent,
    /// Never pull.
    #[value(name = "Never")]
    Never,
}

impl From<PullPolicyArg> for PullPolicy {
    fn from(policy: PullPolicyArg) -> Self {
        match policy {
            PullPolicyArg::Always => PullPolicy::Always,
            PullPolicyArg::IfNotPresent => PullPolicy::IfNotPresent,
            PullPolicyArg::Never => PullPolicy::Never,
        }
    }
}

/// Log formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Listens for SIGTERM and SIGINT from now on: the returned channel turns `true` on the first
/// one. Registered once, up front, so that a signal arriving at any point of the run (between
/// two phases too) is seen.
fn termination() -> anyhow::Result<watch::Receiver<bool>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("listening for SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("listening for SIGINT")?;
    let (sender, receiver) = watch::channel(false);
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
            _ = int.recv() => tracing::info!("SIGINT: shutting down"),
        }
        let _ = sender.send(true);
        // Keep the handlers installed (and the channel open) until the process exits.
        std::future::pending::<()>().await;
    });
    Ok(receiver)
}

/// Resolves once `termination` has turned `true`.
async fn terminated(termination: &mut watch::Receiver<bool>) {
    if termination.wait_for(|stop| *stop).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// How long stopping the election and releasing the lease may take on shutdown (a round in
/// flight is bounded by the renew deadline; past this the lease simply expires).
const STEP_DOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// Stops the election first, so that no later round takes the lease again, then releases the
/// lease if we still hold it.
async fn step_down(leadership: Option<Leadership>) {
    let Some(leadership) = leadership else {
        return;
    };
    match tokio::time::timeout(STEP_DOWN_TIMEOUT, leadership.step_down()).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => tracing::warn!(
            error = %stoker_core::error::chain(&error),
            "could not release the leader lease"
        ),
        Err(_) => tracing::warn!(
            timeout_s = STEP_DOWN_TIMEOUT.as_secs(),
            "could not release the leader lease in time; it will expire"
        ),
    }
}

/// The operator's namespace: where its Lease and webhook Secret live.
fn own_namespace() -> String {
    std::env::var("POD_NAMESPACE").unwrap_or_else(|_| "default".to_owned())
}

/// The admission server's configuration from the flags; None when `--webhook-port 0`.
fn webhook_config(args: &Args) -> Option<WebhookConfig> {
    if args.webhook_port == 0 {
        return None;
    }
    let listen = std::net::SocketAddr::from(([0, 0, 0, 0], args.webhook_port));
    let certificates = match &args.webhook_cert_dir {
        Some(dir) => CertificateSource::Files(dir.clone()),
        None => {
            let namespace = own_namespace();
            let mut names = SelfSigned::service_names(&args.webhook_service, &namespace);
            names.extend(args.webhook_cert_extra_names.iter().cloned());
            let configuration = |name: &str| (!name.is_empty()).then(|| name.to_owned());
            CertificateSource::SelfSigned(SelfSigned {
                namespace,
                secret: args.webhook_secret.clone(),
                names,
                mutating_configuration: configuration(&args.mutating_webhook_configuration),
                validating_configuration: configuration(&args.validating_webhook_configuration),
                lifetimes: Default::default(),
            })
        }
    };
    let cache_size_limit = args
        .agent_cache_size_limit
        .as_ref()
        .filter(|limit| !limit.is_empty())
        .map(|limit| k8s_openapi::apimachinery::pkg::api::resource::Quantity(limit.clone()));
    let mut config = WebhookConfig::new(listen, certificates);
    config.injector = InjectorConfig {
        default_image: args.agent_image.clone(),
        default_pull_policy: args.agent_image_pull_policy.into(),
        cache_size_limit,
        ..InjectorConfig::default()
    };
    config.namespaces = args.namespaces.clone();
    Some(config)
}

/// The webhook receiver's configuration from the flags; None when `--webhook-receiver-port 0`.
fn receiver_config(args: &Args) -> Option<ReceiverConfig> {
    if args.webhook_receiver_port == 0 {
        return None;
    }
    let listen = SocketAddr::from(([0, 0, 0, 0], args.webhook_receiver_port));
    let secrets = Secrets {
        hmac: args
            .webhook_hmac_secret
            .iter()
            .filter_map(Redacted::bytes)
            .collect(),
        tokens: args
            .webhook_bearer_token
            .iter()
            .filter_map(Redacted::bytes)
            .collect(),
    };
    let mut config = ReceiverConfig::new(listen, secrets);
    config.namespaces = args.namespaces.clone();
    config.label_selector = args.label_selector.clone();
    config.rate_limit = RateLimit {
        per_second: args.webhook_receiver_rate_limit,
        burst: args.webhook_receiver_burst,
    };
    config.trust_forwarded_for = args.webhook_receiver_trust_forwarded_for;
    config.request_timeout = Duration::from_secs(args.webhook_receiver_timeout_seconds.max(1));
    Some(config)
}

/// Starts the webhook receiver unless it is off; it runs until `stop` turns true.
async fn start_receiver(
    args: &Args,
    client: &kube::Client,
    metrics: &OperatorMetrics,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let Some(config) = receiver_config(args) else {
        tracing::info!("webhook receiver off (--webhook-receiver-port 0)");
        return Ok(());
    };
    if config.secrets.is_empty() {
        tracing::warn!(
            "webhook receiver without WEBHOOK_HMAC_SECRET or WEBHOOK_BEARER_TOKEN: any client that reaches its port may ask for a ref (GatewaySyncs with spec.webhook.secretRef still require theirs)"
        );
    }
    receiver::start(client.clone(), config, metrics.clone(), stop)
        .await
        .context("starting the webhook receiver")?;
    Ok(())
}

/// Sets `/readyz` ok now, or, with admission on, once a serving certificate is loaded (a
/// Service must not send the API server to a replica that cannot complete a handshake).
fn ready_when_serving(probes: &Probes, webhook: Option<Webhook>, stop: watch::Receiver<bool>) {
    let Some(webhook) = webhook else {
        probes.set_ready(Ok(()));
        return;
    };
    if webhook.is_serving() {
        probes.set_ready(Ok(()));
        return;
    }
    probes.set_ready(Err(
        "admission webhooks: no serving certificate yet".to_owned()
    ));
    let probes = probes.clone();
    tokio::spawn(async move {
        webhook.serving().await;
        if !*stop.borrow() {
            probes.set_ready(Ok(()));
        }
    });
}

/// Runs the operator until SIGTERM (or until it loses the leader lease, which is an error so
/// that Kubernetes restarts it as a follower).
#[allow(clippy::too_many_lines)] // starts the operator's tasks one after another, in order
pub async fn run(args: Args) -> anyhow::Result<()> {
    let mut termination = termination()?;
    let client = kube::Client::try_default()
        .await
        .context("connecting to the Kubernetes API (in-cluster config or kubeconfig)")?;
    let metrics = OperatorMetrics::new();
    let probes = {
        let metrics = metrics.clone();
        Probes::new(move || metrics.encode().unwrap_or_default())
    };
    let (stop_tx, stop_rx) = watch::channel(false);
    let bound = probes
        .serve(args.probe_address, stop_rx.clone())
        .await
        .context("starting the probe server")?;
    tracing::info!(address = %bound, "probe server listening");

    let webhook = match webhook_config(&args) {
        Some(config) => {
            let webhook = webhook::start(client.clone(), config, metrics.clone(), stop_rx.clone())
                .await
                .context("starting the admission webhook server")?;
            Some(webhook)
        }
        None => {
            tracing::info!("admission webhooks off (--webhook-port 0)");
            None
        }
    };

    // Every replica receives webhooks: they only annotate GatewaySyncs, and the leader's
    // controller reconciles on the change.
    start_receiver(&args, &client, &metrics, stop_rx.clone()).await?;

    let identity = std::env::var("POD_NAME").unwrap_or_else(|_| {
        format!(
            "{}-{}",
            std::env::var("HOSTNAME").unwrap_or_else(|_| "stoker-operator".to_owned()),
            std::process::id()
        )
    });
    let leadership = if args.leader_elect {
        let namespace = args
            .leader_election_namespace
            .clone()
            .or_else(|| std::env::var("POD_NAMESPACE").ok())
            .unwrap_or_else(|| "default".to_owned());
        let candidate = LeaderElector::new(
            client.clone(),
            &namespace,
            args.leader_election_id.clone(),
            identity.clone(),
            LeaseTimings::default(),
        );
        tracing::info!(lease = %args.leader_election_id, %namespace, %identity, "waiting to become the leader");
        Some(candidate.start())
    } else {
        None
    };
    let mut leading = leadership.as_ref().map(Leadership::subscribe);
    // Ready once the process serves (admission included); followers are ready too: they
    // serve admission and would take over reconciling.
    ready_when_serving(&probes, webhook, stop_rx.clone());

    if let Some(leading) = leading.as_mut() {
        tokio::select! {
            result = leading.wait_for(|leading| *leading) => {
                result.context("leader election stopped")?;
            }
            () = terminated(&mut termination) => {
                probes.set_ready(Err("shutting down".to_owned()));
                // A round in flight may just have taken the lease: give it back.
                step_down(leadership).await;
                let _ = stop_tx.send(true);
                return Ok(());
            }
        }
        tracing::info!(%identity, "became the leader");
    }

    let config = ControllerConfig {
        state_dir: args.state_dir.clone(),
        namespaces: args.namespaces.clone(),
        label_selector: args.label_selector.clone(),
        concurrency: args.max_concurrent_reconciles,
        max_backoff: Duration::from_secs(args.max_backoff_seconds.max(1)),
        git_ca_file: args.git_ca_file.clone(),
        auto_bind_agent: args.auto_bind_agent,
        ..ControllerConfig::default()
    };
    let context = Context::new(client.clone(), metrics, config);
    let (shutdown_tx, shutdown_rx) = tokio::sync::oneshot::channel::<()>();
    let controller = tokio::spawn(controller::run(context, async move {
        let _ = shutdown_rx.await;
    }));

    let lost = async {
        match leading.as_mut() {
            Some(leading) => {
                let _ = leading.wait_for(|leading| !*leading).await;
            }
            None => std::future::pending::<()>().await,
        }
    };
    let lost_lease = tokio::select! {
        () = terminated(&mut termination) => false,
        () = lost => true,
    };
    probes.set_ready(Err("shutting down".to_owned()));
    let _ = shutdown_tx.send(());
    let grace = Duration::from_secs(args.shutdown_grace_seconds);
    if tokio::time::timeout(grace, controller).await.is_err() {
        tracing::warn!(
            grace_s = grace.as_secs(),
            "reconciliations did not finish within the grace period"
        );
    }
    step_down(leadership).await;
    let _ = stop_tx.send(true);
    if lost_lease {
        anyhow::bail!(
            "lost the leader lease; exiting so that Kubernetes restarts this replica as a follower"
        );
    }
    Ok(())
}
