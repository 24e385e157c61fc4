//! Reading trees from the object database: the listing of a commit, and the paths two commits
//! differ in.

use std::collections::BTreeMap;
use std::sync::PoisonError;
use std::sync::atomic::Ordering;

use gix::ObjectId;
use gix::objs::tree::EntryKind as GitKind;

use super::pack::Packs;
use crate::{ContentId, Entry, EntryKind, Listing};

/// Why a commit could not be listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TreeError {
    /// The object is not in the database (not fetched yet, or beyond a shallow boundary).
    Missing,
    /// The id names something other than a commit (or an annotated tag of one).
    NotACommit(String),
    /// The object is there but cannot be read: the cache is damaged.
    Corrupt(String),
}

/// Decoded trees by id, shared by the single-path lookups of one artifact: the paths a commit
/// changed share most of their ancestors, and each tree would otherwise be inflated (and its
/// deltas resolved) once per path.
#[derive(Default)]
pub(crate) struct TreeCache {
    trees: std::sync::Mutex<std::collections::HashMap<ObjectId, std::sync::Arc<Vec<RawEntry>>>>,
}

impl TreeCache {
    fn read(
        &self,
        repo: &gix::Repository,
        packs: Option<&Packs>,
        id: ObjectId,
    ) -> Result<std::sync::Arc<Vec<RawEntry>>, TreeError> {
        let lock = || {
            self.trees
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        };
        if let Some(tree) = lock().get(&id) {
            return Ok(tree.clone());
        }
        let tree = std::sync::Arc::new(read_tree(repo, packs, id)?);
        lock().insert(id, tree.clone());
        Ok(tree)
    }
}

/// One tree entry, owned.
pub(crate) struct RawEntry {
    name: Vec<u8>,
    kind: GitKind,
    id: ObjectId,
}

/// The entries of tree `id`: through `packs` when given and the tree is in one of them, else
/// through gix (a loose object, or no packs given).
fn read_tree(
    repo: &gix::Repository,
    packs: Option<&Packs>,
    id: ObjectId,
) -> Result<Vec<RawEntry>, TreeError> {
    if let Some(entries) = read_packed_tree(packs, repo.object_hash(), id)? {
        return Ok(entries);
    }
    let corrupt = |error: &dyn std::fmt::Display| TreeError::Corrupt(format!("tree {id}: {error}"));
    let tree = repo.find_tree(id).map_err(|error| corrupt(&error))?;
    let decoded = tree.decode().map_err(|error| corrupt(&error))?;
    Ok(owned_entries(decoded))
}

/// The entries of tree `id` when one of `packs` holds it (`None`: no pack does, or no packs).
fn read_packed_tree(
    packs: Option<&Packs>,
    hash: gix::hash::Kind,
    id: ObjectId,
) -> Result<Option<Vec<RawEntry>>, TreeError> {
    let corrupt = |error: &dyn std::fmt::Display| TreeError::Corrupt(format!("tree {id}: {error}"));
    match packs.map(|packs| packs.read(&id)).transpose() {
        Ok(Some(Some((gix::object::Kind::Tree, data)))) => {
            let decoded =
                gix::objs::TreeRef::from_bytes(&data, hash).map_err(|error| corrupt(&error))?;
            Ok(Some(owned_entries(decoded)))
        }
        Ok(Some(Some((kind, _)))) => Err(corrupt(&format!("it is a {kind}"))),
        Ok(Some(None) | None) => Ok(None),
        Err(error) => Err(corrupt(&error)),
    }
}

fn owned_entries(decoded: gix::objs::TreeRef<'_>) -> Vec<RawEntry> {
    decoded
        .entries
        .iter()
        .map(|entry| RawEntry {
            name: entry.filename.to_vec(),
            kind: entry.mode.kind(),
            id: entry.oid.to_owned(),
        })
        .collect()
}

