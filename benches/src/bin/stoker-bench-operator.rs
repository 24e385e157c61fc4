//! `stoker-bench-operator`: the operator at scale (issue 4). Run it through
//! `benches/operator-scale.sh`, which builds it and the release `stoker-operator`.
//!
//! On the test API server (stoker-testkit: the one `STOKER_TEST_KUBECONFIG` names, else one it
//! starts) and a loopback Git server (git's own http-backend), it starts the operator binary as a
//! separate process, then creates `CRS` GatewaySyncs with `PODS` gateway pods each, plays the
//! kubelet (sets every pod Running) and, with `REPORTS=1`, each pod's agent (writes its status
//! ConfigMap as Synced to the resolved commit). It measures the time from the first create until
//! every GatewaySync has its status: `lastSyncCommit`, `PODS` discovered gateways and, with
//! reports, `Ready=True`. It then reads the operator's peak RSS (`VmHWM` in `/proc`) and CPU
//! time, its own metrics, and the API server's request counters, and prints a table (Markdown)
//! on stdout. Progress goes to stderr.
//!
//! Environment (all optional):
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `STOKER_BENCH_OPERATOR` | `$CARGO_TARGET_DIR/release/stoker-operator` | the operator binary |
//! | `CRS` | 100 | GatewaySyncs |
//! | `PODS` | 10 | gateway pods per GatewaySync |
//! | `NAMESPACES` | 1 | spread the GatewaySyncs over this many namespaces |
//! | `REPORTS` | 1 | 1: write every pod's status ConfigMap (Synced), and wait for `Ready=True` |
//! | `SECRETS` | 0 | unrelated Secrets of 16 KiB per namespace (Helm keeps releases in Secrets) |
//! | `PARALLEL` | 16 | API requests the benchmark makes at once while creating |
//! | `CONCURRENCY` | (operator default) | the operator's `--max-concurrent-reconciles` |
//! | `IDLE` | 0 | seconds to keep watching after convergence (reconciles while idle) |
//! | `TIMEOUT` | 900 | seconds to wait for convergence |
//! | `EXISTING` | 0 | 1: create everything first, then start the operator, and time from its start (an operator restart or failover) |
//! | `OPERATOR_LOG` | `info` | the operator's `--log-level` |
//! | `KEEP` | 0 | 1: keep the scratch directory (the operator's log) and print its path |
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow, bail};
use futures::{StreamExt, TryStreamExt};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret};
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};
use serde_json::{Value, json};
use stoker_k8s::GatewaySync;
use stoker_k8s::crd::{SyncStatus, crd};
use stoker_k8s::gateway_status::{GatewayStatusReport, SyncResult, pod_owner_reference};
use stoker_testkit::kube_api::{Cluster, cluster, install_crypto_provider};

struct Settings {
    operator: PathBuf,
    crs: usize,
    pods: usize,
    namespaces: usize,
    reports: bool,
    secrets: usize,
    parallel: usize,
    concurrency: Option<u16>,
    idle: Duration,
    timeout: Duration,
    existing: bool,
}

fn env_or<T: FromStr>(name: &str, default: T) -> Result<T>
where
    T::Err: std::fmt::Display,
{
    match std::env::var(name) {
        Ok(value) if !value.is_empty() => {
            value.parse().map_err(|e| anyhow!("{name}={value:?}: {e}"))
        }
        _ => Ok(default),
    }
}

impl Settings {
    fn from_env() -> Result<Settings> {
        let operator = match std::env::var_os("STOKER_BENCH_OPERATOR") {
            Some(path) => PathBuf::from(path),
            None => {
                let target = std::env::var_os("CARGO_TARGET_DIR")
                    .map(PathBuf::from)
                    .unwrap_or_else(|| stoker_benches::workspace_root().join("target"));
                target.join("release").join("stoker-operator")
            }
        };
        if !operator.is_file() {
            bail!(
                "no operator binary at {} (build it: cargo build --release -p stoker-operator, or set STOKER_BENCH_OPERATOR)",
                operator.display()
            );
        }
        let concurrency: u16 = env_or("CONCURRENCY", 0)?;
        Ok(Settings {
            operator,
            crs: env_or("CRS", 100)?,
            pods: env_or("PODS", 10)?,
            namespaces: env_or::<usize>("NAMESPACES", 1)?.max(1),
            reports: env_or::<u8>("REPORTS", 1)? != 0,
            secrets: env_or("SECRETS", 0)?,
            parallel: env_or::<usize>("PARALLEL", 16)?.max(1),
            concurrency: (concurrency > 0).then_some(concurrency),
            idle: Duration::from_secs(env_or("IDLE", 0)?),
            timeout: Duration::from_secs(env_or("TIMEOUT", 900)?),
            existing: env_or::<u8>("EXISTING", 0)? != 0,
        })
    }
}

