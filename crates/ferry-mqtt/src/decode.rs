//! Framing and decoding. The frame size is checked against the limit from the fixed header
//! alone, before any of the body is buffered.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::packet::*;
use crate::props::{self, Ctx};
use crate::{DecodeError, DecodeError::Malformed, DecodeError::Protocol};

/// A cursor over one packet's body. Every read is bounds-checked; running past the end is
/// a malformed packet, never a panic.
pub(crate) struct Reader {
    buf: Bytes,
}

impl Reader {
    pub(crate) fn new(buf: Bytes) -> Reader {
        Reader { buf }
    }
    pub(crate) fn remaining(&self) -> usize {
        self.buf.len()
    }
    fn need(&self, n: usize) -> Result<(), DecodeError> {
        if self.buf.len() < n {
            Err(Malformed("packet shorter than its content"))
        } else {
            Ok(())
        }
    }
    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        self.need(1)?;
        Ok(self.buf.get_u8())
    }
    pub(crate) fn u16(&mut self) -> Result<u16, DecodeError> {
        self.need(2)?;
        Ok(self.buf.get_u16())
    }
    pub(crate) fn u32(&mut self) -> Result<u32, DecodeError> {
        self.need(4)?;
        Ok(self.buf.get_u32())
    }
    pub(crate) fn varint(&mut self) -> Result<u32, DecodeError> {
        match read_varint(&self.buf)? {
            Some((v, used)) => {
                self.buf.advance(used);
                Ok(v)
            }
            None => Err(Malformed("truncated variable byte integer")),
        }
    }
    pub(crate) fn binary(&mut self) -> Result<Bytes, DecodeError> {
        let len = self.u16()? as usize;
        self.need(len)?;
        Ok(self.buf.split_to(len))
    }
    pub(crate) fn string(&mut self) -> Result<String, DecodeError> {
        let raw = self.binary()?;
        let s = std::str::from_utf8(&raw).map_err(|_| Malformed("string is not valid UTF-8"))?;
        if s.contains('\0') {
            return Err(Malformed("string contains U+0000"));
        }
        Ok(s.to_owned())
    }
    pub(crate) fn sub(&mut self, len: usize) -> Result<Reader, DecodeError> {
        self.need(len)?;
        Ok(Reader {
            buf: self.buf.split_to(len),
        })
    }
    fn rest(&mut self) -> Bytes {
        std::mem::take(&mut self.buf)
    }
    fn end(&self) -> Result<(), DecodeError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(Malformed("unexpected bytes after packet content"))
        }
    }
}

/// Reads a variable byte integer: `Ok(None)` if more bytes are needed.
pub fn read_varint(buf: &[u8]) -> Result<Option<(u32, usize)>, DecodeError> {
    let mut value: u32 = 0;
    for i in 0..4 {
        let Some(&byte) = buf.get(i) else {
            return Ok(None);
        };
        value |= u32::from(byte & 0x7F) << (7 * i);
        if byte & 0x80 == 0 {
            if i > 0 && byte == 0 {
                // Non-minimal encodings are allowed by neither spec; reject like EMQX.
                return Err(Malformed("non-minimal variable byte integer"));
            }
            return Ok(Some((value, i + 1)));
        }
    }
    Err(Malformed("variable byte integer longer than 4 bytes"))
}

pub(crate) fn varint_len(v: u32) -> usize {
    match v {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    }
}

pub(crate) fn write_varint(dst: &mut BytesMut, mut v: u32) {
    loop {
        let mut byte = (v & 0x7F) as u8;
        v >>= 7;
        if v > 0 {
            byte |= 0x80;
        }
        dst.put_u8(byte);
        if v == 0 {
            break;
        }
    }
}

/// A complete frame: the first byte of the fixed header and the body.
#[derive(Debug)]
pub struct Frame {
    pub header: u8,
    pub body: Bytes,
}

/// Splits one frame off `src`. `max_size` is the largest whole packet accepted (fixed header
/// included); a larger one is refused as soon as its length is known.
pub fn read_frame(src: &mut BytesMut, max_size: u32) -> Result<Option<Frame>, DecodeError> {
    if src.len() < 2 {
        return Ok(None);
    }
    let Some((len, used)) = read_varint(&src[1..])? else {
        return Ok(None);
    };
    let total = 1 + used + len as usize;
    if total > max_size as usize {
        return Err(DecodeError::TooLarge {
            size: total,
            max: max_size as usize,
        });
    }
    if src.len() < total {
        src.reserve(total - src.len());
        return Ok(None);
    }
    let header = src[0];
    src.advance(1 + used);
    let body = src.split_to(len as usize).freeze();
    Ok(Some(Frame { header, body }))
}

/// Convenience: frame and parse in one step.
pub fn decode(
    src: &mut BytesMut,
    version: Version,
    max_size: u32,
) -> Result<Option<Packet>, DecodeError> {
    match read_frame(src, max_size)? {
        Some(f) => parse(f, version).map(Some),
        None => Ok(None),
    }
}

