//! Git hosts' push events, read into one [`PushEvent`]: which repository, which refs moved to
//! which commits, and (when the host says) which files changed.
//!
//! | host | recognised by | delivery id | changed files |
//! |---|---|---|---|
//! | Gitea, Forgejo, Gogs | `X-Gitea-Event` / `X-Forgejo-Event` / `X-Gogs-Event: push` | `X-Gitea-Delivery` … | per commit, unless `total_commits` says some are missing |
//! | GitHub | `X-GitHub-Event: push` | `X-GitHub-Delivery` | per commit |
//! | GitLab | `X-Gitlab-Event: Push Hook` / `Tag Push Hook` | `Idempotency-Key`, else `X-Gitlab-Event-UUID` | per commit, unless `total_commits_count` says some are missing |
//! | Bitbucket Cloud | `X-Event-Key: repo:push` | `X-Request-UUID` | not sent |
//! | Bitbucket Server / Data Center | `X-Event-Key: repo:refs_changed` | `X-Request-Id` | not sent |
//! | Azure DevOps | body `eventType: git.push` | body `id` | not sent |
//!
//! Where the changed files are unknown (not sent, a list the host cut short, a new or
//! force-pushed branch whose base is unknown), every GatewaySync of the repository and ref is
//! resolved: a missed change would be worse than one `ls-remote` too many. Field names are
//! those of the hosts' public documentation.

use std::collections::BTreeSet;

use axum::http::HeaderMap;
use serde::Deserialize;
use serde_json::Value;

use super::repo_url::RepoId;
use crate::error::{Error, Result};

/// The Git host that sent an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GitHost {
    /// github.com or GitHub Enterprise.
    Github,
    /// gitlab.com or a self-managed GitLab.
    Gitlab,
    /// Gitea, Forgejo or Gogs.
    Gitea,
    /// bitbucket.org.
    BitbucketCloud,
    /// Bitbucket Server / Data Center.
    BitbucketServer,
    /// Azure DevOps Services or Server.
    AzureDevops,
}

impl GitHost {
    /// A short name for logs and the metric's `source` label.
    pub fn as_str(self) -> &'static str {
        match self {
            GitHost::Github => "github",
            GitHost::Gitlab => "gitlab",
            GitHost::Gitea => "gitea",
            GitHost::BitbucketCloud => "bitbucket-cloud",
            GitHost::BitbucketServer => "bitbucket-server",
            GitHost::AzureDevops => "azure-devops",
        }
    }
}

/// A ref a push moved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefUpdate {
    /// The full ref name (`refs/heads/main`, `refs/tags/v2.0.0`).
    pub name: String,
    /// The commit it points to now; `None` when the push deleted it.
    pub commit: Option<String>,
}

/// Which files a push changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangedPaths {
    /// The host did not say, or not completely.
    Unknown,
    /// Every path added, modified or removed (relative to the repository's root).
    Known(BTreeSet<String>),
}

/// A push, whatever host sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushEvent {
    /// Who sent it.
    pub host: GitHost,
    /// The host's id of this delivery (the same on a redelivery), when it sends one.
    pub delivery: Option<String>,
    /// Every name the payload gives the repository (clone URLs over HTTPS and SSH, web URL).
    pub repositories: BTreeSet<RepoId>,
    /// `PROJECT/REPO` (lower-case) when the payload names the repository without its host
    /// (Bitbucket Server): then any host matches.
    pub repository_path: Option<String>,
    /// The repository's default branch, when the payload says (for a GatewaySync on `HEAD`).
    pub default_branch: Option<String>,
    /// The refs the push moved.
    pub refs: Vec<RefUpdate>,
    /// The files it changed.
    pub changed: ChangedPaths,
}

/// What a request to `/webhook/push` carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// A push.
    Push(PushEvent),
    /// Another event of a known host (a ping when the hook is created, an issue comment, …):
    /// answered 202 and ignored.
    Other {
        /// The host.
        host: GitHost,
        /// Its name for the event.
        event: String,
    },
}

