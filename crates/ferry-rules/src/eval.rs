//! Evaluation of expressions against one input (a message or an event).
//!
//! Variables resolve, in order, to: the FOREACH element, fields already selected (aliases),
//! then the input's columns. `payload.x` decodes the payload as JSON once per evaluation and
//! reuses it; a payload that is not JSON makes such paths null and is counted.

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use std::cmp::Ordering;

use crate::ast::{BinOp, Expr, Seg};
use crate::error::EvalError;
use crate::funcs;
use crate::value::{Map, Value};

/// The columns a rule can read: a message's or an event's fields.
pub trait Columns {
    /// One column by name, or `None` if the input has no such column.
    fn column(&self, name: &str) -> Option<Value>;
    /// The raw payload, for lazy JSON decoding of `payload.…` paths.
    fn payload(&self) -> Option<&[u8]>;
    /// Every column, for `SELECT *`.
    fn all(&self) -> Map;
    /// The topic, for functions like `topic(n)`.
    fn topic(&self) -> Option<&str> {
        None
    }
}

/// A JSON object's keys and raw values, borrowed from the payload (few keys: a vector).
struct LazyObject<'a>(Vec<(&'a str, &'a RawValue)>);

impl<'de: 'a, 'a> Deserialize<'de> for LazyObject<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = LazyObject<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<LazyObject<'a>, A::Error> {
                let mut v = Vec::with_capacity(a.size_hint().unwrap_or(8));
                while let Some(e) = a.next_entry::<&'de str, &'de RawValue>()? {
                    v.push(e);
                }
                Ok(LazyObject(v))
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

enum PayloadCache<'a> {
    Unparsed,
    Object(Vec<(&'a str, &'a RawValue)>),
    Full(Value),
    NotJson,
}

/// Evaluation state for one input.
pub(crate) struct Env<'a> {
    pub(crate) input: &'a dyn Columns,
    payload: PayloadCache<'a>,
    /// The FOREACH element, by name.
    pub(crate) item: Option<(&'a str, Value)>,
    /// Fields selected so far (aliases are visible to later fields and WHERE).
    pub(crate) selected: Map,
    /// Names bound by a FOREACH's leading items, visible to its DO and INCASE.
    pub(crate) scope: Option<&'a Map>,
    /// Set when a `payload.…` path met a payload that is not JSON.
    pub non_json_payload: bool,
    /// `SELECT *` evaluated without building its output ([`crate::Rule::check_star`]):
    /// every input column counts as selected.
    pub(crate) star: bool,
}

impl<'a> Env<'a> {
    pub(crate) fn new(input: &'a dyn Columns) -> Env<'a> {
        Env {
            input,
            payload: PayloadCache::Unparsed,
            item: None,
            selected: Map::new(),
            scope: None,
            non_json_payload: false,
            star: false,
        }
    }

    /// `payload.key…`: a JSON object payload is indexed once without building its values
    /// (keys and raw value slices borrowed from the payload); only the values a path uses
    /// are decoded. Anything else (arrays, escaped keys) is decoded whole, once.
    fn payload_path(&mut self, segs: &[&Seg]) -> Value {
        let input = self.input;
        if matches!(self.payload, PayloadCache::Unparsed) {
            let bytes = input.payload().unwrap_or_default();
            self.payload = match serde_json::from_slice::<LazyObject<'a>>(bytes) {
                Ok(m) => PayloadCache::Object(m.0),
                Err(_) => match Value::from_json(bytes) {
                    Some(v) => PayloadCache::Full(v),
                    None => PayloadCache::NotJson,
                },
            };
        }
        match (&self.payload, segs.split_first()) {
            // Last one wins, as in a decoded map.
            (PayloadCache::Object(m), Some((Seg::Key(k), rest))) => match m
                .iter()
                .rev()
                .find(|(n, _)| *n == k.as_str())
                .map(|(_, r)| r)
            {
                Some(raw) => match Value::from_json(raw.get().as_bytes()) {
                    Some(v) => walk(&v, rest),
                    None => Value::Null,
                },
                None => Value::Null,
            },
            (PayloadCache::Object(m), _) => {
                // A non-key first segment on an object: same answer as the full value gives.
                let full: Map = m
                    .iter()
                    .filter_map(|(k, raw)| {
                        Some(((*k).to_owned(), Value::from_json(raw.get().as_bytes())?))
                    })
                    .collect();
                walk(&Value::Map(full), segs)
            }
            (PayloadCache::Full(v), _) => walk(v, segs),
            (PayloadCache::NotJson, _) => {
                self.non_json_payload = true;
                Value::Null
            }
            (PayloadCache::Unparsed, _) => Value::Null,
        }
    }

