//! The standard gRPC services any client expects: `grpc.health.v1` with one
//! status per registry (overridable, probed for remote registries) and server
//! reflection in both versions, on the gateway and on `shep registry`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use shep_gateway::health::{Health, registry_name};
use shep_registries::gbdfl::PersonRegistry;
use shep_registries::{PopulationConfig, RegistryData};
use shep_tests::*;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tonic::transport::Channel as GrpcChannel;
use tonic_health::ServingStatus as Set;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};
use tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1alpha::server_reflection_response::MessageResponse;
use tonic_reflection::pb::v1alpha::{ServerReflectionRequest, ServerReflectionResponse};

async fn check(channel: GrpcChannel, service: &str) -> ServingStatus {
    HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: service.to_owned(),
        })
        .await
        .unwrap_or_else(|status| panic!("health of `{service}`: {status}"))
        .into_inner()
        .status()
}

/// One v1alpha reflection request and its answer.
async fn reflect_v1alpha(
    channel: GrpcChannel,
    request: MessageRequest,
) -> ServerReflectionResponse {
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(request),
    };
    let mut responses = ServerReflectionClient::new(channel)
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .expect("reflection v1alpha answers")
        .into_inner();
    next_item(&mut responses).await
}

async fn services_v1alpha(channel: GrpcChannel) -> Vec<String> {
    let response = reflect_v1alpha(channel, MessageRequest::ListServices(String::new())).await;
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("a service list, got {response:?}");
    };
    list.service
        .into_iter()
        .map(|service| service.name)
        .collect()
}

fn assert_lists(names: &[String], expected: &[&str]) {
    for name in expected {
        assert!(
            names.iter().any(|listed| listed == name),
            "{name} in {names:?}"
        );
    }
}

#[tokio::test]
async fn the_gateway_and_every_registry_are_serving_by_default() {
    let gw = TestGateway::start().await;
    let services = [
        "",
        "shep.gateway.v1.Gateway",
        "shep.provider.v1.Provider",
        "shep.admin.v1.Admin",
        "shep.nuc.v1.Nuc",
    ];
    let registries = Health::names();
    assert_eq!(registries.len(), 4);
    for service in services
        .iter()
        .copied()
        .chain(registries.iter().map(String::as_str))
    {
        assert_eq!(
            check(gw.channel(), service).await,
            ServingStatus::Serving,
            "`{service}`"
        );
    }
}

#[tokio::test]
async fn an_override_shows_in_check_and_in_watch_until_it_is_released() {
    let gw = TestGateway::start().await;
    let gbdfl = registry_name("gbdfl");
    let mut watch = HealthClient::new(gw.channel())
        .watch(HealthCheckRequest {
            service: gbdfl.clone(),
        })
        .await
        .expect("Watch")
        .into_inner();
    let status = |response: HealthCheckResponse| response.status();
    assert_eq!(status(next_item(&mut watch).await), ServingStatus::Serving);

    gw.running
        .health
        .set_override(&gbdfl, Some(Set::NotServing))
        .await;
    assert_eq!(
        status(next_item(&mut watch).await),
        ServingStatus::NotServing
    );
    assert_eq!(check(gw.channel(), &gbdfl).await, ServingStatus::NotServing);
    // Only the overridden registry changes.
    assert_eq!(
        check(gw.channel(), &registry_name("gbdul")).await,
        ServingStatus::Serving
    );

    gw.running.health.set_override(&gbdfl, None).await;
    assert_eq!(status(next_item(&mut watch).await), ServingStatus::Serving);
    assert_eq!(check(gw.channel(), &gbdfl).await, ServingStatus::Serving);
}

/// `shep registry gbdfl` on a loopback port, stopped by the sender.
async fn standalone_gbdfl() -> (String, oneshot::Sender<()>) {
    let data = Arc::new(RegistryData::new(&PopulationConfig::default(), 100).unwrap());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(shep::cli::serve_registry_on(
        listener,
        PersonRegistry::new(data.clone()),
        data,
        "token",
        async {
            let _ = stopped.await;
        },
    ));
    (url, stop)
}

