//! DESIGN §3 "Writes are atomic per file": temporaries and renames, executable bits, never
//! writing through a symlink found in live, and a crash at any step followed by a rerun that
//! converges.

use super::*;

#[test]
fn live_symlink_where_a_managed_dir_should_be_is_replaced_by_a_real_dir() {
    let outside = tempfile::tempdir().unwrap();
    write(outside.path(), "a/project.json", "outside content");
    write(outside.path(), "keep.txt", "outside");
    let outside_before = fingerprints(outside.path());
    let repo = Repo::new();
    repo.file("projects/a/project.json", "{}")
        .file("projects/b/project.json", "{}");
    let live = live();
    symlink(live.path(), "projects", outside.path());
    let report = sync(&projects_request(repo.artifact("r1"), live.path())).unwrap();
    assert_eq!(paths(&report.deleted), ["projects"]);
    let metadata = std::fs::symlink_metadata(live.path().join("projects")).unwrap();
    assert!(metadata.is_dir() && !metadata.file_type().is_symlink());
    assert_eq!(fingerprints(outside.path()), outside_before);
    assert_eq!(
        snapshot_live(live.path())["projects/a/project.json"],
        text("{}")
    );

    // Deeper: a symlinked directory below a managed root.
    std::fs::remove_dir_all(live.path().join("projects/b")).unwrap();
    symlink(live.path(), "projects/b", outside.path());
    sync(&projects_request(repo.artifact("r1"), live.path())).unwrap();
    assert!(
        std::fs::symlink_metadata(live.path().join("projects/b"))
            .unwrap()
            .is_dir()
    );
    assert_eq!(fingerprints(outside.path()), outside_before);
}

#[test]
fn live_symlink_at_a_managed_file_path_is_replaced_never_written_through() {
    let outside = tempfile::tempdir().unwrap();
    write(outside.path(), "target.json", "outside");
    let outside_before = fingerprints(outside.path());
    let repo = Repo::new();
    repo.file("projects/a/project.json", "{}")
        .file("v.json", "2");
    let live = live();
    symlink(
        live.path(),
        "projects/a/project.json",
        outside.path().join("target.json"),
    );
    symlink(
        live.path(),
        ".versions.json",
        outside.path().join("target.json"),
    );
    let report = sync(&request(
        repo.artifact("r1"),
        vec![map("projects", "projects"), map("v.json", ".versions.json")],
        live.path(),
    ))
    .unwrap();
    assert_eq!(
        paths(&report.modified),
        [".versions.json", "projects/a/project.json"]
    );
    let tree = snapshot_live(live.path());
    assert_eq!(tree["projects/a/project.json"], text("{}"));
    assert_eq!(tree[".versions.json"], text("2"));
    assert_eq!(fingerprints(outside.path()), outside_before);
}

#[test]
fn live_symlink_ancestor_outside_managed_roots_is_an_error_and_nothing_is_written_outside() {
    let outside = tempfile::tempdir().unwrap();
    write(outside.path(), "resources/dev/db.json", "outside");
    write(
        outside.path(),
        "resources/dev/orphan.json",
        "outside orphan",
    );
    let outside_before = fingerprints(outside.path());
    let repo = Repo::new();
    repo.file("config/dev/db.json", "{}")
        .file("projects/a/project.json", "{}");
    let live = live();
    symlink(live.path(), "config", outside.path());
    for mapping in [
        map("config/dev", "config/resources/dev"),
        map("config/dev/db.json", "config/resources/dev/db.json"),
    ] {
        let text = error_text(sync(&request(
            repo.artifact("r1"),
            vec![map("projects", "projects"), mapping],
            live.path(),
        )));
        assert!(text.contains("symlink"), "{text}");
        assert!(
            text.contains(&live.path().join("config").display().to_string()),
            "{text}"
        );
        assert_eq!(fingerprints(outside.path()), outside_before);
        assert!(
            !live.path().join("projects").exists(),
            "wrote before failing"
        );
    }
}

/// Regression (found by the model test): a root inside another directory root, below an
/// excluded symlink, was not checked; the sync went ahead as if the symlink were a directory it
/// may replace. It is refused, naming the symlink, and nothing is written through it.
#[test]
fn excluded_symlink_above_a_nested_root_is_an_error() {
    let outside = tempfile::tempdir().unwrap();
    write(outside.path(), "keep.json", "outside");
    let outside_before = fingerprints(outside.path());
    let repo = Repo::new();
    repo.file("b/b/versions.json", "{}")
        .file("b/other.json", "{}");
    let live = live();
    std::fs::create_dir_all(live.path().join("b")).unwrap();
    symlink(live.path(), "b/b", outside.path());
    let mut request = request(
        repo.artifact("r1"),
        vec![map("b", "b"), map("b/b/versions.json", "b/b/versions.json")],
        live.path(),
    );
    request.profile.exclude_patterns = vec!["b/b".into(), "b/b/**".into()];
    let text = error_text(sync(&request));
    assert!(text.contains("symlink"), "{text}");
    assert!(
        text.contains(&live.path().join("b/b").display().to_string()),
        "{text}"
    );
    assert_eq!(fingerprints(outside.path()), outside_before);
    assert!(
        !live.path().join("b/other.json").exists(),
        "wrote before failing"
    );
}

