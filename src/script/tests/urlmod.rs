//! `times/@httpsurlmod` and the HTTPS switch in detail.

use super::*;

#[test]
fn urlmod_follows_pcre_conventions() {
    assert_eq!(
        apply_urlmod("!mtls/!!i", "https://h/MTLS/update"),
        "https://h/update"
    );
    assert_eq!(
        apply_urlmod("#(h)ost#$1x#", "https://host/a"),
        "https://hx/a"
    );
    assert_eq!(
        apply_urlmod("!a(b!x!", "https://ab"),
        "https://ab",
        "bad pattern leaves the URL"
    );
    assert_eq!(apply_urlmod("!u!$!", "https://u"), "https://$");
}

// httpsurlmod and the HTTPS switch in detail (expectations checked against PHP 8.2's
// preg_replace).

const URLMOD_URL: &str = "https://127.0.0.1:444/mtls/update/update.php?polling=5&sn=%23m";

#[test]
fn urlmod_default_removes_mtls_case_insensitively() {
    // the shipped default, times/@httpsurlmod="!mtls/!!i"
    assert_eq!(
        apply_urlmod("!mtls/!!i", URLMOD_URL),
        "https://127.0.0.1:444/update/update.php?polling=5&sn=%23m"
    );
    assert_eq!(
        apply_urlmod("!mtls/!!i", "https://h/MTLS/update/update.php"),
        "https://h/update/update.php"
    );
    // without the flag the case matters
    assert_eq!(
        apply_urlmod("!mtls/!!", "https://h/MTLS/update/update.php"),
        "https://h/MTLS/update/update.php"
    );
}

#[test]
fn urlmod_backreferences_in_all_php_forms() {
    let spec = r"#^https://([^:/]+):(\d+)/#https://$1.example.com:${2}0/#";
    assert_eq!(
        apply_urlmod(spec, URLMOD_URL),
        "https://127.0.0.1.example.com:4440/mtls/update/update.php?polling=5&sn=%23m"
    );
    assert_eq!(
        apply_urlmod(
            r"!^(https)://([^/]+)/!\1://update.example.com/\2/!",
            URLMOD_URL
        ),
        "https://update.example.com/127.0.0.1:444/mtls/update/update.php?polling=5&sn=%23m"
    );
    // $0 is the whole match; a group that does not exist is empty, as in PHP
    assert_eq!(
        apply_urlmod("!update.php!$0x$9!", "a/update.php"),
        "a/update.phpx"
    );
}

#[test]
fn urlmod_literal_dollars_and_backslashes() {
    assert!(apply_urlmod("!polling=5!p=$x${y}!", URLMOD_URL).contains("p=$x${y}"));
    // \$1 and \\ are escapes: a literal "$1" and one backslash
    assert_eq!(apply_urlmod(r"!polling!\$1!", "polling=5"), "$1=5");
    assert_eq!(apply_urlmod(r"!polling!a\\b!", "polling=5"), r"a\b=5");
    // \\1: an escaped backslash, then a literal 1
    assert_eq!(apply_urlmod(r"!(polling)!\\1!", "polling=5"), r"\1=5");
    // a backslash before anything else stays
    assert_eq!(apply_urlmod(r"!polling!a\xb!", "polling=5"), r"a\xb=5");
}

#[test]
fn urlmod_replaces_every_occurrence_and_knows_pcre_flags() {
    assert_eq!(apply_urlmod("!/!_!", "a/b/c"), "a_b_c");
    // U: ungreedy
    assert_eq!(apply_urlmod("!a.*b!X!U", "a1b2b"), "X2b");
    assert_eq!(apply_urlmod("!a.*b!X!", "a1b2b"), "X");
    // A: anchored at the start
    assert_eq!(apply_urlmod("!b!X!A", "bab"), "Xab");
    // x: extended, blanks in the pattern ignored
    assert_eq!(apply_urlmod("!a b!X!x", "ab"), "X");
}

#[test]
fn urlmod_that_cannot_work_leaves_the_url_alone() {
    assert_eq!(apply_urlmod("", URLMOD_URL), URLMOD_URL);
    assert_eq!(apply_urlmod("!", URLMOD_URL), URLMOD_URL);
    // unbalanced group
    assert_eq!(apply_urlmod("!(mtls!x!", URLMOD_URL), URLMOD_URL);
    // a PCRE-only construct the regex crate cannot do (a back reference in the pattern; PHP
    // would replace "mm", this leaves the URLMOD_URL alone and logs why)
    assert_eq!(apply_urlmod(r"!(m)\1!x!", URLMOD_URL), URLMOD_URL);
    // the missing third part means no flags, the missing second an empty replacement
    assert_eq!(
        apply_urlmod("!mtls/", URLMOD_URL),
        URLMOD_URL.replace("mtls/", "")
    );
}

#[test]
fn switch_to_https_keeps_host_and_path() {
    assert_eq!(
        switch_to_https("http://h:8080/update/update.php?a=1", "444"),
        "https://h:444/update/update.php?a=1"
    );
    assert_eq!(
        switch_to_https("HTTP://h/update.php", ""),
        "https://h/update.php"
    );
}
