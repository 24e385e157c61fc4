//! `GitSource::fetch`, the `GitArtifact` it returns, and `changed_paths`.

use std::sync::Arc;

use crate::git_support::{Fixture, fast_retries, git, git_bytes, ls_tree, runtime};
use stoker_core::git::{GitSource, GitSourceConfig};
use stoker_core::{Artifact, EntryKind, GitErrorKind, Revision, Source};

/// Pack files of the cache repository, with their object counts.
fn packs(source: &GitSource) -> Vec<(String, usize)> {
    let dir = source.cache_repository().join("objects/pack");
    let mut packs: Vec<(String, usize)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "idx"))
        .map(|idx| {
            let output = std::process::Command::new("git")
                .arg("show-index")
                .stdin(std::fs::File::open(&idx).unwrap())
                .output()
                .unwrap();
            let count = String::from_utf8_lossy(&output.stdout).lines().count();
            (
                idx.file_name().unwrap().to_string_lossy().into_owned(),
                count,
            )
        })
        .collect();
    packs.sort();
    packs
}

#[test]
fn the_listing_and_contents_match_git_ls_tree_and_cat_file() {
    let fixture = Fixture::new();
    let source = fixture.source();
    let rt = runtime();
    let revision = rt.block_on(source.resolve("main")).unwrap();
    let artifact = rt.block_on(source.fetch(&revision)).unwrap();
    assert_eq!(artifact.revision(), &revision);
    let listing = artifact.list().unwrap();
    assert!(listing.warnings.is_empty(), "{:?}", listing.warnings);
    let expected = ls_tree(&fixture.bare, &revision.id);
    assert_eq!(listing.entries.len(), expected.len());
    for ((mode, kind, id, path), entry) in expected.iter().zip(&listing.entries) {
        assert_eq!(&entry.path, path);
        assert_eq!(entry.content_id.unwrap().to_string(), *id, "{path}");
        let expected_kind = match mode.as_str() {
            "100644" => EntryKind::File,
            "100755" => EntryKind::Executable,
            "120000" => EntryKind::Symlink,
            other => panic!("unexpected mode {other} ({kind})"),
        };
        assert_eq!(entry.kind, expected_kind, "{path}");
        if entry.kind.is_regular() {
            let content = git_bytes(&fixture.bare, &["cat-file", "blob", id]);
            assert_eq!(entry.size, content.len() as u64, "{path}");
            assert_eq!(artifact.read(path).unwrap(), content, "{path}");
            let mut streamed = Vec::new();
            std::io::Read::read_to_end(&mut artifact.open(path).unwrap(), &mut streamed).unwrap();
            assert_eq!(streamed, content);
            // Content ids are blob ids, so the engine can compare without reading.
            assert_eq!(
                stoker_core::ContentId::of_blob(&content),
                entry.content_id.unwrap()
            );
        }
    }
    assert_eq!(listing.get("run.sh").unwrap().kind, EntryKind::Executable);
    assert_eq!(listing.get("link").unwrap().kind, EntryKind::Symlink);
    // Symlinks and missing paths are not readable as files.
    assert!(artifact.read("link").is_err());
    assert!(matches!(
        artifact.read("nope"),
        Err(stoker_core::Error::NotFound { .. })
    ));
    assert!(artifact.read("projects").is_err());
    // A bare cache: no worktree, no checkout.
    assert!(source.cache_repository().join("HEAD").exists());
    assert!(!source.cache_repository().join("README.md").exists());
}

#[test]
fn a_cached_commit_answers_single_paths_as_its_listing_does() {
    let fixture = Fixture::new();
    let rt = runtime();
    let source = fixture.source();
    let revision = rt.block_on(source.resolve("main")).unwrap();
    let listed = rt.block_on(source.fetch(&revision)).unwrap();
    let listing = listed.list().unwrap();
    // Fetched again: the commit is cached, the listing is taken only when asked for.
    let lazy = rt.block_on(fixture.source().fetch(&revision)).unwrap();
    let mut paths: Vec<String> = vec!["".into(), "nope".into(), "projects/nope/x".into()];
    for entry in &listing.entries {
        paths.push(entry.path.clone());
        paths.push(format!("{}/below", entry.path));
        let mut dir = entry.path.as_str();
        while let Some((parent, _)) = dir.rsplit_once('/') {
            paths.push(parent.to_owned());
            dir = parent;
        }
    }
    assert!(paths.iter().any(|p| p == "projects"), "{paths:?}");
    for path in &paths {
        assert_eq!(
            lazy.entry(path).unwrap().as_ref(),
            listing.get(path),
            "entry({path:?})"
        );
        assert_eq!(
            lazy.has_entries_below(path).unwrap(),
            listing.below(path).next().is_some(),
            "has_entries_below({path:?})"
        );
    }
    // Blobs read through single-path lookups, then the listing on demand.
    assert_eq!(
        lazy.read("README.md").unwrap(),
        listed.read("README.md").unwrap()
    );
    assert_eq!(lazy.list().unwrap(), listing);
}

