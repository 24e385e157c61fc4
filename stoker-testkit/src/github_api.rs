//! A stand-in for GitHub's REST API, as much of it as a GitHub App's token exchange uses:
//! `POST /app/installations/{installation_id}/access_tokens`.
//!
//! It checks the request the way GitHub documents it: `Authorization: Bearer <JWT>`, the JWT
//! signed with RS256 by the App's private key (checked against the App's public key), `iss` the
//! App's id, `iat` not in the future (60 s of clock drift allowed), `exp` after now and at most
//! 10 minutes ahead. Answers:
//!
//! - `201 {"token": "ghs_…", "expires_at": "…Z", …}`: a new token, valid for
//!   [`GithubApiDouble::set_token_lifetime`] (1 hour by default, as GitHub's);
//! - `401 {"message": …}`: no JWT, or one that does not verify or has bad claims;
//! - `404 {"message": "Not Found"}`: an installation the App does not have;
//! - an injected status (5xx) for the next calls after [`GithubApiDouble::fail_next`].
//!
//! Every request is counted ([`GithubApiDouble::calls`]). The double makes its own RSA key pair
//! for the App; [`GithubApiDouble::private_key_pem`] is what the App's owner would download
//! (PKCS#8 here; GitHub hands out PKCS#1, and Stoker reads both).
//!
//! [`GithubApiDouble::password_check`] lets a [`GitHttpServer`](crate::git_http::GitHttpServer)
//! accept the tokens it issued, as user `x-access-token`, until they expire: a test can clone
//! with a real issued token.
//!
//! ```no_run
//! use stoker_testkit::github_api::GithubApiDouble;
//! let api = GithubApiDouble::start("12345", &[678]).expect("start");
//! let base = api.url(); // http://127.0.0.1:PORT, the App's apiBaseURL
//! let key = api.private_key_pem(); // the App's private key
//! api.fail_next(2, 503); // the next two exchanges get 503
//! assert_eq!(api.calls(), 0);
//! ```

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::KeyPair as _;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

use crate::git_http::PasswordCheck;
use crate::{Error, Result};

/// How far in the future GitHub lets a JWT's `exp` be.
const MAX_JWT_LIFETIME: u64 = 10 * 60;
/// The clock drift tolerated on `iat`.
const CLOCK_DRIFT: u64 = 60;

/// A token the double issued.
#[derive(Clone, PartialEq, Eq)]
pub struct IssuedToken {
    /// The token, `ghs_` and 36 letters and digits.
    pub token: String,
    /// The installation it was issued for.
    pub installation_id: u64,
    /// When it expires (whole seconds, as `expires_at` says).
    pub expires_at: SystemTime,
}

impl std::fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedToken")
            .field(
                "token",
                &format!("{}…", &self.token[..self.token.len().min(8)]),
            )
            .field("installation_id", &self.installation_id)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

impl IssuedToken {
    /// True while GitHub would accept it.
    pub fn is_valid_at(&self, now: SystemTime) -> bool {
        now < self.expires_at
    }
}

/// What the server and the test share.
struct Shared {
    app_id: String,
    /// The App's public key (PKCS#1 `RSAPublicKey` DER), to verify JWTs with.
    public_key: Vec<u8>,
    private_key_pem: String,
    installations: BTreeSet<u64>,
    token_lifetime: Mutex<Duration>,
    /// `(remaining, status)` of injected failures.
    failures: Mutex<(u32, u16)>,
    calls: AtomicU64,
    issued: Mutex<Vec<IssuedToken>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The GitHub API double, serving on a loopback port from a thread of its own until dropped.
pub struct GithubApiDouble {
    shared: Arc<Shared>,
    served: crate::axum_thread::Served,
}

impl std::fmt::Debug for GithubApiDouble {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GithubApiDouble")
            .field("addr", &self.served.addr)
            .field("app_id", &self.shared.app_id)
            .field("installations", &self.shared.installations)
            .finish_non_exhaustive()
    }
}

impl GithubApiDouble {
    /// Serves App `app_id`, installed as `installations`, with a new key pair.
    pub fn start(app_id: &str, installations: &[u64]) -> Result<Self> {
        let key = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
            .map_err(|_| Error::Invalid("generating an RSA key failed".into()))?;
        let shared = Arc::new(Shared {
            app_id: app_id.to_owned(),
            public_key: key.public_key().as_ref().to_vec(),
            private_key_pem: pkcs8_pem(&key)?,
            installations: installations.iter().copied().collect(),
            token_lifetime: Mutex::new(Duration::from_secs(3600)),
            failures: Mutex::new((0, 503)),
            calls: AtomicU64::new(0),
            issued: Mutex::new(Vec::new()),
        });
        let served = crate::axum_thread::serve("stoker-github-api", router(shared.clone()))?;
        Ok(GithubApiDouble { shared, served })
    }

