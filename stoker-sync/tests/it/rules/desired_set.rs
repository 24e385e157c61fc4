//! DESIGN §3 "Desired set": mappings in order, overlay, types, `required`, rendered and
//! hostile paths, excludes, and entries of the artifact that are not regular files.

use super::*;

#[test]
fn ordered_overlay_later_mapping_wins_at_the_same_destination() {
    let repo = Repo::new();
    repo.file("base/projects/a/view.json", "base view")
        .file("base/projects/a/only-base.json", "base only")
        .file("site/projects/a/view.json", "site view");
    let live = live();
    let request = request(
        repo.artifact("r1"),
        vec![dir("base", "."), dir("site", ".")],
        live.path(),
    );
    sync(&request).unwrap();
    let tree = snapshot_live(live.path());
    assert_eq!(tree["projects/a/view.json"], text("site view"));
    assert_eq!(tree["projects/a/only-base.json"], text("base only"));

    // Reversed order: the earlier mapping's file is overlaid.
    let reversed = crate::common::request(
        repo.artifact("r1"),
        vec![dir("site", "."), dir("base", ".")],
        live.path(),
    );
    let report = sync(&reversed).unwrap();
    assert_eq!(paths(&report.modified), ["projects/a/view.json"]);
    assert_eq!(
        snapshot_live(live.path())["projects/a/view.json"],
        text("base view")
    );
}

#[test]
fn ordered_overlay_a_file_mapping_overlays_a_file_of_an_earlier_dir_mapping() {
    let repo = Repo::new();
    repo.file("config/db.json", "generic")
        .file("config/other.json", "other")
        .file("sites/north/db.json", "north");
    let live = live();
    let request = request(
        repo.artifact("r1"),
        vec![
            dir("config", "data/config"),
            file("sites/north/db.json", "data/config/db.json"),
        ],
        live.path(),
    );
    let report = sync(&request).unwrap();
    assert_eq!(report.added.len(), 2);
    let tree = snapshot_live(live.path());
    assert_eq!(tree["data/config/db.json"], text("north"));
    assert_eq!(tree["data/config/other.json"], text("other"));
}

#[test]
fn dir_mapping_maps_every_file_below_source_to_destination_rest() {
    let repo = Repo::new();
    repo.file("src/a.json", "a")
        .file("src/deep/er/b.json", "b")
        .file("srcx/not-below.json", "x")
        .file("other/c.json", "c");
    let live = live();
    sync(&request(
        repo.artifact("r1"),
        vec![dir("src", "dst/here")],
        live.path(),
    ))
    .unwrap();
    let tree = snapshot_live(live.path());
    let files: Vec<&str> = tree
        .iter()
        .filter(|(_, node)| matches!(node, Node::File { .. }))
        .map(|(path, _)| path.as_str())
        .collect();
    assert_eq!(files, ["dst/here/a.json", "dst/here/deep/er/b.json"]);
}

#[test]
fn dir_mapping_of_the_repository_root_maps_everything() {
    let repo = Repo::new();
    repo.file("a.json", "a").file("b/c.json", "c");
    let live = live();
    sync(&request(
        repo.artifact("r1"),
        vec![dir(".", "gw")],
        live.path(),
    ))
    .unwrap();
    let tree = snapshot_live(live.path());
    assert_eq!(tree["gw/a.json"], text("a"));
    assert_eq!(tree["gw/b/c.json"], text("c"));
}

#[test]
fn file_mapping_maps_exactly_one_file() {
    let repo = Repo::new();
    repo.file("dir/one.json", "one").file("dir/two.json", "two");
    let live = live();
    let report = sync(&request(
        repo.artifact("r1"),
        vec![file("dir/one.json", "target/renamed.json")],
        live.path(),
    ))
    .unwrap();
    assert_eq!(paths(&report.added), ["target/renamed.json"]);
    let tree = snapshot_live(live.path());
    assert_eq!(tree.len(), 2, "{tree:?}"); // target/ and the file
    assert_eq!(tree["target/renamed.json"], text("one"));
}

#[test]
fn omitted_type_is_inferred_from_the_artifact() {
    let repo = Repo::new();
    repo.file("projects/a/project.json", "{}")
        .file("versions.json", "1");
    let live = live();
    sync(&request(
        repo.artifact("r1"),
        vec![
            map("projects", "projects"),
            map("versions.json", ".versions.json"),
        ],
        live.path(),
    ))
    .unwrap();
    let tree = snapshot_live(live.path());
    assert_eq!(tree["projects/a/project.json"], text("{}"));
    assert_eq!(tree[".versions.json"], text("1"));
}

