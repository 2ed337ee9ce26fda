//! A small W3C WebDriver client for the browser tests: starts Debian's ChromeDriver with a
//! headless Chromium (fresh profile, no network services) and speaks the JSON protocol over
//! the raw HTTP helper of this module's parent.

use super::{Response, free_port, parse_response, start_turn};
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Where a browser test keeps `name` (screenshots, figures): `$CARGO_TARGET_DIR` or
/// `target/`.
pub fn artifact(name: &str) -> PathBuf {
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    std::fs::create_dir_all(&dir).expect("target dir");
    dir.join(name)
}

/// Where Chromium and ChromeDriver are; `Err` says how to install them.
pub fn find_browser() -> Result<(PathBuf, PathBuf), String> {
    let find = |env: &str, names: &[&str]| -> Option<PathBuf> {
        if let Ok(p) = std::env::var(env) {
            return Some(PathBuf::from(p)).filter(|p| p.is_file());
        }
        let path = std::env::var_os("PATH").unwrap_or_default();
        for dir in std::env::split_paths(&path) {
            for n in names {
                let p = dir.join(n);
                if p.is_file() {
                    return Some(p);
                }
            }
        }
        None
    };
    let chromium = find(
        "CHROMIUM",
        &["chromium", "chromium-browser", "google-chrome"],
    );
    let driver = find("CHROMEDRIVER", &["chromedriver"]);
    match (chromium, driver) {
        (Some(c), Some(d)) => Ok((c, d)),
        _ => Err(
            "the browser tests need Chromium and ChromeDriver: install Debian's \
                  'chromium' and 'chromium-driver' (apt-get install chromium chromium-driver, \
                  as .ci/run does), or set CHROMIUM and CHROMEDRIVER"
                .to_string(),
        ),
    }
}

/// Starts a browser for a test, or `None` when Chromium or ChromeDriver is missing: the test
/// is then skipped, said loudly on standard error. With `UPDATE_SERVER_BROWSER_TESTS=required`
/// (CI) a missing browser fails the test instead.
pub fn browser_or_skip(test: &str, downloads: &Path) -> Option<Browser> {
    if let Err(e) = find_browser() {
        let required = std::env::var("UPDATE_SERVER_BROWSER_TESTS").as_deref() == Ok("required");
        assert!(!required, "UPDATE_SERVER_BROWSER_TESTS=required: {e}");
        // straight to the process's standard error: the test harness captures eprintln!
        // of a passing test, and this note must be seen
        let _ = std::io::Write::write_all(
            &mut std::io::stderr(),
            format!("\n*** SKIPPED browser test {test}: {e} ***\n\n").as_bytes(),
        );
        return None;
    }
    Some(Browser::start(downloads).unwrap_or_else(|e| panic!("{e}")))
}

/// Browsers running at once: one. The browser tests share one test binary and would
/// otherwise run side by side, each with a Chromium, on a CI machine of two cores.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// A browser session; ChromeDriver and the browser end when it is dropped.
pub struct Browser {
    driver: Child,
    addr: SocketAddr,
    session: String,
    _profile: tempfile::TempDir,
    /// Held while this browser runs (declared last: released after the browser ended).
    _running: MutexGuard<'static, ()>,
}

/// An element of the current page.
#[derive(Debug, Clone)]
pub struct El(String);

impl Browser {
    /// Logs in as the test configurations' administrator (`admin`/`secret`) on the login
    /// form of the page shown, and waits for the device table.
    pub fn log_in(&self) {
        self.send_keys(&self.find("#user"), "admin");
        self.send_keys(&self.find("#password"), "secret");
        self.click_css("#login");
        self.wait_for("the device table", |b| b.try_find("#devices").is_some());
    }

