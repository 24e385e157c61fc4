//! The sending side of `spec.alerting`: per resource, one [`Dispatcher`] per webhook (built
//! from its URL and secret, read from Secrets at each reconciliation and rebuilt when they
//! change) and the [`FleetMemory`] of what was told.
//!
//! [`Alerting::notify`] never waits on a webhook: it decides ([`fleet_events`]), queues, and
//! returns the `NotificationsDelivered` condition as the deliveries so far left it. Each
//! delivery's outcome is counted in `stoker_controller_notifications_total`; a failed one
//! (after its retries) also marks the webhook failing for the condition and publishes a
//! `NotificationFailed` Warning Event at once.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{ObjectReference, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::runtime::events::{Event as KubeEvent, EventType, Reporter};
use kube::runtime::reflector::ObjectRef;
use kube::{Api, Client, Resource as _, ResourceExt};
use stoker_core::EventKind;
use stoker_core::notify::dispatch::{
    Delivery, DeliveryResult, DispatchConfig, Dispatcher, Observer,
};
use stoker_core::notify::{WebhookConfig, build};

use super::{
    FleetMemory, WebhookHealth, WebhookSpec, fleet_events, notifications_condition, reasons,
    webhook_label,
};
use crate::crd::{GatewaySync, GatewaySyncStatus};
use crate::credentials::secret_value;
use crate::metrics::OperatorMetrics;

/// Notifications of every resource the controller reconciles.
pub struct Alerting {
    client: Client,
    metrics: OperatorMetrics,
    reporter: Reporter,
    dispatch: DispatchConfig,
    timeout: std::time::Duration,
    resources: Mutex<HashMap<ObjectRef<GatewaySync>, Resource>>,
}

impl std::fmt::Debug for Alerting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Alerting")
            .field("dispatch", &self.dispatch)
            .finish_non_exhaustive()
    }
}

/// One resource's webhooks and memory.
struct Resource {
    /// Of the webhooks' resolved configuration (URLs and secrets included): a change rebuilds
    /// them.
    fingerprint: u64,
    hooks: Vec<Hook>,
    memory: FleetMemory,
}

struct Hook {
    on: Vec<EventKind>,
    /// `None` when the webhook could not be built (its health says why).
    dispatcher: Option<Dispatcher>,
    health: Arc<Mutex<WebhookHealth>>,
}

