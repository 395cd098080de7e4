use std::io::IsTerminal;

use crate::context::Context;
use crate::error::CliError;

/// Start a session's agent again in the same worktree (stopping it first
/// if it runs), resuming its conversation where the agent can (Claude
/// Code: `--resume`); a `lost` session works again after this
///
/// The agent gets the session's environment, as `tandem new` made it, not
/// this shell's; `--env` changes one variable, `--env-from-shell` takes
/// this shell's.
#[derive(clap::Args, Debug)]
pub struct RespawnArgs {
    /// The session's name [default: the session whose worktree this is]
    name: Option<String>,
    #[command(flatten)]
    env: crate::context::EnvChoiceArgs,
}

pub fn run(cx: &Context, args: &RespawnArgs) -> Result<(), CliError> {
    let choice = args.env.choice()?;
    let (_, _, session) = cx.named(args.name.as_deref())?;
    let (cols, rows) =
        if std::io::stdout().is_terminal() { crossterm::terminal::size().unwrap_or((80, 24)) } else { (80, 24) };
    let (session, resumed, notes) =
        cx.tandem()?.respawn_with(&session, crate::context::agent_env(), choice, (rows, cols))?;
    for note in &notes {
        crate::context::note!("{}", tandem_core::text::visible(note));
    }
    let how = if resumed { ", resuming its conversation" } else { "" };
    println!("respawned session {}{how}", session.slug);
    Ok(())
}
