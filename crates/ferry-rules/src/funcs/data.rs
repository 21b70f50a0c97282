//! Type conversion and checks, maps, arrays, hashes, encodings, compression and the rest.

use std::io::{Read, Write};

use base64::Engine as _;
use md5::Digest as _;

use super::{array, bytes, err, int, num, text};
use crate::error::EvalError;
use crate::eval::Env;
use crate::value::{Map, Value};

type R = Result<Value, EvalError>;

pub(super) fn str(a: &[Value], _: &mut Env<'_>) -> R {
    Ok(Value::Str(a[0].to_text()))
}

pub(super) fn str_utf16_le(a: &[Value], _: &mut Env<'_>) -> R {
    let t = text(&a[0], "str_utf16_le")?;
    Ok(Value::Bin(
        t.encode_utf16().flat_map(u16::to_le_bytes).collect(),
    ))
}

pub(super) fn bool(a: &[Value], _: &mut Env<'_>) -> R {
    match &a[0] {
        Value::Bool(b) => Ok(Value::Bool(*b)),
        Value::Int(1) => Ok(Value::Bool(true)),
        Value::Int(0) => Ok(Value::Bool(false)),
        Value::Str(s) if s == "true" => Ok(Value::Bool(true)),
        Value::Str(s) if s == "false" => Ok(Value::Bool(false)),
        other => err(format!("bool: cannot convert {}", other.to_text())),
    }
}

pub(super) fn int_conv(a: &[Value], _: &mut Env<'_>) -> R {
    match &a[0] {
        Value::Int(i) => Ok(Value::Int(*i)),
        Value::Float(f) if f.is_finite() => Ok(Value::Int(f.trunc() as i64)),
        Value::Bool(b) => Ok(Value::Int(i64::from(*b))),
        Value::Str(s) => match s.trim().parse::<i64>() {
            Ok(i) => Ok(Value::Int(i)),
            Err(_) => match s.trim().parse::<f64>() {
                Ok(f) if f.is_finite() => Ok(Value::Int(f.trunc() as i64)),
                _ => err(format!("int: cannot convert {s:?}")),
            },
        },
        other => err(format!("int: cannot convert {}", other.type_name())),
    }
}

/// `float(X)`, or `float(X, Decimals)` rounded to that many decimals.
pub(super) fn float(a: &[Value], _: &mut Env<'_>) -> R {
    let x = match &a[0] {
        Value::Bool(b) => f64::from(u8::from(*b)),
        v => num(v, "float")?,
    };
    match a.get(1) {
        None => Ok(Value::Float(x)),
        Some(d) => {
            let d = super::int(d, "float")?.clamp(0, 15) as i32;
            let p = 10f64.powi(d);
            Ok(Value::Float((x * p).round() / p))
        }
    }
}

pub(super) fn float2str(a: &[Value], _: &mut Env<'_>) -> R {
    let x = num(&a[0], "float2str")?;
    let p = super::int(&a[1], "float2str")?.clamp(0, 20) as usize;
    // Like Erlang's float_to_binary with {decimals, P}, compact: trailing zeros dropped.
    let s = format!("{x:.p$}");
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        s
    };
    Ok(Value::Str(s))
}

/// `map(X)`: a map as is, or a JSON object text decoded.
pub(super) fn map(a: &[Value], _: &mut Env<'_>) -> R {
    match &a[0] {
        Value::Map(m) => Ok(Value::Map(m.clone())),
        v => match v.as_bytes().and_then(Value::from_json) {
            Some(Value::Map(m)) => Ok(Value::Map(m)),
            _ => err(format!("map: cannot convert {}", v.type_name())),
        },
    }
}

pub(super) fn is_null(a: &[Value], _: &mut Env<'_>) -> R {
    Ok(Value::Bool(a[0].is_null()))
}
pub(super) fn is_not_null(a: &[Value], _: &mut Env<'_>) -> R {
    Ok(Value::Bool(!a[0].is_null()))
}
/// `is_null_var`: also true for a JSON `null`.
pub(super) fn is_null_var(a: &[Value], _: &mut Env<'_>) -> R {
    Ok(Value::Bool(a[0].is_null_or_json_null()))
}
pub(super) fn is_not_null_var(a: &[Value], _: &mut Env<'_>) -> R {
    Ok(Value::Bool(!a[0].is_null_or_json_null()))
}
pub(super) fn is_str(a: &[Value], _: &mut Env<'_>) -> R {
    Ok(Value::Bool(matches!(a[0], Value::Str(_) | Value::Bin(_))))
}
pub(super) fn is_bool(a: &[Value], _: &mut Env<'_>) -> R {
    Ok(Value::Bool(matches!(a[0], Value::Bool(_))))
}
pub(super) fn is_int(a: &[Value], _: &mut Env<'_>) -> R {
    Ok(Value::Bool(matches!(a[0], Value::Int(_))))
}
pub(super) fn is_float(a: &[Value], _: &mut Env<'_>) -> R {
    Ok(Value::Bool(matches!(a[0], Value::Float(_))))
}
pub(super) fn is_num(a: &[Value], _: &mut Env<'_>) -> R {
    Ok(Value::Bool(matches!(a[0], Value::Int(_) | Value::Float(_))))
}
pub(super) fn is_map(a: &[Value], _: &mut Env<'_>) -> R {
    Ok(Value::Bool(matches!(a[0], Value::Map(_))))
}
pub(super) fn is_array(a: &[Value], _: &mut Env<'_>) -> R {
    Ok(Value::Bool(matches!(a[0], Value::Array(_))))
}

