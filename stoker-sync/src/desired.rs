//! The desired set: what the live directory should hold, computed from the artifact's listing
//! and the profile's mappings. Pure: reads no file content.

use std::collections::{BTreeMap, HashMap};

use globset::GlobSet;
use stoker_core::profile::{PROTECTED_PATTERNS, build_globset};
use stoker_core::relpath::{self, is_within, join};
use stoker_core::{ContentId, EntryKind, Listing, MappingType, Profile, TemplateContext, template};

use crate::error::{Error, Result};
use crate::scope::{ManagedRoot, RootKind, Scope};
use crate::warning::Skipped;

/// How a desired file's content is made from its source file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Transform {
    /// Render the content as a template.
    pub template: bool,
    /// Rendered `(dot path, value)` pairs to set, in order.
    pub patches: Vec<(String, String)>,
}

impl Transform {
    /// True when the content is the source's bytes unchanged.
    pub fn is_identity(&self) -> bool {
        !self.template && self.patches.is_empty()
    }
}

/// One file the live directory should hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredFile {
    /// Which mapping produced it (the last one, when several map to the same destination).
    pub mapping: usize,
    /// Path in the artifact.
    pub source: String,
    /// Executable bit.
    pub executable: bool,
    /// Size of the source file.
    pub source_size: u64,
    /// The source's content id, when the artifact knows it for free.
    pub source_id: Option<ContentId>,
    /// Template rendering and patches.
    pub transform: Transform,
}

impl DesiredFile {
    /// The content id of the desired content, when known without reading anything.
    pub fn known_id(&self) -> Option<ContentId> {
        if self.transform.is_identity() {
            self.source_id
        } else {
            None
        }
    }
}

/// What the profile asks for at one revision.
#[derive(Debug, Clone)]
pub struct DesiredSet {
    /// Destination path → file, sorted.
    pub files: BTreeMap<String, DesiredFile>,
    /// What may be touched.
    pub scope: Scope,
    /// Skipped entries and mappings, for the report.
    pub warnings: Vec<Skipped>,
    /// Every mapping of the profile as rendered and resolved, in order.
    pub mappings: Vec<ResolvedMapping>,
}

/// A mapping with its paths rendered and normalised, and its type as resolved against the
/// artifact (`None`: the mapping was skipped: its source is missing or not a file or directory,
/// or its destination is protected).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ResolvedMapping {
    /// Rendered, normalised source (`""`: the artifact's root).
    pub source: String,
    /// Rendered, normalised destination (`""`: the live root).
    pub destination: String,
    /// `dir` or `file`; `None` when skipped.
    pub kind: Option<MappingType>,
}

impl ResolvedMapping {
    /// The destination the source file at `source_path` maps to, when this mapping maps it.
    pub fn destination_of(&self, source_path: &str) -> Option<String> {
        match self.kind? {
            MappingType::File => (source_path == self.source).then(|| self.destination.clone()),
            MappingType::Dir => {
                let relative = strictly_below(source_path, &self.source)?;
                Some(join(&self.destination, relative))
            }
        }
    }

    /// The source path that maps to `destination`, when this mapping maps anything there, and
    /// the path relative to the mapping (`""` for a file mapping; what patch globs match).
    pub fn source_of<'a>(&self, destination: &'a str) -> Option<(String, &'a str)> {
        match self.kind? {
            MappingType::File => {
                (destination == self.destination).then(|| (self.source.clone(), ""))
            }
            MappingType::Dir => {
                let relative = strictly_below(destination, &self.destination)?;
                Some((join(&self.source, relative), relative))
            }
        }
    }
}

/// The rest of `path` below `dir` (`""` is the root), when `path` is strictly below it.
fn strictly_below<'a>(path: &'a str, dir: &str) -> Option<&'a str> {
    if dir.is_empty() {
        return (!path.is_empty()).then_some(path);
    }
    path.strip_prefix(dir)?
        .strip_prefix('/')
        .filter(|rest| !rest.is_empty())
}

