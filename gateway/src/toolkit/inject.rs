//! Carrying out a fault that fired: its delay, bounded by the caller's
//! deadline, then its effect.

use tokio::time::Instant;

use crate::error::GatewayError;
use crate::error::InjectedError;
use crate::toolkit::CallContext;
use crate::toolkit::connections::Connections;
use crate::toolkit::faults::{Effect, Fired};

/// Applies `fired` to a call on `what` (e.g. "registry `gbdfl`"). `Ok` lets
/// the call go on.
pub async fn apply(
    fired: Fired,
    ctx: &CallContext,
    what: &str,
    connections: &Connections,
) -> Result<(), GatewayError> {
    let deadline_passed = || GatewayError::DeadlineExceeded(what.to_owned());
    if let Some(delay) = fired.delay {
        let until = Instant::now() + delay;
        match ctx.deadline {
            Some(deadline) if deadline < until => {
                tokio::time::sleep_until(deadline).await;
                return Err(deadline_passed());
            }
            _ => tokio::time::sleep_until(until).await,
        }
    }
    match fired.effect {
        // The stream and the deliveries carry these out themselves.
        Effect::Proceed
        | Effect::CutStreamAfter(_)
        | Effect::DuplicateDelivery
        | Effect::CorruptDelivery
        | Effect::DelayDelivery
        | Effect::DropAck => Ok(()),
        Effect::Error(injected) => Err(GatewayError::Injected(injected)),
        Effect::Hang(max) => match ctx.deadline {
            Some(deadline) => {
                tokio::time::sleep_until(deadline).await;
                Err(deadline_passed())
            }
            None => {
                tokio::time::sleep(max).await;
                Err(GatewayError::Injected(InjectedError::unavailable(
                    format!("{what} did not answer within {} ms", max.as_millis()),
                    &fired.fault_id,
                )))
            }
        },
        Effect::DropConnection => {
            if let Some(peer) = ctx.peer {
                connections.kill(peer);
            }
            Err(GatewayError::Injected(InjectedError::unavailable(
                "connection dropped by a fault".to_owned(),
                &fired.fault_id,
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn fired(delay: Option<Duration>, effect: Effect) -> Fired {
        Fired {
            fault_id: "f1".to_owned(),
            delay,
            effect,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_delay_waits_then_lets_the_call_go_on() {
        let started = Instant::now();
        let ctx = CallContext::default();
        let connections = Connections::default();
        let delay = Some(Duration::from_millis(300));
        apply(fired(delay, Effect::Proceed), &ctx, "x", &connections)
            .await
            .unwrap();
        assert_eq!(started.elapsed(), Duration::from_millis(300));
    }

    #[tokio::test(start_paused = true)]
    async fn a_delay_past_the_deadline_ends_at_the_deadline() {
        let started = Instant::now();
        let ctx = CallContext {
            deadline: Some(started + Duration::from_millis(100)),
            ..CallContext::default()
        };
        let delay = Some(Duration::from_secs(5));
        let error = apply(
            fired(delay, Effect::Proceed),
            &ctx,
            "x",
            &Connections::default(),
        )
        .await
        .unwrap_err();
        assert!(
            matches!(error, GatewayError::DeadlineExceeded(_)),
            "{error}"
        );
        assert_eq!(started.elapsed(), Duration::from_millis(100));
    }

    #[tokio::test(start_paused = true)]
    async fn a_hang_without_a_deadline_gives_up_after_its_maximum() {
        let started = Instant::now();
        let hang = Effect::Hang(Duration::from_secs(2));
        let error = apply(
            fired(None, hang),
            &CallContext::default(),
            "x",
            &Connections::default(),
        )
        .await
        .unwrap_err();
        match error {
            GatewayError::Injected(injected) => {
                assert_eq!(injected.reason, "INJECTED_FAULT");
                assert!(
                    injected
                        .metadata
                        .contains(&("fault_id".into(), "f1".into()))
                );
            }
            other => panic!("{other}"),
        }
        assert_eq!(started.elapsed(), Duration::from_secs(2));
    }
}
