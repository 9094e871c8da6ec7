//! `shep conformance provider`: drives a connected provider system through
//! the catalogue of [`CASES`] and grades what it does, from the exchange
//! journal and the application's status events.
//!
//! The kit plays the consumer (the portal, signing as the demo applicant) and
//! the operator (faults and clocks through the Admin API). Each case runs in
//! its own test session with its own simulated clock, so a case's faults and
//! its clock touch nothing else; cases run one after another because two of
//! them move the global clock to end a lease at once.

mod cases;
mod ctx;

use std::time::Duration;

use shep_proto::admin::v1::admin_client::AdminClient;
use shep_proto::admin::v1::{ClockReading, GetClockRequest, SetClockRequest, set_clock_request};
use shep_proto::envelope::v1::Subject;
use tokio::time::Instant;
use tonic::transport::Channel;

use super::journal::Journal;
use super::report::{Outcome, Report};
use crate::client::{Participant, TrustAnchors};

/// A case of the provider catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Case {
    pub name: &'static str,
    pub title: &'static str,
    pub rule: &'static str,
}

/// The provider catalogue, in the order the kit runs it (docs/CONFORMANCE.md).
pub const CASES: &[Case] = &[
    Case {
        name: "delivery",
        title: "a delivery is acknowledged within its lease, registered with a number first, and ends in a signed final status",
        rule: "ШЭП async contract: sendDeliveryNotification within the lease; regulations: registration before work (000 п.7.3, 001 п.6.3), result signed by the provider's ЭЦП (condition 2)",
    },
    Case {
        name: "lost-ack",
        title: "a request redelivered after its acknowledgement was lost is acknowledged again and processed once",
        rule: "ШЭП async contract: at-least-once delivery, messageId identifies a request (idempotent receivers)",
    },
    Case {
        name: "duplicate",
        title: "the same delivery received twice is processed once",
        rule: "ШЭП async contract: at-least-once delivery, messageId identifies a request (idempotent receivers)",
    },
    Case {
        name: "lease-expiry",
        title: "a delivery whose lease ran out before it arrived, overtaken by its redelivery, is processed once",
        rule: "ШЭП async contract: a lease that runs out redelivers; the receiver keys its work by messageId",
    },
    Case {
        name: "corrupt",
        title: "a delivered envelope whose signature does not verify is answered MESSAGE_NOT_ACCEPTED",
        rule: "regulations: the receiving system checks the ЭЦП of what it receives (signature check, condition 2); ШЭП DeliveryNotification",
    },
    Case {
        name: "burst",
        title: "a burst of applications above the provider's max_in_flight is worked off: every one acknowledged and finished",
        rule: "ШЭП async contract: flow control by the receiver; nothing accepted is lost",
    },
    Case {
        name: "deadline",
        title: "an application is finished before its deadline passes on the simulated clock (no overdue mark)",
        rule: "regulations: the service's term (срок оказания услуги) in working days; overdue is a violation",
    },
];

/// The cases of `catalogue` named in `only`, in the order given; the whole
/// catalogue when `only` is empty.
pub(crate) fn select(kit: &str, catalogue: &[Case], only: &[String]) -> anyhow::Result<Vec<Case>> {
    if only.is_empty() {
        return Ok(catalogue.to_vec());
    }
    only.iter()
        .map(|name| {
            catalogue
                .iter()
                .copied()
                .find(|case| case.name == *name)
                .ok_or_else(|| {
                    let names: Vec<&str> = catalogue.iter().map(|case| case.name).collect();
                    anyhow::anyhow!(
                        "no {kit} case `{name}`; the catalogue: {}",
                        names.join(", ")
                    )
                })
        })
        .collect()
}

/// The Admin API with the operator's token.
#[derive(Debug, Clone)]
pub struct Admin {
    pub channel: Channel,
    pub token: Option<String>,
}

impl Admin {
    pub fn client(&self) -> AdminClient<Channel> {
        AdminClient::new(self.channel.clone())
    }

    /// `message` with the bearer token.
    pub fn request<T>(&self, message: T) -> anyhow::Result<tonic::Request<T>> {
        let mut request = tonic::Request::new(message);
        if let Some(token) = &self.token {
            request
                .metadata_mut()
                .insert("authorization", format!("Bearer {token}").parse()?);
        }
        Ok(request)
    }

