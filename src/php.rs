//! The few PHP semantics a device can observe, written down once.
//!
//! The PHP server's output depends on details of the PHP runtime: how `$_REQUEST` is built
//! from a query string, how `rawurlencode` encodes, how `!=` compares a string with a number,
//! how `(int)` reads a string, and how its "age" strings look. This module owns those rules so
//! the rest of the code can say what it means ("loosely equal", "PHP integer value") instead of
//! re-deriving them.

mod args;
mod numeric;

pub use args::{Args, MAX_INPUT_VARS, is_form_content_type};
pub use numeric::{Value, intval, is_numeric, loose_eq, loose_str_eq};

/// Decodes `%XX` and `+` like PHP's `urldecode` (malformed escapes are kept literally).
pub fn urldecode(s: &str) -> Vec<u8> {
    args::urldecode_bytes(s.as_bytes())
}

/// PHP's `rawurlencode`: everything but `A-Z a-z 0-9 - _ . ~` as upper-case `%XX`.
pub fn rawurlencode(b: &[u8]) -> String {
    RawUrlEncoded(b).to_string()
}

/// [`rawurlencode`] as it is written, without a string of its own (`format!`, `write!`).
pub struct RawUrlEncoded<'a>(pub &'a [u8]);

impl std::fmt::Display for RawUrlEncoded<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        const HEX: &[u8; 16] = b"0123456789ABCDEF";
        let keep = |c: &u8| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b'~');
        // ASCII only, so every piece written is text
        fn ascii(b: &[u8]) -> Result<&str, std::fmt::Error> {
            std::str::from_utf8(b).map_err(|_| std::fmt::Error)
        }
        let mut rest = self.0;
        loop {
            let n = rest.iter().position(|c| !keep(c)).unwrap_or(rest.len());
            let (kept, tail) = rest.split_at(n);
            f.write_str(ascii(kept)?)?;
            let Some((&c, tail)) = tail.split_first() else {
                return Ok(());
            };
            f.write_str(ascii(&[
                b'%',
                HEX[usize::from(c >> 4)],
                HEX[usize::from(c & 15)],
            ])?)?;
            rest = tail;
        }
    }
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

/// The age of `t` at `now` the way the PHP server writes it: "42 secs", "4.1 mins",
/// "3 hours", "1.5 days", "13 weeks" (`t == 0`: "&infin;").
pub fn since(now: i64, t: i64) -> String {
    Since(now, t).to_string()
}

/// [`since`] as it is written, without a string of its own (`format!`, `write!`): the age
/// of the second time at the first.
pub struct Since(pub i64, pub i64);

impl std::fmt::Display for Since {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Since(now, t) = *self;
        if t == 0 {
            return f.write_str("&infin;");
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
        if value.fract() == 0.0 {
            write!(f, "{} {unit}", value as i64)?;
        } else {
            write!(f, "{value} {unit}")?;
        }
        if value == 1.0 {
            Ok(())
        } else {
            f.write_str("s")
        }
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
