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
    // EMQX converts anything that is not a binary with `str/1` first.
    let t = a[0].to_text();
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
        // EMQX's emqx_utils_conv:int/1 floors a float: int(-1.5) = -2.
        Value::Float(f) if f.is_finite() && f.abs() < 9.2e18 => Ok(Value::Int(f.floor() as i64)),
        Value::Bool(b) => Ok(Value::Int(i64::from(*b))),
        Value::Str(s) => match s.trim().parse::<i64>() {
            Ok(i) => Ok(Value::Int(i)),
            Err(_) => match s.trim().parse::<f64>() {
                Ok(f) if f.is_finite() && f.abs() < 9.2e18 => Ok(Value::Int(f.floor() as i64)),
                _ => err(format!("int: cannot convert {s:?}")),
            },
        },
        other => err(format!("int: cannot convert {}", other.type_name())),
    }
}

/// `float(X)`, or `float(X, Decimals)` rounded to that many decimals.
pub(super) fn float(a: &[Value], _: &mut Env<'_>) -> R {
    // emqx_utils_conv:float/1: numbers and numeric strings.
    let x = match &a[0] {
        Value::Str(s) => match s.trim().parse::<f64>() {
            Ok(x) if x.is_finite() => x,
            _ => return err(format!("float: cannot convert {s:?}")),
        },
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
    Ok(Value::Bool(matches!(
        a[0],
        Value::Int(_) | Value::BigInt(_)
    )))
}
pub(super) fn is_float(a: &[Value], _: &mut Env<'_>) -> R {
    Ok(Value::Bool(matches!(a[0], Value::Float(_))))
}
pub(super) fn is_num(a: &[Value], _: &mut Env<'_>) -> R {
    Ok(Value::Bool(matches!(
        a[0],
        Value::Int(_) | Value::BigInt(_) | Value::Float(_)
    )))
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

/// `mput(Key, Value, Map)`: a flat key, never a path (`'a.b'` is one key).
pub(super) fn mput(a: &[Value], _: &mut Env<'_>) -> R {
    let key = text(&a[0], "mput")?;
    let mut m = as_map(&a[2], "mput")?;
    m.insert(key, a[1].clone());
    Ok(Value::Map(m))
}

/// `map_new()`.
pub(super) fn map_new(_: &[Value], _: &mut Env<'_>) -> R {
    Ok(Value::Map(Map::new()))
}

/// `map_size(Map)`: a map or a string holding a JSON object.
pub(super) fn map_size(a: &[Value], _: &mut Env<'_>) -> R {
    match &a[0] {
        Value::Null | Value::JsonNull => err("map_size: expected a map, got null"),
        v => Ok(Value::Int(as_map(v, "map_size")?.len() as i64)),
    }
}

/// `is_empty(X)`: an empty list, an empty string, or a map without keys.
pub(super) fn is_empty(a: &[Value], _: &mut Env<'_>) -> R {
    match &a[0] {
        Value::Array(l) => Ok(Value::Bool(l.is_empty())),
        Value::Str(s) if s.is_empty() => Ok(Value::Bool(true)),
        Value::Bin(b) if b.is_empty() => Ok(Value::Bool(true)),
        Value::Null | Value::JsonNull => err("is_empty: expected a map, list or string, got null"),
        v => Ok(Value::Bool(as_map(v, "is_empty")?.is_empty())),
    }
}

/// `bytesize(Bin)`: the size in bytes.
pub(super) fn bytesize(a: &[Value], _: &mut Env<'_>) -> R {
    match &a[0] {
        Value::Str(s) => Ok(Value::Int(s.len() as i64)),
        Value::Bin(b) => Ok(Value::Int(b.len() as i64)),
        other => err(format!(
            "bytesize: expected a string, got {}",
            other.type_name()
        )),
    }
}

/// `null()`: a missing value.
pub(super) fn null(_: &[Value], _: &mut Env<'_>) -> R {
    Ok(Value::Null)
}

/// `hash(Algorithm, Data)`: lower-case hex digest; md5, sha (sha1), sha224, sha256,
/// sha384, sha512.
pub(super) fn hash(a: &[Value], _: &mut Env<'_>) -> R {
    let alg = text(&a[0], "hash")?;
    let data = match &a[1] {
        Value::Null | Value::JsonNull => return err("hash: no data"),
        v => bytes(v, "hash")?,
    };
    let digest: Vec<u8> = match alg.as_str() {
        "md5" => md5::Md5::digest(&data).to_vec(),
        "sha" | "sha1" => sha1::Sha1::digest(&data).to_vec(),
        "sha224" => sha2::Sha224::digest(&data).to_vec(),
        "sha256" => sha2::Sha256::digest(&data).to_vec(),
        "sha384" => sha2::Sha384::digest(&data).to_vec(),
        "sha512" => sha2::Sha512::digest(&data).to_vec(),
        other => return err(format!("hash: unknown hash algorithm {other:?}")),
    };
    Ok(Value::Str(hex(&digest, false)))
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
        // EMQX: `length(List) when is_list(List)`; strings and maps are errors.
        other => err(format!(
            "length: expected an array, got {}",
            other.type_name()
        )),
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

/// The engine for base64 options `no_padding` and `urlsafe` (EMQX's base64_opts).
fn b64_engine(opts: &[Value], f: &str) -> Result<base64::engine::GeneralPurpose, EvalError> {
    use base64::engine::general_purpose as gp;
    let (mut pad, mut url) = (true, false);
    for o in opts {
        match text(o, f)?.as_str() {
            "no_padding" => pad = false,
            "urlsafe" => url = true,
            other => return err(format!("{f}: unknown option {other:?}")),
        }
    }
    Ok(match (url, pad) {
        (false, true) => gp::STANDARD,
        (false, false) => gp::STANDARD_NO_PAD,
        (true, true) => gp::URL_SAFE,
        (true, false) => gp::URL_SAFE_NO_PAD,
    })
}

fn binary_arg(v: &Value, f: &str) -> Result<Vec<u8>, EvalError> {
    match v {
        Value::Str(s) => Ok(s.as_bytes().to_vec()),
        Value::Bin(b) => Ok(b.clone()),
        other => err(format!("{f}: expected a string, got {}", other.type_name())),
    }
}

/// `base64_encode(Data[, Opt1[, Opt2]])`.
pub(super) fn base64_encode(a: &[Value], _: &mut Env<'_>) -> R {
    let e = b64_engine(&a[1..], "base64_encode")?;
    Ok(Value::Str(e.encode(binary_arg(&a[0], "base64_encode")?)))
}
/// `base64_decode(Data[, Opt1[, Opt2]])`.
pub(super) fn base64_decode(a: &[Value], _: &mut Env<'_>) -> R {
    let e = b64_engine(&a[1..], "base64_decode")?;
    match e.decode(binary_arg(&a[0], "base64_decode")?) {
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
/// `bin2hexstr(Bin[, Prefix])`: upper-case hex, after Prefix.
pub(super) fn bin2hexstr(a: &[Value], _: &mut Env<'_>) -> R {
    let h = hex(&binary_arg(&a[0], "bin2hexstr")?, true);
    match a.get(1) {
        None | Some(Value::Null) => Ok(Value::Str(h)),
        Some(Value::Str(p)) => Ok(Value::Str(format!("{p}{h}"))),
        Some(other) => err(format!("bin2hexstr: bad prefix {}", other.type_name())),
    }
}
/// `sqlserver_bin2hexstr(Bin)`: `bin2hexstr(Bin, '0x')`.
pub(super) fn sqlserver_bin2hexstr(a: &[Value], env: &mut Env<'_>) -> R {
    bin2hexstr(&[a[0].clone(), Value::from("0x")], env)
}
/// `hexstr2bin(Str[, Prefix])`: an odd number of digits reads as if a `0` led; a Prefix
/// must be there.
pub(super) fn hexstr2bin(a: &[Value], _: &mut Env<'_>) -> R {
    let mut t = match &a[0] {
        Value::Str(s) => s.clone(),
        other => {
            return err(format!(
                "hexstr2bin: expected a string, got {}",
                other.type_name()
            ));
        }
    };
    match a.get(1) {
        None | Some(Value::Null) => {}
        Some(Value::Str(p)) => match t.strip_prefix(p.as_str()) {
            Some(rest) => t = rest.to_owned(),
            None => return err("hexstr2bin: binary_prefix_unmatch"),
        },
        Some(other) => return err(format!("hexstr2bin: bad prefix {}", other.type_name())),
    }
    if t.len() % 2 != 0 {
        t.insert(0, '0');
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
/// `topic()` or `topic(N)`: the whole topic, or its Nth level (1-based).
pub(super) fn topic(a: &[Value], env: &mut Env<'_>) -> R {
    let Some(t) = env.input.topic() else {
        return Ok(Value::Null);
    };
    let Some(n) = a.first() else {
        return Ok(Value::from(t));
    };
    let n = int(n, "topic")?;
    Ok(match usize::try_from(n) {
        Ok(n) if n >= 1 => t
            .split('/')
            .nth(n - 1)
            .map_or(Value::Null, |l| Value::Str(l.to_owned())),
        _ => Value::Null,
    })
}

/// The message's own columns as zero-argument functions (EMQX's IoT functions).
fn column(env: &Env<'_>, name: &str) -> Value {
    env.input.column(name).unwrap_or(Value::Null)
}
pub(super) fn msgid(_: &[Value], env: &mut Env<'_>) -> R {
    Ok(column(env, "id"))
}
pub(super) fn qos(_: &[Value], env: &mut Env<'_>) -> R {
    Ok(column(env, "qos"))
}
pub(super) fn clientid(_: &[Value], env: &mut Env<'_>) -> R {
    Ok(column(env, "clientid"))
}
pub(super) fn username(_: &[Value], env: &mut Env<'_>) -> R {
    Ok(column(env, "username"))
}
pub(super) fn peerhost(_: &[Value], env: &mut Env<'_>) -> R {
    Ok(column(env, "peerhost"))
}
/// `flags()`: the flags map (empty when the input has none).
pub(super) fn flags(_: &[Value], env: &mut Env<'_>) -> R {
    Ok(match column(env, "flags") {
        Value::Null => Value::Map(Map::new()),
        v => v,
    })
}
/// `flag(Name)`: one flag.
pub(super) fn flag(a: &[Value], env: &mut Env<'_>) -> R {
    let name = text(&a[0], "flag")?;
    Ok(match column(env, "flags") {
        Value::Map(m) => m.get(&name).cloned().unwrap_or(Value::Null),
        _ => Value::Null,
    })
}
/// `payload()` or `payload('a.b')`: the payload, or a path into it decoded as JSON.
pub(super) fn payload(a: &[Value], env: &mut Env<'_>) -> R {
    let p = column(env, "payload");
    let Some(path) = a.first() else {
        return Ok(p);
    };
    let path = text(path, "payload")?;
    let Some(mut cur) = p.as_bytes().and_then(Value::from_json) else {
        return Ok(Value::Null);
    };
    for part in path.split('.') {
        cur = match cur {
            Value::Map(mut m) => m.swap_remove(part).unwrap_or(Value::Null),
            _ => return Ok(Value::Null),
        };
    }
    Ok(cur)
}
/// `eq(A, B)`: Erlang's `==` (no string-to-number reading, unlike `=`).
pub(super) fn eq(a: &[Value], _: &mut Env<'_>) -> R {
    Ok(Value::Bool(crate::eval::erlang_eq(&a[0], &a[1])))
}
