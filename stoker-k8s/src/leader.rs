//! Leader election with a `coordination.k8s.io/v1` `Lease`, the protocol client-go's
//! `leaderelection` package speaks, so a Stoker operator and tooling that reads Leases
//! (`kubectl get lease`) agree on who leads.
//!
//! kube-runtime has no leader election, and the crates that add one lag behind kube's releases,
//! so this is written by hand: it is small (acquire, renew, take over an expired lease, release)
//! and every step is an optimistic-concurrency `replace` guarded by `resourceVersion`, so two
//! candidates can never both believe they hold the lease after a successful write.
//!
//! # When a lease has expired
//!
//! Candidates run on different machines whose wall clocks disagree, so a candidate never
//! compares a Lease's `renewTime` with its own clock. As client-go does, each candidate
//! remembers the Lease's record (holder, times, duration, transitions) and *when it last saw
//! that record change*, on its own monotonic clock; it takes a held Lease over only once it has
//! seen the same record for the Lease's `leaseDurationSeconds`. A candidate whose clock runs a
//! minute fast therefore waits like any other, and a holder whose clock runs slow keeps its
//! Lease as long as it renews. The times written into the Lease (`acquireTime`, `renewTime`) are
//! for people and tools reading it; they come from a [`WallClock`] that tests can replace.
//!
//! The rule stays safe because the two sides count from ordered moments: a leader stops leading
//! when `renewDeadline` has passed since it *started* its last successful renewal, while a
//! follower starts counting `leaseDuration` only when it *sees* that renewal, later, and
//! `renewDeadline` is shorter than `leaseDuration`. A lease released on shutdown (no holder) is
//! free at once.
//!
//! Like controller-runtime, the operator exits when it loses the lease rather than trying to
//! stop its controllers cleanly mid-flight; Kubernetes restarts it as a follower.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, ObjectMeta, PostParams};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::error::{Error, Result};

/// Timings of the election (client-go's defaults: 15 s lease, 10 s renew deadline, 2 s retry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseTimings {
    /// How long a lease stays valid after candidates last saw it change.
    pub lease_duration: Duration,
    /// A leader that cannot renew for this long gives up leadership. Shorter than
    /// `lease_duration`.
    pub renew_deadline: Duration,
    /// How often candidates try to acquire and leaders renew.
    pub retry_period: Duration,
}

impl Default for LeaseTimings {
    fn default() -> Self {
        LeaseTimings {
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

/// Where a candidate reads the time it writes into a Lease's `acquireTime` and `renewTime`.
/// Expiry never depends on it (see the module docs); tests replace it to run a candidate whose
/// clock is wrong.
pub trait WallClock: Send + Sync + std::fmt::Debug {
    /// The time now.
    fn now(&self) -> jiff::Timestamp;
}

/// The system's clock, the [`WallClock`] a [`LeaderElector`] uses unless told otherwise.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl WallClock for SystemClock {
    fn now(&self) -> jiff::Timestamp {
        jiff::Timestamp::now()
    }
}

/// One candidate for leadership.
///
/// ```no_run
/// # async fn demo(client: kube::Client) -> stoker_k8s::Result<()> {
/// use stoker_k8s::leader::{LeaderElector, LeaseTimings};
/// let elector = LeaderElector::new(client, "stoker-system", "stoker-operator", "pod-1", LeaseTimings::default());
/// let leadership = elector.start();
/// let mut leading = leadership.subscribe();
/// leading.wait_for(|leading| *leading).await.ok();
/// // ... run the controller until `leading` turns false (then exit), or until shutdown:
/// leadership.step_down().await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct LeaderElector {
    api: Api<Lease>,
    name: String,
    identity: String,
    timings: LeaseTimings,
    clock: Arc<dyn WallClock>,
    /// Shared by the clones of one candidate (the one that releases the lease on shutdown).
    observer: Arc<Mutex<LeaseObserver>>,
}

/// What one attempt found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// We hold the lease (acquired, renewed or taken over).
    Leading,
    /// Someone else holds a lease that has not expired.
    Following,
}

/// What a candidate may do with the Lease it just read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// We hold it: renew.
    Ours,
    /// Nobody holds it (released, or never held): take it.
    Free,
    /// Its record has not changed for its duration: take it over.
    Expired,
    /// Someone else holds it and renewed it recently enough: follow.
    Live,
}

/// The Lease record a candidate last saw change, and when, on the local monotonic clock.
#[derive(Debug, Default)]
struct LeaseObserver {
    last: Option<(LeaseSpec, Instant)>,
}

