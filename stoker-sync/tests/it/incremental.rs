//! The incremental plan (`stoker_sync::incremental`): a sync between two revisions the source
//! can diff plans only the changed paths' destinations, ends exactly where a full sync ends,
//! leaves drift elsewhere to the next sync of the same revision, and falls back to the full plan
//! whenever more than the changed paths could change.
//!
//! The tests call the engine directly (plan, then apply), so each holds a `no_fork` guard
//! throughout: a plan holds the live directory's lock (see `common::fork`).

use std::path::Path;
use std::sync::Arc;

use crate::common::*;
use stoker_core::{EntryKind, Mapping, Revision, SyncReport, SyncRequest, SyncStrategy};
use stoker_sync::{MergeStrategy, PlanOptions};

/// Commit 1 of a small gateway repository.
fn commit1() -> MemArtifact {
    let mut artifact = MemArtifact::new("c1", true)
        .file("config/db.json", r#"{"host": "db1"}"#)
        .file("config/tags.json", "[]")
        .file("overlay/b/view.json", "overlay b")
        .file("overlay/a/views/v2.json", "overlay a 2")
        .file("overlay/c/extra.json", "overlay c")
        .with("scripts/run.sh", EntryKind::Executable, "#!/bin/sh\n")
        .file("projects/empty-soon/only.json", "only");
    for project in ["a", "b", "c"] {
        artifact = artifact.file(&format!("projects/{project}/project.json"), project);
        for view in 0..5 {
            artifact = artifact.file(
                &format!("projects/{project}/views/v{view}.json"),
                format!("{project} {view}"),
            );
        }
    }
    artifact
}

/// Commit 2: a few files modified, added and deleted, an executable bit dropped, a directory
/// emptied, an overlay removed (the earlier mapping's file shows through).
fn commit2() -> MemArtifact {
    let mut artifact = MemArtifact::new("c2", true)
        .file("config/db.json", r#"{"host": "db2"}"#)
        .file("config/tags.json", "[]")
        .file("overlay/c/extra.json", "overlay c")
        .file("scripts/run.sh", "#!/bin/sh\n");
    for project in ["a", "b", "c", "d"] {
        artifact = artifact.file(&format!("projects/{project}/project.json"), project);
        for view in 0..5 {
            let content = if project == "a" && view == 1 {
                "a 1, edited".to_owned()
            } else {
                format!("{project} {view}")
            };
            if !(project == "c" && view == 4) {
                artifact =
                    artifact.file(&format!("projects/{project}/views/v{view}.json"), content);
            }
        }
    }
    artifact
}

fn mappings() -> Vec<Mapping> {
    vec![
        map("projects", "projects"),
        map("overlay", "projects"),
        map("config/db.json", "config/db.json"),
        map("config/tags.json", "tags.json"),
        map("scripts", "scripts"),
    ]
}

/// A request to sync `next` after `previous`, with the paths changed between them.
fn next_request(
    previous: &MemArtifact,
    next: Arc<MemArtifact>,
    mappings: Vec<Mapping>,
    live: &Path,
) -> SyncRequest {
    let changed = next.changed_since(previous);
    let mut request = request(next, mappings, live);
    request.previous = Some(Revision::new(previous.revision_id()));
    request.changed_paths = Some(changed);
    request
}

/// The plan of `engine` for syncing `next` after `previous`, which must be incremental.
fn incremental_plan(
    engine: &MergeStrategy,
    previous: &MemArtifact,
    next: Arc<MemArtifact>,
    live: &Path,
) -> stoker_sync::Plan {
    let plan = engine
        .plan(&next_request(previous, next, mappings(), live))
        .unwrap();
    assert!(plan.is_incremental(), "the plan was not incremental");
    plan
}

/// The report without its timing.
fn comparable(report: &SyncReport) -> String {
    let mut report = report.clone();
    report.duration = Default::default();
    format!("{report:?}")
}

/// The manifest's content ids and plan record (stat fields differ between directories).
fn manifest_ids(live: &Path) -> String {
    let (manifest, warning) = stoker_sync::manifest::load(live);
    assert_eq!(warning, None);
    let manifest = manifest.unwrap();
    let ids: Vec<(String, String)> = manifest
        .files
        .iter()
        .map(|(path, entry)| (path.to_owned(), entry.id.to_string()))
        .collect();
    format!("{:?} {:?} {ids:?}", manifest.revision, manifest.plan)
}

/// Syncs `first` then `second` (with the paths changed between them) into a fresh directory,
/// and the same without the changed paths into another; returns whether the second plan was
/// incremental and its report, after checking that both end in the same state with the same
/// report (or fail with the same error).
fn compare_with_full(
    first: MemArtifact,
    second: MemArtifact,
    mappings: Vec<Mapping>,
    prepare_live: impl Fn(&Path),
) -> (bool, Option<SyncReport>, tempfile::TempDir) {
    let first = Arc::new(first);
    let second = Arc::new(second);
    let incremental_live = tempfile::tempdir().unwrap();
    let full_live = tempfile::tempdir().unwrap();
    for live in [incremental_live.path(), full_live.path()] {
        sync(&request(first.clone(), mappings.clone(), live)).unwrap();
        prepare_live(live);
    }

    let engine = MergeStrategy::default();
    let incremental_request = next_request(
        &first,
        second.clone(),
        mappings.clone(),
        incremental_live.path(),
    );
    let (lists, reads) = (second.lists(), second.reads());
    let mut incremental = false;
    let report = engine.plan(&incremental_request).and_then(|plan| {
        incremental = plan.is_incremental();
        let writes = plan.writes().len();
        let report = engine.apply(plan);
        if incremental {
            assert_eq!(second.lists(), lists, "an incremental sync listed the tree");
            assert_eq!(second.reads(), reads + writes, "read more than it wrote");
        }
        report
    });

    let mut full_request = request(second.clone(), mappings, full_live.path());
    full_request.previous = Some(Revision::new(first.revision_id()));
    let full_report = sync(&full_request);

    match (&report, &full_report) {
        (Ok(report), Ok(full_report)) => {
            assert_eq!(comparable(report), comparable(full_report));
            assert_eq!(
                manifest_ids(incremental_live.path()),
                manifest_ids(full_live.path())
            );
        }
        (Err(error), Err(full_error)) => assert_eq!(
            error
                .to_string()
                .replace(&incremental_live.path().display().to_string(), "LIVE"),
            full_error
                .to_string()
                .replace(&full_live.path().display().to_string(), "LIVE")
        ),
        (report, full_report) => {
            panic!("incremental: {report:?}\nfull: {full_report:?}")
        }
    }
    assert_eq!(
        snapshot_live(incremental_live.path()),
        snapshot_live(full_live.path())
    );
    (incremental, report.ok(), incremental_live)
}

#[test]
fn a_commit_plans_only_what_it_changed_and_ends_where_a_full_sync_ends() {
    let _no_fork = no_fork();
    let (incremental, report, live) = compare_with_full(commit1(), commit2(), mappings(), |_| {});
    assert!(incremental, "the plan was not incremental");
    let report = report.unwrap();
    assert_eq!(
        paths(&report.added),
        [
            "projects/d/project.json",
            "projects/d/views/v0.json",
            "projects/d/views/v1.json",
            "projects/d/views/v2.json",
            "projects/d/views/v3.json",
            "projects/d/views/v4.json",
        ]
    );
    // v2.json: the overlay's file is gone, the projects mapping's shows through.
    assert_eq!(
        paths(&report.modified),
        [
            "config/db.json",
            "projects/a/views/v1.json",
            "projects/a/views/v2.json",
            "scripts/run.sh"
        ]
    );
    assert_eq!(
        paths(&report.deleted),
        [
            "projects/b/view.json",
            "projects/c/views/v4.json",
            "projects/empty-soon/only.json"
        ]
    );
    assert_eq!(report.projects, ["a", "b", "c", "d"]);
    // The emptied directory is pruned; the executable bit is gone.
    assert!(!live.path().join("projects/empty-soon").exists());
    let mode = std::fs::metadata(live.path().join("scripts/run.sh"))
        .unwrap()
        .permissions();
    assert_eq!(std::os::unix::fs::PermissionsExt::mode(&mode) & 0o111, 0);
}

#[test]
fn a_patch_without_file_applies_to_the_mapped_file_in_an_incremental_plan_too() {
    let _no_fork = no_fork();
    let mut patched = mappings();
    // config/db.json changes between the commits: the incremental plan patches it again.
    patched[2].patches = vec![stoker_core::Patch {
        file: None,
        ..patch("unused", &[("port", "5432")])
    }];
    let (first, second) = (Arc::new(commit1()), Arc::new(commit2()));
    let live = tempfile::tempdir().unwrap();
    sync(&request(first.clone(), patched.clone(), live.path())).unwrap();
    assert_eq!(
        std::fs::read_to_string(live.path().join("config/db.json")).unwrap(),
        r#"{"host": "db1","port": 5432}"#
    );
    let engine = MergeStrategy::default();
    let plan = engine
        .plan(&next_request(&first, second, patched, live.path()))
        .unwrap();
    assert!(plan.is_incremental(), "the plan was not incremental");
    let report = engine.apply(plan).unwrap();
    assert!(paths(&report.modified).contains(&"config/db.json"));
    assert_eq!(
        std::fs::read_to_string(live.path().join("config/db.json")).unwrap(),
        r#"{"host": "db2","port": 5432}"#
    );
}

#[test]
fn drift_outside_the_commit_waits_for_the_resync_or_is_repaired_at_once_on_request() {
    let _no_fork = no_fork();
    for full_drift_check in [false, true] {
        let first = Arc::new(commit1());
        let second = Arc::new(commit2());
        let live = tempfile::tempdir().unwrap();
        sync(&request(first.clone(), mappings(), live.path())).unwrap();
        // Files written in the manifest's own clock tick are checked by every sync until a
        // resync in a later tick records them: let that happen first, so the hand edit below
        // is in a file the manifest vouches for.
        std::thread::sleep(std::time::Duration::from_millis(20));
        let mut resync = request(first.clone(), mappings(), live.path());
        resync.previous = Some(Revision::new("c1"));
        resync.changed_paths = Some(Vec::new());
        sync(&resync).unwrap();
        // Edited by hand: a file the commit does not touch, and an extra file.
        write(live.path(), "projects/b/views/v0.json", "edited by hand");
        write(live.path(), "projects/b/stray.json", "stray");

        let engine = MergeStrategy::default().with_planning(PlanOptions { full_drift_check });
        let request = next_request(&first, second.clone(), mappings(), live.path());
        let plan = engine.plan(&request).unwrap();
        assert_eq!(plan.is_incremental(), !full_drift_check);
        engine.apply(plan).unwrap();
        let edited = std::fs::read_to_string(live.path().join("projects/b/views/v0.json")).unwrap();
        let stray = live.path().join("projects/b/stray.json").exists();
        if full_drift_check {
            assert_eq!(edited, "b 0");
            assert!(!stray);
        } else {
            assert_eq!(edited, "edited by hand");
            assert!(stray);
        }
        // The commit's own changes landed either way.
        assert_eq!(
            std::fs::read_to_string(live.path().join("config/db.json")).unwrap(),
            r#"{"host": "db2"}"#
        );

        // The next sync of the same revision compares everything and repairs the drift.
        let mut resync = crate::common::request(second.clone(), mappings(), live.path());
        resync.previous = Some(Revision::new("c2"));
        resync.changed_paths = Some(Vec::new());
        let plan = engine.plan(&resync).unwrap();
        assert!(!plan.is_incremental());
        let report = engine.apply(plan).unwrap();
        if full_drift_check {
            assert_eq!(report.changed(), 0);
        } else {
            assert_eq!(paths(&report.modified), ["projects/b/views/v0.json"]);
            assert_eq!(paths(&report.deleted), ["projects/b/stray.json"]);
        }
        assert_eq!(
            std::fs::read_to_string(live.path().join("projects/b/views/v0.json")).unwrap(),
            "b 0"
        );
    }
}

#[test]
fn a_change_beyond_the_changed_paths_falls_back_to_the_full_plan_and_ends_the_same() {
    let _no_fork = no_fork();
    type Case = (
        &'static str,
        fn(MemArtifact) -> MemArtifact,
        fn(&Path),
        fn(Vec<Mapping>) -> Vec<Mapping>,
    );
    let same_mappings: fn(Vec<Mapping>) -> Vec<Mapping> = |m| m;
    let nothing: fn(&Path) = |_| {};
    let cases: Vec<Case> = vec![
        (
            "a file mapping's source is deleted",
            |a| a.without("config/db.json"),
            nothing,
            same_mappings,
        ),
        (
            "a file appears where a directory mapping's source was a directory",
            |a| a.without_below("scripts").file("scripts", "now a file"),
            nothing,
            same_mappings,
        ),
        (
            "a symlink is added",
            |a| a.with("projects/a/link", EntryKind::Symlink, "target"),
            nothing,
            same_mappings,
        ),
        (
            "a skipped mapping's source appears",
            |a| a.file("site/extra.json", "{}"),
            nothing,
            |mut m| {
                m.push(map("site", "projects/site"));
                m
            },
        ),
        (
            "a directory mapping's source loses its last file",
            |a| a.without_below("overlay"),
            nothing,
            same_mappings,
        ),
        (
            "a live directory stands where a changed file goes",
            |a| a.file("projects/a/views/v1.json", "changed"),
            |live| {
                std::fs::remove_file(live.join("projects/a/views/v1.json")).unwrap();
                write(live, "projects/a/views/v1.json/inside", "x");
            },
            same_mappings,
        ),
        (
            "a file stands in the live directory where a changed file's directory is",
            |a| a.file("projects/a/views/v1.json", "changed"),
            |live| {
                std::fs::remove_dir_all(live.join("projects/a/views")).unwrap();
                write(live, "projects/a/views", "a file now");
            },
            same_mappings,
        ),
        (
            "a symlink stands in the live directory above a changed file",
            |a| a.file("projects/a/views/v1.json", "changed"),
            |live| {
                // The same files, reached through a symlink to a directory no mapping manages.
                let views = live.join("projects/a/views");
                std::fs::rename(&views, live.join("unmanaged-views")).unwrap();
                std::os::unix::fs::symlink("../../unmanaged-views", &views).unwrap();
            },
            same_mappings,
        ),
        (
            "a file becomes a directory",
            |a| {
                a.without("projects/a/views/v0.json")
                    .file("projects/a/views/v0.json/deeper.json", "x")
            },
            nothing,
            same_mappings,
        ),
    ];
    for (name, change, prepare_live, adjust) in cases {
        let first = commit1();
        let second = change(commit1().renamed("c2"));
        let mappings = adjust(mappings());
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            compare_with_full(first, second, mappings, prepare_live)
        }));
        match result {
            Ok((incremental, _, _)) => assert!(!incremental, "{name}: the plan was incremental"),
            Err(panic) => {
                eprintln!("case: {name}");
                std::panic::resume_unwind(panic);
            }
        }
    }
}