    fn var(&self, name: &str) -> Value {
        if let Some((n, v)) = &self.item
            && *n == name
        {
            return v.clone();
        }
        if let Some(v) = self.selected.get(name) {
            return v.clone();
        }
        if let Some(v) = self.scope.and_then(|s| s.get(name)) {
            return v.clone();
        }
        self.input.column(name).unwrap_or(Value::Null)
    }

    pub(crate) fn eval(&mut self, e: &Expr) -> Result<Value, EvalError> {
        match e {
            Expr::Lit(v) => Ok(v.clone()),
            Expr::Var(name) => Ok(self.var(name)),
            Expr::Get(..) => self.eval_path(e),
            Expr::Array(items) => Ok(Value::Array(
                items
                    .iter()
                    .map(|i| self.eval(i))
                    .collect::<Result<_, _>>()?,
            )),
            Expr::Object(items) => {
                let mut m = Map::with_capacity(items.len());
                for (k, v) in items {
                    let v = self.eval(v)?;
                    m.insert(k.clone(), v);
                }
                Ok(Value::Map(m))
            }
            Expr::Neg(e) => match self.eval(e)? {
                Value::Int(i) => i
                    .checked_neg()
                    .map(Value::Int)
                    .ok_or_else(|| EvalError::new("integer overflow in '-'")),
                Value::Float(f) => Ok(Value::Float(-f)),
                other => Err(EvalError::new(format!(
                    "cannot negate {}",
                    other.type_name()
                ))),
            },
            // EMQX: NOT of anything but a boolean is false.
            Expr::Not(e) => Ok(Value::Bool(matches!(self.eval(e)?, Value::Bool(false)))),
            Expr::Bin(BinOp::And, a, b) => Ok(Value::Bool(
                self.eval(a)?.is_true() && self.eval(b)?.is_true(),
            )),
            Expr::Bin(BinOp::Or, a, b) => Ok(Value::Bool(
                self.eval(a)?.is_true() || self.eval(b)?.is_true(),
            )),
            Expr::Bin(op, a, b) => {
                let a = self.eval(a)?;
                let b = self.eval(b)?;
                binary(*op, a, b)
            }
            Expr::Call { func, args } => {
                let vals = args
                    .iter()
                    .map(|a| self.eval(a))
                    .collect::<Result<Vec<_>, _>>()?;
                (funcs::TABLE[*func].f)(&vals, self)
            }
            Expr::In {
                expr,
                list,
                negated,
            } => {
                let v = self.eval(expr)?;
                let mut found = false;
                for item in list {
                    if self.eval(item)? == v {
                        found = true;
                        break;
                    }
                }
                Ok(Value::Bool(found != *negated))
            }
            Expr::Case {
                operand,
                whens,
                otherwise,
            } => {
                let subject = match operand {
                    Some(o) => Some(self.eval(o)?),
                    None => None,
                };
                for (w, t) in whens {
                    let hit = match &subject {
                        // EMQX matches the operand exactly (`1` is not `1.0`).
                        Some(s) => *s == self.eval(w)?,
                        None => self.eval(w)?.is_true(),
                    };
                    if hit {
                        return self.eval(t);
                    }
                }
                match otherwise {
                    Some(e) => self.eval(e),
                    None => Ok(Value::Null),
                }
            }
        }
    }

