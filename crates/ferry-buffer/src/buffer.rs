use std::collections::VecDeque;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::cursor::{self, Cursor};
use crate::error::{Error, io_err};
use crate::frame::{self, HEADER, Header};
use crate::io::{Io, IoFile, StdIo};
use crate::segment::{self, BLOCK, INDEX_EVERY, Segment, Stop, read_exact_at};
use crate::stats::{Recovery, Stats};

/// A record id: assigned by [`Buffer::append`], increasing by one per record, never
/// reused once durable. 0 means "none".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Id(pub u64);

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// When data reaches the disk.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SyncMode {
    /// `fdatasync` at every commit, cursor store and segment creation: a committed record
    /// survives power loss.
    #[default]
    Always,
    /// Never sync: records survive a crash of the process (they are in the page cache),
    /// not of the machine. For tests and benchmarks.
    Never,
}

/// How a buffer is laid out and bounded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// Size of each (preallocated) segment file; also the largest record + 16 bytes.
    pub segment_bytes: u64,
    /// Bound on the bytes of unacknowledged records (frames). The files take up to about
    /// `max_bytes + 2 * segment_bytes`, since only whole segments are deleted.
    pub max_bytes: u64,
    /// When data is synced.
    pub sync: SyncMode,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            segment_bytes: 64 << 20,
            max_bytes: 1 << 30,
            sync: SyncMode::Always,
        }
    }
}

/// Bytes of zeros written ahead of the data, see [`Buffer::commit`].
const ZERO_AHEAD: u64 = 1 << 20;

thread_local! {
    static ZEROS: Vec<u8> = vec![0; ZERO_AHEAD as usize];
}

/// Appended records of one segment, waiting for the commit that writes them.
struct Chunk {
    /// The segment does not exist yet: the commit creates it.
    create: bool,
    seg_first: u64,
    /// Where in the segment `buf` goes.
    base: u64,
    count: u64,
    buf: Vec<u8>,
    index: Vec<u32>,
}

#[derive(Default)]
struct Counters {
    appended: u64,
    committed: u64,
    acked: u64,
    dropped_oldest: u64,
    rejected_full: u64,
    discarded: u64,
    commits: u64,
    io_errors: u64,
    fsyncs: u64,
    fsync_total: Duration,
    fsync_last: Duration,
    fsync_max: Duration,
}

impl Counters {
    fn sync<F: IoFile>(&mut self, file: &F, path: &Path, all: bool) -> Result<(), Error> {
        let start = Instant::now();
        let result = if all {
            file.sync_all()
        } else {
            file.sync_data()
        };
        let took = start.elapsed();
        self.fsyncs += 1;
        self.fsync_total += took;
        self.fsync_last = took;
        self.fsync_max = self.fsync_max.max(took);
        result.map_err(io_err("sync", path))
    }

    fn count<T>(&mut self, result: Result<T, Error>) -> Result<T, Error> {
        if result.is_err() {
            self.io_errors += 1;
        }
        result
    }
}

/// The durable FIFO: see the crate doc for the format and the invariants.
pub struct Buffer<I: Io = StdIo> {
    io: I,
    dir: PathBuf,
    options: Options,
    /// Live segments, oldest first; the last is the one appended to. Never empty.
    segments: VecDeque<Segment<I::File>>,
    /// Appended, not yet committed, in order.
    pending: VecDeque<Chunk>,
    pending_bytes: u64,
    /// The id the next append gets.
    next_id: u64,
    /// The ack cursor: every id `<= acked` is acknowledged.
    acked: u64,
    cursor: Cursor<I::File>,
    /// Bytes of durable frames in live segments.
    stored_bytes: u64,
    /// Of those, bytes before the first unacknowledged record.
    acked_bytes: u64,
    /// Where the last read stopped: `(id, segment first id, offset)`.
    read_hint: Option<(u64, u64, u64)>,
    counters: Counters,
    recovery: Recovery,
}

