//! `stoker-agent sidecar` end to end: the real binary, run as a local process against the real
//! test kube-apiserver (stoker-testkit), a real loopback Git server and the Ignition gateway
//! simulator. No mocks. Gateway pods go through the real injector (the webhook's admission) and
//! the agent runs with the environment, Secrets and volumes of the pod the API server stored
//! (see `sidecar_support`), never with a hand-written environment.

use std::time::{Duration, Instant};

use crate::sidecar_support::{World, pods, set_env, tree};
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::json;
use stoker_k8s::GatewaySync;
use stoker_k8s::crd::{ScanStatus, SyncStatus};
use stoker_k8s::gateway_status::GatewayStatusReport;
use stoker_testkit::gateway_sim::{Endpoint, Fault};
use stoker_testkit::metrics::{AGENT, compare, parse};

const CR: &str = "site";

/// The value of the series `series` (name and labels exactly as served), 0 when absent.
fn counter(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

fn spec(world: &World, profiles: serde_json::Value) -> serde_json::Value {
    json!({
        "git": {"repo": world.repo_url, "ref": "main"},
        "polling": {"interval": "30s"},
        "gateway": {"port": world.sim.addr().port(), "api": {"secretName": "gw-api"}},
        "sync": {"profiles": profiles},
    })
}

fn standard_profile() -> serde_json::Value {
    json!({
        "standard": {
            "mappings": [
                {"source": "projects", "destination": "projects", "type": "dir"},
                {"source": "templates/identity.txt", "destination": "config/identity.txt",
                 "type": "file", "template": true}
            ]
        }
    })
}

const IDENTITY: &str = "gateway={{.GatewayName}} pod={{.PodName}} ordinal={{.PodOrdinal}} site={{.Labels.site}} cr={{.CRName}} ref={{.Ref}}";

/// `Ready=True` and the `GATEWAYS` column says `summary`.
fn ready(gs: &GatewaySync, summary: &str) -> bool {
    gs.status.as_ref().is_some_and(|status| {
        status.gateway_summary.as_deref() == Some(summary)
            && condition(gs, "Ready").is_some_and(|c| c.status == "True")
    })
}

/// [`ready`], and the last sync was at `commit`.
fn ready_at(gs: &GatewaySync, summary: &str, commit: &str) -> bool {
    ready(gs, summary) && gs.status.as_ref().unwrap().last_sync_commit.as_deref() == Some(commit)
}

/// A check for [`World::wait_status`]: the gateway reports `status` at `commit`.
fn at(status: SyncStatus, commit: &str) -> impl Fn(&GatewayStatusReport) -> bool + '_ {
    move |s| s.status == status && s.commit.as_deref() == Some(commit)
}

/// Waits until `pod` of [`CR`] reports Synced at `commit`; `what` names the wait in its
/// failure. The report.
async fn wait_synced(world: &World, pod: &str, what: &str, commit: &str) -> GatewayStatusReport {
    world
        .wait_status(CR, pod, what, at(SyncStatus::Synced, commit))
        .await
}

/// Waits until agent `agent`'s `/startupz` passes; `what` names the wait in its failure.
async fn wait_started(world: &World, agent: usize, what: &str) {
    world
        .wait_for(what, || async {
            world.agents[agent].probe("/startupz") == Some(200)
        })
        .await;
}

fn condition<'a>(
    gs: &'a GatewaySync,
    type_: &str,
) -> Option<&'a k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition> {
    gs.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
}

fn scans(world: &World) -> Vec<Endpoint> {
    world
        .sim
        .calls()
        .iter()
        .filter_map(|c| c.endpoint())
        .filter(|e| matches!(e, Endpoint::ScanProjects | Endpoint::ScanConfig))
        .collect()
}

