//! The syntax tree, and its printing as canonical SQL (printing then parsing gives the
//! same tree; a property test checks it).

use std::fmt;

use crate::funcs;
use crate::value::{Value, format_float};

#[derive(Debug, Clone, PartialEq)]
pub enum Seg {
    Key(String),
    /// 1-based; negative counts from the end.
    Index(i64),
    /// 1-based, inclusive.
    Range(i64, i64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    Or,
    And,
    Eq,
    Ne,
    Gt,
    Lt,
    Ge,
    Le,
    Match,
    Add,
    Sub,
    Mul,
    Div,
    IntDiv,
    Mod,
}

impl BinOp {
    pub(crate) fn text(self) -> &'static str {
        match self {
            BinOp::Or => "or",
            BinOp::And => "and",
            BinOp::Eq => "=",
            BinOp::Ne => "!=",
            BinOp::Gt => ">",
            BinOp::Lt => "<",
            BinOp::Ge => ">=",
            BinOp::Le => "<=",
            BinOp::Match => "=~",
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::IntDiv => "div",
            BinOp::Mod => "mod",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Lit(Value),
    Var(String),
    Get(Box<Expr>, Seg),
    Array(Vec<Expr>),
    Object(Vec<(String, Expr)>),
    Neg(Box<Expr>),
    Not(Box<Expr>),
    Bin(BinOp, Box<Expr>, Box<Expr>),
    /// `func` indexes `funcs::TABLE`, resolved when parsed.
    Call {
        func: usize,
        args: Vec<Expr>,
    },
    Case {
        operand: Option<Box<Expr>>,
        whens: Vec<(Expr, Expr)>,
        otherwise: Option<Box<Expr>>,
    },
    /// `expr IN (a, b, ...)` / `expr NOT IN (...)`: membership with exact equality
    /// (Erlang's `lists:member`, so `1 IN (1.0)` is false).
    In {
        expr: Box<Expr>,
        list: Vec<Expr>,
        negated: bool,
    },
}

/// One step of an alias path (`AS a.b[2]`, `AS c[0]`, `AS c[-0]`).
#[derive(Debug, Clone, PartialEq)]
pub enum AliasSeg {
    Key(String),
    /// `[N]`: sets the Nth element (1-based; negative counts from the end); out of range
    /// leaves the list as it is.
    Nth(i64),
    /// `[0]`: prepends.
    Head,
    /// `[-0]`: appends.
    Tail,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Field {
    Star,
    Expr {
        expr: Expr,
        /// Starts with a key.
        alias: Option<Vec<AliasSeg>>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Select(Vec<Field>),
    /// `FOREACH a AS x, b AS y, list AS name DO ... INCASE ... `: the items before the last
    /// (`lets`) are evaluated in order, each visible to the ones after it, to WHERE, DO and
    /// INCASE; the last one is the list iterated over.
    Foreach {
        lets: Vec<Field>,
        list: Expr,
        alias: Option<String>,
        fields: Vec<Field>,
        incase: Option<Expr>,
    },
}

/// A parsed rule statement.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    pub kind: Kind,
    pub from: Vec<String>,
    pub condition: Option<Expr>,
}

fn is_ident(s: &str) -> bool {
    let mut c = s.chars();
    c.next()
        .is_some_and(|f| f.is_ascii_alphabetic() || f == '_' || f == '$')
        && c.all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '$')
        && !crate::parser::is_keyword(s)
}

fn quote(s: &str, q: char) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push(q);
    for ch in s.chars() {
        if ch == q {
            out.push(q);
        }
        out.push(ch);
    }
    out.push(q);
    out
}

pub(crate) fn key_text(k: &str) -> String {
    if is_ident(k) {
        k.to_owned()
    } else {
        quote(k, '\'')
    }
}

fn lit_text(v: &Value) -> String {
    match v {
        Value::Null | Value::JsonNull => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => format_float(*f),
        Value::Str(s) => quote(s, '\''),
        other => other.to_json(),
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Lit(v) => f.write_str(&lit_text(v)),
            Expr::Var(name) => f.write_str(&key_text(name)),
            Expr::Get(base, seg) => {
                write!(f, "{base}")?;
                match seg {
                    Seg::Key(k) => write!(f, ".{}", key_text(k)),
                    Seg::Index(i) => write!(f, "[{i}]"),
                    Seg::Range(a, b) => write!(f, "[{a}..{b}]"),
                }
            }
            Expr::Array(items) => {
                f.write_str("[")?;
                for (i, e) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{e}")?;
                }
                f.write_str("]")
            }
            Expr::Object(items) => {
                f.write_str("{")?;
                for (i, (k, e)) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{}: {e}", quote(k, '\''))?;
                }
                f.write_str("}")
            }
            Expr::Neg(e) => write!(f, "-({e})"),
            Expr::Not(e) => write!(f, "(not ({e}))"),
            Expr::Bin(op, a, b) => write!(f, "({a} {} {b})", op.text()),
            Expr::Call { func, args } => {
                write!(f, "{}(", funcs::TABLE[*func].name)?;
                for (i, e) in args.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{e}")?;
                }
                f.write_str(")")
            }
            Expr::Case {
                operand,
                whens,
                otherwise,
            } => {
                f.write_str("case")?;
                if let Some(o) = operand {
                    write!(f, " {o}")?;
                }
                for (w, t) in whens {
                    write!(f, " when {w} then {t}")?;
                }
                if let Some(e) = otherwise {
                    write!(f, " else {e}")?;
                }
                f.write_str(" end")
            }
            Expr::In {
                expr,
                list,
                negated,
            } => {
                write!(f, "({expr} {}in (", if *negated { "not " } else { "" })?;
                for (i, e) in list.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{e}")?;
                }
                f.write_str("))")
            }
        }
    }
}

