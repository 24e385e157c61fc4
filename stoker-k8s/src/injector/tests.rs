//! One test per rule of the injector. Each applies the patch to the pod's JSON and looks at
//! the resulting pod.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, Pod, Volume};
use serde_json::{Value, json};

use super::*;

const DATA_PATH: &str = "/usr/local/bin/ignition/data";

fn gs(name: &str, spec: Value) -> GatewaySync {
    let mut full = json!({
        "git": {"repo": "https://git.example/r.git", "ref": "main"},
        "sync": {"profiles": {"default": {"mappings": []}, "standard": {"mappings": []}}}
    });
    if let (Some(full), Some(extra)) = (full.as_object_mut(), spec.as_object()) {
        full.extend(extra.clone());
    }
    serde_json::from_value(json!({
        "apiVersion": "stoker.io/v1alpha1", "kind": "GatewaySync",
        "metadata": {"name": name, "namespace": "plant"},
        "spec": full
    }))
    .unwrap()
}

fn site() -> Vec<GatewaySync> {
    vec![gs("site", json!({}))]
}

/// A gateway pod asking for injection (plus `annotations`), with the data volume `data`.
fn pod(annotations: &[(&str, &str)]) -> Pod {
    let mut map: BTreeMap<String, String> = [(INJECT.to_owned(), "true".to_owned())].into();
    for (key, value) in annotations {
        map.insert((*key).to_owned(), (*value).to_owned());
    }
    pod_with(
        map,
        json!({
            "containers": [{"name": "gateway", "image": "ignition",
                "volumeMounts": [{"name": "data", "mountPath": DATA_PATH}]}],
            "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data-site1-0"}}]
        }),
    )
}

fn pod_with(annotations: BTreeMap<String, String>, spec: Value) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": "site1-0", "annotations": annotations},
        "spec": spec
    }))
    .unwrap()
}

fn run(pod: &Pod, all: &[GatewaySync]) -> Result<Injection, Denial> {
    inject(pod, "plant", all, &InjectorConfig::default())
}

fn apply(pod: &Pod, patch: &Patch) -> Pod {
    let mut json = serde_json::to_value(pod).unwrap();
    json_patch::patch(&mut json, patch).unwrap();
    serde_json::from_value(json).unwrap()
}

fn injected_with(pod: &Pod, all: &[GatewaySync], config: &InjectorConfig) -> Pod {
    match inject(pod, "plant", all, config) {
        Ok(Injection::Patch(patch)) => apply(pod, &patch),
        other => panic!("expected a patch, got {other:?}"),
    }
}

fn injected(pod: &Pod, all: &[GatewaySync]) -> Pod {
    injected_with(pod, all, &InjectorConfig::default())
}

fn denied(pod: &Pod, all: &[GatewaySync]) -> Denial {
    match run(pod, all) {
        Err(denial) => denial,
        other => panic!("expected a denial, got {other:?}"),
    }
}

fn agent(pod: &Pod) -> Container {
    pod.spec.as_ref().unwrap().init_containers.as_ref().unwrap()[0].clone()
}

fn volume<'a>(pod: &'a Pod, name: &str) -> Option<&'a Volume> {
    pod.spec
        .as_ref()
        .unwrap()
        .volumes
        .iter()
        .flatten()
        .find(|v| v.name == name)
}

/// The agent's plain environment values (downward API entries map to `fieldRef:<path>`).
fn env(container: &Container) -> BTreeMap<String, String> {
    container
        .env
        .iter()
        .flatten()
        .map(|var| {
            let value = match (&var.value, &var.value_from) {
                (Some(value), _) => value.clone(),
                (None, Some(from)) => {
                    format!("fieldRef:{}", from.field_ref.as_ref().unwrap().field_path)
                }
                (None, None) => String::new(),
            };
            (var.name.clone(), value)
        })
        .collect()
}

fn mount_path(container: &Container, volume: &str) -> Option<String> {
    container
        .volume_mounts
        .iter()
        .flatten()
        .find(|m| m.name == volume)
        .map(|m| m.mount_path.clone())
}

fn annotations(pod: &Pod) -> BTreeMap<String, String> {
    pod.metadata.annotations.clone().unwrap_or_default()
}

