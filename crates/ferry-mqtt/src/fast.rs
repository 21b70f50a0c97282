//! Allocation-free PUBLISH paths for load tools: a PUBLISH header written straight into a
//! send buffer (the payload is appended by the caller), and a buffered PUBLISH looked at in
//! place, without decoding it into a [`Packet`](crate::Packet). Both do only what a load
//! generator needs; brokers use [`encode`](crate::encode) and [`decode`](crate::decode).

use bytes::{BufMut, BytesMut};

use crate::decode::{read_varint, varint_len, write_varint};
use crate::encode::MAX_REMAINING;
use crate::{DecodeError, EncodeError, QoS, Version};

/// Writes the fixed and variable header of a PUBLISH with no properties; the caller
/// appends exactly `payload_len` bytes of payload next.
pub fn put_publish_header(
    dst: &mut BytesMut,
    version: Version,
    topic: &str,
    qos: QoS,
    packet_id: u16,
    payload_len: usize,
) -> Result<(), EncodeError> {
    if topic.len() > usize::from(u16::MAX) {
        return Err(EncodeError::TooLarge(topic.len()));
    }
    let id_len = if qos == QoS::AtMostOnce { 0 } else { 2 };
    let props_len = usize::from(version.is_v5());
    let len = 2 + topic.len() + id_len + props_len + payload_len;
    if len > MAX_REMAINING {
        return Err(EncodeError::TooLarge(len));
    }
    dst.reserve(1 + varint_len(len as u32) + len);
    dst.put_u8(0x30 | ((qos as u8) << 1));
    write_varint(dst, len as u32);
    dst.put_u16(topic.len() as u16);
    dst.put_slice(topic.as_bytes());
    if id_len > 0 {
        dst.put_u16(packet_id);
    }
    if props_len > 0 {
        dst.put_u8(0);
    }
    Ok(())
}

/// Writes what a subscriber answers a PUBLISH with: PUBACK (QoS 1) or PUBREC (QoS 2) with
/// success and no properties; nothing for QoS 0.
pub fn put_subscriber_ack(dst: &mut BytesMut, qos: QoS, packet_id: u16) {
    let first = match qos {
        QoS::AtMostOnce => return,
        QoS::AtLeastOnce => 0x40,
        QoS::ExactlyOnce => 0x50,
    };
    dst.put_slice(&[first, 2]);
    dst.put_u16(packet_id);
}

/// The packet type (high 4 bits of the first byte) of a frame found by [`peek_frame`].
pub fn packet_type(frame: &[u8]) -> u8 {
    frame.first().map_or(0, |b| b >> 4)
}

/// A PUBLISH seen in place: what a subscriber needs to acknowledge and read it.
#[derive(Debug, PartialEq, Eq)]
pub struct PublishView<'a> {
    pub qos: QoS,
    pub packet_id: u16,
    pub payload: &'a [u8],
}

/// Looks at the first frame in `buf`. `Ok(None)`: no whole frame yet. Otherwise its total
/// length, and the PUBLISH if it is one (any other packet: decode it with
/// [`decode`](crate::decode)). Everything is bounds-checked: a broken frame is an error.
pub fn peek_frame(
    buf: &[u8],
    version: Version,
) -> Result<Option<(usize, Option<PublishView<'_>>)>, DecodeError> {
    if buf.len() < 2 {
        return Ok(None);
    }
    let Some((len, used)) = read_varint(&buf[1..])? else {
        return Ok(None);
    };
    let total = 1 + used + len as usize;
    let Some(body) = buf.get(1 + used..total) else {
        return Ok(None);
    };
    let header = buf[0];
    if header >> 4 != 3 {
        return Ok(Some((total, None)));
    }
    let short = DecodeError::Malformed("packet shorter than its content");
    let qos =
        QoS::from_u8((header >> 1) & 3).ok_or(DecodeError::Malformed("PUBLISH with QoS 3"))?;
    let topic_len = usize::from(u16::from_be_bytes([
        *body.first().ok_or(short.clone())?,
        *body.get(1).ok_or(short.clone())?,
    ]));
    let mut at = 2 + topic_len;
    let mut packet_id = 0;
    if qos != QoS::AtMostOnce {
        let id = body.get(at..at + 2).ok_or(short.clone())?;
        packet_id = u16::from_be_bytes([id[0], id[1]]);
        at += 2;
    }
    if version.is_v5() {
        let (plen, pused) =
            read_varint(body.get(at..).ok_or(short.clone())?)?.ok_or(short.clone())?;
        at += pused + plen as usize;
    }
    let payload = body.get(at..).ok_or(short)?;
    Ok(Some((
        total,
        Some(PublishView {
            qos,
            packet_id,
            payload,
        }),
    )))
}
