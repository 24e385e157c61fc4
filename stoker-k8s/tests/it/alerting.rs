//! `spec.alerting` against a real kube-apiserver: the controller tells a recording webhook
//! (stoker-testkit's `http_recorder`) once per fleet change, and reports a webhook that keeps
//! failing as a condition, an Event and a metric; a failed gateway rescan, reported by the
//! agent's typed `lastScanStatus`, is one `ScanFailure` that PagerDuty resolves when it clears.

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use serde_json::json;
use stoker_k8s::crd::{ScanStatus, SyncStatus};
use stoker_k8s::gateway_status::{GatewayStatusReport, SyncResult, pod_owner_reference};
use stoker_testkit::http_recorder::{RecordingServer, Reply};
use stoker_testkit::kube_api::wait_until;

use crate::controller_support::{World, condition, event_notes, has, spec, summary_is};

/// Bounded waits for deliveries (the dispatcher retries a failing webhook for about 7 s).
const DELIVERY: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::too_many_lines)] // one scenario, step by step
async fn a_fleet_reaching_its_commit_is_one_message_and_a_failing_webhook_is_reported() {
    let world = World::start("alerting").await;
    let slack = RecordingServer::start().unwrap();
    let broken = RecordingServer::start().unwrap();
    broken.set_default(Reply::status(500));
    // Slack's URL is a credential: from a Secret.
    world
        .create_secret("slack-webhook", json!({"url": slack.url()}))
        .await;
    let mut gs_spec = spec("main");
    gs_spec["alerting"] = json!({"webhooks": [
        {"type": "slack", "urlSecretRef": {"name": "slack-webhook", "key": "url"}},
        {"type": "generic", "url": broken.url(), "on": ["SyncCompleted"]},
    ]});
    let (commit, a, b) = world.two_gateway_site(gs_spec).await;
    world
        .report("site", &a, &commit, "main", SyncStatus::Synced, None)
        .await;
    world
        .wait_gs("site", "1/2 synced", |gs| summary_is(gs, "1/2 synced"))
        .await;
    world
        .report("site", &b, &commit, "main", SyncStatus::Synced, None)
        .await;
    world.wait_condition("site", "Ready", "True").await;

    // Then gw-b fails, and recovers. One webhook delivers in order: when the recovery has
    // arrived, anything queued before it has too.
    world
        .report(
            "site",
            &b,
            &commit,
            "main",
            SyncStatus::Error,
            Some("disk full"),
        )
        .await;
    world
        .wait_condition("site", "AllGatewaysSynced", "False")
        .await;
    world
        .report("site", &b, &commit, "main", SyncStatus::Synced, None)
        .await;
    world.wait_condition("site", "Ready", "True").await;
    let requests = slack.wait_for(3, DELIVERY).await;
    let texts: Vec<String> = requests
        .iter()
        .map(|r| r.json()["text"].as_str().unwrap_or_default().to_owned())
        .collect();
    let subject = format!("{}/site", world.namespace);
    assert_eq!(
        texts,
        [
            format!(
                ":white_check_mark: *SyncCompleted* {subject}: 2 of 2 gateways synced to main ({})",
                &commit[..7]
            ),
            format!(
                ":red_circle: *SyncFailed* {subject}: 1 of 2 gateways failed: gw-b (disk full)"
            ),
            format!(
                ":large_green_circle: *SyncRecovered* {subject}: no gateway fails any more (failed: gw-b)"
            ),
        ],
        "{requests:#?}"
    );
    assert!(
        requests
            .iter()
            .all(|r| r.path == "/hook/T000/B000/s3cr3t-path")
    );

    // The generic webhook only wanted SyncCompleted, and always answers 500: tried 4 times,
    // then reported as an Event, a metric and the condition, naming it by index and type.
    let notes = wait_until("a NotificationFailed Event", DELIVERY, || async {
        let notes = event_notes(&world, "site", "NotificationFailed").await;
        (!notes.is_empty()).then_some(notes)
    })
    .await;
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(
        notes[0].starts_with(
            "SyncCompleted not delivered: notification to webhooks[1] (generic): HTTP 500"
        ),
        "{notes:?}"
    );
    assert!(!notes[0].contains("s3cr3t"), "{notes:?}");
    assert_eq!(broken.requests().len(), 4);
    let series = format!(
        "stoker_controller_notifications_total{{name=\"site\",namespace=\"{}\",type=\"generic\",result=\"failed\"}} 1",
        world.namespace
    );
    assert!(world.metrics.encode().unwrap().contains(&series));
    let gs = world
        .wait_condition("site", "NotificationsDelivered", "False")
        .await;
    let (_, reason, message) = condition(&gs, "NotificationsDelivered").unwrap();
    assert_eq!(reason, "DeliveryFailed");
    assert!(
        message.starts_with("notification to webhooks[1] (generic): HTTP 500"),
        "{message}"
    );
    assert!(!message.contains("s3cr3t"), "{message}");
    // Delivery failures do not make the resource unready.
    assert!(has(&gs, "Ready", "True"));
    let delivered = format!(
        "stoker_controller_notifications_total{{name=\"site\",namespace=\"{}\",type=\"slack\",result=\"delivered\"}} 3",
        world.namespace
    );
    assert!(world.metrics.encode().unwrap().contains(&delivered));
}

