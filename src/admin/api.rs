//! The JSON of the API for monitoring and scripts (pure):
//!
//! - `GET {prefix}/api/devices[?filter=…&sort=…&limit=…&offset=…]`: `{"now", "total"
//!   (matching devices), "count" (in this page), "offset", "limit", "files" (state files),
//!   "summary" (of all matching devices), "devices": […]}`
//! - `GET {prefix}/api/devices/SN`: one device, with its message log and its build changes
//!   (`build_history`, newest first).
//!   The list gives counts of the message log and the delivered snippets (`log_entries`,
//!   `snippet_count`); one device gives them in full.
//!
//! The HTTP side (authentication, CSV, OpenAPI, `DELETE`) is `api_http`.

use super::status::{Row, Summary};
use super::view::{Cell, ShowGroup};
use serde_json::{Map, Value, json};

fn list(s: &str) -> Vec<&str> {
    s.split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .collect()
}

fn opt(s: &str) -> Value {
    if s.is_empty() {
        Value::Null
    } else {
        Value::String(s.to_string())
    }
}

/// One device as JSON (`with_log`: include the message log).
pub fn device(
    r: &Row,
    groups: &[ShowGroup],
    missing_after: i64,
    now: i64,
    with_log: bool,
) -> Value {
    let v = &*r.view;
    if let Some(p) = &v.problem {
        return json!({ "key": v.key, "problem": p });
    }
    let mut queries = Map::new();
    for (g, res) in groups.iter().zip(v.queries.iter()) {
        let Some(res) = res else { continue };
        let mut values = Map::new();
        for (col, cell) in g.columns.iter().zip(res.cells.iter()) {
            let val = match cell {
                Cell::Value(s) => json!(s),
                Cell::Error(e) => json!({ "error": e }),
            };
            values.insert(col.title.clone(), val);
        }
        queries.insert(
            g.id.clone(),
            json!({ "title": g.title, "seen": res.seen, "values": values }),
        );
    }
    let mut out = json!({
        "key": v.key,
        "sn": v.sn,
        "hwid": opt(&v.hwid),
        "type": opt(&v.device_type),
        "name": opt(&v.name),
        "realip": opt(&v.realip),
        "ip": opt(&v.ip),
        "via_proxy": v.via_proxy,
        "proxy": opt(&v.proxy),
        "phase": opt(&v.phase),
        "classes": list(&v.classes),
        "environments": list(&v.environments),
        "seen": v.seen,
        "missing": v.is_missing(missing_after, now),
        "firmware": { "build": opt(&v.firmware), "requested": opt(&v.firmware_requested) },
        "bootcode": { "build": opt(&v.bootcode), "requested": opt(&v.bootcode_requested) },
        "certstat": v.certstat,
        "request_error": v.request_error,
        "certificate_files": {
            "csr_der": r.certs.der, "csr_pem": r.certs.pem,
            "signed": r.certs.signed, "request_error": r.certs.error,
        },
        "backup": v.backup,
        "backups": r.backups.iter().map(|b| json!({ "path": b.path, "mtime": b.mtime })).collect::<Vec<_>>(),
        "snippet_count": v.snippet_count,
        "log_entries": v.log_entries,
        "queries": queries,
    });
    // the message log and the snippet list are read from the state file: detail only
    if with_log && let Some(o) = out.as_object_mut() {
        o.insert("snippets".to_string(), json!(v.snippets));
        o.insert("msgs".to_string(), json!(v.msgs));
    }
    out
}

/// The build changes of one device, newest first.
pub fn build_history(changes: &[crate::state::builds::Change]) -> Value {
    changes.iter().rev().map(|c| json!(c)).collect()
}

/// Devices in a page of the list unless `limit=` says otherwise.
pub const DEFAULT_LIMIT: usize = 100;
/// Largest `limit=` (a larger one is refused with 400).
pub const MAX_LIMIT: usize = 1000;

/// Where a page of the device list is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    /// Devices skipped.
    pub offset: usize,
    /// Most devices in the page.
    pub limit: usize,
    /// Devices the filter lets through.
    pub matched: usize,
    /// State files (all devices, also broken files).
    pub files: usize,
}

/// A page of the device list: `total` matching devices, `count` in this page (the JSON
/// [`write_devices`] writes).
#[cfg(test)]
pub fn devices(
    shown: &[Row],
    page: &Page,
    summary: &Summary,
    groups: &[ShowGroup],
    missing_after: i64,
    now: i64,
) -> Value {
    let mut out = head(shown.len(), page, summary, now);
    out["devices"] = shown
        .iter()
        .map(|r| device(r, groups, missing_after, now, false))
        .collect();
    out
}

/// The members of a page besides its devices (`devices` is null).
fn head(count: usize, page: &Page, summary: &Summary, now: i64) -> Value {
    json!({
        "now": now,
        "total": page.matched,
        "count": count,
        "offset": page.offset,
        "limit": page.limit,
        "files": page.files,
        "summary": summary,
        "devices": null,
    })
}

