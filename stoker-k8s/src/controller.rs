//! The `GatewaySync` reconciler (kube-runtime, following kube-rs's controller-rs): a
//! [`Context`], [`reconcile`], [`error_policy`], the finalizer helper and server-side apply for
//! status.
//!
//! One pass over a resource:
//! 1. `ProfilesValid`: the spec's profiles, var keys and referenced Secrets ([`crate::validation`]).
//! 2. The ref to resolve: `spec.git.ref`, or the `stoker.io/requested-ref` annotation until the
//!    spec catches up (then the annotation is removed) ([`crate::refs`]).
//! 3. With `spec.git.auth.githubApp`, the agents' installation token in the Secret
//!    `stoker-github-token-{cr}` (owned by the resource), renewed when it expires within
//!    [`ControllerConfig::github_token_refresh_margin`] ([`crate::github_token`]); the Secret is
//!    deleted when the resource stops using an App. A failed exchange leaves the Secret as it
//!    was, is retried with backoff, and publishes a `GitHubAppExchangeFailed` Warning Event
//!    when it starts failing (not at every retry).
//! 4. Resolution through the `git` Source, without cloning (with the App's token, when it uses
//!    one; without a token, `RefResolved=False` reason `GitHubAppExchangeFailed`) →
//!    `RefResolved`, `lastSync*`.
//! 5. The metadata ConfigMap `stoker-metadata-{cr}` (owned by the resource) for the agents.
//! 6. Discovery of the gateway pods and their agents' status ConfigMaps (for a gateway without
//!    one, its entry in stoker-operator v0.5.1's shared `stoker-status-{cr}`, while a fleet
//!    migrates: [`crate::legacy_status`]) → `discoveredGateways`,
//!    `AllGatewaysSynced`, `SidecarInjected`, `AgentReady`, `RefSkew`,
//!    `SSHHostKeyVerification`, `Ready` ([`crate::aggregate`]); Events on changes
//!    ([`crate::events`]); status written with server-side apply. With
//!    [`ControllerConfig::auto_bind_agent`], the RoleBinding `stoker-agent-{cr}` (owned by the
//!    resource) binding the pods' service accounts to the agents' ClusterRole ([`crate::rbac`]),
//!    written with server-side apply; an `RBACError` Warning Event when that fails.
//! 7. Requeue after the polling interval, or sooner when the App's token is due for renewal
//!    before that. Pods and status ConfigMaps are watched and mapped back
//!    to their resource, so agents' reports show up without waiting for the next poll (an
//!    agent's heartbeat alone updates the cache without triggering a reconciliation).
//!
//! On deletion the finalizer removes the metadata and status ConfigMaps (v0.5.1's shared one
//! too) and the token Secret (owner references would do it too, but only where a garbage
//! collector runs).

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret};
use k8s_openapi::api::rbac::v1::RoleBinding;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event as KubeEvent, EventType, Reporter};
use kube::runtime::finalizer::{Event as FinalizerEvent, finalizer};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource, ResourceExt};
use stoker_core::{GitSource, GitSourceConfig, RetryPolicy, Source};

use crate::aggregate::{self, AggregateInput, Revision};
use crate::alerting::NOTIFICATIONS_DELIVERED;
use crate::annotations::{
    CR_NAME, FINALIZER, REQUESTED_AT, REQUESTED_BY, REQUESTED_REF, is_object_name,
};
use crate::conditions;
use crate::crd::GatewaySync;
use crate::credentials;
use crate::discovery;
use crate::error::{Error, Result};
use crate::events::{self, ControllerEvent, reasons};
use crate::gateway_status::{self, GatewayStatusReport};
use crate::github_token::{self, Kept};
use crate::legacy_status;
use crate::metadata::{self, AgentMetadata};
use crate::metrics::OperatorMetrics;
use crate::rbac;
use crate::refs;
use crate::validation::{self, SecretInventory};

/// The field manager of everything the operator writes with server-side apply.
pub const FIELD_MANAGER: &str = "stoker-operator";

/// How often a resource is looked at again when polling is off (agents' reports still arrive
/// through the watches).
pub const IDLE_RESYNC: Duration = Duration::from_secs(300);

/// Settings of the controller.
#[derive(Debug, Clone)]
pub struct ControllerConfig {
    /// Where the operator keeps per-resource Git scratch data and credential files.
    pub state_dir: PathBuf,
    /// Namespaces to watch; empty watches all.
    pub namespaces: Vec<String>,
    /// Only resources with these labels (`key=value,...`).
    pub label_selector: Option<String>,
    /// At most this many reconciliations run at once (0: unlimited).
    pub concurrency: u16,
    /// First delay after a transient failure; doubles per failure up to `max_backoff`.
    pub initial_backoff: Duration,
    /// The longest delay after failures.
    pub max_backoff: Duration,
    /// Network attempts per resolution (transient errors); the controller's backoff does the
    /// rest.
    pub git_attempts: u32,
    /// Extra CA bundle for Git over HTTPS.
    pub git_ca_file: Option<PathBuf>,
    /// Keep each resource's RoleBinding `stoker-agent-{cr}`, binding its gateway pods' service
    /// accounts to the ClusterRole `stoker-agent` ([`crate::rbac`]; the chart's
    /// `rbac.autoBindAgent.enabled`). Off: the operator writes none (and leaves existing ones
    /// to their owner's garbage collection).
    pub auto_bind_agent: bool,
    /// A GitHub App installation token kept for the agents is renewed once it expires within
    /// this margin (GitHub's tokens live an hour; default 10 minutes).
    pub github_token_refresh_margin: Duration,
}

impl Default for ControllerConfig {
    fn default() -> Self {
        ControllerConfig {
            state_dir: std::env::temp_dir().join("stoker-operator"),
            namespaces: Vec::new(),
            label_selector: None,
            concurrency: 8,
            initial_backoff: Duration::from_secs(5),
            max_backoff: Duration::from_secs(300),
            git_attempts: 1,
            git_ca_file: None,
            auto_bind_agent: true,
            github_token_refresh_margin: github_token::DEFAULT_REFRESH_MARGIN,
        }
    }
}

