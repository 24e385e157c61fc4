//! The pool of threads file-system calls run on: an apply's writes and deletes, an incremental
//! plan's look at the live files. A file-system call mostly waits (for the disk, for a discard,
//! for the file system's locks), so more threads than cores pay off.

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
