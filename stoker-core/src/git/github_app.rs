//! GitHub App authentication: an RS256 JWT signed with the App's private key, exchanged for an
//! installation access token.
//!
//! [`GithubApp::installation_token`] is the public face: the operator exchanges the App's key
//! for the token it hands to the agents, which never see the key. The Git source makes the same
//! exchange for [`GitAuth::GithubApp`](super::GitAuth::GithubApp) and caches the token until 5
//! minutes before it expires.
//!
//! The exchange blocks (reqwest's blocking client). The Git source calls it from inside gix's
//! blocking transport, where an async client would need a runtime of its own, so one blocking
//! implementation serves both callers; a token lives an hour, so a caller on an async runtime
//! pays for one `spawn_blocking` an hour.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

use crate::error::{Error, GithubAppErrorKind};

/// A token is refreshed when it expires within this margin.
pub(crate) const REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);

/// A GitHub App installation: which App, installed where, behind which REST API.
///
/// ```
/// use stoker_core::GithubAppErrorKind;
/// use stoker_core::git::GithubApp;
///
/// let app = GithubApp::new("12345", 678);
/// assert_eq!(
///     app.access_tokens_url(),
///     "https://api.github.com/app/installations/678/access_tokens"
/// );
/// // A key that is not one fails before anything is sent.
/// let error = app.installation_token(b"not a key").unwrap_err();
/// assert_eq!(error.github_app_kind(), Some(GithubAppErrorKind::InvalidKey));
/// ```
///
/// An operator exchanging the key it read from a Secret, off the async executor:
///
/// ```no_run
/// # async fn demo(pem: Vec<u8>) -> Result<(), Box<dyn std::error::Error>> {
/// use stoker_core::git::GithubApp;
/// let app = GithubApp::new("12345", 678).with_api_base_url("https://ghe.example.com/api/v3");
/// let token = tokio::task::spawn_blocking(move || app.installation_token(&pem)).await??;
/// println!("valid until {:?}", token.expires_at()); // {token:?} shows no secret
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GithubApp {
    /// The App's id (or its client id, `Iv1.…`): the JWT's issuer.
    pub app_id: String,
    /// The installation id (the organisation or account the App is installed on).
    pub installation_id: u64,
    /// The REST API base: [`GithubApp::DEFAULT_API_BASE_URL`], or `https://HOST/api/v3` for
    /// GitHub Enterprise Server.
    pub api_base_url: String,
}

impl GithubApp {
    /// `https://api.github.com`.
    pub const DEFAULT_API_BASE_URL: &str = "https://api.github.com";

    /// The installation `installation_id` of App `app_id` on github.com.
    pub fn new(app_id: impl Into<String>, installation_id: u64) -> Self {
        GithubApp {
            app_id: app_id.into(),
            installation_id,
            api_base_url: Self::DEFAULT_API_BASE_URL.to_owned(),
        }
    }

    /// The same installation behind another REST API (GitHub Enterprise Server).
    pub fn with_api_base_url(mut self, api_base_url: impl Into<String>) -> Self {
        self.api_base_url = api_base_url.into();
        self
    }

    /// The token endpoint: `{api_base_url}/app/installations/{installation_id}/access_tokens`.
    pub fn access_tokens_url(&self) -> String {
        access_tokens_url(&self.api_base_url, self.installation_id)
    }

    /// Signs a JWT with `private_key_pem` (PKCS#1 `RSA PRIVATE KEY` as GitHub issues it, or
    /// PKCS#8 `PRIVATE KEY`) and exchanges it for a new installation access token. Blocks for
    /// at most about 30 s; every call asks GitHub for a new token.
    ///
    /// # Errors
    ///
    /// [`Error::GithubApp`], whose [`GithubAppErrorKind`] tells a rejected App from an
    /// unreachable API, an unusable key and an unreadable answer.
    pub fn installation_token(&self, private_key_pem: &[u8]) -> crate::Result<InstallationToken> {
        let url = self.access_tokens_url();
        let key = load_private_key(private_key_pem)
            .map_err(|message| failure(&url, GithubAppErrorKind::InvalidKey, None, message))?;
        let jwt = app_jwt(&self.app_id, &key, SystemTime::now())
            .map_err(|message| failure(&url, GithubAppErrorKind::InvalidKey, None, message))?;
        exchange(&url, &jwt)
    }
}

