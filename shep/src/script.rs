//! Provider scripts: per service, how a simulated provider system (АРМ РШЭП,
//! ИС МИО) acknowledges each delivery and which status reports it sends,
//! after which delays, with weighted branches, so one script plays a
//! realistic provider. [`Script::load`] parses and validates a TOML file;
//! [`run_script`] plays it on a Subscribe stream. The format is in
//! docs/SCRIPTS.md.

mod delay;
mod rules;
mod run;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use shep_gateway::calendar::Deadline;
use shep_gateway::lifecycle::{Reporter, Rules, refusal, reporter_of};
use shep_proto::envelope::v1::ApplicationStatus;
use time::OffsetDateTime;

pub use delay::{Delay, MeanSd, Span};
pub use rules::{ProviderRule, run_provider};
pub use run::{Misbehaviour, RunOptions, run_script};

/// The service key that applies to any service not named.
pub const DEFAULT_SERVICE: &str = "default";

/// Why a script was refused.
#[derive(Debug, thiserror::Error)]
pub enum ScriptError {
    #[error("reading script `{path}`")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// Not TOML, or not the script's shape; the message names the line.
    #[error("script `{file}`: {message}")]
    Parse { file: String, message: String },
    #[error("script `{file}`: `{field}` {problem}")]
    Invalid {
        file: String,
        field: String,
        problem: String,
    },
}

/// A provider script.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Script {
    /// Seeds every random choice (branches, delays): the n-th request the
    /// provider takes gets the same branch and delays on every run.
    #[serde(default)]
    pub seed: u64,
    /// By service id; [`DEFAULT_SERVICE`] for any other.
    #[serde(default)]
    pub services: BTreeMap<String, ServiceScript>,
}

/// What the provider does with the requests of one service.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceScript {
    /// How to acknowledge each attempt: one answer for all, or a list by
    /// attempt (the last repeats). Default `accept`.
    #[serde(default, deserialize_with = "one_or_many")]
    pub ack: Vec<Ack>,
    /// The `error_message` of a not-accepted ack.
    #[serde(default)]
    pub reject_reason: Option<String>,
    /// The reports after the request is accepted, in order.
    #[serde(default)]
    pub steps: Vec<Step>,
    /// Then one of these, chosen by weight.
    #[serde(default)]
    pub branches: Vec<Branch>,
}

/// An answer to one delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Ack {
    /// MESSAGE_ACCEPTED; the steps start.
    Accept,
    /// MESSAGE_NOT_ACCEPTED with RESEND: the gateway delivers it again.
    RejectResend,
    /// MESSAGE_NOT_ACCEPTED with NOT_RESEND: NOT_DELIVERED, final.
    Reject,
    /// No ack at all: the lease runs out and the gateway delivers it again.
    None,
}

/// One of several ways an application goes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Branch {
    /// Named in the narration.
    #[serde(default)]
    pub name: Option<String>,
    /// Relative weight (`80`, `15`, `5`, or `0.8` ...); above zero.
    pub weight: f64,
    #[serde(default)]
    pub steps: Vec<Step>,
}

/// The statuses a provider reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StepStatus {
    Registered,
    InWork,
    TermExtended,
    ReturnedToCentre,
    Refused,
    Completed,
}

impl StepStatus {
    /// The proto status.
    pub fn status(self) -> ApplicationStatus {
        match self {
            StepStatus::Registered => ApplicationStatus::Registered,
            StepStatus::InWork => ApplicationStatus::InWork,
            StepStatus::TermExtended => ApplicationStatus::TermExtended,
            StepStatus::ReturnedToCentre => ApplicationStatus::ReturnedToCentre,
            StepStatus::Refused => ApplicationStatus::Refused,
            StepStatus::Completed => ApplicationStatus::Completed,
        }
    }
}

/// One status report, after a delay.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    pub status: StepStatus,
    /// Waited before the report (divided by the run's time factor).
    #[serde(default, deserialize_with = "Delay::deserialize_any")]
    pub delay: Option<Delay>,
    /// REGISTERED: the number, with `{seq}` (the provider's count of
    /// registrations), `{id8}` (the message id's first 8 characters),
    /// `{attempt}` and `{year}`. Default `{id8}-{attempt}`.
    #[serde(default)]
    pub registration_number: Option<String>,
    /// REGISTERED (optional), TERM_EXTENDED (required): when the result is
    /// expected, as `5 working-days` / `10 calendar-days` / `90 minutes`
    /// from the report, or a date `2025-07-01` (18:00 Astana time), or an
    /// RFC 3339 time.
    #[serde(default, alias = "expected_at")]
    pub term: Option<Term>,
    /// REFUSED and RETURNED_TO_CENTRE (required).
    #[serde(default)]
    pub reason: Option<String>,
    /// The applicant's notification instead of the gateway's default text.
    #[serde(default)]
    pub notification: Option<String>,
    /// COMPLETED: the result (a default certificate when absent); REFUSED:
    /// the motivated refusal (optional). Signed with the provider's key.
    #[serde(default)]
    pub document: Option<DocumentSpec>,
}

