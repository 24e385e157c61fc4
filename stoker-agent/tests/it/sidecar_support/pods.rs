//! Gateway pods as users write them (no agent: the injector adds it), and the pod admission the
//! mutating webhook performs on them.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;
use kube::core::admission::{AdmissionRequest, AdmissionReview};
use serde_json::json;
use stoker_k8s::GatewaySync;
use stoker_k8s::admission::mutate_pod;
use stoker_k8s::injector::{Injection, InjectorConfig, Skip, inject};

/// Where the Ignition image keeps its data directory.
pub const IGNITION_DATA: &str = "/usr/local/bin/ignition/data";

/// The gateway container, mounting `volume` at [`IGNITION_DATA`].
fn gateway_container(volume: &str) -> serde_json::Value {
    json!({
        "name": "gateway",
        "image": "inductiveautomation/ignition:8.3",
        "ports": [{"name": "http", "containerPort": 8088}],
        "volumeMounts": [{"name": volume, "mountPath": IGNITION_DATA}],
    })
}

fn string_map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// A bare gateway pod: `stoker.io/inject: "true"` and `annotations`, `labels`, the gateway
/// container mounting the `emptyDir` `data` at [`IGNITION_DATA`].
pub fn gateway_pod(name: &str, annotations: &[(&str, &str)], labels: &[(&str, &str)]) -> Pod {
    let mut annotations = string_map(annotations);
    annotations.insert("stoker.io/inject".to_owned(), "true".to_owned());
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "annotations": annotations, "labels": string_map(labels)},
        "spec": {
            "containers": [gateway_container("data")],
            "volumes": [{"name": "data", "emptyDir": {}}],
        },
    }))
    .expect("a valid pod")
}

/// Pod `ordinal` of the StatefulSet `set` as its controller creates it from a template like
/// the Ignition chart's: the claim `ignition-data-<pod>` of the volume claim template
/// `ignition-data` mounted at [`IGNITION_DATA`], the StatefulSet's labels, the gateway's user,
/// and only `stoker.io/inject: "true"` plus `annotations` from `podAnnotations`.
pub fn statefulset_pod(set: &str, ordinal: u32, annotations: &[(&str, &str)]) -> Pod {
    let name = format!("{set}-{ordinal}");
    let mut annotations = string_map(annotations);
    annotations.insert("stoker.io/inject".to_owned(), "true".to_owned());
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": name,
            "annotations": annotations,
            "labels": {
                "app.kubernetes.io/name": set,
                "apps.kubernetes.io/pod-index": ordinal.to_string(),
                "controller-revision-hash": format!("{set}-5d9c7b8f6"),
                "statefulset.kubernetes.io/pod-name": name,
            },
            "ownerReferences": [{
                "apiVersion": "apps/v1", "kind": "StatefulSet", "name": set,
                "uid": "00000000-0000-0000-0000-000000000001",
                "controller": true, "blockOwnerDeletion": true,
            }],
        },
        "spec": {
            "hostname": name,
            "subdomain": set,
            // The Ignition image's user and group.
            "securityContext": {"runAsUser": 2003, "runAsGroup": 2003, "fsGroup": 2003},
            "containers": [gateway_container("ignition-data")],
            "volumes": [{"name": "ignition-data",
                         "persistentVolumeClaim": {"claimName": format!("ignition-data-{name}")}}],
        },
    }))
    .expect("a valid pod")
}

/// What the mutating webhook does to `pod`, being created in `namespace` whose GatewaySyncs are
/// `gateway_syncs`: [`mutate_pod`]'s answer, its JSON patch applied. `Err` is the message of a
/// denial.
pub fn admit(pod: &Pod, namespace: &str, gateway_syncs: &[GatewaySync]) -> Result<Pod, String> {
    let config = InjectorConfig::default();
    let response = mutate_pod(&admission_request(pod, namespace), gateway_syncs, &config);
    if !response.allowed {
        return Err(response.result.message);
    }
    let Some(patch) = response.patch else {
        return Ok(pod.clone());
    };
    let patch: json_patch::Patch = serde_json::from_slice(&patch).expect("a JSON patch");
    let mut object = serde_json::to_value(pod).expect("a pod serialises");
    json_patch::patch(&mut object, &patch).expect("the injector's patch applies to its pod");
    let mutated: Pod = serde_json::from_value(object).expect("the patched pod is a pod");
    // The API server calls the webhook again when another one changed the pod
    // (reinvocationPolicy: IfNeeded): that second pass must add nothing.
    assert_eq!(
        inject(&mutated, namespace, gateway_syncs, &config),
        Ok(Injection::Skip(Skip::AlreadyInjected)),
    );
    Ok(mutated)
}

/// The `AdmissionReview` request the API server sends for creating `pod` in `namespace`.
fn admission_request(pod: &Pod, namespace: &str) -> AdmissionRequest<Pod> {
    let review: AdmissionReview<Pod> = serde_json::from_value(json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": "sidecar-test", "operation": "CREATE", "namespace": namespace,
            "name": pod.metadata.name,
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "userInfo": {"username": "sidecar-test"},
            "object": pod,
        },
    }))
    .expect("an AdmissionReview");
    review.try_into().expect("an AdmissionRequest")
}
