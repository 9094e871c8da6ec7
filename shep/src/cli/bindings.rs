//! `shep bindings`: test sessions bound to traffic (Admin BindSession,
//! ListSessionBindings, UnbindSession), for systems that cannot send
//! `x-shep-session`.

use std::path::PathBuf;

use anyhow::Context as _;
use shep_proto::admin::v1::SessionBinding;
use shep_proto::admin::v1::session_binding::To;

use super::admin::AdminArgs;
use super::{connect_as, describe};

/// What `shep bindings` does.
#[derive(Debug, clap::Subcommand)]
pub(super) enum BindingsCommand {
    /// Binds a session to one thing the gateway sees (replacing the session
    /// of an existing binding of it) and prints the binding.
    Add(Box<BindArgs>),
    /// Lists the bindings.
    List {
        /// Only this session's; all without.
        #[arg(long)]
        session: Option<String>,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Removes a binding by id (`b-3`), or every binding of `--session`.
    Delete {
        #[arg(required_unless_present = "session", conflicts_with = "session")]
        id: Option<String>,
        #[arg(long)]
        session: Option<String>,
        #[command(flatten)]
        admin: AdminArgs,
    },
}

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("to").required(true).args(["session_id", "system", "provider", "subject", "certificate", "certificate_sha256"])))]
pub(super) struct BindArgs {
    /// The session the matching calls are in.
    #[arg(long)]
    session: String,
    /// Envelopes whose ШЭП sessionId is this UUID.
    #[arg(long)]
    session_id: Option<String>,
    /// Calls by this participant system (envelopes it sends, its own calls).
    #[arg(long)]
    system: Option<String>,
    /// Everything that reaches this provider system, and its own calls.
    #[arg(long)]
    provider: Option<String>,
    /// Envelopes about this IIN or BIN.
    #[arg(long)]
    subject: Option<String>,
    /// Calls with this certificate (PEM; its first certificate), as TLS
    /// client or envelope signer: the fingerprint is computed here.
    #[arg(long)]
    certificate: Option<PathBuf>,
    /// The same by SHA-256 fingerprint (64 hex digits, colons allowed).
    #[arg(long)]
    certificate_sha256: Option<String>,
    #[command(flatten)]
    admin: AdminArgs,
}

impl BindArgs {
    fn binding(&self) -> anyhow::Result<SessionBinding> {
        let to = if let Some(id) = &self.session_id {
            To::SessionId(id.clone())
        } else if let Some(id) = &self.system {
            To::SystemId(id.clone())
        } else if let Some(id) = &self.provider {
            To::ProviderId(id.clone())
        } else if let Some(id) = &self.subject {
            To::Subject(id.clone())
        } else if let Some(path) = &self.certificate {
            To::CertificateSha256(fingerprint_of_pem(path)?)
        } else if let Some(hex) = &self.certificate_sha256 {
            To::CertificateSha256(hex.clone())
        } else {
            anyhow::bail!(
                "name what to bind: --session-id, --system, --provider, --subject, --certificate or --certificate-sha256"
            );
        };
        Ok(SessionBinding {
            id: String::new(),
            session: self.session.clone(),
            to: Some(to),
        })
    }
}

/// The SHA-256 fingerprint of the first certificate in a PEM file.
fn fingerprint_of_pem(path: &std::path::Path) -> anyhow::Result<String> {
    let pem = std::fs::read(path).with_context(|| format!("reading `{}`", path.display()))?;
    let (_, block) = x509_parser::pem::parse_x509_pem(&pem)
        .map_err(|error| anyhow::anyhow!("`{}` is not PEM: {error}", path.display()))?;
    anyhow::ensure!(
        block.label == "CERTIFICATE",
        "`{}` starts with a {}, not a CERTIFICATE",
        path.display(),
        block.label
    );
    Ok(shep_gateway::admin_auth::Fingerprint::of(&block.contents).to_string())
}

fn print_binding(binding: &SessionBinding) {
    let to = match &binding.to {
        Some(To::SessionId(id)) => format!("session-id {id}"),
        Some(To::SystemId(id)) => format!("system {id}"),
        Some(To::ProviderId(id)) => format!("provider {id}"),
        Some(To::Subject(id)) => format!("subject {id}"),
        Some(To::CertificateSha256(hex)) => format!("certificate {hex}"),
        None => "nothing".to_owned(),
    };
    println!("  {} {to} -> session {}", binding.id, binding.session);
}

/// Runs `shep bindings`.
pub(super) async fn bindings(command: BindingsCommand) -> anyhow::Result<()> {
    use shep_proto::admin::v1::admin_client::AdminClient;
    use shep_proto::admin::v1::{ListSessionBindingsRequest, UnbindSessionRequest};
    let admin = match &command {
        BindingsCommand::Add(args) => &args.admin,
        BindingsCommand::List { admin, .. } | BindingsCommand::Delete { admin, .. } => admin,
    };
    let mut client = AdminClient::new(connect_as(&admin.gateway, &admin.data_dir, None).await?);
    let listed = match &command {
        BindingsCommand::Add(args) => {
            let binding = client
                .bind_session(admin.authorized(args.binding()?)?)
                .await
                .map_err(describe)?
                .into_inner();
            println!("bound");
            print_binding(&binding);
            return Ok(());
        }
        BindingsCommand::List { session, .. } => {
            client
                .list_session_bindings(admin.authorized(ListSessionBindingsRequest {
                    session: session.clone().unwrap_or_default(),
                })?)
                .await
        }
        BindingsCommand::Delete { id, session, .. } => {
            client
                .unbind_session(admin.authorized(UnbindSessionRequest {
                    id: id.clone().unwrap_or_default(),
                    session: session.clone().unwrap_or_default(),
                })?)
                .await
        }
    };
    let bindings = listed.map_err(describe)?.into_inner().bindings;
    println!("{} binding(s)", bindings.len());
    for binding in &bindings {
        print_binding(binding);
    }
    Ok(())
}
