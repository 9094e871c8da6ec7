//! The НУЦ mock's faces: the `shep.nuc.v1.Nuc` gRPC service and the HTTP
//! endpoints its certificates point at (CRL distribution point, issuer
//! certificate, status), served on the gateway's port. Refusals carry the
//! catalogue's reasons, as the gateway's do.

use std::collections::HashMap;
use std::fmt::Display;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use shep_proto::catalogue::refusal;
use shep_proto::envelope::v1::Reason;
use shep_proto::ident::{Strictness, parse_bin, parse_iin};
use shep_proto::nuc::v1::nuc_server::Nuc;
use shep_proto::nuc::v1::{
    self as pb, Crl, GetCrlRequest, IssueRequest, IssueResponse, RevokeRequest, StatusRequest,
    StatusResponse, revoke_request, status_request,
};
use time::{Duration, OffsetDateTime};
use tonic::{Request, Response, Status};

use crate::ca::{
    CA_ISSUERS_PATH, CRL_PATH, CertificateAuthority, CertificateStatus, IdentitySpec, KeyAlgorithm,
    NucError, Purpose, RevocationReason, STATUS_PATH, format_serial, parse_serial, serial_of,
};

fn timestamp(time: OffsetDateTime) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: time.unix_timestamp(),
        nanos: time.nanosecond() as i32,
    }
}

fn status_response(serial: &[u8], status: &CertificateStatus, subject: String) -> StatusResponse {
    let (code, revoked_at, reason) = match status {
        CertificateStatus::Good => (pb::CertificateStatus::Good, None, String::new()),
        CertificateStatus::Revoked { at, reason } => (
            pb::CertificateStatus::Revoked,
            Some(timestamp(*at)),
            reason.as_str().to_owned(),
        ),
        CertificateStatus::Unknown => (pb::CertificateStatus::Unknown, None, String::new()),
    };
    StatusResponse {
        status: code as i32,
        serial: format_serial(serial),
        revoked_at,
        reason,
        produced_at: Some(timestamp(OffsetDateTime::now_utc())),
        subject,
    }
}

/// `INVALID_FIELD` naming `field`, worded as the gateway words it.
fn invalid(field: &'static str, problem: impl Display) -> Status {
    refusal(
        Reason::InvalidField,
        format!("`{field}` {problem}"),
        HashMap::from([("field".to_owned(), field.to_owned())]),
    )
}

/// `INTERNAL`: logged here, at the edge, once; the caller gets no detail.
fn internal(error: &dyn Display) -> Status {
    tracing::error!(%error, rpc = "nuc", "internal error");
    refusal(
        Reason::Internal,
        "internal error; see the gateway log",
        HashMap::new(),
    )
}

/// The one mapping of the CA's errors to statuses.
fn nuc_error(error: NucError) -> Status {
    match error {
        NucError::UnknownSerial(_) => {
            refusal(Reason::MessageNotFound, error.to_string(), HashMap::new())
        }
        NucError::BadCertificate(_) => invalid("certificate_der", error),
        other => internal(&other),
    }
}

/// Refuses a request without `authorization: Bearer <token>`. Compares
/// digests, so the comparison's timing says nothing about the token.
fn check_bearer<T>(request: &Request<T>, token: &str) -> Result<(), Status> {
    let presented = request
        .metadata()
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    let digest = |bytes: &[u8]| ring::digest::digest(&ring::digest::SHA256, bytes);
    match presented {
        Some(presented)
            if digest(presented.as_bytes()).as_ref() == digest(token.as_bytes()).as_ref() =>
        {
            Ok(())
        }
        _ => Err(refusal(
            Reason::Unauthenticated,
            "missing or wrong admin credential",
            HashMap::new(),
        )),
    }
}

fn serial_from(certificate_der: Option<&[u8]>, serial: Option<&str>) -> Result<Vec<u8>, Status> {
    match (certificate_der, serial) {
        (Some(der), _) => serial_of(der).map_err(nuc_error),
        (None, Some(text)) => parse_serial(text)
            .ok_or_else(|| invalid("serial", format!("`{text}` is not a hex serial number"))),
        (None, None) => Err(invalid("id", "give a certificate or a serial number")),
    }
}

