//! Candidate snippet names and environment lists.

use super::*;

#[test]
fn candidate_order_phase_class_environment() {
    let c = config(
        r#"<config><phases><phase id="staging" seq="1"/></phases><environments><environment id="a"/><environment id="b"><implies>a</implies></environment></environments></config>"#,
    );
    let names = candidates(&c, &Args::parse("type=IP811&sn=00-90-33-11-22-33&env=b"));
    // PHP nests phase, class, environment; "all" first where several are defined; the serial
    // (lower case, dashes as underscores) is the first real environment.
    let classes = ["all", "gw", "brigw", "pbx", "ip811"];
    let envs = ["all", "00_90_33_11_22_33", "b", "a"];
    let mut expected = Vec::new();
    for p in ["all", "staging"] {
        for c in classes {
            for e in envs {
                expected.push(format!("{p}-{c}-{e}.txt"));
            }
        }
    }
    assert_eq!(names, expected);
}

#[test]
fn environment_lists_combine_like_php_array_union() {
    let c = config(
        r#"<config><environments><environment id="i"/><environment id="b"><implies>i</implies></environment><environment id="h"/></environments></config>"#,
    );
    let envs = |q: &str| environments(&c, &Args::parse(q));
    assert_eq!(envs("env=b"), Ok(vec!["b".to_string(), "i".to_string()]));
    // the second list only adds beyond the first list's length
    assert_eq!(envs("env=b,h"), Ok(vec!["b".to_string(), "i".to_string()]));
    assert_eq!(envs("env=h,b"), Ok(vec!["h".to_string(), "i".to_string()]));
    assert_eq!(envs(""), Ok(vec!["default".to_string()]));
    assert_eq!(envs("env=b,x"), Err("x".to_string()));
}

#[test]
fn a_name_spelled_twice_is_a_candidate_once_at_its_first_place() {
    // environment "B" is "b" in lower case: "all-all-b.txt" is spelled twice
    let c = config(
        r#"<config><phases><phase id="x" seq="1"/></phases><environments><environment id="b"><implies>B</implies></environment><environment id="B"/></environments></config>"#,
    );
    let names = candidates(&c, &Args::parse("type=IP232&env=b&phase=x"));
    let count = |n: &str| names.iter().filter(|x| x.as_str() == n).count();
    assert_eq!(count("all-all-b.txt"), 1, "{names:?}");
    assert_eq!(count("x-ip232-b.txt"), 1, "{names:?}");
    assert_eq!(names.first().map(String::as_str), Some("all-all-all.txt"));
    assert_eq!(names.get(1).map(String::as_str), Some("all-all-b.txt"));
    let mut unique = names.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), names.len(), "{names:?}");
}

#[test]
fn names_with_dashes_spelling_the_same_name_give_one_candidate() {
    // class "all" with environment "b-c", and class "all-b" (a device type) with environment
    // "c", both spell "x-all-b-c.txt"
    let c = config(r#"<config><environments><environment id="x"/></environments></config>"#);
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let (classes, envs) = (s(&["all-b"]), s(&["b-c", "c"]));
    let cands = candidate_names(&c, None, &classes, "x", &envs);
    let names: Vec<&str> = cands.iter().map(|c| c.name).collect();
    let count = |n: &str| names.iter().filter(|x| **x == n).count();
    assert_eq!(count("x-all-b-c.txt"), 1, "{names:?}");
    let at = |n: &str| names.iter().position(|x| *x == n);
    assert_eq!(at("x-all-b-c.txt"), Some(1), "{names:?}");
    assert_eq!(at("x-all-b-b-c.txt"), Some(4), "{names:?}");
    assert_eq!(names.len(), 5, "{names:?}");
    assert_eq!(at("x-all-b-all.txt"), Some(3), "{names:?}");
    let mut unique = names.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), names.len(), "{names:?}");
    let paths: Vec<&str> = cands.iter().map(|c| c.path).collect();
    assert_eq!(paths.get(1), Some(&"scripts/x-all-b-c.txt"), "{paths:?}");
}
