//! Loading a case (README §1, §6), preparing its root (§2), running its
//! requests against the server (§3, §4) and collecting what it left behind
//! (§5 "resulting files").

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::http::{self, Request, Response};
use super::master::Master;
use super::normalise::Normaliser;
use super::pki::Pki;
use super::placeholders::{self, Vars};
use super::server::{self, Ports, Server};

/// Default age of every placed file (README §2 step 4).
const DEFAULT_AGE_SECS: i64 = 86_400;
/// PHP's hourly purge marker, never recorded.
const IGNORED_FILES: &[&str] = &["status/lastcleanup"];
/// Everything below these directories is a resulting file.
const RECORDED_DIRS: &[&str] = &["status/", "backup/", "certs/", "cache/"];
/// `state/` files with these endings get placeholders replaced.
const TEXT_STATE_ENDINGS: &[&str] = &[".xml", ".txt", ".pem", ".json"];
const MULTIPART_BOUNDARY: &str = "----update-server-conformance-5b1f0c2e9d";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Multipart {
    pub field: String,
    pub filename: String,
    pub file: String,
}

/// One entry of `requests.json`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestSpec {
    pub listener: String,
    #[serde(default)]
    pub cert: Option<String>,
    pub method: String,
    pub path: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub data: Option<String>,
    #[serde(default)]
    pub multipart: Option<Multipart>,
    #[serde(default)]
    pub sleep: Option<f64>,
    #[serde(default)]
    pub note: Option<String>,
}

/// A case directory.
#[derive(Debug, Clone)]
pub struct Case {
    pub name: String,
    pub dir: PathBuf,
    pub description: String,
    pub security: bool,
    pub divergent: Option<String>,
    /// Request numbers (from 1) that are not compared.
    pub skip_requests: BTreeSet<usize>,
    /// Globs on `files/PATH` that are not compared.
    pub skip_files: Vec<glob::Pattern>,
    pub requests: Vec<RequestSpec>,
}

impl Case {
    /// `security` or `divergent`: reported separately, never a failure.
    pub fn flag(&self) -> Option<String> {
        match (&self.divergent, self.security) {
            (Some(why), true) => Some(format!("security, divergent: {why}")),
            (Some(why), false) => Some(format!("divergent: {why}")),
            (None, true) => Some("security".into()),
            (None, false) => None,
        }
    }

    pub fn has_master(&self) -> bool {
        self.dir.join("master/box_info.xml").is_file()
    }

    /// Whether `files/PATH` is excluded by a `nondeterministic` glob.
    pub fn skips_file(&self, path: &str) -> bool {
        let key = format!("files/{path}");
        self.skip_files.iter().any(|p| p.matches(&key))
    }
}

