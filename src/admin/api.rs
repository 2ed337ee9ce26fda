//! The JSON of the API for monitoring and scripts (pure):
//!
//! - `GET {prefix}/api/devices[?filter=…&sort=…&limit=…&offset=…]`: `{"now", "total"
//!   (matching devices), "count" (in this page), "offset", "limit", "files" (state files),
//!   "summary" (of all matching devices), "devices": […]}`
//! - `GET {prefix}/api/devices/SN`: one device, with its message log.
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

/// A page of the device list: `total` matching devices, `count` in this page.
pub fn devices(
    shown: &[Row],
    page: &Page,
    summary: &Summary,
    groups: &[ShowGroup],
    missing_after: i64,
    now: i64,
) -> Value {
    json!({
        "now": now,
        "total": page.matched,
        "count": shown.len(),
        "offset": page.offset,
        "limit": page.limit,
        "files": page.files,
        "summary": summary,
        "devices": shown.iter().map(|r| device(r, groups, missing_after, now, false)).collect::<Vec<_>>(),
    })
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
        let view = DeviceView::from_state("00-90", &Loaded::Ok(Arc::new(el)), &groups);
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
}
