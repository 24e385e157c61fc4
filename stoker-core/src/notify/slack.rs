//! Slack incoming webhooks: `{"text": …, "blocks": […]}`.
//!
//! `text` is the whole message (what notifications and clients without blocks show); `blocks`
//! lay it out: a section with the message, a context line with what it concerns and the
//! revision. Slack's `mrkdwn` control characters (`&`, `<`, `>`) are escaped, so a gateway
//! name or error text cannot ping a channel or forge a link.

use async_trait::async_trait;
use serde_json::{Value, json};

use super::webhook::{Poster, WebhookConfig};
use crate::error::Result;
use crate::notify::{Event, EventKind, Notifier};

/// Posts events to a Slack incoming webhook (the URL is the credential).
pub struct SlackNotifier {
    poster: Poster,
}

impl std::fmt::Debug for SlackNotifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlackNotifier").finish_non_exhaustive()
    }
}

impl SlackNotifier {
    /// A notifier for `config` (its URL is required).
    pub fn new(config: &WebhookConfig) -> Result<Self> {
        let url = config.parsed_url(None)?;
        Ok(SlackNotifier {
            poster: Poster::new(config, url)?,
        })
    }
}

#[async_trait]
impl Notifier for SlackNotifier {
    async fn notify(&self, event: &Event) -> Result<()> {
        let body = serde_json::to_vec(&payload(event)).unwrap_or_default();
        self.poster.post(body, &[]).await
    }
}

/// The emoji shortcode that starts a message of `kind`.
fn emoji(kind: EventKind) -> &'static str {
    if kind.is_problem() {
        ":red_circle:"
    } else if kind.resolves().is_some() {
        ":large_green_circle:"
    } else if kind == EventKind::SyncCompleted {
        ":white_check_mark:"
    } else {
        ":arrows_counterclockwise:"
    }
}

/// Escapes Slack's `mrkdwn` control characters.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The JSON Slack is sent for `event`.
///
/// ```
/// use stoker_core::{Event, EventKind};
/// let event = Event {
///     kind: EventKind::SyncFailed,
///     gateway: "plant/site".into(),
///     revision: None,
///     message: "1 of 2 gateways failed: <gw-a>".into(),
/// };
/// let body = stoker_core::notify::slack::payload(&event);
/// assert_eq!(body["text"], ":red_circle: *SyncFailed* plant/site: 1 of 2 gateways failed: &lt;gw-a&gt;");
/// ```
pub fn payload(event: &Event) -> Value {
    let text = format!(
        "{} *{}* {}: {}",
        emoji(event.kind),
        event.kind,
        escape(&event.gateway),
        escape(&event.message)
    );
    let mut context = format!("Stoker · `{}`", escape(&event.gateway));
    if let Some(revision) = &event.revision {
        context.push_str(&format!(" · commit `{}`", escape(revision.short_id())));
        if let Some(reference) = &revision.reference {
            context.push_str(&format!(" ({})", escape(reference)));
        }
    }
    json!({
        "text": text,
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": text}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": context}]},
        ],
    })
}
