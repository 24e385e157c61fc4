//! The fetch cache survives damage and crashes: corrupt files are detected and refetched, a
//! fetch killed with SIGKILL at any point leaves a cache the next fetch repairs.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::git_support::{Fixture, git, ls_tree, runtime};
use stoker_core::git::{GitSource, GitSourceConfig};
use stoker_core::{Artifact, Revision, Source};

/// Every regular file of the artifact reads back with its blob id.
fn assert_complete(artifact: &dyn Artifact, bare: &Path) {
    let listing = artifact.list().unwrap();
    let expected = ls_tree(bare, &artifact.revision().id);
    assert_eq!(listing.entries.len(), expected.len());
    for entry in listing.entries.iter().filter(|e| e.kind.is_regular()) {
        let bytes = artifact.read(&entry.path).unwrap();
        assert_eq!(
            stoker_core::ContentId::of_blob(&bytes),
            entry.content_id.unwrap(),
            "{}",
            entry.path
        );
    }
}

fn pack_files(repo: &Path, extension: &str) -> Vec<PathBuf> {
    std::fs::read_dir(repo.join("objects/pack"))
        .map(|entries| {
            entries
                .map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|e| e == extension))
                .collect()
        })
        .unwrap_or_default()
}

fn fetched(fixture: &Fixture) -> (GitSource, Revision) {
    let source = fixture.source();
    let rt = runtime();
    let revision = rt.block_on(source.resolve("main")).unwrap();
    rt.block_on(source.fetch(&revision)).unwrap();
    (source, revision)
}

#[test]
fn a_truncated_pack_is_detected_and_refetched() {
    let fixture = Fixture::new();
    let (source, revision) = fetched(&fixture);
    let pack = &pack_files(source.cache_repository(), "pack")[0];
    let len = std::fs::metadata(pack).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(pack)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    let rt = runtime();
    let artifact = rt.block_on(fixture.source().fetch(&revision)).unwrap();
    assert_complete(artifact.as_ref(), &fixture.bare);
}

#[test]
fn garbage_in_head_or_config_is_detected_and_refetched() {
    for file in ["HEAD", "config"] {
        let fixture = Fixture::new();
        let (source, revision) = fetched(&fixture);
        std::fs::write(source.cache_repository().join(file), b"\x00garbage [[[\n").unwrap();
        let rt = runtime();
        let artifact = rt.block_on(fixture.source().fetch(&revision)).unwrap();
        assert_complete(artifact.as_ref(), &fixture.bare);
        // The cache works normally afterwards: an incremental fetch.
        fixture.commit("next", |work| {
            std::fs::write(work.join("README.md"), "next\n").unwrap()
        });
        let source = fixture.source();
        let next = rt.block_on(source.resolve("main")).unwrap();
        let artifact = rt.block_on(source.fetch(&next)).unwrap();
        assert_eq!(
            artifact.read("README.md").unwrap(),
            b"next\n",
            "after damaging {file}"
        );
    }
}

#[test]
fn lost_objects_behind_existing_refs_are_refetched() {
    let fixture = Fixture::new();
    let (source, _) = fetched(&fixture);
    // Refs and the shallow file point at objects that are gone.
    for path in pack_files(source.cache_repository(), "pack")
        .into_iter()
        .chain(pack_files(source.cache_repository(), "idx"))
    {
        std::fs::remove_file(path).unwrap();
    }
    fixture.commit("next", |work| {
        std::fs::write(work.join("README.md"), "next\n").unwrap()
    });
    let rt = runtime();
    let source = fixture.source();
    let next = rt.block_on(source.resolve("main")).unwrap();
    let artifact = rt.block_on(source.fetch(&next)).unwrap();
    assert_complete(artifact.as_ref(), &fixture.bare);
}

#[test]
fn stale_lock_and_temporary_files_are_cleaned_up() {
    let fixture = Fixture::new();
    let (source, _) = fetched(&fixture);
    let repo = source.cache_repository();
    for stale in [
        "packed-refs.lock",
        "shallow.lock",
        "config.lock",
        "HEAD.lock",
    ] {
        std::fs::write(repo.join(stale), "").unwrap();
    }
    std::fs::create_dir_all(repo.join("refs/heads")).unwrap();
    std::fs::write(repo.join("refs/heads/main.lock"), "").unwrap();
    std::fs::write(repo.join("objects/pack/.tmp-half-a-pack"), vec![7u8; 4096]).unwrap();
    std::fs::write(
        repo.join("objects/pack/pack-0000000000000000000000000000000000000000.pack"),
        b"PACK",
    )
    .unwrap();
    fixture.commit("next", |work| {
        std::fs::write(work.join("README.md"), "next\n").unwrap()
    });
    let rt = runtime();
    let source = fixture.source();
    let next = rt.block_on(source.resolve("main")).unwrap();
    let artifact = rt.block_on(source.fetch(&next)).unwrap();
    assert_eq!(artifact.read("README.md").unwrap(), b"next\n");
    assert!(!repo.join("objects/pack/.tmp-half-a-pack").exists());
    assert!(!repo.join("refs/heads/main.lock").exists());
}

#[test]
fn concurrent_fetches_into_one_cache_take_turns() {
    let fixture = Fixture::new();
    let rt = runtime();
    let revision = rt.block_on(fixture.source().resolve("main")).unwrap();
    std::thread::scope(|scope| {
        for _ in 0..4 {
            let source = fixture.source();
            let revision = revision.clone();
            let bare = fixture.bare.clone();
            scope.spawn(move || {
                let artifact = source.fetch_blocking(&revision).unwrap();
                assert_complete(&artifact, &bare);
            });
        }
    });
}

