//! The in-memory model of the sync semantics, written from DESIGN section 3 (not from the
//! engine's code). Pure: trees in, tree out.
//!
//! Interpretation choices where the text leaves room (each the safer one for a plant):
//! - A mapping whose source is missing or a symlink (and not `required`) is skipped entirely:
//!   it manages nothing, and its destination is left as it is, even when another mapping's
//!   destination encloses it (docs/sync-engine.md: a typo never wipes a directory). Its
//!   destination is *held*: neither written nor deleted, unless a mapping's destination lies at
//!   or below it.
//! - An exclude pattern that matches a directory excludes everything below it (as
//!   `.gitignore` does).
//! - Without `adopt`, what only a mapping to `.` manages is never deleted or replaced unless
//!   Stoker wrote it (and, in the cases the model sees, everything Stoker wrote is desired).
//! - A directory exists in the artifact when some entry (even a symlink) lies below it.
//! - A `dir` destination manages itself and everything below it; a `file` destination exactly
//!   itself.
//! - `.resources` directories themselves count as protected (never removed, even when empty),
//!   not only what is inside them.
//! - "Directories that become empty": only directories that held something before the sync and
//!   hold nothing after it are removed (strictly below a `dir` root, not protected, not
//!   excluded); directories that were already empty stay.
//! - When the live directory makes the desired state impossible without touching something the
//!   engine may not touch (a non-directory outside the managed roots, or protected / excluded /
//!   unmanaged content inside a directory that must become a file), the sync is refused.
//!   An unmanaged non-directory on the way to a managed root is refused too (never written
//!   through, never removed).
//! - A file mapping whose destination renders to the live root is an error; a skipped mapping
//!   needs no destination, so it is not.
//! - "Directories that become empty strictly below a managed root": a directory that is itself
//!   a (nested) `dir` root but lies strictly below another `dir` root is removed when emptied.
//! - An error that can be known before writing (invalid profile, binary file with `template`,
//!   a refused live state) leaves the live directory unchanged (the brief's requirement; the
//!   spec only promises per-file atomicity).
//! - The report counts a file replacing a directory, symlink or FIFO as added or modified (both
//!   accepted); files removed to make room count as deleted. Each symlink a `dir` mapping skips
//!   (where it would land on a path neither protected nor excluded) is named in a warning.

use std::collections::{BTreeMap, BTreeSet};

use stoker_core::MappingType;

/// The value of the profile variable `site`.
pub const SITE: &str = "a";
/// How paths and contents refer to it.
pub const SITE_VAR: &str = "{{.Vars.site}}";

/// One live entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Node {
    /// A real directory.
    Dir,
    /// A regular file.
    File { bytes: Vec<u8>, exec: bool },
    /// A symbolic link and its target.
    Symlink(String),
    /// A FIFO (never to be opened).
    Fifo,
}

impl Node {
    pub fn is_dir(&self) -> bool {
        matches!(self, Node::Dir)
    }
}

/// A live tree: every path, directories included (no entry for the root).
pub type Tree = BTreeMap<String, Node>;

/// One artifact entry (directories are implied).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ArtEntry {
    File { bytes: Vec<u8>, exec: bool },
    Symlink,
}

/// An artifact: path → entry.
pub type ArtTree = BTreeMap<String, ArtEntry>;

/// Exclude patterns the generator uses, each with a hand-written matcher.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exclude {
    /// `**/.git/**` (default).
    GitDir,
    /// `**/.gitkeep` (default).
    GitKeep,
    /// `**/*.bak`.
    Bak,
    /// `**/c`.
    LeafC,
    /// `b/**`.
    UnderB,
    /// `projects/a/**`.
    UnderProjectsA,
}

impl Exclude {
    pub const DEFAULTS: [Exclude; 2] = [Exclude::GitDir, Exclude::GitKeep];
    pub const EXTRA: [Exclude; 4] = [
        Exclude::Bak,
        Exclude::LeafC,
        Exclude::UnderB,
        Exclude::UnderProjectsA,
    ];

