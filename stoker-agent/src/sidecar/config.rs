//! `stoker-agent sidecar` configuration: the environment the pod injector sets (every flag has
//! an environment variable; `--help` lists them), checked into a [`SidecarConfig`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use clap::builder::BoolishValueParser;

// Checked here, kept in stoker-k8s, where the agent's planning, status and watches read them.
pub use stoker_k8s::agent::{AgentConfig, GitFiles};

/// The sidecar's flags. Each one reads the environment variable named in its `env` (what the
/// injector sets); a flag given on the command line wins.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Sidecar (set by the pod injector)")]
pub struct SidecarArgs {
    /// The gateway pod's name (downward API `metadata.name`). Required.
    #[arg(long, env = "POD_NAME", value_name = "POD_NAME")]
    pub pod_name: Option<String>,

    /// The gateway pod's namespace (downward API `metadata.namespace`). Required.
    #[arg(long, env = "POD_NAMESPACE", value_name = "POD_NAMESPACE")]
    pub pod_namespace: Option<String>,

    /// The GatewaySync this gateway syncs from (the pod's `stoker.io/cr-name`). Required.
    #[arg(long, env = "CR_NAME", value_name = "CR_NAME")]
    pub cr_name: Option<String>,

    /// The GatewaySync's namespace [default: POD_NAMESPACE].
    #[arg(long, env = "CR_NAMESPACE", value_name = "CR_NAMESPACE")]
    pub cr_namespace: Option<String>,

    /// `{{.GatewayName}}` [default: the pod's `stoker.io/gateway-name` annotation, else its
    /// `app.kubernetes.io/name` label, else the pod name].
    #[arg(long, env = "GATEWAY_NAME", value_name = "GATEWAY_NAME")]
    pub gateway_name: Option<String>,

    /// The profile (key of `spec.sync.profiles`). The pod's `stoker.io/profile` annotation wins
    /// when set (and changes apply without a restart) [default: the only profile, or the one
    /// named `default`].
    #[arg(long, env = "PROFILE", value_name = "PROFILE")]
    pub profile: Option<String>,

    /// Where the Git cache lives (an `emptyDir`). Required.
    #[arg(long, env = "REPO_PATH", value_name = "REPO_PATH")]
    pub repo_path: Option<PathBuf>,

    /// The gateway's live data directory (the volume the gateway container mounts). Required.
    #[arg(long, env = "DATA_PATH", value_name = "DATA_PATH")]
    pub data_path: Option<PathBuf>,

