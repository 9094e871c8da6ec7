//! What the consumer did, read from its session's exchange journal, and the
//! expectations of each case: retried only what is retryable, never re-sent
//! a refused body unchanged, followed each application to a final status,
//! resumed a cut Watch from its last sequence.

use prost::Message as _;
use shep_gateway::lifecycle::is_terminal;
use shep_proto::admin::v1::Exchange;
use shep_proto::catalogue::{GrpcCode, Retry, lookup};
use shep_proto::envelope::v1::{ApplicationStatus, Body, SignedEnvelope, subject};
use shep_proto::gateway::v1::{Application, Receipt, StatusEvent, WatchRequest, watch_request};

use crate::conformance::journal::{short, status_name};

const CALL: &str = "shep.gateway.v1.Gateway/Call";
const SUBMIT: &str = "shep.gateway.v1.Gateway/Submit";
const WATCH: &str = "shep.gateway.v1.Gateway/Watch";
const GET_STATUS: &str = "shep.gateway.v1.Gateway/GetStatus";

/// A Call or Submit the consumer made.
#[derive(Debug)]
struct Sent {
    sequence: u64,
    submit: bool,
    service: String,
    subject: String,
    body: Vec<u8>,
    /// The application's id, when a Submit was accepted.
    accepted: Option<String>,
    /// `(reason, retry class)` when refused.
    refused: Option<(String, Retry)>,
}

impl Sent {
    fn same_request(&self, other: &Sent) -> bool {
        self.submit == other.submit
            && self.service == other.service
            && self.subject == other.subject
    }

    fn describe(&self) -> String {
        let what = if self.submit { "Submit" } else { "Call" };
        let outcome = match (&self.accepted, &self.refused) {
            (_, Some((reason, retry))) => format!("refused {reason} ({})", retry.as_str()),
            (Some(id), None) => format!("accepted as {}", short(id)),
            (None, None) => "answered".to_owned(),
        };
        format!(
            "#{} {what} {} about {}: {outcome}",
            self.sequence, self.service, self.subject
        )
    }
}

/// What a Watch stream or a GetStatus showed the consumer.
#[derive(Debug)]
enum Read {
    /// A Watch stream opened on `application` after `after`.
    Opened {
        sequence: u64,
        application: String,
        after: u64,
    },
    /// An event sent on a Watch stream.
    Event {
        sequence: u64,
        application: String,
        event: StatusEvent,
    },
    /// A Watch stream cut by the case's fault.
    Cut { sequence: u64, application: String },
    /// A GetStatus answer.
    Status {
        sequence: u64,
        application: Application,
    },
}

fn retry_of(exchange: &Exchange) -> Retry {
    let by_code =
        || Retry::for_code(GrpcCode::from_name(&exchange.code).unwrap_or(GrpcCode::Unknown));
    match lookup(&exchange.reason).map(|entry| entry.retry) {
        Some(Retry::AsCodeImplies) | None => by_code(),
        Some(retry) => retry,
    }
}

/// Whether a refusal may be sent again (at once or after a pause).
fn retryable(retry: Retry) -> bool {
    matches!(retry, Retry::Retry | Retry::RetryAfterBackoff)
}

fn decode(exchanges: &[Exchange]) -> (Vec<Sent>, Vec<Read>) {
    let mut sent = Vec::new();
    let mut reads = Vec::new();
    for exchange in exchanges
        .iter()
        .filter(|exchange| exchange.hop == "ingress")
    {
        let ok = exchange.code.is_empty() || exchange.code == "OK";
        match exchange.rpc.as_str() {
            CALL | SUBMIT => {
                let Some(envelope) = exchange
                    .request
                    .as_ref()
                    .and_then(|any| SignedEnvelope::decode(any.value.as_slice()).ok())
                else {
                    continue;
                };
                let body = Body::decode(envelope.body.as_slice()).unwrap_or_default();
                let subject = match body.subject.and_then(|subject| subject.id) {
                    Some(subject::Id::Iin(id) | subject::Id::Bin(id)) => id,
                    None => String::new(),
                };
                let submit = exchange.rpc == SUBMIT;
                sent.push(Sent {
                    sequence: exchange.sequence,
                    submit,
                    service: body.service_id,
                    subject,
                    body: envelope.body,
                    accepted: (ok && submit)
                        .then(|| {
                            exchange
                                .response
                                .as_ref()
                                .and_then(|any| Receipt::decode(any.value.as_slice()).ok())
                                .map(|receipt| receipt.message_id)
                        })
                        .flatten(),
                    refused: (!ok).then(|| (exchange.reason.clone(), retry_of(exchange))),
                });
            }
            WATCH => {
                let application = exchange.message_id.clone();
                if let Some(response) = &exchange.response {
                    if let Ok(event) = StatusEvent::decode(response.value.as_slice()) {
                        reads.push(Read::Event {
                            sequence: exchange.sequence,
                            application,
                            event,
                        });
                    }
                } else if !ok && exchange.stream_position > 0 {
                    reads.push(Read::Cut {
                        sequence: exchange.sequence,
                        application,
                    });
                } else if ok
                    && let Some(request) = exchange
                        .request
                        .as_ref()
                        .and_then(|any| WatchRequest::decode(any.value.as_slice()).ok())
                {
                    let application = match request.target {
                        Some(watch_request::Target::MessageId(id)) => id,
                        _ => application,
                    };
                    reads.push(Read::Opened {
                        sequence: exchange.sequence,
                        application,
                        after: request.after_sequence,
                    });
                }
            }
            GET_STATUS if ok => {
                if let Some(application) = exchange
                    .response
                    .as_ref()
                    .and_then(|any| Application::decode(any.value.as_slice()).ok())
                {
                    reads.push(Read::Status {
                        sequence: exchange.sequence,
                        application,
                    });
                }
            }
            _ => {}
        }
    }
    (sent, reads)
}

