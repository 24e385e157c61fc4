//! What the gateway answers, parsed leniently: documented fields are picked out, anything else
//! is ignored, and a field of an unexpected type is treated as missing.

use serde::Serialize;
use serde_json::Value;

/// One open Designer session (an item of `GET /data/api/v1/designers`).
///
/// Ignition 8.3 documents the answer as `{"items": [{"id", "user", "project", "address",
/// "timezone", "uptime", "lastcomm", "memory", "timeout"}], "metadata": {…}}`. A bare array of
/// items is accepted too. Numbers are kept as their decimal text.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DesignerSession {
    /// The session id.
    pub id: Option<String>,
    /// Who is logged in to the Designer.
    pub user: Option<String>,
    /// The project open in it.
    pub project: Option<String>,
    /// The Designer's network address.
    pub address: Option<String>,
}

impl std::fmt::Display for DesignerSession {
    /// `alice (project demo, session 12, from 10.0.0.5)`; missing parts are left out.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.user.as_deref().unwrap_or("unknown user"))?;
        let details: Vec<String> = [
            self.project.as_ref().map(|p| format!("project {p}")),
            self.id.as_ref().map(|id| format!("session {id}")),
            self.address.as_ref().map(|a| format!("from {a}")),
        ]
        .into_iter()
        .flatten()
        .collect();
        if !details.is_empty() {
            write!(f, " ({})", details.join(", "))?;
        }
        Ok(())
    }
}

/// What `GET /data/api/v1/gateway-info` says about the gateway (the fields Stoker shows).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewayInfo {
    /// The gateway's name.
    pub name: Option<String>,
    /// `8.3.3`, …
    pub ignition_version: Option<String>,
    /// `standard`, `edge`, …
    pub edition: Option<String>,
    /// The deployment mode (`dev`, `prod`, …; empty for the default).
    pub deployment_mode: Option<String>,
    /// `Independent`, `Master`, `Backup`.
    pub redundancy_role: Option<String>,
}

/// A JSON value as text: strings as they are, numbers and booleans printed, anything else
/// missing.
fn text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Parses the body of `GET /data/api/v1/designers`.
pub fn parse_designers(body: &[u8]) -> Result<Vec<DesignerSession>, String> {
    let value: Value =
        serde_json::from_slice(body).map_err(|error| format!("not JSON: {error}"))?;
    let items = match &value {
        Value::Array(items) => items,
        Value::Object(map) => match map.get("items") {
            Some(Value::Array(items)) => items,
            Some(Value::Null) | None => return Ok(Vec::new()),
            Some(_) => return Err("\"items\" is not an array".to_owned()),
        },
        _ => return Err("expected an object with \"items\" or an array".to_owned()),
    };
    items
        .iter()
        .map(|item| match item {
            Value::Object(map) => Ok(DesignerSession {
                id: text(map.get("id")),
                user: text(map.get("user").or_else(|| map.get("username"))),
                project: text(map.get("project").or_else(|| map.get("projectName"))),
                address: text(map.get("address")),
            }),
            _ => Err("a designer session is not an object".to_owned()),
        })
        .collect()
}

/// Parses the body of `GET /data/api/v1/gateway-info`.
pub fn parse_gateway_info(body: &[u8]) -> Result<GatewayInfo, String> {
    let value: Value =
        serde_json::from_slice(body).map_err(|error| format!("not JSON: {error}"))?;
    let Value::Object(map) = value else {
        return Err("expected a JSON object".to_owned());
    };
    Ok(GatewayInfo {
        name: text(map.get("name")),
        ignition_version: text(map.get("ignitionVersion")),
        edition: text(map.get("edition")),
        deployment_mode: text(map.get("deploymentMode")),
        redundancy_role: text(map.get("redundancyRole")),
    })
}

