//! Request variables the way PHP builds `$_GET`, `$_POST` and `$_REQUEST`.
//!
//! A query string or an `application/x-www-form-urlencoded` body is split at `&`, each piece
//! at its first `=`, both halves URL-decoded. The name is then mangled as PHP does: leading
//! spaces are dropped, a NUL ends it, `.` and space before the first `[` become `_`; a name
//! with a closed `[…]` makes an array (its string value is `Array`), an unmatched `[` becomes
//! `_`. A later variable replaces an earlier one of the same name in the earlier one's
//! position; `$_REQUEST` is `$_GET` with `$_POST` merged over it. Like PHP's default
//! `max_input_vars`, only the first [`MAX_INPUT_VARS`] pieces of each source count; like its
//! `max_input_nesting_level`, a name nested deeper than [`MAX_NESTING`] levels removes the
//! variable. Parsing is linear in the input.

use std::borrow::Cow;
use std::collections::HashMap;

/// PHP's default `max_input_vars`: pieces of one source beyond it are ignored.
pub const MAX_INPUT_VARS: usize = 1000;
/// PHP's default `max_input_nesting_level`.
pub const MAX_NESTING: usize = 64;

/// What PHP's string conversion of an array yields.
const ARRAY: &[u8] = b"Array";

#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    key: String,
    value: Vec<u8>,
    array: bool,
}

/// An ordered list of request arguments as PHP's `$_REQUEST` holds them: keys in the order of
/// their first appearance, a repeated key keeps its first position and takes the last value.
#[derive(Debug, Clone, Default)]
pub struct Args {
    /// In order of first insertion; `None` where a variable was removed again.
    entries: Vec<Option<Entry>>,
    /// Key → position in `entries`, kept once there are more than [`SMALL`] entries (a
    /// device's few arguments are compared faster than a key is hashed).
    index: HashMap<String, usize>,
}

/// Entries looked up by comparing keys, without the index.
const SMALL: usize = 16;

impl PartialEq for Args {
    fn eq(&self, other: &Self) -> bool {
        self.live().eq(other.live())
    }
}

impl Eq for Args {}

/// A variable name after PHP's mangling.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Name {
    /// A plain variable.
    Plain(String),
    /// `name[…]`: an array.
    Array(String),
    /// Nested too deeply: PHP removes the variable.
    Remove(String),
}

impl Args {
    /// Parses a raw query string (`a=1&b=x%20y`) like PHP builds `$_GET`.
    pub fn parse(query: &str) -> Args {
        let (args, ignored) = Args::parse_source(query.as_bytes(), MAX_INPUT_VARS);
        log_ignored(ignored);
        args
    }

    /// `$_REQUEST` of a request: the query string's variables with those of a form body
    /// (`application/x-www-form-urlencoded`, if any) merged over them.
    pub fn parse_request(query: &str, form: Option<&[u8]>) -> Args {
        let (mut args, mut ignored) = Args::parse_source(query.as_bytes(), MAX_INPUT_VARS);
        if let Some(body) = form {
            let (post, more) = Args::parse_source(body, MAX_INPUT_VARS);
            ignored += more;
            args.merge(&post);
        }
        log_ignored(ignored);
        args
    }

    /// Merges the variables of a form body (`application/x-www-form-urlencoded`) over the
    /// query string's already parsed here: `$_REQUEST` without parsing the query again.
    pub fn merge_form(&mut self, body: &[u8]) {
        let (post, ignored) = Args::parse_source(body, MAX_INPUT_VARS);
        log_ignored(ignored);
        self.merge(&post);
    }

    /// Merges `later` over `self` as PHP merges `$_POST` over `$_GET`: a key of `later`
    /// replaces the value of an existing key in its place, new keys are appended.
    pub fn merge(&mut self, later: &Args) {
        for e in later.entries.iter().flatten() {
            if e.array && self.is_array(&e.key) {
                continue;
            }
            self.put(&e.key, e.value.clone(), e.array);
        }
    }

    /// One source (query string or form body) and how many pieces beyond the cap it ignored.
    fn parse_source(input: &[u8], limit: usize) -> (Args, usize) {
        let mut args = Args::default();
        let mut count = 0usize;
        for part in input.split(|&b| b == b'&').filter(|p| !p.is_empty()) {
            count += 1;
            if count > limit {
                continue;
            }
            let (k, v) = match part.iter().position(|&b| b == b'=') {
                Some(i) => (&part[..i], &part[i + 1..]),
                None => (part, &b""[..]),
            };
            match php_name(&urldecode_bytes(k)) {
                Some(Name::Plain(key)) => args.put(&key, urldecode_bytes(v), false),
                // `a[]=1&a[]=2` is still one array
                Some(Name::Array(key)) if !args.is_array(&key) => {
                    args.put(&key, ARRAY.to_vec(), true)
                }
                Some(Name::Remove(key)) => args.remove(&key),
                Some(Name::Array(_)) | None => {}
            }
        }
        (args, count.saturating_sub(limit))
    }

