//! XML-DSig, enveloped signatures, for the SOAP front door: business data in
//! `<data>` carries a `ds:Signature` as the last child of its root element,
//! as the real ШЭП contract has it.
//!
//! The split of work with [`crate::verify`]: [`verify_enveloped`] checks the
//! XML structure, the algorithms and the Reference digests, and hands back the
//! canonical `SignedInfo` with a proto [`Signature`] built from the XML; the
//! caller runs the same [`crate::verify::SignatureVerifier`] as for protobuf
//! envelopes on them (chain, validity, key usage, revocation and the
//! cryptographic check). [`sign_enveloped`] makes such documents.
//!
//! XML is parsed by roxmltree with DTDs refused ([`parse`]): no entity
//! expansion, no external entities, whatever the input.

mod c14n;
mod sign;
mod verify;

pub use c14n::C14nMethod;
pub use sign::sign_enveloped;
pub use verify::verify_enveloped;

use base64::Engine as _;
use roxmltree::Node;
use shep_proto::envelope::v1::{Reason, Signature, SignatureAlgorithm};

use crate::ca::NucError;

/// The XML-DSig namespace.
pub const DSIG_NS: &str = "http://www.w3.org/2000/09/xmldsig#";
/// The enveloped-signature transform.
pub const ENVELOPED_SIGNATURE: &str = "http://www.w3.org/2000/09/xmldsig#enveloped-signature";
/// SHA-256, the only digest accepted.
pub const DIGEST_SHA256: &str = "http://www.w3.org/2001/04/xmlenc#sha256";
pub const RSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";
pub const ECDSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256";
pub const ED25519: &str = "http://www.w3.org/2021/04/xmldsig-more#eddsa-ed25519";
/// GOST 34.310 with GOST 34.311, as KalkanCrypt signs (refused here).
pub const GOST_34310: &str = "http://www.w3.org/2001/04/xmldsig-more#gost34310-gost34311";
/// The prefix of the pki.gov.kz GOST R 34.10-2015 URIs (refused here).
pub const GOST_PKIGOVKZ_PREFIX: &str =
    "urn:ietf:params:xml:ns:pkigovkz:xmlsec:algorithms:gostr3410";
/// The namespace of exclusive c14n's `InclusiveNamespaces`.
pub const EXC_C14N_NS: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";
/// WS-Security utility, whose `wsu:Id` may name a referenced element.
pub const WSU_NS: &str =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd";

/// Why an XML signature is refused (or cannot be made).
#[derive(Debug, thiserror::Error)]
pub enum XmlDsigError {
    /// Not well-formed, or it carries a DTD (refused: no entities here).
    #[error("the XML cannot be parsed (DTDs are refused): {0}")]
    Parse(#[from] roxmltree::Error),
    #[error("the signed element has no ds:Signature child")]
    NotSigned,
    #[error("malformed XML signature: {0}")]
    Malformed(&'static str),
    #[error(
        "GOST algorithm `{0}` is not supported by shep-sim; sign with RSA-SHA256 or ECDSA-SHA256"
    )]
    GostNotSupported(String),
    #[error("unsupported algorithm `{0}`")]
    UnsupportedAlgorithm(String),
    #[error("{0} is not valid base64")]
    BadBase64(&'static str),
    #[error("ds:KeyInfo carries no X509Certificate")]
    MissingCertificate,
    #[error("the digest of reference `{uri}` does not match")]
    DigestMismatch { uri: String },
    #[error("signing failed: {0}")]
    Sign(#[from] NucError),
}

impl XmlDsigError {
    /// The stable reason a refusal carries (`shep.envelope.v1.Reason`).
    pub fn reason(&self) -> Reason {
        match self {
            Self::NotSigned => Reason::NotSigned,
            Self::DigestMismatch { .. } => Reason::SignatureInvalid,
            Self::Parse(_)
            | Self::Malformed(_)
            | Self::GostNotSupported(_)
            | Self::UnsupportedAlgorithm(_)
            | Self::BadBase64(_)
            | Self::MissingCertificate
            | Self::Sign(_) => Reason::MalformedSignature,
        }
    }
}

/// What the gateway needs after the structural and digest checks passed.
#[derive(Debug, Clone)]
pub struct VerifiedXml {
    /// Algorithm, the first X509Certificate (`certificate_der`), the others
    /// (`chain_der`) and the signature value in the proto's form (ECDSA as
    /// ASN.1 DER).
    pub signature: Signature,
    /// The canonical SignedInfo: exactly the bytes the signature is over.
    pub signed_info: Vec<u8>,
}

/// Parses `xml` with DTDs refused (roxmltree's default, kept explicit): a
/// document with a DTD, and so with entity declarations, is an error before
/// anything is expanded.
pub fn parse(xml: &str) -> Result<roxmltree::Document<'_>, XmlDsigError> {
    let options = roxmltree::ParsingOptions {
        allow_dtd: false,
        ..roxmltree::ParsingOptions::default()
    };
    Ok(roxmltree::Document::parse_with_options(xml, options)?)
}

/// Canonicalizes `element` as the root of a standalone document: of the
/// namespaces declared above it (a SOAP envelope's), only those its subtree
/// uses in element or attribute names are rendered, on `element`. When
/// `element` is its document's root element, the processing instructions
/// (and, with comments, the comments) around it are rendered too, as for a
/// whole document.
pub fn canonicalize(
    element: Node<'_, '_>,
    method: C14nMethod,
    inclusive_prefixes: &[String],
) -> Result<Vec<u8>, XmlDsigError> {
    c14n::Standalone::new(element)?.canonicalize(element, method, inclusive_prefixes, None, true)
}

/// Canonicalizes `apex`, an element inside `root`'s standalone document, as a
/// document subset (inclusive c14n renders the bindings in scope at `apex`
/// within that document).
pub fn canonicalize_subset(
    root: Node<'_, '_>,
    apex: Node<'_, '_>,
    method: C14nMethod,
    inclusive_prefixes: &[String],
) -> Result<Vec<u8>, XmlDsigError> {
    c14n::Standalone::new(root)?.canonicalize(apex, method, inclusive_prefixes, None, false)
}

/// The signature algorithm a SignatureMethod URI names.
fn signature_algorithm(uri: &str) -> Result<SignatureAlgorithm, XmlDsigError> {
    match uri {
        RSA_SHA256 => Ok(SignatureAlgorithm::RsaPkcs1Sha256),
        ECDSA_SHA256 => Ok(SignatureAlgorithm::EcdsaP256Sha256),
        ED25519 => Ok(SignatureAlgorithm::Ed25519),
        _ => Err(unsupported(uri)),
    }
}

/// The SignatureMethod URI of an algorithm.
fn signature_method(algorithm: SignatureAlgorithm) -> Result<&'static str, XmlDsigError> {
    match algorithm {
        SignatureAlgorithm::RsaPkcs1Sha256 => Ok(RSA_SHA256),
        SignatureAlgorithm::EcdsaP256Sha256 => Ok(ECDSA_SHA256),
        SignatureAlgorithm::Ed25519 => Ok(ED25519),
        other => Err(XmlDsigError::UnsupportedAlgorithm(format!("{other:?}"))),
    }
}