#[test]
fn given_type_mismatching_the_source_is_an_error_naming_the_mapping() {
    let repo = Repo::new();
    repo.file("projects/a/project.json", "{}")
        .file("versions.json", "1");
    let live = live();
    write(live.path(), "projects/keep.json", "keep");
    let before = snapshot(live.path());

    let as_file = error_text(sync(&request(
        repo.artifact("r1"),
        vec![map("versions.json", "v.json"), file("projects", "projects")],
        live.path(),
    )));
    assert!(as_file.contains("mappings[1]"), "{as_file}");
    assert!(as_file.contains("type is file"), "{as_file}");

    let as_dir = error_text(sync(&request(
        repo.artifact("r1"),
        vec![dir("versions.json", "v")],
        live.path(),
    )));
    assert!(as_dir.contains("mappings[0]"), "{as_dir}");
    assert!(as_dir.contains("type is dir"), "{as_dir}");
    // Planning failed: nothing was written, not even a partial set.
    assert_eq!(snapshot_live(live.path()), before);
}

#[test]
fn required_mapping_with_missing_source_is_an_error_naming_the_mapping() {
    let repo = Repo::new();
    repo.file("projects/a/project.json", "{}");
    let live = live();
    let mut required = map("gateways/missing", "projects");
    required.required = true;
    let text = error_text(sync(&request(
        repo.artifact("r1"),
        vec![map("projects", "projects"), required],
        live.path(),
    )));
    assert!(text.contains("mappings[1]"), "{text}");
    assert!(text.contains("gateways/missing"), "{text}");
    assert!(snapshot_live(live.path()).is_empty());
}

#[test]
fn required_mapping_whose_source_is_a_symlink_is_an_error_naming_the_mapping() {
    let outside = tempfile::tempdir().unwrap();
    write(outside.path(), "projects/a/project.json", "{}");
    let repo = Repo::new();
    repo.file("x.json", "{}");
    symlink(repo.path(), "projects", outside.path().join("projects"));
    let live = live();
    let mut required = map("projects", "projects");
    required.required = true;
    let text = error_text(sync(&request(
        repo.artifact("r1"),
        vec![required],
        live.path(),
    )));
    assert!(text.contains("mappings[0]"), "{text}");
    assert!(text.contains("symlink"), "{text}");
    // Not required: skipped with a warning.
    let report = sync(&projects_request(repo.artifact("r1"), live.path())).unwrap();
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("mappings[0]") && w.contains("symlink"))
    );
    assert_eq!(report.changed(), 0);
}

#[test]
fn optional_mapping_with_missing_source_is_skipped_with_a_warning_and_destination_untouched() {
    let repo = Repo::new();
    repo.file("projects/a/project.json", "{}");
    let live = live();
    write(
        live.path(),
        "config/resources/dev/existing.json",
        "live only",
    );
    write(
        live.path(),
        "config/resources/dev/sub/deeper.json",
        "live only too",
    );
    let before = fingerprints(&live.path().join("config"));

    let mut with_name = request(
        repo.artifact("r1"),
        vec![
            map("projects", "projects"),
            map("config/{{.GatewayName}}", "config/resources/dev"),
        ],
        live.path(),
    );
    with_name.context = TemplateContext::default().with_gateway_name("gw1");
    let report = sync(&with_name).unwrap();
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("mappings[1]") && w.contains("config/gw1")),
        "{:?}",
        report.warnings
    );
    assert!(report.deleted.is_empty());
    assert_eq!(fingerprints(&live.path().join("config")), before);
}

#[test]
fn templated_source_and_destination_are_rendered() {
    let repo = Repo::new();
    repo.file("gateways/gw1/projects/a/project.json", "{}")
        .file("gateways/gw2/projects/b/project.json", "{}")
        .file("config/dev/db.json", "dev db")
        .file("sites/north.json", "north");
    let live = live();
    let mut request = request(
        repo.artifact("r1"),
        vec![
            map("gateways/{{.GatewayName}}/projects", "projects"),
            map("config/{{ .Vars.env }}", "config/resources/{{.Vars.env}}"),
            map("sites/{{.Labels.site}}.json", "site-{{.Labels.site}}.json"),
        ],
        live.path(),
    );
    request.profile.vars.insert("env".into(), "dev".into());
    request.context = TemplateContext::default()
        .with_gateway_name("gw1")
        .with_label("site", "north");
    let report = sync(&request).unwrap();
    assert_eq!(
        paths(&report.added),
        [
            "config/resources/dev/db.json",
            "projects/a/project.json",
            "site-north.json"
        ]
    );
    assert_eq!(report.projects, ["a"]);
}

