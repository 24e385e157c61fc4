//! What the sidecar's loop knows between syncs: its gateway ([`GatewayTracker`], whose stage is
//! a [`GatewayState`]) and its own start ([`Progress`]). Each is one value whose variants are
//! the states that can happen, so that the loop cannot write one that cannot (a gateway
//! rescanned but never answered, a poll time without a gateway to poll).

use std::time::Duration;

use tokio::time::Instant;

/// How often a gateway that was not answering is asked again (for the post-commissioning
/// scan).
pub const GATEWAY_POLL: Duration = Duration::from_secs(2);

/// Where the gateway is in its life, as far as the agent has seen since it started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GatewayState {
    /// It has not answered since the agent started (in Kubernetes it has not even started:
    /// the agent is a native sidecar whose startup probe gates it). Files are synced without a
    /// Designer check or rescan. `since`: the agent's start, for
    /// `stoker_agent_gateway_startup_duration_seconds`.
    Starting {
        /// When the agent started waiting.
        since: std::time::Instant,
    },
    /// It has answered, but not yet rescanned: the post-commissioning scan is owed whatever
    /// changed.
    Answered,
    /// It has rescanned since the agent started.
    Commissioned,
}

/// Whether the gateway has rescanned everything the agent wrote (once it is commissioned,
/// or as a note beside the post-commissioning scan).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rescan {
    /// Nothing written is waiting for a rescan.
    Current,
    /// Files changed while it was not answering, or its rescan failed: ask again.
    Owed,
}

/// The gateway as the loop tracks it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayTracker {
    state: GatewayState,
    rescan: Rescan,
    /// When to ask again a gateway that did not answer at the last sync; `None` when it did
    /// (or was not asked: a dry run).
    poll: Option<Instant>,
}

impl GatewayTracker {
    /// A gateway not heard from yet; the agent starts waiting now.
    pub fn new() -> Self {
        GatewayTracker {
            state: GatewayState::Starting {
                since: std::time::Instant::now(),
            },
            rescan: Rescan::Current,
            poll: None,
        }
    }

    /// Its stage.
    pub fn state(&self) -> GatewayState {
        self.state
    }

    /// When it is to be asked again, if it did not answer at the last sync.
    pub fn next_poll(&self) -> Option<Instant> {
        self.poll
    }

    /// It answered: the first time, how long that took since the agent started.
    pub fn answered(&mut self) -> Option<Duration> {
        match self.state {
            GatewayState::Starting { since } => {
                self.state = GatewayState::Answered;
                Some(since.elapsed())
            }
            GatewayState::Answered | GatewayState::Commissioned => None,
        }
    }

    /// What a sync found before syncing: `up`, or not answering (poll it from `now`). A dry
    /// run asks nothing: `up` is `None` and nothing is polled.
    pub fn checked(&mut self, up: Option<bool>, now: Instant) {
        self.poll = match up {
            Some(false) => Some(now + GATEWAY_POLL),
            Some(true) | None => None,
        };
    }

    /// Whether it is time to ask a gateway that was not answering again; if so, the next time
    /// is set.
    pub fn poll_due(&mut self, now: Instant) -> bool {
        if self.poll.is_some_and(|at| now >= at) {
            self.poll = Some(now + GATEWAY_POLL);
            return true;
        }
        false
    }

    /// Files changed while it was not answering: the rescan is owed.
    pub fn files_unscanned(&mut self) {
        self.rescan = Rescan::Owed;
    }

    /// Whether a sync should ask for a rescan whatever it changed: one is owed, or the
    /// post-commissioning scan has not happened yet.
    pub fn scan_owed(&self) -> bool {
        self.rescan == Rescan::Owed || self.state != GatewayState::Commissioned
    }

    /// Whether files are waiting for a rescan (for the status message).
    pub fn rescan(&self) -> Rescan {
        self.rescan
    }

    /// It rescanned: returns whether this was the post-commissioning scan (the first).
    pub fn rescanned(&mut self) -> bool {
        let first = self.state != GatewayState::Commissioned;
        self.state = GatewayState::Commissioned;
        self.rescan = Rescan::Current;
        first
    }

    /// Its rescan failed: owed.
    pub fn rescan_failed(&mut self) {
        self.rescan = Rescan::Owed;
    }
}

impl Default for GatewayTracker {
    fn default() -> Self {
        GatewayTracker::new()
    }
}

/// How far the agent itself has come since it started (in order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Progress {
    /// No sync has finished: `/startupz` fails.
    Starting,
    /// Started (a paused profile starts the agent too) but nothing fetched yet: a Git failure
    /// is still v0.5.1's `CloneFailed`.
    Started,
    /// A fetch of the repository has succeeded (started too: a sync that fetched ends with the
    /// agent started, whatever the gateway then said).
    Fetched,
}

impl Progress {
    /// `/startupz` passes.
    pub fn started(self) -> bool {
        self != Progress::Starting
    }

    /// A fetch has succeeded since the agent started.
    pub fn fetched(self) -> bool {
        self == Progress::Fetched
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_answer_is_timed_once() {
        let mut gateway = GatewayTracker::new();
        assert!(matches!(gateway.state(), GatewayState::Starting { .. }));
        assert!(gateway.answered().is_some());
        assert_eq!(gateway.state(), GatewayState::Answered);
        assert_eq!(gateway.answered(), None);
    }

    #[test]
    fn the_post_commissioning_scan_is_owed_until_one_succeeds() {
        let mut gateway = GatewayTracker::new();
        assert!(gateway.scan_owed());
        gateway.answered();
        gateway.rescan_failed();
        assert!(gateway.scan_owed());
        assert_eq!(gateway.rescan(), Rescan::Owed);
        assert!(gateway.rescanned(), "the post-commissioning scan");
        assert!(!gateway.scan_owed());
        assert_eq!(gateway.rescan(), Rescan::Current);
        // Down later, files changed: owed again, but no longer the first.
        gateway.files_unscanned();
        assert!(gateway.scan_owed());
        assert!(!gateway.rescanned());
        assert_eq!(gateway.state(), GatewayState::Commissioned);
    }

    #[test]
    fn a_gateway_not_answering_is_polled() {
        let mut gateway = GatewayTracker::new();
        let now = Instant::now();
        gateway.checked(Some(false), now);
        assert_eq!(gateway.next_poll(), Some(now + GATEWAY_POLL));
        assert!(!gateway.poll_due(now));
        let later = now + GATEWAY_POLL;
        assert!(gateway.poll_due(later));
        assert_eq!(gateway.next_poll(), Some(later + GATEWAY_POLL));
        gateway.checked(Some(true), later);
        assert_eq!(gateway.next_poll(), None);
        assert!(!gateway.poll_due(later + GATEWAY_POLL));
        gateway.checked(Some(false), later);
        gateway.checked(None, later);
        assert_eq!(gateway.next_poll(), None, "a dry run polls nothing");
    }

    #[test]
    fn progress_reads_as_the_flags_it_replaces() {
        assert!(!Progress::Starting.started() && !Progress::Starting.fetched());
        assert!(Progress::Started.started() && !Progress::Started.fetched());
        assert!(Progress::Fetched.started() && Progress::Fetched.fetched());
        assert_eq!(Progress::Fetched.max(Progress::Started), Progress::Fetched);
    }
}
