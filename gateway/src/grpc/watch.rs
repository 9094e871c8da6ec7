//! `Gateway.Watch` and `Gateway.GetStatus` as the toolkit sees them: in the
//! test session of the caller (its header, a binding, else the session the
//! application was submitted in), with the faults on watch streams (refused
//! at open, or cut after N events so a consumer must resume), and in the
//! exchange journal: the request, each event sent, the cut.

use std::sync::Arc;

use shep_proto::gateway::v1::{Application, StatusEvent, WatchRequest};
use tokio::sync::mpsc;
use tonic::Request;

use crate::engine::Engine;
use crate::error::{GatewayError, InjectedError, into_status};
use crate::participants::Principal;
use crate::status::{self, Watched};
use crate::storage::WatchTarget;
use crate::toolkit::bindings::{Kind, Probe};
use crate::toolkit::exchanges::{Record, any};
use crate::toolkit::faults::{Effect, Site};
use crate::toolkit::{CallContext, inject};

const WATCH_RPC: &str = "shep.gateway.v1.Gateway/Watch";
const STATUS_RPC: &str = "shep.gateway.v1.Gateway/GetStatus";

/// The caller's context, in the session its header or a binding names (of
/// the caller, or of the `subject` watched), or else the session
/// `application` was submitted in.
async fn context<T>(
    engine: &Engine,
    request: &Request<T>,
    application: Option<&str>,
    subject: Option<&str>,
) -> Result<CallContext, GatewayError> {
    let mut ctx = CallContext::from_request(request)?;
    let bindings = &engine.toolkit().bindings;
    ctx.bind(bindings, None);
    if ctx.session.is_none()
        && let Some(subject) = subject
        && bindings.wanted().has(Kind::Subject)
    {
        let mut probe = Probe::default();
        probe.add(Kind::Subject, subject);
        ctx.session = bindings.session_of(&probe);
    }
    if ctx.session.is_none()
        && let Some(id) = application
        && let Some(stored) = engine.store().application(id).await?
        && !stored.test_session.is_empty()
    {
        ctx.session = Some(Arc::from(stored.test_session.as_str()));
    }
    Ok(ctx)
}

fn system_of(principal: &Principal) -> &str {
    match principal {
        Principal::System(id) => id,
        _ => "",
    }
}