fn as_map(v: &Value, f: &str) -> Result<Map, EvalError> {
    match v {
        Value::Map(m) => Ok(m.clone()),
        Value::Null => Ok(Map::new()),
        other => match other.as_bytes().and_then(Value::from_json) {
            Some(Value::Map(m)) => Ok(m),
            _ => err(format!("{f}: expected a map, got {}", other.type_name())),
        },
    }
}

/// `map_get(Key, Map[, Default])`; Key may be a path `'a.b'`.
pub(super) fn map_get(a: &[Value], _: &mut Env<'_>) -> R {
    let key = text(&a[0], "map_get")?;
    let m = as_map(&a[1], "map_get")?;
    let mut cur = Value::Map(m);
    for part in key.split('.') {
        cur = match cur {
            Value::Map(mut m) => m.swap_remove(part).unwrap_or(Value::Null),
            _ => Value::Null,
        };
    }
    Ok(match (cur, a.get(2)) {
        (Value::Null, Some(d)) => d.clone(),
        (v, _) => v,
    })
}

/// `mget(Key, Map[, Default])`: like map_get, without path splitting.
pub(super) fn mget(a: &[Value], _: &mut Env<'_>) -> R {
    let key = text(&a[0], "mget")?;
    let m = as_map(&a[1], "mget")?;
    Ok(match (m.get(&key), a.get(2)) {
        (Some(v), _) => v.clone(),
        (None, Some(d)) => d.clone(),
        (None, None) => Value::Null,
    })
}

/// `map_put(Key, Value, Map)`; Key may be a path `'a.b'`.
pub(super) fn map_put(a: &[Value], _: &mut Env<'_>) -> R {
    let key = text(&a[0], "map_put")?;
    let mut m = as_map(&a[2], "map_put")?;
    let parts: Vec<&str> = key.split('.').collect();
    crate::rule::put_path(&mut m, &parts, a[1].clone());
    Ok(Value::Map(m))
}

pub(super) fn map_keys(a: &[Value], _: &mut Env<'_>) -> R {
    Ok(Value::Array(
        as_map(&a[0], "map_keys")?
            .into_keys()
            .map(Value::Str)
            .collect(),
    ))
}
pub(super) fn map_values(a: &[Value], _: &mut Env<'_>) -> R {
    Ok(Value::Array(
        as_map(&a[0], "map_values")?.into_values().collect(),
    ))
}
pub(super) fn map_to_entries(a: &[Value], _: &mut Env<'_>) -> R {
    Ok(Value::Array(
        as_map(&a[0], "map_to_entries")?
            .into_iter()
            .map(|(k, v)| {
                Value::Map(Map::from_iter([
                    ("key".to_owned(), Value::Str(k)),
                    ("value".to_owned(), v),
                ]))
            })
            .collect(),
    ))
}

fn pos(len: usize, n: i64, f: &str) -> Result<usize, EvalError> {
    if n >= 1 && (n as usize) <= len {
        Ok(n as usize - 1)
    } else {
        err(format!("{f}: index {n} out of range 1..{len}"))
    }
}

/// `nth(N, Array)`, 1-based.
pub(super) fn nth(a: &[Value], _: &mut Env<'_>) -> R {
    let arr = array(&a[1], "nth")?;
    Ok(arr[pos(arr.len(), int(&a[0], "nth")?, "nth")?].clone())
}

pub(super) fn length(a: &[Value], _: &mut Env<'_>) -> R {
    match &a[0] {
        Value::Array(x) => Ok(Value::Int(x.len() as i64)),
        Value::Map(m) => Ok(Value::Int(m.len() as i64)),
        other => Ok(Value::Int(text(other, "length")?.chars().count() as i64)),
    }
}

