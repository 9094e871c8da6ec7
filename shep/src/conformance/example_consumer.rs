//! The reference consumer system for the consumer kit: a portal (ПЭП) or a
//! service-centre system (ИС ЦОН) doing one workflow the way the ШЭП
//! contract expects, so teams can read it as the pattern and the kit has a
//! system that passes. A lookup (`Gateway.Call`), then an application
//! (`Gateway.Submit`) followed to its final status (`Gateway.Watch`).
//!
//! What it does on a refusal follows the gateway's catalogue of reasons
//! (`shep errors`): only `retry-after-backoff` is retried, each time as a new
//! message; everything else ends that step. The [`ConsumerMisbehaviour`]s are
//! the usual mistakes, so the kit's verdicts on them can be tested.

use std::future::Future;
use std::time::Duration;

use shep_proto::catalogue::{self, Retry};
use shep_proto::envelope::v1::{ApplicationStatus, SignedEnvelope};
use shep_proto::gateway::v1::gateway_client::GatewayClient;
use shep_proto::gateway::v1::{WatchRequest, watch_request};
use shep_proto::registry::v1::lookup_response::Record;
use tokio::time::Instant;
use tokio_stream::StreamExt;
use tonic::transport::Channel;
use tonic_types::StatusExt as _;

use crate::client::{Participant, iin};

/// The first pause before a retry; it doubles with each attempt.
pub const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// The longest pause between two attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// Attempts of one step, the first included.
pub const MAX_ATTEMPTS: u32 = 8;
/// The pause before a cut Watch stream is opened again.
pub const WATCH_RECONNECT: Duration = Duration::from_millis(200);
/// The longest one Call or Submit may take: a hung registry then fails with
/// DEADLINE_EXCEEDED (retried) instead of holding the workflow.
const CALL_DEADLINE: Duration = Duration::from_secs(10);
/// Extra sends of the same envelope in [`ConsumerMisbehaviour::RetryEverything`].
const CARELESS_RESENDS: u32 = 3;

/// A consumer system doing one workflow through the gateway.
#[derive(Debug)]
pub struct ExampleConsumer {
    /// Connected as the consumer system (its transport certificate).
    pub gateway: Channel,
    /// Signs the envelopes.
    pub participant: Participant,
    /// `(service, IIN)` of a lookup, if one is made.
    pub lookup: Option<(String, String)>,
    /// `(service, IIN)` of an application, if one is submitted.
    pub application: Option<(String, String)>,
    /// A deliberate mistake, for testing the kit.
    pub misbehave: Option<ConsumerMisbehaviour>,
    /// How long the application may take to reach a final status.
    pub timeout: Duration,
}

/// The mistakes the kit must catch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ConsumerMisbehaviour {
    /// Re-sends the same signed envelope on any refusal, up to 3 more times.
    RetryEverything,
    /// Never retries, not even what the catalogue says to retry.
    GiveUp,
    /// Submits and does not follow the application.
    FireAndForget,
    /// Reopens a cut Watch from the start (`after_sequence = 0`) instead of
    /// resuming after the last event.
    RestartWatch,
}

/// A refusal as the consumer understood it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: tonic::Code,
    /// `google.rpc.ErrorInfo.reason`, empty when the status had none (the
    /// gRPC layer, a broken connection).
    pub reason: String,
    pub message: String,
    /// What the catalogue advises.
    pub retry: Retry,
}

impl Refusal {
    /// Reads a refusal: its reason from the ErrorInfo, its advice from the
    /// catalogue.
    pub fn from_status(status: &tonic::Status) -> Self {
        let reason = status
            .get_details_error_info()
            .map(|info| info.reason)
            .unwrap_or_default();
        Self {
            code: status.code(),
            retry: advice(&reason, status.code()),
            reason,
            message: status.message().to_owned(),
        }
    }

    /// Whether this consumer sends a new message after a pause.
    pub fn retryable(&self) -> bool {
        self.retry == Retry::RetryAfterBackoff
    }

    /// Not an answer of the gateway (no ErrorInfo): the connection failed.
    fn unreachable(&self) -> bool {
        self.reason.is_empty() && self.code == tonic::Code::Unavailable
    }

