//! Participant authentication, end to end, on the gateway's default
//! configuration: a TLS listener whose certificate the test НУЦ issued,
//! systems proven by their transport certificates (mTLS) or, where the
//! routing table gives one, a password; status queries answered only to a
//! consumer system (recorded in the access audit), the provider an
//! application was routed to, or the applicant with their own
//! authentication certificate.

use std::process::{Child, Command, Stdio};

use shep_proto::admin::v1::admin_client::AdminClient;
use shep_proto::gateway::v1::gateway_client::GatewayClient;
use shep_proto::gateway::v1::{GetStatusRequest, HistoryRequest, WatchRequest, watch_request};
use shep_proto::provider::v1::provider_client::ProviderClient;
use shep_proto::provider::v1::{Ack, GetMessagesRequest, SubscribeRequest, subscribe_request};
use shep_proto::registry::v1::AccessLogRequest;
use shep_tests::*;
use tonic::Code;
use tonic::transport::Channel as GrpcChannel;

/// A `shep` process killed when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn history_request(iin_text: &str) -> HistoryRequest {
    HistoryRequest {
        subject: Some(iin(iin_text)),
        page_size: 10,
        page_token: String::new(),
    }
}

fn opening(provider: &str) -> SubscribeRequest {
    SubscribeRequest {
        kind: Some(subscribe_request::Kind::Hello(hello(provider, 0))),
    }
}

/// The first answer of a Subscribe stream opened with `hello` on `channel`.
async fn subscribe(channel: GrpcChannel, provider: &str) -> Result<(), tonic::Status> {
    // Kept open (not ended after the Hello) until the answer is read.
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    tx.send(opening(provider)).await.unwrap();
    let outbound = tokio_stream::wrappers::ReceiverStream::new(rx);
    let mut stream = ProviderClient::new(channel)
        .subscribe(outbound)
        .await?
        .into_inner();
    let answer = match next_within(&mut stream, PATIENCE).await {
        Next::Item(_welcome) => Ok(()),
        Next::Failed(status) => Err(status),
        other => panic!("no answer to the Hello: {other:?}"),
    };
    drop(tx);
    answer
}

#[tokio::test]
async fn shep_send_and_shep_provider_work_out_of_the_box_over_mutual_tls() {
    let gw = TestGateway::builder().authenticated().start().await;
    let url = gw.url();
    assert!(url.starts_with("https://"), "{url}");
    let data = gw.data_dir().0.to_str().unwrap().to_owned();

    let provider = Running(
        Command::new(shep_binary())
            .args(["provider", "--id", ESIL_PROVIDER, "--gateway", &url])
            .args(["--data-dir", &data, "--delay-ms", "0"])
            .env("SHEP_LOG", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting `shep provider`"),
    );
    let sent = run_shep(&[
        "send",
        "--service",
        ESIL_SERVICE,
        "--subject",
        APPLICANT_IIN,
        "--watch",
        "--gateway",
        &url,
        "--data-dir",
        &data,
    ])
    .await;
    let stdout = sent.ok();
    assert!(stdout.contains("COMPLETED"), "{stdout}");
    drop(provider);

    let history = run_shep(&[
        "history",
        APPLICANT_IIN,
        "--gateway",
        &url,
        "--data-dir",
        &data,
    ])
    .await;
    assert!(history.ok().contains("1 application"), "{}", history.stdout);

    // `shep history` read as `pep`: the access audit says so.
    let mut admin = AdminClient::new(gw.channel());
    let log = admin
        .access_log(gw.authorized(AccessLogRequest {
            registry: "applications".to_owned(),
            subject: APPLICANT_IIN.to_owned(),
            ..AccessLogRequest::default()
        }))
        .await
        .expect("the access log")
        .into_inner();
    let readers: Vec<(String, String)> = log
        .records
        .iter()
        .filter_map(|record| record.context.as_ref())
        .map(|context| (context.requester_system.clone(), context.purpose.clone()))
        .collect();
    assert!(
        readers.contains(&("pep".to_owned(), "Gateway.History".to_owned())),
        "{readers:?}"
    );
}

#[tokio::test]
async fn a_caller_without_a_credential_is_refused_everywhere_with_not_authenticated() {
    let gw = TestGateway::builder().authenticated().start().await;
    // The harness's own channel: TLS, trusting the НУЦ, no certificate.
    let anonymous = gw.channel();

    let refused = subscribe(anonymous.clone(), ESIL_PROVIDER)
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated);
    assert_eq!(reason(&refused), "NOT_AUTHENTICATED");

    let refused = GatewayClient::new(anonymous.clone())
        .history(history_request(APPLICANT_IIN))
        .await
        .unwrap_err();
    assert_eq!(reason(&refused), "NOT_AUTHENTICATED");

    let applicant = gw.applicant();
    let envelope = applicant
        .seal(&applicant.request(ESIL_SERVICE, iin(APPLICANT_IIN)))
        .unwrap();
    let refused = GatewayClient::new(anonymous.clone())
        .submit(envelope)
        .await
        .unwrap_err();
    assert_eq!(reason(&refused), "NOT_AUTHENTICATED");

    let refused = ProviderClient::new(anonymous)
        .get_messages(GetMessagesRequest {
            provider_id: ESIL_PROVIDER.to_owned(),
            ..GetMessagesRequest::default()
        })
        .await
        .unwrap_err();
    assert_eq!(reason(&refused), "NOT_AUTHENTICATED");

    // Health stays open to anyone: probes carry no certificate.
    assert!(gw.engine().storage_state().1);
}

