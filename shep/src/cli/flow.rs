//! `shep flow`: the seed regulations' flows, step by step, on a simulated
//! clock. Each shipped flow (`shep/flows/*.toml`) lists the process and
//! condition steps of one regulation with the time its table gives; the
//! runner starts the gateway in-process, moves its clock by each step's time
//! and does what the step does over real sockets (a lookup, the signed
//! submission, the provider's reports, the issue at the centre), then prints
//! the timeline and whether the deadline was met.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use shep_nuc::ca::IdentitySpec;
use shep_proto::admin::v1::SetClockRequest;
use shep_proto::admin::v1::admin_client::AdminClient;
use shep_proto::admin::v1::set_clock_request::Change;
use shep_proto::envelope::v1::{ApplicationStatus, Attachment, Channel, StatusReport};
use shep_proto::gateway::v1::GetStatusRequest;
use shep_proto::gateway::v1::gateway_client::GatewayClient;
use shep_proto::provider::v1::provider_client::ProviderClient;
use shep_proto::provider::v1::{Ack, GetMessagesRequest, ReceiveStatus, ResendMessage};
use shep_proto::registry::v1::lookup_response::Record;
use time::OffsetDateTime;
use time::macros::datetime;
use tokio::net::TcpListener;
use tonic::transport::Channel as GrpcChannel;

use shep_gateway::config::GatewayConfig;
use shep_gateway::lifecycle::local_time;
use shep_gateway::server::{DEMO_APPLICANT_IIN, DataDir, RunningGateway};

use super::{connect_as, describe};

mod model;

use crate::client::{Participant, iin};
use model::{Acting, Action, Flow, FlowStep, SHIPPED, Takes, shipped};

/// Where every flow starts: a Monday morning in Astana, with no public
/// holiday in the weeks after it.
const START: OffsetDateTime = datetime!(2027-02-01 09:00 +5);

/// What `shep flow` does.
#[derive(Debug, Clone, clap::Subcommand)]
pub(super) enum FlowCommand {
    /// Lists the shipped flows.
    List,
    /// Runs a shipped flow by name, or a flow file.
    Run {
        /// A shipped flow's name (`shep flow list`), or a path to a flow file.
        flow: String,
    },
}

/// Runs `shep flow`.
pub(super) async fn run(command: FlowCommand) -> anyhow::Result<()> {
    match command {
        FlowCommand::List => {
            for flow in shipped()? {
                println!(
                    "{:<20} {} ({}), {} steps",
                    flow.name,
                    flow.title,
                    flow.source,
                    flow.steps.len()
                );
            }
            Ok(())
        }
        FlowCommand::Run { flow } => {
            let flow = match SHIPPED.iter().find(|(name, _)| *name == flow) {
                Some((name, text)) => Flow::parse(text, name)?,
                None => {
                    let path = PathBuf::from(&flow);
                    if !path.exists() {
                        bail!("no shipped flow `{flow}` and no such file (`shep flow list`)");
                    }
                    let text = std::fs::read_to_string(&path)
                        .with_context(|| format!("reading `{}`", path.display()))?;
                    Flow::parse(&text, &path.display().to_string())?
                }
            };
            let data_dir = std::env::temp_dir().join(format!(
                "shep-flow-{}-{}",
                flow.name,
                std::process::id()
            ));
            let result = play(&flow, &data_dir).await;
            let _ = std::fs::remove_dir_all(&data_dir);
            result
        }
    }
}

/// The participants of a run and their connections.
struct Cast {
    gateway: RunningGateway,
    dir: DataDir,
    admin: AdminClient<GrpcChannel>,
    /// The applicant's identity name (`<data_dir>/identities/<name>.*`).
    applicant: String,
    /// Set once the application is routed.
    provider: Option<String>,
    message_id: Option<String>,
    body: Option<shep_proto::envelope::v1::Body>,
    /// When the result was due as accepted (the service deadline).
    due_at: Option<OffsetDateTime>,
    registered: u32,
}

impl Cast {
    async fn channel(&self, system: &str) -> anyhow::Result<GrpcChannel> {
        connect_as(&self.gateway.url(), &self.dir.0, Some(system)).await
    }

