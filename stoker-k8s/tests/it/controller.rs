//! The reconciler against a real kube-apiserver + etcd (stoker-testkit) and a real Git server
//! on loopback (git's own http-backend). Each test gets its own namespace and its own
//! controller, watching only that namespace. Pods are objects whose phase the test sets (no
//! kubelet); agents' status ConfigMaps are written by the test exactly as the agent writes them
//! (`GatewayStatusReport`).

use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::api::rbac::v1::RoleBinding;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::{Api, ResourceExt};
use serde_json::json;
use stoker_k8s::crd::{RefResolutionStatus, SyncStatus};
use stoker_k8s::metadata::{AgentMetadata, metadata_configmap_name};

use crate::controller_support::{
    World, commit_is, condition, event_counts, event_notes, event_reasons, has, spec, summary_is,
};
use stoker_testkit::kube_api::wait_until;

async fn metadata(world: &World, cr: &str) -> AgentMetadata {
    let name = metadata_configmap_name(cr);
    let api = world.configmaps();
    let configmap = wait_until(
        "the metadata ConfigMap exists",
        crate::controller_support::CONVERGE,
        || async { api.get_opt(&name).await.unwrap() },
    )
    .await;
    AgentMetadata::from_configmap(&configmap).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolves_branch_lightweight_tag_and_annotated_tag_without_cloning() {
    let world = World::start("refs").await;
    let first = world.repo.rev_parse("main").unwrap();
    world.repo.tag("v1.0.0", &first).unwrap();
    let second = world
        .repo
        .commit("main", &[("projects/demo/b.json", b"{}")], "second")
        .unwrap();
    world
        .repo
        .annotated_tag("v2.0.0", &second, "release 2")
        .unwrap();

    world.create_gs("branch", spec("main")).await;
    world.create_gs("light", spec("v1.0.0")).await;
    world.create_gs("annotated", spec("v2.0.0")).await;

    let branch = world
        .wait_gs("branch", "main resolves", |gs| commit_is(gs, &second))
        .await;
    let light = world
        .wait_gs("light", "v1.0.0 resolves", |gs| commit_is(gs, &first))
        .await;
    // Peeled: the commit, never the tag object.
    let annotated = world
        .wait_gs("annotated", "v2.0.0 resolves to its commit", |gs| {
            commit_is(gs, &second)
        })
        .await;
    for gs in [&branch, &light, &annotated] {
        let status = gs.status.as_ref().unwrap();
        assert!(has(gs, "RefResolved", "True"), "{:?}", status.conditions);
        assert_eq!(
            status.ref_resolution_status,
            Some(RefResolutionStatus::Resolved)
        );
        assert_eq!(status.profile_count, 1);
        assert_eq!(
            status.last_sync_commit_short.as_deref(),
            Some(&status.last_sync_commit.as_deref().unwrap()[..7])
        );
        assert!(status.last_sync_time.is_some());
        assert!(gs.finalizers().contains(&"stoker.io/finalizer".to_owned()));
    }
    assert_eq!(
        light.status.as_ref().unwrap().last_sync_ref.as_deref(),
        Some("v1.0.0")
    );

    // What agents read.
    let meta = metadata(&world, "annotated").await;
    assert_eq!(meta.commit, second);
    assert_eq!(meta.reference, "v2.0.0");
    assert_eq!(meta.repo, world.repo_url);
    assert!(!meta.paused);
    let configmap = world
        .configmaps()
        .get(&metadata_configmap_name("annotated"))
        .await
        .unwrap();
    let owner = &configmap.owner_references()[0];
    assert_eq!(owner.kind, "GatewaySync");
    assert_eq!(owner.name, "annotated");

    let reasons = event_reasons(&world, "branch").await;
    assert!(reasons.contains("RefResolved"), "{reasons:?}");
    // Once, however many passes followed the first resolution.
    let counts = event_counts(&world, "branch").await;
    assert_eq!(counts.get("RefResolved"), Some(&1), "{counts:?}");

    // A new commit on the branch: lastSync* follow, lastSyncTime changes, RefUpdated.
    let before = branch.status.as_ref().unwrap().last_sync_time.clone();
    // `lastSyncTime` has one-second resolution: let the clock move past the first resolution's
    // second, so that "it changes with the commit" is observable.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let third = world
        .repo
        .commit("main", &[("projects/demo/c.json", b"{}")], "third")
        .unwrap();
    let moved = world
        .wait_gs("branch", "main moves to the third commit", |gs| {
            commit_is(gs, &third)
        })
        .await;
    assert_ne!(moved.status.as_ref().unwrap().last_sync_time, before);
    let meta = metadata(&world, "branch").await;
    let meta = if meta.commit == third {
        meta
    } else {
        wait_until("the metadata follows", Duration::from_secs(10), || async {
            let m = metadata(&world, "branch").await;
            (m.commit == third).then_some(m)
        })
        .await
    };
    assert_eq!(meta.commit, third);
    let reasons = wait_until("a RefUpdated Event", Duration::from_secs(10), || async {
        let r = event_reasons(&world, "branch").await;
        r.contains("RefUpdated").then_some(r)
    })
    .await;
    assert!(reasons.contains("RefUpdated"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_ref_is_ref_resolved_false_naming_the_ref_and_repository() {
    let world = World::start("badref").await;
    world.create_gs("bad", spec("no-such-branch")).await;
    let gs = world.wait_condition("bad", "RefResolved", "False").await;
    let (_, reason, message) = condition(&gs, "RefResolved").unwrap();
    assert_eq!(reason, "RefResolutionFailed");
    // v0.5.1's wording: when it is tried again, then the error.
    assert!(
        message.starts_with("Ref resolution failed (retry in "),
        "{message}"
    );
    assert!(message.contains("no-such-branch"), "{message}");
    assert!(message.contains(&world.repo_url), "{message}");
    assert_eq!(
        gs.status.as_ref().unwrap().ref_resolution_status,
        Some(RefResolutionStatus::Error)
    );
    assert!(has(&gs, "Ready", "False"));
    // Nothing resolved yet: no metadata for agents.
    assert!(
        world
            .configmaps()
            .get_opt(&metadata_configmap_name("bad"))
            .await
            .unwrap()
            .is_none()
    );
    let reasons = wait_until(
        "a RefResolutionFailed Event",
        Duration::from_secs(10),
        || async {
            let r = event_reasons(&world, "bad").await;
            r.contains("RefResolutionFailed").then_some(r)
        },
    )
    .await;
    assert!(reasons.contains("RefResolutionFailed"));
    // Regression: the Event was published at every failed reconciliation (its dedup compared
    // two different strings). Polling every 2 s, a few more failures come and go: still one.
    let api = world.gs_api();
    let generation_before = world.get_gs("bad").await.metadata.resource_version.clone();
    for i in 0..3 {
        // Touching the resource makes the controller look again at once, too.
        api.patch(
            "bad",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"touch": i.to_string()}}})),
        )
        .await
        .unwrap();
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    assert_ne!(
        world.get_gs("bad").await.metadata.resource_version,
        generation_before
    );
    let counts = event_counts(&world, "bad").await;
    assert_eq!(counts.get("RefResolutionFailed"), Some(&1), "{counts:?}");
    let notes = event_notes(&world, "bad", "RefResolutionFailed").await;
    assert!(notes[0].starts_with("Ref resolution failed: "), "{notes:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_secret_is_a_clear_condition() {
    let world = World::start("secret").await;
    let mut with_token = spec("main");
    with_token["git"]["auth"] =
        json!({"token": {"secretRef": {"name": "git-token", "key": "token"}}});
    world.create_gs("needs-secret", with_token).await;
    let gs = world
        .wait_gs("needs-secret", "ProfilesValid=False", |gs| {
            has(gs, "ProfilesValid", "False") && has(gs, "RefResolved", "False")
        })
        .await;
    let (_, _, message) = condition(&gs, "ProfilesValid").unwrap();
    assert!(message.contains("git-token"), "{message}");
    let (_, _, resolve_message) = condition(&gs, "RefResolved").unwrap();
    assert!(resolve_message.contains("git-token"), "{resolve_message}");
    assert!(has(&gs, "Ready", "False"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_the_resource_removes_its_configmaps_through_the_finalizer() {
    let world = World::start("final").await;
    world.create_gs("doomed", spec("main")).await;
    let pod = world.create_pod("gw-0", "doomed", &[], &[], true).await;
    let commit = world.repo.rev_parse("main").unwrap();
    metadata(&world, "doomed").await;
    world
        .report("doomed", &pod, &commit, "main", SyncStatus::Synced, None)
        .await;
    // A status ConfigMap of another resource must survive.
    world.create_gs("kept", spec("main")).await;
    let other = world.create_pod("gw-1", "kept", &[], &[], true).await;
    world
        .report("kept", &other, &commit, "main", SyncStatus::Synced, None)
        .await;

    world
        .gs_api()
        .delete("doomed", &DeleteParams::default())
        .await
        .unwrap();
    let api = world.gs_api();
    wait_until(
        "the resource is gone",
        crate::controller_support::CONVERGE,
        || async { api.get_opt("doomed").await.unwrap().is_none().then_some(()) },
    )
    .await;
    let configmaps = world.configmaps();
    let names: Vec<String> = configmaps
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|c: &ConfigMap| c.name_any())
        .collect();
    assert!(
        !names.iter().any(|n| n.contains("doomed")),
        "left behind: {names:?}"
    );
    assert!(
        names.iter().any(|n| n.starts_with("stoker-status-kept")),
        "{names:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_tells_agents_to_stop_and_is_not_ready() {
    let world = World::start("paused").await;
    world.create_gs("site", spec("main")).await;
    world.wait_condition("site", "RefResolved", "True").await;
    assert!(!metadata(&world, "site").await.paused);
    world
        .gs_api()
        .patch(
            "site",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"paused": true}})),
        )
        .await
        .unwrap();
    let gs = world
        .wait_gs("site", "Ready=False because paused", |gs| {
            condition(gs, "Ready").is_some_and(|(s, r, _)| s == "False" && r == "Paused")
        })
        .await;
    assert!(gs.spec.paused);
    assert_eq!(condition(&gs, "Ready").unwrap().2, "Reconciliation paused");
    let notes = wait_until("a Paused Event", Duration::from_secs(10), || async {
        let notes = event_notes(&world, "site", "Paused").await;
        (!notes.is_empty()).then_some(notes)
    })
    .await;
    assert_eq!(notes, ["Reconciliation paused"]);
    wait_until(
        "the metadata says paused",
        Duration::from_secs(15),
        || async { metadata(&world, "site").await.paused.then_some(()) },
    )
    .await;
    // While paused the ref is not followed.
    let before = world.repo.rev_parse("main").unwrap();
    world
        .repo
        .commit("main", &[("projects/demo/new.json", b"{}")], "while paused")
        .unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(commit_is(&world.get_gs("site").await, &before));
    assert_eq!(metadata(&world, "site").await.commit, before);
    // Several reconciliations while paused (polling every 2 s): one Paused Event.
    let counts = event_counts(&world, "site").await;
    assert_eq!(counts.get("Paused"), Some(&1), "{counts:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_requested_ref_annotation_wins_until_the_spec_catches_up() {
    let world = World::start("reqref").await;
    let first = world.repo.rev_parse("main").unwrap();
    world.repo.tag("v2.2.3", &first).unwrap();
    world
        .repo
        .commit("main", &[("projects/demo/b.json", b"{}")], "second")
        .unwrap();
    world.create_gs("site", spec("main")).await;
    world.wait_condition("site", "RefResolved", "True").await;
    // What the webhook receiver does on a release.
    world
        .gs_api()
        .patch(
            "site",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {
                "stoker.io/requested-ref": "v2.2.3",
                "stoker.io/requested-at": "2026-11-23T00:00:00Z",
                "stoker.io/requested-by": "github"
            }}})),
        )
        .await
        .unwrap();
    let gs = world
        .wait_gs("site", "the requested ref is resolved", |gs| {
            commit_is(gs, &first)
        })
        .await;
    assert_eq!(
        gs.status.as_ref().unwrap().last_sync_ref.as_deref(),
        Some("v2.2.3")
    );
    assert!(gs.annotations().contains_key("stoker.io/requested-ref"));
    // The spec catches up, spelled without the `v`: the annotation goes.
    world
        .gs_api()
        .patch(
            "site",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"git": {"ref": "v2.2.3"}}})),
        )
        .await
        .unwrap();
    let gs = world
        .wait_gs("site", "the annotations are removed", |gs| {
            !gs.annotations().contains_key("stoker.io/requested-ref")
                && !gs.annotations().contains_key("stoker.io/requested-by")
        })
        .await;
    assert!(commit_is(&gs, &first));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovers_running_annotated_pods_and_names_them() {
    let world = World::start("discover").await;
    world.create_gs("site", spec("main")).await;
    world
        .create_pod(
            "pod-a",
            "site",
            &[("stoker.io/gateway-name", "north")],
            &[],
            true,
        )
        .await;
    world
        .create_pod(
            "pod-b",
            "site",
            &[],
            &[("app.kubernetes.io/name", "south")],
            true,
        )
        .await;
    world.create_pod("pod-c", "site", &[], &[], true).await;
    world.create_pod("pod-d", "site", &[], &[], false).await;
    world.create_pod("pod-e", "other-cr", &[], &[], true).await;
    let gs = world
        .wait_gs("site", "three gateways are discovered", |gs| {
            gs.status
                .as_ref()
                .is_some_and(|s| s.discovered_gateways.len() == 3)
        })
        .await;
    let status = gs.status.as_ref().unwrap();
    let names: Vec<(&str, &str)> = status
        .discovered_gateways
        .iter()
        .map(|g| (g.pod_name.as_str(), g.name.as_str()))
        .collect();
    assert_eq!(
        names,
        vec![("pod-a", "north"), ("pod-b", "south"), ("pod-c", "pod-c")]
    );
    assert!(
        status
            .discovered_gateways
            .iter()
            .all(|g| g.sync_status == SyncStatus::Pending)
    );
    assert_eq!(status.gateway_summary.as_deref(), Some("0/3 synced"));
    assert!(has(&gs, "SidecarInjected", "True"));
    assert_eq!(
        condition(&gs, "AllGatewaysSynced").unwrap(),
        (
            "False".to_owned(),
            "SyncInProgress".to_owned(),
            "0/3 synced".to_owned()
        )
    );
    // No agent has reported.
    assert_eq!(
        condition(&gs, "AgentReady").unwrap(),
        (
            "False".to_owned(),
            "AgentsNotReporting".to_owned(),
            "0/3 agents reporting".to_owned()
        )
    );
    let notes = wait_until(
        "a GatewaysDiscovered Event for three",
        Duration::from_secs(10),
        || async {
            let notes = event_notes(&world, "site", "GatewaysDiscovered").await;
            notes
                .iter()
                .any(|n| n.starts_with("Discovered 3 gateway(s)"))
                .then_some(notes)
        },
    )
    .await;
    assert!(!notes.is_empty());
    // The pending pod starts running: it is counted.
    world.set_phase("pod-d", "Running").await;
    world
        .wait_gs("site", "the fourth gateway is discovered", |gs| {
            gs.status
                .as_ref()
                .is_some_and(|s| s.discovered_gateways.len() == 4)
        })
        .await;
    // "(was N)" is the count in the status the reconciliation started from, which may lag
    // the last one written by a pass or two.
    wait_until("GatewaysDiscovered 4", Duration::from_secs(10), || async {
        event_notes(&world, "site", "GatewaysDiscovered")
            .await
            .iter()
            .any(|n| n.starts_with("Discovered 4 gateway(s) (was "))
            .then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::too_many_lines)] // one scenario, step by step
async fn agents_reports_make_the_resource_ready_and_kubectl_shows_it() {
    let world = World::start("ready").await;
    let (commit, a, b) = world.two_gateway_site(spec("main")).await;
    world
        .report("site", &a, &commit, "main", SyncStatus::Synced, None)
        .await;
    let gs = world
        .wait_gs("site", "1/2 synced", |gs| summary_is(gs, "1/2 synced"))
        .await;
    assert_eq!(
        condition(&gs, "AllGatewaysSynced").unwrap(),
        (
            "False".to_owned(),
            "SyncInProgress".to_owned(),
            "1/2 synced".to_owned()
        )
    );
    assert_eq!(
        condition(&gs, "Ready").unwrap(),
        (
            "False".to_owned(),
            "Reconciling".to_owned(),
            "Waiting for gateways to sync".to_owned()
        )
    );
    assert_eq!(
        condition(&gs, "AgentReady").unwrap().2,
        "1/2 agents reporting"
    );
    world
        .report("site", &b, &commit, "main", SyncStatus::Synced, None)
        .await;
    let gs = world.wait_condition("site", "Ready", "True").await;
    let status = gs.status.as_ref().unwrap();
    assert_eq!(status.gateway_summary.as_deref(), Some("2/2 synced"));
    assert_eq!(
        condition(&gs, "AllGatewaysSynced").unwrap(),
        (
            "True".to_owned(),
            "SyncSucceeded".to_owned(),
            "2/2 synced".to_owned()
        )
    );
    assert_eq!(
        condition(&gs, "Ready").unwrap(),
        (
            "True".to_owned(),
            "SyncSucceeded".to_owned(),
            "All gateways synced".to_owned()
        )
    );
    assert_eq!(
        condition(&gs, "AgentReady").unwrap(),
        (
            "True".to_owned(),
            "AgentsReporting".to_owned(),
            "2/2 agents reporting".to_owned()
        )
    );
    assert_eq!(condition(&gs, "RefResolved").unwrap().2, commit);
    assert!(has(&gs, "RefSkew", "False"));
    let gateway = &status.discovered_gateways[0];
    assert_eq!(gateway.synced_commit.as_deref(), Some(commit.as_str()));
    assert_eq!(gateway.files_changed, 2);
    let reasons = wait_until("a SyncCompleted Event", Duration::from_secs(10), || async {
        let r = event_reasons(&world, "site").await;
        r.contains("SyncCompleted").then_some(r)
    })
    .await;
    assert!(reasons.contains("SyncCompleted"));

    // What users see.
    let out = world
        .cluster
        .kubectl(["get", "gs", "-n", &world.namespace])
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    let header: Vec<&str> = text.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["NAME", "REF", "GATEWAYS", "READY", "STATUS", "AGE"]
    );
    let row = text.lines().nth(1).unwrap();
    assert!(row.starts_with("site"), "{text}");
    assert!(
        row.contains("main") && row.contains("2/2 synced") && row.contains("True"),
        "{text}"
    );
    let wide = world
        .cluster
        .kubectl(["get", "gs", "-n", &world.namespace, "-o", "wide"])
        .unwrap();
    let wide = String::from_utf8_lossy(&wide.stdout);
    assert!(
        wide.contains("COMMIT") && wide.contains("LAST SYNC"),
        "{wide}"
    );
    assert!(wide.contains(&commit[..7]), "{wide}");

    // One gateway fails: not ready, and a SyncFailed Event names it.
    world
        .report(
            "site",
            &b,
            &commit,
            "main",
            SyncStatus::Error,
            Some("scan/projects answered 500"),
        )
        .await;
    let gs = world.wait_condition("site", "Ready", "False").await;
    let failed = gs
        .status
        .as_ref()
        .unwrap()
        .discovered_gateways
        .iter()
        .find(|g| g.pod_name == "gw-b")
        .unwrap()
        .clone();
    assert_eq!(failed.sync_status, SyncStatus::Error);
    // The detail is the gateway's, not the condition's.
    assert_eq!(
        failed.message.as_deref(),
        Some("scan/projects answered 500")
    );
    assert_eq!(
        condition(&gs, "AllGatewaysSynced").unwrap(),
        (
            "False".to_owned(),
            "SyncInProgress".to_owned(),
            "1/2 synced".to_owned()
        )
    );
    let reasons = wait_until("a SyncFailed Event", Duration::from_secs(10), || async {
        let r = event_reasons(&world, "site").await;
        r.contains("SyncFailed").then_some(r)
    })
    .await;
    assert!(reasons.contains("SyncFailed"));
    let notes = event_notes(&world, "site", "SyncFailed").await;
    assert_eq!(notes, ["gateway gw-b (gw-b): scan/projects answered 500"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_on_another_ref_is_ref_skew() {
    let world = World::start("skew").await;
    let old = world.repo.rev_parse("main").unwrap();
    let new = world
        .repo
        .commit("main", &[("projects/demo/b.json", b"{}")], "second")
        .unwrap();
    world.create_gs("site", spec("main")).await;
    let a = world.create_pod("gw-a", "site", &[], &[], true).await;
    let b = world
        .create_pod(
            "gw-b",
            "site",
            &[("stoker.io/ref-override", "v0.9")],
            &[],
            true,
        )
        .await;
    world
        .wait_gs("site", "resolved", |gs| commit_is(gs, &new))
        .await;
    world
        .report("site", &a, &new, "main", SyncStatus::Synced, None)
        .await;
    // gw-b runs an older commit of another ref (its override): skew, reported by name.
    world
        .report("site", &b, &old, "v0.9", SyncStatus::Synced, None)
        .await;
    let gs = world.wait_condition("site", "RefSkew", "True").await;
    let (_, _, message) = condition(&gs, "RefSkew").unwrap();
    assert!(message.contains("gw-b"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_resources_in_one_namespace_stay_isolated() {
    let world = World::start("isolated").await;
    let commit = world.repo.rev_parse("main").unwrap();
    world.create_gs("alpha", spec("main")).await;
    world.create_gs("beta", spec("main")).await;
    let a = world.create_pod("alpha-0", "alpha", &[], &[], true).await;
    world.create_pod("beta-0", "beta", &[], &[], true).await;
    world.create_pod("beta-1", "beta", &[], &[], true).await;
    world
        .report("alpha", &a, &commit, "main", SyncStatus::Synced, None)
        .await;
    let alpha = world.wait_condition("alpha", "Ready", "True").await;
    let beta = world
        .wait_gs("beta", "beta sees its two gateways", |gs| {
            gs.status
                .as_ref()
                .is_some_and(|s| s.discovered_gateways.len() == 2)
        })
        .await;
    let pods = |gs: &stoker_k8s::GatewaySync| -> Vec<String> {
        gs.status
            .as_ref()
            .unwrap()
            .discovered_gateways
            .iter()
            .map(|g| g.pod_name.clone())
            .collect()
    };
    assert_eq!(pods(&alpha), ["alpha-0"]);
    assert_eq!(pods(&beta), ["beta-0", "beta-1"]);
    assert_eq!(
        beta.status.as_ref().unwrap().gateway_summary.as_deref(),
        Some("0/2 synced")
    );
    assert!(has(&beta, "Ready", "False"));
    assert_ne!(
        metadata_configmap_name("alpha"),
        metadata_configmap_name("beta")
    );
    metadata(&world, "alpha").await;
    metadata(&world, "beta").await;
}

/// Regression: every reconciliation listed every Secret of the namespace (Helm keeps each
/// release in one, so that is many and large), which also needed `list` on all Secrets. Now it
/// reads only the Secrets the spec names: a controller whose service account may only `get`
/// those (RBAC `resourceNames`) converges.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_controller_reads_only_the_secrets_a_resource_names() {
    use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
    use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
    use kube::api::PostParams;
    use stoker_k8s::controller::{self, Context, ControllerConfig};
    use stoker_k8s::metrics::OperatorMetrics;

    let mut world = World::start("only-named-secrets").await;
    // This test runs its own controller, as a service account.
    world.stop_controller().await;
    let ns = world.namespace.clone();
    let admin = world.client.clone();
    let sas: Api<ServiceAccount> = Api::namespaced(admin.clone(), &ns);
    sas.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "operator"}})).unwrap(),
    )
    .await
    .unwrap();
    let rule = |groups: &[&str], resources: &[&str], verbs: &[&str]| json!({"apiGroups": groups, "resources": resources, "verbs": verbs});
    let role: Role = serde_json::from_value(json!({
        "metadata": {"name": "operator"},
        "rules": [
            rule(&["stoker.io"], &["gatewaysyncs"], &["get", "list", "watch", "patch", "update"]),
            rule(&["stoker.io"], &["gatewaysyncs/status"], &["get", "patch", "update"]),
            rule(&[""], &["configmaps"], &["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"]),
            rule(&[""], &["pods"], &["get", "list", "watch"]),
            rule(&["", "events.k8s.io"], &["events"], &["create", "patch"]),
            {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"], "resourceNames": ["gateway-api-key"]},
        ]
    }))
    .unwrap();
    Api::<Role>::namespaced(admin.clone(), &ns)
        .create(&PostParams::default(), &role)
        .await
        .unwrap();
    let binding: RoleBinding = serde_json::from_value(json!({
        "metadata": {"name": "operator"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "operator"},
        "subjects": [{"kind": "ServiceAccount", "name": "operator", "namespace": ns}]
    }))
    .unwrap();
    Api::<RoleBinding>::namespaced(admin.clone(), &ns)
        .create(&PostParams::default(), &binding)
        .await
        .unwrap();
    let token = stoker_testkit::kube_api::service_account_token(&admin, &ns, "operator", 3600)
        .await
        .unwrap();
    let restricted = world.cluster.client_with_token(&token).unwrap();
    let secrets: Api<Secret> = Api::namespaced(restricted.clone(), &ns);
    assert!(
        secrets.list(&ListParams::default()).await.is_err(),
        "the service account must not be able to list Secrets"
    );

    // The Secret it may read, and one it may not.
    let admin_secrets: Api<Secret> = Api::namespaced(admin.clone(), &ns);
    for (name, key, value) in [
        ("gateway-api-key", "apiKey", "secret-api-key".to_owned()),
        ("sh.helm.release.v1.other.v1", "release", "x".repeat(4096)),
    ] {
        let secret: Secret = serde_json::from_value(json!({
            "metadata": {"name": name},
            "stringData": {key: value},
        }))
        .unwrap();
        admin_secrets
            .create(&PostParams::default(), &secret)
            .await
            .unwrap();
    }
    let state = tempfile::tempdir().unwrap();
    let config = ControllerConfig {
        state_dir: state.path().to_path_buf(),
        namespaces: vec![ns.clone()],
        initial_backoff: Duration::from_millis(200),
        max_backoff: Duration::from_secs(2),
        ..ControllerConfig::default()
    };
    let metrics = OperatorMetrics::new();
    let context = Context::new(restricted, metrics.clone(), config);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let controller = tokio::spawn(controller::run(context, async move {
        let _ = stopped.await;
    }));

    let mut with_secret = spec("main");
    with_secret["gateway"] =
        json!({"api": {"secretName": "gateway-api-key", "secretKey": "apiKey"}});
    world.create_gs("named", with_secret).await;
    let first = world.repo.rev_parse("main").unwrap();
    let gs = world
        .wait_gs(
            "named",
            "the ref resolves and the profiles are valid",
            |gs| commit_is(gs, &first) && has(gs, "ProfilesValid", "True"),
        )
        .await;
    assert!(has(&gs, "RefResolved", "True"), "{:?}", gs.status);
    // Not even the GitHub App token Secret, which a resource without an App has no use for:
    // not being allowed to look for one is no failure.
    let text = metrics.encode().unwrap();
    assert!(!text.contains("result=\"error\""), "{text}");

    let _ = stop.send(());
    let _ = tokio::time::timeout(Duration::from_secs(10), controller).await;
}

/// The subjects of the agents' RoleBinding of `cr`, once it has exactly `expected`.
async fn agent_binding_with(world: &World, cr: &str, expected: &[&str]) -> RoleBinding {
    let api: Api<RoleBinding> = Api::namespaced(world.client.clone(), &world.namespace);
    let name = stoker_k8s::rbac::agent_role_binding_name(cr);
    wait_until(
        &format!("RoleBinding {name} binds {expected:?}"),
        crate::controller_support::CONVERGE,
        || async {
            api.get_opt(&name).await.unwrap().filter(|binding| {
                let subjects: Vec<(&str, &str, Option<&str>)> = binding
                    .subjects
                    .iter()
                    .flatten()
                    .map(|s| (s.kind.as_str(), s.name.as_str(), s.namespace.as_deref()))
                    .collect();
                let wanted: Vec<(&str, &str, Option<&str>)> = expected
                    .iter()
                    .map(|name| ("ServiceAccount", *name, Some(world.namespace.as_str())))
                    .collect();
                subjects == wanted
            })
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binds_the_gateways_service_accounts_to_the_agent_cluster_role() {
    let world = World::start("rbac").await;
    let gs = world.create_gs("site", spec("main")).await;
    world
        .create_pod_as("pod-a", "site", Some("ignition"), &[], &[], true)
        .await;
    // A pod whose agent waits for its permissions is not Running yet: it counts.
    world
        .create_pod_as("pod-b", "site", Some("north"), &[], &[], false)
        .await;
    world
        .create_pod_as("pod-c", "site", Some("ignition"), &[], &[], true)
        .await;
    world
        .create_pod_as("pod-x", "other", Some("foreign"), &[], &[], true)
        .await;
    let binding = agent_binding_with(&world, "site", &["ignition", "north"]).await;
    assert_eq!(binding.role_ref.kind, "ClusterRole");
    assert_eq!(binding.role_ref.name, "stoker-agent");
    assert_eq!(binding.role_ref.api_group, "rbac.authorization.k8s.io");
    assert_eq!(
        binding
            .labels()
            .get("stoker.io/gatewaysync")
            .map(String::as_str),
        Some("site")
    );
    let owner = &binding.owner_references()[0];
    assert_eq!(owner.kind, "GatewaySync");
    assert_eq!(owner.name, "site");
    assert_eq!(Some(&owner.uid), gs.metadata.uid.as_ref());
    assert_eq!(owner.controller, Some(true));
    let managers: Vec<String> = binding
        .managed_fields()
        .iter()
        .filter_map(|f| f.manager.clone())
        .collect();
    assert_eq!(managers, ["stoker-operator"]);

    // A pod with a third account: it is added. A pod without one runs as `default`.
    world
        .create_pod_as("pod-d", "site", Some("south"), &[], &[], true)
        .await;
    world
        .create_pod_as("pod-e", "site", None, &[], &[], true)
        .await;
    agent_binding_with(&world, "site", &["default", "ignition", "north", "south"]).await;
    // Its pods gone, an account is no longer bound.
    for pod in ["pod-d", "pod-e"] {
        world
            .pods()
            .delete(pod, &DeleteParams::default().grace_period(0))
            .await
            .unwrap();
    }
    world.set_phase("pod-b", "Failed").await;
    agent_binding_with(&world, "site", &["ignition"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_agent_role_binding_when_auto_bind_is_off() {
    let world = World::start_with("rbac-off", false).await;
    world.create_gs("site", spec("main")).await;
    world
        .create_pod_as("pod-a", "site", Some("ignition"), &[], &[], true)
        .await;
    // Reconciled after the pod appeared: it is discovered.
    world
        .wait_gs("site", "the pod is discovered", |gs| {
            gs.status
                .as_ref()
                .is_some_and(|s| s.discovered_gateways.len() == 1)
        })
        .await;
    let api: Api<RoleBinding> = Api::namespaced(world.client.clone(), &world.namespace);
    let bindings = api.list(&ListParams::default()).await.unwrap();
    assert!(bindings.items.is_empty(), "{:?}", bindings.items);
}

/// Writes stoker-operator v0.5.1's shared status ConfigMap `stoker-status-{cr}` as its agents
/// do: labelled `managed-by: stoker-agent` and `stoker.io/cr-name`, one JSON entry per gateway.
async fn write_v051_status(world: &World, cr: &str, entries: &[(&str, String)]) {
    let data: serde_json::Map<String, serde_json::Value> = entries
        .iter()
        .map(|(key, value)| ((*key).to_owned(), json!(value)))
        .collect();
    let configmap: ConfigMap = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {
            "name": format!("stoker-status-{cr}"),
            "labels": {"app.kubernetes.io/managed-by": "stoker-agent", "stoker.io/cr-name": cr}
        },
        "data": data
    }))
    .unwrap();
    world.apply_configmap(&configmap, "stoker-agent-v051").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::too_many_lines)] // one scenario, step by step
async fn a_v051_agents_report_counts_until_ours_replaces_it() {
    let world = World::start("v051").await;
    let first = world.repo.rev_parse("main").unwrap();
    let second = world
        .repo
        .commit("main", &[("projects/demo/b.json", b"{}")], "second")
        .unwrap();
    // Polling off: only the watches bring the reports in.
    let mut quiet = spec("main");
    quiet["polling"] = json!({"enabled": false});
    world.create_gs("site", quiet).await;
    let pod = world.create_pod("gw-0", "site", &[], &[], true).await;
    world
        .wait_gs("site", "resolved, one pending gateway", |gs| {
            commit_is(gs, &second) && summary_is(gs, "0/1 synced")
        })
        .await;

    // A v0.5.1 agent, not replaced yet, reports in its own format.
    let entry = json!({
        "syncStatus": "Synced", "syncedCommit": second, "syncedRef": "main",
        "lastSyncTime": "2026-03-01T12:00:00Z", "lastSyncDuration": "1.5s",
        "agentVersion": "0.5.1", "lastScanResult": "projects=200 config=200",
        "filesChanged": 3, "projectsSynced": ["demo"]
    });
    write_v051_status(&world, "site", &[("gw-0", entry.to_string())]).await;
    let gs = world
        .wait_gs("site", "1/1 synced from the v0.5.1 report", |gs| {
            summary_is(gs, "1/1 synced")
        })
        .await;
    let gateway = &gs.status.as_ref().unwrap().discovered_gateways[0];
    assert_eq!(gateway.sync_status, SyncStatus::Synced);
    assert_eq!(gateway.synced_commit.as_deref(), Some(second.as_str()));
    assert_eq!(gateway.synced_ref.as_deref(), Some("main"));
    assert_eq!(gateway.agent_version.as_deref(), Some("0.5.1"));
    assert_eq!(gateway.files_changed, 3);
    assert_eq!(gateway.projects_synced, ["demo"]);
    assert_eq!(gateway.last_sync_duration.as_deref(), Some("1.5s"));
    assert_eq!(
        condition(&gs, "AllGatewaysSynced").unwrap(),
        (
            "True".to_owned(),
            "SyncSucceeded".to_owned(),
            "1/1 synced".to_owned()
        )
    );
    assert!(has(&gs, "Ready", "True"));
    // Written long ago, but v0.5.1's agents write only when they sync: not silent.
    assert!(has(&gs, "AgentReady", "True"));

    // Our agent takes over the pod and reports another commit: its report wins.
    world
        .report("site", &pod, &first, "main", SyncStatus::Synced, None)
        .await;
    let gs = world
        .wait_gs("site", "our report wins", |gs| {
            gs.status.as_ref().is_some_and(|s| {
                s.discovered_gateways[0].synced_commit.as_deref() == Some(first.as_str())
            })
        })
        .await;
    let status = gs.status.as_ref().unwrap();
    assert_eq!(status.gateway_summary.as_deref(), Some("0/1 synced"));
    assert_eq!(
        status.discovered_gateways[0].sync_status,
        SyncStatus::Pending
    );
    assert_eq!(
        status.discovered_gateways[0].agent_version.as_deref(),
        Some("test")
    );

    // A malformed entry of another resource's v0.5.1 ConfigMap: no report for that gateway,
    // and the resource's status is still written.
    world.create_gs("broken", spec("main")).await;
    world.create_pod("gw-9", "broken", &[], &[], true).await;
    write_v051_status(&world, "broken", &[("gw-9", "{\"syncStatus\":".to_owned())]).await;
    let gs = world
        .wait_gs("broken", "resolved, the gateway pending", |gs| {
            commit_is(gs, &second) && summary_is(gs, "0/1 synced")
        })
        .await;
    assert_eq!(
        gs.status.as_ref().unwrap().discovered_gateways[0]
            .message
            .as_deref(),
        Some("waiting for the agent's first report")
    );

    // Deleting the resource removes v0.5.1's ConfigMap too, as v0.5.1 did.
    world
        .gs_api()
        .delete("site", &DeleteParams::default())
        .await
        .unwrap();
    let configmaps = world.configmaps();
    wait_until(
        "v0.5.1's status ConfigMap is deleted",
        crate::controller_support::CONVERGE,
        || async {
            configmaps
                .get_opt("stoker-status-site")
                .await
                .unwrap()
                .is_none()
                .then_some(())
        },
    )
    .await;
    assert!(
        configmaps
            .get_opt("stoker-status-broken")
            .await
            .unwrap()
            .is_some()
    );
}
