//! SSH: the `core.sshCommand` gix runs, and reading ssh's own log to classify failures.

use std::path::{Path, PathBuf};

/// The pieces of the ssh command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SshOptions {
    /// The private key, or `None` to use ssh's defaults.
    pub key_file: Option<PathBuf>,
    /// The `known_hosts` file checked strictly, or `None` with `accept_unknown_host_keys`.
    pub known_hosts_file: Option<PathBuf>,
    /// Skip host key verification (only when there is no `known_hosts` file).
    pub accept_unknown_host_keys: bool,
    /// Where ssh writes its diagnostics (`-E`), read back to classify failures.
    pub log_file: PathBuf,
}

/// The `core.sshCommand` value (run through `sh -c` by gix, hence the quoting).
///
/// Always: `-o BatchMode=yes` (never prompt), `-o ConnectTimeout=30`, `-E LOG` (ssh's messages go
/// to a file we read back instead of the agent's stderr). With a key: `-i KEY -o
/// IdentitiesOnly=yes`. Host keys: `-o UserKnownHostsFile=KH -o StrictHostKeyChecking=yes`, or,
/// when explicitly accepted, `-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null`.
pub(crate) fn ssh_command(options: &SshOptions) -> String {
    let mut args: Vec<String> = vec!["ssh".into()];
    let mut push = |parts: &[&str]| args.extend(parts.iter().map(|p| shell_quote(p)));
    if let Some(key) = &options.key_file {
        push(&["-i", &key.to_string_lossy(), "-o", "IdentitiesOnly=yes"]);
    }
    match &options.known_hosts_file {
        Some(known_hosts) => push(&[
            "-o",
            &format!("UserKnownHostsFile={}", known_hosts.to_string_lossy()),
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "GlobalKnownHostsFile=/dev/null",
        ]),
        None if options.accept_unknown_host_keys => push(&[
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "GlobalKnownHostsFile=/dev/null",
        ]),
        // Strict checking against the default files; without an entry the connect fails.
        None => push(&["-o", "StrictHostKeyChecking=yes"]),
    }
    push(&[
        "-o",
        "BatchMode=yes",
        "-o",
        "ConnectTimeout=30",
        "-o",
        "ServerAliveInterval=15",
        "-o",
        "ServerAliveCountMax=4",
        "-E",
        &options.log_file.to_string_lossy(),
    ]);
    args.join(" ")
}

/// Quotes one word for `sh`.
pub(crate) fn shell_quote(word: &str) -> String {
    if !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,@+%".contains(&b))
    {
        return word.to_owned();
    }
    format!("'{}'", word.replace('\'', r"'\''"))
}

/// What ssh's log says went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SshFailure {
    /// The host key is unknown or changed.
    HostKey(String),
    /// The server refused the key.
    PermissionDenied(String),
    /// The network: refused, timed out, unreachable, name resolution.
    Network(String),
}

/// Classifies ssh's log (what `-E` captured).
pub(crate) fn classify_log(log: &str) -> Option<SshFailure> {
    let lines: Vec<&str> = log
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let find = |needles: &[&str]| {
        lines
            .iter()
            .find(|line| needles.iter().any(|n| line.contains(n)))
            .map(|line| (*line).to_owned())
    };
    if let Some(line) = find(&[
        "Host key verification failed",
        "REMOTE HOST IDENTIFICATION HAS CHANGED",
        "No ED25519 host key is known",
        "No RSA host key is known",
        "No ECDSA host key is known",
        "host key for",
    ]) {
        return Some(SshFailure::HostKey(line));
    }
    if let Some(line) = find(&[
        "Permission denied",
        "UNPROTECTED PRIVATE KEY FILE",
        "Load key",
    ]) {
        return Some(SshFailure::PermissionDenied(line));
    }
    if let Some(line) = find(&[
        "Connection refused",
        "Connection timed out",
        "timed out",
        "No route to host",
        "Network is unreachable",
        "Could not resolve hostname",
        "Connection reset",
        "Connection closed",
        "Broken pipe",
    ]) {
        return Some(SshFailure::Network(line));
    }
    None
}

