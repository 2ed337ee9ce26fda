//! The small administrative subcommands: `hash-password` (a password prompt without echo, or
//! a line from standard input) and the hidden `completions SHELL` and `manpage`, which print
//! the shell completion scripts and the man page shipped in the Debian package (`pkg/`).

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;
use thiserror::Error;

/// Why `hash-password` printed no hash.
#[derive(Debug, Error)]
pub enum PasswordError {
    #[error("empty password refused")]
    Empty,
    #[error("the two passwords differ")]
    Mismatch,
    #[error("cannot read the password: {0}")]
    Read(#[from] std::io::Error),
    #[error("{0}")]
    Hash(String),
}

/// The password in one line of input: the line ending removed, nothing else. An empty
/// password is refused.
pub fn password_from_line(line: &str) -> Result<&str, PasswordError> {
    let password = line.trim_end_matches(['\r', '\n']);
    if password.is_empty() {
        return Err(PasswordError::Empty);
    }
    Ok(password)
}

fn read_password() -> Result<String, PasswordError> {
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password: ")?;
        let again = rpassword::prompt_password("Again: ")?;
        if first != again {
            return Err(PasswordError::Mismatch);
        }
        Ok(password_from_line(&first)?.to_string())
    } else {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        Ok(password_from_line(&line)?.to_string())
    }
}

/// `hash-password`: prints the hash for `master/@passwordhash`; exit code 1 when there is none.
pub fn hash_password() -> ExitCode {
    let hashed = read_password().and_then(|p| {
        crate::admin::session::hash_password(&p).map_err(|e| PasswordError::Hash(e.to_string()))
    });
    match hashed {
        Ok(h) => {
            println!("{h}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn write_out(bytes: &[u8]) -> ExitCode {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The completion script of `cmd` for `shell`.
pub fn completion_script(mut cmd: clap::Command, shell: clap_complete::Shell) -> Vec<u8> {
    let mut buf = Vec::new();
    let name = cmd.get_name().to_string();
    clap_complete::generate(shell, &mut cmd, name, &mut buf);
    buf
}

/// `completions SHELL`: prints the completion script.
pub fn completions(cmd: clap::Command, shell: clap_complete::Shell) -> ExitCode {
    write_out(&completion_script(cmd, shell))
}

/// The man page of `cmd` (roff): the command's page, then one section per visible
/// subcommand with its synopsis, description and options.
pub fn man_page(cmd: clap::Command) -> std::io::Result<Vec<u8>> {
    let mut cmd = cmd;
    cmd.build();
    let mut buf = Vec::new();
    clap_mangen::Man::new(cmd.clone()).render(&mut buf)?;
    for sub in cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
    {
        let full = format!("{} {}", cmd.get_name(), sub.get_name());
        let man = clap_mangen::Man::new(
            sub.clone()
                .bin_name(full.clone())
                .display_name(full.clone()),
        );
        let mut page = Vec::new();
        man.render_synopsis_section(&mut page)?;
        man.render_description_section(&mut page)?;
        man.render_options_section(&mut page)?;
        // the subcommand's sections become subsections of its own section
        let page = String::from_utf8_lossy(&page).replace(".SH ", ".SS ");
        buf.extend_from_slice(format!(".SH \"{}\"\n", full.to_uppercase()).as_bytes());
        buf.extend_from_slice(page.as_bytes());
    }
    Ok(buf)
}

/// `manpage`: prints the man page.
pub fn manpage(cmd: clap::Command) -> ExitCode {
    match man_page(cmd) {
        Ok(page) => write_out(&page),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_line_endings_are_dropped_and_empty_refused() {
        assert_eq!(password_from_line("s3cret\r\n").ok(), Some("s3cret"));
        assert_eq!(password_from_line(" a b \n").ok(), Some(" a b "));
        assert!(matches!(
            password_from_line("\n"),
            Err(PasswordError::Empty)
        ));
        assert!(matches!(password_from_line(""), Err(PasswordError::Empty)));
    }
}
