//! Shared set-up of the controller tests: the CRD on the test API server, a namespace per
//! test with its own controller running in-process, a loopback Git repository, and the
//! kubelet's part (pods set Running) and the agent's part (status ConfigMaps) played by hand.
#![allow(clippy::unwrap_used, dead_code)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret};
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};
use serde_json::json;
use stoker_k8s::GatewaySync;
use stoker_k8s::controller::{self, Context, ControllerConfig};
use stoker_k8s::crd::{SyncStatus, crd};
use stoker_k8s::gateway_status::{GatewayStatusReport, SyncResult, pod_owner_reference};
use stoker_k8s::metrics::OperatorMetrics;
use stoker_testkit::kube_api::{Cluster, cluster};
use stoker_testkit::repo::Repo;
use tokio::sync::OnceCell;

static CRD_READY: OnceCell<()> = OnceCell::const_new();

/// How long a test waits for the controller to converge.
pub const CONVERGE: Duration = Duration::from_secs(45);

/// The cluster, with the CRD installed and established.
pub async fn with_crd() -> &'static Cluster {
    stoker_testkit::kube_api::install_crypto_provider();
    let c = cluster().unwrap();
    CRD_READY
        .get_or_init(|| async {
            c.apply_crd(&crd(), "stoker-k8s-test", Duration::from_secs(30))
                .await
                .unwrap();
        })
        .await;
    c
}

/// One test's world: a namespace, a controller watching only it, and a Git repository.
pub struct World {
    pub cluster: &'static Cluster,
    pub client: Client,
    pub namespace: String,
    pub repo: Repo,
    pub repo_url: String,
    /// The controller's `auto_bind_agent`.
    pub auto_bind_agent: bool,
    /// The running controller's metrics.
    pub metrics: OperatorMetrics,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    controller: Option<tokio::task::JoinHandle<()>>,
    _state: tempfile::TempDir,
}

impl World {
    /// A fresh namespace and repository (one commit on `main` with `files`), and a running
    /// controller.
    pub async fn start(prefix: &str) -> World {
        World::start_with(prefix, true).await
    }

    /// As [`World::start`], the controller keeping the agents' RoleBindings or not.
    pub async fn start_with(prefix: &str, auto_bind_agent: bool) -> World {
        let cluster = with_crd().await;
        let client = cluster.client().unwrap();
        let namespace = cluster.namespace(prefix).await.unwrap();
        let servers = stoker_testkit::git::servers();
        let repo = servers.new_repo(prefix);
        repo.commit(
            "main",
            &[
                ("projects/demo/project.json", b"{\"title\": \"demo\"}"),
                ("config/resources/core/a.json", b"{}"),
            ],
            "first",
        )
        .unwrap();
        let repo_url = servers.http_url(&repo);
        let state = tempfile::tempdir().unwrap();
        let mut world = World {
            cluster,
            client,
            namespace,
            repo,
            repo_url,
            auto_bind_agent,
            metrics: OperatorMetrics::new(),
            stop: None,
            controller: None,
            _state: state,
        };
        world.start_controller();
        world
    }

    /// Starts (again) the controller for this namespace.
    pub fn start_controller(&mut self) {
        let config = ControllerConfig {
            state_dir: self._state.path().to_path_buf(),
            namespaces: vec![self.namespace.clone()],
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(2),
            auto_bind_agent: self.auto_bind_agent,
            ..ControllerConfig::default()
        };
        self.metrics = OperatorMetrics::new();
        let context = Context::new(self.client.clone(), self.metrics.clone(), config);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        self.controller = Some(tokio::spawn(controller::run(context, async move {
            let _ = stopped.await;
        })));
        self.stop = Some(stop);
    }

    /// Waits until `name` has the condition `type_` with `status`; returns the resource.
    pub async fn wait_condition(&self, name: &str, type_: &str, status: &str) -> GatewaySync {
        self.wait_gs(name, &format!("{type_}={status}"), |gs| {
            has(gs, type_, status)
        })
        .await
    }

    pub fn gs_api(&self) -> Api<GatewaySync> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    pub fn pods(&self) -> Api<Pod> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    pub fn configmaps(&self) -> Api<ConfigMap> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    pub fn secrets(&self) -> Api<Secret> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    /// Creates the Secret `name` with `string_data` as its `stringData`.
    pub async fn create_secret(&self, name: &str, string_data: serde_json::Value) {
        let secret = json!({"metadata": {"name": name}, "stringData": string_data});
        create_json(&self.secrets(), secret).await;
    }