#[test]
fn context_vars_win_over_profile_vars() {
    let repo = Repo::new();
    repo.file("config/dev/db.json", "dev")
        .file("config/prod/db.json", "prod");
    let live = live();
    let mut request = request(
        repo.artifact("r1"),
        vec![map("config/{{.Vars.env}}", "config")],
        live.path(),
    );
    request.profile.vars.insert("env".into(), "dev".into());
    request.context = TemplateContext::default().with_var("env", "prod");
    sync(&request).unwrap();
    assert_eq!(snapshot_live(live.path())["config/db.json"], text("prod"));
}

/// Runs a one-mapping (plus a valid first mapping) sync whose second mapping is `bad` and
/// returns the error text; checks nothing was written.
fn refused(bad: Mapping, vars: &[(&str, &str)]) -> String {
    let repo = Repo::new();
    repo.file("projects/a/project.json", "{}")
        .file("etc/passwd", "x");
    let live = live();
    let mut request = request(
        repo.artifact("r1"),
        vec![map("projects", "projects"), bad],
        live.path(),
    );
    for (key, value) in vars {
        request.profile.vars.insert((*key).into(), (*value).into());
    }
    let text = error_text(sync(&request));
    assert!(
        snapshot_live(live.path()).is_empty(),
        "something was written"
    );
    text
}

#[test]
fn absolute_destination_is_an_error_naming_the_mapping() {
    let text = refused(map("projects", "/etc"), &[]);
    assert!(text.contains("mappings[1].destination"), "{text}");
    assert!(text.contains("absolute"), "{text}");
}

#[test]
fn absolute_source_is_an_error_naming_the_mapping() {
    let text = refused(map("/etc/passwd", "passwd"), &[]);
    assert!(text.contains("mappings[1].source"), "{text}");
}

#[test]
fn destination_with_dot_dot_is_an_error_naming_the_mapping() {
    for bad in ["..", "../outside", "projects/../../x", "a/.."] {
        let text = refused(map("projects", bad), &[]);
        assert!(text.contains("mappings[1].destination"), "{bad}: {text}");
        assert!(text.contains(".."), "{bad}: {text}");
    }
}

#[test]
fn source_with_dot_dot_is_an_error_naming_the_mapping() {
    let text = refused(map("projects/../../../etc", "x"), &[]);
    assert!(text.contains("mappings[1].source"), "{text}");
}

#[test]
fn template_rendering_to_dot_dot_or_an_absolute_path_is_refused() {
    for (value, expected) in [
        ("..", ".."),
        ("../..", ".."),
        ("/etc", "absolute"),
        ("//etc", "absolute"),
        ("ok/../../etc", ".."),
    ] {
        let text = refused(map("projects", "{{.Vars.target}}"), &[("target", value)]);
        assert!(text.contains("mappings[1].destination"), "{value}: {text}");
        assert!(text.contains(expected), "{value}: {text}");
        let text = refused(map("{{.Vars.target}}", "x"), &[("target", value)]);
        assert!(text.contains("mappings[1].source"), "{value}: {text}");
    }
}

#[test]
fn empty_rendered_destination_of_a_file_mapping_is_an_error_naming_the_mapping() {
    for value in ["", ".", "./"] {
        let text = refused(map("etc/passwd", "{{.Vars.target}}"), &[("target", value)]);
        assert!(text.contains("mappings[1]"), "{value:?}: {text}");
    }
}

#[test]
fn empty_rendered_path_is_an_error_naming_the_mapping() {
    // A template that renders to nothing is never the live root (or the repository root) by
    // accident: that would put the whole gateway directory under management.
    let text = refused(map("projects", "{{.Vars.target}}"), &[("target", "")]);
    assert!(text.contains("mappings[1]"), "{text}");
    assert!(text.contains("empty"), "{text}");
    let text = refused(map("{{.Vars.target}}", "projects"), &[("target", "")]);
    assert!(text.contains("mappings[1]"), "{text}");
    assert!(text.contains("empty"), "{text}");
}

#[test]
fn rendered_path_longer_than_4096_bytes_is_an_error_naming_the_mapping() {
    let long = "d/".repeat(2100);
    let text = refused(map("projects", &long), &[]);
    assert!(text.contains("mappings[1].destination"), "{text}");
    assert!(text.contains("4096"), "{text}");
    let text = refused(map("projects", "{{.Vars.long}}"), &[("long", &long)]);
    assert!(text.contains("mappings[1].destination"), "{text}");
}