#[test]
fn files_the_manifest_cannot_vouch_for_are_checked_by_an_incremental_sync() {
    let _no_fork = no_fork();
    let first = Arc::new(commit1());
    let second = Arc::new(commit2());
    let live = tempfile::tempdir().unwrap();
    sync(&request(first.clone(), mappings(), live.path())).unwrap();
    write(live.path(), "projects/b/views/v0.json", "edited by hand");
    // The manifest is as old as the epoch: no recorded file is older than it ("racy clean").
    std::fs::File::options()
        .write(true)
        .open(stoker_sync::manifest::path(live.path()))
        .unwrap()
        .set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(1))
        .unwrap();
    let engine = MergeStrategy::default();
    let plan = engine
        .plan(&next_request(&first, second, mappings(), live.path()))
        .unwrap();
    assert!(plan.is_incremental());
    let report = engine.apply(plan).unwrap();
    assert!(
        paths(&report.modified).contains(&"projects/b/views/v0.json"),
        "{:?}",
        report.modified
    );
    assert_eq!(
        std::fs::read_to_string(live.path().join("projects/b/views/v0.json")).unwrap(),
        "b 0"
    );
}

#[test]
fn a_changed_profile_or_variable_plans_everything() {
    let _no_fork = no_fork();
    let first = Arc::new(commit1());
    let second = Arc::new(commit1().renamed("c2").file("config/db.json", "{}"));
    let live = tempfile::tempdir().unwrap();
    sync(&request(first.clone(), mappings(), live.path())).unwrap();
    let engine = MergeStrategy::default();

    let mut with_var = next_request(&first, second.clone(), mappings(), live.path());
    with_var.context.vars.insert("site".into(), "north".into());
    assert!(!engine.plan(&with_var).unwrap().is_incremental());

    let mut fewer = mappings();
    fewer.pop();
    let with_fewer = next_request(&first, second.clone(), fewer, live.path());
    assert!(!engine.plan(&with_fewer).unwrap().is_incremental());

    let unchanged = next_request(&first, second, mappings(), live.path());
    assert!(engine.plan(&unchanged).unwrap().is_incremental());
}