fn failure(
    url: &str,
    kind: GithubAppErrorKind,
    status: Option<u16>,
    message: impl Into<String>,
) -> Error {
    Error::GithubApp {
        url: super::redact_url(url),
        status,
        kind,
        message: message.into(),
    }
}

/// An installation access token and when it expires. `{:?}` does not show the token.
#[derive(Clone, PartialEq, Eq)]
pub struct InstallationToken {
    pub(crate) token: String,
    pub(crate) expires_at: SystemTime,
}

impl std::fmt::Debug for InstallationToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InstallationToken")
            .field("token", &"***")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

impl InstallationToken {
    /// The token (`ghs_…`): the password of user `x-access-token` over HTTPS.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// When GitHub stops accepting it.
    pub fn expires_at(&self) -> SystemTime {
        self.expires_at
    }

    /// True when the token must be replaced before use at `now`.
    pub(crate) fn needs_refresh(&self, now: SystemTime) -> bool {
        now + REFRESH_MARGIN >= self.expires_at
    }
}

/// Decodes a PEM private key (PKCS#1 `RSA PRIVATE KEY`, as GitHub issues it, or PKCS#8
/// `PRIVATE KEY`).
fn load_private_key(pem: &[u8]) -> Result<aws_lc_rs::rsa::KeyPair, String> {
    let text = std::str::from_utf8(pem).map_err(|_| "the private key is not PEM text")?;
    let (label, der) = pem_block(text).ok_or("the private key file holds no PEM block")?;
    match label {
        "RSA PRIVATE KEY" => aws_lc_rs::rsa::KeyPair::from_der(&der)
            .map_err(|error| format!("the RSA private key is not usable: {error}")),
        "PRIVATE KEY" => aws_lc_rs::rsa::KeyPair::from_pkcs8(&der)
            .map_err(|error| format!("the PKCS#8 private key is not a usable RSA key: {error}")),
        other => Err(format!(
            "expected an RSA private key in PEM form, found a {other:?} block"
        )),
    }
}

fn pem_block(text: &str) -> Option<(&str, Vec<u8>)> {
    let begin = text.find("-----BEGIN ")?;
    let after = &text[begin + "-----BEGIN ".len()..];
    let label_end = after.find("-----")?;
    let label = &after[..label_end];
    let body_start = &after[label_end + 5..];
    let end_marker = format!("-----END {label}-----");
    let body_end = body_start.find(&end_marker)?;
    let body: String = body_start[..body_end]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let der = STANDARD.decode(body).ok()?;
    Some((label, der))
}

/// The App's JWT at `now`: `iat` 60 s in the past (clock drift, as GitHub recommends), `exp` 9
/// minutes ahead (GitHub allows at most 10), `iss` the App id (a number when it is one).
fn app_jwt(app_id: &str, key: &aws_lc_rs::rsa::KeyPair, now: SystemTime) -> Result<String, String> {
    let now = now
        .duration_since(UNIX_EPOCH)
        .map_err(|_| "the system clock is before 1970")?
        .as_secs();
    let iss = match app_id.parse::<u64>() {
        Ok(number) => serde_json::Value::from(number),
        Err(_) => serde_json::Value::from(app_id),
    };
    let header = serde_json::json!({"alg": "RS256", "typ": "JWT"});
    let claims = serde_json::json!({
        "iat": now.saturating_sub(60),
        "exp": now + 9 * 60,
        "iss": iss,
    });
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let mut signature = vec![0; key.public_modulus_len()];
    key.sign(
        &aws_lc_rs::signature::RSA_PKCS1_SHA256,
        &aws_lc_rs::rand::SystemRandom::new(),
        signing_input.as_bytes(),
        &mut signature,
    )
    .map_err(|_| "signing the GitHub App JWT failed")?;
    Ok(format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(signature)
    ))
}

/// The URL of the token exchange.
fn access_tokens_url(api_base_url: &str, installation_id: u64) -> String {
    format!(
        "{}/app/installations/{installation_id}/access_tokens",
        api_base_url.trim_end_matches('/')
    )
}