/// `shep.nuc.v1.Nuc`.
#[derive(Debug, Clone)]
pub struct NucGrpcAdapter {
    ca: Arc<CertificateAuthority>,
    token: Arc<str>,
}

impl NucGrpcAdapter {
    pub fn new(ca: Arc<CertificateAuthority>, token: &str) -> Self {
        Self {
            ca,
            token: token.into(),
        }
    }

    fn answer(&self, serial: &[u8]) -> StatusResponse {
        let status = self.ca.status(serial);
        status_response(
            serial,
            &status,
            self.ca.issued_subject(serial).unwrap_or_default(),
        )
    }
}

#[tonic::async_trait]
impl Nuc for NucGrpcAdapter {
    async fn get_status(
        &self,
        request: Request<StatusRequest>,
    ) -> Result<Response<StatusResponse>, Status> {
        let request = request.get_ref();
        let (serial, issuer) = match &request.id {
            Some(status_request::Id::CertificateDer(der)) => (
                serial_from(Some(der), None)?,
                x509_parser::parse_x509_certificate(der)
                    .map(|(_, certificate)| certificate.issuer().as_raw().to_vec())
                    .unwrap_or_default(),
            ),
            Some(status_request::Id::Serial(text)) => {
                (serial_from(None, Some(text))?, request.issuer_der.clone())
            }
            None => (serial_from(None, None)?, Vec::new()),
        };
        // Serials are unique per issuer: another issuer's certificate is not
        // in this register, whatever its serial.
        if !issuer.is_empty() && issuer != self.ca.issuer_name() {
            return Ok(Response::new(status_response(
                &serial,
                &CertificateStatus::Unknown,
                String::new(),
            )));
        }
        Ok(Response::new(self.answer(&serial)))
    }

    async fn get_crl(&self, _request: Request<GetCrlRequest>) -> Result<Response<Crl>, Status> {
        let der = self.ca.crl().map_err(nuc_error)?;
        Ok(Response::new(Crl { der }))
    }

    async fn issue(
        &self,
        request: Request<IssueRequest>,
    ) -> Result<Response<IssueResponse>, Status> {
        check_bearer(&request, &self.token)?;
        let request = request.into_inner();
        let spec = issue_spec(&request)?;
        let ca = self.ca.clone();
        // RSA key generation takes a while: keep it off the async workers.
        let issued = tokio::task::spawn_blocking(move || ca.issue(&spec))
            .await
            .map_err(|error| internal(&error))?
            .map_err(nuc_error)?;
        Ok(Response::new(IssueResponse {
            key_pem: issued.key_pem(),
            certificate_pem: issued.certificate_pem(),
            serial: format_serial(&serial_of(&issued.certificate_der).map_err(nuc_error)?),
        }))
    }

    async fn revoke(
        &self,
        request: Request<RevokeRequest>,
    ) -> Result<Response<StatusResponse>, Status> {
        check_bearer(&request, &self.token)?;
        let request = request.into_inner();
        let serial = match &request.id {
            Some(revoke_request::Id::CertificateDer(der)) => serial_from(Some(der), None)?,
            Some(revoke_request::Id::Serial(text)) => serial_from(None, Some(text))?,
            None => serial_from(None, None)?,
        };
        let reason = if request.reason.is_empty() {
            RevocationReason::Unspecified
        } else {
            request
                .reason
                .parse()
                .map_err(|problem: String| invalid("reason", problem))?
        };
        self.ca.revoke(&serial, reason).map_err(nuc_error)?;
        tracing::info!(serial = %format_serial(&serial), reason = reason.as_str(), "certificate revoked");
        Ok(Response::new(self.answer(&serial)))
    }
}

