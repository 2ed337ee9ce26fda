//! PHP's `mergeConfigs`: the user's tree merged into the defaults (rules in the module
//! documentation of [`crate::config`]), and the `seq` re-sorting after it.

use super::{ConfigError, Source};
use crate::php;
use crate::xml::{Element, XmlError};

pub(super) fn parse_source(src: &Source) -> Result<Element, ConfigError> {
    Element::parse(&src.bytes).map_err(|e: XmlError| {
        ConfigError::new(
            &src.name,
            "document",
            format!("cannot parse {}: {}", src.name, e),
        )
    })
}

pub(super) fn merge(
    left: &mut Element,
    right: &Element,
    level: usize,
    user_file: &str,
) -> Result<(), ConfigError> {
    if right.children.is_empty() && left.children.is_empty() {
        left.text = right.text.clone();
    }
    for (k, v) in &right.attrs {
        left.set_attr(k, v.clone());
    }
    for body in &right.children {
        let tag = body.name.as_str();
        let left_count = left.children_named(tag).count();
        let idx = if left_count == 0 {
            left.children.push(Element::new(tag));
            left.children.len() - 1
        } else {
            let first = left
                .children
                .iter()
                .position(|c| c.name == tag)
                .unwrap_or_default();
            if left.children[first].attr("id").is_some() {
                let Some(id) = body.attr("id") else {
                    return Err(ConfigError::new(
                        user_file,
                        format!("<{tag}>"),
                        format!("must have 'id' attribute in '{tag}' tag in user-config.xml"),
                    ));
                };
                match left
                    .children
                    .iter()
                    .position(|c| c.name == tag && c.attr("id").unwrap_or("") == id)
                {
                    Some(i) => i,
                    None => {
                        left.children.push(Element::new(tag));
                        left.children.len() - 1
                    }
                }
            } else if left_count > 1 || right.children_named(tag).count() > 1 {
                left.children.push(Element::new(tag));
                left.children.len() - 1
            } else {
                first
            }
        };
        merge(&mut left.children[idx], body, level + 1, user_file)?;
    }
    if level == 0 {
        for level1 in &mut left.children {
            sort_by_seq(level1);
        }
    }
    Ok(())
}

/// Re-sorts the children that carry `seq` (PHP keys them by `(int)seq`: equal numbers keep only
/// the last one) and appends them after the others.
fn sort_by_seq(el: &mut Element) {
    let mut names: Vec<String> = Vec::new();
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
