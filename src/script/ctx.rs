//! The state of one run of the script builder: the answer so far (with the device state),
//! the URL state arguments, the certificate file operations, and the output helpers.

use super::PollInput;
use crate::answer::{Answer, Exit};
use crate::certs::FileOp;
use crate::config::Config;
use crate::firmware;
use crate::php::{Value, loose_eq};
use crate::state::Target;

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
    pub base_url: String,
    pub rollout_changes: Vec<(String, crate::rollout::Change)>,
}

/// `dirname()` of a URL: everything before its last `/` (not inside `scheme://`).
pub fn url_dirname(url: &str) -> String {
    match url.rfind('/') {
        Some(i) if i > url.find("://").map_or(0, |p| p + 2) => url[..i].to_string(),
        _ => url.to_string(),
    }
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
                cfg.status.logkeep,
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
            base_url: url_dirname(inp.script_url),
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

    pub fn comment(&mut self, text: &str) {
        self.ans.comment(text);
    }

    pub fn notify(&mut self, msg: &str) {
        self.ans.notify(msg);
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

    pub fn full_url(&self, url: &str) -> String {
        firmware::full_url(&self.base_url, url)
    }

    pub fn polling(&self) -> Value {
        self.cfg.times.polling.clone()
    }
}
