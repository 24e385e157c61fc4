//! The answers of Stoker's two admission webhooks, as pure functions of the API server's
//! request and of what the operator knows (the namespace's GatewaySyncs, its Secrets). The
//! HTTPS server that carries them belongs to the operator binary.
//!
//! - **`/mutate-v1-pod`** ([`mutate_pod`]): a pod created with `stoker.io/inject: "true"` gets
//!   the agent ([`crate::injector`]); a pod the injector refuses is denied with its message.
//! - **`/validate-gatewaysync`** ([`validate_gateway_sync`]): a GatewaySync whose profiles
//!   `ProfilesValid` would report as invalid is rejected at `kubectl apply` time, with the same
//!   message; a Secret it names that does not exist yet is only a warning (Secrets may be
//!   created after the GatewaySync).
//!
//! ```
//! use kube::core::admission::{AdmissionRequest, AdmissionReview};
//! use stoker_k8s::GatewaySync;
//! let review: AdmissionReview<GatewaySync> = serde_json::from_value(serde_json::json!({
//!     "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
//!     "request": {
//!         "uid": "1", "operation": "CREATE", "namespace": "plant", "name": "gs",
//!         "kind": {"group": "stoker.io", "version": "v1alpha1", "kind": "GatewaySync"},
//!         "resource": {"group": "stoker.io", "version": "v1alpha1", "resource": "gatewaysyncs"},
//!         "userInfo": {},
//!         "object": {
//!             "apiVersion": "stoker.io/v1alpha1", "kind": "GatewaySync",
//!             "metadata": {"name": "gs", "namespace": "plant"},
//!             "spec": {"git": {"repo": "https://git.example/r.git", "ref": "main"},
//!                      "sync": {"profiles": {"p": {"mappings": [
//!                          {"source": "a", "destination": "../etc"}]}}}}
//!         }
//!     }
//! })).unwrap();
//! let request: AdmissionRequest<GatewaySync> = review.try_into().unwrap();
//! let response = stoker_k8s::admission::validate_gateway_sync(&request, &Default::default());
//! assert!(!response.allowed);
//! assert!(response.result.message.contains("profiles.p.mappings[0].destination"));
//! ```

use k8s_openapi::api::core::v1::Pod;
use kube::core::admission::{AdmissionRequest, AdmissionResponse};

use crate::crd::GatewaySync;
use crate::injector::{self, Injection, InjectorConfig};
use crate::validation::{self, ProblemKind, SecretInventory};

/// The answer to a pod admission: the agent injected, the pod left alone, or refused.
/// `gateway_syncs` are the GatewaySyncs of the pod's namespace.
pub fn mutate_pod(
    request: &AdmissionRequest<Pod>,
    gateway_syncs: &[GatewaySync],
    config: &InjectorConfig,
) -> AdmissionResponse {
    let response = AdmissionResponse::from(request);
    // Only creations carry a pod to change (the webhook is registered for CREATE only; an
    // UPDATE may not change a pod's containers anyway).
    let Some(pod) = request.object.as_ref() else {
        return response;
    };
    let namespace = request.namespace.as_deref().unwrap_or_default();
    match injector::inject(pod, namespace, gateway_syncs, config) {
        Ok(Injection::Skip(_)) => response,
        Ok(Injection::Patch(patch)) => match response.clone().with_patch(patch) {
            Ok(patched) => patched,
            Err(error) => response.deny(format!("stoker: the agent's patch: {error}")),
        },
        Err(denial) => response.deny(denial.to_string()),
    }
}

/// The answer to a GatewaySync admission: rejected when its spec is invalid (the message
/// `ProfilesValid` would carry), with warnings for Secrets it names that are missing.
/// `secrets` are the Secrets of its namespace.
pub fn validate_gateway_sync(
    request: &AdmissionRequest<GatewaySync>,
    secrets: &SecretInventory,
) -> AdmissionResponse {
    let mut response = AdmissionResponse::from(request);
    // A deletion has no object to judge.
    let Some(gateway_sync) = request.object.as_ref() else {
        return response;
    };
    let (missing, invalid): (Vec<_>, Vec<_>) = validation::validate(&gateway_sync.spec, secrets)
        .into_iter()
        .partition(|problem| problem.kind == ProblemKind::Secret);
    if !missing.is_empty() {
        response.warnings = Some(missing.iter().map(ToString::to_string).collect());
    }
    if invalid.is_empty() {
        response
    } else {
        response.deny(validation::summary(&invalid))
    }
}

#[cfg(test)]
mod tests {
    use kube::core::admission::AdmissionReview;
    use serde_json::json;

    use super::*;