/// Parses GitHub's answer to `POST /app/installations/{id}/access_tokens`:
/// `{"token": "ghs_…", "expires_at": "2016-07-11T22:14:10Z", …}`.
fn parse_token_response(body: &[u8]) -> Result<InstallationToken, String> {
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|error| format!("the access token response is not JSON: {error}"))?;
    let token = value
        .get("token")
        .and_then(|t| t.as_str())
        .filter(|t| !t.is_empty())
        .ok_or("the access token response has no \"token\"")?;
    let expires_at = value
        .get("expires_at")
        .and_then(|t| t.as_str())
        .ok_or("the access token response has no \"expires_at\"")?;
    let expires_at = parse_rfc3339_utc(expires_at)
        .ok_or_else(|| format!("the access token's expires_at {expires_at:?} is not a UTC time"))?;
    Ok(InstallationToken {
        token: token.to_owned(),
        expires_at,
    })
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.fff]Z` (and `+00:00`), the form GitHub uses.
fn parse_rfc3339_utc(text: &str) -> Option<SystemTime> {
    let text = text
        .strip_suffix('Z')
        .or_else(|| text.strip_suffix("+00:00"))?;
    let (date, time) = text.split_once(['T', 't', ' '])?;
    let mut date_parts = date.splitn(3, '-');
    let year: i64 = date_parts.next()?.parse().ok()?;
    let month: u32 = date_parts.next()?.parse().ok()?;
    let day: u32 = date_parts.next()?.parse().ok()?;
    let time = time.split_once('.').map_or(time, |(whole, _)| whole);
    let mut time_parts = time.splitn(3, ':');
    let hour: u64 = time_parts.next()?.parse().ok()?;
    let minute: u64 = time_parts.next()?.parse().ok()?;
    let second: u64 = time_parts.next()?.parse().ok()?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let seconds = u64::try_from(days).ok()? * 86_400 + hour * 3600 + minute * 60 + second.min(60);
    Some(UNIX_EPOCH + Duration::from_secs(seconds))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month = i64::from(month);
    let day_of_year =
        (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// POSTs the JWT to the token endpoint `url` (blocking) and reads the token from the answer.
fn exchange(url: &str, jwt: &str) -> crate::Result<InstallationToken> {
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|error| {
            failure(
                url,
                GithubAppErrorKind::Transient,
                None,
                format!("HTTP client: {error}"),
            )
        })?;
    let unreachable = |error: reqwest::Error| {
        failure(
            url,
            GithubAppErrorKind::Transient,
            None,
            error.without_url().to_string(),
        )
    };
    let response = client
        .post(url)
        .header("Accept", "application/vnd.github+json")
        .header("Authorization", format!("Bearer {jwt}"))
        .header("X-GitHub-Api-Version", "2022-11-28")
        .header("User-Agent", concat!("stoker/", env!("CARGO_PKG_VERSION")))
        .send()
        .map_err(unreachable)?;
    let status = response.status();
    let body = response.bytes().map_err(unreachable)?;
    if status.is_success() {
        return parse_token_response(&body).map_err(|message| {
            failure(
                url,
                GithubAppErrorKind::BadResponse,
                Some(status.as_u16()),
                message,
            )
        });
    }
    // GitHub's error bodies are short JSON documents with a "message".
    let message = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_owned))
        .unwrap_or_else(|| "no message".to_owned());
    let kind = match status.as_u16() {
        401 | 403 | 404 | 422 => GithubAppErrorKind::Rejected,
        429 | 500..=599 => GithubAppErrorKind::Transient,
        _ => GithubAppErrorKind::BadResponse,
    };
    Err(failure(url, kind, Some(status.as_u16()), message))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::signature::KeyPair as _;

    fn test_key() -> aws_lc_rs::rsa::KeyPair {
        aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap()
    }

    fn pem(label: &str, der: &[u8]) -> String {
        let body = STANDARD.encode(der);
        let lines: Vec<&str> = body
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        format!(
            "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
            lines.join("\n")
        )
    }

    #[test]
    fn jwt_is_rs256_signed_with_the_claims_github_expects() {
        let key = test_key();
        let pkcs8 = key.as_der().unwrap();
        let loaded = load_private_key(pem("PRIVATE KEY", pkcs8.as_ref()).as_bytes()).unwrap();
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let jwt = app_jwt("12345", &loaded, now).unwrap();
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3);
        let header: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
        assert_eq!(header["alg"], "RS256");
        let claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(claims["iss"], 12345);
        assert_eq!(claims["iat"], 1_700_000_000 - 60);
        assert_eq!(claims["exp"], 1_700_000_000 + 540);
        // The signature verifies with the public key.
        let public = aws_lc_rs::signature::UnparsedPublicKey::new(
            &aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256,
            key.public_key().as_ref(),
        );
        let signature = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
        public
            .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &signature)
            .unwrap();
        // A tampered payload does not.
        assert!(
            public
                .verify(format!("{}.{}x", parts[0], parts[1]).as_bytes(), &signature)
                .is_err()
        );
        // A client id is a string issuer.
        let jwt = app_jwt("Iv1.abc", &loaded, now).unwrap();
        let claims: serde_json::Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(jwt.split('.').nth(1).unwrap())
                .unwrap(),
        )
        .unwrap();
        assert_eq!(claims["iss"], "Iv1.abc");
    }

    #[test]
    fn pkcs1_keys_as_github_issues_them_load() {
        // A throwaway key made for this test (`openssl genrsa -traditional 2048`): GitHub hands
        // out App keys in this PKCS#1 form ("BEGIN RSA PRIVATE KEY").
        let text = include_bytes!("testdata/github-app-pkcs1.pem");
        assert!(String::from_utf8_lossy(text).contains("BEGIN RSA PRIVATE KEY"));
        let key = load_private_key(text).unwrap();
        assert!(app_jwt("1", &key, SystemTime::now()).is_ok());
        assert!(load_private_key(b"not a key").is_err());
        assert!(load_private_key(pem("EC PRIVATE KEY", b"x").as_bytes()).is_err());
    }

    #[test]
    fn token_response_is_parsed() {
        let body = br#"{"token":"ghs_16C7e42F292c6912E7710c838347Ae178B4a","expires_at":"2016-07-11T22:14:10Z","permissions":{"contents":"read"}}"#;
        let token = parse_token_response(body).unwrap();
        assert_eq!(token.token, "ghs_16C7e42F292c6912E7710c838347Ae178B4a");
        assert_eq!(
            token.expires_at,
            UNIX_EPOCH + Duration::from_secs(1_468_275_250)
        );
        assert!(!format!("{token:?}").contains("ghs_"));
        assert!(parse_token_response(b"{}").is_err());
        assert!(parse_token_response(br#"{"token":"x","expires_at":"yesterday"}"#).is_err());
        assert!(parse_token_response(b"<html>").is_err());
    }

    #[test]
    fn refresh_happens_five_minutes_before_expiry() {
        let expires_at = UNIX_EPOCH + Duration::from_secs(10_000);
        let token = InstallationToken {
            token: "t".into(),
            expires_at,
        };
        assert!(!token.needs_refresh(expires_at - Duration::from_secs(301)));
        assert!(token.needs_refresh(expires_at - Duration::from_secs(300)));
        assert!(token.needs_refresh(expires_at + Duration::from_secs(1)));
    }

    #[test]
    fn dates_convert_like_unix_time() {
        assert_eq!(parse_rfc3339_utc("1970-01-01T00:00:00Z"), Some(UNIX_EPOCH));
        assert_eq!(
            parse_rfc3339_utc("2000-03-01T00:00:00.123Z"),
            Some(UNIX_EPOCH + Duration::from_secs(951_868_800))
        );
        assert_eq!(
            parse_rfc3339_utc("2024-02-29T12:00:00+00:00"),
            Some(UNIX_EPOCH + Duration::from_secs(1_709_208_000))
        );
        assert_eq!(parse_rfc3339_utc("2024-13-01T00:00:00Z"), None);
        assert_eq!(parse_rfc3339_utc("2024-01-01T00:00:00+02:00"), None);
    }

    #[test]
    fn the_exchange_url_joins_the_api_base() {
        assert_eq!(
            access_tokens_url("https://api.github.com/", 42),
            "https://api.github.com/app/installations/42/access_tokens"
        );
        assert_eq!(
            access_tokens_url("https://ghe.example.com/api/v3", 7),
            "https://ghe.example.com/api/v3/app/installations/7/access_tokens"
        );
    }
}
