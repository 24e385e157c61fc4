//! The controller → agent half of the ConfigMap protocol: `stoker-metadata-{cr}`.
//!
//! The operator writes one ConfigMap per `GatewaySync`, owned by it (deleted with it), holding
//! everything an agent needs to sync and nothing secret: the repository, the resolved ref and
//! commit, which auth method and which Secret names/keys to mount, the profiles, how to reach
//! the gateway, and whether syncing is paused. Agents watch it; a new `commit` is their signal
//! to sync.
//!
//! Keys (all values are strings; see [`keys`]):
//!
//! | key | value |
//! |---|---|
//! | `crName` | the resource's name (absent in v0.5.1's ConfigMaps: then taken from the ConfigMap's name) |
//! | `gitURL`, `ref`, `commit` | repository, resolved ref, resolved full commit SHA |
//! | `authType` | `none`, `token`, `ssh` or `githubApp` |
//! | `authSecretName`, `authSecretKey` | the Secret key to mount: token, SSH key, or the operator-managed GitHub App token Secret |
//! | `knownHostsSecretName`, `knownHostsSecretKey` | SSH `known_hosts` (absent: host key not verified) |
//! | `githubAppId`, `githubInstallationId`, `githubApiBaseURL` | GitHub App details (informational) |
//! | `profiles` | JSON object: profile name → profile as written in `spec.sync.profiles` |
//! | `syncDefaults` | JSON object: `spec.sync.defaults` |
//! | `gatewayPort`, `gatewayTLS` | the gateway API port and scheme |
//! | `gatewayAPISecretName`, `gatewayAPISecretKey` | the Ignition API key's Secret (absent: none) |
//! | `paused` | `true` / `false` (`spec.paused`) |
//! | `pollingEnabled`, `pollingInterval` | `spec.polling` |
//! | `generation` | the resource's `metadata.generation` this was written from |
//!
//! The agent resolves its profile with [`stoker_core::SyncSpec::resolve`] on
//! [`AgentMetadata::sync`], the same code the command line uses.
//!
//! ```
//! use stoker_k8s::metadata::AgentMetadata;
//! let spec: stoker_k8s::GatewaySyncSpec = serde_json::from_value(serde_json::json!({
//!     "git": {"repo": "https://git.example/r.git", "ref": "main"},
//!     "sync": {"profiles": {"p": {"mappings": [{"source": "a", "destination": "b"}]}}}
//! })).unwrap();
//! let metadata = AgentMetadata::from_spec("site", &spec, "main", "0123456789abcdef0123456789abcdef01234567", Some(4));
//! let data = metadata.to_data().unwrap();
//! assert_eq!(data["commit"], "0123456789abcdef0123456789abcdef01234567");
//! assert_eq!(data["authType"], "none");
//! let back = AgentMetadata::from_data("stoker-metadata-site", &data).unwrap();
//! assert_eq!(back, metadata);
//! assert!(back.sync.resolve("p").is_ok());
//! ```

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::ResourceExt;
use kube::api::ObjectMeta;

use crate::annotations::{
    COMPONENT_LABEL, COMPONENT_METADATA, LABEL_CR_NAME, MANAGED_BY_LABEL, MANAGED_BY_OPERATOR,
    label_value, object_name,
};
use crate::crd::{GatewaySync, GatewaySyncSpec, PollingSpec, SecretKeyRef, SyncSpec};
use crate::error::{Error, Result};

