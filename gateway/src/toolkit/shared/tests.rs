//! Two gateways sharing a toolkit through a real nats-server, over their real
//! gRPC sockets.

use std::path::Path;
use std::time::Duration;

use shep_proto::admin::v1::admin_client::AdminClient;
use shep_proto::admin::v1::{
    ApplyScenarioRequest, DeleteFaultRequest, DeleteFixturesRequest, ErrorEffect, ExchangeFilter,
    Fault, FaultTarget, ListExchangesRequest, ListFaultsRequest, ListSessionBindingsRequest,
    PutFixturesRequest, ResetRequest, Scenario, SessionBinding, fault, fault_target,
    session_binding,
};
use shep_proto::gateway::v1::gateway_client::GatewayClient;
use tokio::net::TcpListener;
use tonic::transport::Channel;

use crate::config::{ClusterConfig, GatewayConfig};
use crate::server::{RunningGateway, start_on};
use crate::storage::jetstream::test_server::{self, NatsServer};
use crate::testing;
use crate::toolkit::SESSION_HEADER;

const TOKEN: &str = "shared-toolkit-test";

/// A node of a cluster named `prefix` on `nats`, in `data_dir`.
async fn node(nats: &NatsServer, prefix: &str, data_dir: &Path) -> RunningGateway {
    let mut config = GatewayConfig {
        data_dir: data_dir.to_owned(),
        cluster: ClusterConfig {
            nats: Some(nats.url()),
            prefix: prefix.to_owned(),
            replicas: 1,
        },
        ..GatewayConfig::default()
    };
    config.admin.token = Some(TOKEN.to_owned());
    config.checks.verify_signatures = false;
    // The admin API is what these tests use; plaintext keeps them short.
    config.auth.participants = crate::config::ParticipantAuth::Off;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    start_on(listener, config)
        .await
        .expect("a cluster node starts")
}

/// Two nodes of one cluster: the second starts on the first one's data
/// directory, so they share the test НУЦ.
async fn cluster(nats: &NatsServer) -> (RunningGateway, RunningGateway, tempdir::Dir) {
    let prefix = format!("t{}", uuid::Uuid::new_v4().simple());
    let dir = tempdir::Dir::new();
    let first = node(nats, &prefix, dir.path()).await;
    let second = node(nats, &prefix, dir.path()).await;
    (first, second, dir)
}

mod tempdir {
    /// A directory removed when dropped.
    pub(super) struct Dir(std::path::PathBuf);

    impl Dir {
        pub(super) fn new() -> Self {
            let path = std::env::temp_dir().join(format!(
                "shep-shared-toolkit-{}",
                uuid::Uuid::new_v4().simple()
            ));
            std::fs::create_dir_all(&path).unwrap();
            Self(path)
        }

