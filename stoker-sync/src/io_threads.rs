//! The pool of threads file-system calls run on: an apply's writes and deletes, an incremental
//! plan's look at the live files. A file-system call mostly waits (for the disk, for a discard,
//! for the file system's locks), so more threads than cores pay off.

/// How many file threads an apply and an incremental plan use unless told otherwise
/// ([`crate::ApplyOptions::io_threads`], the agent's `--io-threads`). Why 4: measured on ext4
/// (with `discard`) on a virtio disk, 2 cores, replacing 73 files took 6.5 ms on 2 threads and
/// 4.8 ms on 4, 8 or 16, so more than 4 buys nothing. Each thread of its own costs memory in a
/// large sync (its allocator arena keeps what it freed): a cold sync of 20k files peaked at
/// 67 MB on the shared pool, 72 MB with 2 threads of its own, 74 MB with 4 and 75 MB with 8
/// (see `benches/HISTORY.md`).
pub const DEFAULT_IO_THREADS: usize = 4;

/// A pool made for one batch of file-system calls, or the caller's rayon pool when one would
/// not help (fewer than two calls, or one thread asked for) or cannot be started.
pub(crate) struct IoThreads(Option<rayon::ThreadPool>);

impl IoThreads {
    /// Up to `threads` threads (never more than `operations`) named `stoker-io-N`.
    pub(crate) fn new(threads: usize, operations: usize) -> Self {
        if operations < 2 || threads <= 1 {
            return IoThreads(None);
        }
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads.min(operations))
            .thread_name(|index| format!("stoker-io-{index}"))
            .build();
        match pool {
            Ok(pool) => IoThreads(Some(pool)),
            Err(error) => {
                tracing::warn!(%error, threads, "could not start the file threads; using the shared pool");
                IoThreads(None)
            }
        }
    }

    /// Runs `work` on the pool: rayon's parallel iterators inside it use its threads.
    pub(crate) fn run<R: Send>(&self, work: impl FnOnce() -> R + Send) -> R {
        match &self.0 {
            Some(pool) => pool.install(work),
            None => work(),
        }
    }
}
