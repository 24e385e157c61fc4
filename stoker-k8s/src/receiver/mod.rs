//! The webhook receiver's decisions, free of I/O: which ref a payload asks for
//! ([`payload`]), which pushes a Git host reports ([`push`]), whether a request may ask at all
//! ([`auth`]), one name per repository whatever its URL's spelling ([`repo_url`]), and the
//! bounded memories of who asked lately ([`limits`]). The HTTP server ([`server`]), started by
//! `stoker-operator` on every replica, reads requests, calls these, and annotates the
//! `GatewaySync`s. The controller reports an unusable `spec.webhook.secretRef` on the resource
//! ([`secret_ref`]).

pub mod auth;
pub mod limits;
pub mod payload;
pub mod push;
pub mod repo_url;
pub mod secret_ref;
pub mod server;

pub use auth::Secrets;
pub use payload::{PayloadSource, RequestedRef, requested_ref};
pub use push::{ChangedPaths, Delivery, GitHost, PushEvent, RefUpdate};
pub use repo_url::RepoId;
pub use server::{Receiver, ReceiverConfig, start};
