//! The remote adapter: lookups to a `shep.registry.v1.Registry` server over
//! a small pool of HTTP/2 connections. Each lookup is one gRPC frame written
//! on a new stream of a connection picked in turn ([`unary::call`]), and the lookups queued
//! during one turn of a connection leave in one write ([`Coalesce`]).
//!
//! Not tonic's `Channel`: it puts a buffer task between every caller and
//! its one connection, which cost about as much per lookup as the registry
//! process itself (BENCHMARKS.md, issue 17). The wire is the same gRPC, so
//! any server of the proto still answers.

use std::future::poll_fn;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::{Buf as _, BufMut as _, Bytes, BytesMut};
use h2::client::SendRequest;
use http::Uri;
use prost::Message as _;
use shep_proto::registry::v1::{LookupRequest, LookupResponse};
use tokio::net::TcpStream;

use crate::BadUrl;
use crate::coalesce::Coalesce;
use crate::unary::{self, CallError};

/// Connections kept to one registry: enough that one busy connection's
/// task does not serialize every lookup of a multi-threaded gateway.
const CONNECTIONS: usize = 2;
/// A connection attempt that takes longer is the registry being unavailable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Flow-control windows offered to the registry (as h2load's): answers are
/// never sent in slivers for want of window.
const WINDOW: u32 = (1 << 30) - 1;
/// The RPC every lookup calls.
const LOOKUP_PATH: &str = "/shep.registry.v1.Registry/Lookup";

/// The connections to one registry server.
#[derive(Debug)]
pub(crate) struct Pool {
    /// `host:port`, as given in the URL.
    authority: String,
    /// The full URI of the lookup RPC.
    uri: Uri,
    /// Each slot holds a live connection or none (connected on next use).
    slots: Vec<Mutex<Option<SendRequest<Bytes>>>>,
    next: AtomicUsize,
}

/// Why a lookup got no answer message.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The registry answered with a gRPC status other than OK, and its message.
    Status(tonic::Code, String),
    /// No answer: the connection, the HTTP exchange or the frame failed.
    Transport(String),
}

impl Pool {
    /// A pool for `url` (`http://host:port`); connects on first use.
    pub(crate) fn new(url: &str) -> Result<Self, BadUrl> {
        let bad = |why: &str| BadUrl {
            url: url.to_owned(),
            why: why.to_owned(),
        };
        let parsed: Uri = url.parse().map_err(|error| bad(&format!("{error}")))?;
        if parsed.scheme_str() != Some("http") {
            return Err(bad(
                "a remote registry is reached over plaintext HTTP/2 (http://host:port)",
            ));
        }
        let authority = parsed
            .authority()
            .filter(|authority| authority.port_u16().is_some())
            .ok_or_else(|| bad("expected http://host:port"))?
            .clone();
        let uri = Uri::builder()
            .scheme("http")
            .authority(authority.clone())
            .path_and_query(LOOKUP_PATH)
            .build()
            .map_err(|error| bad(&error.to_string()))?;
        Ok(Self {
            authority: authority.to_string(),
            uri,
            slots: (0..CONNECTIONS).map(|_| Mutex::new(None)).collect(),
            next: AtomicUsize::new(0),
        })
    }

    /// Sends `request` and reads the answer.
    pub(crate) async fn lookup(&self, request: &LookupRequest) -> Result<LookupResponse, Failure> {
        let slot = self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len();
        let mut sender = self.sender(slot).await.map_err(Failure::Transport)?;
        if poll_fn(|cx| sender.poll_ready(cx)).await.is_err() {
            // The connection closed while idle (the registry restarted, or
            // went away): nothing was sent yet, so connecting again is safe.
            *lock(&self.slots[slot]) = None;
            sender = self.sender(slot).await.map_err(Failure::Transport)?;
        }
        let answer = exchange(&mut sender, &self.uri, frame(request)).await;
        if let Err(Failure::Transport(_)) = &answer {
            // The next lookup on this slot connects afresh; a stream-level
            // failure costs one reconnection at most.
            *lock(&self.slots[slot]) = None;
        }
        answer
    }

    /// The connection in `slot`, connecting it when there is none.
    async fn sender(&self, slot: usize) -> Result<SendRequest<Bytes>, String> {
        if let Some(sender) = lock(&self.slots[slot]).as_ref() {
            return Ok(sender.clone());
        }
        let sender = connect(&self.authority).await?;
        // Concurrent first lookups may each connect; the last one is kept
        // and the others end with their lookups.
        *lock(&self.slots[slot]) = Some(sender.clone());
        Ok(sender)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

async fn connect(authority: &str) -> Result<SendRequest<Bytes>, String> {
    let tcp = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(authority))
        .await
        .map_err(|_| format!("connecting to {authority} timed out"))?
        .map_err(|error| format!("connecting to {authority}: {error}"))?;
    // Nagle's algorithm would hold a lone lookup back for ~40 ms.
    let _ = tcp.set_nodelay(true);
    let (sender, connection) = h2::client::Builder::new()
        .initial_window_size(WINDOW)
        .initial_connection_window_size(WINDOW)
        .handshake(Coalesce::new(tcp))
        .await
        .map_err(|error| format!("HTTP/2 handshake with {authority}: {error}"))?;
    let peer = authority.to_owned();
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::debug!(registry = %peer, %error, "registry connection closed");
        }
    });
    Ok(sender)
}

/// `request` as one uncompressed gRPC message frame.
fn frame(request: &LookupRequest) -> Bytes {
    let length = request.encoded_len();
    let mut buf = BytesMut::with_capacity(5 + length);
    buf.put_u8(0);
    buf.put_u32(length as u32);
    request
        .encode(&mut buf)
        .expect("the buffer was sized to fit");
    buf.freeze()
}

/// One lookup on `sender`: its answer, or why there is none.
async fn exchange(
    sender: &mut SendRequest<Bytes>,
    uri: &Uri,
    frame: Bytes,
) -> Result<LookupResponse, Failure> {
    match unary::call(sender, uri, frame, true).await {
        Ok(reply) if reply.code == 0 => decode(reply.body.freeze()),
        Ok(reply) => Err(Failure::Status(
            tonic::Code::from_i32(reply.code),
            reply.message,
        )),
        Err(CallError::Http(status)) => Err(Failure::Transport(format!("HTTP status {status}"))),
        Err(CallError::Transport(error)) => Err(Failure::Transport(error.to_string())),
        Err(CallError::NoStatus) => Err(Failure::Transport(
            "the answer ended without a grpc-status".to_owned(),
        )),
    }
}

/// The one message of a unary answer.
fn decode(mut body: Bytes) -> Result<LookupResponse, Failure> {
    let malformed = |why: &str| Failure::Transport(format!("malformed answer: {why}"));
    if body.len() < 5 {
        return Err(malformed("shorter than a gRPC frame header"));
    }
    if body.get_u8() != 0 {
        return Err(malformed("compressed, and no encoding was offered"));
    }
    let length = body.get_u32() as usize;
    if body.len() != length {
        return Err(malformed("not exactly one message"));
    }
    LookupResponse::decode(body).map_err(|error| malformed(&error.to_string()))
}