impl LeaseObserver {
    /// Notes `spec` as read at `now` and judges it for `identity`. The observation time moves
    /// only when the record differs from the last one seen; a lease without
    /// `leaseDurationSeconds` lasts `default_duration`.
    fn observe(
        &mut self,
        spec: &LeaseSpec,
        now: Instant,
        identity: &str,
        default_duration: Duration,
    ) -> Verdict {
        let seen_at = match &self.last {
            Some((last, at)) if last == spec => *at,
            _ => {
                self.last = Some((spec.clone(), now));
                now
            }
        };
        let holder = spec.holder_identity.as_deref().unwrap_or_default();
        if holder == identity {
            return Verdict::Ours;
        }
        if holder.is_empty() {
            return Verdict::Free;
        }
        let duration = spec
            .lease_duration_seconds
            .and_then(|seconds| u64::try_from(seconds).ok())
            .map_or(default_duration, Duration::from_secs);
        if now.saturating_duration_since(seen_at) >= duration {
            Verdict::Expired
        } else {
            Verdict::Live
        }
    }

    /// Notes the record we just wrote (as the API server returned it).
    fn wrote(&mut self, spec: Option<LeaseSpec>, now: Instant) {
        self.last = spec.map(|spec| (spec, now));
    }
}

fn seconds(duration: Duration) -> i32 {
    i32::try_from(duration.as_secs()).unwrap_or(i32::MAX)
}

impl LeaderElector {
    /// A candidate named `identity` (usually the pod name) for the lease `namespace/name`.
    pub fn new(
        client: kube::Client,
        namespace: &str,
        name: impl Into<String>,
        identity: impl Into<String>,
        timings: LeaseTimings,
    ) -> Self {
        LeaderElector {
            api: Api::namespaced(client, namespace),
            name: name.into(),
            identity: identity.into(),
            timings,
            clock: Arc::new(SystemClock),
            observer: Arc::default(),
        }
    }

    /// The same candidate, writing times from `clock` instead of the system's clock.
    #[must_use]
    pub fn with_wall_clock(mut self, clock: Arc<dyn WallClock>) -> Self {
        self.clock = clock;
        self
    }

    /// This candidate's identity.
    pub fn identity(&self) -> &str {
        &self.identity
    }

    fn now(&self) -> MicroTime {
        MicroTime(self.clock.now())
    }

    fn observer(&self) -> MutexGuard<'_, LeaseObserver> {
        // A panic while holding the lock cannot leave the observation half-written.
        self.observer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn fresh_spec(&self, transitions: i32) -> LeaseSpec {
        let now = self.now();
        LeaseSpec {
            holder_identity: Some(self.identity.clone()),
            lease_duration_seconds: Some(seconds(self.timings.lease_duration)),
            acquire_time: Some(now.clone()),
            renew_time: Some(now),
            lease_transitions: Some(transitions),
            ..LeaseSpec::default()
        }
    }