/// The whole path: startup sync before `/startupz`, files exactly as the profile says, scan
/// projects then config, status Synced; a new commit converges in seconds with orphans removed;
/// a profile change re-syncs without a commit; pod label and ref-override changes apply without
/// a restart; metrics and Events; SIGTERM exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::too_many_lines)] // one end-to-end scenario, step by step
async fn syncs_a_gateway_end_to_end() {
    let mut world = World::new("sidecar-e2e").await;
    let c1 = world.commit(
        &[
            ("projects/demo/project.json", r#"{"title": "Demo"}"#),
            (
                "projects/demo/com.inductiveautomation.perspective/views/main/view.json",
                r#"{"root": {}}"#,
            ),
            ("projects/old/project.json", r#"{"title": "Old"}"#),
            ("templates/identity.txt", IDENTITY),
            ("extra/notes.txt", "extra notes"),
            ("README.md", "not mapped"),
        ],
        "first",
    );
    world.repo.tag("v1", &c1).unwrap();
    world.create_api_secret("gw-api").await;
    world
        .create_gatewaysync(CR, spec(&world, standard_profile()))
        .await;
    world
        .create_pod(
            "ignition-0",
            CR,
            &[("stoker.io/gateway-name", "blue")],
            &[("site", "north")],
        )
        .await;
    // Something of the gateway's own, outside every managed root.
    std::fs::create_dir_all(world.data("ignition-0")).unwrap();
    std::fs::write(world.data("ignition-0").join("gateway.xml"), "<local/>").unwrap();

    let started = Instant::now();
    let mut env = world.agent_env("ignition-0");
    // Resync every 2 s instead of the injector's 30: resyncs that change nothing must not
    // write (checked at the end).
    set_env(&mut env, "SYNC_PERIOD", "2");
    let agent = world.start_agent("ignition-0", env);
    wait_started(&world, agent, "/startupz to pass").await;
    let startup = started.elapsed();
    eprintln!("MEASURE startup (process start -> /startupz 200): {startup:?}");
    assert_eq!(world.agents[agent].probe("/readyz"), Some(200));
    assert_eq!(world.agents[agent].probe("/healthz"), Some(200));

    // Files exactly as the profile says, the gateway's own file untouched.
    let files = tree(&world.data("ignition-0"));
    let expected: Vec<(&str, &str)> = vec![
        (
            "config/identity.txt",
            "gateway=blue pod=ignition-0 ordinal=0 site=north cr=site ref=main",
        ),
        ("gateway.xml", "<local/>"),
        (
            "projects/demo/com.inductiveautomation.perspective/views/main/view.json",
            r#"{"root": {}}"#,
        ),
        ("projects/demo/project.json", r#"{"title": "Demo"}"#),
        ("projects/old/project.json", r#"{"title": "Old"}"#),
    ];
    assert_eq!(
        files,
        expected
            .iter()
            .map(|(p, c)| ((*p).to_owned(), (*c).to_owned()))
            .collect(),
    );
    // Startup passed only once the files were there; the simulator saw both rescans, in order.
    assert_eq!(
        scans(&world),
        [Endpoint::ScanProjects, Endpoint::ScanConfig]
    );
    assert!(
        world
            .sim
            .calls()
            .iter()
            .all(|c| c.endpoint() != Some(Endpoint::ScanProjects) || c.authorized),
        "the rescan carries the API key"
    );

    let status = wait_synced(&world, "ignition-0", "Synced at c1", &c1).await;
    assert_eq!(status.reference.as_deref(), Some("main"));
    assert_eq!(status.gateway, "blue");
    assert_eq!(status.profile.as_deref(), Some("standard"));
    assert_eq!(status.files_added, 4);
    assert_eq!(status.agent_version, env!("CARGO_PKG_VERSION"));
    assert_eq!(status.projects, ["demo", "old"]);
    assert!(
        status
            .last_scan_result
            .as_deref()
            .unwrap()
            .contains("scan/config 200")
    );
    let configmap = world.status_configmap(CR, "ignition-0").await;
    let owner = &configmap.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str()),
        ("Pod", "ignition-0")
    );
    let managers: Vec<_> = configmap
        .metadata
        .managed_fields
        .iter()
        .flatten()
        .filter_map(|m| m.manager.clone())
        .collect();
    assert_eq!(managers, ["stoker-agent"]);
    let gs = world
        .wait_gs(CR, "Ready=True with 1/1 synced", |gs| {
            ready(gs, "1/1 synced")
        })
        .await;
    let gateway = &gs.status.as_ref().unwrap().discovered_gateways[0];
    assert_eq!(gateway.synced_commit.as_deref(), Some(c1.as_str()));
    assert_eq!(gateway.sync_status, SyncStatus::Synced);

    // A new commit: modified, added, and an orphan removed; measured from the push to Synced.
    world.sim.clear_calls();
    let pushed = Instant::now();
    let c2 = world.commit_changes(
        &[
            ("projects/demo/project.json", Some(r#"{"title": "Demo 2"}"#)),
            ("projects/new/project.json", Some(r#"{"title": "New"}"#)),
            ("projects/old/project.json", None),
        ],
        "second",
    );
    world.request_ref(CR, "main").await;
    let status = wait_synced(&world, "ignition-0", "Synced at c2", &c2).await;
    let latency = pushed.elapsed();
    eprintln!(
        "MEASURE push -> agent reports Synced (requested-ref, operator in the loop): {latency:?}"
    );
    assert!(latency < Duration::from_secs(10), "{latency:?}");
    world
        .wait_gs(CR, "1/1 synced at c2", |gs| ready_at(gs, "1/1 synced", &c2))
        .await;
    eprintln!(
        "MEASURE push -> GatewaySync Ready, 1/1 synced at the new commit: {:?}",
        pushed.elapsed()
    );
    assert_eq!(
        (
            status.files_added,
            status.files_modified,
            status.files_deleted
        ),
        (1, 1, 1)
    );
    let files = tree(&world.data("ignition-0"));
    assert!(
        !files.contains_key("projects/old/project.json"),
        "orphan removed"
    );
    assert!(
        !world.data("ignition-0").join("projects/old").exists(),
        "empty dir pruned"
    );
    assert_eq!(files["projects/new/project.json"], r#"{"title": "New"}"#);
    assert_eq!(
        files["projects/demo/project.json"],
        r#"{"title": "Demo 2"}"#
    );
    assert_eq!(files["gateway.xml"], "<local/>");
    assert_eq!(
        scans(&world),
        [Endpoint::ScanProjects, Endpoint::ScanConfig]
    );

    // The profile changes in the resource: a re-sync without a new commit.
    let mut profiles = standard_profile();
    profiles["standard"]["mappings"]
        .as_array_mut()
        .unwrap()
        .push(json!({"source": "extra", "destination": "extra"}));
    world
        .patch_spec(CR, json!({"sync": {"profiles": profiles}}))
        .await;
    world
        .wait_for("the new mapping's file", || async {
            world.data("ignition-0").join("extra/notes.txt").exists()
        })
        .await;
    let status = world
        .wait_status(CR, "ignition-0", "Synced with the new profile", |s| {
            s.status == SyncStatus::Synced && s.files_added == 1
        })
        .await;
    assert_eq!(status.commit.as_deref(), Some(c2.as_str()), "same commit");

    // The pod's labels change: {{.Labels.site}} follows without a restart.
    world
        .patch_pod("ignition-0", &[], &[("site", Some("south"))])
        .await;
    world
        .wait_for("the label in the templated file", || async {
            std::fs::read_to_string(world.data("ignition-0").join("config/identity.txt"))
                .unwrap()
                .contains("site=south")
        })
        .await;

    // A ref override pins this gateway to a tag: the agent resolves it itself and reports it.
    world
        .patch_pod("ignition-0", &[("stoker.io/ref-override", Some("v1"))], &[])
        .await;
    let status = world
        .wait_status(CR, "ignition-0", "Synced at the override", |s| {
            s.status == SyncStatus::Synced && s.reference.as_deref() == Some("v1")
        })
        .await;
    assert_eq!(status.commit.as_deref(), Some(c1.as_str()));
    assert!(
        world
            .data("ignition-0")
            .join("projects/old/project.json")
            .exists()
    );
    world
        .wait_gs(CR, "RefSkew=True naming the pinned pod", |gs| {
            condition(gs, "RefSkew").is_some_and(|c| {
                c.status == "True"
                    && c.message.contains("ignition-0")
                    && c.message.contains("ref-override")
            })
        })
        .await;
    world
        .patch_pod("ignition-0", &[("stoker.io/ref-override", None)], &[])
        .await;
    wait_synced(&world, "ignition-0", "back on main", &c2).await;
    assert!(status.history.len() >= 5, "{:?}", status.history);

    // Metrics, scraped from the metrics port: exactly the families and label keys listed in
    // stoker_testkit::metrics::AGENT (stoker-operator v0.5.1's and ours), nothing missing,
    // nothing more. No sync failed here: the tests that fail one check sync_errors_total.
    let metrics = world.agents[agent].metrics();
    let problems = compare(
        &parse(&metrics),
        AGENT,
        "stoker_",
        &["stoker_agent_sync_errors_total"],
    );
    assert!(problems.is_empty(), "{problems:#?}\n{metrics}");
    for series in [
        "stoker_agent_git_fetch_total{operation=\"clone\",result=\"success\"} 1",
        "stoker_agent_last_sync_success 1",
        "stoker_agent_scan_total{result=\"error\"} 0",
        "stoker_agent_gateway_startup_duration_seconds_count 1",
    ] {
        assert!(
            metrics.contains(series),
            "{series} missing from:\n{metrics}"
        );
    }
    for family in [
        "stoker_agent_sync_total{profile=\"standard\",result=\"success\"}",
        "stoker_agent_git_fetch_total{operation=\"fetch\",result=\"success\"}",
        "stoker_agent_scan_total{result=\"success\"}",
        "stoker_agent_file_changes_total{profile=\"standard\",operation=\"added\"}",
    ] {
        assert!(
            counter(&metrics, family) >= 1.0,
            "{family} not counted in:\n{metrics}"
        );
    }
    // The probe port serves the same metrics.
    let on_probe_port =
        crate::sidecar_support::http_get(world.agents[agent].probe_port, "/metrics")
            .unwrap()
            .1;
    assert_eq!(
        parse(&on_probe_port).keys().collect::<Vec<_>>(),
        parse(&metrics).keys().collect::<Vec<_>>()
    );
    // Events on the GatewaySync.
    let events = world.agent_events(CR).await;
    assert!(
        events
            .iter()
            .any(|e| e.reason.as_deref() == Some("SyncCompleted")),
        "{events:#?}"
    );

    // Idle (resyncing every 2 s, nothing changing): no writes, small memory.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let version = world
        .status_configmap(CR, "ignition-0")
        .await
        .metadata
        .resource_version;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        world
            .status_configmap(CR, "ignition-0")
            .await
            .metadata
            .resource_version,
        version,
        "an idle agent writes nothing"
    );
    let rss = world.agents[agent].rss_kb().unwrap();
    eprintln!("MEASURE idle RSS: {rss} kB");

    // SIGTERM: exit 0.
    world.agents[agent].terminate();
    assert_eq!(
        world.agents[agent]
            .wait_exit(Duration::from_secs(10))
            .code(),
        Some(0)
    );
}

/// The standard setup: a GatewaySync with one profile (`profiles`), one pod, its metadata at
/// `commit`, the agent started and `Synced` at it.
async fn synced_world(
    prefix: &str,
    files: &[(&str, &str)],
    profiles: serde_json::Value,
) -> (World, String) {
    let mut world = World::new(prefix).await;
    let c1 = world.commit(files, "first");
    world.create_api_secret("gw-api").await;
    world.create_gatewaysync(CR, spec(&world, profiles)).await;
    world.create_pod("ignition-0", CR, &[], &[]).await;
    let env = world.agent_env("ignition-0");
    world.start_agent("ignition-0", env);
    wait_synced(&world, "ignition-0", "Synced at c1", &c1).await;
    (world, c1)
}

fn projects_profile(policy: &str) -> serde_json::Value {
    json!({"standard": {
        "designerSessionPolicy": policy,
        "mappings": [{"source": "projects", "destination": "projects"}]
    }})
}

/// An open Designer session with `designerSessionPolicy: fail` refuses the sync: nothing is
/// written, the status says Error and why, an Event says so; once the session closes the
/// retry converges.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_designer_session_with_policy_fail_refuses_the_sync() {
    let (world, _c1) = synced_world(
        "sidecar-designer",
        &[("projects/demo/project.json", "v1")],
        projects_profile("fail"),
    )
    .await;
    let session = world.sim.open_designer("alice", "demo");
    let c2 = world.commit(&[("projects/demo/project.json", "v2")], "second");
    world.request_ref(CR, "main").await;
    let status = world
        .wait_status(CR, "ignition-0", "Error at c2", at(SyncStatus::Error, &c2))
        .await;
    let message = status.message.unwrap();
    assert!(
        message.contains("Designer session")
            && message.contains("alice")
            && message.contains("fail"),
        "{message}"
    );
    assert_eq!(
        std::fs::read_to_string(world.data("ignition-0").join("projects/demo/project.json"))
            .unwrap(),
        "v1",
        "nothing written"
    );
    assert!(
        !world
            .sim
            .calls()
            .iter()
            .any(|c| c.endpoint() == Some(Endpoint::ScanProjects)
                && c.at_unix_ms >= session_opened_at(&world)),
        "no rescan after a refused sync"
    );
    let events = world.agent_events(CR).await;
    assert!(
        events
            .iter()
            .any(|e| e.reason.as_deref() == Some("SyncFailed")
                && e.type_.as_deref() == Some("Warning")
                && e.note.as_deref().unwrap_or_default().contains("Designer")),
        "{events:#?}"
    );
    // As v0.5.1 counted it: a skipped sync, blocked by Designer sessions, not a failed one.
    // As v0.5.1: DesignerSessionsBlocked naming the session, and SyncSkipped with the policy.
    let note = |reason: &str| {
        events
            .iter()
            .filter(|e| e.reason.as_deref() == Some(reason))
            .filter(|e| e.type_.as_deref() == Some("Warning"))
            .filter_map(|e| e.note.clone())
            .collect::<Vec<_>>()
    };
    let blocked = note("DesignerSessionsBlocked");
    assert!(
        blocked.len() == 1
            && blocked[0].contains("Designer sessions blocked sync: ")
            && blocked[0].contains("alice"),
        "{events:#?}"
    );
    let skipped = note("SyncSkipped");
    assert!(
        skipped.len() == 1
            && skipped[0].ends_with("Sync skipped: designer sessions blocked sync (policy=fail)"),
        "{events:#?}"
    );
    let metrics = world.agents[0].metrics();
    assert!(
        counter(
            &metrics,
            "stoker_agent_sync_skipped_total{reason=\"designer_blocked\"}"
        ) >= 1.0,
        "{metrics}"
    );
    assert!(
        metrics.contains("stoker_agent_designer_sessions_blocked 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("stoker_agent_designer_sessions_active 1"),
        "{metrics}"
    );

    assert!(world.sim.close_designer(&session.id));
    wait_synced(
        &world,
        "ignition-0",
        "Synced at c2 once the session closed",
        &c2,
    )
    .await;
    assert_eq!(
        std::fs::read_to_string(world.data("ignition-0").join("projects/demo/project.json"))
            .unwrap(),
        "v2"
    );
}

fn session_opened_at(world: &World) -> u64 {
    // The simulator does not timestamp sessions; the first Designers call that listed one is
    // after it opened. Good enough: the refusal came after that call.
    world
        .sim
        .calls()
        .iter()
        .filter(|c| c.endpoint() == Some(Endpoint::Designers))
        .map(|c| c.at_unix_ms)
        .next_back()
        .unwrap_or(0)
}

/// The gateway answering 500 to the rescan: the files are synced, but the status is Error
/// with the reason; when the gateway recovers the rescan is retried and the status is Synced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_rescan_is_an_error_with_the_reason_then_retried() {
    let (world, _c1) = synced_world(
        "sidecar-scan500",
        &[("projects/demo/project.json", "v1")],
        projects_profile("proceed"),
    )
    .await;
    world
        .sim
        .set_fault(Endpoint::ScanProjects, Fault::status(500));
    let c2 = world.commit(&[("projects/demo/project.json", "v2")], "second");
    world.request_ref(CR, "main").await;
    let status = world
        .wait_status(CR, "ignition-0", "Error at c2", at(SyncStatus::Error, &c2))
        .await;
    let message = status.message.clone().unwrap();
    assert!(
        message.contains("rescan failed")
            && message.contains("500")
            && message.contains("scan/projects"),
        "{message}"
    );
    assert_eq!(status.files_modified, 1, "the files were synced");
    assert!(status.last_scan_result.unwrap().starts_with("failed:"));
    assert_eq!(status.last_scan_status, Some(ScanStatus::Failed));
    assert_eq!(
        std::fs::read_to_string(world.data("ignition-0").join("projects/demo/project.json"))
            .unwrap(),
        "v2"
    );
    let metrics = world.agents[0].metrics();
    assert!(
        counter(
            &metrics,
            "stoker_agent_sync_errors_total{profile=\"standard\",reason=\"gateway_scan\"}"
        ) >= 1.0,
        "{metrics}"
    );
    assert!(
        counter(&metrics, "stoker_agent_scan_total{result=\"error\"}") >= 1.0,
        "{metrics}"
    );

    world.sim.clear_faults();
    let status = wait_synced(&world, "ignition-0", "Synced once the rescan works", &c2).await;
    assert!(status.last_scan_result.unwrap().contains("scan/config 200"));
    assert_eq!(status.last_scan_status, Some(ScanStatus::Succeeded));
    let calls = world.sim.calls();
    let last_scans: Vec<_> = calls
        .iter()
        .filter(|c| {
            matches!(
                c.endpoint(),
                Some(Endpoint::ScanProjects | Endpoint::ScanConfig)
            )
        })
        .rev()
        .take(2)
        .map(|c| (c.endpoint().unwrap(), c.status))
        .collect();
    assert_eq!(
        last_scans,
        [
            (Endpoint::ScanConfig, Some(200)),
            (Endpoint::ScanProjects, Some(200))
        ]
    );
}

/// In Kubernetes the gateway starts only after the agent's startup probe passes: the first
/// sync writes the files without asking the (absent) gateway anything, `/startupz` passes,
/// and once the gateway answers the agent asks it to rescan (post-commissioning).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_land_before_the_gateway_starts_then_it_is_rescanned() {
    let mut world = World::new("sidecar-commission").await;
    world
        .sim
        .set_mode(stoker_testkit::gateway_sim::Mode::Refuse, None)
        .unwrap();
    world.commit(&[("projects/demo/project.json", "v1")], "first");
    world.create_api_secret("gw-api").await;
    world
        .create_gatewaysync(CR, spec(&world, projects_profile("fail")))
        .await;
    world.create_pod("ignition-0", CR, &[], &[]).await;
    let env = world.agent_env("ignition-0");
    let agent = world.start_agent("ignition-0", env);
    wait_started(&world, agent, "/startupz with the gateway down").await;
    assert!(
        world
            .data("ignition-0")
            .join("projects/demo/project.json")
            .exists()
    );
    let status = world
        .wait_status(CR, "ignition-0", "Synced, the rescan pending", |s| {
            s.status == SyncStatus::Synced
        })
        .await;
    assert!(
        status.message.as_deref().unwrap().contains("not answering"),
        "{status:?}"
    );
    assert!(scans(&world).is_empty(), "nobody to rescan yet");

    world
        .sim
        .set_mode(stoker_testkit::gateway_sim::Mode::Up, None)
        .unwrap();
    world
        .wait_for("the post-commissioning rescan", || async {
            scans(&world) == [Endpoint::ScanProjects, Endpoint::ScanConfig]
        })
        .await;
    world
        .wait_status(CR, "ignition-0", "the rescan recorded", |s| {
            s.last_scan_result
                .as_deref()
                .is_some_and(|r| r.contains("scan/config 200"))
        })
        .await;
    let events = world.agent_events(CR).await;
    assert!(
        events
            .iter()
            .any(|e| e.reason.as_deref() == Some("GatewayRescanned")),
        "{events:#?}"
    );
}

/// SIGTERM while a sync is in flight (the gateway is slow to rescan): `/readyz` fails at once,
/// the sync finishes and is reported, then the process exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_the_sync_in_flight_finish_then_exits_0() {
    let (mut world, _c1) = synced_world(
        "sidecar-sigterm",
        &[("projects/demo/project.json", "v1")],
        projects_profile("proceed"),
    )
    .await;
    world
        .sim
        .set_fault(Endpoint::ScanProjects, Fault::delay(Duration::from_secs(2)));
    world.sim.clear_calls();
    let c2 = world.commit(&[("projects/demo/project.json", "v2")], "second");
    world.request_ref(CR, "main").await;
    world
        .wait_for("the rescan in flight", || async {
            world
                .sim
                .calls()
                .iter()
                .any(|c| c.endpoint() == Some(Endpoint::ScanProjects) && c.status.is_none())
        })
        .await;
    world.agents[0].terminate();
    let terminated = Instant::now();
    world
        .wait_for("/readyz to fail", || async {
            world.agents[0].probe("/readyz") == Some(503)
        })
        .await;
    assert!(
        terminated.elapsed() < Duration::from_millis(500),
        "readiness failed {:?} after SIGTERM",
        terminated.elapsed()
    );
    assert_eq!(
        world.agents[0].wait_exit(Duration::from_secs(20)).code(),
        Some(0)
    );
    assert!(
        terminated.elapsed() >= Duration::from_millis(1000),
        "it waited for the sync"
    );
    let status = world.status(CR, "ignition-0").await.unwrap();
    assert_eq!(status.status, SyncStatus::Synced, "{status:?}");
    assert_eq!(status.commit.as_deref(), Some(c2.as_str()));
}

/// A profile's `dryRun` and `spec.paused`: a dry run reports what would change and writes
/// nothing (and does not hold the gateway's startup back); paused writes nothing either;
/// turning both off syncs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_and_paused_write_nothing() {
    let mut world = World::new("sidecar-paused").await;
    world.commit(&[("projects/demo/project.json", "v1")], "first");
    world.create_api_secret("gw-api").await;
    let mut profiles = projects_profile("proceed");
    profiles["standard"]["dryRun"] = json!(true);
    world
        .create_gatewaysync(CR, spec(&world, profiles.clone()))
        .await;
    world.create_pod("ignition-0", CR, &[], &[]).await;
    let env = world.agent_env("ignition-0");
    let agent = world.start_agent("ignition-0", env);
    wait_started(&world, agent, "/startupz after a dry run").await;
    let status = world
        .wait_status(CR, "ignition-0", "a dry run", |s| {
            s.message.as_deref().is_some_and(|m| m.contains("dry run"))
        })
        .await;
    assert_eq!(status.status, SyncStatus::Pending);
    assert_eq!(status.files_added, 1, "what would be added");
    assert!(!world.data("ignition-0").join("projects").exists());
    assert!(
        scans(&world).is_empty(),
        "a dry run asks the gateway nothing"
    );

    profiles["standard"]["dryRun"] = json!(false);
    world
        .patch_spec(CR, json!({"paused": true, "sync": {"profiles": profiles}}))
        .await;
    let status = world
        .wait_status(CR, "ignition-0", "paused", |s| {
            s.message.as_deref().is_some_and(|m| m.contains("paused"))
        })
        .await;
    assert_eq!(status.status, SyncStatus::Pending);
    assert!(!world.data("ignition-0").join("projects").exists());
    let events = world.agent_events(CR).await;
    assert!(
        events
            .iter()
            .any(|e| e.reason.as_deref() == Some("SyncPaused")),
        "{events:#?}"
    );

    world.patch_spec(CR, json!({"paused": false})).await;
    world
        .wait_status(CR, "ignition-0", "Synced", |s| {
            s.status == SyncStatus::Synced
        })
        .await;
    assert!(
        world
            .data("ignition-0")
            .join("projects/demo/project.json")
            .exists()
    );
}

fn big_file(version: u32, i: usize) -> String {
    format!(
        "{{\"version\": {version}, \"file\": {i}, \"pad\": \"{}\"}}",
        "x".repeat(2048)
    )
}

/// SIGKILL in the middle of applying a commit that rewrites thousands of files, then a
/// restart: every file is whole (old or new, never torn) right after the kill, and the
/// restarted agent converges to the new commit with nothing left over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_sync_then_restart_converges_without_a_torn_file() {
    const FILES: usize = 3000;
    let v1: Vec<(String, String)> = (0..FILES)
        .map(|i| (format!("projects/p{}/f{i}.json", i / 100), big_file(1, i)))
        .collect();
    let v1_refs: Vec<(&str, &str)> = v1.iter().map(|(p, c)| (p.as_str(), c.as_str())).collect();
    let (mut world, _c1) =
        synced_world("sidecar-sigkill", &v1_refs, projects_profile("proceed")).await;

    // c2: every file rewritten, the last 100 deleted, 100 new.
    let v2: Vec<(String, Option<String>)> = (0..FILES + 100)
        .map(|i| {
            let path = format!("projects/p{}/f{i}.json", i / 100);
            let content = (!(FILES - 100..FILES).contains(&i)).then(|| big_file(2, i));
            (path, content)
        })
        .collect();
    let changes: Vec<(&str, Option<&str>)> =
        v2.iter().map(|(p, c)| (p.as_str(), c.as_deref())).collect();
    let c2 = world.commit_changes(&changes, "second");

    // Kill the agent in the middle of the apply: once the engine's journal says it is
    // applying and the first new file has landed.
    let live = world.data("ignition-0");
    let journal = live.join(".stoker/journal.json");
    let new_files: Vec<std::path::PathBuf> = (FILES..FILES + 100)
        .map(|i| live.join(format!("projects/p{}/f{i}.json", i / 100)))
        .collect();
    let pid = world.agents[0].pid();
    let killer = std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !(journal.exists() && new_files.iter().any(|f| f.exists())) {
            assert!(Instant::now() < deadline, "the sync never started applying");
            std::thread::sleep(Duration::from_micros(200));
        }
        let killed = std::process::Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
    });
    world.request_ref(CR, "main").await;
    tokio::task::spawn_blocking(move || killer.join().unwrap())
        .await
        .unwrap();
    let exit = world.agents[0].wait_exit(Duration::from_secs(10));
    assert_eq!(exit.code(), None, "killed by a signal: {exit:?}");

    // Right after the kill: every file whole.
    let files = tree(&world.data("ignition-0"));
    let (mut old, mut new, mut temporaries) = (0, 0, 0);
    for (path, content) in &files {
        let Some(name) = path.strip_prefix("projects/") else {
            panic!("unexpected file {path}");
        };
        let index: Option<usize> = name
            .split_once("/f")
            .and_then(|(_, f)| f.strip_suffix(".json"))
            .and_then(|n| n.parse().ok());
        match index {
            Some(i) if *content == big_file(1, i) => old += 1,
            Some(i) if *content == big_file(2, i) => new += 1,
            Some(_) => panic!("torn file {path}: {} bytes", content.len()),
            None => temporaries += 1,
        }
    }
    eprintln!("after SIGKILL: {old} old, {new} new, {temporaries} temporaries");
    let status = world.status(CR, "ignition-0").await.unwrap();
    assert_ne!(
        status
            .commit
            .as_deref()
            .filter(|_| status.status == SyncStatus::Synced),
        Some(c2.as_str()),
        "killed before it reported c2 synced"
    );

    // Restart: converges to c2 exactly.
    let env = world.agents[0].env.clone();
    world.start_agent("ignition-0-restarted", env);
    wait_synced(&world, "ignition-0", "Synced at c2 after the restart", &c2).await;
    let expected: std::collections::BTreeMap<String, String> = v2
        .into_iter()
        .filter_map(|(p, c)| c.map(|c| (p, c)))
        .collect();
    let files = tree(&world.data("ignition-0"));
    assert_eq!(files.len(), expected.len());
    assert!(
        files == expected,
        "the restarted agent converged to c2 exactly"
    );
}

