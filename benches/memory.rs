//! Memory of the real server (resident set, `VmRSS` in `/proc/PID/status`) under what
//! devices and administrators can make it keep: a large fleet, a large query result, the
//! device list over the whole fleet, and a restart on that fleet.
//!
//! `cargo bench --bench memory` (`-- --devices 100000 --threads 4` to change the fleet,
//! `-- --server 'state-cache="0"'` for attributes of `<server>`, `-- --trace` for the
//! resident set after every page of the device list).
//! Steps, each reported with the resident set before and after:
//! 1. the server starts on an empty installation (state, backups and two queries on);
//! 2. `--devices` distinct devices poll once each (new serial numbers), then all of them again
//!    and again for `--repeat` seconds (20): the resident set, the cost per device, and what
//!    the state cache charges itself (`update_server_state_cache_bytes`);
//! 3. one device sends a 16 MiB query result (`PUT update.php?mode=query&id=admin`), which
//!    the server refuses beyond `server/@max-query`; then a 16 MiB `mode=vardump` (highest
//!    resident set while it runs), and with `--hostile SECS` random hostile requests over
//!    10,000 devices for SECS seconds (random arguments, bodies for query/backup/vardump,
//!    form posts, `fw/` and admin paths);
//! 4. an API client reads the whole device list, page by page (`api/devices?limit=1000`)
//!    and as CSV (`api/devices.csv`);
//! 5. the server is stopped and started again on the same root: the time until the first
//!    poll is answered, and the resident set once the device index is built.
//!
//! `MEMORY_BENCH_SERVER_LOG=FILE` appends the servers' standard error to FILE (with
//! `MIMALLOC_SHOW_STATS=1`: the allocator's statistics at each stop), `MEMORY_BENCH_KEEP=1`
//! keeps the installation (its path is printed).
//!
//! Linux only (it reads `/proc`).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const TOKEN: &str = "bench-token-0123456789";

fn serial(i: usize) -> String {
    format!(
        "00-90-34-{:02x}-{:02x}-{:02x}",
        (i >> 16) & 0xff,
        (i >> 8) & 0xff,
        i & 0xff
    )
}

fn build_installation(root: &Path, server_attrs: &str) {
    for d in ["config", "scripts", "status", "backup"] {
        std::fs::create_dir_all(root.join(d)).expect("installation dir");
    }
    let config = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<config>
    <master info="none" firmware="130178" bootcode="firmware"/>
    <status dir="status" missing="604800" expire="7776000"/>
    <backup dir="backup"/>
    <times check="true" grace="90"/>
    <environments><environment id="site"/></environments>
    <queries>
        <query id="admin"><applies>*</applies></query>
        <query id="certificates"><applies>phone</applies></query>
    </queries>
    <customcerts dir="certs" CAname="Bench CA"/>
    <api token="{TOKEN}"/>
    <server {server_attrs}/>
</config>
"#
    );
    std::fs::write(root.join("config/user-config.xml"), config).expect("config");
    for (i, name) in ["all-all-all.txt", "all-phone-all.txt", "all-ip232-site.txt"]
        .iter()
        .enumerate()
    {
        let body = format!("# bench snippet {i}\r\nconfig change SNTP0 ADDR 10.0.0.{i}\r\n");
        std::fs::write(root.join("scripts").join(name), body).expect("snippet");
    }
    let old = std::time::SystemTime::now() - Duration::from_secs(2 * 86_400);
    for e in std::fs::read_dir(root.join("scripts")).expect("scripts") {
        let f = std::fs::File::options()
            .write(true)
            .open(e.expect("entry").path())
            .expect("open snippet");
        f.set_modified(old).expect("mtime");
    }
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

struct ServerGuard(Child);

impl Drop for ServerGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The server's standard error goes to the file `MEMORY_BENCH_SERVER_LOG` names (appended),
/// else nowhere.
fn server_stderr() -> Stdio {
    std::env::var_os("MEMORY_BENCH_SERVER_LOG")
        .and_then(|p| {
            std::fs::File::options()
                .create(true)
                .append(true)
                .open(p)
                .ok()
        })
        .map_or_else(Stdio::null, Stdio::from)
}

