//! The engine's own state directory, `live/.stoker/`: nothing in it is followed through a
//! symlink, and nothing there that Stoker did not write is deleted (issue 15, items 2 and 10).
//! One regression test per bug, named after it.

use std::path::Path;

use crate::common::*;
use stoker_sync::{ApplyOptions, Error};

fn live() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

/// A name of the kind Stoker gives its diff reports (a time, then the revision), the `n`th
/// second of 2020-01-01: older than any report a sync writes now.
fn report_name(n: usize) -> String {
    format!("20200101T0000{n:02}.000000000Z-0123456.json")
}

/// Keeps two reports, so that a sync prunes.
fn keeping_two() -> ApplyOptions {
    ApplyOptions {
        keep_reports: 2,
        ..ApplyOptions::default()
    }
}

/// A repository with one file, and the request syncing its revision `revision` (the file holds
/// the revision) into `live`.
fn revision(repo: &Repo, revision: &str, live: &Path) -> stoker_core::SyncRequest {
    repo.file("projects/a/project.json", revision);
    projects_request(repo.artifact(revision), live)
}

/// Asserts that `result` is the error refusing `path`, and that its message names it.
fn assert_refused(result: stoker_sync::Result<stoker_core::SyncReport>, path: &Path) {
    let error = match result {
        Ok(report) => panic!("expected {} to be refused, got {report:?}", path.display()),
        Err(error) => error,
    };
    assert!(
        matches!(&error, Error::UnsafeLive { path: at, .. } if at == path),
        "{error:?}"
    );
    assert!(
        error.to_string().contains(&path.display().to_string()),
        "{error}"
    );
}

/// The diff reports Stoker wrote (regular files named as it names them), by `toCommit`.
fn stoker_reports(live: &Path) -> Vec<String> {
    let mut kept: Vec<String> = std::fs::read_dir(live.join(".stoker/reports"))
        .unwrap()
        .map(|entry| entry.unwrap())
        .filter(|entry| entry.file_type().unwrap().is_file())
        .filter(|entry| {
            let name = entry.file_name().into_string().unwrap();
            name.starts_with("20") && name.ends_with(".json") && !name.starts_with("2020")
        })
        .map(|entry| {
            let report: serde_json::Value =
                serde_json::from_slice(&std::fs::read(entry.path()).unwrap()).unwrap();
            report["toCommit"].as_str().unwrap().to_owned()
        })
        .collect();
    kept.sort();
    kept
}

/// Regression (issue 15 item 2): with `.stoker/reports` a symlink to a directory outside the
/// live directory, a sync wrote its report there and pruned "old reports" in it, deleting files
/// outside the destination, with exit 0 and no warning.
#[test]
fn reports_dir_symlink_is_refused_and_nothing_outside_is_touched() {
    let outside = tempfile::tempdir().unwrap();
    for n in 0..10 {
        write(outside.path(), &report_name(n), format!("{{\"n\":{n}}}"));
    }
    write(outside.path(), "notes.txt", "someone's notes");
    write(
        outside.path(),
        ".stoker-tmp-1-0-0000",
        "named like a temporary",
    );
    write(outside.path(), "sub/kept.json", "{}");
    let repo = Repo::new();
    let live = live();
    sync_with(keeping_two(), &revision(&repo, "r1", live.path())).unwrap();
    let reports = live.path().join(".stoker/reports");
    std::fs::remove_dir_all(&reports).unwrap();
    std::os::unix::fs::symlink(outside.path(), &reports).unwrap();
    let before = fingerprints(outside.path());

    let request = revision(&repo, "r2", live.path());
    assert_refused(dry_run(&request), &reports);
    assert_refused(sync_with(keeping_two(), &request), &reports);
    assert_eq!(fingerprints(outside.path()), before);
    // Refused before anything was written.
    assert_eq!(
        snapshot_live(live.path())["projects/a/project.json"],
        text("r1")
    );
    assert!(
        std::fs::symlink_metadata(&reports)
            .unwrap()
            .file_type()
            .is_symlink()
    );
}

/// `.stoker/reports` that is a file (or anything but a directory) is refused the same way, and
/// left as it is.
#[test]
fn reports_path_that_is_not_a_directory_is_refused() {
    let repo = Repo::new();
    let live = live();
    sync(&revision(&repo, "r1", live.path())).unwrap();
    let reports = live.path().join(".stoker/reports");
    std::fs::remove_dir_all(&reports).unwrap();
    std::fs::write(&reports, "someone's file").unwrap();

    assert_refused(sync(&revision(&repo, "r2", live.path())), &reports);
    assert_eq!(std::fs::read(&reports).unwrap(), b"someone's file");
}

