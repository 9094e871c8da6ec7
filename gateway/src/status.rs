//! The consumer's status queries, free of transport types: one application,
//! an applicant's history page by page, and Watch (the events so far, then
//! live ones, in sequence order, each once).

use std::sync::Arc;

use shep_proto::gateway::v1::{
    Application, HistoryRequest, HistoryResponse, StatusEvent, WatchRequest, watch_request,
};
use tokio::sync::{broadcast, mpsc};

use crate::engine::Engine;
use crate::envelope::{SubjectId, parse_uuid};
use crate::error::GatewayError;
use crate::participants::Principal;
use crate::storage::WatchTarget;

/// A History page when the caller asks for none.
const DEFAULT_PAGE: usize = 50;
/// The largest History page.
const MAX_PAGE: usize = 500;
/// Events a watcher may have in flight before the watch waits for it.
const WATCH_BUFFER: usize = 64;

/// `GetStatus`: one application.
pub(crate) async fn application(
    engine: &Engine,
    message_id: &str,
) -> Result<Application, GatewayError> {
    let id = parse_uuid("message_id", message_id)?;
    engine
        .store()
        .application(&id)
        .await?
        .map(|application| on_its_clock(engine, application))
        .ok_or(GatewayError::MessageNotFound(id))
}

/// `overdue` as the application's own clock says (the store reads the
/// real clock).
fn on_its_clock(engine: &Engine, mut application: Application) -> Application {
    let clock = &engine.toolkit().clock;
    if clock.is_simulated() {
        let now = clock.now(Some(&application.test_session));
        application.overdue = application.due_at.as_ref().is_some_and(|due| {
            (due.seconds, due.nanos) < (now.unix_timestamp(), now.nanosecond() as i32)
        });
    }
    application
}

/// Whether `principal` may read `application` (through `rpc`); a system's
/// read is recorded in the access audit.
pub(crate) fn authorize(
    engine: &Engine,
    principal: &Principal,
    application: &Application,
    rpc: &str,
) -> Result<(), GatewayError> {
    let subject = SubjectId::from_proto(application.subject.as_ref()).ok();
    let reader = principal.read(
        &engine.routes(),
        subject.as_ref(),
        Some(&application.provider_id),
    )?;
    if let Some(system) = reader {
        let key = subject.map_or_else(|| application.message_id.clone(), |subject| plain(&subject));
        engine.audit_read(&system, &key, rpc, &application.message_id);
    }
    Ok(())
}

/// The IIN or BIN itself, as the access audit is searched by.
fn plain(subject: &SubjectId) -> String {
    match subject {
        SubjectId::Iin(id) | SubjectId::Bin(id) => id.clone(),
    }
}

/// Whether `principal` may read every application of `subject` (History,
/// Watch of an applicant); a system's read is recorded in the access audit.
pub(crate) fn authorize_subject(
    engine: &Engine,
    principal: &Principal,
    subject: &SubjectId,
    rpc: &str,
) -> Result<(), GatewayError> {
    if let Some(system) = principal.read(&engine.routes(), Some(subject), None)? {
        engine.audit_read(&system, &plain(subject), rpc, "");
    }
    Ok(())
}

/// Whether `principal` may watch `target`: an applicant as History asks, an
/// application as GetStatus does (one not yet stored only by a consumer
/// system, which may read any).
pub(crate) async fn authorize_watch(
    engine: &Engine,
    principal: &Principal,
    target: &WatchTarget,
) -> Result<(), GatewayError> {
    const RPC: &str = "Gateway.Watch";
    match target {
        WatchTarget::Subject(subject) => authorize_subject(engine, principal, subject, RPC),
        WatchTarget::Message(id) => match engine.store().application(id).await? {
            Some(application) => authorize(engine, principal, &application, RPC),
            None if principal.reads_everything(&engine.routes()) => Ok(()),
            None => Err(GatewayError::MessageNotFound(id.clone())),
        },
        // A consumer system follows what it sent itself, nobody else's.
        WatchTarget::Sender(sender) => {
            if engine.routes().system(sender).is_none() {
                return Err(GatewayError::InvalidField {
                    field: "sender_id",
                    problem: format!("`{sender}` is not a system of the routing table"),
                });
            }
            principal.act_as(sender, "a system watches the applications it sent itself")
        }
    }
}

/// Where a History page starts and how long it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Page {
    pub(crate) offset: usize,
    pub(crate) limit: usize,
}

impl Page {
    /// Reads `page_token` (the offset this gateway handed out) and `page_size`.
    pub(crate) fn parse(page_token: &str, page_size: u32) -> Result<Self, GatewayError> {
        let offset = if page_token.is_empty() {
            0
        } else {
            page_token
                .parse::<usize>()
                .map_err(|_| GatewayError::InvalidField {
                    field: "page_token",
                    problem: "is not a token this gateway gave".to_owned(),
                })?
        };
        let limit = match page_size {
            0 => DEFAULT_PAGE,
            size => (size as usize).min(MAX_PAGE),
        };
        Ok(Self { offset, limit })
    }

    /// The token of the page after this one, when there is more.
    pub(crate) fn next_token(self, more: bool) -> String {
        if more {
            (self.offset + self.limit).to_string()
        } else {
            String::new()
        }
    }
}

