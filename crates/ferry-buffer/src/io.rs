//! The file I/O seam: everything the buffer does to the disk goes through [`Io`] and
//! [`IoFile`], so tests can inject failures ([`FaultyIo`]) without touching the real disk's
//! behaviour.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};

/// The directory operations the buffer needs.
pub trait Io: Send + 'static {
    /// An open file of this implementation.
    type File: IoFile;
    /// Opens an existing file for reading and writing.
    fn open(&self, path: &Path) -> io::Result<Self::File>;
    /// Creates a file for reading and writing, truncating one that exists.
    fn create(&self, path: &Path) -> io::Result<Self::File>;
    /// Removes a file.
    fn remove(&self, path: &Path) -> io::Result<()>;
    /// The names of the files in a directory.
    fn list(&self, dir: &Path) -> io::Result<Vec<String>>;
    /// Creates a directory and its parents.
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// Makes the directory's entries (created or removed files) durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
}

/// The file operations the buffer needs. Writes and reads are positional, so retrying a
/// failed write rewrites the same bytes at the same place.
#[allow(clippy::len_without_is_empty)] // a file length, not a collection
pub trait IoFile: Send + 'static {
    /// Reads up to `buf.len()` bytes at `offset`; 0 at the end of the file.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;
    /// Writes all of `buf` at `offset`.
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()>;
    /// `fdatasync`: the written data (and the metadata needed to read it) is durable.
    fn sync_data(&self) -> io::Result<()>;
    /// `fsync`: data and all metadata (the length) are durable.
    fn sync_all(&self) -> io::Result<()>;
    /// Sets the file's length (shrinks, or extends with zeros).
    fn set_len(&self, len: u64) -> io::Result<()>;
    /// The file's length.
    fn len(&self) -> io::Result<u64>;
}

/// The real file system.
#[derive(Clone, Copy, Debug, Default)]
pub struct StdIo;

impl Io for StdIo {
    type File = File;

    fn open(&self, path: &Path) -> io::Result<File> {
        OpenOptions::new().read(true).write(true).open(path)
    }

    fn create(&self, path: &Path) -> io::Result<File> {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(dir)? {
            if let Ok(name) = entry?.file_name().into_string() {
                names.push(name);
            }
        }
        Ok(names)
    }

    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        fs::create_dir_all(dir)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }
}

impl IoFile for File {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        FileExt::read_at(self, buf, offset)
    }

    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        FileExt::write_all_at(self, buf, offset)
    }

    fn sync_data(&self) -> io::Result<()> {
        File::sync_data(self)
    }

    fn sync_all(&self) -> io::Result<()> {
        File::sync_all(self)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        File::set_len(self, len)
    }

    fn len(&self) -> io::Result<u64> {
        Ok(self.metadata()?.len())
    }
}

/// `ENOSPC`: no space left on the device.
pub const ENOSPC: i32 = 28;
/// `EIO`: an I/O error.
pub const EIO: i32 = 5;

/// Shared switches and counters of a [`FaultyIo`]: which write or sync fails, and with
/// which error. Clones share their state, so a test keeps one while the buffer owns the io.
#[derive(Clone, Debug, Default)]
pub struct Faults(Arc<FaultState>);

#[derive(Debug, Default)]
struct FaultState {
    writes: AtomicU64,
    syncs: AtomicU64,
    fail_write: AtomicU64,
    fail_sync: AtomicU64,
    errno: AtomicI32,
    disk_full: AtomicBool,
}

impl Faults {
    /// Makes the `n`th write from now (1 = the next one) fail with `errno`, after writing
    /// the first half of its bytes (a torn write).
    pub fn fail_nth_write(&self, n: u64, errno: i32) {
        self.0.errno.store(errno, Ordering::SeqCst);
        let at = self.0.writes.load(Ordering::SeqCst) + n;
        self.0.fail_write.store(at, Ordering::SeqCst);
    }

    /// Makes the `n`th data or full sync from now (1 = the next one) fail with `errno`.
    pub fn fail_nth_sync(&self, n: u64, errno: i32) {
        self.0.errno.store(errno, Ordering::SeqCst);
        let at = self.0.syncs.load(Ordering::SeqCst) + n;
        self.0.fail_sync.store(at, Ordering::SeqCst);
    }

    /// While set, every write, file creation and length change fails with `ENOSPC`.
    pub fn set_disk_full(&self, full: bool) {
        self.0.disk_full.store(full, Ordering::SeqCst);
    }

    /// Writes attempted so far.
    pub fn writes(&self) -> u64 {
        self.0.writes.load(Ordering::SeqCst)
    }

    /// Syncs attempted so far.
    pub fn syncs(&self) -> u64 {
        self.0.syncs.load(Ordering::SeqCst)
    }

    fn full(&self) -> io::Result<()> {
        if self.0.disk_full.load(Ordering::SeqCst) {
            Err(io::Error::from_raw_os_error(ENOSPC))
        } else {
            Ok(())
        }
    }

    /// Counts a write; true if this one must fail.
    fn write_fails(&self) -> bool {
        let n = self.0.writes.fetch_add(1, Ordering::SeqCst) + 1;
        n == self.0.fail_write.load(Ordering::SeqCst)
    }

    fn sync(&self) -> io::Result<()> {
        let n = self.0.syncs.fetch_add(1, Ordering::SeqCst) + 1;
        if n == self.0.fail_sync.load(Ordering::SeqCst) {
            return Err(self.error());
        }
        Ok(())
    }

    fn error(&self) -> io::Error {
        io::Error::from_raw_os_error(self.0.errno.load(Ordering::SeqCst))
    }
}

/// The real file system with injected failures, for tests: see [`Faults`].
#[derive(Clone, Debug, Default)]
pub struct FaultyIo {
    faults: Faults,
}

impl FaultyIo {
    /// A faulty io and the handle that controls it.
    pub fn new() -> (Self, Faults) {
        let faults = Faults::default();
        (
            Self {
                faults: faults.clone(),
            },
            faults,
        )
    }
}

/// A file of a [`FaultyIo`].
#[derive(Debug)]
pub struct FaultyFile {
    file: File,
    faults: Faults,
}

impl Io for FaultyIo {
    type File = FaultyFile;

    fn open(&self, path: &Path) -> io::Result<FaultyFile> {
        Ok(FaultyFile {
            file: StdIo.open(path)?,
            faults: self.faults.clone(),
        })
    }

    fn create(&self, path: &Path) -> io::Result<FaultyFile> {
        self.faults.full()?;
        Ok(FaultyFile {
            file: StdIo.create(path)?,
            faults: self.faults.clone(),
        })
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        StdIo.remove(path)
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        StdIo.list(dir)
    }

    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        StdIo.create_dir_all(dir)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.faults.sync()?;
        StdIo.sync_dir(dir)
    }
}

impl IoFile for FaultyFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        IoFile::read_at(&self.file, buf, offset)
    }

    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        if self.faults.write_fails() {
            IoFile::write_all_at(&self.file, &buf[..buf.len() / 2], offset)?;
            return Err(self.faults.error());
        }
        self.faults.full()?;
        IoFile::write_all_at(&self.file, buf, offset)
    }

    fn sync_data(&self) -> io::Result<()> {
        self.faults.sync()?;
        IoFile::sync_data(&self.file)
    }

    fn sync_all(&self) -> io::Result<()> {
        self.faults.sync()?;
        IoFile::sync_all(&self.file)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.faults.full()?;
        IoFile::set_len(&self.file, len)
    }

    fn len(&self) -> io::Result<u64> {
        IoFile::len(&self.file)
    }
}
