//! Reading trees from the object database: the listing of a commit, and the paths two commits
//! differ in.

use std::collections::BTreeMap;

use gix::ObjectId;
use gix::objs::tree::EntryKind as GitKind;

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

/// One tree entry, owned.
struct RawEntry {
    name: Vec<u8>,
    kind: GitKind,
    id: ObjectId,
}

fn read_tree(repo: &gix::Repository, id: ObjectId) -> Result<Vec<RawEntry>, TreeError> {
    let tree = repo
        .find_tree(id)
        .map_err(|error| TreeError::Corrupt(format!("tree {id}: {error}")))?;
    let decoded = tree
        .decode()
        .map_err(|error| TreeError::Corrupt(format!("tree {id}: {error}")))?;
    Ok(decoded
        .entries
        .iter()
        .map(|entry| RawEntry {
            name: entry.filename.to_vec(),
            kind: entry.mode.kind(),
            id: entry.oid.to_owned(),
        })
        .collect())
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

/// Every entry of the commit's tree, sorted by path, with blob ids as content ids and blob
/// sizes from the object headers (no blob is read). Names that are not UTF-8 (or that no file
/// system path could be) are skipped with a warning.
pub(crate) fn list_commit(repo: &gix::Repository, id: ObjectId) -> Result<Listing, TreeError> {
    let (_, tree) = commit_tree(repo, id)?;
    let mut listing = Listing::default();
    let mut stack: Vec<(ObjectId, String)> = vec![(tree, String::new())];
    while let Some((tree_id, prefix)) = stack.pop() {
        for entry in read_tree(repo, tree_id)? {
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
            let kind = match entry.kind {
                GitKind::Tree => {
                    stack.push((entry.id, path));
                    continue;
                }
                GitKind::Blob => EntryKind::File,
                GitKind::BlobExecutable => EntryKind::Executable,
                GitKind::Link => EntryKind::Symlink,
                GitKind::Commit => EntryKind::Other,
            };
            let size = if kind.is_regular() {
                repo.find_header(entry.id)
                    .map_err(|error| {
                        TreeError::Corrupt(format!("blob {} ({path}): {error}", entry.id))
                    })?
                    .size()
            } else {
                0
            };
            listing.entries.push(Entry {
                path,
                kind,
                size,
                content_id: (kind != EntryKind::Other).then(|| content_id(&entry.id)),
            });
        }
    }
    listing.entries.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(listing)
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
pub(crate) fn changed_paths(
    repo: &gix::Repository,
    from: ObjectId,
    to: ObjectId,
) -> Result<Vec<String>, TreeError> {
    let (_, old) = commit_tree(repo, from)?;
    let (_, new) = commit_tree(repo, to)?;
    let mut out = Vec::new();
    diff_trees(repo, Some(old), Some(new), "", &mut out)?;
    out.sort();
    out.dedup();
    Ok(out)
}

fn diff_trees(
    repo: &gix::Repository,
    old: Option<ObjectId>,
    new: Option<ObjectId>,
    prefix: &str,
    out: &mut Vec<String>,
) -> Result<(), TreeError> {
    if old == new {
        return Ok(());
    }
    let index =
        |id: Option<ObjectId>| -> Result<BTreeMap<Vec<u8>, (GitKind, ObjectId)>, TreeError> {
            Ok(match id {
                Some(id) => read_tree(repo, id)?
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
        if bad_name(name).is_some() {
            continue;
        }
        let path = crate::relpath::join(prefix, &String::from_utf8_lossy(name));
        let before = old.get(name);
        let after = new.get(name);
        if before == after {
            continue;
        }
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
        if old_tree.is_some() || new_tree.is_some() {
            diff_trees(repo, old_tree, new_tree, &path, out)?;
        }
    }
    Ok(())
}
