//! `stoker-agent sync --gateway-url`: the real binary against the Ignition gateway simulator
//! (stoker-testkit) on loopback: Designer-session policies, the rescan after a sync that
//! changed files, failures, HTTPS.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use stoker_testkit::gateway_sim::{Endpoint, Fault, GatewaySim, SimConfig, TestCerts};

use crate::cli_support::ok;

const KEY: &str = "stoker-agent-test:c2VjcmV0LWtleQ";

const MANIFEST: &str = r#"apiVersion: stoker.io/v1alpha1
kind: GatewaySync
metadata: {name: plant, namespace: ignition}
spec:
  git:
    repo: https://example.invalid/unused.git
    ref: main
  sync:
    profiles:
      default:
        POLICY
        mappings:
          - source: projects
            destination: projects
"#;

struct Setup {
    dir: tempfile::TempDir,
    sim: GatewaySim,
}

impl Setup {
    fn new(policy: &str) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        Setup::in_dir(dir, policy, SimConfig::new().with_api_key(KEY))
    }

    fn in_dir(dir: tempfile::TempDir, policy: &str, config: SimConfig) -> Setup {
        let root = dir.path();
        let policy = if policy.is_empty() {
            String::new()
        } else {
            format!("designerSessionPolicy: {policy}")
        };
        std::fs::write(root.join("gs.yaml"), MANIFEST.replace("POLICY", &policy)).unwrap();
        std::fs::create_dir_all(root.join("repo/projects/demo")).unwrap();
        std::fs::write(root.join("repo/projects/demo/project.json"), "{}").unwrap();
        std::fs::write(root.join("api-key"), format!("{KEY}\n")).unwrap();
        Setup {
            sim: GatewaySim::start(config).unwrap(),
            dir,
        }
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn live(&self, path: &str) -> PathBuf {
        self.root().join("live").join(path)
    }

    /// `stoker-agent sync` from `repo/` into `live/`, with the gateway flags and `extra`.
    fn sync(&self, extra: &[&str]) -> Output {
        self.sync_to(&self.sim.url(), extra)
    }

    /// [`Setup::sync`] with another gateway URL.
    fn sync_to(&self, url: &str, extra: &[&str]) -> Output {
        let mut args = vec![
            "--cache-dir",
            "cache",
            "--gateway-url",
            url,
            "--gateway-api-key-file",
            "api-key",
        ];
        args.extend_from_slice(extra);
        self.sync_with(&args)
    }

    /// `stoker-agent sync` from `repo/` into `live/` with only the flags `args`.
    fn sync_with(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_stoker-agent"))
            .args([
                "sync", "--config", "gs.yaml", "--source", "repo", "--dest", "live",
            ])
            .args(args)
            .current_dir(self.root())
            .env_remove("GATEWAY_NAME")
            .env_remove("RUST_LOG")
            .env_remove("STOKER_LOG")
            .output()
            .expect("run stoker-agent")
    }

    fn endpoints(&self) -> Vec<Endpoint> {
        self.sim
            .calls()
            .iter()
            .map(|c| c.endpoint().expect("a known endpoint"))
            .collect()
    }
}

