//! The webhook receiver's decisions, free of I/O: which ref a payload asks for
//! ([`payload`]), which pushes a Git host reports ([`push`]), whether a request may ask at all
//! ([`auth`]), and one name per repository whatever its URL's spelling ([`repo_url`]). The
//! operator's HTTP server (`stoker-operator`) reads requests, calls these, and patches the
//! `GatewaySync`s.

pub mod auth;
pub mod payload;
pub mod push;
pub mod repo_url;

pub use auth::Secrets;
pub use payload::{PayloadSource, RequestedRef, requested_ref};
pub use push::{ChangedPaths, Delivery, GitHost, PushEvent, RefUpdate};
pub use repo_url::RepoId;
