//! The application status lifecycle (BRIEF §5): which status may follow which,
//! and the default notification text for each.

use shep_proto::envelope::v1::ApplicationStatus as Status;
use time::OffsetDateTime;
use time::macros::format_description;

use crate::calendar::KZ_OFFSET;

/// Whether a status ends the application.
pub fn is_terminal(status: Status) -> bool {
    matches!(
        status,
        Status::Refused | Status::Completed | Status::NotDelivered | Status::ReturnedToCentre
    )
}

/// Whether a provider may report `to` while the application is in `from`.
/// A report before the delivery acknowledgement arrived implies delivery.
pub fn provider_may_report(from: Status, to: Status) -> bool {
    use Status::*;
    let reportable = matches!(
        to,
        Registered | InWork | TermExtended | ReturnedToCentre | Refused | Completed
    );
    let open = matches!(
        from,
        Accepted | Delivered | Registered | InWork | TermExtended
    );
    let ordered = match to {
        Registered => matches!(from, Accepted | Delivered),
        InWork => matches!(from, Accepted | Delivered | Registered | TermExtended),
        TermExtended => matches!(from, Registered | InWork | TermExtended),
        _ => true,
    };
    reportable && open && ordered
}

/// `dd.mm.yyyy hh:mm` in Astana time, as notifications show dates.
pub fn local_time(time: OffsetDateTime) -> String {
    time.to_offset(KZ_OFFSET)
        .format(format_description!("[day].[month].[year] [hour]:[minute]"))
        .unwrap_or_default()
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
        Status::ReturnedToCentre => format!("Документы возвращены в ЦОН: {reason}"),
        Status::Refused => format!("Мотивированный отказ: {reason}"),
        Status::Completed => "Результат оказания услуги готов".to_owned(),
        Status::NotDelivered => format!("Заявка не доставлена услугодателю: {reason}"),
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
}
