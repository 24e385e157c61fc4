use super::*;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use stoker_testkit::metrics::{OPERATOR, compare, parse};

use crate::crd::DiscoveredGateway;

fn gateway_sync(yaml_auth: &str) -> GatewaySync {
    serde_yaml::from_str(&format!(
        r#"
apiVersion: stoker.io/v1alpha1
kind: GatewaySync
metadata: {{name: site, namespace: plant}}
spec:
  git: {{repo: "https://git.example/scada.git", ref: main{yaml_auth}}}
  polling: {{interval: 2m}}
  sync: {{profiles: {{standard: {{mappings: [{{source: a, destination: b}}]}}}}}}
"#
    ))
    .unwrap()
}

fn gateway(name: &str, status: SyncStatus, last_sync: Option<i64>) -> DiscoveredGateway {
    DiscoveredGateway {
        name: name.to_owned(),
        namespace: "plant".to_owned(),
        pod_name: name.to_owned(),
        sync_status: status,
        last_sync_time: last_sync.map(|s| Time(jiff::Timestamp::from_second(s).unwrap())),
        ..DiscoveredGateway::default()
    }
}

fn condition(type_: &str, status: &str) -> Condition {
    Condition {
        type_: type_.to_owned(),
        status: status.to_owned(),
        reason: "Test".to_owned(),
        message: String::new(),
        last_transition_time: Time(jiff::Timestamp::UNIX_EPOCH),
        observed_generation: None,
    }
}

fn status(gateways: Vec<DiscoveredGateway>, conditions: Vec<Condition>) -> GatewaySyncStatus {
    GatewaySyncStatus {
        discovered_gateways: gateways,
        conditions,
        last_sync_time: Some(Time(jiff::Timestamp::from_second(1_767_272_400).unwrap())),
        ..GatewaySyncStatus::default()
    }
}

fn app() -> crate::crd::GithubAppSpec {
    serde_yaml::from_str(
        "{appId: 12345, installationId: 678, privateKeySecretRef: {name: app, key: key.pem}}",
    )
    .unwrap()
}

fn sample(text: &str, series: &str) -> Option<String> {
    text.lines().find_map(|line| {
        line.strip_prefix(series)?
            .strip_prefix(' ')
            .map(str::to_owned)
    })
}