#[test]
fn acts_only_when_inject_is_exactly_true() {
    for value in [None, Some("True"), Some(" true"), Some("yes"), Some("")] {
        let mut p = pod(&[]);
        let map = p.metadata.annotations.as_mut().unwrap();
        match value {
            Some(value) => map.insert(INJECT.to_owned(), value.to_owned()),
            None => map.remove(INJECT),
        };
        assert_eq!(
            run(&p, &site()),
            Ok(Injection::Skip(Skip::NotRequested)),
            "{value:?}"
        );
    }
    let mut no_annotations = pod(&[]);
    no_annotations.metadata.annotations = None;
    assert_eq!(
        run(&no_annotations, &[]),
        Ok(Injection::Skip(Skip::NotRequested))
    );
}

#[test]
fn a_pod_with_the_agent_init_container_is_left_alone() {
    let once = injected(&pod(&[]), &site());
    assert_eq!(
        run(&once, &site()),
        Ok(Injection::Skip(Skip::AlreadyInjected))
    );
    // Reinvoked (reinvocationPolicy: IfNeeded) after another webhook: still exactly one agent.
    assert_eq!(
        run(&once, &[]),
        Ok(Injection::Skip(Skip::AlreadyInjected)),
        "decided before looking for a GatewaySync"
    );
    // The stoker.io/injected annotation alone (copied from another pod) is not proof.
    let copied = pod(&[(INJECTED, "true")]);
    assert_eq!(
        agent(&injected(&copied, &site())).name,
        AGENT_CONTAINER_NAME
    );
}

#[test]
fn the_named_gateway_sync_is_used_and_the_annotation_kept() {
    let all = [gs("site", json!({})), gs("other", json!({}))];
    let result = injected(&pod(&[(CR_NAME, " other ")]), &all);
    assert_eq!(env(&agent(&result))["CR_NAME"], "other");
    assert_eq!(annotations(&result)[CR_NAME], " other ", "not rewritten");
}

#[test]
fn the_only_gateway_sync_of_the_namespace_is_used_and_written_back() {
    let all = [gs("site", json!({})), {
        let mut elsewhere = gs("elsewhere", json!({}));
        elsewhere.metadata.namespace = Some("other".into());
        elsewhere
    }];
    let result = injected(&pod(&[]), &all);
    assert_eq!(annotations(&result)[CR_NAME], "site");
    assert_eq!(env(&agent(&result))["CR_NAME"], "site");
    // A blank annotation counts as absent (and is overwritten).
    let result = injected(&pod(&[(CR_NAME, "")]), &all);
    assert_eq!(annotations(&result)[CR_NAME], "site");
}

#[test]
fn no_gateway_sync_in_the_namespace_is_denied() {
    let mut elsewhere = gs("site", json!({}));
    elsewhere.metadata.namespace = Some("other".into());
    let denial = denied(&pod(&[]), &[elsewhere]);
    assert_eq!(
        denial,
        Denial::NoGatewaySync {
            namespace: "plant".into()
        }
    );
    assert_eq!(
        denial.to_string(),
        "no GatewaySync CR found in namespace 'plant'"
    );
}

#[test]
fn several_gateway_syncs_are_denied_naming_the_sorted_candidates() {
    let all = [
        gs("zeta", json!({})),
        gs("alpha", json!({})),
        gs("mid", json!({})),
    ];
    assert_eq!(
        denied(&pod(&[]), &all).to_string(),
        "multiple GatewaySync CRs in namespace 'plant': [alpha, mid, zeta] — set annotation 'stoker.io/cr-name' explicitly"
    );
}

#[test]
fn a_missing_gateway_sync_is_denied() {
    assert_eq!(
        denied(&pod(&[(CR_NAME, "nope")]), &site()).to_string(),
        "GatewaySync 'nope' not found in namespace 'plant'"
    );
}

#[test]
fn an_invalid_cr_name_is_denied() {
    for name in ["Site_1", "ü", "-site"] {
        let denial = denied(&pod(&[(CR_NAME, name)]), &site());
        assert!(matches!(denial, Denial::InvalidCrName { .. }), "{name}");
        assert!(denial.to_string().contains(name), "{denial}");
    }
}

#[test]
fn a_paused_gateway_sync_is_denied() {
    let paused = [gs("site", json!({"paused": true}))];
    assert_eq!(
        denied(&pod(&[]), &paused).to_string(),
        "GatewaySync 'site' is paused"
    );
}

