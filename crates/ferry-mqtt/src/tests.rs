use bytes::{Bytes, BytesMut};
use proptest::prelude::*;

use crate::*;

fn roundtrip(p: &Packet, v: Version) -> Packet {
    let mut buf = BytesMut::new();
    encode(p, v, &mut buf).unwrap();
    assert_eq!(
        buf.len(),
        encoded_len(p, v),
        "encoded_len agrees with encode"
    );
    let out = decode(&mut buf, v, u32::MAX).unwrap().unwrap();
    assert!(buf.is_empty());
    out
}

fn dec(bytes: &[u8], v: Version) -> Result<Option<Packet>, DecodeError> {
    let mut buf = BytesMut::from(bytes);
    decode(&mut buf, v, 1 << 20)
}

#[test]
fn connect_v5_with_will_and_properties_roundtrips() {
    let p = Packet::Connect(Box::new(Connect {
        version: Version::V5,
        clean_start: true,
        keep_alive: 30,
        client_id: "c1".into(),
        will: Some(Will {
            topic: "w".into(),
            payload: Bytes::from_static(b"bye"),
            qos: QoS::AtLeastOnce,
            retain: true,
            properties: Properties {
                will_delay_interval: Some(5),
                ..Default::default()
            },
        }),
        username: Some("u".into()),
        password: Some(Bytes::from_static(b"p")),
        properties: Properties {
            session_expiry_interval: Some(60),
            receive_maximum: Some(10),
            user_properties: vec![("k".into(), "v".into())],
            ..Default::default()
        },
    }));
    assert_eq!(roundtrip(&p, Version::V5), p);
}

#[test]
fn connect_versions_are_detected() {
    for v in [Version::V31, Version::V311, Version::V5] {
        let p = Packet::Connect(Box::new(Connect {
            version: v,
            clean_start: true,
            keep_alive: 0,
            client_id: "x".into(),
            will: None,
            username: None,
            password: None,
            properties: Properties::default(),
        }));
        // The connection's version is not known before CONNECT; the packet carries it.
        let mut buf = BytesMut::new();
        encode(&p, v, &mut buf).unwrap();
        let out = decode(&mut buf, Version::V311, 1 << 20).unwrap().unwrap();
        assert_eq!(out, p);
    }
}

#[test]
fn bad_connects_are_refused_with_the_right_reason() {
    // protocol level 6
    let e = dec(
        b"\x10\x0d\x00\x04MQTT\x06\x02\x00\x3c\x00\x01a",
        Version::V311,
    )
    .unwrap_err();
    assert_eq!(e, DecodeError::UnsupportedVersion(6));
    assert_eq!(e.reason_code(), reason::UNSUPPORTED_PROTOCOL_VERSION);
    // reserved flag
    let e = dec(
        b"\x10\x0d\x00\x04MQTT\x04\x03\x00\x3c\x00\x01a",
        Version::V311,
    )
    .unwrap_err();
    assert_eq!(e.reason_code(), reason::MALFORMED_PACKET);
    // unknown protocol name
    let e = dec(
        b"\x10\x0d\x00\x04MQXX\x04\x02\x00\x3c\x00\x01a",
        Version::V311,
    )
    .unwrap_err();
    assert_eq!(e, DecodeError::InvalidProtocolName);
}

#[test]
fn publish_validation() {
    // QoS 3
    assert!(matches!(
        dec(b"\x36\x03\x00\x01a", Version::V311),
        Err(DecodeError::Malformed(_))
    ));
    // DUP on QoS 0
    assert!(matches!(
        dec(b"\x38\x03\x00\x01a", Version::V311),
        Err(DecodeError::Malformed(_))
    ));
    // packet id 0 at QoS 1
    assert!(matches!(
        dec(b"\x32\x05\x00\x01a\x00\x00", Version::V311),
        Err(DecodeError::Malformed(_))
    ));
    // invalid UTF-8 topic
    assert!(matches!(
        dec(b"\x30\x03\x00\x01\xff", Version::V311),
        Err(DecodeError::Malformed(_))
    ));
    // v5: property not allowed in PUBLISH (session expiry 0x11)
    let e = dec(b"\x30\x09\x00\x01a\x05\x11\x00\x00\x00\x01", Version::V5).unwrap_err();
    assert_eq!(e.reason_code(), reason::MALFORMED_PACKET);
    // v5: duplicated property is a protocol error
    let e = dec(
        b"\x30\x0a\x00\x01a\x06\x23\x00\x01\x23\x00\x02",
        Version::V5,
    )
    .unwrap_err();
    assert_eq!(e.reason_code(), reason::PROTOCOL_ERROR);
}

