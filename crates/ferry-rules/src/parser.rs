//! Pratt parser for EMQX rule SQL. Precedence, lowest first:
//! OR < AND < NOT < comparison (incl. `=~`, `IN`, `NOT IN`) < `+ -` < `* / div mod` < unary
//! minus < `.`/`[]`. `div` and `mod` are also functions (`mod(7, 2)`), as in EMQX.
//! Function names and arities are checked here, so a bad rule fails when it is loaded.

use crate::ast::*;
use crate::error::{CompileError, ParseError};
use crate::funcs;
use crate::lexer::{Tok, Token, lex};
use crate::value::Value;

const KEYWORDS: &[&str] = &[
    "select", "from", "where", "as", "foreach", "do", "incase", "case", "when", "then", "else",
    "end", "and", "or", "not", "in", "div", "mod", "true", "false", "null",
];

pub(crate) fn is_keyword(s: &str) -> bool {
    KEYWORDS.iter().any(|k| k.eq_ignore_ascii_case(s))
}

struct Parser {
    toks: Vec<Token>,
    pos: usize,
}

type PResult<T> = Result<T, CompileError>;

const BP_OR: u8 = 1;
const BP_AND: u8 = 3;
const BP_NOT: u8 = 5;
const BP_CMP: u8 = 7;
const BP_ADD: u8 = 9;
const BP_MUL: u8 = 11;
const BP_NEG: u8 = 13;

/// Parses a whole statement.
pub fn parse(sql: &str) -> Result<Statement, CompileError> {
    let mut p = Parser {
        toks: lex(sql)?,
        pos: 0,
    };
    let stmt = p.statement()?;
    p.expect_eof()?;
    Ok(stmt)
}

/// Parses one expression (used for template paths and tests).
pub fn parse_expr(src: &str) -> Result<Expr, CompileError> {
    let mut p = Parser {
        toks: lex(src)?,
        pos: 0,
    };
    let e = p.expr(0)?;
    p.expect_eof()?;
    Ok(e)
}

impl Parser {
    fn peek(&self) -> &Token {
        &self.toks[self.pos.min(self.toks.len() - 1)]
    }
    /// Returns the current token and advances (past the end, `peek` keeps giving EOF, and
    /// `pos -= 1` always steps back to the token just returned).
    fn next(&mut self) -> Token {
        let t = self.peek().clone();
        self.pos += 1;
        t
    }
    fn err(&self, expected: &str) -> CompileError {
        let t = self.peek();
        ParseError::new(t.line, t.col, &t.tok.to_string(), expected).into()
    }
    fn is_kw(&self, kw: &str) -> bool {
        matches!(&self.peek().tok, Tok::Ident(s) if s.eq_ignore_ascii_case(kw))
    }
    fn eat_kw(&mut self, kw: &str) -> bool {
        if self.is_kw(kw) {
            self.next();
            true
        } else {
            false
        }
    }
    fn expect_kw(&mut self, kw: &str) -> PResult<()> {
        if self.eat_kw(kw) {
            Ok(())
        } else {
            Err(self.err(&kw.to_uppercase()))
        }
    }
    fn eat(&mut self, t: &Tok) -> bool {
        if &self.peek().tok == t {
            self.next();
            true
        } else {
            false
        }
    }
    fn expect(&mut self, t: &Tok) -> PResult<()> {
        if self.eat(t) {
            Ok(())
        } else {
            Err(self.err(&t.to_string()))
        }
    }
    fn expect_eof(&mut self) -> PResult<()> {
        if self.peek().tok == Tok::Eof {
            Ok(())
        } else {
            Err(self.err("end of input"))
        }
    }

