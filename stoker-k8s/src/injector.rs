//! The pod injector: what the mutating admission webhook does to a gateway pod, as a pure
//! function ([`inject`]) from the pod, the `GatewaySync`s of its namespace and the operator's
//! [`InjectorConfig`] to a JSON patch, a reason to leave the pod alone ([`Skip`]) or a reason to
//! refuse it ([`Denial`], whose `Display` is the message `kubectl` shows).
//!
//! The rules, in the order they are checked (those of stoker-operator v0.5.1 unless noted):
//!
//! 1. Only pods annotated `stoker.io/inject: "true"` (exactly) are touched; a pod that already
//!    has an init container named `stoker-agent` is left alone, so the webhook can be called
//!    again (`reinvocationPolicy: IfNeeded`) without adding a second agent.
//! 2. The Stoker annotations copied into the pod are at most [`MAX_ANNOTATION_VALUE`] bytes
//!    long (ours: a bound on what a hostile pod can make the injector copy or echo).
//! 3. The `GatewaySync` is the one named by `stoker.io/cr-name` (surrounding blanks ignored, as
//!    discovery does). Without the annotation, the only `GatewaySync` of the namespace is used
//!    and the annotation is written into the pod; none or several are refused.
//! 4. A missing or paused `GatewaySync`, and a `stoker.io/profile` it does not define, are
//!    refused.
//! 5. The pod must not already use the agent's names: no regular container `stoker-agent`, no
//!    volume named like the agent's `stoker-…` volumes (ours).
//! 6. The gateway's data volume is the volume `ignition-data`, else `data`; the agent mounts it
//!    where the first regular container mounting it does (with the same `subPath`), else at
//!    [`DEFAULT_DATA_PATH`], and `DATA_PATH` says where. A pod without such a volume, with a
//!    read-only one, or mounting it where the agent's own volumes go is refused (ours: v0.5.1
//!    injected an agent that could not write anywhere). A `hostPath` data volume is accepted:
//!    the agent gets no access the pod does not already have, and Pod Security admission judges
//!    the pod as a whole.
//!
//! What the patch adds is described on [`inject`].
//!
//! ```
//! use k8s_openapi::api::core::v1::Pod;
//! use stoker_k8s::GatewaySync;
//! use stoker_k8s::injector::{inject, Injection, InjectorConfig};
//!
//! let gs: GatewaySync = serde_json::from_value(serde_json::json!({
//!     "apiVersion": "stoker.io/v1alpha1", "kind": "GatewaySync",
//!     "metadata": {"name": "site", "namespace": "plant"},
//!     "spec": {"git": {"repo": "https://git.example/r.git", "ref": "main"},
//!              "sync": {"profiles": {"default": {"mappings": []}}}}
//! })).unwrap();
//! let pod: Pod = serde_json::from_value(serde_json::json!({
//!     "metadata": {"name": "ignition-0", "annotations": {"stoker.io/inject": "true"}},
//!     "spec": {
//!         "containers": [{"name": "gateway", "image": "ignition",
//!             "volumeMounts": [{"name": "data", "mountPath": "/usr/local/bin/ignition/data"}]}],
//!         "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data-0"}}]
//!     }
//! })).unwrap();
//! let Injection::Patch(patch) = inject(&pod, "plant", &[gs], &InjectorConfig::default()).unwrap()
//! else { panic!("expected a patch") };
//! let mut json = serde_json::to_value(&pod).unwrap();
//! json_patch::patch(&mut json, &patch).unwrap();
//! let injected: Pod = serde_json::from_value(json).unwrap();
//! let spec = injected.spec.unwrap();
//! assert_eq!(spec.init_containers.unwrap()[0].name, "stoker-agent");
//! assert_eq!(injected.metadata.annotations.unwrap()["stoker.io/cr-name"], "site");
//! ```

use std::path::{Component, Path};

