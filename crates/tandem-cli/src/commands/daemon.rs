use std::io::Write;

use tandem_core::connection as client;
use tandem_core::protocol::{Request, Response};
use tandem_core::supervisor;

use crate::context::Context;
use crate::error::CliError;

/// Manage the supervisor (it starts by itself when a command needs it)
#[derive(clap::Args, Debug)]
pub struct DaemonArgs {
    #[command(subcommand)]
    action: Action,
}

#[derive(clap::Subcommand, Debug)]
enum Action {
    /// Start the supervisor in the background if it is not running
    Start,
    /// Stop the supervisor; agents keep running in their hosts
    Stop,
    /// Say whether the supervisor runs, its pid, uptime and live hosts
    Status {
        /// One JSON object: running, pid, uptime_secs, hosts, socket,
        /// dashboard (its URL without the token, or null)
        #[arg(long)]
        json: bool,
    },
    /// Run the supervisor in the foreground
    #[command(hide = true)]
    Run,
}

pub fn run(cx: &Context, args: &DaemonArgs) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    match args.action {
        Action::Start => {
            let client = cx.supervisor()?;
            writeln!(out, "supervisor running (pid {})", client.pid)?;
        }
        Action::Stop => match client::connect_existing(&cx.paths)? {
            Some(mut client) => {
                let pid = client.pid;
                // It frees its socket and lock before it answers, so a
                // new supervisor can start at once.
                client.request(&Request::Shutdown)?;
                writeln!(out, "supervisor stopped (pid {pid}); running agents keep running")?;
            }
            None => writeln!(out, "supervisor not running")?,
        },
        Action::Status { json } => {
            let socket = cx.paths.supervisor_socket();
            let status = match client::connect_existing(&cx.paths)? {
                Some(mut client) => match client.request(&Request::Status)? {
                    Response::Status { pid, started_at, hosts, watches } => {
                        Some((pid, tandem_core::unix_now() - started_at, hosts, watches))
                    }
                    _ => None,
                },
                None => None,
            };
            // The dashboard the supervisor runs (`[serve] enabled`), without
            // its token: `tandem serve --print-url` prints the login URL.
            let serve = tandem_core::supervisor::companions::user_config(&cx.paths).serve;
            let dashboard = serve.enabled.then(|| {
                let scheme = if serve.tls_cert.is_empty() { "http" } else { "https" };
                let host = serve
                    .listen
                    .parse::<std::net::SocketAddr>()
                    .map_or_else(|_| serve.listen.clone(), tandem_web::auth::url_host);
                format!("{scheme}://{host}/")
            });
            if json {
                let (pid, up, hosts, watches) = status
                    .as_ref()
                    .map_or((None, None, None, None), |(p, u, h, w)| (Some(p), Some(u), Some(h), Some(w)));
                let obj = serde_json::json!({
                    "running": status.is_some(), "pid": pid, "uptime_secs": up, "hosts": hosts, "socket": socket,
                    "dashboard": dashboard, "watches": watches,
                });
                writeln!(out, "{obj}")?;
            } else if let Some((pid, up, hosts, watches)) = &status {
                writeln!(
                    out,
                    "supervisor running (pid {pid}, up {}), {hosts} live session host(s)",
                    tandem_core::short_age(*up)
                )?;
                writeln!(out, "{}", super::doctor::watches_line(watches))?;
                writeln!(out, "socket: {}", socket.display())?;
                if let Some(url) = &dashboard {
                    writeln!(
                        out,
                        "dashboard: {url} (`tandem serve --print-url` prints the URL that logs a browser in)"
                    )?;
                }
            } else {
                writeln!(out, "supervisor not running; any tandem command starts it")?;
            }
            if status.is_none() {
                return Err(CliError::user("the supervisor is not running"));
            }
        }
        Action::Run => supervisor::run(&cx.paths, std::env::current_exe()?)?,
    }
    Ok(())
}
