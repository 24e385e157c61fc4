//! A kubelet for tests: what the kubelet would give the `stoker-agent` container of a pod the
//! API server stored, turned into a process environment and directories on the test machine.
//!
//! - **Volumes** become directories under the pod's root (`volumes/<name>`): an `emptyDir` and a
//!   `persistentVolumeClaim` (the claim's volume) an empty directory, a `secret` volume the
//!   Secret's keys as files, read from the API server as the kubelet does (only the `items`
//!   asked for, under their `path`, with their mode; a missing Secret or key that is not
//!   `optional` is an error, where the kubelet would leave the pod in `ContainerCreating`).
//! - **Mounts** map each `mountPath` of a container to its volume's directory (and `subPath`).
//! - **Environment**: literal values and `valueFrom.fieldRef` (the downward API: the pod's
//!   name, namespace, uid, labels, annotations, service account, node). A value that is an
//!   absolute path is rewritten to where its mount is on the test machine.
//!
//! Anything else (another volume kind, another env source, `envFrom`, `$(VAR)` references, a
//! path outside every mount) is a [`KubeletError`]: an injector that starts using it must teach
//! this module, not be silently ignored.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Component, Path, PathBuf};

use k8s_openapi::api::core::v1::{
    Container, EnvVar, Pod, Secret, SecretVolumeSource, Volume, VolumeMount,
};
use kube::api::Api;
use stoker_k8s::annotations::AGENT_CONTAINER_NAME;

/// Why the test kubelet cannot run a container as the API server stored it.
#[derive(Debug, thiserror::Error)]
pub enum KubeletError {
    /// The pod has no container of that name.
    #[error("the pod has no container '{0}'")]
    NoContainer(String),
    /// An env var whose source is not a literal or a supported `fieldRef`.
    #[error(
        "env {variable}: the test kubelet does not understand the source '{source_kind}' \
         (teach sidecar_support::kubelet)"
    )]
    EnvSource {
        /// The variable.
        variable: String,
        /// The `valueFrom` field set (`secretKeyRef`, `resourceFieldRef`, ...).
        source_kind: String,
    },
    /// A `fieldRef` the downward API helper does not resolve.
    #[error("env {variable}: fieldRef '{path}' is not supported by the test kubelet")]
    FieldPath {
        /// The variable.
        variable: String,
        /// The field path.
        path: String,
    },
    /// A value with a `$(VAR)` reference, which the kubelet would expand.
    #[error(
        "env {variable}: '{value}' has a $(VAR) reference, which the test kubelet does not expand"
    )]
    Reference {
        /// The variable.
        variable: String,
        /// Its value.
        value: String,
    },
    /// The container takes variables from `envFrom`.
    #[error("container '{0}' uses envFrom, which the test kubelet does not understand")]
    EnvFrom(String),
    /// An absolute path that no mount of the container holds: it would be in the image.
    #[error(
        "env {variable}={value} points outside every mount of the container (into the image's \
         file system, which the test machine does not have)"
    )]
    OutsideMounts {
        /// The variable.
        variable: String,
        /// Its value.
        value: String,
    },
    /// A volume kind the test kubelet does not provide.
    #[error("volume '{volume}': kind '{kind}' is not supported by the test kubelet")]
    VolumeKind {
        /// The volume.
        volume: String,
        /// The field set on it (`configMap`, `hostPath`, ...).
        kind: String,
    },
    /// A mount of a volume the pod does not have.
    #[error("mount '{path}': the pod has no volume '{volume}'")]
    UnknownVolume {
        /// The mount path.
        path: String,
        /// The volume named.
        volume: String,
    },
    /// A mount the test kubelet cannot map (`subPathExpr`, a `subPath` leaving the volume).
    #[error("mount '{path}': {problem}")]
    Mount {
        /// The mount path.
        path: String,
        /// What is wrong.
        problem: String,
    },
    /// A Secret volume whose Secret does not exist and is not optional.
    #[error(
        "volume '{volume}': Secret '{secret}' not found and the volume is not optional \
         (the kubelet would keep the pod in ContainerCreating)"
    )]
    MissingSecret {
        /// The volume.
        volume: String,
        /// The Secret.
        secret: String,
    },
    /// A Secret volume item naming a key the Secret lacks, not optional.
    #[error(
        "volume '{volume}': Secret '{secret}' has no key '{key}' and the volume is not optional"
    )]
    MissingKey {
        /// The volume.
        volume: String,
        /// The Secret.
        secret: String,
        /// The key.
        key: String,
    },
    /// A Secret volume item path that is not relative and inside the volume.
    #[error("volume '{volume}': item path '{path}' is not a relative path inside the volume")]
    ItemPath {
        /// The volume.
        volume: String,
        /// The item's path.
        path: String,
    },
    /// The agent's `DATA_PATH` is missing, or no regular container mounts what it points to:
    /// the agent would write files the gateway never sees.
    #[error("the agent's DATA_PATH ({data_path:?}) is not a mount a regular container shares")]
    DataNotShared {
        /// The variable's value in the pod, if set.
        data_path: Option<String>,
    },
    /// The API server did not answer.
    #[error("reading Secret '{secret}': {source}")]
    Api {
        /// The Secret.
        secret: String,
        /// The client's error.
        #[source]
        source: kube::Error,
    },
    /// The test machine's file system.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

