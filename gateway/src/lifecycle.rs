//! The application status lifecycle (BRIEF §5): which status may follow which,
//! and the default notification text for each.

use shep_proto::envelope::v1::ApplicationStatus as Status;
use time::OffsetDateTime;
use time::macros::format_description;

use crate::calendar::KZ_OFFSET;

/// Whether the provider's answer is final: nothing but the issue of the
/// paper result (ISSUED, UNCOLLECTED) may follow. A watcher that waits for
/// the outcome stops here.
pub fn is_terminal(status: Status) -> bool {
    matches!(
        status,
        Status::Refused
            | Status::Completed
            | Status::NotDelivered
            | Status::ReturnedToCentre
            | Status::Issued
            | Status::Uncollected
    )
}

/// ШЭП's messageType of a provider's report of `status`: the final answer
/// (a result or a motivated refusal) is a RESPONSE, anything else an UPDATE.
pub fn report_type(status: Status) -> shep_proto::envelope::v1::MessageType {
    use shep_proto::envelope::v1::MessageType;
    match status {
        Status::Completed | Status::Refused => MessageType::Response,
        _ => MessageType::Update,
    }
}

/// Whether a step with a due time is open: the provider's work (until its
/// answer), or the centre's working day to inform the applicant of a return
/// (000 Т2 д.9).
pub fn is_open(status: Status) -> bool {
    !is_terminal(status) || status == Status::ReturnedToCentre
}

/// Who may report a status: the provider, or the system holding the paper
/// result (the service centre on its channel, the provider at its desk).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reporter {
    Provider,
    Issuer,
}

/// What a report must respect beyond the order of statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
    /// The channel the application came on.
    pub channel: shep_proto::envelope::v1::Channel,
    /// The service's regulations allow a result without registration.
    pub immediate_result: bool,
}

/// Who reports `status`.
pub fn reporter_of(status: Status) -> Option<Reporter> {
    use Status::*;
    match status {
        Registered | InWork | TermExtended | ReturnedToCentre | Refused | Completed => {
            Some(Reporter::Provider)
        }
        Issued | Uncollected => Some(Reporter::Issuer),
        Unspecified | Accepted | Delivered | NotDelivered => None,
    }
}

/// Why a status may not follow another, in the words of the regulations;
/// `None` when it may. The rules (BRIEF §5, with their sources):
///
/// - REGISTERED comes first («Регистрация запроса с присвоением номера
///   заявлению», 000/001 Т2): IN_WORK, TERM_EXTENDED, REFUSED and COMPLETED
///   follow it, COMPLETED straight away only where the service allows an
///   immediate result.
/// - TERM_EXTENDED follows registration («в случае продления срока оказания
///   услуги», 000 Прил.3); work resumes with IN_WORK.
/// - RETURNED_TO_CENTRE only for applications from the centre (000 Т2 д.8);
///   the 3-working-day limit is checked by the caller, who knows the time.
/// - ISSUED and UNCOLLECTED only for a paper result at the centre or the
///   provider's desk (000 п.7.11, 001 п.6.11, 004 п.7.10, 004 п.17.4),
///   after COMPLETED or REFUSED; ISSUED also hands over the written
///   justification of a return (000 Т2 д.9), and may follow UNCOLLECTED.
pub fn refusal(from: Status, to: Status, rules: Rules) -> Option<&'static str> {
    use Status::*;
    use shep_proto::envelope::v1::Channel;
    let registered = matches!(from, Registered | InWork | TermExtended);
    let unregistered = matches!(from, Accepted | Delivered);
    let paper = matches!(
        rules.channel,
        Channel::ServiceCentre | Channel::ProviderDesk
    );
    match to {
        Registered if unregistered => None,
        Registered => Some("an application is registered once, before anything else"),
        InWork | TermExtended | Refused if registered => None,
        InWork | TermExtended | Refused if unregistered => {
            Some("the provider registers an application before working on it")
        }
        Completed if registered || (unregistered && rules.immediate_result) => None,
        Completed if unregistered => Some(
            "the provider registers an application before completing it (the service has no immediate result)",
        ),
        ReturnedToCentre if rules.channel != Channel::ServiceCentre => {
            Some("only an application from the service centre is returned to it")
        }
        ReturnedToCentre if registered || unregistered => None,
        Issued | Uncollected if !paper => {
            Some("a paper result is issued only at the service centre or the provider's desk")
        }
        Issued if matches!(from, Completed | Refused | ReturnedToCentre | Uncollected) => None,
        Uncollected if matches!(from, Completed | Refused) => None,
        Issued | Uncollected => Some("the result is issued once the provider has answered"),
        _ if is_terminal(from) => Some("the application is closed"),
        _ => Some("the gateway sets this status itself"),
    }
}

/// Whether a provider may report `to` while the application is in `from`,
/// on an application from the portal of a service without an immediate
/// result. (A report before the delivery acknowledgement arrived implies
/// delivery.)
pub fn provider_may_report(from: Status, to: Status) -> bool {
    reporter_of(to) == Some(Reporter::Provider)
        && refusal(
            from,
            to,
            Rules {
                channel: shep_proto::envelope::v1::Channel::Portal,
                immediate_result: false,
            },
        )
        .is_none()
}

/// `dd.mm.yyyy hh:mm` in Astana time, as notifications show dates.
pub fn local_time(time: OffsetDateTime) -> String {
    time.to_offset(KZ_OFFSET)
        .format(format_description!("[day].[month].[year] [hour]:[minute]"))
        .unwrap_or_default()
}

