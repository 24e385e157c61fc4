//! The Helm chart (`charts/stoker`) and the Kubernetes examples, against the real test API
//! server: `helm lint`; `helm template` with the defaults, with `watchNamespaces`, with a
//! stoker-operator v0.5 values file, and with each admission option (the two webhook
//! configurations field by field, cert-manager, the PodDisruptionBudget, the NetworkPolicy); a
//! server-side dry run of everything it renders (the cert-manager objects against stand-in
//! CRDs, tests/fixtures/cert-manager-crds.yaml) and of `examples/`; a `helm upgrade` that must
//! keep a caBundle written outside Helm; and a real `helm install`, after which the operator
//! binary runs with the chart's own service-account token and the exact flags of the chart's
//! Deployment (so a permission the chart forgot, or a flag the binary does not know, fails
//! here), and the agent's ClusterRole is checked verb by verb through the example's RoleBinding.
//!
//! helm comes from `hack/helm.sh install` (built from the Go module proxy, cached), found through
//! `STOKER_HELM_BIN_DIR`, else `hack/helm.sh bin-dir`; a test never builds it. That the chart's
//! CRD is the generated one is checked in stoker-k8s (tests/it/crd.rs).

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_yaml::Value;
use stoker_testkit::kube_api::{Cluster, ENV_KUBECONFIG, KubeBinaries};

/// Env var: the directory holding `helm` (`hack/helm.sh install --print-bin-dir`).
const ENV_HELM_BIN_DIR: &str = "STOKER_HELM_BIN_DIR";
const CRD_NAME: &str = "gatewaysyncs.stoker.io";
/// How long the operator gets to converge.
const CONVERGE: Duration = Duration::from_secs(60);

/// The chart tests' own API server, not the one the testkit starts for this binary: a real
/// `helm install` registers cluster-wide admission webhooks and runs an operator watching every
/// namespace, which would meet the objects of the operator binary's tests (`binary`) on a
/// shared server. With `STOKER_TEST_KUBECONFIG` set, that server, as for every test.
fn cluster() -> Result<&'static Cluster, String> {
    static OWN: OnceLock<Result<Cluster, String>> = OnceLock::new();
    if std::env::var_os(ENV_KUBECONFIG).is_some() {
        return stoker_testkit::kube_api::cluster().map_err(|e| e.to_string());
    }
    OWN.get_or_init(|| {
        KubeBinaries::locate()
            .and_then(|bins| Cluster::start(None, bins))
            .map_err(|e| format!("cannot start the chart tests' API server: {e}"))
    })
    .as_ref()
    .map_err(Clone::clone)
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

fn chart() -> PathBuf {
    root().join("charts/stoker")
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// `helm`, built and cached by `hack/helm.sh install`; never built here.
fn helm_binary() -> &'static Path {
    static HELM: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let found = HELM.get_or_init(|| {
        let dir = match std::env::var_os(ENV_HELM_BIN_DIR) {
            Some(dir) => PathBuf::from(dir),
            None => {
                let script = root().join("hack/helm.sh");
                let output = Command::new("bash")
                    .arg(&script)
                    .arg("bin-dir")
                    .stdin(Stdio::null())
                    .output()
                    .map_err(|e| format!("run bash {}: {e}", script.display()))?;
                if !output.status.success() {
                    return Err(String::from_utf8_lossy(&output.stderr).trim().to_owned());
                }
                PathBuf::from(String::from_utf8_lossy(&output.stdout).trim())
            }
        };
        let helm = dir.join("helm");
        if helm.is_file() {
            Ok(helm)
        } else {
            Err(format!(
                "{} is missing: run 'hack/helm.sh install'",
                helm.display()
            ))
        }
    });
    match found {
        Ok(helm) => helm,
        Err(error) => panic!(
            "helm is needed for the chart tests: {error} (it is built once from the Go module \
             proxy and cached; hack/test.sh runs the install)"
        ),
    }
}

/// `helm ARGS...` with its own cache, config and data directories (nothing of the user's).
fn helm<I, S>(args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let home = Path::new(env!("CARGO_TARGET_TMPDIR")).join("helm-home");
    let mut cmd = Command::new(helm_binary());
    cmd.args(args)
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_DATA_HOME", home.join("data"))
        .stdin(Stdio::null());
    cmd
}

fn describe(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs `cmd` (feeding it `input`), returning its output whatever its status.
fn output(mut cmd: Command, input: Option<&str>) -> (String, Output) {
    let what = describe(&cmd);
    let output = match input {
        None => cmd.output().unwrap(),
        Some(input) => {
            let mut child = cmd
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            child
                .stdin
                .take()
                .unwrap()
                .write_all(input.as_bytes())
                .unwrap();
            child.wait_with_output().unwrap()
        }
    };
    (what, output)
}

/// Runs `cmd`, fails the test unless it succeeds, returns its stdout.
fn ok(cmd: Command, input: Option<&str>) -> String {
    let (what, out) = output(cmd, input);
    assert!(
        out.status.success(),
        "{what} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn kubectl(c: &Cluster, args: &[&str]) -> String {
    ok(c.kubectl_command(args), None)
}

fn kubectl_stdin(c: &Cluster, args: &[&str], input: &str) -> String {
    ok(c.kubectl_command(args), Some(input))
}

/// A fresh namespace `PREFIX-PID-N`.
fn namespace(c: &Cluster, prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let name = format!(
        "{prefix}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    kubectl(c, &["create", "namespace", &name]);
    name
}

/// `helm install RELEASE charts/stoker --dry-run=client` in `namespace` with `args`, against
/// the chart tests' API server: what it prints, the notes among it. With `rbac.create=false`:
/// the real install's release owns the cluster-wide ClusterRole `stoker-agent` there, and Helm
/// would refuse to adopt it.
fn install_notes(release: &str, namespace: &str, args: &[&str]) -> String {
    let chart = chart();
    let kubeconfig = cluster()
        .unwrap()
        .kubeconfig_path()
        .to_str()
        .unwrap()
        .to_owned();
    let mut all = vec![
        "install",
        release,
        chart.to_str().unwrap(),
        "--dry-run=client",
        "--kubeconfig",
        &kubeconfig,
        "--namespace",
        namespace,
    ];
    all.extend_from_slice(args);
    all.extend(["--set", "rbac.create=false"]);
    ok(helm(all), None)
}

/// Applies the CRDs of `file` (server-side) and waits until `crds` (`crd/NAME`) are established.
fn establish(c: &Cluster, file: &Path, crds: &[&str]) {
    kubectl(
        c,
        &[
            "apply",
            "--server-side",
            "--field-manager=stoker-chart-test",
            "-f",
            file.to_str().unwrap(),
        ],
    );
    let mut wait = vec!["wait", "--for=condition=Established", "--timeout=60s"];
    wait.extend_from_slice(crds);
    kubectl(c, &wait);
}

/// The test API server with the chart's CRD installed and established.
fn cluster_with_crd() -> &'static Cluster {
    static CRD: OnceLock<()> = OnceLock::new();
    let c = cluster().unwrap();
    CRD.get_or_init(|| {
        let crd = chart().join("crds/gatewaysyncs.stoker.io.yaml");
        establish(c, &crd, &[&format!("crd/{CRD_NAME}")]);
    });
    c
}

/// `helm template RELEASE charts/stoker -n NAMESPACE EXTRA...`.
fn render(release: &str, namespace: &str, extra: &[&str]) -> String {
    let chart = chart();
    let mut args = vec![
        "template",
        release,
        chart.to_str().unwrap(),
        "--namespace",
        namespace,
    ];
    args.extend_from_slice(extra);
    ok(helm(&args), None)
}

/// `helm template stoker charts/stoker EXTRA...`, which must fail; returns what it printed on
/// stderr.
fn template_refused(extra: &[&str]) -> String {
    let chart = chart();
    let mut args = vec!["template", "stoker", chart.to_str().unwrap()];
    args.extend_from_slice(extra);
    let (what, out) = output(helm(&args), None);
    assert!(!out.status.success(), "{what} succeeded");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The (kind, namespace, name) of every object of a `helm template` output (our chart's
/// layout: top-level `kind:`, then `metadata:` with two-space-indented `name:`/`namespace:`).
fn objects(rendered: &str) -> Vec<(String, String, String)> {
    rendered
        .split("\n---")
        .filter_map(|doc| {
            let kind = doc.lines().find_map(|l| l.strip_prefix("kind: "))?;
            let mut in_metadata = false;
            let (mut name, mut namespace) = (String::new(), String::new());
            for line in doc.lines() {
                if line == "metadata:" {
                    in_metadata = true;
                } else if in_metadata && !line.starts_with(' ') {
                    break;
                } else if in_metadata {
                    if let Some(v) = line.strip_prefix("  name: ") {
                        name = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("  namespace: ") {
                        namespace = v.trim().to_owned();
                    }
                }
            }
            Some((kind.trim().to_owned(), namespace, name))
        })
        .collect()
}

fn has_object(
    objects: &[(String, String, String)],
    kind: &str,
    namespace: &str,
    name: &str,
) -> bool {
    objects
        .iter()
        .any(|(k, ns, n)| k == kind && ns == namespace && n == name)
}

/// The document of `rendered` with this kind and name.
fn document<'a>(rendered: &'a str, kind: &str, name: &str) -> &'a str {
    let kind_line = format!("\nkind: {kind}\n");
    let name_line = format!("\n  name: {name}\n");
    rendered
        .split("\n---")
        .find(|doc| doc.contains(&kind_line) && doc.contains(&name_line))
        .unwrap_or_else(|| panic!("no {kind} {name} in:\n{rendered}"))
}

/// Every object of a `helm template` output, parsed.
fn manifests(rendered: &str) -> Vec<Value> {
    rendered
        .split("\n---")
        .map(|doc| serde_yaml::from_str::<Value>(doc).unwrap())
        .filter(|doc| !doc.is_null())
        .collect()
}

/// `text` parsed: the expected shape of a rendered field.
fn yaml(text: &str) -> Value {
    serde_yaml::from_str(text).unwrap()
}

/// The object of this kind and name, if rendered.
fn try_find<'a>(docs: &'a [Value], kind: &str, name: &str) -> Option<&'a Value> {
    docs.iter().find(|doc| {
        doc["kind"].as_str() == Some(kind) && doc["metadata"]["name"].as_str() == Some(name)
    })
}

/// The object of this kind and name.
fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    try_find(docs, kind, name).unwrap_or_else(|| {
        panic!(
            "no {kind} {name} among {:?}",
            docs.iter()
                .map(|d| format!(
                    "{}/{}",
                    d["kind"].as_str().unwrap_or("?"),
                    d["metadata"]["name"].as_str().unwrap_or("?")
                ))
                .collect::<Vec<_>>()
        )
    })
}

/// The kinds of the rendered objects.
fn kinds(docs: &[Value]) -> Vec<&str> {
    docs.iter().filter_map(|d| d["kind"].as_str()).collect()
}

/// True when `key` is a mapping key anywhere in `value`.
fn has_key(value: &Value, key: &str) -> bool {
    match value {
        Value::Mapping(map) => map
            .iter()
            .any(|(k, v)| k.as_str() == Some(key) || has_key(v, key)),
        Value::Sequence(items) => items.iter().any(|v| has_key(v, key)),
        Value::Tagged(tagged) => has_key(&tagged.value, key),
        _ => false,
    }
}

/// The operator container of a rendered Deployment.
fn operator_container(docs: &[Value], deployment: &str) -> Value {
    let containers =
        &find(docs, "Deployment", deployment)["spec"]["template"]["spec"]["containers"];
    containers[0].clone()
}

/// The operator container's arguments.
fn operator_args(docs: &[Value], deployment: &str) -> Vec<String> {
    operator_container(docs, deployment)["args"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_owned())
        .collect()
}

/// The arguments of the admission server and the injector (`--webhook-*` but the receiver's,
/// `--agent-*`, `--*-webhook-configuration`).
fn admission_args(args: &[String]) -> Vec<&str> {
    args.iter()
        .map(String::as_str)
        .filter(|a| {
            (a.starts_with("--webhook-") && !a.starts_with("--webhook-receiver-"))
                || a.starts_with("--agent-")
                || a.contains("-webhook-configuration=")
        })
        .collect()
}

/// The webhook receiver's arguments (`--webhook-receiver-*`).
fn receiver_args(args: &[String]) -> Vec<&str> {
    args.iter()
        .map(String::as_str)
        .filter(|a| a.starts_with("--webhook-receiver-"))
        .collect()
}

/// The operator container's environment variable `name`.
fn env_var(container: &Value, name: &str) -> Option<Value> {
    container["env"]
        .as_sequence()?
        .iter()
        .find(|e| e["name"].as_str() == Some(name))
        .cloned()
}

