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