/// The effective template context: the profile's vars overlaid by the caller's (a `--var` on
/// the command line wins over the profile).
pub fn effective_context(profile: &Profile, context: &TemplateContext) -> TemplateContext {
    let mut effective = context.clone();
    let mut vars = profile.vars.clone();
    vars.extend(context.vars.iter().map(|(k, v)| (k.clone(), v.clone())));
    effective.vars = vars;
    effective
}

/// The protected-path matcher (`**/.resources/**`).
pub fn protected_globs() -> GlobSet {
    let patterns: Vec<String> = PROTECTED_PATTERNS.iter().map(|p| (*p).to_owned()).collect();
    // The built-in patterns are valid globs; an empty set is the safe fallback never reached.
    build_globset(&patterns).unwrap_or_else(|_| GlobSet::empty())
}

/// Computes the desired set (DESIGN section 3, "Desired set" and "Managed roots").
pub fn desired_set(
    listing: &Listing,
    profile: &Profile,
    context: &TemplateContext,
) -> Result<DesiredSet> {
    let context = effective_context(profile, context);
    let excludes = profile.excludes()?;
    let protected = protected_globs();
    let mut builder = Builder {
        listing,
        context: &context,
        // A scope without roots, only to ask "protected?" / "excluded?" while building.
        rules: Scope::new(Vec::new(), Vec::new(), excludes.clone(), protected.clone()),
        roots: Vec::new(),
        files: BTreeMap::new(),
        warnings: listing
            .warnings
            .iter()
            .map(|note| Skipped::Listing(note.clone()))
            .collect(),
    };
    let mut resolved: Vec<ResolvedMapping> = Vec::with_capacity(profile.mappings.len());
    for (index, mapping) in profile.mappings.iter().enumerate() {
        let rendered = render_mapping(index, mapping, &context)?;
        resolved.push(ResolvedMapping {
            source: rendered.source.clone(),
            destination: rendered.destination.clone(),
            kind: None,
        });
        let one = OneMapping {
            index,
            mapping,
            rendered: &rendered,
        };
        if let Some(kind) = builder.add_mapping(&one)?
            && let Some(last) = resolved.last_mut()
        {
            last.kind = Some(kind);
        }
    }
    let Builder {
        roots,
        mut files,
        warnings,
        ..
    } = builder;
    let scope = Scope::new(roots, held_destinations(&resolved), excludes, protected);
    if !scope.held().is_empty() {
        // What an enclosing mapping would put below a skipped mapping's destination stays out:
        // that destination is left as it is.
        files.retain(|path, _| scope.is_managed(path));
    }
    check_conflicts(&files)?;
    Ok(DesiredSet {
        files,
        scope,
        warnings,
        mappings: resolved,
    })
}

/// The desired set as it is built, mapping after mapping.
struct Builder<'a> {
    listing: &'a Listing,
    context: &'a TemplateContext,
    /// Protected and excluded paths (no roots).
    rules: Scope,
    roots: Vec<ManagedRoot>,
    files: BTreeMap<String, DesiredFile>,
    warnings: Vec<Skipped>,
}

/// One mapping of the profile, rendered.
struct OneMapping<'a> {
    index: usize,
    mapping: &'a stoker_core::Mapping,
    rendered: &'a Rendered,
}

impl OneMapping<'_> {
    /// An error naming the mapping.
    fn error(&self, message: String) -> Error {
        Error::Mapping {
            index: self.index,
            source_path: self.rendered.source_raw.clone(),
            destination: self.rendered.destination_raw.clone(),
            message,
        }
    }
}

