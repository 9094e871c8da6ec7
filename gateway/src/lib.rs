//! The shep-sim gateway: checks signed envelopes, routes them by the routing
//! table to registry adapters or provider request streams, and tracks the
//! applications' statuses.
//!
//! docs/ARCHITECTURE.md maps the modules; in short: [`pipeline`] is the
//! request path of Call, Submit and Report (its steps per RPC and its
//! layers), [`checks`] the checks it runs, [`registry`] the registries behind
//! their layers, [`provider`] and [`status`] the provider and consumer sides,
//! [`grpc`] the thin edge, [`server`] what starts it all.

mod admin;
pub mod admin_auth;
mod admin_http;
pub mod calendar;
mod checks;
pub use shep_adapters::coalesce;
pub mod config;
mod console;
pub mod deadlines;
pub mod engine;
pub mod envelope;
pub mod error;
#[cfg(test)]
mod fuzzing;
mod grpc;
pub mod health;
pub mod lifecycle;
pub mod metrics;
mod overdue;
pub mod participants;
pub mod pipeline;
mod provider;
mod registry;
pub mod routes;
pub mod server;
mod soap;
pub mod soap_client;
mod status;
pub mod storage;
pub mod telemetry;
#[cfg(test)]
mod testing;
pub mod toolkit;
pub mod xmldata;
