//! The agents' permissions: the RoleBinding `stoker-agent-{cr}` that the operator keeps
//! (`rbac.autoBindAgent`), binding the service accounts of a `GatewaySync`'s gateway pods to the
//! ClusterRole [`AGENT_CLUSTER_ROLE`] in the resource's namespace.
//!
//! Which service accounts: those of every pod annotated `stoker.io/cr-name: <cr>` that has not
//! terminated, whatever its phase. Not only `Running` ones: the agent is a native sidecar whose
//! startup probe holds the gateway back until its first sync, which needs these permissions, so
//! a pod waiting for them stays `Pending` and would never be bound. A pod without
//! `spec.serviceAccountName` runs as `default`.
//!
//! When no pod refers to the resource, the binding is still written, with no subjects: it grants
//! nothing, and the binding of the resource's last service account is withdrawn when its last pod
//! goes (stoker-operator v0.5 bound `default` instead, which would grant the agent's permissions
//! to every pod of the namespace that runs as `default`).
//!
//! ```
//! use k8s_openapi::api::core::v1::{Pod, PodSpec};
//! use kube::api::ObjectMeta;
//! use stoker_k8s::rbac::agent_service_accounts;
//! let pod = |name: &str, account: Option<&str>| Pod {
//!     metadata: ObjectMeta {
//!         name: Some(name.into()),
//!         annotations: Some([("stoker.io/cr-name".to_owned(), "site".to_owned())].into()),
//!         ..Default::default()
//!     },
//!     spec: Some(PodSpec { service_account_name: account.map(str::to_owned), ..Default::default() }),
//!     ..Default::default()
//! };
//! let pods = [pod("b", Some("ignition")), pod("a", None), pod("c", Some("ignition"))];
//! assert_eq!(agent_service_accounts("site", &pods), ["default", "ignition"]);
//! ```

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::rbac::v1::{RoleBinding, RoleRef, Subject};
use kube::ResourceExt;
use kube::api::ObjectMeta;

use crate::annotations::{
    CR_NAME, LABEL_GATEWAYSYNC, MANAGED_BY_LABEL, MANAGED_BY_OPERATOR, label_value, object_name,
};
use crate::crd::GatewaySync;
use crate::discovery;
use crate::error::Result;

/// The ClusterRole the agents' service accounts are bound to. A fixed name, whatever the Helm
/// release is called (the chart creates it), as stoker-operator v0.5 and users' own
/// RoleBindings name it.
pub const AGENT_CLUSTER_ROLE: &str = "stoker-agent";

/// The RoleBinding's name for the resource `cr_name`: `stoker-agent-{cr}`.
///
/// ```
/// assert_eq!(stoker_k8s::rbac::agent_role_binding_name("site"), "stoker-agent-site");
/// ```
pub fn agent_role_binding_name(cr_name: &str) -> String {
    object_name(AGENT_CLUSTER_ROLE, &[cr_name])
}

/// The distinct service accounts (sorted) of the pods annotated for `cr_name` that have not
/// terminated (phase `Succeeded` or `Failed`); `default` for a pod that names none.
pub fn agent_service_accounts(cr_name: &str, pods: &[Pod]) -> Vec<String> {
    let accounts: BTreeSet<String> = pods
        .iter()
        .filter(|pod| {
            pod.annotations().get(CR_NAME).map(|cr| cr.trim()) == Some(cr_name)
                && !is_terminated(pod)
        })
        .map(|pod| discovery::gateway_pod(pod).service_account_name)
        .collect();
    accounts.into_iter().collect()
}

