//! The signature check («условие 2»): the signer certificate chains to a trusted
//! НУЦ anchor, is valid at signing time, allows signing, and the signature over
//! the exact body bytes verifies.
//!
//! Chain results are cached per certificate (never per envelope): every
//! envelope's signature is verified, but a certificate's path is built once per
//! `chain_ttl`. Revocation ([`crate::revocation`]) sits beside the chain check
//! with its own per-certificate cache. The signer's public key is read once
//! per certificate too, beside its chain ([`SignerKey`]), and Ed25519
//! signatures arriving together may be checked as one batch ([`batch`]).

pub mod batch;
mod key;

pub use key::SignerKey;

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
    /// The certificate's key; `None` when its SPKI is not the strict DER
    /// [`SignerKey`] reads (webpki's path then, unchanged).
    key: Option<Arc<SignerKey>>,
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
        self.prepare(signature, signed_at)?.verify(signed)
    }

    /// Every check but the signature over the body: the envelope is signed
    /// with a known algorithm, and the certificate chains and is valid at
    /// `signed_at`. A certificate seen before (the same DER) is neither
    /// parsed nor its key decoded again while its chain is cached.
    pub fn prepare<'a>(
        &self,
        signature: Option<&'a Signature>,
        signed_at: OffsetDateTime,
    ) -> Result<Prepared<'a>, VerifyError> {
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
        let verified = match self.cached(&signature.certificate_der, signed_at) {
            Some(cached) => cached,
            None => {
                let der = CertificateDer::from(signature.certificate_der.as_slice());
                let certificate =
                    EndEntityCert::try_from(&der).map_err(VerifyError::BadCertificate)?;
                self.verify_chain(&der, &certificate, &signature.chain_der, signed_at)?
            }
        };
        Ok(Prepared {
            signature,
            algorithm,
            identity: verified.identity.clone(),
            key: verified.key.clone(),
        })
    }

    /// The cached chain check of `der`, when still fresh and `signed_at` is
    /// within the certificate's validity.
    fn cached(&self, der: &[u8], signed_at: OffsetDateTime) -> Option<Arc<VerifiedCertificate>> {
        let at = signed_at.unix_timestamp();
        let cached = self.verified.get(der).map(|entry| entry.clone())?;
        (cached.verified_at.elapsed() < self.chain_ttl
            && (cached.not_before..=cached.not_after).contains(&at))
        .then_some(cached)
    }

    fn verify_chain(
        &self,
        der: &CertificateDer<'_>,
        certificate: &EndEntityCert<'_>,
        chain_der: &[Vec<u8>],
        signed_at: OffsetDateTime,
    ) -> Result<Arc<VerifiedCertificate>, VerifyError> {
        let at = signed_at.unix_timestamp();
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
        let mut verified = parse_subject(der)?;
        verified.key =
            SignerKey::from_spki(certificate.subject_public_key_info().as_ref()).map(Arc::new);
        let verified = Arc::new(verified);
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
        Ok(verified)
    }
}

/// A signature whose certificate checks out, its signature over the body
/// still to check ([`Prepared::verify`], or in an Ed25519 batch).
#[derive(Debug)]
pub struct Prepared<'a> {
    signature: &'a Signature,
    algorithm: &'static dyn SignatureVerificationAlgorithm,
    identity: Arc<SignerIdentity>,
    key: Option<Arc<SignerKey>>,
}

impl Prepared<'_> {
    /// Checks the signature over `signed` and returns the signer.
    pub fn verify(self, signed: &[u8]) -> Result<Arc<SignerIdentity>, VerifyError> {
        match &self.key {
            Some(key) => key.verify(self.algorithm, signed, &self.signature.value)?,
            None => {
                let der = CertificateDer::from(self.signature.certificate_der.as_slice());
                EndEntityCert::try_from(&der)
                    .map_err(VerifyError::BadCertificate)?
                    .verify_signature(self.algorithm, signed, &self.signature.value)
                    .map_err(signature_error)?;
            }
        }
        Ok(self.identity)
    }

    /// The signer's key when the signature is Ed25519 and the key may go
    /// into a batch ([`batch::verify_ed25519`]).
    pub fn batchable_ed25519(&self) -> Option<&Arc<SignerKey>> {
        let is_ed25519 = self.signature.algorithm == SignatureAlgorithm::Ed25519 as i32;
        self.key
            .as_ref()
            .filter(|key| is_ed25519 && key.is_batchable())
    }

    /// The signature value.
    pub fn value(&self) -> &[u8] {
        &self.signature.value
    }

    /// The signer, for a caller that checked the signature itself (in a batch).
    pub fn into_identity(self) -> Arc<SignerIdentity> {
        self.identity
    }
}

