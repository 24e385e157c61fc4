//! The built-in notifiers and the dispatcher against loopback HTTP servers that record what
//! they receive (stoker-testkit's `http_recorder`).

use std::sync::Arc;
use std::time::Duration;

use stoker_core::notify::dispatch::{DeliveryResult, DispatchConfig, Dispatcher, Observer};
use stoker_core::notify::{WebhookConfig, WebhookType, build};
use stoker_core::{Event, EventKind, NotifyErrorKind, Revision};
use stoker_testkit::http_recorder::{RecordingServer, Reply};
use tokio::sync::mpsc;

/// Bounded waits: generous, only reached when something is broken.
const WAIT: Duration = Duration::from_secs(20);

fn server() -> RecordingServer {
    RecordingServer::start().expect("recording server")
}

fn event(kind: EventKind, message: &str) -> Event {
    Event {
        kind,
        gateway: "plant/site".to_owned(),
        revision: Some(
            Revision::new("abc1234def5678abc1234def5678abc1234def56").with_reference("v2.0.0"),
        ),
        message: message.to_owned(),
    }
}

fn config(kind: WebhookType, server: &RecordingServer) -> WebhookConfig {
    WebhookConfig::new(kind, format!("webhooks[0] ({kind})")).with_url(server.url())
}

/// An observer that forwards every delivery to a channel.
fn observer() -> (
    Observer,
    mpsc::UnboundedReceiver<stoker_core::notify::dispatch::Delivery>,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    let observer: Observer = Arc::new(move |delivery| {
        let _ = tx.send(delivery.clone());
    });
    (observer, rx)
}

fn fast() -> DispatchConfig {
    DispatchConfig {
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(50),
        ..DispatchConfig::default()
    }
}

async fn next<T>(rx: &mut mpsc::UnboundedReceiver<T>) -> T {
    tokio::time::timeout(WAIT, rx.recv())
        .await
        .expect("an outcome in time")
        .expect("channel open")
}

#[tokio::test]
async fn slack_gets_text_and_blocks() {
    let server = server();
    let notifier = build(&config(WebhookType::Slack, &server)).unwrap();
    notifier
        .notify(&event(
            EventKind::SyncCompleted,
            "5 of 5 gateways synced to v2.0.0 (abc1234)",
        ))
        .await
        .unwrap();
    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/hook/T000/B000/s3cr3t-path");
    assert_eq!(request.header("content-type"), Some("application/json"));
    let body = request.json();
    assert_eq!(
        body["text"],
        ":white_check_mark: *SyncCompleted* plant/site: 5 of 5 gateways synced to v2.0.0 (abc1234)"
    );
    assert_eq!(body["blocks"][0]["type"], "section");
    assert_eq!(body["blocks"][0]["text"]["text"], body["text"]);
    assert_eq!(
        body["blocks"][1]["elements"][0]["text"],
        "Stoker · `plant/site` · commit `abc1234` (v2.0.0)"
    );
}

#[tokio::test]
async fn teams_gets_an_adaptive_card() {
    let server = server();
    let notifier = build(&config(WebhookType::MsTeams, &server)).unwrap();
    notifier
        .notify(&event(
            EventKind::SyncFailed,
            "1 of 3 gateways failed: gw-b",
        ))
        .await
        .unwrap();
    let body = server.requests()[0].json();
    assert_eq!(body["type"], "message");
    let attachment = &body["attachments"][0];
    assert_eq!(
        attachment["contentType"],
        "application/vnd.microsoft.card.adaptive"
    );
    let card = &attachment["content"];
    assert_eq!(card["type"], "AdaptiveCard");
    assert_eq!(card["version"], "1.4");
    assert_eq!(card["body"][0]["text"], "Stoker: SyncFailed plant/site");
    assert_eq!(card["body"][0]["color"], "Attention");
    assert_eq!(card["body"][1]["text"], "1 of 3 gateways failed: gw-b");
    let facts = card["body"][2]["facts"].as_array().unwrap();
    let fact = |title: &str| {
        facts
            .iter()
            .find(|f| f["title"] == title)
            .map(|f| f["value"].clone())
    };
    assert_eq!(fact("Commit").unwrap(), "abc1234");
    assert_eq!(fact("Ref").unwrap(), "v2.0.0");
    assert_eq!(fact("Resource").unwrap(), "plant/site");
}