fn is_terminated(pod: &Pod) -> bool {
    matches!(
        pod.status
            .as_ref()
            .and_then(|status| status.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

/// The RoleBinding `stoker-agent-{cr}` the operator applies for `owner`: in its namespace,
/// controller-owned by it (garbage-collected with it), labelled `stoker.io/gatewaysync: <cr>`
/// and `app.kubernetes.io/managed-by: stoker-operator`, binding [`AGENT_CLUSTER_ROLE`] to the
/// service accounts of [`agent_service_accounts`] (in the owner's namespace); an empty list of
/// subjects when there are none.
///
/// # Errors
///
/// [`Error::MissingUid`](crate::Error::MissingUid) when `owner` was not read from the API server.
pub fn agent_role_binding(owner: &GatewaySync, pods: &[Pod]) -> Result<RoleBinding> {
    let name = owner.name_any();
    let namespace = owner.namespace().unwrap_or_default();
    let owner_ref = owner.controller_ref()?;
    let subjects = agent_service_accounts(&name, pods)
        .into_iter()
        .map(|account| Subject {
            kind: "ServiceAccount".to_owned(),
            name: account,
            namespace: Some(namespace.clone()),
            api_group: None,
        })
        .collect();
    Ok(RoleBinding {
        metadata: ObjectMeta {
            name: Some(agent_role_binding_name(&name)),
            namespace: Some(namespace),
            labels: Some(BTreeMap::from([
                (LABEL_GATEWAYSYNC.to_owned(), label_value(&name)),
                (MANAGED_BY_LABEL.to_owned(), MANAGED_BY_OPERATOR.to_owned()),
            ])),
            owner_references: Some(vec![owner_ref]),
            ..ObjectMeta::default()
        },
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".to_owned(),
            kind: "ClusterRole".to_owned(),
            name: AGENT_CLUSTER_ROLE.to_owned(),
        },
        subjects: Some(subjects),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use k8s_openapi::api::core::v1::{PodSpec, PodStatus};

    fn pod(name: &str, cr: &str, account: Option<&str>, phase: &str) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                namespace: Some("plant".to_owned()),
                annotations: Some(BTreeMap::from([(CR_NAME.to_owned(), cr.to_owned())])),
                ..ObjectMeta::default()
            },
            spec: Some(PodSpec {
                service_account_name: account.map(str::to_owned),
                ..PodSpec::default()
            }),
            status: Some(PodStatus {
                phase: Some(phase.to_owned()),
                ..PodStatus::default()
            }),
        }
    }

    fn gatewaysync(name: &str, uid: Option<&str>) -> GatewaySync {
        let mut gs: GatewaySync = serde_json::from_value(serde_json::json!({
            "apiVersion": "stoker.io/v1alpha1",
            "kind": "GatewaySync",
            "metadata": {"name": name, "namespace": "plant"},
            "spec": {
                "git": {"repo": "https://git.example/r.git", "ref": "main"},
                "sync": {"profiles": {}}
            }
        }))
        .unwrap_or_else(|error| panic!("{error}"));
        gs.metadata.uid = uid.map(str::to_owned);
        gs
    }

    #[test]
    fn service_accounts_are_distinct_sorted_and_default_when_unset() {
        let pods = [
            pod("c", "site", Some("zeta"), "Running"),
            pod("a", "site", Some("ignition"), "Running"),
            pod("b", "site", Some("ignition"), "Running"),
            pod("d", "site", None, "Running"),
            pod("e", "site", Some(""), "Running"),
        ];
        assert_eq!(
            agent_service_accounts("site", &pods),
            ["default", "ignition", "zeta"]
        );
    }

    #[test]
    fn pods_waiting_for_their_agent_count_and_terminated_or_foreign_ones_do_not() {
        let pods = [
            pod("pending", "site", Some("waiting"), "Pending"),
            pod("done", "site", Some("done"), "Succeeded"),
            pod("failed", "site", Some("failed"), "Failed"),
            pod("other", "other", Some("other"), "Running"),
            pod("spaced", " site ", Some("spaced"), "Running"),
        ];
        assert_eq!(agent_service_accounts("site", &pods), ["spaced", "waiting"]);
        assert!(agent_service_accounts("nobody", &pods).is_empty());
    }

    #[test]
    fn the_binding_is_owned_labelled_and_names_the_fixed_cluster_role() {
        let gs = gatewaysync("site", Some("uid-1"));
        let pods = [
            pod("b", "site", Some("north"), "Running"),
            pod("a", "site", Some("ignition"), "Pending"),
        ];
        let binding = agent_role_binding(&gs, &pods).unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(binding.metadata.name.as_deref(), Some("stoker-agent-site"));
        assert_eq!(binding.metadata.namespace.as_deref(), Some("plant"));
        assert_eq!(binding.labels()[LABEL_GATEWAYSYNC], "site");
        assert_eq!(binding.labels()[MANAGED_BY_LABEL], "stoker-operator");
        let owner = &binding.owner_references()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.name.as_str(), owner.uid.as_str()),
            ("GatewaySync", "site", "uid-1")
        );
        assert_eq!(owner.controller, Some(true));
        assert_eq!(
            binding.role_ref,
            RoleRef {
                api_group: "rbac.authorization.k8s.io".to_owned(),
                kind: "ClusterRole".to_owned(),
                name: "stoker-agent".to_owned(),
            }
        );
        let subjects: Vec<(String, String, Option<String>)> = binding
            .subjects
            .unwrap_or_default()
            .into_iter()
            .map(|s| (s.kind, s.name, s.namespace))
            .collect();
        let account = |name: &str| {
            (
                "ServiceAccount".to_owned(),
                name.to_owned(),
                Some("plant".to_owned()),
            )
        };
        assert_eq!(subjects, [account("ignition"), account("north")]);
    }

    #[test]
    fn without_pods_the_binding_grants_nothing_and_says_so_explicitly() {
        let gs = gatewaysync("site", Some("uid-1"));
        let binding = agent_role_binding(&gs, &[]).unwrap_or_else(|error| panic!("{error}"));
        // `subjects: []`, not absent, so that a server-side apply removes the last subject.
        let json = serde_json::to_value(&binding).unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(json["subjects"], serde_json::json!([]));
    }

    #[test]
    fn an_owner_not_read_from_the_api_server_is_refused() {
        let gs = gatewaysync("site", None);
        assert!(matches!(
            agent_role_binding(&gs, &[]),
            Err(Error::MissingUid { .. })
        ));
    }

    #[test]
    fn long_resource_names_give_valid_object_and_label_values() {
        let long = "a".repeat(253);
        assert!(crate::annotations::is_object_name(
            &agent_role_binding_name(&long)
        ));
        let gs = gatewaysync(&long, Some("uid"));
        let binding = agent_role_binding(&gs, &[]).unwrap_or_else(|error| panic!("{error}"));
        assert!(binding.labels()[LABEL_GATEWAYSYNC].len() <= 63);
    }
}
