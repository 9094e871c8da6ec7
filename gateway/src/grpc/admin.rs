//! `shep.admin.v1.Admin`. Served behind [`AdminAuth`](crate::admin_auth::AdminAuth)
//! (see `server.rs`), so no method here checks a credential itself.

use std::path::PathBuf;
use std::sync::Arc;

use shep_proto::admin::v1::admin_server::Admin;
use shep_proto::admin::v1::{
    ApplyScenarioRequest, ApplyScenarioResponse, DeadLetter, DeleteFaultRequest,
    DeleteFixturesRequest, DeleteRouteRequest, Fault, FixturesResponse, GetRouteRequest,
    ListDeadLettersRequest, ListDeadLettersResponse, ListExchangesRequest, ListExchangesResponse,
    ListFaultsRequest, ListFaultsResponse, ListFixturesRequest, ListRoutesRequest,
    ListRoutesResponse, ListScenariosRequest, ListScenariosResponse, ListSessionBindingsRequest,
    ListSessionBindingsResponse, PutFixturesRequest, PutRouteRequest, ReloadRoutesRequest,
    RequeueDeadLetterRequest, ResetRequest, ResetResponse, Route, Scenario, SessionBinding,
    UnbindSessionRequest, UnusedRequest, UnusedResponse, VerifyExchangesRequest,
    VerifyExchangesResponse,
};
use shep_proto::registry::v1::{
    AccessLogRequest, AccessLogResponse, ReloadFixturesRequest, ReloadFixturesResponse,
};
use tonic::{Request, Response, Status};

use super::respond;
use crate::admin;
use crate::engine::Engine;
use crate::error::into_status;
use crate::registry::RegistriesHandle;
use crate::toolkit::CallContext;

/// `shep.admin.v1.Admin`.
#[derive(Debug, Clone)]
pub(crate) struct AdminGrpcAdapter {
    engine: Arc<Engine>,
    routes_file: Option<PathBuf>,
    registries: RegistriesHandle,
}

impl AdminGrpcAdapter {
    /// Serves the admin API over `engine`; `routes_file` is what
    /// ReloadRoutes re-reads.
    pub(crate) fn new(
        engine: Arc<Engine>,
        routes_file: Option<PathBuf>,
        registries: RegistriesHandle,
    ) -> Self {
        Self {
            engine,
            routes_file,
            registries,
        }
    }
}

/// The caller's test session.
fn session<T>(request: &Request<T>) -> Result<CallContext, Status> {
    CallContext::from_request(request).map_err(into_status)
}

#[tonic::async_trait]
impl Admin for AdminGrpcAdapter {
    async fn list_routes(
        &self,
        _request: Request<ListRoutesRequest>,
    ) -> Result<Response<ListRoutesResponse>, Status> {
        Ok(Response::new(admin::list_routes(&self.engine)))
    }

    async fn get_route(
        &self,
        request: Request<GetRouteRequest>,
    ) -> Result<Response<Route>, Status> {
        respond(admin::get_route(
            &self.engine,
            &request.get_ref().service_id,
        ))
    }

    async fn reload_routes(
        &self,
        request: Request<ReloadRoutesRequest>,
    ) -> Result<Response<ListRoutesResponse>, Status> {
        respond(
            admin::reload_routes(
                &self.engine,
                self.routes_file.as_deref(),
                &request.get_ref().toml,
            )
            .await,
        )
    }

    async fn reload_fixtures(
        &self,
        request: Request<ReloadFixturesRequest>,
    ) -> Result<Response<ReloadFixturesResponse>, Status> {
        respond(admin::reload_fixtures(&self.registries, request.get_ref()))
    }

    async fn access_log(
        &self,
        request: Request<AccessLogRequest>,
    ) -> Result<Response<AccessLogResponse>, Status> {
        respond(admin::access_log(&self.registries, request.get_ref()))
    }

    async fn list_dead_letters(
        &self,
        request: Request<ListDeadLettersRequest>,
    ) -> Result<Response<ListDeadLettersResponse>, Status> {
        respond(admin::list_dead_letters(&self.engine, &request.get_ref().provider_id).await)
    }

    async fn requeue_dead_letter(
        &self,
        request: Request<RequeueDeadLetterRequest>,
    ) -> Result<Response<DeadLetter>, Status> {
        respond(admin::requeue_dead_letter(&self.engine, &request.get_ref().message_id).await)
    }

    async fn put_route(
        &self,
        request: Request<PutRouteRequest>,
    ) -> Result<Response<Route>, Status> {
        respond(admin::put_route(&self.engine, &request.get_ref().toml))
    }

    async fn delete_route(
        &self,
        request: Request<DeleteRouteRequest>,
    ) -> Result<Response<ListRoutesResponse>, Status> {
        respond(admin::delete_route(
            &self.engine,
            &request.get_ref().service_id,
        ))
    }

