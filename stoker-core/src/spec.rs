//! The `GatewaySync` document as users write it (`stoker.io/v1alpha1`), for tools that read it
//! from a file: `stoker-agent sync --config gatewaysync.yaml`.
//!
//! Only the parts a sync needs are typed here (`spec.git`, `spec.sync`, `spec.paused`); other
//! sections (`gateway`, `polling`, `agent`) are accepted and ignored, so a manifest that applies
//! to a cluster also works on the command line unchanged.

use serde::{Deserialize, Serialize};

use crate::SyncSpec;

/// `apiVersion` of the `GatewaySync` resource.
pub const API_VERSION: &str = "stoker.io/v1alpha1";
/// `kind` of the `GatewaySync` resource.
pub const KIND: &str = "GatewaySync";

/// A whole `GatewaySync` document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewaySyncDocument {
    /// Must be [`API_VERSION`].
    pub api_version: String,
    /// Must be [`KIND`].
    pub kind: String,
    /// Name and namespace.
    #[serde(default)]
    pub metadata: Metadata,
    /// The spec.
    pub spec: GatewaySyncSpec,
}

/// `metadata` (only what templates read).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    /// `{{.CRName}}`.
    #[serde(default)]
    pub name: Option<String>,
    /// `{{.Namespace}}`.
    #[serde(default)]
    pub namespace: Option<String>,
}

/// `spec` (the parts a sync needs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewaySyncSpec {
    /// The Git repository and ref.
    pub git: GitSpec,
    /// Profiles and defaults.
    pub sync: SyncSpec,
    /// Stop all syncing.
    #[serde(default)]
    pub paused: bool,
}

/// `spec.git`.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GitSpec {
    /// Repository URL: `https://host/org/repo.git`, `ssh://git@host/org/repo.git`,
    /// `git@host:org/repo.git` or `file:///path`.
    #[cfg_attr(feature = "schema", schemars(length(min = 1)))]
    pub repo: String,
    /// The branch, tag or commit SHA to sync (`main`, `v1.4.0`, a 40-hex SHA). Resolved to a
    /// commit without cloning.
    #[serde(rename = "ref")]
    #[cfg_attr(feature = "schema", schemars(length(min = 1)))]
    pub reference: String,
    /// How to authenticate: exactly one of `token`, `sshKey` or `githubApp`. Omit for public
    /// repositories.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<GitAuthSpec>,
}

/// `spec.git.auth`: exactly one of the methods. In a cluster the secrets come from the
/// referenced Secrets; on the command line from files given by flags.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(
    feature = "schema",
    schemars(extend("x-kubernetes-validations" = [{
        "rule": "(has(self.token) ? 1 : 0) + (has(self.sshKey) ? 1 : 0) + (has(self.githubApp) ? 1 : 0) == 1",
        "message": "spec.git.auth must set exactly one of token, sshKey or githubApp"
    }]))
)]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GitAuthSpec {
    /// An HTTPS token (personal access token, deploy token) read from a Secret; sent as the
    /// password of HTTP basic auth.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<SecretRefHolder>,
    /// An SSH deploy key read from a Secret, and optionally the `known_hosts` to verify the
    /// server with (without it the host key is not verified, and the `SSHHostKeyVerification`
    /// condition says so).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh_key: Option<SshKeySpec>,
    /// A GitHub App installation: the operator exchanges the App's private key for
    /// short-lived installation tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub github_app: Option<GithubAppSpec>,
}

/// A reference to one key of a Secret.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(transform = crate::schema::require_key))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretKeyRef {
    /// The Secret's name, in the resource's namespace.
    #[cfg_attr(feature = "schema", schemars(length(min = 1)))]
    pub name: String,
    /// The key in the Secret's data.
    #[serde(default)]
    #[cfg_attr(
        feature = "schema",
        schemars(length(min = 1), skip_serializing_if = "String::is_empty")
    )]
    pub key: String,
}