#[test]
fn the_first_fetch_is_shallow() {
    let fixture = Fixture::new();
    for n in 0..3 {
        fixture.commit(&format!("c{n}"), |work| {
            std::fs::write(work.join("README.md"), format!("v{n}\n")).unwrap();
        });
    }
    let source = fixture.source();
    let rt = runtime();
    let revision = rt.block_on(source.resolve("main")).unwrap();
    rt.block_on(source.fetch(&revision)).unwrap();
    let shallow = std::fs::read_to_string(source.cache_repository().join("shallow")).unwrap();
    assert_eq!(shallow.trim(), revision.id);
    // Only the commit and its tree were fetched: no parent commits.
    let parent = fixture.rev("main~1");
    let status = crate::git_support::git_command(source.cache_repository())
        .args(["cat-file", "-e", &parent])
        .status()
        .unwrap();
    assert!(!status.success(), "the parent was fetched");
}

#[test]
fn a_commit_already_cached_needs_no_network() {
    let fixture = Fixture::new();
    let source = fixture.source();
    let rt = runtime();
    let revision = rt.block_on(source.resolve("v1")).unwrap();
    rt.block_on(source.fetch(&revision)).unwrap();
    // The remote disappears: the cached commit is still served.
    std::fs::rename(&fixture.bare, fixture.root.path().join("gone.git")).unwrap();
    let again = fixture.source();
    let artifact = rt.block_on(again.fetch(&revision)).unwrap();
    assert_eq!(artifact.read("README.md").unwrap(), b"hello\n");
}