fn progress(message: impl std::fmt::Display) {
    eprintln!("==> {message}");
}

async fn install_crd(client: &Client) -> Result<()> {
    stoker_testkit::kube_api::apply_crd(client, &crd(), "stoker-bench", Duration::from_secs(60))
        .await
        .context("installing the CRD")
}

/// The operator as a child process; its JSON log goes to a file.
struct Operator {
    child: Child,
    log: PathBuf,
}

impl Operator {
    fn start(
        settings: &Settings,
        cluster: &Cluster,
        namespaces: &[String],
        dir: &Path,
    ) -> Result<Operator> {
        let log = dir.join("operator.log");
        let stderr = std::fs::File::create(&log)?;
        let mut command = Command::new(&settings.operator);
        command
            .arg("--namespaces")
            .arg(namespaces.join(","))
            .args(["--probe-address", "127.0.0.1:0"])
            .args(["--leader-election-namespace", &namespaces[0]])
            .args(["--log-format", "json"])
            .arg("--state-dir")
            .arg(dir.join("state"))
            .env("KUBECONFIG", cluster.kubeconfig_path())
            .env("POD_NAME", "stoker-bench-operator")
            .env(
                "STOKER_LOG",
                std::env::var("OPERATOR_LOG").unwrap_or_else(|_| "info".to_owned()),
            )
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr);
        if let Some(concurrency) = settings.concurrency {
            command.args(["--max-concurrent-reconciles", &concurrency.to_string()]);
        }
        let child = command
            .spawn()
            .with_context(|| format!("starting {}", settings.operator.display()))?;
        Ok(Operator { child, log })
    }

    fn log_lines(&self) -> Vec<Value> {
        let Ok(file) = std::fs::File::open(&self.log) else {
            return Vec::new();
        };
        BufReader::new(file)
            .lines()
            .map_while(|line| line.ok())
            .filter_map(|line| serde_json::from_str(&line).ok())
            .collect()
    }

    /// Waits for the probe address and for leadership, from the log.
    async fn ready(&mut self) -> Result<SocketAddr> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "the operator exited ({status}); log: {}",
                    self.log.display()
                );
            }
            let lines = self.log_lines();
            let address = lines.iter().find_map(|line| {
                (line["fields"]["message"] == "probe server listening")
                    .then(|| line["fields"]["address"].as_str()?.parse().ok())?
            });
            let leads = lines
                .iter()
                .any(|line| line["fields"]["message"] == "became the leader");
            if let (Some(address), true) = (address, leads) {
                return Ok(address);
            }
            if Instant::now() > deadline {
                bail!(
                    "the operator did not become the leader within 60 s; log: {}",
                    self.log.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `VmHWM` (peak resident set) and `VmRSS`, in KiB.
    fn memory_kib(&self) -> Result<(u64, u64)> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        let field = |name: &str| -> Result<u64> {
            status
                .lines()
                .find_map(|line| line.strip_prefix(name))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|kib| kib.parse().ok())
                .ok_or_else(|| anyhow!("no {name} in /proc/PID/status"))
        };
        Ok((field("VmHWM:")?, field("VmRSS:")?))
    }

    /// User + system CPU seconds so far.
    fn cpu_seconds(&self) -> Result<f64> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id()))?;
        // Fields after the command name (which is in parentheses): state is field 3, utime 14.
        let after = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest)
            .ok_or_else(|| anyhow!("unreadable /proc/PID/stat"))?;
        let fields: Vec<&str> = after.split_whitespace().collect();
        let ticks = |i: usize| -> Result<f64> {
            Ok(fields
                .get(i)
                .ok_or_else(|| anyhow!("short /proc/PID/stat"))?
                .parse::<f64>()?)
        };
        // `after` starts at field 3 (state): utime (14) is at index 11, stime (15) at 12.
        Ok((ticks(11)? + ticks(12)?) / clock_ticks())
    }

    fn terminate(&mut self) -> Result<(Duration, std::process::ExitStatus)> {
        let started = Instant::now();
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()?;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok((started.elapsed(), status));
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                bail!("the operator did not exit within 60 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

fn http_get(address: SocketAddr, path: &str) -> Result<String> {
    let mut stream = TcpStream::connect(address)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    Ok(response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default())
}

/// Sum of the samples of `name` whose labels include every `(key, value)` of `labels`.
fn metric_sum(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (metric, rest) = series.split_once('{').unwrap_or((series, ""));
            (metric == name
                && labels
                    .iter()
                    .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\""))))
            .then(|| value.parse::<f64>().ok())?
        })
        .fold(0.0, |sum, value| sum + value)
}

