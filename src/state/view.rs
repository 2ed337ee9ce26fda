//! What the admin pages and the JSON API show of one device, taken from its state file once
//! (pure): [`DeviceView::from_state`], the values of the configured `queries/query/show`
//! XPath expressions ([`ShowGroup`], evaluated with sxd-xpath). The filter is
//! `admin::query`.
//!
//! The status page and the device list read compact views from the device index
//! (`state::index`), which computes them here when a state is written or first read; the
//! detail of one device (message log, snippets) is computed from its state file on demand.

use crate::config::Config;
use crate::php::intval;
use crate::state::{DeviceState, Loaded};
use crate::xml::Element;
use serde::Serialize;

/// One delivered snippet (`<config filename delivered version>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Snippet {
    pub file: String,
    pub delivered: i64,
    pub version: i64,
}

/// One message log entry; an empty text starts the log of a poll.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Msg {
    pub time: i64,
    pub text: String,
}

/// The value of one `show` expression for a device, or why there is none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Cell {
    Value(String),
    Error(String),
}

/// A query the device answered, with the values of its `show` columns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QueryResult {
    pub seen: i64,
    pub cells: Vec<Cell>,
}

/// One `show` column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShowColumn {
    pub title: String,
    pub expr: String,
}

/// The `show` columns of one query (a column group of the status table).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShowGroup {
    pub id: String,
    pub title: String,
    pub columns: Vec<ShowColumn>,
}

/// The queries that have `show` tags (a `show` reading `none` does not count, as in PHP).
pub fn show_groups(cfg: &Config) -> Vec<ShowGroup> {
    cfg.queries
        .list
        .iter()
        .filter_map(|q| {
            let columns: Vec<ShowColumn> = q
                .show
                .iter()
                .filter(|s| !s.expr.is_empty() && s.expr != "none")
                .map(|s| ShowColumn {
                    title: s.title.clone(),
                    expr: s.expr.clone(),
                })
                .collect();
            (!columns.is_empty()).then(|| ShowGroup {
                id: q.id.clone(),
                title: q
                    .title
                    .clone()
                    .filter(|t| !t.is_empty())
                    .unwrap_or_else(|| q.id.clone()),
                columns,
            })
        })
        .collect()
}

/// Everything the pages show of one device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeviceView {
    /// The state file's name without `.xml` (what the actions address).
    pub key: String,
    /// Set when the file is no usable device state (unreadable, not XML, foreign XML).
    pub problem: Option<String>,
    pub sn: String,
    pub hwid: String,
    #[serde(rename = "type")]
    pub device_type: String,
    /// The device name from the `admin` query.
    pub name: String,
    /// The address the device reported (`ip=#i`).
    pub realip: String,
    /// The address the request came from.
    pub ip: String,
    /// Whether it came through a reverse proxy.
    pub via_proxy: bool,
    pub proxy: String,
    pub phase: String,
    pub classes: String,
    pub environments: String,
    pub seen: i64,
    pub firmware: String,
    pub firmware_requested: String,
    pub bootcode: String,
    pub bootcode_requested: String,
    pub certstat: Option<String>,
    /// The device reported a certificate upload error (`request-error`).
    pub request_error: bool,
    /// When the last backup was stored.
    pub backup: Option<i64>,
    /// The message log; empty in the views of the device index (see `log_entries`).
    pub msgs: Vec<Msg>,
    /// The delivered snippets; empty in the views of the device index (see `snippet_count`).
    pub snippets: Vec<Snippet>,
    /// Message log entries (not counting the empty ones that start each poll's block).
    pub log_entries: usize,
    /// Polls in the message log (empty entries, at least 1 when the log is not empty).
    pub log_polls: usize,
    /// Delivered snippets.
    pub snippet_count: usize,
    /// Per [`ShowGroup`] (same order): the query's result, `None` when the device has none.
    pub queries: Vec<Option<QueryResult>>,
}

