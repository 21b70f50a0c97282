//! Date and time. Units are `second` (default), `millisecond`, `microsecond`, `nanosecond`.
//! RFC 3339 output uses UTC (`+00:00`) unless an offset is given. Format strings use
//! `%Y %m %d %H %M %S %N` (nanoseconds) `%z` (+hh:mm) `%%`.

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

/// Parses an offset: `Z`, `+08:00`, `-0530`, `local` (UTC here), or seconds.
fn offset(v: &Value, f: &str) -> Result<FixedOffset, EvalError> {
    let secs = match v {
        Value::Int(i) => *i,
        other => {
            let s = text(other, f)?;
            match s.as_str() {
                "Z" | "z" | "local" | "" => 0,
                _ => {
                    let (sign, rest) = match s.as_bytes().first() {
                        Some(b'+') => (1, &s[1..]),
                        Some(b'-') => (-1, &s[1..]),
                        _ => return err(format!("{f}: bad offset {s:?}")),
                    };
                    let digits: String = rest.chars().filter(|c| *c != ':').collect();
                    if digits.len() != 4 || !digits.chars().all(|c| c.is_ascii_digit()) {
                        return err(format!("{f}: bad offset {s:?}"));
                    }
                    let h: i64 = digits[..2].parse().unwrap_or(0);
                    let m: i64 = digits[2..].parse().unwrap_or(0);
                    sign * (h * 3600 + m * 60)
                }
            }
        }
    };
    i32::try_from(secs)
        .ok()
        .and_then(FixedOffset::east_opt)
        .ok_or_else(|| EvalError::new(format!("{f}: offset out of range")))
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
    let mut chars = fmt.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('Y') => out.push_str(&t.format("%Y").to_string()),
            Some('m') => out.push_str(&t.format("%m").to_string()),
            Some('d') => out.push_str(&t.format("%d").to_string()),
            Some('H') => out.push_str(&t.format("%H").to_string()),
            Some('M') => out.push_str(&t.format("%M").to_string()),
            Some('S') => out.push_str(&t.format("%S").to_string()),
            Some('N') => out.push_str(&format!("{:09}", t.timestamp_subsec_nanos())),
            Some('z') => out.push_str(&t.format("%:z").to_string()),
            Some('%') => out.push('%'),
            Some(other) => return err(format!("{f}: unsupported directive %{other}")),
            None => return err(format!("{f}: format ends with %")),
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
    let mut input = date.as_str();
    let mut fc = fmt.chars();
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
    while let Some(c) = fc.next() {
        if c != '%' {
            input = input.strip_prefix(c).ok_or_else(bad)?;
            continue;
        }
        match fc.next() {
            Some('Y') => y = take_num(&mut input, 4)?,
            Some('m') => mo = take_num(&mut input, 2)?,
            Some('d') => d = take_num(&mut input, 2)?,
            Some('H') => h = take_num(&mut input, 2)?,
            Some('M') => mi = take_num(&mut input, 2)?,
            Some('S') => s = take_num(&mut input, 2)?,
            Some('N') => ns = take_num(&mut input, 9)?,
            Some('z') => {
                let n = input
                    .chars()
                    .take_while(|c| matches!(c, '+' | '-' | ':' | 'Z') || c.is_ascii_digit())
                    .count();
                off = offset(&Value::Str(input[..n].to_owned()), f)?;
                input = &input[n..];
            }
            Some('%') => input = input.strip_prefix('%').ok_or_else(bad)?,
            _ => return Err(bad()),
        }
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