    fn authorized<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        if let Ok(value) = format!("Bearer {}", self.gateway.admin_token).parse() {
            request.metadata_mut().insert("authorization", value);
        }
        request
    }

    async fn now(&mut self) -> anyhow::Result<OffsetDateTime> {
        let reading = self
            .admin
            .get_clock(self.authorized(shep_proto::admin::v1::GetClockRequest {}))
            .await
            .map_err(describe)?
            .into_inner();
        let now = reading.now.context("the clock reads nothing")?;
        Ok(OffsetDateTime::from_unix_timestamp(now.seconds)?)
    }

    async fn advance(&mut self, change: Change) -> anyhow::Result<()> {
        self.admin
            .set_clock(self.authorized(SetClockRequest {
                change: Some(change),
            }))
            .await
            .map_err(describe)?;
        Ok(())
    }

    /// The provider the application was routed to, signing as its employee.
    fn provider(&self) -> anyhow::Result<Participant> {
        let id = self
            .provider
            .as_deref()
            .context("the flow reports before anything was submitted")?;
        self.employee(id)
    }

    fn employee(&self, provider: &str) -> anyhow::Result<Participant> {
        Ok(Participant::new(
            provider,
            Channel::ProviderDesk,
            signer(&self.dir, &format!("provider-{provider}"))?,
        ))
    }

    fn operator(&self) -> anyhow::Result<Participant> {
        Ok(Participant::new(
            "is-con",
            Channel::ServiceCentre,
            signer(&self.dir, "operator")?,
        ))
    }

    fn participant(
        &self,
        acting: Acting,
        service_provider: Option<&str>,
    ) -> anyhow::Result<Participant> {
        match acting {
            Acting::Applicant => Ok(Participant::new(
                "pep",
                Channel::Portal,
                signer(&self.dir, &self.applicant)?,
            )),
            Acting::Operator => self.operator(),
            Acting::Employee => {
                self.employee(service_provider.context("an employee acts for a provider")?)
            }
        }
    }
}

fn signer(dir: &DataDir, name: &str) -> anyhow::Result<shep_nuc::ca::Signer> {
    let (key, cert) = dir.identity(name);
    Ok(shep_nuc::ca::Signer::from_files(&key, &cert)?)
}

async fn play(flow: &Flow, data_dir: &Path) -> anyhow::Result<()> {
    let config = GatewayConfig {
        data_dir: data_dir.to_owned(),
        ..GatewayConfig::default()
    };
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let gateway = shep_gateway::server::start_on(listener, config).await?;
    let dir = gateway.data_dir.clone();
    let routes = gateway.engine.routes();
    let route = routes
        .route(&flow.service)
        .with_context(|| format!("service `{}` is not in the routing table", flow.service))?
        .clone();
    let subject = flow.subject().to_owned();
    let applicant = if subject == DEMO_APPLICANT_IIN {
        "applicant".to_owned()
    } else {
        // Another applicant gets a certificate of their own from the test НУЦ.
        gateway
            .ca
            .issue(&IdentitySpec::individual(&subject, "ЗАЯВИТЕЛЬ"))?
            .write(&dir.identities(), "flow-applicant")?;
        "flow-applicant".to_owned()
    };
    let admin = AdminClient::new(connect_as(&gateway.url(), &dir.0, None).await?);
    let mut cast = Cast {
        applicant,
        gateway,
        dir,
        admin,
        provider: None,
        message_id: None,
        body: None,
        due_at: None,
        registered: 0,
    };
    // The same start every run, so timelines compare.
    cast.advance(Change::Set(prost_types::Timestamp {
        seconds: START.unix_timestamp(),
        nanos: 0,
    }))
    .await?;

    println!(
        "shep flow {}: «{}» ({})",
        flow.name, flow.title, flow.source
    );
    println!(
        "  service `{}`: «{}», deadline {}; applicant IIN {subject}",
        route.service_id,
        route.name_ru,
        route
            .deadline
            .map(|deadline| deadline.to_string())
            .unwrap_or_default()
    );
    println!(
        "  simulated clock from {} (Astana); each step moves it by the regulation's time",
        local_time(START)
    );
    for (number, step) in flow.steps.iter().enumerate() {
        let takes = Takes::parse(&step.takes)?;
        cast.advance(takes.change()).await?;
        let at = cast.now().await?;
        let outcome = act(&mut cast, flow, step, &subject)
            .await
            .with_context(|| format!("step {} ({})", number + 1, step.label))?;
        println!(
            "  {:>2}. {}  {:<14} {} — {} [{}]",
            number + 1,
            local_time(at),
            step.label,
            step.actor,
            step.text,
            takes.describe(&step.takes),
        );
        if !outcome.is_empty() {
            println!("      → {outcome}");
        }
    }
    conclude(&mut cast).await
}

