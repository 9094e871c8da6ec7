//! Ed25519 signatures of envelopes checked at the same time, verified as one
//! batch (`checks.batch_ed25519`). One task per gateway gathers what arrives
//! within `checks.batch_wait_us` (or `checks.batch_max` signatures), and
//! [`shep_nuc::verify::batch::verify_ed25519`] verifies them: a batch that
//! fails is verified member by member, so only the bad ones are refused, and
//! every result equals single verification. Nothing is ever skipped: when the
//! task is gone (its runtime ended), the caller verifies alone.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use shep_nuc::verify::batch::{BatchItem, verify_ed25519};
use shep_nuc::verify::{SignerKey, VerifyError};
use tokio::sync::{mpsc, oneshot};

/// How envelopes are gathered into a batch.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BatchSettings {
    /// The most signatures in one batch.
    pub(crate) max: usize,
    /// How long the first signature of a batch waits for others.
    pub(crate) wait: Duration,
}

/// Signatures waiting for the gathering task, at most; beyond, callers
/// verify alone rather than queue.
const QUEUE: usize = 4096;

#[derive(Debug)]
struct Job {
    key: Arc<SignerKey>,
    message: Vec<u8>,
    signature: Vec<u8>,
    reply: oneshot::Sender<Result<(), VerifyError>>,
}

/// The handle to the gathering task, started on first use (inside the
/// runtime that serves requests).
#[derive(Debug)]
pub(crate) struct Ed25519Batcher {
    settings: BatchSettings,
    jobs: OnceLock<mpsc::Sender<Job>>,
}

impl Ed25519Batcher {
    pub(crate) fn new(settings: BatchSettings) -> Self {
        Self {
            settings,
            jobs: OnceLock::new(),
        }
    }

    /// Verifies `signature` over `message` with `key`, in a batch with the
    /// signatures arriving together.
    pub(crate) async fn verify(
        &self,
        key: &Arc<SignerKey>,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), VerifyError> {
        let jobs = self.jobs.get_or_init(|| {
            let (sender, receiver) = mpsc::channel(QUEUE);
            tokio::spawn(gather(receiver, self.settings));
            sender
        });
        let (reply, answer) = oneshot::channel();
        let job = Job {
            key: key.clone(),
            message: message.to_vec(),
            signature: signature.to_vec(),
            reply,
        };
        if jobs.try_send(job).is_ok()
            && let Ok(result) = answer.await
        {
            return result;
        }
        // Full queue, or the task is gone: never skip, verify here.
        alone(key, message, signature)
    }
}

fn alone(key: &SignerKey, message: &[u8], signature: &[u8]) -> Result<(), VerifyError> {
    key.verify_ed25519(message, signature)
}

/// Gathers signatures into batches and verifies them, until every sender
/// is gone.
async fn gather(mut jobs: mpsc::Receiver<Job>, settings: BatchSettings) {
    let mut batch = Vec::with_capacity(settings.max);
    while let Some(first) = jobs.recv().await {
        batch.push(first);
        // Wall-clock on purpose: the bound is on real time a signature
        // waits, and a paused test clock would never end the wait.
        #[allow(clippy::disallowed_types)]
        let started = std::time::Instant::now();
        loop {
            while batch.len() < settings.max {
                match jobs.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            if batch.len() >= settings.max || started.elapsed() >= settings.wait {
                break;
            }
            // Lets the handlers that bring the next signatures run.
            tokio::task::yield_now().await;
        }
        let items: Vec<_> = batch
            .iter()
            .map(|job| BatchItem {
                key: &job.key,
                message: &job.message,
                signature: &job.signature,
            })
            .collect();
        let results = verify_ed25519(&items);
        for (job, result) in batch.drain(..).zip(results) {
            // The caller may have gone (its request cancelled).
            let _ = job.reply.send(result);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shep_nuc::ca::{CertificateAuthority, IdentitySpec};
    use shep_nuc::verify::SignatureVerifier;
    use time::OffsetDateTime;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_signatures_get_their_single_results() {
        let ca = CertificateAuthority::generate().unwrap();
        let verifier = SignatureVerifier::new(
            &[ca.root_der().to_vec()],
            &[ca.issuing_der().to_vec()],
            Duration::from_secs(60),
        )
        .unwrap();
        let batcher = Arc::new(Ed25519Batcher::new(BatchSettings {
            max: 8,
            wait: Duration::from_micros(200),
        }));
        let mut calls = Vec::new();
        for index in 0..40u8 {
            let signer = ca
                .issue(&IdentitySpec::individual("850315301235", "СЕРИКБАЕВ"))
                .unwrap()
                .signer()
                .unwrap();
            let body = vec![index; 100];
            let mut signature = signer.sign(&body).unwrap();
            match index % 5 {
                // A flipped bit.
                1 => signature.value[40] ^= 1,
                // Wrong length.
                2 => {
                    signature.value.pop();
                }
                _ => {}
            }
            let prepared = verifier
                .prepare(Some(&signature), OffsetDateTime::now_utc())
                .unwrap();
            let key = prepared.batchable_ed25519().unwrap().clone();
            let expected = key.verify_ed25519(&body, &signature.value);
            let batcher = batcher.clone();
            calls.push(tokio::spawn(async move {
                let result = batcher.verify(&key, &body, &signature.value).await;
                (index, format!("{result:?}"), format!("{expected:?}"))
            }));
        }
        for call in calls {
            let (index, result, expected) = call.await.unwrap();
            assert_eq!(result, expected, "signature {index}");
            assert_eq!(result == "Ok(())", !matches!(index % 5, 1 | 2));
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn through_the_engine_only_bad_signatures_are_refused() {
        use crate::testing;
        use shep_proto::envelope::v1::{Body, Reason};
        let mut config = crate::config::GatewayConfig::default();
        config.checks.verify_signatures = true;
        config.checks.batch_ed25519 = true;
        config.checks.batch_wait_us = 200;
        let engine = testing::signing_engine_with(config);
        let signer = testing::ca()
            .issue(&IdentitySpec::individual(
                testing::APPLICANT,
                "СЕРИКБАЕВ НУРЛАН",
            ))
            .unwrap()
            .signer()
            .unwrap();
        let mut calls = Vec::new();
        for index in 0..24 {
            let body = testing::lookup(&testing::message_id()).body;
            let mut envelope = signer
                .seal(&<Body as prost::Message>::decode(body.as_slice()).unwrap())
                .unwrap();
            let bad = index % 4 == 1;
            if bad {
                envelope.signature.as_mut().unwrap().value[10] ^= 0x01;
            }
            let engine = engine.clone();
            calls.push(tokio::spawn(async move {
                let result = crate::pipeline::call(
                    &engine,
                    envelope,
                    &crate::toolkit::CallContext::default(),
                )
                .await;
                (bad, result.map(drop).map_err(|error| error.reason()))
            }));
        }
        for call in calls {
            let (bad, result) = call.await.unwrap();
            if bad {
                assert_eq!(result, Err(Reason::SignatureInvalid));
            } else {
                assert_eq!(result, Ok(()));
            }
        }
    }
}