/// What every reconciliation shares.
pub struct Context {
    /// The API client.
    pub client: Client,
    /// Prometheus metrics.
    pub metrics: OperatorMetrics,
    /// Who publishes the Events ([`events::publish`]).
    pub reporter: Reporter,
    /// Settings.
    pub config: ControllerConfig,
    /// Consecutive failures per resource, for exponential backoff.
    failures: Mutex<HashMap<ObjectRef<GatewaySync>, u32>>,
    /// Resources whose GitHub App token could not be renewed at their last reconciliation:
    /// the Warning Event is published when the failure starts, not at every retry.
    token_failing: Mutex<HashSet<ObjectRef<GatewaySync>>>,
    /// The status each resource's last reconciliation computed: what Events are decided
    /// against. The status in the object a reconciliation gets can lag the one the previous
    /// pass wrote (the watch has not delivered it yet), and deciding against it published the
    /// same Events twice.
    told: Mutex<HashMap<ObjectRef<GatewaySync>, crate::crd::GatewaySyncStatus>>,
    /// The pods and status ConfigMaps of each watched namespace (`None`: all), kept by the
    /// watches that also trigger reconciliations ([`run`] fills it).
    caches: Mutex<Vec<(Option<String>, Caches)>>,
    /// Notifications to people (`spec.alerting`), sent in the background.
    pub alerting: crate::alerting::runtime::Alerting,
}

/// What the controller's watches keep, so that a reconciliation reads pods and agents' reports
/// from memory instead of listing every pod of the namespace each time. Each watch event updates
/// the cache before it triggers a reconciliation, so the reconciliation it triggers sees it.
#[derive(Clone)]
struct Caches {
    /// Every pod, slimmed down to what discovery reads ([`slim_pod`]).
    pods: Store<Pod>,
    /// The gateway status ConfigMaps.
    reports: Store<ConfigMap>,
    /// Turns `true` once both have their first listing. (Reconciliations wait on this, not on
    /// `Store::wait_until_ready`: that one wakes only the last of several concurrent waiters,
    /// and the others slept until their timeout.)
    ready: tokio::sync::watch::Receiver<bool>,
}

impl Caches {
    fn new(pods: Store<Pod>, reports: Store<ConfigMap>) -> Caches {
        let (ready_tx, ready) = tokio::sync::watch::channel(false);
        let (pods_ready, reports_ready) = (pods.clone(), reports.clone());
        tokio::spawn(async move {
            // One waiter per store.
            if pods_ready.wait_until_ready().await.is_ok()
                && reports_ready.wait_until_ready().await.is_ok()
            {
                let _ = ready_tx.send(true);
            }
        });
        Caches {
            pods,
            reports,
            ready,
        }
    }
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Context {
    /// A context for `client`.
    pub fn new(client: Client, metrics: OperatorMetrics, config: ControllerConfig) -> Arc<Self> {
        let reporter = Reporter {
            controller: FIELD_MANAGER.to_owned(),
            instance: std::env::var("POD_NAME").ok(),
        };
        let alerting = crate::alerting::runtime::Alerting::new(
            client.clone(),
            metrics.clone(),
            reporter.clone(),
            stoker_core::notify::dispatch::DispatchConfig::default(),
        );
        Arc::new(Context {
            alerting,
            reporter,
            client,
            metrics,
            config,
            failures: Mutex::new(HashMap::new()),
            token_failing: Mutex::new(HashSet::new()),
            told: Mutex::new(HashMap::new()),
            caches: Mutex::new(Vec::new()),
        })
    }

    fn register_caches(&self, namespace: Option<String>, caches: Caches) {
        let mut all = match self.caches.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        all.retain(|(ns, _)| *ns != namespace);
        all.push((namespace, caches));
    }

    /// The caches covering `namespace`: its own, else the all-namespaces ones; none when the
    /// reconciler runs outside [`run`].
    fn caches_for(&self, namespace: &str) -> Option<Caches> {
        let all = match self.caches.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        all.iter()
            .find(|(ns, _)| ns.as_deref() == Some(namespace))
            .or_else(|| all.iter().find(|(ns, _)| ns.is_none()))
            .map(|(_, caches)| caches.clone())
    }

    fn failures(&self) -> std::sync::MutexGuard<'_, HashMap<ObjectRef<GatewaySync>, u32>> {
        match self.failures.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// The status Events were last decided against for `gs` ([`Context::told`]); without one
    /// (first pass since start), the object's.
    fn last_told(&self, gs: &GatewaySync) -> crate::crd::GatewaySyncStatus {
        let told = match self.told.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        told.get(&ObjectRef::from_obj(gs))
            .cloned()
            .or_else(|| gs.status.clone())
            .unwrap_or_default()
    }

    /// Remembers `status` as told for `gs`; `None` forgets it (deletion).
    fn remember_told(&self, gs: &GatewaySync, status: Option<crate::crd::GatewaySyncStatus>) {
        let mut told = match self.told.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        let key = ObjectRef::from_obj(gs);
        match status {
            Some(status) => told.insert(key, status),
            None => told.remove(&key),
        };
    }

    /// Records whether the token renewal of `gs` fails now; true when that is a change.
    fn token_failure_changed(&self, gs: &GatewaySync, failing: bool) -> bool {
        let mut set = match self.token_failing.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        let key = ObjectRef::from_obj(gs);
        if failing {
            set.insert(key)
        } else {
            set.remove(&key)
        }
    }

    async fn publish(&self, gs: &GatewaySync, event: &ControllerEvent) {
        let type_ = if event.is_warning() {
            EventType::Warning
        } else {
            EventType::Normal
        };
        self.event(gs, type_, event.reason(), event.note()).await;
    }

    async fn event(&self, gs: &GatewaySync, type_: EventType, reason: &str, note: String) {
        let event = KubeEvent {
            type_,
            reason: reason.to_owned(),
            note: Some(note),
            action: "Reconcile".to_owned(),
            secondary: None,
        };
        if let Err(error) =
            events::publish(&self.client, &self.reporter, &event, &gs.object_ref(&())).await
        {
            tracing::warn!(%error, reason, "could not publish an Event");
        }
    }
}

/// Runs the controller until `shutdown` resolves.
pub async fn run(
    context: Arc<Context>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let shutdown = futures::FutureExt::shared(shutdown);
    let namespaces: Vec<Option<String>> = if context.config.namespaces.is_empty() {
        vec![None]
    } else {
        context
            .config
            .namespaces
            .iter()
            .cloned()
            .map(Some)
            .collect()
    };
    let controllers = namespaces.into_iter().map(|namespace| {
        let context = context.clone();
        let shutdown = shutdown.clone();
        async move { run_in(context, namespace, shutdown).await }
    });
    futures::future::join_all(controllers).await;
}

fn api<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope>,
    K::DynamicType: Default,
{
    match namespace {
        Some(namespace) => Api::namespaced(client.clone(), namespace),
        None => Api::all(client.clone()),
    }
}

async fn run_in(
    context: Arc<Context>,
    namespace: Option<String>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let client = context.client.clone();
    let namespace = namespace.as_deref();
    let mut gs_watch = watcher::Config::default();
    if let Some(selector) = &context.config.label_selector {
        gs_watch = gs_watch.labels(selector);
    }
    // Every ConfigMap an agent writes: ours per pod, and stoker-operator v0.5.1's shared one
    // per resource (it has no component label, only this one).
    let status_watch = watcher::Config::default().labels(&format!(
        "{}={}",
        crate::annotations::MANAGED_BY_LABEL,
        crate::annotations::MANAGED_BY_AGENT
    ));
    let metadata_watch = watcher::Config::default().labels(&format!(
        "{}={}",
        crate::annotations::COMPONENT_LABEL,
        crate::annotations::COMPONENT_METADATA
    ));
    // Pods and status ConfigMaps: one watch each, which both fills a cache and triggers the
    // reconciliation of the resource the object names (the cache first).
    let (pods, pod_writer) = reflector::store::<Pod>();
    let pod_events = watcher(api::<Pod>(&client, namespace), watcher::Config::default())
        .modify(slim_pod)
        .reflect(pod_writer)
        .touched_objects();
    let (reports, report_writer) = reflector::store::<ConfigMap>();
    let report_events = watcher(api::<ConfigMap>(&client, namespace), status_watch)
        .modify(|configmap: &mut ConfigMap| configmap.metadata.managed_fields = None)
        .reflect(report_writer)
        .touched_objects()
        .predicate_filter(report_without_heartbeat, Default::default());
    context.register_caches(namespace.map(str::to_owned), Caches::new(pods, reports));
    let controller = Controller::new(api::<GatewaySync>(&client, namespace), gs_watch)
        .owns(api::<ConfigMap>(&client, namespace), metadata_watch)
        .watches_stream(pod_events, |pod: Pod| {
            let cr = pod.annotations().get(CR_NAME)?.trim().to_owned();
            Some(ObjectRef::new(&cr).within(&pod.namespace()?))
        })
        .watches_stream(report_events, |configmap: ConfigMap| {
            let cr = legacy_status::legacy_status_owner(&configmap).or_else(|| {
                configmap
                    .data
                    .as_ref()?
                    .get(gateway_status::keys::CR_NAME)
                    .cloned()
            })?;
            Some(ObjectRef::new(&cr).within(&configmap.namespace()?))
        })
        .with_config(
            kube::runtime::controller::Config::default().concurrency(context.config.concurrency),
        )
        .trigger_backoff(TriggerBackoff::default())
        .graceful_shutdown_on(shutdown);
    controller
        .run(reconcile, error_policy, context)
        .for_each(|result| async move {
            match result {
                Ok((object, _)) => tracing::debug!(resource = %object, "reconciled"),
                Err(error) => {
                    tracing::debug!(error = %stoker_core::error::chain(&error), "reconcile failed")
                }
            }
        })
        .await;
}

/// A hash of a status ConfigMap without its heartbeat: a report whose only change is the
/// agent's heartbeat reaches the cache (`AgentReady` reads it at the next reconciliation) but
/// triggers none.
fn report_without_heartbeat(configmap: &ConfigMap) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    configmap.metadata.uid.hash(&mut hasher);
    if let Some(data) = &configmap.data {
        for (key, value) in data {
            if key != gateway_status::keys::LAST_HEARTBEAT_TIME {
                (key, value).hash(&mut hasher);
            }
        }
    }
    Some(hasher.finish())
}

