//! A connection stream that turns many small writes into one `write` per flush.
//!
//! indymilter writes each milter message as three writes (length, kind, payload) and then
//! flushes. With TCP_NODELAY that is three packets per message; without it, Nagle's
//! algorithm meets delayed ACKs and stalls (the known cause of OpenDKIM being about 3×
//! slower over TCP than over a unix socket). Buffering until flush gives one write per
//! message.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpStream, UnixStream};

/// A buffered write is pushed out once it reaches this size even without a flush, so a
/// large body replacement does not sit in memory twice.
pub const WRITE_COALESCE_LIMIT: usize = 64 * 1024;

#[derive(Debug)]
pub enum Inner {
    Tcp(TcpStream),
    Unix(UnixStream),
}

#[derive(Debug)]
pub struct Stream {
    inner: Inner,
    pending: Vec<u8>,
    /// How much of `pending` has been written already.
    written: usize,
}

impl Stream {
    pub fn tcp(s: TcpStream) -> io::Result<Self> {
        s.set_nodelay(true)?;
        Ok(Self::new(Inner::Tcp(s)))
    }

    pub fn unix(s: UnixStream) -> Self {
        Self::new(Inner::Unix(s))
    }

    fn new(inner: Inner) -> Self {
        Self {
            inner,
            pending: Vec::new(),
            written: 0,
        }
    }

    /// The peer, for logs.
    pub fn peer(&self) -> String {
        match &self.inner {
            Inner::Tcp(s) => s
                .peer_addr()
                .map(|a| a.to_string())
                .unwrap_or_else(|_| "tcp:?".into()),
            Inner::Unix(_) => "unix".into(),
        }
    }

    fn inner_pin(&mut self) -> Pin<&mut (dyn AsyncWriteRead + Unpin)> {
        match &mut self.inner {
            Inner::Tcp(s) => Pin::new(s),
            Inner::Unix(s) => Pin::new(s),
        }
    }

    /// Writes out what is buffered; Ready(Ok) once all of it is written.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let inner: &mut (dyn AsyncWriteRead + Unpin) = match &mut self.inner {
            Inner::Tcp(s) => s,
            Inner::Unix(s) => s,
        };
        ready!(poll_write_out(inner, cx, &self.pending, &mut self.written))?;
        self.pending.clear();
        self.written = 0;
        Poll::Ready(Ok(()))
    }
}

/// Writes `buf[*written..]` to `w`: Ready(Ok) once all of `buf` is written, Pending when
/// `w` would block (`*written` says how far it got, for the next call), or the error.
pub(crate) fn poll_write_out<W: AsyncWrite + Unpin + ?Sized>(
    w: &mut W,
    cx: &mut Context<'_>,
    buf: &[u8],
    written: &mut usize,
) -> Poll<io::Result<()>> {
    while *written < buf.len() {
        match ready!(Pin::new(&mut *w).poll_write(cx, &buf[*written..]))? {
            0 => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
            n => *written += n,
        }
    }
    Poll::Ready(Ok(()))
}

trait AsyncWriteRead: AsyncRead + AsyncWrite {}
impl<T: AsyncRead + AsyncWrite> AsyncWriteRead for T {}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = Pin::into_inner(self);
        let filled = buf.filled().len();
        let r = this.inner_pin().poll_read(cx, buf);
        if let (Inner::Tcp(s), Poll::Ready(Ok(()))) = (&this.inner, &r)
            && buf.filled().len() > filled
        {
            quick_ack(s);
        }
        r
    }
}

/// Acknowledge at once instead of after the delayed-ACK timer (40 ms on Linux).
///
/// A milter client that writes one command in several small segments without
/// TCP_NODELAY (indymilter's own writer does: length, kind, payload) sends the next
/// segment only when the previous one is acknowledged. Many milter commands (macros)
/// get no reply that could carry the ACK, so each such command would stall 40 ms.
/// Linux clears TCP_QUICKACK again after a while, hence re-arming it after every read.
fn quick_ack(s: &TcpStream) {
    // A failure is harmless (the connection just keeps delayed ACKs), so it is ignored.
    let _ = socket2::SockRef::from(s).set_tcp_quickack(true);
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = Pin::into_inner(self);
        if this.pending.len() >= WRITE_COALESCE_LIMIT {
            ready!(this.poll_drain(cx))?;
        }
        this.pending.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        this.inner_pin().poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        this.inner_pin().poll_shutdown(cx)
    }
}
