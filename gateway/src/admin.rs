//! The admin operations, free of transport types: the routing table,
//! dead letters, the registries' fixtures and audit, and the toolkit's
//! faults, scenarios, session bindings, exchange journal and reset. The gRPC adapter
//! (`crate::grpc::AdminGrpcAdapter`) sits behind the admin interceptor
//! ([`crate::admin_auth::AdminAuth`]) and delegates here.

mod bindings;

use std::path::Path;

use shep_proto::admin::v1::{
    ApplyScenarioResponse, DeadLetter, ExchangeFilter, Fault, FixturesResponse,
    ListDeadLettersResponse, ListExchangesRequest, ListExchangesResponse, ListFaultsResponse,
    ListRoutesResponse, ResetResponse, Route, Scenario, UnusedFixture, UnusedResponse,
    VerifyExchangesRequest, VerifyExchangesResponse,
};
use shep_proto::registry::v1::{
    AccessLogRequest, AccessLogResponse, ReloadFixturesRequest, ReloadFixturesResponse,
};
use shep_registries::fixtures::FixtureSource;
use shep_registries::{RegistryData, RegistryKind, Scope};

use crate::engine::Engine;
use crate::envelope::parse_uuid;
use crate::error::GatewayError;
use crate::registry::RegistriesHandle;
use crate::routes::RoutingTable;
use crate::toolkit::CallContext;
use crate::toolkit::faults::InvalidFault;

pub(crate) use bindings::{bind_session, list_session_bindings, unbind_session};

// === Routes ===

/// The routing table in force.
pub(crate) fn list_routes(engine: &Engine) -> ListRoutesResponse {
    let table = engine.routes();
    ListRoutesResponse {
        routes: table
            .routes()
            .iter()
            .map(|route| route.to_proto())
            .collect(),
        source: table.source().to_owned(),
    }
}

/// One route.
pub(crate) fn get_route(engine: &Engine, service: &str) -> Result<Route, GatewayError> {
    engine
        .routes()
        .route(service)
        .map(|route| route.to_proto())
        .ok_or_else(|| GatewayError::UnknownService(service.to_owned()))
}

fn toml_invalid(field: &'static str, error: impl std::fmt::Display) -> GatewayError {
    GatewayError::InvalidField {
        field,
        problem: error.to_string(),
    }
}

/// Replaces the routing table with `toml`, or with the routes file re-read
/// when `toml` is empty.
pub(crate) async fn reload_routes(
    engine: &Engine,
    routes_file: Option<&Path>,
    toml: &str,
) -> Result<ListRoutesResponse, GatewayError> {
    let (text, source) = if toml.is_empty() {
        let Some(path) = routes_file else {
            return Err(toml_invalid(
                "toml",
                "is required: the gateway runs on the embedded table, there is no file to re-read",
            ));
        };
        let text = tokio::fs::read_to_string(path).await.map_err(|error| {
            toml_invalid("toml", format!("cannot read `{}`: {error}", path.display()))
        })?;
        (text, path.display().to_string())
    } else {
        (toml.to_owned(), "admin-api".to_owned())
    };
    let table = RoutingTable::from_toml(&text, &source, &engine.registry_ids())
        .map_err(|error| toml_invalid("toml", error))?;
    engine.replace_routes(table);
    tracing::info!(%source, "routing table reloaded");
    Ok(list_routes(engine))
}

/// Adds or replaces one service's route.
pub(crate) fn put_route(engine: &Engine, toml: &str) -> Result<Route, GatewayError> {
    let (table, id) = engine
        .routes()
        .with_service(toml, &engine.registry_ids())
        .map_err(|error| toml_invalid("toml", error))?;
    let route = table
        .route(&id)
        .map(|route| route.to_proto())
        .ok_or_else(|| GatewayError::UnknownService(id.clone()))?;
    engine.replace_routes(table);
    tracing::info!(service = %id, "route put");
    Ok(route)
}

/// Removes one service's route.
pub(crate) fn delete_route(engine: &Engine, id: &str) -> Result<ListRoutesResponse, GatewayError> {
    let table = engine
        .routes()
        .without_service(id, &engine.registry_ids())
        .ok_or_else(|| GatewayError::UnknownService(id.to_owned()))?
        .map_err(|error| toml_invalid("service_id", error))?;
    engine.replace_routes(table);
    tracing::info!(service = %id, "route deleted");
    Ok(list_routes(engine))
}

// === Dead letters ===