/// Writes `pod`'s status report as an agent would after a sync of `commit` whose rescan went
/// as `scan` says (`None`: an agent that does not say, like v0.5.1's).
async fn report_scan(world: &World, cr: &str, pod: &Pod, commit: &str, scan: Option<ScanStatus>) {
    let name = pod.name_any();
    let mut report = GatewayStatusReport::new(cr, &name, &name, "test", Timestamp::now());
    let failed = scan == Some(ScanStatus::Failed);
    report.record(SyncResult {
        time: Timestamp::now(),
        commit: Some(commit.to_owned()),
        reference: Some("main".to_owned()),
        status: if failed {
            SyncStatus::Error
        } else {
            SyncStatus::Synced
        },
        files_added: 2,
        message: failed.then(|| "files synced, but the gateway rescan failed".to_owned()),
        ..SyncResult::default()
    });
    report.last_scan_status = scan;
    report.last_scan_result = scan.map(|scan| match scan {
        ScanStatus::Failed => "failed: scan/projects: HTTP 500".to_owned(),
        ScanStatus::Succeeded => "projects 200, config 200".to_owned(),
    });
    let owner = pod_owner_reference(&name, &pod.uid().unwrap());
    let configmap = report.to_configmap(&world.namespace, Some(owner)).unwrap();
    world.apply_configmap(&configmap, "stoker-agent").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_rescan_triggers_one_scan_failure_and_its_recovery_resolves_it() {
    let world = World::start("scanalert").await;
    let pagerduty = RecordingServer::start().unwrap();
    pagerduty.set_default(Reply::status(202));
    world
        .create_secret("pagerduty", json!({"routingKey": "R0UT1NG"}))
        .await;
    let mut gs_spec = spec("main");
    gs_spec["alerting"] = json!({"webhooks": [{
        "type": "pagerduty",
        "url": pagerduty.url(),
        "secretRef": {"name": "pagerduty", "key": "routingKey"},
        "on": ["ScanFailure"],
    }]});
    let (commit, a, b) = world.two_gateway_site(gs_spec).await;
    // gw-a's agent does not say how its rescan went (an older agent): never a scan failure.
    report_scan(&world, "site", &a, &commit, None).await;
    report_scan(&world, "site", &b, &commit, Some(ScanStatus::Succeeded)).await;
    world.wait_condition("site", "Ready", "True").await;

    report_scan(&world, "site", &b, &commit, Some(ScanStatus::Failed)).await;
    let gs = world
        .wait_gs("site", "gw-b's rescan failed", |gs| {
            gs.status.as_ref().is_some_and(|s| {
                s.discovered_gateways
                    .iter()
                    .any(|g| g.last_scan_status == Some(ScanStatus::Failed))
            })
        })
        .await;
    let failed: Vec<&str> = gs
        .status
        .as_ref()
        .unwrap()
        .discovered_gateways
        .iter()
        .filter(|g| g.last_scan_status == Some(ScanStatus::Failed))
        .map(|g| g.name.as_str())
        .collect();
    assert_eq!(failed, ["gw-b"]);
    report_scan(&world, "site", &b, &commit, Some(ScanStatus::Succeeded)).await;
    world.wait_condition("site", "Ready", "True").await;

    // One webhook delivers in order: trigger, then resolve, with the same dedup key.
    let requests = pagerduty.wait_for(2, DELIVERY).await;
    let bodies: Vec<serde_json::Value> = requests.iter().map(|r| r.json()).collect();
    let dedup_key = format!("stoker/{}/site/ScanFailure", world.namespace);
    // Exactly these two, in this order: the SyncFailed that came with the scan failure is not
    // in `on`, and an unknown rescan (gw-a) was never told.
    assert_eq!(bodies.len(), 2, "{bodies:#?}");
    assert_eq!(bodies[0]["event_action"], "trigger", "{bodies:#?}");
    assert_eq!(bodies[0]["dedup_key"], dedup_key.as_str());
    assert_eq!(bodies[0]["routing_key"], "R0UT1NG");
    let summary = bodies[0]["payload"]["summary"].as_str().unwrap_or_default();
    assert!(
        summary.contains(
            "1 of 2 gateways could not rescan after a sync: gw-b (failed: scan/projects: HTTP 500)"
        ),
        "{bodies:#?}"
    );
    assert_eq!(bodies[0]["payload"]["class"], "ScanFailure");
    assert_eq!(bodies[1]["event_action"], "resolve", "{bodies:#?}");
    assert_eq!(bodies[1]["dedup_key"], dedup_key.as_str());
}
