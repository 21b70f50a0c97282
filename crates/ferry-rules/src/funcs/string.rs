//! String functions. Positions follow EMQX: `substr` is 0-based, `find` returns the rest of
//! the string from the match.

use std::cell::RefCell;
use std::collections::HashMap;

use regex::Regex;

use super::{array, err, int, subject, text};
use crate::error::EvalError;
use crate::eval::Env;
use crate::value::{Value, format_float};

type R = Result<Value, EvalError>;

fn s(v: String) -> R {
    Ok(Value::Str(v))
}

pub(super) fn lower(a: &[Value], _: &mut Env<'_>) -> R {
    s(subject(&a[0], "lower")?.to_lowercase())
}
pub(super) fn upper(a: &[Value], _: &mut Env<'_>) -> R {
    s(subject(&a[0], "upper")?.to_uppercase())
}
pub(super) fn trim(a: &[Value], _: &mut Env<'_>) -> R {
    s(subject(&a[0], "trim")?.trim().to_owned())
}
pub(super) fn ltrim(a: &[Value], _: &mut Env<'_>) -> R {
    s(subject(&a[0], "ltrim")?.trim_start().to_owned())
}
/// `rtrim(Str[, Chars])`: trailing whitespace, or trailing characters from Chars.
pub(super) fn rtrim(a: &[Value], _: &mut Env<'_>) -> R {
    let st = subject(&a[0], "rtrim")?;
    match a.get(1) {
        None => s(st.trim_end().to_owned()),
        Some(c) => {
            let set: Vec<char> = text(c, "rtrim")?.chars().collect();
            s(st.trim_end_matches(|ch| set.contains(&ch)).to_owned())
        }
    }
}
/// `rm_prefix(Str, Prefix)`: Str without Prefix, or Str as it is.
pub(super) fn rm_prefix(a: &[Value], _: &mut Env<'_>) -> R {
    let p = text(&a[1], "rm_prefix")?;
    // EMQX matches a binary prefix against the subject: anything else but an atom or a
    // null is returned as it is.
    if matches!(
        &a[0],
        Value::Int(_) | Value::BigInt(_) | Value::Float(_) | Value::Array(_) | Value::Map(_)
    ) {
        return Ok(a[0].clone());
    }
    let st = subject(&a[0], "rm_prefix")?;
    s(st.strip_prefix(p.as_str())
        .map_or(st.clone(), str::to_owned))
}
pub(super) fn reverse(a: &[Value], _: &mut Env<'_>) -> R {
    s(subject(&a[0], "reverse")?.chars().rev().collect())
}
pub(super) fn strlen(a: &[Value], _: &mut Env<'_>) -> R {
    Ok(Value::Int(subject(&a[0], "strlen")?.chars().count() as i64))
}