use json_patch::jsonptr::PointerBuf;
use json_patch::{AddOperation, Patch, PatchOperation};
use k8s_openapi::api::core::v1::{Container, Pod, PodSpec, ResourceRequirements, Volume};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use serde_json::Value;

use crate::annotations::{
    AGENT_CONTAINER_NAME, AGENT_IMAGE, CR_NAME, GATEWAY_NAME, INJECT, INJECTED, LABEL_AGENT,
    PROFILE, asks_for_injection, is_object_name, pod_annotation as annotation,
};
use crate::crd::{GatewaySync, PullPolicy};

mod agent;

pub use agent::{
    API_KEY_DIR, GIT_CREDENTIALS_DIR, GITHUB_TOKEN_DIR, KNOWN_HOSTS_DIR, METRICS_PORT, PROBE_PORT,
    REPO_PATH, TMP_PATH, volumes,
};

/// The agent image when neither the pod nor the `GatewaySync` names one and the operator is not
/// told otherwise: `stoker-agent:<this crate's version>` (the Helm chart passes its `agentImage`).
pub const DEFAULT_AGENT_IMAGE: &str = concat!("stoker-agent:", env!("CARGO_PKG_VERSION"));

/// The names of the gateway's data volume, in order of preference (`data` is the Ignition Helm
/// chart's PersistentVolumeClaim).
pub const DATA_VOLUME_NAMES: [&str; 2] = ["ignition-data", "data"];

/// Where the agent mounts the data volume when no regular container mounts it.
pub const DEFAULT_DATA_PATH: &str = "/ignition-data";

/// The longest value of a Stoker annotation the injector copies into the pod
/// (`stoker.io/cr-name`, `profile`, `gateway-name`, `agent-image`), in bytes.
pub const MAX_ANNOTATION_VALUE: usize = 512;

/// What the operator decides for every injected pod (flags of `stoker-operator`, values of the
/// Helm chart).
#[derive(Debug, Clone, PartialEq)]
pub struct InjectorConfig {
    /// The agent image used when neither the pod (`stoker.io/agent-image`) nor the
    /// `GatewaySync` (`spec.agent.image`) names one; its tag also completes a
    /// `spec.agent.image` that gives only a repository. The chart's `agentImage`.
    pub default_image: String,
    /// The pull policy when `spec.agent.image.pullPolicy` is not set (the chart's
    /// `agentImage.pullPolicy`; `IfNotPresent` by default).
    pub default_pull_policy: PullPolicy,
    /// The `sizeLimit` of the Git cache `emptyDir`; `None` (the default, as in v0.5.1) leaves it
    /// unbounded. The kubelet evicts the pod when the cache outgrows it, so leave room for the
    /// repository's largest revision.
    pub cache_size_limit: Option<Quantity>,
    /// The agent container's resources when `spec.agent.resources` is not set; by default
    /// [`default_agent_resources`].
    pub default_resources: ResourceRequirements,
}

impl Default for InjectorConfig {
    fn default() -> Self {
        InjectorConfig {
            default_image: DEFAULT_AGENT_IMAGE.to_owned(),
            default_pull_policy: PullPolicy::IfNotPresent,
            cache_size_limit: None,
            default_resources: default_agent_resources(),
        }
    }
}

/// The agent's resources unless configured: requests 50m CPU and 64Mi memory, limits 200m CPU
/// and 256Mi memory (v0.5.1's; a CPU limit keeps namespaces whose ResourceQuota requires one
/// working).
pub fn default_agent_resources() -> ResourceRequirements {
    let quantities = |cpu: &str, memory: &str| {
        Some(
            [
                ("cpu".to_owned(), Quantity(cpu.to_owned())),
                ("memory".to_owned(), Quantity(memory.to_owned())),
            ]
            .into(),
        )
    };
    ResourceRequirements {
        requests: quantities("50m", "64Mi"),
        limits: quantities("200m", "256Mi"),
        claims: None,
    }
}

