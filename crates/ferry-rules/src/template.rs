//! `${path}` templates for action parameters, compiled once and rendered from a rule output.
//!
//! Rendering rule: strings are inserted as they are, numbers and booleans as their text,
//! maps and arrays as JSON, a JSON `null` as `null`, and a missing value as `undefined`,
//! as EMQX 5 renders a missing binding (`emqx_template:render/2` through `to_string/1`;
//! its republish action notes "rendering missing bindings as string \"undefined\""), in
//! JSON-looking templates too (`{"x": ${nope}}` is `{"x": undefined}`). `${.}` is the whole output as JSON. A path that is not in the
//! output may be looked up in the rule's input (`render_with`): `${clientid}` after
//! `SELECT payload` is the message's client id. [`Bindings::Star`] renders the output of
//! `SELECT *` from the input without that output being built.

use crate::ast::{Expr, Seg};
use crate::error::{CompileError, ParseError};
use crate::eval::{Columns, walk};
use crate::value::{Map, Value};

/// What a template renders from.
#[derive(Clone, Copy)]
pub enum Bindings<'a> {
    /// A rule output; a path missing from it is looked up in the rule's input, if given.
    Output(&'a Map, Option<&'a dyn Columns>),
    /// The output of `SELECT *` without building it: every column of the input (the output
    /// of `SELECT *` is exactly the input's columns, so paths resolve the same).
    Star(&'a dyn Columns),
}

impl<'a> Bindings<'a> {
    /// The same bindings without the fallback to the rule's input (templates that EMQX
    /// renders from the output only). `SELECT *`'s output is the input, so it stays.
    pub fn output_only(self) -> Bindings<'a> {
        match self {
            Bindings::Output(out, _) => Bindings::Output(out, None),
            star => star,
        }
    }
}

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

    fn lookup(p: &Option<(String, Vec<Seg>)>, b: Bindings<'_>) -> Value {
        match (p, b) {
            (None, Bindings::Output(out, _)) => Value::Map(out.clone()),
            (None, Bindings::Star(input)) => Value::Map(input.all()),
            (Some((root, segs)), b) => {
                let segs: Vec<&Seg> = segs.iter().collect();
                let found = match b {
                    Bindings::Output(out, input) => match out.get(root.as_str()) {
                        Some(v) => return walk(v, &segs),
                        None => input.and_then(|i| i.column(root)),
                    },
                    Bindings::Star(input) => input.column(root),
                };
                match found {
                    Some(v) if segs.is_empty() => v,
                    Some(v) => walk(&v, &segs),
                    None => Value::Null,
                }
            }
        }
    }

    /// The value a single-placeholder template points at (e.g. `${pub_props}` for
    /// headers); for other templates, the rendered string.
    pub fn render_value(&self, out: &Map) -> Value {
        self.render_value_in(Bindings::Output(out, None))
    }

    /// Like [`Template::render_value`]; a path missing from the output is looked up in the
    /// rule's input (the message or event), so `${clientid}` works after `SELECT payload`.
    pub fn render_value_with(&self, out: &Map, input: Option<&dyn Columns>) -> Value {
        self.render_value_in(Bindings::Output(out, input))
    }

    /// [`Template::render_value`] from any [`Bindings`].
    pub fn render_value_in(&self, b: Bindings<'_>) -> Value {
        match self.parts.as_slice() {
            [Part::Path(p)] => Self::lookup(p, b),
            _ => Value::Str(self.render_in(b)),
        }
    }

    pub fn render(&self, out: &Map) -> String {
        self.render_in(Bindings::Output(out, None))
    }

    pub fn render_with(&self, out: &Map, input: Option<&dyn Columns>) -> String {
        self.render_in(Bindings::Output(out, input))
    }

    /// [`Template::render`] from any [`Bindings`].
    pub fn render_in(&self, b: Bindings<'_>) -> String {
        let mut s = String::new();
        self.render_into_in(b, &mut s);
        s
    }

    /// Renders only if every placeholder has a value: `None` names a template that cannot
    /// be rendered for this output (e.g. a Kafka topic with a missing part).
    pub fn render_strict(&self, out: &Map, input: Option<&dyn Columns>) -> Option<String> {
        self.render_strict_in(Bindings::Output(out, input))
    }

    /// [`Template::render_strict`] from any [`Bindings`]. A template without placeholders
    /// is its text, with no lookup.
    pub fn render_strict_in(&self, b: Bindings<'_>) -> Option<String> {
        if let [Part::Lit(l)] = self.parts.as_slice() {
            return Some(l.clone());
        }
        let mut s = String::new();
        for p in &self.parts {
            match p {
                Part::Lit(l) => s.push_str(l),
                Part::Path(path) => match Self::lookup(path, b) {
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
        self.render_into_in(Bindings::Output(out, input), s)
    }

    /// [`Template::render_into`] from any [`Bindings`].
    pub fn render_into_in(&self, b: Bindings<'_>, s: &mut String) {
        for p in &self.parts {
            match p {
                Part::Lit(l) => s.push_str(l),
                Part::Path(path) => match Self::lookup(path, b) {
                    Value::Str(v) => s.push_str(&v),
                    other => s.push_str(&other.to_text()),
                },
            }
        }
    }
}
