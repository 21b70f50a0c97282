//! ferry-mqtt: the MQTT 3.1 / 3.1.1 / 5.0 wire format, sans-I/O.
//!
//! Owns: the one packet model ([`Packet`]) shared by every protocol version, framing with a
//! size limit checked before buffering, decoding with the validation the specifications put
//! on the wire format (reserved bits, property placement, UTF-8, packet identifiers), encoding,
//! topic name / filter validation, the topic trie used for routing, and allocation-free
//! PUBLISH paths for load tools ([`fast`]).
//!
//! Must not: do I/O, keep session state, or know about brokers, rules or Kafka. Decoding
//! never panics on any input (fuzzed in `fuzz/`); every error maps to an MQTT 5 reason code.

mod decode;
mod encode;
pub mod fast;
mod packet;
mod props;
pub mod topic;
pub mod trie;

pub use decode::{Frame, decode, parse, read_frame, read_varint};
pub use encode::{encode, encoded_len};
pub use packet::*;

/// Why a packet could not be decoded. [`DecodeError::reason_code`] gives the MQTT 5 reason
/// code to close the connection with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("malformed packet: {0}")]
    Malformed(&'static str),
    #[error("protocol error: {0}")]
    Protocol(&'static str),
    #[error("packet of {size} bytes exceeds the maximum packet size of {max}")]
    TooLarge { size: usize, max: usize },
    #[error("unsupported protocol level {0}")]
    UnsupportedVersion(u8),
    #[error("unknown protocol name in CONNECT")]
    InvalidProtocolName,
}

impl DecodeError {
    pub fn reason_code(&self) -> u8 {
        match self {
            DecodeError::Malformed(_) => reason::MALFORMED_PACKET,
            DecodeError::Protocol(_) => reason::PROTOCOL_ERROR,
            DecodeError::TooLarge { .. } => reason::PACKET_TOO_LARGE,
            DecodeError::UnsupportedVersion(_) | DecodeError::InvalidProtocolName => {
                reason::UNSUPPORTED_PROTOCOL_VERSION
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("packet body of {0} bytes exceeds the MQTT limit")]
    TooLarge(usize),
}

#[cfg(test)]
mod tests;