#[tokio::test]
async fn pagerduty_triggers_then_resolves_the_same_incident() {
    let server = server();
    let notifier =
        build(&config(WebhookType::PagerDuty, &server).with_secret("R0UT1NGKEY0123456789"))
            .unwrap();
    notifier
        .notify(&event(
            EventKind::SyncFailed,
            "1 of 2 gateways failed: gw-a",
        ))
        .await
        .unwrap();
    // Not a problem nor a recovery: nothing is sent.
    notifier
        .notify(&event(EventKind::SyncCompleted, "2 of 2 gateways synced"))
        .await
        .unwrap();
    notifier
        .notify(&event(
            EventKind::SyncRecovered,
            "every gateway is synced again",
        ))
        .await
        .unwrap();
    let requests = server.requests();
    assert_eq!(requests.len(), 2, "{requests:?}");
    let (trigger, resolve) = (requests[0].json(), requests[1].json());
    assert_eq!(trigger["routing_key"], "R0UT1NGKEY0123456789");
    assert_eq!(trigger["event_action"], "trigger");
    assert_eq!(trigger["dedup_key"], "stoker/plant/site/SyncFailed");
    assert_eq!(
        trigger["payload"]["summary"],
        "plant/site: 1 of 2 gateways failed: gw-a"
    );
    assert_eq!(trigger["payload"]["source"], "plant/site");
    assert_eq!(trigger["payload"]["severity"], "error");
    assert_eq!(resolve["event_action"], "resolve");
    assert_eq!(resolve["routing_key"], "R0UT1NGKEY0123456789");
    assert_eq!(resolve["dedup_key"], trigger["dedup_key"]);
}

#[test]
fn pagerduty_needs_a_routing_key_and_defaults_its_url() {
    let error = build(&WebhookConfig::new(
        WebhookType::PagerDuty,
        "webhooks[3] (pagerduty)",
    ))
    .err()
    .expect("refused");
    assert_eq!(error.notify_kind(), Some(NotifyErrorKind::Config));
    assert_eq!(
        error.to_string(),
        "notification to webhooks[3] (pagerduty): no routing key"
    );
    // No URL given: Events API v2's own.
    assert!(build(&WebhookConfig::new(WebhookType::PagerDuty, "pd").with_secret("key")).is_ok());
}

#[tokio::test]
async fn generic_posts_the_event_signed_with_hmac() {
    let server = server();
    let secret = b"shared-hmac-secret";
    let notifier =
        build(&config(WebhookType::Generic, &server).with_secret(secret.to_vec())).unwrap();
    let sent = event(
        EventKind::RefUpdated,
        "v2.0.0 moved from 0123456 to abc1234",
    );
    notifier.notify(&sent).await.unwrap();
    let request = &server.requests()[0];
    let back: Event = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(back, sent);
    assert_eq!(request.json()["kind"], "RefUpdated");
    assert_eq!(request.header("x-stoker-event"), Some("RefUpdated"));
    let signature = request.header("x-stoker-signature-256").expect("signed");
    let hex = signature.strip_prefix("sha256=").expect("sha256= prefix");
    let tag: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret);
    assert!(aws_lc_rs::hmac::verify(&key, &request.body, &tag).is_ok());
    let wrong = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, b"another");
    assert!(aws_lc_rs::hmac::verify(&wrong, &request.body, &tag).is_err());

    // Without a secret: no signature.
    let unsigned = build(&config(WebhookType::Generic, &server)).unwrap();
    unsigned.notify(&sent).await.unwrap();
    assert_eq!(server.requests()[1].header("x-stoker-signature-256"), None);
}

#[tokio::test]
async fn failures_are_classified_and_never_show_the_url() {
    let server = server();
    let notifier = build(&config(WebhookType::Slack, &server)).unwrap();
    server.script([
        Reply::status(404),
        Reply::Status {
            code: 429,
            retry_after: Some(7),
        },
        Reply::status(503),
    ]);
    let sent = event(EventKind::SyncFailed, "x");
    let rejected = notifier.notify(&sent).await.unwrap_err();
    assert_eq!(rejected.notify_kind(), Some(NotifyErrorKind::Rejected));
    let limited = notifier.notify(&sent).await.unwrap_err();
    assert_eq!(limited.notify_kind(), Some(NotifyErrorKind::Transient));
    assert_eq!(limited.retry_after(), Some(Duration::from_secs(7)));
    let unavailable = notifier.notify(&sent).await.unwrap_err();
    assert_eq!(unavailable.notify_kind(), Some(NotifyErrorKind::Transient));
    // Nothing listens any more: connection refused.
    let url = server.url();
    drop(server);
    let refused = notifier.notify(&sent).await.unwrap_err();
    assert_eq!(refused.notify_kind(), Some(NotifyErrorKind::Transient));
    for error in [&rejected, &limited, &unavailable, &refused] {
        let text = stoker_core::error::chain(error);
        assert!(
            text.starts_with("notification to webhooks[0] (slack): "),
            "{text}"
        );
        assert!(!text.contains("s3cr3t") && !text.contains(&url), "{text}");
    }
    assert!(rejected.to_string().contains("HTTP 404"), "{rejected}");
}

