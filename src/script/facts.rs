//! The device facts one script run works out once at its start and its steps share: what
//! the poll says about the device ([`Device`]) and the snippets found for it ([`Listing`]).
//! Read by both the steps (`steps`) and the snippet delivery (`delivery`).

use super::candidates::{Candidates, candidate_names, environments};
use super::ctx::{Ctx, Step};
use super::urlmod::Rewrite;
use crate::php::{self, Value};
use crate::snippets::Snippet;

/// What the poll says about the device.
pub(super) struct Device {
    pub device_type: String,
    /// The classes of the device's type.
    pub classes: Vec<String>,
    /// The phase the device is in (the first one when it sent none).
    pub phase: String,
    /// The phase after it (`None` in the last phase).
    pub nextphase: Option<String>,
    /// The device's environments, with their `implies`.
    pub envs: Vec<String>,
    /// `?polling=` as sent.
    pub polling: Value,
    /// `?sn=` as sent (empty when missing).
    pub sn: String,
}

impl Device {
    /// Reads the facts from the request and logs them; ends the script on an unknown phase
    /// or environment.
    pub(super) fn read(ctx: &mut Ctx<'_>) -> Step<Device> {
        let inp = ctx.inp;
        let cfg = ctx.cfg;
        let arg = |k: &str| inp.args.get(k).map(|v| v.into_owned());
        let device_type = arg("type").unwrap_or_default();
        let classes = cfg.classes_of(&device_type);
        ctx.log_device("type", &device_type);
        ctx.log_device("classes", &classes.join(", "));
        let from = inp.conn.device_ip();
        ctx.log_device("ip", &from.ip);
        ctx.log_device("rp", if from.via_proxy { "true" } else { "false" });
        if let Some(proxy) = &from.proxy {
            ctx.log_device("proxy", proxy);
        }
        let phase = match arg("phase") {
            Some(p) if !php::empty(&p) => {
                if !cfg.phase_exists(&p) {
                    return ctx.notify_die(&format!("invalid phase: '{p}'"));
                }
                p
            }
            _ => cfg.first_phase().to_string(),
        };
        let nextphase = cfg.next_phase(&phase).map(str::to_string);
        ctx.log_device("phase", &phase);
        let envs = match environments(cfg, inp.args) {
            Ok(e) => e,
            Err(bad) => {
                let raw = arg("env").unwrap_or_default();
                return ctx.notify_die(&format!("invalid environment: '{bad}' ({raw})"));
            }
        };
        ctx.log_device("environments", &envs.join(", "));
        ctx.notify(&format!(
            "phase: {phase}, nextphase: {}, environment: {}, type: {device_type}, classes: {}",
            nextphase.as_deref().unwrap_or(""),
            envs.join("+"),
            classes.join("+")
        ));
        Ok(Device {
            device_type,
            classes,
            phase,
            nextphase,
            envs,
            polling: arg("polling").into(),
            sn: arg("sn").unwrap_or_default(),
        })
    }

    /// What a URL rewrite needs from the device facts.
    pub fn rewrite(&self) -> Rewrite {
        Rewrite {
            missing: Vec::new(),
            polling: self.polling.clone(),
            phase: Some(self.phase.clone()),
            nextphase: self.nextphase.clone(),
        }
    }
}

/// A snippet file that exists and is readable.
pub(super) struct Found<'a> {
    /// Its place among the candidates.
    candidate: usize,
    pub snippet: &'a Snippet,
}

/// The snippets found for the device and the newest of them.
pub(super) struct Listing<'a> {
    candidates: Candidates,
    pub files: Vec<Found<'a>>,
    /// Modification time of the newest (0: none found).
    pub newest_time: i64,
    /// The newest one's place among the candidates.
    newest: Option<usize>,
}

impl Listing<'_> {
    /// The path of a file found, as printed.
    pub fn path(&self, f: &Found<'_>) -> &str {
        self.candidates.get(f.candidate).path
    }

    /// The file name of a file found (inside the snippet directory).
    pub fn name(&self, f: &Found<'_>) -> &str {
        self.candidates.get(f.candidate).name
    }

    /// Path of the newest (`unknown`: none found).
    pub fn newest_file(&self) -> &str {
        self.newest
            .map_or("unknown", |i| self.candidates.get(i).path)
    }
}

/// Lists the candidate snippets: those that exist (with their age), then the others.
pub(super) fn list_snippets<'a>(ctx: &mut Ctx<'a>, dev: &Device) -> Listing<'a> {
    let inp = ctx.inp;
    let cfg = ctx.cfg;
    let candidates = candidate_names(cfg, Some(&dev.sn), &dev.classes, &dev.phase, &dev.envs);
    let snippets: Vec<Option<&'a Snippet>> = candidates
        .iter()
        .map(|c| inp.snippets.get(c.name))
        .collect();
    let dir = &cfg.times.dir;
    ctx.print("\r\n");
    ctx.comment_fmt(format_args!("existing files (from {dir}):"));
    if php::empty(&dev.sn) {
        ctx.line("# no SN -- cannot log");
    }
    let mut files = Vec::with_capacity(snippets.len());
    let (mut newest_time, mut newest) = (0, None);
    for (i, c) in candidates.iter().enumerate() {
        if let Some(s) = snippets[i].filter(|s| s.content.is_ok()) {
            let age = php::Since(inp.now, s.mtime);
            ctx.comment_fmt(format_args!("> {}: {age}", c.path));
            files.push(Found {
                candidate: i,
                snippet: s,
            });
            if s.mtime > newest_time {
                (newest_time, newest) = (s.mtime, Some(i));
            }
        }
    }
    ctx.print("\r\n");
    ctx.comment_fmt(format_args!("possible further files (from {dir}):"));
    for (i, c) in candidates.iter().enumerate() {
        match snippets[i].map(|s| &s.content) {
            Some(Ok(_)) => {}
            Some(Err(e)) => ctx.comment_fmt(format_args!("{}   (cannot read: {e})", c.path)),
            None => ctx.comment_fmt(format_args!("{}   ", c.path)),
        }
    }
    ctx.print("\r\n");
    Listing {
        candidates,
        files,
        newest_time,
        newest,
    }
}
