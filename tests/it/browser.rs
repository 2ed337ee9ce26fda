//! The admin pages in a real browser: headless Chromium driven through ChromeDriver against
//! the real server binary. Logs in, looks at the seeded fleet, filters, opens a message log,
//! downloads a CSR, uploads a signed certificate, watches a row refresh itself, deletes a
//! device, and keeps screenshots as `target/admin-screenshot.png` (after the upload) and
//! `target/admin-screenshot-csr.png` (before it).
//!
//! Needs Debian's `chromium` and `chromium-driver` (installed by `.ci/run`); without them the
//! test fails and says so.

use crate::common::webdriver::{Browser, artifact, browser_or_skip};
use crate::common::*;
use serde_json::json;

/// The rows of the device table that are shown.
fn visible_rows(b: &Browser) -> Vec<String> {
    let v = b.exec(
        "return Array.from(document.querySelectorAll('#devicestable tr[data-sn]'))\
         .filter(function (tr) { return !tr.hidden && tr.offsetParent !== null; })\
         .map(function (tr) { return tr.dataset.sn; });",
        json!([]),
    );
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The rendered text of a device's row (read in one go: rows are replaced by the refresh).
fn row_text(b: &Browser, sn: &str) -> String {
    b.exec(
        "var tr = document.querySelector('tr[data-sn=\"' + arguments[0] + '\"]');\
         return tr ? tr.innerText : '';",
        json!([sn]),
    )
    .as_str()
    .unwrap_or_default()
    .to_string()
}

fn set_filter(b: &Browser, text: &str) {
    let input = b.find("#filter");
    b.clear(&input);
    if !text.is_empty() {
        b.send_keys(&input, text);
    } else {
        b.exec(
            "document.getElementById('filter').dispatchEvent(new Event('input'));",
            json!([]),
        );
    }
}

#[test]
fn an_administrator_works_with_the_status_page() {
    let dir = tempfile::tempdir().expect("tmp");
    let root = make_root(
        dir.path(),
        ADMIN_CONFIG,
        &[("update-all-default.txt", "config change CMD0 /x 1\n")],
    );
    seed_fleet(&root, unix_now());
    let downloads = dir.path().join("downloads");
    std::fs::create_dir_all(&downloads).expect("downloads");
    let Some(b) = browser_or_skip("an_administrator_works_with_the_status_page", &downloads) else {
        return;
    };
    let server = Server::start(&root, &[]);
    let base = format!("http://127.0.0.1:{}", server.http_port);

    // log in
    b.goto(&format!("{base}/admin/admin.php"));
    let user = b.find("#user");
    b.send_keys(&user, "admin");
    b.send_keys(&b.find("#password"), "wrong");
    b.click_css("#login");
    b.wait_for("the wrong password to be refused", |b| {
        b.try_find(".login .error").is_some()
    });
    assert!(b.try_find("#devices").is_none());
    b.log_in();

    // the seeded devices
    let rows = visible_rows(&b);
    for sn in [SN_RECEPTION, SN_EVIL, SN_GATEWAY, "broken", "foreign"] {
        assert!(rows.contains(&sn.to_string()), "{sn} in {rows:?}");
    }
    assert!(b.alert_text().is_none(), "a device name ran a script");
    let name = b.exec(
        "return document.querySelector('tr[data-sn=\"' + arguments[0] + '\"] .name').textContent;",
        json!([SN_EVIL]),
    );
    assert_eq!(name, json!(EVIL_NAME), "the name is shown as text");
    let evil_class = b.exec(
        "return document.querySelector('tr[data-sn=\"' + arguments[0] + '\"]').className;",
        json!([SN_EVIL]),
    );
    assert_eq!(evil_class, json!("dev missing"));
    assert!(row_text(&b, "broken").contains("cannot read state file broken.xml"));

    // filter: words, whole words, the chart buttons
    set_filter(&b, "ip232");
    b.wait_for("only the IP232", |b| visible_rows(b) == vec![SN_RECEPTION]);
    assert!(
        b.text(&b.find("#count"))
            .starts_with("1 of 5 devices match")
    );
    set_filter(&b, "172.16 missing");
    b.wait_for("only the missing device in 172.16", |b| {
        visible_rows(b) == vec![SN_EVIL]
    });
    set_filter(&b, "17");
    // while typing, a filter that matches nothing keeps the rows and says so; Enter shows
    // the empty result
    b.wait_for("the note that a partial word matches nothing", |b| {
        b.text(&b.find("#count")).contains("no device matches")
    });
    assert_eq!(visible_rows(&b), vec![SN_EVIL], "the rows stay");
    b.send_keys(&b.find("#filter"), "\u{E007}");
    b.wait_for("nothing for a partial word", |b| visible_rows(b).is_empty());
    set_filter(&b, "");
    b.wait_for("all rows again", |b| visible_rows(b).len() == 5);
    // the chart bars link to their filter (`fw:BUILD`, understood by the server's filter);
    // the charts are folded to a line until opened
    b.click_css("details.charts-fold > summary");
    b.click_css("a.fl[data-filter=\"fw:130160\"]");
    b.wait_for("the view filtered by firmware 130160", |b| {
        b.exec("return document.getElementById('filter').value;", json!([])) == json!("fw:130160")
    });
    set_filter(&b, "");
    b.wait_for("all rows again", |b| visible_rows(b).len() == 5);

    // a window of rows: the rest comes when the "show more" row comes into view
    b.goto(&format!("{base}/admin/admin.php?rows=2"));
    b.wait_for("the rows after the first window", |b| {
        visible_rows(b).len() == 5
    });
    assert!(b.try_find("tr.more").is_none());

    // the message log
    let log_line = format!("log line of {SN_RECEPTION}");
    assert!(
        !row_text(&b, SN_RECEPTION).contains(&log_line),
        "log starts closed"
    );
    b.click_css(&format!(
        "tr[data-sn=\"{SN_RECEPTION}\"] details.log summary"
    ));
    b.wait_for("the message log to open", |b| {
        row_text(b, SN_RECEPTION).contains(&log_line)
    });

    // the row with a CSR waiting for signature
    std::fs::write(artifact("admin-screenshot-csr.png"), b.screenshot()).expect("screenshot");

    // download the CSR (DER), listed with the certificate files
    b.click_css(&format!(
        "tr[data-sn=\"{SN_RECEPTION}\"] details.certfiles summary"
    ));
    b.click_css(&format!(
        "tr[data-sn=\"{SN_RECEPTION}\"] a[href*=\"request.p10.der\"]"
    ));
    let csr = downloads.join(format!("{SN_RECEPTION}-request.p10.der"));
    b.wait_for("the CSR download", |_| {
        std::fs::read(&csr).is_ok_and(|c| c == CSR_DER)
    });

    // upload the signed certificate (in the CSR's disclosure): the row changes
    b.click_css(&format!(
        "tr[data-sn=\"{SN_RECEPTION}\"] details.csr summary"
    ));
    let pem = test_certificate_pem(&format!("IP232-{}", &SN_RECEPTION[9..]));
    let pem_file = dir.path().join("signed.pem");
    std::fs::write(&pem_file, &pem).expect("pem");
    b.send_keys_css(
        &format!("input[name=\"cert-{SN_RECEPTION}\"]"),
        &pem_file.display().to_string(),
    );
    b.click_css(&format!(
        "tr[data-sn=\"{SN_RECEPTION}\"] form.upload button[type=submit]"
    ));
    b.wait_for("the row to show the signed certificate", |b| {
        row_text(b, SN_RECEPTION).contains("signed certificate waiting for the device")
    });
    assert!(b.url().contains("mode=status"), "{}", b.url());
    assert_eq!(
        std::fs::read_to_string(root.join(format!("certs/{SN_RECEPTION}-signedrequest.cer")))
            .expect("stored certificate"),
        pem
    );
    assert!(
        b.try_find(&format!("input[name=\"cert-{SN_RECEPTION}\"]"))
            .is_none()
    );

    // rows refresh themselves (status/@refresh = 2 s): the gateway reports a new name
    let target = format!("/update.php?mode=query&sn={SN_GATEWAY}&id=admin");
    let r = http_request(
        server.addr(),
        "PUT",
        &target,
        &[],
        br#"<info name="Gateway renamed" type="IP811"/>"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    b.wait_for("the gateway row to refresh itself", |b| {
        row_text(b, SN_GATEWAY).contains("Gateway renamed")
    });

    // a picture for people
    b.click_css(&format!("tr[data-sn=\"{SN_EVIL}\"] details.log summary"));
    let shot = b.full_screenshot();
    assert!(shot.starts_with(b"\x89PNG"), "screenshot is a PNG");
    std::fs::write(artifact("admin-screenshot.png"), &shot).expect("screenshot");

    // delete a device
    b.click_css(&format!(
        "tr[data-sn=\"{SN_GATEWAY}\"] button[data-act=\"delete\"]"
    ));
    b.wait_for("the confirmation", |b| b.alert_text().is_some());
    assert!(
        b.alert_text().is_some_and(|t| t.contains(SN_GATEWAY)),
        "{:?}",
        b.alert_text()
    );
    b.accept_alert();
    b.wait_for("the row to go", |b| {
        b.try_find(&format!("tr[data-sn=\"{SN_GATEWAY}\"]"))
            .is_none()
    });
    b.wait_for("the state file to go", |_| {
        !root.join(format!("status/{SN_GATEWAY}.xml")).exists()
    });
    b.goto(&format!("{base}/admin/admin.php"));
    b.wait_for("the reloaded table", |b| b.try_find("#devices").is_some());
    assert!(!visible_rows(&b).contains(&SN_GATEWAY.to_string()));

    // the other pages
    b.click_css("header nav a[href*=\"mode=show\"]");
    b.wait_for("the configuration page", |b| {
        b.try_find("section h2").is_some() && b.url().contains("mode=show")
    });
    b.click_css("header nav a[href*=\"mode=info\"]");
    b.wait_for("the info page", |b| b.try_find("#devname").is_some());
    b.send_keys(&b.find("#devname"), "Nico Mobile");
    b.click_css("form.info button[type=submit]");
    b.wait_for("the set-up links", |b| b.try_find("#ios").is_some());
    assert!(
        b.text(&b.find("#snippet"))
            .contains("config add CMD0 /name Nico+Mobile")
    );

    // log out
    b.click_css("header form.logout button");
    b.wait_for("the login form", |b| b.try_find("#login").is_some());
    b.goto(&format!("{base}/admin/admin.php?mode=status"));
    b.wait_for("the login form again", |b| b.try_find("#login").is_some());
    assert!(b.try_find("#devices").is_none());
}

