//! Sync profiles as users write them in a `GatewaySync` (`spec.sync`), and their resolution.

use std::collections::BTreeMap;

use globset::{Glob, GlobSet, GlobSetBuilder};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Exclude patterns that always apply, before any the user gives: Git's own directory and the
/// `.gitkeep` placeholders that only exist to keep empty directories in Git. A user's
/// `excludePatterns` list adds to them and cannot remove them, as in stoker-operator v0.5.1.
pub const DEFAULT_EXCLUDES: &[&str] = &["**/.git/**", "**/.gitkeep"];

/// Paths the engine never writes or deletes, whatever the mappings say (the engine's own
/// `.stoker/` directory at the live root is protected too).
pub const PROTECTED_PATTERNS: &[&str] = &["**/.resources/**"];

/// `spec.sync` of a `GatewaySync`: defaults and named profiles.
///
/// ```
/// use stoker_core::SyncSpec;
/// let spec: SyncSpec = serde_json::from_str(r#"{
///   "defaults": {"vars": {"site": "1"}, "excludePatterns": ["**/*.bak"]},
///   "profiles": {"standard": {"mappings": [{"source": "projects", "destination": "projects"}],
///                             "vars": {"site": "2"}}}
/// }"#).unwrap();
/// let profile = spec.resolve("standard").unwrap();
/// assert_eq!(profile.vars["site"], "2");
/// // `.git` and `.gitkeep` stay excluded: the user's patterns add to them.
/// assert_eq!(profile.exclude_patterns, ["**/.git/**", "**/.gitkeep", "**/*.bak"]);
/// ```
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(transform = crate::schema::require_profiles))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SyncSpec {
    /// Settings every profile inherits unless it overrides them.
    #[serde(default)]
    pub defaults: SyncDefaults,
    /// Named profiles; a gateway picks one with its `stoker.io/profile` annotation (a pod
    /// without it uses the only profile, or the one named `default`). At least one is required.
    #[serde(default)]
    #[cfg_attr(
        feature = "schema",
        schemars(
            skip_serializing_if = "BTreeMap::is_empty",
            extend("minProperties" = 1)
        )
    )]
    pub profiles: BTreeMap<String, ProfileSpec>,
}

/// `spec.sync.defaults`.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SyncDefaults {
    /// Doublestar globs matched against destination paths; matching files are neither written
    /// nor deleted. `**/.git/**` and `**/.gitkeep` are always excluded (`DEFAULT_EXCLUDES`),
    /// whether or not this list is given or names them: these patterns add to them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(extend("default" = ["**/.git/**", "**/.gitkeep"])))]
    pub exclude_patterns: Option<Vec<String>>,
    /// Template variables every profile inherits (`{{.Vars.key}}`); a profile's own `vars`
    /// win per key. Keys must be identifiers (`[A-Za-z_][A-Za-z0-9_]*`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub vars: BTreeMap<String, String>,
    /// How often the agent re-checks and re-applies the profile, in seconds: 5 to 3600
    /// (default 30).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "schema",
        schemars(range(min = 5, max = 3600), extend("default" = 30))
    )]
    pub sync_period: Option<u32>,
    /// What the agent does when Ignition Designer sessions are open: `proceed` (log a warning
    /// and sync), `wait` (retry until they close, up to 5 minutes) or `fail` (refuse the sync).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(extend("default" = "proceed")))]
    pub designer_session_policy: Option<DesignerSessionPolicy>,
    /// Compute and report what would change, write nothing (default false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dry_run: Option<bool>,
    /// Stop syncing every profile that does not override it (default false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused: Option<bool>,
    /// Let a mapping whose destination is `.` (the whole data directory) delete files Stoker
    /// did not write (default false). Without it, such files (the gateway's own `db/`, `logs/`,
    /// files put there by hand) are left in place and listed in a warning; Stoker deletes only
    /// the files it wrote itself. Mappings to other destinations are not affected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adopt: Option<bool>,
}