/// A webhook as read from the spec and its Secrets.
enum Resolved {
    Usable(WebhookConfig),
    Invalid(String),
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Alerting {
    /// Notifications through `client` (Secrets, Events), counted in `metrics`; Events are
    /// published as `reporter`.
    pub fn new(
        client: Client,
        metrics: OperatorMetrics,
        reporter: Reporter,
        dispatch: DispatchConfig,
    ) -> Self {
        Alerting {
            client,
            metrics,
            reporter,
            dispatch,
            timeout: WebhookConfig::DEFAULT_TIMEOUT,
            resources: Mutex::new(HashMap::new()),
        }
    }

    /// Tells the webhooks of `gs` what changed from what was told (the memory, made from
    /// `told` the first time) to `current`, without waiting for any delivery. Returns the
    /// `NotificationsDelivered` condition, `None` when `gs` has no enabled webhooks (the
    /// condition is then removed).
    pub async fn notify(
        &self,
        gs: &GatewaySync,
        told: &GatewaySyncStatus,
        current: &GatewaySyncStatus,
        now: Timestamp,
    ) -> Option<Condition> {
        let Some(spec) = gs
            .spec
            .alerting
            .as_ref()
            .filter(|spec| spec.enabled && !spec.webhooks.is_empty())
        else {
            self.forget(gs);
            return None;
        };
        let namespace = gs.namespace().unwrap_or_default();
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), &namespace);
        let mut resolved = Vec::with_capacity(spec.webhooks.len());
        for (index, webhook) in spec.webhooks.iter().enumerate() {
            resolved.push(self.resolve(index, webhook, &secrets).await);
        }
        let fingerprint = fingerprint(&spec.webhooks, &resolved);
        let subject = format!("{namespace}/{}", gs.name_any());
        let health: Vec<WebhookHealth> = {
            let mut resources = lock(&self.resources);
            let resource = resources
                .entry(ObjectRef::from_obj(gs))
                .or_insert_with(|| Resource {
                    fingerprint: fingerprint.wrapping_add(1),
                    hooks: Vec::new(),
                    memory: FleetMemory::from_status(told),
                });
            if resource.fingerprint != fingerprint {
                resource.hooks = self.hooks(gs, &spec.webhooks, resolved);
                resource.fingerprint = fingerprint;
            }
            for event in fleet_events(&mut resource.memory, &subject, current) {
                tracing::info!(kind = %event.kind, message = %event.message, "notification");
                for hook in &resource.hooks {
                    if let Some(dispatcher) = &hook.dispatcher
                        && event.kind.selected_by(&hook.on)
                    {
                        dispatcher.send(event.clone());
                    }
                }
            }
            resource
                .hooks
                .iter()
                .map(|hook| lock(&hook.health).clone())
                .collect()
        };
        notifications_condition(&health, gs.metadata.generation.unwrap_or(0), now)
    }

    /// Stops the webhooks of `gs` (deletion, or alerting turned off) and forgets its memory.
    pub fn forget(&self, gs: &GatewaySync) {
        lock(&self.resources).remove(&ObjectRef::from_obj(gs));
    }

    /// Reads webhook `index`'s URL and secret.
    async fn resolve(
        &self,
        index: usize,
        webhook: &WebhookSpec,
        secrets: &Api<Secret>,
    ) -> Resolved {
        let label = webhook_label(index, webhook.type_);
        let mut config = WebhookConfig::new(webhook.type_.notifier_type(), label.clone())
            .with_timeout(self.timeout);
        let url = match &webhook.url_secret_ref {
            Some(reference) => match secret_value(secrets, reference).await {
                Ok(bytes) => Some(String::from_utf8_lossy(&bytes).trim().to_owned()),
                Err(error) => return Resolved::Invalid(format!("{label}: urlSecretRef: {error}")),
            },
            None => webhook.url.clone(),
        };
        if let Some(url) = url {
            config = config.with_url(url);
        }
        if let Some(reference) = &webhook.secret_ref {
            match secret_value(secrets, reference).await {
                Ok(bytes) => config = config.with_secret(bytes),
                Err(error) => return Resolved::Invalid(format!("{label}: secretRef: {error}")),
            }
        }
        Resolved::Usable(config)
    }

    /// One hook per webhook, each usable one with its dispatcher.
    fn hooks(&self, gs: &GatewaySync, specs: &[WebhookSpec], resolved: Vec<Resolved>) -> Vec<Hook> {
        specs
            .iter()
            .zip(resolved)
            .map(|(spec, resolved)| {
                let (dispatcher, health) = match resolved {
                    Resolved::Invalid(why) => (None, WebhookHealth::Invalid(why)),
                    Resolved::Usable(config) => match build(&config) {
                        Ok(notifier) => {
                            let health = Arc::new(Mutex::new(WebhookHealth::Healthy));
                            let observer = self.observer(gs, &config, health.clone());
                            let dispatcher =
                                Dispatcher::spawn(notifier, self.dispatch.clone(), observer);
                            return Hook {
                                on: spec.on.clone(),
                                dispatcher: Some(dispatcher),
                                health,
                            };
                        }
                        Err(error) => (None, WebhookHealth::Invalid(error.to_string())),
                    },
                };
                Hook {
                    on: spec.on.clone(),
                    dispatcher,
                    health: Arc::new(Mutex::new(health)),
                }
            })
            .collect()
    }

    /// What hears the deliveries of one webhook: the metric, its health, and a Warning Event
    /// when one fails.
    fn observer(
        &self,
        gs: &GatewaySync,
        config: &WebhookConfig,
        health: Arc<Mutex<WebhookHealth>>,
    ) -> Observer {
        let metrics = self.metrics.clone();
        let client = self.client.clone();
        let reporter = self.reporter.clone();
        let regarding: ObjectReference = gs.object_ref(&());
        let namespace = gs.namespace().unwrap_or_default();
        let name = gs.name_any();
        let type_ = config.kind.as_str();
        Arc::new(move |delivery: &Delivery| {
            metrics.notification(&namespace, &name, type_, delivery.result.as_str());
            match delivery.result {
                DeliveryResult::Delivered => *lock(&health) = WebhookHealth::Healthy,
                DeliveryResult::Failed => {
                    let error = delivery.error.clone().unwrap_or_default();
                    *lock(&health) = WebhookHealth::Failing(error.clone());
                    let event = KubeEvent {
                        type_: EventType::Warning,
                        reason: reasons::NOTIFICATION_FAILED.to_owned(),
                        note: Some(format!("{} not delivered: {error}", delivery.kind)),
                        action: "Notify".to_owned(),
                        secondary: None,
                    };
                    let (client, reporter, regarding) =
                        (client.clone(), reporter.clone(), regarding.clone());
                    tokio::spawn(async move {
                        if let Err(error) =
                            crate::events::publish(&client, &reporter, &event, &regarding).await
                        {
                            tracing::warn!(%error, "could not publish a NotificationFailed Event");
                        }
                    });
                }
                DeliveryResult::Dropped | DeliveryResult::Deduplicated => {}
            }
        })
    }
}

/// A digest of the webhooks as configured and resolved (in memory only; it covers the secrets
/// so that a rotated URL or key rebuilds the webhook).
fn fingerprint(specs: &[WebhookSpec], resolved: &[Resolved]) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    for (spec, resolved) in specs.iter().zip(resolved) {
        spec.type_.hash(&mut hasher);
        spec.on.hash(&mut hasher);
        match resolved {
            Resolved::Usable(config) => {
                config.url.hash(&mut hasher);
                config.secret.hash(&mut hasher);
            }
            Resolved::Invalid(why) => why.hash(&mut hasher),
        }
    }
    hasher.finish()
}