    fn statement(&mut self) -> PResult<Statement> {
        let kind = if self.eat_kw("select") {
            Kind::Select(self.fields(true)?)
        } else if self.eat_kw("foreach") {
            let mut lets = self.fields(false)?;
            let Some(Field::Expr { expr: list, alias }) = lets.pop() else {
                return Err(self.err("an expression to iterate over"));
            };
            let alias = match alias.as_deref() {
                None => None,
                Some([AliasSeg::Key(k)]) => Some(k.clone()),
                Some(_) => return Err(self.err("a plain name for each element")),
            };
            let fields = if self.eat_kw("do") {
                self.fields(false)?
            } else {
                Vec::new()
            };
            let incase = if self.eat_kw("incase") {
                Some(self.expr(0)?)
            } else {
                None
            };
            Kind::Foreach {
                lets,
                list,
                alias,
                fields,
                incase,
            }
        } else {
            return Err(self.err("SELECT or FOREACH"));
        };
        self.expect_kw("from")?;
        let mut from = Vec::new();
        loop {
            match self.next().tok {
                Tok::DStr(s) | Tok::Str(s) => from.push(s),
                _ => {
                    self.pos -= 1;
                    return Err(self.err("a topic in double quotes"));
                }
            }
            if !self.eat(&Tok::Comma) {
                break;
            }
        }
        let condition = if self.eat_kw("where") {
            Some(self.expr(0)?)
        } else {
            None
        };
        Ok(Statement {
            kind,
            from,
            condition,
        })
    }

    fn ident(&mut self, what: &str) -> PResult<String> {
        match &self.peek().tok {
            Tok::Ident(s) if !is_keyword(s) => {
                let s = s.clone();
                self.next();
                Ok(s)
            }
            Tok::Str(s) | Tok::DStr(s) => {
                let s = s.clone();
                self.next();
                Ok(s)
            }
            _ => Err(self.err(what)),
        }
    }

    fn fields(&mut self, allow_star: bool) -> PResult<Vec<Field>> {
        let mut out = Vec::new();
        loop {
            if allow_star && self.eat(&Tok::Star) {
                out.push(Field::Star);
            } else {
                let expr = self.expr(0)?;
                let alias = if self.eat_kw("as") {
                    let mut parts = vec![AliasSeg::Key(self.ident("an alias")?)];
                    loop {
                        if self.eat(&Tok::Dot) {
                            parts.push(AliasSeg::Key(self.ident("an alias part")?));
                        } else if self.eat(&Tok::LBracket) {
                            let neg = self.eat(&Tok::Minus);
                            let n = self.int("an index")?;
                            parts.push(match (neg, n) {
                                (false, 0) => AliasSeg::Head,
                                (true, 0) => AliasSeg::Tail,
                                (true, n) => AliasSeg::Nth(-n),
                                (false, n) => AliasSeg::Nth(n),
                            });
                            self.expect(&Tok::RBracket)?;
                        } else {
                            break;
                        }
                    }
                    Some(parts)
                } else {
                    None
                };
                out.push(Field::Expr { expr, alias });
            }
            if !self.eat(&Tok::Comma) {
                return Ok(out);
            }
        }
    }

    fn infix(&self) -> Option<(BinOp, u8)> {
        let op = match &self.peek().tok {
            Tok::Ident(s) => match s.to_ascii_lowercase().as_str() {
                "or" => BinOp::Or,
                "and" => BinOp::And,
                "div" => BinOp::IntDiv,
                "mod" => BinOp::Mod,
                _ => return None,
            },
            Tok::Eq => BinOp::Eq,
            Tok::Ne => BinOp::Ne,
            Tok::Gt => BinOp::Gt,
            Tok::Lt => BinOp::Lt,
            Tok::Ge => BinOp::Ge,
            Tok::Le => BinOp::Le,
            Tok::Match => BinOp::Match,
            Tok::Plus => BinOp::Add,
            Tok::Minus => BinOp::Sub,
            Tok::Star => BinOp::Mul,
            Tok::Slash => BinOp::Div,
            _ => return None,
        };
        let bp = match op {
            BinOp::Or => BP_OR,
            BinOp::And => BP_AND,
            BinOp::Add | BinOp::Sub => BP_ADD,
            BinOp::Mul | BinOp::Div | BinOp::IntDiv | BinOp::Mod => BP_MUL,
            _ => BP_CMP,
        };
        Some((op, bp))
    }

