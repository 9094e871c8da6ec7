//! The signature check: chain to a trusted НУЦ anchor, validity at signing
//! time, key usage, revocation, and the signature over the exact body bytes.

use std::sync::Arc;

use shep_proto::envelope::v1::{Body, Signature, SignedEnvelope};
use time::OffsetDateTime;

use super::batch::{BatchSettings, Ed25519Batcher};
use crate::envelope::Inbound;
use crate::error::GatewayError;
use crate::routes::RoutingTable;
use shep_nuc::revocation::RevocationCheck;
use shep_nuc::verify::{SignatureVerifier, SignerIdentity};

/// What the envelope checks need beyond the routing table: the verifier, the
/// revocation check and the configured tolerances.
#[derive(Debug)]
pub(crate) struct Checks {
    verifier: SignatureVerifier,
    revocation: RevocationCheck,
    /// Off only for load tests that measure the gateway without signature
    /// checks (`checks.verify_signatures = false`); the identity rules go too.
    verify_signatures: bool,
    /// Ed25519 signatures verified in batches (`checks.batch_ed25519`).
    batcher: Option<Ed25519Batcher>,
    /// How far `message_date` may be from the gateway's clock.
    pub(crate) skew_secs: u64,
    /// The largest attachment taken (`limits.max_attachment_bytes`).
    pub(crate) max_attachment_bytes: usize,
}

impl Checks {
    pub(crate) fn new(
        verifier: SignatureVerifier,
        revocation: RevocationCheck,
        verify_signatures: bool,
        skew_secs: u64,
    ) -> Self {
        Self {
            verifier,
            revocation,
            verify_signatures,
            batcher: None,
            skew_secs,
            max_attachment_bytes: usize::MAX,
        }
    }

    /// Verifies Ed25519 signatures in batches gathered as `settings` says.
    pub(crate) fn with_batches(mut self, settings: BatchSettings) -> Self {
        self.batcher = Some(Ed25519Batcher::new(settings));
        self
    }

    /// Refuses attachments over `bytes` with `TOO_LARGE`.
    pub(crate) fn with_max_attachment(mut self, bytes: usize) -> Self {
        self.max_attachment_bytes = bytes;
        self
    }

    /// The signer of the envelope, once its signature checks out.
    pub(crate) async fn signer(
        &self,
        envelope: &SignedEnvelope,
        inbound: &Inbound,
    ) -> Result<Arc<SignerIdentity>, GatewayError> {
        self.envelope_signer(envelope, &inbound.body, inbound.signed_at)
            .await
    }

    /// The signer of `envelope` (whose decoded body is `body`) as of
    /// `signed_at`: its detached signature over `body`, or, for business
    /// data that came as signed XML (the SOAP front door), the XMLDSig's
    /// references and SignatureValue by the same certificate rules, with the
    /// body's data fields equal to the signed XML's.
    pub(crate) async fn envelope_signer(
        &self,
        envelope: &SignedEnvelope,
        body: &Body,
        signed_at: OffsetDateTime,
    ) -> Result<Arc<SignerIdentity>, GatewayError> {
        if envelope.xml_data.is_empty() {
            return self
                .verify_bytes(envelope.signature.as_ref(), &envelope.body, signed_at)
                .await;
        }
        if !self.verify_signatures {
            return Ok(Arc::new(SignerIdentity::default()));
        }
        let verified = crate::xmldata::check_signed(&envelope.xml_data, body)?;
        self.verify_bytes(Some(&verified.signature), &verified.signed_info, signed_at)
            .await
    }

    /// The signer of `signed` (a result document, a body), once `signature`
    /// checks out as of `signed_at`.
    pub(crate) async fn verify_bytes(
        &self,
        signature: Option<&Signature>,
        signed: &[u8],
        signed_at: OffsetDateTime,
    ) -> Result<Arc<SignerIdentity>, GatewayError> {
        if !self.verify_signatures {
            return Ok(Arc::new(SignerIdentity::default()));
        }
        let prepared = self.verifier.prepare(signature, signed_at)?;
        let signer = match (&self.batcher, prepared.batchable_ed25519()) {
            (Some(batcher), Some(key)) => {
                let key = key.clone();
                batcher.verify(&key, signed, prepared.value()).await?;
                prepared.into_identity()
            }
            _ => prepared.verify(signed)?,
        };
        self.revocation
            .check(&shep_nuc::status::CertificateId {
                issuer: signer.issuer.clone(),
                serial: signer.serial.clone(),
            })
            .await?;
        Ok(signer)
    }

    /// The channel's identity rule ([`super::check_identity`]), unless
    /// signatures are off.
    pub(crate) fn identity(
        &self,
        routes: &RoutingTable,
        inbound: &Inbound,
        signer: &SignerIdentity,
    ) -> Result<(), GatewayError> {
        if !self.verify_signatures {
            return Ok(());
        }
        super::check_identity(routes, inbound, signer)
    }

    /// The signer must be an operator of `system` ([`super::check_operator`]),
    /// unless signatures are off.
    pub(crate) fn operator(
        &self,
        routes: &RoutingTable,
        system: &str,
        signer: &SignerIdentity,
    ) -> Result<(), GatewayError> {
        if !self.verify_signatures {
            return Ok(());
        }
        super::check_operator(routes, system, signer)
    }
}
