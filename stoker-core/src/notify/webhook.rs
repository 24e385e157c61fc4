//! What the built-in notifiers share: their configuration ([`WebhookConfig`]), the HTTP client
//! (timeouts, no redirects) and one `POST` whose failures are classified without ever naming
//! the URL.

use std::sync::Arc;
use std::time::Duration;

use crate::error::{Error, NotifyErrorKind, Result};
use crate::notify::Notifier;

/// Which kind of receiver a webhook is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum WebhookType {
    /// A Slack incoming webhook.
    Slack,
    /// A Microsoft Teams Workflows webhook (or a legacy incoming webhook).
    MsTeams,
    /// PagerDuty's Events API v2.
    PagerDuty,
    /// Any HTTP endpoint: the event as JSON, HMAC-signed when a secret is given.
    Generic,
}

impl WebhookType {
    /// The spelling of `spec.alerting.webhooks[].type` (`slack`, `msteams`, `pagerduty`,
    /// `generic`).
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookType::Slack => "slack",
            WebhookType::MsTeams => "msteams",
            WebhookType::PagerDuty => "pagerduty",
            WebhookType::Generic => "generic",
        }
    }
}

impl std::fmt::Display for WebhookType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One webhook, ready to build a notifier from ([`build`]).
///
/// `Debug` shows neither the URL nor the secret.
#[derive(Clone)]
pub struct WebhookConfig {
    /// Which receiver.
    pub kind: WebhookType,
    /// What errors and logs call it (`webhooks[0] (slack)`): never the URL.
    pub label: String,
    /// Where to `POST`. Required but for PagerDuty, whose default is
    /// [`pagerduty::DEFAULT_URL`](crate::notify::pagerduty::DEFAULT_URL).
    pub url: Option<String>,
    /// PagerDuty's routing key (required there); the generic webhook's HMAC key (optional);
    /// unused by Slack and Teams.
    pub secret: Option<Vec<u8>>,
    /// The longest one request may take, connecting included.
    pub timeout: Duration,
}

