//! Generated cases and the real directories they stand for: building an artifact (a
//! `LocalSource` directory or an in-memory artifact with content ids), a live directory (files,
//! directories, `.resources/` content, symlinks to a directory outside, hard links to a file
//! outside, FIFOs), an optional earlier sync plus changes behind the engine's back, and
//! snapshots.

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use proptest::prelude::*;
use proptest::sample::{Index, select};
use stoker_core::{
    Artifact, ContentId, Entry, EntryKind, Listing, LocalSource, Mapping, MappingType, Profile,
    Revision, SyncReport, SyncRequest, TemplateContext,
};
use stoker_sync::MergeStrategy;

use super::spec::{self, ArtEntry, ArtTree, Exclude, MapSpec, Node, ProfileSpec, SITE, Tree};
use crate::common::spawn;
pub use crate::common::without_fork;

// ---------------------------------------------------------------------------------------------
// Cases

/// Where a live symlink points (never inside what the test compares, except the relative ones).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// A directory outside the live directory (writing through it would show there).
    OutsideDir,
    /// A file outside the live directory.
    OutsideFile,
    /// Nothing.
    Dangling,
    /// `../a`, relative.
    Up,
}

/// One live entry to create before the sync.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LiveSpec {
    File(String, &'static str, bool),
    Dir(String),
    Link(String, Target),
    /// A hard link to the file outside (writing in place would change it).
    HardLink(String),
    /// A FIFO: opening it to read would hang the engine.
    Fifo(String),
}

/// An artifact: regular files (path, content, executable) and symlink entries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Art {
    pub files: Vec<(String, &'static str, bool)>,
    pub links: Vec<String>,
}

/// What happened to the live directory before the sync under test.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pre {
    /// Nothing: no manifest.
    Nothing,
    /// A sync of the same artifact (the manifest then vouches for most files).
    Same,
    /// A sync of another artifact.
    Other(Art),
}

/// Changes made behind the engine's back after the pre-sync (index into the live files).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Drift {
    /// Same size, other bytes, modification time put back.
    Rewrite(usize),
    ToggleExec(usize),
    Remove(usize),
    /// Replaced by a symlink to a directory outside.
    Link(usize),
}

/// One generated test case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Case {
    pub art: Art,
    /// An in-memory artifact that knows content ids (the manifest fast path) instead of a
    /// `LocalSource` directory.
    pub with_ids: bool,
    pub profile: ProfileSpec,
    pub live: Vec<LiveSpec>,
    pub pre: Pre,
    pub drift: Vec<Drift>,
}

const DIRS: &[&str] = &["a", "b", "projects", "config"];
const FILES: &[&str] = &["a", "b", "c", "x.bak", ".gitkeep", ".versions.json"];
const CONTENTS: &[&str] = &["", "1", "xx", "yy", "hello", "site={{.Vars.site}}", "\0bin"];

fn join_parts(dirs: Vec<&str>, last: &str) -> String {
    let mut parts = dirs;
    parts.push(last);
    parts.join("/")
}

fn art_dir() -> impl Strategy<Value = &'static str> {
    prop_oneof![8 => select(DIRS), 1 => Just(".resources"), 1 => Just(".git")]
}

fn live_dir() -> impl Strategy<Value = &'static str> {
    prop_oneof![8 => select(DIRS), 2 => Just(".resources"), 1 => Just(".git")]
}

fn any_name() -> impl Strategy<Value = &'static str> {
    prop_oneof![select(DIRS), select(FILES)]
}

fn art_strategy() -> impl Strategy<Value = Art> {
    let file = (
        (prop::collection::vec(art_dir(), 0..=2), select(FILES))
            .prop_map(|(d, f)| join_parts(d, f)),
        select(CONTENTS),
        prop::bool::weighted(0.2),
    );
    let link = prop::collection::vec(art_dir(), 0..=2).prop_map(|d| join_parts(d, "lnk"));
    (
        prop::collection::vec(file, 0..8),
        prop::collection::vec(link, 0..=1),
    )
        .prop_map(|(files, links)| Art { files, links })
}

/// Paths of the artifact a source may name: files and their directories.
fn source_candidates(art: &Art) -> Vec<String> {
    let tree = art_tree(art);
    let mut candidates: Vec<String> = Vec::new();
    for (path, entry) in &tree {
        for ancestor in spec::ancestors(path) {
            candidates.push(ancestor.to_owned());
        }
        if matches!(entry, ArtEntry::File { .. }) {
            candidates.push(path.clone());
        }
    }
    candidates.sort();
    candidates.dedup();
    candidates
}

/// How a mapping's `type` is written.
#[derive(Clone, Copy, Debug)]
enum KindChoice {
    Omitted,
    /// The source's actual type (a guess when it is missing).
    Right(bool),
    /// The other type.
    Wrong(bool),
}