#[test]
fn templates_that_read_the_commit_are_rendered_again_by_every_sync() {
    let _no_fork = no_fork();
    let mapping = Mapping {
        template: true,
        ..map("config", "config")
    };
    let first = Arc::new(
        MemArtifact::new("c1", true)
            .file("config/build.txt", "built from {{.Commit}}")
            .file("config/site.txt", "static"),
    );
    let second = Arc::new(
        MemArtifact::new("c2", true)
            .file("config/build.txt", "built from {{.Commit}}")
            .file("config/site.txt", "static, edited"),
    );
    let live = tempfile::tempdir().unwrap();
    let mut request1 = request(first.clone(), vec![mapping.clone()], live.path());
    request1.context.commit = Some("c1".into());
    sync(&request1).unwrap();
    assert_eq!(
        std::fs::read_to_string(live.path().join("config/build.txt")).unwrap(),
        "built from c1"
    );

    let mut request2 = next_request(&first, second, vec![mapping], live.path());
    request2.context.commit = Some("c2".into());
    let engine = MergeStrategy::default();
    let plan = engine.plan(&request2).unwrap();
    assert!(plan.is_incremental());
    let report = engine.apply(plan).unwrap();
    assert_eq!(
        paths(&report.modified),
        ["config/build.txt", "config/site.txt"]
    );
    assert_eq!(
        std::fs::read_to_string(live.path().join("config/build.txt")).unwrap(),
        "built from c2"
    );
}

