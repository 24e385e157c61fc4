//! Annotation, label and name constants shared by the operator, the injector and the agent.
//!
//! Pod annotations set by users (usually through the Ignition Helm chart's `podAnnotations`):
//! [`INJECT`], [`CR_NAME`], [`PROFILE`], [`GATEWAY_NAME`], [`AGENT_IMAGE`], [`REF_OVERRIDE`].
//! Set by Stoker on pods: [`INJECTED`] and the label [`LABEL_AGENT`]. Set by the webhook
//! receiver on a `GatewaySync`: [`REQUESTED_REF`], [`REQUESTED_AT`], [`REQUESTED_BY`] (a
//! release or promotion asks for a ref), [`PUSH_RECEIVED_AT`], [`PUSH_COMMIT`] (a Git host
//! reported a push to the resource's ref).

/// The prefix of every Stoker annotation and label.
pub const PREFIX: &str = "stoker.io";

/// Pod annotation: `"true"` asks the mutating webhook to inject the agent sidecar.
pub const INJECT: &str = "stoker.io/inject";
/// Pod annotation: the name of the `GatewaySync` (same namespace) this gateway syncs from.
pub const CR_NAME: &str = "stoker.io/cr-name";
/// Pod annotation: the profile (key of `spec.sync.profiles`) this gateway uses.
pub const PROFILE: &str = "stoker.io/profile";
/// Pod annotation: the gateway's identity (`{{.GatewayName}}`); defaults to the label
/// [`APP_NAME_LABEL`], then the pod name.
pub const GATEWAY_NAME: &str = "stoker.io/gateway-name";
/// Pod annotation: an agent image for this pod, overriding `spec.agent.image` and the chart's
/// default.
pub const AGENT_IMAGE: &str = "stoker.io/agent-image";
/// Pod annotation: a ref this gateway syncs instead of the resource's (pinning one gateway).
pub const REF_OVERRIDE: &str = "stoker.io/ref-override";
/// Pod annotation set by the injector once the sidecar is in the pod spec (`"true"`).
pub const INJECTED: &str = "stoker.io/injected";
/// Pod label set by the injector on pods with the agent (labels are indexed: PodMonitors and
/// selectors can find them).
pub const LABEL_AGENT: &str = "stoker.io/agent";

/// `GatewaySync` annotation set by the webhook receiver: the ref a push or promotion asked for.
/// It wins over `spec.git.ref` until the spec catches up (see [`crate::refs`]).
pub const REQUESTED_REF: &str = "stoker.io/requested-ref";
/// `GatewaySync` annotation set by the webhook receiver: when the ref was requested (RFC 3339).
pub const REQUESTED_AT: &str = "stoker.io/requested-at";
/// `GatewaySync` annotation set by the webhook receiver: who asked (`github`, `kargo`, ...).
pub const REQUESTED_BY: &str = "stoker.io/requested-by";
/// `GatewaySync` annotation set by the webhook receiver when a Git host reports a push that
/// moved the resource's ref and touched a path its profiles map: when (RFC 3339 with
/// sub-second precision, so two pushes within a second still change it). Changing an
/// annotation is what makes the leader's controller reconcile, and so resolve the ref, at
/// once instead of at the next poll; the controller reads nothing else from it.
pub const PUSH_RECEIVED_AT: &str = "stoker.io/push-received-at";
/// `GatewaySync` annotation set with [`PUSH_RECEIVED_AT`]: the commit the push reported (for
/// people: the controller resolves the ref itself and trusts no payload's commit).
pub const PUSH_COMMIT: &str = "stoker.io/push-commit";