    /// The gateway's host, as seen from the agent (same pod: loopback).
    #[arg(
        long,
        env = "GATEWAY_HOST",
        value_name = "GATEWAY_HOST",
        default_value = "127.0.0.1"
    )]
    pub gateway_host: String,

    /// The gateway API port [default: the GatewaySync's spec.gateway.port, 8088].
    #[arg(long, env = "GATEWAY_PORT", value_name = "GATEWAY_PORT")]
    pub gateway_port: Option<u16>,

    /// HTTPS to the gateway (`true`/`false`) [default: the GatewaySync's spec.gateway.tls].
    #[arg(long, env = "GATEWAY_TLS", value_name = "GATEWAY_TLS", value_parser = BoolishValueParser::new())]
    pub gateway_tls: Option<bool>,

    /// The Ignition API key file (`tokenName:secret`, from the Secret in spec.gateway.api).
    #[arg(long, env = "API_KEY_FILE", value_name = "API_KEY_FILE")]
    pub api_key_file: Option<PathBuf>,

    /// Extra CA certificates (PEM) to trust for an HTTPS gateway (a self-signed gateway
    /// certificate).
    #[arg(long, env = "GATEWAY_CA_FILE", value_name = "GATEWAY_CA_FILE")]
    pub gateway_ca_file: Option<PathBuf>,

    /// Accept any TLS certificate from the gateway (explicit opt-in; logs a warning).
    #[arg(
        long,
        env = "GATEWAY_INSECURE_SKIP_TLS_VERIFY",
        value_name = "BOOL",
        value_parser = BoolishValueParser::new(),
        default_value_t = false,
        num_args = 0..=1,
        default_missing_value = "true"
    )]
    pub gateway_insecure_skip_tls_verify: bool,

    /// HTTPS token for Git (authType `token`, or the operator's GitHub App installation token).
    #[arg(long, env = "GIT_TOKEN_FILE", value_name = "GIT_TOKEN_FILE")]
    pub git_token_file: Option<PathBuf>,

    /// SSH private key for Git (authType `ssh`).
    #[arg(long, env = "GIT_SSH_KEY_FILE", value_name = "GIT_SSH_KEY_FILE")]
    pub git_ssh_key_file: Option<PathBuf>,

    /// SSH `known_hosts` for Git; without it (and without knownHosts in the GatewaySync) the
    /// host key is not verified, as the GatewaySync's SSHHostKeyVerification condition says.
    #[arg(
        long,
        env = "GIT_KNOWN_HOSTS_FILE",
        value_name = "GIT_KNOWN_HOSTS_FILE"
    )]
    pub git_known_hosts_file: Option<PathBuf>,

    /// Extra CA certificates (PEM) to trust for an HTTPS Git server.
    #[arg(long, env = "GIT_CA_FILE", value_name = "GIT_CA_FILE")]
    pub git_ca_file: Option<PathBuf>,

    /// Resync period in seconds: the fallback when no watch event arrives (a profile's or the
    /// defaults' explicit syncPeriod wins) [default: 30].
    #[arg(long, env = "SYNC_PERIOD", value_name = "SYNC_PERIOD", value_parser = clap::value_parser!(u64).range(1..))]
    pub sync_period: Option<u64>,

    /// Where `/startupz`, `/healthz`, `/readyz` (and `/metrics` too) are served.
    #[arg(
        long,
        env = "PROBE_ADDRESS",
        value_name = "PROBE_ADDRESS",
        default_value = "0.0.0.0:8082"
    )]
    pub probe_address: SocketAddr,

    /// Where `/metrics` is served on its own (the container port `metrics`, which the chart's
    /// PodMonitor scrapes).
    #[arg(
        long,
        env = "METRICS_ADDRESS",
        value_name = "METRICS_ADDRESS",
        default_value = "0.0.0.0:8083"
    )]
    pub metrics_address: SocketAddr,

    /// On SIGTERM, how long an in-flight sync may take to finish, in seconds (keep it below the
    /// pod's terminationGracePeriodSeconds).
    #[arg(
        long,
        env = "SHUTDOWN_GRACE_SECONDS",
        value_name = "SECONDS",
        default_value_t = 25
    )]
    pub shutdown_grace_seconds: u64,

    /// How long designerSessionPolicy `wait` waits for Designer sessions to close, in seconds.
    #[arg(
        long,
        env = "DESIGNER_WAIT_SECONDS",
        value_name = "SECONDS",
        default_value_t = 300
    )]
    pub designer_wait_seconds: u64,

    /// First delay after a failed sync, in seconds; it doubles per consecutive failure.
    #[arg(
        long,
        env = "RETRY_INITIAL_SECONDS",
        value_name = "SECONDS",
        default_value_t = 2,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub retry_initial_seconds: u64,

    /// Longest delay between retries of a failing sync, in seconds.
    #[arg(
        long,
        env = "RETRY_MAX_SECONDS",
        value_name = "SECONDS",
        default_value_t = 300,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub retry_max_seconds: u64,

    /// Accept a DATA_PATH of `/` or one that is, holds or lies inside REPO_PATH (refused
    /// otherwise: a mapping to `.` would manage the whole file system, or the Git cache).
    #[arg(
        long,
        env = "ALLOW_DANGEROUS_DEST",
        value_name = "BOOL",
        default_value_t = false,
        value_parser = BoolishValueParser::new()
    )]
    pub allow_dangerous_dest: bool,
}

impl Default for SidecarArgs {
    /// Nothing set; the defaults `--help` shows.
    fn default() -> Self {
        SidecarArgs {
            pod_name: None,
            pod_namespace: None,
            cr_name: None,
            cr_namespace: None,
            gateway_name: None,
            profile: None,
            repo_path: None,
            data_path: None,
            allow_dangerous_dest: false,
            gateway_host: "127.0.0.1".to_owned(),
            gateway_port: None,
            gateway_tls: None,
            api_key_file: None,
            gateway_ca_file: None,
            gateway_insecure_skip_tls_verify: false,
            git_token_file: None,
            git_ssh_key_file: None,
            git_known_hosts_file: None,
            git_ca_file: None,
            sync_period: None,
            probe_address: SocketAddr::from(([0, 0, 0, 0], 8082)),
            metrics_address: SocketAddr::from(([0, 0, 0, 0], 8083)),
            shutdown_grace_seconds: 25,
            designer_wait_seconds: 300,
            retry_initial_seconds: 2,
            retry_max_seconds: 300,
        }
    }
}