/// The injector's answer for an acceptable pod.
#[derive(Debug, Clone, PartialEq)]
pub enum Injection {
    /// Admit the pod unchanged.
    Skip(Skip),
    /// Admit the pod with this JSON patch (RFC 6902) applied.
    Patch(Patch),
}

/// Why a pod is admitted unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Skip {
    /// The pod is not annotated `stoker.io/inject: "true"`.
    NotRequested,
    /// The pod already has the `stoker-agent` init container.
    AlreadyInjected,
}

/// Why a pod asking for injection is refused. `Display` is the message the API server returns
/// to whoever creates the pod (and the StatefulSet's or ReplicaSet's Events show).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Denial {
    /// A Stoker annotation longer than [`MAX_ANNOTATION_VALUE`] bytes.
    AnnotationTooLong {
        /// The annotation.
        key: &'static str,
        /// Its length in bytes.
        len: usize,
    },
    /// `stoker.io/cr-name` is not a possible object name.
    InvalidCrName {
        /// The annotation's value.
        value: String,
    },
    /// No `stoker.io/cr-name` and no `GatewaySync` in the namespace.
    NoGatewaySync {
        /// The pod's namespace.
        namespace: String,
    },
    /// No `stoker.io/cr-name` and several `GatewaySync`s in the namespace.
    SeveralGatewaySyncs {
        /// The pod's namespace.
        namespace: String,
        /// Their names, sorted.
        names: Vec<String>,
    },
    /// The named `GatewaySync` does not exist.
    GatewaySyncNotFound {
        /// Its name.
        name: String,
        /// The pod's namespace.
        namespace: String,
    },
    /// The `GatewaySync` has `spec.paused: true`.
    Paused {
        /// Its name.
        name: String,
    },
    /// `stoker.io/profile` names no profile of the `GatewaySync`.
    ProfileNotFound {
        /// The profile asked for.
        profile: String,
        /// The `GatewaySync`.
        name: String,
    },
    /// A regular container is named `stoker-agent`.
    AgentInContainers,
    /// The pod has a volume named like one the agent needs.
    VolumeNameTaken {
        /// The volume's name.
        name: String,
    },
    /// The pod has no volume `ignition-data` or `data`.
    NoDataVolume,
    /// The data volume cannot be written.
    ReadOnlyDataVolume {
        /// The volume's name.
        volume: String,
        /// Its kind (`secret`, `configMap`, a read-only `persistentVolumeClaim`...).
        kind: &'static str,
    },
    /// The data volume is mounted where the agent cannot use it.
    DataPath {
        /// The volume's name.
        volume: String,
        /// The gateway container's mount path.
        path: String,
        /// What is wrong with it.
        problem: DataPathProblem,
    },
    /// The sidecar could not be serialised (a bug: please report it).
    Internal {
        /// The serialiser's message.
        message: String,
    },
}

/// What is wrong with the data volume's mount path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DataPathProblem {
    /// Relative, or with `.`/`..` components.
    NotAbsolute,
    /// Equal to, inside, or containing one of the agent's own mount paths.
    Overlaps(&'static str),
}

