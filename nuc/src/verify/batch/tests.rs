//! Batch results against single verification on the same inputs: valid,
//! tampered, malformed and non-canonical signatures, small-order keys and
//! nonces, in batches of several sizes.

use curve25519_dalek::constants::{ED25519_BASEPOINT_POINT, EIGHT_TORSION};
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;

use super::*;

/// ℓ, little-endian.
const ELL: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];

/// A deterministic byte source (xorshift), so failures reproduce.
struct Bytes(u64);

impl Bytes {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn fill<const N: usize>(&mut self) -> [u8; N] {
        std::array::from_fn(|_| self.next() as u8)
    }

    fn scalar(&mut self) -> Scalar {
        Scalar::from_bytes_mod_order_wide(&self.fill::<64>())
    }

    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound as u64) as usize
    }
}

/// The SPKI of an Ed25519 key (RFC 8410), for [`SignerKey::from_spki`].
fn ed25519_key(key: [u8; 32]) -> SignerKey {
    let mut spki = vec![
        0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
    ];
    spki.extend_from_slice(&key);
    SignerKey::from_spki(&spki).unwrap()
}

fn challenge(r: &[u8; 32], key: &[u8; 32], message: &[u8]) -> Scalar {
    let mut context = ring::digest::Context::new(&ring::digest::SHA512);
    context.update(r);
    context.update(key);
    context.update(message);
    let digest: [u8; 64] = context.finish().as_ref().try_into().unwrap();
    Scalar::from_bytes_mod_order_wide(&digest)
}

/// Signs as Ed25519 does with secret scalar `secret`, except that `R` may
/// carry a small-order term: `R = [r]B + nonce_torsion`, `s = r + k·a`.
/// Only the key holder can make such a signature; ring refuses it, and a
/// batch's random coefficients may cancel the term.
fn sign_raw(
    secret: Scalar,
    key: [u8; 32],
    nonce: Scalar,
    nonce_torsion: EdwardsPoint,
    message: &[u8],
) -> Vec<u8> {
    let r = (ED25519_BASEPOINT_POINT * nonce + nonce_torsion)
        .compress()
        .to_bytes();
    let s = nonce + challenge(&r, &key, message) * secret;
    [r.as_slice(), s.as_bytes()].concat()
}

/// `value + ℓ` (little-endian, no overflow for a reduced `value`): the same
/// scalar, not canonically encoded.
fn plus_ell(value: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; 32];
    let mut carry = 0u16;
    for index in 0..32 {
        let sum = u16::from(value[index]) + u16::from(ELL[index]) + carry;
        out[index] = sum as u8;
        carry = sum >> 8;
    }
    out
}

