//! Several gateway nodes on NATS JetStream (issue 12), as users run them:
//! `shep serve --nats URL` processes sharing one data directory (one test
//! НУЦ), each test with its own `nats-server` processes (own ports, own
//! storage) stopped when it ends.
//!
//! - three nodes: a provider subscribed on one, applications submitted to the
//!   other two, a Watch on the third sees every status in sequence order;
//! - a node killed (SIGKILL) during a submit load: the provider moves to
//!   another node, every receipted application is delivered, none again
//!   after its acknowledgement was stored;
//! - a three-server JetStream cluster (stream replicas 3) losing a server
//!   during a load: nothing receipted is lost.
//!
//! Without a `nats-server` binary these tests skip (CI installs it and sets
//! `SHEP_REQUIRE_NATS`, which makes them fail instead).

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use shep_gateway::storage::jetstream::test_server::{self, NatsCluster, NatsServer};
use shep_proto::envelope::v1::{ApplicationStatus, SignedEnvelope};
use shep_proto::gateway::v1::gateway_client::GatewayClient;
use shep_proto::gateway::v1::{
    GetStatusRequest, MessageState, Receipt, StatusEvent, WatchRequest, watch_request,
};
use shep_proto::provider::v1::{SubscribeResponse, subscribe_response};
use shep_tests::*;
use tokio::sync::mpsc;
use tonic::transport::Channel as GrpcChannel;

/// The form of every application these tests submit.
const FORM: &str = r#"{"child_iin":"061211600012","kind":"опека"}"#;
/// Submissions in a load.
const LOAD: usize = 200;
/// Submissions in flight at once.
const WINDOW: usize = 32;
/// Receipts after which something is killed.
const KILL_AFTER: usize = 50;

/// Held by each test: they run one at a time, as each starts several
/// gateways and servers (two cores would starve them running together).
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A gateway node on `nats`, sharing `data` with the others.
async fn node(tmp: &Path, name: &str, data: &Path, config: &Path) -> ShepServe {
    let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let log = tmp.join(format!("{name}.log"));
    ShepServe::start_with(
        addr,
        data,
        &log,
        &[("SHEP_LOG", "info,async_nats=warn,shep_gateway::grpc=warn")],
        &["--config", config.to_str().expect("a UTF-8 path")],
    )
    .await
}

/// A configuration file naming the NATS servers and the stream's replicas.
fn cluster_config(tmp: &Path, urls: &str, replicas: usize) -> std::path::PathBuf {
    let path = tmp.join("cluster.toml");
    std::fs::write(
        &path,
        // Short leases: what a dead node or stream held comes back soon.
        format!(
            "[cluster]\nnats = \"{urls}\"\nreplicas = {replicas}\n\n[delivery]\nlease_ms = 3000\n"
        ),
    )
    .expect("writing the configuration");
    path
}

fn sealed(applicant: &Participant) -> (String, SignedEnvelope) {
    let body = applicant.application(ESIL_SERVICE, iin(APPLICANT_IIN), FORM, Vec::new());
    let envelope = applicant.seal(&body).expect("signing");
    (body.message_id, envelope)
}

async fn watch_from(channel: &GrpcChannel, after: u64) -> tonic::Streaming<StatusEvent> {
    GatewayClient::new(channel.clone())
        .watch(WatchRequest {
            target: Some(watch_request::Target::Subject(iin(APPLICANT_IIN))),
            after_sequence: after,
        })
        .await
        .expect("Watch")
        .into_inner()
}

