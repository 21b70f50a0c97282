//! MQTT 5 property section: decoding with per-packet validation, size computation, encoding.

use bytes::{BufMut, Bytes, BytesMut};

use crate::decode::{Reader, varint_len, write_varint};
use crate::packet::Properties;
use crate::{DecodeError, DecodeError::Malformed, DecodeError::Protocol};

/// Which packet a property section belongs to; decides which identifiers are allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ctx {
    Connect,
    ConnAck,
    Publish,
    Will,
    Ack,
    Subscribe,
    SubAck,
    Unsubscribe,
    Disconnect,
    Auth,
}

fn allowed(id: u8, ctx: Ctx) -> bool {
    use Ctx::*;
    match id {
        0x01..=0x03 | 0x08 | 0x09 => matches!(ctx, Publish | Will),
        0x0B => matches!(ctx, Publish | Subscribe),
        0x11 => matches!(ctx, Connect | ConnAck | Disconnect),
        0x12 | 0x13 | 0x1A | 0x24 | 0x25 | 0x28 | 0x29 | 0x2A => ctx == ConnAck,
        0x15 | 0x16 => matches!(ctx, Connect | ConnAck | Auth),
        0x17 | 0x19 => ctx == Connect,
        0x18 => ctx == Will,
        0x1C => matches!(ctx, ConnAck | Disconnect),
        0x1F => matches!(ctx, ConnAck | Ack | SubAck | Disconnect | Auth),
        0x21 | 0x22 | 0x27 => matches!(ctx, Connect | ConnAck),
        0x23 => ctx == Publish,
        0x26 => true,
        _ => false,
    }
}

fn set_once<T>(slot: &mut Option<T>, v: T) -> Result<(), DecodeError> {
    if slot.is_some() {
        return Err(Protocol("property included more than once"));
    }
    *slot = Some(v);
    Ok(())
}

fn bool_byte(v: u8, what: &'static str) -> Result<u8, DecodeError> {
    if v > 1 {
        return Err(Protocol(what));
    }
    Ok(v)
}

pub(crate) fn decode(r: &mut Reader, ctx: Ctx) -> Result<Properties, DecodeError> {
    let len = r.varint()? as usize;
    let mut r = r.sub(len)?;
    let mut p = Properties::default();
    while r.remaining() > 0 {
        let id = r.varint()?;
        let id = u8::try_from(id).map_err(|_| Malformed("unknown property identifier"))?;
        if !allowed(id, ctx) {
            return Err(Malformed("property not allowed in this packet"));
        }
        match id {
            0x01 => set_once(
                &mut p.payload_format_indicator,
                bool_byte(r.u8()?, "invalid payload format indicator")?,
            )?,
            0x02 => set_once(&mut p.message_expiry_interval, r.u32()?)?,
            0x03 => set_once(&mut p.content_type, r.string()?)?,
            0x08 => set_once(&mut p.response_topic, r.string()?)?,
            0x09 => set_once(&mut p.correlation_data, r.binary()?)?,
            0x0B => {
                let v = r.varint()?;
                if v == 0 {
                    return Err(Protocol("subscription identifier 0"));
                }
                p.subscription_identifiers.push(v);
            }
            0x11 => set_once(&mut p.session_expiry_interval, r.u32()?)?,
            0x12 => set_once(&mut p.assigned_client_identifier, r.string()?)?,
            0x13 => set_once(&mut p.server_keep_alive, r.u16()?)?,
            0x15 => set_once(&mut p.authentication_method, r.string()?)?,
            0x16 => set_once(&mut p.authentication_data, r.binary()?)?,
            0x17 => set_once(
                &mut p.request_problem_information,
                bool_byte(r.u8()?, "invalid request problem information")?,
            )?,
            0x18 => set_once(&mut p.will_delay_interval, r.u32()?)?,
            0x19 => set_once(
                &mut p.request_response_information,
                bool_byte(r.u8()?, "invalid request response information")?,
            )?,
            0x1A => set_once(&mut p.response_information, r.string()?)?,
            0x1C => set_once(&mut p.server_reference, r.string()?)?,
            0x1F => set_once(&mut p.reason_string, r.string()?)?,
            0x21 => {
                let v = r.u16()?;
                if v == 0 {
                    return Err(Protocol("receive maximum 0"));
                }
                set_once(&mut p.receive_maximum, v)?
            }
            0x22 => set_once(&mut p.topic_alias_maximum, r.u16()?)?,
            0x23 => set_once(&mut p.topic_alias, r.u16()?)?,
            0x24 => set_once(
                &mut p.maximum_qos,
                bool_byte(r.u8()?, "invalid maximum QoS")?,
            )?,
            0x25 => set_once(
                &mut p.retain_available,
                bool_byte(r.u8()?, "invalid retain available")?,
            )?,
            0x26 => {
                let k = r.string()?;
                let v = r.string()?;
                p.user_properties.push((k, v));
            }
            0x27 => {
                let v = r.u32()?;
                if v == 0 {
                    return Err(Protocol("maximum packet size 0"));
                }
                set_once(&mut p.maximum_packet_size, v)?
            }
            0x28 => set_once(
                &mut p.wildcard_subscription_available,
                bool_byte(r.u8()?, "invalid flag")?,
            )?,
            0x29 => set_once(
                &mut p.subscription_identifier_available,
                bool_byte(r.u8()?, "invalid flag")?,
            )?,
            0x2A => set_once(
                &mut p.shared_subscription_available,
                bool_byte(r.u8()?, "invalid flag")?,
            )?,
            _ => return Err(Malformed("unknown property identifier")),
        }
    }
    Ok(p)
}

