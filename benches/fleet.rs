//! The yardstick: polls per second and static files against the PHP server and lighttpd,
//! loaded with `wrk` side by side in one run.
//!
//! `cargo bench --bench fleet -- [--seconds 10] [--fleet DIR] [--php-www DIR]`
//!
//! Sets up the benchmark installation of `/work/shared/perf-fleet` (or `--fleet DIR`) in a
//! temporary root (`config/user-config.xml`, `scripts/` dated two days back, `fw/small.bin`
//! of 8 KiB and `fw/big.bin` of 20 MB) and starts the release server with `--prefix /update`.
//! Beside it, lighttpd with php-cgi (FastCGI) serves a copy of the PHP installation of
//! `/work/bench/www` (or `--php-www DIR`: its `update/` holds the PHP server with the same
//! configuration, snippets and `fw/` files) on a free port. `wrk` then loads each with
//! `poll.lua` at 64 connections (1,000 devices round robin), the 8 KiB file at 64 connections
//! and the 20 MB file at 8 connections, and the ratios are printed at the end. Without `wrk`,
//! lighttpd or php-cgi the bench says so and stops (or measures only this server).

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

struct ServerGuard(Child);

impl Drop for ServerGuard {
    /// SIGTERM first (lighttpd then stops its php-cgi processes), SIGKILL after 5 s.
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
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
    let port = free_port();
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
    wait_for(addr, "update-server");
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

/// Whether `prog` can be run (found in `PATH`).
fn have(prog: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|d| d.join(prog).is_file()) || Path::new(prog).is_file()
    })
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn wait_for(addr: SocketAddr, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "{what} did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// lighttpd (in the foreground) with php-cgi over FastCGI on a copy of `www` in `dir`.
fn start_lighttpd(www: &Path, dir: &Path) -> (ServerGuard, String) {
    let copy = dir.join("www");
    // -a keeps the snippets' dates (past the grace period)
    let status = Command::new("cp")
        .arg("-a")
        .arg(www)
        .arg(&copy)
        .status()
        .expect("cp");
    assert!(status.success(), "cannot copy {}", www.display());
    let port = free_port();
    let conf = format!(
        r#"server.document-root = "{root}"
server.port = {port}
server.bind = "127.0.0.1"
server.modules = ("mod_fastcgi", "mod_access")
server.errorlog = "{dir}/lighttpd-error.log"
server.max-connections = 1024
server.max-fds = 4096
mimetype.assign = (".txt" => "text/plain", ".bin" => "application/octet-stream", "" => "application/octet-stream")
fastcgi.server = ( ".php" => (( "bin-path" => "/usr/bin/php-cgi", "socket" => "{dir}/php.sock", "max-procs" => 2, "bin-environment" => ("PHP_FCGI_CHILDREN" => "4", "PHP_FCGI_MAX_REQUESTS" => "10000") )) )
"#,
        root = copy.display(),
        dir = dir.display(),
    );
    let conf_path = dir.join("lighttpd.conf");
    std::fs::write(&conf_path, conf).expect("lighttpd.conf");
    let child = Command::new("lighttpd")
        .arg("-D")
        .arg("-f")
        .arg(&conf_path)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start lighttpd");
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    wait_for(addr, "lighttpd");
    (ServerGuard(child), format!("http://{addr}"))
}

struct Options {
    secs: u64,
    fleet: PathBuf,
    php_www: PathBuf,
}

fn options() -> Options {
    let mut o = Options {
        secs: 10,
        fleet: PathBuf::from("/work/shared/perf-fleet"),
        php_www: PathBuf::from("/work/bench/www"),
    };
    let args: Vec<String> = std::env::args().collect();
    for w in args.windows(2) {
        match w[0].as_str() {
            "--seconds" => o.secs = w[1].parse().unwrap_or(o.secs),
            "--fleet" => o.fleet = w[1].clone().into(),
            "--php-www" => o.php_www = w[1].clone().into(),
            _ => {}
        }
    }
    o
}

fn ratio(ours: f64, theirs: f64, target: f64) -> String {
    let r = ours / theirs;
    let verdict = if r >= target { "met" } else { "MISSED" };
    format!("{r:>7.2}  (target >= {target}: {verdict})")
}

fn main() {
    let o = options();
    if !have("wrk") {
        println!("fleet bench skipped: wrk is not installed (apt install wrk)");
        return;
    }
    if !o.fleet.join("poll.lua").is_file() {
        println!(
            "fleet bench skipped: no benchmark installation at {} (--fleet DIR)",
            o.fleet.display()
        );
        return;
    }
    let reference = have("lighttpd") && have("php-cgi") && o.php_www.join("update").is_dir();
    if !reference {
        println!(
            "no comparison: lighttpd, php-cgi or the PHP installation {} is missing \
             (apt install lighttpd php-cgi php-xml php-mbstring; --php-www DIR)",
            o.php_www.display()
        );
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path().join("root");
    setup(&o.fleet, &root);
    let poll_lua = o.fleet.join("poll.lua");
    let (_server, base) = start_server(&root);
    let theirs = reference.then(|| start_lighttpd(&o.php_www, dir.path()));
    let secs = o.secs;
    // side by side: each load on both servers, one after the other
    let [polls, _, _] = run_all(&base, secs, &poll_lua, true, false);
    let php = theirs
        .as_ref()
        .map(|(_, url)| run_all(url, secs, &poll_lua, true, false)[0]);
    let [_, small, big] = run_all(&base, secs, &poll_lua, false, true);
    let lighttpd = theirs
        .as_ref()
        .map(|(_, url)| run_all(url, secs, &poll_lua, false, true));
    let [polls, small, big] = [polls, small, big].map(Option::unwrap_or_default);
    let mb = |b: f64| b / 1_048_576.0;
    println!(
        "update-server: polls {:>8.0}/s p99 {:>7.2} ms (target < 10 ms)",
        polls.requests_per_sec, polls.p99_ms
    );
    println!(
        "update-server: 8 KiB {:>8.0}/s p99 {:>7.2} ms",
        small.requests_per_sec, small.p99_ms
    );
    println!("update-server: 20 MB {:>8.1} MiB/s", mb(big.transfer));
    if let Some(Some(p)) = php {
        println!(
            "PHP:           polls {:>8.0}/s p99 {:>7.2} ms",
            p.requests_per_sec, p.p99_ms
        );
        println!(
            "ratio polls ours/PHP:        {}",
            ratio(polls.requests_per_sec, p.requests_per_sec, 20.0)
        );
    }
    if let Some([_, Some(s), Some(b)]) = lighttpd {
        println!(
            "lighttpd:      8 KiB {:>8.0}/s p99 {:>7.2} ms",
            s.requests_per_sec, s.p99_ms
        );
        println!("lighttpd:      20 MB {:>8.1} MiB/s", mb(b.transfer));
        println!(
            "ratio 8 KiB ours/lighttpd:   {}",
            ratio(small.requests_per_sec, s.requests_per_sec, 0.8)
        );
        println!(
            "ratio 20 MB ours/lighttpd:   {}",
            ratio(big.transfer, b.transfer, 0.9)
        );
    }
    println!(
        "(wrk -t2, {secs} s per load, {} CPUs)",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
}
