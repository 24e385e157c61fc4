use super::*;

const HOUR: Duration = Duration::from_secs(3600);

fn names() -> BTreeSet<String> {
    ["svc.ns.svc".to_owned(), "127.0.0.1".to_owned()].into()
}

fn lifetimes() -> Lifetimes {
    Lifetimes {
        authority: 30 * HOUR,
        serving: 3 * HOUR,
        staging: Duration::from_secs(60),
    }
}

fn t0() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

fn fresh() -> Material {
    stage_authority(None, &names(), t0(), &lifetimes()).unwrap()
}

fn recheck(verdict: Verdict) -> SystemTime {
    match verdict {
        Verdict::Fresh { recheck } => recheck,
        other => panic!("expected Fresh, got {other:?}"),
    }
}

#[test]
fn no_secret_needs_an_authority() {
    let verdict = judge(None, &names(), t0(), None, &lifetimes());
    assert!(matches!(verdict, Verdict::NewAuthority(_)), "{verdict:?}");
}

#[test]
fn a_first_authority_signs_a_serving_certificate_at_once() {
    let material = fresh();
    assert_eq!(pem_blocks(&material.ca_bundle).len(), 1);
    let serving = first_certificate(&material.cert).unwrap();
    let authority = first_certificate(&material.ca_bundle).unwrap();
    assert_eq!(serving.issuer, authority.subject);
    assert!(names().is_subset(&serving.names), "{:?}", serving.names);
    // Fresh until a third of the serving certificate's validity is left.
    let at = recheck(judge(Some(&material), &names(), t0(), None, &lifetimes()));
    assert_eq!(at, serving.renew_at());
    assert!(at > t0() + HOUR && at < t0() + 3 * HOUR);
}

#[test]
fn the_serving_certificate_is_renewed_when_a_third_is_left() {
    let material = fresh();
    let due = first_certificate(&material.cert).unwrap().renew_at();
    let verdict = judge(Some(&material), &names(), due, None, &lifetimes());
    assert!(matches!(verdict, Verdict::NewServing(_)), "{verdict:?}");
    let mut renewed = material.clone();
    sign_serving(&mut renewed, &names(), due, &lifetimes()).unwrap();
    assert_eq!(renewed.ca_bundle, material.ca_bundle, "same authority");
    assert_ne!(renewed.cert, material.cert);
    let next = recheck(judge(Some(&renewed), &names(), due, None, &lifetimes()));
    assert!(next > due);
}

#[test]
fn a_new_name_needs_a_new_serving_certificate() {
    let material = fresh();
    let mut wanted = names();
    wanted.insert("other.ns.svc".to_owned());
    let verdict = judge(Some(&material), &wanted, t0(), None, &lifetimes());
    assert!(
        matches!(verdict, Verdict::NewServing(ref why) if why.contains("other.ns.svc")),
        "{verdict:?}"
    );
}

#[test]
fn garbage_in_the_secret_means_a_new_authority() {
    let mut material = fresh();
    material.ca_bundle = "not a certificate".to_owned();
    let verdict = judge(Some(&material), &names(), t0(), None, &lifetimes());
    assert!(matches!(verdict, Verdict::NewAuthority(_)), "{verdict:?}");
    let mut material = fresh();
    material.ca_key = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n".to_owned();
    let verdict = judge(Some(&material), &names(), t0(), None, &lifetimes());
    assert!(matches!(verdict, Verdict::NewAuthority(_)), "{verdict:?}");
}

#[test]
fn a_serving_certificate_from_an_unknown_issuer_is_replaced() {
    let material = fresh();
    let other = fresh();
    let mixed = Material {
        cert: other.cert.clone(),
        key: other.key.clone(),
        ..material
    };
    let verdict = judge(Some(&mixed), &names(), t0(), None, &lifetimes());
    assert!(
        matches!(verdict, Verdict::NewServing(ref why) if why.contains("issuer")),
        "{verdict:?}"
    );
}