/// The API server's `apiserver_request_total`, summed by (verb, resource, subresource).
fn apiserver_requests(cluster: &Cluster) -> Result<BTreeMap<(String, String, String), f64>> {
    let output = cluster.kubectl(["get", "--raw", "/metrics"])?;
    if !output.status.success() {
        bail!(
            "kubectl get --raw /metrics: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let mut counts = BTreeMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("apiserver_request_total{") else {
            continue;
        };
        let Some((labels, value)) = rest.rsplit_once("} ") else {
            continue;
        };
        let label = |key: &str| -> String {
            labels
                .split(',')
                .find_map(|kv| kv.strip_prefix(&format!("{key}=\"")))
                .map(|v| v.trim_end_matches('"').to_owned())
                .unwrap_or_default()
        };
        let value: f64 = value.trim().parse().unwrap_or(0.0);
        *counts
            .entry((label("verb"), label("resource"), label("subresource")))
            .or_insert(0.0) += value;
    }
    Ok(counts)
}

fn delta(
    before: &BTreeMap<(String, String, String), f64>,
    after: &BTreeMap<(String, String, String), f64>,
    verb: &str,
    resource: &str,
    subresource: &str,
) -> f64 {
    let key = (verb.to_owned(), resource.to_owned(), subresource.to_owned());
    after.get(&key).copied().unwrap_or(0.0) - before.get(&key).copied().unwrap_or(0.0)
}

fn gs_name(i: usize) -> String {
    format!("site-{i:04}")
}

fn pod_manifest(cr: &str, pod: &str, ordinal: usize) -> Result<Pod> {
    // About the size of a real Ignition gateway pod with an injected agent (without what the
    // kubelet would add to its status).
    Ok(serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": pod,
            "labels": {
                "app.kubernetes.io/name": "ignition",
                "app.kubernetes.io/instance": cr,
                "apps.kubernetes.io/pod-index": ordinal.to_string(),
                "stoker.io/agent": "true",
            },
            "annotations": {
                "stoker.io/inject": "true",
                "stoker.io/cr-name": cr,
                "stoker.io/injected": "true",
                "stoker.io/gateway-name": pod,
            },
        },
        "spec": {
            "containers": [
                {
                    "name": "ignition",
                    "image": "inductiveautomation/ignition:8.3.1",
                    "ports": [{"name": "http", "containerPort": 8088}, {"name": "https", "containerPort": 8043}],
                    "env": [
                        {"name": "ACCEPT_IGNITION_EULA", "value": "Y"},
                        {"name": "GATEWAY_ADMIN_USERNAME", "value": "admin"},
                        {"name": "IGNITION_EDITION", "value": "standard"},
                        {"name": "TZ", "value": "Etc/UTC"},
                    ],
                    "resources": {"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"memory": "4Gi"}},
                    "volumeMounts": [{"name": "data", "mountPath": "/usr/local/bin/ignition/data"}],
                },
                {
                    "name": "stoker-agent",
                    "image": "stoker-agent:bench",
                    "args": ["sidecar"],
                    "env": [
                        {"name": "STOKER_CR_NAME", "value": cr},
                        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                        {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                    ],
                    "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}},
                    "volumeMounts": [{"name": "data", "mountPath": "/usr/local/bin/ignition/data"}],
                },
            ],
            "volumes": [{"name": "data", "emptyDir": {}}],
        },
    }))?)
}