    /// Paths: walk by reference from the root, clone only the leaf.
    fn eval_path(&mut self, e: &Expr) -> Result<Value, EvalError> {
        let mut segs = Vec::new();
        let mut root = e;
        while let Expr::Get(base, seg) = root {
            segs.push(seg);
            root = base;
        }
        segs.reverse();
        if let Expr::Var(name) = root
            && name == "payload"
            && self.item.as_ref().is_none_or(|(n, _)| *n != "payload")
            && !self.star
            && !self.selected.contains_key("payload")
            && self.scope.is_none_or(|s| !s.contains_key("payload"))
        {
            return Ok(self.payload_path(&segs));
        }
        let base = self.eval(root)?;
        Ok(walk(&base, &segs))
    }
}

fn index(len: usize, i: i64) -> Option<usize> {
    let len = len as i64;
    let pos = if i > 0 {
        i - 1
    } else if i < 0 {
        len + i
    } else {
        return None;
    };
    (0..len).contains(&pos).then_some(pos as usize)
}

/// Follows `segs` into `v`. A key into a string decodes the string as JSON first.
pub(crate) fn walk(v: &Value, segs: &[&Seg]) -> Value {
    let Some((first, rest)) = segs.split_first() else {
        return v.clone();
    };
    match (v, first) {
        (Value::Map(m), Seg::Key(k)) => m.get(k.as_str()).map_or(Value::Null, |x| walk(x, rest)),
        (Value::Array(a), Seg::Index(i)) => {
            index(a.len(), *i).map_or(Value::Null, |p| walk(&a[p], rest))
        }
        (Value::Array(a), Seg::Range(s, e)) => match (index(a.len(), *s), index(a.len(), *e)) {
            (Some(s), Some(e)) if s <= e => walk(&Value::Array(a[s..=e].to_vec()), rest),
            _ => Value::Array(Vec::new()),
        },
        (Value::Str(s), Seg::Key(_) | Seg::Index(_)) => match Value::from_json(s.as_bytes()) {
            Some(decoded @ (Value::Map(_) | Value::Array(_))) => walk(&decoded, segs),
            _ => Value::Null,
        },
        _ => Value::Null,
    }
}

/// A string compared with a number is read as a number, as EMQX's `number/1` does
/// (`binary_to_integer`, else `binary_to_float`); a string that is not one is an error.
fn str_number(s: &str) -> Result<Value, EvalError> {
    if let Ok(i) = s.parse::<i128>() {
        return Ok(Value::from_i128(i));
    }
    match s.parse::<f64>() {
        Ok(f) if f.is_finite() && s.contains('.') => Ok(Value::Float(f)),
        _ => Err(EvalError::new(format!(
            "cannot compare a number with the string {s:?}"
        ))),
    }
}

/// Erlang's order of types: number < atom < map < list < binary. JSON `true`, `false`
/// and `null` are atoms, ordered by name.
fn type_rank(v: &Value) -> u8 {
    match v {
        Value::Int(_) | Value::BigInt(_) | Value::Float(_) => 0,
        Value::Bool(_) | Value::JsonNull | Value::Null => 1,
        Value::Map(_) => 2,
        Value::Array(_) => 3,
        Value::Str(_) | Value::Bin(_) => 4,
    }
}

fn atom_name(v: &Value) -> &'static str {
    match v {
        Value::Bool(true) => "true",
        Value::Bool(false) => "false",
        Value::JsonNull => "null",
        _ => "undefined",
    }
}

/// An integer value (`Int` or `BigInt`) as an `i128`.
fn integer(v: &Value) -> i128 {
    match v {
        Value::Int(i) => i128::from(*i),
        Value::BigInt(i) => **i,
        _ => 0,
    }
}