/// Opens a watch stream: authorised, in its session, through the faults,
/// journaled event by event.
pub(super) async fn open(
    engine: &Arc<Engine>,
    request: Request<WatchRequest>,
) -> Result<mpsc::Receiver<Watched>, GatewayError> {
    let target = status::watch_target(request.get_ref())?;
    let application = match &target {
        WatchTarget::Message(id) => Some(id.clone()),
        _ => None,
    };
    let subject = subject_label(&target);
    let ctx = context(engine, &request, application.as_deref(), subject.as_deref()).await?;
    let principal = Principal::of(&request);
    let asked = request.into_inner();
    let record = |response: Option<&StatusEvent>, position: u64| {
        let mut record = Record {
            session: ctx.session_label(),
            rpc: WATCH_RPC.to_owned(),
            hop: "ingress",
            message_id: application.clone().unwrap_or_default(),
            subject: subject.clone().unwrap_or_default(),
            stream_position: position,
            ..Record::default()
        };
        match response {
            Some(event) => {
                record.response = Some(any("shep.gateway.v1.StatusEvent", event));
                record.service_id = event.service_id.clone();
            }
            None => record.request = Some(any("shep.gateway.v1.WatchRequest", &asked)),
        }
        record
    };
    let exchanges = &engine.toolkit().exchanges;
    let opened = async {
        status::authorize_watch(engine, &principal, &target).await?;
        let mut cut_after = None;
        if let Some(fired) = engine
            .toolkit()
            .faults
            .check(Site::Watch(system_of(&principal)), ctx.session())
        {
            if let Effect::CutStreamAfter(after) = fired.effect {
                cut_after = Some((u64::from(after), fired.fault_id.clone()));
            }
            inject::apply(
                fired,
                &ctx,
                "the watch stream",
                &engine.toolkit().connections,
            )
            .await?;
        }
        Ok::<_, GatewayError>(cut_after)
    };
    let cut_after = match opened.await {
        Ok(cut_after) => {
            exchanges.record(|| record(None, 0));
            cut_after
        }
        Err(error) => {
            exchanges.record(|| {
                let mut refused = record(None, 0);
                refused.failed(&into_status(error.clone()));
                refused
            });
            return Err(error);
        }
    };
    let mut events = status::watch(engine.clone(), target.clone(), asked.after_sequence);
    if !exchanges.recording() && cut_after.is_none() {
        return Ok(events);
    }
    // A relay in between: journals what is sent, and cuts where a fault says.
    let (tx, rx) = mpsc::channel(16);
    let engine = engine.clone();
    let base = record(None, 0);
    tokio::spawn(async move {
        // Ends the stream with the fault's error; `sent` events went out.
        let cut = |sent: u64, after: u64, fault_id: &str| {
            let cut = InjectedError::unavailable(
                format!("the watch stream was cut by a fault after {after} events"),
                fault_id,
            );
            engine.toolkit().exchanges.record(|| {
                let mut record = Record {
                    stream_position: sent + 1,
                    request: None,
                    ..base.clone()
                };
                record.failed(&into_status(GatewayError::Injected(cut.clone())));
                record
            });
            GatewayError::Injected(cut)
        };
        let mut sent = 0u64;
        if let Some((0, fault_id)) = &cut_after {
            let _ = tx.send(Err(cut(0, 0, fault_id))).await;
            return;
        }
        while let Some(event) = events.recv().await {
            if let Ok(event) = &event {
                sent += 1;
                engine.toolkit().exchanges.record(|| Record {
                    stream_position: sent,
                    request: None,
                    response: Some(any("shep.gateway.v1.StatusEvent", event)),
                    service_id: event.service_id.clone(),
                    ..base.clone()
                });
            }
            if tx.send(event).await.is_err() {
                return;
            }
            // Cut right after the N-th event, not when an (N+1)-th comes.
            if let Some((after, fault_id)) = &cut_after
                && sent >= *after
            {
                let _ = tx.send(Err(cut(sent, *after, fault_id))).await;
                return;
            }
        }
    });
    Ok(rx)
}

fn subject_label(target: &WatchTarget) -> Option<String> {
    match target {
        WatchTarget::Subject(
            crate::envelope::SubjectId::Iin(id) | crate::envelope::SubjectId::Bin(id),
        ) => Some(id.clone()),
        _ => None,
    }
}

/// `GetStatus`, journaled in the application's session.
pub(super) async fn get_status(
    engine: &Engine,
    request: Request<shep_proto::gateway::v1::GetStatusRequest>,
) -> Result<Application, GatewayError> {
    let principal = Principal::of(&request);
    let id = request.get_ref().message_id.clone();
    let read = async {
        let application = status::application(engine, &id).await?;
        status::authorize(engine, &principal, &application, "Gateway.GetStatus")?;
        Ok::<_, GatewayError>(application)
    };
    let result = read.await;
    let exchanges = &engine.toolkit().exchanges;
    if exchanges.recording() {
        let ctx = context(engine, &request, Some(&id), None)
            .await
            .unwrap_or_default();
        exchanges.record(|| {
            let mut record = Record {
                session: ctx.session_label(),
                rpc: STATUS_RPC.to_owned(),
                hop: "ingress",
                message_id: id.clone(),
                request: Some(any("shep.gateway.v1.GetStatusRequest", request.get_ref())),
                ..Record::default()
            };
            match &result {
                Ok(application) => {
                    record.service_id = application.service_id.clone();
                    record.response = Some(any("shep.gateway.v1.Application", application));
                }
                Err(error) => record.failed(&into_status(error.clone())),
            }
            record
        });
    }
    result
}
