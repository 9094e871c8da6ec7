//! The lean client: each request is a pre-encoded gRPC frame written on a new
//! `h2` stream, and the answer is read only as far as its `grpc-status`. No
//! tonic `Channel` (a buffer task between caller and connection), no message
//! encoding or decoding, no task per request in a closed loop, and each OS
//! thread is a current-thread runtime driving its own connections, so no
//! work stealing either; and the requests queued during one turn of a
//! connection leave in one write ([`shep_adapters::coalesce`]). That is close to what
//! h2load costs, and on a 2-core machine shared with the gateway every cycle
//! the client saves is one the gateway can use.

use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use h2::client::SendRequest;
use http::Uri;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::source::Source;
use super::{Mode, Recorder, Settings, Tally};
use shep_adapters::coalesce::Coalesce;
use shep_adapters::unary::{self, CallError};

/// The stream and connection windows offered to the server.
const WINDOW: u32 = (1 << 30) - 1;

/// Where the requests go.
#[derive(Debug, Clone)]
struct Target {
    addr: std::net::SocketAddr,
    /// The full request URI: scheme, authority and the RPC's path.
    uri: Uri,
}

/// Runs the load on threads of its own; returns how long it took.
pub(super) async fn run(
    url: &str,
    settings: &Settings,
    frames: Arc<Source<Bytes>>,
    recorder: &Recorder,
) -> anyhow::Result<Duration> {
    let base: Uri = url.parse().with_context(|| format!("bad url `{url}`"))?;
    anyhow::ensure!(
        base.scheme_str() == Some("http"),
        "the lean client speaks HTTP/2 without TLS only: `{url}` (use `--client tonic`)"
    );
    let authority = base
        .authority()
        .with_context(|| format!("`{url}` has no host and port"))?
        .clone();
    let addr = tokio::net::lookup_host((authority.host(), authority.port_u16().unwrap_or(80)))
        .await
        .with_context(|| format!("resolving `{authority}`"))?
        .next()
        .with_context(|| format!("`{authority}` resolves to no address"))?;
    let uri = Uri::builder()
        .scheme("http")
        .authority(authority)
        .path_and_query(settings.scenario.path())
        .build()?;
    let target = Target { addr, uri };
    let settings = settings.clone();
    let recorder = recorder.clone();
    tokio::task::spawn_blocking(move || drive(&target, &settings, &frames, &recorder)).await?
}

/// Starts the threads, lets them connect, then starts the clock for all of
/// them at once.
fn drive(
    target: &Target,
    settings: &Settings,
    frames: &Arc<Source<Bytes>>,
    recorder: &Recorder,
) -> anyhow::Result<Duration> {
    let connections = settings.connections.max(1);
    let threads = settings.threads.clamp(1, connections);
    let (ready_tx, ready_rx) = mpsc::channel::<anyhow::Result<()>>();
    let mut starters = Vec::new();
    let mut handles = Vec::new();
    let mut failure = None;
    for index in 0..threads {
        let (start_tx, start_rx) = mpsc::channel::<Instant>();
        let shard = Shard {
            index,
            threads,
            connections,
            target: target.clone(),
            settings: settings.clone(),
            frames: frames.clone(),
            recorder: recorder.clone(),
        };
        let ready = ready_tx.clone();
        match std::thread::Builder::new()
            .name(format!("shep-bench-{index}"))
            .spawn(move || shard.run(&ready, &start_rx))
        {
            Ok(handle) => {
                handles.push(handle);
                starters.push(start_tx);
            }
            Err(error) => {
                failure = Some(anyhow::Error::from(error).context("starting a client thread"));
                break;
            }
        }
    }
    drop(ready_tx);
    for _ in 0..handles.len() {
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(error)) => failure = failure.or(Some(error)),
            Err(_) => failure = failure.or(Some(anyhow::anyhow!("a client thread died"))),
        }
    }
    let start = Instant::now();
    if failure.is_none() {
        for starter in &starters {
            let _ = starter.send(start);
        }
    }
    // Dropping the senders releases threads still waiting when a run fails.
    drop(starters);
    for handle in handles {
        if handle.join().is_err() {
            failure = failure.or(Some(anyhow::anyhow!("a client thread panicked")));
        }
    }
    match failure {
        Some(error) => Err(error),
        None => Ok(start.elapsed()),
    }
}

/// One thread's part of the load: the connections `c` with
/// `c % threads == index`, and the closed-loop workers on them.
#[derive(Debug)]
struct Shard {
    index: usize,
    threads: usize,
    connections: usize,
    target: Target,
    settings: Settings,
    frames: Arc<Source<Bytes>>,
    recorder: Recorder,
}

