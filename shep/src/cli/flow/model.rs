//! The flows of the regulations as files (`shep/flows/*.toml`): their
//! steps, what each does at the gateway, and how long it takes.

use anyhow::{Context as _, bail};
use serde::Deserialize;
use shep_proto::admin::v1::set_clock_request::Change;
use shep_proto::envelope::v1::ApplicationStatus;

use shep_gateway::server::DEMO_APPLICANT_IIN;

use crate::script::Span;

/// The flows shipped with the binary.
pub(super) const SHIPPED: &[(&str, &str)] = &[
    ("000-portal", include_str!("../../../flows/000-portal.toml")),
    ("000-centre", include_str!("../../../flows/000-centre.toml")),
    (
        "000-centre-return",
        include_str!("../../../flows/000-centre-return.toml"),
    ),
    ("001-desk", include_str!("../../../flows/001-desk.toml")),
    ("001-portal", include_str!("../../../flows/001-portal.toml")),
    ("002-portal", include_str!("../../../flows/002-portal.toml")),
    ("003-portal", include_str!("../../../flows/003-portal.toml")),
    ("004-portal", include_str!("../../../flows/004-portal.toml")),
    ("004-centre", include_str!("../../../flows/004-centre.toml")),
    ("004-desk", include_str!("../../../flows/004-desk.toml")),
];

/// One flow of the regulations.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Flow {
    pub(super) name: String,
    pub(super) title: String,
    /// The regulation's items the steps follow.
    pub(super) source: String,
    pub(super) service: String,
    /// The applicant (default: the demo applicant).
    #[serde(default)]
    pub(super) subject: Option<String>,
    #[serde(rename = "step")]
    pub(super) steps: Vec<FlowStep>,
}

/// One step: who does what, in how long, and what it does at the gateway.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FlowStep {
    /// «процесс 3», «условие 2», «Т2 д.4» …
    pub(super) label: String,
    pub(super) actor: String,
    pub(super) text: String,
    /// The regulation's time for the step: `30s`, `1m30s`, `20m`, or
    /// working days `5wd`.
    pub(super) takes: String,
    #[serde(default)]
    pub(super) action: Action,
    /// Who acts (`submit`, `lookup`): `applicant`, `operator` or `employee`.
    #[serde(rename = "as", default)]
    pub(super) actor_kind: Option<Acting>,
    /// The lookup service (`lookup`).
    pub(super) lookup: Option<String>,
    /// The reported status (`report`).
    pub(super) status: Option<String>,
    /// The refusal or return reason (`report`).
    pub(super) reason: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub(super) enum Action {
    /// Outside the gateway: only the clock moves.
    #[default]
    None,
    Lookup,
    Submit,
    /// The provider takes the delivery (GetMessages) and acknowledges it.
    Receive,
    /// Receive, then report REGISTERED with a number.
    Register,
    Report,
    /// The holder of the paper result reports ISSUED.
    Issue,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub(super) enum Acting {
    Applicant,
    Operator,
    Employee,
}

/// How long a step takes on the simulated clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Takes {
    Span(std::time::Duration),
    WorkingDays(u32),
}

impl Takes {
    pub(super) fn parse(text: &str) -> anyhow::Result<Self> {
        if let Some(days) = text.strip_suffix("wd") {
            return Ok(Self::WorkingDays(days.trim().parse().with_context(
                || format!("`{text}`: working days are a whole number, e.g. `5wd`"),
            )?));
        }
        let span: Span = text.parse().map_err(anyhow::Error::msg)?;
        Ok(Self::Span(span.0))
    }

    pub(super) fn change(self) -> Change {
        match self {
            Self::Span(span) => Change::AdvanceSeconds(span.as_secs()),
            Self::WorkingDays(days) => Change::AdvanceWorkingDays(days),
        }
    }

    pub(super) fn describe(self, text: &str) -> String {
        match self {
            Self::WorkingDays(days) => format!("{days} раб. дн."),
            Self::Span(_) => text.to_owned(),
        }
    }
}

impl Flow {
    /// Reads a flow and checks every step's fields.
    pub(crate) fn parse(text: &str, origin: &str) -> anyhow::Result<Self> {
        let flow: Self = toml::from_str(text).with_context(|| format!("flow `{origin}`"))?;
        if flow.steps.is_empty() {
            bail!("flow `{origin}`: no steps");
        }
        for (number, step) in flow.steps.iter().enumerate() {
            let at = || format!("flow `{origin}`, step {} ({})", number + 1, step.label);
            Takes::parse(&step.takes).with_context(at)?;
            match step.action {
                Action::Submit if step.actor_kind.is_none() => {
                    bail!("{}: `submit` needs `as`", at())
                }
                Action::Lookup if step.lookup.is_none() || step.actor_kind.is_none() => {
                    bail!("{}: `lookup` needs `lookup` and `as`", at())
                }
                Action::Report => {
                    let status = step.status.as_deref().unwrap_or_default();
                    if ApplicationStatus::from_str_name(status).is_none() {
                        bail!("{}: `report` needs a `status`, not `{status}`", at());
                    }
                }
                _ => {}
            }
        }
        Ok(flow)
    }

    pub(super) fn subject(&self) -> &str {
        self.subject.as_deref().unwrap_or(DEMO_APPLICANT_IIN)
    }
}

/// The shipped flows.
pub(crate) fn shipped() -> anyhow::Result<Vec<Flow>> {
    SHIPPED
        .iter()
        .map(|(name, text)| Flow::parse(text, name))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_flows_parse_and_take_their_times() {
        let flows = shipped().unwrap();
        assert_eq!(flows.len(), SHIPPED.len());
        for flow in &flows {
            assert!(
                flow.steps.iter().any(|step| step.action == Action::Submit),
                "{}",
                flow.name
            );
        }
        assert_eq!(Takes::parse("5wd").unwrap(), Takes::WorkingDays(5));
        assert_eq!(
            Takes::parse("1m30s").unwrap(),
            Takes::Span(std::time::Duration::from_secs(90))
        );
        assert!(Takes::parse("soon").is_err());
        assert!(Flow::parse("name = 'x'", "bad").is_err());
    }
}
