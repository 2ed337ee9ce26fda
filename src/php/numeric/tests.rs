use super::*;
use proptest::prelude::*;

#[test]
fn loose_comparison_follows_php8() {
    use Value::*;
    assert!(loose_eq(&Str("0".into()), &Int(0)));
    assert!(loose_eq(&Str("5".into()), &Str("5.0".into())));
    assert!(!loose_eq(&Str("abc".into()), &Int(0)));
    assert!(loose_eq(&Null, &Int(0)));
    assert!(!loose_eq(&Null, &Str("0".into())));
    assert!(loose_eq(&Null, &Str("".into())));
    assert!(!loose_eq(&Str("update".into()), &Null));
}

#[test]
fn intval_reads_leading_digits() {
    assert_eq!(intval("  42abc"), 42);
    assert_eq!(intval("-7"), -7);
    assert_eq!(intval("x1"), 0);
    assert_eq!(intval(""), 0);
    assert_eq!(intval("99999999999999999999999"), i64::MAX);
}

#[test]
fn numeric_strings() {
    assert!(is_numeric("131000"));
    assert!(is_numeric(" 1.5e3 "));
    assert!(!is_numeric("13r1"));
    assert!(!is_numeric(""));
    assert!(!is_numeric("."));
}

#[test]
fn intval_reads_numeric_prefixes_like_php8() {
    assert_eq!(intval("1e2"), 100);
    assert_eq!(intval("1e3"), 1000);
    assert_eq!(intval(" 12abc"), 12);
    assert_eq!(intval("\t\n 7"), 7);
    assert_eq!(intval("abc"), 0);
    assert_eq!(intval("1.9"), 1);
    assert_eq!(intval("-1.9"), -1);
    assert_eq!(intval(".5"), 0);
    assert_eq!(intval("+5"), 5);
    assert_eq!(intval("- 5"), 0);
    assert_eq!(intval("1e"), 1);
    assert_eq!(intval("1e+"), 1);
    assert_eq!(intval("2E-1x"), 0);
    assert_eq!(intval("1.5e3 sec"), 1500);
    assert_eq!(intval("0x1A"), 0);
    assert_eq!(intval("3600 "), 3600);
    assert_eq!(intval("1e30"), i64::MAX);
    assert_eq!(intval("-1e30"), i64::MIN);
    assert_eq!(intval("1e999"), 0, "PHP makes an infinite float 0");
    assert_eq!(intval("-9223372036854775808"), i64::MIN);
    assert_eq!(intval("9223372036854775807"), i64::MAX);
    assert_eq!(intval("-99999999999999999999"), i64::MIN);
}

#[test]
fn is_numeric_matches_php8() {
    for yes in [
        "1", " 1", "1 ", " 1\n", "1.", ".5", "+.5e-3", "-0", "1e5", "1E+5", "007",
    ] {
        assert!(is_numeric(yes), "{yes:?}");
    }
    for no in [
        "", " ", "1e", "1e+", "- 1", "1 1", "0x1A", "inf", "NaN", "1.2.3", ".", "+", "e5",
    ] {
        assert!(!is_numeric(no), "{no:?}");
    }
}

#[test]
fn loose_string_comparison_follows_php8() {
    assert!(loose_str_eq("1e1", "10"));
    assert!(loose_str_eq("1.0", "1"));
    assert!(loose_str_eq(" 1", "1"));
    assert!(loose_str_eq("1 ", "1"));
    assert!(loose_str_eq("01", "1"));
    assert!(loose_str_eq("abc", "abc"));
    assert!(!loose_str_eq("abc", "ABC"));
    assert!(!loose_str_eq("1a", "1"));
    assert!(!loose_str_eq("", "0"));
    assert!(!loose_str_eq("9007199254740993", "9007199254740992"));
    // integers beyond 64 bits on the same side compare as strings
    assert!(!loose_str_eq(
        "99999999999999999999",
        "99999999999999999998"
    ));
    assert!(loose_str_eq(
        "99999999999999999999",
        "99999999999999999999.0"
    ));
    assert!(loose_str_eq("99999999999999999999", "99999999999999999999"));
    assert!(!loose_str_eq("9223372036854775807", "9223372036854775808"));
    assert!(loose_str_eq("1e1000", "1e1000"));
    assert!(!loose_str_eq("1e1000", "2e1000"));
    assert!(loose_eq(&Value::Int(100), &Value::Str("1e2".into())));
    assert!(loose_eq(&Value::Int(1), &Value::Str(" 1 ".into())));
    assert!(!loose_eq(&Value::Int(1), &Value::Str("1x".into())));
}

proptest! {
    #[test]
    fn intval_never_panics_and_agrees_with_integers(s in "\\PC{0,30}", n in any::<i64>()) {
        let _ = intval(&s);
        let _ = is_numeric(&s);
        prop_assert_eq!(intval(&n.to_string()), n);
        prop_assert_eq!(intval(&format!(" {n}xyz")), n);
        let padded = format!(" {n} ");
        prop_assert!(is_numeric(&padded), "{}", padded);
    }

    #[test]
    fn loose_str_eq_is_symmetric_and_reflexive(a in "[ 0-9.eE+-]{0,8}", b in "[ 0-9.eE+-]{0,8}") {
        prop_assert_eq!(loose_str_eq(&a, &b), loose_str_eq(&b, &a));
        prop_assert!(loose_str_eq(&a, &a));
    }
}
