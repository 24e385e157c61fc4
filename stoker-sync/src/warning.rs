//! What a sync tells a person without failing: typed, so that the engine decides on variants
//! (the incremental plan's fallbacks) and never on text; [`std::fmt::Display`] gives the
//! sentence reports and the command line show.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Something a sync skipped, left alone or repaired, which a person should hear about.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Warning {
    /// The desired set left something of the repository out.
    Skipped(Skipped),
    /// The manifest or its log could not be (fully) used: every file was planned.
    Manifest(String),
    /// A live entry whose name is not UTF-8 was left alone.
    LiveNameNotUtf8 {
        /// The entry.
        path: PathBuf,
    },
    /// Files Stoker did not write, not in the repository, kept because the data directory is
    /// not adopted.
    KeptUnadopted {
        /// The first paths (at most [`Warning::KEPT_SHOWN`]).
        shown: Vec<String>,
        /// How many there are in all.
        count: usize,
    },
    /// Temporary files an interrupted sync left were removed.
    RemovedTemporaries(usize),
    /// A journal that could not be used was got out of the way (what was done).
    Journal(String),
}

/// Something of the repository the desired set left out. Kept in the manifest's plan record:
/// the incremental plan carries these over and falls back to the full plan when a changed path
/// is one of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Skipped {
    /// A mapping whose source is a symlink or special entry.
    MappingSourceNotFollowed {
        /// The mapping's index.
        index: usize,
        /// Its rendered source.
        source: String,
        /// What the source is (`symlink`, `special entry`).
        kind: String,
        /// Its rendered destination.
        destination: String,
    },
    /// A mapping whose source does not exist.
    MappingSourceMissing {
        /// The mapping's index.
        index: usize,
        /// Its rendered source.
        source: String,
        /// Its rendered destination.
        destination: String,
    },
    /// A mapping whose destination is protected.
    MappingDestinationProtected {
        /// The mapping's index.
        index: usize,
        /// Its rendered destination.
        destination: String,
    },
    /// A source file whose destination has a name reserved for Stoker's temporary files.
    ReservedName {
        /// The source path.
        path: String,
    },
    /// A source entry whose path is not a normalised relative path.
    NotNormalized {
        /// The source path.
        path: String,
    },
    /// A symlink or special entry below a directory mapping's source.
    NotFollowed {
        /// The source path.
        path: String,
        /// What it is (`symlink`, `special entry`).
        kind: String,
    },
    /// What the source reported while listing (a name no file system path could be): only
    /// its text is known, not which path it is about.
    Listing(String),
}

impl Warning {
    /// How many kept paths [`Warning::KeptUnadopted`] names.
    pub const KEPT_SHOWN: usize = 10;
}

impl Skipped {
    /// True when this may be about the source path `path`: a changed path that was skipped
    /// may no longer be (and the other way round), which only the full plan works out. A
    /// listing note names no path it can be checked against, so it may be about any.
    pub(crate) fn may_concern(&self, path: &str) -> bool {
        match self {
            Skipped::ReservedName { path: skipped }
            | Skipped::NotNormalized { path: skipped }
            | Skipped::NotFollowed { path: skipped, .. } => skipped == path,
            Skipped::Listing(_) => true,
            Skipped::MappingSourceNotFollowed { .. }
            | Skipped::MappingSourceMissing { .. }
            | Skipped::MappingDestinationProtected { .. } => false,
        }
    }
}

