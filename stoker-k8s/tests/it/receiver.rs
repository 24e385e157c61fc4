//! The webhook receiver against a real kube-apiserver + etcd (stoker-testkit), with the
//! controller running and a real Git server on loopback: stoker-operator v0.5.1's
//! `/webhook/{namespace}/{name}` answers, and `/webhook/push` making a GatewaySync whose
//! polling is off resolve a pushed commit at once. Requests are written by hand over TCP, so
//! what is sent (headers, signature, body size) is exactly what the test says.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use kube::ResourceExt;
use kube::api::{Patch, PatchParams};
use serde_json::{Value, json};
use stoker_k8s::metrics::OperatorMetrics;
use stoker_k8s::receiver::auth::hub_signature;
use stoker_k8s::receiver::limits::RateLimit;
use stoker_k8s::receiver::server::BODY_LIMIT;
use stoker_k8s::receiver::{ReceiverConfig, Secrets};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

use stoker_testkit::kube_api::wait_until;

use crate::controller_support::{World, condition, event_notes, has};

const GLOBAL: &str = "global-hook-secret";

/// A running receiver for one test's namespace.
struct Rx {
    address: SocketAddr,
    metrics: OperatorMetrics,
    _stop: watch::Sender<bool>,
}

async fn receiver(world: &World, secrets: Secrets, tweak: impl FnOnce(&mut ReceiverConfig)) -> Rx {
    let mut config = ReceiverConfig::new("127.0.0.1:0".parse().unwrap(), secrets);
    config.namespaces = vec![world.namespace.clone()];
    tweak(&mut config);
    let metrics = OperatorMetrics::new();
    let (stop, stopped) = watch::channel(false);
    let started =
        stoker_k8s::receiver::start(world.client.clone(), config, metrics.clone(), stopped)
            .await
            .unwrap();
    Rx {
        address: started.address(),
        metrics,
        _stop: stop,
    }
}

fn global_secrets() -> Secrets {
    Secrets {
        hmac: vec![GLOBAL.as_bytes().to_vec()],
        tokens: vec![b"global-token".to_vec()],
    }
}

