//! The built-in rules of `shep provider --rule`: shorthands for scripts.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tonic::transport::Channel as GrpcChannel;

use super::{
    Ack as ScriptAck, DEFAULT_SERVICE, Delay, RunOptions, Script, ServiceScript, Span, Step,
    StepStatus, run_script,
};
use crate::client::{Participant, ProviderStep};

/// How a simulated provider treats the requests it receives: shorthands for
/// built-in scripts ([`ProviderRule::script`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProviderRule {
    /// Acknowledge, register, take into work, complete with a signed result.
    Complete,
    /// Acknowledge, register, refuse with a reason.
    Refuse,
    /// Acknowledge as not accepted, without resend.
    Reject,
}

impl ProviderRule {
    /// The built-in script of this rule, waiting `step_delay` before each report.
    pub fn script(self, step_delay: Duration) -> Script {
        let delay = Some(Delay::Fixed(Span(step_delay)));
        let step = |status| Step {
            status,
            delay,
            registration_number: None,
            term: None,
            reason: None,
            notification: None,
            document: None,
        };
        let service = match self {
            ProviderRule::Complete => ServiceScript {
                steps: vec![
                    step(StepStatus::Registered),
                    step(StepStatus::InWork),
                    step(StepStatus::Completed),
                ],
                ..ServiceScript::default()
            },
            ProviderRule::Refuse => ServiceScript {
                steps: vec![
                    step(StepStatus::Registered),
                    Step {
                        reason: Some("представлен неполный пакет документов".to_owned()),
                        ..step(StepStatus::Refused)
                    },
                ],
                ..ServiceScript::default()
            },
            ProviderRule::Reject => ServiceScript {
                ack: vec![ScriptAck::Reject],
                reject_reason: Some("the simulated provider rejects every request".to_owned()),
                ..ServiceScript::default()
            },
        };
        Script {
            seed: 0,
            services: [(DEFAULT_SERVICE.to_owned(), service)].into(),
        }
    }
}

/// Runs a simulated provider on one Subscribe connection until the stream
/// ends, by one of the built-in rules. Each step is sent to `steps` (if
/// given) and logged. [`run_script`] plays any script.
pub async fn run_provider(
    channel: GrpcChannel,
    participant: Participant,
    rule: ProviderRule,
    step_delay: Duration,
    steps: Option<mpsc::UnboundedSender<ProviderStep>>,
) -> anyhow::Result<()> {
    run_script(
        channel,
        participant,
        Arc::new(rule.script(step_delay)),
        RunOptions {
            steps,
            ..RunOptions::default()
        },
    )
    .await
}
