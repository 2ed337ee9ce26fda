//! How fast is the status page of a large fleet?
//!
//! `cargo bench --bench status_page [-- DEVICES]` (default 10 000 devices) writes a fleet of
//! state files (with message logs, snippets, query results; CSRs for some devices, backups
//! for others) into a temporary installation and measures, on this machine:
//!
//! 1. **PHP-like**: what the PHP server does on every view — read and parse every state
//!    file, list every device's backups, evaluate the `show` expressions, render all rows
//!    (our code without its caches);
//! 2. **first view**: the page through the real HTTP stack on loopback, caches empty, and
//!    after the warm-up `serve` runs at start;
//! 3. **next views**: what an administrator gets afterwards (summary of all devices, the
//!    first 250 rows), plain and gzipped;
//! 4. **all rows**: the same with `rows=all` (the whole table, as PHP shows it);
//! 5. **1 % changed**: next views while 1 % of the devices polled in between;
//! 6. **filter**: the request the filter box sends.
//!
//! Each figure is the median of several runs, with min and max; the ratio PHP-like / next
//! view is printed at the end. Nothing here is a test: figures vary with the machine.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use update_server::admin::{files, status, view};
use update_server::app::App;
use update_server::state::{Loaded, StateStore};
use update_server::{conn, server};

const CONFIG: &str = r#"<config>
    <master info="" user="admin" password="secret"/>
    <status dir="status" missing="86400" refresh="0"/>
    <backup dir="backup"/>
    <customcerts dir="certs" CAname="Test CA"/>
    <queries>
        <query id="admin" title="Admin"><applies>*</applies>
            <show title="Name">string(/state/queries/admin/info/@name)</show>
        </query>
        <query id="registration" title="Registration"><applies>phone</applies>
            <show title="State: User/Number">concat(/state/queries/registration/info/reg[@id = "0"]/@state, ': ', /state/queries/registration/info/reg[@id = "0"]/@h323, '/', /state/queries/registration/info/reg[@id = "0"]/@e164)</show>
            <show title="PBX">concat(/state/queries/registration/info/reg[@id = "0"]/@gk-addr, '/', /state/queries/registration/info/reg[@id = "0"]/@gk-id)</show>
        </query>
    </queries>
</config>"#;

fn sn_of(i: usize) -> String {
    format!(
        "00-90-33-{:02x}-{:02x}-{:02x}",
        (i >> 16) & 0xff,
        (i >> 8) & 0xff,
        i & 0xff
    )
}

fn state(i: usize, now: i64) -> String {
    let sn = sn_of(i);
    let types = ["IP232", "IP222", "IP112", "IP811", "IP1060"];
    let ty = types[i % types.len()];
    let hwid = format!("{ty}-{}", &sn[9..]);
    let seen = now - (i as i64 % 200_000);
    let fw = if i % 3 == 0 { "130100" } else { "130160" };
    let mut s = format!(
        "<?xml version=\"1.0\"?>\n<state seen=\"{seen}\"><device sn=\"{sn}\" type=\"{ty}\" classes=\"phone, pre_opus_phone, phone_newui, {lty}\" ip=\"10.{}.{}.{}\" rp=\"false\" phase=\"update\" environments=\"default, site{}\" requestDownloaded=\"false\" certstat=\"CN {hwid}: ok\" hwid=\"{hwid}\" realip=\"10.{}.{}.{}\" backup=\"{seen}\"/>",
        (i >> 16) & 0xff,
        (i >> 8) & 0xff,
        i & 0xff,
        i % 7,
        (i >> 16) & 0xff,
        (i >> 8) & 0xff,
        i & 0xff,
        lty = ty.to_lowercase()
    );
    s.push_str(&format!(
        "<firmware requested=\"130160\" requested-at=\"{seen}\" build=\"{fw}\"/><bootcode build=\"130150\"/>"
    ));
    s.push_str(&format!(
        "<queries><admin seen=\"{seen}\"><info name=\"Phone {i} &lt;desk&gt;\" type=\"{ty}\"/></admin><certificates seen=\"{seen}\"><info><servercert><certificate subject_cn=\"{hwid}\" issuer_cn=\"Test CA\" not_before=\"2024-01-01 00:00:00\" not_after=\"2034-01-01 00:00:00\"/></servercert></info></certificates><registration seen=\"{seen}\"><info><reg id=\"0\" state=\"up\" h323=\"user{i}\" e164=\"{}\" gk-addr=\"10.0.0.10\" gk-id=\"master\"/></info></registration></queries>",
        1000 + i
    ));
    s.push_str(&format!("<msgs time=\"{seen}\" msg=\"\"/>"));
    for m in [
        "phase: update, nextphase: , environment: default, type: IP232, classes: phone+pre_opus_phone+phone_newui+ip232",
        "backup: last backup is current",
        "firmware: current firmware (130160) is the required one",
        "boot code: current boot code (130150) is the required one",
        "certificates: CN ok, issuer Test CA",
        "considered scripts/update-all-default.txt, scripts/update-phone-default.txt",
        "nothing to deliver",
        "turn off fast polling",
    ] {
        s.push_str(&format!("<msgs time=\"{seen}\" msg=\"{m}\"/>"));
    }
    for f in [
        "update-all-default",
        "update-phone-default",
        "update-phone-site",
    ] {
        s.push_str(&format!(
            "<config filename=\"scripts/{f}.txt\" delivered=\"{seen}\" version=\"{}\"/>",
            seen - 86400
        ));
    }
    s.push_str("</state>\n");
    s
}