/// Erlang's term order (`==` for equality: `1 == 1.0`).
fn term_cmp(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => x.cmp(y),
        (Value::Int(_) | Value::BigInt(_), Value::Int(_) | Value::BigInt(_)) => {
            integer(a).cmp(&integer(b))
        }
        (
            Value::Int(_) | Value::BigInt(_) | Value::Float(_),
            Value::Int(_) | Value::BigInt(_) | Value::Float(_),
        ) => {
            let (x, y) = (a.as_f64().unwrap_or(0.0), b.as_f64().unwrap_or(0.0));
            x.partial_cmp(&y).unwrap_or(Ordering::Equal)
        }
        (Value::Str(_) | Value::Bin(_), Value::Str(_) | Value::Bin(_)) => {
            a.as_bytes().cmp(&b.as_bytes())
        }
        (Value::Array(x), Value::Array(y)) => {
            for (p, q) in x.iter().zip(y) {
                match term_cmp(p, q) {
                    Ordering::Equal => {}
                    o => return o,
                }
            }
            x.len().cmp(&y.len())
        }
        (Value::Map(x), Value::Map(y)) => {
            // Erlang: by size, then by sorted keys, then by the values in key order.
            if x.len() != y.len() {
                return x.len().cmp(&y.len());
            }
            let mut kx: Vec<&String> = x.keys().collect();
            let mut ky: Vec<&String> = y.keys().collect();
            kx.sort();
            ky.sort();
            match kx.cmp(&ky) {
                Ordering::Equal => {}
                o => return o,
            }
            for k in kx {
                match term_cmp(&x[k], &y[k]) {
                    Ordering::Equal => {}
                    o => return o,
                }
            }
            Ordering::Equal
        }
        _ if type_rank(a) == 1 && type_rank(b) == 1 => atom_name(a).cmp(atom_name(b)),
        _ => type_rank(a).cmp(&type_rank(b)),
    }
}

/// Erlang's `==`: term equality, with `1 == 1.0`.
pub(crate) fn erlang_eq(a: &Value, b: &Value) -> bool {
    term_cmp(a, b) == Ordering::Equal
}

/// EMQX's `compare/3`: a missing value compares true only with another missing value (for
/// `=`, `<=`, `>=`) and false with anything else, whatever the operator; a number and a
/// string compare as numbers; an atom (`true`, `false`, JSON `null`) and a string compare
/// as strings; everything else in Erlang's term order.
fn compare(a: &Value, b: &Value) -> Result<Option<Ordering>, EvalError> {
    Ok(match (a, b) {
        (Value::Null, Value::Null) => Some(Ordering::Equal),
        (Value::Null, _) | (_, Value::Null) => None,
        (Value::Int(_) | Value::BigInt(_) | Value::Float(_), Value::Str(s)) => {
            Some(term_cmp(a, &str_number(s)?))
        }
        (Value::Str(s), Value::Int(_) | Value::BigInt(_) | Value::Float(_)) => {
            Some(term_cmp(&str_number(s)?, b))
        }
        (Value::Bool(_) | Value::JsonNull, Value::Str(s)) => Some(atom_name(a).cmp(s.as_str())),
        (Value::Str(s), Value::Bool(_) | Value::JsonNull) => Some(s.as_str().cmp(atom_name(b))),
        _ => Some(term_cmp(a, b)),
    })
}