    /// `IN (...)` or `NOT IN (...)` after an operand, if that is what comes next.
    fn in_list(&mut self, lhs: Expr) -> PResult<Result<Expr, Expr>> {
        let negated = if self.is_kw("in") {
            false
        } else if self.is_kw("not")
            && matches!(&self.toks.get(self.pos + 1).map(|t| &t.tok), Some(Tok::Ident(s)) if s.eq_ignore_ascii_case("in"))
        {
            self.next();
            true
        } else {
            return Ok(Err(lhs));
        };
        self.next();
        self.expect(&Tok::LParen)?;
        let mut list = Vec::new();
        if !self.eat(&Tok::RParen) {
            loop {
                list.push(self.expr(0)?);
                if self.eat(&Tok::RParen) {
                    break;
                }
                self.expect(&Tok::Comma)?;
            }
        }
        Ok(Ok(Expr::In {
            expr: Box::new(lhs),
            list,
            negated,
        }))
    }

    fn expr(&mut self, min_bp: u8) -> PResult<Expr> {
        let mut lhs = self.prefix()?;
        loop {
            if min_bp <= BP_CMP {
                match self.in_list(lhs)? {
                    Ok(e) => {
                        lhs = e;
                        continue;
                    }
                    Err(e) => lhs = e,
                }
            }
            let Some((op, bp)) = self.infix() else {
                break;
            };
            if bp < min_bp {
                break;
            }
            self.next();
            // Left associative: the right side binds tighter.
            let rhs = self.expr(bp + 1)?;
            lhs = Expr::Bin(op, Box::new(lhs), Box::new(rhs));
        }
        Ok(lhs)
    }

    fn prefix(&mut self) -> PResult<Expr> {
        let t = self.next();
        let e = match t.tok {
            Tok::Int(i) => Expr::Lit(Value::Int(i)),
            Tok::Float(f) => Expr::Lit(Value::Float(f)),
            // EMQX's lexer reads a double-quoted token as a name (a variable); Ferry keeps an
            // operand a string, so existing rules (`t =~ "cmd/#"`) keep working: ADR 0009.
            Tok::Str(s) | Tok::DStr(s) => Expr::Lit(Value::Str(s)),
            Tok::Minus => {
                let e = self.expr(BP_NEG)?;
                match e {
                    Expr::Lit(Value::Int(i)) => Expr::Lit(Value::Int(-i)),
                    Expr::Lit(Value::Float(f)) => Expr::Lit(Value::Float(-f)),
                    e => Expr::Neg(Box::new(e)),
                }
            }
            Tok::LParen => {
                let e = self.expr(0)?;
                self.expect(&Tok::RParen)?;
                e
            }
            Tok::LBracket => {
                let mut items = Vec::new();
                if !self.eat(&Tok::RBracket) {
                    loop {
                        items.push(self.expr(0)?);
                        if self.eat(&Tok::RBracket) {
                            break;
                        }
                        self.expect(&Tok::Comma)?;
                    }
                }
                Expr::Array(items)
            }
            Tok::LBrace => {
                let mut items = Vec::new();
                if !self.eat(&Tok::RBrace) {
                    loop {
                        let k = self.ident("an object key")?;
                        self.expect(&Tok::Colon)?;
                        items.push((k, self.expr(0)?));
                        if self.eat(&Tok::RBrace) {
                            break;
                        }
                        self.expect(&Tok::Comma)?;
                    }
                }
                Expr::Object(items)
            }
            Tok::Ident(name) => {
                let lower = name.to_ascii_lowercase();
                match lower.as_str() {
                    "true" => Expr::Lit(Value::Bool(true)),
                    "false" => Expr::Lit(Value::Bool(false)),
                    "null" if self.peek().tok != Tok::LParen => Expr::Lit(Value::Null),
                    "not" => Expr::Not(Box::new(self.expr(BP_NOT)?)),
                    "case" => self.case()?,
                    "div" | "mod" | "null" if self.peek().tok == Tok::LParen => {
                        self.next();
                        self.call(&name, t.line, t.col)?
                    }
                    _ if is_keyword(&lower) => {
                        self.pos -= 1;
                        return Err(self.err("an expression"));
                    }
                    _ if self.peek().tok == Tok::LParen => {
                        self.next();
                        self.call(&name, t.line, t.col)?
                    }
                    _ => Expr::Var(name),
                }
            }
            _ => {
                self.pos -= 1;
                return Err(self.err("an expression"));
            }
        };
        self.postfix(e)
    }