/// The commit `id` is (peeling annotated tags), and its tree.
pub(crate) fn commit_tree(
    repo: &gix::Repository,
    id: ObjectId,
) -> Result<(ObjectId, ObjectId), TreeError> {
    peel_to_tree(id, repo.object_hash(), &mut |current| {
        gix_object(repo, current)
    })
}

/// An object's kind and bytes; `None` when the database does not have it.
type FoundObject = Option<(gix::object::Kind, Vec<u8>)>;

/// The object `id` as gix reads it.
fn gix_object(repo: &gix::Repository, id: ObjectId) -> Result<FoundObject, TreeError> {
    if !repo.has_object(id) {
        return Ok(None);
    }
    let object = repo
        .find_object(id)
        .map_err(|error| TreeError::Corrupt(format!("object {id}: {error}")))?;
    Ok(Some((object.kind, object.detach().data)))
}

/// The commit `id` is (peeling annotated tags, read with `read`), and its tree.
fn peel_to_tree(
    id: ObjectId,
    hash: gix::hash::Kind,
    read: &mut dyn FnMut(ObjectId) -> Result<FoundObject, TreeError>,
) -> Result<(ObjectId, ObjectId), TreeError> {
    let mut current = id;
    for _ in 0..16 {
        let Some((kind, data)) = read(current)? else {
            return Err(TreeError::Missing);
        };
        match kind {
            gix::object::Kind::Commit => {
                let commit = gix::objs::CommitRef::from_bytes(&data, hash)
                    .map_err(|error| TreeError::Corrupt(format!("commit {current}: {error}")))?;
                return Ok((current, commit.tree()));
            }
            gix::object::Kind::Tag => {
                current = gix::objs::TagRef::from_bytes(&data, hash)
                    .map_err(|error| TreeError::Corrupt(format!("tag {current}: {error}")))?
                    .target();
            }
            other => {
                return Err(TreeError::NotACommit(format!(
                    "{id} is a {other}, not a commit"
                )));
            }
        }
    }
    Err(TreeError::NotACommit(format!("{id}: too many nested tags")))
}

/// The commit `id` and its root tree, the tree read once to prove it is there and decodes: what
/// a fetch checks of a commit already in the cache (its other trees are read when needed).
pub(crate) fn checked_root(repo: &gix::Repository, id: ObjectId) -> Result<ObjectId, TreeError> {
    let (_, tree) = commit_tree(repo, id)?;
    read_tree(repo, None, tree)?;
    Ok(tree)
}

/// Why a name cannot be a Stoker path component, if it cannot.
fn bad_name(name: &[u8]) -> Option<&'static str> {
    match name {
        b"" => Some("empty name"),
        b"." | b".." => Some("'.' or '..' as a name"),
        _ if name.contains(&b'/') || name.contains(&0) => Some("'/' or NUL in a name"),
        _ if name.contains(&b'\\') => Some("a backslash in the name"),
        _ if std::str::from_utf8(name).is_err() => Some("file name is not valid UTF-8"),
        _ => None,
    }
}

/// Every entry of the tree `tree` (a commit's root tree), sorted by path, with blob ids as
/// content ids and blob sizes from the object headers (no blob is read). Names that are not
/// UTF-8 (or that no file system path could be) are skipped with a warning.
pub(crate) fn list_tree(
    repo: &gix::Repository,
    packs: Option<&Packs>,
    tree: ObjectId,
) -> Result<Listing, TreeError> {
    let mut listing = Listing::default();
    let mut stack: Vec<(ObjectId, String)> = vec![(tree, String::new())];
    while let Some((tree_id, prefix)) = stack.pop() {
        for entry in read_tree(repo, packs, tree_id)? {
            let shown = || {
                let name = String::from_utf8_lossy(&entry.name);
                if prefix.is_empty() {
                    name.into_owned()
                } else {
                    format!("{prefix}/{name}")
                }
            };
            if let Some(reason) = bad_name(&entry.name) {
                listing
                    .warnings
                    .push(format!("skipped {}: {reason}", shown()));
                continue;
            }
            let path = shown();
            if entry.kind == GitKind::Tree {
                stack.push((entry.id, path));
                continue;
            }
            listing
                .entries
                .push(to_entry(repo, packs, path, entry.kind, entry.id)?);
        }
    }
    listing.entries.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(listing)
}

