//! Reading the live directory: only below the managed roots, never following a symlink.
//!
//! [`scan`] lists every directory it enters and `lstat`s every entry. [`scan_guided`] walks the
//! same way, but takes a directory's entry names from the previous sync's record (a
//! [`DirRecord`], kept in the manifest) when the directory's `lstat` still matches and was
//! already older than the manifest then (Git's untracked cache works the same way: creating,
//! removing or renaming an entry changes its directory's mtime and ctime). Every entry is still
//! `lstat`ed — that is the drift check — so both return the same [`LiveTree`].

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use rayon::prelude::*;
use stoker_core::relpath::{is_within, join};

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

impl LiveEntry {
    /// The entry `metadata` (an `lstat`) describes.
    pub fn of(metadata: &std::fs::Metadata) -> Self {
        LiveEntry {
            kind: kind_of(metadata.file_type()),
            stat: Stat::of(metadata),
        }
    }
}

/// The live entries below the managed roots.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LiveTree {
    /// Relative path → entry, including directories below directory roots.
    pub entries: BTreeMap<String, LiveEntry>,
    /// Entries skipped (non-UTF-8 names).
    pub warnings: Vec<crate::Warning>,
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

/// What a directory held when it was last listed: its `lstat` just before, and the names of its
/// entries. Kept in the manifest; a later scan trusts the names while the directory's `lstat`
/// matches (see [`scan_guided`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirRecord {
    /// The directory's `lstat`, taken before it was listed.
    pub stat: Stat,
    /// Its entries' names, sorted, joined with `/` (which no name contains); empty for an empty
    /// directory. Directories holding a name that is not UTF-8 are never recorded.
    pub names: String,
}

impl DirRecord {
    /// The recorded entry names.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.names.split('/').filter(|name| !name.is_empty())
    }
}

/// The previous sync's directory records and when they were written.
#[derive(Debug, Clone, Copy)]
pub struct Guide<'a> {
    /// Directory path (relative, `""` for the live root) → record.
    pub dirs: &'a BTreeMap<String, DirRecord>,
    /// When the records were written (the manifest's mtime, in file-system time).
    pub written: i64,
}

impl<'a> Guide<'a> {
    /// The record of `dir`, when its `lstat` is `stat` and it is older than the record: the
    /// names are then still those the directory holds.
    fn vouched(self, dir: &str, stat: &Stat) -> Option<&'a DirRecord> {
        // "Racy clean": on a coarse clock a change in the same tick as the record leaves the
        // times as recorded, so only a directory whose ctime is strictly older than the manifest
        // is trusted (the rule the manifest's files follow).
        self.dirs
            .get(dir)
            .filter(|record| record.stat == *stat && stat.ctime < self.written)
    }
}

/// A scan's result, and what the next sync may keep of it.
#[derive(Debug, Clone, Default)]
pub struct Scan {
    /// The live entries.
    pub tree: LiveTree,
    /// Every directory the walk listed or took from the guide (except those holding names that
    /// are not UTF-8), for the next manifest.
    pub dirs: BTreeMap<String, DirRecord>,
    /// Directories read from disk.
    pub listed: usize,
    /// Directories whose names came from the guide.
    pub vouched: usize,
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
/// Returns `false` when an ancestor is a non-directory the engine may replace (a `file`
/// destination `a` above a root `a/b`, or an entry inside a directory root): nothing can exist
/// below it, and replacing it is the managing mapping's business, so there is nothing to scan.
/// One it may not touch (outside the managed paths, excluded or protected) is an error.
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
            Some(_) if scope.may_touch(&prefix) => return Ok(false),
            Some(metadata) if metadata.file_type().is_symlink() => {
                return Err(Error::unsafe_live(
                    full,
                    format!(
                        "is a symlink outside the managed paths (or excluded or protected); refusing to write {} through it",
                        root.path
                    ),
                ));
            }
            Some(_) => {
                return Err(Error::unsafe_live(
                    full,
                    format!(
                        "is not a directory, but the managed path {} lies below it; it is not managed (or excluded or protected), so it is left alone",
                        root.path
                    ),
                ));
            }
        }
    }
    Ok(true)
}

/// Scans the live entries below every managed root, listing every directory. Protected
/// directories (`.resources`, the engine's `.stoker`) are not entered.
#[cfg(any(test, feature = "testing"))]
pub fn scan(live: &Path, scope: &Scope) -> Result<LiveTree> {
    Ok(scan_guided(live, scope, None)?.tree)
}

