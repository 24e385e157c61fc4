//! `stoker-agent sync`: one sync from a GatewaySync manifest into a directory.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::Deserialize as _;
use std::io::IsTerminal;
use stoker_core::spec::GatewaySyncDocument;

use stoker_core::git::{GitAuth, GitSource, GitSourceConfig, RetryPolicy};
use stoker_core::{GitErrorKind, LocalSource, Source, TemplateContext};
use stoker_sync::lock::LiveLock;
use stoker_sync::pipeline::{CheckFailure, Outcome, Pipeline, SyncJob};
use stoker_sync::{ApplyOptions, MergeStrategy, PlanOptions};

use crate::cli::{OutputFormat, SyncArgs};
use crate::gateway::GatewayOutcome;
use crate::output;

/// Reads a GatewaySync manifest; errors name the file.
pub fn load_manifest(path: &Path) -> anyhow::Result<GatewaySyncDocument> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading manifest {}", path.display()))?;
    let mut found = None;
    for document in serde_yaml::Deserializer::from_str(&text) {
        let value = serde_yaml::Value::deserialize(document)
            .with_context(|| format!("manifest {} is not valid YAML", path.display()))?;
        if value.get("kind").and_then(|k| k.as_str()) == Some(stoker_core::spec::KIND) {
            if found.is_some() {
                bail!(
                    "manifest {} holds several GatewaySync documents; keep one per file",
                    path.display()
                );
            }
            found = Some(value);
        }
    }
    let value = found.with_context(|| {
        format!(
            "manifest {} holds no document of kind GatewaySync",
            path.display()
        )
    })?;
    let document: GatewaySyncDocument = serde_yaml::from_value(value)
        .with_context(|| format!("manifest {} is not a valid GatewaySync", path.display()))?;
    document
        .check_type()
        .map_err(|message| anyhow::anyhow!("manifest {}: {message}", path.display()))?;
    Ok(document)
}

/// Runs `stoker-agent sync`.
#[allow(clippy::too_many_lines)] // the one-shot sync's steps in order, each short
pub async fn sync(args: SyncArgs) -> anyhow::Result<ExitCode> {
    let document = load_manifest(&args.config)?;
    let profile_name = document
        .profile_name(args.profile.as_deref())
        .map_err(|message| anyhow::anyhow!("manifest {}: {message}", args.config.display()))?
        .to_owned();
    let mut profile = document
        .spec
        .sync
        .resolve(&profile_name)
        .with_context(|| format!("manifest {}", args.config.display()))?;
    profile.adopt |= args.adopt;
    if document.spec.paused || profile.paused {
        eprintln!(
            "sync skipped: {} is paused (spec.paused or the profile's paused is true)",
            args.config.display()
        );
        return Ok(ExitCode::SUCCESS);
    }

    check_dest(&args.dest)?;
    let cache_dir = args
        .cache_dir
        .clone()
        .or_else(crate::cli::default_cache_dir);
    if !args.allow_dangerous_dest {
        check_dangerous_dest(&args.dest, args.source.as_deref(), cache_dir.as_deref())?;
    }
    let source: Arc<dyn Source> = match &args.source {
        Some(dir) => {
            check_source(dir)?;
            let mut source = LocalSource::new(dir);
            if let Some(cache_dir) = &cache_dir {
                source = source.with_id_cache(local_id_cache_file(cache_dir, dir));
            }
            Arc::new(source)
        }
        None => {
            let cache_dir = cache_dir.context(
                "no cache directory for Git objects: pass --cache-dir (neither XDG_CACHE_HOME nor HOME is set)",
            )?;
            Arc::new(git_source(&document, &args, &cache_dir)?)
        }
    };
    let reference = args
        .reference
        .clone()
        .unwrap_or_else(|| document.spec.git.reference.clone());
    let dry_run = args.dry_run || profile.dry_run;
    if profile.dry_run && !args.dry_run {
        eprintln!("dry run: profile {profile_name:?} has dryRun: true; nothing will be written");
    }

    let mut context = TemplateContext {
        gateway_name: args.gateway_name.clone(),
        cr_name: document.metadata.name.clone(),
        namespace: document.metadata.namespace.clone(),
        ..TemplateContext::default()
    };
    context.vars.extend(args.vars.iter().cloned());
    context.labels.extend(args.labels.iter().cloned());

    let strategy = MergeStrategy::new(ApplyOptions {
        fsync: args.fsync,
        io_threads: usize::from(args.io_threads),
        ..ApplyOptions::default()
    })
    .with_planning(PlanOptions {
        full_drift_check: args.full_drift_check,
    });
    let mut pipeline = Pipeline::new(source).with_strategy(strategy);
    let gateway = crate::gateway::from_args(&args)?;
    let url = gateway.as_ref().map(|gateway| gateway.url().to_owned());
    if let Some(gateway) = gateway {
        // No Designer can be connected to a gateway that is not running: sync its files.
        pipeline = pipeline
            .with_gateway(Arc::new(gateway))
            .with_check_failure(CheckFailure::SyncWhenDown);
    }
    let job = SyncJob {
        reference,
        profile,
        context,
        live: args.dest.clone(),
        dry_run,
    };
    let outcome = run_waiting_for_lock(&pipeline, job, args.wait.map(Duration::from_secs))
        .await
        .map_err(|error| hint(error, &args))?;
    let report = &outcome.report;

    let gateway = url.map(|url| GatewayOutcome::new(&url, &outcome));
    // Buffered: stdout is line-buffered, and a report of a few hundred changes would otherwise
    // cost a write(2) per line.
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    match args.output {
        OutputFormat::Text => {
            output::write_text(&mut out, report, &args.dest, args.source.as_deref())?;
            if let Some(gateway) = &gateway {
                output::write_gateway_text(&mut out, gateway, report)?;
            }
        }
        OutputFormat::Json => output::write_json(&mut out, report, gateway.as_ref())?,
    }
    std::io::Write::flush(&mut out)?;
    drop(out);
    // The files are synced and reported; a rescan that is owed has its own exit status.
    if let Some(message) = gateway.as_ref().and_then(rescan_owed_message) {
        eprintln!("error: {}", output::escape(&message));
        return Ok(crate::exit::code(crate::exit::RESCAN_OWED));
    }
    Ok(ExitCode::SUCCESS)
}