/// The listing's entry for a non-tree object: blob sizes from the object headers.
fn to_entry(
    repo: &gix::Repository,
    packs: Option<&Packs>,
    path: String,
    kind: GitKind,
    id: ObjectId,
) -> Result<Entry, TreeError> {
    let kind = match kind {
        GitKind::Blob => EntryKind::File,
        // Not called for trees; a tree is not a file.
        GitKind::Tree => EntryKind::Other,
        GitKind::BlobExecutable => EntryKind::Executable,
        GitKind::Link => EntryKind::Symlink,
        GitKind::Commit => EntryKind::Other,
    };
    let size = if kind.is_regular() {
        let corrupt = |error: &dyn std::fmt::Display| {
            TreeError::Corrupt(format!("blob {id} ({path}): {error}"))
        };
        match packs.map(|packs| packs.size(&id)).transpose() {
            Ok(Some(Some(size))) => size,
            // A loose object, or no packs given.
            Ok(Some(None) | None) => repo
                .find_header(id)
                .map_err(|error| corrupt(&error))?
                .size(),
            Err(error) => return Err(corrupt(&error)),
        }
    } else {
        0
    };
    Ok(Entry {
        path,
        kind,
        size,
        content_id: (kind != EntryKind::Other).then(|| content_id(&id)),
    })
}

/// What `path` names in the tree `root`, reading only the trees along it: `None` for nothing
/// and for a directory. Agrees with [`list_tree`]: a path through a name the listing skips
/// names nothing.
fn find_path(
    repo: &gix::Repository,
    packs: Option<&Packs>,
    cache: &TreeCache,
    root: ObjectId,
    path: &str,
) -> Result<Option<(GitKind, ObjectId)>, TreeError> {
    let mut current = (GitKind::Tree, root);
    for component in path.split('/').filter(|c| !c.is_empty()) {
        if current.0 != GitKind::Tree || bad_name(component.as_bytes()).is_some() {
            return Ok(None);
        }
        let tree = cache.read(repo, packs, current.1)?;
        let Some(found) = tree.iter().find(|entry| entry.name == component.as_bytes()) else {
            return Ok(None);
        };
        current = (found.kind, found.id);
    }
    Ok(Some(current))
}

/// The listing's entry at `path` (a normalised relative path), without listing the tree.
pub(crate) fn lookup(
    repo: &gix::Repository,
    packs: Option<&Packs>,
    cache: &TreeCache,
    root: ObjectId,
    path: &str,
) -> Result<Option<Entry>, TreeError> {
    if path.is_empty() {
        return Ok(None);
    }
    match find_path(repo, packs, cache, root, path)? {
        None | Some((GitKind::Tree, _)) => Ok(None),
        Some((kind, id)) => to_entry(repo, packs, path.to_owned(), kind, id).map(Some),
    }
}

/// True when the listing would hold an entry strictly below `dir` (`""`: the root).
pub(crate) fn has_entries_below(
    repo: &gix::Repository,
    packs: Option<&Packs>,
    cache: &TreeCache,
    root: ObjectId,
    dir: &str,
) -> Result<bool, TreeError> {
    let Some((GitKind::Tree, tree)) = find_path(repo, packs, cache, root, dir)? else {
        return Ok(false);
    };
    let mut stack = vec![tree];
    while let Some(tree) = stack.pop() {
        for entry in cache.read(repo, packs, tree)?.iter() {
            if bad_name(&entry.name).is_some() {
                continue;
            }
            if entry.kind != GitKind::Tree {
                return Ok(true);
            }
            stack.push(entry.id);
        }
    }
    Ok(false)
}