/// The metadata ConfigMap's keys.
pub mod keys {
    /// The resource's name.
    pub const CR_NAME: &str = "crName";
    /// The repository URL.
    pub const GIT_URL: &str = "gitURL";
    /// The resolved ref.
    pub const REF: &str = "ref";
    /// The resolved commit (full SHA).
    pub const COMMIT: &str = "commit";
    /// `none`, `token`, `ssh` or `githubApp`.
    pub const AUTH_TYPE: &str = "authType";
    /// The Secret the agent mounts for Git auth.
    pub const AUTH_SECRET_NAME: &str = "authSecretName";
    /// The key in that Secret.
    pub const AUTH_SECRET_KEY: &str = "authSecretKey";
    /// The Secret holding SSH `known_hosts`.
    pub const KNOWN_HOSTS_SECRET_NAME: &str = "knownHostsSecretName";
    /// The key in that Secret.
    pub const KNOWN_HOSTS_SECRET_KEY: &str = "knownHostsSecretKey";
    /// GitHub App id.
    pub const GITHUB_APP_ID: &str = "githubAppId";
    /// GitHub App installation id.
    pub const GITHUB_INSTALLATION_ID: &str = "githubInstallationId";
    /// GitHub REST API base URL.
    pub const GITHUB_API_BASE_URL: &str = "githubApiBaseURL";
    /// JSON: profile name → profile.
    pub const PROFILES: &str = "profiles";
    /// JSON: `spec.sync.defaults`.
    pub const SYNC_DEFAULTS: &str = "syncDefaults";
    /// Gateway API port.
    pub const GATEWAY_PORT: &str = "gatewayPort";
    /// `true` for HTTPS to the gateway.
    pub const GATEWAY_TLS: &str = "gatewayTLS";
    /// The Ignition API key's Secret.
    pub const GATEWAY_API_SECRET_NAME: &str = "gatewayAPISecretName";
    /// The key in that Secret.
    pub const GATEWAY_API_SECRET_KEY: &str = "gatewayAPISecretKey";
    /// `spec.paused`.
    pub const PAUSED: &str = "paused";
    /// `spec.polling.enabled`.
    pub const POLLING_ENABLED: &str = "pollingEnabled";
    /// `spec.polling.interval`.
    pub const POLLING_INTERVAL: &str = "pollingInterval";
    /// The resource's `metadata.generation`.
    pub const GENERATION: &str = "generation";
}

/// The metadata ConfigMap's name for the resource `cr_name`: `stoker-metadata-{cr}`.
pub fn metadata_configmap_name(cr_name: &str) -> String {
    object_name("stoker-metadata", &[cr_name])
}

/// The operator-managed Secret holding a GitHub App installation token for `cr_name`
/// (`stoker-github-token-{cr}`, key [`GITHUB_TOKEN_KEY`]); agents mount it instead of the App's
/// private key, which never leaves the operator.
pub fn github_token_secret_name(cr_name: &str) -> String {
    object_name("stoker-github-token", &[cr_name])
}

/// The key of the GitHub App token Secret.
pub const GITHUB_TOKEN_KEY: &str = "token";

/// How the agent authenticates to Git.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum AuthType {
    /// Anonymous.
    #[default]
    None,
    /// HTTPS token.
    Token,
    /// SSH key.
    Ssh,
    /// GitHub App (the agent uses the installation token Secret).
    GithubApp,
}

impl AuthType {
    /// The protocol spelling: `none`, `token`, `ssh`, `githubApp`.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthType::None => "none",
            AuthType::Token => "token",
            AuthType::Ssh => "ssh",
            AuthType::GithubApp => "githubApp",
        }
    }

    fn parse(value: &str) -> Option<Self> {
        Some(match value {
            "none" => AuthType::None,
            "token" => AuthType::Token,
            "ssh" => AuthType::Ssh,
            "githubApp" => AuthType::GithubApp,
            _ => return None,
        })
    }
}

/// Git auth as the agent needs it: which Secret keys to mount.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgentAuth {
    /// The method.
    pub auth_type: AuthType,
    /// The Secret key holding the credential (token, SSH private key, or the GitHub App token
    /// Secret); `None` for anonymous access.
    pub secret: Option<SecretKeyRef>,
    /// SSH `known_hosts`; `None` means the host key is not verified.
    pub known_hosts: Option<SecretKeyRef>,
    /// GitHub App id (informational).
    pub github_app_id: Option<String>,
    /// GitHub App installation id (informational).
    pub github_installation_id: Option<u64>,
    /// GitHub REST API base URL (informational).
    pub github_api_base_url: Option<String>,
}

/// How the agent reaches its gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayConnection {
    /// The port.
    pub port: u16,
    /// HTTPS.
    pub tls: bool,
    /// The Ignition API key's Secret, if any.
    pub api_secret: Option<SecretKeyRef>,
}

