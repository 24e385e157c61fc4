//! The `stoker-agent` container and its volumes, as the injector adds them.

use k8s_openapi::api::core::v1::{
    Capabilities, Container, ContainerPort, EmptyDirVolumeSource, EnvVar, EnvVarSource,
    HTTPGetAction, KeyToPath, ObjectFieldSelector, Pod, Probe, ResourceRequirements,
    SeccompProfile, SecretVolumeSource, SecurityContext, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{DataMount, InjectorConfig, annotation_value, name_of};
use crate::annotations::{AGENT_CONTAINER_NAME, AGENT_IMAGE, GATEWAY_NAME, PROFILE};
use crate::crd::{AgentSpec, GatewaySync, SecretKeyRef};
use crate::metadata::{AuthType, agent_auth};

/// The port of the agent's `/startupz`, `/healthz` and `/readyz` (the default of
/// `stoker-agent sidecar`'s `PROBE_ADDRESS`).
pub const PROBE_PORT: i32 = 8082;
/// The port of the agent's `/metrics` (the default of `stoker-agent sidecar`'s
/// `METRICS_ADDRESS`), exposed as the container port `metrics` as stoker-operator v0.5.1 did.
pub const METRICS_PORT: i32 = 8083;
/// The Git cache (`REPO_PATH`).
pub const REPO_PATH: &str = "/repo";
/// Scratch space (`ssh` and `git` write there; the root file system is read-only).
pub const TMP_PATH: &str = "/tmp";
/// The Ignition API key Secret's mount.
pub const API_KEY_DIR: &str = "/etc/stoker/api-key";
/// The Git token or SSH key Secret's mount.
pub const GIT_CREDENTIALS_DIR: &str = "/etc/stoker/git-credentials";
/// The `known_hosts` Secret's mount.
pub const KNOWN_HOSTS_DIR: &str = "/etc/stoker/known-hosts";
/// The GitHub App installation token Secret's mount.
pub const GITHUB_TOKEN_DIR: &str = "/etc/stoker/git-token";

/// Every path the agent mounts something at besides the data volume.
pub(super) const MOUNT_PATHS: [&str; 6] = [
    REPO_PATH,
    TMP_PATH,
    API_KEY_DIR,
    GIT_CREDENTIALS_DIR,
    KNOWN_HOSTS_DIR,
    GITHUB_TOKEN_DIR,
];

/// The names of the volumes the injector adds (prefixed `stoker-` so as not to collide with
/// the pod's own).
pub mod volumes {
    /// The Git cache (`emptyDir`).
    pub const REPO: &str = "stoker-repo";
    /// `/tmp` (`emptyDir`).
    pub const TMP: &str = "stoker-tmp";
    /// The Ignition API key (Secret `spec.gateway.api.secretName`).
    pub const API_KEY: &str = "stoker-api-key";
    /// The Git token or SSH key (Secret of `spec.git.auth`).
    pub const GIT_CREDENTIALS: &str = "stoker-git-credentials";
    /// SSH `known_hosts` (Secret of `spec.git.auth.sshKey.knownHosts`).
    pub const KNOWN_HOSTS: &str = "stoker-known-hosts";
    /// The GitHub App installation token (Secret `stoker-github-token-<cr>`).
    pub const GITHUB_TOKEN: &str = "stoker-github-token";
    /// All of them.
    pub const ALL: [&str; 6] = [
        REPO,
        TMP,
        API_KEY,
        GIT_CREDENTIALS,
        KNOWN_HOSTS,
        GITHUB_TOKEN,
    ];
}

/// Period of the startup probe, in seconds.
const STARTUP_PERIOD: i32 = 2;
/// Failures of the startup probe before the kubelet restarts the agent: 10 minutes for the
/// first sync (v0.5.1 allowed 5).
const STARTUP_FAILURES: i32 = 300;
/// `SYNC_PERIOD`: the agent's resync fallback, in seconds.
const SYNC_PERIOD_SECONDS: &str = "30";
/// Mode of the files of Secret volumes: readable whatever the agent's user.
const SECRET_MODE: i32 = 0o444;

/// A Secret mounted in the agent: one key, as a file `<dir>/<key>`.
struct SecretMount {
    volume: &'static str,
    dir: &'static str,
    secret: SecretKeyRef,
    /// Env var naming the file.
    variable: &'static str,
    optional: bool,
}

impl SecretMount {
    fn file(&self) -> String {
        format!("{}/{}", self.dir, self.secret.key)
    }
}

/// Everything the sidecar is made of, decided from the pod and the `GatewaySync`.
pub(super) struct Sidecar {
    /// The `GatewaySync`'s name (`CR_NAME`).
    pub(super) cr_name: String,
    image: String,
    pull_policy: &'static str,
    gateway_name: Option<String>,
    profile: Option<String>,
    gateway_port: u16,
    gateway_tls: bool,
    data: DataMount,
    secrets: Vec<SecretMount>,
    resources: ResourceRequirements,
    cache_size_limit: Option<k8s_openapi::apimachinery::pkg::api::resource::Quantity>,
}

impl Sidecar {
    pub(super) fn new(
        pod: &Pod,
        gs: &GatewaySync,
        data: DataMount,
        config: &InjectorConfig,
    ) -> Self {
        let cr_name = name_of(gs).to_owned();
        let agent = &gs.spec.agent;
        Sidecar {
            image: image(
                annotation_value(pod, AGENT_IMAGE),
                agent,
                &config.default_image,
            ),
            pull_policy: agent
                .image
                .as_ref()
                .and_then(|image| image.pull_policy)
                .unwrap_or(config.default_pull_policy)
                .as_str(),
            gateway_name: annotation_value(pod, GATEWAY_NAME).map(str::to_owned),
            profile: annotation_value(pod, PROFILE).map(str::to_owned),
            gateway_port: gs.spec.gateway.port,
            gateway_tls: gs.spec.gateway.tls,
            data,
            secrets: secret_mounts(&cr_name, gs),
            resources: agent
                .resources
                .clone()
                .unwrap_or_else(|| config.default_resources.clone()),
            cache_size_limit: config.cache_size_limit.clone(),
            cr_name,
        }
    }

    /// The `stoker-agent` init container.
    pub(super) fn container(&self) -> Container {
        Container {
            name: AGENT_CONTAINER_NAME.to_owned(),
            image: Some(self.image.clone()),
            image_pull_policy: Some(self.pull_policy.to_owned()),
            args: Some(vec!["sidecar".to_owned()]),
            restart_policy: Some("Always".to_owned()),
            env: Some(self.env()),
            ports: Some(vec![ContainerPort {
                name: Some("metrics".to_owned()),
                container_port: METRICS_PORT,
                protocol: Some("TCP".to_owned()),
                ..Default::default()
            }]),
            startup_probe: Some(probe("/startupz", STARTUP_PERIOD, STARTUP_FAILURES)),
            liveness_probe: Some(probe("/healthz", 10, 3)),
            readiness_probe: Some(probe("/readyz", 5, 3)),
            resources: Some(self.resources.clone()),
            security_context: Some(restricted()),
            volume_mounts: Some(self.volume_mounts()),
            ..Default::default()
        }
    }

    fn env(&self) -> Vec<EnvVar> {
        let mut env = vec![
            field("POD_NAME", "metadata.name"),
            field("POD_NAMESPACE", "metadata.namespace"),
            value("CR_NAME", &self.cr_name),
            field("CR_NAMESPACE", "metadata.namespace"),
        ];
        env.extend(
            self.gateway_name
                .as_deref()
                .map(|v| value("GATEWAY_NAME", v)),
        );
        env.extend(self.profile.as_deref().map(|v| value("PROFILE", v)));
        env.extend([
            value("REPO_PATH", REPO_PATH),
            value("DATA_PATH", &self.data.path),
            value("GATEWAY_PORT", &self.gateway_port.to_string()),
            value(
                "GATEWAY_TLS",
                if self.gateway_tls { "true" } else { "false" },
            ),
        ]);
        env.extend(
            self.secrets
                .iter()
                .map(|secret| value(secret.variable, &secret.file())),
        );
        env.push(value("SYNC_PERIOD", SYNC_PERIOD_SECONDS));
        env
    }

    fn volume_mounts(&self) -> Vec<VolumeMount> {
        let mut mounts = vec![
            VolumeMount {
                name: self.data.volume.clone(),
                mount_path: self.data.path.clone(),
                sub_path: self.data.sub_path.clone(),
                sub_path_expr: self.data.sub_path_expr.clone(),
                ..Default::default()
            },
            mount(volumes::REPO, REPO_PATH, false),
            mount(volumes::TMP, TMP_PATH, false),
        ];
        mounts.extend(
            self.secrets
                .iter()
                .map(|secret| mount(secret.volume, secret.dir, true)),
        );
        mounts
    }

    /// The volumes to append to the pod.
    pub(super) fn volumes(&self) -> Vec<Volume> {
        let empty_dir = |name: &str, size_limit| Volume {
            name: name.to_owned(),
            empty_dir: Some(EmptyDirVolumeSource {
                size_limit,
                medium: None,
            }),
            ..Default::default()
        };
        let mut volumes = vec![
            empty_dir(volumes::REPO, self.cache_size_limit.clone()),
            empty_dir(volumes::TMP, None),
        ];
        volumes.extend(self.secrets.iter().map(secret_volume));
        volumes
    }
}

/// The image: the pod's annotation, else `spec.agent.image` completed from the default, else
/// the default.
fn image(annotation: Option<&str>, agent: &AgentSpec, default: &str) -> String {
    if let Some(image) = annotation {
        return image.to_owned();
    }
    let Some(spec) = agent.image.as_ref() else {
        return default.to_owned();
    };
    let non_blank = |value: &Option<String>| {
        value
            .as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let (default_repository, default_tag) = split_image(default);
    match (non_blank(&spec.repository), non_blank(&spec.tag)) {
        (None, None) => default.to_owned(),
        (repository, tag) => format!(
            "{}:{}",
            repository.as_deref().unwrap_or(default_repository),
            tag.as_deref().or(default_tag).unwrap_or("latest")
        ),
    }
}

/// An image reference's repository and tag (a digest is dropped).
fn split_image(image: &str) -> (&str, Option<&str>) {
    let name = image.split('@').next().unwrap_or(image);
    match name.rsplit_once(':') {
        Some((repository, tag)) if !tag.contains('/') => (repository, Some(tag)),
        _ => (name, None),
    }
}

/// The Secrets the agent mounts: the API key (optional: it is created once the gateway runs)
/// and the Git credentials of `spec.git.auth`.
fn secret_mounts(cr_name: &str, gs: &GatewaySync) -> Vec<SecretMount> {
    let mut mounts = Vec::new();
    if let Some(api) = &gs.spec.gateway.api {
        mounts.push(SecretMount {
            volume: volumes::API_KEY,
            dir: API_KEY_DIR,
            secret: SecretKeyRef {
                name: api.secret_name.clone(),
                key: api.secret_key.clone(),
            },
            variable: "API_KEY_FILE",
            optional: true,
        });
    }
    let auth = agent_auth(cr_name, &gs.spec);
    let credential = match auth.auth_type {
        AuthType::None => None,
        AuthType::Token => Some((
            volumes::GIT_CREDENTIALS,
            GIT_CREDENTIALS_DIR,
            "GIT_TOKEN_FILE",
        )),
        AuthType::Ssh => Some((
            volumes::GIT_CREDENTIALS,
            GIT_CREDENTIALS_DIR,
            "GIT_SSH_KEY_FILE",
        )),
        AuthType::GithubApp => Some((volumes::GITHUB_TOKEN, GITHUB_TOKEN_DIR, "GIT_TOKEN_FILE")),
    };
    if let (Some((volume, dir, variable)), Some(secret)) = (credential, auth.secret) {
        mounts.push(required(volume, dir, secret, variable));
    }
    if let Some(secret) = auth.known_hosts {
        mounts.push(required(
            volumes::KNOWN_HOSTS,
            KNOWN_HOSTS_DIR,
            secret,
            "GIT_KNOWN_HOSTS_FILE",
        ));
    }
    mounts
}

fn required(
    volume: &'static str,
    dir: &'static str,
    secret: SecretKeyRef,
    variable: &'static str,
) -> SecretMount {
    SecretMount {
        volume,
        dir,
        secret,
        variable,
        optional: false,
    }
}

fn secret_volume(mount: &SecretMount) -> Volume {
    Volume {
        name: mount.volume.to_owned(),
        secret: Some(SecretVolumeSource {
            secret_name: Some(mount.secret.name.clone()),
            items: Some(vec![KeyToPath {
                key: mount.secret.key.clone(),
                path: mount.secret.key.clone(),
                mode: None,
            }]),
            default_mode: Some(SECRET_MODE),
            optional: mount.optional.then_some(true),
        }),
        ..Default::default()
    }
}

fn mount(name: &str, path: &str, read_only: bool) -> VolumeMount {
    VolumeMount {
        name: name.to_owned(),
        mount_path: path.to_owned(),
        read_only: read_only.then_some(true),
        ..Default::default()
    }
}

fn value(name: &str, value: &str) -> EnvVar {
    EnvVar {
        name: name.to_owned(),
        value: Some(value.to_owned()),
        value_from: None,
    }
}

/// An environment variable from the downward API.
fn field(name: &str, path: &str) -> EnvVar {
    EnvVar {
        name: name.to_owned(),
        value: None,
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: path.to_owned(),
                api_version: None,
            }),
            ..Default::default()
        }),
    }
}

