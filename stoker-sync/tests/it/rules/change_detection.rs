//! DESIGN §3 "Change detection without rereading everything": the manifest and its stat fast
//! path, drift, directory records, and one sync at a time per live directory (the lock).

use super::*;

#[test]
fn noop_resync_reads_nothing_from_a_source_with_content_ids() {
    let mut artifact = MemArtifact::new("r1", true);
    for i in 0..20 {
        artifact = artifact.file(&format!("projects/p/f{i}.json"), format!("content {i}"));
    }
    let artifact = Arc::new(artifact);
    let live = live();
    let request = projects_request(artifact.clone(), live.path());
    assert_eq!(sync(&request).unwrap().added.len(), 20);
    let after_first = artifact.reads();
    assert_eq!(after_first, 20, "each new file is read once");
    for _ in 0..2 {
        let report = sync(&request).unwrap();
        assert_eq!((report.changed(), report.unchanged), (0, 20));
        assert_eq!(
            artifact.reads(),
            after_first,
            "a no-op resync read the source"
        );
    }

    // One changed file: only that one is read.
    let mut changed = MemArtifact::new("r2", true);
    for i in 0..20 {
        let content = if i == 3 {
            "changed".to_owned()
        } else {
            format!("content {i}")
        };
        changed = changed.file(&format!("projects/p/f{i}.json"), content);
    }
    let changed = Arc::new(changed);
    let mut next = request.clone();
    next.artifact = changed.clone();
    let report = sync(&next).unwrap();
    assert_eq!(paths(&report.modified), ["projects/p/f3.json"]);
    assert_eq!(changed.reads(), 1);
}

fn set_mtime(path: &Path, mtime: SystemTime) {
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
}

fn mtime_of(path: &Path) -> SystemTime {
    std::fs::symlink_metadata(path).unwrap().modified().unwrap()
}

#[test]
fn drift_with_same_size_and_restored_mtime_is_detected_and_rewritten() {
    let artifact = Arc::new(MemArtifact::new("r1", true).file("projects/a/view.json", "original"));
    let live = live();
    let request = projects_request(artifact.clone(), live.path());
    sync(&request).unwrap();
    let path = live.path().join("projects/a/view.json");
    let mtime = mtime_of(&path);
    // In place (same inode), same size, mtime put back: only ctime tells.
    {
        use std::io::Write;
        let mut file = std::fs::File::options().write(true).open(&path).unwrap();
        file.write_all(b"tampered").unwrap();
        file.set_modified(mtime).unwrap();
    }
    assert_eq!(mtime_of(&path), mtime);
    let report = sync(&request).unwrap();
    assert_eq!(paths(&report.modified), ["projects/a/view.json"]);
    assert_eq!(
        report.modified[0].previous_content_id,
        Some(id(b"tampered"))
    );
    assert_eq!(std::fs::read(&path).unwrap(), b"original");
}

#[test]
fn drift_by_replacing_the_file_is_detected_and_rewritten() {
    let artifact = Arc::new(MemArtifact::new("r1", true).file("projects/a/view.json", "original"));
    let live = live();
    let request = projects_request(artifact.clone(), live.path());
    sync(&request).unwrap();
    let path = live.path().join("projects/a/view.json");
    let mtime = mtime_of(&path);
    // An editor's save: new file (new inode), same size, mtime put back.
    let replacement = live.path().join("projects/a/.view.json.swp");
    std::fs::write(&replacement, "tampered").unwrap();
    set_mtime(&replacement, mtime);
    std::fs::rename(&replacement, &path).unwrap();
    let report = sync(&request).unwrap();
    assert_eq!(paths(&report.modified), ["projects/a/view.json"]);
    assert_eq!(std::fs::read(&path).unwrap(), b"original");
    assert_eq!(
        artifact.reads(),
        2,
        "the desired content is read to write it again"
    );
}