/// The pause after a watch error, shared by all the controller's watches (kube-runtime merges
/// them into one stream and pauses all of it after an error of any): 100 ms, doubling up to
/// 2 s, back to 100 ms after any event.
///
/// kube-runtime's default (client-go's per-watch 0.8 s doubling to 30 s, reset only by an
/// event) turned the errors the watches get across an API server restart into consecutive
/// pauses of up to 30 s of every watch: nothing was noticed (a new GatewaySync, a new pod) for
/// 110 s after a restart in tests/controller_restart.rs. Each watch error still costs a pause,
/// so a watch that keeps failing (an API server that is down) is retried at most every 2 s.
#[derive(Debug, Clone)]
struct TriggerBackoff {
    next: Duration,
}

impl TriggerBackoff {
    const MIN: Duration = Duration::from_millis(100);
    const MAX: Duration = Duration::from_secs(2);
}

impl Default for TriggerBackoff {
    fn default() -> Self {
        TriggerBackoff { next: Self::MIN }
    }
}

impl Iterator for TriggerBackoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let delay = self.next;
        self.next = (delay * 2).min(Self::MAX);
        Some(delay)
    }
}

impl kube::runtime::utils::Backoff for TriggerBackoff {
    fn reset(&mut self) {
        self.next = Self::MIN;
    }
}

/// Reconciles one `GatewaySync` (through the finalizer).
#[tracing::instrument(skip_all, fields(namespace = gs.namespace().unwrap_or_default(), name = %gs.name_any()))]
pub async fn reconcile(gs: Arc<GatewaySync>, context: Arc<Context>) -> Result<Action> {
    let started = Instant::now();
    let namespace = gs.namespace().ok_or_else(|| Error::NotNamespaced {
        name: gs.name_any(),
    })?;
    let api: Api<GatewaySync> = Api::namespaced(context.client.clone(), &namespace);
    let outcome = finalizer(&api, FINALIZER, gs.clone(), |event| async {
        match event {
            FinalizerEvent::Apply(gs) => apply(&gs, &context).await,
            FinalizerEvent::Cleanup(gs) => cleanup(&gs, &context).await,
        }
    })
    .await
    .map_err(|error| Error::Finalizer(Box::new(error)));
    context.metrics.reconciled(
        &namespace,
        &gs.name_any(),
        started.elapsed(),
        crate::metrics::ReconcileResult::of(&outcome),
    );
    if outcome.is_ok() {
        context.failures().remove(&ObjectRef::from_obj(gs.as_ref()));
    }
    outcome
}