/// Three gateways, three profiles, one repository: `{{.GatewayName}}` and `{{.Labels.site}}`
/// route each to its own files. A new commit reaches all three.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::too_many_lines)] // one end-to-end scenario, step by step
async fn three_gateways_get_their_own_files() {
    let mut world = World::new("sidecar-three").await;
    let c1 = world.commit(
        &[
            ("services/alpha/projects/a/project.json", "alpha"),
            ("services/beta/projects/b/project.json", "beta"),
            ("sites/north/config/site.json", "north"),
            ("sites/south/config/site.json", "south"),
            ("shared/common.txt", "common"),
        ],
        "first",
    );
    world.create_api_secret("gw-api").await;
    let profiles = json!({
        "by-name": {"mappings": [
            {"source": "services/{{.GatewayName}}/projects", "destination": "projects"},
            {"source": "shared", "destination": "shared"}]},
        "by-site": {"mappings": [
            {"source": "sites/{{.Labels.site}}/config", "destination": "config"}]},
        "by-both": {"mappings": [
            {"source": "services/{{.GatewayName}}/projects", "destination": "projects"},
            {"source": "sites/{{.Labels.site}}/config", "destination": "config"}]},
    });
    world.create_gatewaysync(CR, spec(&world, profiles)).await;
    for (pod, gateway, profile, site) in [
        ("alpha-0", "alpha", "by-name", "north"),
        ("north-0", "north-gw", "by-site", "north"),
        ("beta-0", "beta", "by-both", "south"),
    ] {
        world
            .create_pod(
                pod,
                CR,
                &[
                    ("stoker.io/gateway-name", gateway),
                    ("stoker.io/profile", profile),
                ],
                &[("site", site)],
            )
            .await;
    }
    for pod in ["alpha-0", "north-0", "beta-0"] {
        let env = world.agent_env(pod);
        world.start_agent(pod, env);
    }
    for pod in ["alpha-0", "north-0", "beta-0"] {
        wait_synced(&world, pod, "Synced at c1", &c1).await;
    }
    world
        .wait_gs(CR, "Ready with 3/3 synced", |gs| ready(gs, "3/3 synced"))
        .await;
    let expect = |pairs: &[(&str, &str)]| -> std::collections::BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(p, c)| ((*p).to_owned(), (*c).to_owned()))
            .collect()
    };
    assert_eq!(
        tree(&world.data("alpha-0")),
        expect(&[
            ("projects/a/project.json", "alpha"),
            ("shared/common.txt", "common")
        ])
    );
    assert_eq!(
        tree(&world.data("north-0")),
        expect(&[("config/site.json", "north")])
    );
    assert_eq!(
        tree(&world.data("beta-0")),
        expect(&[
            ("projects/b/project.json", "beta"),
            ("config/site.json", "south")
        ])
    );

    let pushed = Instant::now();
    let c2 = world.commit(
        &[
            ("sites/north/config/site.json", "north 2"),
            ("sites/south/config/site.json", "south 2"),
            ("shared/common.txt", "common 2"),
        ],
        "second",
    );
    world.request_ref(CR, "main").await;
    for pod in ["alpha-0", "north-0", "beta-0"] {
        wait_synced(&world, pod, "Synced at c2", &c2).await;
    }
    eprintln!(
        "MEASURE push -> 3 agents report Synced (requested-ref, operator in the loop): {:?}",
        pushed.elapsed()
    );
    world
        .wait_gs(CR, "3/3 synced at c2", |gs| ready_at(gs, "3/3 synced", &c2))
        .await;
    eprintln!(
        "MEASURE push -> GatewaySync Ready, 3/3 synced at the new commit: {:?}",
        pushed.elapsed()
    );
    assert_eq!(
        std::fs::read_to_string(world.data("beta-0").join("config/site.json")).unwrap(),
        "south 2"
    );
}

