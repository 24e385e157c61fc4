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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GitSpec {
    /// Repository URL (HTTPS, SSH, `file://`).
    pub repo: String,
    /// Branch, tag or commit.
    #[serde(rename = "ref")]
    pub reference: String,
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