/// The content of `stoker-metadata-{cr}`, typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentMetadata {
    /// The resource's name.
    pub cr_name: String,
    /// The repository URL.
    pub repo: String,
    /// The resolved ref.
    pub reference: String,
    /// The resolved commit (full SHA).
    pub commit: String,
    /// Git auth.
    pub auth: AgentAuth,
    /// `spec.sync`: defaults and profiles, as written.
    pub sync: SyncSpec,
    /// The gateway API.
    pub gateway: GatewayConnection,
    /// `spec.paused`.
    pub paused: bool,
    /// `spec.polling`.
    pub polling: PollingSpec,
    /// The resource's generation this was written from.
    pub generation: Option<i64>,
}

impl AgentMetadata {
    /// The metadata for a resource whose ref resolved to `reference` at `commit`.
    pub fn from_spec(
        cr_name: &str,
        spec: &GatewaySyncSpec,
        reference: &str,
        commit: &str,
        generation: Option<i64>,
    ) -> Self {
        AgentMetadata {
            cr_name: cr_name.to_owned(),
            repo: spec.git.repo.clone(),
            reference: reference.to_owned(),
            commit: commit.to_owned(),
            auth: agent_auth(cr_name, spec),
            sync: spec.sync.clone(),
            gateway: GatewayConnection {
                port: spec.gateway.port,
                tls: spec.gateway.tls,
                api_secret: spec.gateway.api.as_ref().map(|api| SecretKeyRef {
                    name: api.secret_name.clone(),
                    key: api.secret_key.clone(),
                }),
            },
            paused: spec.paused,
            polling: spec.polling.clone(),
            generation,
        }
    }

    /// The ConfigMap `data`.
    pub fn to_data(&self) -> Result<BTreeMap<String, String>> {
        let mut data = BTreeMap::new();
        let mut put = |key: &str, value: String| {
            data.insert(key.to_owned(), value);
        };
        put(keys::CR_NAME, self.cr_name.clone());
        put(keys::GIT_URL, self.repo.clone());
        put(keys::REF, self.reference.clone());
        put(keys::COMMIT, self.commit.clone());
        put(keys::AUTH_TYPE, self.auth.auth_type.as_str().to_owned());
        if let Some(secret) = &self.auth.secret {
            put(keys::AUTH_SECRET_NAME, secret.name.clone());
            put(keys::AUTH_SECRET_KEY, secret.key.clone());
        }
        if let Some(secret) = &self.auth.known_hosts {
            put(keys::KNOWN_HOSTS_SECRET_NAME, secret.name.clone());
            put(keys::KNOWN_HOSTS_SECRET_KEY, secret.key.clone());
        }
        if let Some(id) = &self.auth.github_app_id {
            put(keys::GITHUB_APP_ID, id.clone());
        }
        if let Some(id) = self.auth.github_installation_id {
            put(keys::GITHUB_INSTALLATION_ID, id.to_string());
        }
        if let Some(url) = &self.auth.github_api_base_url {
            put(keys::GITHUB_API_BASE_URL, url.clone());
        }
        put(
            keys::PROFILES,
            serde_json::to_string(&self.sync.profiles).map_err(|source| Error::Serialize {
                what: "spec.sync.profiles",
                source,
            })?,
        );
        put(
            keys::SYNC_DEFAULTS,
            serde_json::to_string(&self.sync.defaults).map_err(|source| Error::Serialize {
                what: "spec.sync.defaults",
                source,
            })?,
        );
        put(keys::GATEWAY_PORT, self.gateway.port.to_string());
        put(keys::GATEWAY_TLS, self.gateway.tls.to_string());
        if let Some(secret) = &self.gateway.api_secret {
            put(keys::GATEWAY_API_SECRET_NAME, secret.name.clone());
            put(keys::GATEWAY_API_SECRET_KEY, secret.key.clone());
        }
        put(keys::PAUSED, self.paused.to_string());
        put(keys::POLLING_ENABLED, self.polling.enabled.to_string());
        put(keys::POLLING_INTERVAL, self.polling.interval.clone());
        if let Some(generation) = self.generation {
            put(keys::GENERATION, generation.to_string());
        }
        Ok(data)
    }

