//! Command-line interface (clap).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Stoker agent: keeps an Ignition gateway's data directory in sync with Git.
#[derive(Debug, Parser)]
#[command(
    name = "stoker-agent",
    version = env!("STOKER_AGENT_VERSION"),
    about,
    long_about = None,
    propagate_version = true
)]
pub struct Cli {
    /// Log level filter (e.g. `info`, `stoker_sync=debug`); `RUST_LOG` wins when set.
    #[arg(long, global = true, default_value = "warn", env = "STOKER_LOG")]
    pub log_level: String,

    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "LOG_FORMAT")]
    pub log_format: LogFormat,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Log formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line (for log collectors).
    Json,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Sync once: render a GatewaySync profile into a directory and print what changed.
    ///
    /// Examples:
    ///   # from a directory
    ///   stoker-agent sync --config examples/gatewaysync.yaml --source examples/repo \
    ///       --dest /tmp/ignition-data --gateway-name site1
    ///   # from spec.git, at a tag, with a token
    ///   stoker-agent sync --config gatewaysync.yaml --ref v2.2.3 \
    ///       --git-token-file /var/run/secrets/git/token --dest /ignition-data --profile dev
    ///   # and ask the gateway to rescan afterwards (respecting open Designer sessions)
    ///   stoker-agent sync --config gatewaysync.yaml --dest /ignition-data \
    ///       --gateway-url http://127.0.0.1:8088 \
    ///       --gateway-api-key-file /var/run/secrets/ignition/api-key
    #[command(verbatim_doc_comment, after_help = crate::exit::HELP)]
    Sync(SyncArgs),

    /// Kubernetes mode: the sidecar injected next to an Ignition gateway.
    ///
    /// Watches the ConfigMap stoker-metadata-<CR_NAME> (the commit the operator resolved, the
    /// profiles) and its own pod (labels, stoker.io/profile, stoker.io/ref-override); syncs the
    /// profile into DATA_PATH on every new commit, profile or label change, and every
    /// SYNC_PERIOD seconds; respects designerSessionPolicy; asks the gateway to rescan; reports
    /// in the ConfigMap stoker-status-<CR_NAME>-<POD_NAME> and in Events on the GatewaySync.
    ///
    /// Endpoints on PROBE_ADDRESS: /startupz (the first sync finished), /readyz, /healthz,
    /// /metrics; /metrics also on METRICS_ADDRESS (port 8083). SIGTERM: /readyz fails at once, a sync in flight finishes (up to
    /// SHUTDOWN_GRACE_SECONDS), exit 0.
    ///
    /// Every flag reads the environment variable shown; the pod injector sets them. Example:
    ///   POD_NAME=ignition-0 POD_NAMESPACE=plant CR_NAME=site \
    ///   REPO_PATH=/var/cache/stoker DATA_PATH=/usr/local/bin/ignition/data \
    ///   API_KEY_FILE=/var/run/secrets/ignition/apiKey stoker-agent sidecar
    #[command(verbatim_doc_comment)]
    Sidecar(crate::sidecar::SidecarArgs),
}

/// Arguments of `stoker-agent sync`.
#[derive(Debug, Args)]
pub struct SyncArgs {
    /// The GatewaySync manifest (YAML, exactly what you `kubectl apply`).
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: PathBuf,

    /// The gateway data directory to sync into (created when missing).
    #[arg(long, short = 'd', value_name = "DIR")]
    pub dest: PathBuf,

    /// Read the files from this directory instead of the manifest's Git repository.
    #[arg(long, short = 's', value_name = "DIR", conflicts_with = "reference")]
    pub source: Option<PathBuf>,

    /// Git ref to sync (branch, tag, SHA) instead of spec.git.ref.
    #[arg(long = "ref", value_name = "REF")]
    pub reference: Option<String>,

    /// HTTPS token for spec.git.repo, read from a file (as a mounted Secret provides it).
    #[arg(long, value_name = "FILE", env = "GIT_TOKEN_FILE", group = "git_auth")]
    pub git_token_file: Option<PathBuf>,