const ZERO_COMMIT: &str = "0000000000000000000000000000000000000000";

/// Reads a request to `/webhook/push`. An error names the host and what is wrong (answered
/// 400); a request from no known host is [`Error::PushPayload`] with sender `unknown`.
pub fn parse(headers: &HeaderMap, body: &[u8]) -> Result<Delivery> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::trim)
    };
    let delivery = |names: &[&str]| {
        names
            .iter()
            .find_map(|name| header(name))
            .map(str::to_owned)
    };
    let gitea_event = ["x-gitea-event", "x-forgejo-event", "x-gogs-event"]
        .iter()
        .find_map(|name| header(name));
    if let Some(event) = gitea_event {
        let id = delivery(&["x-gitea-delivery", "x-forgejo-delivery", "x-gogs-delivery"]);
        return github_like(GitHost::Gitea, event, id, body);
    }
    if let Some(event) = header("x-github-event") {
        return github_like(
            GitHost::Github,
            event,
            delivery(&["x-github-delivery"]),
            body,
        );
    }
    if let Some(event) = header("x-gitlab-event") {
        let id = delivery(&["idempotency-key", "x-gitlab-event-uuid"]);
        return gitlab(event, id, body);
    }
    if let Some(event) = header("x-event-key") {
        return match event {
            "repo:push" => bitbucket_cloud(delivery(&["x-request-uuid"]), body),
            "repo:refs_changed" => bitbucket_server(delivery(&["x-request-id"]), body),
            other => Ok(Delivery::Other {
                host: if other.starts_with("repo:") && header("x-request-uuid").is_some() {
                    GitHost::BitbucketCloud
                } else {
                    GitHost::BitbucketServer
                },
                event: other.to_owned(),
            }),
        };
    }
    let value: Value = json(GitHost::AzureDevops, body).map_err(|_| unknown())?;
    match value.get("eventType").and_then(Value::as_str) {
        Some("git.push") => azure_devops(value),
        Some(other) if value.get("publisherId").and_then(Value::as_str) == Some("tfs") => {
            Ok(Delivery::Other {
                host: GitHost::AzureDevops,
                event: other.to_owned(),
            })
        }
        _ => Err(unknown()),
    }
}

fn unknown() -> Error {
    Error::PushPayload {
        sender: "unknown",
        message: "not a push event of a known Git host (no X-GitHub-Event, X-Gitlab-Event, X-Gitea-Event or X-Event-Key header, no Azure DevOps eventType)".to_owned(),
    }
}

fn invalid(host: GitHost, message: impl Into<String>) -> Error {
    Error::PushPayload {
        sender: host.as_str(),
        message: message.into(),
    }
}

fn json<T: for<'de> Deserialize<'de>>(host: GitHost, body: &[u8]) -> Result<T> {
    serde_json::from_slice(body).map_err(|error| invalid(host, format!("payload: {error}")))
}

/// A commit's file lists (GitHub, Gitea and GitLab agree on these names).
#[derive(Deserialize)]
struct Commit {
    added: Option<Vec<String>>,
    modified: Option<Vec<String>>,
    removed: Option<Vec<String>>,
}

/// Every path of `commits`, or `Unknown` when a commit lacks its lists, there are none, or
/// `total` says the host left some out.
fn changed_paths(commits: Option<Vec<Commit>>, total: Option<u64>) -> ChangedPaths {
    let Some(commits) = commits.filter(|c| !c.is_empty()) else {
        return ChangedPaths::Unknown;
    };
    if total.is_some_and(|total| total > commits.len() as u64) {
        return ChangedPaths::Unknown;
    }
    let mut paths = BTreeSet::new();
    for commit in commits {
        let (Some(a), Some(m), Some(r)) = (commit.added, commit.modified, commit.removed) else {
            return ChangedPaths::Unknown;
        };
        paths.extend(a.into_iter().chain(m).chain(r));
    }
    ChangedPaths::Known(paths)
}