impl Builder<'_> {
    /// Adds what one mapping maps; its type, or `None` when it is skipped (with a warning).
    fn add_mapping(&mut self, one: &OneMapping<'_>) -> Result<Option<MappingType>> {
        let Some(kind) = self.mapping_type(one)? else {
            return Ok(None);
        };
        let destination = &one.rendered.destination;
        if self.rules.is_protected(destination) && !destination.is_empty() {
            self.warnings.push(Skipped::MappingDestinationProtected {
                index: one.index,
                destination: destination.clone(),
            });
            return Ok(None);
        }
        let mapping_error = |message| one.error(message);
        let rules = compile_patches(one.index, one.mapping, kind, self.context, &mapping_error)?;
        let source = &one.rendered.source;
        match kind {
            MappingType::File => {
                let entry = self
                    .listing
                    .get(source)
                    .ok_or_else(|| one.error("source vanished".into()))?;
                self.add_file(one, &rules, source, "", entry)?;
            }
            MappingType::Dir => self.add_dir(one, &rules)?,
        }
        self.roots.push(ManagedRoot {
            path: destination.clone(),
            kind: match kind {
                MappingType::File => RootKind::File,
                MappingType::Dir => RootKind::Dir,
            },
        });
        Ok(Some(kind))
    }

    /// The mapping's type, inferred from the artifact and checked against the one given;
    /// `None` (with a warning) when a mapping that is not required has nothing to map.
    fn mapping_type(&mut self, one: &OneMapping<'_>) -> Result<Option<MappingType>> {
        let Rendered {
            source,
            destination,
            ..
        } = one.rendered;
        let source_entry = if source.is_empty() {
            None
        } else {
            self.listing.get(source)
        };
        let has_children = self.listing.below(source).next().is_some();
        let inferred = match source_entry {
            Some(entry) if entry.kind.is_regular() => Some(MappingType::File),
            Some(entry) => {
                // Nothing can be mapped from it: for a required mapping that is as bad as a
                // missing source.
                if one.mapping.required {
                    return Err(one.error(format!(
                        "source {source:?} is a {} in the repository, never followed",
                        kind_name(entry.kind)
                    )));
                }
                self.warnings.push(Skipped::MappingSourceNotFollowed {
                    index: one.index,
                    source: source.clone(),
                    kind: kind_name(entry.kind).to_owned(),
                    destination: destination.clone(),
                });
                return Ok(None);
            }
            None if has_children => Some(MappingType::Dir),
            None => None,
        };
        let kind = match (one.mapping.kind, inferred) {
            (_, None) => {
                if one.mapping.required {
                    return Err(one.error(format!(
                        "required source {source:?} does not exist at revision {}",
                        self.context.commit.as_deref().unwrap_or("(unknown)")
                    )));
                }
                self.warnings.push(Skipped::MappingSourceMissing {
                    index: one.index,
                    source: source.clone(),
                    destination: destination.clone(),
                });
                return Ok(None);
            }
            (Some(given), Some(found)) if given != found => {
                return Err(one.error(format!(
                    "type is {} but the source is a {}",
                    type_name(given),
                    type_name(found)
                )));
            }
            (_, Some(found)) => found,
        };
        if kind == MappingType::File && destination.is_empty() {
            return Err(one.error(
                "a file mapping needs a destination file path, not the live root".to_owned(),
            ));
        }
        Ok(Some(kind))
    }

    /// Maps every file below a directory mapping's source.
    fn add_dir(&mut self, one: &OneMapping<'_>, rules: &PatchRules) -> Result<()> {
        let source = &one.rendered.source;
        for entry in self.listing.below(source) {
            // Entry paths come from the source: a hostile archive or bucket can list `../x` or
            // `/x`, which would land outside the live directory. Only normalised relative paths
            // are mapped.
            if !is_normalized(&entry.path) {
                self.warnings.push(Skipped::NotNormalized {
                    path: entry.path.clone(),
                });
                continue;
            }
            let relative = if source.is_empty() {
                entry.path.as_str()
            } else {
                &entry.path[source.len() + 1..]
            };
            if !entry.kind.is_regular() {
                self.warnings.push(Skipped::NotFollowed {
                    path: entry.path.clone(),
                    kind: kind_name(entry.kind).to_owned(),
                });
                continue;
            }
            self.add_file(one, rules, &entry.path, relative, entry)?;
        }
        Ok(())
    }

    /// Maps one source file (at `relative` below the destination); a warning when it is
    /// skipped for a reason the user must hear.
    fn add_file(
        &mut self,
        one: &OneMapping<'_>,
        rules: &PatchRules,
        source_path: &str,
        relative: &str,
        entry: &stoker_core::Entry,
    ) -> Result<()> {
        let dest = join(&one.rendered.destination, relative);
        if dest.len() > relpath::MAX_PATH_BYTES {
            return Err(one.error(format!(
                "destination path for {source_path:?} is longer than 4096 bytes"
            )));
        }
        if let Some(name) = relpath::too_long_component(relative) {
            return Err(one.error(format!(
                "destination path for {source_path:?} has a name of {} bytes; file systems allow {}",
                name.len(),
                relpath::MAX_NAME_BYTES
            )));
        }
        if crate::scope::file_name(&dest).starts_with(crate::scope::TEMP_PREFIX)
            && !self.rules.is_excluded(&dest)
        {
            // The name would be taken for a temporary Stoker left behind, and removed.
            self.warnings.push(Skipped::ReservedName {
                path: source_path.to_owned(),
            });
            return Ok(());
        }
        if self.rules.is_protected_or_excluded(&dest) {
            return Ok(());
        }
        let file = desired_file(one.index, one.mapping, rules, &dest, relative, entry);
        self.files.insert(dest, file);
        Ok(())
    }
}

