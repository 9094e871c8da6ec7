//! Accepted TCP connections that a `drop_connection` fault can cut: each is
//! wrapped so that, once killed, its next read or write fails and the server
//! closes the socket, as a crashed peer or a middlebox would.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use atomic_waker::AtomicWaker;
use dashmap::DashMap;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_stream::{Stream, StreamExt as _};
use tonic::transport::server::{Connected, TcpConnectInfo};

#[derive(Debug, Default)]
struct Switch {
    killed: AtomicBool,
    read: AtomicWaker,
    write: AtomicWaker,
}

impl Switch {
    fn kill(&self) {
        self.killed.store(true, Ordering::Release);
        self.read.wake();
        self.write.wake();
    }
}

/// The live connections by peer address.
#[derive(Debug, Default, Clone)]
pub struct Connections {
    live: Arc<DashMap<SocketAddr, Arc<Switch>>>,
}

impl Connections {
    /// Wraps a stream of accepted connections so they can be killed.
    pub fn track<S>(
        &self,
        incoming: S,
    ) -> impl Stream<Item = Result<Killable, io::Error>> + Send + 'static
    where
        S: Stream<Item = Result<TcpStream, io::Error>> + Send + 'static,
    {
        let live = self.live.clone();
        incoming.map(move |accepted| {
            let stream = accepted?;
            let switch = Arc::new(Switch::default());
            if let Ok(peer) = stream.peer_addr() {
                live.insert(peer, switch.clone());
            }
            Ok(Killable {
                stream,
                switch,
                live: live.clone(),
            })
        })
    }

    /// Cuts the connection from `peer`; whether there was one.
    pub fn kill(&self, peer: SocketAddr) -> bool {
        match self.live.remove(&peer) {
            Some((_, switch)) => {
                switch.kill();
                true
            }
            None => false,
        }
    }
}

/// An accepted connection that [`Connections::kill`] can cut.
#[derive(Debug)]
pub struct Killable {
    stream: TcpStream,
    switch: Arc<Switch>,
    live: Arc<DashMap<SocketAddr, Arc<Switch>>>,
}

impl Drop for Killable {
    fn drop(&mut self) {
        if let Ok(peer) = self.stream.peer_addr() {
            self.live
                .remove_if(&peer, |_, switch| Arc::ptr_eq(switch, &self.switch));
        }
    }
}

fn reset() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionReset,
        "connection dropped by a fault",
    )
}

impl AsyncRead for Killable {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.switch.read.register(cx.waker());
        if self.switch.killed.load(Ordering::Acquire) {
            return Poll::Ready(Err(reset()));
        }
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Killable {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.switch.write.register(cx.waker());
        if self.switch.killed.load(Ordering::Acquire) {
            return Poll::Ready(Err(reset()));
        }
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.switch.write.register(cx.waker());
        if self.switch.killed.load(Ordering::Acquire) {
            return Poll::Ready(Err(reset()));
        }
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

impl Connected for Killable {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.stream.connect_info()
    }
}
