//! The `shep` command of shep-sim, apart from the gateway library: the
//! command line, a participant client with the simulated provider and its
//! scripts, and the load generator with its echo backend. A library as well, so that the
//! tests and benches drive the same client and load generator.

pub mod cli;
pub mod client;
pub mod conformance;
pub mod loadgen;
pub mod logging;
pub mod script;
