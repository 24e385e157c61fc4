//! Validation of the relative, `/`-separated paths used everywhere in Stoker.

use crate::error::{Error, Result};

/// The longest path Stoker accepts, in bytes (Linux's `PATH_MAX`).
pub const MAX_PATH_BYTES: usize = 4096;

/// The longest file name (one path component) Stoker writes, in bytes: Linux's `NAME_MAX`,
/// the limit of ext4, XFS, btrfs, tmpfs and overlayfs alike.
pub const MAX_NAME_BYTES: usize = 255;

/// The first component of `path` longer than [`MAX_NAME_BYTES`], if any.
///
/// ```
/// use stoker_core::relpath::too_long_component;
/// assert_eq!(too_long_component("a/b"), None);
/// let long = "x".repeat(256);
/// assert_eq!(too_long_component(&format!("a/{long}/b")), Some(long.as_str()));
/// ```
pub fn too_long_component(path: &str) -> Option<&str> {
    path.split('/')
        .find(|component| component.len() > MAX_NAME_BYTES)
}

/// Checks and normalises a relative path: `./a//b/` becomes `a/b`; `.` and `` become the empty
/// string, which stands for the root.
///
/// Refused, with an error naming `context`: absolute paths (`/etc`, `C:\x`, `\\server`), any `..`
/// component, NUL bytes, backslashes (a Windows separator that would be a plain character on
/// Linux and a surprise to whoever wrote it) and paths longer than [`MAX_PATH_BYTES`].
///
/// ```
/// use stoker_core::relpath::normalize;
/// assert_eq!(normalize("./projects//site/", "mappings[0].source").unwrap(), "projects/site");
/// assert_eq!(normalize(".", "mappings[0].source").unwrap(), "");
/// assert!(normalize("../etc", "mappings[0].destination").is_err());
/// assert!(normalize("/etc/passwd", "mappings[0].destination").is_err());
/// ```
pub fn normalize(path: &str, context: &str) -> Result<String> {
    let refuse = |reason: &'static str| Error::InvalidPath {
        path: path.to_owned(),
        context: context.to_owned(),
        reason,
    };
    if path.len() > MAX_PATH_BYTES {
        return Err(refuse("longer than 4096 bytes"));
    }
    if path.starts_with('/') {
        return Err(refuse("absolute paths are not allowed"));
    }
    if path.contains('\\') {
        return Err(refuse("backslashes are not allowed; use '/'"));
    }
    if path.len() >= 2 && path.as_bytes()[1] == b':' && path.as_bytes()[0].is_ascii_alphabetic() {
        return Err(refuse("absolute (drive-letter) paths are not allowed"));
    }
    if path.contains('\0') {
        return Err(refuse("NUL bytes are not allowed"));
    }
    let mut normalized = String::with_capacity(path.len());
    for component in path.split('/') {
        match component {
            "" | "." => continue,
            ".." => return Err(refuse("'..' components are not allowed")),
            name => {
                if !normalized.is_empty() {
                    normalized.push('/');
                }
                normalized.push_str(name);
            }
        }
    }
    Ok(normalized)
}

/// Joins a normalised directory and a normalised relative path (`""` is the root).
///
/// ```
/// use stoker_core::relpath::join;
/// assert_eq!(join("", "a/b"), "a/b");
/// assert_eq!(join("x", "a"), "x/a");
/// assert_eq!(join("x", ""), "x");
/// ```
pub fn join(dir: &str, rest: &str) -> String {
    match (dir.is_empty(), rest.is_empty()) {
        (true, _) => rest.to_owned(),
        (_, true) => dir.to_owned(),
        _ => format!("{dir}/{rest}"),
    }
}

/// True when `path` is `dir` itself or lies below it (`dir` `""` is the root, which contains
/// everything).
///
/// ```
/// use stoker_core::relpath::is_within;
/// assert!(is_within("config/resources/dev/x.json", "config/resources/dev"));
/// assert!(!is_within("config/resources/devices", "config/resources/dev"));
/// assert!(is_within("anything", ""));
/// ```
pub fn is_within(path: &str, dir: &str) -> bool {
    dir.is_empty()
        || path == dir
        || (path.len() > dir.len() && path.starts_with(dir) && path.as_bytes()[dir.len()] == b'/')
}

/// The parent of a normalised path (`a/b` → `a`, `a` → ``), or `None` for the root.
pub fn parent(path: &str) -> Option<&str> {
    if path.is_empty() {
        return None;
    }
    Some(path.rfind('/').map_or("", |index| &path[..index]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_dot_anywhere_is_refused() {
        for bad in ["..", "a/../b", "a/..", "../a", "./.."] {
            let error = normalize(bad, "mappings[2].destination").unwrap_err();
            assert!(
                error.to_string().contains("mappings[2].destination"),
                "{error}"
            );
        }
    }

    #[test]
    fn absolute_and_windows_paths_are_refused() {
        for bad in [
            "/",
            "/etc",
            "C:\\Windows",
            "c:/x",
            "a\\b",
            "\\\\server\\share",
        ] {
            assert!(normalize(bad, "x").is_err(), "{bad}");
        }
    }

    #[test]
    fn overlong_paths_are_refused() {
        let long = "a/".repeat(MAX_PATH_BYTES);
        assert!(normalize(&long, "x").is_err());
    }

    #[test]
    fn dots_that_are_names_are_kept() {
        assert_eq!(normalize("a/.../b", "x").unwrap(), "a/.../b");
        assert_eq!(normalize(".versions.json", "x").unwrap(), ".versions.json");
    }

    #[test]
    fn parent_walks_up_to_the_root() {
        assert_eq!(parent("a/b/c"), Some("a/b"));
        assert_eq!(parent("a"), Some(""));
        assert_eq!(parent(""), None);
    }
}
