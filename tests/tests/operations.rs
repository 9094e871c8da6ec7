//! Running the gateway: health and reflection, the admin API and its token,
//! reloading the routing table, and ГБД ФЛ as a remote registry.

use std::sync::{Arc, Mutex};

use shep_gateway::routes::DEFAULT_ROUTES;
use shep_proto::admin::v1::{GetRouteRequest, ListRoutesRequest, ReloadRoutesRequest};
use shep_proto::envelope::v1::{ApplicationStatus, Channel};
use shep_proto::registry::v1::lookup_response::Record;
use shep_proto::registry::v1::{LookupRequest, LookupResponse, lookup_request::Key};
use shep_registries::gbdfl::PersonRegistry;
use shep_registries::grpc::RegistryGrpcAdapter;
use shep_registries::{Registry, RegistryError};
use shep_tests::*;
use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;
use tonic::{Code, Request};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

/// A replacement table: one application service answered by a default provider.
const SMALL_TABLE: &str = r#"
[[system]]
id = "pep"
name_ru = "ПЭП"
role = "portal"

[[system]]
id = "arm-rshep-sko-esil-edu"
name_ru = "АРМ РШЭП, отдел образования Есильского района"
role = "provider"
operators = ["800417400129"]
bin = "151240012341"

[[service]]
id = "residence-certificate-esil"
name_ru = "Справка о месте жительства (тест)"
kind = "application"
senders = ["pep"]
channels = ["portal"]
providers = { default = "arm-rshep-sko-esil-edu" }
deadline = "3 working-days"
"#;

fn with_token<T>(message: T, authorization: &str) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", authorization.parse().unwrap());
    request
}

fn bearer(gw: &TestGateway) -> String {
    format!("Bearer {}", gw.admin_token())
}

async fn route_ids(gw: &TestGateway) -> (Vec<String>, String) {
    let list = gw
        .admin()
        .list_routes(with_token(ListRoutesRequest {}, &bearer(gw)))
        .await
        .expect("ListRoutes")
        .into_inner();
    (
        list.routes
            .into_iter()
            .map(|route| route.service_id)
            .collect(),
        list.source,
    )
}

#[tokio::test]
async fn health_reports_the_server_and_its_services_as_serving() {
    let gw = TestGateway::start().await;
    let mut health = HealthClient::new(gw.channel());
    for service in ["", "shep.gateway.v1.Gateway", "shep.provider.v1.Provider"] {
        let response = health
            .check(HealthCheckRequest {
                service: service.to_owned(),
            })
            .await
            .unwrap_or_else(|status| panic!("health of `{service}`: {status}"))
            .into_inner();
        assert_eq!(response.status(), ServingStatus::Serving, "`{service}`");
    }
    let unknown = health
        .check(HealthCheckRequest {
            service: "shep.nothing.v1.Nothing".to_owned(),
        })
        .await
        .expect_err("an unknown service has no health");
    assert_eq!(unknown.code(), Code::NotFound);
}

#[tokio::test]
async fn reflection_lists_the_shep_services() {
    let gw = TestGateway::start().await;
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = ServerReflectionClient::new(gw.channel())
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .expect("reflection answers")
        .into_inner();
    let response = next_item(&mut responses).await;
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("a service list, got {response:?}");
    };
    let names: Vec<String> = list
        .service
        .into_iter()
        .map(|service| service.name)
        .collect();
    for expected in [
        "shep.gateway.v1.Gateway",
        "shep.provider.v1.Provider",
        "shep.admin.v1.Admin",
        "grpc.health.v1.Health",
    ] {
        assert!(
            names.iter().any(|name| name == expected),
            "{expected} in {names:?}"
        );
    }
}

