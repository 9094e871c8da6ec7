//! The tonic client: the generated `GatewayClient`, as an application would
//! call the gateway. It costs more CPU per request than the lean client
//! (a buffered `Channel`, a spawned connection task, encoding each message),
//! which on a shared machine is taken from the server it measures.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use shep_proto::envelope::v1::SignedEnvelope;
use shep_proto::gateway::v1::gateway_client::GatewayClient;
use tokio::time::Instant;
use tonic::transport::{Channel, Endpoint};

use super::source::Source;
use super::{Mode, Recorder, Scenario, Settings};

async fn send(
    client: &mut GatewayClient<Channel>,
    scenario: Scenario,
    envelope: SignedEnvelope,
) -> Result<(), String> {
    let outcome = match scenario {
        Scenario::Lookup => client.call(envelope).await.map(|_| ()),
        Scenario::Submit => client.submit(envelope).await.map(|_| ()),
    };
    outcome.map_err(|status| format!("{:?}", status.code()))
}

/// Runs the load from the current runtime; returns how long it took.
pub(super) async fn run(
    url: &str,
    settings: &Settings,
    envelopes: Arc<Source<SignedEnvelope>>,
    recorder: &Recorder,
) -> anyhow::Result<Duration> {
    let endpoint = Endpoint::from_shared(url.to_owned())
        .with_context(|| format!("bad url `{url}`"))?
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true);
    let mut channels = Vec::new();
    for _ in 0..settings.connections.max(1) {
        channels.push(
            endpoint
                .connect()
                .await
                .with_context(|| format!("connecting to `{url}`"))?,
        );
    }
    let start = Instant::now();
    let end = start + settings.duration;
    match settings.mode {
        Mode::Closed => {
            let mut workers = Vec::new();
            for worker in 0..settings.concurrency.max(1) {
                let mut client = GatewayClient::new(channels[worker % channels.len()].clone());
                let mut tally = recorder.tally();
                let envelopes = envelopes.clone();
                let scenario = settings.scenario;
                workers.push(tokio::spawn(async move {
                    while Instant::now() < end {
                        let Ok(Some(envelope)) =
                            tokio::time::timeout_at(end, envelopes.take()).await
                        else {
                            break;
                        };
                        let sent = Instant::now();
                        let outcome = send(&mut client, scenario, envelope).await;
                        tally.record(outcome, sent.elapsed());
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
            // Finished requests are reaped as the run goes: a long run keeps
            // no handle per request.
            let mut in_flight = tokio::task::JoinSet::new();
            let mut due = start;
            let mut sent = 0usize;
            while due < end {
                tokio::time::sleep_until(due).await;
                let Some(envelope) = envelopes.take().await else {
                    break;
                };
                // Waiting for a slot counts against the request: it was due.
                let permit = limit.clone().acquire_owned().await.expect("never closed");
                let mut client = GatewayClient::new(channels[sent % channels.len()].clone());
                sent += 1;
                let recorder = recorder.clone();
                let scenario = settings.scenario;
                let intended = due;
                while in_flight.try_join_next().is_some() {}
                in_flight.spawn(async move {
                    match send(&mut client, scenario, envelope).await {
                        Ok(()) => recorder.ok(intended.elapsed()),
                        Err(code) => recorder.error(&code),
                    }
                    drop(permit);
                });
                due += interval;
            }
            while in_flight.join_next().await.is_some() {}
        }
    }
    Ok(start.elapsed())
}