/// Checks an issuance request and turns it into a spec.
pub fn issue_spec(request: &IssueRequest) -> Result<IdentitySpec, Status> {
    parse_iin(&request.iin, Strictness::Strict)
        .map_err(|error| invalid("iin", format!("`{}`: {error}", request.iin)))?;
    if !request.bin.is_empty() {
        parse_bin(&request.bin, Strictness::Strict)
            .map_err(|error| invalid("bin", format!("`{}`: {error}", request.bin)))?;
    }
    let common_name = if request.common_name.is_empty() {
        request.iin.clone()
    } else {
        request.common_name.clone()
    };
    let mut spec = if request.bin.is_empty() {
        IdentitySpec::individual(&request.iin, &common_name)
    } else {
        IdentitySpec::employee(
            &request.iin,
            &request.bin,
            &common_name,
            &request.organization,
        )
    };
    spec.algorithm = match pb::KeyAlgorithm::try_from(request.algorithm) {
        Ok(pb::KeyAlgorithm::EcdsaP256) => KeyAlgorithm::EcdsaP256,
        Ok(pb::KeyAlgorithm::Rsa2048) => KeyAlgorithm::Rsa2048,
        _ => KeyAlgorithm::Ed25519,
    };
    spec.purpose = match pb::Purpose::try_from(request.purpose) {
        Ok(pb::Purpose::Authentication) => Purpose::Authentication,
        _ => Purpose::Signing,
    };
    let time_of = |value: &Option<prost_types::Timestamp>, field| {
        value
            .as_ref()
            .map(|time| {
                OffsetDateTime::from_unix_timestamp(time.seconds)
                    .map_err(|_| invalid(field, "is not a valid timestamp"))
            })
            .transpose()
    };
    if let Some(not_before) = time_of(&request.not_before, "not_before")? {
        spec.not_before = not_before;
        spec.not_after = not_before + Duration::days(365);
    }
    if let Some(not_after) = time_of(&request.not_after, "not_after")? {
        spec.not_after = not_after;
    }
    if spec.not_after <= spec.not_before {
        return Err(invalid("not_after", "must be after not_before"));
    }
    Ok(spec)
}

/// The HTTP endpoints certificates point at: the CRL (DER,
/// `application/pkix-crl`), the issuing CA certificate (DER), and a plain-text
/// status query `?serial=<hex>` answering `good`, `revoked <time> <reason>` or
/// `unknown`.
pub fn http_routes(ca: Arc<CertificateAuthority>) -> axum::Router {
    axum::Router::new()
        .route(CRL_PATH, get(crl))
        .route(CA_ISSUERS_PATH, get(issuing_certificate))
        // GET `?serial=<hex>`: one line of text, for people; POST an
        // `application/ocsp-request`: RFC 6960, for OCSP clients.
        .route(STATUS_PATH, get(status).post(ocsp))
        .with_state(ca)
}

