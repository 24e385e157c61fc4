//! Fetch progress as log lines: gix updates shared counters, a reporter thread logs them every
//! few seconds.

use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use gix::progress::{Id, MessageLevel, Step, StepShared, UNKNOWN, Unit};

#[derive(Default)]
struct Task {
    name: String,
    step: StepShared,
    max: Option<Step>,
    unit: Option<Unit>,
}

type Tasks = Arc<Mutex<Vec<Arc<Mutex<Task>>>>>;

/// A node of the progress tree gix reports into.
pub(crate) struct LogProgress {
    task: Arc<Mutex<Task>>,
    tasks: Tasks,
}

impl LogProgress {
    fn new(name: String, tasks: Tasks) -> Self {
        let task = Arc::new(Mutex::new(Task {
            name,
            ..Task::default()
        }));
        tasks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(task.clone());
        LogProgress { task, tasks }
    }

    fn with_task<R>(&self, f: impl FnOnce(&mut Task) -> R) -> R {
        f(&mut self.task.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl gix::Count for LogProgress {
    fn set(&self, step: Step) {
        self.with_task(|t| t.step.store(step, Ordering::Relaxed));
    }

    fn step(&self) -> Step {
        self.with_task(|t| t.step.load(Ordering::Relaxed))
    }

    fn inc_by(&self, step: Step) {
        self.with_task(|t| t.step.fetch_add(step, Ordering::Relaxed));
    }

    fn counter(&self) -> StepShared {
        self.with_task(|t| t.step.clone())
    }
}

impl gix::Progress for LogProgress {
    fn init(&mut self, max: Option<Step>, unit: Option<Unit>) {
        self.with_task(|t| {
            t.max = max;
            t.unit = unit;
            t.step.store(0, Ordering::Relaxed);
        });
    }

    fn set_max(&mut self, max: Option<Step>) -> Option<Step> {
        self.with_task(|t| std::mem::replace(&mut t.max, max))
    }

    fn set_name(&mut self, name: String) {
        self.with_task(|t| t.name = name);
    }

    fn name(&self) -> Option<String> {
        Some(self.with_task(|t| t.name.clone()))
    }

    fn id(&self) -> Id {
        UNKNOWN
    }

    fn message(&self, level: MessageLevel, message: String) {
        let name = self.with_task(|t| t.name.clone());
        match level {
            MessageLevel::Failure => tracing::debug!(task = %name, "{message}"),
            _ => tracing::trace!(task = %name, "{message}"),
        }
    }
}

impl gix::NestedProgress for LogProgress {
    type SubProgress = LogProgress;

    fn add_child(&mut self, name: impl Into<String>) -> Self::SubProgress {
        LogProgress::new(name.into(), self.tasks.clone())
    }

    fn add_child_with_id(&mut self, name: impl Into<String>, _id: Id) -> Self::SubProgress {
        LogProgress::new(name.into(), self.tasks.clone())
    }
}

/// Logs the progress tree every `interval` until dropped.
pub(crate) struct Reporter {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Reporter {
    /// A root progress and the thread logging it as `what` (a redacted URL).
    pub fn start(what: String, interval: Duration) -> (LogProgress, Reporter) {
        let tasks: Tasks = Arc::default();
        let root = LogProgress::new("fetch".into(), tasks.clone());
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("stoker-git-progress".into())
            .spawn(move || {
                let mut last = String::new();
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(interval) {
                    let line = summary(&tasks);
                    if !line.is_empty() && line != last {
                        tracing::info!(repo = %what, "fetching: {line}");
                        last = line;
                    }
                }
            })
            .ok();
        (
            root,
            Reporter {
                stop: Some(stop),
                thread,
            },
        )
    }
}

impl Drop for Reporter {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn summary(tasks: &Tasks) -> String {
    let tasks = tasks.lock().unwrap_or_else(PoisonError::into_inner);
    tasks
        .iter()
        .filter_map(|task| {
            let task = task.lock().unwrap_or_else(PoisonError::into_inner);
            let step = task.step.load(Ordering::Relaxed);
            if step == 0 || task.name.is_empty() {
                return None;
            }
            let value = match &task.unit {
                Some(unit) => unit.display(step, task.max, None).to_string(),
                None => match task.max {
                    Some(max) => format!("{step}/{max}"),
                    None => step.to_string(),
                },
            };
            Some(format!("{} {value}", task.name))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use gix::{Count, NestedProgress, Progress};

    #[test]
    fn the_summary_shows_each_started_task() {
        let (mut root, reporter) = Reporter::start("repo".into(), Duration::from_secs(3600));
        let mut child = root.add_child("receiving objects");
        child.init(Some(10), None);
        child.inc_by(4);
        let counter = child.counter();
        counter.fetch_add(1, Ordering::Relaxed);
        let _idle = root.add_child("idle");
        assert_eq!(summary(&root.tasks), "receiving objects 5/10");
        drop(reporter);
    }
}
