//! Build script: the version `stoker-agent --version` prints, `VERSION (COMMIT)`.
//!
//! The commit is `$STOKER_BUILD_COMMIT` when set (a build from a tarball or a container context
//! without `.git/`), else `git rev-parse --short HEAD` when this is a Git checkout and `git`
//! works, else nothing: the crate version alone. The script reruns only when the commit can
//! have changed: `.git/HEAD`, the branch it points at (its loose ref file, or the directory the
//! loose ref will appear in, and `packed-refs`), and the variable. In a worktree `.git` is a
//! file pointing at the worktree's own Git directory, whose `commondir` holds the refs.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=STOKER_BUILD_COMMIT");
    let version = std::env::var("CARGO_PKG_VERSION").unwrap_or_default();
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());

    let commit = match std::env::var("STOKER_BUILD_COMMIT") {
        Ok(commit) if !commit.trim().is_empty() => Some(commit.trim().to_owned()),
        _ => match git_dir(&manifest_dir) {
            Some(git_dir) => {
                watch(&git_dir);
                git_commit(&manifest_dir)
            }
            None => None,
        },
    };
    let full = match commit {
        Some(commit) => format!("{version} ({commit})"),
        None => version,
    };
    println!("cargo:rustc-env=STOKER_AGENT_VERSION={full}");
}

/// The Git directory of the checkout holding `start`: `.git` itself, or where a `.git` file
/// (`gitdir: PATH`, a worktree or submodule) points. The search stops at the workspace root
/// (the directory with `Cargo.lock`), so that a tarball unpacked inside some other repository
/// does not take that repository's commit.
fn git_dir(start: &Path) -> Option<PathBuf> {
    for dir in start.ancestors() {
        if dir.join("Cargo.lock").is_file() && !dir.join(".git").exists() {
            return None;
        }
        let dot_git = dir.join(".git");
        if dot_git.is_dir() {
            return Some(dot_git);
        }
        if dot_git.is_file() {
            let text = std::fs::read_to_string(&dot_git).ok()?;
            let target = text.lines().next()?.strip_prefix("gitdir:")?.trim();
            return Some(dir.join(target)).filter(|p| p.is_dir());
        }
    }
    None
}

/// Tells cargo what to watch: `HEAD`, and the ref it names (loose file, or its directory when
/// the ref is only packed, and `packed-refs`). Only existing paths: cargo reruns a build script
/// every time for a path that does not exist.
fn watch(git_dir: &Path) {
    let head = git_dir.join("HEAD");
    rerun_if_exists(&head);
    // A worktree's refs live in the common directory.
    let common = std::fs::read_to_string(git_dir.join("commondir"))
        .ok()
        .map(|relative| git_dir.join(relative.trim()))
        .unwrap_or_else(|| git_dir.to_path_buf());
    rerun_if_exists(&common.join("packed-refs"));
    let Ok(head_text) = std::fs::read_to_string(&head) else {
        return;
    };
    let Some(reference) = head_text.trim().strip_prefix("ref:").map(str::trim) else {
        return; // a detached HEAD: HEAD itself changes on checkout
    };
    let loose = common.join(reference);
    if loose.is_file() {
        rerun_if_exists(&loose);
    } else if let Some(parent) = loose.parent() {
        // Packed only: the next commit writes the loose file here.
        rerun_if_exists(parent);
    }
}

fn rerun_if_exists(path: &Path) {
    if path.exists() {
        println!("cargo:rerun-if-changed={}", path.display());
    }
}

/// `git rev-parse --short HEAD` in `dir`, if git runs and answers.
fn git_commit(dir: &Path) -> Option<String> {
    let output = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(dir)
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    let commit = String::from_utf8(output.stdout).ok()?.trim().to_owned();
    (!commit.is_empty()).then_some(commit)
}
