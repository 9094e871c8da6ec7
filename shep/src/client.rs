//! A small client library for participants: build and sign envelopes, check
//! signatures as a provider would. Simulated providers are in [`crate::script`]
//! (scripts, and the built-in rules). Used by the CLI, the demo and the tests.

use std::time::{Duration, SystemTime};

use shep_nuc::ca::Signer;
use shep_proto::envelope::v1::{
    Attachment, Body, Channel, MessageType, Payload, Sender, SignedDocument, SignedEnvelope,
    StatusReport, Subject,
};

/// A sending system with the key it signs with.
#[derive(Debug)]
pub struct Participant {
    pub sender_id: String,
    pub channel: Channel,
    pub signer: Signer,
}

/// A fresh message id.
pub fn new_message_id() -> String {
    uuid::Uuid::new_v4().hyphenated().to_string()
}

/// A subject by IIN.
pub fn iin(iin: &str) -> Subject {
    Subject {
        id: Some(shep_proto::envelope::v1::subject::Id::Iin(iin.to_owned())),
    }
}

impl Participant {
    /// Creates a participant.
    pub fn new(sender_id: &str, channel: Channel, signer: Signer) -> Self {
        Self {
            sender_id: sender_id.to_owned(),
            channel,
            signer,
        }
    }

    /// A REQUEST body for `service_id` about `subject`, dated now.
    pub fn request(&self, service_id: &str, subject: Subject) -> Body {
        Body {
            message_id: new_message_id(),
            service_id: service_id.to_owned(),
            message_type: MessageType::Request as i32,
            message_date: Some(prost_types::Timestamp::from(SystemTime::now())),
            sender: Some(Sender {
                sender_id: self.sender_id.clone(),
            }),
            subject: Some(subject),
            channel: self.channel as i32,
            ..Body::default()
        }
    }

    /// A REQUEST with a JSON form and attachments.
    pub fn application(
        &self,
        service_id: &str,
        subject: Subject,
        form_json: &str,
        attachments: Vec<Attachment>,
    ) -> Body {
        Body {
            payload: Some(Payload {
                content_type: "application/json".to_owned(),
                data: form_json.as_bytes().to_vec(),
            }),
            attachments,
            ..self.request(service_id, subject)
        }
    }

    /// Serializes and signs `body`.
    pub fn seal(&self, body: &Body) -> anyhow::Result<SignedEnvelope> {
        Ok(self.signer.seal(body)?)
    }

    /// A provider's report about `application` (the delivered request's body).
    pub fn report(
        &self,
        application: &Body,
        report: StatusReport,
    ) -> anyhow::Result<SignedEnvelope> {
        let body = Body {
            message_id: new_message_id(),
            correlation_id: application.message_id.clone(),
            service_id: application.service_id.clone(),
            message_type: shep_gateway::lifecycle::report_type(report.status()) as i32,
            message_date: Some(prost_types::Timestamp::from(SystemTime::now())),
            sender: Some(Sender {
                sender_id: self.sender_id.clone(),
            }),
            subject: application.subject.clone(),
            // The centre reports the issue of a paper result on its own
            // channel; providers report from their desk.
            channel: if self.channel == Channel::ServiceCentre {
                Channel::ServiceCentre
            } else {
                Channel::ProviderDesk
            } as i32,
            report: Some(report),
            ..Body::default()
        };
        self.seal(&body)
    }

    /// An electronic document signed by this participant.
    pub fn document(
        &self,
        name: &str,
        content_type: &str,
        content: &[u8],
    ) -> anyhow::Result<SignedDocument> {
        Ok(SignedDocument {
            name: name.to_owned(),
            content_type: content_type.to_owned(),
            content: content.to_vec(),
            signature: Some(self.signer.sign(content)?),
        })
    }
}

/// The certificates a receiving side trusts, to verify what it receives
/// (result documents, delivered envelopes) the way the gateway does.
#[derive(Debug)]
pub struct TrustAnchors {
    verifier: shep_nuc::verify::SignatureVerifier,
}

impl TrustAnchors {
    /// Trusts `roots`, knowing `intermediates` (DER).
    pub fn new(roots: &[Vec<u8>], intermediates: &[Vec<u8>]) -> anyhow::Result<Self> {
        Ok(Self {
            verifier: shep_nuc::verify::SignatureVerifier::new(
                roots,
                intermediates,
                Duration::from_secs(300),
            )
            .map_err(anyhow::Error::msg)?,
        })
    }

    /// Trusts the test НУЦ kept in `dir` (`<data_dir>/nuc`).
    pub fn from_nuc_dir(dir: &std::path::Path) -> anyhow::Result<Self> {
        let roots = shep_nuc::ca::certificates(&dir.join("root.cert.pem"))?;
        let intermediates = shep_nuc::ca::certificates(&dir.join("issuing.cert.pem"))?;
        Self::new(&roots, &intermediates)
    }

    /// Verifies a delivered envelope's signature over its body now, as the
    /// gateway did when it accepted it.
    pub fn verify_envelope(
        &self,
        envelope: &SignedEnvelope,
    ) -> Result<shep_nuc::verify::SignerIdentity, shep_gateway::error::GatewayError> {
        // Business data signed as XML (sent through the SOAP front door):
        // its XMLDSig, and the body's fields equal to the signed XML's.
        if !envelope.xml_data.is_empty() {
            let body = prost::Message::decode(envelope.body.as_slice()).map_err(
                |error: prost::DecodeError| {
                    shep_gateway::error::GatewayError::MalformedBody(error.to_string())
                },
            )?;
            let verified = shep_gateway::xmldata::check_signed(&envelope.xml_data, &body)?;
            return self
                .verifier
                .verify(
                    Some(&verified.signature),
                    &verified.signed_info,
                    time::OffsetDateTime::now_utc(),
                )
                .map(|signer| (*signer).clone())
                .map_err(shep_gateway::error::GatewayError::from);
        }
        self.verifier
            .verify(
                envelope.signature.as_ref(),
                &envelope.body,
                time::OffsetDateTime::now_utc(),
            )
            .map(|signer| (*signer).clone())
            .map_err(shep_gateway::error::GatewayError::from)
    }

    /// Verifies a signed document now: chain, validity, usage, signature.
    pub fn verify_document(
        &self,
        document: &SignedDocument,
    ) -> Result<shep_nuc::verify::SignerIdentity, shep_gateway::error::GatewayError> {
        self.verifier
            .verify(
                document.signature.as_ref(),
                &document.content,
                time::OffsetDateTime::now_utc(),
            )
            .map(|signer| (*signer).clone())
            .map_err(shep_gateway::error::GatewayError::from)
    }
}

/// What a simulated provider did, for narration.
#[derive(Debug, Clone)]
pub struct ProviderStep {
    pub message_id: String,
    pub service_id: String,
    pub what: String,
}

/// A gRPC error as a person reads it: code, message and reason.
pub fn describe(status: tonic::Status) -> anyhow::Error {
    use tonic_types::StatusExt as _;
    let reason = status
        .get_details_error_info()
        .map(|info| info.reason)
        .unwrap_or_else(|| "-".to_owned());
    anyhow::anyhow!(
        "{:?}: {} (reason {reason})",
        status.code(),
        status.message()
    )
}