/// A gateway whose API key does not exist yet (the Secret is created after the gateway's
/// first start): under `proceed` the files are synced all the same, the status says the
/// rescan fails and why; once the key file appears the rescan goes through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_api_key_yet_files_sync_and_the_rescan_waits_for_the_key() {
    let mut world = World::new("sidecar-nokey").await;
    let c1 = world.commit(&[("projects/demo/project.json", "v1")], "first");
    world
        .create_gatewaysync(CR, spec(&world, projects_profile("proceed")))
        .await;
    // No Secret gw-api yet: the injector mounts it as optional, so the kubelet starts the pod
    // with an empty volume.
    world.create_pod("ignition-0", CR, &[], &[]).await;
    let env = world.agent_env("ignition-0");
    let key = env
        .iter()
        .find(|(name, _)| name == "API_KEY_FILE")
        .map(|(_, value)| std::path::PathBuf::from(value))
        .unwrap();
    assert!(!key.exists());
    let agent = world.start_agent("ignition-0", env);
    wait_started(&world, agent, "/startupz without a key").await;
    assert_eq!(
        std::fs::read_to_string(world.data("ignition-0").join("projects/demo/project.json"))
            .unwrap(),
        "v1"
    );
    let status = world
        .wait_status(CR, "ignition-0", "Error: the rescan needs the key", |s| {
            s.status == SyncStatus::Error
        })
        .await;
    let message = status.message.unwrap();
    assert!(
        message.contains("rescan failed") && message.contains("API key file"),
        "{message}"
    );
    assert_eq!(status.commit.as_deref(), Some(c1.as_str()));

    // The Secret is created; the kubelet's refresh of mounted Secrets brings the file.
    world.create_api_secret("gw-api").await;
    world.refresh_secret_volumes("ignition-0").await;
    assert!(key.exists());
    world
        .wait_status(CR, "ignition-0", "Synced once the key exists", |s| {
            s.status == SyncStatus::Synced
                && s.last_scan_result
                    .as_deref()
                    .is_some_and(|r| r.contains("scan/config 200"))
        })
        .await;
}