/// How often `--wait` looks at the lock on `--dest`.
pub const LOCK_POLL: Duration = Duration::from_millis(250);

/// Runs the job; with `wait`, a lock held by another sync is waited for, up to `wait`: the
/// lock is polled every [`LOCK_POLL`] (without resolving or fetching again), and the job is
/// run once it is free (and again should another sync take the lock first, until the
/// deadline). The last [`stoker_sync::Error::Locked`] is returned when the time is up.
pub async fn run_waiting_for_lock(
    pipeline: &Pipeline,
    job: SyncJob,
    wait: Option<Duration>,
) -> stoker_sync::Result<Outcome> {
    let deadline = wait.map(|wait| Instant::now() + wait);
    loop {
        if let Some(deadline) = deadline {
            wait_for_free_lock(&job.live, deadline).await;
        }
        match pipeline.run(job.clone()).await {
            Err(stoker_sync::Error::Locked { .. })
                if deadline.is_some_and(|deadline| Instant::now() < deadline) =>
            {
                tokio::time::sleep(LOCK_POLL).await;
            }
            outcome => return outcome,
        }
    }
}

/// Returns once no other sync holds the lock on `live`, or at `deadline`. Looks with
/// [`LiveLock::acquire_existing`] (creates nothing; the lock is released at once); any other
/// error counts as free, for the sync itself to report.
async fn wait_for_free_lock(live: &Path, deadline: Instant) {
    let mut logged = false;
    loop {
        let probe = live.to_path_buf();
        let held = matches!(
            tokio::task::spawn_blocking(move || LiveLock::acquire_existing(&probe)).await,
            Ok(Err(stoker_sync::Error::Locked { .. }))
        );
        let now = Instant::now();
        if !held || now >= deadline {
            return;
        }
        if !logged {
            tracing::warn!(live = %live.display(), left_s = (deadline - now).as_secs(), "another sync holds the lock on --dest; waiting (--wait)");
            logged = true;
        }
        tokio::time::sleep(LOCK_POLL.min(deadline - now)).await;
    }
}

