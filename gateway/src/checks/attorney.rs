//! The power of attorney a representative acts on (the service centre's
//! «условие 1»): ЕНИС knows it, and it lets this representative make this
//! request for this applicant on the day the message was signed.

use shep_proto::envelope::v1::PowerOfAttorneyRef;
use shep_proto::registry::v1::PowerOfAttorney;
use shep_registries::RegistryKind;
use time::Date;
use time::format_description::well_known::Iso8601;

use crate::envelope::SubjectId;
use crate::error::{AttorneyProblem, GatewayError};

/// Whether the power of attorney names `subject` as its principal or its
/// representative.
pub(crate) fn concerns(attorney: &PowerOfAttorney, subject: &SubjectId) -> bool {
    match subject {
        SubjectId::Iin(iin) => {
            (attorney.principal_iin == *iin && attorney.principal_bin.is_empty())
                || attorney.representative_iin == *iin
        }
        SubjectId::Bin(bin) => attorney.principal_bin == *bin,
    }
}

/// Checks a power of attorney ЕНИС returned against the request, on `today`.
pub(crate) fn check_attorney(
    attorney: &PowerOfAttorney,
    reference: &PowerOfAttorneyRef,
    subject: &SubjectId,
    service_id: &str,
    today: Date,
) -> Result<(), GatewayError> {
    let refuse = |problem: AttorneyProblem, detail: String| GatewayError::PowerOfAttorneyInvalid {
        number: attorney.number.clone(),
        problem,
        detail,
    };
    let date = |field: &str, text: &str| {
        Date::parse(text, &Iso8601::DATE).map_err(|_| GatewayError::RegistryUnavailable {
            registry: RegistryKind::PowersOfAttorney.id().to_owned(),
            message: format!("answered a power of attorney with a bad `{field}` `{text}`"),
        })
    };
    if attorney.revoked {
        let when = if attorney.revocation_date.is_empty() {
            String::new()
        } else {
            format!(" on {}", attorney.revocation_date)
        };
        return Err(refuse(AttorneyProblem::Revoked, format!("revoked{when}")));
    }
    if date("issue_date", &attorney.issue_date)? > today {
        return Err(refuse(
            AttorneyProblem::NotYetValid,
            format!("in force from {}", attorney.issue_date),
        ));
    }
    if date("valid_until", &attorney.valid_until)? < today {
        return Err(refuse(
            AttorneyProblem::Expired,
            format!("expired after {}", attorney.valid_until),
        ));
    }
    let (principal_ok, applicant) = match subject {
        SubjectId::Iin(iin) => (
            attorney.principal_iin == *iin && attorney.principal_bin.is_empty(),
            iin,
        ),
        SubjectId::Bin(bin) => (attorney.principal_bin == *bin, bin),
    };
    if !principal_ok {
        let principal = if attorney.principal_bin.is_empty() {
            &attorney.principal_iin
        } else {
            &attorney.principal_bin
        };
        return Err(refuse(
            AttorneyProblem::PrincipalMismatch,
            format!("given by `{principal}`, not by the applicant `{applicant}`"),
        ));
    }
    if attorney.representative_iin != reference.representative_iin {
        return Err(refuse(
            AttorneyProblem::RepresentativeMismatch,
            format!(
                "names representative `{}`, not `{}`",
                attorney.representative_iin, reference.representative_iin
            ),
        ));
    }
    if !attorney.service_ids.is_empty() && !attorney.service_ids.iter().any(|id| id == service_id) {
        return Err(refuse(
            AttorneyProblem::ServiceNotCovered,
            format!(
                "covers {}, not `{service_id}`",
                attorney
                    .service_ids
                    .iter()
                    .map(|id| format!("`{id}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    fn attorney() -> PowerOfAttorney {
        PowerOfAttorney {
            number: "850315301235-01".into(),
            principal_iin: "850315301235".into(),
            representative_iin: "780521307893".into(),
            issue_date: "2025-06-02".into(),
            valid_until: "2030-06-01".into(),
            ..PowerOfAttorney::default()
        }
    }

    fn reference() -> PowerOfAttorneyRef {
        PowerOfAttorneyRef {
            number: "850315301235-01".into(),
            representative_iin: "780521307893".into(),
        }
    }

    fn problem(
        attorney: &PowerOfAttorney,
        reference: &PowerOfAttorneyRef,
        subject: &SubjectId,
        today: Date,
    ) -> Option<AttorneyProblem> {
        match check_attorney(attorney, reference, subject, "svc", today) {
            Ok(()) => None,
            Err(GatewayError::PowerOfAttorneyInvalid { problem, .. }) => Some(problem),
            Err(other) => panic!("{other}"),
        }
    }

    #[test]
    fn checks_a_power_of_attorney_against_the_request() {
        let person = SubjectId::Iin("850315301235".into());
        let today = date!(2026 - 01 - 15);
        assert_eq!(problem(&attorney(), &reference(), &person, today), None);
        let revoked = PowerOfAttorney {
            revoked: true,
            ..attorney()
        };
        assert_eq!(
            problem(&revoked, &reference(), &person, today),
            Some(AttorneyProblem::Revoked)
        );
        assert_eq!(
            problem(&attorney(), &reference(), &person, date!(2030 - 06 - 02)),
            Some(AttorneyProblem::Expired)
        );
        assert_eq!(
            problem(&attorney(), &reference(), &person, date!(2030 - 06 - 01)),
            None,
            "valid through its last day"
        );
        assert_eq!(
            problem(&attorney(), &reference(), &person, date!(2025 - 06 - 01)),
            Some(AttorneyProblem::NotYetValid)
        );
        let other = SubjectId::Iin("920704404563".into());
        assert_eq!(
            problem(&attorney(), &reference(), &other, today),
            Some(AttorneyProblem::PrincipalMismatch)
        );
        let someone_else = PowerOfAttorneyRef {
            representative_iin: "920704404563".into(),
            ..reference()
        };
        assert_eq!(
            problem(&attorney(), &someone_else, &person, today),
            Some(AttorneyProblem::RepresentativeMismatch)
        );
        let limited = PowerOfAttorney {
            service_ids: vec!["other".into()],
            ..attorney()
        };
        assert_eq!(
            problem(&limited, &reference(), &person, today),
            Some(AttorneyProblem::ServiceNotCovered)
        );
        let covering = PowerOfAttorney {
            service_ids: vec!["other".into(), "svc".into()],
            ..attorney()
        };
        assert_eq!(problem(&covering, &reference(), &person, today), None);
    }

    #[test]
    fn an_entity_power_of_attorney_serves_the_entity_not_its_head() {
        let entity = PowerOfAttorney {
            principal_bin: "100440123456".into(),
            principal_iin: "010910512342".into(),
            ..attorney()
        };
        let today = date!(2026 - 01 - 15);
        let bin = SubjectId::Bin("100440123456".into());
        assert_eq!(problem(&entity, &reference(), &bin, today), None);
        let head = SubjectId::Iin("010910512342".into());
        assert_eq!(
            problem(&entity, &reference(), &head, today),
            Some(AttorneyProblem::PrincipalMismatch)
        );
        assert!(concerns(&entity, &bin));
        assert!(!concerns(&entity, &head));
        assert!(concerns(&entity, &SubjectId::Iin("780521307893".into())));
    }
}
