//! An OCSP responder (RFC 6960) over the НУЦ's register, at the URL its
//! certificates carry (`/nuc/status`): `openssl ocsp`, Java's PKIX revocation
//! checker or any RFC 6960 client asks it as it would ask the real НУЦ.
//!
//! The issuing CA signs the answers itself (RFC 6960 §2.2: the CA that
//! issued the certificate in question), with its own certificate included.
//! A CertID is answered only when its issuer name and key hashes are the
//! issuing CA's (SHA-1 or SHA-256); any other is `unknown`, as is a serial
//! this НУЦ never issued.

use std::time::{Duration, SystemTime};

use der::asn1::{BitString, ObjectIdentifier};
use der::{Decode as _, Encode as _};
use rcgen::SigningKey as _;
use x509_cert::Certificate;
use x509_cert::ext::Extensions;
use x509_cert::ext::pkix::CrlReason;
use x509_cert::spki::AlgorithmIdentifierOwned;
use x509_ocsp::{
    BasicOcspResponse, CertId, CertStatus, OcspGeneralizedTime, OcspRequest, OcspResponse,
    ResponderId, ResponseData, RevokedInfo, SingleResponse, Version,
};

use crate::ca::{CertificateAuthority, CertificateStatus, RevocationReason};

const SHA1: &str = "1.3.14.3.2.26";
const SHA256: &str = "2.16.840.1.101.3.4.2.1";
const NONCE: &str = "1.3.6.1.5.5.7.48.1.2";
/// How long an answer may be cached: the register changes at once, but a
/// client wants a `nextUpdate`.
const VALIDITY: Duration = Duration::from_secs(3600);

/// The DER `OCSPResponse` to the DER `OCSPRequest` in `request`: `successful`
/// with a signed basic response, `malformedRequest` for bytes that are not a
/// request, `internalError` if signing fails.
pub fn respond(ca: &CertificateAuthority, request: &[u8]) -> Vec<u8> {
    let response = match OcspRequest::from_der(request) {
        Err(_) => OcspResponse::malformed_request(),
        Ok(request) => basic(ca, &request)
            .and_then(OcspResponse::successful)
            .unwrap_or_else(|error| {
                tracing::error!(%error, "signing an OCSP response");
                OcspResponse::internal_error()
            }),
    };
    // Encoding a structure built here cannot fail.
    response.to_der().unwrap_or_default()
}

fn basic(
    ca: &CertificateAuthority,
    request: &OcspRequest,
) -> Result<BasicOcspResponse, der::Error> {
    let issuing = Certificate::from_der(ca.issuing_der())?;
    let subject = issuing.tbs_certificate.subject.to_der()?;
    let key = issuing
        .tbs_certificate
        .subject_public_key_info
        .subject_public_key
        .raw_bytes()
        .to_vec();
    let now = SystemTime::now();
    let responses = request
        .tbs_request
        .request_list
        .iter()
        .map(|single| {
            let id = &single.req_cert;
            let status = if issued_here(id, &subject, &key) {
                status(ca.status(id.serial_number.as_bytes()))?
            } else {
                CertStatus::unknown()
            };
            Ok(SingleResponse {
                cert_id: id.clone(),
                cert_status: status,
                this_update: OcspGeneralizedTime::try_from(now)?,
                next_update: Some(OcspGeneralizedTime::try_from(now + VALIDITY)?),
                single_extensions: None,
            })
        })
        .collect::<Result<Vec<_>, der::Error>>()?;
    // A nonce asked for is echoed, so the client knows the answer is fresh.
    let nonce = ObjectIdentifier::new_unwrap(NONCE);
    let echoed: Extensions = request
        .tbs_request
        .request_extensions
        .iter()
        .flatten()
        .filter(|extension| extension.extn_id == nonce)
        .cloned()
        .collect();
    let data = ResponseData {
        version: Version::V1,
        responder_id: ResponderId::ByName(issuing.tbs_certificate.subject.clone()),
        produced_at: OcspGeneralizedTime::try_from(now)?,
        responses,
        response_extensions: (!echoed.is_empty()).then_some(echoed),
    };
    let signed = ca
        .issuing_key()
        .sign(&data.to_der()?)
        .map_err(|_| der::Error::from(der::ErrorKind::Failed))?;
    Ok(BasicOcspResponse {
        tbs_response_data: data,
        signature_algorithm: signature_algorithm(&issuing)?,
        signature: BitString::from_bytes(&signed)?,
        certs: Some(vec![issuing]),
    })
}

/// Whether `id` names this НУЦ's issuing CA by its name and key hashes.
fn issued_here(id: &CertId, subject: &[u8], key: &[u8]) -> bool {
    let algorithm = match id.hash_algorithm.oid.to_string().as_str() {
        SHA1 => &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
        SHA256 => &ring::digest::SHA256,
        _ => return false,
    };
    let hash = |bytes: &[u8]| ring::digest::digest(algorithm, bytes);
    id.issuer_name_hash.as_bytes() == hash(subject).as_ref()
        && id.issuer_key_hash.as_bytes() == hash(key).as_ref()
}

fn status(status: CertificateStatus) -> Result<CertStatus, der::Error> {
    Ok(match status {
        CertificateStatus::Good => CertStatus::good(),
        CertificateStatus::Unknown => CertStatus::unknown(),
        CertificateStatus::Revoked { at, reason } => CertStatus::revoked(RevokedInfo {
            revocation_time: OcspGeneralizedTime::try_from(SystemTime::from(at))?,
            revocation_reason: Some(match reason {
                RevocationReason::Unspecified => CrlReason::Unspecified,
                RevocationReason::KeyCompromise => CrlReason::KeyCompromise,
                RevocationReason::AffiliationChanged => CrlReason::AffiliationChanged,
                RevocationReason::Superseded => CrlReason::Superseded,
                RevocationReason::CessationOfOperation => CrlReason::CessationOfOperation,
            }),
        }),
    })
}

/// The signature algorithm the issuing CA's key makes.
fn signature_algorithm(issuing: &Certificate) -> Result<AlgorithmIdentifierOwned, der::Error> {
    const ED25519: &str = "1.3.101.112";
    const EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
    const ECDSA_SHA256: &str = "1.2.840.10045.4.3.2";
    const SHA256_RSA: &str = "1.2.840.113549.1.1.11";
    let key = issuing
        .tbs_certificate
        .subject_public_key_info
        .algorithm
        .oid
        .to_string();
    Ok(match key.as_str() {
        ED25519 => AlgorithmIdentifierOwned {
            oid: ObjectIdentifier::new_unwrap(ED25519),
            parameters: None,
        },
        EC_PUBLIC_KEY => AlgorithmIdentifierOwned {
            oid: ObjectIdentifier::new_unwrap(ECDSA_SHA256),
            parameters: None,
        },
        _ => AlgorithmIdentifierOwned {
            oid: ObjectIdentifier::new_unwrap(SHA256_RSA),
            parameters: Some(der::asn1::Null.into()),
        },
    })
}
