//! Whether files Stoker did not write may be deleted where a mapping to `.` manages the whole
//! data directory.

use crate::manifest::Manifest;
use crate::scope::Scope;
use crate::warning::Warning;

/// How a user adopts a data directory, for messages.
pub(crate) const ADOPT_HOW: &str = "a mapping to \".\" deletes only what Stoker wrote unless `adopt: true` is set in the profile or `--adopt` is given";

/// Whether files Stoker did not write may be deleted where a mapping to `.` manages the whole
/// data directory (see [`Scope::whole_directory_governs`](crate::scope::Scope)). The data
/// directory of a gateway holds the gateway's own files too, so Stoker deletes there only what
/// the manifest says it wrote, unless the profile adopts the directory.
pub(super) struct Adoption<'a> {
    adopted: bool,
    pub(super) manifest: Option<&'a Manifest>,
}

impl<'a> Adoption<'a> {
    pub(super) fn new(profile: &stoker_core::Profile, manifest: Option<&'a Manifest>) -> Self {
        Adoption {
            adopted: profile.adopt,
            manifest,
        }
    }

    /// True when `path`, managed by the scope, must be kept: only the whole-directory mapping
    /// manages it, the directory is not adopted, and Stoker did not write it.
    pub(super) fn keeps(&self, scope: &Scope, path: &str) -> bool {
        !self.adopted
            && scope.whole_directory_governs(path)
            && !self
                .manifest
                .is_some_and(|manifest| manifest.files.contains_key(path))
    }

    /// The warning naming what was kept (the first few paths, and how many in all).
    pub(super) fn warning(kept: &[&str]) -> Option<Warning> {
        (!kept.is_empty()).then(|| Warning::KeptUnadopted {
            shown: kept
                .iter()
                .take(Warning::KEPT_SHOWN)
                .map(|path| (*path).to_owned())
                .collect(),
            count: kept.len(),
        })
    }
}