fn source_kind(art: &ArtTree, source: &str) -> Option<MappingType> {
    match art.get(source) {
        Some(ArtEntry::File { .. }) => Some(MappingType::File),
        Some(ArtEntry::Symlink) => None,
        None if art.keys().any(|p| spec::strictly_within(p, source)) => Some(MappingType::Dir),
        None => None,
    }
}

fn mapping_strategy(art: ArtTree, candidates: Vec<String>) -> impl Strategy<Value = MapSpec> {
    let random_source = prop_oneof![
        prop::collection::vec(select(DIRS), 1..=2).prop_map(|d| d.join("/")),
        (prop::collection::vec(select(DIRS), 0..=1), select(FILES))
            .prop_map(|(d, f)| join_parts(d, f)),
    ];
    let source = if candidates.is_empty() {
        random_source.boxed()
    } else {
        prop_oneof![3 => select(candidates), 1 => random_source].boxed()
    };
    let dest_dir = prop_oneof![6 => select(DIRS), 1 => Just(spec::SITE_VAR)];
    let destination = prop_oneof![
        30 => Just(None), // same as the source
        40 => (prop::collection::vec(dest_dir, 0..=1), any_name()).prop_map(|(d, f)| Some(join_parts(d, f))),
        5 => Just(Some(".versions.json".to_owned())),
        3 => Just(Some(".".to_owned())),
        1 => select(vec!["../a", "/abs/a", "a/../b"]).prop_map(|p| Some(p.to_owned())),
    ];
    let kind = prop_oneof![
        12 => Just(KindChoice::Omitted),
        7 => any::<bool>().prop_map(KindChoice::Right),
        1 => any::<bool>().prop_map(KindChoice::Wrong),
    ];
    (
        source,
        destination,
        kind,
        prop::bool::weighted(0.1),
        prop::bool::weighted(0.1),
    )
        .prop_map(move |(source, destination, kind, required, template)| {
            let flip = |kind: MappingType| match kind {
                MappingType::Dir => MappingType::File,
                MappingType::File => MappingType::Dir,
            };
            let guess = |dir: bool| {
                if dir {
                    MappingType::Dir
                } else {
                    MappingType::File
                }
            };
            let kind = match (kind, source_kind(&art, &source)) {
                (KindChoice::Omitted, _) => None,
                (KindChoice::Right(_), Some(found)) => Some(found),
                (KindChoice::Wrong(_), Some(found)) => Some(flip(found)),
                (KindChoice::Right(dir) | KindChoice::Wrong(dir), None) => Some(guess(dir)),
            };
            MapSpec {
                destination: destination.unwrap_or_else(|| source.clone()),
                source,
                kind,
                required,
                template,
            }
        })
}