    /// `message` with the bearer token, in test session `session`.
    pub fn in_session<T>(&self, message: T, session: &str) -> anyhow::Result<tonic::Request<T>> {
        let mut request = self.request(message)?;
        request
            .metadata_mut()
            .insert(shep_gateway::toolkit::SESSION_HEADER, session.parse()?);
        Ok(request)
    }

    /// Changes the clock of `session`, or the global one.
    pub async fn set_clock(
        &self,
        session: Option<&str>,
        change: set_clock_request::Change,
    ) -> anyhow::Result<ClockReading> {
        let message = SetClockRequest {
            change: Some(change),
        };
        let request = match session {
            Some(session) => self.in_session(message, session)?,
            None => self.request(message)?,
        };
        Ok(self
            .client()
            .set_clock(request)
            .await
            .map_err(crate::client::describe)?
            .into_inner())
    }
}

/// How the kit runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// The longest a case waits for the provider.
    pub case_timeout: Duration,
    /// How long a case keeps watching after the last status, for reports
    /// sent twice.
    pub quiet: Duration,
    /// Applications in the `burst` case (set it above the provider's
    /// max_in_flight).
    pub burst: usize,
    /// In the `deadline` case the session's clock runs so fast that the
    /// service's term passes in this much real time.
    pub deadline_in: Duration,
    /// Only these cases (by name); empty for the whole catalogue.
    pub only: Vec<String>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            case_timeout: Duration::from_secs(30),
            quiet: Duration::from_secs(1),
            burst: 12,
            deadline_in: Duration::from_secs(6),
            only: Vec::new(),
        }
    }
}

/// Everything the provider kit needs.
#[derive(Debug)]
pub struct ProviderKit {
    /// The gateway, as the consumer system the applications come from (the
    /// portal, `pep`): it submits and watches.
    pub gateway: Channel,
    pub admin: Admin,
    /// Who signs the applications (the portal's applicant).
    pub applicant: Participant,
    /// The НУЦ, to check the provider's result documents and to confirm a
    /// corrupted delivery really does not verify.
    pub anchors: TrustAnchors,
    /// The provider system graded.
    pub provider_id: String,
    /// A service routed to it (an application service).
    pub service_id: String,
    /// The applicant the applications are about.
    pub subject: Subject,
    pub options: Options,
}

impl ProviderKit {
    /// Runs the selected cases and grades each.
    pub async fn run(&self) -> anyhow::Result<Report> {
        let selected = select("provider", CASES, &self.options.only)?;
        let journal = Journal::new(self.admin.clone());
        journal.position().await?;
        let global = self
            .admin
            .client()
            .get_clock(self.admin.request(GetClockRequest {})?)
            .await
            .map_err(crate::client::describe)?
            .into_inner();
        let run = uuid::Uuid::new_v4().simple().to_string();
        let mut outcomes = Vec::new();
        for case in selected {
            let started = Instant::now();
            let session = format!("conformance-{}-{}", &run[..8], case.name);
            let mut evidence = Vec::new();
            let failure = match cases::run(self, case, &session, &journal, &mut evidence).await {
                Ok(failure) => failure,
                Err(error) => Some(format!("the case could not be run: {error:#}")),
            };
            // A case may have moved the global clock to end a lease.
            let restored = restore(&self.admin, &global).await;
            outcomes.push(Outcome {
                case: case.name,
                title: case.title,
                rule: case.rule,
                failure: failure.or_else(|| {
                    restored
                        .err()
                        .map(|error| format!("restoring the global clock failed: {error:#}"))
                }),
                skipped: None,
                evidence,
                duration: started.elapsed(),
            });
        }
        Ok(Report {
            kit: "provider",
            target: self.provider_id.clone(),
            outcomes,
        })
    }
}

/// Puts the global clock back to real time when it was real before the
/// run. A clock that was simulated already is left where the cases moved it
/// (forwards only, by the hour each lease case advances it).
async fn restore(admin: &Admin, reading: &ClockReading) -> anyhow::Result<()> {
    if reading.simulated {
        return Ok(());
    }
    let current = admin
        .client()
        .get_clock(admin.request(GetClockRequest {})?)
        .await
        .map_err(crate::client::describe)?
        .into_inner();
    if current.simulated {
        admin
            .set_clock(None, set_clock_request::Change::Reset(true))
            .await?;
    }
    Ok(())
}
