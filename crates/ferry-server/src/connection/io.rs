//! Socket reads and writes that hold no buffer while a connection is idle and never wait
//! outside the connection's `select!`.

use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{Poll, ready};

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
    std::future::poll_fn(move |cx| {
        let mut chunk = [MaybeUninit::<u8>::uninit(); READ_STACK];
        let mut rb = ReadBuf::uninit(&mut chunk);
        ready!(Pin::new(&mut *rd).poll_read(cx, &mut rb))?;
        buf.extend_from_slice(rb.filled());
        Poll::Ready(Ok(rb.filled().len()))
    })
}

/// One write of `buf`, or a flush when it is empty. Cancel-safe: a write that did not
/// complete wrote nothing, and a flush continues where it stopped.
pub(super) fn write_some<'a, W: AsyncWrite + Unpin>(
    wr: &'a mut W,
    buf: &'a [u8],
) -> impl Future<Output = std::io::Result<usize>> + 'a {
    std::future::poll_fn(move |cx| {
        let w = Pin::new(&mut *wr);
        if buf.is_empty() {
            return w.poll_flush(cx).map_ok(|()| 0);
        }
        Poll::Ready(match ready!(w.poll_write(cx, buf))? {
            0 => Err(std::io::ErrorKind::WriteZero.into()),
            n => Ok(n),
        })
    })
}
