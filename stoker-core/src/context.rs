//! The variables a template can read: `{{.GatewayName}}`, `{{.Vars.key}}`, `{{.Labels.key}}`…

use std::collections::BTreeMap;

/// The values behind Stoker's template variables.
///
/// Field names follow the Go templates stoker-operator users already write:
/// `{{.GatewayName}}`, `{{.PodName}}`, `{{.PodOrdinal}}`, `{{.CRName}}`, `{{.Namespace}}`,
/// `{{.Ref}}`, `{{.Commit}}`, `{{.Labels.key}}` and `{{.Vars.key}}`. A variable that is not set
/// (`None`, or a missing key) is an error when a template reads it — never an empty string.
///
/// ```
/// use stoker_core::TemplateContext;
/// let ctx = TemplateContext::default()
///     .with_gateway_name("site1")
///     .with_var("siteNumber", "7");
/// assert_eq!(ctx.lookup(&["GatewayName"]), Ok("site1"));
/// assert_eq!(ctx.lookup(&["Vars", "siteNumber"]), Ok("7"));
/// assert!(ctx.lookup(&["Vars", "missing"]).is_err());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TemplateContext {
    /// `{{.GatewayName}}`: the gateway's identity.
    pub gateway_name: Option<String>,
    /// `{{.PodName}}`: the gateway pod's name.
    pub pod_name: Option<String>,
    /// `{{.PodOrdinal}}`: the StatefulSet ordinal of the pod (`gateway-2` → `2`).
    pub pod_ordinal: Option<String>,
    /// `{{.CRName}}`: the `GatewaySync` resource's name.
    pub cr_name: Option<String>,
    /// `{{.Namespace}}`: the namespace.
    pub namespace: Option<String>,
    /// `{{.Ref}}`: the Git ref being synced.
    pub reference: Option<String>,
    /// `{{.Commit}}`: the full commit id being synced.
    pub commit: Option<String>,
    /// `{{.Labels.key}}`: the gateway pod's labels.
    pub labels: BTreeMap<String, String>,
    /// `{{.Vars.key}}`: the profile's variables (defaults merged with the profile).
    pub vars: BTreeMap<String, String>,
}

/// Why a variable could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LookupError {
    /// The name is not one of Stoker's variables (`.Gateway` instead of `.GatewayName`).
    Unknown,
    /// The name is known but has no value here (`.PodName` outside Kubernetes, a missing
    /// `.Vars` key).
    Unset,
    /// The path goes into a value that has no fields (`.GatewayName.x`) or stops at a map
    /// (`.Vars`).
    NotAValue,
}

impl TemplateContext {
    /// Sets `{{.GatewayName}}`.
    pub fn with_gateway_name(mut self, name: impl Into<String>) -> Self {
        self.gateway_name = Some(name.into());
        self
    }

    /// Adds one `{{.Vars.key}}` variable.
    pub fn with_var(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.vars.insert(key.into(), value.into());
        self
    }

    /// Adds one `{{.Labels.key}}` label.
    pub fn with_label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }

    /// Reads the variable at a field path: `["GatewayName"]`, `["Vars", "site"]`.
    pub fn lookup(&self, path: &[&str]) -> Result<&str, LookupError> {
        match path {
            ["GatewayName", rest @ ..] => scalar(&self.gateway_name, rest),
            ["PodName", rest @ ..] => scalar(&self.pod_name, rest),
            ["PodOrdinal", rest @ ..] => scalar(&self.pod_ordinal, rest),
            ["CRName", rest @ ..] => scalar(&self.cr_name, rest),
            ["Namespace", rest @ ..] => scalar(&self.namespace, rest),
            ["Ref", rest @ ..] => scalar(&self.reference, rest),
            ["Commit", rest @ ..] => scalar(&self.commit, rest),
            ["Labels", rest @ ..] => map(&self.labels, rest),
            ["Vars", rest @ ..] => map(&self.vars, rest),
            _ => Err(LookupError::Unknown),
        }
    }
}

fn scalar<'a>(value: &'a Option<String>, rest: &[&str]) -> Result<&'a str, LookupError> {
    if !rest.is_empty() {
        return Err(LookupError::NotAValue);
    }
    value.as_deref().ok_or(LookupError::Unset)
}

fn map<'a>(values: &'a BTreeMap<String, String>, rest: &[&str]) -> Result<&'a str, LookupError> {
    match rest {
        [] => Err(LookupError::NotAValue),
        [key] => values
            .get(*key)
            .map(String::as_str)
            .ok_or(LookupError::Unset),
        [_, ..] => Err(LookupError::NotAValue),
    }
}