#[test]
fn an_unknown_profile_is_denied_and_a_known_one_passed_on() {
    assert_eq!(
        denied(&pod(&[(PROFILE, "gold")]), &site()).to_string(),
        "profile 'gold' not found in GatewaySync 'site'"
    );
    let result = injected(&pod(&[(PROFILE, "standard")]), &site());
    assert_eq!(env(&agent(&result))["PROFILE"], "standard");
}

#[test]
fn the_agent_is_prepended_as_a_native_sidecar() {
    let mut p = pod(&[]);
    p.spec.as_mut().unwrap().init_containers = Some(vec![Container {
        name: "chown".into(),
        ..Default::default()
    }]);
    let result = injected(&p, &site());
    let init = result
        .spec
        .as_ref()
        .unwrap()
        .init_containers
        .clone()
        .unwrap();
    let names: Vec<&str> = init.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, [AGENT_CONTAINER_NAME, "chown"]);
    assert_eq!(init[0].restart_policy.as_deref(), Some("Always"));
    assert_eq!(init[0].args, Some(vec!["sidecar".to_owned()]));
    assert_eq!(init[0].command, None, "the image's entrypoint");
    // The gateway container is untouched.
    assert_eq!(result.spec.unwrap().containers, p.spec.unwrap().containers);
}

#[test]
fn probes_and_ports_are_the_agents() {
    let agent = agent(&injected(&pod(&[]), &site()));
    let check = |probe: Option<Probe>, path: &str, period: i32, failures: i32| {
        let probe = probe.unwrap();
        let http = probe.http_get.unwrap();
        assert_eq!(http.path.as_deref(), Some(path));
        assert_eq!(http.port, IntOrString::Int(8082));
        assert_eq!(probe.period_seconds, Some(period), "{path}");
        assert_eq!(probe.failure_threshold, Some(failures), "{path}");
    };
    check(agent.startup_probe, "/startupz", 2, 300);
    check(agent.liveness_probe, "/healthz", 10, 3);
    check(agent.readiness_probe, "/readyz", 5, 3);
    let port = &agent.ports.unwrap()[0];
    assert_eq!(
        (port.name.as_deref(), port.container_port),
        (Some("metrics"), 8083)
    );
}

use k8s_openapi::api::core::v1::Probe;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

#[test]
fn the_security_context_is_restricted() {
    let context = agent(&injected(&pod(&[]), &site()))
        .security_context
        .unwrap();
    assert_eq!(context.run_as_non_root, Some(true));
    assert_eq!(context.read_only_root_filesystem, Some(true));
    assert_eq!(context.allow_privilege_escalation, Some(false));
    assert_eq!(
        context.capabilities.unwrap().drop,
        Some(vec!["ALL".to_owned()])
    );
    assert_eq!(context.seccomp_profile.unwrap().type_, "RuntimeDefault");
    assert_eq!(context.run_as_user, None, "the pod's user");
}

#[test]
fn resources_come_from_the_spec_else_the_default() {
    let agent_of = |all: &[GatewaySync]| agent(&injected(&pod(&[]), all));
    assert_eq!(agent_of(&site()).resources, Some(default_agent_resources()));
    let custom = [gs(
        "site",
        json!({"agent": {"resources": {"limits": {"memory": "1Gi"}}}}),
    )];
    let resources = agent_of(&custom).resources.unwrap();
    assert_eq!(resources.limits.unwrap()["memory"].0, "1Gi");
    assert_eq!(resources.requests, None);
}

#[test]
fn the_image_comes_from_the_annotation_then_the_spec_then_the_default() {
    let spec = [gs(
        "site",
        json!({"agent": {"image": {"repository": "reg/agent", "tag": "9", "pullPolicy": "Always"}}}),
    )];
    let config = InjectorConfig {
        default_image: "reg/stoker-agent:1.2.3".into(),
        ..InjectorConfig::default()
    };
    let image = |p: &Pod, all: &[GatewaySync]| {
        let a = agent(&injected_with(p, all, &config));
        (a.image.unwrap(), a.image_pull_policy.unwrap())
    };
    assert_eq!(
        image(&pod(&[(AGENT_IMAGE, "debug:x")]), &spec),
        ("debug:x".to_owned(), "Always".to_owned())
    );
    assert_eq!(
        image(&pod(&[]), &spec),
        ("reg/agent:9".to_owned(), "Always".to_owned())
    );
    assert_eq!(
        image(&pod(&[]), &site()),
        (
            "reg/stoker-agent:1.2.3".to_owned(),
            "IfNotPresent".to_owned()
        )
    );
    assert!(
        InjectorConfig::default()
            .default_image
            .starts_with("stoker-agent:")
    );
}

