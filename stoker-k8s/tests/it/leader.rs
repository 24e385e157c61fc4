//! Leader election (`stoker_k8s::leader`) against a real kube-apiserver + etcd (stoker-testkit):
//! candidates compete for one `coordination.k8s.io/v1` Lease in a namespace of their own, with
//! short timings (seconds, not client-go's 15 s) so that expiry can be waited for.
//!
//! Faults are real too: "the API server stops answering" is a loopback TCP relay between one
//! candidate and the API server that stops relaying bytes (no mock of the API).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use serde_json::json;
use stoker_k8s::leader::{Attempt, LeaderElector, Leadership, LeaseTimings, WallClock};
use stoker_testkit::kube_api::{Cluster, cluster, install_crypto_provider};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

const LEASE: &str = "stoker-operator";

/// Short timings: a 3 s lease, renewed every 200 ms, given up after 2 s without renewal.
fn timings() -> LeaseTimings {
    LeaseTimings {
        lease_duration: Duration::from_secs(3),
        renew_deadline: Duration::from_secs(2),
        retry_period: Duration::from_millis(200),
    }
}

async fn setup(prefix: &str) -> (&'static Cluster, Client, String) {
    install_crypto_provider();
    let cluster = cluster().unwrap();
    let namespace = cluster.namespace(prefix).await.unwrap();
    (cluster, cluster.client().unwrap(), namespace)
}

fn candidate(client: &Client, namespace: &str, identity: &str) -> LeaderElector {
    LeaderElector::new(client.clone(), namespace, LEASE, identity, timings())
}

async fn lease(client: &Client, namespace: &str) -> LeaseSpec {
    let api: Api<Lease> = Api::namespaced(client.clone(), namespace);
    api.get(LEASE).await.unwrap().spec.unwrap()
}

fn holder(spec: &LeaseSpec) -> Option<&str> {
    spec.holder_identity.as_deref()
}

/// Waits until the channel says `want`, or panics after `timeout`; returns the time it took.
async fn wait_leading(rx: &mut watch::Receiver<bool>, want: bool, timeout: Duration) -> Duration {
    let started = Instant::now();
    tokio::time::timeout(timeout, rx.wait_for(|leading| *leading == want))
        .await
        .unwrap_or_else(|_| panic!("not leading == {want} after {timeout:?}"))
        .unwrap();
    started.elapsed()
}

