//! The exchange journal: what crossed the gateway, kept for a test's
//! assertions in a bounded buffer (oldest dropped and counted). Not the
//! durable journal of applications (`crate::storage`): this one is in memory
//! and can be switched off for load runs.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use prost::Message;
use prost_types::Any;
use shep_proto::admin::v1::{
    Exchange, ExchangeFilter, VerifyExchangesRequest, VerifyExchangesResponse,
    verify_exchanges_request,
};
use time::OffsetDateTime;

mod draft;

pub use draft::Draft;

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

/// One held exchange: built, or still a draft (built when first read).
// Drafts are most entries and are recycled whole; boxing them would cost
// the allocation per record that they exist to avoid.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
enum Entry {
    Built(Box<Exchange>),
    Draft {
        sequence: u64,
        time: SystemTime,
        draft: Draft,
    },
}

impl Entry {
    fn sequence(&self) -> u64 {
        match self {
            Self::Built(exchange) => exchange.sequence,
            Self::Draft { sequence, .. } => *sequence,
        }
    }

    fn session(&self) -> &str {
        match self {
            Self::Built(exchange) => &exchange.session,
            Self::Draft { draft, .. } => draft.session(),
        }
    }

    fn hop(&self) -> &str {
        match self {
            Self::Built(exchange) => &exchange.hop,
            Self::Draft { draft, .. } => draft.hop(),
        }
    }

    /// Whether `filter` may match, from what a draft has without decoding.
    fn may_match(&self, filter: &ExchangeFilter) -> bool {
        self.sequence() > filter.after_sequence
            && (filter.session.is_empty() || filter.session == self.session())
            && (filter.hop.is_empty() || filter.hop == self.hop())
    }
}

#[derive(Debug, Default)]
struct Ring {
    entries: VecDeque<Entry>,
    next: u64,
    dropped: u64,
    /// Drafts pushed out of the ring, kept with their buffers for reuse.
    free: Vec<Draft>,
}

/// Drafts kept for reuse beyond those in the ring: about what is in flight at once.
const FREE_DRAFTS: usize = 1024;

impl Ring {
    fn recycle(&mut self, entry: Entry) {
        if let Entry::Draft { draft, .. } = entry {
            self.reuse(draft);
        }
    }

    fn reuse(&mut self, mut draft: Draft) {
        if self.free.len() < FREE_DRAFTS {
            draft.reset();
            self.free.push(draft);
        }
    }

    /// Builds the entry at `index` if it is a draft; returns it built.
    fn built(&mut self, index: usize) -> &Exchange {
        if let Entry::Draft {
            sequence,
            time,
            draft,
        } = &mut self.entries[index]
        {
            let exchange = Box::new(draft.build(*sequence, *time));
            let draft = std::mem::take(draft);
            self.entries[index] = Entry::Built(exchange);
            self.reuse(draft);
        }
        match &self.entries[index] {
            Entry::Built(exchange) => exchange,
            Entry::Draft { .. } => unreachable!("built above"),
        }
    }

