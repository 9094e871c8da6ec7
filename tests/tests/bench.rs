//! `shep bench`: a real run against a gateway on a loopback port writes a
//! report whose numbers come from the requests it made, and `compare` reads
//! two of them.

use shep::loadgen::{Client, Interval, Mode, Report, Scenario};
use shep_tests::*;

async fn bench(gw: &TestGateway, dir: &TempDir, name: &str, extra: &[&str]) -> Report {
    bench_at(&gw.url(), gw, dir, name, extra).await
}

/// A run against `url`, signing with the identities of `gw`'s data directory.
async fn bench_at(
    url: &str,
    gw: &TestGateway,
    dir: &TempDir,
    name: &str,
    extra: &[&str],
) -> Report {
    let json = dir.path().join(format!("{name}.json"));
    let data_dir = gw.data_dir().0.display().to_string();
    let json_arg = json.display().to_string();
    let mut args = vec![
        "bench",
        "run",
        "--gateway",
        url,
        "--data-dir",
        &data_dir,
        "--json",
        &json_arg,
    ];
    if !extra.contains(&"--seconds") {
        args.extend_from_slice(&["--seconds", "1"]);
    }
    args.extend_from_slice(extra);
    let run = run_shep(&args).await;
    let stdout = run.ok();
    assert!(stdout.contains("latency ms: p50"), "{stdout}");
    serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap()
}

#[tokio::test]
async fn a_closed_loop_lookup_run_reports_what_the_gateway_answered() {
    let gw = TestGateway::start().await;
    let dir = TempDir::new("shep-bench");
    let report = bench(&gw, &dir, "lookup", &["--concurrency", "4"]).await;
    assert_eq!(report.scenario, Scenario::Lookup);
    assert_eq!(report.mode, Mode::Closed);
    assert_eq!(report.client, Client::Lean, "the default client");
    assert_eq!(report.algorithm, "Ed25519");
    assert!(report.ok > 0, "{report:?}");
    assert!(report.errors.is_empty(), "{report:?}");
    assert_eq!(report.requests, report.ok);
    assert!(report.p50_us > 0 && report.p50_us <= report.p99_us && report.p99_us <= report.max_us);
}