/// After a failed reconciliation: retry with exponential backoff per resource.
pub fn error_policy(gs: Arc<GatewaySync>, error: &Error, context: Arc<Context>) -> Action {
    let key = ObjectRef::from_obj(gs.as_ref());
    let failures = {
        let mut map = context.failures();
        let count = map.entry(key).or_insert(0);
        *count = count.saturating_add(1);
        *count
    };
    let delay = backoff(
        context.config.initial_backoff,
        context.config.max_backoff,
        failures,
    );
    tracing::warn!(error = %stoker_core::error::chain(error), name = %gs.name_any(), failures, retry_in_s = delay.as_secs_f64(), "reconcile failed");
    Action::requeue(delay)
}

/// `initial · 2^(failures-1)`, capped at `max`.
pub fn backoff(initial: Duration, max: Duration, failures: u32) -> Duration {
    let factor = 2u32.saturating_pow(failures.saturating_sub(1).min(20));
    initial.saturating_mul(factor).min(max)
}

#[allow(clippy::too_many_lines)] // the reconciler's steps in order; issue 18 item 8 splits them
async fn apply(gs: &GatewaySync, context: &Context) -> Result<Action> {
    let client = &context.client;
    let name = gs.name_any();
    let namespace = gs.namespace().unwrap_or_default();
    let generation = gs.metadata.generation.unwrap_or(0);
    let now = Timestamp::now();
    let previous = gs.status.clone().unwrap_or_default();
    let told = context.last_told(gs);
    let mut status = previous.clone();
    status.observed_generation = Some(generation);
    status.profile_count = i32::try_from(gs.spec.sync.profiles.len()).unwrap_or(i32::MAX);

    // 1. Profiles and referenced Secrets (only those: a namespace's Secrets can be many and
    // large, Helm keeps every release in one).
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &namespace);
    let inventory = referenced_secret_inventory(&gs.spec, &secrets).await?;
    let problems = validation::validate(&gs.spec, &inventory);
    conditions::set(
        &mut status.conditions,
        validation::profiles_valid_condition(&problems, generation, now),
    );

    // `spec.webhook.secretRef`: said on the resource, since the receiver may not say it.
    crate::receiver::secret_ref::update_condition(
        &gs.spec,
        &secrets,
        &mut status.conditions,
        generation,
        now,
    )
    .await;
    let polling = polling_period(gs, &mut status.conditions, generation, now);

    // 2. Which ref.
    let decision = refs::ref_to_resolve(&gs.spec.git.reference, gs.metadata.annotations.as_ref());
    if decision.remove_annotation {
        remove_requested_ref(gs, context).await?;
    }

    // 3. The agents' GitHub App token. Kept fresh even while paused: a renewed token changes
    // nothing the agents sync, and they find it valid when the resource is resumed.
    let github = keep_github_token(gs, &secrets, context).await;

    // 4. Resolve (not while paused: nothing may change for the agents).
    let mut transient: Option<Error> = None;
    let resolved: Option<Revision> = if gs.spec.paused {
        previous.last_sync_commit.clone().map(|commit| Revision {
            reference: previous
                .last_sync_ref
                .clone()
                .unwrap_or_else(|| decision.reference.clone()),
            commit,
        })
    } else {
        let started = Instant::now();
        let outcome = resolve(gs, &decision.reference, &secrets, &github, context).await;
        context
            .metrics
            .ref_resolved(&namespace, &name, started.elapsed(), outcome.is_ok());
        match outcome {
            Ok(commit) => {
                let revision = Revision {
                    reference: decision.reference.clone(),
                    commit,
                };
                let first = told.last_sync_commit.is_none();
                let changed = told.last_sync_commit.as_deref() != Some(revision.commit.as_str());
                aggregate::record_resolution(&mut status, &revision, generation, now);
                if first {
                    context
                        .event(
                            gs,
                            EventType::Normal,
                            reasons::REF_RESOLVED,
                            format!("{} resolved to {}", revision.reference, revision.commit),
                        )
                        .await;
                } else if changed {
                    context
                        .event(
                            gs,
                            EventType::Normal,
                            reasons::REF_UPDATED,
                            format!(
                                "{} moved from {} to {}",
                                revision.reference,
                                aggregate::short_commit(
                                    told.last_sync_commit.as_deref().unwrap_or_default()
                                ),
                                revision.commit
                            ),
                        )
                        .await;
                }
                Some(revision)
            }
            Err(error) => {
                let message = error.to_string();
                // Without a token, the exchange's failure is the cause, and step 3 published
                // it when it started.
                let no_token = matches!(error, Error::GithubAppTokenUnavailable { .. });
                let reason = if no_token {
                    conditions::reasons::GITHUB_APP_EXCHANGE_FAILED
                } else {
                    conditions::reasons::REF_RESOLUTION_FAILED
                };
                // When the next attempt comes: the error policy's backoff for a transient
                // failure (or while the token fails), else the next poll.
                let retry_in = if error.is_transient() || github.failure.is_some() {
                    let failures = context
                        .failures()
                        .get(&ObjectRef::from_obj(gs))
                        .copied()
                        .unwrap_or(0);
                    backoff(
                        context.config.initial_backoff,
                        context.config.max_backoff,
                        failures.saturating_add(1),
                    )
                } else {
                    polling.unwrap_or(IDLE_RESYNC)
                };
                aggregate::record_resolution_failure(
                    &mut status,
                    reason,
                    &message,
                    Some(retry_in),
                    generation,
                    now,
                );
                if events::resolution_failure_is_news(&told) && !no_token {
                    context
                        .event(
                            gs,
                            EventType::Warning,
                            reasons::REF_RESOLUTION_FAILED,
                            format!("Ref resolution failed: {message}"),
                        )
                        .await;
                }
                if error.is_transient() {
                    transient = Some(error);
                }
                // Agents keep the last resolved commit.
                previous.last_sync_commit.clone().map(|commit| Revision {
                    reference: previous.last_sync_ref.clone().unwrap_or_default(),
                    commit,
                })
            }
        }
    };

    // 5. The agents' metadata.
    if let Some(revision) = &resolved {
        write_metadata(gs, revision, context).await?;
    }

    // 6. Gateways and their reports.
    let (pod_list, report_list, legacy) = gateways_and_reports(&name, &namespace, context).await?;
    let gateways = discovery::discover(&name, &pod_list);
    let mut reports: Vec<GatewayStatusReport> = report_list
        .iter()
        .filter_map(|configmap| match GatewayStatusReport::from_configmap(configmap) {
            Ok(report) => Some(report),
            Err(error) => {
                tracing::warn!(error = %stoker_core::error::chain(&error), configmap = %configmap.name_any(), "ignored an unreadable gateway status ConfigMap");
                None
            }
        })
        .collect();
    // Gateways whose v0.5.1 agent is not replaced yet: its entry, where ours is missing.
    if let Some(legacy) = &legacy {
        let found = legacy_status::legacy_reports(&name, legacy, &gateways, &reports);
        reports.extend(found);
    }
    aggregate::aggregate(
        &mut status,
        &AggregateInput {
            gs,
            pods: &gateways,
            reports: &reports,
            resolved: resolved.as_ref(),
            now,
        },
    );
    for event in events::status_events(&told, &status) {
        context.publish(gs, &event).await;
    }
    // Notifications to people: decided against what was told, queued, never waited for.
    match context.alerting.notify(gs, &told, &status, now).await {
        Some(condition) => conditions::set(&mut status.conditions, condition),
        None => conditions::remove(&mut status.conditions, NOTIFICATIONS_DELIVERED),
    };
    context.remember_told(gs, Some(status.clone()));

    // The agents' permissions: every pod annotated for the resource counts, whatever its phase
    // (an agent waiting for them keeps its pod Pending).
    if context.config.auto_bind_agent
        && let Err(error) = bind_agents(gs, &pod_list, context).await
    {
        let message = stoker_core::error::chain(&error);
        tracing::warn!(error = %message, "could not write the agents' RoleBinding");
        context
            .event(
                gs,
                EventType::Warning,
                reasons::RBAC_ERROR,
                format!("Failed to create agent RoleBinding: {message}"),
            )
            .await;
        if error.is_transient() && transient.is_none() {
            transient = Some(error);
        }
    }

    // 7. Status.
    if status != previous {
        let patch = serde_json::json!({
            "apiVersion": "stoker.io/v1alpha1",
            "kind": "GatewaySync",
            "status": status,
        });
        let api: Api<GatewaySync> = Api::namespaced(client.clone(), &namespace);
        api.patch_status(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&patch),
        )
        .await
        .map_err(|source| Error::kube("writing status of GatewaySync", &name, source))?;
    }
    context.metrics.observe(gs, &status);
    if let Some(error) = transient.or(github.failure) {
        // Status and Events say what failed; the error policy retries with backoff.
        return Err(error);
    }
    let period = polling.unwrap_or(IDLE_RESYNC);
    // Back when the token is due, even if nothing else changes before.
    let renewal = github.usable.as_ref().map(|token| {
        token
            .refresh_in(Timestamp::now(), context.config.github_token_refresh_margin)
            .max(MIN_TOKEN_REQUEUE)
    });
    Ok(Action::requeue(
        renewal.map_or(period, |due| due.min(period)),
    ))
}