/// The one line saying why the files were synced but the gateway did not rescan them, when it
/// did not (exit status [`RESCAN_OWED`](crate::exit::RESCAN_OWED)).
pub fn rescan_owed_message(outcome: &GatewayOutcome) -> Option<String> {
    if !outcome.rescan_owed {
        return None;
    }
    let why = match (&outcome.scan_error, &outcome.unreachable) {
        (Some(error), _) => format!("the gateway did not rescan them: {error}"),
        (None, Some(unreachable)) => format!(
            "the gateway is not answering, so it was not asked to rescan them: {unreachable}"
        ),
        (None, None) => "the gateway did not rescan them".to_owned(),
    };
    Some(format!(
        "the files were synced, but {why} (rescan owed, exit status {}: a gateway that is down reads them when it starts; a running one on its next scan, or rerun)",
        crate::exit::RESCAN_OWED
    ))
}

/// The one-shot command's Git retries: a person or a script is waiting, so transient failures
/// are retried after 4 s, 8 s, 16 s and 30 s, and no retry starts once a minute has passed
/// (the sidecar keeps the longer backoff of [`RetryPolicy::default`]).
pub fn one_shot_retry(max_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        initial_delay: Duration::from_secs(4),
        multiplier: 2,
        max_delay: Duration::from_secs(30),
        max_attempts,
        deadline: Some(Duration::from_secs(60)),
    }
}

/// The Git source for `spec.git`, with credentials from the flags.
pub fn git_source(
    document: &GatewaySyncDocument,
    args: &SyncArgs,
    cache_dir: &Path,
) -> anyhow::Result<GitSource> {
    let git = &document.spec.git;
    let wanted =
        match &git.auth {
            Some(auth) => Some(auth.method().map_err(|message| {
                anyhow::anyhow!("manifest {}: {message}", args.config.display())
            })?),
            None => None,
        };
    let auth = if let Some(token_file) = &args.git_token_file {
        GitAuth::Token {
            token_file: token_file.clone(),
        }
    } else if let Some(key_file) = &args.git_ssh_key_file {
        let known_hosts_file = args.git_known_hosts_file.clone().or_else(|| {
            if args.git_insecure_skip_host_key_check {
                return None;
            }
            let file = user_known_hosts()?;
            tracing::info!(known_hosts = %file.display(), "no --git-known-hosts-file: checking the SSH host key against the user's known_hosts, as git does");
            Some(file)
        });
        GitAuth::SshKey {
            key_file: key_file.clone(),
            known_hosts_file,
            accept_unknown_host_keys: args.git_insecure_skip_host_key_check,
        }
    } else if let Some(private_key_file) = &args.github_app_key_file {
        let app = git.auth.as_ref().and_then(|a| a.github_app.as_ref()).with_context(|| {
            format!(
                "--github-app-key-file needs spec.git.auth.githubApp (appId, installationId) in {}",
                args.config.display()
            )
        })?;
        GitAuth::GithubApp {
            app_id: app.app_id.to_string(),
            installation_id: app.installation_id,
            private_key_file: private_key_file.clone(),
            api_base_url: app
                .api_base_url
                .clone()
                .unwrap_or_else(|| "https://api.github.com".to_owned()),
        }
    } else {
        if let Some(method) = wanted {
            let flag = match method {
                "token" => "--git-token-file",
                "sshKey" => "--git-ssh-key-file (and --git-known-hosts-file)",
                _ => "--github-app-key-file",
            };
            bail!(
                "manifest {} uses spec.git.auth.{method}: pass {flag} with the secret's content",
                args.config.display()
            );
        }
        GitAuth::None
    };
    let mut config = GitSourceConfig::new(git.repo.clone(), cache_dir.join("git"))
        .with_auth(auth)
        .with_retry(one_shot_retry(args.git_attempts))
        .with_progress(std::io::stderr().is_terminal());
    if let Some(ca_file) = &args.git_ca_file {
        config = config.with_ca_file(ca_file);
    }
    Ok(GitSource::new(config)?)
}

