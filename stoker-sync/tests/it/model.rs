//! Property tests of the sync engine against an independent in-memory model of DESIGN
//! section 3 ("Invariants the property tests check").
//!
//! The model (`model/spec.rs`) is written from the spec text; `model/world.rs` generates cases
//! (small name alphabets so paths collide), makes them real in temporary directories and
//! snapshots them. Each property is one `proptest!` test named after its invariant. The number
//! of cases is `PROPTEST_CASES` when set, otherwise [`DEFAULT_CASES`].

mod spec;
mod world;

use std::collections::BTreeSet;

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::FileFailurePersistence;
use stoker_core::{SyncReport, SyncStrategy};
use stoker_sync::{ApplyOptions, MergeStrategy};

use spec::{Node, Outcome, Scope, Tree};
use world::Pre;
use world::{Case, Mess, Snap, World};

/// Cases per property when `PROPTEST_CASES` is not set (about a minute for the whole file in a
/// debug build on two cores).
const DEFAULT_CASES: u32 = 300;

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_CASES);
    ProptestConfig {
        cases,
        max_shrink_iters: 1024,
        max_shrink_time: 30_000,
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
        Some(Node::Fifo) => "a FIFO".to_owned(),
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
    for symlink in &expected.skipped {
        prop_assert!(
            report.warnings.iter().any(|w| w.contains(symlink.as_str())),
            "no warning about the skipped symlink {}: {:?}",
            symlink,
            report.warnings
        );
    }
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
    let result = world.sync(&MergeStrategy::default(), false);
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

/// The scan guided by the manifest's directory records finds exactly what a full scan finds,
/// whatever changed behind the engine's back since the sync that wrote them; and the next sync,
/// which uses it, gives the model's result and is then a no-op.
fn guided_scan_sees_every_change_holds(case: &Case, mess: &[Mess]) -> Result<(), TestCaseError> {
    let world = World::new(case);
    let engine = MergeStrategy::default();
    if world.sync(&engine, false).is_err() {
        return Ok(()); // result_equals_model judges that
    }
    let Some(scope) = world.scope() else {
        return Ok(());
    };
    let (manifest, _) = stoker_sync::manifest::load(&world.live);
    let manifest = manifest.expect("a sync leaves a manifest");
    let written = stoker_sync::manifest::written_at(&world.live).expect("manifest mtime");
    // On a clock with coarse ticks, a change in the tick of the records is not visible in the
    // stat (that is what the "older than the manifest" rule is for): change in a later one.
    std::thread::sleep(std::time::Duration::from_millis(12));
    world.mess(mess);

    let full = stoker_sync::live::scan(&world.live, &scope).map_err(|e| e.to_string());
    // With the manifest's real write time, and with one so late that only the directories'
    // stats can tell what changed.
    for written in [written, i64::MAX] {
        let guide = stoker_sync::live::Guide {
            dirs: &manifest.dirs,
            written,
        };
        let guided = stoker_sync::live::scan_guided(&world.live, &scope, Some(guide))
            .map(|scan| scan.tree)
            .map_err(|e| e.to_string());
        prop_assert_eq!(
            &guided,
            &full,
            "guided scan (written {}) != full scan",
            written
        );
    }

    let before = world.snap();
    let outcome = spec::sync(&world.art, &case.profile, &before.tree);
    let result = world.sync(&engine, false);
    let after = world.snap();
    match (&outcome, result) {
        (Outcome::Synced(expected), Ok(report)) => {
            prop_assert!(
                after.tree == expected.tree,
                "live differs from the model after the changes:\n{}",
                tree_diff(&expected.tree, &after.tree)
            );
            check_report(expected, &report)?;
            let again = world.sync(&engine, false);
            let again = again.map_err(|e| TestCaseError::fail(format!("third sync: {e}")))?;
            prop_assert_eq!(
                again.changed(),
                0,
                "third sync changed something: {:?}",
                again
            );
            prop_assert!(
                world.snap().tree == after.tree,
                "third sync changed the tree"
            );
        }
        (Outcome::Synced(_), Err(error)) => {
            prop_assert!(false, "the engine failed ({error}) but the model syncs");
        }
        (Outcome::Invalid(reason) | Outcome::Refused { reason, .. }, Ok(_)) => {
            prop_assert!(false, "the engine synced but the model says: {reason}");
        }
        (Outcome::Invalid(_) | Outcome::Refused { .. }, Err(_)) => {}
    }
    Ok(())
}

/// What a plan decided, for comparing two plans.
type PlanSummary = (
    Vec<(
        String,
        stoker_sync::plan::WriteKind,
        Option<stoker_core::ContentId>,
    )>,
    Vec<(
        String,
        stoker_sync::live::LiveKind,
        Option<stoker_core::ContentId>,
    )>,
    usize,
    Vec<String>,
);

fn summary(plan: &stoker_sync::Plan) -> PlanSummary {
    (
        plan.writes()
            .iter()
            .map(|w| (w.path.clone(), w.kind, w.previous_id))
            .collect(),
        plan.deletes()
            .map(|d| (d.path.clone(), d.kind, d.previous_id))
            .collect(),
        plan.unchanged(),
        plan.warnings().iter().map(ToString::to_string).collect(),
    )
}

/// Incremental planning: with the previous revision and the source paths changed since (as the
/// pipeline passes them), the plan is the one made without them and the sync gives the model's
/// result — when nothing drifted. With drift behind the engine's back, the incremental sync may
/// leave drift the commit did not touch, and the next sync of the same revision (which compares
/// everything) gives the model's result.
fn changed_paths_change_only_the_work_holds(case: &Case) -> Result<(), TestCaseError> {
    let world = World::new(case);
    let (previous, changed) = match &case.pre {
        Pre::Nothing => return Ok(()),
        Pre::Same => ("main", Vec::new()),
        Pre::Other(other) => {
            let before = world::art_tree(other);
            let changed: BTreeSet<String> = before
                .keys()
                .chain(world.art.keys())
                .filter(|path| before.get(*path) != world.art.get(*path))
                .cloned()
                .collect();
            ("pre", changed.into_iter().collect())
        }
    };
    let engine = MergeStrategy::default();
    let full = world.request(false);
    let mut incremental = world.request(false);
    incremental.previous = Some(stoker_core::Revision::new(previous));
    incremental.changed_paths = Some(changed);
    if !case.drift.is_empty() {
        let before = world.snap();
        let outcome = spec::sync(&world.art, &case.profile, &before.tree);
        let first = world::without_fork(|| engine.sync(&incremental));
        // The next sync of the same revision, as the pipeline asks for it.
        let mut again = world.request(false);
        again.previous = Some(world.artifact.revision().clone());
        again.changed_paths = Some(Vec::new());
        let second = world::without_fork(|| engine.sync(&again));
        if let (Outcome::Synced(expected), Ok(_), Ok(report)) = (&outcome, &first, second) {
            let after = world.snap();
            prop_assert!(
                after.tree == expected.tree,
                "live differs from the model after an incremental sync and a resync:\n{}",
                tree_diff(&expected.tree, &after.tree)
            );
            prop_assert!(!report.dry_run);
        }
        return Ok(());
    }
    // One plan at a time: a plan holds the live directory's lock (and no child process may
    // inherit it).
    let planned_full = world::without_fork(|| engine.plan(&full).map(|plan| summary(&plan)));
    let planned_incremental =
        world::without_fork(|| engine.plan(&incremental).map(|plan| summary(&plan)));
    match (planned_full, planned_incremental) {
        (Ok(full), Ok(incremental)) => {
            prop_assert_eq!(incremental, full, "incremental plan != full plan");
        }
        (Err(full), Err(incremental)) => {
            prop_assert_eq!(incremental.to_string(), full.to_string());
            return Ok(());
        }
        (full, incremental) => {
            prop_assert!(
                false,
                "full plan: {:?}, incremental plan: {:?}",
                full.map(|_| ()),
                incremental.map(|_| ())
            );
        }
    }
    let before = world.snap();
    let outcome = spec::sync(&world.art, &case.profile, &before.tree);
    let result = world::without_fork(|| engine.sync(&incremental));
    if let (Outcome::Synced(expected), Ok(report)) = (&outcome, result) {
        let after = world.snap();
        prop_assert!(
            after.tree == expected.tree,
            "live differs from the model after an incremental sync:\n{}",
            tree_diff(&expected.tree, &after.tree)
        );
        check_report(expected, &report)?;
    }
    Ok(())
}

/// A second sync reports no change and changes nothing (modification times included).
fn second_apply_changes_nothing_holds(case: &Case) -> Result<(), TestCaseError> {
    let world = World::new(case);
    let engine = MergeStrategy::default();
    let outcome = spec::sync(&world.art, &case.profile, &world.snap().tree);
    if world.sync(&engine, false).is_err() {
        return Ok(()); // result_equals_model judges that
    }
    let first = world.snap();
    let report = world.sync(&engine, false);
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
    let _ = world.sync(&MergeStrategy::default(), false);
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

/// A crash at a chosen step (and, in some cases, a second crash in the run after it) leaves
/// every live file old or new; a normal rerun then gives the model's result and no temporaries
/// remain. `choose_steps` gets the model's step count and returns the steps to fail at.
fn crash_then_rerun_converges_holds(
    case: &Case,
    choose_steps: impl FnOnce(u64) -> Vec<u64>,
) -> Result<(), TestCaseError> {
    let world = World::new(case);
    let before = world.snap();
    let outside = world.outside_snap();
    let outcome = spec::sync(&world.art, &case.profile, &before.tree);
    let Outcome::Synced(expected) = outcome else {
        return Ok(()); // no apply happens; result_equals_model checks the error
    };
    let steps = choose_steps(expected.steps);
    for &step in &steps {
        let crashing = MergeStrategy::new(ApplyOptions {
            fail_at_step: Some(step),
            ..ApplyOptions::default()
        });
        match world.sync(&crashing, false) {
            Ok(_) => {}
            Err(error) if matches!(*error, stoker_sync::Error::Injected(_)) => {}
            Err(error) => {
                return Err(TestCaseError::fail(format!(
                    "run crashing at step {step} failed with something else than the injected failure: {error}"
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
                "after crashes at steps {:?}, {} is {} (old: {}, new: {})",
                steps,
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
    }
    let rerun = world.sync(&MergeStrategy::default(), false);
    if let Err(error) = rerun {
        return Err(TestCaseError::fail(format!(
            "rerun after crashes at steps {steps:?} failed: {error}"
        )));
    }
    let after = world.snap();
    prop_assert!(
        after.tree == expected.tree,
        "after crashes at steps {:?} and a rerun, live differs from the model:\n{}",
        steps,
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
    let dry = world.sync(&engine, true);
    let after = world::snapshot(&world.live, true);
    prop_assert!(
        before == after,
        "the dry run changed the live directory:\n{}",
        snap_diff(&before, &after)
    );
    let real = world.sync(&engine, false);
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

/// Whatever is done to `.stoker/` after a sync, the next sync changes nothing outside the live
/// directory (a followed `.stoker/reports` symlink had its "old reports" pruned); it is refused,
/// with the live directory unchanged, when it cannot keep its state without following or
/// replacing what is there, and otherwise gives the model's result.
fn tampered_state_dir_is_never_followed_holds(
    case: &Case,
    mess: world::StateMess,
) -> Result<(), TestCaseError> {
    let world = World::new(case);
    let engine = MergeStrategy::default();
    if world.sync(&engine, false).is_err() {
        return Ok(()); // result_equals_model judges that
    }
    world.mess_state(mess);
    let outside = world.outside_snap();
    let before = world.snap();
    let outcome = spec::sync(&world.art, &case.profile, &before.tree);
    for dry_run in [true, false] {
        let result = world.sync(&engine, dry_run);
        prop_assert!(
            world.outside_snap() == outside,
            "{:?}: something outside the live directory changed (dry run: {})",
            mess,
            dry_run
        );
        match (result, &outcome) {
            (Err(_), _) if mess.refused() => {
                prop_assert!(
                    same_files(&before, &world.snap()),
                    "refused, but live changed"
                );
            }
            (Ok(_), _) if mess.refused() => {
                prop_assert!(false, "{:?}: the sync was not refused", mess);
            }
            (Ok(_), Outcome::Synced(expected)) if !dry_run => {
                let after = world.snap();
                prop_assert!(
                    after.tree == expected.tree,
                    "{:?}: live differs from the model:\n{}",
                    mess,
                    tree_diff(&expected.tree, &after.tree)
                );
            }
            (Ok(_), _) => {}
            (Err(error), _) => prop_assert!(false, "{:?}: the sync failed: {}", mess, error),
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
    fn crash_at_any_step_then_rerun_converges(
        case in world::case_strategy(),
        at in any::<Index>(),
        again in prop::option::weighted(0.25, any::<Index>()),
    ) {
        crash_then_rerun_converges_holds(&case, |steps| {
            let pick = |index: Index| 1 + index.index(usize::try_from(steps).unwrap_or(1)) as u64;
            std::iter::once(pick(at)).chain(again.map(pick)).collect()
        })?;
    }

    #[test]
    fn dry_run_reports_what_sync_does(case in world::case_strategy()) {
        dry_run_reports_what_sync_does_holds(&case)?;
    }

    #[test]
    fn changed_paths_change_only_the_work(case in world::incremental_case_strategy()) {
        changed_paths_change_only_the_work_holds(&case)?;
    }

    #[test]
    fn tampered_state_dir_is_never_followed(
        case in world::case_strategy(),
        mess in proptest::sample::select(world::StateMess::ALL.to_vec()),
    ) {
        tampered_state_dir_is_never_followed_holds(&case, mess)?;
    }

    #[test]
    fn guided_scan_sees_every_change(case in world::case_strategy(), mess in world::mess_strategy()) {
        guided_scan_sees_every_change_holds(&case, &mess)?;
    }
}

// ---------------------------------------------------------------------------------------------
// Regression tests: shrunk cases, as plain tests

fn map(source: &str, destination: &str) -> spec::MapSpec {
    spec::MapSpec {
        source: source.to_owned(),
        destination: destination.to_owned(),
        kind: None,
        required: false,
        template: false,
    }
}

fn small_case(
    files: &[(&str, &'static str)],
    mappings: Vec<spec::MapSpec>,
    live: Vec<world::LiveSpec>,
) -> Case {
    Case {
        art: world::Art {
            files: files
                .iter()
                .map(|(path, content)| ((*path).to_owned(), *content, false))
                .collect(),
            links: Vec::new(),
        },
        with_ids: false,
        profile: spec::ProfileSpec {
            mappings,
            excludes: Vec::new(),
            adopt: true,
        },
        live,
        pre: world::Pre::Nothing,
        drift: Vec::new(),
    }
}

fn live_file(path: &str, content: &'static str) -> world::LiveSpec {
    world::LiveSpec::File(path.to_owned(), content, false)
}

/// Engine bug (open): a `file` destination is a managed root, but a root below it (here one
/// whose only file is excluded, so the profile is valid) makes the engine call that file "not
/// managed" and refuse. The first sync writes `a`; every sync after it fails with
/// "live directory: …/a: is not a directory, but the managed path a/.gitkeep lies below it; it
/// is not managed". DESIGN: "a `file` destination manages exactly that file"; nothing needs to
/// happen below `a`, so the second sync must change nothing.
/// Issue 15, data loss 1: the nested optional mapping whose source is missing (a typo) or a
/// symlink; every invariant holds, and the file below its destination is still there.
#[test]
fn skipped_nested_mapping_is_not_wiped_by_its_parent() {
    let mut case = small_case(
        &[("projects/a", "1"), ("projects/b/c", "2")],
        vec![map("projects", "projects"), map("gone/b", "projects/b")],
        vec![
            live_file("projects/b/x.bak", "designer's"),
            live_file("projects/b/c", "live"),
            live_file("projects/stale", "orphan"),
        ],
    );
    let expected_kept = |case: &Case| {
        let world = World::new(case);
        let before = world.snap();
        let Outcome::Synced(expected) = spec::sync(&world.art, &case.profile, &before.tree) else {
            panic!("the model syncs");
        };
        assert_eq!(
            expected.tree.get("projects/b/x.bak"),
            before.tree.get("projects/b/x.bak")
        );
        assert_eq!(
            expected.tree.get("projects/b/c"),
            before.tree.get("projects/b/c")
        );
        assert!(!expected.tree.contains_key("projects/stale"));
    };
    for source in ["gone/b", "lnk"] {
        case.profile.mappings[1].source = source.to_owned();
        case.art.links = vec!["lnk".to_owned()];
        expected_kept(&case);
        result_equals_model_holds(&case).unwrap();
        second_apply_changes_nothing_holds(&case).unwrap();
        nothing_outside_scope_changes_holds(&case).unwrap();
        dry_run_reports_what_sync_does_holds(&case).unwrap();
    }
}

/// Issue 15, data loss 3: `**/c` matches the directory `projects/c`, so what is below it is
/// neither written nor deleted.
#[test]
fn an_exclude_matching_a_directory_excludes_its_whole_subtree() {
    let mut case = small_case(
        &[("projects/c/a", "from git"), ("projects/b", "1")],
        vec![map("projects", "projects")],
        vec![live_file("projects/c/b", "designer's")],
    );
    case.profile.excludes = vec![spec::Exclude::LeafC];
    let world = World::new(&case);
    let Outcome::Synced(expected) = spec::sync(&world.art, &case.profile, &world.snap().tree)
    else {
        panic!("the model syncs");
    };
    assert!(expected.tree.contains_key("projects/c/b"));
    assert!(!expected.tree.contains_key("projects/c/a"));
    result_equals_model_holds(&case).unwrap();
    nothing_outside_scope_changes_holds(&case).unwrap();
}

#[test]
fn file_root_above_another_root_is_managed_so_resync_succeeds() {
    let case = small_case(
        &[("v", "1")],
        vec![map("v", "a"), map("v", "a/.gitkeep")],
        Vec::new(),
    );
    second_apply_changes_nothing_holds(&case).unwrap();
    let mut already_synced = case;
    already_synced.live = vec![live_file("a", "1")];
    result_equals_model_holds(&already_synced).unwrap();
}

/// Fixed engine bug: with `template: true` a binary file is an error, but the engine found out
/// while writing and left the other files (and new directories) of the sync in place.
#[test]
fn binary_template_fails_before_anything_is_written() {
    let mut mapping = map("b", "b");
    mapping.template = true;
    let case = small_case(
        &[("b/a/x", "1"), ("b/b", "\0bin")],
        vec![mapping],
        vec![live_file("b/c", "z")],
    );
    result_equals_model_holds(&case).unwrap();
    dry_run_reports_what_sync_does_holds(&case).unwrap();
}

/// Fixed engine bug: a directory holding a protected `.resources/` where a file must go was
/// half cleared (its managed files deleted) before the apply failed on "directory not empty".
#[test]
fn directory_holding_resources_is_not_half_cleared() {
    let case = small_case(
        &[("d/x", "1"), ("f", "2")],
        vec![map("d", "."), map("f", "config")],
        vec![
            live_file("config/.resources/a", "yy"),
            live_file("config/b", "1"),
        ],
    );
    result_equals_model_holds(&case).unwrap();
    dry_run_reports_what_sync_does_holds(&case).unwrap();
}

/// Fixed engine bug: a directory with unmanaged content where a `file` destination goes; the
/// dry run reported success and the sync failed halfway ("directory not empty").
#[test]
fn directory_at_a_file_root_with_unmanaged_content_is_refused_up_front() {
    let case = small_case(
        &[("a", "")],
        vec![map("a", "b")],
        vec![live_file("b/a", "")],
    );
    dry_run_reports_what_sync_does_holds(&case).unwrap();
    result_equals_model_holds(&case).unwrap();
}

/// A crash right after an orphan's deletion, before its emptied directory is pruned: the rerun
/// must still prune it (it sees a directory that is already empty).
#[test]
fn crash_between_deleting_and_pruning_converges() {
    let case = small_case(
        &[("p/x", "1")],
        vec![map("p", "p")],
        vec![live_file("p/old/f", "z"), live_file("p/x", "1")],
    );
    for step in 1..=3 {
        crash_then_rerun_converges_holds(&case, |_| vec![step]).unwrap();
    }
}

/// Incremental planning must render a template again when its source changed between the
/// manifest's revision and this one (the diff lists it), even though the recipe is the same.
#[test]
fn changed_template_source_is_rendered_again_in_an_incremental_plan() {
    for with_ids in [false, true] {
        let mut mapping = map("a", "a");
        mapping.template = true;
        let mut case = small_case(&[("a/x", "1"), ("a/y", "hello")], vec![mapping], Vec::new());
        case.with_ids = with_ids;
        case.pre = Pre::Other(world::Art {
            files: vec![
                ("a/x".to_owned(), "xx", false),
                ("a/y".to_owned(), "hello", false),
            ],
            links: Vec::new(),
        });
        changed_paths_change_only_the_work_holds(&case).unwrap();
    }
}
