//! The script's steps in the PHP server's order ([`run`]); the device facts they share
//! ([`Device`], worked out once at the start) are in `facts`.

use super::Need;
use super::ctx::{Ctx, Step, Stop};
use super::delivery::{check, deliver, hook};
use super::facts::{Device, Listing, list_snippets};
use super::identity::{enforce_trust, refuse_unproved};
use super::upgrade::firmware_section;
use super::urlmod::Rewrite;
use crate::certs::{self, CertDecision as Decision};
use crate::firmware::FullUrl;
use crate::php::{self, Value, loose_eq};
use crate::state::Target;

/// The whole script, step by step.
pub(super) fn run(ctx: &mut Ctx<'_>) -> Step {
    ctx.notify("");
    refuse_unproved(ctx)?;
    let start = ctx.ans.out.len();
    if let Err(stop) = rewrite_for_missing_args(ctx) {
        // the stdargs URL carries nothing of the device: sent even to a refused poll
        ctx.allowed = Some(start..ctx.ans.out.len());
        return Err(stop);
    }
    let dev = Device::read(ctx)?;
    skipnext(ctx, &dev)?;
    let mut listing = list_snippets(ctx, &dev);
    backup_line(ctx);
    grace(ctx, &listing)?;
    let decision = certificates(ctx, &dev)?;
    ctx.do_queries(&dev.classes, &dev.envs)?;
    times(ctx, &dev);
    firmware(ctx, &dev)?;
    certificate_cmds(ctx, &dev, &decision)?;
    enforce_https(ctx, &dev)?;
    advance_phase(ctx, &dev);
    let hook = hook(ctx, &dev)?;
    super::staged::stage(ctx, &dev, &mut listing, hook.standard);
    let check = check(ctx, &dev, &listing, &hook);
    deliver(ctx, &dev, &listing, &hook, &check);
    ctx.finish();
    Ok(())
}

/// Without `type`, `sn`, `hwid` and `ip` the device only gets its URL rewritten (with the
/// `stdargs` macros) and the script ends.
fn rewrite_for_missing_args(ctx: &mut Ctx<'_>) -> Step {
    let args = ctx.inp.args;
    let missing: Vec<String> = ["type", "sn", "hwid", "ip"]
        .iter()
        .filter(|k| !args.has(k))
        .map(|k| k.to_string())
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    if !args.has("phase") {
        let first = ctx.cfg.first_phase().to_string();
        ctx.set_state_arg("phase", Value::Str(first));
    }
    if !args.has("polling") {
        let p = ctx.polling();
        ctx.set_state_arg("polling", p);
    }
    let rw = Rewrite {
        missing,
        polling: Value::Null,
        phase: None,
        nextphase: None,
    };
    ctx.rewrite_url(&rw, false, &Value::Null);
    Err(Stop::Exit)
}

/// `skipnext`: a poll after certificate changes only runs the queries.
fn skipnext(ctx: &mut Ctx<'_>, dev: &Device) -> Step {
    let skip = ctx
        .ans
        .state()
        .and_then(|s| s.root.attr("skipnext"))
        .map(str::to_string);
    let Some(t) = skip else {
        return Ok(());
    };
    let now = ctx.inp.now;
    let age = php::since(now, php::intval(&t));
    ctx.log(
        "msg",
        Some(&format!("skipnext: {age}")),
        Target::New("msgs", now),
    );
    if let Some(s) = ctx.ans.state_mut() {
        s.root.remove_attr("skipnext");
    }
    ctx.line("# need up-to-date query state, skipping update script, doing queries only");
    ctx.do_queries(&dev.classes, &dev.envs)?;
    let p = ctx.polling();
    ctx.set_state_arg("polling", p);
    ctx.finish();
    Err(Stop::Exit)
}