fn repo_ids<'a>(urls: impl IntoIterator<Item = Option<&'a str>>) -> BTreeSet<RepoId> {
    urls.into_iter()
        .flatten()
        .filter_map(RepoId::parse)
        .collect()
}

fn ref_update(name: String, after: Option<String>) -> RefUpdate {
    let commit = after.filter(|c| !c.is_empty() && c != ZERO_COMMIT);
    RefUpdate { name, commit }
}

#[derive(Deserialize)]
struct GithubPush {
    #[serde(rename = "ref")]
    reference: String,
    before: Option<String>,
    after: Option<String>,
    #[serde(default)]
    created: bool,
    #[serde(default)]
    forced: bool,
    commits: Option<Vec<Commit>>,
    total_commits: Option<u64>,
    repository: GithubRepository,
}

#[derive(Deserialize)]
struct GithubRepository {
    clone_url: Option<String>,
    ssh_url: Option<String>,
    git_url: Option<String>,
    html_url: Option<String>,
    default_branch: Option<String>,
}

/// GitHub's and Gitea's push (Gitea kept GitHub's shape).
fn github_like(
    host: GitHost,
    event: &str,
    delivery: Option<String>,
    body: &[u8],
) -> Result<Delivery> {
    if event != "push" {
        return Ok(Delivery::Other {
            host,
            event: event.to_owned(),
        });
    }
    let push: GithubPush = json(host, body)?;
    let repo = &push.repository;
    let repositories = repo_ids([
        repo.clone_url.as_deref(),
        repo.ssh_url.as_deref(),
        repo.git_url.as_deref(),
        repo.html_url.as_deref(),
    ]);
    if repositories.is_empty() {
        return Err(invalid(
            host,
            "repository has no clone_url, ssh_url or html_url",
        ));
    }
    // A new branch or a force push: the commits listed are not all the difference.
    let new_base = push.created || push.before.as_deref() == Some(ZERO_COMMIT);
    let changed = if new_base || push.forced {
        ChangedPaths::Unknown
    } else {
        changed_paths(push.commits, push.total_commits)
    };
    Ok(Delivery::Push(PushEvent {
        host,
        delivery,
        repositories,
        repository_path: None,
        default_branch: push.repository.default_branch,
        refs: vec![ref_update(push.reference, push.after)],
        changed,
    }))
}

#[derive(Deserialize)]
struct GitlabPush {
    object_kind: Option<String>,
    #[serde(rename = "ref")]
    reference: String,
    before: Option<String>,
    after: Option<String>,
    commits: Option<Vec<Commit>>,
    total_commits_count: Option<u64>,
    project: Option<GitlabProject>,
    repository: Option<GitlabProject>,
}

#[derive(Deserialize)]
struct GitlabProject {
    git_http_url: Option<String>,
    git_ssh_url: Option<String>,
    http_url: Option<String>,
    ssh_url: Option<String>,
    web_url: Option<String>,
    homepage: Option<String>,
    default_branch: Option<String>,
}

fn gitlab(event: &str, delivery: Option<String>, body: &[u8]) -> Result<Delivery> {
    let host = GitHost::Gitlab;
    if event != "Push Hook" && event != "Tag Push Hook" && event != "System Hook" {
        return Ok(Delivery::Other {
            host,
            event: event.to_owned(),
        });
    }
    let push: GitlabPush = json(host, body)?;
    if event == "System Hook" && !matches!(push.object_kind.as_deref(), Some("push" | "tag_push")) {
        return Ok(Delivery::Other {
            host,
            event: push.object_kind.unwrap_or_else(|| event.to_owned()),
        });
    }
    let projects = [push.project.as_ref(), push.repository.as_ref()];
    let repositories = repo_ids(projects.iter().flatten().flat_map(|p| {
        [
            p.git_http_url.as_deref(),
            p.git_ssh_url.as_deref(),
            p.http_url.as_deref(),
            p.ssh_url.as_deref(),
            p.web_url.as_deref(),
            p.homepage.as_deref(),
        ]
    }));
    if repositories.is_empty() {
        return Err(invalid(
            host,
            "project has no git_http_url, git_ssh_url or web_url",
        ));
    }
    let new_base = push.before.as_deref() == Some(ZERO_COMMIT);
    let changed = if new_base {
        ChangedPaths::Unknown
    } else {
        changed_paths(push.commits, push.total_commits_count)
    };
    let default_branch = projects
        .iter()
        .flatten()
        .find_map(|p| p.default_branch.clone());
    Ok(Delivery::Push(PushEvent {
        host,
        delivery,
        repositories,
        repository_path: None,
        default_branch,
        refs: vec![ref_update(push.reference, push.after)],
        changed,
    }))
}

