//! What to sync, decided from what the watches last saw: a pure function of the metadata
//! ConfigMap, the agent's own pod and the configuration ([`plan`]). The loop syncs whenever the
//! resulting [`Desired`] differs from the last one it tried, so a new commit, a changed
//! profile, changed labels or a `stoker.io/ref-override` all re-sync without a restart.

use std::time::Duration;

use super::AgentConfig;
use crate::discovery::GatewayPod;
use crate::metadata::{AgentMetadata, AuthType, metadata_configmap_name};
use stoker_core::git::GitAuth;
use stoker_core::{Profile, TemplateContext};

/// The default resync period when neither the profile nor `SYNC_PERIOD` sets one.
pub const DEFAULT_SYNC_PERIOD: Duration =
    Duration::from_secs(stoker_core::profile::DEFAULT_SYNC_PERIOD as u64);

/// One watched object, as last seen.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Observed<T> {
    /// The watch has not listed it yet.
    #[default]
    Unknown,
    /// It does not exist.
    Missing,
    /// It exists and reads well.
    Present(T),
    /// It exists but cannot be read (the message says why).
    Invalid(String),
}

/// Everything the watches feed the loop.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Inputs {
    /// `stoker-metadata-{cr}`.
    pub metadata: Observed<AgentMetadata>,
    /// The UID of the GatewaySync owning the metadata ConfigMap (for Events), when known.
    pub owner_uid: Option<String>,
    /// The agent's own pod.
    pub pod: Observed<GatewayPod>,
}

/// What to do now.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    /// The watches have not listed everything yet: nothing to report (an agent restarting
    /// must not flip a `Synced` gateway to `Pending` for the blink this takes).
    Starting(String),
    /// Not enough is known yet to sync (the reason says what is missing).
    Wait(String),
    /// The configuration cannot be synced as it stands: reported as an error until it changes.
    Invalid(Attempt),
    /// Syncing is paused (`spec.paused` or the profile's `paused`).
    Paused(Attempt),
    /// Sync this.
    Sync(Box<Desired>),
}

/// What a plan that does not sync reports: the reason, and as much of the target as is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// Why.
    pub message: String,
    /// The profile, when it was chosen.
    pub profile: Option<String>,
    /// The ref.
    pub reference: Option<String>,
    /// The commit.
    pub commit: Option<String>,
}

impl Attempt {
    /// An attempt that failed before any of the target (profile, ref, commit) was known.
    fn without_target(message: &str) -> Self {
        Self {
            message: message.to_owned(),
            profile: None,
            reference: None,
            commit: None,
        }
    }
}

/// One sync, fully decided. Two equal values sync the same thing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desired {
    /// The resolved profile.
    pub profile: Profile,
    /// The ref: the metadata's (resolved by the operator), or the pod's `stoker.io/ref-override`.
    pub reference: String,
    /// The commit the operator resolved `reference` to; `None` under a ref override (the agent
    /// resolves it itself).
    pub pinned_commit: Option<String>,
    /// The repository URL.
    pub repo: String,
    /// Git credentials.
    pub auth: GitAuth,
    /// The gateway's base URL.
    pub gateway_url: String,
    /// Template variables (`Ref` and `Commit` are filled in by the pipeline).
    pub context: TemplateContext,
    /// Compute the report only.
    pub dry_run: bool,
    /// The resync period.
    pub sync_period: Duration,
}

impl Desired {
    /// True when the pod pins its own ref (`stoker.io/ref-override`).
    pub fn is_override(&self) -> bool {
        self.pinned_commit.is_none()
    }
}

