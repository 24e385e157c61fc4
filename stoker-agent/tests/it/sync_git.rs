//! `stoker-agent sync` reading `spec.git` from a real Git repository (loopback servers from
//! stoker-testkit, `file://`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use stoker_testkit::repo::Repo;

use crate::cli_support::ok;

const MANIFEST: &str = r#"apiVersion: stoker.io/v1alpha1
kind: GatewaySync
metadata: {name: plant, namespace: ignition}
spec:
  git:
    repo: REPO
    ref: main
AUTH
  sync:
    profiles:
      default:
        mappings:
          - source: "services/{{.GatewayName}}"
            destination: projects
          - source: versions.json
            destination: .versions.json
            template: true
"#;

struct Setup {
    _dir: tempfile::TempDir,
    root: PathBuf,
    repo: Repo,
}

impl Setup {
    fn new(auth: &str) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        let repo = Repo::init(&root.join("repo.git")).unwrap();
        repo.commit(
            "main",
            &[
                ("services/site1/a/project.json", b"{}".as_slice()),
                ("services/site1/a/view.json", b"{\"v\": 1}"),
                (
                    "versions.json",
                    b"{\"commit\": \"{{.Commit}}\", \"ref\": \"{{.Ref}}\"}",
                ),
            ],
            "first",
        )
        .unwrap();
        let manifest = MANIFEST
            .replace("REPO", &repo.file_url())
            .replace("AUTH", auth);
        std::fs::write(root.join("gs.yaml"), manifest).unwrap();
        Setup {
            _dir: dir,
            root,
            repo,
        }
    }

    fn sync(&self, extra: &[&str]) -> Output {
        sync_in(&self.root, extra)
            .output()
            .expect("run stoker-agent")
    }

    /// A second commit on `main`: `view.json` becomes `{"v": 2}`.
    fn commit_view_2(&self) {
        self.repo
            .commit(
                "main",
                &[("services/site1/a/view.json", b"{\"v\": 2}".as_slice())],
                "second",
            )
            .unwrap();
    }

    fn live(&self, path: &str) -> PathBuf {
        self.root.join("live").join(path)
    }
}

/// `stoker-agent sync` of `gs.yaml` in `root` into `live/` for gateway `site1`, with `extra`;
/// no Git credentials come from the environment.
fn sync_in(root: &Path, extra: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_stoker-agent"));
    command
        .args([
            "sync",
            "--config",
            "gs.yaml",
            "--dest",
            "live",
            "--cache-dir",
            "cache",
            "--gateway-name",
            "site1",
        ])
        .args(extra)
        .current_dir(root)
        .env_remove("GIT_TOKEN_FILE")
        .env_remove("GIT_SSH_KEY_FILE")
        .env_remove("GIT_KNOWN_HOSTS_FILE")
        .env_remove("GITHUB_APP_KEY_FILE");
    command
}

fn failure(output: &Output) -> String {
    assert!(!output.status.success(), "expected a failure");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap()
}

#[test]
fn syncs_spec_git_then_only_what_the_next_commit_changed() {
    let setup = Setup::new("");
    let first = setup.repo.rev_parse("main").unwrap();
    let text = ok(&setup.sync(&[]));
    assert!(text.contains("3 added"), "{text}");
    assert_eq!(read(&setup.live("projects/a/view.json")), "{\"v\": 1}");
    let versions = read(&setup.live(".versions.json"));
    assert!(
        versions.contains(&first) && versions.contains("\"ref\": \"main\""),
        "{versions}"
    );
    // The cache is a bare repository: no checkout anywhere.
    assert!(setup.root.join("cache/git").is_dir());

    setup.commit_view_2();
    let text = ok(&setup.sync(&[]));
    assert!(
        text.contains("0 added, 2 modified, 0 deleted, 1 unchanged"),
        "{text}"
    );
    assert_eq!(read(&setup.live("projects/a/view.json")), "{\"v\": 2}");
}

#[test]
fn a_new_commit_leaves_hand_edits_elsewhere_to_the_resync_unless_full_drift_check() {
    for full_drift_check in [false, true] {
        let setup = Setup::new("");
        ok(&setup.sync(&[]));
        // Files written in the manifest's own clock tick are checked by every sync until a
        // resync in a later tick records them: let that happen first.
        std::thread::sleep(std::time::Duration::from_millis(20));
        ok(&setup.sync(&[]));
        // Edited by hand, in a file the next commit does not touch.
        std::fs::write(setup.live("projects/a/project.json"), "edited by hand").unwrap();
        setup.commit_view_2();
        let flags: &[&str] = if full_drift_check {
            &["--full-drift-check"]
        } else {
            &[]
        };
        let text = ok(&setup.sync(flags));
        assert_eq!(read(&setup.live("projects/a/view.json")), "{\"v\": 2}");
        if full_drift_check {
            assert!(text.contains("0 added, 3 modified, 0 deleted"), "{text}");
            assert_eq!(read(&setup.live("projects/a/project.json")), "{}");
        } else {
            // Only the commit's paths (and the template reading the commit) were planned.
            assert!(text.contains("0 added, 2 modified, 0 deleted"), "{text}");
            assert_eq!(
                read(&setup.live("projects/a/project.json")),
                "edited by hand"
            );
        }
        // The next sync of the same commit compares everything.
        let text = ok(&setup.sync(&[]));
        assert_eq!(read(&setup.live("projects/a/project.json")), "{}");
        let expected = if full_drift_check {
            "0 added, 0 modified, 0 deleted"
        } else {
            "0 added, 1 modified, 0 deleted"
        };
        assert!(text.contains(expected), "{text}");
    }
}