fn probe(path: &str, period_seconds: i32, failure_threshold: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.to_owned()),
            port: IntOrString::Int(PROBE_PORT),
            ..Default::default()
        }),
        period_seconds: Some(period_seconds),
        failure_threshold: Some(failure_threshold),
        ..Default::default()
    }
}

/// The Pod Security Standards' `restricted` profile, without a user: the agent runs as the
/// pod's `runAsUser` (the gateway's, so that the gateway owns the files it writes).
fn restricted() -> SecurityContext {
    SecurityContext {
        run_as_non_root: Some(true),
        read_only_root_filesystem: Some(true),
        allow_privilege_escalation: Some(false),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".to_owned()]),
            add: None,
        }),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".to_owned(),
            localhost_profile: None,
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_are_completed_from_the_default() {
        let spec = |repository: Option<&str>, tag: Option<&str>| AgentSpec {
            image: Some(crate::crd::AgentImageSpec {
                repository: repository.map(str::to_owned),
                tag: tag.map(str::to_owned),
                pull_policy: None,
            }),
            resources: None,
        };
        let default = "registry:5000/stoker-agent:0.1.0";
        assert_eq!(image(Some("x:1"), &spec(Some("r"), None), default), "x:1");
        assert_eq!(image(None, &AgentSpec::default(), default), default);
        assert_eq!(image(None, &spec(None, None), default), default);
        assert_eq!(image(None, &spec(Some("r"), None), default), "r:0.1.0");
        assert_eq!(
            image(None, &spec(None, Some("2")), default),
            "registry:5000/stoker-agent:2"
        );
        assert_eq!(
            image(None, &spec(Some("r"), None), "registry:5000/agent"),
            "r:latest"
        );
        assert_eq!(
            split_image("r/a:1@sha256:abc"),
            ("r/a", Some("1")),
            "a digest is dropped"
        );
    }
}
