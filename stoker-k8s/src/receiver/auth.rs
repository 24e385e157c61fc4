//! Who may call the receiver: the checks run on the raw body and headers before anything is
//! looked up, so an unauthenticated caller learns nothing (not even whether a GatewaySync
//! exists).
//!
//! A request passes when no secret is configured (as in stoker-operator v0.5.1: then any client
//! that reaches the port may trigger a resolve), or when one credential it carries matches one
//! configured secret:
//!
//! | header | sent by | checked against |
//! |---|---|---|
//! | `X-Hub-Signature-256: sha256=HEX` | GitHub, Gitea, Forgejo, Bitbucket Server, v0.5.1 callers | HMAC-SHA256 of the body with an HMAC secret |
//! | `X-Hub-Signature: sha256=HEX` | Bitbucket Cloud | the same |
//! | `X-Gitea-Signature: HEX` | Gitea, Forgejo | the same |
//! | `X-Gitlab-Token: SECRET` | GitLab | a token |
//! | `Authorization: Bearer TOKEN` | Kargo, scripts | a token |
//! | `Authorization: Basic …` (any user) | Azure DevOps service hooks | a token, as the password |
//!
//! Every comparison takes the same time whatever the bytes (aws-lc's HMAC verification and
//! constant-time comparison), so timing does not reveal how much of a guess was right.

use aws_lc_rs::{constant_time, hmac};
use axum::http::HeaderMap;
use base64::Engine as _;

/// The secrets a request may prove it knows: the receiver's own and, for `/webhook/push`, those
/// of the GatewaySyncs the payload names.
#[derive(Debug, Clone, Default)]
pub struct Secrets {
    /// HMAC keys (`webhookReceiver.hmac`, a GatewaySync's `spec.webhook.secretRef`).
    pub hmac: Vec<Vec<u8>>,
    /// Tokens compared as they are (`webhookReceiver.token`, GitLab's secret token).
    pub tokens: Vec<Vec<u8>>,
}

impl Secrets {
    /// Whether no secret at all is configured (every request passes).
    pub fn is_empty(&self) -> bool {
        self.hmac.is_empty() && self.tokens.is_empty()
    }

    /// Whether a request with these `headers` and `body` passes.
    pub fn authorize(&self, headers: &HeaderMap, body: &[u8]) -> bool {
        if self.is_empty() {
            return true;
        }
        let signatures = signatures(headers);
        let signed = self.hmac.iter().any(|secret| {
            let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
            signatures
                .iter()
                .any(|tag| hmac::verify(&key, body, tag).is_ok())
        });
        if signed {
            return true;
        }
        let presented = tokens(headers);
        self.tokens.iter().any(|token| {
            presented
                .iter()
                .any(|given| constant_time::verify_slices_are_equal(token, given).is_ok())
        })
    }
}

/// The HMAC-SHA256 tags a request carries, decoded from hex (malformed ones are dropped: they
/// cannot match).
fn signatures(headers: &HeaderMap) -> Vec<Vec<u8>> {
    let prefixed = ["x-hub-signature-256", "x-hub-signature"]
        .into_iter()
        .flat_map(|name| headers.get_all(name))
        .filter_map(|value| value.to_str().ok()?.trim().strip_prefix("sha256="));
    let bare = headers
        .get_all("x-gitea-signature")
        .into_iter()
        .filter_map(|value| value.to_str().ok().map(str::trim));
    prefixed.chain(bare).filter_map(hex_decode).collect()
}

/// The tokens a request presents.
fn tokens(headers: &HeaderMap) -> Vec<Vec<u8>> {
    let gitlab = headers
        .get_all("x-gitlab-token")
        .into_iter()
        .map(|value| value.as_bytes().to_vec());
    let authorization = headers
        .get_all(axum::http::header::AUTHORIZATION)
        .into_iter()
        .filter_map(|value| authorization_token(value.to_str().ok()?));
    gitlab.chain(authorization).collect()
}

/// The token of `Bearer TOKEN`, or the password of `Basic base64(user:password)`.
fn authorization_token(value: &str) -> Option<Vec<u8>> {
    let (scheme, credentials) = value.trim().split_once(' ')?;
    let credentials = credentials.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        return Some(credentials.as_bytes().to_vec());
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(credentials)
            .ok()?;
        let colon = decoded.iter().position(|&b| b == b':')?;
        return Some(decoded[colon + 1..].to_vec());
    }
    None
}

