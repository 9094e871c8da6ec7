//! A provider's status report: on the provider desk, about an application
//! (its `correlation_id`), with what its status requires.

use shep_proto::envelope::v1::{ApplicationStatus, StatusReport};
use time::OffsetDateTime;

use crate::envelope::{Inbound, parse_uuid};
use crate::error::GatewayError;
use crate::routes::ChannelName;

/// The report and the application it is about.
#[derive(Debug)]
pub(crate) struct ReportFields {
    pub(crate) report: StatusReport,
    /// The application reported on.
    pub(crate) application_id: String,
}

/// The report is there, names its application and came on the provider desk.
pub(crate) fn report_fields(inbound: &Inbound) -> Result<ReportFields, GatewayError> {
    let report = inbound
        .body
        .report
        .clone()
        .ok_or_else(|| GatewayError::InvalidField {
            field: "report",
            problem: "is required on Provider.Report".to_owned(),
        })?;
    let application_id = parse_uuid("correlation_id", &inbound.body.correlation_id)?;
    // The service centre reports the issue of a paper result on its own
    // channel; everything else comes from the provider's desk.
    let issue = matches!(
        ApplicationStatus::try_from(report.status),
        Ok(ApplicationStatus::Issued | ApplicationStatus::Uncollected)
    );
    let allowed = inbound.channel == ChannelName::ProviderDesk
        || (issue && inbound.channel == ChannelName::ServiceCentre);
    if !allowed {
        return Err(GatewayError::InvalidField {
            field: "channel",
            problem: "a report must come on PROVIDER_DESK (ISSUED and UNCOLLECTED also on SERVICE_CENTRE)".to_owned(),
        });
    }
    Ok(ReportFields {
        report,
        application_id,
    })
}

/// The reported status and the fields it requires: a registration number,
/// an expected date, a reason, a result (the application's own state is
/// checked when the status is recorded).
pub(crate) fn status_fields(
    report: &StatusReport,
) -> Result<(ApplicationStatus, Option<OffsetDateTime>), GatewayError> {
    let status =
        ApplicationStatus::try_from(report.status).unwrap_or(ApplicationStatus::Unspecified);
    let missing = |field: &'static str, what: &str| GatewayError::InvalidField {
        field,
        problem: format!("is required for {what}"),
    };
    let expected_at = report
        .expected_at
        .as_ref()
        .map(|time| {
            OffsetDateTime::from_unix_timestamp(time.seconds).map_err(|_| {
                GatewayError::InvalidField {
                    field: "report.expected_at",
                    problem: "is not a valid timestamp".to_owned(),
                }
            })
        })
        .transpose()?;
    match status {
        ApplicationStatus::Registered if report.registration_number.is_empty() => {
            return Err(missing("report.registration_number", "REGISTERED"));
        }
        ApplicationStatus::TermExtended if expected_at.is_none() => {
            return Err(missing("report.expected_at", "TERM_EXTENDED"));
        }
        ApplicationStatus::Refused | ApplicationStatus::ReturnedToCentre
            if report.reason.is_empty() =>
        {
            return Err(missing("report.reason", "REFUSED and RETURNED_TO_CENTRE"));
        }
        ApplicationStatus::Completed if report.result.is_none() => {
            return Err(missing("report.result", "COMPLETED"));
        }
        _ => {}
    }
    Ok((status, expected_at))
}

#[cfg(test)]
mod tests {
    use shep_proto::envelope::v1::{Body, MessageType};

    use super::*;
    use crate::envelope::SubjectId;

    fn inbound(channel: ChannelName, report: Option<StatusReport>) -> Inbound {
        Inbound {
            body: Body {
                correlation_id: "0b7f3c1e-4a4e-4b8e-9b0a-1c2d3e4f5a6b".into(),
                report,
                ..Body::default()
            },
            message_id: String::new(),
            message_type: MessageType::Update,
            signed_at: OffsetDateTime::UNIX_EPOCH,
            subject: SubjectId::Iin("850315301235".into()),
            channel,
            sender_id: "arm".into(),
        }
    }

    fn field<T>(result: Result<T, GatewayError>) -> &'static str {
        match result {
            Err(GatewayError::InvalidField { field, .. }) => field,
            Err(other) => panic!("{other}"),
            Ok(_) => "",
        }
    }

    fn report(status: ApplicationStatus) -> StatusReport {
        StatusReport {
            status: status as i32,
            ..StatusReport::default()
        }
    }

    #[test]
    fn each_status_requires_its_own_fields() {
        let cases = [
            (ApplicationStatus::Registered, "report.registration_number"),
            (ApplicationStatus::TermExtended, "report.expected_at"),
            (ApplicationStatus::Refused, "report.reason"),
            (ApplicationStatus::ReturnedToCentre, "report.reason"),
            (ApplicationStatus::Completed, "report.result"),
            (ApplicationStatus::InWork, ""),
        ];
        for (status, expected) in cases {
            assert_eq!(
                field(status_fields(&report(status))),
                expected,
                "{status:?}"
            );
        }
    }

    #[test]
    fn a_report_comes_on_the_provider_desk_and_carries_a_report() {
        let portal = inbound(ChannelName::Portal, Some(report(ApplicationStatus::InWork)));
        assert_eq!(field(report_fields(&portal)), "channel");
        assert_eq!(
            field(report_fields(&inbound(ChannelName::ProviderDesk, None))),
            "report"
        );
    }
}
