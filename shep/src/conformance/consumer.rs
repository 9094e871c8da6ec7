//! `shep conformance consumer`: grades a consumer system (the portal, ИС
//! ЦОН, any system that sends lookups and applications) as it ships. For
//! each case the kit binds a fresh test session to the consumer system
//! (Admin.BindSession: no header needed from it), makes the gateway behave
//! as the case says (faults, a provider it plays itself), runs the
//! consumer's own command once, and then reads the session's exchange
//! journal to say which expectations the consumer met ([`checks`]).

mod checks;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use shep_nuc::ca::Signer;
use shep_proto::admin::v1::{
    ErrorEffect, Fault, FaultTarget, ListRoutesRequest, SessionBinding, UnbindSessionRequest,
    fault, fault_target, session_binding,
};
use shep_proto::envelope::v1::Channel;
use tokio::time::Instant;
use tonic::transport::Channel as GrpcChannel;

use super::journal::Journal;
use super::provider::{Admin, Case, select};
use super::report::{Outcome, Report};
use crate::client::Participant;
use crate::script::{RunOptions, Script, run_script};

/// The registries a lookup may reach.
const REGISTRIES: [&str; 3] = ["gbdfl", "gbdul", "enis"];

/// The consumer catalogue, in the order the kit runs it (docs/CONFORMANCE.md).
pub const CASES: &[Case] = &[
    Case {
        name: "registry-unavailable",
        title: "a registry unavailable twice, then back: the consumer retries after a backoff and gets its answer",
        rule: "ШЭП sync contract: a temporary failure (REGISTRY_UNAVAILABLE, retry-after-backoff in docs/ERRORS.md) is retried",
    },
    Case {
        name: "retryable-refusals",
        title: "OVERLOADED, STORAGE_UNAVAILABLE and DEADLINE_EXCEEDED in a row: each is retried until the request goes through",
        rule: "docs/ERRORS.md: the reasons marked retry-after-backoff",
    },
    Case {
        name: "no-data",
        title: "NO_DATA from the registry: the consumer does not ask again",
        rule: "ШЭП sync contract: NO_DATA is an answer (do-not-retry); a refused body is never re-sent unchanged",
    },
    Case {
        name: "final-refusals",
        title: "SENDER_NOT_ALLOWED, SIGNATURE_INVALID and NO_PROVIDER_FOR_REGION: none is retried or re-sent unchanged",
        rule: "docs/ERRORS.md: do-not-retry and fix-and-resend reasons",
    },
    Case {
        name: "not-delivered",
        title: "the provider refuses the request (NOT_DELIVERED): the consumer follows it to that final status and does not re-send it",
        rule: "ШЭП async contract: getMessageStatus / DeliveryNotification NOT_RESEND is final",
    },
    Case {
        name: "slow-provider",
        title: "a provider that takes its time: the consumer keeps following until the final status",
        rule: "regulations: the status lifecycle (ACCEPTED … COMPLETED) is followed to its end",
    },
    Case {
        name: "term-extension",
        title: "TERM_EXTENDED on the way: the consumer follows the application past it to COMPLETED",
        rule: "regulations: extension of the term (продление срока) is an intermediate status",
    },
    Case {
        name: "returned-to-centre",
        title: "RETURNED_TO_CENTRE: the service centre follows its application to the return",
        rule: "regulations 000 Т2 д.8: return to the centre within 3 working days (service-centre consumers only)",
    },
    Case {
        name: "watch-cut",
        title: "the Watch stream is cut: the consumer resumes from the last sequence it received",
        rule: "shep Watch contract: after_sequence resumes without loss or replay (docs/PROTOCOL.md)",
    },
];

/// How a provider the kit plays is reached and signs.
#[derive(Debug, Clone)]
pub struct PlayedProvider {
    pub provider_id: String,
    /// Connected as that provider system.
    pub channel: GrpcChannel,
    /// Its key and certificate (PEM).
    pub key: PathBuf,
    pub cert: PathBuf,
}

