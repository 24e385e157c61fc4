//! DESIGN §3 "Managed roots": which live files a mapping manages, orphans deleted below them,
//! directories emptied strictly below them removed, nothing outside them touched.

use super::*;

/// Regression (issue 15, data loss 1): a skipped mapping nested below another mapping's
/// destination had its destination's files deleted as orphans of the enclosing mapping, while
/// the warning said the destination was left as it is.
#[test]
fn skipped_nested_mapping_is_not_wiped_by_its_parent() {
    let repo = Repo::new();
    repo.file("services/site/projects/main/project.json", "{}")
        .file("services/site/projects/global/from-parent.json", "parent")
        .file("links/real/x.json", "x");
    std::os::unix::fs::symlink("real", repo.path().join("links/global")).unwrap();
    for (case, nested_source) in [
        ("missing source", "shared/projects/globl"),
        ("symlinked source", "links/global"),
    ] {
        let live = live();
        write(live.path(), "projects/global/view.json", "designer's");
        write(
            live.path(),
            "projects/global/deep/tag.json",
            "designer's too",
        );
        write(live.path(), "projects/stale.json", "an orphan");
        let before = fingerprints(&live.path().join("projects/global"));
        let request = request(
            repo.artifact("r1"),
            vec![
                map("services/site/projects", "projects"),
                map(nested_source, "projects/global"),
            ],
            live.path(),
        );
        let report = sync(&request).unwrap();
        assert!(
            report
                .warnings
                .iter()
                .any(|w| w.contains("mappings[1]")
                    && w.contains("\"projects/global\" left as it is")),
            "{case}: {:?}",
            report.warnings
        );
        // Left exactly as it is: nothing deleted, nothing the parent maps there written.
        assert_eq!(
            fingerprints(&live.path().join("projects/global")),
            before,
            "{case}"
        );
        assert_eq!(paths(&report.deleted), ["projects/stale.json"], "{case}");
        assert_eq!(
            paths(&report.added),
            ["projects/main/project.json"],
            "{case}"
        );
        // And again, now with a manifest (the second sync plans from it).
        let report = sync(&request).unwrap();
        assert!(
            report.deleted.is_empty() && report.added.is_empty(),
            "{case}"
        );
        assert_eq!(
            fingerprints(&live.path().join("projects/global")),
            before,
            "{case}"
        );
    }
}

/// A mapping whose destination lies at or below a skipped mapping's destination still manages
/// its own: a base and an optional per-site overlay mapped to one directory is the common case
/// (a site without overrides must still get the base).
#[test]
fn skipped_mapping_does_not_hold_a_destination_another_mapping_manages() {
    let repo = Repo::new();
    repo.file("base/config/a.json", "base")
        .file("extra/x.json", "extra");
    let live = live();
    write(live.path(), "config/orphan.json", "old");
    write(live.path(), "config/opt/inner/kept.json", "kept");
    write(live.path(), "config/opt/inner/extra/orphan.json", "old");
    let report = sync(&request(
        repo.artifact("r1"),
        vec![
            map("base/config", "config"),
            map("sites/none", "config"),
            map("missing/opt", "config/opt"),
            map("extra", "config/opt/inner/extra"),
        ],
        live.path(),
    ))
    .unwrap_or_else(|error| panic!("{error}"));
    // `config` is managed by mapping 0 (mapping 1 at the same path is skipped); `config/opt`
    // is held; `config/opt/inner/extra` is managed again by mapping 3.
    assert_eq!(
        paths(&report.deleted),
        ["config/opt/inner/extra/orphan.json", "config/orphan.json"]
    );
    assert_eq!(
        paths(&report.added),
        ["config/a.json", "config/opt/inner/extra/x.json"]
    );
    assert_eq!(
        snapshot_live(live.path())["config/opt/inner/kept.json"],
        text("kept")
    );
}

