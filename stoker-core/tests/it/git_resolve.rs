//! `GitSource::resolve`: references to commits without transferring objects.

use crate::git_support::{Fixture, fast_retries, git, runtime};
use stoker_core::git::{GitSource, GitSourceConfig};
use stoker_core::{GitErrorKind, Source};

#[test]
fn branches_tags_head_and_shas_resolve_like_rev_parse() {
    let fixture = Fixture::new();
    let second = fixture.commit("second", |work| {
        std::fs::write(work.join("README.md"), "hello again\n").unwrap();
    });
    let first = fixture.rev("light");
    let source = fixture.source();
    let rt = runtime();
    let resolve = |reference: &str| rt.block_on(source.resolve(reference));

    let main = resolve("main").unwrap();
    assert_eq!(main.id, second);
    assert_eq!(main.reference.as_deref(), Some("main"));
    assert_eq!(resolve("refs/heads/main").unwrap().id, second);
    assert_eq!(resolve("dev").unwrap().id, first);
    assert_eq!(resolve("HEAD").unwrap().id, second);
    assert_eq!(resolve("light").unwrap().id, first);
    // The annotated tag resolves to the commit, not to the tag object.
    let tag_object = fixture.rev("refs/tags/v1");
    assert_ne!(tag_object, first);
    let v1 = resolve("v1").unwrap();
    assert_eq!(v1.id, first);
    assert_eq!(v1.reference.as_deref(), Some("v1"));
    assert_eq!(resolve("refs/tags/v1").unwrap().id, first);
    // A full SHA is returned as it is (lowercased), without asking the remote.
    let upper = second.to_ascii_uppercase();
    let full = resolve(&upper).unwrap();
    assert_eq!(full.id, second);
    assert_eq!(full.reference.as_deref(), Some(upper.as_str()));
    // Abbreviated: fine when a ref tip starts with it.
    assert_eq!(resolve(&second[..8]).unwrap().id, second);
    assert_eq!(resolve(&first[..7]).unwrap().id, first);
    // Resolving transferred nothing into the fetch cache.
    assert!(!source.cache_repository().exists());
}

#[test]
fn tags_take_precedence_over_branches_of_the_same_name() {
    let fixture = Fixture::new();
    let first = fixture.rev("main");
    git(&fixture.work, &["branch", "same"]);
    let second = fixture.commit("second", |work| {
        std::fs::write(work.join("x"), "x").unwrap();
    });
    git(&fixture.work, &["tag", "same", &first]);
    git(
        &fixture.work,
        &[
            "push",
            "-q",
            "--force",
            fixture.bare.to_str().unwrap(),
            &format!("{second}:refs/heads/same"),
            "refs/tags/same",
        ],
    );
    let rt = runtime();
    let source = fixture.source();
    assert_eq!(rt.block_on(source.resolve("same")).unwrap().id, first);
    assert_eq!(
        rt.block_on(source.resolve("refs/heads/same")).unwrap().id,
        second
    );
}

#[test]
fn an_abbreviated_sha_that_is_no_tip_asks_for_the_full_sha() {
    let fixture = Fixture::new();
    let first = fixture.rev("main");
    fixture.commit("second", |work| {
        std::fs::write(work.join("x"), "x").unwrap();
    });
    // `first` is still the tip of `dev` and of the tags: move them away.
    git(&fixture.bare, &["branch", "-f", "dev", "main"]);
    git(&fixture.bare, &["tag", "-d", "light", "v1"]);
    let rt = runtime();
    let error = rt
        .block_on(fixture.source().resolve(&first[..10]))
        .unwrap_err();
    assert_eq!(error.git_kind(), Some(GitErrorKind::RefNotFound));
    let text = error.to_string();
    assert!(text.contains("full 40-character SHA"), "{text}");
    assert!(text.contains(&first[..10]), "{text}");
}

#[test]
fn a_missing_ref_names_the_ref_and_the_repository() {
    let fixture = Fixture::new();
    let rt = runtime();
    let error = rt
        .block_on(fixture.source().resolve("no-such-branch"))
        .unwrap_err();
    assert_eq!(error.git_kind(), Some(GitErrorKind::RefNotFound));
    let text = error.to_string();
    assert!(text.contains("no-such-branch"), "{text}");
    assert!(text.contains(&fixture.url()), "{text}");
}

#[test]
fn unreachable_servers_are_transient_and_never_show_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let port = crate::git_support::free_port();
    let url = format!("https://user:s3cr3t-token@127.0.0.1:{port}/repo.git");
    let source =
        GitSource::new(GitSourceConfig::new(&url, dir.path()).with_retry(fast_retries())).unwrap();
    assert!(!format!("{source:?}").contains("s3cr3t"));
    assert!(!source.redacted_url().contains("s3cr3t"));
    let rt = runtime();
    let started = std::time::Instant::now();
    let error = rt.block_on(source.resolve("main")).unwrap_err();
    assert_eq!(error.git_kind(), Some(GitErrorKind::Transient), "{error}");
    let text = format!("{error} {error:?}");
    let mut chain = String::new();
    let mut cause: Option<&dyn std::error::Error> = Some(&error);
    while let Some(error) = cause {
        chain.push_str(&error.to_string());
        chain.push('\n');
        cause = error.source();
    }
    assert!(!text.contains("s3cr3t"), "{text}");
    assert!(!chain.contains("s3cr3t"), "{chain}");
    assert!(text.contains("gave up after 3 attempts"), "{text}");
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
}

#[test]
fn credentials_are_never_sent_over_plain_http() {
    let dir = tempfile::tempdir().unwrap();
    for config in [
        GitSourceConfig::new("http://u:pw@127.0.0.1:1/r.git", dir.path()),
        GitSourceConfig::new("http://127.0.0.1:1/r.git", dir.path()).with_auth(
            stoker_core::GitAuth::Token {
                token_file: dir.path().join("t"),
            },
        ),
    ] {
        let error = GitSource::new(config).unwrap_err();
        assert_eq!(error.git_kind(), Some(GitErrorKind::Config), "{error}");
        assert!(error.to_string().contains("https://"), "{error}");
        assert!(!error.to_string().contains("pw@"), "{error}");
    }
}

#[test]
fn resolves_over_git_daemon() {
    let fixture = Fixture::new();
    let (_daemon, source) = fixture.daemon_source();
    let rt = runtime();
    assert_eq!(
        rt.block_on(source.resolve("v1")).unwrap().id,
        fixture.rev("main")
    );
    let missing = rt.block_on(source.resolve("nope")).unwrap_err();
    assert_eq!(missing.git_kind(), Some(GitErrorKind::RefNotFound));
}
