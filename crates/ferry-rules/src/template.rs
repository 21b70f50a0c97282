//! `${path}` templates for action parameters, compiled once and rendered from a rule output.
//!
//! Rendering rule: strings are inserted as they are, numbers and booleans as their text,
//! maps and arrays as JSON, a JSON `null` as `null`, and a missing value as `undefined`,
//! as EMQX 5 renders a missing binding (`emqx_template:render/2` through `to_string/1`;
//! its republish action notes "rendering missing bindings as string \"undefined\""), in
//! JSON-looking templates too (`{"x": ${nope}}` is `{"x": undefined}`). `${.}` is the whole output as JSON. A path that is not in the
//! output may be looked up in the rule's input (`render_with`): `${clientid}` after
//! `SELECT payload` is the message's client id.

use crate::ast::{Expr, Seg};
use crate::error::{CompileError, ParseError};
use crate::eval::{Columns, walk};
use crate::value::{Map, Value};

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Lit(String),
    /// `None` is `${.}` (the whole output).
    Path(Option<(String, Vec<Seg>)>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    parts: Vec<Part>,
}

fn path_of(e: Expr) -> Option<(String, Vec<Seg>)> {
    match e {
        Expr::Var(n) => Some((n, Vec::new())),
        Expr::Get(base, seg) => {
            let (root, mut segs) = path_of(*base)?;
            segs.push(seg);
            Some((root, segs))
        }
        _ => None,
    }
}

impl Template {
    pub fn parse(src: &str) -> Result<Template, CompileError> {
        let mut parts = Vec::new();
        let mut rest = src;
        let mut offset = 0;
        while let Some(start) = rest.find("${") {
            if start > 0 {
                parts.push(Part::Lit(rest[..start].to_owned()));
            }
            let after = &rest[start + 2..];
            let end = after.find('}').ok_or_else(|| {
                CompileError::from(ParseError::new(
                    1,
                    offset + start + 1,
                    "an unclosed '${'",
                    "'}'",
                ))
            })?;
            let inner = after[..end].trim();
            let col = offset + start + 3;
            if inner == "." {
                parts.push(Part::Path(None));
            } else {
                let bad = || {
                    CompileError::from(ParseError::new(
                        1,
                        col,
                        &format!("{inner:?}"),
                        "a field path such as payload.x",
                    ))
                };
                let e = crate::parser::parse_expr(inner).map_err(|_| bad())?;
                parts.push(Part::Path(Some(path_of(e).ok_or_else(bad)?)));
            }
            let consumed = start + 2 + end + 1;
            offset += consumed;
            rest = &rest[consumed..];
        }
        if !rest.is_empty() {
            parts.push(Part::Lit(rest.to_owned()));
        }
        Ok(Template { parts })
    }

    /// Is the template a single `${...}` and nothing else?
    pub fn is_single_placeholder(&self) -> bool {
        matches!(self.parts.as_slice(), [Part::Path(_)])
    }

    fn lookup(out: &Map, p: &Option<(String, Vec<Seg>)>, input: Option<&dyn Columns>) -> Value {
        match p {
            None => Value::Map(out.clone()),
            Some((root, segs)) => {
                let segs: Vec<&Seg> = segs.iter().collect();
                match out.get(root.as_str()) {
                    Some(v) => walk(v, &segs),
                    None => match input.and_then(|i| i.column(root)) {
                        Some(v) => walk(&v, &segs),
                        None => Value::Null,
                    },
                }
            }
        }
    }

    /// The value a single-placeholder template points at (e.g. `${pub_props}` for
    /// headers); for other templates, the rendered string.
    pub fn render_value(&self, out: &Map) -> Value {
        self.render_value_with(out, None)
    }

    /// Like [`Template::render_value`]; a path missing from the output is looked up in the
    /// rule's input (the message or event), so `${clientid}` works after `SELECT payload`.
    pub fn render_value_with(&self, out: &Map, input: Option<&dyn Columns>) -> Value {
        match self.parts.as_slice() {
            [Part::Path(p)] => Self::lookup(out, p, input),
            _ => Value::Str(self.render_with(out, input)),
        }
    }

    pub fn render(&self, out: &Map) -> String {
        self.render_with(out, None)
    }

    pub fn render_with(&self, out: &Map, input: Option<&dyn Columns>) -> String {
        let mut s = String::new();
        self.render_into_with(out, input, &mut s);
        s
    }

    /// Renders only if every placeholder has a value: `None` names a template that cannot
    /// be rendered for this output (e.g. a Kafka topic with a missing part).
    pub fn render_strict(&self, out: &Map, input: Option<&dyn Columns>) -> Option<String> {
        let mut s = String::new();
        for p in &self.parts {
            match p {
                Part::Lit(l) => s.push_str(l),
                Part::Path(path) => match Self::lookup(out, path, input) {
                    Value::Null => return None,
                    Value::Str(v) => s.push_str(&v),
                    other => s.push_str(&other.to_text()),
                },
            }
        }
        Some(s)
    }

    pub fn render_into(&self, out: &Map, s: &mut String) {
        self.render_into_with(out, None, s)
    }

    pub fn render_into_with(&self, out: &Map, input: Option<&dyn Columns>, s: &mut String) {
        for p in &self.parts {
            match p {
                Part::Lit(l) => s.push_str(l),
                Part::Path(path) => match Self::lookup(out, path, input) {
                    Value::Str(v) => s.push_str(&v),
                    other => s.push_str(&other.to_text()),
                },
            }
        }
    }
}
