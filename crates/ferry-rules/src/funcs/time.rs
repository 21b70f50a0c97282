//! Date and time. Units are `second` (default), `millisecond`, `microsecond`, `nanosecond`.
//! RFC 3339 output uses UTC (`+00:00`) unless an offset is given. Format strings use
//! EMQX's directives: `%Y %m %d %H %M %S`, `%N` (nanoseconds), `%3N` `%6N` (and any width
//! 1-9), `%z` (+hhmm), `%:z` (+hh:mm), `%::z` (+hh:mm:ss); any other text is literal.

use chrono::{DateTime, FixedOffset, NaiveDate, Offset, TimeZone, Utc};

use super::{err, int, text};
use crate::error::EvalError;
use crate::eval::Env;
use crate::value::Value;

type R = Result<Value, EvalError>;

fn unit_per_sec(a: Option<&Value>, f: &str) -> Result<i64, EvalError> {
    let u = match a {
        Some(v) => text(v, f)?,
        None => "second".into(),
    };
    match u.as_str() {
        "second" => Ok(1),
        "millisecond" => Ok(1_000),
        "microsecond" => Ok(1_000_000),
        "nanosecond" => Ok(1_000_000_000),
        other => err(format!("{f}: unknown time unit {other:?}")),
    }
}

fn now_nanos() -> i128 {
    Utc::now().timestamp_nanos_opt().map_or(0, i128::from)
}

fn to_datetime(
    ts: i64,
    per_sec: i64,
    off: FixedOffset,
    f: &str,
) -> Result<DateTime<FixedOffset>, EvalError> {
    let secs = ts.div_euclid(per_sec);
    let nanos = (ts.rem_euclid(per_sec) as i128 * 1_000_000_000 / i128::from(per_sec)) as u32;
    match Utc.timestamp_opt(secs, nanos) {
        chrono::LocalResult::Single(t) => Ok(t.with_timezone(&off)),
        _ => err(format!("{f}: timestamp {ts} out of range")),
    }
}

fn from_datetime(t: DateTime<FixedOffset>, per_sec: i64) -> Value {
    let nanos = i128::from(t.timestamp()) * 1_000_000_000 + i128::from(t.timestamp_subsec_nanos());
    Value::Int((nanos * i128::from(per_sec) / 1_000_000_000) as i64)
}

fn rfc3339(t: DateTime<FixedOffset>, per_sec: i64) -> String {
    let base = t.format("%Y-%m-%dT%H:%M:%S").to_string();
    let frac = match per_sec {
        1_000 => format!(".{:03}", t.timestamp_subsec_millis()),
        1_000_000 => format!(".{:06}", t.timestamp_subsec_micros()),
        1_000_000_000 => format!(".{:09}", t.timestamp_subsec_nanos()),
        _ => String::new(),
    };
    format!("{base}{frac}{}", t.format("%:z"))
}

fn utc() -> FixedOffset {
    Utc.fix()
}

pub(super) fn now_timestamp(a: &[Value], _: &mut Env<'_>) -> R {
    let per = unit_per_sec(a.first(), "now_timestamp")?;
    Ok(Value::Int(
        (now_nanos() * i128::from(per) / 1_000_000_000) as i64,
    ))
}

pub(super) fn now_rfc3339(a: &[Value], _: &mut Env<'_>) -> R {
    let per = unit_per_sec(a.first(), "now_rfc3339")?;
    Ok(Value::Str(rfc3339(Utc::now().with_timezone(&utc()), per)))
}

pub(super) fn unix_ts_to_rfc3339(a: &[Value], _: &mut Env<'_>) -> R {
    let per = unit_per_sec(a.get(1), "unix_ts_to_rfc3339")?;
    let t = to_datetime(
        int(&a[0], "unix_ts_to_rfc3339")?,
        per,
        utc(),
        "unix_ts_to_rfc3339",
    )?;
    Ok(Value::Str(rfc3339(t, per)))
}

pub(super) fn rfc3339_to_unix_ts(a: &[Value], _: &mut Env<'_>) -> R {
    let per = unit_per_sec(a.get(1), "rfc3339_to_unix_ts")?;
    let s = text(&a[0], "rfc3339_to_unix_ts")?;
    match DateTime::parse_from_rfc3339(&s) {
        Ok(t) => Ok(from_datetime(t, per)),
        Err(e) => err(format!("rfc3339_to_unix_ts: {s:?}: {e}")),
    }
}