#[test]
fn helm_lint_passes_with_the_defaults_and_with_stoker_operator_v0_5_values() {
    let chart = chart();
    let chart = chart.to_str().unwrap();
    let out = ok(helm(["lint", "--strict", chart]), None);
    assert!(out.contains("0 chart(s) failed"), "{out}");
    let v05 = fixture("stoker-operator-v0.5-values.yaml");
    let out = ok(
        helm(["lint", "--strict", chart, "-f", v05.to_str().unwrap()]),
        None,
    );
    assert!(out.contains("0 chart(s) failed"), "{out}");
}

#[test]
fn helm_template_renders_the_operator_its_rbac_and_the_agent_role() {
    let rendered = render("stoker", "stoker-system", &[]);
    let objects = objects(&rendered);
    let ns = "stoker-system";
    for (kind, namespace, name) in [
        ("ServiceAccount", ns, "stoker-controller-manager"),
        ("ClusterRole", "", "stoker-operator"),
        ("ClusterRoleBinding", "", "stoker-operator"),
        ("Role", ns, "stoker-leader-election"),
        ("RoleBinding", ns, "stoker-leader-election"),
        ("ClusterRole", "", "stoker-agent"),
        ("ClusterRole", "", "stoker-gatewaysync-view"),
        ("ClusterRole", "", "stoker-gatewaysync-edit"),
        ("Service", ns, "stoker-metrics-service"),
        ("Deployment", ns, "stoker-controller-manager"),
        // Admission (webhook.enabled, on by default), with the operator's own TLS.
        ("Service", ns, "stoker-webhook-service"),
        ("MutatingWebhookConfiguration", "", "stoker-pod-injection"),
        (
            "ValidatingWebhookConfiguration",
            "",
            "stoker-gatewaysync-validation",
        ),
        ("ClusterRole", "", "stoker-operator-webhooks"),
        ("ClusterRoleBinding", "", "stoker-operator-webhooks"),
        ("Role", ns, "stoker-webhook-tls"),
        ("RoleBinding", ns, "stoker-webhook-tls"),
    ] {
        assert!(
            has_object(&objects, kind, namespace, name),
            "no {kind} {namespace}/{name} in {objects:?}"
        );
    }
    // No PodDisruptionBudget with one replica, no NetworkPolicy unless asked for.
    assert_eq!(objects.len(), 17, "{objects:?}");

    let deployment = document(&rendered, "Deployment", "stoker-controller-manager");
    for expected in [
        "image: \"stoker-operator:0.1.0\"",
        "- --leader-elect=true",
        "- --leader-election-namespace=stoker-system",
        "- --leader-election-id=stoker-operator",
        "- --probe-address=0.0.0.0:8081",
        "- --state-dir=/var/lib/stoker-operator",
        "- --log-format=json",
        "- \"--log-level=info\"",
        "- --auto-bind-agent=true",
        "path: /healthz",
        "path: /readyz",
        "runAsNonRoot: true",
        "readOnlyRootFilesystem: true",
        "allowPrivilegeEscalation: false",
        "mountPath: /var/lib/stoker-operator",
        "emptyDir: {}",
        "serviceAccountName: stoker-controller-manager",
        "terminationGracePeriodSeconds: 30",
    ] {
        assert!(
            deployment.contains(expected),
            "{expected:?} missing:\n{deployment}"
        );
    }
    assert!(!deployment.contains("--namespaces"), "{deployment}");

    // The operator's permissions are the ones its controller uses. Secrets: read, and the
    // GitHub App token Secrets written (server-side apply) and deleted.
    let role = document(&rendered, "ClusterRole", "stoker-operator");
    assert!(
        role.contains(
            "resources: [\"secrets\"]\n    verbs: [\"get\", \"list\", \"watch\", \"create\", \"patch\", \"delete\"]"
        ),
        "{role}"
    );
    assert!(role.contains("gatewaysyncs/status"), "{role}");
    assert!(role.contains("gatewaysyncs/finalizers"), "{role}");
    assert!(role.contains("\"deletecollection\""), "{role}");
    // rbac.autoBindAgent (on by default): RoleBindings, and `bind` on the agent's role only.
    assert!(role.contains("resources: [\"rolebindings\"]"), "{role}");
    assert!(
        role.contains(
            "resources: [\"clusterroles\"]\n    verbs: [\"bind\"]\n    resourceNames: [\"stoker-agent\"]"
        ),
        "{role}"
    );
    let agent = document(&rendered, "ClusterRole", "stoker-agent");
    assert!(
        !agent.contains("\"secrets\""),
        "the agent reads no Secret: {agent}"
    );
    assert!(
        agent.contains("configmaps") && agent.contains("pods"),
        "{agent}"
    );
}

#[test]
#[allow(clippy::too_many_lines)] // the rendered objects checked one by one
fn helm_template_scopes_the_operator_to_watch_namespaces() {
    let rendered = render(
        "gateways",
        "ops",
        &[
            "--set",
            "watchNamespaces={plant-a,plant-b}",
            "--set",
            "leaderElection.enabled=false",
            "--set",
            "logFormat=text",
            "--set",
            "metrics.enabled=false",
            "--set",
            "labelSelector=team in (a\\,b)",
        ],
    );
    let objects = objects(&rendered);
    // Release "gateways": names are RELEASE-CHART.
    assert!(
        has_object(
            &objects,
            "RoleBinding",
            "plant-a",
            "gateways-stoker-operator"
        ),
        "{objects:?}"
    );
    assert!(
        has_object(
            &objects,
            "RoleBinding",
            "plant-b",
            "gateways-stoker-operator"
        ),
        "{objects:?}"
    );
    // No cluster-wide binding of the operator's ClusterRole, no leader election, no metrics
    // Service. (The webhook configurations' ClusterRoleBinding stays: they are cluster-scoped.)
    for (kind, namespace, name) in [
        ("ClusterRoleBinding", "", "gateways-stoker-operator"),
        ("Role", "ops", "gateways-stoker-leader-election"),
        ("Service", "ops", "gateways-stoker-metrics-service"),
    ] {
        assert!(!has_object(&objects, kind, namespace, name), "{objects:?}");
    }
    assert_eq!(
        objects
            .iter()
            .filter(|(k, _, _)| k == "ClusterRoleBinding" || k == "Role" || k == "Service")
            .map(|(_, _, n)| n.as_str())
            .collect::<Vec<_>>(),
        [
            "gateways-stoker-operator-webhooks",
            "gateways-stoker-webhook-tls",
            "gateways-stoker-webhook-service"
        ],
        "{objects:?}"
    );
    // The agent's ClusterRole has its fixed name whatever the release, plus the name earlier
    // versions gave it (RELEASE-CHART-agent), with the same rules, for existing RoleBindings.
    assert!(
        has_object(&objects, "ClusterRole", "", "stoker-agent"),
        "{objects:?}"
    );
    assert!(
        has_object(&objects, "ClusterRole", "", "gateways-stoker-agent"),
        "{objects:?}"
    );
    let rules = |name: &str| {
        let document = document(&rendered, "ClusterRole", name);
        document[document.find("rules:").unwrap()..].to_owned()
    };
    assert_eq!(rules("stoker-agent"), rules("gateways-stoker-agent"));
    // Without automatic bindings the operator gets no RBAC permission.
    let manual = render(
        "gateways",
        "ops",
        &["--set", "rbac.autoBindAgent.enabled=false"],
    );
    let role = document(&manual, "ClusterRole", "gateways-stoker-operator");
    assert!(
        document(&manual, "Deployment", "gateways-stoker-controller-manager")
            .contains("- --auto-bind-agent=false")
    );
    assert!(
        !role.contains("rolebindings") && !role.contains("\"bind\""),
        "{role}"
    );
    let deployment = document(
        &rendered,
        "Deployment",
        "gateways-stoker-controller-manager",
    );
    for expected in [
        "- \"--namespaces=plant-a,plant-b\"",
        "- \"--label-selector=team in (a,b)\"",
        "- --leader-elect=false",
        "- --log-format=text",
    ] {
        assert!(
            deployment.contains(expected),
            "{expected:?} missing:\n{deployment}"
        );
    }
    assert!(
        !deployment.contains("--leader-election-namespace"),
        "{deployment}"
    );
}

/// The pod webhook as `helm template stoker -n stoker-system` renders it by default.
const DEFAULT_POD_WEBHOOK: &str = r#"
name: pod-inject.stoker.io
admissionReviewVersions: [v1]
sideEffects: None
failurePolicy: Ignore
timeoutSeconds: 10
matchPolicy: Equivalent
reinvocationPolicy: IfNeeded
clientConfig:
  service:
    name: stoker-webhook-service
    namespace: stoker-system
    path: /mutate-v1-pod
    port: 443
rules:
  - apiGroups: [""]
    apiVersions: [v1]
    operations: [CREATE]
    resources: [pods]
    scope: Namespaced
namespaceSelector:
  matchExpressions:
    - key: kubernetes.io/metadata.name
      operator: NotIn
      values: [kube-system, kube-node-lease, stoker-system]
"#;

/// The GatewaySync webhook as rendered by default.
const DEFAULT_GATEWAYSYNC_WEBHOOK: &str = r#"
name: gatewaysync-validate.stoker.io
admissionReviewVersions: [v1]
sideEffects: None
failurePolicy: Ignore
timeoutSeconds: 10
matchPolicy: Equivalent
clientConfig:
  service:
    name: stoker-webhook-service
    namespace: stoker-system
    path: /validate-gatewaysync
    port: 443
rules:
  - apiGroups: [stoker.io]
    apiVersions: [v1alpha1]
    operations: [CREATE, UPDATE]
    resources: [gatewaysyncs]
    scope: Namespaced
namespaceSelector:
  matchExpressions:
    - key: kubernetes.io/metadata.name
      operator: NotIn
      values: [kube-system, kube-node-lease]
"#;

/// The single webhook of a rendered webhook configuration.
fn only_webhook<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    let webhooks = find(docs, kind, name)["webhooks"].as_sequence().unwrap();
    assert_eq!(webhooks.len(), 1, "{webhooks:?}");
    &webhooks[0]
}

#[test]
#[allow(clippy::too_many_lines)] // both configurations checked field by field
fn helm_template_renders_both_admission_webhooks_with_exactly_their_fields() {
    let docs = manifests(&render("stoker", "stoker-system", &[]));
    let pod = only_webhook(
        &docs,
        "MutatingWebhookConfiguration",
        "stoker-pod-injection",
    );
    assert_eq!(*pod, yaml(DEFAULT_POD_WEBHOOK));
    let validation = only_webhook(
        &docs,
        "ValidatingWebhookConfiguration",
        "stoker-gatewaysync-validation",
    );
    assert_eq!(*validation, yaml(DEFAULT_GATEWAYSYNC_WEBHOOK));
    // No caBundle at all (the operator writes it; Helm's three-way merge then keeps it), and
    // no cert-manager annotation without cert-manager.
    assert!(!docs.iter().any(|doc| has_key(doc, "caBundle")));
    for (kind, name) in [
        ("MutatingWebhookConfiguration", "stoker-pod-injection"),
        (
            "ValidatingWebhookConfiguration",
            "stoker-gatewaysync-validation",
        ),
    ] {
        let metadata = &find(&docs, kind, name)["metadata"];
        assert!(metadata["annotations"].is_null(), "{metadata:?}");
        assert!(metadata["namespace"].is_null(), "{metadata:?}");
    }

    // The Service they call reaches every operator pod's `webhook` port.
    let service = find(&docs, "Service", "stoker-webhook-service");
    assert_eq!(
        service["spec"]["ports"],
        yaml("[{name: webhook, port: 443, targetPort: webhook, protocol: TCP}]")
    );
    let deployment = find(&docs, "Deployment", "stoker-controller-manager");
    assert_eq!(
        service["spec"]["selector"],
        deployment["spec"]["selector"]["matchLabels"]
    );
    let container = operator_container(&docs, "stoker-controller-manager");
    assert!(
        container["ports"]
            .as_sequence()
            .unwrap()
            .contains(&yaml("{name: webhook, containerPort: 9443, protocol: TCP}")),
        "{:?}",
        container["ports"]
    );
    // The operator is told the names the chart gave the objects, and the agent's image.
    let args = operator_args(&docs, "stoker-controller-manager");
    assert_eq!(
        admission_args(&args),
        [
            "--webhook-port=9443",
            "--webhook-service=stoker-webhook-service",
            "--webhook-secret=stoker-webhook-tls",
            "--mutating-webhook-configuration=stoker-pod-injection",
            "--validating-webhook-configuration=stoker-gatewaysync-validation",
            "--agent-image=stoker-agent:0.1.0",
            "--agent-image-pull-policy=IfNotPresent",
        ]
    );

    // Its permissions for its own TLS: the two configurations' caBundle, by name, and one
    // Secret of its namespace.
    assert_eq!(
        find(&docs, "ClusterRole", "stoker-operator-webhooks")["rules"],
        yaml(
            r#"
- apiGroups: [admissionregistration.k8s.io]
  resources: [mutatingwebhookconfigurations]
  verbs: [get, patch, update]
  resourceNames: [stoker-pod-injection]
- apiGroups: [admissionregistration.k8s.io]
  resources: [validatingwebhookconfigurations]
  verbs: [get, patch, update]
  resourceNames: [stoker-gatewaysync-validation]
"#
        )
    );
    let role = find(&docs, "Role", "stoker-webhook-tls");
    assert_eq!(role["metadata"]["namespace"], yaml("stoker-system"));
    assert_eq!(
        role["rules"],
        yaml(
            r#"
- apiGroups: [""]
  resources: [secrets]
  verbs: [create]
- apiGroups: [""]
  resources: [secrets]
  verbs: [get, update]
  resourceNames: [stoker-webhook-tls]
"#
        )
    );
    let subjects =
        yaml("[{kind: ServiceAccount, name: stoker-controller-manager, namespace: stoker-system}]");
    for (kind, name, role_kind) in [
        (
            "ClusterRoleBinding",
            "stoker-operator-webhooks",
            "ClusterRole",
        ),
        ("RoleBinding", "stoker-webhook-tls", "Role"),
    ] {
        let binding = find(&docs, kind, name);
        assert_eq!(binding["subjects"], subjects);
        assert_eq!(binding["roleRef"]["kind"], yaml(role_kind));
        assert_eq!(binding["roleRef"]["name"], yaml(name));
    }
    // The operator's ClusterRole writes Secrets only as far as the GitHub App token Secrets
    // need (create, patch, delete); never update, which only the webhook TLS Role grants.
    let operator = find(&docs, "ClusterRole", "stoker-operator");
    assert!(
        operator["rules"].as_sequence().unwrap().contains(&yaml(
            r#"{apiGroups: [""], resources: [secrets], verbs: [get, list, watch, create, patch, delete]}"#
        )),
        "{operator:?}"
    );
}

