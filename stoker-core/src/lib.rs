//! # stoker-core
//!
//! The vocabulary shared by Stoker's engine, operator, agent and plugins:
//!
//! - [`Revision`], [`ContentId`], and [`Artifact`] (a read-only tree at one revision);
//! - [`SyncSpec`] / [`Profile`] / [`Mapping`] / [`Patch`], with serde names identical to the
//!   `GatewaySync` resource's `spec.sync`, and profile resolution;
//! - [`template`] rendering (Go `text/template`, as stoker-operator users write it) and [`patch`]
//!   (JSON fields set by dot path, feature `patch`);
//! - the traits [`Source`], [`SyncStrategy`], [`Notifier`] and [`Gateway`];
//! - [`LocalSource`], a directory as a source (feature `local`, on by default);
//! - [`git::GitSource`], a Git repository as a source (feature `git`, gix, on by default);
//! - [`ignition::IgnitionGateway`], the Ignition gateway REST client as a [`Gateway`]
//!   (feature `ignition`, on by default).
//! - built-in [`Notifier`]s for Slack, Microsoft Teams, PagerDuty (Events API v2) and any
//!   HMAC-signed webhook, and `notify::dispatch::Dispatcher`, which delivers in the background
//!   with retries and deduplication (feature `notify`).
//!
//! With `default-features = false` it depends only on serde, thiserror, async-trait and globset.
#![forbid(unsafe_code)]

pub mod artifact;
pub mod content_id;
pub mod context;
pub mod error;
pub mod gateway;
#[cfg(feature = "git")]
pub mod git;
#[cfg(feature = "ignition")]
pub mod ignition;
#[cfg(feature = "local")]
pub mod local;
pub mod notify;
#[cfg(feature = "patch")]
pub mod patch;
pub mod profile;
pub mod relpath;
pub mod report;
pub mod revision;
#[cfg(feature = "schema")]
mod schema;
pub mod source;
pub mod spec;
pub mod strategy;
pub mod template;

pub use artifact::{Artifact, Entry, EntryKind, Listing};
pub use content_id::ContentId;
pub use context::TemplateContext;
pub use error::{
    Error, ErrorCategory, GatewayErrorKind, GitErrorKind, GithubAppErrorKind, NotifyErrorKind,
    Result, TemplateLimit,
};
pub use gateway::{EndpointCall, Gateway, Health, PreSyncCheck, ScanOutcome};
#[cfg(feature = "git")]
pub use git::{GitArtifact, GitAuth, GitSource, GitSourceConfig, RetryPolicy};
#[cfg(feature = "local")]
pub use local::{LocalArtifact, LocalSource};
pub use notify::{Event, EventKind, Notifier};
pub use profile::{
    DesignerSessionPolicy, Mapping, MappingType, Patch, Profile, ProfileSpec, SyncDefaults,
    SyncSpec,
};
pub use report::{FileChange, SyncReport};
pub use revision::Revision;
pub use source::Source;
pub use strategy::{SyncRequest, SyncStrategy};
