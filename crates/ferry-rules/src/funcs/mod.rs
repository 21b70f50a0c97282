//! Built-in functions, with EMQX's names, arities and semantics. Each family has its own
//! module; `TABLE` lists them all and is what the parser resolves names against.

mod data;
mod math;
mod string;
pub(crate) mod time;

use crate::error::EvalError;
use crate::eval::Env;
use crate::value::Value;

pub(crate) type FuncImpl = fn(&[Value], &mut Env<'_>) -> Result<Value, EvalError>;

pub(crate) struct Func {
    pub(crate) name: &'static str,
    pub(crate) min: usize,
    pub(crate) max: usize,
    pub(crate) f: FuncImpl,
}

const N: usize = usize::MAX;

macro_rules! table {
    ($($name:literal $min:literal..$max:tt => $f:path),* $(,)?) => {
        pub(crate) static TABLE: &[Func] = &[
            $(Func { name: $name, min: $min, max: table!(@max $max), f: $f }),*
        ];
    };
    (@max N) => { N };
    (@max $n:literal) => { $n };
}

table! {
    // math
    "abs" 1..1 => math::abs, "acos" 1..1 => math::acos, "acosh" 1..1 => math::acosh,
    "asin" 1..1 => math::asin, "asinh" 1..1 => math::asinh, "atan" 1..1 => math::atan,
    "atanh" 1..1 => math::atanh, "ceil" 1..1 => math::ceil, "cos" 1..1 => math::cos,
    "cosh" 1..1 => math::cosh, "exp" 1..1 => math::exp, "floor" 1..1 => math::floor,
    "div" 2..2 => math::int_div, "mod" 2..2 => math::modulo, "fmod" 2..2 => math::fmod, "log" 1..1 => math::log, "log10" 1..1 => math::log10,
    "log2" 1..1 => math::log2, "power" 2..2 => math::power, "random" 0..0 => math::random,
    "round" 1..1 => math::round, "sin" 1..1 => math::sin, "sinh" 1..1 => math::sinh,
    "sqrt" 1..1 => math::sqrt, "tan" 1..1 => math::tan, "tanh" 1..1 => math::tanh,
    // bits
    "bitnot" 1..1 => math::bitnot, "bitand" 2..2 => math::bitand, "bitor" 2..2 => math::bitor,
    "bitxor" 2..2 => math::bitxor, "bitsl" 2..2 => math::bitsl, "bitsr" 2..2 => math::bitsr,
    "bitsize" 1..1 => math::bitsize, "bytesize" 1..1 => data::bytesize, "subbits" 2..6 => math::subbits,
    // type conversion
    "str" 1..1 => data::str, "str_utf8" 1..1 => data::str, "str_utf16_le" 1..1 => data::str_utf16_le,
    "bool" 1..1 => data::bool, "int" 1..1 => data::int_conv, "float" 1..2 => data::float,
    "float2str" 2..2 => data::float2str, "map" 1..1 => data::map,
    // type checks
    "is_null" 1..1 => data::is_null, "is_not_null" 1..1 => data::is_not_null,
    "is_null_var" 1..1 => data::is_null_var, "is_not_null_var" 1..1 => data::is_not_null_var,
    "is_str" 1..1 => data::is_str, "is_bool" 1..1 => data::is_bool, "is_int" 1..1 => data::is_int,
    "is_float" 1..1 => data::is_float, "is_num" 1..1 => data::is_num, "is_map" 1..1 => data::is_map,
    "is_array" 1..1 => data::is_array,
    // strings
    "lower" 1..1 => string::lower, "upper" 1..1 => string::upper, "trim" 1..1 => string::trim,
    "ltrim" 1..1 => string::ltrim, "rtrim" 1..2 => string::rtrim, "rm_prefix" 2..2 => string::rm_prefix, "reverse" 1..1 => string::reverse,
    "strlen" 1..1 => string::strlen, "substr" 2..3 => string::substr, "split" 2..3 => string::split,
    "concat" 1..N => string::concat, "tokens" 2..3 => string::tokens, "sprintf" 1..N => string::sprintf, "sprintf_s" 2..2 => string::sprintf_s,
    "pad" 2..4 => string::pad, "replace" 3..4 => string::replace, "regex_match" 2..2 => string::regex_match,
    "regex_replace" 3..3 => string::regex_replace, "regex_extract" 2..2 => string::regex_extract,
    "ascii" 1..1 => string::ascii, "find" 2..3 => string::find, "join_to_string" 2..2 => string::join_to_string,
    "unescape" 1..1 => string::unescape,
    // maps
    "map_get" 2..3 => data::map_get, "map_put" 3..3 => data::map_put, "map_keys" 1..1 => data::map_keys,
    "map_values" 1..1 => data::map_values, "map_to_entries" 1..1 => data::map_to_entries,
    "mget" 2..3 => data::mget, "mput" 3..3 => data::mput,
    "map_new" 0..0 => data::map_new, "map_size" 1..1 => data::map_size, "is_empty" 1..1 => data::is_empty,
    // arrays
    "nth" 2..2 => data::nth, "length" 1..1 => data::length, "sublist" 2..3 => data::sublist,
    "first" 1..1 => data::first, "last" 1..1 => data::last, "contains" 2..2 => data::contains,
    // hashes
    "md5" 1..1 => data::md5, "sha" 1..1 => data::sha, "sha256" 1..1 => data::sha256, "hash" 2..2 => data::hash,
    // encoding
    "base64_encode" 1..3 => data::base64_encode, "base64_decode" 1..3 => data::base64_decode,
    "json_encode" 1..1 => data::json_encode, "json_decode" 1..1 => data::json_decode,
    "bin2hexstr" 1..2 => data::bin2hexstr, "hexstr2bin" 1..2 => data::hexstr2bin,
    "sqlserver_bin2hexstr" 1..1 => data::sqlserver_bin2hexstr,
    // compression
    "gzip" 1..1 => data::gzip, "gunzip" 1..1 => data::gunzip, "zip" 1..1 => data::zip,
    "unzip" 1..1 => data::unzip, "zip_compress" 1..1 => data::zip_compress,
    "zip_uncompress" 1..1 => data::zip_uncompress,
    // date and time
    "now_timestamp" 0..1 => time::now_timestamp, "now_rfc3339" 0..1 => time::now_rfc3339,
    "unix_ts_to_rfc3339" 1..2 => time::unix_ts_to_rfc3339, "rfc3339_to_unix_ts" 1..2 => time::rfc3339_to_unix_ts,
    "format_date" 3..4 => time::format_date, "date_to_unix_ts" 3..4 => time::date_to_unix_ts,
    "timezone_to_offset_seconds" 1..1 => time::timezone_to_offset_seconds,
    "timezone_to_second" 1..1 => time::timezone_to_offset_seconds,
    // misc
    "uuid_v4" 0..0 => data::uuid_v4, "uuid_v4_no_hyphen" 0..0 => data::uuid_v4_no_hyphen,
    "coalesce" 1..N => data::coalesce, "coalesce_ne" 1..N => data::coalesce_ne,
    "contains_topic" 2..3 => data::contains_topic, "contains_topic_match" 2..3 => data::contains_topic_match,
    "topic" 0..1 => data::topic, "null" 0..0 => data::null,
    "msgid" 0..0 => data::msgid, "qos" 0..0 => data::qos, "clientid" 0..0 => data::clientid,
    "clientip" 0..0 => data::peerhost, "peerhost" 0..0 => data::peerhost,
    "username" 0..0 => data::username, "flags" 0..0 => data::flags, "flag" 1..1 => data::flag,
    "payload" 0..1 => data::payload, "eq" 2..2 => data::eq,
}

/// Index of a function in `TABLE` (names are case-insensitive).
pub(crate) fn lookup(name: &str) -> Option<usize> {
    TABLE.iter().position(|f| f.name.eq_ignore_ascii_case(name))
}

/// How many arguments a built-in function takes: `(min, max)`, `max` is `usize::MAX` for
/// any number.
pub fn arity(name: &str) -> Option<(usize, usize)> {
    lookup(name).map(|i| (TABLE[i].min, TABLE[i].max))
}

/// Names of every built-in function.
pub fn names() -> impl Iterator<Item = &'static str> {
    TABLE.iter().map(|f| f.name)
}

