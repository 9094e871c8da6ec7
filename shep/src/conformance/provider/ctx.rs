//! One case's run: submitting in its session, faults on the provider,
//! following an application, and waiting on the journal.

use shep_gateway::lifecycle::is_terminal;
use shep_proto::admin::v1::{Delay, Fault, FaultTarget, fault, fault_target, set_clock_request};
use shep_proto::envelope::v1::ApplicationStatus;
use shep_proto::gateway::v1::gateway_client::GatewayClient;
use shep_proto::gateway::v1::{StatusEvent, WatchRequest, watch_request};
use tokio::time::{Duration, Instant};
use tokio_stream::StreamExt as _;

use super::ProviderKit;
use crate::conformance::journal::{Entry, Journal, Seen, short, status_name};

/// How far a lease case moves the global clock: past any lease.
const PAST_ANY_LEASE_SECONDS: u64 = 3600;

/// How often the journal is polled while waiting for an exchange.
const POLL: Duration = Duration::from_millis(50);

/// How often a follow with no news looks for a provider that gave up.
const GIVE_UP_CHECK: Duration = Duration::from_millis(500);

/// Whether the gateway refused one of the provider's reports.
fn refused_report(entries: &[Entry]) -> bool {
    entries.iter().any(|entry| {
        matches!(
            entry.seen,
            Seen::Reported {
                refused: Some(_),
                ..
            }
        )
    })
}

/// How many reports the provider sent.
fn reports(entries: &[Entry]) -> usize {
    entries
        .iter()
        .filter(|entry| matches!(entry.seen, Seen::Reported { .. }))
        .count()
}

pub(super) struct Ctx<'a> {
    pub(super) kit: &'a ProviderKit,
    pub(super) session: &'a str,
    pub(super) journal: &'a Journal,
    /// The journal's position when the case began.
    pub(super) mark: u64,
    pub(super) deadline: Instant,
}

/// What the status events of an application showed.
#[derive(Debug, Default)]
pub(super) struct Followed {
    pub(super) events: Vec<StatusEvent>,
    /// The final status, if one came in time.
    pub(super) last: Option<ApplicationStatus>,
}

impl Followed {
    /// The events as evidence lines.
    pub(super) fn lines(&self, id: &str) -> Vec<String> {
        self.events
            .iter()
            .map(|event| {
                let status = status_name(event.status);
                let mut line = if event.overdue {
                    format!("{} status OVERDUE ({status})", short(id))
                } else {
                    format!("{} status {status}", short(id))
                };
                if !event.registration_number.is_empty() {
                    line.push_str(&format!(" № {}", event.registration_number));
                }
                if !event.reported_by.is_empty() {
                    line.push_str(&format!(" by {}", event.reported_by));
                }
                line
            })
            .collect()
    }
}

