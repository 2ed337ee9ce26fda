//! Conversions and checks: hex, DER/PEM, certificate and request structure, dumps, names.

use super::*;

#[test]
fn var2bin_decodes_hex_and_refuses_garbage() {
    assert_eq!(var2bin(b"00ff10"), Ok(vec![0x00, 0xff, 0x10]));
    assert_eq!(var2bin(b"0A7f"), Ok(vec![0x0a, 0x7f]));
    assert_eq!(var2bin(b""), Ok(vec![]));
    assert_eq!(var2bin(b"abc"), Err(CertError::OddHex(3)));
    assert_eq!(var2bin(b"zz"), Err(CertError::NotHex(0)));
    assert_eq!(var2bin(b"0g"), Err(CertError::NotHex(1)));
    assert_eq!(var2bin(b"+f"), Err(CertError::NotHex(0)));
    assert_eq!(var2bin(b"\xff\xfe"), Err(CertError::NotHex(0)));
}

#[test]
fn bin2var_writes_lower_case_hex() {
    assert_eq!(bin2var(&[0x00, 0x0f, 0xa0, 0xff]), "000fa0ff");
    assert_eq!(bin2var(&[]), "");
    let all: Vec<u8> = (0..=255).collect();
    assert_eq!(var2bin(bin2var(&all).as_bytes()), Ok(all));
}

#[test]
fn der2pem_matches_php_chunk_split() {
    // base64("\x30\x03\x02\x01\x05") = "MAMCAQU=", one short line
    assert_eq!(
        der2pem(b"\x30\x03\x02\x01\x05"),
        b"-----BEGIN CERTIFICATE REQUEST-----\r\nMAMCAQU=\r\n-----END CERTIFICATE REQUEST-----\r\n"
            .to_vec()
    );
    // chunk_split("") is "\r\n"
    assert_eq!(
        der2pem(b""),
        b"-----BEGIN CERTIFICATE REQUEST-----\r\n\r\n-----END CERTIFICATE REQUEST-----\r\n"
            .to_vec()
    );
    // 48 bytes are exactly 64 base64 characters: one full line, nothing more
    let text = String::from_utf8(der2pem(&[0u8; 48])).expect("ascii");
    assert_eq!(text.split("\r\n").nth(1), Some("A".repeat(64).as_str()));
    assert_eq!(text.split("\r\n").count(), 4);
}

#[test]
fn der2pem_matches_the_php_recording() {
    let der =
        case_file("customcerts-signed-cert-install/state/certs/00-90-33-30-00-af-request.p10.der");
    let pem = case_file(
        "customcerts-vardump-upload/expected/files/certs/00-90-33-30-00-af-request.p10.pem",
    );
    assert_eq!(der2pem(&der), pem);
}

#[test]
fn certificate_files_are_pem_or_der() {
    let der = vec![0x30, 0x03, 0x02, 0x01, 0x05];
    assert_eq!(cert_from_file(&der), der);
    let p = pem("CERTIFICATE", &der);
    assert_eq!(cert_from_file(&p), der);
    // stripos: case does not matter; CRLF, CR and text around the block are fine
    let crlf = String::from_utf8_lossy(&p)
        .replace('\n', "\r\n")
        .to_lowercase()
        .replace("mamcaqu=", "MAMCAQU=");
    assert_eq!(
        cert_from_file(format!("Bag Attributes\r\n{crlf}trailer").as_bytes()),
        der
    );
    assert_eq!(
        cert_from_file(String::from_utf8_lossy(&p).replace('\n', "\r").as_bytes()),
        der
    );
    // only the first certificate of a file counts
    let mut two = p.clone();
    two.extend(pem("CERTIFICATE", &[0x30, 0x00]));
    assert_eq!(cert_from_file(&two), der);
}

#[test]
fn certificate_files_give_the_bytes_php_sent() {
    // the recorded `vars create` lines carry PHP's bin2var(getCertFromFile(...))
    let lines = recorded_lines("customcerts-signed-cert-install/expected/01-response.txt");
    let sent = |n: &str| {
        lines
            .iter()
            .find_map(|l| l.strip_prefix(&format!("vars create X509/REQUESTRESPONSE/{n} pb ")))
            .expect("recorded line")
            .to_string()
    };
    let dir = "customcerts-signed-cert-install/state/certs/";
    let pem_file = case_file(&format!("{dir}00-90-33-30-00-af-signedrequest.cer"));
    assert_eq!(bin2var(&cert_from_file(&pem_file)), sent("00000"));
    assert_eq!(
        bin2var(&cert_from_file(&case_file(&format!("{dir}CAkey-01.cer")))),
        sent("00001")
    );
    assert_eq!(
        bin2var(&cert_from_file(&case_file(&format!("{dir}CAkey-02.cer")))),
        sent("00002")
    );
}

