//! `shep bench`: a load generator for the gateway's own calls, with
//! envelopes signed ahead of the senders (in the background, while it runs:
//! [`source`]) so the client is not the bottleneck, for runs of any length.
//!
//! Closed loop: a fixed number of workers, each sending its next request when
//! the previous answer arrives. Open loop: requests are due at a constant
//! rate, and latency is measured from when each was due, not from when it was
//! sent, so queueing in the client or the gateway cannot hide behind a slower
//! send rate (coordinated omission).
//!
//! Two clients send the requests. The lean one ([`Client::Lean`], the
//! default) writes pre-encoded gRPC frames on `h2` streams from current-thread
//! runtimes, the way h2load does, so on a machine it shares with the gateway
//! it takes as little CPU as possible from what it measures. The tonic one
//! ([`Client::Tonic`]) is the generated client an application would use.

mod echo;
mod interval;
mod lean;
mod source;
mod tonic_client;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hdrhistogram::Histogram;
use prost::Message;
use serde::{Deserialize, Serialize};
use shep_proto::envelope::v1::SignedEnvelope;

pub use echo::serve_echo;
pub use interval::{Interval, Tick};
pub use source::{SignedAhead, Signing};

/// What one request does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    /// `Gateway.Call` of the ГБД ФЛ lookup (sync, a registry answers).
    Lookup,
    /// `Gateway.Submit` of an application (durable receipt; a provider acknowledges).
    Submit,
}

impl Scenario {
    /// The gRPC path of the scenario's RPC.
    pub fn path(self) -> &'static str {
        match self {
            Self::Lookup => "/shep.gateway.v1.Gateway/Call",
            Self::Submit => "/shep.gateway.v1.Gateway/Submit",
        }
    }
}

/// How requests are paced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Fixed concurrency.
    Closed,
    /// Constant arrival rate.
    Open,
}

/// Which client sends the requests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Client {
    /// Pre-encoded gRPC frames over `h2`, current-thread runtimes: cheap
    /// enough to share the machine with the gateway.
    #[default]
    Lean,
    /// The generated tonic client, one `Channel` per connection.
    Tonic,
}

/// The result of a run, as written to JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub scenario: Scenario,
    pub mode: Mode,
    /// Reports written before the lean client existed were all tonic's.
    #[serde(default = "Report::tonic")]
    pub client: Client,
    /// Closed loop: workers. Open loop: the most requests allowed in flight.
    pub concurrency: usize,
    /// HTTP/2 connections the requests were spread over (0: not recorded).
    #[serde(default)]
    pub connections: usize,
    /// Open loop: the offered rate, requests per second.
    pub rate: Option<f64>,
    pub algorithm: String,
    pub seconds: f64,
    pub requests: u64,
    pub ok: u64,
    /// Failed requests by gRPC code (or `transport`).
    pub errors: BTreeMap<String, u64>,
    /// Successful requests per second.
    pub throughput: f64,
    /// Latency of successful requests, microseconds.
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
    pub mean_us: f64,
    /// Submit: deliveries this run's provider acknowledged, counted until
    /// the queue stayed quiet after the load (with several gateway nodes,
    /// a provider per node shares the deliveries: add them up).
    #[serde(default)]
    pub acknowledged: Option<u64>,
    /// Envelopes one thread signed per second before the run (the pool of
    /// lookups, or the submissions signed ahead).
    #[serde(default)]
    pub signed_per_second: Option<f64>,
}

impl Report {
    fn tonic() -> Client {
        Client::Tonic
    }
}

/// Latencies and failures of some requests.
#[derive(Debug)]
struct Recorded {
    latency: Histogram<u64>,
    errors: BTreeMap<String, u64>,
}

impl Default for Recorded {
    fn default() -> Self {
        Self {
            // 1 µs to 1 min, 3 significant digits.
            latency: Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid bounds"),
            errors: BTreeMap::new(),
        }
    }
}

impl Recorded {
    fn ok(&mut self, latency: Duration) {
        let micros = (latency.as_micros() as u64).clamp(1, 60_000_000);
        // Within bounds by the clamp.
        let _ = self.latency.record(micros);
    }

    fn error(&mut self, code: &str) {
        match self.errors.get_mut(code) {
            Some(count) => *count += 1,
            None => {
                self.errors.insert(code.to_owned(), 1);
            }
        }
    }

    fn merge(&mut self, other: &Self) {
        // Same bounds on both sides.
        let _ = self.latency.add(&other.latency);
        for (code, count) in &other.errors {
            *self.errors.entry(code.clone()).or_default() += count;
        }
    }
}