#[test]
#[allow(clippy::too_many_lines)] // one case per value, field by field
fn helm_template_webhook_selectors_and_policies_follow_the_values() {
    // requireLabel: only labelled namespaces; watchNamespaces: only those; an object selector;
    // failure policies and timeout.
    let docs = manifests(&render(
        "gateways",
        "ops",
        &[
            "--set",
            "webhook.namespaceSelector.requireLabel=true",
            "--set",
            "watchNamespaces={plant-a,plant-b}",
            "--set",
            "webhook.objectSelector.matchLabels.app\\.kubernetes\\.io/name=ignition",
            "--set",
            "webhook.failurePolicy=Fail",
            "--set",
            "webhook.validating.failurePolicy=Fail",
            "--set",
            "webhook.timeoutSeconds=5",
        ],
    ));
    let pod = only_webhook(
        &docs,
        "MutatingWebhookConfiguration",
        "gateways-stoker-pod-injection",
    );
    assert_eq!(
        pod["namespaceSelector"],
        yaml(
            r#"
matchExpressions:
  - {key: kubernetes.io/metadata.name, operator: NotIn, values: [kube-system, kube-node-lease, ops]}
  - {key: kubernetes.io/metadata.name, operator: In, values: [plant-a, plant-b]}
matchLabels:
  stoker.io/injection: enabled
"#
        )
    );
    assert_eq!(
        pod["objectSelector"],
        yaml("matchLabels: {app.kubernetes.io/name: ignition}")
    );
    assert_eq!(pod["failurePolicy"], yaml("Fail"));
    assert_eq!(pod["timeoutSeconds"], yaml("5"));
    assert_eq!(
        pod["clientConfig"]["service"],
        yaml(
            "{name: gateways-stoker-webhook-service, namespace: ops, path: /mutate-v1-pod, port: 443}"
        )
    );
    let validation = only_webhook(
        &docs,
        "ValidatingWebhookConfiguration",
        "gateways-stoker-gatewaysync-validation",
    );
    // The injection label is about pods; GatewaySyncs are validated wherever they are watched.
    assert_eq!(
        validation["namespaceSelector"],
        yaml(
            r#"
matchExpressions:
  - {key: kubernetes.io/metadata.name, operator: NotIn, values: [kube-system, kube-node-lease]}
  - {key: kubernetes.io/metadata.name, operator: In, values: [plant-a, plant-b]}
"#
        )
    );
    assert!(validation["objectSelector"].is_null());
    assert_eq!(validation["failurePolicy"], yaml("Fail"));
    assert_eq!(validation["timeoutSeconds"], yaml("5"));
    // The webhook RBAC is cluster-wide (the configurations are cluster-scoped) even with
    // watchNamespaces, and the TLS Secret's Role is in the release's namespace.
    find(
        &docs,
        "ClusterRoleBinding",
        "gateways-stoker-operator-webhooks",
    );
    assert_eq!(
        find(&docs, "Role", "gateways-stoker-webhook-tls")["metadata"]["namespace"],
        yaml("ops")
    );

    // Validation off: only the pod webhook, whose caBundle alone the operator keeps (an empty
    // name: none) and may write; an agent cache limit reaches the injector.
    let docs = manifests(&render(
        "stoker",
        "stoker-system",
        &[
            "--set",
            "webhook.validating.enabled=false",
            "--set",
            "agentCache.sizeLimit=2Gi",
            "--set",
            "agentImage.tag=0.2.0",
            "--set",
            "agentImage.pullPolicy=Always",
        ],
    ));
    assert!(!kinds(&docs).contains(&"ValidatingWebhookConfiguration"));
    find(
        &docs,
        "MutatingWebhookConfiguration",
        "stoker-pod-injection",
    );
    let args = operator_args(&docs, "stoker-controller-manager");
    let args = admission_args(&args);
    for expected in [
        "--mutating-webhook-configuration=stoker-pod-injection",
        "--validating-webhook-configuration=",
        "--agent-image=stoker-agent:0.2.0",
        "--agent-image-pull-policy=Always",
        "--agent-cache-size-limit=2Gi",
    ] {
        assert!(args.contains(&expected), "{expected} missing: {args:?}");
    }
    assert_eq!(
        find(&docs, "ClusterRole", "stoker-operator-webhooks")["rules"],
        yaml(
            "[{apiGroups: [admissionregistration.k8s.io], resources: [mutatingwebhookconfigurations], \
             verbs: [get, patch, update], resourceNames: [stoker-pod-injection]}]"
        )
    );

    // A misspelt failure policy is refused rather than sent to the API server (by the values
    // schema, before the template's own check).
    let stderr = template_refused(&["--set", "webhook.failurePolicy=fail"]);
    assert!(
        stderr.contains("at '/webhook/failurePolicy': value must be one of 'Ignore', 'Fail'"),
        "{stderr}"
    );
}

#[test]
fn helm_template_with_cert_manager_renders_its_certificate_and_mounts_it() {
    let docs = manifests(&render(
        "stoker",
        "stoker-system",
        &["--set", "certManager.enabled=true"],
    ));
    let issuer = find(&docs, "Issuer", "stoker-selfsigned-issuer");
    assert_eq!(issuer["apiVersion"], yaml("cert-manager.io/v1"));
    assert_eq!(issuer["metadata"]["namespace"], yaml("stoker-system"));
    assert_eq!(issuer["spec"], yaml("selfSigned: {}"));
    let certificate = find(&docs, "Certificate", "stoker-webhook-cert");
    assert_eq!(certificate["apiVersion"], yaml("cert-manager.io/v1"));
    assert_eq!(certificate["metadata"]["namespace"], yaml("stoker-system"));
    assert_eq!(
        certificate["spec"],
        yaml(
            r#"
secretName: stoker-webhook-cert
dnsNames:
  - stoker-webhook-service
  - stoker-webhook-service.stoker-system
  - stoker-webhook-service.stoker-system.svc
  - stoker-webhook-service.stoker-system.svc.cluster.local
issuerRef: {name: stoker-selfsigned-issuer, kind: Issuer, group: cert-manager.io}
"#
        )
    );
    // cert-manager's CA injector fills the caBundles; the chart renders none.
    for (kind, name, webhook) in [
        (
            "MutatingWebhookConfiguration",
            "stoker-pod-injection",
            DEFAULT_POD_WEBHOOK,
        ),
        (
            "ValidatingWebhookConfiguration",
            "stoker-gatewaysync-validation",
            DEFAULT_GATEWAYSYNC_WEBHOOK,
        ),
    ] {
        assert_eq!(
            find(&docs, kind, name)["metadata"]["annotations"],
            yaml("cert-manager.io/inject-ca-from: stoker-system/stoker-webhook-cert")
        );
        assert_eq!(*only_webhook(&docs, kind, name), yaml(webhook));
    }
    assert!(!docs.iter().any(|doc| has_key(doc, "caBundle")));
    // The operator reads the certificate from the mounted Secret (the whole directory: the
    // kubelet updates it on renewal) and keeps no TLS Secret of its own, so it gets no
    // permission for one, nor for the caBundles.
    let args = operator_args(&docs, "stoker-controller-manager");
    let admission = admission_args(&args);
    assert!(
        admission.contains(&"--webhook-cert-dir=/etc/stoker/webhook-tls"),
        "{admission:?}"
    );
    assert_eq!(
        admission,
        [
            "--webhook-port=9443",
            "--webhook-cert-dir=/etc/stoker/webhook-tls",
            "--agent-image=stoker-agent:0.1.0",
            "--agent-image-pull-policy=IfNotPresent",
        ]
    );
    let container = operator_container(&docs, "stoker-controller-manager");
    assert!(
        container["volumeMounts"]
            .as_sequence()
            .unwrap()
            .contains(&yaml(
                "{name: webhook-tls, mountPath: /etc/stoker/webhook-tls, readOnly: true}"
            )),
        "{:?}",
        container["volumeMounts"]
    );
    let volumes = &find(&docs, "Deployment", "stoker-controller-manager")["spec"]["template"]["spec"]
        ["volumes"];
    assert!(
        volumes.as_sequence().unwrap().contains(&yaml(
            "{name: webhook-tls, secret: {secretName: stoker-webhook-cert}}"
        )),
        "{volumes:?}"
    );
    assert!(try_find(&docs, "ClusterRole", "stoker-operator-webhooks").is_none());
    assert!(try_find(&docs, "Role", "stoker-webhook-tls").is_none());

    // An existing issuer instead of the self-signed one.
    let docs = manifests(&render(
        "stoker",
        "stoker-system",
        &[
            "--set",
            "certManager.enabled=true",
            "--set",
            "certManager.issuerRef.name=plant-ca",
            "--set",
            "certManager.issuerRef.kind=ClusterIssuer",
        ],
    ));
    assert!(!kinds(&docs).contains(&"Issuer"));
    assert_eq!(
        find(&docs, "Certificate", "stoker-webhook-cert")["spec"]["issuerRef"],
        yaml("{name: plant-ca, kind: ClusterIssuer, group: cert-manager.io}")
    );
}

#[test]
fn helm_template_without_the_webhook_renders_no_admission_object() {
    let docs = manifests(&render(
        "stoker",
        "stoker-system",
        &[
            "--set",
            "webhook.enabled=false",
            // cert-manager has nothing to issue without the webhook.
            "--set",
            "certManager.enabled=true",
            "--set",
            "networkPolicy.enabled=true",
        ],
    ));
    let kinds = kinds(&docs);
    for absent in [
        "MutatingWebhookConfiguration",
        "ValidatingWebhookConfiguration",
        "Certificate",
        "Issuer",
    ] {
        assert!(!kinds.contains(&absent), "{absent} rendered: {kinds:?}");
    }
    assert!(try_find(&docs, "Service", "stoker-webhook-service").is_none());
    assert!(try_find(&docs, "ClusterRole", "stoker-operator-webhooks").is_none());
    assert!(try_find(&docs, "Role", "stoker-webhook-tls").is_none());
    let args = operator_args(&docs, "stoker-controller-manager");
    assert_eq!(admission_args(&args), ["--webhook-port=0"]);
    let container = operator_container(&docs, "stoker-controller-manager");
    assert_eq!(
        container["ports"],
        yaml("[{name: probe, containerPort: 8081, protocol: TCP}]")
    );
    assert!(
        container["volumeMounts"]
            .as_sequence()
            .unwrap()
            .iter()
            .all(|m| m["name"] != yaml("webhook-tls"))
    );
    // The NetworkPolicy then opens the probe port only.
    let policy = find(&docs, "NetworkPolicy", "stoker-operator");
    assert_eq!(policy["spec"]["ingress"].as_sequence().unwrap().len(), 1);
}

