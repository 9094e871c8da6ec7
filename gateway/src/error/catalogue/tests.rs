use std::collections::BTreeSet;
use std::sync::Arc;

use shep_proto::envelope::v1::Reason;
use shep_proto::registry::v1::AccessLogRequest;
use shep_proto::registry::v1::registry_admin_server::RegistryAdmin;
use shep_registries::fixtures::FixtureError;
use shep_registries::grpc::{RegistryAdminGrpcAdapter, fixture_status, status_of};
use shep_registries::{PopulationConfig, RegistryData, RegistryError};
use tonic::Status;
use tonic_types::StatusExt;

use super::*;
use crate::error::{AttorneyProblem, ERROR_DOMAIN, GatewayError, into_status};

/// One value of every `GatewayError` variant.
fn every_gateway_error() -> Vec<GatewayError> {
    let text = || "x".to_owned();
    vec![
        GatewayError::MalformedBody(text()),
        GatewayError::InvalidField {
            field: "route_id",
            problem: text(),
        },
        GatewayError::InvalidMessageId {
            field: "message_id",
            value: text(),
        },
        GatewayError::InvalidSubject {
            kind: "IIN",
            value: text(),
            problem: text(),
        },
        GatewayError::NotSigned,
        GatewayError::Overloaded,
        GatewayError::MalformedSignature(text()),
        GatewayError::UnknownIssuer,
        GatewayError::CertificateNotYetValid,
        GatewayError::CertificateExpired,
        GatewayError::CertificateRevoked {
            at: text(),
            reason: "keyCompromise",
        },
        GatewayError::WrongKeyUsage(text()),
        GatewayError::SignatureInvalid,
        GatewayError::IdentityMismatch {
            kind: "IIN",
            expected: text(),
            found: text(),
        },
        GatewayError::MessageDateSkew {
            skew_secs: 600,
            allowed_secs: 300,
        },
        GatewayError::UnknownService(text()),
        GatewayError::SenderNotAllowed {
            sender: text(),
            service: text(),
        },
        GatewayError::ChannelNotAllowed {
            channel: text(),
            service: text(),
        },
        GatewayError::WrongServiceKind {
            service: text(),
            kind: "lookup",
            rpc: "Call",
        },
        GatewayError::NoProviderForRegion {
            service: text(),
            region: text(),
        },
        GatewayError::NoData(text()),
        GatewayError::RegistryUnavailable {
            registry: text(),
            message: text(),
        },
        GatewayError::PowerOfAttorneyInvalid {
            number: text(),
            problem: AttorneyProblem::Expired,
            detail: text(),
        },
        GatewayError::DuplicateMessage {
            message_id: text(),
            sender: text(),
        },
        GatewayError::MessageNotFound(text()),
        GatewayError::InvalidStatusTransition {
            from: text(),
            to: text(),
        },
        GatewayError::ProviderNotAllowed {
            provider: text(),
            message_id: text(),
        },
        GatewayError::ProtocolViolation(text()),
        GatewayError::Unauthenticated,
        GatewayError::TooLarge {
            what: "body",
            size: 2,
            limit: 1,
        },
        GatewayError::Internal(text()),
        GatewayError::Injected(crate::toolkit::faults::InjectedError {
            code: Code::ResourceExhausted,
            message: text(),
            reason: INJECTED_FAULT.to_owned(),
            metadata: vec![("fault_id".to_owned(), "f1".to_owned())],
        }),
        GatewayError::DeadlineExceeded(text()),
        GatewayError::ToolkitNotFound(text()),
    ]
}

/// Every `Reason` of the contract but the proto3 zero value, which is never sent.
fn proto_reasons() -> Vec<Reason> {
    (1..256)
        .filter_map(|number| Reason::try_from(number).ok())
        .collect()
}

/// Asserts that `status` carries a catalogued reason with the catalogue's
/// code and ШЭП code, and returns the reason.
fn check_against_catalogue(status: &Status) -> String {
    let info = status
        .get_details_error_info()
        .unwrap_or_else(|| panic!("no ErrorInfo in {status:?}"));
    assert_eq!(info.domain, ERROR_DOMAIN);
    let entry =
        lookup(&info.reason).unwrap_or_else(|| panic!("`{}` is not catalogued", info.reason));
    // An injected fault's code is the fault's own.
    assert_eq!(
        entry.code.unwrap_or(status.code()),
        status.code(),
        "`{}`: the catalogue's code differs from the status's",
        info.reason
    );
    assert_eq!(
        entry.shep_code,
        info.metadata.get("shep_code").map(String::as_str),
        "`{}`: the catalogue's ШЭП code differs from the status's",
        info.reason
    );
    info.reason
}