fn hex_decode(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// `sha256=HEX` of `body` under `secret`: what a caller puts in `X-Hub-Signature-256` (for
/// tests and for tools that sign their own requests).
pub fn hub_signature(secret: &[u8], body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let tag = hmac::sign(&key, body);
    let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    fn secrets(hmac: &[&str], tokens: &[&str]) -> Secrets {
        Secrets {
            hmac: hmac.iter().map(|s| s.as_bytes().to_vec()).collect(),
            tokens: tokens.iter().map(|s| s.as_bytes().to_vec()).collect(),
        }
    }

    const BODY: &[u8] = br#"{"ref":"v2.0.0"}"#;

    #[test]
    fn github_signature_matches_the_documented_example() {
        // GitHub's documentation: secret "It's a Secret to Everybody", payload "Hello, World!".
        assert_eq!(
            hub_signature(b"It's a Secret to Everybody", b"Hello, World!"),
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
    }

    #[test]
    fn no_secret_configured_lets_everything_in() {
        assert!(Secrets::default().authorize(&HeaderMap::new(), BODY));
    }

    #[test]
    fn every_signature_header_form_passes_with_the_right_secret() {
        let s = secrets(&["other", "hook-secret"], &[]);
        let signature = hub_signature(b"hook-secret", BODY);
        let bare = signature.trim_start_matches("sha256=").to_owned();
        for h in [
            headers(&[("x-hub-signature-256", &signature)]),
            headers(&[("x-hub-signature", &signature)]),
            headers(&[("x-gitea-signature", &bare)]),
            headers(&[(
                "X-Hub-Signature-256",
                &signature.to_uppercase().replace("SHA256=", "sha256="),
            )]),
        ] {
            assert!(s.authorize(&h, BODY), "{h:?}");
        }
    }

    #[test]
    fn wrong_secret_wrong_body_or_malformed_signature_is_refused() {
        let s = secrets(&["hook-secret"], &[]);
        let signature = hub_signature(b"hook-secret", BODY);
        let refused = [
            headers(&[]),
            headers(&[("x-hub-signature-256", &hub_signature(b"guess", BODY))]),
            headers(&[(
                "x-hub-signature-256",
                signature.trim_start_matches("sha256="),
            )]),
            headers(&[("x-hub-signature-256", "sha256=zz")]),
            headers(&[("x-hub-signature-256", "sha256=abc")]),
            headers(&[("x-hub-signature-256", "sha1=0123")]),
            headers(&[("authorization", "Bearer hook-secret")]),
        ];
        for h in refused {
            assert!(!s.authorize(&h, BODY), "{h:?}");
        }
        let h = headers(&[("x-hub-signature-256", &signature)]);
        assert!(!s.authorize(&h, br#"{"ref":"v2.0.1"}"#), "a changed body");
    }

    #[test]
    fn tokens_pass_as_bearer_gitlab_token_or_basic_password() {
        let s = secrets(&[], &["t0ken"]);
        let basic = base64::engine::general_purpose::STANDARD.encode("azure:t0ken");
        for h in [
            headers(&[("authorization", "Bearer t0ken")]),
            headers(&[("authorization", "bearer  t0ken ")]),
            headers(&[("x-gitlab-token", "t0ken")]),
            headers(&[("authorization", &format!("Basic {basic}"))]),
        ] {
            assert!(s.authorize(&h, BODY), "{h:?}");
        }
        let wrong = base64::engine::general_purpose::STANDARD.encode("t0ken:nope");
        for h in [
            headers(&[("authorization", "Bearer t0ke")]),
            headers(&[("authorization", "Bearer t0ken2")]),
            headers(&[("authorization", "Token t0ken")]),
            headers(&[("authorization", &format!("Basic {wrong}"))]),
            headers(&[("authorization", "Basic !!!")]),
            headers(&[("x-gitlab-token", "T0KEN")]),
        ] {
            assert!(!s.authorize(&h, BODY), "{h:?}");
        }
    }

    #[test]
    fn either_method_may_authorize_when_both_are_configured() {
        let s = secrets(&["hook-secret"], &["t0ken"]);
        assert!(s.authorize(&headers(&[("authorization", "Bearer t0ken")]), BODY));
        let signature = hub_signature(b"hook-secret", BODY);
        assert!(s.authorize(&headers(&[("x-hub-signature-256", &signature)]), BODY));
        assert!(!s.authorize(&headers(&[("authorization", "Bearer nope")]), BODY));
    }
}
