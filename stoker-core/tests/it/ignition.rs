//! The Ignition gateway client against the gateway simulator (stoker-testkit), over real HTTP
//! and HTTPS on loopback.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use stoker_core::ignition::{Backoff, IgnitionConfig, IgnitionGateway, SCAN_CONFIG, SCAN_PROJECTS};
use stoker_core::{Error, Gateway, GatewayErrorKind, Health};
use stoker_testkit::gateway_sim::{Endpoint, Fault, GatewaySim, Mode, SimConfig, TestCerts};

const KEY: &str = "stoker-test:Zm9vYmFyLXNlY3JldA";

/// A simulator requiring [`KEY`], a key file holding it (with a trailing newline, as Secrets
/// often have), and a temp dir for more files.
struct Setup {
    sim: GatewaySim,
    _dir: tempfile::TempDir,
    key_file: PathBuf,
}

impl Setup {
    fn new() -> Setup {
        Setup::with(
            SimConfig::new().with_api_key(KEY),
            tempfile::tempdir().unwrap(),
        )
    }

    fn with(config: SimConfig, dir: tempfile::TempDir) -> Setup {
        let key_file = dir.path().join("api-key");
        std::fs::write(&key_file, format!("{KEY}\n")).unwrap();
        Setup {
            sim: GatewaySim::start(config).unwrap(),
            _dir: dir,
            key_file,
        }
    }

    /// Fast retries, short timeouts.
    fn config(&self) -> IgnitionConfig {
        IgnitionConfig::new(self.sim.url())
            .with_api_key_file(&self.key_file)
            .with_retry(fast_retries())
            .with_timeout(Duration::from_secs(5))
    }

    fn gateway(&self) -> IgnitionGateway {
        IgnitionGateway::new(self.config()).unwrap()
    }
}

fn fast_retries() -> Backoff {
    Backoff {
        max_attempts: 3,
        initial_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(20),
    }
}

fn endpoints(sim: &GatewaySim) -> Vec<Option<Endpoint>> {
    sim.calls().iter().map(|c| c.endpoint()).collect()
}

fn gateway_error(error: &Error) -> (GatewayErrorKind, Option<u16>, String) {
    match error {
        Error::Gateway {
            kind, status, url, ..
        } => (*kind, *status, url.clone()),
        other => panic!("not a gateway error: {other}"),
    }
}

#[tokio::test]
async fn scan_asks_for_projects_then_config_with_the_key() {
    let setup = Setup::new();
    let outcome = setup.gateway().scan().await.unwrap();
    assert_eq!(outcome.projects.endpoint, SCAN_PROJECTS);
    assert_eq!(outcome.projects.status, 200);
    assert_eq!(outcome.config.endpoint, SCAN_CONFIG);
    assert_eq!(outcome.config.attempts, 1);
    assert_eq!(
        endpoints(&setup.sim),
        [Some(Endpoint::ScanProjects), Some(Endpoint::ScanConfig)]
    );
    let calls = setup.sim.calls();
    assert!(
        calls
            .iter()
            .all(|c| c.key_sent && c.authorized && c.status == Some(200))
    );
    assert!(calls[0].at_unix_ms <= calls[1].at_unix_ms);
}

#[tokio::test]
async fn post_sync_is_the_scan() {
    let setup = Setup::new();
    let gateway: Box<dyn Gateway> = Box::new(setup.gateway());
    let report = stoker_core::SyncReport {
        revision: stoker_core::Revision::new("0123456789abcdef0123456789abcdef01234567"),
        profile: "p".into(),
        dry_run: false,
        added: vec![],
        modified: vec![],
        deleted: vec![],
        unchanged: 0,
        bytes_written: 0,
        warnings: vec![],
        duration: Duration::ZERO,
        projects: vec![],
    };
    gateway.post_sync(&report).await.unwrap();
    assert_eq!(
        endpoints(&setup.sim),
        [Some(Endpoint::ScanProjects), Some(Endpoint::ScanConfig)]
    );
}

#[tokio::test]
async fn a_wrong_key_is_an_auth_error_at_once() {
    let setup = Setup::new();
    std::fs::write(&setup.key_file, "stoker-test:wrong-secret\n").unwrap();
    let error = setup.gateway().scan().await.unwrap_err();
    let (kind, status, url) = gateway_error(&error);
    assert_eq!(kind, GatewayErrorKind::Auth);
    assert_eq!(status, Some(401));
    assert!(url.ends_with(SCAN_PROJECTS), "{url}");
    let text = error.to_string();
    assert!(text.contains("rejected the API key"), "{text}");
    assert!(
        !text.contains("wrong-secret") && !text.contains(KEY),
        "{text}"
    );
    // Not retried, and the config scan was not attempted.
    assert_eq!(endpoints(&setup.sim), [Some(Endpoint::ScanProjects)]);
    assert!(!setup.sim.calls()[0].authorized);
}