/// The variables the injector promises `stoker-agent sidecar` (docs/kubernetes.md, "What the
/// injector adds"), whatever the pod.
const CONTRACT: [&str; 10] = [
    "POD_NAME",
    "POD_NAMESPACE",
    "CR_NAME",
    "CR_NAMESPACE",
    "REPO_PATH",
    "DATA_PATH",
    "GATEWAY_PORT",
    "GATEWAY_TLS",
    "API_KEY_FILE",
    "SYNC_PERIOD",
];

/// The agent of `pod` got the injector's whole contract, `extra` too (`GATEWAY_NAME`,
/// `PROFILE`, the Git credential file...) and nothing optional it was not asked for; its paths
/// lead to the directories standing for the volumes (`files`: variable → expected content).
fn assert_injector_contract(
    world: &World,
    pod: &str,
    cr: &str,
    extra: &[&str],
    files: &[(&str, &str)],
) {
    let running = world.kubelet_pod(pod);
    let pod_env: std::collections::BTreeMap<&str, &str> = running
        .agent
        .pod_env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let mut expected: Vec<&str> = CONTRACT.iter().chain(extra).copied().collect();
    expected.sort_unstable();
    let mut names: Vec<&str> = pod_env.keys().copied().collect();
    names.sort_unstable();
    assert_eq!(names, expected, "the agent's environment in the stored pod");
    assert_eq!(pod_env["POD_NAME"], pod);
    assert_eq!(pod_env["POD_NAMESPACE"], world.ns);
    assert_eq!(pod_env["CR_NAMESPACE"], world.ns);
    assert_eq!(pod_env["CR_NAME"], cr);
    assert_eq!(pod_env["GATEWAY_PORT"], world.sim.addr().port().to_string());
    assert_eq!(pod_env["GATEWAY_TLS"], "false");

    let env: std::collections::BTreeMap<String, String> =
        world.agent_env(pod).into_iter().collect();
    assert_eq!(
        std::path::Path::new(&env["DATA_PATH"]),
        world.data(pod),
        "the agent writes where the gateway reads"
    );
    assert!(std::path::Path::new(&env["REPO_PATH"]).is_dir());
    for (variable, content) in files {
        assert_eq!(
            std::fs::read_to_string(&env[*variable]).unwrap(),
            *content,
            "{variable}"
        );
    }
}