#[test]
fn every_gateway_refusal_is_catalogued_with_the_code_into_status_gives() {
    let produced: BTreeSet<String> = every_gateway_error()
        .into_iter()
        .map(|error| check_against_catalogue(&into_status(error)))
        .collect();
    // Each reason of the contract is produced by some variant, so each code in
    // the catalogue was compared with what a handler really returns.
    for reason in proto_reasons() {
        assert!(
            produced.contains(reason.as_str_name()),
            "no GatewayError produces `{}`",
            reason.as_str_name()
        );
    }
}

#[test]
fn every_reason_of_the_contract_is_catalogued_and_nothing_else_but_the_reserved_one() {
    let contract: BTreeSet<&str> = proto_reasons()
        .into_iter()
        .map(|reason| reason.as_str_name())
        .collect();
    for name in &contract {
        let entry = lookup(name).unwrap_or_else(|| panic!("`{name}` is not catalogued"));
        if *name == INJECTED_FAULT {
            continue;
        }
        assert!(entry.code.is_some(), "`{name}` has a fixed code");
        assert_ne!(entry.retry, Retry::AsCodeImplies, "`{name}`");
    }
    for entry in catalogue() {
        assert!(
            contract.contains(entry.reason) || entry.reason == INJECTED_FAULT,
            "`{}` is catalogued but not in `shep.envelope.v1.Reason`",
            entry.reason
        );
    }
    let reasons: BTreeSet<&str> = catalogue().iter().map(|entry| entry.reason).collect();
    assert_eq!(reasons.len(), catalogue().len(), "a reason is listed twice");
}

#[tokio::test]
async fn the_registries_and_the_admin_token_check_return_catalogued_reasons() {
    let source = || shep_registries::ident::parse_iin("1", Default::default()).unwrap_err();
    let registry_errors = [
        RegistryError::NoData { key: "k".into() },
        RegistryError::InvalidKey {
            key: "k".into(),
            source: source(),
        },
        RegistryError::InvalidNumber { number: "n".into() },
        RegistryError::UnsupportedKey { registry: "gbdfl" },
    ];
    let mut reasons: Vec<String> = registry_errors
        .iter()
        .map(|error| check_against_catalogue(&status_of(error)))
        .collect();
    reasons.push(check_against_catalogue(&fixture_status(
        &FixtureError::Read {
            file: "f.json".into(),
            message: "gone".into(),
        },
    )));

    let data = Arc::new(RegistryData::new(&PopulationConfig::default(), 10).unwrap());
    let admin = RegistryAdminGrpcAdapter::new(data, "token");
    let refused = admin
        .access_log(tonic::Request::new(AccessLogRequest::default()))
        .await
        .expect_err("no token");
    reasons.push(check_against_catalogue(&refused));

    let refused =
        crate::admin_auth::check_bearer(&tonic::Request::new(()), "token").expect_err("no token");
    reasons.push(check_against_catalogue(&refused));
    assert_eq!(
        reasons,
        [
            "NO_DATA",
            "INVALID_SUBJECT",
            "INVALID_SUBJECT",
            "INVALID_SUBJECT",
            "INVALID_FIELD",
            "UNAUTHENTICATED",
            "UNAUTHENTICATED"
        ]
    );
}

#[test]
fn retry_advice_follows_the_code() {
    for entry in catalogue() {
        let Some(code) = entry.code else {
            assert_eq!(entry.retry, Retry::AsCodeImplies, "`{}`", entry.reason);
            continue;
        };
        // Transient codes invite a retry; the rest never the same request.
        let transient = matches!(
            code,
            Code::Unavailable | Code::Internal | Code::Aborted | Code::DeadlineExceeded
        );
        let retries = matches!(entry.retry, Retry::Retry | Retry::RetryAfterBackoff);
        assert_eq!(transient, retries, "`{}`", entry.reason);
    }
    assert_eq!(Retry::for_code(Code::Unavailable), Retry::RetryAfterBackoff);
    assert_eq!(Retry::for_code(Code::Aborted), Retry::Retry);
    assert_eq!(Retry::for_code(Code::NotFound), Retry::DoNotRetry);
    assert_eq!(Retry::for_code(Code::InvalidArgument), Retry::FixAndResend);
}

/// The table between the markers of docs/ERRORS.md.
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