fn write_fields(f: &mut fmt::Formatter<'_>, fields: &[Field]) -> fmt::Result {
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        match field {
            Field::Star => f.write_str("*")?,
            Field::Expr { expr, alias } => {
                write!(f, "{expr}")?;
                if let Some(a) = alias {
                    f.write_str(" as ")?;
                    for (i, seg) in a.iter().enumerate() {
                        match seg {
                            AliasSeg::Key(k) if i == 0 => f.write_str(&key_text(k))?,
                            AliasSeg::Key(k) => write!(f, ".{}", key_text(k))?,
                            AliasSeg::Nth(n) => write!(f, "[{n}]")?,
                            AliasSeg::Head => f.write_str("[0]")?,
                            AliasSeg::Tail => f.write_str("[-0]")?,
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

impl fmt::Display for Statement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Select(fields) => {
                f.write_str("SELECT ")?;
                write_fields(f, fields)?;
            }
            Kind::Foreach {
                lets,
                list,
                alias,
                fields,
                incase,
            } => {
                f.write_str("FOREACH ")?;
                if !lets.is_empty() {
                    write_fields(f, lets)?;
                    f.write_str(", ")?;
                }
                write!(f, "{list}")?;
                if let Some(a) = alias {
                    write!(f, " as {}", key_text(a))?;
                }
                if !fields.is_empty() {
                    f.write_str(" DO ")?;
                    write_fields(f, fields)?;
                }
                if let Some(c) = incase {
                    write!(f, " INCASE {c}")?;
                }
            }
        }
        f.write_str(" FROM ")?;
        let from: Vec<String> = self.from.iter().map(|t| quote(t, '"')).collect();
        f.write_str(&from.join(", "))?;
        if let Some(c) = &self.condition {
            write!(f, " WHERE {c}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::parse;
    use proptest::prelude::*;

    /// Names the parser reads as variables: never a keyword.
    fn var_name() -> impl Strategy<Value = String> {
        "[a-z_][a-z0-9_]{0,5}".prop_filter("not a keyword", |s| !crate::parser::is_keyword(s))
    }

    fn leaf() -> impl Strategy<Value = Expr> {
        prop_oneof![
            any::<i32>().prop_map(|i| Expr::Lit(Value::Int(i64::from(i)))),
            (-1000.0f64..1000.0).prop_map(|f| Expr::Lit(Value::Float((f * 100.0).round() / 100.0))),
            "[a-z '\"-]{0,6}".prop_map(|s| Expr::Lit(Value::Str(s))),
            any::<bool>().prop_map(|b| Expr::Lit(Value::Bool(b))),
            Just(Expr::Lit(Value::Null)),
            "[a-z_][a-z0-9_]{0,5}"
                .prop_filter("not a keyword", |s| !crate::parser::is_keyword(s))
                .prop_map(Expr::Var),
        ]
    }

    fn expr() -> impl Strategy<Value = Expr> {
        leaf().prop_recursive(4, 32, 4, |inner| {
            let ops = prop_oneof![
                Just(BinOp::Or),
                Just(BinOp::And),
                Just(BinOp::Eq),
                Just(BinOp::Ne),
                Just(BinOp::Gt),
                Just(BinOp::Lt),
                Just(BinOp::Ge),
                Just(BinOp::Le),
                Just(BinOp::Match),
                Just(BinOp::Add),
                Just(BinOp::Sub),
                Just(BinOp::Mul),
                Just(BinOp::Div),
                Just(BinOp::IntDiv),
                Just(BinOp::Mod),
            ];
            prop_oneof![
                (ops, inner.clone(), inner.clone()).prop_map(|(o, a, b)| Expr::Bin(
                    o,
                    Box::new(a),
                    Box::new(b)
                )),
                inner.clone().prop_map(|e| Expr::Not(Box::new(e))),
                (
                    inner.clone(),
                    proptest::collection::vec(inner.clone(), 1..3),
                    any::<bool>()
                )
                    .prop_map(|(e, list, negated)| Expr::In {
                        expr: Box::new(e),
                        list,
                        negated
                    }),
                var_name().prop_map(|v| Expr::Get(Box::new(Expr::Var(v)), Seg::Key("k-1".into()))),
                (var_name(), -5i64..5)
                    .prop_map(|(v, i)| Expr::Get(Box::new(Expr::Var(v)), Seg::Index(i))),
                (var_name(), 1i64..5)
                    .prop_map(|(v, i)| Expr::Get(Box::new(Expr::Var(v)), Seg::Range(i, i + 1))),
                proptest::collection::vec(inner.clone(), 0..3).prop_map(Expr::Array),
                proptest::collection::vec(("[a-z]{1,3}", inner.clone()), 0..3)
                    .prop_map(Expr::Object),
                proptest::collection::vec(inner.clone(), 1..3).prop_map(|args| Expr::Call {
                    func: crate::funcs::lookup("coalesce").unwrap_or(0),
                    args
                }),
                (
                    inner.clone(),
                    inner.clone(),
                    proptest::option::of(inner.clone())
                )
                    .prop_map(|(w, t, e)| Expr::Case {
                        operand: None,
                        whens: vec![(w, t)],
                        otherwise: e.map(Box::new),
                    }),
            ]
        })
    }

    proptest! {
        #[test]
        fn printing_and_reparsing_is_stable(e in expr(), alias in proptest::option::of("[a-z]{1,4}"), cond in proptest::option::of(expr())) {
            let stmt = Statement {
                kind: Kind::Select(vec![Field::Expr { expr: e, alias: alias.map(|a| vec![AliasSeg::Key(a)]) }]),
                from: vec!["t/#".into()],
                condition: cond,
            };
            let printed = stmt.to_string();
            let reparsed = parse(&printed).map_err(|err| TestCaseError::fail(format!("{printed}: {err}")))?;
            prop_assert_eq!(&reparsed, &stmt, "{}", printed);
            prop_assert_eq!(reparsed.to_string(), printed);
        }

        #[test]
        fn parser_never_panics(s in "\\PC{0,60}") {
            let _ = parse(&s);
        }
    }
}
