//! The OpenAPI 3 description of the API (`api/openapi.json`), kept by hand next to the
//! routes: its test checks that it describes exactly the paths and methods of
//! `api_http::PATHS`.

use serde_json::{Value, json};

fn filter_params(paged: bool) -> Value {
    let mut p = vec![
        json!({ "name": "filter", "in": "query", "required": false,
            "description": "Filter terms, all must hold: free words (whole words of any field), field:value (sn, type, name, ip, phase, env, class, fw, boot; whole value), is:STATE (missing, present, csr, signed, certerror, fwpending, unreadable), rollout:ID, wave:N; * and ? wildcards, \"quoted values\", -term negates.",
            "schema": { "type": "string", "maxLength": 256 }, "example": "type:ip2* -is:missing" }),
        json!({ "name": "sort", "in": "query", "required": false,
            "description": "Sort key, a leading - for descending (default: sn).",
            "schema": { "type": "string", "enum": sort_values() }, "example": "-seen" }),
    ];
    if paged {
        p.push(json!({ "name": "limit", "in": "query", "required": false,
            "description": "Devices in the page (larger than 1000: 400).",
            "schema": { "type": "integer", "minimum": 0, "maximum": 1000, "default": 100 } }));
        p.push(json!({ "name": "offset", "in": "query", "required": false,
            "description": "Matching devices skipped.",
            "schema": { "type": "integer", "minimum": 0, "default": 0 } }));
    }
    Value::Array(p)
}

/// The CSV export's parameters: the filter, the sort and `bom`.
fn csv_params() -> Value {
    let mut p = filter_params(false);
    if let Some(a) = p.as_array_mut() {
        a.push(json!({ "name": "bom", "in": "query", "required": false,
            "description": "1 (or true, yes): start the text with a UTF-8 byte order mark, so that spreadsheets (Excel) read non-ASCII letters right; the page's CSV link sets it. Without it: no byte order mark (scripts).",
            "schema": { "type": "string" }, "example": "1" }));
    }
    p
}

fn sort_values() -> Vec<String> {
    super::order::SORT_KEYS
        .split(", ")
        .flat_map(|k| [k.to_string(), format!("-{k}")])
        .collect()
}

fn error(description: &str) -> Value {
    json!({ "description": description, "content": { "application/json": {
        "schema": { "$ref": "#/components/schemas/Error" } } } })
}

fn sn_param() -> Value {
    json!({ "name": "sn", "in": "path", "required": true,
        "description": "Serial number (the state file's name).",
        "schema": { "type": "string" }, "example": "00-90-33-30-00-a1" })
}

fn paths() -> Value {
    json!({
        "/api/devices": { "get": {
            "summary": "A page of the matching devices, with the summary of all matching ones",
            "parameters": filter_params(true),
            "responses": {
                "200": { "description": "The page", "content": { "application/json": {
                    "schema": { "$ref": "#/components/schemas/DeviceList" } } } },
                "400": error("Unknown filter field or state, unknown sort key, bad limit or offset"),
                "401": error("No session and no valid API token"),
            } } },
        "/api/devices.csv": { "get": {
            "summary": "Every matching device as CSV (same filter and sort)",
            "parameters": csv_params(),
            "responses": {
                "200": { "description": "The table, a header line first",
                    "content": { "text/csv": { "schema": { "type": "string" } } } },
                "400": error("Unknown filter field or state, unknown sort key"),
                "401": error("No session and no valid API token"),
            } } },
        "/api/devices/{sn}": {
            "get": {
                "summary": "One device, with its message log",
                "parameters": [sn_param()],
                "responses": {
                    "200": { "description": "The device", "content": { "application/json": {
                        "schema": { "$ref": "#/components/schemas/Device" } } } },
                    "400": error("Not a serial number"),
                    "401": error("No session and no valid API token"),
                    "404": error("No state file for this device"),
                } },
            "delete": {
                "summary": "Forget a device: deletes its state file (not its backups)",
                "description": "With a session, send its CSRF token as X-CSRF-Token (or ?csrf=); the API token is enough by itself.",
                "parameters": [sn_param(), { "name": "X-CSRF-Token", "in": "header", "required": false,
                    "schema": { "type": "string" } }],
                "responses": {
                    "200": { "description": "Deleted", "content": { "application/json": { "schema": {
                        "type": "object", "properties": {
                            "deleted": { "type": "boolean" }, "sn": { "type": "string" },
                            "msg": { "type": "string" } } } } } },
                    "400": error("Not a serial number"),
                    "401": error("No session and no valid API token"),
                    "403": error("Session without its CSRF token"),
                    "404": error("No state file for this device"),
                } },
        },
        "/api/openapi.json": { "get": {
            "summary": "This document",
            "responses": {
                "200": { "description": "OpenAPI 3 document",
                    "content": { "application/json": { "schema": { "type": "object" } } } },
                "401": error("No session and no valid API token"),
            } } },
    })
}