    async fn put_fixtures(
        &self,
        request: Request<PutFixturesRequest>,
    ) -> Result<Response<FixturesResponse>, Status> {
        let ctx = session(&request)?;
        let request = request.get_ref();
        respond(
            admin::put_fixtures(
                &self.engine,
                &self.registries.data,
                &ctx,
                &request.name,
                &request.json,
            )
            .await,
        )
    }

    async fn delete_fixtures(
        &self,
        request: Request<DeleteFixturesRequest>,
    ) -> Result<Response<FixturesResponse>, Status> {
        let ctx = session(&request)?;
        respond(
            admin::delete_fixtures(
                &self.engine,
                &self.registries.data,
                &ctx,
                &request.get_ref().name,
            )
            .await,
        )
    }

    async fn list_fixtures(
        &self,
        request: Request<ListFixturesRequest>,
    ) -> Result<Response<FixturesResponse>, Status> {
        let ctx = session(&request)?;
        Ok(Response::new(admin::fixtures(&self.registries.data, &ctx)))
    }

    async fn add_fault(&self, request: Request<Fault>) -> Result<Response<Fault>, Status> {
        let ctx = session(&request)?;
        respond(admin::add_fault(&self.engine, &ctx, request.into_inner()).await)
    }

    async fn list_faults(
        &self,
        request: Request<ListFaultsRequest>,
    ) -> Result<Response<ListFaultsResponse>, Status> {
        let ctx = session(&request)?;
        Ok(Response::new(admin::list_faults(&self.engine, &ctx)))
    }

    async fn delete_fault(
        &self,
        request: Request<DeleteFaultRequest>,
    ) -> Result<Response<ListFaultsResponse>, Status> {
        let ctx = session(&request)?;
        respond(admin::delete_fault(&self.engine, &ctx, &request.get_ref().id).await)
    }

    async fn put_scenario(&self, request: Request<Scenario>) -> Result<Response<Scenario>, Status> {
        respond(admin::put_scenario(&self.engine, request.into_inner()).await)
    }

    async fn list_scenarios(
        &self,
        _request: Request<ListScenariosRequest>,
    ) -> Result<Response<ListScenariosResponse>, Status> {
        Ok(Response::new(ListScenariosResponse {
            scenarios: self.engine.toolkit().scenarios.list(),
        }))
    }

    async fn apply_scenario(
        &self,
        request: Request<ApplyScenarioRequest>,
    ) -> Result<Response<ApplyScenarioResponse>, Status> {
        let ctx = session(&request)?;
        respond(
            admin::apply_scenario(
                &self.engine,
                &self.registries.data,
                &ctx,
                &request.get_ref().name,
            )
            .await,
        )
    }

    async fn list_exchanges(
        &self,
        request: Request<ListExchangesRequest>,
    ) -> Result<Response<ListExchangesResponse>, Status> {
        let ctx = session(&request)?;
        respond(admin::list_exchanges(&self.engine, &ctx, request.into_inner()).await)
    }

    async fn verify_exchanges(
        &self,
        request: Request<VerifyExchangesRequest>,
    ) -> Result<Response<VerifyExchangesResponse>, Status> {
        let ctx = session(&request)?;
        respond(admin::verify_exchanges(&self.engine, &ctx, request.into_inner()).await)
    }

    async fn unused(
        &self,
        request: Request<UnusedRequest>,
    ) -> Result<Response<UnusedResponse>, Status> {
        let ctx = session(&request)?;
        Ok(Response::new(admin::unused(
            &self.engine,
            &self.registries.data,
            &ctx,
        )))
    }

    async fn reset(
        &self,
        request: Request<ResetRequest>,
    ) -> Result<Response<ResetResponse>, Status> {
        let ctx = session(&request)?;
        respond(admin::reset(&self.engine, &self.registries.data, &ctx).await)
    }

    async fn get_clock(
        &self,
        request: Request<shep_proto::admin::v1::GetClockRequest>,
    ) -> Result<Response<shep_proto::admin::v1::ClockReading>, Status> {
        let ctx = session(&request)?;
        Ok(Response::new(admin::get_clock(&self.engine, &ctx)))
    }

    async fn bind_session(
        &self,
        request: Request<SessionBinding>,
    ) -> Result<Response<SessionBinding>, Status> {
        respond(admin::bind_session(&self.engine, request.into_inner()).await)
    }

    async fn list_session_bindings(
        &self,
        request: Request<ListSessionBindingsRequest>,
    ) -> Result<Response<ListSessionBindingsResponse>, Status> {
        Ok(Response::new(admin::list_session_bindings(
            &self.engine,
            request.get_ref(),
        )))
    }

    async fn unbind_session(
        &self,
        request: Request<UnbindSessionRequest>,
    ) -> Result<Response<ListSessionBindingsResponse>, Status> {
        respond(admin::unbind_session(&self.engine, request.get_ref()).await)
    }

    async fn set_clock(
        &self,
        request: Request<shep_proto::admin::v1::SetClockRequest>,
    ) -> Result<Response<shep_proto::admin::v1::ClockReading>, Status> {
        let ctx = session(&request)?;
        respond(admin::set_clock(&self.engine, request.into_inner(), &ctx).await)
    }
}
