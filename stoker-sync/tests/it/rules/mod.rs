//! One test per rule of DESIGN section 3 ("The sync engine — exact semantics"), each named
//! after the rule it checks. Regression tests for engine bugs say so in their doc comment.
//!
//! One module per paragraph of that section, named after its heading.

mod atomic_writes;
mod change_detection;
mod content;
mod desired_set;
mod managed_roots;
mod protected;
mod report;

use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::common::*;
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
