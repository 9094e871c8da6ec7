//! The НУЦ mock's faces: the `shep.nuc.v1.Nuc` gRPC service and the HTTP
//! endpoints its certificates point at (CRL distribution point, issuer
//! certificate, status), served on the gateway's port.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use shep_proto::nuc::v1::nuc_server::Nuc;
use shep_proto::nuc::v1::{
    self as pb, Crl, GetCrlRequest, IssueRequest, IssueResponse, RevokeRequest, StatusRequest,
    StatusResponse, revoke_request, status_request,
};
use shep_registries::nuc::{
    CA_ISSUERS_PATH, CRL_PATH, CertificateAuthority, CertificateStatus, IdentitySpec, KeyAlgorithm,
    NucError, Purpose, RevocationReason, STATUS_PATH, format_serial, parse_serial, serial_of,
};
use time::{Duration, OffsetDateTime};
use tonic::{Request, Response, Status};

use crate::admin_auth::check_bearer;
use crate::error::{GatewayError, into_status};
use crate::storage::timestamp;

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

fn invalid(field: &'static str, problem: impl Into<String>) -> Status {
    into_status(GatewayError::InvalidField {
        field,
        problem: problem.into(),
    })
}

fn nuc_error(error: NucError) -> Status {
    match error {
        NucError::UnknownSerial(_) => into_status(GatewayError::MessageNotFound(error.to_string())),
        NucError::BadCertificate(_) => invalid("certificate_der", error.to_string()),
        other => into_status(GatewayError::Internal(other.to_string())),
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
        let serial = match &request.get_ref().id {
            Some(status_request::Id::CertificateDer(der)) => serial_from(Some(der), None)?,
            Some(status_request::Id::Serial(text)) => serial_from(None, Some(text))?,
            None => serial_from(None, None)?,
        };
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
            .map_err(|error| into_status(GatewayError::Internal(error.to_string())))?
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
    use shep_registries::ident::{Strictness, parse_bin, parse_iin};
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
        .route(STATUS_PATH, get(status))
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
