//! # stoker-k8s
//!
//! Kubernetes as a library for Stoker: everything the operator, the pod injector and the agent
//! agree on, and the operator's runtime. The binaries (`stoker-operator`, `stoker-agent
//! sidecar`) only parse their configuration and wire these together.
//!
//! Types and pure functions (no API server, unit-tested):
//!
//! - [`crd`] — the `GatewaySync` resource (`stoker.io/v1alpha1`): spec (composed of
//!   stoker-core's `spec.git` / `spec.sync` types plus `polling`, `gateway`, `agent`), status,
//!   printer columns, and the generated CustomResourceDefinition ([`crd::crd`],
//!   [`crd::crd_yaml`]; the `crdgen` binary writes it into the Helm chart).
//! - [`annotations`] — pod and resource annotations, labels, names.
//! - [`conditions`] — condition types and reasons, and a setter that keeps
//!   `lastTransitionTime` while the status is unchanged.
//! - [`injector`] — the pod injector: a gateway pod and its namespace's `GatewaySync`s → the
//!   JSON patch that adds the `stoker-agent` native sidecar, or why the pod is refused.
//! - [`validation`] — spec checks the schema cannot express → the `ProfilesValid` condition.
//! - [`refs`] — which ref to resolve: `spec.git.ref` or the webhook's
//!   `stoker.io/requested-ref`.
//! - [`discovery`] — which running pods are gateways of a resource, their names and profiles.
//! - [`metadata`] — the controller → agent ConfigMap `stoker-metadata-{cr}`.
//! - [`gateway_status`] — the agent → controller ConfigMaps, one per gateway pod.
//! - [`legacy_status`] — stoker-operator v0.5.1's agents' shared status ConfigMap
//!   `stoker-status-{cr}`, read for gateways without a report of ours during a migration.
//! - [`rbac`] — the agents' RoleBinding object `stoker-agent-{cr}` (`rbac.autoBindAgent`).
//! - [`aggregate`] — pods + reports + resolved commit → `status.discoveredGateways`, the
//!   `GATEWAYS` column and the conditions.
//! - [`alerting`] — `spec.alerting`: which notifications a fleet's change makes (one
//!   "5 of 5 gateways synced" message, failures naming the gateways, recoveries), which
//!   webhook gets which, and the `NotificationsDelivered` condition; [`alerting::runtime`]
//!   sends them in the background (stoker-core's `notify` dispatcher).
//! - [`events`] — Event reasons, and which Events a reconciliation publishes (once per
//!   change, never per pass).
//! - [`admission`] — the two admission webhooks' answers.
//! - [`agent::plan`] — the agent's planning: the metadata ConfigMap, its pod and its
//!   environment ([`agent::AgentConfig`]) → what to sync, or why not.
//! - [`receiver`] — the webhook receiver's decisions: the ref a payload asks for, Git hosts'
//!   push events, request authentication, repository URL normalisation.
//!
//! The parts that talk to the API server, the network or the disk (tested against a real
//! kube-apiserver from `stoker-testkit`):
//!
//! - [`controller`] — the `GatewaySync` reconciler and the watches that drive it.
//! - [`leader`] — leader election with a `Lease` (client-go's protocol and expiry rule).
//! - [`webhook`] — the HTTPS server that carries the admission answers, and its self-managed
//!   (or cert-manager) certificate.
//! - [`agent::report`] and [`agent::watch`] — the agent's status ConfigMap and Events, and
//!   its watches of the metadata ConfigMap and its own pod.
//! - [`credentials`] — Git credentials read from Secrets and kept as private files.
//! - [`github_token`] — the GitHub App installation token Secret `stoker-github-token-{cr}`
//!   the operator keeps for the agents.
//! - [`probes`] and [`metrics`] — `/healthz`, `/readyz`, `/startupz` and `/metrics`, shared
//!   by the operator and the agent's sidecar.
//! - [`error`] — the crate's [`Error`].
//!
//! Nothing here installs a rustls crypto provider: the binaries choose it in `main` (the
//! webhook server names aws-lc-rs itself when none is installed).
#![forbid(unsafe_code)]

mod accept;
pub mod admission;
pub mod agent;
pub mod aggregate;
pub mod alerting;
pub mod annotations;
pub mod conditions;
pub mod controller;
pub mod crd;
pub mod credentials;
pub mod discovery;
pub mod error;
pub mod events;
pub mod gateway_status;
pub mod github_token;
pub mod injector;
pub mod leader;
pub mod legacy_status;
pub mod metadata;
pub mod metrics;
pub mod probes;
pub mod rbac;
pub mod receiver;
pub mod refs;
pub mod validation;
pub mod webhook;

pub use crd::{GatewaySync, GatewaySyncSpec, GatewaySyncStatus};
pub use error::{Error, Result};
