//! The triage side of the status page in headless Chromium, with a varied fleet of 200
//! devices: rows per screen at 1400×1000, nothing inside a row overlapping at 1280 px, a
//! usable page at 420 px, summary links to filtered views, sortable headers, the backup
//! view and comparison, and the message after a certificate upload. Screenshots are kept in
//! `target/triage-*.png`.

use crate::common::webdriver::{Browser, artifact, browser_or_skip};
use crate::common::*;
use serde_json::{Value, json};
use std::path::Path;

const TYPES: [&str; 5] = ["IP232", "IP112", "IP811", "IP1060", "IPVA"];
const FW: [&str; 4] = ["130160", "130100", "130178", "140012"];

/// 195 devices besides [`seed_fleet`]'s: types, long and short names, missing ones, other
/// firmware, and every fifth with a CSR waiting for signature.
fn seed_varied(root: &Path, now: i64) {
    for i in 0..195usize {
        let sn = format!("00-90-33-40-{:02x}-{:02x}", i / 256, i % 256);
        let ty = TYPES[i % TYPES.len()];
        let name = if i % 3 == 0 {
            format!("Conference room {i} on the second floor, east wing, next to the kitchen")
        } else {
            format!("Phone {i}")
        };
        let seen = if i % 7 == 0 {
            now - 3 * 86400
        } else {
            now - i as i64 * 13
        };
        let xml = device_state(
            &sn,
            ty,
            &name,
            &format!("10.{}.{}.{}", i % 3, i / 100, i % 250 + 1),
            seen,
            FW[i % FW.len()],
        );
        std::fs::write(root.join(format!("status/{sn}.xml")), xml).expect("state");
        if i % 5 == 0 {
            std::fs::write(root.join(format!("certs/{sn}-request.p10.der")), CSR_DER).expect("csr");
        }
    }
}

/// Clicks `css` from the page's script: returns at once, also when the click navigates (a
/// WebDriver click waits for the new page, which can outlast its read timeout on a busy host).
fn click_js(b: &Browser, css: &str) {
    b.wait_for(css, |b| b.try_find(css).is_some());
    b.exec(
        "document.querySelector(arguments[0]).click();",
        json!([css]),
    );
}

fn resize(b: &Browser, w: u32, h: u32) {
    b.cmd("POST", "/window/rect", json!({ "width": w, "height": h }))
        .unwrap_or_else(|e| panic!("resize: {e}"));
}

fn login(b: &Browser, base: &str) {
    b.goto(&format!("{base}/admin/admin.php"));
    b.log_in();
}

/// How many device rows are fully inside the viewport once the table is scrolled to the top.
fn rows_on_screen(b: &Browser) -> Value {
    b.exec(
        "var t = document.getElementById('devices'); window.scrollTo(0, t.getBoundingClientRect().top + window.scrollY);\
         var n = 0, hs = [];\
         document.querySelectorAll('#devicestable tr[data-sn]').forEach(function (tr) {\
           var r = tr.getBoundingClientRect(); hs.push(r.height);\
           if (r.top >= 0 && r.bottom <= window.innerHeight) n++; });\
         var avg = hs.reduce(function (a, b) { return a + b; }, 0) / hs.length;\
         return [n, Math.round(avg), window.innerWidth, window.innerHeight];",
        json!([]),
    )
}

/// Pairs of visible children of one cell whose boxes intersect, as text.
fn overlaps(b: &Browser) -> Value {
    b.exec(
        "var bad = [];\
         document.querySelectorAll('#devicestable tr[data-sn] > td').forEach(function (td) {\
           var kids = Array.from(td.children).map(function (k) { return [k, k.getBoundingClientRect()]; })\
             .filter(function (x) { return x[1].width > 0 && x[1].height > 0; });\
           for (var i = 0; i < kids.length; i++) for (var j = i + 1; j < kids.length; j++) {\
             var a = kids[i][1], c = kids[j][1];\
             if (a.left < c.right - 0.5 && c.left < a.right - 0.5 && a.top < c.bottom - 0.5 && c.top < a.bottom - 0.5)\
               bad.push(td.parentNode.dataset.sn + ': ' + kids[i][0].className + ' / ' + kids[j][0].className);\
           } });\
         return bad;",
        json!([]),
    )
}