    /// Writes `configmap` by server-side apply as field manager `manager`, as an agent does.
    pub async fn apply_configmap(&self, configmap: &ConfigMap, manager: &str) {
        self.configmaps()
            .patch(
                &configmap.name_any(),
                &PatchParams::apply(manager).force(),
                &Patch::Apply(configmap),
            )
            .await
            .unwrap();
    }

    /// Creates a GatewaySync with `spec` (git.repo defaults to this world's repository).
    pub async fn create_gs(&self, name: &str, mut spec: serde_json::Value) -> GatewaySync {
        if spec["git"]["repo"].is_null() {
            spec["git"]["repo"] = json!(self.repo_url);
        }
        let gs = json!({
            "apiVersion": "stoker.io/v1alpha1",
            "kind": "GatewaySync",
            "metadata": {"name": name},
            "spec": spec,
        });
        create_json(&self.gs_api(), gs).await
    }

    pub async fn get_gs(&self, name: &str) -> GatewaySync {
        self.gs_api().get(name).await.unwrap()
    }

    /// Waits until `check` holds for the resource's status, returning the resource.
    pub async fn wait_gs(
        &self,
        name: &str,
        what: &str,
        check: impl Fn(&GatewaySync) -> bool,
    ) -> GatewaySync {
        let api = self.gs_api();
        let mut last = None;
        let deadline = Instant::now() + CONVERGE;
        loop {
            if let Some(gs) = api.get_opt(name).await.unwrap() {
                if check(&gs) {
                    return gs;
                }
                last = Some(gs);
            }
            if Instant::now() > deadline {
                panic!(
                    "timed out waiting until {what}; last status: {}",
                    serde_json::to_string_pretty(&last.and_then(|g| g.status)).unwrap()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until `name` has resolved `commit` and discovered `gateways` gateways.
    pub async fn wait_resolved(&self, name: &str, commit: &str, gateways: usize) -> GatewaySync {
        self.wait_gs(name, &format!("resolved, {gateways} gateway(s)"), |gs| {
            commit_is(gs, commit)
                && gs
                    .status
                    .as_ref()
                    .is_some_and(|s| s.discovered_gateways.len() == gateways)
        })
        .await
    }

    /// A GatewaySync `site` with `spec` and two running gateways, `gw-a` and `gw-b`, once it has
    /// resolved main and discovered both; returns main's commit and the two pods.
    pub async fn two_gateway_site(&self, spec: serde_json::Value) -> (String, Pod, Pod) {
        self.create_gs("site", spec).await;
        let commit = self.repo.rev_parse("main").unwrap();
        let a = self.create_pod("gw-a", "site", &[], &[], true).await;
        let b = self.create_pod("gw-b", "site", &[], &[], true).await;
        self.wait_resolved("site", &commit, 2).await;
        (commit, a, b)
    }

    /// Creates a gateway pod annotated for `cr` (plus `annotations` / `labels`) and, when
    /// `running`, sets its phase to Running as the kubelet would.
    pub async fn create_pod(
        &self,
        name: &str,
        cr: &str,
        annotations: &[(&str, &str)],
        labels: &[(&str, &str)],
        running: bool,
    ) -> Pod {
        self.create_pod_as(name, cr, None, annotations, labels, running)
            .await
    }

    /// As [`World::create_pod`], running as `service_account` (none: the field is unset).
    pub async fn create_pod_as(
        &self,
        name: &str,
        cr: &str,
        service_account: Option<&str>,
        annotations: &[(&str, &str)],
        labels: &[(&str, &str)],
        running: bool,
    ) -> Pod {
        let mut all_annotations: BTreeMap<String, String> = annotations
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        all_annotations.insert("stoker.io/cr-name".into(), cr.into());
        all_annotations.insert("stoker.io/injected".into(), "true".into());
        let labels: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let mut pod: Pod = serde_json::from_value(json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "annotations": all_annotations, "labels": labels},
            "spec": {"containers": [
                {"name": "ignition", "image": "inductiveautomation/ignition:8.3"},
                {"name": "stoker-agent", "image": "stoker-agent:test"}
            ]}
        }))
        .unwrap();
        if let Some(spec) = pod.spec.as_mut() {
            spec.service_account_name = service_account.map(str::to_owned);
        }
        let pod = self
            .pods()
            .create(&PostParams::default(), &pod)
            .await
            .unwrap();
        if running {
            self.set_phase(name, "Running").await;
        }
        self.pods().get(&pod.name_any()).await.unwrap()
    }

    /// Plays the kubelet: sets a pod's phase.
    pub async fn set_phase(&self, pod: &str, phase: &str) {
        self.pods()
            .patch_status(
                pod,
                &PatchParams::default(),
                &Patch::Merge(json!({"status": {"phase": phase}})),
            )
            .await
            .unwrap();
    }

    /// Plays the agent: writes the pod's status ConfigMap (gateway named after the pod).
    pub async fn report(
        &self,
        cr: &str,
        pod: &Pod,
        commit: &str,
        reference: &str,
        status: SyncStatus,
        message: Option<&str>,
    ) {
        let mut report = GatewayStatusReport::new(
            cr,
            &pod.name_any(),
            &pod.name_any(),
            "test",
            Timestamp::now(),
        );
        report.record(SyncResult {
            time: Timestamp::now(),
            commit: Some(commit.to_owned()),
            reference: Some(reference.to_owned()),
            status,
            files_added: 2,
            message: message.map(str::to_owned),
            ..SyncResult::default()
        });
        let owner = pod_owner_reference(&pod.name_any(), &pod.uid().unwrap());
        let configmap = report.to_configmap(&self.namespace, Some(owner)).unwrap();
        self.apply_configmap(&configmap, "stoker-agent").await;
    }

    /// Stops the controller and waits for it to finish.
    pub async fn stop_controller(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(handle) = self.controller.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), handle).await;
        }
    }
}