fn bitbucket_cloud(delivery: Option<String>, body: &[u8]) -> Result<Delivery> {
    let host = GitHost::BitbucketCloud;
    let value: Value = json(host, body)?;
    let repository = &value["repository"];
    let full_name = repository["full_name"].as_str();
    let repositories = repo_ids([
        repository
            .pointer("/links/html/href")
            .and_then(Value::as_str),
        full_name
            .map(|name| format!("https://bitbucket.org/{name}"))
            .as_deref(),
    ]);
    if repositories.is_empty() {
        return Err(invalid(
            host,
            "repository has no full_name or links.html.href",
        ));
    }
    let changes = value
        .pointer("/push/changes")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid(host, "no push.changes"))?;
    let mut refs = Vec::new();
    for change in changes {
        // `new` is null when the push deleted the ref; then `old` names it.
        let side = if change["new"].is_object() {
            &change["new"]
        } else {
            &change["old"]
        };
        let (Some(kind), Some(name)) = (side["type"].as_str(), side["name"].as_str()) else {
            continue;
        };
        let prefix = match kind {
            "branch" | "named_branch" => "refs/heads/",
            "tag" | "annotated_tag" => "refs/tags/",
            _ => continue,
        };
        let commit = change.pointer("/new/target/hash").and_then(Value::as_str);
        refs.push(ref_update(
            format!("{prefix}{name}"),
            commit.map(str::to_owned),
        ));
    }
    Ok(Delivery::Push(PushEvent {
        host,
        delivery,
        repositories,
        repository_path: None,
        default_branch: value
            .pointer("/repository/mainbranch/name")
            .and_then(Value::as_str)
            .map(str::to_owned),
        refs,
        changed: ChangedPaths::Unknown,
    }))
}

fn bitbucket_server(delivery: Option<String>, body: &[u8]) -> Result<Delivery> {
    let host = GitHost::BitbucketServer;
    let value: Value = json(host, body)?;
    let repository = &value["repository"];
    let links = repository
        .pointer("/links/clone")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .chain(
            repository
                .pointer("/links/self")
                .and_then(Value::as_array)
                .into_iter()
                .flatten(),
        );
    let repositories = repo_ids(links.map(|link| link["href"].as_str()));
    let repository_path = match (
        repository.pointer("/project/key").and_then(Value::as_str),
        repository["slug"].as_str(),
    ) {
        (Some(project), Some(slug)) => Some(format!("{project}/{slug}").to_lowercase()),
        _ => None,
    };
    if repositories.is_empty() && repository_path.is_none() {
        return Err(invalid(
            host,
            "repository has no links.clone nor project.key and slug",
        ));
    }
    let changes = value["changes"]
        .as_array()
        .ok_or_else(|| invalid(host, "no changes"))?;
    let refs = changes
        .iter()
        .filter_map(|change| {
            let name = change
                .pointer("/ref/id")
                .or_else(|| change.get("refId"))
                .and_then(Value::as_str)?;
            let deleted = change["type"].as_str() == Some("DELETE");
            let commit = (!deleted)
                .then(|| change["toHash"].as_str().map(str::to_owned))
                .flatten();
            Some(ref_update(name.to_owned(), commit))
        })
        .collect();
    Ok(Delivery::Push(PushEvent {
        host,
        delivery,
        repositories,
        repository_path,
        default_branch: None,
        refs,
        changed: ChangedPaths::Unknown,
    }))
}

