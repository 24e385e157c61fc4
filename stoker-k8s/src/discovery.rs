//! Gateway discovery: which pods sync from a `GatewaySync`, and who they are.
//!
//! A pod belongs to the resource named `cr` when it carries the annotation
//! `stoker.io/cr-name: <cr>` (in the resource's namespace; the caller lists that namespace).
//! Only pods in phase `Running` count. The gateway's name is the `stoker.io/gateway-name`
//! annotation, else the `app.kubernetes.io/name` label, else the pod name; its profile is the
//! `stoker.io/profile` annotation.
//!
//! ```
//! use k8s_openapi::api::core::v1::{Pod, PodStatus};
//! use kube::api::ObjectMeta;
//! use stoker_k8s::discovery::discover;
//! let pod = Pod {
//!     metadata: ObjectMeta {
//!         name: Some("ignition-0".into()),
//!         namespace: Some("plant".into()),
//!         annotations: Some([("stoker.io/cr-name".to_owned(), "site".to_owned())].into()),
//!         labels: Some([("app.kubernetes.io/name".to_owned(), "ignition".to_owned())].into()),
//!         ..Default::default()
//!     },
//!     status: Some(PodStatus { phase: Some("Running".into()), ..Default::default() }),
//!     ..Default::default()
//! };
//! let found = discover("site", &[pod]);
//! assert_eq!(found[0].gateway_name, "ignition");
//! assert!(!found[0].sidecar_injected);
//! ```

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;

use crate::annotations::{
    AGENT_CONTAINER_NAME, APP_NAME_LABEL, CR_NAME, GATEWAY_NAME, INJECTED, POD_INDEX_LABEL,
    PROFILE, REF_OVERRIDE, asks_for_injection, is_true, pod_annotation as annotation,
};

/// A running gateway pod that syncs from the resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayPod {
    /// The gateway's identity (`{{.GatewayName}}`).
    pub gateway_name: String,
    /// The pod's name (`{{.PodName}}`).
    pub pod_name: String,
    /// The pod's namespace.
    pub namespace: String,
    /// The pod's UID (for owner references), when known.
    pub pod_uid: Option<String>,
    /// The profile the pod asks for (`stoker.io/profile`), if any.
    pub profile: Option<String>,
    /// The pod's service account (`default` when unset).
    pub service_account_name: String,
    /// True when the injector marked the pod (`stoker.io/injected: "true"`) or it has a
    /// container named `stoker-agent`.
    pub sidecar_injected: bool,
    /// True when the pod asks for injection (`stoker.io/inject: "true"`).
    pub inject_requested: bool,
    /// A ref this pod is pinned to (`stoker.io/ref-override`), if any.
    pub ref_override: Option<String>,
    /// `{{.PodOrdinal}}`: the `apps.kubernetes.io/pod-index` label, else the number after the
    /// pod name's last `-`, else 0.
    pub ordinal: u32,
    /// The pod's labels (`{{.Labels.key}}`).
    pub labels: BTreeMap<String, String>,
}

/// The running pods annotated `stoker.io/cr-name: <cr_name>`, sorted by pod name.
pub fn discover(cr_name: &str, pods: &[Pod]) -> Vec<GatewayPod> {
    let mut found: Vec<GatewayPod> = pods
        .iter()
        .filter(|pod| annotation(pod, CR_NAME).map(str::trim) == Some(cr_name))
        .filter(|pod| is_running(pod))
        .map(gateway_pod)
        .collect();
    found.sort_by(|a, b| a.pod_name.cmp(&b.pod_name));
    found
}

/// True when the pod's phase is `Running`.
pub fn is_running(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|status| status.phase.as_deref())
        == Some("Running")
}

/// Describes one pod (whatever its phase or annotations).
pub fn gateway_pod(pod: &Pod) -> GatewayPod {
    let pod_name = pod.metadata.name.clone().unwrap_or_default();
    let labels = pod.metadata.labels.clone().unwrap_or_default();
    GatewayPod {
        gateway_name: gateway_name(pod),
        namespace: pod.metadata.namespace.clone().unwrap_or_default(),
        pod_uid: pod.metadata.uid.clone(),
        profile: non_empty(annotation(pod, PROFILE)),
        service_account_name: pod
            .spec
            .as_ref()
            .and_then(|spec| spec.service_account_name.clone())
            .filter(|name| !name.is_empty())
            .unwrap_or_else(|| "default".to_owned()),
        sidecar_injected: has_sidecar(pod),
        inject_requested: asks_for_injection(pod),
        ref_override: non_empty(annotation(pod, REF_OVERRIDE)),
        ordinal: pod_ordinal(&pod_name, labels.get(POD_INDEX_LABEL).map(String::as_str)),
        pod_name,
        labels,
    }
}