impl DeviceView {
    pub(crate) fn empty(key: &str) -> DeviceView {
        DeviceView {
            key: key.to_string(),
            problem: None,
            sn: key.to_string(),
            hwid: String::new(),
            device_type: String::new(),
            name: String::new(),
            realip: String::new(),
            ip: String::new(),
            via_proxy: false,
            proxy: String::new(),
            phase: String::new(),
            classes: String::new(),
            environments: String::new(),
            seen: 0,
            firmware: String::new(),
            firmware_requested: String::new(),
            bootcode: String::new(),
            bootcode_requested: String::new(),
            certstat: None,
            request_error: false,
            backup: None,
            msgs: Vec::new(),
            snippets: Vec::new(),
            log_entries: 0,
            log_polls: 0,
            snippet_count: 0,
            queries: Vec::new(),
        }
    }

    /// The view of the state file `key` (its name without `.xml`).
    pub fn from_state(key: &str, loaded: &Loaded, groups: &[ShowGroup]) -> DeviceView {
        match loaded {
            Loaded::Missing => {
                let mut v = DeviceView::empty(key);
                v.problem = Some("no state file".to_string());
                v
            }
            Loaded::Corrupt { error, .. } => {
                let mut v = DeviceView::empty(key);
                v.problem = Some(format!("cannot read state file {key}.xml: {error}"));
                v
            }
            Loaded::Ok(el) => Self::from_element(key, el, &mut XPaths::new(groups)),
        }
    }

    pub(crate) fn from_element(key: &str, ds: &DeviceState, xpaths: &mut XPaths<'_>) -> DeviceView {
        let mut v = DeviceView::summary(key, ds, xpaths);
        if v.problem.is_some() {
            return v;
        }
        v.msgs = super::msgs(ds)
            .map(|(time, text)| Msg { time, text })
            .collect();
        v.snippets = ds
            .root
            .children_named("config")
            .map(|c| Snippet {
                file: c.attr("filename").unwrap_or_default().to_string(),
                delivered: intval(c.attr("delivered").unwrap_or("0")),
                version: intval(c.attr("version").unwrap_or("0")),
            })
            .collect();
        v
    }

    /// [`DeviceView::from_element`] without the message log and the snippet list (their
    /// counts only): what the device index keeps.
    pub(crate) fn summary(key: &str, ds: &DeviceState, xpaths: &mut XPaths<'_>) -> DeviceView {
        let s = &ds.root;
        let mut v = DeviceView::empty(key);
        let Some(d) = s.child("device").filter(|_| s.name == "state") else {
            v.problem = Some(format!(
                "{key}.xml is not a device state (root element <{}>)",
                s.name
            ));
            return v;
        };
        let a = |e: Option<&Element>, n: &str| {
            e.and_then(|e| e.attr(n)).unwrap_or_default().to_string()
        };
        let dev = Some(d);
        v.sn = d.attr("sn").unwrap_or(key).to_string();
        v.hwid = a(dev, "hwid");
        v.device_type = a(dev, "type");
        v.realip = a(dev, "realip");
        v.ip = a(dev, "ip");
        v.proxy = a(dev, "proxy");
        v.via_proxy = (v.realip != v.ip) || d.attr("rp") == Some("true");
        v.phase = a(dev, "phase");
        v.classes = a(dev, "classes");
        v.environments = a(dev, "environments");
        v.seen = intval(s.attr("seen").unwrap_or("0"));
        let fw = s.child("firmware");
        let boot = s.child("bootcode");
        v.firmware = a(fw, "build");
        v.firmware_requested = a(fw, "requested");
        v.bootcode = a(boot, "build");
        v.bootcode_requested = a(boot, "requested");
        if v.bootcode_requested.is_empty() {
            // script/upgrade.rs writes it onto the root as `BUILDbootcode`, as PHP does
            v.bootcode_requested = s
                .attr("requested")
                .and_then(|r| r.strip_suffix("bootcode"))
                .unwrap_or_default()
                .to_string();
        }
        v.certstat = d.attr("certstat").map(str::to_string);
        v.request_error = s
            .path(&["queries", "certificates", "info", "request-error"])
            .is_some();
        v.backup = d.attr("backup").map(intval);
        v.name = s
            .path(&["queries", "admin", "info"])
            .and_then(|i| i.attr("name"))
            .unwrap_or_default()
            .to_string();
        (v.log_entries, v.log_polls) = log_counts(ds);
        v.snippet_count = s.children_named("config").count();
        v.queries = xpaths.evaluate(ds);
        v
    }