/// A pod as a StatefulSet like the Ignition chart's creates it: the claim of the volume claim
/// template `ignition-data` mounted at Ignition's data directory, no `stoker.io/cr-name` (the
/// namespace's only GatewaySync is found and named in the pod), the gateway named after the
/// `app.kubernetes.io/name` label. The files land in that claim's directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statefulset_pod_gets_its_files_in_the_claim() {
    let mut world = World::new("sidecar-sts").await;
    let c1 = world.commit(
        &[
            ("projects/demo/project.json", "v1"),
            (
                "templates/identity.txt",
                "gateway={{.GatewayName}} pod={{.PodName}} ordinal={{.PodOrdinal}} cr={{.CRName}}",
            ),
        ],
        "first",
    );
    world.create_api_secret("gw-api").await;
    let profiles = json!({"standard": {"mappings": [
        {"source": "projects", "destination": "projects"},
        {"source": "templates/identity.txt", "destination": "config/identity.txt",
         "template": true},
    ]}});
    world.create_gatewaysync(CR, spec(&world, profiles)).await;
    let stored = world
        .create_gateway_pod(pods::statefulset_pod("ignition", 0, &[]))
        .await;
    let annotations = stored.metadata.annotations.as_ref().unwrap();
    assert_eq!(annotations["stoker.io/cr-name"], CR, "found and written");
    assert_eq!(annotations["stoker.io/injected"], "true");
    let spec = stored.spec.as_ref().unwrap();
    let agent = &spec.init_containers.as_ref().unwrap()[0];
    assert_eq!(agent.name, "stoker-agent");
    assert!(
        agent
            .volume_mounts
            .iter()
            .flatten()
            .any(|m| { m.name == "ignition-data" && m.mount_path == pods::IGNITION_DATA }),
        "{:?}",
        agent.volume_mounts
    );
    assert_injector_contract(
        &world,
        "ignition-0",
        CR,
        &[],
        &[("API_KEY_FILE", crate::sidecar_support::API_KEY)],
    );
    assert!(
        world
            .data("ignition-0")
            .ends_with("pods/ignition-0/volumes/ignition-data")
    );

    let env = world.agent_env("ignition-0");
    world.start_agent("ignition-0", env);
    wait_synced(&world, "ignition-0", "Synced at c1", &c1).await;
    let expected: std::collections::BTreeMap<String, String> = [
        (
            "config/identity.txt",
            "gateway=ignition pod=ignition-0 ordinal=0 cr=site",
        ),
        ("projects/demo/project.json", "v1"),
    ]
    .into_iter()
    .map(|(p, c)| (p.to_owned(), c.to_owned()))
    .collect();
    assert_eq!(tree(&world.data("ignition-0")), expected);
}