/// The checked configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SidecarConfig {
    /// Who the agent is in Kubernetes and what planning reads (pod, GatewaySync, overrides,
    /// Git credential files).
    pub agent: AgentConfig,
    /// The Git cache directory.
    pub repo_path: PathBuf,
    /// The live data directory.
    pub data_path: PathBuf,
    /// The Ignition API key file.
    pub api_key_file: Option<PathBuf>,
    /// Extra CA for the gateway.
    pub gateway_ca_file: Option<PathBuf>,
    /// Skip the gateway's certificate check.
    pub gateway_insecure_skip_tls_verify: bool,
    /// The probe server's address.
    pub probe_address: SocketAddr,
    /// The metrics server's address.
    pub metrics_address: SocketAddr,
    /// How long an in-flight sync may finish after SIGTERM.
    pub shutdown_grace: Duration,
    /// How long the `wait` Designer policy waits.
    pub designer_wait: Duration,
    /// Backoff after failures: first delay.
    pub retry_initial: Duration,
    /// Backoff after failures: longest delay.
    pub retry_max: Duration,
}

/// A configuration problem, naming the environment variable to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A required variable is not set (or empty).
    #[error("environment variable {variable} is not set (or pass {flag}): {what}")]
    Missing {
        /// The variable.
        variable: &'static str,
        /// The equivalent flag.
        flag: &'static str,
        /// What it is and where it usually comes from.
        what: &'static str,
    },
    /// A variable is set to something unusable.
    #[error("environment variable {variable}={value:?}: {message}")]
    Invalid {
        /// The variable.
        variable: &'static str,
        /// Its value.
        value: String,
        /// Why it cannot be used.
        message: String,
    },
}

fn required<T: Clone>(
    value: &Option<T>,
    variable: &'static str,
    flag: &'static str,
    what: &'static str,
) -> Result<T, ConfigError> {
    value.clone().ok_or(ConfigError::Missing {
        variable,
        flag,
        what,
    })
}

/// Trims a value and drops it when blank.
fn non_blank(value: &Option<String>) -> Option<String> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

fn name(
    value: &Option<String>,
    variable: &'static str,
    flag: &'static str,
    what: &'static str,
) -> Result<String, ConfigError> {
    let value = required(&non_blank(value), variable, flag, what)?;
    if !is_dns_subdomain(&value) {
        return Err(ConfigError::Invalid {
            variable,
            value,
            message: "not a Kubernetes object name (lowercase letters, digits, '-' and '.', at most 253 characters)".to_owned(),
        });
    }
    Ok(value)
}

/// True for a valid Kubernetes object name (RFC 1123 subdomain).
fn is_dns_subdomain(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 253
        && value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && value.starts_with(|c: char| c.is_ascii_alphanumeric())
        && value.ends_with(|c: char| c.is_ascii_alphanumeric())
}