/// Parses an offset as EMQX's `emqx_utils_calendar:offset_second/1`: `Z`, `+08:00`,
/// `-0530`, `+05:30:15`, seconds, or `local`: the machine's offset now (from `TZ`, else
/// `/etc/localtime`), as EMQX takes it for every timestamp, whatever its date.
fn offset(v: &Value, f: &str) -> Result<FixedOffset, EvalError> {
    let secs = match v {
        Value::Int(i) => *i,
        Value::Null => 0,
        other => {
            let s = text(other, f)?;
            match s.as_str() {
                "Z" | "z" => 0,
                "local" => i64::from(chrono::Local::now().offset().local_minus_utc()),
                _ => {
                    let bad = || EvalError::new(format!("{f}: bad time offset {s:?}"));
                    let (sign, rest) = match s.as_bytes().first() {
                        Some(b'+') => (1, &s[1..]),
                        Some(b'-') => (-1, &s[1..]),
                        _ => return Err(bad()),
                    };
                    let parts: Vec<&str> = rest.split(':').filter(|p| !p.is_empty()).collect();
                    let (h, m, sec) = match parts.as_slice() {
                        [h, m] => (*h, *m, "0"),
                        [h, m, s] => (*h, *m, *s),
                        [hm] if hm.len() == 4 => (&hm[..2], &hm[2..], "0"),
                        _ => return Err(bad()),
                    };
                    let n = |x: &str| x.parse::<i64>().map_err(|_| bad());
                    let (h, m, sec) = (n(h)?, n(m)?, n(sec)?);
                    if !(0..=23).contains(&h) || !(0..=59).contains(&m) || !(0..=59).contains(&sec)
                    {
                        return Err(bad());
                    }
                    sign * (h * 3600 + m * 60 + sec)
                }
            }
        }
    };
    i32::try_from(secs)
        .ok()
        .and_then(FixedOffset::east_opt)
        .ok_or_else(|| EvalError::new(format!("{f}: offset out of range")))
}

/// `%z` (`+hhmm`), `%:z` (`+hh:mm`), `%::z` (`+hh:mm:ss`); the sign is the offset's.
fn zone_text(off: FixedOffset, colons: usize) -> String {
    let secs = off.local_minus_utc();
    let sign = if secs < 0 { '-' } else { '+' };
    let a = secs.unsigned_abs();
    let (h, m, s) = (a / 3600, a % 3600 / 60, a % 60);
    match colons {
        0 => format!("{sign}{h:02}{m:02}"),
        1 => format!("{sign}{h:02}:{m:02}"),
        _ => format!("{sign}{h:02}:{m:02}:{s:02}"),
    }
}

/// One directive of a date format: EMQX's `%Y %m %d %H %M %S`, `%N` (nanoseconds, 9
/// digits), `%3N` / `%6N` (any width 1 to 9 here), `%z`, `%:z`, `%::z`.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Directive {
    Year,
    Month,
    Day,
    Hour,
    Minute,
    Second,
    /// Fraction of a second with this many digits.
    Frac(usize),
    Zone(usize),
}

/// Splits a format into literal text and directives; anything else after `%` is text.
fn directives(fmt: &str) -> Vec<Result<Directive, char>> {
    let chars: Vec<char> = fmt.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '%' {
            let rest: String = chars[i + 1..chars.len().min(i + 4)].iter().collect();
            let (d, used) = match chars.get(i + 1) {
                Some('Y') => (Some(Directive::Year), 1),
                Some('m') => (Some(Directive::Month), 1),
                Some('d') => (Some(Directive::Day), 1),
                Some('H') => (Some(Directive::Hour), 1),
                Some('M') => (Some(Directive::Minute), 1),
                Some('S') => (Some(Directive::Second), 1),
                Some('N') => (Some(Directive::Frac(9)), 1),
                Some('z') => (Some(Directive::Zone(0)), 1),
                Some(d @ '1'..='9') if chars.get(i + 2) == Some(&'N') => {
                    (Some(Directive::Frac(*d as usize - '0' as usize)), 2)
                }
                _ if rest.starts_with(":z") => (Some(Directive::Zone(1)), 2),
                _ if rest.starts_with("::z") => (Some(Directive::Zone(2)), 3),
                _ => (None, 0),
            };
            if let Some(d) = d {
                out.push(Ok(d));
                i += 1 + used;
                continue;
            }
        }
        out.push(Err(c));
        i += 1;
    }
    out
}

pub(super) fn timezone_to_offset_seconds(a: &[Value], _: &mut Env<'_>) -> R {
    Ok(Value::Int(i64::from(
        offset(&a[0], "timezone_to_offset_seconds")?.local_minus_utc(),
    )))
}