#[test]
fn a_dry_run_plans_incrementally_and_writes_nothing() {
    let _no_fork = no_fork();
    let first = Arc::new(commit1());
    let second = Arc::new(commit2());
    let live = tempfile::tempdir().unwrap();
    sync(&request(first.clone(), mappings(), live.path())).unwrap();
    let before = fingerprints(live.path());
    let mut request = next_request(&first, second, mappings(), live.path());
    request.dry_run = true;
    let engine = MergeStrategy::default();
    let plan = engine.plan(&request).unwrap();
    assert!(plan.is_incremental());
    let report = engine.apply(plan).unwrap();
    assert!(report.dry_run);
    assert_eq!(report.added.len(), 6);
    assert_eq!(fingerprints(live.path()), before);
}

/// Incremental syncs append what they changed to the manifest's log and leave the manifest
/// file as it is; read back, manifest and log say what a full sync into an empty directory
/// records.
#[test]
fn incremental_syncs_append_to_the_manifest_log_and_read_back_as_a_full_sync_records() {
    let _no_fork = no_fork();
    use std::os::unix::fs::MetadataExt;
    let first = Arc::new(commit1());
    let second = Arc::new(commit2());
    let live = tempfile::tempdir().unwrap();
    sync(&request(first.clone(), mappings(), live.path())).unwrap();
    let manifest_file = stoker_sync::manifest::path(live.path());
    let log_file = stoker_sync::manifest::log_path(live.path());
    let inode = std::fs::metadata(&manifest_file).unwrap().ino();
    assert!(!log_file.exists());

    let engine = MergeStrategy::default();
    let mut previous = first.clone();
    let mut log_len = 0;
    for next in [second.clone(), first.clone(), second] {
        let plan = incremental_plan(&engine, &previous, next.clone(), live.path());
        let report = engine.apply(plan).unwrap();

        assert_eq!(std::fs::metadata(&manifest_file).unwrap().ino(), inode);
        let grown = std::fs::metadata(&log_file).unwrap().len();
        assert!(grown > log_len, "the log did not grow");
        log_len = grown;

        let fresh = tempfile::tempdir().unwrap();
        let full = sync(&request(next.clone(), mappings(), fresh.path())).unwrap();
        assert_eq!(manifest_ids(live.path()), manifest_ids(fresh.path()));
        assert_eq!(snapshot_live(live.path()), snapshot_live(fresh.path()));
        // Every desired file is counted once: written, or unchanged.
        let written = (report.added.len() + report.modified.len()) as u64;
        assert_eq!(report.unchanged + written, full.added.len() as u64);
        assert_eq!(report.projects, full.projects);
        previous = next;
    }
}