/// Scans like [`scan`], taking the names of unchanged directories from `guide` (every entry is
/// still `lstat`ed, in parallel). The tree is the one [`scan`] returns.
pub fn scan_guided(live: &Path, scope: &Scope, guide: Option<Guide<'_>>) -> Result<Scan> {
    match lstat(live)? {
        None => return Ok(Scan::default()),
        Some(metadata) if !metadata.is_dir() && !metadata.file_type().is_symlink() => {
            return Err(Error::unsafe_live(live, "is not a directory"));
        }
        Some(_) => {}
    }
    let top = scope.top_roots();
    let mut walker = Walker {
        live,
        scope,
        guide,
        prefetched: guide
            .map(|guide| prefetch(live, &top, guide))
            .unwrap_or_default(),
        scan: Scan::default(),
        entries: Vec::new(),
        dirs: Vec::new(),
    };
    // A root inside another is reached by the walk, but what lies above it must be checked
    // all the same: an excluded symlink on the way is not the walk's to replace.
    for root in scope.roots() {
        if !top.contains(root) {
            check_ancestors(live, root, scope)?;
        }
    }
    for root in top {
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
        let entry = LiveEntry::of(&metadata);
        if !root.path.is_empty() {
            walker.entries.push((root.path.clone(), entry));
        }
        if entry.kind != LiveKind::Dir {
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
                    walker.scan.tree.unlisted_in.insert(root.path.clone());
                    break;
                }
            }
            continue;
        }
        let stat = if root.path.is_empty() {
            // The live directory itself may be a symlink to the real one: its directory counts.
            Stat::of(
                &std::fs::metadata(live).map_err(|source| Error::io("scanning", live, source))?,
            )
        } else {
            entry.stat
        };
        walker.walk(&root.path, &stat)?;
    }
    // Built in one go (the walk's order is nearly sorted already); a path seen twice (a root
    // below another, walked from both) keeps its last entry, as insertion would.
    let mut scan = walker.scan;
    scan.tree.entries = walker.entries.into_iter().collect();
    scan.dirs = walker.dirs.into_iter().collect();
    Ok(scan)
}

/// `lstat`s, in parallel, every entry the guide lists below the top directory roots: for each
/// recorded directory, its entries' `lstat`s in the record's order (`None` when one failed). The
/// walk then mostly finds its answers here.
fn prefetch<'a>(
    live: &Path,
    top: &[ManagedRoot],
    guide: Guide<'a>,
) -> HashMap<&'a str, Vec<Option<LiveEntry>>> {
    let dirs: Vec<(&'a String, &'a DirRecord)> = guide
        .dirs
        .iter()
        .filter(|(dir, _)| {
            top.iter()
                .any(|root| root.kind == RootKind::Dir && is_within(dir, &root.path))
        })
        .collect();
    dirs.into_par_iter()
        .with_min_len(16)
        .map(|(dir, record)| {
            let base = live.join(dir);
            let stats = record
                .names()
                .map(|name| {
                    std::fs::symlink_metadata(base.join(name))
                        .ok()
                        .map(|metadata| LiveEntry::of(&metadata))
                })
                .collect();
            (dir.as_str(), stats)
        })
        .collect()
}

struct Walker<'a> {
    live: &'a Path,
    scope: &'a Scope,
    guide: Option<Guide<'a>>,
    /// `lstat`s taken up front, by directory; a missing one is taken when needed.
    prefetched: HashMap<&'a str, Vec<Option<LiveEntry>>>,
    scan: Scan,
    /// The tree's entries and the directory records, in walk order.
    entries: Vec<(String, LiveEntry)>,
    dirs: Vec<(String, DirRecord)>,
}

