//! The exit statuses of `stoker-agent sync`, for scripts and for `--help`.

use std::process::ExitCode;

/// The files are synced (or a dry run computed the report); the gateway, when given, rescanned
/// them or had nothing to rescan.
pub const SUCCESS: u8 = 0;
/// The sync failed: bad input, Git, the file system, a gateway that refused (API key,
/// certificate, Designer sessions under `fail`); the error line says which.
pub const FAILURE: u8 = 1;
/// The command line is wrong (clap's usage errors).
pub const USAGE: u8 = 2;
/// The files are synced, but the gateway was not asked to rescan them, or its rescan failed:
/// the rescan is owed. A gateway that is not running reads the files when it starts; a
/// running one picks them up on its next scan, or on a rerun once it answers.
pub const RESCAN_OWED: u8 = 3;
/// Another sync holds the lock on `--dest` (after `--wait`, if given): nothing was written.
pub const LOCKED: u8 = 4;

/// The exit statuses as `--help` shows them (clap `after_help`).
pub const HELP: &str = "\
Exit status:
  0  synced (or nothing to do); with --gateway-url, the gateway rescanned or had nothing to rescan
  1  failed (bad input, Git, file system, gateway refused); one line on stderr says why
  2  wrong command line
  3  files synced, but the gateway rescan is owed (the gateway is down or its rescan failed)
  4  another sync holds the lock on --dest (see --wait); nothing written";

/// `code` as a process exit code.
pub fn code(code: u8) -> ExitCode {
    ExitCode::from(code)
}

/// The exit status of a failed command, decided on the error's type: a held lock
/// ([`stoker_sync::Error::Locked`] anywhere in the chain) is [`LOCKED`], anything else
/// [`FAILURE`].
pub fn status_of(error: &anyhow::Error) -> u8 {
    let locked = error.chain().any(|cause| {
        matches!(
            cause.downcast_ref::<stoker_sync::Error>(),
            Some(stoker_sync::Error::Locked { .. })
        )
    });
    if locked { LOCKED } else { FAILURE }
}

/// Prints a failed command's error: always one line on stderr (`error: outer: cause: …`, each
/// cause once, control characters escaped); with `json`, also an object on stdout:
/// `{"error": LINE, "causes": [outermost first], "exitStatus": N}`.
pub fn report(error: &anyhow::Error, status: u8, json: bool) {
    let causes = stoker_core::error::causes(error.as_ref());
    let line = causes.join(": ");
    eprintln!("error: {}", crate::output::escape(&line));
    if json {
        let value = serde_json::json!({
            "error": line,
            "causes": causes,
            "exitStatus": status,
        });
        println!("{value:#}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_lock_is_recognised_by_its_type_through_context() {
        let locked = stoker_sync::Error::Locked {
            live: "/data".into(),
            lock: "/data/.stoker/lock".into(),
        };
        let error = anyhow::Error::new(locked).context("gave up waiting");
        assert_eq!(status_of(&error), LOCKED);
        let other = anyhow::anyhow!("another sync is running on /data (lock is held)");
        assert_eq!(status_of(&other), FAILURE, "text alone decides nothing");
    }
}