/// An answer: status, headers (lower-case names), body.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {:?}", self.body))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// `POST path` with `headers` and `body`, one connection per request.
async fn post(rx: &Rx, path: &str, headers: &[(&str, String)], body: &[u8]) -> Reply {
    let mut stream = tokio::net::TcpStream::connect(rx.address).await.unwrap();
    let mut head = format!(
        "POST {path} HTTP/1.1\r\nHost: receiver\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_lowercase(), v.trim().to_owned()))
        .collect();
    Reply {
        status,
        headers,
        body: body.to_owned(),
    }
}

fn signed(secret: &str, body: &[u8]) -> Vec<(&'static str, String)> {
    vec![(
        "X-Hub-Signature-256",
        hub_signature(secret.as_bytes(), body),
    )]
}

fn ref_path(world: &World, name: &str) -> String {
    format!("/webhook/{}/{name}", world.namespace)
}

fn annotation(gs: &stoker_k8s::GatewaySync, key: &str) -> Option<String> {
    gs.annotations().get(key).cloned()
}

fn counted(rx: &Rx, source: &str, code: u16) -> bool {
    let text = rx.metrics.encode().unwrap();
    let line = format!(
        "stoker_webhook_receiver_requests_total{{source=\"{source}\",status_code=\"{code}\"}}"
    );
    text.lines().any(|l| l.starts_with(&line))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_v0_5_1_payload_sets_the_requested_ref_and_answers_202() {
    let world = World::start("rx-ref").await;
    let rx = receiver(&world, global_secrets(), |_| {}).await;
    world
        .create_gs("site", crate::controller_support::spec("main"))
        .await;
    let cases = [
        (
            json!({"action": "published", "release": {"tag_name": "2.0.0"}}),
            "2.0.0",
            "github",
        ),
        (
            json!({"app": {"metadata": {"annotations": {"git.ref": "v1.4.0"}}}}),
            "v1.4.0",
            "argocd",
        ),
        (
            json!({"freight": {"commits": [{"tag": "1.2.3"}]}}),
            "1.2.3",
            "kargo",
        ),
        (json!({"ref": "release/ünï"}), "release/ünï", "generic"),
    ];
    for (payload, reference, source) in cases {
        let body = serde_json::to_vec(&payload).unwrap();
        let reply = post(
            &rx,
            &ref_path(&world, "site"),
            &signed(GLOBAL, &body),
            &body,
        )
        .await;
        assert_eq!(reply.status, 202, "{source}: {reply:?}");
        assert_eq!(reply.json(), json!({"accepted": true, "ref": reference}));
        let gs = world.get_gs("site").await;
        assert_eq!(
            annotation(&gs, "stoker.io/requested-ref").as_deref(),
            Some(reference)
        );
        assert_eq!(
            annotation(&gs, "stoker.io/requested-by").as_deref(),
            Some(source)
        );
        let at = annotation(&gs, "stoker.io/requested-at").unwrap();
        assert!(
            at.parse::<jiff::Timestamp>().is_ok() && at.ends_with('Z'),
            "{at}"
        );
        let notes = event_notes(&world, "site", "WebhookReceived").await;
        let expected = format!("Webhook from {source}, ref {reference:?}");
        assert!(notes.contains(&expected), "{notes:?}");
        assert!(counted(&rx, source, 202));
    }
    // The same ref again, this time with the bearer token: nothing to change.
    let body = br#"{"ref":"release/\u00fcn\u00ef"}"#;
    let token = [("Authorization", "Bearer global-token".to_owned())];
    let reply = post(&rx, &ref_path(&world, "site"), &token, body).await;
    assert_eq!(reply.status, 202, "{reply:?}");
    assert_eq!(
        reply.json(),
        json!({"accepted": true, "ref": "release/ünï", "message": "ref already set"})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_payloads_missing_resources_and_bad_signatures_get_v0_5_1_answers() {
    let world = World::start("rx-errors").await;
    let rx = receiver(&world, global_secrets(), |_| {}).await;
    world
        .create_gs("site", crate::controller_support::spec("main"))
        .await;
    let path = ref_path(&world, "site");

    let no_ref = br#"{"action":"created"}"#;
    let reply = post(&rx, &path, &signed(GLOBAL, no_ref), no_ref).await;
    assert_eq!(
        (reply.status, reply.json()),
        (400, json!({"error": "no ref found in payload"}))
    );

    let body = br#"{"ref":"v9"}"#;
    let missing = ref_path(&world, "nothing-here");
    let reply = post(&rx, &missing, &signed(GLOBAL, body), body).await;
    assert_eq!((reply.status, reply.body.as_str()), (404, "not found\n"));
    assert!(counted(&rx, "generic", 404));

    // Unauthenticated: 401 before anything else, the same for a resource that exists, one that
    // does not, and a payload without a ref.
    let mut refusals = Vec::new();
    for (target, body, headers) in [
        (&path, &body[..], vec![]),
        (&path, &body[..], signed("a guess", body)),
        (&missing, &body[..], signed("a guess", body)),
        (
            &path,
            &no_ref[..],
            vec![("Authorization", "Bearer nope".to_owned())],
        ),
    ] {
        let reply = post(&rx, target, &headers, body).await;
        let content_type = reply.header("content-type").map(str::to_owned);
        refusals.push((reply.status, reply.body, content_type));
    }
    assert!(refusals.iter().all(|r| r == &refusals[0]), "{refusals:?}");
    assert_eq!(
        (refusals[0].0, refusals[0].1.as_str()),
        (401, "unauthorized\n")
    );
    assert!(annotation(&world.get_gs("site").await, "stoker.io/requested-ref").is_none());
    assert!(counted(&rx, "unknown", 401));
}

/// A GatewaySync with its own secret, and the Secret.
async fn with_own_secret(world: &World, name: &str, value: &str) {
    world
        .create_secret(&format!("{name}-hook"), json!({"webhook-secret": value}))
        .await;
    let mut spec = crate::controller_support::spec("main");
    spec["webhook"] = json!({"secretRef": {"name": format!("{name}-hook")}});
    world.create_gs(name, spec).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gatewaysync_s_own_secret_lets_its_callers_in_and_reveals_nothing_else() {
    let world = World::start("rx-own").await;
    let rx = receiver(&world, global_secrets(), |_| {}).await;
    with_own_secret(&world, "team", "team-secret").await;
    world
        .create_gs("other", crate::controller_support::spec("main"))
        .await;
    let body = br#"{"ref":"v3.0.0"}"#;

    let reply = post(
        &rx,
        &ref_path(&world, "team"),
        &signed("team-secret", body),
        body,
    )
    .await;
    assert_eq!(reply.status, 202, "{reply:?}");
    let gs = world.get_gs("team").await;
    assert_eq!(
        annotation(&gs, "stoker.io/requested-ref").as_deref(),
        Some("v3.0.0")
    );
    // As a token too (a caller that cannot sign).
    let body2 = br#"{"ref":"v3.0.1"}"#;
    let bearer = [("Authorization", "Bearer team-secret".to_owned())];
    let reply = post(&rx, &ref_path(&world, "team"), &bearer, body2).await;
    assert_eq!(reply.status, 202, "{reply:?}");

    // Its secret opens no other door, and a wrong one is refused: all alike.
    let team_signed = signed("team-secret", body);
    let other = post(&rx, &ref_path(&world, "other"), &team_signed, body).await;
    let missing = post(&rx, &ref_path(&world, "missing"), &team_signed, body).await;
    let wrong = post(&rx, &ref_path(&world, "team"), &signed("nope", body), body).await;
    assert_eq!(other.status, 401);
    assert_eq!(
        (&other.body, &other.headers.len()),
        (&missing.body, &missing.headers.len())
    );
    assert_eq!((missing.status, &missing.body), (wrong.status, &wrong.body));
    assert!(annotation(&world.get_gs("other").await, "stoker.io/requested-ref").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_own_secret_or_key_is_said_on_the_gatewaysync() {
    let world = World::start("rx-secretref").await;
    let mut spec = crate::controller_support::spec("main");
    spec["webhook"] = json!({"secretRef": {"name": "late-hook", "key": "token"}});
    world.create_gs("late", spec).await;
    let gs = world
        .wait_condition("late", "WebhookSecretReady", "False")
        .await;
    let (_, reason, message) = condition(&gs, "WebhookSecretReady").unwrap();
    assert_eq!(reason, "SecretNotFound");
    assert!(
        message.contains("Secret \"late-hook\" not found") && message.contains("(401)"),
        "{message}"
    );
    let notes = wait_until(
        "a WebhookSecretMissing Event",
        Duration::from_secs(30),
        || async {
            let notes = event_notes(&world, "late", "WebhookSecretMissing").await;
            (!notes.is_empty()).then_some(notes)
        },
    )
    .await;
    assert!(notes[0].contains("late-hook"), "{notes:?}");
    // It does not make the resource unready: polling still syncs it.
    assert!(has(&gs, "ProfilesValid", "True"));

    // The Secret appears without the key: said so, naming the key (polling refreshes it).
    world
        .create_secret("late-hook", json!({"webhook-secret": "s3cr3t"}))
        .await;
    let gs = world
        .wait_gs("late", "KeyNotFound", |gs| {
            condition(gs, "WebhookSecretReady").is_some_and(|(_, r, _)| r == "KeyNotFound")
        })
        .await;
    let (_, _, message) = condition(&gs, "WebhookSecretReady").unwrap();
    assert!(message.contains("no key \"token\""), "{message}");
    // Then the key: True, and the message never carries the value.
    let patch = json!({"stringData": {"token": "s3cr3t"}});
    world
        .secrets()
        .patch("late-hook", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    let gs = world
        .wait_condition("late", "WebhookSecretReady", "True")
        .await;
    let (_, reason, message) = condition(&gs, "WebhookSecretReady").unwrap();
    assert_eq!(reason, "SecretFound");
    assert!(!message.contains("s3cr3t"), "{message}");
}

/// The GitHub push fixture, for `world`'s repository: `before` → `after` on main, changing
/// `paths`.
fn github_push(world: &World, before: &str, after: &str, paths: &[&str]) -> Vec<u8> {
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/receiver/github-push.json"
    );
    let mut push: Value = serde_json::from_slice(&std::fs::read(fixture).unwrap()).unwrap();
    set_repository_url(&mut push, &world.repo_url);
    push["before"] = json!(before);
    push["after"] = json!(after);
    push["head_commit"]["id"] = json!(after);
    push["commits"] = json!([{"id": after, "added": [], "removed": [], "modified": paths}]);
    serde_json::to_vec(&push).unwrap()
}

/// Points every URL of a GitHub push's repository at `url`.
fn set_repository_url(push: &mut Value, url: &str) {
    for key in ["clone_url", "html_url", "git_url", "ssh_url"] {
        push["repository"][key] = json!(url);
    }
}

fn github_headers(secret: &str, body: &[u8], delivery: &str) -> Vec<(&'static str, String)> {
    let mut headers = signed(secret, body);
    headers.push(("X-GitHub-Event", "push".to_owned()));
    headers.push(("X-GitHub-Delivery", delivery.to_owned()));
    headers
}

/// `POST /webhook/push` of a GitHub push `body`, signed with `secret`, as delivery `delivery`.
async fn post_push(rx: &Rx, secret: &str, body: &[u8], delivery: &str) -> Reply {
    post(
        rx,
        "/webhook/push",
        &github_headers(secret, body, delivery),
        body,
    )
    .await
}

/// The receiver accepted a push, triggering and skipping that many GatewaySyncs.
fn assert_push_answer(reply: &Reply, triggered: u64, skipped: u64) {
    assert_eq!(reply.status, 202, "{reply:?}");
    assert_eq!(
        reply.json(),
        json!({"accepted": true, "triggered": triggered, "skipped": skipped})
    );
}

fn commit_of(gs: &stoker_k8s::GatewaySync) -> Option<String> {
    gs.status.as_ref()?.last_sync_commit.clone()
}

/// A GatewaySync on main with polling off, mapping `projects`, resolved once and left to
/// settle (the reconciliations its own first writes trigger are over).
async fn unpolled(world: &World, name: &str) -> String {
    world
        .create_gs(
            name,
            json!({
                "git": {"ref": "main"},
                "polling": {"enabled": false},
                "sync": {"profiles": {"default": {"mappings": [
                    {"source": "projects", "destination": "projects"}
                ]}}}
            }),
        )
        .await;
    let first = world.repo.rev_parse("main").unwrap();
    world
        .wait_gs(name, "the first commit resolves", |gs| {
            commit_of(gs).as_deref() == Some(first.as_str())
        })
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    first
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_makes_an_unpolled_gatewaysync_resolve_the_new_commit_at_once() {
    let world = World::start("rx-push").await;
    let rx = receiver(&world, global_secrets(), |_| {}).await;
    let first = unpolled(&world, "site").await;
    // Move main: polling is off, so nothing notices it.
    let second = world
        .repo
        .commit(
            "main",
            &[("projects/demo/view.json", b"{\"v\": 2}")],
            "second",
        )
        .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        commit_of(&world.get_gs("site").await),
        Some(first.clone()),
        "not polled"
    );

    let body = github_push(&world, &first, &second, &["projects/demo/view.json"]);
    let sent = Instant::now();
    let reply = post_push(&rx, GLOBAL, &body, "d-1").await;
    assert_push_answer(&reply, 1, 0);
    let gs = world
        .wait_gs("site", "the pushed commit resolves", |gs| {
            commit_of(gs).as_deref() == Some(second.as_str())
        })
        .await;
    let latency = sent.elapsed();
    println!(
        "push → status.lastSyncCommit latency: {} ms",
        latency.as_millis()
    );
    assert_eq!(
        annotation(&gs, "stoker.io/push-commit").as_deref(),
        Some(second.as_str())
    );
    let at = annotation(&gs, "stoker.io/push-received-at").unwrap();
    assert!(
        at.parse::<jiff::Timestamp>().is_ok() && at.contains('.'),
        "{at}"
    );
    let notes = event_notes(&world, "site", "WebhookReceived").await;
    let expected = format!("Push to refs/heads/main ({}) from github", &second[..7]);
    assert!(notes.contains(&expected), "{notes:?}");
    assert!(counted(&rx, "github", 202));

    // The same delivery again (a host's redelivery, or someone replaying it): not acted on.
    let reply = post_push(&rx, GLOBAL, &body, "d-1").await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(
        reply.json(),
        json!({"accepted": false, "message": "delivery already received"})
    );
    let again = world.get_gs("site").await;
    assert_eq!(annotation(&again, "stoker.io/push-received-at"), Some(at));

    // A ping when the hook is created is accepted and ignored.
    let ping = br#"{"zen":"Keep it logically awesome.","hook_id":1}"#;
    let headers = [("X-GitHub-Event", "ping".to_owned())];
    let reply = post(&rx, "/webhook/push", &headers, ping).await;
    assert_eq!(
        (reply.status, reply.json()),
        (202, json!({"accepted": true, "ignored": "ping"}))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_touching_only_unmapped_paths_or_other_refs_triggers_nothing() {
    let world = World::start("rx-unmapped").await;
    let rx = receiver(&world, Secrets::default(), |_| {}).await;
    let mut elsewhere = crate::controller_support::spec("release");
    elsewhere["polling"] = json!({"enabled": false});
    world.create_gs("release", elsewhere).await;
    let first = unpolled(&world, "site").await;
    let second = world
        .repo
        .commit("main", &[("docs/README.md", b"words")], "docs only")
        .unwrap();
    let body = github_push(&world, &first, &second, &["docs/README.md"]);
    let reply = post_push(&rx, "unused", &body, "d-2").await;
    // `site` is skipped; `release` is on a ref the push did not move: not counted at all.
    assert_push_answer(&reply, 0, 1);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let gs = world.get_gs("site").await;
    assert!(annotation(&gs, "stoker.io/push-received-at").is_none());
    assert_eq!(commit_of(&gs), Some(first));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushes_need_the_operator_s_or_a_matching_gatewaysync_s_secret() {
    let world = World::start("rx-pushauth").await;
    let rx = receiver(&world, global_secrets(), |_| {}).await;
    with_own_secret(&world, "team", "team-secret").await;
    let first = world.repo.rev_parse("main").unwrap();
    let second = world
        .repo
        .commit("main", &[("projects/demo/a.json", b"{}")], "second")
        .unwrap();
    let body = github_push(&world, &first, &second, &["projects/demo/a.json"]);
    let wrong = post_push(&rx, "nope", &body, "w").await;
    // A push to a repository nobody syncs, signed with the team's secret: the same 401.
    let mut elsewhere: Value = serde_json::from_slice(&body).unwrap();
    set_repository_url(&mut elsewhere, "https://git.example/none/such.git");
    let elsewhere = serde_json::to_vec(&elsewhere).unwrap();
    let nothing = post_push(&rx, "team-secret", &elsewhere, "n").await;
    assert_eq!(
        (wrong.status, &wrong.body),
        (401, &"unauthorized\n".to_owned())
    );
    assert_eq!((nothing.status, &nothing.body), (wrong.status, &wrong.body));
    let reply = post_push(&rx, "team-secret", &body, "t").await;
    assert_push_answer(&reply, 1, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_over_its_rate_gets_429_with_retry_after() {
    let world = World::start("rx-rate").await;
    let rx = receiver(&world, global_secrets(), |config| {
        config.rate_limit = RateLimit {
            per_second: 0.01,
            burst: 2,
        };
    })
    .await;
    let body = br#"{"ref":"v1"}"#;
    let path = ref_path(&world, "missing");
    for _ in 0..2 {
        let reply = post(&rx, &path, &signed(GLOBAL, body), body).await;
        assert_eq!(reply.status, 404, "{reply:?}");
    }
    let reply = post(&rx, &path, &signed(GLOBAL, body), body).await;
    assert_eq!(reply.status, 429, "{reply:?}");
    let retry: u64 = reply.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=100).contains(&retry), "{retry}");
    assert!(counted(&rx, "unknown", 429));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_over_1_mib_gets_413_and_one_of_1_mib_is_read() {
    let world = World::start("rx-size").await;
    let rx = receiver(&world, Secrets::default(), |_| {}).await;
    world
        .create_gs("site", crate::controller_support::spec("main"))
        .await;
    let mut body = br#"{"ref":"v5"}"#.to_vec();
    body.resize(BODY_LIMIT, b' ');
    let reply = post(&rx, &ref_path(&world, "site"), &[], &body).await;
    assert_eq!(reply.status, 202, "{reply:?}");
    body.push(b' ');
    let reply = post(&rx, &ref_path(&world, "site"), &[], &body).await;
    assert_eq!(reply.status, 413, "{reply:?}");
    assert!(counted(&rx, "unknown", 413));
    let reply = post(&rx, "/webhook/push", &[], &body).await;
    assert_eq!(reply.status, 413, "{reply:?}");
}