/// The polling period (`None`: polling is off). An interval that is not a positive Go
/// duration is accepted, as stoker-operator v0.5.1 accepted it, and polls at the default (60s,
/// as v0.5.1 did); the `PollingIntervalValid=False` condition says so until it is fixed, and
/// is removed once it is.
fn polling_period(
    gs: &GatewaySync,
    conditions: &mut Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition>,
    generation: i64,
    now: Timestamp,
) -> Option<Duration> {
    match gs.spec.polling.period() {
        Ok(period) => {
            conditions::remove(conditions, conditions::POLLING_INTERVAL_VALID);
            period
        }
        Err(error) => {
            tracing::warn!(error = %error, "spec.polling.interval is not a positive duration; polling at the default");
            let message = format!(
                "spec.polling.interval: {error}; polling every {}",
                crate::crd::DEFAULT_POLLING_INTERVAL
            );
            conditions::set(
                conditions,
                conditions::new(
                    conditions::POLLING_INTERVAL_VALID,
                    conditions::Status::False,
                    conditions::reasons::INVALID_POLLING_INTERVAL,
                    message,
                    generation,
                    now,
                ),
            );
            Some(DEFAULT_POLLING_PERIOD)
        }
    }
}

/// `crd::DEFAULT_POLLING_INTERVAL` as a duration.
const DEFAULT_POLLING_PERIOD: Duration = Duration::from_secs(60);

/// The shortest wait before renewing a token: a timer that fires a little early finds it still
/// fresh, and should not then spin.
const MIN_TOKEN_REQUEUE: Duration = Duration::from_secs(1);

fn github_app_spec(gs: &GatewaySync) -> Option<&crate::crd::GithubAppSpec> {
    gs.spec.git.auth.as_ref()?.github_app.as_ref()
}

/// Keeps the agents' GitHub App token Secret when the resource uses an App
/// ([`github_token::keep`]), deletes it when it does not ([`github_token::remove`]). Failures
/// are logged and published as a Warning Event, and returned in [`Kept::failure`] for the
/// caller to retry with backoff. The token itself is never logged.
async fn keep_github_token(gs: &GatewaySync, secrets: &Api<Secret>, context: &Context) -> Kept {
    let name = gs.name_any();
    let namespace = gs.namespace().unwrap_or_default();
    let secret = metadata::github_token_secret_name(&name);
    let Some(spec) = github_app_spec(gs) else {
        context.token_failure_changed(gs, false);
        context.metrics.forget_github_app_token(&namespace, &name);
        let failure = match github_token::remove(gs, secrets).await {
            Ok(removed) => {
                if removed {
                    tracing::info!(%secret, "the resource no longer uses a GitHub App; deleted its token Secret");
                }
                None
            }
            Err(error) => {
                tracing::warn!(error = %stoker_core::error::chain(&error), %secret, "could not delete the unused GitHub App token Secret");
                Some(error)
            }
        };
        return Kept {
            usable: None,
            refreshed: false,
            failure,
        };
    };
    let margin = context.config.github_token_refresh_margin;
    let kept = github_token::keep(gs, spec, secrets, margin, FIELD_MANAGER).await;
    if let Some(token) = &kept.usable {
        context.metrics.set_github_app_token_expiry(
            &namespace,
            &name,
            spec,
            token.expires_at.as_second(),
        );
        if kept.refreshed {
            tracing::info!(%secret, expires_at = %token.expires_at, "wrote a new GitHub App installation token for the agents");
        }
    }
    let started_failing = context.token_failure_changed(gs, kept.failure.is_some());
    if let Some(error) = &kept.failure {
        let message = stoker_core::error::chain(error);
        let still_valid_until = kept
            .usable
            .as_ref()
            .map(|token| token.expires_at.to_string());
        tracing::warn!(error = %message, %secret, ?still_valid_until, "could not renew the agents' GitHub App installation token; the Secret is left as it was");
        // A Secret the operator may not write is not the App's fault: another reason.
        let reason = if matches!(error, Error::Kube { .. }) {
            reasons::GITHUB_APP_TOKEN_SECRET_FAILED
        } else {
            reasons::GITHUB_APP_EXCHANGE_FAILED
        };
        // Once per run of failures: the retries (with backoff) would repeat it.
        if started_failing {
            context.event(gs, EventType::Warning, reason, message).await;
        }
    }
    kept
}

