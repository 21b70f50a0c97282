//! The record frame: `[len u32][crc32c u32][seq u64][payload]`, little endian. The CRC
//! covers `len`, `seq` and the payload, so an all-zero header (the preallocated, never
//! written part of a segment) is never a valid frame.

/// Bytes before the payload.
pub(crate) const HEADER: usize = 16;

/// Appends one frame to `buf`.
pub(crate) fn encode(buf: &mut Vec<u8>, seq: u64, payload: &[u8]) {
    let len = payload.len() as u32; // checked by the caller against the segment size
    let crc = checksum(len, seq, payload);
    buf.reserve(HEADER + payload.len());
    buf.extend_from_slice(&len.to_le_bytes());
    buf.extend_from_slice(&crc.to_le_bytes());
    buf.extend_from_slice(&seq.to_le_bytes());
    buf.extend_from_slice(payload);
}

fn checksum(len: u32, seq: u64, payload: &[u8]) -> u32 {
    let crc = crc32c::crc32c(&len.to_le_bytes());
    let crc = crc32c::crc32c_append(crc, &seq.to_le_bytes());
    crc32c::crc32c_append(crc, payload)
}

/// A frame header as read from disk, not yet checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) len: u32,
    pub(crate) crc: u32,
    pub(crate) seq: u64,
}

impl Header {
    pub(crate) fn parse(bytes: &[u8; HEADER]) -> Self {
        let [a, b, c, d, e, f, g, h, i, j, k, l, m, n, o, p] = *bytes;
        Self {
            len: u32::from_le_bytes([a, b, c, d]),
            crc: u32::from_le_bytes([e, f, g, h]),
            seq: u64::from_le_bytes([i, j, k, l, m, n, o, p]),
        }
    }

    pub(crate) fn is_zero(&self) -> bool {
        self.len == 0 && self.crc == 0 && self.seq == 0
    }

    /// Bytes of the whole frame.
    pub(crate) fn frame_len(&self) -> u64 {
        HEADER as u64 + u64::from(self.len)
    }

    pub(crate) fn check(&self, payload: &[u8]) -> bool {
        checksum(self.len, self.seq, payload) == self.crc
    }
}

/// What is at a position of a segment.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Decoded {
    /// A valid frame with the expected sequence number, of this many bytes in all.
    Frame(u64),
    /// Nothing was written here: an all-zero header or the end of the bytes.
    End,
    /// Something was written, but it is not a valid frame with the expected sequence.
    Invalid,
}

/// Decodes the frame at the start of `bytes`, which must hold the whole frame if its
/// header says it fits (the caller reads whole frames).
pub(crate) fn decode(bytes: &[u8], expected_seq: u64) -> Decoded {
    let Some(head) = bytes.first_chunk::<HEADER>() else {
        return if bytes.iter().all(|&b| b == 0) {
            Decoded::End
        } else {
            Decoded::Invalid
        };
    };
    let header = Header::parse(head);
    if header.is_zero() {
        return Decoded::End;
    }
    let total = header.frame_len();
    if header.seq != expected_seq || total > bytes.len() as u64 {
        return Decoded::Invalid;
    }
    if header.check(&bytes[HEADER..total as usize]) {
        Decoded::Frame(total)
    } else {
        Decoded::Invalid
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_round_trips_and_any_flipped_bit_is_caught() {
        let mut buf = Vec::new();
        encode(&mut buf, 7, b"hello");
        assert_eq!(buf.len(), HEADER + 5);
        assert_eq!(decode(&buf, 7), Decoded::Frame(buf.len() as u64));
        assert_eq!(decode(&buf, 8), Decoded::Invalid);
        for bit in 0..buf.len() * 8 {
            let mut bad = buf.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            assert_ne!(
                decode(&bad, 7),
                Decoded::Frame(buf.len() as u64),
                "bit {bit}"
            );
        }
    }

    #[test]
    fn zeros_are_the_end_and_a_partial_header_is_invalid() {
        assert_eq!(decode(&[0; 40], 1), Decoded::End);
        assert_eq!(decode(&[], 1), Decoded::End);
        assert_eq!(decode(&[0; 5], 1), Decoded::End);
        assert_eq!(decode(&[1, 0, 0], 1), Decoded::Invalid);
        let mut buf = Vec::new();
        encode(&mut buf, 1, b"");
        assert_eq!(decode(&buf, 1), Decoded::Frame(16));
        assert_eq!(decode(&buf[..15], 1), Decoded::Invalid);
    }
}