/// Regression: on file systems with coarse timestamps a change made in the same clock tick as
/// the manifest write leaves `lstat` unchanged ("racy clean" in Git's terms); the manifest
/// trusted such entries and the drift was never seen.
#[test]
fn drift_in_the_same_timestamp_tick_as_the_manifest_write_is_detected() {
    let artifact = Arc::new(MemArtifact::new("r1", true).file("projects/a/view.json", "original"));
    let live = live();
    let request = projects_request(artifact.clone(), live.path());
    sync(&request).unwrap();
    let path = live.path().join("projects/a/view.json");
    std::fs::write(&path, "tampered").unwrap();
    // Simulate a coarse clock: the manifest records the tampered file's stat (as if the change
    // happened before the engine's lstat within the same tick) and was written in that tick.
    let (manifest, _) = stoker_sync::manifest::load(live.path());
    let mut manifest = manifest.unwrap();
    let metadata = std::fs::symlink_metadata(&path).unwrap();
    manifest.files.get_mut("projects/a/view.json").unwrap().stat =
        stoker_sync::live::Stat::of(&metadata);
    stoker_sync::manifest::store(live.path(), &manifest).unwrap();
    let tick = UNIX_EPOCH
        + Duration::new(
            u64::try_from(metadata.ctime()).unwrap(),
            u32::try_from(metadata.ctime_nsec()).unwrap(),
        );
    set_mtime(&stoker_sync::manifest::path(live.path()), tick);

    let report = sync(&request).unwrap();
    assert_eq!(paths(&report.modified), ["projects/a/view.json"]);
    assert_eq!(std::fs::read(&path).unwrap(), b"original");
    // Repaired, and the source (whose ids are known) is not read for the check.
    let reads = artifact.reads();
    assert_eq!(sync(&request).unwrap().changed(), 0);
    assert_eq!(artifact.reads(), reads);
}

fn guided_scan(live: &Path, scope: &stoker_sync::scope::Scope) -> stoker_sync::live::Scan {
    let (manifest, _) = stoker_sync::manifest::load(live);
    let manifest = manifest.unwrap();
    let written = stoker_sync::manifest::written_at(live).unwrap();
    let guide = stoker_sync::live::Guide {
        dirs: &manifest.dirs,
        written,
    };
    stoker_sync::live::scan_guided(live, scope, Some(guide)).unwrap()
}

fn scope_of(request: &stoker_core::SyncRequest) -> stoker_sync::scope::Scope {
    let listing = request.artifact.list().unwrap();
    stoker_sync::desired::desired_set(&listing, &request.profile, &request.context)
        .unwrap()
        .scope
}

/// After a sync that replaced a deep file in place and added one in a new directory, the
/// manifest's records still vouch for every directory: the replaced file's directory and the new
/// file's ancestors were listed again; the directories above the replaced file, which the rename
/// did not change, kept their records.
#[test]
fn directory_records_stay_valid_after_a_file_is_replaced_in_place() {
    let live = live();
    let first = MemArtifact::new("r1", true)
        .file("projects/a/deep/view.json", "a")
        .file("projects/b/view.json", "b");
    sync(&projects_request(Arc::new(first), live.path())).unwrap();
    let second = MemArtifact::new("r2", true)
        .file("projects/a/deep/view.json", "a, changed")
        .file("projects/b/view.json", "b")
        .file("projects/c/new/x.json", "x");
    let request = projects_request(Arc::new(second), live.path());
    let report = sync(&request).unwrap();
    assert_eq!(paths(&report.modified), ["projects/a/deep/view.json"]);
    assert_eq!(paths(&report.added), ["projects/c/new/x.json"]);

    assert_every_directory_vouched(live.path(), &request, 6);
}

/// The manifest's records vouch for all `dirs` directories (none is listed) and the guided scan
/// sees what a full scan sees. On a coarse clock, directories changed in the manifest's own tick
/// are not trusted (and listed each time): the manifest is dated a second later first.
fn assert_every_directory_vouched(live: &Path, request: &stoker_core::SyncRequest, dirs: usize) {
    let manifest = stoker_sync::manifest::path(live);
    set_mtime(&manifest, mtime_of(&manifest) + Duration::from_secs(1));
    let scope = scope_of(request);
    let scan = guided_scan(live, &scope);
    assert_eq!((scan.listed, scan.vouched), (0, dirs), "{scan:?}");
    assert_eq!(scan.tree, stoker_sync::live::scan(live, &scope).unwrap());
}

/// The drift check without listing every directory: after a sync, the manifest's records vouch
/// for every unchanged directory (only `lstat`s are needed), and a directory where something
/// appeared is listed again, so the stray is found and deleted.
#[test]
fn unchanged_directories_are_not_listed_again_and_a_changed_one_is() {
    let artifact = MemArtifact::new("r1", true)
        .file("projects/a/view.json", "a")
        .file("projects/b/view.json", "b")
        .file("projects/b/deep/x.json", "x");
    let live = live();
    let request = projects_request(Arc::new(artifact), live.path());
    sync(&request).unwrap();
    assert_every_directory_vouched(live.path(), &request, 4);
    let scope = scope_of(&request);

    write(live.path(), "projects/b/deep/stray.json", "left by someone");
    let scan = guided_scan(live.path(), &scope);
    assert_eq!(scan.listed, 1, "only projects/b/deep is listed again");
    assert!(scan.tree.entries.contains_key("projects/b/deep/stray.json"));
    let report = sync(&request).unwrap();
    assert_eq!(paths(&report.deleted), ["projects/b/deep/stray.json"]);
}