#[test]
fn destination_of_a_dir_mapping_longer_than_4096_bytes_is_an_error_naming_the_mapping() {
    // Source and destination are short, but destination + the file's path below the source
    // is not.
    let component = "c".repeat(200);
    let deep = vec![component.as_str(); 20].join("/");
    let artifact = MemArtifact::new("r1", true).file(&format!("src/{deep}/f.json"), "x");
    let live = live();
    let text = error_text(sync(&request(
        Arc::new(artifact),
        vec![map("src", &"d".repeat(200))],
        live.path(),
    )));
    assert!(text.contains("mappings[0]"), "{text}");
    assert!(text.contains("4096"), "{text}");
    assert!(snapshot_live(live.path()).is_empty());
}

#[test]
fn unknown_template_variable_is_an_error_naming_the_template() {
    let text = refused(map("projects", "{{.Vars.nope}}"), &[]);
    assert!(text.contains("mappings[1].destination"), "{text}");
    assert!(text.contains(".Vars.nope"), "{text}");
    let text = refused(map("{{.Gateway}}", "projects"), &[]);
    assert!(text.contains("mappings[1].source"), "{text}");
    assert!(text.contains("unknown variable .Gateway"), "{text}");
}

#[test]
fn default_excludes_drop_git_directories_and_gitkeep_files() {
    let repo = Repo::new();
    repo.file("projects/.git/config", "[core]")
        .file("projects/a/.git/HEAD", "ref")
        .file("projects/a/.gitkeep", "")
        .file("projects/a/.github/ok.json", "kept")
        .file("projects/a/project.json", "{}");
    let live = live();
    let report = sync(&projects_request(repo.artifact("r1"), live.path())).unwrap();
    assert_eq!(
        paths(&report.added),
        ["projects/a/.github/ok.json", "projects/a/project.json"]
    );
}

#[test]
fn excluded_files_are_neither_written_nor_deleted_in_live() {
    let repo = Repo::new();
    repo.file("projects/a/project.json", "{}")
        .file("projects/a/notes.bak", "from repo")
        .file("projects/a/deep/x.bak", "from repo");
    let live = live();
    write(live.path(), "projects/a/notes.bak", "live notes");
    write(live.path(), "projects/b/keep.bak", "live only");
    write(live.path(), "projects/.git/config", "live git");
    write(live.path(), "projects/a/.gitkeep", "");
    let mut request = projects_request(repo.artifact("r1"), live.path());
    request.profile.exclude_patterns.push("**/*.bak".into());
    let report = sync(&request).unwrap();
    assert_eq!(paths(&report.added), ["projects/a/project.json"]);
    assert!(report.deleted.is_empty(), "{:?}", report.deleted);
    let tree = snapshot_live(live.path());
    assert_eq!(tree["projects/a/notes.bak"], text("live notes"));
    assert_eq!(tree["projects/b/keep.bak"], text("live only"));
    assert_eq!(tree["projects/.git/config"], text("live git"));
    assert!(tree.contains_key("projects/a/.gitkeep"));
    assert!(!tree.contains_key("projects/a/deep/x.bak"));
}

#[test]
fn excludes_are_doublestar_globs_matched_against_the_destination_path() {
    let repo = Repo::new();
    repo.file("src/a/x.tmp", "1")
        .file("src/a/b/y.tmp", "2")
        .file("src/z.tmp", "3")
        .file("src/keep.json", "4");
    let live = live();
    let mut request = request(repo.artifact("r1"), vec![map("src", "dst")], live.path());
    // Against the destination (`dst/...`), not the source (`src/...`); `*` stays within a
    // component, `**` crosses them.
    request.profile.exclude_patterns = vec!["src/**".into(), "dst/*/*.tmp".into()];
    let report = sync(&request).unwrap();
    assert_eq!(
        paths(&report.added),
        ["dst/a/b/y.tmp", "dst/keep.json", "dst/z.tmp"]
    );
    request.profile.exclude_patterns = vec!["dst/**/*.tmp".into()];
    let report = sync(&request).unwrap();
    // `dst/**/*.tmp` also matches `dst/z.tmp`: excluded now, so left alone in live.
    assert_eq!(paths(&report.added), Vec::<&str>::new());
    assert!(report.deleted.is_empty());
}

