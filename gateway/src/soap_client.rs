//! A SOAP client's HTTP: one POST over HTTP/1.1, plain or over TLS. The
//! gateway pushes to participants' endpoints with it, and `shep send --soap`
//! talks to the gateway's SOAP front door.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use tokio_rustls::rustls;

/// An endpoint that does not answer in this time has not taken the message.
const TIMEOUT: Duration = Duration::from_secs(10);

/// POSTs a SOAP message to `url`: `http://`, or `https://` with `tls`, with
/// `headers` besides the content type. Returns the HTTP status and the body.
pub async fn post(
    url: &str,
    body: String,
    tls: Option<Arc<rustls::ClientConfig>>,
    headers: &[(&str, &str)],
) -> Result<(u16, String), String> {
    tokio::time::timeout(TIMEOUT, post_once(url, body, tls, headers))
        .await
        .map_err(|_| format!("no answer from `{url}` in {TIMEOUT:?}"))?
}

async fn post_once(
    url: &str,
    body: String,
    tls: Option<Arc<rustls::ClientConfig>>,
    headers: &[(&str, &str)],
) -> Result<(u16, String), String> {
    let uri: http::Uri = url.parse().map_err(|error| format!("`{url}`: {error}"))?;
    let secure = match (uri.scheme_str(), &tls) {
        (Some("http"), _) => false,
        (Some("https"), Some(_)) => true,
        _ => {
            return Err(format!(
                "`{url}`: http:// or (with TLS settings) https:// only"
            ));
        }
    };
    let host = uri.host().ok_or_else(|| format!("`{url}` has no host"))?;
    let port = uri.port_u16().unwrap_or(if secure { 443 } else { 80 });
    let stream = tokio::net::TcpStream::connect((host.trim_matches(['[', ']']), port))
        .await
        .map_err(|error| format!("connecting to {host}:{port}: {error}"))?;
    let path = uri.path_and_query().map_or("/", |path| path.as_str());
    let mut request = http::Request::post(path)
        .header(http::header::HOST, format!("{host}:{port}"))
        .header(http::header::CONTENT_TYPE, "text/xml; charset=utf-8")
        .header("SOAPAction", "\"\"");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request
        .body(Full::new(Bytes::from(body)))
        .map_err(|error| error.to_string())?;
    match tls {
        Some(config) if secure => {
            let name =
                rustls::pki_types::ServerName::try_from(host.trim_matches(['[', ']']).to_owned())
                    .map_err(|error| format!("`{host}`: {error}"))?;
            let stream = tokio_rustls::TlsConnector::from(config)
                .connect(name, stream)
                .await
                .map_err(|error| format!("TLS to {host}:{port}: {error}"))?;
            exchange(stream, request).await
        }
        _ => exchange(stream, request).await,
    }
}

async fn exchange<IO>(io: IO, request: http::Request<Full<Bytes>>) -> Result<(u16, String), String>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(io))
            .await
            .map_err(|error| error.to_string())?;
    tokio::spawn(connection);
    let response = sender
        .send_request(request)
        .await
        .map_err(|error| error.to_string())?;
    let status = response.status().as_u16();
    let bytes = response
        .into_body()
        .collect()
        .await
        .map_err(|error| error.to_string())?
        .to_bytes();
    Ok((status, String::from_utf8_lossy(&bytes).into_owned()))
}