#[test]
fn every_listed_metric_is_registered_with_its_labels_and_nothing_else() {
    let metrics = OperatorMetrics::new();
    let took = Duration::from_millis(3);
    metrics.reconciled("plant", "site", took, ReconcileResult::Success);
    metrics.ref_resolved("plant", "site", took, true);
    let gs = gateway_sync("");
    metrics.observe(
        &gs,
        &status(
            vec![gateway("gw-0", SyncStatus::Synced, Some(1_767_272_000))],
            vec![condition("Ready", "True")],
        ),
    );
    metrics.set_github_app_token_expiry("plant", "site", &app(), 1_767_276_000);
    metrics.injection("plant", "injected", took);
    metrics.validation("plant", "allowed", took);
    metrics.receiver_request("github", 202);
    metrics.notification("plant", "site", "slack", "delivered");
    let problems = compare(&parse(&metrics.encode().unwrap()), OPERATOR, "stoker_", &[]);
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn observe_sets_v0_5_1_gauges_from_the_status() {
    let metrics = OperatorMetrics::new();
    let gs = gateway_sync(", auth: {token: {secretRef: {name: git, key: token}}}");
    metrics.observe(
        &gs,
        &status(
            vec![
                gateway("gw-0", SyncStatus::Synced, Some(1_767_272_000)),
                gateway("gw-1", SyncStatus::Error, None),
                gateway("gw-2", SyncStatus::MissingSidecar, None),
                gateway("gw-3", SyncStatus::Pending, None),
            ],
            vec![
                condition("Ready", "True"),
                condition("AllGatewaysSynced", "False"),
            ],
        ),
    );
    let text = metrics.encode().unwrap();
    let nn = "name=\"site\",namespace=\"plant\"";
    for (series, value) in [
        (
            format!("stoker_controller_gateways_discovered{{{nn}}}"),
            "4",
        ),
        (format!("stoker_controller_gateways_synced{{{nn}}}"), "1"),
        (
            format!("stoker_controller_gateways_missing_sidecar{{{nn}}}"),
            "1",
        ),
        (format!("stoker_controller_cr_ready{{{nn}}}"), "1"),
        (format!("stoker_controller_cr_paused{{{nn}}}"), "0"),
        (
            format!("stoker_controller_last_sync_timestamp_seconds{{{nn}}}"),
            "1767272400",
        ),
        (
            format!("stoker_controller_gateway_sync_status{{{nn},gateway=\"gw-0\"}}"),
            "1",
        ),
        (
            format!("stoker_controller_gateway_sync_status{{{nn},gateway=\"gw-1\"}}"),
            "2",
        ),
        (
            format!("stoker_controller_gateway_sync_status{{{nn},gateway=\"gw-2\"}}"),
            "3",
        ),
        (
            format!("stoker_controller_gateway_sync_status{{{nn},gateway=\"gw-3\"}}"),
            "0",
        ),
        (
            format!(
                "stoker_controller_gateway_last_sync_timestamp_seconds{{{nn},gateway=\"gw-0\"}}"
            ),
            "1767272000",
        ),
        (
            format!("stoker_controller_condition_status{{{nn},type=\"Ready\"}}"),
            "1",
        ),
        (
            format!("stoker_controller_condition_status{{{nn},type=\"AllGatewaysSynced\"}}"),
            "0",
        ),
        (
            format!(
                "stoker_controller_cr_info{{{nn},git_repo=\"https://git.example/scada.git\",git_ref=\"main\",auth_type=\"token\",polling_interval=\"2m\"}}"
            ),
            "1",
        ),
    ] {
        assert_eq!(
            sample(&text, &series).as_deref(),
            Some(value),
            "{series} in\n{text}"
        );
    }
}

#[test]
fn gateways_conditions_and_info_that_went_away_lose_their_series() {
    let metrics = OperatorMetrics::new();
    let mut gs = gateway_sync("");
    metrics.observe(
        &gs,
        &status(
            vec![
                gateway("gw-0", SyncStatus::Synced, Some(1)),
                gateway("gw-1", SyncStatus::Synced, Some(1)),
            ],
            vec![condition("Ready", "True"), condition("RefSkew", "True")],
        ),
    );
    gs.spec.git.reference = "v2".to_owned();
    gs.spec.paused = true;
    metrics.observe(
        &gs,
        &status(
            vec![gateway("gw-0", SyncStatus::Pending, None)],
            vec![condition("Ready", "False")],
        ),
    );
    let text = metrics.encode().unwrap();
    assert!(!text.contains("gw-1"), "{text}");
    assert!(!text.contains("RefSkew"), "{text}");
    assert!(!text.contains("git_ref=\"main\""), "{text}");
    assert!(text.contains("git_ref=\"v2\""), "{text}");
    let nn = "name=\"site\",namespace=\"plant\"";
    assert_eq!(
        sample(&text, &format!("stoker_controller_cr_ready{{{nn}}}")).as_deref(),
        Some("0")
    );
    assert_eq!(
        sample(&text, &format!("stoker_controller_cr_paused{{{nn}}}")).as_deref(),
        Some("1")
    );
    // The last sync time a gateway reported stays until the gateway goes away.
    assert_eq!(
        sample(
            &text,
            &format!(
                "stoker_controller_gateway_last_sync_timestamp_seconds{{{nn},gateway=\"gw-0\"}}"
            )
        )
        .as_deref(),
        Some("1")
    );
}

#[test]
fn a_deleted_gateway_sync_leaves_no_series() {
    let metrics = OperatorMetrics::new();
    let gs = gateway_sync("");
    metrics.reconciled("plant", "site", Duration::ZERO, ReconcileResult::Requeue);
    metrics.ref_resolved("plant", "site", Duration::ZERO, false);
    metrics.observe(
        &gs,
        &status(
            vec![gateway("gw-0", SyncStatus::Synced, Some(1))],
            vec![condition("Ready", "True")],
        ),
    );
    metrics.set_github_app_token_expiry("plant", "site", &app(), 2);
    metrics.notification("plant", "site", "pagerduty", "failed");
    metrics.forget("plant", "site");
    let text = metrics.encode().unwrap();
    assert!(!text.contains("name=\"site\""), "{text}");
}

#[test]
fn the_github_app_token_expiry_carries_the_app_and_installation_until_forgotten() {
    let metrics = OperatorMetrics::new();
    metrics.set_github_app_token_expiry("plant", "site", &app(), 1_767_272_400);
    let text = metrics.encode().unwrap();
    assert_eq!(
        sample(
            &text,
            "stoker_controller_github_app_token_expiry_timestamp_seconds{app_id=\"12345\",installation_id=\"678\",name=\"site\",namespace=\"plant\"}"
        )
        .as_deref(),
        Some("1767272400"),
        "{text}"
    );
    metrics.forget_github_app_token("plant", "site");
    assert!(!metrics.encode().unwrap().contains("name=\"site\""));
}

#[test]
fn reconcile_results_are_success_requeue_for_resolution_failures_and_error_otherwise() {
    use kube::runtime::finalizer::Error as Finalizer;
    let ok: crate::error::Result<Action> = Ok(Action::await_change());
    assert_eq!(ReconcileResult::of(&ok), ReconcileResult::Success);
    let wrap = |inner: Error| -> crate::error::Result<Action> {
        Err(Error::Finalizer(Box::new(Finalizer::ApplyFailed(inner))))
    };
    let missing = wrap(Error::MissingSecret {
        name: "git".to_owned(),
        key: "token".to_owned(),
    });
    assert_eq!(ReconcileResult::of(&missing), ReconcileResult::Requeue);
    let not_namespaced = wrap(Error::NotNamespaced {
        name: "x".to_owned(),
    });
    assert_eq!(ReconcileResult::of(&not_namespaced), ReconcileResult::Error);
}

#[test]
fn notifications_are_counted_by_type_and_result() {
    let metrics = OperatorMetrics::new();
    metrics.notification("plant", "site", "slack", "delivered");
    metrics.notification("plant", "site", "slack", "delivered");
    metrics.notification("plant", "site", "generic", "failed");
    // Not a label value the family has: not counted (no unbounded series).
    metrics.notification("plant", "site", "email", "delivered");
    let text = metrics.encode().unwrap();
    assert_eq!(
        sample(
            &text,
            "stoker_controller_notifications_total{name=\"site\",namespace=\"plant\",type=\"slack\",result=\"delivered\"}"
        )
        .as_deref(),
        Some("2")
    );
    assert_eq!(
        sample(
            &text,
            "stoker_controller_notifications_total{name=\"site\",namespace=\"plant\",type=\"generic\",result=\"failed\"}"
        )
        .as_deref(),
        Some("1")
    );
    assert!(!text.contains("email"), "{text}");
}
