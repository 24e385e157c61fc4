//! DESIGN §3 "Report": the `SyncReport`, the JSON diff report, and a dry run computing the same
//! report while writing nothing.

use super::*;

fn comparable(report: &stoker_core::SyncReport) -> stoker_core::SyncReport {
    let mut report = report.clone();
    report.duration = Duration::ZERO;
    report.dry_run = false;
    report
}

#[test]
fn dry_run_computes_the_same_report_as_the_real_sync_and_writes_nothing() {
    let (r1, r2, mappings) = crash_fixture();

    // On a directory Stoker already manages (manifest, lock and reports exist).
    let managed = crash_start(&r1, &mappings);
    let request = request(r2.artifact("r2"), mappings.clone(), managed.path());
    let before = fingerprints(managed.path());
    let dry = dry_run(&request).unwrap();
    assert!(dry.dry_run);
    assert_eq!(
        fingerprints(managed.path()),
        before,
        "the dry run changed live"
    );
    let real = sync(&request).unwrap();
    assert!(!real.dry_run);
    assert_eq!(comparable(&dry), comparable(&real));
    assert!(dry.changed() > 5);

    // On a fresh directory: not even `.stoker/` is created.
    let fresh = live();
    write(fresh.path(), "projects/stale/project.json", "{}");
    write(fresh.path(), "unrelated.txt", "x");
    let request = crate::common::request(r2.artifact("r2"), mappings, fresh.path());
    let before = fingerprints(fresh.path());
    let dry = dry_run(&request).unwrap();
    assert_eq!(fingerprints(fresh.path()), before);
    assert!(!fresh.path().join(".stoker").exists());
    let real = sync(&request).unwrap();
    assert_eq!(comparable(&dry), comparable(&real));
    assert_eq!(paths(&dry.deleted), ["projects/stale/project.json"]);
}

/// Regression: a dry run on a directory with a `.stoker/` but no lock file created the lock.
#[test]
fn dry_run_never_creates_the_lock_file() {
    let repo = Repo::new();
    repo.file("projects/a/project.json", "{}");
    let live = live();
    let request = projects_request(repo.artifact("r1"), live.path());
    sync(&request).unwrap();
    std::fs::remove_file(live.path().join(".stoker/lock")).unwrap();
    write(live.path(), "projects/a/project.json", "changed");
    let before = fingerprints(live.path());
    let report = dry_run(&request).unwrap();
    assert_eq!(paths(&report.modified), ["projects/a/project.json"]);
    assert_eq!(fingerprints(live.path()), before);
}

#[test]
fn dry_run_on_a_missing_live_dir_creates_nothing() {
    let repo = Repo::new();
    repo.file("projects/a/project.json", "{}");
    let parent = tempfile::tempdir().unwrap();
    let live = parent.path().join("not-yet");
    let report = dry_run(&projects_request(repo.artifact("r1"), &live)).unwrap();
    assert_eq!(paths(&report.added), ["projects/a/project.json"]);
    assert!(!live.exists());
}

#[test]
fn sync_report_lists_changes_with_git_blob_ids() {
    let repo = Repo::new();
    repo.file("projects/a/project.json", "hello\n")
        .file("projects/a/old.json", "{\"a\":1}");
    let live = live();
    let request = projects_request(repo.artifact("r1"), live.path());
    let first = sync(&request).unwrap();
    let hello = "ce013625030ba8dba906f756967f9e9ca394464a"; // git hash-object of "hello\n"
    let a1 = "daa5053ecf5f9a37b2de733d0751cc1ab53ac010"; // of {"a":1}
    let v2 = "8c1384d825dbbe41309b7dc18ee7991a9085c46e"; // of "v2\n"
    let ids =
        |changes: &[stoker_core::FileChange]| -> Vec<(String, Option<String>, Option<String>)> {
            changes
                .iter()
                .map(|c| {
                    (
                        c.path.clone(),
                        c.content_id.map(|i| i.to_string()),
                        c.previous_content_id.map(|i| i.to_string()),
                    )
                })
                .collect()
        };
    assert_eq!(
        ids(&first.added),
        [
            ("projects/a/old.json".into(), Some(a1.into()), None),
            ("projects/a/project.json".into(), Some(hello.into()), None),
        ]
    );
    repo.file("projects/a/project.json", "v2\n")
        .remove("projects/a/old.json");
    let mut next = request.clone();
    next.artifact = repo.artifact("r2");
    let second = sync(&next).unwrap();
    assert!(second.added.is_empty());
    assert_eq!(
        ids(&second.modified),
        [(
            "projects/a/project.json".into(),
            Some(v2.into()),
            Some(hello.into())
        )]
    );
    assert_eq!(
        ids(&second.deleted),
        [("projects/a/old.json".into(), None, Some(a1.into()))]
    );
}

