//! The answer `update.php` is writing and the device state it changes on the way.
//!
//! Every `update.php` request (a poll or a `mode=` upload) writes comment and command lines
//! (CRLF-terminated, as PHP sends them) and logs into the device's state: PHP's `notify` prints
//! a comment and appends it to the message log, `bailout` ends the script without writing the
//! state, and `cleanupDeviceStates` trims the log and writes it. [`Answer`] holds both halves
//! so every flow ends the same way.

use crate::php::Args;
use crate::state::{self, DeviceState, Loaded, MsgRules, Target};

/// Text written into a comment line: line breaks and other control characters are shown
/// escaped, so nothing a request carries can start a command line (contract §6).
pub fn comment_safe(s: &str) -> String {
    if !s.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\r' => out.push_str("\\r"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push(' '),
            c if (c as u32) < 0x20 || c == '\u{7f}' => out.push('?'),
            c => out.push(c),
        }
    }
    out
}

/// Bytes of an uploaded body an answer shows at most ([`Answer::dump`]).
pub const DUMP_SHOWN: usize = 4096;
/// Lines of an uploaded body an answer shows at most.
pub const DUMP_LINES: usize = 100;

/// An answer being written, with the device state it logs into.
#[derive(Debug)]
pub struct Answer {
    pub out: Vec<u8>,
    /// The device's state once something was logged into it (PHP creates it lazily).
    state: Option<DeviceState>,
    /// The state taken up on the first log; `None` when state tracking is off or the request
    /// has no `sn`.
    pending: Option<DeviceState>,
    /// Whether the state is written when the request ends.
    pub write_state: bool,
    pub now: i64,
    /// How the message log is shortened when the request ends.
    msg_rules: MsgRules,
}

/// Why the script stopped early.
pub struct Exit;

impl Answer {
    /// Starts an answer. The state is taken up on the first log into it when state tracking
    /// is on (`status_dir`) and the request names a serial number, like PHP's `logInit`: a
    /// missing file gives a fresh state, a corrupt one a fresh state with the error noted;
    /// `seen` is set to now.
    pub fn new(
        status_dir: Option<&str>,
        args: &Args,
        loaded: &Loaded,
        now: i64,
        msg_rules: MsgRules,
    ) -> Answer {
        let sn = args.get("sn").map(|s| s.into_owned()).unwrap_or_default();
        // PHP's logInit refuses an empty() serial number, which includes "0"
        let state = match (status_dir, crate::php::empty(&sn)) {
            (Some(_), false) => {
                let mut ds = match loaded {
                    Loaded::Ok(el) => (**el).clone(),
                    Loaded::Missing => DeviceState::default(),
                    Loaded::Corrupt { error, raw } => {
                        let mut s = DeviceState::default();
                        s.root.child_or_insert("device");
                        s.root.set_attr("error", format!("{error}({raw})"));
                        s
                    }
                };
                let s = &mut ds.root;
                // a device child that has this serial already stays shared (no copy)
                if s.child("device").and_then(|d| d.attr("sn")) != Some(sn.as_str()) {
                    s.child_or_insert("device").set_attr("sn", sn);
                }
                s.set_attr("seen", now.to_string());
                Some(ds)
            }
            _ => None,
        };
        Answer {
            out: Vec::with_capacity(4096),
            state: None,
            pending: state,
            write_state: false,
            now,
            msg_rules,
        }
    }

    pub fn print(&mut self, s: &str) {
        self.out.extend_from_slice(s.as_bytes());
    }

    /// A line, CRLF-terminated.
    pub fn line(&mut self, s: &str) {
        self.line_bytes(s.as_bytes());
    }

    pub fn line_bytes(&mut self, s: &[u8]) {
        self.out.extend_from_slice(s);
        self.out.extend_from_slice(b"\r\n");
    }

    /// `# text`, made comment-safe.
    pub fn comment(&mut self, text: &str) {
        let safe = comment_safe(text);
        self.line(&format!("# {safe}"));
    }

    /// PHP's `notify`: a comment and an entry in the device's message log.
    pub fn notify(&mut self, msg: &str) {
        self.comment(msg);
        let now = self.now;
        self.log("msg", Some(msg), Target::New("msgs", now));
    }

    /// `notify($msg, true)`: the script ends and the state is written.
    pub fn notify_die(&mut self, msg: &str) -> Exit {
        self.notify(msg);
        self.finish();
        Exit
    }

    /// PHP's `bailout`: `# msg - exit`; the script ends, the state is not written.
    pub fn bailout(&mut self, msg: &str) -> Exit {
        self.comment(&format!("{msg} - exit"));
        self.write_state = false;
        Exit
    }

    /// The device state, if something was logged into it.
    pub fn state(&self) -> Option<&DeviceState> {
        self.state.as_ref()
    }

