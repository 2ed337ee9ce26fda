//! The admin pages' second pass in a real browser (headless Chromium through ChromeDriver,
//! as `tests/browser.rs`), on a fleet of 45 devices with two staged rollouts (and an idle snippet rollout of every
//! device: a row names both) and a waiting
//! CSR: the fleet on the first screen (rows visible and table width measured at 1400×1000
//! and 1280×800, panels and charts folded to a line and remembered, the sticky header), the
//! confirmations and the messages after an action, the filter (help, `/`, no "undefined",
//! Back), HTML error pages and the device page. The figures are printed.

use crate::common::webdriver::{Browser, artifact, browser_or_skip};
use crate::common::*;
use serde_json::{Value, json};

const ROLLOUTS: &str = r#"<rollouts>
    <rollout id="r1" firmware="140010" applies="phone" waves="10,100" soak="3600" timeout="600"/>
    <rollout id="r2" firmware="140020" applies="ip811" waves="50,100" soak="3600" timeout="600"/>
    <rollout id="ntp" snippets="update-all-all.txt"/>
</rollouts></config>"#;

/// 40 more phones, so that the table is longer than a screen.
fn more_devices(root: &std::path::Path, now: i64) {
    for i in 0..40u32 {
        let sn = format!("00-90-33-40-00-{i:02x}");
        let xml = device_state(
            &sn,
            if i % 3 == 0 { "IP232" } else { "IP112" },
            &format!("Desk phone {i} on the third floor, room {}", 300 + i),
            &format!("10.1.{}.{}", i / 200, i % 200 + 10),
            now - i64::from(i) * 60,
            if i % 4 == 0 { "130100" } else { "130160" },
        );
        std::fs::write(root.join(format!("status/{sn}.xml")), xml).expect("state");
    }
}