impl SidecarConfig {
    /// Checks the flags/environment: required values present, names valid, paths absolute,
    /// the retry bounds in order. Files are not opened here (Secrets may be mounted late and
    /// are read on every use).
    #[allow(clippy::too_many_lines)] // one check per flag
    pub fn from_args(args: &SidecarArgs) -> Result<Self, ConfigError> {
        let pod_name = name(
            &args.pod_name,
            "POD_NAME",
            "--pod-name",
            "the gateway pod's name (downward API fieldRef metadata.name)",
        )?;
        let pod_namespace = name(
            &args.pod_namespace,
            "POD_NAMESPACE",
            "--pod-namespace",
            "the gateway pod's namespace (downward API fieldRef metadata.namespace)",
        )?;
        let cr_name = name(
            &args.cr_name,
            "CR_NAME",
            "--cr-name",
            "the GatewaySync to sync from (the pod's stoker.io/cr-name annotation)",
        )?;
        let cr_namespace = match non_blank(&args.cr_namespace) {
            Some(_) => name(&args.cr_namespace, "CR_NAMESPACE", "--cr-namespace", "")?,
            None => pod_namespace.clone(),
        };
        let repo_path = path(
            &args.repo_path,
            "REPO_PATH",
            "--repo-path",
            "the Git cache directory (an emptyDir volume)",
        )?;
        let data_path = path(
            &args.data_path,
            "DATA_PATH",
            "--data-path",
            "the gateway's data directory (the volume the gateway container mounts)",
        )?;
        if repo_path == data_path {
            return Err(ConfigError::Invalid {
                variable: "REPO_PATH",
                value: repo_path.display().to_string(),
                message: "must differ from DATA_PATH".to_owned(),
            });
        }
        if !args.allow_dangerous_dest
            && let Some(danger) = crate::destination::check(
                &data_path,
                None,
                &[("REPO_PATH (the Git cache)", repo_path.as_path())],
            )
        {
            return Err(ConfigError::Invalid {
                variable: "DATA_PATH",
                value: data_path.display().to_string(),
                message: format!("{danger}; set ALLOW_DANGEROUS_DEST=true if you mean it"),
            });
        }
        let gateway_host = args.gateway_host.trim().to_owned();
        if gateway_host.is_empty() || gateway_host.contains(['/', '@', '?', '#', ' ']) {
            return Err(ConfigError::Invalid {
                variable: "GATEWAY_HOST",
                value: args.gateway_host.clone(),
                message: "expected a host name or IP address".to_owned(),
            });
        }
        if args.gateway_port == Some(0) {
            return Err(ConfigError::Invalid {
                variable: "GATEWAY_PORT",
                value: "0".to_owned(),
                message: "expected a port between 1 and 65535".to_owned(),
            });
        }
        if args.retry_max_seconds < args.retry_initial_seconds {
            return Err(ConfigError::Invalid {
                variable: "RETRY_MAX_SECONDS",
                value: args.retry_max_seconds.to_string(),
                message: format!(
                    "smaller than RETRY_INITIAL_SECONDS ({})",
                    args.retry_initial_seconds
                ),
            });
        }
        Ok(SidecarConfig {
            agent: AgentConfig {
                pod_name,
                pod_namespace,
                cr_name,
                cr_namespace,
                gateway_name: non_blank(&args.gateway_name),
                profile: non_blank(&args.profile),
                sync_period: args.sync_period.map(Duration::from_secs),
                gateway_host,
                gateway_port: args.gateway_port,
                gateway_tls: args.gateway_tls,
                git: GitFiles {
                    token_file: args.git_token_file.clone(),
                    ssh_key_file: args.git_ssh_key_file.clone(),
                    known_hosts_file: args.git_known_hosts_file.clone(),
                    ca_file: args.git_ca_file.clone(),
                },
            },
            repo_path,
            data_path,
            api_key_file: args.api_key_file.clone(),
            gateway_ca_file: args.gateway_ca_file.clone(),
            gateway_insecure_skip_tls_verify: args.gateway_insecure_skip_tls_verify,
            probe_address: args.probe_address,
            metrics_address: args.metrics_address,
            shutdown_grace: Duration::from_secs(args.shutdown_grace_seconds),
            designer_wait: Duration::from_secs(args.designer_wait_seconds),
            retry_initial: Duration::from_secs(args.retry_initial_seconds),
            retry_max: Duration::from_secs(args.retry_max_seconds),
        })
    }

    /// The gateway's base URL for a port and scheme (`GATEWAY_PORT`/`GATEWAY_TLS` win over
    /// the GatewaySync's `spec.gateway`).
    ///
    /// ```
    /// use stoker_agent::sidecar::config::{SidecarArgs, SidecarConfig};
    /// let mut args = SidecarArgs::default();
    /// args.pod_name = Some("ignition-0".into());
    /// args.pod_namespace = Some("plant".into());
    /// args.cr_name = Some("site".into());
    /// args.repo_path = Some("/repo".into());
    /// args.data_path = Some("/data".into());
    /// let config = SidecarConfig::from_args(&args).unwrap();
    /// assert_eq!(config.gateway_url(8043, true), "https://127.0.0.1:8043");
    /// ```
    pub fn gateway_url(&self, spec_port: u16, spec_tls: bool) -> String {
        self.agent.gateway_url(spec_port, spec_tls)
    }
}

