//! Mathematical and bit functions.

use super::{bytes, err, int, num};
use crate::error::EvalError;
use crate::eval::Env;
use crate::value::Value;

type R = Result<Value, EvalError>;

macro_rules! float_fn {
    ($($name:ident => $op:expr),* $(,)?) => {
        $(pub(super) fn $name(a: &[Value], _: &mut Env<'_>) -> R {
            let x = num(&a[0], stringify!($name))?;
            let f: fn(f64) -> f64 = $op;
            let y = f(x);
            if y.is_nan() {
                return err(format!("{}: argument {x} out of range", stringify!($name)));
            }
            Ok(Value::Float(y))
        })*
    };
}

float_fn! {
    acos => f64::acos, acosh => f64::acosh, asin => f64::asin, asinh => f64::asinh,
    atan => f64::atan, atanh => f64::atanh, cos => f64::cos, cosh => f64::cosh,
    exp => f64::exp, log => f64::ln, log10 => f64::log10, log2 => f64::log2,
    sin => f64::sin, sinh => f64::sinh, sqrt => f64::sqrt, tan => f64::tan, tanh => f64::tanh,
}

pub(super) fn abs(a: &[Value], _: &mut Env<'_>) -> R {
    match &a[0] {
        Value::Int(i) => Ok(Value::Int(i.wrapping_abs())),
        v => Ok(Value::Float(num(v, "abs")?.abs())),
    }
}

fn to_int(f: f64, name: &str) -> R {
    if f.is_finite() && f.abs() < 9.2e18 {
        Ok(Value::Int(f as i64))
    } else {
        err(format!("{name}: {f} out of range"))
    }
}

pub(super) fn ceil(a: &[Value], _: &mut Env<'_>) -> R {
    to_int(num(&a[0], "ceil")?.ceil(), "ceil")
}
pub(super) fn floor(a: &[Value], _: &mut Env<'_>) -> R {
    to_int(num(&a[0], "floor")?.floor(), "floor")
}
pub(super) fn round(a: &[Value], _: &mut Env<'_>) -> R {
    to_int(num(&a[0], "round")?.round(), "round")
}
pub(super) fn fmod(a: &[Value], _: &mut Env<'_>) -> R {
    let (x, y) = (num(&a[0], "fmod")?, num(&a[1], "fmod")?);
    if y == 0.0 {
        return err("fmod: division by zero");
    }
    Ok(Value::Float(x % y))
}
pub(super) fn power(a: &[Value], _: &mut Env<'_>) -> R {
    Ok(Value::Float(
        num(&a[0], "power")?.powf(num(&a[1], "power")?),
    ))
}
pub(super) fn random(_: &[Value], _: &mut Env<'_>) -> R {
    Ok(Value::Float(rand::random::<f64>()))
}

pub(super) fn bitnot(a: &[Value], _: &mut Env<'_>) -> R {
    Ok(Value::Int(!int(&a[0], "bitnot")?))
}
pub(super) fn bitand(a: &[Value], _: &mut Env<'_>) -> R {
    Ok(Value::Int(int(&a[0], "bitand")? & int(&a[1], "bitand")?))
}
pub(super) fn bitor(a: &[Value], _: &mut Env<'_>) -> R {
    Ok(Value::Int(int(&a[0], "bitor")? | int(&a[1], "bitor")?))
}
pub(super) fn bitxor(a: &[Value], _: &mut Env<'_>) -> R {
    Ok(Value::Int(int(&a[0], "bitxor")? ^ int(&a[1], "bitxor")?))
}
pub(super) fn bitsl(a: &[Value], _: &mut Env<'_>) -> R {
    let n = int(&a[1], "bitsl")?;
    Ok(Value::Int(
        int(&a[0], "bitsl")?.checked_shl(n as u32).unwrap_or(0),
    ))
}
pub(super) fn bitsr(a: &[Value], _: &mut Env<'_>) -> R {
    let n = int(&a[1], "bitsr")?;
    Ok(Value::Int(
        int(&a[0], "bitsr")?.checked_shr(n as u32).unwrap_or(0),
    ))
}
pub(super) fn bitsize(a: &[Value], _: &mut Env<'_>) -> R {
    Ok(Value::Int(bytes(&a[0], "bitsize")?.len() as i64 * 8))
}