#[tokio::test]
async fn an_open_loop_submit_run_offers_its_rate_and_every_application_is_accepted() {
    let gw = TestGateway::start().await;
    let dir = TempDir::new("shep-bench");
    let report = bench(
        &gw,
        &dir,
        "submit",
        &["--scenario", "submit", "--mode", "open", "--rate", "200"],
    )
    .await;
    assert_eq!(report.mode, Mode::Open);
    assert_eq!(report.rate, Some(200.0));
    // One second at 200/s: never more than were due (how many of those a
    // loaded machine got out in time is for a benchmark), each accepted.
    assert!(report.requests > 0, "{report:?}");
    assert!(report.requests <= 201, "{report:?}");
    assert!(
        report.requests as f64 <= 200.0 * report.seconds + 1.0,
        "sent faster than the rate: {report:?}"
    );
    assert_eq!(report.ok, report.requests, "{report:?}");
    assert!(report.errors.is_empty(), "{report:?}");
    let history = gw
        .gateway()
        .history(shep_proto::gateway::v1::HistoryRequest {
            subject: Some(shep::client::iin(APPLICANT_IIN)),
            page_size: 500,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        history.applications.len() as u64,
        report.ok,
        "every accepted application is in the applicant's history"
    );
}

/// A gateway that refuses an envelope dated more than 2 s from its clock:
/// envelopes signed once before a run longer than that would be refused
/// before its end.
async fn strict_gateway() -> TestGateway {
    TestGateway::builder()
        .configure(|config| config.checks.message_date_skew_secs = 2)
        .start()
        .await
}

#[tokio::test]
async fn submissions_signed_during_a_run_longer_than_the_skew_are_accepted_and_intervals_logged() {
    let gw = strict_gateway().await;
    let dir = TempDir::new("shep-bench");
    let log = dir.path().join("intervals.jsonl");
    let log_arg = log.display().to_string();
    let report = bench(
        &gw,
        &dir,
        "long-submit",
        &[
            "--scenario",
            "submit",
            "--seconds",
            "4",
            "--concurrency",
            "4",
            "--sign-ahead",
            "16",
            "--interval",
            "1",
            "--interval-log",
            &log_arg,
        ],
    )
    .await;
    assert!(report.errors.is_empty(), "{report:?}");
    assert!(
        report.ok > 16,
        "more than the 16 signed before the run: {report:?}"
    );
    assert!(report.signed_per_second.is_some_and(|rate| rate > 0.0));
    let intervals: Vec<Interval> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert!(intervals.len() >= 4, "{intervals:?}");
    assert_eq!(
        intervals.iter().map(|i| i.ok).sum::<u64>(),
        report.ok,
        "every request in one interval: {intervals:?}"
    );
    assert!(intervals.iter().all(|i| i.errors == 0));
    assert!(
        intervals
            .windows(2)
            .all(|pair| pair[0].elapsed_s < pair[1].elapsed_s),
        "{intervals:?}"
    );
    let late = &intervals[3];
    assert!(
        late.ok > 0 && late.p50_us > 0 && late.p50_us <= late.p99_us && late.p99_us <= late.max_us
    );
}

#[tokio::test]
async fn a_lookup_pool_is_signed_anew_before_the_gateway_finds_it_stale() {
    let gw = strict_gateway().await;
    let dir = TempDir::new("shep-bench");
    let report = bench(
        &gw,
        &dir,
        "long-lookup",
        &[
            "--seconds",
            "4",
            "--concurrency",
            "2",
            "--requests",
            "8",
            "--resign-secs",
            "0.5",
        ],
    )
    .await;
    assert!(report.ok > 0, "{report:?}");
    assert!(report.errors.is_empty(), "{report:?}");
}

#[tokio::test]
async fn refused_requests_are_counted_by_code() {
    let gw = TestGateway::start().await;
    // Another gateway trusts only its own НУЦ: every envelope signed with
    // the first one's identities is refused (UNKNOWN_ISSUER), every time.
    let stranger = TestGateway::start().await;
    let dir = TempDir::new("shep-bench");
    let report = bench_at(
        &stranger.url(),
        &gw,
        &dir,
        "refused",
        &["--concurrency", "2"],
    )
    .await;
    assert_eq!(report.ok, 0, "{report:?}");
    assert!(
        report.errors.get("Unauthenticated").copied().unwrap_or(0) > 0,
        "{report:?}"
    );
    assert_eq!(report.errors.len(), 1, "{report:?}");
}

#[tokio::test]
async fn compare_prints_ratios_of_two_reports() {
    let gw = TestGateway::start().await;
    let dir = TempDir::new("shep-bench");
    bench(&gw, &dir, "a", &["--concurrency", "1"]).await;
    bench(&gw, &dir, "b", &["--concurrency", "4"]).await;
    let a = dir.path().join("a.json").display().to_string();
    let b = dir.path().join("b.json").display().to_string();
    let run = run_shep(&["bench", "compare", &a, &b]).await;
    let stdout = run.ok();
    assert!(
        stdout.lines().any(|line| line.starts_with("throughput/s")),
        "{stdout}"
    );
    assert!(
        stdout.lines().any(|line| line.starts_with("p99 ms")),
        "{stdout}"
    );
}

#[tokio::test]
async fn the_echo_backend_answers_calls_without_checks() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let echo = tokio::spawn(shep::loadgen::serve_echo(listener, async {
        let _ = stopped.await;
    }));
    let mut client = shep_proto::gateway::v1::gateway_client::GatewayClient::connect(url)
        .await
        .unwrap();
    // Not even signed: the echo checks nothing.
    let answer = client
        .call(shep_proto::envelope::v1::SignedEnvelope::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.response_info.unwrap().status.unwrap().code, "00000");
    let refused = client
        .submit(shep_proto::envelope::v1::SignedEnvelope::default())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unimplemented);
    stop.send(()).unwrap();
    echo.await.unwrap().unwrap();
}

#[tokio::test]
async fn frame_writes_one_grpc_frame_of_a_lookup_the_gateway_accepts() {
    let gw = TestGateway::start().await;
    let dir = TempDir::new("shep-bench");
    let out = dir.path().join("lookup.bin");
    let data_dir = gw.data_dir().0.display().to_string();
    let out_arg = out.display().to_string();
    run_shep(&["bench", "frame", "--data-dir", &data_dir, "--out", &out_arg])
        .await
        .ok();
    let frame = std::fs::read(&out).unwrap();
    assert_eq!(frame[0], 0, "uncompressed");
    let length = u32::from_be_bytes(frame[1..5].try_into().unwrap()) as usize;
    assert_eq!(length, frame.len() - 5);
    let envelope: shep_proto::envelope::v1::SignedEnvelope =
        prost::Message::decode(&frame[5..]).unwrap();
    let answer = gw.gateway().call(envelope).await.unwrap().into_inner();
    assert!(answer.lookup.is_some());
}

/// Starts the echo backend on a free port; the sender stops it.
async fn echo() -> (
    String,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<anyhow::Result<()>>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(shep::loadgen::serve_echo(listener, async {
        let _ = stopped.await;
    }));
    (url, stop, served)
}

#[tokio::test]
async fn the_lean_client_drives_the_echo_over_several_connections_and_threads() {
    let gw = TestGateway::start().await;
    let dir = TempDir::new("shep-bench");
    let (url, stop, served) = echo().await;
    let report = bench_at(
        &url,
        &gw,
        &dir,
        "lean-echo",
        &[
            "--concurrency",
            "6",
            "--connections",
            "3",
            "--threads",
            "2",
            "--requests",
            "2",
        ],
    )
    .await;
    assert_eq!(report.client, Client::Lean);
    assert_eq!((report.concurrency, report.connections), (6, 3));
    // Two envelopes signed and six workers, each sending at least once:
    // lookups go round the pool again.
    assert!(report.ok > 2, "{report:?}");
    assert!(report.errors.is_empty(), "{report:?}");
    assert!(report.p50_us > 0 && report.p50_us <= report.p99_us && report.p99_us <= report.max_us);
    stop.send(()).unwrap();
    served.await.unwrap().unwrap();
}