fn write_fleet(root: &Path, n: usize, now: i64) {
    std::fs::create_dir_all(root.join("config")).expect("mkdir");
    std::fs::create_dir_all(root.join("status")).expect("mkdir");
    std::fs::create_dir_all(root.join("certs")).expect("mkdir");
    std::fs::write(root.join("config/user-config.xml"), CONFIG).expect("config");
    for i in 0..n {
        std::fs::write(
            root.join("status").join(format!("{}.xml", sn_of(i))),
            state(i, now),
        )
        .expect("state");
        if i % 20 == 0 {
            std::fs::write(
                root.join("certs")
                    .join(format!("{}-request.p10.der", sn_of(i))),
                b"csr",
            )
            .expect("csr");
        }
        if i % 4 == 0 {
            let types = ["IP232", "IP222", "IP112", "IP811", "IP1060"];
            let sn = sn_of(i);
            let hwid = format!("{}-{}", types[i % types.len()], &sn[9..]);
            let d = root.join("backup").join(&hwid);
            std::fs::create_dir_all(&d).expect("mkdir");
            for k in 1..=3 {
                std::fs::write(d.join(format!("{hwid}.{k}.txt")), "config change X\r\n")
                    .expect("backup");
            }
        }
    }
}

/// What the PHP server does per view: parse every state file again, list every device's
/// backups, then render.
fn php_like_view(root: &Path, cfg: &Arc<update_server::config::Config>, now: i64) -> usize {
    let store = StateStore::new(root.join("status"));
    let entries: Vec<(String, Loaded)> = store.all().into_iter().map(|(k, l, _)| (k, l)).collect();
    let groups = view::show_groups(cfg);
    let views: Vec<Arc<view::DeviceView>> = entries
        .iter()
        .map(|(k, l)| Arc::new(view::DeviceView::from_state(k, l, &groups)))
        .collect();
    let certs = files::CertIndex::read(root, cfg.customcerts.as_ref());
    let backups = update_server::backup::BackupCache::default();
    let rows: Vec<status::Row> = views
        .into_iter()
        .map(|v| status::Row {
            certs: cfg
                .customcerts
                .as_ref()
                .map(|cc| certs.state(cc, &v.key))
                .unwrap_or_default(),
            backups: backups.list(root, "backup", &v.hwid),
            view: v,
        })
        .collect();
    let groups = view::show_groups(cfg);
    let ctx = status::RenderCtx {
        cfg,
        prefix: "",
        csrf: "x",
        now,
        groups: &groups,
        master: status::MasterBuilds::default(),
        rollouts: None,
        device_page: false,
    };
    status::render_body(&ctx, &rows, "", rows.len(), usize::MAX).len()
}