    /// Starts ChromeDriver and a headless Chromium that downloads into `downloads`.
    pub fn start(downloads: &Path) -> Result<Browser, String> {
        let (chromium, chromedriver) = find_browser()?;
        let running = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let turn = start_turn();
        let port = free_port();
        let driver = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", chromedriver.display()))?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let profile = tempfile::tempdir().map_err(|e| e.to_string())?;
        let mut b = Browser {
            driver,
            addr,
            session: String::new(),
            _profile: profile,
            _running: running,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(addr).is_err() {
            if Instant::now() > deadline {
                return Err("ChromeDriver did not start listening".to_string());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        drop(turn);
        let caps = json!({
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    "unhandledPromptBehavior": "ignore",
                    "goog:chromeOptions": {
                        "binary": chromium,
                        "args": [
                            "--headless=new",
                            "--no-sandbox",
                            "--disable-gpu",
                            "--disable-quic",
                            "--no-first-run",
                            "--disable-background-networking",
                            "--disable-component-update",
                            "--disable-sync",
                            "--disable-dev-shm-usage",
                            "--window-size=1500,1000",
                            format!("--user-data-dir={}", b._profile.path().display()),
                        ],
                        "prefs": {
                            "download.default_directory": downloads,
                            "download.prompt_for_download": false,
                            "download.directory_upgrade": true,
                            "safebrowsing.enabled": false
                        }
                    }
                }
            }
        });
        let v = b.raw("POST", "/session", Some(caps))?;
        b.session = v["value"]["sessionId"]
            .as_str()
            .ok_or_else(|| format!("no session: {v}"))?
            .to_string();
        // let the headless browser download without asking
        let _ = b.cmd(
            "POST",
            "/goog/cdp/execute",
            json!({
                "cmd": "Browser.setDownloadBehavior",
                "params": { "behavior": "allow", "downloadPath": downloads }
            }),
        );
        Ok(b)
    }

    fn raw(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let headers: &[(&str, &str)] = if method == "POST" {
            &[("Content-Type", "application/json; charset=utf-8")]
        } else {
            &[]
        };
        let r = exchange(self.addr, method, path, headers, body.as_bytes())
            .map_err(|e| format!("{method} {path}: {e}"))?;
        let v: Value = serde_json::from_slice(&r.body)
            .map_err(|e| format!("{method} {path}: bad answer ({e}): {}", r.text()))?;
        if r.status >= 400 {
            return Err(format!(
                "{method} {path}: {} {}",
                v["value"]["error"], v["value"]["message"]
            ));
        }
        Ok(v)
    }

    /// A session command; returns its `value`.
    pub fn cmd(&self, method: &str, path: &str, body: Value) -> Result<Value, String> {
        let p = format!("/session/{}{path}", self.session);
        let body = if method == "POST" { Some(body) } else { None };
        self.raw(method, &p, body).map(|v| v["value"].clone())
    }

    pub fn goto(&self, url: &str) {
        self.cmd("POST", "/url", json!({ "url": url }))
            .unwrap_or_else(|e| panic!("navigate to {url}: {e}"));
    }

    pub fn url(&self) -> String {
        self.cmd("GET", "/url", Value::Null)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    }

    /// The first element matching `css`, if any.
    pub fn try_find(&self, css: &str) -> Option<El> {
        let r = self.cmd(
            "POST",
            "/element",
            json!({ "using": "css selector", "value": css }),
        );
        if std::env::var_os("WEBDRIVER_DEBUG").is_some() {
            eprintln!("find {css}: {r:?}");
        }
        r.ok()
            .and_then(|v| v[ELEMENT_KEY].as_str().map(|s| El(s.to_string())))
    }

    pub fn find(&self, css: &str) -> El {
        self.try_find(css).unwrap_or_else(|| {
            let source = self.cmd("GET", "/source", Value::Null).unwrap_or_default();
            panic!(
                "no element '{css}' on {}; page:\n{}",
                self.url(),
                source.as_str().unwrap_or_default()
            )
        })
    }

    /// Finds `css` and clicks it, again when the page replaced the element in between (the
    /// status page refreshes its rows).
    pub fn click_css(&self, css: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let el = self.find(css);
            match self.cmd("POST", &format!("/element/{}/click", el.0), json!({})) {
                Ok(_) => return,
                Err(e) if e.contains("stale element") && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => panic!("click {css}: {e}"),
            }
        }
    }

