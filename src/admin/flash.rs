//! What the status page says after an action (pure): a message key from a fixed set,
//! carried in the redirect URL as `msg=KEY` (with the device as `msgsn=SN`), or, where the
//! way back is given by the page (the certificate upload's `proceed`), in a short-lived
//! cookie ([`FLASH_COOKIE`], `KEY:SN`) that the next status page shows and clears; and the
//! way back to the same filtered and sorted view (`mode=status&filter=…&sort=…`).
//!
//! Only keys of [`Flash`] are shown; anything else in `msg` is ignored, so a link cannot put
//! words of its own on the page.

use super::html::{Text, q};
use maud::{Markup, html};

/// The messages after an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flash {
    /// A signed certificate was stored (`update.php?mode=upload`).
    CertUploaded,
    /// A device's state was deleted (`delstatus`, `DELETE api/devices/SN`).
    StatusDeleted,
    /// A missing device was marked as seen (`touchstatus`).
    StatusTouched,
    /// A certificate file was deleted (`delfile`).
    FileDeleted,
    /// The action could not be done (the log says why).
    Failed,
    /// A staged rollout (its id in `msgsn`) was paused, resumed, aborted, started, or its
    /// next wave opened (`mode=rollout`).
    RolloutPaused,
    RolloutResumed,
    RolloutAborted,
    RolloutOpened,
    RolloutStarted,
}

impl Flash {
    const ALL: [Flash; 10] = [
        Flash::CertUploaded,
        Flash::StatusDeleted,
        Flash::StatusTouched,
        Flash::FileDeleted,
        Flash::Failed,
        Flash::RolloutPaused,
        Flash::RolloutResumed,
        Flash::RolloutAborted,
        Flash::RolloutOpened,
        Flash::RolloutStarted,
    ];

    /// The message after a rollout action.
    pub fn of_rollout(a: crate::rollout::Action) -> Flash {
        use crate::rollout::Action;
        match a {
            Action::Pause => Flash::RolloutPaused,
            Action::Resume => Flash::RolloutResumed,
            Action::Abort => Flash::RolloutAborted,
            Action::OpenNext => Flash::RolloutOpened,
            Action::Start => Flash::RolloutStarted,
        }
    }

    /// The `msg=` value.
    pub fn key(self) -> &'static str {
        match self {
            Flash::CertUploaded => "cert-uploaded",
            Flash::StatusDeleted => "status-deleted",
            Flash::StatusTouched => "status-touched",
            Flash::FileDeleted => "file-deleted",
            Flash::Failed => "failed",
            Flash::RolloutPaused => "rollout-paused",
            Flash::RolloutResumed => "rollout-resumed",
            Flash::RolloutAborted => "rollout-aborted",
            Flash::RolloutOpened => "rollout-opened",
            Flash::RolloutStarted => "rollout-started",
        }
    }

    pub fn parse(key: &str) -> Option<Flash> {
        Flash::ALL.into_iter().find(|f| f.key() == key)
    }

    /// The sentence shown (plain text), about device `sn` when known.
    pub fn text(self, sn: Option<&str>) -> String {
        let dev = sn.map(|s| format!(" of {s}")).unwrap_or_default();
        match self {
            Flash::CertUploaded => format!("Signed certificate{dev} stored."),
            Flash::StatusDeleted => format!("Status{dev} deleted."),
            Flash::StatusTouched => format!(
                "Device{} marked as seen now.",
                sn.map(|s| format!(" {s}")).unwrap_or_default()
            ),
            Flash::FileDeleted => format!("Certificate file{dev} deleted."),
            Flash::Failed => format!(
                "The action{} failed; see the server log.",
                sn.map(|s| format!(" on {s}")).unwrap_or_default()
            ),
            Flash::RolloutPaused => format!(
                "Rollout{} paused: no wave opens until it is resumed.",
                sp(sn)
            ),
            Flash::RolloutResumed => format!("Rollout{} resumed.", sp(sn)),
            Flash::RolloutAborted => format!(
                "Rollout{} aborted: no further device is told to update.",
                sp(sn)
            ),
            Flash::RolloutOpened => format!("Rollout{}: the next wave is open now.", sp(sn)),
            Flash::RolloutStarted => format!("Rollout{} started: its first wave is open.", sp(sn)),
        }
    }

    /// Whether the message reports a failure (for the page's styling).
    pub fn is_error(self) -> bool {
        self == Flash::Failed
    }
}