/// Where the time of a view with warm caches goes (in-process, no HTTP).
fn breakdown(root: &Path, cfg: &Arc<update_server::config::Config>, now: i64) -> [Duration; 4] {
    let store = Arc::new(StateStore::new(root.join("status")));
    store.configure(cfg);
    store.scan(false);
    store.index().wait_complete(Duration::from_secs(600));
    let mut out = [Duration::ZERO; 4];
    for round in 0..2 {
        let t0 = Instant::now();
        let t1 = Instant::now();
        let (views, _) = store.index().views(|_| true);
        let t2 = Instant::now();
        let certs = files::CertIndex::read(root, cfg.customcerts.as_ref());
        let rows: Vec<status::Row> = views
            .into_iter()
            .map(|v| status::Row {
                certs: cfg
                    .customcerts
                    .as_ref()
                    .map(|cc| certs.state(cc, &v.key))
                    .unwrap_or_default(),
                backups: Arc::new(Vec::new()),
                view: v,
            })
            .collect();
        let t3 = Instant::now();
        let groups = view::show_groups(cfg);
        let ctx = status::RenderCtx {
            cfg,
            prefix: "",
            csrf: "x",
            now,
            groups: &groups,
            master: status::MasterBuilds::default(),
            rollouts: None,
            device_page: false,
        };
        let html = status::render_body(&ctx, &rows, "", rows.len(), usize::MAX);
        let t4 = Instant::now();
        assert!(!html.is_empty());
        if round == 1 {
            out = [t1 - t0, t2 - t1, t3 - t2, t4 - t3];
        }
    }
    out
}

/// One GET of `target` over loopback HTTP; returns (time until the last byte, bytes).
fn fetch(addr: SocketAddr, cookie: &str, target: &str, extra: &str) -> (Duration, usize) {
    let t = Instant::now();
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    write!(
        s,
        "GET {target} HTTP/1.1\r\nHost: {addr}\r\nCookie: {cookie}\r\n{extra}Connection: close\r\n\r\n"
    )
    .expect("request");
    let mut buf = Vec::with_capacity(32 << 20);
    s.read_to_end(&mut buf).expect("response");
    let el = t.elapsed();
    assert!(buf.starts_with(b"HTTP/1.1 200"), "{target} answered");
    (el, buf.len())
}

/// `runs` GETs of `target`: (median, min, max, bytes of the last answer).
fn measure(
    addr: SocketAddr,
    cookie: &str,
    target: &str,
    extra: &str,
    runs: usize,
) -> (Duration, Duration, Duration, usize) {
    let mut times = Vec::new();
    let mut bytes = 0;
    for _ in 0..runs {
        let (t, b) = fetch(addr, cookie, target, extra);
        times.push(t);
        bytes = b;
    }
    let (med, min, max) = stats(times);
    (med, min, max, bytes)
}

