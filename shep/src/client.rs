//! A small client library for participants: build and sign envelopes, and run
//! a simulated provider system. Used by the CLI, the demo and the tests.

use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use prost::Message;
use shep_nuc::ca::Signer;
use shep_proto::envelope::v1::{
    ApplicationStatus, Attachment, Body, Channel, MessageType, Payload, Sender, SignedDocument,
    SignedEnvelope, StatusReport, Subject,
};
use shep_proto::provider::v1::provider_client::ProviderClient;
use shep_proto::provider::v1::{
    Ack, Hello, ReceiveStatus, ResendMessage, SubscribeRequest, subscribe_request,
    subscribe_response,
};
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel as GrpcChannel;

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

/// How a simulated provider treats the requests it receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProviderRule {
    /// Acknowledge, register, take into work, complete with a signed result.
    Complete,
    /// Acknowledge, register, refuse with a reason.
    Refuse,
    /// Acknowledge as not accepted, without resend.
    Reject,
}

/// What a simulated provider did, for narration.
#[derive(Debug, Clone)]
pub struct ProviderStep {
    pub message_id: String,
    pub service_id: String,
    pub what: String,
}

/// Runs a simulated provider on one Subscribe connection until the stream
/// ends. Each step is sent to `steps` (if given) and logged.
pub async fn run_provider(
    channel: GrpcChannel,
    participant: Participant,
    rule: ProviderRule,
    step_delay: Duration,
    steps: Option<mpsc::UnboundedSender<ProviderStep>>,
) -> anyhow::Result<()> {
    // Deliveries carry scans inline: as large as the gateway's own limit
    // (`limits.max_message_bytes`), not tonic's 4 MiB default.
    let mut client = ProviderClient::new(channel).max_decoding_message_size(usize::MAX);
    let (uplink, outbound) = mpsc::channel(64);
    uplink
        .send(SubscribeRequest {
            kind: Some(subscribe_request::Kind::Hello(Hello {
                provider_id: participant.sender_id.clone(),
                max_in_flight: 8,
                service_ids: Vec::new(),
            })),
        })
        .await?;
    let mut inbound = client
        .subscribe(ReceiverStream::new(outbound))
        .await
        .context("subscribing to the request stream")?
        .into_inner();
    let say = |message_id: &str, service_id: &str, what: String| {
        tracing::info!(provider = %participant.sender_id, %message_id, "{what}");
        if let Some(steps) = &steps {
            let _ = steps.send(ProviderStep {
                message_id: message_id.to_owned(),
                service_id: service_id.to_owned(),
                what,
            });
        }
    };
    while let Some(message) = inbound.next().await {
        let Some(kind) = message?.kind else { continue };
        let delivery = match kind {
            subscribe_response::Kind::Welcome(welcome) => {
                say(
                    "",
                    "",
                    format!("subscribed as connection {}", welcome.connection_id),
                );
                continue;
            }
            subscribe_response::Kind::Delivery(delivery) => delivery,
        };
        let envelope = delivery.envelope.clone().unwrap_or_default();
        let body = Body::decode(envelope.body.as_slice()).context("delivered body")?;
        let id = delivery.message_id.clone();
        let service = delivery.service_id.clone();
        say(
            &id,
            &service,
            format!("received (attempt {})", delivery.attempt),
        );
        let accepted = rule != ProviderRule::Reject;
        uplink
            .send(SubscribeRequest {
                kind: Some(subscribe_request::Kind::Ack(Ack {
                    message_id: id.clone(),
                    receive_status: if accepted {
                        ReceiveStatus::MessageAccepted
                    } else {
                        ReceiveStatus::MessageNotAccepted
                    } as i32,
                    resend: if accepted {
                        ResendMessage::Unspecified
                    } else {
                        ResendMessage::NotResend
                    } as i32,
                    error_message: if accepted {
                        String::new()
                    } else {
                        "the simulated provider rejects every request".to_owned()
                    },
                    provider_id: participant.sender_id.clone(),
                })),
            })
            .await?;
        if !accepted {
            say(&id, &service, "acknowledged: not accepted".to_owned());
            continue;
        }
        say(&id, &service, "acknowledged: accepted".to_owned());
        let registration_number = format!("{}-{}", &id[..8].to_uppercase(), delivery.attempt);
        let mut reports = vec![StatusReport {
            status: ApplicationStatus::Registered as i32,
            registration_number,
            ..StatusReport::default()
        }];
        match rule {
            ProviderRule::Complete => {
                reports.push(StatusReport {
                    status: ApplicationStatus::InWork as i32,
                    ..StatusReport::default()
                });
                let text = format!(
                    "Справка по услуге «{service}» выдана по заявке {id}. Документ сформирован в системе электронного правительства."
                );
                reports.push(StatusReport {
                    status: ApplicationStatus::Completed as i32,
                    result: Some(participant.document(
                        "spravka.txt",
                        "text/plain; charset=utf-8",
                        text.as_bytes(),
                    )?),
                    ..StatusReport::default()
                });
            }
            ProviderRule::Refuse => reports.push(StatusReport {
                status: ApplicationStatus::Refused as i32,
                reason: "представлен неполный пакет документов".to_owned(),
                ..StatusReport::default()
            }),
            ProviderRule::Reject => {}
        }
        let mut client = client.clone();
        for report in reports {
            tokio::time::sleep(step_delay).await;
            let status = ApplicationStatus::try_from(report.status)
                .unwrap_or_default()
                .as_str_name();
            let envelope = participant.report(&body, report)?;
            match client.report(envelope).await {
                Ok(_) => say(&id, &service, format!("reported {status}")),
                Err(error) => say(
                    &id,
                    &service,
                    format!("report {status} refused: {}", error.message()),
                ),
            }
        }
    }
    Ok(())
}
