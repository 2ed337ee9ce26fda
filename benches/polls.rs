//! Polls per second of a realistic installation, measured against the real server on
//! loopback: 200 snippet files, 5 phases, 10 environments, 10,000 device state files.
//!
//! `cargo bench --bench polls` (add `-- --seconds 10 --threads 4` to change the load).
//! `-- --root DIR` builds the installation in DIR and keeps it; `--external URL` also loads
//! another server that serves the same installation under URL (e.g. the PHP server under
//! lighttpd with DIR as its installation directory) in the same run, for a ratio.
//! Client threads poll random devices over keep-alive connections; each scenario runs for
//! the given time. A static file of the same installation is fetched the same way in the
//! same run, as the ceiling of the HTTP stack on this machine, so the figures can be read as
//! a ratio.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const DEVICES: usize = 10_000;
const PHASES: [&str; 5] = ["p1", "p2", "p3", "p4", "update"];
const ENVS: usize = 10;
const CLASSES: [&str; 5] = ["all", "phone", "pre_opus_phone", "phone_newui", "ip232"];

fn serial(i: usize) -> String {
    format!(
        "00-90-33-{:02x}-{:02x}-{:02x}",
        (i >> 16) & 0xff,
        (i >> 8) & 0xff,
        i & 0xff
    )
}

fn build_installation(root: &Path) {
    std::fs::create_dir_all(root.join("config")).expect("config dir");
    std::fs::create_dir_all(root.join("scripts")).expect("scripts dir");
    std::fs::create_dir_all(root.join("status")).expect("status dir");
    std::fs::create_dir_all(root.join("fw/130178")).expect("fw dir");
    let mut envs = String::new();
    for e in 0..ENVS {
        if e > 0 {
            envs.push_str(&format!(
                "<environment id=\"site{e}\"><implies>site0</implies></environment>"
            ));
        } else {
            envs.push_str("<environment id=\"site0\"/>");
        }
    }
    let phases: String = PHASES[..4]
        .iter()
        .enumerate()
        .map(|(i, p)| format!("<phase id=\"{p}\" seq=\"{}\"/>", 10 + i))
        .collect();
    let cfg = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<config>
    <master info="none" firmware="130178" bootcode="firmware"/>
    <status dir="status"/>
    <backup dir="backup"/>
    <phases>{phases}</phases>
    <environments>{envs}</environments>
    <queries><query id="admin"><applies>*</applies></query><query id="certificates"><applies>phone</applies></query></queries>
</config>"#
    );
    std::fs::write(root.join("config/user-config.xml"), cfg).expect("user config");
    // 200 snippets: every phase x class for site0 and the first three sites, plus others
    let mut n = 0;
    let old = std::time::SystemTime::now() - Duration::from_secs(86400);
    'outer: for p in PHASES.iter().chain(["all"].iter()) {
        for c in CLASSES.iter().chain(["gw", "pbx"].iter()) {
            for e in 0..ENVS {
                let name = format!("{p}-{c}-site{e}.txt");
                let mut body = String::new();
                for l in 0..20 {
                    body.push_str(&format!(
                        "config add MOD{l} /opt{n} value-{p}-{c}-{e}-{l}\n"
                    ));
                }
                let path = root.join("scripts").join(name);
                std::fs::write(&path, body).expect("snippet");
                std::fs::File::options()
                    .write(true)
                    .open(&path)
                    .and_then(|f| f.set_modified(old))
                    .expect("mtime");
                n += 1;
                if n == 200 {
                    break 'outer;
                }
            }
        }
    }
    for i in 0..DEVICES {
        let sn = serial(i);
        let state = format!(
            r#"<?xml version="1.0"?>
<state seen="1700000000"><device sn="{sn}" type="IP232" classes="phone, pre_opus_phone, phone_newui, ip232" ip="10.0.{a}.{b}" rp="false" phase="update" environments="site{e}, site0" requestDownloaded="false" certstat="OK" hwid="IP232-{h}" realip="10.0.{a}.{b}"/><firmware build="130178"/><bootcode build="130178"/><queries><admin seen="1700000000"><info name="Phone {i}" type="IP232"/></admin></queries><config filename="scripts/update-all-site0.txt" delivered="1700000000" version="1690000000"/><msgs time="1700000000" msg=""/><msgs time="1700000000" msg="phase: update, nextphase: , environment: site{e}+site0"/></state>
"#,
            a = (i >> 8) & 0xff,
            b = i & 0xff,
            e = i % ENVS,
            h = &sn[9..],
        );
        std::fs::write(root.join("status").join(format!("{sn}.xml")), state).expect("state");
    }
    std::fs::write(root.join("fw/130178/ip232.bin"), vec![0u8; 4096]).expect("fw file");
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

