//! Which ref the operator resolves: `spec.git.ref`, or the `stoker.io/requested-ref` annotation a
//! webhook (a Git push, a promotion tool) put on the resource.
//!
//! The annotation is a fast path: it wins until the spec catches up (a GitOps tool applies the
//! new `spec.git.ref` some time after the webhook fired). Once the two match — `v2.2.3` matches
//! `2.2.3`, tags and chart values often differ by that `v` — the spec is used again and the
//! annotation should be removed, so a stale annotation never pins the resource to an old ref.
//!
//! ```
//! use std::collections::BTreeMap;
//! use stoker_k8s::refs::{ref_to_resolve, RefSource};
//! let mut annotations = BTreeMap::new();
//! annotations.insert("stoker.io/requested-ref".to_owned(), "v2.2.3".to_owned());
//!
//! let before = ref_to_resolve("2.2.2", Some(&annotations));
//! assert_eq!((before.reference.as_str(), before.source), ("v2.2.3", RefSource::Annotation));
//! assert!(!before.remove_annotation);
//!
//! let caught_up = ref_to_resolve("2.2.3", Some(&annotations));
//! assert_eq!((caught_up.reference.as_str(), caught_up.source), ("2.2.3", RefSource::Spec));
//! assert!(caught_up.remove_annotation);
//! ```

use std::collections::BTreeMap;

use crate::annotations::REQUESTED_REF;

/// Where the ref to resolve comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RefSource {
    /// `spec.git.ref`.
    Spec,
    /// The `stoker.io/requested-ref` annotation.
    Annotation,
}

/// The outcome of [`ref_to_resolve`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefDecision {
    /// The ref to resolve.
    pub reference: String,
    /// Where it comes from.
    pub source: RefSource,
    /// True when the resource carries a `stoker.io/requested-ref` annotation that the spec has
    /// caught up with (or that is empty): the operator should remove it (together with
    /// `stoker.io/requested-at` and `-by`).
    pub remove_annotation: bool,
}

/// Decides which ref to resolve from `spec.git.ref` and the resource's annotations.
pub fn ref_to_resolve(
    spec_ref: &str,
    annotations: Option<&BTreeMap<String, String>>,
) -> RefDecision {
    let requested = annotations.and_then(|a| a.get(REQUESTED_REF));
    match requested.map(|r| r.trim()) {
        Some(requested) if !requested.is_empty() && !refs_match(requested, spec_ref) => {
            RefDecision {
                reference: requested.to_owned(),
                source: RefSource::Annotation,
                remove_annotation: false,
            }
        }
        other => RefDecision {
            reference: spec_ref.to_owned(),
            source: RefSource::Spec,
            remove_annotation: other.is_some(),
        },
    }
}

/// True when two refs name the same thing up to a leading `v` on version-like refs and
/// surrounding blanks: `v2.2.3` matches `2.2.3`; `main` matches only `main`.
///
/// ```
/// use stoker_k8s::refs::refs_match;
/// assert!(refs_match("v2.2.3", "2.2.3"));
/// assert!(refs_match("2.2.3", "v2.2.3"));
/// assert!(!refs_match("v2.2.3", "2.2.4"));
/// assert!(!refs_match("vmain", "main"));
/// ```
pub fn refs_match(a: &str, b: &str) -> bool {
    let normalize = |r: &str| -> String {
        let r = r.trim();
        match r.strip_prefix(['v', 'V']) {
            Some(rest) if rest.starts_with(|c: char| c.is_ascii_digit()) => rest.to_owned(),
            _ => r.to_owned(),
        }
    };
    normalize(a) == normalize(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn annotated(value: &str) -> BTreeMap<String, String> {
        BTreeMap::from([(REQUESTED_REF.to_owned(), value.to_owned())])
    }

    #[test]
    fn without_the_annotation_the_spec_wins() {
        let decision = ref_to_resolve("main", None);
        assert_eq!(decision.reference, "main");
        assert_eq!(decision.source, RefSource::Spec);
        assert!(!decision.remove_annotation);
        let decision = ref_to_resolve("main", Some(&BTreeMap::new()));
        assert!(!decision.remove_annotation);
    }

    #[test]
    fn the_annotation_wins_until_the_spec_catches_up() {
        let decision = ref_to_resolve("release-1", Some(&annotated("release-2")));
        assert_eq!(decision.reference, "release-2");
        assert_eq!(decision.source, RefSource::Annotation);
        let decision = ref_to_resolve("release-2", Some(&annotated("release-2")));
        assert_eq!(decision.reference, "release-2");
        assert_eq!(decision.source, RefSource::Spec);
        assert!(decision.remove_annotation);
    }

    #[test]
    fn an_empty_annotation_is_ignored_and_should_be_removed() {
        let decision = ref_to_resolve("main", Some(&annotated("  ")));
        assert_eq!(decision.reference, "main");
        assert!(decision.remove_annotation);
    }

    #[test]
    fn a_v_prefix_only_counts_before_a_digit() {
        assert!(refs_match(" v1.0 ", "1.0"));
        assert!(refs_match("V1.0", "v1.0"));
        assert!(!refs_match("very", "ery"));
    }
}
