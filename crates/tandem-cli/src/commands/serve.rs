//! `tandem serve`: the web dashboard and HTTP API (crates/tandem-web,
//! docs/web.md).

use std::net::SocketAddr;

use tandem_core::config::Config;

use crate::context::Context;
use crate::error::CliError;

/// Serve the web dashboard and its HTTP API: every session, live, from a
/// browser or a phone
///
/// Prints a URL with the per-user token (kept in the state folder, mode
/// 0600); opening it logs the browser in. Listens on loopback unless
/// --listen names another address.
#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// The address and port to listen on
    #[arg(long, default_value = "127.0.0.1:7878", value_name = "ADDR:PORT")]
    listen: SocketAddr,
    /// Open the dashboard in the default browser once it listens
    #[arg(long)]
    open: bool,
    /// Only the current repository's sessions (else every repository's)
    #[arg(long)]
    here: bool,
}

pub fn run(cx: &Context, args: &ServeArgs) -> Result<(), CliError> {
    let config = Config::load(&cx.paths.config_dir.join("config.toml"), None).unwrap_or_else(|_| Config::defaults());
    let repo = if args.here {
        let (repo, _) = tandem_core::session::open_repo(&cx.paths, &cx.cwd)?;
        Some(repo.root)
    } else {
        None
    };
    let options = tandem_web::ServeOptions { listen: args.listen, repo, quiet_secs: config.supervisor.quiet_secs };
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
