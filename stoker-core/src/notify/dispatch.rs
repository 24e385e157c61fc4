//! Delivery in the background: a [`Dispatcher`] owns one notifier and a task that delivers its
//! queue, so whoever sends (the operator's reconciler) never waits on a slow or dead endpoint.
//!
//! - [`Dispatcher::send`] is not `async`: it queues and returns. The queue is bounded; when it
//!   is full the oldest event is dropped (newer news is worth more) and counted.
//! - The same kind, subject and message within [`DispatchConfig::dedup_window`] is sent once.
//!   A recovery forgets its problem (and a problem its recovery), so a failure that comes back
//!   after clearing is news again.
//! - Failures worth retrying (network, timeout, 429, 5xx) are retried with exponential backoff
//!   up to [`DispatchConfig::attempts`], waiting what `Retry-After` asks when the endpoint says.
//! - Every outcome is reported to an observer ([`Delivery`]): metrics and conditions are the
//!   caller's.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use crate::notify::{Event, EventKind, Notifier};

/// How a [`Dispatcher`] delivers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DispatchConfig {
    /// Events waiting at most; beyond, the oldest is dropped.
    pub capacity: usize,
    /// Attempts per event (the first included).
    pub attempts: u32,
    /// The wait after the first failed attempt; doubles per attempt.
    pub initial_backoff: Duration,
    /// The longest wait between attempts, `Retry-After` included.
    pub max_backoff: Duration,
    /// Repeats of an event within this window are not sent.
    pub dedup_window: Duration,
}

impl Default for DispatchConfig {
    fn default() -> Self {
        DispatchConfig {
            capacity: 64,
            attempts: 4,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
            dedup_window: Duration::from_secs(600),
        }
    }
}

impl DispatchConfig {
    /// The wait before attempt `attempt + 1`, after `attempt` failed attempts: what the
    /// endpoint asked for, else `initial · 2^(attempt-1)`; at most `max_backoff`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use stoker_core::notify::dispatch::DispatchConfig;
    /// let config = DispatchConfig::default();
    /// assert_eq!(config.backoff(1, None), Duration::from_secs(1));
    /// assert_eq!(config.backoff(3, None), Duration::from_secs(4));
    /// assert_eq!(config.backoff(1, Some(Duration::from_secs(7))), Duration::from_secs(7));
    /// assert_eq!(config.backoff(1, Some(Duration::from_secs(3600))), Duration::from_secs(60));
    /// ```
    pub fn backoff(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let exponential = self
            .initial_backoff
            .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1).min(20)));
        retry_after.unwrap_or(exponential).min(self.max_backoff)
    }
}

/// What became of one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryResult {
    /// The endpoint accepted it (2xx).
    Delivered,
    /// Every attempt failed, or the endpoint refused it.
    Failed,
    /// The queue was full: it was dropped unsent.
    Dropped,
    /// It repeated an event sent within the dedup window: not sent.
    Deduplicated,
}

impl DeliveryResult {
    /// The metric label value (`delivered`, `failed`, `dropped`, `deduplicated`).
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryResult::Delivered => "delivered",
            DeliveryResult::Failed => "failed",
            DeliveryResult::Dropped => "dropped",
            DeliveryResult::Deduplicated => "deduplicated",
        }
    }
}

/// One outcome, as the observer hears it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The event's kind.
    pub kind: EventKind,
    /// What became of it.
    pub result: DeliveryResult,
    /// Attempts made (0 unless sent).
    pub attempts: u32,
    /// The last error, for [`DeliveryResult::Failed`]: it names the webhook by its label,
    /// never by its URL.
    pub error: Option<String>,
}

/// Hears every [`Delivery`] (from the sender's thread for drops and repeats, from the
/// delivery task otherwise). Must not block.
pub type Observer = Arc<dyn Fn(&Delivery) + Send + Sync>;

/// What identifies a repeat.
type DedupKey = (EventKind, String, String);

struct State {
    queue: VecDeque<Event>,
    recent: HashMap<DedupKey, Instant>,
    closed: bool,
    dropped: u64,
}

struct Shared {
    state: Mutex<State>,
    wake: tokio::sync::Notify,
    observer: Observer,
    config: DispatchConfig,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Delivers one notifier's events from a task of its own (see the module's documentation).