/// Regression (issue 15, data loss 3): an exclude that matches a directory was matched against
/// file paths only, so `**/views` deleted a Designer user's `views/local/view.json` as an orphan
/// and still wrote the repository's files below `views/`. A pattern that matches a directory
/// excludes its subtree, on both sides.
#[test]
fn an_exclude_matching_a_directory_excludes_its_whole_subtree() {
    let repo = Repo::new();
    repo.file("projects/p/views/main/view.json", "from git")
        .file("projects/p/tags/t.json", "from git")
        .file("projects/p/project.json", "{}")
        .file("projects/p/viewsx/a.json", "not excluded");
    let live = live();
    write(
        live.path(),
        "projects/p/views/local/view.json",
        "designer's",
    );
    write(live.path(), "projects/p/tags/local.json", "designer's");
    write(live.path(), "projects/p/stale.json", "an orphan");
    let mut request = projects_request(repo.artifact("r1"), live.path());
    request.profile.exclude_patterns = vec!["**/views".into(), "**/tags".into()];
    let report = sync(&request).unwrap();
    assert_eq!(
        paths(&report.added),
        ["projects/p/project.json", "projects/p/viewsx/a.json"]
    );
    assert_eq!(paths(&report.deleted), ["projects/p/stale.json"]);
    let tree = snapshot_live(live.path());
    assert_eq!(tree["projects/p/views/local/view.json"], text("designer's"));
    assert_eq!(tree["projects/p/tags/local.json"], text("designer's"));
    assert!(!tree.contains_key("projects/p/views/main/view.json"));
    assert!(!tree.contains_key("projects/p/tags/t.json"));

    // Once the pattern is removed the subtree is managed again: written and cleaned.
    request.profile.exclude_patterns = vec![];
    let report = sync(&request).unwrap();
    assert_eq!(
        paths(&report.added),
        ["projects/p/tags/t.json", "projects/p/views/main/view.json"]
    );
    assert_eq!(
        paths(&report.deleted),
        [
            "projects/p/tags/local.json",
            "projects/p/views/local/view.json"
        ]
    );
}

#[test]
fn symlinks_and_special_entries_in_the_artifact_are_skipped_with_warnings() {
    let artifact = MemArtifact::new("r1", true)
        .file("projects/a/project.json", "{}")
        .with("projects/a/link.json", EntryKind::Symlink, "")
        .with("projects/a/submodule", EntryKind::Other, "");
    let live = live();
    let report = sync(&projects_request(Arc::new(artifact), live.path())).unwrap();
    assert_eq!(paths(&report.added), ["projects/a/project.json"]);
    assert_eq!(report.warnings.len(), 2, "{:?}", report.warnings);
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("projects/a/link.json"))
    );
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("projects/a/submodule"))
    );
    assert_eq!(snapshot_live(live.path()).len(), 3); // projects, projects/a, project.json
}

#[test]
fn special_files_in_a_local_repository_are_skipped_with_a_warning() {
    let repo = Repo::new();
    repo.file("projects/a/project.json", "{}");
    let _socket =
        std::os::unix::net::UnixListener::bind(repo.path().join("projects/a/agent.sock")).unwrap();
    let live = live();
    let report = sync(&projects_request(repo.artifact("r1"), live.path())).unwrap();
    assert_eq!(paths(&report.added), ["projects/a/project.json"]);
    assert_warned(&report, "agent.sock");
}

#[test]
fn repository_symlink_pointing_outside_the_repository_is_never_followed() {
    let outside = tempfile::tempdir().unwrap();
    write(outside.path(), "secret.txt", "SECRET");
    write(outside.path(), "dir/inner.txt", "SECRET");
    let repo = Repo::new();
    repo.file("projects/a/project.json", "{}");
    symlink(
        repo.path(),
        "projects/a/secret.txt",
        outside.path().join("secret.txt"),
    );
    symlink(repo.path(), "projects/linked", outside.path().join("dir"));
    symlink(
        repo.path(),
        "linked-file",
        outside.path().join("secret.txt"),
    );
    symlink(repo.path(), "linked-dir", outside.path().join("dir"));
    let live = live();
    let mut optional_into_link = map("linked-dir/inner.txt", "inner.txt");
    optional_into_link.required = false;
    let report = sync(&request(
        repo.artifact("r1"),
        vec![
            map("projects", "projects"),
            map("linked-file", "file.txt"),
            map("linked-dir", "dir"),
            optional_into_link,
        ],
        live.path(),
    ))
    .unwrap();
    assert_eq!(paths(&report.added), ["projects/a/project.json"]);
    for (path, node) in snapshot(live.path()) {
        if let Node::File { bytes, .. } = node {
            assert!(
                !bytes.windows(6).any(|w| w == b"SECRET"),
                "{path} has the secret"
            );
        }
    }
    assert!(report.warnings.len() >= 4, "{:?}", report.warnings);

    // Required through a symlinked directory: the path does not exist in the repository.
    let mut required = map("linked-dir/inner.txt", "inner.txt");
    required.required = true;
    let text = error_text(sync(&request(
        repo.artifact("r1"),
        vec![required],
        live.path(),
    )));
    assert!(text.contains("mappings[0]"), "{text}");
}