#[test]
fn helm_template_renders_the_disruption_budget_and_network_policy_when_they_apply() {
    let pdb = |extra: &[&str]| {
        let docs = manifests(&render("stoker", "stoker-system", extra));
        try_find(&docs, "PodDisruptionBudget", "stoker-operator").cloned()
    };
    // One replica: a budget of one would block every node drain.
    assert!(pdb(&[]).is_none());
    let budget = pdb(&["--set", "replicaCount=2"]).unwrap();
    assert_eq!(budget["apiVersion"], yaml("policy/v1"));
    assert_eq!(budget["metadata"]["namespace"], yaml("stoker-system"));
    assert_eq!(
        budget["spec"],
        yaml(
            r#"
minAvailable: 1
selector:
  matchLabels:
    app.kubernetes.io/name: stoker-operator
    app.kubernetes.io/instance: stoker
    app.kubernetes.io/component: operator
    control-plane: controller-manager
"#
        )
    );
    assert!(
        pdb(&[
            "--set",
            "replicaCount=2",
            "--set",
            "podDisruptionBudget.enabled=false"
        ])
        .is_none()
    );

    let docs = manifests(&render("stoker", "stoker-system", &[]));
    assert!(!kinds(&docs).contains(&"NetworkPolicy"));
    let docs = manifests(&render(
        "stoker",
        "stoker-system",
        &["--set", "networkPolicy.enabled=true"],
    ));
    let policy = find(&docs, "NetworkPolicy", "stoker-operator");
    assert_eq!(policy["metadata"]["namespace"], yaml("stoker-system"));
    assert_eq!(
        policy["spec"],
        yaml(
            r#"
podSelector:
  matchLabels:
    app.kubernetes.io/name: stoker-operator
    app.kubernetes.io/instance: stoker
    app.kubernetes.io/component: operator
    control-plane: controller-manager
policyTypes: [Ingress, Egress]
ingress:
  # The admission server, from anywhere (the API server's address is not knowable).
  - ports: [{port: 9443, protocol: TCP}]
  # Metrics and probes, from the monitoring namespaces.
  - from: [{namespaceSelector: {matchLabels: {metrics: enabled}}}]
    ports: [{port: 8081, protocol: TCP}]
egress:
  - {}
"#
        )
    );
    let docs = manifests(&render(
        "stoker",
        "stoker-system",
        &[
            "--set",
            "networkPolicy.enabled=true",
            "--set",
            "networkPolicy.metricsNamespaceSelector.matchLabels.team=monitoring",
            "--set",
            "networkPolicy.metricsNamespaceSelector.matchLabels.metrics=null",
        ],
    ));
    assert_eq!(
        find(&docs, "NetworkPolicy", "stoker-operator")["spec"]["ingress"][1]["from"],
        yaml("[{namespaceSelector: {matchLabels: {team: monitoring}}}]")
    );
}

#[test]
#[allow(clippy::too_many_lines)] // a values file's every key checked against what it renders
fn helm_template_accepts_stoker_operator_v0_5_values_and_renders_optional_objects() {
    let v05 = fixture("stoker-operator-v0.5-values.yaml");
    let rendered = render("stoker", "stoker-system", &["-f", v05.to_str().unwrap()]);
    let deployment = document(&rendered, "Deployment", "stoker-controller-manager");
    assert!(deployment.contains("replicas: 2"), "{deployment}");
    assert!(
        deployment.contains("image: \"registry.example.invalid/ot/stoker-operator:0.5.3\""),
        "{deployment}"
    );
    assert!(deployment.contains("- name: regcred"), "{deployment}");
    assert!(
        deployment.contains("kubernetes.io/os: linux"),
        "{deployment}"
    );
    // Its webhook and cert-manager values now mean what they meant for v0.5: the pod
    // webhook only in labelled namespaces, its certificate from cert-manager.
    let docs = manifests(&rendered);
    let pod = only_webhook(
        &docs,
        "MutatingWebhookConfiguration",
        "stoker-pod-injection",
    );
    assert_eq!(
        pod["namespaceSelector"]["matchLabels"],
        yaml("stoker.io/injection: enabled")
    );
    find(
        &docs,
        "ValidatingWebhookConfiguration",
        "stoker-gatewaysync-validation",
    );
    find(&docs, "Certificate", "stoker-webhook-cert");
    find(&docs, "Issuer", "stoker-selfsigned-issuer");
    assert!(!docs.iter().any(|doc| has_key(doc, "caBundle")));
    let args = operator_args(&docs, "stoker-controller-manager");
    let admission = admission_args(&args);
    for expected in [
        "--webhook-port=9443",
        "--webhook-cert-dir=/etc/stoker/webhook-tls",
        "--agent-image=registry.example.invalid/ot/stoker-agent:0.5.3",
    ] {
        assert!(
            admission.contains(&expected),
            "{expected} missing: {admission:?}"
        );
    }
    // replicaCount 2: a disruption budget; networkPolicy.enabled false: no policy.
    find(&docs, "PodDisruptionBudget", "stoker-operator");
    assert!(!kinds(&docs).contains(&"NetworkPolicy"));
    // webhookReceiver.enabled with the HMAC key from a Secret: the receiver runs, reads it.
    assert!(
        args.iter().any(|a| a == "--webhook-receiver-port=9444"),
        "{args:?}"
    );
    let container = operator_container(&docs, "stoker-controller-manager");
    assert_eq!(
        env_var(&container, "WEBHOOK_HMAC_SECRET").unwrap()["valueFrom"],
        yaml("secretKeyRef: {name: stoker-webhook-hmac, key: webhook-secret}")
    );
    find(&docs, "Service", "stoker-webhook-receiver");
    let service = document(&rendered, "Service", "stoker-metrics-service");
    assert!(service.contains("port: 8443"), "{service}");

    let monitored = render(
        "stoker",
        "monitoring",
        &["--set", "serviceMonitor.enabled=true"],
    );
    assert!(has_object(
        &objects(&monitored),
        "ServiceMonitor",
        "monitoring",
        "stoker-metrics-monitor"
    ));
    let stderr = template_refused(&[
        "--set",
        "serviceMonitor.enabled=true",
        "--set",
        "metrics.enabled=false",
    ]);
    assert!(
        stderr.contains("serviceMonitor.enabled needs metrics.enabled"),
        "{stderr}"
    );

    // The install notes say where the webhook receiver is, and how pods get the agent.
    let notes = install_notes("stoker", "stoker-system", &["-f", v05.to_str().unwrap()]);
    for expected in [
        "Webhook receiver (every replica, plain HTTP): Service stoker-webhook-receiver, port 9444.",
        "RoleBinding\n     stoker-agent-<cr>, rbac.autoBindAgent.enabled): nothing to do",
        "from the webhook\n     stoker-pod-injection",
        "kubectl label namespace NAMESPACE stoker.io/injection=enabled",
        "Agent image: registry.example.invalid/ot/stoker-agent:0.5.3",
        "cert-manager's Certificate stoker-webhook-cert",
        "failurePolicy Ignore: a pod created while no operator answers starts without the agent",
    ] {
        assert!(
            notes.contains(expected),
            "{expected:?} missing from the notes:\n{notes}"
        );
    }
    for unexpected in [
        "rbac.autoBindAgent.enabled:",
        "webhook.enabled:",
        "certManager.enabled:",
        "networkPolicy.enabled:",
    ] {
        assert!(!notes.contains(unexpected), "{unexpected:?} in:\n{notes}");
    }
    // Without automatic bindings, the notes give the kubectl line, with the fixed role name.
    let notes = install_notes(
        "gateways",
        "stoker-system",
        &["--set", "rbac.autoBindAgent.enabled=false"],
    );
    assert!(notes.contains("--clusterrole=stoker-agent "), "{notes}");
    // Without the webhook, the notes send the user to the manual sidecar, and say nothing of
    // the webhook's TLS.
    let notes = install_notes(
        "gateways",
        "stoker-system",
        &["--set", "webhook.enabled=false"],
    );
    assert!(
        notes.contains("nothing injects the agent")
            && notes.contains("examples/kubernetes/gateway-statefulset.yaml"),
        "{notes}"
    );
    assert!(!notes.contains("Webhook TLS"), "{notes}");
    assert!(!notes.contains("NOTE:"), "{notes}");
}

/// The test API server with stand-ins for cert-manager's Certificate and Issuer CRDs
/// (tests/fixtures/cert-manager-crds.yaml), so that the chart's cert-manager objects can be
/// dry-run.
fn cluster_with_cert_manager_crds() -> &'static Cluster {
    static CRDS: OnceLock<()> = OnceLock::new();
    let c = cluster().unwrap();
    CRDS.get_or_init(|| {
        let crds = fixture("cert-manager-crds.yaml");
        establish(
            c,
            &crds,
            &[
                "crd/certificates.cert-manager.io",
                "crd/issuers.cert-manager.io",
            ],
        );
    });
    c
}

