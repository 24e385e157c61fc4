//! The admission webhooks as the API server uses them: the real test kube-apiserver calls our
//! HTTPS server (stoker_k8s::webhook) through Mutating/ValidatingWebhookConfigurations that name
//! it by URL, trusting only the caBundle the server's certificate keeper writes into them.
//!
//! Each test registers configurations restricted (by namespace selector) to its own namespace,
//! so tests sharing the API server do not see each other's webhooks.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::controller_support::{CONVERGE, World, spec};
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::json;
use stoker_k8s::metrics::OperatorMetrics;
use stoker_k8s::webhook::{
    self, CertificateSource, Lifetimes, MUTATE_PATH, SelfSigned, VALIDATE_PATH, Webhook,
    WebhookConfig,
};
use tokio::sync::watch;

/// A running admission server registered for one namespace.
struct Admission {
    webhook: Webhook,
    _stop: watch::Sender<bool>,
    secret: String,
}

fn names(namespace: &str) -> (String, String) {
    (
        format!("{namespace}-pods"),
        format!("{namespace}-gatewaysyncs"),
    )
}

/// The two configurations, calling `https://127.0.0.1:port`, with `failure_policy`, and no
/// caBundle: the keeper must provide it.
async fn register(world: &World, port: u16, failure_policy: &str) {
    let (mutating, validating) = names(&world.namespace);
    let selector = json!({"matchExpressions": [{"key": "kubernetes.io/metadata.name",
        "operator": "In", "values": [world.namespace]}]});
    let hook = |name: &str, path: &str, rules: serde_json::Value| {
        json!({
            "name": name, "admissionReviewVersions": ["v1"], "sideEffects": "None",
            "failurePolicy": failure_policy, "timeoutSeconds": 10,
            "namespaceSelector": selector,
            "clientConfig": {"url": format!("https://127.0.0.1:{port}{path}")},
            "rules": [rules],
        })
    };
    let mut pods = hook(
        "pod-inject.stoker.io",
        MUTATE_PATH,
        json!({"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["pods"]}),
    );
    pods["reinvocationPolicy"] = json!("IfNeeded");
    let gatewaysyncs = hook(
        "gatewaysync-validate.stoker.io",
        VALIDATE_PATH,
        json!({"apiGroups": ["stoker.io"], "apiVersions": ["v1alpha1"],
               "operations": ["CREATE", "UPDATE"], "resources": ["gatewaysyncs"]}),
    );
    let m: MutatingWebhookConfiguration = serde_json::from_value(json!({
        "metadata": {"name": mutating}, "webhooks": [pods]}))
    .unwrap();
    let v: ValidatingWebhookConfiguration = serde_json::from_value(json!({
        "metadata": {"name": validating}, "webhooks": [gatewaysyncs]}))
    .unwrap();
    Api::<MutatingWebhookConfiguration>::all(world.client.clone())
        .create(&PostParams::default(), &m)
        .await
        .unwrap();
    Api::<ValidatingWebhookConfiguration>::all(world.client.clone())
        .create(&PostParams::default(), &v)
        .await
        .unwrap();
}

fn setup(world: &World, secret: &str, lifetimes: Lifetimes) -> SelfSigned {
    let (mutating, validating) = names(&world.namespace);
    SelfSigned {
        namespace: world.namespace.clone(),
        secret: secret.to_owned(),
        names: BTreeSet::from(["127.0.0.1".to_owned()]),
        mutating_configuration: Some(mutating),
        validating_configuration: Some(validating),
        lifetimes,
    }
}

/// Starts the webhook server with `config`; it stops when the returned sender is dropped.
async fn serve(world: &World, config: WebhookConfig) -> (Webhook, watch::Sender<bool>) {
    let (stop, shutdown) = watch::channel(false);
    let webhook = webhook::start(
        world.client.clone(),
        config,
        OperatorMetrics::new(),
        shutdown,
    )
    .await
    .unwrap();
    (webhook, stop)
}

/// Starts the webhook server on `listen` with self-signed certificates (`setup`), for `world`'s
/// namespace, looking at its Secret every second.
async fn start_on(world: &World, listen: &str, setup: SelfSigned) -> Admission {
    let secret = setup.secret.clone();
    let mut config = WebhookConfig::new(
        listen.parse().unwrap(),
        CertificateSource::SelfSigned(setup),
    );
    config.poll = Duration::from_secs(1);
    config.namespaces = vec![world.namespace.clone()];
    let (webhook, stop) = serve(world, config).await;
    Admission {
        webhook,
        _stop: stop,
        secret,
    }
}

async fn start(world: &World, setup: SelfSigned) -> Admission {
    start_on(world, "127.0.0.1:0", setup).await
}

/// Registers the webhooks (failure policy `Fail`, so that any TLS or server failure shows) and
/// starts the server; returns once the API server admits through it.
async fn admission(world: &World, lifetimes: Lifetimes) -> Admission {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    register(world, port, "Fail").await;
    let admission = start_on(
        world,
        &format!("127.0.0.1:{port}"),
        setup(world, "stoker-webhook-tls", lifetimes),
    )
    .await;
    wait_admitting(world).await;
    admission
}

/// Waits until a dry-run pod creation passes the (Fail-policy) webhook: the API server trusts
/// the caBundle and reaches the server.
async fn wait_admitting(world: &World) {
    let deadline = Instant::now() + CONVERGE;
    let dry = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    loop {
        let error = match world.pods().create(&dry, &pod("probe", json!({}))).await {
            Ok(_) => return,
            Err(error) => error,
        };
        assert!(
            Instant::now() < deadline,
            "the API server never admitted through the webhook: {error}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A gateway pod as a user writes it.
fn pod(name: &str, annotations: serde_json::Value) -> Pod {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "annotations": annotations},
        "spec": {
            "containers": [{"name": "gateway", "image": "inductiveautomation/ignition:8.3",
                "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
            "volumes": [{"name": "data", "emptyDir": {}}]
        }
    }))
    .unwrap()
}

fn agent(pod: &Pod) -> Option<&k8s_openapi::api::core::v1::Container> {
    pod.spec
        .as_ref()?
        .init_containers
        .as_ref()?
        .iter()
        .find(|c| c.name == "stoker-agent")
}

fn env<'a>(container: &'a k8s_openapi::api::core::v1::Container, name: &str) -> Option<&'a str> {
    container
        .env
        .as_ref()?
        .iter()
        .find(|e| e.name == name)?
        .value
        .as_deref()
}

/// The API server's message for a refused creation.
fn refusal<T: std::fmt::Debug>(result: kube::Result<T>) -> String {
    match result {
        Err(kube::Error::Api(status)) => status.message,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn the_api_server_injects_the_agent_through_the_webhook() {
    let world = World::start("wh-inject").await;
    let _admission = admission(&world, Lifetimes::default()).await;
    world.create_gs("site", spec("main")).await;

    let created = world
        .pods()
        .create(
            &PostParams::default(),
            &pod("site-0", json!({"stoker.io/inject": "true"})),
        )
        .await
        .unwrap();
    let stored = world.pods().get("site-0").await.unwrap();
    assert_eq!(created.spec, stored.spec);
    let sidecar = agent(&stored).expect("the stored pod has the agent");
    assert_eq!(sidecar.restart_policy.as_deref(), Some("Always"));
    assert_eq!(env(sidecar, "CR_NAME"), Some("site"));
    assert_eq!(env(sidecar, "DATA_PATH"), Some("/data"));
    let annotations = stored.metadata.annotations.clone().unwrap();
    assert_eq!(annotations["stoker.io/injected"], "true");
    assert_eq!(annotations["stoker.io/cr-name"], "site", "written back");
    assert_eq!(stored.metadata.labels.unwrap()["stoker.io/agent"], "true");

    // A pod that did not ask is stored as written.
    let plain = world
        .pods()
        .create(&PostParams::default(), &pod("other", json!({})))
        .await
        .unwrap();
    assert!(agent(&plain).is_none());
    assert!(plain.metadata.labels.is_none());
}

#[tokio::test]
async fn each_refusal_reaches_the_user_with_the_injectors_message() {
    let world = World::start("wh-deny").await;
    let _admission = admission(&world, Lifetimes::default()).await;
    let ns = world.namespace.clone();
    let create = |name: &'static str, annotations: serde_json::Value| {
        let pods = world.pods();
        async move {
            pods.create(&PostParams::default(), &pod(name, annotations))
                .await
        }
    };
    let prefix = "admission webhook \"pod-inject.stoker.io\" denied the request: ";

    let none = refusal(create("a", json!({"stoker.io/inject": "true"})).await);
    assert_eq!(
        none,
        format!("{prefix}no GatewaySync CR found in namespace '{ns}'")
    );

    world.create_gs("one", spec("main")).await;
    let mut paused = spec("main");
    paused["paused"] = json!(true);
    world.create_gs("two", paused).await;
    let several = refusal(create("b", json!({"stoker.io/inject": "true"})).await);
    assert!(
        several.starts_with(&format!(
            "{prefix}multiple GatewaySync CRs in namespace '{ns}': [one, two]"
        )),
        "{several}"
    );
    let missing = refusal(
        create(
            "c",
            json!({"stoker.io/inject": "true", "stoker.io/cr-name": "nope"}),
        )
        .await,
    );
    assert_eq!(
        missing,
        format!("{prefix}GatewaySync 'nope' not found in namespace '{ns}'")
    );
    let is_paused = refusal(
        create(
            "d",
            json!({"stoker.io/inject": "true", "stoker.io/cr-name": "two"}),
        )
        .await,
    );
    assert_eq!(is_paused, format!("{prefix}GatewaySync 'two' is paused"));
    let profile = refusal(
        create(
            "e",
            json!({"stoker.io/inject": "true", "stoker.io/cr-name": "one",
                   "stoker.io/profile": "ghost"}),
        )
        .await,
    );
    assert_eq!(
        profile,
        format!("{prefix}profile 'ghost' not found in GatewaySync 'one'")
    );
    assert!(
        world
            .pods()
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

#[tokio::test]
async fn a_statefulset_shaped_pod_gets_the_agent_on_its_ignition_data_volume() {
    let world = World::start("wh-sts").await;
    let _admission = admission(&world, Lifetimes::default()).await;
    world.create_gs("plant", spec("main")).await;
    // What the StatefulSet controller creates from Ignition's chart: a PVC-backed
    // `ignition-data` volume, an owner reference, the pod-name label.
    let pod: Pod = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": "ignition-0",
            "annotations": {"stoker.io/inject": "true", "stoker.io/cr-name": "plant"},
            "labels": {"app.kubernetes.io/name": "ignition",
                       "statefulset.kubernetes.io/pod-name": "ignition-0"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "StatefulSet",
                "name": "ignition", "uid": "00000000-0000-0000-0000-000000000001",
                "controller": true, "blockOwnerDeletion": true}]
        },
        "spec": {
            "hostname": "ignition-0", "subdomain": "ignition",
            "containers": [{"name": "ignition", "image": "inductiveautomation/ignition:8.3",
                "volumeMounts": [{"name": "ignition-data",
                                  "mountPath": "/usr/local/bin/ignition/data"}]}],
            "volumes": [{"name": "ignition-data",
                         "persistentVolumeClaim": {"claimName": "ignition-data-ignition-0"}}]
        }
    }))
    .unwrap();
    world
        .pods()
        .create(&PostParams::default(), &pod)
        .await
        .unwrap();
    let stored = world.pods().get("ignition-0").await.unwrap();
    let agent = agent(&stored).unwrap();
    assert_eq!(
        env(agent, "DATA_PATH"),
        Some("/usr/local/bin/ignition/data")
    );
    let mounts = agent.volume_mounts.as_ref().unwrap();
    assert!(
        mounts
            .iter()
            .any(|m| m.name == "ignition-data" && m.mount_path == "/usr/local/bin/ignition/data"),
        "{mounts:?}"
    );
    let containers = &stored.spec.as_ref().unwrap().containers;
    assert_eq!(containers.len(), 1, "the gateway container is untouched");
    assert_eq!(containers[0].name, "ignition");
}

