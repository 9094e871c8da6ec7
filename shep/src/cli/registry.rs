//! `shep registry`: one registry alone as a gRPC server.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use clap::builder::{PossibleValuesParser, TypedValueParser as _};
use shep_proto::registry::v1::registry_admin_server::RegistryAdminServer;
use shep_proto::registry::v1::registry_server::RegistryServer;
use shep_registries::grpc::{RegistryAdminGrpcAdapter, RegistryGrpcAdapter};
use shep_registries::{Registry, RegistryData, RegistryKind};

use super::population::PopulationArgs;

/// The registries' ids, from the one list ([`RegistryKind`]).
fn registry_kind() -> impl clap::builder::TypedValueParser<Value = RegistryKind> {
    PossibleValuesParser::new(RegistryKind::IDS)
        .map(|id| RegistryKind::from_id(&id).expect("clap only lets the listed ids through"))
}

#[derive(Debug, clap::Args)]
pub(super) struct RegistryArgs {
    /// The registry: gbdfl (ГБД ФЛ, individuals by IIN), gbdul (ГБД ЮЛ, legal
    /// entities by BIN) or enis (ЕНИС, powers of attorney by number).
    #[arg(value_parser = registry_kind())]
    registry: RegistryKind,
    /// Where to listen (default: 7711 ГБД ФЛ, 7712 ГБД ЮЛ, 7713 ЕНИС on 127.0.0.1).
    #[arg(long)]
    listen: Option<SocketAddr>,
    #[command(flatten)]
    population: PopulationArgs,
    /// Lookups the access audit keeps.
    #[arg(long, default_value_t = shep_registries::audit::DEFAULT_CAPACITY)]
    audit_capacity: usize,
    /// The bearer token of RegistryAdmin (default: SHEP_ADMIN_TOKEN, else a
    /// random one, printed).
    #[arg(long)]
    admin_token: Option<String>,
}

/// Runs `shep registry`.
pub(super) async fn run(args: RegistryArgs) -> anyhow::Result<()> {
    let data = Arc::new(args.population.data(args.audit_capacity)?);
    let name = args.registry.name();
    // 7711, 7712, 7713 in the list's order.
    let port = 7711
        + RegistryKind::ALL
            .iter()
            .position(|kind| *kind == args.registry)
            .unwrap_or_default() as u16;
    let listen = args
        .listen
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], port)));
    let token = match args.admin_token.clone() {
        Some(token) => token,
        None => match std::env::var("SHEP_ADMIN_TOKEN") {
            Ok(token) if !token.is_empty() => token,
            _ => uuid::Uuid::new_v4().simple().to_string(),
        },
    };
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding `{listen}`"))?;
    let (summary, _) = data.summary();
    println!(
        "{name} registry (shep.registry.v1.Registry) listening on {}",
        listener.local_addr()?
    );
    println!(
        "  population seed {}, fixtures: {}",
        data.population().seed(),
        summary.sources.join(", ")
    );
    println!("  RegistryAdmin (audit, fixtures) token: {token}");
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let registry = args.registry.registry(data.clone());
    serve_registry_on(listener, registry, data, &token, shutdown).await
}

/// Serves `registry` (with RegistryAdmin over `data`, health and reflection)
/// on `listener` until `shutdown` resolves. Tests use it to run a registry
/// process of their own.
pub async fn serve_registry_on<R: Registry>(
    listener: tokio::net::TcpListener,
    registry: R,
    data: Arc<RegistryData>,
    admin_token: &str,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<RegistryServer<RegistryGrpcAdapter<R>>>()
        .await;
    health_reporter
        .set_serving::<RegistryAdminServer<RegistryAdminGrpcAdapter>>()
        .await;
    tonic::transport::Server::builder()
        .add_service(health_service)
        .add_service(shep_gateway::server::reflection_builder().build_v1()?)
        .add_service(shep_gateway::server::reflection_builder().build_v1alpha()?)
        .add_service(RegistryGrpcAdapter::new(Arc::new(registry)).into_server())
        .add_service(RegistryAdminGrpcAdapter::new(data, admin_token).into_server())
        .serve_with_incoming_shutdown(
            // One write per turn of each connection rather than one per
            // answer (coalesce.rs): a gateway multiplexes its lookups on one.
            tokio_stream::StreamExt::map(
                tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
                |accepted| accepted.map(shep_gateway::coalesce::Coalesce::new),
            ),
            shutdown,
        )
        .await?;
    Ok(())
}