/// Checks `--source`: a directory (or a symlink to one) with something in it. A missing, empty
/// or non-directory source is named as such; an empty one is refused, since syncing it would
/// delete every file the profile manages.
pub fn check_source(dir: &Path) -> anyhow::Result<()> {
    let metadata = match std::fs::metadata(dir) {
        Ok(metadata) => metadata,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            match std::fs::read_link(dir) {
                Ok(target) => bail!(
                    "--source {}: is a dangling symlink (to {}, which does not exist)",
                    dir.display(),
                    target.display()
                ),
                Err(_) => bail!("--source {}: does not exist", dir.display()),
            }
        }
        Err(error) => {
            return Err(anyhow::Error::new(error).context(format!("--source {}", dir.display())));
        }
    };
    if !metadata.is_dir() {
        bail!(
            "--source {}: is {}, not a directory",
            dir.display(),
            describe(metadata.file_type())
        );
    }
    let mut entries =
        std::fs::read_dir(dir).with_context(|| format!("--source {}: listing", dir.display()))?;
    if entries.next().is_none() {
        bail!(
            "--source {}: is an empty directory; refusing to sync it (that would delete every file the profile manages)",
            dir.display()
        );
    }
    Ok(())
}

/// Checks `--dest` before the engine creates it: something that exists must be a directory or a
/// symlink to one. A regular file, a dangling symlink or a symlink to a file is named as such
/// (the engine would only say `File exists`). Anything it cannot look at is left to the engine,
/// which names the path.
pub fn check_dest(dest: &Path) -> anyhow::Result<()> {
    let Ok(metadata) = std::fs::symlink_metadata(dest) else {
        return Ok(());
    };
    let kind = metadata.file_type();
    if kind.is_dir() {
        return Ok(());
    }
    if kind.is_symlink() {
        let target = std::fs::read_link(dest)
            .map(|t| t.display().to_string())
            .unwrap_or_else(|_| "?".to_owned());
        return match std::fs::metadata(dest) {
            Ok(followed) if followed.is_dir() => Ok(()),
            Ok(followed) => bail!(
                "--dest {}: is a symlink to {target}, which is {}, not a directory",
                dest.display(),
                describe(followed.file_type())
            ),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => bail!(
                "--dest {}: is a dangling symlink (to {target}, which does not exist); create the directory it points to, or remove the link",
                dest.display()
            ),
            Err(_) => Ok(()),
        };
    }
    bail!(
        "--dest {}: is {}, not a directory",
        dest.display(),
        describe(kind)
    )
}