    /// The device state, taken up now if it was not yet (PHP's `logInit`); `None` without
    /// state tracking or serial number.
    pub fn state_mut(&mut self) -> Option<&mut DeviceState> {
        if self.state.is_none() {
            self.state = self.pending.take();
        }
        self.state.as_mut()
    }

    /// PHP's `logDeviceState` (a no-op without state).
    pub fn log(&mut self, attr: &str, value: Option<&str>, target: Target<'_>) {
        if let Some(s) = self.state_mut() {
            state::log(s, attr, value, target);
        }
    }

    /// [`state::log_delivered`] (a no-op without state).
    pub fn log_delivered(&mut self, path: &str, delivered: &str, version: &str) {
        if let Some(s) = self.state_mut() {
            state::log_delivered(&mut s.root, path, delivered, version);
        }
    }

    pub fn log_device(&mut self, attr: &str, value: &str) {
        self.log(attr, Some(value), Target::Sub("device"));
    }

    /// PHP's `cleanupDeviceStates` (and the `max-msgs` cap): shortens the message log; the
    /// state will be written.
    pub fn finish(&mut self) {
        if let Some(s) = self.state.as_mut() {
            state::trim_log(&mut s.log, self.now, self.msg_rules);
        }
        self.write_state = true;
    }

    /// [`Answer::state_to_write`], taken out of the answer.
    pub fn take_state_to_write(&mut self) -> Option<DeviceState> {
        if self.write_state {
            self.state.take()
        } else {
            None
        }
    }

    /// The state to write, if the request ended in a way that writes it.
    pub fn state_to_write(&self) -> Option<&DeviceState> {
        if self.write_state {
            self.state.as_ref()
        } else {
            None
        }
    }

    /// PHP's `dbgout`: a block of text shown as comments. Unlike PHP, only the first
    /// [`DUMP_SHOWN`] bytes ([`DUMP_LINES`] lines) of `content` are shown (a line says how many more there were): an
    /// answer never echoes more than a few KiB of what a device sent.
    pub fn dump(&mut self, title: &str, content: &[u8]) {
        let mut end = content.len().min(DUMP_SHOWN);
        if let Some(nl) = content[..end]
            .iter()
            .enumerate()
            .filter(|(_, b)| **b == b'\n')
            .nth(DUMP_LINES)
        {
            end = nl.0;
        }
        let shown = &content[..end];
        let text = String::from_utf8_lossy(shown).replace("\r\n", "\n");
        self.comment(&format!("{title} >"));
        for l in text.split('\n') {
            self.comment(l);
        }
        if shown.len() < content.len() {
            self.comment(&format!(
                "... {} more bytes not shown",
                content.len() - shown.len()
            ));
        }
        self.line(&format!("# > {} ", comment_safe(title)));
        self.print("\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_cannot_start_command_lines() {
        let mut a = Answer::new(
            None,
            &Args::default(),
            &Loaded::Missing,
            0,
            MsgRules::default(),
        );
        a.comment("x\r\nconfig change CMD0 /name pwned\r\n#");
        let text = String::from_utf8(a.out).expect("utf8");
        assert_eq!(text.lines().count(), 1);
        assert!(text.starts_with("# x\\r\\nconfig"));
    }

    #[test]
    fn state_only_with_status_dir_and_serial() {
        let args = Args::parse("sn=00-90");
        assert!(
            Answer::new(None, &args, &Loaded::Missing, 5, MsgRules::default())
                .state_mut()
                .is_none()
        );
        let no_sn = Args::parse("sn=");
        assert!(
            Answer::new(
                Some("status"),
                &no_sn,
                &Loaded::Missing,
                5,
                MsgRules::default()
            )
            .state_mut()
            .is_none()
        );
        let mut a = Answer::new(
            Some("status"),
            &args,
            &Loaded::Missing,
            5,
            MsgRules::default(),
        );
        assert!(a.state().is_none(), "taken up lazily");
        assert_eq!(
            a.state_mut().map(|s| s.to_xml()),
            Some(r#"<state seen="5"><device sn="00-90"/></state>"#.to_string())
        );
        let c = Loaded::Corrupt {
            error: "bad".into(),
            raw: "<x".into(),
        };
        let mut a = Answer::new(Some("status"), &args, &c, 5, MsgRules::default());
        let err = a
            .state_mut()
            .and_then(|s| s.root.attr("error").map(str::to_string));
        assert_eq!(err, Some("bad(<x)".to_string()));
    }

    #[test]
    fn bailout_does_not_write_notify_die_does() {
        let args = Args::parse("sn=00-90");
        let mut a = Answer::new(
            Some("status"),
            &args,
            &Loaded::Missing,
            5,
            MsgRules {
                keep_secs: 1800,
                ..MsgRules::default()
            },
        );
        let _ = a.bailout("boom");
        assert!(a.state_to_write().is_none());
        let _ = a.notify_die("bye");
        assert!(a.state_to_write().is_some());
        assert_eq!(
            String::from_utf8_lossy(&a.out),
            "# boom - exit\r\n# bye\r\n"
        );
    }
}
