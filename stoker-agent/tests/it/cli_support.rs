//! Helpers the `stoker-agent sync` test modules share.

use std::process::Output;

/// The stdout of a run that must have succeeded (its stderr in the failure message).
pub fn ok(output: &Output) -> String {
    assert!(
        output.status.success(),
        "stoker-agent failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}
