//! The GitHub App installation token the operator keeps for a `GatewaySync`'s agents.
//!
//! Agents never hold the App's private key. For a resource with `spec.git.auth.githubApp`, the
//! operator exchanges the key (from `privateKeySecretRef`) for an installation token and keeps
//! it in the Secret [`github_token_secret_name`] (`stoker-github-token-{cr}`), which the
//! injector mounts into the agent at `/etc/stoker/git-token`. The Secret ([`token_secret`]):
//!
//! - `type: Opaque`, the token under the key [`GITHUB_TOKEN_KEY`] (`token`);
//! - annotations [`SECRET_TYPE`] `=` [`SECRET_TYPE_GITHUB_APP_TOKEN`], [`TOKEN_EXPIRES_AT`]
//!   (RFC 3339) and [`GITHUB_APP_INSTALLATION`] (which App installation the token is for, so a
//!   spec that names another one gets a new token at once);
//! - labels `stoker.io/gatewaysync: <cr>` and `app.kubernetes.io/managed-by: stoker-operator`;
//! - a controller owner reference to the resource, so it goes with it.
//!
//! A token is replaced once it expires within the refresh margin (10 minutes by default; GitHub's
//! tokens live an hour) and is otherwise left alone: every write makes the kubelet update the
//! volume of every gateway pod, so a fresh token is never rewritten.
//!
//! ```
//! use jiff::{SignedDuration, Timestamp};
//! use stoker_k8s::github_token::{StoredToken, DEFAULT_REFRESH_MARGIN};
//! let now: Timestamp = "2026-01-01T12:00:00Z".parse().unwrap();
//! let token = StoredToken {
//!     token: "ghs_x".into(),
//!     expires_at: now + SignedDuration::from_mins(55),
//! };
//! assert!(token.is_fresh(now, DEFAULT_REFRESH_MARGIN));
//! assert_eq!(token.refresh_in(now, DEFAULT_REFRESH_MARGIN).as_secs(), 45 * 60);
//! assert!(!token.is_fresh(now + SignedDuration::from_mins(46), DEFAULT_REFRESH_MARGIN));
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{DeleteParams, ObjectMeta, Patch, PatchParams, Preconditions};
use kube::{Api, ResourceExt};
use stoker_core::git::GithubApp;

use crate::annotations::{LABEL_GATEWAYSYNC, MANAGED_BY_LABEL, MANAGED_BY_OPERATOR, label_value};
use crate::crd::{GatewaySync, GithubAppSpec};
use crate::credentials;
use crate::error::{Error, Result};
pub use crate::metadata::{GITHUB_TOKEN_KEY, github_token_secret_name};

/// Annotation naming what an operator-written Secret holds.
pub const SECRET_TYPE: &str = "stoker.io/secret-type";
/// [`SECRET_TYPE`] of the token Secret.
pub const SECRET_TYPE_GITHUB_APP_TOKEN: &str = "github-app-token";
/// Annotation: when the token expires, RFC 3339 (`2026-01-01T13:00:00Z`).
pub const TOKEN_EXPIRES_AT: &str = "stoker.io/token-expires-at";
/// Annotation: the App installation the token is for ([`installation_of`]).
pub const GITHUB_APP_INSTALLATION: &str = "stoker.io/github-app-installation";

/// A token is replaced once it expires within this margin.
pub const DEFAULT_REFRESH_MARGIN: Duration = Duration::from_secs(10 * 60);

/// The App installation a spec names, in stoker-core's terms (`https://api.github.com` unless
/// `apiBaseURL` says otherwise).
pub fn github_app(spec: &GithubAppSpec) -> GithubApp {
    let app = GithubApp::new(spec.app_id.to_string(), spec.installation_id);
    match &spec.api_base_url {
        Some(url) => app.with_api_base_url(url.clone()),
        None => app,
    }
}

/// Which App installation a token is for: `{appId}/{installationId}@{apiBaseURL}`.
///
/// ```
/// use stoker_core::git::GithubApp;
/// assert_eq!(
///     stoker_k8s::github_token::installation_of(&GithubApp::new("12", 34)),
///     "12/34@https://api.github.com"
/// );
/// ```
pub fn installation_of(app: &GithubApp) -> String {
    format!(
        "{}/{}@{}",
        app.app_id,
        app.installation_id,
        app.api_base_url.trim_end_matches('/')
    )
}

/// A token and its expiry, as kept in the Secret. `{:?}` does not show the token.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredToken {
    /// The installation token.
    pub token: String,
    /// When GitHub stops accepting it.
    pub expires_at: Timestamp,
}

