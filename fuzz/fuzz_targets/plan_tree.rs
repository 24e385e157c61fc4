//! Syncs an arbitrary small repository tree through an arbitrary profile into a live directory
//! that already holds arbitrary entries (files, directories, symlinks pointing out of it), with
//! `stoker_core::LocalSource` and `stoker_sync::MergeStrategy` (the `SyncStrategy` trait).
//!
//! Layout of one iteration, on tmpfs (`/dev/shm`) when there is one:
//!
//! ```text
//! base/src/                  the repository tree
//! base/parent/outside.txt    a file next to the live directory
//! base/parent/escape/        a directory next to it (live symlinks point here)
//! base/parent/live/          the live directory, with `.resources/keep` files and a marker
//! ```
//!
//! Asserts: nothing panics; `plan` writes nothing (except the engine's `.stoker/`); a dry run
//! writes nothing and reports what the real sync then does; when `plan` succeeds, `apply`
//! succeeds too (a plan is the point where a sync may still refuse without a partial write);
//! nothing outside the live directory (the repository, `outside.txt`, `escape/`, the parent
//! directory listing) changes; `.resources` files and every other entry the scope does not let
//! the engine touch are unchanged; each desired file is a regular file with the right executable
//! bit (and the source's bytes when not transformed); no touchable entry that is not desired
//! survives; no `.stoker-tmp-*` is left; a second sync plans and reports 0 changes.
#![no_main]

use std::collections::BTreeMap;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use stoker_core::{
    LocalSource, Mapping, MappingType, Patch, Profile, Revision, SyncReport, SyncRequest,
    SyncStrategy, TemplateContext,
};
use stoker_sync::MergeStrategy;
use stoker_sync::scope::TEMP_PREFIX;

// ---------------------------------------------------------------------------------------------
// Input

/// Path components. Includes the protected `.resources`, the engine's `.stoker`, default
/// excludes, a name that looks like one of the engine's temporaries, and unicode.
const NAMES: &[&str] = &[
    "a",
    "b",
    "ä",
    "日本",
    ".resources",
    ".stoker",
    ".git",
    ".gitkeep",
    "x.json",
    "project.json",
    "projects",
    ".stoker-tmp-1",
    "c d",
];

#[derive(Debug, Arbitrary)]
enum Comp {
    Name(u8),
    Dot,
    DotDot,
    Empty,
    Raw(String),
}

impl Comp {
    fn text(&self) -> String {
        match self {
            Comp::Name(i) => NAMES[*i as usize % NAMES.len()].to_owned(),
            Comp::Dot => ".".to_owned(),
            Comp::DotDot => "..".to_owned(),
            Comp::Empty => String::new(),
            Comp::Raw(s) => short(s, 8),
        }
    }
}

fn short(s: &str, chars: usize) -> String {
    s.chars().take(chars).collect()
}

#[derive(Debug, Arbitrary)]
enum Content {
    Empty,
    Json,
    JsonNewline,
    Templated,
    Binary,
    Bytes(Vec<u8>),
}

const JSON: &[u8] = br#"{"a": {"b": 1}, "items": [{"name": "n"}], "flag": true}"#;

impl Content {
    fn bytes(&self) -> Vec<u8> {
        match self {
            Content::Empty => Vec::new(),
            Content::Json => JSON.to_vec(),
            Content::JsonNewline => [JSON, b"\n"].concat(),
            Content::Templated => b"gw={{.GatewayName}} k={{ .Vars.k }}\n".to_vec(),
            Content::Binary => b"\0\x01{{.Vars.k}}".to_vec(),
            Content::Bytes(bytes) => bytes.iter().copied().take(64).collect(),
        }
    }
}

#[derive(Debug, Arbitrary)]
enum Link {
    /// `base/parent/outside.txt`, absolute.
    OutsideFile,
    /// `base/parent/escape`, absolute.
    EscapeDir,
    /// `..`
    Parent,
    /// `base/src`, absolute.
    Source,
    /// A relative name (maybe a sibling, maybe nothing).
    Name(u8),
    Raw(String),
}

#[derive(Debug, Arbitrary)]
enum Node {
    File { content: Content, executable: bool },
    Symlink(Link),
    Dir,
}

#[derive(Debug, Arbitrary)]
struct TreeEntry {
    path: Vec<Comp>,
    node: Node,
}