fn stats(mut v: Vec<Duration>) -> (Duration, Duration, Duration) {
    v.sort();
    (v[v.len() / 2], v[0], v[v.len() - 1])
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(10_000);
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().expect("tmp");
    let root = dir.path().to_path_buf();
    let now = update_server::clock::now();
    let t = Instant::now();
    write_fleet(&root, n, now);
    println!(
        "fleet: {n} devices written in {} ({} cores)",
        ms(t.elapsed()),
        std::thread::available_parallelism().map_or(1, |p| p.get())
    );
    let cfg = Arc::new(update_server::config::Config::load(&root).expect("config"));

    // 1. PHP-like
    let mut php = Vec::new();
    let mut size = 0;
    for _ in 0..5 {
        let t = Instant::now();
        size = php_like_view(&root, &cfg, now);
        php.push(t.elapsed());
    }
    let (php_med, php_min, php_max) = stats(php);

    // 2.-4. the real server on loopback
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let app = Arc::new(App::new(root.clone(), ""));
    let session = app.admin.sessions.create("admin");
    let cookie = format!("update_server_session={}", session.token);
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    rt.spawn(conn::serve_plain(
        listener,
        conn::Serving::new(
            server::router(app.clone()),
            update_server::conn_guard::Limits::new(Duration::from_secs(30), 4096),
        ),
    ));

    const PAGE: &str = "/admin/admin.php?mode=status";
    const ALL: &str = "/admin/admin.php?mode=status&rows=all";
    const FILTER: &str = "/admin/admin.php?mode=ui&cmd=rows&filter=ip811+site3";
    let (first, _) = fetch(addr, &cookie, PAGE, "");
    // a second server, warmed up at start as `serve` does
    let warmed = Arc::new(App::new(root.clone(), ""));
    let t = Instant::now();
    let w = warmed.clone();
    rt.block_on(async move { update_server::admin::warm_up(w).await })
        .expect("warm-up");
    let warm_up = t.elapsed();
    let session2 = warmed.admin.sessions.create("admin");
    let cookie2 = format!("update_server_session={}", session2.token);
    let listener2 = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let addr2 = listener2.local_addr().expect("addr");
    rt.spawn(conn::serve_plain(
        listener2,
        conn::Serving::new(
            server::router(warmed.clone()),
            update_server::conn_guard::Limits::new(Duration::from_secs(30), 4096),
        ),
    ));
    let (first_warmed, _) = fetch(addr2, &cookie2, PAGE, "");
    let page = measure(addr, &cookie, PAGE, "", 10);
    let all = measure(addr, &cookie, ALL, "", 5);
    let gz = measure(addr, &cookie, PAGE, "Accept-Encoding: gzip\r\n", 10);
    let all_gz = measure(addr, &cookie, ALL, "Accept-Encoding: gzip\r\n", 5);
    let filter = measure(addr, &cookie, FILTER, "", 10);
    let mut changed = Vec::new();
    for round in 0..5 {
        for i in (round..n).step_by(100) {
            let later = now + 60 + round as i64;
            std::fs::write(
                root.join("status").join(format!("{}.xml", sn_of(i))),
                state(i, later),
            )
            .expect("state");
        }
        changed.push(fetch(addr, &cookie, PAGE, "").0);
    }
    let changed = stats(changed);
    let b = breakdown(&root, &cfg, now);

    let line = |what: &str, m: (Duration, Duration, Duration, usize)| {
        println!(
            "{what:<44} median {:>9}  (min {}, max {}), {} bytes",
            ms(m.0),
            ms(m.1),
            ms(m.2),
            m.3
        );
    };
    println!(
        "{:<44} median {:>9}  (min {}, max {}), {} bytes of rows",
        "1. PHP-like: parse every file, render all",
        ms(php_med),
        ms(php_min),
        ms(php_max),
        size
    );
    println!(
        "{:<44} {:>9}",
        "2. first view, cold caches (250 rows)",
        ms(first)
    );
    println!(
        "{:<44} {:>9}  (warm-up at start took {})",
        "   first view after the start-up warm-up",
        ms(first_warmed),
        ms(warm_up)
    );
    line("3. next views (250 rows + summary)", page);
    line("   the same, gzip (as browsers ask)", gz);
    line("4. next views, all rows (rows=all)", all);
    line("   the same, gzip", all_gz);
    println!(
        "{:<44} median {:>9}  (min {}, max {})",
        "5. next views, 1 % of devices changed",
        ms(changed.0),
        ms(changed.1),
        ms(changed.2)
    );
    line("6. filter request (cmd=rows, 2 words)", filter);
    println!(
        "   all rows in-process, warm: list+stat states {}, views {}, files {}, render {}",
        ms(b[0]),
        ms(b[1]),
        ms(b[2]),
        ms(b[3])
    );
    println!(
        "ratios: PHP-like / next view {:.1}x, PHP-like / all rows {:.1}x",
        php_med.as_secs_f64() / page.0.as_secs_f64().max(1e-9),
        php_med.as_secs_f64() / all.0.as_secs_f64().max(1e-9)
    );
}
