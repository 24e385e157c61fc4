//! One name for a repository, whichever way its URL is written, so that a push event from a
//! Git host can be matched with the `spec.git.repo` of each `GatewaySync`.
//!
//! `https://github.com/Plant/Config.git`, `git@github.com:plant/config`,
//! `ssh://git@github.com:22/plant/config.git/` and `https://token@github.com/plant/config` are
//! all `github.com/plant/config`. The rules: scheme, user, password and port dropped; `.git`
//! and trailing `/` dropped; everything lower-cased; the SSH and HTTPS forms of Azure DevOps and
//! Bitbucket Server brought to one.
//!
//! Lower-casing the path is deliberate: GitHub, GitLab, Gitea and Azure DevOps treat repository
//! paths case-insensitively, and a false match costs one extra `ls-remote`, while a missed one
//! leaves the gateways waiting for the next poll. Written by hand because no URL library knows
//! the scp-like SSH form (`user@host:path`) or the hosts' alternative paths.

/// A repository's normalised name: `host/path`, lower-case, without `.git`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RepoId(String);

impl RepoId {
    /// The normalised name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name of the repository `url` points to; `None` for a local path or a `file://`
    /// URL (no host: no push event can name it) and for anything without a path.
    pub fn parse(url: &str) -> Option<RepoId> {
        let (host, path) = host_and_path(url.trim())?;
        let host = host.to_lowercase();
        let path = path.trim_matches('/').to_lowercase();
        let path = path
            .strip_suffix(".git")
            .unwrap_or(&path)
            .trim_end_matches('/');
        if host.is_empty() || path.is_empty() {
            return None;
        }
        let (host, path) = canonical(&host, path);
        Some(RepoId(format!("{host}/{path}")))
    }
}

impl std::fmt::Display for RepoId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// `(host, path)` of a URL (`scheme://[user[:password]@]host[:port]/path`) or of the scp-like
/// SSH form (`[user@]host:path`).
fn host_and_path(url: &str) -> Option<(&str, &str)> {
    if let Some((scheme, rest)) = url.split_once("://") {
        if scheme.eq_ignore_ascii_case("file") {
            return None;
        }
        let (authority, path) = rest.split_once('/')?;
        let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        let host = match host_port.strip_prefix('[') {
            // An IPv6 literal: `[::1]:8080`.
            Some(v6) => v6.split_once(']')?.0,
            None => host_port.split_once(':').map_or(host_port, |(h, _)| h),
        };
        return Some((host, path));
    }
    // scp-like: a colon before any slash, and not a Windows drive (`C:\…`).
    let (before, path) = url.split_once(':')?;
    if before.contains('/') || before.len() < 2 {
        return None;
    }
    let host = before.rsplit_once('@').map_or(before, |(_, h)| h);
    Some((host, path))
}

/// One spelling for the hosts that serve a repository under two paths.
fn canonical<'a>(host: &'a str, path: &'a str) -> (&'a str, String) {
    let segments: Vec<&str> = path.split('/').collect();
    match (host, segments.as_slice()) {
        // Azure DevOps SSH: ssh.dev.azure.com:v3/ORG/PROJECT/REPO.
        ("ssh.dev.azure.com", ["v3", org, project, repo]) => {
            ("dev.azure.com", format!("{org}/{project}/_git/{repo}"))
        }
        // Azure DevOps's older host: ORG.visualstudio.com/PROJECT/_git/REPO (and its SSH form
        // vs-ssh.visualstudio.com:v3/ORG/PROJECT/REPO).
        ("vs-ssh.visualstudio.com", ["v3", org, project, repo]) => {
            ("dev.azure.com", format!("{org}/{project}/_git/{repo}"))
        }
        (host, [project, "_git", repo]) if host.ends_with(".visualstudio.com") => {
            let org = host.trim_end_matches(".visualstudio.com");
            ("dev.azure.com", format!("{org}/{project}/_git/{repo}"))
        }
        // Bitbucket Server/Data Center clones over HTTP from /scm/PROJECT/REPO and over SSH
        // from /PROJECT/REPO.
        (host, ["scm", project, repo]) => (host, format!("{project}/{repo}")),
        (host, _) => (host, segments.join("/")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(url: &str) -> Option<String> {
        RepoId::parse(url).map(|id| id.as_str().to_owned())
    }

    #[test]
    fn every_spelling_of_one_repository_is_one_name() {
        for url in [
            "https://github.com/plant/config",
            "https://github.com/plant/config.git",
            "https://github.com/plant/config/",
            "https://github.com/plant/config.git/",
            "HTTPS://GitHub.com/Plant/Config.git",
            "http://github.com/plant/config",
            "https://x-access-token:secret@github.com/plant/config.git",
            "https://github.com:443/plant/config",
            "git@github.com:plant/config.git",
            "github.com:plant/config",
            "ssh://git@github.com/plant/config.git",
            "ssh://git@github.com:22/plant/config",
            "git://github.com/plant/config.git",
            "  https://github.com/plant/config  ",
        ] {
            assert_eq!(id(url).as_deref(), Some("github.com/plant/config"), "{url}");
        }
    }

    #[test]
    fn nested_groups_keep_every_segment() {
        assert_eq!(
            id("git@gitlab.example.com:ot/site-a/gateways.git").as_deref(),
            Some("gitlab.example.com/ot/site-a/gateways")
        );
        assert_eq!(
            id("https://gitlab.example.com:8443/ot/site-a/gateways").as_deref(),
            Some("gitlab.example.com/ot/site-a/gateways")
        );
    }

    #[test]
    fn azure_devops_ssh_https_and_legacy_hosts_agree() {
        for url in [
            "https://dev.azure.com/plant/scada/_git/gateways",
            "https://plant@dev.azure.com/plant/scada/_git/gateways",
            "git@ssh.dev.azure.com:v3/plant/scada/gateways",
            "https://plant.visualstudio.com/scada/_git/gateways",
            "plant@vs-ssh.visualstudio.com:v3/plant/scada/gateways",
        ] {
            assert_eq!(
                id(url).as_deref(),
                Some("dev.azure.com/plant/scada/_git/gateways"),
                "{url}"
            );
        }
    }

    #[test]
    fn bitbucket_server_http_and_ssh_agree() {
        for url in [
            "https://bitbucket.plant.example/scm/ot/gateways.git",
            "ssh://git@bitbucket.plant.example:7999/ot/gateways.git",
        ] {
            assert_eq!(
                id(url).as_deref(),
                Some("bitbucket.plant.example/ot/gateways"),
                "{url}"
            );
        }
    }

    #[test]
    fn ipv6_hosts_are_kept_without_brackets_or_port() {
        assert_eq!(
            id("http://[::1]:3000/plant/config.git").as_deref(),
            Some("::1/plant/config")
        );
    }

    #[test]
    fn local_paths_and_urls_without_a_repository_have_no_name() {
        for url in [
            "",
            "/srv/git/config.git",
            "./config",
            "file:///srv/git/config.git",
            "C:\\repos\\config",
            "https://github.com",
            "https://github.com/",
            "https://github.com/.git",
            "git@github.com:",
        ] {
            assert_eq!(id(url), None, "{url:?}");
        }
    }

    #[test]
    fn different_repositories_stay_different() {
        assert_ne!(
            id("https://github.com/plant/config"),
            id("https://github.com/plant/config-b")
        );
        assert_ne!(
            id("https://github.com/plant/config"),
            id("https://gitlab.com/plant/config")
        );
    }
}
