//! The signature check («условие 2»): the signer certificate chains to a trusted
//! НУЦ anchor, is valid at signing time, allows signing, and the signature over
//! the exact body bytes verifies.
//!
//! Chain results are cached per certificate (never per envelope): every
//! envelope's signature is verified, but a certificate's path is built once per
//! `chain_ttl`. Revocation ([`crate::revocation`]) sits beside the chain check
//! with its own per-certificate cache.

use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use rustls_pki_types::{CertificateDer, SignatureVerificationAlgorithm, TrustAnchor, UnixTime};
use shep_proto::envelope::v1::{Reason, Signature, SignatureAlgorithm};
use time::OffsetDateTime;
use tokio::time::Instant;
use webpki::{EndEntityCert, KeyUsage};
use x509_parser::error::X509Error;
use x509_parser::oid_registry::{OID_X509_COMMON_NAME, OID_X509_SERIALNUMBER};

use crate::ca::RevocationReason;
use crate::status::StatusError;

/// Why a signature, its certificate or the certificate's status is refused.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("the envelope is not signed")]
    NotSigned,
    #[error("unknown signature algorithm {0}")]
    UnknownAlgorithm(i32),
    #[error("`signature.value` is empty")]
    EmptySignature,
    #[error("the algorithm does not match the certificate's key")]
    AlgorithmMismatch,
    /// webpki cannot use the certificate (its DER, or a chain problem other
    /// than the ones below).
    #[error("signer certificate: {0}")]
    BadCertificate(#[source] webpki::Error),
    /// x509-parser cannot read the certificate's subject or extensions.
    #[error("signer certificate: {0}")]
    UnreadableCertificate(#[source] X509Error),
    #[error("the signer certificate does not chain to a trusted НУЦ anchor")]
    UnknownIssuer,
    #[error("the signer certificate is not yet valid at signing time")]
    NotYetValid,
    #[error("the signer certificate has expired at signing time")]
    Expired,
    /// The key usage does not allow signing; the text says which rule.
    #[error("the signer certificate's key usage does not allow signing: {0}")]
    WrongKeyUsage(&'static str),
    #[error("the signature does not verify over the body")]
    SignatureInvalid,
    #[error("the signer certificate was revoked at {at} ({})", .reason.as_str())]
    Revoked {
        at: OffsetDateTime,
        reason: RevocationReason,
    },
    /// The НУЦ could not say whether the certificate is revoked.
    #[error("certificate status unavailable: {0}")]
    StatusUnavailable(#[source] StatusError),
}

impl VerifyError {
    /// The stable reason a refusal carries (`shep.envelope.v1.Reason`).
    pub fn reason(&self) -> Reason {
        match self {
            Self::NotSigned => Reason::NotSigned,
            Self::UnknownAlgorithm(_)
            | Self::EmptySignature
            | Self::AlgorithmMismatch
            | Self::BadCertificate(_)
            | Self::UnreadableCertificate(_) => Reason::MalformedSignature,
            Self::UnknownIssuer => Reason::UnknownIssuer,
            Self::NotYetValid => Reason::CertificateNotYetValid,
            Self::Expired => Reason::CertificateExpired,
            Self::WrongKeyUsage(_) => Reason::WrongKeyUsage,
            Self::SignatureInvalid => Reason::SignatureInvalid,
            Self::Revoked { .. } => Reason::CertificateRevoked,
            Self::StatusUnavailable(_) => Reason::RegistryUnavailable,
        }
    }
}

/// Why a verifier could not be built from its trust anchors.
#[derive(Debug, thiserror::Error)]
pub enum AnchorError {
    #[error("trust anchor is not a usable certificate: {0}")]
    Unusable(#[source] webpki::Error),
    #[error("no trust anchor configured")]
    NoAnchor,
}

/// DER contents of id-kp-emailProtection (1.3.6.1.5.5.7.3.4), the extended key
/// usage national signing certificates carry. Required when a certificate lists
/// extended key usages at all (webpki applies the rule to CA certificates too,
/// which carry none).
const EKU_SIGNING: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x04];

/// Algorithms webpki may meet in certificate chains.
static CHAIN_ALGORITHMS: &[&dyn SignatureVerificationAlgorithm] = &[
    webpki::ring::ED25519,
    webpki::ring::ECDSA_P256_SHA256,
    webpki::ring::ECDSA_P384_SHA384,
    webpki::ring::RSA_PKCS1_2048_8192_SHA256,
    webpki::ring::RSA_PKCS1_2048_8192_SHA384,
];

/// Certificates whose chain check is cached, at most.
const MAX_VERIFIED: usize = 65_536;

/// Who signed, as the certificate subject says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SignerIdentity {
    /// From `SERIALNUMBER=IIN…`.
    pub iin: Option<String>,
    /// From `OU=BIN…` (an employee of a legal entity).
    pub bin: Option<String>,
    pub common_name: String,
    /// The certificate's serial number, for revocation checks.
    pub serial: Vec<u8>,
    /// Its issuer's distinguished name (DER): serials are unique per issuer.
    pub issuer: Vec<u8>,
}

#[derive(Debug)]
struct VerifiedCertificate {
    identity: Arc<SignerIdentity>,
    not_before: i64,
    not_after: i64,
    verified_at: Instant,
}

/// Verifies detached signatures against the configured trust anchors.
#[derive(Debug)]
pub struct SignatureVerifier {
    anchors: Vec<TrustAnchor<'static>>,
    intermediates: Vec<CertificateDer<'static>>,
    chain_ttl: Duration,
    verified: DashMap<Vec<u8>, Arc<VerifiedCertificate>>,
}

impl SignatureVerifier {
    /// Trusts `anchors` (root certificates, DER) and knows `intermediates`.
    pub fn new(
        anchors: &[Vec<u8>],
        intermediates: &[Vec<u8>],
        chain_ttl: Duration,
    ) -> Result<Self, AnchorError> {
        let anchors = anchors
            .iter()
            .map(|der| {
                webpki::anchor_from_trusted_cert(&CertificateDer::from(der.as_slice()))
                    .map(|anchor| anchor.to_owned())
                    .map_err(AnchorError::Unusable)
            })
            .collect::<Result<Vec<_>, _>>()?;
        if anchors.is_empty() {
            return Err(AnchorError::NoAnchor);
        }
        Ok(Self {
            anchors,
            intermediates: intermediates
                .iter()
                .map(|der| CertificateDer::from(der.clone()))
                .collect(),
            chain_ttl,
            verified: DashMap::new(),
        })
    }

    /// Checks `signature` over `signed`, as of `signed_at`, and returns the signer.
    pub fn verify(
        &self,
        signature: Option<&Signature>,
        signed: &[u8],
        signed_at: OffsetDateTime,
    ) -> Result<Arc<SignerIdentity>, VerifyError> {
        let signature = signature.ok_or(VerifyError::NotSigned)?;
        if signature.certificate_der.is_empty() && signature.value.is_empty() {
            return Err(VerifyError::NotSigned);
        }
        let algorithm = match SignatureAlgorithm::try_from(signature.algorithm) {
            Ok(SignatureAlgorithm::Ed25519) => webpki::ring::ED25519,
            Ok(SignatureAlgorithm::EcdsaP256Sha256) => webpki::ring::ECDSA_P256_SHA256,
            Ok(SignatureAlgorithm::RsaPkcs1Sha256) => webpki::ring::RSA_PKCS1_2048_8192_SHA256,
            _ => return Err(VerifyError::UnknownAlgorithm(signature.algorithm)),
        };
        if signature.value.is_empty() {
            return Err(VerifyError::EmptySignature);
        }
        let der = CertificateDer::from(signature.certificate_der.as_slice());
        let certificate = EndEntityCert::try_from(&der).map_err(VerifyError::BadCertificate)?;
        let identity =
            self.verified_identity(&der, &certificate, &signature.chain_der, signed_at)?;
        certificate
            .verify_signature(algorithm, signed, &signature.value)
            .map_err(|error| match error {
                webpki::Error::UnsupportedSignatureAlgorithmForPublicKeyContext(_) => {
                    VerifyError::AlgorithmMismatch
                }
                _ => VerifyError::SignatureInvalid,
            })?;
        Ok(identity)
    }

    fn verified_identity(
        &self,
        der: &CertificateDer<'_>,
        certificate: &EndEntityCert<'_>,
        chain_der: &[Vec<u8>],
        signed_at: OffsetDateTime,
    ) -> Result<Arc<SignerIdentity>, VerifyError> {
        let at = signed_at.unix_timestamp();
        if let Some(cached) = self.verified.get(der.as_ref()).map(|entry| entry.clone())
            && cached.verified_at.elapsed() < self.chain_ttl
            && (cached.not_before..=cached.not_after).contains(&at)
        {
            return Ok(cached.identity.clone());
        }
        let mut intermediates = self.intermediates.clone();
        intermediates.extend(
            chain_der
                .iter()
                .map(|der| CertificateDer::from(der.as_slice()).into_owned()),
        );
        let time = UnixTime::since_unix_epoch(Duration::from_secs(at.max(0) as u64));
        certificate
            .verify_for_usage(
                CHAIN_ALGORITHMS,
                &self.anchors,
                &intermediates,
                time,
                KeyUsage::required_if_present(EKU_SIGNING),
                None,
                None,
            )
            .map_err(chain_error)?;
        let verified = Arc::new(parse_subject(der)?);
        if self.verified.len() >= MAX_VERIFIED {
            // Bounded whatever the signers: the expired go first, then all.
            self.verified
                .retain(|_, cached| cached.verified_at.elapsed() < self.chain_ttl);
            if self.verified.len() >= MAX_VERIFIED {
                self.verified.clear();
            }
        }
        self.verified
            .insert(der.as_ref().to_vec(), verified.clone());
        Ok(verified.identity.clone())
    }
}

fn chain_error(error: webpki::Error) -> VerifyError {
    match error {
        webpki::Error::CertExpired { .. } => VerifyError::Expired,
        webpki::Error::CertNotValidYet { .. } => VerifyError::NotYetValid,
        webpki::Error::RequiredEkuNotFoundContext(_) => {
            VerifyError::WrongKeyUsage("no signing extended key usage")
        }
        webpki::Error::UnknownIssuer | webpki::Error::InvalidSignatureForPublicKey => {
            VerifyError::UnknownIssuer
        }
        webpki::Error::CaUsedAsEndEntity => {
            VerifyError::WrongKeyUsage("a CA certificate cannot sign envelopes")
        }
        other => VerifyError::BadCertificate(other),
    }
}

/// Who a certificate names (`SERIALNUMBER=IIN…`, `OU=BIN…`, `CN`), read
/// without any check of the chain: for a certificate the TLS handshake
/// already verified.
pub fn certificate_identity(der: &[u8]) -> Result<SignerIdentity, VerifyError> {
    parse_subject(&CertificateDer::from(der)).map(|parsed| (*parsed.identity).clone())
}

fn parse_subject(der: &CertificateDer<'_>) -> Result<VerifiedCertificate, VerifyError> {
    let (_, certificate) = x509_parser::parse_x509_certificate(der.as_ref())
        .map_err(|error| VerifyError::UnreadableCertificate(error.into()))?;
    if let Ok(Some(usage)) = certificate.key_usage()
        && !usage.value.digital_signature()
    {
        return Err(VerifyError::WrongKeyUsage(
            "key usage lacks digitalSignature",
        ));
    }
    let subject = certificate.subject();
    let text_of = |attribute: &x509_parser::x509::AttributeTypeAndValue<'_>| {
        attribute.as_str().ok().map(str::to_owned)
    };
    let iin = subject
        .iter_by_oid(&OID_X509_SERIALNUMBER)
        .filter_map(text_of)
        .find_map(|value| value.strip_prefix("IIN").map(str::to_owned));
    let bin = subject
        .iter_organizational_unit()
        .filter_map(text_of)
        .find_map(|value| value.strip_prefix("BIN").map(str::to_owned));
    let common_name = subject
        .iter_by_oid(&OID_X509_COMMON_NAME)
        .find_map(text_of)
        .unwrap_or_default();
    let validity = certificate.validity();
    Ok(VerifiedCertificate {
        identity: Arc::new(SignerIdentity {
            iin,
            bin,
            common_name,
            serial: certificate.raw_serial().to_vec(),
            issuer: certificate.issuer().as_raw().to_vec(),
        }),
        not_before: validity.not_before.timestamp(),
        not_after: validity.not_after.timestamp(),
        verified_at: Instant::now(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ca::{CertificateAuthority, IdentitySpec, KeyAlgorithm};
    use time::Duration as TimeDuration;

    fn verifier(ca: &CertificateAuthority) -> SignatureVerifier {
        SignatureVerifier::new(
            &[ca.root_der().to_vec()],
            &[ca.issuing_der().to_vec()],
            Duration::from_secs(60),
        )
        .unwrap()
    }

    fn now() -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }

    #[tokio::test]
    async fn accepts_a_valid_signature_and_reads_the_identity() {
        let ca = CertificateAuthority::generate().unwrap();
        let spec = IdentitySpec::employee("850315301235", "940140000385", "СЕРИКБАЕВ", "ТОО");
        let signer = ca.issue(&spec).unwrap().signer().unwrap();
        let signature = signer.sign(b"body").unwrap();
        let identity = verifier(&ca)
            .verify(Some(&signature), b"body", now())
            .unwrap();
        assert_eq!(identity.iin.as_deref(), Some("850315301235"));
        assert_eq!(identity.bin.as_deref(), Some("940140000385"));
    }

    #[tokio::test]
    async fn ecdsa_signatures_verify_too() {
        let ca = CertificateAuthority::generate().unwrap();
        let mut spec = IdentitySpec::individual("850315301235", "СЕРИКБАЕВ");
        spec.algorithm = KeyAlgorithm::EcdsaP256;
        let signer = ca.issue(&spec).unwrap().signer().unwrap();
        let signature = signer.sign(b"body").unwrap();
        assert_eq!(
            signature.algorithm,
            SignatureAlgorithm::EcdsaP256Sha256 as i32
        );
        verifier(&ca)
            .verify(Some(&signature), b"body", now())
            .unwrap();
    }

    #[tokio::test]
    async fn each_failure_has_its_own_error() {
        let ca = CertificateAuthority::generate().unwrap();
        let verifier = verifier(&ca);
        let spec = IdentitySpec::individual("850315301235", "СЕРИКБАЕВ");
        let signer = ca.issue(&spec).unwrap().signer().unwrap();
        let good = signer.sign(b"body").unwrap();

        assert!(matches!(
            verifier.verify(None, b"body", now()),
            Err(VerifyError::NotSigned)
        ));
        assert!(matches!(
            verifier.verify(Some(&good), b"tampered", now()),
            Err(VerifyError::SignatureInvalid)
        ));
        // Cached chain, and still every signature is checked.
        assert!(matches!(
            verifier.verify(Some(&good), b"tampered again", now()),
            Err(VerifyError::SignatureInvalid)
        ));

        let mut garbage = good.clone();
        garbage.certificate_der = vec![0x30, 0x03, 0x01, 0x01, 0xff];
        let malformed = verifier.verify(Some(&garbage), b"body", now()).unwrap_err();
        assert!(matches!(malformed, VerifyError::BadCertificate(_)));
        // The webpki error stays reachable as the source.
        assert!(std::error::Error::source(&malformed).is_some());
        assert_eq!(malformed.reason(), Reason::MalformedSignature);

        let mut unknown_alg = good;
        unknown_alg.algorithm = 0;
        assert!(matches!(
            verifier.verify(Some(&unknown_alg), b"body", now()),
            Err(VerifyError::UnknownAlgorithm(0))
        ));

        let mut expired_spec = spec.clone();
        expired_spec.not_before = now() - TimeDuration::days(30);
        expired_spec.not_after = now() - TimeDuration::days(1);
        let expired = ca.issue(&expired_spec).unwrap().signer().unwrap();
        assert!(matches!(
            verifier.verify(Some(&expired.sign(b"body").unwrap()), b"body", now()),
            Err(VerifyError::Expired)
        ));

        let mut future_spec = spec.clone();
        future_spec.not_before = now() + TimeDuration::days(1);
        future_spec.not_after = now() + TimeDuration::days(30);
        let future = ca.issue(&future_spec).unwrap().signer().unwrap();
        assert!(matches!(
            verifier.verify(Some(&future.sign(b"body").unwrap()), b"body", now()),
            Err(VerifyError::NotYetValid)
        ));

        let stranger = CertificateAuthority::generate().unwrap();
        let foreign = stranger.issue(&spec).unwrap().signer().unwrap();
        assert!(matches!(
            verifier.verify(Some(&foreign.sign(b"body").unwrap()), b"body", now()),
            Err(VerifyError::UnknownIssuer)
        ));
    }

    #[tokio::test]
    async fn a_cached_certificate_is_rechecked_for_validity_at_signing_time() {
        let ca = CertificateAuthority::generate().unwrap();
        let verifier = verifier(&ca);
        let signer = ca
            .issue(&IdentitySpec::individual("850315301235", "СЕРИКБАЕВ"))
            .unwrap()
            .signer()
            .unwrap();
        let signature = signer.sign(b"body").unwrap();
        verifier.verify(Some(&signature), b"body", now()).unwrap();
        assert!(matches!(
            verifier.verify(Some(&signature), b"body", now() + TimeDuration::days(400)),
            Err(VerifyError::Expired)
        ));
    }
}
