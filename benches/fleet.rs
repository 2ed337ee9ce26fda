//! The yardstick: polls per second and static files against the PHP server and lighttpd,
//! loaded with `wrk` side by side in one run.
//!
//! `cargo bench --bench fleet -- [--seconds 10] [--php URL] [--lighttpd URL] [--fleet DIR]`
//!
//! Sets up the benchmark installation of `/work/shared/perf-fleet` (or `--fleet DIR`) in a
//! temporary root (`config/user-config.xml`, `scripts/` dated two days back, `fw/small.bin`
//! of 8 KiB and `fw/big.bin` of 20 MB), starts the release server with `--prefix /update`,
//! and runs `wrk` with `poll.lua` at 64 connections, the 8 KiB file at 64 connections and
//! the 20 MB file at 8 connections. `--php URL` loads the PHP server's `URL/update/update.php`
//! with the same script, `--lighttpd URL` fetches `URL/update/fw/small.bin` and `big.bin`;
//! the ratios are printed at the end.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

struct ServerGuard(Child);

impl Drop for ServerGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What one `wrk` run reported.
#[derive(Debug, Default, Clone, Copy)]
struct Figures {
    requests_per_sec: f64,
    /// Bytes per second.
    transfer: f64,
    p99_ms: f64,
}

fn setup(fleet: &Path, root: &Path) {
    std::fs::create_dir_all(root.join("config")).expect("config dir");
    std::fs::create_dir_all(root.join("scripts")).expect("scripts dir");
    std::fs::create_dir_all(root.join("fw")).expect("fw dir");
    std::fs::copy(
        fleet.join("user-config.xml"),
        root.join("config/user-config.xml"),
    )
    .expect("user-config.xml");
    let old = SystemTime::now() - Duration::from_secs(2 * 86400);
    for e in std::fs::read_dir(fleet.join("scripts")).expect("scripts") {
        let e = e.expect("entry");
        let to = root.join("scripts").join(e.file_name());
        std::fs::copy(e.path(), &to).expect("snippet");
        std::fs::File::options()
            .write(true)
            .open(&to)
            .and_then(|f| f.set_modified(old))
            .expect("mtime");
    }
    std::fs::write(root.join("fw/small.bin"), vec![7u8; 8192]).expect("small.bin");
    std::fs::write(root.join("fw/big.bin"), vec![9u8; 20_000_000]).expect("big.bin");
}

fn parse_unit(v: &str, units: &[(&str, f64)]) -> Option<f64> {
    for (u, f) in units {
        if let Some(n) = v.strip_suffix(u) {
            return n.trim().parse::<f64>().ok().map(|n| n * f);
        }
    }
    v.parse().ok()
}

fn parse_wrk(out: &str) -> Figures {
    let mut f = Figures::default();
    for line in out.lines().map(str::trim) {
        if let Some(v) = line.strip_prefix("Requests/sec:") {
            f.requests_per_sec = v.trim().parse().unwrap_or(0.0);
        } else if let Some(v) = line.strip_prefix("Transfer/sec:") {
            let units = [
                ("GB", 1e9 * 1.073_741_824),
                ("MB", 1_048_576.0),
                ("KB", 1024.0),
                ("B", 1.0),
            ];
            f.transfer = parse_unit(v.trim(), &units).unwrap_or(0.0);
        } else if let Some(v) = line.strip_prefix("99%") {
            let units = [("us", 0.001), ("ms", 1.0), ("s", 1000.0)];
            f.p99_ms = parse_unit(v.trim(), &units).unwrap_or(0.0);
        }
    }
    f
}

fn wrk(url: &str, conns: u32, secs: u64, script: Option<&Path>) -> Figures {
    let mut cmd = Command::new("wrk");
    cmd.args([
        "-t2",
        &format!("-c{conns}"),
        &format!("-d{secs}s"),
        "--latency",
    ]);
    if let Some(s) = script {
        cmd.arg("-s").arg(s);
    }
    let out = cmd.arg(url).output().expect("wrk (apt install wrk)");
    let text = String::from_utf8_lossy(&out.stdout);
    if text.contains("Non-2xx") || text.contains("Socket errors") {
        eprintln!("wrk {url}: {}", text.trim());
    }
    parse_wrk(&text)
}