fn live_strategy(
    art_files: Vec<(String, &'static str, bool)>,
) -> impl Strategy<Value = Vec<LiveSpec>> {
    let path = || {
        (prop::collection::vec(live_dir(), 0..=3), any_name()).prop_map(|(d, f)| join_parts(d, f))
    };
    let file = (path(), select(CONTENTS), prop::bool::weighted(0.2))
        .prop_map(|(p, c, x)| LiveSpec::File(p, c, x));
    let dir = (prop::collection::vec(live_dir(), 0..=2), select(DIRS))
        .prop_map(|(d, f)| LiveSpec::Dir(join_parts(d, f)));
    let target = prop_oneof![
        Just(Target::OutsideDir),
        Just(Target::OutsideFile),
        Just(Target::Dangling),
        Just(Target::Up),
    ];
    let link = (path(), target).prop_map(|(p, t)| LiveSpec::Link(p, t));
    let hard_link = path().prop_map(LiveSpec::HardLink);
    let fifo = path().prop_map(LiveSpec::Fifo);
    let entry = if art_files.is_empty() {
        prop_oneof![5 => file, 1 => dir, 2 => link, 1 => hard_link, 1 => fifo].boxed()
    } else {
        // A copy of an artifact file, often identical.
        let copy = (
            select(art_files.clone()),
            prop::option::weighted(0.4, select(CONTENTS)),
            prop::bool::weighted(0.1),
        )
            .prop_map(|((p, c, x), other, flip)| LiveSpec::File(p, other.unwrap_or(c), x ^ flip));
        // A neighbour of an artifact file: an orphan-to-be below a managed root.
        let neighbour = (
            select(art_files),
            prop::option::of(select(DIRS)),
            any_name(),
            select(CONTENTS),
        )
            .prop_map(|((p, _, _), dir, name, c)| {
                let parent = spec::ancestors(&p)
                    .last()
                    .map_or(String::new(), |d| format!("{d}/"));
                let sub = dir.map_or(String::new(), |d| format!("{d}/"));
                LiveSpec::File(format!("{parent}{sub}{name}"), c, false)
            });
        prop_oneof![
            5 => file,
            4 => copy,
            3 => neighbour,
            1 => dir,
            2 => link,
            1 => hard_link,
            1 => fifo,
        ]
        .boxed()
    };
    prop::collection::vec(entry, 0..10)
}

fn drift_strategy() -> impl Strategy<Value = Drift> {
    prop_oneof![
        3 => (0usize..8).prop_map(Drift::Rewrite),
        1 => (0usize..8).prop_map(Drift::ToggleExec),
        1 => (0usize..8).prop_map(Drift::Remove),
        1 => (0usize..8).prop_map(Drift::Link),
    ]
}

/// A mapping nested below another one's destination whose source is missing (a typo) or a
/// symlink, so it is skipped, and a live file below its destination: the enclosing mapping must
/// leave that file alone (issue 15, "a skipped nested mapping is wiped by its parent").
#[derive(Clone, Debug)]
struct Nested {
    /// Which mapping's destination encloses it.
    under: Index,
    /// The nested destination's last component.
    dir: &'static str,
    /// `None`: a source missing from the artifact; otherwise one of the artifact's symlinks.
    link: Option<Index>,
    /// The live file below the nested destination.
    file: &'static str,
    content: &'static str,
}

fn nested_strategy() -> impl Strategy<Value = Nested> {
    (
        any::<Index>(),
        select(DIRS),
        prop::option::of(any::<Index>()),
        select(FILES),
        select(CONTENTS),
    )
        .prop_map(|(under, dir, link, file, content)| Nested {
            under,
            dir,
            link,
            file,
            content,
        })
}

impl Nested {
    /// Adds the skipped mapping after the others and the live file below its destination.
    fn add_to(&self, art: &Art, profile: &mut ProfileSpec, live: &mut Vec<LiveSpec>) {
        let Some(parent) = profile
            .mappings
            .get(self.under.index(profile.mappings.len()))
        else {
            return;
        };
        let destination = format!("{}/{}", parent.destination, self.dir);
        let source = match (self.link, art.links.is_empty()) {
            (Some(link), false) => link.get(&art.links).clone(),
            _ => format!("gone/{}", self.dir),
        };
        let rendered = destination.replace(spec::SITE_VAR, SITE);
        // An invalid destination (`../a`, `/abs/a`) makes the profile invalid anyway; its live
        // file would lie outside the live directory.
        if !rendered.starts_with('/') && !rendered.split('/').any(|part| part == "..") {
            live.push(LiveSpec::File(
                format!("{}/{}", rendered.trim_start_matches("./"), self.file),
                self.content,
                false,
            ));
        }
        profile.mappings.push(MapSpec {
            source,
            destination,
            kind: None,
            required: false,
            template: false,
        });
    }
}

/// The whole case.
pub fn case_strategy() -> impl Strategy<Value = Case> {
    art_strategy().prop_flat_map(|art| {
        let candidates = source_candidates(&art);
        let tree = art_tree(&art);
        let profile = (
            prop::collection::vec(mapping_strategy(tree, candidates), 1..=4),
            prop::collection::vec(select(Exclude::EXTRA.to_vec()), 0..=2),
        )
            .prop_map(|(mappings, excludes)| ProfileSpec {
                mappings,
                excludes,
                adopt: true,
            });
        // The previous revision: some of these files and some others.
        let len = art.files.len();
        let previous = (
            prop::sample::subsequence(art.files.clone(), 0..=len),
            art_strategy(),
        )
            .prop_map(|(kept, other)| {
                Pre::Other(Art {
                    files: kept.into_iter().chain(other.files).collect(),
                    links: other.links,
                })
            });
        let pre = prop_oneof![
            2 => Just(Pre::Nothing),
            1 => Just(Pre::Same),
            2 => previous,
        ];
        (
            Just(art.clone()),
            prop::bool::weighted(0.3),
            profile,
            live_strategy(art.files.clone()),
            pre,
            prop::collection::vec(drift_strategy(), 0..=2),
            prop::option::weighted(0.25, nested_strategy()),
            prop::bool::weighted(0.3),
        )
            .prop_map(
                |(art, with_ids, mut profile, mut live, pre, drift, nested, adopt)| {
                    if let Some(nested) = nested {
                        nested.add_to(&art, &mut profile, &mut live);
                    }
                    // The model does not know what a sync of another artifact wrote (see
                    // `ProfileSpec::adopt`).
                    profile.adopt = adopt || matches!(pre, Pre::Other(_));
                    Case {
                        art,
                        with_ids,
                        profile,
                        live,
                        pre,
                        drift,
                    }
                },
            )
    })
}

// ---------------------------------------------------------------------------------------------
// Trees

/// Inserts `node` at `path` unless something is in the way; adds missing parent directories.
fn insert(tree: &mut BTreeMap<String, Node>, path: &str, node: Node) -> bool {
    if path.is_empty() || tree.contains_key(path) {
        return false;
    }
    let parents = spec::ancestors(path);
    if parents
        .iter()
        .any(|p| tree.get(*p).is_some_and(|n| !n.is_dir()))
    {
        return false;
    }
    for parent in parents {
        tree.insert(parent.to_owned(), Node::Dir);
    }
    tree.insert(path.to_owned(), node);
    true
}

/// The artifact as the model sees it (entries in the way of earlier ones are dropped).
pub fn art_tree(art: &Art) -> ArtTree {
    let mut tree: BTreeMap<String, Node> = BTreeMap::new();
    for (path, content, exec) in &art.files {
        insert(
            &mut tree,
            path,
            Node::File {
                bytes: content.as_bytes().to_vec(),
                exec: *exec,
            },
        );
    }
    for path in &art.links {
        insert(&mut tree, path, Node::Symlink(String::new()));
    }
    tree.into_iter()
        .filter_map(|(path, node)| match node {
            Node::Dir | Node::Fifo => None,
            Node::File { bytes, exec } => Some((path, ArtEntry::File { bytes, exec })),
            Node::Symlink(_) => Some((path, ArtEntry::Symlink)),
        })
        .collect()
}

/// The live tree to create, and which of its files are hard links to the outside file.
fn live_tree(live: &[LiveSpec], outside: &Path) -> (Tree, Vec<String>) {
    let mut tree = Tree::new();
    let mut hard_links = Vec::new();
    for entry in live {
        match entry {
            LiveSpec::File(path, content, exec) => insert(
                &mut tree,
                path,
                Node::File {
                    bytes: content.as_bytes().to_vec(),
                    exec: *exec,
                },
            ),
            LiveSpec::Dir(path) => insert(&mut tree, path, Node::Dir),
            LiveSpec::Link(path, target) => insert(
                &mut tree,
                path,
                Node::Symlink(target_path(*target, outside)),
            ),
            LiveSpec::HardLink(path) => {
                let node = Node::File {
                    bytes: OUTSIDE_FILE.to_vec(),
                    exec: false,
                };
                let inserted = insert(&mut tree, path, node);
                if inserted {
                    hard_links.push(path.clone());
                }
                inserted
            }
            LiveSpec::Fifo(path) => insert(&mut tree, path, Node::Fifo),
        };
    }
    (tree, hard_links)
}

/// The content of the file outside the live directory.
const OUTSIDE_FILE: &[u8] = b"secret";

fn target_path(target: Target, outside: &Path) -> String {
    match target {
        Target::OutsideDir => outside.join("dir").display().to_string(),
        Target::OutsideFile => outside.join("file").display().to_string(),
        Target::Dangling => outside.join("nothing-here").display().to_string(),
        Target::Up => "../a".to_owned(),
    }
}

fn set_mode(path: &Path, exec: bool) {
    let mode = if exec { 0o755 } else { 0o644 };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// The engine's result, its error boxed.
pub type SyncResult = Result<SyncReport, Box<stoker_sync::Error>>;

/// Runs a sync (never while this test process is spawning a child: see `common::fork`).
fn run(engine: &MergeStrategy, request: &SyncRequest) -> SyncResult {
    without_fork(|| engine.sync(request).map_err(Box::new))
}

/// Creates `tree` below `root`.
pub fn write_tree(root: &Path, tree: &Tree) {
    std::fs::create_dir_all(root).expect("mkdir root");
    for (path, node) in tree {
        let full = root.join(path);
        match node {
            Node::Dir => std::fs::create_dir_all(&full).expect("mkdir"),
            Node::File { bytes, exec } => {
                std::fs::create_dir_all(full.parent().expect("parent")).expect("mkdir parent");
                std::fs::write(&full, bytes).expect("write");
                set_mode(&full, *exec);
            }
            Node::Symlink(target) => {
                std::fs::create_dir_all(full.parent().expect("parent")).expect("mkdir parent");
                std::os::unix::fs::symlink(target, &full).expect("symlink");
            }
            Node::Fifo => {
                std::fs::create_dir_all(full.parent().expect("parent")).expect("mkdir parent");
                // Spawned while no sync runs: a child inherits the descriptor of a sync's lock.
                let status = spawn(std::process::Command::new("mkfifo").arg(&full))
                    .and_then(|mut child| child.wait())
                    .expect("run mkfifo");
                assert!(status.success(), "mkfifo {}", full.display());
            }
        }
    }
}

fn art_as_tree(art: &ArtTree) -> Tree {
    art.iter()
        .map(|(path, entry)| {
            let node = match entry {
                ArtEntry::File { bytes, exec } => Node::File {
                    bytes: bytes.clone(),
                    exec: *exec,
                },
                ArtEntry::Symlink => Node::Symlink("a".to_owned()),
            };
            (path.clone(), node)
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Snapshots

/// A directory as the model sees it, with modification times (ns).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snap {
    pub tree: Tree,
    pub mtimes: BTreeMap<String, i128>,
}

/// Snapshots `root`, never following symlinks; `.stoker/` at the root is left out unless
/// `with_state`.
pub fn snapshot(root: &Path, with_state: bool) -> Snap {
    let mut snap = Snap {
        tree: Tree::new(),
        mtimes: BTreeMap::new(),
    };
    walk(root, "", with_state, &mut snap);
    snap
}

fn walk(dir: &Path, prefix: &str, with_state: bool, snap: &mut Snap) {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .into_string()
                .expect("utf-8 name")
        })
        .collect();
    names.sort();
    for name in names {
        let path = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}/{name}")
        };
        if !with_state && path == ".stoker" {
            continue;
        }
        let full = dir.join(&name);
        let meta = std::fs::symlink_metadata(&full).expect("lstat");
        let mtime = i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec());
        snap.mtimes.insert(path.clone(), mtime);
        let file_type = meta.file_type();
        if file_type.is_symlink() {
            let target = std::fs::read_link(&full).expect("readlink");
            snap.tree
                .insert(path, Node::Symlink(target.display().to_string()));
        } else if file_type.is_dir() {
            snap.tree.insert(path.clone(), Node::Dir);
            walk(&full, &path, with_state, snap);
        } else if std::os::unix::fs::FileTypeExt::is_fifo(&file_type) {
            snap.tree.insert(path, Node::Fifo);
        } else {
            let bytes = std::fs::read(&full).expect("read");
            snap.tree.insert(
                path,
                Node::File {
                    bytes,
                    exec: meta.mode() & 0o100 != 0,
                },
            );
        }
    }
}

