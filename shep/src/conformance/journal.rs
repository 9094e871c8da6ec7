//! The kits' evidence: the gateway's exchange journal (`Admin.ListExchanges`)
//! read back and decoded into what a participant did: deliveries and their
//! acknowledgements, status reports and the gateway's answer to each.

use prost::Message as _;
use prost_types::Timestamp;
use shep_proto::admin::v1::admin_client::AdminClient;
use shep_proto::admin::v1::{Exchange, ExchangeFilter, ListExchangesRequest};
use shep_proto::envelope::v1::{ApplicationStatus, Body, SignedEnvelope, StatusReport};
use shep_proto::provider::v1::{
    Ack, ReceiveStatus, ResendMessage, SubscribeResponse, subscribe_response,
};
use time::OffsetDateTime;
use tonic::transport::Channel;

use super::provider::Admin;

/// The exchange journal's page size (its limit).
const PAGE: u32 = 10_000;

/// One thing the journal shows a participant did or got.
#[derive(Debug, Clone)]
pub enum Seen {
    /// The gateway handed an application to the provider.
    Delivered {
        message_id: String,
        attempt: u32,
        lease_until: Option<OffsetDateTime>,
        envelope: Option<SignedEnvelope>,
        /// Taken with GetMessages rather than pushed on a Subscribe stream.
        pulled: bool,
    },
    /// The provider acknowledged a delivery.
    Acked {
        message_id: String,
        accepted: bool,
        resend: bool,
        error_message: String,
        /// The gateway's refusal of the ack itself (e.g. an unknown id).
        refused: Option<String>,
    },
    /// The provider reported a status about an application.
    Reported {
        application: String,
        report: StatusReport,
        /// The gateway's refusal, `REASON: message`, if it refused it.
        refused: Option<String>,
    },
}

/// A decoded exchange with its time and sequence.
#[derive(Debug, Clone)]
pub struct Entry {
    pub sequence: u64,
    pub time: Option<OffsetDateTime>,
    pub seen: Seen,
}

impl Entry {
    /// The application this entry is about.
    pub fn application(&self) -> &str {
        match &self.seen {
            Seen::Delivered { message_id, .. } | Seen::Acked { message_id, .. } => message_id,
            Seen::Reported { application, .. } => application,
        }
    }

    /// A line of evidence.
    pub fn describe(&self) -> String {
        let at = self
            .time
            .map(|time| {
                format!(
                    "{:02}:{:02}:{:02}.{:03}",
                    time.hour(),
                    time.minute(),
                    time.second(),
                    time.millisecond()
                )
            })
            .unwrap_or_default();
        let what = match &self.seen {
            Seen::Delivered {
                attempt,
                lease_until,
                ..
            } => format!(
                "delivered, attempt {attempt}{}",
                lease_until
                    .map(|until| format!(", leased for {} ms", lease_ms(self.time, until)))
                    .unwrap_or_default()
            ),
            Seen::Acked {
                accepted,
                resend,
                error_message,
                refused,
                ..
            } => {
                let mut text = if *accepted {
                    "ack MESSAGE_ACCEPTED".to_owned()
                } else {
                    format!(
                        "ack MESSAGE_NOT_ACCEPTED{} ({error_message})",
                        if *resend { ", RESEND" } else { "" }
                    )
                };
                if let Some(refused) = refused {
                    text.push_str(&format!(": the gateway ignored it, {refused}"));
                }
                text
            }
            Seen::Reported {
                report, refused, ..
            } => {
                let mut text = format!("report {}", status_name(report.status));
                if !report.registration_number.is_empty() {
                    text.push_str(&format!(" № {}", report.registration_number));
                }
                if report.result.is_some() {
                    text.push_str(" with a result document");
                }
                match refused {
                    Some(refused) => text.push_str(&format!(": REFUSED by the gateway, {refused}")),
                    None => text.push_str(": accepted"),
                }
                text
            }
        };
        format!(
            "#{} {at} {} {what}",
            self.sequence,
            short(self.application())
        )
    }
}

/// A message id cut to its first group, as evidence lines show it.
pub fn short(id: &str) -> &str {
    id.split('-').next().unwrap_or(id)
}

/// A status's proto name.
pub fn status_name(status: i32) -> &'static str {
    ApplicationStatus::try_from(status)
        .map(|status| status.as_str_name())
        .unwrap_or("UNKNOWN_STATUS")
}

fn lease_ms(at: Option<OffsetDateTime>, until: OffsetDateTime) -> i128 {
    at.map(|at| (until - at).whole_milliseconds()).unwrap_or(0)
}

