//! Serving the routes on the listener: plain, or TLS terminated here rather
//! than by tonic, whose ALPN offers h2 only (SOAP clients and the admin
//! JSON's ask for HTTP/1.1 on the same port).

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_rustls::server::TlsStream;
use tokio_rustls::{TlsAcceptor, rustls};
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt as _};

use crate::engine::Engine;

/// Serves `routes` on `listener` until `stop` resolves.
pub(super) fn serve(
    engine: &Engine,
    routes: axum::Router,
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    stop: impl Future<Output = ()> + Send + 'static,
) -> JoinHandle<Result<(), tonic::transport::Error>> {
    let server = tonic::transport::Server::builder()
        .accept_http1(true)
        .add_routes(routes.into());
    // Nagle's algorithm would hold small unary answers back for ~40 ms.
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    // Tracked, so a `drop_connection` fault can cut a caller's connection;
    // coalesced, one write per turn of each connection rather than one per
    // answer (coalesce.rs).
    let coalesce = if tls.is_none() {
        crate::coalesce::Coalesce::new
    } else {
        crate::coalesce::Coalesce::direct
    };
    let incoming = engine
        .toolkit()
        .connections
        .track(incoming)
        .map(move |accepted| accepted.map(coalesce));
    match tls {
        Some(tls) => tokio::spawn(server.serve_with_incoming_shutdown(accept(tls, incoming), stop)),
        None => tokio::spawn(server.serve_with_incoming_shutdown(incoming, stop)),
    }
}

/// A handshake that takes longer than this is dropped.
const HANDSHAKE: Duration = Duration::from_secs(10);

/// The accepted connections of `incoming` once their TLS handshakes finish,
/// each handshake on its own task so a slow client holds back no other.
fn accept<S, IO>(
    config: Arc<rustls::ServerConfig>,
    incoming: S,
) -> ReceiverStream<std::io::Result<TlsStream<IO>>>
where
    S: Stream<Item = std::io::Result<IO>> + Send + 'static,
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let acceptor = TlsAcceptor::from(config);
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move {
        let mut incoming = std::pin::pin!(incoming);
        while let Some(accepted) = incoming.next().await {
            let stream = match accepted {
                Ok(stream) => stream,
                Err(error) => {
                    tracing::debug!(%error, "accepting a connection");
                    continue;
                }
            };
            let acceptor = acceptor.clone();
            let tx = tx.clone();
            tokio::spawn(async move {
                match tokio::time::timeout(HANDSHAKE, acceptor.accept(stream)).await {
                    Ok(Ok(tls)) => {
                        let _ = tx.send(Ok(tls)).await;
                    }
                    Ok(Err(error)) => tracing::debug!(%error, "TLS handshake failed"),
                    Err(_) => tracing::debug!("TLS handshake timed out"),
                }
            });
        }
    });
    ReceiverStream::new(rx)
}