/// `kubectl apply --dry-run=server` of `manifests`, retried when an object kubectl found
/// missing was created before its dry-run create: the real install test, running at the same
/// time, creates the cluster-wide ClusterRole `stoker-agent` that every rendering contains.
fn dry_run(c: &Cluster, manifests: &str) -> String {
    let mut attempts = 0;
    loop {
        let (what, out) = output(
            c.kubectl_command(["apply", "--dry-run=server", "-f", "-"]),
            Some(manifests),
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        if out.status.success() {
            return String::from_utf8_lossy(&out.stdout).into_owned();
        }
        attempts += 1;
        assert!(
            attempts < 3 && stderr.contains("(AlreadyExists)"),
            "{what} failed ({}):\nstdout:\n{}\nstderr:\n{stderr}",
            out.status,
            String::from_utf8_lossy(&out.stdout)
        );
    }
}

#[test]
#[allow(clippy::too_many_lines)] // every rendering of the chart dry-run in turn
fn everything_the_chart_renders_passes_a_server_side_dry_run() {
    let c = cluster_with_cert_manager_crds();
    let ns = namespace(c, "chart-dry");
    let other = namespace(c, "chart-dry-watched");
    let v05 = fixture("stoker-operator-v0.5-values.yaml");
    let watch = format!("watchNamespaces={{{ns},{other}}}");
    let webhooks = [
        "mutatingwebhookconfiguration.admissionregistration.k8s.io/stoker-dry-pod-injection",
        "validatingwebhookconfiguration.admissionregistration.k8s.io/stoker-dry-gatewaysync-validation",
        "service/stoker-dry-webhook-service",
    ];
    let cert_manager = [
        "certificate.cert-manager.io/stoker-dry-webhook-cert",
        "issuer.cert-manager.io/stoker-dry-selfsigned-issuer",
    ];
    // (values, objects that must be in the dry run, objects that must not)
    let cases: [(Vec<&str>, Vec<&str>, Vec<&str>); 5] = [
        (vec![], webhooks.to_vec(), cert_manager.to_vec()),
        (
            vec![
                "--set",
                watch.as_str(),
                "--set",
                "leaderElection.enabled=false",
                "--set",
                "webhook.namespaceSelector.requireLabel=true",
            ],
            webhooks.to_vec(),
            vec![],
        ),
        // cert-manager (against the stand-in CRDs), the disruption budget.
        (
            vec!["-f", v05.to_str().unwrap()],
            [
                &webhooks[..],
                &cert_manager[..],
                &["poddisruptionbudget.policy/stoker-dry-operator"],
            ]
            .concat(),
            vec![],
        ),
        // Every other option at once.
        (
            vec![
                "--set",
                "networkPolicy.enabled=true",
                "--set",
                "replicaCount=3",
                "--set",
                "webhook.failurePolicy=Fail",
                "--set",
                "webhook.validating.failurePolicy=Fail",
                "--set",
                "webhook.timeoutSeconds=30",
                "--set",
                "webhook.objectSelector.matchExpressions[0].key=app.kubernetes.io/name",
                "--set",
                "webhook.objectSelector.matchExpressions[0].operator=Exists",
                "--set",
                "agentCache.sizeLimit=2Gi",
                "--set",
                "certManager.enabled=true",
                "--set",
                "certManager.issuerRef.name=plant-ca",
                "--set",
                "certManager.issuerRef.kind=ClusterIssuer",
            ],
            [
                &webhooks[..],
                &[
                    "networkpolicy.networking.k8s.io/stoker-dry-operator",
                    "poddisruptionbudget.policy/stoker-dry-operator",
                    cert_manager[0],
                ],
            ]
            .concat(),
            vec![cert_manager[1]],
        ),
        (
            vec!["--set", "webhook.enabled=false"],
            vec![],
            [&webhooks[..], &cert_manager[..]].concat(),
        ),
    ];
    for (extra, present, absent) in cases {
        let mut args = vec!["--include-crds"];
        args.extend(extra.iter().copied());
        let rendered = render("stoker-dry", &ns, &args);
        let out = dry_run(c, &rendered);
        assert!(
            out.contains("deployment.apps/stoker-dry-controller-manager"),
            "{out}"
        );
        assert!(out.contains("(server dry run)"), "{out}");
        for object in present {
            assert!(
                out.lines().any(|l| l.starts_with(&format!("{object} "))),
                "{object} missing with {extra:?}:\n{out}"
            );
        }
        for object in absent {
            assert!(
                !out.contains(&format!("{object} ")),
                "{object} rendered with {extra:?}:\n{out}"
            );
        }
    }
}

/// `helm ARGS --kubeconfig KUBECONFIG --namespace NAMESPACE`, which must succeed; its stdout.
fn helm_release(args: &[&str], kubeconfig: &str, namespace: &str) -> String {
    let mut all = args.to_vec();
    all.extend(["--kubeconfig", kubeconfig, "--namespace", namespace]);
    ok(helm(all), None)
}

/// The kind and name of the release's two admission webhook configurations.
fn webhook_configurations(release: &str) -> [(&'static str, String); 2] {
    [
        (
            "mutatingwebhookconfiguration",
            format!("{release}-pod-injection"),
        ),
        (
            "validatingwebhookconfiguration",
            format!("{release}-gatewaysync-validation"),
        ),
    ]
}

/// Runs `kubectl ARGS` (an `auth can-i` question) and asserts its answer is `allowed`.
fn assert_can_i(c: &Cluster, args: &[&str], allowed: bool) {
    let (what, out) = output(c.kubectl_command(args), None);
    let answer = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert_eq!(
        answer == "yes",
        allowed,
        "{what}: {answer} {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
#[allow(clippy::too_many_lines)] // install, write the caBundle, upgrade, check: one scenario
fn helm_upgrade_keeps_the_ca_bundle_written_outside_helm() {
    // The chart renders no caBundle: the operator (or cert-manager's CA injector) writes it
    // into the live webhook configurations. Helm's three-way merge must then leave it alone on
    // `helm upgrade`, even when the upgrade changes the same webhook.
    let c = cluster().unwrap();
    let ns = namespace(c, "chart-upgrade");
    let release = format!("stoker-up{}", std::process::id());
    let chart = chart();
    let kubeconfig = c.kubeconfig_path().to_str().unwrap().to_owned();
    let helm_in = |command: &str, extra: &[&str]| {
        let mut args = vec![
            command,
            release.as_str(),
            chart.to_str().unwrap(),
            "--kubeconfig",
            &kubeconfig,
            "--namespace",
            &ns,
            // The ClusterRole stoker-agent belongs to the other install test's release.
            "--set",
            "rbac.create=false",
            // Nothing serves these webhooks here: keep the API server's calls short.
            "--set",
            "webhook.timeoutSeconds=1",
        ];
        args.extend_from_slice(extra);
        ok(helm(&args), None)
    };
    helm_in("install", &[]);
    // A CA bundle as the operator would write it: the test API server's own CA certificate.
    let ca_bundle = kubectl(
        c,
        &[
            "config",
            "view",
            "--raw",
            "--flatten",
            "-o",
            "jsonpath={.clusters[0].cluster.certificate-authority-data}",
        ],
    );
    let ca_bundle = ca_bundle.trim();
    assert!(!ca_bundle.is_empty());
    let configurations = webhook_configurations(&release);
    let patch = format!(
        r#"[{{"op": "add", "path": "/webhooks/0/clientConfig/caBundle", "value": "{ca_bundle}"}}]"#
    );
    for (kind, name) in &configurations {
        kubectl(
            c,
            &[
                "patch",
                kind,
                name,
                "--type=json",
                "--field-manager=stoker-operator",
                "-p",
                &patch,
            ],
        );
    }
    let live = |kind: &str, name: &str| {
        kubectl(
            c,
            &[
                "get",
                kind,
                name,
                "-o",
                "jsonpath={.webhooks[0].clientConfig.caBundle} {.webhooks[0].timeoutSeconds}",
            ],
        )
    };
    // Upgrades that change the webhooks themselves, twice (the second merges against a
    // previous manifest that was itself an upgrade).
    for timeout in ["2", "3"] {
        helm_in(
            "upgrade",
            &["--set", &format!("webhook.timeoutSeconds={timeout}")],
        );
        for (kind, name) in &configurations {
            assert_eq!(
                live(kind, name).trim(),
                format!("{ca_bundle} {timeout}"),
                "{kind} {name} after helm upgrade"
            );
        }
    }
    helm_release(&["uninstall", &release], &kubeconfig, &ns);
    for (kind, name) in &configurations {
        let (_, out) = output(c.kubectl_command(["get", kind, name.as_str()]), None);
        assert!(!out.status.success(), "{kind} {name} outlived the release");
    }
}

/// `text` with every `namespace: ignition` of the examples moved to `namespace`.
fn in_namespace(text: &str, namespace: &str) -> String {
    text.replace("namespace: ignition", &format!("namespace: {namespace}"))
}

/// A JSONPath printing `Kind/name`, one object a line.
const KIND_SLASH_NAME: &str = "{range .items[*]}{.kind}/{.metadata.name}{\"\\n\"}{end}";

/// `kubectl apply --dry-run=server` of the example `manifests` moved to `namespace`, printed
/// with the JSONPath `jsonpath`.
fn dry_run_in(c: &Cluster, manifests: &str, namespace: &str, jsonpath: &str) -> String {
    kubectl_stdin(
        c,
        &[
            "apply",
            "--dry-run=server",
            "-f",
            "-",
            "-o",
            &format!("jsonpath={jsonpath}"),
        ],
        &in_namespace(manifests, namespace),
    )
}

/// Dry-runs the example `manifests` in `namespace` and asserts that the objects `expected`
/// (`Kind/name`) are among those created.
fn dry_run_lists(c: &Cluster, manifests: &str, namespace: &str, expected: &[&str]) {
    let out = dry_run_in(c, manifests, namespace, KIND_SLASH_NAME);
    for expected in expected {
        assert!(
            out.lines().any(|l| l == *expected),
            "{expected} missing: {out}"
        );
    }
}

#[test]
#[allow(clippy::too_many_lines)] // every example dry-run in turn
fn the_kubernetes_examples_pass_a_server_side_dry_run() {
    let c = cluster_with_crd();
    let ns = namespace(c, "chart-examples");
    let gatewaysync = std::fs::read_to_string(root().join("examples/gatewaysync.yaml")).unwrap();
    let out = kubectl_stdin(
        c,
        &["apply", "--dry-run=server", "-f", "-"],
        &in_namespace(&gatewaysync, &ns),
    );
    assert!(
        out.contains("gatewaysync.stoker.io/plant-gateways"),
        "{out}"
    );

    let statefulset =
        std::fs::read_to_string(root().join("examples/kubernetes/gateway-statefulset.yaml"))
            .unwrap();
    dry_run_lists(
        c,
        &statefulset,
        &ns,
        &[
            "ServiceAccount/ignition",
            "RoleBinding/stoker-agent",
            "Service/site1",
            "StatefulSet/site1",
        ],
    );
    // The API server's defaulting kept the agent a native sidecar with its startup probe.
    let sidecar = dry_run_in(
        c,
        &statefulset,
        &ns,
        "{range .items[?(@.kind==\"StatefulSet\")]}{.spec.template.spec.initContainers[0].name} {.spec.template.spec.initContainers[0].restartPolicy} {.spec.template.spec.initContainers[0].startupProbe.httpGet.path}{end}",
    );
    assert_eq!(sidecar.trim(), "stoker-agent Always /startupz");

    // The injected variant: annotations only, and a data volume the injector finds.
    let injected = std::fs::read_to_string(
        root().join("examples/kubernetes/gateway-statefulset-injected.yaml"),
    )
    .unwrap();
    dry_run_lists(
        c,
        &injected,
        &ns,
        &[
            "ServiceAccount/ignition",
            "Service/site1",
            "StatefulSet/site1",
        ],
    );
    let docs = manifests(&injected);
    let template = &find(&docs, "StatefulSet", "site1")["spec"]["template"];
    let annotations = &template["metadata"]["annotations"];
    assert_eq!(annotations["stoker.io/inject"], yaml("\"true\""));
    assert_eq!(annotations["stoker.io/cr-name"], yaml("plant-gateways"));
    assert!(template["spec"]["initContainers"].is_null());
    assert!(
        template["spec"]["containers"][0]["volumeMounts"]
            .as_sequence()
            .unwrap()
            .iter()
            .any(|m| m["name"] == yaml("data")),
        "{template:?}"
    );
    // The hand-written one does not ask for injection (the webhook leaves it alone).
    assert!(!statefulset.contains("stoker.io/inject"));

    // Every variable the example gives the agent is one the agent reads (when the sidecar's
    // source is in this checkout).
    let agent_env = agent_env_names(&statefulset);
    assert!(agent_env.contains(&"CR_NAME".to_owned()), "{agent_env:?}");
    let sources = [
        "stoker-agent/src/sidecar/config.rs",
        "stoker-agent/src/cli.rs",
    ]
    .map(|p| std::fs::read_to_string(root().join(p)).unwrap_or_default())
    .join("\n");
    if sources.contains("env = \"POD_NAME\"") {
        for name in &agent_env {
            assert!(
                sources.contains(&format!("env = \"{name}\"")),
                "the example sets {name}, which stoker-agent does not read"
            );
        }
    }
}

/// The environment variable names of the `stoker-agent` init container of the example.
fn agent_env_names(statefulset: &str) -> Vec<String> {
    let start = statefulset.find("- name: stoker-agent").unwrap();
    let end = start + statefulset[start..].find("\n      containers:").unwrap();
    statefulset[start..end]
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- name: "))
        .filter(|n| n.chars().all(|ch| ch.is_ascii_uppercase() || ch == '_'))
        .map(str::to_owned)
        .collect()
}

/// Kills the child on drop.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A plain HTTP GET on loopback: (status line, body).
fn http_get(port: u16, path: &str) -> Option<(String, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    Some((head.lines().next()?.to_owned(), body.to_owned()))
}

fn wait_for<T>(what: &str, log: &Path, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + CONVERGE;
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {CONVERGE:?} waiting until {what}; operator log:\n{}",
            stoker_testkit::process::log_tail(log)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
#[allow(clippy::too_many_lines)] // one scenario: install, then each permission the operator and agent use
fn helm_install_gives_the_operator_and_the_agent_the_permissions_they_use() {
    let c = cluster_with_crd();
    let system = namespace(c, "chart-system");
    let app = namespace(c, "chart-plant");
    let release = format!("stoker-t{}", std::process::id());
    let chart = chart();
    let kubeconfig = c.kubeconfig_path().to_str().unwrap().to_owned();
    let out = helm_release(
        &["install", &release, chart.to_str().unwrap()],
        &kubeconfig,
        &system,
    );
    assert!(out.contains("STATUS: deployed"), "{out}");
    let status = helm_release(&["status", &release], &kubeconfig, &system);
    assert!(status.contains("STATUS: deployed"), "{status}");

    // The agent: the example's service account and RoleBinding, bound to the agent's
    // ClusterRole `stoker-agent` (its name whatever the release's), may do what the sidecar
    // does, and nothing more.
    let statefulset =
        std::fs::read_to_string(root().join("examples/kubernetes/gateway-statefulset.yaml"))
            .unwrap();
    let agent_role = "stoker-agent";
    // The name earlier versions gave it, kept for existing RoleBindings.
    let legacy_agent_role = format!("{release}-agent");
    kubectl(c, &["get", "clusterrole", agent_role, &legacy_agent_role]);
    let manifest = in_namespace(&statefulset, &app);
    assert!(manifest.contains("kind: ClusterRole\n  name: stoker-agent\n"));
    kubectl_stdin(c, &["apply", "-f", "-"], &manifest);
    let agent = format!("system:serviceaccount:{app}:ignition");
    for (verb, resource, allowed) in [
        ("get", "configmaps", true),
        ("list", "configmaps", true),
        ("watch", "configmaps", true),
        ("create", "configmaps", true),
        ("patch", "configmaps", true),
        ("get", "pods", true),
        ("watch", "pods", true),
        ("create", "events.events.k8s.io", true),
        ("patch", "events.events.k8s.io", true),
        ("create", "events", true),
        ("get", "gatewaysyncs.stoker.io", true),
        ("get", "secrets", false),
        ("delete", "configmaps", false),
        ("patch", "pods", false),
        ("patch", "gatewaysyncs.stoker.io", false),
        ("update", "gatewaysyncs.stoker.io/status", false),
    ] {
        assert_can_i(
            c,
            &["auth", "can-i", verb, resource, "-n", &app, "--as", &agent],
            allowed,
        );
    }
    // Not outside the namespace it is bound in.
    let (_, out) = output(
        c.kubectl_command([
            "auth",
            "can-i",
            "get",
            "configmaps",
            "-n",
            &system,
            "--as",
            &agent,
        ]),
        None,
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "no");

    // The operator, as the chart runs it: its service account's token, the Deployment's flags.
    let service_account = format!("{release}-controller-manager");
    let token = kubectl(
        c,
        &[
            "create",
            "token",
            &service_account,
            "-n",
            &system,
            "--duration=1h",
        ],
    );
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("chart-operator-{release}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let sa_kubeconfig = dir.join("kubeconfig");
    std::fs::copy(c.kubeconfig_path(), &sa_kubeconfig).unwrap();
    let sa_kubeconfig_arg = format!("--kubeconfig={}", sa_kubeconfig.display());
    let token_arg = format!("--token={}", token.trim());
    kubectl(
        c,
        &[
            "config",
            &sa_kubeconfig_arg,
            "set-credentials",
            "chart-operator",
            &token_arg,
        ],
    );
    kubectl(
        c,
        &[
            "config",
            &sa_kubeconfig_arg,
            "set-context",
            "--current",
            "--user=chart-operator",
        ],
    );
    let whoami = ok(
        c.kubectl_command([&sa_kubeconfig_arg, "auth", "can-i", "list", "secrets", "-A"]),
        None,
    );
    assert_eq!(whoami.trim(), "yes");
    // Its admission TLS (webhook.enabled, no cert-manager): the caBundle of the release's two
    // webhook configurations and no other, its TLS Secret in its own namespace. And the GitHub
    // App token Secrets it keeps for the agents (server-side apply and delete): Kubernetes cannot
    // limit those verbs to a name prefix, so they hold for every Secret; `update` does not.
    let mutating = format!("mutatingwebhookconfigurations/{release}-pod-injection");
    let validating = format!("validatingwebhookconfigurations/{release}-gatewaysync-validation");
    let tls_secret = format!("secrets/{release}-webhook-tls");
    let (sys, app_ns) = (system.as_str(), app.as_str());
    for (verb, resource, namespace, allowed) in [
        ("get", mutating.as_str(), sys, true),
        ("patch", mutating.as_str(), sys, true),
        ("update", mutating.as_str(), sys, true),
        ("get", validating.as_str(), sys, true),
        ("patch", validating.as_str(), sys, true),
        ("update", validating.as_str(), sys, true),
        ("patch", "mutatingwebhookconfigurations/other", sys, false),
        ("patch", "validatingwebhookconfigurations/other", sys, false),
        ("create", "mutatingwebhookconfigurations", sys, false),
        ("delete", mutating.as_str(), sys, false),
        ("create", "secrets", sys, true),
        ("get", tls_secret.as_str(), sys, true),
        ("update", tls_secret.as_str(), sys, true),
        ("delete", tls_secret.as_str(), sys, true),
        ("update", "secrets/other", sys, false),
        ("create", "secrets", app_ns, true),
        ("patch", "secrets", app_ns, true),
        ("delete", "secrets", app_ns, true),
        ("update", "secrets", app_ns, false),
    ] {
        assert_can_i(
            c,
            &[
                &sa_kubeconfig_arg,
                "auth",
                "can-i",
                verb,
                resource,
                "-n",
                namespace,
            ],
            allowed,
        );
    }

    let args = kubectl(
        c,
        &[
            "get",
            "deployment",
            &format!("{release}-controller-manager"),
            "-n",
            &system,
            "-o",
            "jsonpath={range .spec.template.spec.containers[0].args[*]}{@}{\"\\n\"}{end}",
        ],
    );
    let probe_port = stoker_testkit::process::free_port().unwrap();
    let webhook_port = stoker_testkit::process::free_port().unwrap();
    let state = dir.join("state");
    let args: Vec<String> = args
        .lines()
        .map(|arg| {
            if arg.starts_with("--probe-address=") {
                format!("--probe-address=127.0.0.1:{probe_port}")
            } else if arg.starts_with("--webhook-port=") {
                format!("--webhook-port={webhook_port}")
            } else if arg.starts_with("--state-dir=") {
                format!("--state-dir={}", state.display())
            } else {
                arg.to_owned()
            }
        })
        .collect();
    assert!(
        args.contains(&format!("--leader-election-namespace={system}")),
        "{args:?}"
    );
    let log = dir.join("operator.log");
    let pod_name = format!("{release}-operator-test");
    let _operator = Running(
        Command::new(env!("CARGO_BIN_EXE_stoker-operator"))
            .args(&args)
            .env("KUBECONFIG", &sa_kubeconfig)
            .env("POD_NAME", &pod_name)
            .env("POD_NAMESPACE", &system)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(dir.join("operator.stdout")).unwrap())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );

    // A GatewaySync in the gateways' namespace, on a loopback Git server.
    let servers = stoker_testkit::git::servers();
    let repo = servers.new_repo("chart");
    let commit = repo
        .commit(
            "main",
            &[("projects/demo/project.json", b"{\"title\": \"demo\"}")],
            "first",
        )
        .unwrap();
    let gatewaysync = format!(
        r#"apiVersion: stoker.io/v1alpha1
kind: GatewaySync
metadata:
  name: plant-gateways
  namespace: {app}
spec:
  git:
    repo: {url}
    ref: main
  sync:
    profiles:
      default:
        mappings:
          - source: projects
            destination: projects
"#,
        url = servers.http_url(&repo)
    );
    kubectl_stdin(c, &["apply", "-f", "-"], &gatewaysync);

    let jsonpath = |kind: &str, name: &str, namespace: &str, path: &str| {
        let mut args = vec!["get", kind];
        if !name.is_empty() {
            args.push(name);
        }
        let path = format!("jsonpath={path}");
        args.extend(["-n", namespace, "-o", &path]);
        let (_, out) = output(c.kubectl_command(&args), None);
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    };
    wait_for("the operator holds the leader Lease", &log, || {
        jsonpath(
            "lease",
            "stoker-operator",
            &system,
            "{.spec.holderIdentity}",
        )
        .filter(|holder| *holder == pod_name)
    });
    wait_for("the GatewaySync's ref is resolved", &log, || {
        jsonpath(
            "gatewaysync",
            "plant-gateways",
            &app,
            "{.status.conditions[?(@.type==\"RefResolved\")].status} {.status.lastSyncCommit}",
        )
        .filter(|s| *s == format!("True {commit}"))
    });
    let finalizers = jsonpath(
        "gatewaysync",
        "plant-gateways",
        &app,
        "{.metadata.finalizers}",
    )
    .unwrap();
    assert!(finalizers.contains("stoker.io/finalizer"), "{finalizers}");
    let metadata = wait_for("the metadata ConfigMap exists", &log, || {
        jsonpath(
            "configmap",
            "stoker-metadata-plant-gateways",
            &app,
            "{.data.commit}",
        )
    });
    assert_eq!(metadata, commit);
    // rbac.autoBindAgent (the default): a gateway pod's service account is bound to the agent's
    // ClusterRole by the operator, with only the permissions the chart gives it (`bind` on that
    // role, not the role's own rules, is what lets it write the binding).
    let pod = format!(
        r#"apiVersion: v1
kind: Pod
metadata:
  name: site1-0
  namespace: {app}
  annotations:
    stoker.io/cr-name: plant-gateways
spec:
  serviceAccountName: ignition
  containers:
    - name: ignition
      image: inductiveautomation/ignition:8.3
"#
    );
    kubectl_stdin(c, &["apply", "-f", "-"], &pod);
    let binding = wait_for(
        "the operator bound the gateway's service account",
        &log,
        || {
            jsonpath(
            "rolebinding",
            "stoker-agent-plant-gateways",
            &app,
            "{.roleRef.kind}/{.roleRef.name} {.subjects[*].kind}/{.subjects[*].name} {.metadata.ownerReferences[0].kind}",
        )
        .filter(|binding| binding.contains("/ignition"))
        },
    );
    assert_eq!(
        binding,
        "ClusterRole/stoker-agent ServiceAccount/ignition GatewaySync"
    );
    wait_for("the operator published an Event", &log, || {
        jsonpath("events.events.k8s.io", "", &app, "{.items[*].reason}")
            .filter(|reasons| reasons.contains("RefResolved"))
    });
    // Its probe server serves what the Deployment's probes and the metrics Service ask for.
    let (status, _) = http_get(probe_port, "/readyz").unwrap();
    assert!(status.contains(" 200"), "{status}");
    let (status, _) = http_get(probe_port, "/healthz").unwrap();
    assert!(status.contains(" 200"), "{status}");
    let (status, metrics) = http_get(probe_port, "/metrics").unwrap();
    assert!(status.contains(" 200"), "{status}");
    assert!(
        metrics.contains("stoker_controller_reconcile_total"),
        "{metrics}"
    );

    // Admission as the chart sets it up without cert-manager: the operator keeps its CA and
    // serving certificate in the Secret the chart named, writes the CA into the caBundle of
    // the chart's two webhook configurations, and serves a certificate that the API server,
    // calling the Service by its DNS name, would accept with that caBundle. (The API server
    // cannot reach it here: no kubelet, no kube-proxy behind the Service.)
    let tls_secret = format!("{release}-webhook-tls");
    let secret_keys = wait_for("the operator wrote its webhook TLS Secret", &log, || {
        jsonpath("secret", &tls_secret, &system, "{.data}").filter(|data| !data.is_empty())
    });
    for key in ["ca.crt", "tls.crt", "tls.key"] {
        assert!(secret_keys.contains(&format!("\"{key}\"")), "{secret_keys}");
    }
    let configurations = webhook_configurations(&release);
    let ca_bundle = |kind: &str, name: &str| {
        jsonpath(kind, name, &system, "{.webhooks[0].clientConfig.caBundle}")
            .filter(|bundle| !bundle.is_empty())
    };
    let bundles: Vec<String> = configurations
        .iter()
        .map(|(kind, name)| {
            wait_for(
                &format!("the operator set the caBundle of {name}"),
                &log,
                || ca_bundle(kind, name),
            )
        })
        .collect();
    assert_eq!(bundles[0], bundles[1]);
    let ca_file = dir.join("webhook-ca.pem");
    let decoded = ok(
        {
            let mut cmd = Command::new("base64");
            cmd.arg("--decode");
            cmd
        },
        Some(&bundles[0]),
    );
    std::fs::write(&ca_file, decoded).unwrap();
    let service_dns = format!("{release}-webhook-service.{system}.svc");
    let (what, out) = output(
        {
            let mut cmd = Command::new("openssl");
            cmd.args(["s_client", "-brief", "-verify_return_error"])
                .arg("-connect")
                .arg(format!("127.0.0.1:{webhook_port}"))
                .args([
                    "-servername",
                    &service_dns,
                    "-verify_hostname",
                    &service_dns,
                ])
                .arg("-CAfile")
                .arg(&ca_file);
            cmd
        },
        Some(""),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.contains("Verification: OK"),
        "{what}: {}\n{stderr}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout)
    );

    // Deleting it runs the finalizer: the operator deletes the metadata ConfigMap.
    kubectl(
        c,
        &[
            "delete",
            "gatewaysync",
            "plant-gateways",
            "-n",
            &app,
            "--wait=false",
        ],
    );
    wait_for("the GatewaySync is gone", &log, || {
        jsonpath("gatewaysync", "plant-gateways", &app, "{.metadata.name}")
            .is_none()
            .then_some(())
    });
    assert!(
        jsonpath(
            "configmap",
            "stoker-metadata-plant-gateways",
            &app,
            "{.metadata.name}"
        )
        .is_none()
    );
    let operator_log = std::fs::read_to_string(&log).unwrap();
    assert!(
        !operator_log.contains("forbidden"),
        "the operator was refused something:\n{operator_log}"
    );

    // With the operator stopped (so it cannot write the caBundle again), a `helm upgrade`
    // that changes the webhooks keeps the caBundle it wrote: the chart renders none.
    drop(_operator);
    helm_release(
        &[
            "upgrade",
            &release,
            chart.to_str().unwrap(),
            "--set",
            "webhook.timeoutSeconds=5",
        ],
        &kubeconfig,
        &system,
    );
    for ((kind, name), bundle) in configurations.iter().zip(&bundles) {
        assert_eq!(
            jsonpath(
                kind,
                name,
                &system,
                "{.webhooks[0].clientConfig.caBundle} {.webhooks[0].timeoutSeconds}"
            )
            .unwrap(),
            format!("{bundle} 5"),
            "{kind} {name} after helm upgrade"
        );
    }

    // A clean uninstall (the CRD stays, as Helm keeps crds/).
    helm_release(&["uninstall", &release], &kubeconfig, &system);
    kubectl(c, &["get", "crd", CRD_NAME]);
    for role in [agent_role, legacy_agent_role.as_str()] {
        let (_, out) = output(c.kubectl_command(["get", "clusterrole", role]), None);
        assert!(
            !out.status.success(),
            "the agent ClusterRole {role} outlived the release"
        );
    }
}

/// The metric names in a PromQL expression: every identifier starting with `stoker_` (label
/// values are quoted, so a `stoker_` inside a matcher's value is skipped).
fn promql_metric_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut in_string = false;
    let mut rest = expr;
    while let Some(c) = rest.chars().next() {
        if c == '"' {
            in_string = !in_string;
            rest = &rest[1..];
            continue;
        }
        let at_word_start = !rest.is_empty();
        if !in_string && at_word_start && rest.starts_with("stoker_") {
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            names.push(rest[..end].to_owned());
            rest = &rest[end..];
            continue;
        }
        // Skip a whole identifier, so `foo_stoker_x` is not taken for a metric.
        let end = if c.is_ascii_alphanumeric() || c == '_' {
            rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len())
        } else {
            c.len_utf8()
        };
        rest = &rest[end..];
    }
    names
}

/// Every `expr` string anywhere in a JSON document (the dashboards' query targets).
fn json_exprs(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("expr", serde_json::Value::String(expr)) => out.push(expr.clone()),
                    _ => json_exprs(value, out),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|item| json_exprs(item, out)),
        _ => {}
    }
}

#[test]
fn promql_metric_names_are_found_outside_label_values() {
    assert_eq!(
        promql_metric_names(
            "sum by (le) (rate(stoker_agent_sync_duration_seconds_bucket{job=\"stoker_x\"}[5m])) / my_stoker_y"
        ),
        vec!["stoker_agent_sync_duration_seconds_bucket"]
    );
}

#[test]
#[allow(clippy::too_many_lines)] // every query checked against the exported metrics
fn helm_template_renders_monitoring_whose_queries_use_only_exported_metrics() {
    let rendered = render(
        "stoker",
        "stoker-system",
        &[
            "--set",
            "serviceMonitor.enabled=true",
            "--set",
            "serviceMonitor.scrapeTimeout=10s",
            "--set",
            "podMonitor.enabled=true",
            "--set",
            "podMonitor.interval=15s",
            "--set",
            "podMonitor.scrapeTimeout=5s",
            "--set",
            "podMonitor.labels.release=prom",
            "--set",
            "prometheusRule.enabled=true",
            "--set",
            "prometheusRule.labels.release=prom",
            "--set-json",
            r#"prometheusRule.additionalRules=[{"alert":"MyStokerAlert","expr":"stoker_agent_sync_total > 0"}]"#,
            "--set",
            "grafanaDashboard.enabled=true",
            "--set",
            "grafanaDashboard.namespace=grafana",
            "--set",
            "grafanaDashboard.annotations.grafana_folder=Stoker",
        ],
    );
    let docs = manifests(&rendered);
    let exported: Vec<stoker_testkit::metrics::Exported> = stoker_testkit::metrics::OPERATOR
        .iter()
        .chain(stoker_testkit::metrics::AGENT)
        .copied()
        .collect();
    let check = |origin: &str, expr: &str| {
        let names = promql_metric_names(expr);
        assert!(!names.is_empty(), "{origin}: no Stoker metric in {expr:?}");
        for name in names {
            assert!(
                stoker_testkit::metrics::is_exported(&exported, &name),
                "{origin} queries {name}, which no Stoker binary exports: {expr}"
            );
        }
    };

    // ServiceMonitor with its timeout; PodMonitor on the agents' metrics port.
    let service_monitor = find(&docs, "ServiceMonitor", "stoker-metrics-monitor");
    assert_eq!(
        service_monitor["spec"]["endpoints"][0]["scrapeTimeout"],
        yaml("10s")
    );
    let pod_monitor = find(&docs, "PodMonitor", "stoker-agent");
    assert_eq!(pod_monitor["metadata"]["labels"]["release"], yaml("prom"));
    assert_eq!(
        pod_monitor["spec"]["selector"],
        yaml("matchLabels: {stoker.io/agent: \"true\"}")
    );
    assert_eq!(pod_monitor["spec"]["namespaceSelector"], yaml("any: true"));
    assert_eq!(
        pod_monitor["spec"]["podMetricsEndpoints"],
        yaml("[{port: metrics, path: /metrics, interval: 15s, scrapeTimeout: 5s}]")
    );

    // The alerts, then the user's rule appended as written.
    let rule = find(&docs, "PrometheusRule", "stoker");
    assert_eq!(rule["metadata"]["labels"]["release"], yaml("prom"));
    let rules = rule["spec"]["groups"][0]["rules"].as_sequence().unwrap();
    assert!(rules.len() >= 10, "{rules:?}");
    for rule in rules {
        let alert = rule["alert"].as_str().unwrap();
        check(alert, rule["expr"].as_str().unwrap());
        if alert != "MyStokerAlert" {
            assert!(rule["for"].is_string() || alert == "StokerInjectionErrors");
            assert!(rule["labels"]["severity"].is_string(), "{alert}");
            // Prometheus's template braces survive Helm.
            let summary = rule["annotations"]["summary"].as_str().unwrap();
            assert!(summary.contains("{{ $labels."), "{alert}: {summary}");
        }
    }
    assert_eq!(
        rules.last().unwrap()["alert"].as_str(),
        Some("MyStokerAlert")
    );

    // The dashboards: valid JSON, every query on exported metrics, labelled for the sidecar.
    let dashboards = find(&docs, "ConfigMap", "stoker-dashboard");
    assert_eq!(dashboards["metadata"]["namespace"], yaml("grafana"));
    assert_eq!(
        dashboards["metadata"]["labels"]["grafana_dashboard"],
        yaml("\"1\"")
    );
    assert_eq!(
        dashboards["metadata"]["annotations"]["grafana_folder"],
        yaml("Stoker")
    );
    let data = dashboards["data"].as_mapping().unwrap();
    let files: Vec<&str> = data.keys().filter_map(|k| k.as_str()).collect();
    assert_eq!(files, ["stoker-fleet.json", "stoker-gatewaysync.json"]);
    let mut queried = std::collections::BTreeSet::new();
    for (file, json) in data {
        let file = file.as_str().unwrap();
        let dashboard: serde_json::Value = serde_json::from_str(json.as_str().unwrap())
            .unwrap_or_else(|e| panic!("{file} is not JSON: {e}"));
        assert!(dashboard["uid"].is_string() && dashboard["title"].is_string());
        let mut exprs = Vec::new();
        json_exprs(&dashboard["panels"], &mut exprs);
        assert!(exprs.len() >= 15, "{file}: {exprs:?}");
        for expr in &exprs {
            check(file, expr);
            queried.extend(promql_metric_names(expr));
        }
    }
    // The dashboards show the v0.5.1 metrics users look for first.
    for name in [
        "stoker_controller_cr_info",
        "stoker_controller_condition_status",
        "stoker_controller_gateway_sync_status",
        "stoker_controller_gateways_missing_sidecar",
        "stoker_agent_designer_sessions_blocked",
        "stoker_agent_sync_skipped_total",
        "stoker_agent_gateway_startup_duration_seconds_bucket",
    ] {
        assert!(queried.contains(name), "no dashboard shows {name}");
    }

    // Off by default.
    let defaults = manifests(&render("stoker", "stoker-system", &[]));
    for kind in ["ServiceMonitor", "PodMonitor", "PrometheusRule"] {
        assert!(
            !kinds(&defaults).contains(&kind),
            "{kind} rendered by default"
        );
    }
    assert!(try_find(&defaults, "ConfigMap", "stoker-dashboard").is_none());
}

/// The leaf keys of stoker-operator v0.5.1's chart values (a mapping's keys, or the mapping
/// itself when it is empty or a list), but the monitoring ones, which another branch builds:
/// the fixture `stoker-operator-v0.5.1-every-key.yaml` must set exactly these.
const V051_KEYS: &[&str] = &[
    "replicaCount",
    "image.repository",
    "image.tag",
    "image.pullPolicy",
    "agentImage.repository",
    "agentImage.tag",
    "imagePullSecrets",
    "nameOverride",
    "fullnameOverride",
    "resources.limits.cpu",
    "resources.limits.memory",
    "resources.requests.cpu",
    "resources.requests.memory",
    "leaderElection.enabled",
    "metrics.enabled",
    "metrics.service.port",
    "metrics.service.type",
    "serviceMonitor.enabled",
    "serviceMonitor.labels",
    "serviceMonitor.interval",
    "serviceMonitor.scrapeTimeout",
    "podMonitor.enabled",
    "podMonitor.labels",
    "podMonitor.interval",
    "podMonitor.scrapeTimeout",
    "prometheusRule.enabled",
    "prometheusRule.labels",
    "prometheusRule.additionalRules",
    "grafanaDashboard.enabled",
    "grafanaDashboard.namespace",
    "grafanaDashboard.labels",
    "grafanaDashboard.annotations",
    "networkPolicy.enabled",
    "webhook.enabled",
    "webhook.port",
    "webhook.namespaceSelector.requireLabel",
    "rbac.autoBindAgent.enabled",
    "certManager.enabled",
    "controller.logDevMode",
    "webhookReceiver.enabled",
    "webhookReceiver.port",
    "webhookReceiver.hmac.secret",
    "webhookReceiver.hmac.secretRef.name",
    "webhookReceiver.hmac.secretRef.key",
    "webhookReceiver.token.secret",
    "webhookReceiver.token.secretRef.name",
    "webhookReceiver.token.secretRef.key",
    "webhookReceiver.ingress.enabled",
    "webhookReceiver.ingress.ingressClassName",
    "webhookReceiver.ingress.annotations",
    "webhookReceiver.ingress.hosts",
    "webhookReceiver.ingress.tls",
    "podAnnotations",
    "podLabels",
    "nodeSelector",
    "tolerations",
    "affinity",
];

/// The leaf keys of `value` as [`V051_KEYS`] spells them, stopping at the mappings v0.5.1
/// passed through to Kubernetes as they are.
fn leaf_keys(value: &Value, prefix: &str, keys: &mut Vec<String>) {
    let opaque = [
        "serviceMonitor.labels",
        "podMonitor.labels",
        "prometheusRule.labels",
        "grafanaDashboard.labels",
        "grafanaDashboard.annotations",
        "webhookReceiver.ingress.annotations",
        "podAnnotations",
        "podLabels",
        "nodeSelector",
        "affinity",
    ];
    match value.as_mapping() {
        Some(map) if !map.is_empty() && !opaque.contains(&prefix) => {
            for (key, child) in map {
                let key = key.as_str().unwrap();
                let path = if prefix.is_empty() {
                    key.to_owned()
                } else {
                    format!("{prefix}.{key}")
                };
                leaf_keys(child, &path, keys);
            }
        }
        _ => keys.push(prefix.to_owned()),
    }
}

#[test]
#[allow(clippy::too_many_lines)] // a table of every v0.5.1 value and its effect
fn every_stoker_operator_v0_5_1_value_takes_effect() {
    let every = fixture("stoker-operator-v0.5.1-every-key.yaml");
    let text = std::fs::read_to_string(&every).unwrap();
    let mut keys = Vec::new();
    leaf_keys(&serde_yaml::from_str(&text).unwrap(), "", &mut keys);
    assert_eq!(keys, V051_KEYS, "the fixture does not set every v0.5.1 key");

    let rendered = render("stoker", "plant-ops", &["-f", every.to_str().unwrap()]);
    let docs = manifests(&rendered);
    // fullnameOverride names the objects; nameOverride is the name label.
    let deployment = find(&docs, "Deployment", "plant-gitops-controller-manager");
    let labels = &deployment["spec"]["selector"]["matchLabels"];
    assert_eq!(labels["app.kubernetes.io/name"], "plant-stoker");
    assert_eq!(labels["control-plane"], "controller-manager");
    // replicaCount (and with it the disruption budget).
    assert_eq!(deployment["spec"]["replicas"], 2);
    find(&docs, "PodDisruptionBudget", "plant-gitops-operator");
    let pod = &deployment["spec"]["template"];
    let container = operator_container(&docs, "plant-gitops-controller-manager");
    // image.*, imagePullSecrets.
    assert_eq!(
        container["image"],
        "registry.example.invalid/plant/stoker-operator:0.6.0"
    );
    assert_eq!(container["imagePullPolicy"], "Always");
    assert_eq!(
        pod["spec"]["imagePullSecrets"],
        yaml("[{name: plant-registry}]")
    );
    // resources.*
    assert_eq!(
        container["resources"],
        yaml("{limits: {cpu: '1', memory: 512Mi}, requests: {cpu: 50m, memory: 96Mi}}")
    );
    // podAnnotations, podLabels, nodeSelector, tolerations, affinity.
    assert_eq!(
        pod["metadata"]["annotations"]["plant.example.invalid/owner"],
        "ot-team"
    );
    assert_eq!(
        pod["metadata"]["labels"]["plant.example.invalid/site"],
        "north"
    );
    assert_eq!(pod["spec"]["nodeSelector"], yaml("kubernetes.io/os: linux"));
    assert_eq!(pod["spec"]["tolerations"][0]["value"], "controllers");
    assert_eq!(
        pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
            [0]["matchExpressions"][0]["values"],
        yaml("[amd64, arm64]")
    );
    // Flags: agentImage.*, leaderElection.enabled, webhook.port, rbac.autoBindAgent.enabled,
    // certManager.enabled, controller.logDevMode.
    let args = operator_args(&docs, "plant-gitops-controller-manager");
    for expected in [
        "--agent-image=registry.example.invalid/plant/stoker-agent:0.6.1",
        "--leader-elect=false",
        "--webhook-port=9555",
        "--auto-bind-agent=false",
        "--webhook-cert-dir=/etc/stoker/webhook-tls",
        "--log-format=text",
        "--log-level=debug",
    ] {
        assert!(
            args.iter().any(|a| a == expected),
            "{expected} missing: {args:?}"
        );
    }
    assert!(!args.iter().any(|a| a.starts_with("--leader-election-id")));
    // metrics.* and serviceMonitor.*.
    let metrics = find(&docs, "Service", "plant-gitops-metrics-service");
    assert_eq!(metrics["spec"]["type"], "NodePort");
    assert_eq!(metrics["spec"]["ports"][0]["port"], 9090);
    let monitor = find(&docs, "ServiceMonitor", "plant-gitops-metrics-monitor");
    assert_eq!(monitor["metadata"]["labels"]["release"], "plant-prometheus");
    assert_eq!(monitor["spec"]["endpoints"][0]["interval"], "15s");
    assert_eq!(monitor["spec"]["endpoints"][0]["scrapeTimeout"], "10s");
    // podMonitor.*, prometheusRule.*, grafanaDashboard.*.
    let agents = find(&docs, "PodMonitor", "plant-gitops-agent");
    assert_eq!(agents["metadata"]["labels"]["release"], "plant-prometheus");
    let endpoint = &agents["spec"]["podMetricsEndpoints"][0];
    assert_eq!(endpoint["interval"], "20s");
    assert_eq!(endpoint["scrapeTimeout"], "5s");
    let rule = find(&docs, "PrometheusRule", "plant-gitops");
    assert_eq!(rule["metadata"]["labels"]["release"], "plant-prometheus");
    let rules = rule["spec"]["groups"][0]["rules"].as_sequence().unwrap();
    let last = rules.last().unwrap();
    assert_eq!(last["alert"], "PlantGatewaySlowSync");
    assert_eq!(last["for"], "10m");
    assert!(rules.len() > 1, "the additional rule replaced the defaults");
    let dashboards = find(&docs, "ConfigMap", "plant-gitops-dashboard");
    let meta = &dashboards["metadata"];
    assert_eq!(meta["namespace"], "plant-monitoring");
    assert_eq!(meta["labels"]["plant.example.invalid/dashboards"], "true");
    assert_eq!(meta["labels"]["grafana_dashboard"], "1");
    assert_eq!(meta["annotations"]["grafana_folder"], "Plant");
    // networkPolicy.enabled, webhook.enabled and its namespace selector, certManager.enabled.
    find(&docs, "NetworkPolicy", "plant-gitops-operator");
    let injection = only_webhook(
        &docs,
        "MutatingWebhookConfiguration",
        "plant-gitops-pod-injection",
    );
    assert_eq!(
        injection["namespaceSelector"]["matchLabels"],
        yaml("stoker.io/injection: enabled")
    );
    find(&docs, "Certificate", "plant-gitops-webhook-cert");
    // rbac.autoBindAgent.enabled false: no RoleBinding permissions for the operator.
    let role = document(&rendered, "ClusterRole", "plant-gitops-operator");
    assert!(!role.contains("rolebindings"), "{role}");
    // webhookReceiver.*: the flag, the secrets' environment, the Service, the Ingress, and the
    // NetworkPolicy letting the port in.
    assert_eq!(
        receiver_args(&args),
        [
            "--webhook-receiver-port=9445",
            "--webhook-receiver-rate-limit=20",
            "--webhook-receiver-burst=40",
            "--webhook-receiver-trust-forwarded-for=false",
        ]
    );
    assert_eq!(
        env_var(&container, "WEBHOOK_HMAC_SECRET").unwrap()["valueFrom"],
        yaml("secretKeyRef: {name: plant-webhook-hmac, key: hmac}")
    );
    assert_eq!(
        env_var(&container, "WEBHOOK_BEARER_TOKEN").unwrap()["valueFrom"],
        yaml("secretKeyRef: {name: plant-webhook-token, key: token}")
    );
    let ports = container["ports"].as_sequence().unwrap();
    assert!(
        ports.contains(&yaml(
            "{name: webhook-rx, containerPort: 9445, protocol: TCP}"
        )),
        "{ports:?}"
    );
    let service = find(&docs, "Service", "plant-gitops-webhook-receiver");
    assert_eq!(
        service["spec"]["ports"],
        yaml("[{name: http, port: 9445, targetPort: webhook-rx, protocol: TCP}]")
    );
    assert_eq!(service["spec"]["selector"], *labels);
    let ingress = find(&docs, "Ingress", "plant-gitops-webhook-receiver");
    assert_eq!(
        ingress["metadata"]["annotations"],
        yaml("nginx.ingress.kubernetes.io/ssl-redirect: 'true'")
    );
    assert_eq!(
        ingress["spec"],
        yaml(
            "ingressClassName: nginx
tls: [{secretName: stoker-receiver-tls, hosts: [stoker.plant.example.invalid]}]
rules:
  - host: stoker.plant.example.invalid
    http:
      paths:
        - path: /webhook
          pathType: Prefix
          backend: {service: {name: plant-gitops-webhook-receiver, port: {number: 9445}}}"
        )
    );
    let policy = find(&docs, "NetworkPolicy", "plant-gitops-operator");
    let open_ports: Vec<&Value> = policy["spec"]["ingress"]
        .as_sequence()
        .unwrap()
        .iter()
        .flat_map(|rule| rule["ports"].as_sequence().unwrap())
        .collect();
    assert!(
        open_ports.contains(&&yaml("{port: 9445, protocol: TCP}")),
        "{open_ports:?}"
    );
    let notes = install_notes(
        "stoker",
        "plant-ops",
        &[
            "-f",
            every.to_str().unwrap(),
            // The test API server has no cert-manager or prometheus-operator kinds for helm to map.
            "--set",
            "certManager.enabled=false",
            "--set",
            "serviceMonitor.enabled=false",
            "--set",
            "podMonitor.enabled=false",
            "--set",
            "prometheusRule.enabled=false",
        ],
    );
    for expected in [
        "Webhook receiver (every replica, plain HTTP): Service plant-gitops-webhook-receiver, port 9445, and the Ingress of the same name.",
        "POST <url>/webhook/push",
    ] {
        assert!(notes.contains(expected), "{expected:?} missing:\n{notes}");
    }
    assert!(
        !notes.contains("no effect") && !notes.contains("WARNING"),
        "{notes}"
    );
    // And the API server takes all of it.
    let c = cluster_with_cert_manager_crds();
    let ns = namespace(c, "chart-every");
    let rendered = render(
        "stoker",
        &ns,
        &[
            "-f",
            every.to_str().unwrap(),
            "--set",
            "rbac.create=false",
            // No prometheus-operator CRDs on the test API server, and no namespace
            // plant-monitoring for the dashboards.
            "--set",
            "serviceMonitor.enabled=false",
            "--set",
            "podMonitor.enabled=false",
            "--set",
            "prometheusRule.enabled=false",
            "--set",
            "grafanaDashboard.namespace=",
        ],
    );
    let out = dry_run(c, &rendered);
    assert!(
        out.contains("deployment.apps/plant-gitops-controller-manager"),
        "{out}"
    );
}

#[test]
fn the_webhook_receiver_takes_inline_secrets_and_is_off_by_default() {
    let rendered = render("stoker", "plant-ops", &[]);
    let docs = manifests(&rendered);
    let args = operator_args(&docs, "stoker-controller-manager");
    assert_eq!(receiver_args(&args), ["--webhook-receiver-port=0"]);
    let container = operator_container(&docs, "stoker-controller-manager");
    assert!(env_var(&container, "WEBHOOK_HMAC_SECRET").is_none());
    assert!(try_find(&docs, "Service", "stoker-webhook-receiver").is_none());

    let rendered = render(
        "stoker",
        "plant-ops",
        &[
            "--set",
            "webhookReceiver.enabled=true",
            "--set",
            "webhookReceiver.hmac.secret=inline-hmac",
            "--set",
            "webhookReceiver.token.secret=inline-token",
            "--set",
            "webhookReceiver.rateLimit.perSecond=5",
            "--set",
            "webhookReceiver.rateLimit.burst=7",
            "--set",
            "webhookReceiver.rateLimit.trustForwardedFor=true",
            "--set",
            "networkPolicy.enabled=true",
            "--set-json",
            r#"networkPolicy.webhookReceiverFrom=[{"namespaceSelector":{"matchLabels":{"kubernetes.io/metadata.name":"ingress-nginx"}}}]"#,
        ],
    );
    let docs = manifests(&rendered);
    let args = operator_args(&docs, "stoker-controller-manager");
    assert_eq!(
        receiver_args(&args),
        [
            "--webhook-receiver-port=9444",
            "--webhook-receiver-rate-limit=5",
            "--webhook-receiver-burst=7",
            "--webhook-receiver-trust-forwarded-for=true",
        ]
    );
    let container = operator_container(&docs, "stoker-controller-manager");
    assert_eq!(
        env_var(&container, "WEBHOOK_HMAC_SECRET").unwrap()["value"],
        "inline-hmac"
    );
    assert_eq!(
        env_var(&container, "WEBHOOK_BEARER_TOKEN").unwrap()["value"],
        "inline-token"
    );
    find(&docs, "Service", "stoker-webhook-receiver");
    assert!(try_find(&docs, "Ingress", "stoker-webhook-receiver").is_none());
    let policy = find(&docs, "NetworkPolicy", "stoker-operator");
    let rule = policy["spec"]["ingress"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|rule| rule["ports"][0]["port"] == 9444)
        .unwrap();
    assert_eq!(
        rule["from"],
        yaml("[{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: ingress-nginx}}}]")
    );
}

/// Runs `helm ARGS` expecting helm's schema error naming `key`.
fn refused_for(args: &[&str], key: &str) {
    let (what, out) = output(helm(args), None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{what} succeeded");
    assert!(
        stderr.contains("values don't meet the specifications of the schema")
            && stderr.contains(&format!("'{key}' not allowed")),
        "{what}: {stderr}"
    );
}

#[test]
fn a_misspelt_value_is_an_error_naming_it() {
    let chart = chart();
    let chart = chart.to_str().unwrap();
    for (set, key) in [
        ("webhok.enabled=true", "webhok"),
        ("rbac.autoBindAgent.enabeld=false", "enabeld"),
        ("podMonitor.scrapeTimout=5s", "scrapeTimout"),
    ] {
        refused_for(&["template", "stoker", chart, "--set", set], key);
    }
    let dir = tempfile::tempdir().unwrap();
    let values = dir.path().join("values.yaml");
    std::fs::write(
        &values,
        "webhookReceiver:\n  hmac:\n    secretRef:\n      nmae: hmac\n",
    )
    .unwrap();
    let kubeconfig = cluster().unwrap().kubeconfig_path();
    refused_for(
        &[
            "install",
            "stoker",
            chart,
            "--dry-run=client",
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
            "--namespace",
            "stoker-system",
            "-f",
            values.to_str().unwrap(),
        ],
        "nmae",
    );
    // A wrong type or value is refused too; the monitoring sections take any settings.
    template_refused(&["--set", "logFormat=xml"]);
    ok(
        helm([
            "template",
            "stoker",
            chart,
            "--set",
            "podMonitor.interval=30s",
            "--set",
            "serviceMonitor.scrapeTimeout=10s",
        ]),
        None,
    );
}