    /// Finds `css` and types `text` into it, again when the element was replaced meanwhile.
    pub fn send_keys_css(&self, css: &str, text: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let el = self.find(css);
            match self.cmd(
                "POST",
                &format!("/element/{}/value", el.0),
                json!({ "text": text }),
            ) {
                Ok(_) => return,
                Err(e) if e.contains("stale element") && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => panic!("type into {css}: {e}"),
            }
        }
    }

    pub fn send_keys(&self, el: &El, text: &str) {
        self.cmd(
            "POST",
            &format!("/element/{}/value", el.0),
            json!({ "text": text }),
        )
        .unwrap_or_else(|e| panic!("type: {e}"));
    }

    pub fn clear(&self, el: &El) {
        self.cmd("POST", &format!("/element/{}/clear", el.0), json!({}))
            .unwrap_or_else(|e| panic!("clear: {e}"));
    }

    /// The rendered (visible) text of an element.
    pub fn text(&self, el: &El) -> String {
        self.cmd("GET", &format!("/element/{}/text", el.0), Value::Null)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    }

    /// Runs `script` (a function body) in the page.
    pub fn exec(&self, script: &str, args: Value) -> Value {
        self.cmd(
            "POST",
            "/execute/sync",
            json!({ "script": script, "args": args }),
        )
        .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// The text of an open `alert`/`confirm`, if one is open.
    pub fn alert_text(&self) -> Option<String> {
        self.cmd("GET", "/alert/text", Value::Null)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
    }

    pub fn accept_alert(&self) {
        self.cmd("POST", "/alert/accept", json!({}))
            .unwrap_or_else(|e| panic!("accept alert: {e}"));
    }

    /// A PNG of the viewport.
    pub fn screenshot(&self) -> Vec<u8> {
        use base64::Engine;
        let v = self
            .cmd("GET", "/screenshot", Value::Null)
            .unwrap_or_else(|e| panic!("screenshot: {e}"));
        base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap_or_default())
            .unwrap_or_else(|e| panic!("screenshot not base64: {e}"))
    }

    /// A full-page PNG (via the DevTools protocol), falling back to the viewport.
    pub fn full_screenshot(&self) -> Vec<u8> {
        use base64::Engine;
        let metrics = self.cmd(
            "POST",
            "/goog/cdp/execute",
            json!({ "cmd": "Page.getLayoutMetrics", "params": {} }),
        );
        let Ok(m) = metrics else {
            return self.screenshot();
        };
        let w = m["cssContentSize"]["width"].as_f64().unwrap_or(1500.0);
        let h = m["cssContentSize"]["height"].as_f64().unwrap_or(1000.0);
        let shot = self.cmd(
            "POST",
            "/goog/cdp/execute",
            json!({ "cmd": "Page.captureScreenshot", "params": {
                "format": "png", "captureBeyondViewport": true,
                "clip": { "x": 0, "y": 0, "width": w, "height": h.min(4000.0), "scale": 1 }
            }}),
        );
        match shot {
            Ok(v) => base64::engine::general_purpose::STANDARD
                .decode(v["data"].as_str().unwrap_or_default())
                .unwrap_or_else(|_| self.screenshot()),
            Err(_) => self.screenshot(),
        }
    }

    /// Waits until `cond` holds (polling), or panics with `what` and the page's text.
    pub fn wait_for(&self, what: &str, mut cond: impl FnMut(&Browser) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if cond(self) {
                return;
            }
            if Instant::now() > deadline {
                let body = self
                    .cmd(
                        "POST",
                        "/execute/sync",
                        json!({ "script": "return document.body ? document.body.innerText : ''", "args": [] }),
                    )
                    .unwrap_or_default();
                panic!(
                    "timed out waiting for: {what}\nURL: {}\npage text:\n{}",
                    self.url(),
                    body.as_str().unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// One request to ChromeDriver, reading the answer by its `Content-Length` (ChromeDriver
/// does not always close the connection).
fn exchange(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<Response> {
    let mut s = std::net::TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(120)))?;
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes())?;
    s.write_all(body)?;
    let mut raw = Vec::new();
    let mut buf = [0u8; 16384];
    loop {
        if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
            let len = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok());
            if let Some(len) = len
                && raw.len() >= end + 4 + len
            {
                break;
            }
        }
        let n = s.read(&mut buf)?;
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&buf[..n]);
    }
    parse_response(&raw)
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidData, "no HTTP answer"))
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = self.raw("DELETE", &format!("/session/{}", self.session), None);
        }
        // ChromeDriver and the browser it started share the process group we gave it
        let _ = Command::new("kill")
            .arg("--")
            .arg(format!("-{}", self.driver.id()))
            .status();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