/// A TCP proxy in front of `upstream` (a URL) that counts the HTTP/2
/// requests passing through (HEADERS frames from the client): positive
/// evidence that a probe ran, where sleeping for a probe period is not.
async fn request_counting_proxy(upstream: &str) -> (String, Arc<AtomicUsize>) {
    let upstream = upstream.trim_start_matches("http://").to_owned();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let requests = Arc::new(AtomicUsize::new(0));
    let counted = requests.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let counted = counted.clone();
            let upstream = upstream.clone();
            tokio::spawn(async move {
                let Ok(server) = TcpStream::connect(&upstream).await else {
                    return;
                };
                let (mut from_client, mut to_client) = client.into_split();
                let (mut from_server, mut to_server) = server.into_split();
                tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut from_server, &mut to_client).await;
                });
                // The 24-byte connection preface, then frames: a 9-byte
                // header (length, type, flags, stream) and the payload.
                let mut preface = 24;
                let mut pending = Vec::new();
                let mut buffer = vec![0; 16 * 1024];
                loop {
                    let read = match from_client.read(&mut buffer).await {
                        Ok(0) | Err(_) => break,
                        Ok(read) => read,
                    };
                    if to_server.write_all(&buffer[..read]).await.is_err() {
                        break;
                    }
                    pending.extend_from_slice(&buffer[..read]);
                    let skipped = preface.min(pending.len());
                    pending.drain(..skipped);
                    preface -= skipped;
                    while pending.len() >= 9 {
                        let length = u32::from_be_bytes([0, pending[0], pending[1], pending[2]]);
                        let frame = 9 + length as usize;
                        if pending.len() < frame {
                            break;
                        }
                        const HEADERS: u8 = 0x1;
                        if pending[3] == HEADERS {
                            counted.fetch_add(1, Ordering::SeqCst);
                        }
                        pending.drain(..frame);
                    }
                }
            });
        }
    });
    (url, requests)
}

#[tokio::test]
async fn a_remote_registry_is_probed_serving_and_not_serving_once_it_is_down() {
    let (registry_url, stop) = standalone_gbdfl().await;
    let (url, probes) = request_counting_proxy(&registry_url).await;
    let nobody = format!("http://127.0.0.1:{}", free_port());
    let gw = TestGateway::builder()
        .registry_url("gbdfl", &url)
        .registry_url("enis", &nobody)
        .configure(|config| config.health.probe_interval_ms = 50)
        .start()
        .await;
    let gbdfl = registry_name("gbdfl");
    let enis = registry_name("enis");
    let becomes = async |name: &str, wanted: ServingStatus| {
        eventually(PATIENCE, async || match check(gw.channel(), name).await {
            status if status == wanted => Ok(()),
            other => Err(other),
        })
        .await
    };
    becomes(&gbdfl, ServingStatus::Serving).await;
    becomes(&enis, ServingStatus::NotServing).await;
    // An in-process registry is not probed: it serves with the gateway.
    assert_eq!(
        check(gw.channel(), &registry_name("gbdul")).await,
        ServingStatus::Serving
    );

    // A probe does not undo an override. Probes run one at a time, each sent
    // once the last answer is applied: of three requests counted from here,
    // the second was sent after the override, and the third once the
    // second's SERVING answer was applied.
    gw.running
        .health
        .set_override(&gbdfl, Some(Set::NotServing))
        .await;
    let before = probes.load(Ordering::SeqCst);
    eventually(PATIENCE, async || match probes.load(Ordering::SeqCst) {
        now if now >= before + 3 => Ok(()),
        now => Err(format!("{} probes since the override", now - before)),
    })
    .await;
    assert_eq!(check(gw.channel(), &gbdfl).await, ServingStatus::NotServing);
    gw.running.health.set_override(&gbdfl, None).await;
    becomes(&gbdfl, ServingStatus::Serving).await;

    stop.send(()).unwrap();
    becomes(&gbdfl, ServingStatus::NotServing).await;
    // The gateway itself still serves.
    assert_eq!(check(gw.channel(), "").await, ServingStatus::Serving);
}

#[tokio::test]
async fn reflection_v1alpha_lists_what_v1_lists_and_serves_descriptors() {
    let gw = TestGateway::start().await;
    let names = services_v1alpha(gw.channel()).await;
    assert_lists(
        &names,
        &[
            "shep.gateway.v1.Gateway",
            "shep.provider.v1.Provider",
            "shep.admin.v1.Admin",
            "shep.nuc.v1.Nuc",
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
            "grpc.reflection.v1alpha.ServerReflection",
        ],
    );
    let response = reflect_v1alpha(
        gw.channel(),
        MessageRequest::FileContainingSymbol("grpc.health.v1.Health".to_owned()),
    )
    .await;
    let Some(MessageResponse::FileDescriptorResponse(files)) = response.message_response else {
        panic!("a file descriptor, got {response:?}");
    };
    let file = <prost_types::FileDescriptorProto as prost::Message>::decode(
        files.file_descriptor_proto[0].as_slice(),
    )
    .unwrap();
    assert_eq!(file.package(), "grpc.health.v1");
}

#[tokio::test]
async fn the_standalone_registry_serves_health_and_both_reflection_versions() {
    let (url, _stop) = standalone_gbdfl().await;
    let channel = connect(&url).await;
    assert_eq!(check(channel.clone(), "").await, ServingStatus::Serving);
    assert_eq!(
        check(channel.clone(), "shep.registry.v1.Registry").await,
        ServingStatus::Serving
    );
    let names = services_v1alpha(channel.clone()).await;
    assert_lists(
        &names,
        &[
            "shep.registry.v1.Registry",
            "shep.registry.v1.RegistryAdmin",
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
            "grpc.reflection.v1alpha.ServerReflection",
        ],
    );
}