    pub fn pattern(self) -> &'static str {
        match self {
            Exclude::GitDir => "**/.git/**",
            Exclude::GitKeep => "**/.gitkeep",
            Exclude::Bak => "**/*.bak",
            Exclude::LeafC => "**/c",
            Exclude::UnderB => "b/**",
            Exclude::UnderProjectsA => "projects/a/**",
        }
    }

    pub fn matches(self, path: &str) -> bool {
        let parts: Vec<&str> = path.split('/').collect();
        let (last, dirs) = parts.split_last().expect("split yields one part");
        match self {
            Exclude::GitDir => dirs.contains(&".git"),
            Exclude::GitKeep => *last == ".gitkeep",
            Exclude::Bak => last.ends_with(".bak"),
            Exclude::LeafC => *last == "c",
            Exclude::UnderB => parts.len() >= 2 && parts[0] == "b",
            Exclude::UnderProjectsA => {
                parts.len() >= 3 && parts[0] == "projects" && parts[1] == "a"
            }
        }
    }
}

/// One mapping as written in the profile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapSpec {
    pub source: String,
    pub destination: String,
    pub kind: Option<MappingType>,
    pub required: bool,
    pub template: bool,
}

/// A profile: mappings plus exclude patterns added to the defaults; `site` = [`SITE`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProfileSpec {
    pub mappings: Vec<MapSpec>,
    pub excludes: Vec<Exclude>,
    /// `adopt`: a mapping to `.` may delete what Stoker did not write. The model does not know
    /// what earlier syncs wrote, so cases that leave it off sync one artifact only: then what
    /// Stoker wrote is always desired, and no orphan is Stoker's.
    pub adopt: bool,
}

// ---------------------------------------------------------------------------------------------
// Paths

/// How many components `path` has (`""`, the root, has none).
fn depth(path: &str) -> usize {
    if path.is_empty() {
        0
    } else {
        path.split('/').count()
    }
}

/// The proper ancestors of `path`, top-down, without the root.
pub fn ancestors(path: &str) -> Vec<&str> {
    path.match_indices('/').map(|(i, _)| &path[..i]).collect()
}

/// `path` is `dir` or below it (`""` contains everything).
pub fn within(path: &str, dir: &str) -> bool {
    dir.is_empty() || path == dir || strictly_within(path, dir)
}

/// `path` is strictly below `dir`.
pub fn strictly_within(path: &str, dir: &str) -> bool {
    if dir.is_empty() {
        return !path.is_empty();
    }
    path.len() > dir.len() && path.starts_with(dir) && path.as_bytes()[dir.len()] == b'/'
}

fn join(dir: &str, rest: &str) -> String {
    match (dir.is_empty(), rest.is_empty()) {
        (true, _) => rest.to_owned(),
        (_, true) => dir.to_owned(),
        _ => format!("{dir}/{rest}"),
    }
}

fn render(text: &str) -> String {
    text.replace(SITE_VAR, SITE)
}

/// Relative, `/`-separated; `.` and empty components dropped; absolute or `..` refused.
fn normalize(path: &str) -> Result<String, String> {
    if path.starts_with('/') {
        return Err(format!("{path:?} is absolute"));
    }
    let mut parts = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err(format!("{path:?} contains '..'")),
            name => parts.push(name),
        }
    }
    Ok(parts.join("/"))
}

// ---------------------------------------------------------------------------------------------
// Scope

/// A managed root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Root {
    pub path: String,
    pub dir: bool,
}

/// What the engine may touch.
#[derive(Clone, Debug)]
pub struct Scope {
    pub roots: Vec<Root>,
    /// Destinations of skipped mappings.
    pub held: Vec<String>,
    pub excludes: Vec<Exclude>,
    pub adopt: bool,
}

impl Scope {
    /// Some root covers `path`, and the deepest such root is not above a held path that
    /// contains `path`.
    pub fn managed(&self, path: &str) -> bool {
        let Some(deepest) = self.deepest_root(path) else {
            return false;
        };
        !self
            .held
            .iter()
            .any(|held| within(path, held) && depth(held) > deepest)
    }

    /// How deep the deepest root covering `path` is.
    fn deepest_root(&self, path: &str) -> Option<usize> {
        self.roots
            .iter()
            .filter(|root| {
                if root.dir {
                    within(path, &root.path)
                } else {
                    path == root.path
                }
            })
            .map(|root| depth(&root.path))
            .max()
    }

    /// `**/.resources/**` (and `.resources` directories themselves), and `.stoker/`.
    pub fn protected(path: &str) -> bool {
        path == ".stoker"
            || path.starts_with(".stoker/")
            || path.split('/').any(|part| part == ".resources")
    }

