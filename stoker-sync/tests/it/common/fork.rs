//! Child processes and the live directory's lock, in one test process.
//!
//! The engine holds a live directory's lock through an open file. A child process spawned at
//! that moment starts with a copy of every open descriptor and keeps it until it executes its
//! program, so for that instant the lock outlives the sync that took it: a test syncing the same
//! directory again right away would be refused as `Locked`. All the engine's tests share this
//! binary, so a test that spawns (`mkfifo`, `mount`) would make any other test flaky. Hence:
//! whatever may hold a lock runs under [`no_fork`], and children are spawned by [`spawn`],
//! never while a lock may be held.

use std::cell::Cell;
use std::process::{Child, Command};
use std::sync::{PoisonError, RwLock, RwLockReadGuard};

/// Held for reading while the engine may hold a lock, for writing while a child is spawned.
static FORK: RwLock<()> = RwLock::new(());

thread_local! {
    /// How many [`NoFork`] guards this thread holds: only the first takes the read lock (a
    /// second read of the same lock could wait behind a queued writer for ever).
    static HELD: Cell<usize> = const { Cell::new(0) };
}

/// While alive, no child process is being spawned by this test binary.
pub struct NoFork {
    _read: Option<RwLockReadGuard<'static, ()>>,
}

impl Drop for NoFork {
    fn drop(&mut self) {
        HELD.with(|held| held.set(held.get() - 1));
    }
}

/// A guard under which the engine may take (and release) live directories' locks.
pub fn no_fork() -> NoFork {
    let first = HELD.with(|held| {
        held.set(held.get() + 1);
        held.get() == 1
    });
    NoFork {
        _read: first.then(|| FORK.read().unwrap_or_else(PoisonError::into_inner)),
    }
}

/// Runs `work` (a sync, a plan and its apply) under [`no_fork`].
pub fn without_fork<T>(work: impl FnOnce() -> T) -> T {
    let _no_fork = no_fork();
    work()
}

/// Spawns `command` while no lock can be held. Panics when called under [`no_fork`] (it
/// would wait for itself).
pub fn spawn(command: &mut Command) -> std::io::Result<Child> {
    assert_eq!(
        HELD.with(Cell::get),
        0,
        "a child process spawned under no_fork() would wait for itself"
    );
    let _spawning = FORK.write().unwrap_or_else(PoisonError::into_inner);
    command.spawn()
}