impl<I: Io> fmt::Debug for Buffer<I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Buffer")
            .field("dir", &self.dir)
            .field("segments", &self.segments.len())
            .field("next_id", &self.next_id)
            .field("acked", &self.acked)
            .finish_non_exhaustive()
    }
}

impl<I: Io> Buffer<I> {
    /// Opens the buffer in `dir` (created if missing), recovering what is there: a torn
    /// tail is truncated, a corrupt sealed segment is skipped from the bad record on,
    /// fully acknowledged segments left over are deleted; all of it is counted in the
    /// returned [`Recovery`]. Fails only on I/O errors and impossible options.
    pub fn open(
        dir: impl Into<PathBuf>,
        options: Options,
        io: I,
    ) -> Result<(Self, Recovery), Error> {
        let start = Instant::now();
        let dir = dir.into();
        if options.segment_bytes < 64 || options.segment_bytes > u64::from(u32::MAX) {
            return Err(Error::Options(format!(
                "segment_bytes must be between 64 and {} (got {})",
                u32::MAX,
                options.segment_bytes
            )));
        }
        if options.max_bytes == 0 {
            return Err(Error::Options("max_bytes must not be 0".into()));
        }
        let sync = options.sync == SyncMode::Always;
        io.create_dir_all(&dir).map_err(io_err("create", &dir))?;
        let names = io.list(&dir).map_err(io_err("list", &dir))?;
        let mut firsts: Vec<u64> = names
            .iter()
            .filter_map(|n| segment::parse_name(n))
            .collect();
        firsts.sort_unstable();
        let cursor_exists = names.iter().any(|n| n == cursor::FILE);
        let (cursor, stored) = Cursor::open(&io, &dir, cursor_exists, sync)?;
        // Segments are deleted only after the cursor passed them, so the first segment
        // bounds the cursor from below even if a cursor store was lost.
        let acked = stored.max(firsts.first().map_or(0, |f| f - 1));

        let mut recovery = Recovery::default();
        let mut counters = Counters::default();
        let mut segments = VecDeque::new();
        let now = Instant::now();
        for (i, &first) in firsts.iter().enumerate() {
            let path = dir.join(segment::file_name(first));
            let file = io.open(&path).map_err(io_err("open", &path))?;
            let limit = firsts.get(i + 1).copied();
            let scan = segment::scan(&file, &path, first, limit)?;
            if let Some(limit) = limit {
                // A sealed segment: it was complete and synced before the next one was
                // created, so anything short of the next first id is corruption.
                let missing = limit.saturating_sub(scan.next_id.max(acked + 1));
                if missing > 0 || scan.stop == Stop::Invalid {
                    recovery.corrupt_segments += 1;
                    recovery.corrupt_records += missing;
                }
                if scan.next_id <= acked + 1 {
                    io.remove(&path).map_err(io_err("remove", &path))?;
                    recovery.removed_segments += 1;
                    continue;
                }
            } else {
                let cap = options.segment_bytes.max(scan.end);
                if scan.stop == Stop::Invalid {
                    let (records, bytes) =
                        segment::measure_tail(&file, &path, scan.end, scan.next_id, scan.file_len)?;
                    recovery.truncated_records += records;
                    recovery.truncated_bytes += bytes;
                }
                if scan.stop == Stop::Invalid || scan.file_len != cap {
                    // Cut the tail and extend again with zeros, so no old bytes remain
                    // past the end to be mistaken for frames later.
                    file.set_len(scan.end).map_err(io_err("truncate", &path))?;
                    file.set_len(cap).map_err(io_err("truncate", &path))?;
                    if sync {
                        counters.sync(&file, &path, true)?;
                    }
                }
            }
            let times = vec![now; scan.index.len()];
            segments.push_back(Segment {
                first_id: first,
                next_id: scan.next_id,
                end: scan.end,
                index: scan.index,
                times,
                zeroed: scan.end,
                file,
                path,
            });
        }

        let mut buffer = Self {
            io,
            dir,
            options,
            segments,
            pending: VecDeque::new(),
            pending_bytes: 0,
            next_id: 0,
            acked,
            cursor,
            stored_bytes: 0,
            acked_bytes: 0,
            read_hint: None,
            counters,
            recovery: Recovery::default(),
        };
        // The next id must be past the cursor: start a new segment there if the last one
        // is all acknowledged (or there is none).
        let fresh = match buffer.segments.back() {
            None => true,
            Some(last) => last.next_id <= acked && !(last.records() == 0 && last.first_id > acked),
        };
        if fresh {
            let seg = buffer.create_segment(acked + 1)?;
            buffer.segments.push_back(seg);
        }
        if acked > stored {
            buffer.cursor.store(acked, sync)?;
        }
        buffer.trim()?;
        buffer.next_id = buffer.durable_next();
        buffer.stored_bytes = buffer.segments.iter().map(|s| s.end).sum();
        buffer.update_acked_bytes()?;
        recovery.records = buffer.unacked_records();
        recovery.segments = buffer.segments.len() as u64;
        recovery.duration = start.elapsed();
        buffer.recovery = recovery.clone();
        Ok((buffer, recovery))
    }