fn layout(b: &Browser, base: &str) {
    resize(b, 1400, 1000);
    b.goto(&format!("{base}/admin/admin.php"));
    b.wait_for("the device table", |b| b.try_find("#devices").is_some());
    let m = rows_on_screen(b);
    println!("1400x1000: rows fully visible, average row px, viewport: {m}");
    assert!(m[0].as_u64().unwrap_or(0) >= 15, "rows on screen: {m}");
    std::fs::write(artifact("triage-1400.png"), b.screenshot()).expect("shot");

    resize(b, 1280, 1000);
    let bad = overlaps(b);
    assert_eq!(bad, json!([]), "overlapping row content at 1280 px");
    std::fs::write(artifact("triage-1280.png"), b.screenshot()).expect("shot");

    resize(b, 420, 900);
    let v = b.exec(
        "window.scrollTo(0, 0);\
         var vis = function (s) { var e = document.querySelector(s); if (!e) return false;\
           var r = e.getBoundingClientRect(); return r.width > 0 && r.left >= 0 && r.right <= window.innerWidth; };\
         return [document.documentElement.scrollWidth, window.innerWidth, vis('#filter'),\
           vis('header nav a[href*=\"mode=status\"]'), vis('header form.logout button'), vis('.summary .facts a.fl')];",
        json!([]),
    );
    println!("420 px: scroll width, viewport width, filter/nav/logout/summary visible: {v}");
    std::fs::write(artifact("triage-420.png"), b.screenshot()).expect("shot");
    assert!(v[0].as_u64() <= v[1].as_u64(), "horizontal overflow: {v}");
    assert_eq!(
        v.as_array().map(|a| a[2..].to_vec()),
        Some(vec![json!(true); 4]),
        "{v}"
    );
    resize(b, 1400, 1000);
}

fn links(b: &Browser, base: &str) {
    b.goto(&format!("{base}/admin/admin.php?filter=ip232"));
    b.wait_for("the device table", |b| b.try_find("#devices").is_some());
    // a sortable header keeps the filter and toggles the direction
    click_js(b, "thead a.sort[data-sort=\"seen\"]");
    b.wait_for("sorted by last seen", |b| b.url().contains("sort=seen"));
    assert!(b.url().contains("filter=ip232"), "{}", b.url());
    assert!(
        b.try_find("thead th[aria-sort=\"ascending\"] a[data-sort=\"-seen\"]")
            .is_some()
    );
    click_js(b, "thead a.sort[data-sort=\"-seen\"]");
    b.wait_for("sorted newest first", |b| b.url().contains("sort=-seen"));
    assert!(b.try_find("thead th[aria-sort=\"descending\"]").is_some());
    // every count of the summary is a link to its filter
    for (sel, filter) in [
        ("a.fl[data-filter=\"is:csr\"]", "is:csr"),
        ("a.fl[data-filter=\"is:missing\"]", "is:missing"),
        ("a.fl[data-filter=\"fw:130178\"]", "fw:130178"),
        ("a.fl[data-filter=\"phase:update\"]", "phase:update"),
        ("a.fl[data-filter=\"env:default\"]", "env:default"),
    ] {
        b.goto(&format!("{base}/admin/admin.php?sort=-seen"));
        b.wait_for("the summary", |b| b.try_find(sel).is_some());
        click_js(b, sel);
        b.wait_for("the filtered view", |b| {
            b.exec("return document.getElementById('filter').value;", json!([])) == json!(filter)
        });
        assert!(b.url().contains("sort=-seen"), "{}", b.url());
    }
    b.goto(&format!("{base}/admin/admin.php?filter=nothing-at-all"));
    b.wait_for("the empty table", |b| {
        b.try_find("#devicestable tr.empty").is_some()
    });
    assert!(
        b.text(&b.find("#devicestable tr.empty"))
            .contains("no device matches")
    );
}

/// The rows of the table: how many, how many pass the JS expression `check` (over `tr`), and
/// the count text.
fn rows_passing(b: &Browser, check: &str) -> Value {
    b.exec(
        &format!(
            "var rows = Array.from(document.querySelectorAll('#devicestable tr[data-sn]'));\
             var ok = rows.filter(function (tr) {{ return {check}; }}).length;\
             return [rows.length, ok, document.getElementById('count').textContent];"
        ),
        json!([]),
    )
}

/// Filter terms typed into the filter box: the rows the server sends back all match, and
/// there are fewer than before.
fn filter_terms(b: &Browser, base: &str) {
    b.goto(&format!("{base}/admin/admin.php"));
    b.wait_for("the device table", |b| b.try_find("#devices").is_some());
    let all = rows_passing(b, "true")[0].as_u64().unwrap_or(0);
    let text = |css: &str| format!("((tr.querySelector('{css}') || {{}}).textContent || '')");
    // (terms, what every row must show, how many devices match)
    for (terms, check, expected) in [
        (
            "is:csr",
            format!("{}.indexOf('CSR waiting') >= 0", text(".c-cert")),
            40,
        ),
        (
            "type:ip811 -is:missing",
            format!(
                "{} === 'IP811' && !tr.classList.contains('missing')",
                text(".type")
            ),
            34,
        ),
        (
            "fw:130178",
            format!("{}.indexOf('130178') === 0", text(".c-fw")),
            49,
        ),
        (
            "name:phone*",
            format!("/^Phone /.test({})", text(".name")),
            130,
        ),
        (
            "is:missing",
            "tr.classList.contains('missing')".to_string(),
            29,
        ),
    ] {
        let input = b.find("#filter");
        b.clear(&input);
        b.send_keys(&input, terms);
        let count = format!("{expected} of {all} devices match");
        b.wait_for(terms, |b| {
            let v = rows_passing(b, &check);
            let (n, ok) = (v[0].as_u64().unwrap_or(0), v[1].as_u64().unwrap_or(0));
            let c = v[2].as_str().unwrap_or_default();
            n > 0 && n == ok && n < all && c == count
        });
        println!("{terms}: {}", rows_passing(b, &check));
    }
}

