//! Resolving a user's reference against the refs a remote advertises (pure logic).

/// One ref as the remote advertised it, with the commit it ultimately points to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AdvertisedRef {
    /// Full name: `refs/heads/main`, `refs/tags/v1`, `HEAD`.
    pub name: String,
    /// The peeled object id (for an annotated tag: the commit, not the tag object), hex.
    pub target: String,
}

/// What a reference string asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RefQuery {
    /// A full 40-hex-digit commit id (lowercased): used as is, checked when fetched.
    FullSha(String),
    /// Ref names to try in order, and an abbreviated SHA to match against ref tips when no name
    /// matches.
    Names {
        candidates: Vec<String>,
        abbreviated: Option<String>,
    },
}

impl RefQuery {
    /// Parses a reference like `git rev-parse` would read it: a full SHA; `HEAD`; an exact
    /// `refs/…` name; otherwise `refs/tags/X` then `refs/heads/X`; and, when `X` is 4 to 39
    /// hexadecimal digits, an abbreviated SHA as a last resort.
    pub fn parse(reference: &str) -> Result<RefQuery, String> {
        if reference.is_empty() {
            return Err("the reference is empty".into());
        }
        if reference
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(format!("{reference:?} is not a valid reference"));
        }
        let hex = reference.chars().all(|c| c.is_ascii_hexdigit());
        if hex && reference.len() == 40 {
            return Ok(RefQuery::FullSha(reference.to_ascii_lowercase()));
        }
        let candidates = if reference == "HEAD" {
            vec!["HEAD".to_owned()]
        } else if reference.starts_with("refs/") {
            vec![reference.to_owned()]
        } else {
            vec![
                format!("refs/tags/{reference}"),
                format!("refs/heads/{reference}"),
            ]
        };
        let abbreviated =
            (hex && (4..40).contains(&reference.len())).then(|| reference.to_ascii_lowercase());
        Ok(RefQuery::Names {
            candidates,
            abbreviated,
        })
    }

    /// The refspecs whose prefixes make the server list what the lookup needs (`ls-refs
    /// ref-prefix …`), or none for a full SHA (no network needed).
    pub fn refspecs(&self) -> Vec<String> {
        match self {
            RefQuery::FullSha(_) => Vec::new(),
            RefQuery::Names {
                candidates,
                abbreviated,
            } => {
                let mut specs = candidates.clone();
                if abbreviated.is_some() {
                    // Branch and tag tips (`refs/*` would not become an `ls-refs` prefix).
                    specs.push("refs/heads/*:refs/heads/*".to_owned());
                    specs.push("refs/tags/*:refs/tags/*".to_owned());
                }
                specs
            }
        }
    }
}

/// Finds the commit a reference names among the advertised refs. Returns the commit id (hex)
/// and the full ref name it came from.
pub(crate) fn lookup(
    reference: &str,
    query: &RefQuery,
    refs: &[AdvertisedRef],
) -> Result<(String, String), String> {
    let (candidates, abbreviated) = match query {
        RefQuery::FullSha(id) => return Ok((id.clone(), id.clone())),
        RefQuery::Names {
            candidates,
            abbreviated,
        } => (candidates, abbreviated),
    };
    for candidate in candidates {
        if let Some(found) = refs.iter().find(|r| &r.name == candidate) {
            return Ok((found.target.clone(), found.name.clone()));
        }
    }
    let Some(prefix) = abbreviated else {
        return Err(format!(
            "reference {reference:?} not found (looked for {})",
            candidates.join(", ")
        ));
    };
    let mut matches: Vec<&AdvertisedRef> = refs
        .iter()
        .filter(|r| r.target.starts_with(prefix.as_str()))
        .collect();
    matches.sort_by(|a, b| a.target.cmp(&b.target).then(a.name.cmp(&b.name)));
    matches.dedup_by(|a, b| a.target == b.target);
    match matches.as_slice() {
        [one] => Ok((one.target.clone(), one.name.clone())),
        [] => Err(format!(
            "reference {reference:?} not found: no branch or tag is named so, and no branch or tag \
             tip starts with it; an abbreviated SHA can only be resolved when a ref points at it, \
             so use the full 40-character SHA"
        )),
        many => Err(format!(
            "abbreviated SHA {reference:?} is ambiguous: it starts {}; use more characters or the \
             full SHA",
            many.iter()
                .map(|r| format!("{} ({})", r.target, r.name))
                .collect::<Vec<_>>()
                .join(" and ")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn advertised() -> Vec<AdvertisedRef> {
        let r = |name: &str, target: &str| AdvertisedRef {
            name: name.into(),
            target: target.into(),
        };
        vec![
            r("HEAD", "1111111111111111111111111111111111111111"),
            r(
                "refs/heads/main",
                "1111111111111111111111111111111111111111",
            ),
            r("refs/heads/v1", "2222222222222222222222222222222222222222"),
            r("refs/tags/v1", "3333333333333333333333333333333333333333"),
            r(
                "refs/heads/cafe",
                "4444444444444444444444444444444444444444",
            ),
            r("refs/heads/x", "abcd111111111111111111111111111111111111"),
            r("refs/heads/y", "abcd222222222222222222222222222222222222"),
        ]
    }

    fn resolve(reference: &str) -> Result<(String, String), String> {
        let query = RefQuery::parse(reference)?;
        lookup(reference, &query, &advertised())
    }

    #[test]
    fn tags_win_over_branches_like_rev_parse() {
        assert_eq!(resolve("v1").unwrap().1, "refs/tags/v1");
        assert_eq!(resolve("refs/heads/v1").unwrap().1, "refs/heads/v1");
        assert_eq!(resolve("main").unwrap().1, "refs/heads/main");
        assert_eq!(resolve("HEAD").unwrap().1, "HEAD");
    }

    #[test]
    fn names_win_over_abbreviated_shas() {
        assert_eq!(resolve("cafe").unwrap().1, "refs/heads/cafe");
    }

    #[test]
    fn abbreviated_sha_needs_exactly_one_tip() {
        assert_eq!(
            resolve("3333333").unwrap().0,
            "3333333333333333333333333333333333333333"
        );
        // HEAD and main point at the same commit: not ambiguous.
        assert!(resolve("1111").is_ok());
        let ambiguous = resolve("abcd").unwrap_err();
        assert!(ambiguous.contains("ambiguous"), "{ambiguous}");
        let missing = resolve("deadbee").unwrap_err();
        assert!(missing.contains("full 40-character SHA"), "{missing}");
    }

    #[test]
    fn full_sha_is_taken_as_is_and_lowercased() {
        let sha = "ABCDEF0123456789ABCDEF0123456789ABCDEF01";
        assert_eq!(
            RefQuery::parse(sha).unwrap(),
            RefQuery::FullSha(sha.to_ascii_lowercase())
        );
        assert!(RefQuery::parse(sha).unwrap().refspecs().is_empty());
    }

    #[test]
    fn missing_names_list_what_was_tried() {
        let error = resolve("nope").unwrap_err();
        assert!(error.contains("refs/heads/nope"), "{error}");
        assert!(RefQuery::parse("").is_err());
        assert!(RefQuery::parse("a b").is_err());
    }
}