/// Issue 15 item 6: a mapping to `.` makes the whole data directory managed, and a gateway's
/// data directory holds the gateway's own files (`db/`, `logs/`). Unless the profile adopts the
/// directory, Stoker deletes there only what it wrote, and lists what it left.
#[test]
fn whole_directory_mapping_deletes_only_what_stoker_wrote_unless_adopted() {
    let repo = Repo::new();
    repo.file("a.json", "a").file("b.json", "b");
    let live = live();
    write(live.path(), "db/config.idb", "the gateway's database");
    write(live.path(), "logs/wrapper.log", "logs");
    let mut request = request(repo.artifact("r1"), vec![map(".", ".")], live.path());
    let report = sync(&request).unwrap();
    assert_eq!(paths(&report.added), ["a.json", "b.json"]);
    assert!(report.deleted.is_empty());
    assert_eq!(
        report.warnings,
        [
            "2 file(s) Stoker did not write are not in the repository and were left in place, because the data directory is not adopted (a mapping to \".\" deletes only what Stoker wrote unless `adopt: true` is set in the profile or `--adopt` is given): \"db/config.idb\", \"logs/wrapper.log\""
        ]
    );

    // A file Stoker wrote and the repository no longer has is deleted; the gateway's stay.
    repo.remove("b.json");
    request.artifact = repo.artifact("r2");
    let report = sync(&request).unwrap();
    assert_eq!(paths(&report.deleted), ["b.json"]);
    let tree = snapshot_live(live.path());
    assert_eq!(tree["db/config.idb"], text("the gateway's database"));

    // Adopted: the directory is Stoker's, like any other managed root.
    request.profile.adopt = true;
    let report = sync(&request).unwrap();
    assert_eq!(
        paths(&report.deleted),
        ["db/config.idb", "logs/wrapper.log"]
    );
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
}

/// Issue 15 item 6: what the repository needs replaced in an unadopted whole directory is not
/// Stoker's to remove: refused up front, nothing written.
#[test]
fn whole_directory_mapping_refuses_to_replace_what_stoker_did_not_write() {
    let repo = Repo::new();
    repo.file("projects/p/project.json", "{}")
        .file("z.json", "z");
    let live = live();
    write(live.path(), "projects", "a file where a directory must go");
    let mut request = request(repo.artifact("r1"), vec![map(".", ".")], live.path());
    let message = error_text(sync(&request));
    assert!(
        message.contains("projects: must be replaced to write projects/p/project.json, but Stoker did not write it and the data directory is not adopted"),
        "{message}"
    );
    assert_eq!(snapshot_live(live.path()).len(), 1);
    request.profile.adopt = true;
    sync(&request).unwrap();
    assert_eq!(
        snapshot_live(live.path())["projects/p/project.json"],
        text("{}")
    );
}

/// Mappings below `.` keep their usual rule: what they manage is cleaned whoever wrote it.
#[test]
fn adoption_only_concerns_what_the_whole_directory_mapping_alone_manages() {
    let repo = Repo::new();
    repo.file("top.json", "t")
        .file("projects/p/project.json", "{}");
    let live = live();
    write(live.path(), "projects/old/project.json", "a stale project");
    write(live.path(), "local/notes.txt", "the gateway's");
    let report = sync(&request(
        repo.artifact("r1"),
        vec![
            map("top.json", "top.json"),
            map(".", "."),
            map("projects", "projects"),
        ],
        live.path(),
    ))
    .unwrap();
    assert_eq!(paths(&report.deleted), ["projects/old/project.json"]);
    assert_eq!(
        snapshot_live(live.path())["local/notes.txt"],
        text("the gateway's")
    );
}

#[test]
fn orphans_under_a_dir_destination_are_deleted() {
    let repo = Repo::new();
    repo.file("projects/a/project.json", "{}");
    let live = live();
    write(live.path(), "projects/a/stale.json", "stale");
    write(live.path(), "projects/old/project.json", "{}");
    write(live.path(), "projects/old/views/v/view.json", "{}");
    symlink(live.path(), "projects/a/dangling", "/nonexistent");
    let report = sync(&projects_request(repo.artifact("r1"), live.path())).unwrap();
    assert_eq!(
        paths(&report.deleted),
        [
            "projects/a/dangling",
            "projects/a/stale.json",
            "projects/old/project.json",
            "projects/old/views/v/view.json"
        ]
    );
    let tree = snapshot_live(live.path());
    assert_eq!(
        tree.keys().map(String::as_str).collect::<Vec<_>>(),
        ["projects", "projects/a", "projects/a/project.json"]
    );
}

#[test]
fn orphans_of_a_previous_revision_are_deleted() {
    let repo = Repo::new();
    repo.file("projects/a/project.json", "{}")
        .file("projects/a/old.json", "old");
    let live = live();
    let request = projects_request(repo.artifact("r1"), live.path());
    sync(&request).unwrap();
    repo.remove("projects/a/old.json");
    let mut next = request.clone();
    next.artifact = repo.artifact("r2");
    let report = sync(&next).unwrap();
    assert_eq!(paths(&report.deleted), ["projects/a/old.json"]);
    assert_eq!(report.deleted[0].previous_content_id, Some(id(b"old")));
}