fn flags_must_be(header: u8, expected: u8) -> Result<(), DecodeError> {
    if header & 0x0F != expected {
        Err(Malformed("invalid fixed header flags"))
    } else {
        Ok(())
    }
}

fn packet_id(r: &mut Reader) -> Result<u16, DecodeError> {
    let id = r.u16()?;
    if id == 0 {
        return Err(Malformed("packet identifier 0"));
    }
    Ok(id)
}

/// Parses one frame. `version` is the connection's negotiated version; CONNECT carries its own.
pub fn parse(frame: Frame, version: Version) -> Result<Packet, DecodeError> {
    let header = frame.header;
    let mut r = Reader::new(frame.body);
    let v5 = version.is_v5();
    let packet = match header >> 4 {
        1 => {
            flags_must_be(header, 0)?;
            Packet::Connect(Box::new(parse_connect(&mut r)?))
        }
        2 => {
            flags_must_be(header, 0)?;
            let ack_flags = r.u8()?;
            if ack_flags & 0xFE != 0 {
                return Err(Malformed("reserved CONNACK flags set"));
            }
            let code = r.u8()?;
            if !v5 && code > 5 {
                return Err(Malformed("reserved CONNACK return code"));
            }
            let properties = if v5 {
                props::decode(&mut r, Ctx::ConnAck)?
            } else {
                Properties::default()
            };
            Packet::ConnAck(ConnAck {
                session_present: ack_flags & 1 == 1,
                code,
                properties,
            })
        }
        3 => Packet::Publish(parse_publish(header, &mut r, v5)?),
        4 => {
            flags_must_be(header, 0)?;
            Packet::PubAck(parse_ack(&mut r, v5)?)
        }
        5 => {
            flags_must_be(header, 0)?;
            Packet::PubRec(parse_ack(&mut r, v5)?)
        }
        6 => {
            flags_must_be(header, 2)?;
            Packet::PubRel(parse_ack(&mut r, v5)?)
        }
        7 => {
            flags_must_be(header, 0)?;
            Packet::PubComp(parse_ack(&mut r, v5)?)
        }
        8 => {
            flags_must_be(header, 2)?;
            let packet_id = packet_id(&mut r)?;
            let properties = if v5 {
                props::decode(&mut r, Ctx::Subscribe)?
            } else {
                Properties::default()
            };
            if properties.subscription_identifiers.len() > 1 {
                return Err(Protocol("more than one subscription identifier"));
            }
            let mut filters = Vec::new();
            while r.remaining() > 0 {
                let filter = r.string()?;
                let o = r.u8()?;
                let qos = QoS::from_u8(o & 3).ok_or(Malformed("subscription QoS 3"))?;
                let opts = if v5 {
                    if o & 0xC0 != 0 {
                        return Err(Malformed("reserved subscription option bits set"));
                    }
                    let retain_handling = (o >> 4) & 3;
                    if retain_handling == 3 {
                        return Err(Protocol("retain handling 3"));
                    }
                    SubOptions {
                        qos,
                        no_local: o & 4 != 0,
                        retain_as_published: o & 8 != 0,
                        retain_handling,
                    }
                } else {
                    if o & 0xFC != 0 {
                        return Err(Malformed("reserved subscription option bits set"));
                    }
                    SubOptions {
                        qos,
                        ..SubOptions::default()
                    }
                };
                filters.push((filter, opts));
            }
            if filters.is_empty() {
                return Err(Protocol("SUBSCRIBE without topic filters"));
            }
            Packet::Subscribe(Subscribe {
                packet_id,
                filters,
                properties,
            })
        }
        9 => {
            flags_must_be(header, 0)?;
            let packet_id = packet_id(&mut r)?;
            let properties = if v5 {
                props::decode(&mut r, Ctx::SubAck)?
            } else {
                Properties::default()
            };
            let codes = r.rest().to_vec();
            if !v5 && codes.iter().any(|&c| c > 2 && c != 0x80) {
                return Err(Malformed("reserved SUBACK return code"));
            }
            Packet::SubAck(SubAck {
                packet_id,
                codes,
                properties,
            })
        }
        10 => {
            flags_must_be(header, 2)?;
            let packet_id = packet_id(&mut r)?;
            let properties = if v5 {
                props::decode(&mut r, Ctx::Unsubscribe)?
            } else {
                Properties::default()
            };
            let mut filters = Vec::new();
            while r.remaining() > 0 {
                filters.push(r.string()?);
            }
            if filters.is_empty() {
                return Err(Protocol("UNSUBSCRIBE without topic filters"));
            }
            Packet::Unsubscribe(Unsubscribe {
                packet_id,
                filters,
                properties,
            })
        }
        11 => {
            flags_must_be(header, 0)?;
            let packet_id = packet_id(&mut r)?;
            let (properties, codes) = if v5 {
                (props::decode(&mut r, Ctx::SubAck)?, r.rest().to_vec())
            } else {
                (Properties::default(), Vec::new())
            };
            Packet::UnsubAck(UnsubAck {
                packet_id,
                codes,
                properties,
            })
        }
        12 => {
            flags_must_be(header, 0)?;
            Packet::PingReq
        }
        13 => {
            flags_must_be(header, 0)?;
            Packet::PingResp
        }
        14 => {
            flags_must_be(header, 0)?;
            let mut d = Disconnect::default();
            if v5 && r.remaining() > 0 {
                d.code = r.u8()?;
                if r.remaining() > 0 {
                    d.properties = props::decode(&mut r, Ctx::Disconnect)?;
                }
            }
            Packet::Disconnect(d)
        }
        15 if v5 => {
            flags_must_be(header, 0)?;
            let mut a = Auth::default();
            if r.remaining() > 0 {
                a.code = r.u8()?;
                if r.remaining() > 0 {
                    a.properties = props::decode(&mut r, Ctx::Auth)?;
                }
            }
            Packet::Auth(a)
        }
        _ => return Err(Malformed("reserved packet type")),
    };
    r.end()?;
    Ok(packet)
}