impl std::fmt::Display for Denial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        const AGENT: &str = AGENT_CONTAINER_NAME;
        match self {
            Denial::AnnotationTooLong { key, len } => write!(
                f,
                "annotation '{key}' is {len} bytes long; at most {MAX_ANNOTATION_VALUE} are accepted"
            ),
            Denial::InvalidCrName { value } => write!(
                f,
                "annotation '{CR_NAME}' is '{value}', which is not a valid GatewaySync name"
            ),
            Denial::NoGatewaySync { namespace } => {
                write!(f, "no GatewaySync CR found in namespace '{namespace}'")
            }
            Denial::SeveralGatewaySyncs { namespace, names } => write!(
                f,
                "multiple GatewaySync CRs in namespace '{namespace}': [{}] — set annotation '{CR_NAME}' explicitly",
                names.join(", ")
            ),
            Denial::GatewaySyncNotFound { name, namespace } => write!(
                f,
                "GatewaySync '{name}' not found in namespace '{namespace}'"
            ),
            Denial::Paused { name } => write!(f, "GatewaySync '{name}' is paused"),
            Denial::ProfileNotFound { profile, name } => {
                write!(f, "profile '{profile}' not found in GatewaySync '{name}'")
            }
            Denial::AgentInContainers => write!(
                f,
                "the pod already has a container named '{AGENT}' in spec.containers; the injector \
                 adds it as an init container: remove it, or the '{INJECT}' annotation"
            ),
            Denial::VolumeNameTaken { name } => write!(
                f,
                "the pod already has a volume named '{name}', which the {AGENT} sidecar needs; rename it"
            ),
            Denial::NoDataVolume => write!(
                f,
                "the pod has no volume named 'ignition-data' or 'data': the {AGENT} sidecar writes \
                 the gateway's files into that volume, which the gateway container mounts"
            ),
            Denial::ReadOnlyDataVolume { volume, kind } => write!(
                f,
                "the data volume '{volume}' is a read-only {kind} volume: the {AGENT} sidecar could not write the gateway's files"
            ),
            Denial::DataPath {
                volume,
                path,
                problem: DataPathProblem::NotAbsolute,
            } => write!(
                f,
                "the data volume '{volume}' is mounted at '{path}', which is not an absolute, normalised path"
            ),
            Denial::DataPath {
                volume,
                path,
                problem: DataPathProblem::Overlaps(own),
            } => write!(
                f,
                "the data volume '{volume}' is mounted at '{path}', which overlaps '{own}' of the {AGENT} sidecar"
            ),
            Denial::Internal { message } => write!(
                f,
                "internal error building the {AGENT} sidecar (please report it): {message}"
            ),
        }
    }
}

impl std::error::Error for Denial {}

/// Decides what to do with `pod`, being created in `namespace` (the admission request's; a
/// pod's own `metadata.namespace` may be empty). `gateway_syncs` are the `GatewaySync`s of that
/// namespace (others are ignored).
///
/// The patch prepends to `spec.initContainers` the agent as a native sidecar (`restartPolicy:
/// Always`) named `stoker-agent`, running `stoker-agent sidecar`:
///
/// - image: the pod's `stoker.io/agent-image`, else `spec.agent.image` (missing fields from
///   [`InjectorConfig::default_image`]), else the default image; pull policy from
///   `spec.agent.image.pullPolicy`, else [`InjectorConfig::default_pull_policy`];
/// - the container port `metrics` ([`METRICS_PORT`], `/metrics`);
/// - probes on port [`PROBE_PORT`]: startup `/startupz`
///   (every 2 s, up to 300 failures: the first sync may take up to 10 minutes, and the gateway
///   starts only after it), liveness `/healthz`, readiness `/readyz`;
/// - a restricted security context (non-root, read-only root file system, no privilege
///   escalation, all capabilities dropped, seccomp `RuntimeDefault`); no user, so it runs as the
///   pod's `runAsUser` and writes files the gateway owns;
/// - resources from `spec.agent.resources`, else [`InjectorConfig::default_resources`];
/// - the environment of `stoker-agent sidecar`: `POD_NAME`, `POD_NAMESPACE`, `CR_NAMESPACE`
///   (downward API), `CR_NAME`, `GATEWAY_NAME` and `PROFILE` (only when the pod's annotations
///   set them; otherwise the agent reads the pod's labels and annotations live), `REPO_PATH`,
///   `DATA_PATH`, `GATEWAY_PORT`, `GATEWAY_TLS`, `API_KEY_FILE` (with `spec.gateway.api`),
///   `GIT_TOKEN_FILE` / `GIT_SSH_KEY_FILE` (+ `GIT_KNOWN_HOSTS_FILE`) as `spec.git.auth` says,
///   `SYNC_PERIOD` (30);
/// - mounts: the data volume, and the volumes listed in [`volumes`], which the patch appends
///   to `spec.volumes`: the Git cache and `/tmp` (`emptyDir`s), and read-only Secrets (only the
///   referenced key is projected): the API key (optional, so that the gateway can start before
///   its key exists), the Git token or SSH key, `known_hosts`, and for a GitHub App the token
///   Secret `stoker-github-token-<cr>` the operator keeps.
///
/// It also sets the annotation `stoker.io/injected: "true"` (and `stoker.io/cr-name` when it was
/// found rather than given) and the label `stoker.io/agent: "true"`, creating
/// `metadata.annotations`, `metadata.labels`, `spec.initContainers` and `spec.volumes` when
/// the pod has none.
pub fn inject(
    pod: &Pod,
    namespace: &str,
    gateway_syncs: &[GatewaySync],
    config: &InjectorConfig,
) -> Result<Injection, Denial> {
    if !asks_for_injection(pod) {
        return Ok(Injection::Skip(Skip::NotRequested));
    }
    let empty = PodSpec::default();
    let spec = pod.spec.as_ref().unwrap_or(&empty);
    if has_agent_init_container(spec) {
        return Ok(Injection::Skip(Skip::AlreadyInjected));
    }
    check_annotation_lengths(pod)?;
    let selected = select_gateway_sync(pod, namespace, gateway_syncs)?;
    check_gateway_sync(pod, selected.gateway_sync)?;
    check_names(spec)?;
    let data = data_mount(spec)?;
    let sidecar = agent::Sidecar::new(pod, selected.gateway_sync, data, config);
    patch(pod, spec, &sidecar, selected.discovered).map(Injection::Patch)
}

