//! Conformance kits: grade a participant system against the ШЭП contract and
//! the regulations in one run, through the same gateway it talks to in
//! tests. The provider kit ([`provider`]) drives a connected provider system
//! through a catalogue of cases; each case passes or fails with the reason
//! and the exchanges that show it ([`report`]). The exchange journal
//! ([`journal`]) is the evidence: the kits judge what crossed the gateway,
//! never what a participant says of itself.

pub mod consumer;
pub mod example_consumer;
pub mod journal;
pub mod provider;
pub mod report;

pub use report::{Outcome, Report};
