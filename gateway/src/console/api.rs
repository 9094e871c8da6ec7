//! `/console/api/…`: JSON for the pages, and the live feed as server-sent
//! events. Every call but the login's names its login with
//! `authorization: Bearer <token>` (the live feed, which a browser's
//! EventSource opens without headers, with `?token=`).

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use prost::Message as _;
use serde_json::{Value, json};
use shep_proto::envelope::v1::{
    ApplicationStatus, Body, Sender, SignatureAlgorithm, SignedEnvelope,
};
use shep_proto::gateway::v1::{Application, HistoryRequest};
use tokio_stream::StreamExt as _;
use tower::ServiceExt as _;

use super::{Console, Login, Received, Role};
use crate::error::{GatewayError, GrpcCode};
use crate::participants::Principal;
use crate::pipeline::{Answer, EnvelopeRequest, Rpc};
use crate::storage::{Filter, WatchTarget};
use crate::toolkit::CallContext;

pub(super) fn routes(console: Console) -> Router {
    Router::new()
        .route("/console/api/providers", get(providers))
        .route("/console/api/challenge", get(challenge))
        .route("/console/api/login", post(login))
        .route("/console/api/cabinet/history", get(history))
        .route("/console/api/cabinet/events", get(events))
        .route("/console/api/cabinet/result/{message_id}", get(result))
        .route("/console/api/desk/inbox", get(inbox))
        .route("/console/api/desk/report", post(report))
        .with_state(console)
}

/// A refusal as JSON: the catalogue's reason and the message, with the
/// HTTP status nearest its gRPC code.
struct Refusal(GatewayError);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let status = match self.0.code() {
            GrpcCode::InvalidArgument | GrpcCode::FailedPrecondition | GrpcCode::OutOfRange => {
                StatusCode::BAD_REQUEST
            }
            GrpcCode::Unauthenticated => StatusCode::UNAUTHORIZED,
            GrpcCode::PermissionDenied => StatusCode::FORBIDDEN,
            GrpcCode::NotFound => StatusCode::NOT_FOUND,
            GrpcCode::AlreadyExists | GrpcCode::Aborted => StatusCode::CONFLICT,
            GrpcCode::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
            GrpcCode::Unavailable | GrpcCode::DeadlineExceeded => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let body = json!({
            "reason": self.0.reason().as_str_name(),
            "message": self.0.to_string(),
        });
        (status, Json(body)).into_response()
    }
}

impl From<GatewayError> for Refusal {
    fn from(error: GatewayError) -> Self {
        Self(error)
    }
}

type Answered = Result<Json<Value>, Refusal>;

fn bearer(headers: &HeaderMap) -> &str {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .unwrap_or_default()
}

fn invalid(field: &'static str, problem: &str) -> Refusal {
    Refusal(GatewayError::InvalidField {
        field,
        problem: problem.to_owned(),
    })
}

async fn providers(State(console): State<Console>) -> Json<Value> {
    let routes = console.engine.routes();
    let providers: Vec<Value> = routes
        .systems()
        .into_iter()
        .filter(|system| system.role == crate::routes::Role::Provider)
        .map(|system| json!({"id": system.id, "name": system.name_ru}))
        .collect();
    Json(json!({ "providers": providers }))
}

async fn challenge(State(console): State<Console>) -> Json<Value> {
    Json(json!({ "challenge": console.challenge() }))
}

#[derive(Debug, serde::Deserialize)]
struct LoginRequest {
    challenge: String,
    /// `ED25519`, `ECDSA_P256_SHA256` or `RSA_PKCS1_SHA256`.
    algorithm: String,
    certificate_pem: String,
    /// Base64; ECDSA as WebCrypto gives it, r‖s.
    signature: String,
    /// The provider system an employee works for; none for the cabinet.
    provider: Option<String>,
}