    /// One round: create the lease, renew ours, or take over one that is free or expired.
    #[tracing::instrument(level = "debug", skip(self), fields(lease = %self.name, identity = %self.identity))]
    pub async fn try_acquire_or_renew(&self) -> Result<Attempt> {
        let existing = self
            .api
            .get_opt(&self.name)
            .await
            .map_err(|source| Error::kube("reading Lease", &self.name, source))?;
        let Some(mut lease) = existing else {
            return self.create().await;
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let verdict = self.observer().observe(
            &spec,
            Instant::now(),
            &self.identity,
            self.timings.lease_duration,
        );
        let new_spec = match verdict {
            Verdict::Ours => LeaseSpec {
                renew_time: Some(self.now()),
                lease_duration_seconds: Some(seconds(self.timings.lease_duration)),
                ..spec
            },
            Verdict::Free | Verdict::Expired => {
                let previous = spec.holder_identity.unwrap_or_default();
                let transitions = spec.lease_transitions.unwrap_or(0).saturating_add(1);
                tracing::info!(lease = %self.name, identity = %self.identity, %previous, ?verdict, "taking over an expired or released leader lease");
                self.fresh_spec(transitions)
            }
            Verdict::Live => return Ok(Attempt::Following),
        };
        lease.spec = Some(new_spec);
        match self
            .api
            .replace(&self.name, &PostParams::default(), &lease)
            .await
        {
            Ok(written) => {
                self.observer().wrote(written.spec, Instant::now());
                Ok(Attempt::Leading)
            }
            // Someone renewed or took over between our read and write.
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(Attempt::Following),
            Err(source) => Err(Error::kube("updating Lease", &self.name, source)),
        }
    }

    /// Creates the lease, held by us.
    async fn create(&self) -> Result<Attempt> {
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(self.name.clone()),
                ..ObjectMeta::default()
            },
            spec: Some(self.fresh_spec(0)),
        };
        match self.api.create(&PostParams::default(), &lease).await {
            Ok(created) => {
                self.observer().wrote(created.spec, Instant::now());
                tracing::info!(lease = %self.name, identity = %self.identity, "acquired the leader lease");
                Ok(Attempt::Leading)
            }
            // Someone else created it first.
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(Attempt::Following),
            Err(source) => Err(Error::kube("creating Lease", &self.name, source)),
        }
    }

    /// Gives the lease up (on graceful shutdown), so a follower takes over at once instead of
    /// waiting for it to expire. Only clears it when we still hold it.
    ///
    /// Call it only when no election round of this candidate can run any more (after
    /// [`Leadership::step_down`] stopped the loop, which calls it): a round after the release
    /// would find the lease free and take it again.
    pub async fn release(&self) -> Result<()> {
        self.release_with_retries(3).await
    }

    async fn release_with_retries(&self, conflicts_left: u32) -> Result<()> {
        let Some(mut lease) = self
            .api
            .get_opt(&self.name)
            .await
            .map_err(|source| Error::kube("reading Lease", &self.name, source))?
        else {
            return Ok(());
        };
        let Some(spec) = lease.spec.as_mut() else {
            return Ok(());
        };
        if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
            return Ok(());
        }
        spec.holder_identity = None;
        // A released lease must look expired to every candidate.
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(self.now());
        match self
            .api
            .replace(&self.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => {
                tracing::info!(lease = %self.name, identity = %self.identity, "released the leader lease");
                Ok(())
            }
            // Changed between our read and write: read again (it may still be ours).
            Err(kube::Error::Api(status)) if status.code == 409 && conflicts_left > 0 => {
                Box::pin(self.release_with_retries(conflicts_left - 1)).await
            }
            Err(source) => Err(Error::kube("releasing Lease", &self.name, source)),
        }
    }

    /// Runs the election in the background. The channel says whether we lead; it turns `false`
    /// when a leader fails to renew within the renew deadline (the caller should then stop
    /// working, usually by exiting). The election runs until every receiver is dropped; it
    /// cannot be stopped and released cleanly: prefer [`LeaderElector::start`].
    pub fn spawn(self) -> watch::Receiver<bool> {
        let (sender, receiver) = watch::channel(false);
        let (stop, stopped) = watch::channel(false);
        tokio::spawn(async move {
            // Never signalled: the loop ends when the last receiver is gone.
            let _stop = stop;
            self.run(sender, stopped).await
        });
        receiver
    }

    /// Runs the election in the background until [`Leadership::step_down`] (which also releases
    /// the lease) or until the [`Leadership`] is dropped (which does not).
    pub fn start(self) -> Leadership {
        let (sender, receiver) = watch::channel(false);
        let (stop, stopped) = watch::channel(false);
        let releaser = self.clone();
        let task = tokio::spawn(self.run(sender, stopped));
        Leadership {
            leading: receiver,
            stop,
            task,
            releaser,
        }
    }

    async fn run(self, leading: watch::Sender<bool>, mut stop: watch::Receiver<bool>) {
        let mut last_renewed: Option<Instant> = None;
        loop {
            if *stop.borrow_and_update() {
                break;
            }
            // A request that hangs (a half-open connection, an API server that stopped
            // answering) must not keep us believing we lead past the renew deadline: kube's
            // client has no read timeout, and a follower takes over once the lease expires.
            let budget = match last_renewed {
                Some(at) => {
                    (at + self.timings.renew_deadline).saturating_duration_since(Instant::now())
                }
                None => self.timings.renew_deadline,
            };
            // Measured from before the write: other candidates start counting the lease's
            // duration only when they see the write, later, so we stop leading first.
            let started = Instant::now();
            let attempt = match tokio::time::timeout(budget, self.try_acquire_or_renew()).await {
                Ok(attempt) => attempt,
                Err(_) => Err(Error::Timeout {
                    what: format!("reading or updating Lease {}", self.name),
                    after: budget,
                }),
            };
            let now = Instant::now();
            match attempt {
                Ok(Attempt::Leading) => {
                    last_renewed = Some(started);
                    leading.send_if_modified(|value| !std::mem::replace(value, true));
                }
                Ok(Attempt::Following) => {
                    if *leading.borrow() {
                        tracing::error!(lease = %self.name, identity = %self.identity, "lost the leader lease to another candidate");
                    }
                    last_renewed = None;
                    leading.send_if_modified(|value| std::mem::replace(value, false));
                }
                Err(error) => {
                    tracing::warn!(error = %stoker_core::error::chain(&error), lease = %self.name, "leader election round failed");
                    let deadline_passed = last_renewed
                        .is_some_and(|at| now.duration_since(at) >= self.timings.renew_deadline);
                    if deadline_passed {
                        tracing::error!(lease = %self.name, identity = %self.identity, "could not renew the leader lease within the renew deadline");
                        last_renewed = None;
                        leading.send_if_modified(|value| std::mem::replace(value, false));
                    }
                }
            }
            if leading.is_closed() {
                break;
            }
            tokio::select! {
                () = tokio::time::sleep(self.timings.retry_period) => {}
                changed = stop.changed() => {
                    if changed.is_err() {
                        // The `Leadership` was dropped.
                        break;
                    }
                }
            }
        }
        leading.send_if_modified(|value| std::mem::replace(value, false));
    }
}

