//! Compiles arbitrary exclude patterns with `stoker_core::profile::{compile_glob, build_globset}`
//! and matches arbitrary paths against them.
//!
//! Never panics. `build_globset` fails exactly when some pattern fails `compile_glob` (or the
//! set as a whole cannot be built), and then names the first bad pattern; when it builds, the set
//! matches a path exactly when one of its patterns does. Per pattern: a plain literal (no
//! `*?[]{}\`) matches exactly itself; `**/NAME` matches `NAME`, `x/NAME` and `x/y/NAME`; a pattern
//! `D/` (trailing slash) matches everything below whatever `D` matches. The matching invariants
//! are checked on normalised relative paths (what the engine matches); every string is matched
//! for panics.
#![no_main]

use arbitrary::Arbitrary;
use globset::GlobMatcher;
use libfuzzer_sys::fuzz_target;
use stoker_core::profile::{DEFAULT_EXCLUDES, PROTECTED_PATTERNS, build_globset, compile_glob};
use stoker_core::relpath::normalize;

/// Path components the structured patterns and paths are built from.
const NAMES: &[&str] = &[
    "a",
    "b",
    "ä",
    "日本",
    ".git",
    ".gitkeep",
    ".resources",
    ".stoker",
    "x.json",
    "projects",
    "c d",
    ".",
    "..",
    "",
    "*",
    "**",
    "?",
    "[a]",
    "{a,b}",
    "\\*",
    "a*b",
    "*.json",
];

#[derive(Debug, Arbitrary)]
enum Part {
    Name(u8),
    Raw(String),
}

impl Part {
    fn text(&self) -> String {
        match self {
            Part::Name(i) => NAMES[*i as usize % NAMES.len()].to_owned(),
            // Short: matching cost grows with length, and short strings find the same bugs.
            Part::Raw(s) => s.chars().take(12).collect(),
        }
    }
}

#[derive(Debug, Arbitrary)]
enum PatternSpec {
    /// Components joined with `/`.
    Joined(Vec<Part>),
    /// `**/` + components.
    AnyDepth(Vec<Part>),
    /// Components + `/` (everything below).
    Below(Vec<Part>),
    /// One of the built-in patterns.
    Builtin(u8),
    /// Anything.
    Raw(String),
}

fn join(parts: &[Part]) -> String {
    parts
        .iter()
        .take(5)
        .map(Part::text)
        .collect::<Vec<_>>()
        .join("/")
}

impl PatternSpec {
    fn text(&self) -> String {
        match self {
            PatternSpec::Joined(parts) => join(parts),
            PatternSpec::AnyDepth(parts) => format!("**/{}", join(parts)),
            PatternSpec::Below(parts) => format!("{}/", join(parts)),
            PatternSpec::Builtin(i) => {
                let all: Vec<&str> = DEFAULT_EXCLUDES
                    .iter()
                    .chain(PROTECTED_PATTERNS)
                    .chain(&["**/.git/", "**/*.bak", "*.json"])
                    .copied()
                    .collect();
                all[*i as usize % all.len()].to_owned()
            }
            PatternSpec::Raw(s) => s.chars().take(40).collect(),
        }
    }
}

#[derive(Debug, Arbitrary)]
enum PathSpec {
    Joined(Vec<Part>),
    Raw(String),
}

impl PathSpec {
    fn text(&self) -> String {
        match self {
            PathSpec::Joined(parts) => join(parts),
            PathSpec::Raw(s) => s.chars().take(40).collect(),
        }
    }
}

#[derive(Debug, Arbitrary)]
struct Input {
    patterns: Vec<PatternSpec>,
    paths: Vec<PathSpec>,
}

const META: &[char] = &['*', '?', '[', ']', '{', '}', '\\'];

fn is_plain_literal(s: &str) -> bool {
    !s.contains(META)
}

/// A single path component with no glob metacharacter and no special meaning.
fn is_plain_name(s: &str) -> bool {
    !s.contains('/') && is_plain_literal(s) && is_stoker_path(s)
}