/// The backup line (`mod cmd UP0 scfg …`), unless backups are off or need HTTPS.
fn backup_line(ctx: &mut Ctx<'_>) {
    let cfg = ctx.cfg;
    if !cfg.backups_enabled() {
        ctx.print("\r\n");
        ctx.notify("Backups not enabled in config");
    } else if cfg.times.forcehttps && !ctx.inp.conn.https {
        ctx.notify("backups enabled but forcehttps is true and not using HTTPS");
    } else {
        let scfg = FullUrl(ctx.base_url, cfg.backup.scfg.as_deref().unwrap_or(""));
        ctx.print("\r\n");
        ctx.line_fmt(format_args!("mod cmd UP0 scfg {scfg}"));
    }
}

/// The grace period: nothing while a snippet is younger than `times/@grace`.
fn grace(ctx: &mut Ctx<'_>, listing: &Listing<'_>) -> Step {
    if listing.newest_time == 0 {
        return Ok(());
    }
    let age = ctx.inp.now - listing.newest_time;
    let grace = ctx.cfg.times.grace;
    let newest_file = listing.newest_file();
    ctx.print("\r\n");
    ctx.comment_fmt(format_args!("newest script ({newest_file}) {age}s old"));
    if age < grace {
        return ctx.notify_die(&format!(
            "files being updated ({newest_file} {age}s old, waiting for at least {grace}s to expire)"
        ));
    }
    Ok(())
}

/// Certificates: what to do about the device's certificate (the commands are sent later,
/// after the firmware).
fn certificates(ctx: &mut Ctx<'_>, dev: &Device) -> Step<CertOutcome> {
    let inp = ctx.inp;
    ctx.print("\r\n");
    let decision = certs::decide(&certs::CertInput {
        config: ctx.cfg,
        state: ctx.ans.state().map(|s| &s.root),
        device_type: &dev.device_type,
        sn: Some(&dev.sn),
        files: inp.certs,
        base_url: ctx.base_url,
        now: inp.now,
        rdns: ctx.resolved.rdns.clone(),
    });
    let outcome = match decision {
        Decision::NeedRdns(ip) => return Err(Stop::Need(Need::Rdns(ip))),
        Decision::Bailout(msg) => return ctx.bailout(&msg),
        Decision::Continue(report) => CertOutcome { report, cmds: None },
        Decision::SendAndStop {
            report,
            cmds,
            skipnext,
        } => {
            if skipnext {
                let now = inp.now;
                ctx.log("skipnext", Some(&now.to_string()), Target::Root);
                ctx.log("msg", Some("skipnext set"), Target::New("msgs", now));
            }
            CertOutcome {
                report,
                cmds: Some(cmds),
            }
        }
    };
    let report = &outcome.report;
    if report.cleaned_up {
        ctx.log_device("requestDownloaded", "false");
    }
    ctx.file_ops.extend(report.file_ops.iter().cloned());
    if let Some(status) = report.certstat() {
        let status = status.to_string();
        ctx.log_device("certstat", &status);
    }
    Ok(outcome)
}

/// The certificate decision once the need for more input and the bail-outs are handled:
/// what to report, and the commands to send (then nothing else is sent).
struct CertOutcome {
    report: certs::CertReport,
    cmds: Option<Vec<certs::Command>>,
}

/// Restricted update times.
fn times(ctx: &mut Ctx<'_>, dev: &Device) {
    if let Some(times) = ctx.restricted_times(dev.nextphase.is_some()) {
        ctx.print(&format!("\r\n# Restricted times\r\n{times}\r\n"));
    }
    ctx.print("\r\n");
}

