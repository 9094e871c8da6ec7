//! Plays a [`Script`] on one Subscribe connection: acknowledges each
//! delivery as the script says, then runs its steps in a task of their own,
//! so slow applications do not hold the others up.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use prost::Message as _;
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use shep_gateway::calendar::Calendar;
use shep_proto::envelope::v1::{Body, StatusReport};
use shep_proto::provider::v1::provider_client::ProviderClient;
use shep_proto::provider::v1::{
    Ack as AckMessage, Delivery, Hello, ReceiveStatus, ResendMessage, SubscribeRequest,
    subscribe_request, subscribe_response,
};
use time::OffsetDateTime;
use tokio::sync::mpsc;
use tokio_stream::StreamExt as _;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel as GrpcChannel;

use super::{Ack, Script, Span, Step, StepStatus, Term};
use crate::client::{Participant, ProviderStep, TrustAnchors};

/// How a script is played.
#[derive(Debug)]
pub struct RunOptions {
    /// Every scripted delay is divided by this: at 60 a `15m` step waits
    /// 15 s. The gateway's simulated clock runs its deadlines at the same factor.
    pub time_factor: f64,
    /// Checks each delivered envelope's signature against these anchors; a
    /// request that fails is answered MESSAGE_NOT_ACCEPTED with RESEND.
    pub verify: Option<TrustAnchors>,
    /// `Hello.max_in_flight`.
    pub max_in_flight: u32,
    /// Receives each narrated step.
    pub steps: Option<mpsc::UnboundedSender<ProviderStep>>,
    /// A deliberate breach of the contract, to show the conformance kit
    /// failing a provider (docs/CONFORMANCE.md).
    pub misbehave: Option<Misbehaviour>,
    /// Subscribes in this test session (`x-shep-session`): only its
    /// requests are delivered.
    pub session: Option<String>,
}

/// The deliberate breaches `shep provider --misbehave` plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Misbehaviour {
    /// Never reports REGISTERED: work and results without registration.
    SkipRegistration,
    /// Takes every delivery as new: a duplicate or a redelivery is worked
    /// (and reported) again.
    ForgetDeliveries,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            time_factor: 1.0,
            verify: None,
            max_in_flight: 8,
            steps: None,
            misbehave: None,
            session: None,
        }
    }
}

/// Says what the provider did: to the log and to the steps channel.
#[derive(Debug, Clone)]
struct Narrator {
    provider: String,
    steps: Option<mpsc::UnboundedSender<ProviderStep>>,
}

impl Narrator {
    fn say(&self, message_id: &str, service_id: &str, what: String) {
        tracing::info!(provider = %self.provider, %message_id, "{what}");
        if let Some(steps) = &self.steps {
            let _ = steps.send(ProviderStep {
                message_id: message_id.to_owned(),
                service_id: service_id.to_owned(),
                what,
            });
        }
    }
}

/// What the step tasks share.
struct Player {
    client: ProviderClient<GrpcChannel>,
    participant: Participant,
    narrator: Narrator,
    time_factor: f64,
    /// Registrations so far, for `{seq}`.
    registrations: AtomicU64,
    calendar: Calendar,
}

/// What the provider knows of a request it was delivered.
#[derive(Debug, Clone, Copy, Default)]
struct Seen {
    attempt: u32,
    accepted: bool,
}