fn read_json(path: &Path) -> Result<serde_json::Value, String> {
    let text = fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Loads one case directory.
pub fn load(dir: &Path) -> Result<Case, String> {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| format!("{}: no directory name", dir.display()))?;
    let meta = read_json(&dir.join("case.json"))?;
    let description = meta
        .get("description")
        .and_then(|d| d.as_str())
        .unwrap_or_default()
        .to_string();
    let security = match meta.get("security") {
        None | Some(serde_json::Value::Null) => false,
        Some(serde_json::Value::Bool(b)) => *b,
        Some(other) => return Err(format!("{name}: case.json security = {other}: not a bool")),
    };
    let divergent = match meta.get("divergent") {
        None | Some(serde_json::Value::Null) | Some(serde_json::Value::Bool(false)) => None,
        Some(serde_json::Value::String(why)) => Some(why.clone()),
        Some(serde_json::Value::Bool(true)) => Some("(no reason given)".into()),
        Some(other) => return Err(format!("{name}: case.json divergent = {other}")),
    };
    let mut skip_requests = BTreeSet::new();
    let mut skip_files = Vec::new();
    if let Some(list) = meta.get("nondeterministic") {
        let list = list
            .as_array()
            .ok_or_else(|| format!("{name}: case.json nondeterministic is not a list"))?;
        for entry in list {
            let entry = entry
                .as_str()
                .ok_or_else(|| format!("{name}: nondeterministic entry {entry} is not a string"))?;
            if entry.starts_with("files/") {
                skip_files.push(
                    glob::Pattern::new(entry)
                        .map_err(|e| format!("{name}: nondeterministic glob {entry:?}: {e}"))?,
                );
            } else if let Ok(n) = entry.parse::<usize>() {
                skip_requests.insert(n);
            } else {
                return Err(format!(
                    "{name}: nondeterministic entry {entry:?} is neither NN nor files/GLOB"
                ));
            }
        }
    }
    let requests_path = dir.join("requests.json");
    let requests_text = fs::read_to_string(&requests_path)
        .map_err(|e| format!("{}: {e}", requests_path.display()))?;
    let requests: Vec<RequestSpec> = serde_json::from_str(&requests_text)
        .map_err(|e| format!("{}: {e}", requests_path.display()))?;
    for (i, r) in requests.iter().enumerate() {
        let n = i + 1;
        if !matches!(r.listener.as_str(), "http" | "https" | "mtls") {
            return Err(format!(
                "{name} request {n}: unknown listener {:?}",
                r.listener
            ));
        }
        if let Some(cert) = r.cert.as_deref() {
            let known = cert == "none" || super::pki::CLIENTS.iter().any(|(l, _, _)| *l == cert);
            if !known {
                return Err(format!(
                    "{name} request {n}: unknown client certificate {cert:?}"
                ));
            }
        }
        let bodies = [r.body.is_some(), r.data.is_some(), r.multipart.is_some()];
        if bodies.iter().filter(|&&b| b).count() > 1 {
            return Err(format!(
                "{name} request {n}: more than one of body/data/multipart"
            ));
        }
        if r.sleep.is_some_and(|s| !(0.0..=60.0).contains(&s)) {
            return Err(format!("{name} request {n}: sleep out of range"));
        }
    }
    Ok(Case {
        name,
        dir: dir.to_path_buf(),
        description,
        security,
        divergent,
        skip_requests,
        skip_files,
        requests,
    })
}

/// Loads every case below `base` (directories with a `case.json`), by name.
pub fn load_all(base: &Path) -> Result<Vec<Case>, String> {
    let mut dirs: Vec<PathBuf> = fs::read_dir(base)
        .map_err(|e| format!("{}: {e}", base.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("case.json").is_file())
        .collect();
    dirs.sort();
    dirs.iter().map(|d| load(d)).collect()
}

/// A resulting file (README §5): normalised text, hash of a non-UTF-8 file,
/// or a file that existed before the first request and is gone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileEntry {
    Text(String),
    Sha256(String),
    Deleted,
}