/// Pieces of a mapping's `source` / `destination`, joined with `/`.
#[derive(Debug, Arbitrary)]
enum Piece {
    Comp(Comp),
    Template(u8),
}

const TEMPLATES: &[&str] = &[
    "{{.Vars.k}}",
    "{{.Vars.dot}}",
    "{{.Vars.up}}",
    "{{.Vars.empty}}",
    "{{.Vars.sub}}",
    "{{.Vars.abs}}",
    "{{.Vars.pv}}",
    "{{.Vars.missing}}",
    "{{.GatewayName}}",
    "{{.PodName}}",
    "{{ .Vars.k }}.json",
    "x-{{.Vars.res}}",
    "{{.",
    "{{.Vars.k}",
];

#[derive(Debug, Arbitrary)]
struct PathTemplate {
    /// A leading `/` (absolute, refused) one time in 16, a trailing `/` one time in 4, so that
    /// most inputs get past path validation.
    slashes: u8,
    pieces: Vec<Piece>,
}

impl PathTemplate {
    fn text(&self) -> String {
        let mut text = if self.slashes % 16 == 1 {
            "/".to_owned()
        } else {
            String::new()
        };
        let pieces: Vec<String> = self
            .pieces
            .iter()
            .take(4)
            .map(|piece| match piece {
                Piece::Comp(comp) => comp.text(),
                Piece::Template(i) => TEMPLATES[*i as usize % TEMPLATES.len()].to_owned(),
            })
            .collect();
        if pieces.is_empty() {
            // An empty list is more useful as the root than as an (always refused) empty path.
            text.push('.');
        }
        text.push_str(&pieces.join("/"));
        if self.slashes % 4 == 2 {
            text.push('/');
        }
        text
    }
}

#[derive(Debug, Arbitrary)]
enum Pick {
    Known(u8),
    Raw(String),
}

impl Pick {
    fn text(&self, known: &[&str]) -> String {
        match self {
            Pick::Known(i) => known[*i as usize % known.len()].to_owned(),
            Pick::Raw(s) => short(s, 12),
        }
    }
}

const PATCH_GLOBS: &[&str] = &[
    "*.json",
    "**/*.json",
    "x.json",
    "project.json",
    "*",
    "**",
    "a/*",
    "[",
];
const DOT_PATHS: &[&str] = &[
    "a",
    "a.b",
    "items.0.name",
    "items.5",
    "new.deep",
    "",
    "a..b",
    "flag.x",
];
const VALUES: &[&str] = &[
    "1",
    "true",
    "s",
    "null",
    "{{.Vars.k}}",
    "{{.Vars.missing}}",
    "[1]",
    "{\"o\": 1}",
];
const EXCLUDES: &[&str] = &[
    "**/.git/**",
    "**/.gitkeep",
    "**/*.json",
    "a/",
    "**/b",
    "*",
    "b",
    "a/**",
    "**/.resources/**",
    "[",
];

#[derive(Debug, Arbitrary)]
struct PatchSpec {
    file: Pick,
    set: Vec<(Pick, Pick)>,
}

#[derive(Debug, Arbitrary)]
struct MappingSpec {
    source: PathTemplate,
    destination: PathTemplate,
    /// `None`: inferred; `Some(true)`: dir; `Some(false)`: file.
    dir: Option<bool>,
    required: bool,
    template: bool,
    patches: Vec<PatchSpec>,
}

/// A mapping added after the others, nested below one of their destinations, whose source is
/// missing or a symlink (so it is skipped), with a live file below its destination: that file
/// must survive whatever mapping encloses it (issue 15).
#[derive(Debug, Arbitrary)]
struct NestedSpec {
    /// Which mapping's destination encloses it.
    under: u8,
    /// Its destination's last component (from `NAMES`).
    name: u8,
    /// `src/nested-link`, a symlink to `a`, instead of a missing source.
    link: bool,
    /// The live file's name below the nested destination (from `NAMES`).
    file: u8,
}

/// The nested mapping's source when it is a symlink.
const NESTED_LINK: &str = "nested-link";

