//! ferry-buffer: the disk buffer, a durable FIFO of opaque records between producer actions
//! and Kafka.
//!
//! Placeholder doc, replaced below.

mod buffer;
mod cursor;
mod error;
mod frame;
pub mod io;
mod segment;
mod stats;
#[cfg(test)]
mod tests;

pub use buffer::{Buffer, Id, Options, SyncMode};
pub use error::Error;
pub use io::{Faults, FaultyIo, Io, IoFile, StdIo};
pub use stats::{Recovery, Stats};