/// The patch adding `sidecar` to `pod`, with the annotations and label; `stoker.io/cr-name` too
/// when the `GatewaySync` was `discovered` rather than named.
fn patch(
    pod: &Pod,
    spec: &PodSpec,
    sidecar: &agent::Sidecar,
    discovered: bool,
) -> Result<Patch, Denial> {
    let annotations = [
        Some((INJECTED, "true".to_owned())),
        discovered.then(|| (CR_NAME, sidecar.cr_name.clone())),
    ];
    let patch = PatchBuilder::default()
        .map_entries(
            ["metadata", "annotations"],
            pod.metadata.annotations.is_some(),
            annotations.into_iter().flatten(),
        )
        .map_entries(
            ["metadata", "labels"],
            pod.metadata.labels.is_some(),
            [(LABEL_AGENT, "true".to_owned())],
        )
        .prepend(
            ["spec", "initContainers"],
            spec.init_containers.is_some(),
            to_json(&sidecar.container())?,
        )
        .append(
            ["spec", "volumes"],
            spec.volumes.is_some(),
            to_json_each(&sidecar.volumes())?,
        )
        .build();
    Ok(patch)
}

/// The `GatewaySync` a pod syncs from, and whether it was found rather than named.
struct Selected<'a> {
    gateway_sync: &'a GatewaySync,
    discovered: bool,
}

/// An annotation's value, trimmed, unless blank.
fn annotation_value<'a>(pod: &'a Pod, key: &str) -> Option<&'a str> {
    annotation(pod, key)
        .map(str::trim)
        .filter(|value| !value.is_empty())
}

fn has_agent_init_container(spec: &PodSpec) -> bool {
    spec.init_containers
        .iter()
        .flatten()
        .any(|container| container.name == AGENT_CONTAINER_NAME)
}

fn check_annotation_lengths(pod: &Pod) -> Result<(), Denial> {
    for key in [CR_NAME, PROFILE, GATEWAY_NAME, AGENT_IMAGE] {
        if let Some(value) = annotation(pod, key)
            && value.len() > MAX_ANNOTATION_VALUE
        {
            return Err(Denial::AnnotationTooLong {
                key,
                len: value.len(),
            });
        }
    }
    Ok(())
}

fn name_of(gs: &GatewaySync) -> &str {
    gs.metadata.name.as_deref().unwrap_or_default()
}