impl NestedSpec {
    /// The mapping, when there is a mapping to nest it under.
    fn mapping(&self, input: &Input) -> Option<Mapping> {
        let mappings = &input.mappings[..input.mappings.len().min(4)];
        let parent = mappings.get(self.under as usize % mappings.len().max(1))?;
        Some(Mapping {
            source: if self.link {
                NESTED_LINK.to_owned()
            } else {
                "nested-missing".to_owned()
            },
            destination: format!(
                "{}/{}",
                parent.destination.text().trim_end_matches('/'),
                NAMES[self.name as usize % NAMES.len()]
            ),
            kind: None,
            required: false,
            template: false,
            patches: Vec::new(),
        })
    }

    /// The live file below the mapping's rendered destination, when it renders to a valid path.
    fn live_file(&self, mapping: &Mapping) -> Option<Vec<String>> {
        let rendered =
            stoker_core::template::render("nested", &mapping.destination, &context()).ok()?;
        let normalized = stoker_core::relpath::normalize(&rendered, "nested").ok()?;
        let mut components: Vec<String> = normalized
            .split('/')
            .filter(|c| !c.is_empty())
            .map(str::to_owned)
            .collect();
        components.push(NAMES[self.file as usize % NAMES.len()].to_owned());
        Some(components)
    }
}

#[derive(Debug, Arbitrary)]
struct Input {
    tree: Vec<TreeEntry>,
    live: Vec<TreeEntry>,
    mappings: Vec<MappingSpec>,
    nested: Option<NestedSpec>,
    /// `None`: the built-in defaults.
    excludes: Option<Vec<Pick>>,
    /// Value of `{{.Vars.pv}}`, set in the profile (not the context).
    profile_var: Option<Pick>,
    dry_run_first: bool,
    /// `adopt`: a mapping to `.` may delete what Stoker did not write.
    adopt: bool,
}

fn profile(input: &Input) -> Profile {
    let mut mappings: Vec<Mapping> = input
        .mappings
        .iter()
        .take(4)
        .map(|m| Mapping {
            source: m.source.text(),
            destination: m.destination.text(),
            kind: m.dir.map(|dir| {
                if dir {
                    MappingType::Dir
                } else {
                    MappingType::File
                }
            }),
            required: m.required,
            template: m.template,
            patches: m
                .patches
                .iter()
                .take(2)
                .map(|p| Patch {
                    file: Some(p.file.text(PATCH_GLOBS)),
                    set: p
                        .set
                        .iter()
                        .take(3)
                        .map(|(path, value)| (path.text(DOT_PATHS), value.text(VALUES)))
                        .collect(),
                })
                .collect(),
        })
        .collect();
    mappings.extend(input.nested.as_ref().and_then(|n| n.mapping(input)));
    let mut profile = Profile::new("fuzz", mappings);
    profile.adopt = input.adopt;
    if let Some(excludes) = &input.excludes {
        profile.exclude_patterns = excludes.iter().take(4).map(|e| e.text(EXCLUDES)).collect();
    }
    if let Some(value) = &input.profile_var {
        profile
            .vars
            .insert("pv".to_owned(), value.text(&["a", ".", "..", "", "b/c"]));
    }
    profile
}

/// A skipped mapping's destination and the destinations of the mappings at or below it, which
/// still manage what they cover.
struct Hold {
    destination: String,
    inner: Vec<(String, MappingType)>,
}

impl Hold {
    /// True when the rule says `path` must be left as it is.
    fn holds(&self, path: &str) -> bool {
        stoker_core::relpath::is_within(path, &self.destination)
            && !self.inner.iter().any(|(root, kind)| match kind {
                MappingType::Dir => stoker_core::relpath::is_within(path, root),
                MappingType::File => path == root,
            })
    }
}

fn held_paths(mappings: &[stoker_sync::desired::ResolvedMapping]) -> Vec<Hold> {
    mappings
        .iter()
        .filter(|m| m.kind.is_none())
        .map(|skipped| Hold {
            destination: skipped.destination.clone(),
            inner: mappings
                .iter()
                .filter_map(|m| Some((m.destination.clone(), m.kind?)))
                .filter(|(root, _)| stoker_core::relpath::is_within(root, &skipped.destination))
                .collect(),
        })
        .collect()
}

fn context() -> TemplateContext {
    TemplateContext::default()
        .with_gateway_name("b")
        .with_var("k", "a")
        .with_var("dot", ".")
        .with_var("up", "..")
        .with_var("empty", "")
        .with_var("sub", "a/b")
        .with_var("abs", "/etc")
        .with_var("res", ".resources")
}