/// Label on objects Stoker owns for a `GatewaySync` (ConfigMaps, Secrets): the resource's name
/// (see [`label_value`] for names longer than a label value allows).
pub const LABEL_CR_NAME: &str = "stoker.io/cr-name";
/// Label on the agents' RoleBinding `stoker-agent-{cr}` ([`crate::rbac`]): the resource's name
/// (see [`label_value`]), as stoker-operator v0.5 labelled it.
pub const LABEL_GATEWAYSYNC: &str = "stoker.io/gatewaysync";
/// Label on the agent's status ConfigMaps: the gateway pod's name (see [`label_value`]).
pub const LABEL_POD_NAME: &str = "stoker.io/pod-name";
/// The standard `app.kubernetes.io/name` label, the second choice for a gateway's name.
pub const APP_NAME_LABEL: &str = "app.kubernetes.io/name";
/// The standard `app.kubernetes.io/managed-by` label.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// The standard `app.kubernetes.io/component` label; Stoker's ConfigMaps say which protocol
/// half they are ([`COMPONENT_METADATA`], [`COMPONENT_GATEWAY_STATUS`]).
pub const COMPONENT_LABEL: &str = "app.kubernetes.io/component";
/// StatefulSet pods' ordinal label (Kubernetes 1.27+), read for `{{.PodOrdinal}}`.
pub const POD_INDEX_LABEL: &str = "apps.kubernetes.io/pod-index";

/// [`MANAGED_BY_LABEL`] value on objects the operator writes.
pub const MANAGED_BY_OPERATOR: &str = "stoker-operator";
/// [`MANAGED_BY_LABEL`] value on objects the agent writes.
pub const MANAGED_BY_AGENT: &str = "stoker-agent";
/// [`COMPONENT_LABEL`] value of the controller → agent metadata ConfigMap.
pub const COMPONENT_METADATA: &str = "sync-metadata";
/// [`COMPONENT_LABEL`] value of an agent → controller gateway status ConfigMap.
pub const COMPONENT_GATEWAY_STATUS: &str = "gateway-status";

/// The finalizer the operator puts on a `GatewaySync`.
pub const FINALIZER: &str = "stoker.io/finalizer";
/// The name of the injected agent container (a native sidecar: an init container with
/// `restartPolicy: Always`).
pub const AGENT_CONTAINER_NAME: &str = "stoker-agent";

/// Reads an annotation or label as "true" the way Stoker does: `true`, case-insensitive,
/// surrounding blanks ignored.
///
/// ```
/// assert!(stoker_k8s::annotations::is_true(Some(" True ")));
/// assert!(!stoker_k8s::annotations::is_true(Some("yes")));
/// assert!(!stoker_k8s::annotations::is_true(None));
/// ```
pub fn is_true(value: Option<&str>) -> bool {
    value.is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

/// A pod's annotation `key`, as written (`None` when absent).
pub fn pod_annotation<'a>(pod: &'a k8s_openapi::api::core::v1::Pod, key: &str) -> Option<&'a str> {
    pod.metadata
        .annotations
        .as_ref()
        .and_then(|annotations| annotations.get(key))
        .map(String::as_str)
}

/// True when a pod asks for the agent: `stoker.io/inject` is exactly `"true"`, as the
/// injector (and stoker-operator v0.5.1) reads it.
pub fn asks_for_injection(pod: &k8s_openapi::api::core::v1::Pod) -> bool {
    pod_annotation(pod, INJECT) == Some("true")
}

/// The longest label value Kubernetes accepts.
pub const MAX_LABEL_VALUE: usize = 63;

/// A label value standing for `name`: `name` itself when it is a valid label value (at most 63
/// characters of `[A-Za-z0-9._-]`, alphanumeric at both ends); otherwise a prefix of it and a
/// hash of the whole, so different names stay different. Objects found by such a label keep the
/// full name in their data too.
///
/// ```
/// use stoker_k8s::annotations::label_value;
/// assert_eq!(label_value("site-1"), "site-1");
/// let long = "x".repeat(100);
/// assert_eq!(label_value(&long).len(), 63);
/// assert_ne!(label_value(&long), label_value(&"x".repeat(101)));
/// ```
pub fn label_value(name: &str) -> String {
    if is_label_value(name) {
        return name.to_owned();
    }
    let hash = format!("{:016x}", fnv1a(name.as_bytes()));
    let keep = MAX_LABEL_VALUE - hash.len() - 1;
    let prefix: String = name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .take(keep)
        .collect();
    let prefix = prefix.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    if prefix.is_empty() {
        hash
    } else {
        format!("{prefix}-{hash}")
    }
}