/// Arithmetic as Erlang does it in EMQX: numbers only (a string operand is an error, never
/// coerced), `/` always gives a float, `div` truncates toward zero and `mod` is `rem` (the
/// sign follows the dividend). Erlang integers are unbounded; ours are 64-bit, so a result
/// that does not fit is an error rather than a wrapped or rounded value.
fn arith(op: BinOp, a: &Value, b: &Value) -> Result<Value, EvalError> {
    let bad = || {
        EvalError::new(format!(
            "cannot apply '{}' to {} and {}",
            op.text(),
            a.type_name(),
            b.type_name()
        ))
    };
    let overflow = || EvalError::new(format!("integer overflow in '{}'", op.text()));
    if matches!(a, Value::BigInt(_)) || matches!(b, Value::BigInt(_)) {
        // Our integer arithmetic is 64-bit: a wider operand overflows, as a wider result does.
        return Err(EvalError::new(format!(
            "integer overflow in '{}' (an operand beyond 64 bits)",
            op.text()
        )));
    }
    if let (Value::Int(x), Value::Int(y)) = (a, b) {
        let (x, y) = (*x, *y);
        let r = match op {
            BinOp::Add => x.checked_add(y),
            BinOp::Sub => x.checked_sub(y),
            BinOp::Mul => x.checked_mul(y),
            BinOp::Div if y == 0 => return Err(EvalError::new("division by zero")),
            BinOp::Div => return Ok(Value::Float(x as f64 / y as f64)),
            BinOp::IntDiv | BinOp::Mod if y == 0 => {
                return Err(EvalError::new("division by zero"));
            }
            BinOp::IntDiv => x.checked_div(y),
            BinOp::Mod => x.checked_rem(y),
            _ => return Err(bad()),
        };
        return r.map(Value::Int).ok_or_else(overflow);
    }
    let (x, y) = match (a, b) {
        (Value::Int(_) | Value::Float(_), Value::Int(_) | Value::Float(_)) => {
            (a.as_f64().ok_or_else(bad)?, b.as_f64().ok_or_else(bad)?)
        }
        _ => return Err(bad()),
    };
    let r = match op {
        BinOp::Add => x + y,
        BinOp::Sub => x - y,
        BinOp::Mul => x * y,
        BinOp::Div if y == 0.0 => return Err(EvalError::new("division by zero")),
        BinOp::Div => x / y,
        BinOp::IntDiv | BinOp::Mod => {
            return Err(EvalError::new(format!("'{}' needs integers", op.text())));
        }
        _ => return Err(bad()),
    };
    if r.is_finite() {
        Ok(Value::Float(r))
    } else {
        Err(EvalError::new(format!("'{}' overflowed", op.text())))
    }
}

pub(crate) fn binary(op: BinOp, a: Value, b: Value) -> Result<Value, EvalError> {
    let cmp = |test: fn(Ordering) -> bool| -> Result<Value, EvalError> {
        Ok(Value::Bool(compare(&a, &b)?.is_some_and(test)))
    };
    match op {
        BinOp::Eq => cmp(Ordering::is_eq),
        // A missing value is neither equal nor unequal to a present one (EMQX).
        BinOp::Ne => cmp(Ordering::is_ne),
        BinOp::Gt => cmp(Ordering::is_gt),
        BinOp::Lt => cmp(Ordering::is_lt),
        BinOp::Ge => cmp(Ordering::is_ge),
        BinOp::Le => cmp(Ordering::is_le),
        BinOp::Match => match (&a, &b) {
            (Value::Str(topic), Value::Str(filter)) => {
                Ok(Value::Bool(ferry_mqtt::topic::matches(filter, topic)))
            }
            (Value::Null, _) | (_, Value::Null) => Ok(Value::Bool(false)),
            _ => Err(EvalError::new("'=~' needs a topic and a topic filter")),
        },
        // `+` with a string operand concatenates (EMQX's `'+'/2`).
        BinOp::Add
            if matches!(a, Value::Str(_) | Value::Bin(_))
                || matches!(b, Value::Str(_) | Value::Bin(_)) =>
        {
            Ok(Value::Str(a.to_text() + &b.to_text()))
        }
        BinOp::And | BinOp::Or => Ok(unreachable_logic()),
        _ => arith(op, &a, &b),
    }
}

fn unreachable_logic() -> Value {
    // `and`/`or` short-circuit in `Env::eval` and never get here.
    Value::Null
}