/// Regression (reference operator bug): a root-level file mapping made the whole live directory
/// managed, so every unrelated gateway file was deleted as an orphan.
#[test]
fn root_level_file_mapping_does_not_manage_the_whole_live_dir() {
    let repo = Repo::new();
    repo.file("versions.json", "{\"v\": 2}")
        .file("projects/a/project.json", "{}");
    let live = live();
    write(live.path(), "db/config.idb", "gateway database");
    write(live.path(), "unrelated.txt", "keep");
    write(live.path(), "projects/a/stale.json", "stale");
    write(live.path(), ".versions.json", "{\"v\": 1}");
    let before = fingerprints(live.path());
    let report = sync(&request(
        repo.artifact("r1"),
        vec![map("versions.json", ".versions.json")],
        live.path(),
    ))
    .unwrap();
    assert_eq!(paths(&report.modified), [".versions.json"]);
    assert!(report.deleted.is_empty(), "{:?}", report.deleted);
    let after = fingerprints(live.path());
    for path in [
        "db",
        "db/config.idb",
        "unrelated.txt",
        "projects",
        "projects/a",
        "projects/a/stale.json",
    ] {
        assert_eq!(after[path], before[path], "{path} was touched");
    }
}

/// Regression: orphans inside a nested managed root (`config/resources/dev` under an unmanaged
/// `config/`) were not deleted, or the siblings in `config/` were.
#[test]
fn orphans_in_nested_managed_roots_are_deleted_and_siblings_survive() {
    let repo = Repo::new();
    repo.file("config/dev/db.json", "{}");
    let live = live();
    write(live.path(), "config/resources/dev/db.json", "{\"old\": 1}");
    write(live.path(), "config/resources/dev/orphan.json", "orphan");
    write(
        live.path(),
        "config/resources/dev/sub/orphan2.json",
        "orphan",
    );
    write(live.path(), "config/resources/core/keep.json", "core");
    write(
        live.path(),
        "config/resources/devices/keep.json",
        "prefix sibling",
    );
    write(live.path(), "config/local.json", "local");
    let before = fingerprints(live.path());
    let report = sync(&request(
        repo.artifact("r1"),
        vec![map("config/dev", "config/resources/dev")],
        live.path(),
    ))
    .unwrap();
    assert_eq!(
        paths(&report.deleted),
        [
            "config/resources/dev/orphan.json",
            "config/resources/dev/sub/orphan2.json"
        ]
    );
    assert_eq!(paths(&report.modified), ["config/resources/dev/db.json"]);
    let after = fingerprints(live.path());
    for path in [
        "config/resources/core",
        "config/resources/core/keep.json",
        "config/resources/devices",
        "config/resources/devices/keep.json",
        "config/local.json",
    ] {
        assert_eq!(after[path], before[path], "{path} was touched");
    }
    assert!(!after.contains_key("config/resources/dev/sub"));
}

#[test]
fn files_outside_managed_roots_are_never_touched() {
    let repo = Repo::new();
    repo.file("projects/a/project.json", "{}")
        .file("projects/a/view.json", "v1")
        .file("v.json", "1");
    let live = live();
    write(live.path(), "projects-backup/a/project.json", "backup");
    write(live.path(), "project", "file named like a prefix");
    write(live.path(), "v.json.bak", "prefix of a file root");
    write(live.path(), "data/db.idb", "db");
    symlink(live.path(), "data/link", "/etc/passwd");
    mkdir(live.path(), "empty-unrelated");
    let unrelated = |tree: &std::collections::BTreeMap<String, Fingerprint>| {
        tree.iter()
            .filter(|(path, _)| {
                !path.starts_with("projects/")
                    && *path != "projects"
                    && *path != "v.json"
                    && !path.starts_with(".stoker")
            })
            .map(|(path, print)| (path.clone(), print.clone()))
            .collect::<Vec<_>>()
    };
    let before = unrelated(&fingerprints(live.path()));
    let request = request(
        repo.artifact("r1"),
        vec![map("projects", "projects"), map("v.json", "v.json")],
        live.path(),
    );
    sync(&request).unwrap();
    repo.file("projects/a/view.json", "v2").remove("v.json");
    let mut next = request.clone();
    next.artifact = repo.artifact("r2");
    sync(&next).unwrap();
    assert_eq!(unrelated(&fingerprints(live.path())), before);
}

