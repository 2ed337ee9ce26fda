//! The `update-server` command: `serve`, `check-config`, `simulate`, `rollout-plan`.

use clap::{CommandFactory, Parser, Subcommand};

mod allocator;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use update_server::app::App;
use update_server::config::Config;
use update_server::server::{self, Listeners};
use update_server::tls;

#[derive(Parser)]
#[command(
    name = "update-server",
    version,
    about = "Update server for innovaphone devices (drop-in replacement for the PHP Update Server V2)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log line format on standard error: text, or json (one JSON object per line).
    #[arg(long, global = true, value_enum, default_value = "text")]
    log_format: LogFormat,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Serve update scripts, firmware and the admin pages.
    Serve(ServeArgs),
    /// Print the merged configuration of an installation, or what is wrong with it.
    ///
    /// Warnings (unknown elements and attributes, values that are no numbers or booleans) go
    /// to standard error. Exit codes: 0 usable, 1 unusable or no --root directory, 2 wrong
    /// command line, 3 warnings with --strict.
    CheckConfig {
        /// The installation directory.
        #[arg(long, default_value = ".")]
        root: PathBuf,
        /// Fail (exit code 3) when there are warnings.
        #[arg(long)]
        strict: bool,
    },
    /// Print the update script a device would get, without writing its state.
    Simulate {
        /// The installation directory.
        #[arg(long, default_value = ".")]
        root: PathBuf,
        /// URL path the installation is published under.
        #[arg(long, default_value = "")]
        prefix: String,
        /// Host (and port) the device would use.
        #[arg(long, default_value = "localhost")]
        host: String,
        /// The poll's query string, e.g. 'type=IP232&sn=00-90-33-30-00-af&hwid=IP232-30-00-af&ip=1.2.3.4'.
        query: String,
    },
    /// Ask for a password (or read a line from standard input) and print its hash for master/@passwordhash.
    HashPassword,
    /// Print which devices (from the status directory) fall in which wave of a staged
    /// rollout, and what the rollout recorded for them; changes nothing.
    RolloutPlan {
        /// The installation directory.
        #[arg(long, default_value = ".")]
        root: PathBuf,
        /// The rollout's id (<rollout id=…> in the configuration).
        id: String,
    },
    /// Print the completion script for a shell.
    #[command(hide = true)]
    Completions { shell: clap_complete::Shell },
    /// Print the man page.
    #[command(hide = true)]
    Manpage,
}

#[derive(clap::Args)]
struct ServeArgs {
    /// The installation directory (laid out like a PHP installation).
    #[arg(long, default_value = ".")]
    root: PathBuf,
    /// URL path the installation is published under, e.g. /mtls/update.
    #[arg(long)]
    prefix: Option<String>,
    /// Plain HTTP listener address (repeatable). Default: 127.0.0.1:8080 when no listener is configured.
    #[arg(long)]
    http: Vec<SocketAddr>,
    /// HTTPS listener address, no client certificates (repeatable).
    #[arg(long)]
    https: Vec<SocketAddr>,
    /// HTTPS listener that asks for a client certificate (repeatable); needs --client-ca.
    #[arg(long)]
    mtls: Vec<SocketAddr>,
    /// Server certificate chain (PEM). Without it a self-signed one is generated in ROOT/tls/.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// Server private key (PEM).
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// CAs trusted for client certificates on --mtls listeners (PEM bundle).
    #[arg(long)]
    client_ca: Option<PathBuf>,
    /// Accept old device certificates (SHA-1 signatures, RSA keys from 1024 bits) that chain
    /// to --client-ca. Default: true, or <server legacy-client-certs=…>.
    #[arg(long, value_name = "true|false")]
    legacy_client_certs: Option<bool>,
}

/// Logs go to stderr from a thread of their own ([`update_server::log_sink`]: a request
/// does not wait for the write, no line is lost). The guard writes what is left when it is
/// dropped at exit.
fn init_logs(format: LogFormat) -> update_server::log_sink::Guard {
    let (writer, guard) = update_server::log_sink::LogSink::start(std::io::stderr());
    let fmt = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,tower_http=warn")),
        )
        .with_writer(writer);
    match format {
        LogFormat::Json => fmt.json().init(),
        LogFormat::Text => fmt
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
    }
    guard
}