fn time_of(timestamp: Option<&Timestamp>) -> Option<OffsetDateTime> {
    let timestamp = timestamp?;
    OffsetDateTime::from_unix_timestamp_nanos(
        i128::from(timestamp.seconds) * 1_000_000_000 + i128::from(timestamp.nanos),
    )
    .ok()
}

/// What `exchange` shows, if it is one the kits read.
pub fn decode(exchange: &Exchange) -> Option<Entry> {
    let refused = (!exchange.code.is_empty() && exchange.code != "OK").then(|| {
        if exchange.reason.is_empty() {
            format!("{}: {}", exchange.code, exchange.error_message)
        } else {
            format!("{}: {}", exchange.reason, exchange.error_message)
        }
    });
    let seen = match (exchange.hop.as_str(), exchange.rpc.as_str()) {
        ("delivery", _) => {
            if let Some(response) = &exchange.response {
                let message = SubscribeResponse::decode(response.value.as_slice()).ok()?;
                let Some(subscribe_response::Kind::Delivery(delivery)) = message.kind else {
                    return None;
                };
                Seen::Delivered {
                    message_id: delivery.message_id,
                    attempt: delivery.attempt,
                    lease_until: time_of(delivery.lease_until.as_ref()),
                    envelope: delivery.envelope,
                    pulled: exchange.rpc.ends_with("/GetMessages"),
                }
            } else {
                let ack = Ack::decode(exchange.request.as_ref()?.value.as_slice()).ok()?;
                Seen::Acked {
                    message_id: ack.message_id,
                    accepted: ack.receive_status == ReceiveStatus::MessageAccepted as i32,
                    resend: ack.resend == ResendMessage::Resend as i32,
                    error_message: ack.error_message,
                    refused,
                }
            }
        }
        ("ingress", "shep.provider.v1.Provider/Report") => {
            let envelope =
                SignedEnvelope::decode(exchange.request.as_ref()?.value.as_slice()).ok()?;
            let body = Body::decode(envelope.body.as_slice()).ok()?;
            Seen::Reported {
                application: body.correlation_id,
                report: body.report.unwrap_or_default(),
                refused,
            }
        }
        _ => return None,
    };
    Some(Entry {
        sequence: exchange.sequence,
        time: time_of(exchange.time.as_ref()),
        seen,
    })
}

/// Reads the journal from a position on.
#[derive(Debug)]
pub struct Journal {
    admin: Admin,
}

impl Journal {
    pub fn new(admin: Admin) -> Self {
        Self { admin }
    }

    /// Every exchange `filter` matches, oldest first, page by page, and
    /// whether the journal records at all.
    async fn all(&self, mut filter: ExchangeFilter) -> anyhow::Result<(Vec<Exchange>, bool)> {
        let mut client: AdminClient<Channel> = self.admin.client();
        let mut all = Vec::new();
        loop {
            let page = client
                .list_exchanges(self.admin.request(ListExchangesRequest {
                    filter: Some(filter.clone()),
                    limit: PAGE,
                })?)
                .await
                .map_err(crate::client::describe)?
                .into_inner();
            let full = page.exchanges.len() == PAGE as usize;
            if let Some(last) = page.exchanges.last() {
                filter.after_sequence = last.sequence;
            }
            all.extend(page.exchanges);
            if !full {
                return Ok((all, page.recording));
            }
        }
    }

    /// Every exchange after `after`, and whether the journal records at all.
    pub async fn since(&self, after: u64) -> anyhow::Result<(Vec<Exchange>, bool)> {
        self.all(ExchangeFilter {
            after_sequence: after,
            ..ExchangeFilter::default()
        })
        .await
    }

    /// Every exchange of test session `session` after `after`.
    pub async fn in_session(&self, after: u64, session: &str) -> anyhow::Result<Vec<Exchange>> {
        let (all, _) = self
            .all(ExchangeFilter {
                session: session.to_owned(),
                after_sequence: after,
                ..ExchangeFilter::default()
            })
            .await?;
        Ok(all)
    }

    /// The sequence number of the newest exchange (0 for none).
    pub async fn position(&self) -> anyhow::Result<u64> {
        let (all, recording) = self.since(0).await?;
        anyhow::ensure!(
            recording,
            "the gateway's exchange journal is off (`toolkit.exchanges = false`): the kits read their evidence from it"
        );
        Ok(all.last().map(|exchange| exchange.sequence).unwrap_or(0))
    }

    /// What was seen about `applications` after `after`.
    pub async fn about(&self, after: u64, applications: &[String]) -> anyhow::Result<Vec<Entry>> {
        let (all, _) = self.since(after).await?;
        Ok(all
            .iter()
            .filter_map(decode)
            .filter(|entry| {
                applications
                    .iter()
                    .any(|id| id.eq_ignore_ascii_case(entry.application()))
            })
            .collect())
    }
}