fn select_gateway_sync<'a>(
    pod: &Pod,
    namespace: &str,
    all: &'a [GatewaySync],
) -> Result<Selected<'a>, Denial> {
    let in_namespace: Vec<&GatewaySync> = all
        .iter()
        .filter(|gs| {
            gs.metadata
                .namespace
                .as_deref()
                .is_none_or(|n| n == namespace)
        })
        .collect();
    if let Some(name) = annotation_value(pod, CR_NAME) {
        if !is_object_name(name) {
            return Err(Denial::InvalidCrName {
                value: name.to_owned(),
            });
        }
        let found = in_namespace.into_iter().find(|gs| name_of(gs) == name);
        return found
            .map(|gateway_sync| Selected {
                gateway_sync,
                discovered: false,
            })
            .ok_or_else(|| Denial::GatewaySyncNotFound {
                name: name.to_owned(),
                namespace: namespace.to_owned(),
            });
    }
    match in_namespace.as_slice() {
        [] => Err(Denial::NoGatewaySync {
            namespace: namespace.to_owned(),
        }),
        [only] => Ok(Selected {
            gateway_sync: only,
            discovered: true,
        }),
        several => {
            let mut names: Vec<String> = several.iter().map(|gs| name_of(gs).to_owned()).collect();
            names.sort();
            Err(Denial::SeveralGatewaySyncs {
                namespace: namespace.to_owned(),
                names,
            })
        }
    }
}

fn check_gateway_sync(pod: &Pod, gs: &GatewaySync) -> Result<(), Denial> {
    let name = name_of(gs).to_owned();
    if gs.spec.paused {
        return Err(Denial::Paused { name });
    }
    if let Some(profile) = annotation_value(pod, PROFILE)
        && !gs.spec.sync.profiles.contains_key(profile)
    {
        return Err(Denial::ProfileNotFound {
            profile: profile.to_owned(),
            name,
        });
    }
    Ok(())
}

/// The pod must not already use the names the agent brings.
fn check_names(spec: &PodSpec) -> Result<(), Denial> {
    if spec
        .containers
        .iter()
        .any(|container| container.name == AGENT_CONTAINER_NAME)
    {
        return Err(Denial::AgentInContainers);
    }
    let taken = spec
        .volumes
        .iter()
        .flatten()
        .find(|volume| volumes::ALL.contains(&volume.name.as_str()));
    match taken {
        Some(volume) => Err(Denial::VolumeNameTaken {
            name: volume.name.clone(),
        }),
        None => Ok(()),
    }
}

/// How the agent mounts the gateway's data volume.
#[derive(Debug, Clone, PartialEq, Eq)]
struct DataMount {
    volume: String,
    path: String,
    sub_path: Option<String>,
    sub_path_expr: Option<String>,
}

/// The data volume (`ignition-data`, else `data`) and where the gateway mounts it.
fn data_mount(spec: &PodSpec) -> Result<DataMount, Denial> {
    let volume = DATA_VOLUME_NAMES
        .iter()
        .find_map(|name| {
            spec.volumes
                .iter()
                .flatten()
                .find(|volume| volume.name == *name)
        })
        .ok_or(Denial::NoDataVolume)?;
    if let Some(kind) = read_only_kind(volume) {
        return Err(Denial::ReadOnlyDataVolume {
            volume: volume.name.clone(),
            kind,
        });
    }
    let mount = mount_of(&spec.containers, &volume.name);
    check_data_path(&mount)?;
    Ok(mount)
}

/// Where the first regular container mounting `volume` mounts it, else [`DEFAULT_DATA_PATH`].
fn mount_of(containers: &[Container], volume: &str) -> DataMount {
    let found = containers
        .iter()
        .flat_map(|container| container.volume_mounts.iter().flatten())
        .find(|mount| mount.name == volume);
    DataMount {
        volume: volume.to_owned(),
        path: found.map_or_else(|| DEFAULT_DATA_PATH.to_owned(), |m| m.mount_path.clone()),
        sub_path: found
            .and_then(|m| m.sub_path.clone())
            .filter(|s| !s.is_empty()),
        sub_path_expr: found
            .and_then(|m| m.sub_path_expr.clone())
            .filter(|s| !s.is_empty()),
    }
}

