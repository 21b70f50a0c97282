//! The stored form of a rendered Kafka record (versioned, little endian).

use super::*;

const VERSION: u8 = 1;

/// The stored form of a rendered record, all integers little endian:
/// `[version u8 = 1][received_ms i64][timestamp i64][has_partition u8][partition i32]?`
/// `[topic_len u16][topic][has_key u8][key_len u32][key]?[value_len u32][value]`
/// `[header_count u32]([name_len u32][name][value_len u32][value])*`.
/// `received_ms` is the MQTT arrival (ms since the epoch), for the latency histogram.
pub fn encode(r: &Record, received_ms: i64) -> Vec<u8> {
    let mut b = Vec::with_capacity(stored_len(r));
    encode_into(r, received_ms, &mut b);
    b
}

/// The length of [`encode`]'s output for `r`.
pub fn stored_len(r: &Record) -> usize {
    let hdr: usize = r.headers.iter().map(|(k, v)| 8 + k.len() + v.len()).sum();
    let key = r.key.as_ref().map_or(0, |k| 4 + k.len());
    let part = if r.partition.is_some() { 4 } else { 0 };
    1 + 8 + 8 + 1 + part + 2 + r.topic.len() + 1 + key + 4 + r.value.len() + 4 + hdr
}

/// [`encode`] appending to `b`.
pub fn encode_into(r: &Record, received_ms: i64, b: &mut Vec<u8>) {
    b.reserve(stored_len(r));
    b.push(VERSION);
    b.extend_from_slice(&received_ms.to_le_bytes());
    b.extend_from_slice(&r.timestamp.to_le_bytes());
    match r.partition {
        Some(p) => {
            b.push(1);
            b.extend_from_slice(&p.to_le_bytes());
        }
        None => b.push(0),
    }
    // Topics are at most 249 bytes (checked when rendering).
    b.extend_from_slice(&(r.topic.len() as u16).to_le_bytes());
    b.extend_from_slice(r.topic.as_bytes());
    match &r.key {
        Some(k) => {
            b.push(1);
            put_bytes(b, k);
        }
        None => b.push(0),
    }
    put_bytes(b, &r.value);
    b.extend_from_slice(&(r.headers.len() as u32).to_le_bytes());
    for (k, v) in &r.headers {
        put_bytes(b, k.as_bytes());
        put_bytes(b, v);
    }
}

fn put_bytes(b: &mut Vec<u8>, v: &[u8]) {
    b.extend_from_slice(&(v.len() as u32).to_le_bytes());
    b.extend_from_slice(v);
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.0.len() < n {
            return Err(format!(
                "truncated: wanted {n} bytes, {} left",
                self.0.len()
            ));
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    fn arr<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    fn bytes(&mut self) -> Result<Vec<u8>, String> {
        let n = u32::from_le_bytes(self.arr()?) as usize;
        Ok(self.take(n)?.to_vec())
    }
}

/// Reads back what [`encode`] wrote: the record and its MQTT arrival (ms since the epoch).
pub fn decode(bytes: &[u8]) -> Result<(Record, i64), String> {
    let mut r = Reader(bytes);
    let v = r.u8()?;
    if v != VERSION {
        return Err(format!("unknown record version {v}"));
    }
    let received_ms = i64::from_le_bytes(r.arr()?);
    let timestamp = i64::from_le_bytes(r.arr()?);
    let partition = match r.u8()? {
        0 => None,
        _ => Some(i32::from_le_bytes(r.arr()?)),
    };
    let n = u16::from_le_bytes(r.arr()?) as usize;
    let topic = String::from_utf8(r.take(n)?.to_vec()).map_err(|_| "topic is not UTF-8")?;
    let key = match r.u8()? {
        0 => None,
        _ => Some(r.bytes()?),
    };
    let value = r.bytes()?;
    let count = u32::from_le_bytes(r.arr()?);
    let mut headers = Vec::new();
    for _ in 0..count {
        let k = String::from_utf8(r.bytes()?).map_err(|_| "header name is not UTF-8")?;
        headers.push((k, r.bytes()?));
    }
    if !r.0.is_empty() {
        return Err(format!("{} bytes after the record", r.0.len()));
    }
    let age = Duration::from_millis(
        u64::try_from(ferry_broker::hook::now_ms().saturating_sub(received_ms)).unwrap_or(0),
    );
    let since = Instant::now().checked_sub(age).unwrap_or_else(Instant::now);
    Ok((
        Record {
            topic,
            key,
            value,
            timestamp,
            headers,
            partition,
            since,
        },
        received_ms,
    ))
}
