//! A compiled rule: which topics or events it listens to, and how one input becomes zero or
//! more outputs.

use crate::ast::{AliasSeg, Expr, Field, Kind, Seg, Statement};
use crate::error::{CompileError, EvalError};
use crate::eval::{Columns, Env};
use crate::events::Event;
use crate::value::{Map, Value};

/// What a rule listens to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Messages published on topics matching this filter.
    Topic(String),
    /// A client or session event (`$events/...`).
    Event(Event),
    /// Records from a data source, e.g. `$bridges/kafka:NAME`.
    Bridge(String),
}

/// What happened during one evaluation, for the caller's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Report {
    /// A `payload.…` path met a payload that is not JSON (the path gave null).
    pub payload_not_json: bool,
}

/// How one evaluation ended without an output.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    /// WHERE (or every INCASE) was false: counted as `failed.no_result`.
    #[error("no result: the WHERE condition was not met")]
    NoResult,
    /// Evaluation failed: counted as `failed.exception`.
    #[error("exception: {0}")]
    Exception(#[from] EvalError),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub sql: String,
    pub statement: Statement,
    pub sources: Vec<Source>,
}

impl Rule {
    /// Parses and checks a rule; every error a rule can have at load time is found here.
    pub fn compile(sql: &str) -> Result<Rule, CompileError> {
        let statement = crate::parser::parse(sql)?;
        let mut sources = Vec::new();
        for from in &statement.from {
            if let Some(ev) = from.strip_prefix("$events/") {
                let e =
                    Event::from_name(ev).ok_or_else(|| CompileError::UnknownEvent(from.clone()))?;
                sources.push(Source::Event(e));
            } else if from.starts_with("$bridges/") {
                sources.push(Source::Bridge(from.clone()));
            } else {
                ferry_mqtt::topic::validate_filter(from).map_err(|e| CompileError::BadFrom {
                    filter: from.clone(),
                    why: e.to_string(),
                })?;
                sources.push(Source::Topic(from.clone()));
            }
        }
        Ok(Rule {
            sql: sql.to_owned(),
            statement,
            sources,
        })
    }

    /// Runs the rule on one input. `Ok` holds at least one output for SELECT; FOREACH may
    /// give none (then `NoResult`).
    pub fn apply(&self, input: &dyn Columns) -> Result<Vec<Map>, RuleError> {
        self.apply_reporting(input, &mut Report::default())
    }

    /// Like [`Rule::apply`], and tells what the caller may want to count.
    pub fn apply_reporting(
        &self,
        input: &dyn Columns,
        report: &mut Report,
    ) -> Result<Vec<Map>, RuleError> {
        let mut env = Env::new(input);
        let r = self.apply_in(&mut env, input);
        report.payload_not_json |= env.non_json_payload;
        r
    }

    /// Is this a plain `SELECT *` (with or without WHERE)? Its one output is every column
    /// of the input, so a caller may skip building it ([`Rule::check_star`],
    /// [`crate::Bindings::Star`]).
    pub fn is_select_star(&self) -> bool {
        matches!(&self.statement.kind, Kind::Select(fields) if matches!(fields.as_slice(), [Field::Star]))
    }

    /// For a rule that [`Rule::is_select_star`]: evaluates only its WHERE, as
    /// [`Rule::apply_reporting`] would, without building the output. `Ok` means the one
    /// output (the input's columns) passes.
    pub fn check_star(&self, input: &dyn Columns, report: &mut Report) -> Result<(), RuleError> {
        debug_assert!(self.is_select_star());
        let Some(c) = &self.statement.condition else {
            return Ok(());
        };
        let mut env = Env::new(input);
        env.star = true;
        let passed = env.eval(c);
        report.payload_not_json |= env.non_json_payload;
        if passed?.is_true() {
            Ok(())
        } else {
            Err(RuleError::NoResult)
        }
    }

    fn apply_in(&self, env: &mut Env<'_>, input: &dyn Columns) -> Result<Vec<Map>, RuleError> {
        match &self.statement.kind {
            Kind::Select(fields) => {
                select(env, fields)?;
                if let Some(c) = &self.statement.condition
                    && !env.eval(c)?.is_true()
                {
                    return Err(RuleError::NoResult);
                }
                Ok(vec![std::mem::take(&mut env.selected)])
            }
            Kind::Foreach {
                lets,
                list,
                alias,
                fields,
                incase,
            } => {
                // EMQX's select_and_collect: the items in order, then the list; WHERE
                // sees every name they bound.
                select(env, lets)?;
                let listv = env.eval(list)?;
                if let Some(a) = alias {
                    env.selected.insert(a.clone(), listv.clone());
                }
                if let Some(c) = &self.statement.condition
                    && !env.eval(c)?.is_true()
                {
                    return Err(RuleError::NoResult);
                }
                // Anything but an array (or a JSON array in a string) yields no output.
                let items = match listv {
                    Value::Array(a) => a,
                    Value::Str(s) => match Value::from_json(s.as_bytes()) {
                        Some(Value::Array(a)) => a,
                        _ => Vec::new(),
                    },
                    _ => Vec::new(),
                };
                let scope = std::mem::take(&mut env.selected);
                let name = alias.as_deref().unwrap_or("item");
                let mut outs = Vec::new();
                for item in items {
                    let mut env = Env::new(input);
                    env.item = Some((name, item));
                    env.scope = Some(&scope);
                    let env = &mut env;
                    if let Some(c) = incase
                        && !env.eval(c)?.is_true()
                    {
                        continue;
                    }
                    if fields.is_empty() {
                        match env.item.take().map(|(_, v)| v) {
                            Some(Value::Map(m)) => outs.push(m),
                            Some(other) => outs.push(Map::from_iter([(name.to_owned(), other)])),
                            None => {}
                        }
                    } else {
                        select(env, fields)?;
                        outs.push(std::mem::take(&mut env.selected));
                    }
                }
                if outs.is_empty() {
                    Err(RuleError::NoResult)
                } else {
                    Ok(outs)
                }
            }
        }
    }
}