#[test]
fn sync_report_counts_unchanged_bytes_written_and_projects() {
    let repo = Repo::new();
    repo.file("projects/alpha/project.json", "{}")
        .file("projects/alpha/views/v/view.json", "12345")
        .file("projects/beta/project.json", "{}")
        .file("projects/beta/nested/project.json", "not a project marker")
        .file("projects/notaproject/resource.json", "{}");
    let live = live();
    let request = projects_request(repo.artifact("r1"), live.path());
    let first = sync(&request).unwrap();
    assert_eq!(first.projects, ["alpha", "beta"]);
    assert_eq!((first.added.len(), first.unchanged), (5, 0));
    assert_eq!(first.bytes_written, 2 + 5 + 2 + 20 + 2);
    assert_eq!(first.revision.id, "r1");
    repo.file("projects/alpha/views/v/view.json", "1234567");
    let mut next = request.clone();
    next.artifact = repo.artifact("r2");
    let second = sync(&next).unwrap();
    assert_eq!(
        (
            second.modified.len(),
            second.unchanged,
            second.bytes_written
        ),
        (1, 4, 7)
    );
    assert_eq!(second.projects, ["alpha", "beta"]);
    assert_eq!(second.revision.id, "r2");
}

#[test]
fn json_diff_report_has_from_to_counts_and_changes() {
    let repo = Repo::new();
    repo.file("projects/a/project.json", "hello\n")
        .file("projects/a/gone.json", "x");
    let live = live();
    let request = projects_request(repo.artifact("r1"), live.path());
    sync(&request).unwrap();
    repo.file("projects/a/project.json", "v2\n")
        .file("projects/a/new.json", "{\"a\":1}")
        .remove("projects/a/gone.json");
    let mut next = request.clone();
    next.artifact = repo.artifact("r2");
    sync(&next).unwrap();

    let dir = live.path().join(".stoker/reports");
    let mut reports: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    reports.sort();
    assert_eq!(reports.len(), 2);
    let first: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&reports[0]).unwrap()).unwrap();
    assert_eq!(first["fromCommit"], serde_json::Value::Null);
    assert_eq!(first["toCommit"], "r1");
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&reports[1]).unwrap()).unwrap();
    assert_eq!(report["fromCommit"], "r1");
    assert_eq!(report["toCommit"], "r2");
    assert_eq!(
        report["counts"],
        serde_json::json!({"added": 1, "modified": 1, "deleted": 1, "unchanged": 0})
    );
    assert_eq!(
        report["changes"],
        serde_json::json!([
            {"path": "projects/a/gone.json", "action": "deleted",
             "previousContentId": id(b"x").to_string()},
            {"path": "projects/a/new.json", "action": "added",
             "contentId": "daa5053ecf5f9a37b2de733d0751cc1ab53ac010"},
            {"path": "projects/a/project.json", "action": "modified",
             "contentId": "8c1384d825dbbe41309b7dc18ee7991a9085c46e",
             "previousContentId": "ce013625030ba8dba906f756967f9e9ca394464a"},
        ])
    );
}

#[test]
fn json_diff_reports_keep_only_the_newest() {
    let repo = Repo::new();
    repo.file("projects/a/project.json", "1");
    let live = live();
    let options = ApplyOptions {
        keep_reports: 2,
        ..ApplyOptions::default()
    };
    for revision in ["r1", "r2", "r3"] {
        repo.file("projects/a/project.json", revision);
        let request = projects_request(repo.artifact(revision), live.path());
        sync_with(options.clone(), &request).unwrap();
    }
    let mut kept: Vec<String> = std::fs::read_dir(live.path().join(".stoker/reports"))
        .unwrap()
        .map(|entry| {
            let report: serde_json::Value =
                serde_json::from_slice(&std::fs::read(entry.unwrap().path()).unwrap()).unwrap();
            report["toCommit"].as_str().unwrap().to_owned()
        })
        .collect();
    kept.sort();
    assert_eq!(kept, ["r2", "r3"]);
}