#[tokio::test]
async fn the_admin_api_refuses_calls_without_the_right_bearer_token() {
    let gw = TestGateway::start().await;
    let mut admin = gw.admin();
    refusal(
        admin.list_routes(ListRoutesRequest {}).await,
        Code::Unauthenticated,
        "UNAUTHENTICATED",
    );
    for wrong in [
        "Bearer not-the-token".to_owned(),
        gw.admin_token().to_owned(),
        format!("Basic {}", gw.admin_token()),
    ] {
        refusal(
            admin
                .list_routes(with_token(ListRoutesRequest {}, &wrong))
                .await,
            Code::Unauthenticated,
            "UNAUTHENTICATED",
        );
        refusal(
            admin
                .get_route(with_token(
                    GetRouteRequest {
                        service_id: ESIL_SERVICE.to_owned(),
                    },
                    &wrong,
                ))
                .await,
            Code::Unauthenticated,
            "UNAUTHENTICATED",
        );
        refusal(
            admin
                .reload_routes(with_token(
                    ReloadRoutesRequest {
                        toml: SMALL_TABLE.to_owned(),
                    },
                    &wrong,
                ))
                .await,
            Code::Unauthenticated,
            "UNAUTHENTICATED",
        );
    }
    assert_eq!(route_ids(&gw).await.0.len(), 11, "nothing was reloaded");
}

#[tokio::test]
async fn the_admin_api_lists_the_eleven_default_routes_and_gets_one() {
    let gw = TestGateway::start().await;
    let (ids, source) = route_ids(&gw).await;
    assert_eq!(source, "embedded");
    assert_eq!(ids.len(), 11, "{ids:?}");
    assert!(ids.iter().any(|id| id == LOOKUP_SERVICE));
    assert!(
        ids.windows(2).all(|pair| pair[0] < pair[1]),
        "sorted: {ids:?}"
    );

    let mut admin = gw.admin();
    let route = admin
        .get_route(with_token(
            GetRouteRequest {
                service_id: ESIL_SERVICE.to_owned(),
            },
            &bearer(&gw),
        ))
        .await
        .expect("GetRoute")
        .into_inner();
    assert_eq!(route.service_id, ESIL_SERVICE);
    assert_eq!(route.kind, "application");
    assert_eq!(route.senders, ["is-con", "pep"]);
    assert_eq!(
        route.channels,
        [Channel::Portal as i32, Channel::ServiceCentre as i32]
    );
    assert_eq!(
        route.providers_by_region.get("5942").map(String::as_str),
        Some(ESIL_PROVIDER)
    );
    assert_eq!(route.default_provider, "");
    assert_eq!(route.deadline, "5 working-days");
    assert_eq!(route.checks, ["service-centre: gbdfl, enis"]);
    assert!(route.name_ru.contains("опеке"), "{}", route.name_ru);

    let lookup = admin
        .get_route(with_token(
            GetRouteRequest {
                service_id: LOOKUP_SERVICE.to_owned(),
            },
            &bearer(&gw),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (lookup.kind.as_str(), lookup.registry.as_str()),
        ("lookup", "gbdfl")
    );

    refusal(
        admin
            .get_route(with_token(
                GetRouteRequest {
                    service_id: "no-such-service".to_owned(),
                },
                &bearer(&gw),
            ))
            .await,
        Code::NotFound,
        "UNKNOWN_SERVICE",
    );
}

#[tokio::test]
async fn reloading_an_invalid_table_is_refused_and_the_old_table_stays_in_force() {
    let gw = TestGateway::start().await;
    let mut admin = gw.admin();
    let reload = |toml: &str| {
        with_token(
            ReloadRoutesRequest {
                toml: toml.to_owned(),
            },
            &bearer(&gw),
        )
    };

    let status = refusal(
        admin.reload_routes(reload("[[service]\nid = ")).await,
        Code::InvalidArgument,
        "INVALID_FIELD",
    );
    assert_eq!(error_metadata(&status, "field").as_deref(), Some("toml"));
    assert!(status.message().contains("line"), "{}", status.message());

    let status = refusal(
        admin.reload_routes(reload(UNKNOWN_SENDER_TABLE)).await,
        Code::InvalidArgument,
        "INVALID_FIELD",
    );
    for named in ["residence-certificate-esil", "senders", "nobody"] {
        assert!(
            status.message().contains(named),
            "{named}: {}",
            status.message()
        );
    }

    // The embedded table has no file to re-read.
    refusal(
        admin.reload_routes(reload("")).await,
        Code::InvalidArgument,
        "INVALID_FIELD",
    );

    let (ids, source) = route_ids(&gw).await;
    assert_eq!((ids.len(), source.as_str()), (11, "embedded"));
    let submitted = gw.submit_application().await;
    assert_eq!(submitted.receipt.status(), ApplicationStatus::Accepted);
}

#[tokio::test]
async fn reloading_a_valid_table_replaces_the_routes() {
    let gw = TestGateway::start().await;
    let listed = gw
        .admin()
        .reload_routes(with_token(
            ReloadRoutesRequest {
                toml: SMALL_TABLE.to_owned(),
            },
            &bearer(&gw),
        ))
        .await
        .expect("a valid table is loaded")
        .into_inner();
    assert_eq!(listed.source, "admin-api");
    let ids: Vec<&str> = listed
        .routes
        .iter()
        .map(|route| route.service_id.as_str())
        .collect();
    assert_eq!(ids, ["residence-certificate-esil"]);

    let applicant = gw.applicant();
    let body = applicant.request("residence-certificate-esil", iin(APPLICANT_IIN));
    let receipt = gw
        .gateway()
        .submit(applicant.seal(&body).unwrap())
        .await
        .expect("the new service is routable")
        .into_inner();
    assert_eq!(receipt.provider_id, ESIL_PROVIDER);
    assert_eq!(receipt.status(), ApplicationStatus::Accepted);

    let old = applicant.request(ESIL_SERVICE, iin(APPLICANT_IIN));
    refusal(
        gw.gateway().submit(applicant.seal(&old).unwrap()).await,
        Code::NotFound,
        "UNKNOWN_SERVICE",
    );
}

#[tokio::test]
async fn reloading_without_toml_rereads_the_routes_file() {
    let gw = TestGateway::builder()
        .routes_toml(DEFAULT_ROUTES)
        .start()
        .await;
    let path = gw.routes_path().expect("a routes file").to_owned();
    let (ids, source) = route_ids(&gw).await;
    assert_eq!(ids.len(), 11);
    assert_eq!(source, path.display().to_string());

    std::fs::write(&path, SMALL_TABLE).unwrap();
    let listed = gw
        .admin()
        .reload_routes(with_token(ReloadRoutesRequest::default(), &bearer(&gw)))
        .await
        .expect("the file is re-read")
        .into_inner();
    assert_eq!(listed.routes.len(), 1);
    assert_eq!(listed.source, path.display().to_string());

    // A broken file keeps the table in force.
    std::fs::write(&path, UNKNOWN_SENDER_TABLE).unwrap();
    refusal(
        gw.admin()
            .reload_routes(with_token(ReloadRoutesRequest::default(), &bearer(&gw)))
            .await,
        Code::InvalidArgument,
        "INVALID_FIELD",
    );
    assert_eq!(route_ids(&gw).await.0, ["residence-certificate-esil"]);
}

/// ГБД ФЛ that remembers what it was asked.
#[derive(Debug)]
struct RecordingRegistry {
    inner: PersonRegistry,
    asked: Mutex<Vec<LookupRequest>>,
}

impl Registry for RecordingRegistry {
    fn lookup(&self, request: &LookupRequest) -> Result<LookupResponse, RegistryError> {
        self.asked.lock().unwrap().push(request.clone());
        self.inner.lookup(request)
    }
}

/// Serves `registry` over gRPC on a loopback port; returns its URL.
async fn serve_registry(registry: Arc<RecordingRegistry>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(RegistryGrpcAdapter::new(registry).into_server())
            .serve_with_incoming(TcpIncoming::from(listener)),
    );
    url
}