struct ServerGuard(Child);

impl Drop for ServerGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One keep-alive request; returns the body length.
fn request(
    conn: &mut BufReader<TcpStream>,
    addr: SocketAddr,
    target: &str,
) -> std::io::Result<usize> {
    let req = format!("GET {target} HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    conn.get_mut().write_all(req.as_bytes())?;
    let mut status = String::new();
    conn.read_line(&mut status)?;
    if !status.starts_with("HTTP/1.1 200") {
        return Err(std::io::Error::other(format!(
            "unexpected answer: {status}"
        )));
    }
    let mut len = 0usize;
    loop {
        let mut line = String::new();
        conn.read_line(&mut line)?;
        if line == "\r\n" || line.is_empty() {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0u8; len];
    conn.read_exact(&mut body)?;
    Ok(len)
}

/// Runs `threads` clients for `secs`, each asking `target(thread, n)`; returns requests/s.
fn load(
    addr: SocketAddr,
    threads: usize,
    secs: u64,
    target: Arc<dyn Fn(usize, u64) -> String + Send + Sync>,
) -> f64 {
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (stop, count, target) = (stop.clone(), count.clone(), target.clone());
            std::thread::spawn(move || {
                let mut conn = BufReader::new(TcpStream::connect(addr).expect("connect"));
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let t = target(t, n);
                    if let Err(e) = request(&mut conn, addr, &t) {
                        panic!("request {t}: {e}");
                    }
                    n += 1;
                }
                count.fetch_add(n, Ordering::Relaxed);
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(secs));
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        h.join().expect("client thread");
    }
    count.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    let mut secs = 5u64;
    let mut threads = 4usize;
    let mut keep_root: Option<std::path::PathBuf> = None;
    let mut external: Option<String> = None;
    let args: Vec<String> = std::env::args().collect();
    for w in args.windows(2) {
        match w[0].as_str() {
            "--seconds" => secs = w[1].parse().unwrap_or(secs),
            "--threads" => threads = w[1].parse().unwrap_or(threads),
            "--root" => keep_root = Some(w[1].clone().into()),
            "--external" => external = Some(w[1].clone()),
            _ => {}
        }
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let root = keep_root.unwrap_or_else(|| dir.path().join("root"));
    eprintln!(
        "building the installation (200 snippets, 5 phases, {ENVS} environments, {DEVICES} devices)…"
    );
    build_installation(&root);
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_update-server"))
        .args(["serve", "--root"])
        .arg(&root)
        .args(["--http", &format!("127.0.0.1:{port}")])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start server");
    let _guard = ServerGuard(child);
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let poll_target = |check: bool| {
        move |t: usize, n: u64| {
            let i = (n as usize * 7919 + t * 104729) % DEVICES;
            let sn = serial(i);
            let e = i % ENVS;
            let check = if check { "&CHECK=stale" } else { "" };
            format!(
                "/update.php?type=IP232&sn={sn}&hwid=IP232-{}&ip=10.0.0.1&env=site{e}&phase=update&polling=0&PROT=130178&BOOT=130178{check}",
                &sn[9..]
            )
        }
    };
    // warm up: every device's state once, so the figures show the steady state
    let warm = load(addr, threads, 2, Arc::new(poll_target(false)));
    eprintln!("warm-up: {warm:.0} polls/s");
    let full = load(addr, threads, secs, Arc::new(poll_target(false)));
    let stat = load(
        addr,
        threads,
        secs,
        Arc::new(|_, _| "/fw/130178/ip232.bin".to_string()),
    );
    println!("polls (full script, state written): {full:>8.0} /s");
    println!("static 4 KiB file (HTTP ceiling):   {stat:>8.0} /s");
    println!("ratio poll / static file:           {:>8.2}", full / stat);
    if let Some(url) = external {
        let rest = url
            .strip_prefix("http://")
            .expect("--external takes an http:// URL");
        let (hostport, path) = rest.split_once('/').unwrap_or((rest, ""));
        let ext: SocketAddr = hostport
            .parse()
            .expect("--external host:port must be an address");
        let prefix = if path.is_empty() {
            String::new()
        } else {
            format!("/{}", path.trim_end_matches('/'))
        };
        let target = poll_target(false);
        let ext_rate = load(
            ext,
            threads,
            secs,
            Arc::new(move |t, n| format!("{prefix}{}", target(t, n))),
        );
        println!("external server polls:              {ext_rate:>8.0} /s");
        println!(
            "ratio this server / external:       {:>8.2}",
            full / ext_rate
        );
    }
    println!(
        "({threads} client threads, {secs} s each, {} CPUs)",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
}