    /// Appends a record to the pending batch; it is durable once a [`Buffer::commit`]
    /// returns Ok. Fails with [`Error::Full`] if `max_bytes` would be exceeded and with
    /// [`Error::TooLarge`] if it can never fit a segment; no I/O happens here.
    pub fn append(&mut self, payload: &[u8]) -> Result<Id, Error> {
        let frame_len = (HEADER + payload.len()) as u64;
        if frame_len > self.options.segment_bytes {
            return Err(Error::TooLarge {
                len: payload.len(),
                segment_bytes: self.options.segment_bytes,
            });
        }
        let len_bytes = self.len_bytes();
        if len_bytes + frame_len > self.options.max_bytes {
            self.counters.rejected_full += 1;
            return Err(Error::Full {
                len_bytes,
                max_bytes: self.options.max_bytes,
                record_bytes: frame_len,
            });
        }
        let (seg_first, pos) = match self.pending.back() {
            Some(chunk) => (chunk.seg_first, chunk.base + chunk.buf.len() as u64),
            None => {
                let last = self.last();
                (last.first_id, last.end)
            }
        };
        let id = self.next_id;
        if pos + frame_len > self.options.segment_bytes {
            self.pending.push_back(Chunk {
                create: true,
                seg_first: id,
                base: 0,
                count: 0,
                buf: Vec::new(),
                index: Vec::new(),
            });
        } else if self.pending.is_empty() {
            self.pending.push_back(Chunk {
                create: false,
                seg_first,
                base: pos,
                count: 0,
                buf: Vec::new(),
                index: Vec::new(),
            });
        }
        let Some(chunk) = self.pending.back_mut() else {
            unreachable!("a chunk was just ensured");
        };
        if (id - chunk.seg_first).is_multiple_of(INDEX_EVERY) {
            chunk
                .index
                .push((chunk.base + chunk.buf.len() as u64) as u32);
        }
        frame::encode(&mut chunk.buf, id, payload);
        chunk.count += 1;
        self.pending_bytes += frame_len;
        self.next_id += 1;
        self.counters.appended += 1;
        Ok(Id(id))
    }

    /// Group commit: writes everything appended since the last commit with one positional
    /// write and one `fdatasync` per segment touched (one, unless a segment fills up), and
    /// returns the last durable id. On error nothing new is reported durable (except
    /// whole segments' parts that completed, see [`Buffer::durable`]); the pending
    /// records stay, and the next commit writes them again at the same place.
    pub fn commit(&mut self) -> Result<Id, Error> {
        let result = self.commit_inner();
        self.counters.count(result)
    }

