//! Which live paths the engine may touch: managed roots, protected paths, excludes.

use globset::GlobSet;
use stoker_core::relpath::is_within;

/// The engine's own directory at the live root (manifest, lock, journal, reports).
pub const STATE_DIR: &str = ".stoker";

/// Name of Ignition's protected resource directories (`**/.resources/**`).
pub const RESOURCES_DIR: &str = ".resources";

/// Prefix of the engine's temporary files; a name with it is never synced from a source.
pub const TEMP_PREFIX: &str = ".stoker-tmp-";

/// What a managed root covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RootKind {
    /// Everything below the path.
    Dir,
    /// Exactly the path.
    File,
}

/// A mapping destination: the part of the live directory a mapping manages.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct ManagedRoot {
    /// Normalised relative path (`""` is the whole live directory).
    pub path: String,
    /// Directory or file.
    pub kind: RootKind,
}

impl ManagedRoot {
    /// True when this root manages `path`.
    pub fn manages(&self, path: &str) -> bool {
        match self.kind {
            RootKind::Dir => is_within(path, &self.path),
            RootKind::File => path == self.path,
        }
    }
}

/// The rules deciding what the engine may touch.
///
/// A *held* path is the destination of a mapping that was skipped this sync (its source is
/// missing, or is a symlink). The promise for a skipped mapping is that its destination is left
/// exactly as it is, so a held path and everything below it leave the scope of any mapping that
/// encloses it: nothing there is written or deleted. A root deeper than the held path (or at the
/// same path: a base and an optional overlay mapped to one directory) still manages what it
/// covers.
#[derive(Debug, Clone)]
pub struct Scope {
    roots: Vec<ManagedRoot>,
    held: Vec<String>,
    excludes: GlobSet,
    protected: GlobSet,
}

impl Scope {
    /// Builds a scope; `roots` may be in any order and overlap. `held`: the destinations of
    /// skipped mappings (see the type's documentation).
    pub fn new(
        roots: Vec<ManagedRoot>,
        held: Vec<String>,
        excludes: GlobSet,
        protected: GlobSet,
    ) -> Self {
        Scope {
            roots,
            held,
            excludes,
            protected,
        }
    }

    /// The destinations of skipped mappings, left as they are.
    pub fn held(&self) -> &[String] {
        &self.held
    }

    /// All managed roots, as given.
    pub fn roots(&self) -> &[ManagedRoot] {
        &self.roots
    }

    /// The roots not covered by another directory root: the ones to scan.
    pub fn top_roots(&self) -> Vec<ManagedRoot> {
        let mut top: Vec<ManagedRoot> = Vec::new();
        let mut sorted = self.roots.clone();
        // Directories first at equal paths, so a file root at a dir root's path is covered.
        sorted.sort_by(|a, b| {
            a.path
                .cmp(&b.path)
                .then((a.kind == RootKind::File).cmp(&(b.kind == RootKind::File)))
        });
        sorted.dedup();
        for root in sorted {
            let covered = top
                .iter()
                .any(|outer| outer.kind == RootKind::Dir && is_within(&root.path, &outer.path));
            if !covered {
                top.push(root);
            }
        }
        top
    }

    /// True when some root manages `path` and no held path deeper than that root contains it.
    pub fn is_managed(&self, path: &str) -> bool {
        let Some(depth) = self.deepest_root(path) else {
            return false;
        };
        !self
            .held
            .iter()
            .any(|held| held.len() > depth && is_within(path, held))
    }

    /// The length of the deepest root covering `path`. Every root and held path that covers
    /// `path` is one of its ancestors (or itself), so the longer path is the deeper one.
    fn deepest_root(&self, path: &str) -> Option<usize> {
        self.roots
            .iter()
            .filter(|root| root.manages(path))
            .map(|root| root.path.len())
            .max()
    }

    /// True for paths never written or deleted: `**/.resources/**`, the engine's state
    /// directory, and temporary-file names.
    pub fn is_protected(&self, path: &str) -> bool {
        is_within(path, STATE_DIR)
            || self.protected.is_match(path)
            // `**/.resources/**` matches what is inside; the `.resources` entry itself is just
            // as much the gateway's (removing or replacing it would take its content along).
            || file_name(path) == RESOURCES_DIR
            || file_name(path).starts_with(TEMP_PREFIX)
    }

    /// `is_protected(path) || is_excluded(path)`, matching both pattern sets against one parsed
    /// path (the desired set asks this for every file).
    pub fn is_protected_or_excluded(&self, path: &str) -> bool {
        if is_within(path, STATE_DIR)
            || file_name(path) == RESOURCES_DIR
            || file_name(path).starts_with(TEMP_PREFIX)
        {
            return true;
        }
        let candidate = globset::Candidate::new(path);
        self.protected.is_match_candidate(&candidate)
            || self.excludes.is_match_candidate(&candidate)
    }

    /// True when an exclude pattern matches the destination path.
    pub fn is_excluded(&self, path: &str) -> bool {
        self.excludes.is_match(path)
    }

    /// True when the directory `dir` may be removed once empty: strictly below a directory
    /// root (the root itself stays), managed (not held), neither protected nor excluded.
    pub fn may_prune(&self, dir: &str) -> bool {
        self.roots.iter().any(|root| {
            root.kind == RootKind::Dir && root.path != dir && is_within(dir, &root.path)
        }) && self.may_touch(dir)
    }

    /// True when `path` is managed only because a mapping's destination is the whole live
    /// directory (`.`): the deepest root covering it is the live root. Such a directory also
    /// holds what the gateway and people put there, so unless it is adopted
    /// ([`stoker_core::Profile::adopt`]) the engine deletes there only what it wrote.
    pub fn whole_directory_governs(&self, path: &str) -> bool {
        self.deepest_root(path) == Some(0)
    }

    /// True when the engine may delete or overwrite `path` (managed, not protected, not
    /// excluded).
    pub fn may_touch(&self, path: &str) -> bool {
        self.is_managed(path) && !self.is_protected(path) && !self.is_excluded(path)
    }
}

/// The last component of a `/`-separated path.
pub(crate) fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}