/// A directory record is trusted only when the directory is older than the manifest ("racy
/// clean", the rule files follow): on a coarse clock, an entry added in the tick the record was
/// taken in leaves the directory's stat as recorded.
#[test]
fn directory_changed_in_the_tick_of_the_manifest_write_is_listed_again() {
    let artifact = MemArtifact::new("r1", true).file("projects/a/view.json", "a");
    let live = live();
    let request = projects_request(Arc::new(artifact), live.path());
    sync(&request).unwrap();
    write(live.path(), "projects/a/stray.json", "stray");
    // Simulate a coarse clock: the record carries the directory's stat after the change, but
    // not the new name, and the manifest was written in that same tick.
    let (manifest, _) = stoker_sync::manifest::load(live.path());
    let mut manifest = manifest.unwrap();
    let dir = live.path().join("projects/a");
    let metadata = std::fs::symlink_metadata(&dir).unwrap();
    let record = manifest.dirs.get_mut("projects/a").unwrap();
    assert_eq!(record.names, "view.json");
    record.stat = stoker_sync::live::Stat::of(&metadata);
    stoker_sync::manifest::store(live.path(), &manifest).unwrap();
    let tick = UNIX_EPOCH
        + Duration::new(
            u64::try_from(metadata.ctime()).unwrap(),
            u32::try_from(metadata.ctime_nsec()).unwrap(),
        );
    set_mtime(&stoker_sync::manifest::path(live.path()), tick);

    let report = sync(&request).unwrap();
    assert_eq!(paths(&report.deleted), ["projects/a/stray.json"]);
}

/// A manifest of another format version (the pre-release versions 1 to 4 among them) is
/// ignored with a warning: every file is rehashed and every directory listed, the result is the
/// same, and the manifest written is of this version.
#[test]
fn manifest_of_an_older_version_is_ignored_with_a_warning() {
    let artifact = MemArtifact::new("r1", true).file("projects/a/view.json", "a");
    let live = live();
    let request = projects_request(Arc::new(artifact), live.path());
    sync(&request).unwrap();
    let manifest_file = stoker_sync::manifest::path(live.path());
    for version in [1u8, 2, 3, 4] {
        // The version comes first, one byte for small numbers.
        let mut bytes = std::fs::read(&manifest_file).unwrap();
        assert_eq!(u32::from(bytes[0]), stoker_sync::manifest::MANIFEST_VERSION);
        bytes[0] = version;
        std::fs::remove_file(&manifest_file).unwrap();
        std::fs::write(&manifest_file, bytes).unwrap();
        write(live.path(), "projects/a/stray.json", "stray");
        let report = sync(&request).unwrap();
        assert_eq!(paths(&report.deleted), ["projects/a/stray.json"]);
        assert!(
            report
                .warnings
                .iter()
                .any(|w| w.contains(&format!("version {version}"))),
            "{:?}",
            report.warnings
        );
        let (manifest, _) = stoker_sync::manifest::load(live.path());
        assert_eq!(
            manifest.unwrap().version,
            stoker_sync::manifest::MANIFEST_VERSION
        );
    }
}

#[test]
fn corrupt_manifest_is_ignored_and_everything_is_rehashed() {
    let repo = Repo::new();
    repo.file("projects/a/project.json", "{}");
    let live = live();
    let request = projects_request(repo.artifact("r1"), live.path());
    sync(&request).unwrap();
    std::fs::write(stoker_sync::manifest::path(live.path()), "{not json").unwrap();
    write(live.path(), "projects/a/project.json", "[]");
    let report = sync(&request).unwrap();
    assert_eq!(paths(&report.modified), ["projects/a/project.json"]);
    assert_warned(&report, "manifest");
}