    /// `http://127.0.0.1:PORT`: the App's API base URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.served.addr)
    }

    /// The App's id.
    pub fn app_id(&self) -> &str {
        &self.shared.app_id
    }

    /// The App's private key, PEM (PKCS#8 `PRIVATE KEY`).
    pub fn private_key_pem(&self) -> &str {
        &self.shared.private_key_pem
    }

    /// How long the tokens issued from now on are valid (rounded down to whole seconds).
    pub fn set_token_lifetime(&self, lifetime: Duration) {
        *lock(&self.shared.token_lifetime) = lifetime;
    }

    /// The next `n` requests get `status` (with a JSON `message`), whatever they carry.
    pub fn fail_next(&self, n: u32, status: u16) {
        *lock(&self.shared.failures) = (n, status);
    }

    /// Requests received, failed ones included.
    pub fn calls(&self) -> u64 {
        self.shared.calls.load(Ordering::SeqCst)
    }

    /// Every token issued, oldest first.
    pub fn issued(&self) -> Vec<IssuedToken> {
        lock(&self.shared.issued).clone()
    }

    /// True when `token` was issued here and has not expired.
    pub fn is_valid_token(&self, token: &str) -> bool {
        self.shared.is_valid_token(token)
    }

    /// For [`GitHttpServer::start_with_password_check`](crate::git_http::GitHttpServer::start_with_password_check):
    /// accepts user `x-access-token` with a token issued here that has not expired.
    pub fn password_check(&self) -> PasswordCheck {
        let shared = self.shared.clone();
        Arc::new(move |user: &str, password: &str| {
            user == "x-access-token" && shared.is_valid_token(password)
        })
    }
}

impl Shared {
    fn is_valid_token(&self, token: &str) -> bool {
        let now = SystemTime::now();
        lock(&self.issued)
            .iter()
            .any(|issued| issued.token == token && issued.is_valid_at(now))
    }

    /// Takes one injected failure, if any is pending.
    fn take_failure(&self) -> Option<u16> {
        let mut failures = lock(&self.failures);
        if failures.0 == 0 {
            return None;
        }
        failures.0 -= 1;
        Some(failures.1)
    }

    fn issue(&self, installation_id: u64) -> Result<IssuedToken> {
        let lifetime = lock(&self.token_lifetime).as_secs();
        let expires_at = UNIX_EPOCH + Duration::from_secs(unix_now() + lifetime);
        let issued = IssuedToken {
            token: new_token()?,
            installation_id,
            expires_at,
        };
        lock(&self.issued).push(issued.clone());
        Ok(issued)
    }
}

/// A fresh RSA private key, PEM: an App key the double does not know, for tests of a rejected
/// App.
pub fn generate_private_key_pem() -> Result<String> {
    let key = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
        .map_err(|_| Error::Invalid("generating an RSA key failed".into()))?;
    pkcs8_pem(&key)
}

fn pkcs8_pem(key: &aws_lc_rs::rsa::KeyPair) -> Result<String> {
    let der = key
        .as_der()
        .map_err(|_| Error::Invalid("encoding an RSA key failed".into()))?;
    let body = STANDARD.encode(der.as_ref());
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|chunk| std::str::from_utf8(chunk).unwrap_or_default())
        .collect();
    Ok(format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        lines.join("\n")
    ))
}

/// `ghs_` and 36 random letters and digits, the shape of GitHub's installation tokens.
fn new_token() -> Result<String> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut bytes = [0u8; 36];
    aws_lc_rs::rand::fill(&mut bytes)
        .map_err(|_| Error::Invalid("no random bytes for a token".into()))?;
    let suffix: String = bytes
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect();
    Ok(format!("ghs_{suffix}"))
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route(
            "/app/installations/{installation_id}/access_tokens",
            post(access_tokens),
        )
        .fallback(|| async { github_error(StatusCode::NOT_FOUND, "Not Found") })
        .with_state(shared)
}

fn github_error(status: StatusCode, message: &str) -> Response {
    let body = serde_json::json!({
        "message": message,
        "documentation_url": "https://docs.github.com/rest",
        "status": status.as_u16().to_string(),
    });
    (status, axum::Json(body)).into_response()
}

