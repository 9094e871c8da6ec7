//! `shep bench soap`: the same signed lookup over ШЭП's SOAP (`/bip-sync/`,
//! XMLDSig business data, HTTP/1.1 keep-alive) and over gRPC
//! (`Gateway.Call`, a detached signature, HTTP/2), closed loop, in one run
//! against one gateway, so the two rows compare (BENCHMARKS.md).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt as _, Full};
use shep_nuc::xmldsig::{C14nMethod, sign_enveloped};
use shep_proto::envelope::v1::SignedEnvelope;
use shep_proto::gateway::v1::gateway_client::GatewayClient;
use time::format_description::well_known::Rfc3339;

use crate::client::{Participant, iin};

/// Lookups signed once each and sent in turn.
const POOL: usize = 256;

/// What a run measured.
#[derive(Debug)]
struct Row {
    name: &'static str,
    ok: u64,
    errors: u64,
    seconds: f64,
    latency: Histogram<u64>,
}

impl Row {
    fn print(&self) {
        let micros = |quantile| self.latency.value_at_quantile(quantile) as f64;
        println!(
            "{:<28} {:>9.0} req/s  p50 {:>7.0} µs  p99 {:>7.0} µs  ok {}  errors {}",
            self.name,
            self.ok as f64 / self.seconds,
            micros(0.5),
            micros(0.99),
            self.ok,
            self.errors
        );
    }
}

/// Runs both rows, SOAP first, then gRPC, `seconds` each with `workers` in
/// a closed loop, against the plaintext gateway at `gateway`.
pub(super) async fn run(
    gateway: &str,
    applicant: &Participant,
    workers: usize,
    seconds: u64,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        gateway.starts_with("http://"),
        "`shep bench soap` speaks plaintext: start the gateway with `shep serve --insecure` and pass `--gateway http://…`"
    );
    let duration = Duration::from_secs(seconds);
    let soap = Arc::new(soap_pool(applicant)?);
    let grpc = Arc::new(grpc_pool(applicant)?);
    println!(
        "sync lookup, {workers} workers, {seconds} s each; SOAP body {} bytes, gRPC envelope {} bytes",
        soap[0].len(),
        prost::Message::encoded_len(&grpc[0])
    );
    let soap_row = soap_run(gateway, soap, workers, duration).await?;
    soap_row.print();
    let grpc_row = grpc_run(gateway, grpc, workers, duration).await?;
    grpc_row.print();
    println!(
        "SOAP / gRPC: {:.2}× the requests per second",
        (soap_row.ok as f64 / soap_row.seconds) / (grpc_row.ok as f64 / grpc_row.seconds).max(1.0)
    );
    Ok(())
}

fn soap_pool(applicant: &Participant) -> anyhow::Result<Vec<Bytes>> {
    let date = time::OffsetDateTime::now_utc().format(&Rfc3339)?;
    (0..POOL)
        .map(|_| {
            let body = applicant.request("GbdflInfoByIin_v1", iin(shep_gateway::server::DEMO_APPLICANT_IIN));
            let data = sign_enveloped(
                &shep_gateway::xmldata::body_to_xml(&body),
                &applicant.signer,
                C14nMethod::Exclusive,
            )?;
            Ok(Bytes::from(format!(
                "<S:Envelope xmlns:S=\"http://schemas.xmlsoap.org/soap/envelope/\"><S:Body><ns1:SendMessage xmlns:ns1=\"http://bip.bee.kz/SyncChannel/v10/Types\"><request><requestInfo><messageId>{}</messageId><serviceId>GbdflInfoByIin_v1</serviceId><messageDate>{date}</messageDate><sender><senderId>pep</senderId></sender></requestInfo><requestData><data>{data}</data></requestData></request></ns1:SendMessage></S:Body></S:Envelope>",
                body.message_id
            )))
        })
        .collect()
}

fn grpc_pool(applicant: &Participant) -> anyhow::Result<Vec<SignedEnvelope>> {
    (0..POOL)
        .map(|_| {
            applicant.seal(&applicant.request(
                "GbdflInfoByIin_v1",
                iin(shep_gateway::server::DEMO_APPLICANT_IIN),
            ))
        })
        .collect()
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

async fn soap_run(
    gateway: &str,
    pool: Arc<Vec<Bytes>>,
    workers: usize,
    duration: Duration,
) -> anyhow::Result<Row> {
    let authority: http::uri::Authority = gateway
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .context("`--gateway`")?;
    let start = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..workers {
        let pool = pool.clone();
        let authority = authority.clone();
        tasks.push(tokio::spawn(async move {
            let stream = tokio::net::TcpStream::connect(authority.as_str()).await?;
            stream.set_nodelay(true)?;
            let (mut sender, connection) =
                hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
            tokio::spawn(connection);
            let (mut ok, mut errors, mut latency) = (0u64, 0u64, histogram());
            let mut next = worker;
            while start.elapsed() < duration {
                let request = http::Request::post("/bip-sync/")
                    .header(http::header::HOST, authority.as_str())
                    .header(http::header::CONTENT_TYPE, "text/xml; charset=utf-8")
                    .body(Full::new(pool[next % pool.len()].clone()))?;
                next += workers;
                let sent = Instant::now();
                sender.ready().await?;
                let response = sender.send_request(request).await?;
                let status = response.status();
                let body = response.into_body().collect().await?.to_bytes();
                let answered = status.is_success() && memchr(&body, b"<code>00000</code>");
                latency.record(sent.elapsed().as_micros() as u64).ok();
                if answered { ok += 1 } else { errors += 1 }
            }
            anyhow::Ok((ok, errors, latency))
        }));
    }
    collect("SOAP /bip-sync/ SendMessage", tasks, start).await
}

async fn grpc_run(
    gateway: &str,
    pool: Arc<Vec<SignedEnvelope>>,
    workers: usize,
    duration: Duration,
) -> anyhow::Result<Row> {
    let channel = tonic::transport::Endpoint::from_shared(gateway.to_owned())?
        .connect()
        .await
        .context("connecting to the gateway")?;
    let start = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..workers {
        let pool = pool.clone();
        let mut client = GatewayClient::new(channel.clone());
        tasks.push(tokio::spawn(async move {
            let (mut ok, mut errors, mut latency) = (0u64, 0u64, histogram());
            let mut next = worker;
            while start.elapsed() < duration {
                let envelope = pool[next % pool.len()].clone();
                next += workers;
                let sent = Instant::now();
                let answered = client.call(envelope).await.is_ok_and(|response| {
                    response
                        .into_inner()
                        .response_info
                        .and_then(|info| info.status)
                        .is_some_and(|status| status.code == "00000")
                });
                latency.record(sent.elapsed().as_micros() as u64).ok();
                if answered { ok += 1 } else { errors += 1 }
            }
            anyhow::Ok((ok, errors, latency))
        }));
    }
    collect("gRPC Gateway.Call", tasks, start).await
}

type Worker = tokio::task::JoinHandle<anyhow::Result<(u64, u64, Histogram<u64>)>>;

async fn collect(name: &'static str, tasks: Vec<Worker>, start: Instant) -> anyhow::Result<Row> {
    let mut row = Row {
        name,
        ok: 0,
        errors: 0,
        seconds: 0.0,
        latency: histogram(),
    };
    for task in tasks {
        let (ok, errors, latency) = task.await??;
        row.ok += ok;
        row.errors += errors;
        row.latency.add(&latency)?;
    }
    row.seconds = start.elapsed().as_secs_f64();
    Ok(row)
}

fn memchr(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}