/// A private repository with `spec.git.auth.sshKey` and `knownHosts`: the injector mounts the
/// key and the `known_hosts` (two keys of one Secret, each volume projecting only its own) and
/// names the files in `GIT_SSH_KEY_FILE` and `GIT_KNOWN_HOSTS_FILE`; the agent clones from the
/// test `sshd` with them, checking the host key. The pod's profile and gateway name reach the
/// agent as `PROFILE` and `GATEWAY_NAME`.
///
/// SSH rather than a token: Stoker sends a token only over `https://` and the test Git servers
/// speak plain HTTP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssh_key_auth_clones_with_the_injected_secrets() {
    let mut world = World::new("sidecar-ssh").await;
    let servers = stoker_testkit::git::servers();
    let key = std::fs::read_to_string(&servers.ssh().key).unwrap();
    let known_hosts = std::fs::read_to_string(&servers.ssh().known_hosts).unwrap();
    let c1 = world.commit(&[("projects/demo/project.json", "private")], "first");
    world.create_api_secret("gw-api").await;
    world
        .create_secret(
            "git-ssh",
            &[("identity", &key), ("known_hosts", &known_hosts)],
        )
        .await;
    let mut spec = spec(
        &world,
        json!({
            "standard": {"mappings": [{"source": "projects", "destination": "projects"}]},
            "private": {"mappings": [{"source": "projects", "destination": "private-projects"}]},
        }),
    );
    spec["git"] = json!({
        "repo": servers.ssh_url(&world.repo),
        "ref": "main",
        "auth": {"sshKey": {
            "secretRef": {"name": "git-ssh", "key": "identity"},
            "knownHosts": {"secretRef": {"name": "git-ssh", "key": "known_hosts"}},
        }},
    });
    world.create_gatewaysync(CR, spec).await;
    world
        .create_pod(
            "ignition-0",
            CR,
            &[
                ("stoker.io/profile", "private"),
                ("stoker.io/gateway-name", "vault"),
            ],
            &[],
        )
        .await;
    assert_injector_contract(
        &world,
        "ignition-0",
        CR,
        &[
            "GATEWAY_NAME",
            "PROFILE",
            "GIT_SSH_KEY_FILE",
            "GIT_KNOWN_HOSTS_FILE",
        ],
        &[
            ("API_KEY_FILE", crate::sidecar_support::API_KEY),
            ("GIT_SSH_KEY_FILE", &key),
            ("GIT_KNOWN_HOSTS_FILE", &known_hosts),
        ],
    );
    let running = world.kubelet_pod("ignition-0");
    for (name, value) in [("PROFILE", "private"), ("GATEWAY_NAME", "vault")] {
        assert!(
            running
                .agent
                .pod_env
                .contains(&(name.to_owned(), value.to_owned())),
            "{name}={value} in {:?}",
            running.agent.pod_env
        );
    }
    let credentials = running
        .agent
        .host_path(stoker_k8s::injector::GIT_CREDENTIALS_DIR)
        .unwrap();
    assert_eq!(
        std::fs::read_dir(&credentials).unwrap().count(),
        1,
        "only the key the GatewaySync names is projected"
    );

    let env = world.agent_env("ignition-0");
    world.start_agent("ignition-0", env);
    let status = wait_synced(&world, "ignition-0", "Synced at c1", &c1).await;
    assert_eq!(status.profile.as_deref(), Some("private"));
    assert_eq!(status.gateway, "vault");
    let files = tree(&world.data("ignition-0"));
    assert_eq!(
        files.into_iter().collect::<Vec<_>>(),
        [(
            "private-projects/demo/project.json".to_owned(),
            "private".to_owned()
        )]
    );
}

