//! Ed25519 signatures verified as one batch (ed25519-dalek's `verify_batch`),
//! with results equal to verifying each alone as the gateway always has
//! (webpki with *ring*: cofactorless, `R` compared as bytes, `s < ℓ`).
//!
//! Batch and single verification disagree only on adversarial inputs: a
//! non-canonical encoding of `R` or `A` (the batch compares points, ring
//! compares bytes), or a small-order component in `R` or `A` (the batch's
//! random coefficients can cancel a torsion term that ring's equation sees;
//! ed25519-dalek 2 derives them from the inputs, so a signer could even pick
//! them). Such a member never enters a batch: keys are screened once per
//! certificate ([`super::SignerKey`]), signatures here (`s` canonical, `R`
//! canonical and torsion-free); everything screened out, and every member of
//! a batch that fails, is verified alone with ring. A batch that passes thus
//! means each member passes alone (but for the batch's 2⁻¹²⁸ soundness
//! error), and a failing batch refuses only its bad members.

use curve25519_dalek::edwards::CompressedEdwardsY;
use curve25519_dalek::scalar::Scalar;
use ed25519_dalek::Signature;

use super::{SignerKey, VerifyError};

/// One signature to check: the signer's key, the signed bytes and the
/// signature value.
#[derive(Debug, Clone, Copy)]
pub struct BatchItem<'a> {
    pub key: &'a SignerKey,
    pub message: &'a [u8],
    pub signature: &'a [u8],
}

/// Checks every Ed25519 item, as a batch where it can, and returns each
/// one's result in order: the same result as [`SignerKey::verify`] with
/// [`webpki::ring::ED25519`] gives it alone.
pub fn verify_ed25519(items: &[BatchItem<'_>]) -> Vec<Result<(), VerifyError>> {
    // A batch of one costs more than a single verification: not screened.
    if items.len() < 2 {
        return items.iter().map(single).collect();
    }
    let mut results: Vec<Option<Result<(), VerifyError>>> =
        (0..items.len()).map(|_| None).collect();
    let mut members = Vec::with_capacity(items.len());
    let mut messages = Vec::with_capacity(items.len());
    let mut signatures = Vec::with_capacity(items.len());
    let mut keys = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        match (item.key.batchable(), batchable_signature(item.signature)) {
            (Some(key), Some(signature)) => {
                members.push(index);
                messages.push(item.message);
                signatures.push(signature);
                keys.push(*key);
            }
            _ => results[index] = Some(single(item)),
        }
    }
    // Likewise when screening left one member.
    if members.len() >= 2 && ed25519_dalek::verify_batch(&messages, &signatures, &keys).is_ok() {
        for index in members {
            results[index] = Some(Ok(()));
        }
    }
    results
        .into_iter()
        .zip(items)
        .map(|(result, item)| result.unwrap_or_else(|| single(item)))
        .collect()
}

fn single(item: &BatchItem<'_>) -> Result<(), VerifyError> {
    item.key.verify_ed25519(item.message, item.signature)
}

/// The signature when a batch treats it as ring would: 64 bytes, `s < ℓ`,
/// `R` the canonical encoding of a point without a small-order component.
pub(crate) fn batchable_signature(signature: &[u8]) -> Option<Signature> {
    let bytes: &[u8; 64] = signature.try_into().ok()?;
    let (r, s) = bytes.split_at(32);
    let s: [u8; 32] = s.try_into().ok()?;
    if bool::from(Scalar::from_canonical_bytes(s).is_none()) {
        return None;
    }
    let r: [u8; 32] = r.try_into().ok()?;
    if !is_canonical_encoding(&r) {
        return None;
    }
    if !CompressedEdwardsY(r).decompress()?.is_torsion_free() {
        return None;
    }
    Some(Signature::from_bytes(bytes))
}

/// Whether a signature may enter a batch (for benchmarks and tests).
pub fn is_batchable_signature(signature: &[u8]) -> bool {
    batchable_signature(signature).is_some()
}

/// Whether `encoding` is the only encoding of the point it decodes to (when
/// it decodes): `y < p`, and no sign bit on `x = 0`, which only `y = ±1`
/// has. Equal to `compress(decompress(encoding)) == encoding` without the
/// field inversion `compress` costs.
pub(crate) fn is_canonical_encoding(encoding: &[u8; 32]) -> bool {
    let sign = encoding[31] & 0x80 != 0;
    let mut y = *encoding;
    y[31] &= 0x7f;
    // p = 2^255 - 19: little-endian 0xed, 0xff × 30, 0x7f.
    let at_least_p = y[0] >= 0xed && y[1..31].iter().all(|&byte| byte == 0xff) && y[31] == 0x7f;
    let one = y[0] == 1 && y[1..].iter().all(|&byte| byte == 0);
    // p - 1: 0xec, 0xff × 30, 0x7f.
    let minus_one = y[0] == 0xec && y[1..31].iter().all(|&byte| byte == 0xff) && y[31] == 0x7f;
    !at_least_p && !(sign && (one || minus_one))
}

#[cfg(test)]
mod tests;