/// When a result is expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Term {
    /// Counted from the report.
    After(Deadline),
    At(OffsetDateTime),
}

impl<'de> Deserialize<'de> for Term {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl std::str::FromStr for Term {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        if let Ok(deadline) = text.parse::<Deadline>() {
            return Ok(Term::After(deadline));
        }
        if let Ok(date) = shep_gateway::calendar::parse_date(text) {
            let at = date
                .with_hms(18, 0, 0)
                .map_err(|error| error.to_string())?
                .assume_offset(shep_gateway::calendar::KZ_OFFSET);
            return Ok(Term::At(at));
        }
        OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
            .map(Term::At)
            .map_err(|_| {
                format!(
                    "`{text}` is not a term: `<n> working-days` (or calendar-days, minutes), a date `YYYY-MM-DD` or an RFC 3339 time"
                )
            })
    }
}

/// A document the provider signs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DocumentSpec {
    /// The file name shown to the applicant.
    pub name: String,
    #[serde(default = "text_plain")]
    pub content_type: String,
    /// The content, with `{message_id}`, `{service_id}`, `{registration_number}`.
    #[serde(default)]
    pub text: Option<String>,
    /// Or a file's bytes, relative to the script's directory (read on load).
    #[serde(default)]
    pub file: Option<PathBuf>,
    /// The file's bytes, once loaded.
    #[serde(skip)]
    pub content: Option<Vec<u8>>,
}

fn text_plain() -> String {
    "text/plain; charset=utf-8".to_owned()
}

fn one_or_many<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Vec<Ack>, D::Error> {
    use serde::de::{self, SeqAccess, Visitor};
    struct AckVisitor;
    impl<'de> Visitor<'de> for AckVisitor {
        type Value = Vec<Ack>;

        fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            formatter.write_str("an answer (accept, reject-resend, reject, none) or a list of them")
        }

        fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
            Ack::deserialize(de::value::StrDeserializer::<E>::new(text)).map(|ack| vec![ack])
        }

        fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
            Vec::<Ack>::deserialize(de::value::SeqAccessDeserializer::new(seq))
        }
    }
    deserializer.deserialize_any(AckVisitor)
}

impl Script {
    /// Reads, parses and validates the script at `path`; a document's
    /// `file` is read relative to the script's directory.
    pub fn load(path: &Path) -> Result<Self, ScriptError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScriptError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::parse(&text, &path.display().to_string(), base)
    }

    /// Parses and validates `text` (named `file` in errors; documents'
    /// files relative to `base`).
    pub fn parse(text: &str, file: &str, base: &Path) -> Result<Self, ScriptError> {
        let mut script: Script = toml::from_str(text).map_err(|error| ScriptError::Parse {
            file: file.to_owned(),
            message: error.to_string().trim_end().to_owned(),
        })?;
        script.validate(file, base)?;
        Ok(script)
    }

    /// The script for `service_id`: its own, else [`DEFAULT_SERVICE`]'s.
    pub fn for_service(&self, service_id: &str) -> Option<&ServiceScript> {
        self.services
            .get(service_id)
            .or_else(|| self.services.get(DEFAULT_SERVICE))
    }

    fn validate(&mut self, file: &str, base: &Path) -> Result<(), ScriptError> {
        let invalid = |field: String, problem: String| ScriptError::Invalid {
            file: file.to_owned(),
            field,
            problem,
        };
        if self.services.is_empty() {
            return Err(invalid(
                "services".to_owned(),
                format!(
                    "names no service: add `[services.{DEFAULT_SERVICE}]` or one per service id"
                ),
            ));
        }
        for (id, service) in &mut self.services {
            let at = format!("services.{id}");
            if service.ack.is_empty() {
                service.ack.push(Ack::Accept);
            }
            let has_steps = !(service.steps.is_empty() && service.branches.is_empty());
            if has_steps && !service.ack.contains(&Ack::Accept) {
                return Err(invalid(
                    format!("{at}.ack"),
                    "never accepts, so its steps would never run".to_owned(),
                ));
            }
            // Every path through the script: the steps, then each branch.
            let mut common = Vec::new();
            for (n, step) in service.steps.iter_mut().enumerate() {
                let name = format!("{at}.steps[{n}]");
                check_step(&name, step, base)
                    .map_err(|(field, problem)| invalid(field, problem))?;
                common.push((name, step.status));
            }
            if service.branches.is_empty() {
                check_order(&common).map_err(|(field, problem)| invalid(field, problem))?;
            }
            for (b, branch) in service.branches.iter_mut().enumerate() {
                let field = format!("{at}.branches[{b}]");
                if !(branch.weight > 0.0 && branch.weight.is_finite()) {
                    return Err(invalid(
                        format!("{field}.weight"),
                        "must be a number above zero".to_owned(),
                    ));
                }
                let mut path = common.clone();
                for (n, step) in branch.steps.iter_mut().enumerate() {
                    let name = format!("{field}.steps[{n}]");
                    check_step(&name, step, base)
                        .map_err(|(field, problem)| invalid(field, problem))?;
                    path.push((name, step.status));
                }
                check_order(&path).map_err(|(field, problem)| invalid(field, problem))?;
            }
        }
        Ok(())
    }
}