/// How the kit runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// The longest the consumer's command may run in one case.
    pub case_timeout: Duration,
    /// Only these cases (by name); empty for the whole catalogue.
    pub only: Vec<String>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            case_timeout: Duration::from_secs(60),
            only: Vec::new(),
        }
    }
}

/// Everything the consumer kit needs.
#[derive(Debug)]
pub struct ConsumerKit {
    pub admin: Admin,
    /// The consumer system graded (its id in the routing table).
    pub consumer_id: String,
    /// The consumer's command, run with `sh -c` once per case.
    pub command: String,
    /// The providers the kit plays while the consumer runs.
    pub providers: Vec<PlayedProvider>,
    pub options: Options,
}

impl ConsumerKit {
    /// Runs the selected cases and grades each.
    pub async fn run(&self) -> anyhow::Result<Report> {
        let selected = select("consumer", CASES, &self.options.only)?;
        let journal = Journal::new(self.admin.clone());
        journal.position().await?;
        let routes = self
            .admin
            .client()
            .list_routes(self.admin.request(ListRoutesRequest {})?)
            .await
            .map_err(crate::client::describe)?
            .into_inner()
            .routes;
        let services: Vec<String> = routes
            .iter()
            .filter(|route| route.senders.contains(&self.consumer_id))
            .map(|route| route.service_id.clone())
            .collect();
        anyhow::ensure!(
            !services.is_empty(),
            "no service of the routing table lists `{}` among its senders",
            self.consumer_id
        );
        let centre = routes.iter().any(|route| {
            route.senders.contains(&self.consumer_id)
                && route.channels.contains(&(Channel::ServiceCentre as i32))
        }) && self.consumer_id == "is-con";
        let run = uuid::Uuid::new_v4().simple().to_string();
        let mut outcomes = Vec::new();
        for case in selected {
            let started = Instant::now();
            let mut evidence = Vec::new();
            if case.name == "returned-to-centre" && !centre {
                outcomes.push(Outcome {
                    case: case.name,
                    title: case.title,
                    rule: case.rule,
                    failure: None,
                    skipped: Some(format!(
                        "`{}` is not the service centre's system: only ИС ЦОН applications return to the centre",
                        self.consumer_id
                    )),
                    evidence,
                    duration: started.elapsed(),
                });
                continue;
            }
            let session = format!("conformance-{}-{}", &run[..8], case.name);
            let failure = match self
                .case(case, &session, &services, &journal, &mut evidence)
                .await
            {
                Ok(failure) => failure,
                Err(error) => Some(format!("the case could not be run: {error:#}")),
            };
            outcomes.push(Outcome {
                case: case.name,
                title: case.title,
                rule: case.rule,
                failure,
                skipped: None,
                evidence,
                duration: started.elapsed(),
            });
        }
        Ok(Report {
            kit: "consumer",
            target: self.consumer_id.clone(),
            outcomes,
        })
    }

    async fn case(
        &self,
        case: Case,
        session: &str,
        services: &[String],
        journal: &Journal,
        evidence: &mut Vec<String>,
    ) -> anyhow::Result<Option<String>> {
        let mark = journal.position().await?;
        let admin = &self.admin;
        admin
            .client()
            .bind_session(admin.request(SessionBinding {
                session: session.to_owned(),
                to: Some(session_binding::To::SystemId(self.consumer_id.clone())),
                ..SessionBinding::default()
            })?)
            .await
            .map_err(crate::client::describe)?;
        evidence.push(format!(
            "test session `{session}`, bound to every call of `{}`",
            self.consumer_id
        ));
        let result = self.play(case, session, services, evidence).await;
        // Unbound whatever happened, so the consumer's next calls are its own.
        let unbound = admin
            .client()
            .unbind_session(admin.request(UnbindSessionRequest {
                session: session.to_owned(),
                ..UnbindSessionRequest::default()
            })?)
            .await
            .map_err(crate::client::describe);
        result?;
        unbound?;
        let exchanges = journal.in_session(mark, session).await?;
        Ok(checks::judge(case.name, &exchanges, evidence))
    }