impl std::fmt::Display for Skipped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Skipped::MappingSourceNotFollowed {
                index,
                source,
                kind,
                destination,
            } => write!(
                f,
                "mappings[{index}]: source {source:?} is a {kind} in the repository, never followed; mapping skipped, destination {destination:?} left as it is"
            ),
            Skipped::MappingSourceMissing {
                index,
                source,
                destination,
            } => write!(
                f,
                "mappings[{index}]: source {source:?} does not exist; mapping skipped, destination {destination:?} left as it is"
            ),
            Skipped::MappingDestinationProtected { index, destination } => write!(
                f,
                "mappings[{index}]: destination {destination:?} is protected; mapping skipped"
            ),
            Skipped::ReservedName { path } => write!(
                f,
                "skipped {path}: names starting with {:?} are reserved for Stoker's temporary files",
                crate::scope::TEMP_PREFIX
            ),
            Skipped::NotNormalized { path } => {
                write!(f, "skipped {path:?}: not a normalised relative path")
            }
            Skipped::NotFollowed { path, kind } => {
                write!(
                    f,
                    "skipped {path}: a {kind} in the repository is never followed"
                )
            }
            Skipped::Listing(note) => f.write_str(note),
        }
    }
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Warning::Skipped(skipped) => skipped.fmt(f),
            Warning::Manifest(text) | Warning::Journal(text) => f.write_str(text),
            Warning::LiveNameNotUtf8 { path } => write!(
                f,
                "left alone {}: file name is not valid UTF-8",
                path.display()
            ),
            Warning::KeptUnadopted { shown, count } => {
                let mut names = shown
                    .iter()
                    .map(|path| format!("{path:?}"))
                    .collect::<Vec<_>>()
                    .join(", ");
                if *count > shown.len() {
                    names.push_str(&format!(" and {} more", count - shown.len()));
                }
                write!(
                    f,
                    "{count} file(s) Stoker did not write are not in the repository and were left in place, because the data directory is not adopted ({}): {names}",
                    crate::plan::ADOPT_HOW
                )
            }
            Warning::RemovedTemporaries(count) => write!(
                f,
                "removed {count} temporary file(s) left by an interrupted sync"
            ),
        }
    }
}

impl From<Skipped> for Warning {
    fn from(skipped: Skipped) -> Self {
        Warning::Skipped(skipped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sentences are the ones reports showed before warnings had types.
    #[test]
    fn warnings_read_as_before() {
        let cases: Vec<(Warning, &str)> = vec![
            (
                Skipped::MappingSourceMissing {
                    index: 1,
                    source: "site".into(),
                    destination: "projects/site".into(),
                }
                .into(),
                r#"mappings[1]: source "site" does not exist; mapping skipped, destination "projects/site" left as it is"#,
            ),
            (
                Skipped::NotFollowed {
                    path: "a/link".into(),
                    kind: "symlink".into(),
                }
                .into(),
                "skipped a/link: a symlink in the repository is never followed",
            ),
            (
                Skipped::NotNormalized {
                    path: "../x".into(),
                }
                .into(),
                r#"skipped "../x": not a normalised relative path"#,
            ),
            (
                Warning::RemovedTemporaries(2),
                "removed 2 temporary file(s) left by an interrupted sync",
            ),
            (
                Warning::LiveNameNotUtf8 {
                    path: "/live/a".into(),
                },
                "left alone /live/a: file name is not valid UTF-8",
            ),
        ];
        for (warning, text) in cases {
            assert_eq!(warning.to_string(), text);
        }
        let kept = Warning::KeptUnadopted {
            shown: vec!["a".into(), "b".into()],
            count: 12,
        }
        .to_string();
        assert!(
            kept.starts_with("12 file(s) Stoker did not write are not in the repository"),
            "{kept}"
        );
        assert!(kept.ends_with(r#": "a", "b" and 10 more"#), "{kept}");
    }

    /// Only a skipped path (or a listing note, which names none it can be checked against)
    /// concerns a changed path.
    #[test]
    fn a_skipped_entry_concerns_its_own_path() {
        let link = Skipped::NotFollowed {
            path: "a/link".into(),
            kind: "symlink".into(),
        };
        assert!(link.may_concern("a/link"));
        assert!(!link.may_concern("a/link2"));
        assert!(Skipped::Listing("skipped a\\b: a backslash".into()).may_concern("c"));
        let missing = Skipped::MappingSourceMissing {
            index: 0,
            source: "a".into(),
            destination: "b".into(),
        };
        assert!(!missing.may_concern("a"));
    }
}