    fn commit_inner(&mut self) -> Result<Id, Error> {
        let sync = self.options.sync == SyncMode::Always;
        if !self.pending.is_empty() {
            self.counters.commits += 1;
        }
        let mut created = false;
        while let Some(chunk) = self.pending.front_mut() {
            if chunk.create {
                created = true;
                let seg = Self::create_segment_with(
                    &self.io,
                    &self.dir,
                    &self.options,
                    &mut self.counters,
                    chunk.seg_first,
                )?;
                self.segments.push_back(seg);
                chunk.create = false;
            }
            let Some(seg) = self.segments.back_mut() else {
                unreachable!("there is always a segment");
            };
            debug_assert_eq!(seg.first_id, chunk.seg_first);
            debug_assert_eq!(seg.end, chunk.base);
            seg.file
                .write_all_at(&chunk.buf, chunk.base)
                .map_err(io_err("write", &seg.path))?;
            let written = chunk.base + chunk.buf.len() as u64;
            if sync && written > seg.zeroed {
                // Allocate blocks ahead by writing zeros, so the next commits overwrite
                // allocated blocks and their fdatasync flushes data only, not the
                // allocation (a sparse file costs a journal commit per fdatasync).
                let to = (written + ZERO_AHEAD).min(self.options.segment_bytes);
                if to > written {
                    ZEROS
                        .with(|zeros| {
                            seg.file
                                .write_all_at(&zeros[..(to - written) as usize], written)
                        })
                        .map_err(io_err("write", &seg.path))?;
                }
                seg.zeroed = to;
            }
            if sync {
                self.counters.sync(&seg.file, &seg.path, false)?;
            }
            let now = Instant::now();
            seg.times
                .extend(std::iter::repeat_n(now, chunk.index.len()));
            seg.index.append(&mut chunk.index);
            seg.next_id += chunk.count;
            seg.end += chunk.buf.len() as u64;
            self.stored_bytes += chunk.buf.len() as u64;
            self.pending_bytes -= chunk.buf.len() as u64;
            self.counters.committed += chunk.count;
            self.pending.pop_front();
        }
        if created && self.trim().is_err() {
            // The records are durable; the acknowledged segment that could not be removed
            // now is removed by a later ack.
            self.counters.io_errors += 1;
        }
        Ok(self.durable())
    }

    /// Throws away the pending (uncommitted) records, e.g. after a commit failed and the
    /// caller gives up on them; their ids are given again to the next appends. Returns how
    /// many were discarded.
    pub fn discard_pending(&mut self) -> u64 {
        let n: u64 = self.pending.iter().map(|c| c.count).sum();
        self.pending.clear();
        self.pending_bytes = 0;
        self.next_id = self.durable_next();
        self.counters.discarded += n;
        n
    }

    /// Up to `max` durable, unacknowledged records with ids `>= from`, in id order. A
    /// reader may run ahead of the ack cursor; reading again from an earlier id (after a
    /// failed send) returns the same records.
    pub fn read_from(&mut self, from: Id, max: usize) -> Result<Vec<(Id, Vec<u8>)>, Error> {
        let result = self.read_inner(from.0.max(self.acked + 1), max);
        self.counters.count(result)
    }

