//! Errors a person can act on: where, what was found, what was expected.

/// A syntax error in rule SQL or a template.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: expected {expected}, found {found}")]
pub struct ParseError {
    pub line: usize,
    pub column: usize,
    pub found: String,
    pub expected: String,
}

impl ParseError {
    pub(crate) fn new(line: usize, column: usize, found: &str, expected: &str) -> ParseError {
        ParseError {
            line,
            column,
            found: found.to_owned(),
            expected: expected.to_owned(),
        }
    }
}

/// A rule that parses but cannot be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompileError {
    #[error(transparent)]
    Syntax(#[from] ParseError),
    #[error("line {line}, column {column}: unknown function {name}()")]
    UnknownFunction {
        name: String,
        line: usize,
        column: usize,
    },
    #[error("line {line}, column {column}: {name}() takes {expected} arguments, got {got}")]
    Arity {
        name: String,
        expected: String,
        got: usize,
        line: usize,
        column: usize,
    },
    #[error(
        "unknown event topic \"{0}\" (known: $events/client_connected, $events/client_disconnected, $events/session_subscribed, $events/session_unsubscribed, $events/message_delivered, $events/message_acked, $events/message_dropped)"
    )]
    UnknownEvent(String),
    #[error("invalid topic filter \"{filter}\" in FROM: {why}")]
    BadFrom { filter: String, why: String },
    #[error("line {line}, column {column}: {what}")]
    Invalid {
        what: String,
        line: usize,
        column: usize,
    },
}

/// Why evaluating a rule failed for one message (counted as `failed.exception`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct EvalError(pub String);

impl EvalError {
    pub fn new(msg: impl Into<String>) -> EvalError {
        EvalError(msg.into())
    }
}