/// How long a reconciliation waits for the watches' first listing.
const CACHE_READY_TIMEOUT: Duration = Duration::from_secs(30);

/// What a reconciliation reads about the gateways: the pods annotated for the resource,
/// their agents' status ConfigMaps, and stoker-operator v0.5.1's shared status ConfigMap when
/// there is one.
type GatewayReading = (Vec<Pod>, Vec<ConfigMap>, Option<ConfigMap>);

/// The pods annotated for the resource `name`, its gateways' status ConfigMaps and v0.5.1's
/// shared one ([`legacy_status`]): from the watches' caches, or read when the reconciler runs
/// without them.
async fn gateways_and_reports(
    name: &str,
    namespace: &str,
    context: &Context,
) -> Result<GatewayReading> {
    let Some(caches) = context.caches_for(namespace) else {
        let pods: Api<Pod> = Api::namespaced(context.client.clone(), namespace);
        let pod_list = pods
            .list(&ListParams::default())
            .await
            .map_err(|source| Error::kube("listing Pods", namespace, source))?;
        let configmaps: Api<ConfigMap> = Api::namespaced(context.client.clone(), namespace);
        let reports = configmaps
            .list(&ListParams::default().labels(&gateway_status::status_configmap_selector(name)))
            .await
            .map_err(|source| Error::kube("listing status ConfigMaps", namespace, source))?;
        let legacy_name = legacy_status::legacy_status_configmap_name(name);
        let legacy = configmaps
            .get_opt(&legacy_name)
            .await
            .map_err(|source| Error::kube("reading ConfigMap", &legacy_name, source))?
            .filter(|configmap| {
                legacy_status::legacy_status_owner(configmap).as_deref() == Some(name)
            });
        return Ok((pod_list.items, reports.items, legacy));
    };
    let mut ready = caches.ready.clone();
    match tokio::time::timeout(CACHE_READY_TIMEOUT, ready.wait_for(|ready| *ready)).await {
        Ok(Ok(_)) => {}
        Ok(Err(_)) | Err(_) => {
            return Err(Error::Timeout {
                what: format!("the first listing of Pods and status ConfigMaps in {namespace}"),
                after: CACHE_READY_TIMEOUT,
            });
        }
    }
    let pods = caches
        .pods
        .state_filter(|pod| {
            pod.metadata.namespace.as_deref() == Some(namespace)
                && pod.annotations().get(CR_NAME).map(|cr| cr.trim()) == Some(name)
        })
        .iter()
        .map(|pod| Pod::clone(pod))
        .collect();
    let label = crate::annotations::label_value(name);
    let reports = caches
        .reports
        .state_filter(|configmap| {
            let labels = configmap.labels();
            configmap.metadata.namespace.as_deref() == Some(namespace)
                && labels
                    .get(crate::annotations::COMPONENT_LABEL)
                    .map(String::as_str)
                    == Some(crate::annotations::COMPONENT_GATEWAY_STATUS)
                && labels.get(crate::annotations::LABEL_CR_NAME) == Some(&label)
        })
        .iter()
        .map(|configmap| ConfigMap::clone(configmap))
        .collect();
    let legacy = caches
        .reports
        .find(|configmap| {
            configmap.metadata.namespace.as_deref() == Some(namespace)
                && legacy_status::legacy_status_owner(configmap).as_deref() == Some(name)
        })
        .map(|configmap| ConfigMap::clone(&configmap));
    Ok((pods, reports, legacy))
}

/// Keeps of a pod what discovery ([`discovery::gateway_pod`]) and the watch's mapping read:
/// metadata without managed fields, container names, the service account, the phase. A cache
/// of every pod of the watched namespaces stays small that way.
fn slim_pod(pod: &mut Pod) {
    use k8s_openapi::api::core::v1::{Container, PodSpec, PodStatus};
    pod.metadata.managed_fields = None;
    if let Some(annotations) = pod.metadata.annotations.as_mut() {
        annotations.remove("kubectl.kubernetes.io/last-applied-configuration");
    }
    let names = |containers: &[Container]| -> Vec<Container> {
        containers
            .iter()
            .map(|container| Container {
                name: container.name.clone(),
                ..Container::default()
            })
            .collect()
    };
    pod.spec = pod.spec.take().map(|spec| PodSpec {
        containers: names(&spec.containers),
        init_containers: spec.init_containers.as_deref().map(names),
        service_account_name: spec.service_account_name,
        ..PodSpec::default()
    });
    pod.status = pod.status.take().map(|status| PodStatus {
        phase: status.phase,
        ..PodStatus::default()
    });
}

/// The Secrets the spec refers to and their keys (values are not kept); missing ones are
/// simply absent, for [`validation::validate`] to report.
pub(crate) async fn referenced_secret_inventory(
    spec: &crate::crd::GatewaySyncSpec,
    secrets: &Api<Secret>,
) -> Result<SecretInventory> {
    // A name no object can have is simply not found (and must not reach a URL).
    let names: std::collections::BTreeSet<String> = validation::referenced_secrets(spec)
        .into_iter()
        .map(|reference| reference.name)
        .filter(|name| is_object_name(name))
        .collect();
    let mut found = Vec::with_capacity(names.len());
    for name in names {
        if let Some(secret) = secrets
            .get_opt(&name)
            .await
            .map_err(|source| Error::kube("reading Secret", &name, source))?
        {
            found.push(secret);
        }
    }
    Ok(SecretInventory::from_secrets(found.iter()))
}

fn uses_github_app(gs: &GatewaySync) -> bool {
    github_app_spec(gs).is_some()
}