/// Runs `script` as provider `participant` on one Subscribe connection
/// until the stream ends.
pub async fn run_script(
    channel: GrpcChannel,
    participant: Participant,
    script: Arc<Script>,
    options: RunOptions,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        options.time_factor.is_finite() && options.time_factor > 0.0,
        "the time factor must be above zero, not {}",
        options.time_factor
    );
    // Deliveries carry scans inline: as large as the gateway's own limit
    // (`limits.max_message_bytes`), not tonic's 4 MiB default.
    let mut client = ProviderClient::new(channel).max_decoding_message_size(usize::MAX);
    let (uplink, outbound) = mpsc::channel(64);
    let provider_id = participant.sender_id.clone();
    uplink
        .send(SubscribeRequest {
            kind: Some(subscribe_request::Kind::Hello(Hello {
                provider_id: provider_id.clone(),
                max_in_flight: options.max_in_flight,
                service_ids: Vec::new(),
            })),
        })
        .await?;
    let mut subscribe = tonic::Request::new(ReceiverStream::new(outbound));
    if let Some(session) = &options.session {
        subscribe.metadata_mut().insert(
            shep_gateway::toolkit::SESSION_HEADER,
            session
                .parse()
                .context("the session is not a valid header value")?,
        );
    }
    let mut inbound = client
        .subscribe(subscribe)
        .await
        .context("subscribing to the request stream")?
        .into_inner();
    let narrator = Narrator {
        provider: provider_id.clone(),
        steps: options.steps,
    };
    let player = Arc::new(Player {
        client,
        participant,
        narrator: narrator.clone(),
        time_factor: options.time_factor,
        registrations: AtomicU64::new(0),
        calendar: Calendar::default(),
    });
    let ack = |message_id: String, answer: Ack, reason: String| {
        let uplink = uplink.clone();
        let provider_id = provider_id.clone();
        async move {
            let accepted = answer == Ack::Accept;
            uplink
                .send(SubscribeRequest {
                    kind: Some(subscribe_request::Kind::Ack(AckMessage {
                        message_id,
                        receive_status: if accepted {
                            ReceiveStatus::MessageAccepted
                        } else {
                            ReceiveStatus::MessageNotAccepted
                        } as i32,
                        resend: match answer {
                            Ack::RejectResend => ResendMessage::Resend,
                            Ack::Reject => ResendMessage::NotResend,
                            Ack::Accept | Ack::None => ResendMessage::Unspecified,
                        } as i32,
                        error_message: if accepted { String::new() } else { reason },
                        provider_id,
                    })),
                })
                .await
        }
    };
    let mut seen: HashMap<String, Seen> = HashMap::new();
    let mut taken: u64 = 0;
    while let Some(message) = inbound.next().await {
        let Some(kind) = message?.kind else { continue };
        let delivery = match kind {
            subscribe_response::Kind::Welcome(welcome) => {
                narrator.say(
                    "",
                    "",
                    format!("subscribed as connection {}", welcome.connection_id),
                );
                continue;
            }
            subscribe_response::Kind::Delivery(delivery) => delivery,
        };
        let id = delivery.message_id.clone();
        let service = delivery.service_id.clone();
        let say = |what: String| narrator.say(&id, &service, what);
        let before = match options.misbehave {
            Some(Misbehaviour::ForgetDeliveries) => Seen::default(),
            _ => seen.get(&id).copied().unwrap_or_default(),
        };
        if before.attempt == delivery.attempt {
            say(format!(
                "duplicate delivery (attempt {}): ignored",
                delivery.attempt
            ));
            continue;
        }
        say(format!("received (attempt {})", delivery.attempt));
        seen.insert(
            id.clone(),
            Seen {
                attempt: delivery.attempt,
                ..before
            },
        );
        if let Some(problem) = check(&delivery, options.verify.as_ref()) {
            say(format!("{problem}: not accepted, resend asked"));
            ack(id.clone(), Ack::RejectResend, problem).await?;
            continue;
        }
        if before.accepted {
            // Already in work here: the gateway missed the ack.
            ack(id.clone(), Ack::Accept, String::new()).await?;
            say("redelivered after it was accepted: acknowledged again".to_owned());
            continue;
        }
        let Some(plan) = script.for_service(&service) else {
            let reason = format!("the script has no steps for service `{service}`");
            ack(id.clone(), Ack::Reject, reason).await?;
            say("no script for this service: acknowledged: not accepted".to_owned());
            continue;
        };
        let answer = plan.ack_for(delivery.attempt);
        let reason = plan
            .reject_reason
            .clone()
            .unwrap_or_else(|| "the simulated provider does not accept the request".to_owned());
        match answer {
            Ack::None => {
                say("not acknowledged: the lease will run out".to_owned());
                continue;
            }
            Ack::Reject => {
                ack(id.clone(), answer, reason).await?;
                say("acknowledged: not accepted".to_owned());
                continue;
            }
            Ack::RejectResend => {
                ack(id.clone(), answer, reason).await?;
                say("acknowledged: not accepted, resend asked".to_owned());
                continue;
            }
            Ack::Accept => {
                ack(id.clone(), answer, String::new()).await?;
                say("acknowledged: accepted".to_owned());
            }
        }
        if let Some(seen) = seen.get_mut(&id) {
            seen.accepted = true;
        }
        let Some(body) = delivery
            .envelope
            .as_ref()
            .and_then(|envelope| Body::decode(envelope.body.as_slice()).ok())
        else {
            say("the delivered body does not decode: no reports".to_owned());
            continue;
        };
        // The n-th request taken draws the same branch and delays every run.
        let mut rng = StdRng::seed_from_u64(
            script
                .seed
                .wrapping_add(taken.wrapping_mul(0x9E37_79B9_7F4A_7C15)),
        );
        taken += 1;
        let mut steps = plan.steps.clone();
        let skip_registration = options.misbehave == Some(Misbehaviour::SkipRegistration);
        if !plan.branches.is_empty() {
            let total: f64 = plan.branches.iter().map(|branch| branch.weight).sum();
            let mut roll = rng.gen_range(0.0..total);
            let chosen = plan
                .branches
                .iter()
                .enumerate()
                .find(|(_, branch)| {
                    roll -= branch.weight;
                    roll < 0.0
                })
                .or_else(|| plan.branches.iter().enumerate().next_back());
            if let Some((index, branch)) = chosen {
                let name = branch
                    .name
                    .clone()
                    .unwrap_or_else(|| format!("#{}", index + 1));
                say(format!("branch `{name}`"));
                steps.extend(branch.steps.iter().cloned());
            }
        }
        if skip_registration {
            steps.retain(|step| step.status != StepStatus::Registered);
        }
        tokio::spawn(player.clone().play(body, delivery.attempt, steps, rng));
    }
    Ok(())
}

