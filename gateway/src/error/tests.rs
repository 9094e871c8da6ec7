use std::collections::BTreeSet;
use std::sync::Arc;

use shep_proto::envelope::v1::Reason;
use shep_proto::registry::v1::AccessLogRequest;
use shep_proto::registry::v1::registry_admin_server::RegistryAdmin;
use shep_registries::fixtures::FixtureError;
use shep_registries::grpc::{RegistryAdminGrpcAdapter, fixture_status, status_of};
use shep_registries::{PopulationConfig, RegistryData, RegistryError};
use tonic::{Code, Status};
use tonic_types::StatusExt;

use super::*;
use crate::error::InjectedError;

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
        GatewayError::QueueFull {
            provider: text(),
            limit: 10,
            retry_after: std::time::Duration::from_secs(1),
        },
        GatewayError::Storage(crate::storage::StorageError::unavailable(
            "reach NATS",
            "the connection to NATS is down",
        )),
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
            rule: text(),
        },
        GatewayError::ProviderNotAllowed {
            provider: text(),
            message_id: text(),
        },
        GatewayError::ProtocolViolation(text()),
        GatewayError::Unauthenticated,
        GatewayError::NotAuthenticated(text()),
        GatewayError::AccessDenied {
            authenticated: text(),
            acting_as: text(),
            what: "send",
        },
        GatewayError::TooLarge {
            what: "body",
            size: 2,
            limit: 1,
        },
        GatewayError::Internal(text()),
        GatewayError::Storage(StorageError::Stopped),
        GatewayError::Injected(InjectedError {
            code: GrpcCode::ResourceExhausted,
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
        entry.code.map_or(status.code(), tonic::Code::from),
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
        .map(|error| {
            let code = error.code();
            let status = into_status(error);
            assert_eq!(tonic::Code::from(code), status.code(), "{status:?}");
            check_against_catalogue(&status)
        })
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

    let refused = crate::admin_auth::AdminAuth::new("token", Vec::new())
        .check(&tonic::Request::new(()))
        .expect_err("no token");
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
fn status_carries_the_reason_and_shep_code() {
    let status = into_status(GatewayError::SignatureInvalid);
    assert_eq!(status.code(), Code::Unauthenticated);
    let info = status.get_details_error_info().unwrap();
    assert_eq!(info.reason, "SIGNATURE_INVALID");
    assert_eq!(info.domain, ERROR_DOMAIN);
    assert_eq!(info.metadata.get("shep_code").unwrap(), "SCE016");
}

#[test]
fn a_full_queue_says_which_provider_and_when_to_send_again() {
    let status = into_status(GatewayError::QueueFull {
        provider: "arm-rshep-sko-esil-edu".into(),
        limit: 10_000,
        retry_after: std::time::Duration::from_millis(1500),
    });
    assert_eq!(status.code(), Code::ResourceExhausted);
    let info = status.get_details_error_info().unwrap();
    assert_eq!(info.reason, "QUEUE_FULL");
    assert_eq!(
        info.metadata.get("provider").unwrap(),
        "arm-rshep-sko-esil-edu"
    );
    assert_eq!(info.metadata.get("limit").unwrap(), "10000");
    assert_eq!(info.metadata.get("retry_after_ms").unwrap(), "1500");
    let retry = status.get_details_retry_info().unwrap();
    assert_eq!(
        retry.retry_delay,
        Some(std::time::Duration::from_millis(1500))
    );
}

#[test]
fn an_overloaded_gateway_says_when_to_send_again() {
    let status = into_status(GatewayError::Overloaded);
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert_eq!(
        status.get_details_error_info().unwrap().reason,
        "OVERLOADED"
    );
    let retry = status.get_details_retry_info().unwrap();
    assert_eq!(
        retry.retry_delay,
        Some(std::time::Duration::from_millis(200))
    );
}

#[test]
fn a_power_of_attorney_refusal_says_what_is_wrong() {
    let status = into_status(GatewayError::PowerOfAttorneyInvalid {
        number: "850315301235-02".into(),
        problem: AttorneyProblem::Revoked,
        detail: "revoked on 2025-10-01".into(),
    });
    assert_eq!(status.code(), Code::PermissionDenied);
    let info = status.get_details_error_info().unwrap();
    assert_eq!(info.reason, "POWER_OF_ATTORNEY_INVALID");
    assert_eq!(info.metadata.get("problem").unwrap(), "REVOKED");
    assert_eq!(info.metadata.get("field").unwrap(), "power_of_attorney");
}

#[test]
fn internal_details_do_not_leak() {
    let status = into_status(GatewayError::Internal("disk on fire at /secret".into()));
    assert!(!status.message().contains("/secret"));
    assert_eq!(status.get_details_error_info().unwrap().reason, "INTERNAL");
}

#[test]
fn a_storage_failure_is_internal_keeps_its_cause_and_does_not_leak() {
    let cause = std::io::Error::other("disk on fire at /secret");
    let error = GatewayError::from(StorageError::backend("append to the journal", cause));
    assert!(matches!(error, GatewayError::Storage(_)));
    assert_eq!(error.reason(), Reason::Internal);
    assert_eq!(
        with_causes(&error),
        "the storage backend failed: storage failed to append to the journal: disk on fire at /secret"
    );
    let status = into_status(error);
    assert_eq!(status.code(), Code::Internal);
    assert!(
        !status.message().contains("/secret"),
        "{}",
        status.message()
    );
    assert_eq!(status.get_details_error_info().unwrap().reason, "INTERNAL");
}

#[test]
fn an_application_storage_does_not_hold_is_not_found() {
    let error = GatewayError::from(StorageError::NotFound {
        message_id: "m-1".into(),
    });
    let status = into_status(error);
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(
        status.get_details_error_info().unwrap().reason,
        "MESSAGE_NOT_FOUND"
    );
}

#[test]
fn an_injected_fault_answers_with_its_own_code_reason_and_metadata() {
    let status = into_status(GatewayError::Injected(InjectedError {
        code: GrpcCode::DataLoss,
        message: "made up".into(),
        reason: "GBDFL_DOWN".into(),
        metadata: vec![("fault_id".into(), "f7".into())],
    }));
    assert_eq!(status.code(), Code::DataLoss);
    assert_eq!(status.message(), "made up");
    let info = status.get_details_error_info().unwrap();
    assert_eq!(info.reason, "GBDFL_DOWN");
    assert_eq!(info.domain, ERROR_DOMAIN);
    assert_eq!(info.metadata.get("fault_id").unwrap(), "f7");
    assert!(!info.metadata.contains_key("shep_code"));
}

#[test]
fn the_nucs_refusals_keep_their_reason_as_gateway_errors() {
    use shep_nuc::ca::RevocationReason;
    use shep_nuc::status::StatusError;
    use shep_nuc::verify::VerifyError;

    let at = time::macros::datetime!(2025-10-01 06:30 UTC);
    let errors = [
        VerifyError::NotSigned,
        VerifyError::UnknownAlgorithm(7),
        VerifyError::EmptySignature,
        VerifyError::AlgorithmMismatch,
        VerifyError::UnknownIssuer,
        VerifyError::NotYetValid,
        VerifyError::Expired,
        VerifyError::WrongKeyUsage("no signing extended key usage"),
        VerifyError::SignatureInvalid,
        VerifyError::Revoked {
            at,
            reason: RevocationReason::KeyCompromise,
        },
        VerifyError::StatusUnavailable(StatusError::Remote(Status::unavailable("refused"))),
    ];
    for error in errors {
        let reason = error.reason();
        let message = error.to_string();
        let gateway = GatewayError::from(error);
        assert_eq!(gateway.reason(), reason, "{gateway}");
        // The НУЦ's wording survives where the variant has room for it.
        if let GatewayError::MalformedSignature(text) | GatewayError::WrongKeyUsage(text) = &gateway
        {
            assert!(message.ends_with(text.as_str()), "{message} / {text}");
        }
    }
    let revoked = GatewayError::from(VerifyError::Revoked {
        at,
        reason: RevocationReason::KeyCompromise,
    });
    assert_eq!(
        revoked.to_string(),
        "the signer certificate was revoked on 01.10.2025 11:30 (key-compromise)"
    );
    let unavailable = GatewayError::from(VerifyError::StatusUnavailable(StatusError::Remote(
        Status::unavailable("refused"),
    )));
    assert!(
        matches!(&unavailable, GatewayError::RegistryUnavailable { registry, message }
            if registry == "nuc" && message.contains("UNAVAILABLE: refused")),
        "{unavailable}"
    );
}
