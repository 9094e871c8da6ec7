use std::sync::Arc;

use shep_proto::envelope::v1::Reason;

use super::*;
use crate::ca::{CertificateAuthority, IdentitySpec, RevocationReason, serial_of};
use crate::status::{CertificateId, InProcessNuc};

fn issued_serial(ca: &CertificateAuthority) -> CertificateId {
    let issued = ca
        .issue(&IdentitySpec::individual("850315301235", "СЕРИКБАЕВ"))
        .unwrap();
    CertificateId {
        issuer: ca.issuer_name(),
        serial: serial_of(&issued.certificate_der).unwrap(),
    }
}

#[tokio::test(start_paused = true)]
async fn a_revocation_takes_effect_once_the_cached_answer_expires() {
    let ca = Arc::new(CertificateAuthority::generate().unwrap());
    let serial = issued_serial(&ca);
    let check = RevocationCheck::new(
        InProcessNuc::new(ca.clone()).boxed(),
        Duration::from_secs(60),
    );
    check.check(&serial).await.unwrap();
    ca.revoke(&serial.serial, RevocationReason::KeyCompromise)
        .unwrap();
    // Still the cached «good» within the TTL.
    tokio::time::advance(Duration::from_secs(59)).await;
    check.check(&serial).await.unwrap();
    tokio::time::advance(Duration::from_secs(2)).await;
    let refused = check.check(&serial).await.unwrap_err();
    assert!(
        matches!(
            refused,
            VerifyError::Revoked {
                reason: RevocationReason::KeyCompromise,
                ..
            }
        ),
        "{refused}"
    );
    assert_eq!(refused.reason(), Reason::CertificateRevoked);
}

#[tokio::test]
async fn without_a_cache_every_check_asks_and_unknown_serials_pass() {
    let ca = Arc::new(CertificateAuthority::generate().unwrap());
    let serial = issued_serial(&ca);
    let check = RevocationCheck::new(InProcessNuc::new(ca.clone()).boxed(), Duration::ZERO);
    check.check(&serial).await.unwrap();
    ca.revoke(&serial.serial, RevocationReason::Superseded)
        .unwrap();
    assert!(matches!(
        check.check(&serial).await,
        Err(VerifyError::Revoked { .. })
    ));
    // Another CA's certificate is not on this НУЦ's list, even with the
    // serial of one that is revoked here.
    let elsewhere = CertificateId {
        issuer: b"another issuer".to_vec(),
        serial: serial.serial.clone(),
    };
    check.check(&elsewhere).await.unwrap();
    check
        .check(&CertificateId {
            issuer: serial.issuer.clone(),
            serial: vec![0x01, 0x02],
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn a_nuc_nobody_listens_on_is_status_unavailable() {
    let url = {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let remote = crate::status::RemoteNuc::new(&url).unwrap().boxed();
    let check = RevocationCheck::new(remote, Duration::from_secs(60));
    let refused = check
        .check(&CertificateId {
            issuer: Vec::new(),
            serial: vec![0x01],
        })
        .await
        .unwrap_err();
    assert!(
        matches!(
            &refused,
            VerifyError::StatusUnavailable(crate::status::StatusError::Remote(_))
        ),
        "{refused}"
    );
    assert_eq!(refused.reason(), Reason::RegistryUnavailable);
    assert!(std::error::Error::source(&refused).is_some());
}

#[tokio::test]
async fn the_cache_stays_bounded_whatever_the_signers() {
    let ca = Arc::new(CertificateAuthority::generate().unwrap());
    let check = RevocationCheck::new(InProcessNuc::new(ca).boxed(), Duration::from_secs(600));
    for serial in 0..(MAX_ANSWERS as u32 + 10) {
        check
            .check(&CertificateId {
                issuer: b"some issuer".to_vec(),
                serial: serial.to_be_bytes().to_vec(),
            })
            .await
            .unwrap();
    }
    assert!(check.cached() <= MAX_ANSWERS, "{}", check.cached());
    assert!(check.cached() > 0);
}