    fn read_inner(&mut self, from: u64, max: usize) -> Result<Vec<(Id, Vec<u8>)>, Error> {
        let mut out = Vec::new();
        let Some((mut idx, mut off, mut id)) = self.locate(from)? else {
            return Ok(out);
        };
        let mut block = Vec::new();
        while out.len() < max && idx < self.segments.len() {
            let seg = &self.segments[idx];
            if id >= seg.next_id {
                idx += 1;
                off = 0;
                id = self.segments.get(idx).map_or(id, |s| s.first_id.max(id));
                continue;
            }
            let avail = seg.end - off;
            block.resize(avail.min(BLOCK as u64) as usize, 0);
            read_exact_at(&seg.file, &mut block, off).map_err(io_err("read", &seg.path))?;
            let corrupt = |at: u64, id: u64, what: &str| Error::Corrupt {
                path: seg.path.clone(),
                offset: at,
                what: format!("{what} (record {id})"),
            };
            let mut pos = 0usize;
            while out.len() < max && id < seg.next_id {
                let rest = &block[pos..];
                let Some(head) = rest.first_chunk::<HEADER>() else {
                    break;
                };
                let total = Header::parse(head).frame_len();
                if total > rest.len() as u64 {
                    if pos > 0 {
                        break; // read the next block from here
                    }
                    if total > avail {
                        return Err(corrupt(off, id, "frame past the segment's end"));
                    }
                    block.resize(total as usize, 0);
                    read_exact_at(&seg.file, &mut block, off).map_err(io_err("read", &seg.path))?;
                    continue;
                }
                match frame::decode(&rest[..total as usize], id) {
                    frame::Decoded::Frame(n) => {
                        out.push((Id(id), rest[HEADER..n as usize].to_vec()));
                        pos += n as usize;
                        id += 1;
                    }
                    _ => {
                        return Err(corrupt(off + pos as u64, id, "checksum or id mismatch"));
                    }
                }
            }
            off += pos as u64;
        }
        if let Some(seg) = self.segments.get(idx) {
            self.read_hint = Some((id, seg.first_id, off));
        }
        Ok(out)
    }

    /// The position of the first stored record with an id `>= id`: `(segment index,
    /// offset, its id)`; None if there is none yet.
    fn locate(&self, id: u64) -> Result<Option<(usize, u64, u64)>, Error> {
        let mut idx = self
            .segments
            .partition_point(|s| s.first_id <= id)
            .saturating_sub(1);
        let mut id = id;
        while let Some(seg) = self.segments.get(idx) {
            id = id.max(seg.first_id);
            if id < seg.next_id {
                let hint = self
                    .read_hint
                    .filter(|&(_, first, _)| first == seg.first_id)
                    .map(|(hint_id, _, off)| (hint_id, off));
                return Ok(Some((idx, seg.offset_of(id, hint)?, id)));
            }
            idx += 1;
        }
        Ok(None)
    }

    /// Acknowledges every record with an id `<= up_to` (capped at the last durable id):
    /// stores the cursor durably, then deletes the segments whose records are all
    /// acknowledged. An `up_to` at or below the cursor does nothing: the cursor never
    /// moves backwards. The cost does not depend on the number of records acknowledged.
    pub fn ack(&mut self, up_to: Id) -> Result<(), Error> {
        let target = up_to.0.min(self.durable().0);
        if target <= self.acked {
            return Ok(());
        }
        let result = self.advance(target, false).map(|_| ());
        self.counters.count(result)
    }

    /// Drops (acknowledges without delivery) the `n` oldest unacknowledged records, for a
    /// `drop_oldest` policy when the buffer is full; returns how many were dropped. Only
    /// durable records are dropped: commit pending ones first.
    pub fn drop_oldest(&mut self, n: u64) -> Result<u64, Error> {
        let target = self.acked.saturating_add(n).min(self.durable().0);
        if target <= self.acked {
            return Ok(0);
        }
        let result = self.advance(target, true);
        self.counters.count(result)
    }

    /// Moves the cursor to `target` (stored first), counts the records it passed as acked
    /// or dropped, and trims. Returns how many records it passed.
    fn advance(&mut self, target: u64, dropped: bool) -> Result<u64, Error> {
        let n = self.records_in(self.acked + 1, target);
        self.cursor
            .store(target, self.options.sync == SyncMode::Always)?;
        self.acked = target;
        if dropped {
            self.counters.dropped_oldest += n;
        } else {
            self.counters.acked += n;
        }
        let trimmed = self.trim();
        self.update_acked_bytes()?;
        trimmed.map(|()| n)
    }

