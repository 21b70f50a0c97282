//! The durable ack cursor: the file `ack.cursor`, two 16-byte slots
//! `[acked u64][crc32c u32][zero u32]`. A store overwrites the slot that does not hold the
//! current value and syncs it, so a torn store leaves the other slot, with the previous
//! value, intact; opening takes the larger valid slot. The cursor only grows, so the larger
//! valid slot is the latest store. The file is written in full when created (no holes), so
//! a store never needs new blocks: acknowledging still works on a full disk.

use std::path::{Path, PathBuf};

use crate::error::{Error, io_err};
use crate::io::{Io, IoFile};

pub(crate) const FILE: &str = "ack.cursor";
const SLOT: u64 = 16;
const MAGIC: u32 = 0xfe77_ac4b;

pub(crate) struct Cursor<F> {
    file: F,
    path: PathBuf,
    /// The slot the next store writes.
    next_slot: u64,
}

fn crc(value: u64) -> u32 {
    crc32c::crc32c_append(MAGIC, &value.to_le_bytes())
}

fn encode(value: u64) -> [u8; SLOT as usize] {
    let mut slot = [0; SLOT as usize];
    slot[..8].copy_from_slice(&value.to_le_bytes());
    slot[8..12].copy_from_slice(&crc(value).to_le_bytes());
    slot
}

fn decode(slot: &[u8]) -> Option<u64> {
    let value = u64::from_le_bytes(slot.get(..8)?.try_into().ok()?);
    let stored = u32::from_le_bytes(slot.get(8..12)?.try_into().ok()?);
    (stored == crc(value)).then_some(value)
}

impl<F: IoFile> Cursor<F> {
    /// Opens (or creates) the cursor file; returns the cursor and its stored value (0 if
    /// none is valid) and whether a slot was unreadable.
    pub(crate) fn open<I: Io<File = F>>(
        io: &I,
        dir: &Path,
        exists: bool,
        sync: bool,
    ) -> Result<(Self, u64), Error> {
        let path = dir.join(FILE);
        if !exists {
            let file = io.create(&path).map_err(io_err("create", &path))?;
            // Written, not a hole: later stores then overwrite allocated blocks, so the
            // cursor can move (and free segments) even when the disk is full.
            file.write_all_at(&[0; 2 * SLOT as usize], 0)
                .map_err(io_err("write", &path))?;
            if sync {
                file.sync_all().map_err(io_err("sync", &path))?;
                io.sync_dir(dir).map_err(io_err("sync", dir))?;
            }
            return Ok((
                Self {
                    file,
                    path,
                    next_slot: 0,
                },
                0,
            ));
        }
        let file = io.open(&path).map_err(io_err("open", &path))?;
        let mut bytes = [0u8; 2 * SLOT as usize];
        let mut read = 0;
        while read < bytes.len() {
            let n = file
                .read_at(&mut bytes[read..], read as u64)
                .map_err(io_err("read", &path))?;
            if n == 0 {
                break;
            }
            read += n;
        }
        let a = decode(&bytes[..SLOT as usize]);
        let b = decode(&bytes[SLOT as usize..]);
        let (value, next_slot) = match (a, b) {
            (Some(a), Some(b)) if b > a => (b, 0),
            (Some(a), _) => (a, 1),
            (None, Some(b)) => (b, 0),
            (None, None) => (0, 0),
        };
        Ok((
            Self {
                file,
                path,
                next_slot,
            },
            value,
        ))
    }

    /// Stores `value`; durable when this returns if `sync`.
    pub(crate) fn store(&mut self, value: u64, sync: bool) -> Result<(), Error> {
        self.file
            .write_all_at(&encode(value), self.next_slot * SLOT)
            .map_err(io_err("write", &self.path))?;
        if sync {
            self.file.sync_data().map_err(io_err("sync", &self.path))?;
        }
        self.next_slot ^= 1;
        Ok(())
    }
}