fn azure_devops(value: Value) -> Result<Delivery> {
    let host = GitHost::AzureDevops;
    let resource = &value["resource"];
    let repository = &resource["repository"];
    let repositories = repo_ids([
        repository["remoteUrl"].as_str(),
        repository["sshUrl"].as_str(),
        repository["webUrl"].as_str(),
    ]);
    if repositories.is_empty() {
        return Err(invalid(host, "resource.repository has no remoteUrl"));
    }
    let updates = resource["refUpdates"]
        .as_array()
        .ok_or_else(|| invalid(host, "no resource.refUpdates"))?;
    let refs = updates
        .iter()
        .filter_map(|update| {
            let name = update["name"].as_str()?;
            let commit = update["newObjectId"].as_str().map(str::to_owned);
            Some(ref_update(name.to_owned(), commit))
        })
        .collect();
    Ok(Delivery::Push(PushEvent {
        host,
        delivery: value["id"].as_str().map(str::to_owned),
        repositories,
        repository_path: None,
        default_branch: repository["defaultBranch"]
            .as_str()
            .map(|b| b.trim_start_matches("refs/heads/").to_owned()),
        refs,
        changed: ChangedPaths::Unknown,
    }))
}

impl PushEvent {
    /// Whether this push is to the repository `url` (a GatewaySync's `spec.git.repo`).
    pub fn is_for(&self, url: &str) -> bool {
        let Some(id) = RepoId::parse(url) else {
            return false;
        };
        if self.repositories.contains(&id) {
            return true;
        }
        // Bitbucket Server without links: PROJECT/REPO on any host.
        self.repository_path.as_deref().is_some_and(|path| {
            id.as_str()
                .split_once('/')
                .is_some_and(|(_, id_path)| id_path == path)
        })
    }

    /// The update of `reference` (a GatewaySync's ref as written: `main`, `v2.0.0`,
    /// `refs/heads/main`, `HEAD`) this push made, if it moved it to a commit. A commit id never
    /// moves; `HEAD` is the default branch, or any branch when the payload does not say which.
    pub fn moved(&self, reference: &str) -> Option<&RefUpdate> {
        let reference = reference.trim();
        self.refs
            .iter()
            .filter(|u| u.commit.is_some())
            .find(|update| {
                let name = update.name.as_str();
                if reference == "HEAD" {
                    let branch = name.strip_prefix("refs/heads/");
                    return match &self.default_branch {
                        Some(default) => branch == Some(default.as_str()),
                        None => branch.is_some(),
                    };
                }
                name == reference
                    || name.strip_prefix("refs/heads/") == Some(reference)
                    || name.strip_prefix("refs/tags/") == Some(reference)
            })
    }