impl FileEntry {
    pub fn kind(&self) -> String {
        match self {
            FileEntry::Text(_) => "text".into(),
            FileEntry::Sha256(hex) => format!("sha256:{hex}"),
            FileEntry::Deleted => "deleted".into(),
        }
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// What one run of a case produced.
pub struct Run {
    pub normaliser: Normaliser,
    pub responses: Vec<Response>,
    pub files: BTreeMap<String, FileEntry>,
    /// Request targets the master stand-in saw (`None`: the case has no master).
    pub master_log: Option<Vec<String>>,
    /// The kept work directory (`CONFORMANCE_KEEP=1`).
    pub kept: Option<PathBuf>,
    /// Set when the server died during the case.
    pub server_problem: Option<String>,
    /// Things worth knowing that are no difference (e.g. a retried start).
    pub notes: Vec<String>,
}

/// Every file below `root`, by root-relative path with `/` separators.
pub fn snapshot(root: &Path) -> Result<BTreeMap<String, Vec<u8>>, String> {
    fn walk(dir: &Path, prefix: &str, out: &mut BTreeMap<String, Vec<u8>>) -> Result<(), String> {
        let entries = fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        for entry in entries {
            let entry = entry.map_err(|e| format!("{}: {e}", dir.display()))?;
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            let rel = format!("{prefix}{name}");
            let meta = fs::metadata(&path);
            if meta.as_ref().is_ok_and(|m| m.is_dir()) {
                walk(&path, &format!("{rel}/"), out)?;
            } else if meta.as_ref().is_ok_and(|m| m.is_file()) {
                // A file may vanish between listing and reading (a server
                // still cleaning up); it then simply is not there.
                if let Ok(bytes) = fs::read(&path) {
                    out.insert(rel, bytes);
                }
            }
        }
        Ok(())
    }
    let mut out = BTreeMap::new();
    walk(root, "", &mut out)?;
    Ok(out)
}

/// README §5: every file below status/ backup/ certs/ cache/, every other
/// file created or changed, `deleted` for files that are gone.
pub fn resulting_files(
    before: &BTreeMap<String, Vec<u8>>,
    after: &BTreeMap<String, Vec<u8>>,
    normaliser: &Normaliser,
) -> BTreeMap<String, FileEntry> {
    let mut out = BTreeMap::new();
    for (path, bytes) in after {
        if IGNORED_FILES.contains(&path.as_str()) {
            continue;
        }
        let recorded = RECORDED_DIRS.iter().any(|d| path.starts_with(d));
        if !recorded && before.get(path) == Some(bytes) {
            continue;
        }
        let entry = match std::str::from_utf8(bytes) {
            Ok(text) => FileEntry::Text(normaliser.file(path, text)),
            Err(_) => FileEntry::Sha256(sha256_hex(bytes)),
        };
        out.insert(path.clone(), entry);
    }
    for path in before.keys() {
        if !after.contains_key(path) && !IGNORED_FILES.contains(&path.as_str()) {
            out.insert(path.clone(), FileEntry::Deleted);
        }
    }
    out
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), String> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    }
    fs::write(path, bytes).map_err(|e| format!("{}: {e}", path.display()))
}

/// Copies the files below `from` to `to` (keeping relative paths), passing
/// each through `transform(relative path, bytes)`; returns the relative paths.
fn copy_tree(
    from: &Path,
    to: &Path,
    transform: &dyn Fn(&str, Vec<u8>) -> Vec<u8>,
) -> Result<Vec<String>, String> {
    let files = snapshot(from)?;
    let mut placed = Vec::new();
    for (rel, bytes) in files {
        write(&to.join(&rel), &transform(&rel, bytes))?;
        placed.push(rel);
    }
    Ok(placed)
}

/// README §2 step 3 and 4. Returns the root-relative paths placed.
pub fn prepare_root(case: &Case, root: &Path, vars: &Vars) -> Result<Vec<String>, String> {
    fs::create_dir_all(root).map_err(|e| format!("{}: {e}", root.display()))?;
    let mut placed = Vec::new();
    let user_config = case.dir.join("user-config.xml");
    if user_config.is_file() {
        let bytes = placeholders::replace_bytes(&read(&user_config)?, vars);
        write(&root.join("config/user-config.xml"), &bytes)?;
        placed.push("config/user-config.xml".to_string());
    }
    let scripts = case.dir.join("scripts");
    if scripts.is_dir() {
        for rel in copy_tree(&scripts, &root.join("scripts"), &|_, b| b)? {
            placed.push(format!("scripts/{rel}"));
        }
    }
    let state = case.dir.join("state");
    if state.is_dir() {
        let transform = |rel: &str, bytes: Vec<u8>| {
            if TEXT_STATE_ENDINGS.iter().any(|e| rel.ends_with(e)) {
                placeholders::replace_bytes(&bytes, vars)
            } else {
                bytes
            }
        };
        placed.extend(copy_tree(&state, root, &transform)?);
    }

    let mtimes_path = case.dir.join("mtimes.json");
    let mut ages: BTreeMap<String, i64> = BTreeMap::new();
    if mtimes_path.is_file() {
        let json = read_json(&mtimes_path)?;
        let object = json
            .as_object()
            .ok_or_else(|| format!("{}: not an object", mtimes_path.display()))?;
        for (path, age) in object {
            let age = age
                .as_i64()
                .ok_or_else(|| format!("{}: {path}: not an integer", mtimes_path.display()))?;
            if !placed.contains(path) {
                return Err(format!(
                    "{}: {path} is not a file the case places",
                    mtimes_path.display()
                ));
            }
            ages.insert(path.clone(), age);
        }
    }
    for rel in &placed {
        let age = ages.get(rel).copied().unwrap_or(DEFAULT_AGE_SECS);
        let secs = u64::try_from(vars.now - age)
            .map_err(|_| format!("{rel}: modification time before 1970"))?;
        let mtime = UNIX_EPOCH + Duration::from_secs(secs);
        let path = root.join(rel);
        let file = fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        file.set_modified(mtime)
            .map_err(|e| format!("setting mtime of {}: {e}", path.display()))?;
    }
    Ok(placed)
}