// ---------------------------------------------------------------------------------------------
// Building the directories

struct Dirs {
    base: PathBuf,
    src: PathBuf,
    parent: PathBuf,
    live: PathBuf,
}

impl Drop for Dirs {
    /// Removes the iteration's directories, unless it failed (then they stay for a look; the
    /// next process sweeps them).
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.base);
        }
    }
}

const BASE_PREFIX: &str = "stoker-fuzz-plan_tree-";

fn base_dir() -> PathBuf {
    static ROOT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    let root = ROOT.get_or_init(|| {
        let shm = Path::new("/dev/shm");
        let root = if shm.is_dir() {
            shm.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        // Sweep what earlier processes left (a failed iteration keeps its directories).
        if let Ok(entries) = std::fs::read_dir(&root) {
            for entry in entries.flatten() {
                let name = entry.file_name();
                let Some(pid) = name.to_str().and_then(|n| n.strip_prefix(BASE_PREFIX)) else {
                    continue;
                };
                if !Path::new("/proc").join(pid).exists() {
                    let _ = std::fs::remove_dir_all(entry.path());
                }
            }
        }
        root
    });
    root.join(format!("{BASE_PREFIX}{}", std::process::id()))
}

fn fresh_dirs() -> Dirs {
    let base = base_dir();
    match std::fs::remove_dir_all(&base) {
        Ok(()) => {}
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => panic!("harness: cannot clear {}: {error}", base.display()),
    }
    let src = base.join("src");
    let parent = base.join("parent");
    let live = parent.join("live");
    std::fs::create_dir_all(&src).expect("harness: src");
    std::fs::create_dir_all(parent.join("escape")).expect("harness: escape");
    std::fs::create_dir_all(&live).expect("harness: live");
    std::fs::write(parent.join("outside.txt"), "outside").expect("harness: outside");
    std::fs::write(parent.join("escape/inner.txt"), "inner").expect("harness: inner");
    Dirs {
        base,
        src,
        parent,
        live,
    }
}

/// The components of a fuzzed path as they land on disk: empty and `.` dropped, `..` pops
/// (never above the root). `None` when a component cannot be a file name.
fn disk_components(comps: &[Comp]) -> Option<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for comp in comps.iter().take(4) {
        let text = comp.text();
        match text.as_str() {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            name if name.contains('/') || name.contains('\0') => return None,
            name => out.push(name.to_owned()),
        }
    }
    (!out.is_empty()).then_some(out)
}

/// Creates `root/<components>` as `node`, only through real directories (never through a
/// symlink already placed) and never over an existing entry. Returns whether it was created.
fn create(root: &Path, components: &[String], node: &Node, dirs: &Dirs) -> bool {
    let mut current = root.to_path_buf();
    let (last, ancestors) = components.split_last().expect("non-empty");
    for component in ancestors {
        current.push(component);
        match std::fs::symlink_metadata(&current) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => return false,
            Err(_) => {
                if std::fs::create_dir(&current).is_err() {
                    return false;
                }
            }
        }
    }
    current.push(last);
    if std::fs::symlink_metadata(&current).is_ok() {
        return false;
    }
    match node {
        Node::Dir => std::fs::create_dir(&current).is_ok(),
        Node::File {
            content,
            executable,
        } => {
            std::fs::write(&current, content.bytes()).is_ok()
                && std::fs::set_permissions(
                    &current,
                    std::fs::Permissions::from_mode(if *executable { 0o755 } else { 0o644 }),
                )
                .is_ok()
        }
        Node::Symlink(link) => {
            let target: PathBuf = match link {
                Link::OutsideFile => dirs.parent.join("outside.txt"),
                Link::EscapeDir => dirs.parent.join("escape"),
                Link::Parent => PathBuf::from(".."),
                Link::Source => dirs.src.clone(),
                Link::Name(i) => PathBuf::from(NAMES[*i as usize % NAMES.len()]),
                Link::Raw(s) => {
                    let s = short(s, 12).replace('\0', "");
                    PathBuf::from(if s.is_empty() { "x".to_owned() } else { s })
                }
            };
            symlink(target, &current).is_ok()
        }
    }
}

