//! The ref in a payload posted to `/webhook/{namespace}/{name}`, as stoker-operator v0.5.1
//! reads it: the first of these that is a non-empty string wins.
//!
//! | format | where the ref is |
//! |---|---|
//! | GitHub release event | `release.tag_name` |
//! | Argo CD notification | `app.metadata.annotations["git.ref"]` |
//! | Kargo promotion | `freight.commits[0].tag` |
//! | anything else | `ref` |

use serde_json::Value;

/// Which kind of caller sent a payload; it becomes the `stoker.io/requested-by` annotation and
/// the `source` label of `stoker_webhook_receiver_requests_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadSource {
    /// A GitHub release event.
    Github,
    /// An Argo CD notification.
    Argocd,
    /// A Kargo promotion.
    Kargo,
    /// `{"ref": "…"}` from anything else.
    Generic,
}

impl PayloadSource {
    /// The name v0.5.1 used (annotation value and metric label).
    pub fn as_str(self) -> &'static str {
        match self {
            PayloadSource::Github => "github",
            PayloadSource::Argocd => "argocd",
            PayloadSource::Kargo => "kargo",
            PayloadSource::Generic => "generic",
        }
    }
}

/// A ref requested by a payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestedRef {
    /// The ref (a tag, branch or commit, as the caller wrote it).
    pub reference: String,
    /// Who sent it.
    pub source: PayloadSource,
}

/// The ref `body` asks for, or `None` when it is not a JSON object or names no ref.
pub fn requested_ref(body: &[u8]) -> Option<RequestedRef> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let found = |pointer: &str, source| {
        value
            .pointer(pointer)
            .and_then(Value::as_str)
            .filter(|reference| !reference.is_empty())
            .map(|reference| RequestedRef {
                reference: reference.to_owned(),
                source,
            })
    };
    if !value.is_object() {
        return None;
    }
    found("/release/tag_name", PayloadSource::Github)
        // A JSON pointer escapes only `/` and `~`: `git.ref` is one key.
        .or_else(|| found("/app/metadata/annotations/git.ref", PayloadSource::Argocd))
        .or_else(|| found("/freight/commits/0/tag", PayloadSource::Kargo))
        .or_else(|| found("/ref", PayloadSource::Generic))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(body: &str) -> Option<(String, &'static str)> {
        requested_ref(body.as_bytes()).map(|r| (r.reference, r.source.as_str()))
    }

    #[test]
    fn each_v0_5_1_format_gives_its_ref_and_source() {
        let cases = [
            (
                r#"{"action":"published","release":{"tag_name":"2.0.0","name":"Release 2"}}"#,
                ("2.0.0", "github"),
            ),
            (
                r#"{"app":{"metadata":{"name":"plant","annotations":{"git.ref":"v1.4.0"}}}}"#,
                ("v1.4.0", "argocd"),
            ),
            (
                r#"{"freight":{"commits":[{"repoURL":"https://x","tag":"1.2.3"},{"tag":"0.9"}]}}"#,
                ("1.2.3", "kargo"),
            ),
            (r#"{"ref":"main"}"#, ("main", "generic")),
            (r#"{"ref":"réf/ünïcode"}"#, ("réf/ünïcode", "generic")),
        ];
        for (body, (reference, source)) in cases {
            assert_eq!(parsed(body), Some((reference.to_owned(), source)), "{body}");
        }
    }

    #[test]
    fn the_first_format_that_names_a_ref_wins() {
        // A GitHub release also has a top-level "ref"-like field in some tools' wrappers.
        assert_eq!(
            parsed(r#"{"ref":"main","release":{"tag_name":"3.0"}}"#),
            Some(("3.0".to_owned(), "github"))
        );
        // An empty tag falls through to the next format.
        assert_eq!(
            parsed(r#"{"release":{"tag_name":""},"ref":"fallback"}"#),
            Some(("fallback".to_owned(), "generic"))
        );
    }

    #[test]
    fn payloads_without_a_ref_give_none() {
        for body in [
            "",
            "not json",
            "[]",
            r#""ref""#,
            "{}",
            r#"{"ref":""}"#,
            r#"{"ref":42}"#,
            r#"{"release":{"tag_name":7}}"#,
            r#"{"freight":{"commits":[]}}"#,
            r#"{"freight":{"commits":[{"id":"abc"}]}}"#,
            r#"{"app":{"metadata":{"annotations":{}}}}"#,
            "{\"ref\":\"main\"",
        ] {
            assert_eq!(parsed(body), None, "{body:?}");
        }
    }
}
