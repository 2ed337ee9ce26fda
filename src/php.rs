//! The few PHP semantics a device can observe, written down once.
//!
//! The PHP server's output depends on details of the PHP runtime: how `$_REQUEST` is built
//! from a query string, how `rawurlencode` encodes, how `!=` compares a string with a number,
//! how `(int)` reads a string, and how its "age" strings look. This module owns those rules so
//! the rest of the code can say what it means ("loosely equal", "PHP integer value") instead of
//! re-deriving them.

use std::borrow::Cow;

/// An ordered list of request arguments as PHP's `$_REQUEST` holds them: keys in the order of
/// their first appearance, a repeated key keeps its first position and takes the last value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Args(Vec<(String, Vec<u8>)>);

impl Args {
    /// Parses a raw query string (`a=1&b=x%20y`) like PHP's `parse_str`.
    pub fn parse(query: &str) -> Args {
        let mut args = Args::default();
        for part in query.split('&') {
            if part.is_empty() {
                continue;
            }
            let (k, v) = match part.find('=') {
                Some(i) => (&part[..i], &part[i + 1..]),
                None => (part, ""),
            };
            let key = php_mangle_key(&urldecode(k));
            if key.is_empty() {
                continue;
            }
            args.set(&key, urldecode(v));
        }
        args
    }

    pub fn set(&mut self, key: &str, value: impl Into<Vec<u8>>) {
        let value = value.into();
        match self.0.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value,
            None => self.0.push((key.to_string(), value)),
        }
    }

    /// The raw bytes of argument `key`.
    pub fn get_bytes(&self, key: &str) -> Option<&[u8]> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_slice())
    }

    /// Argument `key` as text (invalid UTF-8 replaced).
    pub fn get(&self, key: &str) -> Option<Cow<'_, str>> {
        self.get_bytes(key).map(String::from_utf8_lossy)
    }

    pub fn has(&self, key: &str) -> bool {
        self.get_bytes(key).is_some()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_slice()))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// PHP turns `.` and spaces in argument names into `_` (and drops leading spaces).
fn php_mangle_key(raw: &[u8]) -> String {
    let s = String::from_utf8_lossy(raw);
    s.trim_start_matches(' ')
        .chars()
        .map(|c| if c == '.' || c == ' ' { '_' } else { c })
        .collect()
}

/// Decodes `%XX` and `+` like PHP's `urldecode` (malformed escapes are kept literally).
pub fn urldecode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => match (hex_val(b.get(i + 1)), hex_val(b.get(i + 2))) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    out
}

fn hex_val(c: Option<&u8>) -> Option<u8> {
    let c = *c?;
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// PHP's `rawurlencode`: everything but `A-Z a-z 0-9 - _ . ~` as upper-case `%XX`.
pub fn rawurlencode(b: &[u8]) -> String {
    let mut out = String::with_capacity(b.len() * 3);
    for &c in b {
        if c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b'~') {
            out.push(c as char);
        } else {
            out.push_str(&format!("%{c:02X}"));
        }
    }
    out
}

/// PHP's `urlencode`: like [`rawurlencode`], but a space becomes `+` and `~` is encoded.
pub fn urlencode(b: &[u8]) -> String {
    let mut out = String::with_capacity(b.len() * 3);
    for &c in b {
        if c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.') {
            out.push(c as char);
        } else if c == b' ' {
            out.push('+');
        } else {
            out.push_str(&format!("%{c:02X}"));
        }
    }
    out
}

/// PHP's `empty()` of a string argument: `""` and `"0"` are empty.
pub fn empty(s: &str) -> bool {
    s.is_empty() || s == "0"
}

/// PHP's `str_replace` on bytes: every occurrence of `needle` replaced by `with`.
pub fn str_replace(hay: &[u8], needle: &[u8], with: &[u8]) -> Vec<u8> {
    if needle.is_empty() {
        return hay.to_vec();
    }
    let mut out = Vec::with_capacity(hay.len());
    let mut i = 0;
    while i < hay.len() {
        if hay[i..].starts_with(needle) {
            out.extend_from_slice(with);
            i += needle.len();
        } else {
            out.push(hay[i]);
            i += 1;
        }
    }
    out
}

/// Whether `hay` contains `needle` (bytes).
pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

/// PHP's `trim()` character set.
pub fn trim(s: &str) -> &str {
    s.trim_matches([' ', '\t', '\n', '\r', '\0', '\x0B'])
}

