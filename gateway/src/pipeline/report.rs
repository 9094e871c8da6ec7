//! `Provider.Report`: a provider's signed status report about an application.

use shep_proto::envelope::v1::{ApplicationStatus, Channel, MessageType, SignedEnvelope};
use shep_proto::gateway::v1::MessageState;
use shep_proto::provider::v1::ReportReceipt;

use crate::checks::{self, ReportFields};
use crate::engine::Engine;
use crate::error::{GatewayError, with_causes};
use crate::lifecycle::{Reporter, Rules, default_notification, local_time, refusal, reporter_of};

/// Working days within which a provider returns documents with errors to
/// the centre (000 Т2 д.8).
pub(crate) const RETURN_WORKING_DAYS: u32 = 3;
/// Working days within which the centre informs the applicant of a return
/// (000 Т2 д.9).
pub(crate) const INFORM_WORKING_DAYS: u32 = 1;
use crate::storage::{Change, ReportKey, Settled};
use crate::toolkit::CallContext;

/// The steps of `Provider.Report`, in order.
pub async fn report(
    engine: &Engine,
    envelope: SignedEnvelope,
    ctx: &CallContext,
) -> Result<ReportReceipt, GatewayError> {
    // 1. The body: decoded, its fields and date valid; an UPDATE or RESPONSE
    //    carrying a report about an application, on the provider desk.
    let inbound = checks::decode(&envelope, engine.checks.skew_secs)?;
    tracing::Span::current().record("correlation_id", inbound.body.correlation_id.as_str());
    checks::message_type(
        &inbound,
        &[MessageType::Update, MessageType::Response],
        "Provider.Report",
    )?;
    let ReportFields {
        report,
        application_id,
    } = checks::report_fields(&inbound)?;
    // 2. The sender is the one the transport authenticated: a provider
    //    system of the routing table, or for the issue of a paper result the
    //    system holding it (checked against the application in step 7).
    let provider = inbound.sender_id.clone();
    ctx.principal.act_as(
        &provider,
        "a report comes from the system it names as sender",
    )?;
    let routes = engine.routes();
    let reported = ApplicationStatus::try_from(report.status).unwrap_or_default();
    let reporter = reporter_of(reported);
    if reporter == Some(Reporter::Issuer) {
        checks::check_system(&routes, &provider)?;
    } else {
        checks::check_provider(&routes, &provider)?;
    }
    // 3. The signature, then who signed: one of the provider's operators.
    let signer = engine.checks.signer(&envelope, &inbound).await?;
    engine.checks.identity(&routes, &inbound, &signer)?;
    // 4. Idempotency: an identical re-send gets the same receipt.
    let digest = super::submit::sha256(&envelope.body);
    let store = engine.store();
    if let Some((seen, receipt)) = store.report_seen(&provider, &inbound.message_id).await? {
        return if seen == digest {
            Ok(receipt)
        } else {
            Err(GatewayError::DuplicateMessage {
                message_id: inbound.message_id,
                sender: provider,
            })
        };
    }
    // 5. What the status requires; a result is signed by an operator of the
    //    provider, like the report.
    let (status, expected_at) = checks::status_fields(&report)?;
    if let Some(result) = &report.result {
        let author = engine
            .checks
            .verify_bytes(
                result.signature.as_ref(),
                &result.content,
                inbound.signed_at,
            )
            .await?;
        engine.checks.operator(&routes, &provider, &author)?;
    }
    // 6. A report that overtakes the provider's own ack (an automated
    //    provider acks and reports at once) first records the delivery it
    //    proves, so the history reads ACCEPTED → DELIVERED → … whatever the
    //    timing. `apply_settled` does nothing if the ack got there first.
    let unsettled = reporter == Some(Reporter::Provider)
        && store
            .with(&application_id, |record| {
                record.provider_id == provider
                    && record.status == ApplicationStatus::Accepted
                    && record.delivery_state == MessageState::OnDelivery
            })
            .await?
            .unwrap_or(false);
    if unsettled {
        crate::provider::apply_settled(engine, &application_id, &Settled::Delivered, "").await;
    }
    // 7. The application's side: this provider's (or, for the issue of a
    //    paper result, its holder's), this service and applicant, a status
    //    the lifecycle allows after the current one. Durable before the
    //    receipt.
    let immediate_result = routes
        .route(&inbound.body.service_id)
        .is_some_and(|route| route.immediate_result);
    let mut next_due = None;
    let mut consumer = String::new();
    let mut test_session = String::new();
    let recorded = store.record(&application_id, |record| {
        let centre = record.channel == Channel::ServiceCentre as i32;
        let reporter_id = match reporter {
            Some(Reporter::Issuer) if centre => &record.sender_id,
            _ => &record.provider_id,
        };
        if *reporter_id != provider {
            return Err(GatewayError::ProviderNotAllowed {
                provider: provider.clone(),
                message_id: application_id.clone(),
            });
        }
        if record.service_id != inbound.body.service_id {
            return Err(GatewayError::InvalidField {
                field: "service_id",
                problem: format!("is not the application's service `{}`", record.service_id),
            });
        }
        if record.subject != inbound.subject {
            return Err(GatewayError::InvalidField {
                field: "subject",
                problem: "does not match the application's applicant".to_owned(),
            });
        }
        let from = record.status;
        let now = engine.now_in(&record.test_session);
        let rules = Rules {
            channel: Channel::try_from(record.channel).unwrap_or_default(),
            immediate_result,
        };
        let refused = |rule: String| GatewayError::InvalidStatusTransition {
            from: from.as_str_name().to_owned(),
            to: status.as_str_name().to_owned(),
            rule,
        };
        if reporter.is_none() {
            return Err(refused("the gateway sets this status itself".to_owned()));
        }
        if let Some(rule) = refusal(from, status, rules) {
            return Err(refused(rule.to_owned()));
        }
        // Errors in documents from the centre go back within three working
        // days of receipt (000 Т2 д.8).
        if status == ApplicationStatus::ReturnedToCentre {
            let limit = engine.calendar.add_working_days(record.accepted_at, RETURN_WORKING_DAYS);
            if now > limit {
                return Err(refused(format!(
                    "documents go back to the centre within {RETURN_WORKING_DAYS} working days of receipt, by {} (000 Т2 д.8)",
                    local_time(limit)
                )));
            }
        }
        if record.delivery_state == MessageState::OnDelivery {
            // Reporting on it proves it arrived.
            record.delivery_state = MessageState::Delivered;
        }
        if status == ApplicationStatus::Registered {
            record.registration_number = report.registration_number.clone();
            record.expected_at = expected_at.or_else(|| {
                record
                    .deadline
                    .map(|deadline| deadline.due(record.accepted_at, &engine.calendar))
            });
        } else if status == ApplicationStatus::ReturnedToCentre {
            // The centre informs the applicant within one working day (000 Т2 д.9).
            record.expected_at = Some(engine.calendar.add_working_days(now, INFORM_WORKING_DAYS));
        } else if let Some(expected) = expected_at {
            record.expected_at = Some(expected);
        }
        record.status = status;
        next_due = record.due().map(|due| (record.test_session.clone(), due));
        consumer.clone_from(&record.sender_id);
        test_session.clone_from(&record.test_session);
        let notification = if report.notification.is_empty() {
            default_notification(
                status,
                &record.registration_number,
                record.expected_at,
                &report.reason,
            )
        } else {
            report.notification.clone()
        };
        Ok(Change {
            status,
            notification,
            registration_number: record.registration_number.clone(),
            expected_at: record.expected_at,
            reason: report.reason.clone(),
            result: report.result.clone(),
            reported_by: provider.clone(),
            report: Some(ReportKey {
                sender: provider.clone(),
                message_id: inbound.message_id.clone(),
                digest,
            }),
            occurred_at: Some(now),
            overdue: false,
        })
    });
    let (event, ticket) = recorded.await?;
    ticket.durable().await?;
    if let Some((session, due)) = next_due {
        engine.deadlines().track(&session, due, &application_id);
    }
    // 8. The reply path: the consumer that sent the application gets the
    //    provider's report as a message, when it receives responses.
    if reporter == Some(Reporter::Provider) {
        crate::provider::queue_response(
            engine,
            &consumer,
            std::sync::Arc::new(envelope),
            &inbound,
            // The application's session: the consumer's subscribers of it get it.
            (!test_session.is_empty()).then(|| std::sync::Arc::from(test_session.as_str())),
        )
        .await;
    }
    // 9. A report settles any outstanding delivery of the same request.
    match engine
        .delivery()
        .queue(&provider)
        .acknowledge(&application_id, true, false, engine.settings.max_attempts)
        .await
    {
        Ok(Some(settled)) => {
            tracing::debug!(message_id = %application_id, ?settled, "delivery settled by a report");
        }
        Ok(None) => {}
        Err(error) => {
            tracing::warn!(message_id = %application_id, error = %with_causes(&error), "settling the delivery of a reported application failed");
        }
    }
    tracing::info!(message_id = %application_id, status = status.as_str_name(), %provider, operator = ?signer.iin, "reported");
    let receipt = ReportReceipt {
        message_id: inbound.message_id.clone(),
        correlation_id: application_id,
        status: status as i32,
        sequence: event.sequence,
    };
    // The change carries the report's key too, so a failure here costs only
    // this node's memory of it, not the receipt.
    if let Err(error) = store
        .remember_report(&provider, &inbound.message_id, digest, receipt.clone())
        .await
    {
        tracing::warn!(report = %inbound.message_id, error = %with_causes(&error), "remembering a report failed");
    }
    Ok(receipt)
}