/// A sync profile (`spec.sync.profiles.<name>`): ordered mappings, plus overrides of
/// `spec.sync.defaults`.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProfileSpec {
    /// Ordered source → destination mappings; a later mapping's file overlays an earlier one
    /// at the same destination.
    #[serde(default)]
    pub mappings: Vec<Mapping>,
    /// Extra exclude globs (doublestar, matched against destination paths), added to
    /// `defaults.excludePatterns`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude_patterns: Vec<String>,
    /// Template variables (`{{.Vars.key}}`); a key here wins over the same key in
    /// `defaults.vars`. Keys must be identifiers (`[A-Za-z_][A-Za-z0-9_]*`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub vars: BTreeMap<String, String>,
    /// Overrides `defaults.syncPeriod` (seconds, 5 to 3600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(range(min = 5, max = 3600)))]
    pub sync_period: Option<u32>,
    /// Overrides `defaults.dryRun`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dry_run: Option<bool>,
    /// Overrides `defaults.designerSessionPolicy` (`proceed`, `wait` or `fail`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub designer_session_policy: Option<DesignerSessionPolicy>,
    /// Overrides `defaults.paused`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused: Option<bool>,
    /// Overrides `defaults.adopt`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adopt: Option<bool>,
}

/// One source → destination mapping.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Mapping {
    /// Repository-relative path to copy from; a template (`services/{{.GatewayName}}/projects`).
    /// Absolute paths and `..` are refused.
    #[cfg_attr(feature = "schema", schemars(length(min = 1)))]
    pub source: String,
    /// Path relative to the gateway data directory to copy to; a template. A `dir` destination
    /// is managed whole (files not in the source are deleted); a `file` destination manages
    /// that one file. Absolute paths and `..` are refused.
    #[cfg_attr(feature = "schema", schemars(length(min = 1)))]
    pub destination: String,
    /// `dir` or `file`. When omitted it is inferred from the source; when given, a source of the
    /// other kind is an error.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<MappingType>,
    /// Fail the sync when the source does not exist at the commit (otherwise the mapping is
    /// skipped).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub required: bool,
    /// Render file contents as templates (`{{.GatewayName}}`, `{{.Vars.key}}`, ...); binary files
    /// are an error.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub template: bool,
    /// JSON field patches applied to the mapped files after copying (and templating).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub patches: Vec<Patch>,
}

/// The kind of a mapping.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
// No type-level description in the schema: the fields' own descriptions are the useful ones.
#[cfg_attr(feature = "schema", schemars(description = ""))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MappingType {
    /// Every file below `source` goes to `destination/<rest>`.
    Dir,
    /// One file.
    File,
}

/// JSON fields to set in the files a glob matches.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Patch {
    /// Glob relative to the mapping's destination (`config.json`, `**/resource.json`); for a
    /// `file` mapping, matched against the file's name. Omitted: the mapped file itself, which
    /// only a `file` mapping has (as in stoker-operator v0.5.1); a `dir` mapping must name
    /// its files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(length(min = 1)))]
    pub file: Option<String>,
    /// Path → value template (`connection.host: "db-{{.Vars.site}}"`, `items.0.name: x`), in
    /// stoker-operator v0.5.1's (sjson) syntax: `-1` appends to an array, `\.` is a dot inside
    /// a key. Values that read as JSON literals (numbers, `true`, `false`) are set as such; the
    /// file is edited in place, only the bytes of the values set change.
    #[serde(default)]
    pub set: BTreeMap<String, String>,
}

/// Why a patch without `file` on a `dir` mapping is refused: only a `file` mapping has a
/// file of its own to patch.
pub const PATCH_WITHOUT_FILE_ON_DIR: &str =
    "only a file mapping may omit it (its mapped file is patched); name the files of a dir mapping";

