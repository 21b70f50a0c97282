//! Runtime values of rule SQL, with JSON conversion (keys keep their order).

use std::fmt;

use indexmap::IndexMap;
use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

pub type Map = IndexMap<String, Value>;

/// `Null` is a missing value (EMQX's `undefined`: an absent column or field, the SQL literal
/// `null`); `JsonNull` is a `null` that was in JSON data (EMQX's atom `null`). EMQX tells them
/// apart: `is_null` is true only for a missing value, `is_null_var` for both, and a JSON
/// `null` equals the string `'null'` while a missing value equals nothing but another one.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Value {
    #[default]
    Null,
    JsonNull,
    Bool(bool),
    Int(i64),
    /// An integer from JSON data that does not fit in 64 bits (never one that does). EMQX
    /// (Erlang) keeps such integers exact; so do we through decoding, selecting,
    /// comparing, `str` and encoding. Arithmetic on them is an overflow error, like 64-bit
    /// arithmetic that overflows. Beyond 128 bits a JSON integer becomes a float.
    BigInt(Box<i128>),
    Float(f64),
    Str(String),
    /// Bytes that are not UTF-8 text (e.g. from gzip, base64_decode, hexstr2bin).
    Bin(Vec<u8>),
    Array(Vec<Value>),
    Map(Map),
}

