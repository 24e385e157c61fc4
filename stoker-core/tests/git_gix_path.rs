//! The measurement switch `git::testing::use_gix_path` (benches/memory-limit.sh) takes gix's own
//! path: a cold fetch and a read of every file through it give exactly what the hand-written
//! pack layer gives, but the blobs are read through gix's memory map of the pack (which the
//! layer exists to avoid), so the pack's pages become resident in this process.
//!
//! A binary of its own: the switch is process-wide, and would change what other tests read.
//! Needs the `testing` feature (`cargo test -p stoker-core --features testing --test
//! git_gix_path`; `hack/test.sh` runs it).
#![cfg(feature = "testing")]
#![allow(clippy::unwrap_used)]

// Shared with the `it` binary's Git tests.
#[path = "it/git_support/mod.rs"]
mod git_support;

use std::collections::BTreeMap;
use std::path::Path;

use git_support::{Fixture, fast_retries};
use stoker_core::Artifact;
use stoker_core::git::{GitSource, GitSourceConfig};

/// Files of incompressible bytes, so the pack is about as large as they are.
const FILES: usize = 48;
const FILE_BYTES: usize = 32 << 10;

/// Deterministic bytes that zlib cannot shrink (xorshift64).
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[0]
        })
        .collect()
}

/// Every regular file of a cold fetch into `cache` (path → bytes, read whole and streamed, which
/// must agree), the artifact kept alive while `measure` looks at the process.
fn fetch_and_read(fixture: &Fixture, cache: &Path, measure: impl FnOnce() -> u64) -> Read {
    let source = GitSource::new(
        GitSourceConfig::new(fixture.url(), cache.to_path_buf()).with_retry(fast_retries()),
    )
    .unwrap();
    let revision = source.resolve_blocking("main").unwrap();
    let artifact = source.fetch_blocking(&revision).unwrap();
    let listing = artifact.list().unwrap();
    let mut files = BTreeMap::new();
    for entry in listing
        .entries
        .iter()
        .filter(|entry| entry.kind.is_regular())
    {
        let whole = artifact.read(&entry.path).unwrap();
        let mut streamed = Vec::new();
        std::io::Read::read_to_end(&mut artifact.open(&entry.path).unwrap(), &mut streamed)
            .unwrap();
        assert_eq!(whole, streamed, "{}", entry.path);
        files.insert(entry.path.clone(), whole);
    }
    let resident = measure();
    Read {
        files,
        resident,
        pack_bytes: pack_bytes(source.cache_repository()),
    }
}

struct Read {
    files: BTreeMap<String, Vec<u8>>,
    /// Bytes of the cache's pack files resident in this process's mappings.
    resident: u64,
    pack_bytes: u64,
}

/// Total size of the `.pack` files of the repository at `git_dir`.
fn pack_bytes(git_dir: &Path) -> u64 {
    std::fs::read_dir(git_dir.join("objects/pack"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "pack"))
        .map(|path| std::fs::metadata(path).unwrap().len())
        .sum()
}

/// Resident bytes of this process's mappings of files below `dir` (`/proc/self/smaps`).
fn resident_below(dir: &Path) -> u64 {
    let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
    let dir = dir.to_str().unwrap();
    let mut inside = false;
    let mut total = 0;
    for line in smaps.lines() {
        let first = line.split_whitespace().next().unwrap_or("");
        // A mapping's header line starts with its address range, `start-end`.
        if first.contains('-') && !first.ends_with(':') {
            inside = line
                .split_whitespace()
                .nth(5)
                .is_some_and(|p| p.starts_with(dir));
        } else if inside && first == "Rss:" {
            let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
            total += kib << 10;
        }
    }
    total
}

#[test]
fn the_gix_path_reads_the_same_files_through_a_resident_map_of_the_pack() {
    let fixture = Fixture::new();
    fixture.commit("noise", |work| {
        std::fs::create_dir_all(work.join("noise")).unwrap();
        for i in 0..FILES {
            std::fs::write(
                work.join(format!("noise/{i}.bin")),
                noise(i as u64, FILE_BYTES),
            )
            .unwrap();
        }
    });
    let root = tempfile::tempdir().unwrap();
    let (ours_cache, gix_cache) = (root.path().join("ours"), root.path().join("gix"));

    let ours = fetch_and_read(&fixture, &ours_cache, || resident_below(&ours_cache));
    stoker_core::git::testing::use_gix_path(true);
    let gix = fetch_and_read(&fixture, &gix_cache, || resident_below(&gix_cache));
    stoker_core::git::testing::use_gix_path(false);

    assert_eq!(ours.files.len(), gix.files.len());
    assert_eq!(ours.files, gix.files);
    assert!(ours.files.len() > FILES);
    // Both received one pack of the whole commit (its blobs do not compress).
    for read in [&ours, &gix] {
        assert!(
            read.pack_bytes > (FILES * FILE_BYTES) as u64,
            "{}",
            read.pack_bytes
        );
    }
    // gix read every blob through its map: the pack is resident. The pack layer read them with
    // `pread` into buffers of its own: at most the pages around the commit (gix reads commits).
    assert!(
        gix.resident > gix.pack_bytes / 2,
        "gix's path: {} of {} pack bytes resident",
        gix.resident,
        gix.pack_bytes
    );
    assert!(
        ours.resident < ours.pack_bytes / 4,
        "the pack layer: {} of {} pack bytes resident",
        ours.resident,
        ours.pack_bytes
    );
}
