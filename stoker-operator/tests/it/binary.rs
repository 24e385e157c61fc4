//! The real `stoker-operator` binary, as a separate process, against a real kube-apiserver +
//! etcd (stoker-testkit) and a real Git server on loopback: probes, metrics, the leader Lease,
//! JSON logs, SIGTERM, and `--help`. The test plays the kubelet (pod phases) and the agent
//! (status ConfigMaps); nothing is mocked.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};
use serde_json::{Value, json};
use stoker_k8s::GatewaySync;
use stoker_k8s::crd::{SyncStatus, crd};
use stoker_k8s::gateway_status::{GatewayStatusReport, SyncResult, pod_owner_reference};
use stoker_testkit::kube_api::{Cluster, cluster, install_crypto_provider, wait_until};
use stoker_testkit::metrics::{OPERATOR, compare, parse};

const BIN: &str = env!("CARGO_BIN_EXE_stoker-operator");
const LEASE: &str = "stoker-operator";
const GRACE_SECONDS: u64 = 10;

async fn cluster_with_crd() -> &'static Cluster {
    install_crypto_provider();
    let c = cluster().unwrap();
    c.apply_crd(&crd(), "stoker-operator-test", Duration::from_secs(30))
        .await
        .unwrap();
    c
}

/// The operator binary running as a child process, its stderr collected line by line.
struct Operator {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    /// The webhook receiver's address.
    receiver: SocketAddr,
    _state: tempfile::TempDir,
}

impl Operator {
    fn start(cluster: &Cluster, namespace: &str, identity: &str) -> Operator {
        let state = tempfile::tempdir().unwrap();
        let receiver_port = stoker_testkit::process::free_port().unwrap();
        let mut command = Command::new(BIN);
        command
            .args(["--namespaces", namespace])
            .args(["--probe-address", "127.0.0.1:0"])
            // Replicas of one test (leader and follower) each serve admission: own ports.
            .args([
                "--webhook-port",
                &stoker_testkit::process::free_port().unwrap().to_string(),
            ])
            // And the webhook receiver.
            .args(["--webhook-receiver-port", &receiver_port.to_string()])
            .args(["--leader-election-namespace", namespace])
            .args(["--log-format", "json"])
            .args(["--shutdown-grace-seconds", &GRACE_SECONDS.to_string()])
            .arg("--state-dir")
            .arg(state.path())
            .env("KUBECONFIG", cluster.kubeconfig_path())
            .env("POD_NAME", identity)
            // The webhook's TLS Secret goes to the operator's namespace: the test's.
            .env("POD_NAMESPACE", namespace)
            .env("STOKER_LOG", "info")
            .env_remove("RUST_LOG")
            .env_remove("WATCH_NAMESPACES")
            .env_remove("LEADER_ELECT")
            .env_remove("LOG_FORMAT")
            .env_remove("PROBE_ADDRESS")
            .env_remove("WEBHOOK_PORT")
            .env_remove("WEBHOOK_RECEIVER_PORT")
            .env_remove("WEBHOOK_HMAC_SECRET")
            .env_remove("WEBHOOK_BEARER_TOKEN")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = command.spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                eprintln!("[operator] {line}");
                sink.lock().unwrap().push(line);
            }
        });
        Operator {
            child,
            lines,
            receiver: SocketAddr::from(([127, 0, 0, 1], receiver_port)),
            _state: state,
        }
    }

    fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// The probe server's address, from its JSON log line.
    async fn probe_address(&self) -> SocketAddr {
        wait_until(
            "the operator logs its probe address",
            Duration::from_secs(30),
            || async {
                self.lines().iter().find_map(|line| {
                    let value: Value = serde_json::from_str(line).ok()?;
                    (value["fields"]["message"] == "probe server listening")
                        .then(|| value["fields"]["address"].as_str()?.parse().ok())?
                })
            },
        )
        .await
    }

    fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the process to exit, at most `timeout`.
    async fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the operator did not exit within {timeout:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A plain HTTP/1.1 POST of a JSON `body`: status code and body.
fn post(address: SocketAddr, path: &str, body: &str) -> (u16, String) {
    exchange(
        address,
        &format!(
            "POST {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    )
}

/// A plain HTTP/1.1 GET: status code and body.
fn get(address: SocketAddr, path: &str) -> (u16, String) {
    exchange(
        address,
        &format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"),
    )
}

/// Sends `request` on a new connection to `address` and reads the answer to the end: its
/// status code and body.
fn exchange(address: SocketAddr, request: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {response:?}"));
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    (status, body)
}

async fn lease_holder(client: &Client, namespace: &str) -> Option<Option<String>> {
    let api: Api<Lease> = Api::namespaced(client.clone(), namespace);
    let lease = api.get_opt(LEASE).await.unwrap()?;
    Some(lease.spec.and_then(|spec| spec.holder_identity))
}

/// Every line is one JSON object with a timestamp, a level and a message.
fn assert_json_lines(lines: &[String]) {
    assert!(!lines.is_empty(), "the operator logged nothing");
    for line in lines {
        let value: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("log line is not JSON ({e}): {line}"));
        assert!(value["timestamp"].is_string(), "no timestamp: {line}");
        assert!(value["level"].is_string(), "no level: {line}");
        assert!(value["fields"]["message"].is_string(), "no message: {line}");
    }
}

async fn create_running_pod(client: &Client, namespace: &str, name: &str, cr: &str) -> Pod {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let pod: Pod = serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "annotations": {
            "stoker.io/cr-name": cr,
            "stoker.io/injected": "true",
        }},
        "spec": {"containers": [
            {"name": "ignition", "image": "inductiveautomation/ignition:8.3"},
            {"name": "stoker-agent", "image": "stoker-agent:test"}
        ]}
    }))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    pods.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"phase": "Running"}})),
    )
    .await
    .unwrap()
}

