//! Shared by the sidecar end-to-end tests: a fresh namespace on the test kube-apiserver, a Git
//! repository on the loopback HTTP server, the gateway simulator, and the real `stoker-agent`
//! binary run as a local process. The operator's controller (`stoker_k8s::controller`) runs in
//! the test process, so the whole path is real: it resolves the ref, writes
//! `stoker-metadata-{cr}`, and aggregates the agents' reports into the GatewaySync's status.
//!
//! Gateway pods are written as users write them, without the agent ([`pods`]); creating one
//! ([`World::create_gateway_pod`]) runs it through the webhook's admission
//! (`stoker_k8s::admission::mutate_pod` with the namespace's GatewaySyncs, read from the API
//! server), creates the mutated pod and reads it back. The tests then play the kubelet
//! ([`kubelet`]): the agent's environment and files come from that stored pod — the
//! `stoker-agent` container's `env` (downward API resolved), its mounts mapped to directories of
//! the test, Secret volumes filled from the API server's Secrets — never from a hand-written
//! environment. What a process on the test machine needs beyond that is added on top, each
//! addition saying why ([`World::agent_env`], [`AgentProcess::start`]).
#![allow(dead_code)] // each test binary uses a different part

pub mod kubelet;
pub mod pods;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret};
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, ListParams, ObjectMeta, Patch, PatchParams, PostParams};
use stoker_k8s::GatewaySync;
use stoker_k8s::controller::{self, Context, ControllerConfig};
use stoker_k8s::gateway_status::{GatewayStatusReport, status_configmap_name};
use stoker_k8s::metrics::OperatorMetrics;
use stoker_testkit::gateway_sim::{GatewaySim, SimConfig};
use stoker_testkit::kube_api::{Cluster, cluster, install_crypto_provider};
use stoker_testkit::repo::{Change, Repo};

use kubelet::KubeletPod;

/// The Ignition API key the simulator requires; [`World::create_api_secret`] stores it where the
/// injector mounts it from (`API_KEY_FILE`).
pub const API_KEY: &str = "stoker-sidecar-test:c2VjcmV0";

/// The `ENV` of the agent image (the `runtime` stage of the Dockerfile): `HOME=/tmp`, which
/// only works because the injector mounts an `emptyDir` there (the root file system is
/// read-only), so it goes through the test kubelet's path mapping like the pod's variables.
pub const IMAGE_ENV: [(&str, &str); 1] = [("HOME", "/tmp")];

/// How long a convergence may take before a test fails.
pub const CONVERGE: Duration = Duration::from_secs(30);

/// One test's world.
pub struct World {
    pub cluster: &'static Cluster,
    pub client: kube::Client,
    pub ns: String,
    pub repo: Repo,
    pub repo_url: String,
    pub dir: tempfile::TempDir,
    pub sim: GatewaySim,
    pub agents: Vec<AgentProcess>,
    /// The pods the test kubelet runs, by name.
    pods: Mutex<BTreeMap<String, KubeletPod>>,
    controller: Option<(
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<()>,
    )>,
}

impl World {
    /// A fresh namespace (CRD installed), an empty repository, a simulator requiring
    /// [`API_KEY`].
    pub async fn new(prefix: &str) -> World {
        install_crypto_provider();
        let cluster = cluster().expect("the test kube-apiserver (hack/kube.sh install)");
        let client = cluster.client().unwrap();
        install_crd(&client).await;
        let ns = cluster.namespace(prefix).await.unwrap();
        let servers = stoker_testkit::git::servers();
        let repo = servers.new_repo(prefix);
        let repo_url = servers.http_url(&repo);
        let dir = tempfile::tempdir().unwrap();
        let sim = GatewaySim::start(SimConfig::new().with_api_key(API_KEY)).unwrap();
        let mut world = World {
            cluster,
            client,
            ns,
            repo,
            repo_url,
            dir,
            sim,
            agents: Vec::new(),
            pods: Mutex::default(),
            controller: None,
        };
        world.start_controller();
        world
    }

    /// Runs the operator's controller for this namespace in this process.
    pub fn start_controller(&mut self) {
        let config = ControllerConfig {
            state_dir: self.path("operator"),
            namespaces: vec![self.ns.clone()],
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(2),
            ..ControllerConfig::default()
        };
        let context = Context::new(self.client.clone(), OperatorMetrics::new(), config);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(controller::run(context, async move {
            let _ = stopped.await;
        }));
        self.controller = Some((stop, task));
    }

