//! How an [`IgnitionGateway`](super::IgnitionGateway) is configured: URL, API key, TLS,
//! timeouts, retries.

use std::path::PathBuf;
use std::time::Duration;

/// Everything an [`IgnitionGateway`](super::IgnitionGateway) needs.
///
/// ```
/// use std::time::Duration;
/// use stoker_core::ignition::IgnitionConfig;
/// let config = IgnitionConfig::new("https://gateway.plant.example:8043")
///     .with_api_key_file("/var/run/secrets/ignition/api-key")
///     .with_ca_file("/var/run/secrets/ignition/ca.pem")
///     .with_timeout(Duration::from_secs(5));
/// assert_eq!(config.retry.max_attempts, 3);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IgnitionConfig {
    /// The gateway's base URL: `http://127.0.0.1:8088`, `https://gw.example:8043`, or with a
    /// path prefix when a reverse proxy serves the gateway below one. No credentials, query or
    /// fragment.
    pub url: String,
    /// The file holding the API key (`tokenName:secret`, as Ignition shows it once when the key
    /// is created), as a mounted Secret provides it. Surrounding whitespace (a trailing
    /// newline) is ignored. Read on every request, so a rotated key is picked up. `None` sends
    /// no key (the gateway then answers 401 to the documented routes).
    pub api_key_file: Option<PathBuf>,
    /// Extra certificate authorities (PEM) trusted for `https://`, on top of the system's: the
    /// CA that signed the gateway's certificate, or a self-signed gateway certificate itself
    /// (which must then have `basicConstraints CA:FALSE`, as a server certificate should).
    pub ca_file: Option<PathBuf>,
    /// Accept any certificate for `https://`. Must be set explicitly; logs a warning. Wins over
    /// `ca_file`.
    pub insecure_skip_tls_verify: bool,
    /// The longest one request may take, connect to last byte (default 10 s).
    pub timeout: Duration,
    /// The longest a connection may take to establish (default 5 s).
    pub connect_timeout: Duration,
    /// How rescans and Designer-session queries are retried.
    pub retry: Backoff,
}

impl IgnitionConfig {
    /// A configuration without API key or extra CA, default timeouts and retries.
    pub fn new(url: impl Into<String>) -> Self {
        IgnitionConfig {
            url: url.into(),
            api_key_file: None,
            ca_file: None,
            insecure_skip_tls_verify: false,
            timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            retry: Backoff::default(),
        }
    }

    /// Sends the API key held in this file.
    pub fn with_api_key_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.api_key_file = Some(path.into());
        self
    }

    /// Also trusts the certificate authorities in this PEM file for `https://`.
    pub fn with_ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_file = Some(path.into());
        self
    }

    /// Accepts any certificate (`true`): for a test gateway only.
    pub fn with_insecure_skip_tls_verify(mut self, insecure: bool) -> Self {
        self.insecure_skip_tls_verify = insecure;
        self
    }

    /// Gives each request at most this long.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Gives each connection attempt at most this long.
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Retries this way.
    pub fn with_retry(mut self, retry: Backoff) -> Self {
        self.retry = retry;
        self
    }
}

/// Exponential backoff for transient gateway failures (no answer, timeouts, HTTP 5xx and 429).
///
/// The delay before retry `n` (0-based) is `initial_delay * 2^n`, capped at `max_delay`.
/// Authentication, certificate and other 4xx failures are never retried.
///
/// ```
/// use std::time::Duration;
/// use stoker_core::ignition::Backoff;
/// let backoff = Backoff::default();
/// let delays: Vec<_> = (0..4).map(|n| backoff.delay(n).as_millis()).collect();
/// assert_eq!(delays, [500, 1000, 2000, 4000]);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Attempts in all, the first one included (default 3; 1 disables retries).
    pub max_attempts: u32,
    /// The first delay (default 500 ms).
    pub initial_delay: Duration,
    /// The longest delay (default 5 s).
    pub max_delay: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            max_attempts: 3,
            initial_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(5),
        }
    }
}

impl Backoff {
    /// No retries.
    pub fn none() -> Self {
        Backoff {
            max_attempts: 1,
            ..Backoff::default()
        }
    }

    /// The delay before retry number `retry` (0 for the first retry).
    pub fn delay(&self, retry: u32) -> Duration {
        let factor = 1u32.checked_shl(retry).unwrap_or(u32::MAX);
        self.initial_delay
            .checked_mul(factor)
            .unwrap_or(self.max_delay)
            .min(self.max_delay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let backoff = Backoff {
            max_attempts: 10,
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(350),
        };
        assert_eq!(backoff.delay(0), Duration::from_millis(100));
        assert_eq!(backoff.delay(1), Duration::from_millis(200));
        assert_eq!(backoff.delay(2), Duration::from_millis(350));
        assert_eq!(backoff.delay(40), Duration::from_millis(350));
        assert_eq!(Backoff::none().max_attempts, 1);
    }
}
