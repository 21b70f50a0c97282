//! ferry-rules: EMQX-compatible rule SQL.
//!
//! Owns: the lexer and Pratt parser ([`parser`]), the syntax tree ([`ast`]), compiled rules
//! ([`Rule`]), the evaluator, 100+ built-in functions with EMQX's names and semantics,
//! `${...}` templates ([`Template`]), the events rules can select from, [`RuleSet`] (which
//! rules a topic triggers, through a trie), and [`test_rule`] (the rule tester).
//!
//! Must not: do I/O, use async or tokio, know the broker or Kafka. Everything here is pure
//! and synchronous, so it can be fuzzed and benchmarked alone. Rules are compiled when they
//! are loaded: unknown functions, wrong arities and unknown events are load-time errors.

pub mod ast;
mod error;
mod eval;
mod events;
mod funcs;
mod input;
mod lexer;
pub mod parser;
mod rule;
mod template;
mod tester;
mod value;

pub use error::{CompileError, EvalError, ParseError};
pub use eval::Columns;
pub use events::Event;
pub use funcs::arity as function_arity;
pub use funcs::names as function_names;
pub use funcs::time::rfc3339_ms;
pub use input::{MapInput, MessageInput};
pub use rule::{Report, Rule, RuleError, Source};
pub use template::{Bindings, Template};
pub use tester::{TestError, test_rule};
pub use value::{Map, Value};

use ferry_mqtt::trie::Trie;

/// A set of rules indexed by what they listen to: topic filters in a trie, events by kind.
#[derive(Debug, Default)]
pub struct RuleSet<T> {
    rules: Vec<(Rule, T)>,
    topics: Trie<usize, ()>,
    events: Vec<(Event, usize)>,
    bridges: Vec<(String, usize)>,
}

impl<T> RuleSet<T> {
    pub fn new() -> RuleSet<T> {
        RuleSet {
            rules: Vec::new(),
            topics: Trie::default(),
            events: Vec::new(),
            bridges: Vec::new(),
        }
    }

    /// Adds a compiled rule with its payload (e.g. its actions and metrics).
    pub fn add(&mut self, rule: Rule, data: T) {
        let idx = self.rules.len();
        for s in &rule.sources {
            match s {
                Source::Topic(f) => {
                    self.topics.insert(f, idx, ());
                }
                Source::Event(e) => self.events.push((*e, idx)),
                Source::Bridge(b) => self.bridges.push((b.clone(), idx)),
            }
        }
        self.rules.push((rule, data));
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    pub fn rules(&self) -> impl Iterator<Item = &(Rule, T)> {
        self.rules.iter()
    }

    /// Rules whose FROM matches `topic`, each once, in the order they were added.
    pub fn for_topic(&self, topic: &str) -> Vec<&(Rule, T)> {
        let mut idx = Vec::new();
        let mut seen = std::collections::HashSet::new();
        // The trie stores the rule index as the key; the value is unit.
        self.topics.for_each_match_key(topic, |i| {
            if seen.insert(*i) {
                idx.push(*i);
            }
        });
        idx.sort_unstable();
        idx.into_iter().map(|i| &self.rules[i]).collect()
    }

    pub fn for_event(&self, e: Event) -> impl Iterator<Item = &(Rule, T)> {
        self.events
            .iter()
            .filter(move |(x, _)| *x == e)
            .map(|(_, i)| &self.rules[*i])
    }

    pub fn for_bridge<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s (Rule, T)> + 's {
        self.bridges
            .iter()
            .filter(move |(b, _)| b == name)
            .map(|(_, i)| &self.rules[*i])
    }

    /// Does any rule listen to events of this kind? (Lets the broker skip building them.)
    pub fn wants_event(&self, e: Event) -> bool {
        self.events.iter().any(|(x, _)| *x == e)
    }

    /// Does any rule select FROM a topic filter?
    pub fn has_topic_rules(&self) -> bool {
        !self.topics.is_empty()
    }
}
