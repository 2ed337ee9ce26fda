//! The configuration page (`mode=show`): the merged configuration section by section, the
//! cached master info, phases, environments, classes, queries and the snippet files (pure;
//! the shell reads the cache file and the snippets). Passwords and tokens are never shown.

use super::html::{date, e};
use crate::config::Config;
use crate::firmware::BoxInfo;
use crate::xml::Element;
use std::fmt::Write;

/// Attributes whose values are secrets (element, attribute).
const SECRETS: [(&str, &str); 3] = [
    ("master", "password"),
    ("master", "passwordhash"),
    ("api", "token"),
];

const MASK: &str = "\u{2022}\u{2022}\u{2022}\u{2022}\u{2022}\u{2022}\u{2022}\u{2022}";

/// The merged tree with secrets replaced.
pub fn masked_tree(cfg: &Config) -> Element {
    let mut tree = cfg.tree.clone();
    for (el, attr) in SECRETS {
        for c in tree.children.iter_mut().filter(|c| c.name == el) {
            if c.attr(attr).is_some_and(|v| !v.is_empty()) {
                c.set_attr(attr, MASK);
            }
        }
    }
    tree
}

/// The cached master info as read from `master/@cache`.
pub enum CachedInfo {
    None,
    Unreadable(String),
    Ok { info: BoxInfo, mtime: i64 },
}

/// A snippet file of the scripts directory.
pub struct SnippetFile {
    pub name: String,
    pub mtime: i64,
    pub content: Result<String, String>,
}

fn attrs_table(h: &mut String, el: Option<&Element>) {
    let Some(el) = el.filter(|el| !el.attrs.is_empty()) else {
        h.push_str("<p class=\"undef\">\u{2013} not set \u{2013}</p>");
        return;
    };
    h.push_str("<table class=\"attrs\">");
    for (k, v) in &el.attrs {
        let _ = write!(
            h,
            "<tr><th>{}</th><td>{}</td></tr>",
            e(k),
            if v.is_empty() {
                "<span class=\"undef\">(empty)</span>".to_string()
            } else {
                e(v)
            }
        );
    }
    h.push_str("</table>");
}

/// The body of the configuration page.
pub fn render_body(cfg: &Config, cache: &CachedInfo, snippets: &[SnippetFile]) -> String {
    let tree = masked_tree(cfg);
    let mut h = String::with_capacity(16 * 1024);
    let _ = write!(
        h,
        "<h1>Configuration</h1><p class=\"sources\">Merged from {}.</p><div class=\"cfg\">",
        cfg.sources
            .iter()
            .map(|s| format!("<code>{}</code>", e(s)))
            .collect::<Vec<_>>()
            .join(" and ")
    );
    for name in [
        "master",
        "fwstorage",
        "backup",
        "times",
        "status",
        "customcerts",
    ] {
        let _ = write!(h, "<section><h2>{name}</h2>");
        attrs_table(&mut h, tree.child(name));
        if name == "master" {
            master_extra(&mut h, cfg, cache);
        }
        h.push_str("</section>");
    }
    phases_environments(&mut h, cfg);
    classes_queries(&mut h, cfg);
    snippet_files(&mut h, cfg, snippets);
    // everything
    let _ = write!(
        h,
        "<h2>The complete merged configuration</h2><details><summary>XML</summary><pre class=\"xml\">{}</pre></details>",
        e(&tree.to_pretty_document())
    );
    h
}

/// What `master` applies to, and the cached master info.
fn master_extra(h: &mut String, cfg: &Config, cache: &CachedInfo) {
    let applies: Vec<String> = cfg
        .master
        .applies
        .iter()
        .map(|a| {
            format!(
                "{}{}",
                e(&a.value),
                if a.env { " (environment)" } else { "" }
            )
        })
        .collect();
    if !applies.is_empty() {
        let _ = write!(h, "<p>applies to: {}</p>", applies.join(", "));
    }
    h.push_str("<h3>Cached master info</h3>");
    match cache {
        CachedInfo::None => {
            let _ = write!(
                h,
                "<p class=\"undef\">no cache file <code>{}</code> yet</p>",
                e(&cfg.master.cache)
            );
        }
        CachedInfo::Unreadable(err) => {
            let _ = write!(
                h,
                "<p class=\"err\"><code>{}</code>: {}</p>",
                e(&cfg.master.cache),
                e(err)
            );
        }
        CachedInfo::Ok { info, mtime } => {
            let _ = write!(
                h,
                "<table class=\"attrs\"><tr><th>file</th><td><code>{}</code>, {}</td></tr><tr><th>device</th><td>{}</td></tr><tr><th>firmware</th><td>{}</td></tr><tr><th>boot code</th><td>{}</td></tr><tr><th>hardware</th><td>{}</td></tr></table>",
                e(&cfg.master.cache),
                e(&date(*mtime)),
                e(&info.label),
                e(&info.prot),
                e(&info.boot),
                e(&info.hw)
            );
        }
    }
}