/// `sublist(Len, Array)` or `sublist(Start, Len, Array)` (Start 1-based).
pub(super) fn sublist(a: &[Value], _: &mut Env<'_>) -> R {
    let (start, len, arr) = if a.len() == 2 {
        (1, int(&a[0], "sublist")?, array(&a[1], "sublist")?)
    } else {
        (
            int(&a[0], "sublist")?,
            int(&a[1], "sublist")?,
            array(&a[2], "sublist")?,
        )
    };
    if start < 1 || len < 0 {
        return err("sublist: start must be >= 1 and length >= 0");
    }
    let s = (start as usize - 1).min(arr.len());
    let e = (s + len as usize).min(arr.len());
    Ok(Value::Array(arr[s..e].to_vec()))
}

pub(super) fn first(a: &[Value], _: &mut Env<'_>) -> R {
    array(&a[0], "first")?
        .first()
        .cloned()
        .ok_or_else(|| EvalError::new("first: empty array"))
}
pub(super) fn last(a: &[Value], _: &mut Env<'_>) -> R {
    array(&a[0], "last")?
        .last()
        .cloned()
        .ok_or_else(|| EvalError::new("last: empty array"))
}
pub(super) fn contains(a: &[Value], _: &mut Env<'_>) -> R {
    Ok(Value::Bool(
        array(&a[1], "contains")?.iter().any(|x| *x == a[0]),
    ))
}

fn hex(b: &[u8], upper: bool) -> String {
    let digits: &[u8; 16] = if upper {
        b"0123456789ABCDEF"
    } else {
        b"0123456789abcdef"
    };
    let mut s = String::with_capacity(b.len() * 2);
    for &x in b {
        s.push(digits[usize::from(x >> 4)] as char);
        s.push(digits[usize::from(x & 15)] as char);
    }
    s
}

pub(super) fn md5(a: &[Value], _: &mut Env<'_>) -> R {
    Ok(Value::Str(hex(
        &md5::Md5::digest(bytes(&a[0], "md5")?),
        false,
    )))
}
pub(super) fn sha(a: &[Value], _: &mut Env<'_>) -> R {
    Ok(Value::Str(hex(
        &sha1::Sha1::digest(bytes(&a[0], "sha")?),
        false,
    )))
}
pub(super) fn sha256(a: &[Value], _: &mut Env<'_>) -> R {
    Ok(Value::Str(hex(
        &sha2::Sha256::digest(bytes(&a[0], "sha256")?),
        false,
    )))
}

pub(super) fn base64_encode(a: &[Value], _: &mut Env<'_>) -> R {
    Ok(Value::Str(
        base64::engine::general_purpose::STANDARD.encode(bytes(&a[0], "base64_encode")?),
    ))
}
pub(super) fn base64_decode(a: &[Value], _: &mut Env<'_>) -> R {
    match base64::engine::general_purpose::STANDARD.decode(bytes(&a[0], "base64_decode")?) {
        Ok(b) => Ok(Value::from_bytes(b)),
        Err(e) => err(format!("base64_decode: {e}")),
    }
}
pub(super) fn json_encode(a: &[Value], _: &mut Env<'_>) -> R {
    Ok(Value::Str(a[0].to_json()))
}
pub(super) fn json_decode(a: &[Value], _: &mut Env<'_>) -> R {
    let b = bytes(&a[0], "json_decode")?;
    Value::from_json(&b).ok_or_else(|| EvalError::new("json_decode: not valid JSON"))
}
pub(super) fn bin2hexstr(a: &[Value], _: &mut Env<'_>) -> R {
    Ok(Value::Str(hex(&bytes(&a[0], "bin2hexstr")?, true)))
}
pub(super) fn hexstr2bin(a: &[Value], _: &mut Env<'_>) -> R {
    let t = text(&a[0], "hexstr2bin")?;
    if t.len() % 2 != 0 {
        return err("hexstr2bin: odd number of hex digits");
    }
    let out: Option<Vec<u8>> = (0..t.len())
        .step_by(2)
        .map(|i| t.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
        .collect();
    out.map(Value::from_bytes)
        .ok_or_else(|| EvalError::new("hexstr2bin: not a hex string"))
}

fn compress<W: Write>(mut enc: W, data: &[u8], f: &str) -> Result<W, EvalError> {
    enc.write_all(data)
        .map_err(|e| EvalError::new(format!("{f}: {e}")))?;
    Ok(enc)
}

fn inflate<Rd: Read>(mut dec: Rd, f: &str) -> R {
    let mut out = Vec::new();
    // Bounded: a small input must not expand into unbounded memory.
    dec.by_ref()
        .take(64 << 20)
        .read_to_end(&mut out)
        .map_err(|e| EvalError::new(format!("{f}: {e}")))?;
    Ok(Value::from_bytes(out))
}

pub(super) fn gzip(a: &[Value], _: &mut Env<'_>) -> R {
    let enc = compress(
        flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default()),
        &bytes(&a[0], "gzip")?,
        "gzip",
    )?;
    enc.finish()
        .map(Value::Bin)
        .map_err(|e| EvalError::new(format!("gzip: {e}")))
}
pub(super) fn gunzip(a: &[Value], _: &mut Env<'_>) -> R {
    let b = bytes(&a[0], "gunzip")?;
    inflate(flate2::read::GzDecoder::new(&b[..]), "gunzip")
}
pub(super) fn zip(a: &[Value], _: &mut Env<'_>) -> R {
    let enc = compress(
        flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default()),
        &bytes(&a[0], "zip")?,
        "zip",
    )?;
    enc.finish()
        .map(Value::Bin)
        .map_err(|e| EvalError::new(format!("zip: {e}")))
}
pub(super) fn unzip(a: &[Value], _: &mut Env<'_>) -> R {
    let b = bytes(&a[0], "unzip")?;
    inflate(flate2::read::DeflateDecoder::new(&b[..]), "unzip")
}
pub(super) fn zip_compress(a: &[Value], _: &mut Env<'_>) -> R {
    let enc = compress(
        flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default()),
        &bytes(&a[0], "zip_compress")?,
        "zip_compress",
    )?;
    enc.finish()
        .map(Value::Bin)
        .map_err(|e| EvalError::new(format!("zip_compress: {e}")))
}
pub(super) fn zip_uncompress(a: &[Value], _: &mut Env<'_>) -> R {
    let b = bytes(&a[0], "zip_uncompress")?;
    inflate(flate2::read::ZlibDecoder::new(&b[..]), "zip_uncompress")
}

