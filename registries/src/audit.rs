//! The access audit: every lookup a registry answers, with who asked and why
//! (after RegiX's CallContext), kept in memory up to a bound. When full, the
//! oldest record is dropped and counted, so memory stays flat under any load.

use std::collections::VecDeque;
use std::sync::Mutex;

use shep_proto::registry::v1::{
    AccessLogRequest, AccessLogResponse, AccessOutcome, AccessRecord, RequestContext,
};
use time::OffsetDateTime;

/// The default number of records kept.
pub const DEFAULT_CAPACITY: usize = 100_000;

/// Records per query when the request says 0, and at most.
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1_000;

#[derive(Debug, Default)]
struct Ring {
    records: VecDeque<AccessRecord>,
    dropped: u64,
    next_sequence: u64,
}

/// A bounded, in-memory access log.
#[derive(Debug)]
pub struct AccessAudit {
    capacity: usize,
    ring: Mutex<Ring>,
}

/// One lookup to record.
#[derive(Debug)]
pub struct Access<'a> {
    pub registry: &'a str,
    pub key: &'a str,
    /// Identifiers the answer concerned besides the key.
    pub related: Vec<String>,
    pub outcome: AccessOutcome,
    pub context: Option<&'a RequestContext>,
}

impl AccessAudit {
    /// An audit keeping at most `capacity` records (at least one).
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            ring: Mutex::new(Ring {
                next_sequence: 1,
                ..Ring::default()
            }),
        }
    }

    /// How many records it keeps.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    fn ring(&self) -> std::sync::MutexGuard<'_, Ring> {
        // A panic while holding the lock cannot leave the ring inconsistent
        // (each push is one operation), so a poisoned lock is still usable.
        self.ring
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Records one lookup; returns its sequence number.
    pub fn record(&self, access: Access<'_>) -> u64 {
        let mut subjects = Vec::with_capacity(1 + access.related.len());
        subjects.push(access.key.to_owned());
        for related in access.related {
            if !related.is_empty() && !subjects.contains(&related) {
                subjects.push(related);
            }
        }
        let now = OffsetDateTime::now_utc();
        let mut record = AccessRecord {
            sequence: 0,
            at: Some(prost_types::Timestamp {
                seconds: now.unix_timestamp(),
                nanos: now.nanosecond() as i32,
            }),
            registry: access.registry.to_owned(),
            key: access.key.to_owned(),
            subjects,
            outcome: access.outcome as i32,
            context: access.context.cloned(),
        };
        let mut ring = self.ring();
        record.sequence = ring.next_sequence;
        ring.next_sequence += 1;
        if ring.records.len() == self.capacity {
            ring.records.pop_front();
            ring.dropped += 1;
        }
        ring.records.push_back(record);
        ring.next_sequence - 1
    }

    /// Records matching `request`, newest first.
    pub fn query(&self, request: &AccessLogRequest) -> AccessLogResponse {
        let limit = match request.limit {
            0 => DEFAULT_LIMIT,
            limit => (limit as usize).min(MAX_LIMIT),
        };
        let ring = self.ring();
        let mut records: Vec<AccessRecord> = ring
            .records
            .iter()
            .rev()
            .filter(|record| {
                request.before_sequence == 0 || record.sequence < request.before_sequence
            })
            .filter(|record| request.registry.is_empty() || record.registry == request.registry)
            .filter(|record| {
                request.subject.is_empty() || record.subjects.contains(&request.subject)
            })
            .take(limit + 1)
            .cloned()
            .collect();
        let more = records.len() > limit;
        records.truncate(limit);
        AccessLogResponse {
            next_before_sequence: if more {
                records.last().map(|record| record.sequence).unwrap_or(0)
            } else {
                0
            },
            records,
            dropped: ring.dropped,
            capacity: self.capacity as u64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access<'a>(key: &'a str, context: &'a RequestContext) -> Access<'a> {
        Access {
            registry: "gbdfl",
            key,
            related: Vec::new(),
            outcome: AccessOutcome::Found,
            context: Some(context),
        }
    }

    #[test]
    fn keeps_the_newest_records_and_counts_the_dropped() {
        let audit = AccessAudit::new(3);
        let context = RequestContext {
            requester_system: "is-con".into(),
            ..RequestContext::default()
        };
        for key in ["a", "b", "c", "d", "e"] {
            audit.record(access(key, &context));
        }
        let all = audit.query(&AccessLogRequest::default());
        let keys: Vec<&str> = all
            .records
            .iter()
            .map(|record| record.key.as_str())
            .collect();
        assert_eq!(keys, ["e", "d", "c"]);
        assert_eq!(all.dropped, 2);
        assert_eq!(all.capacity, 3);
        assert_eq!(all.records[0].sequence, 5);
        assert_eq!(
            all.records[0].context.as_ref().unwrap().requester_system,
            "is-con"
        );
    }

    #[test]
    fn filters_by_subject_and_registry_and_pages_backwards() {
        let audit = AccessAudit::new(100);
        let context = RequestContext::default();
        for _ in 0..5 {
            audit.record(access("850315301235", &context));
            audit.record(Access {
                registry: "enis",
                related: vec!["850315301235".into(), "780521307893".into()],
                ..access("850315301235-01", &context)
            });
        }
        let request = AccessLogRequest {
            subject: "780521307893".into(),
            limit: 3,
            ..AccessLogRequest::default()
        };
        let page = audit.query(&request);
        assert_eq!(page.records.len(), 3);
        assert!(page.records.iter().all(|record| record.registry == "enis"));
        assert_ne!(page.next_before_sequence, 0);
        let rest = audit.query(&AccessLogRequest {
            before_sequence: page.next_before_sequence,
            ..request
        });
        assert_eq!(rest.records.len(), 2);
        assert_eq!(rest.next_before_sequence, 0);
        let persons_only = audit.query(&AccessLogRequest {
            subject: "850315301235".into(),
            registry: "gbdfl".into(),
            ..AccessLogRequest::default()
        });
        assert_eq!(persons_only.records.len(), 5);
    }
}