#[tokio::test]
async fn a_system_acts_only_as_itself() {
    let gw = TestGateway::builder().authenticated().start().await;
    let pep = gw.channel_as("pep").await;

    // The portal cannot take a provider's deliveries, pull or acknowledge them.
    let refused = subscribe(pep.clone(), ESIL_PROVIDER).await.unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    assert_eq!(reason(&refused), "ACCESS_DENIED");
    let refused = ProviderClient::new(pep.clone())
        .acknowledge(Ack {
            provider_id: ESIL_PROVIDER.to_owned(),
            ..Ack::default()
        })
        .await
        .unwrap_err();
    assert_eq!(reason(&refused), "ACCESS_DENIED");

    // Another provider cannot either.
    let other = gw.channel_as("arm-rshep-karaganda-edu").await;
    let refused = subscribe(other, ESIL_PROVIDER).await.unwrap_err();
    assert_eq!(reason(&refused), "ACCESS_DENIED");
    assert_eq!(
        error_metadata(&refused, "authenticated").as_deref(),
        Some("system `arm-rshep-karaganda-edu`")
    );

    // An application sent as ИС ЦОН over the portal's connection is refused,
    // although its signature is the ЦОН operator's.
    let operator = gw.operator();
    let envelope = operator
        .seal(&operator.request(ESIL_SERVICE, iin(APPLICANT_IIN)))
        .unwrap();
    let refused = GatewayClient::new(pep.clone())
        .submit(envelope.clone())
        .await
        .unwrap_err();
    assert_eq!(reason(&refused), "ACCESS_DENIED");
    // Over ИС ЦОН's own connection it is accepted.
    let receipt = GatewayClient::new(gw.channel_as("is-con").await)
        .submit(envelope)
        .await
        .expect("ИС ЦОН sends as itself")
        .into_inner();

    // The provider it was routed to subscribes with its own certificate and
    // receives it.
    subscribe(gw.channel_as(ESIL_PROVIDER).await, ESIL_PROVIDER)
        .await
        .expect("the provider subscribes to its own queue");
    let pulled = ProviderClient::new(gw.channel_as(ESIL_PROVIDER).await)
        .get_messages(GetMessagesRequest {
            provider_id: ESIL_PROVIDER.to_owned(),
            ..GetMessagesRequest::default()
        })
        .await
        .expect("the provider pulls from its own queue")
        .into_inner();
    assert!(
        pulled
            .messages
            .iter()
            .all(|m| m.message_id == receipt.message_id),
        "only the one application is queued"
    );
}

