//! Shared helpers for Stoker benchmarks: see `benches/` and `README.md`.
//!
//! Test data comes from `../shared/bench/gen-ignition-repo` (a deterministic, Ignition-shaped
//! Git repository). The two commits it makes are extracted into plain directories (no `.git`),
//! which a [`LocalSource`] reads; everything is cached under `target/bench-data/`.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use stoker_core::{
    Artifact, ContentId, Listing, LocalArtifact, LocalSource, Mapping, MappingType, Profile,
    Revision, SyncRequest, TemplateContext,
};

/// The workspace root (the parent of this crate's directory).
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// Where generated data is cached: `$STOKER_BENCH_DATA`, else `<workspace>/target/bench-data`.
pub fn data_dir() -> PathBuf {
    std::env::var_os("STOKER_BENCH_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target").join("bench-data"))
}

/// The generator script: `$STOKER_BENCH_GEN`, else `<workspace>/../shared/bench/gen-ignition-repo`.
pub fn generator() -> PathBuf {
    std::env::var_os("STOKER_BENCH_GEN")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("../shared/bench/gen-ignition-repo"))
}

/// The two commits of a generated repository, each extracted into a plain directory.
#[derive(Debug, Clone)]
pub struct Checkouts {
    /// The generated Git repository.
    pub repo: PathBuf,
    /// The first commit's tree.
    pub first: PathBuf,
    /// The second commit's tree (about `churn`% of views and scripts rewritten).
    pub second: PathBuf,
    /// The two commit ids, oldest first.
    pub commits: [String; 2],
}

