//! Revocation checks («отсутствие в списке отозванных»): a relying party (the
//! gateway) asks the НУЦ through its status adapter and caches each certificate's answer for a
//! bounded time, so a revocation takes effect within `checks.revocation_cache_ms`
//! (zero: every envelope asks).

use std::time::Duration;

use dashmap::DashMap;
use tokio::time::Instant;
use tower::ServiceExt;

use crate::ca::CertificateStatus;
use crate::status::StatusAdapter;
use crate::verify::VerifyError;

/// Per-certificate cache in front of the НУЦ status adapter.
#[derive(Debug)]
pub struct RevocationCheck {
    adapter: StatusAdapter,
    ttl: Duration,
    answers: DashMap<Vec<u8>, (CertificateStatus, Instant)>,
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

    /// Refuses a revoked certificate. A serial the НУЦ does not know passes:
    /// the regulations ask for absence from the revocation list, and
    /// certificates of other trusted CAs are not in this one's.
    pub async fn check(&self, serial: &[u8]) -> Result<(), VerifyError> {
        let cached = self
            .answers
            .get(serial)
            .filter(|entry| entry.1.elapsed() < self.ttl)
            .map(|entry| entry.0.clone());
        let status = match cached {
            Some(status) => status,
            None => {
                let status = self
                    .adapter
                    .clone()
                    .oneshot(serial.to_vec())
                    .await
                    .map_err(VerifyError::StatusUnavailable)?;
                if !self.ttl.is_zero() {
                    self.answers
                        .insert(serial.to_vec(), (status.clone(), Instant::now()));
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

#[cfg(test)]
mod tests;
