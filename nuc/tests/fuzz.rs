//! Fuzz properties of the certificate and signature path (docs/FUZZING.md):
//! a fixed budget here, `PROPTEST_CASES=… cargo test --release -p shep-nuc
//! --test fuzz` for a long run.

use std::sync::OnceLock;
use std::time::Duration;

use proptest::prelude::*;
use shep_nuc::ca::{CertificateAuthority, IdentitySpec, KeyAlgorithm, Signer};
use shep_nuc::verify::{SignatureVerifier, VerifyError};
use shep_proto::envelope::v1::{Reason, Signature};
use time::OffsetDateTime;

/// `cases` per target, unless `PROPTEST_CASES` asks for a longer run: a
/// config's explicit `cases` would override the variable proptest reads.
fn budget(cases: u32) -> ProptestConfig {
    let config = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_some() {
        config
    } else {
        ProptestConfig { cases, ..config }
    }
}

const BODY: &[u8] = b"the signed body";

/// A CA, a verifier trusting it, and one signer per key type the CA issues
/// quickly (RSA key generation would dominate the run).
struct Fixture {
    verifier: SignatureVerifier,
    signers: Vec<Signer>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let ca = CertificateAuthority::generate().expect("a test CA");
        let verifier = SignatureVerifier::new(
            &[ca.root_der().to_vec()],
            &[ca.issuing_der().to_vec()],
            Duration::from_secs(300),
        )
        .expect("the CA's chain");
        let signers = [KeyAlgorithm::Ed25519, KeyAlgorithm::EcdsaP256]
            .into_iter()
            .map(|algorithm| {
                let spec = IdentitySpec {
                    algorithm,
                    ..IdentitySpec::individual("850315301235", "Fuzz Signer")
                };
                ca.issue(&spec)
                    .and_then(|issued| issued.signer())
                    .expect("an issued signer")
            })
            .collect();
        Fixture { verifier, signers }
    })
}

/// One edit of `bytes`: flip bits of a byte, drop or insert a byte, cut the
/// tail, or overwrite a run. Positions are taken modulo the length.
#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Remove(usize),
    Insert(usize, u8),
    Truncate(usize),
    Overwrite(usize, Vec<u8>),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<usize>(), 1u8..=255).prop_map(|(at, mask)| Mutation::Flip(at, mask)),
        1 => any::<usize>().prop_map(Mutation::Remove),
        1 => (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Mutation::Insert(at, byte)),
        1 => any::<usize>().prop_map(Mutation::Truncate),
        1 => (any::<usize>(), proptest::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(at, run)| Mutation::Overwrite(at, run)),
    ]
}

fn mutate(bytes: &[u8], mutation: &Mutation) -> Vec<u8> {
    let mut out = bytes.to_vec();
    if out.is_empty() {
        return out;
    }
    let len = out.len();
    match mutation {
        Mutation::Flip(at, mask) => out[at % len] ^= mask,
        Mutation::Remove(at) => {
            out.remove(at % len);
        }
        Mutation::Insert(at, byte) => out.insert(at % (len + 1), *byte),
        Mutation::Truncate(at) => out.truncate(at % len),
        Mutation::Overwrite(at, run) => {
            for (slot, byte) in out.iter_mut().skip(at % len).zip(run) {
                *slot = *byte;
            }
        }
    }
    out
}

fn verify(signature: &Signature) -> Result<(), VerifyError> {
    fixture()
        .verifier
        .verify(Some(signature), BODY, OffsetDateTime::now_utc())
        .map(drop)
}

/// A refusal's reason is one of the signature's own, never an internal one.
fn assert_refusal(result: Result<(), VerifyError>) -> Result<(), TestCaseError> {
    let error = result.expect_err("refused");
    prop_assert!(
        !matches!(
            error.reason(),
            Reason::Internal | Reason::RegistryUnavailable | Reason::Unspecified
        ),
        "{error}: {:?}",
        error.reason()
    );
    Ok(())
}

proptest! {
    #![proptest_config(budget(256))]

    #[test]
    fn random_certificates_and_signatures_are_refused(
        algorithm in prop_oneof![Just(1i32), Just(2), Just(3), any::<i32>()],
        certificate_der in proptest::collection::vec(any::<u8>(), 0..600),
        value in proptest::collection::vec(any::<u8>(), 0..128),
        chain_der in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..3),
    ) {
        assert_refusal(verify(&Signature { algorithm, certificate_der, value, chain_der }))?;
    }

    #[test]
    fn a_mutated_certificate_is_never_accepted(
        signer in 0usize..2,
        mutation in mutation(),
    ) {
        let signer = &fixture().signers[signer];
        let mut signature = signer.sign(BODY).expect("signs");
        let original = signature.certificate_der.clone();
        signature.certificate_der = mutate(&original, &mutation);
        let result = verify(&signature);
        if signature.certificate_der == original {
            prop_assert!(result.is_ok(), "{:?}", result.err());
        } else {
            assert_refusal(result)?;
        }
    }

    #[test]
    fn a_mutated_signature_value_or_algorithm_is_never_accepted(
        signer in 0usize..2,
        mutation in mutation(),
        algorithm in prop_oneof![Just(None), (any::<i32>()).prop_map(Some)],
    ) {
        let signer = &fixture().signers[signer];
        let mut signature = signer.sign(BODY).expect("signs");
        let (original_value, original_algorithm) = (signature.value.clone(), signature.algorithm);
        signature.value = mutate(&original_value, &mutation);
        if let Some(algorithm) = algorithm {
            signature.algorithm = algorithm;
        }
        let result = verify(&signature);
        if signature.value == original_value && signature.algorithm == original_algorithm {
            prop_assert!(result.is_ok(), "{:?}", result.err());
        } else {
            assert_refusal(result)?;
        }
    }

    #[test]
    fn a_signature_over_other_bytes_is_refused(
        signer in 0usize..2,
        mutation in mutation(),
    ) {
        let signer = &fixture().signers[signer];
        let signature = signer.sign(BODY).expect("signs");
        let body = mutate(BODY, &mutation);
        let result = fixture()
            .verifier
            .verify(Some(&signature), &body, OffsetDateTime::now_utc())
            .map(drop);
        if body == BODY {
            prop_assert!(result.is_ok(), "{:?}", result.err());
        } else {
            prop_assert!(matches!(result, Err(VerifyError::SignatureInvalid)), "{result:?}");
        }
    }
}