async fn login(State(console): State<Console>, Json(asked): Json<LoginRequest>) -> Answered {
    let algorithm = SignatureAlgorithm::from_str_name(&asked.algorithm)
        .filter(|algorithm| *algorithm != SignatureAlgorithm::Unspecified)
        .ok_or_else(|| {
            invalid(
                "algorithm",
                "is ED25519, ECDSA_P256_SHA256 or RSA_PKCS1_SHA256",
            )
        })?;
    let mut chain = certificates(&asked.certificate_pem)?.into_iter();
    let certificate = chain
        .next()
        .ok_or_else(|| invalid("certificate_pem", "holds no PEM certificate"))?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(asked.signature.trim())
        .map_err(|_| invalid("signature", "is not base64"))?;
    let value = match algorithm {
        SignatureAlgorithm::EcdsaP256Sha256 => shep_nuc::xmldsig::ecdsa_raw_to_der(&raw)
            .map_err(|_| invalid("signature", "is not a 64-byte P-256 r‖s"))?,
        _ => raw,
    };
    let signature = shep_proto::envelope::v1::Signature {
        algorithm: algorithm as i32,
        certificate_der: certificate,
        value,
        chain_der: chain.collect(),
    };
    let provider = asked.provider.as_deref().filter(|id| !id.is_empty());
    let (token, login) = console
        .login(&asked.challenge, &signature, provider)
        .await?;
    Ok(Json(json!({
        "token": token,
        "who": who(&login),
    })))
}

/// The DER certificates of a PEM text, leaf first.
fn certificates(pem: &str) -> Result<Vec<Vec<u8>>, Refusal> {
    use tokio_rustls::rustls::pki_types::CertificateDer;
    use tokio_rustls::rustls::pki_types::pem::PemObject as _;
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .map(|certificate| certificate.map(|der| der.to_vec()))
        .collect::<Result<_, _>>()
        .map_err(|_| invalid("certificate_pem", "is not PEM"))
}

fn who(login: &Login) -> Value {
    let (role, provider) = match &login.role {
        Role::Applicant { .. } => ("applicant", None),
        Role::Employee { provider } => ("employee", Some(provider.clone())),
    };
    json!({
        "role": role,
        "provider": provider,
        "name": login.signer.common_name,
        "iin": login.signer.iin,
        "bin": login.signer.bin,
    })
}

fn applicant(console: &Console, token: &str) -> Result<(Login, String), Refusal> {
    let login = console.session(token)?;
    match &login.role {
        Role::Applicant { iin } => {
            let iin = iin.clone();
            Ok((login, iin))
        }
        Role::Employee { .. } => Err(Refusal(GatewayError::AccessDenied {
            authenticated: "an employee".to_owned(),
            acting_as: "the applicant".to_owned(),
            what: "the personal cabinet is the applicant's",
        })),
    }
}

fn employee(console: &Console, token: &str) -> Result<(Login, String), Refusal> {
    let login = console.session(token)?;
    match &login.role {
        Role::Employee { provider } => {
            let provider = provider.clone();
            Ok((login, provider))
        }
        Role::Applicant { .. } => Err(Refusal(GatewayError::AccessDenied {
            authenticated: "an applicant".to_owned(),
            acting_as: "a provider's employee".to_owned(),
            what: "the workstation is a provider employee's",
        })),
    }
}

/// A message of the shep protos as its proto3 JSON.
fn to_json<M: prost::Message>(full_name: &str, message: &M) -> Value {
    crate::xmldata::to_json(full_name, &message.encode_to_vec())
}

fn application_json(application: &Application) -> Value {
    to_json("shep.gateway.v1.Application", application)
}

async fn history(State(console): State<Console>, headers: HeaderMap) -> Answered {
    let (_, iin) = applicant(&console, bearer(&headers))?;
    let response = crate::status::history(
        &console.engine,
        &HistoryRequest {
            subject: Some(shep_proto::envelope::v1::Subject {
                id: Some(shep_proto::envelope::v1::subject::Id::Iin(iin)),
            }),
            page_size: 100,
            page_token: String::new(),
        },
    )
    .await?;
    let applications: Vec<Value> = response.applications.iter().map(application_json).collect();
    Ok(Json(json!({ "applications": applications })))
}

