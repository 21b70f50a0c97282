//! Socket reads and writes that hold no buffer while a connection is idle and never wait
//! outside the connection's `select!`.

use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::Poll;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};

/// Bytes one read takes at most (a buffer on the stack of the poll, not in the connection).
const READ_STACK: usize = 16 * 1024;

/// Reads what is there and appends it to `buf`, through a buffer on the stack: an idle
/// connection holds no read buffer, only the bytes of an incomplete frame. Cancel-safe.
pub(super) async fn read_into<R: AsyncRead + Unpin>(
    rd: &mut R,
    buf: &mut BytesMut,
) -> std::io::Result<usize> {
    std::future::poll_fn(|cx| {
        let mut chunk = [MaybeUninit::<u8>::uninit(); READ_STACK];
        let mut rb = ReadBuf::uninit(&mut chunk);
        match Pin::new(&mut *rd).poll_read(cx, &mut rb) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Ready(Ok(())) => {
                buf.extend_from_slice(rb.filled());
                Poll::Ready(Ok(rb.filled().len()))
            }
        }
    })
    .await
}

/// One write of `buf`, or a flush when it is empty. Cancel-safe: a write that did not
/// complete wrote nothing, and a flush continues where it stopped.
pub(super) async fn write_some<W: AsyncWrite + Unpin>(
    wr: &mut W,
    buf: &[u8],
) -> std::io::Result<usize> {
    if buf.is_empty() {
        wr.flush().await.map(|()| 0)
    } else {
        match wr.write(buf).await? {
            0 => Err(std::io::ErrorKind::WriteZero.into()),
            n => Ok(n),
        }
    }
}