    /// Visits the entries matching `filter`, oldest first, while `visit`
    /// says to go on.
    fn each_match(&mut self, filter: &ExchangeFilter, mut visit: impl FnMut(&Exchange) -> bool) {
        for index in 0..self.entries.len() {
            if self.entries[index].may_match(filter) {
                let exchange = self.built(index);
                if matches(filter, exchange) && !visit(exchange) {
                    return;
                }
            }
        }
    }
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
        Self::push(&mut ring, self.capacity, Entry::Built(Box::new(exchange)));
    }

    fn push(ring: &mut Ring, capacity: usize, entry: Entry) {
        if ring.entries.len() == capacity
            && let Some(old) = ring.entries.pop_front()
        {
            ring.dropped += 1;
            ring.recycle(old);
        }
        ring.entries.push_back(entry);
    }

    /// How many exchanges of `session` (all for `None`) are held.
    pub fn count(&self, session: Option<&str>) -> usize {
        let ring = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        match session {
            None => ring.entries.len(),
            Some(id) => ring
                .entries
                .iter()
                .filter(|entry| entry.session() == id)
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
        Self::push(&mut ring, self.capacity, Entry::Built(Box::new(exchange)));
    }

    /// A draft to record an exchange of the hot path into, `None` when not
    /// recording; hand it back with [`Self::commit`].
    pub fn draft(&self) -> Option<Draft> {
        if !self.recording() {
            return None;
        }
        let mut ring = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        Some(ring.free.pop().unwrap_or_default())
    }

    /// Records `draft`, which took `duration`.
    pub fn commit(&self, mut draft: Draft, duration: Duration) {
        draft.duration = duration;
        let time = SystemTime::now();
        if let Some(outbox) = self.outbox.get() {
            // The shared journal numbers it; it comes back through `apply`.
            outbox.send(draft.build(0, time));
            return;
        }
        let mut ring = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        ring.next += 1;
        let sequence = ring.next;
        Self::push(
            &mut ring,
            self.capacity,
            Entry::Draft {
                sequence,
                time,
                draft,
            },
        );
    }

    /// Exchanges matching `filter` (oldest first, at most `limit`), and the
    /// number dropped so far.
    pub fn list(&self, filter: &ExchangeFilter, limit: usize) -> (Vec<Exchange>, u64) {
        let mut ring = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        let mut found = Vec::new();
        if limit > 0 {
            ring.each_match(filter, |exchange| {
                found.push(exchange.clone());
                found.len() < limit
            });
        }
        (found, ring.dropped)
    }

    /// Counts the exchanges matching the request's filter against its expectation.
    pub fn verify(&self, request: &VerifyExchangesRequest) -> VerifyExchangesResponse {
        let filter = request.filter.clone().unwrap_or_default();
        let mut ring = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        let (mut count, mut sample) = (0u64, Vec::new());
        ring.each_match(&filter, |exchange| {
            count += 1;
            if sample.len() < 20 {
                sample.push(exchange.clone());
            }
            true
        });
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
            sample,
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
                ring.dropped = 0;
                let removed: Vec<Entry> = ring.entries.drain(..).collect();
                removed.into_iter().for_each(|entry| ring.recycle(entry));
            }
            Some(id) => {
                let (removed, kept): (VecDeque<Entry>, VecDeque<Entry>) =
                    std::mem::take(&mut ring.entries)
                        .into_iter()
                        .partition(|entry| entry.session() == id);
                ring.entries = kept;
                removed.into_iter().for_each(|entry| ring.recycle(entry));
            }
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

    fn envelope(
        service: &str,
        iin: &str,
        message: &str,
    ) -> shep_proto::envelope::v1::SignedEnvelope {
        use shep_proto::envelope::v1::{Body, SignedEnvelope, Subject, subject};
        let body = Body {
            service_id: service.into(),
            message_id: message.into(),
            subject: Some(Subject {
                id: Some(subject::Id::Iin(iin.into())),
            }),
            ..Body::default()
        };
        SignedEnvelope {
            body: body.encode_to_vec(),
            ..SignedEnvelope::default()
        }
    }

    fn draft_of(journal: &Exchanges, session: &str, message: &str) {
        let mut draft = journal.draft().expect("recording");
        draft.envelope(
            "shep.gateway.v1.Gateway/Call",
            session,
            &envelope("GBDFL_PERSON", "850315301235", message),
        );
        draft.answered("shep.gateway.v1.Receipt", &prost_types::Duration::default());
        journal.commit(draft, Duration::from_micros(42));
    }

    #[test]
    fn a_draft_reads_as_the_exchange_it_recorded() {
        let journal = Exchanges::new(true, 10);
        let sent = envelope("GBDFL_PERSON", "850315301235", "m-1");
        let mut draft = journal.draft().expect("recording");
        draft.envelope("shep.gateway.v1.Gateway/Call", "s", &sent);
        draft.answered(
            "shep.gateway.v1.Receipt",
            &prost_types::Duration {
                seconds: 5,
                nanos: 0,
            },
        );
        journal.commit(draft, Duration::from_micros(42));
        let mut refused = journal.draft().expect("recording");
        refused.envelope("shep.gateway.v1.Gateway/Submit", "s", &sent);
        refused.failed(&tonic::Status::permission_denied("no"));
        journal.commit(refused, Duration::from_micros(7));

        let (kept, _) = journal.list(&ExchangeFilter::default(), 10);
        assert_eq!(kept.len(), 2);
        let call = &kept[0];
        assert_eq!(
            (call.sequence, call.session.as_str(), call.hop.as_str()),
            (1, "s", "ingress")
        );
        assert_eq!(call.rpc, "shep.gateway.v1.Gateway/Call");
        assert_eq!(
            (
                call.service_id.as_str(),
                call.subject.as_str(),
                call.message_id.as_str()
            ),
            ("GBDFL_PERSON", "850315301235", "m-1")
        );
        assert_eq!((call.code.as_str(), call.duration_us), ("OK", 42));
        let request = call.request.as_ref().unwrap();
        assert_eq!(
            request.type_url,
            "type.googleapis.com/shep.envelope.v1.SignedEnvelope"
        );
        assert_eq!(request.value, sent.encode_to_vec());
        let response = call.response.as_ref().unwrap();
        assert_eq!(
            prost_types::Duration::decode(response.value.as_slice())
                .unwrap()
                .seconds,
            5
        );
        assert!(call.time.is_some());
        let submit = &kept[1];
        assert_eq!(
            (submit.code.as_str(), submit.error_message.as_str()),
            ("PERMISSION_DENIED", "no")
        );
        assert!(submit.response.is_none());
        // Filters see a draft's fields once it is read; reading twice gives the same.
        let by_message = ExchangeFilter {
            message_id: "m-1".into(),
            rpc: "shep.gateway.v1.Gateway/Submit".into(),
            ..ExchangeFilter::default()
        };
        assert_eq!(
            journal.list(&by_message, 10).0,
            std::slice::from_ref(submit)
        );
    }

    #[test]
    fn drafts_pushed_out_are_reused_with_their_buffers() {
        let journal = Exchanges::new(true, 2);
        for n in 0..5 {
            draft_of(&journal, "s", &n.to_string());
        }
        // Three were pushed out and wait for reuse, emptied.
        let reused = journal.draft().expect("recording");
        assert!(reused.session().is_empty());
        let (kept, dropped) = journal.list(&ExchangeFilter::default(), 10);
        let messages: Vec<&str> = kept.iter().map(|e| e.message_id.as_str()).collect();
        assert_eq!((messages, dropped), (vec!["3", "4"], 3));
        draft_of(&journal, "t", "5");
        assert_eq!(journal.count(Some("t")), 1);
        assert_eq!(journal.clear(Some("s")), 1);
        assert_eq!(journal.count(None), 1);
    }

    #[test]
    fn a_shared_journal_is_sent_drafts_built() {
        let journal = Exchanges::new(true, 2);
        let outbox = Arc::new(Kept::default());
        journal.share(outbox.clone());
        draft_of(&journal, "s", "m-9");
        assert_eq!(journal.count(None), 0);
        let sent = outbox.0.lock().unwrap().pop().unwrap();
        assert_eq!(
            (sent.message_id.as_str(), sent.subject.as_str()),
            ("m-9", "850315301235")
        );
    }

    #[test]
    fn a_disabled_journal_records_nothing() {
        let journal = Exchanges::new(false, 100);
        journal.record(|| panic!("not built when off"));
        assert!(journal.list(&ExchangeFilter::default(), 10).0.is_empty());
    }
}