impl std::fmt::Debug for StoredToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredToken")
            .field("token", &"***")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

impl StoredToken {
    /// True while it does not need replacing: it expires later than `margin` after `now`.
    pub fn is_fresh(&self, now: Timestamp, margin: Duration) -> bool {
        self.refresh_in(now, margin) > Duration::ZERO
    }

    /// True while GitHub still accepts it.
    pub fn is_valid(&self, now: Timestamp) -> bool {
        now < self.expires_at
    }

    /// How long until it is due for replacement (zero when it is due).
    pub fn refresh_in(&self, now: Timestamp, margin: Duration) -> Duration {
        let margin = SignedDuration::try_from(margin).unwrap_or(SignedDuration::MAX);
        let left = self.expires_at.duration_since(now).saturating_sub(margin);
        Duration::try_from(left).unwrap_or(Duration::ZERO)
    }
}

/// The token in `secret` when it is one the operator wrote for `app`, with a readable expiry.
pub fn stored_token(secret: &Secret, app: &GithubApp) -> Option<StoredToken> {
    let annotations = secret.metadata.annotations.as_ref()?;
    if annotations.get(SECRET_TYPE).map(String::as_str) != Some(SECRET_TYPE_GITHUB_APP_TOKEN)
        || annotations.get(GITHUB_APP_INSTALLATION) != Some(&installation_of(app))
    {
        return None;
    }
    let expires_at = annotations.get(TOKEN_EXPIRES_AT)?.parse().ok()?;
    let ByteString(bytes) = secret.data.as_ref()?.get(GITHUB_TOKEN_KEY)?;
    let token = String::from_utf8(bytes.clone()).ok()?;
    (!token.is_empty()).then_some(StoredToken { token, expires_at })
}

/// True when `secret` is a token Secret the operator wrote for `owner` (its annotation, and a
/// controller owner reference to exactly this resource): one it may delete.
pub fn is_token_secret_of(secret: &Secret, owner: &GatewaySync) -> bool {
    let typed = secret
        .annotations()
        .get(SECRET_TYPE)
        .is_some_and(|value| value == SECRET_TYPE_GITHUB_APP_TOKEN);
    let owned = owner.uid().is_some_and(|uid| {
        secret
            .owner_references()
            .iter()
            .any(|reference| reference.uid == uid && reference.controller == Some(true))
    });
    typed && owned
}

/// The Secret `stoker-github-token-{cr}` holding `token` for `owner`'s agents (see the module
/// documentation for its shape).
///
/// # Errors
///
/// [`Error::MissingUid`] when `owner` was not read from the API server.
pub fn token_secret(owner: &GatewaySync, app: &GithubApp, token: &StoredToken) -> Result<Secret> {
    let name = owner.name_any();
    let owner_ref = owner.controller_ref()?;
    Ok(Secret {
        metadata: ObjectMeta {
            name: Some(github_token_secret_name(&name)),
            namespace: owner.namespace(),
            labels: Some(BTreeMap::from([
                (LABEL_GATEWAYSYNC.to_owned(), label_value(&name)),
                (MANAGED_BY_LABEL.to_owned(), MANAGED_BY_OPERATOR.to_owned()),
            ])),
            annotations: Some(BTreeMap::from([
                (
                    SECRET_TYPE.to_owned(),
                    SECRET_TYPE_GITHUB_APP_TOKEN.to_owned(),
                ),
                (TOKEN_EXPIRES_AT.to_owned(), token.expires_at.to_string()),
                (GITHUB_APP_INSTALLATION.to_owned(), installation_of(app)),
            ])),
            owner_references: Some(vec![owner_ref]),
            ..ObjectMeta::default()
        },
        type_: Some("Opaque".to_owned()),
        data: Some(BTreeMap::from([(
            GITHUB_TOKEN_KEY.to_owned(),
            ByteString(token.token.clone().into_bytes()),
        )])),
        ..Secret::default()
    })
}

/// What [`keep`] leaves the agents with.
#[derive(Debug)]
pub(crate) struct Kept {
    /// The unexpired token in the Secret now, if there is one.
    pub usable: Option<StoredToken>,
    /// A new token was written.
    pub refreshed: bool,
    /// Why a replacement that was due did not happen (the Secret is left as it was).
    pub failure: Option<Error>,
}

