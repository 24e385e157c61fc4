//! Reading the live directory: only below the managed roots, never following a symlink.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use stoker_core::relpath::join;

use crate::error::{Error, Result};
use crate::scope::{ManagedRoot, RESOURCES_DIR, RootKind, STATE_DIR, Scope};

/// What sits at a live path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiveKind {
    /// A regular file.
    File,
    /// A directory (real, not a symlink).
    Dir,
    /// A symbolic link (never followed).
    Symlink,
    /// A socket, FIFO or device.
    Other,
}

/// The `lstat` fields the manifest's fast path compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Stat {
    /// Size in bytes.
    pub size: u64,
    /// Modification time, nanoseconds since the epoch (i64 holds dates up to 2262).
    pub mtime: i64,
    /// Status-change time, nanoseconds since the epoch (cannot be set by `touch`).
    pub ctime: i64,
    /// Inode number (a rename-into-place gives a new one).
    pub ino: u64,
    /// Permission bits.
    pub mode: u32,
}

impl Stat {
    /// Reads the fields from metadata.
    pub fn of(metadata: &std::fs::Metadata) -> Self {
        Stat {
            size: metadata.size(),
            mtime: metadata
                .mtime()
                .saturating_mul(1_000_000_000)
                .saturating_add(metadata.mtime_nsec()),
            ctime: metadata
                .ctime()
                .saturating_mul(1_000_000_000)
                .saturating_add(metadata.ctime_nsec()),
            ino: metadata.ino(),
            mode: metadata.mode(),
        }
    }

    /// True when the owner-executable bit is set.
    pub fn executable(&self) -> bool {
        self.mode & 0o100 != 0
    }
}

/// One live entry below a managed root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LiveEntry {
    /// File, directory, symlink, other.
    pub kind: LiveKind,
    /// Its `lstat`.
    pub stat: Stat,
}

/// The live entries below the managed roots.
#[derive(Debug, Clone, Default)]
pub struct LiveTree {
    /// Relative path → entry, including directories below directory roots.
    pub entries: BTreeMap<String, LiveEntry>,
    /// Entries skipped (non-UTF-8 names).
    pub warnings: Vec<String>,
    /// Directories holding entries the scan did not list (names that are not UTF-8, the content
    /// of a directory found where a file root is): the engine leaves those alone, so it can
    /// never empty these directories.
    pub unlisted_in: BTreeSet<String>,
}

impl LiveTree {
    /// Entries strictly below `dir`.
    pub fn below<'a>(
        &'a self,
        dir: &'a str,
    ) -> impl Iterator<Item = (&'a String, &'a LiveEntry)> + 'a {
        let prefix = format!("{dir}/");
        self.entries
            .range(prefix.clone()..)
            .take_while(move |(path, _)| path.starts_with(&prefix))
    }
}

fn kind_of(file_type: std::fs::FileType) -> LiveKind {
    if file_type.is_symlink() {
        LiveKind::Symlink
    } else if file_type.is_dir() {
        LiveKind::Dir
    } else if file_type.is_file() {
        LiveKind::File
    } else {
        LiveKind::Other
    }
}

/// `lstat` of a live path; `None` when it does not exist.
pub fn lstat(path: &Path) -> Result<Option<std::fs::Metadata>> {
    match std::fs::symlink_metadata(path) {
        Ok(metadata) => Ok(Some(metadata)),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(Error::io("inspecting", path, error)),
    }
}

/// Checks that the live directory's path down to a root crosses only real directories (or
/// nothing yet), so writing below the root never goes through a symlink the engine does not
/// manage.
///
/// Returns `false` when an ancestor is a non-directory that is itself managed (a `file`
/// destination `a` above a root `a/b`): nothing can exist below it, and replacing it is the
/// managing mapping's business, so there is nothing to scan.
fn check_ancestors(live: &Path, root: &ManagedRoot, scope: &Scope) -> Result<bool> {
    let mut prefix = String::new();
    let components: Vec<&str> = root.path.split('/').filter(|c| !c.is_empty()).collect();
    let ancestors = components.len().saturating_sub(1);
    for component in &components[..ancestors] {
        prefix = join(&prefix, component);
        let full = live.join(&prefix);
        match lstat(&full)? {
            None => return Ok(true),
            Some(metadata) if metadata.file_type().is_dir() => continue,
            Some(_) if scope.is_managed(&prefix) => return Ok(false),
            Some(metadata) if metadata.file_type().is_symlink() => {
                return Err(Error::unsafe_live(
                    full,
                    format!(
                        "is a symlink outside the managed paths; refusing to write {} through it",
                        root.path
                    ),
                ));
            }
            Some(_) => {
                return Err(Error::unsafe_live(
                    full,
                    format!(
                        "is not a directory, but the managed path {} lies below it; it is not managed, so it is left alone",
                        root.path
                    ),
                ));
            }
        }
    }
    Ok(true)
}