    /// Whether the device counts as missing at `now` (`status/@missing` seconds unseen).
    pub fn is_missing(&self, missing_after: i64, now: i64) -> bool {
        missing_after > 0 && self.seen < now - missing_after
    }
}

/// The message log's entries (not counting the empty ones that start each poll's block)
/// and polls (those empty ones, at least 1 when the log is not empty).
pub(crate) fn log_counts(s: &DeviceState) -> (usize, usize) {
    let (mut entries, mut rulers, mut msgs) = (0, 0, 0);
    for ruler in super::msg_rulers(s) {
        msgs += 1;
        if ruler {
            rulers += 1;
        } else {
            entries += 1;
        }
    }
    (entries, if msgs == 0 { 0 } else { rulers.max(1) })
}

/// When the device last answered each group's query (`None`: never), without evaluating.
pub fn query_seens(state: &Element, groups: &[ShowGroup]) -> Vec<Option<i64>> {
    let queries = state.child("queries");
    groups
        .iter()
        .map(|g| {
            queries
                .and_then(|q| q.child(&g.id))
                .map(|q| intval(q.attr("seen").unwrap_or("0")))
        })
        .collect()
}

/// The compiled `show` expressions of one rendering pass (compiled on first use).
pub(crate) struct XPaths<'a> {
    groups: &'a [ShowGroup],
    compiled: Option<Vec<Vec<Result<sxd_xpath::XPath, String>>>>,
}

impl<'a> XPaths<'a> {
    pub(crate) fn new(groups: &'a [ShowGroup]) -> Self {
        XPaths {
            groups,
            compiled: None,
        }
    }

    fn evaluate(&mut self, state: &DeviceState) -> Vec<Option<QueryResult>> {
        if self.groups.is_empty() {
            return Vec::new();
        }
        let groups = self.groups;
        let compiled = self.compiled.get_or_insert_with(|| {
            let factory = sxd_xpath::Factory::new();
            groups
                .iter()
                .map(|g| {
                    g.columns
                        .iter()
                        .map(|c| compile(&factory, &c.expr))
                        .collect()
                })
                .collect()
        });
        let answered = query_seens(&state.root, groups);
        if answered.iter().all(Option::is_none) {
            return vec![None; groups.len()];
        }
        let package = to_sxd(state);
        let doc = package.as_document();
        let context = sxd_xpath::Context::new();
        groups
            .iter()
            .zip(compiled.iter())
            .zip(answered)
            .map(|((g, exprs), seen)| {
                let seen = seen?;
                let cells = g
                    .columns
                    .iter()
                    .zip(exprs)
                    .map(|(col, x)| match x {
                        Ok(xp) => run(xp, &context, doc.root(), &col.expr),
                        Err(e) => Cell::Error(e.clone()),
                    })
                    .collect();
                Some(QueryResult { seen, cells })
            })
            .collect()
    }
}

fn compile(factory: &sxd_xpath::Factory, expr: &str) -> Result<sxd_xpath::XPath, String> {
    let built = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| factory.build(expr)));
    match built {
        Ok(Ok(Some(x))) => Ok(x),
        Ok(Ok(None)) => Err(format!("invalid XPath expression: {expr} (empty)")),
        Ok(Err(e)) => Err(format!("invalid XPath expression: {expr} ({e})")),
        Err(_) => Err(format!("invalid XPath expression: {expr}")),
    }
}

