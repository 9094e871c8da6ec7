//! What tonic refuses before a service sees the request, said in the
//! catalogue's terms: bytes that are not the RPC's protobuf message answer
//! INVALID_ARGUMENT with `MALFORMED_BODY`, and a message over
//! `limits.max_message_bytes` answers RESOURCE_EXHAUSTED with `TOO_LARGE`
//! and the limit in the metadata, both with an `ErrorInfo`, instead of
//! tonic's bare INTERNAL and OUT_OF_RANGE. The status travels in the
//! headers (a refusal before any answer) or in the trailers (a stream that
//! fails later); both are rewritten.

use std::collections::HashMap;

use axum::body::Body;
use axum::response::Response;
use http::HeaderMap;
use http_body_util::BodyExt as _;
use shep_proto::catalogue;
use shep_proto::envelope::v1::Reason;
use tonic::{Code, Status};

/// tonic's words for a request that does not decode.
const UNDECODABLE: &str = "failed to decode Protobuf message";
/// tonic's words for a message over the decoding or encoding limit.
const TOO_LARGE_DECODED: &str = "decoded message length too large";
const TOO_LARGE_ENCODED: &str = "encoded message length too large";

/// Rewrites tonic's own refusals in a gRPC response (see the module).
pub(crate) async fn refine(response: Response) -> Response {
    let (mut parts, body) = response.into_parts();
    rewrite(&mut parts.headers);
    let body = body.map_frame(|frame| match frame.into_trailers() {
        Ok(mut trailers) => {
            rewrite(&mut trailers);
            http_body::Frame::trailers(trailers)
        }
        Err(frame) => frame,
    });
    Response::from_parts(parts, Body::new(body))
}

/// Replaces the status in `headers`, if it is one of tonic's refusals.
fn rewrite(headers: &mut HeaderMap) {
    let Some(status) = Status::from_header_map(headers) else {
        return;
    };
    let Some(refined) = refined(&status) else {
        return;
    };
    for name in ["grpc-status", "grpc-message", "grpc-status-details-bin"] {
        headers.remove(name);
    }
    if let Err(error) = refined.add_header(headers) {
        tracing::warn!(%error, "writing a refined gRPC status");
    }
}

/// The catalogue's refusal for one of tonic's, if it is one.
fn refined(status: &Status) -> Option<Status> {
    let message = status.message();
    match status.code() {
        Code::Internal if message.starts_with(UNDECODABLE) => Some(catalogue::refusal(
            Reason::MalformedBody,
            format!("the request is not the RPC's protobuf message: {message}"),
            HashMap::new(),
        )),
        Code::OutOfRange
            if message.contains(TOO_LARGE_DECODED) || message.contains(TOO_LARGE_ENCODED) =>
        {
            // "... found 6291500 bytes, the limit is: 4194304 bytes"
            let numbers: Vec<&str> = message
                .split(|ch: char| !ch.is_ascii_digit())
                .filter(|part| !part.is_empty())
                .collect();
            let mut metadata = HashMap::new();
            if let [size, limit] = numbers.as_slice() {
                metadata.insert("size".to_owned(), (*size).to_owned());
                metadata.insert("limit".to_owned(), (*limit).to_owned());
            }
            let what = if message.contains(TOO_LARGE_DECODED) {
                "the request"
            } else {
                "the answer"
            };
            let limit = metadata.get("limit").cloned().unwrap_or_default();
            Some(catalogue::refusal(
                Reason::TooLarge,
                format!(
                    "{what} is larger than the {limit}-byte limit (`limits.max_message_bytes`)"
                ),
                metadata,
            ))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(status: &Status) -> String {
        use tonic_types::StatusExt as _;
        status
            .get_details_error_info()
            .map(|info| info.reason)
            .unwrap_or_default()
    }

    #[test]
    fn an_undecodable_request_is_malformed_body() {
        let tonic = Status::internal("failed to decode Protobuf message: invalid wire type");
        let refined = refined(&tonic).expect("refined");
        assert_eq!(refined.code(), Code::InvalidArgument);
        assert_eq!(reason(&refined), "MALFORMED_BODY");
    }

    #[test]
    fn a_message_over_the_limit_is_too_large_with_the_limit() {
        let tonic = Status::out_of_range(
            "Error, decoded message length too large: found 6291500 bytes, the limit is: 4194304 bytes",
        );
        let refined = refined(&tonic).expect("refined");
        assert_eq!(refined.code(), Code::ResourceExhausted);
        assert_eq!(reason(&refined), "TOO_LARGE");
        use tonic_types::StatusExt as _;
        let info = refined.get_details_error_info().expect("ErrorInfo");
        assert_eq!(
            info.metadata.get("limit").map(String::as_str),
            Some("4194304")
        );
        assert_eq!(
            info.metadata.get("size").map(String::as_str),
            Some("6291500")
        );
    }

    #[test]
    fn other_statuses_stay_as_they_are() {
        assert!(refined(&Status::internal("something else")).is_none());
        assert!(refined(&Status::not_found("failed to decode Protobuf message")).is_none());
    }

    #[test]
    fn headers_and_trailers_are_rewritten() {
        let mut headers = HeaderMap::new();
        Status::internal("failed to decode Protobuf message: x")
            .add_header(&mut headers)
            .expect("a header");
        rewrite(&mut headers);
        let status = Status::from_header_map(&headers).expect("a status");
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(reason(&status), "MALFORMED_BODY");
    }
}
