//! String functions. Positions follow EMQX: `substr` is 0-based, `find` returns the rest of
//! the string from the match.

use std::cell::RefCell;
use std::collections::HashMap;

use regex::Regex;

use super::{array, err, int, text};
use crate::error::EvalError;
use crate::eval::Env;
use crate::value::{Value, format_float};

type R = Result<Value, EvalError>;

fn s(v: String) -> R {
    Ok(Value::Str(v))
}

pub(super) fn lower(a: &[Value], _: &mut Env<'_>) -> R {
    s(text(&a[0], "lower")?.to_lowercase())
}
pub(super) fn upper(a: &[Value], _: &mut Env<'_>) -> R {
    s(text(&a[0], "upper")?.to_uppercase())
}
pub(super) fn trim(a: &[Value], _: &mut Env<'_>) -> R {
    s(text(&a[0], "trim")?.trim().to_owned())
}
pub(super) fn ltrim(a: &[Value], _: &mut Env<'_>) -> R {
    s(text(&a[0], "ltrim")?.trim_start().to_owned())
}
pub(super) fn rtrim(a: &[Value], _: &mut Env<'_>) -> R {
    s(text(&a[0], "rtrim")?.trim_end().to_owned())
}
pub(super) fn reverse(a: &[Value], _: &mut Env<'_>) -> R {
    s(text(&a[0], "reverse")?.chars().rev().collect())
}
pub(super) fn strlen(a: &[Value], _: &mut Env<'_>) -> R {
    Ok(Value::Int(text(&a[0], "strlen")?.chars().count() as i64))
}

pub(super) fn substr(a: &[Value], _: &mut Env<'_>) -> R {
    let chars: Vec<char> = text(&a[0], "substr")?.chars().collect();
    let start = int(&a[1], "substr")?;
    if start < 0 {
        return err("substr: start must be >= 0");
    }
    let start = (start as usize).min(chars.len());
    let end = match a.get(2) {
        Some(l) => {
            let l = int(l, "substr")?;
            if l < 0 {
                return err("substr: length must be >= 0");
            }
            (start + l as usize).min(chars.len())
        }
        None => chars.len(),
    };
    s(chars[start..end].iter().collect())
}

fn strings(parts: impl Iterator<Item = String>) -> R {
    Ok(Value::Array(parts.map(Value::Str).collect()))
}

/// `split(Str, Sep)` drops empty parts; `split(Str, Sep, 'notrim')` keeps them;
/// `'leading'`/`'trailing'` split once at the first/last separator.
pub(super) fn split(a: &[Value], _: &mut Env<'_>) -> R {
    let st = text(&a[0], "split")?;
    let sep = text(&a[1], "split")?;
    if sep.is_empty() {
        return err("split: empty separator");
    }
    let mode = match a.get(2) {
        Some(m) => text(m, "split")?,
        None => "all".into(),
    };
    let once = match mode.as_str() {
        "all" => {
            return strings(
                st.split(sep.as_str())
                    .filter(|p| !p.is_empty())
                    .map(str::to_owned),
            );
        }
        "notrim" => return strings(st.split(sep.as_str()).map(str::to_owned)),
        "leading" => st.split_once(sep.as_str()),
        "trailing" => st.rsplit_once(sep.as_str()),
        other => {
            return err(format!(
                "split: unknown option {other:?} (notrim, leading or trailing)"
            ));
        }
    };
    match once {
        Some((x, y)) => strings(
            [x, y]
                .into_iter()
                .filter(|p| !p.is_empty())
                .map(str::to_owned),
        ),
        None => strings(std::iter::once(st)),
    }
}

/// `concat(A, B, ...)` or `concat([A, B, ...])`.
pub(super) fn concat(a: &[Value], _: &mut Env<'_>) -> R {
    let items: &[Value] = if a.len() == 1 {
        array(&a[0], "concat")?
    } else {
        a
    };
    let mut out = String::new();
    for v in items {
        match v {
            Value::Null => {}
            other => out.push_str(&other.to_text()),
        }
    }
    s(out)
}

/// `tokens(Str, SepChars)`: split at any of the characters; `'nocrlf'` adds CR and LF.
pub(super) fn tokens(a: &[Value], _: &mut Env<'_>) -> R {
    let st = text(&a[0], "tokens")?;
    let mut seps: Vec<char> = text(&a[1], "tokens")?.chars().collect();
    if let Some(o) = a.get(2) {
        if text(o, "tokens")? == "nocrlf" {
            seps.extend(['\r', '\n']);
        } else {
            return err("tokens: the third argument can only be 'nocrlf'");
        }
    }
    strings(
        st.split(|c| seps.contains(&c))
            .filter(|p| !p.is_empty())
            .map(str::to_owned),
    )
}