    /// Asks the operator to resolve `reference` now, as the webhook receiver does after a push
    /// (`stoker.io/requested-ref`, `-at`, `-by`).
    pub async fn request_ref(&self, cr: &str, reference: &str) {
        let now = jiff::Timestamp::now().to_string();
        Api::<GatewaySync>::namespaced(self.client.clone(), &self.ns)
            .patch(
                cr,
                &PatchParams::default(),
                &Patch::Merge(serde_json::json!({"metadata": {"annotations": {
                    "stoker.io/requested-ref": reference,
                    "stoker.io/requested-at": now,
                    "stoker.io/requested-by": "sidecar-test",
                }}})),
            )
            .await
            .unwrap();
    }

    /// Waits until the GatewaySync satisfies `check`; returns it.
    pub async fn wait_gs(
        &self,
        cr: &str,
        what: &str,
        check: impl Fn(&GatewaySync) -> bool,
    ) -> GatewaySync {
        let api = Api::<GatewaySync>::namespaced(self.client.clone(), &self.ns);
        let deadline = Instant::now() + CONVERGE;
        loop {
            let gs = api.get(cr).await.unwrap();
            if check(&gs) {
                return gs;
            }
            if Instant::now() > deadline {
                self.dump_logs();
                panic!(
                    "timed out waiting until {what}; last status: {}",
                    serde_json::to_string_pretty(&gs.status).unwrap()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    /// Commits files on `main`; returns the commit.
    pub fn commit(&self, files: &[(&str, &str)], message: &str) -> String {
        let files: Vec<(&str, &[u8])> = files.iter().map(|(p, c)| (*p, c.as_bytes())).collect();
        self.repo.commit("main", &files, message).unwrap()
    }

    /// Commits writes (`Some`) and deletions (`None`) on `main`; returns the commit.
    pub fn commit_changes(&self, changes: &[(&str, Option<&str>)], message: &str) -> String {
        let changes: Vec<Change<'_>> = changes
            .iter()
            .map(|(path, content)| match content {
                Some(content) => Change::Write(path, content.as_bytes()),
                None => Change::Delete(path),
            })
            .collect();
        self.repo.commit_changes("main", &changes, message).unwrap()
    }

    /// Creates a GatewaySync from its spec (JSON) and returns it as stored.
    pub async fn create_gatewaysync(&self, name: &str, spec: serde_json::Value) -> GatewaySync {
        let api: Api<GatewaySync> = Api::namespaced(self.client.clone(), &self.ns);
        let gs: GatewaySync = serde_json::from_value(serde_json::json!({
            "apiVersion": "stoker.io/v1alpha1", "kind": "GatewaySync",
            "metadata": {"name": name, "namespace": self.ns},
            "spec": spec,
        }))
        .unwrap();
        // The CRD may have just been established: retry a moment if the API is not served yet.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match api.create(&PostParams::default(), &gs).await {
                Ok(created) => return created,
                Err(error) if Instant::now() < deadline => {
                    eprintln!("create GatewaySync (retrying): {error}");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(error) => panic!("create GatewaySync {name}: {error}"),
            }
        }
    }

    pub async fn gatewaysync(&self, name: &str) -> GatewaySync {
        Api::<GatewaySync>::namespaced(self.client.clone(), &self.ns)
            .get(name)
            .await
            .unwrap()
    }

    /// Replaces a GatewaySync's spec (a merge patch of `spec`).
    pub async fn patch_spec(&self, name: &str, spec: serde_json::Value) -> GatewaySync {
        Api::<GatewaySync>::namespaced(self.client.clone(), &self.ns)
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(serde_json::json!({ "spec": spec })),
            )
            .await
            .unwrap()
    }

    /// Creates the Secret holding the gateway API key (for spec.gateway.api).
    pub async fn create_api_secret(&self, name: &str) {
        self.create_secret(name, &[("apiKey", API_KEY)]).await;
    }

    /// Creates a Secret with `data`.
    pub async fn create_secret(&self, name: &str, data: &[(&str, &str)]) {
        let secret = Secret {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                ..ObjectMeta::default()
            },
            string_data: Some(
                data.iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
            ),
            ..Secret::default()
        };
        Api::<Secret>::namespaced(self.client.clone(), &self.ns)
            .create(&PostParams::default(), &secret)
            .await
            .unwrap();
    }

    /// Creates a bare gateway pod ([`pods::gateway_pod`]) annotated for `cr`; see
    /// [`World::create_gateway_pod`].
    pub async fn create_pod(
        &self,
        name: &str,
        cr: &str,
        annotations: &[(&str, &str)],
        labels: &[(&str, &str)],
    ) -> Pod {
        let mut all = vec![("stoker.io/cr-name", cr)];
        all.extend_from_slice(annotations);
        self.create_gateway_pod(pods::gateway_pod(name, &all, labels))
            .await
    }

    /// Creates `pod` (as a user or a StatefulSet writes it) the way the API server does with
    /// Stoker's webhook: the namespace's GatewaySyncs read from the API server, the pod through
    /// the webhook's admission (the injector's patch applied; a denial fails the test), the
    /// result created. Then plays the kubelet: the pod `Running`, its volumes made directories
    /// on this machine from the pod as the API server stored it ([`kubelet`]). Returns that
    /// stored pod.
    pub async fn create_gateway_pod(&self, pod: Pod) -> Pod {
        let name = pod.metadata.name.clone().expect("a named pod");
        let gateway_syncs = Api::<GatewaySync>::namespaced(self.client.clone(), &self.ns)
            .list(&ListParams::default())
            .await
            .unwrap()
            .items;
        let mutated = pods::admit(&pod, &self.ns, &gateway_syncs)
            .unwrap_or_else(|message| panic!("the webhook refused pod {name}: {message}"));
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &self.ns);
        api.create(&PostParams::default(), &mutated).await.unwrap();
        api.patch_status(
            &name,
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"status": {"phase": "Running"}})),
        )
        .await
        .unwrap();
        let stored = api.get(&name).await.unwrap();
        let secrets = Api::<Secret>::namespaced(self.client.clone(), &self.ns);
        let running = KubeletPod::start(&stored, &self.path(&format!("pods/{name}")), &secrets)
            .await
            .unwrap_or_else(|error| panic!("the test kubelet cannot run pod {name}: {error}"));
        self.pods.lock().unwrap().insert(name, running);
        stored
    }

    /// What the test kubelet made of `pod` (created by [`World::create_gateway_pod`]).
    pub fn kubelet_pod(&self, pod: &str) -> KubeletPod {
        self.pods
            .lock()
            .unwrap()
            .get(pod)
            .unwrap_or_else(|| panic!("pod {pod} was not created with create_gateway_pod"))
            .clone()
    }

    /// Writes the Secret volumes of `pod` again from the Secrets as they are now, as the kubelet
    /// does periodically.
    pub async fn refresh_secret_volumes(&self, pod: &str) {
        let running = self.kubelet_pod(pod);
        let secrets = Api::<Secret>::namespaced(self.client.clone(), &self.ns);
        running
            .volumes
            .project_secrets(&running.pod, &secrets)
            .await
            .unwrap_or_else(|error| panic!("refreshing the Secret volumes of {pod}: {error}"));
    }
    /// Merges annotations and labels into a pod (`None` removes).
    pub async fn patch_pod(
        &self,
        name: &str,
        annotations: &[(&str, Option<&str>)],
        labels: &[(&str, Option<&str>)],
    ) {
        let to_map = |pairs: &[(&str, Option<&str>)]| {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), serde_json::json!(v)))
                .collect::<serde_json::Map<_, _>>()
        };
        Api::<Pod>::namespaced(self.client.clone(), &self.ns)
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(serde_json::json!({"metadata": {
                    "annotations": to_map(annotations),
                    "labels": to_map(labels),
                }})),
            )
            .await
            .unwrap();
    }

    /// The environment of the `stoker-agent` container of `pod`: the agent image's `ENV`
    /// ([`IMAGE_ENV`]), then the container's `env` as the injector wrote it (the pod spec's wins,
    /// as in Kubernetes), resolved by the test kubelet with paths into its mounts rewritten to
    /// their directories here; plus what a process on this machine needs in addition.
    pub fn agent_env(&self, pod: &str) -> Vec<(String, String)> {
        let running = self.kubelet_pod(pod);
        let mut env: Vec<(String, String)> = IMAGE_ENV
            .iter()
            .map(|(name, value)| {
                let value = running.agent.map_env(name, value).unwrap_or_else(|error| {
                    panic!("the agent image's {name} in the injected pod: {error}")
                });
                ((*name).to_owned(), value)
            })
            .collect();
        env.extend(running.agent.env.iter().cloned());
        let kubeconfig = self.cluster.kubeconfig_path().display().to_string();
        env.extend(
            [
                // A pod reaches the API server with its service account token (in-cluster
                // config); this process uses the test cluster's kubeconfig.
                ("KUBECONFIG", kubeconfig),
                // Retries faster than the defaults (2 s doubling up to 300 s): tests that make a
                // sync fail and then recover must converge within CONVERGE.
                ("RETRY_INITIAL_SECONDS", "1".to_owned()),
                ("RETRY_MAX_SECONDS", "2".to_owned()),
            ]
            .map(|(name, value)| (name.to_owned(), value)),
        );
        // In the pod /tmp is the injector's emptyDir; a process here would use this machine's
        // /tmp unless TMPDIR points at the directory standing for that volume.
        if let Some(tmp) = running.agent.host_path(stoker_k8s::injector::TMP_PATH) {
            env.push(("TMPDIR".to_owned(), tmp.display().to_string()));
        }
        env
    }

    /// Starts the real `stoker-agent sidecar` with `env`; returns its index in `agents`.
    pub fn start_agent(&mut self, name: &str, env: Vec<(String, String)>) -> usize {
        let agent = AgentProcess::start(self.dir.path(), name, env);
        self.agents.push(agent);
        self.agents.len() - 1
    }

    /// The directory standing for the data volume of `pod`: where the gateway container reads
    /// its files, and the agent writes them.
    pub fn data(&self, pod: &str) -> PathBuf {
        self.kubelet_pod(pod).data
    }

    /// The agent's status ConfigMap, read.
    pub async fn status(&self, cr: &str, pod: &str) -> Option<GatewayStatusReport> {
        let configmap = Api::<ConfigMap>::namespaced(self.client.clone(), &self.ns)
            .get_opt(&status_configmap_name(cr, pod))
            .await
            .unwrap()?;
        Some(GatewayStatusReport::from_configmap(&configmap).unwrap())
    }

    pub async fn status_configmap(&self, cr: &str, pod: &str) -> ConfigMap {
        Api::<ConfigMap>::namespaced(self.client.clone(), &self.ns)
            .get(&status_configmap_name(cr, pod))
            .await
            .unwrap()
    }

    /// Waits until the status of `pod` satisfies `check`; returns it. On timeout, fails with
    /// the last status and every agent's log.
    pub async fn wait_status(
        &self,
        cr: &str,
        pod: &str,
        what: &str,
        check: impl Fn(&GatewayStatusReport) -> bool,
    ) -> GatewayStatusReport {
        let deadline = Instant::now() + CONVERGE;
        let mut last = None;
        loop {
            if let Some(status) = self.status(cr, pod).await {
                if check(&status) {
                    return status;
                }
                last = Some(status);
            }
            if Instant::now() > deadline {
                self.dump_logs();
                panic!("timed out waiting for {what}; last status: {last:#?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits for `check` (polled every 50 ms) or fails with the agents' logs.
    pub async fn wait_for<F, Fut>(&self, what: &str, mut check: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let deadline = Instant::now() + CONVERGE;
        while !check().await {
            if Instant::now() > deadline {
                self.dump_logs();
                panic!("timed out waiting for {what}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Events in the namespace about the GatewaySync `cr`, reported by the agent.
    pub async fn agent_events(&self, cr: &str) -> Vec<Event> {
        Api::<Event>::namespaced(self.client.clone(), &self.ns)
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .filter(|e| {
                e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(cr)
                    && e.reporting_controller.as_deref() == Some("stoker-agent")
            })
            .collect()
    }

    pub fn dump_logs(&self) {
        for agent in &self.agents {
            eprintln!("----- agent {} log -----\n{}", agent.name, agent.log());
        }
    }
}

impl Drop for World {
    fn drop(&mut self) {
        if let Some((stop, task)) = self.controller.take() {
            let _ = stop.send(());
            task.abort();
        }
        if std::thread::panicking() || std::env::var_os("STOKER_TEST_AGENT_LOGS").is_some() {
            self.dump_logs();
        }
    }
}

/// Applies the GatewaySync CRD and waits until it is established.
pub async fn install_crd(client: &kube::Client) {
    stoker_testkit::kube_api::apply_crd(
        client,
        &stoker_k8s::crd::crd(),
        "stoker-sidecar-tests",
        Duration::from_secs(30),
    )
    .await
    .unwrap();
}

/// The real agent binary, running.
pub struct AgentProcess {
    pub name: String,
    pub child: Child,
    pub probe_port: u16,
    pub metrics_port: u16,
    pub log_path: PathBuf,
    pub env: Vec<(String, String)>,
}

impl AgentProcess {
    /// Starts `stoker-agent sidecar` with `env` and nothing else of the test's environment
    /// (a container has only its image's and its spec's variables), plus the additions
    /// [`test_machine_env`] lists, logging to `DIR/agent-NAME.log`.
    pub fn start(dir: &Path, name: &str, env: Vec<(String, String)>) -> AgentProcess {
        let probe_port = stoker_testkit::process::free_port().unwrap();
        let metrics_port = stoker_testkit::process::free_port().unwrap();
        let log_path = dir.join(format!("agent-{name}.log"));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .unwrap();
        // STOKER_TEST_AGENT_BIN runs another build (a release build, to measure it).
        let binary = std::env::var_os("STOKER_TEST_AGENT_BIN").map_or_else(
            || PathBuf::from(env!("CARGO_BIN_EXE_stoker-agent")),
            PathBuf::from,
        );
        let child = Command::new(binary)
            .arg("sidecar")
            .env_clear()
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .envs(test_machine_env(probe_port, metrics_port))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        AgentProcess {
            name: name.to_owned(),
            child,
            probe_port,
            metrics_port,
            log_path,
            env,
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `GET path` on the probe port: the status code, or `None` when nothing answers.
    pub fn probe(&self, path: &str) -> Option<u16> {
        http_get(self.probe_port, path).map(|(status, _)| status)
    }

    /// `/metrics` on the metrics port (`METRICS_ADDRESS`).
    pub fn metrics(&self) -> String {
        http_get(self.metrics_port, "/metrics")
            .map(|(_, body)| body)
            .unwrap_or_default()
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the process to exit (fails after `timeout`).
    pub fn wait_exit(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                panic!(
                    "agent {} did not exit within {timeout:?}\n{}",
                    self.name,
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Resident memory (kB), from /proc.
    pub fn rss_kb(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }
}

/// What every agent process on the test machine gets besides its pod's environment.
fn test_machine_env(probe_port: u16, metrics_port: u16) -> Vec<(String, String)> {
    let mut env = vec![
        // A pod has its own network namespace, so the defaults 0.0.0.0:8082 and :8083 are free
        // there; agents sharing this machine need ports of their own.
        (
            "PROBE_ADDRESS".to_owned(),
            format!("127.0.0.1:{probe_port}"),
        ),
        (
            "METRICS_ADDRESS".to_owned(),
            format!("127.0.0.1:{metrics_port}"),
        ),
        // Debug logs for the dumps of failing tests; a pod logs at the default level.
        (
            "STOKER_LOG".to_owned(),
            "info,stoker_agent=debug".to_owned(),
        ),
    ];
    // PATH comes from the image's ENV, not from the pod spec; LLVM_PROFILE_FILE and
    // RUST_BACKTRACE are the test tooling's (coverage and backtraces of the agent binary).
    for name in ["PATH", "LLVM_PROFILE_FILE", "RUST_BACKTRACE"] {
        if let Ok(value) = std::env::var(name) {
            env.push((name.to_owned(), value));
        }
    }
    env
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A minimal HTTP/1.0 GET on 127.0.0.1.
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.split_whitespace().nth(1)?.parse().ok()?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Some((status, body))
}

/// Every regular file below `root` (relative paths, `/`-separated), `.stoker/` left out, with
/// its content.
pub fn tree(root: &Path) -> BTreeMap<String, String> {
    let mut files = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let entry = entry.unwrap();
            let path = entry.path();
            let relative = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            if relative == ".stoker" {
                continue;
            }
            let kind = entry.file_type().unwrap();
            if kind.is_dir() {
                stack.push(path);
            } else {
                files.insert(
                    relative,
                    String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned(),
                );
            }
        }
    }
    files
}

/// Sets `name` in `env`, replacing the value the injector gave it.
pub fn set_env(env: &mut Vec<(String, String)>, name: &str, value: &str) {
    env.retain(|(existing, _)| existing != name);
    env.push((name.to_owned(), value.to_owned()));
}