fn run<'d>(
    xp: &sxd_xpath::XPath,
    context: &sxd_xpath::Context<'d>,
    root: sxd_document::dom::Root<'d>,
    expr: &str,
) -> Cell {
    let result =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| xp.evaluate(context, root)));
    match result {
        Ok(Ok(v)) => Cell::Value(value_text(&v)),
        Ok(Err(e)) => Cell::Error(format!("cannot evaluate XPath expression: {expr} ({e})")),
        Err(_) => Cell::Error(format!("cannot evaluate XPath expression: {expr}")),
    }
}

/// An XPath result as text, as PHP printed it: node sets as their values joined with `, `,
/// booleans as `1`/empty, numbers without a trailing `.0`.
pub fn value_text(v: &sxd_xpath::Value<'_>) -> String {
    match v {
        sxd_xpath::Value::Nodeset(ns) => ns
            .document_order()
            .iter()
            .map(|n| n.string_value())
            .collect::<Vec<_>>()
            .join(", "),
        sxd_xpath::Value::String(s) => s.clone(),
        sxd_xpath::Value::Boolean(b) => if *b { "1" } else { "" }.to_string(),
        sxd_xpath::Value::Number(n) => {
            if n.is_nan() {
                "NAN".to_string()
            } else if n.is_infinite() {
                if *n > 0.0 { "INF" } else { "-INF" }.to_string()
            } else if n.fract() == 0.0 && n.abs() < 1e15 {
                format!("{}", *n as i64)
            } else {
                format!("{n}")
            }
        }
    }
}

/// The state as an sxd document for XPath (its message log too).
fn to_sxd(state: &DeviceState) -> sxd_document::Package {
    let package = sxd_document::Package::new();
    {
        let doc = package.as_document();
        let root = doc.create_element(state.root.name.as_str());
        fill(&doc, root, &state.expanded());
        doc.root().append_child(root);
    }
    package
}

