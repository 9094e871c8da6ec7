//! The НУЦ (национальный удостоверяющий центр) of shep-sim, in one crate:
//!
//! - [`ca`]: the test certification authority in the national conventions,
//!   its register of what it issued and revoked, and the [`ca::Signer`];
//! - [`verify`]: the signature check («условие 2») against trust anchors;
//! - [`status`] and [`revocation`]: how a relying party asks the НУЦ about a
//!   certificate (in-process or over gRPC) and caches the answer;
//! - [`xmldsig`]: enveloped XML-DSig for the SOAP front door: structure,
//!   algorithms and digests, the rest left to [`verify`];
//! - [`service`]: the НУЦ's faces, the `shep.nuc.v1.Nuc` gRPC service and
//!   the HTTP endpoints its certificates point at.
//!
//! It depends on `shep-proto` only; the gateway, the registries and the
//! command line depend on it. Its errors are its own ([`verify::VerifyError`],
//! [`ca::NucError`]); its faces answer from the error catalogue of
//! `shep_proto`, as the gateway does.

pub mod ca;
pub mod ocsp;
pub mod revocation;
pub mod service;
pub mod status;
pub mod verify;
pub mod xmldsig;
