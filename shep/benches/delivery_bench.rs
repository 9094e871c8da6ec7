//! Durable delivery against in-memory delivery, in one run: applications go
//! `Gateway.Submit` -> the provider's `Subscribe` stream -> `Ack`, over real
//! loopback gRPC, with `journal.mode = disk` (every receipt after an fsync'd
//! group commit) and `journal.mode = memory`. Prints throughput and the
//! latency from the start of each Submit to its acknowledgement (p50, p90,
//! p99, max), from HDR histograms.
//!
//! Run: `cargo bench -p shep --bench delivery_bench`
//! (`-- <messages> <concurrency>` to change the load; default 4000 and 32.)

use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use hdrhistogram::Histogram;
use shep::client::{Participant, iin};
use shep_gateway::config::{GatewayConfig, JournalMode};
use shep_gateway::server::{DataDir, start_on};
use shep_nuc::ca::Signer;
use shep_proto::envelope::v1::{Channel, SignedEnvelope};
use shep_proto::gateway::v1::gateway_client::GatewayClient;
use shep_proto::provider::v1::provider_client::ProviderClient;
use shep_proto::provider::v1::{
    Ack, Hello, ReceiveStatus, SubscribeRequest, subscribe_request, subscribe_response,
};
use tokio::sync::{Semaphore, mpsc};
use tokio::time::Instant;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;

const SERVICE: &str = "guardianship-certificate-esil";
const PROVIDER: &str = "arm-rshep-sko-esil-edu";

struct Outcome {
    throughput: f64,
    latency: Histogram<u64>,
}

async fn run(mode: JournalMode, messages: usize, concurrency: usize) -> Outcome {
    let dir = std::env::temp_dir().join(format!(
        "shep-delivery-bench-{:?}-{}",
        mode,
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    let mut config = GatewayConfig {
        data_dir: dir.clone(),
        ..GatewayConfig::default()
    };
    config.journal.mode = mode;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gateway = start_on(listener, config).await.unwrap();
    let data = DataDir(dir.clone());
    let (key, cert) = data.identity("applicant");
    let applicant = Participant::new(
        "pep",
        Channel::Portal,
        Signer::from_files(&key, &cert).unwrap(),
    );
    // Signed before the clock starts: the client is not what is measured.
    let envelopes: Vec<SignedEnvelope> = (0..messages)
        .map(|_| {
            applicant
                .seal(&applicant.request(SERVICE, iin("850315301235")))
                .unwrap()
        })
        .collect();
    let channel = tonic::transport::Channel::from_shared(gateway.url())
        .unwrap()
        .connect()
        .await
        .unwrap();

    // The provider: acknowledges every delivery at once and records when.
    let started: Arc<DashMap<String, Instant>> = Arc::new(DashMap::new());
    let (uplink, outbound) = mpsc::channel(1024);
    uplink
        .send(SubscribeRequest {
            kind: Some(subscribe_request::Kind::Hello(Hello {
                provider_id: PROVIDER.to_owned(),
                max_in_flight: 1024,
                service_ids: Vec::new(),
            })),
        })
        .await
        .unwrap();
    let mut inbound = ProviderClient::new(channel.clone())
        .subscribe(ReceiverStream::new(outbound))
        .await
        .unwrap()
        .into_inner();
    let provider = {
        let started = started.clone();
        tokio::spawn(async move {
            let mut latency = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
            let mut acked = 0;
            while acked < messages {
                let Some(Ok(message)) = inbound.next().await else {
                    break;
                };
                let Some(subscribe_response::Kind::Delivery(delivery)) = message.kind else {
                    continue;
                };
                uplink
                    .send(SubscribeRequest {
                        kind: Some(subscribe_request::Kind::Ack(Ack {
                            message_id: delivery.message_id.clone(),
                            receive_status: ReceiveStatus::MessageAccepted as i32,
                            ..Ack::default()
                        })),
                    })
                    .await
                    .unwrap();
                if let Some((_, start)) = started.remove(&delivery.message_id) {
                    latency.record(start.elapsed().as_micros() as u64).unwrap();
                    acked += 1;
                }
            }
            latency
        })
    };

    let begin = Instant::now();
    let permits = Arc::new(Semaphore::new(concurrency));
    let mut submits = Vec::with_capacity(messages);
    for envelope in envelopes {
        let permit = permits.clone().acquire_owned().await.unwrap();
        let mut client = GatewayClient::new(channel.clone());
        let started = started.clone();
        submits.push(tokio::spawn(async move {
            let id = prost::Message::decode(envelope.body.as_slice())
                .map(|body: shep_proto::envelope::v1::Body| body.message_id)
                .unwrap();
            started.insert(id, Instant::now());
            client.submit(envelope).await.unwrap();
            drop(permit);
        }));
    }
    for submit in submits {
        submit.await.unwrap();
    }
    let latency = tokio::time::timeout(Duration::from_secs(120), provider)
        .await
        .expect("every message acknowledged within two minutes")
        .unwrap();
    let elapsed = begin.elapsed();
    gateway.shutdown().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    Outcome {
        throughput: messages as f64 / elapsed.as_secs_f64(),
        latency,
    }
}

fn main() {
    let arguments: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|argument| argument.parse().ok())
        .collect();
    let messages = arguments.first().copied().unwrap_or(4000);
    let concurrency = arguments.get(1).copied().unwrap_or(32);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    println!(
        "submit -> Subscribe -> Ack over loopback gRPC: {messages} applications, {concurrency} concurrent submitters, Ed25519"
    );
    println!(
        "{:<8} {:>10} {:>10} {:>10} {:>10} {:>10}",
        "journal", "msg/s", "p50 ms", "p90 ms", "p99 ms", "max ms"
    );
    let mut throughputs = Vec::new();
    for mode in [JournalMode::Memory, JournalMode::Disk] {
        let outcome = runtime.block_on(run(mode, messages, concurrency));
        let ms = |quantile: f64| outcome.latency.value_at_quantile(quantile) as f64 / 1000.0;
        println!(
            "{:<8} {:>10.0} {:>10.2} {:>10.2} {:>10.2} {:>10.2}",
            format!("{mode:?}").to_lowercase(),
            outcome.throughput,
            ms(0.5),
            ms(0.9),
            ms(0.99),
            outcome.latency.max() as f64 / 1000.0
        );
        throughputs.push(outcome.throughput);
    }
    println!(
        "disk / memory throughput: {:.2} (target: at least 0.50)",
        throughputs[1] / throughputs[0]
    );
}