/// The Git object id as a content id.
pub(crate) fn content_id(id: &gix::oid) -> ContentId {
    let mut bytes = [0u8; 20];
    let slice = id.as_bytes();
    let len = slice.len().min(20);
    bytes[..len].copy_from_slice(&slice[..len]);
    ContentId(bytes)
}

/// Threads a diff reads trees on. A diff is bound by read latency, not by CPU: when the cache's
/// packs have left the page cache (an agent that syncs every few minutes), each region of the
/// pack a tree lies in is read from disk, milliseconds apiece, and one thread walking the two
/// commits waits for those reads one after another. Reading the differing subtrees of both
/// commits on several threads keeps several reads in flight; 8 does that on a 2-core machine
/// without a crowd of idle threads.
const DIFF_THREADS: usize = 8;

/// The file paths (not directories) that differ between the trees of two commits: added,
/// deleted, modified, or with a changed mode. Identical subtrees are skipped without being read;
/// the others are read through `packs` (and through `repo` for an object no pack holds) on
/// [`DIFF_THREADS`] threads.
///
/// `None` when a differing entry has a name the listing skips (its warning then changes, which
/// no path in the list could say): the engine then plans everything.
pub(crate) fn changed_paths(
    repo: gix::Repository,
    packs: Option<&Packs>,
    from: ObjectId,
    to: ObjectId,
) -> Result<Option<Vec<String>>, TreeError> {
    let walk = Walk {
        packs,
        hash: repo.object_hash(),
        repo: std::sync::Mutex::new(repo),
        out: std::sync::Mutex::new(Vec::new()),
        failure: std::sync::Mutex::new(None),
        stop: std::sync::atomic::AtomicBool::new(false),
    };
    let run = || -> Result<bool, TreeError> {
        let (old, new) = rayon::join(|| walk.commit_tree(from), || walk.commit_tree(to));
        let (old, new) = (old?, new?);
        rayon::scope(|scope| walk.visit(scope, Some(old), Some(new), String::new()));
        Ok(true)
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(DIFF_THREADS)
        .thread_name(|index| format!("stoker-diff-{index}"))
        .build();
    let walked = match &pool {
        Ok(pool) => pool.install(run),
        // No threads to be had (a process limit): the caller's pool does the same walk.
        Err(error) => {
            tracing::debug!(%error, "could not start the diff's threads");
            run()
        }
    };
    walked?;
    if let Some(failure) = walk
        .failure
        .into_inner()
        .unwrap_or_else(PoisonError::into_inner)
    {
        return match failure {
            Stop::Failed(error) => Err(error),
            Stop::NameSkipped => Ok(None),
        };
    }
    let mut out = walk
        .out
        .into_inner()
        .unwrap_or_else(PoisonError::into_inner);
    out.sort();
    out.dedup();
    Ok(Some(out))
}

/// Why a diff stopped before the end.
enum Stop {
    Failed(TreeError),
    /// A differing entry has a name the listing skips.
    NameSkipped,
}

/// One diff of two commits, walked by many threads: each differing pair of subtrees is a task.
struct Walk<'a> {
    packs: Option<&'a Packs>,
    hash: gix::hash::Kind,
    /// For objects no pack holds (a repository handle is not shared between threads).
    repo: std::sync::Mutex<gix::Repository>,
    out: std::sync::Mutex<Vec<String>>,
    /// The first reason to stop; `stop` tells the other tasks not to start reading.
    failure: std::sync::Mutex<Option<Stop>>,
    stop: std::sync::atomic::AtomicBool,
}

