use std::io::Write;

use tandem_core::session::env::{redact, secret_values, shown};
use tandem_core::session::facts::live_state;
use tandem_core::store::SessionState;
use tandem_core::text::visible;

use crate::context::Context;
use crate::error::CliError;

/// Show the environment a session's agent runs with, secrets masked
///
/// Read from the running agent itself, so it is exactly what it got:
/// the caller's environment, `[env]`, env files, `--env`, and tandem's
/// own (`TANDEM_SESSION`, `TANDEM_BRANCH`, `TANDEM_BASE`,
/// `TANDEM_WORKTREE`, `TANDEM_REPO`, `TANDEM_PORT`). Every value from an
/// env file or `[env.secret]`, or of a variable with a secret's name
/// (`*_TOKEN`, `*_API_KEY`, `*PASSWORD*`, …), is masked, and so is a
/// secret's value inside another variable, unless `--show-secrets`.
#[derive(clap::Args, Debug)]
pub struct EnvArgs {
    /// The session's name [default: the session whose worktree this is]
    name: Option<String>,
    /// As one JSON object
    #[arg(long)]
    json: bool,
    /// Show secrets' values in the clear
    #[arg(long)]
    show_secrets: bool,
}

pub fn run(cx: &Context, args: &EnvArgs) -> Result<(), CliError> {
    let (_, _, session) = cx.named(args.name.as_deref())?;
    let not_running = || {
        CliError::user(format!(
            "session `{0}` has no running agent, and its environment is made when one starts; `tandem respawn {0}` starts it",
            session.slug
        ))
    };
    let pid = session.agent_pid.filter(|_| live_state(&session) == SessionState::Running).ok_or_else(not_running)?;
    // Right after a start, the agent's process may not have called
    // execve yet: its environ is then still the host's (the CI saw no
    // TANDEM_PORT in it). Wait, briefly, for the one tandem gives it.
    let started = std::time::Instant::now();
    let raw = loop {
        let raw = std::fs::read(format!("/proc/{pid}/environ")).map_err(|_| not_running())?;
        let exec_done = raw.split(|b| *b == 0).any(|entry| entry.starts_with(b"TANDEM_SESSION="));
        if exec_done || started.elapsed() > std::time::Duration::from_secs(2) {
            break raw;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    let mut vars: Vec<(String, String)> = raw
        .split(|b| *b == 0)
        .filter_map(|entry| {
            let text = String::from_utf8_lossy(entry);
            text.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned()))
        })
        .collect();
    vars.sort();
    let secrets: Vec<String> = vars
        .iter()
        .find(|(k, _)| k == "TANDEM_SECRET_KEYS")
        .map(|(_, v)| v.split(',').filter(|s| !s.is_empty()).map(str::to_owned).collect())
        .unwrap_or_default();
    // A secret's value copied into another variable is masked there too.
    let values = secret_values(&vars);
    let show = |k: &str, v: &str| {
        if args.show_secrets { v.to_owned() } else { redact(&shown(k, v, &secrets), &values).into_owned() }
    };
    let mut out = std::io::stdout().lock();
    if args.json {
        let map: serde_json::Map<String, serde_json::Value> =
            vars.iter().map(|(k, v)| (k.clone(), show(k, v).into())).collect();
        serde_json::to_writer_pretty(&mut out, &map).map_err(std::io::Error::from)?;
        writeln!(out)?;
    } else {
        for (k, v) in &vars {
            writeln!(out, "{}={}", visible(k), visible(&show(k, v)))?;
        }
    }
    Ok(())
}