/// The gateway's identity: annotation `stoker.io/gateway-name`, else label
/// `app.kubernetes.io/name`, else the pod name (blank values are skipped).
pub fn gateway_name(pod: &Pod) -> String {
    non_empty(annotation(pod, GATEWAY_NAME))
        .or_else(|| {
            non_empty(
                pod.metadata
                    .labels
                    .as_ref()
                    .and_then(|labels| labels.get(APP_NAME_LABEL))
                    .map(String::as_str),
            )
        })
        .or_else(|| pod.metadata.name.clone())
        .unwrap_or_default()
}

/// True when the pod carries `stoker.io/injected: "true"` or has a container (init or regular)
/// named `stoker-agent`.
pub fn has_sidecar(pod: &Pod) -> bool {
    if is_true(annotation(pod, INJECTED)) {
        return true;
    }
    pod.spec.as_ref().is_some_and(|spec| {
        spec.containers
            .iter()
            .chain(spec.init_containers.iter().flatten())
            .any(|container| container.name == AGENT_CONTAINER_NAME)
    })
}

/// `{{.PodOrdinal}}`: the pod-index label when it is a number, else the digits after the pod
/// name's last `-` (StatefulSet naming), else 0.
///
/// ```
/// use stoker_k8s::discovery::pod_ordinal;
/// assert_eq!(pod_ordinal("ignition-2", None), 2);
/// assert_eq!(pod_ordinal("ignition-2", Some("5")), 5);
/// assert_eq!(pod_ordinal("ignition-7d9f8-abcde", None), 0);
/// ```
pub fn pod_ordinal(pod_name: &str, pod_index_label: Option<&str>) -> u32 {
    if let Some(index) = pod_index_label.and_then(|v| v.trim().parse().ok()) {
        return index;
    }
    pod_name
        .rsplit_once('-')
        .and_then(|(_, tail)| tail.parse().ok())
        .unwrap_or(0)
}

fn non_empty(value: Option<&str>) -> Option<String> {
    value
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::annotations::INJECT;
    use k8s_openapi::api::core::v1::{Container, PodSpec, PodStatus};
    use kube::api::ObjectMeta;

    fn pod(name: &str, phase: &str, annotations: &[(&str, &str)], labels: &[(&str, &str)]) -> Pod {
        let map = |pairs: &[(&str, &str)]| {
            Some(
                pairs
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect::<BTreeMap<_, _>>(),
            )
        };
        Pod {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                namespace: Some("plant".to_owned()),
                annotations: map(annotations),
                labels: map(labels),
                ..Default::default()
            },
            spec: Some(PodSpec::default()),
            status: Some(PodStatus {
                phase: Some(phase.to_owned()),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn only_running_pods_of_this_resource_count() {
        let pods = [
            pod("b", "Running", &[(CR_NAME, "site")], &[]),
            pod("a", "Running", &[(CR_NAME, "site")], &[]),
            pod("c", "Pending", &[(CR_NAME, "site")], &[]),
            pod("d", "Running", &[(CR_NAME, "other")], &[]),
            pod("e", "Running", &[], &[]),
            pod("f", "Succeeded", &[(CR_NAME, "site")], &[]),
        ];
        let names: Vec<_> = discover("site", &pods)
            .into_iter()
            .map(|g| g.pod_name)
            .collect();
        assert_eq!(names, ["a", "b"]);
    }

    #[test]
    fn gateway_name_prefers_annotation_then_label_then_pod_name() {
        let both = pod(
            "p-0",
            "Running",
            &[(GATEWAY_NAME, "blue")],
            &[(APP_NAME_LABEL, "ignition")],
        );
        assert_eq!(gateway_name(&both), "blue");
        let label = pod(
            "p-0",
            "Running",
            &[(GATEWAY_NAME, " ")],
            &[(APP_NAME_LABEL, "ignition")],
        );
        assert_eq!(gateway_name(&label), "ignition");
        assert_eq!(gateway_name(&pod("p-0", "Running", &[], &[])), "p-0");
    }

    #[test]
    fn profile_sidecar_and_overrides_come_from_annotations() {
        let p = pod(
            "ignition-1",
            "Running",
            &[
                (CR_NAME, "site"),
                (PROFILE, "standard"),
                (INJECTED, "true"),
                (INJECT, "true"),
                (REF_OVERRIDE, "hotfix"),
            ],
            &[],
        );
        let g = &discover("site", &[p])[0];
        assert_eq!(g.profile.as_deref(), Some("standard"));
        assert!(g.sidecar_injected && g.inject_requested);
        assert_eq!(g.ref_override.as_deref(), Some("hotfix"));
        assert_eq!(g.ordinal, 1);
        assert_eq!(g.service_account_name, "default");
    }

    #[test]
    fn an_agent_container_counts_as_injected() {
        let mut p = pod("x", "Running", &[(CR_NAME, "site")], &[]);
        assert!(!has_sidecar(&p));
        if let Some(spec) = p.spec.as_mut() {
            spec.init_containers = Some(vec![Container {
                name: AGENT_CONTAINER_NAME.to_owned(),
                ..Default::default()
            }]);
        }
        assert!(has_sidecar(&p));
    }
}
