//! The generated CRD against a real kube-apiserver (stoker-testkit): it is accepted and
//! established, the API server applies the schema's defaults and enforces its validation (enums,
//! ranges, required fields, the CEL rule on `spec.git.auth`) and accepts what stoker-operator
//! v0.5.1's CRD accepted (any polling interval, a patch without `file`), the status subresource
//! takes what the aggregation computes, `kubectl get -o wide` shows the printer columns and
//! `kubectl explain` the descriptions.

use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::json;
use stoker_k8s::GatewaySync;
use stoker_k8s::aggregate::{AggregateInput, Revision, aggregate, record_resolution};
use stoker_testkit::kube_api::Cluster;

use crate::controller_support::with_crd;

fn document(name: &str, spec: serde_json::Value) -> GatewaySync {
    serde_json::from_value(json!({
        "apiVersion": "stoker.io/v1alpha1",
        "kind": "GatewaySync",
        "metadata": {"name": name},
        "spec": spec
    }))
    .unwrap()
}

fn minimal_spec() -> serde_json::Value {
    json!({
        "git": {"repo": "https://git.example/scada.git", "ref": "main"},
        "sync": {"profiles": {"standard": {"mappings": [
            {"source": "services/{{.GatewayName}}/projects", "destination": "projects"}
        ]}}}
    })
}