/// A sync killed while appending to the log leaves a torn record: the next sync says so,
/// plans every file, and writes the manifest whole again.
#[test]
fn a_torn_manifest_log_makes_the_next_sync_plan_every_file_and_rewrite_the_manifest() {
    let _no_fork = no_fork();
    let first = Arc::new(commit1());
    let second = Arc::new(commit2());
    let live = tempfile::tempdir().unwrap();
    sync(&request(first.clone(), mappings(), live.path())).unwrap();
    let engine = MergeStrategy::default();
    let plan = incremental_plan(&engine, &first, second.clone(), live.path());
    engine.apply(plan).unwrap();
    let log_file = stoker_sync::manifest::log_path(live.path());
    let log = std::fs::read(&log_file).unwrap();
    std::fs::write(&log_file, &log[..log.len() - 1]).unwrap();

    let plan = engine
        .plan(&next_request(
            &second,
            first.clone(),
            mappings(),
            live.path(),
        ))
        .unwrap();
    assert!(!plan.is_incremental());
    let report = engine.apply(plan).unwrap();
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("incomplete or damaged record")),
        "{:?}",
        report.warnings
    );
    assert!(!log_file.exists());
    let (manifest, warning) = stoker_sync::manifest::load(live.path());
    assert_eq!(warning, None);
    assert_eq!(manifest.unwrap().revision.unwrap().id, first.revision_id());
    let fresh = tempfile::tempdir().unwrap();
    sync(&request(first, mappings(), fresh.path())).unwrap();
    assert_eq!(manifest_ids(live.path()), manifest_ids(fresh.path()));
    assert_eq!(snapshot_live(live.path()), snapshot_live(fresh.path()));
}