/// What an agent does when Ignition Designer sessions are open.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(description = ""))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DesignerSessionPolicy {
    /// Log a warning and sync.
    #[default]
    Proceed,
    /// Retry until sessions close (up to 5 minutes).
    Wait,
    /// Refuse the sync and report it.
    Fail,
}

/// A profile with the defaults merged in: what the engine and agent use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// The profile's name.
    pub name: String,
    /// Ordered mappings.
    pub mappings: Vec<Mapping>,
    /// [`DEFAULT_EXCLUDES`], then the defaults' excludes, then the profile's (each pattern once).
    pub exclude_patterns: Vec<String>,
    /// Defaults' vars overlaid with the profile's.
    pub vars: BTreeMap<String, String>,
    /// Resync interval in seconds (default 30).
    pub sync_period: u32,
    /// Designer session policy (default `proceed`).
    pub designer_session_policy: DesignerSessionPolicy,
    /// Dry run (default false).
    pub dry_run: bool,
    /// Paused (default false).
    pub paused: bool,
    /// A mapping to `.` may delete files Stoker did not write (default false; see
    /// [`SyncDefaults::adopt`]).
    pub adopt: bool,
}

/// The default resync interval, in seconds.
pub const DEFAULT_SYNC_PERIOD: u32 = 30;

impl SyncSpec {
    /// Resolves the profile `name`: defaults merged with the profile, profile wins per key,
    /// excludes concatenated after [`DEFAULT_EXCLUDES`]. Checks variable names and exclude globs.
    pub fn resolve(&self, name: &str) -> Result<Profile> {
        let spec = self.profiles.get(name).ok_or_else(|| Error::Profile {
            profile: name.to_owned(),
            message: format!(
                "no such profile (defined: {})",
                if self.profiles.is_empty() {
                    "none".to_owned()
                } else {
                    self.profiles.keys().cloned().collect::<Vec<_>>().join(", ")
                }
            ),
        })?;
        let defaults = &self.defaults;
        let exclude_patterns = merge_excludes(
            defaults.exclude_patterns.iter().flatten(),
            &spec.exclude_patterns,
        );
        let mut vars = defaults.vars.clone();
        vars.extend(spec.vars.iter().map(|(k, v)| (k.clone(), v.clone())));
        let profile = Profile {
            name: name.to_owned(),
            mappings: spec.mappings.clone(),
            exclude_patterns,
            vars,
            sync_period: spec
                .sync_period
                .or(defaults.sync_period)
                .unwrap_or(DEFAULT_SYNC_PERIOD),
            designer_session_policy: spec
                .designer_session_policy
                .or(defaults.designer_session_policy)
                .unwrap_or_default(),
            dry_run: spec.dry_run.or(defaults.dry_run).unwrap_or(false),
            paused: spec.paused.or(defaults.paused).unwrap_or(false),
            adopt: spec.adopt.or(defaults.adopt).unwrap_or(false),
        };
        profile.validate()?;
        Ok(profile)
    }
}

/// [`DEFAULT_EXCLUDES`] followed by the defaults' and the profile's patterns, each pattern
/// once: the built-in ones always apply, and a user list that repeats them (the CRD's default
/// value does) does not list them twice.
fn merge_excludes<'a>(
    defaults: impl IntoIterator<Item = &'a String>,
    profile: &'a [String],
) -> Vec<String> {
    let mut merged: Vec<String> = DEFAULT_EXCLUDES.iter().map(|p| (*p).to_owned()).collect();
    for pattern in defaults.into_iter().chain(profile) {
        if !merged.contains(pattern) {
            merged.push(pattern.clone());
        }
    }
    merged
}

impl Profile {
    /// A profile with these mappings and the built-in defaults for everything else.
    pub fn new(name: impl Into<String>, mappings: Vec<Mapping>) -> Self {
        Profile {
            name: name.into(),
            mappings,
            exclude_patterns: DEFAULT_EXCLUDES.iter().map(|p| (*p).to_owned()).collect(),
            vars: BTreeMap::new(),
            sync_period: DEFAULT_SYNC_PERIOD,
            designer_session_policy: DesignerSessionPolicy::default(),
            dry_run: false,
            paused: false,
            adopt: false,
        }
    }