/// Dead letters of `provider` (of every provider when empty), with why each stopped.
pub(crate) async fn list_dead_letters(
    engine: &Engine,
    provider: &str,
) -> Result<ListDeadLettersResponse, GatewayError> {
    let mut dead_letters = Vec::new();
    for (provider_id, pending) in crate::provider::dead_letters(engine, provider).await? {
        let reason = engine
            .store()
            .with(&pending.message_id, |record| {
                record
                    .events
                    .last()
                    .map(|event| event.reason.clone())
                    .unwrap_or_default()
            })
            .await?
            .unwrap_or_default();
        dead_letters.push(DeadLetter {
            reason,
            message_id: pending.message_id,
            service_id: pending.service_id,
            provider_id,
        });
    }
    Ok(ListDeadLettersResponse { dead_letters })
}

/// Puts a dead letter back into its provider's queue.
pub(crate) async fn requeue_dead_letter(
    engine: &Engine,
    message_id: &str,
) -> Result<DeadLetter, GatewayError> {
    let provider_id = crate::provider::requeue_dead_letter(engine, message_id).await?;
    let (message_id, service_id) = engine
        .store()
        .with(&parse_uuid("message_id", message_id)?, |record| {
            (record.message_id.clone(), record.service_id.clone())
        })
        .await?
        .unwrap_or_default();
    Ok(DeadLetter {
        message_id,
        service_id,
        provider_id,
        reason: String::new(),
    })
}

// === Registries ===

/// Replaces the in-process registries' fixtures.
pub(crate) fn reload_fixtures(
    registries: &RegistriesHandle,
    request: &ReloadFixturesRequest,
) -> Result<ReloadFixturesResponse, GatewayError> {
    let documents = shep_registries::grpc::documents(request);
    let (summary, generation) = registries
        .data
        .reload(&documents)
        .map_err(fixtures_invalid)?;
    tracing::info!(generation, in_process = ?registries.in_process, "fixtures reloaded");
    Ok(shep_registries::grpc::reload_response(summary, generation))
}

/// The in-process registries' audit, with systems' reads of applicants'
/// applications as registry `applications`; a remote registry keeps its own.
pub(crate) fn access_log(
    registries: &RegistriesHandle,
    request: &AccessLogRequest,
) -> Result<AccessLogResponse, GatewayError> {
    let registry = &request.registry;
    if !registry.is_empty() && registry != "applications" {
        let kind =
            RegistryKind::parse(registry).map_err(|error| toml_invalid("registry", error))?;
        if !registries.in_process.contains(&kind) {
            return Err(toml_invalid(
                "registry",
                format!(
                    "registry `{registry}` is served remotely and keeps its own audit (shep.registry.v1.RegistryAdmin/AccessLog)"
                ),
            ));
        }
    }
    Ok(registries.data.audit().query(request))
}

// === Toolkit ===

fn scope(ctx: &CallContext) -> Scope<'_> {
    match ctx.session() {
        Some(id) => Scope::Session(id),
        None => Scope::Global,
    }
}

fn fixtures_invalid(error: impl std::fmt::Display) -> GatewayError {
    GatewayError::InvalidField {
        field: "fixtures",
        problem: error.to_string(),
    }
}

/// The fixture documents and summary of the caller's scope.
pub(crate) fn fixtures(data: &RegistryData, ctx: &CallContext) -> FixturesResponse {
    let scope = scope(ctx);
    let summary = data.summary_for(scope);
    let generation = data.summary().1;
    FixturesResponse {
        documents: data.documents(scope),
        scope: scope.describe(),
        summary: Some(shep_registries::grpc::reload_response(summary, generation)),
    }
}

/// `Admin.PutFixtures`.
pub(crate) async fn put_fixtures(
    engine: &Engine,
    data: &RegistryData,
    ctx: &CallContext,
    name: &str,
    json: &str,
) -> Result<FixturesResponse, GatewayError> {
    if name.trim().is_empty() {
        return Err(GatewayError::InvalidField {
            field: "name",
            problem: "is required".to_owned(),
        });
    }
    put_fixture(engine, data, ctx, name, json).await?;
    Ok(fixtures(data, ctx))
}

/// Puts one fixture document in the caller's scope: checked and applied
/// here first (all or nothing), then shared with the cluster's other nodes.
async fn put_fixture(
    engine: &Engine,
    data: &RegistryData,
    ctx: &CallContext,
    name: &str,
    json: &str,
) -> Result<(), GatewayError> {
    data.put_document(scope(ctx), FixtureSource::inline(name, json))
        .map_err(fixtures_invalid)?;
    if let Some(shared) = engine.toolkit().shared() {
        shared
            .put_fixture(ctx.session(), name, json)
            .await
            .map_err(GatewayError::Storage)?;
    }
    Ok(())
}

