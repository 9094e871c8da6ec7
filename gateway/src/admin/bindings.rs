//! `Admin.BindSession`, `ListSessionBindings` and `UnbindSession`: the
//! session bindings of [`crate::toolkit::bindings`], checked against the
//! routing table, and shared with the cluster's other nodes when there is
//! one (like faults: written to the bucket, applied by every node's watch).

use shep_proto::admin::v1::{
    ListSessionBindingsRequest, ListSessionBindingsResponse, SessionBinding, UnbindSessionRequest,
};

use crate::engine::Engine;
use crate::error::GatewayError;
use crate::routes::Role;
use crate::toolkit::bindings::{Kind, Target};

/// `Admin.BindSession`.
pub(crate) async fn bind_session(
    engine: &Engine,
    binding: SessionBinding,
) -> Result<SessionBinding, GatewayError> {
    let target = Target::from_proto(binding.to.as_ref())?;
    let routes = engine.routes();
    let unknown = |what: &str| GatewayError::InvalidField {
        field: "to",
        problem: format!("`{}` is not {what} of the routing table", target.value),
    };
    match target.kind {
        Kind::System if routes.system(&target.value).is_none() => {
            return Err(unknown("a system"));
        }
        Kind::Provider
            if routes
                .system(&target.value)
                .is_none_or(|system| system.role != Role::Provider) =>
        {
            return Err(unknown("a provider system"));
        }
        _ => {}
    }
    let bindings = &engine.toolkit().bindings;
    let bound = match engine.toolkit().shared() {
        None => bindings.bind(&binding.session, target)?,
        Some(shared) => {
            let prepared = bindings.prepare(&binding.session, target.clone())?;
            shared
                .put_binding(&target, &prepared)
                .await
                .map_err(GatewayError::Storage)?;
            prepared
        }
    };
    tracing::info!(id = %bound.id, session = %bound.session, to = ?bound.to, "session bound");
    Ok(bound)
}

/// `Admin.ListSessionBindings`.
pub(crate) fn list_session_bindings(
    engine: &Engine,
    request: &ListSessionBindingsRequest,
) -> ListSessionBindingsResponse {
    let session = Some(request.session.trim()).filter(|session| !session.is_empty());
    ListSessionBindingsResponse {
        bindings: engine.toolkit().bindings.list(session),
    }
}

/// `Admin.UnbindSession`: by id (`TOOLKIT_NOT_FOUND` when there is none),
/// or every binding of a session; answers with every binding left.
pub(crate) async fn unbind_session(
    engine: &Engine,
    request: &UnbindSessionRequest,
) -> Result<ListSessionBindingsResponse, GatewayError> {
    let bindings = &engine.toolkit().bindings;
    let (id, session) = (request.id.trim(), request.session.trim());
    match (id.is_empty(), session.is_empty()) {
        (false, true) => {
            let target = bindings
                .target_of(id)
                .ok_or_else(|| GatewayError::ToolkitNotFound(format!("no binding `{id}`")))?;
            unbind(engine, &[target]).await?;
        }
        // As Reset is: a session with nothing bound is already unbound.
        (true, false) => unbind(engine, &bindings.targets_of(Some(session))).await?,
        _ => {
            return Err(GatewayError::InvalidField {
                field: "id",
                problem: "name either a binding's id or a session, not both nor neither".to_owned(),
            });
        }
    }
    tracing::info!(id, session, "session unbound");
    Ok(ListSessionBindingsResponse {
        bindings: bindings.list(None),
    })
}

/// Removes the bindings of `session` (all for `None`), here or on every
/// node; how many there were.
pub(crate) async fn unbind_all(
    engine: &Engine,
    session: Option<&str>,
) -> Result<usize, GatewayError> {
    let targets = engine.toolkit().bindings.targets_of(session);
    unbind(engine, &targets).await?;
    Ok(targets.len())
}

async fn unbind(engine: &Engine, targets: &[Target]) -> Result<(), GatewayError> {
    let toolkit = engine.toolkit();
    match toolkit.shared() {
        None => {
            for target in targets {
                toolkit.bindings.remove(target);
            }
        }
        Some(shared) => {
            for target in targets {
                shared
                    .delete_binding(target)
                    .await
                    .map_err(GatewayError::Storage)?;
            }
        }
    }
    Ok(())
}