fn parse_ack(r: &mut Reader, v5: bool) -> Result<Ack, DecodeError> {
    let packet_id = packet_id(r)?;
    let mut ack = Ack::new(packet_id, 0);
    if v5 && r.remaining() > 0 {
        ack.code = r.u8()?;
        if r.remaining() > 0 {
            ack.properties = props::decode(r, Ctx::Ack)?;
        }
    }
    Ok(ack)
}

fn parse_publish(header: u8, r: &mut Reader, v5: bool) -> Result<Publish, DecodeError> {
    let dup = header & 0x08 != 0;
    let qos = QoS::from_u8((header >> 1) & 3).ok_or(Malformed("PUBLISH with QoS 3"))?;
    let retain = header & 1 != 0;
    if dup && qos == QoS::AtMostOnce {
        return Err(Malformed("DUP flag set on a QoS 0 PUBLISH"));
    }
    let topic = r.string()?;
    let packet_id = if qos == QoS::AtMostOnce {
        0
    } else {
        packet_id(r)?
    };
    let properties = if v5 {
        props::decode(r, Ctx::Publish)?
    } else {
        Properties::default()
    };
    let payload = r.rest();
    Ok(Publish {
        dup,
        qos,
        retain,
        topic,
        packet_id,
        properties,
        payload,
    })
}

fn parse_connect(r: &mut Reader) -> Result<Connect, DecodeError> {
    let name = r.binary()?;
    let level = r.u8()?;
    let version = match (&name[..], level) {
        (b"MQTT", 4) => Version::V311,
        (b"MQTT", 5) => Version::V5,
        (b"MQIsdp", 3) => Version::V31,
        (b"MQTT", l) | (b"MQIsdp", l) => return Err(DecodeError::UnsupportedVersion(l)),
        _ => return Err(DecodeError::InvalidProtocolName),
    };
    let v5 = version.is_v5();
    let flags = r.u8()?;
    if flags & 1 != 0 {
        return Err(Malformed("reserved CONNECT flag set"));
    }
    let clean_start = flags & 0x02 != 0;
    let will_flag = flags & 0x04 != 0;
    let will_qos = (flags >> 3) & 3;
    let will_retain = flags & 0x20 != 0;
    let password_flag = flags & 0x40 != 0;
    let username_flag = flags & 0x80 != 0;
    if !will_flag && (will_qos != 0 || will_retain) {
        return Err(Malformed("will QoS or retain set without will flag"));
    }
    let will_qos = QoS::from_u8(will_qos).ok_or(Malformed("will QoS 3"))?;
    if version == Version::V311 && password_flag && !username_flag {
        return Err(Malformed("password without user name"));
    }
    let keep_alive = r.u16()?;
    let properties = if v5 {
        props::decode(r, Ctx::Connect)?
    } else {
        Properties::default()
    };
    let client_id = r.string()?;
    let will = if will_flag {
        let properties = if v5 {
            props::decode(r, Ctx::Will)?
        } else {
            Properties::default()
        };
        let topic = r.string()?;
        let payload = r.binary()?;
        Some(Will {
            topic,
            payload,
            qos: will_qos,
            retain: will_retain,
            properties,
        })
    } else {
        None
    };
    let username = if username_flag {
        Some(r.string()?)
    } else {
        None
    };
    let password = if password_flag {
        Some(r.binary()?)
    } else {
        None
    };
    Ok(Connect {
        version,
        clean_start,
        keep_alive,
        client_id,
        will,
        username,
        password,
        properties,
    })
}