/// Decides what to sync from the inputs.
///
/// - The profile is the pod's `stoker.io/profile` annotation, else `PROFILE`, else the only
///   profile, else the one named `default`.
/// - The ref is the pod's `stoker.io/ref-override` when set (resolved by the agent), else the
///   metadata's ref at the metadata's commit (resolved by the operator).
/// - The resync period is the profile's (or the defaults') explicit `syncPeriod`, else
///   `SYNC_PERIOD`, else 30 s.
#[allow(clippy::too_many_lines)] // one rule per bullet of the doc comment above
pub fn plan(config: &AgentConfig, inputs: &Inputs) -> Plan {
    let configmap = metadata_configmap_name(&config.cr_name);
    let metadata = match &inputs.metadata {
        Observed::Unknown => return Plan::Starting(format!("reading ConfigMap {configmap}")),
        Observed::Missing => {
            return Plan::Wait(format!(
                "waiting for ConfigMap {configmap} in namespace {} (the operator writes it once GatewaySync {} resolves its ref)",
                config.cr_namespace, config.cr_name
            ));
        }
        Observed::Invalid(message) => {
            return Plan::Invalid(Attempt::without_target(message));
        }
        Observed::Present(metadata) => metadata,
    };
    let pod = match &inputs.pod {
        Observed::Unknown => return Plan::Starting(format!("reading pod {}", config.pod_name)),
        Observed::Missing => {
            return Plan::Wait(format!(
                "waiting for pod {} in namespace {}",
                config.pod_name, config.pod_namespace
            ));
        }
        Observed::Invalid(message) => {
            return Plan::Invalid(Attempt::without_target(message));
        }
        Observed::Present(pod) => pod,
    };

    let (reference, pinned_commit) = match &pod.ref_override {
        Some(reference) => (reference.clone(), None),
        None => (metadata.reference.clone(), Some(metadata.commit.clone())),
    };
    let attempt = |message: String, profile: Option<&str>| Attempt {
        message,
        profile: profile.map(str::to_owned),
        reference: Some(reference.clone()),
        commit: pinned_commit.clone(),
    };

    let profile_name = match choose_profile(metadata, pod, config) {
        Ok(name) => name,
        Err(message) => return Plan::Invalid(attempt(message, None)),
    };
    let profile = match metadata.sync.resolve(&profile_name) {
        Ok(profile) => profile,
        Err(error) => {
            return Plan::Invalid(attempt(
                format!("GatewaySync {}: {error}", config.cr_name),
                Some(&profile_name),
            ));
        }
    };
    if metadata.paused {
        return Plan::Paused(attempt(
            format!("GatewaySync {} is paused (spec.paused)", config.cr_name),
            Some(&profile_name),
        ));
    }
    if profile.paused {
        return Plan::Paused(attempt(
            format!("profile {profile_name:?} is paused (paused: true)"),
            Some(&profile_name),
        ));
    }
    let auth = match git_auth(metadata, config) {
        Ok(auth) => auth,
        Err(message) => return Plan::Invalid(attempt(message, Some(&profile_name))),
    };

    let explicit_period = metadata
        .sync
        .profiles
        .get(&profile_name)
        .and_then(|p| p.sync_period)
        .or(metadata.sync.defaults.sync_period)
        .map(|seconds| Duration::from_secs(u64::from(seconds.max(1))));
    let sync_period = explicit_period
        .or(config.sync_period)
        .unwrap_or(DEFAULT_SYNC_PERIOD);

    let context = TemplateContext {
        gateway_name: Some(
            config
                .gateway_name
                .clone()
                .unwrap_or_else(|| pod.gateway_name.clone()),
        ),
        pod_name: Some(config.pod_name.clone()),
        pod_ordinal: Some(pod.ordinal.to_string()),
        cr_name: Some(config.cr_name.clone()),
        namespace: Some(config.pod_namespace.clone()),
        labels: pod.labels.clone(),
        ..TemplateContext::default()
    };
    let dry_run = profile.dry_run;
    Plan::Sync(Box::new(Desired {
        profile,
        reference,
        pinned_commit,
        repo: metadata.repo.clone(),
        auth,
        gateway_url: config.gateway_url(metadata.gateway.port, metadata.gateway.tls),
        context,
        dry_run,
        sync_period,
    }))
}

/// The profile's name: the pod's annotation, else `PROFILE`, else the only profile or
/// `default`.
fn choose_profile(
    metadata: &AgentMetadata,
    pod: &GatewayPod,
    config: &AgentConfig,
) -> Result<String, String> {
    let profiles = &metadata.sync.profiles;
    let names = || profiles.keys().cloned().collect::<Vec<_>>().join(", ");
    let requested = pod
        .profile
        .as_deref()
        .map(|name| (name, "the pod's stoker.io/profile annotation"))
        .or_else(|| config.profile.as_deref().map(|name| (name, "PROFILE")));
    match requested {
        Some((name, _)) if profiles.contains_key(name) => Ok(name.to_owned()),
        Some((name, from)) => Err(format!(
            "profile {name:?} (from {from}) is not in GatewaySync {}'s spec.sync.profiles (defined: {})",
            config.cr_name,
            if profiles.is_empty() {
                "none".to_owned()
            } else {
                names()
            }
        )),
        None if profiles.len() == 1 => Ok(profiles.keys().next().cloned().unwrap_or_default()),
        None if profiles.contains_key("default") => Ok("default".to_owned()),
        None if profiles.is_empty() => Err(format!(
            "GatewaySync {} has no profiles in spec.sync.profiles",
            config.cr_name
        )),
        None => Err(format!(
            "GatewaySync {} has several profiles and none named \"default\": annotate the pod with stoker.io/profile ({})",
            config.cr_name,
            names()
        )),
    }
}