/// Regression: the lock was opened with `create`, following a symlink planted at
/// `.stoker/lock` and creating its target outside the live directory.
#[test]
fn live_lock_file_that_is_a_symlink_is_refused() {
    let outside = tempfile::tempdir().unwrap();
    let repo = Repo::new();
    repo.file("projects/a/project.json", "{}");
    let live = live();
    mkdir(live.path(), ".stoker");
    symlink(live.path(), ".stoker/lock", outside.path().join("created"));
    let request = projects_request(repo.artifact("r1"), live.path());
    for result in [sync(&request), dry_run(&request)] {
        assert!(
            matches!(result, Err(Error::UnsafeLive { .. })),
            "{result:?}"
        );
    }
    assert!(snapshot(outside.path()).is_empty());
    assert!(!live.path().join("projects").exists());
}

#[test]
fn live_state_dir_that_is_a_symlink_is_refused() {
    let outside = tempfile::tempdir().unwrap();
    let repo = Repo::new();
    repo.file("projects/a/project.json", "{}");
    let live = live();
    symlink(live.path(), ".stoker", outside.path());
    let result = sync(&projects_request(repo.artifact("r1"), live.path()));
    assert!(
        matches!(result, Err(Error::UnsafeLive { .. })),
        "{result:?}"
    );
    assert!(snapshot(outside.path()).is_empty());
}

#[test]
fn atomic_writes_leave_no_temporary_files() {
    let repo = Repo::new();
    for i in 0..50 {
        repo.file(&format!("projects/p{}/f{i}.json", i % 5), format!("{i}"));
    }
    let live = live();
    let request = projects_request(repo.artifact("r1"), live.path());
    sync(&request).unwrap();
    assert_eq!(temporaries(live.path()), Vec::<String>::new());
    for i in 0..50 {
        repo.file(&format!("projects/p{}/f{i}.json", i % 5), format!("v2 {i}"));
    }
    let mut next = request.clone();
    next.artifact = repo.artifact("r2");
    assert_eq!(sync(&next).unwrap().modified.len(), 50);
    assert_eq!(temporaries(live.path()), Vec::<String>::new());
}

#[test]
fn executable_bits_are_preserved() {
    let repo = Repo::new();
    repo.exec("scripts/run.sh", "#!/bin/sh\n")
        .file("scripts/lib.sh", "x");
    let live = live();
    sync(&request(
        repo.artifact("r1"),
        vec![map("scripts", "scripts")],
        live.path(),
    ))
    .unwrap();
    let tree = snapshot_live(live.path());
    assert_eq!(
        tree["scripts/run.sh"],
        Node::File {
            bytes: b"#!/bin/sh\n".to_vec(),
            executable: true
        }
    );
    assert_eq!(tree["scripts/lib.sh"], text("x"));
}

#[test]
fn changing_only_the_executable_bit_counts_as_modified() {
    let repo = Repo::new();
    repo.file("scripts/run.sh", "#!/bin/sh\n");
    let live = live();
    // A new artifact each time: a local artifact lists its directory once.
    let run = |revision: &str| {
        sync(&request(
            repo.artifact(revision),
            vec![map("scripts", "scripts")],
            live.path(),
        ))
        .unwrap()
    };
    run("r1");
    chmod(repo.path(), "scripts/run.sh", 0o755);
    let report = run("r2");
    assert_eq!(paths(&report.modified), ["scripts/run.sh"]);
    let change = &report.modified[0];
    assert_eq!(change.content_id, change.previous_content_id);
    assert_eq!(
        snapshot_live(live.path())["scripts/run.sh"],
        Node::File {
            bytes: b"#!/bin/sh\n".to_vec(),
            executable: true
        }
    );
    assert_eq!(run("r2").changed(), 0);
    // And back; also when the live file gained its bit behind the engine's back.
    chmod(repo.path(), "scripts/run.sh", 0o644);
    assert_eq!(run("r3").modified.len(), 1);
    chmod(live.path(), "scripts/run.sh", 0o755);
    assert_eq!(run("r3").modified.len(), 1);
    assert_eq!(
        snapshot_live(live.path())["scripts/run.sh"],
        text("#!/bin/sh\n")
    );
}