/// Paths of the engine's temporaries anywhere below `root` (`.stoker/` included).
pub fn temporaries(root: &Path) -> Vec<String> {
    snapshot(root, true)
        .tree
        .keys()
        .filter(|p| {
            p.rsplit('/')
                .next()
                .is_some_and(|n| n.starts_with(".stoker-tmp-"))
        })
        .cloned()
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Artifacts

/// An artifact held in memory that knows content ids (like a Git tree).
struct MemArtifact {
    revision: Revision,
    listing: Listing,
    blobs: BTreeMap<String, Vec<u8>>,
}

impl Artifact for MemArtifact {
    fn revision(&self) -> &Revision {
        &self.revision
    }

    fn list(&self) -> stoker_core::Result<Listing> {
        Ok(self.listing.clone())
    }

    fn read(&self, path: &str) -> stoker_core::Result<Vec<u8>> {
        self.blobs
            .get(path)
            .cloned()
            .ok_or_else(|| stoker_core::Error::NotFound {
                path: path.to_owned(),
                revision: self.revision.id.clone(),
            })
    }
}

fn mem_artifact(art: &ArtTree, revision: &str) -> MemArtifact {
    let mut listing = Listing::default();
    let mut blobs = BTreeMap::new();
    for (path, entry) in art {
        match entry {
            ArtEntry::File { bytes, exec } => {
                listing.entries.push(Entry {
                    path: path.clone(),
                    kind: if *exec {
                        EntryKind::Executable
                    } else {
                        EntryKind::File
                    },
                    size: bytes.len() as u64,
                    content_id: Some(ContentId::of_blob(bytes)),
                });
                blobs.insert(path.clone(), bytes.clone());
            }
            ArtEntry::Symlink => listing.entries.push(Entry {
                path: path.clone(),
                kind: EntryKind::Symlink,
                size: 0,
                content_id: None,
            }),
        }
    }
    MemArtifact {
        revision: Revision::new(revision),
        listing,
        blobs,
    }
}

fn make_artifact(art: &ArtTree, with_ids: bool, dir: &Path, revision: &str) -> Arc<dyn Artifact> {
    if with_ids {
        Arc::new(mem_artifact(art, revision))
    } else {
        write_tree(dir, &art_as_tree(art));
        Arc::new(LocalSource::new(dir).artifact(Revision::new(revision)))
    }
}

/// The engine's profile for a model profile.
pub fn profile(spec: &ProfileSpec) -> Profile {
    let mappings = spec
        .mappings
        .iter()
        .map(|m| Mapping {
            source: m.source.clone(),
            destination: m.destination.clone(),
            kind: m.kind,
            required: m.required,
            template: m.template,
            patches: Vec::new(),
        })
        .collect();
    let mut profile = Profile::new("model", mappings);
    profile
        .exclude_patterns
        .extend(spec.excludes.iter().map(|e| e.pattern().to_owned()));
    profile.vars.insert("site".to_owned(), SITE.to_owned());
    profile.adopt = spec.adopt;
    profile
}

// ---------------------------------------------------------------------------------------------
// Worlds

/// A case made real: temporary directories, the artifact, the live directory after the
/// pre-sync and drift.
pub struct World {
    _dir: tempfile::TempDir,
    pub live: PathBuf,
    pub outside: PathBuf,
    pub art: ArtTree,
    pub artifact: Arc<dyn Artifact>,
    pub profile: Profile,
}

impl World {
    pub fn new(case: &Case) -> World {
        let dir = tempfile::Builder::new()
            .prefix("stoker-model-")
            .tempdir()
            .expect("tempdir");
        let live = dir.path().join("live");
        let outside = dir.path().join("outside");
        write_tree(
            &outside,
            &[
                ("dir".to_owned(), Node::Dir),
                (
                    "dir/inner".to_owned(),
                    Node::File {
                        bytes: b"outside".to_vec(),
                        exec: false,
                    },
                ),
                (
                    "file".to_owned(),
                    Node::File {
                        bytes: OUTSIDE_FILE.to_vec(),
                        exec: false,
                    },
                ),
            ]
            .into(),
        );
        let (tree, hard_links) = live_tree(&case.live, &outside);
        write_tree(&live, &tree);
        for path in hard_links {
            let full = live.join(&path);
            std::fs::remove_file(&full).expect("remove");
            std::fs::hard_link(outside.join("file"), &full).expect("hard link");
        }
        let art = art_tree(&case.art);
        let artifact = make_artifact(&art, case.with_ids, &dir.path().join("repo"), "main");
        let profile = profile(&case.profile);
        let world = World {
            _dir: dir,
            live,
            outside,
            art,
            artifact,
            profile,
        };
        let pre = match &case.pre {
            Pre::Nothing => None,
            Pre::Same => Some(world.artifact.clone()),
            Pre::Other(other) => Some(make_artifact(
                &art_tree(other),
                case.with_ids,
                &world._dir.path().join("repo-pre"),
                "pre",
            )),
        };
        if let Some(pre) = pre {
            let mut request = world.request(false);
            request.artifact = pre;
            // An invalid pre-sync leaves the live directory as it was; that is a case too.
            let _ = run(&MergeStrategy::default(), &request);
            world.drift(&case.drift);
        }
        world
    }

    /// Syncs the case's artifact.
    pub fn sync(&self, engine: &MergeStrategy, dry_run: bool) -> SyncResult {
        run(engine, &self.request(dry_run))
    }

    /// A request for the case's artifact.
    pub fn request(&self, dry_run: bool) -> SyncRequest {
        SyncRequest {
            artifact: self.artifact.clone(),
            profile: self.profile.clone(),
            context: TemplateContext::default(),
            live: self.live.clone(),
            dry_run,
            changed_paths: None,
            previous: None,
        }
    }

    fn drift(&self, drift: &[Drift]) {
        for change in drift {
            let files: Vec<String> = snapshot(&self.live, false)
                .tree
                .into_iter()
                .filter(|(_, n)| matches!(n, Node::File { .. }))
                .map(|(p, _)| p)
                .collect();
            if files.is_empty() {
                return;
            }
            let pick = |i: usize| self.live.join(&files[i % files.len()]);
            match *change {
                Drift::Rewrite(i) => {
                    let path = pick(i);
                    let mut bytes = std::fs::read(&path).expect("read");
                    if bytes.is_empty() {
                        continue;
                    }
                    bytes[0] ^= 1;
                    let mtime = std::fs::metadata(&path)
                        .expect("stat")
                        .modified()
                        .expect("mtime");
                    let file = std::fs::OpenOptions::new()
                        .write(true)
                        .truncate(true)
                        .open(&path)
                        .expect("open");
                    std::io::Write::write_all(&mut &file, &bytes).expect("rewrite");
                    file.set_modified(mtime).expect("set mtime");
                }
                Drift::ToggleExec(i) => {
                    let path = pick(i);
                    let mode = std::fs::metadata(&path).expect("stat").mode();
                    set_mode(&path, mode & 0o100 == 0);
                }
                Drift::Remove(i) => std::fs::remove_file(pick(i)).expect("remove"),
                Drift::Link(i) => {
                    let path = pick(i);
                    std::fs::remove_file(&path).expect("remove");
                    std::os::unix::fs::symlink(self.outside.join("dir"), &path).expect("symlink");
                }
            }
        }
    }

    /// The live directory now (without `.stoker/`).
    pub fn snap(&self) -> Snap {
        snapshot(&self.live, false)
    }

    /// The directory symlinks point to, which no sync may change.
    pub fn outside_snap(&self) -> Snap {
        snapshot(&self.outside, true)
    }
}

// ---------------------------------------------------------------------------------------------
// State mess: the engine's own `.stoker/` tampered with after a sync (issue 15, data loss 2)

/// One change to `.stoker/` behind the engine's back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StateMess {
    /// `.stoker/reports` replaced by a symlink to the directory outside.
    ReportsLink,
    /// `.stoker/reports` replaced by a file.
    ReportsFile,
    /// `.stoker` replaced by a symlink to the directory outside.
    StateLink,
    /// `.stoker/manifest.bin` replaced by a symlink to a file outside.
    ManifestLink,
    /// `.stoker/journal.json` made a directory holding a file.
    JournalDir,
    /// `.stoker/journal.json` made a symlink to a file outside.
    JournalLink,
}

