use std::io;
use std::path::{Path, PathBuf};

/// What went wrong in a buffer operation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file operation failed (disk full, I/O error...). The buffer stays consistent:
    /// nothing past what was durable before is reported durable, and the operation can be
    /// retried.
    #[error("disk buffer: {op} {path}: {source}")]
    Io {
        /// The operation: open, create, read, write, sync, remove, list...
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The error from the operating system.
        source: io::Error,
    },
    /// The record does not fit: `max_bytes` would be exceeded. The caller applies its
    /// policy (drop the newest, [`crate::Buffer::drop_oldest`], or wait for acks).
    #[error(
        "disk buffer full: {len_bytes} of {max_bytes} bytes used, the record needs {record_bytes}"
    )]
    Full {
        /// Bytes of unacknowledged (and pending) records.
        len_bytes: u64,
        /// The bound.
        max_bytes: u64,
        /// Bytes the record would take (payload and frame header).
        record_bytes: u64,
    },
    /// A record larger than a segment can never be stored.
    #[error("record of {len} bytes does not fit a segment of {segment_bytes} bytes")]
    TooLarge {
        /// The payload's length.
        len: usize,
        /// The configured segment size.
        segment_bytes: u64,
    },
    /// A record read back from disk failed its checksum or sequence check (the disk
    /// changed under us), or the directory is inconsistent.
    #[error("disk buffer corrupt: {path} at offset {offset}: {what}")]
    Corrupt {
        /// The segment file.
        path: PathBuf,
        /// Where in it.
        offset: u64,
        /// What was wrong.
        what: String,
    },
    /// The options cannot work.
    #[error("disk buffer options: {0}")]
    Options(String),
}

impl Error {
    /// True for [`Error::Full`].
    pub fn is_full(&self) -> bool {
        matches!(self, Error::Full { .. })
    }

    /// The OS error number of an [`Error::Io`] (`ENOSPC` = 28, `EIO` = 5).
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            Error::Io { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }
}

pub(crate) fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> Error + 'a {
    move |source| Error::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}
