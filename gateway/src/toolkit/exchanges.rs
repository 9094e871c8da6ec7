//! The exchange journal: what crossed the gateway, kept for a test's
//! assertions in a bounded buffer (oldest dropped and counted). Not the
//! durable journal of applications (`crate::storage`): this one is in memory
//! and can be switched off for load runs.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use prost::Message;
use prost_types::Any;
use shep_proto::admin::v1::{
    Exchange, ExchangeFilter, VerifyExchangesRequest, VerifyExchangesResponse,
    verify_exchanges_request,
};
use time::OffsetDateTime;

use crate::error::code_name;
use crate::storage::timestamp;

/// Wraps a message as `google.protobuf.Any`; `name` is its full proto name.
pub fn any<M: Message>(name: &str, message: &M) -> Any {
    Any {
        type_url: format!("type.googleapis.com/{name}"),
        value: message.encode_to_vec(),
    }
}

/// One exchange as recorded; `sequence` and `time` are set by the journal.
#[derive(Debug, Clone, Default)]
pub struct Record {
    pub session: String,
    pub rpc: String,
    pub hop: &'static str,
    pub service_id: String,
    pub subject: String,
    pub message_id: String,
    pub request: Option<Any>,
    pub response: Option<Any>,
    /// `None` for a message without an outcome of its own (a stream message).
    pub code: Option<tonic::Code>,
    pub reason: String,
    pub error_message: String,
    pub duration: Duration,
    pub fault_id: String,
    pub stream_position: u64,
}

impl Record {
    /// Sets the outcome from an error status.
    pub fn failed(&mut self, status: &tonic::Status) {
        use tonic_types::StatusExt as _;
        self.code = Some(status.code());
        self.error_message = status.message().to_owned();
        if let Some(info) = status.get_details_error_info() {
            self.reason = info.reason;
            if let Some(fault) = info.metadata.get("fault_id") {
                self.fault_id = fault.clone();
            }
        }
    }
}

#[derive(Debug, Default)]
struct Ring {
    entries: VecDeque<Exchange>,
    next: u64,
    dropped: u64,
}

/// Where a node sharing its exchange journal sends what it records,
/// instead of its own buffer: the buffer then holds what comes back from
/// the shared journal ([`Exchanges::apply`]), every node's exchanges alike.
pub trait Outbox: Send + Sync + std::fmt::Debug {
    /// Hands `exchange` over; called on the hot path, so it must not block.
    fn send(&self, exchange: Exchange);
}

/// The bounded buffer of exchanges.
#[derive(Debug)]
pub struct Exchanges {
    enabled: AtomicBool,
    capacity: usize,
    ring: Mutex<Ring>,
    /// Set in a cluster (see [`Outbox`]).
    outbox: OnceLock<Arc<dyn Outbox>>,
}

impl Exchanges {
    /// A journal keeping the last `capacity` exchanges; off when not `enabled`.
    pub fn new(enabled: bool, capacity: usize) -> Self {
        Self {
            enabled: AtomicBool::new(enabled && capacity > 0),
            capacity: capacity.max(1),
            ring: Mutex::default(),
            outbox: OnceLock::new(),
        }
    }

    /// Sends what is recorded from now on to `outbox` rather than to the
    /// buffer; set once.
    pub fn share(&self, outbox: Arc<dyn Outbox>) {
        let _ = self.outbox.set(outbox);
    }

    /// The buffer's capacity.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Adds an exchange from the shared journal, numbered by it; `missed`
    /// are the ones before it the journal no longer holds.
    pub fn apply(&self, exchange: Exchange, missed: u64) {
        let mut ring = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        ring.dropped += missed;
        ring.next = exchange.sequence;
        Self::push(&mut ring, self.capacity, exchange);
    }

    fn push(ring: &mut Ring, capacity: usize, exchange: Exchange) {
        if ring.entries.len() == capacity {
            ring.entries.pop_front();
            ring.dropped += 1;
        }
        ring.entries.push_back(exchange);
    }