#[test]
fn a_crash_at_any_step_leaves_old_or_new_files_and_the_rerun_converges() {
    let (r1, r2, mappings) = crash_fixture();
    let old = snapshot_live(crash_start(&r1, &mappings).path());
    let clean = {
        let live = crash_start(&r1, &mappings);
        sync(&request(r2.artifact("r2"), mappings.clone(), live.path())).unwrap();
        snapshot_live(live.path())
    };
    assert_ne!(old, clean);

    let mut failed = 0;
    for step in 1.. {
        assert!(step < 1000, "the sync never got through");
        let live = crash_start(&r1, &mappings);
        let request = request(r2.artifact("r2"), mappings.clone(), live.path());
        let options = ApplyOptions {
            fail_at_step: Some(step),
            ..ApplyOptions::default()
        };
        let result = sync_with(options, &request);
        let crashed = match result {
            Ok(_) => false,
            Err(Error::Injected(at)) => {
                assert_eq!(at, step);
                true
            }
            Err(other) => panic!("step {step}: unexpected error {other}"),
        };
        // Every live file is the old or the new one, whole.
        for (path, node) in snapshot_live(live.path()) {
            if node == Node::Dir || path.rsplit('/').next().unwrap().starts_with(".stoker-tmp-") {
                continue;
            }
            assert!(
                old.get(&path) == Some(&node) || clean.get(&path) == Some(&node),
                "step {step}: {path} is neither old nor new: {node:?}"
            );
        }
        if !crashed {
            assert_eq!(
                snapshot_live(live.path()),
                clean,
                "step {step}: unfailed run"
            );
            break;
        }
        failed += 1;
        sync(&request).unwrap();
        assert_eq!(
            snapshot_live(live.path()),
            clean,
            "step {step}: rerun did not converge"
        );
        assert_eq!(
            temporaries(live.path()),
            Vec::<String>::new(),
            "step {step}"
        );
        assert_eq!(
            sync(&request).unwrap().changed(),
            0,
            "step {step}: third run"
        );
    }
    assert!(failed > 20, "only {failed} steps: the fixture is too small");
}

/// Regression: a crash after the deletions but before the pruning left directories that the
/// next run took for "already empty" and kept, so it never converged.
#[test]
fn a_crash_between_deleting_and_pruning_is_pruned_by_the_next_run() {
    let repo = Repo::new();
    repo.file("projects/a/project.json", "{}")
        .file("projects/b/views/v.json", "{}");
    let live = live();
    let mappings = vec![map("projects", "projects")];
    sync(&request(repo.artifact("r1"), mappings.clone(), live.path())).unwrap();
    repo.remove("projects/b/views/v.json");
    let request = request(repo.artifact("r2"), mappings, live.path());
    // Step 1 is the one deletion; the failure comes right after it.
    let options = ApplyOptions {
        fail_at_step: Some(1),
        ..ApplyOptions::default()
    };
    assert!(matches!(
        sync_with(options, &request),
        Err(Error::Injected(1))
    ));
    assert!(!live.path().join("projects/b/views/v.json").exists());
    assert!(live.path().join("projects/b/views").is_dir());
    let report = sync(&request).unwrap();
    assert_eq!(report.changed(), 0);
    assert_eq!(
        snapshot_live(live.path())
            .keys()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        ["projects", "projects/a", "projects/a/project.json"]
    );
}

#[test]
fn hostile_journal_cannot_steer_cleanup_outside_what_the_engine_may_touch() {
    let outside = tempfile::tempdir().unwrap();
    write(outside.path(), "in/.stoker-tmp-victim", "not ours");
    mkdir(outside.path(), "in/empty");
    let repo = Repo::new();
    repo.file("projects/a/project.json", "{}");
    let live = live();
    let request = projects_request(repo.artifact("r1"), live.path());
    sync(&request).unwrap();
    symlink(live.path(), "projects/link", outside.path().join("in"));
    mkdir(live.path(), "config/empty-unmanaged");
    write(
        live.path(),
        "config/.stoker-tmp-unmanaged",
        "not in a journaled dir... but named",
    );
    mkdir(live.path(), "projects/a/.resources");
    mkdir(live.path(), "projects/a/empty-managed");
    let outside_name = outside.path().file_name().unwrap().to_str().unwrap();
    let journal = serde_json::json!({
        "temporaries": [
            "../",
            format!("../{outside_name}/in"),
            outside.path().join("in").display().to_string(),
            "projects/link",
        ],
        "prune": [
            "..",
            format!("../{outside_name}/in/empty"),
            outside.path().join("in/empty").display().to_string(),
            "projects/link/empty",
            "config/empty-unmanaged",
            "config",
            "projects/a/.resources",
            "projects",
            "projects/a/empty-managed",
        ],
    });
    std::fs::write(
        live.path().join(".stoker/journal.json"),
        journal.to_string(),
    )
    .unwrap();
    let outside_before = fingerprints(outside.path());
    sync(&request).unwrap();
    assert_eq!(fingerprints(outside.path()), outside_before);
    let tree = snapshot_live(live.path());
    for kept in [
        "config/empty-unmanaged",
        "config/.stoker-tmp-unmanaged",
        "projects/a/.resources",
        "projects",
    ] {
        assert!(tree.contains_key(kept), "{kept} was removed");
    }
    // What the engine may prune, it does (the symlink, an orphan, is deleted as usual).
    assert!(!tree.contains_key("projects/a/empty-managed"));
    assert!(!tree.contains_key("projects/link"));
    assert!(!live.path().join(".stoker/journal.json").exists());
}

