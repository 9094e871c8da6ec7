use std::collections::BTreeSet;

use tonic_types::StatusExt as _;

use super::*;

/// Every `Reason` of the contract but the proto3 zero value, which is never sent.
fn contract() -> Vec<Reason> {
    (1..256)
        .filter_map(|number| Reason::try_from(number).ok())
        .collect()
}

#[test]
fn every_reason_of_the_contract_is_in_the_table_once_and_nothing_else() {
    let listed: Vec<Reason> = catalogue().iter().map(|entry| entry.reason).collect();
    let unique: BTreeSet<Reason> = listed.iter().copied().collect();
    assert_eq!(unique.len(), listed.len(), "a reason is listed twice");
    assert_eq!(unique, contract().into_iter().collect());
    for entry in catalogue() {
        assert_eq!(*entry, super::entry(entry.reason));
        assert_eq!(lookup(entry.name()), Some(entry));
        if entry.name() == INJECTED_FAULT {
            assert_eq!(entry.code, None);
            continue;
        }
        assert!(entry.code.is_some(), "`{}` has a fixed code", entry.name());
        assert_ne!(entry.retry, Retry::AsCodeImplies, "`{}`", entry.name());
        assert!(
            !entry.areas.is_empty(),
            "`{}` arises somewhere",
            entry.name()
        );
    }
    assert_eq!(lookup("REASON_UNSPECIFIED"), None);
    assert_eq!(lookup("NO_SUCH_REASON"), None);
}

#[test]
fn retry_advice_follows_the_code() {
    for entry in catalogue() {
        let Some(code) = entry.code else {
            assert_eq!(entry.retry, Retry::AsCodeImplies, "`{}`", entry.name());
            continue;
        };
        // Transient codes invite a retry; the rest never the same request.
        // RESOURCE_EXHAUSTED is transient when the resource is room in a
        // queue or the intake, not when it is the size of the request.
        let transient = matches!(
            code,
            GrpcCode::Unavailable
                | GrpcCode::Internal
                | GrpcCode::Aborted
                | GrpcCode::DeadlineExceeded
        ) || matches!(entry.reason, Reason::QueueFull | Reason::Overloaded);
        let retries = matches!(entry.retry, Retry::Retry | Retry::RetryAfterBackoff);
        assert_eq!(transient, retries, "`{}`", entry.name());
    }
    assert_eq!(
        Retry::for_code(GrpcCode::Unavailable),
        Retry::RetryAfterBackoff
    );
    assert_eq!(Retry::for_code(tonic::Code::Aborted), Retry::Retry);
    assert_eq!(Retry::for_code(GrpcCode::NotFound), Retry::DoNotRetry);
    assert_eq!(
        Retry::for_code(GrpcCode::InvalidArgument),
        Retry::FixAndResend
    );
    assert_eq!(Retry::for_code(GrpcCode::OutOfRange), Retry::FixAndResend);
}

#[test]
fn codes_match_tonic_by_number_and_name() {
    for number in 0..=16 {
        let tonic = tonic::Code::from_i32(number);
        let ours = GrpcCode::from(tonic);
        assert_eq!(ours.number(), number);
        assert_eq!(tonic::Code::from(ours), tonic);
        assert_eq!(GrpcCode::from_number(number), Some(ours));
        assert_eq!(GrpcCode::from_name(ours.name()), Some(ours));
        assert_eq!(
            GrpcCode::from_name(&format!(" {} ", ours.name().to_lowercase())),
            Some(ours)
        );
        // tonic's `Debug` is the name in CamelCase.
        assert_eq!(
            ours.name().replace('_', "").to_lowercase(),
            format!("{tonic:?}").to_lowercase()
        );
    }
    assert_eq!(GrpcCode::from_number(17), None);
    assert_eq!(GrpcCode::from_number(-1), None);
    assert_eq!(GrpcCode::from_name("TEAPOT"), None);
    assert_eq!(code_name(tonic::Code::OutOfRange), "OUT_OF_RANGE");
}

