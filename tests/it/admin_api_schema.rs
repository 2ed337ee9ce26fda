//! The API's answers against its own OpenAPI document, and the CSV export: real answers of
//! `GET api/devices` (list) and `GET api/devices/SN` (one device) are validated against the
//! schemas the document gives for them (a small validator: types, required and unknown
//! members, items, `$ref`, enums); the CSV has ISO 8601 dates, a BOM on request, query and
//! rollout columns.

use crate::common::oneshot::Admin as Harness;
use crate::common::*;
use axum::http::StatusCode;
use serde_json::Value;

/// Why `v` does not fit `schema` (empty: it fits). `doc` resolves `$ref`s.
fn check(doc: &Value, schema: &Value, v: &Value, at: &str, out: &mut Vec<String>) {
    if let Some(r) = schema["$ref"].as_str() {
        let name = r.trim_start_matches("#/components/schemas/");
        let target = &doc["components"]["schemas"][name];
        assert!(!target.is_null(), "unknown $ref {r}");
        return check(doc, target, v, at, out);
    }
    if let Some(t) = schema.get("type") {
        let types: Vec<&str> = match t {
            Value::String(s) => vec![s.as_str()],
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        let fits = types.iter().any(|t| match *t {
            "string" => v.is_string(),
            "integer" => v.is_i64() || v.is_u64(),
            "number" => v.is_number(),
            "boolean" => v.is_boolean(),
            "array" => v.is_array(),
            "object" => v.is_object(),
            "null" => v.is_null(),
            _ => false,
        });
        if !fits {
            out.push(format!("{at}: {v} is not {types:?}"));
            return;
        }
    }
    if let Some(e) = schema["enum"].as_array()
        && !e.contains(v)
    {
        out.push(format!("{at}: {v} not in {e:?}"));
    }
    if let Some(o) = v.as_object() {
        let props = schema["properties"].as_object();
        for req in schema["required"].as_array().into_iter().flatten() {
            if let Some(k) = req.as_str()
                && !o.contains_key(k)
            {
                out.push(format!("{at}: required member {k} missing"));
            }
        }
        for (k, val) in o {
            match props.and_then(|p| p.get(k)) {
                Some(s) => check(doc, s, val, &format!("{at}.{k}"), out),
                None => match &schema["additionalProperties"] {
                    Value::Bool(false) => out.push(format!("{at}: member {k} not in the schema")),
                    s @ Value::Object(_) => check(doc, s, val, &format!("{at}.{k}"), out),
                    _ => {}
                },
            }
        }
    }
    if let (Some(a), Some(items)) = (v.as_array(), schema.get("items")) {
        for (i, x) in a.iter().enumerate() {
            check(doc, items, x, &format!("{at}[{i}]"), out);
        }
    }
}

fn response_schema<'d>(doc: &'d Value, path: &str) -> &'d Value {
    &doc["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
}

#[tokio::test]
async fn real_answers_match_the_openapi_document() {
    let config = ADMIN_CONFIG.replace(r#"refresh="2"/>"#, r#"refresh="2" buildhistory="true"/>"#);
    let h = Harness::with_config(&config, "");
    let doc = h.api("/api/openapi.json").await.json();
    let list = h.api("/api/devices").await;
    assert_eq!(list.status, StatusCode::OK);
    let list = list.json();
    assert!(list["devices"].as_array().is_some_and(|d| d.len() == 5));
    let mut errors = Vec::new();
    check(
        &doc,
        response_schema(&doc, "/api/devices"),
        &list,
        "list",
        &mut errors,
    );
    // a build change, so the single device's build history is not empty
    let poll = format!(
        "/update.php?polling=5&phase=update&hwid=IP232-30-00-a1&ip=172.16.1.21\
         &sn={SN_RECEPTION}&type=IP232&PROT=131065&BOOT=131000"
    );
    assert_eq!(
        h.call("GET", &poll, &[], Vec::new()).await.status,
        StatusCode::OK
    );
    let one = h.api(&format!("/api/devices/{SN_RECEPTION}")).await.json();
    assert!(one["msgs"].is_array() && one["snippets"].is_array());
    assert!(
        one["build_history"]
            .as_array()
            .is_some_and(|h| h.len() == 2),
        "{one}"
    );
    check(
        &doc,
        response_schema(&doc, "/api/devices/{sn}"),
        &one,
        "device",
        &mut errors,
    );
    let audit = h.api("/api/audit").await.json();
    check(
        &doc,
        response_schema(&doc, "/api/audit"),
        &audit,
        "audit",
        &mut errors,
    );
    assert!(errors.is_empty(), "{errors:#?}");

    // the validator can fail: the list's items have no message log, one device has
    let mut wrong = list.clone();
    wrong["devices"][0]["msgs"] = serde_json::json!([]);
    wrong["summary"]["devices"] = serde_json::json!("3");
    let mut errors = Vec::new();
    check(
        &doc,
        response_schema(&doc, "/api/devices"),
        &wrong,
        "list",
        &mut errors,
    );
    assert_eq!(errors.len(), 2, "{errors:#?}");

    // 429 is documented on every path
    for (path, methods) in doc["paths"].as_object().expect("paths") {
        for (m, op) in methods.as_object().expect("methods") {
            assert!(!op["responses"]["429"].is_null(), "{m} {path} without 429");
        }
    }
}

#[tokio::test]
async fn the_csv_has_iso_dates_a_bom_and_query_and_rollout_columns() {
    let config = ADMIN_CONFIG.replace(
        "</config>",
        r#"<rollouts><rollout id="r1" firmware="140010" applies="phone" waves="50,100"/></rollouts></config>"#,
    );
    let h = Harness::with_config(&config, "");
    let r = h.api("/api/devices.csv?bom=1&filter=type:ip232").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.starts_with(b"\xEF\xBB\xBF"), "BOM");
    let mut rd = csv::Reader::from_reader(&r.body[3..]);
    let head: Vec<String> = rd
        .headers()
        .expect("header")
        .iter()
        .map(str::to_string)
        .collect();
    assert_eq!(head[8], "seen");
    let col = |name: &str| {
        head.iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("{name} in {head:?}"))
    };
    let (name, broken, wave) = (
        col("Admin: Name"),
        col("Admin: Broken"),
        col("rollout r1 wave"),
    );
    assert_eq!(wave, head.len() - 1);
    let row = rd.records().next().expect("row").expect("record");
    assert_eq!(&row[0], SN_RECEPTION);
    let seen = &row[8];
    assert!(
        seen.len() == 20 && seen.ends_with('Z') && &seen[10..11] == "T",
        "ISO 8601: {seen}"
    );
    assert!(row[14].ends_with('Z'), "backup as ISO 8601: {:?}", &row[14]);
    assert!(&row[wave] == "1" || &row[wave] == "2", "{row:?}");
    assert_eq!(&row[name], "Reception", "the query's value");
    assert!(
        row[broken].starts_with("error: "),
        "the broken expression: {row:?}"
    );
    // without bom=1 no BOM (scripts)
    let plain = h.api("/api/devices.csv").await;
    assert!(plain.body.starts_with(b"sn,"));
}