#[tokio::test]
async fn the_lean_client_in_open_loop_offers_its_rate_and_times_from_when_each_was_due() {
    let gw = TestGateway::start().await;
    let dir = TempDir::new("shep-bench");
    let (url, stop, served) = echo().await;
    let report = bench_at(
        &url,
        &gw,
        &dir,
        "lean-open",
        &["--mode", "open", "--rate", "400", "--threads", "2"],
    )
    .await;
    assert_eq!(report.mode, Mode::Open);
    // One second at 400/s, split over two threads: never more than were due,
    // and never faster than the rate (how many went out in time on a loaded
    // machine is for a benchmark).
    assert!(report.requests > 0, "{report:?}");
    assert!(report.requests <= 401, "{report:?}");
    assert!(
        report.requests as f64 <= 400.0 * report.seconds + 2.0,
        "sent faster than the rate: {report:?}"
    );
    assert_eq!(report.ok, report.requests, "{report:?}");
    stop.send(()).unwrap();
    served.await.unwrap().unwrap();
}

#[tokio::test]
async fn the_lean_client_counts_refusals_by_grpc_code_as_tonic_names_them() {
    let gw = TestGateway::start().await;
    let dir = TempDir::new("shep-bench");
    let (url, stop, served) = echo().await;
    // The echo answers Call only: Submit is refused with UNIMPLEMENTED, as
    // headers alone (a trailers-only response).
    let report = bench_at(
        &url,
        &gw,
        &dir,
        "lean-refused",
        &[
            "--scenario",
            "submit",
            "--requests",
            "50",
            "--concurrency",
            "2",
        ],
    )
    .await;
    assert_eq!(report.ok, 0, "{report:?}");
    assert_eq!(report.errors.get("Unimplemented"), Some(&50), "{report:?}");
    stop.send(()).unwrap();
    served.await.unwrap().unwrap();
}

#[tokio::test]
async fn the_tonic_client_is_still_there_and_agrees() {
    let gw = TestGateway::start().await;
    let dir = TempDir::new("shep-bench");
    let report = bench(
        &gw,
        &dir,
        "tonic",
        &[
            "--client",
            "tonic",
            "--concurrency",
            "4",
            "--connections",
            "2",
        ],
    )
    .await;
    assert_eq!(report.client, Client::Tonic);
    assert!(report.ok > 0, "{report:?}");
    assert!(report.errors.is_empty(), "{report:?}");
}

#[tokio::test]
async fn bench_signs_with_an_ecdsa_identity_the_gateway_issues_and_accepts() {
    let gw = TestGateway::start().await;
    let dir = TempDir::new("shep-bench");
    let report = bench(
        &gw,
        &dir,
        "p256",
        &["--algorithm", "p256", "--concurrency", "2"],
    )
    .await;
    assert_eq!(report.algorithm, "EcdsaP256Sha256");
    assert!(report.ok > 0, "{report:?}");
    assert!(report.errors.is_empty(), "{report:?}");
    let (key, cert) = gw.data_dir().identity("applicant-p256");
    assert!(key.exists() && cert.exists(), "kept for the next run");
}

/// `--subjects population`: the ЦОН operator looks up people drawn from the
/// whole synthetic population, each found (no `NO_DATA`), many different.
#[tokio::test]
async fn population_lookups_are_about_many_people_and_all_answered() {
    use shep_proto::admin::v1::{ExchangeFilter, ListExchangesRequest};
    let gw = TestGateway::start().await;
    let dir = TempDir::new("shep-bench");
    let report = bench(
        &gw,
        &dir,
        "population",
        &["--subjects", "population", "--concurrency", "4"],
    )
    .await;
    assert!(report.ok > 0, "{report:?}");
    assert!(report.errors.is_empty(), "{report:?}");
    let asked = gw
        .admin()
        .list_exchanges(gw.authorized(ListExchangesRequest {
            filter: Some(ExchangeFilter {
                hop: "registry".to_owned(),
                ..ExchangeFilter::default()
            }),
            // Enough to tell many people from one, and under a client's
            // default 4 MiB answer (a lookup's exchange is about 1 KiB).
            limit: 2_000,
        }))
        .await
        .expect("ListExchanges")
        .into_inner()
        .exchanges;
    let subjects: std::collections::BTreeSet<&str> = asked
        .iter()
        .map(|exchange| exchange.subject.as_str())
        .collect();
    assert!(
        subjects.len() >= 100.min(asked.len()) && !subjects.contains(APPLICANT_IIN),
        "{} lookups about {} people",
        asked.len(),
        subjects.len()
    );
}