impl Shard {
    fn run(self, ready: &mpsc::Sender<anyhow::Result<()>>, start: &mpsc::Receiver<Instant>) {
        let runtime = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime,
            Err(error) => {
                let _ = ready.send(Err(error.into()));
                return;
            }
        };
        let senders = match runtime.block_on(self.connect()) {
            Ok(senders) => senders,
            Err(error) => {
                let _ = ready.send(Err(error));
                return;
            }
        };
        let _ = ready.send(Ok(()));
        // No start means another thread failed to connect: the run is off.
        let Ok(start) = start.recv() else { return };
        runtime.block_on(self.load(senders, start));
    }

    async fn connect(&self) -> anyhow::Result<Vec<SendRequest<Bytes>>> {
        let mut senders = Vec::new();
        for _ in (0..self.connections).filter(|c| c % self.threads == self.index) {
            let addr = self.target.addr;
            let tcp = tokio::net::TcpStream::connect(addr)
                .await
                .with_context(|| format!("connecting to `{addr}`"))?;
            // Unary calls are small writes that must go out at once.
            tcp.set_nodelay(true)?;
            // One write per turn of the connection, as h2load does.
            // h2load's windows (2^30 - 1), not h2's 64 KiB: with hundreds of
            // answers in flight on a connection, a small window makes the
            // server send them in slivers, and h2 closes a connection that
            // receives too many small DATA frames (ENHANCE_YOUR_CALM).
            let (sender, connection) = h2::client::Builder::new()
                .initial_window_size(WINDOW)
                .initial_connection_window_size(WINDOW)
                .handshake(Coalesce::new(tcp))
                .await
                .with_context(|| format!("HTTP/2 handshake with `{addr}`"))?;
            tokio::spawn(async move {
                // Ends when the run drops its senders, or the server goes.
                let _ = connection.await;
            });
            senders.push(sender);
        }
        Ok(senders)
    }

    async fn load(self, senders: Vec<SendRequest<Bytes>>, start: Instant) {
        let end = start + self.settings.duration;
        match self.settings.mode {
            Mode::Closed => {
                let mut workers = JoinSet::new();
                for worker in 0..self.settings.concurrency.max(1) {
                    let connection = worker % self.connections;
                    if connection % self.threads != self.index {
                        continue;
                    }
                    workers.spawn(closed_worker(
                        senders[connection / self.threads].clone(),
                        self.target.uri.clone(),
                        self.frames.clone(),
                        end,
                        self.recorder.tally(),
                    ));
                }
                while workers.join_next().await.is_some() {}
            }
            Mode::Open => self.open_loop(&senders, start, end).await,
        }
    }

    /// This thread's share of a constant rate: requests number `index`,
    /// `index + threads`, … of the whole schedule, each timed from when it
    /// was due.
    async fn open_loop(&self, senders: &[SendRequest<Bytes>], start: Instant, end: Instant) {
        let rate = self.settings.rate.max(0.001);
        let limit = self.settings.concurrency.max(1).div_ceil(self.threads);
        let mut tally = self.recorder.tally();
        let mut in_flight = JoinSet::new();
        let mut turn = self.index;
        loop {
            // Computed from the start, not accumulated, so rounding cannot drift.
            let due = start + Duration::from_secs_f64(turn as f64 / rate);
            if due >= end {
                break;
            }
            if in_flight.len() >= limit {
                // The due request waits for a slot, and that wait counts.
                if let Some(Ok((outcome, latency))) = in_flight.join_next().await {
                    tally.record(outcome, latency);
                }
                continue;
            }
            tokio::select! {
                biased;
                Some(done) = in_flight.join_next(), if !in_flight.is_empty() => {
                    if let Ok((outcome, latency)) = done {
                        tally.record(outcome, latency);
                    }
                }
                () = tokio::time::sleep_until(due) => {
                    // An empty queue (signing behind the rate) delays the
                    // request, and that delay counts: it was due.
                    let Some(frame) = self.frames.take().await else { break };
                    let mut sender = senders[turn / self.threads % senders.len()].clone();
                    let uri = self.target.uri.clone();
                    in_flight.spawn(async move {
                        let outcome = call(&mut sender, &uri, frame).await;
                        (outcome, due.elapsed())
                    });
                    turn += self.threads;
                }
            }
        }
        while let Some(done) = in_flight.join_next().await {
            if let Ok((outcome, latency)) = done {
                tally.record(outcome, latency);
            }
        }
    }
}

async fn closed_worker(
    mut sender: SendRequest<Bytes>,
    uri: Uri,
    frames: Arc<Source<Bytes>>,
    end: Instant,
    mut tally: Tally,
) {
    while Instant::now() < end {
        // Waiting on the signer ends with the run, not after it.
        let Ok(Some(frame)) = tokio::time::timeout_at(end, frames.take()).await else {
            break;
        };
        let sent = Instant::now();
        let outcome = call(&mut sender, &uri, frame).await;
        tally.record(outcome, sent.elapsed());
    }
}

/// One unary gRPC call: `frame` out, the answer's `grpc-status` back (the
/// message itself is read and dropped).
async fn call(sender: &mut SendRequest<Bytes>, uri: &Uri, frame: Bytes) -> Result<(), String> {
    match unary::call(sender, uri, frame, false).await {
        Ok(reply) if reply.code == 0 => Ok(()),
        // Named as tonic names the code, so both clients' reports read the same.
        Ok(reply) => Err(format!("{:?}", tonic::Code::from_i32(reply.code))),
        Err(CallError::Http(status)) => Err(format!("http {}", status.as_u16())),
        Err(CallError::Transport(error)) => Err(transport(error)),
        Err(CallError::NoStatus) => Err("transport: no grpc-status in the trailers".to_owned()),
    }
}

/// Names what failed at the HTTP/2 level (a reset's reason, a GOAWAY, an
/// I/O error), so an overload that resets streams reads differently from a
/// lost connection.
fn transport(error: h2::Error) -> String {
    if let Some(reason) = error.reason() {
        let by = if error.is_remote() {
            "by the server"
        } else {
            "here"
        };
        let what = if error.is_go_away() {
            "GOAWAY"
        } else {
            "RST_STREAM"
        };
        format!("transport: {what} {reason:?} {by}")
    } else if error.is_io() {
        "transport: connection I/O error".to_owned()
    } else {
        format!("transport: {error}")
    }
}