/// Regression (issue 15 item 2): a symlinked `.stoker` was refused by a sync but followed by a
/// dry run (which read the manifest through it) when the lock file was not there.
#[test]
fn state_dir_symlink_is_refused() {
    let outside = tempfile::tempdir().unwrap();
    let repo = Repo::new();
    let live = live();
    sync(&revision(&repo, "r1", live.path())).unwrap();
    // The state directory moved outside, and linked back.
    let state = live.path().join(".stoker");
    let moved = outside.path().join("state");
    std::fs::rename(&state, &moved).unwrap();
    std::fs::remove_file(moved.join("lock")).unwrap();
    write(&moved, ".stoker-tmp-1-0-0000", "named like a temporary");
    write(
        &moved,
        "reports/.stoker-tmp-2-0-0000",
        "named like a temporary",
    );
    std::os::unix::fs::symlink(&moved, &state).unwrap();
    let before = fingerprints(outside.path());

    let request = revision(&repo, "r2", live.path());
    assert_refused(dry_run(&request), &state);
    assert_refused(sync(&request), &state);
    assert_eq!(fingerprints(outside.path()), before);
    assert_eq!(
        snapshot_live(live.path())["projects/a/project.json"],
        text("r1")
    );

    // A file there is refused too, and kept.
    std::fs::remove_file(&state).unwrap();
    std::fs::write(&state, "someone's file").unwrap();
    assert_refused(dry_run(&request), &state);
    assert_refused(sync(&request), &state);
    assert_eq!(std::fs::read(&state).unwrap(), b"someone's file");
}

/// Regression (issue 15 item 2): report pruning removed the oldest `*.json` entries in
/// `.stoker/reports` whatever they were: a symlink named like a report (removed), a file that
/// is no report (removed). Only Stoker's own reports — regular files named as it names them —
/// are pruned, and only they count towards `keep_reports`.
#[test]
fn report_pruning_skips_entries_stoker_did_not_write() {
    let outside = tempfile::tempdir().unwrap();
    write(outside.path(), "precious.json", "precious");
    let repo = Repo::new();
    let live = live();
    sync_with(keeping_two(), &revision(&repo, "r1", live.path())).unwrap();
    let reports = live.path().join(".stoker/reports");
    std::os::unix::fs::symlink(
        outside.path().join("precious.json"),
        reports.join(report_name(0)),
    )
    .unwrap();
    write(&reports, &format!("{}/inside.txt", report_name(1)), "kept");
    write(&reports, "notes.json", "someone's notes");
    write(&reports, &format!("{}.bak", report_name(2)), "a copy");
    let _socket = std::os::unix::net::UnixListener::bind(reports.join(report_name(3))).unwrap();
    let outside_before = fingerprints(outside.path());
    let foreign_before: Vec<(String, Fingerprint)> = fingerprints(&reports)
        .into_iter()
        .filter(|(path, _)| path.starts_with("2020") || path == "notes.json")
        .collect();
    assert_eq!(foreign_before.len(), 6);

    for name in ["r2", "r3", "r4"] {
        let report = sync_with(keeping_two(), &revision(&repo, name, live.path())).unwrap();
        assert_eq!(report.changed(), 1);
    }
    assert_eq!(fingerprints(outside.path()), outside_before);
    let after = fingerprints(&reports);
    for (path, fingerprint) in &foreign_before {
        assert_eq!(after.get(path), Some(fingerprint), "{path}");
    }
    assert_eq!(stoker_reports(live.path()), ["r3", "r4"]);
}

