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

/// `subbits(Bin, Len)` or `subbits(Bin, Start, Len)`: the bits from Start (1-based) as an
/// unsigned big-endian integer.
pub(super) fn subbits(a: &[Value], _: &mut Env<'_>) -> R {
    let data = bytes(&a[0], "subbits")?;
    let (start, len) = if a.len() == 2 {
        (1, int(&a[1], "subbits")?)
    } else {
        (int(&a[1], "subbits")?, int(&a[2], "subbits")?)
    };
    if start < 1 || !(0..=64).contains(&len) {
        return err("subbits: start must be >= 1 and length between 0 and 64");
    }
    let total = data.len() as i64 * 8;
    let first = start - 1;
    let end = (first + len).min(total);
    let mut v: u64 = 0;
    for bit in first..end {
        let byte = data[(bit / 8) as usize];
        let b = (byte >> (7 - (bit % 8))) & 1;
        v = (v << 1) | u64::from(b);
    }
    Ok(Value::Int(v as i64))
}

/// `div(a, b)`: the function form of the `div` operator.
pub(super) fn int_div(a: &[Value], _: &mut Env<'_>) -> R {
    crate::eval::binary(crate::ast::BinOp::IntDiv, a[0].clone(), a[1].clone())
}

/// `mod(a, b)`: the function form of the `mod` operator.
pub(super) fn modulo(a: &[Value], _: &mut Env<'_>) -> R {
    crate::eval::binary(crate::ast::BinOp::Mod, a[0].clone(), a[1].clone())
}