    /// Checks what can be checked without an artifact: variable names are identifiers,
    /// excludes and patch globs compile, mappings have a source and a destination.
    pub fn validate(&self) -> Result<()> {
        let fail = |message: String| Error::Profile {
            profile: self.name.clone(),
            message,
        };
        for key in self.vars.keys() {
            if !is_identifier(key) {
                return Err(fail(format!(
                    "variable name {key:?} is not an identifier ([A-Za-z_][A-Za-z0-9_]*), so {{{{.Vars.{key}}}}} could not read it"
                )));
            }
        }
        self.excludes()?;
        for (index, mapping) in self.mappings.iter().enumerate() {
            if mapping.source.trim().is_empty() {
                return Err(fail(format!("mappings[{index}].source is empty")));
            }
            if mapping.destination.trim().is_empty() {
                return Err(fail(format!("mappings[{index}].destination is empty")));
            }
            for (patch_index, patch) in mapping.patches.iter().enumerate() {
                if mapping.kind == Some(MappingType::Dir) && patch.file.is_none() {
                    return Err(fail(format!(
                        "mappings[{index}].patches[{patch_index}] names no file: {PATCH_WITHOUT_FILE_ON_DIR}"
                    )));
                }
                let Some(file) = &patch.file else { continue };
                compile_glob(file).map_err(|message| {
                    fail(format!(
                        "mappings[{index}].patches[{patch_index}].file {file:?}: {message}"
                    ))
                })?;
            }
        }
        Ok(())
    }

    /// The exclude patterns compiled into one matcher (see [`build_exclude_set`]: a pattern
    /// that matches a directory excludes everything below it).
    pub fn excludes(&self) -> Result<GlobSet> {
        build_exclude_set(&self.exclude_patterns).map_err(|(pattern, message)| Error::Profile {
            profile: self.name.clone(),
            message: format!("exclude pattern {pattern:?}: {message}"),
        })
    }
}