pub(super) fn substr(a: &[Value], _: &mut Env<'_>) -> R {
    let chars: Vec<char> = subject(&a[0], "substr")?.chars().collect();
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
    let st = subject(&a[0], "split")?;
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
        // string:split/3 without dropping empty parts
        "leading_notrim" | "trailing_notrim" => {
            let once = if mode == "leading_notrim" {
                st.split_once(sep.as_str())
            } else {
                st.rsplit_once(sep.as_str())
            };
            return match once {
                Some((x, y)) => strings([x.to_owned(), y.to_owned()].into_iter()),
                None => strings(std::iter::once(st)),
            };
        }
        other => {
            return err(format!(
                "split: unknown option {other:?} (notrim, leading, trailing, leading_notrim or trailing_notrim)"
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
    // EMQX's any_to_str/1: a missing value is the atom `undefined`, written as its name.
    for v in items {
        out.push_str(&v.to_text());
    }
    s(out)
}

/// `tokens(Str, SepChars)`: split at any of the characters; `'nocrlf'` adds CR and LF.
pub(super) fn tokens(a: &[Value], _: &mut Env<'_>) -> R {
    let st = subject(&a[0], "tokens")?;
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

/// A value as Erlang's `~p` prints the term EMQX holds: strings as binaries, a missing
/// value as `undefined`, maps as `#{K => V}`.
fn erlang_term(v: &Value) -> String {
    match v {
        Value::Str(s) => format!("<<\"{s}\">>"),
        Value::Bin(b) => format!(
            "<<{}>>",
            b.iter().map(u8::to_string).collect::<Vec<_>>().join(",")
        ),
        Value::Float(f) => format_float(*f),
        Value::Null => "undefined".into(),
        Value::JsonNull => "null".into(),
        Value::Array(a) => format!(
            "[{}]",
            a.iter().map(erlang_term).collect::<Vec<_>>().join(",")
        ),
        Value::Map(m) => format!(
            "#{{{}}}",
            m.iter()
                .map(|(k, v)| format!("<<\"{k}\">> => {}", erlang_term(v)))
                .collect::<Vec<_>>()
                .join(",")
        ),
        other => other.to_text(),
    }
}

/// Erlang's `io_lib:format/2` (what EMQX's sprintf calls): `~s ~ts ~p ~w ~d ~B ~b ~f ~e ~g
/// ~c ~i ~n ~~`, with a field width (negative: left-justified), a precision (decimals, a
/// base for `~B`, a length for `~s`) and a pad character: `~8.3f`, `~5..0B`, `~.16B`.
/// A value of the wrong type for its directive is an error, as in Erlang.
pub(super) fn sprintf(a: &[Value], _: &mut Env<'_>) -> R {
    let fmt = text(&a[0], "sprintf")?;
    let mut args = a[1..].iter();
    let mut out = String::new();
    let mut chars = fmt.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '~' {
            out.push(c);
            continue;
        }
        // Erlang's control sequence: ~[-]F.P.PadModC
        let num = |chars: &mut std::iter::Peekable<std::str::Chars<'_>>| {
            let mut n = String::new();
            while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit() || **d == '-') {
                n.push(*d);
                chars.next();
            }
            n.parse::<i64>().ok()
        };
        let width = num(&mut chars);
        let mut precision = None;
        let mut pad = ' ';
        if chars.peek() == Some(&'.') {
            chars.next();
            precision = num(&mut chars);
            if chars.peek() == Some(&'.') {
                chars.next();
                pad = chars
                    .next()
                    .ok_or_else(|| EvalError::new("sprintf: format ends in ~"))?;
            }
        }
        while matches!(chars.peek(), Some('t' | 'l')) {
            chars.next();
        }
        let Some(d) = chars.next() else {
            return err("sprintf: format ends with ~");
        };
        let mut next = || {
            args.next()
                .ok_or_else(|| EvalError::new(format!("sprintf: no argument for ~{d}")))
        };
        let body = match d {
            '~' => "~".to_owned(),
            'n' => "\n".to_owned(),
            's' => {
                let t = match next()? {
                    v @ (Value::Str(_) | Value::Bin(_)) => v.to_text(),
                    Value::Bool(b) => b.to_string(),
                    Value::JsonNull => "null".into(),
                    Value::Null => "undefined".into(),
                    other => {
                        return err(format!(
                            "sprintf: ~s needs a string, got {}",
                            other.type_name()
                        ));
                    }
                };
                match precision {
                    Some(p) if p >= 0 => t.chars().take(p as usize).collect(),
                    _ => t,
                }
            }
            'p' | 'w' => erlang_term(next()?),
            'd' => match next()? {
                Value::Int(i) => i.to_string(),
                other => {
                    return err(format!(
                        "sprintf: ~d needs an integer, got {}",
                        other.type_name()
                    ));
                }
            },
            'B' | 'b' | 'X' | 'x' | '#' => {
                let base = precision.unwrap_or(10);
                if !(2..=36).contains(&base) {
                    return err(format!("sprintf: base {base} out of range"));
                }
                let i = match next()? {
                    Value::Int(i) => *i,
                    other => {
                        return err(format!(
                            "sprintf: ~{d} needs an integer, got {}",
                            other.type_name()
                        ));
                    }
                };
                let mut t = radix(i.unsigned_abs(), base as u32);
                if d == 'b' || d == 'x' {
                    t = t.to_lowercase();
                }
                if i < 0 {
                    t.insert(0, '-');
                }
                t
            }
            'f' | 'e' | 'g' => {
                let x = match next()? {
                    Value::Float(x) => *x,
                    other => {
                        return err(format!(
                            "sprintf: ~{d} needs a float, got {}",
                            other.type_name()
                        ));
                    }
                };
                let p = precision.unwrap_or(6).max(if d == 'f' { 0 } else { 2 }) as usize;
                match d {
                    'f' => format!("{x:.p$}"),
                    'e' => erlang_exp(x, p),
                    _ if x != 0.0 && (x.abs() < 0.1 || x.abs() >= 10f64.powi(p as i32)) => {
                        erlang_exp(x, p)
                    }
                    _ => {
                        let int_digits = if x == 0.0 {
                            1
                        } else {
                            (x.abs().log10().floor() as i64 + 1).max(1)
                        };
                        let dec = (p as i64 - int_digits).max(0) as usize;
                        format!("{x:.dec$}")
                    }
                }
            }
            'c' => {
                let code = int(next()?, "sprintf ~c")?;
                let ch = char::from_u32(code as u32).unwrap_or('\u{fffd}');
                let n = width.map_or(1, |w| w.unsigned_abs() as usize);
                out.push_str(&ch.to_string().repeat(n));
                continue;
            }
            'i' => {
                next()?;
                continue;
            }
            other => return err(format!("sprintf: unsupported directive ~{other}")),
        };
        // Field width: right-justified, left-justified when negative.
        match width {
            Some(w) => {
                let wn = w.unsigned_abs() as usize;
                let have = body.chars().count();
                if have > wn && matches!(d, 'f' | 'e' | 'g' | 'd' | 'B' | 'b' | 'X' | 'x') {
                    out.push_str(&"*".repeat(wn));
                } else if have >= wn {
                    out.extend(body.chars().take(wn));
                } else if w < 0 {
                    out.push_str(&body);
                    out.extend(std::iter::repeat_n(pad, wn - have));
                } else {
                    out.extend(std::iter::repeat_n(pad, wn - have));
                    out.push_str(&body);
                }
            }
            None => out.push_str(&body),
        }
    }
    if args.next().is_some() {
        return err("sprintf: more arguments than directives");
    }
    s(out)
}

fn radix(mut n: u64, base: u32) -> String {
    if n == 0 {
        return "0".into();
    }
    let mut d = Vec::new();
    while n > 0 {
        d.push(std::char::from_digit((n % u64::from(base)) as u32, base).unwrap_or('?'));
        n /= u64::from(base);
    }
    d.iter().rev().collect::<String>().to_uppercase()
}

/// Erlang's `~e`: P significant digits, exponent with a sign and no padding (`1.00000e+0`).
fn erlang_exp(x: f64, p: usize) -> String {
    let prec = p.saturating_sub(1);
    let t = format!("{x:.prec$e}");
    match t.split_once('e') {
        Some((m, e)) if e.starts_with('-') => format!("{m}e{e}"),
        Some((m, e)) => format!("{m}e+{e}"),
        None => t,
    }
}

/// `sprintf_s(Format, Args)`: sprintf with the arguments in a list.
pub(super) fn sprintf_s(a: &[Value], env: &mut Env<'_>) -> R {
    let mut all = vec![a[0].clone()];
    all.extend_from_slice(array(&a[1], "sprintf_s")?);
    sprintf(&all, env)
}

/// `pad(Str, Len[, trailing|leading|both[, Char]])`.
pub(super) fn pad(a: &[Value], _: &mut Env<'_>) -> R {
    let st = subject(&a[0], "pad")?;
    let len = int(&a[1], "pad")?.max(0) as usize;
    let how = match a.get(2) {
        Some(v) => text(v, "pad")?,
        None => "trailing".into(),
    };
    // EMQX pads with the whole pad string, once per missing character.
    let ch = match a.get(3) {
        Some(v) => text(v, "pad")?,
        None => " ".into(),
    };
    let have = st.chars().count();
    if have >= len {
        return s(st);
    }
    let fill = len - have;
    let rep = |n: usize| ch.repeat(n);
    match how.as_str() {
        "trailing" => s(st + &rep(fill)),
        "leading" => s(rep(fill) + &st),
        "both" => s(rep(fill / 2) + &st + &rep(fill - fill / 2)),
        other => err(format!("pad: unknown direction {other:?}")),
    }
}

/// `replace(Str, Pattern, Replacement[, all|leading|trailing])`.
pub(super) fn replace(a: &[Value], _: &mut Env<'_>) -> R {
    let st = subject(&a[0], "replace")?;
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
    let st = subject(&a[0], "regex_match")?;
    Ok(Value::Bool(with_regex(
        &text(&a[1], "regex_match")?,
        |re| re.is_match(&st),
    )?))
}

/// Erlang `re:replace` syntax in the replacement: `&` is the whole match, `\N` a group.
pub(super) fn regex_replace(a: &[Value], _: &mut Env<'_>) -> R {
    let st = subject(&a[0], "regex_replace")?;
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
    let st = subject(&a[0], "regex_extract")?;
    with_regex(&text(&a[1], "regex_extract")?, |re| {
        match re.captures(&st) {
            // EMQX captures all_but_first: without a group, a match gives [].
            None => Value::Array(Vec::new()),
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
    // EMQX takes the first byte (`<<Char:8, _/binary>>`), not the first character.
    match subject(&a[0], "ascii")?.as_bytes().first() {
        Some(c) => Ok(Value::Int(i64::from(*c))),
        None => err("ascii: empty string"),
    }
}

/// `find(Str, Sub[, leading|trailing])`: the rest of Str from the first (or last) Sub, or ''.
pub(super) fn find(a: &[Value], _: &mut Env<'_>) -> R {
    let st = subject(&a[0], "find")?;
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
/// `unescape(Str)`: EMQX's escapes `\\ \n \t \r \b \f \v \' \" \? \a` and `\xHH...`
/// (as many hex digits as follow, one code point); any other escape is an error.
pub(super) fn unescape(a: &[Value], _: &mut Env<'_>) -> R {
    if a[0].is_null_or_json_null() {
        return err("unescape: no string");
    }
    let st = subject(&a[0], "unescape")?;
    let mut out = String::with_capacity(st.len());
    let mut chars = st.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('b') => out.push('\u{8}'),
            Some('f') => out.push('\u{c}'),
            Some('v') => out.push('\u{b}'),
            Some('\'') => out.push('\''),
            Some('"') => out.push('"'),
            Some('?') => out.push('?'),
            Some('a') => out.push('\u{7}'),
            Some('x') if chars.peek().is_some_and(char::is_ascii_hexdigit) => {
                let mut hex = String::new();
                while let Some(h) = chars.peek().filter(|h| h.is_ascii_hexdigit()) {
                    hex.push(*h);
                    chars.next();
                }
                match u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                    Some(ch) => out.push(ch),
                    None => return err(format!("unescape: invalid \\x{hex}")),
                }
            }
            Some(other) => {
                return err(format!("unescape: unrecognized escape sequence \\{other}"));
            }
            None => return err("unescape: unrecognized escape sequence at the end"),
        }
    }
    s(out)
}