type Result<T, E = KubeletError> = std::result::Result<T, E>;

/// A container's mount, and where it is on the test machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// The volume.
    pub volume: String,
    /// The `mountPath` in the container.
    pub path: String,
    /// The directory standing for it.
    pub host: PathBuf,
}

/// One container as the test kubelet runs it.
#[derive(Debug, Clone)]
pub struct RunningContainer {
    /// Its environment, resolved, paths mapped to the test machine.
    pub env: Vec<(String, String)>,
    /// Its environment as the pod spec has it, `fieldRef`s resolved, paths not mapped (what
    /// the process would see in the pod).
    pub pod_env: Vec<(String, String)>,
    /// Its mounts.
    pub mounts: Vec<Mount>,
}

impl RunningContainer {
    /// Where `container_path` (in the container) is on the test machine.
    pub fn host_path(&self, container_path: &str) -> Option<PathBuf> {
        host_path(container_path, &self.mounts)
    }

    /// `value` of `variable` as the process here needs it: an absolute path rewritten to where
    /// its mount is on the test machine (for variables the container gets from elsewhere than
    /// its spec, such as the image's `ENV`).
    pub fn map_env(&self, variable: &str, value: &str) -> Result<String> {
        map_value(variable, value, &self.mounts)
    }
}

/// The kinds of volume the test kubelet provides.
enum VolumeKind<'a> {
    /// A directory, empty at first: an `emptyDir`, or a claim's volume.
    Directory,
    /// The keys of a Secret.
    Secret(&'a SecretVolumeSource),
}

/// The directories of a pod's volumes, under `root`.
#[derive(Debug, Clone)]
pub struct PodVolumes {
    dirs: BTreeMap<String, PathBuf>,
}

impl PodVolumes {
    /// Creates a directory for each volume of `pod` under `root/volumes` and fills its Secret
    /// volumes from the API server.
    pub async fn create(pod: &Pod, root: &Path, secrets: &Api<Secret>) -> Result<PodVolumes> {
        let volumes = PodVolumes::directories(pod, root)?;
        volumes.project_secrets(pod, secrets).await?;
        Ok(volumes)
    }

    /// Creates an empty directory for each volume of `pod` under `root/volumes` (Secret volumes
    /// stay empty until [`PodVolumes::project_secrets`]).
    pub fn directories(pod: &Pod, root: &Path) -> Result<PodVolumes> {
        let mut dirs = BTreeMap::new();
        for volume in pod_volumes(pod) {
            volume_kind(volume)?;
            let dir = root.join("volumes").join(&volume.name);
            create_dir(&dir)?;
            dirs.insert(volume.name.clone(), dir);
        }
        Ok(PodVolumes { dirs })
    }

    /// Writes each Secret volume again from the Secret as it is now (the kubelet's periodic
    /// refresh of mounted Secrets).
    pub async fn project_secrets(&self, pod: &Pod, secrets: &Api<Secret>) -> Result<()> {
        for volume in pod_volumes(pod) {
            let VolumeKind::Secret(source) = volume_kind(volume)? else {
                continue;
            };
            let name = source.secret_name.clone().unwrap_or_default();
            let secret = secrets
                .get_opt(&name)
                .await
                .map_err(|source| KubeletError::Api {
                    secret: name.clone(),
                    source,
                })?;
            let files = secret_files(&volume.name, source, secret.as_ref())?;
            write_files(&self.dirs[&volume.name], &files)?;
        }
        Ok(())
    }

