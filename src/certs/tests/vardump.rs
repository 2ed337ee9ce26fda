//! `mode=vardump` uploads.

use super::*;
use crate::answer::Answer;
use crate::php::Args;
use crate::state::Loaded;

// ---------------------------------------------------------------------------------------------
// mode=vardump

fn upload(cfg: &Config, query: &str, body: &[u8]) -> (Result<Vec<FileOp>, &'static str>, String) {
    let args = Args::parse(query);
    let mut ans = Answer::new(
        Some("status"),
        &args,
        &Loaded::Missing,
        1234,
        Default::default(),
    );
    let r = match vardump(cfg, &args, body, &mut ans) {
        Ok(ops) => Ok(ops),
        Err(VardumpError::Php(_)) => Err("php"),
        Err(VardumpError::Refused(_)) => Err("refused"),
    };
    (r, String::from_utf8_lossy(&ans.out).into_owned())
}

const CSR_QUERY: &str = "mode=vardump&sn=00-90-33-30-00-af&var=X509/REQUEST&file=certs%2F00-90-33-30-00-af-request.p10.der&proc=var2bin&postproc=createPemFromDer";
const ERR_QUERY: &str = "mode=vardump&sn=00-90-33-30-00-af&var=X509/REQUESTERROR&file=certs%2F00-90-33-30-00-af-requesterror";

#[test]
fn vardump_stores_the_csr_and_its_pem() {
    let key = KeyPair::generate().expect("key");
    let request = csr(&key, "0090333000af");
    let body = format!("X509/REQUEST pb {}\r\n", bin2var(&request));
    let (r, out) = upload(&case_config(), CSR_QUERY, body.as_bytes());
    assert_eq!(
        r,
        Ok(vec![
            FileOp::Write {
                path: format!("certs/{SN}-request.p10.der"),
                bytes: request.clone()
            },
            FileOp::Write {
                path: format!("certs/{SN}-request.p10.pem"),
                bytes: der2pem(&request)
            },
        ])
    );
    assert!(out.contains(&format!(
        "# processed (with 'var2bin') length: {}\r\n",
        request.len()
    )));
}

#[test]
fn vardump_stores_the_request_error_as_sent() {
    let (r, _) = upload(
        &case_config(),
        ERR_QUERY,
        b"X509/REQUESTERROR p 4661696c6564\r\n",
    );
    assert_eq!(
        r,
        Ok(vec![FileOp::Write {
            path: format!("certs/{SN}-requesterror"),
            bytes: b"4661696c6564".to_vec()
        }])
    );
    let (r, _) = upload(
        &case_config(),
        ERR_QUERY,
        b"X509/REQUESTERROR p \xc0\xff\r\n",
    );
    assert_eq!(
        r.map(|ops| ops.into_iter().next()),
        Ok(Some(FileOp::Write {
            path: format!("certs/{SN}-requesterror"),
            bytes: b"\xc0\xff".to_vec()
        }))
    );
}

#[test]
fn vardump_refuses_unusable_csr_data() {
    let key = KeyPair::generate().expect("key");
    let hex = bin2var(&csr(&key, "x"));
    for bad in [
        format!("X509/REQUEST pb {}", &hex[..hex.len() - 1]), // odd length
        format!("X509/REQUEST pb {}", &hex[..hex.len() - 40]), // truncated
        format!("X509/REQUEST pb zz{}", &hex[2..]),           // not hex
        "X509/REQUEST pb ".to_string(),                       // empty
    ] {
        let (r, out) = upload(&case_config(), CSR_QUERY, bad.as_bytes());
        assert_eq!(r, Err("refused"), "{bad}");
        assert!(out.contains("# refused: 'X509/REQUEST' from the device is unusable: "));
    }
}