/// ssh refuses private keys that group or others may read (a Kubernetes Secret is mounted 0644
/// or 0440 unless told otherwise). Such a key is copied to a private file (0600) under
/// `private_dir`, rewritten on every connect so a rotated Secret is picked up.
pub(crate) fn usable_key_file(key_file: &Path, private_dir: &Path) -> std::io::Result<PathBuf> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let metadata = std::fs::metadata(key_file)?;
    if metadata.permissions().mode() & 0o077 == 0 {
        return Ok(key_file.to_path_buf());
    }
    let bytes = std::fs::read(key_file)?;
    std::fs::create_dir_all(private_dir)?;
    std::fs::set_permissions(private_dir, std::fs::Permissions::from_mode(0o700))?;
    let name = format!(
        "key-{}",
        crate::ContentId::of_blob(key_file.as_os_str().as_encoded_bytes())
    );
    let target = private_dir.join(&name);
    let temporary = private_dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let _ = std::fs::remove_file(&temporary);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temporary)?;
    file.write_all(&bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&temporary, &target)?;
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_host_key_checking_by_default() {
        let command = ssh_command(&SshOptions {
            key_file: Some("/keys/id ed25519".into()),
            known_hosts_file: Some("/keys/known_hosts".into()),
            accept_unknown_host_keys: false,
            log_file: "/cache/ssh.log".into(),
        });
        assert!(
            command.starts_with("ssh -i '/keys/id ed25519' -o IdentitiesOnly=yes"),
            "{command}"
        );
        assert!(
            command
                .contains("-o UserKnownHostsFile=/keys/known_hosts -o StrictHostKeyChecking=yes")
        );
        assert!(command.contains("-o BatchMode=yes"));
        assert!(command.ends_with("-E /cache/ssh.log"));
        let without = ssh_command(&SshOptions {
            key_file: None,
            known_hosts_file: None,
            accept_unknown_host_keys: false,
            log_file: "/l".into(),
        });
        assert!(without.contains("StrictHostKeyChecking=yes"));
        let accepting = ssh_command(&SshOptions {
            key_file: None,
            known_hosts_file: None,
            accept_unknown_host_keys: true,
            log_file: "/l".into(),
        });
        assert!(accepting.contains("StrictHostKeyChecking=no"));
    }

    #[test]
    fn quoting_survives_the_shell() {
        assert_eq!(shell_quote("plain/path"), "plain/path");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("$(rm -rf /)"), "'$(rm -rf /)'");
    }

    #[test]
    fn ssh_logs_are_classified() {
        assert!(matches!(
            classify_log("Host key verification failed.\r\n"),
            Some(SshFailure::HostKey(_))
        ));
        assert!(matches!(
            classify_log(
                "No ED25519 host key is known for [127.0.0.1]:2222 and you have requested strict checking.\nHost key verification failed."
            ),
            Some(SshFailure::HostKey(_))
        ));
        assert!(matches!(
            classify_log("git@127.0.0.1: Permission denied (publickey)."),
            Some(SshFailure::PermissionDenied(_))
        ));
        assert!(matches!(
            classify_log("ssh: connect to host 127.0.0.1 port 1: Connection refused"),
            Some(SshFailure::Network(_))
        ));
        assert_eq!(
            classify_log("Warning: Permanently added 'x' (ED25519)"),
            None
        );
    }

    #[test]
    fn readable_keys_are_copied_to_a_private_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key");
        std::fs::write(&key, "KEY").unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(usable_key_file(&key, &dir.path().join("p")).unwrap(), key);
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let copy = usable_key_file(&key, &dir.path().join("p")).unwrap();
        assert_ne!(copy, key);
        assert_eq!(std::fs::read(&copy).unwrap(), b"KEY");
        assert_eq!(
            std::fs::metadata(&copy).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
}