fn uuid() -> [u8; 16] {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    b
}

pub(super) fn uuid_v4(_: &[Value], _: &mut Env<'_>) -> R {
    let h = hex(&uuid(), false);
    Ok(Value::Str(format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )))
}
pub(super) fn uuid_v4_no_hyphen(_: &[Value], _: &mut Env<'_>) -> R {
    Ok(Value::Str(hex(&uuid(), false)))
}

fn items(a: &[Value]) -> &[Value] {
    match a {
        [Value::Array(x)] => x,
        _ => a,
    }
}

/// The first argument that is not null (`coalesce([A, B])` works too).
pub(super) fn coalesce(a: &[Value], _: &mut Env<'_>) -> R {
    Ok(items(a)
        .iter()
        .find(|v| !v.is_null())
        .cloned()
        .unwrap_or(Value::Null))
}
/// The first argument that is neither null nor an empty string.
pub(super) fn coalesce_ne(a: &[Value], _: &mut Env<'_>) -> R {
    Ok(items(a)
        .iter()
        .find(|v| !v.is_null() && !matches!(v, Value::Str(s) if s.is_empty()))
        .cloned()
        .unwrap_or(Value::Null))
}

fn topic_entries(v: &Value, f: &str) -> Result<Vec<(String, Option<i64>)>, EvalError> {
    array(v, f)?
        .iter()
        .map(|e| match e {
            Value::Map(m) => {
                let t = m.get("topic").map(Value::to_text).unwrap_or_default();
                let q = m.get("qos").and_then(|q| super::int(q, f).ok());
                Ok((t, q))
            }
            other => Ok((other.to_text(), None)),
        })
        .collect()
}

fn topic_check(a: &[Value], f: &str, hit: fn(&str, &str) -> bool) -> R {
    let entries = topic_entries(&a[0], f)?;
    let topic = text(&a[1], f)?;
    let qos = match a.get(2) {
        Some(q) => Some(super::int(q, f)?),
        None => None,
    };
    Ok(Value::Bool(entries.iter().any(|(t, q)| {
        hit(t, &topic) && (qos.is_none() || *q == qos)
    })))
}

/// `contains_topic(TopicFilters, Topic[, QoS])`: the list holds exactly this topic (filter).
pub(super) fn contains_topic(a: &[Value], _: &mut Env<'_>) -> R {
    topic_check(a, "contains_topic", |t, topic| t == topic)
}
/// `contains_topic_match(TopicFilters, Topic[, QoS])`: a filter in the list matches Topic.
pub(super) fn contains_topic_match(a: &[Value], _: &mut Env<'_>) -> R {
    topic_check(a, "contains_topic_match", |t, topic| {
        ferry_mqtt::topic::matches(t, topic)
    })
}

/// `topic(N)`: level N (1-based) of the message's topic, or null.
pub(super) fn topic(a: &[Value], env: &mut Env<'_>) -> R {
    let n = int(&a[0], "topic")?;
    let Some(t) = env.input.topic() else {
        return Ok(Value::Null);
    };
    Ok(match usize::try_from(n) {
        Ok(n) if n >= 1 => t
            .split('/')
            .nth(n - 1)
            .map_or(Value::Null, |l| Value::Str(l.to_owned())),
        _ => Value::Null,
    })
}