#[test]
fn fixed_header_flags_are_checked() {
    // SUBSCRIBE must have flags 0b0010
    assert!(dec(b"\x80\x06\x00\x01\x00\x01a\x00", Version::V311).is_err());
    assert!(dec(b"\x82\x06\x00\x01\x00\x01a\x00", Version::V311).is_ok());
    // PUBREL must have flags 0b0010
    assert!(dec(b"\x60\x02\x00\x01", Version::V311).is_err());
    // reserved type 0
    assert!(dec(b"\x00\x00", Version::V311).is_err());
    // AUTH is not a 3.1.1 packet
    assert!(dec(b"\xf0\x00", Version::V311).is_err());
}

#[test]
fn oversize_frame_is_refused_from_the_header() {
    let mut buf = BytesMut::from(&b"\x30\xff\xff\x03"[..]);
    let e = decode(&mut buf, Version::V5, 1024).unwrap_err();
    assert!(matches!(e, DecodeError::TooLarge { max: 1024, .. }));
    assert_eq!(e.reason_code(), reason::PACKET_TOO_LARGE);
}

#[test]
fn varints() {
    assert_eq!(read_varint(&[0x00]).unwrap(), Some((0, 1)));
    assert_eq!(
        read_varint(&[0xff, 0xff, 0xff, 0x7f]).unwrap(),
        Some((268_435_455, 4))
    );
    assert!(read_varint(&[0xff, 0xff, 0xff, 0xff, 0x01]).is_err());
    assert_eq!(read_varint(&[0x80]).unwrap(), None);
    assert!(read_varint(&[0x80, 0x00]).is_err());
}

#[test]
fn partial_frames_wait_for_more() {
    let mut buf = BytesMut::from(&b"\x30\x05\x00\x01a"[..]);
    assert_eq!(decode(&mut buf, Version::V311, 1024).unwrap(), None);
    buf.extend_from_slice(b"hi");
    assert!(decode(&mut buf, Version::V311, 1024).unwrap().is_some());
}

#[test]
fn v3_encoding_maps_codes() {
    let p = Packet::ConnAck(ConnAck {
        session_present: false,
        code: reason::CLIENT_IDENTIFIER_NOT_VALID,
        properties: Properties::default(),
    });
    let mut buf = BytesMut::new();
    encode(&p, Version::V311, &mut buf).unwrap();
    assert_eq!(&buf[..], b"\x20\x02\x00\x02");
    let p = Packet::SubAck(SubAck {
        packet_id: 1,
        codes: vec![1, 0x8F],
        properties: Properties::default(),
    });
    let mut buf = BytesMut::new();
    encode(&p, Version::V311, &mut buf).unwrap();
    assert_eq!(&buf[..], b"\x90\x04\x00\x01\x01\x80");
}

fn arb_string() -> impl Strategy<Value = String> {
    "[a-z0-9/]{0,12}"
}

fn arb_props() -> impl Strategy<Value = Properties> {
    (
        proptest::option::of(0u8..=1),
        proptest::option::of(any::<u32>()),
        proptest::option::of(arb_string()),
        proptest::option::of(arb_string()),
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..8)),
        proptest::collection::vec(1u32..268_435_455, 0..3),
        proptest::option::of(1u16..),
        proptest::collection::vec((arb_string(), arb_string()), 0..3),
    )
        .prop_map(|(pfi, exp, ct, rt, cd, ids, alias, ups)| Properties {
            payload_format_indicator: pfi,
            message_expiry_interval: exp,
            content_type: ct,
            response_topic: rt,
            correlation_data: cd.map(Bytes::from),
            subscription_identifiers: ids,
            topic_alias: alias,
            user_properties: ups,
            ..Default::default()
        })
}

