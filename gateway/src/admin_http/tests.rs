use axum::http::HeaderMap;
use tonic::Code;

use super::*;
use crate::error::{GatewayError, GrpcCode, into_status};
use error::{code_name, http_status};

#[test]
fn maps_grpc_codes_to_the_standard_http_statuses() {
    let expected = [
        (Code::Ok, 200),
        (Code::Cancelled, 499),
        (Code::Unknown, 500),
        (Code::InvalidArgument, 400),
        (Code::DeadlineExceeded, 504),
        (Code::NotFound, 404),
        (Code::AlreadyExists, 409),
        (Code::PermissionDenied, 403),
        (Code::ResourceExhausted, 429),
        (Code::FailedPrecondition, 400),
        (Code::Aborted, 409),
        (Code::OutOfRange, 400),
        (Code::Unimplemented, 501),
        (Code::Internal, 500),
        (Code::Unavailable, 503),
        (Code::DataLoss, 500),
        (Code::Unauthenticated, 401),
    ];
    for (code, status) in expected {
        assert_eq!(http_status(code), status, "{code:?}");
    }
}

#[test]
fn names_every_code_as_google_rpc_does_in_number_order() {
    for (number, code) in GrpcCode::ALL.iter().enumerate() {
        assert_eq!(Code::from_i32(number as i32), Code::from(*code));
    }
    let names: Vec<&str> = GrpcCode::ALL.iter().map(|code| code_name(*code)).collect();
    assert_eq!(names[3], "INVALID_ARGUMENT");
    assert_eq!(names[16], "UNAUTHENTICATED");
    let mut unique = names.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), GrpcCode::ALL.len());
}

#[test]
fn a_framed_message_unframes_to_its_encoding() {
    let pool = descriptor_pool().unwrap();
    let route = pool.get_message_by_name("shep.admin.v1.Route").unwrap();
    let mut message = DynamicMessage::new(route);
    message.set_field_by_name("service_id", prost_reflect::Value::String("svc".into()));
    let framed = frame(&message);
    assert_eq!(framed[0], 0);
    assert_eq!(
        unframe(&framed).unwrap(),
        message.encode_to_vec().as_slice()
    );
    assert!(unframe(&framed[..framed.len() - 1]).is_err());
    assert!(unframe(&framed[..3]).is_err());
    let mut compressed = framed.to_vec();
    compressed[0] = 1;
    assert!(unframe(&compressed).is_err());
}

#[test]
fn accepts_json_and_curl_defaults_and_refuses_other_media_types() {
    let with = |value: &str| {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, value.parse().unwrap());
        check_content_type(&headers)
    };
    assert!(check_content_type(&HeaderMap::new()).is_ok());
    assert!(with("application/json").is_ok());
    assert!(with("Application/JSON; charset=utf-8").is_ok());
    assert!(with("application/merge-patch+json").is_ok());
    assert!(with("application/x-www-form-urlencoded").is_ok());
    let refused = with("text/xml").unwrap_err();
    assert_eq!(
        (refused.status, refused.reason.as_deref()),
        (415, Some("UNSUPPORTED_MEDIA_TYPE"))
    );
}

#[test]
fn an_empty_body_is_the_empty_message_and_bad_json_names_its_position() {
    let pool = descriptor_pool().unwrap();
    let service = pool.get_service_by_name(ADMIN_SERVICE).unwrap();
    let get_route = service.methods().find(|m| m.name() == "GetRoute").unwrap();
    assert_eq!(
        decode_json(&get_route, b"  \n")
            .unwrap()
            .encode_to_vec()
            .len(),
        0
    );
    let decoded = decode_json(&get_route, br#"{"serviceId": "svc"}"#).unwrap();
    assert_eq!(
        decoded.get_field_by_name("service_id").unwrap().as_str(),
        Some("svc")
    );

    let refused = decode_json(&get_route, b"{\"serviceId\": ").unwrap_err();
    assert_eq!(
        (refused.status, refused.reason.as_deref()),
        (400, Some("MALFORMED_BODY"))
    );
    assert_eq!(refused.metadata.get("line").map(String::as_str), Some("1"));
    for bad in [
        &br#"{"nope": 1}"#[..],
        br#"{"serviceId": 5}"#,
        b"{} {}",
        b"[]",
    ] {
        let refused = decode_json(&get_route, bad).unwrap_err();
        assert_eq!(refused.reason.as_deref(), Some("MALFORMED_BODY"), "{bad:?}");
    }
}

#[test]
fn a_gateway_refusal_keeps_its_reason_metadata_and_details() {
    let pool = descriptor_pool().unwrap();
    let status = into_status(GatewayError::UnknownService("svc".to_owned()));
    let body = ErrorBody::from_status(&status, &pool);
    assert_eq!((body.code, body.status), ("NOT_FOUND", 404));
    assert_eq!(body.reason.as_deref(), Some("UNKNOWN_SERVICE"));
    assert_eq!(
        body.metadata.get("shep_code").map(String::as_str),
        Some("SCE004")
    );
    assert_eq!(body.details.len(), 1);
    assert_eq!(
        body.details[0]["@type"],
        "type.googleapis.com/google.rpc.ErrorInfo"
    );
    assert_eq!(body.details[0]["reason"], "UNKNOWN_SERVICE");
    assert_eq!(body.details[0]["domain"], crate::error::ERROR_DOMAIN);

    // A status without details (tonic's own) has no reason.
    let bare = ErrorBody::from_status(&tonic::Status::unavailable("down"), &pool);
    assert_eq!(
        (bare.code, bare.status, bare.reason),
        ("UNAVAILABLE", 503, None)
    );
    assert!(bare.details.is_empty());
}
