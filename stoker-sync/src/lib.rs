//! # stoker-sync
//!
//! The engine that turns "these files at this revision, through this profile" into a live
//! directory (DESIGN section 3): [`MergeStrategy`] implements
//! [`stoker_core::SyncStrategy`].
//!
//! - **Desired set** (`desired`): mappings in order, later ones overlaying earlier ones;
//!   templated paths; type inference; `required`; excludes; symlinks in the source skipped.
//! - **Scope** (`scope`): managed roots (a `dir` destination manages everything below it, a
//!   `file` destination exactly that file), protected paths (`**/.resources/**`, `.stoker/`).
//! - **Plan** (`plan`): compare with the live directory, trusting the manifest when `lstat`
//!   still matches, hashing otherwise. The live scan (`live`) `lstat`s every entry (the drift
//!   check) but lists only the directories whose `lstat` changed since the manifest recorded
//!   them.
//! - **Incremental plan** (`incremental`): between two revisions the source can diff, only
//!   the destinations of the changed paths are planned (and any the manifest cannot vouch for);
//!   the other files are the manifest's, unread and un-`lstat`ed.
//! - **Apply** (`apply`): atomic per-file writes (temporary + rename), orphan deletion inside
//!   managed roots only, empty-directory pruning, manifest, JSON diff report; a lock and a
//!   journal make it safe against concurrent runs and crashes. Files copied as they are stream
//!   through in chunks whatever their size, and stay sparse (`fsops::copy_sparse`); the free
//!   space is checked before anything is written ([`Error::InsufficientSpace`]), and a disk
//!   that fills up anyway names the files already written ([`Error::DiskFull`]).
#![forbid(unsafe_code)]

// The public API: the strategy, its plan (read through accessors), the options, the pipeline,
// the live directory's lock (which the one-shot command holds), errors and warnings.
pub mod error;
pub mod lock;
pub mod pipeline;
pub mod warning;

pub use apply::ApplyOptions;
pub use error::{Error, ErrorCategory, Result};
pub use io_threads::DEFAULT_IO_THREADS;
pub use plan::{Delete, Plan, PlanOptions, Write, WriteKind};
pub use strategy::MergeStrategy;
pub use warning::{Skipped, Warning};

/// Declares the engine's interior: private, or public with the `testing` feature, through
/// which this crate's tests, the benches and the fuzz targets reach it (as `fault-injection`
/// lets tests stop `apply` part way). Nothing in it is API.
macro_rules! interior {
    ($($name:ident),* $(,)?) => {$(
        #[cfg(feature = "testing")]
        pub mod $name;
        #[cfg(not(feature = "testing"))]
        mod $name;
    )*};
}

interior!(
    apply,
    content,
    desired,
    diff_report,
    fsops,
    journal,
    live,
    manifest,
    path_map,
    plan,
    scope,
    strategy,
);
mod io_threads;

#[cfg(feature = "testing")]
pub use plan::incremental;