fn run(command: &mut Command) -> std::io::Result<String> {
    let output = command.output()?;
    if !output.status.success() {
        return Err(std::io::Error::other(format!(
            "{command:?} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// Extracts `commit` of `repo` into `out` with `git archive | tar -x` (atomically: into a
/// temporary sibling first, so an interrupted run never leaves a half tree in the cache).
fn extract(repo: &Path, commit: &str, out: &Path) -> std::io::Result<()> {
    if out.is_dir() {
        return Ok(());
    }
    let partial = out.with_extension("partial");
    if partial.exists() {
        std::fs::remove_dir_all(&partial)?;
    }
    std::fs::create_dir_all(&partial)?;
    let script = format!(
        "git -C '{}' archive --format=tar '{commit}' | tar -x -C '{}'",
        repo.display(),
        partial.display()
    );
    run(Command::new("bash").args(["-o", "pipefail", "-c", &script]))?;
    std::fs::rename(&partial, out)
}

/// Generates (once) a repository of about `files` files with two commits and 1% churn, and
/// extracts both commits. Needs `python3`, `git` and `tar`.
pub fn checkouts(files: usize) -> std::io::Result<Checkouts> {
    let base = data_dir();
    std::fs::create_dir_all(&base)?;
    let repo = base.join(format!("repo-{files}"));
    let done = base.join(format!("repo-{files}.json"));
    if !done.is_file() {
        if repo.exists() {
            std::fs::remove_dir_all(&repo)?;
        }
        let summary = run(Command::new("python3").arg(generator()).arg(&repo).args([
            "--files",
            &files.to_string(),
            "--commits",
            "2",
            "--churn",
            "1",
        ]))?;
        std::fs::write(&done, summary)?;
    }
    let list =
        run(Command::new("git")
            .arg("-C")
            .arg(&repo)
            .args(["rev-list", "--reverse", "main"]))?;
    let commits: Vec<&str> = list.lines().collect();
    let [first_commit, second_commit] = commits[..] else {
        return Err(std::io::Error::other(format!(
            "{} should have exactly 2 commits, has {}",
            repo.display(),
            commits.len()
        )));
    };
    let first = base.join(format!("repo-{files}-c1"));
    let second = base.join(format!("repo-{files}-c2"));
    extract(&repo, first_commit, &first)?;
    extract(&repo, second_commit, &second)?;
    Ok(Checkouts {
        repo,
        first,
        second,
        commits: [first_commit.to_owned(), second_commit.to_owned()],
    })
}

/// The profile the comparisons use: one `dir` mapping of the whole tree (`.` → `.`), so Stoker
/// writes exactly the files `cp -a` and `rsync` copy. The directory is adopted, so what is not
/// in the tree is deleted, as `rsync --delete` deletes it.
pub fn whole_tree_profile() -> Profile {
    let mut profile = Profile::new(
        "bench",
        vec![Mapping {
            source: ".".into(),
            destination: ".".into(),
            kind: Some(MappingType::Dir),
            ..Default::default()
        }],
    );
    profile.adopt = true;
    profile
}

/// A sync request from directory `source` (as revision `revision`) into `live`.
pub fn request(source: &Path, revision: &str, live: &Path) -> SyncRequest {
    request_from(
        Arc::new(LocalSource::new(source).artifact(Revision::new(revision))),
        live,
    )
}

/// A sync request from any artifact into `live`, with the whole-tree profile.
pub fn request_from(artifact: Arc<dyn Artifact>, live: &Path) -> SyncRequest {
    SyncRequest {
        artifact,
        profile: whole_tree_profile(),
        context: TemplateContext::default(),
        live: live.to_path_buf(),
        dry_run: false,
        changed_paths: None,
        previous: None,
    }
}

/// `cp -a from to` (the destination must not exist).
pub fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    run(Command::new("cp").arg("-a").arg(from).arg(to)).map(drop)
}

/// Removes a directory tree if it exists.
pub fn remove_tree(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_dir_all(path) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => Err(error),
        _ => Ok(()),
    }
}

/// A local directory whose listing carries every file's content id, computed up front: what the
/// engine sees from a source that knows blob ids for free (a Git tree). Benchmarks use it to
/// show the engine's cost without source hashing.
#[derive(Debug)]
pub struct KnownIds {
    inner: LocalArtifact,
    listing: Listing,
}

impl KnownIds {
    /// Lists `source` and hashes every regular file.
    pub fn new(source: &Path, revision: &str) -> stoker_core::Result<Self> {
        let inner = LocalSource::new(source).artifact(Revision::new(revision));
        let mut listing = inner.list()?;
        for entry in &mut listing.entries {
            if entry.kind.is_regular() {
                entry.content_id = Some(ContentId::of_blob(&inner.read(&entry.path)?));
            }
        }
        Ok(KnownIds { inner, listing })
    }
}

impl Artifact for KnownIds {
    fn revision(&self) -> &Revision {
        self.inner.revision()
    }

    fn list(&self) -> stoker_core::Result<Listing> {
        Ok(self.listing.clone())
    }

    fn read(&self, path: &str) -> stoker_core::Result<Vec<u8>> {
        self.inner.read(path)
    }

    fn open(&self, path: &str) -> stoker_core::Result<Box<dyn std::io::Read + Send + '_>> {
        self.inner.open(path)
    }

    fn local_path(&self, path: &str) -> Option<PathBuf> {
        self.inner.local_path(path)
    }
}

/// Creates the GatewaySync `name` in namespace `ns`: repository `repo` at `main`, one profile
/// mapping `projects`. What the Kubernetes benchmarks need one of; its content does not matter
/// to them.
pub async fn create_gateway_sync(
    client: &kube::Client,
    ns: &str,
    name: &str,
    repo: &str,
) -> anyhow::Result<()> {
    let object: stoker_k8s::GatewaySync = serde_json::from_value(serde_json::json!({
        "apiVersion": "stoker.io/v1alpha1", "kind": "GatewaySync",
        "metadata": {"name": name},
        "spec": {"git": {"repo": repo, "ref": "main"},
                 "sync": {"profiles": {"default": {"mappings": [
                     {"source": "projects", "destination": "projects"}]}}}}
    }))?;
    kube::Api::<stoker_k8s::GatewaySync>::namespaced(client.clone(), ns)
        .create(&kube::api::PostParams::default(), &object)
        .await?;
    Ok(())
}