    /// A call's arguments, after its `(`; the name and arity are checked here.
    fn call(&mut self, name: &str, line: usize, column: usize) -> PResult<Expr> {
        let lower = name.to_ascii_lowercase();
        let mut args = Vec::new();
        if !self.eat(&Tok::RParen) {
            loop {
                args.push(self.expr(0)?);
                if self.eat(&Tok::RParen) {
                    break;
                }
                self.expect(&Tok::Comma)?;
            }
        }
        let func = funcs::lookup(&lower).ok_or(CompileError::UnknownFunction {
            name: name.to_owned(),
            line,
            column,
        })?;
        let f = &funcs::TABLE[func];
        if args.len() < f.min || args.len() > f.max {
            let expected = match (f.min, f.max) {
                (a, b) if a == b => a.to_string(),
                (a, usize::MAX) => format!("at least {a}"),
                (a, b) => format!("{a} to {b}"),
            };
            return Err(CompileError::Arity {
                name: f.name.to_owned(),
                expected,
                got: args.len(),
                line,
                column,
            });
        }
        Ok(Expr::Call { func, args })
    }

    fn postfix(&mut self, mut e: Expr) -> PResult<Expr> {
        loop {
            if self.eat(&Tok::Dot) {
                let t = self.next();
                let key = match t.tok {
                    Tok::Ident(s) | Tok::Str(s) | Tok::DStr(s) => s,
                    Tok::Int(i) => i.to_string(),
                    _ => {
                        self.pos -= 1;
                        return Err(self.err("a field name after '.'"));
                    }
                };
                e = Expr::Get(Box::new(e), Seg::Key(key));
            } else if self.peek().tok == Tok::LBracket && matches!(e, Expr::Var(_) | Expr::Get(..))
            {
                self.next();
                let a = self.int("an index")?;
                let seg = if self.eat(&Tok::DotDot) {
                    Seg::Range(a, self.int("the end of a range")?)
                } else {
                    Seg::Index(a)
                };
                self.expect(&Tok::RBracket)?;
                e = Expr::Get(Box::new(e), seg);
            } else {
                return Ok(e);
            }
        }
    }

    fn int(&mut self, what: &str) -> PResult<i64> {
        let neg = self.eat(&Tok::Minus);
        match self.peek().tok {
            Tok::Int(i) => {
                self.next();
                Ok(if neg { -i } else { i })
            }
            _ => Err(self.err(what)),
        }
    }

    fn case(&mut self) -> PResult<Expr> {
        let operand = if self.is_kw("when") {
            None
        } else {
            Some(Box::new(self.expr(0)?))
        };
        let mut whens = Vec::new();
        while self.eat_kw("when") {
            let w = self.expr(0)?;
            self.expect_kw("then")?;
            whens.push((w, self.expr(0)?));
        }
        if whens.is_empty() {
            return Err(self.err("WHEN"));
        }
        let otherwise = if self.eat_kw("else") {
            Some(Box::new(self.expr(0)?))
        } else {
            None
        };
        self.expect_kw("end")?;
        Ok(Expr::Case {
            operand,
            whens,
            otherwise,
        })
    }
}