fn kubectl(c: &Cluster, args: &[&str]) -> String {
    let out = c.kubectl(args).unwrap();
    assert!(
        out.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_api_server_applies_the_defaults() {
    let c = with_crd().await;
    let ns = c.namespace("gs-defaults").await.unwrap();
    let api: Api<GatewaySync> = Api::namespaced(c.client().unwrap(), &ns);
    // Sent as raw JSON, so the defaults come from the API server, not from serde.
    let raw: Api<kube::core::DynamicObject> = Api::namespaced_with(
        c.client().unwrap(),
        &ns,
        &kube::core::ApiResource::erase::<GatewaySync>(&()),
    );
    let object: kube::core::DynamicObject = serde_json::from_value(json!({
        "apiVersion": "stoker.io/v1alpha1", "kind": "GatewaySync",
        "metadata": {"name": "defaults"},
        "spec": minimal_spec()
    }))
    .unwrap();
    raw.create(&PostParams::default(), &object).await.unwrap();
    let stored = raw.get("defaults").await.unwrap();
    let spec = &stored.data["spec"];
    assert_eq!(spec["polling"], json!({"enabled": true, "interval": "60s"}));
    assert_eq!(spec["gateway"], json!({"port": 8088, "tls": false}));
    assert_eq!(spec["paused"], false);
    assert_eq!(
        spec["sync"]["defaults"],
        json!({
            "designerSessionPolicy": "proceed",
            "excludePatterns": ["**/.git/**", "**/.gitkeep"],
            "syncPeriod": 30
        })
    );
    // The typed client reads the same object.
    let typed = api.get("defaults").await.unwrap();
    assert_eq!(typed.spec.sync.defaults.sync_period, Some(30));
    let profile = typed.spec.sync.resolve("standard").unwrap();
    assert_eq!(profile.exclude_patterns, ["**/.git/**", "**/.gitkeep"]);
}

/// A change to a valid spec that makes it invalid.
type Mutation = Box<dyn Fn(&mut serde_json::Value)>;

#[tokio::test(flavor = "multi_thread")]
#[allow(clippy::too_many_lines)] // a table of documents the API server must refuse
async fn the_api_server_enforces_the_validation() {
    let c = with_crd().await;
    let ns = c.namespace("gs-invalid").await.unwrap();
    let raw: Api<kube::core::DynamicObject> = Api::namespaced_with(
        c.client().unwrap(),
        &ns,
        &kube::core::ApiResource::erase::<GatewaySync>(&()),
    );
    let cases: Vec<(&str, Mutation, &str)> = vec![
        (
            "two-auth-methods",
            Box::new(|s| {
                s["git"]["auth"] = json!({
                    "token": {"secretRef": {"name": "t", "key": "k"}},
                    "sshKey": {"secretRef": {"name": "s", "key": "k"}}
                })
            }),
            "exactly one of token, sshKey or githubApp",
        ),
        (
            "empty-auth",
            Box::new(|s| s["git"]["auth"] = json!({})),
            "exactly one of token, sshKey or githubApp",
        ),
        (
            "bad-port",
            Box::new(|s| s["gateway"] = json!({"port": 0})),
            "spec.gateway.port",
        ),
        (
            "bad-policy",
            Box::new(|s| s["sync"]["defaults"] = json!({"designerSessionPolicy": "maybe"})),
            "spec.sync.defaults.designerSessionPolicy",
        ),
        (
            "sync-period-too-short",
            Box::new(|s| s["sync"]["defaults"] = json!({"syncPeriod": 4})),
            "spec.sync.defaults.syncPeriod",
        ),
        (
            "sync-period-too-long",
            Box::new(|s| s["sync"]["profiles"]["standard"]["syncPeriod"] = json!(3601)),
            "spec.sync.profiles.standard.syncPeriod",
        ),
        (
            "bad-mapping-type",
            Box::new(|s| {
                s["sync"]["profiles"]["standard"]["mappings"][0]["type"] = json!("folder")
            }),
            "type",
        ),
        (
            "bad-pull-policy",
            Box::new(|s| s["agent"] = json!({"image": {"pullPolicy": "Sometimes"}})),
            "spec.agent.image.pullPolicy",
        ),
        (
            "no-profiles",
            Box::new(|s| s["sync"]["profiles"] = json!({})),
            "spec.sync.profiles",
        ),
        (
            "no-repo",
            Box::new(|s| {
                s["git"].as_object_mut().unwrap().remove("repo");
            }),
            "spec.git.repo",
        ),
        (
            "no-secret-key",
            Box::new(|s| s["git"]["auth"] = json!({"token": {"secretRef": {"name": "t"}}})),
            "spec.git.auth.token.secretRef.key",
        ),
    ];
    for (name, mutate, expected) in cases {
        let mut spec = minimal_spec();
        mutate(&mut spec);
        let object: kube::core::DynamicObject = serde_json::from_value(json!({
            "apiVersion": "stoker.io/v1alpha1", "kind": "GatewaySync",
            "metadata": {"name": name}, "spec": spec
        }))
        .unwrap();
        let error = raw
            .create(&PostParams::default(), &object)
            .await
            .expect_err(name)
            .to_string();
        assert!(error.contains(expected), "{name}: {error}");
    }
    // Good auth variants are accepted.
    for (name, auth) in [
        (
            "token",
            json!({"token": {"secretRef": {"name": "t", "key": "k"}}}),
        ),
        (
            "ssh",
            json!({"sshKey": {"secretRef": {"name": "s", "key": "k"},
                              "knownHosts": {"secretRef": {"name": "s", "key": "kh"}}}}),
        ),
        (
            "app",
            json!({"githubApp": {"appId": 1, "installationId": 2,
                                 "privateKeySecretRef": {"name": "a", "key": "pem"}}}),
        ),
        (
            "app-client-id",
            json!({"githubApp": {"appId": "Iv1.abc", "installationId": 2,
                                 "privateKeySecretRef": {"name": "a", "key": "pem"}}}),
        ),
    ] {
        let mut spec = minimal_spec();
        spec["git"]["auth"] = auth;
        let gs = document(name, spec);
        let api: Api<GatewaySync> = Api::namespaced(c.client().unwrap(), &ns);
        api.create(&PostParams::default(), &gs).await.unwrap();
    }
    // What stoker-operator v0.5.1's CRD accepted is accepted: any polling interval (one that
    // does not parse is the controller's condition), the syncPeriod bounds themselves, and a
    // patch without `file` (a file mapping patches its own file).
    let accepted: Vec<(&str, Mutation)> = vec![
        (
            "words-interval",
            Box::new(|s| s["polling"] = json!({"interval": "5 minutes"})),
        ),
        (
            "empty-interval",
            Box::new(|s| s["polling"] = json!({"interval": ""})),
        ),
        (
            "sync-period-bounds",
            Box::new(|s| {
                s["sync"]["defaults"] = json!({"syncPeriod": 5});
                s["sync"]["profiles"]["standard"]["syncPeriod"] = json!(3600);
            }),
        ),
        (
            "patch-without-file",
            Box::new(|s| {
                s["sync"]["profiles"]["standard"]["mappings"] = json!([{
                    "source": "config/system.json", "destination": "config/system.json",
                    "type": "file", "patches": [{"set": {"SystemName": "{{.GatewayName}}"}}]
                }])
            }),
        ),
    ];
    for (name, mutate) in accepted {
        let mut spec = minimal_spec();
        mutate(&mut spec);
        let object: kube::core::DynamicObject = serde_json::from_value(json!({
            "apiVersion": "stoker.io/v1alpha1", "kind": "GatewaySync",
            "metadata": {"name": name}, "spec": spec.clone()
        }))
        .unwrap();
        let stored = raw
            .create(&PostParams::default(), &object)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        if let Some(interval) = spec["polling"].get("interval") {
            assert_eq!(
                &stored.data["spec"]["polling"]["interval"], interval,
                "{name}"
            );
        }
        let typed: GatewaySync = serde_json::from_value(serde_json::to_value(&stored).unwrap())
            .unwrap_or_else(|e| panic!("{name} reads back: {e}"));
        let mapping = &typed.spec.sync.profiles["standard"].mappings[0];
        if name == "patch-without-file" {
            assert_eq!(mapping.patches[0].file, None);
            assert_eq!(mapping.patches[0].set["SystemName"], "{{.GatewayName}}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn status_columns_and_explain() {
    let c = with_crd().await;
    let ns = c.namespace("gs-status").await.unwrap();
    let api: Api<GatewaySync> = Api::namespaced(c.client().unwrap(), &ns);
    let mut spec = minimal_spec();
    spec["git"]["auth"] = json!({"sshKey": {"secretRef": {"name": "s", "key": "k"}}});
    let gs = api
        .create(&PostParams::default(), &document("site", spec))
        .await
        .unwrap();

    let now: jiff::Timestamp = "2026-05-01T10:00:00Z".parse().unwrap();
    let revision = Revision {
        reference: "main".to_owned(),
        commit: "89abcdef0123456789abcdef0123456789abcdef".to_owned(),
    };
    let generation = gs.metadata.generation.unwrap();
    let mut status = gs.status.clone().unwrap_or_default();
    record_resolution(&mut status, &revision, generation, now);
    stoker_k8s::conditions::set(
        &mut status.conditions,
        stoker_k8s::validation::profiles_valid_condition(&[], generation, now),
    );
    aggregate(
        &mut status,
        &AggregateInput {
            gs: &gs,
            pods: &[],
            reports: &[],
            resolved: Some(&revision),
            now,
        },
    );
    let patch = json!({
        "apiVersion": "stoker.io/v1alpha1", "kind": "GatewaySync",
        "status": status
    });
    api.patch_status(
        "site",
        &PatchParams::apply("stoker-operator").force(),
        &Patch::Apply(&patch),
    )
    .await
    .unwrap();
    let stored = api.get_status("site").await.unwrap();
    assert_eq!(stored.status.as_ref(), Some(&status));

    let table = kubectl(c, &["get", "gs", "-n", &ns, "-o", "wide"]);
    let mut lines = table.lines();
    let header: Vec<&str> = lines
        .next()
        .unwrap()
        .split("  ")
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    assert_eq!(
        header,
        [
            "NAME",
            "REF",
            "GATEWAYS",
            "READY",
            "STATUS",
            "AGE",
            "COMMIT",
            "PROFILES",
            "LAST SYNC"
        ]
    );
    let row = lines.next().unwrap();
    for cell in [
        "site",
        "main",
        "0/0 synced",
        "False",
        "Waiting for gateways to sync",
        "89abcde",
        "1",
    ] {
        assert!(row.contains(cell), "{cell:?} missing in {row:?}");
    }
    let conditions = kubectl(
        c,
        &[
            "get",
            "gs",
            "site",
            "-n",
            &ns,
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"SSHHostKeyVerification\")].status}",
        ],
    );
    assert_eq!(conditions, "False");

    let explained = kubectl(c, &["explain", "gatewaysync.spec.polling.interval"]);
    assert!(explained.contains("Go duration"), "{explained}");
    let explained = kubectl(
        c,
        &["explain", "gs.spec.sync.profiles.mappings.destination"],
    );
    assert!(explained.contains("gateway data directory"), "{explained}");
}
