//! The shep-sim gateway: checks signed envelopes, routes them by the routing
//! table to registry adapters or provider request streams, and tracks the
//! applications' statuses.

pub mod admin_auth;
pub mod admin_http;
pub mod calendar;
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
pub mod metrics;
pub mod nuc_service;
pub mod revocation;
pub mod routes;
pub mod server;
pub mod store;
pub mod toolkit;
pub mod verify;