impl Walk<'_> {
    fn fail(&self, why: Stop) {
        self.stop.store(true, Ordering::Relaxed);
        let mut failure = self.failure.lock().unwrap_or_else(PoisonError::into_inner);
        failure.get_or_insert(why);
    }

    fn gix<R>(&self, read: impl FnOnce(&gix::Repository) -> R) -> R {
        read(&self.repo.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// The tree of commit `id` (peeling annotated tags), read through the packs so the two
    /// commits of a diff are read at once, and through gix what no pack holds.
    fn commit_tree(&self, id: ObjectId) -> Result<ObjectId, TreeError> {
        let mut read = |current: ObjectId| {
            let packed = self
                .packs
                .map(|packs| packs.read(&current))
                .transpose()
                .map_err(|error| TreeError::Corrupt(format!("object {current}: {error}")))?
                .flatten();
            match packed {
                Some(found) => Ok(Some(found)),
                None => self.gix(|repo| gix_object(repo, current)),
            }
        };
        peel_to_tree(id, self.hash, &mut read).map(|(_, tree)| tree)
    }

    /// The entries of tree `id` by name (none for a side that has no tree).
    fn entries(
        &self,
        id: Option<ObjectId>,
    ) -> Result<BTreeMap<Vec<u8>, (GitKind, ObjectId)>, TreeError> {
        let Some(id) = id else {
            return Ok(BTreeMap::new());
        };
        let entries = match read_packed_tree(self.packs, self.hash, id)? {
            Some(entries) => entries,
            None => self.gix(|repo| read_tree(repo, None, id))?,
        };
        Ok(entries
            .into_iter()
            .map(|entry| (entry.name, (entry.kind, entry.id)))
            .collect())
    }

    /// Compares the trees `old` and `new` at `prefix`: differing files go to `out`, differing
    /// subtrees become tasks of `scope`.
    fn visit<'s>(
        &'s self,
        scope: &rayon::Scope<'s>,
        old: Option<ObjectId>,
        new: Option<ObjectId>,
        prefix: String,
    ) {
        if old == new || self.stop.load(Ordering::Relaxed) {
            return;
        }
        let (before, after) = rayon::join(|| self.entries(old), || self.entries(new));
        let (before, after) = match (before, after) {
            (Ok(before), Ok(after)) => (before, after),
            (Err(error), _) | (_, Err(error)) => return self.fail(Stop::Failed(error)),
        };
        let mut names: Vec<&Vec<u8>> = before.keys().chain(after.keys()).collect();
        names.sort();
        names.dedup();
        let mut files = Vec::new();
        for name in names {
            let (old_entry, new_entry) = (before.get(name), after.get(name));
            if old_entry == new_entry {
                continue;
            }
            if bad_name(name).is_some() {
                return self.fail(Stop::NameSkipped);
            }
            let path = crate::relpath::join(&prefix, &String::from_utf8_lossy(name));
            let tree_of = |side: Option<&(GitKind, ObjectId)>| {
                side.and_then(|(kind, id)| (*kind == GitKind::Tree).then_some(*id))
            };
            let is_file = |side: Option<&(GitKind, ObjectId)>| {
                side.is_some_and(|(kind, _)| *kind != GitKind::Tree)
            };
            let (old_tree, new_tree) = (tree_of(old_entry), tree_of(new_entry));
            if old_tree.is_some() || new_tree.is_some() {
                let below = path.clone();
                scope.spawn(move |scope| self.visit(scope, old_tree, new_tree, below));
            }
            if is_file(old_entry) || is_file(new_entry) {
                files.push(path);
            }
        }
        if !files.is_empty() {
            self.out
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .append(&mut files);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::super::test_repo::git;
    use super::*;

    /// A history of commits with random changes at every depth: files edited, added, removed,
    /// made executable; directories removed; files replaced by directories and back.
    fn random_history(work: &std::path::Path) -> Vec<ObjectId> {
        std::fs::create_dir_all(work).unwrap();
        git(work, &["init", "-q"], b"");
        let mut seed: u64 = 0x5eed;
        let mut next = move |below: u64| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) % below
        };
        let mut commits = Vec::new();
        for round in 0..8 {
            for _ in 0..12 {
                let path = work.join(format!("d{}/e{}/f{}", next(3), next(3), next(4)));
                match next(6) {
                    0 => {
                        let _ = std::fs::remove_file(&path);
                    }
                    1 => {
                        let _ = std::fs::remove_dir_all(path.parent().unwrap());
                    }
                    2 if path.is_file() => {
                        // The file becomes a directory.
                        std::fs::remove_file(&path).unwrap();
                        std::fs::create_dir_all(&path).unwrap();
                        std::fs::write(path.join("inner"), format!("{round}")).unwrap();
                    }
                    3 if path.is_file() => {
                        use std::os::unix::fs::PermissionsExt;
                        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
                        let flipped = std::fs::Permissions::from_mode(mode ^ 0o111);
                        std::fs::set_permissions(&path, flipped).unwrap();
                    }
                    _ => {
                        if path.is_dir() {
                            // The directory becomes a file again.
                            std::fs::remove_dir_all(&path).unwrap();
                        }
                        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                        std::fs::write(&path, format!("{round} {}\n", next(1000))).unwrap();
                    }
                }
            }
            git(work, &["add", "-A"], b"");
            git(work, &["commit", "-q", "--allow-empty", "-m", "round"], b"");
            let id = git(work, &["rev-parse", "HEAD"], b"");
            commits.push(
                ObjectId::from_hex(String::from_utf8(id).unwrap().trim().as_bytes()).unwrap(),
            );
        }
        commits
    }

    fn git_diff(work: &std::path::Path, from: ObjectId, to: ObjectId) -> Vec<String> {
        let out = git(
            work,
            &[
                "diff",
                "--no-renames",
                "--name-only",
                &from.to_string(),
                &to.to_string(),
            ],
            b"",
        );
        String::from_utf8(out)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// Every pair of commits differs in exactly the paths `git diff` names, whether the trees
    /// are read from packs or, loose, through gix.
    #[test]
    fn changed_paths_are_the_paths_git_diff_names() {
        let dir = tempfile::tempdir().unwrap();
        let work = dir.path().join("work");
        let commits = random_history(&work);
        let open = || gix::open_opts(work.join(".git"), gix::open::Options::isolated()).unwrap();
        let check = |packs: Option<&Packs>| {
            let mut compared = 0;
            for &from in &commits {
                for &to in &commits {
                    let changed = changed_paths(open(), packs, from, to).unwrap().unwrap();
                    assert_eq!(changed, git_diff(&work, from, to), "{from} -> {to}");
                    compared += usize::from(!changed.is_empty());
                }
            }
            assert!(
                compared > commits.len() * (commits.len() - 2),
                "too few differences"
            );
        };
        // Loose objects: no pack holds them, every read goes through gix.
        let packs = Packs::open(&work.join(".git")).unwrap();
        assert!(packs.read(&commits[0]).unwrap().is_none());
        check(None);
        check(Some(&packs));
        git(&work, &["gc", "-q"], b"");
        let packs = Packs::open(&work.join(".git")).unwrap();
        assert!(packs.read(&commits[0]).unwrap().is_some());
        check(Some(&packs));
    }

    /// A commit in no pack and no loose object is missing; a blob is not a commit.
    #[test]
    fn changed_paths_names_a_missing_commit_and_a_non_commit() {
        let dir = tempfile::tempdir().unwrap();
        let work = dir.path().join("work");
        let commits = random_history(&work);
        git(&work, &["gc", "-q"], b"");
        let repo = gix::open_opts(work.join(".git"), gix::open::Options::isolated()).unwrap();
        let packs = Packs::open(repo.git_dir()).unwrap();
        let absent = ObjectId::from_hex(b"1234567890123456789012345678901234567890").unwrap();
        assert_eq!(
            changed_paths(repo.clone(), Some(&packs), absent, commits[0]).unwrap_err(),
            TreeError::Missing
        );
        let blob = git(&work, &["rev-parse", "HEAD:d0"], b"");
        let blob = ObjectId::from_hex(String::from_utf8(blob).unwrap().trim().as_bytes()).unwrap();
        assert!(matches!(
            changed_paths(repo, Some(&packs), commits[0], blob).unwrap_err(),
            TreeError::NotACommit(message) if message.contains("is a tree")
        ));
    }
}
