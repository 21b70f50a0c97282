//! Feeds arbitrary bytes to the MQTT decoder as 3.1.1 and as 5.0: it must never panic,
//! and whatever it decodes must encode and decode back to the same packet.
#![no_main]

use bytes::BytesMut;
use ferry_mqtt::{Version, decode, encode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for v in [Version::V311, Version::V5] {
        let mut buf = BytesMut::from(data);
        while let Ok(Some(p)) = decode(&mut buf, v, 1 << 20) {
            // CONNECT carries its own version.
            let ver = match &p {
                ferry_mqtt::Packet::Connect(c) => c.version,
                _ => v,
            };
            let mut out = BytesMut::new();
            if encode(&p, ver, &mut out).is_ok() {
                let again = decode(&mut out, ver, u32::MAX);
                assert_eq!(again.ok().flatten().as_ref(), Some(&p), "re-decoding an encoded packet");
            }
        }
    }
});