fn path(
    value: &Option<PathBuf>,
    variable: &'static str,
    flag: &'static str,
    what: &'static str,
) -> Result<PathBuf, ConfigError> {
    let value = required(value, variable, flag, what)?;
    if value.as_os_str().is_empty() {
        return Err(ConfigError::Missing {
            variable,
            flag,
            what,
        });
    }
    if !value.is_absolute() {
        return Err(ConfigError::Invalid {
            variable,
            value: value.display().to_string(),
            message: "must be an absolute path".to_owned(),
        });
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> SidecarArgs {
        SidecarArgs {
            pod_name: Some("ignition-0".into()),
            pod_namespace: Some("plant".into()),
            cr_name: Some("site".into()),
            repo_path: Some("/repo".into()),
            data_path: Some("/data".into()),
            ..SidecarArgs::default()
        }
    }

    #[test]
    fn a_complete_environment_is_accepted() {
        let config = SidecarConfig::from_args(&args()).unwrap();
        assert_eq!(config.agent.cr_namespace, "plant", "defaults to the pod's");
        assert_eq!(config.gateway_url(8088, false), "http://127.0.0.1:8088");
    }

    #[test]
    fn missing_variables_are_named() {
        for (clear, variable) in [
            (
                (|a: &mut SidecarArgs| a.pod_name = None) as fn(&mut SidecarArgs),
                "POD_NAME",
            ),
            (|a| a.pod_namespace = Some("  ".into()), "POD_NAMESPACE"),
            (|a| a.cr_name = None, "CR_NAME"),
            (|a| a.repo_path = None, "REPO_PATH"),
            (|a| a.data_path = None, "DATA_PATH"),
        ] {
            let mut args = args();
            clear(&mut args);
            let error = SidecarConfig::from_args(&args).unwrap_err();
            assert!(
                matches!(&error, ConfigError::Missing { variable: v, .. } if *v == variable),
                "{error}"
            );
            assert!(error.to_string().contains(variable), "{error}");
        }
    }

    #[test]
    fn invalid_values_are_named() {
        let mut bad = args();
        bad.cr_name = Some("Site_1".into());
        let error = SidecarConfig::from_args(&bad).unwrap_err().to_string();
        assert!(
            error.starts_with("environment variable CR_NAME=\"Site_1\""),
            "{error}"
        );

        let mut bad = args();
        bad.data_path = Some("relative/data".into());
        let error = SidecarConfig::from_args(&bad).unwrap_err().to_string();
        assert!(
            error.contains("DATA_PATH") && error.contains("absolute"),
            "{error}"
        );

        let mut bad = args();
        bad.data_path = Some("/repo".into());
        assert!(SidecarConfig::from_args(&bad).is_err());

        let mut bad = args();
        bad.gateway_port = Some(0);
        let error = SidecarConfig::from_args(&bad).unwrap_err().to_string();
        assert!(error.contains("GATEWAY_PORT"), "{error}");
    }

    /// Issue 15 item 6: a DATA_PATH of `/` (or overlapping the Git cache) would let a mapping
    /// to `.` manage the whole file system; refused unless ALLOW_DANGEROUS_DEST is set.
    #[test]
    fn a_dangerous_data_path_is_refused_unless_allowed() {
        for (data, repo, expected) in [
            (
                "/",
                "/repo",
                "DATA_PATH=\"/\": is the root of the file system; set ALLOW_DANGEROUS_DEST=true",
            ),
            (
                "/cache/data",
                "/cache",
                "DATA_PATH=\"/cache/data\": lies inside REPO_PATH (the Git cache) (/cache)",
            ),
            (
                "/data",
                "/data/.git-cache",
                "DATA_PATH=\"/data\": contains REPO_PATH (the Git cache) (/data/.git-cache)",
            ),
        ] {
            let mut bad = args();
            bad.data_path = Some(data.into());
            bad.repo_path = Some(repo.into());
            let error = SidecarConfig::from_args(&bad).unwrap_err().to_string();
            assert!(error.contains(expected), "{error}");
            bad.allow_dangerous_dest = true;
            assert!(
                SidecarConfig::from_args(&bad).is_ok(),
                "{data} once allowed"
            );
        }
    }

    #[test]
    fn the_environment_overrides_the_spec_for_the_gateway_url() {
        let mut with_env = args();
        with_env.gateway_port = Some(9000);
        with_env.gateway_tls = Some(true);
        with_env.gateway_host = "::1".into();
        let config = SidecarConfig::from_args(&with_env).unwrap();
        assert_eq!(config.gateway_url(8088, false), "https://[::1]:9000");
    }
}