/// Creates the object `object` (JSON as `kubectl create` takes it) through `api`.
async fn create_json<K>(api: &Api<K>, object: serde_json::Value) -> K
where
    K: kube::Resource + Clone + std::fmt::Debug + serde::Serialize + serde::de::DeserializeOwned,
{
    let object: K = serde_json::from_value(object).unwrap();
    api.create(&PostParams::default(), &object).await.unwrap()
}

impl Drop for World {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(handle) = self.controller.take() {
            handle.abort();
        }
    }
}

/// A condition's `(status, reason, message)`.
pub fn condition(gs: &GatewaySync, type_: &str) -> Option<(String, String, String)> {
    gs.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
}

/// Every object of kind `K` in the world's namespace.
async fn list_all<K>(world: &World) -> Vec<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned,
    K::DynamicType: Default,
{
    let api: Api<K> = Api::namespaced(world.client.clone(), &world.namespace);
    api.list(&kube::api::ListParams::default())
        .await
        .unwrap()
        .items
}

/// The reasons of the (core/v1) Events about `cr` in the world's namespace.
pub async fn event_reasons(world: &World, cr: &str) -> std::collections::BTreeSet<String> {
    list_all::<k8s_openapi::api::core::v1::Event>(world)
        .await
        .into_iter()
        .filter(|e| e.involved_object.name.as_deref() == Some(cr))
        .filter_map(|e| e.reason)
        .collect()
}

/// The (events.k8s.io/v1) Events about `cr` in the world's namespace.
async fn events_about(world: &World, cr: &str) -> Vec<k8s_openapi::api::events::v1::Event> {
    list_all::<k8s_openapi::api::events::v1::Event>(world)
        .await
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(cr))
        .collect()
}

/// The Events about `cr` in the world's namespace: reason → how many times it happened
/// (an Event repeated by the recorder counts each repetition, through its series).
pub async fn event_counts(world: &World, cr: &str) -> BTreeMap<String, i32> {
    let mut counts = BTreeMap::new();
    for event in events_about(world, cr).await {
        let times = event.series.as_ref().map_or(1, |series| series.count);
        *counts.entry(event.reason.unwrap_or_default()).or_insert(0) += times;
    }
    counts
}

/// The notes of the Events about `cr` with this reason.
pub async fn event_notes(world: &World, cr: &str, reason: &str) -> Vec<String> {
    events_about(world, cr)
        .await
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some(reason))
        .filter_map(|e| e.note)
        .collect()
}

/// True when the resource has resolved `commit`.
pub fn commit_is(gs: &GatewaySync, commit: &str) -> bool {
    gs.status
        .as_ref()
        .and_then(|s| s.last_sync_commit.as_deref())
        == Some(commit)
}

/// True when the resource's gateway summary is `summary` (`1/2 synced`).
pub fn summary_is(gs: &GatewaySync, summary: &str) -> bool {
    gs.status
        .as_ref()
        .and_then(|s| s.gateway_summary.as_deref())
        == Some(summary)
}

/// True when the condition has this status.
pub fn has(gs: &GatewaySync, type_: &str, status: &str) -> bool {
    condition(gs, type_).is_some_and(|(s, _, _)| s == status)
}

/// A minimal spec with one profile.
pub fn spec(reference: &str) -> serde_json::Value {
    json!({
        "git": {"ref": reference},
        "polling": {"interval": "2s"},
        "sync": {"profiles": {"default": {"mappings": [
            {"source": "projects", "destination": "projects"}
        ]}}}
    })
}