    fn put(&mut self, key: &str, value: Vec<u8>, array: bool) {
        if let Some(e) = self.pos(key).and_then(|i| self.entries[i].as_mut()) {
            e.value = value;
            e.array = array;
            return;
        }
        self.entries.push(Some(Entry {
            key: key.to_string(),
            value,
            array,
        }));
        let n = self.entries.len();
        if n == SMALL + 1 {
            for (i, e) in self.entries.iter().enumerate() {
                if let Some(e) = e {
                    self.index.insert(e.key.clone(), i);
                }
            }
        } else if n > SMALL {
            self.index.insert(key.to_string(), n - 1);
        }
    }

    /// Where the live entry `key` is.
    fn pos(&self, key: &str) -> Option<usize> {
        if self.entries.len() <= SMALL {
            return self
                .entries
                .iter()
                .position(|e| e.as_ref().is_some_and(|e| e.key == key));
        }
        self.index.get(key).copied()
    }

    fn remove(&mut self, key: &str) {
        if let Some(i) = self.pos(key) {
            self.entries[i] = None;
            self.index.remove(key);
        }
    }

    fn entry(&self, key: &str) -> Option<&Entry> {
        self.pos(key).and_then(|i| self.entries[i].as_ref())
    }

    fn live(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter().flatten()
    }

    /// Sets argument `key` to a string value (in its place if present, else at the end).
    pub fn set(&mut self, key: &str, value: impl Into<Vec<u8>>) {
        self.put(key, value.into(), false);
    }

    /// The raw bytes of argument `key` (`Array` for an array, as PHP's string conversion).
    pub fn get_bytes(&self, key: &str) -> Option<&[u8]> {
        self.entry(key).map(|e| e.value.as_slice())
    }

    /// Argument `key` as text (invalid UTF-8 replaced).
    pub fn get(&self, key: &str) -> Option<Cow<'_, str>> {
        self.get_bytes(key).map(String::from_utf8_lossy)
    }

    pub fn has(&self, key: &str) -> bool {
        self.entry(key).is_some()
    }

    /// Whether argument `key` is an array (`key[]=…`, `key[x]=…`).
    pub fn is_array(&self, key: &str) -> bool {
        self.entry(key).is_some_and(|e| e.array)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.live().map(|e| (e.key.as_str(), e.value.as_slice()))
    }

    pub fn len(&self) -> usize {
        self.live().count()
    }

    pub fn is_empty(&self) -> bool {
        self.live().next().is_none()
    }
}

fn log_ignored(ignored: usize) {
    if ignored > 0 {
        tracing::warn!(
            "request has more than {MAX_INPUT_VARS} input variables: {ignored} ignored (as PHP's max_input_vars)"
        );
    }
}

/// PHP's mangling of a decoded variable name; `None` for a name PHP ignores (empty).
fn php_name(raw: &[u8]) -> Option<Name> {
    let raw = match raw.iter().position(|&b| b == 0) {
        Some(nul) => &raw[..nul],
        None => raw,
    };
    let start = raw.iter().position(|&b| b != b' ').unwrap_or(raw.len());
    let raw = &raw[start..];
    let mut name = Vec::with_capacity(raw.len());
    let mut open = None;
    for (i, &b) in raw.iter().enumerate() {
        match b {
            b' ' | b'.' => name.push(b'_'),
            b'[' => {
                open = Some(i);
                break;
            }
            _ => name.push(b),
        }
    }
    if name.is_empty() {
        return None;
    }
    let Some(open) = open else {
        return Some(Name::Plain(lossy(name)));
    };
    let rest = &raw[open + 1..];
    let Some(close) = rest.iter().position(|&b| b == b']') else {
        // not an index: the `[` becomes `_`, the rest of the name stays as it is
        name.push(b'_');
        name.extend_from_slice(rest);
        return Some(Name::Plain(lossy(name)));
    };
    let mut level = 1;
    let mut after = &rest[close + 1..];
    while after.first() == Some(&b'[') {
        level += 1;
        if level > MAX_NESTING {
            return Some(Name::Remove(lossy(name)));
        }
        match after[1..].iter().position(|&b| b == b']') {
            Some(c) => after = &after[c + 2..],
            None => break,
        }
    }
    Some(Name::Array(lossy(name)))
}

fn lossy(b: Vec<u8>) -> String {
    String::from_utf8(b).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// Decodes `%XX` and `+` like PHP's `urldecode` (malformed escapes are kept literally).
pub(crate) fn urldecode_bytes(b: &[u8]) -> Vec<u8> {
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

/// Whether a `Content-Type` makes PHP parse the body into `$_POST` as form fields: the
/// media type (case-insensitive, before any `;`, `,` or space) is
/// `application/x-www-form-urlencoded`.
pub fn is_form_content_type(content_type: &str) -> bool {
    let media = content_type
        .split([';', ',', ' '])
        .next()
        .unwrap_or_default();
    media.eq_ignore_ascii_case("application/x-www-form-urlencoded")
}

#[cfg(test)]
mod tests;