    /// The mounts of `container`, mapped to these directories.
    pub fn mounts(&self, container: &Container) -> Result<Vec<Mount>> {
        container
            .volume_mounts
            .iter()
            .flatten()
            .map(|mount| self.mount(mount))
            .collect()
    }

    /// Where `mount` is on the test machine: its volume's directory, or its `subPath` in it.
    fn mount(&self, mount: &VolumeMount) -> Result<Mount> {
        let problem = |problem: &str| KubeletError::Mount {
            path: mount.mount_path.clone(),
            problem: problem.to_owned(),
        };
        if mount
            .sub_path_expr
            .as_deref()
            .is_some_and(|e| !e.is_empty())
        {
            return Err(problem("subPathExpr is not supported by the test kubelet"));
        }
        let dir = self
            .dirs
            .get(&mount.name)
            .ok_or_else(|| KubeletError::UnknownVolume {
                path: mount.mount_path.clone(),
                volume: mount.name.clone(),
            })?;
        let host = match mount.sub_path.as_deref().filter(|s| !s.is_empty()) {
            None => dir.clone(),
            Some(sub_path) if is_inside(sub_path) => {
                let host = dir.join(sub_path);
                create_dir(&host)?;
                host
            }
            Some(_) => return Err(problem("subPath leaves the volume")),
        };
        Ok(Mount {
            volume: mount.name.clone(),
            path: mount.mount_path.clone(),
            host,
        })
    }

    /// `container` of `pod` (a regular or an init container) as the kubelet would start it.
    pub fn run(&self, pod: &Pod, container: &str) -> Result<RunningContainer> {
        let container = find_container(pod, container)?;
        let mounts = self.mounts(container)?;
        let resolved = container_env(pod, container)?;
        let env = resolved
            .iter()
            .map(|(name, value)| {
                let value = match value {
                    EnvValue::Literal(value) => map_value(name, value, &mounts)?,
                    EnvValue::Field(value) => value.clone(),
                };
                Ok((name.clone(), value))
            })
            .collect::<Result<_>>()?;
        let pod_env = resolved
            .into_iter()
            .map(|(name, value)| match value {
                EnvValue::Literal(value) | EnvValue::Field(value) => (name, value),
            })
            .collect();
        Ok(RunningContainer {
            env,
            pod_env,
            mounts,
        })
    }
}

fn pod_volumes(pod: &Pod) -> impl Iterator<Item = &Volume> {
    pod.spec
        .iter()
        .flat_map(|spec| spec.volumes.iter().flatten())
}

/// The name of the field set on `object` other than `name` (the kind of a volume, the source of
/// an env var), for messages.
fn set_field(object: &impl serde::Serialize) -> String {
    serde_json::to_value(object)
        .ok()
        .and_then(|value| {
            value
                .as_object()?
                .keys()
                .find(|key| *key != "name")
                .cloned()
        })
        .unwrap_or_else(|| "(none)".to_owned())
}

fn volume_kind(volume: &Volume) -> Result<VolumeKind<'_>> {
    if let Some(source) = &volume.secret {
        Ok(VolumeKind::Secret(source))
    } else if volume.empty_dir.is_some() || volume.persistent_volume_claim.is_some() {
        Ok(VolumeKind::Directory)
    } else {
        Err(KubeletError::VolumeKind {
            volume: volume.name.clone(),
            kind: set_field(volume),
        })
    }
}

fn find_container<'a>(pod: &'a Pod, name: &str) -> Result<&'a Container> {
    pod.spec
        .iter()
        .flat_map(|spec| {
            spec.init_containers
                .iter()
                .flatten()
                .chain(&spec.containers)
        })
        .find(|container| container.name == name)
        .ok_or_else(|| KubeletError::NoContainer(name.to_owned()))
}

/// A file of a Secret volume: its path in the volume, content and mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretFile {
    /// Relative to the volume.
    pub path: String,
    /// The key's value.
    pub content: Vec<u8>,
    /// The file's mode.
    pub mode: u32,
}

