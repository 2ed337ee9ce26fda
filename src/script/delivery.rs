//! The end of the script: the administrator's snippet hook, the CHECK signature (nothing is
//! delivered when the device already has it), and the delivery of the snippets with the
//! closing commands.

use super::ctx::{Ctx, Step, Stop};
use super::facts::{Device, Listing};
use super::{HookAnswer, Need};
use crate::php::Value;
use crate::snippets::{Snippet, SnippetSource};
use crate::state;
use md5::{Digest, Md5};
use std::fmt::Write as _;

/// The snippet hook's answer (asked for when a hook is configured).
pub(super) fn hook(ctx: &mut Ctx<'_>, dev: &Device) -> Step<HookAnswer> {
    let hook = if ctx.inp.hook_configured {
        match &ctx.resolved.hook {
            Some(h) => h.clone(),
            None => {
                let snapshot = ctx
                    .ans
                    .state()
                    .cloned()
                    .unwrap_or_else(|| state::new_state(&dev.sn));
                return Err(Stop::Need(Need::Hook(Box::new(snapshot))));
            }
        }
    } else {
        HookAnswer {
            standard: true,
            ..Default::default()
        }
    };
    if let Some(e) = &hook.error {
        ctx.comment(&format!(
            "snippet hook failed: {e} - standard snippets only"
        ));
    }
    Ok(hook)
}

/// Whether to deliver, and the CHECK signature to set (in the last phase with
/// `times/@check`).
pub(super) struct Check {
    pub deliver: bool,
    pub sig: Option<String>,
}

/// Compares the CHECK signature of what would be delivered with the device's `CHECK`.
pub(super) fn check(
    ctx: &mut Ctx<'_>,
    dev: &Device,
    listing: &Listing<'_>,
    hook: &HookAnswer,
) -> Check {
    let mut check = Check {
        deliver: true,
        sig: None,
    };
    if dev.nextphase.is_none() && ctx.cfg.times.check {
        let used: Vec<&Snippet> = if hook.standard {
            listing.files.iter().map(|f| f.snippet).collect()
        } else {
            Vec::new()
        };
        let s = files_signature(ctx.inp.snippets, &used, &hook.pre, &hook.post);
        if ctx.inp.args.get("CHECK").as_deref() == Some(s.as_str()) {
            check.deliver = false;
        }
        check.sig = Some(s);
    }
    check
}

/// Sends the hook's lines and the snippets, then the closing commands (URL, CHECK, reset);
/// with a good CHECK only the URL rewrite.
pub(super) fn deliver(
    ctx: &mut Ctx<'_>,
    dev: &Device,
    listing: &Listing<'_>,
    hook: &HookAnswer,
    check: &Check,
) {
    let rw = dev.rewrite();
    if !check.deliver {
        ctx.line(&format!(
            "# not delivering any snippets - CHECK serial {} is good",
            check.sig.as_deref().unwrap_or("")
        ));
        ctx.rewrite_url(&rw, false, &Value::Null);
        return;
    }
    for l in &hook.pre {
        ctx.line_bytes(l);
    }
    if hook.standard {
        send_snippets(ctx, listing);
    } else {
        ctx.line("# standard snippets suppressed by custom snippet");
    }
    for l in &hook.post {
        ctx.line_bytes(l);
    }
    ctx.print("\r\n# end of all scripts \r\n");
    if !ctx.rewrite_url(&rw, false, &Value::Null) {
        ctx.line("config write");
        ctx.line("config activate");
    }
    if let Some(sig) = &check.sig {
        ctx.line("# set CHECK var");
        ctx.line(&format!("mod cmd UP1 check ser {sig}"));
    }
    ctx.line("# trigger reset if required");
    ctx.line("iresetn");
}

/// The standard snippets, each framed by comments, logged as delivered.
fn send_snippets(ctx: &mut Ctx<'_>, listing: &Listing<'_>) {
    // one allocation for the snippets with their frames and the closing commands
    let size: usize = listing
        .files
        .iter()
        .map(|f| {
            let content = f.snippet.content.as_ref().map_or(0, |c| c.len());
            content + 2 * listing.path(f).len() + 64
        })
        .sum();
    ctx.ans.out.reserve(size + 512);
    let now = ctx.inp.now.to_string();
    let (mut msg, mut mtime) = (String::new(), String::new());
    for f in &listing.files {
        let path = listing.path(f);
        msg.clear();
        msg.push_str("    ");
        msg.push_str(path);
        ctx.notify(&msg);
        ctx.print("# { \r\n");
        ctx.comment_fmt(format_args!("begin script '{path}' "));
        if let Ok(content) = &f.snippet.content {
            ctx.line_bytes(content);
            mtime.clear();
            let _ = write!(mtime, "{}", f.snippet.mtime);
            ctx.ans.log_delivered(path, &now, &mtime);
        }
        ctx.comment_fmt(format_args!("end script '{path}'"));
        ctx.print("# }\r\n");
    }
}

/// The CHECK signature: md5 over the hook's lines before, the snippets' trimmed lines, and
/// the hook's lines after.
/// Without hook lines the snippet source may know the signature of the same snippets already
/// (the snippet store keeps the last ones computed).
pub(super) fn files_signature(
    source: &(dyn SnippetSource + Sync),
    snippets: &[&Snippet],
    pre: &[Vec<u8>],
    post: &[Vec<u8>],
) -> String {
    if pre.is_empty() && post.is_empty() {
        return source.signature(snippets, &mut || md5_hex(snippets, pre, post));
    }
    md5_hex(snippets, pre, post)
}

fn md5_hex(snippets: &[&Snippet], pre: &[Vec<u8>], post: &[Vec<u8>]) -> String {
    let mut h = Md5::new();
    for l in pre {
        h.update(l);
    }
    for s in snippets {
        h.update(s.signature_part.as_slice());
    }
    for l in post {
        h.update(l);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}