pub(crate) fn err<T>(msg: impl Into<String>) -> Result<T, EvalError> {
    Err(EvalError::new(msg))
}

/// A number argument: EMQX's functions guard with `is_number`, so a string is an error.
pub(crate) fn num(v: &Value, f: &str) -> Result<f64, EvalError> {
    match v {
        Value::Int(i) => Ok(*i as f64),
        Value::BigInt(i) => Ok(**i as f64),
        Value::Float(x) => Ok(*x),
        other => err(format!("{f}: expected a number, got {}", other.type_name())),
    }
}

/// An integer argument: EMQX's functions guard with `is_integer` (`1.0` and `'1'` are not).
pub(crate) fn int(v: &Value, f: &str) -> Result<i64, EvalError> {
    match v {
        Value::Int(i) => Ok(*i),
        other => err(format!(
            "{f}: expected an integer, got {}",
            other.type_name()
        )),
    }
}

/// Text of a string argument. EMQX's functions guard with `is_binary`, so a number, a
/// boolean, a map or an array is an error (an exception: the rule fails for the message).
pub(crate) fn text(v: &Value, f: &str) -> Result<String, EvalError> {
    match v {
        Value::Str(s) => Ok(s.clone()),
        Value::Bin(b) => Ok(String::from_utf8_lossy(b).into_owned()),
        other => err(format!("{f}: expected a string, got {}", other.type_name())),
    }
}

/// Text of the string a string function works on (its first argument). EMQX's string
/// functions (`emqx_variform_bif`) raise `badarg` for a missing value or a JSON `null`,
/// take an atom as its name (so `true`/`false` are the strings "true"/"false"), and have
/// no clause for numbers, maps or arrays (an exception too).
pub(crate) fn subject(v: &Value, f: &str) -> Result<String, EvalError> {
    match v {
        Value::Bool(b) => Ok(b.to_string()),
        Value::Null | Value::JsonNull => err(format!("{f}: badarg (no string)")),
        other => text(other, f),
    }
}

pub(crate) fn bytes(v: &Value, f: &str) -> Result<Vec<u8>, EvalError> {
    match v {
        Value::Bin(b) => Ok(b.clone()),
        other => Ok(text(other, f)?.into_bytes()),
    }
}

pub(crate) fn array<'v>(v: &'v Value, f: &str) -> Result<&'v [Value], EvalError> {
    match v {
        Value::Array(a) => Ok(a),
        other => err(format!("{f}: expected an array, got {}", other.type_name())),
    }
}
