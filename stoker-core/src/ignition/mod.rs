//! The Ignition gateway as a [`Gateway`] (feature `ignition`): the REST client the agent uses
//! to respect Designer sessions before a sync and to ask for a rescan after one.
//!
//! Endpoints (Ignition 8.3's documented API, below the configured base URL):
//!
//! | what | request | used by |
//! |---|---|---|
//! | open Designer sessions | `GET /data/api/v1/designers` | [`IgnitionGateway::designer_sessions`], [`Gateway::pre_sync`] |
//! | rescan projects, then config | `POST /data/api/v1/scan/projects`, `POST /data/api/v1/scan/config` | [`IgnitionGateway::scan`], [`Gateway::post_sync`] |
//! | health | `GET /data/api/v1/gateway-info` | [`IgnitionGateway::health`], [`IgnitionGateway::gateway_info`] |
//! | liveness (port check) | `GET /data/api/v1/gateway-info`, without the key | [`IgnitionGateway::liveness`] |
//!
//! **Authentication.** The API key (`tokenName:secret`) is read from a file on every request
//! and sent as the value of the `X-Ignition-API-Token` header ([`API_TOKEN_HEADER`]), the form
//! Ignition 8.3's API-key documentation and the reference operator use. The header is marked
//! sensitive; the key never appears in a log line or an error (a body echoing it is redacted).
//!
//! **Retries.** Rescans and Designer-session queries are retried per [`Backoff`] when nothing
//! answered, on a timeout, and on HTTP 5xx or 429. A 401/403 is an [`GatewayErrorKind::Auth`]
//! error at once; an untrusted certificate is a [`GatewayErrorKind::Certificate`] error at
//! once; redirects are not followed (a `POST` must not silently become a `GET`), and say where
//! they point.
//!
//! **TLS.** `https://` verifies the gateway's certificate against the system's roots plus an
//! optional CA file; skipping verification takes an explicit opt-in and logs a warning.
//!
//! ```no_run
//! # async fn demo() -> stoker_core::Result<()> {
//! use stoker_core::ignition::{IgnitionConfig, IgnitionGateway};
//! let gateway = IgnitionGateway::new(
//!     IgnitionConfig::new("http://127.0.0.1:8088")
//!         .with_api_key_file("/var/run/secrets/ignition/api-key"),
//! )?;
//! let sessions = gateway.designer_sessions().await?;
//! let scan = gateway.scan().await?;
//! println!("{} Designer sessions; rescan: {scan}", sessions.len());
//! # Ok(()) }
//! ```

mod config;
mod response;

use std::path::Path;

use async_trait::async_trait;
use reqwest::header::{HeaderValue, LOCATION};
use reqwest::{Method, StatusCode};

pub use config::{Backoff, IgnitionConfig};
pub use response::{DesignerSession, GatewayInfo, parse_designers, parse_gateway_info};

use crate::error::{Error, GatewayErrorKind, Result};
use crate::{Gateway, Health, PreSyncCheck, SyncReport};
// Defined with the trait (its rescan answers); kept reachable here, where they were first.
pub use crate::gateway::{EndpointCall, ScanOutcome};

/// The header carrying the API key.
pub const API_TOKEN_HEADER: &str = "X-Ignition-API-Token";
/// `POST`: rescan the projects directory.
pub const SCAN_PROJECTS: &str = "/data/api/v1/scan/projects";
/// `POST`: rescan the gateway configuration.
pub const SCAN_CONFIG: &str = "/data/api/v1/scan/config";
/// `GET`: open Designer sessions.
pub const DESIGNERS: &str = "/data/api/v1/designers";
/// `GET`: the gateway's name, version, edition.
pub const GATEWAY_INFO: &str = "/data/api/v1/gateway-info";

/// How much of an unexpected answer's body an error message quotes.
const SNIPPET_CHARS: usize = 200;

/// The Ignition gateway REST client; implements [`Gateway`]. Cheap to clone (the connection
/// pool is shared).
#[derive(Clone)]
pub struct IgnitionGateway {
    config: IgnitionConfig,
    /// The base URL without a trailing slash.
    base: String,
    client: reqwest::Client,
}

impl std::fmt::Debug for IgnitionGateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IgnitionGateway")
            .field("url", &self.base)
            .field("api_key_file", &self.config.api_key_file)
            .field("ca_file", &self.config.ca_file)
            .field(
                "insecure_skip_tls_verify",
                &self.config.insecure_skip_tls_verify,
            )
            .finish_non_exhaustive()
    }
}