/// The start of an answer's body for an error message: at most `max` characters, whitespace
/// collapsed, every occurrence of `secret` (the API key) replaced by `***`.
pub fn snippet(body: &[u8], secret: Option<&str>, max: usize) -> String {
    let mut text = String::from_utf8_lossy(body).into_owned();
    if let Some(secret) = secret.filter(|s| !s.is_empty()) {
        text = text.replace(secret, "***");
    }
    if text.trim_start().starts_with('<') {
        text = strip_tags(&text);
    }
    let collapsed = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if collapsed.chars().count() > max {
        let cut: String = collapsed.chars().take(max).collect();
        format!("{cut}…")
    } else {
        collapsed
    }
}

/// The text of an HTML error page: tags replaced by spaces.
fn strip_tags(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                out.push(' ');
            }
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn designers_documented_shape_with_extra_fields() {
        let body = br#"{"items": [
            {"id": "5f3a", "user": "alice", "project": "demo", "address": "10.0.0.5",
             "timezone": "UTC", "uptime": 12345, "lastcomm": 1, "memory": {"used": 1}, "x": null},
            {"id": 17, "user": "bob"}
        ], "metadata": {"total": 2}}"#;
        let sessions = parse_designers(body).expect("parses");
        assert_eq!(sessions.len(), 2);
        assert_eq!(sessions[0].user.as_deref(), Some("alice"));
        assert_eq!(sessions[0].project.as_deref(), Some("demo"));
        assert_eq!(sessions[1].id.as_deref(), Some("17"));
        assert_eq!(sessions[1].project, None);
        assert_eq!(
            sessions[0].to_string(),
            "alice (project demo, session 5f3a, from 10.0.0.5)"
        );
        assert_eq!(sessions[1].to_string(), "bob (session 17)");
    }

    #[test]
    fn designers_empty_and_bare_array() {
        assert_eq!(parse_designers(br#"{"items": []}"#), Ok(vec![]));
        assert_eq!(parse_designers(br#"{"metadata": {}}"#), Ok(vec![]));
        assert_eq!(parse_designers(br#"{"items": null}"#), Ok(vec![]));
        let bare = parse_designers(br#"[{"username": "carol", "projectName": "p"}]"#).unwrap();
        assert_eq!(bare[0].user.as_deref(), Some("carol"));
        assert_eq!(bare[0].project.as_deref(), Some("p"));
        assert_eq!(DesignerSession::default().to_string(), "unknown user");
    }

    #[test]
    fn designers_garbage_is_an_error() {
        assert!(parse_designers(b"<html>").is_err());
        assert!(parse_designers(br#"{"items": 3}"#).is_err());
        assert!(parse_designers(br#"[1]"#).is_err());
        assert!(parse_designers(br#""x""#).is_err());
    }

    #[test]
    fn gateway_info_fields() {
        let info = parse_gateway_info(
            br#"{"name": "gw1", "ignitionVersion": "8.3.3", "edition": "standard",
                 "deploymentMode": "", "redundancyRole": "Independent", "port": "8088",
                 "license": {"mode": "Trial"}}"#,
        )
        .unwrap();
        assert_eq!(info.name.as_deref(), Some("gw1"));
        assert_eq!(info.ignition_version.as_deref(), Some("8.3.3"));
        assert_eq!(info.deployment_mode.as_deref(), Some(""));
        assert!(parse_gateway_info(b"[]").is_err());
        assert_eq!(parse_gateway_info(b"{}").unwrap(), GatewayInfo::default());
    }

    #[test]
    fn snippet_redacts_and_truncates() {
        assert_eq!(
            snippet(b"bad key k:s3cret\n\n here", Some("k:s3cret"), 100),
            "bad key *** here"
        );
        assert_eq!(snippet(b"abcdef", None, 3), "abc…");
        assert_eq!(snippet(b"", Some(""), 3), "");
        assert_eq!(
            snippet(
                b"<html><h2>HTTP ERROR 500</h2><p>boom</p></html>",
                None,
                100
            ),
            "HTTP ERROR 500 boom"
        );
    }
}