#[tokio::test]
async fn a_remote_person_registry_answers_lookups_and_region_checks() {
    let registry = Arc::new(RecordingRegistry {
        inner: PersonRegistry::builtin(),
        asked: Mutex::new(Vec::new()),
    });
    let url = serve_registry(registry.clone()).await;
    let gw = TestGateway::builder()
        .registry_url("gbdfl", &url)
        .start()
        .await;

    let applicant = gw.applicant();
    let body = applicant.request(LOOKUP_SERVICE, iin(APPLICANT_IIN));
    let response = gw
        .gateway()
        .call(applicant.seal(&body).unwrap())
        .await
        .expect("answered through the remote registry")
        .into_inner();
    assert_eq!(
        response.response_info.unwrap().status.unwrap().code,
        "00000"
    );
    let Some(Record::Person(person)) = response.lookup.and_then(|lookup| lookup.record) else {
        panic!("a person");
    };
    assert_eq!(person.surname, "Серикбаев");
    {
        let asked = registry.asked.lock().unwrap();
        assert_eq!(asked.len(), 1, "the remote registry was asked once");
        assert_eq!(asked[0].key, Some(Key::Iin(APPLICANT_IIN.to_owned())));
        let context = asked[0].context.as_ref().expect("a request context");
        assert_eq!(context.requester_system, "pep");
        assert_eq!(context.service_id, LOOKUP_SERVICE);
        assert_eq!(context.message_id, body.message_id);
        assert_eq!(context.operator_iin, "", "no operator on the portal");
    }

    // Submit consults it for the applicant's region.
    let submitted = gw.submit_application().await;
    assert_eq!(submitted.receipt.provider_id, ESIL_PROVIDER);
    assert_eq!(registry.asked.lock().unwrap().len(), 2);

    // Its NOT_FOUND is «нет данных».
    let operator = gw.operator();
    refusal(
        gw.gateway()
            .call(
                operator
                    .seal(&operator.request(LOOKUP_SERVICE, iin("791028302728")))
                    .unwrap(),
            )
            .await,
        Code::NotFound,
        "NO_DATA",
    );
    let asked = registry.asked.lock().unwrap();
    let context = asked.last().unwrap().context.as_ref().unwrap();
    assert_eq!(context.requester_system, "is-con");
    assert_eq!(
        context.operator_iin,
        shep_gateway::server::DEMO_OPERATOR_IIN,
        "the operator's IIN from the certificate"
    );
}