fn backups(b: &Browser, base: &str, root: &Path) {
    let hwid = format!("IP232-{}", &SN_RECEPTION[9..]);
    std::fs::write(
        root.join(format!("backup/{hwid}/{hwid}.2.txt")),
        "config change CMD0 /name <script>alert(3)</script>\r\n",
    )
    .expect("backup 2");
    b.goto(&format!("{base}/admin/admin.php?filter={SN_RECEPTION}"));
    b.click_css(&format!(
        "tr[data-sn=\"{SN_RECEPTION}\"] details[data-part=\"backups\"] summary"
    ));
    b.wait_for("the backup list", |b| {
        b.try_find("ul.backups a.cmp").is_some()
    });
    click_js(b, "ul.backups a.view");
    b.wait_for("the backup text", |b| b.try_find("#backuptext").is_some());
    assert!(b.alert_text().is_none(), "a backup ran a script");
    assert_eq!(
        b.text(&b.find("#backuptext")),
        "config change CMD0 /name <script>alert(3)</script>"
    );
    b.goto(&format!("{base}/admin/admin.php?filter={SN_RECEPTION}"));
    b.click_css(&format!(
        "tr[data-sn=\"{SN_RECEPTION}\"] details[data-part=\"backups\"] summary"
    ));
    b.wait_for("the backup list", |b| {
        b.try_find("ul.backups a.cmp").is_some()
    });
    click_js(b, "ul.backups a.cmp");
    b.wait_for("the comparison", |b| b.try_find("#diff").is_some());
    assert!(b.text(&b.find("#diff tr.del")).contains("/name x"));
    assert!(
        b.text(&b.find("#diff tr.ins"))
            .contains("<script>alert(3)</script>")
    );
    std::fs::write(artifact("triage-diff.png"), b.screenshot()).expect("shot");
}

fn upload_message(b: &Browser, base: &str, dir: &Path) {
    b.goto(&format!(
        "{base}/admin/admin.php?filter={SN_RECEPTION}&sort=-seen"
    ));
    let pem_file = dir.join("signed.pem");
    std::fs::write(&pem_file, test_certificate_pem("IP232-30-00-a1")).expect("pem");
    // the upload is in the CSR's disclosure
    b.click_css(&format!(
        "tr[data-sn=\"{SN_RECEPTION}\"] details.csr summary"
    ));
    b.send_keys_css(
        &format!("input[name=\"cert-{SN_RECEPTION}\"]"),
        &pem_file.display().to_string(),
    );
    b.click_css(&format!(
        "tr[data-sn=\"{SN_RECEPTION}\"] form.upload button[type=submit]"
    ));
    b.wait_for("the message", |b| {
        b.try_find(".flash[data-msg=\"cert-uploaded\"]").is_some()
    });
    assert_eq!(
        b.exec("return document.getElementById('filter').value;", json!([])),
        json!(SN_RECEPTION),
        "the filter is kept"
    );
    assert!(b.url().contains("sort=-seen"), "{}", b.url());
    assert!(!b.url().contains("msg="), "shown once: {}", b.url());
    std::fs::write(artifact("triage-uploaded.png"), b.screenshot()).expect("shot");
}

#[test]
fn triage_on_the_status_page() {
    let dir = tempfile::tempdir().expect("tmp");
    let root = make_root(dir.path(), ADMIN_CONFIG, &[]);
    let now = unix_now();
    seed_fleet(&root, now);
    seed_varied(&root, now);
    let downloads = dir.path().join("downloads");
    std::fs::create_dir_all(&downloads).expect("downloads");
    let Some(b) = browser_or_skip("triage_on_the_status_page", &downloads) else {
        return;
    };
    let server = Server::start(&root, &[]);
    let base = format!("http://127.0.0.1:{}", server.http_port);
    login(&b, &base);
    layout(&b, &base);
    links(&b, &base);
    filter_terms(&b, &base);
    backups(&b, &base, &root);
    upload_message(&b, &base, dir.path());
}