/// Keeps `owner`'s token Secret for `spec`: reads it, and when its token is not fresh for
/// `margin`, exchanges the App's key for a new one (off the async executor) and applies it.
pub(crate) async fn keep(
    owner: &GatewaySync,
    spec: &GithubAppSpec,
    secrets: &Api<Secret>,
    margin: Duration,
    field_manager: &str,
) -> Kept {
    let app = github_app(spec);
    let name = github_token_secret_name(&owner.name_any());
    let stored = match secrets.get_opt(&name).await {
        Ok(secret) => secret.and_then(|secret| stored_token(&secret, &app)),
        Err(source) => return failed(None, Error::kube("reading Secret", &name, source)),
    };
    let now = Timestamp::now();
    let usable = stored.filter(|token| token.is_valid(now));
    if let Some(token) = &usable
        && token.is_fresh(now, margin)
    {
        return Kept {
            usable,
            refreshed: false,
            failure: None,
        };
    }
    let token = match exchange(&app, spec, owner, secrets).await {
        Ok(token) => token,
        Err(error) => return failed(usable, error),
    };
    let secret = match token_secret(owner, &app, &token) {
        Ok(secret) => secret,
        Err(error) => return failed(usable, error),
    };
    if let Err(source) = secrets
        .patch(
            &name,
            &PatchParams::apply(field_manager).force(),
            &Patch::Apply(&secret),
        )
        .await
    {
        return failed(usable, Error::kube("writing Secret", &name, source));
    }
    Kept {
        usable: Some(token),
        refreshed: true,
        failure: None,
    }
}

fn failed(usable: Option<StoredToken>, error: Error) -> Kept {
    Kept {
        usable,
        refreshed: false,
        failure: Some(error),
    }
}

/// Reads the App's private key and exchanges it for a new token, on a blocking thread (the
/// exchange is a blocking HTTP call).
async fn exchange(
    app: &GithubApp,
    spec: &GithubAppSpec,
    owner: &GatewaySync,
    secrets: &Api<Secret>,
) -> Result<StoredToken> {
    let pem = credentials::secret_value(secrets, &spec.private_key_secret_ref).await?;
    let exchanging = app.clone();
    let issued = tokio::task::spawn_blocking(move || exchanging.installation_token(&pem))
        .await
        .map_err(|source| Error::Blocking {
            what: "the GitHub App token exchange",
            source,
        })?
        .map_err(|source| Error::GithubAppExchange {
            name: owner.name_any(),
            source: Box::new(source),
        })?;
    // An expiry jiff cannot represent (beyond year 9999) is taken as "now": replaced at once.
    let expires_at = Timestamp::try_from(issued.expires_at()).unwrap_or_else(|_| Timestamp::now());
    Ok(StoredToken {
        token: issued.token().to_owned(),
        expires_at,
    })
}