    /// Sets the case up, runs the consumer's command, and tears the
    /// providers down.
    async fn play(
        &self,
        case: Case,
        session: &str,
        services: &[String],
        evidence: &mut Vec<String>,
    ) -> anyhow::Result<()> {
        for (target, code, reason, times) in faults(case.name, services) {
            self.admin
                .client()
                .add_fault(self.admin.in_session(
                    Fault {
                        target: Some(FaultTarget {
                            target: Some(target.clone()),
                        }),
                        effect: Some(match code {
                            "CUT" => fault::Effect::CutStreamAfter(2),
                            code => fault::Effect::Error(ErrorEffect {
                                code: code.to_owned(),
                                message: format!("{reason} (conformance case {})", case.name),
                                reason: reason.to_owned(),
                                ..ErrorEffect::default()
                            }),
                        }),
                        times,
                        ..Fault::default()
                    },
                    session,
                )?)
                .await
                .map_err(crate::client::describe)?;
        }
        if let Some(line) = fault_line(case.name) {
            evidence.push(line.to_owned());
        }
        let script = Arc::new(Script::parse(
            provider_script(case.name),
            "the kit's provider",
            std::path::Path::new("."),
        )?);
        let mut players = Vec::new();
        for played in &self.providers {
            let signer = Signer::from_files(&played.key, &played.cert)?;
            let participant = Participant::new(&played.provider_id, Channel::ProviderDesk, signer);
            players.push(tokio::spawn(run_script(
                played.channel.clone(),
                participant,
                script.clone(),
                RunOptions {
                    session: Some(session.to_owned()),
                    ..RunOptions::default()
                },
            )));
        }
        // Let the streams open before the consumer sends anything.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let ran = self.run_command(case.name, session, evidence).await;
        // What the providers report after the command ended still counts.
        tokio::time::sleep(Duration::from_millis(300)).await;
        for player in players {
            player.abort();
        }
        ran
    }

    async fn run_command(
        &self,
        case: &str,
        session: &str,
        evidence: &mut Vec<String>,
    ) -> anyhow::Result<()> {
        // std's process with a polled wait: tokio's `process` feature would
        // rebuild the workspace for one call site.
        let mut child = std::process::Command::new("sh")
            .arg("-c")
            .arg(&self.command)
            .env("SHEP_CONFORMANCE_CASE", case)
            .env("SHEP_CONFORMANCE_SESSION", session)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()?;
        let stdout = child.stdout.take();
        let reader = std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut stdout) = stdout {
                let _ = std::io::Read::read_to_string(&mut stdout, &mut text);
            }
            text
        });
        let until = Instant::now() + self.options.case_timeout;
        let status = loop {
            if let Some(status) = child.try_wait()? {
                break Some(status);
            }
            if Instant::now() >= until {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        match status {
            None => evidence.push(format!(
                "the consumer's command did not end within {} s: killed",
                self.options.case_timeout.as_secs()
            )),
            Some(status) => evidence.push(format!("the consumer's command exited ({status})")),
        }
        let stdout = tokio::task::spawn_blocking(move || reader.join().unwrap_or_default())
            .await
            .unwrap_or_default();
        for line in stdout.lines().take(40) {
            evidence.push(format!("  | {line}"));
        }
        Ok(())
    }
}