fn is_label_value(value: &str) -> bool {
    value.is_empty()
        || (value.len() <= MAX_LABEL_VALUE
            && value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            && value.starts_with(|c: char| c.is_ascii_alphanumeric())
            && value.ends_with(|c: char| c.is_ascii_alphanumeric()))
}

/// The longest object name (a DNS subdomain) Kubernetes accepts.
pub const MAX_NAME: usize = 253;

/// An object name built from `prefix` and `parts` joined by `-`, lowercased, shortened with a
/// hash of the whole when longer than [`MAX_NAME`].
///
/// ```
/// use stoker_k8s::annotations::object_name;
/// assert_eq!(object_name("stoker-status", &["site", "ignition-0"]), "stoker-status-site-ignition-0");
/// assert!(object_name("stoker-status", &[&"a".repeat(253), "p"]).len() <= 253);
/// ```
pub fn object_name(prefix: &str, parts: &[&str]) -> String {
    let mut name = prefix.to_owned();
    for part in parts {
        name.push('-');
        name.push_str(part);
    }
    let name = name.to_ascii_lowercase();
    if name.len() <= MAX_NAME {
        return name;
    }
    let hash = format!("{:016x}", fnv1a(name.as_bytes()));
    let mut cut = MAX_NAME - hash.len() - 1;
    while !name.is_char_boundary(cut) {
        cut -= 1;
    }
    let head = name[..cut].trim_end_matches(['-', '.']);
    format!("{head}-{hash}")
}

/// True for a valid object name (a DNS-1123 subdomain: at most 253 of `a-z`, `0-9`, `-` and
/// `.`, starting and ending with a letter or digit).
///
/// ```
/// use stoker_k8s::annotations::is_object_name;
/// assert!(is_object_name("plant-gateways"));
/// assert!(!is_object_name("Plant_Gateways"));
/// ```
pub fn is_object_name(name: &str) -> bool {
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    !name.is_empty()
        && name.len() <= MAX_NAME
        && name.starts_with(alnum)
        && name.ends_with(alnum)
        && name.chars().all(|c| alnum(c) || c == '-' || c == '.')
}

/// 64-bit FNV-1a: a small, stable, dependency-free hash for name suffixes (not security).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_that_fit_are_kept() {
        for name in ["a", "site-1", "a.b_c", "A1"] {
            assert_eq!(label_value(name), name);
        }
    }

    #[test]
    fn label_values_that_do_not_fit_are_hashed_and_valid() {
        for name in ["-lead", "trail-", &"y".repeat(64), "a/b", "ü"] {
            let value = label_value(name);
            assert!(is_label_value(&value), "{name:?} -> {value:?}");
            assert!(!value.is_empty());
        }
        assert_ne!(label_value("a/b"), label_value("a:b"));
    }

    #[test]
    fn long_object_names_are_shortened_stably() {
        let long = "g".repeat(300);
        let a = object_name("stoker-status", &["cr", &long]);
        assert!(a.len() <= MAX_NAME);
        assert_eq!(a, object_name("stoker-status", &["cr", &long]));
        assert_ne!(a, object_name("stoker-status", &["cr2", &long]));
        assert!(!a.contains("--"));
    }

    #[test]
    fn annotation_keys_have_the_stoker_prefix() {
        for key in [
            INJECT,
            CR_NAME,
            PROFILE,
            GATEWAY_NAME,
            AGENT_IMAGE,
            REF_OVERRIDE,
            INJECTED,
            LABEL_AGENT,
            REQUESTED_REF,
            REQUESTED_AT,
            REQUESTED_BY,
            PUSH_RECEIVED_AT,
            PUSH_COMMIT,
            FINALIZER,
        ] {
            assert!(key.starts_with(&format!("{PREFIX}/")), "{key}");
        }
    }
}