    /// The reason, or the code for a status without one.
    pub fn name(&self) -> String {
        if self.reason.is_empty() {
            format!("{:?}", self.code)
        } else {
            self.reason.clone()
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.name(), self.retry.as_str())
    }
}

/// The catalogue's advice for `reason`; for reasons it does not know (an
/// injected fault, the gRPC layer) or whose code varies, the code's.
pub fn advice(reason: &str, code: tonic::Code) -> Retry {
    match catalogue::lookup(reason).map(|entry| entry.retry) {
        Some(Retry::AsCodeImplies) | None => Retry::for_code(code),
        Some(retry) => retry,
    }
}

/// The pause before attempt `attempt + 1` (after `attempt` failed ones):
/// 100 ms doubling, at most 2 s.
pub fn backoff(attempt: u32) -> Duration {
    FIRST_BACKOFF
        .saturating_mul(
            1u32.checked_shl(attempt.saturating_sub(1))
                .unwrap_or(u32::MAX),
        )
        .min(MAX_BACKOFF)
}

/// What one run came to.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// The lookup's answer (`StatusInfo` code and message), or its refusal.
    pub lookup: Option<Result<String, Refusal>>,
    /// The application's message id, or the refusal of Submit.
    pub application: Option<Result<String, Refusal>>,
    /// The application's final status, when it was followed to one.
    pub final_status: Option<ApplicationStatus>,
    /// Watch refused in a way not worth retrying.
    pub watch_refusal: Option<Refusal>,
}

impl ExampleConsumer {
    /// Runs the workflow, telling each step to `say` as it happens. A
    /// refusal is an outcome; errors are a lost connection and `timeout`.
    pub async fn run(&self, say: impl Fn(String)) -> anyhow::Result<Outcome> {
        let say: &dyn Fn(String) = &say;
        // Results come back with their documents: the gateway bounds their size.
        let client = GatewayClient::new(self.gateway.clone()).max_decoding_message_size(usize::MAX);
        let mut outcome = Outcome::default();
        if let Some((service, subject)) = &self.lookup {
            outcome.lookup = Some(self.lookup(client.clone(), service, subject, say).await?);
        }
        if let Some((service, subject)) = &self.application {
            let submitted = self.submit(client.clone(), service, subject, say).await?;
            if let Ok(message_id) = &submitted {
                say(format!("submitted {message_id}"));
                if self.misbehave != Some(ConsumerMisbehaviour::FireAndForget) {
                    match self.follow(client, message_id, say).await? {
                        Ok(status) => outcome.final_status = Some(status),
                        Err(refusal) => outcome.watch_refusal = Some(refusal),
                    }
                }
            }
            outcome.application = Some(submitted);
        }
        Ok(outcome)
    }

    async fn lookup(
        &self,
        client: GatewayClient<Channel>,
        service: &str,
        subject: &str,
        say: &dyn Fn(String),
    ) -> anyhow::Result<Result<String, Refusal>> {
        let step = format!("lookup {service}");
        let answered = self
            .with_retries(
                &step,
                say,
                || {
                    self.participant
                        .seal(&self.participant.request(service, iin(subject)))
                },
                |envelope| {
                    let mut client = client.clone();
                    async move { client.call(deadline(envelope)).await }
                },
            )
            .await?;
        Ok(answered.map(|response| {
            let info = response.response_info.unwrap_or_default();
            let status = info.status.unwrap_or_default();
            let record = match response.lookup.and_then(|lookup| lookup.record) {
                Some(Record::Person(_)) => "a person",
                Some(Record::LegalEntity(_)) => "a legal entity",
                Some(Record::PowerOfAttorney(_)) => "a power of attorney",
                None => "no record",
            };
            say(format!(
                "{step}: answered {} {} ({record})",
                status.code, status.message
            ));
            format!("{} {}", status.code, status.message)
        }))
    }

    async fn submit(
        &self,
        client: GatewayClient<Channel>,
        service: &str,
        subject: &str,
        say: &dyn Fn(String),
    ) -> anyhow::Result<Result<String, Refusal>> {
        let step = format!("submit {service}");
        let receipt = self
            .with_retries(
                &step,
                say,
                || {
                    let body =
                        self.participant
                            .application(service, iin(subject), "{}", Vec::new());
                    self.participant.seal(&body)
                },
                |envelope| {
                    let mut client = client.clone();
                    async move { client.submit(deadline(envelope)).await }
                },
            )
            .await?;
        Ok(receipt.map(|receipt| receipt.message_id))
    }