/// The members of a device in the list and in the single-device answer.
fn device_properties(single: bool) -> Value {
    let text = json!({ "type": ["string", "null"] });
    let int_or_null = json!({ "type": ["integer", "null"] });
    let build = json!({ "type": "object", "additionalProperties": false,
        "required": ["build", "requested"], "properties": { "build": text, "requested": text } });
    let file = json!({ "type": ["string", "null"] });
    let mut p = json!({
        "key": { "type": "string", "description": "The state file's name (serial number)" },
        "sn": { "type": "string" }, "hwid": text, "type": text, "name": text,
        "realip": text, "ip": text, "via_proxy": { "type": "boolean" }, "proxy": text,
        "phase": text,
        "classes": { "type": "array", "items": { "type": "string" } },
        "environments": { "type": "array", "items": { "type": "string" } },
        "seen": { "type": "integer", "description": "Last poll, unix seconds" },
        "missing": { "type": "boolean" },
        "firmware": build, "bootcode": build,
        "certstat": text, "request_error": { "type": "boolean" },
        "certificate_files": { "type": "object", "additionalProperties": false,
            "properties": { "csr_der": file, "csr_pem": file, "signed": file, "request_error": file } },
        "backup": int_or_null,
        "backups": { "type": "array", "items": { "type": "object", "additionalProperties": false,
            "required": ["path", "mtime"],
            "properties": { "path": { "type": "string" }, "mtime": { "type": "integer" } } } },
        "snippet_count": { "type": "integer", "description": "Delivered snippets" },
        "log_entries": { "type": "integer", "description": "Entries of the message log" },
        "queries": { "type": "object", "description": "By query id",
            "additionalProperties": { "type": "object", "additionalProperties": false,
                "properties": { "title": { "type": "string" }, "seen": { "type": "integer" },
                    "values": { "type": "object", "description": "By column title: the value, or {error}",
                        "additionalProperties": { "type": ["string", "object"] } } } } },
    });
    if single && let Some(o) = p.as_object_mut() {
        o.insert(
            "snippets".into(),
            json!({ "type": "array", "items": { "type": "object",
            "additionalProperties": false, "required": ["file", "delivered", "version"],
            "properties": { "file": { "type": "string" }, "delivered": { "type": "integer" },
                "version": { "type": "integer" } } } }),
        );
        o.insert("build_history".into(), json!({ "type": "array",
            "description": "The recorded changes of the reported builds, newest first (at most 32)",
            "items": { "type": "object", "additionalProperties": false,
            "required": ["time", "what", "from", "to"],
            "properties": { "time": { "type": "integer", "description": "Unix seconds" },
                "what": { "type": "string", "enum": ["firmware", "bootcode"] },
                "from": { "type": ["string", "null"], "description": "The build before (null: none)" },
                "to": { "type": "string" } } } }));
        o.insert("msgs".into(), json!({ "type": "array", "description": "Oldest first; an empty text starts a poll",
            "items": { "type": "object", "additionalProperties": false, "required": ["time", "text"],
            "properties": { "time": { "type": "integer" }, "text": { "type": "string" } } } }));
    }
    p
}

fn bars() -> Value {
    json!({ "type": "array", "items": { "type": "object", "additionalProperties": false,
        "required": ["value", "count", "master"],
        "properties": { "value": { "type": "string" }, "count": { "type": "integer" },
            "master": { "type": "boolean" } } } })
}

