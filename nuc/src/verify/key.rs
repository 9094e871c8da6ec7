//! A signer's public key, read once per certificate from its
//! SubjectPublicKeyInfo and kept beside the chain cache (keyed by the
//! certificate's DER, like it).
//!
//! The check is the one webpki makes in `EndEntityCert::verify_signature`
//! (the algorithm must match the key's algorithm identifier, then *ring*
//! verifies), minus the certificate and SPKI parsing: the same function on
//! the same bytes, so the results cannot differ.

use curve25519_dalek::edwards::CompressedEdwardsY;
use rustls_pki_types::SignatureVerificationAlgorithm;

use super::VerifyError;

/// A certificate's public key, parsed once, ready to check signatures.
#[derive(Debug)]
pub struct SignerKey {
    /// The contents of the SPKI's AlgorithmIdentifier (what webpki compares).
    algorithm_id: Vec<u8>,
    /// The subjectPublicKey bits.
    key: Vec<u8>,
    /// The Ed25519 key, decoded, when batch verification can take it: a
    /// canonical encoding of a point of the prime-order subgroup (see
    /// [`super::batch`]).
    batchable: Option<ed25519_dalek::VerifyingKey>,
}

impl SignerKey {
    /// Reads `spki` (DER, with its outer SEQUENCE). `None` when it is not the
    /// strict DER webpki reads: the caller then takes webpki's own path.
    pub(crate) fn from_spki(spki: &[u8]) -> Option<Self> {
        let (contents, rest) = expect(spki, TAG_SEQUENCE)?;
        if !rest.is_empty() {
            return None;
        }
        let (algorithm_id, rest) = expect(contents, TAG_SEQUENCE)?;
        let (bits, rest) = expect(rest, TAG_BIT_STRING)?;
        if !rest.is_empty() {
            return None;
        }
        // webpki: a bit string with no unused bits.
        let (&unused, key) = bits.split_first()?;
        if unused != 0 {
            return None;
        }
        let batchable = if algorithm_id == webpki::ring::ED25519.public_key_alg_id().as_ref() {
            batchable_ed25519(key)
        } else {
            None
        };
        Some(Self {
            algorithm_id: algorithm_id.to_vec(),
            key: key.to_vec(),
            batchable,
        })
    }

    /// Checks `signature` over `message` as webpki's
    /// `EndEntityCert::verify_signature` does, with the same errors.
    pub fn verify(
        &self,
        algorithm: &dyn SignatureVerificationAlgorithm,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), VerifyError> {
        if algorithm.public_key_alg_id().as_ref() != self.algorithm_id.as_slice() {
            return Err(VerifyError::AlgorithmMismatch);
        }
        algorithm
            .verify_signature(&self.key, message, signature)
            .map_err(|_| VerifyError::SignatureInvalid)
    }

    /// Checks an Ed25519 `signature` over `message` ([`Self::verify`] with
    /// webpki's Ed25519 algorithm).
    pub fn verify_ed25519(&self, message: &[u8], signature: &[u8]) -> Result<(), VerifyError> {
        self.verify(webpki::ring::ED25519, message, signature)
    }

    /// The decoded Ed25519 key when batch verification may take it.
    pub(crate) fn batchable(&self) -> Option<&ed25519_dalek::VerifyingKey> {
        self.batchable.as_ref()
    }

    /// The Ed25519 key's 32 bytes, when it may go into a batch.
    pub fn ed25519_bytes(&self) -> Option<[u8; 32]> {
        self.batchable.map(|key| key.to_bytes())
    }

    /// Whether this key may go into an Ed25519 batch.
    pub fn is_batchable(&self) -> bool {
        self.batchable.is_some()
    }
}

/// An Ed25519 key batch verification treats as single verification does:
/// 32 bytes, the canonical encoding of a point without a small-order
/// component (so neither a torsion term nor a second encoding can make the
/// batch equation hold where ring's per-signature equation does not).
fn batchable_ed25519(key: &[u8]) -> Option<ed25519_dalek::VerifyingKey> {
    let bytes: [u8; 32] = key.try_into().ok()?;
    let point = CompressedEdwardsY(bytes).decompress()?;
    if point.compress().to_bytes() != bytes || !point.is_torsion_free() {
        return None;
    }
    ed25519_dalek::VerifyingKey::from_bytes(&bytes).ok()
}

const TAG_SEQUENCE: u8 = 0x30;
const TAG_BIT_STRING: u8 = 0x03;

/// One DER element with tag `tag`: its contents and what follows. Minimal
/// lengths only, up to two length bytes (stricter than webpki, never laxer).
fn expect(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&found, rest) = input.split_first()?;
    if found != tag {
        return None;
    }
    let (&first, rest) = rest.split_first()?;
    let (length, rest) = match first {
        0..=0x7f => (usize::from(first), rest),
        0x81 => {
            let (&byte, rest) = rest.split_first()?;
            if byte < 0x80 {
                return None;
            }
            (usize::from(byte), rest)
        }
        0x82 => {
            let (bytes, rest) = rest.split_at_checked(2)?;
            let length = usize::from(u16::from_be_bytes([bytes[0], bytes[1]]));
            if length < 0x100 {
                return None;
            }
            (length, rest)
        }
        _ => return None,
    };
    rest.split_at_checked(length)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_what_is_not_strict_der() {
        // A SEQUENCE whose length byte is not minimal.
        assert!(expect(&[0x30, 0x81, 0x01, 0x00], TAG_SEQUENCE).is_none());
        assert!(expect(&[0x30, 0x82, 0x00, 0x80], TAG_SEQUENCE).is_none());
        // Truncated.
        assert!(expect(&[0x30, 0x05, 0x00], TAG_SEQUENCE).is_none());
        // Unused bits in the key.
        let spki = [0x30, 0x07, 0x30, 0x00, 0x03, 0x03, 0x01, 0xaa, 0xbb];
        assert!(SignerKey::from_spki(&spki).is_none());
        let spki = [0x30, 0x07, 0x30, 0x00, 0x03, 0x03, 0x00, 0xaa, 0xbb];
        let key = SignerKey::from_spki(&spki).unwrap();
        assert_eq!(key.key, [0xaa, 0xbb]);
        assert!(!key.is_batchable());
    }
}