#[tokio::test]
async fn an_invalid_gatewaysync_is_refused_at_apply_with_the_profiles_valid_message() {
    let world = World::start("wh-validate").await;
    let _admission = admission(&world, Lifetimes::default()).await;
    let mut bad = spec("main");
    bad["sync"]["profiles"]["default"]["mappings"][0]["destination"] = json!("../etc");
    bad["git"]["repo"] = json!(world.repo_url);
    let object: stoker_k8s::GatewaySync = serde_json::from_value(json!({
        "apiVersion": "stoker.io/v1alpha1", "kind": "GatewaySync",
        "metadata": {"name": "bad"}, "spec": bad
    }))
    .unwrap();
    let expected = stoker_k8s::validation::summary(&stoker_k8s::validation::validate(
        &object.spec,
        &Default::default(),
    ));
    let message = refusal(world.gs_api().create(&PostParams::default(), &object).await);
    assert_eq!(
        message,
        format!(
            "admission webhook \"gatewaysync-validate.stoker.io\" denied the request: {expected}"
        )
    );

    // A Secret that does not exist yet is a warning, which kubectl prints; the object is stored.
    let mut later = spec("main");
    later["git"]["repo"] = json!(world.repo_url);
    later["git"]["auth"] = json!({"token": {"secretRef": {"name": "git-token", "key": "token"}}});
    let manifest = json!({"apiVersion": "stoker.io/v1alpha1", "kind": "GatewaySync",
        "metadata": {"name": "later", "namespace": world.namespace}, "spec": later});
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), manifest.to_string()).unwrap();
    // kubectl blocks: off the test's single runtime thread, which also runs the webhook.
    let (cluster, path) = (world.cluster, file.path().display().to_string());
    let output = tokio::task::spawn_blocking(move || cluster.kubectl(["apply", "-f", &path]))
        .await
        .unwrap()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("Warning: spec.git.auth.token.secretRef: Secret \"git-token\" not found"),
        "{stderr}"
    );
    world.gs_api().get("later").await.unwrap();
}