#[test]
fn a_held_lock_makes_a_sync_fail_with_locked_naming_the_dir() {
    let repo = Repo::new();
    repo.file("projects/a/project.json", "{}");
    let live = live();
    let lock = stoker_sync::lock::LiveLock::acquire(live.path()).unwrap();
    let result = sync(&projects_request(repo.artifact("r1"), live.path()));
    match &result {
        Err(error @ Error::Locked { live: locked, .. }) => {
            assert_eq!(locked, live.path());
            assert!(
                error
                    .to_string()
                    .contains(&live.path().display().to_string())
            );
        }
        other => panic!("expected Locked, got {other:?}"),
    }
    assert!(!live.path().join("projects").exists());
    drop(lock);
    sync(&projects_request(repo.artifact("r1"), live.path())).unwrap();
}

#[test]
fn noop_resync_does_not_rewrite_the_manifest() {
    let mut artifact = MemArtifact::new("r1", true);
    for i in 0..5 {
        artifact = artifact.file(&format!("projects/p/f{i}.json"), format!("content {i}"));
    }
    let live = live();
    let request = projects_request(Arc::new(artifact), live.path());
    sync(&request).unwrap();
    // The first resync may rehash files written in the manifest's own clock tick and record
    // them; from then on the manifest vouches for everything and is left alone.
    sync(&request).unwrap();
    let manifest = stoker_sync::manifest::path(live.path());
    let before = std::fs::symlink_metadata(&manifest).unwrap();
    let report = sync(&request).unwrap();
    assert_eq!(report.changed(), 0);
    let after = std::fs::symlink_metadata(&manifest).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        (before.ino(), before.mtime_nsec()),
        (after.ino(), after.mtime_nsec())
    );
}

#[test]
fn local_source_id_cache_spares_rereading_unchanged_files() {
    // The local source has no free ids; with an id cache, the ids the engine computed are
    // listed next time, so a resync compares without reading the source.
    let repo = tempfile::tempdir().unwrap();
    for i in 0..5 {
        write(
            repo.path(),
            &format!("projects/p/f{i}.json"),
            format!("content {i}"),
        );
    }
    // Age the files beyond the cache's racy window by using a zero window.
    let cache = tempfile::tempdir().unwrap();
    let source = stoker_core::LocalSource::new(repo.path())
        .with_id_cache(cache.path().join("ids.json"))
        .with_id_cache_min_age(std::time::Duration::ZERO);
    let live = live();
    let first = projects_request(
        Arc::new(source.artifact(stoker_core::Revision::new("1"))),
        live.path(),
    );
    assert_eq!(sync(&first).unwrap().added.len(), 5);
    drop(first);
    let listing =
        stoker_core::Artifact::list(&source.artifact(stoker_core::Revision::new("2"))).unwrap();
    assert!(
        listing.entries.iter().all(|e| e.content_id.is_some()),
        "ids recorded while writing are listed: {listing:?}"
    );
    write(repo.path(), "projects/p/f1.json", "changed");
    let second = projects_request(
        Arc::new(source.artifact(stoker_core::Revision::new("3"))),
        live.path(),
    );
    let report = sync(&second).unwrap();
    assert_eq!(paths(&report.modified), vec!["projects/p/f1.json"]);
    assert_eq!(report.unchanged, 4);
}

/// Files replaced by a swap leave their old selves under temporary names until removed; the
/// manifest records each directory as it is after that (a record taken before the removal
/// would not match the directory, and the next sync would list it again).
#[test]
fn directories_of_replaced_files_are_recorded_as_they_end() {
    let repo = many_files(16);
    let live = live();
    let mappings = vec![map("views", "views")];
    sync(&request(repo.artifact("r1"), mappings.clone(), live.path())).unwrap();
    for index in 0..16 {
        repo.file(
            &format!("views/v{index:02}/view.json"),
            format!("{{\"v\":{index},\"changed\":true}}"),
        );
    }
    let report = sync(&request(repo.artifact("r2"), mappings, live.path())).unwrap();
    assert_eq!(report.modified.len(), 16);
    let manifest = stoker_sync::manifest::read(live.path()).manifest.unwrap();
    for index in 0..16 {
        let dir = format!("views/v{index:02}");
        let record = manifest
            .dirs
            .get(&dir)
            .unwrap_or_else(|| panic!("{dir} not recorded"));
        let now = std::fs::symlink_metadata(live.path().join(&dir)).unwrap();
        assert_eq!(record.stat, stoker_sync::live::Stat::of(&now), "{dir}");
        assert_eq!(record.names().collect::<Vec<_>>(), ["view.json"], "{dir}");
    }
    assert_eq!(snapshot_live(live.path()), snapshot(repo.path()));
}