impl Value {
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::JsonNull => "null",
            Value::Bool(_) => "bool",
            Value::Int(_) | Value::BigInt(_) => "integer",
            Value::Float(_) => "float",
            Value::Str(_) => "string",
            Value::Bin(_) => "binary",
            Value::Array(_) => "array",
            Value::Map(_) => "map",
        }
    }

    /// A missing value (not a JSON `null`).
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// A missing value or a JSON `null`.
    pub fn is_null_or_json_null(&self) -> bool {
        matches!(self, Value::Null | Value::JsonNull)
    }

    /// Truthiness for WHERE / INCASE / CASE WHEN: only `true` (or the string "true") passes.
    pub fn is_true(&self) -> bool {
        match self {
            Value::Bool(b) => *b,
            Value::Str(s) => s == "true",
            _ => false,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::BigInt(i) => Some(**i as f64),
            Value::Float(f) => Some(*f),
            Value::Str(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    /// JSON text of the value.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "null".into())
    }

    /// Parses JSON text; `None` if it is not JSON. Integers beyond 64 bits stay exact
    /// ([`Value::BigInt`]): serde_json reads an integer literal beyond `u64` as a float, so
    /// when a parse meets an integral float that large, the text is parsed again with those
    /// literals quoted and marked (no cost for data without them).
    pub fn from_json(text: &[u8]) -> Option<Value> {
        let v: Value = serde_json::from_slice(text).ok()?;
        // A scalar is checked directly (the common case of a lazily decoded payload field
        // costs nothing more); a container asks the visitor's flag.
        let seen = match &v {
            Value::Float(f) => big_integral(*f),
            Value::Map(_) | Value::Array(_) => BIG_FLOAT_SEEN.with(|c| c.replace(false)),
            _ => false,
        };
        if !seen {
            return Some(v);
        }
        BIG_FLOAT_SEEN.with(|c| c.set(false));
        serde_json::from_slice(&mark_big_integers(text)).ok()
    }

    /// The value as text in string contexts (concatenation, `str`, templates), as EMQX's
    /// `emqx_utils_conv:bin/1` and `emqx_template:to_string/1` write it: strings as they
    /// are, a missing value as `undefined` (the atom's name), a JSON `null` as `null`,
    /// maps and arrays as JSON.
    pub fn to_text(&self) -> String {
        match self {
            Value::Str(s) => s.clone(),
            Value::Bin(b) => String::from_utf8_lossy(b).into_owned(),
            Value::Null => "undefined".into(),
            Value::JsonNull => "null".into(),
            Value::Float(f) => float_text(*f),
            other => other.to_json(),
        }
    }
}

thread_local! {
    /// Set by the JSON visitor when it reads an integral float beyond 64 bits (which may
    /// have been an integer literal serde_json could not hold).
    static BIG_FLOAT_SEEN: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// An integral float beyond 64-bit integers: maybe an integer literal serde_json could
/// not hold.
fn big_integral(f: f64) -> bool {
    f.abs() >= 9.2e18 && f.fract() == 0.0
}

/// What [`mark_big_integers`] puts before a quoted integer literal. A NUL cannot be in
/// JSON text unescaped, so a real string starts with it only if the data wrote `\u0000`.
const BIG_MARK: &str = "\u{0}ferry-bigint:";

/// The JSON text with every integer literal of 19 or more digits (outside strings) turned
/// into a marked string, which the visitor reads back as an exact integer.
fn mark_big_integers(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() + 64);
    let mut i = 0;
    let mut in_str = false;
    while i < text.len() {
        let c = text[i];
        if in_str {
            out.push(c);
            match c {
                b'\\' => {
                    if let Some(n) = text.get(i + 1) {
                        out.push(*n);
                    }
                    i += 2;
                    continue;
                }
                b'"' => in_str = false,
                _ => {}
            }
            i += 1;
            continue;
        }
        if c == b'"' {
            in_str = true;
            out.push(c);
            i += 1;
            continue;
        }
        if c == b'-' || c.is_ascii_digit() {
            let start = i;
            i += usize::from(c == b'-');
            let digits = i;
            while i < text.len() && text[i].is_ascii_digit() {
                i += 1;
            }
            let integral = !matches!(text.get(i), Some(b'.' | b'e' | b'E'));
            let lit = &text[start..i];
            if integral && i - digits >= 19 {
                out.extend_from_slice(b"\"\\u0000ferry-bigint:");
                out.extend_from_slice(lit);
                out.push(b'"');
            } else {
                out.extend_from_slice(lit);
            }
            continue;
        }
        out.push(c);
        i += 1;
    }
    out
}

/// A marked integer literal back to a value: exact if it fits in 128 bits.
fn big_integer(digits: &str) -> Value {
    match digits.parse::<i128>() {
        Ok(i) => Value::from_i128(i),
        Err(_) => digits.parse::<f64>().map_or(Value::Null, Value::Float),
    }
}

impl Value {
    /// An integer: `Int` when it fits in 64 bits, `BigInt` otherwise.
    pub fn from_i128(i: i128) -> Value {
        i64::try_from(i).map_or_else(|_| Value::BigInt(Box::new(i)), Value::Int)
    }
}

/// A float as text, as EMQX's `emqx_utils_conv:bin/1` writes it
/// (`float_to_binary(F, [{decimals, 10}, compact])`): at most 10 decimals, trailing zeros
/// dropped but one kept, so `0.1 + 0.2` is `"0.3"` and `1.0` is `"1.0"`.
pub(crate) fn float_text(f: f64) -> String {
    if !f.is_finite() {
        return format!("{f}");
    }
    // Fast path: below 2^16 a double is within 1e-11 of its shortest form, so when that
    // form has at most 10 decimals it is also what rounding to 10 decimals gives.
    if f.abs() < 65536.0 {
        let short = format_float(f);
        if short.split_once('.').is_some_and(|(_, d)| d.len() <= 10) {
            return short;
        }
    }
    let mut s = format!("{f:.10}");
    while s.ends_with('0') && !s.ends_with(".0") {
        s.pop();
    }
    if s == "-0.0" && f > -5e-11 {
        // -0.00000000001 rounds to "-0.0" in Erlang too; keep the sign it prints.
        return s;
    }
    s
}

/// Floats print like EMQX: shortest round-trip form, integral values with ".0".
pub(crate) fn format_float(f: f64) -> String {
    if f.is_finite() && f.fract() == 0.0 && f.abs() < 1e16 {
        format!("{f:.1}")
    } else {
        format!("{f}")
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Str(s.to_owned())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Str(s)
    }
}
impl Value {
    /// Bytes become a string when they are UTF-8, a binary otherwise.
    pub fn from_bytes(b: Vec<u8>) -> Value {
        match String::from_utf8(b) {
            Ok(s) => Value::Str(s),
            Err(e) => Value::Bin(e.into_bytes()),
        }
    }

    /// The bytes of a string or binary.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Str(s) => Some(s.as_bytes()),
            Value::Bin(b) => Some(b),
            _ => None,
        }
    }
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}
impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::Float(v)
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Bool(v)
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_text())
    }
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Null | Value::JsonNull => s.serialize_unit(),
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Int(i) => s.serialize_i64(*i),
            Value::BigInt(i) => s.serialize_i128(**i),
            Value::Float(f) if f.is_finite() => s.serialize_f64(*f),
            Value::Float(_) => s.serialize_unit(),
            Value::Str(v) => s.serialize_str(v),
            Value::Bin(b) => s.serialize_str(&String::from_utf8_lossy(b)),
            Value::Array(a) => {
                let mut seq = s.serialize_seq(Some(a.len()))?;
                for v in a {
                    seq.serialize_element(v)?;
                }
                seq.end()
            }
            Value::Map(m) => {
                let mut map = s.serialize_map(Some(m.len()))?;
                for (k, v) in m {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Value;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_unit<E>(self) -> Result<Value, E> {
                Ok(Value::JsonNull)
            }
            fn visit_none<E>(self) -> Result<Value, E> {
                Ok(Value::JsonNull)
            }
            fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
                Ok(Value::Bool(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
                Ok(Value::Int(v))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
                Ok(Value::from_i128(i128::from(v)))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
                if big_integral(v) {
                    BIG_FLOAT_SEEN.with(|c| c.set(true));
                }
                Ok(Value::Float(v))
            }
            fn visit_str<E>(self, v: &str) -> Result<Value, E> {
                Ok(match v.strip_prefix(BIG_MARK) {
                    Some(digits) => big_integer(digits),
                    None => Value::Str(v.to_owned()),
                })
            }
            fn visit_string<E>(self, v: String) -> Result<Value, E> {
                Ok(match v.strip_prefix(BIG_MARK) {
                    Some(digits) => big_integer(digits),
                    None => Value::Str(v),
                })
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Value, A::Error> {
                let mut out = Vec::with_capacity(a.size_hint().unwrap_or(0));
                while let Some(v) = a.next_element()? {
                    out.push(v);
                }
                Ok(Value::Array(out))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Value, A::Error> {
                let mut out = Map::with_capacity(a.size_hint().unwrap_or(0));
                while let Some((k, v)) = a.next_entry::<String, Value>()? {
                    out.insert(k, v);
                }
                Ok(Value::Map(out))
            }
        }
        d.deserialize_any(V)
    }
}
