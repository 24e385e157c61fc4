//! `stoker-agent sync` as a user runs it: the real binary on the example repository.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn agent(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stoker-agent"))
        .args(args)
        .current_dir(workspace())
        .env_remove("GATEWAY_NAME")
        .env_remove("RUST_LOG")
        // Keep the content-id cache out of the user's home directory.
        .env(
            "STOKER_CACHE_DIR",
            std::env::temp_dir().join("stoker-agent-cli-tests"),
        )
        .output()
        .expect("run stoker-agent")
}

/// The example manifest and repository, relative to the workspace.
const EXAMPLE_CONFIG: &str = "examples/gatewaysync.yaml";
const EXAMPLE_REPO: &str = "examples/repo";

/// `sync --config CONFIG --source SOURCE --dest DEST extra…`.
fn sync_args<'a>(
    config: &'a str,
    source: &'a str,
    dest: &'a str,
    extra: &[&'a str],
) -> Vec<&'a str> {
    let mut args = vec![
        "sync", "--config", config, "--source", source, "--dest", dest,
    ];
    args.extend_from_slice(extra);
    args
}

/// `stoker-agent sync` of the example repository into `dest`.
fn sync(dest: &Path, extra: &[&str]) -> Output {
    agent(&sync_args(
        EXAMPLE_CONFIG,
        EXAMPLE_REPO,
        dest.to_str().unwrap(),
        extra,
    ))
}