#[tokio::test]
async fn no_key_is_an_auth_error_that_says_so() {
    let setup = Setup::new();
    let gateway = IgnitionGateway::new(IgnitionConfig::new(setup.sim.url())).unwrap();
    let error = gateway.designer_sessions().await.unwrap_err();
    assert_eq!(error.gateway_kind(), Some(GatewayErrorKind::Auth));
    assert!(error.to_string().contains("requires an API key"), "{error}");
    assert!(!setup.sim.calls()[0].key_sent);
}

#[tokio::test]
async fn the_key_file_is_read_on_every_request() {
    let setup = Setup::new();
    let gateway = setup.gateway();
    gateway.designer_sessions().await.unwrap();
    std::fs::write(&setup.key_file, "rotated:away").unwrap();
    let error = gateway.designer_sessions().await.unwrap_err();
    assert_eq!(error.gateway_kind(), Some(GatewayErrorKind::Auth));
    std::fs::write(&setup.key_file, format!("  {KEY}\r\n")).unwrap();
    gateway.designer_sessions().await.unwrap();

    std::fs::write(&setup.key_file, "\n").unwrap();
    let empty = gateway.designer_sessions().await.unwrap_err();
    assert_eq!(empty.gateway_kind(), Some(GatewayErrorKind::Config));
    assert!(empty.to_string().contains("is empty"), "{empty}");
    std::fs::remove_file(&setup.key_file).unwrap();
    let missing = gateway.designer_sessions().await.unwrap_err();
    assert!(missing.to_string().contains("api-key"), "{missing}");
    // The two config errors never reached the gateway.
    assert_eq!(setup.sim.calls().len(), 3);
}

#[tokio::test]
async fn a_500_is_retried_then_reported_with_endpoint_and_status() {
    let setup = Setup::new();
    setup
        .sim
        .set_fault(Endpoint::ScanProjects, Fault::status(500));
    let started = Instant::now();
    let error = setup.gateway().scan().await.unwrap_err();
    let (kind, status, url) = gateway_error(&error);
    assert_eq!(kind, GatewayErrorKind::Status);
    assert_eq!(status, Some(500));
    assert!(url.ends_with("/data/api/v1/scan/projects"), "{url}");
    let text = error.to_string();
    assert!(text.contains("POST"), "{text}");
    assert!(text.contains("scan/projects"), "{text}");
    assert!(text.contains("HTTP 500"), "{text}");
    assert!(text.contains("after 3 attempts"), "{text}");
    assert_eq!(
        endpoints(&setup.sim),
        [Some(Endpoint::ScanProjects); 3],
        "three attempts at scan/projects, none at scan/config"
    );
    // Backoff 5 ms then 10 ms.
    assert!(started.elapsed() >= Duration::from_millis(15));
}

#[tokio::test]
async fn a_transient_failure_is_retried_to_success() {
    let setup = Setup::new();
    setup
        .sim
        .set_fault(Endpoint::ScanConfig, Fault::status(503).times(1));
    let outcome = setup.gateway().scan().await.unwrap();
    assert_eq!(outcome.projects.attempts, 1);
    assert_eq!(outcome.config.attempts, 2);
    assert_eq!(outcome.config.status, 200);
    assert_eq!(
        outcome.to_string(),
        "scan/projects 200, scan/config 200 after 2 attempts"
    );
    let statuses: Vec<_> = setup.sim.calls().iter().map(|c| c.status).collect();
    assert_eq!(statuses, [Some(200), Some(503), Some(200)]);
}

#[tokio::test]
async fn a_404_is_not_retried() {
    let setup = Setup::new();
    setup
        .sim
        .set_fault(Endpoint::ScanConfig, Fault::status(404));
    let error = setup.gateway().scan().await.unwrap_err();
    assert_eq!(gateway_error(&error).1, Some(404));
    assert_eq!(setup.sim.calls_to(Endpoint::ScanConfig).len(), 1);
}

#[tokio::test]
async fn designer_sessions_are_listed() {
    let setup = Setup::new();
    let gateway = setup.gateway();
    assert!(gateway.designer_sessions().await.unwrap().is_empty());
    assert!(
        gateway
            .pre_sync()
            .await
            .unwrap()
            .designer_sessions
            .is_empty()
    );

    let alice = setup.sim.open_designer("alice", "demo");
    setup.sim.open_designer("bob", "hmi");
    let sessions = gateway.designer_sessions().await.unwrap();
    assert_eq!(sessions.len(), 2);
    assert_eq!(sessions[0].user.as_deref(), Some("alice"));
    assert_eq!(sessions[0].project.as_deref(), Some("demo"));
    assert_eq!(sessions[0].id.as_deref(), Some(alice.id.as_str()));
    let check = gateway.pre_sync().await.unwrap();
    assert_eq!(check.designer_sessions.len(), 2);
    assert!(
        check.designer_sessions[1].starts_with("bob (project hmi"),
        "{:?}",
        check.designer_sessions
    );

    assert!(setup.sim.close_designer(&alice.id));
    assert_eq!(gateway.designer_sessions().await.unwrap().len(), 1);
}