/// `format_date(Unit, Offset, Format[, Timestamp])`.
pub(super) fn format_date(a: &[Value], _: &mut Env<'_>) -> R {
    let f = "format_date";
    let per = unit_per_sec(Some(&a[0]), f)?;
    let off = offset(&a[1], f)?;
    let fmt = text(&a[2], f)?;
    let ts = match a.get(3) {
        Some(v) => int(v, f)?,
        None => (now_nanos() * i128::from(per) / 1_000_000_000) as i64,
    };
    let t = to_datetime(ts, per, off, f)?;
    let mut out = String::new();
    for d in directives(&fmt) {
        match d {
            Err(c) => out.push(c),
            Ok(Directive::Year) => out.push_str(&t.format("%Y").to_string()),
            Ok(Directive::Month) => out.push_str(&t.format("%m").to_string()),
            Ok(Directive::Day) => out.push_str(&t.format("%d").to_string()),
            Ok(Directive::Hour) => out.push_str(&t.format("%H").to_string()),
            Ok(Directive::Minute) => out.push_str(&t.format("%M").to_string()),
            Ok(Directive::Second) => out.push_str(&t.format("%S").to_string()),
            Ok(Directive::Frac(w)) => {
                let n = format!("{:09}", t.timestamp_subsec_nanos());
                out.push_str(&n[..w]);
            }
            Ok(Directive::Zone(c)) => out.push_str(&zone_text(off, c)),
        }
    }
    Ok(Value::Str(out))
}

/// `date_to_unix_ts(Unit, [Offset,] Format, Date)`: the inverse of format_date.
pub(super) fn date_to_unix_ts(a: &[Value], _: &mut Env<'_>) -> R {
    let f = "date_to_unix_ts";
    let per = unit_per_sec(Some(&a[0]), f)?;
    let (off, fmt, date) = if a.len() == 4 {
        (offset(&a[1], f)?, text(&a[2], f)?, text(&a[3], f)?)
    } else {
        (utc(), text(&a[1], f)?, text(&a[2], f)?)
    };
    let (mut y, mut mo, mut d, mut h, mut mi, mut s, mut ns) =
        (1970i64, 1i64, 1i64, 0i64, 0i64, 0i64, 0i64);
    let mut off = off;
    let mut have = 0u8;
    let mut input = date.as_str();
    let bad = || EvalError::new(format!("{f}: {date:?} does not match {fmt:?}"));
    let take_num = |input: &mut &str, max: usize| -> Result<i64, EvalError> {
        let n = input
            .chars()
            .take(max)
            .take_while(|c| c.is_ascii_digit())
            .count();
        if n == 0 {
            return Err(bad());
        }
        let v = input[..n].parse().map_err(|_| bad())?;
        *input = &input[n..];
        Ok(v)
    };
    for dir in directives(&fmt) {
        match dir {
            // EMQX skips one input character per literal one, whatever it is
            // (`%H-%M-%S` reads `10:40:12`).
            Err(_) => {
                let mut it = input.chars();
                it.next().ok_or_else(bad)?;
                input = it.as_str();
            }
            Ok(Directive::Year) => {
                y = take_num(&mut input, 4)?;
                have |= 1;
            }
            Ok(Directive::Month) => {
                mo = take_num(&mut input, 2)?;
                have |= 2;
            }
            Ok(Directive::Day) => {
                d = take_num(&mut input, 2)?;
                have |= 4;
            }
            Ok(Directive::Hour) => h = take_num(&mut input, 2)?,
            Ok(Directive::Minute) => mi = take_num(&mut input, 2)?,
            Ok(Directive::Second) => s = take_num(&mut input, 2)?,
            Ok(Directive::Frac(w)) => {
                let before = input.len();
                let v = take_num(&mut input, w)?;
                let digits = (before - input.len()) as u32;
                ns = v * 10i64.pow(9 - digits);
            }
            Ok(Directive::Zone(_)) => {
                let n = input
                    .chars()
                    .take_while(|c| matches!(c, '+' | '-' | ':' | 'Z' | 'z') || c.is_ascii_digit())
                    .count();
                off = offset(&Value::Str(input[..n].to_owned()), f)?;
                input = &input[n..];
            }
        }
    }
    if have != 7 {
        return err(format!("{f}: the format needs %Y, %m and %d"));
    }
    if !input.is_empty() {
        return Err(bad());
    }
    let naive = NaiveDate::from_ymd_opt(y as i32, mo as u32, d as u32)
        .and_then(|dt| dt.and_hms_nano_opt(h as u32, mi as u32, s as u32, ns as u32))
        .ok_or_else(bad)?;
    match off.from_local_datetime(&naive) {
        chrono::LocalResult::Single(t) => Ok(from_datetime(t, per)),
        _ => Err(bad()),
    }
}

/// `ms` since the epoch as RFC 3339 in UTC with milliseconds (what EMQX's API shows).
pub fn rfc3339_ms(ms: i64) -> String {
    to_datetime(ms, 1_000, utc(), "rfc3339_ms")
        .map_or_else(|_| ms.to_string(), |t| rfc3339(t, 1_000))
}
