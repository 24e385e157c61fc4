//! Property tests of the sync engine against an independent in-memory model of DESIGN
//! section 3 ("Invariants the property tests check").
//!
//! The model (`model/spec.rs`) is written from the spec text; `model/world.rs` generates cases
//! (small name alphabets so paths collide), makes them real in temporary directories and
//! snapshots them. Each property is one `proptest!` test named after its invariant. The number
//! of cases is `PROPTEST_CASES` when set, otherwise [`DEFAULT_CASES`].

#[path = "model/spec.rs"]
mod spec;
#[path = "model/world.rs"]
mod world;

use std::collections::BTreeSet;

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::FileFailurePersistence;
use stoker_core::SyncReport;
use stoker_sync::{ApplyOptions, MergeStrategy};

use spec::{Node, Outcome, Scope, Tree};
use world::{Case, Snap, World};

/// Cases per property when `PROPTEST_CASES` is not set (about a minute for the whole file in a
/// debug build on two cores).
const DEFAULT_CASES: u32 = 160;

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_CASES);
    ProptestConfig {
        cases,
        max_shrink_iters: 4096,
        // `tests/` has no lib.rs for proptest's default lookup to anchor on.
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/proptest-regressions/model.txt"
        )))),
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers

/// Human-readable differences between two trees.
fn tree_diff(expected: &Tree, actual: &Tree) -> String {
    let mut lines = Vec::new();
    let paths: BTreeSet<&String> = expected.keys().chain(actual.keys()).collect();
    for path in paths {
        let (e, a) = (expected.get(path), actual.get(path));
        if e != a {
            lines.push(format!("  {path}: expected {}, found {}", show(e), show(a)));
        }
    }
    lines.join("\n")
}

fn show(node: Option<&Node>) -> String {
    match node {
        None => "nothing".to_owned(),
        Some(Node::Dir) => "a directory".to_owned(),
        Some(Node::File { bytes, exec }) => format!(
            "file {:?}{}",
            String::from_utf8_lossy(bytes),
            if *exec { " (exec)" } else { "" }
        ),
        Some(Node::Symlink(target)) => format!("symlink -> {target}"),
    }
}

/// Differences of trees and, for non-directories, of modification times.
fn snap_diff(before: &Snap, after: &Snap) -> String {
    let mut text = tree_diff(&before.tree, &after.tree);
    for (path, mtime) in &before.mtimes {
        if before.tree.get(path).is_some_and(|n| !n.is_dir())
            && after.mtimes.get(path).is_some_and(|m| m != mtime)
            && after.tree.get(path) == before.tree.get(path)
        {
            text.push_str(&format!("\n  {path}: same content, new mtime"));
        }
    }
    text
}

/// Same entries, same modification times for everything but directories.
fn same_files(before: &Snap, after: &Snap) -> bool {
    before.tree == after.tree
        && before
            .tree
            .iter()
            .all(|(path, node)| node.is_dir() || before.mtimes.get(path) == after.mtimes.get(path))
}

fn paths(changes: &[stoker_core::FileChange]) -> BTreeSet<String> {
    changes.iter().map(|c| c.path.clone()).collect()
}

fn is_temporary(path: &str) -> bool {
    path.rsplit('/')
        .next()
        .is_some_and(|name| name.starts_with(".stoker-tmp-"))
}

