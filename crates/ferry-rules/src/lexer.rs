//! Tokens of rule SQL, each with its line and column (1-based) for error messages.

use std::fmt;

use crate::error::ParseError;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    Ident(String),
    /// 'single quoted' string.
    Str(String),
    /// "double quoted" string (topics in FROM; also a string elsewhere).
    DStr(String),
    Int(i64),
    Float(f64),
    LParen,
    RParen,
    LBracket,
    RBracket,
    LBrace,
    RBrace,
    Comma,
    Dot,
    DotDot,
    Colon,
    Plus,
    Minus,
    Star,
    Slash,
    Eq,
    Ne,
    Gt,
    Lt,
    Ge,
    Le,
    Match,
    Eof,
}

impl fmt::Display for Tok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tok::Ident(s) => write!(f, "'{s}'"),
            Tok::Str(s) => write!(f, "string '{s}'"),
            Tok::DStr(s) => write!(f, "string \"{s}\""),
            Tok::Int(i) => write!(f, "number {i}"),
            Tok::Float(x) => write!(f, "number {x}"),
            Tok::Eof => f.write_str("end of input"),
            other => {
                let s = match other {
                    Tok::LParen => "(",
                    Tok::RParen => ")",
                    Tok::LBracket => "[",
                    Tok::RBracket => "]",
                    Tok::LBrace => "{",
                    Tok::RBrace => "}",
                    Tok::Comma => ",",
                    Tok::Dot => ".",
                    Tok::DotDot => "..",
                    Tok::Colon => ":",
                    Tok::Plus => "+",
                    Tok::Minus => "-",
                    Tok::Star => "*",
                    Tok::Slash => "/",
                    Tok::Eq => "=",
                    Tok::Ne => "!=",
                    Tok::Gt => ">",
                    Tok::Lt => "<",
                    Tok::Ge => ">=",
                    Tok::Le => "<=",
                    Tok::Match => "=~",
                    _ => "?",
                };
                write!(f, "'{s}'")
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub(crate) tok: Tok,
    pub(crate) line: usize,
    pub(crate) col: usize,
}

pub(crate) fn lex(src: &str) -> Result<Vec<Token>, ParseError> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let (mut i, mut line, mut col) = (0usize, 1usize, 1usize);
    macro_rules! bump {
        () => {{
            if chars[i] == '\n' {
                line += 1;
                col = 1;
            } else {
                col += 1;
            }
            i += 1;
        }};
    }
    while i < chars.len() {
        let c = chars[i];
        let (tl, tc) = (line, col);
        let push = |out: &mut Vec<Token>, tok| {
            out.push(Token {
                tok,
                line: tl,
                col: tc,
            })
        };
        if c.is_whitespace() {
            bump!();
            continue;
        }
        // -- comments to end of line
        if c == '-' && chars.get(i + 1) == Some(&'-') {
            while i < chars.len() && chars[i] != '\n' {
                bump!();
            }
            continue;
        }
        if c.is_ascii_alphabetic() || c == '_' || c == '$' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == '$')
            {
                bump!();
            }
            push(&mut out, Tok::Ident(chars[start..i].iter().collect()));
            continue;
        }
        if c.is_ascii_digit() {
            let start = i;
            while i < chars.len() && chars[i].is_ascii_digit() {
                bump!();
            }
            let mut is_float = false;
            // "1..3" is a range, not a float.
            if i + 1 < chars.len() && chars[i] == '.' && chars[i + 1].is_ascii_digit() {
                is_float = true;
                bump!();
                while i < chars.len() && chars[i].is_ascii_digit() {
                    bump!();
                }
            }
            if i < chars.len() && (chars[i] == 'e' || chars[i] == 'E') {
                let save = (i, line, col);
                bump!();
                if i < chars.len() && (chars[i] == '+' || chars[i] == '-') {
                    bump!();
                }
                if i < chars.len() && chars[i].is_ascii_digit() {
                    is_float = true;
                    while i < chars.len() && chars[i].is_ascii_digit() {
                        bump!();
                    }
                } else {
                    (i, line, col) = save;
                }
            }
            let text: String = chars[start..i].iter().collect();
            let tok = if is_float {
                Tok::Float(
                    text.parse()
                        .map_err(|_| ParseError::new(tl, tc, &text, "a number"))?,
                )
            } else {
                // EMQX's integers are unbounded; ours are 64-bit, and a literal that does
                // not fit is an error rather than a silently rounded float.
                Tok::Int(text.parse::<i64>().map_err(|_| {
                    ParseError::new(tl, tc, &text, "an integer that fits in 64 bits")
                })?)
            };
            push(&mut out, tok);
            continue;
        }
        if c == '\'' || c == '"' {
            let quote = c;
            bump!();
            let mut s = String::new();
            loop {
                if i >= chars.len() {
                    return Err(ParseError::new(
                        tl,
                        tc,
                        "an unterminated string",
                        &format!("a closing {quote}"),
                    ));
                }
                let ch = chars[i];
                if ch == quote {
                    // A doubled quote is an escaped quote.
                    if chars.get(i + 1) == Some(&quote) {
                        s.push(quote);
                        bump!();
                        bump!();
                        continue;
                    }
                    bump!();
                    break;
                }
                if ch == '\\' && i + 1 < chars.len() {
                    let next = chars[i + 1];
                    let esc = match next {
                        'n' => Some('\n'),
                        't' => Some('\t'),
                        'r' => Some('\r'),
                        '\\' => Some('\\'),
                        '\'' => Some('\''),
                        '"' => Some('"'),
                        _ => None,
                    };
                    if let Some(e) = esc {
                        s.push(e);
                        bump!();
                        bump!();
                        continue;
                    }
                }
                s.push(ch);
                bump!();
            }
            push(
                &mut out,
                if quote == '\'' {
                    Tok::Str(s)
                } else {
                    Tok::DStr(s)
                },
            );
            continue;
        }
        let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
        let tok2 = match two.as_str() {
            "!=" => Some(Tok::Ne),
            "<>" => Some(Tok::Ne),
            ">=" => Some(Tok::Ge),
            "<=" => Some(Tok::Le),
            "=~" => Some(Tok::Match),
            ".." => Some(Tok::DotDot),
            _ => None,
        };
        if let Some(t) = tok2 {
            push(&mut out, t);
            bump!();
            bump!();
            continue;
        }
        let tok = match c {
            '(' => Tok::LParen,
            ')' => Tok::RParen,
            '[' => Tok::LBracket,
            ']' => Tok::RBracket,
            '{' => Tok::LBrace,
            '}' => Tok::RBrace,
            ',' => Tok::Comma,
            '.' => Tok::Dot,
            ':' => Tok::Colon,
            '+' => Tok::Plus,
            '-' => Tok::Minus,
            '*' => Tok::Star,
            '/' => Tok::Slash,
            '=' => Tok::Eq,
            '>' => Tok::Gt,
            '<' => Tok::Lt,
            other => {
                return Err(ParseError::new(
                    tl,
                    tc,
                    &format!("'{other}'"),
                    "an expression, operator or keyword",
                ));
            }
        };
        push(&mut out, tok);
        bump!();
    }
    out.push(Token {
        tok: Tok::Eof,
        line,
        col,
    });
    Ok(out)
}