/// `Admin.DeleteFixtures`.
pub(crate) async fn delete_fixtures(
    engine: &Engine,
    data: &RegistryData,
    ctx: &CallContext,
    name: &str,
) -> Result<FixturesResponse, GatewayError> {
    let not_found = || {
        GatewayError::ToolkitNotFound(format!(
            "no fixture document `{name}` in {}",
            scope(ctx).describe()
        ))
    };
    if let Some(shared) = engine.toolkit().shared() {
        if !data.documents(scope(ctx)).iter().any(|known| known == name) {
            return Err(not_found());
        }
        shared
            .delete_fixture(ctx.session(), name)
            .await
            .map_err(GatewayError::Storage)?;
        return Ok(fixtures(data, ctx));
    }
    match data.delete_document(scope(ctx), name) {
        None => Err(not_found()),
        Some(result) => {
            result.map_err(fixtures_invalid)?;
            Ok(fixtures(data, ctx))
        }
    }
}

/// `Admin.AddFault`.
pub(crate) async fn add_fault(
    engine: &Engine,
    ctx: &CallContext,
    fault: Fault,
) -> Result<Fault, GatewayError> {
    attach_fault(engine, ctx, fault, "")
        .await
        .map_err(|error| match error {
            Attach::Invalid(error) => GatewayError::InvalidField {
                field: error.field,
                problem: error.problem,
            },
            Attach::Failed(error) => error,
        })
}

/// Why a fault was not attached.
enum Attach {
    Invalid(InvalidFault),
    Failed(GatewayError),
}

/// Attaches `fault` for the caller's session: here, or on every node of
/// the cluster (through the shared bucket).
async fn attach_fault(
    engine: &Engine,
    ctx: &CallContext,
    fault: Fault,
    scenario: &str,
) -> Result<Fault, Attach> {
    let faults = &engine.toolkit().faults;
    let registries = engine.registry_ids();
    let Some(shared) = engine.toolkit().shared() else {
        return faults
            .add(fault, ctx.session(), scenario, &registries)
            .map_err(Attach::Invalid);
    };
    let fault = faults
        .prepare(fault, ctx.session(), scenario, &registries)
        .map_err(Attach::Invalid)?;
    shared
        .put_fault(&fault)
        .await
        .map_err(|error| Attach::Failed(GatewayError::Storage(error)))?;
    Ok(fault)
}

/// `Admin.ListFaults`.
pub(crate) fn list_faults(engine: &Engine, ctx: &CallContext) -> ListFaultsResponse {
    ListFaultsResponse {
        faults: engine.toolkit().faults.list(ctx.session()),
    }
}

/// `Admin.DeleteFault`.
pub(crate) async fn delete_fault(
    engine: &Engine,
    ctx: &CallContext,
    id: &str,
) -> Result<ListFaultsResponse, GatewayError> {
    let faults = &engine.toolkit().faults;
    let not_found = || GatewayError::ToolkitNotFound(format!("no fault `{id}`"));
    match engine.toolkit().shared() {
        None => {
            if !faults.remove(id, ctx.session()) {
                return Err(not_found());
            }
        }
        Some(shared) => {
            if !faults
                .list(ctx.session())
                .iter()
                .any(|fault| fault.id == id)
            {
                return Err(not_found());
            }
            shared
                .delete_fault(id)
                .await
                .map_err(GatewayError::Storage)?;
        }
    }
    Ok(list_faults(engine, ctx))
}

/// Checks a scenario's faults and fixtures without applying them.
fn check_scenario(engine: &Engine, scenario: &Scenario) -> Result<(), GatewayError> {
    let scratch = crate::toolkit::Faults::default();
    for (index, fault) in scenario.faults.iter().enumerate() {
        scratch
            .add(fault.clone(), None, "", &engine.registry_ids())
            .map_err(|error| GatewayError::InvalidField {
                field: "faults",
                problem: format!("faults[{index}].{}: {}", error.field, error.problem),
            })?;
    }
    for document in &scenario.fixtures {
        if document.name.trim().is_empty() {
            return Err(GatewayError::InvalidField {
                field: "fixtures",
                problem: "every fixture document needs a name".to_owned(),
            });
        }
    }
    Ok(())
}

