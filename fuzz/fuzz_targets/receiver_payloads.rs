//! Feeds arbitrary bytes to the webhook receiver's parsers, as an unauthenticated caller can:
//! the v0.5.1 payload reader, the push-event reader under each host's headers, the repository
//! URL normaliser, and the signature check.
//!
//! Never panics, and every repository name it produces (from a push or from a URL) is
//! well-formed: `host/path`, lower-case, neither part empty, no trailing `/`.
#![no_main]

use arbitrary::Arbitrary;
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;
use stoker_k8s::receiver::{Delivery, RepoId, Secrets, push, requested_ref};

/// Which host's headers the body arrives with.
#[derive(Debug, Arbitrary)]
enum Host {
    Github,
    Gitlab,
    Gitea,
    BitbucketCloud,
    BitbucketServer,
    None,
}

#[derive(Debug, Arbitrary)]
struct Input {
    host: Host,
    delivery: String,
    signature: String,
    body: Vec<u8>,
    url: String,
    reference: String,
    sources: Vec<String>,
}

fn headers(host: &Host, delivery: &str, signature: &str) -> HeaderMap {
    let pairs: &[(&str, &str)] = match host {
        Host::Github => &[("x-github-event", "push"), ("x-github-delivery", delivery)],
        Host::Gitlab => &[("x-gitlab-event", "Push Hook"), ("idempotency-key", delivery)],
        Host::Gitea => &[("x-gitea-event", "push"), ("x-gitea-delivery", delivery)],
        Host::BitbucketCloud => &[("x-event-key", "repo:push"), ("x-request-uuid", delivery)],
        Host::BitbucketServer => &[("x-event-key", "repo:refs_changed")],
        Host::None => &[],
    };
    let mut map = HeaderMap::new();
    for (name, value) in pairs.iter().chain(&[("x-hub-signature-256", signature)]) {
        if let Ok(value) = HeaderValue::from_str(value) {
            map.insert(HeaderName::from_static(name), value);
        }
    }
    map
}

fuzz_target!(|input: Input| {
    let _ = requested_ref(&input.body);
    let headers = headers(&input.host, &input.delivery, &input.signature);
    let secrets = Secrets {
        hmac: vec![b"secret".to_vec()],
        tokens: vec![b"token".to_vec()],
    };
    let _ = secrets.authorize(&headers, &input.body);
    if let Ok(Delivery::Push(event)) = push::parse(&headers, &input.body) {
        for id in &event.repositories {
            well_formed(id);
        }
        let _ = event.is_for(&input.url);
        let _ = event.moved(&input.reference);
        let _ = event.touches(input.sources.iter().map(String::as_str));
    }
    if let Some(id) = RepoId::parse(&input.url) {
        well_formed(&id);
    }
});

/// A repository name is `host/path`: lower-case, a non-empty host and path, no trailing `/`.
fn well_formed(id: &RepoId) {
    let name = id.as_str();
    assert_eq!(name, name.to_lowercase(), "{name}");
    let (host, path) = name.split_once('/').unwrap_or_else(|| panic!("{name}"));
    assert!(!host.is_empty() && !path.is_empty() && !path.ends_with('/'), "{name}");
}
