//! Destinations a sync refuses unless told twice (`--allow-dangerous-dest`): the file system's
//! root, the user's home directory, and a directory that is, holds, or lies inside the source
//! directory or a cache. A mapping manages and cleans part of the destination, so a typo there
//! could delete a home directory or the repository the sync reads, and a destination inside the
//! source would be read back as source files on the next run.

use std::path::{Component, Path, PathBuf};

/// How the destination and another directory overlap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overlap {
    /// They are the same directory.
    Same,
    /// The destination lies inside the other directory.
    Inside,
    /// The other directory lies inside the destination.
    Contains,
}

/// Why a destination is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Danger {
    /// `/`.
    #[error("is the root of the file system")]
    Root,
    /// `$HOME`.
    #[error("is your home directory ({0})")]
    Home(PathBuf),
    /// The source directory or a cache.
    #[error("{}", describe(.overlap, .what, .path))]
    Overlaps {
        /// What the other directory is (`the --source directory`).
        what: &'static str,
        /// The other directory, resolved.
        path: PathBuf,
        /// How they overlap.
        overlap: Overlap,
    },
}

fn describe(overlap: &Overlap, what: &str, path: &Path) -> String {
    let path = path.display();
    match overlap {
        Overlap::Same => format!("is {what} ({path})"),
        Overlap::Inside => format!("lies inside {what} ({path})"),
        Overlap::Contains => format!("contains {what} ({path})"),
    }
}

/// The first danger of syncing into `dest`, if any. `home` is the user's home directory
/// (`None` where there is none, as in a container); `others` names the directories the
/// destination must stay clear of. Paths are compared as the file system resolves them
/// (symlinks followed as far as the path exists; the rest taken as written).
pub fn check(dest: &Path, home: Option<&Path>, others: &[(&'static str, &Path)]) -> Option<Danger> {
    let dest = resolved(dest);
    if dest.parent().is_none() {
        return Some(Danger::Root);
    }
    if let Some(home) = home.map(resolved).filter(|home| *home == dest) {
        return Some(Danger::Home(home));
    }
    others.iter().find_map(|(what, other)| {
        let other = resolved(other);
        let overlap = if other == dest {
            Overlap::Same
        } else if dest.starts_with(&other) {
            Overlap::Inside
        } else if other.starts_with(&dest) {
            Overlap::Contains
        } else {
            return None;
        };
        Some(Danger::Overlaps {
            what,
            path: other,
            overlap,
        })
    })
}

/// `path` made absolute, `.` and `..` applied, and its longest existing part resolved by the
/// file system (so `/data/link/x`, with `link` pointing at the source, is seen inside it).
pub fn resolved(path: &Path) -> PathBuf {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut clean = PathBuf::new();
    for component in absolute.components() {
        match component {
            Component::ParentDir => {
                clean.pop();
            }
            Component::CurDir => {}
            other => clean.push(other),
        }
    }
    let mut existing = clean.as_path();
    let mut rest = Vec::new();
    loop {
        if let Ok(real) = existing.canonicalize() {
            return rest.iter().rev().fold(real, |path, name| path.join(name));
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_owned());
                existing = parent;
            }
            _ => return clean,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_and_home_are_dangerous() {
        assert_eq!(check(Path::new("/"), None, &[]), Some(Danger::Root));
        assert_eq!(check(Path::new("/tmp/.."), None, &[]), Some(Danger::Root));
        let home = tempfile::tempdir().unwrap();
        let danger = check(home.path(), Some(home.path()), &[]).unwrap();
        assert!(matches!(danger, Danger::Home(_)));
        assert!(danger.to_string().starts_with("is your home directory"));
        // Below home is where people keep things: fine.
        assert_eq!(
            check(&home.path().join("gateway-data"), Some(home.path()), &[]),
            None
        );
    }

    #[test]
    fn overlapping_the_source_or_the_cache_is_dangerous_in_every_direction() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("repo");
        std::fs::create_dir(&source).unwrap();
        let others = [("the --source directory", source.as_path())];
        let overlap = |dest: &Path| match check(dest, None, &others) {
            Some(Danger::Overlaps { overlap, .. }) => Some(overlap),
            other => panic!("{other:?}"),
        };
        assert_eq!(overlap(&source), Some(Overlap::Same));
        assert_eq!(overlap(&source.join("out/data")), Some(Overlap::Inside));
        assert_eq!(overlap(dir.path()), Some(Overlap::Contains));
        assert_eq!(check(&dir.path().join("data"), None, &others), None);
        // Through a symlink, and with `..`: what the file system resolves counts.
        std::os::unix::fs::symlink(&source, dir.path().join("link")).unwrap();
        assert_eq!(overlap(&dir.path().join("link/new")), Some(Overlap::Inside));
        assert_eq!(
            overlap(&dir.path().join("data/../repo")),
            Some(Overlap::Same)
        );
        let message = check(&source.join("x"), None, &others).unwrap().to_string();
        assert_eq!(
            message,
            format!("lies inside the --source directory ({})", source.display())
        );
    }
}
