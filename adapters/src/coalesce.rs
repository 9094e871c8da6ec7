//! A socket wrapper that sends what h2 writes once per turn of the
//! connection's task, instead of once per message.
//!
//! h2 keeps a DATA frame of 256 bytes or more out of its write buffer and
//! must flush it before it accepts the next frame, so a connection carrying
//! many streams of signed envelopes (1.2 KiB and more) or lookup answers
//! makes one `writev`, one TCP segment and one wake-up of the peer per
//! message. h2load and nginx (nghttp2) write once per turn of their event
//! loop instead; the profile of the lean bench client showed twice h2load's
//! CPU per request, mostly for that difference (BENCHMARKS.md). The bench
//! client, the gateway's accepted connections, a registry process's accepted
//! connections and the remote registry adapter all use it.
//!
//! Here a write is copied into a buffer, and a flush only asks for the
//! connection's task to be polled again. The buffer goes out when the task
//! next reads: h2 reads on every turn before it writes the frames queued
//! meanwhile, so the requests that workers queued during one turn leave in
//! one syscall. The cost is one more poll of the connection per batch (about
//! a microsecond at concurrency 1).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Flushes asked for without a read in between before the buffer is sent
/// anyway: a bound on the batch, and a guard against a connection that
/// stops reading.
const FLUSHES_BEFORE_SENDING: u32 = 64;
/// Buffered bytes before a write sends the buffer first.
const HIGH_WATER: usize = 256 * 1024;

/// Writes to `io` in batches; see the module documentation.
#[derive(Debug)]
pub struct Coalesce<T> {
    io: T,
    buffer: Vec<u8>,
    /// How much of `buffer` is already sent.
    sent: usize,
    /// Flushes deferred since the last read.
    deferred: u32,
    /// Whether flushes are deferred at all (see [`Coalesce::direct`]).
    defer: bool,
}

impl<T> Coalesce<T> {
    /// Wraps `io`.
    pub fn new(io: T) -> Self {
        Self {
            io,
            buffer: Vec::with_capacity(16 * 1024),
            sent: 0,
            deferred: 0,
            defer: true,
        }
    }

    /// Wraps `io` without batching (writes and flushes go straight through):
    /// for a TLS listener, whose handshake writes an alert and drops the
    /// socket without reading again, so a batched alert would be lost
    /// (rustls batches its records itself).
    pub fn direct(io: T) -> Self {
        Self {
            defer: false,
            ..Self::new(io)
        }
    }

    fn pending(&self) -> usize {
        self.buffer.len() - self.sent
    }
}

impl<T: AsyncWrite + Unpin> Coalesce<T> {
    /// Sends the whole buffer; `Ready(Ok)` once it is empty.
    fn poll_send(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.sent < self.buffer.len() {
            let written = ready!(Pin::new(&mut self.io).poll_write(cx, &self.buffer[self.sent..]))?;
            if written == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.sent += written;
        }
        self.buffer.clear();
        self.sent = 0;
        Pin::new(&mut self.io).poll_flush(cx)
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncRead for Coalesce<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.deferred = 0;
        // What the last turn queued goes out before this turn reads. A full
        // socket leaves it buffered, with the task woken when it drains.
        if let Poll::Ready(Err(error)) = this.poll_send(cx) {
            return Poll::Ready(Err(error));
        }
        Pin::new(&mut this.io).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Coalesce<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if !this.defer {
            return Pin::new(&mut this.io).poll_write(cx, buf);
        }
        if this.pending() >= HIGH_WATER {
            ready!(this.poll_send(cx))?;
        }
        this.buffer.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if !this.defer {
            return Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        }
        if this.pending() >= HIGH_WATER {
            ready!(this.poll_send(cx))?;
        }
        let mut total = 0;
        for slice in bufs {
            this.buffer.extend_from_slice(slice);
            total += slice.len();
        }
        Poll::Ready(Ok(total))
    }

    fn is_write_vectored(&self) -> bool {
        // Copying costs the same either way; saying so lets h2 hand over its
        // frame head and payload in one call.
        self.defer || self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.pending() == 0 {
            return Poll::Ready(Ok(()));
        }
        this.deferred += 1;
        if !this.defer || this.deferred > FLUSHES_BEFORE_SENDING {
            return this.poll_send(cx);
        }
        // Poll the connection again soon: its next read sends the batch.
        cx.waker().wake_by_ref();
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_send(cx))?;
        Pin::new(&mut this.io).poll_shutdown(cx)
    }
}

impl<T: tonic::transport::server::Connected> tonic::transport::server::Connected for Coalesce<T> {
    type ConnectInfo = T::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.io.connect_info()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn writes_wait_for_the_next_read_then_leave_together() {
        let (near, mut far) = tokio::io::duplex(64 * 1024);
        let mut near = Coalesce::new(near);
        near.write_all(b"one ").await.unwrap();
        near.write_all(b"two").await.unwrap();
        near.flush().await.unwrap();
        let mut buf = [0u8; 16];
        // Nothing went out yet: the flush only rescheduled.
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(50), far.read(&mut buf))
                .await
                .is_err()
        );
        // A read on the near side sends the batch first.
        far.write_all(b"x").await.unwrap();
        let mut got = [0u8; 1];
        near.read_exact(&mut got).await.unwrap();
        let mut sent = [0u8; 7];
        far.read_exact(&mut sent).await.unwrap();
        assert_eq!(&sent, b"one two");
    }

    #[tokio::test]
    async fn enough_flushes_without_a_read_send_anyway_and_shutdown_sends_the_rest() {
        let (near, mut far) = tokio::io::duplex(64 * 1024);
        let mut near = Coalesce::new(near);
        near.write_all(b"a").await.unwrap();
        for _ in 0..=FLUSHES_BEFORE_SENDING {
            near.flush().await.unwrap();
        }
        let mut one = [0u8; 1];
        far.read_exact(&mut one).await.unwrap();
        assert_eq!(&one, b"a");
        near.write_all(b"bc").await.unwrap();
        near.shutdown().await.unwrap();
        let mut rest = Vec::new();
        far.read_to_end(&mut rest).await.unwrap();
        assert_eq!(rest, b"bc");
    }
}