/// The notification of an overdue mark: who is late, and since when.
pub fn overdue_notification(status: Status, due: OffsetDateTime) -> String {
    let due = local_time(due);
    match status {
        Status::ReturnedToCentre => {
            format!("ЦОН не проинформировал услугополучателя о возврате документов в срок ({due})")
        }
        Status::Accepted | Status::Delivered => {
            format!("Срок оказания услуги истек {due}, заявка не зарегистрирована услугодателем")
        }
        _ => format!("Срок оказания услуги истек {due}, результат не предоставлен"),
    }
}

/// The notification text the gateway writes when the reporter gave none.
pub fn default_notification(
    status: Status,
    registration_number: &str,
    expected_at: Option<OffsetDateTime>,
    reason: &str,
) -> String {
    let expected = expected_at.map(local_time).unwrap_or_default();
    match status {
        Status::Accepted => "Заявка принята шлюзом и направлена услугодателю".to_owned(),
        Status::Delivered => "Заявка доставлена услугодателю".to_owned(),
        Status::Registered => format!(
            "Заявка зарегистрирована под номером {registration_number}. Результат ожидается {expected}"
        ),
        Status::InWork => "Заявка принята в работу".to_owned(),
        Status::TermExtended => format!("Срок оказания услуги продлен до {expected}"),
        Status::ReturnedToCentre => format!(
            "Документы возвращены в ЦОН: {reason}. ЦОН проинформирует услугополучателя до {expected}"
        ),
        Status::Refused => format!("Мотивированный отказ: {reason}"),
        Status::Completed => "Результат оказания услуги готов".to_owned(),
        Status::NotDelivered => format!("Заявка не доставлена услугодателю: {reason}"),
        Status::Issued => "Результат выдан услугополучателю".to_owned(),
        Status::Uncollected => {
            "Результат не получен в установленный срок и оставлен на хранение".to_owned()
        }
        Status::Unspecified => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_happy_path_is_allowed() {
        let path = [
            Status::Accepted,
            Status::Registered,
            Status::InWork,
            Status::TermExtended,
            Status::InWork,
            Status::Completed,
        ];
        for pair in path.windows(2) {
            assert!(provider_may_report(pair[0], pair[1]), "{pair:?}");
        }
    }

    #[test]
    fn terminal_statuses_accept_nothing_more() {
        for from in [Status::Completed, Status::Refused, Status::NotDelivered] {
            assert!(is_terminal(from));
            assert!(!provider_may_report(from, Status::InWork));
            assert!(!provider_may_report(from, Status::Completed));
        }
    }

    #[test]
    fn providers_cannot_report_gateway_statuses_or_go_back() {
        assert!(!provider_may_report(Status::Delivered, Status::Accepted));
        assert!(!provider_may_report(
            Status::Delivered,
            Status::NotDelivered
        ));
        assert!(!provider_may_report(Status::InWork, Status::Registered));
        assert!(!provider_may_report(
            Status::Delivered,
            Status::TermExtended
        ));
    }

    fn rules(channel: shep_proto::envelope::v1::Channel) -> Rules {
        Rules {
            channel,
            immediate_result: false,
        }
    }

    #[test]
    fn registration_comes_before_work_refusal_and_completion() {
        use shep_proto::envelope::v1::Channel;
        let portal = rules(Channel::Portal);
        for to in [
            Status::InWork,
            Status::TermExtended,
            Status::Refused,
            Status::Completed,
        ] {
            assert!(refusal(Status::Delivered, to, portal).is_some(), "{to:?}");
            assert!(refusal(Status::Registered, to, portal).is_none(), "{to:?}");
        }
        let immediate = Rules {
            immediate_result: true,
            ..portal
        };
        assert_eq!(
            refusal(Status::Delivered, Status::Completed, immediate),
            None
        );
        assert!(refusal(Status::Registered, Status::Registered, portal).is_some());
    }

    #[test]
    fn returns_and_paper_issues_belong_to_their_channels() {
        use shep_proto::envelope::v1::Channel;
        let centre = rules(Channel::ServiceCentre);
        let portal = rules(Channel::Portal);
        let desk = rules(Channel::ProviderDesk);
        assert_eq!(
            refusal(Status::Delivered, Status::ReturnedToCentre, centre),
            None
        );
        assert!(refusal(Status::Delivered, Status::ReturnedToCentre, portal).is_some());
        assert!(refusal(Status::Completed, Status::ReturnedToCentre, centre).is_some());
        for from in [Status::Completed, Status::Refused] {
            assert_eq!(refusal(from, Status::Issued, centre), None);
            assert_eq!(refusal(from, Status::Uncollected, desk), None);
            assert!(refusal(from, Status::Issued, portal).is_some());
        }
        assert_eq!(
            refusal(Status::ReturnedToCentre, Status::Issued, centre),
            None
        );
        assert_eq!(refusal(Status::Uncollected, Status::Issued, centre), None);
        assert!(refusal(Status::InWork, Status::Issued, centre).is_some());
        assert!(refusal(Status::Issued, Status::Issued, centre).is_some());
        assert!(refusal(Status::Issued, Status::InWork, centre).is_some());
    }

    #[test]
    fn due_steps_stay_open_through_a_return() {
        assert!(is_open(Status::Accepted) && is_open(Status::TermExtended));
        assert!(is_open(Status::ReturnedToCentre) && is_terminal(Status::ReturnedToCentre));
        for closed in [
            Status::Completed,
            Status::Refused,
            Status::Issued,
            Status::NotDelivered,
        ] {
            assert!(!is_open(closed), "{closed:?}");
        }
        assert_eq!(reporter_of(Status::Issued), Some(Reporter::Issuer));
        assert_eq!(reporter_of(Status::Completed), Some(Reporter::Provider));
        assert_eq!(reporter_of(Status::Delivered), None);
    }
}
