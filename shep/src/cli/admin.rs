//! `shep dead-letters`, and the operator's flags shared with `shep certs`:
//! the Admin API from the command line.

use std::path::PathBuf;

use anyhow::Context as _;
use shep_gateway::server::DataDir;
use tonic::Request;

use super::{DEFAULT_GATEWAY, connect_as, describe};

/// Where the gateway is and how to authenticate as its operator.
#[derive(Debug, clap::Args)]
pub(super) struct AdminArgs {
    #[arg(long, default_value = DEFAULT_GATEWAY)]
    pub(super) gateway: String,
    /// The admin token (default: `SHEP_ADMIN_TOKEN`, else `<data_dir>/admin-token`).
    #[arg(long)]
    pub(super) token: Option<String>,
    /// The data directory of `shep serve`.
    #[arg(long, default_value = ".shep")]
    pub(super) data_dir: PathBuf,
}

impl AdminArgs {
    fn token(&self) -> anyhow::Result<String> {
        if let Some(token) = &self.token {
            return Ok(token.clone());
        }
        if let Ok(token) = std::env::var("SHEP_ADMIN_TOKEN")
            && !token.is_empty()
        {
            return Ok(token);
        }
        let path = DataDir(self.data_dir.clone()).admin_token();
        Ok(std::fs::read_to_string(&path)
            .with_context(|| {
                format!(
                    "reading the admin token `{}` (pass --token, or run from the directory of `shep serve`)",
                    path.display()
                )
            })?
            .trim()
            .to_owned())
    }

    /// The request with the operator's bearer token.
    pub(super) fn authorized<T>(&self, message: T) -> anyhow::Result<Request<T>> {
        let mut request = Request::new(message);
        request.metadata_mut().insert(
            "authorization",
            format!("Bearer {}", self.token()?)
                .parse()
                .context("the admin token is not a valid header value")?,
        );
        Ok(request)
    }
}

/// Runs `shep dead-letters`: lists them, or requeues one.
pub(super) async fn dead_letters(
    requeue: Option<String>,
    provider: Option<String>,
    admin: AdminArgs,
) -> anyhow::Result<()> {
    use shep_proto::admin::v1::admin_client::AdminClient;
    use shep_proto::admin::v1::{ListDeadLettersRequest, RequeueDeadLetterRequest};
    let mut client = AdminClient::new(connect_as(&admin.gateway, &admin.data_dir, None).await?);
    if let Some(message_id) = requeue {
        let letter = client
            .requeue_dead_letter(admin.authorized(RequeueDeadLetterRequest { message_id })?)
            .await
            .map_err(describe)?
            .into_inner();
        println!(
            "requeued {} ({}) for `{}`",
            letter.message_id, letter.service_id, letter.provider_id
        );
        return Ok(());
    }
    let letters = client
        .list_dead_letters(admin.authorized(ListDeadLettersRequest {
            provider_id: provider.unwrap_or_default(),
        })?)
        .await
        .map_err(describe)?
        .into_inner()
        .dead_letters;
    println!("{} dead letter(s)", letters.len());
    for letter in letters {
        println!(
            "  {} {} -> {}: {}",
            letter.message_id, letter.service_id, letter.provider_id, letter.reason
        );
    }
    Ok(())
}
