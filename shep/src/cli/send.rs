//! `shep send`, `shep status` and `shep history`: a participant's calls to
//! the gateway.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::ValueEnum;
use prost::Message;
use shep_gateway::config::REGISTRY_IDS;
use shep_gateway::routes::{DEFAULT_ROUTES, RoutingTable, ServiceKind};
use shep_gateway::server::DataDir;
use shep_proto::envelope::v1::{
    Attachment, Body, Channel, PowerOfAttorneyRef, SignedEnvelope, Subject, subject,
};
use shep_proto::gateway::v1::gateway_client::GatewayClient;
use shep_proto::gateway::v1::{GetStatusRequest, HistoryRequest, WatchRequest, watch_request};
use shep_proto::registry::v1::lookup_response::Record;
use tokio_stream::StreamExt;
use tonic::transport::Channel as GrpcChannel;

use super::print::{print_application, print_attorney, print_entity, print_event, print_person};
use super::{ReaderArgs, SigningArgs, connect_as, describe};
use crate::client::{Participant, iin};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ChannelArg {
    Portal,
    ServiceCentre,
    ProviderDesk,
    System,
}

impl ChannelArg {
    fn to_proto(self) -> Channel {
        match self {
            Self::Portal => Channel::Portal,
            Self::ServiceCentre => Channel::ServiceCentre,
            Self::ProviderDesk => Channel::ProviderDesk,
            Self::System => Channel::System,
        }
    }
}

#[derive(Debug, clap::Args)]
pub(super) struct SendArgs {
    /// The service id.
    #[arg(long, required_unless_present = "envelope")]
    service: Option<String>,
    /// The applicant's IIN.
    #[arg(long, required_unless_present_any = ["envelope", "bin"], conflicts_with = "bin")]
    subject: Option<String>,
    /// The applicant's BIN (a legal entity), instead of `--subject`.
    #[arg(long)]
    bin: Option<String>,
    /// A representative's power of attorney: its ЕНИС number (the key of an
    /// ЕНИС lookup).
    #[arg(long)]
    poa: Option<String>,
    /// The representative's IIN, with `--poa`.
    #[arg(long, requires = "poa")]
    representative: Option<String>,
    /// The declared purpose of a lookup, recorded in the registry's audit.
    #[arg(long)]
    purpose: Option<String>,
    /// Sends a ready serialized SignedEnvelope (e.g. from `shep sign` or
    /// another language) instead of building one.
    #[arg(long, conflicts_with_all = ["service", "subject", "bin", "payload", "attach"])]
    envelope: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "portal")]
    channel: ChannelArg,
    /// The sending system id (default: `pep` on the portal and system
    /// channels, `is-con` at the service centre; on the provider desk, the
    /// provider system whose employee applies for the visitor, required).
    #[arg(long)]
    sender: Option<String>,
    /// A JSON file with the form data.
    #[arg(long)]
    payload: Option<PathBuf>,
    /// Files to attach.
    #[arg(long)]
    attach: Vec<PathBuf>,
    /// Marks the message as a test message.
    #[arg(long)]
    test: bool,
    /// After Submit, follow the application's status events.
    #[arg(long)]
    watch: bool,
    /// A test session (`x-shep-session`): the session's faults and fixtures
    /// apply, and the exchange is journalled under it.
    #[arg(long)]
    session: Option<String>,
    #[command(flatten)]
    signing: SigningArgs,
    /// Sends over ШЭП's SOAP front door (`/bip-sync/`, `/bip-async/`) instead
    /// of gRPC, the business data signed as XML (docs/SOAP.md).
    #[arg(long, conflicts_with_all = ["envelope", "watch"])]
    soap: bool,
    /// ШЭП's `sender/password`, with `--soap`: for a system whose
    /// `[[system]]` has a `password` (else its transport certificate proves it).
    #[arg(long, requires = "soap")]
    password: Option<String>,
    /// A routing table to learn the service's kind from (default: the embedded one).
    #[arg(long)]
    routes: Option<PathBuf>,
}

