//! Encoding. Sizes are computed first so each packet is written in one pass, with no
//! intermediate buffer: the size also tells the caller whether the peer's Maximum Packet
//! Size allows it.

use bytes::{BufMut, BytesMut};

use crate::EncodeError;
use crate::decode::{varint_len, write_varint};
use crate::packet::*;
use crate::props;

pub(crate) const MAX_REMAINING: usize = 268_435_455;

fn str_len(s: &str) -> usize {
    2 + s.len()
}

fn put_str(dst: &mut BytesMut, s: &str) {
    dst.put_u16(s.len() as u16);
    dst.put_slice(s.as_bytes());
}

fn props_len(p: &Properties, v5: bool) -> usize {
    if v5 { props::section_len(p) } else { 0 }
}

/// An ack (PUBACK..PUBCOMP, DISCONNECT, AUTH) may omit reason and properties when they are
/// the defaults; returns (with_code, with_props).
fn ack_tail(code: u8, p: &Properties, v5: bool) -> (bool, bool) {
    if !v5 {
        return (false, false);
    }
    let with_props = *p != Properties::default();
    (code != 0 || with_props, with_props)
}

fn v3_connack_code(code: u8) -> u8 {
    use crate::reason::*;
    match code {
        SUCCESS => 0,
        UNSUPPORTED_PROTOCOL_VERSION => 1,
        CLIENT_IDENTIFIER_NOT_VALID => 2,
        SERVER_UNAVAILABLE | SERVER_BUSY => 3,
        BAD_USER_NAME_OR_PASSWORD => 4,
        NOT_AUTHORIZED | BANNED => 5,
        c if c <= 5 => c,
        _ => 3,
    }
}

fn body_len(p: &Packet, version: Version) -> usize {
    let v5 = version.is_v5();
    match p {
        Packet::Connect(c) => {
            let name = if c.version == Version::V31 { 6 } else { 4 };
            let v5 = c.version.is_v5();
            let mut n = 2 + name + 1 + 1 + 2 + props_len(&c.properties, v5) + str_len(&c.client_id);
            if let Some(w) = &c.will {
                n += props_len(&w.properties, v5) + str_len(&w.topic) + 2 + w.payload.len();
            }
            n += c.username.as_deref().map_or(0, str_len);
            n += c.password.as_ref().map_or(0, |p| 2 + p.len());
            n
        }
        Packet::ConnAck(c) => 2 + props_len(&c.properties, v5),
        Packet::Publish(p) => {
            str_len(&p.topic)
                + if p.qos == QoS::AtMostOnce { 0 } else { 2 }
                + props_len(&p.properties, v5)
                + p.payload.len()
        }
        Packet::PubAck(a) | Packet::PubRec(a) | Packet::PubRel(a) | Packet::PubComp(a) => {
            let (c, pr) = ack_tail(a.code, &a.properties, v5);
            2 + usize::from(c)
                + if pr {
                    props::section_len(&a.properties)
                } else {
                    0
                }
        }
        Packet::Subscribe(s) => {
            2 + props_len(&s.properties, v5)
                + s.filters.iter().map(|(f, _)| str_len(f) + 1).sum::<usize>()
        }
        Packet::SubAck(s) => 2 + props_len(&s.properties, v5) + s.codes.len(),
        Packet::Unsubscribe(u) => {
            2 + props_len(&u.properties, v5) + u.filters.iter().map(|f| str_len(f)).sum::<usize>()
        }
        Packet::UnsubAck(u) => {
            2 + if v5 {
                props::section_len(&u.properties) + u.codes.len()
            } else {
                0
            }
        }
        Packet::PingReq | Packet::PingResp => 0,
        Packet::Disconnect(d) => {
            let (c, pr) = ack_tail(d.code, &d.properties, v5);
            usize::from(c)
                + if pr {
                    props::section_len(&d.properties)
                } else {
                    0
                }
        }
        Packet::Auth(a) => {
            let (c, pr) = ack_tail(a.code, &a.properties, v5);
            usize::from(c)
                + if pr {
                    props::section_len(&a.properties)
                } else {
                    0
                }
        }
    }
}

/// Size of the whole encoded packet, fixed header included.
pub fn encoded_len(p: &Packet, version: Version) -> usize {
    let body = body_len(p, version);
    1 + varint_len(body as u32) + body
}

