//! What a `Source` resolves a reference to.

use serde::{Deserialize, Serialize};

/// One immutable state of a source: a Git commit, an OCI digest, a directory snapshot.
///
/// ```
/// use stoker_core::Revision;
/// let rev = Revision::new("0123456789abcdef0123456789abcdef01234567").with_reference("main");
/// assert_eq!(rev.short_id(), "0123456");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Revision {
    /// The immutable id (full commit SHA for Git).
    pub id: String,
    /// The reference it was resolved from (`main`, `v2.2.3`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
}

impl Revision {
    /// A revision with an id and no reference.
    pub fn new(id: impl Into<String>) -> Self {
        Revision {
            id: id.into(),
            reference: None,
        }
    }

    /// Records the reference this revision was resolved from.
    pub fn with_reference(mut self, reference: impl Into<String>) -> Self {
        self.reference = Some(reference.into());
        self
    }

    /// The first 7 characters of the id, as `git log --oneline` shows it.
    pub fn short_id(&self) -> &str {
        let end = self
            .id
            .char_indices()
            .nth(7)
            .map_or(self.id.len(), |(index, _)| index);
        &self.id[..end]
    }
}

impl std::fmt::Display for Revision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.reference {
            Some(reference) => write!(f, "{} ({})", self.short_id(), reference),
            None => f.write_str(self.short_id()),
        }
    }
}