/// Why a delivery cannot be taken, if it cannot: its signature fails the check.
fn check(delivery: &Delivery, anchors: Option<&TrustAnchors>) -> Option<String> {
    let anchors = anchors?;
    let envelope = delivery.envelope.clone().unwrap_or_default();
    match anchors.verify_envelope(&envelope) {
        Ok(_) => None,
        Err(error) => Some(format!(
            "signature check failed ({}): {error}",
            error.reason().as_str_name()
        )),
    }
}

impl Player {
    /// Sends `steps` about `application`, each after its delay.
    async fn play(
        self: Arc<Self>,
        application: Body,
        attempt: u32,
        steps: Vec<Step>,
        mut rng: StdRng,
    ) {
        let id = application.message_id.clone();
        let service = application.service_id.clone();
        let say = |what: String| self.narrator.say(&id, &service, what);
        let mut registration_number = String::new();
        let mut client = self.client.clone();
        for step in steps {
            let status = step.status.status().as_str_name();
            if let Some(delay) = &step.delay {
                let scripted = delay.sample(&mut rng);
                let real = scripted.div_f64(self.time_factor);
                if real >= Duration::from_secs(1) {
                    say(format!(
                        "waiting {} ({} at ×{}) before {status}",
                        Span(round(scripted)),
                        Span(round(real)),
                        self.time_factor
                    ));
                }
                tokio::time::sleep(real).await;
            }
            let report = match self.report(&step, &application, attempt, &mut registration_number) {
                Ok(report) => report,
                Err(error) => {
                    say(format!("report {status} not made: {error:#}"));
                    return;
                }
            };
            let sent = match self.participant.report(&application, report) {
                Ok(envelope) => client.report(envelope).await,
                Err(error) => {
                    say(format!("report {status} not signed: {error:#}"));
                    return;
                }
            };
            match sent {
                Ok(_) => say(format!("reported {status}")),
                Err(error) => {
                    say(format!("report {status} refused: {}", error.message()));
                    return;
                }
            }
        }
    }

    /// The report of `step`.
    fn report(
        &self,
        step: &Step,
        application: &Body,
        attempt: u32,
        registration_number: &mut String,
    ) -> anyhow::Result<StatusReport> {
        let now = OffsetDateTime::now_utc();
        let expected_at = step.term.map(|term| {
            let at = match term {
                Term::After(deadline) => deadline.due(now, &self.calendar),
                Term::At(at) => at,
            };
            prost_types::Timestamp {
                seconds: at.unix_timestamp(),
                nanos: 0,
            }
        });
        let id = &application.message_id;
        if step.status == StepStatus::Registered {
            let seq = self.registrations.fetch_add(1, Ordering::Relaxed) + 1;
            let pattern = step
                .registration_number
                .as_deref()
                .unwrap_or("{id8}-{attempt}");
            *registration_number = pattern
                .replace("{seq}", &seq.to_string())
                .replace(
                    "{id8}",
                    &id.chars().take(8).collect::<String>().to_uppercase(),
                )
                .replace("{attempt}", &attempt.to_string())
                .replace("{year}", &now.year().to_string());
        }
        let expand = |text: &str| {
            text.replace("{message_id}", id)
                .replace("{service_id}", &application.service_id)
                .replace("{registration_number}", registration_number)
        };
        let result = match (&step.document, step.status) {
            (Some(document), _) => {
                let content = match &document.content {
                    Some(bytes) => bytes.clone(),
                    None => expand(document.text.as_deref().unwrap_or_default()).into_bytes(),
                };
                Some(
                    self.participant
                        .document(&document.name, &document.content_type, &content)?,
                )
            }
            (None, StepStatus::Completed) => {
                let service = &application.service_id;
                let text = format!(
                    "Справка по услуге «{service}» выдана по заявке {id}. Документ сформирован в системе электронного правительства."
                );
                Some(self.participant.document(
                    "spravka.txt",
                    "text/plain; charset=utf-8",
                    text.as_bytes(),
                )?)
            }
            (None, _) => None,
        };
        Ok(StatusReport {
            status: step.status.status() as i32,
            registration_number: if step.status == StepStatus::Registered {
                registration_number.clone()
            } else {
                String::new()
            },
            expected_at,
            reason: step.reason.as_deref().map(expand).unwrap_or_default(),
            notification: step.notification.as_deref().map(expand).unwrap_or_default(),
            result,
        })
    }
}

/// To the millisecond, for narration.
fn round(duration: Duration) -> Duration {
    Duration::from_millis(duration.as_millis() as u64)
}