    /// Sends what `make` builds until it is answered, the policy (or the
    /// misbehaviour) says stop, or the attempts run out. A retry is a new
    /// message (`make` again): the gateway refuses a re-sent accepted one as
    /// DUPLICATE_MESSAGE, and its date grows stale.
    async fn with_retries<T, Fut>(
        &self,
        step: &str,
        say: &dyn Fn(String),
        make: impl Fn() -> anyhow::Result<SignedEnvelope>,
        send: impl Fn(SignedEnvelope) -> Fut,
    ) -> anyhow::Result<Result<T, Refusal>>
    where
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let careless = self.misbehave == Some(ConsumerMisbehaviour::RetryEverything);
        let attempts = match self.misbehave {
            Some(ConsumerMisbehaviour::GiveUp) => 1,
            Some(ConsumerMisbehaviour::RetryEverything) => 1 + CARELESS_RESENDS,
            _ => MAX_ATTEMPTS,
        };
        let mut envelope = make()?;
        let mut attempt = 1;
        loop {
            let status = match send(envelope.clone()).await {
                Ok(response) => return Ok(Ok(response.into_inner())),
                Err(status) => status,
            };
            let refusal = Refusal::from_status(&status);
            if (careless || refusal.retryable()) && attempt < attempts {
                let pause = if careless {
                    FIRST_BACKOFF
                } else {
                    backoff(attempt)
                };
                say(format!(
                    "{step}: refused {refusal}, retrying in {} ms",
                    pause.as_millis()
                ));
                tokio::time::sleep(pause).await;
                if !careless {
                    envelope = make()?;
                }
                attempt += 1;
                continue;
            }
            // A connection that stays broken is not the gateway's answer.
            if refusal.unreachable() {
                anyhow::bail!(
                    "{step}: the gateway cannot be reached: {}",
                    status.message()
                );
            }
            let after = if refusal.retryable() && attempt > 1 {
                format!(", giving up after {attempt} attempts")
            } else {
                String::new()
            };
            say(format!(
                "{step}: refused {refusal}{after}: {}",
                refusal.message
            ));
            return Ok(Err(refusal));
        }
    }

    /// Follows the application to a final status, reopening a cut stream
    /// after the last event received (a resume: events already seen are
    /// not sent again).
    async fn follow(
        &self,
        mut client: GatewayClient<Channel>,
        message_id: &str,
        say: &dyn Fn(String),
    ) -> anyhow::Result<Result<ApplicationStatus, Refusal>> {
        let restart = self.misbehave == Some(ConsumerMisbehaviour::RestartWatch);
        let until = Instant::now() + self.timeout;
        let timed_out = || {
            anyhow::anyhow!(
                "application {message_id}: no final status within {} s",
                self.timeout.as_secs()
            )
        };
        let mut last_sequence = 0;
        loop {
            // Why the stream ended, when the gateway said.
            let mut cut_by = String::new();
            let request = WatchRequest {
                target: Some(watch_request::Target::MessageId(message_id.to_owned())),
                after_sequence: if restart { 0 } else { last_sequence },
            };
            let opened = tokio::time::timeout_at(until, client.watch(request))
                .await
                .map_err(|_| timed_out())?;
            match opened {
                Ok(response) => {
                    let mut events = response.into_inner();
                    loop {
                        let next = tokio::time::timeout_at(until, events.next())
                            .await
                            .map_err(|_| timed_out())?;
                        let event = match next {
                            Some(Ok(event)) => event,
                            Some(Err(status)) => {
                                cut_by = format!(" ({})", Refusal::from_status(&status).name());
                                break;
                            }
                            None => break,
                        };
                        // A careful consumer skips what it has seen, should
                        // the gateway ever resend it.
                        if !restart && event.sequence <= last_sequence {
                            continue;
                        }
                        last_sequence = last_sequence.max(event.sequence);
                        let status = event.status();
                        // Overdue is a mark on the current status, not a change.
                        if event.overdue {
                            say(format!("overdue in {}", status.as_str_name()));
                            continue;
                        }
                        if shep_gateway::lifecycle::is_terminal(status) {
                            say(format!("final {}", status.as_str_name()));
                            return Ok(Ok(status));
                        }
                        say(format!("status {}", status.as_str_name()));
                    }
                }
                Err(status) => {
                    let refusal = Refusal::from_status(&status);
                    // An unreachable gateway or a passing failure is waited
                    // out until `timeout`; any other refusal ends following.
                    if refusal.unreachable() {
                        cut_by = " (gateway unreachable)".to_owned();
                    } else if refusal.retryable() {
                        cut_by = format!(" (refused {refusal})");
                    } else {
                        say(format!("watch refused {refusal}: {}", refusal.message));
                        return Ok(Err(refusal));
                    }
                }
            }
            let after = if restart { 0 } else { last_sequence };
            say(format!("watch cut{cut_by}, resuming after {after}"));
            if Instant::now() + WATCH_RECONNECT >= until {
                return Err(timed_out());
            }
            tokio::time::sleep(WATCH_RECONNECT).await;
        }
    }
}

