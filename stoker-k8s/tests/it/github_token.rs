//! The GitHub App installation token Secret the controller keeps for the agents, against a real
//! kube-apiserver (stoker-testkit) and the GitHub API double: its shape, renewal before expiry
//! and no rewrite while fresh, failures (rejected App, GitHub down) and its removal.
//!
//! The repository URL is plain `http://`, so the operator's own resolution refuses to send the
//! token (`RefResolved=False`, reason `RefResolutionFailed`): these tests are about the Secret.
//! stoker-core's tests/it/github_app.rs clones with an issued token over HTTPS.

use std::time::Duration;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::json;
use stoker_testkit::github_api::{GithubApiDouble, generate_private_key_pem};
use stoker_testkit::kube_api::wait_until;

use crate::controller_support::{CONVERGE, World, condition, event_reasons, spec};

const APP_ID: u64 = 4242;
const INSTALLATION: u64 = 99;
const KEY_SECRET: &str = "github-app";
const KEY: &str = "private-key.pem";
/// GitHub's token lifetime, for tests that must not see a renewal.
const HOUR: Duration = Duration::from_secs(3600);
/// Just past the controller's default 10-minute margin: due for renewal within seconds.
const SOON_DUE: Duration = Duration::from_secs(10 * 60 + 3);

fn double(lifetime: Duration) -> GithubApiDouble {
    let api = GithubApiDouble::start(&APP_ID.to_string(), &[INSTALLATION]).unwrap();
    api.set_token_lifetime(lifetime);
    api
}

fn secrets(world: &World) -> Api<Secret> {
    Api::namespaced(world.client.clone(), &world.namespace)
}

/// Creates or replaces the Secret holding the App's private key.
async fn put_app_key(world: &World, pem: &str) {
    let secret: Secret = serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": KEY_SECRET},
        "stringData": {KEY: pem},
    }))
    .unwrap();
    secrets(world)
        .patch(
            KEY_SECRET,
            &PatchParams::apply("test").force(),
            &Patch::Apply(&secret),
        )
        .await
        .unwrap();
}

/// A spec authenticating with the double's App; polling every 2 s unless `polling` is false.
fn app_spec(api: &GithubApiDouble, polling: bool) -> serde_json::Value {
    let mut spec = spec("main");
    spec["git"]["auth"] = json!({"githubApp": {
        "appId": APP_ID,
        "installationId": INSTALLATION,
        "privateKeySecretRef": {"name": KEY_SECRET, "key": KEY},
        "apiBaseURL": api.url(),
    }});
    if !polling {
        spec["polling"] = json!({"enabled": false});
    }
    spec
}

fn token_secret_name(cr: &str) -> String {
    format!("stoker-github-token-{cr}")
}

fn token_in(secret: &Secret) -> String {
    let ByteString(bytes) = &secret.data.as_ref().unwrap()["token"];
    String::from_utf8(bytes.clone()).unwrap()
}

/// Waits until the token Secret exists and `check` holds for it.
async fn wait_token_secret(
    world: &World,
    cr: &str,
    what: &str,
    check: impl Fn(&Secret) -> bool,
) -> Secret {
    let api = secrets(world);
    let name = token_secret_name(cr);
    wait_until(what, CONVERGE, || async {
        api.get_opt(&name).await.unwrap().filter(|s| check(s))
    })
    .await
}

async fn wait_no_token_secret(world: &World, cr: &str, what: &str) {
    let api = secrets(world);
    let name = token_secret_name(cr);
    wait_until(what, CONVERGE, || async {
        api.get_opt(&name).await.unwrap().is_none().then_some(())
    })
    .await;
}

fn expiry_metric(world: &World, cr: &str) -> Option<String> {
    let text = world.metrics.encode().unwrap();
    // v0.5.1's labels (app_id, installation_id), then the GatewaySync's.
    let suffix = format!(",name=\"{cr}\",namespace=\"{}\"}} ", world.namespace);
    text.lines().find_map(|line| {
        let rest = line
            .strip_prefix("stoker_controller_github_app_token_expiry_timestamp_seconds{app_id=")?;
        let (_, value) = rest.split_once(&suffix)?;
        Some(value.to_owned())
    })
}

