//! One pass of the reconciler over a resource: [`apply`] runs the steps the module doc of
//! [`super`] lists, in that order, one method of [`Pass`] each; the `Pass` carries what flows
//! from one step to the next (the status being computed, the first transient failure).

use std::time::{Duration, Instant};

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret};
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::reflector::ObjectRef;

use super::{
    Context, FIELD_MANAGER, IDLE_RESYNC, MIN_TOKEN_REQUEUE, backoff, bind_agents,
    gateways_and_reports, keep_github_token, polling_period, referenced_secret_inventory,
    remove_requested_ref, resolve, write_metadata,
};
use crate::aggregate::{self, AggregateInput, Revision};
use crate::alerting::NOTIFICATIONS_DELIVERED;
use crate::conditions;
use crate::crd::{GatewaySync, GatewaySyncStatus};
use crate::discovery;
use crate::error::{Error, Result};
use crate::events::{self, reasons};
use crate::gateway_status::GatewayStatusReport;
use crate::github_token::Kept;
use crate::legacy_status;
use crate::refs;
use crate::validation;

/// Reconciles a resource that is not being deleted, step by step (numbered as in the module
/// doc of [`super`]).
pub(super) async fn apply(gs: &GatewaySync, context: &Context) -> Result<Action> {
    let mut pass = Pass::new(gs, context);
    pass.check_spec().await?; // 1
    let reference = pass.choose_ref().await?; // 2
    // 3. Kept fresh even while paused: a renewed token changes nothing the agents sync, and
    // they find it valid when the resource is resumed.
    let github = keep_github_token(gs, &pass.secrets, context).await;
    let resolved = pass.resolve_ref(reference, &github).await; // 4
    if let Some(revision) = &resolved {
        write_metadata(gs, revision, context).await?; // 5
    }
    let pods = pass.observe_gateways(resolved.as_ref()).await?; // 6
    pass.keep_agents_binding(&pods).await;
    pass.write_status().await?; // 7
    pass.next_action(github)
}

/// What the steps of one pass share.
struct Pass<'a> {
    gs: &'a GatewaySync,
    context: &'a Context,
    name: String,
    namespace: String,
    generation: i64,
    now: Timestamp,
    /// The status in the object: written only if the pass changes it.
    previous: GatewaySyncStatus,
    /// What Events are decided against ([`Context::last_told`]).
    told: GatewaySyncStatus,
    /// The status the pass computes, from `previous`.
    status: GatewaySyncStatus,
    /// The resource's namespace's Secrets.
    secrets: Api<Secret>,
    /// The polling period (`None`: polling is off); known after [`Pass::check_spec`].
    polling: Option<Duration>,
    /// The first transient failure: the status says what failed, and the pass ends with it for
    /// the error policy to retry with backoff.
    transient: Option<Error>,
}

impl<'a> Pass<'a> {
    fn new(gs: &'a GatewaySync, context: &'a Context) -> Self {
        let namespace = gs.namespace().unwrap_or_default();
        let generation = gs.metadata.generation.unwrap_or(0);
        let previous = gs.status.clone().unwrap_or_default();
        let mut status = previous.clone();
        status.observed_generation = Some(generation);
        status.profile_count = i32::try_from(gs.spec.sync.profiles.len()).unwrap_or(i32::MAX);
        Pass {
            gs,
            context,
            name: gs.name_any(),
            secrets: Api::namespaced(context.client.clone(), &namespace),
            namespace,
            generation,
            now: Timestamp::now(),
            told: context.last_told(gs),
            previous,
            status,
            polling: None,
            transient: None,
        }
    }

    /// Step 1: profiles and referenced Secrets (only those: a namespace's Secrets can be many
    /// and large, Helm keeps every release in one), then the polling interval.
    async fn check_spec(&mut self) -> Result<()> {
        let inventory = referenced_secret_inventory(&self.gs.spec, &self.secrets).await?;
        let problems = validation::validate(&self.gs.spec, &inventory);
        conditions::set(
            &mut self.status.conditions,
            validation::profiles_valid_condition(&problems, self.generation, self.now),
        );
        // `spec.webhook.secretRef`: said on the resource, since the receiver may not say it.
        crate::receiver::secret_ref::update_condition(
            &self.gs.spec,
            &self.secrets,
            &mut self.status.conditions,
            self.generation,
            self.now,
        )
        .await;
        self.polling = polling_period(
            self.gs,
            &mut self.status.conditions,
            self.generation,
            self.now,
        );
        Ok(())
    }