/// Firmware and boot code, the builds the device reports, and the reset after an update.
fn firmware(ctx: &mut Ctx<'_>, dev: &Device) -> Step {
    let args = ctx.inp.args;
    let arg = |k: &str| args.get(k).map(|v| v.into_owned());
    // without rollouts, nothing happens here when `master/@info` is empty (as in PHP)
    // a staged rollout that has the device in scope decides instead of the master
    let rollout = super::rollouts::rollout_section(ctx, &dev.device_type, &dev.classes, &dev.envs);
    let reset = match rollout {
        Some(reset) => reset,
        None => firmware_section(ctx, &dev.device_type, &dev.classes, &dev.envs)?,
    };
    if let Some(p) = arg("PROT") {
        ctx.log("build", Some(&p), Target::Sub("firmware"));
    }
    if let Some(b) = arg("BOOT") {
        ctx.log("build", Some(&b), Target::Sub("bootcode"));
    }
    if let Some(h) = arg("hwid") {
        ctx.log_device("hwid", &h);
    }
    if let Some(i) = arg("ip") {
        ctx.log_device("realip", &i);
    }
    if reset {
        ctx.line("# make sure remaining update scripts are executed with up-to-date firmware and update URL");
        ctx.line("iresetn");
    }
    Ok(())
}

/// The certificate messages and commands; with commands, nothing else is sent.
fn certificate_cmds(ctx: &mut Ctx<'_>, dev: &Device, decision: &CertOutcome) -> Step {
    for m in &decision.report.msgs {
        ctx.notify(&format!("certificates: {m} "));
    }
    if let Some(cmds) = &decision.cmds {
        if ctx.refused.is_some() {
            ctx.line(
                "# certificate cmds withheld: the client certificate does not prove this serial",
            );
            return Ok(());
        }
        for (cmt, c) in cmds {
            ctx.notify(&format!("certificates: {cmt}"));
            ctx.line_bytes(c);
        }
        let p = ctx.polling();
        ctx.set_state_arg("polling", p);
        if !ctx.rewrite_url(&dev.rewrite(), false, &Value::Null) {
            ctx.line("config write");
            ctx.line("config activate");
        }
        ctx.line("iresetn");
        return ctx.notify_die("certificate cmds need to process - no further cmds");
    }
    ctx.line("# no certificate cmds required - processing normal updates");
    Ok(())
}

/// `times/@forcehttps`: a device not on HTTPS at the right port gets its URL switched and
/// nothing else; with `times/@forcetrust` its client certificate is checked.
fn enforce_https(ctx: &mut Ctx<'_>, dev: &Device) -> Step {
    let cfg = ctx.cfg;
    let conn = ctx.inp.conn;
    if !cfg.times.forcehttps {
        // PHP checks trust only with forcehttps; a refused poll ends here in any case
        if cfg.times.forcetrust && ctx.refused.is_some() {
            enforce_trust(ctx)?;
        }
        return Ok(());
    }
    let https_port: Value = if conn.https {
        Value::Str(conn.local_port.to_string())
    } else {
        Value::Null
    };
    let need_port = cfg.times.httpsport.clone();
    let need_port = Value::Str(need_port.unwrap_or_else(|| "443".to_string()));
    if !conn.https || !loose_eq(&need_port, &https_port) {
        let p = ctx.polling();
        ctx.set_state_arg("polling", p.clone());
        let start = ctx.ans.out.len();
        ctx.rewrite_url(&dev.rewrite(), true, &https_port);
        ctx.allowed = Some(start..ctx.ans.out.len());
        return ctx.notify_die(&format!(
            "forcehttps - currently {}using HTTPS on port {}, new polling: {}",
            if conn.https { "" } else { "NOT " },
            https_port.to_php_string(),
            p.to_php_string()
        ));
    }
    if cfg.times.forcetrust {
        enforce_trust(ctx)?;
    }
    Ok(())
}

/// The next poll's phase and polling: fast polling while staging, off in the last phase.
fn advance_phase(ctx: &mut Ctx<'_>, dev: &Device) {
    ctx.print("\r\n");
    match &dev.nextphase {
        Some(np) => {
            ctx.set_state_arg("phase", Value::Str(np.clone()));
            let p = ctx.polling();
            ctx.set_state_arg("polling", p);
        }
        None => ctx.set_state_arg("polling", Value::Int(0)),
    }
}
