//! Bare Git repositories for tests, built with the `git` CLI.
//!
//! Every commit uses the same author, committer and date (like
//! `../shared/bench/gen-ignition-repo`), so the same calls give the same commit ids on every
//! machine. `git` runs with system and global configuration ignored.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::process::{describe, run};
use crate::{Error, Result};

/// The author and committer name of every commit made here.
pub const AUTHOR_NAME: &str = "stoker-test";
/// The author and committer e-mail of every commit made here.
pub const AUTHOR_EMAIL: &str = "stoker-test@example.invalid";
/// The author and committer date of every commit and tag made here.
pub const DATE: &str = "2026-01-01T00:00:00Z";
/// The branch [`make_repo`] and [`Repo::init`] start with (`HEAD` points to it).
pub const DEFAULT_BRANCH: &str = "main";

/// A `git` command isolated from the machine's configuration: no system or global config, no
/// terminal prompts, no askpass program, the fixed identity and dates of this module.
pub fn git() -> Command {
    let mut cmd = Command::new("git");
    cmd.env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_ASKPASS", "true")
        .env("SSH_ASKPASS", "true")
        .env("GIT_AUTHOR_NAME", AUTHOR_NAME)
        .env("GIT_AUTHOR_EMAIL", AUTHOR_EMAIL)
        .env("GIT_COMMITTER_NAME", AUTHOR_NAME)
        .env("GIT_COMMITTER_EMAIL", AUTHOR_EMAIL)
        .env("GIT_AUTHOR_DATE", DATE)
        .env("GIT_COMMITTER_DATE", DATE)
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .env_remove("GIT_INDEX_FILE")
        .env_remove("GIT_OBJECT_DIRECTORY")
        .env_remove("GIT_SSH_COMMAND")
        .env_remove("GIT_PROTOCOL");
    cmd
}

/// One change in a commit made by [`Repo::commit_changes`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change<'a> {
    /// A regular file (mode 100644) with these bytes; replaces whatever was at the path.
    Write(&'a str, &'a [u8]),
    /// An executable file (mode 100755).
    Executable(&'a str, &'a [u8]),
    /// A symbolic link (mode 120000) pointing to the target.
    Symlink(&'a str, &'a str),
    /// Removes the path (a file or a link; nothing happens if it is absent).
    Delete(&'a str),
}

/// A bare repository on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repo {
    path: PathBuf,
}

/// Creates a bare repository at `dir` with one commit on `main` holding `files` (paths may have
/// `/`), and returns the commit id.
pub fn make_repo(dir: &Path, files: &[(&str, &[u8])]) -> Result<String> {
    let repo = Repo::init(dir)?;
    repo.commit(DEFAULT_BRANCH, files, "initial commit")
}

