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

/// The exit statuses as `--help` shows them (clap `after_help`).
pub const HELP: &str = "\
Exit status:
  0  synced (or nothing to do); with --gateway-url, the gateway rescanned or had nothing to rescan
  1  failed (bad input, Git, file system, gateway refused); one line on stderr says why
  2  wrong command line
  3  files synced, but the gateway rescan is owed (the gateway is down or its rescan failed)";

/// `code` as a process exit code.
pub fn code(code: u8) -> ExitCode {
    ExitCode::from(code)
}