/// Writes the pod's status ConfigMap as its agent would: synced to `commit`.
async fn report_synced(client: &Client, namespace: &str, cr: &str, pod: &Pod, commit: &str) {
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
        reference: Some("main".to_owned()),
        status: SyncStatus::Synced,
        files_added: 2,
        ..SyncResult::default()
    });
    let owner = pod_owner_reference(&pod.name_any(), &pod.uid().unwrap());
    let configmap = report.to_configmap(namespace, Some(owner)).unwrap();
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    api.patch(
        &configmap.name_any(),
        &PatchParams::apply("stoker-agent").force(),
        &Patch::Apply(&configmap),
    )
    .await
    .unwrap();
}

/// The value of the sample `name{labels}` in a text exposition, if present.
fn sample(metrics: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    metrics.lines().find_map(|line| {
        let (series, value) = line.rsplit_once(' ')?;
        let (metric, rest) = series.split_once('{').unwrap_or((series, ""));
        if metric != name {
            return None;
        }
        let all = labels
            .iter()
            .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")));
        all.then(|| value.parse().ok())?
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::too_many_lines)] // one scenario against the binary, step by step
async fn the_binary_serves_probes_and_metrics_holds_the_lease_logs_json_and_stops_on_sigterm() {
    let cluster = cluster_with_crd().await;
    let client = cluster.client().unwrap();
    let ns = cluster.namespace("operator-bin").await.unwrap();
    let servers = stoker_testkit::git::servers();
    let repo = servers.new_repo("operator-bin");
    let commit = repo
        .commit(
            "main",
            &[("projects/demo/project.json", b"{\"title\": \"demo\"}")],
            "first",
        )
        .unwrap();

    let identity = format!("operator-bin-{}", std::process::id());
    let mut operator = Operator::start(cluster, &ns, &identity);
    let probes = operator.probe_address().await;
    assert_eq!(get(probes, "/healthz").0, 200);
    wait_until("/readyz answers 200", Duration::from_secs(30), || async {
        (get(probes, "/readyz").0 == 200).then_some(())
    })
    .await;
    wait_until(
        "the Lease names the operator as holder",
        Duration::from_secs(30),
        || async {
            (lease_holder(&client, &ns).await.flatten().as_deref() == Some(identity.as_str()))
                .then_some(())
        },
    )
    .await;

    // A GatewaySync on the loopback Git server, two gateway pods, one of them synced.
    let gs: GatewaySync = serde_json::from_value(json!({
        "apiVersion": "stoker.io/v1alpha1",
        "kind": "GatewaySync",
        "metadata": {"name": "site"},
        "spec": {
            "git": {"repo": servers.http_url(&repo), "ref": "main"},
            "sync": {"profiles": {"default": {"mappings": [
                {"source": "projects", "destination": "projects"}
            ]}}}
        }
    }))
    .unwrap();
    let gs_api: Api<GatewaySync> = Api::namespaced(client.clone(), &ns);
    gs_api.create(&PostParams::default(), &gs).await.unwrap();
    let gw0 = create_running_pod(&client, &ns, "gw-0", "site").await;
    create_running_pod(&client, &ns, "gw-1", "site").await;
    report_synced(&client, &ns, "site", &gw0, &commit).await;
    wait_until(
        "the GatewaySync's status has the commit and 1 of 2 gateways synced",
        Duration::from_secs(60),
        || async {
            let status = gs_api.get("site").await.unwrap().status?;
            let synced = status
                .discovered_gateways
                .iter()
                .filter(|g| g.sync_status == SyncStatus::Synced)
                .count();
            (status.last_sync_commit.as_deref() == Some(commit.as_str())
                && status.discovered_gateways.len() == 2
                && synced == 1)
                .then_some(())
        },
    )
    .await;

    let labels = [("namespace", ns.as_str()), ("name", "site")];
    let metrics = wait_until(
        "/metrics shows the GatewaySync's gauges",
        Duration::from_secs(30),
        || async {
            let (status, body) = get(probes, "/metrics");
            assert_eq!(status, 200);
            (sample(&body, "stoker_controller_gateways_synced", &labels) == Some(1.0))
                .then_some(body)
        },
    )
    .await;
    // Exactly the families and label keys of stoker_testkit::metrics::OPERATOR (stoker-operator
    // v0.5.1's and ours), nothing missing, nothing more. This scenario has no GitHub App, no
    // spec.alerting, no push receiver and no admission request: the unit tests that record every metric check
    // those families' labels.
    let problems = compare(
        &parse(&metrics),
        OPERATOR,
        "stoker_",
        &[
            "stoker_controller_github_app_token_expiry_timestamp_seconds",
            "stoker_controller_notifications_total",
            "stoker_webhook_receiver_requests_total",
            "stoker_webhook_injector_injections_total",
            "stoker_webhook_validations_total",
            "stoker_webhook_admission_duration_seconds",
        ],
    );
    assert!(problems.is_empty(), "{problems:#?}\n{metrics}");
    assert!(
        sample(
            &metrics,
            "stoker_controller_reconcile_total",
            &[("name", "site"), ("result", "success")]
        )
        .unwrap()
            >= 1.0
    );
    assert!(
        sample(
            &metrics,
            "stoker_controller_reconcile_duration_seconds_count",
            &labels
        )
        .unwrap()
            >= 1.0
    );
    assert!(
        sample(
            &metrics,
            "stoker_controller_ref_resolve_duration_seconds_count",
            &labels
        )
        .unwrap()
            >= 1.0
    );
    assert_eq!(
        sample(&metrics, "stoker_controller_gateways_discovered", &labels),
        Some(2.0)
    );
    assert_eq!(
        sample(
            &metrics,
            "stoker_controller_gateways_missing_sidecar",
            &labels
        ),
        Some(0.0)
    );
    for (gateway, status) in [("gw-0", 1.0), ("gw-1", 0.0)] {
        assert_eq!(
            sample(
                &metrics,
                "stoker_controller_gateway_sync_status",
                &[("name", "site"), ("gateway", gateway)]
            ),
            Some(status),
            "{gateway}"
        );
    }
    assert_eq!(
        sample(
            &metrics,
            "stoker_controller_condition_status",
            &[("name", "site"), ("type", "RefResolved")]
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &metrics,
            "stoker_controller_cr_info",
            &[("name", "site"), ("git_ref", "main"), ("auth_type", "none")]
        ),
        Some(1.0)
    );
    let last_sync = sample(
        &metrics,
        "stoker_controller_last_sync_timestamp_seconds",
        &labels,
    )
    .unwrap();
    let now = Timestamp::now().as_second() as f64;
    assert!(
        (now - 120.0..=now + 1.0).contains(&last_sync),
        "last sync {last_sync}, now {now}"
    );

    // SIGTERM: not ready any more, exits 0 within the grace period, gives the Lease back.
    operator.terminate();
    let status = operator
        .wait_exit(Duration::from_secs(GRACE_SECONDS + 10))
        .await;
    assert!(status.success(), "exit status after SIGTERM: {status}");
    assert_eq!(
        lease_holder(&client, &ns).await,
        Some(None),
        "the Lease must be released"
    );
    let lines = operator.lines();
    assert_json_lines(&lines);
    for message in [
        "became the leader",
        "SIGTERM: shutting down",
        "released the leader lease",
    ] {
        assert!(
            lines.iter().any(|line| line.contains(message)),
            "no log line says {message:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_replica_waits_for_the_lease_and_takes_over_when_the_first_stops() {
    let cluster = cluster_with_crd().await;
    let client = cluster.client().unwrap();
    let ns = cluster.namespace("operator-replicas").await.unwrap();
    let first = Operator::start(cluster, &ns, "replica-a");
    wait_until("replica-a leads", Duration::from_secs(30), || async {
        (lease_holder(&client, &ns).await.flatten().as_deref() == Some("replica-a")).then_some(())
    })
    .await;
    let mut second = Operator::start(cluster, &ns, "replica-b");
    // The follower serves its probes and is ready (it would take over), but does not lead.
    let probes = second.probe_address().await;
    wait_until("replica-b is ready", Duration::from_secs(30), || async {
        (get(probes, "/readyz").0 == 200).then_some(())
    })
    .await;
    // It receives webhooks too (no secret configured: a missing GatewaySync is a 404, read
    // from the API server).
    let receiver = second.receiver;
    let path = format!("/webhook/{ns}/missing");
    let answer = tokio::task::spawn_blocking(move || post(receiver, &path, r#"{"ref":"v1"}"#))
        .await
        .unwrap();
    assert_eq!(answer, (404, "not found\n".to_owned()));
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        lease_holder(&client, &ns).await.flatten().as_deref(),
        Some("replica-a")
    );
    assert!(
        !second
            .lines()
            .iter()
            .any(|line| line.contains("became the leader"))
    );

    // Stopping the leader releases the Lease; the follower takes it at its next round (every
    // 2 s) instead of waiting 15 s for it to expire.
    let mut first = first;
    first.terminate();
    assert!(
        first
            .wait_exit(Duration::from_secs(GRACE_SECONDS + 10))
            .await
            .success()
    );
    let released = Instant::now();
    wait_until("replica-b takes over", Duration::from_secs(10), || async {
        (lease_holder(&client, &ns).await.flatten().as_deref() == Some("replica-b")).then_some(())
    })
    .await;
    assert!(
        released.elapsed() < Duration::from_secs(8),
        "replica-b took {:?}",
        released.elapsed()
    );
    wait_until(
        "replica-b logs that it leads",
        Duration::from_secs(10),
        || async {
            second
                .lines()
                .iter()
                .any(|line| line.contains("became the leader"))
                .then_some(())
        },
    )
    .await;

    second.terminate();
    assert!(
        second
            .wait_exit(Duration::from_secs(GRACE_SECONDS + 10))
            .await
            .success()
    );
    assert_eq!(lease_holder(&client, &ns).await, Some(None));
    assert_json_lines(&first.lines());
    assert_json_lines(&second.lines());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_stops_on_sigterm_without_touching_the_lease() {
    let cluster = cluster_with_crd().await;
    let client = cluster.client().unwrap();
    let ns = cluster.namespace("operator-follower").await.unwrap();
    // Someone else holds the lease (for longer than the test).
    let api: Api<Lease> = Api::namespaced(client.clone(), &ns);
    let lease: Lease = serde_json::from_value(json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": LEASE},
        "spec": {
            "holderIdentity": "someone-else",
            "leaseDurationSeconds": 300,
            "acquireTime": MicroTime(Timestamp::now()),
            "renewTime": MicroTime(Timestamp::now()),
            "leaseTransitions": 4
        }
    }))
    .unwrap();
    api.create(&PostParams::default(), &lease).await.unwrap();
    let mut follower = Operator::start(cluster, &ns, "follower");
    let probes = follower.probe_address().await;
    wait_until("the follower is ready", Duration::from_secs(30), || async {
        (get(probes, "/readyz").0 == 200).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    follower.terminate();
    let status = follower.wait_exit(Duration::from_secs(10)).await;
    assert!(status.success(), "exit status: {status}");
    let spec = api.get(LEASE).await.unwrap().spec.unwrap();
    assert_eq!(spec.holder_identity.as_deref(), Some("someone-else"));
    assert_eq!(spec.lease_transitions, Some(4));
    assert_json_lines(&follower.lines());
}

#[test]
fn help_documents_every_flag_and_environment_variable() {
    let output = Command::new(BIN).arg("--help").output().unwrap();
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).unwrap();
    let flags: BTreeMap<&str, &str> = BTreeMap::from([
        ("--namespaces", "WATCH_NAMESPACES"),
        ("--label-selector", "LABEL_SELECTOR"),
        ("--max-concurrent-reconciles", "MAX_CONCURRENT_RECONCILES"),
        ("--leader-elect", "LEADER_ELECT"),
        ("--leader-election-namespace", "LEADER_ELECTION_NAMESPACE"),
        ("--leader-election-id", "LEADER_ELECTION_ID"),
        ("--probe-address", "PROBE_ADDRESS"),
        ("--state-dir", "STATE_DIR"),
        ("--git-ca-file", "GIT_CA_FILE"),
        ("--auto-bind-agent", "AUTO_BIND_AGENT"),
        ("--max-backoff-seconds", "MAX_BACKOFF_SECONDS"),
        ("--shutdown-grace-seconds", "SHUTDOWN_GRACE_SECONDS"),
        ("--log-level", "STOKER_LOG"),
        ("--log-format", "LOG_FORMAT"),
        ("--webhook-port", "WEBHOOK_PORT"),
        ("--webhook-cert-dir", "WEBHOOK_CERT_DIR"),
        ("--webhook-secret", "WEBHOOK_SECRET"),
        ("--webhook-service", "WEBHOOK_SERVICE"),
        ("--webhook-cert-extra-names", "WEBHOOK_CERT_EXTRA_NAMES"),
        (
            "--mutating-webhook-configuration",
            "MUTATING_WEBHOOK_CONFIGURATION",
        ),
        (
            "--validating-webhook-configuration",
            "VALIDATING_WEBHOOK_CONFIGURATION",
        ),
        ("--agent-image", "AGENT_IMAGE"),
        ("--agent-image-pull-policy", "AGENT_IMAGE_PULL_POLICY"),
        ("--agent-cache-size-limit", "AGENT_CACHE_SIZE_LIMIT"),
        ("--webhook-receiver-port", "WEBHOOK_RECEIVER_PORT"),
        (
            "--webhook-receiver-rate-limit",
            "WEBHOOK_RECEIVER_RATE_LIMIT",
        ),
        ("--webhook-receiver-burst", "WEBHOOK_RECEIVER_BURST"),
        (
            "--webhook-receiver-trust-forwarded-for",
            "WEBHOOK_RECEIVER_TRUST_FORWARDED_FOR",
        ),
        (
            "--webhook-receiver-timeout-seconds",
            "WEBHOOK_RECEIVER_TIMEOUT_SECONDS",
        ),
    ]);
    for (flag, env) in flags {
        assert!(help.contains(flag), "--help lacks {flag}:\n{help}");
        assert!(
            help.contains(&format!("[env: {env}=")),
            "--help lacks {env}:\n{help}"
        );
    }
    // Secrets: the variable is named, its value never shown.
    for (flag, env) in [
        ("--webhook-hmac-secret", "WEBHOOK_HMAC_SECRET"),
        ("--webhook-bearer-token", "WEBHOOK_BEARER_TOKEN"),
    ] {
        assert!(help.contains(flag), "--help lacks {flag}:\n{help}");
        assert!(
            help.contains(&format!("[env: {env}]")),
            "--help lacks {env}:\n{help}"
        );
    }
    let with_secret = Command::new(BIN)
        .arg("--help")
        .env("WEBHOOK_HMAC_SECRET", "do-not-print-me")
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&with_secret.stdout).contains("do-not-print-me"));
    // Variables read without a flag of their own.
    for env in ["POD_NAME", "POD_NAMESPACE", "KUBECONFIG", "RUST_LOG"] {
        assert!(help.contains(env), "--help lacks {env}:\n{help}");
    }
    let version = Command::new(BIN).arg("--version").output().unwrap();
    assert!(version.status.success());
    assert!(String::from_utf8_lossy(&version.stdout).starts_with("stoker-operator "));
}

#[test]
fn an_unusable_kubeconfig_is_one_error_line_naming_the_file_and_a_failed_exit() {
    let missing = std::env::temp_dir().join("stoker-operator-test-no-such-kubeconfig");
    let output = Command::new(BIN)
        .env("KUBECONFIG", &missing)
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env("PROBE_ADDRESS", "127.0.0.1:0")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|line| line.contains("error"))
        .collect();
    assert_eq!(errors.len(), 1, "stderr:\n{stderr}");
    assert!(errors[0].starts_with("error: "), "stderr:\n{stderr}");
    assert!(
        errors[0].contains(&missing.display().to_string()),
        "stderr:\n{stderr}"
    );
}