/// The files the kubelet puts in the Secret volume `volume` from `secret` (`None`: it does not
/// exist): each key (or each of `items`) a file.
pub fn secret_files(
    volume: &str,
    source: &SecretVolumeSource,
    secret: Option<&Secret>,
) -> Result<Vec<SecretFile>> {
    let optional = source.optional == Some(true);
    let secret_name = source.secret_name.clone().unwrap_or_default();
    // The kubelet's default mode for Secret volumes (0644).
    let default_mode = source.default_mode.map_or(0o644, mode_bits);
    let Some(secret) = secret else {
        return if optional {
            Ok(Vec::new())
        } else {
            Err(KubeletError::MissingSecret {
                volume: volume.to_owned(),
                secret: secret_name,
            })
        };
    };
    let empty = BTreeMap::new();
    let data = secret.data.as_ref().unwrap_or(&empty);
    let Some(items) = &source.items else {
        return Ok(data
            .iter()
            .map(|(key, value)| SecretFile {
                path: key.clone(),
                content: value.0.clone(),
                mode: default_mode,
            })
            .collect());
    };
    let mut files = Vec::new();
    for item in items {
        if !is_inside(&item.path) {
            return Err(KubeletError::ItemPath {
                volume: volume.to_owned(),
                path: item.path.clone(),
            });
        }
        match data.get(&item.key) {
            Some(value) => files.push(SecretFile {
                path: item.path.clone(),
                content: value.0.clone(),
                mode: item.mode.map_or(default_mode, mode_bits),
            }),
            None if optional => {}
            None => {
                return Err(KubeletError::MissingKey {
                    volume: volume.to_owned(),
                    secret: secret_name,
                    key: item.key.clone(),
                });
            }
        }
    }
    Ok(files)
}

fn mode_bits(mode: i32) -> u32 {
    u32::try_from(mode).unwrap_or(0o644) & 0o777
}

/// Replaces the content of `dir` with `files`.
fn write_files(dir: &Path, files: &[SecretFile]) -> Result<()> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| KubeletError::Io { path, source }
    };
    std::fs::remove_dir_all(dir).map_err(io(dir))?;
    create_dir(dir)?;
    for file in files {
        let path = dir.join(&file.path);
        if let Some(parent) = path.parent() {
            create_dir(parent)?;
        }
        std::fs::write(&path, &file.content).map_err(io(&path))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(file.mode))
            .map_err(io(&path))?;
    }
    Ok(())
}

fn create_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|source| KubeletError::Io {
        path: dir.to_owned(),
        source,
    })
}

/// A relative path without `..`: it stays inside the directory it is joined to.
fn is_inside(path: &str) -> bool {
    !path.is_empty()
        && Path::new(path)
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
}

/// A variable's value, and where it came from.
enum EnvValue {
    /// `value` in the spec: a path in it is a path in the container.
    Literal(String),
    /// The downward API's: data about the pod, not a path.
    Field(String),
}

/// `container`'s environment as the kubelet sets it: literals, and `fieldRef`s resolved
/// against `pod`.
fn container_env(pod: &Pod, container: &Container) -> Result<Vec<(String, EnvValue)>> {
    if container.env_from.as_ref().is_some_and(|e| !e.is_empty()) {
        return Err(KubeletError::EnvFrom(container.name.clone()));
    }
    container
        .env
        .iter()
        .flatten()
        .map(|var| Ok((var.name.clone(), env_value(pod, var)?)))
        .collect()
}

fn env_value(pod: &Pod, var: &EnvVar) -> Result<EnvValue> {
    let Some(source) = &var.value_from else {
        let value = var.value.clone().unwrap_or_default();
        return if value.contains("$(") {
            Err(KubeletError::Reference {
                variable: var.name.clone(),
                value,
            })
        } else {
            Ok(EnvValue::Literal(value))
        };
    };
    let field_ref = source.field_ref.as_ref().filter(|_| {
        source.config_map_key_ref.is_none()
            && source.secret_key_ref.is_none()
            && source.resource_field_ref.is_none()
            && source.file_key_ref.is_none()
    });
    let Some(field_ref) = field_ref else {
        return Err(KubeletError::EnvSource {
            variable: var.name.clone(),
            source_kind: set_field(source),
        });
    };
    field_value(pod, &field_ref.field_path)
        .map(EnvValue::Field)
        .ok_or_else(|| KubeletError::FieldPath {
            variable: var.name.clone(),
            path: field_ref.field_path.clone(),
        })
}