/// Samples both candidates for `window` and fails if both ever say they lead.
async fn never_both(a: &Leadership, b: &Leadership, window: Duration) -> (u32, u32) {
    let deadline = Instant::now() + window;
    let (mut a_led, mut b_led) = (0, 0);
    while Instant::now() < deadline {
        let (x, y) = (a.is_leading(), b.is_leading());
        assert!(!(x && y), "two candidates lead at once");
        a_led += u32::from(x);
        b_led += u32::from(y);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    (a_led, b_led)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_one_of_two_candidates_leads() {
    let (_, client, ns) = setup("leader-one").await;

    // Single rounds: the first creates the lease, the second finds it held.
    let a = candidate(&client, &ns, "a");
    let b = candidate(&client, &ns, "b");
    assert_eq!(a.try_acquire_or_renew().await.unwrap(), Attempt::Leading);
    assert_eq!(b.try_acquire_or_renew().await.unwrap(), Attempt::Following);
    let first = lease(&client, &ns).await;
    assert_eq!(holder(&first), Some("a"));
    assert_eq!(first.lease_transitions, Some(0));
    assert_eq!(first.lease_duration_seconds, Some(3));
    // Renewing keeps the holder and acquire time and moves the renew time.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(a.try_acquire_or_renew().await.unwrap(), Attempt::Leading);
    assert_eq!(b.try_acquire_or_renew().await.unwrap(), Attempt::Following);
    let renewed = lease(&client, &ns).await;
    assert_eq!(holder(&renewed), Some("a"));
    assert_eq!(renewed.acquire_time, first.acquire_time);
    assert!(renewed.renew_time.as_ref().unwrap().0 > first.renew_time.as_ref().unwrap().0);
    assert_eq!(renewed.lease_transitions, Some(0));

    // Background elections, started together on a fresh lease.
    let (_, client, ns) = setup("leader-one-bg").await;
    let a = candidate(&client, &ns, "a").start();
    let b = candidate(&client, &ns, "b").start();
    let (mut a_rx, mut b_rx) = (a.subscribe(), b.subscribe());
    tokio::time::timeout(Duration::from_secs(10), async {
        tokio::select! {
            _ = a_rx.wait_for(|l| *l) => {}
            _ = b_rx.wait_for(|l| *l) => {}
        }
    })
    .await
    .unwrap();
    // Several lease durations: the leader keeps renewing, the follower never takes over.
    let (a_led, b_led) = never_both(&a, &b, Duration::from_secs(4)).await;
    let leader = if a_led > 0 { "a" } else { "b" };
    assert!(
        a_led == 0 || b_led == 0,
        "leadership moved without a failure: a led {a_led} samples, b {b_led}"
    );
    let spec = lease(&client, &ns).await;
    assert_eq!(holder(&spec), Some(leader));
    assert_eq!(spec.lease_transitions, Some(0));
    a.step_down().await.unwrap();
    b.step_down().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn release_lets_the_other_candidate_take_over_promptly() {
    let (_, client, ns) = setup("leader-release").await;
    // A long lease: taking over after a release must not wait for it to expire.
    let long = LeaseTimings {
        lease_duration: Duration::from_secs(30),
        ..timings()
    };
    let a = LeaderElector::new(client.clone(), &ns, LEASE, "a", long.clone()).start();
    wait_leading(&mut a.subscribe(), true, Duration::from_secs(10)).await;
    let b = LeaderElector::new(client.clone(), &ns, LEASE, "b", long.clone()).start();
    let mut b_rx = b.subscribe();
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(!b.is_leading(), "b must follow while a holds the lease");

    let released = Instant::now();
    a.step_down().await.unwrap();
    let took = wait_leading(&mut b_rx, true, Duration::from_secs(5)).await;
    assert!(
        released.elapsed() < Duration::from_secs(3),
        "b took {took:?} to take over a released lease (the lease lasts 30 s)"
    );
    let spec = lease(&client, &ns).await;
    assert_eq!(holder(&spec), Some("b"));
    assert_eq!(spec.lease_transitions, Some(1));
    assert_eq!(spec.lease_duration_seconds, Some(30));
    b.step_down().await.unwrap();
    let spec = lease(&client, &ns).await;
    assert_eq!(holder(&spec), None, "step_down releases the lease");
}

/// Regression: the operator used to release the lease with a second elector while the first one
/// kept running, and its next round found the lease free and took it again. `step_down` stops
/// the rounds before releasing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_stepping_down_a_candidate_never_takes_the_lease_again() {
    let (_, client, ns) = setup("leader-stepdown").await;
    let a = candidate(&client, &ns, "a").start();
    let mut a_rx = a.subscribe();
    wait_leading(&mut a_rx, true, Duration::from_secs(10)).await;
    a.step_down().await.unwrap();
    assert!(!*a_rx.borrow(), "a stepped down and must say so");
    // Many retry periods later the lease is still free.
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        let spec = lease(&client, &ns).await;
        assert_eq!(holder(&spec), None, "the lease was taken again: {spec:?}");
    }
    // The same, stepping down while still waiting for the lease: nothing is taken.
    let b = candidate(&client, &ns, "b");
    assert_eq!(b.try_acquire_or_renew().await.unwrap(), Attempt::Leading);
    let c = candidate(&client, &ns, "c").start();
    tokio::time::sleep(Duration::from_millis(500)).await;
    c.step_down().await.unwrap();
    assert_eq!(holder(&lease(&client, &ns).await), Some("b"));
}

/// `a` acquires the lease once and then stops renewing (as if its process had died); `b`, in
/// single rounds, follows while the lease lasts and takes it over, counting a transition, once
/// it has expired. Returns the lease as `a` held it and as `b` took it.
async fn b_outlives_a(
    client: &Client,
    ns: &str,
    a: &LeaderElector,
    b: &LeaderElector,
) -> (LeaseSpec, LeaseSpec) {
    assert_eq!(a.try_acquire_or_renew().await.unwrap(), Attempt::Leading);
    let held = lease(client, ns).await;
    assert_eq!(b.try_acquire_or_renew().await.unwrap(), Attempt::Following);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        b.try_acquire_or_renew().await.unwrap(),
        Attempt::Following,
        "2 s into a 3 s lease"
    );
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(b.try_acquire_or_renew().await.unwrap(), Attempt::Leading);
    let taken = lease(client, ns).await;
    assert_eq!(holder(&taken), Some("b"));
    assert_eq!(taken.lease_transitions, Some(1));
    (held, taken)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_lease_is_taken_over_with_transitions_incremented() {
    let (_, client, ns) = setup("leader-expiry").await;
    let a = candidate(&client, &ns, "a");
    let b = candidate(&client, &ns, "b");
    let (held, taken) = b_outlives_a(&client, &ns, &a, &b).await;
    assert!(taken.acquire_time.as_ref().unwrap().0 > held.acquire_time.as_ref().unwrap().0);
    // `a` comes back: the lease is b's now.
    assert_eq!(a.try_acquire_or_renew().await.unwrap(), Attempt::Following);

    // In the background: the leader's process goes away without releasing; the follower takes
    // over no earlier than a lease duration after the last renewal, and counts a transition.
    let (_, client, ns) = setup("leader-expiry-bg").await;
    let a = candidate(&client, &ns, "a").start();
    wait_leading(&mut a.subscribe(), true, Duration::from_secs(10)).await;
    let b = candidate(&client, &ns, "b").start();
    let mut b_rx = b.subscribe();
    tokio::time::sleep(Duration::from_millis(500)).await;
    drop(a); // stops the rounds; does not release
    tokio::time::sleep(Duration::from_millis(300)).await;
    let last_renewal = lease(&client, &ns).await.renew_time.unwrap().0;
    wait_leading(&mut b_rx, true, Duration::from_secs(10)).await;
    let spec = lease(&client, &ns).await;
    assert_eq!(holder(&spec), Some("b"));
    assert_eq!(spec.lease_transitions, Some(1));
    let waited = spec.acquire_time.unwrap().0.duration_since(last_renewal);
    assert!(
        waited >= jiff::SignedDuration::from_secs(3),
        "b took over {waited:?} after a's last renewal, before the 3 s lease expired"
    );
    b.step_down().await.unwrap();
}

/// A wall clock that runs `offset` ahead of the system's (behind when negative), as on a node
/// whose time is wrong.
#[derive(Debug)]
struct SkewedClock(jiff::SignedDuration);

impl WallClock for SkewedClock {
    fn now(&self) -> jiff::Timestamp {
        jiff::Timestamp::now().checked_add(self.0).unwrap()
    }
}

fn skewed(client: &Client, namespace: &str, identity: &str, seconds: i64) -> LeaderElector {
    candidate(client, namespace, identity).with_wall_clock(Arc::new(SkewedClock(
        jiff::SignedDuration::from_secs(seconds),
    )))
}

/// Regression: expiry compared the lease's renewTime with the local wall clock, so a candidate
/// whose clock ran more than a lease duration fast took a live lease over at once, and a holder
/// whose clock ran slow lost its lease to every follower. Expiry now counts, on each candidate's
/// monotonic clock, how long the lease has not changed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_candidate_whose_clock_runs_fast_never_takes_over_a_live_lease() {
    // A holder with a true clock, a follower a minute fast.
    let (_, client, fast_ns) = setup("leader-fast").await;
    let a = candidate(&client, &fast_ns, "a").start();
    wait_leading(&mut a.subscribe(), true, Duration::from_secs(10)).await;
    let b = skewed(&client, &fast_ns, "b", 60).start();
    // A holder a minute slow (its renewTime is always a minute old), a follower with a true clock.
    let (_, client, slow_ns) = setup("leader-slow").await;
    let c = skewed(&client, &slow_ns, "c", -60).start();
    wait_leading(&mut c.subscribe(), true, Duration::from_secs(10)).await;
    let d = candidate(&client, &slow_ns, "d").start();

    // More than two lease durations of renewals: the followers never take over.
    let window = Duration::from_secs(7);
    let ((a_led, b_led), (c_led, d_led)) =
        tokio::join!(never_both(&a, &b, window), never_both(&c, &d, window));
    assert!(a_led > 0 && c_led > 0, "the holders stopped leading");
    assert_eq!((b_led, d_led), (0, 0), "a follower took over a live lease");
    for (ns, leader) in [(&fast_ns, "a"), (&slow_ns, "c")] {
        let spec = lease(&client, ns).await;
        assert_eq!(holder(&spec), Some(leader));
        assert_eq!(spec.lease_transitions, Some(0));
    }
    for leadership in [a, b, c, d] {
        leadership.step_down().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_candidate_whose_clock_runs_fast_takes_over_once_the_holder_stops_renewing() {
    let (_, client, ns) = setup("leader-fast-expiry").await;
    let a = candidate(&client, &ns, "a");
    let b = skewed(&client, &ns, "b", 60);
    let (held, taken) = b_outlives_a(&client, &ns, &a, &b).await;
    // b wrote its own (fast) clock's time: the skew is real, not ignored.
    let ahead = taken
        .acquire_time
        .unwrap()
        .0
        .duration_since(held.renew_time.unwrap().0);
    assert!(
        ahead >= jiff::SignedDuration::from_secs(60),
        "b's acquire time is only {ahead:?} after a's renewal"
    );
    assert_eq!(a.try_acquire_or_renew().await.unwrap(), Attempt::Following);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_409_race_never_yields_two_leaders() {
    let (_, client, ns) = setup("leader-race").await;
    let api: Api<Lease> = Api::namespaced(client.clone(), &ns);
    let candidates: Vec<LeaderElector> = (0..6)
        .map(|i| candidate(&client, &ns, &format!("c{i}")))
        .collect();
    let race = || async {
        let barrier = Arc::new(tokio::sync::Barrier::new(candidates.len()));
        let rounds = candidates.iter().map(|c| {
            let barrier = barrier.clone();
            async move {
                barrier.wait().await;
                (
                    c.identity().to_owned(),
                    c.try_acquire_or_renew().await.unwrap(),
                )
            }
        });
        let results = futures::future::join_all(rounds).await;
        let leaders: Vec<String> = results
            .into_iter()
            .filter(|(_, attempt)| *attempt == Attempt::Leading)
            .map(|(identity, _)| identity)
            .collect();
        leaders
    };

    // Everyone creates the lease at once: one create wins, the others get 409.
    let leaders = race().await;
    assert_eq!(leaders.len(), 1, "create race: {leaders:?}");
    let mut spec = lease(&client, &ns).await;
    assert_eq!(holder(&spec), Some(leaders[0].as_str()));
    let mut transitions = spec.lease_transitions.unwrap();

    // The holder stops renewing: its record (shortened to a 1 s lease) stays the same, every
    // other candidate sees it unchanged for a second, and then everyone, the holder included,
    // writes at once: one replace wins on resourceVersion, the others get 409.
    for round in 0..8 {
        api.patch(
            LEASE,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"leaseDurationSeconds": 1}})),
        )
        .await
        .unwrap();
        let before = holder(&spec).map(str::to_owned);
        for c in &candidates {
            if Some(c.identity()) != before.as_deref() {
                assert_eq!(c.try_acquire_or_renew().await.unwrap(), Attempt::Following);
            }
        }
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let leaders = race().await;
        assert_eq!(leaders.len(), 1, "round {round}: {leaders:?}");
        spec = lease(&client, &ns).await;
        assert_eq!(holder(&spec), Some(leaders[0].as_str()), "round {round}");
        if before.as_deref() != Some(leaders[0].as_str()) {
            transitions += 1;
        }
        assert_eq!(spec.lease_transitions, Some(transitions), "round {round}");
    }

    // And with background elections competing for a fresh lease.
    let (_, client, ns) = setup("leader-race-bg").await;
    let fast = LeaseTimings {
        retry_period: Duration::from_millis(50),
        ..timings()
    };
    let running: Vec<Leadership> = (0..4)
        .map(|i| {
            LeaderElector::new(client.clone(), &ns, LEASE, format!("r{i}"), fast.clone()).start()
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(4);
    let mut led = 0;
    while Instant::now() < deadline {
        let leading = running.iter().filter(|l| l.is_leading()).count();
        assert!(leading <= 1, "{leading} candidates lead at once");
        led += leading;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(led > 0, "nobody ever led");
    for leadership in running {
        leadership.step_down().await.unwrap();
    }
}

/// A loopback TCP relay to the API server that can stop relaying (`stall`): to the client behind
/// it, the API server stops answering while its connections stay open.
struct StallingRelay {
    address: SocketAddr,
    stalled: Arc<AtomicBool>,
}

impl StallingRelay {
    async fn start(upstream: SocketAddr) -> StallingRelay {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let stalled = Arc::new(AtomicBool::new(false));
        let flag = stalled.clone();
        tokio::spawn(async move {
            while let Ok((downstream, _)) = listener.accept().await {
                let Ok(upstream) = TcpStream::connect(upstream).await else {
                    continue;
                };
                let (down_read, down_write) = downstream.into_split();
                let (up_read, up_write) = upstream.into_split();
                tokio::spawn(Self::pipe(down_read, up_write, flag.clone()));
                tokio::spawn(Self::pipe(up_read, down_write, flag.clone()));
            }
        });
        StallingRelay { address, stalled }
    }

    async fn pipe(
        mut from: tokio::net::tcp::OwnedReadHalf,
        mut to: tokio::net::tcp::OwnedWriteHalf,
        stalled: Arc<AtomicBool>,
    ) {
        let mut buffer = vec![0u8; 16 * 1024];
        loop {
            let n = match from.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            while stalled.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            if to.write_all(&buffer[..n]).await.is_err() {
                return;
            }
        }
    }

    fn stall(&self) {
        self.stalled.store(true, Ordering::SeqCst);
    }
}

/// Regression: a round had no time limit, and kube's client has no read timeout, so a leader
/// whose requests hung kept saying it led while a follower took the expired lease over. Now a
/// round gets at most what is left of the renew deadline, and the leader steps down in time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_whose_api_server_stops_answering_steps_down_before_the_lease_expires() {
    let (cluster, client, ns) = setup("leader-stall").await;
    let upstream: SocketAddr = cluster
        .server()
        .trim_start_matches("https://")
        .parse()
        .unwrap();
    let relay = StallingRelay::start(upstream).await;
    let mut config = cluster.config();
    config.cluster_url = format!("https://{}", relay.address).parse().unwrap();
    let relayed = Client::try_from(config).unwrap();

    let timings = LeaseTimings {
        lease_duration: Duration::from_secs(4),
        renew_deadline: Duration::from_secs(2),
        retry_period: Duration::from_millis(200),
    };
    let a = LeaderElector::new(relayed, &ns, LEASE, "a", timings.clone()).start();
    let mut a_rx = a.subscribe();
    wait_leading(&mut a_rx, true, Duration::from_secs(10)).await;
    let b = LeaderElector::new(client.clone(), &ns, LEASE, "b", timings.clone()).start();
    let b_rx = b.subscribe();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(a.is_leading() && !b.is_leading());

    relay.stall();
    let stalled = Instant::now();
    let mut a_stepped_down = None;
    let mut b_took_over = None;
    tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            let (a_leads, b_leads) = (*a_rx.borrow(), *b_rx.borrow());
            assert!(!(a_leads && b_leads), "a still leads after b took over");
            if !a_leads && a_stepped_down.is_none() {
                a_stepped_down = Some(stalled.elapsed());
            }
            if b_leads {
                b_took_over = Some(stalled.elapsed());
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap_or_else(|_| {
        panic!(
            "b never took over (a stepped down after {a_stepped_down:?}; a leads: {})",
            *a_rx.borrow()
        )
    });
    let a_stepped_down = a_stepped_down.unwrap();
    let b_took_over = b_took_over.unwrap();
    assert!(
        a_stepped_down <= timings.renew_deadline + Duration::from_millis(500),
        "a stepped down {a_stepped_down:?} after its API server stopped answering"
    );
    assert!(a_stepped_down < b_took_over);
    let spec = lease(&client, &ns).await;
    assert_eq!(holder(&spec), Some("b"));
    assert_eq!(spec.lease_transitions, Some(1));
    b.step_down().await.unwrap();
    drop(a);
}
