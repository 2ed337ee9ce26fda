//! PHP's `mergeConfigs`: the user's tree merged into the defaults (rules in the module
//! documentation of [`crate::config`]), and the `seq` re-sorting after it.

use super::{ConfigError, Source};
use crate::php;
use crate::xml::{Element, XmlError};
use compact_str::CompactString;

pub(super) fn parse_source(src: &Source) -> Result<Element, ConfigError> {
    Element::parse(&src.bytes).map_err(|e: XmlError| {
        ConfigError::new(
            &src.name,
            "document",
            format!("cannot parse {}: {}", src.name, e),
        )
    })
}

/// How PHP reaches the left element a user element merges into. SimpleXML gives a different
/// kind of object for each path, and that decides whether the text is copied: PHP copies the
/// text when "both have no children", but for a single existing tag reached by name it counts
/// the *siblings* of that name (at least one), so such a tag keeps its own text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    /// A tag just added, or the tag with the same `id`: the text is copied when both are leaves.
    Own,
    /// The single existing tag of that name: attributes and children merge, the text stays.
    SingleByName,
}

/// Merges the user's tree `right` into `left` (the defaults), as PHP's `mergeConfigs`.
pub(super) fn merge(
    left: &mut Element,
    right: &Element,
    level: usize,
    user_file: &str,
) -> Result<(), ConfigError> {
    merge_into(left, right, Target::Own, user_file)?;
    if level == 0 {
        for level1 in &mut left.children {
            sort_by_seq(level1);
        }
    }
    Ok(())
}

fn merge_into(
    left: &mut Element,
    right: &Element,
    target: Target,
    user_file: &str,
) -> Result<(), ConfigError> {
    if target == Target::Own && right.children.is_empty() && left.children.is_empty() {
        left.text = right.text.clone();
    }
    for (k, v) in &right.attrs {
        left.set_attr(k, v.clone());
    }
    for body in &right.children {
        let (idx, target) = pick_target(left, right, body, user_file)?;
        merge_into(&mut left.children[idx], body, target, user_file)?;
    }
    Ok(())
}

/// The index in `left.children` that the user's child `body` merges into (added if needed).
fn pick_target(
    left: &mut Element,
    right: &Element,
    body: &Element,
    user_file: &str,
) -> Result<(usize, Target), ConfigError> {
    let tag = body.name.as_str();
    let Some(first) = left.children.iter().position(|c| c.name == tag) else {
        return Ok((add_child(left, tag), Target::Own));
    };
    if left.children[first].attr("id").is_some() {
        let Some(id) = body.attr("id") else {
            return Err(ConfigError::new(
                user_file,
                format!("<{tag}>"),
                format!("must have 'id' attribute in '{tag}' tag in user-config.xml"),
            ));
        };
        // PHP compares the ids with `==`: numeric ids compare as numbers
        let same = left
            .children
            .iter()
            .position(|c| c.name == tag && php::loose_str_eq(c.attr("id").unwrap_or(""), id));
        return Ok((same.unwrap_or_else(|| add_child(left, tag)), Target::Own));
    }
    if left.children_named(tag).count() > 1 || right.children_named(tag).count() > 1 {
        Ok((add_child(left, tag), Target::Own))
    } else {
        Ok((first, Target::SingleByName))
    }
}

fn add_child(left: &mut Element, tag: &str) -> usize {
    left.children.push(Element::new(tag));
    left.children.len() - 1
}

/// Re-sorts the children that carry `seq` (PHP keys them by `(int)seq`: equal numbers keep only
/// the last one) and appends them after the others.
fn sort_by_seq(el: &mut Element) {
    let mut names: Vec<CompactString> = Vec::new();
    for c in &el.children {
        if c.attr("seq").is_some() && !names.contains(&c.name) {
            names.push(c.name.clone());
        }
    }
    for name in names {
        let mut keyed: Vec<(i64, Element)> = Vec::new();
        for c in el.children.iter().filter(|c| c.name == name) {
            let seq = php::intval(c.attr("seq").unwrap_or(""));
            match keyed.iter_mut().find(|(k, _)| *k == seq) {
                Some(slot) => {
                    tracing::warn!(
                        "config: two <{}> elements with seq={}; like PHP, only the later one is used",
                        name,
                        seq
                    );
                    slot.1 = c.clone();
                }
                None => keyed.push((seq, c.clone())),
            }
        }
        el.children.retain(|c| c.name != name);
        keyed.sort_by_key(|(k, _)| *k);
        el.children.extend(keyed.into_iter().map(|(_, e)| e));
    }
}