/// Creates one GatewaySync, its pods (set Running) and, with reports, their status ConfigMaps.
async fn create_site(
    client: &Client,
    namespace: &str,
    index: usize,
    settings: &Settings,
    repo_url: &str,
    commit: &str,
) -> Result<()> {
    let name = gs_name(index);
    let gs: GatewaySync = serde_json::from_value(json!({
        "apiVersion": "stoker.io/v1alpha1",
        "kind": "GatewaySync",
        "metadata": {"name": name},
        "spec": {
            "git": {"repo": repo_url, "ref": "main"},
            "sync": {"profiles": {"default": {"mappings": [
                {"source": "projects", "destination": "projects"},
                {"source": "config", "destination": "config"}
            ]}}}
        }
    }))?;
    let gs_api: Api<GatewaySync> = Api::namespaced(client.clone(), namespace);
    gs_api.create(&PostParams::default(), &gs).await?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    for ordinal in 0..settings.pods {
        let pod_name = format!("{name}-gw-{ordinal}");
        pods.create(
            &PostParams::default(),
            &pod_manifest(&name, &pod_name, ordinal)?,
        )
        .await?;
        // The kubelet's part.
        let pod = pods
            .patch_status(
                &pod_name,
                &PatchParams::default(),
                &Patch::Merge(json!({"status": {
                    "phase": "Running",
                    "podIP": format!("10.{}.{}.{}", index / 250, index % 250, ordinal + 1),
                    "conditions": [{"type": "Ready", "status": "True"}],
                }})),
            )
            .await?;
        if settings.reports {
            // The agent's part: synced to the commit.
            let mut report =
                GatewayStatusReport::new(&name, &pod_name, &pod_name, "bench", Timestamp::now());
            report.record(SyncResult {
                time: Timestamp::now(),
                commit: Some(commit.to_owned()),
                reference: Some("main".to_owned()),
                status: SyncStatus::Synced,
                files_added: 2,
                duration_ms: Some(120),
                ..SyncResult::default()
            });
            let uid = pod
                .uid()
                .ok_or_else(|| anyhow!("pod {pod_name} has no uid"))?;
            let configmap =
                report.to_configmap(namespace, Some(pod_owner_reference(&pod_name, &uid)))?;
            configmaps
                .patch(
                    &configmap.name_any(),
                    &PatchParams::apply("stoker-agent").force(),
                    &Patch::Apply(&configmap),
                )
                .await?;
        }
    }
    Ok(())
}

/// When each GatewaySync first had each part of its status, from the first create.
#[derive(Default, Clone, Copy)]
struct Progress {
    resolved: Option<Duration>,
    discovered: Option<Duration>,
    done: Option<Duration>,
}

fn is_ready(gs: &GatewaySync) -> bool {
    gs.status.as_ref().is_some_and(|s| {
        s.conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True")
    })
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * (sorted.len() as f64)).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".to_owned())
}

/// Creates every GatewaySync with its pods (and reports), `PARALLEL` requests at once.
async fn create_all(
    client: &Client,
    namespaces: &[String],
    settings: &Settings,
    repo_url: &str,
    commit: &str,
) -> Result<()> {
    futures::stream::iter(0..settings.crs)
        .map(|i| {
            let namespace = &namespaces[i % namespaces.len()];
            create_site(client, namespace, i, settings, repo_url, commit)
        })
        .buffer_unordered(settings.parallel)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(())
}