/// `{secretRef: {...}}`.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretRefHolder {
    /// The Secret and key holding the value.
    pub secret_ref: SecretKeyRef,
}

/// `spec.git.auth.sshKey`.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SshKeySpec {
    /// The Secret and key holding the private key (OpenSSH format).
    pub secret_ref: SecretKeyRef,
    /// The Secret and key holding a `known_hosts` file used to verify the server's host key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub known_hosts: Option<SecretRefHolder>,
}

/// `spec.git.auth.githubApp`.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GithubAppSpec {
    /// The App's id (a number, or the App's client id string).
    pub app_id: NumberOrString,
    /// The id of the App's installation on the organisation or repository.
    pub installation_id: u64,
    /// The Secret and key holding the App's private key (PEM).
    pub private_key_secret_ref: SecretKeyRef,
    /// GitHub REST API base URL, for GitHub Enterprise Server (`https://HOST/api/v3`);
    /// `https://api.github.com` when omitted.
    #[serde(
        default,
        rename = "apiBaseURL",
        skip_serializing_if = "Option::is_none"
    )]
    pub api_base_url: Option<String>,
}

/// A YAML value written either as a number or as a string.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum NumberOrString {
    /// `appId: 12345`.
    Number(u64),
    /// `appId: "Iv1.abc"`.
    String(String),
}

/// In the CRD schema: an integer or a string (`x-kubernetes-int-or-string`), the only
/// number-or-string shape a structural schema allows.
#[cfg(feature = "schema")]
impl schemars::JsonSchema for NumberOrString {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "NumberOrString".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({ "x-kubernetes-int-or-string": true })
    }
}

impl std::fmt::Display for NumberOrString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NumberOrString::Number(n) => write!(f, "{n}"),
            NumberOrString::String(s) => f.write_str(s),
        }
    }
}

impl GitAuthSpec {
    /// The method's name (`token`, `sshKey`, `githubApp`), or an error when not exactly one is
    /// set.
    pub fn method(&self) -> Result<&'static str, String> {
        let set: Vec<&'static str> = [
            (self.token.is_some(), "token"),
            (self.ssh_key.is_some(), "sshKey"),
            (self.github_app.is_some(), "githubApp"),
        ]
        .into_iter()
        .filter_map(|(set, name)| set.then_some(name))
        .collect();
        match set.as_slice() {
            [one] => Ok(one),
            [] => Err("spec.git.auth sets no method (token, sshKey or githubApp)".to_owned()),
            several => Err(format!(
                "spec.git.auth sets {} methods ({}); exactly one is allowed",
                several.len(),
                several.join(", ")
            )),
        }
    }
}

impl GatewaySyncDocument {
    /// Checks `apiVersion` and `kind`.
    pub fn check_type(&self) -> Result<(), String> {
        if self.api_version != API_VERSION || self.kind != KIND {
            return Err(format!(
                "expected apiVersion {API_VERSION} and kind {KIND}, found {} {}",
                self.api_version, self.kind
            ));
        }
        Ok(())
    }

    /// Picks the profile to use: `requested` when given; otherwise the only profile, or the
    /// one named `default`.
    pub fn profile_name<'a>(&'a self, requested: Option<&'a str>) -> Result<&'a str, String> {
        let profiles = &self.spec.sync.profiles;
        let names = || profiles.keys().cloned().collect::<Vec<_>>().join(", ");
        match requested {
            Some(name) if profiles.contains_key(name) => Ok(name),
            Some(name) => Err(format!(
                "profile {name:?} is not in spec.sync.profiles (defined: {})",
                names()
            )),
            None if profiles.len() == 1 => Ok(profiles.keys().next().map_or("", String::as_str)),
            None if profiles.contains_key("default") => Ok("default"),
            None if profiles.is_empty() => Err("spec.sync.profiles is empty".to_owned()),
            None => Err(format!(
                "several profiles and none named \"default\": choose one with --profile ({})",
                names()
            )),
        }
    }
}