/// Git credentials for the metadata's auth type, from the mounted files.
fn git_auth(metadata: &AgentMetadata, config: &AgentConfig) -> Result<GitAuth, String> {
    let files = &config.git;
    match metadata.auth.auth_type {
        AuthType::None => Ok(GitAuth::None),
        AuthType::Token | AuthType::GithubApp => {
            let token_file = files.token_file.clone().ok_or_else(|| {
                format!(
                    "GatewaySync {} uses {} auth, but GIT_TOKEN_FILE is not set (mount the Secret {} and point GIT_TOKEN_FILE at it)",
                    config.cr_name,
                    metadata.auth.auth_type.as_str(),
                    secret_name(metadata)
                )
            })?;
            Ok(GitAuth::Token { token_file })
        }
        AuthType::Ssh => {
            let key_file = files.ssh_key_file.clone().ok_or_else(|| {
                format!(
                    "GatewaySync {} uses ssh auth, but GIT_SSH_KEY_FILE is not set (mount the Secret {} and point GIT_SSH_KEY_FILE at it)",
                    config.cr_name,
                    secret_name(metadata)
                )
            })?;
            let known_hosts_file = files.known_hosts_file.clone();
            if known_hosts_file.is_none() && metadata.auth.known_hosts.is_some() {
                return Err(format!(
                    "GatewaySync {} sets sshKey.knownHosts, but GIT_KNOWN_HOSTS_FILE is not set",
                    config.cr_name
                ));
            }
            Ok(GitAuth::SshKey {
                accept_unknown_host_keys: known_hosts_file.is_none(),
                key_file,
                known_hosts_file,
            })
        }
    }
}

