//! The toolkit's admin calls: routes one at a time, fixture documents,
//! faults, scenarios, the exchange journal and reset. The gRPC adapter
//! (`crate::grpc::AdminGrpcAdapter`) authenticates and delegates here.

use shep_proto::admin::v1::{
    ApplyScenarioResponse, ExchangeFilter, Fault, FixturesResponse, ListExchangesRequest,
    ListExchangesResponse, ListFaultsResponse, ResetResponse, Scenario, UnusedFixture,
    UnusedResponse, VerifyExchangesRequest, VerifyExchangesResponse,
};
use shep_registries::fixtures::FixtureSource;
use shep_registries::{RegistryData, Scope};

use crate::engine::Engine;
use crate::error::GatewayError;
use crate::toolkit::CallContext;

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
pub fn fixtures(data: &RegistryData, ctx: &CallContext) -> FixturesResponse {
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
pub fn put_fixtures(
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
    data.put_document(scope(ctx), FixtureSource::inline(name, json))
        .map_err(fixtures_invalid)?;
    Ok(fixtures(data, ctx))
}

/// `Admin.DeleteFixtures`.
pub fn delete_fixtures(
    data: &RegistryData,
    ctx: &CallContext,
    name: &str,
) -> Result<FixturesResponse, GatewayError> {
    match data.delete_document(scope(ctx), name) {
        None => Err(GatewayError::ToolkitNotFound(format!(
            "no fixture document `{name}` in {}",
            scope(ctx).describe()
        ))),
        Some(result) => {
            result.map_err(fixtures_invalid)?;
            Ok(fixtures(data, ctx))
        }
    }
}

/// `Admin.AddFault`.
pub fn add_fault(engine: &Engine, ctx: &CallContext, fault: Fault) -> Result<Fault, GatewayError> {
    engine
        .toolkit()
        .faults
        .add(fault, ctx.session(), "", &engine.registry_ids())
        .map_err(|error| GatewayError::InvalidField {
            field: error.field,
            problem: error.problem,
        })
}

/// `Admin.ListFaults`.
pub fn list_faults(engine: &Engine, ctx: &CallContext) -> ListFaultsResponse {
    ListFaultsResponse {
        faults: engine.toolkit().faults.list(ctx.session()),
    }
}

/// `Admin.DeleteFault`.
pub fn delete_fault(
    engine: &Engine,
    ctx: &CallContext,
    id: &str,
) -> Result<ListFaultsResponse, GatewayError> {
    if !engine.toolkit().faults.remove(id, ctx.session()) {
        return Err(GatewayError::ToolkitNotFound(format!("no fault `{id}`")));
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
pub fn put_scenario(engine: &Engine, scenario: Scenario) -> Result<Scenario, GatewayError> {
    check_scenario(engine, &scenario)?;
    engine
        .toolkit()
        .scenarios
        .put(scenario)
        .map_err(|problem| GatewayError::InvalidField {
            field: "name",
            problem,
        })
}

/// `Admin.ApplyScenario`: fixture documents first (all or nothing per
/// document), then the faults in order.
pub fn apply_scenario(
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
        data.put_document(
            scope(ctx),
            FixtureSource::inline(&document.name, &document.json),
        )
        .map_err(fixtures_invalid)?;
    }
    let mut faults = Vec::with_capacity(scenario.faults.len());
    for fault in scenario.faults {
        let mut fault = fault;
        // Scenario fault ids are prefixed with the scenario, so applying two
        // scenarios with the same ids in one session does not collide.
        if !fault.id.is_empty() {
            fault.id = format!("{name}/{}", fault.id);
        }
        let added = engine
            .toolkit()
            .faults
            .add(fault, ctx.session(), name, &engine.registry_ids())
            .map_err(|error| GatewayError::InvalidField {
                field: "faults",
                problem: format!("{}: {}", error.field, error.problem),
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

/// `Admin.ListExchanges`.
pub fn list_exchanges(
    engine: &Engine,
    ctx: &CallContext,
    request: ListExchangesRequest,
) -> ListExchangesResponse {
    let limit = match request.limit {
        0 => 100,
        limit => limit.min(10_000) as usize,
    };
    let exchanges = &engine.toolkit().exchanges;
    let (found, dropped) = exchanges.list(&scoped(request.filter, ctx), limit);
    ListExchangesResponse {
        exchanges: found,
        dropped,
        recording: exchanges.recording(),
    }
}

/// `Admin.VerifyExchanges`.
pub fn verify_exchanges(
    engine: &Engine,
    ctx: &CallContext,
    mut request: VerifyExchangesRequest,
) -> VerifyExchangesResponse {
    request.filter = Some(scoped(request.filter.take(), ctx));
    engine.toolkit().exchanges.verify(&request)
}

/// `Admin.Unused`.
pub fn unused(engine: &Engine, data: &RegistryData, ctx: &CallContext) -> UnusedResponse {
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
pub fn reset(engine: &Engine, data: &RegistryData, ctx: &CallContext) -> ResetResponse {
    let toolkit = engine.toolkit();
    let scope = scope(ctx);
    let response = ResetResponse {
        faults_removed: toolkit.faults.clear(ctx.session()) as u64,
        fixture_documents_removed: data.clear(scope) as u64,
        exchanges_removed: toolkit.exchanges.clear(ctx.session()) as u64,
    };
    if ctx.session().is_none() {
        data.forget_used();
    }
    tracing::info!(scope = %scope.describe(), ?response, "toolkit reset");
    response
}
