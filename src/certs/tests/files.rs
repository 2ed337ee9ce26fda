//! Reading the certificate files (the shell part).

use super::*;

#[test]
fn ca_key_files_are_globbed_like_php() {
    let dir = tempfile::tempdir().expect("tmp");
    let root = dir.path();
    std::fs::create_dir_all(root.join("certs/chain")).expect("mkdir");
    for (name, content) in [
        ("certs/CAkey-02.cer", "b"),
        ("certs/CAkey-01.cer", "a"),
        ("certs/CAkey-10.cer", "c"),
        ("certs/.CAkey-00.cer", "hidden"),
        ("certs/cakey-05.cer", "lower"),
        ("certs/chain/1.cer", "sub"),
    ] {
        std::fs::write(root.join(name), content).expect("write");
    }
    let got = read_ca_keys(root, "certs", "CAkey*");
    assert_eq!(
        got,
        vec![
            ("certs/CAkey-01.cer".to_string(), Ok(b"a".to_vec())),
            ("certs/CAkey-02.cer".to_string(), Ok(b"b".to_vec())),
            ("certs/CAkey-10.cer".to_string(), Ok(b"c".to_vec())),
        ]
    );
    assert_eq!(
        read_ca_keys(root, "certs", "chain/*.cer"),
        vec![("certs/chain/1.cer".to_string(), Ok(b"sub".to_vec()))]
    );
    assert!(read_ca_keys(root, "certs", "nothing*").is_empty());
    assert!(read_ca_keys(root, "missing", "*").is_empty());
}