fn check_report(expected: &spec::Expected, report: &SyncReport) -> Result<(), TestCaseError> {
    let added = paths(&report.added);
    let modified = paths(&report.modified);
    let written: BTreeSet<String> = added.union(&modified).cloned().collect();
    prop_assert_eq!(&written, &expected.writes, "added + modified paths");
    prop_assert!(
        expected.must_add.is_subset(&added),
        "reported as added: {:?}, must be: {:?}",
        added,
        expected.must_add
    );
    prop_assert!(
        expected.must_modify.is_subset(&modified),
        "reported as modified: {:?}, must be: {:?}",
        modified,
        expected.must_modify
    );
    prop_assert_eq!(&paths(&report.deleted), &expected.deleted, "deleted paths");
    prop_assert_eq!(
        report.unchanged,
        expected.unchanged as u64,
        "unchanged count"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The invariants, as functions (the regression tests below call them too)

/// After a sync the live directory is the model's; an error happens exactly when the model
/// says the sync is invalid or unsafe, and then nothing changed.
fn result_equals_model_holds(case: &Case) -> Result<(), TestCaseError> {
    let world = World::new(case);
    let before = world.snap();
    let outside = world.outside_snap();
    let outcome = spec::sync(&world.art, &case.profile, &before.tree);
    let result = MergeStrategy::default().sync(&world.request(false));
    let after = world.snap();
    prop_assert!(
        world.outside_snap() == outside,
        "a symlink was written through"
    );
    match (&outcome, result) {
        (Outcome::Synced(expected), Ok(report)) => {
            prop_assert!(
                after.tree == expected.tree,
                "live differs from the model:\n{}",
                tree_diff(&expected.tree, &after.tree)
            );
            check_report(expected, &report)?;
        }
        (Outcome::Synced(_), Err(error)) => {
            prop_assert!(false, "the engine failed ({error}) but the model syncs");
        }
        (Outcome::Invalid(reason) | Outcome::Refused { reason, .. }, Ok(_)) => {
            prop_assert!(false, "the engine synced but the model says: {reason}");
        }
        (Outcome::Invalid(_) | Outcome::Refused { .. }, Err(error)) => {
            prop_assert!(
                same_files(&before, &after),
                "the sync failed ({error}) and changed the live directory:\n{}",
                snap_diff(&before, &after)
            );
        }
    }
    Ok(())
}

/// A second sync reports no change and changes nothing (modification times included).
fn second_apply_changes_nothing_holds(case: &Case) -> Result<(), TestCaseError> {
    let world = World::new(case);
    let engine = MergeStrategy::default();
    let outcome = spec::sync(&world.art, &case.profile, &world.snap().tree);
    if engine.sync(&world.request(false)).is_err() {
        return Ok(()); // result_equals_model judges that
    }
    let first = world.snap();
    let report = engine.sync(&world.request(false));
    let second = world.snap();
    let report = match report {
        Ok(report) => report,
        Err(error) => return Err(TestCaseError::fail(format!("second sync failed: {error}"))),
    };
    prop_assert_eq!(
        (
            report.added.len(),
            report.modified.len(),
            report.deleted.len()
        ),
        (0, 0, 0),
        "second sync reported changes: {:?}",
        report
    );
    if let Outcome::Synced(expected) = &outcome {
        prop_assert_eq!(report.unchanged, expected.desired.len() as u64);
    }
    prop_assert!(
        first == second,
        "second sync changed the live directory:\n{}{}",
        snap_diff(&first, &second),
        if first.tree == second.tree {
            " (directory mtimes)"
        } else {
            ""
        }
    );
    Ok(())
}

/// Everything outside the managed roots, protected or excluded keeps its bytes, kind and
/// modification time; nothing new appears outside the managed roots but the directories that
/// lead to them; symlink targets are never written.
fn nothing_outside_scope_changes_holds(case: &Case) -> Result<(), TestCaseError> {
    let world = World::new(case);
    let before = world.snap();
    let outside = world.outside_snap();
    let outcome = spec::sync(&world.art, &case.profile, &before.tree);
    let _ = MergeStrategy::default().sync(&world.request(false));
    let after = world.snap();
    prop_assert!(
        world.outside_snap() == outside,
        "a symlink was written through"
    );
    let Some(scope) = outcome.scope() else {
        prop_assert!(
            same_files(&before, &after),
            "invalid profile, yet the live directory changed:\n{}",
            snap_diff(&before, &after)
        );
        return Ok(());
    };
    for (path, node) in &before.tree {
        if scope.managed(path) && !Scope::protected(path) && !scope.excluded(path) {
            continue;
        }
        prop_assert!(
            after.tree.get(path) == Some(node),
            "{} (outside scope) was {}, is {}",
            path,
            show(Some(node)),
            show(after.tree.get(path))
        );
        if !node.is_dir() {
            prop_assert!(
                before.mtimes.get(path) == after.mtimes.get(path),
                "{} (outside scope) has a new mtime",
                path
            );
        }
    }
    for (path, node) in &after.tree {
        if before.tree.contains_key(path) {
            continue;
        }
        prop_assert!(
            scope.managed(path) || (node.is_dir() && scope.leads_to_root(path)),
            "{} appeared outside the managed roots",
            path
        );
    }
    Ok(())
}

/// A crash at step `at` leaves every live file old or new; a normal rerun then gives the
/// model's result and no temporaries remain.
fn crash_then_rerun_converges_holds(case: &Case, at: Index) -> Result<(), TestCaseError> {
    let world = World::new(case);
    let before = world.snap();
    let outside = world.outside_snap();
    let outcome = spec::sync(&world.art, &case.profile, &before.tree);
    let Outcome::Synced(expected) = outcome else {
        return Ok(()); // no apply happens; result_equals_model checks the error
    };
    let step = 1 + at.index(usize::try_from(expected.steps).unwrap_or(1)) as u64;
    let crashing = MergeStrategy::new(ApplyOptions {
        fail_at_step: Some(step),
        ..ApplyOptions::default()
    });
    match crashing.sync(&world.request(false)) {
        Ok(_) | Err(stoker_sync::Error::Injected(_)) => {}
        Err(error) => {
            return Err(TestCaseError::fail(format!(
                "crashing run failed with something else than the injected failure: {error}"
            )));
        }
    }
    let mid = world.snap();
    for (path, node) in &mid.tree {
        if node.is_dir() || is_temporary(path) {
            continue;
        }
        let old = before.tree.get(path);
        let new = expected.tree.get(path);
        prop_assert!(
            old == Some(node) || new == Some(node),
            "after a crash at step {}, {} is {} (old: {}, new: {})",
            step,
            path,
            show(Some(node)),
            show(old),
            show(new)
        );
    }
    prop_assert!(
        world.outside_snap() == outside,
        "a symlink was written through"
    );
    let rerun = MergeStrategy::default().sync(&world.request(false));
    if let Err(error) = rerun {
        return Err(TestCaseError::fail(format!(
            "rerun after a crash at step {step} failed: {error}"
        )));
    }
    let after = world.snap();
    prop_assert!(
        after.tree == expected.tree,
        "after a crash at step {} and a rerun, live differs from the model:\n{}",
        step,
        tree_diff(&expected.tree, &after.tree)
    );
    let temporaries = world::temporaries(&world.live);
    prop_assert!(
        temporaries.is_empty(),
        "temporaries left: {:?}",
        temporaries
    );
    Ok(())
}

/// A dry run writes nothing (not even in `.stoker/`) and reports what the real sync does.
fn dry_run_reports_what_sync_does_holds(case: &Case) -> Result<(), TestCaseError> {
    let world = World::new(case);
    let engine = MergeStrategy::default();
    let before = world::snapshot(&world.live, true);
    let dry = engine.sync(&world.request(true));
    let after = world::snapshot(&world.live, true);
    prop_assert!(
        before == after,
        "the dry run changed the live directory:\n{}",
        snap_diff(&before, &after)
    );
    let real = engine.sync(&world.request(false));
    match (dry, real) {
        (Ok(dry), Ok(real)) => {
            prop_assert!(dry.dry_run && !real.dry_run);
            prop_assert_eq!(paths(&dry.added), paths(&real.added), "added");
            prop_assert_eq!(paths(&dry.modified), paths(&real.modified), "modified");
            prop_assert_eq!(paths(&dry.deleted), paths(&real.deleted), "deleted");
            prop_assert_eq!(dry.unchanged, real.unchanged, "unchanged");
        }
        (Err(_), Err(_)) => {}
        (Ok(_), Err(error)) => {
            prop_assert!(false, "the dry run succeeded, the sync failed: {error}");
        }
        (Err(error), Ok(_)) => {
            prop_assert!(false, "the dry run failed ({error}), the sync succeeded");
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Properties

proptest! {
    #![proptest_config(config())]

    #[test]
    fn result_equals_model(case in world::case_strategy()) {
        result_equals_model_holds(&case)?;
    }

    #[test]
    fn second_apply_changes_nothing(case in world::case_strategy()) {
        second_apply_changes_nothing_holds(&case)?;
    }

    #[test]
    fn nothing_outside_scope_changes(case in world::case_strategy()) {
        nothing_outside_scope_changes_holds(&case)?;
    }

    #[test]
    fn crash_at_any_step_then_rerun_converges(case in world::case_strategy(), at in any::<Index>()) {
        crash_then_rerun_converges_holds(&case, at)?;
    }

    #[test]
    fn dry_run_reports_what_sync_does(case in world::case_strategy()) {
        dry_run_reports_what_sync_does_holds(&case)?;
    }
}