/// [`sync`], which must succeed.
fn sync_ok(dest: &Path, extra: &[&str]) -> Output {
    let output = sync(dest, extra);
    assert!(output.status.success(), "{}", stderr(&output));
    output
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn example_syncs_gateway_files_and_prints_a_summary() {
    let dest = tempfile::tempdir().unwrap();
    let output = sync_ok(dest.path(), &["--gateway-name", "site1"]);
    let text = stdout(&output);
    assert!(
        text.contains("11 added, 0 modified, 0 deleted, 0 unchanged"),
        "{text}"
    );
    assert!(text.contains("projects: global, site1-hmi"), "{text}");
    assert!(text.contains("+ projects/site1-hmi/project.json"), "{text}");

    let live = dest.path();
    assert!(live.join("projects/site1-hmi/project.json").is_file());
    assert!(!live.join("projects/site2-hmi").exists());
    // Content template and JSON patch with typed values.
    let versions: serde_json::Value =
        serde_json::from_slice(&std::fs::read(live.join(".versions.json")).unwrap()).unwrap();
    assert_eq!(versions["gateway"], "site1");
    assert_eq!(versions["ref"], "main");
    let db: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            live.join("config/resources/core/ignition/database-connection/plantdb/config.json"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(db["connectURL"], "jdbc:postgresql://db-site1:5432/plant");
    assert_eq!(db["pool"]["maxActive"], 16);
    assert_eq!(db["pool"]["validate"], true);
}

#[test]
fn resources_and_unmanaged_files_survive_a_profile_switch() {
    let dest = tempfile::tempdir().unwrap();
    let live = dest.path();
    assert!(sync(live, &["--gateway-name", "site1"]).status.success());
    let protected = live.join("config/resources/core/.resources/cache.bin");
    std::fs::create_dir_all(protected.parent().unwrap()).unwrap();
    std::fs::write(&protected, b"\0gateway-owned").unwrap();
    std::fs::write(live.join("local-notes.txt"), "mine").unwrap();
    std::fs::create_dir_all(live.join("logs")).unwrap();
    std::fs::write(live.join("logs/wrapper.log"), "log").unwrap();

    let output = sync_ok(live, &["--gateway-name", "site1", "--profile", "dev"]);
    let text = stdout(&output);
    assert!(
        text.contains("- config/resources/core/ignition/database-connection/plantdb/config.json"),
        "{text}"
    );
    assert!(
        text.contains("+ config/resources/dev/ignition/logging/config.json"),
        "{text}"
    );
    // Excluded by the dev profile (**/*.md) and by default (**/.gitkeep).
    assert!(!live.join("config/resources/dev/README.md").exists());
    assert!(!live.join("config/resources/dev/ignition/.gitkeep").exists());
    // Emptied directory below a managed root is gone.
    assert!(
        !live
            .join("config/resources/core/ignition/database-connection")
            .exists()
    );
    assert_eq!(std::fs::read(&protected).unwrap(), b"\0gateway-owned");
    assert_eq!(
        std::fs::read_to_string(live.join("local-notes.txt")).unwrap(),
        "mine"
    );
    assert_eq!(
        std::fs::read_to_string(live.join("logs/wrapper.log")).unwrap(),
        "log"
    );
}

#[test]
fn second_run_changes_nothing() {
    let dest = tempfile::tempdir().unwrap();
    assert!(
        sync(dest.path(), &["--gateway-name", "site2"])
            .status
            .success()
    );
    let output = sync(dest.path(), &["--gateway-name", "site2"]);
    assert!(output.status.success());
    assert!(
        stdout(&output).contains("0 added, 0 modified, 0 deleted, 11 unchanged"),
        "{}",
        stdout(&output)
    );
}

#[test]
fn json_output_is_the_sync_report() {
    let dest = tempfile::tempdir().unwrap();
    let output = sync_ok(
        dest.path(),
        &["--gateway-name", "site2", "--output", "json"],
    );
    let report: stoker_core::SyncReport = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report.added.len(), 11);
    assert_eq!(report.profile, "default");
    assert_eq!(report.revision.reference.as_deref(), Some("main"));
    let versions = std::fs::read(dest.path().join(".versions.json")).unwrap();
    let added = report
        .added
        .iter()
        .find(|c| c.path == ".versions.json")
        .unwrap();
    assert_eq!(
        added.content_id,
        Some(stoker_core::ContentId::of_blob(&versions))
    );
}

#[test]
fn dry_run_writes_nothing_and_reports_the_same_changes() {
    let dest = tempfile::tempdir().unwrap();
    let live = dest.path().join("data");
    let dry = sync(
        &live,
        &["--gateway-name", "site1", "--dry-run", "-o", "json"],
    );
    assert!(dry.status.success(), "{}", stderr(&dry));
    assert!(!live.exists(), "a dry run must not create the destination");
    let dry: stoker_core::SyncReport = serde_json::from_slice(&dry.stdout).unwrap();
    assert!(dry.dry_run);
    let real = sync(&live, &["--gateway-name", "site1", "-o", "json"]);
    let real: stoker_core::SyncReport = serde_json::from_slice(&real.stdout).unwrap();
    assert_eq!(dry.added, real.added);
}

#[test]
fn missing_gateway_name_is_one_clear_line_naming_the_flag() {
    let dest = tempfile::tempdir().unwrap();
    let output = sync(dest.path(), &[]);
    assert!(!output.status.success());
    let err = stderr(&output);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.contains("--gateway-name") && err.contains("mappings[0].source"),
        "{err}"
    );
    assert!(
        std::fs::read_dir(dest.path()).unwrap().next().is_none(),
        "nothing written"
    );
}

#[test]
fn bad_inputs_name_the_input() {
    let dest = tempfile::tempdir().unwrap();
    let d = dest.path().to_str().unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            sync_args("examples/nope.yaml", EXAMPLE_REPO, d, &[]),
            "examples/nope.yaml",
        ),
        (
            sync_args(EXAMPLE_CONFIG, "examples/nope", d, &[]),
            "examples/nope",
        ),
        (
            sync_args(
                EXAMPLE_CONFIG,
                EXAMPLE_REPO,
                d,
                &["--profile", "prod", "--gateway-name", "x"],
            ),
            "\"prod\"",
        ),
        (
            sync_args(
                EXAMPLE_CONFIG,
                EXAMPLE_REPO,
                d,
                &["--gateway-name", "nosuchsite"],
            ),
            "services/nosuchsite/projects",
        ),
        (
            sync_args(
                EXAMPLE_CONFIG,
                EXAMPLE_REPO,
                d,
                &["--gateway-name", "../../etc"],
            ),
            "..",
        ),
    ];
    for (args, needle) in cases {
        let output = agent(&args);
        assert!(!output.status.success(), "{args:?}");
        let err = stderr(&output);
        assert!(
            err.starts_with("error: ") && err.contains(needle),
            "{args:?}: {err}"
        );
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    }
}

