//! The shep-sim gateway: checks signed envelopes, routes them by the routing
//! table to registry adapters or provider request streams, and tracks the
//! applications' statuses.

pub mod admin_auth;
pub mod admin_http;
pub mod calendar;
pub mod cli;
pub mod client;
pub mod coalesce;
pub mod config;
pub mod delivery;
pub mod engine;
pub mod envelope;
pub mod error;
pub mod grpc;
pub mod health;
pub mod journal;
pub mod lifecycle;
pub mod loadgen;
pub mod metrics;
pub mod routes;
pub mod server;
pub mod store;
pub mod toolkit;

/// Moved to `shep_nuc::revocation`; kept like [`verify`], remove after the merge.
pub use shep_nuc::revocation;
/// Moved to `shep_nuc::verify`. Kept for the CLI (and `client`) until they
/// import `shep_nuc`; remove after the merge.
pub use shep_nuc::verify;
