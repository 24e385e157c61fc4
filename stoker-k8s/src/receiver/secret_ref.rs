//! Telling the user when `spec.webhook.secretRef` cannot be used. Without this, a missing
//! Secret or key only shows as every request relying on it being refused (401), with nothing
//! on the resource saying why: the receiver must answer the same 401 whatever exists, so it
//! cannot say it to the caller. The controller says it to the owner instead, as the condition
//! [`WEBHOOK_SECRET_READY`] (and a `WebhookSecretMissing` Warning Event when it turns `False`).

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::Api;

use crate::annotations::is_object_name;
use crate::conditions::{self, Status};
use crate::crd::{GatewaySyncSpec, WebhookSecretRef};

/// `True` while `spec.webhook.secretRef` names a Secret and key holding a value; `False`
/// (`SecretNotFound`, `KeyNotFound`, `SecretUnreadable`) naming the Secret and key otherwise.
/// Absent without `spec.webhook.secretRef` (ours). It does not affect `Ready`: polling and the
/// operator's own receiver secrets still work.
pub const WEBHOOK_SECRET_READY: &str = "WebhookSecretReady";

/// Reasons of [`WEBHOOK_SECRET_READY`].
pub mod reasons {
    /// The Secret has the key, with a value.
    pub const SECRET_FOUND: &str = "SecretFound";
    /// No Secret of that name in the namespace.
    pub const SECRET_NOT_FOUND: &str = "SecretNotFound";
    /// The Secret has no such key, or its value is empty.
    pub const KEY_NOT_FOUND: &str = "KeyNotFound";
    /// The Secret could not be read (the API server's error is logged).
    pub const SECRET_UNREADABLE: &str = "SecretUnreadable";
}

/// What reading `spec.webhook.secretRef` found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretLookup {
    /// The key holds a value.
    Found,
    /// No such Secret.
    SecretMissing,
    /// The Secret lacks the key, or its value is empty.
    KeyMissing,
    /// Reading it failed.
    Unreadable,
}

/// The condition for `reference` given what reading it found.
///
/// ```
/// use stoker_k8s::crd::WebhookSecretRef;
/// use stoker_k8s::receiver::secret_ref::{SecretLookup, webhook_secret_condition};
/// let reference = WebhookSecretRef { name: "hooks".into(), key: "webhook-secret".into() };
/// let c = webhook_secret_condition(&reference, SecretLookup::SecretMissing, 1, jiff::Timestamp::UNIX_EPOCH);
/// assert_eq!((c.status.as_str(), c.reason.as_str()), ("False", "SecretNotFound"));
/// ```
pub fn webhook_secret_condition(
    reference: &WebhookSecretRef,
    lookup: SecretLookup,
    generation: i64,
    now: Timestamp,
) -> Condition {
    let (name, key) = (&reference.name, &reference.key);
    let refused = "requests for this resource signed with it are refused (401)";
    let (status, reason, message) = match lookup {
        SecretLookup::Found => (
            Status::True,
            reasons::SECRET_FOUND,
            format!("spec.webhook.secretRef: Secret {name:?} key {key:?} is set"),
        ),
        SecretLookup::SecretMissing => (
            Status::False,
            reasons::SECRET_NOT_FOUND,
            format!(
                "spec.webhook.secretRef: Secret {name:?} not found in the namespace; {refused}"
            ),
        ),
        SecretLookup::KeyMissing => (
            Status::False,
            reasons::KEY_NOT_FOUND,
            format!(
                "spec.webhook.secretRef: Secret {name:?} has no key {key:?} (or it is empty); {refused}"
            ),
        ),
        SecretLookup::Unreadable => (
            Status::False,
            reasons::SECRET_UNREADABLE,
            format!("spec.webhook.secretRef: Secret {name:?} could not be read; {refused}"),
        ),
    };
    conditions::new(
        WEBHOOK_SECRET_READY,
        status,
        reason,
        message,
        generation,
        now,
    )
}

/// Reads `spec.webhook.secretRef` from `secrets` and sets [`WEBHOOK_SECRET_READY`] in
/// `conditions` (removes it when the spec has no secretRef). Never fails: a read error is
/// the condition's `SecretUnreadable`.
pub async fn update_condition(
    spec: &GatewaySyncSpec,
    secrets: &Api<Secret>,
    conditions: &mut Vec<Condition>,
    generation: i64,
    now: Timestamp,
) {
    let Some(reference) = spec.webhook.as_ref().and_then(|w| w.secret_ref.as_ref()) else {
        conditions::remove(conditions, WEBHOOK_SECRET_READY);
        return;
    };
    let lookup = lookup(reference, secrets).await;
    conditions::set(
        conditions,
        webhook_secret_condition(reference, lookup, generation, now),
    );
}

async fn lookup(reference: &WebhookSecretRef, secrets: &Api<Secret>) -> SecretLookup {
    // A name no object can have is simply not found (and must not reach a URL).
    if !is_object_name(&reference.name) {
        return SecretLookup::SecretMissing;
    }
    match secrets.get_opt(&reference.name).await {
        Ok(None) => SecretLookup::SecretMissing,
        Ok(Some(secret)) => {
            let has_value = secret
                .data
                .as_ref()
                .and_then(|data| data.get(&reference.key))
                .is_some_and(|value| !value.0.is_empty());
            if has_value {
                SecretLookup::Found
            } else {
                SecretLookup::KeyMissing
            }
        }
        Err(error) => {
            tracing::warn!(secret = %reference.name, %error, "reading spec.webhook.secretRef");
            SecretLookup::Unreadable
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_lookup_names_the_secret_and_key() {
        let reference = WebhookSecretRef {
            name: "hooks".into(),
            key: "token".into(),
        };
        let at = Timestamp::UNIX_EPOCH;
        let found = webhook_secret_condition(&reference, SecretLookup::Found, 3, at);
        assert_eq!(
            (found.status.as_str(), found.reason.as_str()),
            ("True", "SecretFound")
        );
        assert_eq!(found.observed_generation, Some(3));
        for (lookup, reason) in [
            (SecretLookup::SecretMissing, "SecretNotFound"),
            (SecretLookup::KeyMissing, "KeyNotFound"),
            (SecretLookup::Unreadable, "SecretUnreadable"),
        ] {
            let c = webhook_secret_condition(&reference, lookup, 3, at);
            assert_eq!((c.status.as_str(), c.reason.as_str()), ("False", reason));
            assert!(c.message.contains("\"hooks\""), "{}", c.message);
            assert!(c.message.contains("(401)"), "{}", c.message);
        }
        let key = webhook_secret_condition(&reference, SecretLookup::KeyMissing, 3, at);
        assert!(key.message.contains("no key \"token\""), "{}", key.message);
    }
}
