//! Reading trees from the object database: the listing of a commit, and the paths two commits
//! differ in.

use std::collections::BTreeMap;

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
    let corrupt = |error: &dyn std::fmt::Display| TreeError::Corrupt(format!("tree {id}: {error}"));
    let owned = |decoded: gix::objs::TreeRef<'_>| -> Vec<RawEntry> {
        decoded
            .entries
            .iter()
            .map(|entry| RawEntry {
                name: entry.filename.to_vec(),
                kind: entry.mode.kind(),
                id: entry.oid.to_owned(),
            })
            .collect()
    };
    match packs.map(|packs| packs.read(&id)).transpose() {
        Ok(Some(Some((gix::object::Kind::Tree, data)))) => {
            let decoded = gix::objs::TreeRef::from_bytes(&data, repo.object_hash())
                .map_err(|error| corrupt(&error))?;
            return Ok(owned(decoded));
        }
        Ok(Some(Some((kind, _)))) => return Err(corrupt(&format!("it is a {kind}"))),
        Ok(Some(None) | None) => {}
        Err(error) => return Err(corrupt(&error)),
    }
    let tree = repo.find_tree(id).map_err(|error| corrupt(&error))?;
    let decoded = tree.decode().map_err(|error| corrupt(&error))?;
    Ok(owned(decoded))
}

/// The commit `id` is (peeling annotated tags), and its tree.
pub(crate) fn commit_tree(
    repo: &gix::Repository,
    id: ObjectId,
) -> Result<(ObjectId, ObjectId), TreeError> {
    let mut current = id;
    for _ in 0..16 {
        if !repo.has_object(current) {
            return Err(TreeError::Missing);
        }
        let object = repo
            .find_object(current)
            .map_err(|error| TreeError::Corrupt(format!("object {current}: {error}")))?;
        match object.kind {
            gix::object::Kind::Commit => {
                let tree = object
                    .into_commit()
                    .tree_id()
                    .map_err(|error| TreeError::Corrupt(format!("commit {current}: {error}")))?;
                return Ok((current, tree.detach()));
            }
            gix::object::Kind::Tag => {
                current = object
                    .into_tag()
                    .target_id()
                    .map_err(|error| TreeError::Corrupt(format!("tag {current}: {error}")))?
                    .detach();
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

/// The file paths (not directories) that differ between the trees of two commits: added,
/// deleted, modified, or with a changed mode. Identical subtrees are skipped without being read.
///
/// `None` when a differing entry has a name the listing skips (its warning then changes, which
/// no path in the list could say): the engine then plans everything.
pub(crate) fn changed_paths(
    repo: &gix::Repository,
    from: ObjectId,
    to: ObjectId,
) -> Result<Option<Vec<String>>, TreeError> {
    let (_, old) = commit_tree(repo, from)?;
    let (_, new) = commit_tree(repo, to)?;
    let mut out = Vec::new();
    if !diff_trees(repo, Some(old), Some(new), "", &mut out)? {
        return Ok(None);
    }
    out.sort();
    out.dedup();
    Ok(Some(out))
}

fn diff_trees(
    repo: &gix::Repository,
    old: Option<ObjectId>,
    new: Option<ObjectId>,
    prefix: &str,
    out: &mut Vec<String>,
) -> Result<bool, TreeError> {
    if old == new {
        return Ok(true);
    }
    let index =
        |id: Option<ObjectId>| -> Result<BTreeMap<Vec<u8>, (GitKind, ObjectId)>, TreeError> {
            Ok(match id {
                Some(id) => read_tree(repo, None, id)?
                    .into_iter()
                    .map(|e| (e.name, (e.kind, e.id)))
                    .collect(),
                None => BTreeMap::new(),
            })
        };
    let old = index(old)?;
    let new = index(new)?;
    let mut names: Vec<&Vec<u8>> = old.keys().chain(new.keys()).collect();
    names.sort();
    names.dedup();
    for name in names {
        let before = old.get(name);
        let after = new.get(name);
        if before == after {
            continue;
        }
        if bad_name(name).is_some() {
            return Ok(false);
        }
        let path = crate::relpath::join(prefix, &String::from_utf8_lossy(name));
        let tree_of = |side: Option<&(GitKind, ObjectId)>| {
            side.and_then(|(kind, id)| (*kind == GitKind::Tree).then_some(*id))
        };
        let is_file = |side: Option<&(GitKind, ObjectId)>| {
            side.is_some_and(|(kind, _)| *kind != GitKind::Tree)
        };
        if is_file(before) || is_file(after) {
            out.push(path.clone());
        }
        let (old_tree, new_tree) = (tree_of(before), tree_of(after));
        if (old_tree.is_some() || new_tree.is_some())
            && !diff_trees(repo, old_tree, new_tree, &path, out)?
        {
            return Ok(false);
        }
    }
    Ok(true)
}