/// A response read to the end.
struct Answer {
    status: StatusCode,
    body: Vec<u8>,
    attempts: u32,
}

/// Why one attempt failed, before deciding whether to retry.
struct Failure {
    kind: GatewayErrorKind,
    status: Option<u16>,
    message: String,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
    retry: bool,
}

impl IgnitionGateway {
    /// A client for `config.url`. Checks the URL and reads the CA file; touches neither the
    /// network nor the API key file.
    pub fn new(config: IgnitionConfig) -> Result<Self> {
        let config_error = |message: String| Error::Gateway {
            method: "configure",
            url: config.url.clone(),
            status: None,
            kind: GatewayErrorKind::Config,
            message,
            source: None,
        };
        let url = reqwest::Url::parse(&config.url)
            .map_err(|error| config_error(format!("not a URL: {error}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(config_error(
                "the URL must start with http:// or https://".into(),
            ));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(config_error("the URL has no host".into()));
        }
        if !url.username().is_empty() || url.password().is_some() {
            // Not echoing the URL: it holds a password.
            return Err(Error::Gateway {
                method: "configure",
                url: redacted(&url),
                status: None,
                kind: GatewayErrorKind::Config,
                message: "credentials in the gateway URL are not supported: use an API key file"
                    .into(),
                source: None,
            });
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(config_error(
                "the URL must not have a query or fragment".into(),
            ));
        }
        let base = url.as_str().trim_end_matches('/').to_owned();

        let mut builder = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.connect_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("stoker/", env!("CARGO_PKG_VERSION")));
        if config.insecure_skip_tls_verify {
            if url.scheme() == "https" {
                tracing::warn!(url = %base, "TLS certificate verification is disabled for the Ignition gateway (insecure_skip_tls_verify): anyone on the network path can impersonate it and read the API key");
            }
            builder = builder.tls_danger_accept_invalid_certs(true);
        } else if let Some(ca_file) = &config.ca_file {
            builder = builder.tls_certs_merge(read_ca_file(ca_file).map_err(config_error)?);
        }
        let client = builder.build().map_err(|error| Error::Gateway {
            method: "configure",
            url: base.clone(),
            status: None,
            kind: GatewayErrorKind::Config,
            message: "building the HTTP client failed".into(),
            source: Some(Box::new(error)),
        })?;
        Ok(IgnitionGateway {
            config,
            base,
            client,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &IgnitionConfig {
        &self.config
    }

    /// The base URL, without a trailing slash.
    pub fn url(&self) -> &str {
        &self.base
    }

    /// The open Designer sessions (`GET /data/api/v1/designers`), retried per [`Backoff`].
    #[tracing::instrument(skip(self), fields(url = %self.base))]
    pub async fn designer_sessions(&self) -> Result<Vec<DesignerSession>> {
        let answer = self.call(Method::GET, DESIGNERS, true, true).await?;
        parse_designers(&answer.body)
            .map_err(|message| self.invalid(Method::GET, DESIGNERS, &answer, message))
    }

    /// Asks the gateway to rescan its projects, then its configuration (`POST
    /// /data/api/v1/scan/projects`, then `POST /data/api/v1/scan/config`), each retried per
    /// [`Backoff`]. A failure of the first stops before the second; the error names the
    /// endpoint and the last status.
    #[tracing::instrument(skip(self), fields(url = %self.base))]
    pub async fn scan(&self) -> Result<ScanOutcome> {
        let projects = self.post(SCAN_PROJECTS).await?;
        let config = self.post(SCAN_CONFIG).await?;
        let outcome = ScanOutcome { projects, config };
        tracing::info!(scan = %outcome, "gateway rescan requested");
        Ok(outcome)
    }

    /// `POST` to one endpoint (a rescan), retried per [`Backoff`].
    pub async fn post(&self, endpoint: &'static str) -> Result<EndpointCall> {
        let answer = self.call(Method::POST, endpoint, true, true).await?;
        Ok(EndpointCall {
            method: "POST",
            endpoint,
            status: answer.status.as_u16(),
            attempts: answer.attempts,
        })
    }

    /// `GET /data/api/v1/gateway-info`, once.
    #[tracing::instrument(skip(self), fields(url = %self.base))]
    pub async fn gateway_info(&self) -> Result<GatewayInfo> {
        let answer = self.call(Method::GET, GATEWAY_INFO, true, false).await?;
        parse_gateway_info(&answer.body)
            .map_err(|message| self.invalid(Method::GET, GATEWAY_INFO, &answer, message))
    }

    /// The gateway's health from `GET /data/api/v1/gateway-info` with the API key, asked once:
    ///
    /// - a 2xx answer: [`Health::Up`];
    /// - 503 (the gateway is starting, commissioning, or restarting modules):
    ///   [`Health::Starting`];
    /// - no answer (connection refused, reset, timeout): [`Health::Down`];
    /// - an error for everything the caller must fix: a rejected key
    ///   ([`GatewayErrorKind::Auth`]), an untrusted certificate, any other status.
    #[tracing::instrument(skip(self), fields(url = %self.base))]
    pub async fn health(&self) -> Result<Health> {
        match self.call(Method::GET, GATEWAY_INFO, true, false).await {
            Ok(_) => Ok(Health::Up),
            Err(error) => classify_health(error),
        }
    }

    /// A port check (liveness): `GET /data/api/v1/gateway-info` *without* the API key, once.
    /// Any answer but 503 means the gateway's web server is up — 401 included, which is what a
    /// running gateway answers without a key. 503: [`Health::Starting`]; no answer:
    /// [`Health::Down`]. Only an untrusted certificate (or a bad configuration) is an error.
    #[tracing::instrument(skip(self), fields(url = %self.base))]
    pub async fn liveness(&self) -> Result<Health> {
        match self.call(Method::GET, GATEWAY_INFO, false, false).await {
            Ok(_) => Ok(Health::Up),
            Err(Error::Gateway {
                kind: GatewayErrorKind::Auth | GatewayErrorKind::Status,
                status: Some(status),
                message,
                ..
            }) => Ok(if status == 503 {
                Health::Starting(format!("HTTP 503: {message}"))
            } else {
                Health::Up
            }),
            Err(error) => classify_health(error),
        }
    }

    /// One request, with retries when `retry` is set. `with_key` sends the API key.
    async fn call(
        &self,
        method: Method,
        endpoint: &'static str,
        with_key: bool,
        retry: bool,
    ) -> Result<Answer> {
        let url = format!("{}{endpoint}", self.base);
        let method_name = method_name(&method);
        let key = if with_key {
            self.api_key().await?
        } else {
            None
        };
        let max_attempts = if retry {
            self.config.retry.max_attempts.max(1)
        } else {
            1
        };
        let mut attempts = 0;
        loop {
            attempts += 1;
            let failure = match self.attempt(method.clone(), &url, key.as_ref()).await {
                Ok((status, body)) if status.is_success() => {
                    tracing::debug!(
                        method = method_name,
                        endpoint,
                        status = status.as_u16(),
                        attempts,
                        "gateway answered"
                    );
                    return Ok(Answer {
                        status,
                        body,
                        attempts,
                    });
                }
                Ok((status, body)) => self.status_failure(status, &body, key.as_ref()),
                Err(failure) => failure,
            };
            if failure.retry && attempts < max_attempts {
                let delay = self.config.retry.delay(attempts - 1);
                tracing::warn!(
                    method = method_name,
                    endpoint,
                    status = failure.status,
                    attempt = attempts,
                    of = max_attempts,
                    delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                    error = %failure.message,
                    "gateway request failed; retrying"
                );
                tokio::time::sleep(delay).await;
                continue;
            }
            let message = if attempts > 1 {
                format!("{} (after {attempts} attempts)", failure.message)
            } else {
                failure.message
            };
            return Err(Error::Gateway {
                method: method_name,
                url,
                status: failure.status,
                kind: failure.kind,
                message,
                source: failure.source,
            });
        }
    }

    /// Sends one request and reads the whole body. A redirect is turned into a failure here,
    /// since only here is its `Location` at hand.
    async fn attempt(
        &self,
        method: Method,
        url: &str,
        key: Option<&ApiKey>,
    ) -> std::result::Result<(StatusCode, Vec<u8>), Failure> {
        let mut request = self.client.request(method, url);
        if let Some(key) = key {
            request = request.header(API_TOKEN_HEADER, key.header.clone());
        }
        let response = request.send().await.map_err(transport_failure)?;
        let status = response.status();
        if status.is_redirection() {
            let location = response
                .headers()
                .get(LOCATION)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("nowhere")
                .to_owned();
            return Err(Failure {
                kind: GatewayErrorKind::Status,
                status: Some(status.as_u16()),
                message: format!(
                    "the gateway redirects to {location}; configure that URL instead (redirects are not followed)"
                ),
                source: None,
                retry: false,
            });
        }
        let body = response.bytes().await.map_err(transport_failure)?;
        Ok((status, body.to_vec()))
    }

    /// A non-2xx, non-redirect answer.
    fn status_failure(&self, status: StatusCode, body: &[u8], key: Option<&ApiKey>) -> Failure {
        let code = status.as_u16();
        let reason = status.canonical_reason().unwrap_or("unexpected status");
        let body = response::snippet(body, key.map(|k| k.secret.as_str()), SNIPPET_CHARS);
        let quoted = if body.is_empty() {
            String::new()
        } else {
            format!(": {body}")
        };
        let (kind, message, retry) = match code {
            401 => (
                GatewayErrorKind::Auth,
                if key.is_some() {
                    "the gateway rejected the API key; check the key file and that the key is enabled".to_owned()
                } else {
                    "the gateway requires an API key; configure an API key file".to_owned()
                },
                false,
            ),
            403 => (
                GatewayErrorKind::Auth,
                "the API key is not allowed to do this; give the key a security level with gateway read and write permission".to_owned(),
                false,
            ),
            429 | 500..=599 => (GatewayErrorKind::Status, format!("{reason}{quoted}"), true),
            _ => (GatewayErrorKind::Status, format!("{reason}{quoted}"), false),
        };
        Failure {
            kind,
            status: Some(code),
            message,
            source: None,
            retry,
        }
    }

    /// A 2xx answer that could not be parsed.
    fn invalid(&self, method: Method, endpoint: &str, answer: &Answer, message: String) -> Error {
        Error::Gateway {
            method: method_name(&method),
            url: format!("{}{endpoint}", self.base),
            status: Some(answer.status.as_u16()),
            kind: GatewayErrorKind::InvalidResponse,
            message: format!(
                "{message}; the answer began: {:?}",
                response::snippet(&answer.body, None, 80)
            ),
            source: None,
        }
    }

    /// Reads the API key file (every time: a rotated Secret is picked up).
    async fn api_key(&self) -> Result<Option<ApiKey>> {
        let Some(path) = &self.config.api_key_file else {
            return Ok(None);
        };
        let config_error = |message: String, source: Option<std::io::Error>| Error::Gateway {
            method: "configure",
            url: self.base.clone(),
            status: None,
            kind: GatewayErrorKind::Config,
            message,
            source: source.map(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>),
        };
        let text = tokio::fs::read_to_string(path).await.map_err(|error| {
            config_error(
                format!("reading the API key file {}", path.display()),
                Some(error),
            )
        })?;
        let secret = text.trim();
        if secret.is_empty() {
            return Err(config_error(
                format!("the API key file {} is empty", path.display()),
                None,
            ));
        }
        let mut header = HeaderValue::from_str(secret).map_err(|_| {
            config_error(
                format!(
                    "the API key in {} holds characters an HTTP header cannot carry",
                    path.display()
                ),
                None,
            )
        })?;
        header.set_sensitive(true);
        Ok(Some(ApiKey {
            secret: secret.to_owned(),
            header,
        }))
    }
}

/// The key as read, and as a header value marked sensitive. No `Debug`: it must not be printed.
struct ApiKey {
    secret: String,
    header: HeaderValue,
}

fn method_name(method: &Method) -> &'static str {
    if *method == Method::POST {
        "POST"
    } else {
        "GET"
    }
}

/// A URL without user name and password, for messages.
fn redacted(url: &reqwest::Url) -> String {
    let mut url = url.clone();
    let _ = url.set_username("");
    let _ = url.set_password(None);
    url.as_str().trim_end_matches('/').to_owned()
}

/// Reads the PEM certificates of a CA file.
fn read_ca_file(path: &Path) -> std::result::Result<Vec<reqwest::Certificate>, String> {
    let pem = std::fs::read(path)
        .map_err(|error| format!("reading the CA file {}: {error}", path.display()))?;
    let certificates = reqwest::Certificate::from_pem_bundle(&pem).map_err(|error| {
        format!(
            "the CA file {} holds no usable PEM certificates: {error}",
            path.display()
        )
    })?;
    if certificates.is_empty() {
        return Err(format!(
            "the CA file {} holds no PEM certificates",
            path.display()
        ));
    }
    Ok(certificates)
}

/// Classifies a failure to get any answer.
fn transport_failure(error: reqwest::Error) -> Failure {
    // The URL is in the error message already.
    let error = error.without_url();
    let cause = crate::error::chain(&error);
    let (kind, message, retry) = if is_certificate_error(&cause) {
        let hint = if cause.contains("CaUsedAsEndEntity") {
            "the gateway's certificate is marked as a CA (basicConstraints CA:TRUE); a self-signed certificate trusted directly must have CA:FALSE"
        } else {
            "configure the CA that signed it"
        };
        (
            GatewayErrorKind::Certificate,
            format!("the gateway's TLS certificate is not trusted ({hint}): {cause}"),
            false,
        )
    } else if error.is_timeout() {
        (
            GatewayErrorKind::Unreachable,
            format!("timed out: {cause}"),
            true,
        )
    } else if error.is_builder() {
        (GatewayErrorKind::Config, cause, false)
    } else {
        (GatewayErrorKind::Unreachable, cause, true)
    };
    Failure {
        kind,
        status: None,
        message,
        source: Some(Box::new(error)),
        retry,
    }
}

/// rustls's verification errors, as reqwest reports them inside a connect error.
fn is_certificate_error(text: &str) -> bool {
    let text = text.to_ascii_lowercase();
    text.contains("certificate") || text.contains("unknownissuer")
}

/// Health from an error: no answer is `Down`, 503 is `Starting`, anything else stays an error.
fn classify_health(error: Error) -> Result<Health> {
    match error {
        Error::Gateway {
            kind: GatewayErrorKind::Unreachable,
            message,
            ..
        } => Ok(Health::Down(message)),
        Error::Gateway {
            kind: GatewayErrorKind::Status,
            status: Some(503),
            message,
            ..
        } => Ok(Health::Starting(format!("HTTP 503: {message}"))),
        other => Err(other),
    }
}

#[async_trait]
impl Gateway for IgnitionGateway {
    async fn pre_sync(&self) -> Result<PreSyncCheck> {
        let sessions = self.designer_sessions().await?;
        Ok(PreSyncCheck {
            designer_sessions: sessions.iter().map(ToString::to_string).collect(),
        })
    }

