//! The configuration page (`mode=show`): the merged configuration section by section, the
//! cached master info, phases, environments, classes, queries and the snippet files (pure;
//! the shell reads the cache file and the snippets). Passwords and tokens are never shown.

use super::html::{Text, date};
use crate::config::Config;
use crate::firmware::BoxInfo;
use crate::xml::Element;
use maud::{Markup, html};

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

fn attrs_table(el: Option<&Element>) -> Markup {
    html! {
        @match el.filter(|el| !el.attrs.is_empty()) {
            None => p class="undef" { "\u{2013} not set \u{2013}" },
            Some(el) => table class="attrs" {
                @for (k, v) in &el.attrs {
                    tr {
                        th { (Text(k)) }
                        td {
                            @if v.is_empty() { span class="undef" { "(empty)" } } @else { (Text(v)) }
                        }
                    }
                }
            },
        }
    }
}

/// The body of the configuration page.
pub fn render_body(cfg: &Config, cache: &CachedInfo, snippets: &[SnippetFile]) -> String {
    let tree = masked_tree(cfg);
    let sections = [
        "master",
        "fwstorage",
        "backup",
        "times",
        "status",
        "customcerts",
    ];
    html! {
        h1 { "Configuration" }
        p class="sources" {
            "Merged from "
            @for (i, s) in cfg.sources.iter().enumerate() {
                @if i > 0 { " and " }
                code { (Text(s)) }
            }
            "."
        }
        div class="cfg" {
            @for name in sections {
                section {
                    h2 { (name) }
                    (attrs_table(tree.child(name)))
                    @if name == "master" { (master_extra(cfg, cache)) }
                }
            }
            (phases_environments(cfg))
            (classes_queries(cfg))
        }
        (snippet_files(cfg, snippets))
        h2 { "The complete merged configuration" }
        details { summary { "XML" } pre class="xml" { (Text(&tree.to_pretty_document())) } }
    }
    .into_string()
}

/// What `master` applies to, and the cached master info.
fn master_extra(cfg: &Config, cache: &CachedInfo) -> Markup {
    let applies = &cfg.master.applies;
    let file = &cfg.master.cache;
    html! {
        @if !applies.is_empty() {
            p {
                "applies to: "
                @for (i, a) in applies.iter().enumerate() {
                    @if i > 0 { ", " }
                    (Text(&a.value)) @if a.env { " (environment)" }
                }
            }
        }
        h3 { "Cached master info" }
        @match cache {
            CachedInfo::None => p class="undef" { "no cache file " code { (Text(file)) } " yet" },
            CachedInfo::Unreadable(err) => p class="err" { code { (Text(file)) } ": " (Text(err)) },
            CachedInfo::Ok { info, mtime } => table class="attrs" {
                tr { th { "file" } td { code { (Text(file)) } ", " (date(*mtime)) } }
                tr { th { "device" } td { (Text(&info.label)) } }
                tr { th { "firmware" } td { (Text(&info.prot)) } }
                tr { th { "boot code" } td { (Text(&info.boot)) } }
                tr { th { "hardware" } td { (Text(&info.hw)) } }
            },
        }
    }
}

fn phases_environments(cfg: &Config) -> Markup {
    html! {
        section {
            h2 { "phases" }
            ol class="phases" { @for p in &cfg.phases { li { (Text(p)) } } }
        }
        section {
            h2 { "environments" }
            ul class="envs" {
                @for env in &cfg.environments {
                    li {
                        (Text(&env.id))
                        @if !env.implies.is_empty() {
                            " "
                            span class="implies" { "\u{21d2} " (Text(&env.implies.join(", "))) }
                        }
                    }
                }
            }
        }
    }
}

fn classes_queries(cfg: &Config) -> Markup {
    let applies = |qu: &crate::config::Query| {
        qu.applies
            .iter()
            .map(|a| format!("{}{}", a.value, if a.env { " (env)" } else { "" }))
            .collect::<Vec<_>>()
            .join(", ")
    };
    html! {
        section class="wide" {
            h2 { "classes" }
            table class="attrs" {
                @for c in &cfg.classes { tr { th { (Text(&c.id)) } td { (Text(&c.models.join(", "))) } } }
            }
        }
        section class="wide" {
            h2 { "queries" }
            table class="grid" {
                tr { th { "id" } th { "title" } th { "command" } th { "applies" } th { "shown" } }
                @for qu in &cfg.queries.list {
                    tr {
                        td { (Text(&qu.id)) }
                        td { (Text(qu.title.as_deref().unwrap_or(""))) }
                        td { code { (Text(qu.cmd.as_deref().unwrap_or(""))) } }
                        td { (Text(&applies(qu))) }
                        td {
                            @for (i, s) in qu.show.iter().enumerate() {
                                @if i > 0 { br; }
                                b { (Text(&s.title)) } ": " code { (Text(&s.expr)) }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn snippet_files(cfg: &Config, snippets: &[SnippetFile]) -> Markup {
    html! {
        h2 { "Snippet files in " code { (Text(&cfg.times.dir)) "/" } }
        @if snippets.is_empty() { p class="undef" { "none" } }
        @for s in snippets {
            details class="snippet" {
                summary { code { (Text(&s.name)) } " " small { (date(s.mtime)) } }
                @match &s.content {
                    Ok(c) => pre { (Text(c)) },
                    Err(err) => p class="err" { (Text(err)) },
                }
            }
        }
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