fn secret_name(metadata: &AgentMetadata) -> String {
    metadata
        .auth
        .secret
        .as_ref()
        .map_or_else(|| "?".to_owned(), |s| format!("{}/{}", s.name, s.key))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

    /// As the sidecar's environment gives it with only the required variables set.
    fn config() -> AgentConfig {
        AgentConfig {
            pod_name: "ignition-2".into(),
            pod_namespace: "plant".into(),
            cr_name: "site".into(),
            cr_namespace: "plant".into(),
            gateway_host: "127.0.0.1".into(),
            ..AgentConfig::default()
        }
    }

    fn metadata(spec: serde_json::Value) -> AgentMetadata {
        let spec: crate::GatewaySyncSpec = serde_json::from_value(spec).unwrap();
        AgentMetadata::from_spec("site", &spec, "main", COMMIT, Some(1))
    }

    fn two_profiles() -> AgentMetadata {
        metadata(serde_json::json!({
            "git": {"repo": "http://127.0.0.1/r.git", "ref": "main"},
            "sync": {"defaults": {"syncPeriod": 12},
                     "profiles": {"default": {"mappings": [{"source": "a", "destination": "b"}]},
                                  "edge": {"mappings": [{"source": "e", "destination": "b"}],
                                           "syncPeriod": 5, "dryRun": true}}}
        }))
    }

    fn pod() -> GatewayPod {
        GatewayPod {
            gateway_name: "blue".into(),
            pod_name: "ignition-2".into(),
            namespace: "plant".into(),
            pod_uid: Some("uid".into()),
            profile: None,
            service_account_name: "default".into(),
            sidecar_injected: true,
            inject_requested: true,
            ref_override: None,
            ordinal: 2,
            labels: BTreeMap::from([("site".to_owned(), "north".to_owned())]),
        }
    }

    fn inputs(metadata: AgentMetadata, pod: GatewayPod) -> Inputs {
        Inputs {
            metadata: Observed::Present(metadata),
            owner_uid: None,
            pod: Observed::Present(pod),
        }
    }

    fn desired(plan: Plan) -> Desired {
        match plan {
            Plan::Sync(desired) => *desired,
            other => panic!("expected a sync, got {other:?}"),
        }
    }

    #[test]
    fn the_default_profile_at_the_operators_commit() {
        let d = desired(plan(&config(), &inputs(two_profiles(), pod())));
        assert_eq!(d.profile.name, "default");
        assert_eq!(d.reference, "main");
        assert_eq!(d.pinned_commit.as_deref(), Some(COMMIT));
        assert_eq!(d.gateway_url, "http://127.0.0.1:8088");
        assert_eq!(
            d.sync_period,
            Duration::from_secs(12),
            "the defaults' syncPeriod"
        );
        assert_eq!(d.context.gateway_name.as_deref(), Some("blue"));
        assert_eq!(d.context.pod_ordinal.as_deref(), Some("2"));
        assert_eq!(d.context.labels["site"], "north");
        assert_eq!(d.context.cr_name.as_deref(), Some("site"));
        assert_eq!(d.auth, GitAuth::None);
        assert!(!d.dry_run);
    }

    #[test]
    fn the_annotation_wins_over_the_environment_and_changes_the_plan() {
        let mut config = config();
        config.profile = Some("default".into());
        let mut annotated = pod();
        annotated.profile = Some("edge".into());
        let d = desired(plan(&config, &inputs(two_profiles(), annotated)));
        assert_eq!(d.profile.name, "edge");
        assert!(d.dry_run);
        assert_eq!(d.sync_period, Duration::from_secs(5));
        let before = desired(plan(&config, &inputs(two_profiles(), pod())));
        assert_ne!(before, d);
    }

    #[test]
    fn labels_and_overrides_change_the_plan() {
        let base = desired(plan(&config(), &inputs(two_profiles(), pod())));
        let mut relabelled = pod();
        relabelled.labels.insert("site".into(), "south".into());
        assert_ne!(
            desired(plan(&config(), &inputs(two_profiles(), relabelled))),
            base
        );
        let mut pinned = pod();
        pinned.ref_override = Some("v1.2.0".into());
        let d = desired(plan(&config(), &inputs(two_profiles(), pinned)));
        assert_eq!(d.reference, "v1.2.0");
        assert!(d.is_override());
        // A status-only pod change plans the same sync.
        assert_eq!(
            desired(plan(&config(), &inputs(two_profiles(), pod()))),
            base
        );
    }

    #[test]
    fn waiting_invalid_and_paused() {
        let config = config();
        let mut missing = inputs(two_profiles(), pod());
        missing.metadata = Observed::Missing;
        assert!(
            matches!(plan(&config, &missing), Plan::Wait(m) if m.contains("stoker-metadata-site"))
        );
        let mut no_pod = inputs(two_profiles(), pod());
        no_pod.pod = Observed::Unknown;
        assert!(matches!(plan(&config, &no_pod), Plan::Starting(_)));
        no_pod.pod = Observed::Missing;
        assert!(matches!(plan(&config, &no_pod), Plan::Wait(m) if m.contains("ignition-2")));

        let mut unknown = pod();
        unknown.profile = Some("nope".into());
        match plan(&config, &inputs(two_profiles(), unknown)) {
            Plan::Invalid(attempt) => {
                assert!(attempt.message.contains("\"nope\""), "{}", attempt.message);
                assert!(
                    attempt.message.contains("default, edge"),
                    "{}",
                    attempt.message
                );
                assert_eq!(attempt.commit.as_deref(), Some(COMMIT));
            }
            other => panic!("{other:?}"),
        }

        let mut paused = two_profiles();
        paused.paused = true;
        assert!(
            matches!(plan(&config, &inputs(paused, pod())), Plan::Paused(a) if a.message.contains("spec.paused"))
        );
    }

    #[test]
    fn several_profiles_without_a_default_need_a_choice() {
        let metadata = metadata(serde_json::json!({
            "git": {"repo": "r", "ref": "main"},
            "sync": {"profiles": {"a": {}, "b": {}}}
        }));
        assert!(
            matches!(plan(&config(), &inputs(metadata, pod())), Plan::Invalid(a) if a.message.contains("stoker.io/profile"))
        );
    }

    #[test]
    fn git_auth_follows_the_metadata_and_needs_its_file() {
        let token = metadata(serde_json::json!({
            "git": {"repo": "https://h/r.git", "ref": "main",
                    "auth": {"token": {"secretRef": {"name": "git", "key": "token"}}}},
            "sync": {"profiles": {"p": {}}}
        }));
        let error = match plan(&config(), &inputs(token.clone(), pod())) {
            Plan::Invalid(a) => a.message,
            other => panic!("{other:?}"),
        };
        assert!(
            error.contains("GIT_TOKEN_FILE") && error.contains("git/token"),
            "{error}"
        );
        let mut config = config();
        config.git.token_file = Some("/secrets/token".into());
        let d = desired(plan(&config, &inputs(token, pod())));
        assert_eq!(
            d.auth,
            GitAuth::Token {
                token_file: "/secrets/token".into()
            }
        );

        let ssh = metadata(serde_json::json!({
            "git": {"repo": "ssh://git@h/r.git", "ref": "main",
                    "auth": {"sshKey": {"secretRef": {"name": "s", "key": "id"}}}},
            "sync": {"profiles": {"p": {}}}
        }));
        config.git.ssh_key_file = Some("/secrets/id".into());
        let d = desired(plan(&config, &inputs(ssh, pod())));
        assert!(matches!(
            d.auth,
            GitAuth::SshKey {
                accept_unknown_host_keys: true,
                ..
            }
        ));
    }
}