    /// How many exchanges of `session` (all for `None`) are held.
    pub fn count(&self, session: Option<&str>) -> usize {
        let ring = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        match session {
            None => ring.entries.len(),
            Some(id) => ring
                .entries
                .iter()
                .filter(|exchange| exchange.session == id)
                .count(),
        }
    }

    /// Whether exchanges are recorded. Callers skip building records when not.
    pub fn recording(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    /// Records one exchange built by `build` (only called when recording).
    pub fn record(&self, build: impl FnOnce() -> Record) {
        if !self.recording() {
            return;
        }
        let record = build();
        let mut exchange = Exchange {
            sequence: 0,
            time: Some(timestamp(OffsetDateTime::now_utc())),
            session: record.session,
            rpc: record.rpc,
            hop: record.hop.to_owned(),
            service_id: record.service_id,
            subject: record.subject,
            message_id: record.message_id,
            request: record.request,
            response: record.response,
            code: code_name(record.code.unwrap_or(tonic::Code::Ok)).to_owned(),
            reason: record.reason,
            error_message: record.error_message,
            duration_us: record.duration.as_micros() as u64,
            fault_id: record.fault_id,
            stream_position: record.stream_position,
        };
        if let Some(outbox) = self.outbox.get() {
            outbox.send(exchange);
            return;
        }
        let mut ring = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        ring.next += 1;
        exchange.sequence = ring.next;
        Self::push(&mut ring, self.capacity, exchange);
    }

    /// Exchanges matching `filter` (oldest first, at most `limit`), and the
    /// number dropped so far.
    pub fn list(&self, filter: &ExchangeFilter, limit: usize) -> (Vec<Exchange>, u64) {
        let ring = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        let found = ring
            .entries
            .iter()
            .filter(|exchange| matches(filter, exchange))
            .take(limit)
            .cloned()
            .collect();
        (found, ring.dropped)
    }

    /// Counts the exchanges matching the request's filter against its expectation.
    pub fn verify(&self, request: &VerifyExchangesRequest) -> VerifyExchangesResponse {
        let filter = request.filter.clone().unwrap_or_default();
        let ring = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        let matching: Vec<&Exchange> = ring
            .entries
            .iter()
            .filter(|exchange| matches(&filter, exchange))
            .collect();
        let count = matching.len() as u64;
        let (satisfied, expected) = match request.expect {
            Some(verify_exchanges_request::Expect::Exactly(n)) => {
                (count == n, format!("exactly {n}"))
            }
            Some(verify_exchanges_request::Expect::AtLeast(n)) => {
                (count >= n, format!("at least {n}"))
            }
            Some(verify_exchanges_request::Expect::AtMost(n)) => {
                (count <= n, format!("at most {n}"))
            }
            None => (count > 0, "at least 1".to_owned()),
        };
        VerifyExchangesResponse {
            satisfied,
            count,
            explanation: format!(
                "expected {expected} exchange(s) matching {}, saw {count}",
                describe(&filter)
            ),
            sample: matching.iter().take(20).map(|e| (*e).clone()).collect(),
            incomplete: ring.dropped > 0,
        }
    }

    /// Removes the exchanges of `session` (all for `None`, which also
    /// resets the dropped count); how many.
    pub fn clear(&self, session: Option<&str>) -> usize {
        let mut ring = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        let before = ring.entries.len();
        match session {
            None => {
                ring.entries.clear();
                ring.dropped = 0;
            }
            Some(id) => ring.entries.retain(|exchange| exchange.session != id),
        }
        before - ring.entries.len()
    }
}

fn matches(filter: &ExchangeFilter, exchange: &Exchange) -> bool {
    let field = |want: &str, have: &str| want.is_empty() || want == have;
    field(&filter.session, &exchange.session)
        && field(&filter.rpc, &exchange.rpc)
        && field(&filter.hop, &exchange.hop)
        && field(&filter.service_id, &exchange.service_id)
        && field(&filter.subject, &exchange.subject)
        && field(&filter.message_id, &exchange.message_id)
        && (filter.code.is_empty() || filter.code.eq_ignore_ascii_case(&exchange.code))
        && exchange.sequence > filter.after_sequence
}

fn describe(filter: &ExchangeFilter) -> String {
    let mut parts = Vec::new();
    for (name, value) in [
        ("session", &filter.session),
        ("rpc", &filter.rpc),
        ("hop", &filter.hop),
        ("service", &filter.service_id),
        ("subject", &filter.subject),
        ("message", &filter.message_id),
        ("code", &filter.code),
    ] {
        if !value.is_empty() {
            parts.push(format!("{name}={value}"));
        }
    }
    if parts.is_empty() {
        "any filter".to_owned()
    } else {
        parts.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(session: &str, subject: &str) -> Record {
        Record {
            session: session.into(),
            rpc: "registry/gbdfl".into(),
            hop: "registry",
            subject: subject.into(),
            ..Record::default()
        }
    }

    #[test]
    fn the_buffer_drops_the_oldest_and_counts_them() {
        let journal = Exchanges::new(true, 3);
        for n in 0..5 {
            journal.record(|| lookup("s", &n.to_string()));
        }
        let (kept, dropped) = journal.list(&ExchangeFilter::default(), 100);
        assert_eq!(dropped, 2);
        let subjects: Vec<&str> = kept.iter().map(|e| e.subject.as_str()).collect();
        assert_eq!(subjects, ["2", "3", "4"]);
        assert_eq!(kept[0].sequence, 3);
    }

    #[test]
    fn verify_counts_by_filter_and_explains() {
        let journal = Exchanges::new(true, 100);
        journal.record(|| lookup("a", "850315301235"));
        journal.record(|| lookup("a", "850315301235"));
        journal.record(|| lookup("b", "850315301235"));
        let request = VerifyExchangesRequest {
            filter: Some(ExchangeFilter {
                session: "a".into(),
                subject: "850315301235".into(),
                ..ExchangeFilter::default()
            }),
            expect: Some(verify_exchanges_request::Expect::Exactly(1)),
        };
        let answer = journal.verify(&request);
        assert!(!answer.satisfied);
        assert_eq!(answer.count, 2);
        assert!(
            answer.explanation.contains("exactly 1"),
            "{}",
            answer.explanation
        );
        assert_eq!(journal.clear(Some("a")), 2);
        assert_eq!(journal.list(&ExchangeFilter::default(), 10).0.len(), 1);
    }

    /// Keeps what it is sent.
    #[derive(Debug, Default)]
    struct Kept(Mutex<Vec<Exchange>>);

    impl Outbox for Kept {
        fn send(&self, exchange: Exchange) {
            self.0.lock().unwrap().push(exchange);
        }
    }

    #[test]
    fn a_shared_journal_holds_what_comes_back_numbered_by_the_stream() {
        let journal = Exchanges::new(true, 2);
        let outbox = Arc::new(Kept::default());
        journal.share(outbox.clone());
        journal.record(|| lookup("s", "1"));
        // Sent, not held: it is held when the shared journal hands it back.
        assert_eq!(journal.count(None), 0);
        let sent = outbox.0.lock().unwrap().pop().unwrap();
        assert_eq!(sent.subject, "1");
        journal.apply(
            Exchange {
                sequence: 7,
                ..sent
            },
            6,
        );
        journal.apply(
            Exchange {
                sequence: 8,
                session: "t".into(),
                ..Exchange::default()
            },
            0,
        );
        journal.apply(
            Exchange {
                sequence: 9,
                session: "t".into(),
                ..Exchange::default()
            },
            0,
        );
        let (kept, dropped) = journal.list(&ExchangeFilter::default(), 10);
        let sequences: Vec<u64> = kept.iter().map(|e| e.sequence).collect();
        assert_eq!(sequences, [8, 9]);
        // Six the stream no longer held, one pushed out of the buffer.
        assert_eq!(dropped, 7);
        assert_eq!(journal.count(Some("t")), 2);
        assert_eq!(journal.count(Some("s")), 0);
    }

    #[test]
    fn a_disabled_journal_records_nothing() {
        let journal = Exchanges::new(false, 100);
        journal.record(|| panic!("not built when off"));
        assert!(journal.list(&ExchangeFilter::default(), 10).0.is_empty());
    }
}