fn erlang_term(v: &Value) -> String {
    match v {
        Value::Str(s) => format!("<<\"{s}\">>"),
        Value::Float(f) => format_float(*f),
        other => other.to_text(),
    }
}

/// Erlang-style formatting: `~s ~p ~w ~d ~f ~e ~g ~c ~n ~~`.
pub(super) fn sprintf(a: &[Value], _: &mut Env<'_>) -> R {
    let fmt = text(&a[0], "sprintf")?;
    let mut args = a[1..].iter();
    let mut out = String::new();
    let mut chars = fmt.chars().peekable();
    let mut next = |d: char| {
        args.next()
            .ok_or_else(|| EvalError::new(format!("sprintf: no argument for ~{d}")))
    };
    while let Some(c) = chars.next() {
        if c != '~' {
            out.push(c);
            continue;
        }
        let Some(d) = chars.next() else {
            return err("sprintf: format ends with ~");
        };
        match d {
            '~' => out.push('~'),
            'n' => out.push('\n'),
            's' => out.push_str(&next(d)?.to_text()),
            'p' | 'w' => out.push_str(&erlang_term(next(d)?)),
            'd' => out.push_str(&int(next(d)?, "sprintf ~d")?.to_string()),
            'f' => out.push_str(&format!("{:.6}", super::num(next(d)?, "sprintf ~f")?)),
            'e' => out.push_str(&format!("{:.5e}", super::num(next(d)?, "sprintf ~e")?)),
            'g' => out.push_str(&format_float(super::num(next(d)?, "sprintf ~g")?)),
            'c' => {
                let code = int(next(d)?, "sprintf ~c")?;
                out.push(char::from_u32(code as u32).unwrap_or('\u{fffd}'));
            }
            other => return err(format!("sprintf: unsupported directive ~{other}")),
        }
    }
    if args.next().is_some() {
        return err("sprintf: more arguments than directives");
    }
    s(out)
}

/// `pad(Str, Len[, trailing|leading|both[, Char]])`.
pub(super) fn pad(a: &[Value], _: &mut Env<'_>) -> R {
    let st = text(&a[0], "pad")?;
    let len = int(&a[1], "pad")?.max(0) as usize;
    let how = match a.get(2) {
        Some(v) => text(v, "pad")?,
        None => "trailing".into(),
    };
    let ch = match a.get(3) {
        Some(v) => text(v, "pad")?.chars().next().unwrap_or(' '),
        None => ' ',
    };
    let have = st.chars().count();
    if have >= len {
        return s(st);
    }
    let fill = len - have;
    let rep = |n: usize| std::iter::repeat_n(ch, n).collect::<String>();
    match how.as_str() {
        "trailing" => s(st + &rep(fill)),
        "leading" => s(rep(fill) + &st),
        "both" => s(rep(fill / 2) + &st + &rep(fill - fill / 2)),
        other => err(format!("pad: unknown direction {other:?}")),
    }
}

/// `replace(Str, Pattern, Replacement[, all|leading|trailing])`.
pub(super) fn replace(a: &[Value], _: &mut Env<'_>) -> R {
    let st = text(&a[0], "replace")?;
    let pat = text(&a[1], "replace")?;
    let rep = text(&a[2], "replace")?;
    if pat.is_empty() {
        return s(st);
    }
    let how = match a.get(3) {
        Some(v) => text(v, "replace")?,
        None => "all".into(),
    };
    match how.as_str() {
        "all" => s(st.replace(&pat, &rep)),
        "leading" => s(st.replacen(&pat, &rep, 1)),
        "trailing" => match st.rfind(&pat) {
            Some(i) => s(format!("{}{}{}", &st[..i], rep, &st[i + pat.len()..])),
            None => s(st),
        },
        other => err(format!("replace: unknown option {other:?}")),
    }
}

thread_local! {
    static REGEX_CACHE: RefCell<HashMap<String, Regex>> = RefCell::new(HashMap::new());
}