/// A body file of the case: UTF-8 text gets placeholders replaced, anything
/// else is sent verbatim.
fn body_file(case: &Case, rel: &str, vars: &Vars) -> Result<Vec<u8>, String> {
    let bytes = read(&case.dir.join(rel))?;
    Ok(match String::from_utf8(bytes) {
        Ok(text) => placeholders::replace(&text, vars).into_bytes(),
        Err(e) => e.into_bytes(),
    })
}

/// Turns a `requests.json` entry into the request to send.
pub fn build_request(
    case: &Case,
    spec: &RequestSpec,
    vars: &Vars,
    pki: &Pki,
) -> Result<Request, String> {
    let port = match spec.listener.as_str() {
        "http" => vars.http_port,
        "https" => vars.https_port,
        _ => vars.mtls_port,
    };
    let tls = if spec.listener == "http" {
        None
    } else {
        let identity = match spec.cert.as_deref() {
            None | Some("none") => None,
            Some(name) => Some(
                pki.clients
                    .get(name)
                    .ok_or_else(|| format!("no client certificate {name:?}"))?,
            ),
        };
        Some(http::tls_config(identity)?)
    };
    let mut headers: Vec<(String, String)> = spec
        .headers
        .iter()
        .map(|(n, v)| (n.clone(), placeholders::replace(v, vars)))
        .collect();
    let body = if let Some(rel) = &spec.body {
        Some(body_file(case, rel, vars)?)
    } else if let Some(data) = &spec.data {
        Some(placeholders::replace(data, vars).into_bytes())
    } else if let Some(mp) = &spec.multipart {
        let content = body_file(case, &mp.file, vars)?;
        let mut body = format!(
            "--{MULTIPART_BOUNDARY}\r\nContent-Disposition: form-data; name=\"{}\"; filename=\"{}\"\r\nContent-Type: application/octet-stream\r\n\r\n",
            mp.field, mp.filename
        )
        .into_bytes();
        body.extend_from_slice(&content);
        body.extend_from_slice(format!("\r\n--{MULTIPART_BOUNDARY}--\r\n").as_bytes());
        if !headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("Content-Type"))
        {
            headers.insert(
                0,
                (
                    "Content-Type".into(),
                    format!("multipart/form-data; boundary={MULTIPART_BOUNDARY}"),
                ),
            );
        }
        Some(body)
    } else {
        None
    };
    Ok(Request {
        port,
        method: spec.method.clone(),
        target: format!("/update/{}", placeholders::replace(&spec.path, vars)),
        headers,
        body,
        tls,
    })
}

/// The value of the last `mod cmd UP1 check ser X` line of an answer.
pub fn check_value(body: &[u8]) -> Option<String> {
    String::from_utf8_lossy(body)
        .lines()
        .filter_map(|l| {
            let rest = l.trim().strip_prefix("mod cmd UP1 check ser")?;
            (rest.is_empty() || rest.starts_with(char::is_whitespace)).then(|| rest.trim())
        })
        .next_back()
        .map(str::to_string)
}

