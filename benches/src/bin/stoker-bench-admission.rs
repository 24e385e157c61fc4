//! `stoker-bench-admission`: what the agent injector adds to a pod creation. Run it through
//! `benches/admission-latency.sh`.
//!
//! On the test API server (the one `STOKER_TEST_KUBECONFIG` names, else one it starts), it
//! serves the admission webhooks in-process (`stoker_k8s::webhook`, the operator's own server,
//! with its self-managed certificate) and registers the mutating webhook by URL, with an object
//! selector `stoker-bench/admit=yes`. It then creates `PODS` gateway pods asking for the agent,
//! one at a time, alternating pods with that label (the API server calls the webhook, which
//! lists the namespace's GatewaySyncs and returns the patch) and pods without it (the API server
//! skips the webhook): the second half is the baseline, measured in the same session, so the
//! machine's noise falls on both. It prints p50, p90, p99 and max of the creation latency seen
//! by the client for both, and the webhook's own answer time from its histogram.
//!
//! Environment: `PODS` (default 1000, per kind), `GATEWAYSYNCS` (default 3: GatewaySyncs in the
//! namespace, the pod names one of them), `LISTS` (default 200: GatewaySync lists timed each way,
//! from etcd and from the API server's cache, to show what the webhook's one API call costs).
#![forbid(unsafe_code)]

use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{DeleteParams, ListParams, PostParams};
use serde_json::json;
use stoker_k8s::crd::crd;
use stoker_k8s::metrics::OperatorMetrics;
use stoker_k8s::webhook::{self, CertificateSource, MUTATE_PATH, SelfSigned, WebhookConfig};
use stoker_testkit::kube_api::{cluster, install_crypto_provider};

fn setting(name: &str, default: usize) -> Result<usize> {
    match std::env::var(name) {
        Ok(value) => value.parse().with_context(|| format!("{name}={value:?}")),
        Err(_) => Ok(default),
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    install_crypto_provider();
    let pods = setting("PODS", 1000)?;
    let gateway_syncs = setting("GATEWAYSYNCS", 3)?;
    let c = cluster()?;
    c.apply_crd(&crd(), "stoker-bench", Duration::from_secs(30))
        .await?;
    let client = c.client()?;
    let ns = c.namespace("bench-admission").await?;
    for n in 0..gateway_syncs {
        stoker_benches::create_gateway_sync(
            &client,
            &ns,
            &format!("site-{n}"),
            "https://git.example/plant.git",
        )
        .await?;
    }
    let metrics = OperatorMetrics::new();
    let (_stop, shutdown) = tokio::sync::watch::channel(false);
    let port = stoker_testkit::process::free_port()?;
    register(&client, &ns, port).await?;
    let setup = SelfSigned {
        namespace: ns.clone(),
        secret: "bench-webhook-tls".to_owned(),
        names: ["127.0.0.1".to_owned()].into(),
        mutating_configuration: Some(format!("{ns}-bench")),
        validating_configuration: None,
        lifetimes: Default::default(),
    };
    let config = WebhookConfig::new(
        format!("127.0.0.1:{port}").parse()?,
        CertificateSource::SelfSigned(setup),
    );
    let server = webhook::start(client.clone(), config, metrics.clone(), shutdown).await?;
    server.serving().await;
    let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
    wait_admitting(&api).await?;

    // What the webhook's one API call costs, both ways the API server can answer it.
    let lists = setting("LISTS", 200)?;
    let (mut quorum, mut cached) = time_lists(&client, &ns, lists).await?;

    eprintln!("==> creating {pods} pods of each kind, alternating");
    let (mut with, mut without) = (Vec::new(), Vec::new());
    for i in 0..pods {
        with.push(create(&api, &format!("w-{i}"), true).await?);
        without.push(create(&api, &format!("b-{i}"), false).await?);
    }
    println!("| pods per kind | kind | p50 | p90 | p99 | max |");
    println!("|---|---|---|---|---|---|");
    print_row(pods, "through the injector", &mut with);
    print_row(pods, "webhook not called (baseline)", &mut without);
    print_row(lists, "GatewaySync list, consistent (etcd)", &mut quorum);
    print_row(
        lists,
        "GatewaySync list, API server cache (resourceVersion=0)",
        &mut cached,
    );
    println!();
    println!(
        "webhook answer time (server side, from stoker_webhook_admission_duration_seconds): {}",
        server_side(&metrics)?
    );
    Ok(())
}

/// Times `n` lists of the namespace's GatewaySyncs read from etcd (a consistent read) and `n`
/// served from the API server's watch cache, alternating.
async fn time_lists(
    client: &kube::Client,
    ns: &str,
    n: usize,
) -> Result<(Vec<Duration>, Vec<Duration>)> {
    let api: Api<stoker_k8s::GatewaySync> = Api::namespaced(client.clone(), ns);
    let (mut quorum, mut cached) = (Vec::new(), Vec::new());
    for _ in 0..n {
        let started = Instant::now();
        api.list(&ListParams::default()).await?;
        quorum.push(started.elapsed());
        let started = Instant::now();
        api.list(&ListParams::default().match_any()).await?;
        cached.push(started.elapsed());
    }
    Ok((quorum, cached))
}

async fn register(client: &kube::Client, ns: &str, port: u16) -> Result<()> {
    let configuration: MutatingWebhookConfiguration = serde_json::from_value(json!({
        "metadata": {"name": format!("{ns}-bench")},
        "webhooks": [{
            "name": "pod-inject.stoker.io", "admissionReviewVersions": ["v1"],
            "sideEffects": "None", "failurePolicy": "Fail", "timeoutSeconds": 10,
            "reinvocationPolicy": "IfNeeded",
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns}},
            "objectSelector": {"matchLabels": {"stoker-bench/admit": "yes"}},
            "clientConfig": {"url": format!("https://127.0.0.1:{port}{MUTATE_PATH}")},
            "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"],
                       "resources": ["pods"]}]
        }]
    }))?;
    Api::<MutatingWebhookConfiguration>::all(client.clone())
        .create(&PostParams::default(), &configuration)
        .await?;
    Ok(())
}