#[test]
fn manifest_typos_and_wrong_kinds_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let typo = dir.path().join("typo.yaml");
    std::fs::write(
        &typo,
        "apiVersion: stoker.io/v1alpha1\nkind: GatewaySync\nmetadata: {name: x}\nspec:\n  git: {repo: r, ref: main}\n  sync:\n    profiles:\n      default:\n        mappings:\n          - {source: a, destinaton: b}\n",
    )
    .unwrap();
    let wrong = dir.path().join("wrong.yaml");
    std::fs::write(
        &wrong,
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n",
    )
    .unwrap();
    let dest = dir.path().join("live");
    for (file, needle) in [
        (&typo, "destinaton"),
        (&wrong, "no document of kind GatewaySync"),
    ] {
        let output = agent(&sync_args(
            file.to_str().unwrap(),
            EXAMPLE_REPO,
            dest.to_str().unwrap(),
            &[],
        ));
        assert!(!output.status.success());
        let err = stderr(&output);
        assert!(
            err.contains(needle) && err.contains(file.to_str().unwrap()),
            "{err}"
        );
    }
}

#[test]
fn help_explains_the_sync_command() {
    let output = agent(&["sync", "--help"]);
    assert!(output.status.success());
    let text = stdout(&output);
    for flag in [
        "--config",
        "--dest",
        "--source",
        "--profile",
        "--gateway-name",
        "--var",
        "--dry-run",
        "--output",
    ] {
        assert!(text.contains(flag), "{flag} missing from --help:\n{text}");
    }
    assert!(text.contains("Exit status:"), "{text}");
    assert!(
        text.contains("3  files synced, but the gateway rescan is owed"),
        "{text}"
    );
    assert!(
        text.contains("4  another sync holds the lock on --dest"),
        "{text}"
    );
    assert!(text.contains("--wait[=<SECONDS>]"), "{text}");
}

/// No cause of a one-line error is printed twice (an I/O error's text used to appear once in
/// its context's message and once more as the printed source).
fn assert_no_repeated_sentence(err: &str) {
    let line = err.trim_end();
    let parts: Vec<&str> = line.split(": ").collect();
    for (i, part) in parts.iter().enumerate() {
        assert!(
            !parts[i + 1..].contains(part),
            "{part:?} is printed twice: {line}"
        );
    }
}

#[test]
fn a_file_system_error_prints_each_cause_once() {
    let dir = tempfile::tempdir().unwrap();
    // The destination lies below a regular file: creating it fails with ENOTDIR.
    std::fs::write(dir.path().join("file"), "x").unwrap();
    let dest = dir.path().join("file/live");
    let output = sync(&dest, &["--gateway-name", "site1"]);
    assert!(!output.status.success());
    let err = stderr(&output);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains(dest.to_str().unwrap()), "{err}");
    let os_error = std::io::Error::from_raw_os_error(20).to_string();
    assert_eq!(err.matches(&os_error).count(), 1, "{err}");
    assert_no_repeated_sentence(&err);

    // A manifest that does not exist: the same.
    let output = agent(&sync_args(
        "examples/nope.yaml",
        EXAMPLE_REPO,
        dest.to_str().unwrap(),
        &[],
    ));
    let err = stderr(&output);
    assert!(err.contains("examples/nope.yaml"), "{err}");
    assert_no_repeated_sentence(&err);
}

/// `stoker-agent sync --config MANIFEST --dest DEST extra…` from `dir`, with `HOME` there too (no
/// `~/.ssh/known_hosts` of the user's).
fn agent_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stoker-agent"))
        .args(args)
        .current_dir(dir)
        .env("HOME", dir)
        .env_remove("GATEWAY_NAME")
        .env_remove("RUST_LOG")
        .env_remove("GIT_KNOWN_HOSTS_FILE")
        .env_remove("GIT_SSH_KEY_FILE")
        .env_remove("GIT_TOKEN_FILE")
        .env("STOKER_CACHE_DIR", dir.join("cache"))
        .output()
        .expect("run stoker-agent")
}

