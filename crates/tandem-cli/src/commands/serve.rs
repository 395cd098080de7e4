//! `tandem serve`: the web dashboard and HTTP API (crates/tandem-web,
//! docs/web.md).

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::context::Context;
use crate::error::CliError;

/// Serve the web dashboard and its HTTP API: every session, live, from a
/// browser or a phone
///
/// Prints a URL with the per-user token (kept in the state folder, mode
/// 0600); opening it logs the browser in. Listens on loopback unless
/// --listen names another address, which needs HTTPS (--tls-cert and
/// --tls-key) or --insecure-http. `[serve]` in your config sets the
/// defaults and can have the supervisor run it (docs/web.md).
#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// The address and port to listen on [default: `serve.listen`,
    /// 127.0.0.1:7878]
    #[arg(long, value_name = "ADDR:PORT")]
    listen: Option<SocketAddr>,
    /// Open the dashboard in the default browser once it listens
    #[arg(long)]
    open: bool,
    /// Only the current repository's sessions (else every repository's)
    #[arg(long)]
    here: bool,
    /// Serve HTTPS with this PEM certificate chain (with --tls-key)
    #[arg(long, value_name = "PATH", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert
    #[arg(long, value_name = "PATH", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Serve plain HTTP on an address other than loopback anyway (the
    /// token then crosses the network readable)
    #[arg(long)]
    insecure_http: bool,
    /// Print the URL that logs a browser in (for the configured or
    /// --listen address) and exit; the dashboard the supervisor runs
    /// (`[serve] enabled`) answers to it
    #[arg(long)]
    print_url: bool,
    /// Started by the supervisor: exit when its stdin closes
    #[arg(long, hide = true)]
    supervised: bool,
    /// Run the notifier (`[notify]`) instead of the server
    #[arg(long, hide = true)]
    notifier: bool,
}

pub fn run(cx: &Context, args: &ServeArgs) -> Result<(), CliError> {
    // The user's file alone: a repository cannot choose where the
    // dashboard listens or where events are sent.
    let config = tandem_core::supervisor::companions::user_config(&cx.paths);
    if args.supervised {
        tandem_core::supervisor::companions::exit_with_parent();
    }
    if args.notifier {
        return tandem_web::notify::run(cx.tandem()?, &config).map_err(web_error);
    }
    let listen = match args.listen {
        Some(listen) => listen,
        None => config.serve.listen.parse().map_err(|_| {
            CliError::user(format!(
                "serve.listen `{}` in your config is not an ADDR:PORT; fix it (e.g. 127.0.0.1:7878) or pass --listen",
                config.serve.listen
            ))
        })?,
    };
    let from_config = |v: &str| (!v.is_empty()).then(|| PathBuf::from(v));
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some((cert.clone(), key.clone())),
        _ => from_config(&config.serve.tls_cert).zip(from_config(&config.serve.tls_key)),
    }
    .map(|(cert, key)| tandem_web::TlsFiles { cert, key });
    let insecure = args.insecure_http || config.serve.insecure_http;
    if !listen.ip().is_loopback() && tls.is_none() {
        if !insecure {
            return Err(CliError::user(format!(
                "refusing to serve plain HTTP on {listen}, which is not a loopback address: the token would cross \
                 the network readable; serve HTTPS with `--tls-cert cert.pem --tls-key key.pem`, or insist with \
                 `--insecure-http`"
            )));
        }
        eprintln!(
            "warning: serving plain HTTP on {listen}, which is not a loopback address: anyone on the network path \
             can read the token and every page; use --tls-cert/--tls-key for HTTPS"
        );
    }
    let repo = if args.here {
        let (repo, _) = tandem_core::session::open_repo(&cx.paths, &cx.cwd)?;
        Some(repo.root)
    } else {
        None
    };
    let options = tandem_web::ServeOptions { listen, repo, quiet_secs: config.supervisor.quiet_secs, tls };
    if args.print_url {
        let token = tandem_web::auth::Token::load_or_make(&cx.paths).map_err(web_error)?;
        println!("{}", tandem_web::login_url(options.scheme(), listen, &token));
        return Ok(());
    }
    let runtime = tandem_web::runtime().map_err(web_error)?;
    let bound = tandem_web::bind(&runtime, cx.tandem()?, options).map_err(web_error)?;
    let url = bound.login_url();
    println!("tandem dashboard: {url}");
    println!("(the token in this URL logs a browser in; keep it to yourself)");
    if args.open {
        open_browser(&url);
    }
    tandem_web::run(&runtime, bound).map_err(web_error)
}

fn web_error(e: tandem_web::WebError) -> CliError {
    CliError::user(e.to_string())
}
/// Starts the desktop's browser on `url` (`xdg-open`, `open` on macOS);
/// says so when none can be started. The URL is passed as one argument,
/// never through a shell.
fn open_browser(url: &str) {
    let opener = if cfg!(target_os = "macos") { "open" } else { "xdg-open" };
    let started = std::process::Command::new(opener)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    if started.is_err() {
        crate::context::note!("cannot start `{opener}`; open the URL above in a browser");
    }
}