/// The test kubelet resolves the downward API, maps literal paths into mounts, and fails on
/// what it does not understand, so that an injector change cannot be silently ignored by these
/// tests.
#[test]
fn the_test_kubelet_maps_paths_and_refuses_what_it_does_not_understand() {
    use crate::sidecar_support::kubelet::{KubeletError, PodVolumes};
    let dir = tempfile::tempdir().unwrap();
    let pod = |env: serde_json::Value, extra: serde_json::Value| {
        let mut container = json!({
            "name": "stoker-agent", "env": env,
            "volumeMounts": [{"name": "repo", "mountPath": "/repo"}],
        });
        container
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().cloned().unwrap_or_default());
        serde_json::from_value::<k8s_openapi::api::core::v1::Pod>(json!({
            "metadata": {"name": "p-0", "namespace": "ns", "labels": {"site": "north"},
                         "annotations": {"path": "/from/the/pod"}},
            "spec": {"initContainers": [container], "containers": [],
                     "volumes": [{"name": "repo", "emptyDir": {}}]},
        }))
        .unwrap()
    };
    let run = |pod: &k8s_openapi::api::core::v1::Pod| {
        PodVolumes::directories(pod, dir.path())
            .and_then(|volumes| volumes.run(pod, "stoker-agent"))
    };

    let ok = pod(
        json!([
            {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "SITE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['site']"}}},
            {"name": "NONE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['x']"}}},
            {"name": "ANNOTATION",
             "valueFrom": {"fieldRef": {"fieldPath": "metadata.annotations['path']"}}},
            {"name": "REPO_PATH", "value": "/repo"},
            {"name": "FILE", "value": "/repo/sub/file"},
        ]),
        json!({}),
    );
    let running = run(&ok).unwrap();
    let repo = dir.path().join("volumes/repo");
    let expected = [
        ("POD", "p-0".to_owned()),
        ("SITE", "north".to_owned()),
        ("NONE", String::new()),
        // Data about the pod, not a path in the container: left alone.
        ("ANNOTATION", "/from/the/pod".to_owned()),
        ("REPO_PATH", repo.display().to_string()),
        ("FILE", repo.join("sub/file").display().to_string()),
    ]
    .map(|(k, v)| (k.to_owned(), v));
    assert_eq!(running.env, expected);

    let error =
        |env: serde_json::Value, extra: serde_json::Value| run(&pod(env, extra)).unwrap_err();
    assert!(matches!(
        error(json!([{"name": "T", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]), json!({})),
        KubeletError::EnvSource { source_kind, .. } if source_kind == "secretKeyRef"
    ));
    assert!(matches!(
        error(json!([{"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}]), json!({})),
        KubeletError::FieldPath { path, .. } if path == "status.podIP"
    ));
    assert!(matches!(
        error(json!([{"name": "X", "value": "$(POD)/x"}]), json!({})),
        KubeletError::Reference { .. }
    ));
    assert!(matches!(
        error(json!([{"name": "CA", "value": "/etc/ssl/ca.pem"}]), json!({})),
        KubeletError::OutsideMounts { variable, .. } if variable == "CA"
    ));
    assert!(matches!(
        error(
            json!([]),
            json!({"envFrom": [{"configMapRef": {"name": "c"}}]})
        ),
        KubeletError::EnvFrom(_)
    ));
    let mut host_path_pod = ok.clone();
    host_path_pod.spec.as_mut().unwrap().volumes = Some(vec![
        serde_json::from_value(json!({"name": "repo", "hostPath": {"path": "/x"}})).unwrap(),
    ]);
    assert!(matches!(
        run(&host_path_pod).unwrap_err(),
        KubeletError::VolumeKind { kind, .. } if kind == "hostPath"
    ));
}

/// Secret volumes as the kubelet fills them: `items` select keys and name files, the mode
/// applies, a missing Secret or key fails unless the volume is optional.
#[test]
fn the_test_kubelet_projects_secrets_like_the_kubelet() {
    use crate::sidecar_support::kubelet::{KubeletError, SecretFile, secret_files};
    use k8s_openapi::api::core::v1::{Secret, SecretVolumeSource};
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "s"},
        "data": {"token": "c2VjcmV0", "other": "eA=="},
    }))
    .unwrap();
    let source =
        |value: serde_json::Value| -> SecretVolumeSource { serde_json::from_value(value).unwrap() };
    let all = secret_files("v", &source(json!({"secretName": "s"})), Some(&secret)).unwrap();
    assert_eq!(
        all.iter().map(|f| f.path.as_str()).collect::<Vec<_>>(),
        ["other", "token"]
    );
    assert!(all.iter().all(|f| f.mode == 0o644));
    let items = source(json!({"secretName": "s", "defaultMode": 0o444,
                              "items": [{"key": "token", "path": "dir/token"}]}));
    assert_eq!(
        secret_files("v", &items, Some(&secret)).unwrap(),
        [SecretFile {
            path: "dir/token".to_owned(),
            content: b"secret".to_vec(),
            mode: 0o444
        }]
    );
    assert!(matches!(
        secret_files("v", &items, None).unwrap_err(),
        KubeletError::MissingSecret { secret, .. } if secret == "s"
    ));
    let mut optional = items.clone();
    optional.optional = Some(true);
    assert_eq!(secret_files("v", &optional, None).unwrap(), []);
    let missing_key = source(json!({"secretName": "s", "items": [{"key": "nope", "path": "n"}]}));
    assert!(matches!(
        secret_files("v", &missing_key, Some(&secret)).unwrap_err(),
        KubeletError::MissingKey { key, .. } if key == "nope"
    ));
    let escaping = source(json!({"secretName": "s", "items": [{"key": "token", "path": "../t"}]}));
    assert!(matches!(
        secret_files("v", &escaping, Some(&secret)).unwrap_err(),
        KubeletError::ItemPath { .. }
    ));
}

/// A quiet agent (nothing to sync) refreshes its report's heartbeat every two sync periods,
/// and the operator's `AgentReady` counts it as reporting; once the agent is gone, three sync
/// periods later it does not, and its gateway's entry says since when.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_agent_keeps_agent_ready_with_its_heartbeat_and_a_gone_one_loses_it() {
    let (mut world, _c1) = synced_world(
        "sidecar-heartbeat",
        &[("projects/demo/project.json", "v1")],
        // The shortest period the CRD allows (5 s): a heartbeat every 10 s.
        json!({"standard": {
            "syncPeriod": 5,
            "mappings": [{"source": "projects", "destination": "projects"}]
        }}),
    )
    .await;
    let synced = world.status(CR, "ignition-0").await.unwrap();
    // Nothing changes, yet the report is refreshed: twice, to show it keeps doing it.
    let first = world
        .wait_status(CR, "ignition-0", "a heartbeat", |s| {
            s.heartbeat.is_some_and(|beat| beat > synced.time)
        })
        .await
        .heartbeat
        .unwrap();
    let second = world
        .wait_status(CR, "ignition-0", "another heartbeat", |s| {
            s.heartbeat.is_some_and(|beat| beat > first)
        })
        .await;
    assert_eq!(second.history, synced.history, "a heartbeat is not a sync");
    assert_eq!(second.time, synced.time);

    // The operator looks again (a touch of the resource): the agent is reporting, although
    // its last sync is older than three periods.
    let touch = |world: &World, n: u32| {
        let api = Api::<GatewaySync>::namespaced(world.client.clone(), &world.ns);
        async move {
            api.patch(
                CR,
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"labels": {"touch": n.to_string()}}})),
            )
            .await
            .unwrap();
        }
    };
    touch(&world, 1).await;
    let gs = world
        .wait_gs(CR, "AgentReady=True", |gs| {
            condition_of(gs, "AgentReady").is_some_and(|c| c.status == "True")
        })
        .await;
    assert_eq!(
        condition_of(&gs, "AgentReady").unwrap().message,
        "1/1 agents reporting"
    );

    // The agent goes away (its pod stays): after three quiet periods it is not reporting.
    world.agents[0].terminate();
    world.agents[0].wait_exit(Duration::from_secs(20));
    // Three periods (15 s) and a little more since its last word, at most.
    tokio::time::sleep(Duration::from_secs(16)).await;
    touch(&world, 2).await;
    let gs = world
        .wait_gs(CR, "AgentReady=False", |gs| {
            condition_of(gs, "AgentReady").is_some_and(|c| c.status == "False")
        })
        .await;
    let condition = condition_of(&gs, "AgentReady").unwrap();
    assert_eq!(
        (condition.reason.as_str(), condition.message.as_str()),
        ("AgentsNotReporting", "0/1 agents reporting")
    );
    let gateway = &gs.status.as_ref().unwrap().discovered_gateways[0];
    let message = gateway.message.as_deref().unwrap_or_default();
    assert!(
        message.starts_with("no word from the agent for "),
        "{message}"
    );
}

fn condition_of(
    gs: &GatewaySync,
    type_: &str,
) -> Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition> {
    gs.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .cloned()
}