/// The downward API's value of `path` for `pod` (`None`: not supported here). A missing label
/// or annotation is the empty string, as in Kubernetes.
pub fn field_value(pod: &Pod, path: &str) -> Option<String> {
    let metadata = &pod.metadata;
    let spec = pod.spec.as_ref();
    let string = |value: Option<&String>| value.cloned().unwrap_or_default();
    let keyed = |prefix: &str| {
        path.strip_prefix(prefix)?
            .strip_suffix("']")
            .map(str::to_owned)
    };
    match path {
        "metadata.name" => Some(string(metadata.name.as_ref())),
        "metadata.namespace" => Some(string(metadata.namespace.as_ref())),
        "metadata.uid" => Some(string(metadata.uid.as_ref())),
        "spec.nodeName" => Some(string(spec.and_then(|s| s.node_name.as_ref()))),
        "spec.serviceAccountName" => {
            Some(string(spec.and_then(|s| s.service_account_name.as_ref())))
        }
        _ => {
            if let Some(key) = keyed("metadata.labels['") {
                Some(string(metadata.labels.as_ref().and_then(|l| l.get(&key))))
            } else {
                let key = keyed("metadata.annotations['")?;
                Some(string(
                    metadata.annotations.as_ref().and_then(|a| a.get(&key)),
                ))
            }
        }
    }
}

/// Where `path` (in a container with `mounts`) is on the test machine: below the deepest mount
/// holding it.
pub fn host_path(path: &str, mounts: &[Mount]) -> Option<PathBuf> {
    let path = Path::new(path);
    mounts
        .iter()
        .filter_map(|mount| {
            let rest = path.strip_prefix(&mount.path).ok()?;
            Some((Path::new(&mount.path).components().count(), mount, rest))
        })
        .max_by_key(|(depth, _, _)| *depth)
        .map(|(_, mount, rest)| {
            if rest.as_os_str().is_empty() {
                mount.host.clone()
            } else {
                mount.host.join(rest)
            }
        })
}

/// `value` of `variable`, an absolute path rewritten to the test machine.
fn map_value(variable: &str, value: &str, mounts: &[Mount]) -> Result<String> {
    if !value.starts_with('/') {
        return Ok(value.to_owned());
    }
    host_path(value, mounts)
        .map(|host| host.display().to_string())
        .ok_or_else(|| KubeletError::OutsideMounts {
            variable: variable.to_owned(),
            value: value.to_owned(),
        })
}

/// A pod the test kubelet runs: its volumes, its agent container, its data volume.
#[derive(Debug, Clone)]
pub struct KubeletPod {
    /// The pod as the API server stored it.
    pub pod: Pod,
    /// Where everything of this pod lives on the test machine.
    pub root: PathBuf,
    /// Its volumes' directories.
    pub volumes: PodVolumes,
    /// The `stoker-agent` init container.
    pub agent: RunningContainer,
    /// The directory the agent writes the gateway's files to (its `DATA_PATH`), which a regular
    /// container of the pod mounts too.
    pub data: PathBuf,
}

impl KubeletPod {
    /// Makes `pod`'s volumes under `root` (Secrets read through `secrets`) and resolves its
    /// agent container. The agent's `DATA_PATH` must be a directory the gateway sees too.
    pub async fn start(pod: &Pod, root: &Path, secrets: &Api<Secret>) -> Result<KubeletPod> {
        let volumes = PodVolumes::create(pod, root, secrets).await?;
        let agent = volumes.run(pod, AGENT_CONTAINER_NAME)?;
        let data = shared_data_dir(pod, &volumes, &agent)?;
        Ok(KubeletPod {
            pod: pod.clone(),
            root: root.to_owned(),
            volumes,
            agent,
            data,
        })
    }
}

/// The directory of the agent's `DATA_PATH`, if a regular container mounts it as well.
fn shared_data_dir(pod: &Pod, volumes: &PodVolumes, agent: &RunningContainer) -> Result<PathBuf> {
    let data_path = agent
        .pod_env
        .iter()
        .find(|(name, _)| name == "DATA_PATH")
        .map(|(_, value)| value.clone())
        .ok_or(KubeletError::DataNotShared { data_path: None })?;
    let host = agent
        .host_path(&data_path)
        .ok_or_else(|| KubeletError::DataNotShared {
            data_path: Some(data_path.clone()),
        })?;
    for container in pod.spec.iter().flat_map(|spec| &spec.containers) {
        if volumes.mounts(container)?.iter().any(|m| m.host == host) {
            return Ok(host);
        }
    }
    Err(KubeletError::DataNotShared {
        data_path: Some(data_path),
    })
}