/// A sync interrupted after writing some files leaves them at a revision the manifest does not
/// record. The diff from the manifest's revision to the next one does not cover a file that
/// goes back to what the manifest recorded: the next sync plans every file and repairs it.
#[test]
fn a_sync_after_an_interrupted_one_plans_every_file() {
    let _no_fork = no_fork();
    use stoker_sync::ApplyOptions;
    let first = Arc::new(commit1());
    let second = Arc::new(
        commit1()
            .renamed("c2")
            .file("config/db.json", r#"{"host": "db2"}"#),
    );
    // db.json as in commit 1 again; tags.json changed.
    let third = Arc::new(commit1().renamed("c3").file("config/tags.json", "[1]"));
    let live = tempfile::tempdir().unwrap();
    sync(&request(first.clone(), mappings(), live.path())).unwrap();

    // Killed right after db.json is renamed into place (steps 1 and 2: before and after the
    // rename), before the manifest records commit 2.
    let crashing = MergeStrategy::new(ApplyOptions {
        fail_at_step: Some(2),
        ..ApplyOptions::default()
    });
    let plan = incremental_plan(&crashing, &first, second.clone(), live.path());
    assert!(matches!(
        crashing.apply(plan),
        Err(stoker_sync::Error::Injected(2))
    ));
    let db = live.path().join("config/db.json");
    assert_eq!(std::fs::read_to_string(&db).unwrap(), r#"{"host": "db2"}"#);

    // The manifest still says commit 1: the diff to commit 3 does not list db.json.
    let next = next_request(&first, third.clone(), mappings(), live.path());
    assert!(
        !next
            .changed_paths
            .as_ref()
            .unwrap()
            .contains(&"config/db.json".to_owned())
    );
    let engine = MergeStrategy::default();
    let plan = engine.plan(&next).unwrap();
    assert!(
        !plan.is_incremental(),
        "planned from a diff that misses the interrupted sync's files"
    );
    engine.apply(plan).unwrap();
    assert_eq!(std::fs::read_to_string(&db).unwrap(), r#"{"host": "db1"}"#);
    let fresh = tempfile::tempdir().unwrap();
    sync(&request(third, mappings(), fresh.path())).unwrap();
    assert_eq!(snapshot_live(live.path()), snapshot_live(fresh.path()));
}

/// A changed path the last desired set skipped with a warning (a symlink, a name reserved for
/// Stoker's temporaries) may be skipped no longer: the full plan works out the warnings, and
/// the sync ends as a full one does, without the stale warning.
#[test]
fn a_changed_path_that_was_skipped_falls_back_to_the_full_plan() {
    let _no_fork = no_fork();
    let reserved = format!("projects/a/{}x.json", stoker_sync::scope::TEMP_PREFIX);
    let cases = [
        (
            "a skipped symlink becomes a file",
            commit1().with("projects/a/link", EntryKind::Symlink, "target"),
            commit1()
                .renamed("c2")
                .file("projects/a/link", "now a file"),
        ),
        (
            "a file with a reserved name is removed",
            commit1().file(&reserved, "{}"),
            commit1().renamed("c2"),
        ),
    ];
    for (name, first, second) in cases {
        let (incremental, report, _live) = compare_with_full(first, second, mappings(), |_| {});
        assert!(!incremental, "{name}: the plan was incremental");
        let report = report.unwrap();
        assert!(report.warnings.is_empty(), "{name}: {:?}", report.warnings);
    }
}