/// Judges case `case` on the session's exchanges; the evidence is added to
/// `evidence`. `None` when the consumer met every expectation.
pub(super) fn judge(
    case: &str,
    exchanges: &[Exchange],
    evidence: &mut Vec<String>,
) -> Option<String> {
    let (sent, reads) = decode(exchanges);
    evidence.extend(sent.iter().map(Sent::describe));
    evidence.extend(reads.iter().map(describe_read));
    match case {
        "registry-unavailable" | "retryable-refusals" => retried(&sent),
        "no-data" | "final-refusals" => not_retried(&sent),
        "not-delivered" => followed(&sent, &reads, Some(ApplicationStatus::NotDelivered))
            .or_else(|| not_resubmitted(&sent)),
        "term-extension" => followed(&sent, &reads, Some(ApplicationStatus::Completed)),
        "returned-to-centre" => followed(&sent, &reads, Some(ApplicationStatus::ReturnedToCentre)),
        "slow-provider" => followed(&sent, &reads, None).or_else(|| not_resubmitted(&sent)),
        "watch-cut" => resumed(&reads).or_else(|| followed(&sent, &reads, None)),
        other => Some(format!("no consumer case `{other}`")),
    }
}

fn describe_read(read: &Read) -> String {
    match read {
        Read::Opened {
            sequence,
            application,
            after,
        } => format!(
            "#{sequence} Watch {} opened after {after}",
            short(application)
        ),
        Read::Event {
            sequence,
            application,
            event,
        } => format!(
            "#{sequence} Watch {} sent event {} {}{}",
            short(application),
            event.sequence,
            status_name(event.status),
            if event.overdue { " (overdue mark)" } else { "" }
        ),
        Read::Cut {
            sequence,
            application,
        } => format!("#{sequence} Watch {} cut by the fault", short(application)),
        Read::Status {
            sequence,
            application,
        } => format!(
            "#{sequence} GetStatus {}: {}",
            short(&application.message_id),
            status_name(application.status)
        ),
    }
}

/// Every retryable refusal was followed by the same request again, and
/// each such request got through in the end.
fn retried(sent: &[Sent]) -> Option<String> {
    let retryable: Vec<&Sent> = sent
        .iter()
        .filter(|call| matches!(&call.refused, Some((_, retry)) if retryable(*retry)))
        .collect();
    if retryable.is_empty() {
        return Some(
            "the consumer made no call the case could refuse (did its command run against this gateway?)"
                .to_owned(),
        );
    }
    for refused in retryable {
        let later: Vec<&Sent> = sent
            .iter()
            .filter(|call| call.sequence > refused.sequence && call.same_request(refused))
            .collect();
        let reason = refused
            .refused
            .as_ref()
            .map(|(reason, _)| reason.as_str())
            .unwrap_or("");
        if later.is_empty() {
            return Some(format!(
                "gave up after a retryable refusal ({reason}, #{}): it was not sent again",
                refused.sequence
            ));
        }
        if !later.iter().any(|call| call.refused.is_none()) {
            return Some(format!(
                "the request refused with {reason} (#{}) never got through: {} more attempt(s), all refused",
                refused.sequence,
                later.len()
            ));
        }
    }
    None
}