async fn status_on(channel: &GrpcChannel, id: &str) -> Option<(i32, i32)> {
    GatewayClient::new(channel.clone())
        .get_status(GetStatusRequest {
            message_id: id.to_owned(),
        })
        .await
        .ok()
        .map(|response| {
            let application = response.into_inner();
            (application.status, application.delivery_state)
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_answer_alike_and_watch_sees_every_status_in_order() {
    if !test_server::available("three_nodes_answer_alike") {
        return;
    }
    let _serial = ONE_AT_A_TIME.lock().await;
    let nats = NatsServer::start();
    let tmp = TempDir::new("shep-cluster");
    let data = tmp.path().join("data");
    let config = cluster_config(tmp.path(), &nats.url(), 1);
    // The first node writes the test НУЦ and identities the others share.
    let a = node(tmp.path(), "a", &data, &config).await;
    let b = node(tmp.path(), "b", &data, &config).await;
    let c = node(tmp.path(), "c", &data, &config).await;
    let (on_a, on_b, on_c) = (
        connect(&a.url()).await,
        connect(&b.url()).await,
        connect(&c.url()).await,
    );

    let mut watch = watch_from(&on_c, 0).await;
    let mut desk = Subscription::open(on_a.clone(), hello(ESIL_PROVIDER, 64))
        .await
        .unwrap_or_else(|status| panic!("Subscribe refused: {}", describe(&status)));

    let applicant = applicant_of(&data);
    let mut submitted = Vec::new();
    for index in 0..20 {
        let (id, envelope) = sealed(&applicant);
        let target = if index % 2 == 0 { &on_b } else { &on_c };
        GatewayClient::new(target.clone())
            .submit(envelope)
            .await
            .unwrap_or_else(|status| panic!("Submit refused: {}", describe(&status)));
        submitted.push(id);
    }
    let mut delivered = BTreeSet::new();
    while delivered.len() < submitted.len() {
        let delivery = desk.next_delivery().await;
        assert!(
            delivered.insert(delivery.message_id.clone()),
            "`{}` delivered twice",
            delivery.message_id
        );
        desk.accept(&delivery.message_id).await;
    }
    assert_eq!(
        delivered,
        submitted.iter().cloned().collect::<BTreeSet<_>>()
    );

    // Node C's Watch: ACCEPTED and DELIVERED of each, in sequence order.
    let mut seen: Vec<StatusEvent> = Vec::new();
    let wanted = 2 * submitted.len();
    while seen.len() < wanted {
        match next_within(&mut watch, PATIENCE).await {
            Next::Item(event) => seen.push(event),
            other => panic!("Watch on C after {} events: {other:?}", seen.len()),
        }
    }
    assert!(
        seen.windows(2)
            .all(|pair| pair[0].sequence < pair[1].sequence),
        "in sequence order: {:?}",
        seen.iter().map(|event| event.sequence).collect::<Vec<_>>()
    );
    for id in &submitted {
        let statuses: Vec<i32> = seen
            .iter()
            .filter(|event| &event.message_id == id)
            .map(|event| event.status)
            .collect();
        assert_eq!(
            statuses,
            [ApplicationStatus::Accepted, ApplicationStatus::Delivered].map(|s| s as i32),
            "{id}"
        );
    }

    // Every node answers GetStatus alike.
    for id in &submitted {
        let expected = Some((
            ApplicationStatus::Delivered as i32,
            MessageState::Delivered as i32,
        ));
        for channel in [&on_a, &on_b, &on_c] {
            let answer = eventually(PATIENCE, async || {
                let answer = status_on(channel, id).await;
                if answer == expected {
                    Ok(answer)
                } else {
                    Err(answer)
                }
            })
            .await;
            assert_eq!(answer, expected);
        }
    }

    // Resuming on another node after any sequence gives what followed it.
    let resume = seen[9].sequence;
    let mut resumed = watch_from(&on_b, resume).await;
    for expected in &seen[10..] {
        match next_within(&mut resumed, PATIENCE).await {
            Next::Item(event) => assert_eq!(
                (event.sequence, &event.message_id, event.status),
                (expected.sequence, &expected.message_id, expected.status)
            ),
            other => panic!("Watch on B resumed after {resume}: {other:?}"),
        }
    }
    println!(
        "3 nodes: {} applications submitted to B and C, delivered once each through A; \
         C's Watch saw {} events in order; B resumed after sequence {resume}",
        submitted.len(),
        seen.len()
    );
}

/// What the provider saw, and when.
#[derive(Debug, Default)]
struct Desk {
    /// Subscriptions opened so far.
    connections: usize,
    /// Deliveries per message id, in order of arrival.
    deliveries: BTreeMap<String, Vec<Instant>>,
}

/// A provider that takes everything from `nodes` in turn: it subscribes to
/// the first, and when that stream breaks, to the next that answers.
fn run_desk(nodes: Vec<String>, desk: Arc<std::sync::Mutex<Desk>>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut index = 0;
        loop {
            let url = &nodes[index % nodes.len()];
            index += 1;
            let Ok(channel) = tonic::transport::Endpoint::from_shared(url.clone())
                .expect("a url")
                .connect()
                .await
            else {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            // A gateway still waiting for its stream (a NATS leader being
            // elected) may not say Welcome within the helper's patience,
            // which panics: in a task of its own, that is one more retry.
            let Ok(Ok(mut subscription)) =
                tokio::spawn(Subscription::open(channel, hello(ESIL_PROVIDER, 64))).await
            else {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            desk.lock().expect("the desk").connections += 1;
            loop {
                match subscription.next_within(Duration::from_secs(60)).await {
                    Next::Item(SubscribeResponse {
                        kind: Some(subscribe_response::Kind::Delivery(delivery)),
                    }) => {
                        desk.lock()
                            .expect("the desk")
                            .deliveries
                            .entry(delivery.message_id.clone())
                            .or_default()
                            .push(Instant::now());
                        subscription.accept(&delivery.message_id).await;
                    }
                    Next::Item(_) => {}
                    // The node died: move on.
                    _ => break,
                }
            }
        }
    })
}

/// Submits [`LOAD`] applications round-robin to `targets`, [`WINDOW`] at a
/// time; calls `kill` once [`KILL_AFTER`] receipts came back. Returns every
/// submission and the receipts.
async fn load(
    applicant: &Participant,
    targets: &[GrpcChannel],
    kill: impl FnOnce(),
) -> (Vec<String>, BTreeMap<String, Receipt>, usize) {
    let sent: Vec<(String, SignedEnvelope)> = (0..LOAD).map(|_| sealed(applicant)).collect();
    let (outcome_tx, mut outcomes) = mpsc::unbounded_channel();
    let window = Arc::new(tokio::sync::Semaphore::new(WINDOW));
    for (index, (id, envelope)) in sent.iter().cloned().enumerate() {
        let permit = window.clone().acquire_owned().await.expect("open");
        let mut client = GatewayClient::new(targets[index % targets.len()].clone());
        let outcome_tx = outcome_tx.clone();
        tokio::spawn(async move {
            let outcome = tokio::time::timeout(PATIENCE, client.submit(envelope)).await;
            let _ = outcome_tx.send((id, outcome));
            drop(permit);
        });
    }
    let mut kill = Some(kill);
    let mut receipts = BTreeMap::new();
    let mut refused = 0;
    for _ in 0..LOAD {
        let (id, outcome) = outcomes.recv().await.expect("every submission reports");
        match outcome {
            Ok(Ok(receipt)) => {
                receipts.insert(id, receipt.into_inner());
            }
            _ => refused += 1,
        }
        if receipts.len() >= KILL_AFTER
            && let Some(kill) = kill.take()
        {
            kill();
        }
    }
    (
        sent.into_iter().map(|(id, _)| id).collect(),
        receipts,
        refused,
    )
}

/// Waits until the desk has every one of `ids` at least once.
async fn delivered_all(desk: &Arc<std::sync::Mutex<Desk>>, ids: &BTreeSet<String>) {
    let started = Instant::now();
    loop {
        let missing = {
            let desk = desk.lock().expect("the desk");
            ids.iter()
                .filter(|id| !desk.deliveries.contains_key(*id))
                .count()
        };
        if missing == 0 {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{missing} of {} receipted applications never delivered",
            ids.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_mid_load_loses_nothing_and_redelivers_nothing_acknowledged() {
    if !test_server::available("a_node_killed_mid_load") {
        return;
    }
    let _serial = ONE_AT_A_TIME.lock().await;
    let nats = NatsServer::start();
    let tmp = TempDir::new("shep-node-loss");
    let data = tmp.path().join("data");
    let config = cluster_config(tmp.path(), &nats.url(), 1);
    let mut a = node(tmp.path(), "a", &data, &config).await;
    let b = node(tmp.path(), "b", &data, &config).await;
    let (on_a, on_b) = (connect(&a.url()).await, connect(&b.url()).await);

    // B's Watch tells when an acknowledgement is stored: DELIVERED appears.
    let acknowledged: Arc<std::sync::Mutex<BTreeMap<String, Instant>>> = Arc::default();
    let watcher = {
        let acknowledged = acknowledged.clone();
        let mut watch = watch_from(&on_b, 0).await;
        tokio::spawn(async move {
            while let Ok(Some(event)) = watch.message().await {
                if event.status == ApplicationStatus::Delivered as i32 {
                    acknowledged
                        .lock()
                        .expect("the acknowledged")
                        .entry(event.message_id)
                        .or_insert_with(Instant::now);
                }
            }
        })
    };
    let desk: Arc<std::sync::Mutex<Desk>> = Arc::default();
    let provider = run_desk(vec![a.url(), b.url()], desk.clone());
    // The provider is on A before the load starts.
    eventually(PATIENCE, async || {
        if desk.lock().expect("the desk").connections > 0 {
            Ok(())
        } else {
            Err("the provider is not subscribed yet")
        }
    })
    .await;

    let pid = a.pid();
    let killed = Arc::new(AtomicUsize::new(0));
    let (sent, receipts, refused) = {
        let killed = killed.clone();
        let a = &mut a;
        load(&applicant_of(&data), &[on_a, on_b.clone()], move || {
            a.kill();
            killed.store(1, Ordering::SeqCst);
        })
        .await
    };
    assert_eq!(
        killed.load(Ordering::SeqCst),
        1,
        "node A ({pid}) was killed"
    );
    let receipted: BTreeSet<String> = receipts.keys().cloned().collect();
    delivered_all(&desk, &receipted).await;
    // Everything that exists on B was delivered, receipted or not.
    for id in &sent {
        if status_on(&on_b, id).await.is_some() {
            let id = id.clone();
            let desk = desk.clone();
            eventually(Duration::from_secs(30), async || {
                if desk.lock().expect("the desk").deliveries.contains_key(&id) {
                    Ok(())
                } else {
                    Err(format!("`{id}` exists but is not delivered"))
                }
            })
            .await;
        }
    }
    // Give leases of the dead node's connection time to run out and any
    // wrong redelivery time to show.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let delivered = {
        let desk = desk.lock().expect("the desk");
        let acknowledged = acknowledged.lock().expect("the acknowledged");
        let mut redelivered = 0;
        let mut after_ack = Vec::new();
        for (id, times) in &desk.deliveries {
            if times.len() > 1 {
                redelivered += 1;
            }
            if let Some(stored) = acknowledged.get(id)
                && times.iter().any(|at| at > stored)
            {
                after_ack.push(id.clone());
            }
        }
        let lost = receipted
            .iter()
            .filter(|id| !desk.deliveries.contains_key(*id))
            .count();
        let connections = desk.connections;
        println!(
            "node loss: the provider subscribed {connections} times; {} submitted, {} receipted, {refused} refused or cut off; {} delivered, \
         {lost} receipted lost, {redelivered} delivered more than once (in flight at the kill), \
         {} delivered again after their acknowledgement was stored",
            sent.len(),
            receipted.len(),
            desk.deliveries.len(),
            after_ack.len()
        );
        assert_eq!(lost, 0);
        assert!(connections >= 2, "the provider moved to node B");
        assert!(after_ack.is_empty(), "redelivered after ack: {after_ack:?}");
        desk.deliveries.len()
    };
    provider.abort();
    watcher.abort();

    // The stream replays cleanly into a fresh replica, with every
    // delivered application in it.
    let verified = run_shep(&["journal", "verify", "--nats", &nats.url()]).await;
    let stdout = verified.ok();
    println!("{}", stdout.trim());
    let applications: usize = stdout
        .split("; ")
        .nth(1)
        .and_then(|part| part.split_whitespace().next())
        .and_then(|count| count.parse().ok())
        .unwrap_or_else(|| panic!("a count of applications in {stdout:?}"));
    assert!(applications >= delivered, "{stdout}");
    drop(b);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_unreachable_refuses_work_with_storage_unavailable_then_recovers() {
    if !test_server::available("nats_unreachable_refuses_work") {
        return;
    }
    let _serial = ONE_AT_A_TIME.lock().await;
    let mut nats = NatsServer::start();
    let tmp = TempDir::new("shep-nats-down");
    let data = tmp.path().join("data");
    let config = cluster_config(tmp.path(), &nats.url(), 1);
    let gateway = node(tmp.path(), "gateway", &data, &config).await;
    let channel = connect(&gateway.url()).await;
    let applicant = applicant_of(&data);
    let storage_health = async || {
        use tonic_health::pb::HealthCheckRequest;
        use tonic_health::pb::health_client::HealthClient;
        HealthClient::new(channel.clone())
            .check(HealthCheckRequest {
                service: "shep.storage".to_owned(),
            })
            .await
            .map(|response| response.into_inner().status())
    };
    use tonic_health::pb::health_check_response::ServingStatus;
    assert_eq!(storage_health().await.ok(), Some(ServingStatus::Serving));

    nats.kill();
    let (id, envelope) = sealed(&applicant);
    // A Submit sent before the client notices the lost connection waits out
    // its publish timeout (10 s) before it is refused.
    let refused = eventually(Duration::from_secs(30), async || match GatewayClient::new(
        channel.clone(),
    )
    .submit(envelope.clone())
    .await
    {
        Err(status) if reason(&status) == "STORAGE_UNAVAILABLE" => Ok(status),
        other => Err(format!("{other:?}")),
    })
    .await;
    refusal::<()>(
        Err(refused),
        tonic::Code::Unavailable,
        "STORAGE_UNAVAILABLE",
    );
    eventually(PATIENCE, async || match storage_health().await {
        Ok(ServingStatus::NotServing) => Ok(()),
        other => Err(format!("{other:?}")),
    })
    .await;
    // Lookups need no storage: still answered.
    let lookup = applicant.seal(&applicant.request(LOOKUP_SERVICE, iin(APPLICANT_IIN)));
    GatewayClient::new(channel.clone())
        .call(lookup.expect("signing"))
        .await
        .unwrap_or_else(|status| panic!("a lookup while NATS is down: {}", describe(&status)));

    // NATS back on the same port and storage: the same message is accepted.
    nats.spawn();
    eventually(Duration::from_secs(30), async || {
        match storage_health().await {
            Ok(ServingStatus::Serving) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let receipt = eventually(Duration::from_secs(30), async || {
        GatewayClient::new(channel.clone())
            .submit(envelope.clone())
            .await
            .map(tonic::Response::into_inner)
            .map_err(|status| describe(&status))
    })
    .await;
    assert_eq!(receipt.message_id, id);
    assert!(status_on(&channel, &id).await.is_some());
    println!(
        "NATS down: Submit refused with STORAGE_UNAVAILABLE, shep.storage NOT_SERVING, lookups answered; NATS back: the same message receipted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nats_server_lost_from_a_three_server_cluster_loses_nothing_receipted() {
    if !test_server::available("a_nats_server_lost_from_a_three_server_cluster") {
        return;
    }
    let _serial = ONE_AT_A_TIME.lock().await;
    let mut cluster = NatsCluster::start();
    let tmp = TempDir::new("shep-server-loss");
    let data = tmp.path().join("data");
    let config = cluster_config(tmp.path(), &cluster.urls(), 3);
    let gateway = node(tmp.path(), "gateway", &data, &config).await;
    let channel = connect(&gateway.url()).await;

    // The server leading the stream's replicas: losing it moves the
    // leadership, the hardest loss for writes in flight.
    let leader = eventually(Duration::from_secs(30), async || {
        cluster
            .stream_leader("SHEP_LOG")
            .ok_or("no leader reported yet")
    })
    .await;
    let victim = cluster.servers[leader].name().to_owned();
    let (sent, receipts, refused) = {
        let servers = &mut cluster.servers;
        load(
            &applicant_of(&data),
            std::slice::from_ref(&channel),
            move || servers[leader].kill(),
        )
        .await
    };
    let receipted: BTreeSet<String> = receipts.keys().cloned().collect();
    assert!(receipted.len() >= KILL_AFTER);

    // Every receipted application is there and is delivered.
    let desk: Arc<std::sync::Mutex<Desk>> = Arc::default();
    let provider = run_desk(vec![gateway.url()], desk.clone());
    delivered_all(&desk, &receipted).await;
    let mut found = 0;
    for id in &receipted {
        assert!(
            status_on(&channel, id).await.is_some(),
            "receipted `{id}` is gone"
        );
        found += 1;
    }
    println!(
        "server loss (nats-server {victim}, the stream's leader, killed; replicas 3): {} submitted, {} \
         receipted, {refused} refused (while the stream's leader moved) or cut off; {found} \
         receipted found and delivered, 0 lost",
        sent.len(),
        receipted.len()
    );
    provider.abort();
}