#[tokio::test]
async fn health_up_starting_down() {
    let setup = Setup::new();
    let gateway = setup.gateway();
    assert_eq!(gateway.health().await.unwrap(), Health::Up);
    let info = gateway.gateway_info().await.unwrap();
    assert_eq!(info.name.as_deref(), Some("stoker-sim"));

    // Commissioning: 503 to everyone.
    setup
        .sim
        .set_fault(Endpoint::GatewayInfo, Fault::status(503));
    assert!(matches!(
        gateway.health().await.unwrap(),
        Health::Starting(_)
    ));
    assert_eq!(
        setup.sim.calls_to(Endpoint::GatewayInfo).len(),
        3,
        "health asks once, no retries"
    );
    setup.sim.clear_faults();
    assert_eq!(gateway.health().await.unwrap(), Health::Up);

    // Connection refused.
    setup.sim.set_mode(Mode::Refuse, None).unwrap();
    match gateway.health().await.unwrap() {
        Health::Down(message) => assert!(!message.is_empty()),
        other => panic!("expected down, got {other:?}"),
    }
    setup.sim.set_mode(Mode::Up, None).unwrap();
    assert_eq!(gateway.health().await.unwrap(), Health::Up);

    // Accepting connections but not answering: a timeout is down too.
    let impatient =
        IgnitionGateway::new(setup.config().with_timeout(Duration::from_millis(300))).unwrap();
    setup.sim.set_mode(Mode::Hang, None).unwrap();
    match impatient.health().await.unwrap() {
        Health::Down(message) => assert!(message.contains("timed out"), "{message}"),
        other => panic!("expected down, got {other:?}"),
    }
    setup.sim.set_mode(Mode::Up, None).unwrap();

    // A wrong key is not a health state: it is an error to fix.
    std::fs::write(&setup.key_file, "nope").unwrap();
    let error = gateway.health().await.unwrap_err();
    assert_eq!(error.gateway_kind(), Some(GatewayErrorKind::Auth));
}