/// `Admin.PutScenario` (and scenario files at start).
pub(crate) async fn put_scenario(
    engine: &Engine,
    scenario: Scenario,
) -> Result<Scenario, GatewayError> {
    check_scenario(engine, &scenario)?;
    let scenarios = &engine.toolkit().scenarios;
    let invalid = |problem| GatewayError::InvalidField {
        field: "name",
        problem,
    };
    let Some(shared) = engine.toolkit().shared() else {
        return scenarios.put(scenario).map_err(invalid);
    };
    if scenario.name.trim().is_empty() {
        return Err(invalid("`name` is required".to_owned()));
    }
    shared
        .put_scenario(&scenario)
        .await
        .map_err(GatewayError::Storage)?;
    Ok(scenarios.get(&scenario.name).unwrap_or(scenario))
}

/// `Admin.ApplyScenario`: fixture documents first (all or nothing per
/// document), then the faults in order.
pub(crate) async fn apply_scenario(
    engine: &Engine,
    data: &RegistryData,
    ctx: &CallContext,
    name: &str,
) -> Result<ApplyScenarioResponse, GatewayError> {
    let scenario = engine
        .toolkit()
        .scenarios
        .take(name)
        .ok_or_else(|| GatewayError::ToolkitNotFound(format!("no scenario `{name}`")))?;
    for document in &scenario.fixtures {
        put_fixture(engine, data, ctx, &document.name, &document.json).await?;
    }
    let mut faults = Vec::with_capacity(scenario.faults.len());
    for fault in scenario.faults {
        let mut fault = fault;
        // Scenario fault ids are prefixed with the scenario, so applying two
        // scenarios with the same ids in one session does not collide.
        if !fault.id.is_empty() {
            fault.id = format!("{name}/{}", fault.id);
        }
        let added = attach_fault(engine, ctx, fault, name)
            .await
            .map_err(|error| match error {
                Attach::Invalid(error) => GatewayError::InvalidField {
                    field: "faults",
                    problem: format!("{}: {}", error.field, error.problem),
                },
                Attach::Failed(error) => error,
            })?;
        faults.push(added);
    }
    tracing::info!(
        scenario = name,
        session = ctx.session().unwrap_or("-"),
        "scenario applied"
    );
    Ok(ApplyScenarioResponse {
        faults,
        fixtures: Some(fixtures(data, ctx)),
    })
}

/// The filter with the caller's session filled in when it names none.
fn scoped(filter: Option<ExchangeFilter>, ctx: &CallContext) -> ExchangeFilter {
    let mut filter = filter.unwrap_or_default();
    if filter.session.is_empty() {
        filter.session = ctx.session_label();
    }
    filter
}

/// Waits, in a cluster, until this node's journal holds what every node
/// recorded so far.
async fn exchanges_caught_up(engine: &Engine) -> Result<(), GatewayError> {
    match engine.toolkit().shared() {
        Some(shared) => shared
            .exchanges_caught_up()
            .await
            .map_err(GatewayError::Storage),
        None => Ok(()),
    }
}

/// `Admin.ListExchanges`.
pub(crate) async fn list_exchanges(
    engine: &Engine,
    ctx: &CallContext,
    request: ListExchangesRequest,
) -> Result<ListExchangesResponse, GatewayError> {
    exchanges_caught_up(engine).await?;
    let limit = match request.limit {
        0 => 100,
        limit => limit.min(10_000) as usize,
    };
    let exchanges = &engine.toolkit().exchanges;
    let (found, dropped) = exchanges.list(&scoped(request.filter, ctx), limit);
    Ok(ListExchangesResponse {
        exchanges: found,
        dropped,
        recording: exchanges.recording(),
    })
}

/// `Admin.VerifyExchanges`.
pub(crate) async fn verify_exchanges(
    engine: &Engine,
    ctx: &CallContext,
    mut request: VerifyExchangesRequest,
) -> Result<VerifyExchangesResponse, GatewayError> {
    exchanges_caught_up(engine).await?;
    request.filter = Some(scoped(request.filter.take(), ctx));
    Ok(engine.toolkit().exchanges.verify(&request))
}

/// `Admin.Unused`.
pub(crate) fn unused(engine: &Engine, data: &RegistryData, ctx: &CallContext) -> UnusedResponse {
    let toolkit = engine.toolkit();
    UnusedResponse {
        fixtures: data
            .unused(ctx.session())
            .into_iter()
            .map(|(key, document)| UnusedFixture { key, document })
            .collect(),
        scenarios: toolkit
            .scenarios
            .list()
            .into_iter()
            .filter(|scenario| scenario.applied == 0)
            .map(|scenario| scenario.name)
            .collect(),
        faults: toolkit
            .faults
            .list(ctx.session())
            .into_iter()
            .filter(|fault| fault.fired == 0)
            .map(|fault| fault.id)
            .collect(),
    }
}

