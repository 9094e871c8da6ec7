//! The web console at `/console` (docs/CONSOLE.md): the provider employee's
//! workstation (АРМ РШЭП) and the applicant's personal cabinet, served by the
//! gateway itself from vendored static files, in Russian.
//!
//! Nobody logs in with a password: the browser proves a person by signing a
//! fresh challenge with their НУЦ key (WebCrypto), checked by the same
//! certificate rules as an envelope's signature. An employee must be an
//! operator of the provider system they work for; the workstation then acts
//! as that system. Its reports are signed in the browser too, as ШЭП
//! business data (XMLDSig over `<body>`), and go through the same Report
//! path as any provider system's.

mod api;
mod assets;

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use dashmap::DashMap;
use shep_nuc::verify::SignerIdentity;
use shep_proto::envelope::v1::SignedEnvelope;

use crate::engine::Engine;
use crate::error::GatewayError;
use crate::pipeline::EnvelopeService;

/// How long a challenge may be answered.
const CHALLENGE_TTL: Duration = Duration::from_secs(300);
/// How long a login lasts.
const LOGIN_TTL: Duration = Duration::from_secs(8 * 3600);
/// Challenges and logins kept at most; past it the oldest are dropped.
const MAX_ENTRIES: usize = 10_000;
/// Applications a workstation keeps in its inbox.
const MAX_INBOX: usize = 1_000;

/// Who a console login is.
#[derive(Debug, Clone)]
pub(crate) enum Role {
    /// An applicant, by the IIN of their certificate.
    Applicant { iin: String },
    /// An employee working for `provider`.
    Employee { provider: String },
}

#[derive(Debug, Clone)]
pub(crate) struct Login {
    pub(crate) role: Role,
    pub(crate) signer: Arc<SignerIdentity>,
    until: Instant,
}

/// An application a workstation received.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    pub(crate) message_id: String,
    pub(crate) envelope: Arc<SignedEnvelope>,
    /// The signature check of the received envelope, as the АРМ saw it.
    pub(crate) signature: Result<Arc<SignerIdentity>, String>,
}

/// The console's state.
#[derive(Debug, Clone)]
pub(crate) struct Console {
    engine: Arc<Engine>,
    pipeline: EnvelopeService,
    challenges: Arc<DashMap<String, Instant>>,
    logins: Arc<DashMap<String, Login>>,
    /// Per provider system, what its workstation received, newest last.
    inboxes: Arc<DashMap<String, Vec<Received>>>,
}

/// The console's routes: the pages and `/console/api/…`.
pub(crate) fn router(engine: Arc<Engine>, pipeline: EnvelopeService) -> axum::Router {
    let console = Console {
        engine,
        pipeline,
        challenges: Arc::default(),
        logins: Arc::default(),
        inboxes: Arc::default(),
    };
    assets::routes().merge(api::routes(console))
}

fn token() -> String {
    let bytes: [u8; 24] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

impl Console {
    /// A fresh challenge to sign.
    fn challenge(&self) -> String {
        let now = Instant::now();
        if self.challenges.len() >= MAX_ENTRIES {
            self.challenges
                .retain(|_, made| now.duration_since(*made) < CHALLENGE_TTL);
        }
        let challenge = format!("shep-sim console login {}", token());
        self.challenges.insert(challenge.clone(), now);
        challenge
    }

    /// Logs in whoever signed `challenge` (once) with `signature`, as `role`.
    async fn login(
        &self,
        challenge: &str,
        signature: &shep_proto::envelope::v1::Signature,
        provider: Option<&str>,
    ) -> Result<(String, Login), GatewayError> {
        self.challenges
            .remove(challenge)
            .filter(|(_, made)| made.elapsed() < CHALLENGE_TTL)
            .ok_or_else(|| {
                GatewayError::NotAuthenticated(
                    "the challenge is unknown, used or expired: ask for a new one".to_owned(),
                )
            })?;
        let signer = self
            .engine
            .checks
            .verify_bytes(
                Some(signature),
                challenge.as_bytes(),
                time::OffsetDateTime::now_utc(),
            )
            .await?;
        let role = match provider {
            Some(provider) => {
                crate::checks::check_operator(&self.engine.routes(), provider, &signer)?;
                Role::Employee {
                    provider: provider.to_owned(),
                }
            }
            None => match (&signer.iin, &signer.bin) {
                (Some(iin), None) => Role::Applicant { iin: iin.clone() },
                _ => {
                    return Err(GatewayError::IdentityMismatch {
                        kind: "certificate",
                        expected: "an individual's (IIN, no BIN) for the personal cabinet"
                            .to_owned(),
                        found: signer.common_name.clone(),
                    });
                }
            },
        };
        let now = Instant::now();
        if self.logins.len() >= MAX_ENTRIES {
            self.logins.retain(|_, login| login.until > now);
        }
        let login = Login {
            role,
            signer,
            until: now + LOGIN_TTL,
        };
        let token = token();
        self.logins.insert(token.clone(), login.clone());
        Ok((token, login))
    }

    /// The login `token` names, if it is current.
    fn session(&self, token: &str) -> Result<Login, GatewayError> {
        self.logins
            .get(token)
            .map(|login| login.clone())
            .filter(|login| login.until > Instant::now())
            .ok_or(GatewayError::Unauthenticated)
    }

    /// Keeps what `provider`'s workstation received.
    fn keep(&self, provider: &str, received: Received) {
        let mut inbox = self.inboxes.entry(provider.to_owned()).or_default();
        inbox.retain(|kept| kept.message_id != received.message_id);
        inbox.push(received);
        if inbox.len() > MAX_INBOX {
            let excess = inbox.len() - MAX_INBOX;
            inbox.drain(..excess);
        }
    }
}
