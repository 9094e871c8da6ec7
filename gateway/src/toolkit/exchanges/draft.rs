//! A hot-path exchange as the journal holds it until someone reads it: the
//! request and the answer encoded into one buffer, and names that need no
//! allocation. The journal recycles drafts with their buffers, so recording
//! a lookup costs two encodings into memory already there; decoding the
//! body for the service, subject and message id waits for a reader.

use std::time::{Duration, SystemTime};

use prost::Message;
use prost_types::Any;
use shep_proto::admin::v1::Exchange;
use shep_proto::envelope::v1::{Body, SignedEnvelope, subject};
use shep_proto::registry::v1::LookupRequest;
use time::OffsetDateTime;

use crate::error::code_name;
use crate::storage::timestamp;

/// Where the service, subject and message id of a draft come from when it is read.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Request {
    /// A signed envelope: from its body.
    #[default]
    Envelope,
    /// A registry lookup: from its request context (the subject is its key).
    Lookup,
}

/// One exchange recorded on the hot path (see the module's doc).
#[derive(Debug, Default)]
pub struct Draft {
    request: Request,
    rpc: &'static str,
    hop: &'static str,
    session: String,
    subject: String,
    fault_id: String,
    /// The request's encoding, then the answer's from `split`.
    buf: Vec<u8>,
    split: usize,
    request_type: &'static str,
    /// Empty when there is no answer message (a refusal).
    response_type: &'static str,
    code: Option<tonic::Code>,
    reason: String,
    error_message: String,
    pub(super) duration: Duration,
}

/// A buffer grown past this is not kept for reuse (a scan attached to one
/// envelope should not pin its size in every slot of the ring).
const KEEP_BUF: usize = 64 * 1024;

impl Draft {
    /// Empties the draft for reuse, keeping its allocations.
    pub(super) fn reset(&mut self) {
        let Self {
            request,
            rpc,
            hop,
            session,
            subject,
            fault_id,
            buf,
            split,
            request_type,
            response_type,
            code,
            reason,
            error_message,
            duration,
        } = self;
        *request = Request::Envelope;
        *rpc = "";
        *hop = "";
        session.clear();
        subject.clear();
        fault_id.clear();
        buf.clear();
        if buf.capacity() > KEEP_BUF {
            *buf = Vec::new();
        }
        *split = 0;
        *request_type = "";
        *response_type = "";
        *code = None;
        reason.clear();
        error_message.clear();
        *duration = Duration::ZERO;
    }

    /// Starts the draft of an envelope-carrying RPC (the `ingress` hop).
    pub fn envelope(&mut self, rpc: &'static str, session: &str, envelope: &SignedEnvelope) {
        self.request = Request::Envelope;
        self.rpc = rpc;
        self.hop = "ingress";
        self.session.push_str(session);
        self.request_type = "shep.envelope.v1.SignedEnvelope";
        envelope.encode(&mut self.buf).expect("a Vec grows to fit");
        self.split = self.buf.len();
    }

    /// Starts the draft of a registry lookup (the `registry` hop); `rpc` is
    /// `registry/<id>`.
    pub fn lookup(
        &mut self,
        rpc: &'static str,
        session: &str,
        key: &str,
        fault_id: &str,
        request: &LookupRequest,
    ) {
        self.request = Request::Lookup;
        self.rpc = rpc;
        self.hop = "registry";
        self.session.push_str(session);
        self.subject.push_str(key);
        self.fault_id.push_str(fault_id);
        self.request_type = "shep.registry.v1.LookupRequest";
        request.encode(&mut self.buf).expect("a Vec grows to fit");
        self.split = self.buf.len();
    }

    /// Records the answer, `type_name` being its full proto name.
    pub fn answered<M: Message>(&mut self, type_name: &'static str, answer: &M) {
        self.buf.truncate(self.split);
        self.response_type = type_name;
        answer.encode(&mut self.buf).expect("a Vec grows to fit");
    }

    /// Records a refusal.
    pub fn failed(&mut self, status: &tonic::Status) {
        use tonic_types::StatusExt as _;
        self.code = Some(status.code());
        self.error_message.push_str(status.message());
        if let Some(info) = status.get_details_error_info() {
            self.reason = info.reason;
            if let Some(fault) = info.metadata.get("fault_id") {
                self.fault_id.clear();
                self.fault_id.push_str(fault);
            }
        }
    }

    pub(super) fn session(&self) -> &str {
        &self.session
    }

    pub(super) fn hop(&self) -> &'static str {
        self.hop
    }

    /// The exchange as a reader sees it: decodes what recording left encoded.
    pub(super) fn build(&self, sequence: u64, time: SystemTime) -> Exchange {
        let request = &self.buf[..self.split];
        let (service_id, subject, message_id) = match self.request {
            Request::Envelope => {
                let body = SignedEnvelope::decode(request)
                    .ok()
                    .and_then(|envelope| Body::decode(envelope.body.as_slice()).ok())
                    .unwrap_or_default();
                let subject = match body.subject.and_then(|subject| subject.id) {
                    Some(subject::Id::Iin(id) | subject::Id::Bin(id)) => id,
                    None => String::new(),
                };
                (body.service_id, subject, body.message_id)
            }
            Request::Lookup => {
                let context = LookupRequest::decode(request)
                    .ok()
                    .and_then(|lookup| lookup.context)
                    .unwrap_or_default();
                (context.service_id, self.subject.clone(), context.message_id)
            }
        };
        let any = |type_name: &str, value: &[u8]| Any {
            type_url: format!("type.googleapis.com/{type_name}"),
            value: value.to_vec(),
        };
        Exchange {
            sequence,
            time: Some(timestamp(OffsetDateTime::from(time))),
            session: self.session.clone(),
            rpc: self.rpc.to_owned(),
            hop: self.hop.to_owned(),
            service_id,
            subject,
            message_id,
            request: Some(any(self.request_type, request)),
            response: (!self.response_type.is_empty())
                .then(|| any(self.response_type, &self.buf[self.split..])),
            code: code_name(self.code.unwrap_or(tonic::Code::Ok)).to_owned(),
            reason: self.reason.clone(),
            error_message: self.error_message.clone(),
            duration_us: self.duration.as_micros() as u64,
            fault_id: self.fault_id.clone(),
            stream_position: 0,
        }
    }
}
