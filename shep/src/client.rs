//! A small client library for participants: build and sign envelopes, and run
//! a simulated provider system (the built-in rules; [`crate::script`] plays
//! any script). Used by the CLI, the demo and the tests.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use shep_nuc::ca::Signer;
use shep_proto::envelope::v1::{
    ApplicationStatus, Attachment, Body, Channel, MessageType, Payload, Sender, SignedDocument,
    SignedEnvelope, StatusReport, Subject,
};
use tokio::sync::mpsc;
use tonic::transport::Channel as GrpcChannel;

use crate::script::{
    Ack as ScriptAck, DEFAULT_SERVICE, Delay, RunOptions, Script, ServiceScript, Span, Step,
    StepStatus, run_script,
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
        let final_status = matches!(
            ApplicationStatus::try_from(report.status),
            Ok(ApplicationStatus::Completed | ApplicationStatus::Refused)
        );
        let body = Body {
            message_id: new_message_id(),
            correlation_id: application.message_id.clone(),
            service_id: application.service_id.clone(),
            message_type: if final_status {
                MessageType::Response
            } else {
                MessageType::Update
            } as i32,
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

/// How a simulated provider treats the requests it receives: shorthands for
/// built-in scripts ([`ProviderRule::script`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProviderRule {
    /// Acknowledge, register, take into work, complete with a signed result.
    Complete,
    /// Acknowledge, register, refuse with a reason.
    Refuse,
    /// Acknowledge as not accepted, without resend.
    Reject,
}

impl ProviderRule {
    /// The built-in script of this rule, waiting `step_delay` before each report.
    pub fn script(self, step_delay: Duration) -> Script {
        let delay = Some(Delay::Fixed(Span(step_delay)));
        let step = |status| Step {
            status,
            delay,
            registration_number: None,
            term: None,
            reason: None,
            notification: None,
            document: None,
        };
        let service = match self {
            ProviderRule::Complete => ServiceScript {
                steps: vec![
                    step(StepStatus::Registered),
                    step(StepStatus::InWork),
                    step(StepStatus::Completed),
                ],
                ..ServiceScript::default()
            },
            ProviderRule::Refuse => ServiceScript {
                steps: vec![
                    step(StepStatus::Registered),
                    Step {
                        reason: Some("представлен неполный пакет документов".to_owned()),
                        ..step(StepStatus::Refused)
                    },
                ],
                ..ServiceScript::default()
            },
            ProviderRule::Reject => ServiceScript {
                ack: vec![ScriptAck::Reject],
                reject_reason: Some("the simulated provider rejects every request".to_owned()),
                ..ServiceScript::default()
            },
        };
        Script {
            seed: 0,
            services: [(DEFAULT_SERVICE.to_owned(), service)].into(),
        }
    }
}

/// What a simulated provider did, for narration.
#[derive(Debug, Clone)]
pub struct ProviderStep {
    pub message_id: String,
    pub service_id: String,
    pub what: String,
}

/// Runs a simulated provider on one Subscribe connection until the stream
/// ends, by one of the built-in rules. Each step is sent to `steps` (if
/// given) and logged. [`run_script`] plays any script.
pub async fn run_provider(
    channel: GrpcChannel,
    participant: Participant,
    rule: ProviderRule,
    step_delay: Duration,
    steps: Option<mpsc::UnboundedSender<ProviderStep>>,
) -> anyhow::Result<()> {
    run_script(
        channel,
        participant,
        Arc::new(rule.script(step_delay)),
        RunOptions {
            steps,
            ..RunOptions::default()
        },
    )
    .await
}