impl StateMess {
    pub const ALL: [StateMess; 6] = [
        StateMess::ReportsLink,
        StateMess::ReportsFile,
        StateMess::StateLink,
        StateMess::ManifestLink,
        StateMess::JournalDir,
        StateMess::JournalLink,
    ];

    /// True when the next sync must be refused (it cannot keep its state without following
    /// or replacing what is there).
    pub fn refused(self) -> bool {
        matches!(
            self,
            StateMess::ReportsLink | StateMess::ReportsFile | StateMess::StateLink
        )
    }
}

impl World {
    /// Puts report-named files in the directory outside (what a followed symlink would prune)
    /// and applies `mess` to `.stoker/`.
    pub fn mess_state(&self, mess: StateMess) {
        for i in 0..12 {
            let name = format!("20260101T0000{i:02}.000000000Z-main.json");
            std::fs::write(self.outside.join("dir").join(name), "not Stoker's").expect("write");
        }
        let state = self.live.join(".stoker");
        let replace = |path: &Path, with: &dyn Fn(&Path)| {
            if std::fs::symlink_metadata(path).is_ok() {
                remove_any(path);
            }
            with(path);
        };
        let link_to = |target: PathBuf| {
            move |path: &Path| std::os::unix::fs::symlink(&target, path).expect("symlink")
        };
        match mess {
            StateMess::ReportsLink => {
                replace(&state.join("reports"), &link_to(self.outside.join("dir")))
            }
            StateMess::ReportsFile => replace(&state.join("reports"), &|path: &Path| {
                std::fs::write(path, "a file").expect("write")
            }),
            StateMess::StateLink => replace(&state, &link_to(self.outside.join("dir"))),
            StateMess::ManifestLink => replace(
                &state.join("manifest.bin"),
                &link_to(self.outside.join("file")),
            ),
            StateMess::JournalDir => replace(&state.join("journal.json"), &|path: &Path| {
                std::fs::create_dir(path).expect("mkdir");
                std::fs::write(path.join("inside"), "x").expect("write");
            }),
            StateMess::JournalLink => replace(
                &state.join("journal.json"),
                &link_to(self.outside.join("file")),
            ),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Mess: any change behind the engine's back after a sync (the guided scan's property)

/// Names a mess uses (colliding with the generator's paths, protected names included).
const MESS_NAMES: &[&str] = &[
    "a",
    "b",
    "c",
    "x.bak",
    ".gitkeep",
    "projects",
    "config",
    ".resources",
    ".git",
    "new",
];

/// One change to the live directory, applied to whatever is there (indices wrap around).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mess {
    /// A new file in a directory (the live root included).
    AddFile(usize, &'static str, &'static str),
    /// A new directory holding a stray file, one level deeper when `deep`.
    AddDir(usize, &'static str, bool),
    /// New content for a file (the size may stay), modification time put back or not.
    Rewrite(usize, &'static str, bool),
    /// The executable bit flipped.
    Chmod(usize),
    /// An entry removed (a directory with its content).
    Remove(usize),
    /// An entry replaced by a directory holding a stray file.
    ToDir(usize),
    /// An entry replaced by a file.
    ToFile(usize, &'static str),
    /// An entry replaced by a symlink to the directory outside.
    ToLink(usize),
    /// An entry renamed within its directory (when the new name is free).
    Rename(usize, &'static str),
}

/// A list of changes.
pub fn mess_strategy() -> impl Strategy<Value = Vec<Mess>> {
    let index = || 0usize..64;
    let name = || select(MESS_NAMES);
    let one = prop_oneof![
        3 => (index(), name(), select(CONTENTS)).prop_map(|(i, n, c)| Mess::AddFile(i, n, c)),
        2 => (index(), name(), any::<bool>()).prop_map(|(i, n, d)| Mess::AddDir(i, n, d)),
        3 => (index(), select(CONTENTS), any::<bool>()).prop_map(|(i, c, k)| Mess::Rewrite(i, c, k)),
        1 => index().prop_map(Mess::Chmod),
        2 => index().prop_map(Mess::Remove),
        1 => index().prop_map(Mess::ToDir),
        1 => (index(), select(CONTENTS)).prop_map(|(i, c)| Mess::ToFile(i, c)),
        1 => index().prop_map(Mess::ToLink),
        1 => (index(), name()).prop_map(|(i, n)| Mess::Rename(i, n)),
    ];
    prop::collection::vec(one, 1..=4)
}

fn remove_any(path: &Path) {
    let metadata = std::fs::symlink_metadata(path).expect("lstat");
    if metadata.is_dir() {
        std::fs::remove_dir_all(path).expect("remove dir");
    } else {
        std::fs::remove_file(path).expect("remove");
    }
}

impl World {
    /// Applies changes behind the engine's back.
    #[allow(clippy::too_many_lines)] // one arm per kind of change made behind the engine's back
    pub fn mess(&self, mess: &[Mess]) {
        for change in mess {
            let tree = snapshot(&self.live, false).tree;
            let entries: Vec<&String> = tree.keys().collect();
            let dirs: Vec<String> = std::iter::once(String::new())
                .chain(
                    tree.iter()
                        .filter(|(_, n)| n.is_dir())
                        .map(|(p, _)| p.clone()),
                )
                .collect();
            let files: Vec<&String> = tree
                .iter()
                .filter(|(_, n)| matches!(n, Node::File { .. }))
                .map(|(p, _)| p)
                .collect();
            let entry = |i: usize| {
                entries
                    .get(i % entries.len().max(1))
                    .map(|p| self.live.join(p))
            };
            let child = |i: usize, name: &str| {
                let dir = &dirs[i % dirs.len()];
                self.live.join(if dir.is_empty() {
                    name.to_owned()
                } else {
                    format!("{dir}/{name}")
                })
            };
            match *change {
                Mess::AddFile(i, name, content) => {
                    let path = child(i, name);
                    if std::fs::symlink_metadata(&path).is_err() {
                        std::fs::write(&path, content).expect("add file");
                    }
                }
                Mess::AddDir(i, name, deep) => {
                    let path = child(i, name);
                    if std::fs::symlink_metadata(&path).is_err() {
                        let inner = if deep { path.join("new") } else { path.clone() };
                        std::fs::create_dir_all(&inner).expect("add dir");
                        std::fs::write(inner.join("a"), "stray").expect("stray");
                    }
                }
                Mess::Rewrite(i, content, keep_mtime) => {
                    let Some(path) = files.get(i % files.len().max(1)).map(|p| self.live.join(p))
                    else {
                        continue;
                    };
                    let mtime = std::fs::symlink_metadata(&path)
                        .expect("stat")
                        .modified()
                        .expect("mtime");
                    let file = std::fs::OpenOptions::new()
                        .write(true)
                        .truncate(true)
                        .open(&path)
                        .expect("open");
                    std::io::Write::write_all(&mut &file, content.as_bytes()).expect("rewrite");
                    if keep_mtime {
                        file.set_modified(mtime).expect("set mtime");
                    }
                }
                Mess::Chmod(i) => {
                    let Some(path) = files.get(i % files.len().max(1)).map(|p| self.live.join(p))
                    else {
                        continue;
                    };
                    let mode = std::fs::metadata(&path).expect("stat").mode();
                    set_mode(&path, mode & 0o100 == 0);
                }
                Mess::Remove(i) => {
                    if let Some(path) = entry(i) {
                        remove_any(&path);
                    }
                }
                Mess::ToDir(i) => {
                    if let Some(path) = entry(i) {
                        remove_any(&path);
                        std::fs::create_dir(&path).expect("mkdir");
                        std::fs::write(path.join("b"), "stray").expect("stray");
                    }
                }
                Mess::ToFile(i, content) => {
                    if let Some(path) = entry(i) {
                        remove_any(&path);
                        std::fs::write(&path, content).expect("write");
                    }
                }
                Mess::ToLink(i) => {
                    if let Some(path) = entry(i) {
                        remove_any(&path);
                        std::os::unix::fs::symlink(self.outside.join("dir"), &path)
                            .expect("symlink");
                    }
                }
                Mess::Rename(i, name) => {
                    if let Some(path) = entry(i) {
                        let target = path.with_file_name(name);
                        if std::fs::symlink_metadata(&target).is_err() {
                            std::fs::rename(&path, &target).expect("rename");
                        }
                    }
                }
            }
        }
    }

    /// The scope the case's profile gives (`None` when the profile is invalid).
    pub fn scope(&self) -> Option<stoker_sync::scope::Scope> {
        let listing = self.artifact.list().ok()?;
        stoker_sync::desired::desired_set(&listing, &self.profile, &TemplateContext::default())
            .ok()
            .map(|set| set.scope)
    }
}

/// Cases for incremental planning: as [`case_strategy`], but half of them synced before to the
/// same files with some contents changed (what a commit usually is), and half of those with
/// every mapping templated.
pub fn incremental_case_strategy() -> impl Strategy<Value = Case> {
    (
        case_strategy(),
        prop::collection::vec(prop::option::weighted(0.4, select(CONTENTS)), 8),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(mut case, contents, edited, templated)| {
            if edited {
                let files = case
                    .art
                    .files
                    .iter()
                    .zip(contents.iter().cycle())
                    .map(|((path, content, exec), new)| {
                        (path.clone(), new.unwrap_or(content), *exec)
                    })
                    .collect();
                case.pre = Pre::Other(Art {
                    files,
                    links: case.art.links.clone(),
                });
                case.profile.adopt = true;
                if templated {
                    for mapping in &mut case.profile.mappings {
                        mapping.template = true;
                    }
                }
            }
            case
        })
}
