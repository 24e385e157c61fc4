//! DESIGN §3 "Protected paths": `**/.resources/**` and the engine's own `.stoker/` are never
//! written, never deleted.

use super::*;

#[test]
fn protected_resources_are_never_written_or_deleted() {
    let repo = Repo::new();
    repo.file("projects/a/project.json", "{}")
        .file("projects/a/.resources/abc/data.bin", "from repo")
        .file("projects/.resources/top", "from repo")
        .file("res/x.bin", "from repo");
    let live = live();
    write(
        live.path(),
        "projects/a/.resources/abc/data.bin",
        "live resource",
    );
    write(
        live.path(),
        "projects/gone/.resources/orphan.bin",
        "live orphan resource",
    );
    write(live.path(), ".resources/root.bin", "root resource");
    let report = sync(&request(
        repo.artifact("r1"),
        vec![
            map("projects", "projects"),
            // Mappings that target protected paths directly.
            map("res", "projects/a/.resources/abc"),
            map("res/x.bin", ".resources/root.bin"),
        ],
        live.path(),
    ))
    .unwrap();
    assert_eq!(paths(&report.added), ["projects/a/project.json"]);
    assert!(report.deleted.is_empty(), "{:?}", report.deleted);
    let tree = snapshot_live(live.path());
    assert_eq!(
        tree["projects/a/.resources/abc/data.bin"],
        text("live resource")
    );
    assert_eq!(
        tree["projects/gone/.resources/orphan.bin"],
        text("live orphan resource")
    );
    assert_eq!(tree[".resources/root.bin"], text("root resource"));
    assert!(!tree.contains_key("projects/.resources/top"));
    assert!(!tree.contains_key("projects/a/.resources/abc/x.bin"));
}

#[test]
fn resources_entries_themselves_are_protected() {
    let repo = Repo::new();
    repo.file("projects/a/project.json", "{}")
        .file("projects/b/.resources", "a file named .resources")
        .file("x.json", "{}");
    let live = live();
    mkdir(live.path(), "projects/c/.resources");
    let report = sync(&request(
        repo.artifact("r1"),
        vec![
            map("projects", "projects"),
            map("x.json", "config/.resources"),
        ],
        live.path(),
    ))
    .unwrap();
    assert_eq!(paths(&report.added), ["projects/a/project.json"]);
    let tree = snapshot_live(live.path());
    assert!(!tree.contains_key("projects/b/.resources"));
    assert!(!tree.contains_key("config/.resources"));
    // An empty `.resources` directory is not pruned either.
    assert_eq!(tree["projects/c/.resources"], Node::Dir);
}

/// Regression: a live directory that had to become a file was cleared entry by entry, and the
/// sync failed halfway (after deleting managed files) on content it may not touch, which the
/// scan had not listed: a `.resources` directory, a name that is not UTF-8.
#[test]
fn a_live_dir_holding_untouchable_entries_is_never_cleared_to_make_room_for_a_file() {
    use std::os::unix::ffi::OsStrExt;
    let repo = Repo::new();
    repo.file("projects/a/sub", "now a file")
        .file("projects/a/project.json", "{}");
    for untouchable in ["resources", "non-utf8"] {
        let live = live();
        write(
            live.path(),
            "projects/a/sub/x.json",
            "managed, would be deleted",
        );
        if untouchable == "resources" {
            write(
                live.path(),
                "projects/a/sub/deeper/.resources/r.bin",
                "protected",
            );
        } else {
            mkdir(live.path(), "projects/a/sub/deeper");
            std::fs::write(
                live.path()
                    .join("projects/a/sub/deeper")
                    .join(std::ffi::OsStr::from_bytes(b"bad\xffname")),
                "odd",
            )
            .unwrap();
        }
        let before = snapshot_live(live.path());
        let result = sync(&projects_request(repo.artifact("r1"), live.path()));
        match &result {
            Err(error @ Error::UnsafeLive { .. }) => {
                assert!(
                    error.to_string().contains("projects/a/sub"),
                    "{untouchable}: {error}"
                );
            }
            other => panic!("{untouchable}: expected UnsafeLive, got {other:?}"),
        }
        assert_eq!(
            snapshot_live(live.path()),
            before,
            "{untouchable}: live changed"
        );
    }
}

/// Regression: a file mapping's destination held by a live directory with content (which a
/// file root does not manage) failed halfway through the apply, after other writes.
#[test]
fn a_live_dir_at_a_file_destination_is_replaced_only_when_empty() {
    let repo = Repo::new();
    repo.file("projects/a/project.json", "{}")
        .file("v.json", "2");
    let mappings = vec![map("projects", "projects"), map("v.json", ".versions.json")];
    let live = live();
    write(
        live.path(),
        ".versions.json/unmanaged.txt",
        "not managed by a file root",
    );
    let before = snapshot_live(live.path());
    let result = sync(&request(repo.artifact("r1"), mappings.clone(), live.path()));
    match &result {
        Err(error @ Error::UnsafeLive { .. }) => {
            assert!(error.to_string().contains(".versions.json"), "{error}");
        }
        other => panic!("expected UnsafeLive, got {other:?}"),
    }
    assert_eq!(snapshot_live(live.path()), before);

    std::fs::remove_file(live.path().join(".versions.json/unmanaged.txt")).unwrap();
    let report = sync(&request(repo.artifact("r1"), mappings, live.path())).unwrap();
    // No file was there: an addition (the empty directory is not a file deletion).
    assert_eq!(
        paths(&report.added),
        [".versions.json", "projects/a/project.json"]
    );
    assert!(report.deleted.is_empty());
    assert_eq!(snapshot_live(live.path())[".versions.json"], text("2"));
}

#[test]
fn state_dir_is_never_written_or_deleted_by_mappings() {
    let repo = Repo::new();
    repo.file("tree/.stoker/manifest.bin", "hostile manifest")
        .file("tree/.stoker/manifest.json", "hostile old manifest")
        .file("tree/.stoker/lock", "hostile")
        .file("tree/a.json", "a")
        .file("x.json", "x");
    let live = live();
    write(live.path(), "unrelated.txt", "keep");
    let mut whole = request(
        repo.artifact("r1"),
        vec![
            // The whole live directory is managed here (and adopted, so what Stoker did not
            // write is deleted): `.stoker/` still is not.
            map("tree", "."),
            map("x.json", ".stoker/manifest.bin"),
            map("tree", ".stoker"),
        ],
        live.path(),
    );
    whole.profile.adopt = true;
    let report = sync(&whole).unwrap();
    assert_eq!(paths(&report.added), ["a.json"]);
    assert_eq!(paths(&report.deleted), ["unrelated.txt"]);
    let (manifest, warning) = stoker_sync::manifest::load(live.path());
    assert_eq!(warning, None);
    assert!(manifest.unwrap().files.contains_key("a.json"));
    // The second run trusts its own (untouched) manifest.
    assert_eq!(
        sync(&request(
            repo.artifact("r1"),
            vec![map("tree", ".")],
            live.path()
        ))
        .unwrap()
        .changed(),
        0
    );
}
