//! Where a run's requests come from, signed while it runs: the gateway
//! refuses an envelope whose `message_date` is further from its clock than
//! its skew (300 s by default), so nothing signed once up front lasts a run of
//! any length.
//!
//! Lookups go round a pool (the gateway keeps nothing per lookup, so sending
//! one again is a fresh check of its own), and a background thread re-signs
//! the pool's slots in turn, each once per `resign` period. Submissions must
//! each be new: background threads sign them ahead of the senders into a
//! bounded queue, so signing stays off the senders' path and the memory taken
//! is the queue's, whatever the length of the run.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

/// Makes one signed request (an envelope, or its pre-encoded frame).
pub(super) type Sign<T> = Arc<dyn Fn() -> anyhow::Result<T> + Send + Sync>;

/// How requests are signed during a run.
#[derive(Debug, Clone)]
pub struct Signing {
    /// Lookups: the envelopes sent in turn, again and again.
    pub pool: usize,
    /// Lookups: how often each envelope of the pool is signed anew.
    pub resign: Duration,
    /// Submissions: how many the run sends at most (`None`: as many as fit
    /// in its duration).
    pub limit: Option<u64>,
    /// Submissions: how many are signed ahead of the senders at most.
    pub ahead: usize,
    /// Submissions: threads signing them.
    pub signers: usize,
}

/// The source of `settings.scenario`: a pool for lookups, a queue for
/// submissions.
pub(super) fn start<T: Clone + Send + 'static>(
    sign: Sign<T>,
    settings: &super::Settings,
) -> anyhow::Result<(Source<T>, SignedAhead)> {
    match settings.scenario {
        super::Scenario::Lookup => Source::pool(sign, &settings.signing),
        super::Scenario::Submit => Source::queue(sign, &settings.signing),
    }
}

/// What the signing up front showed.
#[derive(Debug, Clone, Copy)]
pub struct SignedAhead {
    pub count: usize,
    /// Envelopes per second on one thread.
    pub rate: f64,
}

/// The requests of a run, handed out in order to any number of workers on
/// any number of runtimes.
pub(super) enum Source<T> {
    Pool(Arc<Pool<T>>),
    Queue(Queue<T>),
}

impl<T> std::fmt::Debug for Source<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Pool(pool) => write!(f, "Pool({})", pool.slots.len()),
            Self::Queue(_) => write!(f, "Queue"),
        }
    }
}

impl<T: Clone + Send + 'static> Source<T> {
    /// A pool of `signing.pool` requests kept fresh by a background thread;
    /// it stops when the pool is dropped.
    pub(super) fn pool(sign: Sign<T>, signing: &Signing) -> anyhow::Result<(Self, SignedAhead)> {
        let started = Instant::now();
        let slots = (0..signing.pool.max(1))
            .map(|_| sign().map(Mutex::new))
            .collect::<anyhow::Result<Box<[_]>>>()?;
        let ahead = SignedAhead::measured(slots.len(), started);
        let pool = Arc::new(Pool {
            slots,
            next: AtomicUsize::new(0),
            failure: Mutex::new(None),
        });
        let weak = Arc::downgrade(&pool);
        let pause = signing.resign.div_f64(pool.slots.len() as f64);
        std::thread::Builder::new()
            .name("shep-bench-resign".to_owned())
            .spawn(move || resign(&weak, &sign, pause))?;
        Ok((Self::Pool(pool), ahead))
    }

    /// A queue that `signing.signers` background threads keep filled with
    /// new requests, up to `signing.ahead` waiting; they stop when the queue
    /// is dropped or `signing.limit` are signed. Returns once the queue is
    /// full, so the run starts with a head start.
    pub(super) fn queue(sign: Sign<T>, signing: &Signing) -> anyhow::Result<(Self, SignedAhead)> {
        let limit = signing.limit.unwrap_or(u64::MAX);
        let ahead = signing.ahead.max(1);
        let (sender, receiver) = mpsc::channel(ahead);
        let started = Instant::now();
        let first = (ahead as u64).min(limit);
        for _ in 0..first {
            sender
                .try_send(sign()?)
                .map_err(|_| anyhow::anyhow!("the signing queue is smaller than its capacity"))?;
        }
        let measured = SignedAhead::measured(first as usize, started);
        let shared = Arc::new(Signed {
            sign,
            remaining: AtomicU64::new(limit - first),
            failure: Mutex::new(None),
        });
        for index in 0..signing.signers.max(1) {
            let sender = sender.clone();
            let shared = shared.clone();
            std::thread::Builder::new()
                .name(format!("shep-bench-sign-{index}"))
                .spawn(move || shared.fill(&sender))?;
        }
        Ok((
            Self::Queue(Queue {
                receiver: tokio::sync::Mutex::new(receiver),
                signed: shared,
            }),
            measured,
        ))
    }

    /// The next request; `None` when a limited queue is used up, or its
    /// signing failed.
    pub(super) async fn take(&self) -> Option<T> {
        match self {
            Self::Pool(pool) => {
                let index = pool.next.fetch_add(1, Ordering::Relaxed) % pool.slots.len();
                Some(lock(&pool.slots[index]).clone())
            }
            Self::Queue(queue) => queue.receiver.lock().await.recv().await,
        }
    }

    /// Why background signing stopped early, if it did.
    pub(super) fn failure(&self) -> Option<String> {
        match self {
            Self::Pool(pool) => lock(&pool.failure).clone(),
            Self::Queue(queue) => lock(&queue.signed.failure).clone(),
        }
    }
}

impl SignedAhead {
    fn measured(count: usize, started: Instant) -> Self {
        Self {
            count,
            rate: count as f64 / started.elapsed().as_secs_f64().max(f64::EPSILON),
        }
    }
}