/// Compiles once per thread (bounded cache): rules reuse the same few patterns.
fn with_regex<T>(pattern: &str, f: impl FnOnce(&Regex) -> T) -> Result<T, EvalError> {
    REGEX_CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if !c.contains_key(pattern) {
            let re = Regex::new(pattern)
                .map_err(|e| EvalError::new(format!("invalid regex {pattern:?}: {e}")))?;
            if c.len() >= 256 {
                c.clear();
            }
            c.insert(pattern.to_owned(), re);
        }
        match c.get(pattern) {
            Some(re) => Ok(f(re)),
            None => err("regex cache"),
        }
    })
}

pub(super) fn regex_match(a: &[Value], _: &mut Env<'_>) -> R {
    let st = text(&a[0], "regex_match")?;
    Ok(Value::Bool(with_regex(
        &text(&a[1], "regex_match")?,
        |re| re.is_match(&st),
    )?))
}

/// Erlang `re:replace` syntax in the replacement: `&` is the whole match, `\N` a group.
pub(super) fn regex_replace(a: &[Value], _: &mut Env<'_>) -> R {
    let st = text(&a[0], "regex_replace")?;
    let rep = text(&a[2], "regex_replace")?;
    let mut translated = String::new();
    let mut chars = rep.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '&' => translated.push_str("${0}"),
            '\\' => match chars.peek().copied() {
                Some(d) if d.is_ascii_digit() => {
                    chars.next();
                    translated.push_str(&format!("${{{d}}}"));
                }
                Some('&') => {
                    chars.next();
                    translated.push('&');
                }
                _ => translated.push('\\'),
            },
            '$' => translated.push_str("$$"),
            other => translated.push(other),
        }
    }
    s(with_regex(&text(&a[1], "regex_replace")?, |re| {
        re.replace_all(&st, translated.as_str()).into_owned()
    })?)
}

/// The capture groups of the first match (the whole match if the pattern has no group);
/// an empty array when nothing matches.
pub(super) fn regex_extract(a: &[Value], _: &mut Env<'_>) -> R {
    let st = text(&a[0], "regex_extract")?;
    with_regex(&text(&a[1], "regex_extract")?, |re| {
        match re.captures(&st) {
            None => Value::Array(Vec::new()),
            Some(c) if c.len() == 1 => Value::Array(vec![Value::Str(c[0].to_owned())]),
            Some(c) => Value::Array(
                c.iter()
                    .skip(1)
                    .map(|m| Value::Str(m.map_or(String::new(), |m| m.as_str().to_owned())))
                    .collect(),
            ),
        }
    })
}

pub(super) fn ascii(a: &[Value], _: &mut Env<'_>) -> R {
    match text(&a[0], "ascii")?.chars().next() {
        Some(c) => Ok(Value::Int(c as i64)),
        None => err("ascii: empty string"),
    }
}

/// `find(Str, Sub[, leading|trailing])`: the rest of Str from the first (or last) Sub, or ''.
pub(super) fn find(a: &[Value], _: &mut Env<'_>) -> R {
    let st = text(&a[0], "find")?;
    let sub = text(&a[1], "find")?;
    let how = match a.get(2) {
        Some(v) => text(v, "find")?,
        None => "leading".into(),
    };
    let pos = match how.as_str() {
        "leading" => st.find(&sub),
        "trailing" => st.rfind(&sub),
        other => return err(format!("find: unknown option {other:?}")),
    };
    s(pos.map_or(String::new(), |i| st[i..].to_owned()))
}

pub(super) fn join_to_string(a: &[Value], _: &mut Env<'_>) -> R {
    let sep = text(&a[0], "join_to_string")?;
    let parts: Vec<String> = array(&a[1], "join_to_string")?
        .iter()
        .map(Value::to_text)
        .collect();
    s(parts.join(&sep))
}

/// Turns escape sequences (`\n`, `\t`, `\\`, `\"`, `\uXXXX`, ...) into the characters.
pub(super) fn unescape(a: &[Value], _: &mut Env<'_>) -> R {
    let st = text(&a[0], "unescape")?;
    let mut out = String::with_capacity(st.len());
    let mut chars = st.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('b') => out.push('\u{8}'),
            Some('f') => out.push('\u{c}'),
            Some('v') => out.push('\u{b}'),
            Some('0') => out.push('\0'),
            Some('a') => out.push('\u{7}'),
            Some('u') => {
                let hex: String = chars.by_ref().take(4).collect();
                match u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                    Some(ch) => out.push(ch),
                    None => return err(format!("unescape: invalid \\u{hex}")),
                }
            }
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    s(out)
}