/// Resolves `reference` with the resource's credentials: for a GitHub App, the token kept for
/// the agents (`github`), and without one [`Error::GithubAppTokenUnavailable`] at once.
async fn resolve(
    gs: &GatewaySync,
    reference: &str,
    secrets: &Api<Secret>,
    github: &Kept,
    context: &Context,
) -> Result<String> {
    let github_token = github.usable.as_ref().map(|token| token.token.as_str());
    if uses_github_app(gs) && github_token.is_none() {
        return Err(Error::GithubAppTokenUnavailable {
            reason: github.failure.as_ref().map_or_else(
                || "the token Secret holds none".to_owned(),
                |error| stoker_core::error::chain(error),
            ),
        });
    }
    let namespace = gs.namespace().unwrap_or_default();
    let dir = context
        .config
        .state_dir
        .join(&namespace)
        .join(gs.name_any());
    let auth =
        credentials::git_auth(secrets, &gs.spec, &dir.join("credentials"), github_token).await?;
    let mut config = GitSourceConfig::new(gs.spec.git.repo.clone(), dir.join("git"))
        .with_auth(auth)
        .with_retry(RetryPolicy {
            max_attempts: context.config.git_attempts.max(1),
            ..RetryPolicy::default()
        });
    if let Some(ca) = &context.config.git_ca_file {
        config = config.with_ca_file(ca);
    }
    let source = GitSource::new(config).map_err(|error| Error::Source(Box::new(error)))?;
    let revision = source
        .resolve(reference)
        .await
        .map_err(|error| Error::Source(Box::new(error)))?;
    Ok(revision.id)
}

async fn write_metadata(gs: &GatewaySync, revision: &Revision, context: &Context) -> Result<()> {
    let name = gs.name_any();
    let namespace = gs.namespace().unwrap_or_default();
    let metadata = AgentMetadata::from_spec(
        &name,
        &gs.spec,
        &revision.reference,
        &revision.commit,
        gs.metadata.generation,
    );
    let configmap = metadata.to_configmap(gs)?;
    let api: Api<ConfigMap> = Api::namespaced(context.client.clone(), &namespace);
    api.patch(
        &metadata::metadata_configmap_name(&name),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&configmap),
    )
    .await
    .map_err(|source| {
        Error::kube(
            "writing ConfigMap",
            metadata::metadata_configmap_name(&name),
            source,
        )
    })?;
    Ok(())
}

/// Applies the RoleBinding `stoker-agent-{cr}` for the pods annotated for `gs`
/// ([`rbac::agent_role_binding`]).
async fn bind_agents(gs: &GatewaySync, pods: &[Pod], context: &Context) -> Result<()> {
    let binding = rbac::agent_role_binding(gs, pods)?;
    let name = rbac::agent_role_binding_name(&gs.name_any());
    let api: Api<RoleBinding> =
        Api::namespaced(context.client.clone(), &gs.namespace().unwrap_or_default());
    api.patch(
        &name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&binding),
    )
    .await
    .map_err(|source| Error::kube("writing RoleBinding", &name, source))?;
    Ok(())
}

async fn remove_requested_ref(gs: &GatewaySync, context: &Context) -> Result<()> {
    let name = gs.name_any();
    let namespace = gs.namespace().unwrap_or_default();
    let api: Api<GatewaySync> = Api::namespaced(context.client.clone(), &namespace);
    let patch = serde_json::json!({
        "metadata": {"annotations": {REQUESTED_REF: null, REQUESTED_AT: null, REQUESTED_BY: null}}
    });
    api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(|source| {
            Error::kube(
                "removing the requested-ref annotation of GatewaySync",
                &name,
                source,
            )
        })?;
    tracing::info!(name = %name, "spec.git.ref caught up with the requested ref; removed the annotation");
    Ok(())
}

async fn cleanup(gs: &GatewaySync, context: &Context) -> Result<Action> {
    let name = gs.name_any();
    let namespace = gs.namespace().unwrap_or_default();
    let configmaps: Api<ConfigMap> = Api::namespaced(context.client.clone(), &namespace);
    let metadata_name = metadata::metadata_configmap_name(&name);
    match configmaps
        .delete(&metadata_name, &DeleteParams::default())
        .await
    {
        Ok(_) => {}
        Err(kube::Error::Api(status)) if status.code == 404 => {}
        Err(source) => return Err(Error::kube("deleting ConfigMap", &metadata_name, source)),
    }
    configmaps
        .delete_collection(
            &DeleteParams::default(),
            &ListParams::default().labels(&gateway_status::status_configmap_selector(&name)),
        )
        .await
        .map_err(|source| Error::kube("deleting status ConfigMaps of", &name, source))?;
    delete_legacy_status(&name, &configmaps).await?;
    let secrets: Api<Secret> = Api::namespaced(context.client.clone(), &namespace);
    github_token::remove(gs, &secrets).await?;
    let dir = context.config.state_dir.join(&namespace).join(&name);
    // tokio's version runs on the blocking pool, off the reconcilers' executor.
    if let Err(error) = tokio::fs::remove_dir_all(&dir).await
        && error.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(%error, dir = %dir.display(), "could not remove the resource's scratch directory");
    }
    context.metrics.forget(&namespace, &name);
    context.token_failure_changed(gs, false);
    context.remember_told(gs, None);
    context.alerting.forget(gs);
    tracing::info!(name = %name, namespace = %namespace, "cleaned up after deletion");
    Ok(Action::await_change())
}