/// `Admin.Reset`.
pub(crate) async fn reset(
    engine: &Engine,
    data: &RegistryData,
    ctx: &CallContext,
) -> Result<ResetResponse, GatewayError> {
    let toolkit = engine.toolkit();
    let scope = scope(ctx);
    let response = match toolkit.shared() {
        None => ResetResponse {
            faults_removed: toolkit.faults.clear(ctx.session()) as u64,
            fixture_documents_removed: data.clear(scope) as u64,
            exchanges_removed: toolkit.exchanges.clear(ctx.session()) as u64,
        },
        Some(shared) => {
            let failed = GatewayError::Storage;
            let faults = toolkit.faults.ids_in(ctx.session());
            for id in &faults {
                shared.delete_fault(id).await.map_err(failed)?;
            }
            let documents = data.documents(scope);
            for name in &documents {
                shared
                    .delete_fixture(ctx.session(), name)
                    .await
                    .map_err(failed)?;
            }
            // What the deletes left (a session's empty entry) goes too.
            data.clear(scope);
            shared.exchanges_caught_up().await.map_err(failed)?;
            let exchanges = toolkit.exchanges.count(ctx.session());
            shared
                .clear_exchanges(ctx.session())
                .await
                .map_err(failed)?;
            ResetResponse {
                faults_removed: faults.len() as u64,
                fixture_documents_removed: documents.len() as u64,
                exchanges_removed: exchanges as u64,
            }
        }
    };
    if ctx.session().is_none() {
        data.forget_used();
    }
    let unbound = bindings::unbind_all(engine, ctx.session()).await?;
    tracing::info!(scope = %scope.describe(), ?response, unbound, "toolkit reset");
    Ok(response)
}

// === The clock ===

fn reading(
    reading: crate::toolkit::clock::Reading,
    ctx: &CallContext,
) -> shep_proto::admin::v1::ClockReading {
    shep_proto::admin::v1::ClockReading {
        now: Some(crate::storage::timestamp(reading.now)),
        factor: reading.factor,
        offset_seconds: reading.offset.as_seconds_f64(),
        simulated: reading.simulated,
        session: ctx.session_label(),
        own: reading.own,
    }
}

/// What the caller's session clock reads.
pub(crate) fn get_clock(engine: &Engine, ctx: &CallContext) -> shep_proto::admin::v1::ClockReading {
    reading(engine.toolkit().clock.reading(ctx.session()), ctx)
}

/// Changes the caller's session clock (the global one without a session).
/// A jump of the global clock ends the leases it jumped past; the overdue
/// events it causes follow from the deadline watcher.
pub(crate) async fn set_clock(
    engine: &Engine,
    request: shep_proto::admin::v1::SetClockRequest,
    ctx: &CallContext,
) -> Result<shep_proto::admin::v1::ClockReading, GatewayError> {
    use crate::toolkit::clock::ClockChange;
    use shep_proto::admin::v1::set_clock_request::Change;
    let change = match request.change {
        Some(Change::Set(at)) => ClockChange::Set(
            time::OffsetDateTime::from_unix_timestamp(at.seconds)
                .map(|time| time + time::Duration::nanoseconds(i64::from(at.nanos)))
                .map_err(|error| toml_invalid("set", error))?,
        ),
        Some(Change::AdvanceSeconds(seconds)) => {
            ClockChange::Advance(std::time::Duration::from_secs(seconds))
        }
        Some(Change::AdvanceWorkingDays(days)) => ClockChange::AdvanceWorkingDays(days),
        Some(Change::Factor(factor)) => ClockChange::Factor(factor),
        Some(Change::Reset(true)) => ClockChange::Reset,
        Some(Change::Reset(false)) | None => {
            return Err(GatewayError::InvalidField {
                field: "change",
                problem: "name one of set, advance_seconds, advance_working_days, factor or reset"
                    .to_owned(),
            });
        }
    };
    let (now, jumped) = engine
        .toolkit()
        .clock
        .change(ctx.session(), change, &engine.calendar)
        .map_err(|error| toml_invalid("change", error))?;
    tracing::info!(session = ctx.session().unwrap_or("-"), now = %now.now, factor = now.factor, "clock changed");
    if ctx.session().is_none() && !jumped.is_zero() {
        let by = tokio::time::Instant::now() + jumped;
        crate::provider::expire_leases_by(engine, by).await;
    }
    Ok(reading(now, ctx))
}