/// GOST URIs get their own error: a KalkanCrypt signer should learn what to
/// change, not just that something is unknown.
fn unsupported(uri: &str) -> XmlDsigError {
    let gost = uri == GOST_34310
        || uri.starts_with(GOST_PKIGOVKZ_PREFIX)
        || uri.starts_with("urn:ietf:params:xml:ns:pkigovkz:xmlsec:algorithms:gostr3411")
        || uri.contains("gost");
    if gost {
        XmlDsigError::GostNotSupported(uri.to_owned())
    } else {
        XmlDsigError::UnsupportedAlgorithm(uri.to_owned())
    }
}

/// Base64 with any whitespace (line breaks of wrapped values) ignored.
fn decode_base64(text: &str, what: &'static str) -> Result<Vec<u8>, XmlDsigError> {
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(compact)
        .map_err(|_| XmlDsigError::BadBase64(what))
}

fn encode_base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Length of an ECDSA P-256 scalar.
const P256_SCALAR: usize = 32;

/// XML-DSig's ECDSA value (r‖s, RFC 4051; also WebCrypto's) as ASN.1 DER
/// `Ecdsa-Sig-Value`, the form `Signature.value` takes.
pub fn ecdsa_raw_to_der(raw: &[u8]) -> Result<Vec<u8>, XmlDsigError> {
    if raw.len() != 2 * P256_SCALAR {
        return Err(XmlDsigError::Malformed(
            "an ECDSA P-256 SignatureValue is 64 bytes (r‖s)",
        ));
    }
    let integer = |scalar: &[u8]| {
        let trimmed = match scalar.iter().position(|&byte| byte != 0) {
            Some(start) => &scalar[start..],
            None => &scalar[scalar.len() - 1..],
        };
        let mut out = vec![0x02];
        let pad = trimmed[0] & 0x80 != 0;
        out.push((trimmed.len() + usize::from(pad)) as u8);
        if pad {
            out.push(0);
        }
        out.extend_from_slice(trimmed);
        out
    };
    let (r, s) = raw.split_at(P256_SCALAR);
    let body = [integer(r), integer(s)].concat();
    let mut der = vec![0x30, body.len() as u8];
    der.extend(body);
    Ok(der)
}

/// ASN.1 DER `Ecdsa-Sig-Value` as XML-DSig's r‖s.
fn ecdsa_der_to_raw(der: &[u8]) -> Result<Vec<u8>, XmlDsigError> {
    const BAD: XmlDsigError = XmlDsigError::Malformed("not an ECDSA P-256 DER signature");
    let body = match der {
        [0x30, len, body @ ..] if usize::from(*len) == body.len() && *len < 0x80 => body,
        _ => return Err(BAD),
    };
    let mut raw = Vec::with_capacity(2 * P256_SCALAR);
    let mut rest = body;
    for _ in 0..2 {
        let (value, tail) = match rest {
            [0x02, len, tail @ ..] if usize::from(*len) <= tail.len() => {
                tail.split_at(usize::from(*len))
            }
            _ => return Err(BAD),
        };
        let start = value
            .iter()
            .position(|&byte| byte != 0)
            .unwrap_or(value.len());
        let value = &value[start..];
        if value.len() > P256_SCALAR {
            return Err(BAD);
        }
        raw.extend(std::iter::repeat_n(0, P256_SCALAR - value.len()));
        raw.extend_from_slice(value);
        rest = tail;
    }
    if !rest.is_empty() {
        return Err(BAD);
    }
    Ok(raw)
}

#[cfg(test)]
mod tests;