/// `stoker-agent sync` run in `dir` (see [`agent_in`]) from the directory `source`.
fn sync_in(dir: &Path, config: &Path, source: &Path, dest: &Path, extra: &[&str]) -> Output {
    let args = sync_args(
        config.to_str().unwrap(),
        source.to_str().unwrap(),
        dest.to_str().unwrap(),
        extra,
    );
    agent_in(dir, &args)
}

fn one_error_line(output: &Output) -> String {
    assert!(!output.status.success(), "{}", stdout(output));
    let err = stderr(output);
    assert!(err.starts_with("error: "), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert_no_repeated_sentence(&err);
    err
}

#[test]
fn a_dest_that_is_a_file_or_a_dangling_symlink_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("file");
    std::fs::write(&file, "x").unwrap();
    let err = one_error_line(&sync(&file, &["--gateway-name", "site1"]));
    assert!(err.contains("is a regular file, not a directory"), "{err}");
    assert!(!err.contains("File exists"), "{err}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "x");

    let dangling = dir.path().join("dangling");
    std::os::unix::fs::symlink(dir.path().join("gone"), &dangling).unwrap();
    let err = one_error_line(&sync(&dangling, &["--gateway-name", "site1"]));
    assert!(err.contains("is a dangling symlink"), "{err}");
    assert!(err.contains("gone, which does not exist"), "{err}");
    assert!(!err.contains("File exists"), "{err}");

    let to_file = dir.path().join("to-file");
    std::os::unix::fs::symlink(&file, &to_file).unwrap();
    let err = one_error_line(&sync(&to_file, &["--gateway-name", "site1"]));
    assert!(
        err.contains("which is a regular file, not a directory"),
        "{err}"
    );

    // A symlink to a directory is a directory.
    std::fs::create_dir(dir.path().join("real")).unwrap();
    let to_dir = dir.path().join("to-dir");
    std::os::unix::fs::symlink(dir.path().join("real"), &to_dir).unwrap();
    sync_ok(&to_dir, &["--gateway-name", "site1"]);
    assert!(dir.path().join("real/.versions.json").is_file());
}

#[test]
fn a_missing_or_empty_source_says_which() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("live");
    let manifest = workspace().join(EXAMPLE_CONFIG);
    let run = |source: &Path| {
        sync_in(
            dir.path(),
            &manifest,
            source,
            &dest,
            &["--gateway-name", "site1"],
        )
    };
    let missing = dir.path().join("nope");
    let err = one_error_line(&run(&missing));
    assert!(err.contains("nope: does not exist"), "{err}");

    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let err = one_error_line(&run(&empty));
    assert!(err.contains("empty: is an empty directory"), "{err}");
    assert!(!err.contains("does not exist"), "{err}");

    let file = dir.path().join("file");
    std::fs::write(&file, "x").unwrap();
    let err = one_error_line(&run(&file));
    assert!(err.contains("is a regular file, not a directory"), "{err}");
    assert!(!dest.exists(), "nothing written");
}

/// A manifest whose `spec.git.repo` is `repo`.
fn git_manifest(dir: &Path, repo: &str) -> PathBuf {
    let path = dir.join("gs.yaml");
    std::fs::write(
        &path,
        format!(
            "apiVersion: stoker.io/v1alpha1\nkind: GatewaySync\nmetadata: {{name: plant}}\nspec:\n  git: {{repo: '{repo}', ref: main}}\n  sync:\n    profiles:\n      default:\n        mappings:\n          - {{source: projects, destination: projects}}\n"
        ),
    )
    .unwrap();
    path
}