/// The destinations of the skipped mappings (see [`Scope`]: each is left as it is).
pub(crate) fn held_destinations(mappings: &[ResolvedMapping]) -> Vec<String> {
    mappings
        .iter()
        .filter(|mapping| mapping.kind.is_none())
        .map(|mapping| mapping.destination.clone())
        .collect()
}

/// A mapping's paths as written (rendered) and normalised.
pub(crate) struct Rendered {
    pub source_raw: String,
    pub destination_raw: String,
    pub source: String,
    pub destination: String,
}

/// Renders and normalises a mapping's source and destination.
pub(crate) fn render_mapping(
    index: usize,
    mapping: &stoker_core::Mapping,
    context: &TemplateContext,
) -> Result<Rendered> {
    let source_raw = template::render(
        &format!("mappings[{index}].source"),
        &mapping.source,
        context,
    )?;
    let destination_raw = template::render(
        &format!("mappings[{index}].destination"),
        &mapping.destination,
        context,
    )?;
    // A template that renders to nothing (a variable set to "") is a mistake, not a request
    // for the root: as a destination it would manage, and clean, the whole live directory.
    // The root is written `.`.
    for (field, rendered) in [("source", &source_raw), ("destination", &destination_raw)] {
        if rendered.is_empty() {
            return Err(Error::Mapping {
                index,
                source_path: source_raw.clone(),
                destination: destination_raw.clone(),
                message: format!("{field} renders to an empty path (write \".\" for the root)"),
            });
        }
    }
    let source = relpath::normalize(&source_raw, &format!("mappings[{index}].source"))?;
    let destination =
        relpath::normalize(&destination_raw, &format!("mappings[{index}].destination"))?;
    if let Some(name) = relpath::too_long_component(&destination) {
        return Err(Error::Mapping {
            index,
            source_path: source_raw,
            destination: destination_raw,
            message: format!(
                "destination has a name of {} bytes; file systems allow {}",
                name.len(),
                relpath::MAX_NAME_BYTES
            ),
        });
    }
    Ok(Rendered {
        source_raw,
        destination_raw,
        source,
        destination,
    })
}

/// The desired file mapping `index` makes at `dest` from the source `entry` (`relative`: its path
/// below the mapping's source, `""` for a file mapping).
pub(crate) fn desired_file(
    index: usize,
    mapping: &stoker_core::Mapping,
    patch_rules: &PatchRules,
    dest: &str,
    relative: &str,
    entry: &stoker_core::Entry,
) -> DesiredFile {
    let patch_target = if relative.is_empty() {
        crate::scope::file_name(dest)
    } else {
        relative
    };
    let patches: Vec<(String, String)> = patch_rules
        .iter()
        .filter(|(target, _)| match target {
            PatchTarget::Glob(glob) => glob.is_match(patch_target),
            PatchTarget::MappedFile => relative.is_empty(),
        })
        .flat_map(|(_, sets)| sets.iter().cloned())
        .collect();
    DesiredFile {
        mapping: index,
        source: entry.path.clone(),
        executable: entry.kind == EntryKind::Executable,
        source_size: entry.size,
        source_id: entry.content_id,
        transform: Transform {
            template: mapping.template,
            patches,
        },
    }
}