#[tokio::test]
async fn liveness_counts_any_answer_but_503_as_up() {
    let setup = Setup::new();
    // No key at all: the gateway answers 401, which means it is up.
    let keyless = IgnitionGateway::new(IgnitionConfig::new(setup.sim.url())).unwrap();
    assert_eq!(keyless.liveness().await.unwrap(), Health::Up);
    let call = setup.sim.calls().pop().unwrap();
    assert_eq!(call.status, Some(401));
    assert!(!call.key_sent);
    // Even with a key configured, the port check sends none.
    assert_eq!(setup.gateway().liveness().await.unwrap(), Health::Up);
    assert!(!setup.sim.calls().pop().unwrap().key_sent);

    setup
        .sim
        .set_fault(Endpoint::GatewayInfo, Fault::status(500).times(1));
    assert_eq!(keyless.liveness().await.unwrap(), Health::Up);
    setup
        .sim
        .set_fault(Endpoint::GatewayInfo, Fault::status(503));
    assert!(matches!(
        keyless.liveness().await.unwrap(),
        Health::Starting(_)
    ));
    setup.sim.clear_faults();

    setup.sim.set_mode(Mode::Refuse, None).unwrap();
    assert!(matches!(keyless.liveness().await.unwrap(), Health::Down(_)));
    // The simulator comes back by itself after a timed outage.
    setup
        .sim
        .set_mode(Mode::Refuse, Some(Duration::from_millis(300)))
        .unwrap();
    assert!(matches!(keyless.liveness().await.unwrap(), Health::Down(_)));
    let deadline = Instant::now() + Duration::from_secs(5);
    while keyless.liveness().await.unwrap() != Health::Up {
        assert!(Instant::now() < deadline, "the simulator did not come back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Nothing listening at all.
    let port = stoker_testkit::process::free_port().unwrap();
    let nowhere =
        IgnitionGateway::new(IgnitionConfig::new(format!("http://127.0.0.1:{port}"))).unwrap();
    assert!(matches!(nowhere.liveness().await.unwrap(), Health::Down(_)));
}

#[tokio::test]
async fn unreachable_scans_are_retried_then_fail() {
    let port = stoker_testkit::process::free_port().unwrap();
    let gateway = IgnitionGateway::new(
        IgnitionConfig::new(format!("http://127.0.0.1:{port}")).with_retry(fast_retries()),
    )
    .unwrap();
    let error = gateway.scan().await.unwrap_err();
    let (kind, status, url) = gateway_error(&error);
    assert_eq!(kind, GatewayErrorKind::Unreachable);
    assert_eq!(status, None);
    assert!(url.ends_with(SCAN_PROJECTS));
    assert!(error.to_string().contains("after 3 attempts"), "{error}");
}

#[tokio::test]
async fn slow_answers_within_the_timeout_are_fine() {
    let setup = Setup::new();
    setup.sim.set_fault(
        Endpoint::Designers,
        Fault::delay(Duration::from_millis(100)).times(1),
    );
    assert!(
        setup
            .gateway()
            .designer_sessions()
            .await
            .unwrap()
            .is_empty()
    );
    let impatient = IgnitionGateway::new(
        setup
            .config()
            .with_timeout(Duration::from_millis(100))
            .with_retry(Backoff::none()),
    )
    .unwrap();
    setup.sim.set_fault(
        Endpoint::Designers,
        Fault::delay(Duration::from_millis(500)),
    );
    let error = impatient.designer_sessions().await.unwrap_err();
    assert_eq!(error.gateway_kind(), Some(GatewayErrorKind::Unreachable));
    assert!(error.to_string().contains("timed out"), "{error}");
}

#[test]
fn the_key_is_never_in_debug_output() {
    let setup = Setup::new();
    let gateway = setup.gateway();
    let debug = format!("{gateway:?} {:?}", gateway.config());
    assert!(!debug.contains(KEY), "{debug}");
}

/// HTTPS: a simulator serving a certificate signed by a throw-away CA.
fn https_setup() -> (Setup, TestCerts) {
    let dir = tempfile::tempdir().unwrap();
    let certs = TestCerts::generate(&dir.path().join("tls")).unwrap();
    let setup = Setup::with(
        SimConfig::new()
            .with_api_key(KEY)
            .with_tls(&certs.cert_file, &certs.key_file),
        dir,
    );
    (setup, certs)
}

#[tokio::test]
async fn https_with_the_ca_file_works() {
    let (setup, certs) = https_setup();
    assert!(setup.sim.url().starts_with("https://127.0.0.1:"));
    let gateway = IgnitionGateway::new(setup.config().with_ca_file(&certs.ca_file)).unwrap();
    assert_eq!(gateway.health().await.unwrap(), Health::Up);
    gateway.scan().await.unwrap();
    assert_eq!(
        endpoints(&setup.sim),
        [
            Some(Endpoint::GatewayInfo),
            Some(Endpoint::ScanProjects),
            Some(Endpoint::ScanConfig)
        ]
    );
}

#[tokio::test]
async fn https_with_an_untrusted_certificate_is_refused_at_once() {
    let (setup, _certs) = https_setup();
    let gateway = setup.gateway();
    let error = gateway.scan().await.unwrap_err();
    let (kind, status, _) = gateway_error(&error);
    assert_eq!(kind, GatewayErrorKind::Certificate, "{error}");
    assert_eq!(status, None);
    assert!(error.to_string().contains("not trusted"), "{error}");
    assert!(!error.to_string().contains("after"), "not retried: {error}");
    assert!(setup.sim.calls().is_empty(), "no request got through");
    // The liveness check does not count a certificate it cannot trust as an answer.
    assert_eq!(
        gateway.liveness().await.unwrap_err().gateway_kind(),
        Some(GatewayErrorKind::Certificate)
    );
}

#[tokio::test]
async fn https_insecure_opt_in_works() {
    let (setup, _certs) = https_setup();
    let gateway = IgnitionGateway::new(setup.config().with_insecure_skip_tls_verify(true)).unwrap();
    assert_eq!(gateway.health().await.unwrap(), Health::Up);
    gateway.scan().await.unwrap();
    assert_eq!(setup.sim.calls_to(Endpoint::ScanConfig).len(), 1);
}

#[tokio::test]
async fn https_self_signed_certificate_trusted_as_its_own_ca_file() {
    let dir = tempfile::tempdir().unwrap();
    let certs = TestCerts::generate_self_signed(&dir.path().join("tls")).unwrap();
    assert_eq!(certs.ca_file, certs.cert_file);
    let setup = Setup::with(
        SimConfig::new()
            .with_api_key(KEY)
            .with_tls(&certs.cert_file, &certs.key_file),
        dir,
    );
    let gateway = IgnitionGateway::new(setup.config().with_ca_file(&certs.cert_file)).unwrap();
    assert_eq!(gateway.health().await.unwrap(), Health::Up);
    let untrusted = setup.gateway().health().await.unwrap_err();
    assert_eq!(
        untrusted.gateway_kind(),
        Some(GatewayErrorKind::Certificate)
    );
}