fn signature_error(error: webpki::Error) -> VerifyError {
    match error {
        webpki::Error::UnsupportedSignatureAlgorithmForPublicKeyContext(_) => {
            VerifyError::AlgorithmMismatch
        }
        _ => VerifyError::SignatureInvalid,
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
        key: None,
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

    /// Today's path, for comparison: webpki parses the certificate and
    /// checks the signature.
    fn webpki_verify(signature: &Signature, signed: &[u8]) -> Result<(), VerifyError> {
        let algorithm = match SignatureAlgorithm::try_from(signature.algorithm) {
            Ok(SignatureAlgorithm::Ed25519) => webpki::ring::ED25519,
            Ok(SignatureAlgorithm::EcdsaP256Sha256) => webpki::ring::ECDSA_P256_SHA256,
            _ => webpki::ring::RSA_PKCS1_2048_8192_SHA256,
        };
        let der = CertificateDer::from(signature.certificate_der.as_slice());
        EndEntityCert::try_from(&der)
            .unwrap()
            .verify_signature(algorithm, signed, &signature.value)
            .map_err(signature_error)
    }

    #[tokio::test]
    async fn the_cached_key_gives_webpkis_results() {
        let ca = CertificateAuthority::generate().unwrap();
        let verifier = verifier(&ca);
        let algorithms = [
            KeyAlgorithm::Ed25519,
            KeyAlgorithm::EcdsaP256,
            KeyAlgorithm::Rsa2048,
        ];
        for algorithm in algorithms {
            let mut spec = IdentitySpec::individual("850315301235", "СЕРИКБАЕВ");
            spec.algorithm = algorithm;
            let signer = ca.issue(&spec).unwrap().signer().unwrap();
            let good = signer.sign(b"body").unwrap();
            let mut flipped = good.clone();
            flipped.value[3] ^= 0x10;
            let mut short = good.clone();
            short.value.pop();
            let mut long = good.clone();
            long.value.push(0);
            let mut inputs = vec![good.clone(), flipped, short, long];
            // Every algorithm field against this certificate's key.
            for claimed in [
                SignatureAlgorithm::Ed25519,
                SignatureAlgorithm::EcdsaP256Sha256,
                SignatureAlgorithm::RsaPkcs1Sha256,
            ] {
                let mut other = good.clone();
                other.algorithm = claimed as i32;
                inputs.push(other);
            }
            for signature in &inputs {
                for body in [&b"body"[..], b"other"] {
                    // Twice: the first fills the cache, the second uses it.
                    for _ in 0..2 {
                        let ours = verifier.verify(Some(signature), body, now()).map(|_| ());
                        let theirs = webpki_verify(signature, body);
                        assert_eq!(
                            format!("{ours:?}"),
                            format!("{theirs:?}"),
                            "{algorithm:?}, {:?}",
                            signature.algorithm
                        );
                    }
                }
            }
        }
    }

    #[tokio::test]
    async fn the_key_is_decoded_once_per_certificate() {
        let ca = CertificateAuthority::generate().unwrap();
        let verifier = verifier(&ca);
        let signer = ca
            .issue(&IdentitySpec::individual("850315301235", "СЕРИКБАЕВ"))
            .unwrap()
            .signer()
            .unwrap();
        let signature = signer.sign(b"body").unwrap();
        let key_of = |signature: &Signature| {
            verifier
                .verified
                .get(signature.certificate_der.as_slice())
                .and_then(|entry| entry.key.clone())
                .unwrap()
        };
        verifier.verify(Some(&signature), b"body", now()).unwrap();
        let first = key_of(&signature);
        assert!(first.is_batchable());
        let again = signer.sign(b"another body").unwrap();
        verifier
            .verify(Some(&again), b"another body", now())
            .unwrap();
        assert!(Arc::ptr_eq(&first, &key_of(&again)));
    }

    #[tokio::test]
    async fn a_reissued_certificate_is_a_different_key() {
        let ca = CertificateAuthority::generate().unwrap();
        let verifier = verifier(&ca);
        let spec = IdentitySpec::individual("850315301235", "СЕРИКБАЕВ");
        let old = ca.issue(&spec).unwrap().signer().unwrap();
        let new = ca.issue(&spec).unwrap().signer().unwrap();
        let old_signature = old.sign(b"body").unwrap();
        verifier
            .verify(Some(&old_signature), b"body", now())
            .unwrap();
        // Same subject, new key: the new certificate's own key is used.
        let new_signature = new.sign(b"body").unwrap();
        verifier
            .verify(Some(&new_signature), b"body", now())
            .unwrap();
        assert_eq!(verifier.verified.len(), 2);
        // The new key's signature presented with the old certificate (and the
        // reverse) does not verify: nothing is looked up by subject or content.
        let mut crossed = new_signature.clone();
        crossed.certificate_der = old_signature.certificate_der.clone();
        assert!(matches!(
            verifier.verify(Some(&crossed), b"body", now()),
            Err(VerifyError::SignatureInvalid)
        ));
        let mut crossed = old_signature;
        crossed.certificate_der = new_signature.certificate_der;
        assert!(matches!(
            verifier.verify(Some(&crossed), b"body", now()),
            Err(VerifyError::SignatureInvalid)
        ));
    }
}
