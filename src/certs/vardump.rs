//! `update.php?mode=vardump`: the device uploads a `vars read` dump; only the workflow's own
//! two files of the device can be written.

use super::*;

/// PHP's `isNameInSubfolder` check on `file` arguments, with its regular expression's exact
/// meaning (its `\\.\\.` is "backslash, any character, backslash, any character"; `$` also
/// matches before a final newline). Kept for PHP's answers; the real protection is that only
/// the device's own files can be written.
pub fn php_name_in_subfolder(name: &[u8]) -> bool {
    let any = |c: u8| c != b'\n';
    let before_final_nl = name.strip_suffix(b"\n");
    let at_end = |suffix: &[u8]| {
        name.ends_with(suffix) || before_final_nl.is_some_and(|n| n.ends_with(suffix))
    };
    let whole = |x: &[u8]| name == x || before_final_nl == Some(x);
    let bad = at_end(b"/..")
        || whole(b"..")
        || name
            .windows(4)
            .any(|w| w[0] == b'\\' && any(w[1]) && w[2] == b'\\' && any(w[3]))
        || name.starts_with(b"../")
        || name.windows(4).any(|w| w == b"/../")
        || name
            .windows(4)
            .any(|w| w[0] == b'\\' && any(w[1]) && w[2] == b'.' && w[3] == b'/')
        || name.starts_with(b"/")
        || name.starts_with(b"\\/");
    !bad
}

/// PHP's `pathinfo($name, PATHINFO_EXTENSION)`, lower-cased: what follows the last `.` of the
/// last path component (trailing `/` ignored).
pub(super) fn php_extension(name: &[u8]) -> Vec<u8> {
    let mut n = name;
    while let Some(rest) = n.strip_suffix(b"/") {
        n = rest;
    }
    let base = n.rsplit(|&b| b == b'/').next().unwrap_or(n);
    match base.iter().rposition(|&b| b == b'.') {
        Some(i) => base[i + 1..].to_ascii_lowercase(),
        None => Vec::new(),
    }
}

/// Why `mode=vardump` stored nothing: one of PHP's own checks (PHP's answer, status 200), or
/// this server's rule (status 400).
pub enum VardumpError {
    Php(crate::answer::Exit),
    Refused(crate::answer::Exit),
}

/// `update.php?mode=vardump`: the device uploads a `vars read` dump; the certificate workflow
/// stores its CSR (`X509/REQUEST`, hex → DER, plus a PEM copy) and its request error
/// (`X509/REQUESTERROR`, as sent). PHP's argument checks and messages come first; then, unlike
/// PHP, nothing but these two files of the device itself can be written (contract §6), and a
/// CSR that is not one (odd or non-hex digits, truncated) is refused instead of stored, so the
/// next poll fetches it again. The shell runs the checks that need no body
/// ([`vardump_checks`]) before it reads the body, and reads only a small one for an upload
/// that will be refused; the answer shows a bounded prefix of the dump only. Returns the file
/// changes to make.
pub fn vardump(
    config: &Config,
    args: &crate::php::Args,
    body: &[u8],
    ans: &mut crate::answer::Answer,
) -> Result<Vec<FileOp>, VardumpError> {
    use VardumpError::{Php, Refused};
    let (sn, var, file) = checked_args(args, ans)?;
    ans.dump(&format!("vardump (before proc) {var}"), body);
    let Some(value) = var_from_dump(&var, body) else {
        return Err(Php(ans.bailout(&format!(
            "failed to extract '{var}' from PUT data for mode=vardump"
        ))));
    };
    let proc_ = args.get("proc").map(|v| v.into_owned());
    let postproc = args.get("postproc").map(|v| v.into_owned());
    let Some(paths) = permitted(config, args, &sn, &var, &file) else {
        return Err(Refused(ans.bailout(
            "refused: mode=vardump only stores a device's CSR (X509/REQUEST with proc=var2bin into customcerts/@dir/SN-request.p10.der) and its request error (X509/REQUESTERROR into customcerts/@dir/SN-requesterror)",
        )));
    };
    let bytes = if proc_.is_some() {
        match var2bin(&value).and_then(|der| check_request(&der).map(|()| der)) {
            Ok(der) => der,
            Err(e) => {
                return Err(Refused(ans.bailout(&format!(
                    "refused: '{var}' from the device is unusable: {e} - nothing stored"
                ))));
            }
        }
    } else {
        value
    };
    let member = proc_.as_deref().unwrap_or("none");
    ans.comment(&format!(
        "processed (with '{member}') length: {}",
        bytes.len()
    ));
    let pem = (postproc.as_deref() == Some("createPemFromDer")).then(|| der2pem(&bytes));
    let mut ops = vec![FileOp::Write {
        path: file.clone(),
        bytes,
    }];
    if let Some(pem) = pem {
        ops.push(FileOp::Write {
            path: paths.pem.clone(),
            bytes: pem,
        });
        ans.comment("sucessfully post-processed (with 'createPemFromDer')");
    }
    let now = ans.now.to_string();
    ans.log_device(&format!("var-{}", str2dnsname(&var)), &now);
    ans.notify(&format!(
        "uploaded {file} with proc={member}/postproc={} ",
        postproc.as_deref().unwrap_or("none")
    ));
    ans.finish();
    Ok(ops)
}