fn build(root: &Path, entries: &[TreeEntry], limit: usize, dirs: &Dirs) {
    for entry in entries.iter().take(limit) {
        if let Some(components) = disk_components(&entry.path) {
            create(root, &components, &entry.node, dirs);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Observing the directories

#[derive(Debug, Clone, PartialEq, Eq)]
enum Snap {
    File { bytes: Vec<u8>, executable: bool },
    Dir,
    Symlink(PathBuf),
    Other,
}

/// Every entry below `root` (relative `/`-separated path → what it is), never following a
/// symlink.
fn snapshot(root: &Path) -> BTreeMap<String, Snap> {
    let mut out = BTreeMap::new();
    for item in walkdir::WalkDir::new(root).follow_links(false).min_depth(1) {
        let item = item.expect("harness: walking");
        let relative = item
            .path()
            .strip_prefix(root)
            .expect("below root")
            .to_str()
            .expect("harness names are UTF-8")
            .to_owned();
        let file_type = item.file_type();
        let snap = if file_type.is_symlink() {
            Snap::Symlink(std::fs::read_link(item.path()).expect("harness: readlink"))
        } else if file_type.is_dir() {
            Snap::Dir
        } else if file_type.is_file() {
            let meta = item.metadata().expect("harness: metadata");
            Snap::File {
                bytes: std::fs::read(item.path()).expect("harness: read"),
                executable: meta.permissions().mode() & 0o100 != 0,
            }
        } else {
            Snap::Other
        };
        out.insert(relative, snap);
    }
    out
}

/// The engine's own state files in `live/.stoker/`, which it may create and replace.
fn is_engine_state(path: &str) -> bool {
    let Some(rest) = path.strip_prefix(".stoker/") else {
        return path == ".stoker";
    };
    rest == "lock"
        || rest == "manifest.bin"
        || rest == "manifest.json"
        || rest == "journal.json"
        || rest == "reports"
        || rest.starts_with("reports/")
}

const LIVE_PREFIX: &str = "parent/live/";

/// The live directory (paths relative to it) without the engine's state, from a snapshot of
/// `base`.
fn live_view(base: &BTreeMap<String, Snap>) -> BTreeMap<String, Snap> {
    base.range(LIVE_PREFIX.to_owned()..)
        .take_while(|(path, _)| path.starts_with(LIVE_PREFIX))
        .map(|(path, snap)| (path[LIVE_PREFIX.len()..].to_owned(), snap.clone()))
        .filter(|(path, _)| !is_engine_state(path))
        .collect()
}

/// Everything in `base` outside the live directory (the repository, `outside.txt`, `escape/`,
/// and whatever else may appear).
fn outside(base: &BTreeMap<String, Snap>) -> BTreeMap<String, Snap> {
    base.iter()
        .filter(|(path, _)| !path.starts_with(LIVE_PREFIX))
        .map(|(path, snap)| (path.clone(), snap.clone()))
        .collect()
}

fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// Changes as comparable tuples: (path, content id, previous content id).
type Changes = Vec<(String, Option<String>, Option<String>)>;

fn changes(report: &SyncReport) -> [Changes; 3] {
    let list = |files: &[stoker_core::FileChange]| -> Changes {
        files
            .iter()
            .map(|f| {
                (
                    f.path.clone(),
                    f.content_id.map(|id| id.to_string()),
                    f.previous_content_id.map(|id| id.to_string()),
                )
            })
            .collect()
    };
    [
        list(&report.added),
        list(&report.modified),
        list(&report.deleted),
    ]
}

// ---------------------------------------------------------------------------------------------

/// With `STOKER_FUZZ_TRACE` set, prints what each input led to (to see what the fuzzer reaches).
fn trace(message: &str) {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    if *ON.get_or_init(|| std::env::var_os("STOKER_FUZZ_TRACE").is_some()) {
        eprintln!("plan_tree: {message}");
    }
}

/// Protected files placed in every live directory (created unless a fuzzed entry is in the way).
const PROTECTED_FILES: &[&str] = &[
    ".resources/keep",
    "a/.resources/keep",
    "projects/p/.resources/k.json",
];
/// A file in live that no fuzzed path can name (`~` is not in the alphabet; a raw component
/// could still produce it, so the scope decides whether it may be touched).
const MARKER: &str = "~marker/keep.txt";

/// Entries every repository starts with (fuzzed entries come first and win), so that short
/// inputs already map something.
fn baseline_tree() -> Vec<TreeEntry> {
    let file = |path: &[u8], content: Content, executable: bool| TreeEntry {
        path: path.iter().map(|&i| Comp::Name(i)).collect(),
        node: Node::File {
            content,
            executable,
        },
    };
    vec![
        file(&[0, 8], Content::JsonNewline, false),     // a/x.json
        file(&[0, 1, 9], Content::Json, false),         // a/b/project.json
        file(&[0, 2], Content::Templated, true),        // a/ä (executable)
        file(&[10, 0, 9], Content::JsonNewline, false), // projects/a/project.json
        file(&[10, 0, 6, 1], Content::Empty, false),    // projects/a/.git/b
        file(&[1], Content::Templated, false),          // b
    ]
}

/// Entries every live directory starts with (after the fuzzed ones).
fn baseline_live() -> Vec<TreeEntry> {
    let file = |path: &[u8], content: Content| TreeEntry {
        path: path.iter().map(|&i| Comp::Name(i)).collect(),
        node: Node::File {
            content,
            executable: false,
        },
    };
    vec![
        file(&[0, 3], Content::Empty), // a/日本 (an orphan if `a` is managed)
        file(&[10, 1, 9], Content::Json), // projects/b/project.json
        file(&[0, 8], Content::Json),  // a/x.json (differs from the repository's)
    ]
}

fuzz_target!(|input: Input| {
    let dirs = fresh_dirs();
    build(&dirs.src, &input.tree, 8, &dirs);
    build(&dirs.src, &baseline_tree(), usize::MAX, &dirs);
    build(&dirs.live, &input.live, 6, &dirs);
    build(&dirs.live, &baseline_live(), usize::MAX, &dirs);
    if let Some(nested) = &input.nested {
        if nested.link {
            let _ = symlink("a", dirs.src.join(NESTED_LINK));
        }
        if let Some(components) = nested.mapping(&input).and_then(|m| nested.live_file(&m)) {
            let node = Node::File {
                content: Content::Bytes(b"made by a Designer user".to_vec()),
                executable: false,
            };
            create(&dirs.live, &components, &node, &dirs);
        }
    }
    let mut protected = Vec::new();
    for path in PROTECTED_FILES.iter().chain(&[MARKER]) {
        let components: Vec<String> = path.split('/').map(str::to_owned).collect();
        let node = Node::File {
            content: Content::Bytes(format!("keep {path}").into_bytes()),
            executable: false,
        };
        if create(&dirs.live, &components, &node, &dirs) && *path != MARKER {
            protected.push(*path);
        }
    }

    let before = snapshot(&dirs.base);
    let outside_before = outside(&before);
    let live_before = live_view(&before);
    let check_outside = |stage: &str| -> BTreeMap<String, Snap> {
        let now = snapshot(&dirs.base);
        assert_eq!(
            outside(&now),
            outside_before,
            "{stage}: something outside the live directory changed (repository, outside.txt, escape/, or a new path)"
        );
        // The engine's temporaries are files; a directory named `.stoker-tmp-1` can be a
        // mapping destination's component.
        let new_temporaries: Vec<&String> = now
            .iter()
            .filter(|(p, snap)| {
                **snap != Snap::Dir
                    && file_name(p).starts_with(TEMP_PREFIX)
                    && !before.contains_key(*p)
            })
            .map(|(p, _)| p)
            .collect();
        assert!(
            new_temporaries.is_empty(),
            "{stage}: temporaries left behind: {new_temporaries:?}"
        );
        let live_now = live_view(&now);
        for path in &protected {
            assert_eq!(
                live_now.get(*path),
                live_before.get(*path),
                "{stage}: protected {path} changed"
            );
        }
        live_now
    };

    let profile = profile(&input);
    let engine = MergeStrategy::default();
    let request = |dry_run: bool| SyncRequest {
        artifact: Arc::new(LocalSource::new(&dirs.src).artifact(Revision::new("r1"))),
        profile: profile.clone(),
        context: context(),
        live: dirs.live.clone(),
        dry_run,
        changed_paths: None,
        previous: None,
    };

    let dry_report = if input.dry_run_first {
        let report = engine.plan(&request(true)).map(|plan| engine.apply(plan));
        let live_now = check_outside("dry run");
        assert_eq!(live_now, live_before, "a dry run wrote to live");
        match report {
            Ok(Ok(report)) => Some(report),
            Ok(Err(error)) => panic!("dry-run apply failed after its plan succeeded: {error}"),
            Err(_) => None,
        }
    } else {
        None
    };

    let plan = match engine.plan(&request(false)) {
        Ok(plan) => plan,
        Err(error) => {
            trace(&format!("plan failed: {error}"));
            let live_now = check_outside("failed plan");
            assert_eq!(live_now, live_before, "a failed plan wrote to live");
            return;
        }
    };
    let live_now = check_outside("plan");
    assert_eq!(live_now, live_before, "plan wrote to live");

    let scope = plan.desired().scope.clone();
    let held = held_paths(plan.desired().mappings.as_slice());
    let desired: BTreeMap<String, (String, bool, bool)> = plan
        .desired()
        .files
        .iter()
        .map(|(path, file)| {
            (
                path.clone(),
                (
                    file.source.clone(),
                    file.executable,
                    file.transform.is_identity(),
                ),
            )
        })
        .collect();

    trace(&format!(
        "plan ok: {} desired, {} writes, {} deletes",
        desired.len(),
        plan.writes().len(),
        plan.deletes().count()
    ));
    let report = match engine.apply(plan) {
        Ok(report) => report,
        Err(error) => {
            check_outside("failed apply");
            panic!("apply failed after its plan succeeded (a partial sync): {error}");
        }
    };
    let live_after = check_outside("apply");

    if let Some(dry) = &dry_report {
        assert_eq!(
            changes(dry),
            changes(&report),
            "the dry run reported something else"
        );
        assert_eq!(dry.unchanged, report.unchanged);
    }

    // Untouchable entries are as they were.
    for (path, before) in &live_before {
        if *before == Snap::Dir || scope.may_touch(path) {
            continue;
        }
        assert_eq!(
            live_after.get(path),
            Some(before),
            "{path} may not be touched (unmanaged, protected or excluded) but changed"
        );
    }
    // What a skipped mapping's destination holds is left as it is (written from the rule, not
    // from the engine's scope).
    for (path, before) in &live_before {
        if *before != Snap::Dir && held.iter().any(|hold| hold.holds(path)) {
            assert_eq!(
                live_after.get(path),
                Some(before),
                "{path} is below a skipped mapping's destination but changed"
            );
        }
    }
    // Desired files are in place.
    for (path, (source, executable, identity)) in &desired {
        match live_after.get(path) {
            Some(Snap::File {
                bytes,
                executable: live_exec,
            }) => {
                assert_eq!(live_exec, executable, "{path}: executable bit");
                if *identity {
                    let source_bytes = std::fs::read(dirs.src.join(source)).expect("source");
                    assert_eq!(
                        bytes, &source_bytes,
                        "{path}: content differs from {source}"
                    );
                }
            }
            other => panic!("desired {path} is {other:?} after apply"),
        }
    }
    // Orphans are gone, except, in a data directory that is not adopted, what only a mapping to
    // `.` manages: Stoker did not write it (every live directory here is new), so it stays.
    for (path, snap) in &live_after {
        if *snap == Snap::Dir || desired.contains_key(path) || !scope.may_touch(path) {
            continue;
        }
        if !input.adopt && scope.whole_directory_governs(path) {
            assert_eq!(
                live_before.get(path),
                Some(snap),
                "{path}: not adopted, not Stoker's, but changed"
            );
            continue;
        }
        panic!("{path} ({snap:?}) is managed, not desired and still there");
    }

    // A second sync changes nothing.
    let second = engine.plan(&request(false)).expect("second plan");
    assert!(
        second.is_noop(),
        "second plan is not a no-op: writes {:?}, deletes {:?}",
        second.writes().iter().map(|w| &w.path).collect::<Vec<_>>(),
        second.deletes().map(|d| &d.path).collect::<Vec<_>>()
    );
    let report2 = engine.apply(second).expect("second apply");
    assert_eq!(
        report2.changed(),
        0,
        "second sync changed {:?}",
        changes(&report2)
    );
    assert_eq!(report2.unchanged as usize, desired.len());
    let live_now = check_outside("second sync");
    assert_eq!(live_now, live_after, "the second sync changed live");
});