impl Ctx<'_> {
    pub(super) fn gateway(&self) -> GatewayClient<tonic::transport::Channel> {
        GatewayClient::new(self.kit.gateway.clone()).max_decoding_message_size(usize::MAX)
    }

    /// Submits one application in the case's session; its message id.
    pub(super) async fn submit(&self) -> anyhow::Result<String> {
        let kit = self.kit;
        let body = kit.applicant.application(
            &kit.service_id,
            kit.subject.clone(),
            r#"{"conformance":"provider"}"#,
            Vec::new(),
        );
        let mut request = tonic::Request::new(kit.applicant.seal(&body)?);
        request
            .metadata_mut()
            .insert(shep_gateway::toolkit::SESSION_HEADER, self.session.parse()?);
        let receipt = self
            .gateway()
            .submit(request)
            .await
            .map_err(crate::client::describe)?
            .into_inner();
        anyhow::ensure!(
            receipt.provider_id == kit.provider_id,
            "service `{}` was routed to `{}`, not to `{}`: choose a service of the provider graded (--service)",
            kit.service_id,
            receipt.provider_id,
            kit.provider_id
        );
        Ok(receipt.message_id)
    }

    /// Adds a fault on deliveries to the provider, in the case's session,
    /// firing once.
    pub(super) async fn fault(
        &self,
        effect: fault::Effect,
        delay: Option<Delay>,
    ) -> anyhow::Result<()> {
        let fault = Fault {
            target: Some(FaultTarget {
                target: Some(fault_target::Target::Provider(self.kit.provider_id.clone())),
            }),
            delay,
            effect: Some(effect),
            times: 1,
            ..Fault::default()
        };
        self.kit
            .admin
            .client()
            .add_fault(self.kit.admin.in_session(fault, self.session)?)
            .await
            .map_err(crate::client::describe)?;
        Ok(())
    }

    /// Follows application `id` until a final status or the case's deadline.
    pub(super) async fn follow(&self, id: &str) -> anyhow::Result<Followed> {
        self.follow_until(id, false).await
    }

    /// [`Ctx::follow`], ending at an overdue mark too when `overdue` says so.
    pub(super) async fn follow_until(&self, id: &str, overdue: bool) -> anyhow::Result<Followed> {
        let stop_at_overdue = overdue;
        let mut followed = Followed::default();
        let mut events = self
            .gateway()
            .watch(WatchRequest {
                target: Some(watch_request::Target::MessageId(id.to_owned())),
                after_sequence: 0,
            })
            .await
            .map_err(crate::client::describe)?
            .into_inner();
        let ids = [id.to_owned()];
        let mut reports_before = usize::MAX;
        loop {
            let tick = (Instant::now() + GIVE_UP_CHECK).min(self.deadline);
            let event = match tokio::time::timeout_at(tick, events.next()).await {
                Ok(Some(event)) => event.map_err(crate::client::describe)?,
                Ok(None) => return Ok(followed),
                Err(_) if Instant::now() >= self.deadline => return Ok(followed),
                // A provider whose report was refused and that has gone
                // quiet since will not finish: waiting out the case's
                // deadline would only slow the run.
                Err(_) => {
                    let entries = self.entries(&ids).await?;
                    let reports = reports(&entries);
                    if refused_report(&entries) && reports == reports_before {
                        return Ok(followed);
                    }
                    reports_before = reports;
                    continue;
                }
            };
            let status = event.status();
            let overdue = event.overdue;
            followed.events.push(event);
            if !overdue && is_terminal(status) {
                followed.last = Some(status);
                return Ok(followed);
            }
            if overdue && stop_at_overdue {
                return Ok(followed);
            }
        }
    }

    /// What the journal shows about `ids` since the case began.
    pub(super) async fn entries(&self, ids: &[String]) -> anyhow::Result<Vec<Entry>> {
        self.journal.about(self.mark, ids).await
    }

    /// Waits until the journal shows what `enough` looks for (or the case's
    /// deadline); what it shows then, and whether it was enough.
    pub(super) async fn wait_for(
        &self,
        ids: &[String],
        enough: impl Fn(&[Entry]) -> bool,
    ) -> anyhow::Result<(Vec<Entry>, bool)> {
        loop {
            let entries = self.entries(ids).await?;
            if enough(&entries) {
                return Ok((entries, true));
            }
            if Instant::now() >= self.deadline {
                return Ok((entries, false));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Lets reports sent late (a second processing) arrive, then reads the
    /// journal.
    pub(super) async fn settled(&self, ids: &[String]) -> anyhow::Result<Vec<Entry>> {
        tokio::time::sleep(self.kit.options.quiet).await;
        self.entries(ids).await
    }

    /// Moves the global clock past any lease, so the gateway ends every
    /// lease now and redelivers.
    pub(super) async fn expire_leases(&self, evidence: &mut Vec<String>) -> anyhow::Result<()> {
        self.kit
            .admin
            .set_clock(
                None,
                set_clock_request::Change::AdvanceSeconds(PAST_ANY_LEASE_SECONDS),
            )
            .await?;
        let line = format!(
            "the kit moved the global clock {PAST_ANY_LEASE_SECONDS} s forwards: the lease ran out"
        );
        if evidence.last() != Some(&line) {
            evidence.push(line);
        }
        Ok(())
    }
}