    /// Reads the ConfigMap `data`; `configmap` names it in errors. Optional keys that are
    /// absent take their defaults (no auth, port 8088, not paused, polling every 60s).
    pub fn from_data(configmap: &str, data: &BTreeMap<String, String>) -> Result<Self> {
        let reader = Reader { configmap, data };
        let auth_type = match reader.optional(keys::AUTH_TYPE) {
            None => AuthType::None,
            Some(value) => AuthType::parse(value).ok_or_else(|| {
                reader.invalid(keys::AUTH_TYPE, "expected none, token, ssh or githubApp")
            })?,
        };
        let auth = AgentAuth {
            auth_type,
            secret: reader.secret(keys::AUTH_SECRET_NAME, keys::AUTH_SECRET_KEY),
            known_hosts: reader.secret(keys::KNOWN_HOSTS_SECRET_NAME, keys::KNOWN_HOSTS_SECRET_KEY),
            github_app_id: reader.optional(keys::GITHUB_APP_ID).map(str::to_owned),
            github_installation_id: reader.parsed(keys::GITHUB_INSTALLATION_ID)?,
            github_api_base_url: reader
                .optional(keys::GITHUB_API_BASE_URL)
                .map(str::to_owned),
        };
        let sync = SyncSpec {
            defaults: reader.json(keys::SYNC_DEFAULTS)?.unwrap_or_default(),
            profiles: reader.json(keys::PROFILES)?.unwrap_or_default(),
        };
        let defaults = PollingSpec::default();
        Ok(AgentMetadata {
            cr_name: cr_name(&reader)?,
            repo: reader.required(keys::GIT_URL)?.to_owned(),
            reference: reader.required(keys::REF)?.to_owned(),
            commit: reader.required(keys::COMMIT)?.to_owned(),
            auth,
            sync,
            gateway: GatewayConnection {
                port: reader
                    .parsed(keys::GATEWAY_PORT)?
                    .unwrap_or(crate::crd::DEFAULT_GATEWAY_PORT),
                tls: reader.parsed(keys::GATEWAY_TLS)?.unwrap_or(false),
                api_secret: reader
                    .secret(keys::GATEWAY_API_SECRET_NAME, keys::GATEWAY_API_SECRET_KEY),
            },
            paused: reader.parsed(keys::PAUSED)?.unwrap_or(false),
            polling: PollingSpec {
                enabled: reader
                    .parsed(keys::POLLING_ENABLED)?
                    .unwrap_or(defaults.enabled),
                interval: reader
                    .optional(keys::POLLING_INTERVAL)
                    .map_or(defaults.interval, str::to_owned),
            },
            generation: reader.parsed(keys::GENERATION)?,
        })
    }

    /// The ConfigMap, in the owner's namespace, controller-owned by it (garbage-collected with
    /// it) and labelled `stoker.io/cr-name`, `app.kubernetes.io/component: sync-metadata` and
    /// `app.kubernetes.io/managed-by: stoker-operator`.
    ///
    /// # Errors
    ///
    /// [`Error::MissingUid`] when `owner` was not read from the API server.
    pub fn to_configmap(&self, owner: &GatewaySync) -> Result<ConfigMap> {
        let owner_ref = owner.controller_ref()?;
        Ok(ConfigMap {
            metadata: ObjectMeta {
                name: Some(metadata_configmap_name(&self.cr_name)),
                namespace: owner.namespace(),
                labels: Some(BTreeMap::from([
                    (LABEL_CR_NAME.to_owned(), label_value(&self.cr_name)),
                    (COMPONENT_LABEL.to_owned(), COMPONENT_METADATA.to_owned()),
                    (MANAGED_BY_LABEL.to_owned(), MANAGED_BY_OPERATOR.to_owned()),
                ])),
                owner_references: Some(vec![owner_ref]),
                ..Default::default()
            },
            data: Some(self.to_data()?),
            ..Default::default()
        })
    }

    /// Reads a metadata ConfigMap.
    pub fn from_configmap(configmap: &ConfigMap) -> Result<Self> {
        let (name, data) = configmap_data(configmap, "stoker-metadata");
        Self::from_data(name, data)
    }
}

