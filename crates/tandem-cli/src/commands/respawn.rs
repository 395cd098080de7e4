use std::io::IsTerminal;

use crate::context::Context;
use crate::error::CliError;

/// Start a session's agent again in the same worktree (stopping it first
/// if it runs), resuming its conversation where the agent can (Claude
/// Code: `--resume`); a `lost` session works again after this
#[derive(clap::Args, Debug)]
pub struct RespawnArgs {
    /// The session's name [default: the session whose worktree this is]
    name: Option<String>,
}

pub fn run(cx: &Context, args: &RespawnArgs) -> Result<(), CliError> {
    let (_, _, session) = cx.named(args.name.as_deref())?;
    let (cols, rows) =
        if std::io::stdout().is_terminal() { crossterm::terminal::size().unwrap_or((80, 24)) } else { (80, 24) };
    let (session, resumed) = cx.tandem()?.respawn(&session, crate::context::agent_env(), (rows, cols))?;
    let how = if resumed { ", resuming its conversation" } else { "" };
    println!("respawned session {}{how}", session.slug);
    Ok(())
}