    async fn post_sync(&self, report: &SyncReport) -> Result<ScanOutcome> {
        tracing::debug!(
            changed = report.changed(),
            projects = ?report.projects,
            "asking the gateway to rescan"
        );
        self.scan().await
    }

    async fn health(&self) -> Result<Health> {
        IgnitionGateway::health(self).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config_error(url: &str) -> String {
        IgnitionGateway::new(IgnitionConfig::new(url))
            .expect_err("refused")
            .to_string()
    }

    #[test]
    fn urls_are_checked() {
        assert!(config_error("gateway:8088").contains("http:// or https://"));
        assert!(config_error("ftp://gw").contains("http:// or https://"));
        assert!(config_error("not a url").contains("not a URL"));
        assert!(config_error("http://gw:8088/?x=1").contains("query"));
        let secret = config_error("http://admin:hunter2@gw:8088");
        assert!(secret.contains("credentials"), "{secret}");
        assert!(!secret.contains("hunter2"), "{secret}");
        let gateway = IgnitionGateway::new(IgnitionConfig::new("http://gw:8088/prefix/")).unwrap();
        assert_eq!(gateway.url(), "http://gw:8088/prefix");
    }

    #[test]
    fn ca_file_must_hold_certificates() {
        let dir = std::env::temp_dir().join(format!("stoker-ca-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("empty.pem");
        std::fs::write(&file, "not a certificate\n").unwrap();
        let error = IgnitionGateway::new(IgnitionConfig::new("https://gw").with_ca_file(&file))
            .expect_err("refused");
        assert_eq!(error.gateway_kind(), Some(GatewayErrorKind::Config));
        let missing = IgnitionGateway::new(
            IgnitionConfig::new("https://gw").with_ca_file(dir.join("missing.pem")),
        )
        .expect_err("refused");
        assert!(missing.to_string().contains("missing.pem"), "{missing}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn certificate_errors_are_recognised() {
        assert!(is_certificate_error(
            "invalid peer certificate: UnknownIssuer"
        ));
        assert!(!is_certificate_error("connection refused"));
    }

    #[test]
    fn scan_outcome_reads_well() {
        let call = |endpoint, attempts| EndpointCall {
            method: "POST",
            endpoint,
            status: 200,
            attempts,
        };
        let outcome = ScanOutcome {
            projects: call(SCAN_PROJECTS, 1),
            config: call(SCAN_CONFIG, 2),
        };
        assert_eq!(
            outcome.to_string(),
            "scan/projects 200, scan/config 200 after 2 attempts"
        );
    }
}
