//! One unary gRPC call on an `h2` connection: a pre-encoded frame out, the
//! answer's `grpc-status` back, with its message and body when asked for.
//! The remote registry adapter and the bench's lean client both call this
//! way, without tonic's `Channel` between them and the socket.

use std::future::poll_fn;

use bytes::{Bytes, BytesMut};
use h2::client::SendRequest;
use http::{HeaderMap, HeaderValue, Method, Request, StatusCode, Uri, header};

/// What came back from a call that completed at the HTTP/2 level.
#[derive(Debug)]
pub struct Reply {
    /// The `grpc-status` code (0 is OK).
    pub code: i32,
    /// `grpc-message`, percent-decoded; read only for a code other than 0.
    pub message: String,
    /// The response body (gRPC frames), kept only when asked for.
    pub body: BytesMut,
}

/// Why a call got no `grpc-status`.
#[derive(Debug)]
pub enum CallError {
    /// An HTTP status other than 200.
    Http(StatusCode),
    /// The stream or the connection failed.
    Transport(h2::Error),
    /// The answer ended without a `grpc-status`.
    NoStatus,
}

/// Sends `frame` as the request body of a POST to `uri` on `sender` and
/// reads the answer; the body is kept when `keep_body`, else only read for
/// flow control.
pub async fn call(
    sender: &mut SendRequest<Bytes>,
    uri: &Uri,
    frame: Bytes,
    keep_body: bool,
) -> Result<Reply, CallError> {
    poll_fn(|cx| sender.poll_ready(cx))
        .await
        .map_err(CallError::Transport)?;
    let mut request = Request::new(());
    *request.method_mut() = Method::POST;
    *request.uri_mut() = uri.clone();
    let headers = request.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    headers.insert(header::TE, HeaderValue::from_static("trailers"));
    let (response, mut stream) = sender
        .send_request(request, false)
        .map_err(CallError::Transport)?;
    stream
        .send_data(frame, true)
        .map_err(CallError::Transport)?;
    let response = response.await.map_err(CallError::Transport)?;
    if response.status() != StatusCode::OK {
        return Err(CallError::Http(response.status()));
    }
    // A refusal usually comes as headers alone (a trailers-only answer).
    if let Some(reply) = reply(response.headers(), BytesMut::new()) {
        return Ok(reply);
    }
    let mut body = response.into_body();
    let mut kept = BytesMut::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk.map_err(CallError::Transport)?;
        // Lets the server send more; failure means the stream is gone anyway.
        let _ = body.flow_control().release_capacity(chunk.len());
        if keep_body {
            kept.extend_from_slice(&chunk);
        }
    }
    let trailers = body.trailers().await.map_err(CallError::Transport)?;
    trailers
        .and_then(|trailers| reply(&trailers, kept))
        .ok_or(CallError::NoStatus)
}

/// The reply `headers` carry, when they hold a `grpc-status`. Read by hand
/// rather than with `tonic::Status::from_header_map`, which copies the
/// whole header map and panics on a malformed `grpc-status-details-bin`.
fn reply(headers: &HeaderMap, body: BytesMut) -> Option<Reply> {
    let code = headers.get("grpc-status")?.to_str().ok()?.parse().ok()?;
    let message = match headers.get("grpc-message") {
        Some(message) if code != 0 => percent_encoding::percent_decode(message.as_bytes())
            .decode_utf8_lossy()
            .into_owned(),
        _ => String::new(),
    };
    Some(Reply {
        code,
        message,
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(name, value)| (*name, HeaderValue::from_static(value)))
            .map(|(name, value)| (http::HeaderName::from_static(name), value))
            .collect()
    }

    #[test]
    fn a_refusal_reads_its_code_and_decoded_message_whatever_its_details() {
        // Details that are not base64: tonic's reader would panic on them.
        let refused = reply(
            &headers(&[
                ("grpc-status", "5"),
                ("grpc-message", "no%20data%20for%20%60850315301235%60"),
                ("grpc-status-details-bin", "!!! not base64 !!!"),
            ]),
            BytesMut::new(),
        )
        .expect("a status");
        assert_eq!(refused.code, 5);
        assert_eq!(refused.message, "no data for `850315301235`");
    }

    #[test]
    fn an_ok_keeps_its_body_and_headers_without_a_status_are_no_reply() {
        let ok = reply(
            &headers(&[("grpc-status", "0"), ("grpc-message", "ignored")]),
            BytesMut::from(&b"frame"[..]),
        )
        .expect("a status");
        assert_eq!(
            (ok.code, ok.message.as_str(), &ok.body[..]),
            (0, "", &b"frame"[..])
        );
        assert!(
            reply(
                &headers(&[("content-type", "application/grpc")]),
                BytesMut::new()
            )
            .is_none()
        );
        assert!(reply(&headers(&[("grpc-status", "five")]), BytesMut::new()).is_none());
    }
}
