//! # stoker-k8s
//!
//! Kubernetes as a library for Stoker: the `GatewaySync` custom resource, the reconciler and the
//! pod injector. This crate is a placeholder until the operator work lands; it re-exports the
//! profile types the resource's `spec.sync` is made of.
#![forbid(unsafe_code)]

pub use stoker_core::{Mapping, Patch, ProfileSpec, SyncDefaults, SyncSpec};