/// Which Secret keys the agent needs for the spec's Git auth.
pub(crate) fn agent_auth(cr_name: &str, spec: &GatewaySyncSpec) -> AgentAuth {
    let Some(auth) = &spec.git.auth else {
        return AgentAuth::default();
    };
    if let Some(token) = &auth.token {
        AgentAuth {
            auth_type: AuthType::Token,
            secret: Some(token.secret_ref.clone()),
            ..Default::default()
        }
    } else if let Some(ssh) = &auth.ssh_key {
        AgentAuth {
            auth_type: AuthType::Ssh,
            secret: Some(ssh.secret_ref.clone()),
            known_hosts: ssh.known_hosts.as_ref().map(|k| k.secret_ref.clone()),
            ..Default::default()
        }
    } else if let Some(app) = &auth.github_app {
        AgentAuth {
            auth_type: AuthType::GithubApp,
            secret: Some(SecretKeyRef {
                name: github_token_secret_name(cr_name),
                key: GITHUB_TOKEN_KEY.to_owned(),
            }),
            known_hosts: None,
            github_app_id: Some(app.app_id.to_string()),
            github_installation_id: Some(app.installation_id),
            github_api_base_url: app.api_base_url.clone(),
        }
    } else {
        AgentAuth::default()
    }
}

/// Reads typed values out of ConfigMap data, naming the ConfigMap and key in errors.
/// The resource's name: `crName`, or, in a ConfigMap written by stoker-operator v0.5.1 (which
/// has no such key), the name's part after `stoker-metadata-`. During a rolling upgrade our
/// agents may read a ConfigMap the old operator wrote; they must not stop syncing over it.
fn cr_name(reader: &Reader<'_>) -> Result<String> {
    match reader.optional(keys::CR_NAME) {
        Some(name) => Ok(name.to_owned()),
        None => reader
            .configmap
            .strip_prefix("stoker-metadata-")
            .filter(|name| !name.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| Error::MissingKey {
                configmap: reader.configmap.to_owned(),
                key: keys::CR_NAME,
            }),
    }
}

/// A ConfigMap's name (`fallback` when it has none) and its data (empty when it has none), as
/// `from_data` reads them.
pub(crate) fn configmap_data<'a>(
    configmap: &'a ConfigMap,
    fallback: &'a str,
) -> (&'a str, &'a BTreeMap<String, String>) {
    static EMPTY: BTreeMap<String, String> = BTreeMap::new();
    (
        configmap.metadata.name.as_deref().unwrap_or(fallback),
        configmap.data.as_ref().unwrap_or(&EMPTY),
    )
}

pub(crate) struct Reader<'a> {
    pub(crate) configmap: &'a str,
    pub(crate) data: &'a BTreeMap<String, String>,
}

