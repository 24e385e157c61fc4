//! The Helm chart (`charts/stoker`) and the Kubernetes examples, against the real test API
//! server: `helm lint`; `helm template` with the defaults, with `watchNamespaces`, and with a
//! stoker-operator v0.5 values file; a server-side dry run of everything it renders and of
//! `examples/`; and a real `helm install`, after which the operator binary runs with the chart's
//! own service-account token and the exact flags of the chart's Deployment (so a permission the
//! chart forgot, or a flag the binary does not know, fails here), and the agent's ClusterRole is
//! checked verb by verb through the example's RoleBinding.
//!
//! helm comes from `hack/helm.sh install` (built from the Go module proxy, cached), found through
//! `STOKER_HELM_BIN_DIR`, else `hack/helm.sh bin-dir`; a test never builds it. That the chart's
//! CRD is the generated one is checked in stoker-k8s (tests/crd.rs).
#![allow(clippy::unwrap_used)]

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use stoker_testkit::kube_api::{Cluster, cluster};

/// Env var: the directory holding `helm` (`hack/helm.sh install --print-bin-dir`).
const ENV_HELM_BIN_DIR: &str = "STOKER_HELM_BIN_DIR";
const CRD_NAME: &str = "gatewaysyncs.stoker.io";
/// How long the operator gets to converge.
const CONVERGE: Duration = Duration::from_secs(60);

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

/// The test API server with the chart's CRD installed and established.
fn cluster_with_crd() -> &'static Cluster {
    static CRD: OnceLock<()> = OnceLock::new();
    let c = cluster().unwrap();
    CRD.get_or_init(|| {
        let crd = chart().join("crds/gatewaysyncs.stoker.io.yaml");
        kubectl(
            c,
            &[
                "apply",
                "--server-side",
                "--field-manager=stoker-chart-test",
                "-f",
                crd.to_str().unwrap(),
            ],
        );
        kubectl(
            c,
            &[
                "wait",
                "--for=condition=Established",
                "--timeout=60s",
                &format!("crd/{CRD_NAME}"),
            ],
        );
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
        ("ServiceAccount", ns, "stoker-operator"),
        ("ClusterRole", "", "stoker-operator"),
        ("ClusterRoleBinding", "", "stoker-operator"),
        ("Role", ns, "stoker-leader-election"),
        ("RoleBinding", ns, "stoker-leader-election"),
        ("ClusterRole", "", "stoker-agent"),
        ("ClusterRole", "", "stoker-gatewaysync-view"),
        ("ClusterRole", "", "stoker-gatewaysync-edit"),
        ("Service", ns, "stoker-metrics"),
        ("Deployment", ns, "stoker-operator"),
    ] {
        assert!(
            has_object(&objects, kind, namespace, name),
            "no {kind} {namespace}/{name} in {objects:?}"
        );
    }
    assert_eq!(objects.len(), 10, "{objects:?}");

    let deployment = document(&rendered, "Deployment", "stoker-operator");
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
        "serviceAccountName: stoker-operator",
        "terminationGracePeriodSeconds: 30",
    ] {
        assert!(
            deployment.contains(expected),
            "{expected:?} missing:\n{deployment}"
        );
    }
    assert!(!deployment.contains("--namespaces"), "{deployment}");

    // The operator's permissions are the ones its controller uses; secrets are read only.
    let role = document(&rendered, "ClusterRole", "stoker-operator");
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
    assert!(
        !objects
            .iter()
            .any(|(k, _, _)| k == "ClusterRoleBinding" || k == "Role" || k == "Service"),
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
        document(&manual, "Deployment", "gateways-stoker-operator")
            .contains("- --auto-bind-agent=false")
    );
    assert!(
        !role.contains("rolebindings") && !role.contains("\"bind\""),
        "{role}"
    );
    let deployment = document(&rendered, "Deployment", "gateways-stoker-operator");
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