/// Does what `step` does at the gateway; what happened, for the timeline.
async fn act(
    cast: &mut Cast,
    flow: &Flow,
    step: &FlowStep,
    subject: &str,
) -> anyhow::Result<String> {
    // At its own desk, the provider the service is routed to in the applicant's region.
    let service_provider = match cast.provider.clone() {
        Some(id) => Some(id),
        None => desk_provider(cast, flow, subject),
    };
    match step.action {
        Action::None => Ok(String::new()),
        Action::Lookup => {
            let who = cast.participant(
                step.actor_kind.unwrap_or(Acting::Operator),
                service_provider.as_deref(),
            )?;
            let service = step.lookup.clone().unwrap_or_default();
            let mut client = GatewayClient::new(cast.channel(&who.sender_id).await?);
            let response = client
                .call(who.seal(&who.request(&service, iin(subject)))?)
                .await
                .map_err(describe)?
                .into_inner();
            Ok(match response.lookup.and_then(|lookup| lookup.record) {
                Some(Record::Person(person)) => format!(
                    "ГБД ФЛ: {} {} {}, КАТО {}",
                    person.surname,
                    person.name,
                    person.patronymic,
                    person
                        .reg_address
                        .map(|address| address.kato)
                        .unwrap_or_default()
                ),
                Some(other) => format!("{service}: {other:?}"),
                None => format!("{service}: нет данных"),
            })
        }
        Action::Submit => {
            let acting = step.actor_kind.context("`submit` needs `as`")?;
            let who = cast.participant(acting, service_provider.as_deref())?;
            let body = who.application(
                &flow.service,
                iin(subject),
                r#"{"flow":"regulations"}"#,
                vec![Attachment {
                    name: "zayavlenie.pdf".to_owned(),
                    content_type: "application/pdf".to_owned(),
                    data: b"%PDF-1.4 zayavlenie".to_vec(),
                }],
            );
            let mut client = GatewayClient::new(cast.channel(&who.sender_id).await?);
            let receipt = client
                .submit(who.seal(&body)?)
                .await
                .map_err(describe)?
                .into_inner();
            let outcome = format!(
                "ACCEPTED: {} → `{}`",
                receipt.message_id, receipt.provider_id
            );
            cast.provider = Some(receipt.provider_id.clone());
            cast.message_id = Some(receipt.message_id);
            cast.body = Some(body);
            cast.due_at = status(cast)
                .await?
                .due_at
                .and_then(|due| OffsetDateTime::from_unix_timestamp(due.seconds).ok());
            Ok(outcome)
        }
        Action::Receive => receive(cast).await,
        Action::Register => {
            let received = receive(cast).await?;
            cast.registered += 1;
            let number = format!("{}-{:04}", flow.name.to_uppercase(), cast.registered);
            let receipt = report(
                cast,
                StatusReport {
                    status: ApplicationStatus::Registered as i32,
                    registration_number: number.clone(),
                    ..StatusReport::default()
                },
                None,
            )
            .await?;
            let due = expected(cast).await?;
            Ok(format!(
                "{received}; REGISTERED № {number}, результат ожидается {due} ({receipt})"
            ))
        }
        Action::Report => {
            let status =
                ApplicationStatus::from_str_name(step.status.as_deref().unwrap_or_default())
                    .context("`report` needs a status")?;
            let result = if matches!(status, ApplicationStatus::Completed) {
                Some(cast.provider()?.document(
                    "rezultat.txt",
                    "text/plain; charset=utf-8",
                    format!("{} — {}", flow.title, step.text).as_bytes(),
                )?)
            } else {
                None
            };
            let receipt = report(
                cast,
                StatusReport {
                    status: status as i32,
                    reason: step.reason.clone().unwrap_or_default(),
                    result,
                    ..StatusReport::default()
                },
                None,
            )
            .await?;
            Ok(format!("{} ({receipt})", status.as_str_name()))
        }
        Action::Issue => {
            // The paper is with the centre for its applications, else with the provider's desk.
            let centre = cast
                .body
                .as_ref()
                .is_some_and(|body| body.channel == Channel::ServiceCentre as i32);
            let holder = if centre {
                cast.operator()?
            } else {
                cast.provider()?
            };
            let receipt = report(
                cast,
                StatusReport {
                    status: ApplicationStatus::Issued as i32,
                    notification: step.text.clone(),
                    ..StatusReport::default()
                },
                Some(holder),
            )
            .await?;
            Ok(format!("ISSUED ({receipt})"))
        }
    }
}

/// The provider takes its delivery and acknowledges it.
async fn receive(cast: &mut Cast) -> anyhow::Result<String> {
    let id = cast.provider.clone().context("nothing submitted yet")?;
    let mut client = ProviderClient::new(cast.channel(&id).await?);
    let message_id = cast.message_id.clone().unwrap_or_default();
    let messages = client
        .get_messages(GetMessagesRequest {
            provider_id: id.clone(),
            amount: 1,
            correlation_id: String::new(),
            service_id: String::new(),
        })
        .await
        .map_err(describe)?
        .into_inner()
        .messages;
    let Some(delivery) = messages
        .into_iter()
        .find(|delivery| delivery.message_id == message_id)
    else {
        return Ok("уже получено".to_owned());
    };
    client
        .acknowledge(Ack {
            message_id: delivery.message_id,
            receive_status: ReceiveStatus::MessageAccepted as i32,
            resend: ResendMessage::Unspecified as i32,
            error_message: String::new(),
            provider_id: id.clone(),
        })
        .await
        .map_err(describe)?;
    Ok(format!("`{id}` получил запрос и подтвердил (DELIVERED)"))
}