/// The checks of `mode=vardump` that need no body, for the shell to run before it reads the
/// body: PHP's argument checks (serial number, variable, file name; `Err` is PHP's answer,
/// on `ans`), then whether the upload is one of the workflow's two files of the device
/// (`Ok(false)` when not: it will be refused, so the shell reads only a small body for
/// PHP's answer about it).
pub fn vardump_checks(
    config: &Config,
    args: &crate::php::Args,
    ans: &mut crate::answer::Answer,
) -> Result<bool, VardumpError> {
    let (sn, var, file) = checked_args(args, ans)?;
    Ok(permitted(config, args, &sn, &var, &file).is_some())
}

/// The device's certificate paths when `var` into `file` with the request's `proc` and
/// `postproc` is one of the workflow's two files.
fn permitted(
    config: &Config,
    args: &crate::php::Args,
    sn: &str,
    var: &str,
    file: &str,
) -> Option<CertPaths> {
    let proc_ = args.get("proc");
    let postproc = args.get("postproc");
    allowed_paths(config, sn, var, file, proc_.as_deref(), postproc.as_deref())
}

/// PHP's argument checks, in PHP's order: the serial number, the variable, the file name.
/// Returns `(sn, var, file)`.
fn checked_args(
    args: &crate::php::Args,
    ans: &mut crate::answer::Answer,
) -> Result<(String, String, String), VardumpError> {
    use VardumpError::Php;
    let arg = |k: &str| args.get(k).map(|v| v.into_owned());
    let Some(sn) = arg("sn") else {
        return Err(Php(
            ans.bailout("need 'sn' arg for mode=vardump, use ?sn=#m")
        ));
    };
    let Some(var) = arg("var") else {
        return Err(Php(
            ans.bailout("need 'var' arg for mode=vardump, use ?var=varname")
        ));
    };
    let Some(file_raw) = args.get_bytes("file") else {
        return Err(Php(
            ans.bailout("need 'file' arg for mode=vardump, use ?file=filename")
        ));
    };
    if !php_name_in_subfolder(file_raw) {
        return Err(Php(
            ans.bailout("?file: filename must not point to external directory")
        ));
    }
    if matches!(php_extension(file_raw).as_slice(), b"php" | b"sh" | b"pl") {
        return Err(Php(ans.bailout("bad file name")));
    }
    let file = String::from_utf8_lossy(file_raw).into_owned();
    Ok((sn, var, file))
}

/// The device's certificate paths when the upload is one of the workflow's two files.
fn allowed_paths(
    config: &Config,
    sn: &str,
    var: &str,
    file: &str,
    proc_: Option<&str>,
    postproc: Option<&str>,
) -> Option<CertPaths> {
    config
        .customcerts
        .as_ref()
        .filter(|_| !sn.is_empty())
        .and_then(|cc| {
            let p = CertPaths::new(cc, sn);
            let csr = var == "X509/REQUEST"
                && file == p.der
                && proc_ == Some("var2bin")
                && matches!(postproc, None | Some("createPemFromDer"));
            let error = var == "X509/REQUESTERROR"
                && file == p.error
                && proc_.is_none()
                && postproc.is_none();
            (csr || error).then_some(p)
        })
}