type Problem = (String, String);

/// The fields a step's status needs and allows; loads a document's file.
fn check_step(at: &str, step: &mut Step, base: &Path) -> Result<(), Problem> {
    use StepStatus::*;
    let status = step.status;
    let name = status.status().as_str_name();
    let not_for = |field: &str, allowed: &str| {
        Err((
            format!("{at}.{field}"),
            format!("does not apply to {name} (only to {allowed})"),
        ))
    };
    if step.registration_number.is_some() && status != Registered {
        return not_for("registration_number", "REGISTERED");
    }
    if step.term.is_some() && !matches!(status, Registered | TermExtended) {
        return not_for("term", "REGISTERED and TERM_EXTENDED");
    }
    if step.reason.is_some() && !matches!(status, Refused | ReturnedToCentre) {
        return not_for("reason", "REFUSED and RETURNED_TO_CENTRE");
    }
    if step.document.is_some() && !matches!(status, Completed | Refused) {
        return not_for("document", "COMPLETED and REFUSED");
    }
    if status == TermExtended && step.term.is_none() {
        return Err((
            format!("{at}.term"),
            "is required for TERM_EXTENDED".to_owned(),
        ));
    }
    if matches!(status, Refused | ReturnedToCentre)
        && step
            .reason
            .as_deref()
            .is_none_or(|reason| reason.trim().is_empty())
    {
        return Err((format!("{at}.reason"), format!("is required for {name}")));
    }
    if let Some(problem) = step.delay.as_ref().and_then(Delay::problem) {
        return Err((format!("{at}.delay"), problem));
    }
    if let Some(document) = &mut step.document {
        let field = format!("{at}.document");
        match (&document.text, &document.file) {
            (Some(_), None) => {}
            (None, Some(file)) => {
                let path = base.join(file);
                let content = std::fs::read(&path).map_err(|error| {
                    (
                        format!("{field}.file"),
                        format!("cannot be read (`{}`): {error}", path.display()),
                    )
                })?;
                document.content = Some(content);
            }
            _ => {
                return Err((field, "needs exactly one of `text` and `file`".to_owned()));
            }
        }
    }
    Ok(())
}

/// Whether the lifecycle allows the statuses in this order, starting from
/// ACCEPTED or DELIVERED (the report may overtake the ack). Checked as for
/// an application from the service centre, where every provider status
/// exists; the gateway refuses RETURNED_TO_CENTRE on other channels.
fn check_order(path: &[(String, StepStatus)]) -> Result<(), Problem> {
    let rules = Rules {
        channel: shep_proto::envelope::v1::Channel::ServiceCentre,
        immediate_result: false,
    };
    for start in [ApplicationStatus::Delivered, ApplicationStatus::Accepted] {
        let mut from = start;
        for (field, status) in path {
            let to = status.status();
            let why = if reporter_of(to) == Some(Reporter::Provider) {
                refusal(from, to, rules)
            } else {
                Some("a provider does not report it")
            };
            if let Some(why) = why {
                return Err((
                    format!("{field}.status"),
                    format!(
                        "{} may not follow {}: {why}",
                        to.as_str_name(),
                        from.as_str_name()
                    ),
                ));
            }
            from = to;
        }
    }
    Ok(())
}

impl ServiceScript {
    /// The answer to attempt `attempt` (1, 2, ...).
    pub fn ack_for(&self, attempt: u32) -> Ack {
        let index = (attempt.max(1) - 1) as usize;
        self.ack
            .get(index)
            .or(self.ack.last())
            .copied()
            .unwrap_or(Ack::Accept)
    }
}

#[cfg(test)]
mod tests;