/// `History`: an applicant's applications, a page at a time.
pub(crate) async fn history(
    engine: &Engine,
    request: &HistoryRequest,
) -> Result<HistoryResponse, GatewayError> {
    let subject = SubjectId::from_proto(request.subject.as_ref())?;
    let page = Page::parse(&request.page_token, request.page_size)?;
    let (applications, more) = engine
        .store()
        .history(&subject, page.offset, page.limit)
        .await?;
    Ok(HistoryResponse {
        applications: applications
            .into_iter()
            .map(|application| on_its_clock(engine, application))
            .collect(),
        next_page_token: page.next_token(more),
    })
}

/// What a Watch follows: an applicant or one application.
pub(crate) fn watch_target(request: &WatchRequest) -> Result<WatchTarget, GatewayError> {
    match &request.target {
        Some(watch_request::Target::Subject(subject)) => {
            Ok(WatchTarget::Subject(SubjectId::from_proto(Some(subject))?))
        }
        Some(watch_request::Target::MessageId(id)) => {
            Ok(WatchTarget::Message(parse_uuid("message_id", id)?))
        }
        Some(watch_request::Target::SenderId(sender)) => Ok(WatchTarget::Sender(sender.clone())),
        None => Err(GatewayError::InvalidField {
            field: "target",
            problem: "must be a subject, a message_id or a sender_id".to_owned(),
        }),
    }
}

/// What a watcher receives: events, or the error that ends the watch.
pub(crate) type Watched = Result<StatusEvent, GatewayError>;

/// `Watch`: every event of `target` after `after_sequence`, then live ones,
/// until the receiver is dropped, the gateway closes or storage fails.
pub(crate) fn watch(
    engine: Arc<Engine>,
    target: WatchTarget,
    after_sequence: u64,
) -> mpsc::Receiver<Watched> {
    // Subscribed before the snapshot, so every event after the snapshot's
    // sequence arrives live.
    let live = engine.store().subscribe();
    let (tx, rx) = mpsc::channel(WATCH_BUFFER);
    tokio::spawn(follow(engine, target, after_sequence, live, tx));
    rx
}

/// Replays then follows: a live event is sent only if it is past what was
/// sent or skipped already, and a watcher that falls behind the live feed
/// catches up from the store.
async fn follow(
    engine: Arc<Engine>,
    target: WatchTarget,
    after_sequence: u64,
    mut live: broadcast::Receiver<Arc<StatusEvent>>,
    tx: mpsc::Sender<Watched>,
) {
    // A snapshot, or `None` once its failure has been sent (the watch ends).
    let snapshot = async |cursor| match engine.store().snapshot(&target, cursor).await {
        Ok(taken) => Some(taken),
        Err(error) => {
            let _ = tx.send(Err(error.into())).await;
            None
        }
    };
    // Every event up to `cursor` has been sent or was not asked for.
    let mut cursor = after_sequence;
    let Some((mut pending, mut upto)) = snapshot(cursor).await else {
        return;
    };
    loop {
        for event in pending.drain(..) {
            if tx.send(Ok((*event).clone())).await.is_err() {
                return;
            }
        }
        cursor = cursor.max(upto);
        tokio::select! {
            received = live.recv() => match received {
                Ok(event) => {
                    if event.sequence > cursor {
                        upto = event.sequence;
                        if target.matches(&event) {
                            pending.push(event);
                        }
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    let Some(caught_up) = snapshot(cursor).await else {
                        return;
                    };
                    (pending, upto) = caught_up;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
            () = tx.closed() => return,
            () = engine.closed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use shep_proto::envelope::v1::ApplicationStatus;

    use super::*;
    use crate::testing;
    use crate::toolkit::CallContext;

    async fn submit(engine: &Engine) -> String {
        let id = testing::message_id();
        crate::pipeline::submit(engine, testing::application(&id), &CallContext::default())
            .await
            .expect("accepted");
        id
    }

    #[tokio::test]
    async fn a_watch_replays_what_happened_then_follows_live_each_event_once() {
        let engine = testing::engine();
        let before = submit(&engine).await;
        let applicant = SubjectId::Iin(testing::APPLICANT.into());
        let mut events = watch(engine.clone(), WatchTarget::Subject(applicant), 0);
        let replayed = events.recv().await.expect("the replay").expect("an event");
        assert_eq!(replayed.message_id, before);
        assert_eq!(replayed.status, ApplicationStatus::Accepted as i32);

        let after = submit(&engine).await;
        let live = events
            .recv()
            .await
            .expect("a live event")
            .expect("an event");
        assert_eq!(live.message_id, after);
        assert!(live.sequence > replayed.sequence, "in sequence order");

        // Resuming after the first event skips it.
        let applicant = SubjectId::Iin(testing::APPLICANT.into());
        let mut resumed = watch(
            engine.clone(),
            WatchTarget::Subject(applicant),
            replayed.sequence,
        );
        let rest = resumed.recv().await.expect("the rest").expect("an event");
        assert_eq!(rest.message_id, after);
        engine.close();
        assert!(resumed.recv().await.is_none(), "closed with the gateway");
    }

    #[test]
    fn pages_default_cap_and_continue() {
        assert_eq!(
            Page::parse("", 0).unwrap(),
            Page {
                offset: 0,
                limit: DEFAULT_PAGE
            }
        );
        assert_eq!(Page::parse("", 10_000).unwrap().limit, MAX_PAGE);
        let page = Page::parse("20", 10).unwrap();
        assert_eq!(page.next_token(true), "30");
        assert_eq!(page.next_token(false), "");
        assert!(matches!(
            Page::parse("abc", 10),
            Err(GatewayError::InvalidField {
                field: "page_token",
                ..
            })
        ));
    }
}
