//! PHP 8's numeric strings: what `(int)` makes of a string, what `is_numeric` accepts, and
//! how loose `==` compares strings and integers.
//!
//! A numeric string is optional white space (space, tab, LF, CR, VT, FF), an optional sign,
//! digits with an optional `.` and fraction (or a `.` and a fraction alone), an optional
//! exponent (`e`/`E`, optional sign, digits), and optional trailing white space. Without `.`
//! and exponent and within 64 bits it is an integer, otherwise a float. `(int)` reads the
//! longest such prefix (`" 12abc"` is 12, `"1e3"` is 1000, `"abc"` is 0) and saturates a
//! float outside the integer range (an infinite one, `"1e999"`, becomes 0, as in PHP).

/// A number as PHP reads it from a string.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Num {
    Long(i64),
    /// A float; `oflow` is the sign of an integer literal too large for 64 bits, else 0.
    Double {
        value: f64,
        oflow: i8,
    },
}

/// The leading number of `s`, and whether it is all of `s` (but for white space).
fn numeric_prefix(s: &str) -> Option<(Num, bool)> {
    const WS: [char; 6] = [' ', '\t', '\n', '\r', '\x0B', '\x0C'];
    let t = s.trim_start_matches(WS);
    let b = t.as_bytes();
    let digits_from = |mut i: usize| {
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        i
    };
    let neg = b.first() == Some(&b'-');
    let start = usize::from(matches!(b.first(), Some(b'+' | b'-')));
    let int_end = digits_from(start);
    let mut end = int_end;
    let mut float = false;
    if b.get(end) == Some(&b'.') && (end > start || b.get(end + 1).is_some_and(u8::is_ascii_digit))
    {
        float = true;
        end = digits_from(end + 1);
    }
    if end == start {
        return None;
    }
    if matches!(b.get(end), Some(b'e' | b'E')) {
        let sign = usize::from(matches!(b.get(end + 1), Some(b'+' | b'-')));
        if b.get(end + 1 + sign).is_some_and(u8::is_ascii_digit) {
            float = true;
            end = digits_from(end + 1 + sign);
        }
    }
    let whole = t[end..].trim_start_matches(WS).is_empty();
    let literal = &t[..end];
    let num = if float {
        Num::Double {
            value: literal.parse().ok()?,
            oflow: 0,
        }
    } else {
        match literal.parse::<i64>() {
            Ok(v) => Num::Long(v),
            Err(_) => Num::Double {
                value: literal.parse().ok()?,
                oflow: if neg { -1 } else { 1 },
            },
        }
    };
    Some((num, whole))
}

/// The number a whole numeric string stands for (`None`: not numeric).
fn numeric(s: &str) -> Option<Num> {
    match numeric_prefix(s) {
        Some((n, true)) => Some(n),
        _ => None,
    }
}

/// PHP 8's `(int)` of a string: the leading numeric part (integer, or float truncated and
/// saturated to the 64-bit range), else 0.
pub fn intval(s: &str) -> i64 {
    match numeric_prefix(s) {
        None => 0,
        Some((Num::Long(v), _)) => v,
        Some((Num::Double { value, .. }, _)) => float_to_int(value),
    }
}

/// PHP's saturating float → integer conversion of numeric strings.
fn float_to_int(d: f64) -> i64 {
    if !d.is_finite() {
        0
    } else if d >= i64::MAX as f64 {
        i64::MAX
    } else if d < i64::MIN as f64 {
        i64::MIN
    } else {
        d as i64
    }
}

/// PHP 8's `is_numeric` for strings (leading and trailing white space allowed).
pub fn is_numeric(s: &str) -> bool {
    numeric(s).is_some()
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
        (Int(i), Str(s)) | (Str(s), Int(i)) => match numeric(s) {
            Some(Num::Long(l)) => l == *i,
            Some(Num::Double { value, .. }) => value == *i as f64,
            None => *s == i.to_string(),
        },
        (Str(x), Str(y)) => loose_str_eq(x, y),
    }
}

/// PHP 8's `$a == $b` for two strings (how a phase or environment id from a request is
/// matched against the configured ids): two numeric strings compare as numbers (`"1e1"`
/// equals `"10"`, `" 1"` equals `"1.0"`), anything else compares byte for byte.
pub fn loose_str_eq(a: &str, b: &str) -> bool {
    let (Some(x), Some(y)) = (numeric(a), numeric(b)) else {
        return a == b;
    };
    match (x, y) {
        (Num::Long(x), Num::Long(y)) => x == y,
        (
            Num::Double {
                value: dx,
                oflow: ox,
            },
            Num::Double {
                value: dy,
                oflow: oy,
            },
        ) => {
            // integers beyond 64 bits on the same side, or two equal infinities: a float
            // comparison would be inaccurate, PHP compares the strings
            if (ox != 0 && ox == oy && dx == dy) || (dx == dy && !dx.is_finite()) {
                a == b
            } else {
                dx == dy
            }
        }
        (Num::Long(l), Num::Double { value, oflow })
        | (Num::Double { value, oflow }, Num::Long(l)) => oflow == 0 && l as f64 == value,
    }
}

#[cfg(test)]
mod tests;