/// The faults of a case: target, code (or `CUT`), reason, times.
fn faults(
    case: &str,
    services: &[String],
) -> Vec<(fault_target::Target, &'static str, &'static str, u32)> {
    let registries = |code, reason, times| {
        REGISTRIES
            .iter()
            .map(move |id| {
                (
                    fault_target::Target::Registry((*id).to_owned()),
                    code,
                    reason,
                    times,
                )
            })
            .collect::<Vec<_>>()
    };
    let each_service = |refusals: &[(&'static str, &'static str)]| {
        refusals
            .iter()
            .flat_map(|(code, reason)| {
                services
                    .iter()
                    .map(move |id| (fault_target::Target::Service(id.clone()), *code, *reason, 1))
            })
            .collect::<Vec<_>>()
    };
    match case {
        "registry-unavailable" => registries("UNAVAILABLE", "REGISTRY_UNAVAILABLE", 2),
        "no-data" => registries("NOT_FOUND", "NO_DATA", 0),
        "retryable-refusals" => each_service(&[
            ("RESOURCE_EXHAUSTED", "OVERLOADED"),
            ("UNAVAILABLE", "STORAGE_UNAVAILABLE"),
            ("DEADLINE_EXCEEDED", "DEADLINE_EXCEEDED"),
        ]),
        "final-refusals" => each_service(&[
            ("PERMISSION_DENIED", "SENDER_NOT_ALLOWED"),
            ("UNAUTHENTICATED", "SIGNATURE_INVALID"),
            ("FAILED_PRECONDITION", "NO_PROVIDER_FOR_REGION"),
        ]),
        "watch-cut" => vec![(fault_target::Target::Watch("*".to_owned()), "CUT", "", 1)],
        _ => Vec::new(),
    }
}

fn fault_line(case: &str) -> Option<&'static str> {
    Some(match case {
        "registry-unavailable" => {
            "faults: every registry answers UNAVAILABLE / REGISTRY_UNAVAILABLE twice"
        }
        "no-data" => "faults: every registry answers NOT_FOUND / NO_DATA",
        "retryable-refusals" => {
            "faults: each service refuses once with OVERLOADED, then STORAGE_UNAVAILABLE, then DEADLINE_EXCEEDED"
        }
        "final-refusals" => {
            "faults: each service refuses once with SENDER_NOT_ALLOWED, then SIGNATURE_INVALID, then NO_PROVIDER_FOR_REGION"
        }
        "watch-cut" => "fault: the first Watch stream is cut after 2 events",
        _ => return None,
    })
}

/// The script of the providers the kit plays in a case.
fn provider_script(case: &str) -> &'static str {
    match case {
        "not-delivered" => {
            "[services.default]\nack = \"reject\"\nreject_reason = \"conformance: the provider refuses the request\"\n"
        }
        "slow-provider" => {
            "[services.default]\n[[services.default.steps]]\nstatus = \"REGISTERED\"\ndelay = \"1500ms\"\n[[services.default.steps]]\nstatus = \"IN_WORK\"\ndelay = \"1500ms\"\n[[services.default.steps]]\nstatus = \"COMPLETED\"\ndelay = \"1500ms\"\n"
        }
        "term-extension" => {
            "[services.default]\n[[services.default.steps]]\nstatus = \"REGISTERED\"\ndelay = \"100ms\"\n[[services.default.steps]]\nstatus = \"IN_WORK\"\ndelay = \"100ms\"\n[[services.default.steps]]\nstatus = \"TERM_EXTENDED\"\nterm = \"5 working-days\"\ndelay = \"100ms\"\n[[services.default.steps]]\nstatus = \"IN_WORK\"\ndelay = \"100ms\"\n[[services.default.steps]]\nstatus = \"COMPLETED\"\ndelay = \"100ms\"\n"
        }
        "returned-to-centre" => {
            "[services.default]\n[[services.default.steps]]\nstatus = \"REGISTERED\"\ndelay = \"100ms\"\n[[services.default.steps]]\nstatus = \"RETURNED_TO_CENTRE\"\nreason = \"conformance: documents incomplete\"\ndelay = \"100ms\"\n"
        }
        // Slow enough that a Watch sees the events one by one.
        "watch-cut" => {
            "[services.default]\n[[services.default.steps]]\nstatus = \"REGISTERED\"\ndelay = \"300ms\"\n[[services.default.steps]]\nstatus = \"IN_WORK\"\ndelay = \"300ms\"\n[[services.default.steps]]\nstatus = \"COMPLETED\"\ndelay = \"300ms\"\n"
        }
        _ => {
            "[services.default]\n[[services.default.steps]]\nstatus = \"REGISTERED\"\ndelay = \"100ms\"\n[[services.default.steps]]\nstatus = \"IN_WORK\"\ndelay = \"100ms\"\n[[services.default.steps]]\nstatus = \"COMPLETED\"\ndelay = \"100ms\"\n"
        }
    }
}