    /// Step 2: which ref; the requested-ref annotation goes once the spec caught up with it.
    async fn choose_ref(&self) -> Result<String> {
        let decision = refs::ref_to_resolve(
            &self.gs.spec.git.reference,
            self.gs.metadata.annotations.as_ref(),
        );
        if decision.remove_annotation {
            remove_requested_ref(self.gs, self.context).await?;
        }
        Ok(decision.reference)
    }

    /// Step 4: the revision the agents are to sync. Not resolved while paused (nothing may
    /// change for the agents), and after a failure the last resolved one (agents keep it).
    async fn resolve_ref(&mut self, reference: String, github: &Kept) -> Option<Revision> {
        if self.gs.spec.paused {
            let previous = &self.previous;
            return previous.last_sync_commit.clone().map(|commit| Revision {
                reference: previous.last_sync_ref.clone().unwrap_or(reference),
                commit,
            });
        }
        let started = Instant::now();
        let outcome = resolve(self.gs, &reference, &self.secrets, github, self.context).await;
        self.context.metrics.ref_resolved(
            &self.namespace,
            &self.name,
            started.elapsed(),
            outcome.is_ok(),
        );
        match outcome {
            Ok(commit) => Some(self.resolved(Revision { reference, commit }).await),
            Err(error) => {
                self.resolution_failed(error, github).await;
                let previous = &self.previous;
                previous.last_sync_commit.clone().map(|commit| Revision {
                    reference: previous.last_sync_ref.clone().unwrap_or_default(),
                    commit,
                })
            }
        }
    }

    /// Records a resolution, with an Event when it is the first or the commit moved.
    async fn resolved(&mut self, revision: Revision) -> Revision {
        let told_commit = self.told.last_sync_commit.as_deref();
        let event = match told_commit {
            None => Some((
                reasons::REF_RESOLVED,
                format!("{} resolved to {}", revision.reference, revision.commit),
            )),
            Some(told) if told != revision.commit => Some((
                reasons::REF_UPDATED,
                format!(
                    "{} moved from {} to {}",
                    revision.reference,
                    aggregate::short_commit(told),
                    revision.commit
                ),
            )),
            Some(_) => None,
        };
        aggregate::record_resolution(&mut self.status, &revision, self.generation, self.now);
        if let Some((reason, note)) = event {
            self.context
                .event(self.gs, EventType::Normal, reason, note)
                .await;
        }
        revision
    }

    /// Records a failed resolution, with a Warning Event when it starts failing.
    async fn resolution_failed(&mut self, error: Error, github: &Kept) {
        let message = error.to_string();
        // Without a token, the exchange's failure is the cause, and step 3 published it when
        // it started.
        let no_token = matches!(error, Error::GithubAppTokenUnavailable { .. });
        let reason = if no_token {
            conditions::reasons::GITHUB_APP_EXCHANGE_FAILED
        } else {
            conditions::reasons::REF_RESOLUTION_FAILED
        };
        let retry_in = self.retry_in(&error, github);
        aggregate::record_resolution_failure(
            &mut self.status,
            reason,
            &message,
            Some(retry_in),
            self.generation,
            self.now,
        );
        if events::resolution_failure_is_news(&self.told) && !no_token {
            self.context
                .event(
                    self.gs,
                    EventType::Warning,
                    reasons::REF_RESOLUTION_FAILED,
                    format!("Ref resolution failed: {message}"),
                )
                .await;
        }
        self.keep_transient(error);
    }

    /// When the next attempt after a failed resolution comes: the error policy's backoff for a
    /// transient failure (or while the token fails), else the next poll.
    fn retry_in(&self, error: &Error, github: &Kept) -> Duration {
        if !error.is_transient() && github.failure.is_none() {
            return self.polling.unwrap_or(IDLE_RESYNC);
        }
        let config = &self.context.config;
        let failures = self
            .context
            .failures()
            .get(&ObjectRef::from_obj(self.gs))
            .copied()
            .unwrap_or(0);
        backoff(
            config.initial_backoff,
            config.max_backoff,
            failures.saturating_add(1),
        )
    }