        pub(super) fn path(&self) -> &std::path::Path {
            &self.0
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

async fn channel(node: &RunningGateway) -> Channel {
    Channel::from_shared(node.url())
        .unwrap()
        .connect()
        .await
        .unwrap()
}

fn request<T>(message: T, session: Option<&str>) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    let metadata = request.metadata_mut();
    metadata.insert("authorization", format!("Bearer {TOKEN}").parse().unwrap());
    if let Some(session) = session {
        metadata.insert(SESSION_HEADER, session.parse().unwrap());
    }
    request
}

async fn admin(node: &RunningGateway) -> AdminClient<Channel> {
    AdminClient::new(channel(node).await)
}

/// A ГБД ФЛ lookup through `node` in `session`: the fault that failed it, if any.
async fn lookup(node: &RunningGateway, session: &str) -> Result<(), tonic::Status> {
    let mut gateway = GatewayClient::new(channel(node).await);
    gateway
        .call(request(
            testing::lookup(&testing::message_id()),
            Some(session),
        ))
        .await
        .map(drop)
}

/// Retries `check` for a few seconds until it holds: another node applies a
/// change a moment after the node that made it answered.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..100 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what}: not within 5 s");
}

fn gbdfl_unavailable() -> Fault {
    Fault {
        target: Some(FaultTarget {
            target: Some(fault_target::Target::Registry("gbdfl".to_owned())),
        }),
        effect: Some(fault::Effect::Error(ErrorEffect {
            code: "UNAVAILABLE".to_owned(),
            message: "ГБД ФЛ недоступна".to_owned(),
            ..ErrorEffect::default()
        })),
        ..Fault::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fault_added_on_one_node_fires_on_another_and_goes_with_a_delete_there() {
    if !test_server::available("a_fault_added_on_one_node_fires_on_another") {
        return;
    }
    let nats = NatsServer::start();
    let (a, b, _dir) = cluster(&nats).await;
    let added = admin(&a)
        .await
        .add_fault(request(gbdfl_unavailable(), Some("run-1")))
        .await
        .unwrap()
        .into_inner();
    // Made-up ids carry the node, so two nodes never make the same one.
    assert!(added.id.starts_with("f1-"), "{}", added.id);

    eventually("the fault fires on B", || async {
        lookup(&b, "run-1")
            .await
            .is_err_and(|status| status.code() == tonic::Code::Unavailable)
    })
    .await;
    assert!(
        lookup(&b, "run-2").await.is_ok(),
        "another session is untouched"
    );
    let listed = admin(&b)
        .await
        .list_faults(request(ListFaultsRequest::default(), Some("run-1")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.faults.len(), 1);
    assert_eq!(listed.faults[0].id, added.id);

    admin(&b)
        .await
        .delete_fault(request(
            DeleteFaultRequest {
                id: added.id.clone(),
            },
            Some("run-1"),
        ))
        .await
        .unwrap();
    assert!(lookup(&b, "run-1").await.is_ok(), "gone on B at once");
    eventually("the fault is gone on A", || async {
        lookup(&a, "run-1").await.is_ok()
    })
    .await;
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exchanges_recorded_on_one_node_are_listed_and_reset_on_another() {
    if !test_server::available("exchanges_recorded_on_one_node_are_listed_on_another") {
        return;
    }
    let nats = NatsServer::start();
    let (a, b, _dir) = cluster(&nats).await;
    lookup(&a, "journal-run").await.unwrap();
    let list = |node: &RunningGateway| {
        let url = node.url();
        async move {
            let channel = Channel::from_shared(url).unwrap().connect().await.unwrap();
            AdminClient::new(channel)
                .list_exchanges(request(
                    ListExchangesRequest {
                        filter: Some(ExchangeFilter {
                            hop: "registry".to_owned(),
                            ..ExchangeFilter::default()
                        }),
                        limit: 0,
                    },
                    Some("journal-run"),
                ))
                .await
                .unwrap()
                .into_inner()
        }
    };
    // Listing waits for what the journal held: no retry needed on either node.
    let on_a = list(&a).await;
    assert_eq!(on_a.exchanges.len(), 1, "{:?}", on_a.exchanges);
    let on_b = list(&b).await;
    assert_eq!(on_b.exchanges.len(), 1, "{:?}", on_b.exchanges);
    assert_eq!(on_b.exchanges[0].rpc, on_a.exchanges[0].rpc);
    assert_eq!(
        on_b.exchanges[0].sequence, on_a.exchanges[0].sequence,
        "one numbering for the cluster"
    );

    let reset = admin(&b)
        .await
        .reset(request(ResetRequest::default(), Some("journal-run")))
        .await
        .unwrap()
        .into_inner();
    assert!(reset.exchanges_removed >= 1, "{reset:?}");
    assert!(list(&a).await.exchanges.is_empty());
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scenario_defined_on_one_node_applies_on_another_and_a_late_node_sees_it() {
    if !test_server::available("a_scenario_defined_on_one_node_applies_on_another") {
        return;
    }
    let nats = NatsServer::start();
    let prefix = format!("t{}", uuid::Uuid::new_v4().simple());
    let dir = tempdir::Dir::new();
    let a = node(&nats, &prefix, dir.path()).await;
    let scenario = Scenario {
        name: "gbdfl-down".to_owned(),
        faults: vec![Fault {
            id: "down".to_owned(),
            ..gbdfl_unavailable()
        }],
        ..Scenario::default()
    };
    admin(&a)
        .await
        .put_scenario(request(scenario, None))
        .await
        .unwrap();
    // Started after the change: it reads the bucket from its start.
    let b = node(&nats, &prefix, dir.path()).await;
    let applied = admin(&b)
        .await
        .apply_scenario(request(
            ApplyScenarioRequest {
                name: "gbdfl-down".to_owned(),
            },
            Some("run-s"),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(applied.faults[0].id, "gbdfl-down/down");
    eventually("the scenario's fault fires on A", || async {
        lookup(&a, "run-s").await.is_err()
    })
    .await;
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_fixtures_put_on_one_node_answer_on_another() {
    if !test_server::available("session_fixtures_put_on_one_node_answer_on_another") {
        return;
    }
    let nats = NatsServer::start();
    let (a, b, _dir) = cluster(&nats).await;
    admin(&a)
        .await
        .put_fixtures(request(
            PutFixturesRequest {
                name: "absent.json".to_owned(),
                json: format!(r#"{{"absent": {{"iins": ["{}"]}}}}"#, testing::APPLICANT),
            },
            Some("fx"),
        ))
        .await
        .unwrap();
    eventually("the applicant is absent on B", || async {
        lookup(&b, "fx")
            .await
            .is_err_and(|status| status.code() == tonic::Code::NotFound)
    })
    .await;
    assert!(lookup(&b, "other").await.is_ok(), "only in its session");
    admin(&b)
        .await
        .delete_fixtures(request(
            DeleteFixturesRequest {
                name: "absent.json".to_owned(),
            },
            Some("fx"),
        ))
        .await
        .unwrap();
    eventually("the applicant is back on A", || async {
        lookup(&a, "fx").await.is_ok()
    })
    .await;
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}

/// A ГБД ФЛ lookup through `node` by the portal, without a session header.
async fn lookup_unheaded(node: &RunningGateway) -> Result<(), tonic::Status> {
    let mut gateway = GatewayClient::new(channel(node).await);
    gateway
        .call(testing::lookup(&testing::message_id()))
        .await
        .map(drop)
}

async fn bindings_on(node: &RunningGateway) -> Vec<SessionBinding> {
    admin(node)
        .await
        .list_session_bindings(request(ListSessionBindingsRequest::default(), None))
        .await
        .unwrap()
        .into_inner()
        .bindings
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_binding_made_on_one_node_binds_calls_on_another_and_goes_with_a_reset_there() {
    if !test_server::available("a_binding_made_on_one_node_binds_calls_on_another") {
        return;
    }
    let nats = NatsServer::start();
    let (a, b, _dir) = cluster(&nats).await;
    admin(&a)
        .await
        .add_fault(request(gbdfl_unavailable(), Some("bound-run")))
        .await
        .unwrap();
    let bound = admin(&a)
        .await
        .bind_session(request(
            SessionBinding {
                session: "bound-run".to_owned(),
                to: Some(session_binding::To::SystemId("pep".to_owned())),
                ..SessionBinding::default()
            },
            None,
        ))
        .await
        .unwrap()
        .into_inner();
    // Made-up ids carry the node, as fault ids do.
    assert!(bound.id.starts_with("b-1-"), "{}", bound.id);
    assert!(
        lookup_unheaded(&a)
            .await
            .is_err_and(|status| status.code() == tonic::Code::Unavailable),
        "bound at once on A"
    );
    eventually("the portal's calls are in the session on B", || async {
        lookup_unheaded(&b)
            .await
            .is_err_and(|status| status.code() == tonic::Code::Unavailable)
    })
    .await;
    assert_eq!(bindings_on(&b).await, [bound]);

    admin(&b)
        .await
        .reset(request(ResetRequest::default(), Some("bound-run")))
        .await
        .unwrap();
    assert!(bindings_on(&b).await.is_empty(), "gone on B at once");
    eventually("the binding is gone on A", || async {
        bindings_on(&a).await.is_empty()
    })
    .await;
    assert!(lookup_unheaded(&a).await.is_ok());
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}