#[tokio::test]
async fn a_hanging_endpoint_does_not_hold_the_sender() {
    let server = server();
    server.set_default(Reply::Hang);
    let notifier =
        build(&config(WebhookType::Slack, &server).with_timeout(Duration::from_secs(600))).unwrap();
    let (observer, _outcomes) = observer();
    let dispatcher = Dispatcher::spawn(notifier, fast(), observer);
    assert!(dispatcher.send(event(EventKind::SyncFailed, "first")));
    // The delivery task is now stuck in the first request.
    assert_eq!(server.wait_for(1, WAIT).await.len(), 1);
    // The sender goes on: a reconciler sending more finishes, and says so on a channel.
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    let sender = std::thread::spawn(move || {
        let queued: Vec<bool> = (0..3)
            .map(|i| dispatcher.send(event(EventKind::SyncFailed, &format!("more {i}"))))
            .collect();
        let _ = done_tx.send(queued);
        dispatcher
    });
    let queued = tokio::time::timeout(WAIT, done_rx)
        .await
        .expect("send returned while the endpoint hangs")
        .unwrap();
    assert_eq!(queued, [true, true, true]);
    let dispatcher = sender.join().unwrap();
    assert_eq!(dispatcher.dropped(), 0);
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn a_500_is_retried_until_it_succeeds() {
    let server = server();
    server.script([Reply::status(500), Reply::status(502)]);
    let (observer, mut outcomes) = observer();
    let dispatcher = Dispatcher::spawn(
        build(&config(WebhookType::Generic, &server)).unwrap(),
        fast(),
        observer,
    );
    dispatcher.send(event(EventKind::SyncCompleted, "done"));
    let delivery = next(&mut outcomes).await;
    assert_eq!(delivery.result, DeliveryResult::Delivered);
    assert_eq!(delivery.attempts, 3);
    let requests = server.requests();
    assert_eq!(requests.len(), 3);
    assert!(requests.windows(2).all(|pair| pair[0].body == pair[1].body));
}

#[tokio::test]
async fn an_endpoint_that_keeps_failing_is_reported() {
    let server = server();
    server.set_default(Reply::status(500));
    let (observer, mut outcomes) = observer();
    let dispatch = DispatchConfig {
        attempts: 3,
        ..fast()
    };
    let dispatcher = Dispatcher::spawn(
        build(
            &WebhookConfig::new(WebhookType::Slack, "webhooks[1] (slack)").with_url(server.url()),
        )
        .unwrap(),
        dispatch,
        observer,
    );
    dispatcher.send(event(EventKind::SyncFailed, "boom"));
    let delivery = next(&mut outcomes).await;
    assert_eq!(delivery.result, DeliveryResult::Failed);
    assert_eq!(delivery.attempts, 3);
    let error = delivery.error.unwrap();
    assert!(
        error.starts_with("notification to webhooks[1] (slack): HTTP 500"),
        "{error}"
    );
    assert!(!error.contains("s3cr3t"), "{error}");
    assert_eq!(server.requests().len(), 3);
    // A refusal (4xx) is not retried.
    server.set_default(Reply::status(400));
    dispatcher.send(event(EventKind::SyncFailed, "refused"));
    let delivery = next(&mut outcomes).await;
    assert_eq!(
        (delivery.result, delivery.attempts),
        (DeliveryResult::Failed, 1)
    );
}

#[tokio::test]
async fn repeats_are_sent_once_and_a_recovery_makes_failure_news_again() {
    let server = server();
    let (observer, mut outcomes) = observer();
    let dispatcher = Dispatcher::spawn(
        build(&config(WebhookType::Generic, &server)).unwrap(),
        fast(),
        observer,
    );
    let failed = event(EventKind::SyncFailed, "1 of 2 gateways failed: gw-a");
    assert!(dispatcher.send(failed.clone()));
    assert!(!dispatcher.send(failed.clone()));
    let mut results = vec![
        next(&mut outcomes).await.result,
        next(&mut outcomes).await.result,
    ];
    results.sort_by_key(|r| r.as_str());
    assert_eq!(
        results,
        [DeliveryResult::Deduplicated, DeliveryResult::Delivered]
    );
    // Another message is not a repeat.
    assert!(dispatcher.send(event(EventKind::SyncFailed, "2 of 2 gateways failed")));
    assert!(dispatcher.send(event(EventKind::SyncRecovered, "synced again")));
    // After the recovery, the first failure is news again.
    assert!(dispatcher.send(failed.clone()));
    let requests = server.wait_for(4, WAIT).await;
    let messages: Vec<String> = requests
        .iter()
        .map(|r| r.json()["message"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(
        messages,
        [
            "1 of 2 gateways failed: gw-a",
            "2 of 2 gateways failed",
            "synced again",
            "1 of 2 gateways failed: gw-a"
        ]
    );
}

#[tokio::test]
async fn a_full_queue_drops_the_oldest_and_counts_it() {
    let server = server();
    server.set_default(Reply::Hang);
    let (observer, mut outcomes) = observer();
    let dispatch = DispatchConfig {
        capacity: 2,
        ..fast()
    };
    let notifier =
        build(&config(WebhookType::Generic, &server).with_timeout(Duration::from_secs(600)))
            .unwrap();
    let dispatcher = Dispatcher::spawn(notifier, dispatch, observer);
    dispatcher.send(event(EventKind::SyncFailed, "in flight"));
    server.wait_for(1, WAIT).await;
    dispatcher.send(event(EventKind::RefUpdated, "oldest waiting"));
    dispatcher.send(event(EventKind::SyncFailed, "second"));
    dispatcher.send(event(EventKind::SyncFailed, "third"));
    assert_eq!(dispatcher.dropped(), 1);
    let delivery = next(&mut outcomes).await;
    assert_eq!(
        (delivery.kind, delivery.result),
        (EventKind::RefUpdated, DeliveryResult::Dropped)
    );
}