/// An artifact that remembers the names of the threads its content is read on.
struct ThreadNames {
    inner: Arc<dyn Artifact>,
    names: std::sync::Mutex<BTreeSet<String>>,
}

impl ThreadNames {
    fn new(inner: Arc<dyn Artifact>) -> Arc<Self> {
        Arc::new(ThreadNames {
            inner,
            names: std::sync::Mutex::new(BTreeSet::new()),
        })
    }

    fn note(&self) {
        let name = std::thread::current().name().unwrap_or("").to_owned();
        self.names.lock().unwrap().insert(name);
    }

    fn names(&self) -> BTreeSet<String> {
        self.names.lock().unwrap().clone()
    }
}

impl Artifact for ThreadNames {
    fn revision(&self) -> &Revision {
        self.inner.revision()
    }
    fn list(&self) -> stoker_core::Result<Listing> {
        self.inner.list()
    }
    fn read(&self, path: &str) -> stoker_core::Result<Vec<u8>> {
        self.note();
        self.inner.read(path)
    }
    fn open(&self, path: &str) -> stoker_core::Result<Box<dyn std::io::Read + Send + '_>> {
        self.note();
        self.inner.open(path)
    }
}

#[test]
fn files_are_written_on_the_io_threads() {
    let repo = many_files(24);
    let artifact = ThreadNames::new(repo.artifact("r1"));
    let live = live();
    let options = ApplyOptions {
        io_threads: 3,
        ..ApplyOptions::default()
    };
    let report = sync_with(
        options,
        &request(artifact.clone(), vec![map("views", "views")], live.path()),
    )
    .unwrap();
    assert_eq!(report.added.len(), 24);
    let names = artifact.names();
    assert!(!names.is_empty());
    assert!(
        names.iter().all(|name| name.starts_with("stoker-io-")),
        "read on {names:?}"
    );
    assert!(names.len() <= 3, "more threads than asked for: {names:?}");
    assert_eq!(snapshot_live(live.path()), snapshot(repo.path()));
}

#[test]
fn one_io_thread_writes_on_the_callers_pool_with_the_same_result() {
    let repo = many_files(12);
    let mappings = vec![map("views", "views")];
    let mut results = Vec::new();
    for io_threads in [1, DEFAULT_IO_THREADS] {
        let artifact = ThreadNames::new(repo.artifact("r1"));
        let live = live();
        let options = ApplyOptions {
            io_threads,
            ..ApplyOptions::default()
        };
        let report = sync_with(
            options,
            &request(artifact.clone(), mappings.clone(), live.path()),
        )
        .unwrap();
        let on_io_threads = artifact
            .names()
            .iter()
            .any(|name| name.starts_with("stoker-io-"));
        assert_eq!(on_io_threads, io_threads > 1, "io_threads {io_threads}");
        results.push((paths(&report.added).join(","), snapshot_live(live.path())));
    }
    assert_eq!(results[0], results[1]);
}

/// A sync killed while writing one of the engine's own files (the journal, the manifest, a
/// report) leaves its temporary in the state directory, with no journal naming it.
#[test]
fn temporaries_left_in_the_state_directory_are_removed_by_the_next_sync() {
    let repo = Repo::new();
    repo.file("a.json", "{}");
    let live = live();
    let mappings = vec![map(".", ".")];
    sync(&request(repo.artifact("r1"), mappings.clone(), live.path())).unwrap();
    let state = live.path().join(".stoker");
    assert!(!state.join("journal.json").exists());
    write(&state, ".stoker-tmp-1-0-0000", "{\"temporaries\":[]}");
    write(&state, "reports/.stoker-tmp-2-0-0000", "{}");
    write(&state, "reports/kept-by-someone.txt", "not a temporary");

    let report = sync(&request(repo.artifact("r1"), mappings, live.path())).unwrap();
    assert_eq!(
        report.warnings,
        ["removed 2 temporary file(s) left by an interrupted sync"]
    );
    assert_eq!(temporaries(live.path()), Vec::<String>::new());
    assert!(state.join("reports/kept-by-someone.txt").exists());
    assert_eq!(report.changed(), 0);
}