#[test]
fn signed_certificates_are_checked_against_the_request() {
    let ca = ca("Test Custom CA");
    let key = KeyPair::generate().expect("key");
    let other = KeyPair::generate().expect("key");
    let request = csr(&key, "0090333000af");
    let good = leaf(&ca, &key, "0090333000af", now() - 60, now() + 86400 * 365);
    let wrong = leaf(&ca, &other, "0090333000af", now() - 60, now() + 86400 * 365);
    assert_eq!(check_signed(&good, &request), Ok(()));
    assert_eq!(check_signed(&wrong, &request), Err(CertError::OtherKey));
    assert!(matches!(
        check_signed(b"this is not a certificate", &request),
        Err(CertError::NotCertificate(_))
    ));
    assert!(matches!(
        check_signed(&request, &request),
        Err(CertError::NotCertificate(_))
    ));
    // a request that cannot be read does not stop a real certificate
    assert_eq!(check_signed(&good, b"garbage"), Ok(()));
    assert_eq!(check_certificate(&ca.der), Ok(()));
    assert_eq!(check_request(&request), Ok(()));
    assert!(matches!(
        check_request(&request[..request.len() - 10]),
        Err(CertError::NotRequest(_))
    ));
    assert!(check_request(&good).is_err());
    assert!(check_request(&ca.der).is_err());
    // the request of the PHP recordings
    let recorded =
        case_file("customcerts-signed-cert-install/state/certs/00-90-33-30-00-af-request.p10.der");
    assert_eq!(check_request(&recorded), Ok(()));
}

/// A DER element with a short length.
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut v = vec![tag, u8::try_from(content.len()).expect("short")];
    v.extend_from_slice(content);
    v
}

#[test]
fn the_structure_decides_what_the_parser_cannot_read() {
    let int = tlv(0x02, &[1]);
    let seq_of = |n: usize| tlv(0x30, &int.repeat(n));
    let whole = |tbs: Vec<u8>| {
        let mut c = tbs;
        c.extend(tlv(0x30, &[]));
        c.extend(tlv(0x03, &[0]));
        tlv(0x30, &c)
    };
    // six fields in the to-be-signed part: shaped like a certificate, sent
    assert_eq!(check_certificate(&whole(seq_of(6))), Ok(()));
    assert_eq!(check_signed(&whole(seq_of(6)), b""), Ok(()));
    // three: shaped like a request
    assert!(check_certificate(&whole(seq_of(3))).is_err());
    let mut info = int.clone();
    info.extend(tlv(0x30, &[]));
    info.extend(tlv(0x30, &[]));
    assert_eq!(check_request(&whole(tlv(0x30, &info))), Ok(()));
    info.extend(tlv(0xa0, &[]));
    assert_eq!(check_request(&whole(tlv(0x30, &info))), Ok(()));
    let cut = whole(tlv(0x30, &info));
    assert!(check_request(&cut[..cut.len() - 1]).is_err());
    assert!(check_request(&tlv(0x04, b"text")).is_err());
}

#[test]
fn var_dump_values_like_php_get_var_dump() {
    let dump = b"X509/OTHER pb 00\r\nX509/REQUEST pb 3081\r\nX509/REQUEST pb ffff\r\n";
    assert_eq!(var_from_dump("X509/REQUEST", dump), Some(b"3081".to_vec()));
    // LF CR and lone CR end lines too; lines of fewer than three tokens are skipped
    assert_eq!(
        var_from_dump("B", b"B x\n\rA p 1\rB p 2"),
        Some(b"2".to_vec())
    );
    assert_eq!(var_from_dump("X509/REQUEST", b"X509/REQUEST pb"), None);
    assert_eq!(var_from_dump("X509/REQUEST", b"x509/request pb 00"), None);
    assert_eq!(var_from_dump("X", b""), None);
    // an empty third token is a value (PHP stores an empty file)
    assert_eq!(var_from_dump("X", b"X p "), Some(Vec::new()));
    // the value is kept byte for byte
    assert_eq!(
        var_from_dump("E", b"E p \xff\xfe more"),
        Some(b"\xff\xfe".to_vec())
    );
}

#[test]
fn dns_names() {
    assert_eq!(str2dnsname("Reception Desk"), "reception-desk");
    assert_eq!(str2dnsname("a__b..C"), "a-b-c");
    assert_eq!(str2dnsname("X509/REQUEST"), "x509-request");
}

#[test]
fn file_argument_checks_follow_the_php_pattern() {
    for bad in [
        &b"../x.der"[..],
        b"certs/../x",
        b"certs/..",
        b"certs/..\n",
        b"..",
        b"..\n",
        b"/etc/passwd",
        b"\\/x",
        b"a\\x\\y",
        b"a\\b./d",
        b"x\\../y",
        b"certs/../",
    ] {
        assert!(!php_name_in_subfolder(bad), "{bad:?}");
    }
    for good in [&b"certs/x.der"[..], b"a..b", b"...", b"a\\\nb\\", b"a\\b"] {
        assert!(php_name_in_subfolder(good), "{good:?}");
    }
    assert_eq!(php_extension(b"certs/x.php"), b"php");
    assert_eq!(php_extension(b"certs/x.PhP/"), b"php");
    assert_eq!(php_extension(b"dir.sh/file"), b"");
    assert_eq!(php_extension(b".pl"), b"pl");
    assert_eq!(php_extension(b"certs/x.der"), b"der");
}

#[test]
fn csr_summary_names_the_subject_and_hashes_the_public_key() {
    use rcgen::PublicKeyData;
    use sha2::Digest;
    let key = KeyPair::generate().expect("key");
    let der = csr(&key, "IP232-30-00-af");
    let summary = csr_summary(&der).expect("summary");
    assert!(summary.subject.contains("CN=IP232-30-00-af"), "{summary:?}");
    let expected: Vec<String> = sha2::Sha256::digest(key.subject_public_key_info())
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect();
    assert_eq!(summary.key_sha256, expected.join(":"));
    assert_eq!(csr_summary(b"not a request"), None);
}