fn phases_environments(h: &mut String, cfg: &Config) {
    // phases
    h.push_str("<section><h2>phases</h2><ol class=\"phases\">");
    for p in &cfg.phases {
        let _ = write!(h, "<li>{}</li>", e(p));
    }
    h.push_str("</ol></section>");
    // environments
    h.push_str("<section><h2>environments</h2><ul class=\"envs\">");
    for env in &cfg.environments {
        let _ = write!(h, "<li>{}", e(&env.id));
        if !env.implies.is_empty() {
            let _ = write!(
                h,
                " <span class=\"implies\">\u{21d2} {}</span>",
                env.implies
                    .iter()
                    .map(|i| e(i))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        h.push_str("</li>");
    }
    h.push_str("</ul></section>");
}

fn classes_queries(h: &mut String, cfg: &Config) {
    // classes
    h.push_str("<section class=\"wide\"><h2>classes</h2><table class=\"attrs\">");
    for c in &cfg.classes {
        let _ = write!(
            h,
            "<tr><th>{}</th><td>{}</td></tr>",
            e(&c.id),
            e(&c.models.join(", "))
        );
    }
    h.push_str("</table></section>");
    // queries
    h.push_str("<section class=\"wide\"><h2>queries</h2><table class=\"grid\"><tr><th>id</th><th>title</th><th>command</th><th>applies</th><th>shown</th></tr>");
    for qu in &cfg.queries.list {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
            e(&qu.id),
            e(qu.title.as_deref().unwrap_or("")),
            e(qu.cmd.as_deref().unwrap_or("")),
            e(&qu
                .applies
                .iter()
                .map(|a| format!("{}{}", a.value, if a.env { " (env)" } else { "" }))
                .collect::<Vec<_>>()
                .join(", ")),
            qu.show
                .iter()
                .map(|s| format!("<b>{}</b>: <code>{}</code>", e(&s.title), e(&s.expr)))
                .collect::<Vec<_>>()
                .join("<br>")
        );
    }
    h.push_str("</table></section></div>");
}

fn snippet_files(h: &mut String, cfg: &Config, snippets: &[SnippetFile]) {
    // snippets
    let _ = write!(
        h,
        "<h2>Snippet files in <code>{}/</code></h2>",
        e(&cfg.times.dir)
    );
    if snippets.is_empty() {
        h.push_str("<p class=\"undef\">none</p>");
    }
    for s in snippets {
        let _ = write!(
            h,
            "<details class=\"snippet\"><summary><code>{}</code> <small>{}</small></summary>",
            e(&s.name),
            e(&date(s.mtime))
        );
        match &s.content {
            Ok(c) => {
                let _ = write!(h, "<pre>{}</pre>", e(c));
            }
            Err(err) => {
                let _ = write!(h, "<p class=\"err\">{}</p>", e(err));
            }
        }
        h.push_str("</details>");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(user: &str) -> Config {
        Config::from_user_xml(user).expect("config")
    }

    #[test]
    fn shows_sections_without_secrets() {
        let cfg = config(
            r#"<config><master info="" password="pw-Xq93&lt;z" passwordhash="sha256:abcdef0123"/><api token="tok-77Zq"/><environments><environment id="lab&lt;1&gt;"><implies>default</implies></environment></environments></config>"#,
        );
        let snippets = [SnippetFile {
            name: "scripts/update-all-default.txt".into(),
            mtime: 1,
            content: Ok("config change X /a <b>\n".into()),
        }];
        let info = CachedInfo::Ok {
            info: BoxInfo {
                label: "13r1 IP811".into(),
                prot: "130178".into(),
                boot: "130112".into(),
                hw: "104-00".into(),
            },
            mtime: 5,
        };
        let html = render_body(&cfg, &info, &snippets);
        for secret in ["pw-Xq93", "abcdef0123", "tok-77Zq"] {
            assert!(!html.contains(secret), "{secret} shown");
        }
        assert!(html.contains("lab&lt;1&gt;"));
        assert!(html.contains("\u{21d2} default"));
        assert!(html.contains("config change X /a &lt;b&gt;"));
        assert!(html.contains("130178"));
        assert!(html.contains("<h2>classes</h2>"));
        assert!(html.contains("ip232"));
    }
}