#[test]
fn non_utf8_file_name_in_the_source_is_skipped_with_a_warning() {
    use std::os::unix::ffi::OsStrExt;
    let repo = Repo::new();
    repo.file("projects/a/project.json", "{}");
    std::fs::write(
        repo.path()
            .join("projects/a")
            .join(std::ffi::OsStr::from_bytes(b"bad\xffname.json")),
        "x",
    )
    .unwrap();
    let live = live();
    let report = sync(&projects_request(repo.artifact("r1"), live.path())).unwrap();
    assert_eq!(paths(&report.added), ["projects/a/project.json"]);
    assert_warned(&report, "UTF-8");
}

/// Regression: entry paths from the artifact were trusted to be normalised; a hostile source
/// (an archive, a bucket) listing `../x` or `/abs/x` made the engine write outside the live
/// directory.
#[test]
fn hostile_artifact_entry_paths_are_skipped_never_written_outside_live() {
    let parent = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let live = parent.path().join("live");
    let absolute = outside.path().join("abs.txt");
    let artifact = MemArtifact::new("r1", true)
        .file("ok.json", "{}")
        .file("../escape.txt", "escaped")
        .file("a/../../escape2.txt", "escaped")
        .file(absolute.to_str().unwrap(), "escaped")
        .file("b//c.json", "not canonical")
        .file("d/./e.json", "not canonical");
    let report = sync(&request(Arc::new(artifact), vec![dir(".", ".")], &live)).unwrap();
    assert_eq!(paths(&report.added), ["ok.json"]);
    assert_eq!(report.warnings.len(), 5, "{:?}", report.warnings);
    assert!(!absolute.exists());
    assert_eq!(
        snapshot(parent.path())
            .keys()
            .filter(|p| !p.starts_with("live/.stoker"))
            .collect::<Vec<_>>(),
        ["live", "live/ok.json"]
    );
}

#[test]
fn artifact_entries_with_engine_temporary_names_are_not_synced() {
    let artifact = MemArtifact::new("r1", true)
        .file("projects/a/project.json", "{}")
        .file("projects/a/.stoker-tmp-1-2-3", "looks like ours");
    let live = live();
    let report = sync(&projects_request(Arc::new(artifact), live.path())).unwrap();
    assert_eq!(paths(&report.added), ["projects/a/project.json"]);
    assert_eq!(temporaries(live.path()), Vec::<String>::new());
    // Regression (issue 15 item 7): it was skipped silently.
    assert_eq!(
        report.warnings,
        [
            "skipped projects/a/.stoker-tmp-1-2-3: names starting with \".stoker-tmp-\" are reserved for Stoker's temporary files"
        ]
    );
}

/// Regression (issue 15 item 8): a name longer than the file system allows failed halfway
/// through the apply (`File name too long`) instead of at planning, naming the mapping.
#[test]
fn a_destination_name_over_the_file_system_limit_is_an_error_naming_the_mapping() {
    let long = "n".repeat(256);
    let artifact = MemArtifact::new("r1", true)
        .file("projects/a/project.json", "{}")
        .file(&format!("projects/a/{long}.json"), "too long");
    let live = live();
    let text = error_text(sync(&projects_request(Arc::new(artifact), live.path())));
    assert!(
        text.contains("mappings[0]")
            && text.contains("a name of 261 bytes; file systems allow 255"),
        "{text}"
    );
    assert!(snapshot(live.path()).is_empty(), "nothing written");

    // A rendered destination is checked too.
    let artifact = MemArtifact::new("r1", true).file("p/x.json", "{}");
    let text = error_text(sync(&request(
        Arc::new(artifact),
        vec![map("p", &format!("config/{long}"))],
        live.path(),
    )));
    assert!(
        text.contains("mappings[0]") && text.contains("destination has a name of 256 bytes"),
        "{text}"
    );
}
