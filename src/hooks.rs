//! The snippet hook: dynamic snippets without recompiling (the PHP server's
//! `CustomUpdateSnippet` class in `config/scripting.class.php`).
//!
//! Configured with `<snippethook exec="config/snippet-hook" timeout="5"/>` in the user
//! configuration (the path is relative to the root). On every poll that reaches the snippet
//! stage, the executable runs with the device's state document (`status/SN.xml` as it is at
//! that moment) on standard input and the environment variables `UPDATE_SERVER_SN`,
//! `UPDATE_SERVER_TYPE`, `UPDATE_SERVER_PHASE` set. It answers on standard output, one
//! directive per line:
//!
//! ```text
//! pre <line>       a line sent before the standard snippets
//! post <line>      a line sent after the standard snippets
//! standard off     do not send the standard snippets (PHP's sendStandardSnippets() = false)
//! # …              a comment, ignored (blank lines too)
//! ```
//!
//! The `pre`/`post` lines count into the CHECK signature like PHP's custom snippets do. A hook
//! that cannot be started, exits non-zero, writes anything else, or does not finish within the
//! timeout is reported in a comment of the answer and in the log; the poll then goes on with
//! the standard snippets only.

use crate::script::HookAnswer;
use crate::state::DeviceState;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

/// Largest hook output accepted.
const MAX_OUTPUT: usize = 1024 * 1024;

/// Parses the hook's standard output.
pub fn parse_output(out: &[u8]) -> Result<HookAnswer, String> {
    let mut ans = HookAnswer {
        standard: true,
        ..Default::default()
    };
    for (n, raw) in out.split(|&b| b == b'\n').enumerate() {
        let line = raw.strip_suffix(b"\r").unwrap_or(raw);
        if line.iter().all(u8::is_ascii_whitespace) || line.first() == Some(&b'#') {
            continue;
        }
        if let Some(rest) = line.strip_prefix(b"pre ") {
            ans.pre.push(rest.to_vec());
        } else if let Some(rest) = line.strip_prefix(b"post ") {
            ans.post.push(rest.to_vec());
        } else if line == b"standard off" {
            ans.standard = false;
        } else if line == b"standard on" {
            ans.standard = true;
        } else {
            return Err(format!(
                "line {} not understood: '{}'",
                n + 1,
                String::from_utf8_lossy(line)
                    .chars()
                    .take(80)
                    .collect::<String>()
            ));
        }
    }
    Ok(ans)
}

fn failed(error: String) -> HookAnswer {
    HookAnswer {
        standard: true,
        error: Some(error),
        ..Default::default()
    }
}

/// Runs the hook for a device in state `state`.
pub async fn run(root: &Path, exec: &str, timeout: Duration, state: &DeviceState) -> HookAnswer {
    let path = root.join(exec);
    let device = state.root.child("device");
    let attr = |n: &str| device.and_then(|d| d.attr(n)).unwrap_or("").to_string();
    let mut child = match tokio::process::Command::new(&path)
        .current_dir(root)
        .env("UPDATE_SERVER_SN", attr("sn"))
        .env("UPDATE_SERVER_TYPE", attr("type"))
        .env("UPDATE_SERVER_PHASE", attr("phase"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("snippet hook {}: cannot start: {e}", path.display());
            return failed(format!("cannot start {exec}: {e}"));
        }
    };
    let doc = state.to_document();
    let mut stdin = child.stdin.take();
    let result = tokio::time::timeout(timeout, async move {
        if let Some(mut s) = stdin.take() {
            // a hook that does not read its input is fine
            let _ = s.write_all(doc.as_bytes()).await;
            drop(s);
        }
        child.wait_with_output().await
    })
    .await;
    let output = match result {
        Err(_) => {
            tracing::error!("snippet hook {exec}: no answer within {timeout:?}");
            return failed(format!(
                "{exec} did not answer within {} s",
                timeout.as_secs()
            ));
        }
        Ok(Err(e)) => return failed(format!("{exec}: {e}")),
        Ok(Ok(o)) => o,
    };
    if !output.status.success() {
        let err = String::from_utf8_lossy(&output.stderr);
        let first = err
            .lines()
            .next()
            .unwrap_or("")
            .chars()
            .take(120)
            .collect::<String>();
        tracing::error!("snippet hook {exec} failed ({}): {err}", output.status);
        return failed(format!("{exec} exited with {}: {first}", output.status));
    }
    if output.stdout.len() > MAX_OUTPUT {
        return failed(format!("{exec} wrote more than {MAX_OUTPUT} bytes"));
    }
    match parse_output(&output.stdout) {
        Ok(a) => a,
        Err(e) => {
            tracing::error!("snippet hook {exec}: {e}");
            failed(format!("{exec}: {e}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_directives() {
        let a = parse_output(b"# hi\npre config add A\r\n\npost config add B\nstandard off\n")
            .expect("ok");
        assert_eq!(a.pre, vec![b"config add A".to_vec()]);
        assert_eq!(a.post, vec![b"config add B".to_vec()]);
        assert!(!a.standard);
        assert!(parse_output(b"config add A\n").is_err());
        assert!(parse_output(b"").expect("empty").standard);
    }

    #[tokio::test]
    async fn runs_a_hook_and_survives_failures() {
        let dir = tempfile::tempdir().expect("tmp");
        let write = |name: &str, body: &str| {
            let p = dir.path().join(name);
            std::fs::write(&p, body).expect("write");
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755))
                    .expect("chmod");
            }
        };
        write(
            "ok.sh",
            "#!/bin/sh\ngrep -q 'sn=\"00-90\"' && echo \"pre config add CMD0 /name $UPDATE_SERVER_TYPE\"\n",
        );
        write("fail.sh", "#!/bin/sh\necho boom >&2\nexit 3\n");
        write("slow.sh", "#!/bin/sh\nsleep 5\n");
        let mut st = crate::state::new_state("00-90");
        st.root.child_or_insert("device").set_attr("type", "IP232");
        let t = Duration::from_secs(2);
        let a = run(dir.path(), "ok.sh", t, &st).await;
        assert_eq!(a.error, None);
        assert_eq!(a.pre, vec![b"config add CMD0 /name IP232".to_vec()]);
        let a = run(dir.path(), "fail.sh", t, &st).await;
        assert!(
            a.error.as_deref().is_some_and(|e| e.contains("boom")),
            "{a:?}"
        );
        assert!(a.standard);
        let a = run(dir.path(), "slow.sh", Duration::from_millis(300), &st).await;
        assert!(
            a.error
                .as_deref()
                .is_some_and(|e| e.contains("did not answer"))
        );
        let a = run(dir.path(), "missing.sh", t, &st).await;
        assert!(a.error.is_some());
    }
}