fn setup(
    test: &str,
) -> Option<(
    tempfile::TempDir,
    std::path::PathBuf,
    Browser,
    Server,
    String,
)> {
    let dir = tempfile::tempdir().expect("tmp");
    let config = ADMIN_CONFIG
        .replace("</config>", ROLLOUTS)
        .replace(r#"refresh="2"/>"#, r#"refresh="2" buildhistory="true"/>"#);
    let root = make_root(
        dir.path(),
        &config,
        &[("update-all-default.txt", "config change CMD0 /x 1\n")],
    );
    let now = unix_now();
    seed_fleet(&root, now);
    more_devices(&root, now);
    let downloads = dir.path().join("downloads");
    std::fs::create_dir_all(&downloads).expect("downloads");
    let b = browser_or_skip(test, &downloads)?;
    let server = Server::start(&root, &[]);
    let base = format!("http://127.0.0.1:{}", server.http_port);
    b.goto(&format!("{base}/admin/admin.php"));
    b.log_in();
    Some((dir, root, b, server, base))
}

/// Makes the page's viewport `w`×`h` CSS pixels (the window's inside, as a user's screen).
fn size(b: &Browser, w: u32, h: u32) {
    b.cmd(
        "POST",
        "/window/rect",
        json!({ "width": w, "height": h + 200 }),
    )
    .expect("window size");
    b.cmd(
        "POST",
        "/goog/cdp/execute",
        json!({ "cmd": "Emulation.setDeviceMetricsOverride", "params": {
            "width": w, "height": h, "deviceScaleFactor": 1, "mobile": false } }),
    )
    .expect("viewport size");
}

/// Rows entirely on screen, the table's width, the viewport's size and the page's width.
fn measure(b: &Browser) -> Value {
    b.exec(
        "var vh = window.innerHeight, n = 0;\
         document.querySelectorAll('#devicestable tr[data-sn]').forEach(function (tr) {\
           var r = tr.getBoundingClientRect(); if (r.top >= 0 && r.bottom <= vh) n++; });\
         var first = document.querySelector('#devicestable tr[data-sn]');\
         return { rows: n, table: document.getElementById('devices').getBoundingClientRect().width,\
           vw: document.documentElement.clientWidth, vh: vh,\
           page: document.documentElement.scrollWidth,\
           first: first ? first.getBoundingClientRect().top : -1 };",
        json!([]),
    )
}

fn text_of(b: &Browser, css: &str) -> String {
    b.exec(
        "var e = document.querySelector(arguments[0]); return e ? e.innerText : '';",
        json!([css]),
    )
    .as_str()
    .unwrap_or_default()
    .to_string()
}

#[test]
fn the_fleet_is_on_the_first_screen() {
    let Some((_dir, _root, b, _server, base)) = setup("the_fleet_is_on_the_first_screen") else {
        return;
    };
    let page = format!("{base}/admin/admin.php");
    for (w, h, min_rows) in [(1400, 1000, 15), (1280, 800, 10)] {
        size(&b, w, h);
        b.goto(&page);
        b.wait_for("the device table", |b| {
            b.try_find("#devicestable tr[data-sn]").is_some()
        });
        // the CSR of the reception phone and both rollouts are on the page
        assert!(b.try_find("#rollout-r1").is_some() && b.try_find("#rollout-r2").is_some());
        assert!(text_of(&b, &format!("tr[data-sn=\"{SN_RECEPTION}\"]")).contains("CSR waiting"));
        let m = measure(&b);
        println!("{w}x{h}: {m}");
        std::fs::write(
            artifact(&format!("admin-first-screen-{w}x{h}.png")),
            b.screenshot(),
        )
        .expect("screenshot");
        let rows = m["rows"].as_u64().unwrap_or(0);
        assert!(rows >= min_rows, "{rows} rows visible at {w}x{h}: {m}");
        let (table, vw) = (
            m["table"].as_f64().unwrap_or(1e9),
            m["vw"].as_f64().unwrap_or(0.0),
        );
        assert!(
            table <= vw,
            "table {table} px wider than the window {vw} px"
        );
        assert!(
            m["page"].as_f64().unwrap_or(1e9) <= vw,
            "the page scrolls sideways: {m}"
        );
    }

    // a phone in two rollouts: the first in its cell, the other as `+1` naming it
    let cell = b.exec(
        "var c = document.querySelector('tr[data-sn=\"' + arguments[0] + '\"] .c-rollout');\
         var m = c && c.querySelector('.ro-more');\
         return c ? c.dataset.rollout + ' ' + (m ? m.dataset.rollouts + ' ' + m.title : '') : '';",
        json!([SN_RECEPTION]),
    );
    assert!(
        cell.as_str()
            .unwrap_or_default()
            .starts_with("r1 ntp also in: ntp wave 1: idle"),
        "{cell}"
    );

    // few tab stops before the filter (the folds hide their content)
    let stops = b.exec(
        "function hidden(e) {\
           for (var d = e.parentElement; d; d = d.parentElement) {\
             if (d.tagName === 'DETAILS' && !d.open) { var s = d.querySelector(':scope > summary'); if (!(s && s.contains(e))) return true; } }\
           return e.tabIndex < 0 || (e.offsetParent === null && e.tagName !== 'SUMMARY'); }\
         var all = Array.from(document.querySelectorAll('a[href], button, input:not([type=hidden]), summary, select'))\
           .filter(function (e) { return !hidden(e); });\
         var i = all.indexOf(document.getElementById('filter'));\
         return [i, all.slice(0, i).map(function (e) { return e.tagName + ':' + (e.textContent || '').slice(0, 20); })];",
        json!([]),
    );
    println!("tab stops before the filter: {stops}");
    assert!(stops[0].as_u64().is_some_and(|n| n <= 25), "{stops}");

    // the header stays at the top while the page scrolls
    b.exec("window.scrollTo(0, 700);", json!([]));
    let top = b.exec(
        "return document.querySelector('#devices thead').getBoundingClientRect().top;",
        json!([]),
    );
    assert!(
        top.as_f64().is_some_and(|t| t.abs() < 1.0),
        "thead at {top}"
    );

    // in a narrow window the page scrolls sideways and the serial column stays
    size(&b, 900, 800);
    b.goto(&page);
    b.wait_for("the table", |b| {
        b.try_find("#devicestable tr[data-sn]").is_some()
    });
    let left = b.exec(
        "window.scrollTo(400, 300);\
         return [window.scrollX, document.querySelector('#devicestable td.c-dev').getBoundingClientRect().left];",
        json!([]),
    );
    println!("900 px, scrolled sideways: [scrollX, serial cell left] = {left}");
    if left[0].as_f64().unwrap_or(0.0) > 0.0 {
        assert!(left[1].as_f64().is_some_and(|l| l.abs() < 1.0), "{left}");
    }

    // on a phone the table scrolls in its own box, a screen high: the header and the serial
    // column stay in place while the rows scroll down and sideways; the page itself does not
    // scroll sideways, not even with a rollout panel open
    for w in [600, 420] {
        size(&b, w, 800);
        b.goto(&page);
        b.wait_for("the table", |b| {
            b.try_find("#devicestable tr[data-sn]").is_some()
        });
        let m = b.exec(
            "var wrap = document.querySelector('.tablewrap'); wrap.scrollIntoView();\
             wrap.scrollTop = 300; wrap.scrollLeft = 300;\
             var top = wrap.getBoundingClientRect().top;\
             return [wrap.scrollTop, wrap.scrollLeft,\
               document.querySelector('#devices thead').getBoundingClientRect().top - top,\
               document.querySelector('#devicestable td.c-dev').getBoundingClientRect().left\
                 - wrap.getBoundingClientRect().left,\
               document.documentElement.scrollWidth, document.documentElement.clientWidth];",
            json!([]),
        );
        println!(
            "{w} px, table box scrolled [top, left, thead - box top, serial - box left, page width, viewport]: {m}"
        );
        assert!(
            m[0].as_f64().is_some_and(|t| t > 0.0),
            "the box scrolls down: {m}"
        );
        assert!(
            m[2].as_f64().is_some_and(|t| t.abs() < 1.0),
            "thead sticks: {m}"
        );
        assert!(
            m[3].as_f64().is_some_and(|l| l.abs() < 1.0),
            "serial sticks: {m}"
        );
        assert!(
            m[4].as_f64() <= m[5].as_f64(),
            "the page scrolls sideways: {m}"
        );
        let open = b.exec(
            "document.getElementById('rollout-r1').open = true;\
             return [document.documentElement.scrollWidth, document.documentElement.clientWidth];",
            json!([]),
        );
        assert!(
            open[0].as_f64() <= open[1].as_f64(),
            "an open panel at {w} px: {open}"
        );
        b.exec(
            "document.getElementById('rollout-r1').open = false;",
            json!([]),
        );
    }

    // the CSV links: with a BOM (spreadsheets) and without, both with the filter
    size(&b, 1400, 1000);
    b.goto(&format!("{page}?filter=ip232"));
    b.wait_for("the CSV links", |b| b.try_find("#csvplain").is_some());
    let links = b.exec(
        "return [document.getElementById('csv').getAttribute('href'),\
           document.getElementById('csvplain').getAttribute('href'),\
           document.querySelector('.csvlinks').innerText];",
        json!([]),
    );
    println!("CSV links: {links}");
    assert!(
        links[0]
            .as_str()
            .is_some_and(|h| h.contains("bom=1") && h.contains("filter=ip232")),
        "{links}"
    );
    assert!(
        links[1]
            .as_str()
            .is_some_and(|h| !h.contains("bom") && h.contains("filter=ip232")),
        "{links}"
    );
    assert!(
        links[2].as_str().is_some_and(|t| t.contains("BOM")),
        "{links}"
    );

    // the charts open on demand and stay open (remembered), a rollout likewise
    size(&b, 1400, 1000);
    b.goto(&page);
    let charts_open = |b: &Browser| {
        b.exec(
            "return document.querySelector('details.charts-fold').open;",
            json!([]),
        ) == json!(true)
    };
    assert!(!charts_open(&b));
    assert!(text_of(&b, "details.charts-fold > summary").contains("firmware:"));
    b.click_css("details.charts-fold > summary");
    b.wait_for("the charts", |b| charts_open(b));
    b.click_css("#rollout-r1 > summary");
    b.goto(&page);
    b.wait_for("the charts still open after a reload", |b| charts_open(b));
    assert_eq!(
        b.exec(
            "return document.getElementById('rollout-r1').open;",
            json!([])
        ),
        json!(true)
    );
    assert_eq!(
        b.exec(
            "return document.getElementById('rollout-r2').open;",
            json!([])
        ),
        json!(false)
    );
    // folded, a rollout says its phase and waves in its line
    let line = text_of(&b, "#rollout-r2 > summary");
    assert!(
        line.contains("Rollout r2") && line.contains("waves open"),
        "{line}"
    );
}

fn count_text(b: &Browser) -> String {
    text_of(b, "#count")
}

fn row_count(b: &Browser) -> usize {
    b.exec(
        "return document.querySelectorAll('#devicestable tr[data-sn]').length;",
        json!([]),
    )
    .as_u64()
    .unwrap_or(0) as usize
}

#[test]
fn filter_confirmations_and_error_pages() {
    let Some((_dir, root, b, server, base)) = setup("filter_confirmations_and_error_pages") else {
        return;
    };
    let page = format!("{base}/admin/admin.php");
    size(&b, 1400, 1000);
    b.goto(&page);
    b.wait_for("the table", |b| row_count(b) > 0);

    // accessibility basics: one h1, a skip link, a label for the filter, an announced count
    assert_eq!(text_of(&b, "h1"), "Devices");
    assert!(b.try_find("a.skip[href=\"#content\"]").is_some());
    assert!(b.try_find("label[for=\"filter\"]").is_some());
    assert!(b.try_find("#count[aria-live=\"polite\"]").is_some());
    let unnamed = b.exec(
        "return Array.from(document.querySelectorAll('button')).filter(function (x) {\
           var n = x.getAttribute('aria-label') || x.textContent; return !/[A-Za-z]/.test(n); }).length;",
        json!([]),
    );
    assert_eq!(unnamed, json!(0), "buttons named by their glyph only");
    assert!(text_of(&b, &format!("tr[data-sn=\"{SN_EVIL}\"] .c-seen")).contains("missing"));

    // the help lists every field: and is: term
    b.click_css("details.filterhelp > summary");
    let help = text_of(&b, "details.filterhelp");
    for t in [
        "sn:",
        "type:",
        "name:",
        "ip:",
        "phase:",
        "env:",
        "class:",
        "fw:",
        "boot:",
        "rollout:",
        "wave:",
        "is:missing",
        "is:present",
        "is:csr",
        "is:signed",
        "is:certerror",
        "is:fwpending",
        "is:unreadable",
    ] {
        assert!(help.contains(t), "{t} not in the help: {help}");
    }
    b.click_css("details.filterhelp > summary");

    // "/" goes to the filter
    b.exec(
        "document.activeElement && document.activeElement.blur();",
        json!([]),
    );
    b.cmd(
        "POST",
        "/actions",
        json!({ "actions": [{ "type": "key", "id": "kb", "actions": [
            { "type": "keyDown", "value": "/" }, { "type": "keyUp", "value": "/" }] }] }),
    )
    .expect("key");
    assert_eq!(
        b.exec("return document.activeElement.id;", json!([])),
        json!("filter")
    );

    // typing: in-between states neither say "undefined" nor empty the table
    let all = row_count(&b);
    let input = b.find("#filter");
    b.send_keys(&input, "is:");
    b.wait_for("the half-typed filter to be refused", |b| {
        count_text(b).contains("needs a value") || count_text(b).contains("unknown")
    });
    assert_eq!(row_count(&b), all, "the rows stay while typing");
    b.send_keys(&input, "missing");
    b.wait_for("the missing devices", |b| count_text(b).starts_with("1 of"));
    // a word being typed that matches nothing yet keeps the rows (no blank table)
    b.clear(&input);
    b.send_keys(&input, " ");
    b.wait_for("all rows again", |b| row_count(b) == all);
    b.send_keys(&input, "Recep");
    b.wait_for("the note that nothing matches yet", |b| {
        count_text(b).contains("yet")
    });
    assert_eq!(row_count(&b), all, "the rows stay while a word is typed");
    b.send_keys(&input, "tion");
    b.wait_for("the reception phone", |b| {
        count_text(b).starts_with("1 of") && row_count(b) == 1
    });
    b.clear(&input);
    b.send_keys(&input, "is:missing");
    b.wait_for("the missing device again", |b| {
        count_text(b).starts_with("1 of")
            && text_of(b, "#devicestable").contains(SN_EVIL)
            && b.url().contains("filter=is%3Amissing")
    });
    let body = text_of(&b, "body");
    assert!(!body.contains("undefined"), "{body}");
    // another filter, then Back returns to the previous one
    b.clear(&input);
    std::thread::sleep(std::time::Duration::from_millis(2100));
    b.send_keys(&input, "type:ip811");
    b.wait_for("the gateway", |b| {
        count_text(b).starts_with("1 of")
            && row_count(b) == 1
            && text_of(b, "#devicestable").contains("IP811")
    });
    b.cmd("POST", "/back", json!({})).expect("back");
    b.wait_for("the previous filter after Back", |b| {
        b.exec("return document.getElementById('filter').value;", json!([])) == json!("is:missing")
            && text_of(b, "#devicestable").contains(SN_EVIL)
    });
    assert!(
        b.url().contains("mode=status")
            || b.url().ends_with("admin.php")
            || b.url().contains("filter="),
        "{}",
        b.url()
    );

    // mark as seen asks first; cancelled, nothing happens
    let touch = format!("tr[data-sn=\"{SN_EVIL}\"] button[data-act=\"touch\"]");
    b.click_css(&touch);
    b.wait_for("the confirmation", |b| b.alert_text().is_some());
    b.cmd("POST", "/alert/dismiss", json!({})).expect("dismiss");
    assert!(b.try_find(&touch).is_some());
    b.click_css(&touch);
    b.wait_for("the confirmation", |b| b.alert_text().is_some());
    b.accept_alert();
    b.wait_for("the message", |b| {
        text_of(b, "#actionmsg").contains("marked as seen")
    });
    println!("after mark as seen: {}", text_of(&b, "#actionmsg"));

    // a rollout's abort asks first; pause says what was done
    b.goto(&page);
    b.exec(
        "document.getElementById('rollout-r1').open = true;",
        json!([]),
    );
    b.click_css("#rollout-r1 button[value=\"abort\"]");
    b.wait_for("the confirmation", |b| b.alert_text().is_some());
    assert!(b.alert_text().is_some_and(|t| t.contains("r1")));
    b.cmd("POST", "/alert/dismiss", json!({})).expect("dismiss");
    assert_ne!(
        b.exec(
            "return document.getElementById('rollout-r1').dataset.phase;",
            json!([])
        ),
        json!("aborted")
    );
    b.click_css("#rollout-r1 button[value=\"pause\"]");
    b.wait_for("the message after pause", |b| {
        text_of(b, "main").contains("Rollout r1 paused")
    });

    // error pages: HTML with the navigation and a way back
    for (target, words) in [
        ("/admin/admin.php?mode=nonsense", "unknown mode=nonsense"),
        (
            "/admin/admin.php?mode=backup&sn=00-90-33-30-00-a1&n=99",
            "backup",
        ),
        (
            "/admin/admin.php?mode=ui&cmd=deliverfile&fn=..%2Fetc%2Fpasswd",
            "",
        ),
    ] {
        b.goto(&format!("{base}{target}"));
        b.wait_for("the error page", |b| {
            b.try_find("section.errorpage").is_some()
        });
        assert!(
            text_of(&b, "h1").starts_with("Error 4"),
            "{target}: {}",
            text_of(&b, "h1")
        );
        assert!(text_of(&b, ".errorpage").contains(words), "{target}");
        assert!(
            b.try_find("header nav a[href*=\"mode=status\"]").is_some(),
            "{target}"
        );
    }
    b.click_css("section.errorpage a[href*=\"mode=status\"]:not([data-back])");
    b.wait_for("the devices again", |b| b.try_find("#devices").is_some());
    // the device endpoints keep PHP's text answers
    let r = server.get("/update.php?mode=frob");
    assert!(r.text().starts_with("# unknown cmd=frob"), "{}", r.text());
    let _ = root;
}

#[test]
fn a_page_per_device() {
    let Some((_dir, root, b, server, base)) = setup("a_page_per_device") else {
        return;
    };
    // two polls that report new builds: the page shows the changes, newest first
    for (prot, boot) in [("131065", "130150"), ("131065", "131000")] {
        let r = server.get(&format!(
            "/update.php?polling=5&phase=update&hwid=IP232-30-00-a1&ip=172.16.1.21\
             &sn={SN_RECEPTION}&type=IP232&PROT={prot}&BOOT={boot}"
        ));
        assert_eq!(r.status, 200, "{}", r.text());
    }
    // a second backup, so that two versions can be compared
    let hwid = format!("IP232-{}", &SN_RECEPTION[9..]);
    std::fs::write(
        root.join(format!("backup/{hwid}/{hwid}.2.txt")),
        "config change CMD0 /name y\r\n",
    )
    .expect("backup");
    size(&b, 1400, 1000);
    b.goto(&format!("{base}/admin/admin.php"));
    b.click_css(&format!("tr[data-sn=\"{SN_RECEPTION}\"] a.sn"));
    b.wait_for("the device page", |b| b.url().contains("mode=device"));
    let h1 = text_of(&b, "h1");
    assert!(
        h1.contains(SN_RECEPTION) && h1.contains("Reception"),
        "{h1}"
    );
    let page = text_of(&b, "main");
    for words in [
        "Identity",
        "IP232",
        // the classes (the polls above set them as the update script says)
        "ip232",
        "update",
        "default",
        "130100",
        "130150",
        "Staged rollouts",
        "r1",
        "Certificate",
        "CSR waiting for signature",
        "Query results",
        "Message log",
        "Backups",
        "Delivered snippets",
    ] {
        assert!(
            page.contains(words),
            "{words} not on the device page:\n{page}"
        );
    }
    // how the device last proved itself, the build changes newest first with dates, what
    // the rollout recorded
    assert!(text_of(&b, "dl.attrs").contains("Last proved"), "{page}");
    let changes = b.exec(
        "return Array.from(document.querySelectorAll('table.builds tbody tr')).map(function (tr) {\
           return Array.from(tr.cells).map(function (c) { return c.innerText; }); });",
        json!([]),
    );
    println!("build changes on the device page: {changes}");
    let rows = changes.as_array().expect("rows");
    assert_eq!(rows.len(), 2, "{changes}");
    assert_eq!(rows[0][1], json!("boot code"), "newest first: {changes}");
    assert_eq!(rows[0][2], json!("130150"));
    assert_eq!(rows[0][3], json!("131000"));
    assert_eq!(rows[1][1], json!("firmware"));
    assert_eq!(rows[1][2], json!("130100"));
    assert_eq!(rows[1][3], json!("131065"));
    assert!(
        rows[0][0].as_str().is_some_and(|d| d.ends_with(" UTC")),
        "{changes}"
    );
    let rollout = text_of(&b, "table.rollouts");
    assert!(
        rollout.contains("Recorded") && rollout.contains("wave"),
        "{rollout}"
    );
    // the message log: newest first, absolute dates
    let first = text_of(&b, "ol.devlog > li");
    assert!(first.contains(" UTC"), "{first}");
    // the polls above come first, the seeded poll's line last
    assert!(first.contains("certificates:"), "{first}");
    let last = text_of(&b, "ol.devlog > li:last-child");
    assert!(
        last.contains(&format!("log line of {SN_RECEPTION}")),
        "{last}"
    );
    std::fs::write(artifact("admin-device-page.png"), b.full_screenshot()).expect("shot");

    // compare with only A chosen: the page says what is missing
    b.click_css("input[name=\"a\"][value=\"1\"]");
    b.exec("document.querySelectorAll('input[type=radio]').forEach(function (r) { r.required = false; });", json!([]));
    b.click_css("#compare");
    b.wait_for("the error page", |b| {
        b.try_find("section.errorpage").is_some()
    });
    assert!(text_of(&b, ".errorpage").contains("choose two versions"));
    b.cmd("POST", "/back", json!({})).expect("back");
    b.wait_for("the device page again", |b| {
        b.try_find("#compare").is_some()
    });
    b.click_css("input[name=\"a\"][value=\"1\"]");
    b.click_css("input[name=\"b\"][value=\"2\"]");
    b.click_css("#compare");
    b.wait_for("the diff", |b| b.try_find("table.diff").is_some());
    assert!(
        text_of(&b, "main").contains(" UTC"),
        "dates on the diff page"
    );
    b.click_css("p.back a");
    b.wait_for("back on the device page", |b| {
        b.url().contains("mode=device")
    });

    // marking a missing device as seen on its page asks first and then says so there
    b.goto(&format!("{base}/admin/admin.php?mode=device&sn={SN_EVIL}"));
    b.wait_for("the missing device's page", |b| {
        b.try_find("button[data-act=\"touch\"]").is_some()
    });
    b.click_css("button[data-act=\"touch\"]");
    b.wait_for("the confirmation", |b| b.alert_text().is_some());
    b.accept_alert();
    b.wait_for(
        "the message on the device page after it loaded again",
        |b| {
            text_of(b, "main").contains("marked as seen")
                && b.try_find("button[data-act=\"touch\"]").is_none()
        },
    );
    assert!(b.url().contains("mode=device"), "{}", b.url());

    // an unknown device: an error page with the navigation
    b.goto(&format!(
        "{base}/admin/admin.php?mode=device&sn=00-90-33-99-99-99"
    ));
    b.wait_for("the error page", |b| {
        b.try_find("section.errorpage").is_some()
    });
    assert!(text_of(&b, "h1").starts_with("Error 404"));
}
