//! `shep bench`: a load generator for the gateway's own calls, with
//! pre-signed envelopes so the client is not the bottleneck.
//!
//! Closed loop: a fixed number of workers, each sending its next request when
//! the previous answer arrives. Open loop: requests are due at a constant
//! rate, and latency is measured from when each was due, not from when it was
//! sent, so queueing in the client or the gateway cannot hide behind a slower
//! send rate (coordinated omission).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use shep_proto::envelope::v1::SignedEnvelope;
use shep_proto::gateway::v1::gateway_client::GatewayClient;
use tokio::time::Instant;
use tonic::transport::Channel;

/// What one request does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    /// `Gateway.Call` of the ГБД ФЛ lookup (sync, a registry answers).
    Lookup,
    /// `Gateway.Submit` of an application (durable receipt; a provider acknowledges).
    Submit,
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

/// The result of a run, as written to JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub scenario: Scenario,
    pub mode: Mode,
    /// Closed loop: workers. Open loop: the most requests allowed in flight.
    pub concurrency: usize,
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
}

/// Collects latencies and outcomes; cheap to share between workers.
#[derive(Debug, Clone)]
pub struct Recorder {
    inner: Arc<Mutex<Recorded>>,
}

#[derive(Debug)]
struct Recorded {
    latency: Histogram<u64>,
    errors: BTreeMap<String, u64>,
}

impl Default for Recorder {
    fn default() -> Self {
        Self {
            inner: Arc::new(Mutex::new(Recorded {
                // 1 µs to 1 min, 3 significant digits.
                latency: Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid bounds"),
                errors: BTreeMap::new(),
            })),
        }
    }
}

impl Recorder {
    fn lock(&self) -> std::sync::MutexGuard<'_, Recorded> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Records a successful request that took `latency`.
    pub fn ok(&self, latency: Duration) {
        let micros = (latency.as_micros() as u64).clamp(1, 60_000_000);
        // Within bounds by the clamp.
        let _ = self.lock().latency.record(micros);
    }

    /// Records a failed request.
    pub fn error(&self, code: &str) {
        *self.lock().errors.entry(code.to_owned()).or_default() += 1;
    }

    /// (successes, errors) so far.
    pub fn counts(&self) -> (u64, u64) {
        let recorded = self.lock();
        (recorded.latency.len(), recorded.errors.values().sum())
    }

    /// The report of a run that lasted `elapsed`.
    pub fn report(&self, settings: &Settings, elapsed: Duration) -> Report {
        let recorded = self.lock();
        let latency = &recorded.latency;
        let ok = latency.len();
        let errors: u64 = recorded.errors.values().sum();
        let seconds = elapsed.as_secs_f64().max(f64::EPSILON);
        let quantile = |q: f64| {
            if ok == 0 {
                0
            } else {
                latency.value_at_quantile(q)
            }
        };
        Report {
            scenario: settings.scenario,
            mode: settings.mode,
            concurrency: settings.concurrency,
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
        }
    }
}

/// How to run.
#[derive(Debug, Clone)]
pub struct Settings {
    pub scenario: Scenario,
    pub mode: Mode,
    pub concurrency: usize,
    /// Open loop only.
    pub rate: f64,
    pub duration: Duration,
    pub algorithm: String,
}

async fn send(
    client: &mut GatewayClient<Channel>,
    scenario: Scenario,
    envelope: SignedEnvelope,
) -> Result<(), tonic::Status> {
    match scenario {
        Scenario::Lookup => client.call(envelope).await.map(|_| ()),
        Scenario::Submit => client.submit(envelope).await.map(|_| ()),
    }
}

fn record(recorder: &Recorder, outcome: Result<(), tonic::Status>, latency: Duration) {
    match outcome {
        Ok(()) => recorder.ok(latency),
        Err(status) => recorder.error(&format!("{:?}", status.code())),
    }
}