    /// Deletes the segments (but the last) whose records are all acknowledged.
    fn trim(&mut self) -> Result<(), Error> {
        while self.segments.len() > 1 && self.segments[0].next_id <= self.acked + 1 {
            let path = &self.segments[0].path;
            match self.io.remove(path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err("remove", path)(e)),
            }
            if let Some(seg) = self.segments.pop_front() {
                // All of its bytes were acknowledged.
                self.stored_bytes -= seg.end;
                self.acked_bytes -= seg.end.min(self.acked_bytes);
            }
        }
        Ok(())
    }

    fn update_acked_bytes(&mut self) -> Result<(), Error> {
        self.acked_bytes = match self.locate(self.acked + 1)? {
            Some((idx, off, _)) => self.segments.iter().take(idx).map(|s| s.end).sum::<u64>() + off,
            None => self.stored_bytes,
        };
        Ok(())
    }

    fn records_in(&self, from: u64, to: u64) -> u64 {
        self.segments
            .iter()
            .map(|s| s.next_id.min(to + 1).saturating_sub(from.max(s.first_id)))
            .sum()
    }

    fn unacked_records(&self) -> u64 {
        self.segments
            .iter()
            .map(|s| s.records_from(self.acked + 1))
            .sum()
    }

    fn last(&self) -> &Segment<I::File> {
        let Some(last) = self.segments.back() else {
            unreachable!("there is always a segment");
        };
        last
    }

    fn durable_next(&self) -> u64 {
        self.last().next_id
    }

    /// The last durable id (0 if none).
    pub fn durable(&self) -> Id {
        Id(self.durable_next() - 1)
    }

    /// The ack cursor: every id up to it is acknowledged.
    pub fn acked(&self) -> Id {
        Id(self.acked)
    }

    /// The first unacknowledged durable record's id, if any.
    pub fn first_unacked(&self) -> Option<Id> {
        let from = self.acked + 1;
        self.segments
            .iter()
            .find(|s| s.next_id > from)
            .map(|s| Id(from.max(s.first_id)))
    }

    /// Bytes of unacknowledged records (durable and pending frames): what `max_bytes` bounds.
    pub fn len_bytes(&self) -> u64 {
        self.stored_bytes - self.acked_bytes + self.pending_bytes
    }

    /// Unacknowledged durable records.
    pub fn len_records(&self) -> u64 {
        self.unacked_records()
    }

    /// Records appended and not committed yet.
    pub fn pending_records(&self) -> u64 {
        self.pending.iter().map(|c| c.count).sum()
    }

    /// Segment files.
    pub fn segments(&self) -> usize {
        self.segments.len()
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The options it was opened with.
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// A snapshot of the gauges and counters.
    pub fn stats(&self) -> Stats {
        let first_unacked = self.first_unacked();
        let oldest_unacked_age = first_unacked.and_then(|id| {
            let seg = self.segments.iter().find(|s| s.next_id > id.0)?;
            let k = (id.0.max(seg.first_id) - seg.first_id) / INDEX_EVERY;
            seg.times.get(k as usize).map(Instant::elapsed)
        });
        let c = &self.counters;
        Stats {
            bytes: self.len_bytes(),
            disk_bytes: self
                .segments
                .iter()
                .map(|s| s.end.max(self.options.segment_bytes))
                .sum(),
            records: self.unacked_records(),
            pending_records: self.pending_records(),
            segments: self.segments.len() as u64,
            durable: self.durable(),
            acked: self.acked(),
            first_unacked,
            oldest_unacked_age,
            appended: c.appended,
            committed: c.committed,
            acked_records: c.acked,
            dropped_oldest: c.dropped_oldest,
            rejected_full: c.rejected_full,
            discarded_pending: c.discarded,
            commits: c.commits,
            io_errors: c.io_errors,
            fsyncs: c.fsyncs,
            fsync_total: c.fsync_total,
            fsync_last: c.fsync_last,
            fsync_max: c.fsync_max,
            recovery: self.recovery.clone(),
        }
    }

    fn create_segment(&mut self, first_id: u64) -> Result<Segment<I::File>, Error> {
        Self::create_segment_with(
            &self.io,
            &self.dir,
            &self.options,
            &mut self.counters,
            first_id,
        )
    }

    /// Creates and preallocates a segment; with [`SyncMode::Always`] its length and its
    /// directory entry are durable before any record is written to it.
    fn create_segment_with(
        io: &I,
        dir: &Path,
        options: &Options,
        counters: &mut Counters,
        first_id: u64,
    ) -> Result<Segment<I::File>, Error> {
        let path = dir.join(segment::file_name(first_id));
        let file = io.create(&path).map_err(io_err("create", &path))?;
        file.set_len(options.segment_bytes)
            .map_err(io_err("preallocate", &path))?;
        if options.sync == SyncMode::Always {
            counters.sync(&file, &path, true)?;
            io.sync_dir(dir).map_err(io_err("sync", dir))?;
        }
        Ok(Segment {
            first_id,
            next_id: first_id,
            end: 0,
            index: Vec::new(),
            times: Vec::new(),
            zeroed: 0,
            file,
            path,
        })
    }
}