#[derive(Debug, Default)]
struct Shared {
    recorded: Mutex<Recorded>,
    /// The requests since the last interval was taken ([`interval`]); only
    /// when intervals are asked for, as it costs a lock per request.
    interval: Option<Mutex<Recorded>>,
    /// Running counts for the progress line, so it needs no lock.
    ok: AtomicU64,
    errors: AtomicU64,
}

/// Collects latencies and outcomes; cheap to share between workers.
#[derive(Debug, Clone, Default)]
pub struct Recorder {
    shared: Arc<Shared>,
}

fn lock(recorded: &Mutex<Recorded>) -> std::sync::MutexGuard<'_, Recorded> {
    recorded
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Shared {
    /// Counts a request, and records it in the current interval if there is one.
    fn count(&self, outcome: Result<Duration, &str>) {
        if let Some(interval) = &self.interval {
            let mut interval = lock(interval);
            match outcome {
                Ok(latency) => interval.ok(latency),
                Err(code) => interval.error(code),
            }
        }
        let counter = if outcome.is_ok() {
            &self.ok
        } else {
            &self.errors
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

impl Recorder {
    /// A recorder that also keeps per-interval numbers when `intervals`.
    pub fn new(intervals: bool) -> Self {
        Self {
            shared: Arc::new(Shared {
                interval: intervals.then(Mutex::default),
                ..Shared::default()
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Recorded> {
        lock(&self.shared.recorded)
    }

    /// Records a successful request that took `latency`.
    pub fn ok(&self, latency: Duration) {
        self.lock().ok(latency);
        self.shared.count(Ok(latency));
    }

    /// Records a failed request.
    pub fn error(&self, code: &str) {
        self.lock().error(code);
        self.shared.count(Err(code));
    }

    /// A worker's own tally: records without a lock, and merges into this
    /// recorder when dropped.
    pub fn tally(&self) -> Tally {
        Tally {
            recorded: Recorded::default(),
            shared: self.shared.clone(),
        }
    }

    /// (successes, errors) so far.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.shared.ok.load(Ordering::Relaxed),
            self.shared.errors.load(Ordering::Relaxed),
        )
    }

    /// The report of a run that lasted `elapsed`.
    pub fn report(&self, settings: &Settings, elapsed: Duration) -> Report {
        let recorded = self.lock();
        let latency = &recorded.latency;
        let ok = latency.len();
        let errors: u64 = recorded.errors.values().sum();
        let seconds = elapsed.as_secs_f64().max(f64::EPSILON);
        let quantile = |q| quantile(latency, q);
        Report {
            scenario: settings.scenario,
            mode: settings.mode,
            client: settings.client,
            concurrency: settings.concurrency,
            connections: settings.connections,
            rate: (settings.mode == Mode::Open).then_some(settings.rate),
            algorithm: settings.algorithm.clone(),
            seconds,
            requests: ok + errors,
            ok,
            errors: recorded.errors.clone(),
            throughput: ok as f64 / seconds,
            p50_us: quantile(0.5),
            p90_us: quantile(0.9),
            p99_us: quantile(0.99),
            p999_us: quantile(0.999),
            max_us: if ok == 0 { 0 } else { latency.max() },
            mean_us: if ok == 0 { 0.0 } else { latency.mean() },
            acknowledged: None,
            signed_per_second: None,
        }
    }
}

/// The latency at quantile `q`, 0 with no requests.
fn quantile(latency: &Histogram<u64>, q: f64) -> u64 {
    if latency.is_empty() {
        0
    } else {
        latency.value_at_quantile(q)
    }
}

/// One worker's records, merged into its [`Recorder`] when dropped (also when
/// the worker is cancelled).
#[derive(Debug)]
pub struct Tally {
    recorded: Recorded,
    shared: Arc<Shared>,
}

impl Tally {
    /// Records a request's outcome: its latency, or its failure's code.
    pub fn record(&mut self, outcome: Result<(), String>, latency: Duration) {
        match outcome {
            Ok(()) => {
                self.recorded.ok(latency);
                self.shared.count(Ok(latency));
            }
            Err(code) => {
                self.recorded.error(&code);
                self.shared.count(Err(&code));
            }
        }
    }
}

impl Drop for Tally {
    fn drop(&mut self) {
        lock(&self.shared.recorded).merge(&self.recorded);
    }
}

/// How to run.
#[derive(Debug, Clone)]
pub struct Settings {
    pub scenario: Scenario,
    pub mode: Mode,
    pub client: Client,
    pub concurrency: usize,
    /// HTTP/2 connections; closed-loop workers are spread evenly over them.
    pub connections: usize,
    /// Lean client: OS threads, each a current-thread runtime driving its
    /// share of the connections.
    pub threads: usize,
    /// Open loop only.
    pub rate: f64,
    pub duration: Duration,
    pub algorithm: String,
    /// Per-interval numbers every this long ([`Tick::interval`]); without,
    /// a tick of counts every second.
    pub interval: Option<Duration>,
    pub signing: Signing,
}

/// `envelope` as one uncompressed gRPC message frame: flag, length, message.
pub fn grpc_frame(envelope: &SignedEnvelope) -> Vec<u8> {
    let length = envelope.encoded_len();
    let mut frame = Vec::with_capacity(5 + length);
    frame.push(0);
    frame.extend_from_slice(&(length as u32).to_be_bytes());
    envelope
        .encode(&mut frame)
        .expect("the buffer was sized for the message");
    frame
}

/// Runs the load against the gateway (or echo) at `url` with envelopes from
/// `seal`, signed ahead of the senders while the run goes on ([`source`]),
/// and returns the report. Lookups go round a pool of
/// `settings.signing.pool`; submissions are each new and sent once.
/// `progress` is called at each [`Tick`]: every `settings.interval`, else
/// every second.
pub async fn run(
    url: &str,
    settings: &Settings,
    seal: impl Fn() -> anyhow::Result<SignedEnvelope> + Send + Sync + 'static,
    progress: impl FnMut(Tick) + Send + 'static,
) -> anyhow::Result<Report> {
    let recorder = Recorder::new(settings.interval.is_some());
    let (elapsed, signed, failure) = match settings.client {
        Client::Tonic => {
            let (envelopes, signed) = source::start(Arc::new(seal), settings)?;
            let envelopes = Arc::new(envelopes);
            let ticker = interval::Ticker::start(&recorder, settings.interval, progress);
            let elapsed = tonic_client::run(url, settings, envelopes.clone(), &recorder).await;
            ticker.stop().await;
            (elapsed, signed, envelopes.failure())
        }
        Client::Lean => {
            let sign = move || seal().map(|envelope| bytes::Bytes::from(grpc_frame(&envelope)));
            let (frames, signed) = source::start(Arc::new(sign), settings)?;
            let frames = Arc::new(frames);
            let ticker = interval::Ticker::start(&recorder, settings.interval, progress);
            let elapsed = lean::run(url, settings, frames.clone(), &recorder).await;
            ticker.stop().await;
            (elapsed, signed, frames.failure())
        }
    };
    if let Some(failure) = failure {
        anyhow::bail!("{failure}");
    }
    let mut report = recorder.report(settings, elapsed?);
    report.signed_per_second = Some(signed.rate);
    Ok(report)
}

/// The report as a table for people.
pub fn table(report: &Report) -> String {
    let ms = |micros: u64| micros as f64 / 1000.0;
    let mut out = format!(
        "{:?} {:?} loop, {:?} client on {} connections, {} {}, {}, {:.1} s\n",
        report.scenario,
        report.mode,
        report.client,
        report.connections,
        report.concurrency,
        if report.mode == Mode::Closed {
            "workers".to_owned()
        } else {
            format!(
                "in flight at most, {:.0} req/s offered",
                report.rate.unwrap_or(0.0)
            )
        },
        report.algorithm,
        report.seconds
    );
    out.push_str(&format!(
        "  requests {}  ok {}  throughput {:.0}/s\n  latency ms: p50 {:.3}  p90 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}  mean {:.3}\n",
        report.requests,
        report.ok,
        report.throughput,
        ms(report.p50_us),
        ms(report.p90_us),
        ms(report.p99_us),
        ms(report.p999_us),
        ms(report.max_us),
        report.mean_us / 1000.0
    ));
    for (code, count) in &report.errors {
        out.push_str(&format!("  errors {code}: {count}\n"));
    }
    out
}

/// Two reports side by side, with the ratio second / first per row.
pub fn compare(first: &Report, second: &Report) -> String {
    let rows: [(&str, f64, f64); 7] = [
        ("throughput/s", first.throughput, second.throughput),
        (
            "p50 ms",
            first.p50_us as f64 / 1000.0,
            second.p50_us as f64 / 1000.0,
        ),
        (
            "p90 ms",
            first.p90_us as f64 / 1000.0,
            second.p90_us as f64 / 1000.0,
        ),
        (
            "p99 ms",
            first.p99_us as f64 / 1000.0,
            second.p99_us as f64 / 1000.0,
        ),
        (
            "p99.9 ms",
            first.p999_us as f64 / 1000.0,
            second.p999_us as f64 / 1000.0,
        ),
        (
            "max ms",
            first.max_us as f64 / 1000.0,
            second.max_us as f64 / 1000.0,
        ),
        (
            "errors",
            first.errors.values().sum::<u64>() as f64,
            second.errors.values().sum::<u64>() as f64,
        ),
    ];
    let mut out = format!(
        "{:<14} {:>12} {:>12} {:>8}\n",
        "", "first", "second", "ratio"
    );
    for (name, a, b) in rows {
        let ratio = if a == 0.0 {
            "-".to_owned()
        } else {
            format!("{:.2}", b / a)
        };
        out.push_str(&format!("{name:<14} {a:>12.3} {b:>12.3} {ratio:>8}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn settings() -> Settings {
        Settings {
            scenario: Scenario::Lookup,
            mode: Mode::Closed,
            client: Client::Lean,
            concurrency: 4,
            connections: 2,
            threads: 1,
            rate: 0.0,
            duration: Duration::from_secs(1),
            algorithm: "ed25519".to_owned(),
            interval: None,
            signing: Signing {
                pool: 2,
                resign: Duration::from_secs(60),
                limit: None,
                ahead: 2,
                signers: 1,
            },
        }
    }

    #[test]
    fn reports_percentiles_throughput_and_errors_by_code() {
        let recorder = Recorder::default();
        for micros in 1..=1000 {
            recorder.ok(Duration::from_micros(micros));
        }
        recorder.error("Unauthenticated");
        recorder.error("Unauthenticated");
        recorder.error("Unavailable");
        let report = recorder.report(&settings(), Duration::from_secs(2));
        assert_eq!(report.ok, 1000);
        assert_eq!(report.requests, 1003);
        assert_eq!(report.errors["Unauthenticated"], 2);
        assert_eq!(report.errors["Unavailable"], 1);
        assert!((report.throughput - 500.0).abs() < 1e-9);
        // HDR keeps 3 significant digits.
        assert!((499..=501).contains(&report.p50_us), "{}", report.p50_us);
        assert!((989..=991).contains(&report.p99_us), "{}", report.p99_us);
        assert!((999..=1001).contains(&report.max_us), "{}", report.max_us);
        assert!(report.rate.is_none());
    }

    #[test]
    fn worker_tallies_merge_into_the_report_when_dropped() {
        let recorder = Recorder::default();
        let mut first = recorder.tally();
        let mut second = recorder.tally();
        first.record(Ok(()), Duration::from_micros(100));
        second.record(Ok(()), Duration::from_micros(300));
        second.record(Err("Unavailable".to_owned()), Duration::ZERO);
        // Counted for the progress line at once, merged only on drop.
        assert_eq!(recorder.counts(), (2, 1));
        assert_eq!(recorder.report(&settings(), Duration::from_secs(1)).ok, 0);
        drop((first, second));
        let report = recorder.report(&settings(), Duration::from_secs(1));
        assert_eq!((report.ok, report.requests), (2, 3));
        assert_eq!(report.errors["Unavailable"], 1);
        assert!((299..=301).contains(&report.max_us), "{}", report.max_us);
    }

    #[test]
    fn a_frame_is_flag_length_message() {
        let envelope = SignedEnvelope {
            xml_data: Vec::new(),
            body: vec![7; 300],
            signature: None,
        };
        let frame = grpc_frame(&envelope);
        assert_eq!(frame[0], 0);
        let length = u32::from_be_bytes(frame[1..5].try_into().unwrap()) as usize;
        assert_eq!(length, frame.len() - 5);
        assert_eq!(SignedEnvelope::decode(&frame[5..]).unwrap(), envelope);
    }

    #[test]
    fn reports_written_before_the_lean_client_read_as_tonic_runs() {
        let recorder = Recorder::default();
        recorder.ok(Duration::from_millis(1));
        let report = recorder.report(&settings(), Duration::from_secs(1));
        let mut json = serde_json::to_value(&report).unwrap();
        let object = json.as_object_mut().unwrap();
        object.remove("client");
        object.remove("connections");
        let old: Report = serde_json::from_value(json).unwrap();
        assert_eq!((old.client, old.connections), (Client::Tonic, 0));
    }

    #[test]
    fn an_empty_run_reports_zeros_not_garbage() {
        let report = Recorder::default().report(&settings(), Duration::from_secs(1));
        assert_eq!((report.ok, report.p99_us, report.max_us), (0, 0, 0));
        assert!(table(&report).contains("requests 0"));
    }

    #[test]
    fn reports_round_trip_through_json_and_compare_as_ratios() {
        let recorder = Recorder::default();
        recorder.ok(Duration::from_millis(2));
        let first = recorder.report(&settings(), Duration::from_secs(1));
        let json = serde_json::to_string(&first).unwrap();
        let back: Report = serde_json::from_str(&json).unwrap();
        assert_eq!(back, first);
        let mut second = first.clone();
        second.throughput *= 2.0;
        let text = compare(&first, &second);
        let line = text
            .lines()
            .find(|line| line.starts_with("throughput"))
            .unwrap();
        assert!(line.trim_end().ends_with("2.00"), "{line}");
    }
}