    /// A pattern matches the path or a directory above it.
    pub fn excluded(&self, path: &str) -> bool {
        ancestors(path)
            .into_iter()
            .chain([path])
            .any(|p| self.excludes.iter().any(|e| e.matches(p)))
    }

    /// Managed, not protected, not excluded, and not only in an unadopted whole directory.
    pub fn touchable(&self, path: &str) -> bool {
        self.managed(path)
            && !Self::protected(path)
            && !self.excluded(path)
            && (self.adopt || !self.only_the_whole_directory_manages(path))
    }

    /// The deepest root covering `path` is the live directory itself.
    fn only_the_whole_directory_manages(&self, path: &str) -> bool {
        self.deepest_root(path) == Some(0)
    }

    /// True for a directory on the way to a managed root.
    pub fn leads_to_root(&self, path: &str) -> bool {
        self.roots
            .iter()
            .any(|root| strictly_within(&root.path, path))
    }
}

// ---------------------------------------------------------------------------------------------
// Desired set

/// The desired files (path → bytes, exec) and the scope.
#[derive(Clone, Debug)]
pub struct Desired {
    pub files: BTreeMap<String, (Vec<u8>, bool)>,
    pub scope: Scope,
    /// Symlinks of the artifact a mapping skipped (each worth a warning).
    pub skipped: BTreeSet<String>,
}

/// Computes the desired set, or the reason the profile is invalid for this artifact.
#[allow(clippy::too_many_lines)] // the desired-set rules as DESIGN §3 states them, one after another
pub fn desired(art: &ArtTree, profile: &ProfileSpec) -> Result<Desired, String> {
    let mut excludes = Exclude::DEFAULTS.to_vec();
    excludes.extend(profile.excludes.iter().copied());
    let mut scope = Scope {
        roots: Vec::new(),
        held: Vec::new(),
        excludes,
        adopt: profile.adopt,
    };
    // destination → (bytes, exec, template, mapping index)
    let mut files: BTreeMap<String, (Vec<u8>, bool, bool, usize)> = BTreeMap::new();
    let mut skipped = BTreeSet::new();
    for (index, mapping) in profile.mappings.iter().enumerate() {
        let source = normalize(&render(&mapping.source))
            .map_err(|e| format!("mappings[{index}].source: {e}"))?;
        let destination = normalize(&render(&mapping.destination))
            .map_err(|e| format!("mappings[{index}].destination: {e}"))?;
        let found = match art.get(&source) {
            Some(ArtEntry::File { .. }) => Some(MappingType::File),
            Some(ArtEntry::Symlink) => None,
            None if art.keys().any(|p| strictly_within(p, &source)) => Some(MappingType::Dir),
            None => None,
        };
        let Some(found) = found else {
            if mapping.required {
                return Err(format!(
                    "mappings[{index}]: required source {source:?} is missing"
                ));
            }
            scope.held.push(destination);
            continue;
        };
        if let Some(given) = mapping.kind
            && given != found
        {
            return Err(format!(
                "mappings[{index}]: type {given:?} but source is {found:?}"
            ));
        }
        // A mapping whose destination is itself protected could write nothing: it is skipped
        // (with a warning) and manages nothing, so nothing above it needs to be a directory.
        if !destination.is_empty() && Scope::protected(&destination) {
            continue;
        }
        let mut mapped: Vec<(String, Vec<u8>, bool)> = Vec::new();
        match found {
            MappingType::File => {
                if destination.is_empty() {
                    return Err(format!("mappings[{index}]: file mapping to the live root"));
                }
                if let Some(ArtEntry::File { bytes, exec }) = art.get(&source) {
                    mapped.push((destination.clone(), bytes.clone(), *exec));
                }
            }
            MappingType::Dir => {
                for (path, entry) in art {
                    if !strictly_within(path, &source) {
                        continue;
                    }
                    let rest = if source.is_empty() {
                        path.as_str()
                    } else {
                        &path[source.len() + 1..]
                    };
                    let target = join(&destination, rest);
                    let ArtEntry::File { bytes, exec } = entry else {
                        // Never followed; worth a warning where it would have landed somewhere.
                        if !Scope::protected(&target) && !scope.excluded(&target) {
                            skipped.insert(path.clone());
                        }
                        continue;
                    };
                    mapped.push((target, bytes.clone(), *exec));
                }
            }
        }
        for (path, bytes, exec) in mapped {
            if Scope::protected(&path) || scope.excluded(&path) {
                continue;
            }
            files.insert(path, (bytes, exec, mapping.template, index));
        }
        scope.roots.push(Root {
            path: destination,
            dir: found == MappingType::Dir,
        });
    }
    // Nothing is put below a held destination, whichever mapping would.
    files.retain(|path, _| scope.managed(path));
    for path in files.keys() {
        for ancestor in ancestors(path) {
            if files.contains_key(ancestor) {
                return Err(format!(
                    "conflict: {ancestor:?} is a file but {path:?} is below it"
                ));
            }
        }
    }
    let mut rendered = BTreeMap::new();
    for (path, (bytes, exec, template, index)) in files {
        let bytes = if template {
            if bytes.contains(&0) {
                return Err(format!(
                    "mappings[{index}]: {path:?} is binary and template is set"
                ));
            }
            render(std::str::from_utf8(&bytes).map_err(|e| e.to_string())?).into_bytes()
        } else {
            bytes
        };
        rendered.insert(path, (bytes, exec));
    }
    Ok(Desired {
        files: rendered,
        scope,
        skipped,
    })
}