/// Dropping it stops the task once the event in flight, if any, is done.
pub struct Dispatcher {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher")
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

impl Dispatcher {
    /// Starts delivering to `notifier` on the current tokio runtime.
    pub fn spawn(notifier: Arc<dyn Notifier>, config: DispatchConfig, observer: Observer) -> Self {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                recent: HashMap::new(),
                closed: false,
                dropped: 0,
            }),
            wake: tokio::sync::Notify::new(),
            observer,
            config,
        });
        tokio::spawn(run(shared.clone(), notifier));
        Dispatcher { shared }
    }

    /// Queues `event` and returns at once. `false` when it was not queued because it repeats
    /// an event sent within the dedup window.
    pub fn send(&self, event: Event) -> bool {
        let now = Instant::now();
        let window = self.shared.config.dedup_window;
        let mut dropped = None;
        {
            let mut state = self.shared.state();
            state
                .recent
                .retain(|_, sent| now.saturating_duration_since(*sent) < window);
            let key = (event.kind, event.gateway.clone(), event.message.clone());
            if state.recent.contains_key(&key) {
                drop(state);
                self.report(event.kind, DeliveryResult::Deduplicated);
                return false;
            }
            // A recovery makes the next failure news again, and a failure the next recovery.
            state.recent.retain(|(kind, subject, _), _| {
                subject != &event.gateway || !opposite(*kind, event.kind)
            });
            state.recent.insert(key, now);
            if state.queue.len() >= self.shared.config.capacity.max(1) {
                dropped = state.queue.pop_front();
                state.dropped = state.dropped.saturating_add(1);
            }
            state.queue.push_back(event);
        }
        self.shared.wake.notify_one();
        if let Some(old) = dropped {
            tracing::warn!(kind = %old.kind, "notification queue full; dropped the oldest event");
            self.report(old.kind, DeliveryResult::Dropped);
        }
        true
    }

    /// Events dropped so far because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.shared.state().dropped
    }

    fn report(&self, kind: EventKind, result: DeliveryResult) {
        (self.shared.observer)(&Delivery {
            kind,
            result,
            attempts: 0,
            error: None,
        });
    }
}

impl Drop for Dispatcher {
    fn drop(&mut self) {
        self.shared.state().closed = true;
        self.shared.wake.notify_one();
    }
}

/// A problem and its recovery, either way round.
fn opposite(a: EventKind, b: EventKind) -> bool {
    a.resolves() == Some(b) || b.resolves() == Some(a)
}

/// The delivery task: one event at a time, oldest first, until the dispatcher is dropped.
async fn run(shared: Arc<Shared>, notifier: Arc<dyn Notifier>) {
    loop {
        let next = {
            let mut state = shared.state();
            if state.closed {
                return;
            }
            state.queue.pop_front()
        };
        match next {
            Some(event) => {
                let delivery = deliver(&shared.config, notifier.as_ref(), &event).await;
                (shared.observer)(&delivery);
            }
            // `notify_one` keeps a permit when nobody waits: a send between the check above
            // and this wait is not missed.
            None => shared.wake.notified().await,
        }
    }
}

/// Delivers `event`, retrying what is worth retrying.
async fn deliver(config: &DispatchConfig, notifier: &dyn Notifier, event: &Event) -> Delivery {
    let attempts = config.attempts.max(1);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let error = match notifier.notify(event).await {
            Ok(()) => {
                tracing::debug!(kind = %event.kind, attempt, "notification delivered");
                return Delivery {
                    kind: event.kind,
                    result: DeliveryResult::Delivered,
                    attempts: attempt,
                    error: None,
                };
            }
            Err(error) => error,
        };
        let transient = error.notify_kind().is_some_and(|kind| kind.is_transient());
        let message = crate::error::chain(&error);
        if !transient || attempt >= attempts {
            tracing::warn!(kind = %event.kind, attempts = attempt, error = %message, "notification not delivered");
            return Delivery {
                kind: event.kind,
                result: DeliveryResult::Failed,
                attempts: attempt,
                error: Some(message),
            };
        }
        let wait = config.backoff(attempt, error.retry_after());
        tracing::debug!(kind = %event.kind, attempt, error = %message, retry_in_ms = wait.as_millis() as u64, "notification failed; retrying");
        tokio::time::sleep(wait).await;
    }
}
