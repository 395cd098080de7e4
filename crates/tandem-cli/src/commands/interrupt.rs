use tandem_core::host::client;
use tandem_core::protocol::ClientMsg;
use tandem_core::session::facts::live_state;
use tandem_core::store::SessionState;

use crate::context::Context;
use crate::error::CliError;

/// Interrupt the agent's current turn; it stays running
///
/// Claude Code's TUI gets Esc (it ends the turn and waits for a prompt),
/// `claude-structured` an interrupt request, any other agent Ctrl-C.
#[derive(clap::Args, Debug)]
pub struct InterruptArgs {
    /// The session's name
    name: String,
}

pub fn run(cx: &Context, args: &InterruptArgs) -> Result<(), CliError> {
    let (_, _, session) = cx.session(&args.name)?;
    if live_state(&session) != SessionState::Running {
        return Err(super::send::not_running(&session.slug));
    }
    client::tell(&cx.paths, &session, &ClientMsg::Interrupt).map_err(|_| super::send::not_running(&session.slug))?;
    Ok(())
}