    fn request<T: kube::Resource + serde::de::DeserializeOwned>(
        kind: (&str, &str, &str, &str),
        object: serde_json::Value,
    ) -> AdmissionRequest<T> {
        let (group, version, kind, resource) = kind;
        let review: AdmissionReview<T> = serde_json::from_value(json!({
            "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {
                "uid": "u-1", "operation": "CREATE", "namespace": "plant",
                "kind": {"group": group, "version": version, "kind": kind},
                "resource": {"group": group, "version": version, "resource": resource},
                "userInfo": {}, "object": object
            }
        }))
        .unwrap();
        review.try_into().unwrap()
    }

    fn gateway_sync(spec: serde_json::Value) -> serde_json::Value {
        json!({
            "apiVersion": "stoker.io/v1alpha1", "kind": "GatewaySync",
            "metadata": {"name": "gs", "namespace": "plant"}, "spec": spec
        })
    }

    const GS: (&str, &str, &str, &str) = ("stoker.io", "v1alpha1", "GatewaySync", "gatewaysyncs");
    const POD: (&str, &str, &str, &str) = ("", "v1", "Pod", "pods");

    #[test]
    fn an_invalid_gateway_sync_is_rejected_with_the_profiles_valid_message() {
        let request = request::<GatewaySync>(
            GS,
            gateway_sync(json!({
                "git": {"repo": "https://git.example/r.git", "ref": "main"},
                "sync": {"profiles": {"p": {
                    "vars": {"bad-key": "x"},
                    "mappings": [{"source": "a", "destination": "/etc"}]}}}
            })),
        );
        let response = validate_gateway_sync(&request, &SecretInventory::default());
        assert!(!response.allowed);
        assert_eq!(response.uid, "u-1");
        let problems = validation::validate(
            &request.object.as_ref().unwrap().spec,
            &SecretInventory::default(),
        );
        assert_eq!(response.result.message, validation::summary(&problems));
        assert!(
            response
                .result
                .message
                .contains("spec.sync.profiles.p.vars")
                && response.result.message.contains("mappings[0].destination"),
            "{}",
            response.result.message
        );
    }

    #[test]
    fn a_missing_secret_is_a_warning_not_a_denial() {
        let request = request::<GatewaySync>(
            GS,
            gateway_sync(json!({
                "git": {"repo": "https://git.example/r.git", "ref": "main",
                        "auth": {"token": {"secretRef": {"name": "git", "key": "token"}}}},
                "sync": {"profiles": {"p": {"mappings": [{"source": "a", "destination": "b"}]}}}
            })),
        );
        let response = validate_gateway_sync(&request, &SecretInventory::default());
        assert!(response.allowed, "{}", response.result.message);
        assert_eq!(
            response.warnings,
            Some(vec![
                "spec.git.auth.token.secretRef: Secret \"git\" not found in the namespace"
                    .to_owned()
            ])
        );
        let mut secrets = SecretInventory::default();
        secrets.insert("git", ["token".to_owned()]);
        let response = validate_gateway_sync(&request, &secrets);
        assert!(response.allowed && response.warnings.is_none());
    }

    #[test]
    fn a_pod_that_asks_for_injection_gets_the_patch_and_others_pass_unchanged() {
        let gs: GatewaySync = serde_json::from_value(gateway_sync(json!({
            "git": {"repo": "https://git.example/r.git", "ref": "main"},
            "sync": {"profiles": {"default": {"mappings": [{"source": "a", "destination": "b"}]}}}
        })))
        .unwrap();
        let pod = |annotations: serde_json::Value| {
            json!({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": "site1-0", "namespace": "plant", "annotations": annotations},
                "spec": {
                    "containers": [{"name": "gateway", "image": "ignition",
                        "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
                    "volumes": [{"name": "data", "emptyDir": {}}]
                }
            })
        };
        let config = InjectorConfig::default();
        let injected = mutate_pod(
            &request::<Pod>(POD, pod(json!({"stoker.io/inject": "true"}))),
            std::slice::from_ref(&gs),
            &config,
        );
        assert!(injected.allowed, "{}", injected.result.message);
        assert!(injected.patch.is_some());
        let untouched = mutate_pod(
            &request::<Pod>(POD, pod(json!({}))),
            std::slice::from_ref(&gs),
            &config,
        );
        assert!(untouched.allowed && untouched.patch.is_none());
        let denied = mutate_pod(
            &request::<Pod>(
                POD,
                pod(json!({"stoker.io/inject": "true", "stoker.io/cr-name": "other"})),
            ),
            std::slice::from_ref(&gs),
            &config,
        );
        assert!(!denied.allowed);
        assert_eq!(
            denied.result.message,
            "GatewaySync 'other' not found in namespace 'plant'"
        );
    }
}