/// `envelope` as a request with a deadline the gateway sees (`grpc-timeout`).
fn deadline(envelope: SignedEnvelope) -> tonic::Request<SignedEnvelope> {
    let mut request = tonic::Request::new(envelope);
    request.set_timeout(CALL_DEADLINE);
    request
}

#[cfg(test)]
mod tests {
    use tonic_types::StatusExt as _;

    use super::*;

    #[test]
    fn catalogued_reasons_follow_the_catalogue() {
        assert_eq!(
            advice("REGISTRY_UNAVAILABLE", tonic::Code::Unavailable),
            Retry::RetryAfterBackoff
        );
        // The reason decides, not the code: PERMISSION_DENIED alone would
        // say fix-and-resend, but a sender not allowed is final.
        assert_eq!(
            advice("SENDER_NOT_ALLOWED", tonic::Code::PermissionDenied),
            Retry::DoNotRetry
        );
        // A duplicate is resent as a new message, never as the same one.
        assert_eq!(
            advice("DUPLICATE_MESSAGE", tonic::Code::AlreadyExists),
            Retry::FixAndResend
        );
        assert_eq!(
            advice("SIGNATURE_INVALID", tonic::Code::Unauthenticated),
            Retry::FixAndResend
        );
    }

    #[test]
    fn unknown_reasons_follow_the_code() {
        assert_eq!(
            advice(catalogue::INJECTED_FAULT, tonic::Code::Unavailable),
            Retry::RetryAfterBackoff
        );
        assert_eq!(
            advice(catalogue::INJECTED_FAULT, tonic::Code::PermissionDenied),
            Retry::FixAndResend
        );
        assert_eq!(advice("", tonic::Code::NotFound), Retry::DoNotRetry);
    }

    #[test]
    fn only_backoff_advice_is_retried() {
        let refusal = |reason: &str, code| Refusal::from_status(&status(reason, code));
        assert!(refusal("REGISTRY_UNAVAILABLE", tonic::Code::Unavailable).retryable());
        assert!(refusal(catalogue::INJECTED_FAULT, tonic::Code::Unavailable).retryable());
        assert!(!refusal("DUPLICATE_MESSAGE", tonic::Code::AlreadyExists).retryable());
        assert!(!refusal(catalogue::INJECTED_FAULT, tonic::Code::InvalidArgument).retryable());
        // A bare UNAVAILABLE is retried too, and known for a broken connection.
        let bare = Refusal::from_status(&tonic::Status::unavailable("connection refused"));
        assert!(bare.retryable() && bare.unreachable());
    }

    #[test]
    fn backoff_doubles_up_to_two_seconds() {
        let pauses: Vec<u128> = (1..=MAX_ATTEMPTS).map(|n| backoff(n).as_millis()).collect();
        assert_eq!(pauses, [100, 200, 400, 800, 1600, 2000, 2000, 2000]);
        assert_eq!(backoff(100), MAX_BACKOFF);
    }

    fn status(reason: &str, code: tonic::Code) -> tonic::Status {
        tonic::Status::with_error_details(
            code,
            "refused",
            tonic_types::ErrorDetails::with_error_info(
                reason,
                catalogue::ERROR_DOMAIN,
                std::collections::HashMap::<String, String>::new(),
            ),
        )
    }
}