fn s(v: &Option<String>) -> usize {
    v.as_ref().map_or(0, |s| 3 + s.len())
}
fn b(v: &Option<Bytes>) -> usize {
    v.as_ref().map_or(0, |s| 3 + s.len())
}
fn n<T>(v: &Option<T>, size: usize) -> usize {
    if v.is_some() { 1 + size } else { 0 }
}

/// Length of the property section content (without its own length prefix).
pub(crate) fn content_len(p: &Properties) -> usize {
    n(&p.payload_format_indicator, 1)
        + n(&p.message_expiry_interval, 4)
        + s(&p.content_type)
        + s(&p.response_topic)
        + b(&p.correlation_data)
        + p.subscription_identifiers
            .iter()
            .map(|&v| 1 + varint_len(v))
            .sum::<usize>()
        + n(&p.session_expiry_interval, 4)
        + s(&p.assigned_client_identifier)
        + n(&p.server_keep_alive, 2)
        + s(&p.authentication_method)
        + b(&p.authentication_data)
        + n(&p.request_problem_information, 1)
        + n(&p.will_delay_interval, 4)
        + n(&p.request_response_information, 1)
        + s(&p.response_information)
        + s(&p.server_reference)
        + s(&p.reason_string)
        + n(&p.receive_maximum, 2)
        + n(&p.topic_alias_maximum, 2)
        + n(&p.topic_alias, 2)
        + n(&p.maximum_qos, 1)
        + n(&p.retain_available, 1)
        + p.user_properties
            .iter()
            .map(|(k, v)| 5 + k.len() + v.len())
            .sum::<usize>()
        + n(&p.maximum_packet_size, 4)
        + n(&p.wildcard_subscription_available, 1)
        + n(&p.subscription_identifier_available, 1)
        + n(&p.shared_subscription_available, 1)
}

/// Length of the whole section including the length prefix.
pub(crate) fn section_len(p: &Properties) -> usize {
    let c = content_len(p);
    varint_len(c as u32) + c
}

fn put_str(dst: &mut BytesMut, id: u8, v: &Option<String>) {
    if let Some(v) = v {
        dst.put_u8(id);
        dst.put_u16(v.len() as u16);
        dst.put_slice(v.as_bytes());
    }
}
fn put_bin(dst: &mut BytesMut, id: u8, v: &Option<Bytes>) {
    if let Some(v) = v {
        dst.put_u8(id);
        dst.put_u16(v.len() as u16);
        dst.put_slice(v);
    }
}
fn put_u8(dst: &mut BytesMut, id: u8, v: Option<u8>) {
    if let Some(v) = v {
        dst.put_u8(id);
        dst.put_u8(v);
    }
}
fn put_u16(dst: &mut BytesMut, id: u8, v: Option<u16>) {
    if let Some(v) = v {
        dst.put_u8(id);
        dst.put_u16(v);
    }
}
fn put_u32(dst: &mut BytesMut, id: u8, v: Option<u32>) {
    if let Some(v) = v {
        dst.put_u8(id);
        dst.put_u32(v);
    }
}

pub(crate) fn encode(p: &Properties, dst: &mut BytesMut) {
    write_varint(dst, content_len(p) as u32);
    put_u8(dst, 0x01, p.payload_format_indicator);
    put_u32(dst, 0x02, p.message_expiry_interval);
    put_str(dst, 0x03, &p.content_type);
    put_str(dst, 0x08, &p.response_topic);
    put_bin(dst, 0x09, &p.correlation_data);
    for &id in &p.subscription_identifiers {
        dst.put_u8(0x0B);
        write_varint(dst, id);
    }
    put_u32(dst, 0x11, p.session_expiry_interval);
    put_str(dst, 0x12, &p.assigned_client_identifier);
    put_u16(dst, 0x13, p.server_keep_alive);
    put_str(dst, 0x15, &p.authentication_method);
    put_bin(dst, 0x16, &p.authentication_data);
    put_u8(dst, 0x17, p.request_problem_information);
    put_u32(dst, 0x18, p.will_delay_interval);
    put_u8(dst, 0x19, p.request_response_information);
    put_str(dst, 0x1A, &p.response_information);
    put_str(dst, 0x1C, &p.server_reference);
    put_str(dst, 0x1F, &p.reason_string);
    put_u16(dst, 0x21, p.receive_maximum);
    put_u16(dst, 0x22, p.topic_alias_maximum);
    put_u16(dst, 0x23, p.topic_alias);
    put_u8(dst, 0x24, p.maximum_qos);
    put_u8(dst, 0x25, p.retain_available);
    for (k, v) in &p.user_properties {
        dst.put_u8(0x26);
        dst.put_u16(k.len() as u16);
        dst.put_slice(k.as_bytes());
        dst.put_u16(v.len() as u16);
        dst.put_slice(v.as_bytes());
    }
    put_u32(dst, 0x27, p.maximum_packet_size);
    put_u8(dst, 0x28, p.wildcard_subscription_available);
    put_u8(dst, 0x29, p.subscription_identifier_available);
    put_u8(dst, 0x2A, p.shared_subscription_available);
}