/// Runs `shep send`.
pub(super) async fn run(args: SendArgs) -> anyhow::Result<()> {
    let table_text = match &args.routes {
        Some(path) => std::fs::read_to_string(path)?,
        None => DEFAULT_ROUTES.to_owned(),
    };
    let table = RoutingTable::from_toml(&table_text, "routes", REGISTRY_IDS)?;
    let sender = match (&args.sender, args.channel) {
        (Some(sender), _) => sender.clone(),
        (None, ChannelArg::Portal | ChannelArg::System) => "pep".to_owned(),
        (None, ChannelArg::ServiceCentre) => "is-con".to_owned(),
        (None, ChannelArg::ProviderDesk) => anyhow::bail!(
            "`--channel provider-desk` sends as the provider system whose employee applies for the visitor: name it with `--sender`, e.g. `--sender is-mio-sko-tayynsha-social`"
        ),
    };
    let (envelope, service) = match &args.envelope {
        Some(path) => {
            let bytes =
                std::fs::read(path).with_context(|| format!("reading `{}`", path.display()))?;
            let envelope = SignedEnvelope::decode(bytes.as_slice()).with_context(|| {
                format!("`{}` is not a serialized SignedEnvelope", path.display())
            })?;
            let body = Body::decode(envelope.body.as_slice()).unwrap_or_default();
            (envelope, body.service_id)
        }
        None => {
            // Who signs: the applicant on the portal, the desk's employee (an
            // operator of the provider system) on the provider desk, a ЦОН
            // operator otherwise.
            let identity = match args.channel {
                ChannelArg::Portal => "applicant".to_owned(),
                ChannelArg::ProviderDesk => format!("provider-{sender}"),
                ChannelArg::ServiceCentre | ChannelArg::System => "operator".to_owned(),
            };
            let signer = args.signing.signer(&identity)?;
            let participant = Participant::new(&sender, args.channel.to_proto(), signer);
            let service = args.service.clone().unwrap_or_default();
            let subject = match (&args.subject, &args.bin) {
                (_, Some(bin)) => Subject {
                    id: Some(subject::Id::Bin(bin.clone())),
                },
                (Some(subject), None) => iin(subject),
                (None, None) => anyhow::bail!("give `--subject IIN` or `--bin BIN`"),
            };
            let form = match &args.payload {
                Some(path) => std::fs::read_to_string(path)
                    .with_context(|| format!("reading `{}`", path.display()))?,
                None => "{}".to_owned(),
            };
            let mut attachments = Vec::new();
            for path in &args.attach {
                attachments.push(Attachment {
                    name: path
                        .file_name()
                        .map(|name| name.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                    content_type: "application/octet-stream".to_owned(),
                    data: std::fs::read(path)
                        .with_context(|| format!("reading `{}`", path.display()))?,
                });
            }
            let mut body = participant.application(&service, subject, &form, attachments);
            body.test = args.test;
            body.purpose = args.purpose.clone().unwrap_or_default();
            if let Some(number) = &args.poa {
                body.power_of_attorney = Some(PowerOfAttorneyRef {
                    number: number.clone(),
                    representative_iin: args.representative.clone().unwrap_or_default(),
                });
            }
            if args.soap {
                let lookup = table
                    .route(&service)
                    .is_some_and(|route| route.kind == ServiceKind::Lookup);
                let how = super::soap::SoapSend {
                    gateway: &args.signing.gateway,
                    data_dir: &args.signing.data_dir,
                    system: &sender,
                    password: args.password.as_deref(),
                    session: args.session.as_deref(),
                    lookup,
                };
                return super::soap::send(how, &participant.signer, &body).await;
            }
            (participant.seal(&body)?, service)
        }
    };
    let kind = table
        .route(&service)
        .map(|route| route.kind)
        .unwrap_or(ServiceKind::Application);
    let channel = connect_as(&args.signing.gateway, &args.signing.data_dir, Some(&sender)).await?;
    // Results come back with their documents: the gateway bounds their size.
    let mut client = GatewayClient::new(channel.clone()).max_decoding_message_size(usize::MAX);
    let session = args
        .session
        .as_deref()
        .map(|id| {
            tonic::metadata::MetadataValue::try_from(id)
                .map_err(|_| anyhow::anyhow!("`--session` must be printable ASCII"))
        })
        .transpose()?;
    let in_session = |envelope| {
        let mut request = tonic::Request::new(envelope);
        if let Some(session) = &session {
            request
                .metadata_mut()
                .insert(shep_gateway::toolkit::SESSION_HEADER, session.clone());
        }
        request
    };
    if kind == ServiceKind::Lookup {
        let response = client
            .call(in_session(envelope))
            .await
            .map_err(describe)?
            .into_inner();
        let info = response.response_info.unwrap_or_default();
        let status = info.status.unwrap_or_default();
        println!(
            "{} {} (response {})",
            status.code, status.message, info.message_id
        );
        match response.lookup.and_then(|lookup| lookup.record) {
            Some(Record::Person(person)) => print_person(&person),
            Some(Record::LegalEntity(entity)) => print_entity(&entity),
            Some(Record::PowerOfAttorney(attorney)) => print_attorney(&attorney),
            None => {}
        }
        return Ok(());
    }
    let receipt = client
        .submit(in_session(envelope))
        .await
        .map_err(describe)?
        .into_inner();
    println!(
        "accepted: message_id {} routed to `{}`",
        receipt.message_id, receipt.provider_id
    );
    if args.watch {
        let mut events = client
            .watch(WatchRequest {
                target: Some(watch_request::Target::MessageId(receipt.message_id)),
                after_sequence: 0,
            })
            .await
            .map_err(describe)?
            .into_inner();
        while let Some(event) = events.next().await {
            let event = event.map_err(describe)?;
            print_event(&event);
            if let Some(result) = &event.result {
                check_result(result, &args.signing.data_dir, channel.clone()).await;
            }
            if shep_gateway::lifecycle::is_terminal(event.status()) {
                break;
            }
        }
    }
    Ok(())
}

/// Verifies a result document on the receiving side: its signature against
/// the НУЦ's certificates, and its signer's status at the НУЦ.
async fn check_result(
    result: &shep_proto::envelope::v1::SignedDocument,
    data_dir: &Path,
    channel: GrpcChannel,
) {
    let nuc = DataDir(data_dir.to_owned()).nuc();
    let verified = crate::client::TrustAnchors::from_nuc_dir(&nuc)
        .and_then(|anchors| anchors.verify_document(result).map_err(anyhow::Error::from));
    match verified {
        Ok(signer) => {
            let status = shep_proto::nuc::v1::nuc_client::NucClient::new(channel)
                .get_status(shep_proto::nuc::v1::StatusRequest {
                    id: Some(shep_proto::nuc::v1::status_request::Id::CertificateDer(
                        result
                            .signature
                            .as_ref()
                            .map(|signature| signature.certificate_der.clone())
                            .unwrap_or_default(),
                    )),
                    ..Default::default()
                })
                .await
                .map(|response| response.into_inner().status().as_str_name().to_owned())
                .unwrap_or_else(|status| format!("not asked: {}", status.message()));
            println!(
                "      result signature verified: {} (IIN {}, BIN {}), certificate {status}",
                signer.common_name,
                signer.iin.as_deref().unwrap_or("-"),
                signer.bin.as_deref().unwrap_or("-")
            );
        }
        Err(error) => println!("      result signature NOT verified: {error:#}"),
    }
}

/// Runs `shep status`: one application's status (`Gateway.GetStatus`).
pub(super) async fn status(message_id: String, reader: &ReaderArgs) -> anyhow::Result<()> {
    let mut client = GatewayClient::new(reader.connect().await?);
    let application = client
        .get_status(GetStatusRequest { message_id })
        .await
        .map_err(describe)?
        .into_inner();
    print_application(&application);
    Ok(())
}

/// Runs `shep history`: an applicant's «История получения услуг»
/// (`Gateway.History`).
pub(super) async fn history(subject: &str, reader: &ReaderArgs) -> anyhow::Result<()> {
    let mut client = GatewayClient::new(reader.connect().await?);
    let history = client
        .history(HistoryRequest {
            subject: Some(iin(subject)),
            page_size: 50,
            page_token: String::new(),
        })
        .await
        .map_err(describe)?
        .into_inner();
    println!(
        "История получения услуг for {subject}: {} application(s)",
        history.applications.len()
    );
    for application in &history.applications {
        print_application(application);
    }
    Ok(())
}