/// Appends the encoded packet to `dst`.
pub fn encode(p: &Packet, version: Version, dst: &mut BytesMut) -> Result<(), EncodeError> {
    let v5 = version.is_v5();
    let len = body_len(p, version);
    if len > MAX_REMAINING {
        return Err(EncodeError::TooLarge(len));
    }
    dst.reserve(len + 5);
    let header: u8 = match p {
        Packet::Connect(_) => 0x10,
        Packet::ConnAck(_) => 0x20,
        Packet::Publish(p) => {
            0x30 | (u8::from(p.dup) << 3) | ((p.qos as u8) << 1) | u8::from(p.retain)
        }
        Packet::PubAck(_) => 0x40,
        Packet::PubRec(_) => 0x50,
        Packet::PubRel(_) => 0x62,
        Packet::PubComp(_) => 0x70,
        Packet::Subscribe(_) => 0x82,
        Packet::SubAck(_) => 0x90,
        Packet::Unsubscribe(_) => 0xA2,
        Packet::UnsubAck(_) => 0xB0,
        Packet::PingReq => 0xC0,
        Packet::PingResp => 0xD0,
        Packet::Disconnect(_) => 0xE0,
        Packet::Auth(_) => 0xF0,
    };
    dst.put_u8(header);
    write_varint(dst, len as u32);
    match p {
        Packet::Connect(c) => {
            let v5 = c.version.is_v5();
            put_str(
                dst,
                if c.version == Version::V31 {
                    "MQIsdp"
                } else {
                    "MQTT"
                },
            );
            dst.put_u8(c.version.level());
            let mut flags = 0u8;
            if c.clean_start {
                flags |= 0x02;
            }
            if let Some(w) = &c.will {
                flags |= 0x04 | ((w.qos as u8) << 3) | if w.retain { 0x20 } else { 0 };
            }
            if c.password.is_some() {
                flags |= 0x40;
            }
            if c.username.is_some() {
                flags |= 0x80;
            }
            dst.put_u8(flags);
            dst.put_u16(c.keep_alive);
            if v5 {
                props::encode(&c.properties, dst);
            }
            put_str(dst, &c.client_id);
            if let Some(w) = &c.will {
                if v5 {
                    props::encode(&w.properties, dst);
                }
                put_str(dst, &w.topic);
                dst.put_u16(w.payload.len() as u16);
                dst.put_slice(&w.payload);
            }
            if let Some(u) = &c.username {
                put_str(dst, u);
            }
            if let Some(pw) = &c.password {
                dst.put_u16(pw.len() as u16);
                dst.put_slice(pw);
            }
        }
        Packet::ConnAck(c) => {
            dst.put_u8(u8::from(c.session_present));
            dst.put_u8(if v5 { c.code } else { v3_connack_code(c.code) });
            if v5 {
                props::encode(&c.properties, dst);
            }
        }
        Packet::Publish(p) => {
            put_str(dst, &p.topic);
            if p.qos != QoS::AtMostOnce {
                dst.put_u16(p.packet_id);
            }
            if v5 {
                props::encode(&p.properties, dst);
            }
            dst.put_slice(&p.payload);
        }
        Packet::PubAck(a) | Packet::PubRec(a) | Packet::PubRel(a) | Packet::PubComp(a) => {
            dst.put_u16(a.packet_id);
            let (c, pr) = ack_tail(a.code, &a.properties, v5);
            if c {
                dst.put_u8(a.code);
            }
            if pr {
                props::encode(&a.properties, dst);
            }
        }
        Packet::Subscribe(s) => {
            dst.put_u16(s.packet_id);
            if v5 {
                props::encode(&s.properties, dst);
            }
            for (f, o) in &s.filters {
                put_str(dst, f);
                let mut b = o.qos as u8;
                if v5 {
                    b |= u8::from(o.no_local) << 2
                        | u8::from(o.retain_as_published) << 3
                        | o.retain_handling << 4;
                }
                dst.put_u8(b);
            }
        }
        Packet::SubAck(s) => {
            dst.put_u16(s.packet_id);
            if v5 {
                props::encode(&s.properties, dst);
                dst.put_slice(&s.codes);
            } else {
                for &c in &s.codes {
                    dst.put_u8(if c <= 2 { c } else { 0x80 });
                }
            }
        }
        Packet::Unsubscribe(u) => {
            dst.put_u16(u.packet_id);
            if v5 {
                props::encode(&u.properties, dst);
            }
            for f in &u.filters {
                put_str(dst, f);
            }
        }
        Packet::UnsubAck(u) => {
            dst.put_u16(u.packet_id);
            if v5 {
                props::encode(&u.properties, dst);
                dst.put_slice(&u.codes);
            }
        }
        Packet::PingReq | Packet::PingResp => {}
        Packet::Disconnect(Disconnect { code, properties })
        | Packet::Auth(Auth { code, properties }) => {
            let (c, pr) = ack_tail(*code, properties, v5);
            if c {
                dst.put_u8(*code);
            }
            if pr {
                props::encode(properties, dst);
            }
        }
    }
    Ok(())
}
