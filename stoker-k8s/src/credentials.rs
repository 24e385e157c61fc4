//! Git credentials from Secrets, as the `git` Source wants them: files.
//!
//! The Source reads tokens, SSH keys and `known_hosts` from files (as a mounted Secret gives
//! them to the agent). The operator reads the Secrets through the API instead, and writes each
//! value to a private file (mode 0600, in a 0700 directory per resource) that it rewrites only
//! when the value changes. Values never reach logs or errors: errors name the Secret and key.

use std::collections::BTreeMap;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use stoker_core::GitAuth;

use crate::crd::{GatewaySyncSpec, SecretKeyRef};
use crate::error::{Error, Result};

/// Reads one key of a Secret (from `data`, else `stringData`).
pub async fn secret_value(api: &Api<Secret>, reference: &SecretKeyRef) -> Result<Vec<u8>> {
    let secret = api
        .get_opt(&reference.name)
        .await
        .map_err(|source| Error::kube("reading Secret", &reference.name, source))?
        .ok_or_else(|| Error::MissingSecret {
            name: reference.name.clone(),
            key: reference.key.clone(),
        })?;
    value_of(&secret, &reference.key).ok_or_else(|| Error::MissingSecret {
        name: reference.name.clone(),
        key: reference.key.clone(),
    })
}

fn value_of(secret: &Secret, key: &str) -> Option<Vec<u8>> {
    if let Some(ByteString(bytes)) = secret.data.as_ref().and_then(|data| data.get(key)) {
        return Some(bytes.clone());
    }
    secret
        .string_data
        .as_ref()
        .and_then(|data: &BTreeMap<String, String>| data.get(key))
        .map(|value| value.clone().into_bytes())
}

/// Writes `bytes` to `dir/name` (0600) unless it already holds exactly that, on tokio's
/// blocking pool: the reconciler runs on the async executor, where a slow disk would stall every
/// other reconciliation.
async fn write_private(dir: &Path, name: &'static str, bytes: Vec<u8>) -> Result<PathBuf> {
    let dir = dir.to_owned();
    tokio::task::spawn_blocking(move || write_private_now(&dir, name, &bytes))
        .await
        .map_err(|source| Error::Blocking {
            what: "writing a credential file",
            source,
        })?
}

fn write_private_now(dir: &Path, name: &str, bytes: &[u8]) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).map_err(|source| Error::io(dir, source))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .map_err(|source| Error::io(dir, source))?;
    let path = dir.join(name);
    if std::fs::read(&path).is_ok_and(|existing| existing == bytes) {
        return Ok(path);
    }
    let temporary = dir.join(format!(".{name}.tmp"));
    {
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&temporary)
            .map_err(|source| Error::io(&temporary, source))?;
        file.write_all(bytes)
            .map_err(|source| Error::io(&temporary, source))?;
    }
    std::fs::rename(&temporary, &path).map_err(|source| Error::io(&path, source))?;
    Ok(path)
}

/// The `GitAuth` for a resource's `spec.git.auth`, with its Secrets written under `dir`.
///
/// For a GitHub App, `github_token` is the installation token the controller keeps for the
/// agents ([`crate::github_token`]): used as a token, so the operator's own ls-remote needs no
/// exchange of its own. Without one, the App's key is written and the Git source exchanges it.
///
/// SSH without `knownHosts` connects without verifying the host key (as stoker-operator v0.5
/// did); the controller reports it with `SSHHostKeyVerification=False`, and the Source logs a
/// warning on every connection.
pub async fn git_auth(
    secrets: &Api<Secret>,
    spec: &GatewaySyncSpec,
    dir: &Path,
    github_token: Option<&str>,
) -> Result<GitAuth> {
    let Some(auth) = spec.git.auth.as_ref() else {
        return Ok(GitAuth::None);
    };
    if let Some(token) = &auth.token {
        let value = secret_value(secrets, &token.secret_ref).await?;
        return Ok(GitAuth::Token {
            token_file: write_private(dir, "token", value).await?,
        });
    }
    if let Some(ssh) = &auth.ssh_key {
        let key = secret_value(secrets, &ssh.secret_ref).await?;
        let key_file = write_private(dir, "ssh-key", key).await?;
        let known_hosts_file = match &ssh.known_hosts {
            Some(holder) => {
                let value = secret_value(secrets, &holder.secret_ref).await?;
                Some(write_private(dir, "known_hosts", value).await?)
            }
            None => None,
        };
        return Ok(GitAuth::SshKey {
            accept_unknown_host_keys: known_hosts_file.is_none(),
            key_file,
            known_hosts_file,
        });
    }
    if let Some(app) = &auth.github_app {
        if let Some(token) = github_token {
            return Ok(GitAuth::Token {
                token_file: write_private(dir, "github-token", token.as_bytes().to_vec()).await?,
            });
        }
        let key = secret_value(secrets, &app.private_key_secret_ref).await?;
        return Ok(GitAuth::GithubApp {
            app_id: app.app_id.to_string(),
            installation_id: app.installation_id,
            private_key_file: write_private(dir, "github-app.pem", key).await?,
            api_base_url: app
                .api_base_url
                .clone()
                .unwrap_or_else(|| "https://api.github.com".to_owned()),
        });
    }
    Ok(GitAuth::None)
}