impl std::fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("kind", &self.kind)
            .field("label", &self.label)
            .field("url", &self.url.as_ref().map(|_| "<redacted>"))
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl WebhookConfig {
    /// The default request timeout.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

    /// A webhook of `kind` called `label`, without URL or secret yet.
    pub fn new(kind: WebhookType, label: impl Into<String>) -> Self {
        WebhookConfig {
            kind,
            label: label.into(),
            url: None,
            secret: None,
            timeout: Self::DEFAULT_TIMEOUT,
        }
    }

    /// Sets the URL.
    pub fn with_url(mut self, url: impl Into<String>) -> Self {
        self.url = Some(url.into());
        self
    }

    /// Sets the secret (routing key, HMAC key).
    pub fn with_secret(mut self, secret: impl Into<Vec<u8>>) -> Self {
        self.secret = Some(secret.into());
        self
    }

    /// Sets the request timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// A configuration error about this webhook.
    pub(crate) fn config_error(&self, message: impl Into<String>) -> Error {
        Error::Notify {
            webhook: self.label.clone(),
            status: None,
            kind: NotifyErrorKind::Config,
            retry_after: None,
            message: message.into(),
        }
    }

    /// The URL, parsed, or a configuration error that does not repeat it.
    pub(crate) fn parsed_url(&self, default: Option<&str>) -> Result<reqwest::Url> {
        let url = self
            .url
            .as_deref()
            .or(default)
            .ok_or_else(|| self.config_error("no URL"))?;
        let parsed = reqwest::Url::parse(url)
            .map_err(|error| self.config_error(format!("the URL does not parse: {error}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(self.config_error("the URL is not http or https"));
        }
        Ok(parsed)
    }
}

/// The notifier a webhook describes.
///
/// ```
/// use stoker_core::notify::{WebhookConfig, WebhookType, build};
/// let config = WebhookConfig::new(WebhookType::Slack, "webhooks[0] (slack)")
///     .with_url("https://hooks.slack.example/services/T0/B0/secret");
/// assert!(build(&config).is_ok());
/// let error = build(&WebhookConfig::new(WebhookType::Slack, "webhooks[1] (slack)")).err().unwrap();
/// assert_eq!(error.to_string(), "notification to webhooks[1] (slack): no URL");
/// ```
pub fn build(config: &WebhookConfig) -> Result<Arc<dyn Notifier>> {
    Ok(match config.kind {
        WebhookType::Slack => Arc::new(super::slack::SlackNotifier::new(config)?),
        WebhookType::MsTeams => Arc::new(super::teams::TeamsNotifier::new(config)?),
        WebhookType::PagerDuty => Arc::new(super::pagerduty::PagerDutyNotifier::new(config)?),
        WebhookType::Generic => Arc::new(super::generic::GenericNotifier::new(config)?),
    })
}

/// One `POST` to one webhook: the URL, the client and the label errors use.
pub(crate) struct Poster {
    label: String,
    url: reqwest::Url,
    client: reqwest::Client,
}

impl Poster {
    /// A poster for `config`, at `url`.
    pub(crate) fn new(config: &WebhookConfig, url: reqwest::Url) -> Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            // A redirect would resend the body (and its signature) somewhere else.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("stoker/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|error| {
                config.config_error(format!(
                    "building the HTTP client: {}",
                    crate::error::chain(&error.without_url())
                ))
            })?;
        Ok(Poster {
            label: config.label.clone(),
            url,
            client,
        })
    }

    /// Posts `body` as JSON with `headers`; `Ok` for any 2xx.
    pub(crate) async fn post(&self, body: Vec<u8>, headers: &[(&str, String)]) -> Result<()> {
        let mut request = self
            .client
            .post(self.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let response = request.send().await.map_err(|error| self.failed(error))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let kind = if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            NotifyErrorKind::Transient
        } else {
            NotifyErrorKind::Rejected
        };
        // The start of the answer says why (Slack answers `invalid_payload`, PagerDuty a JSON
        // error); receivers do not echo the URL.
        let text = response.text().await.unwrap_or_default();
        let message = text.chars().take(200).collect::<String>();
        Err(Error::Notify {
            webhook: self.label.clone(),
            status: Some(status.as_u16()),
            kind,
            retry_after,
            message: if message.trim().is_empty() {
                status.canonical_reason().unwrap_or("failed").to_owned()
            } else {
                message.trim().to_owned()
            },
        })
    }

    /// A request that got no answer: transient, described without the URL.
    fn failed(&self, error: reqwest::Error) -> Error {
        let what = if error.is_timeout() {
            "timed out"
        } else if error.is_connect() {
            "could not connect"
        } else {
            "request failed"
        };
        Error::Notify {
            webhook: self.label.clone(),
            status: None,
            kind: NotifyErrorKind::Transient,
            retry_after: None,
            message: format!("{what}: {}", crate::error::chain(&error.without_url())),
        }
    }
}

/// Lower-case hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        })
}

/// `text` cut to at most `max` characters, with `…` when cut.
pub(crate) fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_url_and_the_secret() {
        let config = WebhookConfig::new(WebhookType::Generic, "webhooks[2] (generic)")
            .with_url("https://hooks.example/T0/secret-path")
            .with_secret("hmac-key");
        let shown = format!("{config:?}");
        assert!(
            !shown.contains("secret-path") && !shown.contains("hmac-key"),
            "{shown}"
        );
        assert!(shown.contains("webhooks[2] (generic)"));
    }

    #[test]
    fn a_bad_url_is_a_config_error_that_does_not_repeat_it() {
        let config =
            WebhookConfig::new(WebhookType::Slack, "webhooks[0] (slack)").with_url("ftp://x/tok");
        let error = build(&config).err().expect("refused");
        assert_eq!(error.notify_kind(), Some(NotifyErrorKind::Config));
        assert!(!error.to_string().contains("tok"), "{error}");
        let config = WebhookConfig::new(WebhookType::Slack, "w").with_url("not a url tok");
        assert!(
            !build(&config)
                .err()
                .expect("refused")
                .to_string()
                .contains("tok")
        );
    }

    #[test]
    fn truncation_counts_characters() {
        assert_eq!(truncate("héllo", 5), "héllo");
        assert_eq!(truncate("héllo wörld", 5), "héll…");
    }
}