/// `subbits(Bin, Len)`, `subbits(Bin, Start, Len[, Type[, Signedness[, Endianness]]])`:
/// the bits from Start (1-based), as EMQX reads them: Type `integer` (default), `float`
/// (16, 32 or 64 bits) or `bits`; `unsigned` (default) or `signed`; `big` (default) or
/// `little` (whole bytes). Fewer bits than Len left: the rest is read; none left: null.
pub(super) fn subbits(a: &[Value], _: &mut Env<'_>) -> R {
    let f = "subbits";
    let data = match &a[0] {
        Value::Str(s) => s.as_bytes().to_vec(),
        Value::Bin(b) => b.clone(),
        other => return err(format!("{f}: expected a binary, got {}", other.type_name())),
    };
    let (start, len) = if a.len() == 2 {
        (1, int(&a[1], f)?)
    } else {
        (int(&a[1], f)?, int(&a[2], f)?)
    };
    let opt = |i: usize, default: &str| -> Result<String, EvalError> {
        a.get(i)
            .map_or(Ok(default.to_owned()), |v| super::text(v, f))
    };
    let (ty, sign, endian) = (opt(3, "integer")?, opt(4, "unsigned")?, opt(5, "big")?);
    if start < 1 || len < 0 {
        return err(format!("{f}: start must be >= 1 and length >= 0"));
    }
    let total = data.len() as i64 * 8;
    let first = start - 1;
    if first >= total {
        return Ok(Value::Null);
    }
    let len = len.min(total - first);
    let bit = |i: i64| (data[(i / 8) as usize] >> (7 - (i % 8))) & 1;
    let mut bits: Vec<u8> = (first..first + len).map(bit).collect();
    let little = match endian.as_str() {
        "big" => false,
        "little" => true,
        other => return err(format!("{f}: unknown endianness {other:?}")),
    };
    if little && len % 8 == 0 {
        let bytes: Vec<Vec<u8>> = bits.chunks(8).rev().map(<[u8]>::to_vec).collect();
        bits = bytes.concat();
    }
    let signed = match sign.as_str() {
        "unsigned" => false,
        "signed" => true,
        other => return err(format!("{f}: unknown signedness {other:?}")),
    };
    match ty.as_str() {
        "integer" => {
            if len > 64 || (len == 64 && !signed && bits.first() == Some(&1)) {
                return err(format!("{f}: {len} bits do not fit a 64-bit integer"));
            }
            let mut v: i64 = 0;
            for b in &bits {
                v = (v << 1) | i64::from(*b);
            }
            if signed && len > 0 && len < 64 && bits[0] == 1 {
                v -= 1i64 << len;
            }
            Ok(Value::Int(v))
        }
        "float" => {
            let mut v: u64 = 0;
            for b in &bits {
                v = (v << 1) | u64::from(*b);
            }
            let x = match len {
                64 => f64::from_bits(v),
                32 => f64::from(f32::from_bits(v as u32)),
                16 => half_to_f64(v as u16),
                _ => return err(format!("{f}: a float has 16, 32 or 64 bits, not {len}")),
            };
            Ok(Value::Float(x))
        }
        "bits" => {
            if len % 8 != 0 {
                return err(format!("{f}: {len} bits are not whole bytes"));
            }
            let bytes = bits
                .chunks(8)
                .map(|c| c.iter().fold(0u8, |acc, b| (acc << 1) | b))
                .collect();
            Ok(Value::from_bytes(bytes))
        }
        other => err(format!("{f}: unknown type {other:?}")),
    }
}

fn half_to_f64(h: u16) -> f64 {
    let sign = if h >> 15 == 1 { -1.0 } else { 1.0 };
    let exp = i32::from((h >> 10) & 0x1f);
    let frac = f64::from(h & 0x3ff);
    sign * match exp {
        0 => frac * 2f64.powi(-24),
        31 if frac == 0.0 => f64::INFINITY,
        31 => f64::NAN,
        e => (1.0 + frac / 1024.0) * 2f64.powi(e - 15),
    }
}

/// `div(a, b)`: the function form of the `div` operator.
pub(super) fn int_div(a: &[Value], _: &mut Env<'_>) -> R {
    crate::eval::binary(crate::ast::BinOp::IntDiv, a[0].clone(), a[1].clone())
}

/// `mod(a, b)`: the function form of the `mod` operator.
pub(super) fn modulo(a: &[Value], _: &mut Env<'_>) -> R {
    crate::eval::binary(crate::ast::BinOp::Mod, a[0].clone(), a[1].clone())
}
