//! Fetching the CSR, waiting for the CA, installing the signed certificate, cleaning up.

use super::*;

#[test]
fn the_csr_on_the_device_is_fetched_as_php_recorded() {
    let st = state(Some(&format!("{WRONG}{REQUEST}")), None);
    let d = simple(&case_config(), &st, &CertFiles::default(), now());
    let recorded = recorded_lines("customcerts-csr-download/expected/01-response.txt");
    assert_eq!(trimmed(&d), recorded[2..4].to_vec());
    assert!(!d.skipnext);
}

#[test]
fn a_fetched_csr_waits_for_the_ca_and_gets_its_pem() {
    let st = state(Some(&format!("{WRONG}{REQUEST}")), None);
    let der =
        case_file("customcerts-signed-cert-install/state/certs/00-90-33-30-00-af-request.p10.der");
    let files = CertFiles {
        request_der: Some(der.clone()),
        ..Default::default()
    };
    let d = simple(&case_config(), &st, &files, now());
    assert!(d.cmds.is_none());
    assert_eq!(
        d.file_ops,
        vec![FileOp::Write {
            path: format!("certs/{SN}-request.p10.pem"),
            bytes: der2pem(&der)
        }]
    );
    assert_eq!(
        d.certstat(),
        Some("signing request must be processed by CA (ongoing)")
    );
    // with forcetrust the device keeps being asked for its request error, snippets wait
    let ft = config(
        r#"<customcerts dir="certs" CAname="Test Custom CA"/>"#,
        r#"<times forcehttps="true" forcetrust="true"/>"#,
    );
    let files = CertFiles {
        request_der: Some(der),
        request_pem: true,
        ..Default::default()
    };
    let d = simple(&ft, &st, &files, now());
    assert!(d.file_ops.is_empty());
    let l = lines(&d);
    assert_eq!(l.len(), 1);
    assert!(l[0].contains("var=X509/REQUESTERROR"));
}

fn installing_files() -> CertFiles {
    let dir = "customcerts-signed-cert-install/state/certs/";
    CertFiles {
        request_der: Some(case_file(&format!(
            "{dir}00-90-33-30-00-af-request.p10.der"
        ))),
        request_pem: true,
        signed: Some(Ok(case_file(&format!(
            "{dir}00-90-33-30-00-af-signedrequest.cer"
        )))),
        request_key: false,
        ca_keys: vec![
            (
                "certs/CAkey-01.cer".to_string(),
                Ok(case_file(&format!("{dir}CAkey-01.cer"))),
            ),
            (
                "certs/CAkey-02.cer".to_string(),
                Ok(case_file(&format!("{dir}CAkey-02.cer"))),
            ),
        ],
    }
}

#[test]
fn a_signed_certificate_is_installed_as_php_recorded() {
    let st = state(Some(&format!("{WRONG}{REQUEST}")), None);
    let d = simple(&case_config(), &st, &installing_files(), now());
    let recorded = recorded_lines("customcerts-signed-cert-install/expected/01-response.txt");
    assert_eq!(trimmed(&d), recorded[2..6].to_vec());
    assert!(d.skipnext);
    assert_eq!(
        d.certstat(),
        Some("there is an uploaded signed CSR (certs/00-90-33-30-00-af-signedrequest.cer)")
    );
}

