//! `shep demo`: the whole simulator in one process on a loopback port, and a
//! signed application narrated from the portal to the provider and back.

use std::time::Duration;

use anyhow::Context as _;
use shep_nuc::ca::{CertificateAuthority, IdentitySpec, Signer};
use shep_proto::envelope::v1::{Attachment, Channel};
use shep_proto::gateway::v1::gateway_client::GatewayClient;
use shep_proto::gateway::v1::{HistoryRequest, WatchRequest, watch_request};
use shep_proto::registry::v1::lookup_response::Record;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tonic_types::StatusExt;

use shep_gateway::config::GatewayConfig;
use shep_gateway::lifecycle::is_terminal;
use shep_gateway::server::{DEMO_APPLICANT_IIN, DataDir};

use super::print::{print_application, print_event, print_person};
use super::{connect_as, describe};
use crate::client::{Participant, iin};
use crate::script::{ProviderRule, run_provider};

const SERVICE: &str = "guardianship-certificate-esil";
const PROVIDER: &str = "arm-rshep-sko-esil-edu";

fn step(number: u32, text: &str) {
    println!("\n{number}. {text}");
}

fn signer(dir: &DataDir, name: &str) -> anyhow::Result<Signer> {
    let (key, cert) = dir.identity(name);
    Ok(Signer::from_files(&key, &cert)?)
}

/// Runs the demo.
pub(super) async fn run() -> anyhow::Result<()> {
    let data_dir = std::env::temp_dir().join(format!("shep-demo-{}", std::process::id()));
    let result = narrate(&data_dir).await;
    let _ = std::fs::remove_dir_all(&data_dir);
    result
}