impl Walker<'_> {
    fn lstat_entry(&self, path: &str) -> Result<Option<LiveEntry>> {
        Ok(lstat(&self.live.join(path))?.map(|metadata| LiveEntry::of(&metadata)))
    }

    /// Walks the directory `dir` (relative; `stat` is its `lstat`, taken before listing it).
    fn walk(&mut self, dir: &str, stat: &Stat) -> Result<()> {
        let children = self.children(dir, stat)?;
        for (name, entry) in children {
            let is_dir = entry.kind == LiveKind::Dir;
            // The state dir only counts at the live root.
            if is_dir && dir.is_empty() && name == STATE_DIR {
                continue;
            }
            // Protected `.resources` directories are never entered, but they are listed (as
            // untouchable entries) so that a plan needing their place refuses up front instead
            // of failing halfway through clearing their parent.
            let resources = is_dir && name == RESOURCES_DIR;
            let path = join(dir, &name);
            if is_dir && !resources && self.scope.is_protected(&path) {
                // Not listed, but entered (what is below may be managed).
                self.walk(&path, &entry.stat)?;
                continue;
            }
            self.entries.push((path.clone(), entry));
            if is_dir && !resources {
                self.walk(&path, &entry.stat)?;
            }
        }
        Ok(())
    }

    /// The entries of `dir` with their `lstat`, sorted by name: from the guide when it vouches
    /// for the directory and every recorded entry is still there, otherwise read from disk.
    fn children(&mut self, dir: &str, stat: &Stat) -> Result<Vec<(String, LiveEntry)>> {
        if let Some(record) = self.guide.and_then(|guide| guide.vouched(dir, stat)) {
            let prefetched = self.prefetched.remove(dir).unwrap_or_default();
            let mut children = Vec::with_capacity(prefetched.len());
            let mut complete = true;
            for (index, name) in record.names().enumerate() {
                let entry = match prefetched.get(index).copied().flatten() {
                    Some(entry) => Some(entry),
                    None => self.lstat_entry(&join(dir, name))?,
                };
                match entry {
                    Some(entry) => children.push((name.to_owned(), entry)),
                    // Changed behind the record's back (a clock going backwards): list it.
                    None => {
                        complete = false;
                        break;
                    }
                }
            }
            if complete {
                self.scan.vouched += 1;
                self.dirs.push((dir.to_owned(), record.clone()));
                return Ok(children);
            }
        }
        self.scan.listed += 1;
        let full = self.live.join(dir);
        let mut names = Vec::new();
        let mut recordable = true;
        let entries =
            std::fs::read_dir(&full).map_err(|source| Error::io("scanning", &full, source))?;
        for entry in entries {
            let entry = entry.map_err(|source| Error::io("scanning", &full, source))?;
            match entry.file_name().into_string() {
                Ok(name) => names.push(name),
                Err(_) => {
                    self.scan
                        .tree
                        .warnings
                        .push(crate::Warning::LiveNameNotUtf8 { path: entry.path() });
                    // Its directory can never be emptied by the engine: remember it.
                    self.scan.tree.unlisted_in.insert(dir.to_owned());
                    recordable = false;
                }
            }
        }
        names.sort();
        let mut children = Vec::with_capacity(names.len());
        for name in &names {
            let path = join(dir, name);
            let entry = self.lstat_entry(&path)?.ok_or_else(|| {
                Error::io(
                    "scanning",
                    self.live.join(&path),
                    std::io::Error::from(std::io::ErrorKind::NotFound),
                )
            })?;
            children.push((name.clone(), entry));
        }
        if recordable {
            self.dirs.push((
                dir.to_owned(),
                DirRecord {
                    stat: *stat,
                    names: names.join("/"),
                },
            ));
        }
        Ok(children)
    }
}

/// Brings the records of directories a sync changed up to date: each directory in `changed`
/// that the walk enters (below a directory root) is `lstat`ed, then listed; one that is gone or
/// no longer a directory loses its record and those below it. A directory that cannot be read
/// only loses its record (the next scan lists it). Returns the records replaced (`Some`) and
/// dropped (`None`), in the order they were.
pub fn refresh(
    live: &Path,
    scope: &Scope,
    dirs: &mut BTreeMap<String, DirRecord>,
    changed: &BTreeSet<String>,
) -> Vec<(String, Option<DirRecord>)> {
    let walked = |dir: &str| {
        scope
            .roots()
            .iter()
            .any(|root| root.kind == RootKind::Dir && is_within(dir, &root.path))
    };
    let targets: Vec<&String> = changed.iter().filter(|dir| walked(dir)).collect();
    let fresh: Vec<(&String, Option<DirRecord>)> = targets
        .into_par_iter()
        .map(|dir| (dir, record_now(live, dir)))
        .collect();
    let mut changes = Vec::with_capacity(fresh.len());
    for (dir, record) in fresh {
        match record {
            Some(record) => {
                dirs.insert(dir.clone(), record.clone());
                changes.push((dir.clone(), Some(record)));
            }
            None => {
                dirs.remove(dir);
                changes.push((dir.clone(), None));
                if let Ok(metadata) = std::fs::symlink_metadata(live.join(dir))
                    && metadata.is_dir()
                {
                    continue; // unreadable, or a name that is not UTF-8: listed next time
                }
                let prefix = format!("{dir}/");
                let below: Vec<String> = dirs
                    .range(prefix.clone()..)
                    .take_while(|(path, _)| path.starts_with(&prefix))
                    .map(|(path, _)| path.clone())
                    .collect();
                for path in below {
                    dirs.remove(&path);
                    changes.push((path, None));
                }
            }
        }
    }
    changes
}

/// `lstat`, then list, one directory.
fn record_now(live: &Path, dir: &str) -> Option<DirRecord> {
    let full = if dir.is_empty() {
        live.to_path_buf()
    } else {
        live.join(dir)
    };
    let metadata = if dir.is_empty() {
        std::fs::metadata(&full).ok()?
    } else {
        std::fs::symlink_metadata(&full).ok()?
    };
    if !metadata.is_dir() {
        return None;
    }
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&full).ok()? {
        names.push(entry.ok()?.file_name().into_string().ok()?);
    }
    names.sort();
    Some(DirRecord {
        stat: Stat::of(&metadata),
        names: names.join("/"),
    })
}