fn fill<'d>(
    doc: &sxd_document::dom::Document<'d>,
    target: sxd_document::dom::Element<'d>,
    el: &Element,
) {
    for (k, v) in &el.attrs {
        target.set_attribute_value(k.as_str(), v.as_str());
    }
    if !el.text.is_empty() {
        target.append_child(doc.create_text(&el.text));
    }
    for c in &el.children {
        let child = doc.create_element(c.name.as_str());
        fill(doc, child, c);
        target.append_child(child);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    const STATE: &str = r#"<?xml version="1.0"?>
<state seen="1000"><device sn="00-90-33-30-00-af" type="IP232" hwid="IP232-30-00-af" realip="172.16.1.2" ip="10.0.0.1" rp="true" proxy="10.0.0.9" classes="phone, ip232" phase="update" environments="default, lab" certstat="ok" backup="900"/><firmware build="130100" requested="130160"/><bootcode build="130150"/><queries><admin seen="990"><info name="Reception &lt;Desk&gt;" type="IP232"/></admin><media seen="980"><info stun="s1" turn="t1"><nat result="ok" public-addr="1.2.3.4"/></info></media><registration seen="970"><info><reg id="0" state="up" h323="alice" e164="11"/><reg id="1" state="down" h323="bob" e164="12"/></info></registration></queries><msgs time="1000" msg=""/><msgs time="1000" msg="hello"/><config filename="scripts/update-all-default.txt" delivered="950" version="800"/></state>"#;

    fn config(queries: &str) -> Config {
        Config::from_user_xml(&format!(
                r#"<config><master info=""/><status dir="status"/><queries>{queries}</queries></config>"#
            )).expect("config")
    }

    fn loaded(xml: &str) -> Loaded {
        match DeviceState::parse(xml.as_bytes()) {
            Ok(e) => Loaded::Ok(Arc::new(e)),
            Err(e) => Loaded::Corrupt {
                error: e.to_string(),
                raw: xml.to_string(),
            },
        }
    }

    #[test]
    fn reads_the_device_fields() {
        let v = DeviceView::from_state("00-90-33-30-00-af", &loaded(STATE), &[]);
        assert_eq!(v.problem, None);
        assert_eq!(v.sn, "00-90-33-30-00-af");
        assert_eq!(v.name, "Reception <Desk>");
        assert_eq!(v.device_type, "IP232");
        assert!(v.via_proxy);
        assert_eq!(v.proxy, "10.0.0.9");
        assert_eq!(v.firmware, "130100");
        assert_eq!(v.firmware_requested, "130160");
        assert_eq!(v.bootcode, "130150");
        assert_eq!(v.backup, Some(900));
        assert_eq!(v.seen, 1000);
        assert_eq!(v.msgs.len(), 2);
        assert_eq!(
            v.snippets,
            vec![Snippet {
                file: "scripts/update-all-default.txt".into(),
                delivered: 950,
                version: 800
            }]
        );
        assert!(v.is_missing(10, 2000));
        assert!(!v.is_missing(0, 2000));
        assert!(!v.is_missing(5000, 2000));
    }

    #[test]
    fn evaluates_show_expressions_like_the_documentation() {
        let cfg = config(
            r#"<query id="media" title="Media"><cmd>mod cmd MEDIA xml-info</cmd><applies>*</applies>
                <show title="NAT">concat(/state/queries/media/info/nat/@result, ' (', /state/queries/media/info/nat/@public-addr, ')')</show>
                <show title="Server">concat('STUN: ', /state/queries/media/info/@stun, ' TURN: ', /state/queries/media/info/@turn)</show>
            </query>
            <query id="registration" title="Registration"><applies>phone</applies>
                <show title="User">concat(/state/queries/registration/info/reg[@id = "0"]/@state, ': ', /state/queries/registration/info/reg[@id = "0"]/@h323)</show>
                <show title="All">/state/queries/registration/info/reg/@h323</show>
                <show title="Count">count(/state/queries/registration/info/reg)</show>
                <show title="Broken">concat(/state/queries/registration/info/reg[@id = </show>
                <show title="Hidden">none</show>
            </query>
            <query id="missingq" title="Nothing"><show title="X">string(/state/@seen)</show></query>"#,
        );
        let groups = show_groups(&cfg);
        assert_eq!(
            groups.iter().map(|g| g.id.as_str()).collect::<Vec<_>>(),
            vec!["media", "registration", "missingq"]
        );
        assert_eq!(groups[1].columns.len(), 4, "'none' is no column");
        let v = DeviceView::from_state("x", &loaded(STATE), &groups);
        let media = v.queries[0].as_ref().expect("media answered");
        assert_eq!(media.seen, 980);
        assert_eq!(
            media.cells,
            vec![
                Cell::Value("ok (1.2.3.4)".into()),
                Cell::Value("STUN: s1 TURN: t1".into())
            ]
        );
        let reg = v.queries[1].as_ref().expect("registration answered");
        assert_eq!(reg.cells[0], Cell::Value("up: alice".into()));
        assert_eq!(reg.cells[1], Cell::Value("alice, bob".into()));
        assert_eq!(reg.cells[2], Cell::Value("2".into()));
        assert!(
            matches!(&reg.cells[3], Cell::Error(e) if e.starts_with("invalid XPath expression")),
            "{:?}",
            reg.cells[3]
        );
        assert_eq!(v.queries[2], None, "device did not answer this query");
    }

    #[test]
    fn corrupt_and_foreign_files_say_so() {
        let v = DeviceView::from_state("bad", &loaded("<state><device"), &[]);
        assert!(
            v.problem
                .as_deref()
                .is_some_and(|p| p.starts_with("cannot read state file bad.xml")),
            "{:?}",
            v.problem
        );
        let v = DeviceView::from_state("foreign", &loaded("<html><body/></html>"), &[]);
        assert_eq!(
            v.problem.as_deref(),
            Some("foreign.xml is not a device state (root element <html>)")
        );
        let v = DeviceView::from_state("nodev", &loaded("<state seen=\"1\"/>"), &[]);
        assert!(v.problem.is_some());
    }
}