// ---------------------------------------------------------------------------------------------
// Sync

/// What a sync should do.
#[derive(Clone, Debug)]
pub enum Outcome {
    /// The profile (with this artifact) is invalid: error, live unchanged.
    Invalid(String),
    /// The live directory cannot be brought to the desired state safely: error, live unchanged.
    Refused { reason: String, scope: Scope },
    /// The sync succeeds.
    Synced(Expected),
}

/// The expected result of a successful sync.
#[derive(Clone, Debug)]
pub struct Expected {
    pub tree: Tree,
    pub desired: BTreeMap<String, (Vec<u8>, bool)>,
    /// Desired paths written (added or modified).
    pub writes: BTreeSet<String>,
    /// Writes that must be reported as added (nothing was at the path).
    pub must_add: BTreeSet<String>,
    /// Writes that must be reported as modified (a regular file was at the path).
    pub must_modify: BTreeSet<String>,
    /// Non-directory entries removed (orphans and entries replaced to make room).
    pub deleted: BTreeSet<String>,
    pub unchanged: usize,
    /// About how many file-system steps the apply takes.
    pub steps: u64,
    pub scope: Scope,
    /// Artifact symlinks the report must warn about.
    pub skipped: BTreeSet<String>,
}

impl Outcome {
    pub fn scope(&self) -> Option<&Scope> {
        match self {
            Outcome::Invalid(_) => None,
            Outcome::Refused { scope, .. } => Some(scope),
            Outcome::Synced(expected) => Some(&expected.scope),
        }
    }
}

fn below<'a>(tree: &'a Tree, dir: &'a str) -> impl Iterator<Item = (&'a String, &'a Node)> + 'a {
    tree.iter()
        .filter(move |(path, _)| strictly_within(path, dir))
}