fn start_server(root: &Path) -> (ServerGuard, String) {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port");
    let child = Command::new(env!("CARGO_BIN_EXE_update-server"))
        .args(["serve", "--prefix", "/update", "--root"])
        .arg(root)
        .args(["--http", &format!("127.0.0.1:{port}")])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start server");
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    (ServerGuard(child), format!("http://{addr}"))
}

/// The three loads against one base URL (`None` for what that server is not compared on).
fn run_all(
    base: &str,
    secs: u64,
    poll_lua: &Path,
    polls: bool,
    files: bool,
) -> [Option<Figures>; 3] {
    let p = polls.then(|| {
        // warm-up: every device's state once
        wrk(&format!("{base}/update/update.php"), 64, 3, Some(poll_lua));
        wrk(
            &format!("{base}/update/update.php"),
            64,
            secs,
            Some(poll_lua),
        )
    });
    let s = files.then(|| wrk(&format!("{base}/update/fw/small.bin"), 64, secs, None));
    let b = files.then(|| wrk(&format!("{base}/update/fw/big.bin"), 8, secs, None));
    [p, s, b]
}

fn main() {
    let mut secs = 10u64;
    let mut php: Option<String> = None;
    let mut lighttpd: Option<String> = None;
    let mut fleet = PathBuf::from("/work/shared/perf-fleet");
    let args: Vec<String> = std::env::args().collect();
    for w in args.windows(2) {
        match w[0].as_str() {
            "--seconds" => secs = w[1].parse().unwrap_or(secs),
            "--php" => php = Some(w[1].trim_end_matches('/').to_string()),
            "--lighttpd" => lighttpd = Some(w[1].trim_end_matches('/').to_string()),
            "--fleet" => fleet = w[1].clone().into(),
            _ => {}
        }
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path().join("root");
    setup(&fleet, &root);
    let poll_lua = fleet.join("poll.lua");
    let (_server, base) = start_server(&root);
    let [polls, small, big] = run_all(&base, secs, &poll_lua, true, true);
    let [polls, small, big] = [polls, small, big].map(Option::unwrap_or_default);
    let mb = |b: f64| b / 1_048_576.0;
    println!(
        "update-server: polls {:>8.0}/s p99 {:>7.2} ms",
        polls.requests_per_sec, polls.p99_ms
    );
    println!(
        "update-server: 8 KiB {:>8.0}/s p99 {:>7.2} ms",
        small.requests_per_sec, small.p99_ms
    );
    println!("update-server: 20 MB {:>8.1} MiB/s", mb(big.transfer));
    if let Some(url) = php {
        let [p, _, _] = run_all(&url, secs, &poll_lua, true, false);
        let p = p.unwrap_or_default();
        println!(
            "PHP:           polls {:>8.0}/s p99 {:>7.2} ms",
            p.requests_per_sec, p.p99_ms
        );
        println!(
            "ratio polls ours/PHP:        {:>6.2}",
            polls.requests_per_sec / p.requests_per_sec
        );
    }
    if let Some(url) = lighttpd {
        let [_, s, b] = run_all(&url, secs, &poll_lua, false, true);
        let (s, b) = (s.unwrap_or_default(), b.unwrap_or_default());
        println!(
            "lighttpd:      8 KiB {:>8.0}/s p99 {:>7.2} ms",
            s.requests_per_sec, s.p99_ms
        );
        println!("lighttpd:      20 MB {:>8.1} MiB/s", mb(b.transfer));
        println!(
            "ratio 8 KiB ours/lighttpd:   {:>6.2}",
            small.requests_per_sec / s.requests_per_sec
        );
        println!(
            "ratio 20 MB ours/lighttpd:   {:>6.2}",
            big.transfer / b.transfer
        );
    }
    println!(
        "(wrk -t2, {secs} s per load, {} CPUs)",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
}