/// `stoker-agent sync --config MANIFEST --dest live extra…` in `dir` (see [`agent_in`]): from
/// the manifest's Git repository, as no `--source` is given.
fn sync_from_git_in(dir: &Path, manifest: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "sync",
        "--config",
        manifest.to_str().unwrap(),
        "--dest",
        "live",
    ];
    args.extend_from_slice(extra);
    agent_in(dir, &args)
}

#[test]
fn an_ext_url_is_a_protocol_that_is_not_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let pwned = dir.path().join("pwned");
    let manifest = git_manifest(
        dir.path(),
        &format!("ext::sh -c touch% {}", pwned.display()),
    );
    let err = one_error_line(&sync_from_git_in(dir.path(), &manifest, &[]));
    assert!(err.contains("the ext:: protocol is not allowed"), "{err}");
    assert!(!err.contains("credentials"), "{err}");
    assert!(!pwned.exists(), "the command ran");
}

#[test]
fn ssh_without_known_hosts_names_the_flags() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens there: the check comes before any connection.
    let manifest = git_manifest(dir.path(), "ssh://git@127.0.0.1:1/plant.git");
    std::fs::write(dir.path().join("key"), "not really a key\n").unwrap();
    let err = one_error_line(&sync_from_git_in(
        dir.path(),
        &manifest,
        &["--git-ssh-key-file", "key"],
    ));
    assert!(err.contains("--git-known-hosts-file FILE"), "{err}");
    assert!(err.contains("--git-insecure-skip-host-key-check"), "{err}");
    assert!(err.contains("host key"), "{err}");
}

#[test]
fn text_output_escapes_paths_so_a_file_name_cannot_forge_a_line() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = git_manifest(dir.path(), "https://example.invalid/unused.git");
    let demo = dir.path().join("repo/projects/demo");
    std::fs::create_dir_all(&demo).unwrap();
    std::fs::write(demo.join("x\n+ forged"), "{}").unwrap();
    std::fs::write(demo.join("esc\x1b[31m"), "{}").unwrap();
    let run = |dest: &str, output: &str| {
        agent_in(
            dir.path(),
            &sync_args(
                manifest.to_str().unwrap(),
                "repo",
                dest,
                &["--output", output],
            ),
        )
    };
    let output = run("live", "text");
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(
        text.lines()
            .all(|line| !line.trim_start().starts_with("+ forged")),
        "{text}"
    );
    assert!(text.contains("  + projects/demo/x\\n+ forged\n"), "{text}");
    assert!(
        text.contains("  + projects/demo/esc\\u{1b}[31m\n"),
        "{text}"
    );
    assert!(!text.contains('\x1b'), "{text}");
    assert!(dir.path().join("live/projects/demo/x\n+ forged").is_file());

    // JSON carries the real names.
    let output = run("live-json", "json");
    assert!(output.status.success(), "{}", stderr(&output));
    let report: stoker_core::SyncReport = serde_json::from_slice(&output.stdout).unwrap();
    let paths: Vec<&str> = report.added.iter().map(|c| c.path.as_str()).collect();
    assert!(paths.contains(&"projects/demo/x\n+ forged"), "{paths:?}");
    assert!(paths.contains(&"projects/demo/esc\x1b[31m"), "{paths:?}");
}

#[test]
fn version_names_the_commit_and_help_the_sidecar() {
    let output = agent(&["--version"]);
    assert!(output.status.success());
    let version = stdout(&output);
    assert!(
        version.starts_with(&format!("stoker-agent {}", env!("CARGO_PKG_VERSION"))),
        "{version}"
    );
    // Built from a Git checkout (as here): the commit is named.
    let head = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(workspace())
        .output()
        .ok()
        .filter(|h| h.status.success());
    if let Some(head) = head {
        let head = String::from_utf8_lossy(&head.stdout).trim().to_owned();
        assert!(
            version.contains(&format!("({head})")),
            "{version} vs {head}"
        );
    }
    let output = agent(&["--help"]);
    let help = stdout(&output);
    assert!(!help.contains("to come"), "{help}");
    assert!(help.contains("sidecar"), "{help}");
}