#[test]
fn ref_flag_syncs_a_tag_and_names_a_missing_ref() {
    let setup = Setup::new("");
    setup.repo.tag("v1.0.0", "main").unwrap();
    setup.commit_view_2();
    ok(&setup.sync(&["--ref", "v1.0.0"]));
    assert_eq!(read(&setup.live("projects/a/view.json")), "{\"v\": 1}");
    assert!(read(&setup.live(".versions.json")).contains("\"ref\": \"v1.0.0\""));

    let err = failure(&setup.sync(&["--ref", "no-such-branch"]));
    assert!(
        err.contains("no-such-branch") && err.contains("repo.git"),
        "{err}"
    );
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
}

#[test]
fn manifest_auth_needs_the_matching_secret_file() {
    let setup = Setup::new("    auth:\n      token:\n        secretRef: {name: git, key: token}");
    let err = failure(&setup.sync(&[]));
    assert!(
        err.contains("--git-token-file") && err.contains("spec.git.auth.token"),
        "{err}"
    );

    let two = Setup::new(
        "    auth:\n      token:\n        secretRef: {name: git, key: token}\n      sshKey:\n        secretRef: {name: git, key: id}",
    );
    let err = failure(&two.sync(&[]));
    assert!(err.contains("exactly one"), "{err}");
}

#[test]
fn token_is_refused_over_plain_http_and_never_printed() {
    let setup = Setup::new("");
    let servers = stoker_testkit::git::servers();
    let remote = servers.new_repo("agent-token");
    remote
        .commit(
            "main",
            &[("services/site1/a/project.json", b"{}".as_slice())],
            "first",
        )
        .unwrap();
    let manifest = MANIFEST
        .replace("REPO", &servers.http_token_url(&remote))
        .replace("AUTH", "");
    std::fs::write(setup.root.join("gs.yaml"), manifest).unwrap();
    std::fs::write(setup.root.join("token"), format!("{}\n", servers.token())).unwrap();
    let err = failure(&setup.sync(&["--git-token-file", "token", "--git-attempts", "1"]));
    assert!(err.contains("http://"), "{err}");
    assert!(!err.contains(servers.token()), "the token leaked: {err}");
}

/// Like `git`, the one-shot command trusts `~/.ssh/known_hosts` when no known_hosts file is
/// given: the right key there lets the sync through, a wrong one is refused naming the file,
/// and without the file the error names the flags.
#[test]
fn ssh_trusts_the_users_known_hosts_without_a_known_hosts_file() {
    let servers = stoker_testkit::git::servers();
    let ssh = servers.ssh();
    let repo = servers.new_repo("cli-known-hosts");
    repo.commit(
        "main",
        &[
            ("services/site1/a/project.json", b"{}".as_slice()),
            ("versions.json", b"{}"),
        ],
        "first",
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let manifest = MANIFEST
        .replace("REPO", &servers.ssh_url(&repo))
        .replace("AUTH", "");
    std::fs::write(root.join("gs.yaml"), manifest).unwrap();
    let home = root.join("home");
    std::fs::create_dir_all(home.join(".ssh")).unwrap();
    let run = || {
        sync_in(
            root,
            &[
                "--git-ssh-key-file",
                ssh.key.to_str().unwrap(),
                "--git-attempts",
                "1",
            ],
        )
        .env("HOME", &home)
        .output()
        .expect("run stoker-agent")
    };

    let err = failure(&run());
    assert!(err.contains("--git-known-hosts-file FILE"), "{err}");
    assert!(err.contains("--git-insecure-skip-host-key-check"), "{err}");

    std::fs::copy(&ssh.wrong_known_hosts, home.join(".ssh/known_hosts")).unwrap();
    let err = failure(&run());
    assert!(
        err.contains("could not be verified against") && err.contains(".ssh/known_hosts"),
        "{err}"
    );
    assert!(!root.join("live/projects/a/project.json").exists());

    std::fs::copy(&ssh.known_hosts, home.join(".ssh/known_hosts")).unwrap();
    let text = ok(&run());
    assert!(
        text.contains("1 added") || text.contains("2 added"),
        "{text}"
    );
    assert!(root.join("live/projects/a/project.json").is_file());
}
