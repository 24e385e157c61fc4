//! The crate's one error type.

/// Everything that can go wrong in stoker-k8s's pure logic: reading the ConfigMap protocol,
/// building owned objects, parsing durations, generating the CRD.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A ConfigMap of the controller ↔ agent protocol lacks a required key.
    #[error("ConfigMap {configmap}: missing key {key:?}")]
    MissingKey {
        /// The ConfigMap's name.
        configmap: String,
        /// The missing key.
        key: &'static str,
    },
    /// A ConfigMap key holds a value that does not parse.
    #[error("ConfigMap {configmap}: key {key:?} = {value:?}: {message}")]
    InvalidValue {
        /// The ConfigMap's name.
        configmap: String,
        /// The key.
        key: &'static str,
        /// The value found.
        value: String,
        /// What is wrong with it.
        message: String,
    },
    /// A ConfigMap key holds JSON that does not parse as the expected type.
    #[error("ConfigMap {configmap}: key {key:?} is not valid JSON for its type")]
    InvalidJson {
        /// The ConfigMap's name.
        configmap: String,
        /// The key.
        key: &'static str,
        /// The parser's error.
        #[source]
        source: serde_json::Error,
    },
    /// An entry of stoker-operator v0.5.1's shared status ConfigMap `stoker-status-{cr}` that
    /// cannot be read ([`crate::legacy_status`]).
    #[error("ConfigMap {configmap}: entry {key:?}: {problem}")]
    InvalidLegacyStatus {
        /// The ConfigMap's name.
        configmap: String,
        /// The entry's key (a gateway or pod name).
        key: String,
        /// What is wrong with it.
        problem: String,
        /// The JSON parser's error, when the value is not JSON of the expected shape.
        #[source]
        source: Option<serde_json::Error>,
    },
    /// A value could not be serialised to JSON.
    #[error("serialising {what} to JSON")]
    Serialize {
        /// What was being serialised.
        what: &'static str,
        /// The serialiser's error.
        #[source]
        source: serde_json::Error,
    },
    /// An object needed as an owner has no `metadata.uid` (it was not read from the API server).
    #[error(
        "{kind} {name:?} has no metadata.uid; read it from the API server before owning objects with it"
    )]
    MissingUid {
        /// The owner's kind.
        kind: &'static str,
        /// The owner's name.
        name: String,
    },
    /// A request to the webhook receiver that is not a push event Stoker can read.
    #[error("{sender} push event: {message}")]
    PushPayload {
        /// The host that sent it (`github`, `gitlab`, …), or `unknown`.
        sender: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// A Go duration string (`30s`, `5m`, `1h30m`) that does not parse.
    #[error("invalid duration {value:?}: {message}")]
    InvalidDuration {
        /// The string.
        value: String,
        /// What is wrong with it.
        message: &'static str,
    },
    /// The CRD could not be rendered as YAML.
    #[error("rendering the CustomResourceDefinition as YAML")]
    CrdYaml(#[source] serde_yaml::Error),
    /// The CRD could not be turned into or read back from JSON.
    #[error("converting the CustomResourceDefinition to JSON")]
    CrdJson(#[source] serde_json::Error),
    /// A Kubernetes API call failed.
    #[error("{action} {name}")]
    Kube {
        /// What was being done (`listing Pods`, `writing ConfigMap`).
        action: &'static str,
        /// The object (or namespace) concerned.
        name: String,
        /// The client's error.
        #[source]
        source: kube::Error,
    },
    /// A Secret the spec references is missing, or lacks the key.
    #[error("Secret {name:?} does not exist or has no key {key:?}")]
    MissingSecret {
        /// The Secret's name.
        name: String,
        /// The key.
        key: String,
    },
    /// The source (Git) failed: resolving the ref, authenticating, reaching the server.
    #[error(transparent)]
    Source(Box<stoker_core::Error>),
    /// Exchanging a GitHub App's private key for an installation token failed (the resource's
    /// name; stoker-core's error says why and whether it is worth retrying).
    #[error("GitHub App installation token for GatewaySync {name}")]
    GithubAppExchange {
        /// The `GatewaySync`'s name.
        name: String,
        /// The exchange's error.
        #[source]
        source: Box<stoker_core::Error>,
    },
    /// A `githubApp` resource has no unexpired installation token: the exchange failed and the
    /// token Secret holds none.
    #[error("no usable GitHub App installation token: {reason}")]
    GithubAppTokenUnavailable {
        /// Why (the exchange's failure).
        reason: String,
    },
    /// Work handed to a blocking thread did not finish (it panicked or the runtime is shutting
    /// down).
    #[error("{what}: the blocking task did not finish")]
    Blocking {
        /// What the task was doing.
        what: &'static str,
        /// The join error.
        #[source]
        source: tokio::task::JoinError,
    },
    /// Adding or removing the finalizer failed, or the reconciliation inside it did.
    #[error("finalizer {}", crate::annotations::FINALIZER)]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<Error>>),
    /// A `GatewaySync` without a namespace (it is a namespaced resource).
    #[error("GatewaySync {name:?} has no namespace")]
    NotNamespaced {
        /// The resource's name.
        name: String,
    },
    /// The probe and metrics server could not listen.
    #[error("listening on {address}")]
    Serve {
        /// The address.
        address: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// Reading or writing a file (the CRD file of the Helm chart).
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Making or reading the webhooks' certificates failed.
    #[error("webhook certificate: {message}")]
    Certificate {
        /// What went wrong.
        message: String,
    },
    /// A certificate and key that rustls cannot serve.
    #[error("webhook TLS: {what}")]
    Tls {
        /// What was being loaded.
        what: String,
        /// rustls' error.
        #[source]
        source: rustls::Error,
    },
    /// An API call that got no answer in time (the leader election bounds each round by its
    /// renew deadline).
    #[error("{what}: no answer within {after:?}")]
    Timeout {
        /// What was being done.
        what: String,
        /// How long it was given.
        after: std::time::Duration,
    },
}

impl Error {
    /// A failed Kubernetes API call: what was done, to which object.
    pub fn kube(action: &'static str, name: impl Into<String>, source: kube::Error) -> Self {
        Error::Kube {
            action,
            name: name.into(),
            source,
        }
    }

    /// A failed file operation.
    pub fn io(path: impl Into<std::path::PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// True for failures worth retrying soon without any change: the API server or the Git
    /// server unreachable or answering 5xx.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Kube { source, .. } => match source {
                kube::Error::Api(status) => status.code >= 500 || status.code == 429,
                _ => true,
            },
            Error::Source(error) => error.git_kind().is_some_and(|kind| kind.is_transient()),
            Error::GithubAppExchange { source, .. } => source
                .github_app_kind()
                .is_some_and(|kind| kind.is_transient()),
            Error::Blocking { .. } => true,
            Error::Finalizer(_) => true,
            Error::Timeout { .. } => true,
            _ => false,
        }
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_finalizer_error_shows_what_failed() {
        let error = Error::Finalizer(Box::new(kube::runtime::finalizer::Error::ApplyFailed(
            Error::MissingSecret {
                name: "git".into(),
                key: "token".into(),
            },
        )));
        assert_eq!(error.to_string(), "finalizer stoker.io/finalizer");
        assert_eq!(
            stoker_core::error::chain(&error),
            "finalizer stoker.io/finalizer: failed to apply object: Secret \"git\" does not exist or has no key \"token\""
        );
    }
}
