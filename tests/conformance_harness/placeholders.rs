//! Placeholder replacement (README §2) and the few calendar conversions it
//! needs (UTC only, no external crate).

/// The values the placeholders of one case stand for.
#[derive(Debug, Clone)]
pub struct Vars {
    /// `127.0.0.1:PORT` of the master stand-in (or of a port where nothing listens).
    pub master: String,
    pub http_port: u16,
    pub https_port: u16,
    pub mtls_port: u16,
    /// `T0`, unix seconds.
    pub now: i64,
    /// The last `mod cmd UP1 check ser X` value seen in an earlier answer.
    pub check: String,
}

/// Replaces `{MASTER} {HTTP_PORT} {HTTPS_PORT} {MTLS_PORT} {NOW} {NOW±N}
/// {DATE±N} {CHECK}`; every other brace is left alone.
pub fn replace(text: &str, vars: &Vars) -> String {
    String::from_utf8_lossy(&replace_bytes(text.as_bytes(), vars)).into_owned()
}

/// Like [`replace`], on bytes: the placeholders are ASCII, so files in any
/// ASCII-compatible encoding (UTF-8, ISO-8859-1) keep their other bytes.
pub fn replace_bytes(input: &[u8], vars: &Vars) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut rest = input;
    while let Some(open) = rest.iter().position(|&b| b == b'{') {
        out.extend_from_slice(&rest[..open]);
        let after = &rest[open + 1..];
        let replacement = after.iter().position(|&b| b == b'}').and_then(|close| {
            let token = std::str::from_utf8(&after[..close]).ok()?;
            resolve(token, vars).map(|value| (value, close))
        });
        if let Some((value, close)) = replacement {
            out.extend_from_slice(value.as_bytes());
            rest = &after[close + 1..];
        } else {
            out.push(b'{');
            rest = after;
        }
    }
    out.extend_from_slice(rest);
    out
}

fn resolve(token: &str, vars: &Vars) -> Option<String> {
    match token {
        "MASTER" => return Some(vars.master.clone()),
        "HTTP_PORT" => return Some(vars.http_port.to_string()),
        "HTTPS_PORT" => return Some(vars.https_port.to_string()),
        "MTLS_PORT" => return Some(vars.mtls_port.to_string()),
        "CHECK" => return Some(vars.check.clone()),
        "NOW" => return Some(vars.now.to_string()),
        _ => {}
    }
    for (prefix, as_date) in [("NOW", false), ("DATE", true)] {
        let Some(offset) = token.strip_prefix(prefix) else {
            continue;
        };
        let (sign, digits) = if let Some(d) = offset.strip_prefix('+') {
            (1, d)
        } else if let Some(d) = offset.strip_prefix('-') {
            (-1, d)
        } else {
            return None;
        };
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let n: i64 = digits.parse().ok()?;
        let t = vars.now + sign * n;
        return Some(if as_date {
            format_datetime(t)
        } else {
            t.to_string()
        });
    }
    None
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
pub fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Unix seconds as `YYYY-MM-DD HH:MM:SS` (UTC).
pub fn format_datetime(t: i64) -> String {
    let (y, mo, d) = civil_from_days(t.div_euclid(86_400));
    let s = t.rem_euclid(86_400);
    format!(
        "{y:04}-{mo:02}-{d:02} {:02}:{:02}:{:02}",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// `YYYY-MM-DD HH:MM:SS` (UTC) as unix seconds; `None` if it is no valid date-time.
pub fn parse_datetime(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() != 19
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b' '
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let s = text.get(r)?;
        if s.bytes().all(|c| c.is_ascii_digit()) {
            s.parse().ok()
        } else {
            None
        }
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, s) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    Some(days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s)
}