proptest! {
    #[test]
    fn publish_roundtrips(
        v5 in any::<bool>(),
        qos in 0u8..=2,
        retain in any::<bool>(),
        dup in any::<bool>(),
        topic in "[a-z/]{1,20}",
        pid in 1u16..,
        props in arb_props(),
        payload in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        let qos = QoS::from_u8(qos).unwrap();
        let v = if v5 { Version::V5 } else { Version::V311 };
        let p = Packet::Publish(Publish {
            dup: dup && qos != QoS::AtMostOnce,
            qos,
            retain,
            topic,
            packet_id: if qos == QoS::AtMostOnce { 0 } else { pid },
            properties: if v5 { props } else { Properties::default() },
            payload: Bytes::from(payload),
        });
        prop_assert_eq!(roundtrip(&p, v), p);
    }

    #[test]
    fn subscribe_roundtrips(
        filters in proptest::collection::vec(("[a-z+/]{1,10}", 0u8..=2, any::<bool>(), any::<bool>(), 0u8..=2), 1..5),
        pid in 1u16..,
    ) {
        let p = Packet::Subscribe(Subscribe {
            packet_id: pid,
            filters: filters.into_iter().map(|(f, q, nl, rap, rh)| (f, SubOptions {
                qos: QoS::from_u8(q).unwrap(), no_local: nl, retain_as_published: rap, retain_handling: rh,
            })).collect(),
            properties: Properties::default(),
        });
        prop_assert_eq!(roundtrip(&p, Version::V5), p);
    }

    #[test]
    fn acks_roundtrip(pid in 1u16.., code in prop_oneof![Just(0u8), Just(0x10u8), Just(0x80u8)], rs in proptest::option::of(arb_string())) {
        let a = Ack { packet_id: pid, code, properties: Properties { reason_string: rs, ..Default::default() } };
        for p in [Packet::PubAck(a.clone()), Packet::PubRec(a.clone()), Packet::PubRel(a.clone()), Packet::PubComp(a)] {
            prop_assert_eq!(roundtrip(&p, Version::V5), p);
        }
    }

    #[test]
    fn decoding_random_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200), v5 in any::<bool>()) {
        let mut buf = BytesMut::from(&bytes[..]);
        let v = if v5 { Version::V5 } else { Version::V311 };
        while let Ok(Some(_)) = decode(&mut buf, v, 1 << 16) {}
    }
}

proptest! {
    /// The load tools' fast paths agree with the codec: the header writer produces the bytes
    /// `encode` does, and `peek_frame` sees what `decode` sees.
    #[test]
    fn fast_publish_paths_agree_with_the_codec(
        v5 in any::<bool>(),
        qos in 0u8..=2,
        topic in "[a-z/]{1,20}",
        pid in 1u16..,
        props in arb_props(),
        payload in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        let qos = QoS::from_u8(qos).unwrap();
        let v = if v5 { Version::V5 } else { Version::V311 };
        let packet_id = if qos == QoS::AtMostOnce { 0 } else { pid };
        let plain = Publish {
            dup: false, qos, retain: false, topic: topic.clone(), packet_id,
            properties: Properties::default(), payload: Bytes::from(payload.clone()),
        };
        let mut want = BytesMut::new();
        encode(&Packet::Publish(plain), v, &mut want).unwrap();
        let mut got = BytesMut::new();
        fast::put_publish_header(&mut got, v, &topic, qos, packet_id, payload.len()).unwrap();
        got.extend_from_slice(&payload);
        prop_assert_eq!(&got, &want);
        let (mut ack, mut want_ack) = (BytesMut::new(), BytesMut::new());
        fast::put_subscriber_ack(&mut ack, qos, packet_id);
        match qos {
            QoS::AtMostOnce => {}
            QoS::AtLeastOnce => encode(&Packet::PubAck(Ack::new(packet_id, 0)), v, &mut want_ack).unwrap(),
            QoS::ExactlyOnce => encode(&Packet::PubRec(Ack::new(packet_id, 0)), v, &mut want_ack).unwrap(),
        }
        prop_assert_eq!(&ack, &want_ack);

        // With properties (v5), followed by a PINGRESP and half of another packet.
        let full = Publish {
            dup: false, qos, retain: false, topic, packet_id,
            properties: if v5 { props } else { Properties::default() },
            payload: Bytes::from(payload.clone()),
        };
        let mut buf = BytesMut::new();
        encode(&Packet::Publish(full), v, &mut buf).unwrap();
        let first = buf.len();
        encode(&Packet::PingResp, v, &mut buf).unwrap();
        buf.extend_from_slice(&want[..want.len() / 2]);
        let (len, view) = fast::peek_frame(&buf, v).unwrap().unwrap();
        prop_assert_eq!(len, first);
        prop_assert_eq!(view, Some(fast::PublishView { qos, packet_id, payload: &payload[..] }));
        prop_assert_eq!(fast::peek_frame(&buf[first..], v).unwrap(), Some((2, None)));
        prop_assert_eq!(fast::peek_frame(&buf[first + 2..], v).unwrap(), None);
    }

    #[test]
    fn peeking_at_random_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200), v5 in any::<bool>()) {
        let v = if v5 { Version::V5 } else { Version::V311 };
        let mut at = 0;
        while let Ok(Some((len, _))) = fast::peek_frame(&bytes[at..], v) {
            at += len;
        }
    }
}
