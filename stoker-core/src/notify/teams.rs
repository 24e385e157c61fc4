//! Microsoft Teams: a message carrying one Adaptive Card, the payload both Teams Workflows
//! ("When a Teams webhook request is received") and the older incoming webhooks accept.

use async_trait::async_trait;
use serde_json::{Value, json};

use super::webhook::{Poster, WebhookConfig};
use crate::error::Result;
use crate::notify::{Event, Notifier};

/// Posts events to a Teams webhook (the URL is the credential).
pub struct TeamsNotifier {
    poster: Poster,
}

impl std::fmt::Debug for TeamsNotifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TeamsNotifier").finish_non_exhaustive()
    }
}

impl TeamsNotifier {
    /// A notifier for `config` (its URL is required).
    pub fn new(config: &WebhookConfig) -> Result<Self> {
        let url = config.parsed_url(None)?;
        Ok(TeamsNotifier {
            poster: Poster::new(config, url)?,
        })
    }
}

#[async_trait]
impl Notifier for TeamsNotifier {
    async fn notify(&self, event: &Event) -> Result<()> {
        let body = serde_json::to_vec(&payload(event)).unwrap_or_default();
        self.poster.post(body, &[]).await
    }
}

/// The JSON Teams is sent for `event`: `{"type": "message", "attachments": [{"contentType":
/// "application/vnd.microsoft.card.adaptive", "content": {AdaptiveCard 1.4}}]}`, the card a
/// title (colored by kind), the message and facts (what it concerns, the revision).
///
/// ```
/// use stoker_core::{Event, EventKind};
/// let event = Event {
///     kind: EventKind::SyncCompleted,
///     gateway: "plant/site".into(),
///     revision: None,
///     message: "2 of 2 gateways synced".into(),
/// };
/// let body = stoker_core::notify::teams::payload(&event);
/// let card = &body["attachments"][0]["content"];
/// assert_eq!(card["type"], "AdaptiveCard");
/// assert_eq!(card["body"][1]["text"], "2 of 2 gateways synced");
/// ```
pub fn payload(event: &Event) -> Value {
    let color = if event.kind.is_problem() {
        "Attention"
    } else {
        "Good"
    };
    let mut facts = vec![
        json!({"title": "Event", "value": event.kind.as_str()}),
        json!({"title": "Resource", "value": event.gateway}),
    ];
    if let Some(revision) = &event.revision {
        facts.push(json!({"title": "Commit", "value": revision.short_id()}));
        if let Some(reference) = &revision.reference {
            facts.push(json!({"title": "Ref", "value": reference}));
        }
    }
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "body": [
                    {
                        "type": "TextBlock",
                        "text": format!("Stoker: {} {}", event.kind, event.gateway),
                        "weight": "Bolder",
                        "size": "Medium",
                        "color": color,
                        "wrap": true,
                    },
                    {"type": "TextBlock", "text": event.message, "wrap": true},
                    {"type": "FactSet", "facts": facts},
                ],
            },
        }],
    })
}
