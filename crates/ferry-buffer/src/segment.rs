//! One segment file in memory, and the scans recovery runs over segment files.

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::error::{Error, io_err};
use crate::frame::{self, Decoded, HEADER, Header};
use crate::io::IoFile;

/// One sparse index entry every this many records of a segment.
pub(crate) const INDEX_EVERY: u64 = 64;
/// Bytes read at a time by scans and reads.
pub(crate) const BLOCK: usize = 1 << 20;

pub(crate) fn file_name(first_id: u64) -> String {
    format!("{first_id:020}.seg")
}

pub(crate) fn parse_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".seg")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

pub(crate) struct Segment<F> {
    pub(crate) first_id: u64,
    /// One past the last durable record of this segment.
    pub(crate) next_id: u64,
    /// Bytes of durable frames (the offset of the next frame).
    pub(crate) end: u64,
    /// `index[k]` is the offset of record `first_id + k * INDEX_EVERY`.
    pub(crate) index: Vec<u32>,
    /// `times[k]`: when record `first_id + k * INDEX_EVERY` became durable (or was recovered).
    pub(crate) times: Vec<Instant>,
    /// Bytes from the start known to be written (data or zeros), so allocated.
    pub(crate) zeroed: u64,
    pub(crate) file: F,
    pub(crate) path: PathBuf,
}

impl<F: IoFile> Segment<F> {
    pub(crate) fn records(&self) -> u64 {
        self.next_id - self.first_id
    }

    /// Records of this segment with an id in `from..`.
    pub(crate) fn records_from(&self, from: u64) -> u64 {
        self.next_id.saturating_sub(from.max(self.first_id))
    }

    /// The offset of record `id` (which must be in this segment), starting from the
    /// sparse index or from `hint` (a known `(id, offset)` of this segment) if closer.
    pub(crate) fn offset_of(&self, id: u64, hint: Option<(u64, u64)>) -> Result<u64, Error> {
        let k = (id - self.first_id) / INDEX_EVERY;
        let mut at = self.first_id + k * INDEX_EVERY;
        let mut off = u64::from(self.index.get(k as usize).copied().unwrap_or(0));
        if let Some((hint_id, hint_off)) = hint
            && hint_id <= id
            && hint_id >= at
            && hint_id < self.next_id
        {
            at = hint_id;
            off = hint_off;
        }
        let mut head = [0u8; HEADER];
        while at < id {
            read_exact_at(&self.file, &mut head, off).map_err(io_err("read", &self.path))?;
            off += Header::parse(&head).frame_len();
            at += 1;
        }
        Ok(off)
    }
}

pub(crate) fn read_exact_at<F: IoFile>(
    file: &F,
    mut buf: &mut [u8],
    mut offset: u64,
) -> std::io::Result<()> {
    while !buf.is_empty() {
        let n = file.read_at(buf, offset)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf = &mut buf[n..];
        offset += n as u64;
    }
    Ok(())
}

/// Where a scan of a segment stopped.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Stop {
    /// At unwritten space (zeros), the end of the file, or the next segment's first id.
    Clean,
    /// At bytes that are not a valid frame with the expected id.
    Invalid,
}

pub(crate) struct Scan {
    pub(crate) next_id: u64,
    pub(crate) end: u64,
    pub(crate) index: Vec<u32>,
    pub(crate) stop: Stop,
    pub(crate) file_len: u64,
}

/// A window of a file read in blocks, for sequential scans.
struct Window<'a, F> {
    file: &'a F,
    len: u64,
    buf: Vec<u8>,
    start: u64,
}

impl<F: IoFile> Window<'_, F> {
    /// The bytes from `off` on, at least `n` of them unless the file ends first.
    fn at(&mut self, off: u64, n: u64) -> std::io::Result<&[u8]> {
        let have_end = self.start + self.buf.len() as u64;
        if off < self.start || off + n > have_end {
            let want = n.max(BLOCK as u64).min(self.len.saturating_sub(off));
            self.buf.resize(want as usize, 0);
            read_exact_at(self.file, &mut self.buf, off)?;
            self.start = off;
        }
        let from = (off - self.start) as usize;
        Ok(&self.buf[from.min(self.buf.len())..])
    }
}

/// Reads the valid frames of a segment from its start, stopping at the first invalid
/// frame, at zeros, or before id `limit` (the next segment's first id).
pub(crate) fn scan<F: IoFile>(
    file: &F,
    path: &Path,
    first_id: u64,
    limit: Option<u64>,
) -> Result<Scan, Error> {
    let len = file.len().map_err(io_err("stat", path))?;
    let mut window = Window {
        file,
        len,
        buf: Vec::new(),
        start: 0,
    };
    let mut off = 0u64;
    let mut id = first_id;
    let mut index = Vec::new();
    let stop = loop {
        if limit.is_some_and(|limit| id >= limit) {
            break Stop::Clean;
        }
        let bytes = window
            .at(off, HEADER as u64)
            .map_err(io_err("read", path))?;
        let Some(head) = bytes.first_chunk::<HEADER>() else {
            break if bytes.iter().all(|&b| b == 0) {
                Stop::Clean
            } else {
                Stop::Invalid
            };
        };
        let header = Header::parse(head);
        if header.is_zero() {
            break Stop::Clean;
        }
        let total = header.frame_len();
        if off + total > len || off + total > u64::from(u32::MAX) {
            break Stop::Invalid;
        }
        let bytes = window.at(off, total).map_err(io_err("read", path))?;
        match frame::decode(&bytes[..total as usize], id) {
            Decoded::Frame(n) => {
                if (id - first_id).is_multiple_of(INDEX_EVERY) {
                    index.push(off as u32);
                }
                off += n;
                id += 1;
            }
            Decoded::End => break Stop::Clean,
            Decoded::Invalid => break Stop::Invalid,
        }
    };
    Ok(Scan {
        next_id: id,
        end: off,
        index,
        stop,
        file_len: len,
    })
}

/// Measures a torn tail from `end`: the bytes up to the last non-zero byte, and the frames
/// that were (partly) written there, recognised by their headers carrying the next ids.
pub(crate) fn measure_tail<F: IoFile>(
    file: &F,
    path: &Path,
    end: u64,
    next_id: u64,
    file_len: u64,
) -> Result<(u64, u64), Error> {
    let mut window = Window {
        file,
        len: file_len,
        buf: Vec::new(),
        start: 0,
    };
    // The last non-zero byte.
    let mut last_nonzero = end;
    let mut off = end;
    while off < file_len {
        let bytes = window.at(off, BLOCK as u64).map_err(io_err("read", path))?;
        let n = bytes.len().min(BLOCK);
        if n == 0 {
            break;
        }
        if let Some(i) = bytes[..n].iter().rposition(|&b| b != 0) {
            last_nonzero = off + i as u64 + 1;
        }
        off += n as u64;
    }
    let bytes = last_nonzero - end;
    if bytes == 0 {
        return Ok((0, 0));
    }
    // Frames: the torn one, then any whose header follows in sequence.
    let mut records = 1;
    let mut head = [0u8; HEADER];
    let mut at = end;
    let mut id = next_id;
    loop {
        if read_exact_at(file, &mut head, at).is_err() {
            break;
        }
        let header = Header::parse(&head);
        if header.is_zero() || header.seq != id {
            break;
        }
        at += header.frame_len();
        id += 1;
        if at >= last_nonzero {
            break;
        }
        if read_exact_at(file, &mut head, at).is_err() {
            break;
        }
        let next = Header::parse(&head);
        if next.is_zero() || next.seq != id {
            break;
        }
        records += 1;
    }
    Ok((records, bytes))
}