/// Regression (issue 15 item 10): a directory at `.stoker/journal.json` made every later sync
/// fail until a person removed it. It is treated as a corrupt journal: the sync plans every
/// file and says so in a warning. A directory holding something is moved aside in `.stoker/`,
/// never emptied; an empty one is removed.
#[test]
fn journal_that_is_a_directory_is_treated_as_corrupt() {
    let repo = Repo::new();
    let live = live();
    sync(&revision(&repo, "r1", live.path())).unwrap();
    let state = live.path().join(".stoker");
    let journal = state.join("journal.json");
    write(&journal, "kept.txt", "a person's file");

    let request = revision(&repo, "r2", live.path());
    let report = sync(&request).unwrap();
    assert_eq!(paths(&report.modified), ["projects/a/project.json"]);
    assert_warned(&report, "journal.json");
    assert!(std::fs::symlink_metadata(&journal).is_err());
    let set_aside: Vec<String> = snapshot(&state)
        .into_keys()
        .filter(|path| path.starts_with("journal.json.") && path.ends_with("/kept.txt"))
        .collect();
    assert_eq!(set_aside.len(), 1, "{set_aside:?}");
    assert_eq!(
        std::fs::read(state.join(&set_aside[0])).unwrap(),
        b"a person's file"
    );
    // Converged: the next sync has nothing to do and nothing to say.
    let report = sync(&request).unwrap();
    assert_eq!(report.changed(), 0);
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);

    // An empty directory (what a bind mount of a missing file leaves) is simply removed.
    std::fs::create_dir(&journal).unwrap();
    let report = sync(&request).unwrap();
    assert_warned(&report, "journal.json");
    assert!(std::fs::symlink_metadata(&journal).is_err());
    let entries_set_aside = std::fs::read_dir(&state)
        .unwrap()
        .filter(|entry| {
            let name = entry.as_ref().unwrap().file_name();
            name.to_string_lossy().starts_with("journal.json.")
        })
        .count();
    assert_eq!(entries_set_aside, 1);
}

/// The manifest files and the journal read through a symlink: the manifest was used as the
/// link's target said, the journal followed. Now a symlink there is never opened: the manifest
/// is ignored with a warning (and replaced — the link itself — by the next write), the journal
/// treated as corrupt (the link set aside); nothing outside changes.
#[test]
fn state_files_that_are_symlinks_are_never_followed() {
    let outside = tempfile::tempdir().unwrap();
    let repo = Repo::new();
    let live = live();
    sync(&revision(&repo, "r1", live.path())).unwrap();
    let state = live.path().join(".stoker");
    std::fs::rename(
        state.join("manifest.bin"),
        outside.path().join("manifest.bin"),
    )
    .unwrap();
    write(
        outside.path(),
        "journal.json",
        r#"{"temporaries":[],"prune":[]}"#,
    );
    write(outside.path(), "manifest.log", "not a log");
    for name in ["manifest.bin", "journal.json", "manifest.log"] {
        std::os::unix::fs::symlink(outside.path().join(name), state.join(name)).unwrap();
    }
    let before = fingerprints(outside.path());

    let report = sync(&revision(&repo, "r2", live.path())).unwrap();
    assert_eq!(paths(&report.modified), ["projects/a/project.json"]);
    for name in ["manifest.bin", "journal.json"] {
        assert!(
            report.warnings.iter().any(|w| w.contains(name)),
            "{name}: {:?}",
            report.warnings
        );
    }
    assert_eq!(fingerprints(outside.path()), before);
    assert!(
        std::fs::symlink_metadata(state.join("manifest.bin"))
            .unwrap()
            .is_file()
    );
    assert!(std::fs::symlink_metadata(state.join("journal.json")).is_err());
    assert!(std::fs::symlink_metadata(state.join("manifest.log")).is_err());
    let report = sync(&revision(&repo, "r2", live.path())).unwrap();
    assert_eq!(report.changed(), 0);
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
}

/// A directory where the manifest goes made a sync write the live files and then fail on the
/// manifest, every time. It is refused before anything is written, with an error naming it,
/// and left as it is.
#[test]
fn manifest_path_that_is_a_directory_is_refused() {
    let repo = Repo::new();
    let live = live();
    sync(&revision(&repo, "r1", live.path())).unwrap();
    for name in ["manifest.bin", "manifest.log"] {
        let state = live.path().join(".stoker");
        let _ = std::fs::remove_file(state.join(name));
        write(&state, &format!("{name}/kept.txt"), "a person's file");
        let request = revision(&repo, "r2", live.path());
        assert_refused(dry_run(&request), &state.join(name));
        assert_refused(sync(&request), &state.join(name));
        assert_eq!(
            snapshot_live(live.path())["projects/a/project.json"],
            text("r1")
        );
        assert_eq!(
            std::fs::read(state.join(name).join("kept.txt")).unwrap(),
            b"a person's file"
        );
        std::fs::remove_dir_all(state.join(name)).unwrap();
    }
}