/// Refuses a `--dest` that [`crate::destination::check`] finds dangerous: `/`, `$HOME`, or one
/// overlapping `--source` or the cache directory.
pub fn check_dangerous_dest(
    dest: &Path,
    source: Option<&Path>,
    cache_dir: Option<&Path>,
) -> anyhow::Result<()> {
    let home = std::env::var_os("HOME")
        .filter(|home| !home.is_empty())
        .map(std::path::PathBuf::from);
    let mut others: Vec<(&'static str, &Path)> = Vec::new();
    others.extend(source.map(|source| ("the --source directory", source)));
    others.extend(cache_dir.map(|cache| ("the cache directory (--cache-dir)", cache)));
    match crate::destination::check(dest, home.as_deref(), &others) {
        Some(danger) => bail!(
            "--dest {}: {danger}; a sync manages and cleans what its mappings point at there, so this is refused (pass --allow-dangerous-dest if you mean it)",
            dest.display()
        ),
        None => Ok(()),
    }
}

/// `a regular file`, `a symlink`, … for messages.
fn describe(kind: std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if kind.is_file() {
        "a regular file"
    } else if kind.is_dir() {
        "a directory"
    } else if kind.is_symlink() {
        "a symlink"
    } else if kind.is_fifo() {
        "a named pipe"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_block_device() || kind.is_char_device() {
        "a device"
    } else {
        "neither a file nor a directory"
    }
}

/// The one-shot command's `known_hosts` when no `--git-known-hosts-file` is given: like `git`,
/// it trusts `~/.ssh/known_hosts` (`$HOME`), when that file exists. The sidecar does not: it
/// stays strict, with only the file it is given.
pub fn user_known_hosts() -> Option<std::path::PathBuf> {
    let home = std::env::var_os("HOME").filter(|home| !home.is_empty())?;
    let file = Path::new(&home).join(".ssh").join("known_hosts");
    file.is_file().then_some(file)
}

/// `CACHE/local/<blob id of the source's absolute path>.json`: one content-id cache per source
/// directory.
pub fn local_id_cache_file(cache_dir: &Path, source: &Path) -> std::path::PathBuf {
    let absolute = std::path::absolute(source).unwrap_or_else(|_| source.to_path_buf());
    let key = stoker_core::ContentId::of_blob(absolute.to_string_lossy().as_bytes());
    cache_dir.join("local").join(format!("{key}.json"))
}

/// Adds the flag that fixes a common mistake to an error.
fn hint(error: stoker_sync::Error, args: &SyncArgs) -> anyhow::Error {
    let text = error.to_string();
    let host_key = matches!(
        &error,
        stoker_sync::Error::Core(core) if core.git_kind() == Some(GitErrorKind::HostKey)
    ) && args.git_ssh_key_file.is_some()
        && args.git_known_hosts_file.is_none()
        && !args.git_insecure_skip_host_key_check;
    // Checked against ~/.ssh/known_hosts (see `git_source`), or against nothing at all.
    let user_known_hosts = user_known_hosts().filter(|_| host_key);
    let no_known_hosts = host_key && user_known_hosts.is_none();
    let locked = matches!(error, stoker_sync::Error::Locked { .. });
    let error = anyhow::Error::new(error);
    if text.contains(".GatewayName is not set") && args.gateway_name.is_none() {
        return error.context("the profile uses {{.GatewayName}}: pass --gateway-name NAME");
    }
    if locked {
        return match args.wait {
            Some(seconds) => error.context(format!(
                "gave up after waiting {seconds} s for the lock (--wait={seconds})"
            )),
            None => error.context("pass --wait[=SECONDS] to wait for it"),
        };
    }
    if let Some(file) = user_known_hosts {
        return error.context(format!(
            "the SSH server's host key could not be verified against {} (used as no --git-known-hosts-file was given): add the server's key there (ssh-keyscan), or pass --git-known-hosts-file FILE, or --git-insecure-skip-host-key-check to connect without checking",
            file.display()
        ));
    }
    if no_known_hosts {
        return error.context(
            "the SSH server's host key cannot be checked: pass --git-known-hosts-file FILE (e.g. made with `ssh-keyscan HOST > FILE`), or --git-insecure-skip-host-key-check to connect without checking",
        );
    }
    error
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_shot_git_retries_wait_about_a_minute_at_most() {
        let policy = one_shot_retry(5);
        let mut waited = std::time::Duration::ZERO;
        let mut attempts = 1;
        // Attempts that fail at once: the waits alone.
        while let Some(delay) = policy.next_delay(attempts, waited) {
            waited += delay;
            attempts += 1;
        }
        assert_eq!(attempts, 5);
        assert!(waited <= std::time::Duration::from_secs(60), "{waited:?}");
        assert!(waited >= std::time::Duration::from_secs(30), "{waited:?}");
        // Slow attempts: no retry starts after the minute.
        assert_eq!(
            policy.next_delay(2, std::time::Duration::from_secs(55)),
            None
        );
        // The sidecar's default is longer.
        assert!(RetryPolicy::default().delay(0) > policy.delay(0));
    }

    #[test]
    fn a_rescan_is_owed_only_when_the_outcome_says_so() {
        let mut outcome = crate::gateway::GatewayOutcome::default();
        assert_eq!(rescan_owed_message(&outcome), None);
        outcome.unreachable = Some("connection refused".into());
        assert_eq!(rescan_owed_message(&outcome), None, "nothing changed");
        outcome.rescan_owed = true;
        let message = rescan_owed_message(&outcome).unwrap_or_default();
        assert!(message.contains("not answering"), "{message}");
        assert!(message.contains("connection refused"), "{message}");
        assert!(message.contains("exit status 3"), "{message}");
    }
}