/// No do-not-retry refusal was followed by the same request, and no
/// refused body was sent again unchanged.
fn not_retried(sent: &[Sent]) -> Option<String> {
    let refused: Vec<&Sent> = sent
        .iter()
        .filter(|call| {
            matches!(
                &call.refused,
                Some((_, Retry::DoNotRetry | Retry::FixAndResend))
            )
        })
        .collect();
    if refused.is_empty() {
        return Some(
            "the consumer made no call the case could refuse (did its command run against this gateway?)"
                .to_owned(),
        );
    }
    for call in refused {
        let Some((reason, retry)) = &call.refused else {
            continue;
        };
        let later = sent.iter().filter(|other| other.sequence > call.sequence);
        if let Some(again) = later.clone().find(|other| other.body == call.body) {
            return Some(format!(
                "re-sent a body refused with {reason} unchanged (#{} again as #{})",
                call.sequence, again.sequence
            ));
        }
        if *retry == Retry::DoNotRetry
            && let Some(again) = later.clone().find(|other| other.same_request(call))
        {
            return Some(format!(
                "retried a request refused with {reason}, which is {} (#{} again as #{})",
                retry.as_str(),
                call.sequence,
                again.sequence
            ));
        }
    }
    None
}

/// No accepted application was submitted again.
fn not_resubmitted(sent: &[Sent]) -> Option<String> {
    for accepted in sent.iter().filter(|call| call.accepted.is_some()) {
        if let Some(again) = sent
            .iter()
            .find(|other| other.sequence > accepted.sequence && other.same_request(accepted))
        {
            return Some(format!(
                "submitted the application again (#{}) instead of following #{} to its status",
                again.sequence, accepted.sequence
            ));
        }
    }
    None
}

/// Every accepted application was followed (Watch or GetStatus) to a final
/// status, `expected` when given.
fn followed(sent: &[Sent], reads: &[Read], expected: Option<ApplicationStatus>) -> Option<String> {
    let applications: Vec<&String> = sent
        .iter()
        .filter_map(|call| call.accepted.as_ref())
        .collect();
    if applications.is_empty() {
        return Some("the consumer submitted no application that was accepted".to_owned());
    }
    for id in applications {
        let seen: Vec<ApplicationStatus> = reads
            .iter()
            .filter_map(|read| match read {
                Read::Event {
                    application, event, ..
                } if application.eq_ignore_ascii_case(id) && !event.overdue => Some(event.status()),
                Read::Status { application, .. }
                    if application.message_id.eq_ignore_ascii_case(id) =>
                {
                    Some(application.status())
                }
                _ => None,
            })
            .collect();
        let last = seen.iter().rev().find(|status| is_terminal(**status));
        match (last, expected) {
            (None, _) => {
                return Some(format!(
                    "did not follow application {} to a final status (last seen: {})",
                    short(id),
                    seen.last()
                        .map(|status| status.as_str_name())
                        .unwrap_or("nothing: no Watch or GetStatus")
                ));
            }
            (Some(last), Some(expected)) if *last != expected => {
                return Some(format!(
                    "followed application {} to {}, expected {}",
                    short(id),
                    last.as_str_name(),
                    expected.as_str_name()
                ));
            }
            _ => {}
        }
    }
    None
}

/// After each cut, the next Watch of that application resumed after the
/// last event the cut stream had sent.
fn resumed(reads: &[Read]) -> Option<String> {
    let cuts: Vec<(usize, &String)> = reads
        .iter()
        .enumerate()
        .filter_map(|(index, read)| match read {
            Read::Cut { application, .. } => Some((index, application)),
            _ => None,
        })
        .collect();
    if cuts.is_empty() {
        return Some(
            "no Watch stream was cut: the consumer did not watch its application".to_owned(),
        );
    }
    for (index, application) in cuts {
        let last_sent = reads[..index]
            .iter()
            .rev()
            .take_while(|read| !matches!(read, Read::Opened { application: opened, .. } if opened.eq_ignore_ascii_case(application)))
            .find_map(|read| match read {
                Read::Event {
                    application: of,
                    event,
                    ..
                } if of.eq_ignore_ascii_case(application) => Some(event.sequence),
                _ => None,
            })
            .unwrap_or(0);
        let next = reads[index..].iter().find_map(|read| match read {
            Read::Opened {
                application: opened,
                after,
                ..
            } if opened.eq_ignore_ascii_case(application) => Some(*after),
            _ => None,
        });
        match next {
            None => {
                return Some(format!(
                    "did not open the Watch of {} again after the cut",
                    short(application)
                ));
            }
            Some(after) if after != last_sent => {
                return Some(format!(
                    "resumed the Watch of {} after sequence {after}, not after {last_sent}, the last event it received{}",
                    short(application),
                    if after < last_sent {
                        ": events replayed"
                    } else {
                        ": events lost"
                    }
                ));
            }
            Some(_) => {}
        }
    }
    None
}