impl Repo {
    /// `git init --bare` at `path` (parents are created), `HEAD` → `main`. Upload-pack allows
    /// filters and wants of any reachable commit, as hosted Git servers do.
    pub fn init(path: &Path) -> Result<Self> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| Error::io(format!("create {}", parent.display()), e))?;
        }
        run(git()
            .arg("init")
            .arg("--quiet")
            .arg("--bare")
            .arg(format!("--initial-branch={DEFAULT_BRANCH}"))
            .arg(path))?;
        let path = path
            .canonicalize()
            .map_err(|e| Error::io(format!("canonicalize {}", path.display()), e))?;
        let repo = Self { path };
        for (key, value) in [
            ("uploadpack.allowFilter", "true"),
            ("uploadpack.allowReachableSHA1InWant", "true"),
            ("uploadpack.allowTipSHA1InWant", "true"),
        ] {
            repo.git(&["config", key, value])?;
        }
        Ok(repo)
    }

    /// An existing repository (not checked).
    pub fn open(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// The repository's directory (absolute when made by [`Repo::init`]).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The directory's name, e.g. `name.git`: the path part of server URLs.
    pub fn name(&self) -> String {
        self.path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// `file:///ABS/PATH`.
    pub fn file_url(&self) -> String {
        format!("file://{}", self.path.display())
    }

    /// Runs `git -C REPO args...` and returns its stdout, trimmed.
    pub fn git(&self, args: &[&str]) -> Result<String> {
        run(git().arg("-C").arg(&self.path).args(args))
    }

    /// The object id `rev` names (`git rev-parse --verify rev^{}`… without peeling: tags stay
    /// tag objects).
    pub fn rev_parse(&self, rev: &str) -> Result<String> {
        self.git(&["rev-parse", "--verify", "--end-of-options", rev])
    }

    /// Commits `files` (written or overwritten, paths may have `/`) on top of `branch`, creating
    /// the branch (with no parent) if it does not exist. Returns the new commit id.
    pub fn commit(&self, branch: &str, files: &[(&str, &[u8])], message: &str) -> Result<String> {
        let changes: Vec<Change<'_>> = files.iter().map(|(p, c)| Change::Write(p, c)).collect();
        self.commit_changes(branch, &changes, message)
    }

    /// Commits `changes` on top of `branch` (created without a parent if missing) and moves the
    /// branch; returns the new commit id. Made without a work tree: a temporary index in the
    /// repository, `update-index`, `write-tree`, `commit-tree`, `update-ref`.
    pub fn commit_changes(
        &self,
        branch: &str,
        changes: &[Change<'_>],
        message: &str,
    ) -> Result<String> {
        static INDEX: AtomicU64 = AtomicU64::new(0);
        let index = self.path.join(format!(
            "stoker-testkit-{}-{}.index",
            std::process::id(),
            INDEX.fetch_add(1, Ordering::Relaxed)
        ));
        let result = self.commit_with_index(&index, branch, changes, message);
        let _ = std::fs::remove_file(&index);
        result
    }

    fn commit_with_index(
        &self,
        index: &Path,
        branch: &str,
        changes: &[Change<'_>],
        message: &str,
    ) -> Result<String> {
        let git_ix = || {
            let mut cmd = git();
            cmd.arg("-C").arg(&self.path).env("GIT_INDEX_FILE", index);
            cmd
        };
        let refname = format!("refs/heads/{branch}");
        let parent = self
            .git(&[
                "rev-parse",
                "--verify",
                "--quiet",
                &format!("{refname}^{{commit}}"),
            ])
            .ok();
        match &parent {
            Some(p) => run(git_ix().args(["read-tree", p.as_str()]))?,
            None => run(git_ix().args(["read-tree", "--empty"]))?,
        };
        let mut info = String::new();
        for change in changes {
            let (mode, path, bytes): (&str, &str, &[u8]) = match *change {
                Change::Write(p, c) => ("100644", p, c),
                Change::Executable(p, c) => ("100755", p, c),
                Change::Symlink(p, target) => ("120000", p, target.as_bytes()),
                Change::Delete(p) => {
                    // Mode 0 in --index-info removes the path.
                    info.push_str(&format!("0 {} 0\t{p}\n", "0".repeat(40)));
                    continue;
                }
            };
            let blob = self.hash_object(bytes)?;
            info.push_str(&format!("{mode} {blob} 0\t{path}\n"));
        }
        pipe_into(
            git_ix().args(["update-index", "--index-info"]),
            info.as_bytes(),
        )?;
        let tree = run(git_ix().arg("write-tree"))?;
        let mut commit = git();
        commit
            .arg("-C")
            .arg(&self.path)
            .args(["commit-tree", &tree, "-m", message]);
        if let Some(p) = &parent {
            commit.args(["-p", p]);
        }
        let id = run(&mut commit)?;
        let old = parent.unwrap_or_else(|| "0".repeat(40));
        self.git(&["update-ref", &refname, &id, &old])?;
        Ok(id)
    }

    /// Writes a blob and returns its id.
    pub fn hash_object(&self, bytes: &[u8]) -> Result<String> {
        pipe_into(
            git()
                .arg("-C")
                .arg(&self.path)
                .args(["hash-object", "-w", "--stdin"]),
            bytes,
        )
    }

    /// Creates or moves branch `name` to `rev`.
    pub fn branch(&self, name: &str, rev: &str) -> Result<()> {
        let id = self.rev_parse(&format!("{rev}^{{commit}}"))?;
        self.git(&["update-ref", &format!("refs/heads/{name}"), &id])?;
        Ok(())
    }

    /// Points `HEAD` at branch `name` (which need not exist yet).
    pub fn set_head(&self, name: &str) -> Result<()> {
        self.git(&["symbolic-ref", "HEAD", &format!("refs/heads/{name}")])?;
        Ok(())
    }

    /// A lightweight tag `name` → `rev`.
    pub fn tag(&self, name: &str, rev: &str) -> Result<()> {
        let id = self.rev_parse(rev)?;
        self.git(&["update-ref", &format!("refs/tags/{name}"), &id])?;
        Ok(())
    }

    /// An annotated tag `name` → `rev` with `message`; returns the tag object's id.
    pub fn annotated_tag(&self, name: &str, rev: &str, message: &str) -> Result<String> {
        let id = self.rev_parse(rev)?;
        self.git(&["tag", "-a", "-m", message, name, &id])?;
        self.rev_parse(&format!("refs/tags/{name}"))
    }

    /// Deletes branch or tag `refname` (full name, e.g. `refs/tags/v1`).
    pub fn delete_ref(&self, refname: &str) -> Result<()> {
        self.git(&["update-ref", "-d", refname])?;
        Ok(())
    }
}

/// Runs `cmd` with `input` on stdin; returns stdout, trimmed.
fn pipe_into(cmd: &mut Command, input: &[u8]) -> Result<String> {
    let line = describe(cmd);
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::Missing {
                program: "git".into(),
            },
            _ => Error::io(format!("run {line}"), e),
        })?;
    let write = child
        .stdin
        .take()
        .map(|mut stdin| stdin.write_all(input))
        .unwrap_or(Ok(()));
    let output = child
        .wait_with_output()
        .map_err(|e| Error::io(format!("wait for {line}"), e))?;
    if !output.status.success() {
        return Err(Error::Command {
            command: line,
            status: output.status.to_string(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        });
    }
    write.map_err(|e| Error::io(format!("write stdin of {line}"), e))?;
    Ok(String::from_utf8_lossy(&output.stdout)
        .trim_end()
        .to_owned())
}