/// One input of a kind, on a fresh message.
fn case(bytes: &mut Bytes, kind: usize) -> (SignerKey, Vec<u8>, Vec<u8>) {
    let message = bytes.fill::<48>().to_vec();
    let secret = bytes.scalar();
    let nonce = bytes.scalar();
    let torsion = EIGHT_TORSION[1 + bytes.below(7)];
    let identity = EdwardsPoint::default();
    let key = (ED25519_BASEPOINT_POINT * secret).compress().to_bytes();
    let valid = sign_raw(secret, key, nonce, identity, &message);
    match kind {
        // Valid.
        0 | 1 => (ed25519_key(key), message, valid),
        // A flipped bit, in `R` or in `s`.
        2 => {
            let mut signature = valid;
            let bit = bytes.below(512);
            signature[bit / 8] ^= 1 << (bit % 8);
            (ed25519_key(key), message, signature)
        }
        // Another message.
        3 => (ed25519_key(key), b"tampered".to_vec(), valid),
        // Wrong length.
        4 => {
            let mut signature = valid;
            if bytes.below(2) == 0 {
                signature.pop();
            } else {
                signature.push(0);
            }
            (ed25519_key(key), message, signature)
        }
        // `s ≥ ℓ`: `s + ℓ` fits in 32 bytes for every reduced `s`.
        5 => {
            let s = plus_ell(&valid[32..]);
            (ed25519_key(key), message, [&valid[..32], &s].concat())
        }
        // `R` with a small-order term, signed by the key holder.
        6 => {
            let signature = sign_raw(secret, key, nonce, torsion, &message);
            (ed25519_key(key), message, signature)
        }
        // A key with a small-order term, and a signature that verifies
        // under the cofactored equation only.
        7 => {
            let key = (ED25519_BASEPOINT_POINT * secret + torsion)
                .compress()
                .to_bytes();
            let signature = sign_raw(secret, key, nonce, identity, &message);
            (ed25519_key(key), message, signature)
        }
        // A small-order key with `R` the identity and `s = 0`: verifies for
        // every message under ring's equation when `k·A` vanishes.
        8 => {
            let key = torsion.compress().to_bytes();
            let mut signature = identity.compress().to_bytes().to_vec();
            signature.extend_from_slice(&[0; 32]);
            (ed25519_key(key), message, signature)
        }
        // `R` encoded non-canonically (the identity as y = p + 1), key the
        // identity: the batch would accept it, ring does not.
        9 => {
            let mut r = [0xff; 32];
            r[0] = 0xee;
            r[31] = 0x7f;
            let key = identity.compress().to_bytes();
            (ed25519_key(key), message, [&r[..], &[0; 32]].concat())
        }
        // `R` the identity with the sign bit set (x = 0 has no sign: a
        // second encoding), key the identity (canonical, torsion-free).
        10 => {
            let mut r = [0; 32];
            r[0] = 1;
            r[31] = 0x80;
            let key = identity.compress().to_bytes();
            (ed25519_key(key), message, [&r[..], &[0; 32]].concat())
        }
        // The key encoded non-canonically (the identity as y = p + 1).
        _ => {
            let mut key = [0xff; 32];
            key[0] = 0xee;
            key[31] = 0x7f;
            let signature = [identity.compress().to_bytes(), [0; 32]].concat();
            (ed25519_key(key), message, signature)
        }
    }
}

const KINDS: usize = 12;

fn single(key: &SignerKey, message: &[u8], signature: &[u8]) -> Result<(), VerifyError> {
    key.verify(webpki::ring::ED25519, message, signature)
}

fn same(batch: &Result<(), VerifyError>, single: &Result<(), VerifyError>) -> bool {
    match (batch, single) {
        (Ok(()), Ok(())) => true,
        (Err(batch), Err(single)) => {
            std::mem::discriminant(batch) == std::mem::discriminant(single)
        }
        _ => false,
    }
}

#[test]
fn batch_results_equal_single_verification() {
    let mut bytes = Bytes(0x5eed_0017);
    let mut seen_kinds = [(0usize, 0usize); KINDS];
    for size in [1, 2, 3, 8, 17, 32, 64] {
        // Round 0: valid only; rounds 1-5: every kind, shuffled; then one
        // round per kind with a single member of it among valid ones (a
        // lone bad member is what a batch could hide).
        for round in 0..6 + KINDS {
            let lone = bytes.below(size);
            let cases: Vec<_> = (0..size)
                .map(|index| {
                    let kind = match round {
                        0 => 0,
                        1..6 => (index + bytes.below(KINDS)) % KINDS,
                        _ if index == lone => round - 6,
                        _ => 0,
                    };
                    (kind, case(&mut bytes, kind))
                })
                .collect();
            let items: Vec<_> = cases
                .iter()
                .map(|(_, (key, message, signature))| BatchItem {
                    key,
                    message,
                    signature,
                })
                .collect();
            let batched = verify_ed25519(&items);
            for ((kind, (key, message, signature)), batch) in cases.iter().zip(&batched) {
                let alone = single(key, message, signature);
                assert!(
                    same(batch, &alone),
                    "kind {kind}, batch of {size}: batch {batch:?}, single {alone:?}"
                );
                if alone.is_ok() {
                    seen_kinds[*kind].0 += 1;
                } else {
                    seen_kinds[*kind].1 += 1;
                }
            }
        }
    }
    // The inputs cover what they mean to: valid ones pass, tampered,
    // malformed and torsioned ones fail, and the small-order key with the
    // identity nonce passes at least sometimes (ring accepts it).
    let [valid, _, flipped, tampered, length, big_s, torsion_r, ..] = seen_kinds;
    assert_eq!(valid.1, 0, "{seen_kinds:?}");
    assert!(valid.0 > 100);
    for refused in [flipped, tampered, length, big_s, torsion_r] {
        assert_eq!(refused.0, 0, "{seen_kinds:?}");
        assert!(refused.1 > 0);
    }
    assert!(seen_kinds[8].0 > 0, "{seen_kinds:?}");
}

