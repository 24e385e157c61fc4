//! The agent's Kubernetes logic (`stoker-agent sidecar`): what to sync, decided from the
//! watched inputs ([`plan`], pure), the status ConfigMap and Events it reports through
//! ([`report`]), and the watches of the metadata ConfigMap and its own pod ([`watch`]). The
//! `stoker-agent` binary keeps its configuration parsing and the sync loop.

use std::path::PathBuf;
use std::time::Duration;

pub mod plan;
pub mod report;
pub mod watch;

/// What the agent's environment says about its place in Kubernetes: who it is, which
/// `GatewaySync` it follows, and the overrides planning reads (checked by the binary).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgentConfig {
    /// The gateway pod's name.
    pub pod_name: String,
    /// The gateway pod's namespace.
    pub pod_namespace: String,
    /// The GatewaySync's name.
    pub cr_name: String,
    /// The GatewaySync's namespace.
    pub cr_namespace: String,
    /// `GATEWAY_NAME`, if set.
    pub gateway_name: Option<String>,
    /// `PROFILE`, if set.
    pub profile: Option<String>,
    /// `SYNC_PERIOD`, if set.
    pub sync_period: Option<Duration>,
    /// The gateway host.
    pub gateway_host: String,
    /// `GATEWAY_PORT`, if set.
    pub gateway_port: Option<u16>,
    /// `GATEWAY_TLS`, if set.
    pub gateway_tls: Option<bool>,
    /// Git credentials and trust.
    pub git: GitFiles,
}

impl AgentConfig {
    /// The gateway's base URL for a port and scheme (`GATEWAY_PORT`/`GATEWAY_TLS` win over
    /// the GatewaySync's `spec.gateway`).
    ///
    /// ```
    /// let config = stoker_k8s::agent::AgentConfig {
    ///     gateway_host: "::1".into(),
    ///     gateway_port: Some(9088),
    ///     ..Default::default()
    /// };
    /// assert_eq!(config.gateway_url(8043, true), "https://[::1]:9088");
    /// ```
    pub fn gateway_url(&self, spec_port: u16, spec_tls: bool) -> String {
        let tls = self.gateway_tls.unwrap_or(spec_tls);
        let port = self.gateway_port.unwrap_or(spec_port);
        let scheme = if tls { "https" } else { "http" };
        let host = if self.gateway_host.contains(':') && !self.gateway_host.starts_with('[') {
            format!("[{}]", self.gateway_host)
        } else {
            self.gateway_host.clone()
        };
        format!("{scheme}://{host}:{port}")
    }
}

/// Git credential files, as mounted from Secrets.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct GitFiles {
    /// `GIT_TOKEN_FILE`.
    pub token_file: Option<PathBuf>,
    /// `GIT_SSH_KEY_FILE`.
    pub ssh_key_file: Option<PathBuf>,
    /// `GIT_KNOWN_HOSTS_FILE`.
    pub known_hosts_file: Option<PathBuf>,
    /// `GIT_CA_FILE`.
    pub ca_file: Option<PathBuf>,
}