#[test]
fn a_due_authority_is_staged_before_it_signs() {
    let mut material = fresh();
    let due = first_certificate(&material.ca_bundle).unwrap().renew_at();
    // A serving certificate that is not due itself when the authority is.
    sign_serving(&mut material, &names(), due - HOUR, &lifetimes()).unwrap();
    let verdict = judge(Some(&material), &names(), due, None, &lifetimes());
    assert!(matches!(verdict, Verdict::NewAuthority(_)), "{verdict:?}");
    // A later second, so the new authority's name differs from the old one's.
    let staged_at = due + Duration::from_secs(1);
    let staged = stage_authority(Some(&material), &names(), staged_at, &lifetimes()).unwrap();
    let bundle = certificates(&staged.ca_bundle);
    assert_eq!(bundle.len(), 2, "the new authority, then the old one");
    assert_eq!(bundle[1], first_certificate(&material.ca_bundle).unwrap());
    assert_eq!(
        staged.cert, material.cert,
        "still served by the old authority's certificate"
    );

    // Before the staging delay the old serving certificate stays (it is still trusted) ...
    let at = recheck(judge(
        Some(&staged),
        &names(),
        staged_at,
        Some(staged_at),
        &lifetimes(),
    ));
    assert_eq!(at, staged_at + lifetimes().staging);
    // ... after it, the new authority signs.
    let verdict = judge(Some(&staged), &names(), at, Some(staged_at), &lifetimes());
    assert!(
        matches!(verdict, Verdict::NewServing(ref why) if why.contains("staged")),
        "{verdict:?}"
    );
    let mut signed = staged.clone();
    sign_serving(&mut signed, &names(), at, &lifetimes()).unwrap();
    assert_eq!(serving_issuer(&signed), Some(bundle[0].subject.clone()));
    recheck(judge(Some(&signed), &names(), at, None, &lifetimes()));
}

#[test]
fn a_bundle_keeps_at_most_two_authorities() {
    let mut material = fresh();
    for step in 1..4 {
        let at = t0() + Duration::from_secs(step);
        material = stage_authority(Some(&material), &names(), at, &lifetimes()).unwrap();
        assert!(certificates(&material.ca_bundle).len() <= 2);
    }
}

#[test]
fn rustls_accepts_what_is_made() {
    let material = fresh();
    let serving = super::super::tls::ServingCertificate::default();
    assert!(serving.load(&material.cert, &material.key).unwrap());
    assert!(
        !serving.load(&material.cert, &material.key).unwrap(),
        "unchanged"
    );
    let other = fresh();
    let mismatched = serving.load(&other.cert, &material.key);
    assert!(
        mismatched.is_err(),
        "a key that does not match the certificate is refused"
    );
    assert_eq!(serving.current_pem(), Some(material.cert));
}

#[test]
fn the_bundle_patch_touches_only_webhooks_that_differ() {
    let material = fresh();
    let encoded = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        material.ca_bundle.as_bytes(),
    );
    let configuration = serde_json::json!({"webhooks": [
        {"name": "a.stoker.io", "clientConfig": {"caBundle": encoded}},
        {"name": "b.stoker.io", "clientConfig": {"service": {"name": "s", "namespace": "n"}}},
    ]});
    let patch = super::super::keeper::bundle_patch(&configuration, material.ca_bundle.as_bytes())
        .expect("b differs");
    let patch = serde_json::to_value(patch).unwrap();
    assert_eq!(
        patch,
        serde_json::json!([
            {"op": "test", "path": "/webhooks/1/name", "value": "b.stoker.io"},
            {"op": "add", "path": "/webhooks/1/clientConfig/caBundle", "value": encoded},
        ])
    );
    let mut patched = configuration.clone();
    let patch: json_patch::Patch = serde_json::from_value(patch).unwrap();
    json_patch::patch(&mut patched, &patch).unwrap();
    assert!(super::super::keeper::bundle_patch(&patched, material.ca_bundle.as_bytes()).is_none());
}