/// The provider of `flow`'s service for the applicant's region, from the
/// registry's address (КАТО) and the routing table.
fn desk_provider(cast: &Cast, flow: &Flow, subject: &str) -> Option<String> {
    let routes = cast.gateway.engine.routes();
    let route = routes.route(&flow.service)?;
    let kato = cast
        .gateway
        .registry_data
        .person(subject)
        .and_then(|person| person.reg_address)
        .map(|address| address.kato);
    route.provider_for(kato.as_deref()).map(str::to_owned)
}

/// Sends a report by the provider (or by `holder`); a short receipt line.
async fn report(
    cast: &mut Cast,
    report: StatusReport,
    holder: Option<Participant>,
) -> anyhow::Result<String> {
    let reporter = match holder {
        Some(holder) => holder,
        None => cast.provider()?,
    };
    let body = cast.body.clone().context("nothing submitted yet")?;
    let mut client = ProviderClient::new(cast.channel(&reporter.sender_id).await?);
    let receipt = client
        .report(reporter.report(&body, report)?)
        .await
        .map_err(describe)?
        .into_inner();
    Ok(format!("событие №{}", receipt.sequence))
}

/// When the result is due, as the application says now.
async fn expected(cast: &mut Cast) -> anyhow::Result<String> {
    let application = status(cast).await?;
    Ok(application
        .due_at
        .and_then(|due| OffsetDateTime::from_unix_timestamp(due.seconds).ok())
        .map(local_time)
        .unwrap_or_else(|| "—".to_owned()))
}

async fn status(cast: &mut Cast) -> anyhow::Result<shep_proto::gateway::v1::Application> {
    let message_id = cast.message_id.clone().context("nothing submitted yet")?;
    let mut client = GatewayClient::new(cast.channel("pep").await?);
    Ok(client
        .get_status(GetStatusRequest { message_id })
        .await
        .map_err(describe)?
        .into_inner())
}

/// The application's history on the simulated clock, and the verdict on the deadline.
async fn conclude(cast: &mut Cast) -> anyhow::Result<()> {
    let application = status(cast).await?;
    let time_of = |stamp: &Option<prost_types::Timestamp>| {
        stamp
            .as_ref()
            .and_then(|at| OffsetDateTime::from_unix_timestamp(at.seconds).ok())
    };
    println!("\n  История заявки {}:", application.message_id);
    // The provider's own date once registered, else the service deadline.
    let mut due = cast.due_at;
    for event in &application.events {
        let at = time_of(&event.occurred_at)
            .map(local_time)
            .unwrap_or_default();
        let what = if event.overdue {
            format!("OVERDUE ({})", event.status().as_str_name())
        } else {
            event.status().as_str_name().to_owned()
        };
        println!("    {at}  {what:<20} {}", event.notification);
        if event.status() == ApplicationStatus::Registered {
            due = time_of(&event.expected_at);
        }
    }
    let answered = application.events.iter().find(|event| {
        matches!(
            event.status(),
            ApplicationStatus::Completed
                | ApplicationStatus::Refused
                | ApplicationStatus::ReturnedToCentre
        )
    });
    let overdue_marks = application
        .events
        .iter()
        .filter(|event| event.overdue)
        .count();
    let issued = application
        .events
        .iter()
        .find(|event| event.status() == ApplicationStatus::Issued)
        .and_then(|event| time_of(&event.occurred_at));
    let verdict = |met: bool| {
        if met {
            "срок соблюден"
        } else {
            "СРОК НАРУШЕН"
        }
    };
    match answered {
        Some(event) if event.status() == ApplicationStatus::ReturnedToCentre => {
            let returned = time_of(&event.occurred_at);
            let inform_by = time_of(&event.expected_at);
            let met =
                overdue_marks == 0 && issued.is_some_and(|at| inform_by.is_some_and(|by| at <= by));
            println!(
                "  {}: возврат в ЦОН {}, получатель проинформирован {} при сроке {}",
                verdict(met),
                returned.map(local_time).unwrap_or_default(),
                issued.map_or_else(|| "—".to_owned(), local_time),
                inform_by.map(local_time).unwrap_or_default()
            );
        }
        Some(event) => {
            let at = time_of(&event.occurred_at);
            let met = overdue_marks == 0 && at.zip(due).is_some_and(|(at, due)| at <= due);
            println!(
                "  {}: ответ {} при сроке {}",
                verdict(met),
                at.map(local_time).unwrap_or_default(),
                due.map_or_else(|| "—".to_owned(), local_time)
            );
        }
        None => println!("  ответа услугодателя нет"),
    }
    println!("  итоговый статус: {}", application.status().as_str_name());
    Ok(())
}