/// Polls the GatewaySyncs until every one has its full status; when each got each part.
async fn watch_statuses(
    client: &Client,
    namespaces: &[String],
    settings: &Settings,
    commit: &str,
    started: Instant,
) -> Result<BTreeMap<String, Progress>> {
    let mut progress_of: BTreeMap<String, Progress> = BTreeMap::new();
    let mut last_report = Instant::now();
    loop {
        let elapsed = started.elapsed();
        for namespace in namespaces {
            let api: Api<GatewaySync> = Api::namespaced(client.clone(), namespace);
            for gs in api.list(&ListParams::default()).await?.items {
                let entry = progress_of
                    .entry(format!("{namespace}/{}", gs.name_any()))
                    .or_default();
                let status = gs.status.clone().unwrap_or_default();
                if entry.resolved.is_none() && status.last_sync_commit.as_deref() == Some(commit) {
                    entry.resolved = Some(elapsed);
                }
                if entry.discovered.is_none() && status.discovered_gateways.len() == settings.pods {
                    entry.discovered = Some(elapsed);
                }
                if entry.done.is_none()
                    && entry.resolved.is_some()
                    && entry.discovered.is_some()
                    && status.discovered_gateways.len() == settings.pods
                    && (!settings.reports || is_ready(&gs))
                {
                    entry.done = Some(elapsed);
                }
            }
        }
        let done = progress_of.values().filter(|p| p.done.is_some()).count();
        if done == settings.crs {
            return Ok(progress_of);
        }
        if last_report.elapsed() > Duration::from_secs(10) {
            let resolved = progress_of
                .values()
                .filter(|p| p.resolved.is_some())
                .count();
            let discovered = progress_of
                .values()
                .filter(|p| p.discovered.is_some())
                .count();
            progress(format!(
                "{:.0} s: {} GatewaySyncs, {resolved} resolved, {discovered} with all gateways, {done} done",
                elapsed.as_secs_f64(),
                progress_of.len(),
            ));
            last_report = Instant::now();
        }
        if elapsed > settings.timeout {
            bail!(
                "only {done} of {} GatewaySyncs converged within {:?}",
                settings.crs,
                settings.timeout
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::too_many_lines)] // the benchmark's scenario, step by step
async fn main() -> Result<()> {
    let settings = Settings::from_env()?;
    install_crypto_provider();
    let load_before = load_average();
    progress(format!(
        "{} GatewaySyncs × {} pods in {} namespace(s), reports: {}; load average {load_before}",
        settings.crs, settings.pods, settings.namespaces, settings.reports
    ));

    let cluster = cluster().map_err(|e| anyhow!("{e}"))?;
    let client = cluster.client().map_err(|e| anyhow!("{e}"))?;
    install_crd(&client).await?;
    let servers = stoker_testkit::git::servers();
    let repo = servers.new_repo("bench-operator");
    let commit = repo
        .commit(
            "main",
            &[
                ("projects/demo/project.json", b"{\"title\": \"demo\"}"),
                ("config/resources/core/a.json", b"{}"),
            ],
            "first",
        )
        .map_err(|e| anyhow!("{e}"))?;
    let repo_url = servers.http_url(&repo);
    let mut namespaces = Vec::new();
    for _ in 0..settings.namespaces {
        namespaces.push(
            cluster
                .namespace("bench-operator")
                .await
                .map_err(|e| anyhow!("{e}"))?,
        );
    }
    // Unrelated Secrets, as Helm releases and TLS keys would be.
    for namespace in &namespaces {
        let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
        for i in 0..settings.secrets {
            let secret: Secret = serde_json::from_value(json!({
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": format!("sh.helm.release.v1.other.v{i}")},
                "stringData": {"release": "x".repeat(16 * 1024)},
            }))?;
            secrets.create(&PostParams::default(), &secret).await?;
        }
    }

    let scratch = tempfile::tempdir()?;
    let create = || create_all(&client, &namespaces, &settings, &repo_url, &commit);
    let (
        mut operator,
        probes,
        idle_hwm,
        requests_before,
        cpu_before,
        started,
        created,
        progress_of,
    );
    if settings.existing {
        // Everything exists first; the clock starts with the operator (a restart, a failover).
        let creating = Instant::now();
        create().await?;
        created = creating.elapsed();
        progress(format!(
            "{} objects created in {:.1} s; starting the operator",
            settings.crs * (1 + settings.pods),
            created.as_secs_f64()
        ));
        requests_before = apiserver_requests(cluster)?;
        started = Instant::now();
        operator = Operator::start(&settings, cluster, &namespaces, scratch.path())?;
        probes = operator.ready().await?;
        (idle_hwm, _) = operator.memory_kib()?;
        cpu_before = 0.0;
        progress_of = watch_statuses(&client, &namespaces, &settings, &commit, started).await?;
    } else {
        operator = Operator::start(&settings, cluster, &namespaces, scratch.path())?;
        probes = operator.ready().await?;
        (idle_hwm, _) = operator.memory_kib()?;
        progress(format!(
            "operator {} leads (pid {}, probes on {probes}, {} MiB resident)",
            settings.operator.display(),
            operator.child.id(),
            idle_hwm / 1024
        ));
        requests_before = apiserver_requests(cluster)?;
        cpu_before = operator.cpu_seconds()?;
        // Create everything, `PARALLEL` requests at once, and watch the statuses meanwhile.
        started = Instant::now();
        let creating = async {
            create().await?;
            Ok::<Duration, anyhow::Error>(started.elapsed())
        };
        (created, progress_of) = tokio::try_join!(
            creating,
            watch_statuses(&client, &namespaces, &settings, &commit, started)
        )?;
    }
    let converged = started.elapsed();
    let load_converged = load_average();
    let cpu_converged = operator.cpu_seconds()? - cpu_before;
    let (hwm_converged, rss_converged) = operator.memory_kib()?;
    let metrics_converged = http_get(probes, "/metrics")?;
    let requests_converged = apiserver_requests(cluster)?;
    progress(format!(
        "converged after {:.1} s (objects created after {:.1} s)",
        converged.as_secs_f64(),
        created.as_secs_f64()
    ));

    let mut idle = None;
    if !settings.idle.is_zero() {
        progress(format!("idling {} s", settings.idle.as_secs()));
        tokio::time::sleep(settings.idle).await;
        let metrics = http_get(probes, "/metrics")?;
        idle = Some((
            metric_sum(&metrics, "stoker_controller_reconcile_total", &[])
                - metric_sum(&metrics_converged, "stoker_controller_reconcile_total", &[]),
            operator.cpu_seconds()? - cpu_before - cpu_converged,
        ));
    }
    let (hwm_end, _) = operator.memory_kib()?;
    let (stop_took, exit) = operator.terminate()?;
    let mut warnings: BTreeMap<String, usize> = BTreeMap::new();
    for line in operator.log_lines() {
        let level = line["level"].as_str().unwrap_or_default();
        if level == "WARN" || level == "ERROR" {
            let message = line["fields"]["message"].as_str().unwrap_or_default();
            let error = line["fields"]["error"].as_str().unwrap_or_default();
            *warnings
                .entry(format!("{level} {message}: {error}"))
                .or_default() += 1;
        }
    }
    for (warning, count) in &warnings {
        progress(format!("operator log: {count} × {warning}"));
    }
    if env_or::<u8>("KEEP", 0)? != 0 {
        progress(format!("kept {}", scratch.keep().display()));
    }

    // The table.
    let mut done: Vec<Duration> = progress_of.values().filter_map(|p| p.done).collect();
    done.sort();
    let last = |f: fn(&Progress) -> Option<Duration>| {
        progress_of.values().filter_map(f).max().unwrap_or_default()
    };
    let reconciles = metric_sum(&metrics_converged, "stoker_controller_reconcile_total", &[]);
    // Failed reconciliations: `requeue` (the ref or its credentials failed) and `error`.
    let reconcile_errors = ["error", "requeue"]
        .iter()
        .map(|result| {
            metric_sum(
                &metrics_converged,
                "stoker_controller_reconcile_total",
                &[("result", result)],
            )
        })
        .sum::<f64>();
    let reconcile_seconds = metric_sum(
        &metrics_converged,
        "stoker_controller_reconcile_duration_seconds_sum",
        &[],
    );
    let resolves = metric_sum(
        &metrics_converged,
        "stoker_controller_ref_resolve_duration_seconds_count",
        &[],
    );
    let resolve_seconds = metric_sum(
        &metrics_converged,
        "stoker_controller_ref_resolve_duration_seconds_sum",
        &[],
    );
    for ((verb, resource, sub), after) in &requests_converged {
        let n = after
            - requests_before
                .get(&(verb.clone(), resource.clone(), sub.clone()))
                .copied()
                .unwrap_or(0.0);
        if n > 0.0 && verb != "WATCH" {
            progress(format!(
                "API requests until converged: {verb} {resource}{}{sub}: {n:.0}",
                if sub.is_empty() { "" } else { "/" }
            ));
        }
    }
    let d = |verb: &str, resource: &str, sub: &str| {
        delta(&requests_before, &requests_converged, verb, resource, sub)
    };
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mib = |kib: u64| format!("{:.0} MiB", kib as f64 / 1024.0);
    let rows: Vec<(String, String)> = vec![
        (
            "workload".into(),
            format!(
                "{} GatewaySyncs × {} pods = {} pods in {} namespace(s); status ConfigMaps: {}; extra Secrets/ns: {}",
                settings.crs,
                settings.pods,
                settings.crs * settings.pods,
                settings.namespaces,
                if settings.reports { "yes" } else { "no" },
                settings.secrets
            ),
        ),
        (
            "clock starts".into(),
            if settings.existing {
                "when the operator starts (everything exists already)".into()
            } else {
                "at the first create (the operator is running)".into()
            },
        ),
        ("objects created (by the benchmark)".into(), secs(created)),
        (
            "every CR has lastSyncCommit".into(),
            secs(last(|p| p.resolved)),
        ),
        (
            format!("every CR has {} discovered gateways", settings.pods),
            secs(last(|p| p.discovered)),
        ),
        (
            if settings.reports {
                "**every CR has its full status (Ready=True)**".into()
            } else {
                "**every CR has its full status**".into()
            },
            format!("**{}**", secs(converged)),
        ),
        (
            "per CR, time to full status: p50 / p90 / max".into(),
            format!(
                "{} / {} / {}",
                secs(percentile(&done, 50.0)),
                secs(percentile(&done, 90.0)),
                secs(percentile(&done, 100.0))
            ),
        ),
        (
            "operator peak RSS (VmHWM): started → converged → end".into(),
            format!(
                "{} → {} → {} (RSS at convergence {})",
                mib(idle_hwm),
                mib(hwm_converged),
                mib(hwm_end),
                mib(rss_converged)
            ),
        ),
        (
            "operator CPU until converged".into(),
            format!("{cpu_converged:.1} s"),
        ),
        (
            "reconciles until converged (errors)".into(),
            format!(
                "{reconciles:.0} ({reconcile_errors:.0}); mean {:.0} ms",
                1000.0 * reconcile_seconds / reconciles.max(1.0)
            ),
        ),
        (
            "ref resolutions (git ls-remote over HTTP)".into(),
            format!(
                "{resolves:.0}; mean {:.0} ms",
                1000.0 * resolve_seconds / resolves.max(1.0)
            ),
        ),
        (
            "API LIST calls: pods / secrets / configmaps".into(),
            format!(
                "{:.0} / {:.0} / {:.0}",
                d("LIST", "pods", ""),
                d("LIST", "secrets", ""),
                d("LIST", "configmaps", "")
            ),
        ),
        (
            "API writes: GatewaySync status / metadata ConfigMaps / Events".into(),
            format!(
                "{:.0} / {:.0} / {:.0}",
                d("APPLY", "gatewaysyncs", "status"),
                // Without the benchmark's own (the agents' status ConfigMaps).
                d("APPLY", "configmaps", "")
                    - if settings.reports && !settings.existing {
                        (settings.crs * settings.pods) as f64
                    } else {
                        0.0
                    },
                d("POST", "events", "") + d("PATCH", "events", "")
            ),
        ),
        (
            "SIGTERM → exit".into(),
            format!("{:.2} s, {exit}", stop_took.as_secs_f64()),
        ),
        (
            "machine".into(),
            format!(
                "{cores} cores; load average {load_before} before, {load_converged} at convergence"
            ),
        ),
    ];
    let mut rows = rows;
    if let Some((reconciles, cpu)) = idle {
        rows.push((
            format!("idle {} s after convergence", settings.idle.as_secs()),
            format!("{reconciles:.0} reconciles, {cpu:.1} s CPU"),
        ));
    }
    println!("| measure | value |");
    println!("|---|---|");
    for (key, value) in rows {
        println!("| {key} | {value} |");
    }
    std::io::stdout().flush()?;
    Ok(())
}
