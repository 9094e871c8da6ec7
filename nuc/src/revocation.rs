//! Revocation checks («отсутствие в списке отозванных»): a relying party (the
//! gateway) asks the НУЦ through its status adapter and caches each certificate's answer for a
//! bounded time, so a revocation takes effect within `checks.revocation_cache_ms`
//! (zero: every envelope asks).

use std::time::Duration;

use dashmap::DashMap;
use tokio::time::Instant;
use tower::ServiceExt;

use crate::ca::CertificateStatus;
use crate::status::{CertificateId, StatusAdapter};
use crate::verify::VerifyError;

/// Answers kept at most; past it the expired go, and if that is not enough,
/// all (each is asked again once): memory stays bounded under any signers.
const MAX_ANSWERS: usize = 65_536;

/// Per-certificate cache in front of the НУЦ status adapter, keyed by issuer
/// and serial (serials are unique per issuer only).
#[derive(Debug)]
pub struct RevocationCheck {
    adapter: StatusAdapter,
    ttl: Duration,
    answers: DashMap<CertificateId, (CertificateStatus, Instant)>,
}

impl RevocationCheck {
    /// Asks `adapter`, remembering answers for `ttl`.
    pub fn new(adapter: StatusAdapter, ttl: Duration) -> Self {
        Self {
            adapter,
            ttl,
            answers: DashMap::new(),
        }
    }

    /// Refuses a revoked certificate. A certificate the НУЦ does not know
    /// passes: the regulations ask for absence from the revocation list, and
    /// certificates of other trusted CAs are not in this one's.
    pub async fn check(&self, id: &CertificateId) -> Result<(), VerifyError> {
        let cached = self
            .answers
            .get(id)
            .filter(|entry| entry.1.elapsed() < self.ttl)
            .map(|entry| entry.0.clone());
        let status = match cached {
            Some(status) => status,
            None => {
                let status = self
                    .adapter
                    .clone()
                    .oneshot(id.clone())
                    .await
                    .map_err(VerifyError::StatusUnavailable)?;
                if !self.ttl.is_zero() {
                    if self.answers.len() >= MAX_ANSWERS {
                        self.answers.retain(|_, (_, at)| at.elapsed() < self.ttl);
                        if self.answers.len() >= MAX_ANSWERS {
                            self.answers.clear();
                        }
                    }
                    self.answers
                        .insert(id.clone(), (status.clone(), Instant::now()));
                }
                status
            }
        };
        match status {
            CertificateStatus::Revoked { at, reason } => Err(VerifyError::Revoked { at, reason }),
            CertificateStatus::Good | CertificateStatus::Unknown => Ok(()),
        }
    }
}

impl RevocationCheck {
    /// Answers cached now (for tests of the bound).
    pub fn cached(&self) -> usize {
        self.answers.len()
    }
}

#[cfg(test)]
mod tests;