#[test]
fn a_new_commit_is_fetched_incrementally_and_diffed_exactly() {
    let fixture = Fixture::new();
    // Enough unchanged content that a full refetch would be obvious.
    fixture.commit("bulk", |work| {
        for n in 0..200 {
            std::fs::create_dir_all(work.join("bulk")).unwrap();
            std::fs::write(
                work.join(format!("bulk/{n}.json")),
                format!("{{\"n\": {n}}}\n"),
            )
            .unwrap();
        }
    });
    let source = fixture.source();
    let rt = runtime();
    let first = rt.block_on(source.resolve("main")).unwrap();
    rt.block_on(source.fetch(&first)).unwrap();
    let before = packs(&source);
    assert_eq!(before.len(), 1);

    fixture.commit("change", |work| {
        std::fs::write(work.join("README.md"), "changed\n").unwrap();
        std::fs::write(work.join("projects/demo/new.json"), "{}\n").unwrap();
        std::fs::remove_file(work.join("binary.bin")).unwrap();
        std::fs::write(work.join("bulk/7.json"), "{\"n\": 700}\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            work.join("projects/demo/project.json"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
    });
    let second = rt.block_on(source.resolve("main")).unwrap();
    let artifact = rt.block_on(source.fetch(&second)).unwrap();
    assert_eq!(artifact.read("README.md").unwrap(), b"changed\n");
    assert_eq!(artifact.read("bulk/7.json").unwrap(), b"{\"n\": 700}\n");
    assert_eq!(artifact.read("bulk/8.json").unwrap(), b"{\"n\": 8}\n");
    let after = packs(&source);
    assert_eq!(after.len(), 2, "{after:?}");
    let new_pack = after.iter().find(|p| !before.contains(p)).unwrap();
    // The commit, 4 trees (root, projects, projects/demo, bulk), 3 blobs.
    assert!(
        new_pack.1 <= 10,
        "the second fetch was not incremental: {new_pack:?}"
    );

    let changed = rt
        .block_on(source.changed_paths(&first, &second))
        .unwrap()
        .unwrap();
    assert_eq!(
        changed,
        [
            "README.md",
            "binary.bin",
            "bulk/7.json",
            "projects/demo/new.json",
            "projects/demo/project.json"
        ]
    );
    let expected = git(
        &fixture.bare,
        &["diff", "--name-only", &first.id, &second.id],
    );
    assert_eq!(changed.join("\n"), expected.trim());
    // The same commit twice: nothing changed.
    assert_eq!(
        rt.block_on(source.changed_paths(&second, &second)).unwrap(),
        Some(vec![])
    );
}

#[test]
fn changed_paths_is_unknown_beyond_the_shallow_boundary() {
    let fixture = Fixture::new();
    let old = Revision::new(fixture.rev("main"));
    fixture.commit("two", |work| std::fs::write(work.join("a"), "a").unwrap());
    fixture.commit("three", |work| std::fs::write(work.join("b"), "b").unwrap());
    let source = fixture.source();
    let rt = runtime();
    let new = rt.block_on(source.resolve("main")).unwrap();
    rt.block_on(source.fetch(&new)).unwrap();
    assert_eq!(rt.block_on(source.changed_paths(&old, &new)).unwrap(), None);
    // A cache that does not exist yet: unknown, not an error.
    let empty = GitSource::new(GitSourceConfig::new(
        fixture.url(),
        fixture.root.path().join("other"),
    ))
    .unwrap();
    assert_eq!(rt.block_on(empty.changed_paths(&old, &new)).unwrap(), None);
}

#[test]
fn a_sha_without_a_ref_is_fetched_by_id() {
    let fixture = Fixture::new();
    let first = fixture.rev("main");
    fixture.commit("two", |work| std::fs::write(work.join("a"), "a").unwrap());
    let source = fixture.source();
    let rt = runtime();
    // Not a tip any more (dev and the tags still point at it, but we ask by id).
    let artifact = rt
        .block_on(source.fetch(&Revision::new(first.clone())))
        .unwrap();
    assert!(artifact.list().unwrap().get("a").is_none());
    assert_eq!(artifact.read("README.md").unwrap(), b"hello\n");
    // A full SHA resolved as is.
    let revision = rt.block_on(source.resolve(&first)).unwrap();
    assert!(rt.block_on(source.fetch(&revision)).is_ok());
}

#[test]
fn a_ref_that_moved_after_resolve_still_fetches_the_resolved_commit() {
    let fixture = Fixture::new();
    let source = fixture.source();
    let rt = runtime();
    let resolved = rt.block_on(source.resolve("main")).unwrap();
    fixture.commit("moved", |work| {
        std::fs::write(work.join("README.md"), "moved\n").unwrap()
    });
    let artifact = rt.block_on(source.fetch(&resolved)).unwrap();
    assert_eq!(artifact.revision().id, resolved.id);
    assert_eq!(artifact.read("README.md").unwrap(), b"hello\n");
}

#[test]
fn an_unknown_commit_is_a_clear_error() {
    let fixture = Fixture::new();
    let source = fixture.source();
    let rt = runtime();
    let missing = "0123456789abcdef0123456789abcdef01234567";
    let revision = rt.block_on(source.resolve(missing)).unwrap();
    let Err(error) = rt.block_on(source.fetch(&revision)) else {
        panic!("fetched a commit that does not exist")
    };
    assert_eq!(
        error.git_kind(),
        Some(GitErrorKind::CommitNotFound),
        "{error}"
    );
    assert!(error.to_string().contains(missing), "{error}");
    let Err(error) = rt.block_on(source.fetch(&Revision::new("abc"))) else {
        panic!("fetched an abbreviated id")
    };
    assert!(
        error.to_string().contains("full 40-digit commit id"),
        "{error}"
    );
}

#[test]
fn many_threads_read_at_once() {
    let fixture = Fixture::new();
    fixture.commit("many", |work| {
        std::fs::create_dir_all(work.join("many")).unwrap();
        for n in 0..300 {
            std::fs::write(work.join(format!("many/{n}.txt")), "x".repeat(n * 7)).unwrap();
        }
    });
    let source = fixture.source();
    let rt = runtime();
    let revision = rt.block_on(source.resolve("main")).unwrap();
    let artifact: Arc<dyn Artifact> = rt.block_on(source.fetch(&revision)).unwrap();
    let listing = artifact.list().unwrap();
    let files: Vec<_> = listing
        .entries
        .iter()
        .filter(|e| e.kind.is_regular())
        .cloned()
        .collect();
    std::thread::scope(|scope| {
        for worker in 0..8 {
            let artifact = artifact.clone();
            let files = &files;
            scope.spawn(move || {
                for entry in files.iter().skip(worker).step_by(3) {
                    let bytes = artifact.read(&entry.path).unwrap();
                    assert_eq!(bytes.len() as u64, entry.size);
                    assert_eq!(
                        stoker_core::ContentId::of_blob(&bytes),
                        entry.content_id.unwrap()
                    );
                }
            });
        }
    });
}

#[test]
fn fetches_over_git_daemon() {
    let fixture = Fixture::new();
    let (_daemon, source) = fixture.daemon_source();
    let rt = runtime();
    let revision = rt.block_on(source.resolve("main")).unwrap();
    let artifact = rt.block_on(source.fetch(&revision)).unwrap();
    assert_eq!(artifact.read("README.md").unwrap(), b"hello\n");
    let second = fixture.commit("two", |work| {
        std::fs::write(work.join("README.md"), "two\n").unwrap()
    });
    let revision = rt.block_on(source.resolve("main")).unwrap();
    assert_eq!(revision.id, second);
    let artifact = rt.block_on(source.fetch(&revision)).unwrap();
    assert_eq!(artifact.read("README.md").unwrap(), b"two\n");
}

#[test]
fn non_utf8_names_are_skipped_with_a_warning() {
    let fixture = Fixture::new();
    // Build a tree with a non-UTF-8 name by hand (the work tree may refuse such names).
    let blob = {
        let mut child = crate::git_support::git_command(&fixture.bare)
            .args(["hash-object", "-w", "--stdin"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(child.stdin.as_mut().unwrap(), b"content\n").unwrap();
        let out = child.wait_with_output().unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let mut tree_input = format!("100644 blob {blob}\tgood.txt\0").into_bytes();
    tree_input.extend_from_slice(format!("100644 blob {blob}\t").as_bytes());
    tree_input.extend_from_slice(b"bad\xffname\0");
    let tree = {
        let mut child = crate::git_support::git_command(&fixture.bare)
            .args(["mktree", "-z"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(child.stdin.as_mut().unwrap(), &tree_input).unwrap();
        let out = child.wait_with_output().unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let commit = git(&fixture.bare, &["commit-tree", &tree, "-m", "odd names"]);
    git(
        &fixture.bare,
        &["update-ref", "refs/heads/odd", commit.trim()],
    );
    let source = fixture.source();
    let rt = runtime();
    let revision = rt.block_on(source.resolve("odd")).unwrap();
    let listing = rt
        .block_on(source.fetch(&revision))
        .unwrap()
        .list()
        .unwrap();
    let paths: Vec<_> = listing.entries.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(paths, ["good.txt"]);
    assert_eq!(listing.warnings.len(), 1);
    assert!(
        listing.warnings[0].contains("UTF-8"),
        "{:?}",
        listing.warnings
    );
    // A diff that meets such a name cannot say what changed (its warning comes or goes): the
    // engine is told to compare everything.
    let main = rt.block_on(source.resolve("main")).unwrap();
    rt.block_on(source.fetch(&main)).unwrap();
    assert_eq!(
        rt.block_on(source.changed_paths(&main, &revision)).unwrap(),
        None
    );
    assert!(
        rt.block_on(source.changed_paths(&main, &main))
            .unwrap()
            .is_some_and(|paths| paths.is_empty())
    );
}

#[test]
fn head_and_annotated_tags_are_fetched_by_their_refs() {
    let fixture = Fixture::new();
    fixture.commit("two", |work| {
        std::fs::write(work.join("README.md"), "two\n").unwrap()
    });
    let source = GitSource::new(
        GitSourceConfig::new(fixture.url(), fixture.cache())
            .with_retry(fast_retries())
            .with_progress(true),
    )
    .unwrap();
    let rt = runtime();
    let head = rt.block_on(source.resolve("HEAD")).unwrap();
    assert_eq!(
        rt.block_on(source.fetch(&head))
            .unwrap()
            .read("README.md")
            .unwrap(),
        b"two\n"
    );
    let v1 = rt.block_on(source.resolve("v1")).unwrap();
    assert_eq!(
        rt.block_on(source.fetch(&v1))
            .unwrap()
            .read("README.md")
            .unwrap(),
        b"hello\n"
    );
    // A fetch in another process (no memory of the resolve) finds the same refs.
    let fresh = fixture.source();
    let artifact = rt.block_on(fresh.fetch(&v1)).unwrap();
    assert_eq!(artifact.revision().id, fixture.rev("v1^{commit}"));
}

#[test]
fn full_history_keeps_every_commit_diffable() {
    let fixture = Fixture::new();
    let first = Revision::new(fixture.rev("main"));
    fixture.commit("two", |work| std::fs::write(work.join("a"), "a").unwrap());
    fixture.commit("three", |work| std::fs::write(work.join("b"), "b").unwrap());
    let source = GitSource::new(
        GitSourceConfig::new(fixture.url(), fixture.cache())
            .with_depth(0)
            .with_retry(fast_retries()),
    )
    .unwrap();
    let rt = runtime();
    let head = rt.block_on(source.resolve("main")).unwrap();
    rt.block_on(source.fetch(&head)).unwrap();
    assert!(!source.cache_repository().join("shallow").exists());
    assert_eq!(
        rt.block_on(source.changed_paths(&first, &head)).unwrap(),
        Some(vec!["a".to_owned(), "b".to_owned()])
    );
    // Older commits are already there: no network needed.
    std::fs::rename(&fixture.bare, fixture.root.path().join("gone.git")).unwrap();
    let artifact = rt.block_on(source.fetch(&first)).unwrap();
    assert!(artifact.list().unwrap().get("a").is_none());
}