/// The kind of a volume the agent could not write to, if it is one.
fn read_only_kind(volume: &Volume) -> Option<&'static str> {
    if volume.secret.is_some() {
        Some("secret")
    } else if volume.config_map.is_some() {
        Some("configMap")
    } else if volume.downward_api.is_some() {
        Some("downwardAPI")
    } else if volume.projected.is_some() {
        Some("projected")
    } else if volume.image.is_some() {
        Some("image")
    } else if volume
        .persistent_volume_claim
        .as_ref()
        .is_some_and(|claim| claim.read_only == Some(true))
    {
        Some("persistentVolumeClaim (readOnly)")
    } else {
        None
    }
}

fn check_data_path(mount: &DataMount) -> Result<(), Denial> {
    let path = Path::new(&mount.path);
    let problem = if !path.is_absolute()
        || path
            .components()
            .any(|c| matches!(c, Component::CurDir | Component::ParentDir))
    {
        Some(DataPathProblem::NotAbsolute)
    } else {
        agent::MOUNT_PATHS
            .iter()
            .find(|own| path.starts_with(own) || Path::new(own).starts_with(path))
            .map(|own| DataPathProblem::Overlaps(own))
    };
    match problem {
        Some(problem) => Err(Denial::DataPath {
            volume: mount.volume.clone(),
            path: mount.path.clone(),
            problem,
        }),
        None => Ok(()),
    }
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<Value, Denial> {
    serde_json::to_value(value).map_err(|error| Denial::Internal {
        message: error.to_string(),
    })
}

fn to_json_each<T: serde::Serialize>(values: &[T]) -> Result<Vec<Value>, Denial> {
    values.iter().map(to_json).collect()
}

/// JSON patch operations that add to an object, creating the maps and lists it lacks. Paths
/// are given as unescaped tokens (`stoker.io/inject` becomes `stoker.io~1inject`).
#[derive(Default)]
struct PatchBuilder {
    operations: Vec<PatchOperation>,
}

impl PatchBuilder {
    fn add(&mut self, path: PointerBuf, value: Value) {
        self.operations
            .push(PatchOperation::Add(AddOperation { path, value }));
    }

    /// Sets each entry in the map at `at`, which `exists` or is created with them.
    fn map_entries<'k>(
        mut self,
        at: [&str; 2],
        exists: bool,
        entries: impl IntoIterator<Item = (&'k str, String)>,
    ) -> Self {
        if exists {
            for (key, value) in entries {
                let mut path = PointerBuf::from_tokens(at);
                path.push_back(key);
                self.add(path, Value::String(value));
            }
        } else {
            let map = entries
                .into_iter()
                .map(|(key, value)| (key.to_owned(), Value::String(value)))
                .collect();
            self.add(PointerBuf::from_tokens(at), Value::Object(map));
        }
        self
    }

    /// Puts `value` first in the list at `at`, which `exists` or is created with it.
    fn prepend(mut self, at: [&str; 2], exists: bool, value: Value) -> Self {
        if exists {
            let mut path = PointerBuf::from_tokens(at);
            path.push_back("0");
            self.add(path, value);
        } else {
            self.add(PointerBuf::from_tokens(at), Value::Array(vec![value]));
        }
        self
    }

    /// Appends `values` to the list at `at`, which `exists` or is created with them.
    fn append(mut self, at: [&str; 2], exists: bool, values: Vec<Value>) -> Self {
        if exists {
            for value in values {
                let mut path = PointerBuf::from_tokens(at);
                path.push_back("-");
                self.add(path, value);
            }
        } else {
            self.add(PointerBuf::from_tokens(at), Value::Array(values));
        }
        self
    }

    fn build(self) -> Patch {
        Patch(self.operations)
    }
}

#[cfg(test)]
mod tests;