/// Evaluates the fields into `env.selected`, so each alias is visible to the fields after
/// it and to WHERE.
fn select(env: &mut Env<'_>, fields: &[Field]) -> Result<(), EvalError> {
    env.selected = Map::new();
    for field in fields {
        match field {
            Field::Star => {
                for (k, v) in env.input.all() {
                    env.selected.insert(k, v);
                }
            }
            Field::Expr { expr, alias } => {
                let v = env.eval(expr)?;
                match alias {
                    Some(segs) => put_alias(&mut env.selected, segs, v),
                    None if matches!(expr, Expr::Var(_)) => {
                        if let Expr::Var(name) = expr {
                            env.selected.insert(name.clone(), v);
                        }
                    }
                    None => match path_segs(expr) {
                        Some(segs) => put_alias(&mut env.selected, &segs, v),
                        None => {
                            env.selected.insert(expr.to_string(), v);
                        }
                    },
                }
            }
        }
    }
    Ok(())
}

/// `payload.a.b` (or `payload.x[2].y`) selected without alias lands at
/// `{"payload": {"a": {"b": …}}}` (`{"payload": {"x": [{"y": …}]}}`), as in EMQX.
fn path_segs(e: &Expr) -> Option<Vec<AliasSeg>> {
    match e {
        Expr::Var(n) => Some(vec![AliasSeg::Key(n.clone())]),
        Expr::Get(base, seg) => {
            let mut v = path_segs(base)?;
            v.push(match seg {
                Seg::Key(k) => AliasSeg::Key(k.clone()),
                Seg::Index(0) => AliasSeg::Head,
                Seg::Index(i) => AliasSeg::Nth(*i),
                Seg::Range(..) => return None,
            });
            Some(v)
        }
        _ => None,
    }
}

/// EMQX's `emqx_rule_maps:nested_put` on the selected fields: keys go into maps (a string
/// holding a JSON object, such as a selected raw payload, is decoded first; anything else
/// is replaced by a new map), indexes into lists (`[0]` prepends, `[-0]` appends, `[N]`
/// sets an existing element; a value that is not a list becomes a one-element list).
fn put_alias(m: &mut Map, segs: &[AliasSeg], v: Value) {
    match segs {
        [AliasSeg::Key(k)] => {
            m.insert(k.clone(), v);
        }
        [AliasSeg::Key(k), rest @ ..] => {
            let slot = m.entry(k.clone()).or_insert(Value::Null);
            put_value(slot, rest, v);
        }
        // Parsed aliases and selected paths start with a key.
        _ => {}
    }
}

fn decoded(slot: &Value) -> Option<Value> {
    match slot {
        Value::Str(_) | Value::Bin(_) => Value::from_json(slot.as_bytes()?),
        _ => None,
    }
}

fn put_value(slot: &mut Value, segs: &[AliasSeg], v: Value) {
    let Some((first, rest)) = segs.split_first() else {
        *slot = v;
        return;
    };
    if let Some(d) = decoded(slot) {
        let fits = matches!(
            (first, &d),
            (AliasSeg::Key(_), Value::Map(_))
                | (
                    AliasSeg::Nth(_) | AliasSeg::Head | AliasSeg::Tail,
                    Value::Array(_)
                )
        );
        if fits {
            *slot = d;
        }
    }
    let build = |v| {
        let mut x = Value::Null;
        put_value(&mut x, rest, v);
        x
    };
    match first {
        AliasSeg::Key(k) => {
            if !matches!(slot, Value::Map(_)) {
                *slot = Value::Map(Map::new());
            }
            if let Value::Map(m) = slot {
                put_value(m.entry(k.clone()).or_insert(Value::Null), rest, v);
            }
        }
        idx => {
            let Value::Array(list) = slot else {
                *slot = Value::Array(vec![build(v)]);
                return;
            };
            let len = list.len() as i64;
            match idx {
                AliasSeg::Head => list.insert(0, build(v)),
                AliasSeg::Tail => list.push(build(v)),
                AliasSeg::Nth(n) => {
                    let pos = if *n > 0 { n - 1 } else { len + n };
                    if (0..len).contains(&pos) {
                        put_value(&mut list[pos as usize], rest, v);
                    }
                }
                AliasSeg::Key(_) => {}
            }
        }
    }
}

/// Inserts `v` at a nested path, creating (or replacing non-map) intermediate maps.
pub(crate) fn put_path(m: &mut Map, parts: &[&str], v: Value) {
    match parts {
        [] => {}
        [last] => {
            m.insert((*last).to_owned(), v);
        }
        [first, rest @ ..] => {
            let entry = m
                .entry((*first).to_owned())
                .or_insert_with(|| Value::Map(Map::new()));
            if !matches!(entry, Value::Map(_)) {
                *entry = Value::Map(Map::new());
            }
            if let Value::Map(inner) = entry {
                put_path(inner, rest, v);
            }
        }
    }
}