impl Reader<'_> {
    pub(crate) fn optional(&self, key: &'static str) -> Option<&str> {
        self.data
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    pub(crate) fn required(&self, key: &'static str) -> Result<&str> {
        self.optional(key).ok_or_else(|| Error::MissingKey {
            configmap: self.configmap.to_owned(),
            key,
        })
    }

    pub(crate) fn invalid(&self, key: &'static str, message: impl Into<String>) -> Error {
        Error::InvalidValue {
            configmap: self.configmap.to_owned(),
            key,
            value: self.data.get(key).cloned().unwrap_or_default(),
            message: message.into(),
        }
    }

    pub(crate) fn parsed<T>(&self, key: &'static str) -> Result<Option<T>>
    where
        T: std::str::FromStr,
        T::Err: std::fmt::Display,
    {
        self.optional(key)
            .map(|value| {
                value
                    .parse()
                    .map_err(|error: T::Err| self.invalid(key, error.to_string()))
            })
            .transpose()
    }

    pub(crate) fn json<T: serde::de::DeserializeOwned>(
        &self,
        key: &'static str,
    ) -> Result<Option<T>> {
        self.optional(key)
            .map(|value| {
                serde_json::from_str(value).map_err(|source| Error::InvalidJson {
                    configmap: self.configmap.to_owned(),
                    key,
                    source,
                })
            })
            .transpose()
    }

    fn secret(&self, name: &'static str, key: &'static str) -> Option<SecretKeyRef> {
        self.optional(name).map(|secret| SecretKeyRef {
            name: secret.to_owned(),
            key: self.optional(key).unwrap_or_default().to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

    fn spec(value: serde_json::Value) -> GatewaySyncSpec {
        serde_json::from_value(value).unwrap()
    }

    fn full_spec() -> GatewaySyncSpec {
        spec(json!({
            "git": {"repo": "git@host:org/r.git", "ref": "main",
                    "auth": {"sshKey": {"secretRef": {"name": "ssh", "key": "id_ed25519"},
                                        "knownHosts": {"secretRef": {"name": "ssh", "key": "known_hosts"}}}}},
            "polling": {"enabled": false, "interval": "5m"},
            "gateway": {"port": 8043, "tls": true, "api": {"secretName": "gw"}},
            "sync": {"defaults": {"vars": {"site": "1"}, "syncPeriod": 10},
                     "profiles": {"p": {"mappings": [{"source": "a", "destination": "b", "type": "dir"}],
                                        "designerSessionPolicy": "wait"}}},
            "paused": true
        }))
    }

    #[test]
    fn everything_round_trips_through_configmap_data() {
        let metadata = AgentMetadata::from_spec("site", &full_spec(), "main", COMMIT, Some(7));
        let data = metadata.to_data().unwrap();
        assert_eq!(data[keys::AUTH_TYPE], "ssh");
        assert_eq!(data[keys::AUTH_SECRET_KEY], "id_ed25519");
        assert_eq!(data[keys::KNOWN_HOSTS_SECRET_KEY], "known_hosts");
        assert_eq!(data[keys::GATEWAY_PORT], "8043");
        assert_eq!(data[keys::GATEWAY_TLS], "true");
        assert_eq!(data[keys::GATEWAY_API_SECRET_KEY], "apiKey");
        assert_eq!(data[keys::PAUSED], "true");
        assert_eq!(data[keys::POLLING_INTERVAL], "5m");
        assert_eq!(data[keys::GENERATION], "7");
        let profiles: serde_json::Value = serde_json::from_str(&data[keys::PROFILES]).unwrap();
        assert_eq!(profiles["p"]["designerSessionPolicy"], "wait");
        assert_eq!(AgentMetadata::from_data("cm", &data).unwrap(), metadata);
        let profile = metadata.sync.resolve("p").unwrap();
        assert_eq!(profile.sync_period, 10);
        assert_eq!(profile.vars["site"], "1");
    }

    #[test]
    fn github_app_auth_points_the_agent_at_the_token_secret() {
        let spec = spec(json!({
            "git": {"repo": "https://github.com/o/r.git", "ref": "main",
                    "auth": {"githubApp": {"appId": 12345, "installationId": 678,
                                           "privateKeySecretRef": {"name": "app", "key": "pem"},
                                           "apiBaseURL": "https://ghe.example/api/v3"}}},
            "sync": {"profiles": {"p": {}}}
        }));
        let metadata = AgentMetadata::from_spec("site", &spec, "main", COMMIT, None);
        let data = metadata.to_data().unwrap();
        assert_eq!(data[keys::AUTH_TYPE], "githubApp");
        assert_eq!(data[keys::AUTH_SECRET_NAME], "stoker-github-token-site");
        assert_eq!(data[keys::AUTH_SECRET_KEY], "token");
        assert_eq!(data[keys::GITHUB_APP_ID], "12345");
        assert!(
            !data.values().any(|v| v == "pem"),
            "the private key's Secret is not the agent's business"
        );
        assert_eq!(AgentMetadata::from_data("cm", &data).unwrap(), metadata);
    }

    #[test]
    fn missing_and_bad_keys_are_named() {
        let data = AgentMetadata::from_spec("site", &full_spec(), "main", COMMIT, None)
            .to_data()
            .unwrap();
        let mut without_commit = data.clone();
        without_commit.remove(keys::COMMIT);
        let error = AgentMetadata::from_data("stoker-metadata-site", &without_commit).unwrap_err();
        assert_eq!(
            error.to_string(),
            "ConfigMap stoker-metadata-site: missing key \"commit\""
        );
        let mut bad_port = data.clone();
        bad_port.insert(keys::GATEWAY_PORT.into(), "http".into());
        let error = AgentMetadata::from_data("cm", &bad_port)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("gatewayPort") && error.contains("http"),
            "{error}"
        );
        let mut bad_json = data;
        bad_json.insert(keys::PROFILES.into(), "{".into());
        let error = AgentMetadata::from_data("cm", &bad_json)
            .unwrap_err()
            .to_string();
        assert!(error.contains("\"profiles\""), "{error}");
    }

    #[test]
    fn minimal_data_takes_defaults() {
        let data = BTreeMap::from([
            (keys::CR_NAME.to_owned(), "site".to_owned()),
            (keys::GIT_URL.to_owned(), "r".to_owned()),
            (keys::REF.to_owned(), "main".to_owned()),
            (keys::COMMIT.to_owned(), COMMIT.to_owned()),
        ]);
        let metadata = AgentMetadata::from_data("cm", &data).unwrap();
        assert_eq!(metadata.auth, AgentAuth::default());
        assert_eq!(metadata.gateway.port, 8088);
        assert!(metadata.polling.enabled && !metadata.paused);
        assert!(metadata.sync.profiles.is_empty());
    }

    /// What stoker-operator v0.5.1 writes: no `crName`, profiles already merged with the
    /// defaults (`syncPeriod`, `designerSessionPolicy` filled in), a subset of our keys.
    #[test]
    fn a_configmap_written_by_stoker_operator_v0_5_1_is_read() {
        let profiles = json!({"default": {
            "mappings": [{"source": "projects", "destination": "projects"},
                         {"source": "config/gw.json", "destination": "config/gw.json",
                          "type": "file", "required": true,
                          "patches": [{"file": "gw.json", "set": {"site": "{{.Vars.site}}"}}]}],
            "vars": {"site": "1"}, "excludePatterns": ["**/*.bak"], "syncPeriod": 30,
            "dryRun": false, "designerSessionPolicy": "proceed", "paused": false}});
        let data: BTreeMap<String, String> = [
            ("commit", COMMIT),
            ("ref", "v1.2.0"),
            ("gitURL", "https://git.example/plant.git"),
            ("paused", "false"),
            ("authType", "token"),
            ("profiles", &profiles.to_string()),
            ("gatewayPort", "8043"),
            ("gatewayTLS", "true"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let metadata = AgentMetadata::from_data("stoker-metadata-plant-gateways", &data).unwrap();
        assert_eq!(metadata.cr_name, "plant-gateways");
        assert_eq!(metadata.reference, "v1.2.0");
        assert_eq!(metadata.auth.auth_type, AuthType::Token);
        assert_eq!((metadata.gateway.port, metadata.gateway.tls), (8043, true));
        let profile = metadata.sync.resolve("default").unwrap();
        assert_eq!(profile.sync_period, 30);
        assert_eq!(profile.vars["site"], "1");
        assert_eq!(profile.mappings.len(), 2);
        // Not named after the convention and no crName: nothing to go on.
        let error = AgentMetadata::from_data("plant", &data).unwrap_err();
        assert!(error.to_string().contains("crName"), "{error}");
    }

    #[test]
    fn the_configmap_is_owned_labelled_and_named() {
        let mut gs = GatewaySync::new("site", full_spec());
        let metadata = AgentMetadata::from_spec("site", &gs.spec, "main", COMMIT, None);
        assert!(matches!(
            metadata.to_configmap(&gs),
            Err(Error::MissingUid { .. })
        ));
        gs.metadata.namespace = Some("plant".into());
        gs.metadata.uid = Some("uid-1".into());
        let configmap = metadata.to_configmap(&gs).unwrap();
        assert_eq!(
            configmap.metadata.name.as_deref(),
            Some("stoker-metadata-site")
        );
        assert_eq!(configmap.metadata.namespace.as_deref(), Some("plant"));
        let owner = &configmap.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.uid.as_str()),
            ("GatewaySync", "uid-1")
        );
        assert_eq!(owner.controller, Some(true));
        assert_eq!(configmap.labels()[LABEL_CR_NAME], "site");
        assert_eq!(AgentMetadata::from_configmap(&configmap).unwrap(), metadata);
    }
}