fn start(root: &Path, port: u16) -> ServerGuard {
    let child = Command::new(env!("CARGO_BIN_EXE_update-server"))
        .args(["serve", "--root"])
        .arg(root)
        .args(["--http", &format!("127.0.0.1:{port}")])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(server_stderr())
        .spawn()
        .expect("start server");
    ServerGuard(child)
}

/// Resident set in MiB.
fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    kb / 1024.0
}

/// One HTTP/1.1 exchange on a keep-alive connection; the status and the body length.
fn exchange(
    conn: &mut BufReader<TcpStream>,
    method: &str,
    target: &str,
    headers: &str,
    body: &[u8],
) -> std::io::Result<(u16, usize)> {
    let head = format!(
        "{method} {target} HTTP/1.1\r\nHost: bench\r\n{headers}Content-Length: {}\r\n\r\n",
        body.len()
    );
    conn.get_mut().write_all(head.as_bytes())?;
    // a server that refuses the body may close before reading it: its answer still counts
    let _ = conn.get_mut().write_all(body);
    let mut line = String::new();
    conn.read_line(&mut line)?;
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut len = 0usize;
    let mut chunked = false;
    loop {
        line.clear();
        conn.read_line(&mut line)?;
        let l = line.trim_end().to_ascii_lowercase();
        if l.is_empty() {
            break;
        }
        if let Some(v) = l.strip_prefix("content-length:") {
            len = v.trim().parse().unwrap_or(0);
        }
        chunked |= l == "transfer-encoding: chunked";
    }
    if !chunked {
        let mut buf = vec![0u8; len];
        conn.read_exact(&mut buf)?;
        return Ok((status, len));
    }
    let mut total = 0;
    loop {
        line.clear();
        conn.read_line(&mut line)?;
        let n = usize::from_str_radix(line.trim(), 16).unwrap_or(0);
        let mut buf = vec![0u8; n + 2];
        conn.read_exact(&mut buf)?;
        total += n;
        if n == 0 {
            return Ok((status, total));
        }
    }
}

fn connect(addr: SocketAddr) -> BufReader<TcpStream> {
    BufReader::new(TcpStream::connect(addr).expect("connect"))
}

fn poll_target(i: usize) -> String {
    let sn = serial(i);
    format!(
        "/update.php?type=IP232&sn={sn}&hwid=IP232-{}&ip=10.0.0.1&env=site&phase=update&polling=0&PROT=130178&BOOT=130178",
        &sn[9..]
    )
}

/// Every device polls once, from `threads` keep-alive connections.
fn fill(addr: SocketAddr, devices: usize, threads: usize) {
    let next = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                let mut conn = connect(addr);
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= devices {
                        break;
                    }
                    let (status, _) =
                        exchange(&mut conn, "GET", &poll_target(i), "", b"").expect("poll");
                    assert_eq!(status, 200, "poll of device {i}");
                }
            });
        }
    });
}

fn wait_listening(addr: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "server did not start");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The whole device list over the API, page by page, then as CSV; the bytes read and the
/// resident set after the pages (with `trace`, printed after every page too).
fn read_device_list(
    addr: SocketAddr,
    devices: usize,
    pid: u32,
    trace: bool,
) -> (usize, f64, usize) {
    let auth = format!("Authorization: Bearer {TOKEN}\r\n");
    let mut conn = connect(addr);
    let mut json = 0;
    for offset in (0..devices).step_by(1000) {
        let target = format!("/api/devices?limit=1000&offset={offset}");
        let (status, n) = exchange(&mut conn, "GET", &target, &auth, b"").expect("api");
        assert_eq!(status, 200, "{target}");
        json += n;
        if trace {
            let threads = std::fs::read_to_string(format!("/proc/{pid}/status"))
                .unwrap_or_default()
                .lines()
                .find_map(|l| l.strip_prefix("Threads:").map(|t| t.trim().to_string()))
                .unwrap_or_default();
            println!(
                "  page at {offset:6}: {:7.1} MiB, {threads} threads",
                rss_mib(pid)
            );
        }
    }
    let after_pages = rss_mib(pid);
    let (status, csv) = exchange(&mut conn, "GET", "/api/devices.csv", &auth, b"").expect("csv");
    assert_eq!(status, 200, "api/devices.csv");
    (json, after_pages, csv)
}

