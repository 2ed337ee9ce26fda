//! Property tests of PHP's configuration merge: any user tree merges into the shipped defaults
//! without a panic, the result is a well-formed document that reads back, and an empty user
//! configuration changes nothing.

use super::merge::merge;
use crate::xml::Element;
use proptest::prelude::*;

const NAMES: [&str; 12] = [
    "master",
    "status",
    "phases",
    "phase",
    "environments",
    "environment",
    "times",
    "queries",
    "query",
    "cmd",
    "implies",
    "x",
];
const ATTRS: [&str; 5] = ["id", "seq", "interval", "info", "a"];
const VALUES: [&str; 9] = [
    "1", "1.0", " 1", "1e1", "abc", "", "update", "<&\"'>", "\u{1}",
];

fn defaults() -> Element {
    Element::parse_str(crate::config::BUILTIN_DEFAULTS).expect("defaults")
}

fn leaf() -> impl Strategy<Value = Element> {
    (
        0..NAMES.len(),
        proptest::collection::vec((0..ATTRS.len(), 0..VALUES.len()), 0..3),
        0..VALUES.len(),
    )
        .prop_map(|(n, attrs, text)| {
            let mut e = Element::new(NAMES[n]);
            for (a, v) in attrs {
                e.set_attr(ATTRS[a], VALUES[v]);
            }
            e.text = VALUES[text].to_string();
            e
        })
}

fn tree() -> impl Strategy<Value = Element> {
    leaf().prop_recursive(3, 24, 4, |inner| {
        (leaf(), proptest::collection::vec(inner, 0..4)).prop_map(|(mut e, children)| {
            e.text.clear();
            e.children = children.into();
            e
        })
    })
}

proptest! {
    #[test]
    fn any_user_tree_merges_into_a_well_formed_document(children in proptest::collection::vec(tree(), 0..5)) {
        let mut user = Element::new("config");
        user.children = children.into();
        let mut left = defaults();
        if merge(&mut left, &user, 0, "user-config.xml").is_ok() {
            let doc = left.to_document();
            prop_assert!(Element::parse_str(&doc).is_ok(), "{}", doc);
        }
    }
}

#[test]
fn an_empty_user_configuration_changes_nothing() {
    let mut once = defaults();
    merge(&mut once, &Element::new("config"), 0, "user-config.xml").expect("merge");
    let mut twice = once.clone();
    merge(&mut twice, &Element::new("config"), 0, "user-config.xml").expect("merge");
    assert_eq!(once, twice);
    assert_eq!(once, defaults());
}