#[test]
fn screened_inputs_stay_out_of_batches() {
    let mut bytes = Bytes(17);
    for kind in 5..KINDS {
        if kind == 10 {
            // Its key, the identity, is batchable; its signature is not.
            let (_, _, signature) = case(&mut bytes, kind);
            assert!(batchable_signature(&signature).is_none());
            continue;
        }
        let (key, _, signature) = case(&mut bytes, kind);
        let batchable = key.is_batchable() && batchable_signature(&signature).is_some();
        assert!(!batchable, "kind {kind} would enter a batch");
    }
    let (key, _, signature) = case(&mut bytes, 0);
    assert!(key.is_batchable() && batchable_signature(&signature).is_some());
}

/// Without the screening, ed25519-dalek's batch accepts what ring refuses:
/// the reason the screening exists.
#[test]
fn an_unscreened_batch_would_accept_a_torsioned_nonce() {
    let mut bytes = Bytes(99);
    let mut accepted = 0;
    for _ in 0..32 {
        let (key, message, signature) = case(&mut bytes, 6);
        let (good_key, good_message, good_signature) = case(&mut bytes, 0);
        assert!(single(&key, &message, &signature).is_err());
        let signatures = [
            Signature::from_slice(&signature).unwrap(),
            Signature::from_slice(&good_signature).unwrap(),
        ];
        let keys = [*key.batchable().unwrap(), *good_key.batchable().unwrap()];
        if ed25519_dalek::verify_batch(
            &[message.as_slice(), good_message.as_slice()],
            &signatures,
            &keys,
        )
        .is_ok()
        {
            accepted += 1;
        }
    }
    assert!(accepted > 0);
}

#[test]
fn the_canonical_check_equals_a_compression_round_trip() {
    let mut bytes = Bytes(7);
    let mut encodings: Vec<[u8; 32]> = (0..2000).map(|_| bytes.fill::<32>()).collect();
    // Near p, near 0, ±1 with and without the sign bit, the torsion points.
    for low in [0u8, 1, 2, 0xec, 0xed, 0xee, 0xf0, 0xff] {
        for (fill, sign) in [(0xffu8, 0x7fu8), (0xff, 0xff), (0, 0), (0, 0x80)] {
            let mut encoding = [fill; 32];
            encoding[0] = low;
            encoding[31] = sign;
            encodings.push(encoding);
        }
    }
    for point in EIGHT_TORSION {
        let encoding = point.compress().to_bytes();
        encodings.push(encoding);
        let mut signed = encoding;
        signed[31] ^= 0x80;
        encodings.push(signed);
    }
    let mut decoded = 0;
    for encoding in encodings {
        if let Some(point) = CompressedEdwardsY(encoding).decompress() {
            decoded += 1;
            assert_eq!(
                is_canonical_encoding(&encoding),
                point.compress().to_bytes() == encoding,
                "{encoding:02x?}"
            );
        }
    }
    assert!(decoded > 500);
}