#[test]
fn directories_emptied_strictly_below_a_managed_root_are_removed_and_the_root_stays() {
    let repo = Repo::new();
    repo.file("projects/keep.json", "{}")
        .file("projects/a/project.json", "{}")
        .file("projects/b/views/main/view.json", "{}")
        .file("cfg/dev/db/db.json", "{}");
    let live = live();
    mkdir(live.path(), "unrelated-empty");
    mkdir(live.path(), "config/unrelated-empty");
    mkdir(live.path(), "projects/pre-existing-empty");
    let mappings = vec![
        map("projects", "projects"),
        map("cfg/dev", "config/resources/dev"),
    ];
    sync(&request(repo.artifact("r1"), mappings.clone(), live.path())).unwrap();
    repo.remove("projects/b/views/main/view.json")
        .remove("projects/a/project.json")
        .remove("cfg/dev/db/db.json")
        // The mapping still exists (its source has an excluded file), with nothing to map.
        .file("cfg/dev/.gitkeep", "");
    let report = sync(&request(repo.artifact("r2"), mappings, live.path())).unwrap();
    assert_eq!(report.deleted.len(), 3);
    let tree = snapshot_live(live.path());
    assert_eq!(
        tree.keys().map(String::as_str).collect::<Vec<_>>(),
        [
            "config",
            "config/resources",
            "config/resources/dev",
            "config/unrelated-empty",
            "projects",
            "projects/keep.json",
            "projects/pre-existing-empty",
            "unrelated-empty"
        ]
    );
}

/// Regression: an emptied directory matched by an exclude pattern was pruned.
#[test]
fn excluded_directories_are_not_pruned() {
    let repo = Repo::new();
    repo.file("projects/a/project.json", "{}");
    let live = live();
    write(live.path(), "projects/a/cache/old.json", "orphan");
    write(live.path(), "projects/b/cache/old.json", "orphan");
    let mut request = projects_request(repo.artifact("r1"), live.path());
    // `**/cache` matches the directories, so what is below them is excluded too (issue 15:
    // before, their files were deleted as orphans and only the emptied directories stayed).
    request.profile.exclude_patterns.push("**/cache".into());
    let report = sync(&request).unwrap();
    assert!(report.deleted.is_empty(), "{:?}", report.deleted);
    let tree = snapshot_live(live.path());
    assert_eq!(tree["projects/a/cache"], Node::Dir);
    assert_eq!(tree["projects/b/cache/old.json"], text("orphan"));
    // An excluded directory emptied by hand is not pruned either.
    std::fs::remove_file(live.path().join("projects/b/cache/old.json")).unwrap();
    write(live.path(), "projects/b/stale.json", "orphan");
    let report = sync(&request).unwrap();
    assert_eq!(paths(&report.deleted), ["projects/b/stale.json"]);
    assert_eq!(snapshot_live(live.path())["projects/b/cache"], Node::Dir);
}

#[test]
fn directories_with_left_alone_entries_are_not_removed() {
    let repo = Repo::new();
    repo.file("projects/a/project.json", "{}");
    let live = live();
    write(live.path(), "projects/b/old.json", "orphan");
    write(live.path(), "projects/b/.resources/r.bin", "protected");
    write(live.path(), "projects/c/old.json", "orphan");
    write(live.path(), "projects/c/.gitkeep", "");
    sync(&projects_request(repo.artifact("r1"), live.path())).unwrap();
    let tree = snapshot_live(live.path());
    assert!(tree.contains_key("projects/b/.resources/r.bin"));
    assert!(tree.contains_key("projects/c/.gitkeep"));
    assert!(!tree.contains_key("projects/b/old.json"));
    assert!(!tree.contains_key("projects/c/old.json"));
}

#[test]
fn non_utf8_file_name_in_live_is_left_alone() {
    use std::os::unix::ffi::OsStrExt;
    let repo = Repo::new();
    repo.file("projects/a/project.json", "{}");
    let live = live();
    mkdir(live.path(), "projects/old");
    let odd = live
        .path()
        .join("projects/old")
        .join(std::ffi::OsStr::from_bytes(b"bad\xffname.json"));
    std::fs::write(&odd, "x").unwrap();
    write(live.path(), "projects/old/orphan.json", "orphan");
    let report = sync(&projects_request(repo.artifact("r1"), live.path())).unwrap();
    assert_eq!(paths(&report.deleted), ["projects/old/orphan.json"]);
    assert_warned(&report, "UTF-8");
    assert_eq!(std::fs::read(&odd).unwrap(), b"x");
}