/// Runs one case: prepare, start master and server, send the requests,
/// collect the files.
pub fn run(case: &Case, pki: &Pki, keep: bool) -> Result<Run, String> {
    let mut retried = Vec::new();
    loop {
        let work = tempfile::Builder::new()
            .prefix(&format!("conformance-{}-", case.name))
            .tempdir()
            .map_err(|e| format!("temp dir: {e}"))?;
        match run_in(case, pki, work.path()) {
            Ok(mut run) => {
                if keep {
                    run.kept = Some(work.keep());
                }
                run.notes = retried;
                return Ok(run);
            }
            // Ports are picked by binding port 0 and releasing it, so another
            // process can take one before the server binds it: start afresh
            // with new ports. A server that cannot start fails every attempt.
            Err(RunError::Start(e)) if retried.len() + 1 < START_ATTEMPTS => {
                retried.push(format!("server start retried with new ports: {e}"));
            }
            Err(RunError::Start(e) | RunError::Other(e)) => {
                let mut message = e;
                for note in &retried {
                    message.push_str(&format!("\n    earlier attempt: {note}"));
                }
                if keep {
                    message.push_str(&format!("\n    kept: {}", work.keep().display()));
                }
                return Err(message);
            }
        }
    }
}

/// Attempts to start the server for one case.
const START_ATTEMPTS: usize = 3;

enum RunError {
    /// The server did not come up on its ports.
    Start(String),
    Other(String),
}

impl From<String> for RunError {
    fn from(e: String) -> Self {
        RunError::Other(e)
    }
}

fn run_in(case: &Case, pki: &Pki, work: &Path) -> Result<Run, RunError> {
    let root = work.join("root");
    let logs = work.join("logs");
    fs::create_dir_all(&logs).map_err(|e| format!("{}: {e}", logs.display()))?;

    let ports = Ports::pick()?;
    let port_of = |l: &std::net::TcpListener| l.local_addr().map(|a| a.port());
    let master_listener = if case.has_master() {
        Some(server::reserve_port()?)
    } else {
        None
    };
    let master_port = match &master_listener {
        Some(l) => port_of(l).map_err(|e| e.to_string())?,
        None => server::free_port()?,
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|e| format!("clock: {e}"))?
        .as_secs() as i64;
    let mut vars = Vars {
        master: format!("127.0.0.1:{master_port}"),
        http_port: ports.http,
        https_port: ports.https,
        mtls_port: ports.mtls,
        now,
        check: String::new(),
    };
    let normaliser = Normaliser::new(ports.http, ports.https, ports.mtls, master_port, &root, now);

    prepare_root(case, &root, &vars)?;
    let before = snapshot(&root)?;

    let master = match master_listener {
        Some(listener) => {
            let box_info =
                placeholders::replace_bytes(&read(&case.dir.join("master/box_info.xml"))?, &vars);
            Some(Master::start(listener, box_info)?)
        }
        None => None,
    };
    let mut server = Server::start(&root, &logs, &ports, pki).map_err(RunError::Start)?;

    let mut responses = Vec::new();
    for spec in &case.requests {
        if let Some(secs) = spec.sleep {
            std::thread::sleep(Duration::from_secs_f64(secs));
        }
        let request = build_request(case, spec, &vars, pki)?;
        let response = request.send();
        if let Some(check) = check_value(&response.body) {
            vars.check = check;
        }
        responses.push(response);
    }
    let server_problem = if server.is_running() {
        None
    } else {
        Some(format!(
            "the server died during the case\n{}",
            server.stderr_tail(20)
        ))
    };

    // the server writes device states behind its answers; its stop writes the last batch
    server.stop();
    let after = snapshot(&root)?;
    let master_log = master.as_ref().map(Master::log);
    drop(server);
    drop(master);
    let files = resulting_files(&before, &after, &normaliser);
    Ok(Run {
        normaliser,
        responses,
        files,
        master_log,
        kept: None,
        server_problem,
        notes: Vec::new(),
    })
}