#[test]
fn vardump_writes_only_the_two_workflow_files() {
    let cfg = case_config();
    let body = b"X509/REQUEST pb 00\r\nX509/REQUESTERROR p 00\r\nX509/OTHER p 00\r\n";
    for q in [
        "mode=vardump&sn=00-90-33-30-00-af&var=X509/REQUEST&file=certs/other.der&proc=var2bin",
        "mode=vardump&sn=00-90-33-30-00-af&var=X509/REQUEST&file=certs%2F00-90-33-30-00-af-request.p10.der&proc=bin2var",
        "mode=vardump&sn=00-90-33-30-00-af&var=X509/REQUEST&file=certs%2F00-90-33-30-00-af-request.p10.der&proc=var2bin&postproc=cleanupDeviceStates",
        "mode=vardump&sn=00-90-33-30-00-af&var=X509/OTHER&file=certs%2F00-90-33-30-00-af-requesterror",
        "mode=vardump&sn=00-90-33-30-00-af&var=X509/REQUESTERROR&file=certs%2F00-90-33-30-00-af-requesterror&proc=var2bin",
        "mode=vardump&sn=00-90-33-30-00-b0&var=X509/REQUESTERROR&file=certs%2F00-90-33-30-00-af-requesterror",
        "mode=vardump&sn=&var=X509/REQUESTERROR&file=certs%2F-requesterror",
    ] {
        let (r, out) = upload(&cfg, q, body);
        assert_eq!(r, Err("refused"), "{q}");
        assert!(out.contains("# refused: mode=vardump only stores"), "{out}");
    }
    // without customcerts nothing at all
    let (r, _) = upload(&config("", ""), ERR_QUERY, body);
    assert_eq!(r, Err("refused"));
}

#[test]
fn vardump_answers_php_argument_errors_first() {
    let cfg = case_config();
    let cases = [
        (
            "mode=vardump&var=X",
            "# need 'sn' arg for mode=vardump, use ?sn=#m - exit\r\n",
        ),
        (
            "mode=vardump&sn=1",
            "# need 'var' arg for mode=vardump, use ?var=varname - exit\r\n",
        ),
        (
            "mode=vardump&sn=1&var=X",
            "# need 'file' arg for mode=vardump, use ?file=filename - exit\r\n",
        ),
        (
            "mode=vardump&sn=1&var=X&file=..%2Fx",
            "# ?file: filename must not point to external directory - exit\r\n",
        ),
        (
            "mode=vardump&sn=1&var=X&file=a%5Cb%5Cc",
            "# ?file: filename must not point to external directory - exit\r\n",
        ),
        (
            "mode=vardump&sn=1&var=X&file=certs%2Fx.PHP",
            "# bad file name - exit\r\n",
        ),
    ];
    for (q, expected) in cases {
        let (r, out) = upload(&cfg, q, b"X p 00");
        assert_eq!(r, Err("php"), "{q}");
        assert_eq!(out, expected);
    }
    let (r, out) = upload(&cfg, ERR_QUERY, b"X509/OTHER pb 00\r\n");
    assert_eq!(r, Err("php"));
    assert!(out.ends_with(
        "# failed to extract 'X509/REQUESTERROR' from PUT data for mode=vardump - exit\r\n"
    ));
}

/// PHP's `getVarDump` step by step: three `str_replace`s, then the lines.
fn var_from_dump_like_php(var: &str, dump: &[u8]) -> Option<Vec<u8>> {
    let mut text = crate::php::str_replace(dump, b"\r\n", b"\n");
    text = crate::php::str_replace(&text, b"\n\r", b"\n");
    text = crate::php::str_replace(&text, b"\r", b"\n");
    text.split(|&b| b == b'\n').find_map(|line| {
        let tokens: Vec<&[u8]> = line.split(|&b| b == b' ').collect();
        (tokens.len() >= 3 && tokens[0] == var.as_bytes()).then(|| tokens[2].to_vec())
    })
}

proptest::proptest! {
    #[test]
    fn var_from_dump_finds_what_php_finds(
        parts in proptest::collection::vec(
            proptest::sample::select(vec!["v", "w", " ", "\r", "\n", "x", "ab"]),
            0..40,
        ),
        var in proptest::sample::select(vec!["v", "w", "", "ab"]),
    ) {
        let dump: Vec<u8> = parts.concat().into_bytes();
        proptest::prop_assert_eq!(var_from_dump(var, &dump), var_from_dump_like_php(var, &dump));
    }
}
