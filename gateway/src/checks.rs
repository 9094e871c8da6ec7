//! The checks an envelope passes before the gateway acts on it, each a small
//! unit with its own tests. The order they run in, per RPC, is written once
//! in [`crate::pipeline`].
//!
//! A check is a plain function (or a method of [`Checks`] when it needs the
//! verifier) from what is known so far to `Result<_, GatewayError>`; it knows
//! nothing of gRPC.

mod applicant;
mod attorney;
mod batch;
mod envelope;
mod identity;
mod report;
mod route;
mod signature;

pub(crate) use applicant::check_applicant;
pub(crate) use attorney::concerns;
pub(crate) use batch::BatchSettings;
pub(crate) use envelope::{attachments, decode, message_type};
pub(crate) use identity::{check_identity, check_operator};
pub(crate) use report::{ReportFields, report_fields, status_fields};
pub(crate) use route::{authorize, check_provider, check_system, provider_for};
pub(crate) use signature::Checks;
