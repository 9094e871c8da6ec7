//! A gateway on a TLS listener: the admin API lets in a client whose
//! certificate is listed in `admin.client_certificates` without the token,
//! over gRPC and over HTTP, and refuses any other client without the token as
//! it refuses a wrong token.

use std::path::Path;

use http_body_util::BodyExt as _;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use shep_gateway::admin_auth::Fingerprint;
use shep_proto::admin::v1::ListRoutesRequest;
use shep_proto::admin::v1::admin_client::AdminClient;
use shep_tests::*;
use tonic::Code;
use tonic::codegen::http;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

/// A certificate and its key, PEM.
struct Pem {
    cert: String,
    key: String,
    der: Vec<u8>,
}

impl Pem {
    fn identity(&self) -> Identity {
        Identity::from_pem(&self.cert, &self.key)
    }
}

/// A test CA that issues server and client certificates.
struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

impl TestCa {
    fn new(name: &str) -> Self {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params.self_signed(&key).unwrap();
        Self {
            pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    fn issue(&self, common_name: &str, names: &[&str], usage: ExtendedKeyUsagePurpose) -> Pem {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(
            names
                .iter()
                .map(|name| (*name).to_owned())
                .collect::<Vec<_>>(),
        )
        .unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.extended_key_usages = vec![usage];
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Pem {
            cert: cert.pem(),
            key: key.serialize_pem(),
            der: cert.der().to_vec(),
        }
    }

    fn client(&self, common_name: &str) -> Pem {
        self.issue(common_name, &[], ExtendedKeyUsagePurpose::ClientAuth)
    }
}

/// What a TLS test needs: the CA, the listed admin client and a gateway.
struct TlsSetup {
    ca: TestCa,
    admin: Pem,
    gw: TestGateway,
    _files: TempDir,
}

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// The fingerprint as `openssl x509 -fingerprint -sha256` prints it.
fn openssl_style(der: &[u8]) -> String {
    let plain = Fingerprint::of(der).to_string().to_uppercase();
    plain
        .as_bytes()
        .chunks(2)
        .map(|pair| String::from_utf8_lossy(pair).into_owned())
        .collect::<Vec<_>>()
        .join(":")
}

async fn start() -> TlsSetup {
    let files = TempDir::new("shep-tls");
    let ca = TestCa::new("shep-sim test TLS CA");
    let server = ca.issue(
        "gateway",
        &["localhost", "127.0.0.1"],
        ExtendedKeyUsagePurpose::ServerAuth,
    );
    let admin = ca.client("admin-console");
    let cert = write(files.path(), "server.pem", &server.cert);
    let key = write(files.path(), "server.key", &server.key);
    let client_ca = write(files.path(), "client-ca.pem", &ca.pem);
    let listed = openssl_style(&admin.der);
    let gw = TestGateway::builder()
        .configure(|config| {
            config.tls.cert = Some(cert);
            config.tls.key = Some(key);
            config.tls.client_ca = Some(client_ca);
            config.admin.client_certificates = vec![listed];
        })
        .client_tls(client_tls(&ca, None))
        .start()
        .await;
    assert!(gw.url().starts_with("https://"), "{}", gw.url());
    TlsSetup {
        ca,
        admin,
        gw,
        _files: files,
    }
}

fn client_tls(ca: &TestCa, identity: Option<&Pem>) -> ClientTlsConfig {
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&ca.pem))
        .domain_name("localhost");
    match identity {
        Some(pem) => tls.identity(pem.identity()),
        None => tls,
    }
}

async fn channel(setup: &TlsSetup, identity: Option<&Pem>) -> Channel {
    connect_tls(&setup.gw.url(), client_tls(&setup.ca, identity))
        .await
        .expect("a TLS connection")
}

/// `POST /admin/v1/ListRoutes` as JSON over `channel` (HTTP/2 over TLS), with
/// no token: the status and the body.
async fn list_routes_over_http(channel: Channel) -> (u16, serde_json::Value) {
    use tower::ServiceExt as _;
    let request = http::Request::builder()
        .method("POST")
        .uri("/admin/v1/ListRoutes")
        .header("content-type", "application/json")
        .body(tonic::body::Body::new(http_body_util::Full::new(
            tonic::codegen::Bytes::from_static(b"{}"),
        )))
        .unwrap();
    let response = channel.oneshot(request).await.expect("an HTTP answer");
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&body).expect("a JSON body"))
}

#[tokio::test]
async fn a_listed_client_certificate_opens_the_admin_api_without_the_token() {
    let setup = start().await;
    let admin = channel(&setup, Some(&setup.admin)).await;
    let listed = AdminClient::new(admin.clone())
        .list_routes(ListRoutesRequest {})
        .await
        .expect("a listed certificate needs no token")
        .into_inner();
    assert_eq!(listed.source, "embedded");

    let (status, body) = list_routes_over_http(admin).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["source"], "embedded");
    assert_eq!(
        body["routes"].as_array().map(Vec::len),
        Some(listed.routes.len())
    );
}

#[tokio::test]
async fn an_unlisted_certificate_or_none_is_refused_like_a_wrong_token() {
    let setup = start().await;
    let wrong_token = AdminClient::new(setup.gw.channel())
        .list_routes(with_bearer(ListRoutesRequest {}, "not-the-token"))
        .await
        .unwrap_err();
    assert_eq!(wrong_token.code(), Code::Unauthenticated);

    let other = setup.ca.client("someone-else");
    let unlisted = channel(&setup, Some(&other)).await;
    for client in [unlisted.clone(), setup.gw.channel()] {
        let refused = AdminClient::new(client)
            .list_routes(ListRoutesRequest {})
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");
        assert_eq!(reason(&refused), reason(&wrong_token));
        assert_eq!(refused.message(), wrong_token.message());
    }
    let (status, body) = list_routes_over_http(unlisted.clone()).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["reason"], reason(&wrong_token));

    // The token still works, with or without a certificate.
    for client in [unlisted, setup.gw.channel()] {
        AdminClient::new(client)
            .list_routes(with_bearer(ListRoutesRequest {}, setup.gw.admin_token()))
            .await
            .expect("the token opens the admin API over TLS too");
    }
}

#[tokio::test]
async fn a_client_certificate_from_another_ca_fails_the_handshake() {
    let setup = start().await;
    let stranger = TestCa::new("someone else's CA").client("admin-console");
    let outcome = connect_tls(&setup.gw.url(), client_tls(&setup.ca, Some(&stranger))).await;
    // In TLS 1.3 the client finishes its handshake before the server has
    // checked the client's certificate, so the server's alert may only
    // arrive with the first call.
    let refusal = match outcome {
        Err(error) => format!("{error:?}"),
        Ok(channel) => {
            let refused = AdminClient::new(channel)
                .list_routes(ListRoutesRequest {})
                .await
                .unwrap_err();
            assert_ne!(refused.code(), Code::Unauthenticated, "{refused:?}");
            format!("{refused:?}")
        }
    };
    assert!(refusal.contains("UnknownCA"), "{refusal}");
}