fn schemas() -> Value {
    let text = json!({ "type": ["string", "null"] });
    let count = json!({ "type": "integer" });
    json!({
        "Error": { "type": "object", "properties": { "error": { "type": "string" } } },
        "AuditEntry": super::audit_http::entry_schema(),
        "Device": { "type": "object", "additionalProperties": false,
            "description": "One device with its message log and delivered snippets; a broken state file has only key and problem.",
            "properties": device_properties(true).as_object().cloned().map(|mut m| {
                m.insert("problem".into(), json!({ "type": "string" })); Value::Object(m) }).unwrap_or_default() },
        "DeviceListItem": { "type": "object", "additionalProperties": false,
            "description": "A device of the list: counts of its message log and snippets (the single-device answer has them in full); a broken state file has only key and problem.",
            "properties": device_properties(false).as_object().cloned().map(|mut m| {
                m.insert("problem".into(), json!({ "type": "string" })); Value::Object(m) }).unwrap_or_default() },
        "Summary": { "type": "object", "additionalProperties": false,
            "description": "The matching devices at a glance (all of them, not only this page)",
            "required": ["devices", "missing", "unreadable", "csr_waiting", "signed_waiting",
                "on_master_firmware", "master", "firmware", "bootcode", "phase", "environment"],
            "properties": {
                "devices": count, "missing": count, "unreadable": count,
                "csr_waiting": count, "signed_waiting": count, "on_master_firmware": count,
                "master": { "type": "object", "additionalProperties": false,
                    "properties": { "firmware": text, "bootcode": text } },
                "firmware": bars(), "bootcode": bars(), "phase": bars(), "environment": bars(),
            } },
        "DeviceList": { "type": "object", "additionalProperties": false,
            "required": ["now", "total", "count", "offset", "limit", "files", "summary", "devices"],
            "properties": {
            "now": { "type": "integer" },
            "total": { "type": "integer", "description": "Matching devices" },
            "count": { "type": "integer", "description": "Devices in this page" },
            "offset": { "type": "integer" }, "limit": { "type": "integer" },
            "files": { "type": "integer", "description": "State files" },
            "summary": { "$ref": "#/components/schemas/Summary" },
            "devices": { "type": "array", "items": { "$ref": "#/components/schemas/DeviceListItem" } },
        } },
    })
}

/// Every path answers 429 when an address sent too many wrong API tokens.
fn with_429(mut paths: Value) -> Value {
    let too_many = json!({ "description": "Too many wrong API tokens from this address; try again after Retry-After seconds",
        "headers": { "Retry-After": { "schema": { "type": "integer" } } },
        "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } });
    for (_, methods) in paths.as_object_mut().into_iter().flatten() {
        for (_, op) in methods.as_object_mut().into_iter().flatten() {
            if let Some(r) = op.get_mut("responses").and_then(Value::as_object_mut) {
                r.entry("429").or_insert_with(|| too_many.clone());
            }
        }
    }
    paths
}

fn with_rollouts(mut paths: Value) -> Value {
    if let (Some(p), Value::Object(more)) =
        (paths.as_object_mut(), super::rollouts::openapi_paths())
    {
        p.extend(more);
        p.insert("/api/audit".into(), super::audit_http::openapi_path());
    }
    paths
}

/// The document, for an installation below `prefix`.
pub fn document(prefix: &str) -> Value {
    json!({
        "openapi": "3.1.0",
        "info": { "title": "update-server API", "version": env!("CARGO_PKG_VERSION") },
        "servers": [{ "url": if prefix.is_empty() { "/" } else { prefix } }],
        "security": [{ "bearer": [] }, { "session": [] }],
        "paths": with_429(with_rollouts(paths())),
        "components": {
            "schemas": schemas(),
            "securitySchemes": {
                "bearer": { "type": "http", "scheme": "bearer",
                    "description": "The token of <api token=\"…\"/> in the configuration" },
                "session": { "type": "apiKey", "in": "cookie", "name": super::session::COOKIE },
            },
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_exactly_the_routes() {
        let doc = document("/update");
        let paths = doc["paths"].as_object().expect("paths");
        let routes = &super::super::api_http::PATHS;
        assert_eq!(paths.len(), routes.len());
        for (path, methods) in routes {
            let p = paths
                .get(*path)
                .unwrap_or_else(|| panic!("{path} not described"));
            let described: Vec<&str> = p
                .as_object()
                .expect("ops")
                .keys()
                .map(String::as_str)
                .collect();
            let mut want: Vec<&str> = methods.to_vec();
            want.sort_unstable();
            let mut got = described.clone();
            got.sort_unstable();
            assert_eq!(got, want, "{path}");
            for m in *methods {
                assert!(p[*m]["responses"]["200"].is_object(), "{path} {m}");
            }
        }
        assert_eq!(doc["servers"][0]["url"], "/update");
        assert_eq!(doc["openapi"], "3.1.0");
        assert!(sort_values().contains(&"-seen".to_string()));
        let csv = &doc["paths"]["/api/devices.csv"]["get"]["parameters"];
        let names: Vec<&str> = csv
            .as_array()
            .expect("parameters")
            .iter()
            .filter_map(|p| p["name"].as_str())
            .collect();
        assert_eq!(names, ["filter", "sort", "bom"]);
    }
}