#[test]
fn json_output_reports_errors_as_json() {
    let dest = tempfile::tempdir().unwrap();
    let output = agent(&sync_args(
        EXAMPLE_CONFIG,
        "examples/nope",
        dest.path().to_str().unwrap(),
        &["--output", "json"],
    ));
    assert_eq!(output.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", stdout(&output)));
    let error = json["error"].as_str().unwrap();
    assert!(error.contains("examples/nope: does not exist"), "{json}");
    assert!(json["causes"].is_array(), "{json}");
    assert_eq!(json["causes"][0], error);
    assert_eq!(json["exitStatus"], 1);
    // The line on stderr as well.
    assert!(stderr(&output).contains("does not exist"));
}

#[test]
fn text_output_of_a_source_directory_shows_a_fingerprint_not_a_ref() {
    let dest = tempfile::tempdir().unwrap();
    let output = sync_ok(dest.path(), &["--gateway-name", "site1"]);
    let text = stdout(&output);
    let first = text.lines().next().unwrap();
    assert!(
        first.starts_with("synced directory examples/repo (fingerprint "),
        "{first}"
    );
    assert!(first.contains(", not a commit)"), "{first}");
    assert!(!first.contains("(main)"), "{first}");
}

/// Holds the engine's lock on `live` as another sync would (an advisory lock on
/// `live/.stoker/lock`) until dropped.
fn hold_lock(live: &Path) -> std::fs::File {
    std::fs::create_dir_all(live.join(".stoker")).unwrap();
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(live.join(".stoker/lock"))
        .unwrap();
    file.lock().unwrap();
    file
}

#[test]
fn a_held_lock_has_its_own_exit_status_and_wait_waits_for_it() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("live");
    let lock = hold_lock(&live);

    let output = sync(&live, &["--gateway-name", "site1"]);
    assert_eq!(output.status.code(), Some(4), "{}", stderr(&output));
    let err = stderr(&output);
    assert!(err.contains("another sync is running on"), "{err}");
    assert!(err.contains("pass --wait[=SECONDS]"), "{err}");
    assert!(!live.join(".versions.json").exists());

    let output = sync(&live, &["--gateway-name", "site1", "--output", "json"]);
    assert_eq!(output.status.code(), Some(4));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["exitStatus"], 4);

    let started = std::time::Instant::now();
    let output = sync(&live, &["--gateway-name", "site1", "--wait=1"]);
    assert_eq!(output.status.code(), Some(4), "{}", stderr(&output));
    assert!(started.elapsed() >= std::time::Duration::from_secs(1));
    let err = stderr(&output);
    assert!(err.contains("gave up after waiting 1 s"), "{err}");

    // Released while a sync waits: it goes ahead.
    let started = std::time::Instant::now();
    let waiting = std::thread::spawn({
        let live = live.clone();
        move || sync(&live, &["--gateway-name", "site1", "--wait=60"])
    });
    std::thread::sleep(std::time::Duration::from_millis(1500));
    drop(lock);
    let output = waiting.join().unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(started.elapsed() >= std::time::Duration::from_millis(1500));
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
    assert!(live.join(".versions.json").is_file());

    // --wait without a value parses (and a free lock is not waited for).
    sync_ok(&live, &["--wait", "--gateway-name", "site1"]);
}

#[test]
fn logs_to_a_pipe_carry_no_colour_codes() {
    let dest = tempfile::tempdir().unwrap();
    // stderr is a pipe here.
    let output = sync_ok(
        dest.path(),
        &["--gateway-name", "site1", "--log-level", "debug"],
    );
    let err = stderr(&output);
    assert!(err.contains("resolved"), "logs expected: {err}");
    assert!(!err.contains('\x1b'), "ANSI codes in: {err:?}");
}

/// A directory `dir/name` holding a copy of the example repository.
fn copy_of_examples(dir: &Path, name: &str) -> PathBuf {
    let copy = dir.join(name);
    let status = Command::new("cp")
        .arg("-a")
        .arg(workspace().join(EXAMPLE_REPO))
        .arg(&copy)
        .status()
        .unwrap();
    assert!(status.success());
    copy
}