#[derive(Debug, serde::Deserialize)]
struct EventsQuery {
    token: String,
    #[serde(default)]
    after: u64,
}

/// The applicant's status events as they happen («Уведомления»), after
/// `after`: server-sent events over the Watch feed.
async fn events(
    State(console): State<Console>,
    Query(query): Query<EventsQuery>,
) -> Result<Sse<impl tokio_stream::Stream<Item = Result<Event, Infallible>>>, Refusal> {
    let (_, iin) = applicant(&console, &query.token)?;
    let watched = crate::status::watch(
        console.engine,
        WatchTarget::Subject(crate::envelope::SubjectId::Iin(iin)),
        query.after,
    );
    let stream = tokio_stream::wrappers::ReceiverStream::new(watched).map(|event| {
        Ok(match event {
            Ok(event) => Event::default()
                .event("status")
                .id(event.sequence.to_string())
                .data(to_json("shep.gateway.v1.StatusEvent", &event).to_string()),
            Err(error) => Event::default().event("failed").data(error.to_string()),
        })
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// The result document of one of the applicant's applications, with the
/// check of its signature against the НУЦ.
async fn result(
    State(console): State<Console>,
    headers: HeaderMap,
    Path(message_id): Path<String>,
) -> Answered {
    let (_, iin) = applicant(&console, bearer(&headers))?;
    let application = crate::status::application(&console.engine, &message_id).await?;
    let mine = matches!(
        application.subject.as_ref().and_then(|subject| subject.id.as_ref()),
        Some(shep_proto::envelope::v1::subject::Id::Iin(subject)) if *subject == iin
    );
    if !mine {
        return Err(Refusal(GatewayError::MessageNotFound(message_id)));
    }
    let document = application
        .events
        .iter()
        .rev()
        .find_map(|event| event.result.clone())
        .ok_or_else(|| Refusal(GatewayError::NoData("no result document yet".to_owned())))?;
    let checked = console
        .engine
        .checks
        .verify_bytes(
            document.signature.as_ref(),
            &document.content,
            time::OffsetDateTime::now_utc(),
        )
        .await;
    Ok(Json(json!({
        "name": document.name,
        "contentType": document.content_type,
        "content": base64::engine::general_purpose::STANDARD.encode(&document.content),
        "verified": checked.is_ok(),
        "signer": checked.as_ref().ok().map(|signer| signer.common_name.clone()),
        "problem": checked.err().map(|error| error.to_string()),
    })))
}

/// The workstation's inbox: what the provider's queue holds is received
/// (the workstation is the provider system, so it takes and acknowledges
/// it), then every kept application with its status.
async fn inbox(State(console): State<Console>, headers: HeaderMap) -> Answered {
    let (_, provider) = employee(&console, bearer(&headers))?;
    let taken = crate::provider::pull(&console.engine, &provider, &Filter::default(), 50).await?;
    for delivery in taken {
        let Some(envelope) = delivery.envelope.clone() else {
            continue;
        };
        let signature = received_signature(&console, &envelope).await;
        crate::provider::acknowledge(
            &console.engine,
            &provider,
            &shep_proto::provider::v1::Ack {
                message_id: delivery.message_id.clone(),
                receive_status: shep_proto::provider::v1::ReceiveStatus::MessageAccepted as i32,
                provider_id: provider.clone(),
                ..Default::default()
            },
        )
        .await?;
        console.keep(
            &provider,
            Received {
                message_id: delivery.message_id,
                envelope: Arc::new(envelope),
                signature,
            },
        );
    }
    let kept = console
        .inboxes
        .get(&provider)
        .map(|inbox| inbox.clone())
        .unwrap_or_default();
    let mut applications = Vec::with_capacity(kept.len());
    for received in kept.iter().rev() {
        let Ok(application) =
            crate::status::application(&console.engine, &received.message_id).await
        else {
            continue;
        };
        applications.push(received_json(received, &application));
    }
    Ok(Json(
        json!({ "provider": provider, "applications": applications }),
    ))
}

/// The received envelope's signature check, as the АРМ makes it: the
/// gateway's own, over `xml_data` or `body`, as of the message date.
async fn received_signature(
    console: &Console,
    envelope: &SignedEnvelope,
) -> Result<Arc<shep_nuc::verify::SignerIdentity>, String> {
    let body = Body::decode(envelope.body.as_slice()).map_err(|error| error.to_string())?;
    let at = body
        .message_date
        .and_then(|date| time::OffsetDateTime::from_unix_timestamp(date.seconds).ok())
        .unwrap_or_else(time::OffsetDateTime::now_utc);
    console
        .engine
        .checks
        .envelope_signer(envelope, &body, at)
        .await
        .map_err(|error| error.to_string())
}

fn received_json(received: &Received, application: &Application) -> Value {
    let body = Body::decode(received.envelope.body.as_slice()).unwrap_or_default();
    let form = body
        .payload
        .as_ref()
        .map(|payload| String::from_utf8_lossy(&payload.data).into_owned())
        .unwrap_or_default();
    let attachments: Vec<Value> = body
        .attachments
        .iter()
        .map(|attachment| {
            json!({"name": attachment.name, "contentType": attachment.content_type, "size": attachment.data.len()})
        })
        .collect();
    json!({
        "application": application_json(application),
        "form": form,
        "attachments": attachments,
        "signature": match &received.signature {
            Ok(signer) => json!({"valid": true, "signer": signer.common_name, "iin": signer.iin}),
            Err(problem) => json!({"valid": false, "problem": problem}),
        },
    })
}

#[derive(Debug, serde::Deserialize)]
struct ReportRequest {
    /// The application reported on.
    correlation_id: String,
    /// The signed `<body xmlns="urn:shep-sim:body:v1">` with its `<report>`.
    xml: String,
}

/// A status report signed in the browser, sent as the provider system
/// through the same Report path as any provider's.
async fn report(
    State(console): State<Console>,
    headers: HeaderMap,
    Json(asked): Json<ReportRequest>,
) -> Answered {
    let (_, provider) = employee(&console, bearer(&headers))?;
    let application = crate::status::application(&console.engine, &asked.correlation_id).await?;
    let document = shep_nuc::xmldsig::parse(&asked.xml)
        .map_err(|error| invalid("xml", &format!("is not well-formed: {error}")))?;
    let data = crate::xmldata::body_from_xml(document.root_element())?;
    let status = data
        .report
        .as_ref()
        .map(|report| report.status())
        .unwrap_or(ApplicationStatus::Unspecified);
    let body = Body {
        message_id: uuid::Uuid::new_v4().to_string(),
        correlation_id: application.message_id.clone(),
        service_id: application.service_id.clone(),
        message_type: crate::lifecycle::report_type(status) as i32,
        message_date: Some(crate::storage::timestamp(time::OffsetDateTime::now_utc())),
        sender: Some(Sender {
            sender_id: provider.clone(),
        }),
        ..data
    };
    let envelope = SignedEnvelope {
        body: body.encode_to_vec(),
        signature: None,
        xml_data: asked.xml.into_bytes(),
    };
    let ctx = CallContext {
        principal: Principal::System(provider),
        ..CallContext::default()
    };
    let answer = console
        .pipeline
        .clone()
        .oneshot(EnvelopeRequest {
            rpc: Rpc::Report,
            envelope,
            ctx,
        })
        .await?;
    let Answer::Report(receipt) = answer else {
        return Err(Refusal(GatewayError::Internal(
            "a report was answered as another RPC".to_owned(),
        )));
    };
    Ok(Json(to_json("shep.provider.v1.ReportReceipt", &receipt)))
}