#[cfg(test)]
impl<I: Io> Buffer<I> {
    /// Simulates a crash in the middle of a commit: writes the first `keep` bytes of the
    /// pending batch of the current segment (as a torn write would), then forgets
    /// everything pending. The caller drops the buffer and reopens.
    /// Returns how many whole frames that wrote (they are valid on disk and recovered).
    pub(crate) fn crash_mid_commit(&mut self, keep: usize) -> Result<u64, Error> {
        let mut whole = 0;
        if let Some(chunk) = self.pending.front()
            && !chunk.create
        {
            let seg = self.last();
            let keep = keep.min(chunk.buf.len());
            seg.file
                .write_all_at(&chunk.buf[..keep], chunk.base)
                .map_err(io_err("write", &seg.path))?;
            let mut at = 0usize;
            while let Some(head) = chunk.buf.get(at..).and_then(|b| b.first_chunk::<HEADER>()) {
                let next = at + Header::parse(head).frame_len() as usize;
                if next > keep {
                    break;
                }
                whole += 1;
                at = next;
            }
        }
        self.pending.clear();
        Ok(whole)
    }

    /// Checks the internal bookkeeping against itself.
    pub(crate) fn check_invariants(&self) {
        let segs: Vec<_> = self.segments.iter().collect();
        assert!(!segs.is_empty());
        for pair in segs.windows(2) {
            assert!(
                pair[0].next_id <= pair[1].first_id,
                "segments are in id order"
            );
            assert!(pair[0].first_id <= pair[0].next_id);
        }
        if segs.len() > 1 {
            assert!(
                segs[0].next_id > self.acked + 1,
                "a fully acked segment was kept"
            );
        }
        assert_eq!(self.stored_bytes, segs.iter().map(|s| s.end).sum::<u64>());
        assert!(self.acked_bytes <= self.stored_bytes);
        assert!(self.acked < self.durable_next() || self.unacked_records() == 0);
        assert_eq!(self.next_id, self.durable_next() + self.pending_records());
        for s in &segs {
            assert_eq!(s.index.len() as u64, s.records().div_ceil(INDEX_EVERY));
            assert_eq!(s.times.len(), s.index.len());
            assert!(s.end <= self.options.segment_bytes || s.records() == 1);
        }
    }

    pub(crate) fn segment_paths(&self) -> Vec<(PathBuf, u64, u64)> {
        self.segments
            .iter()
            .map(|s| (s.path.clone(), s.first_id, s.end))
            .collect()
    }
}