/// Deletes `owner`'s token Secret if there is one the operator wrote for it
/// ([`is_token_secret_of`]); true when it did.
pub(crate) async fn remove(owner: &GatewaySync, secrets: &Api<Secret>) -> Result<bool> {
    let name = github_token_secret_name(&owner.name_any());
    let secret = match secrets.get_opt(&name).await {
        Ok(Some(secret)) => secret,
        Ok(None) => return Ok(false),
        // [`keep`] reads the Secret before it writes one, so an operator that may not read it
        // never wrote it: nothing of ours to delete. (An operator given read access only to
        // the Secrets its resources name must not fail every resource without an App.)
        Err(kube::Error::Api(status)) if status.code == 403 => return Ok(false),
        Err(source) => return Err(Error::kube("reading Secret", &name, source)),
    };
    if !is_token_secret_of(&secret, owner) {
        return Ok(false);
    }
    // Exactly the object looked at: not one recreated under the same name since.
    let params = DeleteParams {
        preconditions: Some(Preconditions {
            uid: secret.uid(),
            resource_version: secret.resource_version(),
        }),
        ..DeleteParams::default()
    };
    match secrets.delete(&name, &params).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(false),
        Err(source) => Err(Error::kube("deleting Secret", &name, source)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gatewaysync(uid: Option<&str>) -> GatewaySync {
        let mut gs: GatewaySync = serde_json::from_value(serde_json::json!({
            "apiVersion": "stoker.io/v1alpha1",
            "kind": "GatewaySync",
            "metadata": {"name": "site", "namespace": "plant"},
            "spec": {
                "git": {"repo": "https://github.com/o/r.git", "ref": "main",
                        "auth": {"githubApp": {"appId": 12, "installationId": 34,
                                 "privateKeySecretRef": {"name": "app", "key": "key.pem"}}}},
                "sync": {"profiles": {}}
            }
        }))
        .unwrap();
        gs.metadata.uid = uid.map(str::to_owned);
        gs
    }

    fn app_of(gs: &GatewaySync) -> GithubApp {
        let auth = gs.spec.git.auth.as_ref().unwrap();
        github_app(auth.github_app.as_ref().unwrap())
    }

    fn token(expires_at: &str) -> StoredToken {
        StoredToken {
            token: "ghs_abc".to_owned(),
            expires_at: expires_at.parse().unwrap(),
        }
    }

    #[test]
    fn the_secret_has_the_name_key_annotations_and_owner_agents_and_humans_expect() {
        let gs = gatewaysync(Some("uid-1"));
        let app = app_of(&gs);
        let secret = token_secret(&gs, &app, &token("2026-01-01T13:00:00Z")).unwrap();
        assert_eq!(
            secret.metadata.name.as_deref(),
            Some("stoker-github-token-site")
        );
        assert_eq!(secret.metadata.namespace.as_deref(), Some("plant"));
        assert_eq!(secret.type_.as_deref(), Some("Opaque"));
        assert_eq!(
            secret.data.as_ref().unwrap()["token"],
            ByteString(b"ghs_abc".to_vec())
        );
        let annotations = secret.annotations();
        assert_eq!(annotations["stoker.io/secret-type"], "github-app-token");
        assert_eq!(
            annotations["stoker.io/token-expires-at"],
            "2026-01-01T13:00:00Z"
        );
        assert_eq!(
            annotations["stoker.io/github-app-installation"],
            "12/34@https://api.github.com"
        );
        assert_eq!(secret.labels()["stoker.io/gatewaysync"], "site");
        let owner = &secret.owner_references()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.name.as_str(), owner.uid.as_str()),
            ("GatewaySync", "site", "uid-1")
        );
        assert_eq!(owner.controller, Some(true));
        assert!(!format!("{:?}", token("2026-01-01T13:00:00Z")).contains("ghs_"));
    }

    #[test]
    fn a_written_token_reads_back_for_the_same_installation_only() {
        let gs = gatewaysync(Some("uid-1"));
        let app = app_of(&gs);
        let written = token("2026-01-01T13:00:00Z");
        let secret = token_secret(&gs, &app, &written).unwrap();
        assert_eq!(stored_token(&secret, &app), Some(written));
        assert_eq!(stored_token(&secret, &GithubApp::new("12", 35)), None);
        let enterprise = app.clone().with_api_base_url("https://ghe.example/api/v3");
        assert_eq!(stored_token(&secret, &enterprise), None);
        let mut unreadable = secret.clone();
        unreadable
            .metadata
            .annotations
            .as_mut()
            .unwrap()
            .insert(TOKEN_EXPIRES_AT.to_owned(), "soon".to_owned());
        assert_eq!(stored_token(&unreadable, &app), None);
        assert_eq!(stored_token(&Secret::default(), &app), None);
    }

    #[test]
    fn refresh_is_due_within_the_margin_and_validity_ends_at_expiry() {
        let stored = token("2026-01-01T13:00:00Z");
        let at = |text: &str| text.parse::<Timestamp>().unwrap();
        let margin = DEFAULT_REFRESH_MARGIN;
        assert!(stored.is_fresh(at("2026-01-01T12:49:59Z"), margin));
        assert_eq!(
            stored.refresh_in(at("2026-01-01T12:49:59Z"), margin),
            Duration::from_secs(1)
        );
        assert!(!stored.is_fresh(at("2026-01-01T12:50:00Z"), margin));
        assert!(stored.is_valid(at("2026-01-01T12:59:59Z")));
        assert!(!stored.is_valid(at("2026-01-01T13:00:00Z")));
        assert_eq!(
            stored.refresh_in(at("2026-01-01T14:00:00Z"), margin),
            Duration::ZERO
        );
    }

    #[test]
    fn only_the_owners_own_token_secret_may_be_deleted() {
        let gs = gatewaysync(Some("uid-1"));
        let secret = token_secret(&gs, &app_of(&gs), &token("2026-01-01T13:00:00Z")).unwrap();
        assert!(is_token_secret_of(&secret, &gs));
        assert!(!is_token_secret_of(&secret, &gatewaysync(Some("uid-2"))));
        let mut unmarked = secret.clone();
        unmarked.metadata.annotations = None;
        assert!(!is_token_secret_of(&unmarked, &gs));
        assert!(matches!(
            token_secret(
                &gatewaysync(None),
                &app_of(&gs),
                &token("2026-01-01T13:00:00Z")
            ),
            Err(Error::MissingUid { .. })
        ));
    }
}