#[tokio::test]
async fn an_applicants_applications_are_read_by_consumers_their_provider_and_themself() {
    let gw = TestGateway::builder().authenticated().start().await;
    let applicant = gw.applicant();
    let envelope = applicant
        .seal(&applicant.request(ESIL_SERVICE, iin(APPLICANT_IIN)))
        .unwrap();
    let receipt = GatewayClient::new(gw.channel_as("pep").await)
        .submit(envelope)
        .await
        .expect("the portal submits")
        .into_inner();
    let status_of = |channel: GrpcChannel| {
        let message_id = receipt.message_id.clone();
        async move {
            GatewayClient::new(channel)
                .get_status(GetStatusRequest { message_id })
                .await
        }
    };

    // ИС ЦОН, a consumer system, reads it (for the applicant in front of it).
    let is_con = gw.channel_as("is-con").await;
    status_of(is_con.clone()).await.expect("a consumer reads");
    GatewayClient::new(is_con)
        .history(history_request(APPLICANT_IIN))
        .await
        .expect("a consumer reads the history");
    // The provider it was routed to reads it; another provider does not, nor
    // may a provider list an applicant's history.
    status_of(gw.channel_as(ESIL_PROVIDER).await)
        .await
        .expect("its provider reads it");
    let other = gw.channel_as("arm-rshep-karaganda-edu").await;
    let refused = status_of(other.clone()).await.unwrap_err();
    assert_eq!(reason(&refused), "ACCESS_DENIED");
    let refused = GatewayClient::new(gw.channel_as(ESIL_PROVIDER).await)
        .history(history_request(APPLICANT_IIN))
        .await
        .unwrap_err();
    assert_eq!(reason(&refused), "ACCESS_DENIED");

    // The applicant, by their authentication certificate, reads their own
    // history and watches their application; not someone else's.
    let person = gw.channel_as_identity("applicant-auth").await;
    let own = GatewayClient::new(person.clone())
        .history(history_request(APPLICANT_IIN))
        .await
        .expect("the applicant reads their own history")
        .into_inner();
    assert_eq!(own.applications.len(), 1);
    let mut watch = GatewayClient::new(person.clone())
        .watch(WatchRequest {
            target: Some(watch_request::Target::MessageId(receipt.message_id.clone())),
            after_sequence: 0,
        })
        .await
        .expect("the applicant watches their application")
        .into_inner();
    let first = next_item(&mut watch).await;
    assert_eq!(first.message_id, receipt.message_id);
    let refused = GatewayClient::new(person)
        .history(history_request("061211600012"))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    assert_eq!(reason(&refused), "ACCESS_DENIED");

    // A signing certificate is not a TLS client certificate: the handshake
    // itself refuses it (its key usage is not clientAuth).
    let (key, cert) = gw.data_dir().identity("applicant");
    let refused = connect_tls(&gw.url(), presenting(gw.data_dir(), &key, &cert)).await;
    if let Ok(channel) = refused {
        let answer = GatewayClient::new(channel)
            .history(history_request(APPLICANT_IIN))
            .await;
        assert!(
            answer.is_err(),
            "a signing certificate authenticated a connection"
        );
    }
}

#[tokio::test]
async fn a_system_with_a_password_may_use_basic_authentication_instead() {
    let table = shep_gateway::routes::DEFAULT_ROUTES.replacen(
        "id = \"is-con\"\n",
        "id = \"is-con\"\npassword = \"con-secret\"\n",
        1,
    );
    let gw = TestGateway::builder()
        .authenticated()
        .routes_toml(&table)
        .start()
        .await;
    let history = |authorization: &str| {
        let mut request = tonic::Request::new(history_request(APPLICANT_IIN));
        request
            .metadata_mut()
            .insert("authorization", authorization.parse().unwrap());
        let channel = gw.channel();
        async move { GatewayClient::new(channel).history(request).await }
    };
    use base64::Engine as _;
    let basic = |credential: &str| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(credential)
        )
    };
    history(&basic("is-con:con-secret"))
        .await
        .expect("senderId + password");
    let refused = history(&basic("is-con:wrong")).await.unwrap_err();
    assert_eq!(reason(&refused), "NOT_AUTHENTICATED");
    // `pep` has no password: only its certificate proves it.
    let refused = history(&basic("pep:con-secret")).await.unwrap_err();
    assert_eq!(reason(&refused), "NOT_AUTHENTICATED");
    let refused = history("Basic !!!").await.unwrap_err();
    assert_eq!(reason(&refused), "NOT_AUTHENTICATED");
}

#[tokio::test]
async fn with_authentication_off_the_gateway_says_so_and_speaks_plaintext() {
    // The harness's default, as `shep serve --insecure`.
    let gw = TestGateway::start().await;
    assert!(gw.url().starts_with("http://"));
    GatewayClient::new(gw.channel())
        .history(history_request(APPLICANT_IIN))
        .await
        .expect("anyone reads with authentication off");
}