#[test]
fn the_environment_is_the_agents_contract() {
    let all = [gs(
        "site",
        json!({"gateway": {"port": 8043, "tls": true, "api": {"secretName": "gw-key"}}}),
    )];
    let env = env(&agent(&injected(&pod(&[]), &all)));
    let expected: BTreeMap<String, String> = [
        ("POD_NAME", "fieldRef:metadata.name"),
        ("POD_NAMESPACE", "fieldRef:metadata.namespace"),
        ("CR_NAME", "site"),
        ("CR_NAMESPACE", "fieldRef:metadata.namespace"),
        ("REPO_PATH", "/repo"),
        ("DATA_PATH", DATA_PATH),
        ("GATEWAY_PORT", "8043"),
        ("GATEWAY_TLS", "true"),
        ("API_KEY_FILE", "/etc/stoker/api-key/apiKey"),
        ("SYNC_PERIOD", "30"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    assert_eq!(
        env, expected,
        "GATEWAY_NAME and PROFILE only when annotated"
    );
}

#[test]
fn gateway_name_is_passed_on_only_when_annotated() {
    let result = injected(&pod(&[(GATEWAY_NAME, " blue ")]), &site());
    assert_eq!(env(&agent(&result))["GATEWAY_NAME"], "blue");
    let result = injected(&pod(&[(GATEWAY_NAME, " ")]), &site());
    assert!(!env(&agent(&result)).contains_key("GATEWAY_NAME"));
}

#[test]
fn the_gateway_port_and_tls_default_like_the_spec() {
    let env = env(&agent(&injected(&pod(&[]), &site())));
    assert_eq!(
        (&*env["GATEWAY_PORT"], &*env["GATEWAY_TLS"]),
        ("8088", "false")
    );
    assert!(!env.contains_key("API_KEY_FILE"), "no spec.gateway.api");
}

/// The mounted Secret volume `name`: (Secret, projected keys, optional).
fn secret_of(pod: &Pod, name: &str) -> (String, Vec<String>, bool) {
    let secret = volume(pod, name).unwrap().secret.clone().unwrap();
    (
        secret.secret_name.unwrap(),
        secret.items.unwrap().into_iter().map(|i| i.key).collect(),
        secret.optional == Some(true),
    )
}

#[test]
fn git_credentials_are_mounted_per_auth_type() {
    let with_auth = |auth: Value| {
        [gs(
            "site",
            json!({"git": {"repo": "r", "ref": "main", "auth": auth}}),
        )]
    };
    let token = injected(
        &pod(&[]),
        &with_auth(json!({"token": {"secretRef": {"name": "git", "key": "pat"}}})),
    );
    assert_eq!(
        env(&agent(&token))["GIT_TOKEN_FILE"],
        "/etc/stoker/git-credentials/pat"
    );
    assert_eq!(
        secret_of(&token, volumes::GIT_CREDENTIALS),
        ("git".into(), vec!["pat".into()], false)
    );

    let ssh = injected(
        &pod(&[]),
        &with_auth(
            json!({"sshKey": {"secretRef": {"name": "deploy", "key": "id"},
                                     "knownHosts": {"secretRef": {"name": "hosts", "key": "kh"}}}}),
        ),
    );
    let ssh_env = env(&agent(&ssh));
    assert_eq!(
        ssh_env["GIT_SSH_KEY_FILE"],
        "/etc/stoker/git-credentials/id"
    );
    assert_eq!(
        ssh_env["GIT_KNOWN_HOSTS_FILE"],
        "/etc/stoker/known-hosts/kh"
    );
    assert_eq!(secret_of(&ssh, volumes::KNOWN_HOSTS).0, "hosts");
    assert_eq!(
        mount_path(&agent(&ssh), volumes::KNOWN_HOSTS).as_deref(),
        Some(KNOWN_HOSTS_DIR)
    );

    let app = injected(
        &pod(&[]),
        &with_auth(json!({"githubApp": {"appId": 1, "installationId": 2,
                                        "privateKeySecretRef": {"name": "app-pem", "key": "pem"}}})),
    );
    assert_eq!(
        env(&agent(&app))["GIT_TOKEN_FILE"],
        "/etc/stoker/git-token/token"
    );
    assert_eq!(
        secret_of(&app, volumes::GITHUB_TOKEN),
        (
            "stoker-github-token-site".into(),
            vec!["token".into()],
            false
        )
    );
    assert!(
        volume(&app, volumes::GIT_CREDENTIALS).is_none(),
        "the private key stays with the operator"
    );

    let public = injected(&pod(&[]), &site());
    let public_env = env(&agent(&public));
    assert!(
        public_env.keys().all(|k| !k.starts_with("GIT_")),
        "{public_env:?}"
    );
    for name in [
        volumes::GIT_CREDENTIALS,
        volumes::KNOWN_HOSTS,
        volumes::GITHUB_TOKEN,
    ] {
        assert!(volume(&public, name).is_none(), "{name}");
    }
}

#[test]
fn the_api_key_secret_is_mounted_optional() {
    let all = [gs(
        "site",
        json!({"gateway": {"api": {"secretName": "gw-key", "secretKey": "k"}}}),
    )];
    let result = injected(&pod(&[]), &all);
    assert_eq!(
        secret_of(&result, volumes::API_KEY),
        ("gw-key".into(), vec!["k".into()], true)
    );
    assert_eq!(
        mount_path(&agent(&result), volumes::API_KEY).as_deref(),
        Some(API_KEY_DIR)
    );
    let mount = agent(&result)
        .volume_mounts
        .unwrap()
        .into_iter()
        .find(|m| m.name == volumes::API_KEY)
        .unwrap();
    assert_eq!(mount.read_only, Some(true));
}

#[test]
fn the_cache_and_tmp_are_empty_dirs_with_the_configured_limit() {
    let config = InjectorConfig {
        cache_size_limit: Some(Quantity("2Gi".into())),
        ..InjectorConfig::default()
    };
    let result = injected_with(&pod(&[]), &site(), &config);
    let cache = volume(&result, volumes::REPO)
        .unwrap()
        .empty_dir
        .clone()
        .unwrap();
    assert_eq!(cache.size_limit, Some(Quantity("2Gi".into())));
    assert!(volume(&result, volumes::TMP).unwrap().empty_dir.is_some());
    let agent = agent(&result);
    assert_eq!(mount_path(&agent, volumes::REPO).as_deref(), Some("/repo"));
    assert_eq!(mount_path(&agent, volumes::TMP).as_deref(), Some("/tmp"));
    let default = injected(&pod(&[]), &site());
    let cache = volume(&default, volumes::REPO)
        .unwrap()
        .empty_dir
        .clone()
        .unwrap();
    assert_eq!(cache.size_limit, None);
}

#[test]
fn the_pods_own_volumes_are_kept_and_ours_appended() {
    let result = injected(&pod(&[]), &site());
    let names: Vec<String> = result
        .spec
        .unwrap()
        .volumes
        .unwrap()
        .into_iter()
        .map(|v| v.name)
        .collect();
    assert_eq!(names, ["data", volumes::REPO, volumes::TMP]);
}

#[test]
fn the_data_volume_is_mounted_where_the_gateway_mounts_it() {
    let spec = |volume: &str, mounts: Value| {
        pod_with(
            [(INJECT.to_owned(), "true".to_owned())].into(),
            json!({
                "containers": [{"name": "sidecar", "image": "x"},
                               {"name": "gateway", "image": "ignition", "volumeMounts": mounts}],
                "volumes": [{"name": "data", "emptyDir": {}},
                            {"name": volume, "emptyDir": {}}]
            }),
        )
    };
    // `ignition-data` wins over `data`; the path and subPath are the gateway container's.
    let preferred = injected(
        &spec(
            "ignition-data",
            json!([{"name": "ignition-data", "mountPath": "/data", "subPath": "gw"}]),
        ),
        &site(),
    );
    let agent_container = agent(&preferred);
    let mount = agent_container
        .volume_mounts
        .as_ref()
        .unwrap()
        .iter()
        .find(|m| m.name == "ignition-data")
        .unwrap();
    assert_eq!(
        (mount.mount_path.as_str(), mount.sub_path.as_deref()),
        ("/data", Some("gw"))
    );
    assert_eq!(mount.read_only, None, "the agent writes");
    assert_eq!(env(&agent_container)["DATA_PATH"], "/data");
    assert!(mount_path(&agent_container, "data").is_none());
    // A data volume no container mounts goes to /ignition-data, as in v0.5.1.
    let unmounted = injected(&spec("other", json!([])), &site());
    assert_eq!(env(&agent(&unmounted))["DATA_PATH"], DEFAULT_DATA_PATH);
    assert_eq!(
        mount_path(&agent(&unmounted), "data").as_deref(),
        Some(DEFAULT_DATA_PATH)
    );
}

#[test]
fn a_pod_without_a_data_volume_is_denied() {
    let no_volumes = pod_with(
        [(INJECT.to_owned(), "true".to_owned())].into(),
        json!({"containers": [{"name": "gateway", "image": "ignition"}]}),
    );
    assert_eq!(denied(&no_volumes, &site()), Denial::NoDataVolume);
    let no_spec = Pod {
        spec: None,
        ..no_volumes
    };
    let denial = denied(&no_spec, &site());
    assert_eq!(
        denial.to_string(),
        "the pod has no volume named 'ignition-data' or 'data': the stoker-agent sidecar writes the gateway's files into that volume, which the gateway container mounts"
    );
}

fn with_data_volume(source: Value, mount_path: &str) -> Pod {
    let mut data = json!({"name": "data"});
    if let (Some(data), Some(source)) = (data.as_object_mut(), source.as_object()) {
        data.extend(source.clone());
    }
    pod_with(
        [(INJECT.to_owned(), "true".to_owned())].into(),
        json!({
            "containers": [{"name": "gateway", "image": "ignition",
                "volumeMounts": [{"name": "data", "mountPath": mount_path}]}],
            "volumes": [data]
        }),
    )
}

#[test]
fn a_read_only_data_volume_is_denied() {
    for (source, kind) in [
        (json!({"configMap": {"name": "c"}}), "configMap"),
        (json!({"secret": {"secretName": "s"}}), "secret"),
        (
            json!({"persistentVolumeClaim": {"claimName": "c", "readOnly": true}}),
            "persistentVolumeClaim (readOnly)",
        ),
    ] {
        let denial = denied(&with_data_volume(source, DATA_PATH), &site());
        assert_eq!(
            denial,
            Denial::ReadOnlyDataVolume {
                volume: "data".into(),
                kind
            }
        );
    }
}

/// Decided: a hostPath data volume is accepted. The agent gets no access the pod does not
/// already have, and Pod Security admission judges the whole pod anyway.
#[test]
fn a_host_path_data_volume_is_accepted() {
    let host = with_data_volume(json!({"hostPath": {"path": "/srv/ignition"}}), DATA_PATH);
    let result = injected(&host, &site());
    assert_eq!(
        mount_path(&agent(&result), "data").as_deref(),
        Some(DATA_PATH)
    );
}

#[test]
fn a_data_path_overlapping_the_agents_mounts_is_denied() {
    for (path, problem) in [
        ("/tmp", DataPathProblem::Overlaps(TMP_PATH)),
        ("/", DataPathProblem::Overlaps(REPO_PATH)),
        ("/repo/data", DataPathProblem::Overlaps(REPO_PATH)),
        ("/etc", DataPathProblem::Overlaps(API_KEY_DIR)),
        ("data", DataPathProblem::NotAbsolute),
        ("/x/../tmp", DataPathProblem::NotAbsolute),
    ] {
        let denial = denied(&with_data_volume(json!({"emptyDir": {}}), path), &site());
        assert_eq!(
            denial,
            Denial::DataPath {
                volume: "data".into(),
                path: path.into(),
                problem
            },
            "{path}"
        );
    }
    assert_eq!(
        denied(&with_data_volume(json!({"emptyDir": {}}), "/tmp"), &site()).to_string(),
        "the data volume 'data' is mounted at '/tmp', which overlaps '/tmp' of the stoker-agent sidecar"
    );
}

#[test]
fn a_regular_container_named_stoker_agent_is_denied() {
    let mut p = pod(&[]);
    p.spec.as_mut().unwrap().containers.push(Container {
        name: AGENT_CONTAINER_NAME.into(),
        ..Default::default()
    });
    let denial = denied(&p, &site());
    assert_eq!(denial, Denial::AgentInContainers);
    assert!(denial.to_string().contains("spec.containers"), "{denial}");
}

#[test]
fn a_pod_volume_named_like_the_agents_is_denied() {
    let mut p = pod(&[]);
    p.spec
        .as_mut()
        .unwrap()
        .volumes
        .as_mut()
        .unwrap()
        .push(Volume {
            name: volumes::TMP.into(),
            ..Default::default()
        });
    assert_eq!(
        denied(&p, &site()).to_string(),
        "the pod already has a volume named 'stoker-tmp', which the stoker-agent sidecar needs; rename it"
    );
}

#[test]
fn the_pod_is_marked_injected_and_labelled() {
    let mut p = pod(&[("keep", "me")]);
    p.metadata.labels = Some([("app.kubernetes.io/name".to_owned(), "site1".to_owned())].into());
    let result = injected(&p, &site());
    let annotations = annotations(&result);
    assert_eq!(annotations[INJECTED], "true");
    assert_eq!(annotations["keep"], "me");
    let labels = result.metadata.labels.unwrap();
    assert_eq!(labels[LABEL_AGENT], "true");
    assert_eq!(labels["app.kubernetes.io/name"], "site1");
}

#[test]
fn missing_maps_and_lists_are_created() {
    let bare = with_data_volume(json!({"emptyDir": {}}), DATA_PATH);
    assert!(bare.metadata.labels.is_none());
    assert!(bare.spec.as_ref().unwrap().init_containers.is_none());
    let result = injected(&bare, &site());
    assert_eq!(agent(&result).name, AGENT_CONTAINER_NAME);
    assert_eq!(result.metadata.labels.unwrap()[LABEL_AGENT], "true");
    // Annotations are created too (the builder; a pod asking for injection always has some).
    let patch = PatchBuilder::default()
        .map_entries(
            ["metadata", "annotations"],
            false,
            [("a/b", "v".to_owned())],
        )
        .append(["spec", "volumes"], false, vec![json!({"name": "v"})])
        .build();
    let mut empty = json!({"metadata": {}, "spec": {}});
    json_patch::patch(&mut empty, &patch).unwrap();
    assert_eq!(empty["metadata"]["annotations"]["a/b"], "v");
    assert_eq!(empty["spec"]["volumes"][0]["name"], "v");
}

#[test]
fn patch_paths_escape_slash_and_tilde() {
    let Ok(Injection::Patch(patch)) = run(&pod(&[]), &site()) else {
        panic!("expected a patch")
    };
    let paths: Vec<String> = patch.iter().map(|op| op.path().to_string()).collect();
    assert!(
        paths.contains(&"/metadata/annotations/stoker.io~1injected".to_owned()),
        "{paths:?}"
    );
    let patch = PatchBuilder::default()
        .map_entries(["metadata", "labels"], true, [("a~b/c", "v".to_owned())])
        .build();
    assert_eq!(patch[0].path().to_string(), "/metadata/labels/a~0b~1c");
    let mut doc = json!({"metadata": {"labels": {}}});
    json_patch::patch(&mut doc, &patch).unwrap();
    assert_eq!(doc["metadata"]["labels"]["a~b/c"], "v");
}

#[test]
fn huge_annotation_values_are_denied_without_echoing_them() {
    let huge = "x".repeat(1 << 20);
    for key in [CR_NAME, PROFILE, GATEWAY_NAME, AGENT_IMAGE] {
        let denial = denied(&pod(&[(key, &huge)]), &site());
        assert_eq!(
            denial,
            Denial::AnnotationTooLong {
                key,
                len: huge.len()
            }
        );
        assert!(denial.to_string().len() < 200, "{key}");
    }
    // Just within the bound: accepted as far as length goes.
    let long_name = "g".repeat(MAX_ANNOTATION_VALUE);
    let result = injected(&pod(&[(GATEWAY_NAME, &long_name)]), &site());
    assert_eq!(env(&agent(&result))["GATEWAY_NAME"], long_name);
    // A huge value in an annotation the injector does not read is none of its business.
    assert!(matches!(
        run(&pod(&[("other/big", &huge)]), &site()),
        Ok(Injection::Patch(_))
    ));
}