fn unix_seconds(time: std::time::SystemTime) -> i64 {
    time.duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .try_into()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agents_token_is_kept_in_an_owned_secret_and_not_rewritten_while_fresh() {
    let api = double(HOUR);
    let world = World::start("gh-token").await;
    put_app_key(&world, api.private_key_pem()).await;
    let gs = world.create_gs("site", app_spec(&api, true)).await;

    let secret = wait_token_secret(&world, "site", "the token Secret exists", |_| true).await;
    let issued = api.issued();
    assert_eq!(issued.len(), 1, "{issued:?}");
    assert_eq!(token_in(&secret), issued[0].token);
    assert!(api.is_valid_token(&token_in(&secret)));
    assert_eq!(secret.type_.as_deref(), Some("Opaque"));
    assert_eq!(secret.data.as_ref().unwrap().len(), 1);
    let annotations = secret.annotations();
    assert_eq!(annotations["stoker.io/secret-type"], "github-app-token");
    let expires_at: jiff::Timestamp = annotations["stoker.io/token-expires-at"].parse().unwrap();
    assert_eq!(expires_at.as_second(), unix_seconds(issued[0].expires_at));
    assert_eq!(
        annotations["stoker.io/github-app-installation"],
        format!("{APP_ID}/{INSTALLATION}@{}", api.url())
    );
    assert_eq!(secret.labels()["stoker.io/gatewaysync"], "site");
    let owners = secret.owner_references();
    assert_eq!(owners.len(), 1);
    assert_eq!(
        (
            owners[0].kind.as_str(),
            owners[0].name.as_str(),
            owners[0].uid.as_str()
        ),
        ("GatewaySync", "site", gs.uid().unwrap().as_str())
    );
    assert_eq!(owners[0].controller, Some(true));
    // The metric says when it expires.
    let metric = wait_until("the expiry metric is set", CONVERGE, || async {
        expiry_metric(&world, "site")
    })
    .await;
    assert_eq!(metric, expires_at.as_second().to_string());

    // The operator had a token to resolve with (the plain-http URL is what fails).
    let gs = world
        .wait_gs("site", "RefResolved=False", |gs| {
            condition(gs, "RefResolved").is_some_and(|(s, _, _)| s == "False")
        })
        .await;
    let (_, reason, message) = condition(&gs, "RefResolved").unwrap();
    assert_eq!(reason, "RefResolutionFailed", "{message}");

    // Polls every 2 s: several reconciliations later, the fresh token is still the one written.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let again = secrets(&world)
        .get(&token_secret_name("site"))
        .await
        .unwrap();
    assert_eq!(again.resource_version(), secret.resource_version());
    assert_eq!(api.calls(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_due_for_renewal_is_replaced_before_it_expires_without_polling() {
    // Tokens expire 3 s after the 10-minute margin starts: due almost at once. Polling is off,
    // so only the controller's own requeue for the token can renew it.
    let api = double(SOON_DUE);
    let world = World::start("gh-renew").await;
    put_app_key(&world, api.private_key_pem()).await;
    world.create_gs("site", app_spec(&api, false)).await;

    let first = wait_token_secret(&world, "site", "the token Secret exists", |_| true).await;
    let first_token = token_in(&first);
    let first_expiry = first.annotations()["stoker.io/token-expires-at"].clone();
    let renewed = wait_token_secret(&world, "site", "the token is renewed", |secret| {
        token_in(secret) != first_token
    })
    .await;
    // Renewed while the old one was still valid (it had 10 minutes left).
    assert!(api.is_valid_token(&first_token));
    assert!(api.is_valid_token(&token_in(&renewed)));
    let renewed_expiry: jiff::Timestamp = renewed.annotations()["stoker.io/token-expires-at"]
        .parse()
        .unwrap();
    assert!(renewed_expiry > first_expiry.parse().unwrap());
    assert_ne!(renewed.resource_version(), first.resource_version());
    // Same object, updated in place: the kubelet refreshes the agents' mounted file.
    assert_eq!(renewed.uid(), first.uid());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_app_gets_no_token_says_why_and_recovers_once_the_key_is_fixed() {
    let api = double(HOUR);
    let world = World::start("gh-rejected").await;
    put_app_key(&world, &generate_private_key_pem().unwrap()).await;
    world.create_gs("site", app_spec(&api, true)).await;

    let gs = world
        .wait_gs("site", "RefResolved=False GitHubAppExchangeFailed", |gs| {
            condition(gs, "RefResolved")
                .is_some_and(|(s, reason, _)| s == "False" && reason == "GitHubAppExchangeFailed")
        })
        .await;
    let (_, _, message) = condition(&gs, "RefResolved").unwrap();
    assert!(message.contains("HTTP 401"), "{message}");
    assert!(message.contains("could not be verified"), "{message}");
    assert!(
        event_reasons(&world, "site")
            .await
            .contains("GitHubAppExchangeFailed")
    );
    // Retried with backoff (200 ms doubling to 2 s here).
    wait_until("the exchange is retried", CONVERGE, || async {
        (api.calls() >= 3).then_some(())
    })
    .await;
    assert!(
        secrets(&world)
            .get_opt(&token_secret_name("site"))
            .await
            .unwrap()
            .is_none()
    );
    // Published when the failure started, not at every retry.
    let counts = crate::controller_support::event_counts(&world, "site").await;
    assert_eq!(
        counts.get("GitHubAppExchangeFailed"),
        Some(&1),
        "{counts:?}"
    );
    assert_eq!(counts.get("RefResolutionFailed"), None, "{counts:?}");
    assert!(api.issued().is_empty());
    assert_eq!(expiry_metric(&world, "site"), None);

    // The right key: the next retry gets a token, and the condition moves on.
    put_app_key(&world, api.private_key_pem()).await;
    let secret = wait_token_secret(&world, "site", "the token Secret exists", |_| true).await;
    assert!(api.is_valid_token(&token_in(&secret)));
    world
        .wait_gs("site", "RefResolved reason is no longer the App", |gs| {
            condition(gs, "RefResolved")
                .is_some_and(|(_, reason, _)| reason == "RefResolutionFailed")
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_renewal_keeps_the_old_token_and_retries() {
    let api = double(SOON_DUE);
    let world = World::start("gh-down").await;
    put_app_key(&world, api.private_key_pem()).await;
    // GitHub goes down right after the first token.
    world.create_gs("site", app_spec(&api, true)).await;
    let first = wait_token_secret(&world, "site", "the token Secret exists", |_| true).await;
    api.fail_next(u32::MAX, 503);
    let calls = api.calls();
    wait_until("the renewal is tried and retried", CONVERGE, || async {
        (api.calls() >= calls + 3).then_some(())
    })
    .await;
    let kept = secrets(&world)
        .get(&token_secret_name("site"))
        .await
        .unwrap();
    assert_eq!(kept.resource_version(), first.resource_version());
    assert_eq!(token_in(&kept), token_in(&first));
    assert!(
        event_reasons(&world, "site")
            .await
            .contains("GitHubAppExchangeFailed")
    );
    // The old token still works, so resolution is not blamed on the App.
    let gs = world.get_gs("site").await;
    let (_, reason, message) = condition(&gs, "RefResolved").unwrap();
    assert_eq!(reason, "RefResolutionFailed", "{message}");

    // GitHub is back: renewed.
    api.fail_next(0, 503);
    let renewed = wait_token_secret(&world, "site", "the token is renewed", |secret| {
        token_in(secret) != token_in(&first)
    })
    .await;
    assert!(api.is_valid_token(&token_in(&renewed)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_secret_goes_when_the_app_or_the_resource_does() {
    let api = double(HOUR);
    let world = World::start("gh-away").await;
    put_app_key(&world, api.private_key_pem()).await;
    world.create_gs("site", app_spec(&api, true)).await;
    wait_token_secret(&world, "site", "the token Secret exists", |_| true).await;
    wait_until("the expiry metric is set", CONVERGE, || async {
        expiry_metric(&world, "site")
    })
    .await;

    // Switch to a plain token: the App's token Secret is no longer needed.
    let git_token: Secret = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "git-token"},
        "stringData": {"token": "t"},
    }))
    .unwrap();
    secrets(&world)
        .create(&PostParams::default(), &git_token)
        .await
        .unwrap();
    world
        .gs_api()
        .patch(
            "site",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"git": {"auth": {
                "githubApp": null,
                "token": {"secretRef": {"name": "git-token", "key": "token"}},
            }}}})),
        )
        .await
        .unwrap();
    wait_no_token_secret(&world, "site", "the token Secret is deleted").await;
    assert_eq!(expiry_metric(&world, "site"), None);
    assert!(
        secrets(&world)
            .get_opt("git-token")
            .await
            .unwrap()
            .is_some(),
        "only the operator's own Secret goes"
    );

    // Deleting a resource removes its token Secret (through the finalizer: no garbage
    // collector runs here).
    world.create_gs("other", app_spec(&api, true)).await;
    wait_token_secret(&world, "other", "the other token Secret exists", |_| true).await;
    world
        .gs_api()
        .delete("other", &DeleteParams::default())
        .await
        .unwrap();
    wait_no_token_secret(&world, "other", "the other token Secret is deleted").await;
}