/// A path as the engine matches it: relative, normalised, not the root.
fn is_stoker_path(path: &str) -> bool {
    !path.is_empty() && normalize(path, "fuzz").is_ok_and(|normalized| normalized == path)
}

fn matcher(pattern: &str) -> Option<GlobMatcher> {
    compile_glob(pattern)
        .ok()
        .map(|glob| glob.compile_matcher())
}

fuzz_target!(|input: Input| {
    let patterns: Vec<String> = input
        .patterns
        .iter()
        .take(8)
        .map(PatternSpec::text)
        .collect();
    let mut paths: Vec<String> = input.paths.iter().take(8).map(PathSpec::text).collect();
    // Every pattern is also tried as a path (a literal must match itself).
    paths.extend(patterns.iter().cloned());

    let compiled: Vec<Result<GlobMatcher, String>> = patterns
        .iter()
        .map(|p| compile_glob(p).map(|g| g.compile_matcher()))
        .collect();
    let set = build_globset(&patterns);
    match (&set, compiled.iter().position(Result::is_err)) {
        (Ok(_), Some(bad)) => panic!(
            "build_globset accepted {:?} but compile_glob refuses it",
            patterns[bad]
        ),
        (Err((named, _)), Some(bad)) => assert_eq!(
            named, &patterns[bad],
            "build_globset must name the first bad pattern"
        ),
        _ => {}
    }

    if let Ok(set) = &set {
        // Any string may be matched without a panic; the invariants below only hold for paths
        // as Stoker matches them (normalised and relative). On others `GlobSet` and
        // `GlobMatcher` can disagree: `**/..` matches the path `**/..` as a matcher but not in
        // a set, whose basename strategy sees no file name in `..`.
        for path in &paths {
            let _ = set.is_match(path);
            let _ = set.matches(path);
        }
        for path in paths.iter().filter(|p| is_stoker_path(p)) {
            let any = compiled
                .iter()
                .any(|m| m.as_ref().is_ok_and(|m| m.is_match(path)));
            assert_eq!(
                set.is_match(path),
                any,
                "the set and its patterns disagree on {path:?}"
            );
            assert_eq!(set.matches(path).is_empty(), !any);
        }
    }

    paths.retain(|p| is_stoker_path(p));
    for (pattern, matcher_result) in patterns.iter().zip(&compiled) {
        let Ok(m) = matcher_result else { continue };

        // A plain literal that is a Stoker path (so no trailing `/`, which means "everything
        // below") matches exactly itself.
        if is_plain_literal(pattern) && is_stoker_path(pattern) {
            assert!(m.is_match(pattern), "literal {pattern:?} must match itself");
            for path in &paths {
                assert_eq!(
                    m.is_match(path),
                    path == pattern,
                    "literal {pattern:?} vs path {path:?}"
                );
            }
        }

        // `**/NAME` matches NAME at any depth.
        if let Some(name) = pattern.strip_prefix("**/")
            && is_plain_name(name)
        {
            for path in [name.to_owned(), format!("x/{name}"), format!("x/y/{name}")] {
                assert!(m.is_match(&path), "{pattern:?} must match {path:?}");
            }
            // Below NAME, with a last component that is not NAME (`**/x` does match `x/x`).
            let below = format!("{name}/{name}~");
            assert!(!m.is_match(&below), "{pattern:?} must not match {below:?}");
        }

        // `D/` matches everything below what `D` matches.
        if let Some(dir) = pattern.strip_suffix('/')
            && !dir.ends_with('/')
            && let Some(dir_matcher) = matcher(dir)
        {
            for path in &paths {
                if !dir_matcher.is_match(path) {
                    continue;
                }
                for below in [format!("{path}/x"), format!("{path}/x/y.json")] {
                    assert!(
                        m.is_match(&below),
                        "{pattern:?} must match {below:?}, below {path:?} which {dir:?} matches"
                    );
                }
            }
            if is_plain_literal(dir) && is_stoker_path(dir) {
                for below in [format!("{dir}/x"), format!("{dir}/x/y")] {
                    assert!(m.is_match(&below), "{pattern:?} must match {below:?}");
                }
            }
        }
    }
});