/// Scans the live entries below every managed root. Protected directories (`.resources`, the
/// engine's `.stoker`) are not entered.
pub fn scan(live: &Path, scope: &Scope) -> Result<LiveTree> {
    let mut tree = LiveTree::default();
    match lstat(live)? {
        None => return Ok(tree),
        Some(metadata) if !metadata.is_dir() && !metadata.file_type().is_symlink() => {
            return Err(Error::unsafe_live(live, "is not a directory"));
        }
        Some(_) => {}
    }
    for root in scope.top_roots() {
        if !check_ancestors(live, &root, scope)? {
            continue;
        }
        let full = if root.path.is_empty() {
            live.to_path_buf()
        } else {
            live.join(&root.path)
        };
        let Some(metadata) = lstat(&full)? else {
            continue;
        };
        let kind = kind_of(metadata.file_type());
        if !root.path.is_empty() {
            tree.entries.insert(
                root.path.clone(),
                LiveEntry {
                    kind,
                    stat: Stat::of(&metadata),
                },
            );
        }
        if kind != LiveKind::Dir {
            continue;
        }
        if root.kind == RootKind::File {
            // A directory where a file root is: its content is not listed here. Children that
            // other roots manage are scanned by those roots; any other child is not managed, so
            // a plan needing this place refuses (instead of failing halfway through the apply).
            let entries =
                std::fs::read_dir(&full).map_err(|source| Error::io("scanning", &full, source))?;
            for child in entries {
                let child = child.map_err(|source| Error::io("scanning", &full, source))?;
                let managed = child
                    .file_name()
                    .to_str()
                    .is_some_and(|name| scope.is_managed(&join(&root.path, name)));
                if !managed {
                    tree.unlisted_in.insert(root.path.clone());
                    break;
                }
            }
            continue;
        }
        walk_root(&full, &root.path, scope, &mut tree)?;
    }
    Ok(tree)
}

fn walk_root(full: &Path, root: &str, scope: &Scope, tree: &mut LiveTree) -> Result<()> {
    let mut walker = walkdir::WalkDir::new(full)
        .follow_links(false)
        .min_depth(1)
        .into_iter();
    while let Some(item) = walker.next() {
        let item = item.map_err(|error| {
            let path = error.path().unwrap_or(full).to_path_buf();
            Error::io(
                "scanning",
                path,
                error
                    .into_io_error()
                    .unwrap_or_else(|| std::io::Error::other("file system loop")),
            )
        })?;
        let is_dir = item.file_type().is_dir();
        // The state dir only counts at the live root.
        if is_dir && root.is_empty() && item.depth() == 1 && item.file_name() == STATE_DIR {
            walker.skip_current_dir();
            continue;
        }
        // Protected `.resources` directories are never entered, but they are listed (as
        // untouchable entries) so that a plan needing their place refuses up front instead of
        // failing halfway through clearing their parent.
        let resources = is_dir && item.file_name() == RESOURCES_DIR;
        if resources {
            walker.skip_current_dir();
        }
        let relative = item.path().strip_prefix(full).unwrap_or(item.path());
        let Some(relative_str) = relative.to_str() else {
            tree.warnings.push(format!(
                "left alone {}: file name is not valid UTF-8",
                item.path().display()
            ));
            if is_dir {
                walker.skip_current_dir();
            }
            // Its directory can never be emptied by the engine: remember it (the parent's name
            // is UTF-8, or the walk would not have entered it).
            let parent = relative.parent().and_then(Path::to_str).unwrap_or("");
            tree.unlisted_in.insert(join(root, parent));
            continue;
        };
        let path = join(root, relative_str);
        if scope.is_protected(&path) && is_dir && !resources {
            continue;
        }
        let metadata = item
            .metadata()
            .map_err(|error| Error::io("scanning", item.path(), std::io::Error::other(error)))?;
        tree.entries.insert(
            path,
            LiveEntry {
                kind: kind_of(metadata.file_type()),
                stat: Stat::of(&metadata),
            },
        );
    }
    Ok(())
}