#[test]
fn a_refusal_carries_the_catalogued_code_reason_and_shep_code() {
    let status = refusal(
        Reason::InvalidField,
        "`x` is missing",
        HashMap::from([("field".to_owned(), "x".to_owned())]),
    );
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert_eq!(status.message(), "`x` is missing");
    let info = status.get_details_error_info().expect("ErrorInfo");
    assert_eq!(info.reason, "INVALID_FIELD");
    assert_eq!(info.domain, ERROR_DOMAIN);
    assert_eq!(info.metadata.get("field").unwrap(), "x");
    assert_eq!(info.metadata.get("shep_code").unwrap(), "SCE001");

    let status = refusal(Reason::NoData, "nothing", HashMap::new());
    assert_eq!(status.code(), tonic::Code::NotFound);
    let info = status.get_details_error_info().expect("ErrorInfo");
    assert_eq!(
        info.metadata.get("shep_code").map(String::as_str),
        Some("2018"),
        "NO_DATA is an empty answer"
    );
}

#[test]
fn the_transport_table_lists_each_code_once_with_its_advice() {
    let codes: BTreeSet<i32> = transport_statuses()
        .iter()
        .map(|status| status.code.number())
        .collect();
    assert_eq!(codes.len(), transport_statuses().len());
    // tonic refuses a message over its decoding limit with OUT_OF_RANGE.
    assert!(codes.contains(&GrpcCode::OutOfRange.number()));
    let markdown = catalogue_markdown();
    assert!(
        markdown.contains("| OUT_OF_RANGE | fix-and-resend |"),
        "{markdown}"
    );
}

/// The tables between the markers of docs/ERRORS.md.
fn documented_table() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/ERRORS.md");
    let text = std::fs::read_to_string(path).expect("reading docs/ERRORS.md");
    let start = text
        .find(TABLE_BEGIN)
        .expect("docs/ERRORS.md has the begin marker")
        + TABLE_BEGIN.len();
    let end = text
        .find(TABLE_END)
        .expect("docs/ERRORS.md has the end marker");
    text[start..end].trim_start_matches('\n').to_owned()
}

#[test]
fn docs_errors_md_holds_exactly_the_generated_table() {
    assert_eq!(
        documented_table(),
        catalogue_markdown(),
        "docs/ERRORS.md is out of date: replace its table with `shep errors --format markdown`"
    );
}

#[test]
fn the_json_form_has_every_entry() {
    let json = catalogue_json();
    let entries = json.as_array().unwrap();
    assert_eq!(entries.len(), catalogue().len());
    let signature = entries
        .iter()
        .find(|entry| entry["reason"] == "SIGNATURE_INVALID")
        .unwrap();
    assert_eq!(signature["code"], "UNAUTHENTICATED");
    assert_eq!(signature["code_number"], 16);
    assert_eq!(signature["shep_code"], "SCE016");
    assert_eq!(signature["retry"], "fix-and-resend");
    let injected = entries
        .iter()
        .find(|entry| entry["reason"] == INJECTED_FAULT)
        .unwrap();
    assert!(injected["code"].is_null());
}

#[test]
fn every_reason_names_its_closest_shep_code() {
    // The codes integration teams meet (ANCHORS §1.5): SCE… of the sync
    // contract, the async channel's numeric codes, the emulators' names.
    let known: BTreeSet<&str> = [
        "SCE001",
        "SCE004",
        "SCE006",
        "SCE015",
        "SCE016",
        "SCE017",
        "SCE909",
        "2011",
        "2012",
        "2015",
        "2017",
        "2018",
        "2019",
        "2020",
        "3000",
        "SE_PROCESSOR",
        "SVC_ERRPROCESS",
    ]
    .into_iter()
    .collect();
    for entry in catalogue() {
        if entry.name() == INJECTED_FAULT {
            continue;
        }
        let code = entry
            .shep_code
            .unwrap_or_else(|| panic!("`{}` has no ШЭП code", entry.name()));
        assert!(
            known.contains(code),
            "`{}`: unknown code {code}",
            entry.name()
        );
    }
    // A valid signature by the wrong person is not an invalid signature.
    assert_ne!(entry(Reason::IdentityMismatch).shep_code, Some("SCE016"));
    assert_eq!(entry(Reason::SignatureInvalid).shep_code, Some("SCE016"));
}