async fn access_tokens(
    State(shared): State<Arc<Shared>>,
    Path(installation_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    shared.calls.fetch_add(1, Ordering::SeqCst);
    if let Some(status) = shared.take_failure() {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
        return github_error(status, "injected failure");
    }
    if let Err(message) = check_jwt(&shared, &headers, unix_now()) {
        return github_error(StatusCode::UNAUTHORIZED, &message);
    }
    let installation_id = match installation_id.parse::<u64>() {
        Ok(id) if shared.installations.contains(&id) => id,
        _ => return github_error(StatusCode::NOT_FOUND, "Not Found"),
    };
    let issued = match shared.issue(installation_id) {
        Ok(issued) => issued,
        Err(error) => {
            return github_error(StatusCode::INTERNAL_SERVER_ERROR, &error.to_string());
        }
    };
    let expires_at = issued
        .expires_at
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let expires_at = jiff::Timestamp::from_second(i64::try_from(expires_at).unwrap_or(i64::MAX))
        .map(|t| t.to_string())
        .unwrap_or_default();
    let body = serde_json::json!({
        "token": issued.token,
        "expires_at": expires_at,
        "permissions": {"contents": "read", "metadata": "read"},
        "repository_selection": "all",
    });
    (StatusCode::CREATED, axum::Json(body)).into_response()
}

/// Checks the `Authorization: Bearer <JWT>` header at Unix time `now`; the 401 message when it
/// does not pass.
fn check_jwt(shared: &Shared, headers: &HeaderMap, now: u64) -> Result<(), String> {
    const UNDECODABLE: &str = "A JSON web token could not be decoded";
    let jwt = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .ok_or("Requires authentication")?;
    let mut parts = jwt.trim().split('.');
    let (Some(header), Some(claims), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(UNDECODABLE.into());
    };
    let decode = |part: &str| -> Result<serde_json::Value, String> {
        let bytes = URL_SAFE_NO_PAD.decode(part).map_err(|_| UNDECODABLE)?;
        serde_json::from_slice(&bytes).map_err(|_| UNDECODABLE.to_owned())
    };
    if decode(header)?.get("alg").and_then(|alg| alg.as_str()) != Some("RS256") {
        return Err(UNDECODABLE.into());
    }
    let signature = URL_SAFE_NO_PAD.decode(signature).map_err(|_| UNDECODABLE)?;
    aws_lc_rs::signature::UnparsedPublicKey::new(
        &aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256,
        &shared.public_key,
    )
    .verify(format!("{header}.{claims}").as_bytes(), &signature)
    .map_err(|_| {
        "A JSON web token could not be verified: the signature does not match the App's public key"
    })?;
    check_claims(&decode(claims)?, &shared.app_id, now)
}

fn check_claims(claims: &serde_json::Value, app_id: &str, now: u64) -> Result<(), String> {
    let issuer = match claims.get("iss") {
        Some(serde_json::Value::Number(number)) => number.to_string(),
        Some(serde_json::Value::String(text)) => text.clone(),
        _ => return Err("'Issuer' claim ('iss') must be an Integer or a String".into()),
    };
    if issuer != app_id {
        return Err(format!("Integration not found (iss {issuer})"));
    }
    let time = |name: &str| claims.get(name).and_then(serde_json::Value::as_u64);
    let (Some(issued_at), Some(expires_at)) = (time("iat"), time("exp")) else {
        return Err("'iat' and 'exp' claims must be integers".into());
    };
    if issued_at > now + CLOCK_DRIFT {
        return Err(
            "'Issued at' claim ('iat') must be an Integer representing a time in the past".into(),
        );
    }
    if expires_at <= now {
        return Err("'Expiration time' claim ('exp') must be a time in the future".into());
    }
    if expires_at > now + MAX_JWT_LIFETIME {
        return Err("'Expiration time' claim ('exp') is too far in the future".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_are_checked_like_github() {
        let now = 1_700_000_000;
        let claims = |iss: serde_json::Value, iat: u64, exp: u64| serde_json::json!({"iss": iss, "iat": iat, "exp": exp});
        let ok = claims(12345.into(), now - 60, now + 540);
        assert_eq!(check_claims(&ok, "12345", now), Ok(()));
        let string_issuer = claims("Iv1.x".into(), now - 60, now + 540);
        assert_eq!(check_claims(&string_issuer, "Iv1.x", now), Ok(()));
        assert!(check_claims(&ok, "999", now).is_err());
        assert!(check_claims(&claims(12345.into(), now + 120, now + 540), "12345", now).is_err());
        assert!(check_claims(&claims(12345.into(), now - 700, now - 1), "12345", now).is_err());
        assert!(check_claims(&claims(12345.into(), now, now + 601), "12345", now).is_err());
        assert!(check_claims(&serde_json::json!({"iss": 12345}), "12345", now).is_err());
    }

    #[test]
    fn tokens_look_like_githubs() {
        let token = new_token().unwrap_or_default();
        assert!(token.starts_with("ghs_") && token.len() == 40, "{token}");
        assert!(token[4..].chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(token, new_token().unwrap_or_default());
    }
}