/// Not a test: how long Chromium takes to show the status page of 10 000 devices (printed).
/// `cargo test --release --test it browser::measure -- --ignored --nocapture`
#[test]
#[ignore]
fn measure_a_large_fleet_in_the_browser() {
    let dir = tempfile::tempdir().expect("tmp");
    let root = make_root(dir.path(), ADMIN_CONFIG, &[]);
    let now = unix_now();
    std::fs::create_dir_all(root.join("status")).expect("mkdir");
    for i in 0..10_000u32 {
        let sn = format!(
            "00-90-33-{:02x}-{:02x}-{:02x}",
            i >> 16,
            (i >> 8) & 0xff,
            i & 0xff
        );
        let xml = device_state(
            &sn,
            "IP232",
            &format!("Phone {i}"),
            "10.0.0.1",
            now - i64::from(i),
            "130160",
        );
        std::fs::write(root.join(format!("status/{sn}.xml")), xml).expect("state");
    }
    let downloads = dir.path().join("downloads");
    let Some(b) = browser_or_skip("measure_a_large_fleet_in_the_browser", &downloads) else {
        return;
    };
    let server = Server::start(&root, &[]);
    let base = format!("http://127.0.0.1:{}", server.http_port);
    b.goto(&format!("{base}/admin/admin.php"));
    b.log_in();
    for round in 0..3 {
        b.goto(&format!("{base}/admin/admin.php"));
        let t = b.exec(
            "var n = performance.getEntriesByType('navigation')[0];\
             return [n.responseStart - n.requestStart, n.responseEnd - n.requestStart, n.domContentLoadedEventEnd - n.requestStart, n.loadEventEnd - n.requestStart, n.transferSize, n.decodedBodySize, document.querySelectorAll('#devicestable tr').length];",
            json!([]),
        );
        println!(
            "round {round}: first byte {} ms, last byte {} ms, DOMContentLoaded {} ms, load {} ms, {} bytes transferred, {} bytes HTML, {} rows",
            t[0], t[1], t[2], t[3], t[4], t[5], t[6]
        );
        let f = std::time::Instant::now();
        set_filter(&b, "phone 9999");
        b.wait_for("the filter", |b| visible_rows(b).len() == 1);
        println!("  filter applied after {} ms", f.elapsed().as_millis());
        set_filter(&b, "");
    }
}
