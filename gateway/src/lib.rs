//! The shep-sim gateway: checks signed envelopes, routes them by the routing
//! table to registry adapters or provider request streams, and tracks the
//! applications' statuses.

pub mod calendar;
pub mod error;
pub mod routes;