/// The model: the live tree after syncing `art` through `profile` into `live`.
#[allow(clippy::too_many_lines)] // the model's sync, rule by rule in DESIGN §3's order
pub fn sync(art: &ArtTree, profile: &ProfileSpec, live: &Tree) -> Outcome {
    let desired = match desired(art, profile) {
        Ok(desired) => desired,
        Err(reason) => return Outcome::Invalid(reason),
    };
    let scope = desired.scope.clone();
    let refuse = |reason: String| Outcome::Refused {
        reason,
        scope: scope.clone(),
    };

    // What cannot be done without touching what may not be touched.
    let blocked_ancestor = |path: &str| -> Option<String> {
        ancestors(path)
            .into_iter()
            .find(|ancestor| {
                live.get(*ancestor).is_some_and(|node| !node.is_dir()) && !scope.touchable(ancestor)
            })
            .map(str::to_owned)
    };
    for root in &scope.roots {
        if let Some(ancestor) = blocked_ancestor(&root.path) {
            return refuse(format!(
                "{ancestor:?} (not a directory, not ours) is above root {:?}",
                root.path
            ));
        }
    }
    for path in desired.files.keys() {
        if let Some(ancestor) = blocked_ancestor(path) {
            return refuse(format!(
                "{ancestor:?} (not a directory, not ours) is above {path:?}"
            ));
        }
        if live.get(path) == Some(&Node::Dir)
            && let Some((inside, _)) = below(live, path).find(|(p, _)| !scope.touchable(p))
        {
            return refuse(format!(
                "{path:?} must become a file but {inside:?} may not be removed"
            ));
        }
    }

    let mut tree = live.clone();
    let mut writes = BTreeSet::new();
    let mut must_add = BTreeSet::new();
    let mut must_modify = BTreeSet::new();
    let mut deleted = BTreeSet::new();
    let mut unchanged = 0;
    let mut steps = 1; // the manifest
    for (path, (bytes, exec)) in &desired.files {
        let want = Node::File {
            bytes: bytes.clone(),
            exec: *exec,
        };
        if live.get(path) == Some(&want) {
            unchanged += 1;
            continue;
        }
        writes.insert(path.clone());
        match live.get(path) {
            None => {
                must_add.insert(path.clone());
            }
            Some(Node::File { .. }) => {
                must_modify.insert(path.clone());
            }
            Some(_) => {}
        }
        for ancestor in ancestors(path) {
            match tree.get(ancestor) {
                Some(Node::Dir) => {}
                Some(_) => {
                    tree.insert(ancestor.to_owned(), Node::Dir);
                    deleted.insert(ancestor.to_owned());
                    steps += 2;
                }
                None => {
                    tree.insert(ancestor.to_owned(), Node::Dir);
                    steps += 1;
                }
            }
        }
        if tree.get(path) == Some(&Node::Dir) {
            let inside: Vec<(String, Node)> = below(&tree, path)
                .map(|(p, n)| (p.clone(), n.clone()))
                .collect();
            for (p, node) in inside {
                if !node.is_dir() {
                    deleted.insert(p.clone());
                }
                tree.remove(&p);
                steps += 1;
            }
            steps += 1;
        }
        tree.insert(path.clone(), want);
        steps += 2;
    }

    // Orphans.
    for (path, node) in live {
        if node.is_dir()
            || desired.files.contains_key(path)
            || tree.get(path) != Some(node)
            || !scope.touchable(path)
        {
            continue;
        }
        tree.remove(path);
        deleted.insert(path.clone());
        steps += 1;
    }

    // Directories emptied by this sync, strictly below a dir root, deepest first.
    let mut candidates: Vec<String> = tree
        .iter()
        .filter(|(path, node)| {
            node.is_dir()
                && scope
                    .roots
                    .iter()
                    .any(|root| root.dir && strictly_within(path, &root.path))
                && scope.touchable(path)
                && live.get(*path) == Some(&Node::Dir)
                && below(live, path).next().is_some()
        })
        .map(|(path, _)| path.clone())
        .collect();
    candidates.sort_by_key(|path| std::cmp::Reverse(path.matches('/').count()));
    for dir in candidates {
        if below(&tree, &dir).next().is_none() {
            tree.remove(&dir);
            steps += 1;
        }
    }

    Outcome::Synced(Expected {
        tree,
        desired: desired.files,
        writes,
        must_add,
        must_modify,
        deleted,
        unchanged,
        steps,
        scope,
        skipped: desired.skipped,
    })
}

#[cfg(test)]
mod tests {
    // The model is exercised by the properties; a few sanity checks of its own rules.
    use super::*;

    fn file(bytes: &str) -> Node {
        Node::File {
            bytes: bytes.as_bytes().to_vec(),
            exec: false,
        }
    }

    #[test]
    fn model_prunes_only_what_it_emptied() {
        let art: ArtTree = [(
            "p/x".to_owned(),
            ArtEntry::File {
                bytes: b"1".to_vec(),
                exec: false,
            },
        )]
        .into();
        let profile = ProfileSpec {
            mappings: vec![MapSpec {
                source: "p".into(),
                destination: "p".into(),
                kind: None,
                required: false,
                template: false,
            }],
            excludes: vec![],
            adopt: true,
        };
        let live: Tree = [
            ("p".to_owned(), Node::Dir),
            ("p/old".to_owned(), Node::Dir),
            ("p/old/f".to_owned(), file("z")),
            ("p/empty".to_owned(), Node::Dir),
        ]
        .into();
        let Outcome::Synced(expected) = sync(&art, &profile, &live) else {
            panic!("should sync");
        };
        let paths: Vec<&str> = expected.tree.keys().map(String::as_str).collect();
        assert_eq!(paths, ["p", "p/empty", "p/x"]);
    }
}