/// The files a patch applies to.
pub(crate) enum PatchTarget {
    /// Those its `file` glob matches (relative to the mapping's destination; a file mapping's
    /// file name).
    Glob(globset::GlobMatcher),
    /// No `file`: the one file a file mapping maps.
    MappedFile,
}

/// Each patch's target and rendered `(dot path, value)` pairs.
pub(crate) type PatchRules = Vec<(PatchTarget, Vec<(String, String)>)>;

/// Compiles the patches of mapping `index`, whose type is `kind`: a patch without `file` is
/// only meaningful on a file mapping.
pub(crate) fn compile_patches(
    index: usize,
    mapping: &stoker_core::Mapping,
    kind: MappingType,
    context: &TemplateContext,
    mapping_error: &dyn Fn(String) -> Error,
) -> Result<PatchRules> {
    let mut rules = Vec::with_capacity(mapping.patches.len());
    for (patch_index, patch) in mapping.patches.iter().enumerate() {
        let target = match (&patch.file, kind) {
            (Some(file), _) => stoker_core::profile::compile_glob(file)
                .map(|glob| PatchTarget::Glob(glob.compile_matcher()))
                .map_err(|message| {
                    mapping_error(format!("patches[{patch_index}].file {file:?}: {message}"))
                })?,
            (None, MappingType::File) => PatchTarget::MappedFile,
            (None, MappingType::Dir) => {
                return Err(mapping_error(format!(
                    "patches[{patch_index}] names no file: {}",
                    stoker_core::profile::PATCH_WITHOUT_FILE_ON_DIR
                )));
            }
        };
        let mut sets = Vec::with_capacity(patch.set.len());
        for (path, value) in &patch.set {
            let rendered = template::render(
                &format!("mappings[{index}].patches[{patch_index}].set.{path}"),
                value,
                context,
            )?;
            sets.push((path.clone(), rendered));
        }
        rules.push((target, sets));
    }
    Ok(rules)
}

/// A desired file cannot also be a directory of another desired file.
fn check_conflicts(files: &BTreeMap<String, DesiredFile>) -> Result<()> {
    let mut directories: HashMap<&str, (&str, usize)> = HashMap::new();
    for (path, file) in files {
        let mut current = path.as_str();
        while let Some(parent) = relpath::parent(current) {
            if parent.is_empty() {
                break;
            }
            directories
                .entry(parent)
                .or_insert((path.as_str(), file.mapping));
            current = parent;
        }
    }
    for (path, file) in files {
        if let Some((below, below_mapping)) = directories.get(path.as_str()) {
            debug_assert!(is_within(below, path));
            return Err(Error::Conflict {
                path: path.clone(),
                mapping: file.mapping,
                other: (*below).to_owned(),
                other_mapping: *below_mapping,
            });
        }
    }
    Ok(())
}

/// True when `path` is relative, without `..`, `.` or empty components (what
/// [`relpath::normalize`] returns unchanged).
fn is_normalized(path: &str) -> bool {
    relpath::normalize(path, "artifact entry").is_ok_and(|normalized| normalized == path)
}

fn kind_name(kind: EntryKind) -> &'static str {
    match kind {
        EntryKind::File | EntryKind::Executable => "file",
        EntryKind::Symlink => "symlink",
        EntryKind::Other => "special entry",
    }
}

fn type_name(kind: MappingType) -> &'static str {
    match kind {
        MappingType::Dir => "dir",
        MappingType::File => "file",
    }
}

/// Ignition projects among desired paths: `projects/<name>/project.json`.
pub fn projects<'a>(paths: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut names: Vec<String> = paths
        .into_iter()
        .filter_map(|path| {
            let rest = path.strip_prefix("projects/")?;
            let name = rest.strip_suffix("/project.json")?;
            (!name.contains('/')).then(|| name.to_owned())
        })
        .collect();
    names.sort();
    names.dedup();
    names
}