async fn narrate(data_dir: &std::path::Path) -> anyhow::Result<()> {
    println!(
        "shep-sim demo: a signed application travels ПЭП -> ШЭП -> АРМ РШЭП -> back to the applicant"
    );

    let config = GatewayConfig {
        data_dir: data_dir.to_owned(),
        ..GatewayConfig::default()
    };
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let gateway = shep_gateway::server::start_on(listener, config).await?;
    let dir = gateway.data_dir.clone();
    let routes = gateway.engine.routes();
    step(
        1,
        &format!(
            "The gateway listens on {} with the {} routing table ({} services), a test НУЦ and the registries (ГБД ФЛ, ГБД ЮЛ, ЕНИС) in-process.",
            gateway.url(),
            routes.source(),
            routes.routes().len()
        ),
    );
    let route = routes
        .route(SERVICE)
        .context("the demo service is in the default table")?;
    println!(
        "   Service `{SERVICE}`: «{}», deadline {}.",
        route.name_ru,
        route
            .deadline
            .map(|deadline| deadline.to_string())
            .unwrap_or_default()
    );

    let applicant = Participant::new("pep", Channel::Portal, signer(&dir, "applicant")?);
    let provider = Participant::new(
        PROVIDER,
        Channel::ProviderDesk,
        signer(&dir, &format!("provider-{PROVIDER}"))?,
    );
    step(
        2,
        &format!(
            "The test НУЦ issued certificates: the applicant (SERIALNUMBER=IIN{DEMO_APPLICANT_IIN}) and an employee of `{PROVIDER}` (OU=BIN…)."
        ),
    );

    step(
        3,
        &format!(
            "The provider system `{PROVIDER}` subscribes to its request stream (Provider.Subscribe)."
        ),
    );
    let (steps_tx, mut steps) = mpsc::unbounded_channel();
    let provider_channel = connect_as(&gateway.url(), &dir.0, Some(PROVIDER)).await?;
    let provider_task = tokio::spawn(run_provider(
        provider_channel,
        provider,
        ProviderRule::Complete,
        Duration::from_millis(300),
        Some(steps_tx),
    ));

    let mut client = GatewayClient::new(connect_as(&gateway.url(), &dir.0, Some("pep")).await?);
    step(
        4,
        "ПЭП looks the applicant up in ГБД ФЛ (Gateway.Call, service GbdflInfoByIin_v1):",
    );
    let lookup =
        applicant.seal(&applicant.request("GbdflInfoByIin_v1", iin(DEMO_APPLICANT_IIN)))?;
    let response = client.call(lookup).await.map_err(describe)?.into_inner();
    if let Some(Record::Person(person)) = response.lookup.and_then(|lookup| lookup.record) {
        print_person(&person);
    }

    step(
        5,
        "The applicant watches their status events (Gateway.Watch), signs the application with their ЭЦП, and ПЭП submits it (Gateway.Submit).",
    );
    let mut events = client
        .watch(WatchRequest {
            target: Some(watch_request::Target::Subject(iin(DEMO_APPLICANT_IIN))),
            after_sequence: 0,
        })
        .await
        .map_err(describe)?
        .into_inner();
    let body = applicant.application(
        SERVICE,
        iin(DEMO_APPLICANT_IIN),
        r#"{"child_iin":"061211600012","kind":"опека"}"#,
        vec![Attachment {
            name: "zayavlenie.pdf".to_owned(),
            content_type: "application/pdf".to_owned(),
            data: b"%PDF-1.4 demo".to_vec(),
        }],
    );
    let receipt = client
        .submit(applicant.seal(&body)?)
        .await
        .map_err(describe)?
        .into_inner();
    println!(
        "   receipt: message_id {}, routed to `{}` by the applicant's region (КАТО 59…)",
        receipt.message_id, receipt.provider_id
    );

    step(
        6,
        "Events as they happen (gateway status events and provider steps):",
    );
    let deadline = tokio::time::sleep(Duration::from_secs(30));
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            event = events.next() => {
                let Some(event) = event else { break };
                let event = event.map_err(describe)?;
                print_event(&event);
                if is_terminal(event.status()) {
                    break;
                }
            }
            Some(provider_step) = steps.recv() => {
                println!("       provider: {}", provider_step.what);
            }
            () = &mut deadline => anyhow::bail!("the application did not complete within 30 s"),
        }
    }

    step(
        7,
        "The applicant's «История получения услуг» (Gateway.History):",
    );
    let history = client
        .history(HistoryRequest {
            subject: Some(iin(DEMO_APPLICANT_IIN)),
            page_size: 10,
            page_token: String::new(),
        })
        .await
        .map_err(describe)?
        .into_inner();
    for application in &history.applications {
        let mut summary = application.clone();
        summary.events.clear();
        print_application(&summary);
    }

    step(
        8,
        "Bad envelopes are refused with a stable reason, and the gateway keeps serving:",
    );
    // Sign one form, then swap in another under the same signature.
    let signed = applicant.request(SERVICE, iin(DEMO_APPLICANT_IIN));
    let mut tampered = applicant.seal(&signed)?;
    let mut changed = signed.clone();
    changed.service_id = "guardianship-certificate-karaganda".to_owned();
    tampered.body = prost::Message::encode_to_vec(&changed);
    show_refusal(&mut client, "a body changed after signing", tampered).await;

    let ca = CertificateAuthority::load(&dir.nuc())?;
    let stranger = ca.issue(&IdentitySpec::individual(
        "920704404563",
        "АХМЕТОВА АЙГЕРИМ",
    ))?;
    let impostor = Participant::new("pep", Channel::Portal, stranger.signer()?);
    let envelope = impostor.seal(&impostor.request(SERVICE, iin(DEMO_APPLICANT_IIN)))?;
    show_refusal(
        &mut client,
        "signed with someone else's certificate",
        envelope,
    )
    .await;

    let envelope =
        applicant.seal(&applicant.request("no-such-service", iin(DEMO_APPLICANT_IIN)))?;
    show_refusal(&mut client, "an unknown service", envelope).await;

    provider_task.abort();
    gateway.shutdown().await?;
    println!("\nDone. Run `shep serve` to keep a gateway running; see README.md for a tour.");
    Ok(())
}

async fn show_refusal(
    client: &mut GatewayClient<tonic::transport::Channel>,
    what: &str,
    envelope: shep_proto::envelope::v1::SignedEnvelope,
) {
    match client.submit(envelope).await {
        Ok(_) => println!("   {what}: unexpectedly accepted"),
        Err(status) => {
            let reason = status
                .get_details_error_info()
                .map(|info| info.reason)
                .unwrap_or_default();
            println!(
                "   {what}: {:?} {reason} — {}",
                status.code(),
                status.message()
            );
        }
    }
}