#[test]
fn a_bogus_signed_certificate_sends_nothing_and_says_why() {
    let st = state(Some(&format!("{WRONG}{REQUEST}")), None);
    let cfg = case_config();
    let mut files = installing_files();
    files.signed = Some(Ok(
        b"-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n".to_vec(),
    ));
    let d = simple(&cfg, &st, &files, now());
    assert!(d.cmds.is_none() && !d.skipnext, "{d:?}");
    let status = d.certstat().unwrap_or_default();
    assert!(
        status.starts_with("uploaded signed certificate certs/00-90-33-30-00-af-signedrequest.cer not usable: not an X.509 certificate"),
        "{status}"
    );
    assert!(status.contains("nothing sent to the device"));

    // a real certificate, but for another key than the device's request
    let ca = ca("Test Custom CA");
    let other = KeyPair::generate().expect("key");
    files.signed = Some(Ok(leaf(
        &ca,
        &other,
        "0090333000af",
        now() - 60,
        now() + 86400,
    )));
    let d = simple(&cfg, &st, &files, now());
    assert!(d.cmds.is_none());
    assert!(
        d.certstat().unwrap_or_default().contains("public key"),
        "{:?}",
        d.certstat()
    );

    // an empty file
    files.signed = Some(Ok(Vec::new()));
    assert!(simple(&cfg, &st, &files, now()).cmds.is_none());

    // an unreadable file
    files.signed = Some(Err("permission denied".into()));
    let d = simple(&cfg, &st, &files, now());
    assert!(d.cmds.is_none());
    assert!(
        d.certstat()
            .unwrap_or_default()
            .contains("permission denied")
    );

    // a CA file that is no certificate
    let mut files = installing_files();
    files
        .ca_keys
        .push(("certs/CAkey-03.txt".into(), Ok(b"notes".to_vec())));
    let d = simple(&cfg, &st, &files, now());
    assert!(d.cmds.is_none());
    assert!(
        d.certstat()
            .unwrap_or_default()
            .starts_with("CA certificate certs/CAkey-03.txt (customcerts/@CAkeys) not usable"),
        "{:?}",
        d.certstat()
    );
}

#[test]
fn a_good_certificate_cleans_up_here_and_on_the_device() {
    let good = reported("0090333000af", "Test Custom CA", 0, 4_000_000_000);
    let st = state(
        Some(&format!("<servercert>{good}</servercert>{REQUEST}")),
        None,
    );
    let mut files = installing_files();
    files.request_key = true;
    let d = simple(&case_config(), &st, &files, now());
    assert_eq!(
        lines(&d),
        vec!["vars del X509/REQUEST ", "vars del X509/REQUESTKEY "]
    );
    let base = format!("certs/{SN}");
    assert_eq!(
        d.file_ops,
        vec![
            FileOp::Delete {
                path: format!("{base}-request.p10.der")
            },
            FileOp::Delete {
                path: format!("{base}-request.p10.pem")
            },
            FileOp::Delete {
                path: format!("{base}-signedrequest.cer")
            },
            FileOp::Delete {
                path: format!("{base}-request.der.key")
            },
        ]
    );
    assert!(d.ok && d.cleaned_up);
    assert_eq!(d.msgs[0], "OK");
    assert_eq!(
        d.certstat(),
        Some("removing CSR Key certs/00-90-33-30-00-af-request.der.key")
    );
    // once the device's request is gone too: nothing more to do
    let st = state(Some(&format!("<servercert>{good}</servercert>")), None);
    let d = simple(&case_config(), &st, &CertFiles::default(), now());
    assert!(d.cmds.is_none());
    assert_eq!(d.certstat(), Some("OK"));
}

#[test]
fn ca_type_and_ca_name_are_required() {
    let st = state(Some(WRONG), None);
    let files = CertFiles::default();
    // PHP finds its method requestCertificate_manual case-insensitively
    let d = simple(
        &config(
            r#"<customcerts dir="certs" CAname="Test Custom CA" CAtype="Manual"/>"#,
            "",
        ),
        &st,
        &files,
        now(),
    );
    assert!(d.bailout.is_none() && d.skipnext);
    let d = simple(
        &config(
            r#"<customcerts dir="certs" CAname="Test Custom CA" CAtype="wstep"/>"#,
            "",
        ),
        &st,
        &files,
        now(),
    );
    assert_eq!(
        d.bailout.as_deref(),
        Some("certificates: no support for certificates of type 'wstep'")
    );
}