/// Serving certificates valid 12 s (renewed every ~8 s) and an authority valid 36 s (staged
/// after ~24 s, signing 2 s later): during 40 s of pod creations, several serving certificates
/// and one new authority take over, and the API server (policy `Fail`) admits every pod.
#[tokio::test]
async fn certificates_rotate_while_pods_are_created_without_a_failed_admission() {
    let world = World::start("wh-rotate").await;
    let lifetimes = Lifetimes {
        authority: Duration::from_secs(36),
        serving: Duration::from_secs(12),
        staging: Duration::from_secs(2),
    };
    let admission = admission(&world, lifetimes).await;
    world.create_gs("site", spec("main")).await;
    let mut served = BTreeSet::new();
    let mut authorities = BTreeSet::new();
    let secrets = world.secrets();
    let end = Instant::now() + Duration::from_secs(40);
    let mut created = 0;
    while Instant::now() < end {
        let name = format!("p-{created}");
        let result = world
            .pods()
            .create(
                &PostParams::default(),
                &pod(&name, json!({"stoker.io/inject": "true"})),
            )
            .await;
        let stored = result.unwrap_or_else(|e| panic!("pod {name} refused: {e}"));
        assert!(agent(&stored).is_some(), "pod {name} has no agent");
        created += 1;
        served.insert(admission.webhook.serving_certificate().unwrap());
        let secret = secrets.get(&admission.secret).await.unwrap();
        let bundle = secret.data.unwrap()["ca.crt"].clone();
        authorities.insert(String::from_utf8(bundle.0).unwrap());
        // Cleaning up keeps the namespace small; deletion is not admitted by the webhook.
        world
            .pods()
            .delete(&name, &DeleteParams::default())
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(created > 50, "only {created} pods in 40 s");
    assert!(served.len() >= 4, "{} serving certificates", served.len());
    assert!(authorities.len() >= 2, "{} bundles", authorities.len());
}

#[tokio::test]
async fn replicas_share_one_secret_and_serve_the_same_certificate() {
    let world = World::start("wh-ha").await;
    let setup = setup(&world, "shared-tls", Lifetimes::default());
    let (a, b) = tokio::join!(start(&world, setup.clone()), start(&world, setup));
    a.webhook.serving().await;
    b.webhook.serving().await;
    let deadline = Instant::now() + CONVERGE;
    while a.webhook.serving_certificate() != b.webhook.serving_certificate() {
        assert!(Instant::now() < deadline, "the replicas never agreed");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // And they keep agreeing: nobody rewrites the Secret in a loop.
    let secrets = world.secrets();
    let version = secrets
        .get(&a.secret)
        .await
        .unwrap()
        .metadata
        .resource_version;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        secrets
            .get(&b.secret)
            .await
            .unwrap()
            .metadata
            .resource_version,
        version
    );
    assert_eq!(
        a.webhook.serving_certificate(),
        b.webhook.serving_certificate()
    );
}

/// With the operator down and `failurePolicy: Ignore` (the chart's default), a gateway pod is
/// still created — without the agent — and the GatewaySync says so.
#[tokio::test]
async fn with_the_operator_down_pods_are_admitted_and_reported_missing_the_sidecar() {
    let world = World::start("wh-down").await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    register(&world, port, "Ignore").await;
    world.create_gs("site", spec("main")).await;
    let stored = world
        .pods()
        .create(
            &PostParams::default(),
            &pod(
                "site-0",
                json!({"stoker.io/inject": "true", "stoker.io/cr-name": "site"}),
            ),
        )
        .await
        .unwrap();
    assert!(agent(&stored).is_none());
    world.set_phase("site-0", "Running").await;
    let gs = world
        .wait_condition("site", "SidecarInjected", "False")
        .await;
    let (_, reason, message) =
        crate::controller_support::condition(&gs, "SidecarInjected").unwrap();
    assert_eq!(reason, "SidecarMissing");
    assert_eq!(message, "1 gateway(s) missing stoker-agent sidecar");
    // The pod is named in its own entry and in a MissingSidecar Event, once.
    let (_, reason, message) =
        crate::controller_support::condition(&gs, "AllGatewaysSynced").unwrap();
    assert_eq!(
        (reason.as_str(), message.as_str()),
        ("SyncInProgress", "0/1 synced (1 missing sidecar)")
    );
    let notes = stoker_testkit::kube_api::wait_until(
        "a MissingSidecar Event",
        std::time::Duration::from_secs(10),
        || async {
            let notes =
                crate::controller_support::event_notes(&world, "site", "MissingSidecar").await;
            (!notes.is_empty()).then_some(notes)
        },
    )
    .await;
    assert!(
        notes[0].starts_with("Pod site-0 has inject annotation but no stoker-agent sidecar"),
        "{notes:?}"
    );
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    let counts = crate::controller_support::event_counts(&world, "site").await;
    assert_eq!(counts.get("MissingSidecar"), Some(&1), "{counts:?}");
}

/// A self-signed authority and a serving certificate for 127.0.0.1 it signed, as PEM:
/// (ca, cert, key), as cert-manager would put them in its Secret.
fn issued() -> (String, String, String) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    (ca_cert.pem(), cert.pem(), key.serialize_pem())
}

