//! Socket reads and writes that hold no buffer while a connection is idle and never wait
//! outside the connection's `select!`.

use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Bytes one read takes at most (a buffer on the stack of the poll, not in the connection).
const READ_STACK: usize = 16 * 1024;

/// Reads what is there and appends it to `buf`, through a buffer on the stack: an idle
/// connection holds no read buffer, only the bytes of an incomplete frame. Cancel-safe.
/// A plain future over the two references (not an async fn, which would hold them twice).
pub(super) fn read_into<'a, R: AsyncRead + Unpin>(
    rd: &'a mut R,
    buf: &'a mut BytesMut,
) -> impl Future<Output = std::io::Result<usize>> + 'a {
    std::future::poll_fn(move |cx| poll_read_into(Pin::new(&mut *rd), cx, buf))
}

fn poll_read_into<R: AsyncRead>(
    rd: Pin<&mut R>,
    cx: &mut Context<'_>,
    buf: &mut BytesMut,
) -> Poll<std::io::Result<usize>> {
    let mut chunk = [MaybeUninit::<u8>::uninit(); READ_STACK];
    let mut rb = ReadBuf::uninit(&mut chunk);
    ready!(rd.poll_read(cx, &mut rb))?;
    buf.extend_from_slice(rb.filled());
    Poll::Ready(Ok(rb.filled().len()))
}

/// What [`transfer`] did.
pub(super) enum Transfer {
    /// Bytes read (0: the peer closed).
    Read(std::io::Result<usize>),
    /// Bytes written (0: a flush completed).
    Wrote(std::io::Result<usize>),
}

/// Writes `wbuf` once (a flush when it is empty) and reads into `rbuf`, each if given,
/// whichever the stream is ready for first (the write is tried first). Cancel-safe: a
/// write that did not complete wrote nothing, a flush continues where it stopped, and a
/// read that did not complete read nothing.
pub(super) fn transfer<'a, S: AsyncRead + AsyncWrite + Unpin>(
    stream: &'a mut S,
    mut rbuf: Option<&'a mut BytesMut>,
    wbuf: Option<&'a [u8]>,
) -> impl Future<Output = Transfer> + 'a {
    std::future::poll_fn(move |cx| {
        if let Some(buf) = wbuf
            && let Poll::Ready(r) = poll_write_some(Pin::new(&mut *stream), cx, buf)
        {
            return Poll::Ready(Transfer::Wrote(r));
        }
        if let Some(buf) = rbuf.as_deref_mut()
            && let Poll::Ready(r) = poll_read_into(Pin::new(&mut *stream), cx, buf)
        {
            return Poll::Ready(Transfer::Read(r));
        }
        Poll::Pending
    })
}

/// One write of `buf`, or a flush when it is empty (`Ok(0)`); a write of nothing is an
/// error.
pub(super) fn poll_write_some<W: AsyncWrite>(
    wr: Pin<&mut W>,
    cx: &mut Context<'_>,
    buf: &[u8],
) -> Poll<std::io::Result<usize>> {
    if buf.is_empty() {
        return wr.poll_flush(cx).map_ok(|()| 0);
    }
    Poll::Ready(match ready!(wr.poll_write(cx, buf))? {
        0 => Err(std::io::ErrorKind::WriteZero.into()),
        n => Ok(n),
    })
}