    /// SSH private key for spec.git.repo.
    #[arg(
        long,
        value_name = "FILE",
        env = "GIT_SSH_KEY_FILE",
        group = "git_auth"
    )]
    pub git_ssh_key_file: Option<PathBuf>,

    /// known_hosts file the SSH server's host key must be in (checked strictly). Default, as
    /// with git: ~/.ssh/known_hosts when it exists.
    #[arg(
        long,
        value_name = "FILE",
        env = "GIT_KNOWN_HOSTS_FILE",
        requires = "git_ssh_key_file"
    )]
    pub git_known_hosts_file: Option<PathBuf>,

    /// Connect over SSH without checking the host key (logs a warning on every connect).
    #[arg(
        long,
        requires = "git_ssh_key_file",
        conflicts_with = "git_known_hosts_file"
    )]
    pub git_insecure_skip_host_key_check: bool,

    /// The GitHub App's private key (PEM), for spec.git.auth.githubApp.
    #[arg(
        long,
        value_name = "FILE",
        env = "GITHUB_APP_KEY_FILE",
        group = "git_auth"
    )]
    pub github_app_key_file: Option<PathBuf>,

    /// Extra CA certificates (PEM) to trust for an HTTPS Git server.
    #[arg(long, value_name = "FILE")]
    pub git_ca_file: Option<PathBuf>,

    /// How many times a transient Git failure (network, 5xx, timeout) is tried in all; the
    /// waits are 4 s, 8 s, 16 s, then 30 s, and no retry starts after a minute.
    #[arg(long, value_name = "N", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    pub git_attempts: u32,

    /// The Ignition gateway's base URL (e.g. http://127.0.0.1:8088). When given, the sync
    /// first checks open Designer sessions (per the profile's designerSessionPolicy: proceed,
    /// wait or fail) and, when it changed files, asks the gateway to rescan (POST
    /// /data/api/v1/scan/projects, then /scan/config). A gateway that does not answer (down,
    /// or 503 while starting) gets the files all the same, without a rescan: exit status 3.
    #[arg(long, value_name = "URL")]
    pub gateway_url: Option<String>,

    /// The gateway API key (tokenName:secret), read from a file (as a mounted Secret provides
    /// it); sent in the X-Ignition-API-Token header.
    #[arg(long, value_name = "FILE", requires = "gateway_url")]
    pub gateway_api_key_file: Option<PathBuf>,

    /// Extra CA certificates (PEM) to trust for an https:// gateway URL.
    #[arg(long, value_name = "FILE", requires = "gateway_url")]
    pub gateway_ca_file: Option<PathBuf>,

    /// Accept any TLS certificate from the gateway (a test gateway only; logs a warning).
    #[arg(long, requires = "gateway_url", conflicts_with = "gateway_ca_file")]
    pub gateway_insecure_skip_tls_verify: bool,

    /// Profile from spec.sync.profiles [default: the only profile, or the one named "default"].
    #[arg(long, short = 'p', value_name = "NAME")]
    pub profile: Option<String>,

    /// The gateway's name, for {{.GatewayName}} in templates.
    #[arg(long, value_name = "NAME", env = "GATEWAY_NAME")]
    pub gateway_name: Option<String>,

    /// A template variable {{.Vars.KEY}}; wins over the profile's vars. Repeatable.
    #[arg(long = "var", value_name = "KEY=VALUE", value_parser = parse_var)]
    pub vars: Vec<(String, String)>,

    /// A pod label {{.Labels.KEY}}. Repeatable.
    #[arg(long = "label", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub labels: Vec<(String, String)>,

    /// Let a mapping to `.` (the whole data directory) delete files Stoker did not write, such
    /// as a gateway's own db/ and logs/ (the profile's `adopt: true` does the same). Without it,
    /// they are left in place and listed in a warning.
    #[arg(long)]
    pub adopt: bool,

    /// Sync even into a dangerous --dest: `/`, your home directory, or a directory that is,
    /// holds or lies inside --source or --cache-dir (refused otherwise).
    #[arg(long)]
    pub allow_dangerous_dest: bool,

    /// Where Stoker keeps caches (Git objects, content ids of --source files).
    /// [default: $XDG_CACHE_HOME/stoker or ~/.cache/stoker]
    #[arg(long, value_name = "DIR", env = "STOKER_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,

    /// Show what would change; write nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// fsync every written file before renaming it into place (survives power loss; slower).
    #[arg(long)]
    pub fsync: bool,

    /// How many files are written, deleted or looked at at once. Each mostly waits for the
    /// disk, so more threads than cores pay off; raise it for slow or network file systems,
    /// lower it to save memory in large syncs (1: on the shared pool, one thread per core).
    #[arg(long, value_name = "N", env = "STOKER_IO_THREADS",
          default_value_t = stoker_sync::DEFAULT_IO_THREADS as u16,
          value_parser = clap::value_parser!(u16).range(1..=256))]
    pub io_threads: u16,

    /// Compare every desired file with the live directory, even when syncing to a new commit.
    /// By default a sync between two commits plans only the paths the commit changed, and
    /// hand-made changes elsewhere are repaired by the next sync of the same commit.
    #[arg(long)]
    pub full_drift_check: bool,

    /// Output format on stdout. With json, a failure is a JSON object on stdout too: {"error":
    /// the one line, "causes": [outermost first], "exitStatus": N}.
    #[arg(long, short = 'o', value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,

    /// When another sync holds the lock on --dest, wait for it, up to SECONDS (default 300
    /// when given without a value), checking every 250 ms. Without --wait, a held lock fails
    /// at once (exit status 4).
    #[arg(
        long,
        value_name = "SECONDS",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "300"
    )]
    pub wait: Option<u64>,
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// A short human summary, then the changed paths.
    Text,
    /// The SyncReport as JSON.
    Json,
}

/// The per-user cache directory: `$XDG_CACHE_HOME/stoker`, else `$HOME/.cache/stoker`.
pub fn default_cache_dir() -> Option<PathBuf> {
    let from = |var: &str| {
        std::env::var_os(var)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    from("XDG_CACHE_HOME")
        .or_else(|| from("HOME").map(|home| home.join(".cache")))
        .map(|base| base.join("stoker"))
}

/// Parses a `--var KEY=VALUE`: the key must be an identifier, as in the manifest's `vars`
/// (`{{.Vars.KEY}}` could not read another).
pub fn parse_var(raw: &str) -> Result<(String, String), String> {
    let (key, value) = parse_key_value(raw)?;
    if !stoker_core::profile::is_identifier(&key) {
        return Err(format!(
            "{key:?} is not an identifier ([A-Za-z_][A-Za-z0-9_]*), so {{{{.Vars.{key}}}}} could not read it"
        ));
    }
    Ok((key, value))
}

/// Parses `KEY=VALUE`.
pub fn parse_key_value(raw: &str) -> Result<(String, String), String> {
    let (key, value) = raw
        .split_once('=')
        .ok_or_else(|| format!("{raw:?} is not KEY=VALUE"))?;
    if key.is_empty() {
        return Err(format!("{raw:?} has an empty KEY"));
    }
    Ok((key.to_owned(), value.to_owned()))
}
