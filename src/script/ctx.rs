//! The state of one run of the script builder: the answer so far (with the device state),
//! the URL state arguments, the certificate file operations, and the output helpers.

use super::PollInput;
use crate::answer::{Answer, Exit, comment_safe};
use crate::certs::FileOp;
use crate::config::Config;
use crate::php::{Value, loose_eq};
use crate::state::Target;
use std::fmt;
use std::io::Write as _;

/// Why the script stopped before its end.
pub(super) enum Stop {
    /// The script ended (PHP's `exit`/`die`).
    Exit,
    Need(super::Need),
}

/// The result of one step of the script.
pub(super) type Step<T = ()> = Result<T, Stop>;

/// One URL state argument (`polling`, `phase`) and its value for the next poll.
pub(super) struct StateArg {
    pub key: String,
    pub value: Value,
}

/// The state of one run: the answer so far (with the device state), the URL state arguments.
pub(super) struct Ctx<'a> {
    pub inp: &'a PollInput<'a>,
    pub resolved: &'a super::Resolved,
    pub cfg: &'a Config,
    pub ans: Answer,
    pub stateargs: Vec<StateArg>,
    pub statechanged: bool,
    pub file_ops: Vec<FileOp>,
    /// The directory of `update.php`'s URL ([`url_dirname`]).
    pub base_url: &'a str,
    pub rollout_changes: Vec<(String, crate::rollout::Change)>,
    /// Under forcetrust, why the certificate does not prove the serial, and whether the
    /// answer is 403 (a signed certificate waits); see `identity`.
    pub refused: Option<(crate::identity::IdentityError, bool)>,
    /// The bytes of the answer a refused poll may still send (PHP's forcehttps URL switch).
    pub allowed: Option<std::ops::Range<usize>>,
}

/// `dirname()` of a URL: everything before its last `/` (not inside `scheme://`).
pub fn url_dirname(url: &str) -> String {
    dirname(url).to_string()
}

fn dirname(url: &str) -> &str {
    match url.rfind('/') {
        Some(i) if i > url.find("://").map_or(0, |p| p + 2) => &url[..i],
        _ => url,
    }
}

/// Whether [`comment_safe`] keeps this text as it is (no control characters); it is
/// called only for the text that it changes.
fn is_comment_safe(text: &[u8]) -> bool {
    // no early exit within a chunk, so that its bytes are checked together
    let safe = |c: &[u8]| c.iter().fold(true, |ok, &b| ok & (b >= 0x20) & (b != 0x7f));
    text.chunks(32).all(safe)
}

impl<'a> Ctx<'a> {
    pub fn new(inp: &'a PollInput<'a>, resolved: &'a super::Resolved) -> Ctx<'a> {
        let cfg = inp.config;
        let arg_value = |k: &str| -> Value { inp.args.get(k).map(|v| v.into_owned()).into() };
        Ctx {
            inp,
            resolved,
            cfg,
            ans: Answer::new(
                cfg.status_dir(),
                inp.args,
                inp.state,
                inp.now,
                crate::state::MsgRules::of(cfg),
            ),
            stateargs: vec![
                StateArg {
                    key: "polling".to_string(),
                    value: arg_value("polling"),
                },
                StateArg {
                    key: "phase".to_string(),
                    value: arg_value("phase"),
                },
            ],
            statechanged: false,
            file_ops: Vec::new(),
            rollout_changes: Vec::new(),
            base_url: dirname(inp.script_url),
            refused: None,
            allowed: None,
        }
    }

    pub fn print(&mut self, s: &str) {
        self.ans.print(s);
    }

    pub fn line(&mut self, s: &str) {
        self.ans.line(s);
    }

    pub fn line_bytes(&mut self, s: &[u8]) {
        self.ans.line_bytes(s);
    }

    /// Formatted text, written straight into the answer.
    pub fn print_fmt(&mut self, args: fmt::Arguments<'_>) {
        // writing into a Vec<u8> does not fail
        let _ = self.ans.out.write_fmt(args);
    }

    /// A formatted line, CRLF-terminated.
    pub fn line_fmt(&mut self, args: fmt::Arguments<'_>) {
        self.print_fmt(args);
        self.print("\r\n");
    }

    /// `# text`, made comment-safe (`Answer::comment`, written straight into the answer).
    pub fn comment(&mut self, text: &str) {
        let start = self.comment_start();
        self.ans.out.extend_from_slice(text.as_bytes());
        self.comment_end(start);
    }

    /// A formatted comment line, made comment-safe as a whole. [`comment_safe`] replaces
    /// character by character, so this is the same as making only the arguments safe when
    /// the format string has no control characters: `"> {path}: {age}"` is
    /// `format!("> {}: {age}", comment_safe(path))`.
    pub fn comment_fmt(&mut self, args: fmt::Arguments<'_>) {
        let start = self.comment_start();
        self.print_fmt(args);
        self.comment_end(start);
    }

    fn comment_start(&mut self) -> usize {
        self.ans.out.extend_from_slice(b"# ");
        self.ans.out.len()
    }

    /// Makes the comment's text written since `start` safe, ends the line.
    fn comment_end(&mut self, start: usize) {
        let out = &mut self.ans.out;
        if !is_comment_safe(&out[start..]) {
            let text = String::from_utf8_lossy(&out[start..]).into_owned();
            out.truncate(start);
            out.extend_from_slice(comment_safe(&text).as_bytes());
        }
        out.extend_from_slice(b"\r\n");
    }

    /// PHP's `notify`: a comment and an entry in the device's message log (what
    /// `Answer::notify` does, with the comment written straight into the answer).
    pub fn notify(&mut self, msg: &str) {
        self.comment(msg);
        let now = self.ans.now;
        self.log("msg", Some(msg), Target::New("msgs", now));
    }

    pub fn notify_die<T>(&mut self, msg: &str) -> Step<T> {
        let Exit = self.ans.notify_die(msg);
        Err(Stop::Exit)
    }

    pub fn bailout<T>(&mut self, msg: &str) -> Step<T> {
        let Exit = self.ans.bailout(msg);
        Err(Stop::Exit)
    }

    pub fn log(&mut self, attr: &str, value: Option<&str>, target: Target<'_>) {
        self.ans.log(attr, value, target);
    }

    pub fn log_device(&mut self, attr: &str, value: &str) {
        self.ans.log_device(attr, value);
    }

    pub fn finish(&mut self) {
        self.ans.finish();
    }

    pub fn set_state_arg(&mut self, key: &str, value: Value) {
        let idx = match self.stateargs.iter().position(|a| a.key == key) {
            Some(i) => i,
            None => {
                self.stateargs.push(StateArg {
                    key: key.to_string(),
                    value: Value::Null,
                });
                self.stateargs.len() - 1
            }
        };
        if !loose_eq(&self.stateargs[idx].value, &value) {
            self.stateargs[idx].value = value;
            self.statechanged = true;
        }
    }

    pub fn state_arg(&self, key: &str) -> Value {
        self.stateargs
            .iter()
            .find(|a| a.key == key)
            .map_or(Value::Null, |a| a.value.clone())
    }

    pub fn polling(&self) -> Value {
        self.cfg.times.polling.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comment_safe_keeps_what_is_comment_safe() {
        let chars = (0..0x250)
            .filter_map(char::from_u32)
            .chain(['\u{2028}', '€', '😀']);
        for c in chars {
            let s = c.to_string();
            if is_comment_safe(s.as_bytes()) {
                assert_eq!(comment_safe(&s), s, "{c:?}");
            } else {
                assert_ne!(comment_safe(&s), s, "{c:?}");
            }
        }
    }
}