/// True for `[A-Za-z_][A-Za-z0-9_]*`, the keys Go templates can read with `.Vars.key`.
pub fn is_identifier(key: &str) -> bool {
    let mut chars = key.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Compiles one doublestar glob the way Stoker matches paths: `*` stays within a path
/// component, `**` crosses components, and a pattern ending in `/` (`**/.git/`) matches
/// everything below that directory.
pub fn compile_glob(pattern: &str) -> std::result::Result<Glob, String> {
    let normalized = match pattern.strip_suffix('/') {
        Some(dir) => format!("{dir}/**"),
        None => pattern.to_owned(),
    };
    globset::GlobBuilder::new(&normalized)
        .literal_separator(true)
        .backslash_escape(true)
        .build()
        .map_err(|error| error.kind().to_string())
}

/// Compiles exclude patterns into one set, with directory semantics: a pattern that matches a
/// directory excludes the directory and everything below it, as in `.gitignore` and as
/// stoker-operator v0.5.1 users expect (`**/views` keeps a Designer user's `views/local/x.json`,
/// not only a file named `views`). A path is therefore excluded when the pattern matches the path
/// itself or any directory above it, which is what the pattern followed by `/**` matches; both
/// go into the set, so a path is still matched in one pass. The error names the bad pattern.
///
/// ```
/// let set = stoker_core::profile::build_exclude_set(&["**/views".to_owned()]).unwrap();
/// assert!(set.is_match("views"));
/// assert!(set.is_match("projects/p/views/local/view.json"));
/// assert!(!set.is_match("projects/p/viewsx/view.json"));
/// ```
pub fn build_exclude_set(patterns: &[String]) -> std::result::Result<GlobSet, (String, String)> {
    let mut builder = GlobSetBuilder::new();
    for pattern in patterns {
        let glob = compile_glob(pattern).map_err(|message| (pattern.clone(), message))?;
        // `x/**` (and `x/`, compiled as `x/**`) already matches everything below `x`.
        let below = (!glob.glob().ends_with("/**") && glob.glob() != "**")
            .then(|| compile_glob(&format!("{}/**", glob.glob())))
            .transpose()
            .map_err(|message| (pattern.clone(), message))?;
        builder.add(glob);
        if let Some(below) = below {
            builder.add(below);
        }
    }
    builder
        .build()
        .map_err(|error| (patterns.join(", "), error.to_string()))
}

/// Compiles several globs (see [`compile_glob`]) into one set; the error names the bad pattern.
pub fn build_globset(patterns: &[String]) -> std::result::Result<GlobSet, (String, String)> {
    let mut builder = GlobSetBuilder::new();
    for pattern in patterns {
        builder.add(compile_glob(pattern).map_err(|message| (pattern.clone(), message))?);
    }
    builder
        .build()
        .map_err(|error| (patterns.join(", "), error.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> SyncSpec {
        serde_json::from_value(serde_json::json!({
            "defaults": {
                "vars": {"site": "1", "region": "eu"},
                "syncPeriod": 45,
                "designerSessionPolicy": "wait",
                "paused": true
            },
            "profiles": {
                "standard": {
                    "mappings": [{"source": "a", "destination": "b", "type": "dir", "required": true}],
                    "vars": {"site": "2"},
                    "excludePatterns": ["**/*.bak"],
                    "paused": false
                }
            }
        }))
        .unwrap()
    }

    #[test]
    fn profile_wins_per_key_over_defaults() {
        let profile = spec().resolve("standard").unwrap();
        assert_eq!(profile.vars["site"], "2");
        assert_eq!(profile.vars["region"], "eu");
        assert_eq!(profile.sync_period, 45);
        assert_eq!(profile.designer_session_policy, DesignerSessionPolicy::Wait);
        assert!(!profile.paused);
    }

    #[test]
    fn excludes_are_merged_with_builtin_defaults_when_defaults_omit_them() {
        let profile = spec().resolve("standard").unwrap();
        assert_eq!(
            profile.exclude_patterns,
            vec!["**/.git/**", "**/.gitkeep", "**/*.bak"]
        );
    }

    #[test]
    fn git_and_gitkeep_stay_excluded_when_the_user_gives_a_list() {
        let mut spec = spec();
        spec.defaults.exclude_patterns = Some(vec!["**/*.tmp".into(), "**/.gitkeep".into()]);
        let profile = spec.resolve("standard").unwrap();
        assert_eq!(
            profile.exclude_patterns,
            vec!["**/.git/**", "**/.gitkeep", "**/*.tmp", "**/*.bak"]
        );
        let set = profile.excludes().unwrap();
        for excluded in [
            ".git/config",
            "a/.git/HEAD",
            "x/.gitkeep",
            ".gitkeep",
            "a.tmp",
        ] {
            assert!(set.is_match(excluded), "{excluded} should be excluded");
        }
        assert!(!set.is_match("x/config.json"));
    }

    #[test]
    fn an_empty_user_list_keeps_the_builtin_excludes() {
        let mut spec = spec();
        spec.defaults.exclude_patterns = Some(Vec::new());
        spec.profiles
            .get_mut("standard")
            .unwrap()
            .exclude_patterns
            .clear();
        let set = spec.resolve("standard").unwrap().excludes().unwrap();
        assert!(set.is_match(".git/config"));
        assert!(set.is_match("x/.gitkeep"));
    }

    #[test]
    fn unknown_profile_names_the_defined_ones() {
        let error = spec().resolve("nope").unwrap_err().to_string();
        assert!(
            error.contains("nope") && error.contains("standard"),
            "{error}"
        );
    }

    #[test]
    fn variable_names_must_be_identifiers() {
        let mut spec = spec();
        spec.profiles
            .get_mut("standard")
            .unwrap()
            .vars
            .insert("site-number".into(), "3".into());
        let error = spec.resolve("standard").unwrap_err().to_string();
        assert!(error.contains("site-number"), "{error}");
    }

    #[test]
    fn bad_exclude_glob_is_an_error_naming_it() {
        let mut spec = spec();
        spec.defaults.exclude_patterns = Some(vec!["a/[".into()]);
        let error = spec.resolve("standard").unwrap_err().to_string();
        assert!(error.contains("a/["), "{error}");
    }

    #[test]
    fn serde_field_names_match_the_gatewaysync_spec() {
        let yaml = r#"
defaults:
  excludePatterns: ["**/.git/"]
  designerSessionPolicy: fail
  dryRun: true
profiles:
  p:
    mappings:
      - source: "services/{{.GatewayName}}/projects"
        destination: projects
        type: dir
        required: true
        template: true
        patches:
          - file: "**/config.json"
            set: {"connection.host": "db"}
"#;
        let spec: SyncSpec = serde_yaml::from_str(yaml).unwrap();
        let mapping = &spec.profiles["p"].mappings[0];
        assert_eq!(mapping.kind, Some(MappingType::Dir));
        assert!(mapping.required && mapping.template);
        assert_eq!(mapping.patches[0].set["connection.host"], "db");
        assert_eq!(spec.defaults.dry_run, Some(true));
    }

    #[test]
    fn trailing_slash_glob_matches_everything_below() {
        let set = build_globset(&["**/.git/".to_owned()]).unwrap();
        assert!(set.is_match(".git/config"));
        assert!(set.is_match("a/.git/objects/x"));
        assert!(!set.is_match("a/.github/x"));
    }

    #[test]
    fn adopt_defaults_to_false_and_a_profile_overrides_the_defaults() {
        let yaml = r#"
defaults: {adopt: true}
profiles:
  inherits: {mappings: [{source: ".", destination: "."}]}
  refuses: {adopt: false, mappings: [{source: ".", destination: "."}]}
"#;
        let spec: SyncSpec = serde_yaml::from_str(yaml).unwrap();
        assert!(spec.resolve("inherits").unwrap().adopt);
        assert!(!spec.resolve("refuses").unwrap().adopt);
        let plain: SyncSpec =
            serde_yaml::from_str("profiles: {p: {mappings: [{source: a, destination: b}]}}")
                .unwrap();
        assert!(!plain.resolve("p").unwrap().adopt);
    }

    #[test]
    fn an_exclude_matching_a_directory_excludes_its_subtree() {
        let patterns = ["**/views", "config/*.d", "**/tags/", "b/**", "*.bak"].map(str::to_owned);
        let set = build_exclude_set(&patterns).unwrap();
        for excluded in [
            "views",
            "views/local/view.json",
            "projects/p/com.inductiveautomation.perspective/views/main/view.json",
            "config/x.d",
            "config/x.d/y/z",
            "a/tags/t.json",
            "b/c",
            "x.bak",
            "x.bak/inside",
        ] {
            assert!(set.is_match(excluded), "{excluded} should be excluded");
        }
        for kept in [
            "viewsx/a",
            "a/views.json",
            "config/x.d.json",
            "a/b/c",
            "config/a/x.d",
        ] {
            assert!(!set.is_match(kept), "{kept} should not be excluded");
        }
        // A pattern the exclude set refuses is named, as `build_globset` names it.
        assert_eq!(build_exclude_set(&["a/[".to_owned()]).unwrap_err().0, "a/[");
    }

    #[test]
    fn single_star_stays_within_a_component() {
        let set = build_globset(&["*.json".to_owned()]).unwrap();
        assert!(set.is_match("a.json"));
        assert!(!set.is_match("dir/a.json"));
    }
}