async fn crl(State(ca): State<Arc<CertificateAuthority>>) -> axum::response::Response {
    match ca.crl() {
        Ok(der) => ([(header::CONTENT_TYPE, "application/pkix-crl")], der).into_response(),
        Err(error) => {
            tracing::error!(%error, "crl");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

async fn issuing_certificate(
    State(ca): State<Arc<CertificateAuthority>>,
) -> axum::response::Response {
    (
        [(header::CONTENT_TYPE, "application/pkix-cert")],
        ca.issuing_der().to_vec(),
    )
        .into_response()
}

async fn status(
    State(ca): State<Arc<CertificateAuthority>>,
    Query(query): Query<HashMap<String, String>>,
) -> axum::response::Response {
    let Some(serial) = query.get("serial").and_then(|text| parse_serial(text)) else {
        return (StatusCode::BAD_REQUEST, "give ?serial=<hex>\n").into_response();
    };
    let text = match ca.status(&serial) {
        CertificateStatus::Good => "good\n".to_owned(),
        CertificateStatus::Revoked { at, reason } => {
            format!("revoked {} {}\n", at.unix_timestamp(), reason.as_str())
        }
        CertificateStatus::Unknown => "unknown\n".to_owned(),
    };
    text.into_response()
}

async fn ocsp(
    State(ca): State<Arc<CertificateAuthority>>,
    request: axum::body::Bytes,
) -> axum::response::Response {
    (
        [(header::CONTENT_TYPE, "application/ocsp-response")],
        crate::ocsp::respond(&ca, &request),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use shep_proto::catalogue::lookup;
    use tonic_types::StatusExt as _;

    use super::*;

    /// Asserts that `status` carries `reason` with the catalogue's code, and
    /// returns its metadata.
    fn refused_with(status: &Status, reason: &str) -> HashMap<String, String> {
        let info = status
            .get_details_error_info()
            .unwrap_or_else(|| panic!("no ErrorInfo in {status:?}"));
        assert_eq!(info.reason, reason, "{status:?}");
        let entry = lookup(reason).unwrap();
        assert_eq!(entry.code.map(tonic::Code::from), Some(status.code()));
        info.metadata
    }

    fn with_token<T>(message: T) -> Request<T> {
        let mut request = Request::new(message);
        request
            .metadata_mut()
            .insert("authorization", "Bearer token".parse().unwrap());
        request
    }

    #[tokio::test]
    async fn refusals_carry_the_catalogued_reasons_and_codes() {
        let ca = Arc::new(CertificateAuthority::generate().unwrap());
        let nuc = NucGrpcAdapter::new(ca, "token");
        let issue = || IssueRequest {
            iin: "850315301235".into(),
            ..IssueRequest::default()
        };

        let refused = nuc.issue(Request::new(issue())).await.unwrap_err();
        refused_with(&refused, "UNAUTHENTICATED");

        let bad_iin = IssueRequest {
            iin: "850315301236".into(),
            ..issue()
        };
        let refused = nuc.issue(with_token(bad_iin)).await.unwrap_err();
        let metadata = refused_with(&refused, "INVALID_FIELD");
        assert_eq!(metadata["field"], "iin");
        assert_eq!(metadata["shep_code"], "SCE001");

        let refused = nuc
            .get_status(Request::new(StatusRequest {
                id: Some(status_request::Id::Serial("not hex".into())),
                ..StatusRequest::default()
            }))
            .await
            .unwrap_err();
        assert_eq!(refused_with(&refused, "INVALID_FIELD")["field"], "serial");

        let refused = nuc
            .revoke(with_token(RevokeRequest {
                id: Some(revoke_request::Id::Serial("0a0b".into())),
                reason: String::new(),
            }))
            .await
            .unwrap_err();
        refused_with(&refused, "MESSAGE_NOT_FOUND");
    }

    #[tokio::test]
    async fn an_issued_certificate_is_good_until_revoked() {
        let ca = Arc::new(CertificateAuthority::generate().unwrap());
        let nuc = NucGrpcAdapter::new(ca, "token");
        let issued = nuc
            .issue(with_token(IssueRequest {
                iin: "850315301235".into(),
                ..IssueRequest::default()
            }))
            .await
            .unwrap()
            .into_inner();
        let status = |serial: String| StatusRequest {
            id: Some(status_request::Id::Serial(serial)),
            ..StatusRequest::default()
        };
        let answer = nuc
            .get_status(Request::new(status(issued.serial.clone())))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(answer.status(), pb::CertificateStatus::Good);
        let revoked = nuc
            .revoke(with_token(RevokeRequest {
                id: Some(revoke_request::Id::Serial(issued.serial.clone())),
                reason: "key-compromise".into(),
            }))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(revoked.status(), pb::CertificateStatus::Revoked);
        assert_eq!(revoked.reason, "key-compromise");

        // Serials are unique per issuer: the same serial of another issuer
        // is not this register's (and not revoked).
        let elsewhere = nuc
            .get_status(Request::new(StatusRequest {
                issuer_der: b"another issuer".to_vec(),
                ..status(issued.serial.clone())
            }))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(elsewhere.status(), pb::CertificateStatus::Unknown);
        let here = nuc
            .get_status(Request::new(StatusRequest {
                issuer_der: nuc.ca.issuer_name(),
                ..status(issued.serial.clone())
            }))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(here.status(), pb::CertificateStatus::Revoked);
    }
}