fn main() {
    let mut devices = 100_000usize;
    let mut threads = 4usize;
    let mut server_attrs = String::new();
    let mut repeat = 20u64;
    let mut hostile = 0u64;
    let args: Vec<String> = std::env::args().collect();
    let trace = args.iter().any(|a| a == "--trace");
    for w in args.windows(2) {
        match w[0].as_str() {
            "--devices" => devices = w[1].parse().unwrap_or(devices),
            "--threads" => threads = w[1].parse().unwrap_or(threads),
            "--server" => server_attrs = w[1].clone(),
            "--repeat" => repeat = w[1].parse().unwrap_or(repeat),
            "--hostile" => hostile = w[1].parse().unwrap_or(hostile),
            _ => {}
        }
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path().join("root");
    build_installation(&root, &server_attrs);
    let port = free_port();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut server = start(&root, port);
    wait_listening(addr);
    let pid = server.0.id();
    let started = rss_mib(pid);
    println!("started:                 {started:7.1} MiB");

    let t = Instant::now();
    fill(addr, devices, threads);
    std::thread::sleep(Duration::from_millis(500));
    let after_fill = rss_mib(pid);
    println!(
        "{devices} devices polled: {after_fill:7.1} MiB  ({:.1} s, {:.0} polls/s)",
        t.elapsed().as_secs_f64(),
        devices as f64 / t.elapsed().as_secs_f64()
    );

    let after_fill = repeat_polls(addr, devices, threads, pid, repeat, after_fill, started);

    let big = vec![b'x'; 16 << 20];
    let target = format!("/update.php?mode=query&sn={}&id=admin", serial(0));
    let (status, _) = exchange(&mut connect(addr), "PUT", &target, "", &big).expect("query");
    let after_query = rss_mib(pid);
    println!(
        "16 MiB query (HTTP {status}): {after_query:7.1} MiB  (+{:.1})",
        after_query - after_fill
    );
    vardump_16mib(addr, pid);
    if hostile > 0 {
        hostile_traffic(addr, pid, Duration::from_secs(hostile), threads);
    }

    let (json, after_pages, csv) = read_device_list(addr, devices, pid, trace);
    let after_api = rss_mib(pid);
    println!(
        "  of which the JSON pages: {after_pages:7.1} MiB  (+{:.1})",
        after_pages - after_query
    );
    println!(
        "device list ({:.1} MB JSON in pages, {:.1} MB CSV): {after_api:7.1} MiB  (+{:.1})",
        json as f64 / 1e6,
        csv as f64 / 1e6,
        after_api - after_query
    );

    restart(&root, &mut server, addr, port);
    if std::env::var_os("MEMORY_BENCH_KEEP").is_some() {
        drop(server);
        println!("installation kept in {}", dir.keep().display());
    }
}

/// Stop (SIGTERM, so pending states are written) and start again on the same root.
fn restart(root: &Path, server: &mut ServerGuard, addr: SocketAddr, port: u16) {
    let _ = Command::new("kill")
        .args(["-TERM", &server.0.id().to_string()])
        .status();
    let _ = server.0.wait();
    let t = Instant::now();
    *server = start(root, port);
    wait_listening(addr);
    let mut conn = connect(addr);
    let (status, _) = exchange(&mut conn, "GET", &poll_target(1), "", b"").expect("poll");
    println!(
        "restart: first poll answered (HTTP {status}) after {:.2} s",
        t.elapsed().as_secs_f64()
    );
    let pid = server.0.id();
    let mut peak = 0f64;
    for _ in 0..100 {
        std::thread::sleep(Duration::from_millis(200));
        peak = peak.max(rss_mib(pid));
    }
    println!(
        "restart: after 20 s (index built): {:7.1} MiB (highest seen {peak:.1})",
        rss_mib(pid)
    );
}

/// All devices poll again and again for `secs` seconds; the resident set afterwards (printed
/// with the cost per device and the state cache's own estimate).
fn repeat_polls(
    addr: SocketAddr,
    devices: usize,
    threads: usize,
    pid: u32,
    secs: u64,
    after_fill: f64,
    started: f64,
) -> f64 {
    if secs == 0 {
        return after_fill;
    }
    let t = Instant::now();
    let mut rounds = 0;
    while t.elapsed() < Duration::from_secs(secs) {
        fill(addr, devices, threads);
        rounds += 1;
    }
    std::thread::sleep(Duration::from_millis(500));
    let rss = rss_mib(pid);
    let metrics = scrape(addr);
    let cache = metric(&metrics, "update_server_state_cache_bytes").unwrap_or(0.0);
    let pending = metric(&metrics, "update_server_state_writes_pending").unwrap_or(0.0);
    println!(
        "{rounds} more rounds of polls ({:.1} s): {rss:7.1} MiB, {:.2} KiB per device above the start; state cache charges itself {:.1} MiB, {pending} writes pending",
        t.elapsed().as_secs_f64(),
        (rss - started) * 1024.0 / devices as f64,
        cache / 1048576.0
    );
    rss
}

fn scrape(addr: SocketAddr) -> String {
    let mut s = TcpStream::connect(addr).expect("connect");
    let _ = s.write_all(b"GET /metrics HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

/// A 16 MiB `mode=vardump` of a device's request error: the highest resident set while it
/// is uploaded and answered (sampled every 2 ms), and the answer's size.
fn vardump_16mib(addr: SocketAddr, pid: u32) {
    let before = rss_mib(pid);
    let done = std::sync::atomic::AtomicBool::new(false);
    let mut body = b"X509/REQUESTERROR p ".to_vec();
    body.resize((16 << 20) - 4096, b'a');
    let sn = serial(1);
    let target = format!(
        "/update.php?mode=vardump&sn={sn}&var=X509/REQUESTERROR&file=certs%2F{sn}-requesterror"
    );
    let (peak, (status, len)) = std::thread::scope(|s| {
        let sampler = s.spawn(|| {
            let mut peak = 0f64;
            while !done.load(Ordering::Relaxed) {
                peak = peak.max(rss_mib(pid));
                std::thread::sleep(Duration::from_millis(2));
            }
            peak
        });
        let r = exchange(&mut connect(addr), "PUT", &target, "", &body).unwrap_or((0, 0));
        done.store(true, Ordering::Relaxed);
        (sampler.join().unwrap_or(0.0), r)
    });
    println!(
        "16 MiB vardump (HTTP {status}, answer {len} bytes): highest {peak:7.1} MiB (+{:.1} while it ran), after {:7.1} MiB",
        peak - before,
        rss_mib(pid)
    );
}

/// A small xorshift generator (the bench needs no cryptographic randomness).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn word(&mut self, max: u64) -> String {
        const CHARS: &[u8] = b"abcXYZ019-_./%&=?#\\ ";
        (0..self.below(max) + 1)
            .map(|_| char::from(CHARS[self.below(CHARS.len() as u64) as usize]))
            .collect::<String>()
            .replace(['&', '=', '?', '#', ' ', '%', '\\'], "x")
    }
}

/// One random hostile request.
fn hostile_request(rng: &mut Rng) -> (&'static str, String, String, Vec<u8>) {
    let sn = if rng.below(4) == 0 {
        rng.word(20)
    } else {
        serial(rng.below(10_000) as usize)
    };
    let body_len = rng.below(64 * 1024) as usize;
    let body = vec![b"xX \r\n<>a0"[rng.below(9) as usize]; body_len];
    let form = "Content-Type: application/x-www-form-urlencoded\r\n".to_string();
    match rng.below(8) {
        0 => (
            "GET",
            format!(
                "/update.php?type={}&sn={sn}&hwid={}&{}={}&phase={}&env={}",
                rng.word(10),
                rng.word(10),
                rng.word(30),
                rng.word(200),
                rng.word(10),
                rng.word(5)
            ),
            String::new(),
            Vec::new(),
        ),
        1 => (
            "PUT",
            format!("/update.php?mode=query&sn={sn}&id={}", rng.word(8)),
            String::new(),
            body,
        ),
        2 => (
            "PUT",
            format!("/update.php?mode=backup&sn={sn}&hwid={}", rng.word(12)),
            String::new(),
            body,
        ),
        3 => (
            "PUT",
            format!(
                "/update.php?mode=vardump&sn={sn}&var=X509/REQUESTERROR&file=certs%2F{sn}-requesterror"
            ),
            String::new(),
            body,
        ),
        4 => (
            "POST",
            "/update.php".to_string(),
            form,
            format!("type=IP232&sn={sn}&{}={}", rng.word(50), rng.word(500)).into_bytes(),
        ),
        5 => (
            "GET",
            format!("/fw/{}", rng.word(40)),
            String::new(),
            Vec::new(),
        ),
        6 => (
            "POST",
            "/admin/admin.php".to_string(),
            form,
            format!("action=login&user=admin&password={}", rng.word(20)).into_bytes(),
        ),
        _ => (
            "GET",
            format!("/admin/admin.php?mode={}&sn={sn}", rng.word(10)),
            String::new(),
            Vec::new(),
        ),
    }
}

/// Random hostile requests over 10,000 devices for `time`; the resident set afterwards.
fn hostile_traffic(addr: SocketAddr, pid: u32, time: Duration, threads: usize) {
    let before = rss_mib(pid);
    let sent = AtomicUsize::new(0);
    let t = Instant::now();
    std::thread::scope(|s| {
        s.spawn(|| {
            // the resident set once a minute: growth that goes on, or one that levels off
            let mut next = Duration::from_secs(60);
            while t.elapsed() < time {
                std::thread::sleep(Duration::from_millis(200));
                if t.elapsed() >= next {
                    println!(
                        "  hostile traffic at {:3} s: {:7.1} MiB, {} requests",
                        next.as_secs(),
                        rss_mib(pid),
                        sent.load(Ordering::Relaxed)
                    );
                    next += Duration::from_secs(60);
                }
            }
        });
        for n in 0..threads {
            let sent = &sent;
            s.spawn(move || {
                let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (n as u64 + 1));
                let mut conn: Option<BufReader<TcpStream>> = None;
                while t.elapsed() < time {
                    let (method, target, headers, body) = hostile_request(&mut rng);
                    if conn.is_none() {
                        conn = TcpStream::connect(addr).ok().map(BufReader::new);
                    }
                    let Some(c) = conn.as_mut() else {
                        std::thread::sleep(Duration::from_millis(10));
                        continue;
                    };
                    // a connection the server closed (a refused body) is opened again
                    if exchange(c, method, &target, &headers, &body).is_err() {
                        conn = None;
                    }
                    sent.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
    std::thread::sleep(Duration::from_millis(500));
    let metrics = scrape(addr);
    println!(
        "{} hostile requests ({:.0} s): {:7.1} MiB (+{:.1}), {} devices indexed, state cache charges itself {:.1} MiB",
        sent.load(Ordering::Relaxed),
        t.elapsed().as_secs_f64(),
        rss_mib(pid),
        rss_mib(pid) - before,
        metric(&metrics, "update_server_devices_indexed").unwrap_or(0.0),
        metric(&metrics, "update_server_state_cache_bytes").unwrap_or(0.0) / 1048576.0
    );
}