    /// Whether the push changed a file under one of `sources` (mapping sources, relative to the
    /// repository's root). Unknown changes touch everything. A templated source
    /// (`sites/{{.GatewayName}}/…`) counts from its fixed beginning (`sites/`), since which
    /// gateways render it is not known here.
    pub fn touches<'a>(&self, mut sources: impl Iterator<Item = &'a str>) -> bool {
        let ChangedPaths::Known(paths) = &self.changed else {
            return true;
        };
        sources.any(|source| {
            let (fixed, templated) = match source.find("{{") {
                Some(at) => (&source[..at], true),
                None => (source, false),
            };
            let prefix = fixed.trim_start_matches("./").trim_matches('/');
            if prefix.is_empty() || prefix == "." {
                return !paths.is_empty();
            }
            paths.iter().any(|path| {
                let path = path.trim_start_matches('/');
                if templated {
                    // `sites/site{{.N}}` covers `sites/site1/x`: a prefix within a segment.
                    return path.starts_with(prefix);
                }
                path == prefix
                    || path
                        .strip_prefix(prefix)
                        .is_some_and(|rest| rest.starts_with('/'))
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!(
            "{}/tests/fixtures/receiver/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read(&path).unwrap()
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    fn push(pairs: &[(&'static str, &str)], file: &str) -> PushEvent {
        match parse(&headers(pairs), &fixture(file)).unwrap() {
            Delivery::Push(event) => event,
            other => panic!("{file}: {other:?}"),
        }
    }

    fn known(paths: &[&str]) -> ChangedPaths {
        ChangedPaths::Known(paths.iter().map(|p| (*p).to_owned()).collect())
    }

    #[test]
    fn github_push_gives_repository_ref_commit_and_files() {
        let event = push(
            &[
                ("x-github-event", "push"),
                ("x-github-delivery", "72d3162e-cc78"),
            ],
            "github-push.json",
        );
        assert_eq!(event.host, GitHost::Github);
        assert_eq!(event.delivery.as_deref(), Some("72d3162e-cc78"));
        assert!(event.is_for("git@github.com:Plant/gateway-config"));
        assert!(event.is_for("https://github.com/plant/gateway-config.git"));
        assert!(!event.is_for("https://github.com/plant/other"));
        assert_eq!(
            event.moved("main").and_then(|u| u.commit.as_deref()),
            Some("1f0e6c3b7d1e2a4b5c6d7e8f9a0b1c2d3e4f5a6b")
        );
        assert!(event.moved("refs/heads/main").is_some());
        assert!(event.moved("HEAD").is_some(), "main is the default branch");
        assert!(event.moved("release").is_none());
        assert!(
            event
                .moved("1f0e6c3b7d1e2a4b5c6d7e8f9a0b1c2d3e4f5a6b")
                .is_none()
        );
        assert_eq!(
            event.changed,
            known(&[
                "gateways/site1/config.json",
                "projects/line3/tags.json",
                "projects/line3/views/old/view.json",
            ])
        );
    }

    #[test]
    fn gitlab_push_reads_project_urls_and_files() {
        let event = push(
            &[
                ("x-gitlab-event", "Push Hook"),
                ("idempotency-key", "k-1"),
                ("x-gitlab-event-uuid", "u-1"),
            ],
            "gitlab-push.json",
        );
        assert_eq!(event.host, GitHost::Gitlab);
        assert_eq!(
            event.delivery.as_deref(),
            Some("k-1"),
            "the retry-stable key wins"
        );
        assert!(event.is_for("https://gitlab.plant.example/ot/site-a/gateways"));
        assert!(event.moved("release").is_some());
        assert!(
            event.moved("HEAD").is_none(),
            "release is not the default branch"
        );
        assert_eq!(event.changed, known(&["config/alarm-pipelines/main.json"]));
    }

    #[test]
    fn gitlab_cut_short_commit_lists_make_changes_unknown() {
        let mut body: Value = serde_json::from_slice(&fixture("gitlab-push.json")).unwrap();
        body["total_commits_count"] = 25.into();
        let parsed = parse(
            &headers(&[("x-gitlab-event", "Push Hook")]),
            body.to_string().as_bytes(),
        );
        let Ok(Delivery::Push(event)) = parsed else {
            panic!("{parsed:?}")
        };
        assert_eq!(event.changed, ChangedPaths::Unknown);
    }

    #[test]
    fn gitea_new_tag_has_unknown_changes_and_wins_over_its_github_headers() {
        // Gitea sends GitHub's header too; its own must decide.
        let event = push(
            &[
                ("x-gitea-event", "push"),
                ("x-github-event", "push"),
                ("x-gitea-delivery", "d-7"),
            ],
            "gitea-push.json",
        );
        assert_eq!(event.host, GitHost::Gitea);
        assert_eq!(event.delivery.as_deref(), Some("d-7"));
        assert!(event.is_for("https://gitea.plant.example/ot/gateways"));
        assert!(event.is_for("git@gitea.plant.example:ot/gateways.git"));
        assert!(event.moved("v2.1.0").is_some());
        assert!(event.moved("refs/tags/v2.1.0").is_some());
        assert!(event.moved("main").is_none());
        assert_eq!(event.changed, ChangedPaths::Unknown);
    }

    #[test]
    fn bitbucket_cloud_branch_update_and_tag_deletion() {
        let event = push(
            &[("x-event-key", "repo:push"), ("x-request-uuid", "r-1")],
            "bitbucket-cloud-push.json",
        );
        assert_eq!(event.host, GitHost::BitbucketCloud);
        assert!(event.is_for("git@bitbucket.org:plant/gateways.git"));
        assert_eq!(
            event.refs,
            vec![
                RefUpdate {
                    name: "refs/heads/main".to_owned(),
                    commit: Some("709d658dc5b6d6afcd46049c2f332ee3f515a67d".to_owned()),
                },
                RefUpdate {
                    name: "refs/tags/v0.9".to_owned(),
                    commit: None
                },
            ]
        );
        assert!(event.moved("main").is_some());
        assert!(event.moved("v0.9").is_none(), "a deleted tag moves nothing");
        assert_eq!(event.changed, ChangedPaths::Unknown);
    }

    #[test]
    fn bitbucket_server_matches_http_and_ssh_clone_urls() {
        let event = push(
            &[
                ("x-event-key", "repo:refs_changed"),
                ("x-request-id", "b-1"),
            ],
            "bitbucket-server-push.json",
        );
        assert_eq!(event.host, GitHost::BitbucketServer);
        assert!(event.is_for("https://bitbucket.plant.example/scm/ot/gateways.git"));
        assert!(event.is_for("ssh://git@bitbucket.plant.example:7999/ot/gateways.git"));
        assert!(event.moved("main").is_some());
        // Without links, PROJECT/REPO on any host.
        let mut body: Value =
            serde_json::from_slice(&fixture("bitbucket-server-push.json")).unwrap();
        body["repository"]["links"] = Value::Null;
        let parsed = parse(
            &headers(&[("x-event-key", "repo:refs_changed")]),
            body.to_string().as_bytes(),
        );
        let Ok(Delivery::Push(event)) = parsed else {
            panic!("{parsed:?}")
        };
        assert!(event.is_for("https://bitbucket.plant.example/scm/ot/gateways.git"));
        assert!(!event.is_for("https://bitbucket.plant.example/scm/ot/other.git"));
    }

    #[test]
    fn azure_devops_push_by_body() {
        let event = push(&[], "azure-devops-push.json");
        assert_eq!(event.host, GitHost::AzureDevops);
        assert_eq!(
            event.delivery.as_deref(),
            Some("03c164c2-8912-4d5e-8009-3707d5f83734")
        );
        assert!(event.is_for("https://dev.azure.com/plant/scada/_git/gateways"));
        assert!(event.is_for("git@ssh.dev.azure.com:v3/plant/scada/gateways"));
        assert!(event.moved("HEAD").is_some());
        assert_eq!(event.changed, ChangedPaths::Unknown);
    }

    #[test]
    fn other_events_of_known_hosts_are_not_pushes() {
        for (pairs, body) in [
            (
                vec![("x-github-event", "ping")],
                "{\"zen\":\"Keep it simple\"}",
            ),
            (vec![("x-gitlab-event", "Merge Request Hook")], "{}"),
            (vec![("x-gitea-event", "issues")], "{}"),
            (
                vec![
                    ("x-event-key", "pullrequest:created"),
                    ("x-request-uuid", "u"),
                ],
                "{}",
            ),
            (vec![("x-event-key", "pr:opened")], "{}"),
            (
                vec![],
                "{\"eventType\":\"build.complete\",\"publisherId\":\"tfs\"}",
            ),
        ] {
            let parsed = parse(&headers(&pairs), body.as_bytes()).unwrap();
            assert!(
                matches!(parsed, Delivery::Other { .. }),
                "{pairs:?}: {parsed:?}"
            );
        }
    }

    #[test]
    fn malformed_or_unknown_payloads_are_errors_naming_the_sender() {
        // (headers, body, the sender the error names)
        type Case = (
            Vec<(&'static str, &'static str)>,
            &'static str,
            &'static str,
        );
        let cases: [Case; 6] = [
            (vec![("x-github-event", "push")], "not json", "github"),
            (
                vec![("x-github-event", "push")],
                "{\"ref\":\"refs/heads/main\"}",
                "github",
            ),
            (
                vec![("x-github-event", "push")],
                "{\"ref\":\"refs/heads/main\",\"repository\":{}}",
                "github",
            ),
            (
                vec![("x-gitlab-event", "Push Hook")],
                "{\"ref\":1}",
                "gitlab",
            ),
            (
                vec![("x-event-key", "repo:push")],
                "{\"repository\":{\"full_name\":\"a/b\"}}",
                "bitbucket-cloud",
            ),
            (vec![], "{\"ref\":\"main\"}", "unknown"),
        ];
        for (pairs, body, sender) in cases {
            match parse(&headers(&pairs), body.as_bytes()) {
                Err(Error::PushPayload { sender: s, .. }) => assert_eq!(s, sender, "{body}"),
                other => panic!("{body}: {other:?}"),
            }
        }
    }

    #[test]
    fn force_pushes_and_new_branches_have_unknown_changes() {
        for (field, value) in [
            ("forced", Value::Bool(true)),
            ("created", Value::Bool(true)),
            ("before", Value::String(ZERO_COMMIT.to_owned())),
            ("commits", Value::Array(vec![])),
        ] {
            let mut body: Value = serde_json::from_slice(&fixture("github-push.json")).unwrap();
            body[field] = value;
            let parsed = parse(
                &headers(&[("x-github-event", "push")]),
                body.to_string().as_bytes(),
            );
            let Ok(Delivery::Push(event)) = parsed else {
                panic!("{parsed:?}")
            };
            assert_eq!(event.changed, ChangedPaths::Unknown, "{field}");
        }
    }

    #[test]
    fn a_deleted_branch_moves_nothing() {
        let mut body: Value = serde_json::from_slice(&fixture("github-push.json")).unwrap();
        body["after"] = ZERO_COMMIT.into();
        body["deleted"] = true.into();
        let parsed = parse(
            &headers(&[("x-github-event", "push")]),
            body.to_string().as_bytes(),
        );
        let Ok(Delivery::Push(event)) = parsed else {
            panic!("{parsed:?}")
        };
        assert!(event.moved("main").is_none());
    }

    #[test]
    fn touches_only_what_mappings_read() {
        let event = PushEvent {
            host: GitHost::Github,
            delivery: None,
            repositories: BTreeSet::new(),
            repository_path: None,
            default_branch: None,
            refs: vec![],
            changed: known(&[
                "README.md",
                "gateways/site1/config.json",
                "projects/line3/tags.json",
            ]),
        };
        let touches = |sources: &[&str]| event.touches(sources.iter().copied());
        assert!(!touches(&[]));
        assert!(!touches(&["docs"]), "an unmapped path");
        assert!(
            !touches(&["projects/line", "gateways/site10"]),
            "a prefix is not a directory"
        );
        assert!(touches(&["projects/line3"]));
        assert!(touches(&["projects/line3/"]));
        assert!(touches(&["./gateways/site1/config.json"]));
        assert!(touches(&["gateways/{{.GatewayName}}/config.json"]));
        assert!(touches(&["gateways/site{{.Vars.n}}"]));
        assert!(touches(&["."]), "the whole repository");
        assert!(touches(&["docs", "README.md"]));
        let unknown = PushEvent {
            changed: ChangedPaths::Unknown,
            ..event.clone()
        };
        assert!(unknown.touches(["docs"].into_iter()));
    }
}
