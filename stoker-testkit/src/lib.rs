//! Test infrastructure for Stoker: real Git servers and a real Kubernetes API server on
//! loopback, and Git repositories to serve.
//!
//! This crate is never shipped (`publish = false`); only tests and `hack/` scripts use it.
//!
//! - [`git_http`]: smart HTTP in front of git's own `git http-backend`, optionally behind a
//!   token, with fault injection (status codes, delays) controllable at run time.
//! - [`git_daemon`]: `git daemon` on a free loopback port.
//! - [`sshd`]: OpenSSH's `sshd` on a free loopback port with a throw-away host key, client key
//!   and `known_hosts` (plus a wrong one, to test host-key refusal).
//! - [`repo`]: bare repositories built with the `git` CLI, deterministic author and dates.
//! - [`git`]: all of the above started once per test binary ([`git::servers`]), or reused from
//!   `STOKER_TEST_GIT_*` environment variables set by `hack/git-servers.sh start`.
//! - [`kube_api`]: a real `kube-apiserver` + etcd on loopback ([`kube_api::cluster`]), built
//!   and cached by `hack/kube.sh install`, one per test binary or reused from
//!   `STOKER_TEST_KUBECONFIG`; fresh namespaces per test, `kubectl`, API server restarts.
//! - [`gateway_sim`]: a simulator of the Ignition gateway REST endpoints Stoker calls (scan,
//!   designers, gateway-info) with an API key, a call log, Designer sessions, injected
//!   failures and HTTPS ([`gateway_sim::GatewaySim`], binary `stoker-gateway-sim`).
//! - [`github_api`]: the GitHub REST API's App token exchange
//!   (`POST /app/installations/{id}/access_tokens`), checking the App's RS256 JWT, issuing
//!   `ghs_…` tokens that a [`git_http`] server can be told to accept, with injected failures.
//! - [`http_recorder`]: an HTTP endpoint that records what it receives and answers what the
//!   test scripts (a status, `Retry-After`, or a hang): Slack, Teams, PagerDuty or any webhook.
//! - [`metrics`]: the metrics the operator and the agent export (the list the scrape and chart
//!   tests share) and a parser of the text exposition.
//! - [`process`]: servers started as child processes die with the test binary, even when it is
//!   killed: they run under `hack/lib/reap-on-eof.sh`, which watches a pipe we hold.
//!
//! Nothing here ever talks to anything but 127.0.0.1.
#![forbid(unsafe_code)]

mod axum_thread;
pub mod error;
pub mod gateway_sim;
pub mod git;
pub mod git_daemon;
pub mod git_http;
pub mod github_api;
pub mod http_recorder;
pub mod kube_api;
pub mod metrics;
pub mod process;
pub mod repo;
pub mod sshd;

pub use error::{Error, Result};