// --- SIGKILL during a fetch -------------------------------------------------------------------

const CHILD_URL: &str = "STOKER_TEST_KILL_URL";
const CHILD_CACHE: &str = "STOKER_TEST_KILL_CACHE";
const CHILD_COMMIT: &str = "STOKER_TEST_KILL_COMMIT";

/// Not a test on its own: the body of the child process that the kill test starts (and kills).
#[test]
fn kill_child_fetch() {
    let (Ok(url), Ok(cache), Ok(commit)) = (
        std::env::var(CHILD_URL),
        std::env::var(CHILD_CACHE),
        std::env::var(CHILD_COMMIT),
    ) else {
        return;
    };
    let source = GitSource::new(GitSourceConfig::new(url, cache)).unwrap();
    source
        .fetch_blocking(&Revision::new(commit).with_reference("main"))
        .unwrap();
}

/// A repository whose pack takes a while to transfer and index: incompressible files.
fn big_fixture() -> Fixture {
    let fixture = Fixture::new();
    fixture.commit("big", |work| {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for dir in 0..10 {
            let dir_path = work.join(format!("big/{dir:02}"));
            std::fs::create_dir_all(&dir_path).unwrap();
            for file in 0..60 {
                let mut bytes = vec![0u8; 24 * 1024];
                for chunk in bytes.chunks_mut(8) {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    chunk.copy_from_slice(&state.to_le_bytes()[..chunk.len()]);
                }
                std::fs::write(dir_path.join(format!("{file:03}.bin")), bytes).unwrap();
            }
        }
    });
    fixture
}

/// Largest file under `objects/pack` that is not a finished pack or index (the temporary pack
/// being written), or `None`.
fn temporary_pack_size(repo: &Path) -> Option<u64> {
    std::fs::read_dir(repo.join("objects/pack"))
        .ok()?
        .flatten()
        .filter(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            !(name.starts_with("pack-") && (name.ends_with(".pack") || name.ends_with(".idx")))
        })
        .filter_map(|e| e.metadata().ok().map(|m| m.len()))
        .max()
}

/// When to kill the child.
#[derive(Debug, Clone, Copy)]
enum KillPoint {
    /// As soon as a temporary pack file has this many bytes.
    TemporaryPack(u64),
    /// As soon as the finished pack is in place (its index may or may not be).
    PackInPlace,
}

/// Starts a child fetching into `cache` and SIGKILLs it at `point`. Returns whether it was
/// killed mid-fetch (false: it finished first).
fn fetch_and_kill(fixture: &Fixture, cache: &Path, commit: &str, point: KillPoint) -> bool {
    let repo = GitSource::new(GitSourceConfig::new(fixture.url(), cache))
        .unwrap()
        .cache_repository()
        .to_path_buf();
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            // Its name in this binary: the module path without the crate.
            "git_cache::kill_child_fetch",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_URL, fixture.url())
        .env(CHILD_CACHE, cache)
        .env(CHILD_COMMIT, commit)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "the child fetch failed");
            return false;
        }
        let reached = match point {
            KillPoint::TemporaryPack(bytes) => {
                temporary_pack_size(&repo).is_some_and(|s| s >= bytes)
            }
            KillPoint::PackInPlace => !pack_files(&repo, "pack").is_empty(),
        };
        if reached {
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
            return true;
        }
        assert!(Instant::now() < deadline, "the child fetch took too long");
        std::thread::sleep(Duration::from_micros(500));
    }
}

#[test]
fn a_fetch_killed_at_any_point_is_repaired_by_the_next_one() {
    let fixture = big_fixture();
    let commit = fixture.rev("main");
    // The pack is about 14 MiB.
    let points = [
        KillPoint::TemporaryPack(1),
        KillPoint::TemporaryPack(6 * 1024 * 1024),
        KillPoint::PackInPlace,
    ];
    let mut killed = 0;
    for (n, point) in points.into_iter().enumerate() {
        // A fresh cache per kill point, then a second kill into the damaged cache.
        let cache = fixture.root.path().join(format!("kill-cache-{n}"));
        let first = fetch_and_kill(&fixture, &cache, &commit, point);
        // Killed again, into the damaged cache.
        let second =
            n == 0 && fetch_and_kill(&fixture, &cache, &commit, KillPoint::TemporaryPack(1));
        killed += usize::from(first) + usize::from(second);
        // The next fetch converges and reads the right content.
        let source = GitSource::new(GitSourceConfig::new(fixture.url(), &cache)).unwrap();
        let artifact = source
            .fetch_blocking(&Revision::new(commit.clone()).with_reference("main"))
            .unwrap_or_else(|error| panic!("after killing at {point:?}: {error}"));
        assert_complete(&artifact, &fixture.bare);
        // Nothing the killed fetches were writing is left: no temporary, no pack without its
        // index.
        let repo = source.cache_repository();
        assert_eq!(
            temporary_pack_size(repo),
            None,
            "leftovers after killing at {point:?}"
        );
        assert_eq!(
            pack_files(repo, "pack").len(),
            pack_files(repo, "idx").len(),
            "a pack without its index after killing at {point:?}"
        );
        // And the repository is healthy for git itself.
        let fsck = crate::git_support::git_command(source.cache_repository())
            .args(["fsck", "--connectivity-only", "--no-dangling"])
            .output()
            .unwrap();
        assert!(
            fsck.status.success(),
            "git fsck after killing at {point:?}: {}",
            String::from_utf8_lossy(&fsck.stderr)
        );
    }
    assert!(
        killed >= 3,
        "only {killed} of 4 fetches were killed mid-way"
    );
    let _ = git(&fixture.bare, &["count-objects", "-v"]);
}