fn failure(output: &Output) -> (String, String) {
    assert!(
        !output.status.success(),
        "expected a failure; stdout: {}",
        String::from_utf8_lossy(&output.stdout)
    );
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn a_sync_that_changed_files_asks_for_the_rescan_and_reports_it() {
    let setup = Setup::new("");
    let text = ok(&setup.sync(&[]));
    assert!(text.contains("1 added"), "{text}");
    assert!(
        text.contains("gateway: rescan requested (scan/projects 200, scan/config 200)"),
        "{text}"
    );
    assert!(setup.live("projects/demo/project.json").is_file());
    assert_eq!(
        setup.endpoints(),
        [
            Endpoint::Designers,
            Endpoint::ScanProjects,
            Endpoint::ScanConfig
        ]
    );
    assert!(setup.sim.calls().iter().all(|c| c.authorized));

    // Nothing changed: the sessions are checked, no rescan.
    setup.sim.clear_calls();
    let text = ok(&setup.sync(&[]));
    assert!(
        text.contains("gateway: no rescan needed (nothing changed)"),
        "{text}"
    );
    assert_eq!(setup.endpoints(), [Endpoint::Designers]);

    // A dry run asks the gateway nothing.
    setup.sim.clear_calls();
    std::fs::write(setup.root().join("repo/projects/demo/view.json"), "{}").unwrap();
    let text = ok(&setup.sync(&["--dry-run"]));
    assert!(text.contains("gateway: no rescan (dry run)"), "{text}");
    assert!(setup.sim.calls().is_empty());

    // JSON output carries the gateway's part.
    let output = setup.sync(&["--output", "json"]);
    let json: serde_json::Value = serde_json::from_str(&ok(&output)).unwrap();
    assert_eq!(json["added"][0]["path"], "projects/demo/view.json");
    assert_eq!(json["gateway"]["url"], setup.sim.url());
    assert_eq!(
        json["gateway"]["scan"]["projects"]["endpoint"],
        "/data/api/v1/scan/projects"
    );
    assert_eq!(json["gateway"]["scan"]["config"]["status"], 200);
    assert_eq!(json["gateway"]["designerSessions"], serde_json::json!([]));
}

#[test]
fn open_designer_sessions_with_policy_proceed_are_reported_and_synced() {
    let setup = Setup::new("proceed");
    setup.sim.open_designer("alice", "demo");
    let text = ok(&setup.sync(&[]));
    assert!(
        text.contains("gateway: 1 Designer session(s) open: alice (project demo"),
        "{text}"
    );
    assert!(text.contains("rescan requested"), "{text}");
    assert!(setup.live("projects/demo/project.json").is_file());
}

#[test]
fn open_designer_sessions_with_policy_fail_stop_the_sync() {
    let setup = Setup::new("fail");
    setup.sim.open_designer("alice", "demo");
    let (_, stderr) = failure(&setup.sync(&[]));
    assert!(stderr.contains("alice"), "{stderr}");
    assert!(!setup.live("projects/demo/project.json").exists());
    assert_eq!(setup.endpoints(), [Endpoint::Designers]);

    // Closed: the sync goes ahead.
    setup.sim.close_all_designers();
    let text = ok(&setup.sync(&[]));
    assert!(text.contains("rescan requested"), "{text}");
}

#[test]
fn a_failed_rescan_fails_the_command_after_reporting_the_files() {
    let setup = Setup::new("");
    setup
        .sim
        .set_fault(Endpoint::ScanProjects, Fault::status(500));
    let output = setup.sync(&[]);
    assert_eq!(output.status.code(), Some(3), "rescan owed");
    let (stdout, stderr) = failure(&output);
    assert!(stdout.contains("1 added"), "{stdout}");
    assert!(stdout.contains("gateway: rescan FAILED"), "{stdout}");
    assert!(stderr.contains("rescan owed, exit status 3"), "{stderr}");
    assert!(stderr.contains("/data/api/v1/scan/projects"), "{stderr}");
    assert!(stderr.contains("HTTP 500"), "{stderr}");
    assert!(stderr.contains("files were synced"), "{stderr}");
    assert!(setup.live("projects/demo/project.json").is_file());
    // Retried, and scan/config never asked.
    let scans = setup.sim.calls_to(Endpoint::ScanProjects).len();
    assert_eq!(scans, 3, "default: 3 attempts");
    assert!(setup.sim.calls_to(Endpoint::ScanConfig).is_empty());
}

#[test]
fn a_wrong_key_stops_before_writing_and_is_never_printed() {
    let setup = Setup::new("");
    std::fs::write(setup.root().join("api-key"), "stoker-agent-test:wrong\n").unwrap();
    let (stdout, stderr) = failure(&setup.sync(&[]));
    assert!(stderr.contains("rejected the API key"), "{stderr}");
    assert!(stderr.contains("/data/api/v1/designers"), "{stderr}");
    assert!(
        !stderr.contains("wrong") && !stdout.contains("wrong"),
        "{stderr}"
    );
    assert!(!setup.live("projects/demo/project.json").exists());
    assert_eq!(setup.endpoints(), [Endpoint::Designers], "not retried");
}

#[test]
fn gateway_flags_need_the_url() {
    let setup = Setup::new("");
    let output = setup.sync_with(&["--gateway-api-key-file", "api-key"]);
    let (_, stderr) = failure(&output);
    assert!(stderr.contains("--gateway-url"), "{stderr}");
    let help = Command::new(env!("CARGO_BIN_EXE_stoker-agent"))
        .args(["sync", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for flag in [
        "--gateway-url",
        "--gateway-api-key-file",
        "--gateway-ca-file",
        "--gateway-insecure-skip-tls-verify",
    ] {
        assert!(help.contains(flag), "{flag} missing from --help");
    }
}

#[test]
fn https_gateway_with_a_ca_file_or_the_insecure_opt_in() {
    let dir = tempfile::tempdir().unwrap();
    let certs = TestCerts::generate(&dir.path().join("tls")).unwrap();
    let setup = Setup::in_dir(
        dir,
        "",
        SimConfig::new()
            .with_api_key(KEY)
            .with_tls(&certs.cert_file, &certs.key_file),
    );
    assert!(setup.sim.url().starts_with("https://"));

    // Untrusted: refused before anything is written.
    let (_, stderr) = failure(&setup.sync(&[]));
    assert!(stderr.contains("certificate"), "{stderr}");
    assert!(!setup.live("projects/demo/project.json").exists());

    let ca = certs.ca_file.to_str().unwrap();
    let text = ok(&setup.sync(&["--gateway-ca-file", ca]));
    assert!(text.contains("rescan requested"), "{text}");

    std::fs::write(setup.root().join("repo/projects/demo/view.json"), "{}").unwrap();
    let output = setup.sync(&["--gateway-insecure-skip-tls-verify"]);
    let text = ok(&output);
    assert!(text.contains("rescan requested"), "{text}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("verification is disabled"), "{stderr}");
}

#[test]
fn a_gateway_that_is_down_gets_the_files_and_the_rescan_is_owed() {
    // Even under `fail`: no Designer can be connected to a gateway that is not running.
    let setup = Setup::new("fail");
    // A loopback port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let down = format!("http://127.0.0.1:{port}");

    let output = setup.sync_to(&down, &[]);
    assert_eq!(output.status.code(), Some(3), "rescan owed");
    let (stdout, stderr) = failure(&output);
    assert!(setup.live("projects/demo/project.json").is_file());
    assert!(stdout.contains("1 added"), "{stdout}");
    assert!(
        stdout.contains("gateway: not answering, not asked to rescan: RESCAN OWED"),
        "{stdout}"
    );
    assert!(
        stderr.contains("the files were synced, but the gateway is not answering"),
        "{stderr}"
    );
    assert!(stderr.contains("rescan owed, exit status 3"), "{stderr}");
    assert_eq!(
        stderr.lines().filter(|l| l.starts_with("error: ")).count(),
        1
    );

    // Nothing changed: nothing is owed.
    let output = setup.sync_to(&down, &[]);
    assert_eq!(output.status.code(), Some(0));
    let text = ok(&output);
    assert!(
        text.contains("no rescan needed (nothing changed)"),
        "{text}"
    );

    // JSON says it too.
    std::fs::write(setup.root().join("repo/projects/demo/view.json"), "{}").unwrap();
    let output = setup.sync_to(&down, &["--output", "json"]);
    assert_eq!(output.status.code(), Some(3));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["gateway"]["rescanOwed"], true);
    assert!(json["gateway"]["unreachable"].is_string(), "{json}");
    assert!(setup.live("projects/demo/view.json").is_file());

    // The gateway itself was never asked anything.
    assert!(setup.sim.calls().is_empty());
}