fn sp(id: Option<&str>) -> String {
    id.map(|s| format!(" {s}")).unwrap_or_default()
}

/// The query of the status page with `filter` and `sort` (empty ones left out) and a
/// message about `sn`.
pub fn status_query(filter: &str, sort: &str, flash: Option<(Flash, &str)>) -> String {
    let mut out = String::from("mode=status");
    if !filter.trim().is_empty() {
        out.push_str(&format!("&filter={}", q(filter)));
    }
    if !sort.is_empty() {
        out.push_str(&format!("&sort={}", q(sort)));
    }
    if let Some((f, sn)) = flash {
        out.push_str(&format!("&msg={}", f.key()));
        if !sn.is_empty() {
            out.push_str(&format!("&msgsn={}", q(sn)));
        }
    }
    out
}

/// The cookie that carries a message to the next status page.
pub const FLASH_COOKIE: &str = "update_server_flash";

/// The `Set-Cookie` value of a message about `sn` (at most a minute old when shown).
pub fn cookie(prefix: &str, flash: Flash, sn: &str, secure: bool) -> String {
    let path = if prefix.is_empty() { "/" } else { prefix };
    let mut c = format!(
        "{FLASH_COOKIE}={}:{}; Path={path}; HttpOnly; SameSite=Strict; Max-Age=60",
        flash.key(),
        q(sn)
    );
    if secure {
        c.push_str("; Secure");
    }
    c
}

/// The message and device of a flash cookie value.
pub fn from_cookie(value: &str) -> (Option<&str>, Option<&str>) {
    match value.split_once(':') {
        Some((k, sn)) => (Some(k), Some(sn)),
        None => (Some(value), None),
    }
}

/// The message of a page request (`msg`, `msgsn`) for the page's notice, `None` for no or
/// an unknown key. A `msgsn` that is no serial number is left out.
pub fn notice(msg: Option<&str>, sn: Option<&str>) -> Option<Markup> {
    let f = Flash::parse(msg?)?;
    let sn = sn.filter(|s| {
        !s.is_empty() && s.len() <= 64 && crate::request::check_name("sn", s.as_bytes()).is_ok()
    });
    let class = if f.is_error() { "flash error" } else { "flash" };
    Some(html! { span class=(class) role="status" data-msg=(f.key()) { (Text(&f.text(sn))) } })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_unknown_keys_show_nothing() {
        for f in Flash::ALL {
            assert_eq!(Flash::parse(f.key()), Some(f));
        }
        let notice = |m, sn| notice(m, sn).map(Markup::into_string);
        assert_eq!(notice(Some("<b>hi</b>"), None), None);
        assert_eq!(notice(None, Some("00-90")), None);
    }

    #[test]
    fn the_notice_names_the_device_escaped() {
        let notice = |m, sn| notice(m, sn).map(Markup::into_string);
        let n = notice(Some("cert-uploaded"), Some("00-90-33-30-00-a1")).expect("notice");
        assert_eq!(
            n,
            "<span class=\"flash\" role=\"status\" data-msg=\"cert-uploaded\">Signed certificate of 00-90-33-30-00-a1 stored.</span>"
        );
        let n = notice(Some("failed"), Some("../<x>")).expect("notice");
        assert!(!n.contains("<x>") && n.contains("flash error"), "{n}");
    }

    #[test]
    fn the_cookie_carries_key_and_device() {
        let c = cookie("/u", Flash::CertUploaded, "00-90", true);
        assert_eq!(
            c,
            "update_server_flash=cert-uploaded:00-90; Path=/u; HttpOnly; SameSite=Strict; Max-Age=60; Secure"
        );
        assert_eq!(
            from_cookie("cert-uploaded:00-90"),
            (Some("cert-uploaded"), Some("00-90"))
        );
    }

    #[test]
    fn the_way_back_keeps_filter_and_sort() {
        assert_eq!(status_query("", "", None), "mode=status");
        assert_eq!(
            status_query(
                "is:csr type:ip2*",
                "-seen",
                Some((Flash::StatusDeleted, "00-90"))
            ),
            "mode=status&filter=is%3Acsr%20type%3Aip2%2A&sort=-seen&msg=status-deleted&msgsn=00-90"
        );
    }
}