/// PHP's `(int)` of a string: optional whitespace and sign, then leading digits; else 0.
pub fn intval(s: &str) -> i64 {
    let t = s.trim_start_matches([' ', '\t', '\n', '\r', '\x0B', '\x0C']);
    let (neg, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let mut v: i64 = 0;
    for c in digits.bytes() {
        if !c.is_ascii_digit() {
            break;
        }
        v = v.saturating_mul(10).saturating_add(i64::from(c - b'0'));
    }
    if neg { -v } else { v }
}

/// PHP 8's `is_numeric` for strings.
pub fn is_numeric(s: &str) -> bool {
    parse_numeric(s).is_some()
}

fn parse_numeric(s: &str) -> Option<f64> {
    let t = s.trim_start_matches([' ', '\t', '\n', '\r', '\x0B', '\x0C']);
    let t = t.trim_end_matches([' ', '\t', '\n', '\r', '\x0B', '\x0C']);
    if t.is_empty() {
        return None;
    }
    let b = t.as_bytes();
    let mut i = 0;
    if matches!(b[0], b'+' | b'-') {
        i = 1;
    }
    let start_digits = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    let mut nd = i - start_digits;
    if i < b.len() && b[i] == b'.' {
        i += 1;
        let s2 = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        nd += i - s2;
    }
    if nd == 0 {
        return None;
    }
    if i < b.len() && matches!(b[i], b'e' | b'E') {
        let mut j = i + 1;
        if j < b.len() && matches!(b[j], b'+' | b'-') {
            j += 1;
        }
        let s3 = j;
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
        if j > s3 {
            i = j;
        }
    }
    if i != b.len() {
        return None;
    }
    t.parse::<f64>().ok()
}

/// A PHP value as far as the update script compares them: missing, integer or string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Null,
    Int(i64),
    Str(String),
}

impl Value {
    /// PHP's string conversion (`"$v"`).
    pub fn to_php_string(&self) -> String {
        match self {
            Value::Null => String::new(),
            Value::Int(i) => i.to_string(),
            Value::Str(s) => s.clone(),
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Str(s.to_string())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Str(s)
    }
}

impl From<Option<String>> for Value {
    fn from(s: Option<String>) -> Self {
        s.map_or(Value::Null, Value::Str)
    }
}

/// PHP 8's loose comparison `==` for the value kinds above.
pub fn loose_eq(a: &Value, b: &Value) -> bool {
    use Value::*;
    match (a, b) {
        (Null, Null) => true,
        (Null, Str(s)) | (Str(s), Null) => s.is_empty(),
        (Null, Int(i)) | (Int(i), Null) => *i == 0,
        (Int(x), Int(y)) => x == y,
        (Int(i), Str(s)) | (Str(s), Int(i)) => match parse_numeric(s) {
            Some(f) => f == *i as f64,
            None => *s == i.to_string(),
        },
        (Str(x), Str(y)) => match (parse_numeric(x), parse_numeric(y)) {
            (Some(fx), Some(fy)) => fx == fy,
            _ => x == y,
        },
    }
}

/// The age of `t` at `now` the way the PHP server writes it: "42 secs", "4.1 mins",
/// "3 hours", "1.5 days", "13 weeks" (`t == 0`: "&infin;").
pub fn since(now: i64, t: i64) -> String {
    if t == 0 {
        return "&infin;".to_string();
    }
    let d = now - t;
    let (value, unit) = if d < 120 {
        (d as f64, "sec")
    } else if d < 120 * 60 {
        (round1(d as f64 / 60.0), "min")
    } else if d < 48 * 3600 {
        (round1(d as f64 / 3600.0), "hour")
    } else if d < 90 * 86400 {
        (round1(d as f64 / 86400.0), "day")
    } else {
        (round1(d as f64 / (7.0 * 86400.0)), "week")
    };
    let number = if value.fract() == 0.0 {
        format!("{}", value as i64)
    } else {
        format!("{value}")
    };
    if value == 1.0 {
        format!("{number} {unit}")
    } else {
        format!("{number} {unit}s")
    }
}

fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

/// Converts text to what PHP's `mb_convert_encoding($s, 'ISO-8859-1', 'UTF-8')` yields:
/// Latin-1 bytes, `?` for characters outside Latin-1.
pub fn to_latin1(s: &str) -> Vec<u8> {
    s.chars()
        .map(|c| {
            if (c as u32) <= 0xFF {
                c as u32 as u8
            } else {
                b'?'
            }
        })
        .collect()
}

/// Formats a unix time as `YYYY-MM-DD HH:MM:SS` (UTC), like PHP's `date('Y-m-d H:i:s')` on a
/// server running in UTC.
pub fn format_datetime(t: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(t) {
        Ok(dt) => format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
            dt.year(),
            u8::from(dt.month()),
            dt.day(),
            dt.hour(),
            dt.minute(),
            dt.second()
        ),
        Err(_) => String::from("0000-00-00 00:00:00"),
    }
}