/// Runs the load with `envelopes` (each used once, in order) against
/// `channel` and returns the report. `progress` is called about once a second.
pub async fn run(
    channel: Channel,
    settings: &Settings,
    envelopes: Vec<SignedEnvelope>,
    progress: impl Fn(Duration, u64, u64) + Send + Sync + 'static,
) -> Report {
    let recorder = Recorder::default();
    let envelopes = Arc::new(Mutex::new(envelopes.into_iter()));
    let next = {
        let envelopes = envelopes.clone();
        move || {
            envelopes
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .next()
        }
    };
    let start = Instant::now();
    let end = start + settings.duration;
    let ticker = {
        let recorder = recorder.clone();
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(Duration::from_secs(1));
            interval.tick().await;
            loop {
                interval.tick().await;
                let (ok, errors) = recorder.counts();
                progress(start.elapsed(), ok, errors);
            }
        })
    };
    match settings.mode {
        Mode::Closed => {
            let mut workers = Vec::new();
            for _ in 0..settings.concurrency.max(1) {
                let mut client = GatewayClient::new(channel.clone());
                let recorder = recorder.clone();
                let next = next.clone();
                let scenario = settings.scenario;
                workers.push(tokio::spawn(async move {
                    while Instant::now() < end {
                        let Some(envelope) = next() else { break };
                        let sent = Instant::now();
                        let outcome = send(&mut client, scenario, envelope).await;
                        record(&recorder, outcome, sent.elapsed());
                    }
                }));
            }
            for worker in workers {
                let _ = worker.await;
            }
        }
        Mode::Open => {
            let interval = Duration::from_secs_f64(1.0 / settings.rate.max(0.001));
            let limit = Arc::new(tokio::sync::Semaphore::new(settings.concurrency.max(1)));
            let mut in_flight = Vec::new();
            let mut due = start;
            while due < end {
                tokio::time::sleep_until(due).await;
                let Some(envelope) = next() else { break };
                // Waiting for a slot counts against the request: it was due.
                let permit = limit.clone().acquire_owned().await.expect("never closed");
                let mut client = GatewayClient::new(channel.clone());
                let recorder = recorder.clone();
                let scenario = settings.scenario;
                let intended = due;
                in_flight.push(tokio::spawn(async move {
                    let outcome = send(&mut client, scenario, envelope).await;
                    record(&recorder, outcome, intended.elapsed());
                    drop(permit);
                }));
                due += interval;
            }
            for request in in_flight {
                let _ = request.await;
            }
        }
    }
    ticker.abort();
    recorder.report(settings, start.elapsed())
}

/// The comparison's backend: `Gateway.Call` answered at once with a fixed
/// response and no checks. The other RPCs are not part of it.
#[derive(Debug, Clone, Copy)]
struct Echo;

#[tonic::async_trait]
impl shep_proto::gateway::v1::gateway_server::Gateway for Echo {
    async fn call(
        &self,
        _request: tonic::Request<SignedEnvelope>,
    ) -> Result<tonic::Response<shep_proto::gateway::v1::CallResponse>, tonic::Status> {
        Ok(tonic::Response::new(
            shep_proto::gateway::v1::CallResponse {
                response_info: Some(shep_proto::gateway::v1::ResponseInfo {
                    status: Some(shep_proto::gateway::v1::StatusInfo {
                        code: "00000".to_owned(),
                        message: "echo".to_owned(),
                    }),
                    ..Default::default()
                }),
                lookup: None,
            },
        ))
    }

    async fn submit(
        &self,
        _request: tonic::Request<SignedEnvelope>,
    ) -> Result<tonic::Response<shep_proto::gateway::v1::Receipt>, tonic::Status> {
        Err(tonic::Status::unimplemented(
            "the echo backend answers Call only",
        ))
    }

    async fn get_status(
        &self,
        _request: tonic::Request<shep_proto::gateway::v1::GetStatusRequest>,
    ) -> Result<tonic::Response<shep_proto::gateway::v1::Application>, tonic::Status> {
        Err(tonic::Status::unimplemented(
            "the echo backend answers Call only",
        ))
    }

    async fn history(
        &self,
        _request: tonic::Request<shep_proto::gateway::v1::HistoryRequest>,
    ) -> Result<tonic::Response<shep_proto::gateway::v1::HistoryResponse>, tonic::Status> {
        Err(tonic::Status::unimplemented(
            "the echo backend answers Call only",
        ))
    }

    type WatchStream = std::pin::Pin<
        Box<
            dyn tokio_stream::Stream<
                    Item = Result<shep_proto::gateway::v1::StatusEvent, tonic::Status>,
                > + Send,
        >,
    >;

    async fn watch(
        &self,
        _request: tonic::Request<shep_proto::gateway::v1::WatchRequest>,
    ) -> Result<tonic::Response<Self::WatchStream>, tonic::Status> {
        Err(tonic::Status::unimplemented(
            "the echo backend answers Call only",
        ))
    }
}

/// Serves the echo backend on `listener` until `shutdown` resolves.
pub async fn serve_echo(
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    tonic::transport::Server::builder()
        .add_service(shep_proto::gateway::v1::gateway_server::GatewayServer::new(
            Echo,
        ))
        .serve_with_incoming_shutdown(
            tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
            shutdown,
        )
        .await?;
    Ok(())
}

/// The report as a table for people.
pub fn table(report: &Report) -> String {
    let ms = |micros: u64| micros as f64 / 1000.0;
    let mut out = format!(
        "{:?} {:?} loop, {} {}, {}, {:.1} s\n",
        report.scenario,
        report.mode,
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

    fn settings() -> Settings {
        Settings {
            scenario: Scenario::Lookup,
            mode: Mode::Closed,
            concurrency: 4,
            rate: 0.0,
            duration: Duration::from_secs(1),
            algorithm: "ed25519".to_owned(),
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