/// Issue 15 item 6: `/`, the home directory and a destination overlapping the source or the
/// cache are refused, writing nothing, unless `--allow-dangerous-dest` is given.
#[test]
fn dangerous_destinations_are_refused_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    std::fs::create_dir(&work).unwrap();
    let source = copy_of_examples(&work, "repo");
    let config = workspace().join(EXAMPLE_CONFIG);
    let run = |dest: &Path, extra: &[&str]| {
        let mut args = vec!["--gateway-name", "site1"];
        args.extend_from_slice(extra);
        sync_in(dir.path(), &config, &source, dest, &args)
    };
    let cache = dir.path().join("cache");
    for (dest, expected) in [
        (
            PathBuf::from("/"),
            "--dest /: is the root of the file system".to_owned(),
        ),
        (
            dir.path().to_path_buf(),
            format!(
                "is your home directory ({})",
                dir.path().canonicalize().unwrap().display()
            ),
        ),
        (
            source.clone(),
            format!(
                "is the --source directory ({})",
                source.canonicalize().unwrap().display()
            ),
        ),
        (
            source.join("out/data"),
            "lies inside the --source directory".to_owned(),
        ),
        (work.clone(), "contains the --source directory".to_owned()),
        (
            cache.join("data"),
            "lies inside the cache directory (--cache-dir)".to_owned(),
        ),
    ] {
        let before = std::fs::read_dir(dir.path()).unwrap().count();
        let err = one_error_line(&run(&dest, &[]));
        assert!(
            err.contains(&expected) && err.contains("pass --allow-dangerous-dest"),
            "{}: {err}",
            dest.display()
        );
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), before);
    }
    assert!(!source.join("out").exists(), "nothing written");
    // Told twice, a destination inside the source is synced.
    let output = run(&source.join("out/data"), &["--allow-dangerous-dest"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        source
            .join("out/data/projects/site1-hmi/project.json")
            .is_file()
    );
}

/// Issue 15 item 8: `--var` keys are identifiers, as the manifest's `vars` are.
#[test]
fn var_keys_must_be_identifiers() {
    let dest = tempfile::tempdir().unwrap();
    let output = sync(
        dest.path(),
        &["--gateway-name", "site1", "--var", "db-host=x"],
    );
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    let err = stderr(&output);
    assert!(
        err.contains("\"db-host\" is not an identifier ([A-Za-z_][A-Za-z0-9_]*)"),
        "{err}"
    );
    assert_eq!(std::fs::read_dir(dest.path()).unwrap().count(), 0);
}

/// Issue 15 item 6: a mapping to `.` leaves what Stoker did not write (listed in a warning)
/// until `--adopt` is given.
#[test]
fn a_whole_directory_mapping_deletes_what_stoker_did_not_write_only_with_adopt() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("repo");
    std::fs::create_dir_all(&source).unwrap();
    std::fs::write(source.join("a.json"), "{}").unwrap();
    let config = dir.path().join("gs.yaml");
    std::fs::write(
        &config,
        "apiVersion: stoker.io/v1alpha1\nkind: GatewaySync\nmetadata: {name: plant}\nspec:\n  git: {repo: 'https://example.invalid/x.git', ref: main}\n  sync:\n    profiles:\n      default:\n        mappings:\n          - {source: '.', destination: '.'}\n",
    )
    .unwrap();
    let live = dir.path().join("live");
    std::fs::create_dir_all(live.join("db")).unwrap();
    std::fs::write(live.join("db/config.idb"), "the gateway's").unwrap();
    let run = |extra: &[&str]| sync_in(dir.path(), &config, &source, &live, extra);
    let output = run(&[]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(
        text.contains("warning: 1 file(s) Stoker did not write are not in the repository and were left in place")
            && text.contains("\"db/config.idb\""),
        "{text}"
    );
    assert!(live.join("db/config.idb").is_file());
    let output = run(&["--adopt"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("- db/config.idb"),
        "{}",
        stdout(&output)
    );
    assert!(!live.join("db").exists());
}