/// The certificate a TLS client trusting `ca` is shown at `address` (DER), after a successful
/// handshake and a `/healthz` answered 200.
async fn presented(address: std::net::SocketAddr, ca: &str) -> Vec<u8> {
    use rustls::pki_types::pem::PemObject as _;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(ca.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(address).await.unwrap();
    let name = rustls::pki_types::ServerName::IpAddress(address.ip().into());
    let mut tls = connector.connect(name, tcp).await.unwrap();
    tls.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    tls.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    tls.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}

/// With cert-manager, the operator serves the mounted Secret's files and picks up a renewed
/// certificate without a restart; nothing is written to the API server.
#[tokio::test]
async fn certificate_files_are_served_and_reloaded_when_they_change() {
    let world = World::start("wh-files").await;
    let dir = tempfile::tempdir().unwrap();
    let write = |cert: &str, key: &str| {
        std::fs::write(dir.path().join("tls.crt"), cert).unwrap();
        std::fs::write(dir.path().join("tls.key"), key).unwrap();
    };
    let (ca, cert, key) = issued();
    write(&cert, &key);
    let mut config = WebhookConfig::new(
        "127.0.0.1:0".parse().unwrap(),
        CertificateSource::Files(dir.path().to_owned()),
    );
    config.poll = Duration::from_millis(200);
    let (webhook, _stop) = serve(&world, config).await;
    webhook.serving().await;
    let der = |pem: &str| {
        use rustls::pki_types::pem::PemObject as _;
        rustls::pki_types::CertificateDer::from_pem_slice(pem.as_bytes())
            .unwrap()
            .to_vec()
    };
    assert_eq!(presented(webhook.address(), &ca).await, der(&cert));

    // cert-manager renews: a new authority and certificate land in the directory.
    let (ca2, cert2, key2) = issued();
    write(&cert2, &key2);
    let deadline = Instant::now() + CONVERGE;
    while webhook.serving_certificate().as_deref() != Some(cert2.as_str()) {
        assert!(Instant::now() < deadline, "the new files were never loaded");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(presented(webhook.address(), &ca2).await, der(&cert2));

    // A half-written pair (a key that does not match) keeps the last good one served.
    let (_, cert3, _) = issued();
    write(&cert3, &key2);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        webhook.serving_certificate().as_deref(),
        Some(cert2.as_str())
    );
    let secrets = world.secrets();
    assert!(
        secrets
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
}
