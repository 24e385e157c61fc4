//! One test per rule of DESIGN section 3 ("The sync engine — exact semantics"), each named
//! after the rule it checks. Regression tests for engine bugs say so in their doc comment.
// Helpers outside `#[test]` functions panic on failure just as the tests do.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::*;
use stoker_core::{Artifact, ContentId, EntryKind, Listing, Mapping, Revision, TemplateContext};
use stoker_sync::{ApplyOptions, DEFAULT_IO_THREADS, Error};

fn live() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

fn id(bytes: &[u8]) -> ContentId {
    ContentId::of_blob(bytes)
}

fn error_text(result: stoker_sync::Result<stoker_core::SyncReport>) -> String {
    match result {
        Ok(report) => panic!("expected an error, got {report:?}"),
        Err(error) => {
            // The whole chain, so that a wrapped core error's context shows.
            let mut text = error.to_string();
            let mut source = std::error::Error::source(&error);
            while let Some(inner) = source {
                text.push_str(": ");
                text.push_str(&inner.to_string());
                source = inner.source();
            }
            text
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Desired set: mappings, overlay, types, required
// ---------------------------------------------------------------------------------------------

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
    let reversed = common::request(
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
    let report = sync(&request(
        repo.artifact("r1"),
        vec![map("projects", "projects")],
        live.path(),
    ))
    .unwrap();
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

// ---------------------------------------------------------------------------------------------
// Templated paths and hostile paths
// ---------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------
// Excludes
// ---------------------------------------------------------------------------------------------

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
fn default_excludes_drop_git_directories_and_gitkeep_files() {
    let repo = Repo::new();
    repo.file("projects/.git/config", "[core]")
        .file("projects/a/.git/HEAD", "ref")
        .file("projects/a/.gitkeep", "")
        .file("projects/a/.github/ok.json", "kept")
        .file("projects/a/project.json", "{}");
    let live = live();
    let report = sync(&request(
        repo.artifact("r1"),
        vec![map("projects", "projects")],
        live.path(),
    ))
    .unwrap();
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
    let mut request = request(
        repo.artifact("r1"),
        vec![map("projects", "projects")],
        live.path(),
    );
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
    let mut request = request(
        repo.artifact("r1"),
        vec![map("projects", "projects")],
        live.path(),
    );
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

// ---------------------------------------------------------------------------------------------
// Symlinks and special entries in the artifact
// ---------------------------------------------------------------------------------------------

#[test]
fn symlinks_and_special_entries_in_the_artifact_are_skipped_with_warnings() {
    let artifact = MemArtifact::new("r1", true)
        .file("projects/a/project.json", "{}")
        .with("projects/a/link.json", EntryKind::Symlink, "")
        .with("projects/a/submodule", EntryKind::Other, "");
    let live = live();
    let report = sync(&request(
        Arc::new(artifact),
        vec![map("projects", "projects")],
        live.path(),
    ))
    .unwrap();
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
    let report = sync(&request(
        repo.artifact("r1"),
        vec![map("projects", "projects")],
        live.path(),
    ))
    .unwrap();
    assert_eq!(paths(&report.added), ["projects/a/project.json"]);
    assert!(
        report.warnings.iter().any(|w| w.contains("agent.sock")),
        "{:?}",
        report.warnings
    );
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

// ---------------------------------------------------------------------------------------------
// Content: templates and patches
// ---------------------------------------------------------------------------------------------

#[test]
fn template_true_renders_file_contents() {
    let repo = Repo::new();
    repo.file(
        "config/gateway.json",
        "{\"name\": \"{{.GatewayName}}\", \"site\": \"{{.Vars.site}}\", \"view\": \"{view.params.x}\"}",
    )
    .file("plain/raw.json", "{{.GatewayName}}");
    let live = live();
    let mut templated = map("config", "config");
    templated.template = true;
    let mut request = request(
        repo.artifact("r1"),
        vec![templated, map("plain", "plain")],
        live.path(),
    );
    request.profile.vars.insert("site".into(), "7".into());
    request.context = TemplateContext::default().with_gateway_name("gw1");
    let report = sync(&request).unwrap();
    let rendered = b"{\"name\": \"gw1\", \"site\": \"7\", \"view\": \"{view.params.x}\"}";
    let tree = snapshot_live(live.path());
    assert_eq!(tree["config/gateway.json"], text(rendered));
    // Without `template: true` the braces are content.
    assert_eq!(tree["plain/raw.json"], text("{{.GatewayName}}"));
    let change = report
        .added
        .iter()
        .find(|c| c.path == "config/gateway.json")
        .unwrap();
    assert_eq!(change.content_id, Some(id(rendered)));
    // The rendered content is what the manifest vouches for: a rerun changes nothing.
    assert_eq!(sync(&request).unwrap().changed(), 0);
}

/// Incremental planning of transformed files: when the source's diff since the manifest's
/// revision does not list a template's source (and the variables are the same), its content id
/// comes from the manifest without reading or rendering it; a listed source, other variables, or
/// a template reading `{{.Commit}}` is rendered again. The results are the same either way.
#[test]
fn unchanged_template_sources_are_not_rendered_again_between_revisions() {
    let artifact = |revision: &str, view: &str| {
        Arc::new(
            MemArtifact::new(revision, false)
                .file("config/site.json", "{\"site\": \"{{.Vars.site}}\"}")
                .file("config/commit.json", "{\"commit\": \"{{.Commit}}\"}")
                .file("config/view.json", view),
        )
    };
    let live = live();
    let mut templated = map("config", "config");
    templated.template = true;
    let request_for = |artifact: Arc<MemArtifact>, site: &str, changed: Option<Vec<String>>| {
        let mut request = request(artifact.clone(), vec![templated.clone()], live.path());
        request.profile.vars.insert("site".into(), site.into());
        request.context.commit = Some(
            stoker_core::Artifact::revision(artifact.as_ref())
                .id
                .clone(),
        );
        request.previous = Some(stoker_core::Revision::new("r1"));
        request.changed_paths = changed;
        request
    };
    let first = artifact("r1", "v1");
    sync(&request_for(first, "7", None)).unwrap();

    // r2 changes view.json only: site.json is taken from the manifest; commit.json (reads the
    // revision) and view.json (listed) are rendered.
    let second = artifact("r2", "v2");
    let changed = Some(vec!["config/view.json".to_owned()]);
    let report = sync(&request_for(second.clone(), "7", changed)).unwrap();
    assert_eq!(
        paths(&report.modified),
        ["config/commit.json", "config/view.json"]
    );
    assert_eq!(
        second.reads(),
        2 + 2,
        "commit.json and view.json, each planned and written"
    );
    let tree = snapshot_live(live.path());
    assert_eq!(tree["config/site.json"], text("{\"site\": \"7\"}"));
    assert_eq!(tree["config/commit.json"], text("{\"commit\": \"r2\"}"));

    // Other variables: rendered again (and rewritten).
    let third = artifact("r2", "v2");
    let mut request = request_for(third.clone(), "8", Some(Vec::new()));
    request.previous = Some(stoker_core::Revision::new("r2"));
    let report = sync(&request).unwrap();
    assert_eq!(paths(&report.modified), ["config/site.json"]);
    assert_eq!(
        snapshot_live(live.path())["config/site.json"],
        text("{\"site\": \"8\"}")
    );

    // A diff from another revision than the manifest's proves nothing: everything is read.
    let fourth = artifact("r3", "v2");
    let request = request_for(fourth.clone(), "8", Some(Vec::new()));
    assert_eq!(request.previous.as_ref().unwrap().id, "r1");
    let report = sync(&request).unwrap();
    assert_eq!(paths(&report.modified), ["config/commit.json"]);
    assert!(
        fourth.reads() >= 3,
        "every template planned: {}",
        fourth.reads()
    );
}

#[test]
fn binary_file_with_template_true_is_an_error_naming_the_file() {
    let repo = Repo::new();
    repo.file("config/a.json", "fine")
        .file("config/logo.png", b"\x89PNG\0\0\x01{{.GatewayName}}");
    let live = live();
    let mut templated = map("config", "config");
    templated.template = true;
    let mut request = request(repo.artifact("r1"), vec![templated], live.path());
    request.context = TemplateContext::default().with_gateway_name("gw1");
    let text = error_text(sync(&request));
    assert!(text.contains("config/logo.png"), "{text}");
    assert!(text.contains("binary"), "{text}");
    // Found while planning: not even the good file was written.
    assert!(
        snapshot_live(live.path()).is_empty(),
        "{:?}",
        snapshot(live.path())
    );
    assert!(dry_run(&request).is_err());
}

#[test]
fn unknown_variable_in_a_templated_file_is_an_error_naming_the_file() {
    let repo = Repo::new();
    repo.file("config/a.json", "{{.Vars.missing}}");
    let live = live();
    let mut templated = map("config", "config");
    templated.template = true;
    let text = error_text(sync(&request(
        repo.artifact("r1"),
        vec![templated],
        live.path(),
    )));
    assert!(text.contains("config/a.json"), "{text}");
    assert!(text.contains(".Vars.missing"), "{text}");
}

#[test]
fn patches_set_json_fields_by_dot_path_with_type_inference() {
    let repo = Repo::new();
    repo.file(
        "config/db/config.json",
        "{\"connection\": {\"host\": \"old\", \"port\": 1}, \"items\": [{\"name\": \"a\"}]}\n",
    )
    .file("config/other/config.json", "{\"untouched\": true}")
    .file("config/db/notes.txt", "not json, not matched");
    let live = live();
    let mut patched = map("config", "cfg");
    patched.patches = vec![patch(
        "db/*.json",
        &[
            ("connection.host", "db-{{.Vars.site}}"),
            ("connection.port", "5432"),
            ("connection.tls", "true"),
            ("connection.label", "\"5432\""),
            ("items.0.name", "first"),
        ],
    )];
    let mut request = request(repo.artifact("r1"), vec![patched], live.path());
    request.profile.vars.insert("site".into(), "north".into());
    sync(&request).unwrap();
    let tree = snapshot_live(live.path());
    let doc: serde_json::Value =
        serde_json::from_slice(tree["cfg/db/config.json"].bytes()).unwrap();
    assert_eq!(
        doc,
        serde_json::json!({
            "connection": {"host": "db-north", "port": 5432, "tls": true, "label": "5432"},
            "items": [{"name": "first"}]
        })
    );
    assert_eq!(tree["cfg/other/config.json"], text("{\"untouched\": true}"));
    assert_eq!(tree["cfg/db/notes.txt"], text("not json, not matched"));
    assert_eq!(sync(&request).unwrap().changed(), 0);
}

#[test]
fn patches_change_only_the_bytes_of_the_values_they_set() {
    let repo = Repo::new();
    let input = "{\r\n    \"z\": 1.0,\r\n    \"db\": {\"host\": \"old\", \"n\": 1e3},\r\n    \"labels\": {\"a.b\": \"\\u00e9\"},\r\n    \"items\": [1]\r\n}\r\n";
    repo.file("config/db.json", input);
    let live = live();
    let mut patched = map("config", "cfg");
    patched.patches = vec![patch(
        "db.json",
        &[
            ("db.host", "new"),
            (r"labels.a\.b", "\u{e9}"),
            ("items.-1", "2"),
            ("extra.on", "true"),
        ],
    )];
    let request = request(repo.artifact("r1"), vec![patched], live.path());
    sync(&request).unwrap();
    assert_eq!(
        snapshot_live(live.path())["cfg/db.json"],
        text(
            "{\r\n    \"z\": 1.0,\r\n    \"db\": {\"host\": \"new\", \"n\": 1e3},\r\n    \"labels\": {\"a.b\": \"\\u00e9\"},\r\n    \"items\": [1, 2],\r\n    \"extra\": {\r\n        \"on\": true\r\n    }\r\n}\r\n"
        )
    );
    assert_eq!(sync(&request).unwrap().changed(), 0);
}

#[test]
fn patch_glob_is_relative_to_the_destination_and_to_the_file_name_for_a_file_mapping() {
    let repo = Repo::new();
    repo.file("src/a/resource.json", "{}")
        .file("src/resource.json", "{}")
        .file("single.json", "{}");
    let live = live();
    let mut by_dir = map("src", "dst");
    // Relative to the destination `dst`: not `dst/**` nor `src/**`.
    by_dir.patches = vec![
        patch("**/resource.json", &[("deep", "1")]),
        patch("resource.json", &[("top", "1")]),
        patch("dst/**", &[("wrong", "1")]),
    ];
    let mut by_file = map("single.json", "some/where/renamed.json");
    by_file.patches = vec![patch("renamed.json", &[("single", "1")])];
    sync(&request(
        repo.artifact("r1"),
        vec![by_dir, by_file],
        live.path(),
    ))
    .unwrap();
    let tree = snapshot_live(live.path());
    let json =
        |path: &str| -> serde_json::Value { serde_json::from_slice(tree[path].bytes()).unwrap() };
    assert_eq!(json("dst/a/resource.json"), serde_json::json!({"deep": 1}));
    assert_eq!(
        json("dst/resource.json"),
        serde_json::json!({"deep": 1, "top": 1})
    );
    assert_eq!(
        json("some/where/renamed.json"),
        serde_json::json!({"single": 1})
    );
}

/// A patch without `file`, as stoker-operator v0.5.1 allowed on a file mapping.
fn patch_of_the_mapped_file(sets: &[(&str, &str)]) -> stoker_core::Patch {
    stoker_core::Patch {
        file: None,
        ..patch("unused", sets)
    }
}

#[test]
fn a_patch_without_file_patches_the_file_a_file_mapping_maps() {
    let repo = Repo::new();
    repo.file(
        "gateways/site1/system.json",
        r#"{"SystemName": "x", "port": 1}"#,
    )
    .file("gateways/site1/other.json", "{}");
    let live = live();
    let mut by_file = map("gateways/site1/system.json", "config/system.json");
    by_file.patches = vec![patch_of_the_mapped_file(&[
        ("SystemName", "{{.GatewayName}}"),
        ("port", "8088"),
    ])];
    let untouched = map("gateways/site1/other.json", "config/other.json");
    let mut request = request(repo.artifact("r1"), vec![by_file, untouched], live.path());
    request.context.gateway_name = Some("site1".to_owned());
    sync(&request).unwrap();
    let tree = snapshot_live(live.path());
    assert_eq!(
        tree["config/system.json"].bytes(),
        br#"{"SystemName": "site1", "port": 8088}"#
    );
    assert_eq!(tree["config/other.json"].bytes(), b"{}");
}

#[test]
fn a_patch_without_file_on_a_dir_mapping_is_an_error_naming_the_mapping() {
    let repo = Repo::new();
    repo.file("config/config", "{}").file("config/a.json", "{}");
    let live = live();
    // The type is inferred: the error comes from the plan, before anything is written.
    let mut by_dir = map("config", "config");
    by_dir.patches = vec![patch_of_the_mapped_file(&[("a", "1")])];
    let text = error_text(sync(&request(
        repo.artifact("r1"),
        vec![by_dir.clone()],
        live.path(),
    )));
    assert!(text.contains("mappings[0]"), "{text}");
    assert!(text.contains("patches[0] names no file"), "{text}");
    assert!(snapshot_live(live.path()).is_empty());
    // Given explicitly, the profile itself is refused.
    by_dir.kind = Some(stoker_core::MappingType::Dir);
    let error = stoker_core::SyncSpec {
        profiles: [(
            "p".to_owned(),
            stoker_core::ProfileSpec {
                mappings: vec![by_dir],
                ..Default::default()
            },
        )]
        .into(),
        ..Default::default()
    }
    .resolve("p")
    .unwrap_err()
    .to_string();
    assert!(
        error.contains("mappings[0].patches[0] names no file"),
        "{error}"
    );
}

#[test]
fn non_json_patch_target_is_an_error_naming_the_file() {
    let repo = Repo::new();
    repo.file("config/good.json", "{}")
        .file("config/bad.json", "this is not json");
    let live = live();
    let mut patched = map("config", "config");
    patched.patches = vec![patch("*.json", &[("a.b", "1")])];
    let request = request(repo.artifact("r1"), vec![patched], live.path());
    let text = error_text(sync(&request));
    assert!(text.contains("config/bad.json"), "{text}");
    assert!(text.contains("\"a.b\""), "{text}");
    assert!(text.contains("not a JSON document"), "{text}");
    assert!(
        snapshot_live(live.path()).is_empty(),
        "{:?}",
        snapshot(live.path())
    );
}

// ---------------------------------------------------------------------------------------------
// Protected paths
// ---------------------------------------------------------------------------------------------

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
        let result = sync(&request(
            repo.artifact("r1"),
            vec![map("projects", "projects")],
            live.path(),
        ));
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

// ---------------------------------------------------------------------------------------------
// Managed roots and orphans
// ---------------------------------------------------------------------------------------------

#[test]
fn orphans_under_a_dir_destination_are_deleted() {
    let repo = Repo::new();
    repo.file("projects/a/project.json", "{}");
    let live = live();
    write(live.path(), "projects/a/stale.json", "stale");
    write(live.path(), "projects/old/project.json", "{}");
    write(live.path(), "projects/old/views/v/view.json", "{}");
    symlink(live.path(), "projects/a/dangling", "/nonexistent");
    let report = sync(&request(
        repo.artifact("r1"),
        vec![map("projects", "projects")],
        live.path(),
    ))
    .unwrap();
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
    let request = request(
        repo.artifact("r1"),
        vec![map("projects", "projects")],
        live.path(),
    );
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

// ---------------------------------------------------------------------------------------------
// Empty directories
// ---------------------------------------------------------------------------------------------

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
    let mut request = request(
        repo.artifact("r1"),
        vec![map("projects", "projects")],
        live.path(),
    );
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
    sync(&request(
        repo.artifact("r1"),
        vec![map("projects", "projects")],
        live.path(),
    ))
    .unwrap();
    let tree = snapshot_live(live.path());
    assert!(tree.contains_key("projects/b/.resources/r.bin"));
    assert!(tree.contains_key("projects/c/.gitkeep"));
    assert!(!tree.contains_key("projects/b/old.json"));
    assert!(!tree.contains_key("projects/c/old.json"));
}

// ---------------------------------------------------------------------------------------------
// Symlinks in live
// ---------------------------------------------------------------------------------------------

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
    let report = sync(&request(
        repo.artifact("r1"),
        vec![map("projects", "projects")],
        live.path(),
    ))
    .unwrap();
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
    sync(&request(
        repo.artifact("r1"),
        vec![map("projects", "projects")],
        live.path(),
    ))
    .unwrap();
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
    let request = request(
        repo.artifact("r1"),
        vec![map("projects", "projects")],
        live.path(),
    );
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
    let result = sync(&request(
        repo.artifact("r1"),
        vec![map("projects", "projects")],
        live.path(),
    ));
    assert!(
        matches!(result, Err(Error::UnsafeLive { .. })),
        "{result:?}"
    );
    assert!(snapshot(outside.path()).is_empty());
}

// ---------------------------------------------------------------------------------------------
// Atomic writes, executable bits
// ---------------------------------------------------------------------------------------------

#[test]
fn atomic_writes_leave_no_temporary_files() {
    let repo = Repo::new();
    for i in 0..50 {
        repo.file(&format!("projects/p{}/f{i}.json", i % 5), format!("{i}"));
    }
    let live = live();
    let request = request(
        repo.artifact("r1"),
        vec![map("projects", "projects")],
        live.path(),
    );
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

// ---------------------------------------------------------------------------------------------
// Change detection: manifest, stat fast path, drift
// ---------------------------------------------------------------------------------------------

#[test]
fn noop_resync_reads_nothing_from_a_source_with_content_ids() {
    let mut artifact = MemArtifact::new("r1", true);
    for i in 0..20 {
        artifact = artifact.file(&format!("projects/p/f{i}.json"), format!("content {i}"));
    }
    let artifact = Arc::new(artifact);
    let live = live();
    let request = request(
        artifact.clone(),
        vec![map("projects", "projects")],
        live.path(),
    );
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
    let request = request(
        artifact.clone(),
        vec![map("projects", "projects")],
        live.path(),
    );
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
    let request = request(
        artifact.clone(),
        vec![map("projects", "projects")],
        live.path(),
    );
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
    let request = request(
        artifact.clone(),
        vec![map("projects", "projects")],
        live.path(),
    );
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
    sync(&request(
        Arc::new(first),
        vec![map("projects", "projects")],
        live.path(),
    ))
    .unwrap();
    let second = MemArtifact::new("r2", true)
        .file("projects/a/deep/view.json", "a, changed")
        .file("projects/b/view.json", "b")
        .file("projects/c/new/x.json", "x");
    let request = request(
        Arc::new(second),
        vec![map("projects", "projects")],
        live.path(),
    );
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
    let request = request(
        Arc::new(artifact),
        vec![map("projects", "projects")],
        live.path(),
    );
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
    let request = request(
        Arc::new(artifact),
        vec![map("projects", "projects")],
        live.path(),
    );
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
    let request = request(
        Arc::new(artifact),
        vec![map("projects", "projects")],
        live.path(),
    );
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
    let request = request(
        repo.artifact("r1"),
        vec![map("projects", "projects")],
        live.path(),
    );
    sync(&request).unwrap();
    std::fs::write(stoker_sync::manifest::path(live.path()), "{not json").unwrap();
    write(live.path(), "projects/a/project.json", "[]");
    let report = sync(&request).unwrap();
    assert_eq!(paths(&report.modified), ["projects/a/project.json"]);
    assert!(
        report.warnings.iter().any(|w| w.contains("manifest")),
        "{:?}",
        report.warnings
    );
}

// ---------------------------------------------------------------------------------------------
// Lock
// ---------------------------------------------------------------------------------------------

#[test]
fn a_held_lock_makes_a_sync_fail_with_locked_naming_the_dir() {
    let repo = Repo::new();
    repo.file("projects/a/project.json", "{}");
    let live = live();
    let lock = stoker_sync::lock::LiveLock::acquire(live.path()).unwrap();
    let result = sync(&request(
        repo.artifact("r1"),
        vec![map("projects", "projects")],
        live.path(),
    ));
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
    sync(&request(
        repo.artifact("r1"),
        vec![map("projects", "projects")],
        live.path(),
    ))
    .unwrap();
}

// ---------------------------------------------------------------------------------------------
// Crash recovery
// ---------------------------------------------------------------------------------------------

/// The revision-1 repository, the revision-2 repository, the mappings.
fn crash_fixture() -> (Repo, Repo, Vec<Mapping>) {
    let r1 = Repo::new();
    r1.file("projects/a/project.json", "{\"title\": \"a\"}")
        .file("projects/a/view.json", "view v1")
        .file("projects/a/sub/x.json", "x in a dir that becomes a file")
        .file("projects/a/f", "a file that becomes a dir")
        .file("projects/b/project.json", "{}")
        .file("projects/b/old.json", "old")
        .file("scripts/run.sh", "#!/bin/sh\necho 1\n")
        .file("config/dev/db.json", "{\"host\": \"x\"}")
        .file("versions.json", "1");
    let r2 = Repo::new();
    r2.file("projects/a/project.json", "{\"title\": \"a\"}")
        .file("projects/a/view.json", "view v2, longer than before")
        .file("projects/a/sub", "now a file")
        .file("projects/a/f/inner.json", "now a dir")
        .file("projects/a/link", "replaces a live symlink")
        .file("projects/d/project.json", "{\"new\": true}")
        .file("projects/d/views/main/view.json", "new view")
        .exec("scripts/run.sh", "#!/bin/sh\necho 1\n")
        .file("config/dev/db.json", "{\"host\": \"y\"}")
        .file("versions.json", "2");
    let mappings = vec![
        map("projects", "projects"),
        map("scripts", "scripts"),
        map("config/dev", "config/resources/dev"),
        map("versions.json", ".versions.json"),
    ];
    (r1, r2, mappings)
}

/// A live directory synced to revision 1, plus things the engine must handle or leave alone.
fn crash_start(r1: &Repo, mappings: &[Mapping]) -> tempfile::TempDir {
    let live = live();
    sync(&request(r1.artifact("r1"), mappings.to_vec(), live.path())).unwrap();
    write(live.path(), "projects/a/orphan.txt", "orphan");
    symlink(live.path(), "projects/a/link", "/etc/hostname");
    write(live.path(), "config/local.json", "unmanaged");
    write(live.path(), "unrelated.txt", "unmanaged");
    write(live.path(), "projects/a/.resources/r.bin", "protected");
    live
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
    let request = request(
        repo.artifact("r1"),
        vec![map("projects", "projects")],
        live.path(),
    );
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

// ---------------------------------------------------------------------------------------------
// Dry run
// ---------------------------------------------------------------------------------------------

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
    let request = common::request(r2.artifact("r2"), mappings, fresh.path());
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
    let request = request(
        repo.artifact("r1"),
        vec![map("projects", "projects")],
        live.path(),
    );
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
    let report = dry_run(&request(
        repo.artifact("r1"),
        vec![map("projects", "projects")],
        &live,
    ))
    .unwrap();
    assert_eq!(paths(&report.added), ["projects/a/project.json"]);
    assert!(!live.exists());
}

// ---------------------------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------------------------

#[test]
fn sync_report_lists_changes_with_git_blob_ids() {
    let repo = Repo::new();
    repo.file("projects/a/project.json", "hello\n")
        .file("projects/a/old.json", "{\"a\":1}");
    let live = live();
    let request = request(
        repo.artifact("r1"),
        vec![map("projects", "projects")],
        live.path(),
    );
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
    let request = request(
        repo.artifact("r1"),
        vec![map("projects", "projects")],
        live.path(),
    );
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
    let request = request(
        repo.artifact("r1"),
        vec![map("projects", "projects")],
        live.path(),
    );
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
        let request = request(
            repo.artifact(revision),
            vec![map("projects", "projects")],
            live.path(),
        );
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

// ---------------------------------------------------------------------------------------------
// Hostile names
// ---------------------------------------------------------------------------------------------

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
    let report = sync(&request(
        repo.artifact("r1"),
        vec![map("projects", "projects")],
        live.path(),
    ))
    .unwrap();
    assert_eq!(paths(&report.added), ["projects/a/project.json"]);
    assert!(
        report.warnings.iter().any(|w| w.contains("UTF-8")),
        "{:?}",
        report.warnings
    );
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
    let report = sync(&request(
        repo.artifact("r1"),
        vec![map("projects", "projects")],
        live.path(),
    ))
    .unwrap();
    assert_eq!(paths(&report.deleted), ["projects/old/orphan.json"]);
    assert!(
        report.warnings.iter().any(|w| w.contains("UTF-8")),
        "{:?}",
        report.warnings
    );
    assert_eq!(std::fs::read(&odd).unwrap(), b"x");
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
    let report = sync(&request(
        Arc::new(artifact),
        vec![map("projects", "projects")],
        live.path(),
    ))
    .unwrap();
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
    let text = error_text(sync(&request(
        Arc::new(artifact),
        vec![map("projects", "projects")],
        live.path(),
    )));
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

#[test]
fn noop_resync_does_not_rewrite_the_manifest() {
    let mut artifact = MemArtifact::new("r1", true);
    for i in 0..5 {
        artifact = artifact.file(&format!("projects/p/f{i}.json"), format!("content {i}"));
    }
    let live = live();
    let request = request(
        Arc::new(artifact),
        vec![map("projects", "projects")],
        live.path(),
    );
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
    let first = request(
        Arc::new(source.artifact(stoker_core::Revision::new("1"))),
        vec![map("projects", "projects")],
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
    let second = request(
        Arc::new(source.artifact(stoker_core::Revision::new("3"))),
        vec![map("projects", "projects")],
        live.path(),
    );
    let report = sync(&second).unwrap();
    assert_eq!(paths(&report.modified), vec!["projects/p/f1.json"]);
    assert_eq!(report.unchanged, 4);
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

/// A repository of `count` files in as many directories.
fn many_files(count: usize) -> Repo {
    let repo = Repo::new();
    for index in 0..count {
        repo.file(
            &format!("views/v{index:02}/view.json"),
            format!("{{\"v\":{index}}}"),
        );
    }
    repo
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