pub(super) struct Pool<T> {
    slots: Box<[Mutex<T>]>,
    next: AtomicUsize,
    failure: Mutex<Option<String>>,
}

/// Signs the slots of `pool` anew in turn, one every `pause`, until the pool
/// is gone. A failure is kept for the report; the slots keep their last
/// envelopes, which the gateway refuses once they are stale.
fn resign<T>(pool: &Weak<Pool<T>>, sign: &Sign<T>, pause: Duration) {
    let mut index = 0;
    loop {
        std::thread::sleep(pause);
        let Some(pool) = pool.upgrade() else { return };
        match sign() {
            Ok(fresh) => *lock(&pool.slots[index]) = fresh,
            Err(error) => {
                *lock(&pool.failure) = Some(format!("re-signing the lookups: {error:#}"));
                return;
            }
        }
        index = (index + 1) % pool.slots.len();
    }
}

pub(super) struct Queue<T> {
    /// A lock around the receiver makes the queue multi-consumer; it is held
    /// only while taking one request.
    receiver: tokio::sync::Mutex<mpsc::Receiver<T>>,
    signed: Arc<Signed<T>>,
}

/// What the signing threads of a queue share.
struct Signed<T> {
    sign: Sign<T>,
    /// Still to sign; the threads stop at zero.
    remaining: AtomicU64,
    failure: Mutex<Option<String>>,
}

impl<T> Signed<T> {
    /// Signs into `sender` until the limit, a failure, or the receiver is
    /// dropped (the run is over).
    fn fill(&self, sender: &mpsc::Sender<T>) {
        while self
            .remaining
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok()
        {
            match (self.sign)() {
                Ok(request) => {
                    if sender.blocking_send(request).is_err() {
                        return;
                    }
                }
                Err(error) => {
                    *lock(&self.failure) = Some(format!("signing submissions: {error:#}"));
                    return;
                }
            }
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counter() -> (Sign<u64>, Arc<AtomicU64>) {
        let signed = Arc::new(AtomicU64::new(0));
        let count = signed.clone();
        (
            Arc::new(move || Ok(count.fetch_add(1, Ordering::SeqCst))),
            signed,
        )
    }

    fn signing(pool: usize, limit: Option<u64>, ahead: usize) -> Signing {
        Signing {
            pool,
            resign: Duration::from_secs(3600),
            limit,
            ahead,
            signers: 2,
        }
    }

    #[tokio::test]
    async fn a_pool_goes_round() {
        let (sign, _) = counter();
        let (pool, ahead) = Source::pool(sign, &signing(3, None, 1)).unwrap();
        assert_eq!(ahead.count, 3);
        let mut taken = Vec::new();
        for _ in 0..7 {
            taken.push(pool.take().await.unwrap());
        }
        assert_eq!(taken, [0, 1, 2, 0, 1, 2, 0]);
    }

    #[tokio::test]
    async fn a_pool_is_signed_anew_in_the_background() {
        let (sign, signed) = counter();
        let settings = Signing {
            resign: Duration::from_millis(10),
            ..signing(2, None, 1)
        };
        let (pool, _) = Source::pool(sign, &settings).unwrap();
        // Waits for events, not for a time (the bound only ends a hang): two
        // more signatures after the first two replace both slots.
        for _ in 0..10_000 {
            if signed.load(Ordering::SeqCst) >= 5 {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        let first = pool.take().await.unwrap();
        let second = pool.take().await.unwrap();
        assert!(first >= 2 && second >= 2, "{first} {second}");
    }

    #[tokio::test]
    async fn a_limited_queue_hands_out_each_request_once_then_ends() {
        let (sign, _) = counter();
        let (queue, ahead) = Source::queue(sign, &signing(0, Some(50), 8)).unwrap();
        assert_eq!(
            ahead.count, 8,
            "signed up to the queue's size before the run"
        );
        let mut taken = Vec::new();
        while let Some(request) = queue.take().await {
            taken.push(request);
        }
        taken.sort_unstable();
        assert_eq!(taken, (0..50).collect::<Vec<_>>());
        assert!(queue.failure().is_none());
    }

    #[tokio::test]
    async fn an_unlimited_queue_stays_bounded_and_its_signers_stop_with_it() {
        let (sign, signed) = counter();
        let (queue, _) = Source::queue(sign, &signing(0, None, 4)).unwrap();
        for _ in 0..100 {
            queue.take().await.unwrap();
        }
        // However long the run, the signers wait for room: at most the queue
        // plus one in the hands of each thread beyond what was taken.
        std::thread::sleep(Duration::from_millis(50));
        let bound = 100 + 4 + 2;
        assert!(signed.load(Ordering::SeqCst) <= bound);
        // Once the queue is gone, every signer stops at its next send.
        drop(queue);
        std::thread::sleep(Duration::from_millis(50));
        assert!(signed.load(Ordering::SeqCst) <= bound);
    }

    #[tokio::test]
    async fn a_failed_signature_ends_the_queue_with_the_reason() {
        let calls = Arc::new(AtomicU64::new(0));
        let count = calls.clone();
        let sign: Sign<u64> = Arc::new(move || {
            let n = count.fetch_add(1, Ordering::SeqCst);
            anyhow::ensure!(n < 3, "the key is gone");
            Ok(n)
        });
        let (queue, _) = Source::queue(sign, &signing(0, None, 2)).unwrap();
        let mut taken = 0;
        while queue.take().await.is_some() {
            taken += 1;
        }
        assert_eq!(taken, 3);
        let failure = queue.failure().unwrap();
        assert!(failure.contains("the key is gone"), "{failure}");
    }
}