/// A running election (from [`LeaderElector::start`]).
pub struct Leadership {
    leading: watch::Receiver<bool>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    releaser: LeaderElector,
}

impl std::fmt::Debug for Leadership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leadership")
            .field("leading", &*self.leading.borrow())
            .finish_non_exhaustive()
    }
}

impl Leadership {
    /// Whether we lead, as a channel: it turns `true` on acquiring the lease and `false` on
    /// losing it (or when the election stops).
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.leading.clone()
    }

    /// Whether we lead now.
    pub fn is_leading(&self) -> bool {
        *self.leading.borrow()
    }

    /// Stops the election (after the round in flight, if any, so that no later round can take
    /// the lease again) and then releases the lease if we hold it, so that a follower takes
    /// over at once instead of waiting for it to expire.
    pub async fn step_down(self) -> Result<()> {
        let _ = self.stop.send(true);
        if let Err(error) = self.task.await {
            tracing::error!(%error, "the leader election task failed");
        }
        self.releaser.release().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFAULT: Duration = Duration::from_secs(15);

    fn held_by(holder: &str, renewed: jiff::Timestamp, duration: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(holder.into()),
            renew_time: Some(MicroTime(renewed)),
            lease_duration_seconds: Some(duration),
            ..LeaseSpec::default()
        }
    }

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    /// One observer, as candidate "me" with the default lease duration, and when it started.
    struct Sightings {
        observer: LeaseObserver,
        start: Instant,
    }

    impl Sightings {
        fn new() -> Self {
            Self {
                observer: LeaseObserver::default(),
                start: Instant::now(),
            }
        }

        /// The verdict on `spec` seen `secs_in` seconds after the start.
        fn after(&mut self, secs_in: u64, spec: &LeaseSpec) -> Verdict {
            self.observer
                .observe(spec, self.start + secs(secs_in), "me", DEFAULT)
        }
    }

    #[test]
    fn a_lease_expires_after_its_duration_without_change_as_seen_locally() {
        let mut seen = Sightings::new();
        let spec = held_by("other", jiff::Timestamp::now(), 15);
        assert_eq!(seen.after(0, &spec), Verdict::Live);
        assert_eq!(seen.after(14, &spec), Verdict::Live);
        assert_eq!(seen.after(15, &spec), Verdict::Expired);
    }

    #[test]
    fn the_renew_time_never_decides_expiry() {
        let mut seen = Sightings::new();
        // Renewed "an hour ago" by the holder's clock: first seen now, so live for 15 s.
        let an_hour_ago = jiff::Timestamp::now()
            .checked_sub(jiff::SignedDuration::from_hours(1))
            .unwrap();
        let old = held_by("other", an_hour_ago, 15);
        assert_eq!(seen.after(0, &old), Verdict::Live);
        // Renewed with a time even further back (a holder whose clock jumped back): it changed,
        // so the count starts again.
        let older = held_by("other", an_hour_ago.checked_sub(secs(1)).unwrap(), 15);
        assert_eq!(seen.after(10, &older), Verdict::Live);
        assert_eq!(seen.after(24, &older), Verdict::Live);
        assert_eq!(seen.after(25, &older), Verdict::Expired);
    }

    #[test]
    fn free_and_own_leases_are_told_apart_from_held_ones() {
        let mut seen = Sightings::new();
        let released = LeaseSpec {
            lease_duration_seconds: Some(1),
            ..LeaseSpec::default()
        };
        assert_eq!(seen.after(0, &released), Verdict::Free);
        let ours = held_by("me", jiff::Timestamp::now(), 15);
        assert_eq!(seen.after(0, &ours), Verdict::Ours);
        // What we wrote counts as seen when we wrote it.
        let other = held_by("other", jiff::Timestamp::now(), 15);
        seen.observer.wrote(Some(other.clone()), seen.start);
        assert_eq!(seen.after(15, &other), Verdict::Expired);
    }

    #[test]
    fn a_lease_without_a_duration_lasts_ours() {
        let mut seen = Sightings::new();
        let spec = LeaseSpec {
            holder_identity: Some("other".into()),
            ..LeaseSpec::default()
        };
        assert_eq!(seen.after(0, &spec), Verdict::Live);
        assert_eq!(seen.after(14, &spec), Verdict::Live);
        assert_eq!(seen.after(15, &spec), Verdict::Expired);
    }
}
