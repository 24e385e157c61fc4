//! Criterion benchmarks of the sync engine on a generated Ignition-shaped tree.
//!
//! The tree (about `STOKER_BENCH_FILES` files, default 2000) comes from
//! `../shared/bench/gen-ignition-repo` and is cached in `target/bench-data/`; both of its commits
//! are extracted into plain directories and read through a `LocalSource`. The profile maps the
//! whole tree (`.` → `.`).
//!
//! - `plan_cold`: plan into an empty live directory (lists the source, nothing to compare).
//! - `apply_cold`: apply that plan (read, hash and write every file; manifest).
//! - `plan_noop`: plan against a live directory already synced to the same tree; the manifest
//!   vouches for every live file, but a local source has no free content ids, so every source
//!   file is read and hashed.
//! - `sync_incremental_1pct`: plan + apply from the first commit's synced state to the second
//!   (1% of views and scripts rewritten, one file added, one deleted). The reset to the first
//!   commit is a sync too, outside the measurement.
//! - `plan_noop_known_ids`, `sync_incremental_1pct_known_ids`: the same with content ids in the
//!   listing (hashed once, before measuring), as a Git source gives them, and for the
//!   incremental case the previous revision and changed paths the pipeline passes. What is left
//!   is the engine's own cost: desired set, manifest, the manifest-guided drift check.
//!
//! Live directories are never deleted while measuring: on ext4 without a journal, creating many
//! files soon after deleting many is much slower (the inode allocator checks every recently
//! deleted inode), which would make each sample depend on the previous one. They all go when the
//! group is done.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use stoker_benches::{Checkouts, KnownIds, checkouts, request, request_from};
use stoker_core::{Artifact, Revision, SyncStrategy};
use stoker_sync::MergeStrategy;

fn files() -> usize {
    std::env::var("STOKER_BENCH_FILES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(2000)
}

fn data() -> Checkouts {
    match checkouts(files()) {
        Ok(checkouts) => checkouts,
        Err(error) => panic!("generating benchmark data: {error}"),
    }
}

/// Fresh live directories below one temporary directory, removed only when dropped.
struct Scratch {
    root: tempfile::TempDir,
    next: usize,
}

impl Scratch {
    fn new() -> Self {
        match tempfile::Builder::new().prefix("stoker-bench-").tempdir() {
            Ok(root) => Scratch { root, next: 0 },
            Err(error) => panic!("creating a temporary directory: {error}"),
        }
    }

    /// A path that does not exist yet (the engine creates the live directory).
    fn fresh(&mut self) -> PathBuf {
        self.next += 1;
        self.root.path().join(format!("live-{}", self.next))
    }
}

fn sync(engine: &MergeStrategy, source: &Path, revision: &str, live: &Path) {
    if let Err(error) = engine.sync(&request(source, revision, live)) {
        panic!(
            "sync of {} into {}: {error}",
            source.display(),
            live.display()
        );
    }
}

fn engine_benches(c: &mut Criterion) {
    let data = data();
    let engine = MergeStrategy::default();
    let [c1, c2] = &data.commits;
    let mut scratch = Scratch::new();
    let mut group = c.benchmark_group("engine");

    group.bench_function("plan_cold", |b| {
        b.iter_batched(
            || request(&data.first, c1, &scratch.fresh()),
            |request| black_box(engine.plan(&request).expect("plan").writes().len()),
            BatchSize::PerIteration,
        );
    });

    group.bench_function("apply_cold", |b| {
        b.iter_batched(
            || {
                engine
                    .plan(&request(&data.first, c1, &scratch.fresh()))
                    .expect("plan")
            },
            |plan| engine.apply(plan).expect("apply"),
            BatchSize::PerIteration,
        );
    });

    let synced = scratch.fresh();
    sync(&engine, &data.first, c1, &synced);
    group.bench_function("plan_noop", |b| {
        let request = request(&data.first, c1, &synced);
        b.iter(|| {
            let plan = engine.plan(&request).expect("plan");
            assert!(plan.is_noop(), "a synced live directory plans nothing");
            plan
        });
    });

    group.bench_function("sync_incremental_1pct", |b| {
        let live = synced.as_path();
        b.iter_batched(
            || {
                sync(&engine, &data.first, c1, live);
                request(&data.second, c2, live)
            },
            |request| engine.sync(&request).expect("sync"),
            BatchSize::PerIteration,
        );
    });
    let known = |source: &Path, revision: &str| -> Arc<dyn Artifact> {
        match KnownIds::new(source, revision) {
            Ok(artifact) => Arc::new(artifact),
            Err(error) => panic!("hashing {}: {error}", source.display()),
        }
    };
    let (first, second) = (known(&data.first, c1), known(&data.second, c2));
    let changed = changed_paths(first.as_ref(), second.as_ref());
    let synced = scratch.fresh();
    let sync_known = |artifact: &Arc<dyn Artifact>| {
        if let Err(error) = engine.sync(&request_from(artifact.clone(), &synced)) {
            panic!("sync into {}: {error}", synced.display());
        }
    };
    sync_known(&first);
    sync_known(&first);
    group.bench_function("plan_noop_known_ids", |b| {
        let request = request_from(first.clone(), &synced);
        b.iter(|| {
            let plan = engine.plan(&request).expect("plan");
            assert!(plan.is_noop(), "a synced live directory plans nothing");
            plan
        });
    });
    group.bench_function("sync_incremental_1pct_known_ids", |b| {
        b.iter_batched(
            || {
                sync_known(&first);
                let mut request = request_from(second.clone(), &synced);
                request.previous = Some(Revision::new(c1.as_str()));
                request.changed_paths = Some(changed.clone());
                request
            },
            |request| engine.sync(&request).expect("sync"),
            BatchSize::PerIteration,
        );
    });
    group.finish();
    drop(scratch);
}

/// The paths whose entry differs between two listings (what a Git tree diff gives).
fn changed_paths(from: &dyn Artifact, to: &dyn Artifact) -> Vec<String> {
    let list = |artifact: &dyn Artifact| match artifact.list() {
        Ok(listing) => listing
            .entries
            .into_iter()
            .map(|e| (e.path, (e.kind, e.content_id)))
            .collect::<std::collections::BTreeMap<_, _>>(),
        Err(error) => panic!("listing: {error}"),
    };
    let (before, after) = (list(from), list(to));
    let mut changed: Vec<String> = before
        .keys()
        .chain(after.keys())
        .filter(|path| before.get(*path) != after.get(*path))
        .cloned()
        .collect();
    changed.sort();
    changed.dedup();
    changed
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = engine_benches
}
criterion_main!(benches);
