use crate::context::Context;
use crate::error::CliError;

/// Interrupt the agent's current turn; it stays running
///
/// Claude Code's TUI gets Esc (it ends the turn and waits for a prompt),
/// `claude-structured` an interrupt request, any other agent Ctrl-C.
#[derive(clap::Args, Debug)]
pub struct InterruptArgs {
    /// The session's name [default: the session whose worktree this is]
    name: Option<String>,
}

pub fn run(cx: &Context, args: &InterruptArgs) -> Result<(), CliError> {
    let (_, _, session) = cx.named(args.name.as_deref())?;
    Ok(cx.tandem()?.interrupt(&session)?)
}