fn pod(name: &str, admitted: bool) -> Result<Pod> {
    let labels = if admitted {
        json!({"stoker-bench/admit": "yes"})
    } else {
        json!({})
    };
    Ok(serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": labels,
                     "annotations": {"stoker.io/inject": "true", "stoker.io/cr-name": "site-0"}},
        "spec": {
            "containers": [{"name": "gateway", "image": "inductiveautomation/ignition:8.3",
                "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
            "volumes": [{"name": "data", "emptyDir": {}}]
        }
    }))?)
}

/// Creates one pod; returns how long the API server took. Checks that a pod sent through the
/// webhook got the agent (a measurement of a webhook that did nothing would be meaningless).
async fn create(api: &Api<Pod>, name: &str, admitted: bool) -> Result<Duration> {
    let object = pod(name, admitted)?;
    let started = Instant::now();
    let stored = api.create(&PostParams::default(), &object).await?;
    let took = started.elapsed();
    let injected = stored
        .spec
        .and_then(|s| s.init_containers)
        .is_some_and(|c| c.iter().any(|c| c.name == "stoker-agent"));
    if injected != admitted {
        bail!("pod {name}: injected={injected}, expected {admitted}");
    }
    Ok(took)
}

async fn wait_admitting(api: &Api<Pod>) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match api
            .create(&PostParams::default(), &pod("probe", true)?)
            .await
        {
            Ok(_) => {
                api.delete("probe", &DeleteParams::default()).await?;
                return Ok(());
            }
            Err(error) if Instant::now() > deadline => {
                bail!("the API server never admitted through the webhook: {error}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

fn print_row(pods: usize, kind: &str, samples: &mut [Duration]) {
    samples.sort();
    let at = |q: f64| {
        let index = ((samples.len() as f64 - 1.0) * q).round() as usize;
        format!("{:.1} ms", samples[index].as_secs_f64() * 1000.0)
    };
    println!(
        "| {pods} | {kind} | {} | {} | {} | {} |",
        at(0.5),
        at(0.9),
        at(0.99),
        at(1.0)
    );
}

/// The mean of the webhook's own answer time for pods, from its histogram.
fn server_side(metrics: &OperatorMetrics) -> Result<String> {
    let text = metrics
        .encode()
        .map_err(|_| anyhow::anyhow!("encoding metrics"))?;
    let value = |suffix: &str| {
        text.lines()
            .find(|l| {
                l.starts_with(&format!(
                    "stoker_webhook_admission_duration_seconds_{suffix}"
                )) && l.contains("mutate-v1-pod")
            })
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
    };
    match (value("sum"), value("count")) {
        (Some(sum), Some(count)) if count > 0.0 => Ok(format!(
            "mean {:.2} ms over {count} requests",
            sum / count * 1000.0
        )),
        _ => Ok("not recorded".to_owned()),
    }
}