/// Parses `YYYY-MM-DD HH:MM:SS` (also with `T`, optional trailing `Z`, or a date alone) as UTC.
pub fn parse_datetime(s: &str) -> Option<i64> {
    let s = s.trim().trim_end_matches('Z');
    let (date, time_part) = match s.find([' ', 'T']) {
        Some(i) => (&s[..i], s[i + 1..].trim()),
        None => (s, "00:00:00"),
    };
    let mut d = date.split('-');
    let y: i32 = d.next()?.parse().ok()?;
    let m: u8 = d.next()?.parse().ok()?;
    let day: u8 = d.next()?.parse().ok()?;
    if d.next().is_some() {
        return None;
    }
    let mut t = time_part.split(':');
    let h: u8 = t.next()?.parse().ok()?;
    let mi: u8 = t.next().unwrap_or("0").parse().ok()?;
    let sec: u8 = t.next().unwrap_or("0").parse().ok()?;
    let month = time::Month::try_from(m).ok()?;
    let date = time::Date::from_calendar_date(y, month, day).ok()?;
    let tm = time::Time::from_hms(h, mi, sec).ok()?;
    Some(
        time::PrimitiveDateTime::new(date, tm)
            .assume_utc()
            .unix_timestamp(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_query_like_php() {
        let a = Args::parse("type=IP232&sn=00-90&foo=bar%20baz&x+y=1+2&type=IP111&e");
        let v: Vec<_> = a
            .iter()
            .map(|(k, v)| (k.to_string(), String::from_utf8_lossy(v).into_owned()))
            .collect();
        assert_eq!(
            v,
            vec![
                ("type".into(), "IP111".into()),
                ("sn".into(), "00-90".into()),
                ("foo".into(), "bar baz".into()),
                ("x_y".into(), "1 2".into()),
                ("e".into(), "".into()),
            ]
        );
    }

    #[test]
    fn urldecode_keeps_malformed_escapes() {
        assert_eq!(urldecode("%zz%4"), b"%zz%4".to_vec());
        assert_eq!(urldecode("%0D%0a"), b"\r\n".to_vec());
        assert_eq!(urldecode("%"), b"%".to_vec());
    }

    #[test]
    fn rawurlencode_matches_php() {
        assert_eq!(rawurlencode(b"a/b c~_.-"), "a%2Fb%20c~_.-");
        assert_eq!(
            rawurlencode(b"http://h:1/u.php?a=1&b=#t"),
            "http%3A%2F%2Fh%3A1%2Fu.php%3Fa%3D1%26b%3D%23t"
        );
        assert_eq!(rawurlencode("ü".as_bytes()), "%C3%BC");
    }

    #[test]
    fn urlencode_matches_php() {
        assert_eq!(urlencode(b"a b~c/d\r\n"), "a+b%7Ec%2Fd%0D%0A");
        assert_eq!(urlencode("Müller".as_bytes()), "M%C3%BCller");
    }

    #[test]
    fn loose_comparison_follows_php8() {
        use Value::*;
        assert!(loose_eq(&Str("0".into()), &Int(0)));
        assert!(loose_eq(&Str("5".into()), &Str("5.0".into())));
        assert!(!loose_eq(&Str("abc".into()), &Int(0)));
        assert!(loose_eq(&Null, &Int(0)));
        assert!(!loose_eq(&Null, &Str("0".into())));
        assert!(loose_eq(&Null, &Str("".into())));
        assert!(!loose_eq(&Str("update".into()), &Null));
    }

    #[test]
    fn intval_reads_leading_digits() {
        assert_eq!(intval("  42abc"), 42);
        assert_eq!(intval("-7"), -7);
        assert_eq!(intval("x1"), 0);
        assert_eq!(intval(""), 0);
        assert_eq!(intval("99999999999999999999999"), i64::MAX);
    }

    #[test]
    fn numeric_strings() {
        assert!(is_numeric("131000"));
        assert!(is_numeric(" 1.5e3 "));
        assert!(!is_numeric("13r1"));
        assert!(!is_numeric(""));
        assert!(!is_numeric("."));
    }

    #[test]
    fn ages_read_like_php() {
        assert_eq!(since(1000, 1000), "0 secs");
        assert_eq!(since(1001, 1000), "1 sec");
        assert_eq!(since(1000 + 246, 1000), "4.1 mins");
        assert_eq!(since(1000 + 7200, 1000), "2 hours");
        assert_eq!(since(1000 + 86400 * 3, 1000), "3 days");
        assert_eq!(since(1000 + 86400 * 7 * 20, 1000), "20 weeks");
        assert_eq!(since(5, 0), "&infin;");
    }

    #[test]
    fn dates_round_trip() {
        let t = parse_datetime("2019-05-01 00:00:00").expect("date");
        assert_eq!(t, 1556668800);
        assert_eq!(format_datetime(t), "2019-05-01 00:00:00");
        assert_eq!(
            parse_datetime("2039-05-01"),
            parse_datetime("2039-05-01 00:00:00")
        );
        assert_eq!(parse_datetime("yesterday"), None);
        assert_eq!(parse_datetime("2019-13-01 00:00:00"), None);
    }

    #[test]
    fn latin1_conversion() {
        assert_eq!(to_latin1("Müller€"), b"M\xfcller?".to_vec());
    }
}