fn main() -> ExitCode {
    allocator::configure();
    let cli = Cli::parse();
    let _logs = init_logs(cli.log_format);
    let _ = rustls::crypto::ring::default_provider().install_default();
    let result = match cli.command {
        Command::CheckConfig { root, strict } => {
            return update_server::config_check::run(&root, strict);
        }
        Command::Simulate {
            root,
            prefix,
            host,
            query,
        } => with_runtime(|rt| simulate(rt, root, &prefix, &host, &query)),
        Command::HashPassword => return update_server::cli_tools::hash_password(),
        Command::RolloutPlan { root, id } => update_server::rollout::plan::run(&root, &id)
            .map(|text| print!("{text}"))
            .map_err(|e| e.to_string()),
        Command::Completions { shell } => {
            return update_server::cli_tools::completions(Cli::command(), shell);
        }
        Command::Manpage => return update_server::cli_tools::manpage(Cli::command()),
        Command::Serve(args) => with_runtime(|rt| {
            rt.spawn(allocator::tick());
            rt.block_on(serve(args))
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn with_runtime(
    f: impl FnOnce(&tokio::runtime::Runtime) -> Result<(), String>,
) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .on_thread_park(allocator::on_idle)
        .build()
        .map_err(|e| e.to_string())?;
    f(&rt)
}

fn simulate(
    rt: &tokio::runtime::Runtime,
    root: PathBuf,
    prefix: &str,
    host: &str,
    query: &str,
) -> Result<(), String> {
    use std::io::Write;
    let app = Arc::new(App::new(root, prefix));
    let body = rt.block_on(update_server::device::poll::simulate(&app, query, host))?;
    let _ = std::io::stdout().write_all(&body);
    Ok(())
}

fn parse_addrs(list: &[String], what: &str) -> Result<Vec<SocketAddr>, String> {
    list.iter()
        .map(|a| {
            a.parse()
                .map_err(|_| format!("<server {what}=\"{a}\">: not an address:port"))
        })
        .collect()
}

/// Flags win over the configuration file: fills in what the flags left open.
fn merge_config(args: &mut ServeArgs, root: &std::path::Path, cfg: &Config) -> Result<(), String> {
    let s = &cfg.server;
    if args.http.is_empty() && args.https.is_empty() && args.mtls.is_empty() {
        args.http = parse_addrs(&s.http, "http")?;
        args.https = parse_addrs(&s.https, "https")?;
        args.mtls = parse_addrs(&s.mtls, "mtls")?;
        if args.http.is_empty() && args.https.is_empty() && args.mtls.is_empty() {
            args.http.push(SocketAddr::from(([127, 0, 0, 1], 8080)));
        }
    }
    let rel = |p: &Option<String>| p.as_ref().map(|p| root.join(p));
    args.prefix = args.prefix.take().or_else(|| s.prefix.clone());
    args.tls_cert = args.tls_cert.take().or_else(|| rel(&s.tls_cert));
    args.tls_key = args.tls_key.take().or_else(|| rel(&s.tls_key));
    args.client_ca = args.client_ca.take().or_else(|| rel(&s.client_ca));
    args.legacy_client_certs = args.legacy_client_certs.or(Some(s.legacy_client_certs));
    let file = cfg.sources.last().map_or("configuration", String::as_str);
    tls::proxy::parse_trusted(&s.trusted_proxies).map_err(|e| format!("{file}: {e}"))?;
    if let Some(v) = cfg
        .tree
        .child("server")
        .and_then(|e| e.attr("proxy-identity"))
        && update_server::config::ProxyIdentity::parse(v).is_none()
    {
        return Err(format!(
            "{file}: <server proxy-identity=\"{v}\">: neither \"x-remote-cert\" nor \"forwarded\""
        ));
    }
    Ok(())
}

/// Loads (or generates) the server certificate when a TLS listener is asked for.
fn tls_setup(args: &ServeArgs, root: &std::path::Path) -> Result<Option<tls::TlsSetup>, String> {
    if args.https.is_empty() && args.mtls.is_empty() {
        return Ok(None);
    }
    let opts = tls::TlsOptions {
        cert: args.tls_cert.clone(),
        key: args.tls_key.clone(),
        client_ca: args.client_ca.clone(),
        legacy_client_certs: args.legacy_client_certs.unwrap_or(true),
    };
    tls::TlsSetup::load(root, &opts, !args.mtls.is_empty())
        .map(Some)
        .map_err(|e| e.to_string())
}

async fn serve(mut args: ServeArgs) -> Result<(), String> {
    let root = std::fs::canonicalize(&args.root)
        .map_err(|e| format!("--root {}: {e}", args.root.display()))?;
    let cfg = Config::load(&root).map_err(|e| e.to_string())?;
    merge_config(&mut args, &root, &cfg)?;
    let tls = tls_setup(&args, &root)?;
    let listeners = Listeners {
        http: Listeners::bind("http", &args.http)
            .await
            .map_err(|e| e.to_string())?,
        https: Listeners::bind("https", &args.https)
            .await
            .map_err(|e| e.to_string())?,
        mtls: Listeners::bind("mtls", &args.mtls)
            .await
            .map_err(|e| e.to_string())?,
        tls,
    };
    let app = Arc::new(App::new(root, args.prefix.as_deref().unwrap_or_default()));
    let (shutdown, reloads) =
        update_server::lifecycle::signals().map_err(|e| format!("signals: {e}"))?;
    server::serve_with(app, listeners, shutdown, Some(reloads))
        .await
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    unsafe extern "C" {
        fn mi_option_get(option: std::ffi::c_int) -> std::ffi::c_long;
    }

    #[test]
    fn the_huge_pages_option_is_the_one_of_mimalloc() {
        // v3's default is 1 (allowed): another number means another option
        // SAFETY: reads a numeric option of the linked allocator
        let thp = unsafe { mi_option_get(super::allocator::MI_OPTION_ALLOW_THP) };
        let from_env = std::env::var("MIMALLOC_ALLOW_THP").ok();
        assert_eq!(from_env.map_or(1, |v| v.parse().unwrap_or(-2)), thp);
    }

    #[test]
    fn the_purge_delay_option_is_the_one_of_mimalloc() {
        // v3's default purge delay is 1000 ms: another number means another option
        // SAFETY: reads a numeric option of the linked allocator
        let delay = unsafe { mi_option_get(super::allocator::MI_OPTION_PURGE_DELAY) };
        let from_env = std::env::var("MIMALLOC_PURGE_DELAY").ok();
        assert_eq!(from_env.map_or(1000, |v| v.parse().unwrap_or(-2)), delay);
    }
}