/// Deletes stoker-operator v0.5.1's shared status ConfigMap of the resource `name`, as v0.5.1
/// did on deletion. Only that one: a ConfigMap of ours can have the same name (our per-pod
/// `stoker-status-{cr}-{pod}` of another resource), so the object is checked first and deleted
/// only if it is still the object checked.
async fn delete_legacy_status(name: &str, configmaps: &Api<ConfigMap>) -> Result<()> {
    let legacy_name = legacy_status::legacy_status_configmap_name(name);
    let found = configmaps
        .get_opt(&legacy_name)
        .await
        .map_err(|source| Error::kube("reading ConfigMap", &legacy_name, source))?;
    let Some(legacy) = found
        .filter(|configmap| legacy_status::legacy_status_owner(configmap).as_deref() == Some(name))
    else {
        return Ok(());
    };
    let params = DeleteParams {
        preconditions: Some(kube::api::Preconditions {
            uid: legacy.metadata.uid.clone(),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    match configmaps.delete(&legacy_name, &params).await {
        Ok(_) => Ok(()),
        // Gone, or replaced by another object meanwhile: not ours to delete.
        Err(kube::Error::Api(status)) if status.code == 404 || status.code == 409 => Ok(()),
        Err(source) => Err(Error::kube("deleting ConfigMap", &legacy_name, source)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let (initial, max) = (Duration::from_secs(5), Duration::from_secs(300));
        assert_eq!(backoff(initial, max, 1), Duration::from_secs(5));
        assert_eq!(backoff(initial, max, 3), Duration::from_secs(20));
        assert_eq!(backoff(initial, max, 30), max);
    }

    #[test]
    fn an_unparsable_polling_interval_polls_at_the_default_and_is_a_condition() {
        let mut gs: GatewaySync = serde_json::from_value(serde_json::json!({
            "apiVersion": "stoker.io/v1alpha1", "kind": "GatewaySync",
            "metadata": {"name": "site", "namespace": "plant"},
            "spec": {
                "git": {"repo": "https://git.example/scada.git", "ref": "main"},
                "polling": {"interval": "5 minutes"},
                "sync": {"profiles": {"p": {"mappings": [{"source": "a", "destination": "b"}]}}}
            }
        }))
        .unwrap();
        let now = Timestamp::UNIX_EPOCH;
        let mut found = Vec::new();
        assert_eq!(
            polling_period(&gs, &mut found, 3, now),
            Some(Duration::from_secs(60))
        );
        let condition = conditions::find(&found, conditions::POLLING_INTERVAL_VALID).unwrap();
        assert_eq!(
            (condition.status.as_str(), condition.reason.as_str()),
            ("False", "InvalidPollingInterval")
        );
        assert!(
            condition.message.contains("\"5 minutes\"")
                && condition.message.ends_with("polling every 60s"),
            "{}",
            condition.message
        );
        assert_eq!(condition.observed_generation, Some(3));
        // Zero is no period either.
        gs.spec.polling.interval = "0s".to_owned();
        assert_eq!(
            polling_period(&gs, &mut found, 4, now),
            Some(Duration::from_secs(60))
        );
        // Fixed: the condition goes away, the interval is used.
        gs.spec.polling.interval = "2m".to_owned();
        assert_eq!(
            polling_period(&gs, &mut found, 5, now),
            Some(Duration::from_secs(120))
        );
        assert!(found.is_empty(), "{found:?}");
        // Off: no period, no condition, whatever the interval says.
        gs.spec.polling.enabled = false;
        gs.spec.polling.interval = "soon".to_owned();
        assert_eq!(polling_period(&gs, &mut found, 6, now), None);
        assert!(found.is_empty(), "{found:?}");
    }

    #[test]
    fn watch_errors_pause_briefly() {
        use kube::runtime::utils::Backoff as _;
        let mut backoff = TriggerBackoff::default();
        let delays: Vec<u64> = backoff
            .by_ref()
            .take(7)
            .map(|d| d.as_millis() as u64)
            .collect();
        assert_eq!(delays, [100, 200, 400, 800, 1600, 2000, 2000]);
        backoff.reset();
        assert_eq!(backoff.next(), Some(Duration::from_millis(100)));
    }

    /// Regression: reconciliations waited on `Store::wait_until_ready` themselves, and when
    /// several waited at once (many resources at start-up) only the last was woken; the others
    /// slept until their 30 s timeout.
    #[tokio::test]
    async fn every_reconciliation_waiting_for_the_caches_is_woken() {
        let (pods, mut pod_writer) = reflector::store::<Pod>();
        let (reports, mut report_writer) = reflector::store::<ConfigMap>();
        let caches = Caches::new(pods, reports);
        let waiters: Vec<_> = (0..8)
            .map(|_| {
                let mut ready = caches.ready.clone();
                tokio::spawn(async move { ready.wait_for(|ready| *ready).await.is_ok() })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(50)).await;
        pod_writer.apply_watcher_event(&watcher::Event::InitDone);
        report_writer.apply_watcher_event(&watcher::Event::InitDone);
        for waiter in waiters {
            let woken = tokio::time::timeout(Duration::from_secs(5), waiter).await;
            assert!(matches!(woken, Ok(Ok(true))), "a waiter was not woken");
        }
    }

    #[test]
    fn slim_pods_keep_what_discovery_reads() {
        let mut pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {
                "name": "ignition-2", "namespace": "plant", "uid": "u-1",
                "labels": {"app.kubernetes.io/name": "ignition", "apps.kubernetes.io/pod-index": "2"},
                "annotations": {
                    "stoker.io/cr-name": "site", "stoker.io/profile": "edge",
                    "stoker.io/ref-override": "v2", "stoker.io/inject": "true",
                    "kubectl.kubernetes.io/last-applied-configuration": "{\"big\": true}"
                },
                "managedFields": [{"manager": "kubectl", "operation": "Apply"}]
            },
            "spec": {
                "serviceAccountName": "gateway",
                "containers": [
                    {"name": "ignition", "image": "ignition:8.3", "env": [{"name": "A", "value": "b"}]},
                    {"name": "stoker-agent", "image": "agent"}
                ],
                "initContainers": [{"name": "init", "image": "busybox"}],
                "volumes": [{"name": "data", "emptyDir": {}}]
            },
            "status": {"phase": "Running", "podIP": "10.0.0.1", "conditions": [{"type": "Ready", "status": "True"}]}
        }))
        .unwrap();
        let before = discovery::gateway_pod(&pod);
        slim_pod(&mut pod);
        assert_eq!(discovery::gateway_pod(&pod), before);
        assert!(discovery::is_running(&pod));
        assert!(pod.metadata.managed_fields.is_none());
        assert!(
            !pod.annotations()
                .contains_key("kubectl.kubernetes.io/last-applied-configuration")
        );
        let spec = pod.spec.as_ref().unwrap();
        assert!(spec.volumes.is_none() && spec.containers[0].image.is_none());
        assert!(pod.status.as_ref().unwrap().pod_ip.is_none());
    }

    #[test]
    fn only_valid_object_names_are_looked_up() {
        for good in ["git", "git-token", "a.b-c", "0"] {
            assert!(is_object_name(good), "{good}");
        }
        for bad in [
            "",
            "Git",
            "-a",
            "a-",
            "a/b",
            "a b",
            "../x",
            &"a".repeat(254),
        ] {
            assert!(!is_object_name(bad), "{bad}");
        }
    }
}
