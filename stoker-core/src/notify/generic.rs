//! Any HTTP endpoint: the [`Event`] as JSON (`{"kind", "gateway", "revision", "message"}`),
//! with `X-Stoker-Event: <kind>` and, when a secret is given,
//! `X-Stoker-Signature-256: sha256=<hex HMAC-SHA256 of the body>` — the scheme of GitHub's
//! `X-Hub-Signature-256`, so the receiving side checks it the way it checks GitHub's.

use async_trait::async_trait;

use super::webhook::{Poster, WebhookConfig, hex};
use crate::error::Result;
use crate::notify::{Event, Notifier};

/// The signature header.
pub const SIGNATURE_HEADER: &str = "X-Stoker-Signature-256";
/// The header naming the event's kind.
pub const EVENT_HEADER: &str = "X-Stoker-Event";

/// Posts events as JSON, signed when it has a key.
pub struct GenericNotifier {
    poster: Poster,
    key: Option<aws_lc_rs::hmac::Key>,
}

impl std::fmt::Debug for GenericNotifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GenericNotifier")
            .field("signed", &self.key.is_some())
            .finish_non_exhaustive()
    }
}

impl GenericNotifier {
    /// A notifier for `config` (URL required; its secret, if any, is the HMAC key).
    pub fn new(config: &WebhookConfig) -> Result<Self> {
        let url = config.parsed_url(None)?;
        let key = config
            .secret
            .as_deref()
            .filter(|secret| !secret.is_empty())
            .map(|secret| aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret));
        Ok(GenericNotifier {
            poster: Poster::new(config, url)?,
            key,
        })
    }
}

/// `sha256=<hex>`: the HMAC-SHA256 of `body` with `secret`, as the signature header carries it.
///
/// ```
/// // RFC 4231 test case 2.
/// assert_eq!(
///     stoker_core::notify::generic::signature(b"Jefe", b"what do ya want for nothing?"),
///     "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
/// );
/// ```
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret);
    format!("sha256={}", hex(aws_lc_rs::hmac::sign(&key, body).as_ref()))
}

#[async_trait]
impl Notifier for GenericNotifier {
    async fn notify(&self, event: &Event) -> Result<()> {
        let body = serde_json::to_vec(event).unwrap_or_default();
        let mut headers = vec![(EVENT_HEADER, event.kind.as_str().to_owned())];
        if let Some(key) = &self.key {
            let tag = aws_lc_rs::hmac::sign(key, &body);
            headers.push((SIGNATURE_HEADER, format!("sha256={}", hex(tag.as_ref()))));
        }
        self.poster.post(body, &headers).await
    }
}