    /// Step 6: the gateways and their reports, aggregated into the status; Events and
    /// notifications for what changed. Returns the pods annotated for the resource.
    async fn observe_gateways(&mut self, resolved: Option<&Revision>) -> Result<Vec<Pod>> {
        let (pods, report_list, legacy) =
            gateways_and_reports(&self.name, &self.namespace, self.context).await?;
        let gateways = discovery::discover(&self.name, &pods);
        let mut reports = readable_reports(&report_list);
        // Gateways whose v0.5.1 agent is not replaced yet: its entry, where ours is missing.
        if let Some(legacy) = &legacy {
            let found = legacy_status::legacy_reports(&self.name, legacy, &gateways, &reports);
            reports.extend(found);
        }
        aggregate::aggregate(
            &mut self.status,
            &AggregateInput {
                gs: self.gs,
                pods: &gateways,
                reports: &reports,
                resolved,
                now: self.now,
            },
        );
        self.tell().await;
        Ok(pods)
    }

    /// Events, then notifications to people (queued, never waited for), decided against what
    /// was told; what is told now is remembered.
    async fn tell(&mut self) {
        for event in events::status_events(&self.told, &self.status) {
            self.context.publish(self.gs, &event).await;
        }
        let gs = self.gs;
        match self
            .context
            .alerting
            .notify(gs, &self.told, &self.status, self.now)
            .await
        {
            Some(condition) => conditions::set(&mut self.status.conditions, condition),
            None => conditions::remove(&mut self.status.conditions, NOTIFICATIONS_DELIVERED),
        };
        self.context.remember_told(gs, Some(self.status.clone()));
    }

    /// Step 6 (with `auto_bind_agent`): the agents' permissions. Every pod annotated for the
    /// resource counts, whatever its phase (an agent waiting for them keeps its pod Pending).
    async fn keep_agents_binding(&mut self, pods: &[Pod]) {
        if !self.context.config.auto_bind_agent {
            return;
        }
        let Err(error) = bind_agents(self.gs, pods, self.context).await else {
            return;
        };
        let message = stoker_core::error::chain(&error);
        tracing::warn!(error = %message, "could not write the agents' RoleBinding");
        self.context
            .event(
                self.gs,
                EventType::Warning,
                reasons::RBAC_ERROR,
                format!("Failed to create agent RoleBinding: {message}"),
            )
            .await;
        self.keep_transient(error);
    }

    /// Keeps `error` for the end of the pass if it is transient and the first such.
    fn keep_transient(&mut self, error: Error) {
        if error.is_transient() && self.transient.is_none() {
            self.transient = Some(error);
        }
    }

    /// Step 7: the status, written with server-side apply when the pass changed it.
    async fn write_status(&self) -> Result<()> {
        if self.status == self.previous {
            return Ok(());
        }
        let patch = serde_json::json!({
            "apiVersion": "stoker.io/v1alpha1",
            "kind": "GatewaySync",
            "status": self.status,
        });
        let api: Api<GatewaySync> = Api::namespaced(self.context.client.clone(), &self.namespace);
        api.patch_status(
            &self.name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&patch),
        )
        .await
        .map_err(|source| Error::kube("writing status of GatewaySync", &self.name, source))?;
        Ok(())
    }

    /// Step 7, the end: a failure to retry with backoff (status and Events say what failed),
    /// else back after the polling period, or when the App's token is due if that is sooner.
    fn next_action(self, github: Kept) -> Result<Action> {
        self.context.metrics.observe(self.gs, &self.status);
        if let Some(error) = self.transient.or(github.failure) {
            return Err(error);
        }
        let period = self.polling.unwrap_or(IDLE_RESYNC);
        let renewal = github.usable.as_ref().map(|token| {
            token
                .refresh_in(
                    Timestamp::now(),
                    self.context.config.github_token_refresh_margin,
                )
                .max(MIN_TOKEN_REQUEUE)
        });
        Ok(Action::requeue(
            renewal.map_or(period, |due| due.min(period)),
        ))
    }
}

/// The gateways' status reports; an unreadable ConfigMap is logged and left out.
fn readable_reports(configmaps: &[ConfigMap]) -> Vec<GatewayStatusReport> {
    configmaps
        .iter()
        .filter_map(|configmap| match GatewayStatusReport::from_configmap(configmap) {
            Ok(report) => Some(report),
            Err(error) => {
                tracing::warn!(error = %stoker_core::error::chain(&error), configmap = %configmap.name_any(), "ignored an unreadable gateway status ConfigMap");
                None
            }
        })
        .collect()
}