#[test]
fn helm_template_accepts_stoker_operator_v0_5_values_and_renders_optional_objects() {
    let v05 = fixture("stoker-operator-v0.5-values.yaml");
    let rendered = render("stoker", "stoker-system", &["-f", v05.to_str().unwrap()]);
    let deployment = document(&rendered, "Deployment", "stoker-operator");
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
    // Accepted, and nothing rendered for features not built yet: no webhook configuration
    // pointing at a server that does not exist (it would block pod creation).
    let rendered_objects = objects(&rendered);
    assert!(
        !rendered_objects
            .iter()
            .any(|(k, _, _)| k.contains("Webhook") || k == "Certificate" || k == "Issuer"),
        "{rendered_objects:?}"
    );
    let service = document(&rendered, "Service", "stoker-metrics");
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
        "stoker"
    ));
    let (_, out) = output(
        helm([
            "template",
            "stoker",
            chart().to_str().unwrap(),
            "--set",
            "serviceMonitor.enabled=true",
            "--set",
            "metrics.enabled=false",
        ]),
        None,
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("serviceMonitor.enabled needs metrics.enabled"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The install notes say which v0.5 values have no effect yet.
    let notes = ok(
        helm([
            "install",
            "stoker",
            chart().to_str().unwrap(),
            "--dry-run=client",
            "--kubeconfig",
            cluster().unwrap().kubeconfig_path().to_str().unwrap(),
            "--namespace",
            "stoker-system",
            "-f",
            v05.to_str().unwrap(),
            // The test cluster is shared with the real install, whose release owns the
            // cluster-wide ClusterRole stoker-agent: Helm would refuse to adopt it.
            "--set",
            "rbac.create=false",
        ]),
        None,
    );
    for expected in [
        "webhook.enabled: no sidecar-injection webhook yet",
        "RoleBinding\n     stoker-agent-<cr>, rbac.autoBindAgent.enabled): nothing to do",
        "registry.example.invalid/ot/stoker-agent:0.5.3",
    ] {
        assert!(
            notes.contains(expected),
            "{expected:?} missing from the notes:\n{notes}"
        );
    }
    assert!(!notes.contains("rbac.autoBindAgent.enabled:"), "{notes}");
    // Without automatic bindings, the notes give the kubectl line, with the fixed role name.
    let notes = ok(
        helm([
            "install",
            "gateways",
            chart().to_str().unwrap(),
            "--dry-run=client",
            "--kubeconfig",
            cluster().unwrap().kubeconfig_path().to_str().unwrap(),
            "--namespace",
            "stoker-system",
            "--set",
            "rbac.autoBindAgent.enabled=false",
            "--set",
            "rbac.create=false",
        ]),
        None,
    );
    assert!(notes.contains("--clusterrole=stoker-agent "), "{notes}");
}

#[test]
fn everything_the_chart_renders_passes_a_server_side_dry_run() {
    let c = cluster().unwrap();
    let ns = namespace(c, "chart-dry");
    let other = namespace(c, "chart-dry-watched");
    let v05 = fixture("stoker-operator-v0.5-values.yaml");
    let watch = format!("watchNamespaces={{{ns},{other}}}");
    for extra in [
        vec![],
        vec![
            "--set",
            watch.as_str(),
            "--set",
            "leaderElection.enabled=false",
        ],
        vec!["-f", v05.to_str().unwrap()],
    ] {
        let mut args = vec!["--include-crds"];
        args.extend(extra.iter().copied());
        let rendered = render("stoker-dry", &ns, &args);
        let out = kubectl_stdin(c, &["apply", "--dry-run=server", "-f", "-"], &rendered);
        assert!(out.contains("deployment.apps/stoker-dry-operator"), "{out}");
        assert!(out.contains("(server dry run)"), "{out}");
    }
}

/// `text` with every `namespace: ignition` of the examples moved to `namespace`.
fn in_namespace(text: &str, namespace: &str) -> String {
    text.replace("namespace: ignition", &format!("namespace: {namespace}"))
}

#[test]
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
    let out = kubectl_stdin(
        c,
        &[
            "apply",
            "--dry-run=server",
            "-f",
            "-",
            "-o",
            "jsonpath={range .items[*]}{.kind}/{.metadata.name}{\"\\n\"}{end}",
        ],
        &in_namespace(&statefulset, &ns),
    );
    for expected in [
        "ServiceAccount/ignition",
        "RoleBinding/stoker-agent",
        "Service/site1",
        "StatefulSet/site1",
    ] {
        assert!(
            out.lines().any(|l| l == expected),
            "{expected} missing: {out}"
        );
    }
    // The API server's defaulting kept the agent a native sidecar with its startup probe.
    let sidecar = kubectl_stdin(
        c,
        &[
            "apply",
            "--dry-run=server",
            "-f",
            "-",
            "-o",
            "jsonpath={range .items[?(@.kind==\"StatefulSet\")]}{.spec.template.spec.initContainers[0].name} {.spec.template.spec.initContainers[0].restartPolicy} {.spec.template.spec.initContainers[0].startupProbe.httpGet.path}{end}",
        ],
        &in_namespace(&statefulset, &ns),
    );
    assert_eq!(sidecar.trim(), "stoker-agent Always /startupz");

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
fn helm_install_gives_the_operator_and_the_agent_the_permissions_they_use() {
    let c = cluster_with_crd();
    let system = namespace(c, "chart-system");
    let app = namespace(c, "chart-plant");
    let release = format!("stoker-t{}", std::process::id());
    let chart = chart();
    let kubeconfig = c.kubeconfig_path().to_str().unwrap().to_owned();
    let out = ok(
        helm([
            "install",
            &release,
            chart.to_str().unwrap(),
            "--kubeconfig",
            &kubeconfig,
            "--namespace",
            &system,
        ]),
        None,
    );
    assert!(out.contains("STATUS: deployed"), "{out}");
    let status = ok(
        helm([
            "status",
            &release,
            "--kubeconfig",
            &kubeconfig,
            "--namespace",
            &system,
        ]),
        None,
    );
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
        let (what, out) = output(
            c.kubectl_command(["auth", "can-i", verb, resource, "-n", &app, "--as", &agent]),
            None,
        );
        let answer = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        assert_eq!(
            answer == "yes",
            allowed,
            "{what}: {answer} {}",
            String::from_utf8_lossy(&out.stderr)
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
    let service_account = format!("{release}-operator");
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

    let args = kubectl(
        c,
        &[
            "get",
            "deployment",
            &format!("{release}-operator"),
            "-n",
            &system,
            "-o",
            "jsonpath={range .spec.template.spec.containers[0].args[*]}{@}{\"\\n\"}{end}",
        ],
    );
    let probe_port = stoker_testkit::process::free_port().unwrap();
    let state = dir.join("state");
    let args: Vec<String> = args
        .lines()
        .map(|arg| {
            if arg.starts_with("--probe-address=") {
                format!("--probe-address=127.0.0.1:{probe_port}")
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
    assert!(metrics.contains("stoker_reconcile_total"), "{metrics}");

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

    // A clean uninstall (the CRD stays, as Helm keeps crds/).
    drop(_operator);
    ok(
        helm([
            "uninstall",
            &release,
            "--kubeconfig",
            &kubeconfig,
            "--namespace",
            &system,
        ]),
        None,
    );
    kubectl(c, &["get", "crd", CRD_NAME]);
    for role in [agent_role, legacy_agent_role.as_str()] {
        let (_, out) = output(c.kubectl_command(["get", "clusterrole", role]), None);
        assert!(
            !out.status.success(),
            "the agent ClusterRole {role} outlived the release"
        );
    }
}