/// Writes a page of the device list to `out` as JSON: the devices' rows made by `rows` one
/// at a time and each written before the next is made, so that a page costs one
/// row and its JSON, not all of them (the text is that of the page as one JSON value).
pub fn write_devices<W: std::io::Write>(
    out: W,
    rows: impl ExactSizeIterator<Item = Row>,
    page: &Page,
    summary: &Summary,
    groups: &[ShowGroup],
    missing_after: i64,
    now: i64,
) -> serde_json::Result<()> {
    use serde::ser::{SerializeMap, Serializer};
    let head = head(rows.len(), page, summary, now);
    let devices = OneByOne(std::cell::RefCell::new(Some(
        rows.map(|r| device(&r, groups, missing_after, now, false)),
    )));
    let mut ser = serde_json::Serializer::new(out);
    let mut map = ser.serialize_map(head.as_object().map(|m| m.len()))?;
    // the members in the order of the value (a map ordered by name)
    for (k, v) in head.as_object().into_iter().flatten() {
        if k == "devices" {
            map.serialize_entry(k, &devices)?;
        } else {
            map.serialize_entry(k, v)?;
        }
    }
    map.end()
}

/// A JSON array of the values an iterator makes, serialized as they are made (once).
struct OneByOne<I>(std::cell::RefCell<Option<I>>);

impl<I: Iterator<Item = Value>> serde::Serialize for OneByOne<I> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.borrow_mut().take().into_iter().flatten())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::files::CertState;
    use crate::admin::view::DeviceView;
    use crate::state::Loaded;
    use crate::xml::Element;
    use std::sync::Arc;

    #[test]
    fn device_json_has_names_and_values() {
        let el = Element::parse(
            br#"<state seen="100"><device sn="00-90" type="IP232" classes="phone, ip232" environments="default" realip="1.2.3.4" ip="1.2.3.4"/><queries><admin seen="90"><info name="Desk &quot;1&quot;"/></admin></queries><msgs time="100" msg=""/></state>"#,
        )
        .expect("xml");
        let groups = vec![ShowGroup {
            id: "admin".into(),
            title: "Admin".into(),
            columns: vec![crate::admin::view::ShowColumn {
                title: "Name".into(),
                expr: "string(/state/queries/admin/info/@name)".into(),
            }],
        }];
        let view = DeviceView::from_state(
            "00-90",
            &Loaded::Ok(Arc::new(crate::state::DeviceState::from_root(el))),
            &groups,
        );
        let row = Row {
            view: Arc::new(view),
            certs: CertState::default(),
            backups: Arc::new(Vec::new()),
        };
        let j = device(&row, &groups, 60, 1000, true);
        assert_eq!(j["sn"], "00-90");
        assert_eq!(j["name"], "Desk \"1\"");
        assert_eq!(j["classes"], json!(["phone", "ip232"]));
        assert_eq!(j["missing"], true);
        assert_eq!(j["firmware"]["build"], Value::Null);
        assert_eq!(j["queries"]["admin"]["values"]["Name"], "Desk \"1\"");
        assert_eq!(j["msgs"][0]["time"], 100);
        let j = device(&row, &groups, 0, 1000, false);
        assert_eq!(j["missing"], false);
        assert!(j.get("msgs").is_none());
    }

    fn row(i: usize) -> Row {
        let xml = format!(
            r#"<state seen="{i}"><device sn="00-90-{i:02}" type="IP232" classes="phone" realip="10.0.0.{i}"/><queries><admin seen="9"><info name="Desk {i}"/></admin></queries></state>"#
        );
        let el = Element::parse(xml.as_bytes()).expect("xml");
        Row {
            view: Arc::new(DeviceView::from_state(
                &format!("00-90-{i:02}"),
                &Loaded::Ok(Arc::new(crate::state::DeviceState::from_root(el))),
                &[],
            )),
            certs: CertState::default(),
            backups: Arc::new(Vec::new()),
        }
    }

    /// A writer whose length the test can see while the page is written.
    #[derive(Clone, Default)]
    struct Seen(std::rc::Rc<std::cell::RefCell<Vec<u8>>>);

    impl std::io::Write for Seen {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.borrow_mut().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_page_is_written_row_by_row_as_the_whole_value() {
        let page = Page {
            offset: 10,
            limit: 3,
            matched: 40,
            files: 41,
        };
        let summary = Summary::default();
        let rows: Vec<Row> = (1..4).map(row).collect();
        let expected =
            serde_json::to_vec(&devices(&rows, &page, &summary, &[], 60, 1000)).expect("json");
        let out = Seen::default();
        // when a row is made, the rows before it are written already
        let mut written_before = Vec::new();
        let probe = out.clone();
        let lazily = (1..4).map(|i| {
            written_before.push(probe.0.borrow().len());
            row(i)
        });
        write_devices(out.clone(), lazily, &page, &summary, &[], 60, 1000).expect("write");
        assert_eq!(
            String::from_utf8(out.0.borrow().clone()).expect("utf-8"),
            String::from_utf8(expected).expect("utf-8")
        );
        assert_eq!(written_before.len(), 3);
        assert!(
            written_before.windows(2).all(|w| w[1] > w[0] + 100),
            "{written_before:?}"
        );
    }
}