#[tokio::test]
async fn a_remote_registry_nobody_listens_on_is_unavailable() {
    let url = {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let gw = TestGateway::builder()
        .registry_url("gbdfl", &url)
        .start()
        .await;
    let applicant = gw.applicant();
    refusal(
        gw.gateway()
            .call(
                applicant
                    .seal(&applicant.request(LOOKUP_SERVICE, iin(APPLICANT_IIN)))
                    .unwrap(),
            )
            .await,
        Code::Unavailable,
        "REGISTRY_UNAVAILABLE",
    );
    // An application routed by region needs the registry too.
    let body = applicant.request(ESIL_SERVICE, iin(APPLICANT_IIN));
    refusal(
        gw.gateway().submit(applicant.seal(&body).unwrap()).await,
        Code::Unavailable,
        "REGISTRY_UNAVAILABLE",
    );
    // Checks that need no registry still answer.
    refusal(
        gw.gateway()
            .submit(
                applicant
                    .seal(&applicant.request("no-such-service", iin(APPLICANT_IIN)))
                    .unwrap(),
            )
            .await,
        Code::NotFound,
        "UNKNOWN_SERVICE",
    );
}

#[tokio::test]
async fn shutdown_completes_with_idle_clients_connected() {
    let gw = TestGateway::start().await;
    let submitted = gw.submit_application().await;
    assert_eq!(submitted.receipt.status(), ApplicationStatus::Accepted);
    tokio::time::timeout(PATIENCE, gw.shutdown())
        .await
        .expect("shutdown finishes");
}

/// How long a shutdown may take when clients hold streams open.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// Nothing listens at `url` any more.
async fn assert_not_listening(url: String) {
    let connected = tonic::transport::Endpoint::from_shared(url)
        .unwrap()
        .connect()
        .await;
    assert!(connected.is_err(), "the gateway still accepts connections");
}

#[tokio::test]
async fn shutdown_ends_an_open_watch_stream() {
    let gw = TestGateway::start().await;
    let mut watch = gw.watch_subject(iin(APPLICANT_IIN), 0).await;
    let url = gw.url();
    tokio::time::timeout(SHUTDOWN_GRACE, gw.shutdown())
        .await
        .expect("shutdown finishes while an applicant watches");
    assert!(
        matches!(
            next_within(&mut watch, PATIENCE).await,
            Next::Ended | Next::Failed(_)
        ),
        "the Watch stream ends"
    );
    assert_not_listening(url).await;
}

#[tokio::test]
async fn shutdown_ends_an_open_subscribe_stream() {
    let gw = TestGateway::start().await;
    let mut desk = gw.subscribe(ESIL_PROVIDER, 0).await;
    let url = gw.url();
    tokio::time::timeout(SHUTDOWN_GRACE, gw.shutdown())
        .await
        .expect("shutdown finishes while a provider is subscribed");
    assert!(
        matches!(
            desk.next_within(PATIENCE).await,
            Next::Ended | Next::Failed(_)
        ),
        "the Subscribe stream ends"
    );
    assert_not_listening(url).await;
}
